"""Results tables for replayed searches (``evaluator: table:PATH``): a small space enumerated and
scored by a fixed, made-up function of the architecture (test data, not a claim about networks)."""
import hashlib
import math

from orchestrator.evaluation.tables import TableRow
from search_spaces import SpaceBounds, enumerate_specs, hardware_cost, network_signature

#: 736 distinct networks (1152 specs): small enough to enumerate, big enough to search
SMALL = {"out_channel0": [8, 16], "k0": [3], "M": [1, 2], "R": [1, 1], "B": [1, 2], "convblock": [1],
         "widenfact": [0.5, 0.6], "widenfact_step": 0.1, "up": ["resize", "transpose"], "dec_width": [0.5, 1.0],
         "dec_blocks": [1, 2], "skip": ["add", "concat"]}
#: two networks only (dec_blocks 1 or 2)
TINY = {"out_channel0": [8], "k0": [3], "M": [1, 1], "R": [1, 1], "B": [1, 1], "convblock": [1],
        "widenfact": [0.5, 0.5], "up": ["resize"], "dec_width": [1.0], "dec_blocks": [1, 2], "skip": ["concat"]}


def made_up_score(spec) -> float:
    cost = hardware_cost(spec)
    jitter = int(hashlib.sha1(repr(network_signature(spec)).encode()).hexdigest()[:6], 16) / 0xFFFFFF
    return 0.45 + 0.08 * math.log10(cost.params) - 0.004 * cost.tiles + 0.05 * jitter


def write_table(path, bounds: dict, epochs: int = 4, skip_every: int = 0) -> int:
    """One row per distinct network; ``skip_every`` > 0 leaves every n-th out (its trials fail)."""
    rows, seen = [], set()
    for spec in enumerate_specs(SpaceBounds.from_dict(bounds)):
        sig = network_signature(spec)
        if sig in seen:
            continue
        seen.add(sig)
        if skip_every and len(seen) % skip_every == 0:
            continue
        final = made_up_score(spec)
        curve = [{"val_dice": final * (1 - 0.5 ** (e + 1)) + 0.01, "val_dice_1d": final * (1 - 0.5 ** (e + 1)),
                  "loss": 1.0 / (e + 1)} for e in range(epochs)]
        drift = {"dice_digital": final + 0.02, "dice_1s": final + 0.01, "dice_1d": final, "dice_1d_std": 0.01,
                 "dice_1s_std": 0.01, "dice_drop_1d": 0.02}
        rows.append(TableRow(spec.to_json(), curve, drift).to_json())
    path.write_text("\n".join(rows) + "\n")
    return len(rows)
