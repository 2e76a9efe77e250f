"""Shared test settings: small thread counts so the suite behaves on a 2-core machine."""
import os

# OpenMP threads that wait sleep instead of spinning: with the suite's parallel workers on 2 cores
# a spinning thread takes the core another process needs (set before torch loads OpenMP; searches
# started as subprocesses inherit it)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_mlflow_tracking_uri_from_elsewhere():
    """nasseg follows $MLFLOW_TRACKING_URI (tests that need MLflow's process-wide URI set this env
    var, never ``mlflow.set_tracking_uri``): every test starts without it, so neither a developer's
    team server nor an earlier test's (stopped) server leaks into a test or the CLI subprocesses
    it starts."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory):
    """An empty, migrated MLflow SQLite store, made once per session (see ``tests/stores.py``)."""
    from tests.stores import create_store

    return create_store(tmp_path_factory.mktemp("store") / "template.db")


def pytest_collection_modifyitems(config, items):
    """The slow modules (real searches, servers, clusters, training) first, the quick ones after, in
    collection order otherwise: with ``make test``'s ``-n 2 --dist loadfile --no-loadscope-reorder``
    the long modules start at once and the short ones fill the gaps at the end. (xdist's default
    order, by number of tests per module, started the server module last, on one worker, while the
    other had nothing left.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: False (slow) first
