"""Ordinary mistakes end in one line and exit 2, before anything is written (issue 9's table).

Most cases call the CLI's ``main`` in this process (same code path, no 7 s interpreter start per
case); a few go through a real subprocess to prove the process-level contract."""
import os
import time

import numpy as np
import pytest
from skimage.io import imsave

from orchestrator.cli import main
from tests.orchestrator.test_search_e2e import env_for, nasseg

BASE = ("name: bad\ntrials: 2\ndata: synthetic:4\nscheduler: {enabled: false}\nresources: {retries: 0}\n"
        "train: {epochs: 2, steps_per_epoch: 1, batch_size: 2, patch_size: 32, drift_times: [1, 86400], drift_reps: 1}\n")


def folder_data(root, kind):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        mask = np.zeros((40, 40), np.uint8)
        if kind != "empty":
            mask[5:15, 5:15] = 255
        imsave(root / "images" / f"s{i}.png", (rng.random((40, 40)) * 255).astype(np.uint8), check_contrast=False)
        imsave(root / "masks" / f"s{i}.png", mask[:30] if kind == "size" and i == 1 else mask, check_contrast=False)
    if kind == "truncated":
        png = root / "images" / "s2.png"
        png.write_bytes(png.read_bytes()[:60])
    return root


def dsb_without_masks(root):
    for i in range(3):
        (root / f"id{i}" / "images").mkdir(parents=True)
        imsave(root / f"id{i}" / "images" / f"id{i}.png", np.zeros((20, 20), np.uint8), check_contrast=False)
        if i != 1:
            (root / f"id{i}" / "masks").mkdir()
            imsave(root / f"id{i}" / "masks" / "m.png", np.full((20, 20), 255, np.uint8), check_contrast=False)
    return root


@pytest.mark.parametrize("config, message", [
    (BASE + "seed: -1\n", "seed: must be >= 0, got -1"),
    (BASE.replace("epochs: 2", "epochs: 1.5"), "train.epochs: expected an integer, got float 1.5"),
    (BASE.replace("epochs: 2", "epochs: '2'"), "train.epochs: expected an integer, got str '2'"),
    (BASE.replace("patch_size: 32", "patch_size: 32, lr: .inf"), "train.lr: expected a finite number, got inf"),
    (BASE.replace("scheduler: {enabled: false}", "scheduler: {grace_period: 3}"),
     "scheduler.grace_period: 3 is more than train.epochs (2)"),
    ("", "c.yaml: the config is empty"),
    (BASE + "constraints: {max_params: 10}\n", "constraints: no network of the search space meets them"),
    (BASE + "tracking_uri: 'http://:s3cret@127.0.0.1:5000'\n", "tracking_uri: the URI contains credentials"),
    (BASE + "tracking_uri: 'http://127.0.0.1:5000/?token=s3cret'\n", "tracking_uri: the URI contains a secret"),
    (BASE + "storage: 's3://AKIA:s3cret@bucket/runs'\n", "storage: the URI contains credentials"),
    (BASE.replace("synthetic:4", "folder:DATA/truncated"), "s2.png: unreadable image (OSError: image file is truncated)"),
    (BASE.replace("synthetic:4", "folder:DATA/size"), "s1.png: mask size (30, 40) does not match image size (40, 40)"),
    (BASE.replace("synthetic:4", "dsb2018:DATA/dsb"), "id1: sample without masks"),
    (BASE.replace("synthetic:4", "folder:DATA/empty"), "every mask is empty (no nuclei in any of the 3 samples)"),
])
def test_bad_search_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, config, message):
    data = tmp_path / "data"
    for kind in ("truncated", "size", "empty"):
        folder_data(data / kind, kind)
    dsb_without_masks(data / "dsb")
    work = tmp_path / "work"
    work.mkdir()
    (work / "c.yaml").write_text(config.replace("DATA", str(data)))
    monkeypatch.chdir(work)
    start = time.time()
    code = main(["search", "c.yaml"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("nasseg: error:") and message in err[0], err
    assert "s3cret" not in err[0]  # a secret is never echoed
    assert time.time() - start < 30
    assert sorted(p.name for p in work.iterdir()) == ["c.yaml"]  # no store, no storage folder


def test_a_gpu_request_no_node_can_meet_is_refused_not_queued_forever(tmp_path):
    # through a real subprocess: local Ray starts (2 CPUs, no GPU) and the request is refused
    (tmp_path / "c.yaml").write_text(BASE.replace("retries: 0", "retries: 0, gpus_per_trial: 1"))
    start = time.time()
    proc = nasseg(["search", "c.yaml"], tmp_path, env_for(tmp_path), timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "resources: no node of the Ray cluster can run a trial that needs 1 CPU and 1 GPU" in lines[0]
    assert time.time() - start < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize("args, message", [
    (["report", "../x"], "report: '../x' is not a search name"),
    (["final", "nope"], "nasseg_runs/nope/search_config.json: no saved search config"),
    (["final", "nope", "--tracking-uri", "sqlite:///missing.db", "--config", "c.yaml"], "tracking URI sqlite:///"),
    (["report", "nope", "--tracking-uri", "sqlite:///missing.db", "--config", "c.yaml"],
     "tracking URI sqlite:///"),
    (["predict", "--model", "models:/nasseg-x/1", "--input", "in", "--output", "out", "--tracking-uri",
      "sqlite:///missing.db"], "no MLflow store at"),
    (["predict", "--model", "nasseg-x", "--input", "in", "--output", "out"], "expected an MLflow model URI"),
    (["predict", "--model", "models:/nasseg-x/1", "--input", "in", "--output", "file.txt"],
     "--output file.txt: exists and is not a folder"),
    (["predict", "--model", "models:/nasseg-x/1", "--input", "notimages", "--output", "out"],
     "fake.png: unreadable image"),
    (["predict", "--model", "models:/nasseg-x/1", "--input", "in", "--output", "out", "--drift", "-5"],
     "--drift: expected seconds > 0"),
    (["predict", "--model", "models:/nasseg-x/1", "--input", "in", "--output", "out", "--tracking-uri",
      "http://:tok@127.0.0.1:9"], "tracking_uri: the URI contains credentials"),
])
def test_bad_predict_and_report_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("name: nope\n")
    (tmp_path / "in").mkdir()
    imsave(tmp_path / "in" / "a.png", np.zeros((20, 20), np.uint8), check_contrast=False)
    (tmp_path / "notimages").mkdir()
    (tmp_path / "notimages" / "fake.png").write_text("not a png")
    (tmp_path / "file.txt").write_text("x")
    before = sorted(os.listdir(tmp_path))
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert sorted(os.listdir(tmp_path)) == before  # no store, no output folder


LIGHT = """
import sys
from orchestrator.cli import main
code = main(["search", sys.argv[1]])
heavy = sorted(m for m in ("torch", "monai", "mlflow", "ray", "optuna", "aihwkit") if m in sys.modules)
print(code, ",".join(heavy) or "none")
"""


def test_a_bad_config_is_refused_before_torch_mlflow_or_ray_is_imported(tmp_path):
    # a refused config used to cost 7 s of imports (torch, MONAI, MLflow, Ray) before its one line;
    # now the config layer needs none of them (trainers.settings, a lazy network builder)
    import subprocess
    import sys

    (tmp_path / "c.yaml").write_text(BASE + "seed: -1\n")
    proc = subprocess.run([sys.executable, "-c", LIGHT, str(tmp_path / "c.yaml")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.stdout.split() == ["2", "none"], proc.stdout + proc.stderr[-2000:]
    assert proc.stderr.strip() == "nasseg: error: seed: must be >= 0, got -1"
