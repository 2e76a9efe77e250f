"""Does nasseg's search strategy beat the alternatives? Replayed on AnalogNAS-Bench (NB201 cells).

Each strategy searches the 15,625 NAS-Bench-201 cells for ``--budget`` evaluations per seed;
an evaluation looks the network up in the AnalogNAS-Bench table (``--metric``, named as the
package names it; default ``analog_drift_86400``, CIFAR-10 accuracy one day after programming).
Nothing repeats an evaluated network. Strategies:

- ``random``: uniform draws;
- ``tpe``: nasseg's searcher (``PrescreenSearcher``) with ``sampler: tpe`` (Optuna TPE, repeats
  replaced by random draws) and one candidate per trial, i.e. without prescreening;
- ``tpe+prescreen``: the same searcher drawing ``--candidates`` candidates per trial once its
  XGBoost surrogate has 10 observations, evaluating only the best-ranked (nasseg's default until
  this benchmark showed the GP variants ahead);
- ``evolution``: regularized evolution (Real et al. 2019; AnalogNAS's own strategy): population
  20, tournament of 5, one edge mutated, oldest removed;
- ``gp``: Optuna's ``GPSampler`` (Gaussian-process Bayesian optimisation over the 6 categorical
  edges), repeats replaced by uniform draws as in nasseg's searcher;
- ``gp-encoded``: nasseg's searcher with ``sampler: gp`` (``orchestrator.encoded_gp``: a GP over
  the space's encoding, expected improvement over uniform draws and mutations of the best), one
  candidate per trial. Unlike Optuna's GPSampler it also models NASSegNet's conditional stages;
- ``gp-encoded+prescreen``: the same with ``--candidates`` GP proposals per trial, ranked by the
  XGBoost surrogate (nasseg's default: ``sampler: gp``, ``prescreen.candidates: 4``).

Seeds run in ``--workers`` processes (default: one per CPU); ``seconds`` is the CPU time a
strategy spent over all seeds (the table lookups cost nothing: it is the searcher's own time).

Reported per strategy (median and quartiles over seeds): evaluations to reach the table's top 1 %
(a run that never does counts as budget + 1) and regret (table best - best found, in points)
after 10/25/50/100 evaluations; for the surrogate, Kendall tau of its predictions on 1,000
networks it has not seen, after 20/50/100 observations. ``--write`` saves the regret plot
``benchmarks/strategies_nb201.png`` and the table into ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/bench_strategies.py --benchmark analognas --seeds 0-24 --budget 100 --write
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = "gp-encoded+prescreen"
MARKS = (10, 25, 50, 100)


def run_random(table, metric, budget, seed, **_):
    keys = list(table)
    return [table[keys[i]][metric] for i in np.random.default_rng(seed).permutation(len(keys))[:budget]], {}


def run_evolution(table, metric, budget, seed, population=20, sample=5, **_):
    from search_spaces.nb201 import N_OPS, NB201Space

    rng, space = np.random.default_rng(seed), NB201Space()
    seen, found, pop = set(), [], []

    def evaluate(arch):
        seen.add(arch)
        found.append(table[arch][metric])
        pop.append((arch, found[-1]))

    while len(found) < min(population, budget):
        arch = space.random(rng)
        if arch not in seen:
            evaluate(arch)
    while len(found) < budget:
        contenders = [pop[i] for i in rng.choice(len(pop), size=min(sample, len(pop)), replace=False)]
        parent = max(contenders, key=lambda p: p[1])[0]
        for _ in range(100):  # a child never evaluated before
            child = list(parent)
            edge = int(rng.integers(len(child)))
            child[edge] = int(rng.choice([op for op in range(N_OPS) if op != child[edge]]))
            child = tuple(child)
            if child not in seen:
                break
            parent = child
        else:
            child = next(a for a in map(tuple, (space.random(rng) for _ in range(10_000))) if a not in seen)
        evaluate(child)
        pop.pop(0)  # regularized: the oldest dies
    return found, {}


def run_gp(table, metric, budget, seed, **_):
    import optuna

    from search_spaces.nb201 import NB201Space

    space, rng = NB201Space(), np.random.default_rng([seed, 1])
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GPSampler(seed=seed))
    seen, found = set(), []
    while len(found) < budget:
        trial = study.ask()
        arch = space.suggest(trial)
        if arch in seen:  # told as failed (ignored by the GP), replaced by an unseen uniform draw
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            while arch in seen:
                arch = space.random(rng)
            study.enqueue_trial(space.params(arch))
            trial = study.ask()
            arch = space.suggest(trial)
        seen.add(arch)
        found.append(table[arch][metric])
        study.tell(trial, found[-1])
    return found, {}


def run_searcher(table, metric, budget, seed, candidates=1, probe=None, sampler="tpe", **_):
    from orchestrator.config import SearchConfig
    from orchestrator.prescreen import PrescreenSearcher
    from search_spaces.nb201 import NB201Space

    cfg = SearchConfig.from_dict({"name": "nb201", "trials": budget, "seed": seed, "objectives": ["dice_1d"],
                                  "sampler": sampler,
                                  "prescreen": {"candidates": candidates, "min_observations": 10}})
    searcher = PrescreenSearcher(cfg, space=NB201Space())
    found, taus = [], {}
    for i in range(budget):
        config = searcher.suggest(f"t{i}")
        if not isinstance(config, dict):  # FINISHED (not with 15,625 networks)
            break
        arch = searcher.space.from_json(config["arch"])
        found.append(table[arch][metric])
        searcher.on_trial_complete(f"t{i}", {"dice_1d": found[-1] / 100.0})
        if probe is not None and len(found) in (20, 50, 100) and searcher.surrogate.ready:
            unseen = [a for a in probe if searcher.space.to_json(a) not in set(searcher.spec_of.values())][:1000]
            from scipy.stats import kendalltau

            taus[len(found)] = float(kendalltau(searcher.surrogate.predict(unseen),
                                                [table[a][metric] for a in unseen]).statistic)
    return found, taus


_WORKER: dict = {}


def _init_worker(strategies: dict, metric: str, budget: int) -> None:
    """Each worker process reads the table once, and computes on one thread (the workers are
    the parallelism: torch's threads in Optuna's GP sampler and BLAS threads in scikit-learn's GP
    would fight over the cores; measured: 5-10x slower GP fits with 2 workers x 2 BLAS threads)."""
    import optuna
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    _WORKER["blas"] = threadpool_limits(1)  # held for the worker's life
    from search_spaces.nb201 import load_analog_nasbench

    logging.getLogger("optuna").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _WORKER.update(table=load_analog_nasbench(), strategies=strategies, metric=metric, budget=budget)


def _run_job(job: tuple[str, int]) -> tuple[list[float], dict, float]:
    name, seed = job
    spec = _WORKER["strategies"][name]
    start = time.process_time()
    found, tau = spec["fn"](_WORKER["table"], _WORKER["metric"], _WORKER["budget"], seed,
                            **{k: v for k, v in spec.items() if k != "fn"})
    return found, tau, time.process_time() - start


def summarise(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "q25": float(np.percentile(v, 25)), "q75": float(np.percentile(v, 75))}


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    from orchestrator.config import PrescreenConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="analognas", choices=["analognas"])
    ap.add_argument("--metric", default="analog_drift_86400")
    ap.add_argument("--seeds", default="0-24", help="A-B, inclusive")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=PrescreenConfig().candidates,
                    help="candidates per trial of the +prescreen strategies (default: nasseg's default)")
    ap.add_argument("--strategies", nargs="+", help="a subset of: random evolution gp gp-encoded "
                    "gp-encoded+prescreen tpe tpe+prescreen (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes running seeds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--write", action="store_true", help="plot + table into benchmarks/RESULTS.md")
    args = ap.parse_args()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from search_spaces.nb201 import METRICS, load_analog_nasbench

    if args.metric not in METRICS:
        sys.exit(f"bench_strategies: error: --metric {args.metric!r}: one of {', '.join(METRICS)}")
    table = load_analog_nasbench()
    values = np.array([r[args.metric] for r in table.values()])
    best, top1 = float(values.max()), float(np.percentile(values, 99))
    seeds = parse_seeds(args.seeds)
    probe = [tuple(a) for a in np.random.default_rng(12345).permutation(np.array(list(table)))[:1200]]
    strategies = {
        "random": dict(fn=run_random),
        "evolution": dict(fn=run_evolution),
        "gp": dict(fn=run_gp),
        "tpe": dict(fn=run_searcher, candidates=1),
        "gp-encoded": dict(fn=run_searcher, candidates=1, sampler="gp"),
        "gp-encoded+prescreen": dict(fn=run_searcher, candidates=args.candidates, sampler="gp", probe=probe),
        "tpe+prescreen": dict(fn=run_searcher, candidates=args.candidates, sampler="tpe", probe=probe),
    }
    assert DEFAULT in strategies
    if args.strategies:
        unknown = sorted(set(args.strategies) - set(strategies))
        if unknown:
            sys.exit(f"bench_strategies: error: --strategies: unknown {', '.join(unknown)}")
        strategies = {k: v for k, v in strategies.items() if k in args.strategies}
    out = {"metric": args.metric, "budget": args.budget, "seeds": seeds, "default": DEFAULT, "strategies": {},
           "table": {"networks": len(table), "best": best, "top1pct_threshold": top1}}
    jobs = [(name, seed) for name in strategies for seed in seeds]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(strategies, args.metric, args.budget)) as pool:
        done = dict(zip(jobs, pool.map(_run_job, jobs)))
    wall = time.perf_counter() - start
    curves = {}
    for name in strategies:
        evals, regrets, taus, runs, cpu = [], {m: [] for m in MARKS if m <= args.budget}, {}, [], 0.0
        for seed in seeds:
            found, tau, seconds = done[name, seed]
            cpu += seconds
            running = np.maximum.accumulate(found)
            runs.append(best - running)
            hit = np.nonzero(running >= top1)[0]
            evals.append(int(hit[0]) + 1 if hit.size else args.budget + 1)
            for m in regrets:
                regrets[m].append(best - running[min(m, len(running)) - 1])
            for n, t in tau.items():
                taus.setdefault(n, []).append(t)
            if not args.json:
                print(f"  {name:14s} seed {seed:2d}: best {running[-1]:.2f}, top 1% after {evals[-1]}", flush=True)
        curves[name] = np.array(runs)
        out["strategies"][name] = {"evals_to_top1pct": summarise(evals),
                                   "regret": {str(m): summarise(r) for m, r in regrets.items()},
                                   "seconds": round(cpu, 1)}
        if taus:
            out["strategies"][name]["surrogate_kendall_tau"] = {str(n): summarise(t) for n, t in sorted(taus.items())}
    out["wall_seconds"], out["workers"] = round(wall, 1), args.workers
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        plot(curves, args, best, ROOT / "benchmarks" / "strategies_nb201.png")
        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_strategies", results_text(out))


def results_text(out: dict) -> str:
    marks = list(next(iter(out["strategies"].values()))["regret"])
    t = out["table"]
    lines = ["## bench_strategies: search strategies on AnalogNAS-Bench (NB201)", "",
             f"{t['networks']} NB201 cells; metric `{out['metric']}` (best {t['best']:.2f} %, top 1 % from "
             f"{t['top1pct_threshold']:.2f} %); budget {out['budget']} evaluations; seeds "
             f"{out['seeds'][0]}-{out['seeds'][-1]}. Median [q25, q75] over seeds. Plot: `benchmarks/strategies_nb201.png`. "
             f"Whole run {out['wall_seconds']:.0f} s with {out['workers']} worker processes; `CPU s`: the strategy's own "
             "time over all seeds.", "",
             "| strategy | evaluations to top 1 % | " + " | ".join(f"regret @{m}" for m in marks) + " | CPU s |",
             "|---|---|" + "---|" * len(marks) + "---|"]
    for name, s in out["strategies"].items():
        e = s["evals_to_top1pct"]
        cells = [f"{r['median']:.2f} [{r['q25']:.2f}, {r['q75']:.2f}]" for r in s["regret"].values()]
        mark = " (default)" if name == out["default"] else ""
        lines.append(f"| {name}{mark} | {e['median']:.1f} [{e['q25']:.1f}, {e['q75']:.1f}] | " + " | ".join(cells)
                     + f" | {s['seconds']:.0f} |")
    tau = out["strategies"].get(out["default"], {}).get("surrogate_kendall_tau")
    if tau:
        lines += ["", "Surrogate ranking quality (Kendall tau on 1,000 unseen cells): "
                  + ", ".join(f"after {n} observations {v['median']:.2f} [{v['q25']:.2f}, {v['q75']:.2f}]"
                              for n, v in tau.items()) + "."]
    return "\n".join(lines) + "\n"


def plot(curves: dict, args, best: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in curves.items():
        x = np.arange(1, c.shape[1] + 1)
        med = np.median(c, axis=0)
        ax.plot(x, med, label=name + (" (default)" if name == DEFAULT else ""))
        ax.fill_between(x, np.percentile(c, 25, axis=0), np.percentile(c, 75, axis=0), alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("networks evaluated")
    ax.set_ylabel(f"regret, points of {args.metric}")
    ax.set_title(f"AnalogNAS-Bench (NB201): median and quartiles over {len(parse_seeds(args.seeds))} seeds")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
