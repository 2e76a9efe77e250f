"""Training-step time and peak memory: digital vs aihwkit's analog tile vs the fused simulator.

Variants (each in its own fresh subprocess, so peak RSS is its own):

- ``digital``: plain torch layers, Adam;
- ``aihwkit``: the hardware-aware preset on aihwkit's own layers (``hwa.simulator: aihwkit``,
  im2col forward), AnalogAdam;
- ``analog``: what a search uses: the same preset and physics on the fused simulator
  (``hwa.simulator: fused``, the default), AnalogAdam;
- ``analog-torch`` (on request): the fused simulator with its periphery in eager torch ops (the
  CUDA path) instead of the numba kernels, to see what the kernels buy on CPU.

Models: ``stack`` (a 16-32-64-64-32-16-channel 3x3 conv stack with BN + ReLU, the fused-simulator
issue's yardstick) and ``demo`` (a demo-sized NASSegNet spec). Patch sizes, batch and thread
counts are flags. Ratios (``x_digital``) compare runs of the same model, patch and threads from
the same invocation. Prints a Markdown table; ``--json`` prints one JSON object per line
instead; ``--write`` also puts the table into ``benchmarks/RESULTS.md`` (section "bench_train").

    .venv/bin/python benchmarks/bench_train.py --write
    .venv/bin/python benchmarks/bench_train.py --device cuda --threads 4 --json
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
DEMO_SPEC = dict(out_channel0=16, k0=3, M=2, R1=1, B1=1, convblock1=1, widenfact1=0.5, up1="resize",
                 R2=1, B2=1, convblock2=1, widenfact2=0.5, up2="resize")
STACK_WIDTHS = (16, 32, 64, 64, 32, 16)
VARIANTS = ("digital", "aihwkit", "analog", "analog-torch")
DEFAULT_VARIANTS = ("digital", "aihwkit", "analog")


def build_model(name: str):
    import torch
    from torch import nn

    from search_spaces import ArchSpec, build

    if name == "demo":
        return build(ArchSpec.from_params(DEMO_SPEC), seed=0)
    torch.manual_seed(0)
    layers, cin = [], 1
    for width in STACK_WIDTHS:
        layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        cin = width
    return nn.Sequential(*layers, nn.Conv2d(cin, 1, 1))


def run_variant(variant: str, model_name: str, batch: int, patch: int, threads: int, steps: int, device: str) -> dict:
    """Child process body: median time of ``steps`` training steps after 2 warm-up steps."""
    import torch
    from monai.losses import DiceCELoss

    from trainers.analog import HWAConfig, analog_optimizer, to_analog

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model(model_name)
    if variant == "digital":
        model = net.to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
    else:
        model = to_analog(net, HWAConfig(simulator="aihwkit" if variant == "aihwkit" else "fused")).to(device)
        if variant == "analog-torch":
            for layer in model.modules():
                if hasattr(layer, "periphery"):
                    layer.periphery = "torch"
        opt = analog_optimizer(model, 1e-3)
    loss_fn = DiceCELoss(sigmoid=True)
    x = torch.rand(batch, 1, patch, patch, device=device)
    y = (torch.rand(batch, 1, patch, patch, device=device) > 0.7).float()
    model.train()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    for i in range(steps + 2):
        sync()
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    times.sort()
    out = {"step_s": times[len(times) // 2], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure(args: argparse.Namespace) -> list[dict]:
    rows = []
    for model_name in args.models:
        for patch in args.patches:
            for threads in args.threads:
                base = None
                for variant in args.variants:
                    steps = args.steps if variant != "aihwkit" else max(3, args.steps // 2)
                    child = [sys.executable, __file__, "--child", variant, "--models", model_name, "--batch",
                             str(args.batch), "--patches", str(patch), "--threads", str(threads), "--steps",
                             str(steps), "--device", args.device]
                    out = subprocess.run(child, capture_output=True, text=True, cwd=ROOT)
                    if out.returncode:
                        raise SystemExit(f"bench_train: {variant}/{model_name} failed:\n{out.stderr[-2000:]}")
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    row = {"variant": variant, "model": model_name, "patch": patch, "threads": threads,
                           "device": args.device, **r}
                    if variant == "digital":
                        base = row
                    row["x_digital"] = row["step_s"] / base["step_s"] if base else None
                    row["rss_x_digital"] = row["peak_rss_mb"] / base["peak_rss_mb"] if base else None
                    rows.append(row)
                    print(json.dumps(row) if args.json else f"{row}", file=sys.stdout if args.json else sys.stderr,
                          flush=True)
    return rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    cmd = (f"python benchmarks/bench_train.py --batch {args.batch} --steps {args.steps} --device {args.device} "
           f"--threads {' '.join(map(str, args.threads))} --patches {' '.join(map(str, args.patches))}")
    lines = ["## bench_train: digital vs aihwkit vs fused analog training step", "",
             f"Command: `{cmd}` on {platform.machine()} ({args.device}), batch {args.batch}, median of "
             f"{args.steps} steps ({max(3, args.steps // 2)} for aihwkit) after 2 warm-up steps, each variant in "
             f"a fresh process. Models: `stack` = 3x3 convs {'-'.join(map(str, STACK_WIDTHS))} channels with BN "
             f"+ ReLU; `demo` = NASSegNet `{json.dumps(DEMO_SPEC)}`. `analog` is what a search trains with (the "
             "fused simulator); `aihwkit` is the same preset on aihwkit's own layers.", "",
             "| model | patch | threads | variant | step (s) | x digital | peak RSS (MB) | RSS x digital |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['patch']} | {r['threads']} | {r['variant']} | {r['step_s']:.4f} | "
                     f"{r['x_digital']:.2f} | {r['peak_rss_mb']:.0f} | {r['rss_x_digital']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patches", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=["stack", "demo"], choices=["stack", "demo"])
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=VARIANTS)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_variant(args.child, args.models[0], args.batch, args.patches[0], args.threads[0],
                                     args.steps, args.device)))
        return 0
    if "digital" not in args.variants:
        args.variants = ["digital", *args.variants]
    args.variants = [v for v in VARIANTS if v in args.variants]
    rows = measure(args)
    text = table(rows, args)
    if not args.json:
        print(text)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", "bench_train", text)
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
