"""Tests of brainexpr.analysis.association: gene-target correlation, sources, axis, Open Targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainexpr.analysis.association import (align_regions, axis_gradient, centroid_distances,
                                            compare_sources, correlate_with_target,
                                            open_targets_association, parcel_centroids,
                                            select_regions, to_region_keys)
from brainexpr.datasets.regions import convert
from brainexpr.errors import InputError


@pytest.fixture(scope="module")
def cortex():
    """68 cortical region keys, random centroids-like distances, a target map and genes."""
    keys = select_regions("cortex")
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 120, (len(keys), 3))
    distances = np.sqrt(np.square(points[:, None] - points[None]).sum(-1))
    target = pd.Series(points[:, 1] / 60 + rng.normal(0, 0.2, len(keys)), index=keys)
    genes = pd.DataFrame({
        "copy": 3.0 * target + 1.0,                       # affine copy: r = 1
        "inverse": -target,                               # r = -1
        "cubed": target ** 3,                             # monotone: Spearman 1
        "noise": rng.normal(size=len(keys)),
        "other": rng.normal(size=len(keys)) + points[:, 0] / 60,
    }, index=keys)
    return keys, distances, target, genes


def test_gene_built_from_target_correlates_at_one(cortex):
    _, distances, target, genes = cortex
    table = correlate_with_target(genes, target, distances, n_surrogates=200, random_state=0)
    assert table.loc["copy", "pearson_r"] == pytest.approx(1.0)
    assert table.loc["inverse", "pearson_r"] == pytest.approx(-1.0)
    assert table.loc["cubed", "spearman_r"] == pytest.approx(1.0)
    assert table.loc["cubed", "pearson_r"] < 0.999
    # nothing beats a perfect copy: the smallest possible empirical p, 1 / (1 + n)
    assert table.loc["copy", "pearson_p_spatial"] == pytest.approx(1 / 201)
    assert table.loc["inverse", "spearman_p_spatial"] == pytest.approx(1 / 201)
    assert table.attrs == {"n_regions": 68, "null_method": "variogram", "n_surrogates": 200}


def test_parametric_p_and_fdr_match_scipy(cortex):
    _, distances, target, genes = cortex
    table = correlate_with_target(genes, target, distances, null_method="moran",
                                  n_surrogates=100, random_state=1)
    for gene in ("noise", "other", "cubed"):
        r, p = stats.pearsonr(genes[gene], target)
        assert table.loc[gene, "pearson_r"] == pytest.approx(r)
        assert table.loc[gene, "pearson_p"] == pytest.approx(p, rel=1e-6)
        rho, p_rho = stats.spearmanr(genes[gene], target)
        assert table.loc[gene, "spearman_r"] == pytest.approx(rho)
        assert table.loc[gene, "spearman_p"] == pytest.approx(p_rho, rel=1e-6)
    for column in ("pearson_p", "spearman_p_spatial"):
        expected = stats.false_discovery_control(table[column], method="bh")
        np.testing.assert_allclose(table[column.replace("_p", "_q", 1)], expected)


def test_precomputed_surrogates_and_seeding(cortex):
    _, distances, target, genes = cortex
    first = correlate_with_target(genes, target, distances, n_surrogates=100, random_state=5)
    again = correlate_with_target(genes, target, distances, n_surrogates=100, random_state=5)
    pd.testing.assert_frame_equal(first, again)
    surrogates = np.random.default_rng(0).normal(size=(50, len(target)))
    table, null = correlate_with_target(genes, target, surrogates=surrogates, return_null=True)
    assert null["pearson"].shape == (50, genes.shape[1])
    exceed = np.abs(null["pearson"][:, 3]) >= abs(table.loc["noise", "pearson_r"])
    expected = (1 + exceed.sum()) / 51
    assert table.loc["noise", "pearson_p_spatial"] == pytest.approx(expected)
    parametric = correlate_with_target(genes, target, null_method=None)
    assert "pearson_p_spatial" not in parametric.columns
    with pytest.raises(InputError, match="needs the inter-region distances"):
        correlate_with_target(genes, target, null_method="variogram")


def test_regions_are_matched_across_naming_schemes(cortex):
    keys, _, target, genes = cortex
    renamed = target.copy()
    renamed.index = convert(keys, "adni86")                   # "Bankssts_L" style
    shuffled = renamed.sample(frac=1.0, random_state=0)
    extra = pd.concat([shuffled, pd.Series({"Putamen_L": 9.0})])
    aligned_genes, aligned_target = align_regions(genes, extra, select_regions("cortex"))
    assert list(aligned_target.index) == keys
    pd.testing.assert_series_equal(aligned_target, target.astype(float), check_names=False)
    assert select_regions("cortex", "left") == keys[:34]
    assert select_regions(["ctx-lh-entorhinal", "Entorhinal_R"]) == ["L_entorhinal",
                                                                      "R_entorhinal"]
    assert len(select_regions("all")) == 87


def test_region_mismatches_name_the_regions(cortex):
    keys, _, target, genes = cortex
    with pytest.raises(InputError, match=r"absent from the target map \(L_bankssts, R_insula\)"):
        align_regions(genes, target.drop(["L_bankssts", "R_insula"]), keys)
    dropped_genes, dropped_target = align_regions(genes, target.drop(["L_bankssts"]), keys,
                                                  drop_missing=True)
    assert len(dropped_target) == 67 and "L_bankssts" not in dropped_genes.index
    with_nan = target.copy()
    with_nan[["L_cuneus", "R_fusiform"]] = np.nan
    with pytest.raises(InputError, match=r"2 without a value \(NaN\) \(L_cuneus, R_fusiform\).*"
                                          "--drop-missing"):
        align_regions(genes, with_nan, keys)
    _, kept = align_regions(genes, with_nan, keys, drop_missing=True)
    assert len(kept) == 66 and "L_cuneus" not in kept.index
    genes_nan = genes.copy()
    genes_nan.loc["L_insula", "noise"] = np.nan
    with pytest.raises(InputError, match="regions L_insula .genes noise"):
        align_regions(genes_nan, target, keys)
    duplicated = pd.concat([target, pd.Series({"Bankssts_L": 1.0})])
    with pytest.raises(InputError, match="L_bankssts and Bankssts_L"):
        to_region_keys(duplicated, "target map")
    with pytest.raises(InputError, match="unknown region names: not_a_region"):
        align_regions(genes, pd.concat([target, pd.Series({"not_a_region": 1.0})]), keys)
    with pytest.raises(InputError, match="region_set must be one of 'cortex', 'subcortex'"):
        select_regions("neocortex")


def test_compare_sources_finds_discordant_genes():
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(40)]
    first = pd.Series(rng.uniform(-0.5, 0.5, 40), index=genes)
    second = first + rng.normal(0, 0.02, 40)
    second["G3"] = 0.0                     # strong in the first source only
    second["G7"] = np.sign(first["G7"]) * 0.9   # much stronger in the second
    second["G9"] = -first["G9"]           # sign flip: same |r|, not discordant
    agreement = compare_sources(first, second.drop("G0"), n_discordant=2,
                                names=("abagen", "inr"))
    assert agreement.n_genes == 39
    assert set(agreement.discordant) == {"G3", "G7"}
    table = agreement.table
    assert table.loc["G3", "stronger_in"] == "abagen" and table.loc["G7", "stronger_in"] == "inr"
    assert abs(table.loc["G9", "abs_difference"]) < 0.05
    kept = [g for g in genes[1:] if g not in ("G3", "G7", "G9")]
    assert agreement.r == pytest.approx(stats.pearsonr(first[genes[1:]], second[genes[1:]])[0])
    assert stats.pearsonr(first[kept], second[kept])[0] > 0.99
    summary = agreement.to_dict()
    assert summary["discordant"][0]["gene"] in ("G3", "G7") and "abagen" in summary["discordant"][0]
    # genes weak in both sources are not called discordant with min_abs_r
    strict = compare_sources(first, second, n_discordant=5, min_abs_r=0.6)
    assert strict.discordant == ["G7"]


def test_axis_gradient_detects_an_ordered_axis():
    rng = np.random.default_rng(1)
    genes = [f"G{i}" for i in range(50)]
    position = pd.Series(rng.uniform(0, 1, 50), index=genes)
    ordered = pd.Series(0.8 * position - 0.4 + rng.normal(0, 0.05, 50), index=genes)
    unordered = pd.Series(rng.normal(0, 0.3, 50), index=genes)
    strong = axis_gradient(ordered, position, n_permutations=2000, random_state=0)
    weak = axis_gradient(unordered, position, n_permutations=2000, random_state=0)
    assert strong.r > 0.9 and strong.p_permutation == pytest.approx(1 / 2001)
    assert abs(weak.r) < 0.3 and weak.p_permutation > 0.05
    assert strong.p_spatial is None
    # a spatial null whose surrogate targets give the same ordering explains the gradient away
    null = 0.8 * position.to_numpy()[None, :] * rng.choice([-1, 1], (300, 1)) \
        + rng.normal(0, 0.05, (300, 50))
    explained = axis_gradient(ordered, position, null_correlations=null, random_state=0)
    assert explained.p_spatial > 0.3 and explained.n_surrogates == 300
    unexplained = axis_gradient(ordered, position, null_correlations=rng.normal(0, 0.3, (300, 50)))
    assert unexplained.p_spatial < 0.01


def test_open_targets_association_options():
    genes = [f"G{i}" for i in range(30)]
    rng = np.random.default_rng(2)
    correlations = pd.Series(rng.uniform(-0.5, 0.5, 30), index=genes)
    scores = pd.Series(correlations.abs().to_numpy() + rng.normal(0, 0.01, 30), index=genes)
    scores = scores.drop(genes[:5])
    absolute = open_targets_association(correlations, scores)
    assert absolute["r"] > 0.95 and absolute["n_genes"] == 25 and absolute["n_unscored"] == 5
    signed = open_targets_association(correlations, scores, absolute=False)
    assert signed["r"] < absolute["r"]
    zero = open_targets_association(correlations, scores, missing="zero")
    assert zero["n_genes"] == 30
    with pytest.raises(InputError, match="missing must be 'drop' or 'zero'"):
        open_targets_association(correlations, scores, missing="mean")


def test_parcel_centroids_of_boxes(tiny_atlas):
    image, regions = tiny_atlas
    centroids = parcel_centroids(image, regions)
    expected_voxel = np.array([29.5, 49.5, 39.5, 1.0])
    np.testing.assert_allclose(centroids.loc["a"], (image.affine @ expected_voxel)[:3])
    distances = centroid_distances(centroids)
    # boxes a and b are 30 voxels apart along i, a and c 20 voxels along j (2 mm voxels)
    assert distances.loc["a", "b"] == pytest.approx(60.0)
    assert distances.loc["a", "c"] == pytest.approx(40.0)
    np.testing.assert_allclose(distances.to_numpy(), distances.to_numpy().T)
    missing = pd.concat([regions, pd.DataFrame({"id": [9], "hemisphere": ["L"],
                                                "structure": ["cortex"]}, index=["z"])])
    with pytest.raises(InputError, match="no voxels for regions: z"):
        parcel_centroids(image, missing)


def test_real_ad_genes_against_ad_tau(data_dir):
    from brainexpr.datasets import (load_gene_set, load_pathology_map, load_region_distances,
                                    load_regional_expression)

    expression = load_regional_expression(load_gene_set("ad", data_dir=data_dir),
                                          data_dir=data_dir, allow_missing=True)
    tau = load_pathology_map("tau", "ad", data_dir=data_dir)
    genes, target = align_regions(expression, tau, select_regions("cortex"))
    assert genes.shape == (68, 100)
    table = correlate_with_target(genes, target, load_region_distances(data_dir=data_dir),
                                  n_surrogates=500, random_state=0)
    # measured on the abagen DK-83 table and ADNI AD tau (cortex, 68 regions)
    assert table.loc["MAPT", "pearson_r"] == pytest.approx(0.4015, abs=1e-3)
    assert table.loc["HS3ST5", "pearson_r"] == pytest.approx(-0.4897, abs=1e-3)
    assert table.loc["ZNF184", "pearson_r"] == pytest.approx(0.3509, abs=1e-3)
    # the spatial null is more conservative than the parametric test
    assert (table["pearson_p_spatial"] < 0.05).sum() < (table["pearson_p"] < 0.05).sum()
    assert (table["pearson_p_spatial"] >= table["pearson_p"]).mean() > 0.8
