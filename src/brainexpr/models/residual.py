"""Models built to beat the baselines on *held-out* data, not on training loss.

Four estimators with the contract of :mod:`brainexpr.models.base` (plus an optional
``donors`` argument to ``fit``):

:class:`DonorKrigingRegressor`
    Universal kriging of all genes with three things the plain
    :class:`~brainexpr.models.baselines.KrigingInterpolator` lacks:

    * **donor effects**: AHBA values are each donor's field plus noise, and between-donor
      differences are often larger than the population pattern (low differential
      stability). The covariance is ``s^2 [rho_f(d) + a * same_donor * rho_d(d) + tau * I]``:
      a population field shared by all donors, an independent smooth deviation field per
      donor, and a nugget. Prediction returns the *population* field only (donor
      deviation and nugget excluded), which is the map a user wants and what a new donor
      shares;
    * **tissue drift**: a per-gene mean for grey matter, white matter and other tissue
      (generalised least squares inside the kriging system);
    * **per-gene hyperparameters**: the donor share ``a`` and the nugget ``tau`` of each
      gene are chosen from a small grid by profile marginal likelihood (computed on a
      random subset of at most ``max_selection_sites`` sites); the spatial range is
      fitted once from the pooled variogram. One Cholesky factorisation per distinct
      chosen (``a``, ``tau``) serves all genes that chose it.

    * **learned hemispheric symmetry**: the population covariance is
      ``D(x) D(x') [rho(|x - x'|) + w rho(|x - M x'|)]`` with ``M`` the left-right
      reflection ``x -> -x`` and ``D(x) = (1 + w rho(|x - M x|))^(-1/2)`` (unit variance
      everywhere). It equals ``s (k + k_M) / 2 + t (k - k_M) / 2`` with ``s = 1 + w``,
      ``t = 1 - w``, so it is positive definite for ``w`` in [-1, 1]: ``w = 0`` is no
      symmetry, ``w = 1`` a symmetric field. Each gene chooses ``w`` from
      ``symmetry_grid`` by profile likelihood with its other hyperparameters. Donor
      deviations and the nugget stay asymmetric.

    Left-right mirroring (``mirror``) adds mirrored copies of the sites as separate
    pseudo-donors, so that hemispheric asymmetry is absorbed by their deviation fields.

    Uncertainty (:meth:`~DonorKrigingRegressor.predict_std`): the universal-kriging
    standard deviation of the population field (``kind="population"``) or of a new
    donor's sample there (``kind="sample"``: plus the donor deviation and the nugget),
    with each gene's variance scale estimated by maximum likelihood. Each gene also gets
    a **trust score** (``trust_``): the Pearson r between its values and the
    closed-form leave-one-block-out predictions of the population field (20 mm blocks)
    under the fitted hyperparameters, a cheap estimate of its blocked-CV accuracy.

:class:`BlendedINRRegressor`
    The donor kriging averaged with an ensemble of factorized SIRENs
    (:class:`~brainexpr.models.inr.INRRegressor`), the INR's weight chosen on spatially
    held-out validation blocks (``w = 0`` is the kriging alone).

:class:`ResidualINRRegressor`
    The kriging trend plus a small factorized SIREN fitted to the trend's residuals. The
    residual network is trusted only as far as held-out data support it: the trend is
    refitted without spatially held-out validation blocks, the network is trained on the
    remaining residuals, and each gene's residual is scaled by the least-squares
    shrinkage ``lambda_g`` in [0, 1] that best predicts the validation residuals. With
    ``lambda_g = 0`` the model is exactly the kriging trend, so the network can only help
    where it generalises. ``mirror`` augments the network's data with mirrored residuals.

:class:`INRDriftKrigingRegressor`
    The donor kriging with the trunk features of a factorized SIREN (optionally a
    donor-aware one, with penalised per-donor heads) as extra GLS drift columns, or as a
    covariance term whose weight each gene chooses by likelihood. On held-out data none
    of these INR variants beats the donor kriging (``benchmarks/inr_improvements.py``,
    BENCHMARKS.md): they are kept as tested, reproducible negative results.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..errors import InputError
from ..utils import check_random_state
from .base import Capabilities, SampleInterpolator, check_coords, check_tissue, fit_samples, resolve_genes
from .baselines import (STD_KINDS, VARIOGRAMS, empirical_variogram, fit_variogram, kriging_variance,
                        missing_groups, reflect)

logger = logging.getLogger(__name__)


def _check_donors(donors, n: int) -> np.ndarray:
    if donors is None:
        return np.zeros(n, dtype=np.int64)
    donors = np.asarray(donors, dtype=object).ravel()
    if len(donors) != n:
        raise InputError(f"donors has {len(donors)} labels for {n} sites")
    if any(d is None or (isinstance(d, float) and np.isnan(d)) for d in donors):
        raise InputError("donors contains missing labels; give every site its donor")
    _, codes = np.unique(donors.astype(str), return_inverse=True)
    return codes.ravel().astype(np.int64)


def _drift(tissue: np.ndarray, use_tissue: bool, columns=None) -> np.ndarray:
    """Drift design: intercept, plus grey and white indicators (other tissue = baseline)."""
    if not use_tissue:
        return np.ones((len(tissue), 1))
    design = np.column_stack([np.ones(len(tissue)), tissue == 1, tissue == -1]).astype(float)
    return design if columns is None else design[:, columns]


def _gls(factor, design, z):
    """GLS drift coefficients and kriging weights for the columns of ``z``."""
    solved_design = linalg.cho_solve(factor, design, check_finite=False)
    solved_z = linalg.cho_solve(factor, z, check_finite=False)
    beta = np.linalg.solve(design.T @ solved_design, design.T @ solved_z)
    alpha = solved_z - solved_design @ beta
    return beta, alpha


class DonorKrigingRegressor(SampleInterpolator):
    """Universal kriging with donor effects, tissue drift and per-gene hyperparameters.

    See the module docstring for the model.

    Parameters
    ----------
    variogram : {"exponential", "matern32", "gaussian", "spherical"}
        Correlation model of the population field (and of the donor fields).
    max_lag : float
        Largest distance (mm) of the pooled empirical variogram that sets the range.
    nugget_grid : sequence of float
        Candidate nugget variances, relative to the population field's variance.
    donor_grid : sequence of float
        Candidate donor-deviation variances, relative to the population field's variance
        (0 = no donor effect). Ignored when ``fit`` gets no ``donors``.
    donor_range : float, optional
        Range (mm) of the donor deviation fields (default: the fitted population range).
    tissue_drift : bool
        Fit a mean per tissue class (needs ``tissue`` in ``fit`` and ``predict``).
    mirror : {None, "bidirectional", "leftright", "rightleft"}
        Add left-right mirrored copies of the sites as pseudo-donors.
    max_selection_sites : int
        Sites used (a random subset) to choose each gene's hyperparameters.
    max_sites : int
        Refuse more (mirrored) sites than this: the solve is dense.
    chunk_size : int
        Prediction points per block.
    range_grid : sequence of float > 0
        Candidate multipliers of the fitted range for each gene's population field (chosen
        with the nugget and donor share by profile likelihood); ``(1.0,)``: one range for all.
    symmetry_grid : sequence of float in [-1, 1]
        Candidate weights ``w`` of the mirrored covariance term (learned hemispheric
        symmetry, see the module docstring); ``(0.0,)`` switches it off.
    std_neighbors : int or None
        Sites (nearest to the point, and to its mirror image for genes with ``w != 0``)
        whose kriging system gives the standard deviation at a point in
        :meth:`predict_std`; ``None``: all sites (exact, ``O(n^2)`` per point).
    trust_block_mm : float or None
        Edge (mm) of the blocks of the trust score (``None``: no trust score).
    random_state : int, optional

    Attributes
    ----------
    range_ : float
        Fitted range (mm) of the population field.
    range_scale_ : (n_genes,) array
        Chosen range multiplier per gene (only with more than one ``range_grid`` value).
    variogram_ : dict
        Pooled variogram fit (standardised units).
    nugget_, donor_share_ : (n_genes,) arrays
        Chosen hyperparameters per gene (relative to the population variance).
    drift_ : (n_genes, n_drift) array
        GLS drift coefficients (standardised units).
    mean_, scale_ : (n_genes,) arrays
        Per-gene standardisation.
    symmetry_ : (n_genes,) array
        Chosen weight of the mirrored covariance term per gene.
    sigma2_ : (n_genes,) array
        Maximum-likelihood variance of each standardised gene's population field (the
        covariance above is relative to it).
    trust_ : (n_genes,) array
        Pearson r of each gene's values with their leave-one-block-out population
        predictions (the held-out accuracy the gene's map can be expected to have).
    """

    capabilities = Capabilities(donors=True, std="kriging")

    def __init__(self, variogram: str = "matern32", max_lag: float = 60.0,
                 nugget_grid=(0.05, 0.15, 0.5), donor_grid=(0.0, 0.3, 1.0, 3.0, 10.0),
                 donor_range: float | None = None, tissue_drift: bool = True, mirror=None,
                 max_selection_sites: int = 1500, max_sites: int = 12_000,
                 chunk_size: int = 2048, range_grid=(1.0,), symmetry_grid=(0.0, 0.25, 0.5, 0.75, 1.0),
                 std_neighbors: int | None = 64, trust_block_mm: float | None = 20.0, random_state=0):
        self.variogram = variogram
        self.max_lag = max_lag
        self.nugget_grid = nugget_grid
        self.donor_grid = donor_grid
        self.donor_range = donor_range
        self.tissue_drift = tissue_drift
        self.mirror = mirror
        self.max_selection_sites = max_selection_sites
        self.max_sites = max_sites
        self.chunk_size = chunk_size
        self.range_grid = range_grid
        self.symmetry_grid = symmetry_grid
        self.std_neighbors = std_neighbors
        self.trust_block_mm = trust_block_mm
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _check_params(self):
        check_choice(self.variogram, VARIOGRAMS, "variogram")
        for name in ("nugget_grid", "donor_grid", "range_grid"):
            grid = np.asarray(getattr(self, name), dtype=float)
            if grid.ndim != 1 or len(grid) == 0 or (grid < 0).any():
                raise InputError(f"{name} must be a non-empty sequence of values >= 0, got "
                                 f"{getattr(self, name)!r}")
        if min(self.range_grid) <= 0:
            raise InputError(f"range_grid values must be > 0, got {self.range_grid!r}")
        if min(self.nugget_grid) <= 0:
            raise InputError(f"nugget_grid values must be > 0, got {self.nugget_grid!r}")
        symmetry = np.asarray(self.symmetry_grid, dtype=float)
        if symmetry.ndim != 1 or len(symmetry) == 0 or (np.abs(symmetry) > 1).any():
            raise InputError(f"symmetry_grid must be a non-empty sequence of values in [-1, 1], got "
                             f"{self.symmetry_grid!r}")
        if self.std_neighbors is not None and int(self.std_neighbors) < 1:
            raise InputError(f"std_neighbors must be >= 1 or None, got {self.std_neighbors!r}")

    def fit(self, coords, values, tissue=None, gene_axis=None, donors=None):
        """Fit the range, each gene's hyperparameters and the kriging weights.

        Parameters
        ----------
        coords : (n_sites, 3) array, mm, MNI152
        values : (n_sites, n_genes) array or DataFrame (NaN = not measured)
        tissue : (n_sites,) array in {1, -1, 0}, optional
        gene_axis : ignored
        donors : (n_sites,) array of donor labels, optional
            Without donors the donor effect is switched off.

        Returns
        -------
        self
        """
        from .baselines import mirror_sites

        self._check_params()
        coords, values, tissue, names = self._validate_fit(coords, values, tissue)
        donor_codes = _check_donors(donors, len(coords))
        has_donors = donors is not None and len(np.unique(donor_codes)) > 1
        if self.mirror not in (None, "none"):
            n = len(coords)
            stacked = np.column_stack([values, tissue, donor_codes])
            coords, stacked = mirror_sites(coords, stacked, self.mirror)
            values, tissue = stacked[:, :-2], stacked[:, -2]
            donor_codes = stacked[:, -1].astype(np.int64)
            donor_codes[n:] += donor_codes.max() + 1  # mirrored copies are pseudo-donors
            has_donors = True
        if len(coords) > self.max_sites:
            raise InputError(f"{len(coords)} sites exceed max_sites={self.max_sites} (dense kriging "
                             "system); subsample the sites or raise max_sites")
        rng = check_random_state(self.random_state)
        self.n_genes_ = values.shape[1]
        self.gene_names_ = names
        self.mean_ = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = (values - self.mean_) / self.scale_
        self.variogram_ = fit_variogram(*empirical_variogram(coords, z, max_lag=self.max_lag,
                                                             random_state=rng), model=self.variogram)
        self.range_ = self.variogram_["range"]
        rho = VARIOGRAMS[self.variogram]
        donor_range = float(self.donor_range or self.range_)
        donor_grid = [float(a) for a in self.donor_grid] if has_donors else [0.0]
        kernel_features = self._kernel_features(coords, tissue)
        kernel_grid = [0.0] if kernel_features is None else [float(w) for w in self._kernel_grid()]
        multipliers = [float(m) for m in self.range_grid]
        symmetries = [float(w) for w in self.symmetry_grid]
        candidates = [(float(t), a, w, m, v) for m in multipliers for v in symmetries for w in kernel_grid
                      for a in donor_grid for t in self.nugget_grid]
        present = [0] + [k for k, c in ((1, 1), (2, -1)) if (tissue == c).any()] \
            if self.tissue_drift else None
        self.drift_columns_ = present
        extra = self._extra_drift(coords, tissue)
        n_extra = 0 if extra is None else extra.shape[1]

        self.coords_ = coords
        self.site_tissue_ = tissue
        self.site_donors_ = donor_codes
        self.donor_range_ = donor_range
        self.nugget_ = np.full(self.n_genes_, np.nan)
        self.donor_share_ = np.full(self.n_genes_, np.nan)
        self.symmetry_ = np.zeros(self.n_genes_)
        self.sigma2_ = np.full(self.n_genes_, np.nan)
        self.trust_ = np.full(self.n_genes_, np.nan)
        if len(multipliers) > 1:
            self.range_scale_ = np.ones(self.n_genes_)
        if kernel_features is not None:  # a covariance term of network features (subclasses)
            self.kernel_weight_ = np.zeros(self.n_genes_)
            self.kernel_sites_ = kernel_features
        self.drift_ = np.zeros((self.n_genes_, (len(present) if present else 1) + n_extra))
        self.weights_ = []   # (site_mask, gene_indices, alpha)
        self.group_params_ = []  # per entry of weights_: (nugget, donor share, kernel w, range x, symmetry)
        self.drift_covariance_ = []  # per entry of weights_: (F' K^-1 F)^-1
        for sites, genes in missing_groups(values):
            site_coords = coords[sites]
            distance = cdist(site_coords, site_coords)
            same = donor_codes[sites][:, None] == donor_codes[sites][None, :]
            population = {m: _PopulationCovariance(rho, site_coords, distance, self.range_ * m,
                                                   any(symmetries)) for m in multipliers}
            deviation = np.where(same, rho(distance / donor_range), 0.0)
            del distance, same
            kernel = None if kernel_features is None else kernel_features[sites] @ kernel_features[sites].T
            design = _drift(tissue[sites], self.tissue_drift, present)
            if extra is not None:
                design = np.column_stack([design, extra[sites]])
            zg = z[np.ix_(sites, genes)]
            choice = self._select(population, deviation, design, zg, candidates, rng, kernel)
            for c in np.unique(choice):
                chosen = genes[choice == c]
                tau, share, weight, multiplier, symmetry = candidates[c]
                cov = population[multiplier].matrix(symmetry) + share * deviation
                if weight:
                    cov += weight * kernel
                cov[np.diag_indices_from(cov)] += tau
                factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
                beta, alpha = _gls(factor, design, zg[:, choice == c])
                solved_design = linalg.cho_solve(factor, design, check_finite=False)
                residual = zg[:, choice == c] - design @ beta
                self.sigma2_[chosen] = np.einsum("ij,ij->j", residual, alpha) / max(len(zg) - design.shape[1], 1)
                self.drift_[chosen] = beta.T
                self.nugget_[chosen] = tau
                self.donor_share_[chosen] = share
                self.symmetry_[chosen] = symmetry
                if kernel_features is not None:
                    self.kernel_weight_[chosen] = weight
                if len(multipliers) > 1:
                    self.range_scale_[chosen] = multiplier
                self.weights_.append((sites, chosen, alpha))
                self.group_params_.append(candidates[c])
                self.drift_covariance_.append(np.linalg.pinv(design.T @ solved_design))
            if self.trust_block_mm is not None:
                self.trust_[genes] = self._trust(population, deviation, design, zg, candidates, choice,
                                                 site_coords, rng, kernel)
        logger.info("donor kriging: range %.1f mm; donor share per gene %s; nugget %s; symmetry %s",
                    self.range_, _tally(self.donor_share_), _tally(self.nugget_), _tally(self.symmetry_))
        return self

    def _extra_drift(self, coords, tissue):
        """Further drift columns at the points (none here; see :class:`INRDriftKrigingRegressor`)."""
        return None

    def _kernel_features(self, coords, tissue):
        """Features ``f(x)`` of a further covariance term ``w f(x) . f(x')`` (none here)."""
        return None

    def _kernel_grid(self):
        """Candidate weights ``w`` of the feature covariance term."""
        return (0.0,)

    def _subset(self, n, rng):
        """Sites (a random subset of at most ``max_selection_sites``) for selection and trust."""
        if n > self.max_selection_sites:
            return np.sort(rng.choice(n, size=int(self.max_selection_sites), replace=False))
        return np.arange(n)

    def _select(self, population, deviation, design, z, candidates, rng, kernel=None):
        """Index of the candidate with the highest profile likelihood, per gene."""
        if len(candidates) == 1:
            return np.zeros(z.shape[1], dtype=int)
        subset = self._subset(len(z), rng)
        population = {m: p.subset(subset) for m, p in population.items()}
        deviation = deviation[np.ix_(subset, subset)]
        kernel = None if kernel is None else kernel[np.ix_(subset, subset)]
        design, z = design[subset], z[subset]
        keep = design.any(axis=0)
        design = design[:, keep]
        m = len(subset)
        best = np.full(z.shape[1], -np.inf)
        choice = np.zeros(z.shape[1], dtype=int)
        for c, (tau, share, weight, multiplier, symmetry) in enumerate(candidates):
            cov = population[multiplier].matrix(symmetry) + share * deviation
            if weight:
                cov += weight * kernel
            cov[np.diag_indices_from(cov)] += tau
            factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
            logdet = 2.0 * np.log(np.diag(factor[0])).sum()
            beta, alpha = _gls(factor, design, z)
            quadratic = np.einsum("ij,ij->j", z - design @ beta, alpha)
            loglik = -0.5 * m * np.log(np.maximum(quadratic, 1e-12) / m) - 0.5 * logdet
            better = loglik > best
            best[better] = loglik[better]
            choice[better] = c
        return choice

    def _trust(self, population, deviation, design, z, candidates, choice, site_coords, rng, kernel=None):
        """Per-gene r of the values with their leave-one-block-out population predictions.

        Under each gene's chosen covariance ``K`` and drift ``F`` (on a random subset of at
        most ``max_selection_sites`` sites), the population field at the sites of a block
        ``B`` is predicted from all other sites in closed form:
        ``P_{B,-B} K_{-B}^-1 r_{-B} = P_{B,-B} [a - Q_{:,B} Q_BB^-1 a_B]_{-B}`` with
        ``a = Q z``, ``Q = K^-1 - K^-1 F (F' K^-1 F)^-1 F' K^-1`` and ``P`` the population
        covariance (donor deviations and nugget left out, as in :meth:`predict`), plus the
        drift. The r with the held-out values is what blocked cross-validation measures,
        at the cost of one inverse.
        """
        from ..evaluation.protocols import spatial_blocks

        subset = self._subset(len(z), rng)
        block = spatial_blocks(site_coords[subset], float(self.trust_block_mm), rng)
        design = design[subset][:, design[subset].any(axis=0)]
        out = np.full(z.shape[1], np.nan)
        for c in np.unique(choice):
            tau, share, weight, multiplier, symmetry = candidates[c]
            shared = population[multiplier].subset(subset).matrix(symmetry)
            cov = shared + share * deviation[np.ix_(subset, subset)]
            if weight:
                shared = shared + weight * kernel[np.ix_(subset, subset)]
                cov += weight * kernel[np.ix_(subset, subset)]
            cov[np.diag_indices_from(cov)] += tau
            inverse = linalg.cho_solve(linalg.cho_factor(cov, lower=True, check_finite=False),
                                       np.eye(len(subset)), check_finite=False)
            solved_design = inverse @ design
            drift_covariance = np.linalg.pinv(design.T @ solved_design)
            q = inverse - solved_design @ drift_covariance @ solved_design.T
            zc = z[np.ix_(subset, np.flatnonzero(choice == c))]
            qz = q @ zc
            trend = design @ (drift_covariance @ (solved_design.T @ zc))
            predicted = np.empty_like(zc)
            for b in np.unique(block):
                rows = np.flatnonzero(block == b)
                others = qz - q[:, rows] @ np.linalg.solve(q[np.ix_(rows, rows)], qz[rows])
                others[rows] = 0.0
                predicted[rows] = trend[rows] + shared[rows] @ others
            out[choice == c] = [_pearson(zc[:, j], predicted[:, j]) for j in range(zc.shape[1])]
        return out

    # ------------------------------------------------------------------ prediction
    def _weights_by_sites(self, selected):
        """Kriging weights of the ``selected`` genes, merged over groups sharing a site mask.

        Returns
        -------
        list of (site_mask, range_multiplier, output_columns, alpha)
            ``alpha`` (n_mask_sites, n_columns) holds the weights of every hyperparameter
            group with that site mask and range, side by side, so that one cross-covariance
            per prediction chunk serves them all.
        """
        position = {g: i for i, g in enumerate(selected)}
        range_scale = getattr(self, "range_scale_", np.ones(self.n_genes_))
        merged = {}
        for sites, genes_group, alpha in self.weights_:
            wanted = np.array([g in position for g in genes_group])
            if not wanted.any():
                continue
            multiplier = float(range_scale[genes_group[0]])
            key = (np.asarray(sites).tobytes(), multiplier)
            entry = merged.setdefault(key, (sites, multiplier, [], []))
            entry[2].append(np.array([position[g] for g in genes_group[wanted]]))
            entry[3].append(alpha[:, wanted])
        return [(sites, multiplier, np.concatenate(cols), np.concatenate(alphas, axis=1))
                for sites, multiplier, cols, alphas in merged.values()]

    def predict(self, coords, tissue=None, genes=None):
        """Predict the population field at new points.

        Parameters
        ----------
        coords : (n_points, 3) array, mm, MNI152
        tissue : (n_points,) array in {1, -1, 0}, optional
            Needed for the tissue drift (default 0, "other").
        genes : sequence of int or str, optional

        Returns
        -------
        (n_points, n_genes_selected) float array, in the units of the fitted values
        """
        check_is_fitted(self, "weights_")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        rho = VARIOGRAMS[self.variogram]
        design = _drift(tissue, self.tissue_drift, self.drift_columns_)
        extra = self._extra_drift(coords, tissue)
        if extra is not None:
            design = np.column_stack([design, extra])
        out = design @ self.drift_[selected].T
        step = max(int(self.chunk_size), 1)
        all_symmetry = getattr(self, "symmetry_", np.zeros(self.n_genes_))
        for sites, multiplier, cols, alpha in self._weights_by_sites(selected):
            site_coords = self.coords_[sites]
            length = self.range_ * multiplier
            symmetry = all_symmetry[selected[cols]]
            mirrored = bool(np.any(symmetry))
            if mirrored:
                scaled = alpha * _midline_scale(rho, site_coords, length, symmetry)
            for start in range(0, len(coords), step):
                # one cross-covariance per chunk, site mask and range serves every gene group
                block = coords[start:start + step]
                cross = rho(cdist(block, site_coords) / length)
                if not mirrored:
                    out[start:start + step, cols] += cross @ alpha
                    continue
                reflected = rho(cdist(reflect(block), site_coords) / length)
                out[start:start + step, cols] += (cross @ scaled + (reflected @ scaled) * symmetry) \
                    * _midline_scale(rho, block, length, symmetry)
            weight = getattr(self, "kernel_weight_", np.zeros(self.n_genes_))[selected[cols]]
            if weight.any():
                features = self._kernel_features(coords, tissue)
                out[:, cols] += features @ ((self.kernel_sites_[sites].T @ alpha) * weight)
        return self.mean_[selected] + self.scale_[selected] * out

    def predict_std(self, coords, tissue=None, genes=None, kind: str = "population"):
        """Kriging standard deviation at new points.

        Parameters
        ----------
        coords : (n_points, 3) array, mm, MNI152
        tissue : (n_points,) array in {1, -1, 0}, optional
        genes : sequence of int or str, optional
        kind : {"population", "sample"}
            ``population``: SD of the error of the predicted population field (the map);
            ``sample``: SD of a new donor's measured value around the prediction (adds
            the donor-deviation and nugget variances), for comparison with held-out
            samples.

        Returns
        -------
        (n_points, n_genes_selected) float array, in the units of the fitted values

        Notes
        -----
        Universal-kriging variance ``sigma2_g [1 - c' K^-1 c + u' (F' K^-1 F)^-1 u]`` with
        ``u = f(x) - F' K^-1 c``, from the ``std_neighbors`` sites nearest to the point
        (and to its mirror image for genes with a symmetric term), in batches; the drift
        term uses the whole system. With ``std_neighbors=None`` every site is used.
        """
        check_is_fitted(self, "weights_")
        check_choice(kind, STD_KINDS, "kind")
        if not hasattr(self, "group_params_"):
            raise InputError("this donor-kriging model was fitted by an older brainexpr without "
                             "uncertainty; refit it for standard deviations")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        if np.any(getattr(self, "kernel_weight_", np.zeros(self.n_genes_))[selected]):
            raise InputError("standard deviations are not available with a network covariance term")
        design = self._design(coords, tissue)
        position = {g: i for i, g in enumerate(selected)}
        out = np.full((len(coords), len(selected)), np.nan)
        # entries sharing a site mask, a range and (no) symmetry share neighbours and distances
        passes = {}
        for k, (sites, genes_group, _) in enumerate(self.weights_):
            if any(g in position for g in genes_group):
                params = self.group_params_[k]
                key = (np.asarray(sites).tobytes(), params[3], bool(params[4]))
                passes.setdefault(key, (sites, []))[1].append(k)
        for sites, entries in passes.values():
            variances = self._relative_variances(coords, design, sites, entries)
            for k, variance in zip(entries, variances):
                tau, share = self.group_params_[k][:2]
                if kind == "sample":
                    variance = variance + share + tau
                chosen = np.array([g for g in self.weights_[k][1] if g in position])
                cols = [position[g] for g in chosen]
                out[:, cols] = np.sqrt(variance[:, None] * self.sigma2_[chosen]) * self.scale_[chosen]
        return out

    def _design(self, coords, tissue):
        design = _drift(tissue, self.tissue_drift, self.drift_columns_)
        extra = self._extra_drift(coords, tissue)
        return design if extra is None else np.column_stack([design, extra])

    def _relative_variances(self, coords, design, sites, entries):
        """Kriging variances of the population field, relative to ``sigma2_``, at points.

        ``entries`` index :attr:`weights_` groups with the same site mask, range and
        (non-)zero symmetry: the neighbours, distances and correlations of each batch of
        points are computed once and serve every group (only the combination and the
        solve are per group). Returns one (n_points,) array per entry.
        """
        rho = VARIOGRAMS[self.variogram]
        params = [self.group_params_[k] for k in entries]
        length = self.range_ * params[0][3]
        mirrored = bool(params[0][4])
        site_coords, donors = self.coords_[sites], self.site_donors_[sites]
        site_design = self._design(site_coords, self.site_tissue_[sites])
        n = len(site_coords)

        def correlations(a, b, same=None):
            """Correlation terms (direct, mirrored, midline of a and b, same-donor deviation)."""
            distance = _distances(a, b)
            terms = {"direct": rho(distance / length)}
            if same is not None:
                terms["donor"] = same * rho(distance / self.donor_range_)
            if mirrored:
                terms["mirrored"] = rho(_distances(a, reflect(b)) / length)
                terms["mid_a"] = rho(2.0 * np.abs(np.asarray(a)[..., 0]) / length)
                terms["mid_b"] = rho(2.0 * np.abs(np.asarray(b)[..., 0]) / length)
            return terms

        def combine(terms, tau, share, symmetry):
            cov = terms["direct"]
            if symmetry:
                cov = (cov + symmetry * terms["mirrored"]) \
                    / np.sqrt(1.0 + symmetry * terms["mid_a"])[..., :, None] \
                    / np.sqrt(1.0 + symmetry * terms["mid_b"])[..., None, :]
            return cov + share * terms["donor"] if share else cov

        variances = [np.empty(len(coords)) for _ in entries]
        if self.std_neighbors is None or int(self.std_neighbors) >= n:
            site_terms = correlations(site_coords, site_coords, (donors[:, None] == donors[None, :])
                                      if any(p[1] for p in params) else None)
            factors = []
            for tau, share, _, _, symmetry in params:
                cov = combine(site_terms, tau, share, symmetry)
                cov[np.diag_indices_from(cov)] += tau
                factors.append(linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False))
            del site_terms
            step = max(int(self.chunk_size), 1)
            for start in range(0, len(coords), step):
                block = slice(start, start + step)
                terms = correlations(coords[block], site_coords)
                for i, (tau, share, _, _, symmetry) in enumerate(params):
                    cross = combine(terms, tau, 0.0, symmetry)
                    solved = linalg.cho_solve(factors[i], cross.T, check_finite=False).T
                    variances[i][block] = kriging_variance(cross, solved, site_design, design[block],
                                                           self.drift_covariance_[entries[i]])
            return variances
        k = int(self.std_neighbors)
        tree = cKDTree(np.vstack([site_coords, reflect(site_coords)]) if mirrored else site_coords)
        step = max(1, 2 ** 19 // (k * k))
        for start in range(0, len(coords), step):
            block = slice(start, start + step)
            _, index = tree.query(coords[block], k=k)
            index = np.sort(np.asarray(index).reshape(len(coords[block]), k) % n, axis=1)
            duplicate = np.zeros(index.shape, dtype=bool)
            duplicate[:, 1:] = index[:, 1:] == index[:, :-1]  # a site found with its mirror image
            keep = (~duplicate).astype(float)
            near = site_coords[index]
            terms = correlations(near, near, (donors[index][:, :, None] == donors[index][:, None, :])
                                 if any(p[1] for p in params) else None)
            cross_terms = correlations(coords[block][:, None, :], near)
            local_design = site_design[index] * keep[..., None]
            for i, (tau, share, _, _, symmetry) in enumerate(params):
                cov = combine(terms, tau, share, symmetry) * keep[:, :, None] * keep[:, None, :]
                cov += (tau * keep + duplicate)[:, :, None] * np.eye(k)
                cross = combine(cross_terms, tau, 0.0, symmetry)[:, 0, :] * keep
                solved = np.linalg.solve(cov, np.concatenate([cross[..., None], local_design], axis=2))
                variances[i][block] = kriging_variance(cross, solved[..., 0], local_design, design[block],
                                                       self.drift_covariance_[entries[i]])
        return variances


def _distances(a, b):
    """Euclidean distances between the points of ``a`` (..., n, 3) and ``b`` (..., m, 3)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim == 2 and b.ndim == 2:
        return cdist(a, b)
    # |a|^2 + |b|^2 - 2 a.b with batched products (no (..., n, m, 3) temporary)
    squared = (np.einsum("...i,...i->...", a, a)[..., :, None] + np.einsum("...i,...i->...", b, b)[..., None, :]
               - 2.0 * a @ np.swapaxes(b, -1, -2))
    return np.sqrt(np.maximum(squared, 0.0))


def _midline_scale(rho, coords, length, symmetry):
    """``(1 + w rho(|x - M x| / length))^(-1/2)``: unit variance of the symmetric term.

    ``coords`` (..., n, 3); ``symmetry`` a scalar or (g,) weights (then the result has a
    trailing gene axis).
    """
    midline = rho(2.0 * np.abs(np.asarray(coords)[..., 0]) / length)
    symmetry = np.asarray(symmetry, dtype=float)
    if symmetry.ndim:
        return 1.0 / np.sqrt(1.0 + midline[..., None] * symmetry)
    return 1.0 / np.sqrt(1.0 + symmetry * midline)


class _PopulationCovariance:
    """Correlation of the population field among sites, with its mirrored term.

    ``matrix(w)`` is ``D (R + w R_M) D`` (see the module docstring); ``R`` and ``R_M``
    are computed once and shared by every candidate.
    """

    def __init__(self, rho, coords, distance, length, mirrored: bool):
        self.direct = rho(distance / length)
        self.mirrored = rho(cdist(coords, reflect(coords)) / length) if mirrored else None
        self.midline = None if self.mirrored is None else np.diag(self.mirrored).copy()

    def subset(self, rows):
        out = object.__new__(_PopulationCovariance)
        out.direct = self.direct[np.ix_(rows, rows)]
        out.mirrored = None if self.mirrored is None else self.mirrored[np.ix_(rows, rows)]
        out.midline = None if self.midline is None else self.midline[rows]
        return out

    def matrix(self, symmetry: float) -> np.ndarray:
        if not symmetry:
            return self.direct
        scale = 1.0 / np.sqrt(1.0 + symmetry * self.midline)
        return (self.direct + symmetry * self.mirrored) * np.outer(scale, scale)


def _pearson(a, b) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def _tally(values) -> str:
    found, counts = np.unique(np.round(values[np.isfinite(values)], 3), return_counts=True)
    return ", ".join(f"{v:g}: {c}" for v, c in zip(found, counts))


def validation_rows(coords, fraction: float, block_mm: float, rng) -> np.ndarray:
    """Whole cubic blocks of sites (about ``fraction`` of them) held out for model selection.

    Returns
    -------
    (n_sites,) bool array, True for the held-out sites (at least one block stays in).
    """
    from ..evaluation.protocols import spatial_blocks

    if not 0 < fraction < 0.5:
        raise InputError(f"validation_fraction must lie in (0, 0.5), got {fraction!r}")
    block = spatial_blocks(coords, block_mm, rng)
    order = rng.permutation(block.max() + 1)
    counts = np.bincount(block)[order]
    n_held = int(np.searchsorted(np.cumsum(counts), fraction * len(coords)) + 1)
    return np.isin(block, order[:min(n_held, len(order) - 1)])


class ResidualINRRegressor(SampleInterpolator):
    """Kriging trend plus a SIREN on its residuals, shrunk by held-out evidence.

    Parameters
    ----------
    trend : estimator, optional
        The trend model (default :class:`DonorKrigingRegressor` with default settings);
        cloned before fitting.
    design : {"factorized", "per_gene", "paper"}
        Design of the residual :class:`~brainexpr.models.inr.INRRegressor`.
    n_layers, hidden_features, n_features, omega_0, learning_rate, max_steps : int or float
        Residual network settings (see :class:`~brainexpr.models.inr.INRRegressor`); a
        small, low-frequency network by default.
    validation_fraction : float
        Share of the sites held out, in whole blocks, to set the shrinkage.
    validation_block_mm : float
        Edge (mm) of the validation blocks.
    n_ensemble : int
        Residual networks averaged.
    mirror : {None, "bidirectional", "leftright", "rightleft"}
        Data augmentation of the residual network: left-right mirrored copies of the
        training residuals (``rightleft`` copies the right-hemisphere residuals of the
        bilateral donors into the left hemisphere). The validation residuals are never
        mirrored.
    device : str
        ``"auto"`` picks CUDA when present.
    random_state : int, optional

    Attributes
    ----------
    trend_ : fitted trend estimator (on all sites)
    residual_ : fitted INRRegressor (on the residuals of a trend without the validation sites)
    shrinkage_ : (n_genes,) array in [0, 1]
        Weight of the residual network per gene.
    """

    capabilities = Capabilities(donors=True)

    def __init__(self, trend=None, design: str = "factorized", n_layers: int = 3,
                 hidden_features: int = 64, n_features: int = 16, omega_0: float = 10.0,
                 learning_rate: float = 1e-3, max_steps: int = 300,
                 validation_fraction: float = 0.2, validation_block_mm: float = 20.0,
                 n_ensemble: int = 1, mirror=None, device: str = "auto", random_state=0):
        self.trend = trend
        self.design = design
        self.n_layers = n_layers
        self.hidden_features = hidden_features
        self.n_features = n_features
        self.omega_0 = omega_0
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.validation_fraction = validation_fraction
        self.validation_block_mm = validation_block_mm
        self.n_ensemble = n_ensemble
        self.mirror = mirror
        self.device = device
        self.random_state = random_state

    def _make_trend(self):
        trend = DonorKrigingRegressor(random_state=self.random_state) if self.trend is None else self.trend
        return clone(trend)

    def fit(self, coords, values, tissue=None, gene_axis=None, donors=None):
        """Fit the trend, the residual network and its per-gene shrinkage.

        Parameters
        ----------
        coords : (n_sites, 3) array, mm, MNI152
        values : (n_sites, n_genes) array or DataFrame
        tissue : (n_sites,) array in {1, -1, 0}, optional
        gene_axis : (n_genes,) array, optional
            Passed to the residual network (spectral axis computed when omitted).
        donors : (n_sites,) array, optional
            Passed to the trend when it accepts them.

        Returns
        -------
        self
        """
        from .baselines import mirror_sites
        from .inr import INRRegressor

        coords, array, tissue, names = self._validate_fit(coords, values, tissue)
        rng = check_random_state(self.random_state)
        donors = None if donors is None else np.asarray(donors, dtype=object)
        # validation blocks: whole cubes of sites, never seen by the validation-time trend
        held = validation_rows(coords, self.validation_fraction, self.validation_block_mm, rng)
        fit_rows, val_rows = np.flatnonzero(~held), np.flatnonzero(held)
        sub = lambda a, rows: None if a is None else a[rows]  # noqa: E731
        trend = fit_samples(self._make_trend(), coords[fit_rows], array[fit_rows], tissue[fit_rows],
                                 gene_axis, sub(donors, fit_rows))
        residual_fit = array[fit_rows] - trend.predict(coords[fit_rows], tissue[fit_rows])
        residual_val = array[val_rows] - trend.predict(coords[val_rows], tissue[val_rows])
        net_coords, stacked = mirror_sites(coords[fit_rows],
                                           np.column_stack([residual_fit, tissue[fit_rows]]), self.mirror)
        residual_fit, net_tissue = stacked[:, :-1], stacked[:, -1]
        self.residual_ = INRRegressor(
            design=self.design, n_layers=self.n_layers, hidden_features=self.hidden_features,
            n_features=self.n_features, omega_0=self.omega_0, learning_rate=self.learning_rate,
            max_steps=self.max_steps, eval_every=max(self.max_steps // 10, 1), patience=3,
            value_scaling="standard", n_ensemble=self.n_ensemble, device=self.device,
            random_state=int(rng.integers(0, 2 ** 31 - 1)),
        ).fit(net_coords, residual_fit, tissue=net_tissue, gene_axis=gene_axis)
        predicted = np.asarray(self.residual_.predict(coords[val_rows], tissue[val_rows]), dtype=float)
        valid = np.isfinite(residual_val)
        numerator = np.where(valid, residual_val * predicted, 0.0).sum(axis=0)
        denominator = np.where(valid, predicted * predicted, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.shrinkage_ = np.clip(np.nan_to_num(numerator / denominator), 0.0, 1.0)
        logger.info("residual SIREN shrinkage over %d genes: median %.2f, max %.2f",
                    len(self.shrinkage_), float(np.median(self.shrinkage_)), float(self.shrinkage_.max()))
        self.trend_ = fit_samples(self._make_trend(), coords, array, tissue, gene_axis, donors)
        self.n_genes_ = array.shape[1]
        self.gene_names_ = names
        return self

    def predict(self, coords, tissue=None, genes=None):
        """Trend plus shrunk residual network at new points (see :mod:`brainexpr.models.base`)."""
        check_is_fitted(self, "shrinkage_")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        out = np.asarray(self.trend_.predict(coords, tissue, genes=selected), dtype=float)
        active = selected[self.shrinkage_[selected] > 0]
        if len(active):
            columns = np.flatnonzero(self.shrinkage_[selected] > 0)
            residual = np.asarray(self.residual_.predict(coords, tissue, genes=active.tolist()), dtype=float)
            out[:, columns] += residual * self.shrinkage_[active]
        return out


class BlendedINRRegressor(SampleInterpolator):
    """Donor kriging averaged with an INR ensemble, with a weight set on held-out blocks.

    The two model classes make different errors (a stationary covariance against a
    network of the coordinates and tissue class), so their weighted mean can beat both.
    The weight ``w`` of the INR is chosen, from ``weight_grid``, to minimise the squared
    error (in per-gene standard deviations, pooled over genes) at spatially held-out
    validation blocks, with both models fitted without those blocks. Both are then refitted
    on all sites (the INR only when ``w > 0``). ``w = 0`` gives the kriging alone.

    Parameters
    ----------
    kriging : estimator, optional
        Default :class:`DonorKrigingRegressor`; cloned before fitting.
    design : {"factorized", "per_gene", "paper"}
        Design of the :class:`~brainexpr.models.inr.INRRegressor` ensemble.
    n_layers, hidden_features, n_features, omega_0, learning_rate, max_steps : int or float
        INR settings (defaults: the factorized SIREN of the benchmark, 4 x 128, 32 features).
    n_ensemble : int
        INRs averaged.
    weight_grid : sequence of float in [0, 1]
        Candidate INR weights.
    validation_fraction : float
        Share of the sites held out, in whole blocks, to choose the weight.
    validation_block_mm : float
        Edge (mm) of the validation blocks.
    device : str
        ``"auto"`` picks CUDA when present.
    random_state : int, optional

    Attributes
    ----------
    weight_ : float
        Chosen INR weight.
    validation_mse_ : dict
        Pooled standardised validation MSE of the kriging alone, the INR alone and the blend.
    kriging_ : fitted kriging (all sites)
    inr_ : fitted INRRegressor (all sites), or None when ``weight_ == 0``
    """

    capabilities = Capabilities(donors=True)

    def __init__(self, kriging=None, design: str = "factorized", n_layers: int = 4,
                 hidden_features: int = 128, n_features: int = 32, omega_0: float = 30.0,
                 learning_rate: float = 1e-3, max_steps: int = 300, n_ensemble: int = 3,
                 weight_grid=tuple(np.round(np.linspace(0, 1, 21), 2)),
                 validation_fraction: float = 0.2, validation_block_mm: float = 20.0,
                 device: str = "auto", random_state=0):
        self.kriging = kriging
        self.design = design
        self.n_layers = n_layers
        self.hidden_features = hidden_features
        self.n_features = n_features
        self.omega_0 = omega_0
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.n_ensemble = n_ensemble
        self.weight_grid = weight_grid
        self.validation_fraction = validation_fraction
        self.validation_block_mm = validation_block_mm
        self.device = device
        self.random_state = random_state

    def fit(self, coords, values, tissue=None, gene_axis=None, donors=None):
        """Fit both models and choose the blending weight on held-out blocks.

        Parameters
        ----------
        coords : (n_sites, 3) array, mm, MNI152
        values : (n_sites, n_genes) array or DataFrame
        tissue : (n_sites,) array in {1, -1, 0}, optional
        gene_axis : (n_genes,) array, optional
            Passed to the INR (spectral axis computed when omitted).
        donors : (n_sites,) array, optional
            Passed to the kriging when it accepts them.

        Returns
        -------
        self
        """
        from .inr import INRRegressor

        grid = np.asarray(self.weight_grid, dtype=float)
        if grid.ndim != 1 or len(grid) == 0 or (grid < 0).any() or (grid > 1).any():
            raise InputError(f"weight_grid must be values in [0, 1], got {self.weight_grid!r}")
        coords, array, tissue, names = self._validate_fit(coords, values, tissue)
        rng = check_random_state(self.random_state)
        donors = None if donors is None else np.asarray(donors, dtype=object)
        held = validation_rows(coords, self.validation_fraction, self.validation_block_mm, rng)
        fit_rows, val_rows = np.flatnonzero(~held), np.flatnonzero(held)
        kriging = DonorKrigingRegressor(random_state=self.random_state) if self.kriging is None \
            else self.kriging
        sub = lambda a, rows: None if a is None else a[rows]  # noqa: E731
        kriging_val = fit_samples(clone(kriging), coords[fit_rows], array[fit_rows], tissue[fit_rows],
                                       gene_axis, sub(donors, fit_rows))
        inr = INRRegressor(
            design=self.design, n_layers=self.n_layers, hidden_features=self.hidden_features,
            n_features=self.n_features, omega_0=self.omega_0, learning_rate=self.learning_rate,
            max_steps=self.max_steps, eval_every=max(self.max_steps // 6, 1), patience=3,
            n_ensemble=self.n_ensemble, device=self.device,
            random_state=int(rng.integers(0, 2 ** 31 - 1)),
        )
        inr_val = clone(inr).fit(coords[fit_rows], array[fit_rows], tissue=tissue[fit_rows],
                                 gene_axis=gene_axis)
        scale = np.nanstd(array, axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        target = array[val_rows] / scale
        from_kriging = kriging_val.predict(coords[val_rows], tissue[val_rows]) / scale
        from_inr = np.asarray(inr_val.predict(coords[val_rows], tissue[val_rows]), dtype=float) / scale
        valid = np.isfinite(target)

        def mse(weight):
            error = (1 - weight) * from_kriging + weight * from_inr - target
            return float(np.mean(error[valid] ** 2))

        losses = np.array([mse(w) for w in grid])
        self.weight_ = float(grid[int(np.argmin(losses))])
        self.validation_mse_ = {"kriging": mse(0.0), "inr": mse(1.0), "blend": float(losses.min())}
        logger.info("blend: INR weight %.2f (validation MSE kriging %.4f, INR %.4f, blend %.4f, "
                    "in per-gene SDs)", self.weight_, *self.validation_mse_.values())
        self.kriging_ = fit_samples(clone(kriging), coords, array, tissue, gene_axis, donors)
        self.inr_ = None
        if self.weight_ > 0:
            self.inr_ = inr.fit(coords, array, tissue=tissue, gene_axis=gene_axis)
        self.n_genes_ = array.shape[1]
        self.gene_names_ = names
        return self

    def predict(self, coords, tissue=None, genes=None):
        """Weighted mean of the kriging and INR predictions (see :mod:`brainexpr.models.base`)."""
        check_is_fitted(self, "weight_")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        selected = resolve_genes(genes, self.gene_names_, self.n_genes_)
        out = np.asarray(self.kriging_.predict(coords, tissue, genes=selected), dtype=float)
        if self.inr_ is not None:
            from_inr = np.asarray(self.inr_.predict(coords, tissue, genes=selected.tolist()), dtype=float)
            out = (1 - self.weight_) * out + self.weight_ * from_inr
        return out


class INRDriftKrigingRegressor(DonorKrigingRegressor):
    """Donor kriging with the features of a SIREN as external drift ("INR drift").

    A factorized SIREN (:class:`~brainexpr.models.inr.INRRegressor`, early stopped on
    spatially held-out blocks) is fitted to all genes at once; its ``K`` trunk features
    ``phi_k(x, c)`` (a function of the coordinates and tissue class shared by every gene),
    or its per-gene predictions, standardised, become extra columns of the GLS drift of
    :class:`DonorKrigingRegressor`. Each gene takes from the network only the linear
    combination its own data support (the GLS coefficients, estimated under the donor
    covariance); the kriging models what the network leaves. With ``use_inr=False`` the
    model is exactly the donor kriging.

    Parameters
    ----------
    variogram, max_lag, nugget_grid, donor_grid, donor_range, tissue_drift, mirror, \
max_selection_sites, max_sites, chunk_size, range_grid :
        As :class:`DonorKrigingRegressor`.
    drift : {"features", "predictions"}
        Drift columns: the trunk features of every ensemble member, or the network's
        prediction of every gene.
    n_layers, hidden_features, n_features, omega_0, learning_rate, max_steps : int or float
        SIREN settings (see :class:`~brainexpr.models.inr.INRRegressor`).
    n_ensemble : int
        Networks fitted (features: their columns side by side; predictions: averaged).
    validation_fraction : float
        Share of sites held out, in blocks, for the network's early stopping.
    donor_heads : bool
        Donor-aware network (needs ``donors``): the SIREN trunk feeds a population head
        and, per donor, a penalised head of deviations, so that donor deviations are
        absorbed there and the trunk features describe the shared field (``drift`` must
        be ``"features"``).
    donor_penalty : float
        Weight of the mean squared donor-head weights in the loss.
    use_as : {"drift", "kernel"}
        ``drift``: the network's columns are GLS drift columns (coefficients unpenalised);
        ``kernel``: they enter the covariance instead, as a term ``w f(x) . f(x')`` (a
        Bayesian linear model on the whitened columns, scaled to unit variance in total),
        with ``w`` chosen per gene from ``kernel_grid`` by the profile likelihood together
        with the nugget and the donor share (``w = 0``: the donor kriging).
    kernel_grid : sequence of float >= 0
        Candidate weights ``w`` of the feature covariance term (``use_as="kernel"``).
    use_inr : bool
        ``False`` switches the network off (the donor kriging itself).
    device : str
    random_state : int, optional

    Attributes
    ----------
    inr_ : fitted INRRegressor, or None with ``use_inr=False``
    drift_center_ : (n_columns,) array
        Mean of the network's columns over the training sites.
    drift_projection_ : (n_columns, n_kept) array
        Map of the centred columns to their whitened principal components (those with a
        singular value above 1e-4 of the largest), the drift columns actually used.
    (and those of :class:`DonorKrigingRegressor`; ``drift_`` holds the network columns last)
    """

    def __init__(self, variogram: str = "matern32", max_lag: float = 60.0,
                 nugget_grid=(0.05, 0.15, 0.5), donor_grid=(0.0, 0.3, 1.0, 3.0, 10.0),
                 donor_range: float | None = None, tissue_drift: bool = True, mirror=None,
                 max_selection_sites: int = 1500, max_sites: int = 12_000,
                 chunk_size: int = 2048, range_grid=(1.0,), drift: str = "features", n_layers: int = 3,
                 hidden_features: int = 64, n_features: int = 16, omega_0: float | None = None,
                 learning_rate: float = 1e-3, max_steps: int = 300, n_ensemble: int = 1,
                 validation_fraction: float = 0.15, donor_heads: bool = False,
                 donor_penalty: float = 1e-3, use_as: str = "drift",
                 kernel_grid=(0.0, 0.1, 0.3, 1.0), use_inr: bool = True, device: str = "auto",
                 random_state=0):
        super().__init__(variogram=variogram, max_lag=max_lag, nugget_grid=nugget_grid,
                         donor_grid=donor_grid, donor_range=donor_range, tissue_drift=tissue_drift,
                         mirror=mirror, max_selection_sites=max_selection_sites, max_sites=max_sites,
                         chunk_size=chunk_size, range_grid=range_grid, random_state=random_state)
        self.drift = drift
        self.n_layers = n_layers
        self.hidden_features = hidden_features
        self.n_features = n_features
        self.omega_0 = omega_0
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.n_ensemble = n_ensemble
        self.validation_fraction = validation_fraction
        self.donor_heads = donor_heads
        self.donor_penalty = donor_penalty
        self.use_as = use_as
        self.kernel_grid = kernel_grid
        self.use_inr = use_inr
        self.device = device

    def fit(self, coords, values, tissue=None, gene_axis=None, donors=None):
        """Fit the SIREN to all genes, then the donor kriging with its drift columns.

        Parameters
        ----------
        coords : (n_sites, 3) array, mm, MNI152
        values : (n_sites, n_genes) array or DataFrame (NaN = not measured)
        tissue : (n_sites,) array in {1, -1, 0}, optional
        gene_axis : (n_genes,) array, optional
            Passed to the network (spectral axis computed when omitted).
        donors : (n_sites,) array of donor labels, optional

        Returns
        -------
        self
        """
        from .inr import INRRegressor

        if self.drift not in ("features", "predictions"):
            raise InputError(f"drift must be 'features' or 'predictions', got {self.drift!r}")
        if self.use_as not in ("drift", "kernel"):
            raise InputError(f"use_as must be 'drift' or 'kernel', got {self.use_as!r}")
        self.inr_ = None
        if self.use_inr:
            coords_checked, array, tissue_checked, _ = self._validate_fit(coords, values, tissue)
            rng = check_random_state(self.random_state)
            if self.donor_heads and donors is not None:
                if self.drift != "features":
                    raise InputError("donor_heads needs drift='features'")
                self.inr_ = _DonorSiren(self, rng).fit(coords_checked, array, tissue_checked,
                                                         _check_donors(donors, len(coords_checked)))
            else:
                self.inr_ = INRRegressor(
                    design="factorized", n_layers=self.n_layers, hidden_features=self.hidden_features,
                    n_features=self.n_features, omega_0=self.omega_0, learning_rate=self.learning_rate,
                    max_steps=self.max_steps, eval_every=max(self.max_steps // 10, 1), patience=3,
                    validation_fraction=self.validation_fraction, n_ensemble=self.n_ensemble,
                    device=self.device, random_state=int(rng.integers(0, 2 ** 31 - 1)),
                ).fit(coords_checked, array, tissue=tissue_checked, gene_axis=gene_axis)
            raw = self._network_columns(coords_checked, tissue_checked)
            self.drift_center_ = raw.mean(axis=0)
            # whitened principal components of the columns: a well-conditioned GLS design
            _, singular, vt = np.linalg.svd(raw - self.drift_center_, full_matrices=False)
            keep = singular > 1e-4 * max(float(singular[0]), 1e-300)
            self.drift_projection_ = vt[keep].T * (np.sqrt(len(raw)) / singular[keep])
        return super().fit(coords, values, tissue=tissue, gene_axis=gene_axis, donors=donors)

    def _network_columns(self, coords, tissue) -> np.ndarray:
        import torch

        if self.drift == "predictions":
            return np.asarray(self.inr_.predict(coords, tissue), dtype=float)
        if isinstance(self.inr_, _DonorSiren):
            return self.inr_.features(coords, tissue)
        points = torch.as_tensor(self.inr_.scale_points(coords, tissue))
        with torch.inference_mode():
            columns = [module.to("cpu").features(points).numpy() for module in self.inr_.members_]
        return np.concatenate(columns, axis=1).astype(float)

    def _kernel_grid(self):
        return tuple(self.kernel_grid)

    def _kernel_features(self, coords, tissue):
        if getattr(self, "inr_", None) is None or self.use_as != "kernel":
            return None
        columns = (self._network_columns(coords, tissue) - self.drift_center_) @ self.drift_projection_
        return columns / np.sqrt(columns.shape[1])

    def _extra_drift(self, coords, tissue):
        if getattr(self, "inr_", None) is None or self.use_as != "drift":
            return None
        return (self._network_columns(coords, tissue) - self.drift_center_) @ self.drift_projection_


class _DonorSiren:
    """SIREN trunk with a population head and penalised per-donor heads (donor-aware INR).

    The output at a site of donor ``d`` is ``phi(x, c) @ (W + V_d) + b + b_d``; the loss is
    the masked MSE of the standardised values plus ``penalty * mean(V^2 + b_d^2)``. Early
    stopping on spatially held-out blocks (their donors' heads included). Afterwards the
    trunk features ``phi`` (:meth:`features`) or the population output ``phi @ W + b``
    (:meth:`population`, in the units of the fitted values) are used.
    """

    def __init__(self, owner, rng):
        self.owner = owner
        self.seed = int(rng.integers(0, 2 ** 31 - 1))

    def _points(self, coords, tissue):
        scaled = (np.asarray(coords, dtype=float) - self.center_) / self.scale_
        return np.column_stack([scaled, tissue]).astype(np.float32)

    def fit(self, coords, values, tissue, donor_codes):
        import torch

        from .inr import DEFAULT_OMEGA_0, masked_mse, spatial_validation_split
        from .siren import N_LOCATION_INPUTS, SirenNet

        o = self.owner
        low, high = coords.min(axis=0), coords.max(axis=0)
        self.center_, self.scale_ = (low + high) / 2, np.where(high > low, (high - low) / 2, 1.0)
        self.mean_ = np.nanmean(values, axis=0)
        sd = np.nanstd(values, axis=0)
        self.sd_ = np.where(sd > 0, sd, 1.0)
        targets = torch.as_tensor((values - self.mean_) / self.sd_, dtype=torch.float32)
        points = torch.as_tensor(self._points(coords, tissue))
        donors = torch.as_tensor(donor_codes, dtype=torch.long)
        n_donors, n_genes = int(donor_codes.max()) + 1, values.shape[1]
        held = spatial_validation_split(coords, o.validation_fraction, 20.0,
                                        np.random.default_rng([self.seed, 0]))
        train, val = torch.as_tensor(np.flatnonzero(~held)), torch.as_tensor(np.flatnonzero(held))
        omega_0 = DEFAULT_OMEGA_0["factorized"] if o.omega_0 is None else float(o.omega_0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.trunk = SirenNet(N_LOCATION_INPUTS, o.hidden_features, o.n_features, n_layers=o.n_layers,
                                  omega_0=omega_0)
            self.head = head = torch.nn.Linear(o.n_features, n_genes)
        donor_w = torch.nn.Parameter(torch.zeros(n_donors, o.n_features, n_genes))
        donor_b = torch.nn.Parameter(torch.zeros(n_donors, n_genes))
        optimizer = torch.optim.Adam(list(self.trunk.parameters()) + list(head.parameters())
                                     + [donor_w, donor_b], lr=o.learning_rate)

        def output(rows):
            phi = self.trunk(points[rows])
            d = donors[rows]
            return head(phi) + torch.einsum("nk,nkg->ng", phi, donor_w[d]) + donor_b[d]

        eval_every = max(o.max_steps // 10, 1)
        best, best_state, bad = np.inf, None, 0
        for step in range(o.max_steps):
            optimizer.zero_grad(set_to_none=True)
            loss = masked_mse(output(train), targets[train]) + o.donor_penalty * (
                (donor_w ** 2).mean() + (donor_b ** 2).mean())
            loss.backward()
            optimizer.step()
            if (step + 1) % eval_every == 0 and len(val):
                with torch.no_grad():
                    value = float(masked_mse(output(val), targets[val]))
                if value < best:
                    best, bad = value, 0
                    best_state = [{k: v.clone() for k, v in m.state_dict().items()} for m in (self.trunk, head)]
                else:
                    bad += 1
                    if bad >= 3:
                        break
        if best_state is not None:
            self.trunk.load_state_dict(best_state[0])
            head.load_state_dict(best_state[1])
        self.trunk.eval()
        self.validation_mse_ = best
        return self

    def features(self, coords, tissue) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.trunk(torch.as_tensor(self._points(coords, tissue))).numpy().astype(float)

    def population(self, coords, tissue) -> np.ndarray:
        """Population output (donor heads left out), in the units of the fitted values."""
        import torch

        with torch.inference_mode():
            out = self.head(self.trunk(torch.as_tensor(self._points(coords, tissue)))).numpy()
        return self.mean_ + self.sd_ * out.astype(float)
