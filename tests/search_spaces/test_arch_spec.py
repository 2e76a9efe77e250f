import json

import pytest

from search_spaces import ArchSpec, SpecError


def test_defaults_are_canonical_and_round_trip():
    spec = ArchSpec()
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["M"] == 2


@pytest.mark.parametrize("params, field", [
    ({"R1": 0}, "R1"),
    ({"widenfact1": 2.0}, "widenfact1"),
    ({"bogus": 3}, "bogus"),
    ({"k0": 4}, "k0"),
    ({"M": 6}, "M"),
    ({"B1": 0}, "B1"),
    ({"convblock2": 3}, "convblock2"),
    ({"up1": "pixelshuffle"}, "up1"),
    ({"skip": "mul"}, "skip"),
    ({"out_channel0": "wide"}, "out_channel0"),
    ({"R1": 1.5}, "R1"),
])
def test_bad_specs_name_the_field(params, field):
    base = ArchSpec().to_params()
    base.update(params)
    with pytest.raises(SpecError) as err:
        ArchSpec.from_params(base)
    assert str(err.value).startswith(field + ":"), str(err.value)


def test_unused_stages_are_zeroed():
    params = ArchSpec().to_params()
    params.update({"M": 1, "R2": 7, "B2": 3, "widenfact2": 0.7, "up2": "transpose"})
    spec = ArchSpec.from_params(params)
    assert (spec.R2, spec.B2, spec.convblock2, spec.widenfact2, spec.up2) == (0, 0, 0, 0.0, "none")
    assert spec == ArchSpec.from_params({**ArchSpec().to_params(), "M": 1})


def test_stage_without_blocks_is_dropped_and_later_stages_move_down():
    a = ArchSpec.from_params({"M": 3, "R1": 1, "B1": 1, "convblock1": 1, "widenfact1": 0.5, "up1": "resize",
                              "R2": 0, "B2": 1, "convblock2": 1, "widenfact2": 0.5, "up2": "resize",
                              "R3": 2, "B3": 2, "convblock3": 2, "widenfact3": 0.7, "up3": "transpose"})
    b = ArchSpec.from_params({"M": 2, "R1": 1, "B1": 1, "convblock1": 1, "widenfact1": 0.5, "up1": "resize",
                              "R2": 2, "B2": 2, "convblock2": 2, "widenfact2": 0.7, "up2": "transpose"})
    assert a == b and a.M == 2 and a.R3 == 0


def test_string_params_as_mlflow_returns_them():
    spec = ArchSpec.from_params({"M": 3, "R1": 2, "B1": 2, "convblock1": 2, "widenfact1": 0.55, "up1": "transpose",
                                 "R2": 1, "B2": 1, "convblock2": 1, "widenfact2": 0.8, "up2": "resize",
                                 "R3": 3, "B3": 1, "convblock3": 1, "widenfact3": 0.65, "up3": "resize",
                                 "dec_width": 0.5, "skip": "add"})
    as_strings = {f"arch.{k}": str(v) for k, v in spec.to_params().items()}
    as_strings["lr"] = "0.001"  # other params are ignored under a prefix
    assert ArchSpec.from_params(as_strings, prefix="arch.") == spec


def test_widenfact_rounding_makes_float_noise_equal():
    a = ArchSpec.from_params({**ArchSpec().to_params(), "widenfact1": 0.6500000000000001})
    b = ArchSpec.from_params({**ArchSpec().to_params(), "widenfact1": 0.65})
    assert a == b and a.to_json() == b.to_json()


def test_bad_json():
    with pytest.raises(SpecError, match="not valid JSON"):
        ArchSpec.from_json("{nope")
    with pytest.raises(SpecError, match="object"):
        ArchSpec.from_json("[1, 2]")
