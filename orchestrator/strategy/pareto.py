"""Pareto front of trials over several objectives (hand-written: a few lines, no library needed
for n < 10^4 points; optuna's own helper works on FrozenTrials only)."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_mask(values: Sequence[Sequence[float]], modes: Sequence[str]) -> list[bool]:
    """``True`` for points that no other point dominates (``modes``: "max"/"min" per objective)."""
    signs = [1.0 if m == "max" else -1.0 for m in modes]
    pts = [[s * v for s, v in zip(signs, row)] for row in values]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [not any(dominates(q, p) for q in pts if q is not p) for p in pts]


def pareto_ranking(ids: Sequence[str], values: Sequence[Sequence[float]], modes: Sequence[str]) -> list[int]:
    """Indices of the points, best first: the Pareto-optimal ones before the others, each group by
    the first objective; ties (twins, equal scores) by id, so a rerun ranks the same way."""
    mask = pareto_mask(values, modes)
    sign = 1.0 if modes[0] == "max" else -1.0
    return sorted(range(len(values)), key=lambda i: (not mask[i], -sign * values[i][0], str(ids[i])))
