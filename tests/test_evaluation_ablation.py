"""Tests of the Fig. 3 ablation runner (synthetic sites, tiny networks)."""

import numpy as np
import pandas as pd
import pytest

from brainexpr.errors import InputError
from brainexpr.evaluation.ablation import (AXES, PAPER_INR, add_noise, check_axes, history_frame,
                                           run_ablation, score_split, variants)
from brainexpr.evaluation.benchmark import COORD_COLUMNS, BenchmarkData
from brainexpr.evaluation.protocols import spatial_block_folds
from brainexpr.models.baselines import NearestSampleInterpolator
from brainexpr.reporting.ablation import write_ablation_outputs

TINY = dict(n_layers=3, hidden_features=16, omega_0=10.0, n_frequencies=2, learning_rate=1e-3,
            max_steps=20, eval_every=10, batch_size=64, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Every test of this module runs with one torch thread."""


@pytest.fixture(scope="module")
def synthetic():
    """600 sites of 3 donors with a smooth known truth for 3 genes, plus noise."""
    rng = np.random.default_rng(0)
    coords = rng.uniform([-60, -90, -40], [60, 60, 70], (600, 3))
    truth = np.column_stack([np.sin(coords[:, 0] / 25 + a) + coords[:, 2] / 80 for a in (0.0, 1.0, 2.0)])
    samples = pd.DataFrame(coords, columns=COORD_COLUMNS)
    samples["tissue_class"] = rng.choice([-1, 1], len(coords))
    samples["donor"] = np.repeat(["d1", "d2", "d3"], 200)
    samples["dk_region"] = "r1"
    genes = ["A", "B", "C"]
    values = pd.DataFrame(truth + rng.normal(scale=0.2, size=truth.shape), columns=genes)
    return BenchmarkData("phantom", samples, values, np.array([0.2, 0.5, 0.8]), None,
                         pd.DataFrame(truth, columns=genes))


def test_variants_fit_each_configuration_once():
    configurations = variants(AXES, PAPER_INR)
    # 3 + 4 + 3 + 3 + 4 values, the paper's base shared by all five axes
    assert len(configurations) == 17 - 4
    base = configurations[(tuple(sorted(PAPER_INR.items())), 0.0)]
    assert sorted(axis for axis, _ in base) == sorted(AXES)
    assert all(len(labels) == 1 for key, labels in configurations.items() if labels != base)
    with pytest.raises(InputError, match="ablation axes must be among"):
        check_axes({"dropout": (0.1,)})


def test_add_noise_scales_with_each_gene_sd():
    rng = np.random.default_rng(1)
    values = np.column_stack([rng.normal(scale=1.0, size=20000), rng.normal(scale=10.0, size=20000)])
    values[0, 0] = np.nan
    noisy = add_noise(values, 0.5, np.random.default_rng(2))
    added = np.nanstd(noisy - values, axis=0)
    np.testing.assert_allclose(added, [0.5, 5.0], rtol=0.03)
    assert np.isnan(noisy[0, 0])
    np.testing.assert_array_equal(add_noise(values, 0.0, None), values)
    with pytest.raises(InputError, match="noise level"):
        add_noise(values, -0.1, None)


def test_score_split_scores_clean_held_out_values_and_truth(synthetic):
    split = spatial_block_folds(synthetic.coords, 3, 20.0, 0.0, 0)[0]
    clean, _ = score_split(NearestSampleInterpolator(), synthetic, split, noise=0.0)
    noisy, _ = score_split(NearestSampleInterpolator(), synthetic, split, noise=2.0)
    assert set(clean["target"]) == {"observed", "truth"}
    assert (clean["n"] == len(split.test)).all()
    r_clean = clean[clean["target"] == "truth"]["pearson"].mean()
    r_noisy = noisy[noisy["target"] == "truth"]["pearson"].mean()
    assert 0.5 < r_clean and r_noisy < r_clean - 0.1      # the noise reached the training values


def test_run_ablation_tables_and_outputs(synthetic, tmp_path):
    axes = {"noise": (0.0, 0.5), "n_frequencies": (0, 2)}
    result = run_ablation([synthetic], axes, inr=TINY, n_folds=3, max_folds=1, random_state=0)
    metrics, curves = result.metrics, result.curves
    assert set(metrics["axis"]) == set(axes) and set(metrics["fold"]) == {"fold0"}
    assert len(metrics) == 4 * 2 * 3          # (axis, value) x target x gene
    # the base (noise 0 = N 2) is one fit reported under both axes
    base_noise = metrics[(metrics["axis"] == "noise") & (metrics["value"] == 0)]
    base_freq = metrics[(metrics["axis"] == "n_frequencies") & (metrics["value"] == 2)]
    np.testing.assert_allclose(base_noise["pearson"], base_freq["pearson"])
    assert metrics["pearson"].between(-1, 1).all() and (metrics["best_step"] <= 20).all()
    assert sorted(curves["step"].unique()) == [10, 20] and curves["kept"].any()
    assert np.isfinite(curves[["train_loss", "validation_loss"]].to_numpy()).all()
    summary = result.summary_table()
    assert len(summary) == 4 * 2 and summary["final_train_loss"].gt(0).all()
    # rows follow the axes and values as given (the shared base fit is not listed first)
    assert summary[summary["target"] == "truth"][["axis", "value"]].values.tolist() == [
        ["noise", 0.0], ["noise", 0.5], ["n_frequencies", 0.0], ["n_frequencies", 2.0]]
    assert result.summary["phantom/noise/0.5/truth"] == pytest.approx(
        metrics[(metrics["axis"] == "noise") & (metrics["value"] == 0.5) & (metrics["target"] == "truth")]
        ["pearson"].mean(), abs=1e-4)
    written = write_ablation_outputs(result, tmp_path)
    for name in ("ablation_metrics.csv", "ablation_curves.csv", "ablation_summary.csv", "ablation.json",
                 "ablation.md", "ablation_phantom.png", "ablation_phantom.svg"):
        assert written[name].is_file(), name
    assert "| phantom | added noise (x gene SD) | 0.5 | truth |" in (tmp_path / "ablation.md").read_text()


def test_history_frame_marks_the_kept_step(synthetic):
    from brainexpr.models.inr import INRRegressor

    model = INRRegressor(**{**PAPER_INR, **TINY, "max_steps": 30}, selection="training_loss",
                         random_state=0).fit(synthetic.coords, synthetic.values)
    frame = history_frame(model)
    assert list(frame["step"]) == [10, 20, 30]
    assert frame.loc[frame["kept"], "step"].tolist() == [model.best_step_[0]]
