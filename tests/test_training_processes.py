"""Training in real processes: SIGKILL and Ctrl-C at a step, then ``--resume``,
end with the weights of the uninterrupted run; damaged checkpoints are one ``error:`` line; a
two-process DDP run (gloo) keeps its ranks equal and validates on the whole validation set.

Subprocesses started late in a long pytest process have crashed it (see test_startup.py), so
these run in processes of their own (``-m slow`` / ``-m isolated``)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cracksam.data.synthetic import make_dataset
from cracksam.models.run_checkpoint import load_checkpoint_file
from tests._runs import assert_same_weights, last_weights

HOOKED = str(Path(__file__).parent / "_train_with_hooks.py")
pytestmark = [pytest.mark.slow, pytest.mark.isolated]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("faults") / "syn", n=20, size=(80, 80))


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--arch", "unet_mobilenetv3_small", "--image-size", "64", "--crop", "64",
            "--max-iters", "8", "--batch-size", "2", "--workers", "0", "--checkpoint-every", "2",
            "--val-every-n-steps", "3", "--warmup", "2", "--lr", "0.003", "--seed", "5", "--out", str(out),
            "--no-progress", *extra]


def _train(argv: list[str], env: dict[str, str] | None = None, timeout: int = 400) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    environ.pop("CRACKSAM_TEST_SIGNAL_AT", None)
    return subprocess.run([sys.executable, HOOKED, *argv], capture_output=True, text=True, timeout=timeout,
                          env={**environ, **(env or {})})


def _best(run: Path) -> dict:
    from safetensors.torch import load_file

    meta = json.loads((run / "best" / "config.json").read_text())
    weights = load_file(run / "best" / "weights.safetensors")
    return {"step": meta["step"], "val_iou": meta["val_iou"], "weights": weights}


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    done = _train(_argv(data, out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("step, signame", [(5, "SIGKILL"), (3, "SIGINT"), (6, "SIGINT")])
def test_killed_or_interrupted_then_resumed_is_the_uninterrupted_run(data, whole, tmp_path, step, signame):
    out = tmp_path / "run"
    cut = _train(_argv(data, out), env={"CRACKSAM_TEST_SIGNAL_AT": f"{step}:{signame}"})
    last = out / "checkpoints" / "last.ckpt"
    if signame == "SIGKILL":
        assert cut.returncode == -9
        assert load_checkpoint_file(last)["global_step"] == 4  # the last periodic checkpoint
    else:
        # Ctrl-C: stops once the step under way is done, writes the checkpoint there, says how to go on.
        assert cut.returncode == 130, cut.stderr[-3000:]
        assert load_checkpoint_file(last)["global_step"] == step + 1
        assert f"checkpoint: {last}" in cut.stderr and f"cracksam train --resume --out {out}" in cut.stderr
        assert "Traceback" not in cut.stderr
    done = _train([*_argv(data, out), "--resume"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout[done.stdout.rindex('{\n  "run"'):])["steps"] == 8
    assert_same_weights(last_weights(out), last_weights(whole))
    mine, theirs = _best(out), _best(whole)
    assert (mine["step"], mine["val_iou"]) == (theirs["step"], theirs["val_iou"])
    assert_same_weights(mine["weights"], theirs["weights"])


def test_damaged_checkpoints_are_one_error_line_and_leave_no_log_part(data, whole, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(whole, out)
    parts = sorted(p.name for p in (out / "logs").iterdir())
    ckpts = out / "checkpoints"
    (ckpts / "last.ckpt").write_bytes(b"")
    (ckpts / "previous.ckpt").write_bytes(os.urandom(3000))
    done = _train([*_argv(data, out), "--resume"], timeout=200)
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert str(ckpts / "last.ckpt") in errors[0] and "empty" in errors[0] and "previous" in errors[0]
    assert sorted(p.name for p in (out / "logs").iterdir()) == parts


def test_two_process_ddp_run_keeps_ranks_equal_and_validates_the_whole_set(data, tmp_path):
    from cracksam.config import load_yaml
    from cracksam.data import CrackDataset
    from cracksam.evaluation.metrics import metrics_from_counts
    from cracksam.models.segmodels import build_segmodel
    from cracksam.training.config import TrainConfig
    from cracksam.training.module import SegmentationModule
    from cracksam.training.trainer import _load_samples

    out, dumps = tmp_path / "ddp", tmp_path / "ranks"
    argv = _argv(data, out, "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp")
    argv[argv.index("--max-iters") + 1] = "4"
    done = _train(argv, env={"CRACKSAM_TEST_DUMP_WEIGHTS": str(dumps)}, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(dumps / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert_same_weights(ranks[0], ranks[1])
    # Written once, by rank 0: one log part, the checkpoints and best/ whole and nothing half-written.
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["part0"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "last.ckpt", "last.ckpt.sha256", "previous.ckpt", "previous.ckpt.sha256"]
    assert load_checkpoint_file(out / "checkpoints" / "last.ckpt")["global_step"] == 4
    assert json.loads((out / "best" / "config.json").read_text())["step"] in (3, 4)

    # The final validation's IoU is the whole validation set's, not one rank's share.
    cfg = load_yaml(TrainConfig, out / "config.yaml")
    _, val = _load_samples(cfg)
    assert len(val) >= 3
    model = build_segmodel(cfg.network)
    model.load_state_dict({k.removeprefix("model."): v for k, v in ranks[0].items() if k.startswith("model.")})
    module = SegmentationModule(model, cfg, 4).eval()
    counts = []
    with torch.no_grad():
        for item in CrackDataset(val, native_eval=True):
            prob = module._val_logits(item["image"][None]).softmax(1)[0, 1]
            pred, truth = prob >= cfg.threshold, item["mask"].bool()
            counts.append([int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())])

    def iou(rows):
        return float(metrics_from_counts(*[sum(c) for c in zip(*rows, strict=True)])["iou"])

    with open(out / "logs" / "part0" / "metrics.csv") as fh:
        logged = [float(r["val/iou"]) for r in csv.DictReader(fh) if r.get("val/iou")]
    assert logged[-1] == pytest.approx(iou(counts), abs=1e-6)
    halves = [iou(counts[0::2]), iou(counts[1::2])]
    assert any(abs(h - iou(counts)) > 1e-4 for h in halves)  # so the check above can tell them apart
