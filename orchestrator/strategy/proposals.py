"""Optuna proposes architectures: one study, ask/tell by candidate id, state as JSON.

Three samplers (``SearchConfig.sampler``): ``tpe``, Optuna's TPE over the space's questions;
``gp``, Bayesian optimisation over the space's encoding (``orchestrator.strategy.gp``); ``grid``,
every network of the space once, in a random order fixed by the seed (the tabular benchmark's
generator; Optuna's ``GridSampler`` needs a fixed, non-conditional set of parameters, which a
define-by-run space with optional stages is not). The gp and grid proposals are enqueued into the
same study, so that the history, the state and the resume are the same for all three.

A warm start (:meth:`Proposals.add_warm_start`) adds earlier results to the study as finished
trials marked ``warm_start``: TPE and the GP model them from the first proposal; the GP still
proposes those networks (they were measured elsewhere), the grid skips them (they are done).

Used directly through Optuna's ask-and-tell interface (not Ray's ``OptunaSearch``, whose only
way to save its state is pickling its ``__dict__``): the study's trials are saved with Optuna's
own public serialisation (``distribution_to_json`` + ``create_trial``), so the searcher's own
state is read back as JSON. (Ray's ``Tuner.restore`` itself unpickles its experiment state,
``tuner.pkl``, from the storage folder: a resume trusts that folder as Ray does, which is why it
must be writable only by the user running the search.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState

from orchestrator.config import SAMPLERS
from search_spaces.interface import SearchSpace


class StateError(ValueError):
    """A saved searcher state that cannot be read (edited, truncated, or not ours)."""


class SpaceExhausted(LookupError):
    """The grid sampler has asked every network of the space."""


WARM_START_ATTR = "warm_start"  # user attribute of the study's trials that came from a warm start


def startup_trials(trials: int) -> int:
    """Finished trials before a sampler models the history (random proposals until then)."""
    return max(2, min(10, trials // 3))


def make_sampler(name: str, seed: int, trials: int, already_asked: int) -> optuna.samplers.BaseSampler:
    """Seeded by (search seed, trials asked so far): each proposal is a function of the seed and
    the study's history alone, with no hidden RNG state, so a search restored from its JSON state
    proposes exactly what the uninterrupted one would have. With ``gp`` the study's own sampler
    only answers for enqueued networks (see :meth:`Proposals.ask`); so with ``grid``."""
    if name in ("gp", "grid"):
        return optuna.samplers.RandomSampler(seed=seed + 7919 * already_asked)
    return optuna.samplers.TPESampler(seed=seed + 7919 * already_asked, n_startup_trials=startup_trials(trials))


class Proposals:
    """An Optuna study over a search space; candidates are named by the caller (``cid``)."""

    def __init__(self, space: SearchSpace, directions: Sequence[str], seed: int, trials: int,
                 sampler: str = "tpe") -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: one of {', '.join(SAMPLERS)}, got {sampler!r}")
        self.space, self.directions, self.seed, self.trials = space, list(directions), seed, trials
        self.sampler = sampler
        self.study = optuna.create_study(directions=self.directions, sampler=make_sampler(sampler, seed, trials, 0))
        self.number_of: dict[str, int] = {}  # candidate id -> Optuna trial number, until told
        self._records: dict[int, dict[str, Any]] = {}  # serialised finished trials
        self._arch_of: dict[int, Any] = {}   # Optuna trial number -> architecture (gp: rebuilt once)
        self._grid: list[Any] | None = None  # the grid sampler's order (built on first use)

    def ask(self, cid: str) -> Any:
        """The next architecture, registered as candidate ``cid``; ``SpaceExhausted`` when the
        grid sampler has asked every network of the space."""
        asked = len(self.study.get_trials(deepcopy=False))
        self.study.sampler = make_sampler(self.sampler, self.seed, self.trials, asked)
        if self.sampler in ("gp", "grid") and not self._enqueued():
            arch = self._gp_proposal(asked) if self.sampler == "gp" else self._grid_proposal()
            self.study.enqueue_trial(self.space.params(arch))
        trial = self.study.ask()
        self.number_of[cid] = trial.number
        return self.space.suggest(trial)

    def ask_for(self, cid: str, arch: Any) -> Any:
        """Register ``arch`` (drawn elsewhere, e.g. at random) as candidate ``cid`` in the study, so
        that the sampler learns from its result like from its own proposals."""
        self.study.enqueue_trial(self.space.params(arch))
        return self.ask(cid)

    def add_warm_start(self, archs: Sequence[Any], values: Sequence[Sequence[float]]) -> None:
        """Earlier results (``values`` in objective order) as finished trials of the study."""
        for arch, vals in zip(archs, values):
            self.study.enqueue_trial(self.space.params(arch), user_attrs={WARM_START_ATTR: True})
            trial = self.study.ask()
            self.space.suggest(trial)
            self.study.tell(trial, values=list(vals))

    # -- the grid sampler --------------------------------------------------------------------
    def _grid_order(self) -> list[Any]:
        if self._grid is None:
            specs = self.space.enumerate()
            self._grid = [specs[i] for i in np.random.default_rng([self.seed, 2]).permutation(len(specs))]
        return self._grid

    def _grid_proposal(self) -> Any:
        """The first network of the grid's order the study has not seen (warm start included)."""
        known = {self.space.signature(self._arch(t)) for t in self.study.get_trials(deepcopy=False) if t.params}
        arch = next((a for a in self._grid_order() if self.space.signature(a) not in known), None)
        if arch is None:
            raise SpaceExhausted(f"the grid is done: every one of the space's {len(self._grid_order())} networks "
                                 f"was proposed or warm-started")
        return arch

    # -- the gp sampler ----------------------------------------------------------------------
    def _enqueued(self) -> bool:
        return any(t.state == TrialState.WAITING for t in self.study.get_trials(deepcopy=False))

    def _arch(self, trial: optuna.trial.FrozenTrial) -> Any:
        if trial.number not in self._arch_of:
            self._arch_of[trial.number] = self.space.suggest(optuna.trial.FixedTrial(trial.params))
        return self._arch_of[trial.number]

    def _gp_proposal(self, asked: int) -> Any:
        """A uniform draw until ``startup_trials`` finished, then the GP's choice among networks
        the study has not seen (any state: trained, stopped, rejected, re-proposed)."""
        from orchestrator.strategy.gp import EncodedGP

        rng = np.random.default_rng([self.seed, asked, 1])
        trials = self.study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if len(done) < startup_trials(self.trials):
            return self.space.random(rng)
        # networks measured in this search; a warm start's were measured elsewhere and stay proposable
        known = {self.space.signature(self._arch(t)) for t in trials if t.params and not t.user_attrs.get(WARM_START_ATTR)}
        arch = EncodedGP(self.space).propose([self._arch(t) for t in done], np.array([t.values for t in done]),
                                             self.directions, known, rng)
        return arch if arch is not None else self.space.random(rng)

    def tell(self, cid: str, values: Sequence[float] | None = None, state: TrialState = TrialState.COMPLETE) -> None:
        """``values`` in objective order for COMPLETE; PRUNED (TPE sees a bad region) or FAIL
        (TPE ignores it) without values. Unknown or already told candidates are ignored."""
        number = self.number_of.pop(cid, None)
        if number is None:
            return
        if state == TrialState.COMPLETE:
            self.study.tell(number, values=list(values))
        else:
            self.study.tell(number, state=state)

    # -- state ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        trials = []
        for t in self.study.get_trials(deepcopy=False):
            record = self._records.get(t.number)
            if record is None:
                record = {"state": t.state.name, "values": t.values, "params": t.params,
                          "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
                          "user_attrs": t.user_attrs}
                if t.state.is_finished():  # finished trials never change: serialised once (Ray saves often)
                    self._records[t.number] = record
            trials.append(record)
        return {"directions": self.directions, "seed": self.seed, "trials_budget": self.trials,
                "sampler": self.sampler, "study": trials, "number_of": self.number_of}

    @classmethod
    def from_dict(cls, state: dict[str, Any], space: SearchSpace) -> Proposals:
        try:
            self = cls(space, state["directions"], int(state["seed"]), int(state["trials_budget"]),
                       str(state.get("sampler", "tpe")))
            frozen = [optuna.trial.create_trial(
                state=TrialState[t["state"]], values=t["values"] if t["state"] == "COMPLETE" else None,
                params=t["params"], distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()},
                user_attrs={k: v for k, v in t.get("user_attrs", {}).items() if k == WARM_START_ATTR})
                for t in state["study"]]
            self.study.add_trials(frozen)
            self.number_of = {str(k): int(v) for k, v in state["number_of"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"searcher state is not readable: {type(exc).__name__}: {str(exc)[:160]}") from None
        return self
