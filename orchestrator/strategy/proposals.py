"""Optuna proposes architectures: one study, ask/tell by candidate id, state as JSON.

The study's sampler (``orchestrator.strategy.samplers``, set once on the study) is TPE, the GP
over the space's encoding, or the grid, by ``SearchConfig.sampler``; the history, the state and
the resume are the same for all three.

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

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState

from orchestrator.config import SAMPLERS
from orchestrator.strategy.samplers import WARM_START_ATTR, GridOrderSampler, make_sampler
from search_spaces.interface import SearchSpace


class StateError(ValueError):
    """A saved searcher state that cannot be read (edited, truncated, or not ours)."""


class SpaceExhausted(LookupError):
    """The grid sampler has asked every network of the space."""


class Proposals:
    """An Optuna study over a search space; candidates are named by the caller (``cid``)."""

    def __init__(self, space: SearchSpace, directions: Sequence[str], seed: int, trials: int,
                 sampler: str = "tpe") -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: one of {', '.join(SAMPLERS)}, got {sampler!r}")
        self.space, self.directions, self.seed, self.trials = space, list(directions), seed, trials
        self.sampler = sampler
        self.study = optuna.create_study(directions=self.directions, sampler=make_sampler(sampler, space, seed, trials))
        self.number_of: dict[str, int] = {}  # candidate id -> Optuna trial number, until told
        self._records: dict[int, dict[str, Any]] = {}  # serialised finished trials

    def ask(self, cid: str) -> Any:
        """The next architecture, registered as candidate ``cid``; ``SpaceExhausted`` when the
        grid sampler has asked every network of the space."""
        sampler = self.study.sampler
        if isinstance(sampler, GridOrderSampler) and sampler.next_network(self.study) is None:
            raise SpaceExhausted(f"the grid is done: every one of the space's {len(sampler.order())} networks "
                                 f"was proposed or warm-started")
        return self._ask(cid)

    def ask_for(self, cid: str, arch: Any) -> Any:
        """Register ``arch`` (drawn elsewhere, e.g. at random) as candidate ``cid`` in the study, so
        that the sampler learns from its result like from its own proposals."""
        self.study.enqueue_trial(self.space.params(arch))
        return self._ask(cid)

    def _ask(self, cid: str) -> Any:
        trial = self.study.ask()
        self.number_of[cid] = trial.number
        return self.space.suggest(trial)

    def add_warm_start(self, archs: Sequence[Any], values: Sequence[Sequence[float]]) -> None:
        """Earlier results (``values`` in objective order) as finished trials of the study."""
        for arch, vals in zip(archs, values):
            self.study.enqueue_trial(self.space.params(arch), user_attrs={WARM_START_ATTR: True})
            trial = self.study.ask()
            self.space.suggest(trial)
            self.study.tell(trial, values=list(vals))

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
