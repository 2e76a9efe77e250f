"""bench_input_polarity's summary (the training itself runs only in the benchmark)."""
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.bench_input_polarity import results_text, summary


def test_the_summary_pairs_each_network_with_its_reference_row():
    rng = np.random.default_rng(0)
    reference, rows = {}, []
    for i in range(20):  # inverted: 3 points better at 1 year and half the spread between draws, every network
        base = {"dice_digital": 0.93, "dice_1s": 0.91, "dice_1y": 0.80 + rng.normal(0, 0.02), "dice_1y_std": 0.10}
        reference[f"a{i}"] = SimpleNamespace(final=base)
        rows.append({"arch": f"a{i}", "inverted": {**base, "dice_1y": base["dice_1y"] + 0.03, "dice_1y_std": 0.05,
                                                  "dice_digital": 0.92 + rng.normal(0, 0.001)}})
    s = summary(rows, reference)
    assert s["networks"] == 20 and s["inverted_better_1y"] == 20
    assert s["inverted"]["loss_1s_1y"]["median"] == pytest.approx(s["as is"]["loss_1s_1y"]["median"] - 0.03)
    assert s["wilcoxon_p"]["dice_1y"] < 0.001 and s["wilcoxon_p"]["dice_1y_std"] < 0.001
    text = results_text([("Decide", s)])
    assert "Inverted scores higher at 1 year on 20 of 20 networks" in text and "| inverted | 0.920" in text
