"""Digital vs hardware-aware (aihwkit torch tile) training step: time and peak memory, one run.

Each variant runs in its own fresh subprocess (so peak RSS is its own), on the same spec, batch,
patch size and thread count. The analog variants switch off one part of the HWA preset at a
time to show where the time goes. Writes a Markdown table to stdout and, with ``--write``, into
``benchmarks/RESULTS.md`` (section "bench_train").

    .venv/bin/python benchmarks/bench_train.py --write
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = dict(out_channel0=16, k0=3, M=2, R1=1, B1=1, convblock1=1, widenfact1=0.5, up1="resize",
            R2=1, B2=1, convblock2=1, widenfact2=0.5, up2="resize")
VARIANTS = {
    "digital": ("digital", {}),
    "analog (HWA preset)": ("analog", {}),
    "analog, no input-range learning": ("analog", {"learn_input_range": False}),
    "analog, no weight-noise modifier": ("analog", {"modifier_std": 0.0}),
    "analog, no out noise": ("analog", {"out_noise": 0.0}),
}


def run_variant(mode: str, hwa: dict, batch: int, patch: int, threads: int, steps: int) -> dict:
    """Child process body: time ``steps`` training steps after 2 warm-up steps."""
    import torch
    from monai.losses import DiceCELoss

    from search_spaces import ArchSpec, build
    from trainers.analog import HWAConfig, analog_optimizer, to_analog

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build(ArchSpec.from_params(SPEC), seed=0)
    model = to_analog(net, HWAConfig(**hwa)) if mode == "analog" else net
    opt = analog_optimizer(model, 1e-3) if mode == "analog" else torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = DiceCELoss(sigmoid=True)
    x = torch.rand(batch, 1, patch, patch)
    y = (torch.rand(batch, 1, patch, patch) > 0.7).float()
    model.train()
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    times.sort()
    return {"step_s": times[len(times) // 2], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, hwa = json.loads(args.child)
        print(json.dumps(run_variant(mode, hwa, args.batch, args.patch, args.threads, args.steps)))
        return 0
    results = {}
    for name, (mode, hwa) in VARIANTS.items():
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps([mode, hwa]), "--batch", str(args.batch),
                              "--patch", str(args.patch), "--threads", str(args.threads), "--steps", str(args.steps)],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: {results[name]}", file=sys.stderr)
    base = results["digital"]
    cmd = (f"python benchmarks/bench_train.py --batch {args.batch} --patch {args.patch} "
           f"--threads {args.threads} --steps {args.steps}")
    lines = ["## bench_train: digital vs hardware-aware training step", "",
             f"Command: `{cmd}` on {platform.machine()}, {args.threads} threads, batch {args.batch}, "
             f"{args.patch}x{args.patch} patches, median of {args.steps} steps; spec `{json.dumps(SPEC)}`.", "",
             "| variant | step time (s) | x digital | peak RSS (MB) | x digital |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['step_s']:.4f} | {r['step_s'] / base['step_s']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / base['peak_rss_mb']:.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_train", table)
    return 0


def write_section(path: Path, key: str, text: str) -> None:
    """Replace (or append) the section between ``<!-- key -->`` markers in RESULTS.md."""
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    old = path.read_text() if path.exists() else "# Benchmark results\n\nEach section is written by the script it names.\n\n"
    block = f"{start}\n{text}{end}\n"
    if start in old:
        old = old[: old.index(start)] + block + old[old.index(end) + len(end) + 1:]
    else:
        old += "\n" + block
    path.write_text(old)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
