"""Search orchestration overhead and parallel scaling, measured with the real CLI in one run.

Two searches of the same ``--trials`` fixed-length analog trials (ASHA off, no constraints) on
synthetic data, one with 1 concurrent trial and one with 2, each in a fresh folder (own Ray, own
SQLite MLflow). Reported:
- overhead (1 concurrent): (search wall time - sum of the trials' own time) / wall time, where a
  trial's own time is measured inside the trial process (``trial_time_s``: data, build, training,
  drift evaluation). Everything else (Ray start, scheduling, checkpoints, MLflow, model
  registration, report) is overhead.
- scaling: throughput (trials per second of wall time) with 2 concurrent trials / with 1.

    .venv/bin/python benchmarks/bench_search.py --write
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """
name: bench
data: synthetic:12
trials: {trials}
seed: 0
objectives: [dice_1d]
scheduler: {{enabled: false}}
train: {{epochs: 2, steps_per_epoch: {steps}, batch_size: 8, patch_size: 48, drift_reps: 1}}
prescreen: {{candidates: 1, min_observations: 100}}
resources: {{cpus_per_trial: 1, max_concurrent_trials: {conc}, retries: 0}}
"""


def run(trials: int, steps: int, conc: int) -> dict:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "c.yaml").write_text(CONFIG.format(trials=trials, steps=steps, conc=conc))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "search", "c.yaml"], cwd=tmp, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
        exp = client.get_experiment_by_name("bench")
        runs = client.search_runs([exp.experiment_id], "tags.`nasseg.stage` = 'trained'")
        own = [r.data.metrics["trial_time_s"] for r in runs]
    return {"wall": wall, "own": own}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--steps", type=int, default=40, help="steps per epoch (sets the trial length)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    one = run(args.trials, args.steps, 1)
    two = run(args.trials, args.steps, 2)
    overhead = (one["wall"] - sum(one["own"])) / one["wall"]
    scaling = (args.trials / two["wall"]) / (args.trials / one["wall"])
    mean_trial = sum(one["own"]) / len(one["own"])
    cmd = f"python benchmarks/bench_search.py --trials {args.trials} --steps {args.steps}"
    table = "\n".join([
        "## bench_search: orchestration overhead and parallel scaling", "",
        f"Command: `{cmd}` on {platform.machine()}, {os.cpu_count()} cores; {args.trials} analog trials of "
        f"{mean_trial:.1f} s each (own time, mean), ASHA off.", "",
        "| measure | value | target |", "|---|---|---|",
        f"| search wall time, 1 concurrent trial | {one['wall']:.1f} s | |",
        f"| sum of the trials' own time | {sum(one['own']):.1f} s | |",
        f"| orchestration overhead (1 concurrent) | {100 * overhead:.1f} % | < 10 % |",
        f"| search wall time, 2 concurrent trials | {two['wall']:.1f} s | |",
        f"| throughput 2 concurrent / 1 concurrent | {scaling:.2f}x | >= 1.8x |", ""])
    print(table)
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_search", table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
