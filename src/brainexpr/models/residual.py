"""Models built to beat the baselines on *held-out* data, not on training loss.

Three estimators with the contract of :mod:`brainexpr.models.base` (plus an optional
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

    Left-right mirroring (``mirror``) adds mirrored copies of the sites as separate
    pseudo-donors, so that hemispheric asymmetry is absorbed by their deviation fields.

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
    where it generalises.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError
from ..utils import check_random_state
from .base import SampleInterpolator, check_coords, check_tissue, resolve_genes
from .baselines import VARIOGRAMS, empirical_variogram, fit_variogram, missing_groups

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
    random_state : int, optional

    Attributes
    ----------
    range_ : float
        Fitted range (mm) of the population field.
    variogram_ : dict
        Pooled variogram fit (standardised units).
    nugget_, donor_share_ : (n_genes,) arrays
        Chosen hyperparameters per gene (relative to the population variance).
    drift_ : (n_genes, n_drift) array
        GLS drift coefficients (standardised units).
    mean_, scale_ : (n_genes,) arrays
        Per-gene standardisation.
    """

    def __init__(self, variogram: str = "matern32", max_lag: float = 60.0,
                 nugget_grid=(0.05, 0.15, 0.5), donor_grid=(0.0, 0.3, 1.0, 3.0, 10.0),
                 donor_range: float | None = None, tissue_drift: bool = True, mirror=None,
                 max_selection_sites: int = 1500, max_sites: int = 12_000,
                 chunk_size: int = 2048, random_state=0):
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
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _check_params(self):
        if self.variogram not in VARIOGRAMS:
            raise InputError(f"variogram must be one of {', '.join(VARIOGRAMS)}; got {self.variogram!r}")
        for name in ("nugget_grid", "donor_grid"):
            grid = np.asarray(getattr(self, name), dtype=float)
            if grid.ndim != 1 or len(grid) == 0 or (grid < 0).any():
                raise InputError(f"{name} must be a non-empty sequence of values >= 0, got "
                                 f"{getattr(self, name)!r}")
        if min(self.nugget_grid) <= 0:
            raise InputError(f"nugget_grid values must be > 0, got {self.nugget_grid!r}")

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
        candidates = [(float(t), a) for a in donor_grid for t in self.nugget_grid]
        present = [0] + [k for k, c in ((1, 1), (2, -1)) if (tissue == c).any()] \
            if self.tissue_drift else None
        self.drift_columns_ = present

        self.coords_ = coords
        self.nugget_ = np.full(self.n_genes_, np.nan)
        self.donor_share_ = np.full(self.n_genes_, np.nan)
        self.drift_ = np.zeros((self.n_genes_, len(present) if present else 1))
        self.weights_ = []   # (site_mask, gene_indices, alpha)
        for sites, genes in missing_groups(values):
            site_coords = coords[sites]
            distance = cdist(site_coords, site_coords)
            same = donor_codes[sites][:, None] == donor_codes[sites][None, :]
            population = rho(distance / self.range_)
            deviation = np.where(same, rho(distance / donor_range), 0.0)
            del distance, same
            design = _drift(tissue[sites], self.tissue_drift, present)
            zg = z[np.ix_(sites, genes)]
            choice = self._select(population, deviation, design, zg, candidates, rng)
            for c in np.unique(choice):
                chosen = genes[choice == c]
                tau, share = candidates[c]
                cov = population + share * deviation
                cov[np.diag_indices_from(cov)] += tau
                factor = linalg.cho_factor(cov, lower=True, overwrite_a=True, check_finite=False)
                beta, alpha = _gls(factor, design, zg[:, choice == c])
                self.drift_[chosen] = beta.T
                self.nugget_[chosen] = tau
                self.donor_share_[chosen] = share
                self.weights_.append((sites, chosen, alpha))
        logger.info("donor kriging: range %.1f mm; donor share per gene %s; nugget %s",
                    self.range_, _tally(self.donor_share_), _tally(self.nugget_))
        return self

    def _select(self, population, deviation, design, z, candidates, rng):
        """Index of the candidate with the highest profile likelihood, per gene."""
        if len(candidates) == 1:
            return np.zeros(z.shape[1], dtype=int)
        n = len(z)
        subset = np.arange(n)
        if n > self.max_selection_sites:
            subset = np.sort(rng.choice(n, size=int(self.max_selection_sites), replace=False))
        population = population[np.ix_(subset, subset)]
        deviation = deviation[np.ix_(subset, subset)]
        design, z = design[subset], z[subset]
        keep = design.any(axis=0)
        design = design[:, keep]
        m = len(subset)
        best = np.full(z.shape[1], -np.inf)
        choice = np.zeros(z.shape[1], dtype=int)
        for c, (tau, share) in enumerate(candidates):
            cov = population + share * deviation
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

    # ------------------------------------------------------------------ prediction
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
        out = design @ self.drift_[selected].T
        position = {g: i for i, g in enumerate(selected)}
        step = max(int(self.chunk_size), 1)
        for sites, genes_group, alpha in self.weights_:
            wanted = np.array([g in position for g in genes_group])
            if not wanted.any():
                continue
            cols = np.array([position[g] for g in genes_group[wanted]])
            site_coords = self.coords_[sites]
            for start in range(0, len(coords), step):
                cross = rho(cdist(coords[start:start + step], site_coords) / self.range_)
                out[start:start + step, cols] += cross @ alpha[:, wanted]
        return self.mean_[selected] + self.scale_[selected] * out


def _tally(values) -> str:
    found, counts = np.unique(np.round(values[np.isfinite(values)], 3), return_counts=True)
    return ", ".join(f"{v:g}: {c}" for v, c in zip(found, counts))


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


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


def _fit_with_donors(model, coords, values, tissue, gene_axis, donors):
    kwargs = {"donors": donors} if donors is not None and _accepts(model.fit, "donors") else {}
    return model.fit(coords, values, tissue=tissue, gene_axis=gene_axis, **kwargs)


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

    def __init__(self, trend=None, design: str = "factorized", n_layers: int = 3,
                 hidden_features: int = 64, n_features: int = 16, omega_0: float = 10.0,
                 learning_rate: float = 1e-3, max_steps: int = 300,
                 validation_fraction: float = 0.2, validation_block_mm: float = 20.0,
                 n_ensemble: int = 1, device: str = "auto", random_state=0):
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
        from .inr import INRRegressor

        coords, array, tissue, names = self._validate_fit(coords, values, tissue)
        rng = check_random_state(self.random_state)
        donors = None if donors is None else np.asarray(donors, dtype=object)
        # validation blocks: whole cubes of sites, never seen by the validation-time trend
        held = validation_rows(coords, self.validation_fraction, self.validation_block_mm, rng)
        fit_rows, val_rows = np.flatnonzero(~held), np.flatnonzero(held)
        sub = lambda a, rows: None if a is None else a[rows]  # noqa: E731
        trend = _fit_with_donors(self._make_trend(), coords[fit_rows], array[fit_rows], tissue[fit_rows],
                                 gene_axis, sub(donors, fit_rows))
        residual_fit = array[fit_rows] - trend.predict(coords[fit_rows], tissue[fit_rows])
        residual_val = array[val_rows] - trend.predict(coords[val_rows], tissue[val_rows])
        self.residual_ = INRRegressor(
            design=self.design, n_layers=self.n_layers, hidden_features=self.hidden_features,
            n_features=self.n_features, omega_0=self.omega_0, learning_rate=self.learning_rate,
            max_steps=self.max_steps, eval_every=max(self.max_steps // 10, 1), patience=3,
            value_scaling="standard", n_ensemble=self.n_ensemble, device=self.device,
            random_state=int(rng.integers(0, 2 ** 31 - 1)),
        ).fit(coords[fit_rows], residual_fit, tissue=tissue[fit_rows], gene_axis=gene_axis)
        predicted = np.asarray(self.residual_.predict(coords[val_rows], tissue[val_rows]), dtype=float)
        valid = np.isfinite(residual_val)
        numerator = np.where(valid, residual_val * predicted, 0.0).sum(axis=0)
        denominator = np.where(valid, predicted * predicted, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.shrinkage_ = np.clip(np.nan_to_num(numerator / denominator), 0.0, 1.0)
        logger.info("residual SIREN shrinkage over %d genes: median %.2f, max %.2f",
                    len(self.shrinkage_), float(np.median(self.shrinkage_)), float(self.shrinkage_.max()))
        self.trend_ = _fit_with_donors(self._make_trend(), coords, array, tissue, gene_axis, donors)
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
        kriging_val = _fit_with_donors(clone(kriging), coords[fit_rows], array[fit_rows], tissue[fit_rows],
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
        self.kriging_ = _fit_with_donors(clone(kriging), coords, array, tissue, gene_axis, donors)
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
