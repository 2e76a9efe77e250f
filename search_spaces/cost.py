"""Static cost of a spec on analog in-memory hardware: parameters, crossbar tiles, MACs.

Computed from the spec alone (no network is built, no training), so the searcher can reject an
infeasible candidate before it reaches a worker. It mirrors ``network.NASSegNet`` layer by
layer; the tests check it against the built network and against the tiles aihwkit creates.

Tile rule (aihwkit's ``MappingParameter.max_input_size/max_output_size``): a ``Conv2d`` with
``cin*k*k`` inputs and ``cout`` outputs is split into ``ceil(in/rows) * ceil(out/cols)``
crossbar tiles; biases stay digital (aihwkit's default ``digital_bias=True``). ``ConvTranspose2d``
and BatchNorm are not mapped by aihwkit: they are digital.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .arch_spec import ArchSpec
from .widths import bottleneck_width, decoder_widths, encoder_widths

DEFAULT_TILE_SIZE = 512


@dataclass(frozen=True)
class Layer:
    """One layer with weights. ``level`` is the resolution level of its output (1/2**level)."""

    kind: str  # "conv" (analog), "convT" (digital), "bn" (digital)
    cin: int
    cout: int
    k: int
    level: int
    bias: bool = False

    @property
    def params(self) -> int:
        if self.kind == "bn":
            return 2 * self.cout
        return self.cin * self.cout * self.k * self.k + (self.cout if self.bias else 0)

    def tiles(self, rows: int, cols: int) -> int:
        if self.kind != "conv":
            return 0
        return math.ceil(self.cin * self.k * self.k / rows) * math.ceil(self.cout / cols)

    @property
    def macs_per_output_px(self) -> float:
        """Multiply-accumulates per pixel of this layer's output."""
        if self.kind == "bn":
            return 0.0
        if self.kind == "convT":  # kernel 2, stride 2: each output pixel sees one input pixel
            return float(self.cin * self.cout)
        return float(self.cin * self.cout * self.k * self.k)


@dataclass(frozen=True)
class HardwareCost:
    """What a spec costs on analog hardware (all counts are exact for the built network)."""

    params: int            # all trainable parameters of the built network
    analog_params: int     # conv weights that live on crossbar tiles
    digital_params: int    # weights of layers that stay digital MVMs (transpose convs)
    peripheral_params: int  # BatchNorm affine and biases (digital periphery)
    tiles: int             # crossbar tiles of the given size
    macs_per_px: float     # MACs per input pixel (H, W divisible by 2**M)
    analog_mac_fraction: float  # share of MACs done on crossbars
    tile_size: int

    @property
    def fully_analog(self) -> bool:
        return self.digital_params == 0

    def as_dict(self) -> dict[str, float]:
        return {"params": self.params, "analog_params": self.analog_params,
                "digital_params": self.digital_params, "peripheral_params": self.peripheral_params,
                "tiles": self.tiles, "macs_per_px": self.macs_per_px,
                "analog_mac_fraction": self.analog_mac_fraction}


def _conv_bn(cin: int, cout: int, k: int, level: int) -> list[Layer]:
    return [Layer("conv", cin, cout, k, level), Layer("bn", cout, cout, 1, level)]


def layers(spec: ArchSpec, in_channels: int = 1, out_channels: int = 1) -> list[Layer]:
    """Every weight layer of the network of ``spec``, in build order."""
    return list(_layers(spec, in_channels, out_channels))


@functools.lru_cache(maxsize=65536)
def _layers(spec: ArchSpec, in_channels: int, out_channels: int) -> tuple[Layer, ...]:
    # cached: the gp sampler costs and encodes ~900 candidate networks per proposal, and a
    # search meets the same specs again and again (signature, constraints, encoding, logging)
    enc = encoder_widths(spec)
    dec = decoder_widths(spec)
    out = _conv_bn(in_channels, enc[0], spec.k0, 0)
    for i, stage in enumerate(spec.stages()):
        lvl = i + 1
        for j in range(stage["R"]):
            cin, cout = (enc[i] if j == 0 else enc[lvl]), enc[lvl]
            for _ in range(stage["B"]):
                if stage["convblock"] == 1:
                    out += _conv_bn(cin, cout, 3, lvl) + _conv_bn(cout, cout, 3, lvl)
                else:
                    mid = bottleneck_width(cout)
                    in_lvl = lvl - 1 if j == 0 else lvl  # the stride sits in the 3x3 conv
                    out += _conv_bn(cin, mid, 1, in_lvl) + _conv_bn(mid, mid, 3, lvl) + _conv_bn(mid, cout, 1, lvl)
            if j == 0:  # stride 2 and new width: projected shortcut
                out += _conv_bn(cin, cout, 1, lvl)
    for i in reversed(range(spec.M)):
        cin = enc[spec.M] if i == spec.M - 1 else dec[i + 1]
        if spec.stages()[i]["up"] == "transpose":
            out.append(Layer("convT", cin, dec[i], 2, i, bias=True))
        else:
            out += _conv_bn(cin, dec[i], 3, i)
        if spec.skip == "concat":
            fused = dec[i] + enc[i]
        else:
            fused = dec[i]
            if enc[i] != dec[i]:
                out += _conv_bn(enc[i], dec[i], 1, i)
        for j in range(spec.dec_blocks):
            out += _conv_bn(fused if j == 0 else dec[i], dec[i], 3, i)
    out.append(Layer("conv", dec[0], out_channels, 1, 0, bias=True))
    return tuple(out)


def network_signature(spec: ArchSpec, in_channels: int = 1, out_channels: int = 1) -> tuple:
    """Hashable description of the built network: every weight layer in build order plus the skip
    fusion. Specs whose ``widenfact``/``dec_width`` round to the same channel widths give the same
    network and hence the same signature (the searcher uses it to avoid training twins)."""
    return (spec.skip, spec.M, _layers(spec, in_channels, out_channels))


@functools.lru_cache(maxsize=65536)  # frozen result; see _layers for why cached
def hardware_cost(spec: ArchSpec, in_channels: int = 1, out_channels: int = 1,
                  tile_size: int = DEFAULT_TILE_SIZE) -> HardwareCost:
    """Parameters, crossbar tiles (``tile_size`` x ``tile_size``) and MACs of ``spec``."""
    ls = _layers(spec, in_channels, out_channels)
    macs = sum(layer.macs_per_output_px / 4 ** layer.level for layer in ls)
    analog_macs = sum(layer.macs_per_output_px / 4 ** layer.level for layer in ls if layer.kind == "conv")
    analog = sum(layer.cin * layer.cout * layer.k ** 2 for layer in ls if layer.kind == "conv")
    digital = sum(layer.params for layer in ls if layer.kind == "convT")
    total = sum(layer.params for layer in ls)
    return HardwareCost(
        params=total, analog_params=analog, digital_params=digital,
        peripheral_params=total - analog - digital,
        tiles=sum(layer.tiles(tile_size, tile_size) for layer in ls),
        macs_per_px=macs, analog_mac_fraction=analog_macs / macs if macs else 0.0, tile_size=tile_size)


@dataclass(frozen=True)
class Constraints:
    """Static limits a candidate must meet before it may be trained (None = no limit)."""

    max_params: int | None = None
    max_tiles: int | None = None
    max_digital_params: int | None = None  # 0 demands a fully analog network
    max_macs_per_px: float | None = None


def violations(cost: HardwareCost, limits: Constraints) -> list[str]:
    """Human-readable reasons why ``cost`` breaks ``limits`` (empty when feasible)."""
    checks = [("params", cost.params, limits.max_params),
              ("tiles", cost.tiles, limits.max_tiles),
              ("digital_params", cost.digital_params, limits.max_digital_params),
              ("macs_per_px", cost.macs_per_px, limits.max_macs_per_px)]
    return [f"{name} {value:g} > max {limit:g}" for name, value, limit in checks
            if limit is not None and value > limit]
