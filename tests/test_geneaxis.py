"""Tests of the spectral gene axis (brainexpr.geneaxis)."""

from __future__ import annotations

import glob

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from brainexpr.errors import InputError
from brainexpr.geneaxis import (AFFINITIES, gene_affinity, gene_correlation, normalized_laplacian,
                                place_genes, spectral_gene_axis)


def programme_table(n_rows=120, n_genes=30, noise=0.15, seed=0):
    """Genes that mix two spatial programmes A and B with angle theta_g in [0, pi]:
    gene g = cos(theta) A + sin(theta) B + noise, so theta orders the genes from A to -A."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n_rows))
    theta = np.sort(rng.uniform(0, np.pi, n_genes))
    values = np.cos(theta)[None, :] * a[:, None] + np.sin(theta)[None, :] * b[:, None]
    values += noise * rng.normal(size=values.shape)
    genes = [f"G{i:02d}" for i in range(n_genes)]
    order = rng.permutation(n_genes)           # shuffled input order
    table = pd.DataFrame(values[:, order], columns=[genes[i] for i in order])
    return table, pd.Series(theta, index=genes)


def test_axis_recovers_the_gene_order_and_is_scaled():
    table, theta = programme_table()
    axis = spectral_gene_axis(table)
    rho = spearmanr(axis.positions[theta.index], theta).statistic
    assert abs(rho) > 0.97
    assert axis.positions.min() == 0.0 and axis.positions.max() == 1.0
    assert axis.order == list(axis.positions.sort_values(kind="stable").index)
    assert list(axis.table()["rank"]) == list(range(1, len(theta) + 1))
    # spectrum: ascending, trivial eigenvalue 0, e_g from the second smallest
    assert np.all(np.diff(axis.eigenvalues) >= -1e-12)
    assert axis.eigenvalues[0] == pytest.approx(0.0, abs=1e-9)
    assert axis.eigenvalue == axis.eigenvalues[1] > 1e-6


def test_eigenvector_solves_the_normalised_laplacian():
    table, _ = programme_table(n_genes=12)
    axis = spectral_gene_axis(table)
    affinity = gene_affinity(gene_correlation(table).to_numpy(), "shifted")
    degree = affinity.sum(1)
    laplacian = np.eye(12) - affinity / np.sqrt(np.outer(degree, degree))
    computed, computed_degree = normalized_laplacian(affinity)
    np.testing.assert_allclose(computed, laplacian, atol=1e-12)
    np.testing.assert_allclose(computed_degree, degree)
    vector = axis.eigenvector.to_numpy()
    np.testing.assert_allclose(laplacian @ vector, axis.eigenvalue * vector, atol=1e-10)
    assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_sign_convention_is_deterministic_under_column_order():
    table, _ = programme_table()
    first = spectral_gene_axis(table).positions
    reordered = spectral_gene_axis(table[table.columns[::-1]]).positions
    pd.testing.assert_series_equal(first, reordered.loc[first.index], atol=1e-9)
    vector = spectral_gene_axis(table).eigenvector
    assert vector.loc[vector.abs().idxmax()] > 0


@pytest.mark.parametrize("affinity", list(AFFINITIES))
def test_affinities_are_symmetric_non_negative_without_self_loops(affinity):
    table, _ = programme_table(n_genes=10)
    matrix = gene_affinity(gene_correlation(table), affinity)
    assert np.all(matrix >= 0)
    np.testing.assert_allclose(matrix, matrix.T)
    assert np.all(np.diag(matrix) == 0)


def test_bad_options_and_inputs_raise_teaching_errors():
    table, _ = programme_table(n_genes=6)
    with pytest.raises(InputError, match="affinity must be one of .*'shifted'.*got 'cosine'"):
        spectral_gene_axis(table, affinity="cosine")
    with pytest.raises(InputError, match="method must be one of"):
        spectral_gene_axis(table, method="kendall")
    constant = table.assign(FLAT=1.0)
    with pytest.raises(InputError, match="constant values.*FLAT"):
        spectral_gene_axis(constant)
    with pytest.raises(InputError, match="at least 2 genes"):
        spectral_gene_axis(table.iloc[:, :1])


def test_partial_spectrum_for_many_genes_agrees_with_the_full_one(monkeypatch):
    import brainexpr.geneaxis.embedding as embedding

    table, _ = programme_table(n_genes=40)
    full = spectral_gene_axis(table)
    monkeypatch.setattr(embedding, "DENSE_EIGEN_LIMIT", 10)
    partial = spectral_gene_axis(table, n_eigenvalues=12)
    assert len(partial.eigenvalues) == 12
    np.testing.assert_allclose(partial.eigenvalues, full.eigenvalues[:12], atol=1e-8)
    pd.testing.assert_series_equal(partial.positions, full.positions, atol=1e-6)


def test_missing_values_use_pairwise_complete_correlation():
    table, theta = programme_table()
    holes = table.copy()
    rng = np.random.default_rng(1)
    holes = holes.mask(rng.random(holes.shape) < 0.1)
    axis = spectral_gene_axis(holes)
    assert abs(spearmanr(axis.positions[theta.index], theta).statistic) > 0.95


def test_place_genes_matches_the_full_embedding():
    table, _ = programme_table(n_genes=40, seed=3)
    full = spectral_gene_axis(table)
    errors = []
    for gene in table.columns[::8]:
        partial = spectral_gene_axis(table.drop(columns=gene))
        placed = place_genes(partial, table[[gene]])
        errors.append(abs(placed[gene] - full.positions[gene]))
    assert max(errors) < 0.06


def test_place_genes_needs_the_same_rows():
    table, _ = programme_table(n_genes=8)
    axis = spectral_gene_axis(table.iloc[:, :6])
    with pytest.raises(InputError, match="same rows"):
        place_genes(axis, table.iloc[:50, 6:].set_axis(range(1000, 1050)))


def test_state_round_trip_keeps_positions():
    from brainexpr.geneaxis import GeneAxis

    table, _ = programme_table(n_genes=8)
    axis = spectral_gene_axis(table)
    again = GeneAxis.from_state(axis.to_state(), reference=axis.reference)
    pd.testing.assert_series_equal(again.positions, axis.positions, check_names=False)
    new = table.iloc[:, :2].add_suffix("_copy") + 0.01
    pd.testing.assert_series_equal(place_genes(again, new), place_genes(axis, new))


def test_figure_has_the_four_panels(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from brainexpr.geneaxis.figures import plot_gene_axis

    table, _ = programme_table(n_genes=12)
    fig = plot_gene_axis(spectral_gene_axis(table), tmp_path / "axis.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert "Eigen-spectrum" in titles
    assert "Gene correlation, sorted by gene axis" in titles
    assert (tmp_path / "axis.png").stat().st_size > 10_000


# --------------------------------------------------------------------------- real data
def _paper_table_s1() -> pd.Series:
    """Spectral-embedding values of the 100 AD genes from the seed paper's Table S1."""
    path = sorted(glob.glob(str(_seed_dir() / "000_*.txt")))[0]
    lines = open(path, encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("1-25"))
    values = {}
    for line in lines[start + 2:start + 27]:
        parts = [p for p in line.split("\t") if p]
        values.update({parts[i]: float(parts[i + 1]) for i in range(0, len(parts), 2)})
    return pd.Series(values)


def _seed_dir():
    from brainexpr.config import repository_root

    return repository_root().parent / "shared" / "seeds"


@pytest.mark.realdata
def test_real_ad_genes_reproduce_the_paper_ordering(data_dir):
    from brainexpr.datasets import load_gene_set, load_regional_expression

    table = load_regional_expression(load_gene_set("ad", data_dir), data_dir=data_dir,
                                     allow_missing=True)
    assert table.shape == (83, 100)
    axis = spectral_gene_axis(table)
    assert axis.eigenvalues[0] == pytest.approx(0.0, abs=1e-9)
    assert 0.5 < axis.eigenvalue < 1.0
    # ANK3 and BHLHE40 sit at opposite ends, as in the paper's Table S1
    assert axis.positions["ANK3"] < 0.05 and axis.positions["BHLHE40"] > 0.9
    if not _seed_dir().is_dir():
        pytest.skip("seed paper text not available")
    paper = _paper_table_s1()
    assert len(paper) == 100
    rho = spearmanr(paper[axis.positions.index], axis.positions).statistic
    # the same order (up to the arbitrary sign) from the 6-donor DK-83 table
    assert abs(rho) > 0.8
    # an affinity that ignores the sign of correlations loses it
    absolute = spectral_gene_axis(table, affinity="absolute")
    assert abs(spearmanr(paper[absolute.positions.index], absolute.positions).statistic) < 0.3


@pytest.mark.realdata
def test_real_celltype_axis_over_the_eight_channels(data_dir):
    from brainexpr.datasets import CELL_TYPES, load_celltypes

    values = load_celltypes(data_dir)
    axis = spectral_gene_axis(values)
    assert sorted(axis.genes) == sorted(CELL_TYPES)
    assert len(axis.eigenvalues) == 8
    # neurons and glia end up on opposite sides of the axis
    neurons = axis.positions[["ExNeurons", "InNeurons"]]
    glia = axis.positions[["Oligodendrocytes", "Astrocytes"]]
    assert (neurons.mean() - 0.5) * (glia.mean() - 0.5) < 0
