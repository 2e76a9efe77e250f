"""A crafted pickle: loading it with plain ``pickle``/``torch.load(weights_only=False)`` creates
a marker file (standing in for arbitrary code). Tests plant it where nasseg reads files that
other people can write and check that the marker never appears."""
import os
import pickle
from pathlib import Path

import torch


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def plant_pickle(path: Path, marker_dir: Path, as_torch: bool = False) -> tuple[Path, Path]:
    """Write the crafted file at ``path``; returns (path, marker that must never exist)."""
    marker = Path(marker_dir) / "PWNED"
    path.parent.mkdir(parents=True, exist_ok=True)
    if as_torch:
        torch.save({"model": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"inner": _Payload(marker)}))
    return path, marker
