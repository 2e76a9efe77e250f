"""NASSegNet-Bench's analysis helpers (the tables' generation never runs in tests)."""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "nassegnet_bench"))

from bench_surrogate import perfect_predictor_tau  # noqa: E402


@pytest.mark.parametrize("noise", [0.5, 1.0, 2.0])
def test_the_surrogate_ceiling_is_what_a_perfect_predictor_reaches_against_one_noisy_seed(noise):
    # scores = expected score + training noise; two seeds give the seed-to-seed tau, and the formula
    # must predict the tau of the expected score itself against one seed (measured here directly)
    rng = np.random.default_rng(0)
    expected = rng.normal(size=20000)
    seed0, seed1 = expected + noise * rng.normal(size=20000), expected + noise * rng.normal(size=20000)
    seeds_tau = kendalltau(seed0, seed1).statistic
    assert perfect_predictor_tau(seeds_tau) == pytest.approx(kendalltau(expected, seed0).statistic, abs=0.015)
    assert perfect_predictor_tau(seeds_tau) > seeds_tau  # the expected score ranks better than a second seed


def test_the_ceiling_is_zero_without_agreement_and_one_without_noise():
    assert perfect_predictor_tau(-0.1) == 0.0 and perfect_predictor_tau(0.0) == 0.0
    assert perfect_predictor_tau(1.0) == pytest.approx(1.0)
