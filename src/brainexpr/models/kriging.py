"""The kriging family's sample-level model: :class:`DonorKrigingRegressor`, the default
model for sample sites (``--model auto``; BENCHMARKS.md "Accuracy on held-out data").

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
    * **covariate drift** (:func:`covariate_drift`): the grey- and white-matter
      probabilities of the FSL MNI152 maps smoothed by a 5 mm Gaussian (a site's tissue
      composition beyond its class: the registration and the dissected tissue block blur
      both by a few mm) and a left-right symmetric coordinate trend ``x^2, y, z``, as
      further GLS drift columns. On the real cell types they add 0.02 r in blocked CV
      (5 mm was the training-site likelihood's choice among 0-8 mm in every blocked fold);
      the full quadratic trend adds a little more there but extrapolates badly for a new
      donor on the phantom, the ``x^2, y, z`` trend does not (BENCHMARKS.md, issue 12);
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
    with each gene's variance scale estimated by maximum likelihood and then rescaled
    (``variance_scale_``) so that the variance of a new donor's sample matches the training
    data's own leave-one-donor-out errors (closed form, on the selection subset): a new
    donor's deviation can be larger than the fitted donor share says, and the same factor
    widens (or narrows) the population SD. Each gene also gets a
    **trust score** (``trust_``): the Pearson r between its values and the closed-form
    leave-one-block-out predictions of the population field (20 mm blocks, 8 mm buffer)
    under the fitted hyperparameters, a cheap estimate of its blocked-CV accuracy.

The shared pieces of universal kriging with a drift (:func:`drift_design`, :func:`gls`)
are public here; :class:`~brainexpr.models.parcel.ParcelKrigingRegressor` uses them too.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import check_random_state
from .base import (Capabilities, SampleInterpolator, check_coords, check_tissue, points_near,
                   resolve_genes, spatial_blocks)
from .baselines import (STD_KINDS, VARIOGRAMS, empirical_variogram, fit_variogram, kriging_variance,
                        missing_groups, reflect)

logger = logging.getLogger(__name__)


def check_donors(donors, n: int) -> np.ndarray:
    """Integer codes (n,) of the donor labels of ``n`` sites (all 0 for ``None``)."""
    if donors is None:
        return np.zeros(n, dtype=np.int64)
    donors = np.asarray(donors, dtype=object).ravel()
    if len(donors) != n:
        raise InputError(f"donors has {len(donors)} labels for {n} sites")
    if any(d is None or (isinstance(d, float) and np.isnan(d)) for d in donors):
        raise InputError("donors contains missing labels; give every site its donor")
    _, codes = np.unique(donors.astype(str), return_inverse=True)
    return codes.ravel().astype(np.int64)


def drift_design(tissue: np.ndarray, use_tissue: bool, columns=None) -> np.ndarray:
    """Drift design: intercept, plus grey and white indicators (other tissue = baseline)."""
    if not use_tissue:
        return np.ones((len(tissue), 1))
    design = np.column_stack([np.ones(len(tissue)), tissue == 1, tissue == -1]).astype(float)
    return design if columns is None else design[:, columns]


#: Coordinate trends of the covariate drift: name -> its columns, from the coordinates in
#: units of 50 mm. Both are left-right symmetric (``x`` enters as ``x^2``).
COORDINATE_TRENDS = {
    "linear": lambda x, y, z: [x * x, y, z],
    "quadratic": lambda x, y, z: [x * x, y, z, y * y, z * z, y * z],
}


def check_coordinate_trend(value) -> str | None:
    """The name of a coordinate trend in :data:`COORDINATE_TRENDS`, or None for no trend.

    ``False`` means no trend and ``True`` the quadratic one (the boolean option of model
    files and code from before the ``"linear"`` trend existed).
    """
    if value is None or value is False:
        return None
    if value is True:
        return "quadratic"
    return check_choice(value, COORDINATE_TRENDS, "coordinate_trend", or_else="None")


def covariate_drift(coords, tissue_probability_mm: float | None = None,
                    coordinate_trend: str | bool | None = None) -> np.ndarray | None:
    """Covariate drift columns of donor kriging at points.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    tissue_probability_mm : float or None
        Grey- and white-matter probabilities of the FSL MNI152 maps smoothed by a Gaussian of
        this SD (mm) (:func:`~brainexpr.atlas.tissue.tissue_probabilities_at`): 2 columns.
    coordinate_trend : {None, "linear", "quadratic"}
        A left-right symmetric trend of the coordinates in units of 50 mm
        (:data:`COORDINATE_TRENDS`): ``x^2, y, z`` (3 columns) or ``x^2, y, z, y^2, z^2,
        y z`` (6 columns); ``True`` is read as ``"quadratic"``.

    Returns
    -------
    (n, n_columns) float array, or None without columns
    """
    columns = []
    if tissue_probability_mm is not None:
        from ..atlas.tissue import tissue_probabilities_at

        columns.append(tissue_probabilities_at(coords, tissue_probability_mm))
    trend = check_coordinate_trend(coordinate_trend)
    if trend is not None:
        x, y, z = (np.asarray(coords, dtype=float) / 50.0).T
        columns.append(np.column_stack(COORDINATE_TRENDS[trend](x, y, z)))
    return np.column_stack(columns) if columns else None


def profile_loglik(cov, design, z) -> np.ndarray:
    """Profile log-likelihood per column of ``z`` under the correlation ``cov`` and drift ``design``.

    The drift coefficients (GLS) and each column's variance scale are maximised out:
    ``-m/2 log(r' K^-1 r / m) - 1/2 log det K`` (constants dropped) with ``m`` sites.
    ``cov`` (m, m) is overwritten by its Cholesky factor.

    Returns
    -------
    (n_columns,) float array
    """
    factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
    logdet = 2.0 * np.log(np.diag(factor[0])).sum()
    beta, alpha = gls(factor, design, z)
    quadratic = np.einsum("ij,ij->j", z - design @ beta, alpha)
    return -0.5 * len(z) * np.log(np.maximum(quadratic, 1e-12) / len(z)) - 0.5 * logdet


def gls(factor, design, z):
    """GLS drift coefficients and kriging weights for the columns of ``z``."""
    solved_design = linalg.cho_solve(factor, design, check_finite=False)
    solved_z = linalg.cho_solve(factor, z, check_finite=False)
    # least squares: a drift column that is zero at every site (e.g. tissue probabilities of
    # points outside the template) gets coefficient 0 instead of a singular system
    beta = np.linalg.lstsq(design.T @ solved_design, design.T @ solved_z, rcond=None)[0]
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
    tissue_probability_mm : float or None
        SD (mm) of the Gaussian that smooths the grey- and white-matter probability maps
        whose values at each point join the drift as two columns (0: unsmoothed; ``None``:
        not used). Needs the reference data (the FSL MNI152 maps) at fit and predict time.
    coordinate_trend : {"linear", "quadratic", None}
        Left-right symmetric trend of the coordinates in the drift (:func:`covariate_drift`):
        ``"linear"`` is ``x^2, y, z``; ``None``: no trend.

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
        GLS drift coefficients (standardised units): tissue means, covariates, then the
        columns of subclasses.
    covariates_ : dict
        The covariate drift of the fit (keyword arguments of :func:`covariate_drift`);
        prediction rebuilds the same columns.
    mean_, scale_ : (n_genes,) arrays
        Per-gene standardisation.
    symmetry_ : (n_genes,) array
        Chosen weight of the mirrored covariance term per gene.
    sigma2_ : (n_genes,) array
        Variance of each standardised gene's population field (the covariance above is
        relative to it): the maximum-likelihood estimate times ``variance_scale_``.
    trust_ : (n_genes,) array
        Pearson r of each gene's values with their leave-one-block-out population
        predictions (the held-out accuracy the gene's map can be expected to have).
    variance_scale_ : (n_genes,) array
        Factor on the maximum-likelihood variance in ``sigma2_``: the mean squared
        leave-one-donor-out residual of the training values over its model variance
        (leave-one-block-out without donors). Model files of older versions have none
        (their ``sigma2_`` is the maximum-likelihood variance).
    """

    capabilities = Capabilities(donors=True, std="kriging", model_file=True)

    def __init__(self, variogram: str = "matern32", max_lag: float = 60.0,
                 nugget_grid=(0.05, 0.15, 0.5), donor_grid=(0.0, 0.3, 1.0, 3.0, 10.0),
                 donor_range: float | None = None, tissue_drift: bool = True, mirror=None,
                 max_selection_sites: int = 1500, max_sites: int = 12_000,
                 chunk_size: int = 2048, range_grid=(1.0,), symmetry_grid=(0.0, 0.25, 0.5, 0.75, 1.0),
                 std_neighbors: int | None = 64, trust_block_mm: float | None = 20.0, random_state=0,
                 tissue_probability_mm: float | None = 5.0, coordinate_trend: str | None = "linear"):
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
        self.tissue_probability_mm = tissue_probability_mm
        self.coordinate_trend = coordinate_trend

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
        if self.tissue_probability_mm is not None and not float(self.tissue_probability_mm) >= 0:
            raise InputError(f"tissue_probability_mm must be >= 0 or None, got {self.tissue_probability_mm!r}")
        check_coordinate_trend(self.coordinate_trend)
        if self.std_neighbors is not None and int(self.std_neighbors) < 1:
            raise InputError(f"std_neighbors must be >= 1 or None, got {self.std_neighbors!r}")

    @fill_doc
    def fit(self, coords, values, tissue=None, gene_axis=None, donors=None):
        """Fit the range, each gene's hyperparameters and the kriging weights.

        Parameters
        ----------
        %(sample_data)s
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
        donor_codes = check_donors(donors, len(coords))
        has_donors = donors is not None and len(np.unique(donor_codes)) > 1
        # the variance scale leaves out one real donor at a time (one block without donors)
        donor_folds = has_donors and self.mirror in (None, "none")
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
        self.covariates_ = {"tissue_probability_mm": None if self.tissue_probability_mm is None
                            else float(self.tissue_probability_mm),
                            "coordinate_trend": check_coordinate_trend(self.coordinate_trend)}
        extra = self._drift_columns(coords, tissue)
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
        self.variance_scale_ = np.ones(self.n_genes_)
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
            design = drift_design(tissue[sites], self.tissue_drift, present)
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
                beta, alpha = gls(factor, design, zg[:, choice == c])
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
            self.trust_[genes], self.variance_scale_[genes] = self._held_out_checks(
                population, deviation, design, zg, candidates, choice, site_coords,
                donor_codes[sites] if donor_folds else None, rng, kernel)
            self.sigma2_[genes] *= self.variance_scale_[genes]
        logger.info("donor kriging: range %.1f mm; donor share per gene %s; nugget %s; symmetry %s",
                    self.range_, _tally(self.donor_share_), _tally(self.nugget_), _tally(self.symmetry_))
        return self

    def _extra_drift(self, coords, tissue):
        """Further drift columns at the points (none here; a subclass hook, used by the INR
        variants of ``benchmarks/inr_variants.py``)."""
        return None

    def _drift_columns(self, coords, tissue):
        """Drift columns beyond the tissue means: the covariates of the fit, then :meth:`_extra_drift`."""
        parts = [covariate_drift(coords, **getattr(self, "covariates_", {})), self._extra_drift(coords, tissue)]
        parts = [p for p in parts if p is not None]
        return np.column_stack(parts) if parts else None

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
        best = np.full(z.shape[1], -np.inf)
        choice = np.zeros(z.shape[1], dtype=int)
        for c, (tau, share, weight, multiplier, symmetry) in enumerate(candidates):
            cov = population[multiplier].matrix(symmetry) + share * deviation
            if weight:
                cov += weight * kernel
            cov[np.diag_indices_from(cov)] += tau
            loglik = profile_loglik(cov, design, z)
            better = loglik > best
            best[better] = loglik[better]
            choice[better] = c
        return choice

    def _held_out_checks(self, population, deviation, design, z, candidates, choice, site_coords,
                         fold_donors, rng, kernel=None):
        """Per gene: the trust score and the variance scale of a new sample, from held-out sites.

        Under each gene's chosen covariance ``K`` and drift ``F`` (on a random subset of at
        most ``max_selection_sites`` sites), with ``Q = K^-1 - K^-1 F (F' K^-1 F)^-1 F' K^-1``
        and ``a = Q z``:

        * **trust**: the population field at the sites of a 20 mm block ``B`` is predicted
          from all sites outside ``B`` and its 8 mm buffer ``U`` (as the benchmark's blocked
          folds leave them out) in closed form,
          ``P_{B,-U} K_{-U}^-1 r_{-U} = P_{B,-U} [a - Q_{:,U} Q_UU^-1 a_U]_{-U}`` with ``P``
          the population covariance (donor deviations and nugget left out, as in
          :meth:`predict`), plus the drift; the r with the held-out values is what blocked
          cross-validation measures, at the cost of one inverse;
        * **variance scale**: leaving out all sites of one donor (of one block
          without ``fold_donors``), the residuals of the held-out values are
          ``e_B = Q_BB^-1 a_B`` with covariance ``sigma2 Q_BB^-1`` under the model; the
          mean of ``e_i^2 / (sigma2 [Q_BB^-1]_ii)`` over all held-out sites is the factor by
          which the model's variance of a new donor's sample must grow (or shrink) to match
          the training data's own held-out errors.

        Returns
        -------
        trust, scale : (n_genes,) arrays (trust all NaN with ``trust_block_mm=None``)
        """
        subset = self._subset(len(z), rng)
        block = spatial_blocks(site_coords[subset], float(self.trust_block_mm or 20.0), rng)
        folds = block if fold_donors is None else fold_donors[subset]
        buffered = _buffered_blocks(site_coords[subset], block, TRUST_BUFFER_MM)
        design = design[subset][:, design[subset].any(axis=0)]
        trust, scale = np.full(z.shape[1], np.nan), np.ones(z.shape[1])
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
            # each gene's ML variance on the subset (Q is K^-1 projected off the drift)
            sigma2 = np.einsum("ij,ij->j", zc, qz) / max(len(zc) - design.shape[1], 1)
            standardised = np.zeros(zc.shape[1])
            for f in np.unique(folds):
                rows = np.flatnonzero(folds == f)
                residual_covariance = np.linalg.inv(q[np.ix_(rows, rows)])  # in units of sigma2
                residual = residual_covariance @ qz[rows]
                standardised += (residual ** 2 / np.diag(residual_covariance)[:, None]).sum(axis=0)
            scale[choice == c] = standardised / len(zc) / np.maximum(sigma2, 1e-12)
            if self.trust_block_mm is None:
                continue
            trend = design @ (drift_covariance @ (solved_design.T @ zc))
            predicted = np.empty_like(zc)
            for rows, left_out in buffered:
                solved = np.linalg.solve(q[np.ix_(left_out, left_out)], qz[left_out])
                others = qz - q[:, left_out] @ solved
                others[left_out] = 0.0
                predicted[rows] = trend[rows] + shared[rows] @ others
            trust[choice == c] = [_pearson(zc[:, j], predicted[:, j]) for j in range(zc.shape[1])]
        return trust, scale

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
        design = self._design(coords, tissue)
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
                chosen = np.array([g for g in self.weights_[k][1] if g in position])
                cols = [position[g] for g in chosen]
                if kind == "sample":
                    variance = variance + share + tau
                out[:, cols] = np.sqrt(variance[:, None] * self.sigma2_[chosen]) * self.scale_[chosen]
        return out

    def _design(self, coords, tissue):
        design = drift_design(tissue, self.tissue_drift, self.drift_columns_)
        extra = self._drift_columns(coords, tissue)
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


#: Exclusion buffer (mm) around each block of the trust score: the sites within it are left
#: out with the block, as in the benchmark's blocked folds (20 mm blocks, 8 mm buffer).
TRUST_BUFFER_MM = 8.0


def _buffered_blocks(coords, block, buffer_mm: float) -> list:
    """Per block label: (its rows, its rows plus the other rows within ``buffer_mm`` of them)."""
    tree = cKDTree(coords)
    rows = [np.flatnonzero(block == b) for b in np.unique(block)]
    return [(r, points_near(tree, coords[r], buffer_mm)) for r in rows]


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
