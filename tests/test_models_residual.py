"""Tests of brainexpr.models.residual (synthetic donors, small sizes)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.exceptions import NotFittedError

from brainexpr.errors import InputError
from brainexpr.models.baselines import KrigingInterpolator
from brainexpr.models.residual import (BlendedINRRegressor, DonorKrigingRegressor,
                                       ResidualINRRegressor)


def gp(coords, rng, n, range_mm):
    cov = np.exp(-cdist(coords, coords) / range_mm) + 1e-8 * np.eye(len(coords))
    return np.linalg.cholesky(cov) @ rng.normal(size=(len(coords), n))


@pytest.fixture(scope="module")
def donor_data():
    """Four donors sample a shared field; each adds a strong smooth deviation of its own."""
    rng = np.random.default_rng(0)
    n_donors, per_donor, n_genes = 4, 150, 4
    coords = rng.uniform(-50, 50, size=(n_donors * per_donor, 3))
    donors = np.repeat([f"d{i}" for i in range(n_donors)], per_donor)
    tissue = rng.choice([1, -1, 0], size=len(coords))
    truth = gp(coords, rng, n_genes, 30.0) + 0.8 * (tissue == -1)[:, None]
    deviation = np.zeros_like(truth)
    for d in np.unique(donors):
        rows = donors == d
        deviation[rows] = 1.5 * gp(coords[rows], rng, n_genes, 20.0)
    values = truth + deviation + 0.3 * rng.normal(size=truth.shape)
    return coords, values, truth, donors, tissue


def corr(a, b):
    return np.mean([np.corrcoef(a[:, g], b[:, g])[0, 1] for g in range(a.shape[1])])


def test_donor_kriging_recovers_the_population_field(donor_data):
    coords, values, truth, donors, tissue = donor_data
    train, test = slice(0, 480), slice(480, None)  # the last donor is held out
    plain = KrigingInterpolator().fit(coords[train], values[train]).predict(coords[test])
    model = DonorKrigingRegressor(random_state=0).fit(coords[train], values[train], tissue=tissue[train],
                                                      donors=donors[train])
    ours = model.predict(coords[test], tissue=tissue[test])
    assert corr(ours, truth[test]) > corr(plain, truth[test]) + 0.03
    assert np.mean((ours - truth[test]) ** 2) < np.mean((plain - truth[test]) ** 2)
    # strong donor deviations were detected, and white matter sits above grey matter
    assert np.all(model.donor_share_ >= 0.3)
    white_minus_grey = model.drift_[:, 2] - model.drift_[:, 1]
    assert np.all(white_minus_grey * model.scale_ > 0.3)


def test_donor_kriging_without_donors_and_with_missing_values(donor_data):
    coords, values, _, _, tissue = donor_data
    values = values[:300].copy()
    values[:40, 2] = np.nan
    model = DonorKrigingRegressor(random_state=0).fit(coords[:300], values, tissue=tissue[:300])
    assert np.all(model.donor_share_ == 0)  # no donors given: no donor effect
    prediction = model.predict(coords[300:320], tissue=tissue[300:320], genes=[2, 0])
    assert prediction.shape == (20, 2) and np.isfinite(prediction).all()


def test_donor_kriging_mirroring_and_errors(donor_data):
    coords, values, _, donors, tissue = donor_data
    model = DonorKrigingRegressor(mirror="leftright", random_state=0).fit(
        coords[:200], values[:200], tissue=tissue[:200], donors=donors[:200])
    assert len(model.coords_) == 200 + int((coords[:200, 0] < 0).sum())
    with pytest.raises(NotFittedError):
        DonorKrigingRegressor().predict(coords[:2])
    with pytest.raises(InputError, match="donors has"):
        DonorKrigingRegressor().fit(coords[:50], values[:50], donors=donors[:10])
    with pytest.raises(InputError, match="nugget_grid"):
        DonorKrigingRegressor(nugget_grid=(0.0, 0.1)).fit(coords[:50], values[:50])


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
