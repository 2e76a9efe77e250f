"""The NASSegNet search space as an Optuna define-by-run function, and its bounds.

``suggest(trial, bounds)`` asks Optuna for one architecture and returns its ArchSpec. Stage
fields are only asked for the stages that exist (define-by-run), so Optuna's TPE sees a
conditional space instead of wasting samples on unused stages. It does no heavy work: Ray
Tune calls it on the driver for every trial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from .arch_spec import LIMITS, MAX_STAGES, SKIP_MODES, STEM_KERNELS, UPSAMPLING_MODES, ArchSpec, SpecError


class TrialLike(Protocol):
    """The part of ``optuna.trial.Trial`` that the space uses (kept Optuna-free here)."""

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class SpaceBounds:
    """What the sampler may choose. Defaults are sized for a CPU demo; see ``PRESETS``."""

    out_channel0: tuple[int, ...] = (8, 12, 16)
    k0: tuple[int, ...] = (3, 5)
    M: tuple[int, int] = (1, 3)
    R: tuple[int, int] = (1, 2)
    B: tuple[int, int] = (1, 2)
    convblock: tuple[int, ...] = (1, 2)
    widenfact: tuple[float, float] = (0.5, 0.8)
    widenfact_step: float = 0.05
    up: tuple[str, ...] = UPSAMPLING_MODES
    dec_width: tuple[float, ...] = (0.5, 1.0)
    dec_blocks: tuple[int, int] = (1, 2)
    skip: tuple[str, ...] = SKIP_MODES

    def __post_init__(self) -> None:
        for name in ("M", "R", "B", "widenfact", "dec_blocks"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise SpecError(f"bounds.{name}: low {lo} > high {hi}")
        checks = [("out_channel0", self.out_channel0, LIMITS["out_channel0"]), ("M", self.M, LIMITS["M"]),
                  ("R", self.R, (1, LIMITS["R"][1])), ("B", self.B, LIMITS["B"]),
                  ("widenfact", self.widenfact, LIMITS["widenfact"]),
                  ("dec_width", self.dec_width, LIMITS["dec_width"]),
                  ("dec_blocks", self.dec_blocks, LIMITS["dec_blocks"])]
        for name, values, (lo, hi) in checks:
            if not values or any(not lo <= v <= hi for v in values):
                raise SpecError(f"bounds.{name}: {list(values)} must lie in [{lo}, {hi}]")
        _subset("k0", self.k0, STEM_KERNELS)
        _subset("convblock", self.convblock, (1, 2))
        _subset("up", self.up, UPSAMPLING_MODES)
        _subset("skip", self.skip, SKIP_MODES)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpaceBounds:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"bounds: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _subset(name: str, values: tuple, allowed: tuple) -> None:
    if not values or any(v not in allowed for v in values):
        raise SpecError(f"bounds.{name}: {list(values)} must be a non-empty subset of {list(allowed)}")


#: ``default``: small networks a 2-core CPU trains in seconds. ``large``: close to the AnalogNAS
#: ranges (out_channel0 in {8..64}, M 1-5, R 1-16, B 1-5, widenfact 0.5-0.8) for GPU clusters.
PRESETS: dict[str, SpaceBounds] = {
    "default": SpaceBounds(),
    "large": SpaceBounds(out_channel0=(8, 12, 16, 32, 48, 64), k0=(3, 5, 7), M=(1, MAX_STAGES), R=(1, 16),
                         B=(1, 5), dec_width=(0.5, 0.75, 1.0), dec_blocks=(1, 2)),
}


def suggest(trial: TrialLike, bounds: SpaceBounds | None = None) -> ArchSpec:
    """Sample one architecture from ``bounds`` (default: ``PRESETS['default']``) via define-by-run."""
    bounds = bounds or PRESETS["default"]
    p: dict[str, Any] = {
        "out_channel0": trial.suggest_categorical("out_channel0", list(bounds.out_channel0)),
        "k0": trial.suggest_categorical("k0", list(bounds.k0)),
        "M": trial.suggest_int("M", *bounds.M),
    }
    for i in range(1, p["M"] + 1):
        p[f"R{i}"] = trial.suggest_int(f"R{i}", *bounds.R)
        p[f"B{i}"] = trial.suggest_int(f"B{i}", *bounds.B)
        p[f"convblock{i}"] = trial.suggest_categorical(f"convblock{i}", list(bounds.convblock))
        p[f"widenfact{i}"] = trial.suggest_float(f"widenfact{i}", *bounds.widenfact, step=bounds.widenfact_step)
        p[f"up{i}"] = trial.suggest_categorical(f"up{i}", list(bounds.up))
    p["dec_width"] = trial.suggest_categorical("dec_width", list(bounds.dec_width))
    p["dec_blocks"] = trial.suggest_int("dec_blocks", *bounds.dec_blocks)
    p["skip"] = trial.suggest_categorical("skip", list(bounds.skip))
    return ArchSpec.from_params(p)


class RandomChoices:
    """A ``TrialLike`` that draws every choice uniformly (numpy; no Optuna study needed)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self.rng.integers(low, high + 1))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step is None:
            return float(self.rng.uniform(low, high))
        return float(low + step * self.rng.integers(0, int(round((high - low) / step)) + 1))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return choices[int(self.rng.integers(len(choices)))]


class SmallestChoices:
    """A ``TrialLike`` that takes the lowest number and the smallest categorical option."""

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return low

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        numeric = all(isinstance(c, (int, float)) for c in choices)
        return min(choices) if numeric else choices[0]


def sample_specs(bounds: SpaceBounds, n: int, seed: int = 0) -> list[ArchSpec]:
    """The smallest network of ``bounds`` and ``n`` uniform draws (for quick feasibility checks)."""
    rng = np.random.default_rng(seed)
    return [suggest(SmallestChoices(), bounds)] + [suggest(RandomChoices(rng), bounds) for _ in range(n)]


class _PathChoices:
    """A ``TrialLike`` that follows a list of option indices (0 past its end) and records how
    many options each question had: one walk of :func:`enumerate_specs`."""

    def __init__(self, path: list[int]) -> None:
        self.path, self.options, self.taken = path, [], []

    def _pick(self, choices: list) -> Any:
        i = len(self.options)
        k = self.path[i] if i < len(self.path) else 0
        self.options.append(len(choices))
        self.taken.append(k)
        return choices[k]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._pick(list(range(low, high + 1, step)))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step is None:
            raise ValueError(f"{name}: a continuous parameter cannot be enumerated")
        n = int(round((high - low) / step)) + 1
        return self._pick([round(low + i * step, 10) for i in range(n)])

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._pick(list(choices))


def enumerate_specs(bounds: SpaceBounds, limit: int = 100_000) -> list[ArchSpec]:
    """Every distinct spec of a (small) space, by depth-first search over the define-by-run tree.
    For tables of results over a whole space (replay tests, benchmarks); ValueError past ``limit``."""
    seen: dict[str, ArchSpec] = {}
    stack: list[list[int]] = [[]]
    walks = 0
    while stack:
        path = stack.pop()
        walk = _PathChoices(path)
        spec = suggest(walk, bounds)
        seen.setdefault(spec.to_json(), spec)
        walks += 1
        if walks > limit:
            raise ValueError(f"the space has more than {limit} specs; narrow the bounds")
        for depth in range(len(path), len(walk.options)):  # branch on every question past the prefix
            for alt in range(1, walk.options[depth]):
                stack.append(walk.taken[:depth] + [alt])
    return list(seen.values())
