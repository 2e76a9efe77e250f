"""What the searcher needs from a search space, and NASSegNet behind it.

The prescreening searcher, Optuna's proposals and the surrogate talk to a space only through
:class:`SearchSpace`: sample an architecture (define-by-run with Optuna, or uniformly), tell two
architectures of the same network apart from two networks, encode them for the surrogate, cost
them against static constraints, and serialise them. :class:`NASSegSpace` is the main
implementation; ``benchmarks.nb201`` is the second (NAS-Bench-201 cells, for benchmarks).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .arch_spec import ArchSpec
from .cost import Constraints, hardware_cost, network_signature, violations
from .encoding import encode_many
from .space import PRESETS, RandomChoices, SpaceBounds, TrialLike, enumerate_specs, suggest


class SearchSpace(Protocol):
    name: str

    def suggest(self, trial: TrialLike) -> Any:
        """An architecture, asked from ``trial`` question by question (define-by-run)."""

    def random(self, rng: np.random.Generator) -> Any:
        """A uniform draw (replaces a proposal that repeats a known network)."""

    def signature(self, arch: Any) -> Hashable:
        """Equal for two architectures that build the same network."""

    def encode(self, archs: Sequence[Any]) -> np.ndarray:
        """Surrogate features, one row per architecture."""

    def cost(self, arch: Any) -> dict[str, float]:
        """Static hardware cost (logged with every candidate)."""

    def violations(self, arch: Any) -> list[str]:
        """Why ``arch`` breaks the space's constraints (empty: feasible)."""

    def params(self, arch: Any) -> dict[str, Any]:
        """The answers :meth:`suggest` gives for ``arch`` (to hand a drawn architecture to Optuna)."""

    def enumerate(self) -> list[Any]:
        """Every distinct network of the space that meets its constraints, in a fixed order (the
        ``grid`` sampler's list; ValueError for a space too large to list)."""

    def to_json(self, arch: Any) -> str: ...

    def from_json(self, text: str) -> Any: ...


@dataclass(frozen=True)
class NASSegSpace:
    """NASSegNet (``ArchSpec``) within ``bounds``, costed on ``tile_size`` crossbars."""

    bounds: SpaceBounds = field(default_factory=lambda: PRESETS["default"])
    constraints: Constraints = field(default_factory=Constraints)
    in_channels: int = 1
    tile_size: int = 512
    out_channels: int = 1             # the output head's channels (trainers.heads: binary 1, contour 3, distance 2)
    name: str = "nassegnet"

    def suggest(self, trial: TrialLike) -> ArchSpec:
        return suggest(trial, self.bounds)

    def random(self, rng: np.random.Generator) -> ArchSpec:
        return suggest(RandomChoices(rng), self.bounds)

    def signature(self, arch: ArchSpec) -> Hashable:
        return network_signature(arch)

    def encode(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        return encode_many(list(archs), self.in_channels, self.out_channels, self.tile_size)

    def cost(self, arch: ArchSpec) -> dict[str, float]:
        return hardware_cost(arch, self.in_channels, self.out_channels, self.tile_size).as_dict()

    def violations(self, arch: ArchSpec) -> list[str]:
        return violations(hardware_cost(arch, self.in_channels, self.out_channels, self.tile_size), self.constraints)

    def params(self, arch: ArchSpec) -> dict[str, Any]:
        out = {}
        for key, value in arch.to_params().items():  # stage keys only for the stages it has
            stage = re.fullmatch(r"(R|B|convblock|widenfact|up)(\d)", key)
            if stage is None or int(stage.group(2)) <= arch.M:
                out[key] = value
        return out

    def enumerate(self) -> list[ArchSpec]:
        out, seen = [], set()
        for spec in enumerate_specs(self.bounds):
            sig = self.signature(spec)
            if sig not in seen and not self.violations(spec):
                seen.add(sig)
                out.append(spec)
        return out

    def to_json(self, arch: ArchSpec) -> str:
        return arch.to_json()

    def from_json(self, text: str) -> ArchSpec:
        return ArchSpec.from_json(text)
