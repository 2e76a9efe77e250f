"""SearchConfig: every knob of a search, read from YAML + CLI flags and validated once.

It flows unchanged from the CLI to every trial and is saved with the search
(``<storage>/<name>/search_config.json``) so that a resume uses the same one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from search_spaces import PRESETS, Constraints, SpaceBounds
from search_spaces.interface import NASSegSpace
from trainers.data import DataError, check_data_spec
from trainers.settings import TrainConfig, head_channels, score_time_problem
from trainers.typed import STRICT, from_mapping

#: Objectives a search may optimise: metric name -> direction.
OBJECTIVE_DIRECTIONS = {"tiles": "min", "params": "min", "macs_per_px": "min", "digital_params": "min"}
_DICE_OBJECTIVE = re.compile(r"(dice|iou|pq|f1_inst|ap50|map_dsb)_(digital|worst|\d+(?:\.\d+)?[smhdy])")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def objective_direction(name: str) -> str:
    if name in OBJECTIVE_DIRECTIONS:
        return OBJECTIVE_DIRECTIONS[name]
    if _DICE_OBJECTIVE.fullmatch(name):
        return "max"
    raise ConfigError(f"objectives: unknown objective {name!r}; use e.g. dice_1d, dice_1y, map_dsb_worst, f1_inst_30d, "
                      f"map_dsb_1d, tiles, params, macs_per_px")


#: what can propose networks (``orchestrator.strategy.proposals``): Optuna's TPE, a GP over the encoding, or
#: every network of the space once, in a seeded random order (``grid``: tabular benchmarks)
SAMPLERS = ("tpe", "gp", "grid")


@dataclass(frozen=True)
class PrescreenConfig:
    """How candidates are filtered before training (see ``orchestrator.strategy.searcher``)."""

    # candidates drawn per started trial once the surrogate is ready; the best-ranked is trained.
    # 1 (no ranking; the surrogate still predicts each trial) by the strategy decision of
    # benchmarks/RESULTS.md: GP with and without 4 ranked candidates tie on both tables.
    candidates: int = 1
    min_observations: int = 4    # finished trials before the surrogate ranks
    max_draws: int = 200         # infeasible draws in a row before giving up (constraints too tight)


@dataclass(frozen=True)
class FinalConfig:
    """Final training (``orchestrator.driver.final``): the best ``top_k`` networks of the search trained
    again from scratch with ``epochs`` x ``steps_per_epoch`` (0: the search's epochs, and 8x its
    steps per epoch), then drift-evaluated over ``drift_reps`` programming draws (8: the standard
    error of a trial's 2 draws halves, benchmarks/RESULTS.md bench_drift_reps); the best of them
    is the registered model. ``top_k: 0`` skips it (the best search trial is registered)."""

    top_k: int = 2
    epochs: int = 0
    steps_per_epoch: int = 0
    lr_schedule: str = ""        # "": the search's train.lr_schedule; constant | cosine
    drift_reps: int = 8          # programming draws of the final drift evaluation (0: the search's)


@dataclass(frozen=True)
class ResourcesConfig:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent_trials: int = 2
    retries: int = 1             # re-runs of a crashed trial from its last checkpoint


@dataclass(frozen=True)
class LocalRayConfig:
    """Resources of the local Ray started when no ``address`` is given (None: Ray detects them).
    ``num_gpus`` may declare GPUs a node does not have: trials then get GPU ids but run on CPU."""

    num_cpus: int | None = None
    num_gpus: int | None = None


@dataclass(frozen=True)
class SchedulerConfig:
    """ASHA on the per-epoch primary objective (``SearchConfig.epoch_signal``, e.g. ``val_dice_1d``)."""

    enabled: bool = True
    grace_period: int = 1
    reduction_factor: int = 2


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (absolute with four slashes), else None."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def env_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI`` (MLflow's own convention), the default wherever no URI is given."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


@dataclass(frozen=True)
class SearchConfig:
    __pydantic_config__ = STRICT  # read from mappings by trainers.typed.from_mapping

    name: str = "demo"
    data: str = "synthetic"
    val_fraction: float = 0.25
    trials: int = 8
    seed: int = 0
    objectives: tuple[str, ...] = ("dice_1d",)
    space: str = "default"
    bounds: SpaceBounds = field(default_factory=SpaceBounds)
    constraints: Constraints = field(default_factory=Constraints)
    train: TrainConfig = field(default_factory=TrainConfig)
    prescreen: PrescreenConfig = field(default_factory=PrescreenConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    local_ray: LocalRayConfig = field(default_factory=LocalRayConfig)
    address: str | None = None          # None: start a local Ray; "auto", "ray://h:p", "h:p"
    tracking_uri: str = "sqlite:///mlflow.db"
    storage: str = "nasseg_runs"
    warm_start: str | None = None       # earlier results that pre-fit the sampler and surrogate: an MLflow
                                        # experiment's name, or table:PATH (a results table)
    evaluator: str = "training"         # how trials are evaluated: training | table:PATH (replay)
    sampler: str = "gp"                 # what proposes networks: gp (orchestrator.strategy.gp) | tpe (Optuna)

    # -- derived ----------------------------------------------------------------------------
    def nasseg_space(self) -> NASSegSpace:
        """The NASSegNet space this search samples, costed as its networks are trained: input
        channels, the output head's channels, crossbar tile size, and the constraints."""
        return NASSegSpace(self.bounds, self.constraints, self.train.channels, self.train.hwa.tile_size,
                           head_channels(self.train.head))

    @property
    def primary_objective(self) -> str:
        return self.objectives[0]

    @property
    def epoch_signal(self) -> str:
        """The per-epoch metric ASHA prunes on and MLflow plots per epoch: the primary objective
        measured on the validation images after every epoch (``val_dice_1d``: one programming
        draw, one day of drift; ``val_map_dsb_worst``), so that pruning sees what the search
        optimises."""
        return f"val_{self.primary_objective}"

    @property
    def trial_train(self) -> TrainConfig:
        """The training config of a trial: the search's, measuring the objective every epoch."""
        return replace(self.train, epoch_objective=self.primary_objective)

    @property
    def final_train(self) -> TrainConfig:
        """The training config of final training: the search's data, preset and head with the
        final budget (default: the search's epochs, 8x its steps per epoch)."""
        return replace(self.train, epochs=self.final.epochs or self.train.epochs,
                       steps_per_epoch=self.final.steps_per_epoch or 8 * self.train.steps_per_epoch,
                       lr_schedule=self.final.lr_schedule or self.train.lr_schedule,
                       drift_reps=self.final.drift_reps or self.train.drift_reps)

    def for_final_training(self) -> SearchConfig:
        """This config with the final budget as its training config (what final trials run)."""
        return replace(self, train=self.final_train)

    @property
    def modes(self) -> list[str]:
        return [objective_direction(o) for o in self.objectives]

    @property
    def storage_is_uri(self) -> bool:
        return "://" in self.storage

    @property
    def storage_path(self) -> Path:
        """Local folder of the storage (for a URI storage: a local cache folder)."""
        if self.storage_is_uri:
            return Path.home() / ".cache" / "nasseg"
        return Path(self.storage).expanduser().resolve()

    @property
    def storage_uri(self) -> str:
        """What Ray Tune gets as ``storage_path``: the URI as given (s3://...) or the local folder."""
        return self.storage.rstrip("/") if self.storage_is_uri else str(self.storage_path)

    @property
    def search_uri(self) -> str:
        return f"{self.storage_uri}/{self.name}"

    @property
    def search_dir(self) -> Path:
        """Local folder of this search's own files (config, surrogate, report)."""
        return self.storage_path / self.name

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        d["bounds"] = self.bounds.as_dict()
        d["train"] = self.train.as_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    def flat_params(self) -> dict[str, str]:
        """The config as flat ``a.b`` -> str pairs (MLflow params of the parent run)."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)

        walk("", self.to_dict())
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """Build and validate; every problem raises ConfigError naming the key. The whole mapping
        is validated at once (``trainers.typed``: pydantic, strict types, no unknown keys); what
        happens around it: one objective may be a plain string, ``bounds`` start from the
        ``space`` preset, the tracking URI defaults to ``$MLFLOW_TRACKING_URI``, the search's seed
        seeds training unless ``train.seed`` is given, ``table:`` paths become absolute."""
        data = dict(data or {})
        for key in ("address", "warm_start"):  # an explicit null: the default
            if key in data and data[key] is None:
                del data[key]
        if isinstance(data.get("objectives"), str):
            data["objectives"] = [data["objectives"]]
        if "tracking_uri" not in data and env_tracking_uri():
            data["tracking_uri"] = env_tracking_uri()
        space = data.get("space", "default")
        if not isinstance(space, str) or space not in PRESETS:
            raise ConfigError(f"space: unknown preset {space!r}; choose from {sorted(PRESETS)}")
        data["bounds"] = {**PRESETS[space].as_dict(), **_section("bounds", data.get("bounds"))}
        train = _section("train", data.get("train"))
        # the search's seed also seeds the weights and noise draws; a negative one is left to
        # validate(), which names it as the user wrote it (`seed:`, not `train.seed:`)
        if "seed" not in train and isinstance(data.get("seed"), int) and data["seed"] >= 0:
            train["seed"] = data["seed"]
        data["train"] = train
        try:
            cfg = from_mapping(cls, data, "")
        except ValueError as exc:  # SpecError is a ValueError
            raise ConfigError(str(exc)) from None
        absolute = {key: "table:" + str(Path(value[len("table:"):]).expanduser().resolve())
                    for key in ("evaluator", "warm_start")  # workers and resumes run elsewhere
                    if (value := getattr(cfg, key)) and value.startswith("table:")}
        cfg = replace(cfg, **absolute)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> SearchConfig:
        """Read a YAML file, apply CLI overrides (``None`` values ignored), validate."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not data and not any(v is not None for v in (overrides or {}).values()):
            raise ConfigError(f"{path}: the config is empty; start from configs/demo.yaml (an empty file "
                              f"would run the full default search)")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of keys")
        for key, value in (overrides or {}).items():
            if value is not None:
                data[key] = value
        return cls.from_dict(data)

    def with_overrides(self, **changes: Any) -> SearchConfig:
        cfg = replace(self, **{k: v for k, v in changes.items() if v is not None})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name) or ".." in self.name:
            raise ConfigError(f"name: {self.name!r} must be 1-64 letters, digits, '_', '.', '-' (no '..')")
        if self.trials < 1:
            raise ConfigError(f"trials: must be >= 1, got {self.trials}")
        if self.seed < 0:
            raise ConfigError(f"seed: must be >= 0, got {self.seed}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: must be in (0, 1), got {self.val_fraction}")
        if not self.objectives:
            raise ConfigError("objectives: list at least one objective")
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives: duplicates in {list(self.objectives)}")
        for obj in self.objectives:
            objective_direction(obj)
            problem = score_time_problem(obj, self.train.drift_times) if obj not in OBJECTIVE_DIRECTIONS else None
            if problem:
                raise ConfigError(f"objectives: {obj} {problem}")
        if objective_direction(self.primary_objective) != "max":
            raise ConfigError(f"objectives: the first objective must be a quality score (e.g. dice_1d), "
                              f"got {self.primary_objective}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler: {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if self.sampler == "grid" and self.prescreen.candidates != 1:
            raise ConfigError(f"prescreen.candidates: sampler grid trains every network in turn, so there is nothing "
                              f"to prescreen; set it to 1 (got {self.prescreen.candidates})")
        f = self.final
        if min(f.top_k, f.epochs, f.steps_per_epoch, f.drift_reps) < 0:
            raise ConfigError(f"final: top_k, epochs, steps_per_epoch and drift_reps must be >= 0 (0: skip / the "
                              f"default), got {f.top_k}, {f.epochs}, {f.steps_per_epoch}, {f.drift_reps}")
        if f.lr_schedule:
            try:
                _ = self.final_train  # TrainConfig validates the schedule
            except ValueError as exc:
                raise ConfigError(str(exc).replace("train.lr_schedule", "final.lr_schedule")) from None
        p = self.prescreen
        if p.candidates < 1 or p.min_observations < 2 or p.max_draws < 1:
            raise ConfigError("prescreen: candidates >= 1, min_observations >= 2, max_draws >= 1")
        r = self.resources
        if r.cpus_per_trial <= 0 or r.gpus_per_trial < 0 or r.max_concurrent_trials < 1 or r.retries < 0:
            raise ConfigError("resources: cpus_per_trial > 0, gpus_per_trial >= 0, max_concurrent_trials >= 1, "
                              "retries >= 0")
        if self.scheduler.grace_period < 1 or self.scheduler.reduction_factor < 2:
            raise ConfigError("scheduler: grace_period >= 1 and reduction_factor >= 2")
        if self.scheduler.enabled and self.scheduler.grace_period > self.train.epochs:
            raise ConfigError(f"scheduler.grace_period: {self.scheduler.grace_period} is more than train.epochs "
                              f"({self.train.epochs}); lower it or set scheduler.enabled: false")
        if self.address is not None and not re.fullmatch(r"auto|ray://[^\s:]+:\d+|[^\s:/]+:\d+", self.address):
            raise ConfigError(f"address: {self.address!r} must be 'auto', 'ray://host:port' or 'host:port'")
        for key in ("tracking_uri", "storage"):
            secret = credentials_in(getattr(self, key))
            if secret:  # never echo the URI itself: it holds the secret
                hint = ("set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
                        "in the environment instead" if key == "tracking_uri" and self.tracking_uri.startswith("http")
                        else "give the password through the environment (e.g. PGPASSWORD, AWS_SECRET_ACCESS_KEY) "
                             "or the client's config file instead")
                raise ConfigError(f"{key}: the URI contains {secret}; {hint}")
        if not re.match(r"(sqlite|postgresql|mysql|https?|file|databricks)(\+\w+)?:", self.tracking_uri):
            raise ConfigError(f"tracking_uri: {self.tracking_uri!r} is not an MLflow tracking URI "
                              f"(e.g. sqlite:///mlflow.db or http://host:5000)")
        try:
            check_data_spec(self.data)
        except DataError as exc:
            raise ConfigError(f"data: {exc}") from None
        if self.evaluator != "training":
            table = Path(self.evaluator.removeprefix("table:")).expanduser()
            if not self.evaluator.startswith("table:") or not table.is_file():
                raise ConfigError(f"evaluator: expected 'training' or 'table:PATH' of an existing results table, "
                                  f"got {self.evaluator!r}")
        if self.warm_start is not None and self.warm_start.startswith("table:"):
            if not Path(self.warm_start.removeprefix("table:")).is_file():
                raise ConfigError(f"warm_start: no results table at {self.warm_start.removeprefix('table:')}")

    def resolved_tracking_uri(self) -> str:
        """Relative SQLite paths are made absolute, so Ray workers and resumes hit the same file."""
        if self.tracking_uri.startswith("sqlite:///") and not self.tracking_uri.startswith("sqlite:////"):
            return "sqlite:///" + os.path.abspath(self.tracking_uri[len("sqlite:///"):])
        return self.tracking_uri


_SECRET_QUERY = re.compile(r"[?&;][^=&;]*(token|pass|pwd|secret|key|sig|auth|credential)[^=&;]*=", re.IGNORECASE)


def credentials_in(uri: str) -> str | None:
    """What secret a URI carries, or None: a password (``user:pw@``, ``:token@``), any userinfo on
    http(s) (``token@host``), or a secret-looking query parameter (``?token=``, ``?sig=``...). A
    plain database user name (``postgresql://mlflow@db/...``) is not a secret."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    if userinfo is not None and (":" in userinfo or parts.scheme in ("http", "https")):
        return "credentials before '@'"
    if _SECRET_QUERY.search("?" + parts.query if parts.query else ""):
        return "a secret in its query string"
    return None


def _section(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a mapping, got {type(value).__name__}")
    return dict(value)
