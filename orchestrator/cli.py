"""nasseg command line: ``search``, ``final``, ``report``, ``export-table``, ``predict``.

Every input problem (bad config, missing data, unreachable MLflow or Ray) ends with one line
``nasseg: error: ...`` and exit code 2, before any trial starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

EXIT_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nasseg", description="Hardware-aware NAS for nuclei segmentation "
                                "on analog in-memory computing hardware.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", help="run or resume a search")
    s.add_argument("config", help="YAML config (e.g. configs/demo.yaml)")
    s.add_argument("--name", help="search name (MLflow experiment, storage folder)")
    s.add_argument("--trials", type=int, help="number of trained trials")
    s.add_argument("--data", help="dsb2018:PATH | folder:PATH | synthetic[:N] | synthetic-bright[:N] | synthetic-brightfield[:N]")
    s.add_argument("--address", help="Ray cluster: auto | ray://host:port | host:port (default: local Ray)")
    s.add_argument("--tracking-uri", help="MLflow tracking URI (default: the config's, else $MLFLOW_TRACKING_URI, "
                                          "else sqlite:///mlflow.db)")
    s.add_argument("--storage", help="folder for Ray checkpoints and the search state")
    s.add_argument("--warm-start", help="MLflow experiment whose trials pre-fit the surrogate")
    s.add_argument("--resume", action="store_true", help="continue an interrupted search (same name)")
    f = sub.add_parser("final", help="final training of a finished search's best networks (e.g. one made "
                                     "before final training existed); registers the best")
    f.add_argument("name")
    f.add_argument("--top-k", type=int, help="networks to retrain (default: the config's final.top_k, else 2)")
    f.add_argument("--config", help="the search's YAML (default: the saved config under --storage)")
    f.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the search's own")
    f.add_argument("--storage", default="nasseg_runs")
    f.add_argument("--address", help="Ray cluster: auto | host:port (default: local Ray)")
    r = sub.add_parser("report", help="write trials.csv and plots of a search, log them to MLflow")
    r.add_argument("name")
    r.add_argument("--config", help="the search's YAML (default: the saved config under --storage)")
    r.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the search's own")
    r.add_argument("--storage", default="nasseg_runs")
    r.add_argument("--output", help="output folder (default: <storage>/<name>/report)")
    t = sub.add_parser("export-table", help="write a search's trials as a results table (for evaluator: table:PATH)")
    t.add_argument("name")
    t.add_argument("output", help="JSON-lines file to write")
    t.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the search's own")
    t.add_argument("--storage", default="nasseg_runs")
    t.add_argument("--config", help="the search's YAML (default: the saved config under --storage)")
    q = sub.add_parser("predict", help="segment images with a registered model")
    q.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/nasseg-demo/latest")
    q.add_argument("--input", required=True, help="folder of PNG/TIFF images")
    q.add_argument("--output", required=True, help="folder for label TIFFs and overlay PNGs")
    q.add_argument("--drift", type=float, help="simulate the analog network this many seconds after programming")
    q.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." etc.
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        if args.command == "search":
            return _search(args)
        if args.command == "final":
            return _final(args)
        if args.command == "report":
            return _report(args)
        if args.command == "export-table":
            return _export_table(args)
        return _predict(args)
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        print(f"nasseg: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("nasseg: interrupted; resume with the same command and --resume", file=sys.stderr)
        return 130


#: the errors that are a user's mistake (one line, exit 2), by the module that defines each
INPUT_ERRORS = (("orchestrator.config", "ConfigError"), ("orchestrator.strategy.proposals", "StateError"),
                ("orchestrator.tracking.registry", "ModelError"), ("trainers.data", "DataError"),
                ("trainers.tensor_files", "UnsafeFileError"))


def _is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of :data:`INPUT_ERRORS` (or a missing file / unreachable server). Only
    modules already loaded are asked: one never imported raised nothing, and importing MLflow and
    torch just to name their exception classes would cost a refused config 4 s."""
    if isinstance(exc, (ConnectionError, FileNotFoundError)):
        return True
    return any(isinstance(exc, getattr(sys.modules[module], name))
               for module, name in INPUT_ERRORS if module in sys.modules)


def _search(args: argparse.Namespace) -> int:
    from orchestrator.config import SearchConfig

    cfg = SearchConfig.from_yaml(args.config, {
        "name": args.name, "trials": args.trials, "data": args.data, "address": args.address,
        "tracking_uri": args.tracking_uri, "storage": args.storage, "warm_start": args.warm_start})
    from orchestrator.driver.search import run_search  # Ray, MLflow: once the config holds

    outcome = run_search(cfg, resume=args.resume)
    if outcome.trials == 0 and outcome.stop_reason:
        print(f"nasseg: error: {outcome.stop_reason}", file=sys.stderr)
        return EXIT_INPUT  # the space and constraints admit no network at all
    return 1 if outcome.no_result else 0


def _existing_store(uri: str) -> str:
    """``report``/``predict`` read a store: a SQLite file that does not exist is a typo, not a new
    store to create (MLflow would create an empty one and then say the model is not found)."""
    from orchestrator.config import ConfigError, sqlite_path

    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise ConfigError(f"tracking URI {uri}: no MLflow store at {path}")
    return uri


def _load_saved(args: argparse.Namespace):
    import re

    from orchestrator.config import ConfigError, SearchConfig, env_tracking_uri

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", args.name) or ".." in args.name:
        raise ConfigError(f"{args.command}: {args.name!r} is not a search name (1-64 letters, digits, '_', '.', '-')")

    if args.config:
        return SearchConfig.from_yaml(args.config, {"name": args.name, "tracking_uri": args.tracking_uri,
                                                    "storage": args.storage})
    from orchestrator.driver.resume import SAVED_CONFIG, read_saved_config

    where = SearchConfig(name=args.name, storage=args.storage)
    saved = read_saved_config(where)
    if saved is None:
        raise ConfigError(f"{where.search_uri}/{SAVED_CONFIG}: no saved search config (pass --config or --storage)")
    return saved.with_overrides(tracking_uri=args.tracking_uri or env_tracking_uri(), storage=args.storage)


def _open_saved_search(args: argparse.Namespace):
    """The saved config and a tracker of an existing search (``report``, ``export-table``)."""
    from orchestrator.tracking.store import connect
    from orchestrator.tracking.tracker import Tracker

    cfg = _load_saved(args)
    connect(_existing_store(cfg.resolved_tracking_uri()))
    tracker = Tracker(cfg)
    if tracker.client.get_experiment_by_name(cfg.name) is None:
        raise FileNotFoundError(f"no MLflow experiment named {cfg.name!r} at {cfg.resolved_tracking_uri()}")
    parent = tracker.existing_parent()
    if parent is None:
        raise FileNotFoundError(f"MLflow experiment {cfg.name!r} holds no nasseg search run")
    tracker.attach(parent.info.run_id)  # read and add to its records; its status stays as it is
    return cfg, tracker


def _final(args: argparse.Namespace) -> int:
    from orchestrator.commands.report import write_report
    from orchestrator.config import ConfigError
    from orchestrator.driver.final import print_final
    from orchestrator.driver.preflight import check_resources_satisfiable, preflight
    from orchestrator.driver.ray_setup import init_ray, quiet_ray_env
    from orchestrator.driver.search import train_final_and_register

    cfg, tracker = _open_saved_search(args)
    if tracker.client.get_run(tracker.parent_id).info.status == "RUNNING":
        raise ConfigError(f"final: search {cfg.name!r} is running or was interrupted; resume it (nasseg search "
                          f"... --resume), its final training runs at its end")
    if cfg.evaluator != "training":
        raise ConfigError(f"final: search {cfg.name!r} replayed a results table ({cfg.evaluator}); it has no "
                          f"networks to retrain")
    top_k = args.top_k if args.top_k is not None else (cfg.final.top_k or 2)
    if top_k < 1:
        raise ConfigError(f"--top-k: must be >= 1, got {top_k}")
    if args.address is not None:
        cfg = cfg.with_overrides(address=args.address)
    quiet_ray_env()

    def before_training() -> None:  # not when the final training finished earlier or is refused
        preflight(cfg)  # the search's data is still there and decodes
        init_ray(cfg.address, cfg.local_ray.num_cpus, cfg.local_ray.num_gpus)
        check_resources_satisfiable(cfg)

    outcome, uri, label = train_final_and_register(cfg, tracker, top_k, before_training)
    if not outcome.results:
        print(f"nasseg: search {cfg.name!r} has no trained trial with {', '.join(cfg.objectives)} to retrain",
              file=sys.stderr)
        return 1
    print(f"\nnasseg: final training of {cfg.name!r} finished:")
    print_final(cfg, outcome)
    if uri is None:
        return 1
    print(f"  model: {uri} ({label})")
    write_report(cfg, tracker)
    return 0


def _report(args: argparse.Namespace) -> int:
    from orchestrator.commands.report import write_report

    cfg, tracker = _open_saved_search(args)
    out = write_report(cfg, tracker, Path(args.output) if args.output else None)
    print(f"nasseg: report of {cfg.name!r} written to {out} and logged to its parent run")
    return 0


def _export_table(args: argparse.Namespace) -> int:
    from orchestrator.commands.export_table import export_table

    cfg, tracker = _open_saved_search(args)
    n = export_table(tracker, Path(args.output))
    print(f"nasseg: {n} trial(s) of {cfg.name!r} written to {args.output} (replay with evaluator: table:{args.output})")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from orchestrator.commands.predict import check_inputs, predict_folder
    from orchestrator.config import SearchConfig, env_tracking_uri
    from orchestrator.tracking.store import connect

    given = args.tracking_uri or env_tracking_uri()
    cfg = SearchConfig(tracking_uri=given) if given else SearchConfig()
    cfg.validate()  # the URI is a tracking URI and carries no credentials
    images = check_inputs(args.model, Path(args.input), Path(args.output), args.drift)
    uri = _existing_store(cfg.resolved_tracking_uri())
    connect(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    written = predict_folder(args.model, uri, images, Path(args.output), args.drift)
    print(f"nasseg: {len(written)} image(s) segmented into {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
