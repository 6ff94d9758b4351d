"""Tests of brainexpr.atlas.surface: fsaverage5 meshes, MNI152 positions, DK-68 parcels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainexpr.atlas import surface
from brainexpr.datasets import region_table
from brainexpr.errors import InputError


def test_meshes_ship_with_nilearn():
    for hemi in ("L", "R"):
        for kind in ("pial", "white", "sphere"):
            mesh = surface.fsaverage5_mesh(kind, hemi)
            assert mesh.coords.shape == (10242, 3) and mesh.faces.shape == (20480, 3)
        sphere = surface.fsaverage5_mesh("sphere", hemi).coords
        np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 100.0, rtol=1e-3)
    assert surface.fsaverage5_mesh("pial", "L").coords[:, 0].mean() < 0 < \
        surface.fsaverage5_mesh("pial", "R").coords[:, 0].mean()
    with pytest.raises(InputError, match="kind must be one of 'pial', 'white', 'sphere', 'infl"):
        surface.fsaverage5_mesh("midthickness", "L")


def test_mni305_to_mni152_matches_freesurfers_example():
    # FreeSurfer wiki CoordinateSystems 8a/8b: MNI305 (10, -20, 35) <-> MNI152
    np.testing.assert_allclose(surface.fsaverage_to_mni152([[10.0, -20.0, 35.0]]),
                               [[10.6941, -18.4064, 36.1385]], atol=1e-4)
    inverse = np.array([[1.0022, 0.0071, -0.0177, 0.0528], [-0.0146, 0.9990, 0.0027, -1.5519],
                        [0.0129, 0.0094, 1.0027, -1.2012], [0, 0, 0, 1]])   # wiki 8b
    np.testing.assert_allclose(inverse @ surface.MNI305_TO_MNI152, np.eye(4), atol=2e-4)


def test_midthickness_lies_between_pial_and_white():
    mid = surface.midthickness_mni152("L")
    pial = surface.fsaverage_to_mni152(surface.fsaverage5_mesh("pial", "L").coords)
    white = surface.fsaverage_to_mni152(surface.fsaverage5_mesh("white", "L").coords)
    np.testing.assert_allclose(np.linalg.norm(mid - pial, axis=1),
                               np.linalg.norm(mid - white, axis=1), atol=1e-6)
    thickness = np.linalg.norm(pial - white, axis=1)
    assert 2.0 < np.median(thickness) < 3.5        # cortical thickness, mm


def test_dk_labels_cover_the_68_regions(data_dir):
    cortex = set(region_table().query("structure == 'cortex'").index)
    seen = set()
    for hemi in ("L", "R"):
        labels = surface.dk_vertex_labels(hemi, data_dir)
        assert labels.shape == (10242,)
        assert 500 < (labels == "").sum() < 1200            # medial wall
        seen |= set(labels) - {""}
    assert seen == cortex


def test_parcellate_vertices_averages_within_regions(data_dir):
    labels = {h: surface.dk_vertex_labels(h, data_dir) for h in ("L", "R")}
    codes = {k: i for i, k in enumerate(region_table().index)}
    values = {h: pd.DataFrame({"code": [codes.get(k, -1) for k in labels[h]],
                               "ones": np.ones(10242)}) for h in labels}
    values["L"].loc[labels["L"] == "", "code"] = np.nan
    table = surface.parcellate_vertices(values, data_dir=data_dir)
    assert table.shape == (68, 2) and list(table.columns) == ["code", "ones"]
    assert list(table.index[:2]) == ["L_bankssts", "L_caudalanteriorcingulate"]
    np.testing.assert_array_equal(table["code"], [codes[k] for k in table.index])
    left_only = surface.parcellate_vertices({"L": np.arange(10242.0)}, data_dir=data_dir)
    assert left_only.shape == (34, 1)
    with pytest.raises(InputError, match="fsaverage5 has 10242 vertices"):
        surface.parcellate_vertices({"L": np.ones(100)}, data_dir=data_dir)


def test_sphere_centroids(data_dir):
    keys = ["L_superiortemporal", "L_precuneus", "R_superiortemporal"]
    centroids = surface.sphere_centroids(keys, data_dir=data_dir)
    xyz = centroids[["x", "y", "z"]].to_numpy(float)
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0)
    assert list(centroids["hemisphere"]) == ["L", "L", "R"]
    # lateral regions face outwards, the medial precuneus faces the midline
    assert xyz[0, 0] < 0 < xyz[1, 0] and xyz[2, 0] > 0
    assert (xyz[0] * [-1, 1, 1]) @ xyz[2] > 0.9        # near mirror images (< 25 degrees)
    with pytest.raises(InputError, match="R_putamen.*--region-set cortex"):
        surface.sphere_centroids(["L_insula", "R_putamen"], data_dir=data_dir)
