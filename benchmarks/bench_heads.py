"""Which output head separates touching nuclei better, on the same training budget?

Trains one network (the demo-sized spec of ``bench_train.py``) with each head of
``trainers.heads`` on the built-in synthetic nuclei (clumps, brightfield and fluorescence), with
the demo's budget (6 x 16 steps, batch 8, patch 48, hardware-aware analog training), tunes the
post-processing on the validation split, and scores the validation images digitally, 1 s and
1 day after programming onto PCM (mean over ``--drift-reps`` programming draws). Reports Dice,
AP@0.5, DSB mAP, instance F1 and the wall time of one trial (training + tuning + drift
evaluation) per head, median over ``--seeds``. ``--overlays`` draws one validation image per head.

    .venv/bin/python benchmarks/bench_heads.py --seeds 0-2 --write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = ("dice", "ap50", "map_dsb", "f1_inst")
TIMES = ("digital", "1s", "1d")


def run(head: str, seed: int, args) -> dict:
    from benchmarks.bench_train import DEMO_SPEC
    from search_spaces import ArchSpec
    from trainers.data import load_samples, split_by_image
    from trainers.train import TrainConfig, Trainer

    samples = load_samples(args.data, seed=seed)
    train, val = split_by_image(samples, 0.25, seed)
    cfg = TrainConfig(mode="analog", head=head, epochs=args.epochs, steps_per_epoch=args.steps, batch_size=8,
                      patch_size=48, lr=0.003, seed=seed, num_threads=args.threads, device=args.device,
                      drift_times=(1.0, 86400.0), drift_reps=args.drift_reps)
    start = time.perf_counter()
    trainer = Trainer(ArchSpec.from_params(DEMO_SPEC), train, val, cfg)
    trainer.fit()
    tuned = trainer.tune_postprocess()
    scores = trainer.drift_evaluation()
    seconds = time.perf_counter() - start
    out = {f"{m}_{t}": scores[f"{m}_{t}"] for m in METRICS for t in TIMES}
    out.update(tuned, seconds=seconds, val_images=len(val))
    if args.overlays:
        out["overlay"] = overlay(trainer, head, seed)
    return out


def overlay(trainer, head: str, seed: int) -> str:
    """One validation image: truth and this head's nuclei after 1 day of drift (PNG path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from skimage.segmentation import find_boundaries

    from trainers.analog import drift_to, programmed_copy
    from trainers.inference import predict_instances

    torch.manual_seed(0)
    drifted = programmed_copy(trainer.model)
    drift_to(drifted, 86400.0)
    item = max(trainer.val_items, key=lambda it: int(it["label"].max()))  # the most crowded image
    pred = predict_instances(drifted, item["image"], trainer.cfg.patch_size, trainer.head, trainer.postprocess)
    truth = item["label"][0].numpy().astype(int)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    for ax, (title, labels) in zip(axes, [(f"truth: {truth.max()} nuclei", truth),
                                          (f"{head} head, 1 day: {pred.max()} nuclei", pred)], strict=True):
        ax.imshow(item["image"][0].numpy(), cmap="gray")
        ov = np.zeros((*labels.shape, 4))
        ov[find_boundaries(labels)] = (1.0, 0.2, 0.2, 1.0)
        ax.imshow(ov)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    path = ROOT / "benchmarks" / f"heads_overlay_{head}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path.relative_to(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", nargs="+", default=["binary", "contour", "distance"])
    ap.add_argument("--seeds", default="0-2", help="A-B, inclusive (data, split and training seed)")
    ap.add_argument("--data", default="synthetic:24")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--drift-reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--overlays", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", action="store_true", help="table into benchmarks/RESULTS.md (implies --overlays)")
    args = ap.parse_args()
    args.overlays = args.overlays or args.write
    from benchmarks.bench_strategies import parse_seeds

    seeds = parse_seeds(args.seeds)
    results = {}
    for head in args.heads:
        runs = []
        for seed in seeds:
            runs.append(run(head, seed, args))
            if not args.json:
                r = runs[-1]
                print(f"  {head:8s} seed {seed}: " + ", ".join(f"{k} {r[k]:.3f}" for k in
                      ("dice_1d", "ap50_1d", "map_dsb_1d", "f1_inst_1d")) + f", {r['seconds']:.0f} s", flush=True)
        keys = [k for k in runs[0] if k != "overlay"]
        results[head] = {k: float(np.median([r[k] for r in runs])) for k in keys}
        if args.overlays:
            results[head]["overlay"] = runs[0]["overlay"]
    out = {"data": args.data, "seeds": seeds, "budget": f"{args.epochs} x {args.steps} steps, batch 8, patch 48",
           "heads": results}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_heads", results_text(out, args))


def results_text(out: dict, args) -> str:
    lines = ["## bench_heads: output heads for touching nuclei", "",
             f"Command: `python benchmarks/bench_heads.py --seeds {args.seeds} --write`. Data `{out['data']}` "
             f"(75 % train, 25 % validation), demo spec, {out['budget']}, analog (fused simulator), "
             f"{args.threads} thread; post-processing tuned on validation; median over seeds {out['seeds']}. "
             "`1s`/`1d`: after programming onto PCM and 1 s / 1 day of drift; `digital`: the same weights "
             "without the analog periphery.", "",
             "| head | time | Dice | AP@0.5 | mAP (DSB) | instance F1 |", "|---|---|---|---|---|---|"]
    for head, r in out["heads"].items():
        for t in TIMES:
            lines.append(f"| {head} | {t} | " + " | ".join(f"{r[f'{m}_{t}']:.3f}" for m in METRICS) + " |")
    lines += ["", "| head | seconds per trial | tuned threshold | tuned seed |", "|---|---|---|---|"]
    for head, r in out["heads"].items():
        lines.append(f"| {head} | {r['seconds']:.0f} | {r['pp_threshold']:.2f} | {r['pp_seed']:.2f} |")
    overlays = [f"![{h}]({r['overlay'].removeprefix('benchmarks/')})" for h, r in out["heads"].items() if "overlay" in r]
    if overlays:
        lines += ["", "One validation image (the most crowded of seed "
                  f"{out['seeds'][0]}), 1 day after programming:", ""] + overlays
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
