"""Tests of cracksam.data: file reading, folder validation, splits, corruptions, transforms, dataset.

Everything is generated in tmp_path with numpy + OpenCV/Pillow; no shared datasets are needed.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cracksam.data import (
    CORRUPTIONS,
    CrackDataset,
    MaskLevelError,
    Sample,
    assign_groups,
    blurry,
    build_transform,
    dim,
    gaussian_blur,
    get_corruption,
    image_shape,
    load_split,
    read_image,
    read_mask,
    scan_folder,
    split_assignment,
    split_samples,
)
from cracksam.errors import DatasetError

# --------------------------------------------------------------------------------------- helpers


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _random_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _random_mask(h: int, w: int, seed: int = 0) -> np.ndarray:
    """H x W uint8 {0, 1}: a diagonal 'crack' band (never empty) plus a few random blobs."""
    rng = _rng(seed + 1000)
    mask = np.zeros((h, w), np.uint8)
    for y in range(h):
        x = (y * w) // h
        mask[y, max(0, x - 1) : x + 2] = 1
    for _ in range(3):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        mask[y : y + max(1, h // 6), x : x + max(1, w // 6)] = 1
    return mask


def _save_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path)
    return path


def _save_gray(path: Path, gray: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gray, "L").save(path)
    return path


def make_dataset(root: Path, stems: list[str], size: tuple[int, int] = (24, 32), image_ext: str = ".png") -> Path:
    """A valid dataset folder: ``images/<stem><image_ext>`` + ``masks/<stem>.png`` (0/255)."""
    h, w = size
    for i, stem in enumerate(stems):
        _save_rgb(root / "images" / f"{stem}{image_ext}", _random_rgb(h, w, seed=i))
        _save_gray(root / "masks" / f"{stem}.png", _random_mask(h, w, seed=i) * 255)
    return root


def _raises_naming(func, *names: str) -> str:
    """Call ``func``; it must raise DatasetError whose message contains every name."""
    with pytest.raises(DatasetError) as info:
        func()
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in error message:\n{message}"
    return message


# ------------------------------------------------------------------------------------- read_image


def test_read_image_rgb_png_roundtrip(tmp_path: Path) -> None:
    rgb = _random_rgb(7, 9)
    out = read_image(_save_rgb(tmp_path / "a.png", rgb))
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.writeable


def test_read_image_grayscale(tmp_path: Path) -> None:
    gray = _rng().integers(0, 256, size=(5, 6), dtype=np.uint8)
    out = read_image(_save_gray(tmp_path / "g.png", gray))
    assert out.shape == (5, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_read_image_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = _rng().integers(0, 256, size=(5, 6, 4), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = read_image(path)
    np.testing.assert_array_equal(out, rgba[:, :, :3])


def test_read_image_palette(tmp_path: Path) -> None:
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (200, 10, 30)
    rgb[3:, 4:] = (5, 250, 90)
    pal = Image.fromarray(rgb, "RGB").quantize(colors=4)
    assert pal.mode == "P"
    path = tmp_path / "p.png"
    pal.save(path)
    np.testing.assert_array_equal(read_image(path), np.asarray(pal.convert("RGB")))
    np.testing.assert_array_equal(read_image(path), rgb)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_read_image_16bit_is_scaled_not_truncated(tmp_path: Path, ext: str) -> None:
    values = np.array([[0, 257, 257 * 100], [257 * 200, 65535, 32768]], dtype=np.uint16)
    path = tmp_path / f"d{ext}"
    Image.fromarray(values).save(path)
    out = read_image(path)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    expected = np.array([[0, 1, 100], [200, 255, 128]], dtype=np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], expected)


def test_read_image_cmyk(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0] = (255, 0, 0)
    rgb[1] = (0, 255, 0)
    rgb[2] = (0, 0, 255)
    rgb[3] = (255, 255, 255)
    cmyk = Image.fromarray(rgb, "RGB").convert("CMYK")
    path = tmp_path / "c.tif"
    cmyk.save(path)
    assert Image.open(path).mode == "CMYK"
    np.testing.assert_array_equal(read_image(path), rgb)


def test_read_image_exif_orientation(tmp_path: Path) -> None:
    # Stored 40 wide x 20 tall: left half red, right half blue. Orientation 6 = rotate 90 deg
    # clockwise for display, so the displayed image is 20 wide x 40 tall with red on top.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    Image.fromarray(stored, "RGB").save(path, exif=exif, quality=95)
    out = read_image(path)
    assert out.shape == (40, 20, 3)
    assert image_shape(path) == (40, 20)
    top, bottom = out[5, 10].astype(int), out[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    text = tmp_path / "not_an_image.png"
    text.write_text("hello")
    _raises_naming(lambda: read_image(text), str(text))
    _raises_naming(lambda: read_image(tmp_path / "missing.jpg"), "missing.jpg", "not found")

    for ext in (".png", ".jpg"):
        good = _save_rgb(tmp_path / f"full{ext}", _random_rgb(64, 64))
        data = good.read_bytes()
        cut = tmp_path / f"truncated{ext}"
        cut.write_bytes(data[: len(data) // 2])
        _raises_naming(lambda cut=cut: read_image(cut), str(cut))
        _raises_naming(lambda cut=cut: read_mask(cut), str(cut))


def test_read_image_max_pixels(tmp_path: Path) -> None:
    path = _save_rgb(tmp_path / "big.png", _random_rgb(10, 20))
    message = _raises_naming(lambda: read_image(path, max_pixels=199), str(path), "20x10")
    assert "too large" in message
    assert read_image(path, max_pixels=200).shape == (10, 20, 3)
    assert read_image(path, max_pixels=None).shape == (10, 20, 3)


# -------------------------------------------------------------------------------------- read_mask


def test_mask_encodings_are_read_the_same(tmp_path: Path) -> None:
    binary = _random_mask(9, 11)
    paths = {
        "01": _save_gray(tmp_path / "m01.png", binary),
        "0255": _save_gray(tmp_path / "m0255.png", binary * 255),
        "rgb": _save_rgb(tmp_path / "mrgb.png", np.repeat(binary[:, :, None] * 255, 3, axis=2)),
        "red": _save_rgb(tmp_path / "mred.png", np.dstack([binary * 255, binary * 0, binary * 0])),
        "bmp": _save_gray(tmp_path / "m.bmp", binary * 255),
    }
    one_bit = tmp_path / "m1.png"
    Image.fromarray(binary.astype(bool)).save(one_bit)
    paths["1bit"] = one_bit
    rgba = np.dstack([np.repeat(binary[:, :, None] * 255, 3, axis=2), np.full(binary.shape, 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mrgba.png")
    paths["rgba"] = tmp_path / "mrgba.png"
    palette = Image.fromarray(binary, "L").convert("P")
    palette.save(tmp_path / "mp.png")
    paths["palette"] = tmp_path / "mp.png"
    for name, path in paths.items():
        out = read_mask(path)
        assert out.dtype == np.uint8 and out.shape == binary.shape, name
        np.testing.assert_array_equal(out, binary, err_msg=name)


def test_empty_and_full_masks_are_valid(tmp_path: Path) -> None:
    assert read_mask(_save_gray(tmp_path / "e.png", np.zeros((4, 4), np.uint8))).sum() == 0
    assert read_mask(_save_gray(tmp_path / "f.png", np.full((4, 4), 255, np.uint8))).sum() == 16


def test_mask_with_three_levels(tmp_path: Path) -> None:
    values = np.zeros((6, 6), np.uint8)
    values[0, :3] = 128
    values[1] = 255
    path = _save_gray(tmp_path / "three.png", values)
    with pytest.raises(MaskLevelError) as info:
        read_mask(path)
    assert str(path) in str(info.value) and "values other than two levels" in str(info.value)
    # Non-strict: threshold at half the maximum.
    np.testing.assert_array_equal(read_mask(path, strict=False), (values > 127).astype(np.uint8))
    # Two colours on RGB are three levels too.
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 1] = (0, 255, 0)
    _raises_naming(lambda: read_mask(_save_rgb(tmp_path / "two_colours.png", rgb)), "two_colours.png")


def test_mask_two_levels_without_zero_is_rejected(tmp_path: Path) -> None:
    values = np.ones((4, 4), np.uint8)
    values[0] = 2
    _raises_naming(lambda: read_mask(_save_gray(tmp_path / "m12.png", values)), "m12.png", "background")


# ------------------------------------------------------------------------------------ scan_folder


def test_scan_folder_valid(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "setA", ["b", "a", "c"])
    # A second format for one image, hidden files and OS junk are fine.
    (root / "images" / "c.png").unlink()
    _save_rgb(root / "images" / "c.JPG", _random_rgb(24, 32))
    (root / "images" / ".DS_Store").write_bytes(b"junk")
    (root / "masks" / "Thumbs.db").write_bytes(b"junk")
    samples = scan_folder(root)
    assert [s.stem for s in samples] == ["a", "b", "c"]
    assert all(s.dataset == "setA" for s in samples)
    assert samples[2].image.name == "c.JPG" and samples[2].mask.name == "c.png"
    assert scan_folder(root, check_content=False) == samples
    assert scan_folder(root, validate=False) == samples
    with pytest.raises(AttributeError):
        samples[0].stem = "x"  # type: ignore[misc]


def test_scan_folder_image_without_mask(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a", "b"])
    (root / "masks" / "b.png").unlink()
    _raises_naming(lambda: scan_folder(root), str(root / "images" / "b.png"), "image without mask")


def test_scan_folder_mask_without_image(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a", "b"])
    (root / "images" / "a.png").unlink()
    _raises_naming(lambda: scan_folder(root), str(root / "masks" / "a.png"), "mask without image")
    # Structure problems are found even without validation.
    _raises_naming(lambda: scan_folder(root, validate=False), str(root / "masks" / "a.png"))


def test_scan_folder_duplicate_stem(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a", "b"])
    _save_rgb(root / "images" / "a.jpg", _random_rgb(24, 32))
    _raises_naming(lambda: scan_folder(root), "a.jpg", "a.png", "duplicate stem")


def test_scan_folder_size_mismatch(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a", "b"])
    _save_gray(root / "masks" / "b.png", np.zeros((24, 31), np.uint8))
    for check_content in (True, False):
        message = _raises_naming(
            lambda c=check_content: scan_folder(root, check_content=c), str(root / "masks" / "b.png")
        )
        assert "does not match" in message and "31x24" in message and "32x24" in message


def test_scan_folder_unreadable_and_truncated(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a", "b", "c"])
    (root / "images" / "a.png").write_text("this is not a png")
    data = (root / "masks" / "b.png").read_bytes()
    (root / "masks" / "b.png").write_bytes(data[: len(data) // 2])
    message = _raises_naming(lambda: scan_folder(root), str(root / "images" / "a.png"), str(root / "masks" / "b.png"))
    assert "2 problems" in message


def test_scan_folder_mask_with_three_levels(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a", "b"])
    values = _random_mask(24, 32) * 255
    values[0, 0] = 7
    _save_gray(root / "masks" / "a.png", values)
    _raises_naming(lambda: scan_folder(root), str(root / "masks" / "a.png"), "values other than two levels")
    assert len(scan_folder(root, strict_masks=False)) == 2


def test_scan_folder_unsupported_file(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a"])
    (root / "images" / "notes.txt").write_text("x")
    (root / "images" / "nested").mkdir()
    _raises_naming(lambda: scan_folder(root), "notes.txt", "not an image file", "nested")


@pytest.mark.parametrize("missing", ["images", "masks"])
def test_scan_folder_missing_folder(tmp_path: Path, missing: str) -> None:
    root = tmp_path / "d"
    (root / ("masks" if missing == "images" else "images")).mkdir(parents=True)
    _raises_naming(lambda: scan_folder(root), str(root / missing), "folder missing")


def test_scan_folder_empty_or_absent(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    _raises_naming(lambda: scan_folder(root), str(root), "empty dataset")
    _raises_naming(lambda: scan_folder(tmp_path / "nope"), str(tmp_path / "nope"), "not found")


def test_scan_folder_lists_all_problems_with_a_cap(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for i in range(25):
        _save_gray(root / "images" / f"orphan{i:02d}.png", np.zeros((2, 2), np.uint8))
    (root / "masks").mkdir()
    message = _raises_naming(lambda: scan_folder(root), "orphan00.png", "orphan19.png", "... and 5 more", "25 problems")
    assert "orphan20.png" not in message


# ------------------------------------------------------------------------------------------ splits


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _make_samples(stems: list[str], dataset: str = "d") -> list[Sample]:
    return [Sample(stem=s, image=Path(f"{s}.png"), mask=Path(f"{s}.png"), dataset=dataset) for s in stems]


def _all_splits(samples: list[Sample], root: Path, **kwargs) -> dict[str, list[str]]:
    return {sp: [s.stem for s in split_samples(samples, root, sp, **kwargs)] for sp in ("train", "val", "test")}


def test_split_lists_are_honoured(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["s1", "s2", "s3", "s4", "s5"])
    _write_lines(root / "train.txt", ["s3", "s1", "", "# comment"])
    _write_lines(root / "val.txt", ["s2.jpg"])  # file names are accepted too
    _write_lines(root / "test.txt", ["s4"])
    samples = scan_folder(root)
    splits = _all_splits(samples, root)
    assert splits == {"train": ["s1", "s3"], "val": ["s2"], "test": ["s4"]}
    # Unlisted s5 is only in "all", which is sorted by stem.
    assert [s.stem for s in split_samples(samples, root, "all")] == ["s1", "s2", "s3", "s4", "s5"]


def test_split_lists_missing_list_is_empty_split(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["s1", "s2"])
    _write_lines(root / "train.txt", ["s1"])
    _write_lines(root / "test.txt", ["s2"])
    assert split_samples(scan_folder(root), root, "val") == []
    _raises_naming(lambda: load_split([root], "val"), "split 'val' is empty", str(root))


def test_split_lists_unknown_or_repeated_stems(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["s1", "s2"])
    samples = scan_folder(root)
    _write_lines(root / "train.txt", ["s1", "ghost"])
    _raises_naming(lambda: split_samples(samples, root, "train"), str(root / "train.txt"), "ghost")
    _write_lines(root / "train.txt", ["s1"])
    _write_lines(root / "test.txt", ["s1", "s2"])
    _raises_naming(lambda: split_samples(samples, root, "train"), "s1", str(root / "test.txt"))


def test_splits_tsv_split_column(tmp_path: Path) -> None:
    stems = [f"t{i}" for i in range(6)]
    values = ["train", "valid", "test", "train", "val", "train"]
    _write_tsv(tmp_path / "splits.tsv", ["stem", "split"], [[s, v] for s, v in zip(stems, values, strict=True)])
    splits = _all_splits(_make_samples(stems), tmp_path)
    assert splits == {"train": ["t0", "t3", "t5"], "val": ["t1", "t4"], "test": ["t2"]}


def _grouped_table(tmp_path: Path, n_groups: int = 30, seed: int = 0) -> tuple[list[Sample], dict[str, str]]:
    """splits.tsv with source_image groups of 1..12 tiles; returns samples and stem -> group."""
    rng = _rng(seed)
    rows, group_of = [], {}
    source_splits = ["train", "valid", "test"]
    for g in range(n_groups):
        for t in range(int(rng.integers(1, 13))):
            stem = f"{source_splits[g % 3]}-photo{g:03d}-{t}"
            rows.append([stem, source_splits[g % 3], f"photo{g:03d}"])
            group_of[stem] = f"photo{g:03d}"
    _write_tsv(tmp_path / "splits.tsv", ["stem", "source_split", "source_image"], rows)
    return _make_samples(list(group_of)), group_of


def test_splits_tsv_groups_never_straddle_splits(tmp_path: Path) -> None:
    samples, group_of = _grouped_table(tmp_path)
    splits = _all_splits(samples, tmp_path, ratios=(0.7, 0.15, 0.15), seed=3)
    all_stems = [s for stems in splits.values() for s in stems]
    assert sorted(all_stems) == sorted(group_of)  # cover everything ...
    assert len(all_stems) == len(set(all_stems))  # ... exactly once
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for name, stems in splits.items():
        assert stems == sorted(stems)
        for stem in stems:
            splits_of_group[group_of[stem]].add(name)
    assert all(len(v) == 1 for v in splits_of_group.values())
    # Fractions of tiles follow the ratios (within one group's size).
    n = len(samples)
    for name, ratio in zip(("train", "val", "test"), (0.7, 0.15, 0.15), strict=True):
        assert abs(len(splits[name]) - ratio * n) <= 12, (name, len(splits[name]), n)
    # Deterministic for a seed; another seed gives another assignment.
    assert _all_splits(samples, tmp_path, seed=3) == splits
    assert any(_all_splits(samples, tmp_path, seed=s) != splits for s in (4, 5, 6))


def test_splits_tsv_source_split(tmp_path: Path) -> None:
    samples, _ = _grouped_table(tmp_path)
    splits = _all_splits(samples, tmp_path, split_source="source")
    assert all(s.startswith("train-") for s in splits["train"])
    assert all(s.startswith("valid-") for s in splits["val"])
    assert all(s.startswith("test-") for s in splits["test"])
    assert sum(len(v) for v in splits.values()) == len(samples)


def test_splits_tsv_must_match_samples(tmp_path: Path) -> None:
    samples, _ = _grouped_table(tmp_path)
    _raises_naming(lambda: split_samples(samples[1:], tmp_path, "train"), "unknown stem", samples[0].stem)
    extra = [*samples, *_make_samples(["zz-unlisted"])]
    _raises_naming(lambda: split_samples(extra, tmp_path, "train"), "without a row", "zz-unlisted")


def test_split_by_stem_without_split_info(tmp_path: Path) -> None:
    samples = _make_samples([f"img{i:03d}" for i in range(100)])
    splits = _all_splits(samples, tmp_path, ratios=(0.6, 0.2, 0.2), seed=1)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [60, 20, 20]
    assert sorted(sum(splits.values(), [])) == [s.stem for s in samples]
    assert _all_splits(samples, tmp_path, ratios=(0.6, 0.2, 0.2), seed=1) == splits
    # Tiny datasets still get every split with a positive ratio.
    tiny = _all_splits(_make_samples(["a", "b", "c"]), tmp_path)
    assert sorted(len(v) for v in tiny.values()) == [1, 1, 1]
    assert split_assignment(_make_samples(["a", "b"]), tmp_path, ratios=(1.0, 0.0, 0.0)) == {
        "a": "train",
        "b": "train",
    }


def test_split_argument_errors(tmp_path: Path) -> None:
    samples = _make_samples(["a"])
    with pytest.raises(ValueError, match="sum to 1"):
        split_samples(samples, tmp_path, "train", ratios=(0.7, 0.15, 0.5))
    with pytest.raises(ValueError, match="split must be"):
        split_samples(samples, tmp_path, "training")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        assign_groups({"a": 1}, ratios=(1.0, 0.0))


def test_load_split_combines_datasets(tmp_path: Path) -> None:
    a = make_dataset(tmp_path / "alpha", ["x1", "x2", "x3"])
    b = make_dataset(tmp_path / "beta", ["x1", "y2"])
    for root in (a, b):
        _write_lines(root / "train.txt", ["x1"])
    samples = load_split([a, str(b)], "train")
    assert [(s.dataset, s.stem) for s in samples] == [("alpha", "x1"), ("beta", "x1")]
    assert len(load_split([a, b], "all")) == 5
    clash = make_dataset(tmp_path / "other" / "alpha", ["q"])
    _raises_naming(lambda: load_split([a, clash], "all"), "distinct names")


# ------------------------------------------------------------------------------------ corruptions


def test_dim_matches_reference() -> None:
    img = _random_rgb(30, 40, seed=5)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.int32)
    hsv[..., 2] = np.clip(hsv[..., 2] - 50, 0, 255)
    expected = cv2.GaussianBlur(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB), (9, 9), 0)
    out = dim(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    # Dark pixels clip at 0 instead of wrapping to bright values.
    dark = np.full((12, 12, 3), 20, np.uint8)
    np.testing.assert_array_equal(dim(dark), 0)


def test_blurry_matches_reference() -> None:
    img = _random_rgb(30, 40, seed=6)
    small = cv2.resize(cv2.GaussianBlur(img, (21, 21), 0), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    expected = cv2.resize(small, (40, 30), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(blurry(img), expected)
    # Odd and tiny sizes keep their size.
    assert blurry(_random_rgb(15, 21)).shape == (15, 21, 3)
    assert blurry(_random_rgb(1, 1)).shape == (1, 1, 3)


def test_gaussian_blur_and_registry() -> None:
    img = _random_rgb(16, 16, seed=7)
    np.testing.assert_array_equal(get_corruption("blur:1")(img), img)
    np.testing.assert_array_equal(get_corruption("blur9")(img), cv2.GaussianBlur(img, (9, 9), 0))
    np.testing.assert_array_equal(gaussian_blur(img, 5), cv2.GaussianBlur(img, (5, 5), 0))
    assert get_corruption("noisy1") is dim and get_corruption("Dim") is dim
    assert get_corruption("noisy2") is blurry
    assert get_corruption("clean")(img) is img
    assert set(CORRUPTIONS) == {"clean", "dim", "blurry"}
    for bad in (0, 2, -3, 4.0, True):
        with pytest.raises(ValueError, match="odd"):
            gaussian_blur(img, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="odd"):
        get_corruption("blur:4")
    with pytest.raises(ValueError, match="valid: .*dim"):
        get_corruption("foggy")
    with pytest.raises(ValueError, match="uint8"):
        dim(img.astype(np.float32))


# ------------------------------------------------------------------------------------- transforms


def _coloured_pair(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image whose red channel is 255 exactly where the mask is 1 (and < 255 elsewhere)."""
    mask = _random_mask(h, w, seed)
    img = _rng(seed).integers(0, 200, size=(h, w, 3), dtype=np.uint8)
    img[mask == 1, 0] = 255
    return img, mask


def test_augmentation_applies_the_same_geometry_to_image_and_mask() -> None:
    img, mask = _coloured_pair(40, 40)
    changed = 0
    for seed in range(20):
        transform = build_transform(40, augment=True, image_interpolation=cv2.INTER_NEAREST)
        transform.set_random_seed(seed)
        out = transform(image=img, mask=mask)
        assert set(np.unique(out["mask"]).tolist()) <= {0, 1}
        np.testing.assert_array_equal(out["image"][:, :, 0] == 255, out["mask"] == 1)
        changed += not np.array_equal(out["mask"], mask)
    assert changed >= 10  # the augmentation does something


def test_resize_keeps_mask_binary_and_aligned() -> None:
    img, mask = _coloured_pair(50, 70)
    for size in (32, 96):
        out = build_transform(size, augment=False)(image=img, mask=mask)
        assert out["image"].shape == (size, size, 3) and out["mask"].shape == (size, size)
        assert set(np.unique(out["mask"]).tolist()) <= {0, 1}
        red = out["image"][:, :, 0].astype(float)
        assert red[out["mask"] == 1].mean() > red[out["mask"] == 0].mean() + 50


# ---------------------------------------------------------------------------------------- dataset


def _pair_dataset(root: Path, n: int = 4, size: tuple[int, int] = (30, 44)) -> list[Sample]:
    for i in range(n):
        img, mask = _coloured_pair(*size, seed=i)
        _save_rgb(root / "images" / f"p{i}.png", img)
        _save_gray(root / "masks" / f"p{i}.png", mask * 255)
    return scan_folder(root)


def test_dataset_item_shapes_and_values(tmp_path: Path) -> None:
    samples = _pair_dataset(tmp_path / "pairs")
    ds = CrackDataset(samples, image_size=32)
    assert len(ds) == 4
    item = ds[1]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64
    assert item["index"] == 1 and item["stem"] == "p1" and item["dataset"] == "pairs"
    assert set(item["mask"].unique().tolist()) <= {0, 1} and item["mask"].sum() > 0
    # Not normalised: RGB values in 0..255.
    assert 0 <= item["image"].min() and item["image"].max() <= 255 and item["image"].max() > 1
    assert ds[-1]["index"] == 3
    with pytest.raises(IndexError):
        ds[4]
    # At the original size without augmentation, the pixels are the file's pixels.
    same = CrackDataset(_pair_dataset(tmp_path / "square", n=1, size=(32, 32)), image_size=32)[0]
    img, mask = same["image"].permute(1, 2, 0).numpy().astype(np.uint8), same["mask"].numpy()
    np.testing.assert_array_equal(img, read_image(tmp_path / "square" / "images" / "p0.png"))
    np.testing.assert_array_equal(mask, read_mask(tmp_path / "square" / "masks" / "p0.png"))


def test_dataset_corruption_before_resize(tmp_path: Path) -> None:
    samples = _pair_dataset(tmp_path / "pairs", n=1)
    ds = CrackDataset(samples, image_size=24, corruption="noisy1")
    image, mask = ds.load_original(0)
    raw = read_image(samples[0].image)
    assert image.shape == (30, 44, 3) and mask.shape == (30, 44) and mask.dtype == np.uint8
    np.testing.assert_array_equal(image, dim(raw))
    expected = build_transform(24, augment=False)(image=dim(raw), mask=mask)["image"]
    np.testing.assert_array_equal(ds[0]["image"].permute(1, 2, 0).numpy(), expected.astype(np.float32))
    with pytest.raises(ValueError, match="unknown corruption"):
        CrackDataset(samples, corruption="snow")


def test_dataset_augmentation_keeps_masks_binary_and_aligned(tmp_path: Path) -> None:
    samples = _pair_dataset(tmp_path / "pairs", n=2)
    ds = CrackDataset(samples, image_size=40, augment=True, seed=0)
    for _ in range(8):
        for i in range(len(ds)):
            item = ds[i]
            mask = item["mask"]
            assert set(mask.unique().tolist()) <= {0, 1}
            red = item["image"][0]
            assert red[mask == 1].mean() > red[mask == 0].mean() + 50


def test_dataset_file_errors_name_the_file(tmp_path: Path) -> None:
    samples = _pair_dataset(tmp_path / "pairs", n=2)
    broken = samples[1].image
    broken.write_bytes(broken.read_bytes()[:40])
    ds = CrackDataset(samples, image_size=16)
    _raises_naming(lambda: ds[1], str(broken))
    _raises_naming(lambda: ds.load_original(1), str(broken))
    # In DataLoader workers the error comes back as a DatasetError naming the file.
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1)
    try:
        list(loader)
    except DatasetError as exc:
        message = str(exc)
        # The traceback keeps the loader's iterator alive in a reference cycle; when the garbage
        # collector finally shuts its worker down that takes seconds, so release it now.
        exc.__traceback__ = None
    else:
        pytest.fail("DataLoader did not raise")
    assert str(broken) in message


def test_dataset_size_mismatch_without_validation(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", ["a"])
    _save_gray(root / "masks" / "a.png", np.zeros((10, 10), np.uint8))
    ds = CrackDataset(scan_folder(root, validate=False), image_size=16)
    _raises_naming(lambda: ds[0], str(root / "masks" / "a.png"), "does not match")


def test_dataloader_workers_draw_different_augmentations(tmp_path: Path) -> None:
    samples = _pair_dataset(tmp_path / "pairs", n=1)
    ds = CrackDataset(samples * 16, image_size=24, augment=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2)
    masks = [batch["mask"][0] for batch in loader]
    # Items 2k and 2k+1 come from different workers at the same step.
    pairs_equal = [torch.equal(masks[2 * k], masks[2 * k + 1]) for k in range(8)]
    assert not all(pairs_equal)
