"""Does the built-in data make drift cost what it costs on real images?

Trains the same networks (``--networks`` feasible uniform draws of ``configs/demo.yaml``'s space,
plus the demo spec of ``bench_train.py``) with the demo's budget on each data kind of ``--data``
(default: ``synthetic``, the dim fluorescence with real contrast statistics, and
``synthetic-bright``, the bright nuclei the generator made before), and reports per data kind the
Dice and AP@0.5 of the digital reference, 1 s, 1 day and 1 year after programming, and the loss
between 1 s and 1 year (quartiles over the networks). On held-out real DSB2018 fluorescence tiles
the demo's networks lost 8-42 Dice points in a year (the maintainers' measurement, not made here).

Each finished (data, network) pair is appended to ``--out`` (JSON lines) at once, and a rerun
skips the pairs already there: the run resumes where it stopped.

    .venv/bin/python benchmarks/bench_data_drift.py --networks 6 --write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TIMES = ("digital", "1s", "1d", "1y")
METRICS = ("dice", "ap50", "map_dsb")


def networks(n: int, seed: int = 0) -> list:
    """The demo spec and ``n`` feasible uniform draws of the demo config's space."""
    from benchmarks.bench_train import DEMO_SPEC
    from orchestrator.config import SearchConfig
    from search_spaces import ArchSpec

    space = SearchConfig.from_yaml(ROOT / "configs" / "demo.yaml").nasseg_space()
    rng = np.random.default_rng(seed)
    specs = [ArchSpec.from_params(DEMO_SPEC)]
    while len(specs) < n + 1:
        spec = space.random(rng)
        if not space.violations(spec) and spec not in specs:
            specs.append(spec)
    return specs


def run(spec, data: str, args) -> dict:
    from orchestrator.config import SearchConfig
    from trainers.data import load_samples, split_by_image
    from trainers.train import Trainer

    demo = SearchConfig.from_yaml(ROOT / "configs" / "demo.yaml", {"data": data})
    samples = load_samples(demo.data, seed=demo.seed)
    train, val = split_by_image(samples, demo.val_fraction, demo.seed)
    from dataclasses import replace

    cfg = replace(demo.train, num_threads=args.threads, drift_reps=args.drift_reps,
                  drift_times=(1.0, 86400.0, 365 * 86400.0))
    start = time.perf_counter()
    trainer = Trainer(spec, train, val, cfg)
    trainer.fit()
    trainer.tune_postprocess()
    scores = trainer.drift_evaluation()
    out = {f"{m}_{t}": scores[f"{m}_{t}"] for m in METRICS for t in TIMES}
    out.update(data=data, arch=spec.to_json(), seconds=time.perf_counter() - start)
    return out


def quartiles(values: list[float]) -> str:
    q = np.percentile(values, [25, 50, 75])
    return f"{q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]"


def summary(rows: list[dict], data_kinds: list[str]) -> dict:
    out = {}
    for data in data_kinds:
        rs = [r for r in rows if r["data"] == data]
        if not rs:
            continue
        s = {f"{m}_{t}": quartiles([r[f"{m}_{t}"] for r in rs]) for m in METRICS for t in TIMES}
        s["dice_loss_1s_1y"] = quartiles([r["dice_1s"] - r["dice_1y"] for r in rs])
        s["dice_loss_1s_1y_max"] = f"{max(r['dice_1s'] - r['dice_1y'] for r in rs):.3f}"
        s["ap50_loss_1s_1y"] = quartiles([r["ap50_1s"] - r["ap50_1y"] for r in rs])
        s["dice_drop_1d"] = quartiles([r["dice_digital"] - r["dice_1d"] for r in rs])
        s["networks"] = len(rs)
        out[data] = s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["synthetic:16", "synthetic-bright:16"])
    ap.add_argument("--networks", type=int, default=6, help="uniform draws besides the demo spec")
    ap.add_argument("--drift-reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "data_drift.jsonl"))
    ap.add_argument("--write", action="store_true", help="table into benchmarks/RESULTS.md")
    args = ap.parse_args()
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    done = {(r["data"], r["arch"]) for r in rows}
    for spec in networks(args.networks):
        for data in args.data:
            if (data, spec.to_json()) in done:
                continue
            r = run(spec, data, args)
            rows.append(r)
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"  {data:22s} {len(rows):3d}: dice 1s {r['dice_1s']:.3f} 1y {r['dice_1y']:.3f} "
                  f"digital {r['dice_digital']:.3f}, ap50 1y {r['ap50_1y']:.3f}, {r['seconds']:.0f} s", flush=True)
    result = summary(rows, args.data)
    print(json.dumps(result, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_data_drift", results_text(result, args))


def results_text(result: dict, args) -> str:
    lines = ["## bench_data_drift: how much a year of drift costs on the built-in data", "",
             f"Command: `python benchmarks/bench_data_drift.py --networks {args.networks} --write` (results kept in "
             "`benchmarks/data_drift.jsonl`). The demo spec and feasible uniform draws of the demo space, each "
             "trained with `configs/demo.yaml`'s budget on each data kind, post-processing tuned, "
             f"{args.drift_reps} programming draws. Median [quartiles] over the networks. `digital`: the digital "
             "reference (the analog network's function without noise, quantisation or drift).", "",
             "| data | networks | Dice digital | Dice 1 s | Dice 1 d | Dice 1 y | Dice lost 1 s -> 1 y (max) | "
             "AP@0.5 1 y | AP@0.5 lost 1 s -> 1 y |", "|---|---|---|---|---|---|---|---|---|"]
    for data, s in result.items():
        lines.append(f"| `{data}` | {s['networks']} | {s['dice_digital']} | {s['dice_1s']} | {s['dice_1d']} | "
                     f"{s['dice_1y']} | {s['dice_loss_1s_1y']} ({s['dice_loss_1s_1y_max']}) | {s['ap50_1y']} | "
                     f"{s['ap50_loss_1s_1y']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
