"""How should final training train? Learning-rate schedule, on the demo's final budget.

Trains the networks a demo search chose for final training (``--search-dir``: the ``final``
trainings found there, else ``--specs`` as ArchSpec JSON lines) from scratch with
``configs/demo.yaml``'s final budget under each variant of ``--variants`` (``constant`` or
``cosine`` learning rate; ``--seeds`` training seeds), and scores the validation images digitally
and after 1 day and 1 year of drift over ``--draws`` programming draws. Each finished run is
appended to ``--out`` and skipped on a rerun.

    .venv/bin/python benchmarks/bench_final.py --search-dir nasseg_runs/demo --write
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

REPORTED = ("dice_digital", "dice_1d", "dice_1y", "ap50_1d", "ap50_1y", "map_dsb_worst")


def specs_of(search_dir: Path) -> list[str]:
    from trainers.tensor_files import load_tensors

    found = []
    for ckpt in sorted((search_dir / "final").glob("run_final_trial_*/checkpoint_*/trainer.pt")):
        spec = load_tensors(ckpt, "trainer checkpoint")["spec"]
        if spec not in found:
            found.append(spec)
    return found


def run(spec_json: str, variant: str, seed: int, args) -> dict:
    from orchestrator.config import SearchConfig
    from search_spaces import ArchSpec
    from trainers.data import load_samples, split_by_image
    from trainers.train import Trainer

    demo = SearchConfig.from_yaml(ROOT / "configs" / "demo.yaml")
    train, val = split_by_image(load_samples(demo.data, seed=demo.seed), demo.val_fraction, demo.seed)
    cfg = replace(demo.final_train, lr_schedule=variant, seed=seed, num_threads=args.threads, drift_reps=args.draws,
                  drift_times=(86400.0, 30 * 86400.0, 365 * 86400.0))
    start = time.perf_counter()
    trainer = Trainer(ArchSpec.from_json(spec_json), train, val, cfg)
    trainer.fit()
    trainer.tune_postprocess()
    scores = trainer.drift_evaluation()
    out = {k: scores[k] for k in REPORTED}
    out.update(arch=spec_json, variant=variant, seed=seed, seconds=time.perf_counter() - start,
               dice_1y_sem=scores["dice_1y_sem"], ap50_1y_sem=scores["ap50_1y_sem"])
    return out


def main() -> None:
    from benchmarks.bench_strategies import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--search-dir", help="a finished demo search's folder (<storage>/<name>)")
    ap.add_argument("--specs", help="ArchSpec JSON lines instead")
    ap.add_argument("--variants", nargs="+", default=["constant", "cosine"])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "final_training.jsonl"))
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    specs = specs_of(Path(args.search_dir)) if args.search_dir else \
        [line for line in Path(args.specs).read_text().splitlines() if line.strip()]
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    for spec in specs:
        for seed in parse_seeds(args.seeds):
            for variant in args.variants:
                if any(r["arch"] == spec and r["variant"] == variant and r["seed"] == seed for r in rows):
                    continue
                r = run(spec, variant, seed, args)
                rows.append(r)
                with out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"  {variant:8s} seed {seed}: " + ", ".join(f"{m} {r[m]:.3f}" for m in REPORTED)
                      + f", {r['seconds']:.0f} s", flush=True)
    table = {}
    for variant in args.variants:
        rs = [r for r in rows if r["variant"] == variant]
        if rs:
            table[variant] = {m: (float(np.median([r[m] for r in rs])), float(np.min([r[m] for r in rs])),
                                  float(np.max([r[m] for r in rs]))) for m in REPORTED}
            table[variant]["runs"] = len(rs)
    print(json.dumps(table, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        lines = ["## bench_final: how final training trains", "",
                 "Command: `python benchmarks/bench_final.py --search-dir <storage>/demo --write` (results kept in "
                 "`benchmarks/final_training.jsonl`). The networks a demo search retrained, trained again with the "
                 f"demo's final budget per learning-rate schedule, {args.draws} programming draws; median (min - max) "
                 "over networks and seeds.", "",
                 "| schedule | runs | " + " | ".join(REPORTED) + " |", "|---|---|" + "---|" * len(REPORTED)]
        for variant, t in table.items():
            lines.append(f"| {variant} | {t['runs']} | " + " | ".join(
                f"{t[m][0]:.3f} ({t[m][1]:.3f} - {t[m][2]:.3f})" for m in REPORTED) + " |")
        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_final", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
