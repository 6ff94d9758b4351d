"""INR workflows: gene axis, fitting, dense maps, regional averages.

One function per user task; their keyword arguments are the whole configuration and the
``brainexpr embed | fit | predict | parcellate`` subcommands mirror them one to one.

Training data (``source``):

``"celltypes"``
    Sample level: the 8 cell-type fractions at the 3,702 AHBA sites (corrected MNI
    coordinates, tissue class from the FSL MNI152 probability maps); the gene axis runs
    over the 8 cell types.
``"regional"``
    Parcel level: the AHBA DK-83 regional table (abagen, 6 donors) for ``genes`` or a
    ``gene_set`` (default the reference study's AD genes), fitted through parcel means.
a CSV/TSV file
    Either sample level (columns ``mni_x, mni_y, mni_z``, optional ``tissue_class``, then
    one numeric column per gene) or a regional table (first column: region names of
    ``atlas``, then one column per gene).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..errors import InputError
from ..utils import atomic_path, atomic_write, staged_directory

logger = logging.getLogger(__name__)

#: Built-in training sources.
SOURCES = ("celltypes", "regional")
_COORD_COLUMNS = ("mni_x", "mni_y", "mni_z")


@dataclass
class TrainingData:
    """Values to fit and where they were measured.

    Attributes
    ----------
    kind : {"samples", "regions"}
    values : pandas.DataFrame
        Sites x genes or regions x genes.
    coords : (n, 3) array, mm, MNI152 (samples only)
    tissue : (n,) array (samples only)
    atlas : brainexpr.datasets.Atlas (regions only)
    provenance : dict
        What was loaded, saved with the model.
    """

    kind: str
    values: pd.DataFrame
    coords: np.ndarray | None = None
    tissue: np.ndarray | None = None
    atlas: object | None = None
    provenance: dict = field(default_factory=dict)


def _gene_list(genes):
    if genes is None:
        return None
    if isinstance(genes, str):
        genes = [genes]
    out = []
    for item in genes:
        out += [g.strip() for g in str(item).split(",") if g.strip()]
    if not out:
        raise InputError("genes is empty")
    return list(dict.fromkeys(out))


def load_training_data(source: str = "celltypes", genes=None, gene_set: str = "ad",
                       atlas: str = "dk83", data_dir=None) -> TrainingData:
    """Load the values an INR is fitted on (see the module docstring for ``source``).

    Parameters
    ----------
    source : {"celltypes", "regional"} or path to a CSV/TSV file
    genes : sequence of str, optional
        Genes (or cell types) to keep; unknown names raise an error listing the closest.
    gene_set : str
        ``regional`` only, when ``genes`` is not given: ``"ad"`` or ``"l1000"``.
    atlas : str
        Atlas of a regional table (``dk83`` for the built-in table).
    data_dir : path-like, optional

    Returns
    -------
    TrainingData
    """
    from ..datasets import check_genes, load_atlas, load_gene_set, load_regional_expression
    from ..datasets import load_sample_celltypes

    genes = _gene_list(genes)
    if source == "celltypes":
        samples, values = load_sample_celltypes(data_dir)
        if genes is not None:
            check_genes(genes, values.columns, "the cell-type table")
            values = values[genes]
        coords = samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy(float)
        return TrainingData("samples", values, coords, samples["tissue_class"].to_numpy(),
                            provenance={"source": "celltypes", "n_sites": len(values),
                                        "coordinates": "corrected_mni"})
    if source == "regional":
        if atlas not in ("dk83", "dk83-abagen"):
            raise InputError(f"the built-in regional table is on the DK-83 atlas; atlas must be "
                             f"'dk83' or 'dk83-abagen', got {atlas!r}")
        requested = genes if genes is not None else load_gene_set(gene_set, data_dir)
        table = load_regional_expression(requested, data_dir=data_dir,
                                         allow_missing=genes is None)
        return TrainingData("regions", table, atlas=load_atlas(atlas, data_dir),
                            provenance={"source": "regional", "atlas": atlas,
                                        "gene_set": None if genes is not None else gene_set})
    path = Path(str(source))
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise InputError(f"source must be one of {', '.join(map(repr, SOURCES))} or a .csv/.tsv "
                         f"file, got {source!r}")
    if not path.is_file():
        raise InputError(f"source file {path} does not exist")
    table = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    if all(c in table.columns for c in _COORD_COLUMNS):
        coords = table[list(_COORD_COLUMNS)].to_numpy(float)
        if not np.isfinite(coords).all():
            raise InputError(f"{path}: {int((~np.isfinite(coords)).any(axis=1).sum())} row(s) "
                             "have missing coordinates")
        check_inside_brain(coords, data_dir=data_dir, what=f"sites of {path.name}")
        values = table.drop(columns=[c for c in (*_COORD_COLUMNS, "tissue_class") if c in table])
        values = values.select_dtypes("number")
        if genes is not None:
            check_genes(genes, values.columns, str(path))
            values = values[genes]
        if "tissue_class" in table:
            tissue = table["tissue_class"].to_numpy()
        else:
            from ..atlas.tissue import tissue_class_at

            tissue = tissue_class_at(coords, data_dir=data_dir)
        return TrainingData("samples", values, coords, tissue,
                            provenance={"source": str(path), "n_sites": len(values)})
    table = table.set_index(table.columns[0])
    atlas_obj = load_atlas(atlas, data_dir)
    unknown = [r for r in table.index if r not in atlas_obj.regions.index]
    if unknown:
        raise InputError(f"{path}: {len(unknown)} row name(s) are not regions of atlas {atlas!r}: "
                         f"{', '.join(map(str, unknown[:5]))}; the first column must name regions")
    values = table.select_dtypes("number")
    if genes is not None:
        check_genes(genes, values.columns, str(path))
        values = values[genes]
    return TrainingData("regions", values, atlas=atlas_obj,
                        provenance={"source": str(path), "atlas": atlas})


def check_inside_brain(coords, tolerance_mm: float = 10.0, data_dir=None,
                       what: str = "coordinates") -> None:
    """Raise when coordinates lie far outside the MNI152 brain (wrong space or units).

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    tolerance_mm : float
        Largest accepted distance (mm) from the FSL MNI152 brain mask (the 3,702 AHBA
        sites lie within 5 mm of it).
    data_dir : path-like, optional
    what : str
        Name used in the message.
    """
    from scipy import ndimage

    from ..atlas.space import sample_image
    from ..maps import resolve_mask

    mask = resolve_mask("brain", 2, data_dir)
    outside = ~(np.asanyarray(mask.dataobj) > 0)
    distance = ndimage.distance_transform_edt(outside, sampling=2.0).astype(np.float32)
    distances = sample_image(nib.Nifti1Image(distance, mask.affine), coords, fill=np.inf)
    far = np.flatnonzero(distances > tolerance_mm)
    if len(far):
        example = np.round(np.asarray(coords)[far[0]], 1).tolist()
        raise InputError(f"{len(far)} of {len(coords)} {what} lie more than {tolerance_mm:g} mm "
                         f"outside the MNI152 brain (first: {example}); give MNI152 millimetres, "
                         "not voxel indices or native-space coordinates")


def _tissue_image_for(atlas_image, data_dir=None) -> nib.Nifti1Image:
    """Tissue class (1 grey, -1 white, 0 other) at every labelled voxel of an atlas."""
    from ..atlas.space import mask_coordinates
    from ..atlas.tissue import tissue_class_at

    ijk, coords = mask_coordinates(atlas_image, threshold=0)
    data = np.zeros(atlas_image.shape[:3], dtype=np.int8)
    data[tuple(ijk.T)] = tissue_class_at(coords, data_dir=data_dir)
    return nib.Nifti1Image(data, atlas_image.affine)


# --------------------------------------------------------------------------- embed
def embed_genes(*, source: str = "regional", genes=None, gene_set: str = "ad",
                atlas: str = "dk83", affinity: str = "shifted", correlation: str = "pearson",
                out_dir="gene_axis", figure: bool = True, data_dir=None):
    """Compute the spectral gene axis of a training source and write it with figures.

    Parameters
    ----------
    source, genes, gene_set, atlas :
        The expression table (see :func:`load_training_data`).
    affinity : {"shifted", "absolute", "positive", "gaussian"}
        See :data:`brainexpr.geneaxis.AFFINITIES`.
    correlation : {"pearson", "spearman"}
    out_dir : path-like or None
        Writes ``gene_axis.tsv`` (genes sorted along the axis: rank, position e_g,
        eigenvector), ``spectrum.tsv``, ``gene_axis.json`` (options) and, with
        ``figure``, ``gene_axis.png`` (spectrum, eigenvectors, correlation unsorted and
        sorted). ``None`` writes nothing.
    figure : bool
    data_dir : path-like, optional

    Returns
    -------
    brainexpr.geneaxis.GeneAxis
    """
    from ..geneaxis import spectral_gene_axis

    data = load_training_data(source, genes, gene_set, atlas, data_dir)
    axis = spectral_gene_axis(data.values, affinity=affinity, method=correlation)
    if out_dir is None:
        return axis
    with staged_directory(out_dir) as stage:
        axis.table().to_csv(stage / "gene_axis.tsv", sep="\t", float_format="%.6g")
        pd.DataFrame({"index": np.arange(len(axis.eigenvalues)), "eigenvalue": axis.eigenvalues}) \
            .to_csv(stage / "spectrum.tsv", sep="\t", index=False, float_format="%.6g")
        with open(stage / "gene_axis.json", "w", encoding="utf-8") as handle:
            json.dump({"source": data.provenance, "affinity": affinity, "correlation": correlation,
                       "n_genes": len(axis.genes), "n_rows": int(data.values.shape[0]),
                       "eigenvalue": axis.eigenvalue, "scale": list(axis.scale),
                       "order": axis.order}, handle, indent=1)
        if figure:
            from ..geneaxis.figures import plot_gene_axis
            import matplotlib.pyplot as plt

            fig = plot_gene_axis(axis, stage / "gene_axis.png")
            plt.close(fig)
    logger.info("gene axis of %d genes written to %s", len(axis.genes), out_dir)
    return axis


# --------------------------------------------------------------------------- fit
def fit_model(*, source: str = "celltypes", genes=None, gene_set: str = "ad", atlas: str = "dk83",
              model: str = "factorized", out="model.pt", affinity: str = "shifted",
              n_layers: int = 12, hidden_features: int = 512, omega_0: float | None = None,
              n_frequencies: int = 10, n_features: int = 64, gene_hidden: int = 64,
              gene_layers: int = 2, learning_rate: float = 1e-4, max_steps: int = 5000,
              batch_size: int | None = None, validation_fraction: float = 0.1,
              validation_block_mm: float = 20.0, eval_every: int = 50, patience: int = 20,
              value_scaling: str = "standard", parcel_samples: int | None = 32,
              n_ensemble: int = 1, device: str = "auto", random_state: int | None = 0,
              checkpoint_every: int = 500, resume: bool = False, data_dir=None):
    """Fit an INR to a training source and save it as one checkpoint file.

    Parameters
    ----------
    source, genes, gene_set, atlas :
        Training data (see :func:`load_training_data`).
    model : {"factorized", "paper", "per_gene"}
        Network design (:mod:`brainexpr.models.registry`).
    out : path-like
        Model file (written during training, so ``resume`` can continue it), plus a
        ``.json`` summary beside it.
    affinity : str
        Affinity of the gene axis (:func:`brainexpr.geneaxis.spectral_gene_axis`).
    n_layers ... checkpoint_every, resume :
        Parameters of :class:`brainexpr.models.inr.INRRegressor` (the defaults are the
        paper's 12 x 512 network, lr 1e-4, 5000 steps; on a CPU use smaller settings,
        e.g. ``n_layers=4, hidden_features=128, learning_rate=1e-3, max_steps=1000``).
    data_dir : path-like, optional

    Returns
    -------
    INRRegressor
        The fitted model.
    """
    from ..geneaxis import spectral_gene_axis
    from ..models.registry import INR_MODELS, make_model

    if model not in INR_MODELS:
        raise InputError(f"model must be one of {', '.join(map(repr, INR_MODELS))}, got {model!r}")
    data = load_training_data(source, genes, gene_set, atlas, data_dir)
    estimator = make_model(
        model, n_layers=n_layers, hidden_features=hidden_features, omega_0=omega_0,
        n_frequencies=n_frequencies, n_features=n_features, gene_hidden=gene_hidden,
        gene_layers=gene_layers, learning_rate=learning_rate, max_steps=max_steps,
        batch_size=batch_size, validation_fraction=validation_fraction,
        validation_block_mm=validation_block_mm, eval_every=eval_every, patience=patience,
        value_scaling=value_scaling, parcel_samples=parcel_samples, n_ensemble=n_ensemble,
        device=device, random_state=random_state, checkpoint_path=str(out),
        checkpoint_every=checkpoint_every, resume=resume)
    estimator._check_params()
    gene_axis = None
    if model != "per_gene" and data.values.shape[1] > 1:
        gene_axis = spectral_gene_axis(data.values, affinity=affinity)
    estimator.provenance_ = dict(data.provenance, affinity=affinity,
                                 genes=list(map(str, data.values.columns)))
    logger.info("fitting %s on %s: %d %s x %d genes", model, data.provenance.get("source"),
                data.values.shape[0], "sites" if data.kind == "samples" else "regions",
                data.values.shape[1])
    if data.kind == "samples":
        estimator.fit(data.coords, data.values, tissue=data.tissue, gene_axis=gene_axis)
    else:
        tissue_image = _tissue_image_for(data.atlas.image, data_dir)
        estimator.fit_regions(data.atlas.image, data.values, regions=data.atlas.regions,
                              tissue_image=tissue_image, gene_axis=gene_axis)
    estimator.save(out)
    with atomic_write(Path(out).with_suffix(".json")) as handle:
        json.dump(dict(estimator.summary(), provenance=estimator.provenance_), handle, indent=1,
                  default=str)
    logger.info("model written to %s", out)
    return estimator


# --------------------------------------------------------------------------- predict
def _load(model, device):
    from ..models.inr import INRRegressor

    if isinstance(model, INRRegressor):
        return copy.deepcopy(model)  # genes placed for this call do not change the caller's model
    from ..models.checkpoint import load_model

    return load_model(model, device=device)


def _resolve_genes(estimator, genes, data_dir=None) -> list[str]:
    """Genes of the request; genes outside the model are placed on its gene axis when the
    model was fitted on the regional table (their regional profiles are then known)."""
    from ..datasets import check_genes, load_regional_expression

    genes = _gene_list(genes)
    if genes is None:
        return list(estimator.genes_)
    known = set(estimator.genes_)
    new = [g for g in genes if g not in known]
    if not new:
        return genes
    provenance = getattr(estimator, "provenance_", {}) or {}
    info = getattr(estimator, "gene_axis_info_", None)
    if provenance.get("source") != "regional" or info is None or info.reference is None:
        check_genes(genes, estimator.genes_, "the model")  # raises, naming the closest genes
    table = load_regional_expression(new, data_dir=data_dir)  # raises for unknown genes
    estimator.add_genes(table.loc[info.reference.index])
    return genes


def predict_maps(*, model="model.pt", genes=None, resolution: int | None = 2, mask: str = "brain",
                 out_dir="maps", stack: bool = False, std: bool = False, compress: bool = True,
                 chunk_size: int | None = None, device: str | None = None,
                 precision: str = "fp32", data_dir=None) -> list[Path]:
    """Write dense NIfTI maps of genes predicted by a fitted model.

    Parameters
    ----------
    model : path-like or INRRegressor
        Model file written by :func:`fit_model`.
    genes : sequence of str, optional
        Genes to map (default all of the model). Genes outside a model fitted on the
        regional table are placed on its gene axis from their regional profiles.
    resolution : {1, 2} or None
        MNI152 grid (mm); ``None`` keeps the mask's own grid.
    mask : str or path
        ``brain``, ``dk83``, ``dk83-abagen``, ``brainnetome246`` or a NIfTI mask.
    out_dir : path-like
        Output folder (``maps.tsv`` lists the files).
    stack : bool
        One 4-D file instead of one file per gene.
    std : bool
        Also write ensemble standard-deviation maps (models with ``n_ensemble >= 2``).
    compress : bool
        Write ``.nii.gz`` (default) or ``.nii``.
    chunk_size : int, optional
        Voxels per network pass.
    device : str, optional
        Overrides the device saved with the model (``auto``, ``cpu``, ``cuda``).
    precision : {"fp32", "tf32", "bf16"}
        GPU prediction precision (checked against fp32).
    data_dir : path-like, optional

    Returns
    -------
    list of Path
    """
    from ..maps import write_maps
    from ..models.inr import PRECISIONS

    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got "
                         f"{precision!r}")
    estimator = _load(model, device)
    estimator.precision = precision
    selected = _resolve_genes(estimator, genes, data_dir)
    return write_maps(estimator, selected, mask=mask, resolution=resolution, out_dir=out_dir,
                      stack=stack, std=std, compress=compress, chunk_size=chunk_size,
                      model_name=estimator.design, data_dir=data_dir)


# --------------------------------------------------------------------------- parcellate
def parcellate_maps(*, model="model.pt", atlas: str = "dk83", genes=None, out="regional.csv",
                    compare: bool = True, device: str | None = None, data_dir=None):
    """Average a model's dense maps within the parcels of an atlas and write a CSV.

    Parameters
    ----------
    model : path-like or INRRegressor
    atlas : {"dk83", "dk83-abagen", "brainnetome246"}
    genes : sequence of str, optional
        Default all genes of the model (genes outside it as in :func:`predict_maps`).
    out : path-like
        CSV of regions (rows, atlas region names) x genes.
    compare : bool
        For DK-83 atlases and genes of the AHBA regional table, also write
        ``<out>_comparison.csv``: per gene the Pearson r of the continuous map with the
        painted table within the brain mask (``r_voxel``), of its regional averages
        (``r_voxel_regional``, ``r_regional``) and the voxel MSE.
    device : str, optional
    data_dir : path-like, optional

    Returns
    -------
    means : pandas.DataFrame
    comparison : pandas.DataFrame or None
    """
    from ..datasets import ATLASES, load_atlas, load_regional_expression
    from ..maps import parcellate_model

    if atlas not in ATLASES:
        raise InputError(f"atlas must be one of {', '.join(map(repr, ATLASES))}, got {atlas!r}")
    estimator = _load(model, device)
    selected = _resolve_genes(estimator, genes, data_dir)
    atlas_obj = load_atlas(atlas, data_dir)
    table = None
    if compare and atlas in ("dk83", "dk83-abagen"):
        full = load_regional_expression(data_dir=data_dir)
        present = [g for g in selected if g in full.columns]
        if present:
            table = full[present]
        else:
            logger.info("no gene of the model is in the regional table: no comparison")
    means, comparison = parcellate_model(estimator, atlas_obj.image, atlas_obj.regions, selected,
                                         table=table, data_dir=data_dir)
    out = Path(out)
    with atomic_path(out) as tmp:
        means.to_csv(tmp, float_format="%.6g")
    if comparison is not None:
        with atomic_path(out.with_name(out.stem + "_comparison.csv")) as tmp:
            comparison.to_csv(tmp, float_format="%.6g")
    logger.info("regional averages of %d genes on %s written to %s", means.shape[1], atlas, out)
    return means, comparison
