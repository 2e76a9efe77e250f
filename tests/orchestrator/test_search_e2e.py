"""End to end, for real: the nasseg CLI in a subprocess, a local Ray, a SQLite MLflow store.

Checks the MLflow contract run by run, the registered model, ``predict`` and ``report``,
failure injection, the exit codes for bad input, and kill -9 of the driver + resume.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from mlflow.tracking import MlflowClient
from skimage.io import imsave

from search_spaces import ArchSpec
from tests.crafted import plant_pickle
from tests.stores import copy_store

pytestmark = pytest.mark.slow

NASSEG = [sys.executable, "-m", "orchestrator.cli"]
ROOT = Path(__file__).resolve().parents[2]

BASE = """
data: synthetic:6
val_fraction: 0.34
seed: 1
objectives: [dice_1d, tiles]
constraints: {max_tiles: 20}
train: {epochs: 2, steps_per_epoch: 2, batch_size: 4, patch_size: 32, drift_reps: 1, drift_times: [1, 86400],
        head: contour}
prescreen: {candidates: 3, min_observations: 2}
resources: {cpus_per_trial: 1, max_concurrent_trials: 2, retries: 0}
"""


#: what a nasseg process under test never inherits from the developer's environment
NOT_INHERITED = ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")


def env_for(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(PYTHONPATH=str(ROOT), **extra)  # Ray's authentication on, as for users
    return env


def nasseg(args, cwd, env, timeout=400):
    return subprocess.run(NASSEG + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def nasseg_here(args, cwd, capsys, **env):
    """The CLI's ``main`` in this process, as the subprocess would run it (cwd, env without a
    tracking URI or Ray address, plus ``env``): (exit code, stdout, stderr). The same code path
    without a new interpreter's ~10 CPU s of imports (torch, MONAI, MLflow); every command also
    runs as a real process somewhere in these tests. The process's env and cwd are restored."""
    from orchestrator.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for k in NOT_INHERITED:
        os.environ.pop(k, None)
    os.environ.update(env)
    capsys.readouterr()
    try:
        os.chdir(cwd)
        code = main(args)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    out = capsys.readouterr()
    return code, out.out, out.err


def runs_of(client, name, role):
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`nasseg.role` = '{role}'", max_results=1000)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, migrated_store):
    """One real search (hardware-aware training), shared by the contract tests. Failed trials'
    records are checked on replayed searches (tests/orchestrator/test_replay.py)."""
    tmp = copy_store(migrated_store, tmp_path_factory.mktemp("e2e"))
    cfg_text = "name: e2e\ntrials: 5\nscheduler: {enabled: false}\nfinal: {top_k: 2, steps_per_epoch: 3}\n" + BASE
    (tmp / "c.yaml").write_text(cfg_text)
    start = time.time()
    proc = nasseg(["search", "c.yaml"], tmp, env_for(tmp))
    wall = time.time() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    return {"dir": tmp, "client": client, "stdout": proc.stdout, "wall": wall}


def test_parent_and_child_runs_follow_the_contract(e2e):
    client = e2e["client"]
    parents = runs_of(client, "e2e", "search")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["trials"] == "5" and parent.data.params["train.epochs"] == "2"
    assert parent.info.status == "FINISHED"
    trials = [r for r in runs_of(client, "e2e", "trial") if r.data.tags["nasseg.stage"] != "prescreened"]
    assert len(trials) == 5
    assert len({r.data.tags["nasseg.trial_id"] for r in trials}) == 5
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert [r.data.tags["nasseg.stage"] for r in trials] == ["trained"] * 5
    for r in trials:
        spec = ArchSpec.from_params(r.data.params, prefix="arch.")
        local = client.download_artifacts(r.info.run_id, "arch.json")
        assert ArchSpec.from_json(Path(local).read_text()) == spec
        assert r.info.status == "FINISHED"
        m = r.data.metrics
        for key in ("dice_digital", "dice_1s", "dice_1d", "dice_1d_std", "dice_drop_1d", "f1_inst_1d",
                    "params", "tiles", "macs_per_px"):
            assert key in m, key
        assert 0 <= m["dice_1d"] <= 1 and m["tiles"] <= 20  # the constraint held on every worker
        assert m["dice_drop_1d"] == pytest.approx(m["dice_digital"] - m["dice_1d"], abs=1e-6)
        assert [h.step for h in client.get_metric_history(r.info.run_id, "val_dice")] == [1, 2]
        # the objective after one programming draw and a day of drift, every epoch (ASHA's signal)
        assert [h.step for h in client.get_metric_history(r.info.run_id, "val_dice_1d")] == [1, 2]
        assert m["dice_worst"] == m["dice_1d"] and "dice_1d_sem" in m   # drift times 1 s and 1 d
        assert r.data.params["train.patch_size"] == "32"


def test_final_training_retrains_the_best_trials_and_is_recorded(e2e):
    from orchestrator.config import SearchConfig
    from orchestrator.driver.final import rank_for_final

    client = e2e["client"]
    parent = runs_of(client, "e2e", "search")[0]
    trained = [r for r in runs_of(client, "e2e", "trial") if r.data.tags["nasseg.stage"] == "trained"]
    cfg = SearchConfig.from_yaml(e2e["dir"] / "c.yaml")
    top2 = rank_for_final(cfg, [(r.data.tags["nasseg.trial_id"], r.data.metrics) for r in trained])[:2]
    finals = runs_of(client, "e2e", "final")
    assert sorted(r.data.tags["nasseg.search_trial"] for r in finals) == sorted(top2)
    by_trial = {r.data.tags["nasseg.trial_id"]: r for r in trained}
    for r in finals:
        assert r.info.status == "FINISHED" and r.data.tags["nasseg.stage"] == "trained"
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert r.data.tags["nasseg.trial_id"] == "final-" + r.data.tags["nasseg.search_trial"]
        assert r.data.params["train.steps_per_epoch"] == "3" and r.data.params["train.epochs"] == "2"
        searched = by_trial[r.data.tags["nasseg.search_trial"]]
        assert ArchSpec.from_params(r.data.params, prefix="arch.") == ArchSpec.from_params(searched.data.params,
                                                                                            prefix="arch.")
        assert {"dice_digital", "dice_1d", "dice_worst", "ap50_1d", "map_dsb_1d", "tiles"} <= set(r.data.metrics)
        assert [h.step for h in client.get_metric_history(r.info.run_id, "val_dice_1d")] == [1, 2]
    from orchestrator.commands.report import spearman

    rho = spearman([by_trial[r.data.tags["nasseg.search_trial"]].data.metrics["dice_1d"] for r in finals],
                   [r.data.metrics["dice_1d"] for r in finals])
    if rho is None:   # tied scores (4 training steps can leave two networks at the same Dice)
        assert "final_search_spearman" not in parent.data.metrics
        assert "search vs final ranking: Spearman undefined over 2 networks" in e2e["stdout"]
    else:
        assert parent.data.metrics["final_search_spearman"] == pytest.approx(rho)
        assert f"search vs final ranking: Spearman {rho:.2f} over 2 networks" in e2e["stdout"]
    for r in finals:
        assert f"{r.data.tags['nasseg.trial_id']}: dice_1d search " in e2e["stdout"]


def test_prescreened_candidates_are_recorded_and_never_trained(e2e):
    client = e2e["client"]
    pre = [r for r in runs_of(client, "e2e", "trial") if r.data.tags["nasseg.stage"] == "prescreened"]
    assert pre, "demo constraints should reject some candidates"
    for r in pre:
        reason = r.data.tags["nasseg.reason"]
        assert reason.startswith(("constraint:", "surrogate:"))  # repeats are counted, never logged
        if reason.startswith("constraint: tiles"):
            assert r.data.metrics["tiles"] > 20
        assert "val_dice" not in r.data.metrics  # never reached a worker
    assert f"{len(pre)} candidate{'' if len(pre) == 1 else 's'} prescreened out" in e2e["stdout"]


def test_best_model_is_registered_and_predict_writes_labels(e2e, tmp_path, capsys):
    client = e2e["client"]
    versions = client.search_model_versions("name = 'nasseg-e2e'")
    assert len(versions) == 1
    parent = runs_of(client, "e2e", "search")[0]
    best_id = parent.data.tags["nasseg.best_trial"]
    assert versions[0].tags["nasseg.trial_id"] == best_id and best_id.startswith("final-")
    # the registered model is the best *final* network (the top scorer is always Pareto-optimal)
    finals = runs_of(client, "e2e", "final")
    (best,) = [r for r in finals if r.data.tags["nasseg.trial_id"] == best_id]
    assert best.data.metrics["dice_1d"] == max(r.data.metrics["dice_1d"] for r in finals)
    assert best.data.tags.get("nasseg.best") == "true"
    # the model carries its head and the post-processing tuned on validation after training
    (meta,) = (e2e["dir"] / "nasseg_runs" / "mlartifacts").rglob("nasseg_model.json")
    meta = json.loads(meta.read_text())
    assert meta["head"] == "contour" and meta["postprocess"]["threshold"] == best.data.metrics["pp_threshold"]
    assert meta["postprocess"]["seed"] == best.data.metrics["pp_seed"]
    assert {"map_dsb_1d", "ap50_1d", "val_map_dsb"} <= set(best.data.metrics)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    imsave(src / "a.png", (rng.random((45, 61)) * 255).astype(np.uint8), check_contrast=False)
    tifffile.imwrite(src / "b.tif", (rng.random((70, 52)) * 4000).astype(np.uint16))
    store = f"sqlite:///{e2e['dir'] / 'mlflow.db'}"
    # a real process once, from a folder without a store: the model is looked up in the store given
    # (MLflow's own models:/ resolution asked ./mlflow.db there, and created it); the other calls
    # run the CLI's main in this process (nasseg_here)
    out = tmp_path / "out"
    proc = nasseg(["predict", "--model", "models:/nasseg-e2e/latest", "--input", str(src), "--output", str(out),
                   "--tracking-uri", store], tmp_path, env_for(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "mlflow.db").exists()
    code, _, err = nasseg_here(["predict", "--model", "models:/nasseg-e2e/1", "--input", str(src), "--output",
                                str(tmp_path / "out-drift"), "--tracking-uri", store, "--drift", "86400"],
                               e2e["dir"], capsys)
    assert code == 0, err[-2000:]
    for out in (tmp_path / "out", tmp_path / "out-drift"):
        assert tifffile.imread(out / "a_labels.tif").shape == (45, 61)
        assert tifffile.imread(out / "b_labels.tif").shape == (70, 52)
        assert (out / "a_overlay.png").stat().st_size > 1000
    # MLflow's convention: without --tracking-uri, predict uses $MLFLOW_TRACKING_URI (here from a
    # folder with no mlflow.db of its own; before, it looked in ./mlflow.db and failed)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, _, err = nasseg_here(["predict", "--model", "models:/nasseg-e2e/1", "--input", str(src), "--output",
                                str(tmp_path / "o3")], elsewhere, capsys, MLFLOW_TRACKING_URI=store)
    assert code == 0, err[-2000:]
    assert tifffile.imread(tmp_path / "o3" / "a_labels.tif").shape == (45, 61)
    assert not (elsewhere / "mlflow.db").exists()
    # an unknown model: one line, exit 2, nothing written
    code, _, err = nasseg_here(["predict", "--model", "models:/nasseg-e2e/99", "--input", str(src), "--output",
                                str(tmp_path / "o4"), "--tracking-uri", store], e2e["dir"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert "models:/nasseg-e2e/99: cannot be loaded" in err and not (tmp_path / "o4").exists()
    # a crafted pickle planted in the artifact store as the weights file: refused, nothing runs
    (weights,) = (e2e["dir"] / "nasseg_runs" / "mlartifacts").rglob("weights.pt")
    real = weights.read_bytes()
    _, marker = plant_pickle(weights, tmp_path, as_torch=True)
    try:
        code, _, err = nasseg_here(["predict", "--model", "models:/nasseg-e2e/1", "--input", str(src), "--output",
                                    str(tmp_path / "o5"), "--tracking-uri", store], e2e["dir"], capsys)
    finally:
        weights.write_bytes(real)
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert "not a valid nasseg model weights file: refused to unpickle" in err
    assert not marker.exists() and not (tmp_path / "o5").exists()


def test_a_rerun_runs_the_saved_search_or_says_why_not(e2e, capsys):
    # a changed config is refused with the keys that differ, before Ray starts
    for args, message in ((["--trials", "7"], "search 'e2e' exists with another config (trials: 5 -> 7)"),
                          (["--storage", "elsewhere"], "search 'e2e' already exists in MLflow with storage ")):
        start = time.time()
        code, _, err = nasseg_here(["search", "c.yaml", *args], e2e["dir"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err[-2000:]
        assert time.time() - start < 30
    assert not (e2e["dir"] / "elsewhere").exists()
    client = e2e["client"]
    assert len([r for r in runs_of(client, "e2e", "trial") if r.data.tags["nasseg.stage"] != "prescreened"]) == 5


def test_report_artifacts_on_the_parent_run(e2e):
    client = e2e["client"]
    parent = runs_of(client, "e2e", "search")[0]
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    for f in ("pareto_front.png", "drift_curves.png", "surrogate_pred_vs_measured.png", "trials.csv",
              "overlays_best_model.png", "final.csv", "drift_curves_final.png", "final_vs_search.png"):
        assert f"report/{f}" in names, names
    proc = nasseg(["report", "e2e"], e2e["dir"], env_for(e2e["dir"]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert runs_of(client, "e2e", "search")[0].info.status == "FINISHED"   # reading does not reopen it
    csv = (e2e["dir"] / "nasseg_runs" / "e2e" / "report" / "trials.csv").read_text().splitlines()
    assert len(csv) - 1 == len(runs_of(client, "e2e", "trial"))
    import pandas as pd

    final = pd.read_csv(e2e["dir"] / "nasseg_runs" / "e2e" / "report" / "final.csv")
    trials = pd.read_csv(e2e["dir"] / "nasseg_runs" / "e2e" / "report" / "trials.csv").set_index("trial_id")
    assert len(final) == 2
    for _, row in final.iterrows():   # the search score beside the final score, per network
        assert row["search_dice_1d"] == pytest.approx(trials.loc[row["search_trial"], "dice_1d"])
        assert 0 <= row["dice_1d"] <= 1


@pytest.mark.parametrize("args, message", [
    (["search", "c.yaml", "--data", "folder:/nope"], "data folder does not exist"),
    (["search", "c.yaml", "--tracking-uri", "http://127.0.0.1:9"], "MLflow tracking store http://127.0.0.1:9 is unreachable"),
    (["search", "c.yaml", "--address", "127.0.0.1:9"], "Ray cluster at '127.0.0.1:9' is unreachable"),
    (["search", "c.yaml", "--resume", "--name", "never-ran"], "--resume: no search named 'never-ran'"),
])
def test_bad_input_fails_fast_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    # the CLI's main in this process (same code path; tests/orchestrator/test_cli_errors.py has more)
    from orchestrator.cli import main

    (tmp_path / "c.yaml").write_text("name: quick\ntrials: 2\n")
    monkeypatch.chdir(tmp_path)
    start = time.time()
    code = main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("nasseg: error:") and message in lines[0], lines
    assert time.time() - start < 30
    assert not (tmp_path / "nasseg_runs" / "quick").exists()  # nothing started


def test_a_missing_config_file_through_a_real_process(tmp_path):
    proc = nasseg(["search", "missing.yaml"], tmp_path, env_for(tmp_path), timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "nasseg: error: missing.yaml: config file not found"
    assert proc.stdout == ""


# kill -9 of the driver and resume: tests/orchestrator/test_replay_resume.py, on 100 replayed trials (it was
# here on 5 trained ones, 55-74 s; the replay checks the same and more, the Trainer's exact resume
# is tests/trainers/test_training.py, a trial's resume from Ray's checkpoint is the two-node test);
# kill -9 of `nasseg final` and its resume: tests/orchestrator/test_final_resume.py
