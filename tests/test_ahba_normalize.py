"""Normalisation of AHBA expression: hand-computed robust sigmoid values."""

import numpy as np
import pytest

from brainexpr.ahba import normalize
from brainexpr.errors import InputError


def test_scaled_robust_sigmoid_hand_computed():
    # median 3, IQR 2 -> normalised IQR 2 / 1.349 = 1.4826; x = 100 is an outlier
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    rs = normalize.robust_sigmoid(x[:, None])[:, 0]
    np.testing.assert_allclose(rs, [0.20603726, 0.33749224, 0.5, 0.66250776, 1.0], atol=1e-7)
    srs = normalize.scaled_robust_sigmoid(x[:, None])[:, 0]
    np.testing.assert_allclose(srs, [0.0, 0.1655682, 0.37024752, 0.57492685, 1.0], atol=1e-7)


def test_sample_norm_is_across_genes_and_gene_norm_across_samples():
    values = np.array([[1.0, 2.0, 3.0, 4.0, 100.0],
                       [5.0, 5.0, 6.0, 7.0, 8.0]])
    per_sample = normalize.normalize_expression(values, "srs", axis=1)
    np.testing.assert_allclose(per_sample[0], [0.0, 0.1655682, 0.37024752, 0.57492685, 1.0],
                               atol=1e-7)
    per_gene = normalize.normalize_expression(values.T, "srs", axis=0)
    np.testing.assert_allclose(per_gene[:, 0], per_sample[0], atol=1e-12)


def test_groups_are_normalised_separately():
    values = np.array([[1.0], [2.0], [3.0], [10.0], [20.0], [40.0]])
    groups = np.array(["cortex"] * 3 + ["subcortex/brainstem"] * 3)
    out = normalize.normalize_expression(values, "minmax", axis=0, groups=groups)
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.0, 0.0, 1 / 3, 1.0])


def test_zscore_center_and_float32_kept():
    values = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]], dtype=np.float32)
    z = normalize.normalize_expression(values, "zscore")
    np.testing.assert_allclose(z[:, 0], [-1.0, 0.0, 1.0], atol=1e-6)
    assert z.dtype == np.float32
    np.testing.assert_allclose(normalize.normalize_expression(values, "center")[:, 1], [-2, -2, 4])
    assert normalize.normalize_expression(values, None) is values


def test_constant_gene_cannot_be_normalised():
    out = normalize.normalize_expression(np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]]), "srs")
    assert np.isnan(out[:, 0]).all() and np.isfinite(out[:, 1]).all()


def test_unknown_method_names_the_options():
    with pytest.raises(InputError, match="norm must be None or one of srs"):
        normalize.normalize_expression(np.ones((2, 2)), "robust")
