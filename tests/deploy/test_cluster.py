"""Beyond one machine, for real on this one: a two-node Ray cluster (Ray's own multi-node test
cluster: two raylets with their own resources) and node loss mid-trial; the CPU fallback of a GPU
request (fake GPUs: tests/deploy/test_fake_gpus.py)."""
import logging
import subprocess
import time

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.orchestrator.test_search_e2e import NASSEG, env_for, runs_of
from tests.stores import copy_store
from trainers.device import select_device

pytestmark = pytest.mark.slow

# final training (tested in tests/orchestrator/test_search_e2e.py) is off: these tests are about where
# the search's trials run (with it, the two-node test took 160 s)
TINY = """
data: synthetic:6
val_fraction: 0.34
seed: 2
objectives: [dice_1d]
scheduler: {enabled: false}
prescreen: {candidates: 1, min_observations: 100}
train: {epochs: 3, steps_per_epoch: 3, batch_size: 4, patch_size: 32, drift_reps: 1, drift_times: [1, 86400]}
final: {top_k: 0}
"""


def trials_of(client, name):
    return [r for r in runs_of(client, name, "trial") if r.data.tags["nasseg.stage"] != "prescreened"]


def test_two_node_cluster_spreads_trials_and_a_lost_node_resumes_on_the_other(tmp_path, migrated_store):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    head_id, worker_id = cluster.head_node.node_id, worker.node_id
    try:
        # epochs long enough (a few seconds) that the node is removed while a trial is mid-way
        (copy_store(migrated_store, tmp_path) / "c.yaml").write_text(
            "name: cluster\ntrials: 4\nresources: {cpus_per_trial: 1, max_concurrent_trials: 2, retries: 3}\n"
            + TINY.replace("epochs: 3, steps_per_epoch: 3", "epochs: 4, steps_per_epoch: 20"))
        driver = subprocess.Popen(NASSEG + ["search", "c.yaml", "--address", cluster.address], cwd=tmp_path,
                                  env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        moved = None
        deadline = time.time() + 240
        while moved is None and time.time() < deadline and driver.poll() is None:
            time.sleep(0.5)
            try:
                runs = trials_of(client, "cluster")
            except Exception:  # experiment not created yet
                continue
            # a trial running on the second node with two epochs done: kill that node. Two, not one:
            # Ray hands the result to callbacks (our MLflow logging) before it registers that
            # result's checkpoint, so after epoch 1 is logged its checkpoint can still be in flight;
            # once epoch 2 is logged, epoch 1's checkpoint is registered (Ray waits for the save
            # before it lets the trial go on).
            for r in runs:
                if r.data.tags.get("nasseg.node_id") == worker_id and r.data.tags["nasseg.stage"] == "running" \
                        and len(client.get_metric_history(r.info.run_id, "val_dice")) >= 2:
                    moved = r.data.tags["nasseg.trial_id"]
                    cluster.remove_node(worker)
                    break
        out, _ = driver.communicate(timeout=400)
        assert driver.returncode == 0, out[-4000:]
        assert moved is not None, "no trial was ever placed on the second node:\n" + out[-3000:]
        runs = trials_of(client, "cluster")
        assert len(runs) == 4 and all(r.data.tags["nasseg.stage"] == "trained" for r in runs)
        nodes = {n for r in runs for n in r.data.tags["nasseg.node_ids"].split(",")}
        assert nodes == {head_id, worker_id}  # trials were placed on both nodes
        (victim,) = [r for r in runs if r.data.tags["nasseg.trial_id"] == moved]
        assert victim.data.tags["nasseg.node_ids"].split(",") == [worker_id, head_id]
        steps = [h.step for h in client.get_metric_history(victim.info.run_id, "val_dice")]
        # resumed from a checkpoint on the head, not from scratch: epoch 1 was never trained twice
        # (epoch 2 may be, if its own checkpoint was still in flight when the node went)
        assert sorted(set(steps)) == [1, 2, 3, 4] and steps.count(1) == 1, steps
    finally:
        cluster.shutdown()


def test_cpu_fallback_warns_once_per_process(caplog, monkeypatch):
    from ray.util.debug import reset_log_once

    from trainers.device import NO_CUDA_ONCE

    reset_log_once(NO_CUDA_ONCE)
    with caplog.at_level(logging.WARNING):
        devices = [select_device("cuda").type for _ in range(3)]
    warnings = [r.message for r in caplog.records].count("CUDA requested but not available on this node: training on CPU")
    if torch.cuda.is_available():
        assert devices == ["cuda"] * 3 and warnings == 0
    else:
        assert devices == ["cpu"] * 3 and warnings == 1
