"""The NB201 space and the AnalogNAS-Bench table (a pickle in a pinned registry package, read
with an unpickler that builds only its two record classes)."""
import pickle

import numpy as np
import pytest

from benchmarks.nb201 import N_EDGES, N_OPS, NB201Space, load_analog_nasbench, table_path
from orchestrator.config import SearchConfig
from orchestrator.strategy.searcher import PrescreenSearcher
from tests.crafted import plant_pickle


@pytest.fixture(scope="module")
def table():
    return load_analog_nasbench()


def test_the_table_holds_every_nb201_network_with_plausible_accuracies(table):
    assert len(table) == N_OPS ** N_EDGES == 15625
    assert set(table) == {tuple(int(d) for d in np.base_repr(i, 5).zfill(6)) for i in range(15625)}
    one_day = np.array([r["analog_drift_86400"] for r in table.values()])
    digital = np.array([r["baseline_accuracy"] for r in table.values()])
    # CIFAR-10 accuracy in %: 10 (chance) .. 95; analog after a day below digital on average
    assert 5 < one_day.min() and one_day.max() < 95 and 85 < digital.mean() < 90 and one_day.mean() < digital.mean()


def test_the_table_reader_refuses_any_other_object(tmp_path):
    path, marker = plant_pickle(tmp_path / "data.anb", tmp_path)
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        load_analog_nasbench(path)
    assert not marker.exists()
    assert table_path().name == "data.anb"


def test_the_production_searcher_runs_on_the_nb201_space(table):
    cfg = SearchConfig.from_dict({"name": "nb", "trials": 30, "seed": 1, "objectives": ["dice_1d"],
                                  "prescreen": {"candidates": 4, "min_observations": 5}})
    s = PrescreenSearcher(cfg, space=NB201Space())
    seen = []
    for i in range(30):
        arch = s.space.from_json(s.suggest(f"t{i}")["arch"])
        seen.append(arch)
        s.on_trial_complete(f"t{i}", {"final": True, "dice_1d": table[arch]["analog_drift_86400"] / 100})
    assert len(set(seen)) == 30  # never the same network twice
    assert s.surrogate.ready and s.rejections > 0  # the surrogate ranked candidates
    assert s.space.encode(seen[:2]).shape == (2, 30 + 5 + 180)


def test_the_cell_encoding_by_hand():
    x = NB201Space().encode([(2, 1, 0, 3, 2, 4)])[0]
    onehot, counts, paths = x[:30], x[30:35], x[35:]
    assert list(np.nonzero(onehot)[0]) == [2, 6, 10, 18, 22, 29]  # edge * 5 + op
    assert list(counts) == [1, 1, 2, 1, 1]
    # paths 0->3 (edge 3: op 3), 0->1->3 (ops 2, 2), 0->2->3 (1, 4), 0->1->2->3 (2, 0, 4)
    assert list(np.nonzero(paths)[0]) == [3, 5 + 2 * 5 + 2, 30 + 1 * 5 + 4, 55 + 2 * 25 + 0 * 5 + 4]
