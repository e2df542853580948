"""The one RLE encoder (``cracksam.data.rle``, used by the service and the COCO export): COCO's
uncompressed RLE, checked against ``pycocotools`` itself rather than against our own decoder."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from cracksam.data.rle import RLE_ORDER, decode_rle, encode_rle

# pycocotools' own use of np.array(copy=False) under NumPy 2; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    masks = [rng.random(shape) > p for shape, p in [((5, 7), 0.6), ((64, 3), 0.3), ((3, 64), 0.9), ((1, 1), 0.5)]]
    first = np.zeros((4, 6), bool)
    first[0, 0] = True  # starts with crack: counts begin with 0
    last = np.zeros((4, 6), bool)
    last[-1, -1] = True  # ends with crack
    column = np.zeros((4, 6), bool)
    column[:, 2] = True  # one run in column-major order, four in row-major
    return [*masks, first, last, column, np.zeros((3, 5), bool), np.ones((3, 5), bool)]


def test_rle_is_coco_uncompressed_column_major():
    mask = np.array([[0, 1, 1], [0, 0, 1]], bool)
    rle = encode_rle(mask)
    assert rle == {"size": [2, 3], "counts": [2, 1, 1, 2], "order": RLE_ORDER}  # the docstring's example
    assert RLE_ORDER == "column-major"
    starts_with_crack = np.array([[1, 0], [1, 1]], bool)
    assert encode_rle(starts_with_crack)["counts"] == [0, 2, 1, 1]
    assert encode_rle(np.array([[0, 0], [0, 7]]))["counts"] == [3, 1]  # nonzero = crack
    assert encode_rle(np.array([[3, 7, 0]]))["counts"] == [0, 2, 1]  # 3 and 7 are one run of crack
    assert encode_rle(np.ones((4, 5), bool))["counts"] == [0, 20]
    assert encode_rle(np.zeros((4, 5), bool))["counts"] == [20]
    for m in [*_masks(), np.zeros((0, 4), bool)]:
        rle = encode_rle(m)
        assert all(type(c) is int for c in rle["counts"])  # JSON-serialisable
        decoded = decode_rle(rle)
        assert decoded.dtype == bool
        np.testing.assert_array_equal(decoded, m)
    assert encode_rle(np.zeros((0, 4), bool)) == {"size": [0, 4], "counts": [], "order": RLE_ORDER}
    with pytest.raises(ValueError, match="add up"):
        decode_rle({"size": [2, 2], "counts": [1, 1]})
    with pytest.raises(ValueError, match=r"^RLE counts add up to 5, expected 2 x 3 = 6$"):
        decode_rle({"size": [2, 3], "counts": [3, 2]})
    with pytest.raises(ValueError, match=r"^RLE counts must be >= 0$"):
        decode_rle({"size": [2, 2], "counts": [5, -1]})  # adds up to 4, but a run cannot be negative
    with pytest.raises(ValueError, match="2-D"):
        encode_rle(np.zeros((2, 2, 1), bool))


def test_pycocotools_decodes_our_rle():
    """Mutants killed: row-major flattening, runs starting with crack instead of background, a
    missing leading 0 for masks whose first pixel is crack, ``size`` as [width, height]."""
    for m in _masks():
        h, w = m.shape
        rle = encode_rle(m)
        compressed = coco_mask.frPyObjects({"size": rle["size"], "counts": rle["counts"]}, h, w)
        decoded = coco_mask.decode(compressed)
        assert decoded.shape == (h, w)
        np.testing.assert_array_equal(decoded.astype(bool), m)
        assert int(coco_mask.area(compressed)) == int(m.sum())


def test_our_runs_are_the_ones_pycocotools_encodes():
    """The other direction: COCO's own (compressed) RLE of each mask holds exactly our runs."""
    for m in _masks():
        coco = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
        ours = encode_rle(m)
        again = coco_mask.frPyObjects({"size": ours["size"], "counts": ours["counts"]}, *m.shape)
        assert again["counts"] == coco["counts"] and list(coco["size"]) == ours["size"]


# -- one encoder for the service and the COCO export -----------------------------------------------

LABELS = np.array([[0, 1, 1, 0, 2],
                   [0, 0, 1, 0, 2],
                   [1, 0, 0, 0, 2],
                   [1, 1, 0, 2, 2]], np.int32)


def test_both_callers_give_what_they_gave_before():
    """Pinned from the two encoders before they were one: the service's JSON mask and the COCO
    export's compressed ``segmentation`` of crack 1 (bounding box short of the full height) and
    crack 2 (full height, runs meeting across a column and reaching the last pixel)."""
    from cracksam.inspection.exports import _crack_rle

    assert encode_rle(LABELS == 1)["counts"] == [2, 3, 2, 3, 10]
    assert encode_rle(LABELS == 2)["counts"] == [15, 5]
    got = [_crack_rle(LABELS, 1, (0, 0, 3, 4), coco_mask), _crack_rle(LABELS, 2, (3, 0, 2, 4), coco_mask)]
    assert [(list(r["size"]), r["counts"]) for r in got] == [([4, 5], b"23208"), ([4, 5], b"?5")]
    import cracksam.service

    assert (cracksam.service.encode_rle, cracksam.service.decode_rle) == (encode_rle, decode_rle)


def test_a_window_encodes_as_the_whole_image_and_round_trips():
    rng = np.random.default_rng(2)
    for _ in range(400):
        height, width = (int(v) for v in rng.integers(1, 14, 2))
        h, w = int(rng.integers(0, height + 1)), int(rng.integers(0, width + 1))
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        window = rng.random((h, w)) > rng.random()
        whole = np.zeros((height, width), bool)
        whole[y : y + h, x : x + w] = window
        rle = encode_rle(window, image_size=(height, width), origin=(x, y))
        assert rle == encode_rle(whole)
        np.testing.assert_array_equal(decode_rle(rle), whole)
    # a window down whole columns: the run down column 0's end and on from column 1's top is one run
    assert encode_rle(np.array([[0, 1], [1, 1]]), image_size=(2, 3), origin=(1, 0))["counts"] == [3, 3]
    with pytest.raises(ValueError, match="not inside"):
        encode_rle(np.ones((2, 2), bool), image_size=(2, 3), origin=(2, 0))
    with pytest.raises(ValueError, match="not inside"):
        encode_rle(np.ones((2, 2), bool), image_size=(3, 3), origin=(0, -1))
