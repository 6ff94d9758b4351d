import numpy as np
import pytest

from brainexpr.atlas import match_to_parcels, voxel_to_mni
from brainexpr.errors import InputError


def test_known_coordinate_in_left_hippocampus(data_dir):
    from brainexpr.datasets import load_atlas

    atlas = load_atlas("dk83", data_dir=data_dir)
    labels = np.asarray(atlas.image.dataobj)
    centre = voxel_to_mni(np.argwhere(labels == 40).mean(axis=0, keepdims=True), atlas.image.affine)
    assert match_to_parcels(centre, atlas.image, atlas.regions)[0] == 40
    # this point lies 1-2 mm outside the hippocampus label: matched only within tolerance
    near = np.array([[-25.0, -22.0, -12.0]])
    assert match_to_parcels(near, atlas.image, atlas.regions, hemisphere=["L"],
                            structure=["subcortex"])[0] == 40
    assert match_to_parcels(near, atlas.image, atlas.regions, tolerance=0.5)[0] == 0
    # a left sample cannot be assigned to a right parcel, nor a subcortical one to cortex
    assert match_to_parcels(near, atlas.image, atlas.regions, hemisphere=["R"])[0] == 0
    assert match_to_parcels(centre, atlas.image, atlas.regions, structure=["cortex"])[0] != 40


def test_tolerance_edge(tiny_atlas):
    image, regions = tiny_atlas
    # parcel 1 spans voxels i=20..39 on the 2 mm grid; x = 90 - 2 i, so its edge voxel i=20 is x=50
    edge = voxel_to_mni([[20, 50, 40]], image.affine)[0]
    outside = edge + np.array([2.0, 0, 0])  # one voxel (2 mm) outside
    ids = match_to_parcels(np.array([edge, outside, outside + [0.5, 0, 0]]), image, regions,
                           tolerance=2.0)
    np.testing.assert_array_equal(ids, [1, 1, 0])


def test_structure_constraint_and_bad_input(tiny_atlas):
    image, regions = tiny_atlas
    centre3 = voxel_to_mni([[30, 70, 40]], image.affine)
    assert match_to_parcels(centre3, image, regions, structure=["subcortex"])[0] == 3
    assert match_to_parcels(centre3, image, regions, structure=["cortex"])[0] == 0
    with pytest.raises(InputError, match="structure"):
        match_to_parcels(centre3, image, regions, structure=["ventricle"])
    with pytest.raises(InputError, match=r"\(n, 3\)"):
        match_to_parcels(np.array([[np.nan, 0, 0]]), image, regions)
