"""The share of the spread between trials that is programming noise (orchestrator.evaluation.ranking_noise)."""
from pathlib import Path

import pytest

from orchestrator.evaluation.ranking_noise import MIN_TRIALS, ranking_noise
from orchestrator.evaluation.tables import read_table

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "nassegnet_bench"


def test_the_share_is_the_mean_squared_standard_error_over_the_variance_of_the_scores():
    metrics = [{"dice_1d": v, "dice_1d_sem": 0.01} for v in (0.80, 0.82, 0.84, 0.86, 0.88)]
    noise = ranking_noise("dice_1d", metrics)
    # variance (ddof 1) of 0.80..0.88 in steps of 0.02 is 0.001; mean sem^2 is 0.0001
    assert noise.trials == 5 and noise.share == pytest.approx(0.1) and not noise.noisy
    assert noise.spread == pytest.approx(0.001 ** 0.5) and noise.standard_error == pytest.approx(0.01)
    assert "raise train.drift_reps" not in noise.advice(2) and "10% of the spread is noise" in noise.advice(2)
    half = ranking_noise("dice_1d", [{**m, "dice_1d_sem": 0.025} for m in metrics])
    assert half.share == pytest.approx(0.625) and half.noisy and half.advice(2).endswith("raise train.drift_reps")
    loud = ranking_noise("dice_1d", [{**m, "dice_1d_sem": 0.04} for m in metrics])
    assert loud.share == 1.0  # clipped: the standard errors exceed the spread


def test_no_reading_without_standard_errors_or_with_too_few_trials():
    assert ranking_noise("dice_digital", [{"dice_digital": 0.9}] * 10) is None
    assert ranking_noise("dice_1d", [{"dice_1d": 0.9, "dice_1d_sem": 0.01}] * (MIN_TRIALS - 1)) is None
    one_draw = [{"dice_1d": 0.8 + i / 100, "dice_1d_sem": 0.0} for i in range(10)]  # drift_reps 1: no estimate
    assert ranking_noise("dice_1d", one_draw) is None


@pytest.mark.parametrize("table, objective, noisy", [
    ("brightfield", "dice_1y", True), ("brightfield", "dice_1d", True),
    ("table", "dice_1y", False), ("table", "dice_1d", False)])
def test_the_committed_tables_read_as_measured(table, objective, noisy):
    # brightfield at 2 programming draws: the spread at 1 day / 1 year is programming noise;
    # fluorescence: a few per cent of it (benchmarks/RESULTS.md, "Where the spread comes from")
    rows = read_table(BENCH / f"{table}.jsonl.gz").values()
    noise = ranking_noise(objective, [r.final for r in rows])
    assert noise.noisy is noisy and (noise.share > 0.7 if noisy else noise.share < 0.15), noise
