"""PrescreenSearcher: a Ray Tune searcher over an Optuna study that filters its candidates.

For each trial Ray Tune wants to start, it draws candidates from the study (``proposals``: the
GP, TPE or grid sampler over ``search_spaces.suggest``), rejects at once those that break the static constraints (max params,
tiles, digital params, MACs: an infeasible candidate never reaches a worker), and, once the
surrogate has ``min_observations`` finished trials, draws ``candidates`` feasible ones and sends
only the best-ranked to training. Until then candidates pass through unranked. Every rejected
candidate is told to Optuna as PRUNED (TPE learns from it as a bad region) and handed to
its ``listeners`` (MLflow records it as a ``prescreened`` child run). A re-proposal of a network that
was already trained is not a candidate: it is replaced by a uniform random draw and only counted
(``duplicates``); when no new feasible network turns up, ``suggest`` returns
``Searcher.FINISHED`` and the search ends cleanly, saying why.

Its state (Optuna's study, the surrogate's observations, which trial got which network) is saved
as JSON into Ray's searcher checkpoint: the searcher's state is read back as data, never unpickled
(Ray's own experiment state is another matter: see ``proposals``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.trial import TrialState
from ray.tune.search import Searcher

from orchestrator.config import SearchConfig
from orchestrator.evaluation.evaluators import EpochReport, TrialRequest
from orchestrator.strategy.events import Rejection, SearchListener, SearchProgress
from orchestrator.strategy.proposals import Proposals, SpaceExhausted, StateError
from orchestrator.strategy.surrogate import Surrogate
from search_spaces import sample_specs
from search_spaces.interface import SearchSpace

log = logging.getLogger(__name__)


def check_constraints_admit_networks(cfg: SearchConfig, draws: int = 300) -> None:
    """Refuse (ConfigError) constraints that no network of the space meets, before a search starts:
    the smallest network of the bounds and ``draws`` uniform ones are checked (~0.5 s)."""
    from orchestrator.config import ConfigError

    if not any(v is not None for v in vars(cfg.constraints).values()):
        return
    space = cfg.nasseg_space()
    reasons = [space.violations(s) for s in sample_specs(cfg.bounds, draws, cfg.seed)]
    if any(not r for r in reasons):
        return
    closest = min(reasons, key=len)
    raise ConfigError(f"constraints: no network of the search space meets them (checked the smallest and "
                      f"{draws} random ones; the closest breaks {'; '.join(closest)})")


class PrescreenSearcher(Searcher):
    def __init__(self, cfg: SearchConfig, surrogate: Surrogate | None = None,
                 listeners: Sequence[SearchListener] = (), space: SearchSpace | None = None) -> None:
        super().__init__(metric=cfg.primary_objective, mode="max")
        self.cfg = cfg
        # the space is rebuilt from the config (not pickled with Ray's experiment state)
        self.space = space or cfg.nasseg_space()
        self._signatures: dict[str, object] = {}  # arch JSON -> network signature (cache)
        self.proposals = Proposals(self.space, ["maximize" if m == "max" else "minimize" for m in cfg.modes],
                                   cfg.seed, cfg.trials, cfg.sampler)
        self.surrogate = surrogate or Surrogate(cfg.primary_objective, cfg.prescreen.min_observations, space=self.space)
        self.listeners = list(listeners)            # told about rejections and progress (search_events)
        self.candidate_of: dict[str, str] = {}      # Tune trial id -> Optuna candidate id
        self.spec_of: dict[str, str] = {}           # Tune trial id -> arch JSON
        self.predicted_of: dict[str, float] = {}    # Tune trial id -> surrogate prediction
        self.rejected_ids: list[str] = []           # candidate ids prescreened out (MLflow runs of that name)
        self.duplicates = 0                          # re-proposals of known networks (not trained, not logged)
        self.finished_reason: str | None = None      # why the search ran out of new networks

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # metric and mode come from SearchConfig, not from TuneConfig

    # -- suggestion -------------------------------------------------------------------------
    def _reject(self, cid: str, trial_id: str, spec: Any, reason: str, predicted: float | None,
                cost: dict[str, float], neutral: bool = False) -> None:
        # Optuna: PRUNED (TPE treats it as a bad region), or FAIL (ignored by TPE) when ``neutral``
        self.proposals.tell(cid, state=TrialState.FAIL if neutral else TrialState.PRUNED)
        self.rejected_ids.append(cid)
        rejection = Rejection(cid, trial_id, spec, reason, predicted, cost)
        for listener in self.listeners:
            listener.rejected(rejection)
        self._tell_progress()

    @property
    def rejections(self) -> int:
        return len(self.rejected_ids)

    def progress(self) -> SearchProgress:
        return SearchProgress(self.rejections, self.duplicates, len(self.surrogate.scores),
                              self.surrogate.kendall_tau(), self.finished_reason)

    def _tell_progress(self) -> None:
        if self.listeners:
            progress = self.progress()
            for listener in self.listeners:
                listener.progressed(progress)

    def suggest(self, trial_id: str) -> dict | str | None:
        """Ray asks for the next trial. Returns its TrialRequest as a config, or ``Searcher.FINISHED``
        when no new feasible network can be found (the space is exhausted under the constraints):
        Ray then ends the search cleanly after the running trials."""
        if self.finished_reason is not None:
            return Searcher.FINISHED
        need = self.cfg.prescreen.candidates if self.surrogate.ready else 1
        feasible: list[tuple[str, Any, dict]] = []
        draws = misses = 0
        while len(feasible) < need:
            if draws >= self.cfg.prescreen.max_draws or misses >= self.cfg.prescreen.max_draws:
                if feasible:
                    break
                self.finished_reason = (
                    f"no new feasible network in {draws} proposals and {misses} random draws: the space is "
                    f"exhausted under the constraints ({len(self.spec_of)} networks trained)")
                self._tell_progress()
                return Searcher.FINISHED
            cid = f"{trial_id}-c{draws}"
            draws += 1
            try:
                spec = self.proposals.ask(cid)
            except SpaceExhausted as exc:
                if feasible:
                    break
                self.finished_reason = f"{exc} ({len(self.spec_of)} networks trained)"
                self._tell_progress()
                return Searcher.FINISHED
            # TPE re-proposes known networks, hundreds of times once it has converged. A repeat is
            # told to Optuna as FAIL (ignored by TPE), counted on the parent run, never trained and
            # never logged as a run; a uniform random draw takes its place (also told to Optuna, so
            # TPE learns from it). Only unseen networks count as proposals.
            while self._known(spec, feasible) and misses < self.cfg.prescreen.max_draws:
                self.proposals.tell(cid, state=TrialState.FAIL)
                self.duplicates += 1
                misses += 1
                cid = f"{trial_id}-r{self.duplicates}"
                spec = self.proposals.ask_for(cid, self._random_arch())
            if self._known(spec, feasible):
                self.proposals.tell(cid, state=TrialState.FAIL)
                continue
            cost = self.space.cost(spec)
            reasons = self.space.violations(spec)
            if reasons:
                self._reject(cid, trial_id, spec, "constraint: " + "; ".join(reasons), None, cost)
            else:
                feasible.append((cid, spec, cost))
        predicted: float | None = None
        chosen = feasible[0]
        if self.surrogate.ready and len(feasible) > 1:
            preds = self.surrogate.predict([f[1] for f in feasible])
            order = np.argsort(-preds, kind="stable")
            chosen, predicted = feasible[order[0]], float(preds[order[0]])
            for rank, i in enumerate(order[1:], start=2):
                cid, spec, cost = feasible[i]
                self._reject(cid, trial_id, spec, f"surrogate: ranked {rank}/{len(feasible)} "
                             f"(predicted {preds[i]:.4f} < {predicted:.4f})", float(preds[i]), cost)
        elif self.surrogate.ready:
            predicted = float(self.surrogate.predict([chosen[1]])[0])
        cid, spec, _ = chosen
        self.candidate_of[trial_id] = cid
        self.spec_of[trial_id] = self.space.to_json(spec)
        if predicted is not None:
            self.predicted_of[trial_id] = predicted
        return TrialRequest(self.spec_of[trial_id], cid, predicted).to_config()

    def _signature(self, arch_json: str) -> object:
        if arch_json not in self._signatures:
            self._signatures[arch_json] = self.space.signature(self.space.from_json(arch_json))
        return self._signatures[arch_json]

    def _known(self, spec: Any, feasible: list[tuple[str, Any, dict]]) -> bool:
        sig = self.space.signature(spec)
        return self._trained_as(sig) is not None or any(self.space.signature(f[1]) == sig for f in feasible)

    def _random_arch(self) -> Any:
        # seeded by the search seed and the count so far: a resumed search draws the same
        return self.space.random(np.random.default_rng([self.cfg.seed, self.duplicates]))

    def _trained_as(self, signature: tuple) -> str | None:
        """The trial that already got this network (same layers, maybe another spec), if any."""
        return next((tid for tid, js in self.spec_of.items() if self._signature(js) == signature), None)

    # -- feedback ---------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass  # ASHA (Ray) does early stopping; Optuna's TPE only needs final values

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        cid = self.candidate_of.get(trial_id)
        if cid is None:
            return
        report = EpochReport.from_result(result)
        scores = report.metrics
        if report.final and not error and all(o in scores for o in self.cfg.objectives):
            self.proposals.tell(cid, values=[scores[o] for o in self.cfg.objectives])
            self.surrogate.observe(self.space.from_json(self.spec_of[trial_id]), scores[self.cfg.primary_objective])
        else:  # stopped by ASHA (no final score: a bad region for TPE) or failed (ignored by TPE)
            self.proposals.tell(cid, state=TrialState.FAIL if error else TrialState.PRUNED)
        self._tell_progress()

    # -- state ------------------------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        """Ray calls this at each experiment checkpoint; the file is JSON (Ray names it ``.pkl``)."""
        state = {"format": "nasseg-searcher/1", "proposals": self.proposals.to_dict(),
                 "surrogate": self.surrogate.to_dict(), "candidate_of": self.candidate_of,
                 "spec_of": self.spec_of, "predicted_of": self.predicted_of, "rejected_ids": self.rejected_ids,
                 "duplicates": self.duplicates, "finished_reason": self.finished_reason}
        with open(checkpoint_path, "w") as f:
            json.dump(state, f, separators=(",", ":"))

    def restore(self, checkpoint_path: str) -> None:
        """Read a :meth:`save` file; ``StateError`` (one line) for anything else, e.g. a pickle."""
        try:
            with open(checkpoint_path, "rb") as f:
                self.restore_bytes(f.read(), checkpoint_path)
        except OSError as exc:
            raise StateError(f"{checkpoint_path}: searcher state is not readable ({exc})") from None

    def restore_bytes(self, raw: bytes, source: str) -> None:
        """:meth:`restore` from the file's content (also used to check a saved state up front)."""
        try:
            state = json.loads(raw.decode("utf-8"))
            if not isinstance(state, dict) or state.get("format") != "nasseg-searcher/1":
                raise ValueError("not a nasseg searcher state")
            proposals = Proposals.from_dict(state["proposals"], self.space)
            surrogate = Surrogate.from_dict(state["surrogate"], self.space)
            maps = [{str(k): v for k, v in state[key].items()} for key in ("candidate_of", "spec_of", "predicted_of")]
            rejected_ids = [str(c) for c in state["rejected_ids"]]
            duplicates = int(state["duplicates"])
            finished_reason = state.get("finished_reason")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateError(f"{source}: searcher state is not readable ({str(exc)[:160]})") from None
        self.proposals, self.surrogate = proposals, surrogate
        (self.candidate_of, self.spec_of, self.predicted_of), self.rejected_ids = maps, rejected_ids
        self.duplicates, self.finished_reason = duplicates, finished_reason
        self._tell_progress()
