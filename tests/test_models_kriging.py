"""Tests of brainexpr.models.kriging: donor kriging (synthetic donors, small sizes)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.exceptions import NotFittedError

from brainexpr.errors import InputError
from brainexpr.models.baselines import KrigingInterpolator
from brainexpr.models.kriging import DonorKrigingRegressor

from donor_fixtures import corr, donor_data, gp, hemispheres  # noqa: F401


def test_donor_kriging_recovers_the_population_field(donor_data):
    coords, values, truth, donors, tissue = donor_data
    train, test = slice(0, 480), slice(480, None)  # the last donor is held out
    plain = KrigingInterpolator().fit(coords[train], values[train]).predict(coords[test])
    model = DonorKrigingRegressor(random_state=0).fit(coords[train], values[train], tissue=tissue[train],
                                                      donors=donors[train])
    ours = model.predict(coords[test], tissue=tissue[test])
    assert corr(ours, truth[test]) > corr(plain, truth[test]) + 0.03
    assert np.mean((ours - truth[test]) ** 2) < np.mean((plain - truth[test]) ** 2)
    # strong donor deviations were detected, and white matter sits above grey matter (by 0.8;
    # each gene's estimate is noisy beside the strong donor deviations and the covariate drift)
    assert np.all(model.donor_share_ >= 0.3)
    white_minus_grey = (model.drift_[:, 2] - model.drift_[:, 1]) * model.scale_
    assert np.all(white_minus_grey > 0) and white_minus_grey.mean() > 0.4


def test_donor_kriging_without_donors_and_with_missing_values(donor_data):
    coords, values, _, _, tissue = donor_data
    values = values[:300].copy()
    values[:40, 2] = np.nan
    model = DonorKrigingRegressor(random_state=0).fit(coords[:300], values, tissue=tissue[:300])
    assert np.all(model.donor_share_ == 0)  # no donors given: no donor effect
    prediction = model.predict(coords[300:320], tissue=tissue[300:320], genes=[2, 0])
    assert prediction.shape == (20, 2) and np.isfinite(prediction).all()



def naive_donor_kriging_predict(model, coords, tissue):
    """Reference prediction: one cross-covariance per stored weight group, no merging."""
    from brainexpr.models.baselines import VARIOGRAMS
    from brainexpr.models.kriging import covariate_drift, drift_design

    rho = VARIOGRAMS[model.variogram]
    covariates = covariate_drift(coords, **model.covariates_)
    design = drift_design(tissue, model.tissue_drift, model.drift_columns_)
    design = design if covariates is None else np.column_stack([design, covariates])
    out = design @ model.drift_.T
    range_scale = getattr(model, "range_scale_", np.ones(model.n_genes_))
    for sites, genes, alpha in model.weights_:
        scaled_range = model.range_ * range_scale[genes[0]]
        out[:, genes] += rho(cdist(coords, model.coords_[sites]) / scaled_range) @ alpha
    return model.mean_ + model.scale_ * out


def test_donor_kriging_predict_equals_a_naive_reference(donor_data):
    coords, values, _, donors, tissue = donor_data
    values = values[:300].copy()
    values[:30, 1] = np.nan  # two site masks, several hyperparameter groups
    model = DonorKrigingRegressor(chunk_size=7, tissue_probability_mm=5.0, coordinate_trend="quadratic",
                                  random_state=0).fit(coords[:300], values, tissue=tissue[:300], donors=donors[:300])
    assert len(model.weights_) > len({w[0].tobytes() for w in model.weights_})  # groups share masks
    expected = naive_donor_kriging_predict(model, coords[300:350], tissue[300:350])
    np.testing.assert_allclose(model.predict(coords[300:350], tissue=tissue[300:350]), expected,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.predict(coords[300:350], tissue=tissue[300:350], genes=[3, 1]),
                               expected[:, [3, 1]], rtol=1e-10, atol=1e-10)
    # per-gene ranges: groups differ in range too
    model = DonorKrigingRegressor(range_grid=(0.5, 1.0, 2.0), random_state=0).fit(
        coords[:300], values, tissue=tissue[:300], donors=donors[:300])
    assert set(np.unique(model.range_scale_)) <= {0.5, 1.0, 2.0}
    np.testing.assert_allclose(model.predict(coords[300:350], tissue=tissue[300:350]),
                               naive_donor_kriging_predict(model, coords[300:350], tissue[300:350]),
                               rtol=1e-10, atol=1e-10)
    with pytest.raises(InputError, match="range_grid"):
        DonorKrigingRegressor(range_grid=(0.0, 1.0)).fit(coords[:50], values[:50])

def test_covariate_drift_columns_and_their_held_out_gain(data_dir, tmp_path):
    from brainexpr.atlas.tissue import tissue_probabilities_at
    from brainexpr.models.kriging import covariate_drift

    rng = np.random.default_rng(1)
    coords = rng.uniform([-60, -80, -30], [60, 60, 60], size=(500, 3))
    assert covariate_drift(coords) is None
    trend = covariate_drift(coords, coordinate_trend="quadratic")
    both = covariate_drift(coords, tissue_probability_mm=5.0, coordinate_trend="quadratic")
    linear = covariate_drift(coords, coordinate_trend="linear")
    assert trend.shape == (500, 6) and both.shape == (500, 8) and linear.shape == (500, 3)
    np.testing.assert_allclose(linear, trend[:, :3])
    np.testing.assert_allclose(linear[:, 1:], coords[:, 1:] / 50.0)
    np.testing.assert_array_equal(covariate_drift(coords, coordinate_trend=True), trend)  # older model files
    for name in ("linear", "quadratic"):  # both are left-right symmetric
        np.testing.assert_allclose(covariate_drift(coords * [-1, 1, 1], coordinate_trend=name),
                                   covariate_drift(coords, coordinate_trend=name))
    with pytest.raises(InputError, match="coordinate_trend must be one of 'linear', 'quadratic'"):
        DonorKrigingRegressor(coordinate_trend="cubic").fit(coords[:50], np.ones((50, 1)))
    # the default drift: the 5 mm tissue probabilities and the x^2, y, z trend
    assert DonorKrigingRegressor().fit(coords[:100], rng.normal(size=(100, 1))).covariates_ == {
        "tissue_probability_mm": 5.0, "coordinate_trend": "linear"}
    # a value that follows the smoothed white-matter share: the covariate carries it into held-out sites
    white = tissue_probabilities_at(coords, 5.0)[:, 1]
    values = np.column_stack([3.0 * white, -2.0 * white]) + 0.3 * rng.normal(size=(500, 2))
    train, test = slice(0, 400), slice(400, None)
    errors = {}
    for mm in (None, 5.0):
        model = DonorKrigingRegressor(tissue_probability_mm=mm, coordinate_trend=False, symmetry_grid=(0.0,),
                                      random_state=0).fit(coords[train], values[train])
        assert model.covariates_ == {"tissue_probability_mm": mm, "coordinate_trend": None}
        errors[mm] = np.mean((model.predict(coords[test]) - values[test]) ** 2)
    assert errors[5.0] < 0.7 * errors[None]
    # the covariates travel with the model file, and predict_std uses the same drift
    from brainexpr.models.registry import load_model, save_model

    loaded = load_model(save_model(model, tmp_path / "model.pt", name="donor-kriging"))
    assert loaded.covariates_ == model.covariates_
    np.testing.assert_array_equal(loaded.predict(coords[test]), model.predict(coords[test]))
    assert np.isfinite(loaded.predict_std(coords[test], kind="sample")).all()
    with pytest.raises(InputError, match="tissue_probability_mm"):
        DonorKrigingRegressor(tissue_probability_mm=-1.0).fit(coords, values)


def test_donor_kriging_fitted_before_covariates_still_predicts(donor_data):
    coords, values, _, donors, tissue = donor_data
    model = DonorKrigingRegressor(tissue_probability_mm=None, coordinate_trend=None, random_state=0).fit(
        coords[:200], values[:200], tissue=tissue[:200], donors=donors[:200])
    expected = model.predict(coords[200:230], tissue=tissue[200:230])
    del model.covariates_  # as in a model file written before the covariate drift
    np.testing.assert_allclose(model.predict(coords[200:230], tissue=tissue[200:230]), expected)


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


def test_symmetry_weight_is_recovered(hemispheres):
    coords, values, truth = hemispheres
    model = DonorKrigingRegressor(symmetry_grid=(0.0, 0.5, 1.0), tissue_drift=False, random_state=0)
    model.fit(coords, values)
    np.testing.assert_array_equal(model.symmetry_, [1.0] * 4 + [0.0] * 4)
    # the mirrored term predicts a held-out block from the other hemisphere's sites
    test = coords[:, 0] < -25
    train = ~test
    learned = model.fit(coords[train], values[train]).predict(coords[test])
    plain = DonorKrigingRegressor(symmetry_grid=(0.0,), tissue_drift=False, random_state=0).fit(
        coords[train], values[train]).predict(coords[test])
    assert corr(learned[:, :4], truth[test, :4]) > corr(plain[:, :4], truth[test, :4]) + 0.2
    assert abs(corr(learned[:, 4:], truth[test, 4:]) - corr(plain[:, 4:], truth[test, 4:])) < 0.02
    with pytest.raises(InputError, match="symmetry_grid"):
        DonorKrigingRegressor(symmetry_grid=(0.0, 1.5)).fit(coords[:50], values[:50])


def test_donor_kriging_std_is_calibrated_and_local_systems_match_the_exact_one(donor_data):
    from brainexpr.evaluation.metrics import calibration_metrics

    coords, values, truth, donors, tissue = donor_data
    train, test = slice(0, 450), slice(450, None)  # the last donor and part of the third held out
    model = DonorKrigingRegressor(std_neighbors=None, random_state=0).fit(
        coords[train], values[train], tissue=tissue[train], donors=donors[train])
    prediction = model.predict(coords[test], tissue=tissue[test])
    exact = model.predict_std(coords[test], tissue=tissue[test], kind="sample")
    table = calibration_metrics(prediction, exact, values[test])
    # 600 held-out values; binomial SD of a 90 % coverage ~1.2 %, plus model-selection error
    assert table["coverage90"].mean() == pytest.approx(0.9, abs=0.06)
    assert 0.75 < table["sd_rmse"].mean() < 1.3
    population = model.predict_std(coords[test], tissue=tissue[test])
    assert np.isfinite(population).all() and (population > 0).all() and (population < exact).all()
    # local systems of the nearest sites: close to the exact SD
    model.set_params(std_neighbors=120)
    local = model.predict_std(coords[test], tissue=tissue[test])
    np.testing.assert_allclose(local, population, rtol=0.03)
    with pytest.raises(InputError, match="kind"):
        model.predict_std(coords[:2], kind="donor")


def test_local_std_with_symmetry_handles_sites_found_twice(hemispheres):
    coords, values, _ = hemispheres
    model = DonorKrigingRegressor(symmetry_grid=(1.0,), tissue_drift=False, std_neighbors=None,
                                  random_state=0).fit(coords[:120], values[:120])
    exact = model.predict_std(coords[500:])
    # near the midline a site and its mirror image are both among the neighbours of a point
    near_midline = np.column_stack([np.linspace(-3, 3, 20), np.zeros(20), np.zeros(20)])
    model.set_params(std_neighbors=119)
    local = model.predict_std(coords[500:])
    np.testing.assert_allclose(local, exact, rtol=0.02)
    assert np.isfinite(model.predict_std(near_midline)).all()


def test_trust_score_ranks_genes_by_held_out_accuracy():
    rng = np.random.default_rng(3)
    coords = rng.uniform(-50, 50, size=(400, 3))
    field = gp(coords, rng, 1, 25.0)[:, 0]
    values = np.column_stack([field + 0.2 * rng.normal(size=400), field + 2.0 * rng.normal(size=400),
                              rng.normal(size=400)])
    model = DonorKrigingRegressor(tissue_drift=False, random_state=0).fit(coords, values)
    assert model.trust_[0] > 0.6
    assert model.trust_[0] > model.trust_[1] > model.trust_[2]
    assert abs(model.trust_[2]) < 0.2
    assert np.isnan(DonorKrigingRegressor(trust_block_mm=None).fit(coords, values).trust_).all()


def test_variance_is_rescaled_on_leave_one_donor_out_residuals(donor_data):
    coords, values, _, donors, tissue = donor_data
    train, test = slice(0, 450), slice(450, None)  # the last donor is new
    fitted = {}
    for name, grid in (("free", (0.0, 0.3, 1.0, 3.0, 10.0)), ("no donor effect", (0.0,))):
        model = DonorKrigingRegressor(donor_grid=grid, random_state=0).fit(
            coords[train], values[train], tissue=tissue[train], donors=donors[train])
        sd = model.predict_std(coords[test], tissue=tissue[test], kind="sample")
        error = np.abs(values[test] - model.predict(coords[test], tissue=tissue[test]))
        inside, inside_unscaled = error < 1.645 * sd, error < 1.645 * sd / np.sqrt(model.variance_scale_)
        fitted[name] = model.variance_scale_, inside.mean(), inside_unscaled.mean()
        # one factor on the ML variance: the population SD grows or shrinks with the sample SD
        population = model.predict_std(coords[test], tissue=tissue[test])
        model.sigma2_ = model.sigma2_ / model.variance_scale_
        np.testing.assert_allclose(model.predict_std(coords[test], tissue=tissue[test]),
                                   population / np.sqrt(model.variance_scale_))
    # with the donor effect the model can fit, its own variance is about right
    scale, coverage, _ = fitted["free"]
    assert 0.7 < scale.min() and scale.max() < 1.3 and 0.86 < coverage < 0.95
    # without it the strong donor deviations (1.5^2 against the field's 1) are missing from the
    # sample variance: the training donors' held-out residuals say so and the SD grows
    scale, coverage, unscaled = fitted["no donor effect"]
    assert (scale > 1.25).all()
    assert unscaled < 0.85 and coverage > unscaled + 0.04
    # without donors, one block at a time is left out
    model = DonorKrigingRegressor(random_state=0).fit(coords[train], values[train], tissue=tissue[train])
    assert np.isfinite(model.variance_scale_).all() and (model.variance_scale_ > 0).all()
