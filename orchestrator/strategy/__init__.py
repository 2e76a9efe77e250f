"""Strategy: what to try next. ``searcher`` is the Ray Tune searcher (proposals, prescreening,
Pareto ranking of results, checkpointed state); ``proposals`` the Optuna study and the samplers
(TPE, GP on the encoding, grid, random); ``gp`` the encoded GP; ``surrogate`` the prescreening
model; ``pareto`` multi-objective ranking; ``events`` what the searcher tells its listeners;
``warm_start`` earlier results fed to all of them."""
