"""Fixtures shared by the tests of :mod:`brainexpr.transcriptome` (imported by them).

A parcel-kriging model of a few genes of the real DK-83 table, and a sparse 2 mm brain
mask (every 4th voxel along each axis, about 3,600 voxels spread over every parcel), so
that a whole atlas builds in about a second.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

GENES = ["APOE", "MAPT", "APP", "TREM2", "PSEN1", "CLU", "BIN1", "PICALM", "SORL1", "ABCA7",
         "CD33", "GRN"]

#: Small chunks: 3 gene blocks x 4 voxel blocks.
CHUNKS = (5, 1000)


@pytest.fixture(scope="session")
def atlas_inputs(tmp_path_factory, data_dir):
    """(model file, sparse mask file), made once per test process."""
    from brainexpr.datasets import load_brain_mask
    from brainexpr.atlas.space import resample_to_grid
    from brainexpr.workflows.models import fit_model

    folder = tmp_path_factory.mktemp("atlas_inputs")
    model = folder / "model.pt"
    fit_model(source="regional", genes=GENES, model="parcel-kriging", out=model,
              data_dir=data_dir)
    mask = resample_to_grid(load_brain_mask(data_dir), 2, "nearest")
    data = np.zeros(mask.shape, dtype=np.uint8)
    data[::4, ::4, ::4] = np.asarray(mask.dataobj)[::4, ::4, ::4] > 0
    mask_file = folder / "sparse_mask.nii.gz"
    nib.save(nib.Nifti1Image(data, mask.affine), mask_file)
    return model, mask_file


def build_small(out, atlas_inputs, data_dir, **kwargs):
    """Build the small atlas of the fixture's model on the sparse mask."""
    from brainexpr.transcriptome.build import build_atlas

    model, mask = atlas_inputs
    params = dict(out=out, model_file=model, mask=str(mask), resolution=2, chunks=CHUNKS,
                  dtype="float32", n_workers=1, data_dir=data_dir)
    return build_atlas(**{**params, **kwargs})
