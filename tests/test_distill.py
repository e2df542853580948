"""Channel-wise distillation: the loss against Eq. B.1-B.2 in NumPy, the teacher cache, and a
tiny distillation run; students trained and saved through the same trainer as CrackSAM."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cracksam.cli.main import main
from cracksam.data import CrackDataset, Sample, load_split
from cracksam.data.synthetic import make_dataset
from cracksam.errors import CheckpointError
from cracksam.models import build_cracksam, export_full, load_model
from cracksam.models.segmodels import SegModel, SegModelConfig
from cracksam.training.config import DataConfig, DistillConfig, TrainConfig
from cracksam.training.losses import channel_wise_distillation_loss
from cracksam.training.teacher import TeacherCache, fill_cache, teacher_identity
from cracksam.training.trainer import fit


def _reference_cwd(student: np.ndarray, teacher: np.ndarray, t: float) -> float:
    """Eq. B.1 (spatial softmax per channel at temperature T) and B.2 (T²/C · Σ_c KL), batch mean."""
    b, c = student.shape[:2]
    total = 0.0
    for i in range(b):
        for k in range(c):
            s = student[i, k].ravel() / t
            q = teacher[i, k].ravel() / t
            ps = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            pt = np.exp(q - q.max()) / np.exp(q - q.max()).sum()
            total += t * t / c * float(np.sum(pt * np.log(pt / ps)))
    return total / b


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_cwd_loss_matches_numpy(temperature):
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 2, 5, 7, generator=g, dtype=torch.float64) * 3
    teacher = torch.randn(2, 2, 5, 7, generator=g, dtype=torch.float64) * 3
    got = channel_wise_distillation_loss(student, teacher, temperature).item()
    assert got == pytest.approx(_reference_cwd(student.numpy(), teacher.numpy(), temperature), rel=1e-5)
    assert got > 0


def test_cwd_loss_is_zero_for_identical_logits_and_needs_matching_channels():
    x = torch.randn(3, 2, 6, 6)
    assert channel_wise_distillation_loss(x, x.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)
    # A constant shift per channel does not change a spatial softmax.
    assert channel_wise_distillation_loss(x + 4.0, x, 3.0).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError):
        channel_wise_distillation_loss(torch.randn(1, 3, 4, 4), torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError):
        channel_wise_distillation_loss(x, x, 0.0)


def test_cwd_loss_resizes_the_student_to_the_teacher():
    teacher = torch.randn(1, 2, 8, 8)
    student = torch.nn.functional.interpolate(teacher, size=(4, 4), mode="bilinear", align_corners=False)
    student.requires_grad_(True)
    loss = channel_wise_distillation_loss(student, teacher, 3.0)
    loss.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    assert loss.item() < channel_wise_distillation_loss(torch.zeros(1, 2, 4, 4), teacher, 3.0).item()


# -- teacher cache ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("kd") / "syn", n=12, size=(80, 80), seed=3)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, tiny_config_module):
    torch.manual_seed(0)
    model = build_cracksam(tiny_config_module(kind="full", image_size=64))
    return export_full(model, tmp_path_factory.mktemp("teacher") / "t")


@pytest.fixture(scope="module")
def tiny_config_module():
    from cracksam.models import CrackSAMConfig, DeltaConfig

    return lambda kind="full", image_size=64: CrackSAMConfig("tiny", image_size=image_size, delta=DeltaConfig(kind))


class _MaskTeacher:
    """A 'teacher' whose logits are exactly the crack mask of the image it is given (dark pixels)."""

    name, precision, image_size = "test", "fp32", 64

    def run(self, x: np.ndarray) -> np.ndarray:
        crack = (x.mean(axis=1) < 60).astype(np.float32)
        return np.stack([1 - crack, crack], axis=1) * 10.0


def test_teacher_logits_are_augmented_like_the_mask(data_root, tmp_path):
    samples = load_split(data_root, "all")
    cache = TeacherCache(tmp_path / "cache", "mask-teacher", 64)
    assert fill_cache(cache, _MaskTeacher(), samples, progress=False) == len(samples)
    assert fill_cache(cache, _MaskTeacher(), samples, progress=False) == 0  # all cached now
    stored = cache.load(samples[0])
    assert stored.dtype == np.float16 and stored.shape == (2, 64, 64)
    ds = CrackDataset(samples, 64, augment=True, crop=48, teacher=cache, seed=1)
    agreements = []
    for i in range(len(ds)):
        item = ds[i]
        assert item["teacher"].shape == (2, 48, 48) and item["image"].shape == (3, 48, 48)
        teacher_crack = (item["teacher"][1] > item["teacher"][0]).numpy()
        image_dark = (item["image"].mean(0) < 60).numpy()
        agreements.append((teacher_crack == image_dark).mean())
    # Flips, 90° turns, rotations and the crop moved the cached logits with the image.
    assert np.mean(agreements) > 0.97


def test_cache_key_changes_with_each_component_alone(data_root, tmp_path, teacher_dir):
    """Each part of the key -- image path, file size, modification time, teacher id, input size --
    changed alone gives a new key; nothing changed gives the same key.  Mutant killed: the key
    built from the teacher id and size only (image path / size / mtime ignored).  (The old
    ``a != b != c`` was a chained comparison that never compared the two images.)"""
    import dataclasses
    import os
    import shutil

    image = tmp_path / "img" / "a.png"
    image.parent.mkdir()
    shutil.copy2(load_split(data_root, "all")[0].image, image)
    sample = Sample(stem="a", image=image, mask=image, dataset="d")
    cache = TeacherCache(tmp_path / "cache", "teacher-a", 64)
    key = cache.key(sample)
    assert len(key) == 32 and cache.key(dataclasses.replace(sample, stem="b", dataset="e")) == key
    assert TeacherCache(tmp_path / "elsewhere", "teacher-a", 64).key(sample) == key  # the folder is not part
    keys = {"reference": key}
    keys["teacher id"] = TeacherCache(tmp_path / "cache", "teacher-b", 64).key(sample)
    keys["input size"] = TeacherCache(tmp_path / "cache", "teacher-a", 32).key(sample)
    other = tmp_path / "img" / "b.png"  # same bytes, same mtime, another path
    shutil.copy2(image, other)
    assert other.stat().st_mtime_ns == image.stat().st_mtime_ns
    keys["path"] = cache.key(dataclasses.replace(sample, image=other))
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: one second newer
    keys["mtime"] = cache.key(sample)
    with open(image, "ab") as fh:  # one byte longer, mtime put back to the touched time
        fh.write(b"\0")
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    keys["size"] = cache.key(sample)
    assert len(set(keys.values())) == len(keys), keys
    ident = teacher_identity(teacher_dir)
    assert ident == json.loads((teacher_dir / "config.json").read_text())["weights_sha256"][:16]
    cache.store(sample, np.zeros((2, 32, 32), np.float32))
    with pytest.raises(CheckpointError, match="shape"):
        cache.load(sample)


# -- training students, with and without a teacher ----------------------------------------------


def _student_config(root: Path, out: Path, distill: DistillConfig | None, **kw) -> TrainConfig:
    cfg = TrainConfig(
        network=SegModelConfig("unet_mobilenetv3_small", image_size=64),
        distill=distill,
        data=DataConfig(train=[str(root)], num_workers=0, augment=True, crop=48),
        batch_size=4,
        checkpoint_every=50,
        out_dir=str(out),
        progress=False,
        **kw,
    )
    cfg.optim.warmup_iters = 2
    cfg.optim.lr = 3e-3
    return cfg


def _column(run: Path, name: str) -> list[float]:
    with open(run / "logs" / "part0" / "metrics.csv") as fh:
        return [float(r[name]) for r in csv.DictReader(fh) if r.get(name)]


def test_distillation_lowers_the_soft_loss(data_root, teacher_dir, tmp_path):
    kd = DistillConfig(teacher=str(teacher_dir), weight=5.0, temperature=3.0)
    cfg = _student_config(data_root, tmp_path / "kd", kd, max_iters=30)
    cfg.loss.ce_weight = 0.2
    result = fit(cfg)
    soft = _column(result.out_dir, "train/soft")
    assert len(soft) >= 5
    assert np.mean(soft[-3:]) < np.mean(soft[:3]) * 0.9
    cached = list((result.out_dir / "teacher_cache").glob("*.npy"))
    assert len(cached) == len(load_split(data_root, "train"))
    # The best student is a whole-model checkpoint that loads as a SegModel.
    meta = json.loads((result.best_dir / "config.json").read_text())
    assert meta["architecture"] == "segmodel" and meta["kind"] == "full"
    from cracksam.config import default_file_mode

    assert (result.best_dir / "weights.safetensors").stat().st_mode & 0o777 == default_file_mode()
    student = load_model(result.best_dir)
    assert isinstance(student, SegModel)
    assert student(torch.rand(1, 3, 64, 64) * 255).shape == (1, 2, 64, 64)


def test_distill_cli_needs_a_teacher(data_root, tmp_path, capsys):
    code = main(["distill", "--data", str(data_root), "--arch", "unet_mobilenetv3_small", "--out", str(tmp_path)])
    assert code == 2
    assert "teacher" in capsys.readouterr().err


def test_distill_cli_records_the_setup(data_root, teacher_dir, tmp_path, capsys):
    code = main([
        "distill", "--data", str(data_root), "--arch", "unet_mobilenetv3_small", "--image-size", "64",
        "--teacher", str(teacher_dir), "--kd-weight", "2.5", "--print-config", "--out", str(tmp_path / "r"),
    ])
    assert code == 0
    import yaml

    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["network"] == {"arch": "unet_mobilenetv3_small", "image_size": 64, "pretrained": False,
                              "init_weights": None, "class_names": ["background", "crack"], "inference_mode": "native",
                              "inference_scale": 1.0}
    assert cfg["distill"]["teacher"] == str(teacher_dir)
    assert cfg["distill"]["weight"] == 2.5 and cfg["distill"]["temperature"] == 3.0


def test_train_cli_rejects_bad_student_options(data_root, tmp_path, capsys):
    assert main(["train", "--data", str(data_root), "--arch", "no_such_net", "--out", str(tmp_path / "a")]) == 2
    assert "unknown architecture" in capsys.readouterr().err
    args = ["train", "--data", str(data_root), "--arch", "unet_mobilenetv3_small", "--image-size", "64",
            "--crop", "80", "--out", str(tmp_path / "b")]
    assert main(args) == 2
    assert "crop" in capsys.readouterr().err


def test_a_missing_teacher_is_reported_before_the_run_is_written(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["distill", "--data", str(data_root), "--arch", "unet_mobilenetv3_small", "--image-size", "64",
                 "--teacher", str(tmp_path / "no-such-teacher"), "--out", str(out), "--no-progress"])
    assert code == 2
    assert "no-such-teacher: model not found" in capsys.readouterr().err
    assert not (out / "config.yaml").exists()
