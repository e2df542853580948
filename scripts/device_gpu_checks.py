"""GPU checks that CI (CPU only) cannot make: the CUDA paths of the predictor and trainer, and
CrackSAM forward speed on a GPU.  Run on a borrowed GPU; results go to benchmarks/RESULTS.md.

Usage: python scripts/device_gpu_checks.py --out gpu_checks.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cracksam.data.synthetic import make_dataset, synthetic_pair
from cracksam.inference.backends import TorchBackend
from cracksam.inference.predictor import Predictor
from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, load_model
from cracksam.training.config import DataConfig, TrainConfig
from cracksam.training.trainer import fit


def _forward_speed(backbone: str, dtype: torch.dtype | None, batch: int = 8, reps: int = 10) -> float:
    model = build_cracksam(CrackSAMConfig(backbone, 448, DeltaConfig("adapter+lora")), device="cuda").eval()
    x = torch.rand(batch, 3, 448, 448, device="cuda") * 255
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        for _ in range(2):
            model(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        torch.cuda.synchronize()
    del model
    torch.cuda.empty_cache()
    return batch * reps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("gpu_checks.json"))
    args = ap.parse_args()
    res: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}

    # 1. The bundled default model gives the same mask on CPU and CUDA (one Predictor, two devices).
    image, _ = synthetic_pair((600, 800), seed=5)
    cpu = Predictor.from_path(None, device="cpu").predict_one(image)
    gpu = Predictor.from_path(None, device="cuda").predict_one(image)
    a, b = cpu.mask(), gpu.mask()
    res["default_model_cpu_vs_cuda"] = {
        "max_abs_prob_diff": float(np.abs(cpu.prob - gpu.prob).max()),
        "mask_iou": float((a & b).sum() / max(1, (a | b).sum())),
        "crack_pixels_cpu": int(a.sum()), "crack_pixels_cuda": int(b.sum()),
    }
    # Tile mode on CUDA, batched tiles.
    big, _ = synthetic_pair((1500, 2200), seed=6)
    t0 = time.perf_counter()
    model = load_model("src/cracksam/weights/default", map_location="cuda")
    tiled = Predictor(TorchBackend(model, device="cuda"), mode="tile", batch_size=16).predict_one(big)
    res["tile_2200x1500_cuda_s"] = time.perf_counter() - t0
    res["tile_mask_shape"] = list(tiled.prob.shape)

    # 2. CrackSAM forward on the GPU (random weights; speed does not depend on them).
    res["cracksam_forward_img_per_s_batch8_448"] = {
        f"{bb}_{name}": _forward_speed(bb, dt) for bb in ("vit_b", "vit_l", "vit_h")
        for name, dt in (("fp32", None), ("bf16", torch.bfloat16))
    }

    # 3. Training on the GPU with mixed precision: a CrackSAM (tiny) and a student, a few steps each.
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "syn", n=16, size=(96, 96))
        for name, kw in (
            ("cracksam_tiny_bf16", dict(model=CrackSAMConfig("tiny", 64, DeltaConfig("adapter+lora")),
                                        precision="bf16-mixed")),
            ("student_16mixed", dict(precision="16-mixed")),
        ):
            cfg = TrainConfig(data=DataConfig(train=[str(root)], num_workers=2), batch_size=4, max_iters=12,
                              accelerator="gpu", out_dir=str(Path(tmp) / name), progress=False, **kw)
            if name.startswith("student"):
                from cracksam.models.segmodels import SegModelConfig

                cfg.network = SegModelConfig("unet_mobilenetv3_small", image_size=64)
            t0 = time.perf_counter()
            result = fit(cfg)
            res[f"train_{name}"] = {"steps": result.global_step, "best_val_iou": result.best_iou,
                                    "seconds": time.perf_counter() - t0,
                                    "best_saved": result.best_dir is not None}
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
