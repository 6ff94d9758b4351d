"""Parcellate volumes into regional tables and paint regional tables back into volumes."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InputError
from .space import check_mni_image, resample_to_grid

logger = logging.getLogger(__name__)


def _align(image: nib.Nifti1Image, atlas_image: nib.Nifti1Image) -> np.ndarray:
    """Return the image data on the atlas grid (resampled linearly when grids differ)."""
    if tuple(image.shape[:3]) == tuple(atlas_image.shape[:3]) and np.allclose(image.affine, atlas_image.affine):
        return np.asanyarray(image.dataobj)
    for resolution in (1, 2):
        from .space import mni_grid

        shape, affine = mni_grid(resolution)
        if tuple(atlas_image.shape[:3]) == shape and np.allclose(atlas_image.affine, affine):
            logger.info("resampling image onto the %d mm atlas grid", resolution)
            return np.asanyarray(resample_to_grid(image, resolution, "linear").dataobj)
    raise InputError(
        f"image grid {image.shape[:3]} differs from the atlas grid {atlas_image.shape[:3]}; "
        "resample one onto the other first"
    )


def parcellate(image, atlas_image, regions: pd.DataFrame | None = None, names=None,
               empty: str = "nan") -> pd.DataFrame:
    """Average a 3-D image or a 4-D stack within each parcel.

    Parameters
    ----------
    image : nibabel.Nifti1Image or (X, Y, Z[, T]) array on the atlas grid
    atlas_image : nibabel.Nifti1Image
        Integer parcel ids, 0 = background.
    regions : pandas.DataFrame, optional
        Atlas table with column ``id``; its index names the rows. Default: every id > 0
        in the atlas, rows named by id.
    names : sequence of str, optional
        Column names (one per map); default ``map0``, ``map1`` ...
    empty : {"nan", "error"}
        What to do when a parcel has no voxels (or only non-finite values).

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_maps) mean values.
    """
    atlas_image = check_mni_image(atlas_image, "atlas", ndim=(3,))
    if isinstance(image, nib.spatialimages.SpatialImage):
        image = check_mni_image(image, "image")
        data = _align(image, atlas_image)
    else:
        data = np.asarray(image)
        if data.shape[:3] != atlas_image.shape[:3]:
            raise InputError(f"array shape {data.shape} does not match the atlas grid {atlas_image.shape}")
    labels = np.asarray(atlas_image.dataobj).astype(np.int64).ravel()
    values = data.reshape(labels.size, -1).astype(np.float64, copy=False)
    if regions is None:
        ids = np.unique(labels[labels > 0])
        index = pd.Index(ids, name="id")
    else:
        ids = regions["id"].to_numpy(np.int64)
        index = regions.index
    lookup = np.full(max(labels.max(), ids.max()) + 1, -1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    row = lookup[labels]
    finite = np.isfinite(values)
    keep = row >= 0
    onehot = sparse.csr_matrix((np.ones(int(keep.sum())), (row[keep], np.flatnonzero(keep))),
                               shape=(len(ids), labels.size))
    sums = onehot @ np.where(finite, values, 0.0)
    counts = onehot @ finite.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    empty_rows = np.flatnonzero((counts == 0).all(axis=1))
    if len(empty_rows):
        message = f"{len(empty_rows)} parcels have no voxels: {', '.join(map(str, index[empty_rows][:10]))}"
        if empty == "error":
            raise InputError(message)
        logger.warning(message)
    columns = list(names) if names is not None else [f"map{i}" for i in range(values.shape[1])]
    if len(columns) != values.shape[1]:
        raise InputError(f"{len(columns)} names given for {values.shape[1]} maps")
    return pd.DataFrame(means, index=index, columns=columns)


def paint(table, atlas_image, regions: pd.DataFrame | None = None, fill: float = 0.0) -> nib.Nifti1Image:
    """Paint regional values into a volume (the reverse of :func:`parcellate`).

    Parameters
    ----------
    table : pandas.Series or DataFrame
        Values per region (rows); a DataFrame yields a 4-D image (one volume per column).
    atlas_image : nibabel.Nifti1Image
    regions : pandas.DataFrame, optional
        Atlas table (column ``id``) indexed like ``table``; when omitted the index of
        ``table`` must hold the parcel ids.
    fill : float
        Value outside parcels and in parcels absent from ``table``.
    """
    atlas_image = check_mni_image(atlas_image, "atlas", ndim=(3,))
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    if regions is not None:
        missing = [r for r in frame.index if r not in regions.index]
        if missing:
            raise InputError(f"regions not in the atlas: {', '.join(map(str, missing[:10]))}")
        ids = regions.loc[frame.index, "id"].to_numpy(np.int64)
    else:
        ids = frame.index.to_numpy(np.int64)
    labels = np.asarray(atlas_image.dataobj).astype(np.int64)
    lookup = np.full((max(labels.max(), ids.max()) + 1, frame.shape[1]), fill, dtype=np.float32)
    lookup[ids] = frame.to_numpy(np.float32)
    lookup[0] = fill
    data = lookup[labels]
    if isinstance(table, pd.Series):
        data = data[..., 0]
    return nib.Nifti1Image(data, atlas_image.affine)
