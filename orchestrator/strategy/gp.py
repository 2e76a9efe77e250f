"""Bayesian optimisation over a search space's fixed-length encoding (``sampler: gp``).

Why not Optuna's ``GPSampler``: it models only the parameters every trial has. NASSegNet's space
is conditional (stage parameters exist only below ``M``), so GPSampler would fit its GP on the
few shared parameters and draw every stage parameter at random. Here the GP sees each network
through ``SearchSpace.encode`` (the surrogate's features: every stage, zero-filled when absent,
plus the static hardware cost), so conditional parameters are modelled like the others.

One proposal: a Gaussian process (scikit-learn: Matern 5/2 on min-max scaled features, one length
scale since a few dozen observations cannot fit one per feature, plus a noise term; training on
analog noise is noisy) is fitted to the finished trials; expected improvement is maximised over a
pool of unseen networks that meet the constraints: uniform draws of the space and one-question
mutations of the best networks so far (the local moves of regularized evolution, which AnalogNAS
uses). With several objectives (e.g. ``[dice_1d, tiles]``) each proposal scalarises them with
random weights (ParEGO, Knowles 2006: augmented Chebyshev on objectives scaled to [0, 1]), so successive
proposals spread over the Pareto front.

Everything is drawn from the ``rng`` the caller seeds (search seed, proposals so far): a proposal
is a function of the seed and the history alone, so a resumed search proposes what the
uninterrupted one would have.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from search_spaces.interface import SearchSpace
from search_spaces.space import RandomChoices


class MutatedChoices(RandomChoices):
    """A ``TrialLike`` that answers as ``parent`` did, except for each question with probability
    ``rate`` (and for questions the parent was never asked), which it draws uniformly."""

    def __init__(self, parent: dict[str, Any], rng: np.random.Generator, rate: float) -> None:
        super().__init__(rng)
        self.parent, self.rate = parent, rate

    def _keep(self, name: str) -> bool:
        return name in self.parent and self.rng.random() >= self.rate

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if self._keep(name) and low <= self.parent[name] <= high:
            return int(self.parent[name])
        return super().suggest_int(name, low, high, step, log)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if self._keep(name) and low <= self.parent[name] <= high:
            return float(self.parent[name])
        return super().suggest_float(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        if self._keep(name) and self.parent[name] in list(choices):
            return self.parent[name]
        return super().suggest_categorical(name, choices)


def scalarise(values: np.ndarray, directions: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """One score per trial to maximise: the objective itself (sign-flipped when minimised), or with
    several objectives ParEGO's augmented Chebyshev scalarisation with weights drawn from ``rng``."""
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    gains = values * signs                                    # every column: larger is better
    if gains.shape[1] == 1:
        return gains[:, 0]
    lo, hi = gains.min(axis=0), gains.max(axis=0)
    losses = (hi - gains) / np.where(hi > lo, hi - lo, 1.0)   # 0 = best seen, 1 = worst seen
    weights = rng.dirichlet(np.ones(gains.shape[1]))
    weighted = losses * weights
    return -(weighted.max(axis=1) + 0.05 * weighted.sum(axis=1))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    std = np.maximum(std, 1e-12)
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)


class EncodedGP:
    """Proposes the unseen network with the highest expected improvement (see the module docstring)."""

    def __init__(self, space: SearchSpace, random_draws: int = 800, parents: int = 3, mutations: int = 20) -> None:
        self.space, self.random_draws, self.parents, self.mutations = space, random_draws, parents, mutations

    def pool(self, observed: Sequence[Any], scores: np.ndarray, known: set[Hashable],
             rng: np.random.Generator) -> list[Any]:
        """Unseen candidates that meet the space's constraints (known before training, so never
        worth proposing): uniform draws and mutations of the ``parents`` best observed."""
        candidates = [self.space.random(rng) for _ in range(self.random_draws)]
        for i in np.argsort(-scores, kind="stable")[:self.parents]:
            params = self.space.params(observed[i])
            rate = 1.0 / max(len(params), 1)
            candidates += [self.space.suggest(MutatedChoices(params, rng, rate)) for _ in range(self.mutations)]
        unseen, seen = [], set(known)
        for arch in candidates:
            sig = self.space.signature(arch)
            if sig not in seen:
                seen.add(sig)
                if not self.space.violations(arch):
                    unseen.append(arch)
        return unseen

    def propose(self, observed: Sequence[Any], values: np.ndarray, directions: Sequence[str],
                known: set[Hashable], rng: np.random.Generator) -> Any | None:
        """The next network to try, given ``observed`` networks and their objective ``values``
        (one row each, ``directions`` per column); None when no unseen candidate was drawn."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        scores = scalarise(np.asarray(values, dtype=float).reshape(len(observed), -1), directions, rng)
        pool = self.pool(observed, scores, known, rng)
        if not pool:
            return None
        x = self.space.encode(list(observed) + pool)
        lo, span = x.min(axis=0), np.ptp(x, axis=0)
        x = (x - lo) / np.where(span > 0, span, 1.0)
        x_seen, x_pool = x[:len(observed)], x[len(observed):]
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.sqrt(x.shape[1]) / 2, (1e-2, 1e3), nu=2.5)
                  + WhiteKernel(0.1, (1e-6, 1.0)))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1,
                                      random_state=int(rng.integers(2**31)))
        # one BLAS thread: the matrices are at most a few hundred rows, where OpenBLAS's threads only
        # wait for each other (measured on 2 busy cores: 3.6x less CPU per proposal, 2.5x less wall)
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # bounds reached on a few points: harmless
            gp.fit(x_seen, scores)
            mean, std = gp.predict(x_pool, return_std=True)
        return pool[int(np.argmax(expected_improvement(mean, std, float(scores.max()))))]
