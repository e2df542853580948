"""The skeleton graph of :mod:`cracksam.measurement.skeleton_graph` is skan's: the same nodes, degrees
and paths in the same order (the measurements were calibrated on skan's graph, which
was replaced because skan compiles its numba code on every start)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cracksam.measurement.skeleton_graph import skeleton_paths

skan = pytest.importorskip("skan")


def _cases() -> list[np.ndarray]:
    from skimage.morphology import skeletonize

    rng = np.random.default_rng(0)
    cases = []
    for seed in range(6):  # random noise: dense clusters of junction pixels, loops, isolated pixels
        cases.append(np.random.default_rng(seed).random((40, 50)) < 0.25 + 0.05 * seed)
    for _ in range(6):  # crack-like strokes, skeletonised as the measurement does
        mask = np.zeros((120, 160), np.uint8)
        for _ in range(5):
            pts = rng.integers(0, [160, 120], size=(2, 2))
            cv2.line(mask, tuple(map(int, pts[0])), tuple(map(int, pts[1])), 1, int(rng.integers(1, 6)))
        cv2.circle(mask, (80, 60), int(rng.integers(10, 40)), 1, 2)  # a closed loop
        cases.append(skeletonize(mask.astype(bool), method="lee"))
    ring = np.zeros((9, 9), bool)  # a loop of degree-2 pixels only
    ring[2, 3:6] = ring[6, 3:6] = ring[3:6, 2] = ring[3:6, 6] = True
    cases.append(ring)
    return cases


@pytest.mark.parametrize("case", range(13))
def test_the_same_graph_and_paths_as_skan(case):
    skel = _cases()[case]
    ours, theirs = skeleton_paths(skel), skan.Skeleton(skel)
    assert np.array_equal(ours.coordinates, np.asarray(theirs.coordinates).astype(np.int64))
    assert np.array_equal(ours.degrees, np.asarray(theirs.degrees))
    assert ours.n_paths == theirs.n_paths > 0
    assert np.array_equal(ours.indptr, theirs.paths.indptr)
    assert np.array_equal(ours.indices, theirs.paths.indices)
