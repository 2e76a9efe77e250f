"""Tracker bookkeeping after a driver kill: adopt re-created trials' runs, close lost ones
(trials and prescreened candidates)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.config import SearchConfig
from orchestrator.strategy.events import Rejection
from orchestrator.tracking.tracker import Tracker
from tests.orchestrator.test_surrogate import specs
from tests.stores import copy_store


def test_recreated_trial_adopts_its_run_and_lost_runs_are_closed(tmp_path):
    cfg = SearchConfig.from_dict({"name": "t", "tracking_uri": f"sqlite:///{tmp_path}/m.db", "storage": str(tmp_path)})
    a, b = specs(2, seed=3)
    first = Tracker(cfg)  # the driver that is killed: two trials running
    run_a = first.trial_run("old-a", a, {"candidate": "old-a-c0"}, "running")
    run_b = first.trial_run("old-b", b, {"candidate": "old-b-c0"}, "running")
    # a trial that finished after the last snapshot: the resumed searcher does not know it
    run_d = first.trial_run("old-d", b, {"candidate": "old-d-c0"}, "running")
    first.finish(run_d, "stopped")
    second = Tracker(cfg)  # the resumed driver re-creates trial a under a new id
    assert second.trial_run("new-a", a, {"candidate": "new-a-c0"}, "running", live_ids={"new-a"}) == run_a
    run = second.client.get_run(run_a)
    assert run.data.tags["nasseg.trial_id"] == "new-a" and run.data.tags["nasseg.previous_trial_id"] == "old-a"
    # a trial Ray still knows is never adopted by another one
    assert second.trial_run("new-c", b, {}, "running", live_ids={"new-c", "old-b"}) != run_b
    second.finish(run_a, "trained")
    second.finish(second.trial_run("new-c", b, {}, "running"), "trained")
    # candidates prescreened out by the killed driver after its searcher's last saved state: the
    # restored searcher does not know c9, it proposed that network again under a new id
    for cid in ("old-a-c1", "old-b-c9"):
        first.rejected(Rejection(cid, cid[:5], a, "surrogate: ranked 2/3", 0.4, {"tiles": 3.0}))
    known = {"new-a", "new-c"}  # the trials the resumed searcher suggested or restored
    assert second.close_lost_runs({"old-a-c1"}, known) == 3  # old-b still running; old-d; old-b-c9
    lost = second.client.get_run(run_b)
    assert lost.data.tags["nasseg.role"] == "lost" and lost.info.status == "KILLED"
    finished = second.client.get_run(run_d)
    assert finished.data.tags["nasseg.role"] == "lost" and finished.data.tags["nasseg.lost_stage"] == "stopped"
    assert finished.info.status == "FINISHED"  # its status and results stay as recorded
    assert second.client.get_run(run_a).data.tags["nasseg.role"] == "trial"
    (forgotten,) = [r for r in second.client.search_runs([second.experiment_id])
                    if r.data.tags.get("nasseg.trial_id") == "old-b-c9"]
    assert forgotten.data.tags["nasseg.role"] == "lost" and forgotten.data.tags["nasseg.stage"] == "lost"
    assert forgotten.data.tags["nasseg.reason"] == "surrogate: ranked 2/3"  # kept as it was
    assert second.close_lost_runs({"old-a-c1"}, known) == 0


RACE = """
import pathlib, sys, time
from mlflow.tracking import MlflowClient
from orchestrator.tracking.store import open_store
uri, mode, barrier, me = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), sys.argv[4]
(barrier / f"ready-{me}").touch()                  # imported; then wait until all four are
while len(list(barrier.glob("ready-*"))) < 4:
    time.sleep(0.001)
if mode == "mlflow":
    MlflowClient(uri).search_experiments(max_results=1)   # a plain MLflow reader (as `mlflow ui`)
else:
    open_store(uri).create_experiment(f"x{me}")
print("ok")
"""


def test_processes_opening_a_fresh_sqlite_store_at_once_do_not_corrupt_it(tmp_path):
    # Without open_store, four processes creating one store at once failed here with "table params
    # already exists" / "duplicate column name: step" (3 of 4), leaving a half-migrated store.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    barrier = tmp_path / "barrier"  # all four start together however loaded the machine (a start
    barrier.mkdir()                 # time "in 6 s" did not race when imports took longer)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = [subprocess.Popen([sys.executable, "-c", RACE, uri, mode, str(barrier), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, mode in enumerate(["mlflow", "nasseg", "nasseg", "nasseg"])]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e[-500:] for _, e in outs]
    names = {e.name for e in MlflowClient(uri).search_experiments()}
    assert {"x1", "x2", "x3"} <= names


def test_the_preflight_waits_for_a_store_another_program_is_migrating(tmp_path, migrated_store):
    # A search's preflight used to open an existing store with a bare MlflowClient, which migrates
    # it too: with `mlflow ui` migrating the same new store at that moment, the search died with
    # "Online migration expected to match one row" (CI, stop 20). A store whose schema version is
    # not MLflow's latest yet is now waited for; here "the other program" finishes after 1.5 s.
    import sqlite3
    import threading
    import time

    from orchestrator.tracking.store import connect

    db = copy_store(migrated_store, tmp_path) / "mlflow.db"
    with sqlite3.connect(db) as con:
        head = con.execute("select version_num from alembic_version").fetchone()[0]
        con.execute("update alembic_version set version_num = '1971f2d9a75b'")  # mid-migration

    def finish():
        time.sleep(1.5)
        with sqlite3.connect(db) as con:
            con.execute("update alembic_version set version_num = ?", (head,))

    other = threading.Thread(target=finish)
    start = time.time()
    other.start()
    client = connect(f"sqlite:///{db}")
    waited = time.time() - start
    other.join()
    assert waited >= 1.4, f"did not wait for the migration ({waited:.1f} s)"
    assert client.search_experiments()[0].name == "Default"
    with sqlite3.connect(db) as con:
        assert con.execute("select version_num from alembic_version").fetchone()[0] == head


def test_the_preflight_waits_for_a_slow_server_and_names_why_a_dead_one_failed(monkeypatch):
    # CI, stop 20: a basic-auth MLflow server on a loaded machine took over the preflight's 10 s to
    # answer (a password hash per request) and the search was refused as "unreachable". A server
    # that took the connection is alive: it is asked again with MLflow's own timeout. Here the
    # quick timeout is 1 s and the server answers after 2.5 s.
    import http.server
    import json
    import socket
    import threading
    import time

    from orchestrator.tracking import store

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(2.5)
            body = json.dumps({"experiments": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:  # the quick request's client has given up by now
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(store, "QUICK_TIMEOUT_S", 1)
    try:
        start = time.time()
        store.connect(f"http://127.0.0.1:{server.server_address[1]}")
        assert time.time() - start >= 2.5
    finally:
        server.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    start = time.time()
    with pytest.raises(ConnectionError) as err:
        store.connect(f"http://127.0.0.1:{port}")
    assert time.time() - start < 5
    assert "\n" not in str(err.value) and str(err.value).endswith("Connection refused"), str(err.value)
