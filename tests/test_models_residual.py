"""Tests of brainexpr.models.residual: the INR variants of donor kriging (synthetic donors,
small sizes)."""

import numpy as np
import pytest

from brainexpr.errors import InputError
from brainexpr.models.kriging import DonorKrigingRegressor
from brainexpr.models.residual import (BlendedINRRegressor, INRDriftKrigingRegressor,
                                       ResidualINRRegressor)

from donor_fixtures import corr, donor_data  # noqa: F401


def test_residual_inr_shrinks_an_unhelpful_network(donor_data):
    coords, values, truth, donors, tissue = donor_data
    model = ResidualINRRegressor(max_steps=20, hidden_features=16, n_features=4, n_layers=2,
                                 device="cpu", random_state=0)
    model.fit(coords[:480], values[:480], tissue=tissue[:480], donors=donors[:480])
    assert model.shrinkage_.shape == (4,)
    assert np.all((model.shrinkage_ >= 0) & (model.shrinkage_ <= 1))
    prediction = model.predict(coords[480:], tissue=tissue[480:])
    trend = model.trend_.predict(coords[480:], tissue=tissue[480:])
    # the residual network may only move the trend where held-out blocks supported it
    moved = np.abs(prediction - trend).max(axis=0)
    assert np.all(moved[model.shrinkage_ == 0] == 0)
    assert corr(prediction, truth[480:]) > 0.5
    with pytest.raises(InputError, match="validation_fraction"):
        ResidualINRRegressor(validation_fraction=0.7).fit(coords[:100], values[:100])


def test_blended_inr_weight_is_chosen_on_held_out_blocks(donor_data):
    coords, values, truth, donors, tissue = donor_data
    model = BlendedINRRegressor(max_steps=10, n_ensemble=1, n_layers=2, hidden_features=16, n_features=4,
                                weight_grid=(0.0, 0.5, 1.0), device="cpu", random_state=0)
    model.fit(coords[:480], values[:480], tissue=tissue[:480], donors=donors[:480])
    assert model.weight_ in (0.0, 0.5, 1.0)
    losses = model.validation_mse_
    assert losses["blend"] <= min(losses["kriging"], losses["inr"]) + 1e-12
    prediction = model.predict(coords[480:], tissue=tissue[480:])
    kriging = model.kriging_.predict(coords[480:], tissue=tissue[480:])
    if model.weight_ == 0:
        assert model.inr_ is None and np.allclose(prediction, kriging)
    else:
        inr = model.inr_.predict(coords[480:], tissue=tissue[480:])
        assert np.allclose(prediction, (1 - model.weight_) * kriging + model.weight_ * inr)
    with pytest.raises(InputError, match="weight_grid"):
        BlendedINRRegressor(weight_grid=(0.5, 2.0)).fit(coords[:100], values[:100])


def test_inr_drift_kriging_recovers_the_field_and_reduces_to_donor_kriging(donor_data, torch_one_thread):
    coords, values, truth, donors, tissue = donor_data
    train, test = slice(0, 480), slice(480, None)
    fit = dict(tissue=tissue[train], donors=donors[train])
    reference = DonorKrigingRegressor(random_state=0).fit(coords[train], values[train], **fit)
    off = INRDriftKrigingRegressor(use_inr=False, random_state=0).fit(coords[train], values[train], **fit)
    assert off.inr_ is None
    np.testing.assert_array_equal(off.predict(coords[test], tissue[test]),
                                  reference.predict(coords[test], tissue[test]))
    model = INRDriftKrigingRegressor(n_layers=2, hidden_features=16, n_features=4, max_steps=40,
                                     device="cpu", random_state=0).fit(coords[train], values[train], **fit)
    n_columns = model.drift_projection_.shape[1]
    assert 1 <= n_columns <= 4 and model.drift_.shape == (4, 3 + n_columns)
    prediction = model.predict(coords[test], tissue=tissue[test])
    assert corr(prediction, truth[test]) > 0.6
    baseline = reference.predict(coords[test], tissue[test])
    assert corr(prediction, truth[test]) > corr(baseline, truth[test]) - 0.05
    with pytest.raises(InputError, match="drift must be"):
        INRDriftKrigingRegressor(drift="magic").fit(coords[:50], values[:50])


def test_residual_inr_mirroring_augments_the_network_data(donor_data, torch_one_thread):
    coords, values, _, donors, tissue = donor_data
    right = np.flatnonzero(coords[:, 0] > 0)  # right-hemisphere sites only
    settings = dict(max_steps=10, hidden_features=8, n_features=2, n_layers=2, device="cpu", random_state=0)
    fit = dict(tissue=tissue[right], donors=donors[right])
    plain = ResidualINRRegressor(**settings).fit(coords[right], values[right], **fit)
    mirrored = ResidualINRRegressor(mirror="rightleft", **settings).fit(coords[right], values[right], **fit)
    # the mirrored residuals extend the network's data into the left hemisphere
    assert plain.residual_.coord_center_[0] > 15 and abs(mirrored.residual_.coord_center_[0]) < 5
    assert mirrored.predict(coords[:10], tissue=tissue[:10]).shape == (10, 4)


def test_inr_kernel_and_donor_heads_choose_the_network_weight_per_gene(donor_data, torch_one_thread):
    coords, values, truth, donors, tissue = donor_data
    train, test = slice(0, 480), slice(480, None)
    small = dict(n_layers=2, hidden_features=16, n_features=4, max_steps=40, device="cpu", random_state=0)
    model = INRDriftKrigingRegressor(use_as="kernel", donor_heads=True, kernel_grid=(0.0, 1.0), **small)
    model.fit(coords[train], values[train], tissue=tissue[train], donors=donors[train])
    assert set(np.unique(model.kernel_weight_)) <= {0.0, 1.0}
    assert model.drift_.shape == (4, 3)  # kernel mode adds no drift column
    prediction = model.predict(coords[test], tissue=tissue[test])
    assert corr(prediction, truth[test]) > 0.6
    # a kernel weight of 0 for every gene is the donor kriging
    zero = INRDriftKrigingRegressor(use_as="kernel", kernel_grid=(0.0,), **small).fit(
        coords[train], values[train], tissue=tissue[train], donors=donors[train])
    reference = DonorKrigingRegressor(random_state=0).fit(coords[train], values[train], tissue=tissue[train],
                                                          donors=donors[train])
    np.testing.assert_allclose(zero.predict(coords[test], tissue[test]),
                               reference.predict(coords[test], tissue[test]), rtol=1e-10, atol=1e-10)
    with pytest.raises(InputError, match="use_as"):
        INRDriftKrigingRegressor(use_as="magic").fit(coords[:50], values[:50])
