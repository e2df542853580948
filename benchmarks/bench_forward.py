"""Time CrackSAM's forward pass for each SAM backbone at 448×448 (CPU, and GPU when present).

Random base weights: the speed of a forward pass does not depend on the weights' values.

    python benchmarks/bench_forward.py [--backbones vit_b vit_l vit_h] [--batch 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import command_line, machine, today, write_section  # noqa: E402

from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, count_parameters  # noqa: E402


def time_forward(model: torch.nn.Module, x: torch.Tensor, repeats: int, device: torch.device) -> list[float]:
    times = []
    with torch.inference_mode():
        model(x)  # warm-up: allocator, kernels, lazy init
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", nargs="+", default=["vit_b", "vit_l", "vit_h"])
    parser.add_argument("--delta", default="lora")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for backbone in args.backbones:
        config = CrackSAMConfig(backbone=backbone, image_size=args.image_size, delta=DeltaConfig(kind=args.delta))
        model = build_cracksam(config).eval()
        params = count_parameters(model).total
        for device in devices:
            model.to(device)
            x = torch.rand(args.batch, 3, args.image_size, args.image_size, device=device) * 255
            times = time_forward(model, x, args.repeats, device)
            med = statistics.median(times)
            rows.append((backbone, device.type, params, med, args.batch / med))
            print(
                f"{backbone:6s} {device.type:4s} {med * 1000:9.1f} ms/batch  {args.batch / med:6.2f} img/s", flush=True
            )
        del model
        gc.collect()

    lines = [
        "## Forward pass per backbone (`benchmarks/bench_forward.py`)",
        "",
        f"- Command: `{command_line()}`",
        f"- Machine: {machine()}",
        f"- Date: {today()}",
        f"- Input {args.image_size}×{args.image_size}, batch {args.batch}, delta `{args.delta}` (unmerged), "
        f"fp32, `torch.inference_mode`, median of {args.repeats} runs after one warm-up; random weights.",
        "",
        "| backbone | device | parameters (M) | latency (ms / batch) | images/s |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {b} | {d} | {p / 1e6:.1f} | {t * 1000:.0f} | {ips:.2f} |" for b, d, p, t, ips in rows]
    if not args.no_write:
        write_section("bench_forward", "\n".join(lines))


if __name__ == "__main__":
    main()
