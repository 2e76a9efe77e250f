"""NAS-Bench-201 cells as a second search space, and the AnalogNAS-Bench table over all of them.

NAS-Bench-201 (Dong & Yang 2020): a cell of 4 nodes, 6 edges, each edge one of 5 operations; a
network is the 6-tuple of operation indices (15,625 networks). AnalogNAS-Bench (PyPI
``analog-nasbench`` 0.1.3) measured every one of them on CIFAR-10 after digital training, PTQ,
QAT and hardware-aware analog training, and the analog accuracy after PCM drift (60 s, 1 h, 1 day,
30 days; mean ± std). It is made by other people for our question, so nasseg's search strategy
is compared there (``benchmarks/bench_strategies.py``).

The table ships as a pickle inside that pinned registry package. It is read here and nowhere else,
with an unpickler that builds only the package's two record classes (as plain attribute holders)
and refuses every other global, so not even that file can run code. The package itself is not
imported (its ``__init__`` needs ``pkg_resources``, which current setuptools no longer has).
"""

from __future__ import annotations

import importlib.util
import itertools
import pickle
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.space import TrialLike

N_EDGES, N_OPS = 6, 5
#: the cell's edges, in the benchmark's tuple order: (from node, to node); node 0 is the input,
#: node 3 the output
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: every path from input to output, as edge indices: 0->3, 0->1->3, 0->2->3, 0->1->2->3
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
#: AnalogNAS-Bench's metrics, named as the package names them (accuracy in %; drift: the mean)
METRICS = ("baseline_accuracy", "ptq_accuracy", "qat_accuracy", "noisy_accuracy", "analog_accuracy",
           "analog_drift_60", "analog_drift_3600", "analog_drift_86400", "analog_drift_2592000")
#: the metrics that describe the network on analog hardware (the benchmark's targets)
ANALOG_METRICS = ("analog_accuracy", "analog_drift_60", "analog_drift_3600", "analog_drift_86400",
                  "analog_drift_2592000")


class _Record:
    """Stand-in for the package's ``Architecture`` / ``DriftMeasurement``: attributes only."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _TableUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "analognasbench.data" and name in ("Architecture", "DriftMeasurement"):
            return _Record
        raise pickle.UnpicklingError(f"analog-nasbench table: refused global {module}.{name}")


def table_path() -> Path:
    spec = importlib.util.find_spec("analognasbench")  # locate without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the analog-nasbench package is not installed (pip install analog-nasbench==0.1.3)")
    return Path(next(iter(spec.submodule_search_locations))) / "data.anb"


def _value(x: Any) -> float:
    return float(x.value) if isinstance(x, _Record) else float(x)


def load_analog_nasbench(path: Path | None = None) -> dict[tuple[int, ...], dict[str, float]]:
    """Every NB201 network -> its ``METRICS`` (accuracy in %; for drift, the mean over draws)."""
    with open(path or table_path(), "rb") as f:
        raw = _TableUnpickler(f).load()
    return {tuple(int(i) for i in arch): {name: _value(getattr(rec, name)) for name in METRICS}
            for arch, rec in raw.items()}


@dataclass(frozen=True)
class NB201Space:
    """NB201 cells: 6 edges x 5 operations. No hardware constraints (the benchmark has none)."""

    name: str = "nb201"

    def suggest(self, trial: TrialLike) -> tuple[int, ...]:
        return tuple(int(trial.suggest_categorical(f"edge{i}", list(range(N_OPS)))) for i in range(N_EDGES))

    def random(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(0, N_OPS, N_EDGES))

    def signature(self, arch: tuple[int, ...]) -> Hashable:
        return tuple(arch)

    def encode(self, archs: Sequence[tuple[int, ...]]) -> np.ndarray:
        """Features of a cell: one-hot operation per edge (30), how many edges use each operation
        (5), and the path encoding of BANANAS (White et al. 2021): for each of the 4 input-output
        paths, a one-hot of its sequence of operations (5 + 25 + 25 + 125). Measured with the
        surrogate's XGBoost on 20/50/100 random cells (median Kendall tau on 1,000 others, 10
        draws, 1-day drift): one-hot alone 0.22/0.37/0.45, all three 0.35/0.45/0.50."""
        width = N_EDGES * N_OPS + N_OPS + sum(N_OPS ** len(p) for p in PATHS)
        out = np.zeros((len(archs), width))
        for row, arch in enumerate(archs):
            out[row, [i * N_OPS + op for i, op in enumerate(arch)]] = 1.0
            base = N_EDGES * N_OPS
            for op in arch:
                out[row, base + op] += 1.0
            base += N_OPS
            for path in PATHS:
                index = 0
                for edge in path:
                    index = index * N_OPS + arch[edge]
                out[row, base + index] = 1.0
                base += N_OPS ** len(path)
        return out

    def cost(self, arch: tuple[int, ...]) -> dict[str, float]:
        return {}

    def violations(self, arch: tuple[int, ...]) -> list[str]:
        return []

    def params(self, arch: tuple[int, ...]) -> dict[str, Any]:
        return {f"edge{i}": op for i, op in enumerate(arch)}

    def enumerate(self) -> list[tuple[int, ...]]:
        return list(itertools.product(range(N_OPS), repeat=N_EDGES))

    def to_json(self, arch: tuple[int, ...]) -> str:
        return "[" + ",".join(str(op) for op in arch) + "]"

    def from_json(self, text: str) -> tuple[int, ...]:
        import json

        arch = tuple(int(v) for v in json.loads(text))
        if len(arch) != N_EDGES or not all(0 <= op < N_OPS for op in arch):
            raise ValueError(f"not an NB201 cell: {text}")
        return arch
