"""Tests of brainexpr.analysis.nulls: surrogate maps that keep spatial autocorrelation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from brainexpr.analysis.association import correlate_with_target
from brainexpr.analysis.nulls import (NULL_INPUTS, NULL_METHODS, check_distances, generate_surrogates,
                                      moran_eigenvectors, moran_surrogates, morans_i,
                                      random_rotations, spatial_weights, spin_surrogates,
                                      variogram, variogram_surrogates)
from brainexpr.errors import InputError

N_REGIONS = 60


@pytest.fixture(scope="module")
def geometry():
    """60 'regions' at random positions in a 100 mm cube and a smooth field sampler."""
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (N_REGIONS, 3))
    distances = cdist(points, points)
    cholesky = np.linalg.cholesky(np.exp(-distances / 30.0) + 1e-9 * np.eye(N_REGIONS))
    return distances, cholesky


def smooth_map(cholesky, seed):
    """A Gaussian random field with exponential covariance (length 30 mm)."""
    return cholesky @ np.random.default_rng(seed).standard_normal(cholesky.shape[0])


def sphere_geometry(n_regions, seed=0):
    """Region centroids on the unit sphere, the first half 'left', the rest 'right'."""
    points = np.random.default_rng(seed).standard_normal((n_regions, 3))
    hemispheres = np.where(np.arange(n_regions) < n_regions // 2, "L", "R")
    return {"centroids": points / np.linalg.norm(points, axis=1, keepdims=True),
            "hemispheres": hemispheres}


@pytest.mark.parametrize("method", sorted(NULL_METHODS))
def test_shape_and_seeding(geometry, method):
    distances, cholesky = geometry
    values = smooth_map(cholesky, 1)
    options = sphere_geometry(N_REGIONS) if "regions" in NULL_INPUTS[method] else {}
    first = generate_surrogates(values, distances, 50, method=method, random_state=3, **options)
    again = generate_surrogates(values, distances, 50, method=method, random_state=3, **options)
    other = generate_surrogates(values, distances, 50, method=method, random_state=4, **options)
    assert first.shape == (50, N_REGIONS)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    # surrogates differ from the map and from each other
    assert np.abs(np.corrcoef(first)[np.triu_indices(50, 1)]).mean() < 0.9


def test_permutation_and_resample_keep_values(geometry):
    distances, cholesky = geometry
    values = smooth_map(cholesky, 2)
    for surrogates in (generate_surrogates(values, distances, 20, "permutation", random_state=0),
                       variogram_surrogates(values, distances, 20, resample=True, random_state=0)):
        np.testing.assert_allclose(np.sort(surrogates, axis=1),
                                   np.broadcast_to(np.sort(values), surrogates.shape))


def test_variogram_surrogates_keep_mean_and_match_variogram(geometry):
    distances, cholesky = geometry
    values = smooth_map(cholesky, 5)
    surrogates = variogram_surrogates(values, distances, 300, random_state=0)
    np.testing.assert_allclose(surrogates.mean(axis=1), values.mean())
    h, target = variogram(values, distances)
    _, matched = variogram(surrogates, distances)
    _, shuffled = variogram(generate_surrogates(values, distances, 300, "permutation",
                                                random_state=0), distances)
    slope = {name: np.polyfit(h, curve, 1)[0] for name, curve in
             (("target", target), ("matched", np.median(matched, axis=0)),
              ("shuffled", np.median(shuffled, axis=0)))}
    # a smooth map has a rising variogram; permutations flatten it, matched surrogates keep it
    assert slope["target"] > 0
    assert 0.5 < slope["matched"] / slope["target"] < 2.0
    assert abs(slope["shuffled"]) < 0.25 * slope["target"]
    assert (np.abs(np.median(matched, axis=0) - target).mean()
            < np.abs(np.median(shuffled, axis=0) - target).mean())


def test_moran_singleton_preserves_variance_and_morans_i(geometry):
    distances, cholesky = geometry
    values = smooth_map(cholesky, 6)
    weights = spatial_weights(distances)
    surrogates = moran_surrogates(values, distances, 200, random_state=0)
    np.testing.assert_allclose(surrogates.mean(axis=1), values.mean(), atol=1e-10)
    np.testing.assert_allclose(surrogates.var(axis=1), values.var(), rtol=1e-10)
    np.testing.assert_allclose(morans_i(surrogates, weights), morans_i(values, weights), rtol=1e-8)
    pair = moran_surrogates(values, distances, 200, procedure="pair", random_state=0)
    np.testing.assert_allclose(pair.var(axis=1), values.var(), rtol=1e-10)
    # a smooth field is positively autocorrelated; shuffling destroys it
    shuffled = generate_surrogates(values, distances, 200, "permutation", random_state=0)
    assert morans_i(values, weights) > 0.05
    assert abs(morans_i(shuffled, weights).mean()) < 0.03


def test_moran_eigenvectors_are_a_centred_orthonormal_basis(geometry):
    distances, _ = geometry
    eigenvalues, vectors = moran_eigenvectors(distances)
    assert vectors.shape == (N_REGIONS, N_REGIONS - 1)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(N_REGIONS - 1), atol=1e-10)
    np.testing.assert_allclose(vectors.sum(axis=0), 0, atol=1e-10)
    assert np.all(np.diff(eigenvalues) <= 1e-12)


@pytest.mark.parametrize("method", ["variogram", "moran"])
def test_spatial_null_controls_false_positives(geometry, method):
    """Two independent smooth maps: the parametric p is far too optimistic, the null is not."""
    distances, cholesky = geometry
    index = pd.Index([f"region{i}" for i in range(N_REGIONS)])
    n_pairs, parametric, spatial = 120, 0, 0
    for seed in range(n_pairs):
        gene = pd.DataFrame({"gene": smooth_map(cholesky, 1000 + seed)}, index=index)
        target = pd.Series(smooth_map(cholesky, 5000 + seed), index=index)
        table = correlate_with_target(gene, target, distances, null_method=method,
                                      n_surrogates=250, random_state=seed)
        parametric += table["pearson_p"].iloc[0] < 0.05
        spatial += table["pearson_p_spatial"].iloc[0] < 0.05
    assert parametric / n_pairs > 0.15          # nominal 0.05, inflated by autocorrelation
    assert spatial / n_pairs < 0.11             # close to the nominal 5 %
    assert spatial < parametric / 2


def test_errors_name_the_problem(geometry):
    distances, cholesky = geometry
    values = smooth_map(cholesky, 7)
    with pytest.raises(InputError,
                       match="method must be one of 'variogram', 'moran', 'spin', 'permutation'"):
        generate_surrogates(values, distances, 10, method="spun")
    with pytest.raises(InputError, match="map has 59 regions"):
        generate_surrogates(values[:-1], distances, 10)
    bad = values.copy()
    bad[[3, 8]] = np.nan
    with pytest.raises(InputError, match=r"2 missing .* \(positions 3, 8\)"):
        generate_surrogates(bad, distances, 10)
    with pytest.raises(InputError, match="n_surrogates must be a positive integer"):
        generate_surrogates(values, distances, 0)
    asymmetric = distances.copy()
    asymmetric[0, 1] += 5
    with pytest.raises(InputError, match="not symmetric"):
        check_distances(asymmetric)
    duplicated = distances.copy()
    duplicated[0, 1] = duplicated[1, 0] = 0
    with pytest.raises(InputError, match="zero or negative off-diagonal"):
        check_distances(duplicated)
    with pytest.raises(InputError, match="constant"):
        generate_surrogates(np.ones(N_REGIONS), distances, 10)


def test_real_tau_surrogates_keep_autocorrelation(data_dir):
    """AD tau on the 72 regions of the ADNI distance matrix."""
    from brainexpr.datasets import load_pathology_map, load_region_distances

    distances = load_region_distances(data_dir=data_dir)
    tau = load_pathology_map("tau", "ad", data_dir=data_dir).reindex(distances.index)
    assert distances.shape == (72, 72) and not tau.isna().any()
    weights = spatial_weights(distances.to_numpy())
    observed = morans_i(tau.to_numpy(), weights)
    matched = variogram_surrogates(tau.to_numpy(), distances.to_numpy(), 1000, random_state=0)
    shuffled = generate_surrogates(tau.to_numpy(), distances.to_numpy(), 1000, "permutation",
                                   random_state=0)
    assert matched.shape == (1000, 72)
    assert 0.08 < observed < 0.10                       # measured: 0.088
    assert morans_i(matched, weights).mean() > 0.06     # autocorrelation kept
    assert morans_i(shuffled, weights).mean() < 0.0     # about -1/(n-1) for permutations


def test_random_rotations_are_proper_and_uniform():
    rotations = random_rotations(4000, random_state=0)
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1),
                               np.broadcast_to(np.eye(3), rotations.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0)
    # Haar measure: a rotated fixed vector is uniform on the sphere (mean ~ 0, E[z^2] = 1/3)
    moved = rotations @ np.array([0.0, 0.0, 1.0])
    assert np.abs(moved.mean(axis=0)).max() < 0.03
    assert abs(np.square(moved[:, 2]).mean() - 1 / 3) < 0.02


def test_spin_keeps_values_and_mirrors_the_right_hemisphere():
    geometry = sphere_geometry(40, seed=1)
    values = np.arange(40.0)
    surrogates = spin_surrogates(values, None, 30, random_state=0, **geometry)
    left, right = slice(0, 20), slice(20, 40)
    # Hungarian assignment: each hemisphere's values are permuted within the hemisphere
    np.testing.assert_array_equal(np.sort(surrogates[:, left], axis=1),
                                  np.broadcast_to(values[left], (30, 20)))
    np.testing.assert_array_equal(np.sort(surrogates[:, right], axis=1),
                                  np.broadcast_to(values[right], (30, 20)))
    # mirror-symmetric centroids (right = left with x reflected) get mirrored spins
    half = geometry["centroids"][:20]
    mirrored = {"centroids": np.vstack([half, half * [-1, 1, 1]]),
                "hemispheres": geometry["hemispheres"]}
    spun = spin_surrogates(values, None, 30, random_state=0, **mirrored)
    np.testing.assert_array_equal(spun[:, left], spun[:, right] - 20)
    nearest = spin_surrogates(values, None, 30, random_state=0, assignment="nearest",
                              **geometry)
    assert np.isin(nearest[:, left], values[left]).all()
    assert any(len(np.unique(row[left])) < 20 for row in nearest)   # values may repeat


def test_spin_on_the_dk_cortex_and_its_errors(data_dir):
    from brainexpr.analysis.association import select_regions

    keys = select_regions("cortex")
    values = np.arange(68.0)
    surrogates = generate_surrogates(values, None, 20, method="spin", regions=keys,
                                     random_state=0, data_dir=data_dir)
    assert surrogates.shape == (20, 68)
    assert not np.array_equal(surrogates[0], values)
    with pytest.raises(InputError, match="L_thalamus.*--region-set cortex"):
        generate_surrogates(values[:5], None, 10, method="spin", data_dir=data_dir,
                            regions=["L_thalamus", *keys[:4]])
    with pytest.raises(InputError, match="regions="):
        generate_surrogates(values, None, 10, method="spin")
    with pytest.raises(InputError, match="assignment must be one of 'hungarian', 'nearest'"):
        spin_surrogates(values, None, 10, regions=keys, assignment="greedy")


def test_correlate_with_target_spins_cortical_keys(data_dir):
    from brainexpr.analysis.association import select_regions

    keys = select_regions("cortex", "left")
    rng = np.random.default_rng(0)
    target = pd.Series(rng.normal(size=len(keys)), index=keys)
    genes = pd.DataFrame({"same": target + rng.normal(0, 0.1, len(keys)),
                          "other": rng.normal(size=len(keys))}, index=keys)
    table = correlate_with_target(genes, target, null_method="spin", n_surrogates=200,
                                  random_state=0)
    assert table.loc["same", "pearson_p_spatial"] == pytest.approx(1 / 201)
    assert table.loc["other", "pearson_p_spatial"] > 0.01
