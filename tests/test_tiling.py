"""The pieces of sliding-window inference (``cracksam.inference.tiling``) on their own: window
origins, strides, padding, blending and resizing at the edges that whole-predictor tests miss
(found by ``scripts/mutation.sh tiling``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cracksam.inference.tiling import (
    _hann_weight,
    aligned_stride,
    blend_windows,
    even_windows,
    pad_to_multiple,
    resize_logits,
    scale_image,
    tile_origins,
)


def test_tile_origins_at_the_edges() -> None:
    assert tile_origins(65, 64, 48) == [0, 1]  # one pixel too long: a second, shifted tile
    assert tile_origins(10, 4, 7) == [0, 6]  # never a tile that sticks out
    assert tile_origins(10, 4, 3) == [0, 3, 6]
    assert tile_origins(64, 64, 16) == [0]


def test_aligned_stride() -> None:
    assert aligned_stride(100, 0.25) == 75  # no stride grid by default
    assert aligned_stride(256, 0.3, 8) == 176  # 179.2 rounded onto the grid of 8
    assert aligned_stride(16, 0.99, 8) == 8  # never below one grid step


def test_even_windows_for_a_phone_photo() -> None:
    """A 4032x3024 photo in <= 2048-px windows: two per side when 64 px of overlap suffice (the
    old fixed quarter-window stride ran 3x2 windows of 2048 px, 2.1x the photo's pixels)."""
    assert even_windows(4032, 2048, 64, 32) == (2048, [0, 1984])
    assert even_windows(3040, 2048, 64, 32) == (1568, [0, 1472])  # not 2048: the rows shrink to fit
    assert even_windows(4032, 2048, 128, 32) == (1440, [0, 1280, 2592])  # 2 x 2048 - 128 < 4032: three
    assert even_windows(2048, 2048, 128, 32) == (2048, [0])  # fits: one window, the whole side
    assert even_windows(96, 2048, 128, 32) == (96, [0])


def test_even_windows_are_the_fewest_that_cover_with_the_overlap() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3000):
        m = int(rng.choice([1, 8, 32]))
        max_side = m * int(rng.integers(2, 60))
        overlap = int(rng.integers(0, max_side // 2))
        length = m * int(rng.integers(1, 300))
        side, starts = even_windows(length, max_side, overlap, m)
        case = (length, max_side, overlap, m, side, starts)
        assert side <= max_side and side % m == 0 and all(a % m == 0 for a in starts), case
        assert starts[0] == 0 and starts[-1] + side == max(length, side) and side <= length, case
        assert all(b - a >= 0 for a, b in zip(starts, starts[1:], strict=False)), case
        assert all(a + side - b >= overlap for a, b in zip(starts, starts[1:], strict=False)), case
        # The fewest: starts on the grid step at most (max_side - overlap) floored to it.
        step = (max_side - overlap) // m * m
        assert len(starts) == (1 if length <= max_side else 1 + -(-(length - max_side) // step)), case
        n = len(starts)  # no needlessly large side: at most one grid step over an even split
        assert n == 1 or side <= -(-((n - 1) * (overlap + m) + length) // (n * m)) * m, case


@pytest.mark.parametrize("args", [(100, 64, 32, 1), (100, 64, -1, 1), (100, 64, 8, 32), (96, 48, 8, 32)])
def test_even_windows_refuses_impossible_layouts(args) -> None:
    with pytest.raises(ValueError, match="cannot lay"):
        even_windows(*args)


def test_hann_weight_shape_and_type() -> None:
    np.testing.assert_array_equal(_hann_weight(5), _hann_weight((5, 5)))
    w = _hann_weight((4, 6))
    assert w.shape == (4, 6) and w.dtype == np.float32 and w.min() > 0
    assert w[1:3, 2:4].min() == w.max()  # highest in the centre


def test_pad_to_multiple_pads_each_side_alone() -> None:
    image = np.arange(30 * 20 * 3, dtype=np.uint8).reshape(30, 20, 3)
    assert pad_to_multiple(image, 32).shape == (32, 32, 3)
    assert pad_to_multiple(image[:, :16], 16).shape == (32, 16, 3)  # only the height needs padding
    assert pad_to_multiple(image[:16], 16).shape == (16, 32, 3)  # only the width
    square = image[:16, :16]
    assert pad_to_multiple(square, 16) is square  # nothing to pad: no copy


class _Windows:
    """Records the windows it is given; answers with their mean brightness as the crack logit."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, tiles):
        self.seen.extend(tiles)
        return [np.stack([np.zeros(t.shape[:2], np.float32), np.full(t.shape[:2], t.mean(), np.float32)])
                for t in tiles]


def test_blend_windows_strides_per_axis_and_output_type() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    run = _Windows()
    out = blend_windows(image, (32, 32), (8, 32), run)  # 5 rows of windows x 2 columns
    assert len(run.seen) == 10 and out.shape == (2, 64, 64) and out.dtype == np.float32
    constant = np.full((40, 50, 3), 90, np.uint8)
    np.testing.assert_allclose(blend_windows(constant, (32, 32), (16, 16), _Windows())[1], 90.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"^image 20x64 is smaller than the window 32x32$"):
        blend_windows(image[:20], (32, 32), (16, 16), _Windows())


def test_blend_windows_refuses_a_backend_that_drops_windows() -> None:
    """A ``run`` returning fewer logits than windows is an error, not a result with unblended
    (0/0 = NaN) areas.  Mutants killed: ``zip(..., strict=True)`` with ``strict`` False, None or
    left out."""
    image = np.zeros((64, 64, 3), np.uint8)

    def short_run(tiles):
        return [np.zeros((2, *t.shape[:2]), np.float32) for t in tiles[:-1]]

    with pytest.raises(ValueError, match="shorter"):
        blend_windows(image, (32, 32), (32, 32), short_run)


def test_scale_image_sizes_and_interpolation() -> None:
    tiny = np.full((3, 3, 3), 7, np.uint8)
    assert scale_image(tiny, 0.2).shape == (1, 1, 3)  # at least one pixel, not two
    ramp = np.tile(np.linspace(0, 250, 10, dtype=np.uint8)[None, :, None], (10, 1, 3))
    for scale in (1.5, 2.0):  # enlarging is bilinear (INTER_AREA would repeat pixels)
        size = (int(round(10 * scale)),) * 2
        np.testing.assert_array_equal(scale_image(ramp, scale), cv2.resize(ramp, size, interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(scale_image(ramp, 0.5), cv2.resize(ramp, (5, 5), interpolation=cv2.INTER_AREA))
    assert scale_image(ramp, 1.0) is ramp


def test_resize_logits_same_size_is_untouched() -> None:
    logits = np.random.default_rng(1).random((2, 5, 7)).astype(np.float32)
    assert resize_logits(logits, 5, 7) is logits
    assert resize_logits(logits, 10, 14).shape == (2, 10, 14)
