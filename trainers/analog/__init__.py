"""The analog simulator behind one small interface (aihwkit's pure-PyTorch inference tiles).

Everything that touches aihwkit lives in this package: ``to_analog``, ``analog_optimizer``,
``to_digital`` (the digital reference, ``digital``), ``programmed_copy``, ``drift_to`` and
``count_tiles`` here, and in ``fused`` the
fused forward/backward of the analog layers (``HWAConfig.simulator = "fused"``, the default: the
same physics as aihwkit's tile at a fraction of its cost; ``"aihwkit"`` runs aihwkit's own
unfolded forward). Either way aihwkit owns the state (tiles, input ranges, scales, PCM model).

Why ``TorchInferenceRPUConfig``: aihwkit 1.1.0's compiled tiles fail with torch 2.13 ("weights
must be a CPU tensor"); the torch tiles run on CPU and CUDA and support autograd through every
layer we use. They do not support ``forward.w_noise`` or IR drop (aihwkit raises ConfigError), so
the weight noise of hardware-aware training is injected with the weight *modifier* instead.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from trainers.settings import SIMULATORS, HWAConfig  # noqa: F401 (HWAConfig: re-exported)


def rpu_config(hwa: HWAConfig):
    """The aihwkit ``TorchInferenceRPUConfig`` for ``hwa``."""
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.simulator.configs import TorchInferenceRPUConfig
    from aihwkit.simulator.parameters import (
        InputRangeParameter,
        IOParameters,
        MappingParameter,
        PrePostProcessingParameter,
        WeightClipParameter,
        WeightModifierParameter,
        WeightRemapParameter,
    )
    from aihwkit.simulator.parameters.enums import (
        BoundManagementType,
        NoiseManagementType,
        WeightClipType,
        WeightModifierType,
        WeightRemapType,
    )

    cfg = TorchInferenceRPUConfig()
    cfg.mapping = MappingParameter(
        weight_scaling_omega=1.0, weight_scaling_columnwise=True, max_input_size=hwa.tile_size,
        max_output_size=hwa.tile_size, digital_bias=True, learn_out_scaling=True, out_scaling_columnwise=True)
    cfg.forward = IOParameters(
        inp_res=hwa.inp_res, out_res=hwa.out_res, bound_management=BoundManagementType.NONE,
        noise_management=NoiseManagementType.CONSTANT if hwa.learn_input_range else NoiseManagementType.ABS_MAX,
        nm_thres=1.0, out_noise=hwa.out_noise, out_bound=hwa.out_bound)
    cfg.remap = WeightRemapParameter(remapped_wmax=1.0, type=WeightRemapType.CHANNELWISE_SYMMETRIC)
    cfg.clip = WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=hwa.clip_weights)
    cfg.modifier = WeightModifierParameter(
        type=WeightModifierType.ADD_NORMAL if hwa.modifier_std > 0 else WeightModifierType.NONE,
        std_dev=hwa.modifier_std, rel_to_actual_wmax=True)
    cfg.pre_post = PrePostProcessingParameter(input_range=InputRangeParameter(
        enable=hwa.learn_input_range, init_value=3.0, init_from_data=100, init_std_alpha=3.0, decay=0.001,
        input_min_percentage=0.95, output_min_percentage=0.95, manage_output_clipping=False,
        gradient_scale=1.0, gradient_relative=True))
    cfg.noise_model = PCMLikeNoiseModel(g_max=hwa.g_max)
    cfg.drift_compensation = GlobalDriftCompensation() if hwa.drift_compensation else None
    return cfg


def to_analog(model: nn.Module, hwa: HWAConfig) -> nn.Module:
    """Copy of ``model`` with every Conv2d/Linear on analog tiles (BN, ConvTranspose2d stay digital).

    With ``hwa.simulator == "fused"`` the layers are ``FusedAnalogConv2d``/``FusedAnalogLinear``
    (subclasses of aihwkit's, same state); a layer whose preset cannot be fused exactly runs
    aihwkit's own forward, and the log says so once."""
    from aihwkit.nn.conversion import convert_to_analog

    if hwa.simulator == "aihwkit":
        return convert_to_analog(copy.deepcopy(model), rpu_config(hwa))
    from .fused import FUSED_CONVERSION_MAP, log_fallbacks_once

    analog = convert_to_analog(copy.deepcopy(model), rpu_config(hwa), conversion_map=FUSED_CONVERSION_MAP)
    log_fallbacks_once(analog)
    return analog


def to_digital(model: nn.Module) -> nn.Module:
    """The digital reference of an analog model: its own function with an ideal periphery (the
    learned input-range clip and the effective weights kept; no noise, quantisation, output bound
    or drift). See :mod:`trainers.analog.digital`."""
    from .digital import digital_reference

    return digital_reference(model)


#: The one non-data entry of aihwkit's per-tile state: the RPU config object (a class instance,
#: so ``torch.load(weights_only=True)`` refuses it). It follows from the preset, which travels
#: as JSON beside the weights, so it is left out when saving and taken from the rebuilt model.
_TILE_CONFIG_KEY = "rpu_config"


def tensor_state_dict(model: nn.Module) -> dict[str, Any]:
    """``model.state_dict()`` reduced to data that ``torch.load(weights_only=True)`` accepts.

    aihwkit adds one ``analog_tile_state`` dict per tile (weights, hidden parameters, version
    strings ... and the ``rpu_config`` object); everything but the config object is kept. Load it
    back with :func:`load_tensor_state_dict` into a model rebuilt from the spec and the preset."""
    return {k: ({n: x for n, x in v.items() if n != _TILE_CONFIG_KEY} if isinstance(v, dict) else v)
            for k, v in model.state_dict().items()}


def load_tensor_state_dict(model: nn.Module, state: dict[str, Any]) -> None:
    """Load a :func:`tensor_state_dict` into ``model`` (same architecture and preset)."""
    own = model.state_dict()
    full = {}
    for key, value in state.items():
        if isinstance(value, dict) and isinstance(own.get(key), dict):
            value = {**value, _TILE_CONFIG_KEY: own[key][_TILE_CONFIG_KEY]}
        full[key] = value
    model.load_state_dict(full)


def is_analog(model: nn.Module) -> bool:
    return hasattr(model, "analog_tiles") and count_tiles(model) > 0


def count_tiles(model: nn.Module) -> int:
    """Number of crossbar tiles aihwkit created for ``model``."""
    return len(list(model.analog_tiles())) if hasattr(model, "analog_tiles") else 0


def analog_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """aihwkit's AnalogAdam (beat AnalogSGD in this project's measurements: Dice 0.75 vs 0.64)."""
    from aihwkit.optim import AnalogAdam

    opt = AnalogAdam(model.parameters(), lr=lr, weight_decay=weight_decay)
    opt.regroup_param_groups(model)
    return opt


def programmed_copy(model: nn.Module) -> nn.Module:
    """A copy of an analog ``model`` with its weights programmed onto PCM (programming noise drawn
    from torch's RNG, so a seed fixes it). The input model is untouched."""
    programmed = copy.deepcopy(model).eval()
    programmed.program_analog_weights()
    return programmed


def drift_to(programmed: nn.Module, t_seconds: float) -> None:
    """Set a programmed model's conductances to their state ``t_seconds`` after programming.

    aihwkit computes drift from the programmed state, so calls for increasing times need no
    re-programming."""
    programmed.drift_analog_weights(t_seconds)
