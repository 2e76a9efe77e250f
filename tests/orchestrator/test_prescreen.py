"""The prescreening searcher, driven directly (no Ray workers): constraints, ranking, Optuna state."""
import optuna
import pytest
from ray.tune.search import Searcher

from orchestrator.config import SearchConfig
from orchestrator.strategy.searcher import PrescreenSearcher
from search_spaces import ArchSpec, hardware_cost


def config(**kw):
    base = {"name": "t", "trials": 20, "objectives": ["dice_1d"], "prescreen": {"candidates": 4, "min_observations": 3}}
    base.update(kw)
    return SearchConfig.from_dict(base)


class Recorder:
    """A SearchListener that keeps what the searcher told it."""

    def __init__(self):
        self.rejections, self.progress = [], []

    def rejected(self, rejection):
        self.rejections.append(rejection)

    def progressed(self, progress):
        self.progress.append(progress)


def fake_score(spec: ArchSpec) -> float:
    """A deterministic 'measured' score: bigger first stage, fewer tiles is better."""
    return 0.5 + 0.02 * spec.out_channel0 - 0.01 * hardware_cost(spec).tiles


def test_infeasible_candidates_are_rejected_and_never_suggested():
    heard = Recorder()
    rejected = heard.rejections
    s = PrescreenSearcher(config(constraints={"max_tiles": 12}), listeners=[heard])
    for i in range(15):
        cfg = s.suggest(f"trial{i}")
        assert hardware_cost(ArchSpec.from_json(cfg["arch"])).tiles <= 12
    by_constraint = [r for r in rejected if r.reason.startswith("constraint: tiles")]
    assert by_constraint and len(by_constraint) == len(rejected)  # repeats are not logged as rejections
    assert all(r.cost["tiles"] > 12 for r in by_constraint)
    states = [t.state for t in s.proposals.study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(by_constraint)
    assert states.count(optuna.trial.TrialState.FAIL) == s.duplicates


def test_surrogate_ranks_once_it_has_enough_trials():
    heard = Recorder()
    rejected = heard.rejections
    s = PrescreenSearcher(config(), listeners=[heard])
    for i in range(3):  # pass-through phase: one candidate per trial, nothing rejected
        spec = ArchSpec.from_json(s.suggest(f"t{i}")["arch"])
        s.on_trial_complete(f"t{i}", {"final": True, "dice_1d": fake_score(spec)})
    assert rejected == [] and s.surrogate.ready
    chosen = s.suggest("t3")
    assert chosen["predicted"] is not None
    assert len(rejected) == 3 and all(r.reason.startswith("surrogate: ranked") for r in rejected)
    assert all(r.predicted <= chosen["predicted"] for r in rejected)
    assert {r.for_trial for r in rejected} == {"t3"}
    # one progress snapshot per finished trial and per rejection, counters as they were then
    assert [p.observations for p in heard.progress] == [1, 2, 3, 3, 3, 3]
    assert [p.rejections for p in heard.progress] == [0, 0, 0, 1, 2, 3]


def test_stopped_and_failed_trials_do_not_feed_the_surrogate():
    s = PrescreenSearcher(config())
    s.suggest("a")
    s.suggest("b")
    s.on_trial_complete("a", {"val_dice": 0.5})  # stopped by ASHA: no final score
    s.on_trial_complete("b", None, error=True)
    assert s.surrogate.scores == []
    states = {t.state for t in s.proposals.study.trials}
    assert states == {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL}


def test_constraints_too_tight_end_the_search_cleanly_with_a_reason():
    s = PrescreenSearcher(config(constraints={"max_params": 10}, prescreen={"max_draws": 5}))
    assert s.suggest("x") == Searcher.FINISHED
    assert s.finished_reason.startswith("no new feasible network in 5 proposals")
    assert s.suggest("y") == Searcher.FINISHED  # and stays finished


def test_save_and_restore_keep_optuna_and_surrogate_state(tmp_path):
    s = PrescreenSearcher(config())
    for i in range(4):
        spec = ArchSpec.from_json(s.suggest(f"t{i}")["arch"])
        s.on_trial_complete(f"t{i}", {"final": True, "dice_1d": fake_score(spec)})
    s.save(str(tmp_path / "state.pkl"))
    heard = Recorder()
    restored = PrescreenSearcher(config(), listeners=[heard])
    restored.restore(str(tmp_path / "state.pkl"))
    assert heard.progress == [s.progress()]  # listeners learn the restored counters at once
    assert heard.progress[0].observations == 4
    assert len(restored.proposals.study.trials) == len(s.proposals.study.trials)
    assert restored.surrogate.scores == s.surrogate.scores and restored.surrogate.ready
    assert restored.duplicates == s.duplicates
    # proposals depend on the seed and the history only: the restored searcher proposes the same
    assert [restored.suggest(f"t{i}")["arch"] for i in range(5, 8)] == [s.suggest(f"t{i}")["arch"] for i in range(5, 8)]


def test_restore_refuses_a_pickle_and_runs_none_of_it(tmp_path):
    from orchestrator.strategy.proposals import StateError
    from tests.crafted import plant_pickle

    path, marker = plant_pickle(tmp_path / "searcher-state.pkl", tmp_path)
    with pytest.raises(StateError, match="searcher state is not readable"):
        PrescreenSearcher(config()).restore(str(path))
    assert not marker.exists()


def test_duplicate_architectures_are_not_trained_twice():
    heard = Recorder()
    # a tiny space: only a handful of distinct architectures exist
    s = PrescreenSearcher(config(bounds={"out_channel0": [8], "k0": [3], "M": [1, 1], "R": [1, 1], "B": [1, 1],
                                         "convblock": [1], "widenfact": [0.5, 0.5], "up": ["resize"],
                                         "dec_width": [1.0], "dec_blocks": [1, 2], "skip": ["concat"]},
                                 prescreen={"max_draws": 30}), listeners=[heard])
    first, second = s.suggest("a")["arch"], s.suggest("b")["arch"]
    assert first != second  # only two distinct specs (dec_blocks 1 or 2)
    assert s.suggest("c") == Searcher.FINISHED  # the space is exhausted: the search ends, no error
    assert "exhausted" in s.finished_reason and "2 networks trained" in s.finished_reason
    assert heard.rejections == []  # repeats are counted, not logged as prescreened runs
    assert s.duplicates >= 30
    assert heard.progress[-1].finished_reason == s.finished_reason  # listeners hear why it ended
    assert {t.state for t in s.proposals.study.trials} >= {optuna.trial.TrialState.FAIL}


def test_the_grid_sampler_visits_every_network_once_then_finishes():
    bounds = {"out_channel0": [8, 16], "M": [1, 2], "R": [1, 1], "B": [1, 2], "convblock": [1], "k0": [3],
              "widenfact": [0.5, 0.5], "up": ["resize"], "dec_width": [1.0], "dec_blocks": [1, 1], "skip": ["concat"]}
    cfg = config(sampler="grid", trials=100, bounds=bounds, prescreen={"candidates": 1})
    s = PrescreenSearcher(cfg)
    grid = {a.to_json() for a in s.space.enumerate()}
    assert len(grid) == 2 * (2 + 4)  # out_channel0 x (B1 | B1, B2)
    got = []
    while isinstance(suggested := s.suggest(f"t{len(got)}"), dict):
        got.append(suggested["arch"])
        s.on_trial_complete(f"t{len(got) - 1}", {"final": True, "dice_1d": 0.5})
    assert suggested == Searcher.FINISHED and s.suggest("again") == Searcher.FINISHED
    assert sorted(got) == sorted(grid)  # each exactly once
    assert s.finished_reason.startswith("the grid is done: every one of the space's 12 networks")
    # the order is a seeded shuffle: another seed, another order, the same networks
    other = PrescreenSearcher(config(sampler="grid", trials=100, bounds=bounds, prescreen={"candidates": 1}, seed=5))
    order = [other.suggest(f"t{i}")["arch"] for i in range(12)]
    assert sorted(order) == sorted(got) and order != got


def test_the_grid_sampler_refuses_prescreening():
    from orchestrator.config import ConfigError

    with pytest.raises(ConfigError, match="^prescreen.candidates: sampler grid trains every network"):
        config(sampler="grid")
