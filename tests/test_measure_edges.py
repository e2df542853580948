"""Crack measurement at its edges: mask formats, the exact messages of refused arguments, the
filter boundary, several cracks of different widths, and spurs (``scripts/mutation.sh measure``:
each test names the surviving mutants it kills)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from cracksam.measurement import MeasurementError, measure_mask, scale_from_points
from cracksam.measurement.measure import as_binary


def _bar(shape=(120, 200), rows=(50, 55), cols=(20, 180)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = 255
    return mask


def test_every_mask_format_measures_the_same() -> None:
    """uint8 0/255, 0/1, bool, float and an RGB mask whose crack is in one channel only.
    Mutants: ``as_binary``'s 3-D branch (ndim == 4, != 0 -> == 0 / != 1, any over axis None / 3)."""
    mask = _bar()
    ref = measure_mask(mask)
    rgb = np.zeros((*mask.shape, 3), np.uint8)
    rgb[..., 1] = mask
    rgb[0, 0, 0] = 1  # a 1-value pixel in another channel is crack too (any channel, any nonzero)
    expected = mask.astype(bool)
    expected[0, 0] = True
    np.testing.assert_array_equal(as_binary(rgb), expected)
    assert as_binary(rgb).shape == mask.shape
    for variant in (mask // 255, mask.astype(bool), mask.astype(np.float32) / 255):
        assert measure_mask(variant) == ref
    rgb[0, 0, 0] = 0
    assert measure_mask(rgb) == ref
    assert as_binary(np.array([[0, 2]], np.uint8)).dtype == bool


@pytest.mark.parametrize("call,message", [
    (lambda: measure_mask(np.zeros((2, 3, 4, 5))), r"^a mask must be a 2-D array \(H x W\), got shape \(2, 3, 4, 5\)$"),
    (lambda: measure_mask(np.zeros((0, 5))), r"^the mask is empty \(zero pixels\)$"),
    (lambda: measure_mask(np.zeros((4, 4)), mm_per_px="a"), r"^mm per pixel must be a number, got 'a'$"),
    (lambda: measure_mask(np.zeros((4, 4)), mm_per_px=-2), r"^mm per pixel must be a positive number, got -2$"),
    (lambda: measure_mask(np.zeros((4, 4)), min_length_px="x"), r"^minimum length must be a number, got 'x'$"),
    (lambda: measure_mask(np.zeros((4, 4)), min_length_px=-1), r"^minimum length must be >= 0 px, got -1$"),
    (lambda: scale_from_points((0, 0), (1,), 5), r"^reference points must be two \(x, y\) pairs and a length in mm"),
    (lambda: scale_from_points((0, float("inf")), (1, 0), 5), r"^reference points must be finite numbers$"),
])
def test_refused_arguments_say_what_is_wrong(call, message) -> None:
    """Mutants: each message replaced by None, wrapped in XX or upper-cased."""
    with pytest.raises(MeasurementError, match=message):
        call()


def test_measurement_needs_no_skan(monkeypatch) -> None:
    """The skeleton graph is cracksam's own (skan compiled numba code on every start)."""
    real_import = builtins.__import__

    def no_skan(name, *args, **kwargs):
        if name.split(".")[0] in ("skan", "numba"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skan)
    mask = np.zeros((40, 60), np.uint8)
    mask[18:21, 5:55] = 1
    mask[5:35, 30:32] = 1  # a cross: branches and a junction
    result = measure_mask(mask, min_length_px=0)
    assert result.totals.n_cracks == 1 and result.cracks[0].n_branches >= 3


def test_reference_lengths_below_one_mm_are_fine() -> None:
    """Mutant: ``length_mm <= 0`` -> ``<= 1``."""
    assert scale_from_points((0, 0), (10, 0), 0.5) == pytest.approx(0.05)


def test_the_length_filter_keeps_a_crack_of_exactly_the_minimum() -> None:
    """A 1-px line of n pixels measures n px.  Mutants: the default 10 -> 11, ``<`` -> ``<=``,
    ``discarded += 1`` -> ``= 1``, the result's ``min_length_px`` dropped."""
    mask = np.zeros((40, 60), bool)
    mask[5, 10:20] = True  # 10 px: kept by the default 10
    mask[15, 10:15] = True  # three dashes of 5 px: discarded
    mask[25, 10:15] = True
    mask[35, 10:15] = True
    result = measure_mask(mask)
    assert result.cracks[0].length_px == pytest.approx(10)
    assert (result.totals.n_cracks, result.totals.n_discarded) == (1, 3)
    assert result.min_length_px == 10.0
    assert measure_mask(mask, min_length_px=10.0).totals.n_cracks == 1
    assert measure_mask(mask, min_length_px=4.5).min_length_px == 4.5
    empty = measure_mask(np.zeros((8, 9), bool), min_length_px=3)
    assert (empty.totals.n_discarded, empty.min_length_px) == (0, 3.0)
    assert empty.width_map.shape == (8, 9) and empty.width_map.dtype == np.float32 and not empty.width_map.any()


def test_each_crack_gets_its_own_widths_and_widest_point() -> None:
    """Two bars of 3 and 7 px.  Mutants: the per-crack slice of skeleton pixels opened at either
    end (``slice(None, stop)`` / ``slice(start, None)`` / ``slice(stop)``), the widest point taken
    at index 0, ``n_branches`` floored at 2, the width map in float64."""
    mask = np.zeros((100, 200), np.uint8)
    mask[20:23, 10:190] = 1  # 3 px
    mask[60:67, 10:190] = 1  # 7 px
    mask[62:65, 120:124] = 1  # (inside the second: no change)
    thin, thick = measure_mask(mask).cracks
    assert thin.median_width_px == pytest.approx(3) and thin.max_width_px == pytest.approx(3)
    assert thick.median_width_px == pytest.approx(7) and thick.mean_width_px == pytest.approx(7, abs=0.3)
    assert thin.n_branches == 1 == thick.n_branches
    assert 20 <= thin.widest_point[1] <= 22 and 60 <= thick.widest_point[1] <= 66
    wedge = np.zeros((60, 200), np.uint8)
    for x in range(10, 190):  # widening to the right: the widest point is at the right end
        half = 1 + (x - 10) // 40
        wedge[30 - half : 30 + half + 1, x] = 1
    crack = measure_mask(wedge).cracks[0]
    assert crack.widest_point[0] > 140, crack.widest_point
    result = measure_mask(mask)
    assert result.width_map.dtype == np.float32
    assert result.width_map[21].max() == pytest.approx(3) and result.width_map[63].max() == pytest.approx(7)


@pytest.mark.parametrize("turn", ["below", "above", "right", "left"])
def test_a_spur_is_dropped_from_the_skeleton(turn: str) -> None:
    """A bump on a 15-px bar makes a short skeleton branch shorter than the bar's width: a spur,
    removed from the width map and the length; the junction pixel stays, so the bar's skeleton
    stays one piece.  The bump on each of the four sides puts the junction at either end of the
    spur's path.  Mutants: spurs never dropped (degree and junction tests of ``prune_spurs``,
    ``keep[i] = True``, ``break``), the junction end of ``without_spurs`` (``>= 4``, ``len - 2``,
    ``1``), ``without_spurs`` given no graph."""
    import cv2

    plain = _bar(shape=(200, 300), rows=(93, 108), cols=(20, 280))
    bumped = plain.copy()
    bumped[108:114, 148:153] = 255
    bump = np.zeros(plain.shape, bool)
    bump[102:, 140:160] = True  # below the bar's centre line
    turns = {"below": lambda a: a, "above": np.flipud, "right": np.transpose, "left": lambda a: np.fliplr(a.T)}
    plain, bumped, bump = (np.ascontiguousarray(turns[turn](a)) for a in (plain, bumped, bump))
    a, b = measure_mask(plain), measure_mask(bumped)
    assert b.cracks[0].length_px == pytest.approx(a.cracks[0].length_px, abs=1.0)
    assert not b.width_map[bump].any()
    n_pieces, _ = cv2.connectedComponents((b.width_map > 0).astype(np.uint8), connectivity=8)
    assert n_pieces - 1 == 1
    assert b.cracks[0].area_px == a.cracks[0].area_px + 6 * 5


def test_a_crack_of_spurs_only_keeps_its_longest_branch() -> None:
    """A disk with three short arms: every branch is shorter than the disk's width at the
    junction, so all are spurs; the crack keeps its longest branch (the left arm) rather than
    none.  Mutants: the fallback loop over kept labels, ``== 0`` -> ``!= 0`` / ``== 1``, the
    paths of other labels, the longest set False."""
    import cv2

    mask = np.zeros((60, 60), np.uint8)
    cv2.circle(mask, (30, 30), 6, 1, -1)
    mask[30, 20:24] = 1  # left arm, the longest (4 px beyond the disk)
    mask[30, 36:39] = 1  # right arm (2 px beyond)
    mask[36:39, 30] = 1  # arm down (2 px beyond)
    other = np.zeros((60, 60), np.uint8)
    other[5:8, 5:55] = 1  # a second crack, a plain bar: its branch is no spur
    result = measure_mask(mask | other, min_length_px=0)
    disk = next(c for c in result.cracks if c.bbox[1] > 10)
    assert disk.n_branches == 1
    wm = result.width_map
    assert wm[25:36, 20:24].any() and not wm[25:36, 37:].any() and not wm[37:, :].any()
    assert disk.length_px > 11
    assert sum(c.n_branches for c in result.cracks) == 2


# --- the skeleton steps (measurement/branches.py) ------------------------------------------


def test_path_length_of_short_and_straight_paths() -> None:
    """Mutants: ``len < 2`` -> ``<= 2`` / ``< 3``, 0.0 -> 1.0 for one point, smoothing from 3
    points (``> 2`` -> ``> 3``), either end point left smoothed (``smooth[1]``/``smooth[-2]``,
    ``pts[1]``/``pts[-2]``)."""
    from cracksam.measurement.branches import path_length

    assert path_length(np.array([[4, 7]])) == 0.0
    assert path_length(np.array([[0, 0], [3, 4]])) == pytest.approx(5.0)
    line = np.stack([np.zeros(10, int), np.arange(10)], axis=1)  # 10 pixels in a row
    assert path_length(line) == pytest.approx(9.0, abs=1e-12)  # end points held: exactly 9
    kink = np.array([[0, 0], [1, 1], [0, 2]])
    assert path_length(kink) < 2 * np.sqrt(2) - 0.05  # three points are smoothed already


def test_orientation_of_two_points_and_one() -> None:
    """Mutants: ``len(rows) < 2`` -> ``<= 2`` / ``< 3``; 0.0 -> 1.0 for one point."""
    from cracksam.measurement.branches import orientation_deg

    assert orientation_deg(np.array([1, 0]), np.array([0, 1])) == pytest.approx(45.0)  # up and right
    assert orientation_deg(np.array([0, 1]), np.array([0, 1])) == pytest.approx(-45.0)
    assert orientation_deg(np.array([5]), np.array([5])) == 0.0


def test_each_branch_path_runs_from_its_source_to_its_destination() -> None:
    """Mutants: ``BranchGraph.path`` slicing to ``indptr[i - 1]`` or ``indptr[i + 2]``."""
    from cracksam.measurement.branches import branch_graph

    skel = np.zeros((40, 40), bool)
    skel[20, 5:20] = True  # a Y: a stem and two arms meeting at (20, 20)
    for k in range(12):
        skel[20 - k, 20 + k] = True
        skel[20 + k, 20 + k] = True
    graph = branch_graph(skel)
    assert graph.n_paths == 3
    total = 0
    for i in range(graph.n_paths):
        path = graph.path(i)
        assert len(path) == graph.indptr[i + 1] - graph.indptr[i] >= 2
        np.testing.assert_array_equal(path[0], graph.nodes[graph.src[i]])
        np.testing.assert_array_equal(path[-1], graph.nodes[graph.dst[i]])
        assert (np.abs(np.diff(path, axis=0)) <= 1).all()  # consecutive pixels are neighbours
        total += len(path)
    assert total == skel.sum() + 2  # every pixel once, the junction in all three paths


def _rect_dist(shape, r0, r1, c0, c1) -> np.ndarray:
    """Half-pixel distance of an axis-aligned rectangle (rows r0..r1, cols c0..c1 inclusive) to the
    background, by hand: each pixel split into 2 x 2 sub-pixels, a sub-pixel's distance is the
    nearest side's (the L2 distance to a rectangle's outside), the pixel takes its deepest
    sub-pixel; outside the image counts as background."""
    fr, fc = np.mgrid[0 : 2 * shape[0], 0 : 2 * shape[1]]
    depth = np.minimum.reduce([fr - (2 * r0 - 1), (2 * r1 + 2) - fr, fc - (2 * c0 - 1), (2 * c1 + 2) - fc])
    fine = np.clip(depth, 0, None).astype(float)
    return fine.reshape(shape[0], 2, shape[1], 2).max(axis=(1, 3))


def test_local_width_against_rectangles_counted_by_hand() -> None:
    """Mutants: the 1-px frame changed on one side (2 instead of 1, or None), the 2x upsampling
    not nearest-neighbour, the 3x3 ridge window made 4x3 or 3x4."""
    from scipy import ndimage as ndi

    from cracksam.measurement.branches import local_width

    shape = (23, 31)
    u8 = np.zeros(shape, np.uint8)
    u8[0:7, 0:9] = 1  # in the top-left corner: cut by the frame on two sides
    u8[12:19, 14:25] = 1  # inside
    u8[16:23, 28:31] = 1  # in the bottom-right corner
    expected = (_rect_dist(shape, 0, 6, 0, 8) + _rect_dist(shape, 12, 18, 14, 24)
                + _rect_dist(shape, 16, 22, 28, 30))
    dist, ridge = local_width(u8)
    np.testing.assert_array_equal(dist, expected)
    np.testing.assert_array_equal(ridge, ndi.maximum_filter(expected, size=3, mode="nearest"))
    assert dist.dtype == np.float32 and ridge.dtype == np.float32


def test_the_skeleton_is_lees() -> None:
    """The module documents Lee's method (Zhang's, skimage's default, differs on 2-px diagonal
    strokes, used here so the test can tell them apart).  Mutants: ``method`` None / omitted."""
    import cv2
    from skimage.morphology import skeletonize

    from cracksam.measurement.branches import crack_skeleton

    mask = np.zeros((200, 200), np.uint8)
    cv2.line(mask, (20, 20), (180, 180), 1, 2)
    binary = mask.astype(bool)
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    lee, zhang = skeletonize(binary, method="lee"), skeletonize(binary)
    assert (lee != zhang).any()
    got = crack_skeleton(binary, labels, n, np.ones(mask.shape, np.float32))
    np.testing.assert_array_equal(got, lee)


@pytest.mark.parametrize("angle", np.arange(-179.5, 180.5, 2.75).tolist() + [0.0, 90.0, -90.0, 180.0])
def test_orientation_is_the_line_direction_in_minus_90_to_90(angle: float) -> None:
    """Points along a line at ``angle`` (counter-clockwise, y up) read that direction folded into
    (-90, 90], to 6 decimals, never -0.0.  Mutants: the folding bounds (``<= -90`` -> ``<= -91``,
    ``> 90`` -> ``> 91``), ``-= 180`` -> ``-= 181``, rounding to integers."""
    import math

    from cracksam.measurement.branches import orientation_deg

    t = np.linspace(-500.0, 500.0, 41)
    rad = math.radians(angle)
    cols, rows = 1000.0 + t * math.cos(rad), 1000.0 - t * math.sin(rad)  # exact points, no pixel grid
    got = orientation_deg(rows, cols)
    want = (angle + 90.0) % 180.0 - 90.0  # into [-90, 90)
    want = 90.0 if want == -90.0 else want
    assert -90.0 < got <= 90.0
    assert got == pytest.approx(want, abs=1e-6) or {got, want} == {90.0, -90.0}, (got, want)
    assert math.copysign(1.0, got) == 1.0 or got < 0
    same = np.full(3, 7.0)
    assert orientation_deg(same, same) == 0.0  # no spread: no direction (mutant: 1.0)


def test_a_crack_the_skeletoniser_loses_gets_its_deepest_pixel(monkeypatch) -> None:
    """The guard in ``crack_skeleton``: every crack keeps at least one skeleton pixel.  Lee's method
    keeps every component of the test shapes, so a skeletoniser that drops the first and the third
    crack stands in.  Mutants: the label range (``arange(n)``, ``arange(2, n)``, ``arange(1)``), the
    arguments of ``maximum_position``, the pixel set False / None."""
    import cv2
    import skimage.morphology

    from cracksam.measurement.branches import crack_skeleton, local_width

    mask = np.zeros((40, 60), np.uint8)
    mask[5:8, 5:40] = 1  # crack 1: 3 x 35, deepest along its middle row
    mask[20:27, 30:35] = 1  # crack 2: kept by the stand-in
    mask[33:36, 50:53] = 1  # crack 3: 3 x 3, deepest at (34, 51)
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    real = skimage.morphology.skeletonize

    def loses_cracks_1_and_3(binary, method=None):
        skel = real(binary, method="lee")
        skel[(labels == 1) | (labels == 3)] = False
        return skel

    monkeypatch.setattr(skimage.morphology, "skeletonize", loses_cracks_1_and_3)
    dist, _ = local_width(mask)
    skel = crack_skeleton(mask.astype(bool), labels, n, dist)
    assert skel.dtype == bool
    (added,) = np.argwhere(skel & (labels == 1)).tolist()  # one pixel, at the crack's greatest depth
    assert added[0] == 6 and dist[tuple(added)] == dist[labels == 1].max() > dist[labels == 1].min()
    assert np.argwhere(skel & (labels == 3)).tolist() == [[34, 51]]
    assert (skel & (labels == 2)).sum() == (real(mask.astype(bool), method="lee") & (labels == 2)).sum() > 0
    assert not skel[labels == 0].any()
