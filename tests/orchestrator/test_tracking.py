"""Tracker bookkeeping after a driver kill: adopt re-created trials' runs, close lost ones."""
from orchestrator.config import SearchConfig
from orchestrator.tracking import Tracker
from tests.orchestrator.test_surrogate import specs


def test_recreated_trial_adopts_its_run_and_lost_runs_are_closed(tmp_path):
    cfg = SearchConfig.from_dict({"name": "t", "tracking_uri": f"sqlite:///{tmp_path}/m.db", "storage": str(tmp_path)})
    a, b = specs(2, seed=3)
    first = Tracker(cfg)  # the driver that is killed: two trials running
    run_a = first.trial_run("old-a", a, {"candidate": "old-a-c0"}, "running")
    run_b = first.trial_run("old-b", b, {"candidate": "old-b-c0"}, "running")
    second = Tracker(cfg)  # the resumed driver re-creates trial a under a new id
    assert second.trial_run("new-a", a, {"candidate": "new-a-c0"}, "running", live_ids={"new-a"}) == run_a
    run = second.client.get_run(run_a)
    assert run.data.tags["nasseg.trial_id"] == "new-a" and run.data.tags["nasseg.previous_trial_id"] == "old-a"
    # a trial Ray still knows is never adopted by another one
    assert second.trial_run("new-c", b, {}, "running", live_ids={"new-c", "old-b"}) != run_b
    second.finish(run_a, "trained")
    second.finish(second.trial_run("new-c", b, {}, "running"), "trained")
    assert second.close_lost_runs() == 1  # old-b: still running at the end
    lost = second.client.get_run(run_b)
    assert lost.data.tags["nasseg.role"] == "lost" and lost.info.status == "KILLED"
    assert second.close_lost_runs() == 0
