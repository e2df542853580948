"""Training throughput (images/s) and peak memory of training steps on this machine.

Each configuration runs in its own process so that its peak resident memory (ru_maxrss) is its
own.  A step is what the trainer does: forward, 0.2·CE + 0.8·Dice, backward, AdamW step.  A
configuration is ``BACKBONE:DELTA`` for CrackSAM or ``seg:ARCH`` for a registry network (e.g.
``seg:unet_efficientnet_lite1``; the conventional networks train on 256² crops: ``--image-size 256``).
Step times of networks measured in one run give the step budgets of equal-wall-time experiments.

    python benchmarks/bench_train.py [--configs vit_b:lora vit_b:none] [--batch 8] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import command_line, machine, today, write_section  # noqa: E402


def _child(backbone: str, delta: str, batch: int, steps: int, image_size: int) -> dict:
    import torch

    from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, count_parameters
    from cracksam.training.losses import CrackLoss

    torch.manual_seed(0)
    if backbone == "seg":
        from cracksam.models.segmodels import SegModelConfig, build_segmodel

        model = build_segmodel(SegModelConfig(arch=delta, image_size=image_size), load_pretrained=False)
    else:
        model = build_cracksam(CrackSAMConfig(backbone=backbone, image_size=image_size,
                                              delta=DeltaConfig(kind=delta)))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=4e-4, betas=(0.9, 0.999), weight_decay=0.01)
    loss_fn = CrackLoss()
    x = torch.rand(batch, 3, image_size, image_size) * 255
    y = (torch.rand(batch, image_size, image_size) > 0.95).long()
    times = []
    for i in range(steps + 1):  # the first step warms up and is not timed
        t0 = time.perf_counter()
        loss, _, _ = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t0)
    step = sorted(times)[len(times) // 2]
    return {
        "backbone": backbone,
        "delta": delta,
        "batch": batch,
        "trainable": count_parameters(model).trainable,
        "step_s": step,
        "images_per_s": batch / step,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", nargs="+", default=["vit_b:lora", "vit_b:none"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        backbone, delta = args.child.split(":")
        print(json.dumps(_child(backbone, delta, args.batch, args.steps, args.image_size)))
        return

    rows = []
    for spec in args.configs:
        cmd = [sys.executable, __file__, "--child", spec, "--batch", str(args.batch), "--steps", str(args.steps),
               "--image-size", str(args.image_size)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            raise SystemExit(f"{spec} failed")
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{spec:12s} {row['step_s']:7.1f} s/step  {row['images_per_s']:.2f} img/s  "
              f"peak RSS {row['peak_rss_gib']:.1f} GiB", flush=True)

    lines = [
        "## Training throughput and peak memory (`benchmarks/bench_train.py`)",
        "",
        f"- Command: `{command_line()}`",
        f"- Machine: {machine()}",
        f"- Date: {today()}",
        f"- Input {args.image_size}×{args.image_size}, batch {args.batch}, fp32; one step = forward, "
        "0.2·CE + 0.8·Dice, backward, AdamW; median of "
        f"{args.steps} steps after one warm-up step; peak RSS of the whole process (model, data, activations).",
        "",
        "| backbone | delta | trainable params (M) | s / step | images/s | peak RSS (GiB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['backbone']} | {r['delta']} | {r['trainable'] / 1e6:.2f} | {r['step_s']:.1f} | "
        f"{r['images_per_s']:.2f} | {r['peak_rss_gib']:.1f} |"
        for r in rows
    ]
    if not args.no_write:
        write_section("bench_train", "\n".join(lines))


if __name__ == "__main__":
    main()
