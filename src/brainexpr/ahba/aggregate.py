"""From samples to regions: per-donor and across-donor regional tables, missing regions.

* :func:`groupby_label` averages (``agg_metric``) the samples of each atlas region;
* :func:`interpolate_missing` fills a region without samples the way abagen's
  ``missing='interpolate'`` does: every voxel of the region takes the expression of the
  nearest sample of the donor (same hemisphere and structural class), and the voxels are
  averaged with weights 1 / distance;
* :func:`match_centroids` implements ``missing='centroids'``;
* :func:`aggregate_donors` combines the donors' regional tables;
* :func:`gene_diff_stability` is the differential stability of every gene: the mean,
  over donor pairs, of the Spearman correlation of its regional profiles.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

from ..datasets.validate import check_choice

logger = logging.getLogger(__name__)

AGG_METRICS = ("mean", "median")
REGION_AGG = ("donors", "samples", None)
MISSING = (None, "interpolate", "centroids")


def groupby_label(values, labels, all_labels, metric: str = "mean") -> np.ndarray:
    """Aggregate sample rows per region.

    Parameters
    ----------
    values : (n_samples, n_genes) array
    labels : (n_samples,) int array
        Region id per sample; 0 (unmatched) is ignored.
    all_labels : (n_regions,) int array
        Region ids of the output rows.
    metric : {"mean", "median"}

    Returns
    -------
    (n_regions, n_genes) float64 array
        NaN rows for regions without samples.
    """
    check_choice(metric, AGG_METRICS, "agg_metric")
    values = np.asarray(values)
    labels = np.asarray(labels, dtype=np.int64)
    all_labels = np.asarray(all_labels, dtype=np.int64)
    out = np.full((len(all_labels), values.shape[1]), np.nan)
    position = {int(lab): i for i, lab in enumerate(all_labels)}
    rows = np.array([position.get(int(lab), -1) for lab in labels], dtype=np.int64)
    keep = rows >= 0
    if not keep.any():
        return out
    if metric == "mean":
        onehot = sparse.csr_matrix((np.ones(int(keep.sum())), (rows[keep], np.flatnonzero(keep))),
                                   shape=(len(all_labels), len(labels)))
        counts = np.asarray(onehot.sum(axis=1)).ravel()
        sums = np.asarray(onehot @ values.astype(np.float64))
        present = counts > 0
        out[present] = sums[present] / counts[present, None]
    else:
        for row in np.unique(rows[keep]):
            out[row] = np.median(values[rows == row], axis=0)
    return out


def atlas_voxels(atlas_image):
    """Return (label per voxel, mm per voxel) of the non-zero atlas voxels, sorted by label."""
    from ..atlas.space import voxel_to_mni

    data = np.asarray(atlas_image.dataobj).astype(np.int64)
    ijk = np.argwhere(data > 0)
    labels = data[tuple(ijk.T)]
    order = np.argsort(labels, kind="stable")  # sorted by label: regions are slices
    return labels[order], voxel_to_mni(ijk[order], atlas_image.affine)


def _inverse_distance(dist) -> np.ndarray:
    """abagen's weights: 1 / distance, and weight 1 for a node at distance 0."""
    dist = np.asarray(dist, dtype=float)
    with np.errstate(divide="ignore"):
        weights = 1.0 / dist
    weights[~np.isfinite(weights)] = 1.0
    return weights


_SAMPLE_DIVISIONS = {"cortex": "cortex", "subcortex/brainstem": "subcortex/brainstem",
                     "subcortex": "subcortex/brainstem", "brainstem": "subcortex/brainstem",
                     "cerebellum": "cerebellum"}


def _compatible(samples: pd.DataFrame, hemisphere: str, division: str) -> np.ndarray:
    """Samples of the given hemisphere and division (white matter/other never qualify)."""
    sample_div = samples["structure"].map(_SAMPLE_DIVISIONS).to_numpy(dtype=object)
    return (sample_div == division) & (samples["hemisphere"].to_numpy() == hemisphere)


def interpolate_missing(values, samples: pd.DataFrame, labels, atlas_image, regions: pd.DataFrame,
                        voxels=None):
    """Estimate regions without samples from the nearest samples of the donor.

    Parameters
    ----------
    values : (n_samples, n_genes) array
        Normalised expression of one donor.
    samples : pandas.DataFrame
        The same samples: ``mni_x/y/z``, ``hemisphere``, ``structure``.
    labels : (n_samples,) int array
        Region id per sample (0 unmatched).
    atlas_image : nibabel.Nifti1Image
    regions : pandas.DataFrame
        Atlas table: ``id``, ``hemisphere``, ``structure``.
    voxels : tuple, optional
        Pre-computed ``(label per voxel, mm per voxel)`` of the atlas.

    Returns
    -------
    estimates : (n_filled, n_genes) float64 array
    filled : (n_filled,) int array
        Region ids of the rows of ``estimates``. A region stays empty when the donor has
        no sample of its hemisphere and class.
    """
    from ..atlas.matching import structure_division

    values = np.asarray(values)
    labels = np.asarray(labels)
    vox_labels, vox_mm = voxels if voxels is not None else atlas_voxels(atlas_image)
    coords = samples[["mni_x", "mni_y", "mni_z"]].to_numpy(float)
    sample_div = samples["structure"].map(_SAMPLE_DIVISIONS).to_numpy(dtype=object)
    sample_hemi = samples["hemisphere"].to_numpy(dtype=object)
    region_div = structure_division(regions["structure"])
    present = set(np.unique(labels[labels > 0]).tolist())
    trees = {}
    estimates, filled = [], []
    for (rid, hemi), div in zip(regions[["id", "hemisphere"]].itertuples(index=False), region_div):
        rid = int(rid)
        if rid in present:
            continue
        if (hemi, div) not in trees:
            candidates = np.flatnonzero((sample_div == div) & (sample_hemi == hemi))
            trees[(hemi, div)] = (candidates, cKDTree(coords[candidates]) if len(candidates)
                                  else None)
        candidates, tree = trees[(hemi, div)]
        lo, hi = np.searchsorted(vox_labels, [rid, rid + 1])
        if tree is None or lo == hi:
            continue
        dist, nearest = tree.query(vox_mm[lo:hi])
        weights = _inverse_distance(dist)
        per_sample = np.bincount(nearest, weights=weights, minlength=len(candidates))
        estimate = per_sample @ values[candidates].astype(np.float64) / weights.sum()
        estimates.append(estimate)
        filled.append(rid)
    if filled:
        logger.info("interpolated %d regions without samples", len(filled))
    width = values.shape[1]
    return (np.vstack(estimates) if estimates else np.empty((0, width))), np.asarray(filled, int)


def match_centroids(values_by_donor, samples_by_donor, labels_by_donor, atlas_image,
                    regions: pd.DataFrame, voxels=None):
    """Fill regions without samples in every donor from the samples nearest their centroid.

    For each such region and donor, the compatible sample (same hemisphere and class)
    closest to the region centroid is found; the donors' samples are averaged with
    weights 1 / distance, and the same estimate is used for every donor (abagen's
    ``missing='centroids'``).

    Returns
    -------
    estimates : (n_filled, n_genes) float64 array
    filled : (n_filled,) int array
    """
    from ..atlas.matching import structure_division

    vox_labels, vox_mm = voxels if voxels is not None else atlas_voxels(atlas_image)
    present = set()
    for labels in labels_by_donor:
        present |= set(np.unique(np.asarray(labels)[np.asarray(labels) > 0]).tolist())
    region_div = structure_division(regions["structure"])
    width = np.asarray(values_by_donor[0]).shape[1]
    estimates, filled = [], []
    for (rid, hemi), div in zip(regions[["id", "hemisphere"]].itertuples(index=False), region_div):
        rid = int(rid)
        if rid in present:
            continue
        lo, hi = np.searchsorted(vox_labels, [rid, rid + 1])
        if lo == hi:
            continue
        centroid = vox_mm[lo:hi].mean(axis=0)
        rows, dists = [], []
        for values, samples in zip(values_by_donor, samples_by_donor):
            candidates = np.flatnonzero(_compatible(samples, hemi, div))
            if not len(candidates):
                continue
            coords = samples[["mni_x", "mni_y", "mni_z"]].to_numpy(float)[candidates]
            d = np.linalg.norm(coords - centroid, axis=1)
            best = int(np.argmin(d))
            rows.append(np.asarray(values)[candidates[best]].astype(np.float64))
            dists.append(d[best])
        if not rows:
            continue
        weights = _inverse_distance(dists)
        estimates.append(weights @ np.vstack(rows) / weights.sum())
        filled.append(rid)
    if filled:
        logger.info("filled %d regions without samples from the samples nearest their centroids",
                    len(filled))
    return (np.vstack(estimates) if estimates else np.empty((0, width))), np.asarray(filled, int)


def aggregate_donors(regional_by_donor, metric: str = "mean") -> np.ndarray:
    """Combine donors' (n_regions, n_genes) tables, ignoring donors without data (NaN rows)."""
    check_choice(metric, AGG_METRICS, "agg_metric")
    stack = np.stack([np.asarray(t, dtype=np.float64) for t in regional_by_donor])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: regions without data
        return np.nanmean(stack, axis=0) if metric == "mean" else np.nanmedian(stack, axis=0)


def gene_diff_stability(regional_by_donor) -> np.ndarray:
    """Differential stability of every gene across donors.

    Parameters
    ----------
    regional_by_donor : sequence of (n_regions, n_genes) arrays
        NaN rows mark regions without data in that donor.

    Returns
    -------
    (n_genes,) float array
        Mean over donor pairs of the Spearman correlation between the two donors'
        regional profiles (regions with data in both, at least three); NaN when no pair
        qualifies.
    """
    from .probes import pairwise_spearman

    tables = [np.asarray(t, dtype=np.float64) for t in regional_by_donor]
    n_genes = tables[0].shape[1]
    present = [np.isfinite(t).all(axis=1) for t in tables]

    def shared(i, j):
        rows = np.flatnonzero(present[i] & present[j])
        return (rows, rows) if len(rows) >= 3 else None

    scores = pairwise_spearman([t.T for t in tables], shared)
    if not scores:
        return np.full(n_genes, np.nan)
    stacked = np.vstack(scores)
    valid = np.isfinite(stacked)
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, np.where(valid, stacked, 0).sum(axis=0) / np.maximum(count, 1),
                        np.nan)
