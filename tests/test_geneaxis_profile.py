"""Tests of the profile-PCA gene embedding (brainexpr.geneaxis.profile)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainexpr.errors import InputError
from brainexpr.geneaxis import profile_pca_embedding


def programme_table(n_rows=40, n_genes=12, noise=0.1, seed=0):
    """Genes mixing two spatial programmes (rank 2 plus noise)."""
    rng = np.random.default_rng(seed)
    programmes = rng.normal(size=(n_rows, 2))
    mixing = rng.normal(size=(2, n_genes))
    values = programmes @ mixing + noise * rng.normal(size=(n_rows, n_genes))
    return pd.DataFrame(values, columns=[f"G{i}" for i in range(n_genes)])


def test_shape_bounds_and_full_rank_reproduces_the_gene_correlations():
    table = programme_table()
    embedding = profile_pca_embedding(table, 3)
    assert embedding.shape == (12, 3)
    assert np.abs(embedding).max() <= 1 + 1e-12
    # components ordered by strength; two programmes carry almost everything
    assert (embedding ** 2).sum(0)[0] >= (embedding ** 2).sum(0)[1] > 20 * (embedding ** 2).sum(0)[2]
    # with every component, E E^T is the genes' Pearson correlation matrix
    full = profile_pca_embedding(table, 12)
    np.testing.assert_allclose(full @ full.T, np.corrcoef(table.to_numpy().T), atol=1e-10)


def test_deterministic_and_independent_of_column_and_row_order():
    table = programme_table()
    embedding = profile_pca_embedding(table, 4)
    np.testing.assert_array_equal(embedding, profile_pca_embedding(table.copy(), 4))
    order = np.random.default_rng(1).permutation(12)
    shuffled = profile_pca_embedding(table.iloc[::-1, order], 4)
    np.testing.assert_allclose(shuffled, embedding[order], atol=1e-10)
    # sign convention: the largest entry of every component is positive
    assert (embedding[np.abs(embedding).argmax(0), np.arange(4)] > 0).all()


def test_a_training_subset_sees_only_its_rows():
    table = programme_table()
    train = np.arange(30)
    embedding = profile_pca_embedding(table.iloc[train], 5)
    changed = table.copy()
    changed.iloc[30:] = 1e3 * np.random.default_rng(2).normal(size=(10, 12))
    np.testing.assert_array_equal(profile_pca_embedding(changed.iloc[train], 5), embedding)
    assert not np.allclose(profile_pca_embedding(changed, 5), embedding, atol=0.05)


def test_missing_values_constant_genes_and_low_rank_pad_with_zeros():
    table = programme_table(n_rows=6, n_genes=4)
    table.iloc[2, 1] = np.nan
    table["flat"] = 3.0
    embedding = profile_pca_embedding(table, 8)     # rank <= 5 (6 centred rows)
    assert embedding.shape == (5, 8) and np.isfinite(embedding).all()
    np.testing.assert_array_equal(embedding[4], 0.0)
    np.testing.assert_array_equal(embedding[:, 4:], 0.0)


@pytest.mark.parametrize("values, k, message", [
    (np.ones(5), 2, "at least 2 rows"),
    (np.ones((1, 3)), 2, "at least 2 rows"),
    (np.array([[1.0, np.inf], [2.0, 3.0]]), 1, "infinite"),
    (np.ones((4, 3)), 0, "n_components"),
    (np.ones((4, 3)), 2.5, "n_components"),
])
def test_bad_input_raises_teaching_errors(values, k, message):
    with pytest.raises(InputError, match=message):
        profile_pca_embedding(values, k)
