"""The Ray Tune callbacks that mirror trial events into a search's MLflow records: each trial's
run opened, its per-epoch metrics and placement tags, and its end (trained, stopped, failed)."""

from __future__ import annotations

import math
import time
from typing import Any

from mlflow.entities import Metric, RunTag
from ray.tune import Callback
from ray.tune import result as tune_result

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
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, epoch if is_epoch_metric(k) else 0) for k, v in result.items()
                   if k not in _TUNE_KEYS and _finite(v)]
        # placement tags only when they change (a trial reports every epoch; one write per result)
        tags = {f"nasseg.{key}": str(result[key]) for key in ("node_ip", "node_id", "gpu_ids", "device")
                if key in result}
        if result.get("node_id"):  # every node the trial ran on (a trial can move after a node loss)
            seen = self.node_history.setdefault(trial.trial_id, [])
            if result["node_id"] not in seen:
                seen.append(result["node_id"])
            tags["nasseg.node_ids"] = ",".join(seen)
        known = self.tags_of.setdefault(trial.trial_id, {})
        changed = [RunTag(k, v) for k, v in tags.items() if known.get(k) != v]
        known.update(tags)
        for i in range(0, max(len(metrics), 1), 500):
            if metrics[i:i + 500] or (changed and i == 0):
                self.tracker.client.log_batch(rid, metrics=metrics[i:i + 500], tags=changed if i == 0 else [])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rid = self._run(trial)
        done = self.tracker.cfg.primary_objective in (trial.last_result or {})
        self.tracker.finish(rid, "trained" if done else "stopped")

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


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


#: what Ray adds to every result, and our own non-metric keys (``EpochReport.info``, the epoch)
_TUNE_KEYS = {*tune_result.AUTO_RESULT_KEYS, tune_result.DONE, tune_result.TRIAL_ID, tune_result.EXPERIMENT_TAG,
              tune_result.SHOULD_CHECKPOINT,
              "node_id", "gpu_ids", "device", "epoch"}
