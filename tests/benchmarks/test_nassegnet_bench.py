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


def test_the_variance_shares_recover_architecture_seed_and_programming_noise():
    # simulated tables: each network's score = architecture + training-seed noise + the mean of 2
    # programming draws (with its standard error, as drift_evaluation writes it)
    from types import SimpleNamespace

    from analyse import variance_shares

    rng = np.random.default_rng(1)
    arch_sd, seed_sd, draw_sd, n = 0.03, 0.02, 0.05, 20000
    arch = rng.normal(0.85, arch_sd, n)

    def table():
        rows = {}
        for i in range(n):
            draws = arch[i] + rng.normal(0, seed_sd) + rng.normal(0, draw_sd, 2)
            rows[i] = SimpleNamespace(final={"dice_1y": draws.mean(), "dice_1y_sem": draws.std(ddof=1) / np.sqrt(2)})
        return rows

    shares = variance_shares(table(), table(), "dice_1y")
    total = arch_sd**2 + seed_sd**2 + draw_sd**2 / 2
    assert shares["networks"] == n and shares["sd"] == pytest.approx(np.sqrt(total), rel=0.03)
    assert shares["architecture"] == pytest.approx(arch_sd**2 / total, abs=0.03)
    assert shares["training_seed"] == pytest.approx(seed_sd**2 / total, abs=0.03)
    assert shares["programming"] == pytest.approx(draw_sd**2 / 2 / total, abs=0.03)
    assert variance_shares({1: None}, {1: None}, "dice_1y") is None  # fewer than 10 networks


def test_each_table_records_the_environment_that_made_it_once(tmp_path):
    import json

    from generate import environment, record_environment

    path = tmp_path / "environment.json"
    record_environment("seed1", path)
    record_environment("seed1", path)  # a second chunk in the same environment adds nothing
    record_environment("steps4x", path)
    records = json.loads(path.read_text())
    assert records == {"seed1": [environment()], "steps4x": [environment()]}
    assert records["seed1"][0]["packages"]["torch"].startswith("2.13.0") and records["seed1"][0]["python"].startswith("3.11")
