"""Assign coordinates (tissue samples) to atlas parcels, as abagen does.

A sample is assigned to the parcel that contains it when that parcel lies in the same
hemisphere and structural division; otherwise to the nearest parcel voxel of the same
hemisphere and division within ``tolerance`` mm; otherwise it stays unassigned (0).
Divisions are cortex, subcortex/brainstem and cerebellum. Midline samples or parcels
(hemisphere ``"B"``) match either hemisphere.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from .space import check_mni_image, inside_grid, mni_to_voxel, voxel_to_mni

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 2.0

_DIVISIONS = {
    "cortex": "cortex",
    "subcortex": "subcortex/brainstem",
    "brainstem": "subcortex/brainstem",
    "subcortex/brainstem": "subcortex/brainstem",
    "cerebellum": "cerebellum",
}


def structure_division(structure) -> np.ndarray:
    """Map structure names (cortex, subcortex, brainstem, cerebellum...) to abagen's divisions."""
    values = pd.Series(np.asarray(structure, dtype=object)).str.lower()
    unknown = sorted(set(values.dropna()) - set(_DIVISIONS))
    if unknown:
        raise InputError(f"unknown structure classes {unknown}; expected {sorted(_DIVISIONS)}")
    return values.map(_DIVISIONS).to_numpy()


def match_to_parcels(coords, atlas_image, regions: pd.DataFrame, hemisphere=None, structure=None,
                     tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Assign MNI coordinates to atlas parcel ids.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    atlas_image : nibabel.Nifti1Image
        Integer parcel ids, 0 = background.
    regions : pandas.DataFrame
        Atlas region table with columns ``id``, ``hemisphere`` (L/R/B) and ``structure``.
    hemisphere : (n,) array of {"L", "R", "B"}, optional
        Sample hemispheres; no constraint when omitted.
    structure : (n,) array, optional
        Sample structure classes (cortex, subcortex, brainstem, cerebellum); no
        constraint when omitted.
    tolerance : float
        Maximum distance (mm) to the nearest allowed parcel voxel.

    Returns
    -------
    (n,) int array
        Parcel id per coordinate, 0 when unassigned.
    """
    atlas_image = check_mni_image(atlas_image, "atlas", ndim=(3,))
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 3 or not np.isfinite(coords).all():
        raise InputError(f"coords must be a finite (n, 3) array of MNI mm, got shape {coords.shape}")
    n = len(coords)
    hemisphere = np.full(n, "B", dtype=object) if hemisphere is None else np.asarray(hemisphere, dtype=object)
    division = (np.full(n, None, dtype=object) if structure is None
                else structure_division(structure))
    labels = np.asarray(atlas_image.dataobj).astype(int)
    region_ids = regions["id"].to_numpy(int)
    # per-id lookup tables (index = parcel id) so that checks are vectorised
    size = max(int(labels.max()), int(region_ids.max(initial=0))) + 1
    id_hemi = np.full(size, "B", dtype=object)
    id_div = np.full(size, None, dtype=object)
    id_hemi[region_ids] = regions["hemisphere"].to_numpy(dtype=object)
    id_div[region_ids] = structure_division(regions["structure"])

    def allowed(ids, hemi, div):
        ids = np.asarray(ids)
        rh, rd = id_hemi[ids], id_div[ids]
        ok = ids > 0
        ok &= (hemi == "B") | (rh == "B") | (rh == hemi)
        ok &= (div == None) | (rd == div)  # noqa: E711 (element-wise comparison)
        return ok

    # 1. the parcel that contains the point
    ijk = mni_to_voxel(coords, atlas_image.affine)
    inside = inside_grid(ijk, labels.shape)
    direct = np.zeros(n, dtype=int)
    direct[inside] = labels[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]]
    result = np.where(allowed(direct, hemisphere, division), direct, 0)

    # 2. nearest allowed parcel voxel within tolerance, per (hemisphere, division) group
    todo = np.flatnonzero(result == 0)
    if len(todo):
        vox = np.argwhere(labels > 0)
        vox_ids = labels[tuple(vox.T)]
        vox_mm = voxel_to_mni(vox, atlas_image.affine)
        groups = pd.DataFrame({"h": hemisphere[todo], "d": division[todo]}).fillna("any")
        for (hemi, div), rows in groups.groupby(["h", "d"]).groups.items():
            idx = todo[np.asarray(rows)]
            keep = allowed(vox_ids, hemi, None if div == "any" else div)
            if not keep.any():
                continue
            tree = cKDTree(vox_mm[keep])
            dist, nearest = tree.query(coords[idx], distance_upper_bound=tolerance + 1e-9)
            found = np.isfinite(dist)
            result[idx[found]] = vox_ids[keep][nearest[found]]
    logger.info("matched %d of %d coordinates to parcels (tolerance %.1f mm)",
                int((result > 0).sum()), n, tolerance)
    return result
