"""Region graphs and their Laplacians, for spatial smoothness priors over brain regions.

A region graph is a symmetric, non-negative adjacency table indexed by canonical region
keys (``"L_bankssts"`` ...). Three ways of building one are offered through
:data:`GRAPH_METHODS`:

==============  =============================================================================
``atlas``       parcels that share at least one voxel face in the 1 mm Desikan-Killiany atlas
                (``load_atlas("dk83")``); the default. Anatomical neighbours, mostly within a
                hemisphere (the two rostral anterior cingulates touch at the midline).
``distance``    each region linked to its ``n_neighbors`` nearest regions, weighted by a
                Gaussian kernel of the distance between them; distances from the ADNI
                inter-region table (``load_region_distances``) or between parcel centroids.
``connectome``  the strongest ``density`` fraction of the ADNI structural connections
                (``load_connectome``), weighted by ``log1p`` of the fibre count.
==============  =============================================================================

:func:`laplacian` turns an adjacency matrix ``A`` into ``L = D - A`` (combinatorial) or
``I - D^-1/2 A D^-1/2`` (normalised, the default, eigenvalues in [0, 2]). For a latent
matrix ``Z`` (regions x programs), ``trace(Z.T @ L @ Z) = 1/2 sum_ij A_ij |z_i - z_j|^2``
(combinatorial form) is small when neighbouring regions have similar codes.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import pandas as pd

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError

logger = logging.getLogger(__name__)

LAPLACIANS = ("normalized", "combinatorial")


# --------------------------------------------------------------------------- pure helpers
def face_adjacency(labels) -> tuple[np.ndarray, np.ndarray]:
    """Count the voxel faces shared by every pair of labels in an integer volume.

    Parameters
    ----------
    labels : (X, Y, Z) int array
        Parcel ids, 0 = background.

    Returns
    -------
    ids : (n_labels,) int array
        The non-zero labels present, sorted.
    counts : (n_labels, n_labels) int array
        Symmetric; ``counts[i, j]`` = number of faces between a voxel of ``ids[i]`` and a
        voxel of ``ids[j]`` (6-connectivity); zero diagonal.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError(f"labels must be a 3-D volume, got shape {labels.shape}")
    labels = labels.astype(np.int64, copy=False)
    ids = np.unique(labels[labels > 0])
    lookup = np.full(int(labels.max(initial=0)) + 1, -1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    counts = np.zeros((len(ids), len(ids)), dtype=np.int64)
    for axis in range(3):
        first = [slice(None)] * 3
        second = [slice(None)] * 3
        first[axis], second[axis] = slice(0, -1), slice(1, None)
        a = labels[tuple(first)].ravel()
        b = labels[tuple(second)].ravel()
        touching = (a != b) & (a > 0) & (b > 0)
        np.add.at(counts, (lookup[a[touching]], lookup[b[touching]]), 1)
    counts = counts + counts.T
    return ids, counts


def laplacian(adjacency, normalized: bool = True) -> np.ndarray:
    """Graph Laplacian of a symmetric, non-negative adjacency matrix.

    Parameters
    ----------
    adjacency : (n, n) array or DataFrame
        Edge weights; the diagonal is ignored.
    normalized : bool
        ``True``: ``I - D^-1/2 A D^-1/2`` (isolated regions get a zero row);
        ``False``: ``D - A``.

    Returns
    -------
    (n, n) float array
    """
    matrix = check_adjacency(adjacency)
    np.fill_diagonal(matrix, 0.0)
    degree = matrix.sum(axis=1)
    if not normalized:
        return np.diag(degree) - matrix
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)
    result = -(inv_sqrt[:, None] * matrix * inv_sqrt[None, :])
    result[np.diag_indices_from(result)] = (degree > 0).astype(float)
    return result


def check_adjacency(adjacency, n: int | None = None, name: str = "adjacency") -> np.ndarray:
    """Validate a square, symmetric, finite, non-negative adjacency matrix; return a copy."""
    matrix = np.array(adjacency, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"{name} must be a square (n_regions, n_regions) matrix, got shape "
                         f"{matrix.shape}")
    if n is not None and matrix.shape[0] != n:
        raise InputError(f"{name} is {matrix.shape[0]} x {matrix.shape[0]} but there are {n} "
                         "regions; build the graph for the same regions as the data")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise InputError(f"{name} must hold finite, non-negative edge weights")
    if not np.allclose(matrix, matrix.T):
        raise InputError(f"{name} must be symmetric (an undirected region graph)")
    return matrix


def subgraph(adjacency, keep) -> np.ndarray:
    """Restrict an adjacency matrix to the regions selected by ``keep`` (mask or indices)."""
    matrix = np.asarray(adjacency, dtype=float)
    keep = np.asarray(keep)
    if keep.dtype == bool:
        keep = np.flatnonzero(keep)
    return matrix[np.ix_(keep, keep)]


def _keys(regions) -> list[str]:
    regions = [str(r) for r in regions]
    if len(set(regions)) != len(regions):
        raise InputError("regions contain duplicates")
    return regions


def _frame(matrix: np.ndarray, regions) -> pd.DataFrame:
    index = pd.Index(list(regions), name="region")
    return pd.DataFrame(matrix, index=index, columns=list(regions))


def _select(table: pd.DataFrame, regions, source: str) -> np.ndarray:
    missing = [r for r in regions if r not in table.index]
    if missing:
        raise InputError(f"{len(missing)} region(s) absent from {source}: "
                         f"{', '.join(missing[:8])}; use Desikan-Killiany region keys")
    return table.loc[regions, regions].to_numpy(dtype=float)


# --------------------------------------------------------------------------- graph builders
@lru_cache(maxsize=4)
def _atlas_face_counts(atlas: str, data_dir_key):
    from ..datasets import load_atlas

    loaded = load_atlas(atlas, data_dir=data_dir_key)
    ids, counts = face_adjacency(np.asarray(loaded.image.dataobj))
    return loaded.regions, ids, counts


def atlas_adjacency(regions, atlas: str = "dk83", min_faces: int = 1, weighted: bool = False,
                    data_dir=None) -> pd.DataFrame:
    """Regions linked when their parcels share voxel faces in an atlas image.

    Parameters
    ----------
    regions : sequence of str
        Region keys (rows of the atlas table of ``atlas``).
    atlas : str
        Atlas name for :func:`brainexpr.datasets.load_atlas` (default ``"dk83"``, 1 mm
        MNI152).
    min_faces : int
        Minimum number of shared voxel faces for an edge.
    weighted : bool
        ``False``: binary edges; ``True``: weight = number of shared faces / its maximum.

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_regions) symmetric adjacency indexed by region key.
    """
    regions = _keys(regions)
    if int(min_faces) < 1:
        raise InputError(f"min_faces must be >= 1, got {min_faces}")
    table, ids, counts = _atlas_face_counts(atlas, None if data_dir is None else str(data_dir))
    missing = [r for r in regions if r not in table.index]
    if missing:
        raise InputError(f"{len(missing)} region(s) not in atlas {atlas!r}: "
                         f"{', '.join(missing[:8])}")
    position = {int(i): k for k, i in enumerate(ids)}
    absent = [r for r in regions if int(table.loc[r, "id"]) not in position]
    if absent:
        raise InputError(f"region(s) with no voxels in atlas {atlas!r}: {', '.join(absent)}")
    rows = [position[int(table.loc[r, "id"])] for r in regions]
    faces = counts[np.ix_(rows, rows)].astype(float)
    faces[faces < int(min_faces)] = 0.0
    matrix = faces / faces.max() if weighted and faces.max() > 0 else (faces > 0).astype(float)
    return _frame(matrix, regions)


def _atlas_distances(regions, atlas: str = "dk83", data_dir=None) -> pd.DataFrame:
    """Distances (mm, MNI152) between the parcel centroids of ``regions`` in an atlas."""
    from ..datasets import load_atlas
    from .association import centroid_distances, parcel_centroids

    loaded = load_atlas(atlas, data_dir=data_dir)
    missing = [r for r in regions if r not in loaded.regions.index]
    if missing:
        raise InputError(f"{len(missing)} region(s) not in atlas {atlas!r}: "
                         f"{', '.join(missing[:8])}")
    return centroid_distances(parcel_centroids(loaded.image, loaded.regions.loc[list(regions)]))


def distance_adjacency(regions, distances=None, source: str = "adni", n_neighbors: int = 6,
                       sigma: float | None = None, data_dir=None) -> pd.DataFrame:
    """Link each region to its nearest regions, weighted by a Gaussian kernel of distance.

    Parameters
    ----------
    regions : sequence of str
    distances : (n, n) DataFrame, optional
        Distances (mm) indexed by region key; default from ``source``.
    source : {"adni", "centroids"}
        ``adni``: the 86-region inter-region table (``load_region_distances``);
        ``centroids``: distances between dk83 parcel centroids.
    n_neighbors : int
        Each region is linked to its ``n_neighbors`` nearest regions (then symmetrised).
    sigma : float, optional
        Kernel width (mm); default the median distance to the ``n_neighbors``-th neighbour.

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_regions) symmetric weights in (0, 1].
    """
    from ..datasets import load_region_distances

    regions = _keys(regions)
    if distances is None:
        if source == "adni":
            distances = load_region_distances(data_dir=data_dir)
        elif source == "centroids":
            distances = _atlas_distances(regions, data_dir=data_dir)
        else:
            check_choice(source, ("adni", "centroids"), "source")
        name = f"{source} distances"
    else:
        name = "the distance table"
    if not isinstance(distances, pd.DataFrame):
        raise InputError("distances must be a DataFrame indexed by region keys")
    matrix = _select(distances, regions, name)
    n = len(regions)
    if not 1 <= int(n_neighbors) < n:
        raise InputError(f"n_neighbors must lie in [1, {n - 1}], got {n_neighbors}")
    masked = matrix + np.diag(np.full(n, np.inf))
    order = np.argsort(masked, axis=1)[:, : int(n_neighbors)]
    kth = masked[np.arange(n), order[:, -1]]
    sigma = float(np.median(kth)) if sigma is None else float(sigma)
    if not sigma > 0:
        raise InputError(f"sigma must be positive (mm), got {sigma}")
    linked = np.zeros((n, n), dtype=bool)
    linked[np.repeat(np.arange(n), int(n_neighbors)), order.ravel()] = True
    linked |= linked.T
    weights = np.where(linked, np.exp(-(matrix ** 2) / (2 * sigma ** 2)), 0.0)
    np.fill_diagonal(weights, 0.0)
    return _frame(weights, regions)


def connectome_adjacency(regions, kind: str = "fibercount", density: float = 0.15,
                         data_dir=None) -> pd.DataFrame:
    """Strongest structural connections between regions.

    Parameters
    ----------
    regions : sequence of str
    kind : {"fibercount"}
        Connectome of :func:`brainexpr.datasets.load_connectome` (fibre counts).
    density : float in (0, 1]
        Fraction of region pairs kept (the strongest ones).

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_regions) symmetric weights ``log1p(fibres)`` scaled to max 1.
    """
    from ..datasets import load_connectome

    regions = _keys(regions)
    if kind != "fibercount":
        raise InputError(f"kind must be 'fibercount' (fibre lengths are not edge strengths), "
                         f"got {kind!r}")
    if not 0 < float(density) <= 1:
        raise InputError(f"density must lie in (0, 1], got {density}")
    matrix = np.log1p(np.clip(_select(load_connectome(kind, data_dir=data_dir), regions,
                                      "the connectome"), 0, None))
    matrix = (matrix + matrix.T) / 2
    np.fill_diagonal(matrix, 0.0)
    upper = matrix[np.triu_indices(len(regions), 1)]
    n_keep = max(1, int(round(float(density) * upper.size)))
    threshold = np.sort(upper)[::-1][n_keep - 1]
    matrix = np.where(matrix >= max(threshold, np.finfo(float).tiny), matrix, 0.0)
    if matrix.max() > 0:
        matrix = matrix / matrix.max()
    return _frame(matrix, regions)


#: graph name -> builder ``f(regions, data_dir=..., **options) -> DataFrame``.
GRAPH_METHODS = {
    "atlas": atlas_adjacency,
    "distance": distance_adjacency,
    "connectome": connectome_adjacency,
}


@fill_doc
def region_graph(regions, method: str = "atlas", data_dir=None, **options) -> pd.DataFrame:
    """Build a region graph with one of :data:`GRAPH_METHODS`.

    Parameters
    ----------
    regions : sequence of str
        Region keys (e.g. the 68 cortical Desikan-Killiany regions).
    method : {"atlas", "distance", "connectome"}
        See the module docstring.
    %(data_dir)s
    **options
        Passed to the builder (``min_faces``, ``n_neighbors``, ``density`` ...).

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_regions) symmetric adjacency indexed by region key.
    """
    check_choice(method, GRAPH_METHODS, "graph")
    adjacency = GRAPH_METHODS[method](regions, data_dir=data_dir, **options)
    degree = adjacency.to_numpy().sum(axis=1)
    isolated = [r for r, d in zip(adjacency.index, degree) if d == 0]
    if isolated:
        logger.warning("%d region(s) have no neighbour in the %s graph: %s", len(isolated),
                       method, ", ".join(isolated[:8]))
    logger.info("%s graph: %d regions, %d edges", method, len(adjacency),
                int((adjacency.to_numpy() > 0).sum() // 2))
    return adjacency
