"""Regional aggregation, missing-region interpolation and gene differential stability."""

import numpy as np
import pandas as pd
import pytest

from brainexpr.ahba import aggregate
from brainexpr.errors import InputError


def test_groupby_label_mean_and_median():
    values = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0], [7.0, 0.0], [100.0, 100.0]])
    labels = np.array([2, 2, 2, 4, 0])            # 0 = unmatched, ignored
    mean = aggregate.groupby_label(values, labels, [1, 2, 4])
    np.testing.assert_allclose(mean, [[np.nan, np.nan], [3.0, 30.0], [7.0, 0.0]])
    median = aggregate.groupby_label(values, labels, [1, 2, 4], metric="median")
    np.testing.assert_allclose(median[1], [3.0, 20.0])
    with pytest.raises(InputError, match="agg_metric must be one of"):
        aggregate.groupby_label(values, labels, [1], metric="max")


def test_interpolation_of_a_missing_region_by_symmetry(tiny_atlas):
    image, regions = tiny_atlas
    # region 3 (right subcortex) has voxels x = 12..50, y = -6..32, z = -12..26 (centre z = 7)
    samples = pd.DataFrame({
        "mni_x": [31.0, 31.0, 31.0, -31.0], "mni_y": [13.0, 13.0, -20.0, -20.0],
        "mni_z": [7.0 - 60.0, 7.0 + 60.0, 0.0, 0.0],
        "hemisphere": ["R", "R", "R", "L"],
        "structure": ["subcortex/brainstem", "subcortex/brainstem", "cortex", "cortex"],
    })
    values = np.array([[0.0, 1.0], [1.0, 3.0], [5.0, 5.0], [9.0, 9.0]])
    labels = np.array([0, 0, 1, 2])
    est, filled = aggregate.interpolate_missing(values, samples, labels, image, regions)
    # region 3: the two samples mirror each other about the region's centre plane, so each
    # takes half the voxels with the same distances: the estimate is their plain mean.
    # region 4 (left subcortex) has no left subcortical sample and stays empty.
    assert list(filled) == [3]
    np.testing.assert_allclose(est[0], [0.5, 2.0])


def test_inverse_distance_weights_follow_abagen():
    np.testing.assert_allclose(aggregate._inverse_distance([2.0, 4.0, 0.0]), [0.5, 0.25, 1.0])


def test_centroid_matching_uses_the_nearest_sample_of_each_donor(tiny_atlas):
    image, regions = tiny_atlas
    # region 3 centroid: (31, 13, 7); donors' nearest compatible samples 10 and 30 mm away
    donor_a = pd.DataFrame({"mni_x": [31.0], "mni_y": [13.0], "mni_z": [17.0],
                            "hemisphere": ["R"], "structure": ["subcortex/brainstem"]})
    donor_b = pd.DataFrame({"mni_x": [31.0], "mni_y": [13.0], "mni_z": [37.0],
                            "hemisphere": ["R"], "structure": ["subcortex/brainstem"]})
    est, filled = aggregate.match_centroids([np.array([[1.0]]), np.array([[4.0]])],
                                            [donor_a, donor_b], [np.array([0]), np.array([0])],
                                            image, regions)
    assert 3 in filled
    row = list(filled).index(3)
    np.testing.assert_allclose(est[row], [(1.0 / 10 + 4.0 / 30) / (1 / 10 + 1 / 30)])


def test_aggregate_donors_ignores_missing_regions():
    a = np.array([[1.0, 2.0], [np.nan, np.nan]])
    b = np.array([[3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_allclose(aggregate.aggregate_donors([a, b]), [[2.0, 3.0], [5.0, 6.0]])


def test_gene_diff_stability_hand_computed():
    # regions x genes; gene 0 has the same ranking in both donors, gene 1 the reverse
    a = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0], [9.0, 9.0]])
    b = np.array([[10.0, 10.0], [20.0, 20.0], [30.0, 30.0], [40.0, 40.0], [np.nan, np.nan]])
    c = np.array([[1.0, 1.0], [2.0, 2.0], [4.0, 3.0], [3.0, 4.0], [np.nan, np.nan]])
    ds = aggregate.gene_diff_stability([a, b])
    np.testing.assert_allclose(ds, [1.0, -1.0])     # region 5 missing in b is skipped
    ds3 = aggregate.gene_diff_stability([a, b, c])
    rho = 1 - 6 * 2 / (4 * 15)          # gene 0 of c: one adjacent swap among 4 ranks: 0.8
    # gene 1 of c increases like b: pairs (a,b) = -1, (a,c) = -1, (b,c) = 1
    np.testing.assert_allclose(ds3, [(1 + rho + rho) / 3, (-1 - 1 + 1) / 3])
