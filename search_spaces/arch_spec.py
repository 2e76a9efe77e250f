"""ArchSpec: one NASSegNet architecture as a small frozen value with a stable JSON form.

The sampler makes it, the surrogate encodes it, the builder turns it into a network, MLflow
stores it (flat params and ``arch.json``) and ``predict`` rebuilds the network from it.
Encoder field names follow IBM AnalogNAS (``out_channel0, k0, M, R1..R5, B1..B5,
convblock1..5, widenfact1..5``) so results can be compared with AnalogNAS architectures;
the decoder fields (``up1..up5, dec_width, dec_blocks, skip``) are ours.

Canonical form (so that equal networks have equal specs):
- stages after ``M`` are zeroed (``R=B=convblock=0``, ``widenfact=0.0``, ``up="none"``);
- a stage ``i <= M`` with ``R_i = 0`` has no block, so it is dropped and the later stages
  move down (``M`` shrinks by one);
- ``widenfact`` and ``dec_width`` are rounded to two decimals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

MAX_STAGES = 5
UPSAMPLING_MODES = ("resize", "transpose")
SKIP_MODES = ("concat", "add")
STEM_KERNELS = (1, 3, 5, 7)

#: Absolute validity limits of a spec (the search bounds of a config lie inside these).
LIMITS: dict[str, tuple[float, float]] = {
    "out_channel0": (4, 512),
    "M": (1, MAX_STAGES),
    "R": (0, 32),
    "B": (1, 8),
    "widenfact": (0.25, 1.0),
    "dec_width": (0.25, 2.0),
    "dec_blocks": (1, 4),
}


class SpecError(ValueError):
    """An architecture spec is malformed; the message names the offending field."""


_STAGE_KEYS = {i: (f"R{i}", f"B{i}", f"convblock{i}", f"widenfact{i}", f"up{i}") for i in range(1, MAX_STAGES + 1)}


def _stage_keys(i: int) -> tuple[str, str, str, str, str]:
    return _STAGE_KEYS[i]


@dataclass(frozen=True)
class ArchSpec:
    """One encoder-decoder architecture of the NASSegNet space (see module docstring)."""

    out_channel0: int = 16
    k0: int = 3
    M: int = 2
    R1: int = 1
    R2: int = 1
    R3: int = 0
    R4: int = 0
    R5: int = 0
    B1: int = 1
    B2: int = 1
    B3: int = 0
    B4: int = 0
    B5: int = 0
    convblock1: int = 1
    convblock2: int = 1
    convblock3: int = 0
    convblock4: int = 0
    convblock5: int = 0
    widenfact1: float = 0.5
    widenfact2: float = 0.5
    widenfact3: float = 0.0
    widenfact4: float = 0.0
    widenfact5: float = 0.0
    up1: str = "resize"
    up2: str = "resize"
    up3: str = "none"
    up4: str = "none"
    up5: str = "none"
    dec_width: float = 1.0
    dec_blocks: int = 1
    skip: str = "concat"

    def __post_init__(self) -> None:
        self._check_types()
        self._check_ranges()
        canonical = _canonical_values(self.to_params())
        for key, value in canonical.items():
            object.__setattr__(self, key, value)

    # -- validation -------------------------------------------------------------------------
    def _check_types(self) -> None:
        for name, want in _FIELD_TYPES.items():  # the fields in order (dataclasses.fields is slow:
            value = getattr(self, name)          # a search builds ~10^5 specs per 100 proposals)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
            elif not isinstance(value, want) or isinstance(value, bool):
                raise SpecError(f"{name}: expected {want.__name__}, got {value!r}")

    def _check_ranges(self) -> None:
        _in_range("out_channel0", self.out_channel0, *LIMITS["out_channel0"])
        if self.k0 not in STEM_KERNELS:
            raise SpecError(f"k0: stem kernel must be one of {STEM_KERNELS}, got {self.k0}")
        _in_range("M", self.M, *LIMITS["M"])
        if self.R1 < 1:
            raise SpecError(f"R1: the first stage needs at least one block, got {self.R1}")
        for i in range(1, self.M + 1):
            r, b, cb, wf, up = _stage_keys(i)
            _in_range(r, getattr(self, r), *LIMITS["R"])
            if getattr(self, r) == 0:
                continue  # a stage without blocks is dropped; its other fields do not matter
            _in_range(b, getattr(self, b), *LIMITS["B"])
            if getattr(self, cb) not in (1, 2):
                raise SpecError(f"{cb}: must be 1 (basic) or 2 (bottleneck), got {getattr(self, cb)}")
            _in_range(wf, getattr(self, wf), *LIMITS["widenfact"])
            if getattr(self, up) not in UPSAMPLING_MODES:
                raise SpecError(f"{up}: must be one of {UPSAMPLING_MODES}, got {getattr(self, up)!r}")
        _in_range("dec_width", self.dec_width, *LIMITS["dec_width"])
        _in_range("dec_blocks", self.dec_blocks, *LIMITS["dec_blocks"])
        if self.skip not in SKIP_MODES:
            raise SpecError(f"skip: must be one of {SKIP_MODES}, got {self.skip!r}")

    # -- views ------------------------------------------------------------------------------
    def stages(self) -> list[dict[str, Any]]:
        """The M used stages as dicts with keys R, B, convblock, widenfact, up."""
        out = []
        for i in range(1, self.M + 1):
            r, b, cb, wf, up = _stage_keys(i)
            out.append({"R": getattr(self, r), "B": getattr(self, b), "convblock": getattr(self, cb),
                        "widenfact": getattr(self, wf), "up": getattr(self, up)})
        return out

    def to_params(self) -> dict[str, Any]:
        """Flat dict of all fields, as Ray, Optuna and MLflow hold it."""
        return {name: getattr(self, name) for name in _FIELD_TYPES}  # all scalars: no deep copy

    def to_json(self) -> str:
        """Stable JSON (sorted keys) that ``from_json`` turns back into an equal spec."""
        return json.dumps(self.to_params(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"arch JSON is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SpecError("arch JSON must be an object of field: value")
        return cls.from_params(data)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, prefix: str = "",
                    ignore_unknown: bool = False) -> ArchSpec:
        """Build a spec from a flat mapping (values may be strings, as MLflow returns them).

        ``prefix`` selects keys such as ``arch.R1``; keys without it are ignored then.
        Missing stage fields of unused stages default to the canonical zeros.
        """
        values: dict[str, Any] = {}
        for key, raw in params.items():
            if prefix:
                if not key.startswith(prefix):
                    continue
                key = key[len(prefix):]
            if key not in _FIELD_TYPES:
                if ignore_unknown:
                    continue
                raise SpecError(f"{key}: unknown architecture field")
            values[key] = _parse(key, raw)
        m = values.get("M", cls.M)
        if isinstance(m, int):
            for i in range(m + 1, MAX_STAGES + 1):  # unused stages may be absent
                for k, zero in zip(_stage_keys(i), (0, 0, 0, 0.0, "none")):
                    values.setdefault(k, zero)
        return cls(**values)


_FIELD_TYPES: dict[str, type] = {f.name: {"int": int, "float": float, "str": str}[f.type]
                                 for f in fields(ArchSpec)}


def _in_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise SpecError(f"{name}: {value} is outside [{lo}, {hi}]")


def _parse(key: str, raw: Any) -> Any:
    want = _FIELD_TYPES[key]
    if isinstance(raw, want) and not isinstance(raw, bool):
        return raw
    try:
        if want is int:
            as_float = float(raw)
            if as_float != int(as_float):
                raise ValueError
            return int(as_float)
        if want is float:
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise SpecError(f"{key}: expected {want.__name__}, got {raw!r}") from None


def _canonical_values(values: dict[str, Any]) -> dict[str, Any]:
    """Drop block-less stages, zero the unused ones and round the float fields."""
    used = []
    for i in range(1, values["M"] + 1):
        r, b, cb, wf, up = _stage_keys(i)
        if values[r] > 0:
            used.append((values[r], values[b], values[cb], round(values[wf], 2), values[up]))
    out = dict(values)
    out["M"] = len(used)
    for i in range(1, MAX_STAGES + 1):
        stage = used[i - 1] if i <= len(used) else (0, 0, 0, 0.0, "none")
        for key, value in zip(_stage_keys(i), stage):
            out[key] = value
    out["dec_width"] = round(values["dec_width"], 2)
    return out
