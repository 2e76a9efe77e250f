"""A migrated, empty MLflow SQLite store per test session, copied where a test's search runs.

MLflow creates a new SQLite store by running all of its schema migrations, ~5-7 s on 2 cores,
once per store. Tests whose subject is not the creation of a store start their searches on a copy
of one made once (``tests/conftest.py``, fixture ``migrated_store``); the creation itself, alone
and raced by several processes and a reader, is tested where it is the subject
(``test_tracking.py``, ``test_replay.py``'s all-fail search, and every bad-input test that checks no
store is left behind)."""
import shutil
from pathlib import Path


def create_store(path: Path) -> Path:
    from mlflow.tracking import MlflowClient

    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


def copy_store(template: Path, folder: Path) -> Path:
    """``folder`` with ``mlflow.db``, a copy of ``template`` (the default store of a search run there)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "mlflow.db")
    return folder
