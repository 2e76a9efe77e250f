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
  fluorescence table rank networks on other data?);
- ``unet``: plain U-Nets (``unet.yaml``) trained the same way (the hand-designed baseline).

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
    "unet": ("unet.yaml", {}, None),
}


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
    from orchestrator.evaluation import read_table

    return read_table(path) if path.exists() else {}


def run(cmd: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=cwd, env=env)
    if rc != 0:
        sys.exit(f"generate: {cmd[1]} exited with {rc}; rerun the same command to resume")


def generate(variant: str, chunk: int, workdir: Path) -> None:
    from orchestrator.evaluation import read_table
    from orchestrator.export_table import write_table

    nasseg = str(Path(sys.executable).parent / "nasseg")
    cfg = variant_config(variant)
    out = table_path(variant)
    total = VARIANTS[variant][2] or grid_size(cfg)
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
        write_table(out, list(merged.values()))
        rate = (time.time() - started) / max(len(merged) - len(rows), 1)
        print(f"generate: {variant}: {len(merged)}/{total} networks ({len(merged) - len(rows)} new, "
              f"{rate:.0f} s per network in this chunk)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--chunk", type=int, default=48, help="trials per search (progress is merged after each)")
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "nassegnet-bench",
                    help="where the chunks' MLflow store and Ray storage live")
    args = ap.parse_args()
    generate(args.variant, args.chunk, args.workdir)


if __name__ == "__main__":
    main()
