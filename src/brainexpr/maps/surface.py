"""Model maps on the fsaverage5 cortical surface, written as GIFTI.

brainexpr's models are continuous fields, so a surface map is the model evaluated at
each vertex's MNI152 position: the mid-thickness point between the pial and white
surfaces (:func:`brainexpr.atlas.surface.midthickness_mni152`), not a resampling of a
voxel grid. BENCHMARKS.md ("Maps on fsaverage5") compares this with nilearn's
``vol_to_surf`` of the 1 mm volume against a phantom's truth at the vertices
(:func:`sample_volume_on_surface` is that route).

File names are BIDS-like: ``gene-APOE_model-factorized_space-fsaverage_den-10k_hemi-L_expr
.func.gii`` (``_std`` for the ensemble standard deviation).
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..atlas.surface import (HEMISPHERES, fsaverage5_mesh, fsaverage_to_mni152,
                             midthickness_mni152)
from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import staged_directory
from .dense import (gene_label, has_uncertainty, model_genes, predict_prepared, prepare_points,
                    _no_uncertainty)

logger = logging.getLogger(__name__)

__all__ = ["SURFACE_SPACES", "predict_surface", "sample_volume_on_surface", "surface_filename",
           "write_surface_maps"]

#: ``--space`` value -> (BIDS ``space-`` label, ``den-`` label) of the surface maps.
SURFACE_SPACES = {"fsaverage5": ("fsaverage", "10k")}


def surface_filename(gene: str, model: str, hemi: str, kind: str = "expr",
                     space: str = "fsaverage5") -> str:
    """BIDS-like name of one hemisphere's map of one gene.

    Example: ``gene-APOE_model-factorized_space-fsaverage_den-10k_hemi-L_expr.func.gii``.
    """
    label, density = SURFACE_SPACES[space]
    return (f"gene-{gene_label(gene)}_model-{gene_label(model)}_space-{label}_den-{density}_"
            f"hemi-{hemi}_{kind}.func.gii")


def _vertex_points(model, hemi: str, data_dir):
    from ..atlas.tissue import tissue_class_at

    coords = midthickness_mni152(hemi)
    return prepare_points(model, coords, tissue_class_at(coords, data_dir=data_dir))


@fill_doc
def predict_surface(model, genes=None, return_std: bool = False, data_dir=None,
                    std_kind: str = "population") -> dict:
    """Evaluate a model at the fsaverage5 vertices of both hemispheres.

    Parameters
    ----------
    %(fitted_model)s
    %(model_genes)s
    return_std : bool
        Also the standard deviation (models with :func:`~brainexpr.maps.has_uncertainty`).
    data_dir : path-like, optional
        For the tissue class of the vertices.
    %(std_kind)s

    Returns
    -------
    dict
        ``"L"`` and ``"R"`` -> ``(mean, std)``: (n_genes, 10242) float32 arrays (``std``
        None unless ``return_std``), at the mid-thickness points in MNI152.
    """
    genes = model_genes(model) if genes is None else list(genes)
    if return_std and not has_uncertainty(model):
        raise _no_uncertainty(model)
    out = {}
    for hemi in HEMISPHERES:
        points = _vertex_points(model, hemi, data_dir)
        result = predict_prepared(model, points, genes, return_std=return_std, gene_major=True,
                                  std_kind=std_kind)
        out[hemi] = result if return_std else (result, None)
    return out


def _gifti(values: np.ndarray, hemi: str, gene: str, kind: str) -> nib.gifti.GiftiImage:
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": HEMISPHERES[hemi][2]})
    array = nib.gifti.GiftiDataArray(
        np.asarray(values, dtype=np.float32), intent="NIFTI_INTENT_NONE",
        datatype="NIFTI_TYPE_FLOAT32",
        meta=nib.gifti.GiftiMetaData({"Name": f"{gene} {kind}"}))
    return nib.gifti.GiftiImage(darrays=[array], meta=meta)


@fill_doc
def write_surface_maps(model, genes=None, out_dir="maps", std: bool = False,
                       model_name: str | None = None, space: str = "fsaverage5",
                       data_dir=None, std_kind: str = "population") -> list[Path]:
    """Write one GIFTI (``.func.gii``) per gene and hemisphere on fsaverage5.

    Parameters
    ----------
    %(fitted_model)s
    %(model_genes)s
    out_dir : path-like
        Output folder, built in a staging folder and moved into place when complete; it
        also gets ``maps.tsv`` (file, gene, hemisphere, kind).
    std : bool
        Also ``_std`` maps (kriging models, INR ensembles).
    model_name : str, optional
        ``model-`` label (default: the model's registry name).
    space : {"fsaverage5"}
    %(data_dir)s
    %(std_kind)s

    Returns
    -------
    list of Path
        The map files in the final folder.
    """
    check_choice(space, SURFACE_SPACES, "space")
    genes = model_genes(model) if genes is None else list(genes)
    if not genes:
        raise InputError("no genes to map")
    if model_name is None:
        from ..models.registry import model_name as registry_name

        model_name = registry_name(model)
    labels = [gene_label(g) for g in genes]
    clashes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if clashes:
        raise InputError(f"genes whose file labels clash: {', '.join(clashes)}")
    predictions = predict_surface(model, genes, return_std=std, data_dir=data_dir, std_kind=std_kind)
    rows = []
    with staged_directory(out_dir) as stage:
        for hemi, (mean, spread) in predictions.items():
            kinds = [("expr", mean)] + ([("std", spread)] if std else [])
            for kind, values in kinds:
                for index, gene in enumerate(genes):
                    name = surface_filename(gene, model_name, hemi, kind, space)
                    nib.save(_gifti(values[index], hemi, gene, kind), str(stage / name))
                    rows.append({"file": name, "gene": gene, "hemisphere": hemi, "kind": kind})
        pd.DataFrame(rows).to_csv(stage / "maps.tsv", sep="\t", index=False)
    files = [Path(out_dir) / row["file"] for row in rows]
    logger.info("wrote %d surface map(s) for %d gene(s) on %s into %s", len(files), len(genes),
                space, out_dir)
    return files


def sample_volume_on_surface(image, hemi: str, **options) -> np.ndarray:
    """Sample an MNI152 volume at the fsaverage5 vertices with nilearn's ``vol_to_surf``.

    The volume route that :func:`predict_surface` is compared with: the pial and white
    meshes are mapped to MNI152 (:data:`brainexpr.atlas.surface.MNI305_TO_MNI152`) and
    nilearn samples between them (default ``kind="line"``, linear interpolation).

    Parameters
    ----------
    image : nibabel.Nifti1Image
        3-D or 4-D volume, MNI152.
    hemi : {"L", "R"}
    **options
        Passed to ``nilearn.surface.vol_to_surf``.

    Returns
    -------
    (10242,) or (10242, n_volumes) array
    """
    from nilearn import surface

    meshes = {}
    for kind in ("pial", "white"):
        mesh = fsaverage5_mesh(kind, hemi)
        meshes[kind] = surface.InMemoryMesh(fsaverage_to_mni152(mesh.coords), mesh.faces)
    options.setdefault("interpolation", "linear")
    return np.asarray(surface.vol_to_surf(image, meshes["pial"], inner_mesh=meshes["white"],
                                          **options))
