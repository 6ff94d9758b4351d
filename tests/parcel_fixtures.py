"""A small synthetic atlas with exact parcel means, shared by the tests of the
leave-parcels-out cross-validation and of the benchmark's parcel scoring (imported by them)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainexpr.models.base import parcel_voxels


def smooth_field(coords):
    x, y, z = coords.T
    return np.column_stack([np.sin(x / 15.0) + y / 30.0, np.cos(y / 20.0) + z / 25.0])


@pytest.fixture(scope="module")
def box_atlas():
    """Twelve 16 mm box parcels in a 3 x 2 x 2 block of the 2 mm MNI grid, touching faces,
    with a table of the exact parcel means of :func:`smooth_field`."""
    from brainexpr.atlas.space import mni_grid

    shape, affine = mni_grid(2)
    labels = np.zeros(shape, dtype=np.int16)
    label = 0
    for i in range(3):
        for j in range(2):
            for k in range(2):
                label += 1
                labels[30 + 8 * i:38 + 8 * i, 45 + 8 * j:53 + 8 * j, 30 + 8 * k:38 + 8 * k] = label
    image = nib.Nifti1Image(labels, affine)
    regions = pd.DataFrame({"id": np.arange(1, 13)},
                           index=pd.Index([f"r{i:02d}" for i in range(1, 13)], name="region"))
    coords, offsets, _ = parcel_voxels(image, regions["id"].to_numpy())
    means = np.add.reduceat(smooth_field(coords), offsets[:-1], axis=0) / np.diff(offsets)[:, None]
    return image, regions, pd.DataFrame(means, index=regions.index, columns=["g1", "g2"])
