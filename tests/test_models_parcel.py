"""Tests of the block (area-to-point) kriging of regional tables."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from brainexpr.errors import InputError
from brainexpr.models.base import parcel_voxels
from brainexpr.models.baselines import VARIOGRAMS
from brainexpr.models.parcel import (ParcelKrigingRegressor, _correlation_in_place,
                                     quadrature_nodes)
from brainexpr.models.registry import make_model


def smooth_fields(coords):
    """Two known smooth fields (columns) at MNI points."""
    x, y, z = coords.T
    return np.column_stack([np.sin(x / 14.0) + np.cos(y / 18.0) + z / 40.0,
                            np.cos((x + y) / 20.0) - 0.5 * np.sin(z / 12.0)])


@pytest.fixture(scope="module")
def voronoi_atlas():
    """A 2 mm MNI-grid ellipsoid cut into 30 Voronoi parcels, with tissue and a table.

    Returns (atlas image, regions table, tissue image, table of the exact parcel means of
    :func:`smooth_fields`).
    """
    from brainexpr.atlas.space import mni_grid, voxel_to_mni

    shape, affine = mni_grid(2)
    ijk = np.argwhere(np.ones(shape, dtype=bool))
    coords = voxel_to_mni(ijk, affine)
    inside = ((coords[:, 0] / 42) ** 2 + ((coords[:, 1] + 15) / 52) ** 2
              + ((coords[:, 2] - 10) / 36) ** 2) < 1
    ijk, coords = ijk[inside], coords[inside]
    rng = np.random.default_rng(3)
    seeds = coords[rng.choice(len(coords), 30, replace=False)]
    nearest = np.argmin(((coords[:, None, :] - seeds[None]) ** 2).sum(axis=2), axis=1)
    labels = np.zeros(shape, dtype=np.int16)
    labels[tuple(ijk.T)] = nearest + 1
    image = nib.Nifti1Image(labels, affine)
    # white matter below z = 5 mm, grey above, "other" in a shell at the edge
    tissue = np.zeros(shape, dtype=np.int8)
    tissue[tuple(ijk.T)] = np.where(coords[:, 2] < 5, -1, 1)
    tissue[tuple(ijk[coords[:, 1] > 25].T)] = 0
    tissue_image = nib.Nifti1Image(tissue, affine)
    regions = pd.DataFrame({"id": np.arange(1, 31)},
                           index=pd.Index([f"p{i:02d}" for i in range(1, 31)], name="region"))
    voxel_coords, offsets, _ = parcel_voxels(image, regions["id"].to_numpy())
    field = smooth_fields(voxel_coords)
    means = np.add.reduceat(field, offsets[:-1], axis=0) / np.diff(offsets)[:, None]
    table = pd.DataFrame(means, index=regions.index, columns=["g1", "g2"])
    return image, regions, tissue_image, table


def voxels_of(image, regions):
    coords, offsets, flat = parcel_voxels(image, regions["id"].to_numpy())
    return coords, offsets, flat


def parcel_means(prediction, offsets):
    return np.add.reduceat(prediction, offsets[:-1], axis=0) / np.diff(offsets)[:, None]


def test_quadrature_nodes_are_bounded_weighted_and_centred(voronoi_atlas):
    image, regions, _, _ = voronoi_atlas
    coords, offsets, _ = voxels_of(image, regions)
    nodes, weights, spreads, node_offsets = quadrature_nodes(coords, offsets, n_nodes=16,
                                                             random_state=0)
    counts = np.diff(node_offsets)
    assert counts.max() <= 16 and counts.min() >= 8
    np.testing.assert_allclose(np.add.reduceat(weights, node_offsets[:-1]), 1.0)
    # cell centroids weighted by their voxel shares average to the parcel centroid
    centroids = np.add.reduceat(coords, offsets[:-1], axis=0) / np.diff(offsets)[:, None]
    node_means = np.add.reduceat(nodes * weights[:, None], node_offsets[:-1], axis=0)
    np.testing.assert_allclose(node_means, centroids, atol=1e-8)
    small = quadrature_nodes(coords[:5], np.array([0, 5]), n_nodes=16)
    np.testing.assert_allclose(small[0], coords[:5])


@pytest.mark.parametrize("variogram", sorted(VARIOGRAMS))
def test_fast_correlation_matches_the_variogram_models(variogram):
    h = np.linspace(0.0, 3.0, 50)
    np.testing.assert_allclose(_correlation_in_place(h.astype(np.float32), variogram),
                               VARIOGRAMS[variogram](h), rtol=1e-5, atol=1e-6)


def test_recovers_a_smooth_field_better_than_painted_parcels(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    model = ParcelKrigingRegressor().fit_regions(image, table, regions=regions)
    coords, offsets, _ = voxels_of(image, regions)
    truth = smooth_fields(coords)
    prediction = model.predict(coords)
    painted = np.repeat(table.to_numpy(), np.diff(offsets), axis=0)
    for g in range(2):
        error = np.sqrt(np.mean((prediction[:, g] - truth[:, g]) ** 2)) / truth[:, g].std()
        painted_error = np.sqrt(np.mean((painted[:, g] - truth[:, g]) ** 2)) / truth[:, g].std()
        assert np.corrcoef(prediction[:, g], truth[:, g])[0, 1] > 0.9
        assert error < 0.8 * painted_error
    assert model.genes_ == ["g1", "g2"] and model.fit_kind_ == "regions"
    assert model.region_names_ == list(regions.index)


def test_parcel_means_of_prediction_reproduce_inputs_with_small_nugget(voronoi_atlas):
    image, regions, tissue_image, table = voronoi_atlas
    coords, offsets, flat = voxels_of(image, regions)
    tissue = np.asarray(tissue_image.dataobj).ravel()[flat]
    spread = table.std().to_numpy()
    errors = []
    for nodes in (32, 128):  # the voxel averages are quadratures: more nodes, smaller error
        model = ParcelKrigingRegressor(nugget_grid=(1e-5,), range_grid=(15.0, 30.0),
                                       trend_range=None, tissue_drift=True,
                                       parcel_samples=nodes).fit_regions(
            image, table, regions=regions, tissue_image=tissue_image)
        means = parcel_means(model.predict(coords, tissue=tissue), offsets)
        errors.append(np.abs(means - table.to_numpy()).max(axis=0) / spread)
    assert errors[1].max() < 0.025 and (errors[1] < errors[0]).all()
    assert list(model.drift_columns_) == [0, 1, 2]


def test_large_nugget_smooths_instead_of_reproducing(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    noisy = table + np.random.default_rng(0).normal(scale=0.5, size=table.shape)
    exact, smooth = (ParcelKrigingRegressor(nugget_grid=(tau,), trend_range=None).fit_regions(
        image, noisy, regions=regions) for tau in (1e-5, 3.0))
    coords, offsets, _ = voxels_of(image, regions)
    misfit = [np.abs(parcel_means(m.predict(coords), offsets) - noisy.to_numpy()).mean()
              for m in (exact, smooth)]
    assert misfit[0] < 0.05 < misfit[1]


def test_tissue_drift_recovers_a_white_matter_offset(voronoi_atlas):
    image, regions, tissue_image, _ = voronoi_atlas
    coords, offsets, flat = voxels_of(image, regions)
    tissue = np.asarray(tissue_image.dataobj).ravel()[flat].astype(float)
    field = 0.3 * smooth_fields(coords)[:, 0] + 2.0 * (tissue == -1)
    table = pd.DataFrame({"g": parcel_means(field[:, None], offsets)[:, 0]}, index=regions.index)
    model = ParcelKrigingRegressor(tissue_drift=True).fit_regions(
        image, table, regions=regions, tissue_image=tissue_image)
    point = np.array([[0.0, -15.0, 0.0]] * 2)
    difference = np.diff(model.predict(point, tissue=[1, -1])[:, 0])[0]
    assert abs(difference - 2.0) < 0.3
    without = ParcelKrigingRegressor().fit_regions(
        image, table, regions=regions, tissue_image=tissue_image)
    assert list(without.drift_columns_) == [0]
    assert np.diff(without.predict(point, tissue=[1, -1])[:, 0])[0] == pytest.approx(0.0)


def test_hyperparameter_sharing_and_likelihood_table(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    grids = dict(range_grid=(5.0, 20.0, 80.0), nugget_grid=(0.001, 0.1, 1.0),
                 trend_share_grid=(0.0, 0.5))
    shared = ParcelKrigingRegressor(share="all", **grids).fit_regions(image, table, regions=regions)
    per_gene = ParcelKrigingRegressor(share="none", **grids).fit_regions(image, table,
                                                                         regions=regions)
    assert shared.likelihood_.shape == (3, 2, 3, 2)
    np.testing.assert_allclose(shared.likelihood_, per_gene.likelihood_)
    assert len(set(shared.range_)) == 1 and len(set(shared.nugget_)) == 1
    assert len(set(shared.trend_share_)) == 1
    best = per_gene.likelihood_.reshape(18, 2).max(axis=0)
    chosen = [per_gene.likelihood_[grids["range_grid"].index(r),
                                   grids["trend_share_grid"].index(w),
                                   grids["nugget_grid"].index(t), g]
              for g, (r, w, t) in enumerate(zip(per_gene.range_, per_gene.trend_share_,
                                                per_gene.nugget_))]
    np.testing.assert_allclose(chosen, best)
    local = ParcelKrigingRegressor(trend_range=None, **grids).fit_regions(image, table,
                                                                         regions=regions)
    assert local.likelihood_.shape == (3, 1, 3, 2) and (local.trend_share_ == 0).all()


def test_trend_component_is_used_in_prediction(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    model = ParcelKrigingRegressor(trend_share_grid=(0.5,)).fit_regions(image, table,
                                                                        regions=regions)
    coords = voxels_of(image, regions)[0][::41]
    with_trend = model.predict(coords)
    model.trend_share_ = np.zeros(2)   # the same weights without the trend component
    assert np.abs(model.predict(coords) - with_trend).max() > 0.05


def test_missing_values_leave_other_genes_unchanged(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    holey = table.copy()
    holey.iloc[:4, 1] = np.nan
    coords = voxels_of(image, regions)[0][::50]
    full = ParcelKrigingRegressor().fit_regions(image, table[["g1"]], regions=regions)
    model = ParcelKrigingRegressor(share="none").fit_regions(image, holey, regions=regions)
    np.testing.assert_allclose(model.predict(coords, genes=["g1"])[:, 0],
                               full.predict(coords)[:, 0], rtol=1e-5, atol=1e-5)
    assert (model.alpha_[1, :4] == 0).all() and np.isfinite(model.predict(coords)).all()


def test_prediction_is_chunked_consistently_and_selects_genes(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    model = ParcelKrigingRegressor().fit_regions(image, table, regions=regions)
    coords = voxels_of(image, regions)[0][::97]
    whole = model.predict(coords)
    model.set_params(chunk_size=7)
    np.testing.assert_allclose(model.predict(coords), whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.predict(coords, genes=["g2"])[:, 0], whole[:, 1])
    np.testing.assert_allclose(model.predict(coords, genes=[1, 0]), whole[:, ::-1])
    assert whole.dtype == np.float32 and whole.shape == (len(coords), 2)


def test_fit_from_point_samples_interpolates_them():
    rng = np.random.default_rng(1)
    coords = rng.uniform(-40, 40, size=(150, 3))
    values = smooth_fields(coords)
    model = ParcelKrigingRegressor(nugget_grid=(1e-6,)).fit(coords, values)
    np.testing.assert_allclose(model.predict(coords), values, atol=1e-3)
    assert model.fit_kind_ == "samples" and model.genes_ == ["gene0", "gene1"]


def test_fitted_state_is_plain_arrays_scalars_and_lists(voronoi_atlas):
    image, regions, _, table = voronoi_atlas
    model = ParcelKrigingRegressor().fit_regions(image, table, regions=regions)
    fitted = {k: v for k, v in vars(model).items() if k.endswith("_")}
    assert {"nodes_", "alpha_", "drift_", "range_", "nugget_", "gene_names_"} <= set(fitted)
    for name, value in fitted.items():
        assert isinstance(value, (np.ndarray, int, float, str, list, dict)), name
    summary = model.summary()
    assert summary["model"] == "parcel-kriging" and summary["n_regions"] == 30


def test_registered_in_the_model_registry():
    model = make_model("parcel-kriging", parcel_samples=8)
    assert isinstance(model, ParcelKrigingRegressor) and model.parcel_samples == 8


def test_model_file_round_trip_and_workflow_choice(voronoi_atlas, tmp_path):
    """Saved with the safe numpy format; the workflows accept it for parcel means."""
    from brainexpr.models.registry import load_model, save_model
    from brainexpr.models.registry import regional_models, resolve_model

    image, regions, _, table = voronoi_atlas
    model = ParcelKrigingRegressor().fit_regions(image, table, regions=regions)
    loaded = load_model(save_model(model, tmp_path / "model.pt", name="parcel-kriging"))
    coords, _, _ = voxels_of(image, regions)
    np.testing.assert_array_equal(loaded.predict(coords[::7]), model.predict(coords[::7]))
    assert "parcel-kriging" in regional_models()
    assert resolve_model("parcel-kriging", "regions") == ("parcel-kriging", "requested")


def test_bad_inputs_raise_one_line_errors(tiny_atlas):
    image, regions = tiny_atlas
    table = pd.DataFrame({"g": [1.0, 2.0, 3.0, 4.0]}, index=regions.index)
    with pytest.raises(NotFittedError):
        ParcelKrigingRegressor().predict(np.zeros((1, 3)))
    for params, message in [({"share": "gene"}, "share must be one of"),
                            ({"variogram": "cubic"}, "variogram must be one of"),
                            ({"range_grid": ()}, "range_grid must be"),
                            ({"nugget_grid": (0.0, 0.1)}, "nugget_grid must be"),
                            ({"trend_share_grid": (1.0,)}, "trend_share_grid must be"),
                            ({"trend_range": -5.0}, "trend_range must be"),
                            ({"parcel_samples": 0}, "parcel_samples and chunk_size")]:
        with pytest.raises(InputError, match=message):
            ParcelKrigingRegressor(**params).fit_regions(image, table, regions=regions)
    with pytest.raises(InputError, match="must be a DataFrame"):
        ParcelKrigingRegressor().fit_regions(image, table.to_numpy(), regions=regions)
    with pytest.raises(InputError, match="not in the atlas table"):
        ParcelKrigingRegressor().fit_regions(image, table.rename(index={"a": "zz"}),
                                             regions=regions)
    with pytest.raises(InputError, match="pass regions="):
        ParcelKrigingRegressor().fit_regions(image, table)
    extra = pd.concat([regions, pd.DataFrame({"id": [9]}, index=pd.Index(["e"], name="region"))])
    with pytest.raises(InputError, match="no voxels in the atlas image: e"):
        ParcelKrigingRegressor().fit_regions(
            image, pd.concat([table, pd.DataFrame({"g": [5.0]}, index=["e"])]), regions=extra)
    tissue = nib.Nifti1Image(np.full(image.shape, 2, np.int8), image.affine)
    with pytest.raises(InputError, match="tissue classes"):
        ParcelKrigingRegressor().fit_regions(image, table, regions=regions, tissue_image=tissue)
    with pytest.raises(InputError, match="at least 3 regions"):
        ParcelKrigingRegressor().fit_regions(image, table.iloc[:2], regions=regions)
    with pytest.raises(InputError, match="no finite value"):
        ParcelKrigingRegressor().fit_regions(image, table * np.nan, regions=regions)
    model = ParcelKrigingRegressor(parcel_samples=8).fit_regions(image, table, regions=regions)
    with pytest.raises(InputError, match="beyond 250 mm"):
        model.predict(np.full((2, 3), 500.0))
    with pytest.raises(InputError, match="tissue has 1 entries"):
        model.predict(np.zeros((2, 3)), tissue=[1])
    with pytest.raises(InputError):
        model.predict(np.zeros((2, 3)), genes=["nope"])


def test_std_of_the_field_grows_away_from_the_data_and_matches_point_kriging():
    from brainexpr.models.baselines import KrigingInterpolator

    rng = np.random.default_rng(2)
    coords = rng.uniform(-40, 40, size=(120, 3))
    values = smooth_fields(coords)
    model = ParcelKrigingRegressor(range_grid=(20.0,), nugget_grid=(0.1,), trend_range=None,
                                   variogram="exponential").fit(coords, values)
    near, far = coords[:5] + 0.5, np.array([[0.0, 0.0, 75.0]])
    assert (model.predict_std(near) < model.predict_std(far)).all()
    assert (model.predict_std(near) < model.predict_std(near, kind="sample")).all()
    # with one-point "parcels" block kriging is ordinary kriging with the same covariance
    points = rng.uniform(-40, 40, size=(30, 3))
    sill = model.sigma2_[0]
    reference = KrigingInterpolator(variogram="exponential",
                                    params={"nugget": 0.1 * sill, "sill": sill, "range": 20.0}).fit(
        coords, values[:, :1])
    np.testing.assert_allclose(model.predict_std(points, genes=[0]), reference.predict_std(points),
                               rtol=0.02)
