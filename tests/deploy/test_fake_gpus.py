"""Fake GPUs on a local Ray: four half-GPU trials at once, each told its GPU (a module of its own
so that xdist runs it beside the two-node cluster test)."""
import subprocess

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.deploy.test_cluster import TINY, trials_of
from tests.orchestrator.test_search_e2e import NASSEG, env_for
from tests.stores import copy_store

pytestmark = pytest.mark.slow


def test_fake_gpus_run_four_half_gpu_trials_at_once(tmp_path, migrated_store):
    (copy_store(migrated_store, tmp_path) / "c.yaml").write_text(
        "name: gpus\ntrials: 4\nlocal_ray: {num_cpus: 2, num_gpus: 2}\n"
        "resources: {cpus_per_trial: 0.5, gpus_per_trial: 0.5, max_concurrent_trials: 4, retries: 0}\n"
        + TINY.replace("epochs: 3", "epochs: 2").replace("steps_per_epoch: 3", "steps_per_epoch: 8"))
    proc = subprocess.run(NASSEG + ["search", "c.yaml"], cwd=tmp_path, env=env_for(tmp_path), capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = trials_of(client, "gpus")
    assert len(runs) == 4
    gpu_ids = sorted(r.data.tags["nasseg.gpu_ids"] for r in runs)
    assert gpu_ids == ["0", "0", "1", "1"]  # each trial told its GPU; two trials share each GPU
    # on a node without CUDA each trial falls back to CPU; on a GPU node it trains on CUDA
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert all(r.data.tags["nasseg.device"] == expected for r in runs)
    spans = [(r.data.metrics["started_at"], r.data.metrics["started_at"] + r.data.metrics["trial_time_s"])
             for r in runs]
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap == 4, spans  # all four ran at the same time
