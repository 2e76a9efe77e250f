import optuna
from scipy.stats import kendalltau

from orchestrator.strategy.pareto import pareto_mask
from orchestrator.strategy.surrogate import Surrogate
from search_spaces import PRESETS, hardware_cost, suggest


def specs(n, seed):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        t = study.ask()
        out.append(suggest(t, PRESETS["default"]))
        study.tell(t, 0.0)
    return out


def score(spec):
    c = hardware_cost(spec)
    return 0.9 - 0.002 * c.tiles + 0.01 * spec.M


def test_surrogate_learns_a_ranking_on_unseen_specs(tmp_path):
    s = Surrogate("dice_1d", min_observations=4)
    assert not s.ready
    for spec in specs(40, seed=0):
        s.observe(spec, score(spec))
    online = s.kendall_tau()  # each prediction made before that trial was observed, from 4 points on
    assert online is not None and online > 0.3, online  # measured 0.43
    held_out = specs(40, seed=5)
    tau = kendalltau(s.predict(held_out), [score(x) for x in held_out]).statistic
    assert tau > 0.6, tau  # measured after 40 observations: see note in the issue
    saved = Surrogate.load(s.save(tmp_path / "s.json"))
    probe = specs(5, seed=9)
    assert (saved.predict(probe) == s.predict(probe)).all()


def test_pareto_mask():
    pts = [[0.9, 10], [0.8, 5], [0.7, 20], [0.9, 12], [0.85, 5]]
    assert pareto_mask(pts, ["max", "min"]) == [True, False, False, False, True]
