"""Fixed-length numeric encoding of an ArchSpec, the input of the surrogate.

``FEATURE_NAMES`` documents every column. Per stage (1..5, zeros for unused stages): R, B,
convblock, widenfact, whether it upsamples by transpose conv, and its channel width; then the
global fields and the static hardware cost (log-scaled counts), which carry most of the signal
about capacity and analog robustness for a tree model.
"""

from __future__ import annotations

import math

import numpy as np

from .arch_spec import MAX_STAGES, ArchSpec
from .cost import DEFAULT_TILE_SIZE, hardware_cost
from .widths import encoder_widths

_STAGE_FEATURES = ("R", "B", "convblock", "widenfact", "transpose", "width")
FEATURE_NAMES: tuple[str, ...] = (
    ("out_channel0", "k0", "M")
    + tuple(f"{name}{i}" for i in range(1, MAX_STAGES + 1) for name in _STAGE_FEATURES)
    + ("dec_width", "dec_blocks", "skip_add", "depth", "log_params", "log_tiles", "log_macs_per_px",
       "digital_fraction", "analog_mac_fraction")
)


def encode(spec: ArchSpec, in_channels: int = 1, out_channels: int = 1,
           tile_size: int = DEFAULT_TILE_SIZE) -> np.ndarray:
    """The feature vector of ``spec`` (``len(FEATURE_NAMES)`` float64 values): the cost columns are
    those of the network as it is trained (input channels, the output head's channels, tile size)."""
    widths = encoder_widths(spec)
    row: list[float] = [spec.out_channel0, spec.k0, spec.M]
    stages = spec.stages()
    for i in range(MAX_STAGES):
        if i < len(stages):
            s = stages[i]
            row += [s["R"], s["B"], s["convblock"], s["widenfact"], float(s["up"] == "transpose"), widths[i + 1]]
        else:
            row += [0.0] * len(_STAGE_FEATURES)
    cost = hardware_cost(spec, in_channels, out_channels, tile_size)
    depth = 1 + sum(s["R"] * (2 if s["convblock"] == 1 else 3) for s in stages) + spec.M * (1 + spec.dec_blocks)
    row += [spec.dec_width, spec.dec_blocks, float(spec.skip == "add"), depth,
            math.log10(cost.params), math.log10(max(cost.tiles, 1)), math.log10(cost.macs_per_px),
            cost.digital_params / cost.params, cost.analog_mac_fraction]
    return np.asarray(row, dtype=np.float64)


def encode_many(specs: list[ArchSpec], in_channels: int = 1, out_channels: int = 1,
                tile_size: int = DEFAULT_TILE_SIZE) -> np.ndarray:
    """Stack the encodings of ``specs`` into an (n, n_features) matrix."""
    if not specs:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack([encode(s, in_channels, out_channels, tile_size) for s in specs])
