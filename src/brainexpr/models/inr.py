"""``INRRegressor``: implicit neural representations of gene expression (scikit-learn style).

One estimator covers the three network designs of :mod:`brainexpr.models.siren`
(``design="paper"``, ``"factorized"``, ``"per_gene"``) and two kinds of training data:

* :meth:`INRRegressor.fit` -- point samples: coordinates, tissue class and a dense
  *sites x genes* matrix (NaN = not measured), as in :mod:`brainexpr.models.base`;
* :meth:`INRRegressor.fit_regions` -- parcel means: a regional table (regions x genes) and
  the atlas it belongs to. The loss compares the mean of the field over each parcel's
  voxels (a random sample of ``parcel_samples`` voxels per parcel and step) with the
  regional value, so a regional table yields a continuous map.

Training (seed paper, section 3, plus what the paper leaves open; the loop and the batching
live in :mod:`brainexpr.models.training`):

* coordinates are scaled per axis to [-1, 1] over the training locations; values are
  optionally standardised per gene (``value_scaling``); all scalers are kept and saved;
* the inputs are ``(x, y, z, c)`` with the tissue class ``c`` (grey 1, white -1, other 0)
  and, for ``paper``/``factorized``, the positional encoding of the gene-axis position
  ``e_g`` (computed by :func:`brainexpr.geneaxis.spectral_gene_axis` from the training
  values when not given); ``factorized`` can instead feed its gene network ``k`` numbers
  per gene (``gene_embedding="profile-pca"``: the leading principal components of each
  gene's profile over the training rows, :func:`brainexpr.geneaxis.profile_pca_embedding`);
* Adam on the masked mean squared error; mini-batches of whole sites (or parcels);
* early stopping and model selection on a *spatially* held-out validation set: whole
  sites grouped in cubic blocks of ``validation_block_mm`` (or whole parcels) -- never on
  training loss, and never a random split of (site, gene) rows;
* ``n_ensemble`` independently seeded fits (own initialisation and own validation blocks)
  give a mean map and a per-point standard deviation;
* a single checkpoint file (``checkpoint_path``) written every ``checkpoint_every`` steps
  lets an interrupted fit resume (``resume=True``) and reach the same state.

Devices: ``device="auto"`` uses CUDA when present, else the CPU. Training runs in fp32;
``precision="tf32"``/``"bf16"`` speed up *prediction* on a GPU only, after checking the
result on a probe of points against fp32 (falling back to fp32 when it differs by more
than ``precision_tolerance`` standard deviations of the prediction).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from .base import Capabilities, SampleInterpolator, check_coords, check_tissue, regional_voxels, resolve_genes
from .checkpoint import plain, plain_params, read_model_file, restore, save_state
from .siren import FactorizedSiren, JointSiren, PerGeneSiren
from .training import (AUTO_PAIR_BUDGET, AUTO_POINT_BUDGET, INRTraining, _ParcelData,
                       _SiteData, resolve_device)
# still importable from here: the INR variants of models/residual.py import them
from .training import masked_mse, spatial_validation_split  # noqa: F401

logger = logging.getLogger(__name__)

#: Network designs (see :mod:`brainexpr.models.siren`).
DESIGNS = ("paper", "factorized", "per_gene")
#: Per-gene value scalings applied before training and undone at prediction.
VALUE_SCALINGS = ("standard", "minmax", "none")
#: Model selections: held-out validation loss (ours) or training loss (the seed paper's).
SELECTIONS = ("validation", "training_loss")
#: What the gene network reads (see :class:`INRRegressor`, ``gene_embedding``).
GENE_EMBEDDINGS = ("axis", "profile-pca")
#: Numerical precisions of prediction (training is always fp32).
PRECISIONS = ("fp32", "tf32", "bf16")

#: SIREN frequency factor per design when ``omega_0=None`` (see BENCHMARKS.md, INR engine).
DEFAULT_OMEGA_0 = {"paper": 30.0, "per_gene": 30.0, "factorized": 3.0}

#: Parameters that may differ between an interrupted fit and the call that resumes it.
RESUME_FREE_PARAMS = ("checkpoint_path", "resume", "device", "precision", "precision_tolerance",
                      "checkpoint_every", "max_steps")


def _optional_floats(values):
    """A list of floats with None for NaN (JSON has no NaN), or None."""
    return None if values is None else [float(v) if np.isfinite(v) else None for v in values]


def _cpu_state(state):
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


def _optimizer_to_cpu(state: dict) -> dict:
    out = {"param_groups": state["param_groups"], "state": {}}
    for key, value in state["state"].items():
        out["state"][key] = {k: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                             for k, v in value.items()}
    return out


def _check_consistent(params: dict, state: dict) -> None:
    """Raise ValueError/KeyError when the parts of a saved INR do not fit together."""
    n_genes = int(state["n_genes"])
    per_gene = {"gene_axis": state["gene_axis"], "value_offset": state["value_offset"],
                "value_scale": state["value_scale"]}
    if state["gene_names"] is not None:
        per_gene["gene_names"] = state["gene_names"]
    for key, values in per_gene.items():
        if len(values) != n_genes:
            raise ValueError(f"{key} has {len(values)} entries for {n_genes} genes")
    if len(state["coord_center"]) != 3 or len(state["coord_scale"]) not in (1, 3):
        raise ValueError("coordinate scalers are not 3-D")
    members = state["members"]
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise ValueError("members is not a list of weight sets")
    if state["complete"] and len(members) != int(params["n_ensemble"]):
        raise ValueError(f"{len(members)} member(s) saved for n_ensemble = {params['n_ensemble']}")


class INRRegressor(INRTraining, SampleInterpolator):
    """Implicit neural representation of many genes' expression over the brain.

    Parameters
    ----------
    design : {"factorized", "paper", "per_gene"}
        ``paper``: the seed paper's joint SIREN on ``(x, y, z, c, gamma(e_g))``;
        ``factorized``: SIREN trunk on ``(x, y, z, c)`` with ``n_features`` outputs, dot
        product with weights from a gene network on ``gamma(e_g)`` (one trunk pass serves
        every gene); ``per_gene``: one SIREN per gene on ``(x, y, z, c)`` (the paper's
        "INR" baseline, no gene axis).
    n_layers : int
        Linear maps per SIREN (``n_layers - 1`` sine layers and the output; paper: 12).
    hidden_features : int
        Units per sine layer (paper: 512).
    omega_0 : float or None
        SIREN frequency factor. ``None``: the design default, :data:`DEFAULT_OMEGA_0` --
        30 for ``paper`` and ``per_gene`` (the paper's value) and 3 for ``factorized``
        (with coordinates scaled to [-1, 1], 30 fits the sparse AHBA sites with
        oscillations that do not generalise to held-out blocks: BENCHMARKS.md).
    n_frequencies : int
        Frequencies ``N`` of the positional encoding of ``e_g`` (paper: 10; 0: the raw
        position, no encoding).
    n_features : int
        ``factorized`` only: trunk features ``K``.
    gene_hidden, gene_layers : int
        ``factorized`` only: width and number of linear maps of the gene network.
    gene_embedding : {"axis", "profile-pca"}
        What the gene network reads. ``axis``: the positional encoding of the 1-D gene
        axis ``e_g`` (the paper's). ``profile-pca`` (``factorized`` only): each gene's
        correlations with the ``n_gene_components`` leading principal components of the
        standardised training profiles (:func:`brainexpr.geneaxis.profile_pca_embedding`,
        computed from the rows given to ``fit``/``fit_regions`` only), so that genes are
        told apart along ``k`` directions instead of one; no gene axis then (no
        :meth:`add_genes`, no :meth:`predict_at_axis`).
    n_gene_components : int
        ``profile-pca`` only: ``k``, the length of every gene's embedding.
    learning_rate : float
        Adam learning rate (paper: 1e-4).
    max_steps : int
        Maximum optimisation steps per ensemble member (paper: 5000).
    batch_size : int or None
        Sites (or parcels) per step. ``None``: all training units, capped so that one
        step evaluates at most 65,536 (point, gene) pairs (``paper``, ``per_gene``) or
        65,536 points (``factorized``).
    validation_fraction : float in [0, 0.5]
        Fraction of sites (or parcels) held out, in whole spatial blocks, for early
        stopping and model selection. 0 disables both (the last state is kept).
    validation_block_mm : float
        Edge (mm) of the cubic blocks of sites held out together.
    eval_every : int
        Steps between validation evaluations.
    patience : int
        Evaluations without improvement before stopping.
    selection : {"validation", "training_loss"}
        Which state is kept. ``validation``: the lowest loss on the spatially held-out
        validation sites, with early stopping. ``training_loss``: the seed paper's choice,
        the lowest loss on all training sites (evaluated every ``eval_every`` steps), no
        early stopping; the validation loss is still recorded in ``history_``.
    value_scaling : {"standard", "minmax", "none"}
        Per-gene scaling of the values during training (undone at prediction).
    parcel_samples : int or None
        :meth:`fit_regions` only: voxels drawn per parcel and step (``None``: all voxels,
        the exact parcel mean).
    n_ensemble : int
        Independently seeded fits; their mean is the prediction and their standard
        deviation the uncertainty (:meth:`predict_std`).
    device : str
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda[:n]"``.
    precision : {"fp32", "tf32", "bf16"}
        Precision of prediction on a GPU (checked against fp32 on a probe; ignored on CPU).
    precision_tolerance : float
        Largest accepted difference from fp32 on the probe, in units of the standard
        deviation of the fp32 prediction.
    random_state : int, numpy Generator or None
        Seed of initialisation, validation split and mini-batches (``None``: a seed is
        drawn and recorded in ``seed_``).
    checkpoint_path : path-like or None
        File written during training (every ``checkpoint_every`` steps and at the end).
    checkpoint_every : int
    resume : bool
        Continue from ``checkpoint_path`` when it holds a fit of the same data and
        parameters (a finished checkpoint is loaded without training).

    Attributes
    ----------
    members_ : list of torch.nn.Module
        The fitted networks (one per ensemble member), selected on the validation set.
    gene_names_ : list of str or None
    gene_axis_ : (n_genes,) array, or (n_genes, n_gene_components) array
        What the gene network reads for each gene: gene-axis positions ``e_g`` (NaN for
        ``per_gene``), or the profile-PCA embedding (``gene_embedding="profile-pca"``).
    gene_axis_info_ : GeneAxis or None
        The spectral embedding (when computed here), used by :meth:`add_genes`.
    coord_center_, coord_scale_ : (3,) arrays, mm
        Per-axis scaling: ``scaled = (coords - center) / scale``.
    value_offset_, value_scale_ : (n_genes,) arrays
        Per-gene value scaling: ``scaled = (value - offset) / scale``.
    history_ : list of list of (step, train_loss, validation_loss)
        Per member, in scaled units.
    best_step_ : list of int
        Per member, the step whose weights were kept.
    std_scale_, std_floor_ : (n_genes,) arrays
        Recalibration of the ensemble SD (``return_std``) on each member's spatially
        held-out validation sites: the SD is ``sqrt((std_scale_ s)^2 + std_floor_^2)`` for
        the spread ``s`` over members (scaled units, see ``INRTraining._calibrate_std`` in
        :mod:`brainexpr.models.training`); NaN (raw spread) without an ensemble, without
        validation sites or for parcel fits. Files of older versions have no floor (0).
    seed_ : int
    fit_kind_ : {"samples", "regions"}
    """

    capabilities = Capabilities(network=True, parcel_means=True, std="ensemble", gene_axis=True,
                                model_file=True)

    def __init__(self, design: str = "factorized", *, n_layers: int = 12,
                 hidden_features: int = 512, omega_0: float | None = None, n_frequencies: int = 10,
                 n_features: int = 64, gene_hidden: int = 64, gene_layers: int = 2,
                 gene_embedding: str = "axis", n_gene_components: int = 16,
                 learning_rate: float = 1e-4, max_steps: int = 5000, batch_size: int | None = None,
                 validation_fraction: float = 0.1, validation_block_mm: float = 20.0,
                 eval_every: int = 50, patience: int = 20, selection: str = "validation",
                 value_scaling: str = "standard",
                 parcel_samples: int | None = 32, n_ensemble: int = 1, device: str = "auto",
                 precision: str = "fp32", precision_tolerance: float = 0.01, random_state=None,
                 checkpoint_path=None, checkpoint_every: int = 500, resume: bool = False):
        self.design = design
        self.n_layers = n_layers
        self.hidden_features = hidden_features
        self.omega_0 = omega_0
        self.n_frequencies = n_frequencies
        self.n_features = n_features
        self.gene_hidden = gene_hidden
        self.gene_layers = gene_layers
        self.gene_embedding = gene_embedding
        self.n_gene_components = n_gene_components
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.validation_block_mm = validation_block_mm
        self.eval_every = eval_every
        self.patience = patience
        self.selection = selection
        self.value_scaling = value_scaling
        self.parcel_samples = parcel_samples
        self.n_ensemble = n_ensemble
        self.device = device
        self.precision = precision
        self.precision_tolerance = precision_tolerance
        self.random_state = random_state
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.resume = resume

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        check_choice(self.design, DESIGNS, "design")
        check_choice(self.value_scaling, VALUE_SCALINGS, "value_scaling")
        check_choice(self.precision, PRECISIONS, "precision")
        check_choice(self.selection, SELECTIONS, "selection")
        check_choice(self.gene_embedding, GENE_EMBEDDINGS, "gene_embedding")
        if self.gene_embedding != "axis" and self.design != "factorized":
            raise InputError(f"gene_embedding={self.gene_embedding!r} needs design='factorized', "
                             f"got design={self.design!r}")
        positive = {"n_layers": 2, "hidden_features": 1, "n_frequencies": 0, "n_features": 1,
                    "gene_hidden": 1, "gene_layers": 1, "n_gene_components": 1,
                    "max_steps": 1, "eval_every": 1,
                    "patience": 1, "n_ensemble": 1, "checkpoint_every": 1}
        for name, minimum in positive.items():
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < minimum:
                raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("learning_rate", "omega_0", "validation_block_mm", "precision_tolerance"):
            value = getattr(self, name)
            if name == "omega_0" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value) or value <= 0:
                raise InputError(f"{name} must be a positive number, got {value!r}")
        if not 0 <= self.validation_fraction <= 0.5:
            raise InputError(f"validation_fraction must lie in [0, 0.5], got "
                             f"{self.validation_fraction!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, (int, np.integer))
                                            or self.batch_size < 1):
            raise InputError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
        if self.parcel_samples is not None and (not isinstance(self.parcel_samples, (int, np.integer))
                                                or self.parcel_samples < 1):
            raise InputError(f"parcel_samples must be a positive integer or None, got "
                             f"{self.parcel_samples!r}")
        if self.resume and self.checkpoint_path is None:
            raise InputError("resume=True needs checkpoint_path (the file to resume from)")

    @property
    def uses_gene_axis(self) -> bool:
        """Whether the design takes the gene-axis position as an input (not ``per_gene``)."""
        return self.design != "per_gene"

    def _check_gene_axis(self) -> None:
        """InputError unless the fitted model reads a 1-D gene axis (new genes, new positions)."""
        if not self.uses_gene_axis:
            raise InputError("the per_gene design has no gene axis: it can only predict the genes "
                             "it was fitted on")
        if self.gene_embedding != "axis":
            raise InputError(f"gene_embedding={self.gene_embedding!r} has no gene axis: the model "
                             "can only predict the genes it was fitted on")

    @property
    def effective_omega_0(self) -> float:
        """The SIREN frequency factor in use (``omega_0`` or the design default)."""
        return float(DEFAULT_OMEGA_0[self.design] if self.omega_0 is None else self.omega_0)

    def _build_module(self, n_genes: int) -> torch.nn.Module:
        omega_0 = self.effective_omega_0
        if self.design == "paper":
            return JointSiren(self.n_frequencies, self.n_layers, self.hidden_features, omega_0)
        if self.design == "factorized":
            inputs = self.n_gene_components if self.gene_embedding == "profile-pca" else None
            return FactorizedSiren(self.n_frequencies, self.n_layers, self.hidden_features,
                                   omega_0, self.n_features, self.gene_hidden, self.gene_layers,
                                   n_gene_inputs=inputs)
        return PerGeneSiren(n_genes, self.n_layers, self.hidden_features, omega_0)

    def _forward(self, module, points: torch.Tensor, genes: torch.Tensor,
                 positions: torch.Tensor) -> torch.Tensor:
        """(n, 4) points -> (n, g) scaled values of the selected genes."""
        if self.design == "per_gene":
            return module(points, genes)
        return module(points, positions)

    # ------------------------------------------------------------------ preparation
    def _prepare_scalers(self, coords: np.ndarray, values: np.ndarray) -> None:
        low, high = coords.min(axis=0), coords.max(axis=0)
        self.coord_center_ = (low + high) / 2.0
        self.coord_scale_ = np.where(high > low, (high - low) / 2.0, 1.0)
        with np.errstate(invalid="ignore"):
            if self.value_scaling == "standard":
                offset = np.nanmean(values, axis=0)
                scale = np.nanstd(values, axis=0)
            elif self.value_scaling == "minmax":
                offset = np.nanmin(values, axis=0)
                scale = np.nanmax(values, axis=0) - offset
            else:
                offset = np.zeros(values.shape[1])
                scale = np.ones(values.shape[1])
        self.value_offset_ = np.asarray(offset, dtype=float)
        self.value_scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0).astype(float)

    def _scale_points(self, coords: np.ndarray, tissue: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(coords, dtype=float) - self.coord_center_) / self.coord_scale_
        return np.column_stack([scaled, tissue]).astype(np.float32)

    def _prepare_gene_axis(self, gene_axis, values: np.ndarray, names, reference_index) -> None:
        from ..geneaxis import GeneAxis, profile_pca_embedding, spectral_gene_axis

        n_genes = values.shape[1]
        self.gene_axis_info_ = None
        if not self.uses_gene_axis:
            self.gene_axis_ = np.full(n_genes, np.nan)
            return
        if self.gene_embedding == "profile-pca":
            if gene_axis is not None:
                raise InputError("gene_axis is for gene_embedding='axis'; the 'profile-pca' "
                                 "embedding is computed from the training values: pass "
                                 "gene_axis=None")
            self.gene_axis_ = profile_pca_embedding(values, self.n_gene_components)
            logger.info("profile-PCA gene embedding (%d components) computed from %d training "
                        "rows x %d genes", self.n_gene_components, *values.shape)
            return
        if isinstance(gene_axis, GeneAxis):
            self.gene_axis_info_ = gene_axis
            if names is None or not set(names) <= set(gene_axis.genes):
                raise InputError("gene_axis (a GeneAxis) must cover every gene of values by name")
            gene_axis = gene_axis.positions.loc[names].to_numpy()
        if gene_axis is None:
            if n_genes == 1:
                self.gene_axis_ = np.array([0.5])
                return
            frame = pd.DataFrame(values, columns=names if names else
                                 [f"gene{i}" for i in range(n_genes)], index=reference_index)
            self.gene_axis_info_ = spectral_gene_axis(frame)
            self.gene_axis_ = np.array(self.gene_axis_info_.positions, dtype=float)
            logger.info("gene axis computed from the training values (%d genes)", n_genes)
            return
        if isinstance(gene_axis, pd.Series):
            if names is None:
                raise InputError("gene_axis is a Series but values have no gene names")
            check = [g for g in names if g not in gene_axis.index]
            if check:
                raise InputError(f"gene_axis lacks {len(check)} gene(s): {', '.join(check[:5])}")
            gene_axis = gene_axis.loc[names].to_numpy()
        gene_axis = np.asarray(gene_axis, dtype=float).ravel()
        if gene_axis.shape != (n_genes,) or not np.isfinite(gene_axis).all():
            raise InputError(f"gene_axis must hold {n_genes} finite positions (one per gene), got "
                             f"shape {gene_axis.shape}")
        self.gene_axis_ = np.array(gene_axis, dtype=float)

    def _resolve_seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        rng = np.random.default_rng(self.random_state)
        return int(rng.integers(0, 2 ** 31 - 1))

    # ------------------------------------------------------------------ fitting
    @fill_doc
    def fit(self, coords, values, tissue=None, gene_axis=None):
        """Fit the field to point samples.

        Parameters
        ----------
        %(sample_data)s
        gene_axis : (n_genes,) array, pandas.Series (by gene), GeneAxis, or None
            Gene-axis positions in [0, 1]; ``None`` computes the spectral embedding of
            ``values`` (ignored by ``per_gene``; must be ``None`` with
            ``gene_embedding="profile-pca"``).

        Returns
        -------
        self
        """
        self._check_params()
        coords, array, tissue, names = self._validate_fit(coords, values, tissue)
        self.__dict__.pop("region_names_", None)
        index = values.index if isinstance(values, pd.DataFrame) else None
        self._setup(array, names, gene_axis, index)
        self._prepare_scalers(coords, array)
        targets = (array - self.value_offset_) / self.value_scale_
        data = _SiteData(self._scale_points(coords, tissue), targets, coords)
        self.fit_kind_ = "samples"
        self._fit_members(data)
        return self

    @fill_doc
    def fit_regions(self, atlas_image, values, regions=None, tissue_image=None, gene_axis=None):
        """Fit the field to parcel means (a regional table) of an atlas.

        Parameters
        ----------
        %(regional_data)s
        gene_axis : as in :meth:`fit`

        Returns
        -------
        self
        """
        self._check_params()
        array, names, coords, offsets, tissue = regional_voxels(atlas_image, values, regions,
                                                                tissue_image)
        self._setup(array, names, gene_axis, values.index)
        self._prepare_scalers(coords, array)
        targets = (array - self.value_offset_) / self.value_scale_
        data = _ParcelData(self._scale_points(coords, tissue), offsets, targets, self.parcel_samples)
        self.fit_kind_ = "regions"
        self.region_names_ = [str(r) for r in values.index]
        self._fit_members(data)
        return self

    def _setup(self, array, names, gene_axis, index) -> None:
        self.n_genes_ = array.shape[1]
        self.gene_names_ = names
        self.seed_ = self._resolve_seed()
        self.placed_genes_ = []
        self._prepare_gene_axis(gene_axis, array, names, index)

    # ------------------------------------------------------------------ genes
    def _gene_selection(self, genes):
        index = resolve_genes(genes, self.gene_names_, self.n_genes_)
        return index

    def add_genes(self, values) -> "INRRegressor":
        """Place genes that were not fitted onto the gene axis so they can be predicted.

        The positions come from :func:`brainexpr.geneaxis.place_genes` (correlations with
        the embedded genes on the table the axis was computed from); the value scaling of
        each new gene is computed on the same rows.

        Parameters
        ----------
        values : (n_rows, n_new) DataFrame
            Expression of the new genes on the rows of the gene-axis reference table
            (the training sites or regions).

        Returns
        -------
        self
        """
        from ..geneaxis import place_genes

        check_is_fitted(self, "members_")
        self._check_gene_axis()
        if self.gene_axis_info_ is None or self.gene_axis_info_.reference is None:
            raise InputError("this model keeps no gene-axis reference table, so new genes cannot be "
                             "placed; refit without an explicit gene_axis")
        if not isinstance(values, pd.DataFrame):
            raise InputError("values must be a DataFrame (rows of the reference table x new genes)")
        names = [str(c) for c in values.columns]
        known = set(self.gene_names_ or [])
        already = [g for g in names if g in known]
        if already:
            raise InputError(f"gene(s) already in the model: {', '.join(already[:10])}")
        positions = place_genes(self.gene_axis_info_, values)
        array = values.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            if self.value_scaling == "standard":
                offset, scale = np.nanmean(array, axis=0), np.nanstd(array, axis=0)
            elif self.value_scaling == "minmax":
                offset = np.nanmin(array, axis=0)
                scale = np.nanmax(array, axis=0) - offset
            else:
                offset, scale = np.zeros(len(names)), np.ones(len(names))
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.gene_names_ = list(self.gene_names_ or [f"gene{i}" for i in range(self.n_genes_)]) + names
        self.gene_axis_ = np.r_[self.gene_axis_, positions.to_numpy()]
        self.value_offset_ = np.r_[self.value_offset_, offset]
        self.value_scale_ = np.r_[self.value_scale_, scale]
        self.placed_genes_ = list(self.placed_genes_) + names
        self.n_genes_ = len(self.gene_names_)
        logger.info("placed %d new gene(s) on the gene axis: %s", len(names),
                    ", ".join(f"{g}={p:.3f}" for g, p in positions.items()))
        return self

    # ------------------------------------------------------------------ prediction
    def _chunk_points(self, n_genes: int) -> int:
        if self.design == "factorized":
            return AUTO_POINT_BUDGET
        return max(1, AUTO_PAIR_BUDGET // max(1, n_genes))

    def _precision_context(self, device: torch.device, precision: str):
        if device.type != "cuda" or precision == "fp32":
            return contextlib.nullcontext()
        if precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        stack = contextlib.ExitStack()
        previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32

        def restore():
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous

        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        stack.callback(restore)
        return stack

    @torch.inference_mode()
    def _run_members(self, points: torch.Tensor, gene_index, positions, precision, device):
        """(n, 4) points -> list of (n, g) scaled predictions, one per member."""
        genes = torch.as_tensor(gene_index, dtype=torch.long, device=device)
        outputs = []
        for module in self.members_:
            with self._precision_context(device, precision):
                outputs.append(self._forward(module, points, genes, positions).float())
        return outputs

    def _checked_precision(self, points: torch.Tensor, gene_index, positions, device) -> str:
        """Use reduced precision only when a probe agrees with fp32 within tolerance."""
        if device.type != "cuda" or self.precision == "fp32":
            return "fp32"
        probe = points[: min(len(points), 4096)]
        reference = self._run_members(probe, gene_index, positions, "fp32", device)
        reduced = self._run_members(probe, gene_index, positions, self.precision, device)
        spread = torch.stack(reference).std().clamp_min(1e-12)
        error = max(float((a - b).abs().max()) for a, b in zip(reference, reduced)) / float(spread)
        if error > self.precision_tolerance:
            logger.warning("%s prediction differs from fp32 by %.3g SD on a probe (tolerance %.3g): "
                           "using fp32", self.precision, error, self.precision_tolerance)
            return "fp32"
        logger.info("%s prediction checked against fp32 on a probe: max difference %.3g SD",
                    self.precision, error)
        return self.precision

    def predict(self, coords, tissue=None, genes=None, return_std: bool = False,
                chunk_size: int | None = None):
        """Predict expression at MNI coordinates.

        Parameters
        ----------
        coords : (n, 3) array, mm, MNI152
        tissue : (n,) array in {1, -1, 0}, optional
            Tissue class at each point (grey, white, other); default 0.
        genes : sequence of str or int, optional
            Genes to predict (names when fitted on a DataFrame, or indices); default all,
            including genes added by :meth:`add_genes`.
        return_std : bool
            Also return the ensemble standard deviation (needs ``n_ensemble >= 2``).
        chunk_size : int, optional
            Points per network pass (bounded memory); default automatic.

        Returns
        -------
        mean : (n, n_selected_genes) float32 array
        std : (n, n_selected_genes) float32 array, only with ``return_std``
        """
        check_is_fitted(self, "members_")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        return self.predict_points(self._scale_points(coords, tissue), genes, return_std, chunk_size)

    def predict_points(self, points, genes=None, return_std: bool = False,
                       chunk_size: int | None = None, gene_major: bool = False, out=None):
        """Predict from already scaled network inputs (see :meth:`scale_points`).

        Dense maps build the scaled points once and pass them here chunk by chunk.

        Parameters
        ----------
        points : (n, 4) float32 array or tensor
            Scaled ``(x, y, z)`` and tissue class.
        genes, return_std, chunk_size :
            As :meth:`predict`.
        gene_major : bool
            Return (n_genes, n) arrays instead of (n, n_genes): the layout of per-gene
            maps, transposed on the device.
        out : array or tuple of arrays, optional
            Preallocated outputs (e.g. views of a disk-backed buffer) of the returned shape.
        """
        check_is_fitted(self, "members_")
        gene_index = self._gene_selection(genes)
        return self._predict_scaled(points, gene_index, self.gene_axis_[gene_index],
                                    self.value_offset_[gene_index], self.value_scale_[gene_index],
                                    return_std, chunk_size, gene_major, out)

    def _per_gene(self, name: str, gene_index, default: float) -> np.ndarray:
        """A per-gene fitted array (``std_scale_``, ...) at ``gene_index``; ``default`` where it
        is NaN, absent, or the gene was placed after the fit."""
        out = np.full(len(gene_index), default)
        known = getattr(self, name, None)
        known = np.zeros(0) if known is None else np.asarray(known, dtype=float)
        inside = np.asarray(gene_index) < len(known)
        out[inside] = np.nan_to_num(known[np.asarray(gene_index)[inside]], nan=default)
        return out

    def _predict_scaled(self, points, gene_index, axis, offset, scale, return_std=False,
                        chunk_size=None, gene_major=False, out=None):
        """Network outputs at scaled points for the given gene-axis positions and value scaling."""
        if return_std and len(self.members_) < 2:
            raise InputError("uncertainty needs an ensemble: refit with n_ensemble >= 2")
        device = resolve_device(self.device)
        for module in self.members_:
            module.to(device)
        positions = torch.as_tensor(np.nan_to_num(np.asarray(axis, dtype=float), nan=0.0),
                                    dtype=torch.float32, device=device)
        offset = torch.as_tensor(np.asarray(offset, dtype=float), dtype=torch.float32, device=device)
        scale = torch.as_tensor(np.asarray(scale, dtype=float), dtype=torch.float32, device=device)
        # recalibration of the SD (per fitted gene; genes placed later keep the raw spread)
        std_factor, std_floor = (
            torch.as_tensor(self._per_gene(name, gene_index, default), dtype=torch.float32, device=device)
            for name, default in (("std_scale_", 1.0), ("std_floor_", 0.0)))
        points = torch.as_tensor(points, dtype=torch.float32)
        n, n_genes = len(points), len(gene_index)
        shape = (n_genes, n) if gene_major else (n, n_genes)
        if out is None:
            mean = np.empty(shape, dtype=np.float32)
            std = np.empty(shape, dtype=np.float32) if return_std else None
        else:
            mean, std = out if return_std else (out, None)
        chunk = int(chunk_size or self._chunk_points(n_genes))
        precision = None
        for start in range(0, n, chunk):
            part = points[start:start + chunk].to(device, non_blocking=True)
            if precision is None:
                precision = self._checked_precision(part, gene_index, positions, device)
            outputs = torch.stack(self._run_members(part, gene_index, positions, precision, device))
            pieces = [(mean, outputs.mean(0) * scale + offset)]
            if return_std:
                spread = outputs.std(0, unbiased=True) * std_factor
                pieces.append((std, torch.sqrt(spread * spread + std_floor * std_floor) * scale))
            for target, value in pieces:
                if gene_major:
                    target[:, start:start + chunk] = value.T.contiguous().cpu().numpy()
                else:
                    target[start:start + chunk] = value.cpu().numpy()
        return (mean, std) if return_std else mean

    def predict_at_axis(self, coords, positions, tissue=None, return_std: bool = False,
                        chunk_size: int | None = None):
        """Predict the field at arbitrary gene-axis positions (genes not in the model).

        The network is evaluated at the positions ``e`` directly; the value scaling of each
        position (offset and scale, see :attr:`value_offset_`) is interpolated linearly
        along the axis between the fitted (and placed) genes, and held constant beyond
        the ends. At the position of a fitted gene the result equals :meth:`predict` for
        that gene.

        Parameters
        ----------
        coords : (n, 3) array, mm, MNI152
        positions : (m,) array of float
            Gene-axis positions, normally in [0, 1] like the fitted genes'.
        tissue : (n,) array in {1, -1, 0}, optional
        return_std : bool
            Also return the ensemble standard deviation (needs ``n_ensemble >= 2``).
        chunk_size : int, optional
            Points per network pass.

        Returns
        -------
        mean : (n, m) float32 array
        std : (n, m) float32 array, only with ``return_std``
        """
        check_is_fitted(self, "members_")
        self._check_gene_axis()
        positions = np.asarray(positions, dtype=float)
        if positions.ndim != 1 or len(positions) == 0 or not np.isfinite(positions).all():
            raise InputError(f"positions must be a non-empty 1-D array of finite gene-axis positions, "
                             f"got shape {positions.shape}")
        coords = check_coords(coords)
        tissue = check_tissue(tissue, len(coords))
        order = np.argsort(self.gene_axis_, kind="stable")
        axis = self.gene_axis_[order]
        offset = np.interp(positions, axis, self.value_offset_[order])
        scale = np.interp(positions, axis, self.value_scale_[order])
        return self._predict_scaled(self._scale_points(coords, tissue), np.arange(len(positions)),
                                    positions, offset, scale, return_std, chunk_size)

    def scale_points(self, coords, tissue=None) -> np.ndarray:
        """Network inputs of MNI coordinates: per-axis scaled ``(x, y, z)`` and tissue class.

        Returns
        -------
        (n, 4) float32 array
        """
        check_is_fitted(self, "members_")
        coords = check_coords(coords)
        return self._scale_points(coords, check_tissue(tissue, len(coords)))

    def predict_std(self, coords, tissue=None, genes=None, chunk_size: int | None = None,
                    kind: str = "sample"):
        """Ensemble standard deviation at MNI coordinates (see :meth:`predict`).

        ``kind`` is accepted for the interface of the kriging models: the SD, rescaled by
        :attr:`std_scale_`, describes the error at a new sample's value (``sample``); the
        same SD is returned for ``population``, where it is conservative.
        """
        from .baselines import STD_KINDS

        check_choice(kind, STD_KINDS, "kind")
        return self.predict(coords, tissue, genes, return_std=True, chunk_size=chunk_size)[1]

    # ------------------------------------------------------------------ persistence
    def _state(self, training: dict | None = None) -> dict:
        """The fitted state (protocol of :mod:`brainexpr.models.base`), or the state of an
        unfinished fit.

        The names are those of the ``brainexpr-inr`` 1 layout (module docstring of
        :mod:`brainexpr.models.checkpoint`), so files of that layout load as they are.

        Parameters
        ----------
        training : dict, optional
            State of the member in training (weights, Adam state, best weights so far,
            step, early-stopping counters, history); ``None`` once the members in
            ``members_`` are all there is to save.

        Returns
        -------
        dict
            ``complete`` (all ensemble members trained), ``seed``, ``fit_kind``,
            ``fingerprint`` (of the training data), ``n_genes``, ``gene_names``,
            ``placed_genes``, ``gene_axis``, ``gene_axis_info`` (the spectral embedding
            when it was computed at fit time) with ``reference`` (the table it was
            computed from, float64 tensor) and ``reference_index``, the coordinate and
            value scalers, ``region_names``, ``history``, ``best_step``, ``std_scale``,
            ``std_floor``, ``members`` (one ``state_dict`` per finished member) and ``training``.
        """
        info = getattr(self, "gene_axis_info_", None)
        reference = None if info is None else info.reference
        state = {
            "complete": training is None and len(self.members_) == self.n_ensemble,
            "seed": int(self.seed_),
            "fit_kind": self.fit_kind_,
            "fingerprint": self.fingerprint_,
            "n_genes": int(self.n_genes_),
            "gene_names": None if self.gene_names_ is None else list(self.gene_names_),
            "placed_genes": list(self.placed_genes_),
            # (genes,) positions, or the (genes, k) embedding of gene_embedding="profile-pca"
            "gene_axis": np.where(np.isfinite(self.gene_axis_), self.gene_axis_, None).tolist(),
            "gene_axis_info": None if info is None else info.to_state(),
            "reference_index": None if reference is None else [plain(v) for v in reference.index],
            "reference": None if reference is None else torch.tensor(
                reference.to_numpy(dtype=float, copy=True), dtype=torch.float64),
            "coord_center": np.asarray(self.coord_center_, dtype=float).tolist(),
            "coord_scale": np.asarray(self.coord_scale_, dtype=float).tolist(),
            "value_offset": np.asarray(self.value_offset_, dtype=float).tolist(),
            "value_scale": np.asarray(self.value_scale_, dtype=float).tolist(),
            "region_names": getattr(self, "region_names_", None),
            "history": [[list(row) for row in member] for member in self.history_],
            "best_step": [int(s) for s in self.best_step_],
            "std_scale": _optional_floats(getattr(self, "std_scale_", None)),
            "std_floor": _optional_floats(getattr(self, "std_floor_", None)),
            "members": [_cpu_state(m.state_dict()) for m in self.members_],
            "training": None,
        }
        if training is not None:
            state["training"] = {
                "member": int(training["member"]), "step": int(training["step"]),
                "module": _cpu_state(training["module"]),
                "optimizer": _optimizer_to_cpu(training["optimizer"]),
                "best": _cpu_state(training["best"]),
                "best_value": float(training["best_value"]),
                "best_step": int(training["best_step"]), "bad": int(training["bad"]),
                "history": [[float(x) for x in row] for row in training["history"]],
            }
        return state

    @classmethod
    def _from_state(cls, params: dict, state: dict) -> "INRRegressor":
        """A fitted INR from its parameters and a finished fit's :meth:`_state`."""
        _check_consistent(params, state)
        if not state["complete"]:
            raise InputError("it holds an unfinished fit; resume it (brainexpr fit ... --resume) "
                             "before predicting")
        estimator = cls(**params)
        estimator._restore_common(state)
        estimator.history_ = [[tuple(row) for row in member] for member in state["history"]]
        estimator.best_step_ = list(state["best_step"])
        for key in ("std_scale", "std_floor"):
            if state.get(key) is not None:
                values = [np.nan if v is None else v for v in state[key]]
                setattr(estimator, key + "_", np.array(values))
        resolved = resolve_device(estimator.device)
        estimator.device_ = str(resolved)
        estimator.members_ = estimator._members(state["members"], resolved)
        return estimator

    def _restore_common(self, state: dict) -> None:
        from ..geneaxis import GeneAxis

        self.seed_ = int(state["seed"])
        self.fit_kind_ = state["fit_kind"]
        self.fingerprint_ = state["fingerprint"]
        self.n_genes_ = int(state["n_genes"])
        self.gene_names_ = state["gene_names"]
        self.placed_genes_ = list(state.get("placed_genes") or [])
        self.gene_axis_ = np.array(state["gene_axis"], dtype=float)  # None -> NaN
        self.coord_center_ = np.asarray(state["coord_center"], dtype=float)
        self.coord_scale_ = np.asarray(state["coord_scale"], dtype=float)
        self.value_offset_ = np.asarray(state["value_offset"], dtype=float)
        self.value_scale_ = np.asarray(state["value_scale"], dtype=float)
        if state.get("region_names") is not None:
            self.region_names_ = state["region_names"]
        self.gene_axis_info_ = None
        if state.get("gene_axis_info") is not None:
            info = state["gene_axis_info"]
            reference = None
            if state.get("reference") is not None:
                reference = pd.DataFrame(np.asarray(state["reference"]),
                                         index=state["reference_index"], columns=info["genes"])
            self.gene_axis_info_ = GeneAxis.from_state(info, reference=reference)

    def _members(self, states, device) -> list:
        """Networks of the saved weight sets ``states`` (evaluation mode, on ``device``)."""
        n_fitted = self.n_genes_ - len(getattr(self, "placed_genes_", []))
        members = []
        for weights in states:
            module = self._build_module(n_fitted)
            module.load_state_dict(weights)
            module.to(device)
            module.eval()
            members.append(module)
        return members

    def _save_checkpoint(self, training: dict | None = None) -> None:
        """Write the fit so far to ``checkpoint_path`` (see :meth:`_state`)."""
        save_state(self, self.checkpoint_path, model=self.design, provenance=None,
                   state=self._state(training))
        logger.debug("checkpoint written: %s (%s)", self.checkpoint_path,
                     "partial" if training is not None else "members")

    def _restore_training(self, model_file):
        """Load the progress of an interrupted fit (during :meth:`fit`).

        Parameters
        ----------
        model_file : ModelFile
            ``checkpoint_path`` read by :func:`~brainexpr.models.checkpoint.read_model_file`.

        Returns
        -------
        complete : bool
            True when the checkpoint holds a finished fit (its members are now loaded and
            there is nothing left to train).
        state : dict or None
            The state of the member that was in training, if any.

        Raises
        ------
        InputError
            When the checkpoint belongs to another model, other data or other parameters.
        """
        path = self.checkpoint_path
        if model_file.class_name != type(self).__name__:
            raise InputError(f"{path} holds a {model_file.class_name}, not an INR fit; use a new "
                             "checkpoint_path or resume=False")
        saved, state = model_file.params, model_file.state
        params = plain_params(self)
        differ = sorted(k for k in params if k not in RESUME_FREE_PARAMS and k != "random_state"
                        and params[k] != saved.get(k))
        if self.random_state is not None and saved.get("random_state") != params["random_state"]:
            differ.append("random_state")
        if differ:
            raise InputError(f"{path} was written with other parameters ({', '.join(differ)}); "
                             "use a new checkpoint_path or resume=False")
        saved_axis = np.array(state["gene_axis"], dtype=float)
        if state["fingerprint"] != self.fingerprint_ or state["gene_names"] != self.gene_names_ \
                or not np.allclose(np.nan_to_num(saved_axis), np.nan_to_num(self.gene_axis_)):
            raise InputError(f"{path} was written for other training data; use a new "
                             "checkpoint_path or resume=False")
        self.seed_ = int(state["seed"])
        self.members_ = self._members(state["members"], resolve_device(self.device))
        self.history_ = [[tuple(row) for row in member] for member in state["history"]]
        self.best_step_ = list(state["best_step"])
        if state["complete"]:
            return True, None
        training = state.get("training")
        if training is None:  # only whole members were saved; the next one starts from scratch
            return False, None
        training = dict(training)
        training["history"] = [tuple(row) for row in training["history"]]
        logger.info("resuming from %s: %d member(s) finished, member %d at step %d", path,
                    len(self.members_), training["member"], training["step"])
        return False, training

    def save(self, path) -> Path:
        """Write the fitted model to one model file (see :mod:`brainexpr.models.checkpoint`)."""
        check_is_fitted(self, "members_")
        return save_state(self, path, model=self.design)

    @classmethod
    def load(cls, path, device: str | None = None) -> "INRRegressor":
        """Load a model written by :meth:`save` (safely, without unpickling objects).

        ``device`` overrides the saved ``device`` parameter (``"auto"``, ``"cpu"``,
        ``"cuda"``).
        """
        return restore(read_model_file(path), cls, device=device)

    @property
    def genes_(self) -> list:
        """Names of the genes the model can predict (fitted and placed)."""
        check_is_fitted(self, "members_")
        return list(self.gene_names_ or [f"gene{i}" for i in range(self.n_genes_)])

    def summary(self) -> dict:
        """Parameters and fit results as a JSON-compatible dict."""
        check_is_fitted(self, "members_")
        return {
            "design": self.design, "n_genes": self.n_genes_, "n_ensemble": len(self.members_),
            "fit_kind": self.fit_kind_, "seed": self.seed_, "best_step": list(self.best_step_),
            "best_validation_mse": [min((h[2] for h in hist if np.isfinite(h[2])), default=None)
                                    for hist in self.history_],
            "params": json.loads(json.dumps(self.get_params(), default=str)),
            "device": getattr(self, "device_", None),
        }
