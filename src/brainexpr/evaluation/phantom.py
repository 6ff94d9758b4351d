"""Phantom AHBA data with known ground truth.

Real AHBA expression has no voxel-wise ground truth, so the accuracy of a map can only be
measured on data whose truth is known. :func:`make_phantom` builds such data the way AHBA
was collected: ground-truth expression fields over the MNI152 brain, per-donor
deviations, and noisy samples at the real 3,702 sample sites of the six donors.

Generator (all fields live on the 2 mm FSL MNI152 grid and are read at any point by
trilinear interpolation, so sample values, 2 mm and 1 mm volumes are one function):

``truth_g(x) = sqrt(f_reg) R_g(x) + sqrt(f_tis) w_g T(x) + sqrt(f_grad) D_g(x) + sqrt(f_field) F_g(x)``

* **Regional pattern** ``R_g``: the real DK-83 expression (abagen regional table) of a
  few *anchor* genes (default: Alzheimer's risk genes spread along the first principal
  component of their regional profiles), painted on the atlas, extended to every voxel
  by its nearest labelled voxel and smoothed (Gaussian of SD ``coarse_smoothing`` mm). A
  phantom gene mixes the anchors near its gene-axis position.
* **Tissue contrast** ``T``: white- minus grey-matter probability (FSL MNI152); each
  gene has its own weight ``w_g``, so white matter differs from cortex as it does in AHBA.
* **Within-region gradients** ``D_g``: in each region, a linear ramp along a random
  direction, smoothed like ``R_g``.
* **Multi-scale Gaussian random fields** ``F_g``: white noise smoothed (in Fourier space,
  periodic over a box around the brain) at each of ``length_scales`` mm; each gene weights
  the scales around its own smoothness
  ``length_scale_g`` (log-uniform over the scales). A fraction ``1 - asymmetry`` of each
  field is left-right symmetric, as AHBA expression largely is.

Genes sit on a latent gene axis ``t_g`` in [0, 1]. Every component of a gene is a mix of
shared basis fields with weights that vary smoothly with ``t_g`` (a fraction
``axis_coherence`` of the weight) plus gene-specific random weights, so genes close on
the axis have similar fields, as the gene-axis idea of the reference study assumes.
Each gene's truth is standardised to mean 0, SD 1 over the brain mask.

Donors: donor ``d`` sees ``truth_g + s_g dev_dg``, where ``dev_dg`` are smooth random
fields (``donor_length_scale`` mm, mixed along the gene axis) with unit SD over the brain.
``s_g`` is set so that the expected correlation between two donors' DK-83 regional
profiles (differential stability, DS) equals a target drawn uniformly from
``reproducibility``: ``s_g^2 = V_g (1 - DS_g) / (DS_g v_g)`` with ``V_g`` the regional
variance of the truth and ``v_g`` that of the unit deviations.

Samples: at each real sample site (corrected MNI coordinates) the value is the donor's
field plus Gaussian measurement noise of SD ``noise``. All values are reported in
abagen-like units, ``0.5 + 0.15 * z`` (mostly within [0, 1]); the background of written
volumes is 0, as in the reference study's maps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage, sparse

from .._version import __version__
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import check_random_state, progress

logger = logging.getLogger(__name__)

#: Output units: value = OFFSET + SCALE * z (abagen's scaled-sigmoid data live in [0, 1]).
OFFSET, SCALE = 0.5, 0.15

#: Default variance fractions of the four truth components.
COMPONENTS = {"regional": 0.40, "tissue": 0.15, "gradient": 0.10, "field": 0.35}

_GRID_RESOLUTION = 2  # mm; every phantom field is stored on the 2 mm FSL grid


@dataclass
class Phantom:
    """Phantom AHBA data: noisy samples at the real sites and the truth behind them.

    Attributes
    ----------
    samples : pandas.DataFrame
        The real sample table (:func:`brainexpr.datasets.load_samples` with
        ``tissue_class``, :func:`brainexpr.atlas.tissue.with_tissue_class`), one row per site.
    values : pandas.DataFrame
        (n_sites, n_genes) observed values (donor field + noise), index ``well_id``.
    truth_at_sites : pandas.DataFrame
        (n_sites, n_genes) population ground truth at the sites (no donor effect, no noise).
    donor_truth_at_sites : pandas.DataFrame
        (n_sites, n_genes) each site's own donor field (no noise).
    genes : pandas.DataFrame
        One row per gene: ``gene_axis``, ``anchor`` (closest anchor gene),
        ``length_scale`` (mm), ``tissue_weight``, ``ds_target``, ``ds_field`` (realised
        between-donor correlation of regional field profiles), ``ds_samples``
        (AHBA-style DS from the noisy samples), ``donor_sd``, ``noise_sd``.
    settings : dict
        Every generator setting, the anchor genes and the package version.
    """

    samples: pd.DataFrame
    values: pd.DataFrame
    truth_at_sites: pd.DataFrame
    donor_truth_at_sites: pd.DataFrame
    genes: pd.DataFrame
    settings: dict
    _basis: np.ndarray = field(repr=False)        # (n_basis, X, Y, Z) float32, cropped 2 mm grid
    _origin: np.ndarray = field(repr=False)       # voxel index of the crop corner on the 2 mm grid
    _weights: np.ndarray = field(repr=False)      # (n_basis, n_genes)
    _intercept: np.ndarray = field(repr=False)    # (n_genes,)
    _regional_basis: pd.DataFrame = field(repr=False, default=None)  # (n_regions, n_basis) means

    @property
    def gene_names(self) -> list[str]:
        """Phantom gene names (``phantom_000``...)."""
        return list(self.genes.index)

    @property
    def gene_axis(self) -> np.ndarray:
        """(n_genes,) latent gene-axis position of each gene, in [0, 1]."""
        return self.genes["gene_axis"].to_numpy(float)

    @property
    def coords(self) -> np.ndarray:
        """(n_sites, 3) sample coordinates, mm, MNI152 (corrected)."""
        return self.samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy(float)

    def truth(self, coords, genes=None, chunk_size: int = 200_000) -> np.ndarray:
        """Population ground truth at any points.

        Parameters
        ----------
        coords : (n, 3) array, mm, MNI152
        genes : sequence of int or str, optional
            Genes to return (default all).
        chunk_size : int
            Points per block (memory ``4 * chunk_size * n_basis`` bytes).

        Returns
        -------
        (n, n_genes_selected) float array, abagen-like units
        """
        coords = np.asarray(coords, dtype=float)
        if coords.ndim != 2 or coords.shape[1] != 3:
            raise InputError(f"coords must be (n, 3) MNI mm, got shape {coords.shape}")
        cols = self._gene_columns(genes)
        out = np.empty((len(coords), len(cols)), dtype=np.float64)
        for start in range(0, len(coords), chunk_size):
            block = _interpolate_basis(self._basis, self._origin, coords[start:start + chunk_size])
            out[start:start + chunk_size] = block @ self._weights[:, cols] + self._intercept[cols]
        return OFFSET + SCALE * out

    def regional_truth(self) -> pd.DataFrame:
        """True DK-83 regional values: the mean of the truth over each region's 2 mm voxels.

        Returns
        -------
        pandas.DataFrame
            (n_regions, n_genes), index = region keys (``L_bankssts``...), abagen-like units.
        """
        values = self._regional_basis.to_numpy() @ self._weights + self._intercept
        return pd.DataFrame(OFFSET + SCALE * values, index=self._regional_basis.index,
                            columns=self.gene_names)

    @fill_doc
    def truth_volume(self, resolution: int = 2, genes=None, data_dir=None) -> nib.Nifti1Image:
        """Ground-truth volume(s) on the FSL MNI152 grid, 0 outside the brain mask.

        Parameters
        ----------
        resolution : {1, 2}
            Voxel size (mm).
        genes : sequence of int or str, optional
            Genes to write (default all); one volume per gene along the 4th axis.
        %(data_dir)s

        Returns
        -------
        nibabel.Nifti1Image
            (X, Y, Z, n_genes) float32, abagen-like units.
        """
        from ..atlas.space import mni_grid

        shape, affine = mni_grid(resolution)
        mask = brain_mask(resolution, data_dir)
        ijk = np.argwhere(mask)
        from ..atlas.space import voxel_to_mni

        cols = self._gene_columns(genes)
        data = np.zeros(shape + (len(cols),), dtype=np.float32)
        data[tuple(ijk.T)] = self.truth(voxel_to_mni(ijk, affine), genes=cols)
        image = nib.Nifti1Image(data, affine)
        image.header.set_xyzt_units("mm")
        return image

    def _gene_columns(self, genes) -> np.ndarray:
        from ..models.base import resolve_genes

        return resolve_genes(genes, self.gene_names, len(self.gene_names))


# --------------------------------------------------------------------------- grid helpers
@lru_cache(maxsize=4)
def _brain_mask_cached(resolution, data_dir):
    from ..atlas.space import resample_to_grid
    from ..datasets import load_brain_mask

    image = resample_to_grid(load_brain_mask(data_dir), resolution, "nearest")
    mask = np.asarray(image.dataobj) > 0
    mask.setflags(write=False)
    return mask


def brain_mask(resolution: int = 2, data_dir=None) -> np.ndarray:
    """Boolean FSL MNI152 brain mask on the 1 or 2 mm grid (read-only, cached)."""
    return _brain_mask_cached(int(resolution), None if data_dir is None else str(data_dir))


@lru_cache(maxsize=2)
def _grid_context(data_dir):
    """Atlas labels, tissue contrast and crop box on the 2 mm grid."""
    from ..atlas.space import mni_grid, resample_to_grid
    from ..datasets import load_atlas, load_tissue_probabilities

    shape, affine = mni_grid(_GRID_RESOLUTION)
    mask = brain_mask(_GRID_RESOLUTION, data_dir)
    atlas = load_atlas("dk83", data_dir)
    labels = np.rint(np.asarray(resample_to_grid(atlas.image, _GRID_RESOLUTION, "nearest").dataobj)).astype(np.int32)
    grey, white = load_tissue_probabilities(data_dir)
    p_grey = np.asarray(resample_to_grid(grey, _GRID_RESOLUTION, "linear").dataobj, dtype=np.float32)
    p_white = np.asarray(resample_to_grid(white, _GRID_RESOLUTION, "linear").dataobj, dtype=np.float32)
    ijk = np.argwhere(mask)
    lower = np.maximum(ijk.min(axis=0) - 3, 0)
    upper = np.minimum(ijk.max(axis=0) + 4, np.array(shape))
    # symmetric in x about the midline voxel, so that flipping the crop maps x -> -x
    half = max(shape[0] // 2 - lower[0], upper[0] - 1 - shape[0] // 2)
    lower[0], upper[0] = shape[0] // 2 - half, shape[0] // 2 + half + 1
    crop = tuple(slice(a, b) for a, b in zip(lower, upper))
    # every voxel of the crop gets the label of its nearest labelled voxel
    _, nearest = ndimage.distance_transform_edt(labels[crop] == 0, return_indices=True)
    extended = labels[crop][tuple(nearest)]
    return {
        "shape": shape, "affine": affine, "mask": mask, "labels": labels, "crop": crop,
        "origin": lower, "extended": extended, "tissue": (p_white - p_grey)[crop],
        "regions": atlas.regions,
    }


def _interpolate_basis(basis, origin, coords):
    """Trilinear interpolation of (n_basis, X, Y, Z) cropped 2 mm volumes at MNI points."""
    from ..atlas.space import mni_grid, mni_to_voxel

    _, affine = mni_grid(_GRID_RESOLUTION)
    ijk = mni_to_voxel(coords, affine, round_to_int=False) - origin
    upper = np.array(basis.shape[1:]) - 1
    ijk = np.clip(ijk, 0, upper).T
    out = np.empty((len(coords), basis.shape[0]), dtype=np.float64)
    for b in range(basis.shape[0]):
        out[:, b] = ndimage.map_coordinates(basis[b], ijk, order=1, mode="nearest")
    return out


def _smooth_random_field(shape, sigma_vox, rng, asymmetry):
    """White noise smoothed by a Gaussian (in Fourier space, periodic); a fraction
    ``1 - asymmetry`` of its variance is mirrored in x."""
    noise = rng.standard_normal(shape).astype(np.float32)
    spectrum = ndimage.fourier_gaussian(np.fft.rfftn(noise), sigma=sigma_vox, n=shape[-1])
    smooth = np.fft.irfftn(spectrum, s=shape, axes=(0, 1, 2)).astype(np.float32)
    smooth /= smooth.std() + 1e-12
    if asymmetry < 1:
        # the grids are symmetric about the midline voxel: flipping the first axis maps x -> -x
        symmetric = (smooth + smooth[::-1]) / 2.0
        symmetric /= symmetric.std() + 1e-12
        smooth = np.sqrt(1 - asymmetry) * symmetric + np.sqrt(asymmetry) * smooth
    return smooth


def _axis_weights(axis, n_basis, coherence, rng):
    """(n_basis, n_genes) weights: smooth bumps along the axis plus random mixing."""
    centres = np.linspace(0.0, 1.0, n_basis)
    width = 0.75 / max(n_basis - 1, 1)
    bumps = np.exp(-0.5 * ((axis[None, :] - centres[:, None]) / width) ** 2)
    bumps /= np.linalg.norm(bumps, axis=0, keepdims=True)
    random = rng.standard_normal((n_basis, len(axis)))
    random /= np.linalg.norm(random, axis=0, keepdims=True)
    return np.sqrt(coherence) * bumps + np.sqrt(1 - coherence) * random


def _standardise(weights, gram, mean):
    """Scale basis weights so each gene has mean 0 and SD 1 over the mask."""
    variance = np.einsum("bg,bc,cg->g", weights, gram, weights) - (mean @ weights) ** 2
    sd = np.sqrt(np.maximum(variance, 1e-12))
    return weights / sd, -(mean @ weights) / sd


def _anchor_genes(anchor_genes, n_anchors, data_dir):
    from ..datasets import load_gene_set, load_regional_expression

    if anchor_genes is None:
        pool = load_regional_expression(load_gene_set("ad", data_dir), data_dir=data_dir,
                                        allow_missing=True)
    else:
        pool = load_regional_expression(list(anchor_genes), data_dir=data_dir)
    if pool.shape[1] < n_anchors:
        raise InputError(f"n_anchors={n_anchors} but only {pool.shape[1]} anchor genes are available")
    z = (pool - pool.mean()) / pool.std().replace(0, 1)
    # order the pool along the first principal component of the genes' regional profiles
    profiles = z.to_numpy().T
    profiles = profiles - profiles.mean(axis=0)
    u, s, _ = np.linalg.svd(profiles, full_matrices=False)
    order = np.argsort(u[:, 0] * s[0], kind="stable")
    picks = order[np.linspace(0, len(order) - 1, n_anchors).round().astype(int)]
    return z.iloc[:, picks]


# --------------------------------------------------------------------------- generator
@fill_doc
def make_phantom(n_genes: int = 100, *, n_anchors: int = 10, anchor_genes=None, n_basis: int = 8,
                 length_scales=(6.0, 12.0, 24.0), components: dict | None = None,
                 coarse_smoothing: float = 3.0, axis_coherence: float = 0.7,
                 asymmetry: float = 0.3, symmetry: float = 0.0, reproducibility=(0.1, 0.9),
                 donor_length_scale: float = 16.0, noise: float = 0.4, random_state=0,
                 data_dir=None) -> Phantom:
    """Generate phantom AHBA data with known ground truth (see the module docstring).

    Parameters
    ----------
    n_genes : int
        Number of phantom genes.
    n_anchors : int
        Real genes whose DK-83 regional profiles give the coarse patterns.
    anchor_genes : sequence of str, optional
        Pool of real genes to pick anchors from (default: the AD risk genes).
    n_basis : int
        Shared basis fields per component and scale (more = genes less alike).
    length_scales : sequence of float
        Smoothing scales (mm, Gaussian sigma) of the random fields.
    components : dict, optional
        Variance fractions ``{"regional", "tissue", "gradient", "field"}``
        (default :data:`COMPONENTS`).
    coarse_smoothing : float
        Gaussian sigma (mm) applied to the painted regional patterns and gradients.
    axis_coherence : float in [0, 1]
        Share of each gene's basis weights that varies smoothly along the gene axis.
    asymmetry : float in [0, 1]
        Share of each random field that is not left-right symmetric.
    symmetry : float in [0, 1]
        Pull every component of the truth (regional patterns and gradients included)
        towards its left-right symmetric part: each basis field ``B`` becomes
        ``(1 - symmetry) B + symmetry (B + B_mirrored) / 2``. 0 (default) leaves the
        phantom as it was; 1 makes every truth exactly symmetric. Donor deviations and
        noise stay asymmetric.
    reproducibility : (float, float)
        Range of the target differential stability (between-donor correlation).
    donor_length_scale : float
        Smoothing (mm) of the donor deviation fields.
    noise : float
        SD of the measurement noise, in units of the truth SD.
    random_state : int
        Seed; the same seed gives the same phantom.
    %(data_dir)s

    Returns
    -------
    Phantom
    """
    from ..atlas.tissue import with_tissue_class
    from ..datasets import load_samples
    from .metrics import differential_stability

    fractions = dict(COMPONENTS if components is None else components)
    unknown = set(fractions) - set(COMPONENTS)
    if unknown:
        raise InputError(f"components keys must be among {sorted(COMPONENTS)}; got {sorted(unknown)}")
    if int(n_genes) < 2:
        raise InputError(f"n_genes must be at least 2, got {n_genes!r}")
    lo, hi = (float(v) for v in reproducibility)
    if not 0 < lo <= hi < 1:
        raise InputError(f"reproducibility must be (low, high) with 0 < low <= high < 1, got {reproducibility!r}")
    for name, value in (("axis_coherence", axis_coherence), ("asymmetry", asymmetry), ("symmetry", symmetry)):
        if not 0 <= value <= 1:
            raise InputError(f"{name} must lie in [0, 1], got {value!r}")
    if noise < 0:
        raise InputError(f"noise must be >= 0, got {noise!r}")
    n_genes = int(n_genes)
    rng = check_random_state(random_state)
    data_dir_key = None if data_dir is None else str(data_dir)
    ctx = _grid_context(data_dir_key)
    crop = ctx["crop"]
    crop_shape = ctx["extended"].shape
    mask_crop = ctx["mask"][crop]
    sigma_coarse = coarse_smoothing / _GRID_RESOLUTION

    # gene axis and per-gene settings
    spacing = 1.0 / n_genes
    axis = np.sort(np.clip((np.arange(n_genes) + 0.5) * spacing
                           + rng.uniform(-0.25, 0.25, n_genes) * spacing, 0, 1))
    scales = np.asarray(length_scales, dtype=float)
    gene_scale = np.exp(rng.uniform(np.log(scales.min()), np.log(scales.max()), n_genes))
    ds_target = rng.permutation(np.linspace(lo, hi, n_genes))

    basis, weights, names = [], [], []

    def add(volume, gene_weights, label):
        basis.append(volume.astype(np.float32))
        weights.append(gene_weights)
        names.append(label)

    steps = progress(total=4 + len(scales), desc="phantom fields")
    # 1. regional patterns of real anchor genes
    anchors = _anchor_genes(anchor_genes, n_anchors, data_dir)
    ids = ctx["regions"]["id"].to_numpy()
    lookup = np.zeros((int(ctx["extended"].max()) + 1, anchors.shape[1]), dtype=np.float32)
    lookup[ids] = anchors.loc[ctx["regions"].index].to_numpy(np.float32)
    anchor_weights = _component_weights(axis, anchors.shape[1], axis_coherence, rng, np.sqrt(fractions["regional"]))
    for a in range(anchors.shape[1]):
        painted = ndimage.gaussian_filter(lookup[ctx["extended"], a], sigma_coarse)
        add(painted, anchor_weights[a], f"regional:{anchors.columns[a]}")
    steps.update()
    # 2. tissue contrast
    tissue_weight = (np.sqrt(axis_coherence) * _smooth_along_axis(axis, rng)
                     + np.sqrt(1 - axis_coherence) * rng.standard_normal(n_genes))
    tissue = ctx["tissue"] / (ctx["tissue"][mask_crop].std() + 1e-12)
    add(tissue, np.sqrt(fractions["tissue"]) * tissue_weight, "tissue")
    steps.update()
    # 3. within-region gradients
    grad_weights = _component_weights(axis, n_basis, axis_coherence, rng, np.sqrt(fractions["gradient"]))
    ijk = np.indices(ctx["extended"].shape).reshape(3, -1).T.astype(np.float32)
    flat_labels = ctx["extended"].ravel()
    labelled = ctx["labels"][crop].ravel() > 0
    counts = np.bincount(flat_labels[labelled], minlength=lookup.shape[0]).astype(float)
    centroid = np.stack([np.bincount(flat_labels[labelled], weights=ijk[labelled, k], minlength=lookup.shape[0])
                         for k in range(3)], axis=1) / np.maximum(counts, 1)[:, None]
    offset = ijk - centroid[flat_labels]
    radius = np.sqrt(np.bincount(flat_labels, weights=(offset ** 2).sum(1), minlength=lookup.shape[0])
                     / np.maximum(np.bincount(flat_labels, minlength=lookup.shape[0]), 1))
    for b in range(n_basis):
        direction = rng.standard_normal((lookup.shape[0], 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        ramp = (offset * direction[flat_labels]).sum(1) / np.maximum(radius[flat_labels], 1.0)
        add(ndimage.gaussian_filter(ramp.reshape(ctx["extended"].shape), sigma_coarse),
            grad_weights[b], f"gradient:{b}")
    steps.update()
    # 4. multi-scale random fields with per-gene smoothness
    log_ratio = np.log(scales[:, None] / gene_scale[None, :])
    scale_weight = np.exp(-0.5 * (log_ratio / 0.5) ** 2)
    scale_weight /= np.linalg.norm(scale_weight, axis=0, keepdims=True)
    for s, scale in enumerate(scales):
        field_weights = _component_weights(axis, n_basis, axis_coherence, rng,
                                           np.sqrt(fractions["field"]) * scale_weight[s])
        for b in range(n_basis):
            volume = _smooth_random_field(crop_shape, scale / _GRID_RESOLUTION, rng, asymmetry)
            add(volume, field_weights[b], f"field:{scale:g}mm:{b}")
        steps.update()

    basis = np.stack(basis)
    if symmetry > 0:
        # the crop is symmetric about the midline voxel: flipping its first axis maps x -> -x
        basis = (1 - symmetry) * basis + symmetry * 0.5 * (basis + basis[:, ::-1])
    for b in range(len(basis)):  # unit SD, zero mean over the brain for every basis field
        inside = basis[b][mask_crop]
        basis[b] = (basis[b] - inside.mean()) / (inside.std() + 1e-12)
    weights = np.stack(weights)
    in_mask = basis[:, mask_crop].T.astype(np.float64)            # (n_mask, n_basis)
    gram = in_mask.T @ in_mask / len(in_mask)
    weights, intercept = _standardise(weights, gram, in_mask.mean(0))

    # donors: deviation fields, their regional profiles, the DS-matched scale
    samples = with_tissue_class(load_samples(data_dir), data_dir)
    coords = samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy(float)
    truth_sites = _interpolate_basis(basis, ctx["origin"], coords) @ weights + intercept
    region_of_voxel = ctx["labels"][crop][mask_crop]
    region_ids = np.unique(region_of_voxel[region_of_voxel > 0])
    row = np.searchsorted(region_ids, region_of_voxel)
    inside = region_of_voxel > 0
    onehot = sparse.csr_matrix((np.ones(int(inside.sum())), (row[inside], np.flatnonzero(inside))),
                               shape=(len(region_ids), len(region_of_voxel)))
    onehot = sparse.diags(1.0 / np.asarray(onehot.sum(axis=1)).ravel()) @ onehot
    regional_basis = onehot @ in_mask                              # (n_regions, n_basis)
    truth_regional = regional_basis @ weights + intercept         # (n_regions, n_genes)
    key_of_id = {int(i): k for k, i in ctx["regions"]["id"].items()}
    regional_basis = pd.DataFrame(regional_basis, index=pd.Index([key_of_id[int(i)] for i in region_ids],
                                                                 name="region"))
    donors = list(pd.unique(samples["donor"]))
    donor_sites = np.zeros_like(truth_sites)
    donor_regional = []
    for donor in donors:
        rows = np.flatnonzero(samples["donor"].to_numpy() == donor)
        dev_basis = np.stack([_smooth_random_field(crop_shape, donor_length_scale / _GRID_RESOLUTION, rng, 1.0)
                              for _ in range(n_basis)])
        dev_weights = _axis_weights(axis, n_basis, axis_coherence, rng)
        dev_mask = dev_basis[:, mask_crop].T.astype(np.float64)
        dev_weights, dev_intercept = _standardise(dev_weights, dev_mask.T @ dev_mask / len(dev_mask), dev_mask.mean(0))
        donor_regional.append((onehot @ dev_mask) @ dev_weights + dev_intercept)
        donor_sites[rows] = _interpolate_basis(dev_basis, ctx["origin"], coords[rows]) @ dev_weights + dev_intercept
    steps.update()
    steps.close()
    regional_var = truth_regional.var(axis=0)
    deviation_var = np.mean([d.var(axis=0) for d in donor_regional], axis=0)
    donor_sd = np.sqrt(regional_var * (1 - ds_target) / (ds_target * deviation_var))
    profiles = [truth_regional + donor_sd * d for d in donor_regional]
    pair_r = [_column_corr(profiles[a], profiles[b])
              for a in range(len(profiles)) for b in range(a + 1, len(profiles))]
    ds_field = np.mean(pair_r, axis=0)

    own_field = truth_sites + donor_sd * donor_sites
    observed = own_field + noise * rng.standard_normal(own_field.shape)

    genes = [f"phantom_{g:03d}" for g in range(n_genes)]
    index = pd.Index(samples["well_id"].to_numpy(), name="well_id")
    frame = lambda z: pd.DataFrame(OFFSET + SCALE * z, index=index, columns=genes)  # noqa: E731
    values = frame(observed)
    nearest_anchor = anchors.columns[np.abs(axis[:, None] - np.linspace(0, 1, anchors.shape[1])[None, :]).argmin(1)]
    table = pd.DataFrame({
        "gene_axis": axis,
        "anchor": nearest_anchor,
        "length_scale": gene_scale,
        "tissue_weight": tissue_weight,
        "ds_target": ds_target,
        "ds_field": ds_field,
        "ds_samples": differential_stability(values, samples["donor"], samples["dk_region"]).to_numpy(),
        "donor_sd": donor_sd,
        "noise_sd": np.full(n_genes, float(noise)),
    }, index=pd.Index(genes, name="gene"))
    settings = {
        "n_genes": n_genes, "n_anchors": int(n_anchors), "anchor_genes": list(anchors.columns),
        "n_basis": int(n_basis), "length_scales": [float(s) for s in scales],
        "components": fractions, "coarse_smoothing": float(coarse_smoothing),
        "axis_coherence": float(axis_coherence), "asymmetry": float(asymmetry),
        "symmetry": float(symmetry), "reproducibility": [lo, hi], "donor_length_scale": float(donor_length_scale),
        "noise": float(noise), "random_state": random_state if isinstance(random_state, (int, type(None))) else "generator",
        "units": f"{OFFSET} + {SCALE} * z (z: truth standardised over the brain mask)",
        "grid": f"{_GRID_RESOLUTION} mm FSL MNI152, trilinear interpolation",
        "donors": donors, "brainexpr_version": __version__,
    }
    logger.info("phantom: %d genes, %d sites, DS target %.2f-%.2f (realised from samples: median %.2f)",
                n_genes, len(samples), lo, hi, float(np.nanmedian(table["ds_samples"])))
    return Phantom(samples=samples, values=values, truth_at_sites=frame(truth_sites),
                   donor_truth_at_sites=frame(own_field), genes=table, settings=settings,
                   _basis=basis, _origin=np.asarray(ctx["origin"]), _weights=weights,
                   _intercept=intercept, _regional_basis=regional_basis)


def _component_weights(axis, n_basis, coherence, rng, scale):
    """Axis-mixed weights of one component, scaled per gene by ``scale``."""
    weights = _axis_weights(axis, n_basis, coherence, rng)
    return weights * np.asarray(scale)[None, :] if np.ndim(scale) else weights * scale


def _smooth_along_axis(axis, rng, n_knots: int = 6):
    """A random smooth function of the gene axis with unit variance (for scalar weights)."""
    knots = np.linspace(0, 1, n_knots)
    values = rng.standard_normal(n_knots)
    return np.interp(axis, knots, values)


def _column_corr(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
