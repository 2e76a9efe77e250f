"""The search's Ray Tune run: the trainable with its resources, the searcher with its listeners
(MLflow tracker, progress view) and warm start, ASHA, the callbacks, and how it is restored."""

from __future__ import annotations

from typing import Any

from orchestrator.config import SearchConfig
from orchestrator.tracking.tracker import Tracker


def trainable(cfg: SearchConfig) -> Any:
    """Ray's trainable: ``run_trial`` bound to the search's config, with each trial's CPU/GPU share."""
    from ray import tune

    from orchestrator.evaluation.trainable import run_trial

    return tune.with_resources(tune.with_parameters(run_trial, search=cfg),
                               {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial})


def restore_tuner(cfg: SearchConfig) -> Any:
    """The interrupted search's Tuner. Ray restores the searcher with its listeners (tracker,
    progress view) from the experiment state, then its own saved JSON state into it
    (``PrescreenSearcher.restore``)."""
    from ray.tune import Tuner

    return Tuner.restore(cfg.search_uri, trainable=trainable(cfg), resume_unfinished=True, resume_errored=False)


def new_tuner(cfg: SearchConfig, tracker: Tracker) -> Any:
    """A new search's Tuner, its searcher warm-started when the config asks for it."""
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from orchestrator.driver.checkpoints import CheckpointRetention
    from orchestrator.driver.progress import ProgressView
    from orchestrator.driver.ray_setup import result_loggers
    from orchestrator.strategy.searcher import PrescreenSearcher
    from orchestrator.strategy.warm_start import apply_warm_start, load_warm_start
    from orchestrator.tracking.ray_callback import MLflowTracking

    progress = ProgressView(cfg.trials, cfg.primary_objective)
    searcher = PrescreenSearcher(cfg, listeners=[tracker, progress])
    if cfg.warm_start:
        warm = load_warm_start(cfg, tracker.client, searcher.space)
        apply_warm_start(searcher, warm)
        tracker.log_metrics(tracker.parent_id, {"warm_start_results": len(warm)})
        print(f"nasseg: sampler and surrogate warm-started on {len(warm)} results of {cfg.warm_start}"
              + (f" ({warm.outside} outside the bounds or without the objectives, left out)" if warm.outside else ""))
    scheduler = (ASHAScheduler(time_attr="training_iteration", metric=cfg.epoch_signal, mode="max",
                               max_t=cfg.train.epochs, grace_period=cfg.scheduler.grace_period,
                               reduction_factor=cfg.scheduler.reduction_factor)
                 if cfg.scheduler.enabled else FIFOScheduler())
    return Tuner(
        trainable(cfg),
        tune_config=TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=cfg.trials,
                               max_concurrent_trials=cfg.resources.max_concurrent_trials, reuse_actors=True),
        run_config=RunConfig(
            name=cfg.name, storage_path=cfg.storage_uri, verbose=0,
            # every checkpoint is kept for Ray; CheckpointRetention deletes the superseded ones
            # once no snapshot a resume could read names them (Ray's num_to_keep does not wait)
            callbacks=[MLflowTracking(tracker), progress, CheckpointRetention(), *result_loggers()],
            failure_config=FailureConfig(max_failures=cfg.resources.retries),
            checkpoint_config=CheckpointConfig(num_to_keep=None)),
    )
