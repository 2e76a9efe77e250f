"""Run (or resume) one search: preflight, the resume policy, the Tune run, then the summary
(best trial, final training, registered model, report).

Order matters for users' time: the config, the MLflow store and the Ray address are checked
first (seconds), then the search starts; nothing already recorded is touched by a failed start.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.config import ConfigError, SearchConfig
from orchestrator.driver.preflight import check_resources_satisfiable, check_same_storage, check_storage_shared, check_tracking_store, preflight
from orchestrator.driver.progress import failure_line
from orchestrator.driver.ray_setup import init_ray, quiet_ray_env
from orchestrator.driver.resume import final_searcher, prepare, write_saved_config
from orchestrator.driver.tuner import new_tuner, restore_tuner
from orchestrator.evaluation.evaluators import EpochReport
from orchestrator.evaluation.ranking_noise import RankingNoise, ranking_noise
from orchestrator.tracking.tracker import Tracker

log = logging.getLogger(__name__)


@dataclass
class SearchOutcome:
    name: str
    trials: int
    trained: int
    stopped: int
    failed: int
    prescreened: int
    best_trial: str | None
    best_score: float | None
    model_uri: str | None
    kendall_tau: float | None
    kendall_pairs: int = 0
    no_result: str | None = None      # why no trial produced the primary objective (then exit 1)
    duplicates: int = 0               # re-proposals of trained networks, replaced by random draws
    stop_reason: str | None = None    # why the searcher ended the search before ``trials``
    final: Any = None                 # final.FinalOutcome when final training ran
    model_source: str | None = None   # what the registered model is: a search trial or final-<trial>
    ranking_noise: RankingNoise | None = None  # how much of the trials' spread is programming noise


def run_search(cfg: SearchConfig, resume: bool = False) -> SearchOutcome:
    quiet_ray_env()
    preflight(cfg)                                     # fail fast: constraints, data
    check_tracking_store(cfg.resolved_tracking_uri())  # fail fast: MLflow
    if cfg.address is not None and cfg.address.startswith("ray://"):
        return _run_through_ray_client(cfg, resume)
    cfg, restoring = prepare(cfg, resume)
    if not restoring:
        check_same_storage(cfg)
    init_ray(cfg.address, cfg.local_ray.num_cpus, cfg.local_ray.num_gpus)  # fail fast: Ray
    check_resources_satisfiable(cfg)
    check_storage_shared(cfg)

    tracker = Tracker(cfg)
    cfg.search_dir.mkdir(parents=True, exist_ok=True)
    write_saved_config(cfg)
    _ = tracker.parent_id  # create (or find) the parent run now
    print(f"nasseg: {'resuming' if restoring else 'starting'} search {cfg.name!r}: {cfg.trials} trials, "
          f"objectives {list(cfg.objectives)}, sampler {cfg.sampler}, data {cfg.data}, "
          f"MLflow {cfg.resolved_tracking_uri()}", flush=True)
    tuner = restore_tuner(cfg) if restoring else new_tuner(cfg, tracker)
    try:
        results = tuner.fit()
        return finish_search(cfg, tracker, results, final_searcher(cfg))
    except BaseException as exc:  # the parent run must never be left RUNNING
        tracker.fail_search(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}")
        raise


def _run_through_ray_client(cfg: SearchConfig, resume: bool) -> SearchOutcome:
    """With Ray Client the driver would run Tune remotely anyway; we run the whole search as one
    task on the cluster's head node instead, so the searcher, callbacks and MLflow logging live
    in one process there (exactly as ``--address auto`` on the head). Its output streams back."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if cfg.resolved_tracking_uri().startswith("sqlite:") or not (cfg.storage_is_uri or Path(cfg.storage).is_absolute()):
        raise ConfigError("with a ray:// address the search runs on the head node: use an MLflow server "
                          "(--tracking-uri http://...) and an absolute shared --storage (or s3://)")
    init_ray(cfg.address)
    head = next(n["NodeID"] for n in ray.nodes() if n.get("Alive") and
                n.get("Resources", {}).get("node:__internal_head__"))
    task = ray.remote(num_cpus=0)(_search_task).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False))
    return ray.get(task.remote(replace(cfg, address=None), resume))


def _search_task(cfg: SearchConfig, resume: bool) -> SearchOutcome:
    return run_search(cfg, resume)


def finish_search(cfg: SearchConfig, tracker: Tracker, results, searcher) -> SearchOutcome:
    """Pick the best trial, log and register its model, write the report, print a summary."""
    from orchestrator.commands.report import write_report

    rows = [((r.metrics or {}).get("trial_id"), EpochReport.from_result(r.metrics), r) for r in results]
    trained = [(tid, report.metrics, r) for tid, report, r in rows if report.final and r.error is None]
    errors = [r.error for _, _, r in rows if r.error is not None]
    failed = len(errors)
    best = _select_best(cfg, trained)
    lost = tracker.close_lost_runs(set(searcher.rejected_ids), set(searcher.candidate_of))
    if lost:
        print(f"nasseg: {lost} run(s) of trials or candidates lost with a killed driver are marked nasseg.role=lost")
    tracker.log_progress(searcher.progress())
    noise = ranking_noise(cfg.primary_objective, [m for _, m, _ in trained])
    if noise is not None:
        tracker.log_metrics(tracker.parent_id, {"programming_noise_share": noise.share})
    searcher.surrogate.save(cfg.search_dir / "surrogate.json")
    tracker.client.log_artifact(tracker.parent_id, str(cfg.search_dir / "surrogate.json"))
    model_uri, source, final = None, None, None
    if best is not None and cfg.evaluator == "training":  # a replay (table evaluator) trains no model
        if cfg.final.top_k > 0:
            final, model_uri, source = train_final_and_register(cfg, tracker)
        if model_uri is None:  # final training off (or it failed): the best search trial
            # imported here: the registry needs torch (~3 CPU s), which a replay never loads
            from orchestrator.tracking.registry import log_best_model

            model_uri, source = log_best_model(cfg, tracker, best[0], best[2].checkpoint), best[0]
    elif best is not None:
        tracker.client.set_tag(tracker.parent_id, "nasseg.best_trial", best[0])
    write_report(cfg, tracker)
    why = None if best is not None else no_result_reason(cfg, len(rows), errors)
    if why:
        tracker.fail_search(why)
    else:
        tracker.finish_search()
    outcome = SearchOutcome(
        name=cfg.name, trials=len(rows), trained=len(trained), stopped=len(rows) - len(trained) - failed,
        failed=failed, prescreened=searcher.rejections, best_trial=best[0] if best else None,
        best_score=float(best[1][cfg.primary_objective]) if best else None, model_uri=model_uri,
        kendall_tau=searcher.surrogate.kendall_tau(), kendall_pairs=len(searcher.surrogate.unseen_pairs),
        no_result=why, duplicates=searcher.duplicates, stop_reason=searcher.finished_reason, final=final,
        model_source=source, ranking_noise=noise)
    _print_summary(cfg, outcome)
    return outcome


def train_final_and_register(cfg: SearchConfig, tracker: Tracker, top_k: int | None = None,
                             before_training: Callable[[], None] = lambda: None):
    """Final training of the search's best networks, then the best final network registered.
    ``before_training`` runs only if something is left to train. Returns (FinalOutcome, model URI
    or None, its label)."""
    from orchestrator.driver.final import best_final, run_final
    from orchestrator.tracking.registry import log_best_model

    outcome = run_final(cfg, tracker, top_k, before_training)
    chosen = best_final(cfg, outcome)
    if chosen is None:
        if outcome.results:
            print("nasseg: final training produced no scored network; the best search trial is registered instead",
                  file=sys.stderr)
        return outcome, None, None
    run_id = tracker.final_run(chosen.candidate.search_trial, chosen.candidate.spec, cfg.final_train)
    uri = log_best_model(cfg, tracker, chosen.label, chosen.checkpoint, run_id=run_id)
    return outcome, uri, chosen.label


def error_summary(error: BaseException) -> str:
    """The line that says why a trial failed (Ray wraps the trial's exception with its traceback)."""
    return failure_line(str(error), limit=200) or type(error).__name__


def no_result_reason(cfg: SearchConfig, n_trials: int, errors: list[BaseException]) -> str:
    """One line: why a search produced no scored trial (the most common failure, and how often)."""
    if errors:
        reason, count = Counter(error_summary(e) for e in errors).most_common(1)[0]
        return f"all {n_trials} trials failed or stopped without {cfg.primary_objective}; " \
               f"{count} of {len(errors)} failures: {reason}"
    return f"none of {n_trials} trials produced {cfg.primary_objective}"


def _select_best(cfg: SearchConfig, trained: list) -> tuple | None:
    """Best by the primary objective among the Pareto-optimal trials (all objectives)."""
    trained = [t for t in trained if all(o in t[1] for o in cfg.objectives)]
    if not trained:
        return None
    from orchestrator.strategy.pareto import pareto_ranking

    order = pareto_ranking([t[0] for t in trained], [[m[o] for o in cfg.objectives] for _, m, _ in trained], cfg.modes)
    return trained[order[0]]


def _print_summary(cfg: SearchConfig, o: SearchOutcome) -> None:
    print(f"\nnasseg: search {o.name!r} finished: {o.trials} trials ({o.trained} trained, {o.stopped} stopped by "
          f"ASHA, {o.failed} failed), {o.prescreened} candidate{'' if o.prescreened == 1 else 's'} prescreened out, "
          f"{o.duplicates} re-proposal{'' if o.duplicates == 1 else 's'} of known networks replaced by random draws")
    if o.stop_reason:
        print(f"  ended early: {o.stop_reason}")
    if o.no_result:
        print(f"nasseg: no model: {o.no_result}", file=sys.stderr)
        return
    if o.best_trial:
        print(f"  best trial {o.best_trial}: {cfg.primary_objective} = {o.best_score:.4f}")
        if o.final is not None:
            from orchestrator.driver.final import print_final

            print_final(cfg, o.final)
        print(f"  model: {o.model_uri} ({o.model_source})" if o.model_uri
              else f"  no model: trials were replayed ({cfg.evaluator})")
    if o.ranking_noise is not None:
        print(f"  {o.ranking_noise.advice(cfg.train.drift_reps)}")
    if o.kendall_tau is not None:
        caveat = " (too few to judge the surrogate)" if o.kendall_pairs < 10 else ""
        print(f"  surrogate Kendall tau on {o.kendall_pairs} unseen trials: {o.kendall_tau:.3f}{caveat}")
    uri = cfg.resolved_tracking_uri()
    print(f"  open the MLflow UI:  mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite")
          else f"  MLflow UI: {uri}")
    if o.model_uri:
        print(f"  predict:  nasseg predict --model models:/nasseg-{cfg.name}/latest --input DIR --output DIR "
              f"--tracking-uri {uri}")
