"""How many programming draws does the drift evaluation need to rank networks reliably?

Takes the fully trained networks of a finished search (the search trials that ran every epoch and
the final trainings; their newest checkpoints under ``<storage>/<name>``), programs each of them
``--draws`` times (seeded) and scores the validation images at 1 day and 1 year of drift. Then,
for ``k`` draws (1, 2, 4, 8), it subsamples ``k`` of the draws many times and compares the ranking
of the networks by the mean of those ``k`` with the ranking by all draws: Kendall tau over the top
5 (by all draws) and how often the top network stays on top. Also the standard error of a mean of
``k`` draws. This is what ``train.drift_reps`` is chosen on.

    .venv/bin/python benchmarks/bench_drift_reps.py --storage /tmp/demo/nasseg_runs --name demo --write
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = ("dice_1y", "ap50_1y", "dice_1d", "map_dsb_1y")


def trained_checkpoints(search_dir: Path) -> list[Path]:
    """The newest checkpoint of every trial (search and final) that trained all its epochs."""
    from trainers.tensor_files import load_tensors

    found = []
    for trial in sorted(p for p in search_dir.rglob("run_*trial_*") if p.is_dir()):
        ckpts = sorted(trial.glob("checkpoint_*/trainer.pt"))
        if not ckpts:
            continue
        state = load_tensors(ckpts[-1], "trainer checkpoint")
        if int(state["epoch"]) == int(state["config"]["epochs"]):
            found.append(ckpts[-1])
    return found


def draws_of(path: Path, cfg, draws: int) -> tuple[str, dict[str, np.ndarray]]:
    """Per metric, the scores of ``draws`` programming draws of one checkpointed network."""
    from search_spaces import ArchSpec
    from trainers.data import load_samples, split_by_image
    from trainers.tensor_files import load_tensors
    from trainers.train import TrainConfig, Trainer

    state = load_tensors(path, "trainer checkpoint")
    train_cfg = replace(TrainConfig.from_dict(state["config"]), num_threads=1)
    _, val = split_by_image(load_samples(cfg.data, channels=train_cfg.channels, seed=cfg.seed), cfg.val_fraction,
                            cfg.seed)
    trainer = Trainer(ArchSpec.from_json(state["spec"]), val[:1], val, train_cfg)
    trainer.load(path)
    per = {m: [] for m in METRICS}
    for seed in range(draws):
        scores = trainer.programmed_scores(trainer.model, (86400.0, 365 * 86400.0), seed=10_000 + seed)
        for m in METRICS:
            metric, label = m.rsplit("_", 1)
            per[m].append(scores[0 if label == "1d" else 1][metric])
    folder = path.parent.parent.name   # run_trial_<id>_... or run_final_trial_<id>_<n>_...
    final = folder.startswith("run_final_")
    name = folder.split("_")[3 if final else 2] + (" (final)" if final else "")
    return name, {m: np.array(v) for m, v in per.items()}


def stability(values: np.ndarray, k: int, rng: np.random.Generator, top: int = 5, reps: int = 400) -> dict:
    """values: (networks, draws). Ranking by the mean of k random draws vs by all draws."""
    from scipy.stats import kendalltau

    full = values.mean(1)
    order = np.argsort(-full)[:top]
    taus, same_top = [], []
    for _ in range(reps):
        pick = rng.choice(values.shape[1], size=k, replace=False)
        sub = values[:, pick].mean(1)
        taus.append(kendalltau(full[order], sub[order]).statistic)
        same_top.append(int(np.argmax(sub) == np.argmax(full)))
    sem = float(np.median(values.std(1, ddof=1) / np.sqrt(k)))
    return {"kendall_tau": float(np.nanmedian(taus)), "tau_q25": float(np.nanpercentile(taus, 25)),
            "top1_kept": float(np.mean(same_top)), "median_sem": sem}


def main() -> None:
    from orchestrator.config import SearchConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    search_dir = Path(args.storage) / args.name
    cfg = SearchConfig.from_dict(json.loads((search_dir / "search_config.json").read_text()))
    names, per = [], {m: [] for m in METRICS}
    for path in trained_checkpoints(search_dir):
        name, values = draws_of(path, cfg, args.draws)
        names.append(name)
        for m in METRICS:
            per[m].append(values[m])
        print(f"  {name}: " + ", ".join(f"{m} {values[m].mean():.3f} +- {values[m].std(ddof=1):.3f}" for m in METRICS),
              flush=True)
    rng = np.random.default_rng(0)
    result = {m: {k: stability(np.array(per[m]), k, rng) for k in (1, 2, 4, 8) if k < args.draws} for m in METRICS}
    out = {"search": args.name, "networks": names, "draws": args.draws, "result": result}
    print(json.dumps(out, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        lines = ["## bench_drift_reps: programming draws per drift evaluation", "",
                 f"Command: `python benchmarks/bench_drift_reps.py --storage STORAGE --name {args.name} --write` on the "
                 f"fully trained networks of a `configs/demo.yaml` search ({len(names)}: search trials that ran every "
                 f"epoch and the final trainings), {args.draws} programming draws each. For k draws: median Kendall tau "
                 "(and its lower quartile) between the ranking of the top 5 by the mean of k random draws and by all "
                 "draws, how often the top network stays on top, median standard error of the mean.", "",
                 "| metric | k | Kendall tau (q25) | top 1 kept | standard error |", "|---|---|---|---|---|"]
        for m, by_k in result.items():
            for k, r in by_k.items():
                lines.append(f"| {m} | {k} | {r['kendall_tau']:.2f} ({r['tau_q25']:.2f}) | {r['top1_kept']:.2f} | "
                             f"{r['median_sem']:.4f} |")
        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_drift_reps", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
