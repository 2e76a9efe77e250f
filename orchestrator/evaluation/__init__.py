"""Evaluation: how one trial is judged, apart from what to try next (Syne Tune's trial backend).
``evaluators`` holds the request/report types and the training and replay evaluators, ``tables``
the results-table format the replay reads, ``trainable`` the Ray Tune function that runs one."""
