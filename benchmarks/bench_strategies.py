"""Does nasseg's search strategy beat random search? Measured on AnalogNAS-Bench (NB201 cells).

The production searcher (``PrescreenSearcher``: Optuna TPE proposals, repeat replacement, XGBoost
surrogate prescreening) is driven in-process on the NB201 space, with each "trial" looked up in
the AnalogNAS-Bench table (analog CIFAR-10 accuracy 1 day after programming, the mean over its
noise draws). Strategies, each for ``--budget`` evaluated networks and ``--seeds`` seeds:

- ``random``: uniform draws without repetition;
- ``tpe``: the searcher with one candidate per trial (no prescreening);
- ``tpe+prescreen``: the searcher drawing ``--candidates`` feasible candidates per trial once the
  surrogate has 10 observations, training only the best-ranked.

Regret after n evaluations = best accuracy in the whole table - best found so far (percentage
points). Writes ``benchmarks/strategies_nb201.png`` (mean regret with its standard error) and,
with ``--write``, a table into ``benchmarks/RESULTS.md`` (section "bench_strategies").

    .venv/bin/python benchmarks/bench_strategies.py --seeds 10 --budget 100 --write
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OBJECTIVE = "analog_1d"


def run_random(table: dict, budget: int, seed: int) -> list[float]:
    keys = list(table)
    order = np.random.default_rng(seed).permutation(len(keys))[:budget]
    return [table[keys[i]][OBJECTIVE] for i in order]


def run_searcher(table: dict, budget: int, seed: int, candidates: int) -> list[float]:
    from orchestrator.config import SearchConfig
    from orchestrator.prescreen import PrescreenSearcher
    from search_spaces.nb201 import NB201Space

    cfg = SearchConfig.from_dict({"name": "nb201", "trials": budget, "seed": seed, "objectives": ["dice_1d"],
                                  "prescreen": {"candidates": candidates, "min_observations": 10}})
    searcher = PrescreenSearcher(cfg, space=NB201Space())
    found = []
    for i in range(budget):
        config = searcher.suggest(f"t{i}")
        if not isinstance(config, dict):  # FINISHED: the space ran out (not with 15,625 networks)
            break
        arch = searcher.space.from_json(config["arch"])
        value = table[arch][OBJECTIVE]
        searcher.on_trial_complete(f"t{i}", {"dice_1d": value / 100.0})
        found.append(value)
    return found


def regret_curves(best: float, runs: list[list[float]], budget: int) -> np.ndarray:
    out = np.full((len(runs), budget), np.nan)
    for r, values in enumerate(runs):
        running = np.maximum.accumulate(values)
        out[r, :len(running)] = best - running
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from search_spaces.nb201 import load_analog_nasbench

    table = load_analog_nasbench()
    best = max(r[OBJECTIVE] for r in table.values())
    strategies = {
        "random": lambda s: run_random(table, args.budget, s),
        "tpe": lambda s: run_searcher(table, args.budget, s, candidates=1),
        f"tpe+prescreen ({args.candidates} candidates)": lambda s: run_searcher(table, args.budget, s, args.candidates),
    }
    curves, seconds = {}, {}
    for name, run in strategies.items():
        start = time.perf_counter()
        runs = []
        for seed in range(args.seeds):
            runs.append(run(seed))
            print(f"  {name} seed {seed}: best {max(runs[-1]):.2f} after {len(runs[-1])}", flush=True)
        seconds[name] = time.perf_counter() - start
        curves[name] = regret_curves(best, runs, args.budget)
    plot(curves, args, best, ROOT / "benchmarks" / "strategies_nb201.png")
    text = table_text(curves, seconds, args, best, len(table))
    print(text)
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_strategies", text)


def table_text(curves: dict, seconds: dict, args, best: float, n: int) -> str:
    marks = [m for m in (10, 25, 50, 100, 200) if m <= args.budget]
    lines = ["## bench_strategies: search strategy vs random search on AnalogNAS-Bench (NB201)", "",
             f"{n} NB201 networks, objective: analog CIFAR-10 accuracy 1 day after programming (best in the table "
             f"{best:.2f} %). Regret = best in table - best found, in percentage points, mean ± standard error over "
             f"{args.seeds} seeds; lower is better. Plot: `benchmarks/strategies_nb201.png`.", "",
             "| strategy | " + " | ".join(f"regret after {m}" for m in marks) + " | seconds (all seeds) |",
             "|---|" + "---|" * len(marks) + "---|"]
    for name, c in curves.items():
        cells = []
        for m in marks:
            col = c[:, m - 1]
            cells.append(f"{np.nanmean(col):.2f} ± {np.nanstd(col) / np.sqrt(np.sum(~np.isnan(col))):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds[name]:.0f} |")
    return "\n".join(lines) + "\n"


def plot(curves: dict, args, best: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = np.arange(1, args.budget + 1)
    for name, c in curves.items():
        mean = np.nanmean(c, axis=0)
        se = np.nanstd(c, axis=0) / np.sqrt(np.sum(~np.isnan(c), axis=0))
        ax.plot(x, mean, label=name)
        ax.fill_between(x, mean - se, mean + se, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("networks evaluated")
    ax.set_ylabel("regret (pp of 1-day analog accuracy)")
    ax.set_title(f"AnalogNAS-Bench (NB201), {args.seeds} seeds; best in table {best:.2f} %")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
