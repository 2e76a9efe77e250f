"""The fused analog simulator computes aihwkit's physics: checked against aihwkit's own layers.

Each case builds the same layer twice from one digital layer, once with aihwkit's
``AnalogConv2d``/``AnalogLinear`` (im2col forward) and once fused, with identical tile state,
and compares forward outputs, gradients of x, tile weights, input ranges, out-scales and bias,
and the data-initialised input range, for both periphery paths (torch ops, used on CUDA, and the
numba kernels, used on CPU).

Tolerances (from the issue): outputs at most one ADC step apart per element and at most 1e-4 of
elements differing by more than 1e-5 of the max (float summation order can flip an ADC rounding);
gradients within 1e-5 relative; data-initialised input ranges within 1e-6. Gradients are compared
with the ADC quantisation off (DAC on): one flipped ADC step changes the out-scale gradient by far
more than rounding, so that comparison would test summation order, not equations.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import replace

import pytest
import torch
from aihwkit.nn.conversion import convert_to_analog
from torch import nn

from trainers.analog import HWAConfig, analog_optimizer, drift_to, programmed_copy, rpu_config, to_analog, to_digital
from trainers.analog.fused import FUSED_CONVERSION_MAP, FusedAnalogConv2d, FusedAnalogLinear, fused_layers

QUIET = HWAConfig(modifier_std=0.0, out_noise=0.0)          # noise off, DAC/ADC 254 steps
NO_ADC = replace(QUIET, out_res=0.0)                          # DAC on, ADC off (for gradients)
PERIPHERIES = ("torch", "numba")

# name: (digital layer, input shape, preset, input range (None: initialised from data))
CASES = {
    "3x3 stride 1": (lambda: nn.Conv2d(16, 24, 3, padding=1, bias=False), (3, 16, 14, 13), None),
    "3x3 stride 2 + bias": (lambda: nn.Conv2d(16, 24, 3, stride=2, padding=1), (3, 16, 15, 12), None),
    "1x1 stride 1": (lambda: nn.Conv2d(12, 20, 1, bias=False), (3, 12, 10, 10), None),
    "1x1 stride 2": (lambda: nn.Conv2d(12, 20, 1, stride=2, bias=False), (3, 12, 11, 10), None),
    "5x5 stem": (lambda: nn.Conv2d(1, 16, 5, padding=2, bias=False), (4, 1, 16, 16), None),
    "two input tiles, aligned": (lambda: nn.Conv2d(16, 8, 3, padding=1), (2, 16, 10, 10), dict(tile_size=72)),
    "two input tiles, channel straddles": (lambda: nn.Conv2d(57, 16, 3, padding=1), (2, 57, 9, 9), None),
    "two output tiles": (lambda: nn.Conv2d(4, 100, 3, padding=1), (2, 4, 9, 9), dict(tile_size=64)),
    "heavy clipping (small r)": (lambda: nn.Conv2d(16, 16, 3, padding=1), (2, 16, 10, 10), "r=0.3"),
    "no clipping, decay active": (lambda: nn.Conv2d(16, 16, 3, padding=1), (2, 16, 10, 10), "r=50"),
    "linear": (lambda: nn.Linear(40, 10), (64, 40), None),
}


def make_pair(layer_fn, preset: HWAConfig, periphery: str, seed: int = 0):
    torch.manual_seed(seed)
    digital = nn.Sequential(layer_fn())
    reference = convert_to_analog(copy.deepcopy(digital), rpu_config(preset))
    fused = convert_to_analog(copy.deepcopy(digital), rpu_config(preset), conversion_map=FUSED_CONVERSION_MAP)
    fused.load_state_dict(reference.state_dict())
    fused[0].periphery = periphery
    return reference, fused


def set_input_range(model, value: float) -> None:
    for tile in model.analog_tiles():
        tile.input_range.data[:] = value
        tile.input_range_update_idx.data[:] = 10_000      # past init-from-data


def run(model, x, gy):
    model.train()
    xx = x.clone().requires_grad_(True)
    y = model(xx)
    y.backward(torch.zeros_like(y) if gy is None else gy)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    ranges = [t.input_range.detach().clone() for t in model.analog_tiles()]
    return y.detach(), xx.grad, grads, ranges


def case_inputs(name: str, preset: HWAConfig, periphery: str):
    layer_fn, shape, extra = CASES[name]
    if isinstance(extra, dict):
        preset = replace(preset, **extra)
    reference, fused = make_pair(layer_fn, preset, periphery)
    if isinstance(extra, str):
        set_input_range(reference, float(extra[2:]))
        set_input_range(fused, float(extra[2:]))
    torch.manual_seed(1)
    x = torch.randn(shape).relu() * 2 if len(shape) == 4 else torch.randn(shape)
    return reference, fused, x, preset


def assert_outputs_close(y_ref: torch.Tensor, y: torch.Tensor, adc_step: float) -> None:
    diff = (y_ref - y).abs()
    assert diff.max() <= adc_step * 1.001, f"max diff {diff.max():.3g} > one ADC step {adc_step:.3g}"
    share = (diff > 1e-5 * y_ref.abs().max()).float().mean().item()
    assert share <= 1e-4, f"{share:.2e} of the outputs differ"


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp(min=1e-30)).item()


def max_adc_step(model, preset: HWAConfig) -> float:
    """One ADC step in output units: step x input range x mapping scale x out-scale, the largest."""
    step = 2 * preset.out_bound / preset.out_res
    return max(float((t.input_range * t.get_mapping_scales() * t.out_scaling_alpha).detach().abs().max()) * step
               for t in model.analog_tiles())


@pytest.mark.parametrize("periphery", PERIPHERIES)
@pytest.mark.parametrize("name", list(CASES))
def test_forward_and_input_range_init_match_aihwkit(name, periphery):
    reference, fused, x, preset = case_inputs(name, QUIET, periphery)
    y_ref, _, _, r_ref = run(reference, x, None)
    y, _, _, r = run(fused, x, None)
    for a, b in zip(r, r_ref):
        assert a.item() == pytest.approx(b.item(), rel=1e-6)
    assert_outputs_close(y_ref, y, max_adc_step(reference, preset))


@pytest.mark.parametrize("periphery", PERIPHERIES)
@pytest.mark.parametrize("name", list(CASES))
def test_gradients_match_aihwkit(name, periphery):
    reference, fused, x, _ = case_inputs(name, NO_ADC, periphery)
    with torch.no_grad():
        shape = copy.deepcopy(reference).eval()(x).shape
    torch.manual_seed(2)
    gy = torch.randn(shape)
    y_ref, dx_ref, g_ref, _ = run(reference, x, gy)
    y, dx, g, _ = run(fused, x, gy)
    assert rel(y, y_ref) < 1e-6
    assert rel(dx, dx_ref) < 1e-5
    assert g.keys() == g_ref.keys() and any("input_range" in k for k in g)
    for key in g_ref:
        assert rel(g[key], g_ref[key]) < 1e-5, (key, g[key].flatten()[:3], g_ref[key].flatten()[:3])


@pytest.mark.parametrize("periphery", PERIPHERIES)
def test_eval_after_programming_and_one_day_drift_matches_aihwkit(periphery):
    reference, fused, x, preset = case_inputs("two input tiles, channel straddles", QUIET, periphery)
    run(reference, x, None)
    run(fused, x, None)                                       # same data-initialised input ranges
    outs = []
    for model in (reference, fused):
        torch.manual_seed(7)                                  # same programming noise draws
        programmed = programmed_copy(model)
        drift_to(programmed, 86400.0)
        with torch.no_grad():
            outs.append(programmed(x))
    assert any(float(t.alpha) != 1.0 for t in programmed.analog_tiles())   # drift compensation acted
    assert_outputs_close(outs[0], outs[1], max_adc_step(reference, preset))


@pytest.mark.parametrize("periphery", PERIPHERIES)
def test_noise_statistics_match_aihwkit(periphery):
    """Noise on (weight modifier + output noise): over 400 draws, the spread of the output and of
    the input gradient, and the mean input-range gradient, agree with aihwkit's."""
    preset = HWAConfig()                                      # the search's preset, noise on
    reference, fused = make_pair(lambda: nn.Conv2d(8, 16, 3, padding=1), preset, periphery)
    for model in (reference, fused):
        set_input_range(model, 1.5)
    torch.manual_seed(3)
    x = torch.randn(2, 8, 8, 8).relu() * 2
    gy = torch.randn(2, 16, 8, 8)
    stats = []
    for model in (reference, fused):
        ys, dxs, grs = [], [], []
        for _ in range(400):
            model.zero_grad()
            y, dx, g, _ = run(model, x, gy)
            ys.append(y)
            dxs.append(dx)
            grs.append(g["0.analog_module.input_range"].item())
        stats.append((torch.stack(ys).std(0).mean(), torch.stack(dxs).std(0).mean(), torch.tensor(grs)))
    (ys_a, dxs_a, gr_a), (ys_f, dxs_f, gr_f) = stats
    assert ys_f / ys_a == pytest.approx(1.0, abs=0.01)
    assert dxs_f / dxs_a == pytest.approx(1.0, abs=0.01)
    se = (gr_a.var() / len(gr_a) + gr_f.var() / len(gr_f)).sqrt()
    assert abs(gr_a.mean() - gr_f.mean()) <= 3 * se, (gr_a.mean(), gr_f.mean(), se)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, 1, 1))


def test_training_losses_match_aihwkit_without_quantisation():
    preset = HWAConfig(modifier_std=0.0, out_noise=0.0, inp_res=0.0, out_res=0.0)
    losses = []
    for simulator in ("aihwkit", "fused"):
        model = to_analog(small_net(), replace(preset, simulator=simulator))
        opt = analog_optimizer(model, 1e-2)
        torch.manual_seed(5)
        run_losses = []
        for _ in range(6):
            x = torch.rand(4, 1, 16, 16)
            target = (nn.functional.avg_pool2d(x, 2) > 0.6).float()   # the net downsamples once
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(model(x), target)
            loss.backward()
            opt.step()
            run_losses.append(loss.item())
        losses.append(run_losses)
    assert losses[0][-1] < losses[0][0]                     # it trains
    for a, b in zip(*losses):
        assert b == pytest.approx(a, rel=1e-5)


def test_numba_and_torch_peripheries_agree_bit_for_bit():
    outs = []
    for periphery in PERIPHERIES:
        reference, fused, x, _ = case_inputs("two input tiles, channel straddles", QUIET, periphery)
        torch.manual_seed(4)
        y, dx, g, r = run(fused, x, torch.randn(2, 16, 9, 9))
        outs.append((y, dx, g))
    assert torch.equal(outs[0][0], outs[1][0])
    assert rel(outs[1][1], outs[0][1]) < 1e-6
    for key in outs[0][2]:
        assert rel(outs[1][2][key], outs[0][2][key]) < 1e-5


def test_fused_model_keeps_aihwkit_state_and_conversions():
    fused = to_analog(small_net(), HWAConfig())
    plain = to_analog(small_net(), HWAConfig(simulator="aihwkit"))
    assert fused_layers(fused)[:2] == (4, 4)
    assert sum(isinstance(m, FusedAnalogConv2d) for m in fused.modules()) == 4
    assert fused.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fused.state_dict())                # loadable as a plain aihwkit model
    digital = to_digital(fused)
    assert not any(isinstance(m, (FusedAnalogConv2d, FusedAnalogLinear)) for m in digital.modules())
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(to_digital(plain).eval()(x), digital.eval()(x))


def test_preset_that_cannot_be_fused_falls_back_to_aihwkit_and_says_so_once(caplog):
    preset = HWAConfig(learn_input_range=False, modifier_std=0.0, out_noise=0.0)   # ABS_MAX noise management
    with caplog.at_level(logging.WARNING):
        fused = to_analog(small_net(), preset)
        to_analog(small_net(), preset)
    lines = [r.message for r in caplog.records if "aihwkit's unfolded forward" in r.message]
    assert len(lines) == 1 and "ABS_MAX" in lines[0], lines
    assert fused_layers(fused)[0] == 0
    plain = to_analog(small_net(), replace(preset, simulator="aihwkit"))
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(fused.train()(x), plain.train()(x))


def test_counter_based_normals_are_standard_and_thread_independent():
    from trainers.analog import kernels

    z = kernels.standard_normal((2_000_000,), seed=11).double()
    assert abs(z.mean()) < 0.004 and z.std() == pytest.approx(1.0, abs=0.002)
    tail = (z.abs() > 3).double().mean().item()               # 0.0027 for a normal
    assert tail == pytest.approx(0.0026998, rel=0.05)
    a = torch.zeros(4, 4, 64, 64)                              # big enough to be split over threads
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        y = torch.empty_like(a)
        aa = a.clone()
        kernels.adc_scale(aa, True, torch.ones(4), None, 10.0, torch.ones(4), torch.zeros(4), y, False, False)
        outs.append(y)
    torch.set_num_threads(1)
    assert torch.equal(outs[0], outs[1]) and outs[0].std() == pytest.approx(1.0, abs=0.01)


def test_two_threads_give_the_results_of_one():
    """The kernels split a batch over a thread pool; nothing may depend on the split."""
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        reference, fused, _, _ = case_inputs("3x3 stride 1", HWAConfig(), "numba")   # noise on
        torch.manual_seed(9)
        x = torch.randn(8, 16, 48, 48).relu()
        gy = torch.randn(8, 24, 48, 48)
        torch.manual_seed(10)
        results.append(run(fused, x, gy))
    torch.set_num_threads(1)
    (y1, dx1, g1, r1), (y2, dx2, g2, r2) = results
    assert torch.equal(y1, y2) and torch.equal(dx1, dx2) and r1 == r2
    for key in g1:  # oneDNN's weight-gradient reduction order depends on its thread count
        assert rel(g2[key], g1[key]) < 1e-5, key
