"""How the bundled default model and the Table B.1 study were produced on a borrowed GPU.

The same configs run unchanged on a CPU (``scripts/train_default_model.sh``,
``scripts/kd_table_b1.sh``); on the 2-core development machine the default model would need
several hours, so the runs were made on a GPU lent for 15 minutes.  The number of steps is
chosen from a measured step rate so that the run fits the time available (``--budget`` seconds).

Usage: python scripts/device_train_default.py --budget 240 --out runs
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from cracksam.config import load_yaml, save_yaml
from cracksam.evaluation.protocol import ProtocolConfig, load_eval_model, run_protocol
from cracksam.training.config import DistillConfig, TrainConfig
from cracksam.training.trainer import fit

D = "../shared/datasets"
TRAIN_SETS = ["cfd", "cracksc", "crack500_crops", "deepcrack_crops", "gaps384_crops", "shadowcrack_crops"]


def _config(path: str, out: Path, accelerator: str, workers: int) -> TrainConfig:
    cfg = load_yaml(TrainConfig, path)
    cfg.accelerator, cfg.out_dir, cfg.data.num_workers, cfg.progress = accelerator, str(out), workers, False
    return cfg


def _steps_per_second(cfg: TrainConfig, out: Path, steps: int = 60) -> float:
    cfg.max_iters, cfg.out_dir, cfg.val_every = steps, str(out), 10_000
    t0 = time.perf_counter()
    fit(cfg)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=240.0, help="seconds for the default model's training")
    ap.add_argument("--kd-steps", type=int, default=600)
    ap.add_argument("--out", type=Path, default=Path("runs"))
    ap.add_argument("--accelerator", default="gpu")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--smoke", action="store_true", help="a few steps and one test set: checks the script runs")
    args = ap.parse_args()
    tests = ["cfd"] if args.smoke else TRAIN_SETS
    log: dict = {"budget_s": args.budget}

    # 1. default model: steps chosen from a measured rate (incl. validation every 2 epochs ~ +15 %).
    probe = _config("configs/default_model.yaml", args.out / "probe", args.accelerator, args.workers)
    rate = _steps_per_second(probe, args.out / "probe", steps=3 if args.smoke else 60)
    cfg = _config("configs/default_model.yaml", args.out / "default-model", args.accelerator, args.workers)
    per_epoch = math.ceil(3641 / cfg.batch_size)
    cfg.max_iters = max(per_epoch * 2, int(args.budget * rate / 1.15) // per_epoch * per_epoch)
    if args.smoke:
        cfg.max_iters, cfg.epochs, cfg.val_every, cfg.data.train = None, 1, 1, [f"{D}/cfd"]
    log.update(probe_steps_per_s=rate, max_iters=cfg.max_iters, epochs=(cfg.max_iters or per_epoch) / per_epoch)
    print(json.dumps(log), flush=True)
    t0 = time.perf_counter()
    result = fit(cfg)
    log.update(train_seconds=time.perf_counter() - t0, best_val_iou=result.best_iou, steps=result.global_step)
    print(json.dumps(log), flush=True)
    save_yaml(cfg, args.out / "default-model" / "config.resolved.yaml")

    # 2. model-card figures: every training set's test split, both corruptions, zero-shot on aiglern.
    dev = "cuda" if args.accelerator == "gpu" else "cpu"
    t0 = time.perf_counter()
    run_protocol(
        [load_eval_model(result.best_dir, device=dev, name="default")],
        ProtocolConfig(test=[f"{D}/{s}" for s in tests], unseen=[f"{D}/aiglern_crops"], device=dev,
                       progress=False, workers=args.workers),
        args.out / "default-model" / "eval",
    )
    log["eval_seconds"] = time.perf_counter() - t0
    print(json.dumps(log), flush=True)

    # 3. Table B.1: one student, same data and schedule, without / with CWD from the default model.
    kd_out = args.out / "kd"
    plain = _config("configs/kd_student.yaml", kd_out / "student-plain", args.accelerator, args.workers)
    plain.max_iters = args.kd_steps
    if args.smoke:
        plain.max_iters, plain.epochs, plain.data.train = None, 1, [f"{D}/cfd"]
    t0 = time.perf_counter()
    fit(plain)
    distilled = _config("configs/kd_student.yaml", kd_out / "student-kd", args.accelerator, args.workers)
    distilled.max_iters, distilled.epochs, distilled.data.train = plain.max_iters, plain.epochs, plain.data.train
    distilled.distill = DistillConfig(teacher=str(result.best_dir))
    fit(distilled)
    log["kd_train_seconds"] = time.perf_counter() - t0
    models = [
        load_eval_model(kd_out / "student-plain" / "best", device=dev, name="student"),
        load_eval_model(kd_out / "student-kd" / "best", device=dev, name="student + CWD"),
        load_eval_model(result.best_dir, device=dev, name="teacher (default model)"),
    ]
    run_protocol(models, ProtocolConfig(test=[f"{D}/{s}" for s in (tests[:1] if args.smoke else TRAIN_SETS[:3])],
                                        unseen=[f"{D}/aiglern_crops"], device=dev, progress=False,
                                        workers=args.workers), kd_out / "eval")
    print(json.dumps(log), flush=True)
    (args.out / "device_log.json").write_text(json.dumps(log, indent=2))


if __name__ == "__main__":
    main()
