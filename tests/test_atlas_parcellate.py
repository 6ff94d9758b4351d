import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainexpr.atlas import paint, parcellate
from brainexpr.errors import InputError


def test_parcellating_the_dk_atlas_returns_its_ids(data_dir):
    from brainexpr.datasets import load_atlas

    atlas = load_atlas("dk83", data_dir=data_dir)
    image = nib.Nifti1Image(np.asarray(atlas.image.dataobj).astype(np.float32), atlas.image.affine)
    table = parcellate(image, atlas.image, atlas.regions)
    assert list(table.index) == list(atlas.regions.index)
    np.testing.assert_allclose(table["map0"], atlas.regions["id"])


def test_paint_then_parcellate_round_trip(tiny_atlas):
    image, regions = tiny_atlas
    values = pd.DataFrame({"g1": [1.0, 2.0, 3.0, 4.0], "g2": [0.5, -1.0, 0.0, 7.0]},
                          index=regions.index)
    painted = paint(values, image, regions)
    assert painted.shape == image.shape + (2,)
    back = parcellate(painted, image, regions, names=["g1", "g2"])
    pd.testing.assert_frame_equal(back, values, check_names=False)
    single = paint(values["g1"], image, regions)
    assert single.shape == image.shape


def test_nan_voxels_are_ignored_and_empty_parcels_reported(tiny_atlas):
    image, regions = tiny_atlas
    data = np.asarray(image.dataobj).astype(float)
    data[data == 2] = np.nan
    table = parcellate(data, image, regions)
    assert np.isnan(table.loc["b", "map0"]) and table.loc["a", "map0"] == 1.0
    with pytest.raises(InputError, match="no voxels"):
        parcellate(data, image, regions, empty="error")


def test_wrong_shape_is_rejected(tiny_atlas):
    image, regions = tiny_atlas
    with pytest.raises(InputError, match="does not match"):
        parcellate(np.zeros((10, 10, 10)), image, regions)
    with pytest.raises(InputError, match="not in the atlas"):
        paint(pd.Series([1.0], index=["zz"]), image, regions)
