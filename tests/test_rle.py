"""The service's RLE (``cracksam.service.rle``): COCO's uncompressed RLE, checked against
``pycocotools`` itself rather than against our own decoder."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from cracksam.service.rle import RLE_ORDER, decode_rle, encode_rle

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
