"""nasseg's orchestration, by role (README "Layout"): ``cli`` and ``config`` at the top;
``strategy`` (what to try next), ``evaluation`` (how a trial is judged), ``tracking`` (MLflow
records and the model registry), ``commands`` (report, predict, export-table), ``driver`` (one
search end to end). Imports go downward, cli -> driver -> commands -> strategy / evaluation /
tracking -> config; those three use each other's small types only (a trial request, a results
table, searcher events, MLflow tag names). ``mlflow_pyfunc`` stays at its path: every registered
model names it as its loader."""
