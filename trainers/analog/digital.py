"""The digital reference of an analog network: the function it computes, without the hardware.

What "digital" means in nasseg (DESIGN.md): the analog network's own function with an ideal
periphery. Each former analog layer keeps what training taught it, the learned input range of
every crossbar tile (a clamp of that tile's slice of the input) and the effective weights (tile
weights x mapping scales x learned out-scales, the digital bias), and drops what the hardware
adds: DAC/ADC quantisation and the ADC's output bound, output and weight noise, programming
noise and drift. It is the reference every drift loss is measured against
(``dice_drop_<t> = dice_digital - dice_<t>``) and what ``nasseg predict`` serves without ``--drift``.

aihwkit's ``convert_to_digital`` gives a plain ``Conv2d`` with the folded weights but drops the
input clip; a network trained behind that clip computes another function without it (measured:
digital Dice below analog Dice for 8 of 9 demo trials). No library offers the clipped layer, so
it is written here. The layers hold plain tensors only (no aihwkit objects): a saved digital
network loads with ``weights_only=True`` and runs without aihwkit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _TiledInput(nn.Module):
    """Shared part of the clipped layers: the weights, the bias, and per tile its place and its
    input bound (``inf``: that tile has no learned input range). A row of ``tile_slots`` is
    ``(k0, k1, o0, o1, c0, c1)``: the tile's input columns [k0, k1) of the layer's C*kh*kw axis, its
    output rows [o0, o1) and the input channels [c0, c1) those columns touch."""

    def __init__(self, weight: Tensor, bias: Tensor | None, slots: Tensor, bounds: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.register_buffer("tile_slots", slots.to(torch.int64).clone())
        self.register_buffer("tile_bounds", bounds.detach().to(weight.dtype).clone())

    def _single_tile(self) -> bool:
        return self.tile_slots.shape[0] == 1   # one tile holds the whole layer

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, tiles={self.tile_slots.shape[0]}, bias={self.bias is not None}"


class ClippedConv2d(_TiledInput):
    """``conv2d`` of the input clipped per crossbar tile: ``sum_t conv(clip(x_t, +-r_t), W_t) + b``."""

    def __init__(self, weight: Tensor, bias: Tensor | None, slots: Tensor, bounds: Tensor,
                 stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int]) -> None:
        super().__init__(weight, bias, slots, bounds)
        self.stride, self.padding, self.dilation = tuple(stride), tuple(padding), tuple(dilation)

    def forward(self, x: Tensor) -> Tensor:
        conv = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        if self._single_tile():
            r = self.tile_bounds[0]
            return F.conv2d(torch.clamp(x, -r, r), self.weight, self.bias, **conv)
        out_ch, in_ch, kh, kw = self.weight.shape
        taps = kh * kw
        flat = self.weight.reshape(out_ch, in_ch * taps)
        y = None
        for (k0, k1, o0, o1, c0, c1), r in zip(self.tile_slots.tolist(), self.tile_bounds):
            kernel = flat.new_zeros(o1 - o0, (c1 - c0) * taps)  # the tile's columns, other taps 0
            kernel[:, k0 - c0 * taps: k1 - c0 * taps] = flat[o0:o1, k0:k1]
            part = F.conv2d(torch.clamp(x[:, c0:c1], -r, r), kernel.view(o1 - o0, c1 - c0, kh, kw), None, **conv)
            if y is None:
                y = part.new_zeros(part.shape[0], out_ch, *part.shape[2:])
            y[:, o0:o1] += part
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class ClippedLinear(_TiledInput):
    """``linear`` of the input clipped per crossbar tile."""

    def forward(self, x: Tensor) -> Tensor:
        if self._single_tile():
            r = self.tile_bounds[0]
            return F.linear(torch.clamp(x, -r, r), self.weight, self.bias)
        y = x.new_zeros(*x.shape[:-1], self.weight.shape[0])
        for (k0, k1, o0, o1, _, _), r in zip(self.tile_slots.tolist(), self.tile_bounds):
            y[..., o0:o1] += F.linear(torch.clamp(x[..., k0:k1], -r, r), self.weight[o0:o1, k0:k1])
        return y if self.bias is None else y + self.bias


def _tile_effective(slot: Any) -> tuple[Tensor, Tensor]:
    """A tile's effective weights (rows x its columns) and its input bound, from aihwkit's state:
    tile weights x mapping scales x learned out-scales (no drift-compensation alpha: no drift)."""
    tile = slot.tile
    w = tile.tile.weight.detach()
    scale = torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
    if tile.mapping_scales is not None:
        scale = scale * tile.get_mapping_scales().detach().reshape(-1).to(w)
    if tile.out_scaling_alpha is not None:
        scale = scale * tile.out_scaling_alpha.detach().reshape(-1).to(w)
    r = getattr(tile, "input_range", None)
    enabled = r is not None and tile.rpu_config.pre_post.input_range.enable
    bound = r.detach().abs().reshape(()).to(w) if enabled else torch.tensor(float("inf"), dtype=w.dtype)
    return w * scale.view(-1, 1), bound


def _digital_layer(module: Any) -> nn.Module:
    """The clipped digital layer equivalent to an aihwkit ``AnalogConv2d``/``AnalogLinear``."""
    from aihwkit.nn import AnalogConv2d

    from .fused import slots_of

    conv = isinstance(module, AnalogConv2d)
    taps = module.kernel_size[0] * module.kernel_size[1] if conv else 1
    slots, bias = slots_of(module.analog_module, taps)
    out_ch = max(s.o1 for s in slots)
    in_cols = max(s.k1 for s in slots)
    ref = slots[0].tile.tile.weight
    flat = ref.new_zeros(out_ch, in_cols)
    places, bounds = [], []
    for slot in slots:
        w, bound = _tile_effective(slot)
        flat[slot.o0:slot.o1, slot.k0:slot.k1] = w
        places.append([slot.k0, slot.k1, slot.o0, slot.o1, slot.c0, slot.c1])
        bounds.append(bound.to(ref.device))
    slot_t, bound_t = torch.tensor(places, dtype=torch.int64), torch.stack(bounds)
    bias = bias.detach() if bias is not None else None
    if conv:
        weight = flat.view(out_ch, in_cols // taps, *module.kernel_size)
        return ClippedConv2d(weight, bias, slot_t, bound_t, module.stride, module.padding, module.dilation)
    return ClippedLinear(flat, bias, slot_t, bound_t)


def digital_reference(model: nn.Module) -> nn.Module:
    """A copy of an analog ``model`` in which every analog layer is its :class:`ClippedConv2d` /
    :class:`ClippedLinear`; everything else (BatchNorm, transpose convs) as aihwkit's
    ``convert_to_digital`` leaves it."""
    from aihwkit.nn import AnalogConv2d, AnalogLinear
    from aihwkit.nn.conversion import convert_to_digital

    from .fused import DIGITAL_CONVERSION_SET

    digital = convert_to_digital(model, conversion_set=DIGITAL_CONVERSION_SET)  # a copy, same layer names
    for name, analog in model.named_modules():
        if isinstance(analog, (AnalogConv2d, AnalogLinear)):
            parent_name, _, child = name.rpartition(".")
            setattr(digital.get_submodule(parent_name), child, _digital_layer(analog))
    return digital


def load_digital_reference(network: nn.Module, state: dict[str, Tensor]) -> nn.Module:
    """Rebuild a saved digital reference: ``network`` is the plain network built from the spec
    (``search_spaces.build``), ``state`` the reference's ``state_dict`` (tensors, read with
    ``weights_only=True``). Each Conv2d/Linear whose entry has tile slots becomes the clipped
    layer; then the whole state loads strictly (a mismatched file raises)."""
    for name, layer in list(network.named_modules()):
        if not isinstance(layer, (nn.Conv2d, nn.Linear)) or f"{name}.tile_slots" not in state:
            continue
        bias = state.get(f"{name}.bias")
        args = (state[f"{name}.weight"], bias, state[f"{name}.tile_slots"], state[f"{name}.tile_bounds"])
        clipped = (ClippedConv2d(*args, layer.stride, layer.padding, layer.dilation) if isinstance(layer, nn.Conv2d)
                   else ClippedLinear(*args))
        parent_name, _, child = name.rpartition(".")
        setattr(network.get_submodule(parent_name), child, clipped)
    network.load_state_dict(state)
    return network
