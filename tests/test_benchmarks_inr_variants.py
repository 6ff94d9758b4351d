"""Tests of benchmarks/inr_variants.py: the INR variants of donor kriging that lost on
held-out data, kept outside the package (synthetic donors, small sizes)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from brainexpr.errors import InputError
from brainexpr.evaluation import benchmark
from brainexpr.evaluation.benchmark import BenchmarkData, run_benchmark
from brainexpr.models import registry
from brainexpr.models.kriging import DonorKrigingRegressor

import inr_variants
from inr_variants import BlendedINRRegressor, INRDriftKrigingRegressor, ResidualINRRegressor

from donor_fixtures import corr, donor_data  # noqa: F401

#: Small settings per variant (about a second per fit).
SMALL = {
    "residual-inr": dict(n_layers=2, hidden_features=8, n_features=4, max_steps=3),
    "kriging+inr": dict(n_layers=2, hidden_features=8, n_features=4, max_steps=3, n_ensemble=2),
    "inr-drift-kriging": dict(n_layers=2, hidden_features=8, n_features=4, max_steps=3,
                              nugget_grid=(0.15,), donor_grid=(0.0, 1.0)),
}


@pytest.fixture
def registered(monkeypatch):
    """The variants registered in copies of the package's registries (undone afterwards)."""
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    monkeypatch.setattr(benchmark, "METHODS", dict(benchmark.METHODS))
    inr_variants.register()
    inr_variants.register()  # again: replaces, does not raise


def test_variants_are_not_package_models():
    assert not set(inr_variants.MODELS) & set(registry.MODELS)
    assert not set(inr_variants.METHODS) & set(benchmark.METHODS)


def test_register_adds_models_and_benchmark_methods(registered):
    for name, cls in inr_variants.MODELS.items():
        assert registry.model_class(name) is cls
        assert registry.capabilities(name).donors and not registry.capabilities(name).network
        assert name not in registry.workflow_models()  # no model file: not for the workflows
    quick = benchmark.METHODS["kriging+inr"].factory(True, 7)
    assert isinstance(quick, BlendedINRRegressor)
    assert (quick.max_steps, quick.n_ensemble, quick.random_state) == (20, 2, 7)
    assert benchmark.check_methods(["residual-inr"]) == ["residual-inr"]
    assert "residual-inr" not in benchmark.DEFAULT_METHODS
    with pytest.raises(ValueError, match="already registered"):
        benchmark.register_method("kriging+inr", benchmark.METHODS["kriging+inr"])


@pytest.mark.parametrize("name", sorted(inr_variants.MODELS))
def test_variants_follow_the_estimator_contract(name, donor_data, torch_one_thread):
    coords, values, _, donors, tissue = donor_data
    estimator = inr_variants.MODELS[name](device="cpu", random_state=0, **SMALL[name])
    assert clone(estimator).get_params() == estimator.get_params()
    with pytest.raises(NotFittedError):
        estimator.predict(coords[:5], tissue=tissue[:5])
    assert estimator.fit(coords[:300], values[:300], tissue=tissue[:300],
                         donors=donors[:300]) is estimator
    assert estimator.predict(coords[300:310], tissue=tissue[300:310]).shape == (10, 4)


def test_registered_variant_runs_in_the_benchmark(registered, donor_data, torch_one_thread):
    coords, values, _, donors, tissue = donor_data
    samples = pd.DataFrame(coords, columns=benchmark.COORD_COLUMNS).assign(
        tissue_class=tissue, donor=donors, dk_region=np.where(coords[:, 0] > 0, "R", "L"))
    data = BenchmarkData("synthetic", samples, pd.DataFrame(values, columns=list("abcd")))
    result = run_benchmark([data], ["donor-kriging", "residual-inr"], ["blocked"], n_folds=2,
                           quick=True, random_state=0)
    assert set(result.metrics["method"]) == {"donor-kriging", "residual-inr"}
    assert result.settings["method_descriptions"]["residual-inr"].startswith("donor kriging +")


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
    assert 1 <= n_columns <= 4 and model.drift_.shape == (4, reference.drift_.shape[1] + n_columns)
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
    # kernel mode adds no drift column: tissue means (3) and the default covariates (5) only
    assert model.drift_.shape == (4, 3 + 5)
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
