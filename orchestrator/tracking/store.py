"""Opening the MLflow tracking store: a client that has answered (one line when it does not), and
a SQLite store created and migrated safely while other processes open it too."""

from __future__ import annotations

import os
import time

from mlflow.tracking import MlflowClient

from orchestrator.config import sqlite_path


def connect(tracking_uri: str) -> MlflowClient:
    """A client for ``tracking_uri`` that has answered one request (raises ConnectionError).
    An existing SQLite store that another program is creating or migrating at this moment (a
    search and ``mlflow ui`` started together) is waited for, as in :func:`open_store`."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in quick}
    os.environ.update(quick)  # fail in seconds here; the search itself keeps MLflow's retries
    try:
        path = sqlite_path(tracking_uri)
        if path is not None and path.exists():
            return _first_answer(tracking_uri, path)
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)
        return client
    except Exception as exc:  # mlflow raises MlflowException / requests errors / sqlalchemy errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"MLflow tracking store {tracking_uri} is unreachable: {first[:200]}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
