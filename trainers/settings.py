"""The settings of one training run and the names of its scores, importable without torch.

The config layer and the CLI validate a whole search config with these before anything heavy
(torch, MONAI, aihwkit) is imported: a mistake is refused in about a second, and a Ray worker that
only replays a results table never loads torch. ``trainers.train`` and ``trainers.analog``
re-export what used to live there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trainers.typed import STRICT, from_mapping

#: output channels of each segmentation head (``trainers.heads`` builds its heads from this)
HEAD_CHANNELS: dict[str, int] = {"binary": 1, "contour": 3, "distance": 2}


def head_channels(name: str) -> int:
    if name not in HEAD_CHANNELS:
        raise ValueError(f"train.head: expected one of {', '.join(HEAD_CHANNELS)}, got {name!r}")
    return HEAD_CHANNELS[name]


SIMULATORS = ("fused", "aihwkit")


@dataclass(frozen=True)
class HWAConfig:
    """Hardware-aware training preset, after aihwkit's ``StandardHWATrainingPreset``.

    Differences from that preset, forced by the torch tile: no ``forward.w_noise``/``ir_drop``;
    training weight noise comes from ``modifier_std`` (additive Gaussian relative to the max
    weight, as in Rasch et al. 2023). Tiles are square (``tile_size`` rows and columns) so the
    static cost model counts them exactly.
    """

    __pydantic_config__ = STRICT  # read from mappings by trainers.typed.from_mapping

    tile_size: int = 512
    modifier_std: float = 0.05      # weight noise during training (relative to max |w|)
    out_noise: float = 0.04         # additive output noise (ADC/read)
    inp_res: float = 254.0          # DAC steps (8 bit)
    out_res: float = 254.0          # ADC steps (8 bit)
    out_bound: float = 10.0         # output clipping
    clip_weights: float = 1.0       # fixed weight clip after mapping
    learn_input_range: bool = True  # learned DAC input range (init from data)
    g_max: float = 25.0             # PCM max conductance (uS) for the noise model
    drift_compensation: bool = True  # global drift compensation at read-out
    simulator: str = "fused"        # "fused" (same physics, no im2col) or "aihwkit" (its own forward)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.simulator not in SIMULATORS:
            raise ValueError(f"hwa.simulator: expected one of {SIMULATORS}, got {self.simulator!r}")
        if self.tile_size < 16:
            raise ValueError(f"hwa.tile_size: {self.tile_size} is too small (>= 16)")
        for name in ("modifier_std", "out_noise", "out_bound", "clip_weights", "g_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"hwa.{name}: must be >= 0, got {getattr(self, name)}")


#: 1 s, 1 h, 1 day, 30 days, 1 year after programming.
DRIFT_TIMES: tuple[float, ...] = (1.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)
MODES = ("analog", "digital")
LR_SCHEDULES = ("constant", "cosine")
#: ``<metric>_worst`` is the lowest mean over the drift times from this one on (the hardware's
#: service life; the first second after programming is not a time anyone reads the chip at)
WORST_FROM_S = 3600.0
#: the quality scores of :meth:`Trainer.evaluate`, each measured at every drift time
SCORES = ("dice", "iou", "pq", "f1_inst", "ap50", "map_dsb")


def time_label(seconds: float) -> str:
    """Short label of a drift time: 1 -> '1s', 3600 -> '1h', 2592000 -> '30d', 31536000 -> '1y'."""
    for unit, size in (("y", 365 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def worst_times(drift_times: tuple[float, ...]) -> tuple[float, ...]:
    """The drift times ``<metric>_worst`` takes its minimum over (>= :data:`WORST_FROM_S`)."""
    return tuple(t for t in drift_times if t >= WORST_FROM_S)


def split_objective(name: str) -> tuple[str, str] | None:
    """``"map_dsb_1d"`` -> ("map_dsb", "1d"), ``"dice_worst"`` -> ("dice", "worst"); None for a
    name that is not a quality score at a time (``tiles``)."""
    for metric in SCORES:
        if name.startswith(metric + "_"):
            return metric, name[len(metric) + 1:]
    return None


def score_time_problem(name: str, drift_times: tuple[float, ...]) -> str | None:
    """Why the score ``name`` (``<score>_<time>``, ``<score>_worst``, ``<score>_digital``) cannot be
    measured with these drift times, as the end of a sentence naming it; None if it can."""
    parts = split_objective(name)
    if parts is None:
        return f"is not one of {', '.join(SCORES)} at a drift time, 'worst' or 'digital'"
    label = parts[1]
    if label == "digital":
        return None
    if label == "worst":
        return None if worst_times(drift_times) else \
            "is the lowest score over the drift times >= 1h, but train.drift_times has none"
    labels = [time_label(t) for t in drift_times]
    return None if label in labels else f"needs drift time {label}, but train.drift_times gives {labels}"


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the spec and the data."""

    __pydantic_config__ = STRICT  # read from mappings by trainers.typed.from_mapping

    mode: str = "analog"
    epochs: int = 3
    steps_per_epoch: int = 20
    batch_size: int = 8
    patch_size: int = 64
    lr: float = 2e-3
    lr_schedule: str = "constant"      # constant | cosine (annealed to 0 over epochs x steps_per_epoch)
    weight_decay: float = 0.0
    seed: int = 0
    num_threads: int = 1
    device: str = "auto"
    channels: int = 1
    threshold: float = 0.5             # foreground probability until post-processing is tuned
    head: str = "binary"               # binary | contour | distance (trainers.heads)
    tune_postprocess: bool = True      # tune thresholds/seeds on validation after training
    drift_times: tuple[float, ...] = DRIFT_TIMES
    drift_reps: int = 3
    # measured after every epoch besides the undrifted scores, as ``val_<name>``: e.g. "dice_1d"
    # (one seeded programming draw, drifted 1 day), "map_dsb_worst", "dice_digital"; "" for none
    epoch_objective: str = ""
    hwa: HWAConfig = field(default_factory=HWAConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"train.mode: expected one of {MODES}, got {self.mode!r}")
        for name in ("epochs", "steps_per_epoch", "batch_size", "num_threads", "drift_reps"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"train.seed: must be >= 0, got {self.seed}")
        if self.weight_decay < 0 or not 0 < self.threshold < 1:
            raise ValueError(f"train.weight_decay must be >= 0 and train.threshold in (0, 1), got "
                             f"{self.weight_decay} and {self.threshold}")
        if self.patch_size < 16 or self.patch_size % 8:
            raise ValueError(f"train.patch_size: must be a multiple of 8 and >= 16, got {self.patch_size}")
        if not self.lr > 0:
            raise ValueError(f"train.lr: must be > 0, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"train.lr_schedule: expected one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if not self.drift_times or any(t <= 0 for t in self.drift_times):
            raise ValueError(f"train.drift_times: need positive seconds, got {self.drift_times}")
        head_channels(self.head)  # ValueError naming train.head and the choices
        problem = score_time_problem(self.epoch_objective, self.drift_times) if self.epoch_objective else None
        if problem:
            raise ValueError(f"train.epoch_objective: {self.epoch_objective!r} {problem}")
        if self.channels not in (1, 3):
            raise ValueError(f"train.channels: must be 1 or 3, got {self.channels}")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drift_times"] = list(self.drift_times)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From a mapping (YAML, JSON, MLflow params): every key type-checked, ValueError naming it."""
        return from_mapping(cls, data, "train")
