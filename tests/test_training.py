"""Training: loss (Eq. 6-8), schedule, a real tiny run, resume, the CLI and what it prints (progress
lines with --no-progress, the learning rate in scientific notation, no Lightning chatter)."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError
from cracksam.models import CrackSAMConfig, DeltaConfig, load_model
from cracksam.training.config import DataConfig, TrainConfig
from cracksam.training.losses import CrackLoss, soft_dice_loss
from cracksam.training.schedule import lr_factor
from cracksam.training.trainer import fit


def test_schedule_matches_formula():
    base, warm, max_iter, power = 4e-4, 300, 10_000, 6
    lr = lambda it: base * lr_factor(it, warm, max_iter, power)  # noqa: E731
    assert lr(0) == 0.0
    assert lr(150) == pytest.approx(base * 0.5)
    assert lr(299) == pytest.approx(base * 299 / 300)
    assert lr(300) == pytest.approx(base)
    for it in (301, 1000, 5000, 10_299):
        assert lr(it) == pytest.approx(base * (1 - (it - 300) / max_iter) ** 6)
    assert lr(10_300) == 0.0 and lr(20_000) == 0.0  # clipped, never negative or growing again
    assert lr(1000) > lr(5000) > lr(9000)


def _reference_loss(logits: np.ndarray, target: np.ndarray, lam: float, mode: str) -> float:
    """Eq. 6-8 written out in NumPy."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)  # (B, C, H, W)
    b, c, h, w = p.shape
    onehot = np.stack([(target == k) for k in range(c)], axis=1).astype(np.float64)
    ce = -(onehot * np.log(p)).sum(axis=1).mean()
    dices = []
    for k in range(c):
        inter = (p[:, k] * onehot[:, k]).sum()
        dices.append(1 - (2 * inter + 1e-5) / (p[:, k].sum() + onehot[:, k].sum() + 1e-5))
    dice = dices[1] if mode == "crack" else np.mean(dices)
    return lam * ce + (1 - lam) * dice


@pytest.mark.parametrize("mode", ["crack", "mean"])
def test_loss_matches_direct_computation(mode):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 8, 9, generator=g, dtype=torch.float64)
    target = (torch.rand(3, 8, 9, generator=g) > 0.8).long()
    total, ce, dice = CrackLoss(0.2, mode)(logits, target)
    assert total.item() == pytest.approx(_reference_loss(logits.numpy(), target.numpy(), 0.2, mode), rel=1e-6)
    assert total.item() == pytest.approx(0.2 * ce.item() + 0.8 * dice.item())


def test_dice_of_perfect_prediction_is_zero():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1:3, 1:3] = 1
    logits = torch.stack([(1 - target) * 50.0, target * 50.0], dim=1).float()
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice_loss(-logits, target).item() == pytest.approx(1.0, abs=1e-4)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "syn", n=12, size=(80, 80))


def _config(root: Path, out: Path, **kw) -> TrainConfig:
    cfg = TrainConfig(
        model=CrackSAMConfig("tiny", image_size=64, delta=DeltaConfig("adapter+lora")),
        data=DataConfig(train=[str(root)], num_workers=0, augment=False),
        batch_size=4,
        checkpoint_every=5,
        out_dir=str(out),
        progress=False,
        **kw,
    )
    cfg.optim.warmup_iters = 5
    cfg.optim.lr = 2e-3
    return cfg


def _losses(run: Path) -> list[tuple[int, float]]:
    with open(run / "logs" / "part0" / "metrics.csv") as fh:
        return [(int(r["step"]), float(r["train/loss"])) for r in csv.DictReader(fh) if r.get("train/loss")]


def test_tiny_training_run_lowers_the_loss(synthetic_root, tmp_path):
    cfg = _config(synthetic_root, tmp_path / "run", max_iters=40)
    result = fit(cfg)
    assert result.global_step == 40
    losses = [v for _, v in _losses(result.out_dir)]
    assert len(losses) >= 8
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.03
    # The resolved config is saved with the run and reads back as the same config.
    saved = yaml.safe_load((result.out_dir / "config.yaml").read_text())
    assert saved["max_iters"] == 40 and saved["model"]["backbone"] == "tiny"
    # Best model by validation IoU, in the delta format, loadable.
    meta = json.loads((result.best_dir / "config.json").read_text())
    assert meta["kind"] == "delta" and meta["val_iou"] == pytest.approx(result.best_iou)
    assert load_model(result.best_dir, allow_random_base=True) is not None
    assert (result.out_dir / "tb").is_dir()
    # The Lightning checkpoint carries only the trainable weights.
    ckpt = torch.load(result.out_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any("qkv.weight" in k for k in ckpt["state_dict"])
    assert any("lora_A" in k for k in ckpt["state_dict"])


class _CtrlCAt(L.Callback):
    """Ctrl-C while the step after ``step`` trains: the installed SIGINT handler is called directly.

    Not a real ``os.kill``: in the long default pytest process a real signal can land on a thread of
    a native library loaded by earlier tests (the process then died with SIGSEGV); the real signal is
    sent to a real CLI process in tests/test_training_processes.py (isolated pass)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            handler = signal.getsignal(signal.SIGINT)
            assert callable(handler), "fit() installs a SIGINT handler"
            handler(signal.SIGINT, None)


class _Probe(L.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.step = trainer.global_step
        opt = trainer.optimizers[0]
        self.state = {k: v["exp_avg"].clone() for k, v in enumerate(opt.state.values())}
        self.lr = opt.param_groups[0]["lr"]


def test_resume_continues_from_the_last_checkpoint(synthetic_root, tmp_path):
    cfg = _config(synthetic_root, tmp_path / "run", max_iters=20)
    stopped = fit(cfg, extra_callbacks=[_CtrlCAt(12)])
    # Stopped at the step boundary after the signal, with the checkpoint written there.
    assert stopped.interrupted and stopped.global_step == 13
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert stopped.checkpoint == last
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 13
    saved_avg = [s["exp_avg"] for s in saved["optimizer_states"][0]["state"].values()]

    # A fresh run into the same folder is refused instead of overwriting it.
    with pytest.raises(ConfigError, match="--resume"):
        fit(cfg)
    probe = _Probe()
    result = fit(cfg, resume=True, extra_callbacks=[probe])
    assert probe.step == 13
    assert len(probe.state) == len(saved_avg)
    for got, want in zip(probe.state.values(), saved_avg, strict=True):
        torch.testing.assert_close(got, want)
    assert probe.lr == pytest.approx(cfg.optim.lr * lr_factor(13, 5, 20, 6.0))
    assert result.global_step == 20
    # The first part's log survives the resume; the second continues the step count.
    assert _losses(tmp_path / "run")
    with open(tmp_path / "run" / "logs" / "part1" / "metrics.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert min(steps) >= 13


def test_train_cli(synthetic_root, tmp_path, capsys):
    out = tmp_path / "cli-run"
    argv = [
        "train",
        "--data",
        str(synthetic_root),
        "--backbone",
        "tiny",
        "--image-size",
        "64",
        "--delta",
        "lora",
        "--max-iters",
        "3",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    printed, err = capsys.readouterr()
    summary = json.loads(printed[printed.rindex('{\n  "run"') :])
    assert summary["steps"] == 3 and summary["best"] == str(out / "best")
    # The split sizes, once, at the start: the test split is counted though training never reads it.
    from cracksam.data import load_split

    n = {split: len(load_split([synthetic_root], split)) for split in ("train", "val", "test")}
    assert n["test"] > 0 and err.count("test image(s)") == 1
    assert f"data: {n['train']} train, {n['val']} val, {n['test']} test image(s)" in err
    assert (out / "best" / "config.json").exists() and (out / "checkpoints" / "last.ckpt").exists()
    assert main(argv) == 2  # existing run, no --resume
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--data", "/nonexistent/folder"], "nonexistent"),
        (["--data", "{root}", "--delta", "prefix"], "model.delta.kind (--delta): 'prefix' is not one of"),
        (["--data", "{root}", "--image-size", "50"], "multiple of 16"),
        (["--data", "{root}", "--batch-size", "0"], "batch_size"),
        (["--data", "{root}", "--precision", "8-bit"], "precision"),
        (["--config", "{cfg}"], "unknown key"),
        ([], "no training data"),
    ],
)
def test_train_cli_rejects_bad_input(synthetic_root, tmp_path, capsys, extra, needle):
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("batch_sise: 4\n")
    extra = [e.format(root=synthetic_root, cfg=bad_cfg) for e in extra]
    rc = main(["train", "--backbone", "tiny", "--image-size", "64", "--out", str(tmp_path / "r"), *extra])
    assert rc == 2
    assert needle in capsys.readouterr().err


def test_print_config_round_trips(tmp_path, capsys):
    assert main(["train", "--print-config", "--backbone", "vit_h", "--delta", "lora", "--rank", "1"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "c.yaml"
    path.write_text(text)
    from cracksam.config import load_yaml

    cfg = load_yaml(TrainConfig, path)
    assert cfg.model.backbone == "vit_h" and cfg.model.delta.lora.rank == 1
    assert cfg.optim.lr == 4e-4 and cfg.optim.betas == [0.9, 0.999] and cfg.optim.weight_decay == 0.01
    assert cfg.optim.warmup_iters == 300 and cfg.optim.poly_power == 6.0 and cfg.batch_size == 8
    assert cfg.epochs == 140 and cfg.loss.ce_weight == 0.2


# Its own pytest process (`pytest -m slow`, run by CI): in the same process as the ONNX Runtime /
# OpenVINO tests, that process has segfaulted while this test waited for its child.
@pytest.mark.slow
def test_resume_after_the_process_is_killed(synthetic_root, tmp_path):
    """SIGKILL (no chance to save): ``--resume`` continues from the last periodic checkpoint.

    Both runs are separate processes, as for a user; the in-process resume test above checks the
    restored optimiser state."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "cracksam.cli.main", "train", "--data", str(synthetic_root), "--backbone", "tiny",
            "--image-size", "64", "--delta", "lora", "--max-iters", "150", "--batch-size", "4", "--workers", "0",
            "--checkpoint-every", "3", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.ckpt"
    log = out / "logs" / "part0" / "metrics.csv"
    deadline = time.monotonic() + 120
    try:
        # Wait until a few periodic checkpoints have been written, then kill without warning.
        while time.monotonic() < deadline and proc.poll() is None:
            if last.exists() and log.exists() and len(log.read_text().splitlines()) > 4:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "training ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    step = torch.load(last, weights_only=True)["global_step"]
    assert 3 <= step < 150
    done = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    final = torch.load(last, weights_only=True)
    assert final["global_step"] == 150
    with open(out / "logs" / "part1" / "metrics.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert min(steps) >= step  # continued, not restarted from 0


def test_encoder_lr_scale_gives_a_pretrained_encoder_its_own_learning_rate(tiny_config):
    """``optim.encoder_lr_scale``: the smp encoder's parameters in a group of their own at a fraction of
    the learning rate (kept through the schedule, which multiplies each group's initial lr); every
    trainable parameter in exactly one group; a model without such an encoder refused by name."""
    from cracksam.models import build_cracksam, create_model
    from cracksam.training.config import OptimConfig
    from cracksam.training.module import SegmentationModule

    model = create_model("unet_efficientnet_lite0", image_size=64)
    scaled = TrainConfig(optim=OptimConfig(lr=0.002, encoder_lr_scale=0.1))
    optimizer = SegmentationModule(model, scaled, max_iters=10).configure_optimizers()["optimizer"]
    rest, encoder = optimizer.param_groups
    encoder_ids = {id(p) for p in model.net.encoder.parameters()}
    assert {id(p) for p in encoder["params"]} == encoder_ids
    assert not encoder_ids & {id(p) for p in rest["params"]}
    assert len(rest["params"]) + len(encoder["params"]) == len(list(model.parameters()))
    # (the scheduler has set "lr" to the warm-up start; "initial_lr" is what it scales)
    assert encoder["initial_lr"] == pytest.approx(0.0002) and rest["initial_lr"] == pytest.approx(0.002)
    (one,) = SegmentationModule(model, TrainConfig(optim=OptimConfig(lr=0.002)), 10).configure_optimizers()[
        "optimizer"].param_groups
    assert len(one["params"]) == len(list(model.parameters()))
    with pytest.raises(ConfigError, match="encoder_lr_scale 0.1 needs a network with a pretrained encoder"):
        SegmentationModule(build_cracksam(tiny_config("lora")), scaled, 10).configure_optimizers()
    with pytest.raises(ConfigError, match="encoder_lr_scale must be between 0 and 1"):
        TrainConfig(optim=OptimConfig(encoder_lr_scale=1.5))


def test_learning_rate_shown_in_scientific_notation(monkeypatch):
    from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

    from cracksam.training.progress import CrackProgressBar, format_lr

    assert format_lr(4e-4) == "4.00e-04"
    monkeypatch.setattr(ProgressBar, "get_metrics", lambda self, trainer, module: {"lr": 0.0004, "v_num": 0})
    assert CrackProgressBar().get_metrics(None, None) == {"lr": "4.00e-04"}


def test_no_progress_prints_periodic_lines_and_no_lightning_chatter(tmp_path, capfd):
    data = make_dataset(tmp_path / "d", n=8, size=(64, 64))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--backbone", "tiny", "--image-size", "64", "--delta", "lora",
            "--max-iters", "4", "--batch-size", "2", "--workers", "0", "-o", str(out), "--no-progress"]
    assert main(argv) == 0
    captured = capfd.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("step ")]
    assert [line.split(",")[0].split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(" lr " in line and "e-" in line or "e+00" in line for line in lines)
    assert "validation at step 4: IoU" in captured.err
    for chatter in ("Tip", "GPU available", "TPU available", "LeafSpec", "deprecated", "litlogger"):
        assert chatter not in captured.err + captured.out, chatter
    assert json.loads(captured.out[captured.out.rindex('{\n  "run"'):])["steps"] == 4
