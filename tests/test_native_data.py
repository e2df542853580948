"""Native-scale training pipeline, dataset sampling and skeleton targets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cracksam.data import CrackDataset, Sample
from cracksam.data.native import NativeTransform, rescale_pair
from cracksam.data.sampling import dataset_shares, sample_weights, weighted_sampler
from cracksam.data.skeleton import skeleton_target
from cracksam.errors import ConfigError


def _line_pair(size: int = 120, width: int = 2, col: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Grey image with a dark vertical line ``width`` px wide, and its mask."""
    img = np.full((size, size, 3), 150, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[:, col : col + width] = 1
    img[mask > 0] = 20
    return img, mask


def _fixed(scale: float, crop: int = 64, **kw) -> NativeTransform:
    t = NativeTransform(crop=crop, scale_range=(scale, scale), crack_centred=1.0, augment_geometry=False,
                        photometric=0.0, **kw)
    t.set_random_seed(0)
    return t


@pytest.mark.parametrize(("scale", "width"), [(1.0, 2), (2.0, 4), (0.5, 1)])
def test_line_width_follows_scale(scale: float, width: int) -> None:
    """A 2-px line stays 2 px at scale 1, is 4 px at scale 2 and 1 px at 0.5 (mutants: the old
    resize-to-S step before the crop, or the scale applied to one axis only, change these widths)."""
    img, mask = _line_pair()
    out = _fixed(scale)(image=img, mask=mask)
    widths = out["mask"].sum(axis=1)
    assert out["mask"].shape == (64, 64)
    assert set(widths.tolist()) == {width}
    # the image shows the line exactly where the mask does (dark pixels)
    dark = out["image"][..., 0] < 85
    assert np.array_equal(dark, out["mask"] > 0)


def test_rescale_pair_keeps_aspect_ratio() -> None:
    img = np.zeros((30, 90, 3), np.uint8)
    mask = np.zeros((30, 90), np.uint8)
    im2, m2 = rescale_pair(img, mask, 2.0)
    assert im2.shape == (60, 180, 3) and m2.shape == (60, 180)


def test_image_and_mask_stay_aligned_under_every_augmentation() -> None:
    """Geometry (flips, turns, rotation) and photometric jitter on: the mask must still mark the
    dark pixels (mutant: augmenting image and mask with different random draws)."""
    rng = np.random.default_rng(1)
    mask = np.zeros((100, 140), np.uint8)
    for _ in range(4):  # random crack-like strokes
        y, x = rng.integers(10, 90), rng.integers(10, 130)
        mask[y : y + 3, max(0, x - 30) : x + 30] = 1
    img = np.where(mask[..., None] > 0, 0, 220).astype(np.uint8).repeat(3, axis=2)
    t = NativeTransform(crop=64, scale_range=(0.7, 1.5), crack_centred=0.5, augment_geometry=True,
                        photometric=0.0)
    t.set_random_seed(3)
    for _ in range(30):
        out = t(image=img, mask=mask)
        dark = out["image"][..., 0] < 110
        agree = (dark == (out["mask"] > 0)).mean()
        # rotation interpolates the image linearly but the mask by nearest: a rim of 1 px differs
        assert agree > 0.97


def test_photometric_changes_image_not_mask() -> None:
    img, mask = _line_pair()
    t = NativeTransform(crop=64, scale_range=(1.0, 1.0), crack_centred=1.0, augment_geometry=False,
                        photometric=1.0)
    t.set_random_seed(0)
    outs = [t(image=img, mask=mask) for _ in range(20)]
    assert all(set(o["mask"].sum(axis=1).tolist()) == {2} for o in outs)
    assert any(not np.array_equal(o["image"][..., 0] > 85, o["mask"] == 0) or o["image"].std() > 0 for o in outs)
    backgrounds = {int(o["image"][0, 0, 0]) for o in outs}
    assert len(backgrounds) > 3  # brightness really varies


def test_small_images_are_reflect_padded() -> None:
    img, mask = _line_pair(size=40, col=10)
    out = _fixed(1.0, crop=96)(image=img, mask=mask)
    assert out["image"].shape == (96, 96, 3)
    # reflection repeats the line, so the padded window holds more than one line
    assert out["mask"].sum() > 2 * 96


def test_crack_centred_crops_hit_cracks() -> None:
    """With crack_centred=1 every crop holds crack pixels; with 0 most do not (1 crack pixel per
    ~100 columns). Mutant: ignoring crack_centred."""
    img, mask = _line_pair(size=400, width=1, col=200)
    centred = NativeTransform(crop=32, scale_range=(1.0, 1.0), crack_centred=1.0, augment_geometry=False,
                              photometric=0.0)
    uniform = NativeTransform(crop=32, scale_range=(1.0, 1.0), crack_centred=0.0, augment_geometry=False,
                              photometric=0.0)
    centred.set_random_seed(0)
    uniform.set_random_seed(0)
    hits_c = sum(centred(image=img, mask=mask)["mask"].any() for _ in range(50))
    hits_u = sum(uniform(image=img, mask=mask)["mask"].any() for _ in range(50))
    assert hits_c == 50
    assert hits_u < 20


def test_scale_is_log_uniform_within_range() -> None:
    t = NativeTransform(crop=8, scale_range=(0.5, 2.0))
    t.set_random_seed(0)
    s = np.array([t.sample_scale() for _ in range(4000)])
    assert s.min() >= 0.5 and s.max() <= 2.0
    # log-uniform: as many draws below 1 as above (uniform would put 1/3 below 1)
    assert abs((s < 1.0).mean() - 0.5) < 0.04


def test_same_seed_same_crops() -> None:
    img, mask = _line_pair()
    a, b = NativeTransform(crop=48), NativeTransform(crop=48)
    a.set_random_seed(7)
    b.set_random_seed(7)
    for _ in range(5):
        oa, ob = a(image=img, mask=mask), b(image=img, mask=mask)
        assert np.array_equal(oa["image"], ob["image"]) and np.array_equal(oa["mask"], ob["mask"])


def test_bad_transform_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="scale_range"):
        NativeTransform(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="crack_centred"):
        NativeTransform(crack_centred=1.5)


# -- sampling ----------------------------------------------------------------------------------


def _samples(counts: dict[str, int]) -> list[Sample]:
    return [Sample(f"{d}{i}", Path(f"{d}{i}.png"), Path(f"{d}{i}.png"), d) for d, n in counts.items() for i in range(n)]


def test_dataset_shares() -> None:
    counts = {"big": 100, "small": 25}
    assert dataset_shares(counts, "size") == pytest.approx({"big": 0.8, "small": 0.2})
    assert dataset_shares(counts, "sqrt") == pytest.approx({"big": 10 / 15, "small": 5 / 15})
    assert dataset_shares(counts, "equal") == pytest.approx({"big": 0.5, "small": 0.5})
    assert dataset_shares(counts, {"big": 1.0, "small": 3.0}) == pytest.approx({"big": 0.25, "small": 0.75})
    with pytest.raises(ConfigError, match="not in the training data"):
        dataset_shares(counts, {"other": 1.0})
    with pytest.raises(ConfigError, match="weighting"):
        dataset_shares(counts, "log")


def test_weighted_sampler_draws_each_dataset_by_its_share() -> None:
    samples = _samples({"big": 100, "small": 25})
    w = sample_weights(samples, "sqrt")
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx((10 / 15) / 100) and w[-1] == pytest.approx((5 / 15) / 25)
    drawn = Counter(samples[i].dataset for i in weighted_sampler(samples, "sqrt", num_samples=6000, seed=0))
    assert drawn["small"] / 6000 == pytest.approx(1 / 3, abs=0.03)
    again = list(weighted_sampler(samples, "sqrt", num_samples=50, seed=0))
    assert again == list(weighted_sampler(samples, "sqrt", num_samples=50, seed=0))


# -- skeleton targets --------------------------------------------------------------------------


def test_skeleton_target_of_a_thick_line() -> None:
    mask = np.zeros((20, 30), np.uint8)
    mask[8:13, 3:27] = 1  # 5 px thick
    sk0 = skeleton_target(mask, dilate=0)
    assert sk0[10, 6:24].all() and sk0.sum() <= 26 and not sk0[8].any()
    sk1 = skeleton_target(mask, dilate=1)
    assert sk1[9:12, 6:24].all() and not sk1[8, 6:24].any()
    assert skeleton_target(np.zeros((5, 5), np.uint8)).sum() == 0


def test_dataset_serves_native_crops_and_skeletons(tmp_path: Path) -> None:
    import cv2

    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img, mask = _line_pair(size=50, width=3, col=20)
    cv2.imwrite(str(root / "images" / "a.png"), img)
    cv2.imwrite(str(root / "masks" / "a.png"), mask * 255)
    sample = Sample("a", root / "images" / "a.png", root / "masks" / "a.png", "set")
    ds = CrackDataset([sample], native=_fixed(1.0, crop=64), skeleton=0)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].is_contiguous()
    assert item["mask"].dtype == torch.int64 and item["skeleton"].shape == (64, 64)
    assert set(item["mask"].sum(1).tolist()) <= {3, 6}  # one line, or a reflected copy beside it
    assert item["skeleton"].sum(1).max() <= 2 and item["skeleton"].sum() > 0
    whole = CrackDataset([sample], native_eval=True)[0]
    assert whole["image"].shape == (3, 50, 50) and int(whole["mask"].sum()) == 150


def _sharpness(img: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(img[..., 0].astype(np.float32), cv2.CV_32F).var())


def test_degrade_blurs_or_darkens_every_crop_and_leaves_the_mask() -> None:
    """``degrade=1``: every crop loses sharpness (each branch ends in a blur or a down-up sampling)
    while the mask stays exact; ``degrade=0`` leaves the pixels untouched (mutants: the option not
    wired into the transform, a branch without blur, the mask degraded with the image)."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    mask = np.zeros((96, 96), np.uint8)
    mask[:, 40:43] = 1
    plain = _fixed(1.0, crop=96)(image=img, mask=mask)
    assert np.array_equal(plain["image"], img)
    t = _fixed(1.0, crop=96, degrade=1.0)
    darker = 0
    for _ in range(12):
        out = t(image=img, mask=mask)
        assert np.array_equal(out["mask"], mask)
        assert _sharpness(out["image"]) < 0.5 * _sharpness(img)
        darker += out["image"].mean() < img.mean() - 10
    assert 0 < darker < 12  # the darkening branch is drawn sometimes, not always


def test_degrade_is_a_probability() -> None:
    with pytest.raises(ValueError, match="degrade must be in"):
        NativeTransform(degrade=1.5)
