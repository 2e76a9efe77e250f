"""A real MLflow tracking server on loopback, as deploy/mlflow runs it (PostgreSQL backend store, artifact
proxy, basic authentication): a search sent through Ray Client to a `ray start` head logs over HTTP
and reads back the same as with the SQLite default; credentials come from MLflow's env vars only."""
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

from tests.orchestrator.test_search_e2e import NASSEG, env_for, nasseg_here, runs_of
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


#: the admin's credentials on the shared server, as users pass them (MLflow's env vars)
ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-pw-for-tests"}


def image_env() -> dict[str, str]:
    """The ``ENV`` settings of deploy/mlflow's image (its job runner off, ...), so the server here
    runs as the team's does."""
    lines = (ROOT / "deploy/mlflow/Dockerfile").read_text().splitlines()
    return dict(ln.removeprefix("ENV ").split("=", 1) for ln in lines if ln.startswith("ENV "))


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """One server for every test here, as a team would run it (deploy/mlflow): PostgreSQL as
    backend store, an artifact proxy, basic authentication with the auth settings and environment
    the compose image ships (credential cache on: without it each request of a search pays a password hash,
    over 10 s on a loaded 2-core machine)."""
    d = tmp_path_factory.mktemp("server")
    env = {**os.environ, **image_env(), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN["MLFLOW_TRACKING_PASSWORD"],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "t",
           "MLFLOW_AUTH_CONFIG_PATH": str(ROOT / "deploy/mlflow/basic_auth.ini")}  # the image's path, here
    server, url = start_mlflow_server(postgres, d / "artifacts", 90, "--app-name", "basic-auth", cwd=d, env=env)
    yield url
    stop(server)


@pytest.fixture
def as_admin(monkeypatch):
    """This process's MLflow clients send the admin's credentials."""
    for k, v in ADMIN.items():
        monkeypatch.setenv(k, v)


def summary(client, name):
    trials = runs_of(client, name, "trial")
    rows = sorted((r.data.params["arch.M"], r.data.params["arch.out_channel0"], r.data.tags["nasseg.stage"],
                   round(r.data.metrics.get("dice_1d", -1), 3), len(client.list_artifacts(r.info.run_id)))
                  for r in trials)
    parent = runs_of(client, name, "search")
    return rows, len(parent), sorted(k for k in parent[0].data.params)


def test_credentials_come_from_mlflow_env_vars_only(mlflow_server, tmp_path, monkeypatch):
    """Without MLflow's env vars the search is refused before any work; with them it runs (the
    searches of the other tests here log to this server that way, and check the password is never
    echoed)."""
    (tmp_path / "c.yaml").write_text(CONFIG.replace("trials: 3", "trials: 1").replace("name: server", "name: auth"))
    start = time.time()
    denied = subprocess.run(NASSEG + ["search", "c.yaml", "--tracking-uri", mlflow_server], cwd=tmp_path,
                            env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert denied.returncode == 2 and time.time() - start < 30
    assert denied.stderr.strip().startswith("nasseg: error: MLflow tracking store") and "401" in denied.stderr
    # (credentials inside the URI are refused without echo: tests/orchestrator/test_cli_errors.py)
    client = MlflowClient(mlflow_server)
    with pytest.raises(Exception, match="401"):
        client.search_experiments()  # this process has no credentials
    for k, v in ADMIN.items():
        monkeypatch.setenv(k, v)
    assert client.get_experiment_by_name("auth") is None  # the refused search created nothing


READY_LOOP = """
import sys, time, ray
for _ in range(60):
    try:
        ray.init(sys.argv[1], logging_level="ERROR")
        ray.shutdown()
        break
    except Exception:
        time.sleep(1)
else:
    sys.exit("Ray Client server never became ready")
"""


def start_ray_head(tmp_path, env):
    """A `ray start` head with a Ray Client server: (process, client port)."""
    gcs, client_port = free_port(), free_port()
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--port",
                             str(gcs), "--ray-client-server-port", str(client_port), "--num-cpus", "2",
                             "--include-dashboard", "false"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return head, client_port


def wait_for_ray_client(client_port, env):
    for _ in range(60):  # wait for the Ray client server
        try:
            socket.create_connection(("127.0.0.1", client_port), timeout=1).close()
            break
        except OSError:
            time.sleep(1)
    # the port answers before the client server can serve ("Initialization failure from server"
    # made this test flaky): wait until a real Ray Client session opens
    ready = subprocess.run([sys.executable, "-c", READY_LOOP, f"ray://127.0.0.1:{client_port}"], env=env,
                           capture_output=True, text=True, timeout=150)
    assert ready.returncode == 0, ready.stderr[-2000:]


def test_a_ray_client_search_logs_to_the_team_server_as_a_local_sqlite_search_does(
        mlflow_server, as_admin, tmp_path, migrated_store, monkeypatch, capsys):
    """``--address ray://host:port``: the search runs as one task on the head node of a `ray start`
    cluster, output streams back; it logs over HTTP to the team's server (PostgreSQL, artifact
    proxy, basic auth) with the credentials the head node holds (MLflow's env vars), and its
    records read back the same as those of the same search run locally on the SQLite default.
    (One search covers both: each of these searches costs ~40 CPU s on 2 cores.)"""
    # Ray's token authentication on (Ray 2.60 enables it by default only for local clusters); head,
    # readiness probe and driver share the token file ~/.ray/auth_token
    env = env_for(tmp_path, RAY_AUTH_MODE="token", **ADMIN)
    head, client_port = start_ray_head(tmp_path, env)   # starts while the local search runs
    try:
        (tmp_path / "c.yaml").write_text(CONFIG)
        # with SQLite the search would log on the head's disk: refused before Ray is reached
        code, _, err = nasseg_here(["search", "c.yaml", "--address", f"ray://127.0.0.1:{client_port}"], tmp_path,
                                   capsys, RAY_AUTH_MODE="token")
        assert code == 2 and "use an MLflow server" in err, err[-2000:]
        lite_dir = tmp_path / "sqlite"
        lite_dir.mkdir()
        copy_store(migrated_store, lite_dir)
        (lite_dir / "c.yaml").write_text(CONFIG)
        local = subprocess.run(NASSEG + ["search", "c.yaml"], cwd=lite_dir, env=env_for(lite_dir), capture_output=True,
                               text=True, timeout=400)
        assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
        wait_for_ray_client(client_port, env)
        proc = subprocess.run(NASSEG + ["search", "c.yaml", "--address", f"ray://127.0.0.1:{client_port}",
                                        "--tracking-uri", mlflow_server, "--storage", str(tmp_path / "runs")],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "search 'server' finished: 3 trials (3 trained" in proc.stdout + proc.stderr
        # the credentials came from MLflow's env vars (the server refuses requests without them:
        # test_credentials_come_from_mlflow_env_vars_only) and are never echoed
        assert ADMIN["MLFLOW_TRACKING_PASSWORD"] not in proc.stdout + proc.stderr
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)  # the process group: ray's daemons
        except ProcessLookupError:
            pass
        head.wait(timeout=60)
    http = MlflowClient(mlflow_server)
    lite = MlflowClient(f"sqlite:///{lite_dir / 'mlflow.db'}")
    a, b = summary(http, "server"), summary(lite, "server")
    assert a == b and len(a[0]) == 3 and a[1] == 1
    # the registered model and its artifacts came through the server's artifact proxy
    versions = http.search_model_versions("name = 'nasseg-server'")
    assert len(versions) == 1
    import mlflow.pyfunc
    import numpy as np

    # the pyfunc flavour, through the proxy; MLflow resolves models:/ with the process-wide URI (its env
    # var here, restored after the test: set_tracking_uri would leak into later tests of this worker)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    model = mlflow.pyfunc.load_model("models:/nasseg-server/1")
    prob = model.predict(np.random.default_rng(0).random((2, 40, 48), dtype=np.float32))
    assert prob.shape == (2, 40, 48) and 0 <= prob.min() and prob.max() <= 1
    parent = runs_of(http, "server", "search")[0]
    assert "report/pareto_front.png" in {x.path for x in http.list_artifacts(parent.info.run_id, "report")}
