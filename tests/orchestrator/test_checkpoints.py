"""CheckpointRetention: a superseded checkpoint lives until two snapshots no longer name it."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune import Checkpoint

from orchestrator.driver.checkpoints import CheckpointRetention


def _checkpoint(trial_dir, index):
    folder = trial_dir / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(str(index))
    return Checkpoint.from_directory(str(folder))


def _left(trial_dir):
    return sorted(p.name for p in trial_dir.iterdir())


def test_superseded_checkpoints_outlive_two_snapshots_and_only_the_newest_stays_at_the_end(tmp_path):
    a, b = tmp_path / "trial_a", tmp_path / "trial_b"
    ta, tb = SimpleNamespace(trial_id="a", checkpoint=None), SimpleNamespace(trial_id="b", checkpoint=None)
    keep = CheckpointRetention()
    keep.on_trial_start(0, [], ta)
    for i in range(3):
        ta.checkpoint = _checkpoint(a, i)
        keep.on_checkpoint(0, [], ta, ta.checkpoint)
    # checkpoints 0 and 1 are superseded, but no snapshot has been taken since: all stay
    assert _left(a) == ["checkpoint_000000", "checkpoint_000001", "checkpoint_000002"]
    assert keep.get_state() is None  # snapshot 1 begins (it names checkpoint 2): nothing deleted yet
    assert _left(a) == ["checkpoint_000000", "checkpoint_000001", "checkpoint_000002"]
    ta.checkpoint = _checkpoint(a, 3)
    keep.on_checkpoint(0, [], ta, ta.checkpoint)
    keep.get_state()  # snapshot 2: 0 and 1 were superseded before snapshot 1 -> deleted; 2 stays (snapshot 1 names it)
    assert _left(a) == ["checkpoint_000002", "checkpoint_000003"]
    keep.get_state()
    assert _left(a) == ["checkpoint_000003"]
    # a resumed trial starts from the checkpoint its snapshot named; a killed session left more
    tb.checkpoint = _checkpoint(b, 0)
    _checkpoint(b, 1)  # written after the snapshot that the resume read
    (b / "result.json").write_text("{}")
    keep.on_trial_start(0, [], tb)
    tb.checkpoint = _checkpoint(b, 2)
    keep.on_checkpoint(0, [], tb, tb.checkpoint)
    assert _left(b) == ["checkpoint_000000", "checkpoint_000001", "checkpoint_000002", "result.json"]
    keep.on_experiment_end([ta, tb, SimpleNamespace(trial_id="c", checkpoint=None)])
    assert _left(a) == ["checkpoint_000003"] and _left(b) == ["checkpoint_000002", "result.json"]
    assert (b / "checkpoint_000002" / "state.json").read_text() == "2"
