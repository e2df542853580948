"""Reproducible training: a seed reproduces a run bit for bit, a resumed run is the same run, and every
checkpoint read goes through one safe reader (in-process; the subprocess kills are in
test_training_processes.py)."""

from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from cracksam.data import CrackDataset, load_split
from cracksam.data.sampling import EpochSampler, draw_seed
from cracksam.data.synthetic import make_dataset
from cracksam.data.transforms import build_transform
from cracksam.errors import CheckpointError
from cracksam.models.run_checkpoint import load_checkpoint_file
from cracksam.models.segmodels import SegModelConfig
from cracksam.training.checkpoints import choose_resume_checkpoint
from cracksam.training.config import DataConfig, TrainConfig
from cracksam.training.trainer import fit
from tests._runs import assert_same_weights, last_weights


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("repro") / "syn", n=12, size=(80, 80))


def _config(root: Path, out: Path, **kw) -> TrainConfig:
    # Native pipeline with augmentation on (random scale, crack-centred crops, flips, rotation,
    # photometric jitter): every random source of a real run.
    cfg = TrainConfig(
        network=SegModelConfig(arch="unet_mobilenetv3_small", image_size=64),
        data=DataConfig(train=[str(root)], num_workers=0, crop=64, augment=True),
        batch_size=2, checkpoint_every=2, val_every_n_steps=3, seed=7, out_dir=str(out), progress=False,
    )
    cfg.optim.warmup_iters = 2
    cfg.optim.lr = 3e-3
    for key, value in {"max_iters": 7, **kw}.items():
        setattr(cfg, key, value)
    return cfg


# -- seeded augmentation --------------------------------------------------------------------------


def test_albumentations_pipeline_follows_its_seed():
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50), np.uint8)

    def run(seed):
        t = build_transform(32, augment=True, seed=seed)
        return [t(image=image, mask=mask)["image"] for _ in range(8)]

    assert all(np.array_equal(a, b) for a, b in zip(run(3), run(3), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(run(3), run(4), strict=True))


def test_a_draw_is_augmented_from_its_own_seed_whatever_came_before(root):
    samples = load_split([str(root)], "train")
    ds = CrackDataset(samples, 32, augment=True, seed=0)
    first = ds[(1, 123)]["image"]
    ds[(0, 5)], ds[(2, 9)]  # other draws in between (another worker's share, another order)
    assert torch.equal(ds[(1, 123)]["image"], first)
    assert not torch.equal(ds[(1, 124)]["image"], first)


def test_epoch_sampler_is_a_function_of_seed_epoch_and_position():
    s = EpochSampler(10, batch_size=3, seed=1)
    s.set_epoch(2)
    full = list(s)
    assert sorted(i for i, _ in full) == list(range(10))
    assert [d for _, d in full] == [draw_seed(1, 2, p) for p in range(10)]
    s.set_epoch(3)
    assert [i for i, _ in s] != [i for i, _ in full]  # a new order each epoch
    # Resumed after two batches of epoch 2: exactly the rest, once; then epochs as usual.
    s.resume_at(2, 2)
    assert list(s) == full[6:]
    assert list(s) == full
    # After the epoch's last batch, a resume starts the next epoch.
    s.resume_at(2, s.batches_per_epoch)
    assert s.epoch == 3 and len(list(s)) == 10
    # Ranks take disjoint shares of the same order (padded to equal length).
    ranks = [EpochSampler(10, 3, 1, rank=r, world=3) for r in range(3)]
    for r in ranks:
        r.set_epoch(2)
    shares = [list(r) for r in ranks]
    assert {len(x) for x in shares} == {4}
    assert {i for x in shares for i, _ in x} == set(range(10))


@pytest.mark.slow  # several short training runs
def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not(root, tmp_path):
    a = fit(_config(root, tmp_path / "a", max_iters=4))
    b = fit(_config(root, tmp_path / "b", max_iters=4))
    c = fit(_config(root, tmp_path / "c", max_iters=4, seed=8))
    assert_same_weights(last_weights(a.out_dir), last_weights(b.out_dir))
    assert a.best_iou == b.best_iou
    assert any(not torch.equal(x, y) for x, y in zip(last_weights(a.out_dir).values(), last_weights(c.out_dir).values(),
                                                     strict=True))


# -- exact resume -----------------------------------------------------------------------------------


class _CtrlCAt(L.Callback):
    """Sends this process SIGINT while step ``step + 1`` trains (what Ctrl-C does)."""

    def __init__(self, step: int) -> None:
        self.step, self.sent = step, False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def _validated_steps(run: Path) -> list[int]:
    import csv

    steps = []
    for part in sorted((run / "logs").glob("part*")):
        with open(part / "metrics.csv") as fh:
            steps += [int(r["step"]) for r in csv.DictReader(fh) if r.get("val/iou")]
    return steps


@pytest.mark.slow  # several short training runs
@pytest.mark.parametrize("signal_step", [3, 2])
def test_ctrl_c_then_resume_ends_with_the_uninterrupted_weights(root, tmp_path, signal_step):
    whole = fit(_config(root, tmp_path / "whole"))
    # Ctrl-C during step 4: stops after it (mid-epoch, between validations, off the checkpoint
    # period), writing the checkpoint there. During step 3, a validation step: it is validated
    # before the stop. The resumed run must cross an epoch end and a validation.
    stopped = fit(_config(root, tmp_path / "cut"), extra_callbacks=[_CtrlCAt(signal_step)])
    assert stopped.interrupted and stopped.global_step == signal_step + 1
    assert load_checkpoint_file(stopped.checkpoint)["global_step"] == signal_step + 1
    assert (tmp_path / "cut" / "checkpoints" / "previous.ckpt").is_file()  # the step-2 one, kept
    resumed = fit(_config(root, tmp_path / "cut"), resume=True)
    # Every validation of the uninterrupted run ran, once (none skipped or repeated by the resume).
    assert _validated_steps(tmp_path / "cut") == _validated_steps(whole.out_dir)
    assert resumed.global_step == whole.global_step == 7 and not resumed.interrupted
    assert_same_weights(last_weights(tmp_path / "cut"), last_weights(whole.out_dir))
    assert resumed.best_iou == whole.best_iou
    best_meta = [json.loads((run / "best" / "config.json").read_text()) for run in (tmp_path / "cut", whole.out_dir)]
    assert best_meta[0]["step"] == best_meta[1]["step"] and best_meta[0]["val_iou"] == best_meta[1]["val_iou"]


@pytest.mark.slow  # several short training runs
def test_resume_from_a_damaged_latest_uses_the_previous_one(root, tmp_path, recwarn):
    run = tmp_path / "run"
    fit(_config(root, run, max_iters=4))
    ckpts = run / "checkpoints"
    prev_step = load_checkpoint_file(ckpts / "previous.ckpt")["global_step"]
    (ckpts / "last.ckpt").write_bytes((ckpts / "last.ckpt").read_bytes()[:1000])  # truncated
    with pytest.warns(UserWarning, match=r"last\.ckpt: damaged checkpoint.*previous\.ckpt \(step 2\)"):
        assert choose_resume_checkpoint(ckpts) == ckpts / "previous.ckpt"
    assert prev_step == 2 and (ckpts / "last.ckpt.damaged").is_file()  # kept aside, not rotated over the good one


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"PK\x03\x04" + b"\0" * 100, "truncated"),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not a PyTorch checkpoint"),
    (pickle.dumps({"state_dict": {}, "loops": {}}), "raw pickle"),
])
def test_every_damaged_checkpoint_is_one_named_error(tmp_path, content, problem):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=problem) as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_torch_file_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "loops": {}, "x": Path("/etc")}, path)  # needs a full unpickler
    with pytest.raises(CheckpointError, match="Python objects"):
        load_checkpoint_file(path)


def test_a_flipped_byte_in_the_latest_checkpoint_resumes_from_the_previous_one(tmp_path):
    """Checkpoints carry a sha256 written beside them: a byte changed on disk inside a tensor (which
    torch would load without complaint) is refused by name and the resume takes previous.ckpt."""
    from cracksam.models.run_checkpoint import checksum_file
    from cracksam.training.checkpoints import SafeCheckpointIO

    io, ckpts = SafeCheckpointIO(), tmp_path / "checkpoints"
    for step in (2, 4):
        io.save_checkpoint({"state_dict": {"w": torch.full((4096,), float(step))}, "loops": {}, "global_step": step},
                           ckpts / "last.ckpt")
    assert checksum_file(ckpts / "last.ckpt").is_file() and checksum_file(ckpts / "previous.ckpt").is_file()
    assert load_checkpoint_file(ckpts / "previous.ckpt")["global_step"] == 2  # its own checksum moved with it
    raw = bytearray((ckpts / "last.ckpt").read_bytes())
    at = raw.index(np.float32(4.0).tobytes() * 64) + 100  # inside the tensor's data
    raw[at] ^= 0x10
    (ckpts / "last.ckpt").write_bytes(bytes(raw))
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 4  # torch alone does not notice
    with pytest.raises(CheckpointError, match=r"last\.ckpt: damaged checkpoint: its bytes do not match"):
        load_checkpoint_file(ckpts / "last.ckpt")
    with pytest.warns(UserWarning, match=r"do not match.*previous\.ckpt \(step 2\)"):
        assert choose_resume_checkpoint(ckpts) == ckpts / "previous.ckpt"
    # The next save starts a clean pair again.
    io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "loops": {}, "global_step": 6}, ckpts / "last.ckpt")
    assert load_checkpoint_file(ckpts / "last.ckpt")["global_step"] == 6
