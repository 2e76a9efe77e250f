"""aihwkit's analog conv/linear physics computed without im2col (the "fused" simulator).

aihwkit's ``TorchInferenceTile`` runs a convolution as im2col + matmul and applies its periphery
model (input-range clip, DAC quantisation, output noise, ADC quantisation and bound) element by
element on the unfolded activations, which are ``k*k`` times larger than the feature map: on CPU
a hardware-aware step costs 17-31x a digital one. For the presets nasseg offers, every one of
those ops is either per *input element* (clip and DAC commute with im2col; zero padding maps to
0), per *weight* (the weight modifier) or per *output element of a tile* (output noise, ADC,
bound, scales). So one tile's forward here is: quantise the NCHW input once with that tile's
input range, ``conv2d`` with the (modified) tile weights laid over that tile's slice of the
``C*kh*kw`` axis, output noise + ADC on the tile's partial output, then scale and sum tiles.

What does not commute, and is reproduced exactly:

- the input-range gradient's clip term takes ``min(., 0)`` / ``max(., 0)`` of the gradient of each
  unfolded *copy* of a clipped pixel before summing: it is computed per kernel tap, at the
  clipped pixels only (a few per cent of them);
- the decay gate and the init-from-data statistics of the input range are taken over the unfolded
  tensor (padding zeros and border multiplicity included): reproduced with a multiplicity map
  (how many unfolded copies each pixel has on a tile);
- tiles split the ``C*kh*kw`` axis evenly, not at channel boundaries, so one channel's taps can
  straddle two tiles: each tile's weights are laid into a conv kernel whose other taps are zero.

aihwkit stays the source of truth for all state: the tile weights, input ranges, mapping scales,
learned out-scales, PCM programming / drift / read noise and drift compensation are aihwkit's own
tensors, read at every forward. The layers below are subclasses of ``AnalogConv2d`` /
``AnalogLinear`` with the same parameters and buffers, so ``state_dict``, ``AnalogAdam``'s
post-update step (clip + remap), ``program_analog_weights`` / ``drift_analog_weights`` and
``convert_to_digital`` work unchanged, and a state dict loads into plain aihwkit layers. The tile
weight's gradient flows to aihwkit's own parameter, so the gradient hook aihwkit registers on it
(the ``1/s^2`` mapping-scale correction) applies exactly as it does for aihwkit's forward.

A preset option that cannot be fused exactly (e.g. ``ABS_MAX`` noise management rescales each
unfolded row; input noise is drawn per unfolded copy) makes the layer fall back to aihwkit's own
forward; :func:`unsupported_reason` says why and :func:`log_fallbacks_once` logs it once.

Written by hand because no library offers it: aihwkit-lightning also unfolds on CPU (its speed
is Triton kernels on GPUs), and aihwkit's C++ tiles do not load with the torch we pin.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from aihwkit.nn import AnalogConv2d, AnalogLinear
from aihwkit.simulator.parameters.enums import (
    AnalogMVType,
    BoundManagementType,
    NoiseManagementType,
    WeightModifierType,
    WeightNoiseType,
)
from aihwkit.simulator.tiles.inference_torch import TorchInferenceTile
from torch import Tensor

log = logging.getLogger(__name__)

#: Largest number of (pixel x output channel) products gathered at once for the clip term.
_GATHER_CHUNK = 1 << 22


# -- which presets can be fused -------------------------------------------------------------------
def _step(res: float, bound: float) -> float:
    """aihwkit's ``UniformQuantize`` step for ``res`` states (or a step if ``res <= 1``) over +-bound."""
    res = 1 / res if res > 1.0 else res
    return res * 2 * bound


def unsupported_reason(rpu_config: Any) -> str | None:
    """Why tiles with ``rpu_config`` cannot use the fused simulator, or ``None`` if they can."""
    f = rpu_config.forward
    if hasattr(rpu_config.pre_post, "periph_quant"):
        return "quantised periphery (QuantizedTorchInferenceRPUConfig)"
    if f.is_perfect or f.mv_type == AnalogMVType.IDEAL:
        return "forward.is_perfect"
    if f.mv_type != AnalogMVType.ONE_PASS:
        return f"forward.mv_type {f.mv_type.name}"
    nm_scale = f.nm_thres if f.noise_management == NoiseManagementType.CONSTANT and f.nm_thres > 0 else 1.0
    if f.noise_management not in (NoiseManagementType.NONE, NoiseManagementType.CONSTANT) or nm_scale != 1.0:
        return (f"noise_management {f.noise_management.name} (nm_thres {f.nm_thres}) rescales each unfolded "
                "row of the input")
    if f.bound_management != BoundManagementType.NONE:
        return f"bound_management {f.bound_management.name} repeats the MVM per unfolded row"
    if f.inp_noise > 0:
        return "forward.inp_noise is drawn per unfolded copy of a pixel"
    if f.inp_sto_round or f.out_sto_round:
        return "stochastic rounding"
    if f.inp_asymmetry or f.out_asymmetry or f.out_scale != 1.0:
        return "input/output asymmetry or out_scale"
    if f.w_noise > 0 or f.w_noise_type != WeightNoiseType.NONE:
        return "forward.w_noise"
    if f.inp_res > 0 and f.inp_bound > 0:
        step = _step(f.inp_res, f.inp_bound)
        if round(1.0 / step) * step > f.inp_bound * (1 + 1e-6):   # aihwkit's clamp after the DAC would bind
            return "inp_bound below the top DAC level"
    ir = rpu_config.pre_post.input_range
    if not ir.enable:
        return "input range disabled"
    if ir.manage_output_clipping:
        return "input_range.manage_output_clipping"
    m = rpu_config.modifier
    if m.type not in (WeightModifierType.NONE, WeightModifierType.COPY, WeightModifierType.ADD_NORMAL):
        return f"weight modifier {m.type.name}"
    if m.per_batch_sample:
        return "weight modifier per batch sample"
    return None


@dataclass(frozen=True)
class Periphery:
    """The numbers of one tile's periphery model, read from its ``rpu_config`` at each forward."""

    inp_step: float | None
    out_step: float | None
    out_bound: float
    out_noise: float
    modifier_std: float          # 0: no weight modifier
    modifier_wmax: float | None  # None: relative to the tile's actual max |w|
    decay: float
    min_pct: float
    grad_relative: bool
    grad_scale: float
    init_from_data: int
    init_std_alpha: float
    drift_compensation: bool

    @classmethod
    def of(cls, rpu_config: Any) -> Periphery:
        f, ir, m = rpu_config.forward, rpu_config.pre_post.input_range, rpu_config.modifier
        add = m.type == WeightModifierType.ADD_NORMAL and m.std_dev > 0
        return cls(
            inp_step=_step(f.inp_res, f.inp_bound) if f.inp_res > 0 else None,
            out_step=_step(f.out_res, f.out_bound) if f.out_res > 0 else None,
            out_bound=f.out_bound if f.out_bound > 0 else math.inf,
            out_noise=f.out_noise,
            modifier_std=m.std_dev if add else 0.0,
            modifier_wmax=None if m.rel_to_actual_wmax else m.assumed_wmax,
            decay=ir.decay, min_pct=ir.input_min_percentage, grad_relative=ir.gradient_relative,
            grad_scale=ir.gradient_scale, init_from_data=ir.init_from_data, init_std_alpha=ir.init_std_alpha,
            drift_compensation=getattr(rpu_config, "drift_compensation", None) is not None)


# -- geometry: where each tile sits in the layer ---------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """A conv layer's kernel geometry (a linear layer is a 1x1 conv on a 1x1 image)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]


LINEAR = Geometry((1, 1), (1, 1), (0, 0), (1, 1))


@dataclass(frozen=True)
class Slot:
    """One tile: columns ``[k0, k1)`` of the layer's ``C*kh*kw`` input axis and output rows
    ``[o0, o1)``; it touches input channels ``[c0, c1)``."""

    tile: TorchInferenceTile
    k0: int
    k1: int
    o0: int
    o1: int
    c0: int
    c1: int


def slots_of(analog_module: Any, taps: int) -> tuple[list[Slot], Tensor | None]:
    """The tiles of an aihwkit layer's ``analog_module`` with their places, and the digital bias."""
    if isinstance(analog_module, TorchInferenceTile):
        t = analog_module
        bias = t.bias if t.digital_bias else None
        return [Slot(t, 0, t.in_size, 0, t.out_size, 0, -(-t.in_size // taps))], bias
    slots, k0 = [], 0
    for in_size, row in zip(analog_module.in_sizes, analog_module.array):
        o0 = 0
        for out_size, tile in zip(analog_module.out_sizes, row):
            slots.append(Slot(tile, k0, k0 + in_size, o0, o0 + out_size, k0 // taps, -(-(k0 + in_size) // taps)))
            o0 += out_size
        k0 += in_size
    return slots, analog_module.bias


_MULTIPLICITY: dict[tuple, Tensor] = {}


def multiplicity(geo: Geometry, slot: Slot, height: int, width: int, device: torch.device) -> Tensor:
    """How many unfolded copies each pixel of the slot's channels has on the tile: (C_slot, H, W).

    Built with ``F.fold`` of a ones matrix restricted to the tile's columns (cached per shape)."""
    key = (geo, slot.k0, slot.k1, slot.c0, slot.c1, height, width, str(device))
    if key not in _MULTIPLICITY:
        if len(_MULTIPLICITY) > 512:
            _MULTIPLICITY.clear()
        cols = torch.zeros((slot.c1 - slot.c0) * geo.taps, dtype=torch.float32, device=device)
        cols[slot.k0 - slot.c0 * geo.taps: slot.k1 - slot.c0 * geo.taps] = 1.0
        ho, wo = out_size(geo, height, width)
        ones = cols.view(1, -1, 1).expand(1, cols.numel(), ho * wo)
        m = F.fold(ones, (height, width), geo.kernel, dilation=geo.dilation, padding=geo.padding, stride=geo.stride)
        _MULTIPLICITY[key] = m[0]
    return _MULTIPLICITY[key]


def out_size(geo: Geometry, height: int, width: int) -> tuple[int, int]:
    return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in
                 zip((height, width), geo.padding, geo.dilation, geo.kernel, geo.stride))  # type: ignore[return-value]


def conv_kernel(w: Tensor, geo: Geometry, slot: Slot) -> Tensor:
    """A tile's ``(O_t, K_t)`` weights laid into a conv kernel over its channels (other taps 0)."""
    width = (slot.c1 - slot.c0) * geo.taps
    start = slot.k0 - slot.c0 * geo.taps
    if start == 0 and slot.k1 - slot.k0 == width:
        return w.reshape(w.shape[0], slot.c1 - slot.c0, *geo.kernel)
    full = w.new_zeros(w.shape[0], width)
    full[:, start: start + w.shape[1]] = w
    return full.view(w.shape[0], slot.c1 - slot.c0, *geo.kernel)


# -- the physics of one tile ----------------------------------------------------------------------
@torch.no_grad()
def update_input_range_from_data(x: Tensor, geo: Geometry, slot: Slot, per: Periphery, ops: type) -> None:
    """aihwkit's init-from-data of the input range (first ``init_from_data`` training batches): the
    running mean of ``init_std_alpha * std`` of the *unfolded* tile input, padding zeros included."""
    tile = slot.tile
    idx = tile.input_range_update_idx
    if not idx < per.init_from_data:
        return
    xs = x[:, slot.c0: slot.c1]
    m = multiplicity(geo, slot, x.shape[2], x.shape[3], x.device)
    ho, wo = out_size(geo, x.shape[2], x.shape[3])
    n = x.shape[0] * ho * wo * (slot.k1 - slot.k0)
    s1, s2 = ops.moments(xs, m)
    std = torch.tensor(math.sqrt(max((s2 - s1 * s1 / n) / (n - 1), 0.0)), dtype=torch.float32, device=x.device)
    r = tile.input_range
    if std > 0.0:
        r.data = (r.data * idx + per.init_std_alpha * std) / (idx + 1)
        idx.data += 1
    r.data = r.data.abs()


def modified_weight(w: Tensor, per: Periphery, training: bool) -> Tensor:
    """The tile weights used in this forward: with the weight modifier's noise while training."""
    if not training or per.modifier_std <= 0:
        return w.detach()
    wmax = w.detach().abs().max() if per.modifier_wmax is None else per.modifier_wmax
    return w.detach() + per.modifier_std * wmax * torch.randn_like(w)


def output_noise(tile: TorchInferenceTile, per: Periphery, out_channels: int, like: Tensor) -> tuple[bool, Tensor]:
    """Whether the tile adds output noise, and its std per output channel (aihwkit's
    ``out_noise_values`` when it has them, else ``out_noise``)."""
    values = tile.tile.out_noise_values
    if values is not None:
        return True, values.detach().to(like.dtype)
    return per.out_noise > 0, torch.full((out_channels,), per.out_noise, dtype=like.dtype, device=like.device)


def out_scale(tile: TorchInferenceTile, r: Tensor, training: bool, per: Periphery) -> Tensor:
    """Per output channel factor applied digitally after the ADC: input range x mapping scale x
    learned out-scale (x drift-compensation alpha in eval)."""
    scale = r * tile.get_mapping_scales() if tile.mapping_scales is not None else r.expand(tile.out_size)
    if not training and per.drift_compensation:
        scale = scale * tile.alpha
    if tile.out_scaling_alpha is not None:
        scale = scale * tile.out_scaling_alpha
    return scale.detach()


class TorchPeriphery:
    """The periphery in plain torch ops: any device (the path used on CUDA), and the reference
    the numba kernels are tested against. Same interface as :class:`NumbaPeriphery`."""

    @staticmethod
    def moments(xs: Tensor, mult: Tensor) -> tuple[float, float]:
        """sum(x * m) and sum(x^2 * m): moments of the unfolded input from the folded one."""
        xm = xs * mult
        return float(xm.sum(dtype=torch.float64)), float((xm * xs).sum(dtype=torch.float64))

    @staticmethod
    def quantise_input(xs: Tensor, rf: float, r: Tensor, step: float | None) -> tuple[Tensor, Tensor]:
        """DAC input: clip to +-r, normalise by r, quantise (aihwkit's ops in aihwkit's order).
        Returns it twice: for the conv, and in the form the backward keeps (here the same)."""
        xq = torch.clamp(xs, -rf, rf)
        xq.div_(r)
        if step is not None:
            xq.div_(step).round_().mul_(step)
        return xq, xq

    @staticmethod
    def unpack_input(kept: Tensor, step: float | None) -> Tensor:
        return kept

    @staticmethod
    def adc_scale(a: Tensor, noisy: bool, noise_std: Tensor, step: float | None, bound: float,
                  scale: Tensor, bias: Tensor, y: Tensor, accumulate: bool) -> Tensor:
        """Output noise and ADC on ``a`` (in place, left unclipped); then
        ``y (+)= clip(a, +-bound) * scale + bias``. Returns what the backward keeps of ``a``."""
        if noisy:
            a.add_(torch.randn_like(a) * noise_std.view(1, -1, 1, 1))
        if step is not None:
            a.div_(step).round_().mul_(step)
        part = torch.clamp(a, -bound, bound) if not math.isinf(bound) else a
        part = part * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)   # two roundings, as aihwkit
        if accumulate:
            y += part
        else:
            y.copy_(part)
        return a

    @staticmethod
    def out_backward(g: Tensor, a: Tensor, step: float | None, scale: Tensor,
                     bound: float) -> tuple[Tensor, Tensor, Tensor]:
        """Gradient at the ADC input (0 where the bound clipped), the same for the clip term
        (any layout: here the same tensor) and sum(g * clip(a)) per channel."""
        p = torch.einsum("nohw,nohw->o", g, torch.clamp(a, -bound, bound))
        ga = g * scale.view(1, -1, 1, 1)
        if not math.isinf(bound):
            ga.masked_fill_(a.abs() > bound, 0.0)
        return ga, ga, p

    @staticmethod
    def input_backward(xs: Tensor, d_xq: Tensor, rf: float, r: Tensor, ga: Tensor, kernel: Tensor, mult: Tensor,
                       geo: Geometry, slot: Slot, dx: Tensor | None, accumulate: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Backward through clip + normalise: writes (or adds) the input gradient into ``dx`` and
        returns ``sum(d_xq * clip(x))``, the clip term and the unfolded copies of clipped pixels."""
        idx = (xs.abs() >= rf).nonzero(as_tuple=True)
        xv = xs[idx]
        dot = (d_xq * xs).sum() - (d_xq[idx] * (xv - xv.clamp(-rf, rf))).sum()
        if dx is not None:
            d_in = d_xq / r
            strict = xv.abs() > rf
            d_in[tuple(i[strict] for i in idx)] = 0.0
            if accumulate:
                dx += d_in
            else:
                dx.copy_(d_in)
        clip = clip_term(idx, xv >= rf, geo, slot, ga, kernel, r)
        outside = mult[idx[1], idx[2], idx[3]].sum()
        return dot, clip, outside


def clip_term(idx: tuple[Tensor, ...], upper: Tensor, geo: Geometry, slot: Slot, ga: Tensor, kernel: Tensor,
              r: Tensor) -> Tensor:
    """aihwkit's input-range clip gradient: over every unfolded copy of a clipped pixel,
    ``sum(min(g, 0))`` where it clipped at +r minus ``sum(max(g, 0))`` where at -r, ``g`` being
    that copy's input gradient (the output gradient at the copy's output pixel . the weights of
    the copy's kernel tap). Gathered for the clipped pixels only, all taps at once, in chunks."""
    n_i, c_i, h_i, w_i = idx
    total = torch.zeros((), dtype=ga.dtype, device=ga.device)
    if n_i.numel() == 0:
        return total
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geo.kernel, geo.stride, geo.padding, geo.dilation
    n_out, ho, wo = ga.shape[1], ga.shape[2], ga.shape[3]
    rows = ga.permute(0, 2, 3, 1).reshape(-1, n_out)                     # (N*Ho*Wo, O), channels last
    krows = kernel.permute(1, 2, 3, 0).reshape(-1, n_out)                 # (C_slot*taps, O)
    ki = torch.arange(kh, device=ga.device).repeat_interleave(kw)
    kj = torch.arange(kw, device=ga.device).repeat(kh)
    tap = ki * kw + kj
    chunk = max(1, _GATHER_CHUNK // (n_out * geo.taps))
    for start in range(0, n_i.numel(), chunk):
        sl = slice(start, start + chunk)
        c = c_i[sl, None]
        col = (c + slot.c0) * geo.taps + tap                                # (m, taps) layer column
        th = h_i[sl, None] + ph - ki * dh
        tw = w_i[sl, None] + pw - kj * dw
        oh, ow = th.div(sh, rounding_mode="floor"), tw.div(sw, rounding_mode="floor")
        ok = (col >= slot.k0) & (col < slot.k1) & (th >= 0) & (tw >= 0) & (oh < ho) & (ow < wo)
        if sh > 1 or sw > 1:
            ok &= (th % sh == 0) & (tw % sw == 0)
        pix, t = ok.nonzero(as_tuple=True)
        row = (n_i[sl][pix] * ho + oh[pix, t]) * wo + ow[pix, t]
        g = (rows.index_select(0, row) * krows.index_select(0, c[pix, 0] * geo.taps + tap[t])).sum(1) / r
        up = upper[sl][pix]
        total = total + g[up].clamp(max=0.0).sum() - g[~up].clamp(min=0.0).sum()
    return total


class NumbaPeriphery:
    """The periphery in single-pass numba kernels (CPU, float32): same results as
    :class:`TorchPeriphery`, a fraction of the memory passes."""

    @staticmethod
    def moments(xs: Tensor, mult: Tensor) -> tuple[float, float]:
        return kernels().weighted_moments(xs, mult)

    # The backward keeps the DAC input as int8 levels and the ADC output as int16 levels (exact:
    # value = level * step), a quarter and a half of the float32 memory.
    @staticmethod
    def quantise_input(xs: Tensor, rf: float, r: Tensor, step: float | None) -> tuple[Tensor, Tensor]:
        as_levels = step is not None and round(1.0 / step) <= 127
        xq, levels = kernels().quantise_input(xs, rf, float(r), step, as_levels)
        return xq, (levels if as_levels else xq)

    @staticmethod
    def unpack_input(kept: Tensor, step: float | None) -> Tensor:
        return kept.to(torch.float32).mul_(step) if kept.dtype == torch.int8 else kept

    @staticmethod
    def adc_scale(a: Tensor, noisy: bool, noise_std: Tensor, step: float | None, bound: float,
                  scale: Tensor, bias: Tensor, y: Tensor, accumulate: bool) -> Tensor:
        """Same as the torch path; the normal draws come from a counter-based ziggurat seeded
        from torch's generator (same distribution, not the same numbers as ``randn``)."""
        as_levels = step is not None and bound / step < 32000
        levels = kernels().adc_scale(a, noisy, noise_std, step, bound, scale, bias, y, accumulate, as_levels)
        return levels if as_levels else a

    @staticmethod
    def out_backward(g: Tensor, a: Tensor, step: float | None, scale: Tensor,
                     bound: float) -> tuple[Tensor, Tensor, Tensor]:
        """(ga in NCHW, ga in NHWC for the clip term's row gathers, sum(g * clip(a)) per channel)."""
        return kernels().out_backward(g, a, step, scale, bound)

    @staticmethod
    def input_backward(xs: Tensor, d_xq: Tensor, rf: float, r: Tensor, ga_cl: Tensor, kernel: Tensor, mult: Tensor,
                       geo: Geometry, slot: Slot, dx: Tensor | None, accumulate: bool) -> tuple[Tensor, Tensor, Tensor]:
        flat = (*geo.kernel, *geo.stride, *geo.padding, *geo.dilation)
        dot, clip, outside = kernels().input_backward(xs, d_xq, rf, float(r), ga_cl, kernel, mult, flat,
                                                      (slot.c0, slot.k0, slot.k1), dx, accumulate)
        return torch.tensor(dot), torch.tensor(clip), torch.tensor(outside)


def kernels() -> Any:
    """The numba kernel module, imported (and compiled, or loaded from numba's cache) on first use:
    importing numba costs seconds, which a CUDA or aihwkit-only process need not pay."""
    return importlib.import_module(f"{__package__}.kernels")


def numba_available() -> bool:
    try:
        kernels()
    except ImportError:
        return False
    return True


def periphery_for(x: Tensor, choice: str) -> type:
    """``TorchPeriphery`` or ``NumbaPeriphery`` for an input tensor: ``choice`` is ``auto`` (numba
    on CPU float32 when installed), ``torch`` or ``numba``."""
    if choice == "torch":
        return TorchPeriphery
    cpu = x.device.type == "cpu" and x.dtype == torch.float32
    if choice == "numba" and not cpu:
        raise ValueError("the numba periphery runs on CPU float32 tensors only")
    return NumbaPeriphery if cpu and numba_available() else TorchPeriphery


# -- autograd ----------------------------------------------------------------------------------
@dataclass
class _Saved:
    a: Tensor          # ADC output, quantised, before the bound (or its int16 levels)
    xq: Tensor         # DAC input (or its int8 levels)
    kernel: Tensor     # tile weights (with this forward's modifier noise) as a conv kernel
    scale: Tensor      # per output channel scale
    rf: float          # input range used


def forward_tiles(x: Tensor, geo: Geometry, slots: list[Slot], pers: list[Periphery], bias: Tensor | None,
                  ops: type, training: bool) -> tuple[Tensor, list[_Saved]]:
    """All tiles of a layer: DAC, conv per tile, noise + ADC, scale, sum. Returns the output and
    what the backward needs per tile."""
    n, _, h, w = x.shape
    ho, wo = out_size(geo, h, w)
    y = x.new_empty(n, max(s.o1 for s in slots), ho, wo)
    saved = []
    for slot, per in zip(slots, pers):
        tile = slot.tile
        r = tile.input_range.detach()
        rf = abs(r.item())
        xq, xq_kept = ops.quantise_input(x[:, slot.c0: slot.c1], rf, r, per.inp_step)
        kernel = conv_kernel(modified_weight(tile.tile.weight, per, training), geo, slot)
        a = F.conv2d(xq, kernel, None, geo.stride, geo.padding, geo.dilation)
        noisy, noise_std = output_noise(tile, per, a.shape[1], a)
        scale = out_scale(tile, r, training, per)
        first = slot.k0 == 0
        b = bias.detach()[slot.o0: slot.o1] if bias is not None and first else torch.zeros_like(scale)
        a_kept = ops.adc_scale(a, noisy, noise_std, per.out_step, per.out_bound, scale, b, y[:, slot.o0: slot.o1],
                               accumulate=not first)
        saved.append(_Saved(a_kept, xq_kept, kernel, scale, rf))
    return y, saved


class _FusedTiles(torch.autograd.Function):
    """Forward and backward of all tiles of one layer (weights, input ranges, out-scales and bias
    are inputs so autograd delivers their gradients to aihwkit's own parameters)."""

    @staticmethod
    def forward(ctx, x: Tensor, geo: Geometry, slots: list[Slot], pers: list[Periphery], ops: type,
                bias: Tensor | None, *params: Tensor) -> Tensor:  # params: (weight, input_range, out_scaling_alpha) per slot
        y, saved = forward_tiles(x, geo, slots, pers, bias, ops, training=True)
        ctx.geo, ctx.slots, ctx.pers, ctx.ops, ctx.saved, ctx.has_bias = geo, slots, pers, ops, saved, bias is not None
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        (x,) = ctx.saved_tensors
        geo, slots, pers, ops = ctx.geo, ctx.slots, ctx.pers, ctx.ops
        gy = gy.contiguous()
        whole = len(slots) == 1
        dx = (torch.empty_like(x) if whole else torch.zeros_like(x)) if ctx.needs_input_grad[0] else None
        ho, wo = gy.shape[2], gy.shape[3]
        grads: list[Tensor | None] = []
        for slot, per, sv in zip(slots, pers, ctx.saved):
            tile = slot.tile
            r = tile.input_range.detach()
            ga, ga_for_clip, p = ops.out_backward(gy[:, slot.o0: slot.o1], sv.a, per.out_step, sv.scale,
                                                  per.out_bound)
            d_xq, d_kernel, _ = torch.ops.aten.convolution_backward(
                ga, ops.unpack_input(sv.xq, per.inp_step), sv.kernel, None, list(geo.stride), list(geo.padding), list(geo.dilation), False, [0, 0], 1,
                [True, True, False])
            start = slot.k0 - slot.c0 * geo.taps
            d_w = d_kernel.reshape(d_kernel.shape[0], -1)[:, start: start + slot.k1 - slot.k0]
            mult = multiplicity(geo, slot, x.shape[2], x.shape[3], x.device)
            dot, clip, outside = ops.input_backward(
                x[:, slot.c0: slot.c1], d_xq, sv.rf, r, ga_for_clip, sv.kernel, mult, geo, slot,
                None if dx is None else dx[:, slot.c0: slot.c1], accumulate=not whole)
            mapping = tile.get_mapping_scales() if tile.mapping_scales is not None else torch.ones_like(p)
            alpha = tile.out_scaling_alpha.detach() if tile.out_scaling_alpha is not None else None
            d_alpha = p * (r * mapping) if alpha is not None else None
            # input range: through the output scale, through clip(x)/r, the clip term, the decay gate
            d_r = (p * mapping * (alpha if alpha is not None else 1.0)).sum().view(1)
            d_r = d_r - dot.to(r) / (r * r)
            ir = torch.zeros_like(r) + clip.to(r)
            if per.grad_relative:
                ir = ir * r * per.grad_scale
            if per.decay > 0:
                total = x.shape[0] * ho * wo * (slot.k1 - slot.k0)
                ir = ir + per.decay * r * ((total - outside.to(r)) / total > per.min_pct)
            d_r = d_r + ir
            grads += [d_w, d_r if tile.input_range.requires_grad else None, d_alpha]
        d_bias = gy.sum((0, 2, 3)) if ctx.has_bias else None
        ctx.saved = None
        return (dx, None, None, None, None, d_bias, *grads)


# -- layers --------------------------------------------------------------------------------------
def _fused_forward(x: Tensor, geo: Geometry, slots: list[Slot], bias: Tensor | None, training: bool,
                   choice: str) -> Tensor:
    pers = [Periphery.of(s.tile.rpu_config) for s in slots]
    ops = periphery_for(x, choice)
    x = x.contiguous()
    if training:
        for slot, per in zip(slots, pers):
            update_input_range_from_data(x, geo, slot, per, ops)
    if training and torch.is_grad_enabled():
        params = [t for s in slots for t in (s.tile.tile.weight, s.tile.input_range, s.tile.out_scaling_alpha)]
        return _FusedTiles.apply(x, geo, slots, pers, ops, bias, *params)
    with torch.no_grad():
        y, _ = forward_tiles(x, geo, slots, pers, bias, ops, training)
    return y


def _why_not(slots: list[Slot]) -> str | None:
    """Why these tiles cannot run fused (their layer then runs aihwkit's forward), or None."""
    for slot in slots:
        if type(slot.tile) is not TorchInferenceTile:
            return f"tile class {type(slot.tile).__name__}"
        reason = unsupported_reason(slot.tile.rpu_config)
        if reason:
            return reason
    return None


class FusedAnalogConv2d(AnalogConv2d):
    """``AnalogConv2d`` whose forward is the fused simulator (same parameters, buffers, state).

    ``periphery``: ``"auto"`` (numba kernels on CPU when installed, torch ops elsewhere),
    ``"torch"`` or ``"numba"``; both compute the same numbers."""

    periphery = "auto"

    def forward(self, x_input: Tensor) -> Tensor:
        geo = Geometry(tuple(self.kernel_size), tuple(self.stride), tuple(self.padding), tuple(self.dilation))
        slots, bias = slots_of(self.analog_module, geo.taps)
        if x_input.dim() != 4 or _why_not(slots):
            return super().forward(x_input)
        return _fused_forward(x_input, geo, slots, bias, self.training, self.periphery)


class FusedAnalogLinear(AnalogLinear):
    """``AnalogLinear`` whose forward is the fused simulator (a 1x1 conv on a 1x1 image)."""

    periphery = "auto"

    def forward(self, x_input: Tensor) -> Tensor:
        slots, bias = slots_of(self.analog_module, LINEAR.taps)
        if _why_not(slots):
            return super().forward(x_input)
        lead = x_input.shape[:-1]
        y = _fused_forward(x_input.reshape(-1, x_input.shape[-1], 1, 1), LINEAR, slots, bias, self.training,
                           self.periphery)
        return y.reshape(*lead, y.shape[1])


FUSED_CONVERSION_MAP: dict[type, type] = {torch.nn.Conv2d: FusedAnalogConv2d, torch.nn.Linear: FusedAnalogLinear}
DIGITAL_CONVERSION_SET: set[type] = {AnalogConv2d, AnalogLinear, FusedAnalogConv2d, FusedAnalogLinear}


def fused_layers(model: torch.nn.Module) -> tuple[int, int, dict[str, str]]:
    """(fused layers, analog layers, {layer name: reason it falls back to aihwkit})."""
    fused, total, reasons = 0, 0, {}
    for name, module in model.named_modules():
        if isinstance(module, (AnalogConv2d, AnalogLinear)):
            total += 1
            why = _why_not(slots_of(module.analog_module, 1)[0]) \
                if isinstance(module, (FusedAnalogConv2d, FusedAnalogLinear)) else "converted with simulator 'aihwkit'"
            if why:
                reasons[name] = why
            else:
                fused += 1
    return fused, total, reasons


def log_fallbacks_once(model: torch.nn.Module, say: Callable[[str], None] = log.warning) -> None:
    """Say once per process and reason which layers fall back to aihwkit's own forward."""
    from ray.util import log_once

    fused, total, reasons = fused_layers(model)
    for reason in sorted(set(reasons.values())):
        if not log_once(f"nasseg-fused-fallback: {reason}"):
            continue
        names = [n for n, r in reasons.items() if r == reason]
        say(f"analog simulator: {len(names)} of {total} layers use aihwkit's unfolded forward (slower), "
            f"because of {reason}: e.g. {names[0]}")
