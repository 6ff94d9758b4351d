"""Held-out comparison of the fitters that turn a regional table into a continuous map.

Benchmark code, not part of the package: ``benchmarks/parcel_fits.py`` and the ``choice``
part of ``benchmarks/bench_atlas.py`` import it (``import parcel_scoring as P``). It builds
on the leave-parcels-out cross-validation that ships in the package
(:mod:`brainexpr.evaluation.parcel_cv`: :func:`parcel_folds`, :func:`parcel_setup`,
:func:`predict_held_out_parcels`), and adds the baselines, the INR of ``brainexpr run``,
the fold groups by lobe and the map scores.

A regional table (parcels x genes, e.g. the abagen DK-83 table) can become a continuous
map by :meth:`brainexpr.models.inr.INRRegressor.fit_regions` (the factorized SIREN of
``brainexpr run``) or by :class:`brainexpr.models.parcel.ParcelKrigingRegressor` (block
kriging). This module scores them, next to two trivial baselines, on what was not fitted:

* **leave-parcels-out** (:func:`leave_parcels_out`): whole parcels are held out (random
  folds, or folds of whole lobes per hemisphere, :func:`lobe_groups`, since neighbouring
  parcels leak); each method is fitted on the other parcels and the held-out parcel's
  value is predicted as the mean of the continuous prediction over its voxels (a fixed
  random subset of at most ``max_voxels``). Scores are per gene, across the held-out
  parcels pooled over folds (:func:`brainexpr.evaluation.metrics.gene_metrics`).
* **map vs truth** (:func:`score_map`): with a phantom's true voxel fields, the map fitted
  on all parcels is compared with the truth inside the brain mask (per-gene voxel r),
  also split into voxels inside the atlas parcels and outside them (white matter,
  ventricles, which no parcel covers).

Baselines: ``neighbour-average`` (a held-out parcel gets the mean of its adjacent
training parcels, those sharing a voxel face, else of its 3 nearest training parcels by
centroid); ``global-mean`` (each gene's mean over the training parcels); for maps,
``painted`` (every voxel takes the value of its nearest labelled voxel's parcel).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainexpr.docstrings import fill_doc
from brainexpr.errors import InputError
from brainexpr.evaluation import metrics as M
from brainexpr.evaluation.parcel_cv import (ParcelSetup, check_parcel_rows, fit_on_parcels,
                                            parcel_folds, predict_held_out_parcels)
from brainexpr.evaluation.parcel_cv import parcel_setup as _cv_setup
from brainexpr.utils import check_random_state

__all__ = ["DK_LOBES", "PARCEL_METHODS", "RUN_INR_PARAMS", "BaselineSetup", "fit_parcel_model",
           "gene_scores", "leave_parcels_out", "lobe_groups", "map_points", "neighbour_average",
           "painted_map", "parcel_adjacency", "parcel_folds", "parcel_setup", "score_map",
           "summarise_scores"]

logger = logging.getLogger(__name__)

#: Lobe of every Desikan-Killiany label (abagen's DK-83 labels; subcortex and brainstem
#: form one group).
DK_LOBES = {
    **dict.fromkeys(("superiorfrontal", "rostralmiddlefrontal", "caudalmiddlefrontal",
                     "parsopercularis", "parstriangularis", "parsorbitalis",
                     "lateralorbitofrontal", "medialorbitofrontal", "precentral",
                     "paracentral", "frontalpole"), "frontal"),
    **dict.fromkeys(("superiorparietal", "inferiorparietal", "supramarginal", "postcentral",
                     "precuneus"), "parietal"),
    **dict.fromkeys(("superiortemporal", "middletemporal", "inferiortemporal", "bankssts",
                     "fusiform", "transversetemporal", "entorhinal", "temporalpole",
                     "parahippocampal"), "temporal"),
    **dict.fromkeys(("lateraloccipital", "lingual", "cuneus", "pericalcarine"), "occipital"),
    **dict.fromkeys(("rostralanteriorcingulate", "caudalanteriorcingulate",
                     "posteriorcingulate", "isthmuscingulate", "insula"), "cingulate-insula"),
    **dict.fromkeys(("thalamusproper", "thalamus", "caudate", "putamen", "pallidum",
                     "accumbensarea", "accumbens", "hippocampus", "amygdala", "brainstem"),
                    "subcortex"),
}

#: Parcel-level methods of :func:`leave_parcels_out`.
PARCEL_METHODS = ("parcel-kriging", "inr", "neighbour-average", "global-mean")

#: Settings of the INR as ``brainexpr run`` fits a regional table (run_main defaults,
#: fit_model defaults for the rest), one ensemble member.
RUN_INR_PARAMS = dict(design="factorized", n_layers=4, hidden_features=128, n_features=64,
                      omega_0=None, n_frequencies=10, learning_rate=1e-3, max_steps=1500,
                      validation_fraction=0.0, n_ensemble=1, parcel_samples=32,
                      value_scaling="standard", random_state=0)


def lobe_groups(regions) -> pd.Series:
    """Lobe and hemisphere of every DK region (``L_frontal``, ..., ``B_subcortex``).

    Parameters
    ----------
    regions : pandas.DataFrame
        Atlas table with columns ``label`` and ``hemisphere`` (the DK-83 table of
        :func:`brainexpr.datasets.load_atlas`).

    Returns
    -------
    pandas.Series of str, indexed like ``regions``.
    """
    unknown = sorted(set(regions["label"]) - set(DK_LOBES))
    if unknown:
        raise InputError(f"labels without a lobe (not a Desikan-Killiany atlas?): "
                         f"{', '.join(map(str, unknown[:5]))}")
    lobes = regions["label"].map(DK_LOBES)
    return regions["hemisphere"].astype(str).str.cat(lobes, sep="_")



def parcel_adjacency(atlas_image, ids) -> np.ndarray:
    """Parcels that touch: some voxel of one shares a face with a voxel of the other.

    Parameters
    ----------
    atlas_image : nibabel.Nifti1Image
        Integer labels (0 = background).
    ids : (n,) int array
        Parcel ids, in the order of the result.

    Returns
    -------
    (n, n) bool array, symmetric, False on the diagonal.
    """
    labels = np.asarray(atlas_image.dataobj).astype(np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    lookup = np.full(max(int(labels.max()), int(ids.max())) + 1, -1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    rows = lookup[np.clip(labels, 0, None)]
    rows[labels <= 0] = -1
    adjacency = np.zeros((len(ids), len(ids)), dtype=bool)
    for axis in range(3):
        a = np.moveaxis(rows, axis, 0)[:-1].ravel()
        b = np.moveaxis(rows, axis, 0)[1:].ravel()
        touch = (a >= 0) & (b >= 0) & (a != b)
        adjacency[a[touch], b[touch]] = True
    adjacency |= adjacency.T
    return adjacency


@dataclass
class BaselineSetup(ParcelSetup):
    """A :class:`~brainexpr.evaluation.parcel_cv.ParcelSetup` with what the
    ``neighbour-average`` baseline needs.

    Attributes
    ----------
    centroids : (n_parcels, 3) array, mm
        Centre of all voxels of each parcel.
    adjacency : (n_parcels, n_parcels) bool array
        :func:`parcel_adjacency`.
    """

    centroids: np.ndarray = None
    adjacency: np.ndarray = field(default=None, repr=False)


def parcel_setup(atlas_image, regions, index, tissue_image=None, max_voxels: int = 1000,
                 random_state=0) -> BaselineSetup:
    """:func:`brainexpr.evaluation.parcel_cv.parcel_setup` plus the parcels' centroids and
    adjacency (same arguments)."""
    from brainexpr.models.base import parcel_voxels

    setup = _cv_setup(atlas_image, regions, index, tissue_image, max_voxels, random_state)
    ids = regions.loc[setup.index, "id"].to_numpy(np.int64)
    coords, offsets, _ = parcel_voxels(atlas_image, ids)
    centroids = np.add.reduceat(coords, offsets[:-1], axis=0) / np.diff(offsets)[:, None]
    return BaselineSetup(**vars(setup), centroids=centroids,
                         adjacency=parcel_adjacency(atlas_image, ids))


def neighbour_average(train_values, train, test, adjacency, centroids, k: int = 3) -> np.ndarray:
    """Each test parcel gets the mean of its adjacent training parcels (else the ``k``
    nearest by centroid).

    Parameters
    ----------
    train_values : (n_train, g) array
    train, test : int arrays
        Positions of the training and test parcels.
    adjacency : (n, n) bool array
    centroids : (n, 3) array, mm
    k : int

    Returns
    -------
    (n_test, g) array
    """
    train_values = np.asarray(train_values, dtype=float)
    out = np.empty((len(test), train_values.shape[1]))
    for row, parcel in enumerate(test):
        chosen = np.flatnonzero(adjacency[parcel, train])
        if len(chosen) == 0:
            distance = np.linalg.norm(centroids[train] - centroids[parcel], axis=1)
            chosen = np.argsort(distance)[:k]
        out[row] = np.nanmean(train_values[chosen], axis=0)
    return out


def fit_parcel_model(method: str, values: pd.DataFrame, setup: ParcelSetup,
                     kriging_params: dict | None = None, inr_params: dict | None = None):
    """Fit a continuous-map method to a regional table.

    Parameters
    ----------
    method : {"parcel-kriging", "inr"}
    values : (n_parcels, g) DataFrame
        Rows are region keys of ``setup.regions``.
    setup : ParcelSetup
    kriging_params, inr_params : dict, optional
        Parameters of :class:`~brainexpr.models.parcel.ParcelKrigingRegressor` and of the
        INR (default :data:`RUN_INR_PARAMS`, with the gene axis of ``brainexpr run``:
        the spectral axis of ``values``, shifted affinity).

    Returns
    -------
    The fitted estimator.
    """
    if method == "parcel-kriging":
        from brainexpr.models.parcel import ParcelKrigingRegressor

        return fit_on_parcels(ParcelKrigingRegressor(**(kriging_params or {})), values, setup)
    if method == "inr":
        from brainexpr.geneaxis import spectral_gene_axis
        from brainexpr.models.inr import INRRegressor

        params = dict(RUN_INR_PARAMS, **(inr_params or {}))
        gene_axis = (spectral_gene_axis(values, affinity="shifted")
                     if values.shape[1] > 1 and params["design"] != "per_gene"
                     and params.get("gene_embedding", "axis") == "axis" else None)
        return fit_on_parcels(INRRegressor(**params), values, setup, gene_axis=gene_axis)
    raise InputError(f"method must be 'parcel-kriging' or 'inr', got {method!r}")


def leave_parcels_out(values: pd.DataFrame, setup: BaselineSetup, folds, methods=PARCEL_METHODS,
                      method_params: dict | None = None) -> tuple[dict, dict]:
    """Predict every parcel of a regional table from the others, by every method.

    Parameters
    ----------
    values, folds :
        As :func:`brainexpr.evaluation.parcel_cv.predict_held_out_parcels`.
    setup : BaselineSetup
    methods : sequence of str
        Names of :data:`PARCEL_METHODS`, or ``"label"`` keys of ``method_params``.
    method_params : dict, optional
        ``label -> (method, params)`` for variants (e.g. a kriging with other settings);
        ``params`` go to the kriging or, for ``"inr"``, to the INR.

    Returns
    -------
    predictions : dict
        method -> (n_parcels, g) DataFrame of held-out predictions.
    seconds : dict
        method -> fit and prediction time summed over folds (s).
    """
    check_parcel_rows(values, setup)
    method_params = dict(method_params or {})
    predictions, seconds = {}, {}
    array = values.to_numpy(float)
    for label in methods:
        method, params = method_params.get(label, (label, None))
        if method not in PARCEL_METHODS:
            raise InputError(f"unknown method {method!r}; use one of {', '.join(PARCEL_METHODS)}")
        start = time.perf_counter()
        if method in ("parcel-kriging", "inr"):
            def fit(train, method=method, params=params):
                return fit_parcel_model(method, train, setup,
                                        kriging_params=params if method != "inr" else None,
                                        inr_params=params if method == "inr" else None)

            predictions[label] = predict_held_out_parcels(values, setup, folds, fit, label=label)
        else:
            out = np.full(array.shape, np.nan)
            for name, train, test in folds:
                out[test] = (np.nanmean(array[train], axis=0) if method == "global-mean" else
                             neighbour_average(array[train], train, test, setup.adjacency,
                                               setup.centroids))
                logger.info("%s %s: %d held-out parcels predicted", label, name, len(test))
            predictions[label] = pd.DataFrame(out, index=values.index, columns=values.columns)
        seconds[label] = time.perf_counter() - start
    return predictions, seconds


def summarise_scores(predictions: dict, truth: pd.DataFrame, reference: str | None = None,
                     seconds: dict | None = None) -> pd.DataFrame:
    """Per-method summary of per-gene scores across parcels.

    Parameters
    ----------
    predictions : dict
        method -> (n_parcels, g) DataFrame.
    truth : (n_parcels, g) DataFrame
        Reference values (the observed table, or a phantom's true parcel means).
    reference : str, optional
        Method to count per-gene wins against (``wins`` = genes with a higher r).
    seconds : dict, optional
        method -> seconds, added as a column.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``mean_r``, ``median_r``, ``mean_r2``, ``median_r2``,
        ``n_genes`` (and ``wins_vs_<reference>``, ``seconds``).
    """
    per_gene = {m: M.gene_metrics(p.to_numpy(float), truth.to_numpy(float), truth.columns)
                for m, p in predictions.items()}
    rows = {}
    for method, table in per_gene.items():
        row = {"mean_r": table["pearson"].mean(), "median_r": table["pearson"].median(),
               "mean_r2": table["r2"].mean(), "median_r2": table["r2"].median(),
               "n_genes": int(table["pearson"].notna().sum())}
        if reference is not None and reference in per_gene and method != reference:
            row[f"wins_vs_{reference}"] = int(
                (table["pearson"] > per_gene[reference]["pearson"]).sum())
        if seconds is not None and method in seconds:
            row["seconds"] = seconds[method]
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def gene_scores(predictions: dict, truth: pd.DataFrame) -> pd.DataFrame:
    """Long table of per-gene scores: columns ``method``, ``gene``, ``pearson``, ``r2``."""
    frames = []
    for method, prediction in predictions.items():
        table = M.gene_metrics(prediction.to_numpy(float), truth.to_numpy(float), truth.columns)
        frames.append(table[["pearson", "r2"]].rename_axis("gene").reset_index()
                      .assign(method=method))
    return pd.concat(frames, ignore_index=True)[["method", "gene", "pearson", "r2"]]


# --------------------------------------------------------------------------- maps
@fill_doc
def map_points(atlas_image, n_points: int | None = None, resolution: int = 2, random_state=0,
               data_dir=None):
    """Brain-mask voxels to score maps on, their tissue class and whether a parcel covers them.

    Parameters
    ----------
    atlas_image : nibabel.Nifti1Image
        Labels that say which points lie inside a parcel (nearest atlas voxel).
    n_points : int, optional
        A random subset of this many voxels (default: every voxel of the mask).
    resolution : {1, 2}
        Grid of the FSL MNI152 brain mask (mm).
    random_state : int or Generator, optional
    %(data_dir)s

    Returns
    -------
    coords : (n, 3) array, mm
    tissue : (n,) float array in {1, -1, 0}
    label : (n,) int array
        Atlas label at each point (0 = no parcel).
    """
    from brainexpr.atlas.space import mni_grid, mni_to_voxel, voxel_to_mni
    from brainexpr.atlas.tissue import tissue_class_at
    from brainexpr.evaluation.phantom import brain_mask

    ijk = np.argwhere(brain_mask(resolution, data_dir))
    if n_points is not None and n_points < len(ijk):
        rng = check_random_state(random_state)
        ijk = ijk[np.sort(rng.choice(len(ijk), size=int(n_points), replace=False))]
    _, affine = mni_grid(resolution)
    coords = voxel_to_mni(ijk, affine)
    tissue = tissue_class_at(coords, data_dir=data_dir).astype(float)
    labels = np.asarray(atlas_image.dataobj)
    voxel = np.clip(mni_to_voxel(coords, atlas_image.affine), 0, np.array(labels.shape) - 1)
    return coords, tissue, labels[tuple(voxel.T)].astype(np.int64)


def painted_map(values: pd.DataFrame, regions: pd.DataFrame, atlas_image, coords) -> np.ndarray:
    """The regional values painted on the atlas and extended to every voxel by its nearest
    labelled voxel (a piecewise-constant map).

    Returns
    -------
    (n_points, g) array; NaN where the nearest parcel has no row in ``values``.
    """
    from scipy import ndimage

    from brainexpr.atlas.space import mni_to_voxel

    labels = np.asarray(atlas_image.dataobj).astype(np.int64)
    voxel = np.clip(mni_to_voxel(coords, atlas_image.affine), 0, np.array(labels.shape) - 1)
    _, nearest = ndimage.distance_transform_edt(labels <= 0, return_indices=True)
    label = labels[tuple(nearest[:, voxel[:, 0], voxel[:, 1], voxel[:, 2]])]
    row_of = pd.Series(np.arange(len(values)), index=regions.loc[values.index, "id"].to_numpy())
    rows = row_of.reindex(label).to_numpy()
    out = np.full((len(coords), values.shape[1]), np.nan)
    found = np.isfinite(rows)
    out[found] = values.to_numpy(float)[rows[found].astype(int)]
    return out


def score_map(prediction, truth, label) -> pd.DataFrame:
    """Per-gene voxel Pearson r of a map against the truth: all points, inside the atlas
    parcels (``label > 0``) and outside them.

    Returns
    -------
    pandas.DataFrame
        Columns ``r_all``, ``r_parcels``, ``r_outside`` (one row per gene).
    """
    inside = np.asarray(label) > 0
    prediction, truth = np.asarray(prediction, dtype=float), np.asarray(truth, dtype=float)
    return pd.DataFrame({
        "r_all": M.pearson_columns(prediction, truth),
        "r_parcels": M.pearson_columns(prediction[inside], truth[inside]),
        "r_outside": M.pearson_columns(prediction[~inside], truth[~inside]),
    })
