"""Tests of brainexpr.evaluation.parcel_cv: leave-parcels-out cross-validation of a model
fitted to a regional table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainexpr.errors import InputError
from brainexpr.evaluation import parcel_cv as P
from brainexpr.evaluation.metrics import gene_metrics
from brainexpr.models.parcel import ParcelKrigingRegressor

from parcel_fixtures import box_atlas  # noqa: F401


def test_random_folds_partition_the_parcels():
    folds = P.parcel_folds(list("abcdefghijk"), n_folds=3, random_state=0)
    tests = np.concatenate([test for _, _, test in folds])
    assert sorted(tests) == list(range(11))
    assert sorted(len(test) for _, _, test in folds) == [3, 4, 4]
    for _, train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 11
    again = P.parcel_folds(list("abcdefghijk"), n_folds=3, random_state=0)
    assert all((a[2] == b[2]).all() for a, b in zip(folds, again))
    with pytest.raises(InputError, match="n_folds must lie in"):
        P.parcel_folds(list("ab"), n_folds=3)


def test_grouped_folds_never_split_a_group():
    index = [f"p{i}" for i in range(12)]
    groups = pd.Series(list("aaabbbccddee"), index=index)
    folds = P.parcel_folds(index, n_folds=3, groups=groups, random_state=1)
    assert sorted(np.concatenate([t for _, _, t in folds])) == list(range(12))
    for _, _, test in folds:
        held = set(groups.iloc[test])
        assert set(np.flatnonzero(groups.isin(held).to_numpy())) == set(test)
    sizes = [len(t) for _, _, t in folds]
    assert sum(sizes) == 12 and max(sizes) - min(sizes) <= 2
    with pytest.raises(InputError, match="a group to each"):
        P.parcel_folds(index, n_folds=2, groups=groups.iloc[:5])
    with pytest.raises(InputError, match="number of groups"):
        P.parcel_folds(index, n_folds=6, groups=groups)


def test_setup_keeps_a_fixed_subset_of_each_parcels_voxels(box_atlas):
    image, regions, table = box_atlas
    setup = P.parcel_setup(image, regions, table.index, max_voxels=200)
    assert np.diff(setup.offsets).max() == 200 and len(setup.coords) == 12 * 200
    again = P.parcel_setup(image, regions, table.index, max_voxels=200)
    np.testing.assert_array_equal(setup.coords, again.coords)
    assert (setup.tissue == 0).all()
    with pytest.raises(InputError, match="not in the atlas table"):
        P.parcel_setup(image, regions, ["r01", "nowhere"])


def test_predicted_parcel_means_are_voxel_averages(box_atlas):
    image, regions, table = box_atlas
    setup = P.parcel_setup(image, regions, table.index, max_voxels=50)

    class Linear:
        def predict(self, coords, tissue=None):
            return coords[:, :2]

    means = P.predict_parcel_means(Linear(), setup, [3, 0])
    for row, parcel in enumerate([3, 0]):
        start, stop = setup.offsets[parcel], setup.offsets[parcel + 1]
        np.testing.assert_allclose(means[row], setup.coords[start:stop, :2].mean(axis=0))


def test_held_out_parcels_are_predicted_from_the_others(box_atlas):
    image, regions, table = box_atlas
    setup = P.parcel_setup(image, regions, table.index, max_voxels=200)
    folds = P.parcel_folds(table.index, n_folds=4, random_state=0)
    seen = []

    def fit(train):
        seen.append(list(train.index))
        return P.fit_on_parcels(ParcelKrigingRegressor(), train, setup)

    prediction = P.predict_held_out_parcels(table, setup, folds, fit)
    assert prediction.shape == table.shape and np.isfinite(prediction.to_numpy()).all()
    # each fold's model saw only that fold's training parcels
    assert seen == [list(table.index[train]) for _, train, _ in folds]
    r = gene_metrics(prediction.to_numpy(), table.to_numpy(), table.columns)["pearson"]
    assert (r > 0.8).all()
    with pytest.raises(InputError, match="rows of setup.index"):
        P.predict_held_out_parcels(table.iloc[::-1], setup, folds, fit)


def test_fit_on_parcels_fits_a_clone(box_atlas):
    image, regions, table = box_atlas
    setup = P.parcel_setup(image, regions, table.index, max_voxels=20)
    template = ParcelKrigingRegressor(nugget_grid=(0.01,))
    fitted = P.fit_on_parcels(template, table, setup)
    assert fitted is not template and not hasattr(template, "n_genes_")
    assert fitted.get_params() == template.get_params() and fitted.n_genes_ == 2
