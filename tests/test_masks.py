"""The one mask reader (:func:`cracksam.data.masks.read_mask`) and measurement's view of it
(:func:`cracksam.measurement.io.read_binary_mask`: bool, MeasurementError in the words of ``measure``).

Measurement once had its own OpenCV reader with other rules; the cases where the two
readers disagreed are pinned here with what the one reader now says.  Masks with many grey levels
(JPEG, anti-aliased) are read with a mask threshold, in ``train`` and ``evaluate`` too."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cracksam.cli.main import main
from cracksam.data import load_split, masks, scan_folder
from cracksam.data.dataset import CrackDataset
from cracksam.data.io import read_image
from cracksam.data.masks import MaskFileError, MaskLevelError
from cracksam.data.masks import read_mask as read_data_mask
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError, DatasetError
from cracksam.measurement import MeasurementError, read_binary_mask


def _cross() -> np.ndarray:
    mask = np.zeros((6, 10), np.uint8)
    mask[1, :] = 255
    mask[:, 2] = 255
    return mask


def _save(path: Path, array: np.ndarray, mode: str | None = None, **kw) -> Path:
    Image.fromarray(array, mode).save(path, **kw)
    return path


def test_measurement_reads_every_encoding_as_the_data_reader_does(tmp_path):
    mask = _cross()
    red = np.zeros((*mask.shape, 3), np.uint8)
    red[..., 0] = mask
    grey = mask.copy()
    grey[3, 5] = 100  # a third level: refused without a threshold, below 0.5 with one
    cases = {
        "m255.png": _save(tmp_path / "m255.png", mask),
        "m01.png": _save(tmp_path / "m01.png", mask // 255),
        "red.png": _save(tmp_path / "red.png", red),
        "m16.png": _save(tmp_path / "m16.png", mask.astype(np.uint16) * 257),
        "grey.png": _save(tmp_path / "grey.png", grey),
    }
    for name, path in cases.items():
        for threshold in ((0.5,) if name == "grey.png" else (None, 0.5)):
            got = read_binary_mask(path, threshold=threshold)
            assert got.dtype == bool, name
            np.testing.assert_array_equal(got, read_data_mask(path, threshold=threshold).astype(bool), err_msg=name)
            np.testing.assert_array_equal(got, mask > 0, err_msg=name)
    assert not read_binary_mask(cases["grey.png"], threshold=0.5)[3, 5]
    assert read_binary_mask(cases["grey.png"], threshold=0.3)[3, 5]


def test_a_mask_is_read_upright_as_its_photo_is(tmp_path):
    """OpenCV's unchanged read ignored EXIF orientation: the mask of a portrait photo came out
    landscape and no longer fitted the photo (read_image applies the tag)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = _save(tmp_path / "m.png", _cross(), "L", exif=exif)
    photo = _save(tmp_path / "p.png", np.zeros((6, 10, 3), np.uint8), "RGB", exif=exif)
    upright = np.rot90(_cross(), k=-1) > 0
    np.testing.assert_array_equal(read_binary_mask(path), upright)
    assert read_image(photo).shape[:2] == read_binary_mask(path).shape == (10, 6)


def test_a_palette_mask_is_read_by_its_index_not_its_colour(tmp_path):
    """A label map whose background index shows as white: OpenCV read the colours, so the
    measurement measured the background as crack."""
    labels = Image.fromarray((_cross() > 0).astype(np.uint8), "P")
    labels.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    labels.save(tmp_path / "labels.png")
    np.testing.assert_array_equal(read_binary_mask(tmp_path / "labels.png"), _cross() > 0)


def test_two_crack_colours_are_refused_by_measure_too(tmp_path):
    """Measurement accepted a red and a green crack on black (two levels per channel); the data
    reader refused three colours.  The stricter rule holds for both now."""
    rgb = np.zeros((6, 10, 3), np.uint8)
    rgb[1, :] = (255, 0, 0)
    rgb[:, 2] = (0, 255, 0)
    path = _save(tmp_path / "two.png", rgb)
    with pytest.raises(MaskLevelError):
        read_data_mask(path)
    with pytest.raises(MeasurementError, match=r"two\.png: not a binary mask .*--threshold"):
        read_binary_mask(path)
    assert read_binary_mask(path, threshold=0.5).sum() == (_cross() > 0).sum()


def test_a_crack_drawn_in_alpha_on_black_is_the_mask(tmp_path):
    """The data reader dropped alpha and read such a mask as empty; measurement took the alpha."""
    rgba = np.zeros((6, 10, 4), np.uint8)
    rgba[..., 3] = _cross()
    grey_alpha = np.dstack([np.zeros((6, 10), np.uint8), _cross()])
    for path in (_save(tmp_path / "a.png", rgba, "RGBA"), _save(tmp_path / "la.png", grey_alpha, "LA")):
        np.testing.assert_array_equal(read_data_mask(path), (_cross() > 0).astype(np.uint8), err_msg=path.name)
        np.testing.assert_array_equal(read_binary_mask(path), _cross() > 0, err_msg=path.name)
    # Opaque (uniform alpha) or with a coloured crack: alpha is ignored.
    rgba[..., 3] = 255
    rgba[..., 0] = _cross()
    np.testing.assert_array_equal(read_data_mask(_save(tmp_path / "b.png", rgba, "RGBA")), _cross() > 0)


def test_files_with_nothing_to_decode_are_named_errors(tmp_path, monkeypatch):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "text.png").write_text("not an image")
    for name, words in (("empty.png", "file is empty"), ("folder.png", "is a folder"),
                        ("gone.png", "file not found")):
        with pytest.raises(MaskFileError, match=f"{name}: {words}"):
            read_data_mask(tmp_path / name)
        with pytest.raises(MeasurementError, match=f"{name}: {words}"):
            read_binary_mask(tmp_path / name)
    with pytest.raises(MeasurementError, match=r"text\.png: not a readable image"):
        read_binary_mask(tmp_path / "text.png")

    def denied(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    good = _save(tmp_path / "good.png", _cross())
    monkeypatch.setattr(masks, "open", denied, raising=False)  # root reads any file; pretend it cannot
    with pytest.raises(MaskFileError, match=r"good\.png: cannot read \(Permission denied\)"):
        read_data_mask(good)
    with pytest.raises(MeasurementError, match=r"good\.png: cannot read \(Permission denied\)"):
        read_binary_mask(good)


# --- a mask threshold: masks with many grey levels (JPEG, anti-aliased) -------------------------


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
    mask = read_data_mask(samples[0].mask, threshold=0.5)
    np.testing.assert_array_equal(mask, (grey > 127.5).astype(np.uint8))
    # The threshold is a share of full scale (255), not of the mask's own maximum.
    low = read_data_mask(samples[0].mask, threshold=0.9)
    np.testing.assert_array_equal(low, (grey > 229.5).astype(np.uint8))
    # Datasets read the masks the way they were scanned.
    split = load_split([root], "all", mask_threshold=0.5)
    _, served = CrackDataset(split).load_original(0)
    np.testing.assert_array_equal(served, mask)


def test_a_threshold_keeps_zero_one_masks_and_sixteen_bit_masks_intact(tmp_path):
    zero_one = np.zeros((8, 8), np.uint8)
    zero_one[2:4] = 1
    cv2.imwrite(str(tmp_path / "a.png"), zero_one)
    np.testing.assert_array_equal(read_data_mask(tmp_path / "a.png", threshold=0.5), zero_one)
    deep = zero_one.astype(np.uint16) * 40000
    cv2.imwrite(str(tmp_path / "b.png"), deep)
    np.testing.assert_array_equal(read_data_mask(tmp_path / "b.png", threshold=0.5), zero_one)
    np.testing.assert_array_equal(read_data_mask(tmp_path / "b.png", threshold=0.7), np.zeros_like(zero_one))


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
