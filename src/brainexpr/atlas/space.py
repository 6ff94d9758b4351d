"""MNI152 grids and vectorised voxel <-> millimetre transforms.

All coordinates are millimetres in MNI152 space; voxel indices are (i, j, k) of a
NIfTI array. Nothing here loops over voxels in Python.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np

from ..errors import InputError

logger = logging.getLogger(__name__)

#: Shape and affine of the FSL MNI152 grids (the grid of the DK-83 and Brainnetome atlases).
MNI152_GRIDS = {
    1: ((182, 218, 182), np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])),
    2: ((91, 109, 91), np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])),
}

#: A box (mm) that every MNI152 brain image must cover: from the brain-mask extent.
_MNI_CORE_BOX = np.array([[-60.0, -95.0, -40.0], [60.0, 60.0, 70.0]])


def mni_grid(resolution: int = 1) -> tuple[tuple[int, int, int], np.ndarray]:
    """Return ``(shape, affine)`` of the FSL MNI152 grid at 1 or 2 mm."""
    if resolution not in MNI152_GRIDS:
        raise InputError(f"resolution must be 1 or 2 (mm), got {resolution!r}")
    shape, affine = MNI152_GRIDS[resolution]
    return shape, affine.copy()


def voxel_to_mni(ijk, affine) -> np.ndarray:
    """Map voxel indices to MNI millimetres.

    Parameters
    ----------
    ijk : (n, 3) array
        Voxel indices (integer or fractional).
    affine : (4, 4) array

    Returns
    -------
    (n, 3) float array, mm, MNI152
    """
    ijk = np.asarray(ijk, dtype=float)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def mni_to_voxel(coords, affine, round_to_int: bool = True) -> np.ndarray:
    """Map MNI millimetres to voxel indices (rounded to the nearest voxel by default).

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    affine : (4, 4) array
    round_to_int : bool

    Returns
    -------
    (n, 3) array of int (or float when ``round_to_int`` is False)
    """
    coords = np.asarray(coords, dtype=float)
    inverse = np.linalg.inv(affine)
    ijk = coords @ inverse[:3, :3].T + inverse[:3, 3]
    return np.rint(ijk).astype(int) if round_to_int else ijk


def inside_grid(ijk, shape) -> np.ndarray:
    """Return a boolean mask of voxel indices that fall inside an array of ``shape``."""
    ijk = np.asarray(ijk)
    return np.all((ijk >= 0) & (ijk < np.asarray(shape[:3])), axis=1)


def sample_image(image: nib.Nifti1Image, coords, fill=0, data=None) -> np.ndarray:
    """Read image values at MNI coordinates (nearest voxel); ``fill`` outside the grid."""
    data = np.asanyarray(image.dataobj) if data is None else data
    ijk = mni_to_voxel(coords, image.affine)
    inside = inside_grid(ijk, data.shape)
    out = np.full(len(ijk), fill, dtype=np.result_type(data.dtype, np.asarray(fill).dtype))
    out[inside] = data[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]]
    return out


def check_mni_image(image, name: str = "image", shape=None, ndim=(3, 4)) -> nib.Nifti1Image:
    """Validate that an image is a NIfTI in MNI152 space.

    The check requires an axis-aligned affine (no rotation or shear), voxel sizes between
    0.5 and 4 mm, and a field of view that covers the MNI152 brain.

    Parameters
    ----------
    image : nibabel image or path
    name : str
        Used in error messages.
    shape : tuple, optional
        Required spatial shape.
    ndim : tuple of int
        Allowed numbers of dimensions.

    Raises
    ------
    InputError
        With one line that says what is wrong and what was expected.
    """
    if not isinstance(image, nib.spatialimages.SpatialImage):
        try:
            image = nib.load(str(image))
        except Exception as exc:  # nibabel raises many types for unreadable files
            raise InputError(f"cannot read {name} {image!s}: {exc}") from None
    if image.ndim not in ndim:
        raise InputError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {image.shape}")
    if shape is not None and tuple(image.shape[:3]) != tuple(shape):
        raise InputError(f"{name} has spatial shape {image.shape[:3]}, expected {tuple(shape)}")
    affine = image.affine
    linear = affine[:3, :3]
    off_diagonal = linear - np.diag(np.diag(linear))
    zooms = np.abs(np.diag(linear))
    if np.abs(off_diagonal).max() > 1e-3 * max(zooms.max(), 1e-6) or np.any(zooms < 0.5) or np.any(zooms > 4):
        raise InputError(
            f"{name} is not in MNI152 space: its affine is rotated, sheared or has voxel sizes "
            f"{np.round(zooms, 2).tolist()} mm; resample it to MNI152 (1 or 2 mm) first"
        )
    corners = voxel_to_mni(np.array([[0, 0, 0], np.array(image.shape[:3]) - 1]), affine)
    lower, upper = corners.min(axis=0), corners.max(axis=0)
    if np.any(lower > _MNI_CORE_BOX[0]) or np.any(upper < _MNI_CORE_BOX[1]):
        raise InputError(
            f"{name} is not in MNI152 space: its field of view {np.round(lower).tolist()} to "
            f"{np.round(upper).tolist()} mm does not cover the brain; expected an MNI152 image"
        )
    return image


def mask_coordinates(mask: nib.Nifti1Image, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Return the voxel indices and MNI coordinates of voxels inside a mask.

    Returns
    -------
    ijk : (n, 3) int array
    coords : (n, 3) float array, mm, MNI152
    """
    data = np.asanyarray(mask.dataobj)
    ijk = np.argwhere(data > threshold)
    return ijk, voxel_to_mni(ijk, mask.affine)


def resample_to_grid(image: nib.Nifti1Image, resolution: int = 2, interpolation: str = "nearest"):
    """Resample an MNI152 image onto the FSL MNI152 grid at ``resolution`` mm.

    ``interpolation`` is ``"nearest"`` (labels, masks) or ``"linear"`` (continuous maps).
    """
    from scipy import ndimage

    shape, affine = mni_grid(resolution)
    if tuple(image.shape[:3]) == shape and np.allclose(image.affine, affine):
        return image
    order = {"nearest": 0, "linear": 1}.get(interpolation)
    if order is None:
        raise InputError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    # target voxel -> source voxel affine
    mapping = np.linalg.inv(image.affine) @ affine
    data = np.asanyarray(image.dataobj)
    volumes = data[..., None] if data.ndim == 3 else data
    out = np.stack([
        ndimage.affine_transform(volumes[..., t].astype(np.float32), mapping[:3, :3],
                                 offset=mapping[:3, 3], output_shape=shape, order=order,
                                 mode="constant", cval=0.0)
        for t in range(volumes.shape[-1])
    ], axis=-1)
    out = out[..., 0] if data.ndim == 3 else out
    if order == 0:
        out = out.astype(data.dtype)
    return nib.Nifti1Image(out, affine)
