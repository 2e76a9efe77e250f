"""Optuna proposes architectures: one study, ask/tell by candidate id, state as JSON.

Used directly through Optuna's ask-and-tell interface (not Ray's ``OptunaSearch``, whose only
way to save its state is pickling its ``__dict__``): the study's trials are saved with Optuna's
own public serialisation (``distribution_to_json`` + ``create_trial``), so a resumed search
reads data, never objects, from the storage folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState

from search_spaces.interface import SearchSpace


class StateError(ValueError):
    """A saved searcher state that cannot be read (edited, truncated, or not ours)."""


def make_sampler(seed: int, trials: int, already_asked: int) -> optuna.samplers.BaseSampler:
    """TPE seeded by (search seed, trials asked so far): each proposal is a function of the seed and
    the study's history alone, with no hidden RNG state, so a search restored from its JSON state
    proposes exactly what the uninterrupted one would have."""
    return optuna.samplers.TPESampler(seed=seed + 7919 * already_asked, n_startup_trials=max(2, min(10, trials // 3)))


class Proposals:
    """An Optuna study over a search space; candidates are named by the caller (``cid``)."""

    def __init__(self, space: SearchSpace, directions: Sequence[str], seed: int, trials: int) -> None:
        self.space, self.directions, self.seed, self.trials = space, list(directions), seed, trials
        self.study = optuna.create_study(directions=self.directions, sampler=make_sampler(seed, trials, 0))
        self.number_of: dict[str, int] = {}  # candidate id -> Optuna trial number, until told
        self._records: dict[int, dict[str, Any]] = {}  # serialised finished trials

    def ask(self, cid: str) -> Any:
        self.study.sampler = make_sampler(self.seed, self.trials, len(self.study.get_trials(deepcopy=False)))
        trial = self.study.ask()
        self.number_of[cid] = trial.number
        return self.space.suggest(trial)

    def ask_for(self, cid: str, arch: Any) -> Any:
        """Register ``arch`` (drawn elsewhere, e.g. at random) as candidate ``cid`` in the study, so
        that TPE learns from its result like from its own proposals."""
        self.study.enqueue_trial(self.space.params(arch))
        return self.ask(cid)

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
                          "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()}}
                if t.state.is_finished():  # finished trials never change: serialised once (Ray saves often)
                    self._records[t.number] = record
            trials.append(record)
        return {"directions": self.directions, "seed": self.seed, "trials_budget": self.trials,
                "study": trials, "number_of": self.number_of}

    @classmethod
    def from_dict(cls, state: dict[str, Any], space: SearchSpace) -> Proposals:
        try:
            self = cls(space, state["directions"], int(state["seed"]), int(state["trials_budget"]))
            frozen = [optuna.trial.create_trial(
                state=TrialState[t["state"]], values=t["values"] if t["state"] == "COMPLETE" else None,
                params=t["params"], distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()})
                for t in state["study"]]
            self.study.add_trials(frozen)
            self.number_of = {str(k): int(v) for k, v in state["number_of"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"searcher state is not readable: {type(exc).__name__}: {str(exc)[:160]}") from None
        return self
