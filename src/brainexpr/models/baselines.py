"""Classical interpolators of sample-level expression, with the INR's interface.

Three baselines that every comparison in the package uses:

* :class:`NearestSampleInterpolator`: the value of the nearest sample site.
* :class:`KNNInterpolator`: inverse-distance weighting of the ``k = 10`` nearest sites,
  what abagen's dense interpolation does, with optional left-right mirroring of the sites
  (abagen's ``lr_mirror``).
* :class:`KrigingInterpolator`: ordinary kriging (Gaussian-process regression with a
  constant mean) whose variogram, nugget included, is fitted once from the data and
  shared by all genes.

All follow :mod:`brainexpr.models.base`: ``fit(coords, values, tissue=None,
gene_axis=None)`` with a dense sites x genes matrix (NaN = not measured) and
``predict(coords, tissue=None, genes=None)``. None of them uses ``tissue`` or
``gene_axis``; they are accepted for a common interface.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg, optimize
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..errors import InputError
from ..utils import check_random_state
from .base import Capabilities, SampleInterpolator, check_coords, resolve_genes

logger = logging.getLogger(__name__)

#: Left-right mirroring modes (abagen's ``lr_mirror``): which sites get a copy at -x.
MIRROR_MODES = {
    None: None,
    "none": None,
    "bidirectional": lambda x: np.ones(len(x), dtype=bool),
    "leftright": lambda x: x[:, 0] < 0,   # copy left-hemisphere sites (x < 0) to the right
    "rightleft": lambda x: x[:, 0] > 0,   # copy right-hemisphere sites to the left
}

#: What ``predict_std`` describes: the error of the predicted field (``population``) or the
#: spread of a new donor's measured value around it (``sample``).
STD_KINDS = ("population", "sample")


def mirror_sites(coords, values, mode):
    """Add left-right mirrored copies of sample sites (x -> -x), as abagen's ``lr_mirror``.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    values : (n, g) array
    mode : {None, "none", "bidirectional", "leftright", "rightleft"}
        ``leftright`` copies left-hemisphere sites (x < 0) into the right hemisphere,
        ``rightleft`` the reverse, ``bidirectional`` both.

    Returns
    -------
    coords : (n + m, 3) array
    values : (n + m, g) array
    """
    check_choice(mode, MIRROR_MODES, "mirror")
    select = MIRROR_MODES[mode]
    if select is None:
        return coords, values
    chosen = select(coords)
    return np.vstack([coords, reflect(coords[chosen])]), np.vstack([values, values[chosen]])


def reflect(coords) -> np.ndarray:
    """Left-right mirror images ``(x, y, z) -> (-x, y, z)`` of MNI points (..., 3)."""
    return np.asarray(coords, dtype=float) * np.array([-1.0, 1.0, 1.0])


def kriging_variance(cross, solved, site_design, point_design, drift_covariance, prior=1.0):
    """Universal-kriging variance from solved kriging systems, for a batch of points.

    ``prior - c' K^-1 c + u' (F' K^-1 F)^-1 u`` with ``u = f(x) - F' K^-1 c``.

    Parameters
    ----------
    cross : (b, m) array
        Covariances ``c`` between each point and its sites.
    solved : (b, m) array
        ``K^-1 c`` for each point.
    site_design : (m, p) or (b, m, p) array
        Drift columns ``F`` at the sites (shared by all points, or per point).
    point_design : (b, p) array
        Drift columns ``f(x)`` at the points.
    drift_covariance : (p, p) array
        ``(F' K^-1 F)^-1`` of the whole system (the uncertainty of the drift
        coefficients).
    prior : float or (b,) array
        Prior variance at the points.

    Returns
    -------
    (b,) array, >= 0
    """
    variance = prior - np.einsum("bm,bm->b", cross, solved)
    if site_design.ndim == 2:
        explained = solved @ site_design
    else:
        explained = np.einsum("bmp,bm->bp", site_design, solved)
    u = point_design - explained
    variance = variance + np.einsum("bp,pq,bq->b", u, drift_covariance, u)
    return np.maximum(variance, 0.0)


def missing_groups(values) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group genes by their pattern of measured sites.

    Returns
    -------
    list of (site_mask, gene_indices)
        ``site_mask`` (n_sites,) bool marks the sites where all genes of the group were
        measured. Dense AHBA data give a single group.
    """
    finite = np.isfinite(values)
    if finite.all():
        return [(np.ones(values.shape[0], dtype=bool), np.arange(values.shape[1]))]
    patterns, inverse = np.unique(finite.T, axis=0, return_inverse=True)
    return [(patterns[k], np.flatnonzero(inverse.ravel() == k)) for k in range(len(patterns))]


class _NeighbourInterpolator(SampleInterpolator):
    """Shared machinery of the nearest-site and k-nearest-neighbour interpolators."""

    def _fit_neighbours(self, coords, values, tissue=None):
        coords, values, _, names = self._validate_fit(coords, values, tissue)
        coords, values = mirror_sites(coords, values, self.mirror)
        self.n_genes_ = values.shape[1]
        self.gene_names_ = names
        self.n_sites_ = len(coords)
        self.groups_ = []
        for sites, genes in missing_groups(values):
            self.groups_.append((cKDTree(coords[sites]), values[np.ix_(sites, genes)], genes))
        return self

    def _state(self) -> dict:
        """Fitted attributes; the KD-trees of ``groups_`` are saved as their points."""
        state = super()._state()
        state["groups_"] = [(tree.data, values, genes) for tree, values, genes in self.groups_]
        return state

    @classmethod
    def _from_state(cls, params: dict, state: dict):
        """Rebuild the KD-trees from their points (as :meth:`_fit_neighbours` built them)."""
        groups = [(cKDTree(points), values, genes) for points, values, genes in state["groups_"]]
        return super()._from_state(params, dict(state, groups_=groups))

    def predict(self, coords, tissue=None, genes=None):
        """Predict at new points.

        Parameters
        ----------
        coords : (n_points, 3) array, mm, MNI152
        tissue : ignored
        genes : sequence of int or str, optional
            Genes to predict (default: all genes seen in ``fit``).

        Returns
        -------
        (n_points, n_genes_selected) float array
        """
        check_is_fitted(self, "groups_")
        coords = check_coords(coords)
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        out = np.empty((len(coords), self.n_genes_))
        for tree, values, group_genes in self.groups_:
            out[:, group_genes] = self._combine(tree, values, coords)
        return out[:, selected]


class NearestSampleInterpolator(_NeighbourInterpolator):
    """Predict the value of the nearest sample site.

    Parameters
    ----------
    mirror : {None, "bidirectional", "leftright", "rightleft"}
        Add left-right mirrored copies of the sites before the search.

    Attributes
    ----------
    n_genes_ : int
    gene_names_ : list of str or None
    n_sites_ : int
        Sites after mirroring.
    """

    capabilities = Capabilities(model_file=True)

    def __init__(self, mirror=None):
        self.mirror = mirror

    def fit(self, coords, values, tissue=None, gene_axis=None):
        """Store the sample sites (see :mod:`brainexpr.models.base`); returns ``self``."""
        return self._fit_neighbours(coords, values, tissue)

    @staticmethod
    def _combine(tree, values, coords):
        _, nearest = tree.query(coords, k=1)
        return values[nearest]


class KNNInterpolator(_NeighbourInterpolator):
    """Inverse-distance weighting of the k nearest sample sites (abagen-like).

    Parameters
    ----------
    n_neighbors : int
        Number of sites averaged (abagen: 10).
    power : float
        Weights are ``1 / distance ** power`` (abagen: 1). A point that coincides with a
        site (distance < 1e-6 mm) takes that site's value.
    mirror : {None, "bidirectional", "leftright", "rightleft"}
        Add left-right mirrored copies of the sites (abagen's ``lr_mirror``).

    Attributes
    ----------
    n_genes_ : int
    gene_names_ : list of str or None
    n_sites_ : int
        Sites after mirroring.
    """

    capabilities = Capabilities(model_file=True)

    def __init__(self, n_neighbors: int = 10, power: float = 1.0, mirror=None):
        self.n_neighbors = n_neighbors
        self.power = power
        self.mirror = mirror

    def fit(self, coords, values, tissue=None, gene_axis=None):
        """Store the sample sites (see :mod:`brainexpr.models.base`); returns ``self``."""
        if int(self.n_neighbors) < 1:
            raise InputError(f"n_neighbors must be >= 1, got {self.n_neighbors!r}")
        if not float(self.power) >= 0:
            raise InputError(f"power must be >= 0, got {self.power!r}")
        return self._fit_neighbours(coords, values, tissue)

    def _combine(self, tree, values, coords):
        k = min(int(self.n_neighbors), len(values))
        distance, index = tree.query(coords, k=k)
        if k == 1:
            distance, index = distance[:, None], index[:, None]
        exact = distance < 1e-6
        with np.errstate(divide="ignore"):
            weights = 1.0 / np.maximum(distance, 1e-6) ** float(self.power)
        weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), weights)
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("pk,pkg->pg", weights, values[index])


# --------------------------------------------------------------------------- kriging
def _exponential(h):
    return np.exp(-h)


def _gaussian(h):
    return np.exp(-h * h)


def _matern32(h):
    s = np.sqrt(3.0) * h
    return (1.0 + s) * np.exp(-s)


def _spherical(h):
    h = np.minimum(h, 1.0)
    return 1.0 - 1.5 * h + 0.5 * h ** 3


#: Variogram models: name -> correlation function of distance / range.
VARIOGRAMS = {
    "exponential": _exponential,
    "gaussian": _gaussian,
    "matern32": _matern32,
    "spherical": _spherical,
}


#: Pair differences (pairs x genes) held at once by :func:`empirical_variogram`.
_VARIOGRAM_BLOCK = 2 ** 24


def empirical_variogram(coords, values, max_lag: float = 60.0, n_lags: int = 15,
                        max_pairs: int = 200_000, random_state=None):
    """Semivariance of standardised values against distance, pooled over genes.

    Parameters
    ----------
    coords : (n, 3) array, mm
    values : (n, g) array, standardised per gene; NaN ignored
    max_lag : float
        Largest distance (mm) considered.
    n_lags : int
        Number of equal-width distance bins.
    max_pairs : int
        Site pairs used at most (a random subset when there are more).
    random_state : int or Generator, optional

    Returns
    -------
    lags : (n_bins,) mean pair distance per non-empty bin, mm
    gamma : (n_bins,) semivariance ``0.5 * mean((z_i - z_j)^2)`` over pairs and genes
    counts : (n_bins,) number of site pairs per bin
    """
    rng = check_random_state(random_state)
    pairs = cKDTree(coords).query_pairs(r=max_lag, output_type="ndarray")
    if len(pairs) == 0:
        raise InputError(f"no two sample sites lie within {max_lag} mm of each other")
    if len(pairs) > max_pairs:
        pairs = pairs[rng.choice(len(pairs), size=max_pairs, replace=False)]
    distance = np.linalg.norm(coords[pairs[:, 0]] - coords[pairs[:, 1]], axis=1)
    # pooled over genes in blocks of at most _VARIOGRAM_BLOCK pair differences: memory stays
    # bounded for any number of genes (all 200,000 pairs x 20,000 genes at once need 32 GB)
    total = count = 0
    step = max(1, _VARIOGRAM_BLOCK // len(pairs))
    for start in range(0, values.shape[1], step):
        block = values[:, start:start + step]
        squared = (block[pairs[:, 0]] - block[pairs[:, 1]]) ** 2
        measured = ~np.isnan(squared)
        total = total + np.sum(np.where(measured, squared, 0), axis=1)
        count = count + np.sum(measured, axis=1, dtype=np.intp)
    with np.errstate(invalid="ignore", divide="ignore"):
        semivariance = 0.5 * (total / count)
    keep = np.isfinite(semivariance)
    distance, semivariance = distance[keep], semivariance[keep]
    edges = np.linspace(0.0, max_lag, n_lags + 1)
    which = np.clip(np.digitize(distance, edges) - 1, 0, n_lags - 1)
    counts = np.bincount(which, minlength=n_lags)
    with np.errstate(invalid="ignore", divide="ignore"):
        lags = np.bincount(which, weights=distance, minlength=n_lags) / counts
        gamma = np.bincount(which, weights=semivariance, minlength=n_lags) / counts
    nonempty = counts > 0
    return lags[nonempty], gamma[nonempty], counts[nonempty]


def fit_variogram(lags, gamma, counts, model: str = "exponential") -> dict:
    """Fit ``nugget + sill * (1 - rho(h / range))`` by weighted least squares.

    Weights are the pair counts divided by the squared model value (Cressie 1985), which
    favours the short lags that matter most for interpolation.

    Returns
    -------
    dict
        ``model``, ``nugget``, ``sill`` (partial sill), ``range`` (mm).
    """
    rho = VARIOGRAMS[model]

    def curve(params, h):
        nugget, sill, scale = params
        return nugget + sill * (1.0 - rho(h / scale))

    def residuals(params):
        model_gamma = np.maximum(curve(params, lags), 1e-6)
        return np.sqrt(counts) * (gamma - model_gamma) / model_gamma

    top = float(np.max(gamma))
    start = np.array([0.3 * gamma[0], max(top - 0.3 * gamma[0], 1e-3), max(lags.max() / 3, 2.0)])
    bounds = ([0.0, 1e-6, 0.5], [2.0 * top + 1e-6, 4.0 * top + 1e-6, 20.0 * lags.max()])
    start = np.clip(start, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9)
    result = optimize.least_squares(residuals, start, bounds=bounds, method="trf")
    nugget, sill, scale = (float(v) for v in result.x)
    return {"model": model, "nugget": nugget, "sill": sill, "range": scale}


def covariance(coords_a, coords_b, params: dict, add_nugget: bool = False) -> np.ndarray:
    """Covariance matrix of the fitted variogram between two sets of points.

    Parameters
    ----------
    coords_a : (n, 3) array, mm
    coords_b : (m, 3) array, mm
    params : dict
        From :func:`fit_variogram`.
    add_nugget : bool
        Add the nugget on the diagonal (only for ``coords_a is coords_b``).

    Returns
    -------
    (n, m) array
    """
    distance = cdist(coords_a, coords_b)
    cov = params["sill"] * VARIOGRAMS[params["model"]](distance / params["range"])
    if add_nugget:
        cov[np.diag_indices_from(cov)] += params["nugget"]
    return cov


class KrigingInterpolator(SampleInterpolator):
    """Ordinary kriging with one variogram, nugget included, fitted to all genes.

    Values are standardised per gene; the empirical semivariogram is pooled over genes
    and fitted by weighted least squares (:func:`fit_variogram`). Each gene is then
    predicted by the best linear unbiased predictor with an unknown constant mean
    (generalised-least-squares mean plus simple kriging of the residual), which is
    Gaussian-process regression with the fitted covariance. One Cholesky factorisation
    serves every gene, so 3,702 sites x 100 genes take about a second to fit.

    Parameters
    ----------
    variogram : {"exponential", "matern32", "gaussian", "spherical"}
        Variogram model.
    max_lag : float
        Largest distance (mm) of the empirical variogram.
    n_lags : int
        Distance bins of the empirical variogram.
    params : dict, optional
        Fixed ``{"nugget", "sill", "range"}`` (standardised units, mm) instead of fitting.
    mirror : {None, "bidirectional", "leftright", "rightleft"}
        Add left-right mirrored copies of the sites before fitting.
    max_sites : int
        Refuse more sites than this (the dense solve needs ``8 * n^2`` bytes).
    chunk_size : int
        Prediction points per block (memory ``8 * chunk_size * n_sites`` bytes).
    random_state : int, optional
        Seeds the subsample of site pairs in the empirical variogram.

    Attributes
    ----------
    variogram_ : dict
        Fitted ``model``, ``nugget``, ``sill``, ``range`` (mm).
    empirical_variogram_ : tuple of arrays
        ``(lags, gamma, counts)``.
    mean_, scale_ : (n_genes,) arrays
        Per-gene standardisation.
    gls_mean_ : (n_genes,) array
        Kriging mean of each standardised gene.
    """

    capabilities = Capabilities(std="kriging", model_file=True)

    def __init__(self, variogram: str = "exponential", max_lag: float = 60.0, n_lags: int = 15,
                 params: dict | None = None, mirror=None, max_sites: int = 15_000,
                 chunk_size: int = 2048, random_state=0):
        self.variogram = variogram
        self.max_lag = max_lag
        self.n_lags = n_lags
        self.params = params
        self.mirror = mirror
        self.max_sites = max_sites
        self.chunk_size = chunk_size
        self.random_state = random_state

    def fit(self, coords, values, tissue=None, gene_axis=None):
        """Fit the variogram and the kriging weights (see :mod:`brainexpr.models.base`)."""
        check_choice(self.variogram, VARIOGRAMS, "variogram")
        coords, values, _, names = self._validate_fit(coords, values, tissue)
        coords, values = mirror_sites(coords, values, self.mirror)
        if len(coords) > self.max_sites:
            raise InputError(f"kriging solves a dense system: {len(coords)} sites exceed max_sites="
                             f"{self.max_sites}; subsample the sites or raise max_sites")
        self.n_genes_ = values.shape[1]
        self.gene_names_ = names
        self.mean_ = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        standardised = (values - self.mean_) / self.scale_
        if self.params is None:
            self.empirical_variogram_ = empirical_variogram(
                coords, standardised, max_lag=self.max_lag, n_lags=self.n_lags,
                random_state=self.random_state)
            self.variogram_ = fit_variogram(*self.empirical_variogram_, model=self.variogram)
        else:
            missing = {"nugget", "sill", "range"} - set(self.params)
            if missing:
                raise InputError(f"params needs keys nugget, sill, range; missing {sorted(missing)}")
            self.empirical_variogram_ = None
            self.variogram_ = {"model": self.variogram, **{k: float(self.params[k])
                                                           for k in ("nugget", "sill", "range")}}
        # keep the system well conditioned even when the fitted nugget is ~0
        self.variogram_["nugget"] = max(self.variogram_["nugget"], 1e-4 * self.variogram_["sill"])
        logger.info("kriging variogram: %s", {k: (round(v, 4) if isinstance(v, float) else v)
                                               for k, v in self.variogram_.items()})
        self.coords_ = coords
        self.gls_mean_ = np.zeros(self.n_genes_)
        self.weights_ = []  # (site_mask, gene_indices, alpha (n_sites_group, n_genes_group))
        for sites, genes in missing_groups(values):
            site_coords = coords[sites]
            cov = covariance(site_coords, site_coords, self.variogram_, add_nugget=True)
            factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
            z = standardised[np.ix_(sites, genes)]
            ones = linalg.cho_solve(factor, np.ones(len(site_coords)), check_finite=False)
            solved = linalg.cho_solve(factor, z, check_finite=False)
            gls = ones @ z / ones.sum()
            alpha = solved - np.outer(ones, gls)
            self.gls_mean_[genes] = gls
            self.weights_.append((sites, genes, alpha))
        return self

    def predict(self, coords, tissue=None, genes=None):
        """Kriging prediction at new points.

        Parameters
        ----------
        coords : (n_points, 3) array, mm, MNI152
        tissue : ignored
        genes : sequence of int or str, optional

        Returns
        -------
        (n_points, n_genes_selected) float array, in the units of the fitted values
        """
        check_is_fitted(self, "weights_")
        coords = check_coords(coords)
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        out = np.empty((len(coords), len(selected)))
        position = {g: i for i, g in enumerate(selected)}
        step = max(int(self.chunk_size), 1)
        for sites, genes, alpha in self.weights_:
            wanted = np.array([g in position for g in genes])
            if not wanted.any():
                continue
            cols = np.array([position[g] for g in genes[wanted]])
            site_coords = self.coords_[sites]
            gene_idx = genes[wanted]
            for start in range(0, len(coords), step):
                block = coords[start:start + step]
                cross = covariance(block, site_coords, self.variogram_)
                z = self.gls_mean_[gene_idx] + cross @ alpha[:, wanted]
                out[start:start + step, cols] = self.mean_[gene_idx] + self.scale_[gene_idx] * z
        return out

    def predict_std(self, coords, tissue=None, genes=None, kind: str = "population"):
        """Ordinary-kriging standard deviation at new points.

        Parameters
        ----------
        coords : (n_points, 3) array, mm, MNI152
        tissue : ignored
        genes : sequence of int or str, optional
        kind : {"population", "sample"}
            SD of the error of the predicted field, or (``sample``) of a new measured
            value there (adds the nugget).

        Returns
        -------
        (n_points, n_genes_selected) float array, in the units of the fitted values

        Notes
        -----
        Exact (every site; one Cholesky factorisation per call), with the one fitted
        variogram: mirrored copies count as independent observations, so a mirrored
        kriging's SD is too small where the field is not symmetric.
        """
        check_is_fitted(self, "weights_")
        check_choice(kind, STD_KINDS, "kind")
        coords = check_coords(coords)
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        position = {g: i for i, g in enumerate(selected)}
        params = self.variogram_
        out = np.full((len(coords), len(selected)), np.nan)
        step = max(int(self.chunk_size), 1)
        for sites, genes_group, _ in self.weights_:
            wanted = [g for g in genes_group if g in position]
            if not wanted:
                continue
            site_coords = self.coords_[sites]
            cov = covariance(site_coords, site_coords, params, add_nugget=True)
            factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
            ones = np.ones((len(site_coords), 1))
            drift_covariance = 1.0 / (ones.T @ linalg.cho_solve(factor, ones, check_finite=False))
            variance = np.empty(len(coords))
            for start in range(0, len(coords), step):
                cross = covariance(coords[start:start + step], site_coords, params)
                solved = linalg.cho_solve(factor, cross.T, check_finite=False).T
                variance[start:start + step] = kriging_variance(
                    cross, solved, ones, np.ones((len(cross), 1)), drift_covariance, prior=params["sill"])
            if kind == "sample":
                variance += params["nugget"]
            out[:, [position[g] for g in wanted]] = np.sqrt(variance)[:, None] * self.scale_[wanted]
        return out
