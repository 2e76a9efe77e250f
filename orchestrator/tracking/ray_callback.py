"""The Ray Tune callbacks that mirror trial events into a search's MLflow records: each trial's
run opened, its per-epoch metrics and placement tags, and its end (trained, stopped, failed)."""

from __future__ import annotations

import math
import time
from typing import Any

from mlflow.entities import Metric, RunTag
from ray.tune import Callback

from orchestrator.evaluation.evaluators import EpochReport
from orchestrator.tracking.tracker import STAGE, Tracker, is_epoch_metric
from search_spaces import ArchSpec


class MLflowTracking(Callback):
    """Ray Tune callback that mirrors trial events into the Tracker (search trials; final
    training's trials through :class:`FinalTracking`)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.node_history: dict[str, list[str]] = {}
        self.tags_of: dict[str, dict[str, str]] = {}   # tags already written per trial

    def _run(self, trial: Any, trials: list | None = None) -> str:
        config = trial.config
        extra = {"candidate": config.get("candidate")}
        if config.get("predicted") is not None:
            extra["surrogate_predicted"] = config["predicted"]
        live = {t.trial_id for t in trials} if trials is not None else None
        return self.tracker.trial_run(trial.trial_id, ArchSpec.from_json(config["arch"]), extra, "running", live)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rid = self._run(trial, trials)
        self.tracker.client.set_tag(rid, STAGE, "running")
        if trial.config.get("predicted") is not None:
            self.tracker.log_metrics(rid, {"surrogate_predicted": trial.config["predicted"]})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        rid = self._run(trial)
        report = EpochReport.from_result(result)
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, report.epoch if is_epoch_metric(k) else 0) for k, v in report.metrics.items()
                   if math.isfinite(v)]
        # placement tags only when they change (a trial reports every epoch; one write per result)
        tags = {f"nasseg.{key}": value for key, value in report.info.items()}
        if report.info.get("node_id"):  # every node the trial ran on (a trial can move after a node loss)
            seen = self.node_history.setdefault(trial.trial_id, [])
            if report.info["node_id"] not in seen:
                seen.append(report.info["node_id"])
            tags["nasseg.node_ids"] = ",".join(seen)
        known = self.tags_of.setdefault(trial.trial_id, {})
        changed = [RunTag(k, v) for k, v in tags.items() if known.get(k) != v]
        known.update(tags)
        for i in range(0, max(len(metrics), 1), 500):
            if metrics[i:i + 500] or (changed and i == 0):
                self.tracker.client.log_batch(rid, metrics=metrics[i:i + 500], tags=changed if i == 0 else [])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rid = self._run(trial)
        self.tracker.finish(rid, "trained" if EpochReport.from_result(trial.last_result).final else "stopped")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rid = self._run(trial)
        note = None
        if getattr(trial, "error_file", None):
            try:
                with open(trial.error_file) as f:
                    note = f.read()[-2000:]
            except OSError:
                pass
        self.tracker.finish(rid, "failed", failed=True, note=note)


class FinalTracking(MLflowTracking):
    """The same mirror for final training: each Ray trial writes into the ``final`` run of the
    search trial it retrains (``trial.config["request"]``)."""

    def __init__(self, tracker: Tracker, train: Any) -> None:
        super().__init__(tracker)
        self.train = train

    def _run(self, trial: Any, trials: list | None = None) -> str:
        request = trial.config["request"]
        return self.tracker.final_run(request["search_trial"], ArchSpec.from_json(request["arch"]), self.train)
