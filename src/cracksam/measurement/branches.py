"""The steps of :func:`~cracksam.measurement.measure.measure_mask` on the crack skeleton: the local
width map, the skeleton, its graph of branches, spur pruning and the crack lengths.  The method and
its conventions are described in :mod:`cracksam.measurement.measure`; the arrays follow OpenCV and
numpy (row, column), labels are those of ``cv2.connectedComponentsWithStats`` (0 = background)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

#: Gaussian smoothing (px) of skeleton path coordinates before the polyline length is taken.
PATH_SMOOTHING_SIGMA = 2.0


def path_length(coords: np.ndarray) -> float:
    """Polyline length through ``coords`` (N x 2) after smoothing, end points fixed."""
    if len(coords) < 2:
        return 0.0
    pts = coords.astype(np.float64)
    if len(pts) > 2:
        smooth = ndi.gaussian_filter1d(pts, PATH_SMOOTHING_SIGMA, axis=0, mode="nearest")
        smooth[0], smooth[-1] = pts[0], pts[-1]
        pts = smooth
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def orientation_deg(rows: np.ndarray, cols: np.ndarray) -> float:
    """Principal-axis angle of points, degrees, 0 = +x, counter-clockwise on screen, (-90, 90]."""
    if len(rows) < 2:
        return 0.0
    x = cols.astype(np.float64) - cols.mean()
    y = -(rows.astype(np.float64) - rows.mean())  # y up
    cov = np.array([[np.dot(x, x), np.dot(x, y)], [np.dot(x, y), np.dot(y, y)]])
    if not cov.any():
        return 0.0
    evals, evecs = np.linalg.eigh(cov)
    vx, vy = evecs[:, int(np.argmax(evals))]
    angle = math.degrees(math.atan2(vy, vx))
    if angle <= -90:
        angle += 180
    elif angle > 90:
        angle -= 180
    angle = round(angle, 6)
    return 90.0 if angle == -90 else angle + 0.0


def local_width(u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dist, ridge)`` of a 0/1 mask: the distance to the background in half-pixels, sampled at
    half-pixel resolution (each pixel split into 2 x 2) and reduced to the largest value per pixel,
    and its maximum over the 3 x 3 neighbourhood (the local width; module docstring of
    :mod:`~cracksam.measurement.measure`).  Outside the image counts as background: a crack cut by
    the frame ends there."""
    height, width = u8.shape
    padded = cv2.copyMakeBorder(u8, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    fine = cv2.resize(padded, (2 * width + 4, 2 * height + 4), interpolation=cv2.INTER_NEAREST)
    fine_dist = cv2.distanceTransform(fine, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[2:-2, 2:-2]
    dist = fine_dist.reshape(height, 2, width, 2).max(axis=(1, 3))
    del fine, fine_dist
    ridge = cv2.dilate(dist, np.ones((3, 3), np.uint8))  # max over the 3x3 neighbourhood
    return dist, ridge


def crack_skeleton(binary: np.ndarray, labels: np.ndarray, n_labels: int, dist: np.ndarray) -> np.ndarray:
    """The skeleton (Lee's method) of ``binary``, with at least one pixel in every crack."""
    from skimage.morphology import skeletonize

    skel = skeletonize(binary, method="lee")
    # Every component must own at least one skeleton pixel (guard; skeletonize keeps them).
    missing = np.setdiff1d(np.arange(1, n_labels), np.unique(labels[skel]))
    if len(missing):
        for pos in ndi.maximum_position(dist, labels, missing):
            skel[pos] = True
    return skel


@dataclass(frozen=True)
class BranchGraph:
    """The skeleton as branches between nodes (skan's ``Skeleton``, built by
    :mod:`~cracksam.measurement.skeleton_graph`): path ``i`` runs through the
    nodes ``indices[indptr[i]:indptr[i + 1]]``, from ``src[i]`` to ``dst[i]``."""

    nodes: np.ndarray  # (N, 2) row, column of each skeleton pixel
    degree: np.ndarray  # number of skeleton neighbours of each node (0: an isolated pixel)
    indptr: np.ndarray
    indices: np.ndarray
    n_paths: int
    src: np.ndarray
    dst: np.ndarray
    path_len: np.ndarray  # smoothed length of each path (px)

    def path(self, i: int) -> np.ndarray:
        """(row, column) of the pixels of path ``i``, in order."""
        return self.nodes[self.indices[self.indptr[i] : self.indptr[i + 1]]]


def branch_graph(skel: np.ndarray) -> BranchGraph:
    """The branches of a skeleton; a skeleton of isolated pixels only has nodes and no paths."""
    kernel = np.ones((3, 3), np.float32)
    neighbours = cv2.filter2D(skel.astype(np.uint8), -1, kernel, borderType=cv2.BORDER_CONSTANT) - skel
    if np.any(neighbours[skel] > 0):
        from cracksam.measurement.skeleton_graph import skeleton_paths

        sk = skeleton_paths(skel)
        nodes = sk.coordinates.astype(np.intp)
        degree = np.asarray(sk.degrees)
        indptr, indices = sk.indptr, sk.indices
        n_paths = sk.n_paths
    else:  # only isolated pixels: no graph (as skan, whose graph this is)
        nodes = np.argwhere(skel).astype(np.intp)
        degree = np.zeros(len(nodes), dtype=np.int64)
        indptr, indices = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        n_paths = 0
    src = indices[indptr[:n_paths]]
    dst = indices[indptr[1 : n_paths + 1] - 1]
    path_len = np.array([path_length(nodes[indices[indptr[i] : indptr[i + 1]]]) for i in range(n_paths)])
    return BranchGraph(nodes, degree, indptr, indices, n_paths, src, dst, path_len)


def prune_spurs(graph: BranchGraph, ridge: np.ndarray, node_label: np.ndarray, n_labels: int) -> np.ndarray:
    """Which paths to keep: not the spurs (terminal branches shorter than the local width at their
    junction), but never all the branches of a crack (its longest one stays)."""
    src, dst, degree, nodes, path_len = graph.src, graph.dst, graph.degree, graph.nodes, graph.path_len
    keep = np.ones(graph.n_paths, dtype=bool)
    for i in range(graph.n_paths):
        ends = (src[i], dst[i])
        degs = (degree[ends[0]], degree[ends[1]])
        if 1 not in degs or max(degs) < 3:
            continue
        junction = ends[0] if degs[0] >= 3 else ends[1]
        jr, jc = nodes[junction]
        if path_len[i] < float(ridge[jr, jc]):
            keep[i] = False
    path_label = node_label[src]
    kept_per_label = np.bincount(path_label[keep], minlength=n_labels)
    for lab in np.unique(path_label[~keep]):
        if kept_per_label[lab] == 0:
            of_lab = np.flatnonzero(path_label == lab)
            keep[of_lab[np.argmax(path_len[of_lab])]] = True
    return keep


def without_spurs(skel: np.ndarray, graph: BranchGraph, keep: np.ndarray) -> np.ndarray:
    """A copy of ``skel`` without the pixels of the dropped paths (their junction pixel stays)."""
    kept = skel.copy()
    for i in np.flatnonzero(~keep).tolist():
        coords = graph.path(i)
        junction_end = 0 if graph.degree[graph.src[i]] >= 3 else len(coords) - 1
        inner = np.delete(coords, junction_end, axis=0)
        kept[inner[:, 0], inner[:, 1]] = False
    return kept


def crack_lengths(
    graph: BranchGraph, keep: np.ndarray, kept_skel: np.ndarray, node_label: np.ndarray, dist: np.ndarray,
    n_labels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(length, n_branches)`` per label: the kept paths' lengths plus the end correction -- each
    free end (degree 1 in the pruned graph) gains the local half-width, an isolated skeleton pixel
    (in no branch) gains it twice."""
    length = np.zeros(n_labels)
    n_branches = np.zeros(n_labels, dtype=np.int64)
    nodes = graph.nodes
    path_label = node_label[graph.src]
    kept_ends = np.concatenate([graph.src[keep], graph.dst[keep]])
    graph_degree = np.bincount(kept_ends, minlength=len(nodes))
    np.add.at(length, path_label[keep], graph.path_len[keep])
    np.add.at(n_branches, path_label[keep], 1)
    half = dist[nodes[:, 0], nodes[:, 1]].astype(np.float64) / 2.0
    tips = graph_degree == 1
    np.add.at(length, node_label[tips], half[tips])
    isolated = (graph.degree == 0) & kept_skel[nodes[:, 0], nodes[:, 1]]
    np.add.at(length, node_label[isolated], 2.0 * half[isolated])
    return length, n_branches
