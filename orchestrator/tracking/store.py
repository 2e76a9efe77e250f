"""Opening the MLflow tracking store: a client that has answered (one line when it does not), and
a SQLite store created and migrated safely while other processes open it too."""

from __future__ import annotations

import os
import re
import time

from mlflow.tracking import MlflowClient

from orchestrator.config import sqlite_path

#: how long the preflight waits for a first answer before it asks again with MLflow's own patience
QUICK_TIMEOUT_S = 10


def connect(tracking_uri: str) -> MlflowClient:
    """A client for ``tracking_uri`` that has answered one request (raises ConnectionError).

    A dead address fails in seconds (no retries, a short timeout). A server that took the
    connection but answers slowly (busy, or hashing a password on every request) is alive: it is
    asked again with MLflow's own timeout and retries, as the search itself would. An existing
    SQLite store that another program is creating or migrating at this moment (a search and
    ``mlflow ui`` started together) is waited for, as in :func:`open_store`."""
    try:
        try:
            return _answering_client(tracking_uri, quick=True)
        except Exception as exc:
            if "Read timed out" not in str(exc):
                raise
            return _answering_client(tracking_uri, quick=False)
    except Exception as exc:  # mlflow raises MlflowException / requests errors / sqlalchemy errors
        raise ConnectionError(f"MLflow tracking store {tracking_uri} is unreachable: {_one_line(exc)}") from None


def _answering_client(tracking_uri: str, quick: bool) -> MlflowClient:
    quick_env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(QUICK_TIMEOUT_S)}
    saved = {k: os.environ.get(k) for k in quick_env} if quick else {}
    if quick:
        os.environ.update(quick_env)
    try:
        path = sqlite_path(tracking_uri)
        if path is not None and path.exists():
            return _first_answer(tracking_uri, path)
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)
        return client
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _one_line(exc: Exception) -> str:
    """The first line of an error, with the cause of an HTTP failure kept (urllib3 puts it last,
    after the URL, as "(Caused by NewConnectionError('<...>: Failed to ...: Connection refused'))")."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    head, sep, cause = first.partition(" (Caused by ")
    if not sep:
        return first[:300]
    kind = cause.split("(", 1)[0]
    detail = re.split(r"(?:>|\)): ", cause)[-1].rstrip("')\"")
    return f"{head.split(' failed with exception')[0][:150]} failed: {kind}: {detail[:150]}"


#: SQLite errors of a store that another process is creating or migrating at the same moment
_CONCURRENT_SETUP = ("already exists", "database is locked", "no such table", "out-of-date database schema",
                     "Online migration")


def open_store(tracking_uri: str, attempts: int = 30, wait_s: float = 0.5) -> MlflowClient:
    """A client whose store exists and is migrated, safe against other processes opening it.

    MLflow creates a new SQLite store on first use and migrates it in place; two processes doing
    that at once (a search and ``mlflow ui``, two searches) corrupt each other's migration
    (``table _alembic_tmp_experiments already exists``, ``duplicate column name``). MLflow has
    no lock for this, so (hand-written): nasseg processes take a file lock; a new store is built
    under a private name and linked into place atomically, so readers see no store or a complete
    one; a store that another program is migrating in place is waited for until its schema
    version is MLflow's latest, and the first request is retried on the errors of such a moment."""
    path = sqlite_path(tracking_uri)
    if path is None:
        return MlflowClient(tracking_uri=tracking_uri)
    from filelock import FileLock

    with FileLock(path.with_name(f".{path.name}.nasseg-lock")):
        if not path.exists():
            private = path.with_name(f".{path.name}.{os.getpid()}.new")
            MlflowClient(tracking_uri=f"sqlite:///{private}").search_experiments(max_results=1)
            try:
                os.link(private, path)  # atomic, and never replaces a store someone else made meanwhile
            except FileExistsError:
                pass
            finally:
                private.unlink(missing_ok=True)
        return _first_answer(tracking_uri, path, attempts, wait_s)


def _first_answer(tracking_uri: str, path, attempts: int = 30, wait_s: float = 0.5) -> MlflowClient:
    """A client of the existing SQLite store at ``path`` that has answered: a store another program
    is migrating in place is waited for until its schema version is MLflow's latest (a second
    migration at the same moment fails with "Online migration expected to match one row"), and the
    first request is retried on the errors of such a moment."""
    head, deadline = _schema_head(), time.time() + 60
    while head is not None and _schema_version(path) != head and time.time() < deadline:
        time.sleep(0.2)
    for attempt in range(attempts):
        client = MlflowClient(tracking_uri=tracking_uri)
        try:
            client.search_experiments(max_results=1)
            return client
        except Exception as exc:  # sqlalchemy OperationalError / MlflowException
            if attempt == attempts - 1 or not any(m in str(exc) for m in _CONCURRENT_SETUP):
                raise
            time.sleep(wait_s)
    raise AssertionError("unreachable")


def _schema_head() -> str | None:
    """The schema revision this MLflow migrates a store to (alembic's head of MLflow's migrations)."""
    try:
        import mlflow.store
        from alembic.script import ScriptDirectory

        return ScriptDirectory(os.path.join(os.path.dirname(mlflow.store.__file__), "db_migrations")).get_current_head()
    except Exception:  # another layout: skip the wait, keep the retries
        return None


def _schema_version(path) -> str | None:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("select version_num from alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None
