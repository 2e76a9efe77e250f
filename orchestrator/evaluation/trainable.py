"""The Ray Tune trainable: one trial = one :class:`TrialRequest` run by the search's evaluator.

Runs on a worker with its CPU/GPU share. Each epoch's :class:`EpochReport` goes to Ray with a
checkpoint (so ASHA can stop the trial and a crashed or resumed trial continues from its last
epoch); the last one also carries the final scores and the static hardware cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune

from orchestrator.config import SearchConfig
from orchestrator.evaluation.evaluators import EpochReport, TrialRequest, make_evaluator


class RayReporter:
    """The :class:`~orchestrator.evaluation.evaluators.Reporter` of a trial inside Ray Tune."""

    def __init__(self) -> None:
        self._restored = tune.get_checkpoint()
        self._resume_dir: Path | None = None

    def checkpoint(self) -> Path | None:
        if self._restored is None:
            return None
        if self._resume_dir is None:  # Ray's checkpoint folder, as a local path for the evaluator
            self._context = self._restored.as_directory()
            self._resume_dir = Path(self._context.__enter__())
        return self._resume_dir

    def report(self, report: EpochReport, checkpoint_dir: Path) -> None:
        tune.report(report.as_result(), checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))

    def close(self) -> None:
        if self._resume_dir is not None:
            self._context.__exit__(None, None, None)


def run_trial(config: dict[str, Any], search: SearchConfig) -> None:
    """Ray Tune function trainable. ``config``: the searcher's TrialRequest (Ray's search space
    is a dict); ``search``: the search's config, the same object for every trial."""
    reporter = RayReporter()
    try:
        make_evaluator(search.evaluator).run(TrialRequest.from_config(config), search, reporter)
    finally:
        reporter.close()
