"""A trial's result crosses Ray as a dict once each way; "trained" is the report's final flag."""
import optuna

from orchestrator.config import SearchConfig
from orchestrator.evaluation.evaluators import EpochReport
from orchestrator.strategy.searcher import PrescreenSearcher

#: what Ray adds to a reported dict before the driver sees it (a subset of a real result)
RAY_KEYS = {"training_iteration": 3, "time_this_iter_s": 1.5, "time_total_s": 4.0, "trial_id": "ab12",
            "done": False, "date": "2026-11-29_10-00-00", "timestamp": 1764410400, "pid": 123,
            "hostname": "node", "node_ip": "10.0.0.2", "config": {"arch": "{}"}, "should_checkpoint": True}


def test_a_report_comes_back_from_rays_result_unchanged():
    sent = EpochReport(3, {"dice_1d": 0.81, "tiles": 12.0, "loss": 0.4},
                       {"node_ip": "10.0.0.2", "node_id": "n1", "gpu_ids": "", "device": "cpu"}, final=True)
    back = EpochReport.from_result({**RAY_KEYS, **sent.as_result()})
    assert back == sent
    # an integer metric stays a metric, a bool or string never becomes one
    odd = EpochReport.from_result({**RAY_KEYS, "epoch": 2, "tiles": 7, "flag": True, "note": "x"})
    assert odd.metrics == {"tiles": 7.0} and odd.epoch == 2 and not odd.final
    assert EpochReport.from_result(None) == EpochReport(0, {})


def searcher():
    cfg = SearchConfig.from_dict({"name": "t", "trials": 4, "objectives": ["dice_1d"], "sampler": "tpe",
                                  "prescreen": {"candidates": 1, "min_observations": 100}})
    return PrescreenSearcher(cfg)


def test_the_searcher_counts_a_trial_trained_by_the_final_flag_not_by_the_keys_present():
    s = searcher()
    for tid in ("final", "not-final", "final-without-objective"):
        s.suggest(tid)
    s.on_trial_complete("final", EpochReport(2, {"dice_1d": 0.7}, final=True).as_result())
    # an epoch report that happens to hold the objective's name, from a trial ASHA stopped
    s.on_trial_complete("not-final", EpochReport(1, {"dice_1d": 0.9}).as_result())
    s.on_trial_complete("final-without-objective", EpochReport(2, {"val_dice": 0.5}, final=True).as_result())
    states = [t.state for t in s.proposals.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                      optuna.trial.TrialState.PRUNED]
    assert s.proposals.study.trials[0].values == [0.7]
    assert len(s.surrogate.scores) == 1
