"""Which trial checkpoints a search keeps: the newest of each trial, and none that a resume may need.

Hand-written because Ray's own retention (``CheckpointConfig(num_to_keep=N)``) loses trials on a
resume: Ray deletes a superseded checkpoint as soon as the new one registers, and only afterwards
writes the experiment snapshot that stops naming it. A driver killed in between leaves a snapshot
that names a deleted checkpoint, and the resumed trial fails with "Could not recover from
checkpoint as it does not exist on storage anymore" (ray-project/ray#27790; seen here in the
replayed kill/resume test). Keeping every checkpoint avoids that but fills the disk (a 30-epoch
trial of an 8 M-parameter network: ~3 GB).

:class:`CheckpointRetention` deletes a checkpoint only once two experiment snapshots were begun
after it was superseded (Ray calls every callback's ``get_state`` while it writes a snapshot,
after the trials' state): the last complete snapshot never names it, even when the upload of the
newest one to remote storage is still under way. When the experiment ends (after Ray's final
snapshot), every checkpoint of a trial but its newest is deleted, including those a killed session
left behind.
"""

from __future__ import annotations

import logging
import posixpath
import re
from typing import Any

from pyarrow.fs import FileSelector, FileType
from ray.tune import Callback, Checkpoint

log = logging.getLogger(__name__)

_CHECKPOINT_DIR = re.compile(r"checkpoint_\d{6}")   # Ray's name of a trial's checkpoint folders


class CheckpointRetention(Callback):
    """Ray Tune callback: each trial keeps its newest checkpoint (see the module docstring)."""

    #: snapshots begun after a checkpoint was superseded before it is deleted
    SNAPSHOTS_OF_LAG = 2

    def __init__(self) -> None:
        self.latest: dict[str, Checkpoint] = {}                  # trial id -> newest checkpoint
        self.superseded: list[tuple[Checkpoint, int]] = []       # (checkpoint, snapshots begun before)
        self.snapshots = 0

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # a resumed trial starts from the checkpoint the snapshot named: the one to supersede next
        if trial.trial_id not in self.latest and trial.checkpoint is not None:
            self.latest[trial.trial_id] = trial.checkpoint

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Checkpoint, **info: Any) -> None:
        previous = self.latest.get(trial.trial_id)
        if previous is not None and previous.path != checkpoint.path:
            self.superseded.append((previous, self.snapshots))
        self.latest[trial.trial_id] = checkpoint

    def get_state(self) -> None:
        """Ray writes an experiment snapshot now (after the trials' state): delete what no recent
        snapshot names. Returns None: this callback has no state for Ray to save."""
        self.snapshots += 1
        due = [(c, n) for c, n in self.superseded if self.snapshots - n >= self.SNAPSHOTS_OF_LAG]
        self.superseded = [(c, n) for c, n in self.superseded if self.snapshots - n < self.SNAPSHOTS_OF_LAG]
        for checkpoint, _ in due:
            _delete(checkpoint.filesystem, checkpoint.path)
        return None

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """After Ray's final snapshot: only each trial's newest checkpoint stays."""
        self.superseded.clear()
        for trial in trials:
            newest = trial.checkpoint
            if newest is None:
                continue
            fs, folder = newest.filesystem, posixpath.dirname(newest.path.rstrip("/"))
            try:
                entries = fs.get_file_info(FileSelector(folder))
            except OSError as exc:
                log.warning("could not list %s to remove old checkpoints: %s", folder, exc)
                continue
            for entry in entries:
                if (entry.type == FileType.Directory and _CHECKPOINT_DIR.fullmatch(entry.base_name)
                        and entry.path.rstrip("/") != newest.path.rstrip("/")):
                    _delete(fs, entry.path)


def _delete(fs: Any, path: str) -> None:
    try:
        fs.delete_dir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # disk space only: never worth failing a search over
        log.warning("could not delete the superseded checkpoint %s: %s", path, exc)
