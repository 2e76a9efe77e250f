"""Run (or resume) one search: Ray Tune + PrescreenSearcher(Optuna) + ASHA + MLflow.

Order matters for users' time: the config, the MLflow store and the Ray address are checked
first (seconds), then the search starts; nothing already recorded is touched by a failed start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import ConfigError, SearchConfig, sqlite_path
from .progress import failure_line
from .tracking import STORAGE_TAG, Tracker, connect

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


def _quiet_ray_env() -> None:
    # Ray's token authentication stays on (Ray 2.60 generates a token for a local cluster); only
    # its notice "Token authentication is enabled ..." is kept out of the progress output, since
    # it suggests turning the protection off
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # a failed trial is one progress line with its reason (and its traceback in MLflow, tag
    # nasseg.error), not Ray's ~60-line traceback on the console
    for name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
        logging.getLogger(name).addFilter(_drop_trial_failure_records)
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # the experiment snapshot (trials, searcher state) a resume reads: at most 2 s old instead of
    # Ray's "auto" (>= 10 s), so a killed driver loses a few seconds of trials, not tens
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _drop_trial_failure_records(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    return not message.startswith(("Trial task failed for trial", "Trials did not complete"))


#: how long a Ray Client address whose port answers may take to accept a session
CLIENT_READY_TIMEOUT_S = 60


def init_ray(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    """Start a local Ray (``address`` None) or attach to a cluster; ConnectionError if unreachable."""
    import ray

    if ray.is_initialized():
        return
    if address is not None and address != "auto":
        _probe_tcp(address)
    kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                  configure_logging=True)
    if address is not None and address.startswith("ray://"):
        kwargs = dict(logging_level=logging.WARNING, log_to_driver=True)  # the search's output streams back
    deadline = time.time() + CLIENT_READY_TIMEOUT_S
    while True:
        try:
            if address is None:
                # "local": always a fresh local Ray. Plain ray.init() would attach to a cluster that
                # `ray start` left registered on this machine, and hang for minutes if it has died.
                ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
            else:
                ray.init(address=address, **kwargs)
            return
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, TimeoutError... for a bad address
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            # the port answered (checked above) but Ray Client's server is still starting its
            # session: "not ready yet", unlike a closed port ("not there"); try again for a while
            if address is not None and address.startswith("ray://") and time.time() < deadline:
                time.sleep(2)
                continue
            if address is not None and address.startswith("ray://"):
                raise ConnectionError(f"Ray cluster at {address!r} answers but is not ready after "
                                      f"{CLIENT_READY_TIMEOUT_S} s: {first[:200]}") from None
            raise ConnectionError(f"Ray cluster at {address!r} is unreachable: {first[:200]}") from None


def _probe_tcp(address: str, timeout_s: float = 5.0) -> None:
    """Ray's own connect retries for minutes on a dead address: check the port answers first."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConnectionError(f"Ray cluster at {address!r} is unreachable: {exc}") from None


def check_storage_shared(cfg: SearchConfig, probe=None) -> None:
    """With several nodes, every node must see ``storage`` (checkpoints move between nodes on a
    retry or resume): a marker file written here is looked for by a task on each node.
    ``probe(nodes, marker_path) -> [bool]`` replaces the Ray tasks in unit tests."""
    import uuid

    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) < 2 or cfg.storage_is_uri:
        return  # one node, or a URI (s3://, gs://) that every node reaches by itself
    cfg.storage_path.mkdir(parents=True, exist_ok=True)
    marker = cfg.storage_path / f".nasseg-shared-{uuid.uuid4().hex}"
    marker.write_text("x")
    try:
        seen = (probe or _probe_nodes)(nodes, str(marker))
    finally:
        marker.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen) if not ok]
    if blind:
        raise ConfigError(f"storage: {cfg.storage_path} is not shared with node(s) {', '.join(blind)}; "
                          f"use a shared folder (NFS) or s3://... so trials can resume on any node")


def _probe_nodes(nodes: list[dict], marker: str) -> list[bool]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def sees(path: str) -> bool:
        return Path(path).exists()

    checks = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
              .remote(marker) for n in nodes]
    return ray.get(checks, timeout=60)


#: what may differ between the saved config of a search and the command that resumes it
RESUME_MAY_CHANGE = ("address", "tracking_uri", "storage")


def prepare(cfg: SearchConfig, resume: bool) -> tuple[SearchConfig, bool]:
    """Decide between a new search and a resume. A resume runs the saved config: the command
    may change only where it runs (``RESUME_MAY_CHANGE``); any other difference (an edited YAML,
    ``--trials``, ``--data``) is refused with the keys that differ, since silently running the
    old config, or mixing two configs in one search, would both mislead."""
    from ray.tune import Tuner

    exists = (cfg.storage_is_uri or cfg.search_dir.exists()) and Tuner.can_restore(cfg.search_uri)
    if resume and not exists:
        raise ConfigError(f"--resume: no search named {cfg.name!r} under {cfg.storage_path}")
    if exists:
        stored = read_saved_config(cfg)
        if stored is not None:
            changed = config_diff(stored, cfg)
            if changed:
                raise ConfigError(f"search {cfg.name!r} exists with another config ({changed}); rerun it "
                                  f"unchanged to resume, or start a new search with --name")
            cfg = stored.with_overrides(address=cfg.address, tracking_uri=cfg.tracking_uri, storage=cfg.storage)
        check_saved_searcher_state(cfg)
        return cfg, True
    return cfg, False


SAVED_CONFIG = "search_config.json"


def _saved_config_location(cfg: SearchConfig):
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(cfg.search_uri)
    return fs, root, f"{root}/{SAVED_CONFIG}"


def write_saved_config(cfg: SearchConfig) -> None:
    """The search's config beside its Ray state (``<storage>/<name>/search_config.json``, on the
    storage URI itself for ``s3://`` and the like), so a resume from any host compares with it."""
    fs, root, path = _saved_config_location(cfg)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(cfg.to_json().encode("utf-8"))


def read_saved_config(cfg: SearchConfig) -> SearchConfig | None:
    """What :func:`write_saved_config` wrote for this search, or None."""
    import pyarrow.fs

    fs, _, path = _saved_config_location(cfg)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return SearchConfig.from_dict(json.loads(stream.read().decode("utf-8")))


def config_diff(old: SearchConfig, new: SearchConfig, limit: int = 4) -> str:
    """``"trials: 5 -> 7, train.epochs: 2 -> 3"`` for the keys a resume may not change."""
    a, b = old.flat_params(), new.flat_params()
    keys = [k for k in sorted(set(a) | set(b))
            if k.split(".")[0] not in RESUME_MAY_CHANGE and a.get(k) != b.get(k)]
    parts = [f"{k}: {a.get(k, '-')} -> {b.get(k, '-')}" for k in keys[:limit]]
    return ", ".join(parts) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_same_storage(cfg: SearchConfig) -> None:
    """A search name is one search: refuse to start one whose MLflow experiment already holds a
    search that keeps its state under another storage (it would mix two searches' runs)."""
    path = sqlite_path(cfg.resolved_tracking_uri())
    if path is not None and not path.exists():
        return  # a new store (not created before the search really starts)
    existing = Tracker(cfg).existing_parent()
    if existing is None:
        return
    recorded = existing.data.tags.get(STORAGE_TAG)
    if recorded is not None and recorded != cfg.storage_uri:
        raise ConfigError(f"search {cfg.name!r} already exists in MLflow with storage {recorded}; resume it with "
                          f"--storage {recorded}, or start a new search with another --name")


def check_saved_searcher_state(cfg: SearchConfig) -> None:
    """Read every saved searcher state of the search (StateError if one is not ours) before Ray
    restores it: Ray logs a failed searcher restore and then silently starts the experiment
    afresh, which would mix a new search into the old one's records."""
    from .prescreen import PrescreenSearcher

    for path, read in _saved_searcher_states(cfg):
        PrescreenSearcher(cfg).restore_bytes(read(), path)


def preflight(cfg: SearchConfig) -> None:
    """Checks that need no service, before anything is written: the constraints admit a network,
    and the whole data set decodes (every image and mask, sizes, mask presence, not all empty).
    With a ``ray://`` address the data lies on the head node, which checks it there."""
    from trainers.data import load_samples

    from .prescreen import check_constraints_admit_networks

    check_constraints_admit_networks(cfg)
    if cfg.address is None or not cfg.address.startswith("ray://"):
        load_samples(cfg.data, channels=cfg.train.channels, seed=cfg.seed)


def check_tracking_store(uri: str) -> None:
    """MLflow answers (ConnectionError otherwise). A SQLite store that does not exist yet is only
    checked for a writable folder: it is created when the search really starts, so a refusal
    found later (Ray, resources) leaves no empty database behind."""
    path = sqlite_path(uri)
    if path is not None:
        if not path.exists():
            folder = next((p for p in path.parents if p.exists()), Path("/"))
            if not os.access(folder, os.W_OK):
                raise ConnectionError(f"MLflow tracking store {uri} cannot be created: {folder} is not writable")
            return
    connect(uri)


def check_resources_satisfiable(cfg: SearchConfig) -> None:
    """Ray queues a trial whose request no node can meet forever, silently: refuse it instead.
    (An autoscaling cluster whose nodes are not up yet is refused too; start them first.)"""
    import ray

    need = {"CPU": cfg.resources.cpus_per_trial, "GPU": cfg.resources.gpus_per_trial}
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(all(res.get(k, 0.0) >= v for k, v in need.items() if v > 0) for res in nodes):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "none"
    raise ConfigError(f"resources: no node of the Ray cluster can run a trial that needs "
                      f"{need['CPU']:g} CPU and {need['GPU']:g} GPU (nodes: {have}); lower "
                      f"resources.cpus_per_trial / resources.gpus_per_trial")


def run_search(cfg: SearchConfig, resume: bool = False) -> SearchOutcome:
    _quiet_ray_env()
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

    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from .checkpoints import CheckpointRetention
    from .prescreen import PrescreenSearcher
    from .progress import ProgressView
    from .tracking import MLflowTracking
    from .trial import run_trial
    from .warm_start import apply_warm_start, load_warm_start

    tracker = Tracker(cfg)
    cfg.search_dir.mkdir(parents=True, exist_ok=True)
    write_saved_config(cfg)
    _ = tracker.parent_id  # create (or find) the parent run now
    trainable = tune.with_resources(tune.with_parameters(run_trial, search=cfg),
                                    {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial})
    print(f"nasseg: {'resuming' if restoring else 'starting'} search {cfg.name!r}: {cfg.trials} trials, "
          f"objectives {list(cfg.objectives)}, sampler {cfg.sampler}, data {cfg.data}, "
          f"MLflow {cfg.resolved_tracking_uri()}", flush=True)
    if restoring:
        # Ray restores the searcher with its listeners (tracker, progress view) from the experiment
        # state, then its own saved JSON state into it (PrescreenSearcher.restore)
        tuner = Tuner.restore(cfg.search_uri, trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
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
        tuner = Tuner(
            trainable,
            tune_config=TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=cfg.trials,
                                   max_concurrent_trials=cfg.resources.max_concurrent_trials, reuse_actors=True),
            run_config=RunConfig(
                name=cfg.name, storage_path=cfg.storage_uri, verbose=0,
                # every checkpoint is kept for Ray; CheckpointRetention deletes the superseded ones
                # once no snapshot a resume could read names them (Ray's num_to_keep does not wait)
                callbacks=[MLflowTracking(tracker), progress, CheckpointRetention()],
                failure_config=FailureConfig(max_failures=cfg.resources.retries),
                checkpoint_config=CheckpointConfig(num_to_keep=None)),
        )
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


def _saved_searcher_states(cfg: SearchConfig) -> list[tuple[str, Callable[[], bytes]]]:
    """(path, reader of its content) of every searcher state Ray saved for this search, oldest
    session first (Ray names them by the session's start time)."""
    import pyarrow.fs
    from ray.tune.search import Searcher

    fs, root = pyarrow.fs.FileSystem.from_uri(cfg.search_uri)
    pattern = re.compile(re.escape(Searcher.CKPT_FILE_TMPL).replace(r"\{\}", ".*"))
    files = sorted(f.path for f in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
                   if f.type == pyarrow.fs.FileType.File and pattern.fullmatch(f.base_name))

    def reader(path: str) -> Callable[[], bytes]:
        def read() -> bytes:
            with fs.open_input_stream(path) as stream:
                return stream.read()
        return read

    return [(path, reader(path)) for path in files]


def final_searcher(cfg: SearchConfig):
    """The searcher as Ray saved it when the experiment ended (Ray writes a last checkpoint after
    the final trial, fresh or resumed run alike): its counters and surrogate for the summary."""
    from .prescreen import PrescreenSearcher

    states = _saved_searcher_states(cfg)
    if not states:
        raise RuntimeError(f"no saved searcher state under {cfg.search_uri}")
    path, read = states[-1]
    searcher = PrescreenSearcher(cfg)
    searcher.restore_bytes(read(), path)
    return searcher


def finish_search(cfg: SearchConfig, tracker: Tracker, results, searcher) -> SearchOutcome:
    """Pick the best trial, log and register its model, write the report, print a summary."""
    from .model_export import log_best_model
    from .report import write_report

    rows = []
    for r in results:
        m = r.metrics or {}
        rows.append((m.get("trial_id"), m, r))
    trained = [(tid, m, r) for tid, m, r in rows if cfg.primary_objective in m and r.error is None]
    errors = [r.error for _, _, r in rows if r.error is not None]
    failed = len(errors)
    best = _select_best(cfg, trained)
    lost = tracker.close_lost_runs(set(searcher.rejected_ids), set(searcher.candidate_of))
    if lost:
        print(f"nasseg: {lost} run(s) of trials or candidates lost with a killed driver are marked nasseg.role=lost")
    tracker.log_progress(searcher.progress())
    searcher.surrogate.save(cfg.search_dir / "surrogate.json")
    tracker.client.log_artifact(tracker.parent_id, str(cfg.search_dir / "surrogate.json"))
    model_uri, source, final = None, None, None
    if best is not None and cfg.evaluator == "training":  # a replay (table evaluator) trains no model
        if cfg.final.top_k > 0:
            final, model_uri, source = train_final_and_register(cfg, tracker)
        if model_uri is None:  # final training off (or it failed): the best search trial
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
        model_source=source)
    _print_summary(cfg, outcome)
    return outcome


def train_final_and_register(cfg: SearchConfig, tracker: Tracker, top_k: int | None = None):
    """Final training of the search's best networks, then the best final network registered.
    Returns (FinalOutcome, model URI or None, its label)."""
    from .final import best_final, run_final
    from .model_export import log_best_model

    outcome = run_final(cfg, tracker, top_k)
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
    if not trained:
        return None
    from .pareto import pareto_ranking

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
            from .final import print_final

            print_final(cfg, o.final)
        print(f"  model: {o.model_uri} ({o.model_source})" if o.model_uri
              else f"  no model: trials were replayed ({cfg.evaluator})")
    if o.kendall_tau is not None:
        caveat = " (too few to judge the surrogate)" if o.kendall_pairs < 10 else ""
        print(f"  surrogate Kendall tau on {o.kendall_pairs} unseen trials: {o.kendall_tau:.3f}{caveat}")
    uri = cfg.resolved_tracking_uri()
    print(f"  open the MLflow UI:  mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite")
          else f"  MLflow UI: {uri}")
    if o.model_uri:
        print(f"  predict:  nasseg predict --model models:/nasseg-{cfg.name}/latest --input DIR --output DIR "
              f"--tracking-uri {uri}")
