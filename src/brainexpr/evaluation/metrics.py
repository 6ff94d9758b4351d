"""Accuracy metrics for expression maps, computed within the brain only.

Every function here takes dense ``(n_points, n_genes)`` arrays (rows = voxels or sample
sites, columns = genes) and works column-wise without Python loops over points. NaN
marks a missing value and is ignored pairwise.

The one exception on purpose is :func:`whole_volume_r`: the correlation over the whole
image grid *including* the background zeros, which is how the reference study reported
its "voxel-wise R = 0.98". It is computed only to show how much that number is inflated
next to the honest within-mask correlation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError

#: Metric columns of :func:`gene_metrics`, in order.
GENE_METRICS = ("pearson", "spearman", "mse", "r2")

#: Default edges of the reproducibility (differential stability) bins.
REPRODUCIBILITY_EDGES = (-1.0, 0.3, 0.5, 0.7, 1.0)


def _pair(pred, true, name="pred"):
    pred = np.asarray(pred, dtype=float)
    true = np.asarray(true, dtype=float)
    if pred.ndim == 1:
        pred = pred[:, None]
    if true.ndim == 1:
        true = true[:, None]
    if pred.shape != true.shape:
        raise InputError(f"{name} has shape {pred.shape} but the reference has {true.shape}")
    return pred, true


def _masked_moments(pred, true):
    """Column-wise sums over the rows where both arrays are finite."""
    valid = np.isfinite(pred) & np.isfinite(true)
    x = np.where(valid, pred, 0.0)
    y = np.where(valid, true, 0.0)
    n = valid.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = x.sum(axis=0) / n
        my = y.sum(axis=0) / n
        dx = np.where(valid, pred - mx, 0.0)
        dy = np.where(valid, true - my, 0.0)
    return valid, n, dx, dy


def pearson_columns(pred, true) -> np.ndarray:
    """Pearson correlation of each column of ``pred`` with the same column of ``true``.

    Parameters
    ----------
    pred, true : (n, g) arrays

    Returns
    -------
    (g,) float array; NaN where a column is constant or has fewer than 3 pairs.
    """
    pred, true = _pair(pred, true)
    _, n, dx, dy = _masked_moments(pred, true)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(axis=0) / np.sqrt((dx * dx).sum(axis=0) * (dy * dy).sum(axis=0))
    r[n < 3] = np.nan
    return np.clip(r, -1.0, 1.0)


def spearman_columns(pred, true) -> np.ndarray:
    """Spearman rank correlation per column (ties get average ranks; NaN rows ignored)."""
    pred, true = _pair(pred, true)
    valid = np.isfinite(pred) & np.isfinite(true)
    if valid.all():
        return pearson_columns(stats.rankdata(pred, axis=0), stats.rankdata(true, axis=0))
    out = np.full(pred.shape[1], np.nan)
    for j in range(pred.shape[1]):  # only columns with missing values need their own ranks
        keep = valid[:, j]
        if keep.sum() >= 3:
            out[j] = pearson_columns(stats.rankdata(pred[keep, j]), stats.rankdata(true[keep, j]))[0]
    return out


def gene_metrics(pred, true, genes=None) -> pd.DataFrame:
    """Per-gene accuracy of predictions against a reference.

    Parameters
    ----------
    pred, true : (n_points, n_genes) arrays
        Predicted and reference values at the same points (voxels in the brain mask or
        held-out sample sites), in the same units.
    genes : sequence of str, optional
        Gene names (default ``0..n_genes-1``).

    Returns
    -------
    pandas.DataFrame
        Indexed by gene; columns ``pearson``, ``spearman``, ``mse`` (mean squared error),
        ``r2`` (1 - SSE / SST around the reference mean; negative when the prediction is
        worse than the reference mean) and ``n`` (points used).
    """
    pred, true = _pair(pred, true)
    valid, n, _, dy = _masked_moments(pred, true)
    error = np.where(valid, pred - true, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sse = (error * error).sum(axis=0)
        mse = sse / n
        r2 = 1.0 - sse / (dy * dy).sum(axis=0)
    index = pd.Index(list(genes) if genes is not None else range(pred.shape[1]), name="gene")
    if len(index) != pred.shape[1]:
        raise InputError(f"{len(index)} gene names for {pred.shape[1]} columns")
    return pd.DataFrame({
        "pearson": pearson_columns(pred, true),
        "spearman": spearman_columns(pred, true),
        "mse": mse,
        "r2": r2,
        "n": n.astype(int),
    }, index=index)


#: Nominal coverages of the central Gaussian intervals scored by :func:`calibration_metrics`.
NOMINAL_COVERAGES = (0.5, 0.9, 0.95)
#: Columns of :func:`calibration_metrics`, in order.
CALIBRATION_METRICS = tuple(f"coverage{int(round(100 * c))}" for c in NOMINAL_COVERAGES) + (
    "sd_rmse", "sd_error_spearman", "crps", "nll")


def calibration_metrics(pred, std, true, genes=None) -> pd.DataFrame:
    """Per-gene calibration of Gaussian predictive distributions ``N(pred, std^2)``.

    Parameters
    ----------
    pred, std, true : (n_points, n_genes) arrays
        Predicted means, predicted standard deviations (> 0) and reference values, in
        the same units. Rows where any of the three is missing are ignored.
    genes : sequence of str, optional

    Returns
    -------
    pandas.DataFrame
        Indexed by gene: ``coverage50/90/95`` (share of reference values inside the
        central 50 / 90 / 95 % intervals ``pred +- z std``), ``sd_rmse`` (root mean
        predicted variance over the root mean squared error: 1 when the SDs are right on
        average, < 1 when too narrow), ``sd_error_spearman`` (rank correlation of the SD
        with the absolute error: does the SD say where the map is wrong?), ``crps``
        (mean continuous ranked probability score, in the units of the values; lower is
        better) and ``nll`` (mean Gaussian negative log likelihood), and ``n``.
    """
    pred, true = _pair(pred, true)
    std, _ = _pair(std, true, "std")
    valid = np.isfinite(pred) & np.isfinite(true) & np.isfinite(std) & (std > 0)
    sd = np.where(valid, std, 1.0)
    error = np.where(valid, true - pred, 0.0)
    z = error / sd
    n = valid.sum(axis=0).astype(float)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for nominal, name in zip(NOMINAL_COVERAGES, CALIBRATION_METRICS):
            half = stats.norm.ppf(0.5 + nominal / 2)
            out[name] = np.where(valid, np.abs(z) <= half, False).sum(axis=0) / n
        out["sd_rmse"] = np.sqrt(np.where(valid, sd * sd, 0.0).sum(axis=0) / n) / np.sqrt(
            np.where(valid, error * error, 0.0).sum(axis=0) / n)
        out["sd_error_spearman"] = spearman_columns(np.where(valid, sd, np.nan),
                                                    np.where(valid, np.abs(error), np.nan))
        crps = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
        out["crps"] = np.where(valid, crps, 0.0).sum(axis=0) / n
        nll = 0.5 * np.log(2 * np.pi * sd * sd) + 0.5 * z * z
        out["nll"] = np.where(valid, nll, 0.0).sum(axis=0) / n
    index = pd.Index(list(genes) if genes is not None else range(pred.shape[1]), name="gene")
    table = pd.DataFrame(out, index=index)
    table["n"] = n.astype(int)
    return table


def whole_volume_r(pred_in_mask, true_in_mask, n_background: int, n_mask: int | None = None) -> np.ndarray:
    """The reference study's inflated correlation: whole grid, background zeros included.

    Maps are written with 0 outside the brain, so both images share ``n_background``
    zero voxels. Appending those zeros changes only the count in the correlation sums,
    which lets this be computed from the in-mask values alone, or from a uniform random
    subsample of them whose sums are scaled up to the ``n_mask`` voxels of the mask.

    Parameters
    ----------
    pred_in_mask, true_in_mask : (n_points, n_genes) arrays
        Values at all brain-mask voxels, or at a uniform random subsample of them.
    n_background : int
        Number of grid voxels outside the brain mask.
    n_mask : int, optional
        Number of voxels in the brain mask (default ``n_points``: all of them given).

    Returns
    -------
    (n_genes,) float array
    """
    pred, true = _pair(pred_in_mask, true_in_mask)
    n_mask = len(pred) if n_mask is None else int(n_mask)
    valid = np.isfinite(pred) & np.isfinite(true)
    x = np.where(valid, pred, 0.0)
    y = np.where(valid, true, 0.0)
    scale = n_mask / np.maximum(valid.sum(axis=0), 1)
    n = n_mask + n_background
    sx, sy = x.sum(0) * scale, y.sum(0) * scale
    sxx, syy, sxy = (x * x).sum(0) * scale, (y * y).sum(0) * scale, (x * y).sum(0) * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        r = cov / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))
    return np.clip(r, -1.0, 1.0)


def regional_means(values, labels) -> pd.DataFrame:
    """Average values over points that share a region label (abagen-style regional values).

    Parameters
    ----------
    values : (n_points, n_genes) array or DataFrame
    labels : (n_points,) array of region keys; NaN/None points are left out

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_genes) means, index = sorted region keys.
    """
    frame = pd.DataFrame(np.asarray(values, dtype=float))
    if isinstance(values, pd.DataFrame):
        frame.columns = values.columns
    labels = pd.Series(np.asarray(labels, dtype=object))
    if len(labels) != len(frame):
        raise InputError(f"{len(labels)} region labels for {len(frame)} rows of values")
    keep = labels.notna().to_numpy()
    grouped = frame[keep].groupby(labels[keep].to_numpy()).mean()
    grouped.index.name = "region"
    return grouped


def abagen_regional(values, donors, regions) -> pd.DataFrame:
    """abagen-style regional values: the mean per donor and region, then over donors.

    Parameters
    ----------
    values : (n_sites, n_genes) array
    donors : (n_sites,) array of donor labels
    regions : (n_sites,) array of region keys (None/NaN: left out)

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_genes) means, index = region keys, columns 0..n_genes - 1 (set the
        gene names on it); a region seen by some donors only averages those.
    """
    values = np.asarray(values, dtype=float)
    donors, regions = np.asarray(donors, dtype=object), np.asarray(regions, dtype=object)
    per_donor = [regional_means(values[donors == d], regions[donors == d]) for d in pd.unique(donors)]
    return pd.concat(per_donor).groupby(level=0).mean()


def regional_agreement(pred_regional, ref_regional, min_regions: int = 5):
    """Agreement of regional maps the way the reference study reports it.

    Parameters
    ----------
    pred_regional, ref_regional : pandas.DataFrame
        (regions x genes) tables; only regions and genes present (and finite) in both
        are used.
    min_regions : int
        Genes with fewer shared regions get NaN.

    Returns
    -------
    per_gene : pandas.Series
        Pearson R across regions for each gene (the study's "average of R per gene" is
        its mean).
    aggregate : float
        Pearson R over all (region, gene) pairs pooled (the study's "aggregate R").
    """
    regions = pred_regional.index.intersection(ref_regional.index)
    genes = pred_regional.columns.intersection(ref_regional.columns)
    pred = pred_regional.loc[regions, genes].to_numpy(float)
    ref = ref_regional.loc[regions, genes].to_numpy(float)
    per_gene = pearson_columns(pred, ref)
    per_gene[(np.isfinite(pred) & np.isfinite(ref)).sum(axis=0) < min_regions] = np.nan
    aggregate = float(pearson_columns(pred.ravel(), ref.ravel())[0]) if pred.size else np.nan
    return pd.Series(per_gene, index=genes, name="regional_r"), aggregate


def differential_stability(values, donors, regions, min_regions: int = 10) -> pd.Series:
    """Between-donor reproducibility of each gene's regional profile.

    For every pair of donors, each gene's regional profile (the mean of that donor's
    samples per region) is correlated over the regions both donors sampled; the result
    is the mean over donor pairs (Hawrylycz et al. 2015, "differential stability").

    Parameters
    ----------
    values : (n_sites, n_genes) DataFrame or array
    donors : (n_sites,) array of donor labels
    regions : (n_sites,) array of region keys (NaN = unassigned, ignored)
    min_regions : int
        Donor pairs that share fewer regions are skipped.

    Returns
    -------
    pandas.Series
        Mean pairwise correlation per gene (NaN when no donor pair qualifies).
    """
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values, float))
    donors = np.asarray(donors, dtype=object)
    profiles = {}
    for donor in pd.unique(donors):
        rows = donors == donor
        profiles[donor] = regional_means(frame.to_numpy(float)[rows], np.asarray(regions, dtype=object)[rows])
    names = list(profiles)
    total = np.zeros(frame.shape[1])
    count = np.zeros(frame.shape[1])
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            shared = profiles[names[a]].index.intersection(profiles[names[b]].index)
            if len(shared) < min_regions:
                continue
            r = pearson_columns(profiles[names[a]].loc[shared].to_numpy(),
                                profiles[names[b]].loc[shared].to_numpy())
            ok = np.isfinite(r)
            total[ok] += r[ok]
            count[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        ds = total / count
    return pd.Series(ds, index=frame.columns, name="differential_stability")


def reproducibility_bins(ds, edges=REPRODUCIBILITY_EDGES) -> pd.Categorical:
    """Label each gene by its reproducibility bin (``"0.30-0.50"`` ...)."""
    edges = list(edges)
    labels = [f"{max(lo, 0):.2f}-{hi:.2f}" for lo, hi in zip(edges[:-1], edges[1:])]
    return pd.cut(np.asarray(ds, dtype=float), bins=edges, labels=labels, include_lowest=True)


def summarise(table: pd.DataFrame, by, metrics=GENE_METRICS) -> pd.DataFrame:
    """Mean, median and standard deviation of per-gene metrics within groups.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table with one row per (group..., gene) and metric columns.
    by : list of str
        Grouping columns (e.g. ``["method", "protocol", "target"]``).
    metrics : sequence of str
        Metric columns to summarise (missing ones are skipped).

    Returns
    -------
    pandas.DataFrame
        One row per group; columns ``<metric>_mean``, ``<metric>_median``, ``<metric>_sd``
        and ``n_genes``.
    """
    metrics = [m for m in metrics if m in table.columns]
    grouped = table.groupby(list(by), observed=True, sort=False)
    parts = {}
    for metric in metrics:
        parts[f"{metric}_mean"] = grouped[metric].mean()
        parts[f"{metric}_median"] = grouped[metric].median()
        parts[f"{metric}_sd"] = grouped[metric].std()
    out = pd.DataFrame(parts)
    out["n_genes"] = grouped.size()
    return out.reset_index()
