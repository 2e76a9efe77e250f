"""A real MLflow tracking server on loopback with PostgreSQL as its backend store: a search logs
over HTTP and reads back the same as with the SQLite default."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.orchestrator.test_search_e2e import NASSEG, env_for, runs_of
from tests.stores import copy_store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# final training off (its records are checked in tests/orchestrator/test_search_e2e.py)
CONFIG = """
name: server
trials: 3
data: synthetic:6
val_fraction: 0.34
seed: 4
objectives: [dice_1d]
scheduler: {enabled: false}
prescreen: {candidates: 1, min_observations: 100}
train: {epochs: 2, steps_per_epoch: 2, batch_size: 4, patch_size: 32, drift_reps: 1, drift_times: [1, 86400]}
resources: {cpus_per_trial: 1, max_concurrent_trials: 1, retries: 0}
final: {top_k: 0}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(backend: str, artifacts: Path, wait_s: int, *args: str, cwd=None, env=None):
    """An ``mlflow server`` on a free loopback port, returned once /health answers: (process, url)."""
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", *args, "--backend-store-uri",
                               backend, "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                return server, url
        except OSError:
            time.sleep(1)
    server.kill()
    pytest.fail(f"MLflow server did not become healthy in {wait_s} s")


def stop(server: subprocess.Popen) -> None:
    """Terminate the server's process group (uvicorn and its worker); kill it if it hangs (it did, on a
    machine loaded to 8x its cores: a graceful shutdown waits for a request that never ends)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not installed (make test installs Debian's postgresql when root)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    bindir = Path(bins[-1]).parent
    # outside pytest's tmp folder: that one is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="nasseg-pg-"))
    data, sock = root / "data", root
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    subprocess.run(as_pg + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "mlflow"], check=True,
                   capture_output=True)
    subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    subprocess.run(as_pg + [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"],
                   check=True, capture_output=True)
    yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    server, url = start_mlflow_server(postgres, tmp_path_factory.mktemp("artifacts"), 90)
    yield url
    stop(server)


def summary(client, name):
    trials = runs_of(client, name, "trial")
    rows = sorted((r.data.params["arch.M"], r.data.params["arch.out_channel0"], r.data.tags["nasseg.stage"],
                   round(r.data.metrics.get("dice_1d", -1), 3), len(client.list_artifacts(r.info.run_id)))
                  for r in trials)
    parent = runs_of(client, name, "search")
    return rows, len(parent), sorted(k for k in parent[0].data.params)


def test_search_over_http_with_postgres_matches_sqlite(mlflow_server, tmp_path, migrated_store):
    for sub, uri in (("http", mlflow_server), ("sqlite", None)):
        d = tmp_path / sub
        d.mkdir()
        if uri is None:
            copy_store(migrated_store, d)
        (d / "c.yaml").write_text(CONFIG)
        args = ["search", "c.yaml"] + (["--tracking-uri", uri] if uri else [])
        proc = subprocess.run(NASSEG + args, cwd=d, env=env_for(d), capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    http = MlflowClient(mlflow_server)
    lite = MlflowClient(f"sqlite:///{tmp_path / 'sqlite' / 'mlflow.db'}")
    a, b = summary(http, "server"), summary(lite, "server")
    assert a == b and len(a[0]) == 3 and a[1] == 1
    # the registered model and its artifacts came through the server's artifact proxy
    versions = http.search_model_versions("name = 'nasseg-server'")
    assert len(versions) == 1
    import mlflow.pyfunc
    import numpy as np

    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model("models:/nasseg-server/1")  # the pyfunc flavour, through the proxy
    prob = model.predict(np.random.default_rng(0).random((2, 40, 48), dtype=np.float32))
    assert prob.shape == (2, 40, 48) and 0 <= prob.min() and prob.max() <= 1
    parent = runs_of(http, "server", "search")[0]
    assert "report/pareto_front.png" in {x.path for x in http.list_artifacts(parent.info.run_id, "report")}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    # the auth settings the compose image ships (credential cache on: without it each request of the
    # search pays a password hash, over 10 s on a loaded 2-core machine)
    env = dict(os.environ, MLFLOW_AUTH_ADMIN_PASSWORD="admin-pw-for-tests", MLFLOW_FLASK_SERVER_SECRET_KEY="t",
               MLFLOW_AUTH_CONFIG_PATH=str(ROOT / "deploy" / "mlflow" / "basic_auth.ini"))
    server, url = start_mlflow_server(f"sqlite:///{d / 'm.db'}", d / "art", 60, "--app-name", "basic-auth",
                                      cwd=d, env=env)
    yield url
    stop(server)


def test_credentials_come_from_mlflow_env_vars_only(auth_server, tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG.replace("trials: 3", "trials: 1").replace("name: server", "name: auth"))
    start = time.time()
    denied = subprocess.run(NASSEG + ["search", "c.yaml", "--tracking-uri", auth_server], cwd=tmp_path,
                            env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert denied.returncode == 2 and time.time() - start < 30
    assert denied.stderr.strip().startswith("nasseg: error: MLflow tracking store") and "401" in denied.stderr
    # (credentials inside the URI are refused without echo: tests/orchestrator/test_cli_errors.py)
    ok = subprocess.run(NASSEG + ["search", "c.yaml", "--tracking-uri", auth_server], cwd=tmp_path,
                        env=env_for(tmp_path, MLFLOW_TRACKING_USERNAME="admin",
                                    MLFLOW_TRACKING_PASSWORD="admin-pw-for-tests"),
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "admin-pw-for-tests" not in ok.stdout + ok.stderr
    client_env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-pw-for-tests"}
    os.environ.update(client_env)
    try:
        client = MlflowClient(auth_server)
        assert len(runs_of(client, "auth", "search")) == 1 and len(runs_of(client, "auth", "trial")) >= 1
    finally:
        for k in client_env:
            os.environ.pop(k)
