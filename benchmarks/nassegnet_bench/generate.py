"""Generate NASSegNet-Bench's tables with the normal search path, resumably.

Each table is made by ``nasseg search`` with ``sampler: grid`` (every network of the sub-space of
``table.yaml`` once, in the order the seed fixes) in chunks of ``--chunk`` trials. After each chunk
the chunk's trials are exported (``nasseg export-table``) and merged into the committed table; the
next chunk warm-starts from that table, so the grid skips every network already in it. A killed
chunk resumes with the same command (same chunk name: Ray's resume); a fresh machine continues from
the committed table. Tables (all under ``benchmarks/nassegnet_bench/``):

- ``table``: the 672 networks, the demo's budget (``table.yaml``);
- ``seed1``: the first 56 networks of the grid order again, training seed 1 (the noise floor);
- ``steps4x``: the same 56 with 4x the steps per epoch (does the demo budget rank for longer training?);
- ``brightfield``: the first 112 on ``synthetic-brightfield`` (does a surrogate fitted on the
  fluorescence table rank networks on other data?); ``brightfield_seed1``: the first 56 of them
  again with training seed 1 (how well can anything rank networks there: the noise floor);
  ``brightfield_reps8``: the same 56 trained again with seed 0 and drift-evaluated over 8
  programming draws instead of 2 (how much of that noise is the chip's programming). Rows are
  reproducible in distribution, not bit for bit across machines and library builds: retrained
  here, 3 fluorescence networks came within 0.003 Dice of their rows, while brightfield training
  (unstable at the demo's learning rate) moved digital Dice by 0.002 median, up to 0.07 (same
  code, earlier machine; on one machine a row reproduces exactly). Each chunk records the
  environment that made it in ``environment.json`` (recorded from ``brightfield_seed1`` and
  ``brightfield_reps8`` on; the older tables predate it);
- ``unet``: plain U-Nets (MONAI's ``BasicUNet``) trained the same way (the hand-designed
  baseline; not a NASSegNet, so trained by this script with nasseg's ``Trainer``, not by a search);
  ``unet_steps4x``: the same U-Nets (seed 0) with 4x the steps, beside ``steps4x``.

    .venv/bin/python benchmarks/nassegnet_bench/generate.py table [--chunk 48] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

#: variant -> (base config, changes to it, networks: None = the whole grid)
VARIANTS = {
    "table": ("table.yaml", {}, None),
    "seed1": ("table.yaml", {"train": {"seed": 1}}, 56),
    "steps4x": ("table.yaml", {"train": {"steps_per_epoch": 64}}, 56),
    "brightfield": ("table.yaml", {"data": "synthetic-brightfield:16"}, 112),
    "brightfield_seed1": ("table.yaml", {"data": "synthetic-brightfield:16", "train": {"seed": 1}}, 56),
    "brightfield_reps8": ("table.yaml", {"data": "synthetic-brightfield:16", "train": {"drift_reps": 8}}, 56),
}
#: the hand-designed baseline: MONAI's BasicUNet (4 down-samplings, two 3x3 convs per level) at
#: widths (c, c, 2c, 4c, 8c, c) spanning the table's parameter range, transpose ("deconv") or resize
#: ("nontrainable") up-sampling, trained with the table's config, seeds 0 and 1
UNET_WIDTHS, UNET_UPSAMPLING, UNET_SEEDS = (3, 4, 5), ("deconv", "nontrainable"), (0, 1)


def table_path(variant: str) -> Path:
    return HERE / f"{variant}.jsonl.gz"


def variant_config(variant: str) -> dict:
    base, changes, _ = VARIANTS[variant]
    cfg = yaml.safe_load((HERE / base).read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    return cfg


def grid_size(cfg: dict) -> int:
    from orchestrator.config import SearchConfig

    return len(SearchConfig.from_dict(cfg).nasseg_space().enumerate())


def read_rows(path: Path) -> dict:
    from orchestrator.evaluation.tables import read_table

    return read_table(path) if path.exists() else {}


#: the packages whose versions change a trained network's numbers (rows are reproducible bit for bit
#: only under the same versions and CPU; see the module docstring)
RECORDED_PACKAGES = ("torch", "numpy", "scipy", "numba", "monai", "scikit-image", "aihwkit", "optuna", "ray")


def environment() -> dict:
    """What generated a table: Python, the versions of ``RECORDED_PACKAGES`` and the CPU model."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    return {"python": platform.python_version(), "cpu": models[0] if models else platform.processor(),
            "packages": {name: ver(name) for name in RECORDED_PACKAGES}}


def record_environment(variant: str, path: Path = HERE / "environment.json") -> None:
    """Add this environment to ``environment.json`` under ``variant`` (once per distinct environment)."""
    import json

    records = json.loads(path.read_text()) if path.exists() else {}
    env = environment()
    if env not in records.setdefault(variant, []):
        records[variant].append(env)
        path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")


def run(cmd: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=cwd, env=env)
    if rc != 0:
        sys.exit(f"generate: {cmd[1]} exited with {rc}; rerun the same command to resume")


def generate(variant: str, chunk: int, workdir: Path, until: int | None = None) -> None:
    from orchestrator.commands.export_table import as_row
    from orchestrator.evaluation.tables import read_table, write_table

    nasseg = str(Path(sys.executable).parent / "nasseg")
    cfg = variant_config(variant)
    out = table_path(variant)
    total = min(VARIANTS[variant][2] or grid_size(cfg), until or 10**9)
    workdir.mkdir(parents=True, exist_ok=True)
    while True:
        started = time.time()
        rows = read_rows(out)
        if len(rows) >= total:
            print(f"generate: {variant}: {len(rows)}/{total} networks in {out.relative_to(ROOT)}", flush=True)
            return
        name = f"{cfg['name']}-{variant}-{len(rows):04d}"
        chunk_cfg = {**cfg, "name": name, "trials": min(chunk, total - len(rows)),
                     "warm_start": f"table:{out}" if rows else None}
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(chunk_cfg, sort_keys=False))
        run([nasseg, "search", str(path)], workdir)
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "chunk.jsonl"
            run([nasseg, "export-table", name, str(part)], workdir)
            new = read_table(part)
        merged = {**rows, **{sig: row for sig, row in new.items() if sig not in rows}}
        write_table(out, [as_row(r.arch, r.epochs, {**r.final, **r.info}) for r in merged.values()])
        record_environment(variant)
        rate = (time.time() - started) / max(len(merged) - len(rows), 1)
        print(f"generate: {variant}: {len(merged)}/{total} networks ({len(merged) - len(rows)} new, "
              f"{rate:.0f} s per network in this chunk)", flush=True)


def unet_cost(net, tile_size: int) -> dict[str, float]:
    """Parameters and crossbar tiles of a built network by the rule of ``search_spaces.cost``:
    every Conv2d on ceil(in/rows) x ceil(out/cols) tiles, ConvTranspose2d and norms digital."""
    from torch import nn

    from search_spaces.cost import Layer

    tiles = sum(Layer("conv", m.in_channels, m.out_channels, m.kernel_size[0], 0).tiles(tile_size, tile_size)
                for m in net.modules() if isinstance(m, nn.Conv2d))
    digital = sum(p.numel() for m in net.modules() if isinstance(m, nn.ConvTranspose2d) for p in m.parameters())
    return {"params": float(sum(p.numel() for p in net.parameters())), "tiles": float(tiles),
            "digital_params": float(digital)}


def train_unet(cfg, width: int, upsample: str, seed: int, steps_factor: int = 1) -> dict:
    """One BasicUNet trained and drift-evaluated as a search trial is (TrainingEvaluator)."""
    from dataclasses import replace

    import torch
    from monai.networks.nets import BasicUNet

    from trainers.data import load_samples, split_by_image
    from trainers.heads import head
    from trainers.train import Trainer

    started = time.perf_counter()
    train_cfg = replace(cfg.trial_train, seed=seed, steps_per_epoch=steps_factor * cfg.train.steps_per_epoch)
    samples = load_samples(cfg.data, channels=train_cfg.channels, seed=cfg.seed)
    train, val = split_by_image(samples, cfg.val_fraction, cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = BasicUNet(spatial_dims=2, in_channels=train_cfg.channels, out_channels=head(train_cfg.head).channels,
                        features=(width, width, 2 * width, 4 * width, 8 * width, width), upsample=upsample)
    cost = unet_cost(net, train_cfg.hwa.tile_size)
    trainer = Trainer(None, train, val, train_cfg, network=net)
    epochs: list[dict] = []
    trainer.fit(on_epoch=lambda metrics, t: epochs.append(dict(metrics)))
    final = {}
    if train_cfg.tune_postprocess:
        final.update(trainer.tune_postprocess())
    final.update(trainer.drift_evaluation())
    return {"network": {"name": "BasicUNet", "width": width, "upsample": upsample, "seed": seed},
            "epochs": epochs, "final": final, "info": {**cost, "trial_time_s": time.perf_counter() - started}}


def read_unet_rows(path: Path) -> list[dict]:
    import gzip
    import json

    return [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")] if path.exists() else []


def generate_unet(steps_factor: int = 1) -> None:
    """Every (width, up-sampling, seed) not yet in unet.jsonl.gz (``unet_steps4x.jsonl.gz`` with
    ``steps_factor`` 4: seed 0 only, beside the table's ``steps4x``), written after each network."""
    import json

    from orchestrator.config import SearchConfig
    from orchestrator.evaluation.tables import write_lines

    cfg = SearchConfig.from_dict(variant_config("table"))
    out = table_path("unet" if steps_factor == 1 else f"unet_steps{steps_factor}x")
    rows = read_unet_rows(out)
    done = {(r["network"]["width"], r["network"]["upsample"], r["network"]["seed"]) for r in rows}
    for seed in UNET_SEEDS if steps_factor == 1 else UNET_SEEDS[:1]:
        for width in UNET_WIDTHS:
            for upsample in UNET_UPSAMPLING:
                if (width, upsample, seed) in done:
                    continue
                rows.append(train_unet(cfg, width, upsample, seed, steps_factor))
                write_lines(out, [json.dumps(r, sort_keys=True) for r in rows])
                r = rows[-1]
                print(f"generate: unet width {width} {upsample} seed {seed}: dice_1d {r['final']['dice_1d']:.4f}, "
                      f"dice_1y {r['final']['dice_1y']:.4f}, {r['info']['tiles']:.0f} tiles, "
                      f"{r['info']['params']:.0f} params, {r['info']['trial_time_s']:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS) + ["unet", "unet_steps4x"])
    ap.add_argument("--chunk", type=int, default=48, help="trials per search (progress is merged after each)")
    ap.add_argument("--until", type=int, help="stop once the table holds this many networks (default: all)")
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "nassegnet-bench",
                    help="where the chunks' MLflow store and Ray storage live")
    args = ap.parse_args()
    if args.variant.startswith("unet"):
        generate_unet(4 if args.variant == "unet_steps4x" else 1)
    else:
        generate(args.variant, args.chunk, args.workdir, args.until)


if __name__ == "__main__":
    main()
