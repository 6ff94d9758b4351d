"""Tests of the benchmark runner (real sample sites, small subsets)."""

import numpy as np
import pytest

from brainexpr.errors import InputError
from brainexpr.evaluation.benchmark import (check_methods, check_protocols, celltype_data,
                                            predict_at_axis, run_benchmark)
from brainexpr.models.baselines import KNNInterpolator

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def small_celltypes(data_dir):
    return celltype_data(data_dir).subsample(900, random_state=0)


def test_subsample_keeps_every_donor(small_celltypes):
    assert 850 <= len(small_celltypes.values) <= 950
    assert small_celltypes.samples["donor"].nunique() == 6
    assert list(small_celltypes.values.columns)[:2] == ["Unknown", "InNeurons"]


def test_run_benchmark_on_real_celltypes(small_celltypes):
    result = run_benchmark([small_celltypes], ["nearest", "knn"], ["blocked", "donor", "parcels"],
                           n_folds=3, random_state=0)
    metrics = result.metrics
    assert set(metrics["target"]) == {"observed", "regional_observed"}  # no truth for real data
    blocked = metrics[(metrics["protocol"] == "blocked")].groupby("method")["pearson"].mean()
    # sane numbers: both methods predict held-out cell-type fractions, kNN better than one site
    assert 0.2 < blocked["nearest"] < blocked["knn"] < 0.95
    donor = metrics[(metrics["protocol"] == "donor") & (metrics["target"] == "observed")]
    assert donor.groupby("method").size().tolist() == [8, 8]
    assert set(result.timings["n_fits"]) == {3, 6}
    ceilings = result.ceilings.set_index("gene")["ceiling"]
    assert ceilings.between(0, 1).all() and ceilings["ExNeurons"] > 0.8
    assert len(result.aggregate) == 2 and result.aggregate["aggregate_r"].between(0.5, 1).all()
    assert len(result.held_out) > 100


def test_predict_at_axis_without_an_axis_input_interpolates_neighbours():
    rng = np.random.default_rng(0)
    coords = rng.uniform(-50, 50, size=(100, 3))
    values = np.column_stack([np.zeros(100), np.ones(100) * 2.0])
    model = KNNInterpolator().fit(coords, values)
    out = predict_at_axis(model, coords[:5], None, [0.25], train_axis=np.array([0.0, 1.0]))
    assert np.allclose(out, 0.5)


def test_predict_at_axis_uses_the_inr_gene_axis():
    from brainexpr.models.inr import INRRegressor

    rng = np.random.default_rng(0)
    coords = rng.uniform(-50, 50, size=(120, 3))
    values = rng.normal(size=(120, 3))
    axis = np.array([0.1, 0.5, 0.9])
    model = INRRegressor(design="factorized", n_layers=2, hidden_features=8, n_features=4, max_steps=2,
                         validation_fraction=0, device="cpu", random_state=0).fit(coords, values, gene_axis=axis)
    at_known = predict_at_axis(model, coords[:10], None, [0.5], train_axis=axis)
    assert np.allclose(at_known[:, 0], model.predict(coords[:10])[:, 1], atol=1e-5)
    between = predict_at_axis(model, coords[:10], None, [0.3, 0.7], train_axis=axis)
    assert between.shape == (10, 2) and np.isfinite(between).all()


def test_option_errors_name_the_allowed_values():
    with pytest.raises(InputError, match="methods must be among .*kriging"):
        check_methods(["kriging", "magic"])
    with pytest.raises(InputError, match="protocols must be among"):
        check_protocols(["loo"])
