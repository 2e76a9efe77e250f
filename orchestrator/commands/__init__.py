"""Commands on a search's records: ``report`` (plots and tables of a search), ``predict`` (a
registered model on a folder of images), ``export_table`` (a finished search as a results table)."""
