"""Tests of the classical interpolators in brainexpr.models.baselines (synthetic data)."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.exceptions import NotFittedError

from brainexpr.errors import InputError
from brainexpr.models.baselines import (KNNInterpolator, KrigingInterpolator,
                                        NearestSampleInterpolator, empirical_variogram,
                                        fit_variogram, mirror_sites, missing_groups)


def smooth_field(coords, rng, n_genes=3, range_mm=25.0, nugget=0.0):
    """A Gaussian-process sample with exponential covariance (the kriging model itself)."""
    cov = np.exp(-cdist(coords, coords) / range_mm) + 1e-8 * np.eye(len(coords))
    field = np.linalg.cholesky(cov) @ rng.normal(size=(len(coords), n_genes))
    return field + nugget * rng.normal(size=field.shape)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    coords = rng.uniform(-50, 50, size=(700, 3))
    values = smooth_field(coords, rng)
    return coords, values


@pytest.mark.parametrize("model", [NearestSampleInterpolator(), KNNInterpolator(), KrigingInterpolator(
    params={"nugget": 1e-6, "sill": 1.0, "range": 25.0})])
def test_interpolators_reproduce_the_samples(model, data):
    coords, values = data
    model.fit(coords[:400], values[:400])
    assert np.allclose(model.predict(coords[:400]), values[:400], atol=1e-3)
    assert model.predict(coords[400:]).shape == (300, 3)


def test_accuracy_ranks_nearest_knn_kriging(data):
    coords, values = data
    rng = np.random.default_rng(1)
    noisy = values + 0.3 * rng.normal(size=values.shape)
    scores = {}
    for name, model in (("nearest", NearestSampleInterpolator()), ("knn", KNNInterpolator()),
                        ("kriging", KrigingInterpolator())):
        prediction = model.fit(coords[:500], noisy[:500]).predict(coords[500:])
        scores[name] = np.mean([np.corrcoef(prediction[:, g], values[500:, g])[0, 1] for g in range(3)])
    assert scores["nearest"] < scores["knn"] < scores["kriging"]
    assert scores["kriging"] > 0.7


def test_knn_is_inverse_distance_weighting():
    coords = np.array([[0.0, 0, 0], [10.0, 0, 0], [0, 30.0, 0]])
    values = np.array([[1.0], [3.0], [100.0]])
    model = KNNInterpolator(n_neighbors=2).fit(coords, values)
    # at x = 2.5: distances 2.5 and 7.5 -> weights 1/2.5 and 1/7.5 -> (0.4 * 1 + 0.1333 * 3) / 0.5333
    assert model.predict([[2.5, 0, 0]])[0, 0] == pytest.approx((1 / 2.5 + 3 / 7.5) / (1 / 2.5 + 1 / 7.5))
    squared = KNNInterpolator(n_neighbors=2, power=2).fit(coords, values)
    assert squared.predict([[2.5, 0, 0]])[0, 0] < model.predict([[2.5, 0, 0]])[0, 0]


def test_mirroring_modes():
    coords = np.array([[-30.0, 0, 0], [20.0, 5, 5], [-10.0, 1, 1]])
    values = np.arange(3.0)[:, None]
    for mode, added in (("bidirectional", 3), ("leftright", 2), ("rightleft", 1), (None, 0)):
        mirrored, copied = mirror_sites(coords, values, mode)
        assert len(mirrored) == 3 + added
        assert np.allclose(mirrored[3:, 0], -coords[np.isin(values[:, 0], copied[3:, 0]), 0])
    model = NearestSampleInterpolator(mirror="leftright").fit(coords, values)
    assert model.predict([[30.0, 0, 0]])[0, 0] == 0.0  # the mirror image of site 0
    with pytest.raises(InputError, match="mirror must be one of"):
        KNNInterpolator(mirror="left").fit(coords, values)


def test_missing_values_are_skipped_per_gene(data):
    coords, values = data
    values = values[:300].copy()
    values[:150, 1] = np.nan
    groups = missing_groups(values)
    assert len(groups) == 2
    for model in (NearestSampleInterpolator(), KNNInterpolator(), KrigingInterpolator()):
        prediction = model.fit(coords[:300], values).predict(coords[:150])
        assert np.isfinite(prediction).all()
    exact = NearestSampleInterpolator().fit(coords[:300], values).predict(coords[150:300])
    assert np.allclose(exact, values[150:300])


def test_variogram_fit_recovers_range_and_nugget():
    rng = np.random.default_rng(4)
    coords = rng.uniform(-60, 60, size=(900, 3))
    values = smooth_field(coords, rng, n_genes=6, range_mm=20.0, nugget=np.sqrt(0.25))
    standardised = (values - values.mean(0)) / values.std(0)
    params = fit_variogram(*empirical_variogram(coords, standardised, random_state=0), model="exponential")
    assert 10 < params["range"] < 40
    assert 0.1 < params["nugget"] < 0.4


def test_variogram_pools_genes_in_bounded_blocks(monkeypatch):
    """Genes are pooled a block at a time (memory bounded for 20,000 genes): same variogram."""
    from brainexpr.models import baselines

    rng = np.random.default_rng(5)
    coords = rng.uniform(-40, 40, size=(300, 3))
    values = rng.normal(size=(300, 7))
    values[rng.random(values.shape) < 0.1] = np.nan
    values[5] = np.nan                                # a site with no value at all
    whole = empirical_variogram(coords, values, max_lag=30.0, random_state=0)
    monkeypatch.setattr(baselines, "_VARIOGRAM_BLOCK", 1)    # one gene per block
    blocked = empirical_variogram(coords, values, max_lag=30.0, random_state=0)
    for a, b in zip(whole, blocked):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_kriging_genes_by_name_and_errors(data):
    coords, values = data
    frame = pd.DataFrame(values[:200], columns=["APOE", "MAPT", "APP"])
    model = KrigingInterpolator().fit(coords[:200], frame)
    both = model.predict(coords[200:210])
    assert np.allclose(model.predict(coords[200:210], genes=["APP", "APOE"]), both[:, [2, 0]])
    with pytest.raises(NotFittedError):
        KrigingInterpolator().predict(coords[:3])
    with pytest.raises(InputError, match="variogram must be one of"):
        KrigingInterpolator(variogram="cubic").fit(coords[:50], values[:50])
    with pytest.raises(InputError, match="max_sites"):
        KrigingInterpolator(max_sites=100).fit(coords[:200], values[:200])
    with pytest.raises(InputError, match="voxel indices"):
        KNNInterpolator().fit(coords[:50] + 500, values[:50])


def test_abagen_benchmark_method_reproduces_abagens_weighting():
    """abagen's get_interpolated_map: copy every site to x -> -x, 1/distance over the 10 nearest."""
    from brainexpr.evaluation.benchmark import METHODS

    model = METHODS["abagen"].factory(False, 0)
    assert (model.n_neighbors, model.power, model.mirror) == (10, 1.0, "bidirectional")
    # 6 sites in the right hemisphere -> 12 with their mirror images; the 10 nearest of the
    # query are the 6 mirrored copies (left) and the 4 nearest originals, by hand:
    coords = np.array([[10.0, 0, 0], [20, 0, 0], [10, 10, 0], [30, 0, 0], [10, 0, 20], [40, 5, 0]])
    values = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])
    model.fit(coords, values)
    query = np.array([-12.0, 1.0, 0.0])
    pool = np.vstack([coords, coords * [-1, 1, 1]])
    pool_values = np.concatenate([values[:, 0], values[:, 0]])
    distance = np.sqrt(((pool - query) ** 2).sum(1))
    nearest = np.argsort(distance)[:10]
    weights = 1.0 / distance[nearest]
    expected = (weights * pool_values[nearest]).sum() / weights.sum()
    assert sorted(nearest) == [0, 1, 2, 4, 6, 7, 8, 9, 10, 11]  # the two farthest originals drop out
    assert model.predict([query])[0, 0] == pytest.approx(expected, rel=1e-12)
    # at a site (and its mirror image) the value is the site's own, as abagen's infinite weight
    assert model.predict([[-10.0, 10, 0]])[0, 0] == pytest.approx(3.0)


def test_kriging_std_is_calibrated_on_its_own_gaussian_field():
    """Data drawn from the kriging model itself: nominal 90 % intervals cover ~90 %."""
    from brainexpr.evaluation.metrics import calibration_metrics

    rng = np.random.default_rng(5)
    coords = rng.uniform(-50, 50, size=(900, 3))
    values = smooth_field(coords, rng, n_genes=6, range_mm=20.0, nugget=0.4)
    model = KrigingInterpolator(params={"nugget": 0.16, "sill": 1.0, "range": 20.0}).fit(coords[:600],
                                                                                          values[:600])
    # the fitted values are standardised per gene; the SD comes back in the data's units
    table = calibration_metrics(model.predict(coords[600:]), model.predict_std(coords[600:], kind="sample"),
                                values[600:])
    # 1,800 held-out values: the binomial SD of a 90 % coverage is 0.7 %
    assert table["coverage90"].mean() == pytest.approx(0.9, abs=0.035)
    assert table["sd_rmse"].mean() == pytest.approx(1.0, abs=0.15)
    population = model.predict_std(coords[600:])
    assert (population < model.predict_std(coords[600:], kind="sample")).all()
    with pytest.raises(InputError, match="kind"):
        model.predict_std(coords[:2], kind="donor")
