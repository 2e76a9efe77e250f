"""``final.top_k: 0`` and ``nasseg final`` later, for real: kill -9 of the final training and its
resume (a module of its own so that xdist runs it beside the e2e module's shared search)."""
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.orchestrator.test_search_e2e import BASE, NASSEG, env_for, nasseg, nasseg_here, runs_of
from tests.stores import copy_store

pytestmark = pytest.mark.slow


def test_final_off_registers_the_best_trial_and_nasseg_final_resumes_after_kill_9(tmp_path, migrated_store, capsys):
    """``final.top_k: 0`` keeps the behaviour from before final training (the best search trial is
    the model); ``nasseg final`` trains it later; a kill -9 during that final training resumes from
    the last checkpointed epoch, the run is reused, and the final network becomes version 2."""
    cfg_text = "name: e2e0\ntrials: 2\nscheduler: {enabled: false}\nfinal: {top_k: 0, epochs: 4, steps_per_epoch: 10}\n"
    (copy_store(migrated_store, tmp_path) / "c.yaml").write_text(cfg_text + BASE)
    env = env_for(tmp_path)
    proc = nasseg(["search", "c.yaml"], tmp_path, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (v1,) = client.search_model_versions("name = 'nasseg-e2e0'")
    assert not v1.tags["nasseg.trial_id"].startswith("final-") and not runs_of(client, "e2e0", "final")
    assert "final training" not in proc.stdout

    driver = subprocess.Popen(NASSEG + ["final", "e2e0", "--top-k", "1"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, history = time.time() + 240, []
    while time.time() < deadline and not history:
        time.sleep(0.5)
        finals = runs_of(client, "e2e0", "final")
        history = client.get_metric_history(finals[0].info.run_id, "val_dice") if finals else []
    assert history, "final training never reported an epoch"
    time.sleep(2.5)  # one experiment snapshot (every 2 s) names the first epoch's checkpoint
    driver.kill()
    driver.wait()
    killed_at = time.time() * 1000
    (run,) = runs_of(client, "e2e0", "final")
    assert run.data.tags["nasseg.stage"] == "running" and len(client.get_metric_history(run.info.run_id, "val_dice")) < 4

    proc = nasseg(["final", "e2e0", "--top-k", "1"], tmp_path, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = runs_of(client, "e2e0", "final")          # the same run, finished
    assert run.data.tags["nasseg.stage"] == "trained" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_dice")
    assert {h.step for h in history} == {1, 2, 3, 4}
    assert min(h.step for h in history if h.timestamp > killed_at) > 1   # resumed, not restarted
    assert run.data.tags["nasseg.search_trial"] == v1.tags["nasseg.trial_id"]   # the best (only top-1) trial
    versions = sorted(client.search_model_versions("name = 'nasseg-e2e0'"), key=lambda v: int(v.version))
    assert [v.tags["nasseg.trial_id"] for v in versions] == [v1.tags["nasseg.trial_id"], run.data.tags["nasseg.trial_id"]]
    assert f"model: models:/nasseg-e2e0/2 ({run.data.tags['nasseg.trial_id']})" in proc.stdout
    assert runs_of(client, "e2e0", "search")[0].info.status == "FINISHED"
    # more networks than the final training holds: refused in one line, nothing trained, refused
    # before Ray or a trainer is set up (Ray's saved state is read as data; the training would
    # announce itself with "final training of N network(s) with ...")
    # (in this process: neither call starts Ray or a trainer)
    code, out, err = nasseg_here(["final", "e2e0", "--top-k", "2"], tmp_path, capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith("nasseg: error: final training"), err[-2000:]
    assert "it cannot add" in err and "network(s) with" not in out
    assert len(runs_of(client, "e2e0", "final")) == 1
    # a finished final training is never redone: another call only registers what exists, without Ray
    code, out, err = nasseg_here(["final", "e2e0", "--top-k", "1"], tmp_path, capsys)
    assert code == 0 and len(runs_of(client, "e2e0", "final")) == 1, err[-2000:]
    assert "finished earlier: nothing to train" in out and "network(s) with" not in out
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert len(client.search_model_versions("name = 'nasseg-e2e0'")) == 2
