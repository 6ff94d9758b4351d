"""Tests of brainexpr.evaluation.protocols (synthetic coordinates)."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from brainexpr.errors import InputError
from brainexpr.evaluation import protocols as P


@pytest.fixture
def coords():
    return np.random.default_rng(0).uniform(-60, 60, size=(600, 3))


def test_blocked_folds_hold_every_site_out_once_with_buffer(coords):
    splits = P.spatial_block_folds(coords, n_folds=4, block_size=25.0, buffer=8.0, random_state=1)
    assert len(splits) == 4
    held = np.concatenate([s.test for s in splits])
    assert np.array_equal(np.sort(held), np.arange(len(coords)))
    for split in splits:
        assert not np.intersect1d(split.train, split.test).size
        # no training site within the buffer of a held-out site
        assert cdist(coords[split.train], coords[split.test]).min() >= 8.0
    sizes = [len(s.test) for s in splits]
    assert max(sizes) - min(sizes) < 0.5 * np.mean(sizes)


def test_blocked_folds_keep_blocks_together(coords):
    rng_seed = 3
    splits = P.spatial_block_folds(coords, n_folds=3, block_size=30.0, buffer=0.0, random_state=rng_seed)
    block = P.spatial_blocks(coords, 30.0, np.random.default_rng(rng_seed))
    fold_of_site = np.empty(len(coords), dtype=int)
    for f, split in enumerate(splits):
        fold_of_site[split.test] = f
    for b in np.unique(block):
        assert len(np.unique(fold_of_site[block == b])) == 1
    # without a buffer, train and test partition the sites
    assert all(len(s.train) + len(s.test) == len(coords) for s in splits)


def test_blocked_folds_errors(coords):
    with pytest.raises(InputError, match="n_folds"):
        P.spatial_block_folds(coords, n_folds=1)
    with pytest.raises(InputError, match="buffer"):
        P.spatial_block_folds(coords, buffer=-1)
    with pytest.raises(InputError, match="folds"):
        P.spatial_block_folds(coords[:3], n_folds=5, block_size=500.0)


def test_leave_one_donor_out():
    donors = np.array(["a", "b", "a", "c", "b"], dtype=object)
    splits = P.leave_one_donor_out(donors)
    assert [s.name for s in splits] == ["a", "b", "c"]
    assert splits[0].test.tolist() == [0, 2] and splits[0].train.tolist() == [1, 3, 4]
    with pytest.raises(InputError, match="two donors"):
        P.leave_one_donor_out(["a", "a"])


def test_leave_parcels_out_keeps_unassigned_sites_in_training():
    regions = np.array(["r1", "r2", None, "r3", "r1", "r4", np.nan], dtype=object)
    splits = P.leave_parcels_out(regions, n_folds=2, random_state=0)
    held = np.concatenate([s.test for s in splits])
    assert sorted(held.tolist()) == [0, 1, 3, 4, 5]
    for split in splits:
        assert {2, 6} <= set(split.train.tolist())
        test_regions = set(regions[split.test])
        assert not (set(regions[split.train]) & test_regions)


def test_leave_genes_out_never_holds_out_axis_ends():
    axis = np.linspace(0, 1, 12)[::-1]
    splits = P.leave_genes_out(axis, n_folds=3, random_state=0)
    held = np.concatenate([s.test for s in splits])
    assert sorted(held.tolist()) == list(range(1, 11))
    assert 0 not in held and 11 not in held


def test_interpolate_along_axis_is_linear():
    known_axis = np.array([0.0, 0.5, 1.0])
    values = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    out = P.interpolate_along_axis(known_axis, values, [0.25, 0.75, 1.0])
    assert np.allclose(out, [[0.5, 2.0, 3.0], [2.0, 2.0, 2.0]])


def test_reproducibility_ceiling():
    assert np.allclose(P.reproducibility_ceiling([0.25, -0.1, 1.0]), [0.5, 0.0, 1.0])


@pytest.mark.realdata
def test_map_voxels_for_scoring_cover_every_parcel(data_dir):
    from brainexpr.evaluation.phantom import brain_mask

    coords, tissue, regions, n_uniform, n_background, n_mask = P.map_voxels_for_scoring(
        500, min_per_region=5, random_state=0, data_dir=data_dir)
    assert n_uniform == 500 and len(coords) == len(tissue) == len(regions) > 500
    assert n_mask == int(brain_mask(2, data_dir).sum()) and n_background > n_mask
    assert set(np.unique(tissue)) <= {-1.0, 0.0, 1.0}
    counts = pd.Series(regions[pd.notna(regions)]).value_counts()
    assert len(counts) >= 80 and counts.min() >= 5        # every DK-83 parcel has its voxels
    again = P.map_voxels_for_scoring(500, min_per_region=5, random_state=0, data_dir=data_dir)
    np.testing.assert_array_equal(again[0], coords)        # seeded
