"""Area-to-point (block) kriging: a continuous map from a regional table of parcel means.

:class:`ParcelKrigingRegressor` is the classical counterpart of
:meth:`brainexpr.models.inr.INRRegressor.fit_regions`. Each gene is a Gaussian-process
field over MNI space,

``f(x) = m(x)' beta + s(x)``,
``s ~ GP(0, sigma^2 [(1 - w) rho(|x - x'| / range) + w rho(|x - x'| / trend_range)])``,

with a mean ``m(x)``: a constant, or with ``tissue_drift`` a mean per tissue class
``m(x) = (1, grey(x), white(x))`` (other tissue is the baseline), and a stationary
correlation ``rho`` from :data:`brainexpr.models.baselines.VARIOGRAMS` that mixes a local
component (``range``) and, with ``trend_range``, a brain-scale one (share ``w``). The
regional value of parcel ``r`` is the mean of the field over the parcel's voxels plus
independent noise, ``y_r = mean_{x in P_r} f(x) + e_r`` with ``e_r ~ N(0, tau sigma^2)``
(the nugget ``tau`` is relative to the point variance ``sigma^2``).

Under that model everything needed is an average of point correlations:

* parcel-parcel covariance ``C_rs = sigma^2 mean_{x in P_r, x' in P_s} rho(|x - x'|)``;
* point-parcel covariance ``c_r(x) = sigma^2 mean_{x' in P_r} rho(|x - x'|)``;
* parcel drift ``A_r = mean_{x in P_r} m(x)`` (exact, from every voxel).

The voxel averages are computed by quadrature on at most ``parcel_samples`` nodes per
parcel: the parcel's voxels are binned in a cubic grid whose cell size is the smallest
that gives no more than ``parcel_samples`` occupied cells, and each occupied cell becomes
one node at its voxels' centroid, weighted by its share of the parcel's voxels (a
stratified midpoint rule, much more accurate than as many random voxels; a node's
correlation with itself is taken at the RMS distance of its cell's voxels, not at 0). The
prediction is the universal (block) kriging predictor ``f(x) = m(x)' beta + c(x)' C_y^{-1}
(y - A beta)`` with generalised-least-squares ``beta``; averaged over a parcel's voxels it
reproduces the input value up to the nugget and the quadrature error (which halves when
``parcel_samples`` doubles). Prediction costs ``n_parcels * parcel_samples`` correlations
per point and component, in float32 blocks of ``chunk_size`` points (about 11,000 points x
100 genes per second on one CPU core for DK-83: a 2 mm brain map in 20 s, 1 mm in 3 min).

Hyperparameters: per gene, the range (mm), the trend share ``w`` and the nugget are chosen
from small grids by restricted (REML) profile likelihood, ``sigma^2`` profiled out.
``share="range"`` (the default) chooses one range for all genes (the highest summed
likelihood) and ``w`` and the nugget per gene, so that two sets of point-parcel
correlations (local and trend) serve every gene at prediction; ``"all"`` shares every
hyperparameter, ``"none"`` chooses all of them per gene.

Defaults (``trend_range=100``, no tissue drift) come from the held-out comparison in
``benchmarks/results/parcel_fits.md``: the brain-scale component raised the held-out
parcel r by 0.01-0.03 on real and phantom data; a tissue drift, identified only by the
tissue composition of the parcels, helped on random folds of the real table but hurt on
lobe folds and on the phantom's voxel maps.

The estimator is pure numpy; its fitted state is arrays, scalars and lists.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import check_random_state
from .base import Capabilities, SampleInterpolator, check_coords, check_tissue, regional_voxels, resolve_genes
from .baselines import STD_KINDS, VARIOGRAMS, kriging_variance, missing_groups
from .kriging import drift_design, gls

logger = logging.getLogger(__name__)

#: Hyperparameter sharing across genes: what is chosen once for all genes.
SHARING = ("range", "all", "none")

#: Most sample sites :meth:`ParcelKrigingRegressor.fit` accepts (dense solve).
MAX_SITES = 6000

#: Smallest standard deviation of a tissue fraction across parcels for its drift term.
MIN_DRIFT_SPREAD = 1e-3


def _grid_cells(points: np.ndarray, n_cells: int, shift: np.ndarray, n_steps: int = 12):
    """Cell of each point in a cubic grid (offset ``shift`` cells) with at most ``n_cells``
    occupied cells, the cell size found by bisection; all points when there are fewer."""
    if len(points) <= n_cells:
        return np.arange(len(points))
    low_corner = points.min(axis=0)
    extent = float(np.ptp(points, axis=0).max()) + 1.0

    def cells(size):
        keys = np.floor((points - low_corner) / size + shift).astype(np.int64)
        width = int(keys.max()) + 1
        flat = (keys[:, 0] * width + keys[:, 1]) * width + keys[:, 2]
        return np.unique(flat, return_inverse=True)[1].ravel()

    low, high = 0.5, extent   # mm; cells of 0.5 mm hold one voxel each
    best = np.zeros(len(points), dtype=np.int64)
    for _ in range(n_steps):
        size = np.sqrt(low * high)
        index = cells(size)
        if index.max() + 1 <= n_cells:
            high, best = size, index
        else:
            low = size
    return best


def quadrature_nodes(coords, offsets, n_nodes: int = 64, random_state=None):
    """Stratified quadrature nodes for averages over each parcel's voxels.

    Each parcel's voxels are binned in a cubic grid (random offset) whose cell size is the
    smallest found that gives at most ``n_nodes`` occupied cells; every occupied cell is one
    node at the centroid of its voxels, weighted by its share of the parcel's voxels.
    Parcels with at most ``n_nodes`` voxels use every voxel.

    Parameters
    ----------
    coords : (n_voxels, 3) array, mm, MNI152
        Voxels grouped by parcel (see :func:`brainexpr.models.base.parcel_voxels`).
    offsets : (n_parcels + 1,) int array
    n_nodes : int
        Largest number of nodes per parcel.
    random_state : int or Generator, optional
        Seeds the grid offsets.

    Returns
    -------
    nodes : (n_total, 3) float array, mm
    weights : (n_total,) float array
        Sum to 1 within each parcel.
    spreads : (n_total,) float array, mm
        Root-mean-square distance of each node's voxels from the node.
    node_offsets : (n_parcels + 1,) int array
        Nodes of parcel ``r`` are ``nodes[node_offsets[r]:node_offsets[r + 1]]``.
    """
    rng = check_random_state(random_state)
    coords = np.asarray(coords, dtype=float)
    nodes, weights, spreads, counts = [], [], [], []
    for start, stop in zip(offsets[:-1], offsets[1:]):
        points = coords[start:stop]
        cell = _grid_cells(points, int(n_nodes), rng.random(3))
        size = np.bincount(cell).astype(float)
        centre = np.column_stack([np.bincount(cell, weights=points[:, k])
                                  for k in range(3)]) / size[:, None]
        squared = np.bincount(cell, weights=((points - centre[cell]) ** 2).sum(axis=1))
        nodes.append(centre)
        weights.append(size / size.sum())
        spreads.append(np.sqrt(squared / size))
        counts.append(len(size))
    return (np.vstack(nodes), np.concatenate(weights), np.concatenate(spreads),
            np.r_[0, np.cumsum(counts)])


def _correlation_in_place(h: np.ndarray, variogram: str) -> np.ndarray:
    """``VARIOGRAMS[variogram](h)`` computed in place in the dtype of ``h`` (float32 here:
    the library functions' float64 constants would promote, at four times the cost)."""
    if variogram == "matern32":
        h *= h.dtype.type(np.sqrt(3.0))
        decay = np.exp(-h)
        h += 1.0
        h *= decay
    elif variogram == "exponential":
        np.exp(-h, out=h)
    elif variogram == "gaussian":
        h *= h
        np.exp(-h, out=h)
    elif variogram == "spherical":
        np.minimum(h, 1.0, out=h)
        cube = h ** 3
        h *= -1.5
        h += 1.0
        h += 0.5 * cube
    else:
        h[...] = VARIOGRAMS[variogram](h)
    return h


def parcel_correlation(points, nodes, weights, node_offsets, range_mm: float,
                       variogram: str = "matern32") -> np.ndarray:
    """Mean correlation between each point and the voxels of each parcel (quadrature).

    Parameters
    ----------
    points : (n, 3) array, mm
    nodes, weights, node_offsets :
        From :func:`quadrature_nodes`.
    range_mm : float
        Range of the correlation model (mm).
    variogram : str
        Correlation model (:data:`brainexpr.models.baselines.VARIOGRAMS`).

    Returns
    -------
    (n, n_parcels) float array
    """
    # squared distances by the matmul identity in float32, centred for precision
    centre = nodes.mean(axis=0)
    a = (np.asarray(points, dtype=float) - centre).astype(np.float32)
    b = (np.asarray(nodes, dtype=float) - centre).astype(np.float32)
    distance = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :]
    distance -= 2.0 * (a @ b.T)
    np.maximum(distance, 0.0, out=distance)
    np.sqrt(distance, out=distance)
    distance *= np.float32(1.0 / range_mm)
    correlation = _correlation_in_place(distance, variogram)
    correlation *= weights.astype(np.float32)
    return np.add.reduceat(correlation, node_offsets[:-1], axis=1).astype(float)


class ParcelKrigingRegressor(SampleInterpolator):
    """Block kriging of parcel means into a continuous field (see the module docstring).

    :meth:`fit_regions` fits a regional table of an atlas; :meth:`fit` fits point samples
    (every site a one-point "parcel", i.e. ordinary kriging with the same model), so the
    estimator also follows :mod:`brainexpr.models.base`.

    Parameters
    ----------
    variogram : {"matern32", "exponential", "gaussian", "spherical"}
        Correlation model of the field.
    range_grid : sequence of float
        Candidate ranges (mm) of the correlation model.
    nugget_grid : sequence of float
        Candidate nugget variances of the regional values, relative to the point variance
        of the field (all > 0).
    share : {"range", "all", "none"}
        Hyperparameters chosen once for all genes: the range (trend share and nugget per
        gene), all, or none (prediction then costs one pass per distinct range).
    trend_range : float or None
        Range (mm) of the brain-scale covariance component; None leaves it out.
    trend_share_grid : sequence of float in [0, 1)
        Candidate shares ``w`` of the field's variance in the brain-scale component.
    tissue_drift : bool
        Fit a mean per tissue class (needs ``tissue_image`` in :meth:`fit_regions` and
        ``tissue`` in :meth:`predict`). A class whose share varies too little across
        parcels (SD below 0.001) gets no drift term.
    parcel_samples : int
        Quadrature nodes per parcel (at most); prediction costs ``n_parcels *
        parcel_samples`` correlations per point.
    chunk_size : int
        Points per block at prediction (memory about ``12 * chunk_size * n_parcels *
        parcel_samples`` bytes).
    random_state : int, optional
        Seeds the quadrature grids.

    Attributes
    ----------
    n_genes_ : int
    gene_names_ : list of str
    region_names_ : list of str
        Rows of the fitted regional table.
    nodes_, node_weights_, node_spread_, node_offsets_ : arrays
        Quadrature nodes (mm), their weights, the RMS distance (mm) of their voxels and
        the node range of each parcel.
    parcel_drift_ : (n_parcels, n_drift) array
        Mean drift design of each parcel (intercept and tissue-class shares).
    drift_columns_ : (n_drift,) int array
        Columns of ``(1, grey, white)`` in the drift.
    mean_, scale_ : (n_genes,) arrays
        Per-gene standardisation of the regional values.
    range_, trend_share_, nugget_ : (n_genes,) arrays
        Chosen range (mm), trend share and relative nugget of each gene.
    drift_ : (n_genes, n_drift) array
        GLS drift coefficients (standardised units).
    alpha_ : (n_genes, n_parcels) array
        Kriging weights ``C_y^{-1} (y - A beta)`` (0 for parcels without a value).
    sigma2_ : (n_genes,) array
        REML estimate of each standardised gene's point variance ``sigma^2``.
    measured_ : (n_genes, n_parcels) bool array
        Parcels with a value, per gene.
    likelihood_ : (n_ranges, n_trend_shares, n_nuggets, n_genes) array
        Restricted profile log-likelihood of every candidate (one trend share, 0, without
        ``trend_range``).

    Examples
    --------
    >>> model = ParcelKrigingRegressor().fit_regions(atlas.image, table,   # doctest: +SKIP
    ...                                              regions=atlas.regions, tissue_image=tissue)
    >>> model.predict(coords, tissue=tissue_at_coords, genes=["APOE"])     # doctest: +SKIP
    """

    capabilities = Capabilities(parcel_means=True, std="kriging", model_file=True)

    def __init__(self, variogram: str = "matern32", range_grid=(10.0, 20.0, 40.0, 80.0, 160.0),
                 nugget_grid=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0), share: str = "range",
                 trend_range: float | None = 100.0, trend_share_grid=(0.0, 0.25, 0.5, 0.75),
                 tissue_drift: bool = False, parcel_samples: int = 64, chunk_size: int = 2048,
                 random_state=0):
        self.variogram = variogram
        self.range_grid = range_grid
        self.nugget_grid = nugget_grid
        self.share = share
        self.trend_range = trend_range
        self.trend_share_grid = trend_share_grid
        self.tissue_drift = tissue_drift
        self.parcel_samples = parcel_samples
        self.chunk_size = chunk_size
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        check_choice(self.variogram, VARIOGRAMS, "variogram")
        check_choice(self.share, SHARING, "share")
        for name in ("range_grid", "nugget_grid"):
            grid = np.asarray(getattr(self, name), dtype=float)
            if grid.ndim != 1 or len(grid) == 0 or not (np.isfinite(grid) & (grid > 0)).all():
                raise InputError(f"{name} must be a non-empty sequence of values > 0, got "
                                 f"{getattr(self, name)!r}")
        shares = np.asarray(self.trend_share_grid, dtype=float)
        if shares.ndim != 1 or len(shares) == 0 or not ((shares >= 0) & (shares < 1)).all():
            raise InputError(f"trend_share_grid must be a non-empty sequence of values in [0, 1), "
                             f"got {self.trend_share_grid!r}")
        if self.trend_range is not None and not float(self.trend_range) > 0:
            raise InputError(f"trend_range must be None or > 0 (mm), got {self.trend_range!r}")
        if int(self.parcel_samples) < 1 or int(self.chunk_size) < 1:
            raise InputError(f"parcel_samples and chunk_size must be >= 1, got "
                             f"{self.parcel_samples!r} and {self.chunk_size!r}")

    @fill_doc
    def fit_regions(self, atlas_image, values, regions=None, tissue_image=None, gene_axis=None):
        """Fit the field of every gene to parcel means (a regional table) of an atlas.

        Parameters
        ----------
        %(regional_data)s
        gene_axis : ignored
            Accepted for the interface of :class:`~brainexpr.models.inr.INRRegressor`.

        Returns
        -------
        self
        """
        self._check_params()
        array, names, coords, offsets, tissue = regional_voxels(atlas_image, values, regions,
                                                                tissue_image)
        nodes = quadrature_nodes(coords, offsets, int(self.parcel_samples), self.random_state)
        self.fit_kind_ = "regions"
        self.region_names_ = [str(r) for r in values.index]
        return self._fit_table(array, names, nodes, tissue, offsets)

    @fill_doc
    def fit(self, coords, values, tissue=None, gene_axis=None):
        """Fit the field to point samples: ordinary block kriging with one-voxel "parcels".

        Parameters
        ----------
        %(sample_data)s
        gene_axis : ignored

        Returns
        -------
        self
        """
        self._check_params()
        coords, array, tissue, names = self._validate_fit(coords, values, tissue)
        if len(coords) > MAX_SITES:
            raise InputError(f"{len(coords)} sites exceed {MAX_SITES} (dense kriging system); use "
                             "DonorKrigingRegressor or subsample the sites")
        offsets = np.arange(len(coords) + 1)
        nodes = (coords, np.ones(len(coords)), np.zeros(len(coords)), offsets)
        self.fit_kind_ = "samples"
        self.region_names_ = []
        return self._fit_table(array, names, nodes, tissue, offsets)

    def _fit_table(self, array, names, nodes, tissue, offsets):
        """Fit every gene of ``array`` (parcels x genes) given the parcels' quadrature."""
        if len(array) < 3:
            raise InputError(f"block kriging needs at least 3 regions, got {len(array)}")
        self.n_genes_ = array.shape[1]
        self.gene_names_ = list(names) if names else [f"gene{i}" for i in range(array.shape[1])]
        self.nodes_, self.node_weights_, self.node_spread_, self.node_offsets_ = nodes
        self._fit_drift_design(tissue, offsets)
        self.mean_ = np.nanmean(array, axis=0)
        scale = np.nanstd(array, axis=0)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        z = (array - self.mean_) / self.scale_

        ranges = np.asarray(self.range_grid, dtype=float)
        nuggets = np.asarray(self.nugget_grid, dtype=float)
        shares = np.asarray(self.trend_share_grid if self.trend_range else (0.0,), dtype=float)
        blocks = [self._block_correlation(r) for r in ranges]
        trend = self._block_correlation(float(self.trend_range)) if self.trend_range else 0.0

        def covariance(i, k):
            return (1.0 - shares[k]) * blocks[i] + shares[k] * trend

        groups = missing_groups(z)
        self.likelihood_ = np.full((len(ranges), len(shares), len(nuggets), self.n_genes_),
                                   -np.inf)
        for parcels, genes in groups:
            for i in range(len(ranges)):
                for k in range(len(shares)):
                    for j, tau in enumerate(nuggets):
                        self.likelihood_[i, k, j, genes] = self._restricted_likelihood(
                            covariance(i, k), tau, parcels, z[np.ix_(parcels, genes)])
        range_index, share_index, nugget_index = self._choose(self.likelihood_)
        self.range_ = ranges[range_index]
        self.trend_share_ = shares[share_index]
        self.nugget_ = nuggets[nugget_index]

        n_parcels = len(array)
        self.drift_ = np.zeros((self.n_genes_, len(self.drift_columns_)))
        self.alpha_ = np.zeros((self.n_genes_, n_parcels))
        self.sigma2_ = np.full(self.n_genes_, np.nan)
        self.measured_ = np.isfinite(z).T
        chosen_candidate = np.column_stack([range_index, share_index, nugget_index])
        for parcels, genes in groups:
            for i, k, j in np.unique(chosen_candidate[genes], axis=0):
                chosen = genes[(chosen_candidate[genes] == (i, k, j)).all(axis=1)]
                factor, design, columns = self._factor(covariance(i, k), nuggets[j], parcels)
                beta, alpha = gls(factor, design, z[np.ix_(parcels, chosen)])
                self.drift_[np.ix_(chosen, columns)] = beta.T
                self.alpha_[np.ix_(chosen, np.flatnonzero(parcels))] = alpha.T
                residual = z[np.ix_(parcels, chosen)] - design @ beta
                self.sigma2_[chosen] = np.einsum("ij,ij->j", residual, alpha) / max(
                    len(residual) - design.shape[1], 1)
        logger.info("parcel kriging of %d genes on %d parcels (%d nodes): range %s mm, trend "
                    "share %s, nugget %s", self.n_genes_, n_parcels, len(self.nodes_),
                    _tally(self.range_), _tally(self.trend_share_), _tally(self.nugget_))
        return self

    def _fit_drift_design(self, tissue: np.ndarray, offsets: np.ndarray) -> None:
        """Parcel means of the drift design; tissue terms only where they vary across parcels."""
        design = drift_design(tissue, True)
        parcel_design = np.add.reduceat(design, offsets[:-1], axis=0) / np.diff(offsets)[:, None]
        columns = [0]
        if self.tissue_drift:
            columns += [k for k in (1, 2) if parcel_design[:, k].std() > MIN_DRIFT_SPREAD]
        self.drift_columns_ = np.asarray(columns, dtype=np.int64)
        self.parcel_drift_ = parcel_design[:, self.drift_columns_]

    def _block_correlation(self, range_mm: float) -> np.ndarray:
        """(n_parcels, n_parcels) mean correlation between the voxels of two parcels."""
        nodes, weights, offsets = self.nodes_, self.node_weights_, self.node_offsets_
        step = max(1, int(self.chunk_size))
        point_block = np.vstack([
            parcel_correlation(nodes[start:start + step], nodes, weights, offsets, range_mm,
                               self.variogram)
            for start in range(0, len(nodes), step)])
        # a node stands for its cell: its correlation with itself is the mean correlation
        # between the node and the cell's voxels (about rho(RMS distance)), not rho(0) = 1
        own = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        self_correlation = VARIOGRAMS[self.variogram](self.node_spread_ / range_mm)
        point_block[np.arange(len(nodes)), own] -= weights * (1.0 - self_correlation)
        block = np.add.reduceat(point_block * weights[:, None], offsets[:-1], axis=0)
        return (block + block.T) / 2.0

    def _factor(self, block, tau, parcels):
        """Cholesky factor of ``block + tau I`` on the parcels of a gene group, and the drift."""
        cov = block[np.ix_(parcels, parcels)].copy()
        cov[np.diag_indices_from(cov)] += tau
        factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
        design = self.parcel_drift_[parcels]
        columns = np.flatnonzero(design.std(axis=0) > MIN_DRIFT_SPREAD)
        columns = np.union1d([0], columns)
        return factor, design[:, columns], columns

    def _restricted_likelihood(self, block, tau, parcels, z) -> np.ndarray:
        """REML profile log-likelihood (``sigma^2`` profiled out) of each column of ``z``."""
        factor, design, _ = self._factor(block, tau, parcels)
        n, p = design.shape
        if n <= p:
            raise InputError(f"block kriging needs more regions with values ({n}) than drift "
                             f"terms ({p}); set tissue_drift=False")
        beta, alpha = gls(factor, design, z)
        quadratic = np.einsum("ij,ij->j", z - design @ beta, alpha)
        logdet = 2.0 * np.log(np.diag(factor[0])).sum()
        information = design.T @ linalg.cho_solve(factor, design, check_finite=False)
        logdet_information = np.linalg.slogdet(information)[1]
        dof = n - p
        return -0.5 * (dof * np.log(np.maximum(quadratic, 1e-12) / dof) + logdet
                       + logdet_information)

    def _choose(self, likelihood):
        """Indices of the chosen range, trend share and nugget of every gene."""
        n_ranges, n_shares, n_nuggets, n_genes = likelihood.shape
        per_range = likelihood.reshape(n_ranges, n_shares * n_nuggets, n_genes)
        if self.share == "all":
            flat = np.full(n_genes, int(np.argmax(per_range.sum(axis=2))))
            range_index, local = flat // (n_shares * n_nuggets), flat % (n_shares * n_nuggets)
        elif self.share == "range":
            range_index = np.full(n_genes, int(np.argmax(per_range.max(axis=1).sum(axis=1))))
            local = np.argmax(per_range[range_index[0]], axis=0)
        else:
            flat = per_range.reshape(-1, n_genes).argmax(axis=0)
            range_index, local = flat // (n_shares * n_nuggets), flat % (n_shares * n_nuggets)
        return range_index, local // n_nuggets, local % n_nuggets

    # ------------------------------------------------------------------ prediction
    def predict(self, coords, tissue=None, genes=None):
        """Predict the field at MNI coordinates, in blocks of ``chunk_size`` points.

        Parameters
        ----------
        coords : (n, 3) array, mm, MNI152
        tissue : (n,) array in {1, -1, 0}, optional
            Tissue class at each point (grey, white, other), for the tissue drift;
            default 0 ("other").
        genes : sequence of str or int, optional
            Genes to predict (names or indices); default all.

        Returns
        -------
        (n, n_selected_genes) float32 array, in the units of the regional table
        """
        check_is_fitted(self, "alpha_")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        out = np.empty((len(coords), len(selected)), dtype=np.float32)
        drift = self.drift_[selected]
        share = self.trend_share_[selected]
        local = self.alpha_[selected] * (1.0 - share)[:, None]
        trend = self.alpha_[selected] * share[:, None]
        ranges = self.range_[selected]
        step = max(1, int(self.chunk_size))
        for start in range(0, len(coords), step):
            block = coords[start:start + step]
            field = drift_design(tissue[start:start + step], True)[:, self.drift_columns_] @ drift.T
            for range_mm in np.unique(ranges):
                columns = np.flatnonzero(ranges == range_mm)
                correlation = parcel_correlation(block, self.nodes_, self.node_weights_,
                                                 self.node_offsets_, range_mm, self.variogram)
                field[:, columns] += correlation @ local[columns].T
            if (share > 0).any():
                correlation = parcel_correlation(block, self.nodes_, self.node_weights_,
                                                 self.node_offsets_, float(self.trend_range),
                                                 self.variogram)
                field += correlation @ trend.T
            out[start:start + step] = self.mean_[selected] + self.scale_[selected] * field
        return out

    def predict_std(self, coords, tissue=None, genes=None, kind: str = "population"):
        """Block-kriging standard deviation of the field at MNI coordinates.

        Parameters
        ----------
        coords : (n, 3) array, mm, MNI152
        tissue : (n,) array in {1, -1, 0}, optional
        genes : sequence of str or int, optional
        kind : {"population", "sample"}
            SD of the error of the predicted field, or (``sample``) of a new value measured
            like the fitted ones (adds the nugget).

        Returns
        -------
        (n, n_selected_genes) float array, in the units of the regional table

        Notes
        -----
        ``sigma2 [1 - c(x)' C_y^-1 c(x) + u' (A' C_y^-1 A)^-1 u]`` with ``c(x)`` the
        point-parcel correlations and ``u = m(x) - A' C_y^-1 c(x)``; exact (the system
        has one row per parcel), one factorisation per hyperparameter group, the
        point-parcel correlations computed once per chunk of points for all groups.
        """
        check_is_fitted(self, "alpha_")
        check_choice(kind, STD_KINDS, "kind")
        if not hasattr(self, "sigma2_"):
            raise InputError("this parcel-kriging model was fitted by an older brainexpr without "
                             "uncertainty; refit it for standard deviations")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        keys = np.column_stack([self.range_[selected], self.trend_share_[selected],
                                self.nugget_[selected], self.measured_[selected]])
        blocks, groups = {}, []
        for key in np.unique(keys, axis=0):  # one factorisation per hyperparameter group
            range_mm, share, tau, parcels = key[0], key[1], key[2], key[3:].astype(bool)
            for r in (range_mm, self.trend_range if share > 0 else None):
                if r is not None and r not in blocks:
                    blocks[r] = self._block_correlation(float(r))
            block = (1.0 - share) * blocks[range_mm] + (share * blocks[self.trend_range] if share > 0 else 0.0)
            factor, design, columns = self._factor(block, tau, parcels)
            drift_covariance = np.linalg.pinv(design.T @ linalg.cho_solve(factor, design, check_finite=False))
            groups.append((np.flatnonzero((keys == key).all(axis=1)), range_mm, share, tau, parcels, factor,
                           design, columns, drift_covariance))
        out = np.empty((len(coords), len(selected)))
        step = max(1, int(self.chunk_size))
        for start in range(0, len(coords), step):
            points = coords[start:start + step]
            point_design = drift_design(tissue[start:start + step], True)[:, self.drift_columns_]
            # point-parcel correlations once per chunk and range, shared by every group
            correlation = {r: np.asarray(parcel_correlation(points, self.nodes_, self.node_weights_,
                                                            self.node_offsets_, float(r), self.variogram),
                                         dtype=float)
                           for r in blocks}
            for cols, range_mm, share, tau, parcels, factor, design, columns, drift_covariance in groups:
                cross = (1.0 - share) * correlation[range_mm]
                if share > 0:
                    cross = cross + share * correlation[self.trend_range]
                cross = cross[:, parcels]
                solved = linalg.cho_solve(factor, cross.T, check_finite=False).T
                variance = kriging_variance(cross, solved, design, point_design[:, columns], drift_covariance)
                if kind == "sample":
                    variance = variance + tau
                genes_group = selected[cols]
                out[start:start + step, cols] = np.sqrt(variance[:, None] * self.sigma2_[genes_group]) \
                    * self.scale_[genes_group]
        return out

    @property
    def genes_(self) -> list:
        """Names of the genes the model predicts."""
        check_is_fitted(self, "alpha_")
        return list(self.gene_names_)

    def summary(self) -> dict:
        """Parameters and chosen hyperparameters as a JSON-compatible dict."""
        check_is_fitted(self, "alpha_")
        return {
            "model": "parcel-kriging", "n_genes": self.n_genes_,
            "n_regions": len(self.region_names_), "n_nodes": int(len(self.nodes_)),
            "range_mm": _tally(self.range_), "trend_share": _tally(self.trend_share_),
            "nugget": _tally(self.nugget_),
            "drift": [("intercept", "grey", "white")[k] for k in self.drift_columns_],
            "params": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in self.get_params().items()},
        }


def _tally(values) -> str:
    found, counts = np.unique(np.round(np.asarray(values, dtype=float), 4), return_counts=True)
    return ", ".join(f"{v:g}: {c}" for v, c in zip(found, counts))
