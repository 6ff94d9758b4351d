"""``INRRegressor``: implicit neural representations of gene expression (scikit-learn style).

One estimator covers the three network designs of :mod:`brainexpr.models.siren`
(``design="paper"``, ``"factorized"``, ``"per_gene"``) and two kinds of training data:

* :meth:`INRRegressor.fit` -- point samples: coordinates, tissue class and a dense
  *sites x genes* matrix (NaN = not measured), as in :mod:`brainexpr.models.base`;
* :meth:`INRRegressor.fit_regions` -- parcel means: a regional table (regions x genes) and
  the atlas it belongs to. The loss compares the mean of the field over each parcel's
  voxels (a random sample of ``parcel_samples`` voxels per parcel and step) with the
  regional value, so a regional table yields a continuous map.

Training (seed paper, section 3, plus what the paper leaves open):

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
import copy
import hashlib
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..errors import InputError
from ..utils import progress
from .base import Capabilities, SampleInterpolator, check_coords, check_tissue, check_values, resolve_genes
from .siren import FactorizedSiren, JointSiren, PerGeneSiren

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

#: Validation MSE (standardised units) above which held-out data are "not predicted".
NO_SKILL_MSE = 0.9

#: Budget of (point x gene) network evaluations per step for automatic batch sizes.
AUTO_PAIR_BUDGET = 2 ** 16
#: Budget of points per step for the factorized trunk.
AUTO_POINT_BUDGET = 2 ** 16


def resolve_device(device: str = "auto") -> torch.device:
    """Return the torch device: ``"auto"`` picks CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was requested but no CUDA device is available; use "
                         "device='auto' or 'cpu'")
    return resolved


def spatial_validation_split(coords, fraction: float, block_mm: float, rng) -> np.ndarray:
    """Choose whole cubic blocks of sites for validation.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    fraction : float
        Target fraction of sites held out (blocks are added in random order until it is
        reached).
    block_mm : float
        Edge of the cubic blocks (mm); sites in one block are held out together, so a
        held-out site has no training site in the same block.
    rng : numpy.random.Generator

    Returns
    -------
    (n,) bool array, True for validation sites.
    """
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    if fraction <= 0 or n < 2:
        return np.zeros(n, dtype=bool)
    _, block = np.unique(np.floor(coords / block_mm).astype(np.int64), axis=0, return_inverse=True)
    block = block.ravel()
    counts = np.bincount(block)
    order = rng.permutation(len(counts))
    cumulative = np.cumsum(counts[order])
    n_blocks = int(np.searchsorted(cumulative, fraction * n) + 1)
    n_blocks = min(n_blocks, len(counts) - 1)  # always keep one training block
    held = np.zeros(len(counts), dtype=bool)
    held[order[:n_blocks]] = True
    return held[block]


def segment_mean(values: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Mean of the rows of ``values`` within each segment.

    Parameters
    ----------
    values : (n, g) tensor
    segments : (n,) long tensor in [0, n_segments)
    n_segments : int

    Returns
    -------
    (n_segments, g) tensor (NaN for empty segments)
    """
    sums = torch.zeros(n_segments, values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, segments, values)
    counts = torch.bincount(segments, minlength=n_segments).to(values.dtype)
    return sums / counts[:, None]


def parcel_voxels(atlas_image, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxels of each parcel, grouped by parcel in the order of ``ids``.

    Parameters
    ----------
    atlas_image : nibabel.Nifti1Image
        Integer parcel labels (0 = background).
    ids : (n_parcels,) int array
        Parcel ids, one per row of a regional table.

    Returns
    -------
    coords : (n_voxels, 3) float array, mm, MNI152
        Voxel centres; those of parcel ``r`` are ``coords[offsets[r]:offsets[r + 1]]``.
    offsets : (n_parcels + 1,) int array
    flat_index : (n_voxels,) int array
        Index of each voxel in the flattened atlas array.
    """
    from ..atlas.space import voxel_to_mni

    ids = np.asarray(ids, dtype=np.int64)
    flat = np.asarray(atlas_image.dataobj).astype(np.int64).ravel()
    lookup = np.full(max(int(flat.max()), int(ids.max())) + 1, -1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    rows = np.where(flat > 0, lookup[np.clip(flat, 0, None)], -1)
    voxels = np.flatnonzero(rows >= 0)
    voxels = voxels[np.argsort(rows[voxels], kind="stable")]
    counts = np.bincount(rows[voxels], minlength=len(ids))
    ijk = np.column_stack(np.unravel_index(voxels, atlas_image.shape[:3]))
    return voxel_to_mni(ijk, atlas_image.affine), np.r_[0, np.cumsum(counts)], voxels


def regional_voxels(atlas_image, values, regions=None, tissue_image=None):
    """Validate a regional table against its atlas and return every parcel's voxels.

    The checks of :meth:`INRRegressor.fit_regions` and of
    :class:`brainexpr.models.parcel.ParcelKrigingRegressor`.

    Parameters
    ----------
    atlas_image : nibabel.Nifti1Image
        Integer parcel labels in MNI152 space (0 = background).
    values : (n_regions, n_genes) DataFrame
        Regional values (NaN = missing); rows are regions.
    regions : pandas.DataFrame, optional
        Atlas table with column ``id``, indexed like ``values``. Without it the index of
        ``values`` must hold the parcel ids.
    tissue_image : nibabel.Nifti1Image, optional
        Tissue class per voxel (1 grey, -1 white, 0 other) on the atlas grid; default 0.

    Returns
    -------
    array : (n_regions, n_genes) float array
    names : list of str
        Gene names.
    coords : (n_voxels, 3) float array, mm, MNI152
        Voxel centres grouped by parcel: parcel ``r`` is ``coords[offsets[r]:offsets[r + 1]]``.
    offsets : (n_regions + 1,) int array
    tissue : (n_voxels,) float32 array in {1, -1, 0}
    """
    from ..atlas.space import check_mni_image

    atlas_image = check_mni_image(atlas_image, "atlas", ndim=(3,))
    if not isinstance(values, pd.DataFrame):
        raise InputError("values must be a DataFrame of regions (rows) x genes (columns)")
    array, names = check_values(values, len(values))
    if regions is not None:
        missing = [r for r in values.index if r not in regions.index]
        if missing:
            raise InputError(f"{len(missing)} region(s) of values are not in the atlas table: "
                             f"{', '.join(map(str, missing[:10]))}")
        ids = regions.loc[values.index, "id"].to_numpy(np.int64)
    else:
        try:
            ids = values.index.to_numpy().astype(np.int64)
        except (TypeError, ValueError):
            raise InputError("values are indexed by names: pass regions= (the atlas table with "
                             "an 'id' column)") from None
    coords, offsets, voxels = parcel_voxels(atlas_image, ids)
    counts = np.diff(offsets)
    if (counts == 0).any():
        empty = values.index[counts == 0]
        raise InputError(f"{len(empty)} parcel(s) have no voxels in the atlas image: "
                         f"{', '.join(map(str, empty[:10]))}; drop them from the table")
    if tissue_image is not None:
        tissue_image = check_mni_image(tissue_image, "tissue_image", shape=atlas_image.shape[:3],
                                       ndim=(3,))
        tissue = check_tissue(np.asarray(tissue_image.dataobj).ravel()[voxels], len(voxels))
    else:
        tissue = np.zeros(len(voxels), dtype=np.float32)
    return array, names, coords, offsets, tissue


def masked_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``target``."""
    mask = torch.isfinite(target)
    diff = torch.where(mask, prediction - torch.nan_to_num(target), torch.zeros_like(prediction))
    return (diff ** 2).sum() / mask.sum().clamp_min(1)


class _SiteData:
    """Training data of point samples: every unit is one site."""

    kind = "samples"

    def __init__(self, points: np.ndarray, targets: np.ndarray, coords: np.ndarray):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.coords = coords
        self.n_units = len(points)
        self.points_per_unit = 1

    def split(self, fraction, block_mm, rng):
        return spatial_validation_split(self.coords, fraction, block_mm, rng)

    def batch(self, units: np.ndarray, rng, evaluation: bool = False):
        index = torch.as_tensor(units, dtype=torch.long)
        return self.points[index], None, self.targets[index]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.points.numpy().tobytes())
        digest.update(np.nan_to_num(self.targets.numpy(), nan=-9e9).tobytes())
        return digest.hexdigest()


class _ParcelData:
    """Training data of parcel means: every unit is one parcel with its voxels."""

    kind = "regions"

    def __init__(self, points: np.ndarray, offsets: np.ndarray, targets: np.ndarray,
                 samples: int | None):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.counts = np.diff(self.offsets)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.samples = samples
        self.n_units = len(self.counts)
        self.points_per_unit = samples if samples else int(self.counts.max())

    def split(self, fraction, block_mm, rng):
        held = np.zeros(self.n_units, dtype=bool)
        n_held = min(int(round(fraction * self.n_units)), self.n_units - 1)
        if fraction > 0 and n_held == 0 and self.n_units > 2:
            n_held = 1
        held[rng.permutation(self.n_units)[:n_held]] = True
        return held

    def batch(self, units: np.ndarray, rng, evaluation: bool = False):
        """Voxels of the parcels ``units``: a random sample per parcel, or all of them."""
        units = np.asarray(units, dtype=np.int64)
        counts = self.counts[units]
        samples = self.samples * (4 if evaluation else 1) if self.samples else None
        if samples is None or (evaluation and samples >= counts.max()):
            segments = np.repeat(np.arange(len(units)), counts)
            starts = np.repeat(self.offsets[units] - np.cumsum(np.r_[0, counts[:-1]]), counts)
            index = starts + np.arange(counts.sum())
        else:
            segments = np.repeat(np.arange(len(units)), samples)
            draws = rng.random((len(units), samples))
            index = (self.offsets[units][:, None] + np.floor(draws * counts[:, None])).ravel()
        index = torch.as_tensor(index, dtype=torch.long)
        segments = torch.as_tensor(segments, dtype=torch.long)
        return self.points[index], segments, self.targets[torch.as_tensor(units)]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.points.numpy().tobytes())
        digest.update(self.offsets.tobytes())
        digest.update(np.nan_to_num(self.targets.numpy(), nan=-9e9).tobytes())
        return digest.hexdigest()


class INRRegressor(SampleInterpolator):
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
    std_scale_ : (n_genes,) array
        Factor applied to the ensemble SD (``return_std``), set on each member's spatially
        held-out validation sites so that the SD matches the held-out error; NaN (raw SD)
        without an ensemble, without validation sites or for parcel fits.
    seed_ : int
    fit_kind_ : {"samples", "regions"}
    """

    capabilities = Capabilities(network=True, parcel_means=True, std="ensemble", gene_axis=True)

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
    def fit(self, coords, values, tissue=None, gene_axis=None):
        """Fit the field to point samples.

        Parameters
        ----------
        coords : (n_sites, 3) array, mm, MNI152
        values : (n_sites, n_genes) DataFrame or array
            Expression (NaN = not measured). A DataFrame names the genes.
        tissue : (n_sites,) array in {1, -1, 0}, optional
            Tissue class (grey, white, other); default 0.
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

    def fit_regions(self, atlas_image, values, regions=None, tissue_image=None, gene_axis=None):
        """Fit the field to parcel means (a regional table) of an atlas.

        Parameters
        ----------
        atlas_image : nibabel.Nifti1Image
            Integer parcel labels in MNI152 space (0 = background).
        values : (n_regions, n_genes) DataFrame
            Regional expression (NaN = missing); rows are regions.
        regions : pandas.DataFrame, optional
            Atlas table with column ``id``, indexed like ``values``. Without it the index of
            ``values`` must hold the parcel ids.
        tissue_image : nibabel.Nifti1Image, optional
            Tissue class per voxel (1 grey, -1 white, 0 other) on the atlas grid; default 0.
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

    def _units_per_step(self, data) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        per_unit = data.points_per_unit
        if self.design == "factorized":
            budget = AUTO_POINT_BUDGET // per_unit
        else:
            budget = AUTO_PAIR_BUDGET // (per_unit * self.n_genes_)
        return max(1, int(budget))

    def _member_seeds(self) -> list[int]:
        sequence = np.random.SeedSequence(self.seed_)
        return [int(child.generate_state(1)[0]) for child in sequence.spawn(self.n_ensemble)]

    def _fit_members(self, data) -> None:
        from .checkpoint import load_checkpoint, restore_training, save_checkpoint

        device = resolve_device(self.device)
        self.device_ = str(device)
        digest = hashlib.sha256(data.fingerprint().encode())
        for array in (self.coord_center_, self.coord_scale_, self.value_offset_, self.value_scale_):
            digest.update(np.asarray(array, dtype=np.float64).tobytes())
        self.fingerprint_ = digest.hexdigest()
        positions = torch.as_tensor(np.nan_to_num(self.gene_axis_, nan=0.0), dtype=torch.float32)
        self.members_, self.history_, self.best_step_ = [], [], []
        state = None
        if self.resume and self.checkpoint_path is not None and Path(self.checkpoint_path).exists():
            metadata, payload = load_checkpoint(self.checkpoint_path)
            complete, state = restore_training(self, metadata, payload)
            if complete:  # a finished fit of the same data: nothing to train
                logger.info("loaded the finished fit from %s", self.checkpoint_path)
                self.std_scale_ = self._calibrate_std(data, self._member_seeds(), positions.to(device),
                                                      device)
                return
        seeds = self._member_seeds()
        start_member = len(self.members_)
        for member in range(start_member, self.n_ensemble):
            resume_state = state if (state is not None and state["member"] == member) else None
            module, history, best_step = self._fit_one(data, member, seeds[member], positions,
                                                       device, resume_state)
            self.members_.append(module)
            self.history_.append(history)
            self.best_step_.append(best_step)
            if self.checkpoint_path is not None:
                save_checkpoint(self, self.checkpoint_path)
        self.std_scale_ = self._calibrate_std(data, seeds, positions.to(device), device)
        if self.checkpoint_path is not None:
            save_checkpoint(self, self.checkpoint_path)
            logger.info("wrote %s", self.checkpoint_path)

    def _calibrate_std(self, data, seeds, positions, device) -> np.ndarray:
        """Per-gene factor that turns the ensemble SD into the held-out error's SD.

        Each member's own spatially held-out validation sites give its out-of-sample error
        ``e``; the factor is ``sqrt(sum e^2 / sum sd^2)`` over those sites (``sd``: the
        ensemble SD there), so the rescaled SD describes the error at a new site's value
        (noise included). NaN (no rescaling) without an ensemble, without validation
        sites, or for parcel fits (held-out parcels are too few).
        """
        scale = np.full(self.n_genes_, np.nan)
        if len(self.members_) < 2 or self.validation_fraction <= 0 or data.kind != "samples":
            return scale
        squared_error = np.zeros(self.n_genes_)
        squared_sd = np.zeros(self.n_genes_)
        genes = np.arange(self.n_genes_)
        with torch.inference_mode():
            for member, seed in enumerate(seeds[:len(self.members_)]):
                held = data.split(self.validation_fraction, self.validation_block_mm,
                                  np.random.default_rng([seed, 0]))
                rows = torch.as_tensor(np.flatnonzero(held), dtype=torch.long)
                if len(rows) == 0:
                    continue
                outputs = torch.stack(self._run_members(data.points[rows].to(device), genes,
                                                        positions, "fp32", device)).cpu().numpy()
                targets = data.targets[rows].numpy()
                valid = np.isfinite(targets)
                error = np.where(valid, outputs[member] - np.nan_to_num(targets), 0.0)
                spread = np.where(valid, outputs.std(axis=0, ddof=1), 0.0)
                squared_error += (error ** 2).sum(axis=0)
                squared_sd += (spread ** 2).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.sqrt(squared_error / squared_sd)
        scale[~np.isfinite(scale)] = np.nan
        logger.info("ensemble SD recalibrated on held-out blocks: factor median %.2f (range %.2f-%.2f)",
                    float(np.nanmedian(scale)), float(np.nanmin(scale)), float(np.nanmax(scale)))
        return scale

    def _optimisation_step(self, module, optimizer, data, units, rng, positions, all_genes,
                           step: int) -> float:
        """One Adam step on the training units ``units``; returns the training loss."""
        device = positions.device
        points, segments, targets = data.batch(units, rng)
        points, targets = points.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        prediction = self._forward(module, points, all_genes, positions)
        if segments is not None:
            prediction = segment_mean(prediction, segments.to(device), len(units))
        loss = masked_mse(prediction, targets)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.inference_mode()
    def _evaluate(self, module, data, units, positions, all_genes, seed) -> float:
        """Masked MSE (scaled units) on the units ``units``, in chunks."""
        if len(units) == 0:
            return float("nan")
        rng = np.random.default_rng([seed, 2 ** 31])  # the same voxels at every evaluation
        chunk = max(1, self._units_per_step(data) * 4)
        total, count = 0.0, 0
        device = positions.device
        for start in range(0, len(units), chunk):
            part = units[start:start + chunk]
            points, segments, targets = data.batch(part, rng, evaluation=True)
            prediction = self._forward(module, points.to(device), all_genes, positions)
            if segments is not None:
                prediction = segment_mean(prediction, segments.to(device), len(part))
            targets = targets.to(device)
            mask = torch.isfinite(targets)
            total += float(((prediction - torch.nan_to_num(targets)) ** 2)[mask].sum())
            count += int(mask.sum())
        return total / max(count, 1)

    def _fit_one(self, data, member: int, seed: int, positions, device, resume_state):
        from .checkpoint import save_checkpoint

        split_rng = np.random.default_rng([seed, 0])
        held = data.split(self.validation_fraction, self.validation_block_mm, split_rng)
        train_units, val_units = np.flatnonzero(~held), np.flatnonzero(held)
        if len(train_units) == 0:
            raise InputError("no training sites left after the validation split; lower "
                             "validation_fraction or validation_block_mm")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build_module(self.n_genes_)
        module.to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        positions = positions.to(device)
        all_genes = torch.arange(self.n_genes_, device=device)
        per_step = min(self._units_per_step(data), len(train_units))
        history: list = []
        best_state, best_value, best_step, bad, start = None, math.inf, 0, 0, 0
        if resume_state is not None:
            module.load_state_dict(resume_state["module"])
            optimizer.load_state_dict(resume_state["optimizer"])
            best_state = resume_state["best"]
            best_value, best_step = resume_state["best_value"], resume_state["best_step"]
            bad, start, history = resume_state["bad"], resume_state["step"], resume_state["history"]
            logger.info("member %d resumes at step %d", member, start)
        logger.info("member %d: %d training and %d validation %s, %d per step", member,
                    len(train_units), len(val_units),
                    "sites" if data.kind == "samples" else "parcels", per_step)
        module.train()
        steps = progress(range(start, self.max_steps), desc=f"fit {self.design} [{member + 1}/"
                         f"{self.n_ensemble}]", initial=start, total=self.max_steps)
        train_loss = math.nan
        by_training_loss = self.selection == "training_loss"
        for step in steps:
            rng = np.random.default_rng([seed, 1, step])
            units = train_units if per_step >= len(train_units) else \
                np.sort(rng.choice(train_units, per_step, replace=False))
            train_loss = self._optimisation_step(module, optimizer, data, units, rng, positions,
                                                 all_genes, step)
            done = step + 1
            if done % self.eval_every == 0 or done == self.max_steps:
                module.eval()
                value = (self._evaluate(module, data, val_units, positions, all_genes, seed)
                         if len(val_units) else math.nan)
                criterion = (self._evaluate(module, data, train_units, positions, all_genes, seed)
                             if by_training_loss else value)
                module.train()
                history.append((done, train_loss, value))
                steps.set_postfix(train=f"{train_loss:.4g}", val=f"{value:.4g}")
                if math.isnan(criterion) or criterion < best_value:
                    best_value, best_step, bad = criterion, done, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    bad += 1
                if len(val_units) and not by_training_loss and bad >= self.patience:
                    logger.info("member %d: early stop at step %d (best %d, validation %.4g)",
                                member, done, best_step, best_value)
                    break
            if self.checkpoint_path is not None and done % self.checkpoint_every == 0 \
                    and done < self.max_steps:
                save_checkpoint(self, self.checkpoint_path, training={
                    "member": member, "step": done, "module": module.state_dict(),
                    "optimizer": optimizer.state_dict(), "best": best_state,
                    "best_value": best_value, "best_step": best_step, "bad": bad,
                    "history": history})
        if best_state is None:
            best_state, best_step = copy.deepcopy(module.state_dict()), self.max_steps
        module.load_state_dict(best_state)
        module.eval()
        if len(val_units) and not by_training_loss and self.value_scaling == "standard" \
                and best_value >= NO_SKILL_MSE:
            what = "sites" if data.kind == "samples" else "parcels"
            logger.warning(
                "member %d: held-out %s are predicted little better than by each gene's mean "
                "(validation MSE %.2f in standardised units), so the model was kept at step %d "
                "and may underfit the training data; to fit every %s for max_steps instead, use "
                "validation_fraction=0", member, what, best_value, best_step,
                what[:-1])
        logger.info("member %d: kept step %d (%s MSE %.4g, scaled units; last training "
                    "loss %.4g)", member, best_step, "training" if by_training_loss else "validation",
                    best_value, train_loss)
        return module, history, best_step

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
        factor = np.ones(len(gene_index))
        known = getattr(self, "std_scale_", None)
        known = np.zeros(0) if known is None else np.asarray(known, dtype=float)
        inside = np.asarray(gene_index) < len(known)
        factor[inside] = np.nan_to_num(known[np.asarray(gene_index)[inside]], nan=1.0)
        std_factor = torch.as_tensor(factor, dtype=torch.float32, device=device)
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
                pieces.append((std, outputs.std(0, unbiased=True) * scale * std_factor))
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
    def save(self, path) -> Path:
        """Write the fitted model to one checkpoint file (see :mod:`brainexpr.models.checkpoint`)."""
        from .checkpoint import save_checkpoint

        check_is_fitted(self, "members_")
        save_checkpoint(self, path)
        return Path(path)

    @classmethod
    def load(cls, path, device: str | None = None) -> "INRRegressor":
        """Load a model written by :meth:`save` (safely, without unpickling objects)."""
        from .checkpoint import load_model

        return load_model(path, device=device)

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
