"""Results tables: JSON lines, gzip-compressed when the name ends in .gz, with an info part."""
import gzip

import pytest

from orchestrator.evaluation.tables import TableRow, read_table, write_table
from search_spaces import ArchSpec, network_signature


def rows():
    specs = [ArchSpec(), ArchSpec(out_channel0=8), ArchSpec(skip="add")]
    return [TableRow(s.to_json(), [{"val_dice_1d": 0.5}], {"dice_1d": 0.8 - i / 10}, {"tiles": 6.0 + i,
            "trial_time_s": 30.0}) for i, s in enumerate(specs)]


def test_a_gzipped_table_round_trips_sorted_and_byte_stable(tmp_path):
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_table(a, rows())
    write_table(b, list(reversed(rows())))
    assert a.read_bytes() == b.read_bytes()  # no timestamp, rows sorted: the same rows, the same file
    lines = gzip.decompress(a.read_bytes()).decode().splitlines()
    assert lines == sorted(lines) and len(lines) == 3
    back = read_table(a)
    row = back[network_signature(ArchSpec(skip="add"))]
    assert row.final == {"dice_1d": pytest.approx(0.6)} and row.info == {"tiles": 8.0, "trial_time_s": 30.0}
    plain = tmp_path / "a.jsonl"
    write_table(plain, rows())
    assert read_table(plain) == back


def test_a_truncated_gzip_table_is_refused_in_one_line(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    write_table(path, rows())
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(ValueError, match=r"t.jsonl.gz: not a results table"):
        read_table(path)
