"""Leave-parcels-out cross-validation of a model fitted to a regional table.

A regional table (parcels x genes, e.g. the abagen DK-83 table) becomes a continuous map
through a model's ``fit_regions`` (e.g.
:class:`~brainexpr.models.parcel.ParcelKrigingRegressor`). Its accuracy on parcels it
did not see: whole parcels are held out (:func:`parcel_folds`), the model is fitted on the
other parcels, and a held-out parcel's value is predicted as the mean of the continuous
prediction over its voxels (a fixed random subset of at most ``max_voxels``,
:func:`parcel_setup`; :func:`predict_parcel_means`). :func:`predict_held_out_parcels`
returns the held-out prediction of every parcel; ``brainexpr atlas build`` scores it per
gene (:func:`brainexpr.transcriptome.build.heldout_accuracy`). The comparison of regional
fitters against baselines (``benchmarks/parcel_fits.py``) builds on the same functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..errors import InputError
from ..utils import check_random_state

logger = logging.getLogger(__name__)


def parcel_folds(index, n_folds: int = 5, groups=None, random_state=None) -> list:
    """K folds of whole parcels, or of whole groups of parcels.

    Parameters
    ----------
    index : sequence
        Parcels (rows of the regional table).
    n_folds : int
    groups : pandas.Series or sequence, optional
        Group of each parcel (aligned with ``index``); groups are never split, and are
        dealt largest first to the fold with the fewest parcels.
    random_state : int or Generator, optional

    Returns
    -------
    list of (name, train_positions, test_positions)
        Every parcel is in exactly one test set.
    """
    n = len(index)
    rng = check_random_state(random_state)
    if groups is None:
        if not 2 <= int(n_folds) <= n:
            raise InputError(f"n_folds must lie in [2, {n}] (one parcel per fold at least), got "
                             f"{n_folds!r}")
        fold = np.empty(n, dtype=int)
        fold[rng.permutation(n)] = np.arange(n) % int(n_folds)
    else:
        groups = np.asarray(groups.reindex(index) if isinstance(groups, pd.Series) else groups,
                            dtype=object)
        if len(groups) != n or pd.isna(groups).any():
            raise InputError(f"groups must give a group to each of the {n} parcels")
        names, codes = np.unique(groups.astype(str), return_inverse=True)
        if not 2 <= int(n_folds) <= len(names):
            raise InputError(f"n_folds must lie in [2, {len(names)}] (the number of groups), got "
                             f"{n_folds!r}")
        sizes = np.bincount(codes)
        order = rng.permutation(len(names))
        order = order[np.argsort(-sizes[order], kind="stable")]
        load = np.zeros(int(n_folds), dtype=int)
        fold_of_group = np.empty(len(names), dtype=int)
        for g in order:
            target = int(np.argmin(load))
            fold_of_group[g] = target
            load[target] += sizes[g]
        fold = fold_of_group[codes]
    return [(f"fold{f}", np.flatnonzero(fold != f), np.flatnonzero(fold == f))
            for f in range(int(n_folds))]


@dataclass
class ParcelSetup:
    """An atlas prepared for held-out parcel scoring.

    Attributes
    ----------
    atlas_image : nibabel.Nifti1Image
    regions : pandas.DataFrame
        Atlas table (column ``id``), indexed by region key.
    index : pandas.Index
        Parcels of the regional table, in order.
    tissue_image : nibabel.Nifti1Image or None
    coords : (m, 3) array, mm
        Evaluation voxels (at most ``max_voxels`` per parcel), grouped by parcel.
    tissue : (m,) array
        Their tissue classes.
    offsets : (n_parcels + 1,) int array
        Evaluation voxels of parcel ``r``: ``coords[offsets[r]:offsets[r + 1]]``.
    """

    atlas_image: object
    regions: pd.DataFrame
    index: pd.Index
    tissue_image: object
    coords: np.ndarray
    tissue: np.ndarray
    offsets: np.ndarray

    def voxels_of(self, parcels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluation voxels of some parcels: coords, tissue and the position of their parcel
        in ``parcels``."""
        parcels = np.asarray(parcels, dtype=int)
        counts = np.diff(self.offsets)[parcels]
        take = np.concatenate([np.arange(self.offsets[p], self.offsets[p + 1]) for p in parcels])
        return self.coords[take], self.tissue[take], np.repeat(np.arange(len(parcels)), counts)


def parcel_setup(atlas_image, regions, index, tissue_image=None, max_voxels: int = 1000,
                 random_state=0) -> ParcelSetup:
    """Evaluation voxels of the parcels of a regional table.

    Parameters
    ----------
    atlas_image : nibabel.Nifti1Image
    regions : pandas.DataFrame
        Atlas table with column ``id``.
    index : sequence
        Region keys of the regional table.
    tissue_image : nibabel.Nifti1Image, optional
        Tissue classes on the atlas grid (default: 0 everywhere).
    max_voxels : int
        Evaluation voxels per parcel at most (a fixed random subset).
    random_state : int or Generator, optional
    """
    from ..models.base import parcel_voxels

    index = pd.Index(index)
    missing = [r for r in index if r not in regions.index]
    if missing:
        raise InputError(f"{len(missing)} region(s) are not in the atlas table: "
                         f"{', '.join(map(str, missing[:5]))}")
    ids = regions.loc[index, "id"].to_numpy(np.int64)
    coords, offsets, flat = parcel_voxels(atlas_image, ids)
    counts = np.diff(offsets)
    if (counts == 0).any():
        raise InputError(f"parcels without voxels: {', '.join(map(str, index[counts == 0][:5]))}")
    tissue = (np.zeros(len(flat), dtype=np.float32) if tissue_image is None else
              np.asarray(tissue_image.dataobj).ravel()[flat].astype(np.float32))
    rng = check_random_state(random_state)
    keep = [start + np.sort(rng.choice(n, size=min(n, int(max_voxels)), replace=False))
            for start, n in zip(offsets[:-1], counts)]
    kept = np.concatenate(keep)
    return ParcelSetup(atlas_image, regions, index, tissue_image, coords[kept], tissue[kept],
                       np.r_[0, np.cumsum([len(k) for k in keep])])


def fit_on_parcels(estimator, values: pd.DataFrame, setup: ParcelSetup, **fit_params):
    """A clone of ``estimator`` fitted to a regional table on the atlas of ``setup``.

    Parameters
    ----------
    estimator : estimator with ``fit_regions`` (``capabilities.parcel_means``)
        Unfitted or fitted; only its parameters are used.
    values : (n_parcels, g) DataFrame
        Rows are region keys of ``setup.regions``.
    setup : ParcelSetup
    **fit_params
        Further arguments of ``fit_regions`` (e.g. ``gene_axis``).

    Returns
    -------
    The fitted clone.
    """
    return clone(estimator).fit_regions(setup.atlas_image, values, regions=setup.regions,
                                        tissue_image=setup.tissue_image, **fit_params)


def predict_parcel_means(model, setup: ParcelSetup, parcels) -> np.ndarray:
    """Mean of a continuous prediction over the evaluation voxels of each parcel.

    Returns
    -------
    (len(parcels), n_genes) array
    """
    coords, tissue, segment = setup.voxels_of(parcels)
    prediction = np.asarray(model.predict(coords, tissue=tissue), dtype=float)
    sums = np.zeros((len(parcels), prediction.shape[1]))
    np.add.at(sums, segment, prediction)
    return sums / np.bincount(segment, minlength=len(parcels))[:, None]


def check_parcel_rows(values: pd.DataFrame, setup: ParcelSetup) -> None:
    """Raise InputError unless ``values`` has the rows of ``setup.index``, in order."""
    if list(values.index) != list(setup.index):
        raise InputError("values must have the rows of setup.index, in order")


def predict_held_out_parcels(values: pd.DataFrame, setup: ParcelSetup, folds, fit,
                             label: str = "model") -> pd.DataFrame:
    """Predict every parcel of a regional table from the others.

    Parameters
    ----------
    values : (n_parcels, g) DataFrame
        Regional table, rows in the order of ``setup.index``.
    setup : ParcelSetup
    folds : list of (name, train, test)
        From :func:`parcel_folds`.
    fit : callable
        ``fit(train_values)`` returns a model fitted to the rows of a fold's training
        parcels (e.g. ``lambda train: fit_on_parcels(estimator, train, setup)``); its
        ``predict(coords, tissue=)`` is averaged over each held-out parcel's voxels.
    label : str
        Name of the model in the log.

    Returns
    -------
    (n_parcels, g) DataFrame
        Held-out predictions, indexed like ``values``.
    """
    check_parcel_rows(values, setup)
    out = np.full(values.shape, np.nan)
    for name, train, test in folds:
        out[test] = predict_parcel_means(fit(values.iloc[train]), setup, test)
        logger.info("%s %s: %d held-out parcels predicted", label, name, len(test))
    return pd.DataFrame(out, index=values.index, columns=values.columns)
