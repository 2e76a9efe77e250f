"""One-question neighbours (local search and evolution move along them)."""
import numpy as np

from benchmarks.nb201 import NB201Space
from orchestrator.config import SearchConfig
from search_spaces.neighbours import contains, neighbours


def test_an_nb201_cell_has_24_neighbours_each_one_edge_away():
    arch = (0, 1, 2, 3, 4, 0)
    near = neighbours(NB201Space(), arch)
    assert len(near) == 6 * 4 and len(set(near)) == 24
    assert all(sum(a != b for a, b in zip(arch, n)) == 1 for n in near)


def test_a_nassegnet_neighbour_answers_one_question_differently():
    space = SearchConfig.from_dict({"name": "x"}).nasseg_space()
    rng = np.random.default_rng(3)
    for _ in range(20):
        arch = space.random(rng)
        params = space.params(arch)
        near = neighbours(space, arch)
        assert near and len({space.signature(n) for n in near}) == len(near)
        assert space.signature(arch) not in {space.signature(n) for n in near}
        for n in near:
            other = space.params(n)
            changed = [k for k in params if k in other and params[k] != other[k]]
            # one shared question answered differently, or depth M changed (stages added/dropped)
            assert len(changed) == 1 and (changed[0] != "M" or set(other) != set(params)), (params, other)
        # every alternative of every question of arch is reached (here: bounds of the default preset)
        assert sum(1 for n in near if n.skip != arch.skip) == 1


def test_a_space_contains_its_networks_and_not_others():
    from search_spaces import ArchSpec

    space = SearchConfig.from_dict({"name": "x", "bounds": {"M": [1, 2], "up": ["resize"]}}).nasseg_space()
    rng = np.random.default_rng(0)
    assert all(contains(space, space.random(rng)) for _ in range(50))
    assert not contains(space, ArchSpec(M=3, R3=1, B3=1, convblock3=1, widenfact3=0.5, up3="resize"))  # too deep
    assert not contains(space, ArchSpec(up1="transpose"))  # an up-sampling the bounds leave out
    assert not contains(space, ArchSpec(out_channel0=32))
