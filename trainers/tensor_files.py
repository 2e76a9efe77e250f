"""Read tensor files that other people may have written, without running their code.

Checkpoints live in a storage folder that a cluster shares, models in an MLflow artifact store
that anyone with edit rights can overwrite: a ``torch.load`` that unpickles arbitrary objects
there would run whatever a crafted file asks. Everything nasseg saves is plain data (tensors,
numbers, strings, lists, dicts; aihwkit's config object is left out, see
``trainers.analog.tensor_state_dict``), so it is always read with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


class UnsafeFileError(ValueError):
    """A file that is not plain tensor data (a crafted pickle, or not a torch file at all)."""


def load_tensors(path: str | Path, what: str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; one-line ``UnsafeFileError`` if it is anything else."""
    try:
        return torch.load(Path(path), map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "WeightsUnpickler" in str(exc) or "Weights only load failed" in first:
            reason = next((ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln), first)
            first = f"refused to unpickle anything but tensors ({reason[:160]})"
        raise UnsafeFileError(f"{path}: not a valid nasseg {what}: {first[:240]}") from None
