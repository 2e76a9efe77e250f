"""Tracking: what a search leaves in MLflow. ``store`` opens the tracking store, ``tracker`` keeps a
search's runs (parent, trials, candidates, finals), ``ray_callback`` mirrors Ray Tune's trial events
into them, ``registry`` writes, registers and reads back the model bundle."""
