"""Tests of brainexpr.evaluation.metrics (synthetic arrays, no data needed)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainexpr.errors import InputError
from brainexpr.evaluation import metrics as M


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(200, 5))
    pred = true + rng.normal(scale=[0.1, 0.5, 1.0, 2.0, 4.0], size=(200, 5))
    return pred, true


def test_pearson_and_spearman_match_scipy(pair):
    pred, true = pair
    r = M.pearson_columns(pred, true)
    rho = M.spearman_columns(pred, true)
    for j in range(5):
        assert r[j] == pytest.approx(stats.pearsonr(pred[:, j], true[:, j])[0], abs=1e-12)
        assert rho[j] == pytest.approx(stats.spearmanr(pred[:, j], true[:, j])[0], abs=1e-12)
    assert np.all(np.diff(r) < 0)  # more noise, lower r


def test_gene_metrics_values_and_nan_handling(pair):
    pred, true = pair
    pred = pred.copy()
    pred[:10, 0] = np.nan
    table = M.gene_metrics(pred, true, genes=list("abcde"))
    assert list(table.columns) == ["pearson", "spearman", "mse", "r2", "n"]
    assert table.loc["a", "n"] == 190 and table.loc["b", "n"] == 200
    keep = slice(10, None)
    expected_mse = np.mean((pred[keep, 0] - true[keep, 0]) ** 2)
    assert table.loc["a", "mse"] == pytest.approx(expected_mse)
    sst = np.sum((true[keep, 0] - true[keep, 0].mean()) ** 2)
    assert table.loc["a", "r2"] == pytest.approx(1 - expected_mse * 190 / sst)
    assert table.loc["a", "pearson"] == pytest.approx(stats.pearsonr(pred[keep, 0], true[keep, 0])[0])
    perfect = M.gene_metrics(true, true)
    assert np.allclose(perfect["r2"], 1) and np.allclose(perfect["pearson"], 1)


def test_gene_metrics_rejects_shape_mismatch():
    with pytest.raises(InputError, match="shape"):
        M.gene_metrics(np.zeros((4, 2)), np.zeros((4, 3)))


def test_whole_volume_r_is_inflated_by_background():
    rng = np.random.default_rng(1)
    # two unrelated positive maps (abagen-like [0, 1] values) inside a brain of 20,000 voxels
    a = 0.5 + 0.1 * rng.normal(size=(20_000, 1))
    b = 0.5 + 0.1 * rng.normal(size=(20_000, 1))
    inside = M.pearson_columns(a, b)[0]
    whole = M.whole_volume_r(a, b, n_background=60_000)[0]
    assert abs(inside) < 0.05
    assert whole > 0.9
    # the explicit computation over the padded volume agrees
    padded_a = np.r_[a[:, 0], np.zeros(60_000)]
    padded_b = np.r_[b[:, 0], np.zeros(60_000)]
    assert whole == pytest.approx(np.corrcoef(padded_a, padded_b)[0, 1], abs=1e-10)
    # a uniform subsample of the brain gives nearly the same number
    sample = rng.choice(20_000, 2_000, replace=False)
    estimate = M.whole_volume_r(a[sample], b[sample], n_background=60_000, n_mask=20_000)[0]
    assert estimate == pytest.approx(whole, abs=0.01)


def test_regional_means_and_agreement():
    values = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [7.0, 70.0], [9.0, 90.0], [0.0, 0.0]])
    labels = np.array(["a", "a", "b", "c", "d", None], dtype=object)
    means = M.regional_means(values, labels)
    assert list(means.index) == ["a", "b", "c", "d"]
    assert means.loc["a"].tolist() == [2.0, 20.0]
    reference = means * 2 + 1
    per_gene, aggregate = M.regional_agreement(means, reference, min_regions=3)
    assert np.allclose(per_gene, 1.0)
    assert aggregate == pytest.approx(1.0)
    per_gene, _ = M.regional_agreement(means, reference, min_regions=5)
    assert per_gene.isna().all()


def test_differential_stability_tracks_donor_noise():
    rng = np.random.default_rng(2)
    profile = rng.normal(size=(30, 1))
    values, donors = [], []
    for donor in range(4):
        noise = rng.normal(size=(30, 2)) * np.array([0.2, 3.0])  # stable gene, unstable gene
        values.append(profile + noise)
        donors += [donor] * 30
    values = pd.DataFrame(np.vstack(values), columns=["stable", "unstable"])
    region_labels = np.tile(np.arange(30), 4).astype(object)
    ds = M.differential_stability(values, np.array(donors), region_labels)
    assert ds["stable"] > 0.9
    assert ds["unstable"] < 0.4


def test_reproducibility_bins_and_summary():
    bins = M.reproducibility_bins([0.1, 0.4, 0.6, 0.95])
    assert list(bins) == ["0.00-0.30", "0.30-0.50", "0.50-0.70", "0.70-1.00"]
    table = pd.DataFrame({"method": ["a", "a", "b"], "pearson": [0.2, 0.4, 0.9], "r2": [0.0, 0.2, 0.8]})
    summary = M.summarise(table, ["method"]).set_index("method")
    assert summary.loc["a", "pearson_mean"] == pytest.approx(0.3)
    assert summary.loc["b", "n_genes"] == 1


def test_calibration_metrics_on_known_gaussian_errors():
    from brainexpr.evaluation.metrics import calibration_metrics

    rng = np.random.default_rng(1)
    pred = rng.normal(size=(20_000, 2))
    std = np.column_stack([np.full(20_000, 1.0), np.full(20_000, 0.5)])  # right, and too narrow
    true = pred + rng.normal(size=pred.shape)
    true[:10, 0] = np.nan
    table = calibration_metrics(pred, std, true, genes=["right", "narrow"])
    assert table.loc["right", "n"] == 19_990
    assert table.loc["right", "coverage50"] == pytest.approx(0.5, abs=0.01)
    assert table.loc["right", "coverage90"] == pytest.approx(0.9, abs=0.01)
    assert table.loc["right", "coverage95"] == pytest.approx(0.95, abs=0.01)
    assert table.loc["right", "sd_rmse"] == pytest.approx(1.0, abs=0.02)
    assert table.loc["narrow", "coverage90"] == pytest.approx(0.59, abs=0.015)  # P(|N(0,1)| < 0.82)
    assert table.loc["narrow", "sd_rmse"] == pytest.approx(0.5, abs=0.02)
    # expected CRPS of N(0, 1) forecasts of N(0, 1) outcomes: 1 / sqrt(pi); NLL: 0.5 log(2 pi e)
    assert table.loc["right", "crps"] == pytest.approx(1 / np.sqrt(np.pi), abs=0.01)
    assert table.loc["right", "nll"] == pytest.approx(0.5 * np.log(2 * np.pi * np.e), abs=0.02)
    assert table.loc["narrow", "nll"] > table.loc["right", "nll"]
    # an SD that grows with the error ranks it
    scale = rng.uniform(0.2, 3.0, 5000)
    ranked = calibration_metrics(np.zeros(5000), scale, scale * rng.normal(size=5000))
    assert ranked["sd_error_spearman"].iloc[0] > 0.3


def test_abagen_regional_weights_every_donor_equally():
    # donor a: region r1 twice (values 0 and 2), r2 once (4); donor b: r1 once (10)
    values = np.array([[0.0], [2.0], [4.0], [10.0]])
    table = M.abagen_regional(values, ["a", "a", "a", "b"], ["r1", "r1", "r2", "r1"])
    # r1: donor means 1 and 10, then their mean (not the site mean 4); r2 only seen by a
    assert table.loc["r1", 0] == pytest.approx(5.5)
    assert table.loc["r2", 0] == pytest.approx(4.0)
    assert list(table.index) == ["r1", "r2"]
