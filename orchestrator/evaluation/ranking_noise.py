"""How much of the spread between trials' scores is programming noise.

A trial's drift score (``dice_1d``, ``map_dsb_worst``, ...) is a mean over ``train.drift_reps``
programming draws of the chip, reported with its standard error (``<objective>_sem``). When the
trials' scores differ by little more than that standard error, the search ranks chip programming
luck rather than networks: over NASSegNet-Bench's brightfield table (2 draws) it is all of the
spread of ``dice_1d`` and ``dice_1y``, over the fluorescence table 6 % and 13 % (20-27 % for
``map_dsb_worst`` and ``ap50_1y``; ``benchmarks/RESULTS.md``, "Where the spread comes from").
More draws shrink it (variance / draws).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

#: above this share the summary says that the ranking is mostly programming noise
NOISY = 0.5
#: fewer trained trials than this say nothing about the spread between networks
MIN_TRIALS = 5


@dataclass(frozen=True)
class RankingNoise:
    objective: str
    trials: int
    spread: float            # standard deviation of the objective over the trained trials
    standard_error: float    # root mean square of the trials' standard errors over programming draws
    share: float             # mean(sem^2) / var(objective), clipped to [0, 1]

    @property
    def noisy(self) -> bool:
        return self.share >= NOISY

    def advice(self, drift_reps: int) -> str:
        """One line for the summary."""
        return (f"programming noise: the trials' {self.objective} spread by {self.spread:.4f} (sd over "
                f"{self.trials}) and each is uncertain by {self.standard_error:.4f} (standard error over "
                f"{drift_reps} programming draws): {self.share:.0%} of the spread is noise"
                + ("; the ranking is mostly chip-programming luck: raise train.drift_reps" if self.noisy else ""))


def ranking_noise(objective: str, trial_metrics: Iterable[Mapping[str, float]]) -> RankingNoise | None:
    """The share of the variance of ``objective`` over trained trials that their own standard errors
    over programming draws explain; None for an objective without one (digital, costs), with one
    draw per trial (``train.drift_reps: 1`` writes a standard error of 0: unknown, not zero) or
    with fewer than ``MIN_TRIALS`` trials."""
    pairs = [(m[objective], m[f"{objective}_sem"]) for m in trial_metrics
             if objective in m and f"{objective}_sem" in m]
    if len(pairs) < MIN_TRIALS:
        return None
    scores, sems = (np.array(v, dtype=float) for v in zip(*pairs))
    if not np.any(sems > 0):
        return None
    variance, noise = float(np.var(scores, ddof=1)), float(np.mean(sems ** 2))
    share = 1.0 if variance <= 0 else min(noise / variance, 1.0)
    return RankingNoise(objective, len(pairs), float(np.sqrt(variance)), float(np.sqrt(noise)), share)
