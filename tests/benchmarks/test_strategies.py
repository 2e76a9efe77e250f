"""The benchmark's search strategies on the NB201 table (AnalogNAS-Bench): each evaluates networks
of the table, never one twice, within its budget; local search walks one-edge neighbourhoods."""
import pytest

from benchmarks.bench_strategies import load_bench, run_evolution, run_local_search, run_random, run_searcher
from search_spaces.neighbours import neighbours

METRIC = "analog_drift_86400"


@pytest.fixture(scope="module")
def bench():
    return load_bench("analognas")


class Recording:
    """The bench with a record of which networks were looked up, in order."""

    def __init__(self, bench):
        self.inner, self.looked_up = bench, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def value(self, arch, metric):
        self.looked_up.append(tuple(arch) if isinstance(arch, tuple) else arch)
        return self.inner.value(arch, metric)

    def looked_up_signatures(self):
        return [self.inner.space.signature(a) for a in self.looked_up]


@pytest.mark.parametrize("strategy", [run_random, run_evolution, run_local_search])
def test_a_strategy_evaluates_budget_distinct_networks(bench, strategy):
    rec = Recording(bench)
    found, _ = strategy(rec, METRIC, 60, seed=4)
    assert len(found) == 60 and len(set(rec.looked_up)) == 60
    assert found == [bench.value(a, METRIC) for a in rec.looked_up]


def test_local_search_evaluates_the_whole_neighbourhood_then_moves_to_the_best(bench):
    rec = Recording(bench)
    found, _ = run_local_search(rec, METRIC, 49, seed=0)
    start, first_ring = rec.looked_up[0], rec.looked_up[1:25]
    assert set(first_ring) == set(neighbours(bench.space, start))  # all 24 one-edge neighbours
    best = max(first_ring, key=lambda a: bench.value(a, METRIC))
    assert bench.value(best, METRIC) > found[0]  # (seed 0's start is not a local optimum)
    # it moved there: next come the best's neighbours not seen yet (the start and the first ring's
    # networks that changed the same edge are neighbours of both)
    ring = set(neighbours(bench.space, best)) - set(rec.looked_up[:25])
    assert 15 < len(ring) < 24 and set(rec.looked_up[25:25 + len(ring)]) == ring


def test_over_ten_seeds_local_search_and_evolution_beat_random_search(bench):
    import numpy as np

    def median_best(strategy):
        return float(np.median([max(strategy(bench, METRIC, 100, seed=s)[0]) for s in range(10)]))

    rand = median_best(run_random)
    assert median_best(run_local_search) > rand + 0.3 and median_best(run_evolution) > rand + 0.3


def test_the_searcher_strategy_skips_networks_a_partial_table_lacks(bench):
    partial = Recording(bench)
    keep = set(list(bench.rows)[::2])  # half the table
    partial.rows = {k: v for k, v in bench.rows.items() if k in keep}
    partial.value = lambda arch, metric: (bench.value(arch, metric) if tuple(arch) in keep else None)
    found, _ = run_searcher(partial, METRIC, 30, seed=1, sampler="tpe")
    assert len(found) == 30 and None not in found


def test_the_nassegnet_bench_loads_in_points_and_local_search_stays_in_its_table():
    from benchmarks.bench_strategies import NASSEGNET_TABLE
    from orchestrator.evaluation.tables import read_table

    seg = load_bench("nassegnet")
    rows = read_table(NASSEGNET_TABLE)
    assert len(seg.archs) == len(rows) >= 48 and "dice_1y" in seg.metrics()
    first = next(iter(rows.values()))
    assert seg.value(seg.space.from_json(first.arch), "dice_1d") == 100 * first.final["dice_1d"]  # Dice points
    rec = Recording(seg)
    found, _ = run_local_search(rec, "dice_1d", 20, seed=0)
    assert len(found) == 20 and len(set(rec.looked_up_signatures())) == 20 and None not in found


def test_a_rerun_with_a_progress_file_skips_the_finished_seeds(tmp_path):
    """Long benchmark runs resume: each (strategy, seed) is appended to ``--progress`` as it ends;
    a rerun computes only the missing ones and reports the same numbers for the others."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_strategies.py"
    progress = tmp_path / "progress.jsonl"

    def run(seeds):
        proc = subprocess.run([sys.executable, str(script), "--benchmark", "nassegnet", "--strategies", "random",
                               "local", "--seeds", seeds, "--budget", "30", "--workers", "1", "--json",
                               "--progress", str(progress)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)

    first = run("0-1")
    assert len(progress.read_text().splitlines()) == 4
    with progress.open("a") as f:
        f.write('{"key": {"budget": 99}, "strategy": "random", "seed": 2}\n{"cut by a ki')  # other settings; a torn line
    second = run("0-2")
    lines = progress.read_text().splitlines()
    assert len(lines) == 4 + 2 + 2  # seed 2 of both strategies appended after the torn line, nothing recomputed
    assert [json.loads(x)["seed"] for x in lines[-2:]] == [2, 2]
    assert second["seeds"] == [0, 1, 2] and first["table"] == second["table"]
    again = run("0-1")  # everything from the file
    assert again["strategies"] == {k: {**v, "seconds": again["strategies"][k]["seconds"]}
                                   for k, v in first["strategies"].items()}
    assert len(progress.read_text().splitlines()) == 8  # nothing appended


def test_the_default_is_the_simplest_option_tied_with_the_best_on_every_run():
    # decide.py's rule over several runs: an option counts only if its band overlaps the best
    # one's on every run; here plain TPE ties on the first run and falls behind on the second
    from benchmarks.strategies.decide import overall_choice

    def out(**medians_and_bands):
        return {"strategies": {k: {"evals_to_top1pct": {"median": m, "q25": lo, "q75": hi}}
                               for k, (m, lo, hi) in medians_and_bands.items()}}

    first = out(tpe=(30, 20, 50), **{"tpe+prescreen": (32, 20, 60), "gp-encoded": (28, 20, 40),
                                     "gp-encoded+prescreen": (27, 20, 45)})
    second = out(tpe=(71, 36, 101), **{"tpe+prescreen": (47, 22, 84), "gp-encoded": (29, 19, 42),
                                       "gp-encoded+prescreen": (26, 21, 39)})
    everywhere, choice, n = overall_choice({("nb201", "m"): {"decide": first}, ("nassegnet", "m"): {"confirm": second}})
    assert n == 2 and everywhere == ["tpe+prescreen", "gp-encoded", "gp-encoded+prescreen"] and choice == "tpe+prescreen"
    _, choice, _ = overall_choice({("nb201", "m"): {"decide": first}})
    assert choice == "tpe"


def test_the_rank_test_reads_each_seeds_evaluations_from_the_progress_file(tmp_path):
    import json

    from benchmarks.bench_strategies import DEFAULT
    from benchmarks.strategies.decide import evals_per_seed, half_of_random_line, rank_test_line

    key = {"metric": "m"}
    rows = []
    for seed in range(8):  # the default reaches the top (>= 9) at evaluation 2, random search never
        rows.append({"key": key, "strategy": DEFAULT, "seed": seed, "found": [1.0, 9.5, 3.0]})
        rows.append({"key": key, "strategy": "random", "seed": seed, "found": [1.0, 2.0, 8.0]})
    rows.append({"key": {"metric": "other"}, "strategy": "random", "seed": 0, "found": [9.9]})  # another run
    (tmp_path / "run_decide.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = {"file_stem": "run_decide", "metric": "m", "budget": 3, "seeds": list(range(8)),
           "table": {"top1pct_threshold": 9.0}}
    evals = evals_per_seed(out, tmp_path)
    assert evals == {DEFAULT: [2] * 8, "random": [4] * 8}  # never: budget + 1
    line = rank_test_line(out, tmp_path)
    assert line.startswith(f"rank test of the default ({DEFAULT})") and "vs random p = 0.000" in line
    assert evals_per_seed({**out, "file_stem": "missing"}, tmp_path) is None
    # every seed of the default needs 2, random search never gets there (budget + 1 = 4): ratio 0.5 exactly
    assert half_of_random_line(out, tmp_path).endswith(f"{DEFAULT} (default) 0.50 [0.50, 0.50].")


def test_the_default_is_the_config_default_and_the_band_rule_choice_over_the_committed_runs():
    # the strategy the benchmarks call "default" is what a SearchConfig without sampler/prescreen
    # keys runs, and it is what decide.py's rule picks from the committed decide/confirm runs
    from benchmarks.bench_strategies import DEFAULT
    from benchmarks.strategies.decide import overall_choice, runs
    from orchestrator.config import SearchConfig

    cfg = SearchConfig()
    assert DEFAULT == {"gp": "gp-encoded", "tpe": "tpe"}[cfg.sampler] + ("+prescreen" if cfg.prescreen.candidates > 1 else "")
    _, choice, n = overall_choice(runs())
    assert n == 8 and choice == DEFAULT
