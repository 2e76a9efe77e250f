"""The digital reference computes what the analog network computes, minus the hardware.

Reference for "what the analog network computes without noise, DAC/ADC and drift": the same
analog model (same tile state, unprogrammed) with every periphery non-ideality switched off in
its tiles' configs, run by aihwkit (``forward.is_perfect``) and by the fused simulator (output
noise 0, no DAC/ADC resolution, no output bound). Both must agree with the clipped digital network
within 1e-4 of the output range, for every output head, both simulators and multi-tile layers.
"""
from __future__ import annotations

import copy

import pytest
import torch

from orchestrator.tracking.registry import DIGITAL_FILE, read_bundle, write_bundle
from search_spaces import ArchSpec, build
from trainers.analog import HWAConfig, tensor_state_dict, to_analog, to_digital
from trainers.analog.digital import ClippedConv2d
from trainers.analog.fused import fused_layers
from trainers.data import load_samples, split_by_image
from trainers.heads import HEADS, head
from trainers.train import TrainConfig, Trainer

SPEC = ArchSpec.from_params(dict(out_channel0=12, k0=3, M=2, R1=1, B1=2, convblock1=2, widenfact1=0.7, up1="resize",
                                 R2=1, B2=1, convblock2=1, widenfact2=0.7, up2="transpose"))


def noise_free(model, how: str):
    """The analog model with an ideal periphery: aihwkit's ``is_perfect`` or, for the fused
    simulator, no output noise, no DAC/ADC quantisation and no output bound."""
    quiet = copy.deepcopy(model).eval()
    for tile in quiet.analog_tiles():
        f = tile.rpu_config.forward
        if how == "perfect":
            f.is_perfect = True
        else:
            f.out_noise, f.inp_res, f.out_res, f.out_bound = 0.0, -1.0, -1.0, 0.0
    return quiet


def trained_like(head_name: str, hwa: HWAConfig, seed: int = 0):
    """An analog network whose learned state is not the initial one: input ranges initialised
    from data and then shrunk (so the clips bind), out-scales moved off 1."""
    torch.manual_seed(seed)
    model = to_analog(build(SPEC, in_channels=1, out_channels=head(head_name).channels, seed=seed), hwa).train()
    x = 2.0 * torch.rand(4, 1, 40, 40)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        for tile in model.analog_tiles():
            tile.input_range.data *= 0.4
            tile.out_scaling_alpha.data *= 1.0 + 0.5 * torch.rand_like(tile.out_scaling_alpha)
    return model.eval(), x


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (b.max() - b.min()))


@pytest.mark.parametrize("simulator", ["fused", "aihwkit"])
@pytest.mark.parametrize("head_name", HEADS)
@pytest.mark.parametrize("tile_size", [512, 40])      # 40: layers split over several tiles, channels straddle
def test_digital_reference_equals_the_noise_free_analog_network(simulator, head_name, tile_size):
    model, x = trained_like(head_name, HWAConfig(simulator=simulator, tile_size=tile_size))
    digital = to_digital(model).eval()
    layers = [m for m in digital.modules() if isinstance(m, ClippedConv2d)]
    assert layers and all(m.tile_bounds.isfinite().all() for m in layers)
    if tile_size == 40:
        assert any(m.tile_slots.shape[0] > 1 for m in layers)
    with torch.no_grad():
        y = digital(x)
        for how in ("perfect", "quiet"):
            ideal = noise_free(model, how)
            if how == "quiet" and simulator == "fused":
                assert fused_layers(ideal)[0] == fused_layers(ideal)[1] > 0   # the fused path ran
            assert relative_gap(y, ideal(x)) < 1e-4, how
        # the clip matters: aihwkit's convert_to_digital (no clip) computes another function, and
        # the noisy analog network differs from the ideal one by its noise, not by its function
        from aihwkit.nn.conversion import convert_to_digital

        assert relative_gap(convert_to_digital(model).eval()(x), y) > 0.05
        assert relative_gap(model(x), y) < 0.5


def test_a_bundle_carries_the_digital_reference_and_loads_it_as_data(tmp_path):
    model, x = trained_like("contour", HWAConfig(tile_size=40))
    meta = {"channels": 1, "patch_size": 32, "threshold": 0.5, "head": "contour", "mode": "analog",
            "hwa": HWAConfig(tile_size=40).as_dict()}
    folder = write_bundle(tmp_path / "b", SPEC, meta, tensor_state_dict(model))
    assert torch.load(folder / DIGITAL_FILE, weights_only=True)      # plain tensors
    bundle = read_bundle(folder, "models:/x/1")
    assert bundle.digital_weights is not None
    assert any(isinstance(m, ClippedConv2d) for m in bundle.digital.modules())
    with torch.no_grad():
        assert relative_gap(bundle.digital(x), noise_free(model, "perfect")(x)) < 1e-4
    # a bundle without digital.pt (written before it existed) derives the same network
    (folder / DIGITAL_FILE).unlink()
    with torch.no_grad():
        assert relative_gap(read_bundle(folder, "models:/x/1").digital(x), bundle.digital(x)) < 1e-6


@pytest.mark.slow
def test_digital_dice_equals_noise_free_analog_dice_and_is_the_drift_reference():
    train, val = split_by_image(load_samples("synthetic:12", seed=0), 0.25, seed=0)
    cfg = TrainConfig(mode="analog", epochs=2, steps_per_epoch=12, batch_size=8, patch_size=48, num_threads=2,
                      drift_reps=2, drift_times=(86400.0, 365 * 86400.0), seed=0)
    trainer = Trainer(SPEC, train, val, cfg)
    trainer.fit()
    digital = trainer.evaluate(to_digital(trainer.model))["dice"]
    ideal = trainer.evaluate(noise_free(trainer.model, "perfect"))["dice"]
    assert abs(digital - ideal) <= 0.005, (digital, ideal)
    drift = trainer.drift_evaluation()
    assert drift["dice_digital"] == pytest.approx(digital, abs=1e-9)
    assert drift["dice_drop_1y"] == pytest.approx(digital - drift["dice_1y"], abs=1e-9)


def test_the_noise_free_switches_change_the_analog_output():
    # so that the equality above compares against a model whose periphery really was switched off
    model, x = trained_like("binary", HWAConfig())
    with torch.no_grad():
        assert relative_gap(model(x), noise_free(model, "quiet")(x)) > 1e-3
