"""Validation protocols: which sample sites (or genes) a model may see, and which it predicts.

Every protocol holds out whole *sites* (all genes at once), never single (site, gene)
values: a random split over rows of a long table leaves every "held-out" location in
training through its other genes.

* :func:`spatial_block_folds`: spatially blocked K-fold. Sites fall into cubic blocks;
  blocks are dealt to folds; training sites within ``buffer`` mm of any held-out site are
  dropped, so a model cannot copy a neighbour from the same tissue block.
* :func:`leave_one_donor_out`: train on five donors, predict the sixth donor's samples.
  Its natural ceiling is :func:`reproducibility_ceiling`.
* :func:`leave_parcels_out`: hold out whole atlas parcels (for regional fits).
* :func:`leave_genes_out`: hold out whole genes and predict them from their gene-axis
  position.
* :func:`map_voxels_for_scoring`: the brain voxels at which a dense map is scored against
  a phantom's truth (map vs truth).

All return lists of :class:`Split` (or :class:`GeneSplit`) with integer indices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import check_random_state
from ..models.base import points_near, spatial_blocks  # noqa: F401 (spatial_blocks: part of the protocols API)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """One train/test split of sample sites.

    Attributes
    ----------
    name : str
        ``fold0``..., a donor name, ...
    train, test : (n,) int arrays
        Row indices of the training and held-out sites.
    """

    name: str
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class GeneSplit:
    """One train/test split of genes (all sites are used).

    Attributes
    ----------
    name : str
    train, test : (n,) int arrays
        Column indices of the training and held-out genes.
    """

    name: str
    train: np.ndarray
    test: np.ndarray


def _check_folds(n_folds, n_units, what):
    n_folds = int(n_folds)
    if n_folds < 2:
        raise InputError(f"n_folds must be at least 2, got {n_folds}")
    if n_units < n_folds:
        raise InputError(f"cannot make {n_folds} folds from {n_units} {what}; use fewer folds")
    return n_folds


def spatial_block_folds(coords, n_folds: int = 5, block_size: float = 20.0, buffer: float = 8.0,
                        random_state=None) -> list[Split]:
    """Spatially blocked K-fold with an exclusion buffer.

    Parameters
    ----------
    coords : (n_sites, 3) array, mm, MNI152
    n_folds : int
    block_size : float
        Side of the cubic blocks (mm) that are held out together.
    buffer : float
        Training sites closer than this (mm) to any held-out site are removed from the
        training set of that fold (0 disables the buffer).
    random_state : int or Generator, optional

    Returns
    -------
    list of Split
        Every site is held out exactly once; blocks are dealt to folds so that folds
        hold similar numbers of sites.
    """
    coords = np.asarray(coords, dtype=float)
    if buffer < 0:
        raise InputError(f"buffer must be >= 0 mm, got {buffer!r}")
    rng = check_random_state(random_state)
    block = spatial_blocks(coords, block_size, rng)
    n_blocks = block.max() + 1
    n_folds = _check_folds(n_folds, n_blocks, f"spatial blocks of {block_size} mm")
    sizes = np.bincount(block)
    order = rng.permutation(n_blocks)
    order = order[np.argsort(-sizes[order], kind="stable")]  # largest first, random ties
    fold_of_block = np.empty(n_blocks, dtype=int)
    load = np.zeros(n_folds)
    for b in order:  # greedy balancing
        f = int(np.argmin(load + rng.uniform(0, 1e-6, n_folds)))
        fold_of_block[b] = f
        load[f] += sizes[b]
    fold = fold_of_block[block]
    tree = cKDTree(coords)
    splits = []
    for f in range(n_folds):
        test = np.flatnonzero(fold == f)
        train_mask = fold != f
        if buffer > 0:
            train_mask[points_near(tree, coords[test], buffer)] = False
        splits.append(Split(f"fold{f}", np.flatnonzero(train_mask), test))
        logger.debug("fold %d: %d test sites, %d training sites after a %.1f mm buffer",
                     f, len(test), int(train_mask.sum()), buffer)
    return splits


def leave_one_donor_out(donors) -> list[Split]:
    """One split per donor: train on all other donors, test on that donor's sites.

    Parameters
    ----------
    donors : (n_sites,) array of donor labels

    Returns
    -------
    list of Split named by donor
    """
    donors = np.asarray(donors, dtype=object)
    names = list(pd.unique(donors))
    if len(names) < 2:
        raise InputError("leave-one-donor-out needs samples from at least two donors")
    return [Split(str(d), np.flatnonzero(donors != d), np.flatnonzero(donors == d)) for d in names]


def leave_parcels_out(regions, n_folds: int = 5, random_state=None) -> list[Split]:
    """K-fold over atlas parcels: all sites of the held-out parcels are predicted.

    Parameters
    ----------
    regions : (n_sites,) array of region keys; NaN/None sites are never held out (they
        stay in every training set)
    n_folds : int
    random_state : int or Generator, optional

    Returns
    -------
    list of Split
    """
    regions = pd.Series(np.asarray(regions, dtype=object))
    assigned = regions.notna().to_numpy()
    names = np.array(sorted(regions[assigned].unique()), dtype=object)
    n_folds = _check_folds(n_folds, len(names), "parcels")
    rng = check_random_state(random_state)
    fold_of = dict(zip(names[rng.permutation(len(names))], np.arange(len(names)) % n_folds))
    fold = np.array([fold_of.get(r, -1) if a else -1 for r, a in zip(regions, assigned)])
    return [Split(f"fold{f}", np.flatnonzero(fold != f), np.flatnonzero(fold == f))
            for f in range(n_folds)]


def leave_genes_out(gene_axis, n_folds: int = 5, random_state=None) -> list[GeneSplit]:
    """K-fold over genes for predicting withheld genes from their gene-axis position.

    Genes at the two ends of the axis are never held out (a withheld gene must lie
    between training genes, so that its prediction is an interpolation along the axis).

    Parameters
    ----------
    gene_axis : (n_genes,) array in [0, 1]
    n_folds : int
    random_state : int or Generator, optional

    Returns
    -------
    list of GeneSplit
    """
    axis = np.asarray(gene_axis, dtype=float)
    if axis.ndim != 1 or not np.isfinite(axis).all():
        raise InputError("gene_axis must be a finite 1-D array with one position per gene")
    order = np.argsort(axis, kind="stable")
    inner = order[1:-1]
    n_folds = _check_folds(n_folds, len(inner), "inner genes of the gene axis")
    rng = check_random_state(random_state)
    fold = np.full(len(axis), -1)
    fold[inner[rng.permutation(len(inner))]] = np.arange(len(inner)) % n_folds
    return [GeneSplit(f"fold{f}", np.flatnonzero(fold != f), np.flatnonzero(fold == f))
            for f in range(n_folds)]


@fill_doc
def map_voxels_for_scoring(n_voxels: int = 20_000, min_per_region: int = 30, random_state=None,
                           data_dir=None):
    """Brain voxels on which the map-vs-truth protocol scores a dense map.

    Draws ``n_voxels`` voxels of the 2 mm FSL MNI152 brain mask uniformly, then adds voxels
    in every DK-83 parcel that has fewer than ``min_per_region`` of them, so that each
    parcel has a regional mean. Scores over the whole brain use only the first
    ``n_uniform`` (uniform) rows; regional means use all rows.

    Parameters
    ----------
    n_voxels : int
        Uniformly drawn voxels (at most the number in the mask).
    min_per_region : int
        Smallest number of voxels per DK-83 parcel.
    random_state : int or Generator, optional
    %(data_dir)s

    Returns
    -------
    coords : (n, 3) float array, mm, MNI152
        The uniform voxels first, then the added ones.
    tissue : (n,) float array in {1, -1, 0}
        Tissue class at each voxel (white, grey, neither).
    region_keys : (n,) object array
        DK-83 parcel key of each voxel (None off the parcels).
    n_uniform : int
        Number of uniformly drawn voxels (the first rows).
    n_background : int
        Voxels of the 2 mm grid outside the brain mask (for whole-volume scores).
    n_mask : int
        Voxels in the brain mask.
    """
    from ..atlas.space import mni_grid, voxel_to_mni
    from ..atlas.tissue import tissue_class_at
    from .phantom import _grid_context, brain_mask

    rng = check_random_state(random_state)
    mask = brain_mask(2, data_dir)
    context = _grid_context(None if data_dir is None else str(data_dir))
    ijk = np.argwhere(mask)
    uniform = rng.choice(len(ijk), size=min(int(n_voxels), len(ijk)), replace=False)
    region_of = context["labels"][tuple(ijk.T)]
    extra = []
    for region in np.unique(region_of[region_of > 0]):
        members = np.flatnonzero(region_of == region)
        have = np.isin(members, uniform).sum()
        if have < min_per_region:
            pool = np.setdiff1d(members, uniform)
            extra.append(rng.choice(pool, size=min(min_per_region - have, len(pool)), replace=False))
    chosen = np.concatenate([uniform] + extra) if extra else uniform
    _, affine = mni_grid(2)
    coords = voxel_to_mni(ijk[chosen], affine)
    tissue = tissue_class_at(coords, data_dir=data_dir).astype(float)
    key_of_id = {int(i): k for k, i in context["regions"]["id"].items()}
    region_keys = np.array([key_of_id.get(int(r)) for r in region_of[chosen]], dtype=object)
    return coords, tissue, region_keys, len(uniform), int(mask.size - mask.sum()), int(mask.sum())


def reproducibility_ceiling(differential_stability) -> np.ndarray:
    """Highest expected correlation of a donor's regional profile with any group map.

    When every donor's regional profile is the population profile plus independent donor
    deviation, two donors correlate at ``DS = V / (V + s^2)`` and one donor correlates
    with the (unknowable) population profile at ``sqrt(DS)``: no map built from other
    donors can predict a held-out donor better than that, on average.

    Parameters
    ----------
    differential_stability : array-like
        Mean pairwise between-donor correlation per gene (negative values give 0).

    Returns
    -------
    array of the same shape
    """
    ds = np.asarray(differential_stability, dtype=float)
    return np.sqrt(np.clip(ds, 0.0, 1.0))


def interpolate_along_axis(known_axis, known_values, new_axis) -> np.ndarray:
    """Predict new genes by linear interpolation between neighbours on the gene axis.

    The fallback of :func:`leave_genes_out` for models without a gene axis input.

    Parameters
    ----------
    known_axis : (k,) array
        Gene-axis positions of the training genes.
    known_values : (n_points, k) array
        Their predicted (or observed) values.
    new_axis : (m,) array
        Positions of the genes to predict.

    Returns
    -------
    (n_points, m) array
    """
    known_axis = np.asarray(known_axis, dtype=float)
    order = np.argsort(known_axis, kind="stable")
    known_axis = known_axis[order]
    known_values = np.asarray(known_values, dtype=float)[:, order]
    new_axis = np.asarray(new_axis, dtype=float)
    right = np.clip(np.searchsorted(known_axis, new_axis), 1, len(known_axis) - 1)
    left = right - 1
    span = known_axis[right] - known_axis[left]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(span > 0, (new_axis - known_axis[left]) / span, 0.5)
    t = np.clip(t, 0.0, 1.0)
    return known_values[:, left] * (1 - t) + known_values[:, right] * t
