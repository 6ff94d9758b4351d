"""Model workflows, for every registered model: training data, gene axis, fit, maps, regions.

:func:`load_training_data` reads a source; :func:`embed_genes` computes its gene axis;
:func:`fit_model` fits any model of :func:`brainexpr.models.registry.workflow_models`
(INRs, kriging, baselines) and saves one model file; :func:`predict_maps` writes the
fitted model's dense maps and :func:`parcellate_maps` their regional averages. One
function per user task; their keyword arguments are the whole configuration and the
``brainexpr embed | fit | predict | parcellate`` subcommands mirror them one to one.

Training data (``source``):

``"celltypes"``
    Sample level: the 8 cell-type fractions at the 3,702 AHBA sites (corrected MNI
    coordinates, tissue class from the FSL MNI152 probability maps, donor of each site);
    the gene axis runs over the 8 cell types.
``"regional"``
    Parcel level: the AHBA DK-83 regional table (abagen, 6 donors) for ``genes`` or a
    ``gene_set`` (default the reference study's AD genes), fitted through parcel means.
a CSV/TSV file
    Either sample level (columns ``mni_x, mni_y, mni_z``, optional ``tissue_class`` and
    ``donor``, then one numeric column per gene) or a regional table (first column: region
    names of ``atlas``, then one column per gene).
a ``brainexpr ahba`` output folder
    Sample level: its sample x gene matrix (memory-mapped, no table round trip), the
    sample coordinates, tissue class and donors (mirrored copies as pseudo-donors); all
    its genes with ``gene_set="all"``, else ``genes`` or the ``gene_set`` genes it holds.

Models (``model``): ``"auto"`` (the default) picks by the kind of data, from the held-out
benchmark (:data:`brainexpr.models.registry.AUTO_MODELS` holds the choice and its evidence):
``donor-kriging`` for sample sites, the factorized INR ensemble for parcel means. Any
model of :func:`brainexpr.models.registry.workflow_models` can be named instead; those
that do not fit parcel means (``capabilities.parcel_means``) fit sample sources only.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..maps.dense import model_genes
from ..outputs import (check_output_file, check_output_folder, output_folder,
                       record_output_file)
from ..utils import atomic_path, atomic_write

logger = logging.getLogger(__name__)

#: Built-in training sources.
SOURCES = ("celltypes", "regional")
#: File of :func:`embed_genes` that holds the gene axis at full precision (what
#: :func:`fit_model` reads with ``gene_axis=``; ``gene_axis.tsv`` is rounded for reading).
AXIS_STATE_FILE = "gene_axis_state.json"
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
    donors : (n,) array of str or None
        Donor of each site (samples only, when the source has them).
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
    donors: np.ndarray | None = None


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


def _source_file(source) -> Path:
    """The CSV/TSV file of a ``source`` that is not a built-in name (checked)."""
    path = Path(str(source))
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        check_choice(source, SOURCES, "source",
                     or_else="a .csv/.tsv file or a 'brainexpr ahba' output folder")
    if not path.is_file():
        raise InputError(f"source file {path} does not exist")
    return path


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def source_kind(source) -> str:
    """Whether a training source holds sample sites or parcel means, without loading it.

    Parameters
    ----------
    source : str or path-like
        As :func:`load_training_data`.

    Returns
    -------
    {"samples", "regions"}
        A CSV is sample level when it has the columns ``mni_x, mni_y, mni_z``.
    """
    if source == "celltypes" or Path(str(source)).is_dir():
        return "samples"
    if source == "regional":
        return "regions"
    return _source_kind_of(_read_source(_source_file(source)), _source_file(source))


def _read_source(path: Path) -> pd.DataFrame:
    from ..datasets.validate import read_user_table

    return read_user_table(path, "training table", sep=_separator(path))


def _source_kind_of(table: pd.DataFrame, path: Path) -> str:
    """``"samples"`` with all of ``mni_x, mni_y, mni_z``; some of them is an error."""
    present = [c for c in _COORD_COLUMNS if c in table.columns]
    if present and len(present) < len(_COORD_COLUMNS):
        missing = [c for c in _COORD_COLUMNS if c not in table.columns]
        raise InputError(f"{path} has {', '.join(present)} but no {', '.join(missing)}; a sample "
                         "table needs all of mni_x, mni_y, mni_z (MNI152 mm)")
    return "samples" if present else "regions"


def _donor_labels(column: pd.Series, what: str) -> np.ndarray:
    if column.isna().any():
        raise InputError(f"{what}: {int(column.isna().sum())} row(s) have no donor; give every "
                         "site its donor or drop the donor column")
    return column.astype(str).to_numpy()


@fill_doc
def load_training_data(source: str = "celltypes", genes=None, gene_set: str = "ad",
                       atlas: str = "dk83", data_dir=None) -> TrainingData:
    """Load the values a model is fitted on (see the module docstring for ``source``).

    Parameters
    ----------
    source : {"celltypes", "regional"}, path to a CSV/TSV file or a ``brainexpr ahba`` folder
    genes : sequence of str, optional
        Genes (or cell types) to keep; unknown names raise an error listing the closest.
    gene_set : str
        ``regional`` and ``brainexpr ahba`` folders, when ``genes`` is not given: ``"ad"``
        or ``"l1000"`` (a folder also takes ``"all"``: every gene it holds).
    atlas : str
        Atlas of a regional table (``dk83`` for the built-in table).
    %(data_dir)s

    Returns
    -------
    TrainingData
    """
    from ..atlas.tissue import with_tissue_class
    from ..datasets import check_genes, load_atlas, load_gene_set, load_regional_expression
    from ..datasets import load_sample_celltypes

    genes = _gene_list(genes)
    if source == "celltypes":
        samples, values = load_sample_celltypes(data_dir)
        samples = with_tissue_class(samples, data_dir)
        if genes is not None:
            check_genes(genes, values.columns, "the cell-type table")
            values = values[genes]
        coords = samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy(float)
        donors = _donor_labels(samples["donor"], "the cell-type sample table")
        return TrainingData("samples", values, coords, samples["tissue_class"].to_numpy(),
                            provenance={"source": "celltypes", "n_sites": len(values),
                                        "coordinates": "corrected_mni",
                                        "n_donors": len(set(donors))},
                            donors=donors)
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
    if Path(str(source)).is_dir():
        return processed_training_data(source, genes, gene_set, data_dir)
    from ..datasets.validate import numeric_columns, text_columns

    path = _source_file(source)
    table = _read_source(path)
    if _source_kind_of(table, path) == "samples":
        coords = numeric_columns(table, _COORD_COLUMNS, path, "coordinate column", limit=1000,
                                 allow_missing=False).to_numpy(float)
        check_inside_brain(coords, data_dir=data_dir, what=f"sites of {path.name}")
        columns = [c for c in table.columns if c not in (*_COORD_COLUMNS, "tissue_class", "donor")]
        labels = text_columns(table, columns)
        if labels:
            logger.warning("%s: ignoring column(s) without numbers: %s", path,
                           ", ".join(labels[:10]))
        values = numeric_columns(table, [c for c in columns if c not in labels], path,
                                 "gene column")
        if values.shape[1] == 0:
            raise InputError(f"{path} has no gene column with numbers; after mni_x, mni_y, "
                             "mni_z give one numeric column per gene")
        if genes is not None:
            check_genes(genes, values.columns, str(path))
            values = values[genes]
        if "tissue_class" in table:
            tissue = numeric_columns(table, ["tissue_class"], path, "tissue_class column",
                                     limit=1, allow_missing=False)["tissue_class"].to_numpy(int)
        else:
            from ..atlas.tissue import tissue_class_at

            tissue = tissue_class_at(coords, data_dir=data_dir)
        donors = _donor_labels(table["donor"], str(path)) if "donor" in table else None
        provenance = {"source": str(path), "n_sites": len(values)}
        if donors is not None:
            provenance["n_donors"] = len(set(donors))
        return TrainingData("samples", values, coords, tissue, provenance=provenance,
                            donors=donors)
    from ..datasets.loaders import read_region_table

    table = read_region_table(path, "regional table")
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


@fill_doc
def processed_training_data(folder, genes=None, gene_set: str = "all",
                            data_dir=None) -> TrainingData:
    """Sample-level training data of a ``brainexpr ahba`` output folder.

    Parameters
    ----------
    folder : path-like
        Written by ``brainexpr ahba`` (:func:`brainexpr.ahba.load_processed`).
    genes : sequence of str, optional
        Genes to keep (unknown ones raise, naming the closest).
    gene_set : {"all", "ad", "ad114", "l1000"}
        Without ``genes``: every gene of the folder, or those of a gene set it holds.
    %(data_dir)s

    Returns
    -------
    TrainingData
        Sites x genes (float32 values); donors are the folder's donor labels, mirrored
        copies of samples (``brainexpr ahba --lr-mirror``) labelled as pseudo-donors
        ``"{donor}-mirrored"``, as donor kriging treats them.
    """
    from ..ahba import load_processed
    from ..datasets import load_gene_set

    processed = load_processed(folder)
    genes = _gene_list(genes)
    named = genes is not None  # else the gene set chooses (recorded in the provenance)
    if genes is None and gene_set != "all":
        wanted = load_gene_set(gene_set, data_dir)
        present = set(processed.genes.index)
        genes = [g for g in wanted if g in present]
        if not genes:
            raise InputError(f"none of the {gene_set!r} genes is in {folder}")
        if len(genes) < len(wanted):
            absent = [g for g in wanted if g not in present]
            logger.warning("%d of the %d %r genes are not in %s and are left out: %s",
                           len(absent), len(wanted), gene_set, folder,
                           ", ".join(absent[:20]) + (" ..." if len(absent) > 20 else ""))
    coords, values, tissue = processed.training_data(genes)
    donors = processed.samples["donor"].astype(str).to_numpy()
    if "mirrored" in processed.samples:
        mirrored = processed.samples["mirrored"].fillna(False).astype(bool).to_numpy()
        donors = np.array([f"{d}-mirrored" if m else d for d, m in zip(donors, mirrored)])
    return TrainingData("samples", values, coords, tissue, donors=donors,
                        provenance={"source": str(folder), "n_sites": len(values),
                                    "n_donors": len(set(donors)),
                                    "gene_set": None if named else gene_set})


@fill_doc
def check_inside_brain(coords, tolerance_mm: float = 10.0, data_dir=None,
                       what: str = "coordinates") -> None:
    """Raise when coordinates lie far outside the MNI152 brain (wrong space or units).

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    tolerance_mm : float
        Largest accepted distance (mm) from the FSL MNI152 brain mask (the 3,702 AHBA
        sites lie within 5 mm of it).
    %(data_dir)s
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
@fill_doc
def embed_genes(*, source: str = "regional", genes=None, gene_set: str = "ad",
                atlas: str = "dk83", affinity: str = "shifted", correlation: str = "pearson",
                out_dir="gene_axis", figure: bool = True, overwrite: bool = False,
                data_dir=None):
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
        eigenvector), ``spectrum.tsv``, ``gene_axis.json`` (options),
        ``gene_axis_state.json`` (the axis at full precision, which :func:`fit_model`
        reads with ``gene_axis=``) and, with ``figure``, ``gene_axis.png`` (spectrum,
        eigenvectors, correlation unsorted and sorted). ``None`` writes nothing.
    figure : bool
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    brainexpr.geneaxis.GeneAxis
    """
    from ..geneaxis import spectral_gene_axis

    if out_dir is not None:
        check_output_folder(out_dir, "embed", overwrite)
    data = load_training_data(source, genes, gene_set, atlas, data_dir)
    axis = spectral_gene_axis(data.values, affinity=affinity, method=correlation)
    if out_dir is None:
        return axis
    with output_folder(out_dir, "embed", overwrite) as stage:
        axis.table().to_csv(stage / "gene_axis.tsv", sep="\t", float_format="%.6g")
        pd.DataFrame({"index": np.arange(len(axis.eigenvalues)), "eigenvalue": axis.eigenvalues}) \
            .to_csv(stage / "spectrum.tsv", sep="\t", index=False, float_format="%.6g")
        with open(stage / "gene_axis.json", "w", encoding="utf-8") as handle:
            json.dump({"source": data.provenance, "affinity": affinity, "correlation": correlation,
                       "n_genes": len(axis.genes), "n_rows": int(data.values.shape[0]),
                       "eigenvalue": axis.eigenvalue, "scale": list(axis.scale),
                       "order": axis.order}, handle, indent=1)
        with open(stage / AXIS_STATE_FILE, "w", encoding="utf-8") as handle:
            json.dump(axis.to_state(), handle)
        if figure:
            from ..geneaxis.figures import plot_gene_axis
            import matplotlib.pyplot as plt

            fig = plot_gene_axis(axis, stage / "gene_axis.png")
            plt.close(fig)
    logger.info("gene axis of %d genes written to %s", len(axis.genes), out_dir)
    return axis


def read_gene_axis(path):
    """The gene axis that :func:`embed_genes` wrote (without its reference table).

    Parameters
    ----------
    path : path-like
        An ``embed`` output folder (or its ``gene_axis_state.json``).

    Returns
    -------
    brainexpr.geneaxis.GeneAxis
    """
    from ..geneaxis import GeneAxis

    path = Path(path)
    file = path / AXIS_STATE_FILE if path.is_dir() else path
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
        return GeneAxis.from_state(state)
    except FileNotFoundError:
        raise InputError(f"{path} holds no {AXIS_STATE_FILE}; give the output folder of "
                         "'brainexpr embed'") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{file} is not a gene axis written by 'brainexpr embed': "
                         f"{exc}") from None


def _training_gene_axis(gene_axis, values: pd.DataFrame, affinity: str):
    """The gene axis a model is fitted with: ``gene_axis`` (checked against the training
    values, which become its reference table) or, when None, computed from them."""
    from ..geneaxis import GeneAxis, spectral_gene_axis

    if gene_axis is None:
        return spectral_gene_axis(values, affinity=affinity)
    genes = [str(g) for g in values.columns]
    if set(gene_axis.genes) != set(genes):
        extra = sorted(set(gene_axis.genes) ^ set(genes))
        raise InputError(f"the gene axis has {len(gene_axis.genes)} genes and the training data "
                         f"{len(genes)}, not the same ones (e.g. {', '.join(extra[:5])}); compute "
                         "it from the same source, genes and gene set")
    if gene_axis.affinity != affinity:
        raise InputError(f"the gene axis was computed with affinity {gene_axis.affinity!r}, "
                         f"not {affinity!r}; give the affinity it was computed with")
    reference = values.astype(float)
    reference.columns = pd.Index(genes, name="gene")
    return GeneAxis.from_state(gene_axis.to_state(), reference=reference)


# --------------------------------------------------------------------------- fit
@fill_doc
def fit_model(*, source: str = "celltypes", genes=None, gene_set: str = "ad", atlas: str = "dk83",
              model: str = "auto", out="model.pt", affinity: str = "shifted", gene_axis=None,
              n_layers: int = 12, hidden_features: int = 512, omega_0: float | None = None,
              n_frequencies: int = 10, n_features: int = 64, gene_hidden: int = 64,
              gene_layers: int = 2, learning_rate: float = 1e-4, max_steps: int = 5000,
              batch_size: int | None = None, validation_fraction: float = 0.1,
              validation_block_mm: float = 20.0, eval_every: int = 50, patience: int = 20,
              value_scaling: str = "standard", parcel_samples: int | None = 32,
              n_ensemble: int = 1, device: str = "auto", random_state: int | None = 0,
              checkpoint_every: int = 500, resume: bool = False, data_dir=None):
    """Fit a model to a training source and save it as one model file.

    Parameters
    ----------
    source, genes, gene_set, atlas :
        Training data (see :func:`load_training_data`).
    model : str
        ``"auto"`` (default): ``donor-kriging`` for sample sites, ``factorized`` for
        parcel means, the most accurate on held-out data
        (:data:`brainexpr.models.registry.AUTO_MODELS`), or a name of
        :func:`brainexpr.models.registry.workflow_models` (INRs and ``parcel-kriging``
        fit any source; ``nearest``, ``knn``, ``kriging``, ``donor-kriging`` sample
        sites only).
    out : path-like
        Model file (an INR writes it during training too, so ``resume`` can continue it),
        plus a ``.json`` summary beside it. :func:`brainexpr.models.registry.load_model`
        reads either kind safely.
    affinity : str
        Affinity of the gene axis (:func:`brainexpr.geneaxis.spectral_gene_axis`), for
        INR designs that use it.
    gene_axis : brainexpr.geneaxis.GeneAxis or path-like, optional
        The gene axis of the training values, as :func:`embed_genes` computed it (its
        output folder, read by :func:`read_gene_axis`): same genes, same ``affinity``.
        Default: computed here. Used by INR designs that take it, ignored by the others.
    n_layers ... checkpoint_every, resume :
        INR only (ignored by the other models): parameters of
        :class:`brainexpr.models.inr.INRRegressor` (the defaults are the paper's 12 x 512
        network, lr 1e-4, 5000 steps; on a CPU use smaller settings, e.g.
        ``n_layers=4, hidden_features=128, learning_rate=1e-3, max_steps=1000``).
    random_state : int, optional
        Seed of any model that takes one.
    %(data_dir)s

    Returns
    -------
    estimator
        The fitted model (:class:`~brainexpr.models.inr.INRRegressor` or, e.g.,
        :class:`~brainexpr.models.kriging.DonorKrigingRegressor`), with ``provenance_``.
    """
    from ..geneaxis import GeneAxis
    from ..models.base import fit_samples
    from ..models.registry import save_model
    from ..models.checkpoint import is_model_file
    from ..models.registry import resolve_model

    out = check_output_file(out, recognise=is_model_file)
    summary_file = check_output_file(out.with_suffix(".json"), recognise=_is_fit_summary)
    kind = source_kind(source)
    name, reason = resolve_model(model, kind)
    if model == "auto":
        logger.info("model 'auto' -> %s for %s data: %s", name, kind, reason)
    inr_params = dict(
        n_layers=n_layers, hidden_features=hidden_features, omega_0=omega_0,
        n_frequencies=n_frequencies, n_features=n_features, gene_hidden=gene_hidden,
        gene_layers=gene_layers, learning_rate=learning_rate, max_steps=max_steps,
        batch_size=batch_size, validation_fraction=validation_fraction,
        validation_block_mm=validation_block_mm, eval_every=eval_every, patience=patience,
        value_scaling=value_scaling, parcel_samples=parcel_samples, n_ensemble=n_ensemble,
        device=device, checkpoint_path=str(out), checkpoint_every=checkpoint_every,
        resume=resume)
    estimator = build_model(name, random_state=random_state, **inr_params)
    if gene_axis is not None and not isinstance(gene_axis, GeneAxis):
        gene_axis = read_gene_axis(gene_axis)
    data = load_training_data(source, genes, gene_set, atlas, data_dir)
    if getattr(estimator, "uses_gene_axis", False) and data.values.shape[1] > 1:
        gene_axis = _training_gene_axis(gene_axis, data.values, affinity)
    else:
        gene_axis = None
    choice = {"requested": model, "model": name, "reason": reason}
    estimator.provenance_ = dict(data.provenance, affinity=affinity, kind=data.kind,
                                 model_choice=choice, genes=list(map(str, data.values.columns)))
    logger.info("fitting %s on %s: %d %s x %d genes", name, data.provenance.get("source"),
                data.values.shape[0], "sites" if data.kind == "samples" else "regions",
                data.values.shape[1])
    if data.kind == "samples":
        if data.donors is not None:
            logger.info("%d donors known (used by models of donor effects)", len(set(data.donors)))
        fit_samples(estimator, data.coords, data.values, tissue=data.tissue, gene_axis=gene_axis,
                    donors=data.donors)
    else:
        tissue_image = _tissue_image_for(data.atlas.image, data_dir)
        estimator.fit_regions(data.atlas.image, data.values, regions=data.atlas.regions,
                              tissue_image=tissue_image, gene_axis=gene_axis)
    save_model(estimator, out, name=name, provenance=estimator.provenance_)
    record_output_file(out, "fit")
    with atomic_write(summary_file) as handle:
        json.dump(dict(fit_summary(estimator), provenance=estimator.provenance_), handle,
                  indent=1, default=str)
    record_output_file(summary_file, "fit")
    logger.info("model written to %s", out)
    return estimator


def _is_fit_summary(path: Path) -> bool:
    """Whether ``path`` is the ``.json`` summary that :func:`fit_model` writes."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and {"model", "n_genes", "provenance"} <= set(content)


def build_model(name: str, random_state=0, **inr_params):
    """An unfitted workflow model with checked parameters.

    Parameters
    ----------
    name : str
        A resolved name of :func:`brainexpr.models.registry.workflow_models`.
    random_state : int, optional
        Passed to every model that takes a seed.
    **inr_params
        INR settings (:class:`~brainexpr.models.inr.INRRegressor`); the other models do
        not take them, so they are dropped for those.

    Raises
    ------
    InputError
        For an invalid setting of the model (before any data is loaded).
    """
    from ..models.registry import is_network, make_model

    estimator = make_model(name, **(inr_params if is_network(name) else {}))
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=random_state)
    estimator._check_params()
    return estimator


def fit_summary(estimator) -> dict:
    """JSON-compatible summary of a fitted workflow model (written beside the model file).

    Returns
    -------
    dict
        ``model`` (registry name), ``n_genes``, ``fit_kind`` and ``params``; INRs add
        their training results (:meth:`~brainexpr.models.inr.INRRegressor.summary`).
    """
    from ..models.registry import model_name

    provenance = getattr(estimator, "provenance_", None) or {}
    if hasattr(estimator, "summary"):
        info = estimator.summary()
    else:
        info = {"n_genes": len(model_genes(estimator)),
                "fit_kind": provenance.get("kind", "samples"),
                "params": json.loads(json.dumps(estimator.get_params(), default=str))}
    return {"model": model_name(estimator), **info}


# --------------------------------------------------------------------------- predict
def _load(model, device):
    """A fitted estimator from a model file, or the fitted estimator given."""
    if isinstance(model, (str, os.PathLike)):
        from ..models.registry import load_model

        return load_model(model, device=device)
    if model.capabilities.network:
        return copy.deepcopy(model)  # genes placed for this call do not change the caller's model
    return model  # a fitted estimator: predicting does not change it


def _resolve_genes(estimator, genes, data_dir=None) -> list[str]:
    """Genes of the request; genes outside the model are placed on its gene axis when the
    model is an INR fitted on the regional table (their regional profiles are then known)."""
    from ..datasets import check_genes, load_regional_expression

    genes = _gene_list(genes)
    known = model_genes(estimator)
    if genes is None:
        return known
    new = [g for g in genes if g not in set(known)]
    if not new:
        return genes
    provenance = getattr(estimator, "provenance_", {}) or {}
    info = getattr(estimator, "gene_axis_info_", None)
    if provenance.get("source") != "regional" or info is None or info.reference is None:
        check_genes(genes, known, "the model")  # raises, naming the closest genes
    table = load_regional_expression(new, data_dir=data_dir)  # raises for unknown genes
    estimator.add_genes(table.loc[info.reference.index])
    return genes


@fill_doc
def predict_maps(*, model="model.pt", genes=None, resolution: int | None = 2, mask: str = "brain",
                 out_dir="maps", stack: bool = False, std: bool | None = None, compress: bool = True,
                 chunk_size: int | None = None, device: str | None = None,
                 precision: str = "fp32", space: str = "MNI152", overwrite: bool = False,
                 data_dir=None, std_kind: str = "population") -> list[Path]:
    """Write dense NIfTI maps (or fsaverage5 GIFTI maps) of genes predicted by a fitted model.

    Parameters
    ----------
    model : path-like or fitted estimator
        Model file written by :func:`fit_model` (an INR or, e.g., donor kriging).
    genes : sequence of str, optional
        Genes to map (default all of the model). Genes outside an INR fitted on the
        regional table are placed on its gene axis from their regional profiles; any
        other unknown gene is an error naming the closest ones.
    resolution : {1, 2} or None
        MNI152 grid (mm); ``None`` keeps the mask's own grid.
    mask : str or path
        ``brain``, ``dk83``, ``dk83-abagen``, ``brainnetome246`` or a NIfTI mask.
    out_dir : path-like
        Output folder (``maps.tsv`` lists the files).
    stack : bool
        One 4-D file instead of one file per gene.
    std : bool or None
        Also write standard-deviation maps (``_std``): the kriging SD (kriging models, see
        ``std_kind``) or the recalibrated ensemble SD (INRs with ``n_ensemble >= 2``).
        ``None`` (default): whenever the model gives one; ``True`` for a model without one
        is an error.
    compress : bool
        Write ``.nii.gz`` (default) or ``.nii``.
    chunk_size : int, optional
        Voxels per network pass.
    device : str, optional
        INR only: overrides the device saved with the model (``auto``, ``cpu``, ``cuda``).
    precision : {"fp32", "tf32", "bf16"}
        INR only: GPU prediction precision (checked against fp32).
    space : {"MNI152", "fsaverage5"}
        ``fsaverage5``: the model evaluated at the mid-thickness vertices of both
        hemispheres, one GIFTI per gene and hemisphere
        (:func:`brainexpr.maps.surface.write_surface_maps`); ``resolution``, ``mask``,
        ``stack`` and ``compress`` apply to volumes only.
    %(overwrite)s
    %(data_dir)s
    %(std_kind)s

    Returns
    -------
    list of Path
    """
    from ..maps import has_uncertainty, write_maps
    from ..models.baselines import STD_KINDS
    from ..maps.surface import SURFACE_SPACES, write_surface_maps
    from ..models.inr import PRECISIONS
    from ..models.registry import model_name

    check_choice(precision, PRECISIONS, "precision")
    check_choice(space, ("MNI152", *SURFACE_SPACES), "space")
    check_choice(std_kind, STD_KINDS, "std_kind")
    if space != "MNI152" and stack:
        raise InputError("stack applies to MNI152 volumes; surface maps are one GIFTI per gene "
                         "and hemisphere")
    check_output_folder(out_dir, "predict", overwrite)
    estimator = _load(model, device)
    name = model_name(estimator)
    network = estimator.capabilities.network
    if network:
        estimator.precision = precision
    elif precision != "fp32":
        logger.info("precision %s applies to INRs only; %s predicts in float64", precision, name)
    if std is None:
        std = has_uncertainty(estimator)
    if std and not has_uncertainty(estimator) and not network:
        raise InputError(f"std maps need an uncertainty estimate, which the {name!r} model does "
                         "not give; drop --std, or use a kriging model or an INR with n_ensemble >= 2")
    if not std and std_kind != "population":
        raise InputError(f"std_kind={std_kind!r} describes _std maps, which are not written here "
                         f"({'--no-std' if std is False else f'the {name!r} model gives no SD'}); "
                         "drop --std-kind or write the _std maps")
    selected = _resolve_genes(estimator, genes, data_dir)
    if space != "MNI152":
        return write_surface_maps(estimator, selected, out_dir=out_dir, std=std,
                                  model_name=name, space=space, data_dir=data_dir, std_kind=std_kind)
    return write_maps(estimator, selected, mask=mask, resolution=resolution, out_dir=out_dir,
                      stack=stack, std=std, compress=compress, chunk_size=chunk_size,
                      model_name=name, overwrite=overwrite, data_dir=data_dir, std_kind=std_kind)


# --------------------------------------------------------------------------- parcellate
@fill_doc
def parcellate_maps(*, model="model.pt", atlas: str = "dk83", genes=None, out="regional.csv",
                    compare: bool = True, device: str | None = None, space: str = "MNI152",
                    data_dir=None):
    """Average a model's dense maps within the parcels of an atlas and write a CSV.

    Parameters
    ----------
    model : path-like or fitted estimator
        Model file written by :func:`fit_model` (an INR or, e.g., donor kriging).
    atlas : {"dk83", "dk83-abagen", "brainnetome246"}
    genes : sequence of str, optional
        Default all genes of the model (genes outside it as in :func:`predict_maps`).
    out : path-like
        CSV of regions (rows, atlas region names) x genes.
    compare : bool
        For DK-83 atlases and genes of the AHBA regional table, also write
        ``<out>_comparison.csv``: per gene the Pearson r of the continuous map with the
        painted table within the brain mask (``r_voxel``), of its regional averages
        (``r_voxel_regional``, ``r_regional``) and the voxel MSE. Models with a trust
        score (donor kriging) also get ``<out>_trust.csv``: each gene's held-out r.
    device : str, optional
        INR only (see :func:`predict_maps`).
    space : {"MNI152", "fsaverage5"}
        ``fsaverage5``: the model evaluated at the fsaverage5 vertices and averaged within
        the 68 cortical regions of the Desikan-Killiany annotations
        (:func:`brainexpr.atlas.surface.parcellate_vertices`; ``atlas`` must be a DK-83
        atlas, and no comparison is written).
    %(data_dir)s

    Returns
    -------
    means : pandas.DataFrame
    comparison : pandas.DataFrame or None
    """
    from ..datasets import ATLASES, load_atlas, load_regional_expression
    from ..maps import parcellate_model

    check_choice(atlas, ATLASES, "atlas")
    if space != "MNI152" and atlas not in ("dk83", "dk83-abagen"):
        raise InputError(f"space={space!r} averages vertices within the 68 cortical DK regions "
                         "of the fsaverage5 annotations; use atlas 'dk83'")
    out = check_output_file(out)
    for suffix in ("_comparison.csv", "_trust.csv"):
        check_output_file(out.with_name(out.stem + suffix))
    estimator = _load(model, device)
    selected = _resolve_genes(estimator, genes, data_dir)
    if space != "MNI152":
        means, comparison = _parcellate_surface(estimator, selected, space, data_dir), None
        _write_regional(out, means, comparison, f"{atlas} on {space}", estimator)
        return means, comparison
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
    _write_regional(out, means, comparison, atlas, estimator)
    return means, comparison


def _parcellate_surface(estimator, genes, space: str, data_dir) -> pd.DataFrame:
    from ..atlas.surface import parcellate_vertices
    from ..maps.surface import SURFACE_SPACES, predict_surface

    check_choice(space, ("MNI152", *SURFACE_SPACES), "space")
    predictions = predict_surface(estimator, genes, data_dir=data_dir)
    return parcellate_vertices({hemi: pd.DataFrame(mean.T, columns=genes)
                                for hemi, (mean, _) in predictions.items()}, data_dir=data_dir)


def _write_regional(out, means, comparison, atlas: str, estimator) -> None:
    """Write regional means, the abagen comparison and per-gene trust next to ``out``."""
    from ..maps.dense import model_trust

    out = Path(out)
    bad = [str(g) for g in means.columns if np.isinf(means[g]).any()
           or means[g].isna().all()]
    if bad:
        raise InputError(f"the model predicts non-finite values for {len(bad)} gene(s) "
                         f"({', '.join(bad[:5])}); nothing was written: the model file may be "
                         "damaged or its training values out of range, refit it")
    with atomic_path(out) as tmp:
        means.to_csv(tmp, float_format="%.6g")
    record_output_file(out, "parcellate")
    if comparison is not None:
        comparison_file = out.with_name(out.stem + "_comparison.csv")
        with atomic_path(comparison_file) as tmp:
            comparison.to_csv(tmp, float_format="%.6g")
        record_output_file(comparison_file, "parcellate")
    trust = pd.Series(model_trust(estimator, list(means.columns)),
                      index=pd.Index(means.columns, name="gene"), name="trust")
    if trust.notna().any():  # each gene's held-out r under the fitted model (donor kriging)
        trust_file = out.with_name(out.stem + "_trust.csv")
        with atomic_path(trust_file) as tmp:
            trust.to_csv(tmp, float_format="%.4g")
        record_output_file(trust_file, "parcellate")
    logger.info("regional averages of %d genes on %s written to %s", means.shape[1], atlas, out)
