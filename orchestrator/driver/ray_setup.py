"""Ray for a search: its logging kept to one line per event, and a local Ray or a cluster
attached (with a quick probe, since Ray's own connect retries for minutes on a dead address)."""

from __future__ import annotations

import logging
import os
import time


def quiet_ray_env() -> None:
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
    # Ray Tune's per-trial result files are written by the loggers of result_loggers(); this stops
    # Ray adding its TensorBoard logger as well (MLflow holds the curves; tensorboardX costs each
    # driver ~3 s of imports and an event-file write per result)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def result_loggers() -> list:
    """Ray Tune's CSV and JSON result files of each trial, which ``ExperimentAnalysis`` (and so
    ``nasseg final``'s reading of a finished final training) reads back: the loggers Ray would add
    by itself, minus TensorBoard (see :func:`quiet_ray_env`)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]


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
