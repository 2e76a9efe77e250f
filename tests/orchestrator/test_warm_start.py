"""Warm start: earlier results reach every part of a new search that proposes or ranks (the Optuna
study, so TPE and the GP; the surrogate), from an MLflow experiment or a results table."""
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from orchestrator.config import ConfigError, SearchConfig
from orchestrator.evaluation.tables import TableRow, write_table
from orchestrator.strategy.samplers import WARM_START_ATTR
from orchestrator.strategy.searcher import PrescreenSearcher
from orchestrator.strategy.warm_start import apply_warm_start, load_warm_start
from orchestrator.tracking.tracker import Tracker
from search_spaces import hardware_cost
from tests.orchestrator.test_surrogate import score, specs


def test_warm_start_reads_trained_trials_of_an_earlier_search(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    old = SearchConfig.from_dict({"name": "old", "tracking_uri": uri, "storage": str(tmp_path / "runs")})
    tracker = Tracker(old)
    for i, spec in enumerate(specs(6, seed=2)):
        rid = tracker.trial_run(f"t{i}", spec, {}, "running")
        tracker.log_metrics(rid, {"dice_1d": score(spec)})
        tracker.finish(rid, "trained" if i < 5 else "stopped")  # the stopped one has no use
    new = SearchConfig.from_dict({"name": "new", "tracking_uri": uri, "warm_start": "old",
                                  "objectives": ["dice_1d", "tiles"], "prescreen": {"min_observations": 4}})
    searcher = PrescreenSearcher(new)
    warm = load_warm_start(new, MlflowClient(uri), searcher.space)
    assert len(warm) == 5
    # tiles was not logged by these runs: recomputed from the spec
    assert sorted(v[1] for v in warm.values) == sorted(hardware_cost(s).tiles for s in specs(6, seed=2)[:5])
    apply_warm_start(searcher, warm)
    assert searcher.surrogate.ready and sorted(searcher.surrogate.scores) == sorted(score(s) for s in specs(6, seed=2)[:5])
    trials = searcher.proposals.study.get_trials()
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" and t.user_attrs[WARM_START_ATTR] for t in trials)
    with pytest.raises(ConfigError, match="no MLflow experiment named 'nope'"):
        load_warm_start(new.with_overrides(warm_start="nope"), MlflowClient(uri), searcher.space)


def table_of(path, archs, fn):
    write_table(path, [TableRow(a.to_json(), [], {"dice_1d": fn(a), "dice_1y": fn(a) - 0.1}) for a in archs])
    return path


def good(spec):
    """A planted landscape: wide first stage, few tiles."""
    return 0.3 + 0.02 * spec.out_channel0 - 0.01 * hardware_cost(spec).tiles


def test_a_table_warm_start_makes_the_gp_model_from_its_first_proposal(tmp_path):
    space = SearchConfig.from_dict({"name": "x"}).nasseg_space()
    rng = np.random.default_rng(0)
    archs = [space.random(rng) for _ in range(40)]
    table = table_of(tmp_path / "t.jsonl.gz", archs, good)
    cfg = SearchConfig.from_dict({"name": "gp", "trials": 20, "seed": 1, "objectives": ["dice_1d"],
                                  "sampler": "gp", "prescreen": {"candidates": 1}, "warm_start": f"table:{table}"})
    assert cfg.warm_start == f"table:{table.resolve()}"

    def first_proposals(warm: bool) -> list:
        s = PrescreenSearcher(cfg)
        if warm:
            apply_warm_start(s, load_warm_start(cfg, None, s.space))
        out = []
        for i in range(5):
            out.append(s.space.from_json(s.suggest(f"t{i}")["arch"]))
            s.on_trial_complete(f"t{i}", {"final": True, "dice_1d": good(out[-1])})
        return out

    warm, cold = first_proposals(True), first_proposals(False)
    # cold: 5 uniform draws (the GP starts after startup_trials); warm: the GP's choices on 40 results
    assert np.mean([good(a) for a in warm]) > np.mean([good(a) for a in cold]) + 0.05, \
        ([good(a) for a in warm], [good(a) for a in cold])
    assert np.mean([good(a) for a in warm]) > np.percentile([good(a) for a in archs], 75)


def test_a_warm_start_survives_the_searchers_json_state(tmp_path):
    cfg = SearchConfig.from_dict({"name": "g", "trials": 50, "objectives": ["dice_1d"], "sampler": "grid",
                                  "prescreen": {"candidates": 1},
                                  "bounds": {"out_channel0": [8], "M": [1, 1], "R": [1, 1], "B": [1, 2], "dec_blocks": [1, 2],
                                             "up": ["resize"], "skip": ["concat"], "convblock": [1],
                                             "widenfact": [0.5, 0.5], "dec_width": [1.0], "k0": [3]}})
    s = PrescreenSearcher(cfg)
    grid = s.space.enumerate()
    assert len(grid) == 4
    apply_warm_start(s, load_warm_start(cfg.with_overrides(warm_start=f"table:{table_of(tmp_path / 't.jsonl', grid[:2], good)}"),
                                        None, s.space))
    s.save(tmp_path / "state.json")
    restored = PrescreenSearcher(cfg)
    restored.restore(tmp_path / "state.json")
    got = []
    while isinstance(config := restored.suggest(f"t{len(got)}"), dict):
        got.append(config["arch"])
        restored.on_trial_complete(f"t{len(got) - 1}", {"final": True, "dice_1d": 0.5})
    assert sorted(got) == sorted(a.to_json() for a in grid[2:])  # the warm-started two are skipped


def test_a_table_warm_start_that_is_not_a_table_is_one_line(tmp_path):
    (tmp_path / "bad.jsonl.gz").write_text("not gzip")
    cfg = SearchConfig.from_dict({"name": "x", "warm_start": f"table:{tmp_path / 'bad.jsonl.gz'}"})
    with pytest.raises(ConfigError, match=r"^warm_start: .*bad.jsonl.gz: not a results table"):
        load_warm_start(cfg, None, cfg.nasseg_space())
    with pytest.raises(ConfigError, match="warm_start: no results table at"):
        SearchConfig.from_dict({"name": "x", "warm_start": f"table:{tmp_path / 'missing.jsonl'}"})


def test_results_outside_the_bounds_are_left_out_and_counted(tmp_path):
    space = SearchConfig.from_dict({"name": "x"}).nasseg_space()
    archs = [space.random(np.random.default_rng(i)) for i in range(12)]
    table = table_of(tmp_path / "t.jsonl", archs, good)
    narrow = SearchConfig.from_dict({"name": "n", "warm_start": f"table:{table}", "bounds": {"out_channel0": [8]}})
    warm = load_warm_start(narrow, None, narrow.nasseg_space())
    inside = [a for a in archs if a.out_channel0 == 8]
    assert 0 < len(inside) < 12 and len(warm) == len(inside) and warm.outside == 12 - len(inside)
    assert {a.to_json() for a in warm.archs} == {a.to_json() for a in inside}


def test_the_shipped_table_warm_starts_a_surrogate_that_ranks_networks_it_has_not_seen(tmp_path, monkeypatch):
    """benchmarks/nassegnet_bench/table.jsonl.gz is data (gzip + JSON): read with pickle disabled,
    a surrogate fitted on two thirds of it ranks the other third."""
    import pickle
    from pathlib import Path

    from scipy.stats import kendalltau

    from orchestrator.strategy.surrogate import Surrogate

    def refuse(*a, **k):
        raise AssertionError("something unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    shipped = Path(__file__).resolve().parents[2] / "benchmarks" / "nassegnet_bench" / "table.jsonl.gz"
    cfg = SearchConfig.from_dict({"name": "s", "warm_start": f"table:{shipped}"})
    warm = load_warm_start(cfg, None, cfg.nasseg_space())
    assert len(warm) >= 48 and warm.outside == 0  # the bench's sub-space lies inside the default bounds
    fit_on, held = slice(0, None, 3), [i for i in range(len(warm)) if i % 3]
    surrogate = Surrogate("dice_1d", min_observations=4, space=cfg.nasseg_space())
    surrogate.specs = [a.to_json() for a in warm.archs[fit_on]]
    surrogate.scores = [v[0] for v in warm.values[fit_on]]
    surrogate.fit()
    tau = kendalltau(surrogate.predict([warm.archs[i] for i in held]), [warm.values[i][0] for i in held]).statistic
    assert tau > 0.3, tau  # measured 0.61 on the first 48 networks (fitted on 16, ranking 32)
