"""Normalisation of microarray expression (abagen's ``sample_norm`` and ``gene_norm``).

Every method normalises the *columns* of a 2-D array (``axis=0``). The workflow applies
them twice per donor, as abagen does: across genes for each sample (``sample_norm``, on
the transposed matrix) and then across samples for each gene (``gene_norm``), the latter
optionally separately within each structural class.

The default, the scaled robust sigmoid (``srs``; Fulcher et al. 2013, 2016), is

.. math:: x_{norm} = \\frac{1}{1 + \\exp(-(x - \\langle x \\rangle) / \\mathrm{IQR}_x)}

with the median :math:`\\langle x \\rangle` and the normalised interquartile range
:math:`\\mathrm{IQR}_x` (IQR / 1.349, a robust standard deviation), followed by min-max
rescaling to [0, 1].
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError

logger = logging.getLogger(__name__)

#: IQR of the standard normal distribution: IQR / this = a robust standard deviation.
NORMAL_IQR = 1.3489795003921634


def rescale(data, axis: int = 0, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Min-max rescale ``data`` to [low, high] along ``axis``."""
    data = np.asarray(data)
    lo = data.min(axis=axis, keepdims=True)
    hi = data.max(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return low + (data - lo) / (hi - lo) * (high - low)


def robust_sigmoid(data, axis: int = 0) -> np.ndarray:
    """Robust sigmoid: logistic of (x - median) / (IQR / 1.349) along ``axis``.

    A column whose IQR is 0 yields NaN/0/1 values (abagen drops such genes later).
    """
    data = np.asarray(data)
    q1, med, q3 = np.percentile(data, [25, 50, 75], axis=axis, keepdims=True)  # one partition
    iqr = (q3 - q1) / NORMAL_IQR
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return 1.0 / (1.0 + np.exp(-(data - med) / iqr))


def scaled_robust_sigmoid(data, axis: int = 0) -> np.ndarray:
    """Robust sigmoid followed by min-max rescaling to [0, 1] (abagen's ``srs``)."""
    return rescale(robust_sigmoid(data, axis=axis), axis=axis)


def sigmoid(data, axis: int = 0) -> np.ndarray:
    """Logistic of the z-score (mean, sample standard deviation) along ``axis``."""
    data = np.asarray(data)
    mean = data.mean(axis=axis, keepdims=True)
    std = data.std(axis=axis, ddof=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return 1.0 / (1.0 + np.exp(-(data - mean) / std))


def scaled_sigmoid(data, axis: int = 0) -> np.ndarray:
    """Sigmoid followed by min-max rescaling to [0, 1]."""
    return rescale(sigmoid(data, axis=axis), axis=axis)


def zscore(data, axis: int = 0) -> np.ndarray:
    """Subtract the mean and divide by the sample standard deviation (ddof=1)."""
    data = np.asarray(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (data - data.mean(axis=axis, keepdims=True)) / data.std(axis=axis, ddof=1,
                                                                       keepdims=True)


def center(data, axis: int = 0) -> np.ndarray:
    """Subtract the mean."""
    data = np.asarray(data)
    return data - data.mean(axis=axis, keepdims=True)


#: ``sample_norm`` / ``gene_norm`` value -> function(data, axis).
NORMALIZATION_METHODS = {
    "srs": scaled_robust_sigmoid,
    "scaled_robust_sigmoid": scaled_robust_sigmoid,
    "rs": robust_sigmoid,
    "robust_sigmoid": robust_sigmoid,
    "sigmoid": sigmoid,
    "scaled_sigmoid": scaled_sigmoid,
    "zscore": zscore,
    "center": center,
    "demean": center,
    "minmax": rescale,
}


def check_norm(name: str, value) -> None:
    """Raise :class:`InputError` unless ``value`` is None or a key of the registry."""
    if value is not None and value not in NORMALIZATION_METHODS:
        raise InputError(f"{name} must be None or one of {', '.join(NORMALIZATION_METHODS)}; "
                         f"got {value!r}")


def normalize_expression(values, norm: str | None = "srs", axis: int = 0,
                         groups=None) -> np.ndarray:
    """Normalise a 2-D expression array along ``axis``, optionally within row groups.

    Parameters
    ----------
    values : (n_samples, n_genes) array
    norm : str or None
        A key of :data:`NORMALIZATION_METHODS`; None returns the values unchanged.
    axis : {0, 1}
        0: each gene across samples (``gene_norm``); 1: each sample across genes
        (``sample_norm``).
    groups : (n_samples,) array, optional
        With ``axis=0``, normalise the samples of each group separately (abagen's
        ``norm_structures``: the structural class of every sample).

    Returns
    -------
    (n_samples, n_genes) array
        float32 when the input is float32, float64 otherwise.
    """
    check_norm("norm", norm)
    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"expression must be 2-D (samples x genes), got shape {values.shape}")
    if norm is None:
        return values
    dtype = np.float32 if values.dtype == np.float32 else np.float64
    func = NORMALIZATION_METHODS[norm]
    if groups is None or axis == 1:
        return np.asarray(func(values, axis=axis), dtype=dtype)
    groups = np.asarray(groups, dtype=object)
    if len(groups) != values.shape[0]:
        raise InputError(f"{len(groups)} structure labels for {values.shape[0]} samples")
    out = np.empty(values.shape, dtype=dtype)
    for group in dict.fromkeys(groups):
        rows = np.flatnonzero(groups == group)
        out[rows] = func(values[rows], axis=0)
    return out
