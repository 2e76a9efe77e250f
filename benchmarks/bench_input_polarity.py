"""Does input polarity change how brightfield networks survive drift?

On ``synthetic-brightfield`` (H&E-like: dark nuclei on a light background) NASSegNet-Bench's
networks lose 8 Dice points in a year and one programming of the chip differs from the next by
11.5 points (``brightfield_reps8``), against under 1 point on the fluorescence data, whose nuclei
are bright on a dark background. After the per-image percentile scaling, brightfield's background
drives the analog inputs near the top of their range and the nuclei near the bottom. This trains
the first ``--networks`` networks of ``brightfield_reps8`` again, same seed and budget, on the same
images inverted (``max - image``: light nuclei on a dark background, then the same scaling), and
compares them with their ``brightfield_reps8`` rows (made on this machine, which reproduces them
exactly; see ``nassegnet_bench/generate.py``): Dice of the digital reference, at 1 s and 1 year
over 8 programming draws, the loss between them and the spread between draws.

Each network is appended to ``--out`` as it finishes; a rerun skips those already there.

    .venv/bin/python benchmarks/bench_input_polarity.py --networks 56 --workers 2 --write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "nassegnet_bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

METRICS = ("dice_digital", "dice_1s", "dice_1y", "dice_1y_std")


def config():
    import yaml

    from orchestrator.config import SearchConfig

    cfg = yaml.safe_load((BENCH / "table.yaml").read_text())
    return SearchConfig.from_dict({**cfg, "data": "synthetic-brightfield:16", "train": {**cfg["train"], "drift_reps": 8}})


def train_inverted(arch: str) -> dict:
    """One network trained and drift-evaluated on the inverted images, as a table trial is."""
    from dataclasses import replace

    import torch

    from search_spaces import ArchSpec
    from trainers.data import load_samples, split_by_image
    from trainers.train import Trainer

    torch.set_num_threads(1)
    cfg = config()
    samples = [replace(s, image=s.image.max() - s.image)
               for s in load_samples(cfg.data, channels=cfg.trial_train.channels, seed=cfg.seed)]
    train, val = split_by_image(samples, cfg.val_fraction, cfg.seed)
    started = time.perf_counter()
    trainer = Trainer(ArchSpec.from_json(arch), train, val, cfg.trial_train)
    trainer.fit()
    trainer.tune_postprocess()
    final = trainer.drift_evaluation()
    return {"arch": arch, "inverted": {m: final[m] for m in METRICS},
            "seconds": time.perf_counter() - started}


def summary(rows: list[dict], reference: dict) -> dict:
    """Median [q25, q75] per condition and metric, plus the 1 s -> 1 year loss, over the networks;
    Wilcoxon signed-rank tests of the paired differences (the same network, as is vs inverted)."""
    from analyse import quartiles
    from scipy.stats import wilcoxon

    out: dict = {"networks": len(rows)}
    values = {}
    for name, get in (("as is", lambda r: reference[r["arch"]].final), ("inverted", lambda r: r["inverted"])):
        values[name] = {m: np.array([get(r)[m] for r in rows]) for m in METRICS}
        values[name]["loss_1s_1y"] = values[name]["dice_1s"] - values[name]["dice_1y"]
        out[name] = {m: quartiles(v) for m, v in values[name].items()}
    out["inverted_better_1y"] = int(np.sum(values["inverted"]["dice_1y"] > values["as is"]["dice_1y"]))
    out["wilcoxon_p"] = {m: float(wilcoxon(values["inverted"][m], values["as is"][m]).pvalue)
                         for m in ("dice_digital", "dice_1y", "loss_1s_1y", "dice_1y_std")}
    return out


def results_text(sets: list[tuple[str, dict]]) -> str:
    from analyse import q as cell

    lines = ["## bench_input_polarity: brightfield inputs as they are vs inverted", "",
             "Networks of `brightfield_reps8` (NASSegNet-Bench, demo budget, seed 0, 8 programming draws), trained "
             "again on the same `synthetic-brightfield` images inverted (light nuclei on a dark background; the same "
             "percentile scaling after); decided on the first 28, confirmed on the next 28. Median [q25, q75] over "
             "the networks; `sd over draws`: the standard deviation of Dice at 1 year between programmings of the "
             "chip; p: Wilcoxon signed-rank test of the paired differences. Command: `python "
             "benchmarks/bench_input_polarity.py --networks 56 --workers 2 --write`.", ""]
    for label, s in sets:
        lines += [f"**{label}** ({s['networks']} networks):", "",
                  "| input | Dice digital | Dice 1 s | Dice 1 y | lost 1 s -> 1 y | sd over draws at 1 y |",
                  "|---|---|---|---|---|---|"]
        for name in ("as is", "inverted"):
            c = s[name]
            lines.append(f"| {name} | {cell(c['dice_digital'])} | {cell(c['dice_1s'])} | {cell(c['dice_1y'])} | "
                         f"{cell(c['loss_1s_1y'])} | {cell(c['dice_1y_std'])} |")
        p = s["wilcoxon_p"]
        lines += ["", f"Inverted scores higher at 1 year on {s['inverted_better_1y']} of {s['networks']} networks; "
                  f"p = {p['dice_1y']:.3f} (Dice 1 y), {p['loss_1s_1y']:.3f} (loss), {p['dice_1y_std']:.3f} (sd over "
                  f"draws), {p['dice_digital']:.3f} (digital).", ""]
    return "\n".join(lines)


def main() -> None:
    from analyse import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=56, help="the first N of brightfield_reps8 (56: decide on "
                    "the first half, confirm on the second)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "input_polarity.jsonl")
    ap.add_argument("--write", action="store_true", help="also write the RESULTS.md section")
    args = ap.parse_args()
    reference = {row.arch: row for row in load("brightfield_reps8").values()}  # keyed by the arch's JSON
    todo = list(reference)[:args.networks]
    done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()] if args.out.exists() else []
    seen = {r["arch"] for r in done}
    todo = [arch for arch in todo if arch not in seen]
    with ProcessPoolExecutor(args.workers) as pool:
        for future in as_completed([pool.submit(train_inverted, t) for t in todo]):
            row = future.result()
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
            ref = reference[row["arch"]].final
            print(f"[{len(done)}/{args.networks}] dice_1y as is {ref['dice_1y']:.3f}, inverted "
                  f"{row['inverted']['dice_1y']:.3f} ({row['seconds']:.0f} s)", flush=True)
    order = {arch: i for i, arch in enumerate(reference)}
    rows = sorted((r for r in done if order.get(r["arch"], args.networks) < args.networks), key=lambda r: order[r["arch"]])
    half = len(rows) // 2
    sets = [("Decide: networks 1-28", summary(rows[:half], reference)),
            ("Confirm: networks 29-56", summary(rows[half:], reference))] if len(rows) >= 56 else \
        [(f"Networks 1-{len(rows)}", summary(rows, reference))]
    text = results_text(sets)
    print(text)
    if args.write:
        from benchmarks.bench_train import write_section

        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_input_polarity", text)


if __name__ == "__main__":
    main()
