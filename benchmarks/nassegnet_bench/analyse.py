"""What NASSegNet-Bench says: the table's spread, the noise floor, the demo budget's ranking for
longer training, and the best searched network against the plain U-Net, per tile budget.

Reads whatever tables exist under ``benchmarks/nassegnet_bench/`` (a partial table too: the
numbers say how many networks they rest on), writes ``summary.json``, the plot
``nassegnet_bench.png`` and, with ``--write``, the section ``nassegnet_bench`` of
``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/nassegnet_bench/analyse.py --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

TIMES = ("1s", "1d", "1y")
SCORES = ("dice", "ap50", "map_dsb", "f1_inst")


def quartiles(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "q25": float(np.percentile(v, 25)), "q75": float(np.percentile(v, 75)),
            "n": int(v.size)}


def q(d: dict, digits: int = 3) -> str:
    return f"{d['median']:.{digits}f} [{d['q25']:.{digits}f}, {d['q75']:.{digits}f}]"


def load(variant: str) -> dict:
    from generate import table_path

    from orchestrator.evaluation.tables import read_table

    path = table_path(variant)
    return read_table(path) if path.exists() else {}


def paired(a: dict, b: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    common = [sig for sig in a if sig in b]
    return (np.array([a[s].final[metric] for s in common]), np.array([b[s].final[metric] for s in common]))


def table_summary(table: dict) -> dict:
    rows = list(table.values())
    out = {"networks": len(rows), "cpu_hours": sum(r.info.get("trial_time_s", 0) for r in rows) / 3600,
           "seconds_per_network": quartiles([r.info.get("trial_time_s", np.nan) for r in rows])}
    for score in SCORES:
        for t in TIMES:
            out[f"{score}_{t}"] = {**quartiles([r.final[f"{score}_{t}"] for r in rows]),
                                   "best": max(r.final[f"{score}_{t}"] for r in rows)}
    out["dice_loss_1s_1y"] = quartiles([r.final["dice_1s"] - r.final["dice_1y"] for r in rows])
    out["dice_digital_minus_1y"] = quartiles([r.final["dice_digital"] - r.final["dice_1y"] for r in rows])
    out["spearman_dice_1d_vs_1y"] = float(spearmanr(*[[r.final[m] for r in rows] for m in ("dice_1d", "dice_1y")])[0])
    return out


def compare_runs(table: dict, other: dict) -> dict:
    """The same networks trained twice (another seed: the noise floor; 4x the steps: does the demo
    budget rank for longer training?), per metric: how far apart, and how alike the rankings."""
    out = {}
    for metric in ("dice_1d", "dice_1y", "ap50_1y"):
        a, b = paired(table, other, metric)
        if a.size < 3:
            return {}
        top = max(1, a.size // 10)
        out[metric] = {"networks": int(a.size), "abs_diff": quartiles(np.abs(a - b)),
                       "p90_abs_diff": float(np.percentile(np.abs(a - b), 90)), "spearman": float(spearmanr(a, b)[0]),
                       "gain": quartiles(b - a),
                       "top10pct_overlap": len(set(np.argsort(-a)[:top]) & set(np.argsort(-b)[:top])) / top}
    return out


SHARE_METRICS = ("dice_digital", "dice_1s", "dice_1d", "dice_1y")


def tau_of_reliability(reliability: float) -> float:
    """The Kendall tau between a score and its noise-free part when that part holds ``reliability``
    of the score's variance: Pearson correlation sqrt(reliability) (Spearman's attenuation), tau
    by Greiner's relation for normal scores, (2 / pi) arcsin(rho); 0 without reliability."""
    return float(2 / np.pi * np.arcsin(np.sqrt(reliability))) if reliability > 0 else 0.0


def variance_shares(first: dict, second: dict, metric: str) -> dict | None:
    """Where the spread of ``first``'s score over networks comes from, measured against a second
    training seed of the same networks (``second``; each score a mean over programming draws, with
    its ``_sem``; the two may use different numbers of draws): the architecture, the training
    seed, and the programming draws. With score = architecture + seed noise + programming noise
    (independent), var(first - second) = 2 var(seed) + sem_first^2 + sem_second^2, so
    var(seed) = (var(diff) - mean(sem_first^2 + sem_second^2)) / 2, programming = mean(sem_first^2),
    and the architecture's share is what is left of var(first). Shares are of var(first)
    (estimates, clipped to [0, 1]). The architecture's share is the ranking signal a search or
    surrogate can find in one such run; ``ceiling_tau`` is the Kendall tau a perfect predictor of
    the architecture's part reaches against ``first`` (correlation sqrt(share), tau by Greiner's
    relation for normal scores). None below 10 networks."""
    common = [sig for sig in first if sig in second]
    if len(common) < 10:
        return None
    x, y = (np.array([t[sig].final[metric] for sig in common]) for t in (first, second))
    sem_x2, sem_y2 = (np.array([t[sig].final.get(f"{metric}_sem", 0.0) ** 2 for sig in common]) for t in (first, second))
    total = np.var(x, ddof=1)
    seed = max((np.var(x - y, ddof=1) - (sem_x2 + sem_y2).mean()) / 2, 0.0)
    programming = sem_x2.mean()
    clip = lambda v: float(min(max(v / total, 0.0), 1.0)) if total > 0 else 0.0  # noqa: E731
    arch = clip(total - seed - programming)
    return {"networks": len(common), "sd": float(np.sqrt(total)), "architecture": arch,
            "training_seed": clip(seed), "programming": clip(programming),
            "ceiling_tau": tau_of_reliability(arch)}


def unet_rows(variant: str = "unet") -> list[dict]:
    from generate import read_unet_rows, table_path

    return read_unet_rows(table_path(variant))


def versus_unet(table: dict, unets: list[dict]) -> list[dict]:
    """Each U-Net (mean over its seeds) against the best table network with at most its tiles,
    chosen by the metric at that time (what a search for that horizon would pick)."""
    groups: dict[tuple, list[dict]] = {}
    for r in unets:
        groups.setdefault((r["network"]["width"], r["network"]["upsample"]), []).append(r)
    rows = list(table.values())
    out = []
    for (width, upsample), runs in sorted(groups.items()):
        tiles = runs[0]["info"]["tiles"]
        within = [r for r in rows if r.info["tiles"] <= tiles]
        entry = {"unet": f"BasicUNet w{width} {upsample}", "tiles": tiles, "params": runs[0]["info"]["params"],
                 "seeds": len(runs), "table_networks_within": len(within)}
        for t in TIMES:
            m = f"dice_{t}"
            unet = float(np.mean([r["final"][m] for r in runs]))
            best = max(within, key=lambda r: r.final[m]) if within else None
            entry[m] = {"unet": unet, "unet_seeds": [r["final"][m] for r in runs],
                        "best_table": best.final[m] if best else None,
                        "best_table_tiles": best.info["tiles"] if best else None,
                        "margin": (best.final[m] - unet) if best else None}
            a = f"ap50_{t}"
            entry[a] = {"unet": float(np.mean([r["final"][a] for r in runs])),
                        "best_table": max(r.final[a] for r in within) if within else None}
        out.append(entry)
    return out


def unet_like(table: dict) -> list[dict]:
    """The table's own U-Nets: 4 levels (M=3), one single-branch block per level, two 3x3 convs per
    decoder level, concatenated skips, all-transpose or all-resize up-sampling (residual encoder
    blocks, as every NASSegNet has), and where each ranks in the table."""
    from search_spaces import ArchSpec

    rows = list(table.values())
    out = []
    for r in rows:
        a = ArchSpec.from_json(r.arch)
        ups = {a.up1, a.up2, a.up3}
        if a.M == 3 and (a.B1, a.B2, a.B3) == (1, 1, 1) and a.dec_blocks == 2 and a.skip == "concat" and len(ups) == 1:
            entry = {"network": f"out_channel0 {a.out_channel0}, {ups.pop()}", "tiles": r.info["tiles"]}
            for t in TIMES:
                m = f"dice_{t}"
                entry[m] = r.final[m]
                entry[f"rank_{m}"] = 1 + sum(o.final[m] > r.final[m] for o in rows)
            out.append(entry)
    return out


def plot(table: dict, unets: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(table.values())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    tiles = np.array([r.info["tiles"] for r in rows])
    ax.scatter(tiles + np.random.default_rng(0).uniform(-0.25, 0.25, tiles.size), [r.final["dice_1y"] for r in rows],
               s=8, alpha=0.35, color="grey", label=f"NASSegNet-Bench ({len(rows)} networks)")
    for up, marker in (("deconv", "^"), ("nontrainable", "s")):
        sel = [r for r in unets if r["network"]["upsample"] == up]
        if sel:
            ax.scatter([r["info"]["tiles"] for r in sel], [r["final"]["dice_1y"] for r in sel], marker=marker, s=40,
                       color="tab:red", label=f"BasicUNet ({'transpose' if up == 'deconv' else 'resize'}), per seed")
    ax.set_xlabel("crossbar tiles (512 x 512)")
    ax.set_ylabel("Dice one year after programming")
    ax.set_title("Every network of the table vs the plain U-Net")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    ax = axes[1]
    labels = ["digital", "1s", "1h", "1d", "30d", "1y"]
    best = max(rows, key=lambda r: r.final["dice_1d"])
    median_net = sorted(rows, key=lambda r: r.final["dice_1d"])[len(rows) // 2]
    for row, name, color in ((best, "best of the table (by dice_1d)", "tab:blue"),
                             (median_net, "median network of the table", "grey")):
        ax.plot(labels, [row.final[f"dice_{t}"] for t in labels], "o-", color=color,
                label=f"{name}, {row.info['tiles']:.0f} tiles")
    for r in unets:
        if r["network"]["seed"] == 0:
            ax.plot(labels, [r["final"][f"dice_{t}"] for t in labels], ".--", alpha=0.8,
                    label=f"BasicUNet w{r['network']['width']} {r['network']['upsample']}, {r['info']['tiles']:.0f} tiles")
    ax.set_ylabel("Dice")
    ax.set_xlabel("time after programming (digital: the same network without analog non-idealities)")
    ax.set_title("Drift curves")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def results_text(s: dict) -> str:
    t = s["table"]
    lines = ["## NASSegNet-Bench: our own space, trained exhaustively", "",
             f"`benchmarks/nassegnet_bench/table.jsonl.gz`: {t['networks']} of the sub-space's 672 networks "
             f"(`table.yaml`; the grid's seeded order, so a partial table is a uniform sample), each trained once "
             f"with the demo's budget on the dim synthetic fluorescence data; {t['cpu_hours']:.1f} CPU hours, "
             f"{q(t['seconds_per_network'], 0)} s per network. Median [q25, q75] over networks, then the best:", "",
             "| metric | 1 s | 1 day | 1 year | best at 1 year |", "|---|---|---|---|---|"]
    for score in SCORES:
        lines.append(f"| {score} | " + " | ".join(q(t[f"{score}_{x}"]) for x in TIMES)
                     + f" | {t[f'{score}_1y']['best']:.3f} |")
    lines += ["", f"Dice lost from 1 s to 1 year: {q(t['dice_loss_1s_1y'])}; digital reference minus 1 year: "
              f"{q(t['dice_digital_minus_1y'])}. Spearman of dice_1d and dice_1y over the table: "
              f"{t['spearman_dice_1d_vs_1y']:.2f}."]
    for key, title in (("noise_floor", "**Noise floor** (`seed1.jsonl.gz`: the same networks, training seed 1): "),
                       ("noise_floor_brightfield", "**Noise floor on brightfield** (`brightfield_seed1.jsonl.gz` beside "
                        "`brightfield.jsonl.gz`: networks of the brightfield table trained again with seed 1): ")):
        if s.get(key):
            lines += ["", title + "; ".join(f"`{m}` |seed 0 - seed 1| {q(v['abs_diff'])} (90th percentile "
                                            f"{v['p90_abs_diff']:.3f}), Spearman {v['spearman']:.2f} over {v['networks']}"
                                            for m, v in s[key].items()) + "."]
    shares = {k: v for k, v in (s.get("variance_shares") or {}).items() if any(v.values())}
    if shares:
        lines += ["", "**Where the spread comes from** (a table against a second training seed of the same "
                  "networks; each score a mean over 2 programming draws, 8 in `brightfield_reps8`; "
                  "`analyse.variance_shares`): share of the variance over networks due to the architecture (what "
                  "a search or surrogate can rank on) / the training seed / the programming draws, and the Kendall "
                  "tau a perfect predictor of the architecture's part would reach against the table.", "",
                  "| data | metric | networks | sd | architecture | training seed | programming draws | ceiling tau |",
                  "|---|---|---|---|---|---|---|---|"]
        for kind, per_metric in shares.items():
            for m, v in per_metric.items():
                if v:
                    lines.append(f"| {kind} | `{m}` | {v['networks']} | {v['sd']:.3f} | {v['architecture']:.2f} | "
                                 f"{v['training_seed']:.2f} | {v['programming']:.2f} | {v['ceiling_tau']:.2f} |")
    lt = s.get("longer_training")
    if lt:
        lines += ["", "**Demo budget vs 4x the steps** (`steps4x.jsonl.gz`): "
                  + "; ".join(f"`{m}` Spearman {v['spearman']:.2f}, gain {q(v['gain'])}, top-10 % overlap "
                              f"{v['top10pct_overlap']:.0%} over {v['networks']}" for m, v in lt.items()) + "."]
    vu = s.get("versus_unet")
    if vu:
        lines += ["", "**Best of the table vs the plain U-Net** (MONAI `BasicUNet`, mean of 2 seeds; the best table "
                  "network with at most the U-Net's tiles, chosen by the metric at that time). Dice:", "",
                  "| U-Net | tiles | params | table networks within | 1 s: U-Net / best / margin | 1 day | 1 year |",
                  "|---|---|---|---|---|---|---|"]
        for e in vu:
            cells = []
            for x in TIMES:
                d = e[f"dice_{x}"]
                cells.append(f"{d['unet']:.3f} / {d['best_table']:.3f} / {d['margin']:+.3f}" if d["margin"] is not None
                             else f"{d['unet']:.3f} / - / -")
            lines.append(f"| {e['unet']} | {e['tiles']:.0f} | {e['params']:.0f} | {e['table_networks_within']} | "
                         + " | ".join(cells) + " |")
    ul = s.get("unet_like_in_table")
    if ul:
        lines += ["", "The U-Net-like networks of the space itself (M=3, one single-branch block per level, 2 decoder "
                  "convs, concat skips, one up-sampling mode; their encoder blocks are residual): "
                  + "; ".join(f"{e['network']} ({e['tiles']:.0f} tiles): Dice " + " / ".join(
                      f"{e[f'dice_{x}']:.3f} (rank {e[f'rank_dice_{x}']})" for x in TIMES) for e in ul)
                  + f" at 1 s / 1 day / 1 year, ranks among the table's {t['networks']}."]
    vu4 = s.get("versus_unet_steps4x")
    if vu4:
        lines += ["", f"The same with 4x the steps (the {s['longer_training']['dice_1d']['networks']} networks of "
                  "`steps4x` vs the U-Nets of `unet_steps4x`, seed 0), margin at 1 s / 1 day / 1 year: "
                  + "; ".join(f"{e['unet']} " + " / ".join(f"{e[f'dice_{x}']['margin']:+.3f}" if e[f"dice_{x}"]["margin"]
                                                          is not None else "-" for x in TIMES) for e in vu4) + "."]
    lines += ["", "Plot: `benchmarks/nassegnet_bench/nassegnet_bench.png`. Regenerate: "
              "`.venv/bin/python benchmarks/nassegnet_bench/analyse.py --write`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="also write the RESULTS.md section")
    args = ap.parse_args()
    table = load("table")
    if not table:
        sys.exit("analyse: no table yet (benchmarks/nassegnet_bench/generate.py table)")
    unets = unet_rows()
    seed1, steps4x, bright, bright_seed1 = load("seed1"), load("steps4x"), load("brightfield"), load("brightfield_seed1")
    summary = {"table": table_summary(table), "noise_floor": compare_runs(table, seed1),
               "longer_training": compare_runs(table, steps4x), "versus_unet": versus_unet(table, unets),
               "unet_like_in_table": unet_like(table), "noise_floor_brightfield": compare_runs(bright, bright_seed1)}
    summary["variance_shares"] = {
        kind: {m: variance_shares(first, second, m) for m in SHARE_METRICS}
        for kind, (first, second) in {"fluorescence": (table, seed1), "brightfield": (bright, bright_seed1),
                                      "brightfield, 8 draws": (load("brightfield_reps8"), bright_seed1)}.items()}
    unets4x = unet_rows("unet_steps4x")
    if steps4x and unets4x:  # the same comparison after 4x the steps (the table's 56 networks, seed 0 U-Nets)
        summary["versus_unet_steps4x"] = versus_unet(steps4x, unets4x)
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(table, unets, HERE / "nassegnet_bench.png")
    text = results_text(summary)
    print(text)
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", "nassegnet_bench", text)


if __name__ == "__main__":
    main()
