import nibabel as nib
import numpy as np
import pytest

from brainexpr.atlas import space
from brainexpr.errors import InputError


@pytest.mark.parametrize("resolution", [1, 2])
def test_round_trip_voxel_mni(resolution):
    shape, affine = space.mni_grid(resolution)
    rng = np.random.default_rng(0)
    ijk = np.column_stack([rng.integers(0, s, 500) for s in shape])
    mm = space.voxel_to_mni(ijk, affine)
    np.testing.assert_array_equal(space.mni_to_voxel(mm, affine), ijk)


def test_known_origin():
    _, affine = space.mni_grid(1)
    # MNI (0, 0, 0) is voxel (90, 126, 72) on the FSL 1 mm grid
    np.testing.assert_array_equal(space.mni_to_voxel([[0, 0, 0]], affine), [[90, 126, 72]])
    _, affine2 = space.mni_grid(2)
    np.testing.assert_array_equal(space.mni_to_voxel([[0, 0, 0]], affine2), [[45, 63, 36]])


def test_check_mni_image_rejects_wrong_space_and_shape():
    shape, affine = space.mni_grid(2)
    good = nib.Nifti1Image(np.zeros(shape, np.float32), affine)
    assert space.check_mni_image(good) is good
    rotated = affine.copy()
    rotated[:3, :3] = rotated[:3, :3] @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="not in MNI152 space"):
        space.check_mni_image(nib.Nifti1Image(np.zeros(shape, np.float32), rotated))
    scanner = np.diag([1.0, 1.0, 1.0, 1.0])  # origin in a corner: field of view misses the brain
    with pytest.raises(InputError, match="field of view"):
        space.check_mni_image(nib.Nifti1Image(np.zeros(shape, np.float32), scanner))
    with pytest.raises(InputError, match="spatial shape"):
        space.check_mni_image(good, shape=(182, 218, 182))
    with pytest.raises(InputError, match="dimensions"):
        space.check_mni_image(nib.Nifti1Image(np.zeros(shape[:2], np.float32), affine))


def test_resample_label_image_to_2mm(data_dir):
    from brainexpr.datasets import load_atlas

    atlas = load_atlas("dk83", data_dir=data_dir)
    low = space.resample_to_grid(atlas.image, 2, "nearest")
    assert low.shape == (91, 109, 91)
    assert set(np.unique(np.asarray(low.dataobj))) == set(range(84))


def test_mask_coordinates(data_dir):
    from brainexpr.datasets import load_brain_mask

    ijk, coords = space.mask_coordinates(load_brain_mask(data_dir=data_dir))
    assert 1_700_000 < len(ijk) < 2_000_000
    assert coords.shape == (len(ijk), 3)
