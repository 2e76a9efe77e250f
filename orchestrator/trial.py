"""The Ray Tune trainable: one trial = one spec trained hardware-aware, then judged under drift.

Runs on a worker with its CPU/GPU share. Reports per-epoch metrics with a checkpoint (so ASHA can
stop it and a crashed or resumed trial continues from its last epoch); the last epoch's report
also carries the drift evaluation and the static hardware cost.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import tune

from search_spaces import ArchSpec, hardware_cost
from trainers.data import load_samples, split_by_image
from trainers.train import Trainer

from .config import SearchConfig

CHECKPOINT_FILE = "trainer.pt"
FAIL_ENV = "NASSEG_FAIL_TRIAL_IF"  # test hook: fail a trial whose arch JSON contains this text


def run_trial(config: dict[str, Any], search: dict[str, Any]) -> None:
    """Ray Tune function trainable. ``config``: the searcher's suggestion; ``search``: SearchConfig dict."""
    started = time.perf_counter()
    cfg = SearchConfig.from_dict(search)
    spec = ArchSpec.from_json(config["arch"])
    marker = os.environ.get(FAIL_ENV)
    if marker and marker in config["arch"]:
        raise RuntimeError(f"injected failure ({FAIL_ENV}={marker})")
    # threads = this trial's CPU share; asked for a GPU: prefer CUDA (warns once if the node has none)
    wants_gpu = cfg.resources.gpus_per_trial > 0 and cfg.train.device == "auto"
    train_cfg = replace(cfg.train, num_threads=max(1, int(cfg.resources.cpus_per_trial)),
                        device="cuda" if wants_gpu else cfg.train.device)
    samples = load_samples(cfg.data, channels=train_cfg.channels, seed=cfg.seed)
    train, val = split_by_image(samples, cfg.val_fraction, cfg.seed)
    trainer = Trainer(spec, train, val, train_cfg)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trainer.load(Path(d) / CHECKPOINT_FILE)
    cost = hardware_cost(spec, train_cfg.channels, 1, train_cfg.hwa.tile_size).as_dict()
    static = {**cost, **_placement(), "device": str(trainer.device), "started_at": time.time()}

    def on_epoch(metrics: dict[str, float], t: Trainer) -> None:
        report = {**metrics, **static}
        if t.epoch == train_cfg.epochs:  # last epoch: add the drift evaluation to this report
            report.update(t.drift_evaluation())
        report["trial_time_s"] = time.perf_counter() - started  # this process's own time, for benchmarks
        with tempfile.TemporaryDirectory() as d:
            t.save(Path(d) / CHECKPOINT_FILE)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(d))

    trainer.fit(on_epoch=on_epoch)


def _placement() -> dict[str, str]:
    """Where this trial runs: node ip and id, and the GPU ids Ray assigned (empty on CPU)."""
    import ray

    ctx = ray.get_runtime_context()
    return {"node_ip": ray.util.get_node_ip_address(), "node_id": ctx.get_node_id(),
            "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids())}
