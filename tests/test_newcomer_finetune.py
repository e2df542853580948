"""Issue 12 points 9 and 15: masks with many grey levels (JPEG, anti-aliased) are read with a mask
threshold, and ``train --init-from`` fine-tunes the bundled model (or any of ours) on one's data."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from cracksam.cli.main import main
from cracksam.data import load_split, read_mask, scan_folder
from cracksam.data.dataset import CrackDataset
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError, DatasetError
from cracksam.models import load_model
from cracksam.models.default import default_model_path


def _jpeg_dataset(root, n=6, size=64):
    """Masks saved as JPEG after a blur: dozens of grey levels around every crack edge."""
    make_dataset(root, n=n, size=(size, size))
    for png in sorted((root / "masks").glob("*.png")):
        mask = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(png.with_suffix(".jpg")), cv2.GaussianBlur(mask, (3, 3), 0), [cv2.IMWRITE_JPEG_QUALITY, 70])
        png.unlink()
    return root


def test_jpeg_masks_are_refused_by_default_with_a_hint_naming_the_option(tmp_path):
    root = _jpeg_dataset(tmp_path / "jpeg")
    with pytest.raises(DatasetError, match="values other than two levels") as info:
        scan_folder(root)
    assert "--mask-threshold" in str(info.value)


def test_a_mask_threshold_accepts_jpeg_masks_and_binarises_at_that_level(tmp_path):
    root = _jpeg_dataset(tmp_path / "jpeg")
    samples = scan_folder(root, mask_threshold=0.5)
    assert len(samples) == 6 and all(s.mask_threshold == 0.5 for s in samples)
    grey = cv2.imread(str(samples[0].mask), cv2.IMREAD_GRAYSCALE)
    assert len(np.unique(grey)) > 2  # really many levels
    mask = read_mask(samples[0].mask, threshold=0.5)
    np.testing.assert_array_equal(mask, (grey > 127.5).astype(np.uint8))
    # The threshold is a share of full scale (255), not of the mask's own maximum.
    low = read_mask(samples[0].mask, threshold=0.9)
    np.testing.assert_array_equal(low, (grey > 229.5).astype(np.uint8))
    # Datasets read the masks the way they were scanned.
    split = load_split([root], "all", mask_threshold=0.5)
    _, served = CrackDataset(split).load_original(0)
    np.testing.assert_array_equal(served, mask)


def test_a_threshold_keeps_zero_one_masks_and_sixteen_bit_masks_intact(tmp_path):
    zero_one = np.zeros((8, 8), np.uint8)
    zero_one[2:4] = 1
    cv2.imwrite(str(tmp_path / "a.png"), zero_one)
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png", threshold=0.5), zero_one)
    deep = zero_one.astype(np.uint16) * 40000
    cv2.imwrite(str(tmp_path / "b.png"), deep)
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png", threshold=0.5), zero_one)
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png", threshold=0.7), np.zeros_like(zero_one))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 128.0])
def test_a_mask_threshold_outside_zero_one_is_refused(tmp_path, bad):
    root = make_dataset(tmp_path / "d", n=2, size=(32, 32))
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        scan_folder(root, mask_threshold=bad)


def test_train_and_evaluate_take_mask_threshold(tmp_path, capsys):
    root = _jpeg_dataset(tmp_path / "jpeg", n=8, size=64)
    base = ["train", "--data", str(root), "--backbone", "tiny", "--image-size", "64", "--delta", "lora",
            "--batch-size", "2", "--workers", "0", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "refused")]) == 2
    assert "--mask-threshold" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "cfg"), "--mask-threshold", "0.5", "--print-config"]) == 0
    assert "mask_threshold: 0.5" in capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "bad"), "--mask-threshold", "128", "--print-config"]) == 2
    assert "error:" in capsys.readouterr().err
    out = tmp_path / "eval"
    argv = ["evaluate", "--test", str(root), "--test-split", "all", "--conditions", "clean", "--out", str(out),
            "--no-progress", "--device", "cpu"]
    assert main(argv) == 2
    assert "--mask-threshold" in capsys.readouterr().err
    assert main([*argv, "--mask-threshold", "0.5"]) == 0
    assert (out / "summary.json").is_file() or list(out.iterdir())


# ------------------------------------------------------------------------------------- init-from


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_init_from_default_takes_the_bundled_architecture_and_weights():
    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from
    from cracksam.training.trainer import _build_model

    cfg = TrainConfig(init_from="default")
    apply_init_from(cfg)
    bundled = load_model(default_model_path())
    assert cfg.network is not None and cfg.network.arch == bundled.config.arch and not cfg.network.pretrained
    model = _build_model(cfg)
    mine, theirs = _params(model), _params(bundled)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_init_from_refuses_a_different_arch_and_shape_flags(tmp_path, capsys):
    from cracksam.models.segmodels import SegModelConfig
    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from

    cfg = TrainConfig(init_from="default", network=SegModelConfig(arch="unet"))
    with pytest.raises(ConfigError, match="--arch"):
        apply_init_from(cfg)
    rc = main(["train", "--init-from", "default", "--delta", "lora", "--data", str(tmp_path), "--print-config"])
    assert rc == 2 and "--delta" in capsys.readouterr().err


def test_fine_tuning_the_bundled_model_starts_from_its_weights(tmp_path, capsys):
    data = make_dataset(tmp_path / "own", n=6, size=(64, 64))
    out = tmp_path / "ft"
    # A learning rate of 1e-12 leaves the weights where they started: the trained model must then
    # equal the bundled one (a random start would differ everywhere).
    argv = ["train", "--init-from", "default", "--data", str(data), "--crop", "32", "--max-iters", "1",
            "--batch-size", "2", "--lr", "1e-12", "--warmup", "0", "--workers", "0", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.rindex('{\n  "run"'):])
    assert summary["best"] == str(out / "best")
    tuned, bundled = _params(load_model(out / "best")), _params(load_model(default_model_path()))
    assert max(float((tuned[k] - bundled[k]).abs().max()) for k in bundled) < 1e-6
    assert "init_from: default" in (out / "config.yaml").read_text()


def test_init_from_a_cracksam_delta_continues_its_delta_and_refuses_a_full_export(tmp_path):
    from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full, save_delta
    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from
    from cracksam.training.trainer import _build_model

    net = build_cracksam(CrackSAMConfig("tiny", 64, DeltaConfig("lora")))
    with torch.no_grad():  # a delta that is not the zero-initialised one a fresh model has
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.01)
    delta = save_delta(net, tmp_path / "delta")
    cfg = TrainConfig(init_from=str(delta))
    apply_init_from(cfg)
    assert cfg.network is None and cfg.model.backbone == "tiny" and cfg.model.delta.kind == "lora"
    model = _build_model(cfg, allow_random_base=True)
    saved, mine = net.trainable_state_dict(), model.trainable_state_dict()
    assert saved.keys() == mine.keys() and all(torch.equal(saved[k], mine[k]) for k in saved)
    assert any(p.requires_grad for p in model.parameters())
    full = export_full(net, tmp_path / "full")
    with pytest.raises(ConfigError, match="full CrackSAM export"):
        apply_init_from(TrainConfig(init_from=str(full)))


def test_init_from_an_old_unchecksummed_folder_needs_trust(tmp_path, capsys):
    """A model folder written before checksums were required (format 1) is refused by --init-from
    unless --trust is given, as on every other command that loads a model (issue 12 gap)."""
    import shutil
    import warnings

    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from, load_init_model

    old = tmp_path / "old"
    shutil.copytree(default_model_path(), old)
    meta = json.loads((old / "config.json").read_text())
    for key in ("config_sha256", "weights_sha256"):
        meta.pop(key, None)
    (old / "config.json").write_text(json.dumps(meta))
    data = make_dataset(tmp_path / "d", n=4, size=(64, 64))
    argv = ["train", "--init-from", str(old), "--data", str(data), "--print-config"]
    assert main(argv) == 2
    assert "--trust" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*argv, "--trust"]) == 0
        assert "init_trust: true" in capsys.readouterr().out
        cfg = TrainConfig(init_from=str(old), init_trust=True)
        apply_init_from(cfg)
        tuned, bundled = _params(load_init_model(cfg)), _params(load_model(default_model_path()))
    assert all(torch.equal(tuned[k], bundled[k]) for k in bundled)
