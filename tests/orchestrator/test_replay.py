"""Search logic over many trials, in seconds: the real search loop (Ray Tune, ASHA, the
prescreening searcher, MLflow) with the table evaluator instead of training.

The searches here run the CLI's ``main`` in the test process (``nasseg_here``), one after the other
on one local Ray, as several searches from one Python session would: the same code path without a
new interpreter's imports and a Ray start per search (~15 CPU s each on 2 cores). ``nasseg search``
as a real process, local Ray included, is tested in test_search_e2e.py, test_replay_resume.py and
tests/deploy/."""
import subprocess
import sys
import time
from typing import NamedTuple

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.orchestrator.replay import TINY, write_table
from tests.orchestrator.test_search_e2e import ROOT, nasseg_here, runs_of
from tests.stores import copy_store

pytestmark = pytest.mark.slow

COMMON = {"data": "synthetic:4", "seed": 3, "objectives": ["dice_1d", "tiles"],
          "train": {"epochs": 4, "drift_times": [1, 86400]},
          "resources": {"cpus_per_trial": 0.25, "max_concurrent_trials": 8, "retries": 0}}


POLL = """
import sys, time
from mlflow.tracking import MlflowClient
while True:  # a reader of the store from the search's first second on, as `mlflow ui` would be
    try:
        MlflowClient(sys.argv[1]).search_experiments()
    except Exception as exc:
        print(type(exc).__name__, str(exc)[:200], flush=True)
    time.sleep(0.1)
"""


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module", autouse=True)
def one_local_ray():
    """The local Ray that the first search here starts serves the others; stopped after the module
    (the test process goes on with other modules)."""
    yield
    import ray

    ray.shutdown()


def here(args, cwd, capsys) -> Ran:
    return Ran(*nasseg_here(args, cwd, capsys))


def search(tmp_path, capsys, name, bounds, trials, table_kw=None, store=None, **extra):
    """A replayed search in ``tmp_path`` (on a copy of the migrated ``store`` when given)."""
    if store is not None and not (tmp_path / "mlflow.db").exists():
        copy_store(store, tmp_path)
    table = tmp_path / f"{name}.jsonl"
    write_table(table, bounds, **(table_kw or {}))
    cfg = {**COMMON, "name": name, "trials": trials, "bounds": bounds, "evaluator": f"table:{table}", **extra}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    start = time.time()
    proc = here(["search", f"{name}.yaml"], tmp_path, capsys)
    return proc, time.time() - start, MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_more_trials_than_networks_end_cleanly_with_a_reason(tmp_path, migrated_store, capsys):
    proc, _, client = search(tmp_path, capsys, "tiny", TINY, trials=5, scheduler={"enabled": False}, store=migrated_store)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ended early: no new feasible network" in proc.stdout and "2 networks trained" in proc.stdout
    trials = [r for r in runs_of(client, "tiny", "trial") if r.data.tags["nasseg.stage"] != "prescreened"]
    assert len(trials) == 2 and all(r.data.tags["nasseg.stage"] == "trained" for r in trials)
    # repeats never become runs: every other run is a rejection for a constraint or by the surrogate
    trained_ids = {r.info.run_id for r in trials}
    others = [r for r in runs_of(client, "tiny", "trial") if r.info.run_id not in trained_ids]
    assert all(r.data.tags["nasseg.reason"].startswith(("constraint:", "surrogate:")) for r in others)
    (parent,) = runs_of(client, "tiny", "search")
    assert parent.info.status == "FINISHED" and parent.data.metrics["duplicate_proposals"] > 0


def test_a_grid_search_trains_every_network_once_and_ends_cleanly(tmp_path, migrated_store, capsys):
    proc, _, client = search(tmp_path, capsys, "grid", TINY, trials=5, sampler="grid", prescreen={"candidates": 1},
                             scheduler={"enabled": False}, store=migrated_store)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ended early: the grid is done: every one of the space's 2 networks" in proc.stdout
    trials = runs_of(client, "grid", "trial")
    assert len(trials) == 2 and all(r.data.tags["nasseg.stage"] == "trained" for r in trials)
    assert len({r.data.params["arch.dec_blocks"] for r in trials}) == 2
    (parent,) = runs_of(client, "grid", "search")
    assert parent.info.status == "FINISHED" and parent.data.metrics.get("duplicate_proposals", 0) == 0
    # warm-started from a table that holds one of the two networks, the grid trains only the other
    from orchestrator.evaluation.tables import read_table
    from orchestrator.evaluation.tables import write_table as write_results

    write_results(tmp_path / "one.jsonl.gz", list(read_table(tmp_path / "grid.jsonl").values())[:1])
    proc, _, client = search(tmp_path, capsys, "grid2", TINY, trials=5, sampler="grid", prescreen={"candidates": 1},
                             scheduler={"enabled": False}, warm_start=f"table:{tmp_path / 'one.jsonl.gz'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "warm-started on 1 results of table:" in proc.stdout
    (trial,) = runs_of(client, "grid2", "trial")
    done = read_table(tmp_path / "one.jsonl.gz")
    from search_spaces import ArchSpec

    assert int(trial.data.params["arch.dec_blocks"]) != ArchSpec.from_json(next(iter(done.values())).arch).dec_blocks
    (parent,) = runs_of(client, "grid2", "search")
    assert parent.data.metrics["warm_start_results"] == 1


def test_the_committed_nassegnet_bench_table_replays_a_100_trial_search(tmp_path, migrated_store, capsys):
    """The shipped table through the normal path: its own config, the table evaluator, ASHA on its
    per-epoch val_dice_1d. The grid's seeded order is the order the table was generated in, so its
    first 100 networks are in the table while the table is still partial."""
    from orchestrator.evaluation.tables import read_table

    bench = ROOT / "benchmarks" / "nassegnet_bench"
    rows = read_table(bench / "table.jsonl.gz")
    assert len(rows) >= 100
    cfg = yaml.safe_load((bench / "table.yaml").read_text())
    cfg.update(name="bench", trials=100, evaluator=f"table:{bench / 'table.jsonl.gz'}",
               scheduler={"enabled": True, "grace_period": 2, "reduction_factor": 2},
               resources={"cpus_per_trial": 0.25, "max_concurrent_trials": 8, "retries": 0})
    (copy_store(migrated_store, tmp_path) / "bench.yaml").write_text(yaml.safe_dump(cfg))
    proc = here(["search", "bench.yaml"], tmp_path, capsys)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    trials = runs_of(client, "bench", "trial")
    stages = [r.data.tags["nasseg.stage"] for r in trials]
    assert len(trials) == 100 and set(stages) == {"trained", "stopped"} and stages.count("stopped") >= 30, stages
    from search_spaces import ArchSpec, network_signature

    for run in trials:  # every trained trial reports the table's recorded values
        row = rows[network_signature(ArchSpec.from_params(run.data.params, prefix="arch."))]
        if run.data.tags["nasseg.stage"] == "trained":
            assert run.data.metrics["dice_1y"] == pytest.approx(row.final["dice_1y"])
    best = max(r.data.metrics["dice_1d"] for r in trials if r.data.tags["nasseg.stage"] == "trained")
    assert f"dice_1d = {best:.4f}" in proc.stdout, proc.stdout[-2000:]
    # on the fluorescence table programming draws are a small part of the spread: said, not alarmed
    parent = runs_of(client, "bench", "search")[0]
    assert 0 < parent.data.metrics["programming_noise_share"] < 0.5
    assert "programming noise: the trials' dice_1d spread by" in proc.stdout and "raise train.drift_reps" not in proc.stdout


def test_a_search_whose_trials_all_fail_exits_1_and_registers_nothing(tmp_path, capsys, recwarn):
    # the table holds every network but one epoch, while train.epochs asks four: every trial fails.
    # Meanwhile another process reads the (new) store from the first second, as `mlflow ui` would:
    # the search must neither crash nor corrupt the store (it did: "_alembic_tmp_... already exists")
    reader = subprocess.Popen([sys.executable, "-c", POLL, f"sqlite:///{tmp_path / 'mlflow.db'}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc, _, client = search(tmp_path, capsys, "allfail", TINY, trials=2, table_kw={"epochs": 1},
                                 scheduler={"enabled": False})
    finally:
        reader.kill()
        reader.communicate()
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("nasseg: no model: all 2 trials failed") and "2 of 2 failures: " in last
    assert "holds 1 epochs of this network, train.epochs asks 4" in last
    assert "predict" not in proc.stdout
    # its report's plots have nothing to label: no matplotlib warning reaches the console
    assert not [str(w.message) for w in recwarn if "legend" in str(w.message)]
    assert client.search_registered_models() == []
    (parent,) = runs_of(client, "allfail", "search")
    assert parent.info.status == "FAILED" and "train.epochs asks 4" in parent.data.tags["nasseg.failure"]
