"""The contract shared by every sample-level interpolator (INR and baselines alike).

Data layout: AHBA measures every gene at every sample site, so estimators take a dense
*sites x genes* matrix rather than (site, gene) rows::

    est.fit(coords, values, tissue=None, gene_axis=None)
        coords    : (n_sites, 3) float, mm, MNI152
        values    : (n_sites, n_genes) float; NaN marks a value that was not measured
        tissue    : (n_sites,) int in {1 grey, -1 white, 0 other}, optional
        gene_axis : (n_genes,) float in [0, 1], position of each gene on the gene axis,
                    optional (models that do not use it ignore it)
    est.predict(coords, tissue=None, genes=None) -> (n_points, n_genes_selected)
        genes     : indices (int) or names (str, when fit got a DataFrame) of the genes to
                    predict; default all genes seen in fit

Estimators follow scikit-learn: ``__init__`` only stores parameters, ``fit`` validates
and returns ``self``, learned state ends in ``_``, ``random_state`` is a parameter and
``predict`` checks that the model is fitted.

What an estimator can do beyond that contract is declared once, on its class, as
:class:`Capabilities` (``SampleInterpolator.capabilities``); the registry, the workflows,
the benchmark and the report read it instead of probing methods or keeping name lists.

Saving and loading: every estimator saves and restores its own state; the model file
(:mod:`brainexpr.models.checkpoint`) is a container that knows no estimator class. The
protocol, for the classes that declare ``Capabilities(model_file=True)``::

    state = est._state()                      # dict of the fitted state
    est = type(est)._from_state(params, state)  # a fitted estimator again

    params : dict, the constructor parameters (``get_params(deep=False)``)
    state  : dict of numpy arrays, torch tensors, plain values (None, bool, int, float,
             str) and nested lists, tuples and dicts of them -- nothing else, so that a
             file never has to unpickle an object

``_from_state`` raises ValueError, KeyError or InputError when the state does not fit
(the container turns that into a one-line error naming the file). The defaults below
save every public fitted attribute (names ending in ``_``) and set them back;
estimators that hold other objects (KD-trees, networks) override both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import check_random_state
from .checkpoint import fitted_attributes


def check_coords(coords, name: str = "coords") -> np.ndarray:
    """Validate an (n, 3) array of finite MNI coordinates (mm)."""
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise InputError(f"{name} must be an (n, 3) array of MNI mm, got shape {coords.shape}")
    if not np.isfinite(coords).all():
        raise InputError(f"{name} contains NaN or infinite values")
    if np.abs(coords).max(initial=0) > 250:
        raise InputError(f"{name} has values beyond 250 mm: not MNI millimetres (voxel indices?)")
    return coords


def check_tissue(tissue, n: int) -> np.ndarray:
    """Validate tissue classes; ``None`` means unknown (all 0)."""
    if tissue is None:
        return np.zeros(n, dtype=np.float32)
    tissue = np.asarray(tissue, dtype=float).ravel()
    if tissue.shape[0] != n:
        raise InputError(f"tissue has {tissue.shape[0]} entries for {n} coordinates")
    if not np.isin(tissue, (-1, 0, 1)).all():
        raise InputError("tissue classes must be 1 (grey), -1 (white) or 0 (other)")
    return tissue.astype(np.float32)


def check_values(values, n_sites: int):
    """Validate a (sites x genes) value matrix; return (array, gene_names or None).

    NaNs are allowed (unmeasured) but a gene or site with no finite value is an error.
    """
    names = None
    if isinstance(values, pd.DataFrame):
        names = [str(c) for c in values.columns]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"values have duplicated genes: {', '.join(dup[:10])}")
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n_sites:
        raise InputError(f"values must be (n_sites={n_sites}, n_genes), got shape {array.shape}")
    if np.isinf(array).any():
        raise InputError("values contain infinite entries")
    empty = ~np.isfinite(array).any(axis=0)
    if empty.any():
        which = np.flatnonzero(empty)[:10]
        label = [names[i] for i in which] if names else which.tolist()
        raise InputError(f"genes with no finite value: {label}")
    return array, names


def resolve_genes(genes, gene_names, n_genes: int) -> np.ndarray:
    """Turn ``genes`` (None, ints or names) into column indices of the fitted genes."""
    from ..datasets.loaders import check_genes

    if genes is None:
        return np.arange(n_genes)
    genes = list(np.atleast_1d(genes))
    if all(isinstance(g, (int, np.integer)) for g in genes):
        idx = np.asarray(genes, dtype=int)
        if idx.min(initial=0) < 0 or idx.max(initial=0) >= n_genes:
            raise InputError(f"gene indices must lie in [0, {n_genes})")
        return idx
    if gene_names is None:
        raise InputError("genes given by name but the model was fitted without gene names")
    check_genes([str(g) for g in genes], gene_names, "the fitted model")
    lookup = {g: i for i, g in enumerate(gene_names)}
    return np.array([lookup[str(g)] for g in genes], dtype=int)


#: What a model's ``_std`` comes from (:attr:`Capabilities.std`).
STD_SOURCES = (None, "kriging", "ensemble")


@dataclass(frozen=True)
class Capabilities:
    """What an estimator class can do, declared once on the class.

    Attributes
    ----------
    network : bool
        A trained neural network (an INR): the network and training settings apply to it
        and it is saved as a network checkpoint.
    parcel_means : bool
        Fits parcel means of an atlas: ``fit_regions(atlas_image, values, regions=None,
        tissue_image=None, gene_axis=None)``.
    donors : bool
        ``fit`` takes the donor of every site (``fit(..., donors=)``) and models donor effects.
    std : {None, "kriging", "ensemble"}
        Where a standard deviation comes from: none; ``predict_std`` (the kriging SD,
        always); or the spread of an ensemble (``n_ensemble >= 2`` members).
    gene_axis : bool
        Places genes on the gene axis: a fitted model predicts a gene from its gene-axis
        position (``predict_at_axis(coords, positions, tissue=None)``).
    model_file : bool
        Saves its fitted state to a model file (the state protocol of the module
        docstring); the workflows (``fit``, ``predict``, ``parcellate``, ``run``) accept
        only these models. Not inherited: a subclass that does not declare its own
        capabilities keeps every other ability of its parent, since its added state may
        not be savable.
    """

    network: bool = False
    parcel_means: bool = False
    donors: bool = False
    std: str | None = None
    gene_axis: bool = False
    model_file: bool = False

    def __post_init__(self):
        check_choice(self.std, STD_SOURCES, "std", error=ValueError)

    def gives_std(self, n_ensemble: int = 1) -> bool:
        """Whether the model predicts a standard deviation with ``n_ensemble`` members."""
        return self.std == "kriging" or (self.std == "ensemble" and int(n_ensemble) >= 2)


def fit_samples(estimator, coords, values, tissue=None, gene_axis=None, donors=None):
    """``estimator.fit`` with the donor of each site when the estimator takes donors.

    Estimators that model donor effects (``capabilities.donors``, e.g.
    :class:`~brainexpr.models.kriging.DonorKrigingRegressor`) get ``donors=``; the
    others are fitted without them.

    Returns
    -------
    estimator
        The fitted estimator (what its ``fit`` returns).
    """
    extra = {}
    if donors is not None and estimator.capabilities.donors:
        extra["donors"] = donors
    return estimator.fit(coords, values, tissue=tissue, gene_axis=gene_axis, **extra)


def spatial_blocks(coords, block_size: float = 20.0, random_state=None) -> np.ndarray:
    """Assign each point to a cubic block of side ``block_size`` mm (random grid offset).

    Returns
    -------
    (n,) int array of block ids (consecutive from 0)
    """
    coords = np.asarray(coords, dtype=float)
    if not block_size > 0:
        raise InputError(f"block_size must be positive (mm), got {block_size!r}")
    rng = check_random_state(random_state)
    offset = rng.uniform(0, block_size, size=3)
    cells = np.floor((coords + offset) / block_size).astype(np.int64)
    _, block = np.unique(cells, axis=0, return_inverse=True)
    return block.ravel()


def points_near(tree, points, radius: float) -> np.ndarray:
    """Sorted indices of the points of ``tree`` (a ``scipy.spatial.cKDTree``) within ``radius``
    mm of any of ``points`` (n, 3): the exclusion buffer of a held-out block, the block's own
    points included."""
    near = tree.query_ball_point(np.asarray(points, dtype=float), r=radius, return_sorted=False)
    return np.unique(np.concatenate([np.asarray(n, dtype=np.int64) for n in near]))


class SampleInterpolator(BaseEstimator):
    """Base class: subclasses implement ``fit`` and ``predict`` with the contract above and
    declare what else they can do in :attr:`capabilities`."""

    #: What the class can do beyond ``fit``/``predict`` (none by default).
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "capabilities" not in vars(cls) and cls.capabilities.model_file:
            cls.capabilities = dataclasses.replace(cls.capabilities, model_file=False)

    def _state(self) -> dict:
        """The fitted state to save (protocol in the module docstring): by default every
        public fitted attribute."""
        check_is_fitted(self)
        return fitted_attributes(self)

    @classmethod
    def _from_state(cls, params: dict, state: dict):
        """A fitted estimator from ``params`` and a state of :meth:`_state`: by default the
        attributes are set back as they were saved."""
        estimator = cls(**params)
        for key, value in state.items():
            if not (key.endswith("_") and not key.startswith("_")):
                raise ValueError(f"attribute name {key!r} is no fitted attribute")
            setattr(estimator, key, value)
        return estimator

    @property
    def uses_gene_axis(self) -> bool:
        """Whether this model, with its parameters, predicts genes from gene-axis positions."""
        return self.capabilities.gene_axis

    def _check_params(self) -> None:
        """Validate the parameters (before any data is read); subclasses with constrained
        parameters override it."""

    def _validate_fit(self, coords, values, tissue=None):
        coords = check_coords(coords)
        values, names = check_values(values, len(coords))
        tissue = check_tissue(tissue, len(coords))
        return coords, values, tissue, names


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


@fill_doc
def regional_voxels(atlas_image, values, regions=None, tissue_image=None):
    """Validate a regional table against its atlas and return every parcel's voxels.

    The checks of :meth:`brainexpr.models.inr.INRRegressor.fit_regions` and of
    :class:`brainexpr.models.parcel.ParcelKrigingRegressor`.

    Parameters
    ----------
    %(regional_data)s

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
