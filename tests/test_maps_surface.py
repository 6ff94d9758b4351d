"""Tests of brainexpr.maps.surface: models evaluated at fsaverage5 vertices, GIFTI writing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from brainexpr.atlas.surface import midthickness_mni152
from brainexpr.atlas.tissue import tissue_class_at
from brainexpr.errors import InputError
from brainexpr.maps.surface import (predict_surface, sample_volume_on_surface,
                                    surface_filename, write_surface_maps)
from brainexpr.models.inr import INRRegressor

TINY = dict(n_layers=3, hidden_features=32, n_features=16, gene_hidden=16, n_frequencies=4,
            omega_0=10.0, learning_rate=1e-3, eval_every=10, random_state=0)


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Every test of this module runs with one torch thread."""


@pytest.fixture(scope="module")
def ensemble():
    rng = np.random.default_rng(0)
    coords = rng.uniform([-70, -100, -45], [70, 70, 80], (300, 3))
    values = pd.DataFrame({"APOE": np.sin(coords[:, 0] / 30), "HLA-DRB1": coords[:, 2] / 60})
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        return INRRegressor("factorized", max_steps=20, n_ensemble=2, **TINY).fit(
            coords, values, rng.choice([-1, 0, 1], len(coords)))


def test_file_names():
    assert surface_filename("HLA-DRB1", "donor-kriging", "L") == (
        "gene-HLADRB1_model-donorkriging_space-fsaverage_den-10k_hemi-L_expr.func.gii")
    assert surface_filename("APOE", "factorized", "R", "std").endswith("hemi-R_std.func.gii")


def test_gifti_maps_are_the_model_at_the_midthickness(ensemble, tmp_path, data_dir):
    out = tmp_path / "surface"
    files = write_surface_maps(ensemble, ["APOE"], out_dir=out, std=True, data_dir=data_dir)
    assert sorted(f.name for f in files) == sorted(
        surface_filename("APOE", "factorized", h, k) for h in "LR" for k in ("expr", "std"))
    listing = pd.read_csv(out / "maps.tsv", sep="\t")
    assert set(listing["hemisphere"]) == {"L", "R"} and len(listing) == 4
    for hemi in ("L", "R"):
        image = nib.load(out / surface_filename("APOE", "factorized", hemi))
        assert image.meta["AnatomicalStructurePrimary"] == (
            "CortexLeft" if hemi == "L" else "CortexRight")
        values = image.darrays[0].data
        coords = midthickness_mni152(hemi)
        pick = np.arange(0, 10242, 211)
        expected = ensemble.predict(coords[pick], tissue_class_at(coords[pick], data_dir=data_dir),
                                    genes=["APOE"])[:, 0]
        np.testing.assert_allclose(values[pick], expected, rtol=1e-4, atol=1e-5)
        spread = nib.load(out / surface_filename("APOE", "factorized", hemi, "std"))
        assert (spread.darrays[0].data >= 0).all() and spread.darrays[0].data.max() > 0


def test_models_without_uncertainty_and_bad_genes(data_dir, tmp_path):
    from brainexpr.models.baselines import KNNInterpolator

    rng = np.random.default_rng(1)
    coords = rng.uniform([-70, -100, -45], [70, 70, 80], (200, 3))
    knn = KNNInterpolator().fit(coords, pd.DataFrame({"APOE": coords[:, 1] / 50}),
                             tissue_class_at(coords, data_dir=data_dir))
    predicted = predict_surface(knn, data_dir=data_dir)
    assert predicted["L"][0].shape == (1, 10242) and predicted["L"][1] is None
    with pytest.raises(InputError, match="does not give"):
        write_surface_maps(knn, out_dir=tmp_path / "std", std=True, data_dir=data_dir)
    with pytest.raises(InputError, match="APOEE"):
        write_surface_maps(knn, ["APOEE"], out_dir=tmp_path / "bad", data_dir=data_dir)
    assert not (tmp_path / "std").exists() and not (tmp_path / "bad").exists()


def test_volume_route_samples_a_linear_field(data_dir):
    from brainexpr.atlas.space import mni_grid, voxel_to_mni

    shape, affine = mni_grid(2)
    ijk = np.indices(shape).reshape(3, -1).T
    field = voxel_to_mni(ijk, affine) @ np.array([0.02, -0.01, 0.03])
    image = nib.Nifti1Image(field.reshape(shape).astype(np.float32), affine)
    sampled = sample_volume_on_surface(image, "L")
    truth = midthickness_mni152("L") @ np.array([0.02, -0.01, 0.03])
    # vol_to_surf averages along the pial-white line: a linear field is recovered there
    assert np.median(np.abs(sampled - truth)) < 0.02
