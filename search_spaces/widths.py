"""Channel widths of every level of a spec: the one rule shared by the builder and the cost model."""

from __future__ import annotations

from .arch_spec import ArchSpec

CHANNEL_MULTIPLE = 4


def round_channels(x: float) -> int:
    """Round to the nearest multiple of 4 (at least 4): crossbar-friendly, and stable."""
    return max(CHANNEL_MULTIPLE, int(round(x / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE)


def encoder_widths(spec: ArchSpec) -> list[int]:
    """Channels of the stem (level 0) and of each stage 1..M.

    AnalogNAS-style widening: each stage doubles the width scaled by its ``widenfact``
    (0.5 keeps the width, 0.8 grows it 1.6x), rounded to a multiple of 4.
    """
    widths = [spec.out_channel0]
    for stage in spec.stages():
        widths.append(round_channels(widths[-1] * 2 * stage["widenfact"]))
    return widths


def decoder_widths(spec: ArchSpec) -> list[int]:
    """Channels of the decoder output at levels 0..M-1 (``dec_width`` times the encoder's)."""
    return [round_channels(w * spec.dec_width) for w in encoder_widths(spec)[:-1]]


def bottleneck_width(out_channels: int) -> int:
    """Inner width of a bottleneck block (a quarter of its output, as in ResNet)."""
    return round_channels(out_channels / 4)
