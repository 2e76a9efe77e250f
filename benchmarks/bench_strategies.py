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
- ``gp-encoded``: nasseg's searcher with ``sampler: gp`` (``orchestrator.strategy.gp``: a GP over
  the space's encoding, expected improvement over uniform draws and mutations of the best), one
  candidate per trial (nasseg's default: ``sampler: gp``, ``prescreen.candidates: 1``). Unlike
  Optuna's GPSampler it also models NASSegNet's conditional stages;
- ``gp-encoded+prescreen``: the same with ``--candidates`` GP proposals per trial, ranked by the
  XGBoost surrogate (nasseg's default until the strategy decision, ``benchmarks/strategies/decide.py``,
  found it tied with ``gp-encoded`` on both tables).

Seeds run in ``--workers`` processes (default: one per CPU); ``seconds`` is the CPU time a
strategy spent over all seeds (the table lookups cost nothing: it is the searcher's own time).
With ``--progress FILE`` each finished (strategy, seed) is appended to FILE as it ends and a rerun
with the same settings computes only what FILE lacks (a long run survives a kill; commit FILE).

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
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = "gp-encoded"   # nasseg's default: sampler gp, prescreen.candidates 1
#: candidates per trial of the +prescreen strategies (4 beat 8 on AnalogNAS-Bench; nasseg's default before 1)
PRESCREEN_CANDIDATES = 4
MARKS = (10, 25, 50, 100)
NASSEGNET_TABLE = ROOT / "benchmarks" / "nassegnet_bench" / "table.jsonl.gz"
NASSEGNET_CONFIG = ROOT / "benchmarks" / "nassegnet_bench" / "table.yaml"


@dataclass
class Bench:
    """A tabular benchmark: a space, the networks the table holds and their metrics.

    ``value`` is None for a network the table does not hold (a partial table while it is being
    generated): strategies skip such a proposal without counting it as an evaluation, i.e. they
    search the table's networks. ``scale`` turns the table's unit into points (NB201: %, already
    points; NASSegNet: fractions, x100)."""

    name: str
    space: Any
    archs: list
    rows: dict
    scale: float
    config: dict = field(default_factory=dict)  # the search config's bounds etc. (nassegnet)

    def value(self, arch: Any, metric: str) -> float | None:
        row = self.rows.get(self.space.signature(arch))
        return None if row is None else row[metric] * self.scale

    def metrics(self) -> list[str]:
        return sorted(next(iter(self.rows.values())))

    def neighbours(self, arch: Any) -> list:
        from search_spaces.neighbours import neighbours

        return [a for a in neighbours(self.space, arch) if self.space.signature(a) in self.rows]


def load_bench(name: str, table: Path | None = None) -> Bench:
    if name == "analognas":
        from benchmarks.nb201 import NB201Space, load_analog_nasbench

        rows = load_analog_nasbench(table)
        return Bench(name, NB201Space(), list(rows), rows, 1.0)
    import yaml

    from orchestrator.config import SearchConfig
    from orchestrator.evaluation.tables import read_table
    from search_spaces import ArchSpec

    config = yaml.safe_load(NASSEGNET_CONFIG.read_text())
    space = SearchConfig.from_dict(config).nasseg_space()
    table_rows = read_table(table or NASSEGNET_TABLE)
    return Bench(name, space, [ArchSpec.from_json(r.arch) for r in table_rows.values()],
                 {sig: r.final for sig, r in table_rows.items()}, 100.0, config)


def run_random(bench, metric, budget, seed, **_):
    order = np.random.default_rng(seed).permutation(len(bench.archs))[:budget]
    return [bench.value(bench.archs[i], metric) for i in order], {}


class _Evaluations:
    """What a strategy has evaluated: values in order, signatures seen."""

    def __init__(self, bench, metric):
        self.bench, self.metric, self.found, self.seen = bench, metric, [], set()

    def __call__(self, arch) -> float:
        self.seen.add(self.bench.space.signature(arch))
        self.found.append(self.bench.value(arch, self.metric))
        return self.found[-1]

    def unseen(self, archs) -> list:
        return [a for a in archs if self.bench.space.signature(a) not in self.seen]

    def random_unseen(self, rng):
        left = self.unseen(self.bench.archs)
        return left[int(rng.integers(len(left)))] if left else None


def run_evolution(bench, metric, budget, seed, population=20, sample=5, **_):
    """Regularized evolution (Real et al. 2019): a tournament picks the parent, one question is
    answered differently (a one-question neighbour not evaluated before), the oldest dies."""
    rng = np.random.default_rng(seed)
    evaluate, pop = _Evaluations(bench, metric), []
    while len(evaluate.found) < min(population, budget, len(bench.archs)):
        arch = evaluate.random_unseen(rng)
        pop.append((arch, evaluate(arch)))
    while len(evaluate.found) < min(budget, len(bench.archs)):
        contenders = [pop[i] for i in rng.choice(len(pop), size=min(sample, len(pop)), replace=False)]
        parent = max(contenders, key=lambda p: p[1])[0]
        children = evaluate.unseen(bench.neighbours(parent))
        child = children[int(rng.integers(len(children)))] if children else evaluate.random_unseen(rng)
        pop.append((child, evaluate(child)))
        pop.pop(0)  # regularized: the oldest dies
    return evaluate.found, {}


def run_local_search(bench, metric, budget, seed, **_):
    """Local search as White et al. 2021 ("Exploring the loss landscape in NAS") run it: from a
    random network, evaluate all its one-question neighbours (in random order) and move to the
    best if it beats the current one; at a local optimum, restart from a random unseen network."""
    rng = np.random.default_rng(seed)
    evaluate = _Evaluations(bench, metric)
    limit = min(budget, len(bench.archs))
    current = evaluate.random_unseen(rng)
    score = evaluate(current)
    while len(evaluate.found) < limit:
        todo = evaluate.unseen(bench.neighbours(current))
        best, best_score = None, score
        for i in rng.permutation(len(todo)):
            if len(evaluate.found) >= limit:
                break
            value = evaluate(todo[i])
            if value > best_score:
                best, best_score = todo[i], value
        if best is not None:
            current, score = best, best_score
        elif len(evaluate.found) < limit:  # local optimum: restart
            current = evaluate.random_unseen(rng)
            score = evaluate(current)
    return evaluate.found, {}


def run_gp(bench, metric, budget, seed, **_):
    """Optuna's GPSampler over the space's questions (NB201's 6 categorical edges)."""
    import optuna

    space, rng = bench.space, np.random.default_rng([seed, 1])
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GPSampler(seed=seed))
    evaluate = _Evaluations(bench, metric)
    while len(evaluate.found) < budget:
        trial = study.ask()
        arch = space.suggest(trial)
        if space.signature(arch) in evaluate.seen:  # told as failed, replaced by an unseen uniform draw
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(space.params(evaluate.random_unseen(rng)))
            trial = study.ask()
            arch = space.suggest(trial)
        study.tell(trial, evaluate(arch))
    return evaluate.found, {}


def searcher_config(bench, budget, seed, candidates, sampler):
    from orchestrator.config import SearchConfig

    base = {k: v for k, v in bench.config.items() if k in ("bounds", "space")}
    return SearchConfig.from_dict({**base, "name": "bench", "trials": budget, "seed": seed,
                                   "objectives": ["dice_1d"], "sampler": sampler,
                                   "prescreen": {"candidates": candidates, "min_observations": 10}})


def run_searcher(bench, metric, budget, seed, candidates=1, probe=None, sampler="tpe", **_):
    """nasseg's own searcher, as a search runs it. A proposal the table does not hold (a partial
    table) is told as failed and not counted."""
    from orchestrator.evaluation.evaluators import EpochReport
    from orchestrator.strategy.searcher import PrescreenSearcher

    searcher = PrescreenSearcher(searcher_config(bench, budget, seed, candidates, sampler), space=bench.space)
    found, taus, i = [], {}, 0
    while len(found) < budget and i < 20 * budget:
        config = searcher.suggest(f"t{i}")
        if not isinstance(config, dict):  # FINISHED: the space is exhausted
            break
        value = bench.value(searcher.space.from_json(config["arch"]), metric)
        if value is None:
            searcher.on_trial_complete(f"t{i}", None, error=True)
        else:
            found.append(value)
            searcher.on_trial_complete(f"t{i}", EpochReport(1, {"dice_1d": value / 100.0}, final=True).as_result())
        i += 1
        if value is not None and probe is not None and len(found) in (20, 50, 100) and searcher.surrogate.ready:
            from scipy.stats import kendalltau

            trained = {bench.space.signature(searcher.space.from_json(a)) for a in searcher.spec_of.values()}
            unseen = [a for a in probe if bench.space.signature(a) not in trained][:1000]
            taus[len(found)] = float(kendalltau(searcher.surrogate.predict(unseen),
                                                [bench.value(a, metric) for a in unseen]).statistic)
    return found, taus


_WORKER: dict = {}


def _init_worker(strategies: dict, benchmark: str, table: Path | None, metric: str, budget: int) -> None:
    """Each worker process reads the table once, and computes on one thread (the workers are
    the parallelism: torch's threads in Optuna's GP sampler and BLAS threads in scikit-learn's GP
    would fight over the cores; measured: 5-10x slower GP fits with 2 workers x 2 BLAS threads)."""
    import optuna
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    _WORKER["blas"] = threadpool_limits(1)  # held for the worker's life
    logging.getLogger("optuna").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _WORKER.update(bench=load_bench(benchmark, table), strategies=strategies, metric=metric, budget=budget)


def _run_job(job: tuple[str, int]) -> tuple[list[float], dict, float]:
    name, seed = job
    spec = _WORKER["strategies"][name]
    start = time.process_time()
    found, tau = spec["fn"](_WORKER["bench"], _WORKER["metric"], _WORKER["budget"], seed,
                            **{k: v for k, v in spec.items() if k != "fn"})
    return found, tau, time.process_time() - start


def read_progress(path: Path | None, key: dict) -> dict:
    """(strategy, seed) -> (found, tau, seconds) of the jobs a ``--progress`` file holds for ``key``
    (the same benchmark, table, metric, budget and candidates; other lines are ignored)."""
    done: dict = {}
    if path is None or not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if rec.get("key") == key:
            done[rec["strategy"], rec["seed"]] = (rec["found"], {int(n): t for n, t in rec["tau"].items()},
                                                  rec["seconds"])
    return done


def append_progress(path: Path | None, key: dict, job: tuple[str, int], result: tuple) -> None:
    if path is None:
        return
    found, tau, seconds = result
    torn = False
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as f:  # the last byte only (the file grows with every run)
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"
    with path.open("a") as f:
        f.write("\n" if torn else "")  # a line cut by a kill stays alone (and is skipped)
        f.write(json.dumps({"key": key, "strategy": job[0], "seed": job[1], "found": [float(v) for v in found],
                            "tau": {str(n): t for n, t in tau.items()}, "seconds": seconds}) + "\n")


def evals_to_top1(found, top1: float, budget: int) -> int:
    """Evaluations until the best found reaches ``top1`` (the table's top-1 % threshold); a run that
    never does counts as ``budget + 1``."""
    hit = np.nonzero(np.maximum.accumulate(found) >= top1)[0]
    return int(hit[0]) + 1 if hit.size else budget + 1


def summarise(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "q25": float(np.percentile(v, 25)), "q75": float(np.percentile(v, 75))}


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="analognas", choices=["analognas", "nassegnet"],
                    help="analognas: NB201 cells (AnalogNAS-Bench); nassegnet: NASSegNet-Bench (our own space)")
    ap.add_argument("--table", type=Path, help="the benchmark's table (default: the shipped one)")
    ap.add_argument("--metric", help="a column of the table (default: analog_drift_86400 | dice_1d)")
    ap.add_argument("--seeds", default="0-24", help="A-B, inclusive")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=PRESCREEN_CANDIDATES,
                    help=f"candidates per trial of the +prescreen strategies (default {PRESCREEN_CANDIDATES})")
    ap.add_argument("--strategies", nargs="+", help="a subset of: random evolution local gp gp-encoded "
                    "gp-encoded+prescreen tpe tpe+prescreen (default: all; gp only on analognas)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes running seeds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--write", action="store_true", help="plot + table into benchmarks/RESULTS.md")
    ap.add_argument("--progress", type=Path, help="JSON-lines file: each finished (strategy, seed) is appended "
                    "as it ends, and a rerun with the same file and settings skips what it holds (resumable)")
    args = ap.parse_args()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        bench = load_bench(args.benchmark, args.table)
    except (OSError, ValueError) as exc:
        sys.exit(f"bench_strategies: error: {exc}")
    args.metric = args.metric or ("analog_drift_86400" if args.benchmark == "analognas" else "dice_1d")
    if args.metric not in bench.metrics():
        sys.exit(f"bench_strategies: error: --metric {args.metric!r}: one of {', '.join(bench.metrics())}")
    values = np.array([bench.value(a, args.metric) for a in bench.archs])
    best, top1 = float(values.max()), float(np.percentile(values, 99))
    seeds = parse_seeds(args.seeds)
    probe = [bench.archs[i] for i in np.random.default_rng(12345).permutation(len(bench.archs))[:1200]]
    strategies = {
        "random": dict(fn=run_random),
        "evolution": dict(fn=run_evolution),
        "local": dict(fn=run_local_search),
        "gp": dict(fn=run_gp),
        "tpe": dict(fn=run_searcher, candidates=1),
        "gp-encoded": dict(fn=run_searcher, candidates=1, sampler="gp"),
        "gp-encoded+prescreen": dict(fn=run_searcher, candidates=args.candidates, sampler="gp", probe=probe),
        "tpe+prescreen": dict(fn=run_searcher, candidates=args.candidates, sampler="tpe", probe=probe),
    }
    if args.benchmark != "analognas":  # Optuna's GPSampler needs a fixed, unconditional space
        del strategies["gp"]
    assert DEFAULT in strategies
    if args.strategies:
        unknown = sorted(set(args.strategies) - set(strategies))
        if unknown:
            sys.exit(f"bench_strategies: error: --strategies: unknown {', '.join(unknown)}")
        strategies = {k: v for k, v in strategies.items() if k in args.strategies}
    out = {"benchmark": args.benchmark, "metric": args.metric, "budget": args.budget, "seeds": seeds,
           "default": DEFAULT, "strategies": {},
           "table": {"networks": len(bench.archs), "best": best, "top1pct_threshold": top1}}
    jobs = [(name, seed) for name in strategies for seed in seeds]
    key = {"benchmark": args.benchmark, "metric": args.metric, "budget": args.budget, "candidates": args.candidates,
           "networks": len(bench.archs), "best": best}
    done = read_progress(args.progress, key)
    start = time.perf_counter()
    todo = [job for job in jobs if job not in done]
    with ProcessPoolExecutor(args.workers, initializer=_init_worker,
                             initargs=(strategies, args.benchmark, args.table, args.metric, args.budget)) as pool:
        futures = {pool.submit(_run_job, job): job for job in todo}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            append_progress(args.progress, key, futures[future], done[futures[future]])
    wall = time.perf_counter() - start
    curves = {}
    for name in strategies:
        evals, regrets, taus, runs, cpu = [], {m: [] for m in MARKS if m <= args.budget}, {}, [], 0.0
        for seed in seeds:
            found, tau, seconds = done[name, seed]
            cpu += seconds
            running = np.maximum.accumulate(found)
            runs.append(best - running)
            evals.append(evals_to_top1(running, top1, args.budget))
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
    out["runs_from_progress"] = len(jobs) - len(todo)
    out["noise_floor"] = noise_floor(args)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        suffix = "nb201" if args.benchmark == "analognas" else "nassegnet"
        plot(curves, args, best, ROOT / "benchmarks" / f"strategies_{suffix}.png", out["noise_floor"])
        section = "bench_strategies" if args.benchmark == "analognas" else "bench_strategies_nassegnet"
        write_section(ROOT / "benchmarks" / "RESULTS.md", section, results_text(out))


def results_text(out: dict) -> str:
    marks = list(next(iter(out["strategies"].values()))["regret"])
    t = out["table"]
    nb201 = out.get("benchmark", "analognas") == "analognas"
    title = "AnalogNAS-Bench (NB201)" if nb201 else "NASSegNet-Bench (our own space)"
    what = "NB201 cells" if nb201 else "NASSegNet networks (benchmarks/nassegnet_bench; Dice/AP in points)"
    lines = [f"## {out.get('section_title', 'bench_strategies: search strategies on ' + title)}", "",
             f"{t['networks']} {what}; metric `{out['metric']}` (best {t['best']:.2f}, top 1 % from "
             f"{t['top1pct_threshold']:.2f}); budget {out['budget']} evaluations; seeds "
             f"{out['seeds'][0]}-{out['seeds'][-1]}. Median [q25, q75] over seeds. "
             f"Plot: `benchmarks/strategies_{'nb201' if nb201 else 'nassegnet'}.png`. "
             f"Whole run {out['wall_seconds']:.0f} s with {out['workers']} worker processes"
             + (f" ({out['runs_from_progress']} of the runs read from a `--progress` file)"
                if out.get("runs_from_progress") else "")
             + "; `CPU s`: the strategy's own time over all seeds.", "",
             "| strategy | evaluations to top 1 % | " + " | ".join(f"regret @{m}" for m in marks) + " | CPU s |",
             "|---|---|" + "---|" * len(marks) + "---|"]
    for name, s in out["strategies"].items():
        e = s["evals_to_top1pct"]
        cells = [f"{r['median']:.2f} [{r['q25']:.2f}, {r['q75']:.2f}]" for r in s["regret"].values()]
        mark = " (default)" if name == out["default"] else ""
        lines.append(f"| {name}{mark} | {e['median']:.1f} [{e['q25']:.1f}, {e['q75']:.1f}] | " + " | ".join(cells)
                     + f" | {s['seconds']:.0f} |")
    if out.get("noise_floor") is not None:
        lines += ["", f"Noise floor of `{out['metric']}` (two training seeds of one network, median |difference|): "
                  f"{out['noise_floor']:.2f} points, {out['noise_floor'] / max(t['best'] - t['top1pct_threshold'], 1e-9):.1f}x "
                  "the distance from the table's best to its top-1 % threshold: a regret below it is a tie in network "
                  "quality, and reaching the top 1 % partly chases training noise."]
    # the surrogate is probed where it ranks (the +prescreen strategies); the default's first if it does
    probed = sorted((n for n, s in out["strategies"].items() if s.get("surrogate_kendall_tau")),
                    key=lambda n: (n != out["default"], n))
    if probed:
        tau = out["strategies"][probed[0]]["surrogate_kendall_tau"]
        lines += ["", f"Surrogate ranking quality (in `{probed[0]}`; Kendall tau on up to 1,000 unseen networks): "
                  + ", ".join(f"after {n} observations {v['median']:.2f} [{v['q25']:.2f}, {v['q75']:.2f}]"
                              for n, v in tau.items()) + "."]
    return "\n".join(lines) + "\n"


def noise_floor(args) -> float | None:
    """NASSegNet-Bench's noise floor for ``args.metric`` in table points (how far two training seeds of
    one network differ, median; ``nassegnet_bench/summary.json``): a regret below it is a tie."""
    path = ROOT / "benchmarks" / "nassegnet_bench" / "summary.json"
    if args.benchmark != "nassegnet" or not path.exists():
        return None
    entry = json.loads(path.read_text()).get("noise_floor", {}).get(args.metric)
    return None if not entry else 100.0 * entry["abs_diff"]["median"]


def plot(curves: dict, args, best: float, path: Path, floor: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in curves.items():
        x = np.arange(1, c.shape[1] + 1)
        med = np.median(c, axis=0)
        ax.plot(x, med, label=name + (" (default)" if name == DEFAULT else ""))
        ax.fill_between(x, np.percentile(c, 25, axis=0), np.percentile(c, 75, axis=0), alpha=0.15)
    if floor is not None:
        ax.axhline(floor, color="black", linestyle=":", linewidth=1.2,
                   label=f"noise floor: median |seed 0 - seed 1| = {floor:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("networks evaluated")
    ax.set_ylabel(f"regret, points of {args.metric}")
    title = "AnalogNAS-Bench (NB201)" if args.benchmark == "analognas" else "NASSegNet-Bench"
    ax.set_title(f"{title}: median and quartiles over {len(parse_seeds(args.seeds))} seeds")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
