"""``nasseg export-table NAME OUT.jsonl``: a finished search's trials as a results table.

One line per trained or stopped trial (see ``evaluation.TableRow``): the spec, its per-epoch
metrics as logged, its final metrics (drift scores), and as ``info`` its hardware cost and
training seconds (a replay recomputes the cost under its own config). A name ending in ``.gz``
is written compressed. ``evaluator: table:OUT.jsonl`` then replays searches on it in seconds.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.evaluation.tables import TableRow, write_table
from orchestrator.tracking.tracker import STAGE, Tracker, is_epoch_metric
from search_spaces import ArchSpec

#: kept as the row's ``info``: what the network cost as recorded (a replay recomputes the cost)
INFO = ("params", "analog_params", "digital_params", "peripheral_params", "tiles", "macs_per_px",
        "analog_mac_fraction", "trial_time_s")
#: bookkeeping, in neither part
_BOOKKEEPING = ("started_at", "surrogate_predicted")


def as_row(arch: str, epochs: list[dict[str, float]], metrics: dict[str, float]) -> TableRow:
    """A table row from a trial's final metrics: results in ``final``, cost and seconds in ``info``."""
    final = {k: v for k, v in metrics.items() if k not in INFO and k not in _BOOKKEEPING and not is_epoch_metric(k)}
    return TableRow(arch, epochs, final, {k: metrics[k] for k in INFO if k in metrics})


def export_table(tracker: Tracker, out: Path) -> int:
    """Write the table; returns the number of rows."""
    client = tracker.client
    runs = client.search_runs([tracker.experiment_id], max_results=10000,
                              filter_string=f"tags.`nasseg.role` = 'trial' and tags.`{STAGE}` != 'prescreened'")
    rows = []
    for run in runs:
        if run.data.tags.get(STAGE) not in ("trained", "stopped"):
            continue
        history = {m: client.get_metric_history(run.info.run_id, m) for m in run.data.metrics if is_epoch_metric(m)}
        steps = sorted({h.step for hs in history.values() for h in hs})
        epochs = [{m: next(h.value for h in hs if h.step == step) for m, hs in history.items()
                   if any(h.step == step for h in hs)} for step in steps]
        spec = ArchSpec.from_params(run.data.params, prefix="arch.")
        rows.append(as_row(spec.to_json(), epochs, run.data.metrics))
    write_table(out, rows)
    return len(rows)


