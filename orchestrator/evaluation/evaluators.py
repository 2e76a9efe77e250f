"""How a trial is evaluated, kept apart from what to try next (Syne Tune's trial-backend idea).

The search loop (Ray Tune + PrescreenSearcher + MLflow tracking) hands each trial a
:class:`TrialRequest` and an :class:`Evaluator` reports :class:`EpochReport`\\ s through a
:class:`Reporter` (Ray's ``tune.report`` with a checkpoint). Two evaluators:

- ``training`` (default): trains the network hardware-aware and judges it under drift
  (``trainers.train.Trainer``): the real thing.
- ``table:PATH``: looks the network up in a table of past results (JSON lines, one network per
  line, written by ``nasseg export-table``) and reports its recorded epochs at once. A 200-trial
  search with ASHA, prescreening, MLflow and resume then replays in seconds: that is how the search
  logic is tested and compared. A network that is not in the table fails its trial (one line).
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from orchestrator.evaluation.tables import NotInTableError, read_table
from search_spaces import ArchSpec, network_signature

CHECKPOINT_FILE = "trainer.pt"       # the training evaluator's checkpoint (tensors only)
TABLE_CHECKPOINT_FILE = "table.json"  # the table evaluator's (the epoch reached)


@dataclass(frozen=True)
class TrialRequest:
    """What the searcher asks one trial to evaluate (Ray carries it as the trial's config):
    the architecture as its canonical JSON, the Optuna candidate, the surrogate's prediction."""

    arch: str
    candidate: str = ""
    predicted: float | None = None

    @property
    def spec(self) -> ArchSpec:
        return ArchSpec.from_json(self.arch)

    def to_config(self) -> dict[str, Any]:
        return {"arch": self.arch, "candidate": self.candidate, "predicted": self.predicted}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrialRequest:
        return cls(str(config["arch"]), str(config.get("candidate", "")), config.get("predicted"))


#: ``EpochReport.info``'s keys: where and on what the trial ran (strings; MLflow tags, not metrics)
INFO_KEYS = ("node_ip", "node_id", "gpu_ids", "device")


@dataclass(frozen=True)
class EpochReport:
    """One epoch's result: per-epoch metrics, and on the last epoch (``final``) the final ones
    (drift scores, hardware cost). ``metrics`` are plain floats; ``info`` strings (placement,
    device). A trial is *trained* when its last report is final (ASHA stopped it otherwise).

    It crosses the Ray boundary once each way: :meth:`as_result` at ``tune.report`` on the worker,
    :meth:`from_result` on the driver (callbacks, searcher, the search's summary)."""

    epoch: int
    metrics: dict[str, float]
    info: dict[str, str] = field(default_factory=dict)
    final: bool = False

    def as_result(self) -> dict[str, Any]:
        """Ray's result dict (``tune.report``'s first argument)."""
        return {**self.metrics, **self.info, "epoch": self.epoch, "final": self.final}

    @classmethod
    def from_result(cls, result: Mapping[str, Any] | None) -> EpochReport:
        """The report back from a result dict Ray hands the driver (Ray's own keys left out);
        an empty report (epoch 0, not final) for a trial that reported nothing."""
        result = result or {}
        metrics = {k: float(v) for k, v in result.items()
                   if k not in _not_metrics() and isinstance(v, (int, float)) and not isinstance(v, bool)}
        info = {k: str(result[k]) for k in INFO_KEYS if k in result}
        return cls(int(result.get("epoch", 0)), metrics, info, bool(result.get("final", False)))


@functools.cache
def _not_metrics() -> frozenset[str]:
    """What Ray adds to every result, and the report's own fields that are not metrics (imported
    when first needed: only the driver reads results, and ``ray.tune`` is a heavy import)."""
    from ray.tune import result as tune_result

    return frozenset({*tune_result.AUTO_RESULT_KEYS, tune_result.DONE, tune_result.TRIAL_ID,
                      tune_result.EXPERIMENT_TAG, tune_result.SHOULD_CHECKPOINT, *INFO_KEYS, "epoch", "final"})


class Reporter(Protocol):
    """Where an evaluator sends its reports (Ray Tune in a search; a list in tests)."""

    def checkpoint(self) -> Path | None:
        """The folder of the last checkpoint of this trial (after a crash or resume), or None."""

    def report(self, report: EpochReport, checkpoint_dir: Path) -> None:
        """Send one epoch's report with the checkpoint written to ``checkpoint_dir``."""


class Evaluator(Protocol):
    def run(self, request: TrialRequest, cfg: Any, reporter: Reporter) -> None:
        """Evaluate ``request`` epoch by epoch under the search config ``cfg``; raise to fail the trial."""


# -- the real evaluator -------------------------------------------------------------------------
class TrainingEvaluator:
    """Hardware-aware training, then the drift evaluation on the last epoch."""

    def run(self, request: TrialRequest, cfg: Any, reporter: Reporter) -> None:
        from trainers.data import load_samples, split_by_image
        from trainers.train import Trainer

        started = time.perf_counter()
        # threads = this trial's CPU share; asked for a GPU: prefer CUDA (warns once if the node has none)
        wants_gpu = cfg.resources.gpus_per_trial > 0 and cfg.train.device == "auto"
        train_cfg = replace(cfg.trial_train, num_threads=max(1, int(cfg.resources.cpus_per_trial)),
                            device="cuda" if wants_gpu else cfg.train.device)
        samples = load_samples(cfg.data, channels=train_cfg.channels, seed=cfg.seed)
        train, val = split_by_image(samples, cfg.val_fraction, cfg.seed)
        trainer = Trainer(request.spec, train, val, train_cfg)
        resume = reporter.checkpoint()
        if resume is not None:
            trainer.load(resume / CHECKPOINT_FILE)
        cost = cfg.nasseg_space().cost(request.spec)
        info = {**_placement(), "device": str(trainer.device)}
        static = {**cost, "started_at": time.time()}

        def on_epoch(metrics: dict[str, float], t: Trainer) -> None:
            values = {**metrics, **static}
            last = t.epoch == train_cfg.epochs
            if last:  # the last epoch's report carries the tuned post-processing and the drift evaluation
                if train_cfg.tune_postprocess:
                    values.update(t.tune_postprocess())
                values.update(t.drift_evaluation())
            values["trial_time_s"] = time.perf_counter() - started  # this process's own time
            with tempfile.TemporaryDirectory() as d:
                t.save(Path(d) / CHECKPOINT_FILE)
                reporter.report(EpochReport(t.epoch, values, info, final=last), Path(d))

        trainer.fit(on_epoch=on_epoch)


class TableEvaluator:
    """Replays recorded results: the trial reports the table's epochs (up to ``train.epochs``)
    at once, with a tiny checkpoint, so ASHA, resume and tracking run exactly as in a search."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = read_table(self.path)

    def run(self, request: TrialRequest, cfg: Any, reporter: Reporter) -> None:
        row = self.rows.get(network_signature(request.spec))
        if row is None:
            raise NotInTableError(f"network not in the results table {self.path.name} ({request.spec.to_json()[:80]}...)")
        epochs = row.epochs[:cfg.train.epochs]
        if len(epochs) < cfg.train.epochs:
            raise NotInTableError(f"the results table {self.path.name} holds {len(row.epochs)} epochs of this network, "
                            f"train.epochs asks {cfg.train.epochs}")
        if cfg.scheduler.enabled and any(cfg.epoch_signal not in e for e in epochs):
            raise NotInTableError(f"the results table {self.path.name} has no per-epoch {cfg.epoch_signal} for this "
                                  f"network (ASHA's signal for objective {cfg.primary_objective}); replay it with "
                                  f"scheduler.enabled: false or another objective")
        resume = reporter.checkpoint()
        done = json.loads((resume / TABLE_CHECKPOINT_FILE).read_text())["epoch"] if resume else 0
        cost = cfg.nasseg_space().cost(request.spec)
        static = {**cost, "started_at": time.time(), "trial_time_s": 0.0}
        for epoch in range(done + 1, len(epochs) + 1):
            last = epoch == len(epochs)
            values = {**epochs[epoch - 1], **static, **(row.final if last else {})}
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / TABLE_CHECKPOINT_FILE).write_text(json.dumps({"epoch": epoch}))
                reporter.report(EpochReport(epoch, values, {"device": "table"}, final=last), Path(d))


@functools.lru_cache(maxsize=4)
def _table_evaluator(path: str, mtime_ns: int) -> TableEvaluator:
    return TableEvaluator(path)  # parsed once per worker process (Ray reuses workers across trials)


def make_evaluator(spec: str) -> Evaluator:
    """``training`` or ``table:PATH`` (validated by ``SearchConfig``)."""
    if spec == "training":
        return TrainingEvaluator()
    if spec.startswith("table:"):
        path = spec[len("table:"):]
        return _table_evaluator(path, Path(path).stat().st_mtime_ns)
    raise ValueError(f"evaluator: expected 'training' or 'table:PATH', got {spec!r}")


def _placement() -> dict[str, str]:
    """Where this trial runs: node ip and id, and the GPU ids Ray assigned (empty on CPU)."""
    import ray

    ctx = ray.get_runtime_context()
    return {"node_ip": ray.util.get_node_ip_address(), "node_id": ctx.get_node_id(),
            "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids())}
