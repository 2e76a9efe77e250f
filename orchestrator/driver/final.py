"""Final training: the search's best networks trained again from scratch with the full budget.

The search's trials are short runs that only rank networks; no NAS tool hands over such a proxy.
After the search (or later, ``nasseg final NAME``), the best ``final.top_k`` trained networks (by
the primary objective among the Pareto-optimal trials first, then the others) are trained again
with ``SearchConfig.final_train`` (same data, preset, head, seed; the final budget) and
drift-evaluated like trials. They run as Ray trials of their own experiment (``<search>/final``
in the search's storage): same resources, checkpoints every epoch, a ``kill -9`` resumes them from
their last epoch and a finished one is never redone. Each writes into an MLflow child run of the
search (``nasseg.role=final``, ``nasseg.search_trial`` = the trial it retrains). The best final
network (same rule as for trials) is the registered model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.config import SearchConfig
from orchestrator.evaluation.evaluators import EpochReport
from orchestrator.strategy.pareto import pareto_ranking
from orchestrator.tracking.tracker import STAGE, TRIAL_ID, Tracker, final_label, role_filter
from search_spaces import ArchSpec

FINAL_EXPERIMENT = "final"   # Ray experiment folder of final training, inside the search's folder


@dataclass(frozen=True)
class FinalCandidate:
    """A trained search trial chosen for final training, with its search scores."""

    search_trial: str
    spec: ArchSpec
    search_scores: dict[str, float]


@dataclass
class FinalResult:
    """One network after final training: its search and final scores and its checkpoint."""

    candidate: FinalCandidate
    final_scores: dict[str, float]
    checkpoint: Any
    error: str | None = None

    @property
    def label(self) -> str:
        return final_label(self.candidate.search_trial)


@dataclass
class FinalOutcome:
    results: list[FinalResult]
    spearman: float | None        # search vs final ranking by the primary objective (None: < 2 networks)

    @property
    def trained(self) -> list[FinalResult]:
        return [r for r in self.results if r.error is None and r.final_scores]


def rank_for_final(cfg: SearchConfig, trials: list[tuple[str, dict[str, float]]]) -> list[str]:
    """Trial ids in final-training order: the Pareto front over all objectives by the primary
    objective, then the rest by the primary objective (ties: the smaller trial id)."""
    order = pareto_ranking([tid for tid, _ in trials], [[m[o] for o in cfg.objectives] for _, m in trials], cfg.modes)
    return [trials[i][0] for i in order]


def select_candidates(cfg: SearchConfig, tracker: Tracker, top_k: int) -> list[FinalCandidate]:
    """The ``top_k`` search trials to retrain, read from the search's MLflow records (the trained
    trial runs with every objective), so a search made before final training existed works too."""
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=50_000,
                                      filter_string=role_filter(cfg.name, "trial", {STAGE: "trained"}))
    scored = [(r.data.tags[TRIAL_ID], r) for r in runs if all(o in r.data.metrics for o in cfg.objectives)]
    by_id = dict(scored)
    chosen = rank_for_final(cfg, [(tid, r.data.metrics) for tid, r in scored])[:top_k]
    return [FinalCandidate(tid, ArchSpec.from_params(by_id[tid].data.params, prefix="arch."),
                           dict(by_id[tid].data.metrics)) for tid in chosen]


def run_final(cfg: SearchConfig, tracker: Tracker, top_k: int | None = None,
              before_training: Callable[[], None] = lambda: None) -> FinalOutcome:
    """Train the chosen networks with the final budget as Ray trials (resuming an interrupted
    final training of this search), record them in MLflow and return their scores.

    A final training that already finished is read back as data, and a request for networks it
    does not hold is refused, both without starting anything; ``before_training`` runs only when
    there is something to train (``nasseg final`` starts Ray there)."""
    k = cfg.final.top_k if top_k is None else top_k
    candidates = select_candidates(cfg, tracker, k)
    if not candidates:
        return FinalOutcome([], None)
    uri = f"{cfg.search_uri}/{FINAL_EXPERIMENT}"
    saved = saved_final(uri)
    if saved is not None:
        check_same_candidates(saved, candidates)
    if saved is not None and all(_finished(r) for r in saved):
        print(f"nasseg: final training of {', '.join(c.search_trial for c in candidates)} finished earlier: "
              f"nothing to train", flush=True)
        results = saved
    else:
        before_training()
        results = _train(cfg, tracker, candidates, uri, resume=saved is not None)
    by_trial = {c.search_trial: c for c in candidates}
    out = []
    for r in results:
        request = (r.config or {}).get("request", {})
        candidate = by_trial.get(request.get("search_trial"))
        if candidate is None:  # a restored final training of other candidates: report what it trained
            candidate = FinalCandidate(request["search_trial"], ArchSpec.from_json(request["arch"]), {})
        report = EpochReport.from_result(r.metrics)
        done = r.error is None and report.final and cfg.primary_objective in report.metrics
        out.append(FinalResult(candidate, report.metrics if done else {}, r.checkpoint,
                               None if done else (str(r.error).strip().splitlines() or ["no final score"])[-1][:300]))
    pairs = [(r.candidate.search_scores[cfg.primary_objective], r.final_scores[cfg.primary_objective])
             for r in out if r.final_scores and cfg.primary_objective in r.candidate.search_scores]
    from orchestrator.commands.report import spearman

    rho = spearman([p[0] for p in pairs], [p[1] for p in pairs])
    if rho is not None:
        tracker.log_metrics(tracker.parent_id, {"final_search_spearman": rho})
    return FinalOutcome(sorted(out, key=lambda r: r.label), rho)


def saved_final(uri: str) -> Any | None:
    """The results of the final training Ray saved at ``uri`` (a ``ResultGrid``), read from its
    experiment state without starting Ray; None when none was started there. (Ray's state is
    cloudpickle, like what ``Tuner.restore`` reads: the storage folder is trusted, see README.)"""
    from ray.tune import ExperimentAnalysis, ResultGrid, Tuner

    if not Tuner.can_restore(uri):
        return None
    return ResultGrid(ExperimentAnalysis(uri))


def _finished(result: Any) -> bool:
    return result.error is None and EpochReport.from_result(result.metrics).final


def _train(cfg: SearchConfig, tracker: Tracker, candidates: list[FinalCandidate], uri: str,
           resume: bool) -> Any:
    """Ray Tune's final training of ``candidates`` (started, or with ``resume`` continued from
    ``uri``): its results."""
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner

    from orchestrator.driver.checkpoints import CheckpointRetention
    from orchestrator.driver.progress import ProgressView
    from orchestrator.driver.ray_setup import result_loggers
    from orchestrator.tracking.ray_callback import FinalTracking

    final_cfg = cfg.for_final_training()
    train = final_cfg.train
    trainable = tune.with_resources(tune.with_parameters(run_final_trial, search=final_cfg),
                                    {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial})
    print(f"nasseg: final training of {len(candidates)} network(s) with {train.epochs} x {train.steps_per_epoch} "
          f"steps (search trials: {cfg.train.epochs} x {cfg.train.steps_per_epoch}): "
          f"{', '.join(c.search_trial for c in candidates)}", flush=True)
    if resume:
        tuner = Tuner.restore(uri, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        requests = [{"arch": c.spec.to_json(), "search_trial": c.search_trial} for c in candidates]
        tuner = Tuner(
            trainable, param_space={"request": tune.grid_search(requests)},
            tune_config=TuneConfig(num_samples=1, max_concurrent_trials=cfg.resources.max_concurrent_trials,
                                   reuse_actors=True),
            run_config=RunConfig(
                name=FINAL_EXPERIMENT, storage_path=cfg.search_uri, verbose=0,
                callbacks=[FinalTracking(tracker, train), ProgressView(len(candidates), cfg.primary_objective,
                                                                       what="final trainings"),
                           CheckpointRetention(), *result_loggers()],
                failure_config=FailureConfig(max_failures=cfg.resources.retries),
                checkpoint_config=CheckpointConfig(num_to_keep=None)))
    return tuner.fit()


def check_same_candidates(saved: Any, candidates: list[FinalCandidate]) -> None:
    """A final training resumes the networks it started with; asking for networks it does not
    hold (a larger ``--top-k``, a search resumed after ``nasseg final``) is refused in one line
    rather than silently training other networks than asked. ``saved``: its results so far."""
    from orchestrator.config import ConfigError

    held = {(r.config or {}).get("request", {}).get("search_trial") for r in saved}
    missing = [c.search_trial for c in candidates if c.search_trial not in held]
    if missing:
        raise ConfigError(f"final training of this search already holds trials {', '.join(sorted(map(str, held)))}; "
                          f"it cannot add {', '.join(missing)} (ask for at most those, e.g. --top-k {len(held)})")


def best_final(cfg: SearchConfig, outcome: FinalOutcome) -> FinalResult | None:
    """The registered network: best by the primary objective among the Pareto-optimal finals."""
    done = outcome.trained
    if not done:
        return None
    order = rank_for_final(cfg, [(r.label, r.final_scores) for r in done])
    return next(r for r in done if r.label == order[0])


def run_final_trial(config: dict[str, Any], search: SearchConfig) -> None:
    """Ray Tune function trainable of one final training (``search``: the final-budget config)."""
    from orchestrator.evaluation.evaluators import TrainingEvaluator, TrialRequest
    from orchestrator.evaluation.trainable import RayReporter

    reporter = RayReporter()
    try:
        TrainingEvaluator().run(TrialRequest(config["request"]["arch"]), search, reporter)
    finally:
        reporter.close()


def print_final(cfg: SearchConfig, outcome: FinalOutcome) -> None:
    """Per network: search score -> final score, and the Spearman correlation of the rankings."""
    obj = cfg.primary_objective
    for r in outcome.results:
        before = r.candidate.search_scores.get(obj)
        before_s = f"{before:.4f}" if before is not None else "-"
        if r.error:
            print(f"  {r.label}: search {obj} {before_s}, final training failed: {r.error}")
            continue
        extra = ", ".join(f"{m} {r.final_scores[m]:.3f}" for m in ("dice_1y", "ap50_1y", "map_dsb_worst")
                          if m in r.final_scores)
        print(f"  {r.label}: {obj} search {before_s} -> final {r.final_scores[obj]:.4f} ({extra})")
    n = len(outcome.trained)
    caveat = " (too few networks to judge)" if n < 5 else ""
    if outcome.spearman is not None:
        print(f"  search vs final ranking: Spearman {outcome.spearman:.2f} over {n} networks{caveat}")
    elif n >= 2:
        print(f"  search vs final ranking: Spearman undefined over {n} networks (tied scores)")
