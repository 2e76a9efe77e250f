"""The prescreening searcher, driven directly (no Ray workers): constraints, ranking, Optuna state."""
import optuna
import pytest

from orchestrator.config import SearchConfig
from orchestrator.prescreen import PrescreenError, PrescreenSearcher
from search_spaces import ArchSpec, hardware_cost


def config(**kw):
    base = {"name": "t", "trials": 20, "objectives": ["dice_1d"], "prescreen": {"candidates": 4, "min_observations": 3}}
    base.update(kw)
    return SearchConfig.from_dict(base)


def fake_score(spec: ArchSpec) -> float:
    """A deterministic 'measured' score: bigger first stage, fewer tiles is better."""
    return 0.5 + 0.02 * spec.out_channel0 - 0.01 * hardware_cost(spec).tiles


def test_infeasible_candidates_are_rejected_and_never_suggested():
    rejected = []
    s = PrescreenSearcher(config(constraints={"max_tiles": 12}), on_reject=rejected.append)
    for i in range(15):
        cfg = s.suggest(f"trial{i}")
        assert hardware_cost(ArchSpec.from_json(cfg["arch"])).tiles <= 12
    by_constraint = [r for r in rejected if r.reason.startswith("constraint: tiles")]
    duplicates = [r for r in rejected if r.reason.startswith("duplicate of")]
    assert by_constraint and len(by_constraint) + len(duplicates) == len(rejected)
    assert all(r.cost["tiles"] > 12 for r in by_constraint)
    states = [t.state for t in s.proposals.study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(by_constraint)
    assert states.count(optuna.trial.TrialState.FAIL) == len(duplicates)


def test_surrogate_ranks_once_it_has_enough_trials():
    rejected = []
    s = PrescreenSearcher(config(), on_reject=rejected.append)
    for i in range(3):  # pass-through phase: one candidate per trial, nothing rejected
        spec = ArchSpec.from_json(s.suggest(f"t{i}")["arch"])
        s.on_trial_complete(f"t{i}", {"dice_1d": fake_score(spec)})
    assert rejected == [] and s.surrogate.ready
    chosen = s.suggest("t3")
    assert chosen["predicted"] is not None
    assert len(rejected) == 3 and all(r.reason.startswith("surrogate: ranked") for r in rejected)
    assert all(r.predicted <= chosen["predicted"] for r in rejected)
    assert {r.for_trial for r in rejected} == {"t3"}


def test_stopped_and_failed_trials_do_not_feed_the_surrogate():
    s = PrescreenSearcher(config())
    s.suggest("a")
    s.suggest("b")
    s.on_trial_complete("a", {"val_dice": 0.5})  # stopped by ASHA: no final score
    s.on_trial_complete("b", None, error=True)
    assert s.surrogate.scores == []
    states = {t.state for t in s.proposals.study.trials}
    assert states == {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL}


def test_constraints_too_tight_give_a_clear_error():
    s = PrescreenSearcher(config(constraints={"max_params": 10}, prescreen={"max_draws": 5}))
    with pytest.raises(PrescreenError, match="no new feasible candidate in 5 draws"):
        s.suggest("x")


def test_save_and_restore_keep_optuna_and_surrogate_state(tmp_path):
    s = PrescreenSearcher(config())
    for i in range(4):
        spec = ArchSpec.from_json(s.suggest(f"t{i}")["arch"])
        s.on_trial_complete(f"t{i}", {"dice_1d": fake_score(spec)})
    s.save(str(tmp_path / "state.pkl"))
    restored = PrescreenSearcher(config())
    restored.restore(str(tmp_path / "state.pkl"))
    assert len(restored.proposals.study.trials) == len(s.proposals.study.trials)
    assert restored.surrogate.scores == s.surrogate.scores and restored.surrogate.ready
    # proposals depend on the seed and the history only: the restored searcher proposes the same
    assert [restored.suggest(f"t{i}")["arch"] for i in range(5, 8)] == [s.suggest(f"t{i}")["arch"] for i in range(5, 8)]


def test_restore_refuses_a_pickle_and_runs_none_of_it(tmp_path):
    from orchestrator.proposals import StateError
    from tests.crafted import plant_pickle

    path, marker = plant_pickle(tmp_path / "searcher-state.pkl", tmp_path)
    with pytest.raises(StateError, match="searcher state is not readable"):
        PrescreenSearcher(config()).restore(str(path))
    assert not marker.exists()


def test_duplicate_architectures_are_not_trained_twice():
    rejected = []
    # a tiny space: only a handful of distinct architectures exist
    s = PrescreenSearcher(config(bounds={"out_channel0": [8], "k0": [3], "M": [1, 1], "R": [1, 1], "B": [1, 1],
                                         "convblock": [1], "widenfact": [0.5, 0.5], "up": ["resize"],
                                         "dec_width": [1.0], "dec_blocks": [1, 2], "skip": ["concat"]},
                                 prescreen={"max_draws": 30}), on_reject=rejected.append)
    first, second = s.suggest("a")["arch"], s.suggest("b")["arch"]
    assert first != second  # only two distinct specs (dec_blocks 1 or 2)
    with pytest.raises(PrescreenError):
        s.suggest("c")  # the space is exhausted
    assert len(rejected) >= 30 and {r.reason for r in rejected} <= {"duplicate of a", "duplicate of b"}
    assert {t.state for t in s.proposals.study.trials} >= {optuna.trial.TrialState.FAIL}
