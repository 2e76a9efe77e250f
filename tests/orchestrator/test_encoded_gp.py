"""The gp sampler: Bayesian optimisation over the space's encoding (orchestrator.strategy.gp)."""

import numpy as np
import pytest
from optuna.trial import TrialState

from benchmarks.nb201 import NB201Space
from orchestrator.config import ConfigError, SearchConfig
from orchestrator.strategy.gp import MutatedChoices, scalarise
from orchestrator.strategy.proposals import Proposals
from orchestrator.strategy.searcher import PrescreenSearcher
from search_spaces import ArchSpec, hardware_cost
from search_spaces.interface import NASSegSpace
from tests.orchestrator.test_prescreen import Recorder

TARGET = (1, 3, 0, 2, 4, 1)


def matches(arch) -> float:
    """A smooth NB201 objective: how many edges carry the target operation (6 at the optimum)."""
    return float(sum(a == b for a, b in zip(arch, TARGET)))


def test_mutations_keep_the_parent_but_for_about_one_question():
    space, rng = NB201Space(), np.random.default_rng(0)
    parent = space.params(TARGET)
    assert space.suggest(MutatedChoices(parent, rng, 0.0)) == TARGET
    changed = [sum(a != b for a, b in zip(space.suggest(MutatedChoices(parent, rng, 1 / 6)), TARGET))
               for _ in range(600)]
    # each edge redrawn with probability 1/6, and a redraw keeps the operation 1 time in 5
    assert np.mean(changed) == pytest.approx(6 * (1 / 6) * (4 / 5), abs=0.1)
    # a conditional space: the questions the parent was never asked (deeper stages) are drawn
    small = ArchSpec.from_params({**NASSegSpace().params(NASSegSpace().random(rng)), "M": 1})
    grown = [NASSegSpace().suggest(MutatedChoices({**NASSegSpace().params(small)}, rng, 0.5)) for _ in range(50)]
    assert {g.M for g in grown} > {1}


def test_scalarisation_prefers_a_dominating_trial_under_any_weights():
    values = np.array([[0.9, 10.0], [0.5, 30.0], [0.7, 5.0], [0.9, 5.0]])  # max Dice, min tiles
    for seed in range(20):
        s = scalarise(values, ["maximize", "minimize"], np.random.default_rng(seed))
        assert np.argmax(s) == 3 and s[3] > max(s[0], s[2]) > s[1] - 1e-12
    one = scalarise(np.array([[3.0], [1.0]]), ["minimize"], np.random.default_rng(0))
    assert list(one) == [-3.0, -1.0]


def run(sampler: str, seed: int, budget: int = 30) -> float:
    """Best score found within ``budget`` proposals on ``matches`` (no repeats)."""
    p = Proposals(NB201Space(), ["maximize"], seed=seed, trials=budget, sampler=sampler)
    best, seen = 0.0, set()
    for i in range(budget):
        arch = p.ask(f"c{i}")
        while arch in seen:  # as the searcher does: a repeat is replaced by a random draw
            p.tell(f"c{i}", state=TrialState.FAIL)
            arch = p.ask_for(f"c{i}", NB201Space().random(np.random.default_rng([seed, i, len(seen)])))
        seen.add(arch)
        p.tell(f"c{i}", [matches(arch)])
        best = max(best, matches(arch))
    return best


def test_gp_finds_the_optimum_of_a_smooth_cell_objective_where_random_search_does_not():
    # 15,625 cells, one optimum; random search finds it within 30 draws with probability ~0.2 %
    gp = [run("gp", seed) for seed in range(3)]
    rnd = [_random_best(seed) for seed in range(3)]
    assert min(gp) == 6.0, gp
    assert max(rnd) < 6.0 and np.mean(gp) > np.mean(rnd) + 1.5, (gp, rnd)


def _random_best(seed: int, budget: int = 30) -> float:
    rng = np.random.default_rng(seed)
    return max(matches(NB201Space().random(rng)) for _ in range(budget))


def test_gp_proposals_depend_on_seed_and_history_only_and_survive_a_resume(tmp_path):
    cfg = SearchConfig.from_dict({"name": "t", "trials": 12, "objectives": ["dice_1d", "tiles"], "sampler": "gp",
                                  "prescreen": {"candidates": 2, "min_observations": 3}})
    s = PrescreenSearcher(cfg)
    for i in range(6):
        spec = ArchSpec.from_json(s.suggest(f"t{i}")["arch"])
        s.on_trial_complete(f"t{i}", {"final": True, "dice_1d": 0.5 + 0.02 * spec.out_channel0, "tiles": hardware_cost(spec).tiles})
    s.save(str(tmp_path / "state.json"))
    restored = PrescreenSearcher(cfg)
    restored.restore(str(tmp_path / "state.json"))
    assert restored.proposals.sampler == "gp"
    nxt = [s.suggest(f"t{i}")["arch"] for i in range(6, 9)]
    assert [restored.suggest(f"t{i}")["arch"] for i in range(6, 9)] == nxt
    assert len({ArchSpec.from_json(a).to_json() for a in nxt}) == 3  # valid, distinct networks


def test_an_unknown_sampler_is_a_config_error():
    with pytest.raises(ConfigError, match="sampler: 'cmaes' is not one of tpe, gp"):
        SearchConfig.from_dict({"sampler": "cmaes"})


def test_gp_never_proposes_a_network_that_breaks_the_constraints():
    cfg = SearchConfig.from_dict({"name": "t", "trials": 12, "objectives": ["dice_1d"], "sampler": "gp",
                                  "constraints": {"max_tiles": 12}, "prescreen": {"candidates": 1}})
    recorder = Recorder()
    heard = recorder.rejections
    s = PrescreenSearcher(cfg, listeners=[recorder])
    startup = []
    for i in range(12):
        spec = ArchSpec.from_json(s.suggest(f"t{i}")["arch"])
        assert hardware_cost(spec).tiles <= 12
        s.on_trial_complete(f"t{i}", {"final": True, "dice_1d": 0.5 + 0.02 * spec.out_channel0})
        if i == 3:  # the 4 startup trials are uniform draws: some of them break the constraint
            startup = list(heard)
    assert startup and all(r.reason.startswith("constraint:") for r in startup)
    assert len(heard) == len(startup)  # after them, the GP's pool holds feasible networks only


def test_the_gp_is_the_studys_sampler_set_once_and_enqueued_networks_skip_it(monkeypatch):
    from orchestrator.strategy.samplers import EncodedGPSampler

    space = NB201Space()
    p = Proposals(space, ["maximize"], seed=0, trials=30, sampler="gp")
    sampler = p.study.sampler
    assert isinstance(sampler, EncodedGPSampler)
    chosen = []
    original = EncodedGPSampler.choose
    monkeypatch.setattr(EncodedGPSampler, "choose",
                        lambda self, study, number, rng: chosen.append(number) or original(self, study, number, rng))
    rng = np.random.default_rng(1)
    warm = [space.random(rng) for _ in range(12)]
    p.add_warm_start(warm, [[matches(a)] for a in warm])
    assert chosen == []  # a warm start's networks are Optuna's fixed parameters: the GP is not asked
    for i in range(5):
        arch = p.ask(f"c{i}")
        p.tell(f"c{i}", [matches(arch)])
    p.ask_for("r", space.random(rng))  # a redraw: fixed parameters too
    assert chosen == list(range(12, 17)) and p.study.sampler is sampler
