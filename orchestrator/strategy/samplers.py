"""The samplers of the search's Optuna study, one per ``SearchConfig.sampler``, set once on it.

- ``tpe``: Optuna's TPE, question by question.
- ``gp``: Bayesian optimisation over the space's encoding (:class:`~orchestrator.strategy.gp.EncodedGP`).
- ``grid``: every network of the space once, in a random order fixed by the seed.

The gp and grid samplers decide a whole network at once (the GP compares whole networks; the
grid lists them), which Optuna's define-by-run interface does not offer: so, as Optuna's own
``GridSampler`` does, they choose in :meth:`~optuna.samplers.BaseSampler.before_trial` and answer
each of the space's questions from that choice in ``sample_independent``. A trial with fixed
parameters (``study.enqueue_trial``: a warm start's results, a random redraw) is left to Optuna.

Every proposal is a function of the search seed and the study's history alone (the trial's number
seeds it; no RNG state carries over): a search restored from its JSON state proposes exactly
what the uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from search_spaces.interface import SearchSpace

WARM_START_ATTR = "warm_start"  # user attribute of the study's trials that came from a warm start
#: the system attribute ``study.enqueue_trial`` gives a trial (Optuna's GridSampler reads it the same way)
FIXED_PARAMS = "fixed_params"


def startup_trials(trials: int) -> int:
    """Finished trials before a sampler models the history (random proposals until then)."""
    return max(2, min(10, trials // 3))


def per_trial_seed(seed: int, number: int) -> int:
    return seed + 7919 * number


class PerTrialSeeded(BaseSampler):
    """An Optuna sampler made afresh for each trial, seeded by (seed, trial number): TPE's
    proposals then depend on the history alone, not on how many proposals this process made."""

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self.make, self.seed = make, seed
        self._inner: dict[int, BaseSampler] = {}

    def _sampler(self, trial: FrozenTrial) -> BaseSampler:
        if trial.number not in self._inner:
            self._inner[trial.number] = self.make(per_trial_seed(self.seed, trial.number))
        return self._inner[trial.number]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)
        self._inner.pop(trial.number, None)


class WholeNetworkSampler(BaseSampler):
    """Chooses a whole network per trial (:meth:`choose`) and answers the space's questions from it."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.seed = space, seed
        self._plans: dict[int, dict[str, Any]] = {}
        self._arch_of: dict[int, Any] = {}

    def choose(self, study: Study, number: int, rng: np.random.Generator) -> Any:
        """The network for trial ``number`` (``rng`` seeded by the search seed and ``number``)."""
        raise NotImplementedError

    def arch(self, trial: FrozenTrial) -> Any:
        """The network a trial of the study holds (rebuilt from its parameters once)."""
        if trial.number not in self._arch_of:
            self._arch_of[trial.number] = self.space.suggest(optuna.trial.FixedTrial(trial.params))
        return self._arch_of[trial.number]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if FIXED_PARAMS in trial.system_attrs:
            return  # an enqueued network: Optuna answers from its parameters
        rng = np.random.default_rng([self.seed, trial.number, 1])
        self._plans[trial.number] = self.space.params(self.choose(study, trial.number, rng))

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        plan = self._plans.get(trial.number, {})
        if param_name in plan:
            return plan[param_name]
        # a question the chosen network did not answer (cannot happen for a space that asks the
        # same questions of the same answers); drawn at random, seeded like the rest
        return RandomSampler(seed=per_trial_seed(self.seed, trial.number)).sample_independent(
            study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._plans.pop(trial.number, None)


class EncodedGPSampler(WholeNetworkSampler):
    """``sampler: gp``: a uniform draw until ``startup_trials`` finished, then the GP's choice
    among networks the study has not seen (any state: trained, stopped, rejected, re-proposed)."""

    def __init__(self, space: SearchSpace, seed: int, trials: int) -> None:
        super().__init__(space, seed)
        self.trials = trials

    def choose(self, study: Study, number: int, rng: np.random.Generator) -> Any:
        from orchestrator.strategy.gp import EncodedGP

        trials = [t for t in study.get_trials(deepcopy=False) if t.number != number]
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if len(done) < startup_trials(self.trials):
            return self.space.random(rng)
        # networks measured in this search; a warm start's were measured elsewhere and stay proposable
        known = {self.space.signature(self.arch(t)) for t in trials if t.params and not t.user_attrs.get(WARM_START_ATTR)}
        arch = EncodedGP(self.space).propose([self.arch(t) for t in done], np.array([t.values for t in done]),
                                             [d.name.lower() for d in study.directions], known, rng)
        return arch if arch is not None else self.space.random(rng)


class GridOrderSampler(WholeNetworkSampler):
    """``sampler: grid``: every network of the space once, in the order the seed fixes, skipping
    those the study holds (a warm start's too: they are done). Optuna's ``GridSampler`` needs a
    fixed, unconditional set of parameters, which a define-by-run space with optional stages is not."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        super().__init__(space, seed)
        self._order: list[Any] | None = None

    def order(self) -> list[Any]:
        if self._order is None:
            specs = self.space.enumerate()
            self._order = [specs[i] for i in np.random.default_rng([self.seed, 2]).permutation(len(specs))]
        return self._order

    def next_network(self, study: Study, exclude: int | None = None) -> Any | None:
        """The first network of the order the study has not seen; None when the grid is done."""
        known: set[Hashable] = {self.space.signature(self.arch(t)) for t in study.get_trials(deepcopy=False)
                                if t.params and t.number != exclude}
        return next((a for a in self.order() if self.space.signature(a) not in known), None)

    def choose(self, study: Study, number: int, rng: np.random.Generator) -> Any:
        arch = self.next_network(study, exclude=number)
        return arch if arch is not None else self.space.random(rng)  # the caller checks first


def make_sampler(name: str, space: SearchSpace, seed: int, trials: int) -> BaseSampler:
    """The study's sampler for ``SearchConfig.sampler``."""
    if name == "gp":
        return EncodedGPSampler(space, seed, trials)
    if name == "grid":
        return GridOrderSampler(space, seed)
    return PerTrialSeeded(lambda s: TPESampler(seed=s, n_startup_trials=startup_trials(trials)), seed)
