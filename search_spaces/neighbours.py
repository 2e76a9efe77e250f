"""One-question neighbours of an architecture, and whether a space holds it, for any define-by-run space.

A neighbour answers exactly one of the space's questions differently (NB201: one edge's
operation; NASSegNet: one field, e.g. a stage's branches or the skip mode; a question that only
the neighbour asks, such as a new stage's fields when ``M`` grows, takes its first option). Local
search and regularized evolution (``benchmarks/bench_strategies.py``) move along these edges.
"""

from __future__ import annotations

from typing import Any

from .interface import SearchSpace


class _Answers:
    """A ``TrialLike`` answering from ``params``, except question ``change`` gets option ``alt``;
    records every question's options."""

    def __init__(self, params: dict[str, Any], change: str | None = None, alt: int = 0) -> None:
        self.params, self.change, self.alt = params, change, alt
        self.options: dict[str, list] = {}

    def _pick(self, name: str, options: list) -> Any:
        self.options[name] = options
        if name == self.change:
            return options[self.alt]
        if name in self.params and self.params[name] in options:
            return self.params[name]
        return options[0]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._pick(name, list(range(low, high + 1, step)))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step is None:
            raise ValueError(f"{name}: a continuous question has no neighbours")
        n = int(round((high - low) / step)) + 1
        return self._pick(name, [round(low + i * step, 10) for i in range(n)])

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._pick(name, list(choices))


def neighbours(space: SearchSpace, arch: Any) -> list[Any]:
    """Every distinct network one answer away from ``arch`` (itself and twins excluded), in the
    order of the space's questions; constraints are not applied."""
    params = space.params(arch)
    walk = _Answers(params)
    space.suggest(walk)
    seen = {space.signature(arch)}
    out = []
    for name, options in walk.options.items():
        for alt, option in enumerate(options):
            if option == params.get(name, options[0]):
                continue
            other = space.suggest(_Answers(params, name, alt))
            sig = space.signature(other)
            if sig not in seen:
                seen.add(sig)
                out.append(other)
    return out


def contains(space: SearchSpace, arch: Any) -> bool:
    """Whether ``arch`` is one of the space's networks: every question the space asks of it has
    ``arch``'s answer among its options (e.g. an earlier search's network outside today's bounds
    is not; a warm start leaves such results out)."""
    params = space.params(arch)
    walk = _Answers(params)
    space.suggest(walk)
    return set(walk.options) == set(params) and all(params[k] in opts for k, opts in walk.options.items())
