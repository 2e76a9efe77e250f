"""Results tables: one network per JSON line (``arch``, per-epoch ``epochs``, ``final`` scores,
``info``: cost and training seconds), plain or ``.gz``. Written by ``nasseg export-table`` and the
benchmark generators, read by the replay evaluator (``evaluator: table:PATH``) and warm starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from search_spaces import ArchSpec, network_signature


class NotInTableError(LookupError):
    """The network is not in the table (its trial fails)."""


# -- the replay evaluator -----------------------------------------------------------------------
@dataclass(frozen=True)
class TableRow:
    """One network's recorded results: ``epochs`` (per-epoch metrics, in order) and ``final``;
    ``info``: what it cost as it was recorded (hardware cost, training seconds), for readers of the
    table; a replay recomputes the cost under its own config and does not report these."""

    arch: str
    epochs: list[dict[str, float]]
    final: dict[str, float]
    info: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"arch": self.arch, "epochs": self.epochs, "final": self.final, "info": self.info},
                          sort_keys=True)


def open_table_text(path: str | Path, mode: str = "rt"):
    """A results table's file: gzip-compressed when its name ends in ``.gz``."""
    import gzip

    return gzip.open(path, mode, encoding="utf-8") if str(path).endswith(".gz") else open(path, mode, encoding="utf-8")


def read_table(path: str | Path) -> dict[tuple, TableRow]:
    """A results table (JSON lines, ``.gz`` too) keyed by network signature; ValueError naming the line."""
    import gzip

    rows: dict[tuple, TableRow] = {}
    with open_table_text(path) as f:
        try:
            lines = f.readlines()
        except (gzip.BadGzipFile, EOFError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a results table ({exc})") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                row = TableRow(str(raw["arch"]), [{k: float(v) for k, v in e.items()} for e in raw["epochs"]],
                               {k: float(v) for k, v in raw["final"].items()},
                               {k: float(v) for k, v in raw.get("info", {}).items()})
                rows[network_signature(ArchSpec.from_json(row.arch))] = row
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}:{n}: not a results-table line ({str(exc)[:120]})") from None
    if not rows:
        raise ValueError(f"{path}: the results table is empty")
    return rows


def write_table(out: Path, rows: list[TableRow]) -> None:
    """Rows sorted by architecture; a ``.gz`` is written without a name or timestamp (same rows, same bytes)."""
    write_lines(out, [r.to_json() for r in sorted(rows, key=lambda r: r.arch)])


def write_lines(out: Path, lines: list[str]) -> None:
    """JSON lines to ``out``; a ``.gz`` without a name or timestamp (same lines, same bytes)."""
    import gzip

    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line + "\n" for line in lines)
    if out.suffix == ".gz":
        with open(out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
            f.write(text.encode("utf-8"))
    else:
        out.write_text(text, encoding="utf-8")
