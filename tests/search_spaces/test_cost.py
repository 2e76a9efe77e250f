import pytest

from search_spaces import ArchSpec, Constraints, hardware_cost, violations


def spec(**kw):
    return ArchSpec.from_params({**ArchSpec().to_params(), **kw})


def test_resize_decoder_is_fully_analog_and_transpose_is_not():
    resize = hardware_cost(spec(up1="resize", up2="resize"))
    transpose = hardware_cost(spec(up1="transpose", up2="resize"))
    assert resize.fully_analog and resize.digital_params == 0
    assert not transpose.fully_analog
    # stage-1 transpose conv: 2x2 kernel from the level-1 decoder width (16) to 16, plus bias
    assert transpose.digital_params == 16 * 16 * 4 + 16


def test_hand_counted_minimal_network():
    # M=1, one basic block, widths 8 -> 8 (widenfact 0.5), concat skip, dec_width 1, 1 refine conv
    s = ArchSpec.from_params({"out_channel0": 8, "k0": 3, "M": 1, "R1": 1, "B1": 1, "convblock1": 1,
                              "widenfact1": 0.5, "up1": "resize", "dec_width": 1.0, "dec_blocks": 1, "skip": "concat"})
    c = hardware_cost(s, in_channels=1, out_channels=1)
    stem = 1 * 8 * 9 + 16
    block = (8 * 8 * 9 + 16) * 2 + (8 * 8 + 16)  # two 3x3 convs + projected shortcut (each with BN)
    up = 8 * 8 * 9 + 16
    refine = 16 * 8 * 9 + 16
    head = 8 + 1
    assert c.params == stem + block + up + refine + head
    # every conv fits one 512x512 tile: stem, 2 block convs, shortcut, up conv, refine, head = 7
    assert c.tiles == 7
    # MACs per input pixel: full-res layers count 1, half-res layers 1/4
    full = 1 * 8 * 9 + 8 * 8 * 9 + 16 * 8 * 9 + 8
    half = 8 * 8 * 9 * 2 + 8 * 8
    assert c.macs_per_px == pytest.approx(full + half / 4)


def test_small_tiles_split_layers():
    s = spec(out_channel0=64)
    assert hardware_cost(s, tile_size=64).tiles > hardware_cost(s, tile_size=512).tiles


def test_violations_list_each_broken_limit():
    c = hardware_cost(spec(up1="transpose"))
    assert violations(c, Constraints()) == []
    reasons = violations(c, Constraints(max_params=10, max_tiles=1, max_digital_params=0))
    assert [r.split()[0] for r in reasons] == ["params", "tiles", "digital_params"]
    assert violations(c, Constraints(max_params=c.params, max_tiles=c.tiles)) == []


def test_network_signature_identifies_twins_across_specs():
    from search_spaces import build, network_signature

    a = spec(out_channel0=16, widenfact1=0.5)   # 16 * 2 * 0.5 = 16 channels
    b = spec(out_channel0=16, widenfact1=0.55)  # 17.6 -> rounds to 16 channels: the same network
    c = spec(out_channel0=16, widenfact1=0.65)  # 20.8 -> 20 channels
    assert a != b and network_signature(a) == network_signature(b) != network_signature(c)
    na, nb = build(a, seed=0), build(b, seed=0)
    assert all((x == y).all() for x, y in zip(na.state_dict().values(), nb.state_dict().values()))
