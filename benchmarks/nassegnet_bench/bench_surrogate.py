"""Does a surrogate fitted on NASSegNet-Bench rank networks from a search's first trial?

The prescreening surrogate (``orchestrator.strategy.surrogate.Surrogate``: XGBoost on the space's encoding)
is measured two ways, Kendall tau of its predictions against the measured scores of networks it
was not fitted on:

1. **held out within the table**: 5-fold cross-validation over the fluorescence table;
2. **on other data**: the ``brightfield`` table (and ``brightfield_reps8``, the first 56 of its networks
   trained again with the same seed and drift-evaluated over 8 programming draws instead of 2) (the
   same architectures trained on
   ``synthetic-brightfield``). A search on brightfield data sees ``own`` = 0, 10 or 30 of its own
   results (random networks of the brightfield table); the surrogate is fitted on those alone
   (``cold``) or on the fluorescence table plus those (``warm``, what ``warm_start:
   table:benchmarks/nassegnet_bench/table.jsonl.gz`` gives), and ranks the rest of the brightfield
   table. 20 random draws of the own results; median [q25, q75].

And what any surrogate could reach: Kendall tau between two training seeds of the same networks on
each data kind (``seed1`` beside ``table``, ``brightfield_seed1`` beside ``brightfield``; 90 %
bootstrap interval over networks), and from it the tau of a perfect predictor of each network's
expected score against one seed's results. With score = expected score + training noise, two seeds
correlate with rho_ss = var(expected) / var(score) and a perfect predictor with sqrt(rho_ss)
(Spearman's correction for attenuation); for normal scores rho = sin(pi tau / 2) (Greiner), so
the ceiling is tau_max = (2 / pi) arcsin(sqrt(sin(pi tau_ss / 2))), 0 when tau_ss <= 0.

    .venv/bin/python benchmarks/nassegnet_bench/bench_surrogate.py [--metric dice_1d] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

OWN = (0, 10, 30)
DRAWS = 20


def fit(space, archs: list, scores: list[float], metric: str):
    from orchestrator.strategy.surrogate import Surrogate

    s = Surrogate(metric, min_observations=2, space=space)
    s.observe_many(archs, scores)
    return s


def tau(surrogate, archs: list, measured: list[float]) -> float:
    return float(kendalltau(surrogate.predict(archs), measured).statistic)


def held_out(space, rows: list, metric: str, folds: int = 5) -> dict:
    from analyse import quartiles

    from search_spaces import ArchSpec

    order = np.random.default_rng(0).permutation(len(rows))
    taus = []
    for k in range(folds):
        test = set(order[k::folds].tolist())
        train = [rows[i] for i in range(len(rows)) if i not in test]
        held = [rows[i] for i in sorted(test)]
        s = fit(space, [ArchSpec.from_json(r.arch) for r in train], [r.final[metric] for r in train], metric)
        taus.append(tau(s, [ArchSpec.from_json(r.arch) for r in held], [r.final[metric] for r in held]))
    return {"folds": folds, "networks": len(rows), "tau": quartiles(taus)}


def transfer(space, table: dict, other: dict, metric: str) -> dict:
    from analyse import quartiles

    from search_spaces import ArchSpec

    warm_archs = [ArchSpec.from_json(r.arch) for r in table.values()]
    warm_scores = [r.final[metric] for r in table.values()]
    rows = list(other.values())
    common = [s for s in other if s in table]
    out = {"networks": len(rows), "same_networks_spearman": float(spearmanr(
        [table[s].final[metric] for s in common], [other[s].final[metric] for s in common])[0]) if len(common) > 2
        else None, "same_networks": len(common)}
    for own in OWN:
        cold, warm = [], []
        for draw in range(DRAWS):
            order = np.random.default_rng([draw, own]).permutation(len(rows))
            mine, rest = [rows[i] for i in order[:own]], [rows[i] for i in order[own:]]
            rest_archs, rest_scores = [ArchSpec.from_json(r.arch) for r in rest], [r.final[metric] for r in rest]
            mine_archs, mine_scores = [ArchSpec.from_json(r.arch) for r in mine], [r.final[metric] for r in mine]
            if own:
                cold.append(tau(fit(space, mine_archs, mine_scores, metric), rest_archs, rest_scores))
            warm.append(tau(fit(space, warm_archs + mine_archs, warm_scores + mine_scores, metric),
                            rest_archs, rest_scores))
        out[f"own_{own}"] = {"cold": quartiles(cold) if cold else None, "warm": quartiles(warm)}
    return out


def seed_ceiling(first: dict, second: dict, metric: str, draws: int = 2000) -> dict | None:
    """Kendall tau between two training seeds' scores of the networks both tables hold, with a 90 %
    bootstrap interval over networks (None below 10 common networks)."""
    from analyse import paired

    a, b = paired(first, second, metric)
    if len(a) < 10:
        return None
    rng = np.random.default_rng(0)
    boot = [kendalltau(a[i], b[i]).statistic for i in rng.integers(0, len(a), (draws, len(a)))]
    lo, hi = np.nanquantile(boot, [0.05, 0.95])
    t = float(kendalltau(a, b).statistic)
    return {"tau": t, "lo": float(lo), "hi": float(hi), "networks": int(len(a)),
            "ceiling": [perfect_predictor_tau(x) for x in (t, lo, hi)]}


def perfect_predictor_tau(seed_tau: float) -> float:
    """The Kendall tau a perfect predictor of the expected score reaches against one seed's scores,
    given the tau between two seeds (module docstring; 0 when the seeds do not agree at all)."""
    from analyse import tau_of_reliability

    # the two seeds' Pearson correlation (Greiner) is the share of the variance that is not noise
    return tau_of_reliability(float(np.sin(np.pi * seed_tau / 2))) if seed_tau > 0 else 0.0


def results_text(out: dict) -> str:
    from analyse import q

    h = out["held_out"]
    lines = [f"## NASSegNet-Bench: the surrogate from the first trial (`{out['metric']}`)", "",
             f"Kendall tau of the prescreening surrogate (XGBoost on the space's encoding) on networks it was not "
             f"fitted on, metric `{out['metric']}`. Held out within the fluorescence table (5-fold, "
             f"{h['networks']} networks): {q(h['tau'], 2)}."]
    for key, what in (("transfer", "the brightfield table ({n} networks trained on `synthetic-brightfield`, "
                                     "2 programming draws each"),
                      ("transfer_reps8", "`brightfield_reps8` (the first {n} of them trained again with the same "
                                         "seed, 8 programming draws each")):
        t = out.get(key)
        if not t:
            continue
        lines += ["", f"On {what.format(n=t['networks'])}; the same networks' fluorescence and brightfield scores "
                  f"have Spearman {t['same_networks_spearman']:.2f} over {t['same_networks']}), with `own` results "
                  f"of the search itself, {DRAWS} draws:", "", "| own results | cold (own only) | warm (table + own) |",
                  "|---|---|---|"]
        for own in OWN:
            e = t[f"own_{own}"]
            lines.append(f"| {own} | {q(e['cold'], 2) if e['cold'] else 'no ranking (nothing to fit)'} | "
                         f"{q(e['warm'], 2)} |")
    ceilings = [(kind, c) for kind, c in out.get("seed_ceiling", {}).items() if c]
    if ceilings:
        lines += ["", "What any surrogate could reach: Kendall tau between two training seeds of the same networks "
                  "(seed 0 vs seed 1, 90 % bootstrap interval over networks), and the tau a perfect predictor of "
                  "each network's expected score would reach against seed 0 (`bench_surrogate.py` docstring): "
                  + "; ".join(f"{kind}: seeds {c['tau']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}] over {c['networks']}, "
                              f"ceiling {c['ceiling'][0]:.2f} [{c['ceiling'][1]:.2f}, {c['ceiling'][2]:.2f}]"
                              for kind, c in ceilings) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    import yaml
    from analyse import load

    from orchestrator.config import SearchConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metric", default="dice_1d")
    ap.add_argument("--write", action="store_true", help="the section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    space = SearchConfig.from_dict(yaml.safe_load((HERE / "table.yaml").read_text())).nasseg_space()
    table, bright = load("table"), load("brightfield")
    if len(table) < 20:
        sys.exit("bench_surrogate: the table holds fewer than 20 networks")
    out = {"metric": args.metric, "held_out": held_out(space, list(table.values()), args.metric)}
    if len(bright) >= 40:
        out["transfer"] = transfer(space, table, bright, args.metric)
    bright8 = load("brightfield_reps8")
    if len(bright8) >= 40:  # the same question against scores averaged over 8 programming draws
        out["transfer_reps8"] = transfer(space, table, bright8, args.metric)
    out["seed_ceiling"] = {"fluorescence": seed_ceiling(table, load("seed1"), args.metric),
                           "brightfield": seed_ceiling(bright, load("brightfield_seed1"), args.metric)}
    (HERE / f"surrogate_{args.metric}.json").write_text(json.dumps(out, indent=1))
    text = results_text(out)
    print(text)
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", f"nassegnet_bench_surrogate_{args.metric}", text)


if __name__ == "__main__":
    main()
