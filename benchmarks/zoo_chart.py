"""Speed/accuracy chart of the model zoo (issue 16): images/s at 448² on this CPU (best runtime)
against crack IoU with the thin-crack recipe of issue 11, so a user can pick a model.

    python benchmarks/zoo_chart.py --measure            # time every architecture, then chart (~20 min)
    python benchmarks/zoo_chart.py                      # chart from benchmarks/results/zoo_speed.json
    python benchmarks/zoo_chart.py --measure --smoke    # 2 architectures, 2 runs each: a check

Accuracy is read from what exists, not re-trained: the short runs' validation IoU (mean of the six
sets and pooled) in ``docs/model-experiments.md`` (equal recipe, e2/e4/e5 at equal wall-clock) and
the bundled model's test IoU in ``benchmarks/results/default_model_native/table.json``.  Speed:
each architecture with random weights (speed does not depend on them) at 448×448, batch 1, in
PyTorch eager and ONNX Runtime fp32 (and OpenVINO FP16 where installed), the best kept.
Architectures without an IoU under the recipe are listed in the table, not plotted.

Output: ``benchmarks/figures/zoo_speed_accuracy.png`` and the ``zoo_chart`` section of RESULTS.md
(``--smoke`` writes ``benchmarks/results/smoke/`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import command_line, machine, today, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXPERIMENTS = ROOT.parent / "docs" / "model-experiments.md"
DEFAULT_TABLE = ROOT / "results" / "default_model_native" / "table.json"
# Architectures timed: the students a CPU user would deploy (the baselines' ViT/Swin are far slower).
ARCHS = ["unet_mobilenetv3_small", "unet_mobilenetv3_small_fr", "mobilenetv3_lraspp", "hrnet_w18_small_fcn",
         "hrnet_w18_fcn", "unet_resnet18", "unet_resnet34", "resnet50_fcn", "resnet50_deeplabv3plus"]
PAPER = "paper (40-core server CPU): HRNet-W18 student 131.5 FPS, CrackSAM ViT-H 3.55 FPS"


def experiment_iou(path: Path = EXPERIMENTS) -> dict[str, dict[str, float]]:
    """{architecture: {"mean": ..., "pooled": ..., "run": ...}} from the short-run table; the best
    run per architecture under the native recipe (runs named e2+ are the native pipeline)."""
    out: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 13 or not re.fullmatch(r"e\d+\w*", cells[0]) or "resize" in cells[2]:
            continue
        mean, pooled = float(cells[-2]), float(cells[-1])
        if cells[1] not in out or mean > out[cells[1]]["mean"]:
            out[cells[1]] = {"mean": mean, "pooled": pooled, "run": cells[0]}  # type: ignore[dict-item]
    return out


def bundled_iou(path: Path = EXPERIMENTS, table: Path = DEFAULT_TABLE) -> dict | None:
    """The bundled model (the long run): validation mean of sets and pooled of its kept step, on the
    same footing as the short runs, and its test IoU (pooled) from the model-card evaluation."""
    for line in path.read_text().splitlines():
        cells = [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 9 and "(kept)" in cells[0]:
            out = {"arch": "unet_mobilenetv3_small", "mean": float(cells[-2]), "pooled": float(cells[-1]),
                   "steps": cells[0].split()[0]}
            if table.is_file():
                row = json.loads(table.read_text())["rows"][0]
                out["arch"] = row["backbone"]
                out["test_pooled"] = float(row["cells"]["test"]["dataset_level"]["iou"])
            return out
    return None


def measure(archs: list[str], threads: int, runs: int) -> dict[str, dict]:
    import torch

    from cracksam.deployment.export import export_onnx
    from cracksam.deployment.pipeline import time_backend
    from cracksam.inference.backends import OnnxRuntimeBackend, TorchBackend
    from cracksam.models.segmodels import SegModel, SegModelConfig

    torch.set_num_threads(threads)
    x = (np.random.default_rng(0).random((1, 3, 448, 448)) * 255).astype(np.float32)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            model = SegModel(SegModelConfig(arch=arch, image_size=448)).eval()
            params = sum(p.numel() for p in model.parameters()) / 1e6
            speeds = {"torch": time_backend(TorchBackend(model, threads=threads), x, runs, 1)["images_per_s"]}
            onnx = export_onnx(model, Path(tmp) / f"{arch}.onnx")
            speeds["onnxruntime"] = time_backend(OnnxRuntimeBackend(onnx, threads=threads), x, runs, 1)["images_per_s"]
            try:
                from cracksam.deployment.export import export_openvino
                from cracksam.inference.backends import OpenVINOBackend

                xml = export_openvino(onnx, Path(tmp) / f"{arch}.xml", fp16=True)
                speeds["openvino-fp16"] = time_backend(OpenVINOBackend(xml, threads=threads, hint="LATENCY"), x, runs,
                                                       1)["images_per_s"]
            except Exception as exc:  # openvino missing or the conversion failed: say so, keep the others
                print(f"{arch}: openvino skipped ({type(exc).__name__})")
            best = max(speeds, key=lambda k: speeds[k])
            out[arch] = {"params_m": params, "images_per_s": speeds, "best": best, "best_images_per_s": speeds[best]}
            print(f"{arch}: {params:.2f} M params, " + ", ".join(f"{k} {v:.1f}" for k, v in speeds.items()))
    return out


def chart(speed: dict[str, dict], iou: dict[str, dict], bundled: dict | None, png: Path,
          subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for arch, s in speed.items():
        if arch in iou:
            ax.scatter(s["best_images_per_s"], iou[arch]["mean"], s=30 + 12 * s["params_m"], alpha=0.8)
            ax.annotate(f"{arch}\n({iou[arch]['run']}, {s['best']})", (s["best_images_per_s"], iou[arch]["mean"]),
                        textcoords="offset points", xytext=(6, 4), fontsize=7)
    if bundled and bundled["arch"] in speed:
        x = speed[bundled["arch"]]["best_images_per_s"]
        ax.scatter(x, bundled["mean"], marker="*", s=160, color="black")
        ax.annotate(f"bundled model ({bundled['steps']} steps)", (x, bundled["mean"]), textcoords="offset points",
                    xytext=(6, -10), fontsize=7)
    ax.set_xlabel("images/s at 448×448, batch 1, best runtime")
    ax.set_ylabel("crack IoU, validation, mean of the 6 sets")
    ax.set_title("Model zoo: speed against accuracy (thin-crack recipe)", fontsize=10)
    ax.text(0.01, 0.01, subtitle + "\n" + PAPER, transform=ax.transAxes, fontsize=6, va="bottom")
    ax.grid(alpha=0.3)
    ax.margins(x=0.3, y=0.15)  # room for the labels right of the points
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="time the architectures (else read the JSON)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = ROOT / "results" / ("smoke" if args.smoke else "")
    results.mkdir(parents=True, exist_ok=True)
    speed_json = results / "zoo_speed.json"
    if args.measure:
        archs = ARCHS[:2] if args.smoke else ARCHS
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        speed = measure(archs, args.threads, 2 if args.smoke else args.runs)
        doc = {"machine": machine(), "date": today(), "command": command_line(), "threads": args.threads,
               "load_before": load, "load_after": "/".join(f"{x:.1f}" for x in os.getloadavg()), "models": speed}
        speed_json.write_text(json.dumps(doc, indent=2) + "\n")
    if not speed_json.is_file():
        raise SystemExit(f"{speed_json} is missing: run with --measure first")
    doc = json.loads(speed_json.read_text())
    speed, iou, bundled = doc["models"], experiment_iou(), bundled_iou()
    png = (results if args.smoke else ROOT / "figures") / "zoo_speed_accuracy.png"
    subtitle = f"{doc['machine']}, {doc['threads']} threads, {doc['date']}, load {doc['load_before']}"
    chart(speed, iou, bundled, png, subtitle)
    lines = ["| architecture | params (M) | torch img/s | ONNX Runtime img/s | OpenVINO FP16 img/s | best | "
             "val IoU mean of sets (run) | val IoU pooled |", "|---|---:|---:|---:|---:|---|---:|---:|"]
    for arch, s in sorted(speed.items(), key=lambda kv: -kv[1]["best_images_per_s"]):
        ips = s["images_per_s"]
        acc = iou.get(arch)
        lines.append(f"| {arch} | {s['params_m']:.2f} | {ips['torch']:.1f} | {ips['onnxruntime']:.1f} | "
                     f"{ips['openvino-fp16']:.1f} | {s['best']} | " if "openvino-fp16" in ips else
                     f"| {arch} | {s['params_m']:.2f} | {ips['torch']:.1f} | {ips['onnxruntime']:.1f} | – | "
                     f"{s['best']} | ")
        lines[-1] += (f"{acc['mean']:.3f} ({acc['run']}) | {acc['pooled']:.3f} |" if acc else
                      "not trained with the recipe | – |")
    body = "\n".join([
        "## Model zoo: speed against accuracy (`benchmarks/zoo_chart.py`, issue 16)", "",
        f"- Command: `{doc['command']}` (speed), then `python benchmarks/zoo_chart.py` (chart)",
        f"- Machine: {doc['machine']}; {doc['threads']} threads; load average before/after {doc['load_before']} / "
        f"{doc['load_after']} (above the core count: contended). Date: {doc['date']}.",
        "- Speed: random weights, 448×448, batch 1, best of PyTorch eager / ONNX Runtime fp32 / OpenVINO FP16.",
        "- Accuracy: validation IoU of the short runs in `docs/model-experiments.md` (same recipe, equal "
        "wall-clock, 150-300 steps); ★ in the chart: the bundled model (same recipe, "
        + (f"{bundled['steps']} steps): validation {bundled['mean']:.3f} mean of sets / {bundled['pooled']:.3f} "
           f"pooled, test {bundled.get('test_pooled', float('nan')):.3f} pooled." if bundled else "long run)."),
        f"- For comparison, {PAPER}.", "", "\n".join(lines), "", f"![zoo chart](figures/{png.name})",
    ])
    print(body)
    if not args.smoke:
        write_section("zoo_chart", body)


if __name__ == "__main__":
    main()
