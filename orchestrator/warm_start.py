"""Fit the surrogate on an earlier search's trained trials, read back from MLflow."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from search_spaces import ArchSpec, SpecError

from .config import ConfigError, SearchConfig
from .surrogate import Surrogate
from .tracking import ROLE, STAGE


def warm_start_surrogate(surrogate: Surrogate, cfg: SearchConfig, client: MlflowClient) -> int:
    """Observe every trained trial of experiment ``cfg.warm_start``; returns how many."""
    exp = client.get_experiment_by_name(cfg.warm_start)
    if exp is None:
        raise ConfigError(f"warm_start: no MLflow experiment named {cfg.warm_start!r}")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{ROLE}` = 'trial' and "
                              f"tags.`{STAGE}` = 'trained'", max_results=10_000)
    n = 0
    for run in runs:
        score = run.data.metrics.get(cfg.primary_objective)
        if score is None:
            continue
        try:
            spec = ArchSpec.from_params(run.data.params, prefix="arch.")
        except SpecError:
            continue
        surrogate.specs.append(spec.to_json())
        surrogate.scores.append(float(score))
        n += 1
    surrogate.fit()
    return n
