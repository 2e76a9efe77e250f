"""What does measuring the objective after drift every epoch (ASHA's signal) cost?

Trains the demo spec with ``configs/demo.yaml``'s budget and times, per epoch, the training steps,
the undrifted validation (``val_dice`` & co.) and the per-epoch objective for ``dice_1d`` (one
programming draw, one drift time) and ``map_dsb_worst`` (one draw, every drift time >= 1 h).
Reports medians over the epochs and the overhead relative to the epoch without it.

    .venv/bin/python benchmarks/bench_epoch_signal.py --write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from benchmarks.bench_train import DEMO_SPEC, write_section
    from orchestrator.config import SearchConfig
    from search_spaces import ArchSpec
    from trainers.data import load_samples, split_by_image
    from trainers.train import Trainer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    demo = SearchConfig.from_yaml(ROOT / "configs" / "demo.yaml")
    train, val = split_by_image(load_samples(demo.data, seed=demo.seed), demo.val_fraction, demo.seed)
    times: dict[str, list[float]] = {"train": [], "validate": [], "dice_1d": [], "map_dsb_worst": []}
    trainer = Trainer(ArchSpec.from_params(DEMO_SPEC), train, val, replace(demo.train, num_threads=args.threads))
    for _ in range(demo.train.epochs):
        start = time.perf_counter()
        trainer.train_epoch()
        times["train"].append(time.perf_counter() - start)
        start = time.perf_counter()
        trainer.evaluate()
        times["validate"].append(time.perf_counter() - start)
        for objective in ("dice_1d", "map_dsb_worst"):
            trainer.cfg = replace(trainer.cfg, epoch_objective=objective)
            start = time.perf_counter()
            trainer.epoch_objective_value()
            times[objective].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    base = med["train"] + med["validate"]
    out = {"seconds": med, "overhead": {o: med[o] / base for o in ("dice_1d", "map_dsb_worst")},
           "val_images": len(val), "steps_per_epoch": demo.train.steps_per_epoch}
    print(json.dumps(out, indent=1))
    if args.write:
        lines = ["## bench_epoch_signal: the per-epoch objective after drift", "",
                 "Command: `python benchmarks/bench_epoch_signal.py --write`. Demo spec and budget "
                 f"({demo.train.steps_per_epoch} steps per epoch, {len(val)} validation images), {args.threads} thread, "
                 "median seconds per epoch.", "",
                 "| training steps | undrifted validation | + `val_dice_1d` | + `val_map_dsb_worst` |", "|---|---|---|---|",
                 f"| {med['train']:.2f} | {med['validate']:.2f} | {med['dice_1d']:.2f} "
                 f"(+{100 * out['overhead']['dice_1d']:.0f} % of the epoch) | {med['map_dsb_worst']:.2f} "
                 f"(+{100 * out['overhead']['map_dsb_worst']:.0f} %) |"]
        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_epoch_signal", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
