"""A warm start: earlier results handed to every part of a new search that proposes or ranks.

``warm_start`` names where they come from: an MLflow experiment (an earlier search's trained
trials) or ``table:PATH`` (a results table, e.g. the NASSegNet-Bench table shipped under
``benchmarks/``). Each result becomes a finished trial of the Optuna study (so TPE and the GP model
it from the first proposal; the grid sampler skips it) and an observation of the surrogate (so the
prescreening ranks from the first trial). Networks outside the search's bounds, or missing its
objectives, are left out (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.tracking import MlflowClient

from orchestrator.config import ConfigError, SearchConfig
from orchestrator.tracking.tracker import ROLE, STAGE
from search_spaces import ArchSpec, SpecError


@dataclass(frozen=True)
class WarmStart:
    """Earlier results: one architecture per row, its values in the search's objective order."""

    source: str
    archs: list[Any]
    values: list[list[float]]
    outside: int = 0        # results left out: outside the bounds or without the objectives

    def __len__(self) -> int:
        return len(self.archs)


def _values(cfg: SearchConfig, space: Any, arch: Any, metrics: dict[str, float]) -> list[float] | None:
    """The objectives of one result; a hardware cost objective the table left out is recomputed."""
    cost = None
    out = []
    for objective in cfg.objectives:
        value = metrics.get(objective)
        if value is None:
            cost = cost or space.cost(arch)
            value = cost.get(objective)
        if value is None:
            return None
        out.append(float(value))
    return out


def load_warm_start(cfg: SearchConfig, client: MlflowClient | None, space: Any) -> WarmStart:
    """Read ``cfg.warm_start``; ConfigError (one line) when it names nothing readable."""
    source = cfg.warm_start or ""
    archs, values = [], []
    if source.startswith("table:"):
        from orchestrator.evaluation.tables import read_table

        try:
            rows = read_table(source[len("table:"):]).values()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"warm_start: {exc}") from None
        results = [(ArchSpec.from_json(r.arch), r.final) for r in rows]
    else:
        exp = client.get_experiment_by_name(source)
        if exp is None:
            raise ConfigError(f"warm_start: no MLflow experiment named {source!r}")
        runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{ROLE}` = 'trial' and "
                                  f"tags.`{STAGE}` = 'trained'", max_results=10_000)
        results = []
        for run in runs:
            try:
                results.append((ArchSpec.from_params(run.data.params, prefix="arch."), run.data.metrics))
            except SpecError:
                continue
    from search_spaces.neighbours import contains

    for arch, metrics in results:
        vals = _values(cfg, space, arch, metrics) if contains(space, arch) else None
        if vals is not None:
            archs.append(arch)
            values.append(vals)
    return WarmStart(source, archs, values, len(results) - len(archs))


def apply_warm_start(searcher: Any, warm: WarmStart) -> None:
    """Give the results to the searcher's study (all objectives) and surrogate (the primary one)."""
    searcher.proposals.add_warm_start(warm.archs, warm.values)
    searcher.surrogate.observe_many(warm.archs, [vals[0] for vals in warm.values])
