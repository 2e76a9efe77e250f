"""Hundreds of sampled specs: build, shape, round trips, analog conversion, exact cost model."""
import time

import optuna
import pytest
import torch
from aihwkit.nn.conversion import convert_to_analog
from aihwkit.simulator.configs import TorchInferenceRPUConfig

from search_spaces import (
    FEATURE_NAMES,
    PRESETS,
    ArchSpec,
    SpaceBounds,
    SpecError,
    build,
    encode,
    hardware_cost,
    suggest,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample_specs(bounds: SpaceBounds, n: int, seed: int) -> list[ArchSpec]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    specs = []
    for _ in range(n):
        trial = study.ask()
        specs.append(suggest(trial, bounds))
        study.tell(trial, 0.0)
    return specs


DEFAULT_SPECS = sample_specs(PRESETS["default"], 200, seed=0)
LARGE_SPECS = sample_specs(PRESETS["large"], 100, seed=1)


def analog_config(tile: int) -> TorchInferenceRPUConfig:
    cfg = TorchInferenceRPUConfig()
    cfg.mapping.max_input_size = tile
    cfg.mapping.max_output_size = tile
    return cfg


def test_samples_cover_the_space():
    assert len(set(DEFAULT_SPECS)) > 150
    assert {s.M for s in DEFAULT_SPECS} == {1, 2, 3}
    assert {s.M for s in LARGE_SPECS} == {1, 2, 3, 4, 5}
    assert max(s.R1 for s in LARGE_SPECS) >= 12
    assert {s.up1 for s in DEFAULT_SPECS} == {"resize", "transpose"}
    assert {s.skip for s in DEFAULT_SPECS} == {"concat", "add"}


@pytest.mark.parametrize("specs", [DEFAULT_SPECS, LARGE_SPECS], ids=["default", "large"])
def test_round_trips_are_exact(specs):
    for spec in specs:
        assert ArchSpec.from_json(spec.to_json()) == spec
        assert ArchSpec.from_params(spec.to_params()) == spec
        assert ArchSpec.from_params({k: str(v) for k, v in spec.to_params().items()}) == spec


def test_suggest_is_fast():
    start = time.perf_counter()
    sample_specs(PRESETS["large"], 50, seed=3)
    assert (time.perf_counter() - start) / 50 < 0.2  # Ray warns above 1 s per suggestion


@pytest.mark.parametrize("specs, in_ch, tile, sizes", [
    (DEFAULT_SPECS, 1, 512, [(32, 32), (19, 27)]),
    (LARGE_SPECS, 3, 512, [(33, 40)]),
], ids=["default", "large"])
def test_every_spec_builds_keeps_size_and_cost_is_exact(specs, in_ch, tile, sizes):
    torch.manual_seed(0)
    for spec in specs:
        net = build(spec, in_channels=in_ch, out_channels=2).eval()
        cost = hardware_cost(spec, in_ch, 2, tile_size=tile)
        assert cost.params == sum(p.numel() for p in net.parameters()), spec.to_json()
        n_transpose = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
        assert (cost.digital_params == 0) == (n_transpose == 0)
        with torch.no_grad():
            for h, w in sizes:
                assert net(torch.randn(1, in_ch, h, w)).shape == (1, 2, h, w), (spec.to_json(), h, w)
        assert encode(spec, in_ch, 2).shape == (len(FEATURE_NAMES),)


# 25 large specs (was 100): their conversion through aihwkit took 62-75 s and the suite must
# stay under 15 minutes on 2 cores; they still span M 1-5 and multi-tile layers
@pytest.mark.parametrize("specs, tile, n", [(DEFAULT_SPECS, 512, 200), (DEFAULT_SPECS, 64, 60), (LARGE_SPECS, 512, 25)],
                         ids=["default-512", "default-64", "large-512"])
def test_analog_conversion_runs_and_tile_count_matches(specs, tile, n):
    torch.manual_seed(0)
    for i, spec in enumerate(specs[:n]):
        net = build(spec, in_channels=1, out_channels=1).eval()
        analog = convert_to_analog(net, analog_config(tile)).eval()
        tiles = len(list(analog.analog_tiles()))
        assert tiles == hardware_cost(spec, 1, 1, tile_size=tile).tiles, spec.to_json()
        if i % 4 == 0:  # a forward pass through aihwkit's tiles on every fourth (the slow part)
            with torch.no_grad():
                out = analog(torch.randn(1, 1, 21, 18))
            assert out.shape == (1, 1, 21, 18) and torch.isfinite(out).all()


def test_build_is_deterministic_under_seed():
    spec = DEFAULT_SPECS[5]
    a, b = build(spec, seed=7), build(spec, seed=7)
    c = build(spec, seed=8)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_bounds_validation():
    with pytest.raises(SpecError, match=r"^bounds\.M"):
        SpaceBounds(M=(1, 9))
    with pytest.raises(SpecError, match=r"^bounds\.up"):
        SpaceBounds(up=("bicubic",))
    with pytest.raises(SpecError, match="unknown key"):
        SpaceBounds.from_dict({"widenfactor": [0.5, 0.8]})
    assert SpaceBounds.from_dict(PRESETS["large"].as_dict()) == PRESETS["large"]


def test_the_space_encodes_networks_as_it_costs_them():
    """The surrogate's features are the network as trained: input channels, the head's channels
    and the tile size reach the cost columns of the encoding (they used to be 1, 1 and 512)."""
    import math

    from search_spaces import FEATURE_NAMES
    from search_spaces.interface import NASSegSpace

    spec = DEFAULT_SPECS[1]
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    spaces = [NASSegSpace(in_channels=1, out_channels=1, tile_size=512),
              NASSegSpace(in_channels=3, out_channels=3, tile_size=64)]
    rows = [space.encode([spec])[0] for space in spaces]
    for space, row in zip(spaces, rows):
        cost = space.cost(spec)
        assert row[col["log_params"]] == pytest.approx(math.log10(cost["params"]))
        assert row[col["log_tiles"]] == pytest.approx(math.log10(max(cost["tiles"], 1)))
    assert rows[0][col["log_params"]] < rows[1][col["log_params"]] and rows[0][col["log_tiles"]] < rows[1][col["log_tiles"]]
