"""Which primary objective finds the networks that are still good a year after programming?

Runs the demo search (``configs/demo.yaml``, final training off so that only the search's choice
is compared) once per objective of ``--objectives`` and seed of ``--seeds`` (the seed changes the
data, the split, the sampler and the training), and reports for the network each search would
register (best by its objective on the Pareto front): AP@0.5, DSB mAP and Dice one year after
programming, next to the best AP@0.5 at one year among all networks that search trained. Median
[quartiles] over seeds. Each finished search is appended to ``--out`` (JSON lines) and skipped on a
rerun, so the benchmark resumes where it stopped.

    .venv/bin/python benchmarks/bench_objectives.py --seeds 0-2 --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPORTED = ("ap50_1y", "map_dsb_1y", "dice_1y", "ap50_1d", "dice_1d")


def run(objective: str, seed: int, work: Path) -> dict:
    from mlflow.tracking import MlflowClient

    cfg = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    cfg.update(name=f"obj-{objective}-{seed}", seed=seed, objectives=[objective, "tiles"])
    cfg["final"] = {"top_k": 0}
    folder = work / cfg["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "search", "c.yaml"], cwd=folder,
                          capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"{cfg['name']}: exit {proc.returncode}: {proc.stderr[-500:]}")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(cfg["name"])
    parent = client.search_runs([exp.experiment_id], "tags.`nasseg.role` = 'search'")[0]
    best = parent.data.tags["nasseg.best_trial"]
    trained = client.search_runs([exp.experiment_id],
                                 "tags.`nasseg.role` = 'trial' and tags.`nasseg.stage` = 'trained'")
    chosen = next(r for r in trained if r.data.tags["nasseg.trial_id"] == best)
    out = {"objective": objective, "seed": seed, "trained": len(trained),
           "oracle_ap50_1y": max(r.data.metrics["ap50_1y"] for r in trained)}
    out.update({m: chosen.data.metrics[m] for m in REPORTED})
    return out


def quartiles(values: list[float]) -> str:
    q = np.percentile(values, [25, 50, 75])
    return f"{q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]"


def main() -> None:
    from benchmarks.bench_strategies import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objectives", nargs="+", default=["dice_1d", "map_dsb_worst"])
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "objectives.jsonl"))
    ap.add_argument("--write", action="store_true", help="table into benchmarks/RESULTS.md")
    args = ap.parse_args()
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    seeds = parse_seeds(args.seeds)
    with tempfile.TemporaryDirectory() as work:
        for seed in seeds:
            for objective in args.objectives:
                if any(r["objective"] == objective and r["seed"] == seed for r in rows):
                    continue
                r = run(objective, seed, Path(work))
                rows.append(r)
                with out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"  {objective:14s} seed {seed}: " + ", ".join(f"{m} {r[m]:.3f}" for m in REPORTED)
                      + f" (best ap50_1y of the search {r['oracle_ap50_1y']:.3f})", flush=True)
    table = {o: {m: quartiles([r[m] for r in rows if r["objective"] == o and r["seed"] in seeds])
                 for m in (*REPORTED, "oracle_ap50_1y")} for o in args.objectives}
    print(json.dumps(table, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        lines = [f"## bench_objectives (seeds {args.seeds}): which objective finds networks that last a year", "",
                 f"Command: `python benchmarks/bench_objectives.py --seeds {args.seeds} --write` (results kept in "
                 "`benchmarks/objectives.jsonl`). The demo search per objective and seed (final training off), "
                 "scores of the network it would register, median [quartiles] over the seeds.", "",
                 "| objective | AP@0.5 1 y | mAP 1 y | Dice 1 y | AP@0.5 1 d | Dice 1 d | best AP@0.5 1 y of the search |",
                 "|---|---|---|---|---|---|---|"]
        for o, t in table.items():
            lines.append(f"| `{o}` | " + " | ".join(t[m] for m in (*REPORTED, "oracle_ap50_1y")) + " |")
        write_section(ROOT / "benchmarks" / "RESULTS.md", f"bench_objectives {args.seeds}", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
