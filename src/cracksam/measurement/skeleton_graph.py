"""The branches of a pixel skeleton, as ``skan.Skeleton`` finds them, in numpy and scipy.

skan walks the skeleton with numba functions that are compiled on every start (its jitclass
graph cannot be cached): 3-4 s before the first mask is measured, for a walk that takes
milliseconds in Python.  This module builds the same graph the same way -- every skeleton pixel
a node (row-major order), 8-neighbour edges weighted by their length, each cluster of junction
pixels reduced to its minimum spanning tree -- and walks the same paths in the same order, so
the measurements are those skan gave (``tests/test_skeleton_graph.py`` compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

_STEPS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


@dataclass(frozen=True)
class SkeletonPaths:
    """``coordinates`` (N, 2) row, column of each skeleton pixel; ``degrees`` its neighbours in
    the graph; path ``i`` runs through the nodes ``indices[indptr[i]:indptr[i + 1]]`` (a closed
    loop repeats its first node at the end)."""

    coordinates: np.ndarray
    degrees: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def n_paths(self) -> int:
        return len(self.indptr) - 1


def _pixel_graph(skel: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Adjacency of the skeleton's pixels (8-connectivity), each edge its length (1 or sqrt 2)."""
    height, width = skel.shape
    padded = np.pad(skel.astype(bool), 1)
    flat = np.flatnonzero(padded)
    node_of = np.full(padded.size, -1, dtype=np.int64)
    node_of[flat] = np.arange(len(flat))
    rows, cols, data = [], [], []
    for dr, dc in _STEPS:
        neighbour = node_of[flat + dr * (width + 2) + dc]
        has = neighbour >= 0
        rows.append(np.flatnonzero(has))
        cols.append(neighbour[has])
        data.append(np.full(int(has.sum()), np.hypot(dr, dc)))
    n = len(flat)
    graph = sparse.coo_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n, n)).tocsr()
    coordinates = np.stack(np.divmod(flat, width + 2), axis=1) - 1
    return graph, coordinates


def _mst_junctions(graph: sparse.csr_matrix) -> sparse.csr_matrix:
    """Edges between junction pixels (degree > 2) reduced to their minimum spanning tree (skan's
    ``_mst_junctions``, the same scipy operations, so ties resolve the same way)."""
    csc = graph.tocsc()
    degrees = np.asarray(graph.astype(bool).astype(int).sum(axis=0))
    non_junction = np.flatnonzero(degrees < 3)
    for start, end in zip(csc.indptr[non_junction], csc.indptr[non_junction + 1], strict=True):
        csc.data[start:end] = 0
    junctions = csc.tocsr()
    for start, end in zip(junctions.indptr[non_junction], junctions.indptr[non_junction + 1], strict=True):
        junctions.data[start:end] = 0
    junctions.eliminate_zeros()
    tree = csgraph.minimum_spanning_tree(junctions)
    return graph - (junctions - (tree + tree.T))


def skeleton_paths(skel: np.ndarray) -> SkeletonPaths:
    """The paths between end points and junctions of a 2-D skeleton (nonzero = skeleton), then the
    closed loops that have neither (skan's ``_build_skeleton_path_graph``)."""
    pixels, coordinates = _pixel_graph(skel)
    graph = sparse.csr_matrix(_mst_junctions(pixels))
    indptr, neighbours = graph.indptr, graph.indices
    degrees = np.diff(indptr)
    adjacent = [neighbours[indptr[i]:indptr[i + 1]].tolist() for i in range(len(degrees))]
    deg = degrees.tolist()
    visited: set[tuple[int, int]] = set()
    path_ptr, path_nodes = [0], []

    def walk(node: int, neighbour: int) -> None:
        start, nodes = node, [node]
        while (node, neighbour) not in visited:
            visited.update(((node, neighbour), (neighbour, node)))
            nodes.append(neighbour)
            if deg[neighbour] != 2 or neighbour == start:
                break
            n1, n2 = adjacent[neighbour]
            node, neighbour = neighbour, (n1 if n1 != node else n2)
        path_nodes.extend(nodes)
        path_ptr.append(len(path_nodes))

    for node in range(len(deg)):  # from every end point and junction
        if deg[node] == 1 or deg[node] > 2:
            for neighbour in adjacent[node]:
                if (node, neighbour) not in visited:
                    walk(node, neighbour)
    for node in range(len(deg)):  # what is left are loops of degree-2 pixels
        if deg[node] > 0 and (node, adjacent[node][0]) not in visited:
            walk(node, adjacent[node][0])
    return SkeletonPaths(coordinates, degrees, np.asarray(path_ptr, dtype=np.int64),
                         np.asarray(path_nodes, dtype=np.int64))


__all__ = ["SkeletonPaths", "skeleton_paths"]
