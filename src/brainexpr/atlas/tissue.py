"""Tissue class per coordinate: grey matter 1, white matter -1, other 0.

This is the convention of the reference paper's *text* (its released code used the
opposite sign). The class of a point is read from the FSL MNI152 1 mm grey- and
white-matter probability maps at the nearest voxel:

* grey (1) when ``p_grey >= threshold`` and ``p_grey >= p_white``;
* white (-1) when ``p_white >= threshold`` and ``p_white > p_grey``;
* other (0) otherwise (CSF, background, partial volume below the threshold).

The default threshold is 0.5, i.e. a voxel needs a majority of one tissue.
:func:`with_tissue_class` adds the class to the AHBA sample table (the loaders of
:mod:`brainexpr.datasets` do not compute it: this module reads its maps through them).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..docstrings import fill_doc
from .space import sample_image

GREY, WHITE, OTHER = 1, -1, 0
DEFAULT_THRESHOLD = 0.5


def tissue_class(p_grey, p_white, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Classify points from their grey- and white-matter probabilities.

    Parameters
    ----------
    p_grey, p_white : array-like, values in [0, 1]
    threshold : float
        Minimum probability of the winning tissue.

    Returns
    -------
    numpy.ndarray of int8 in {1, -1, 0}
    """
    p_grey = np.asarray(p_grey, dtype=float)
    p_white = np.asarray(p_white, dtype=float)
    grey = (p_grey >= threshold) & (p_grey >= p_white)
    white = (p_white >= threshold) & (p_white > p_grey)
    return np.select([grey, white], [GREY, WHITE], default=OTHER).astype(np.int8)


@lru_cache(maxsize=2)
def _probability_arrays(data_dir):
    from ..datasets.loaders import load_tissue_probabilities

    grey, white = load_tissue_probabilities(data_dir)
    return (np.asarray(grey.dataobj, dtype=np.float32), np.asarray(white.dataobj, dtype=np.float32),
            grey.affine)


@fill_doc
def tissue_class_at(coords, data_dir=None, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Tissue class at MNI coordinates, from the FSL MNI152 probability maps.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    %(data_dir)s
    threshold : float

    Returns
    -------
    (n,) int8 array in {1, -1, 0}; points outside the template grid are 0.
    """
    import nibabel as nib

    grey, white, affine = _probability_arrays(None if data_dir is None else str(data_dir))
    ref = nib.Nifti1Image(np.zeros((1, 1, 1), np.int8), affine)
    p_grey = sample_image(ref, coords, fill=0.0, data=grey)
    p_white = sample_image(ref, coords, fill=0.0, data=white)
    return tissue_class(p_grey, p_white, threshold=threshold)


@fill_doc
def with_tissue_class(samples, data_dir=None, threshold: float = DEFAULT_THRESHOLD):
    """The AHBA sample table with the tissue class of every sample.

    Parameters
    ----------
    samples : pandas.DataFrame
        A sample table with the corrected MNI152 coordinates
        (:data:`brainexpr.datasets.loaders.SAMPLE_COORDS`, e.g.
        :func:`brainexpr.datasets.load_samples`).
    %(data_dir)s
    threshold : float

    Returns
    -------
    pandas.DataFrame
        A copy with a last column ``tissue_class``: int8 in {1, -1, 0}
        (:func:`tissue_class_at` at the corrected coordinates).
    """
    from ..datasets.loaders import SAMPLE_COORDS

    coords = samples[SAMPLE_COORDS].to_numpy()
    return samples.assign(tissue_class=tissue_class_at(coords, data_dir=data_dir,
                                                       threshold=threshold))


@lru_cache(maxsize=4)
def _smoothed_probability_arrays(data_dir, sigma_mm: float):
    from scipy.ndimage import gaussian_filter

    grey, white, affine = _probability_arrays(data_dir)
    voxel = np.abs(np.diag(affine)[:3])
    return (gaussian_filter(grey, sigma_mm / voxel, mode="constant"),
            gaussian_filter(white, sigma_mm / voxel, mode="constant"), affine)


@fill_doc
def tissue_probabilities_at(coords, sigma_mm: float = 0.0, data_dir=None) -> np.ndarray:
    """Grey- and white-matter probabilities at MNI coordinates, optionally smoothed.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    sigma_mm : float
        Standard deviation (mm) of the Gaussian that smooths the FSL MNI152 probability
        maps first (0: the maps as they are).
    %(data_dir)s

    Returns
    -------
    (n, 2) float array
        ``p_grey`` and ``p_white`` at the nearest voxel (0 outside the template grid).
    """
    import nibabel as nib

    key = None if data_dir is None else str(data_dir)
    grey, white, affine = (_smoothed_probability_arrays(key, float(sigma_mm)) if sigma_mm > 0
                           else _probability_arrays(key))
    ref = nib.Nifti1Image(np.zeros((1, 1, 1), np.int8), affine)
    return np.column_stack([sample_image(ref, coords, fill=0.0, data=a)
                            for a in (grey, white)]).astype(float)


def tissue_class_image(data_dir=None, resolution: int = 1, threshold: float = DEFAULT_THRESHOLD):
    """Return a tissue-class volume on the FSL MNI152 grid (1 or 2 mm) as a Nifti1Image."""
    import nibabel as nib

    from .space import mask_coordinates, mni_grid

    shape, affine = mni_grid(resolution)
    grid = nib.Nifti1Image(np.ones(shape, np.int8), affine)
    ijk, coords = mask_coordinates(grid)
    labels = np.zeros(shape, np.int8)
    labels[tuple(ijk.T)] = tissue_class_at(coords, data_dir=data_dir, threshold=threshold)
    return nib.Nifti1Image(labels, affine)
