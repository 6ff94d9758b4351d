"""Tests of benchmarks/parcel_scoring.py: the held-out comparison of regional-table
fitters (baselines, lobe folds, map scores), kept outside the package."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainexpr.errors import InputError

import parcel_scoring as P

from parcel_fixtures import box_atlas  # noqa: F401


def test_lobe_groups_of_dk_labels():
    regions = pd.DataFrame({"label": ["precuneus", "insula", "brainstem", "cuneus"],
                            "hemisphere": ["L", "R", "B", "R"]}, index=list("abcd"))
    assert P.lobe_groups(regions).tolist() == ["L_parietal", "R_cingulate-insula",
                                               "B_subcortex", "R_occipital"]
    with pytest.raises(InputError, match="without a lobe"):
        P.lobe_groups(regions.assign(label=["precuneus", "V1", "brainstem", "cuneus"]))


@pytest.mark.realdata
def test_every_dk83_region_has_a_lobe(data_dir):
    from brainexpr.datasets import load_atlas

    regions = load_atlas("dk83", data_dir).regions
    groups = P.lobe_groups(regions)
    assert len(groups) == 83 and groups.nunique() == 13
    assert (groups.str.endswith("subcortex").sum()) == 15


def test_adjacency_of_touching_boxes(tiny_atlas):
    image, regions = tiny_atlas
    adjacency = P.parcel_adjacency(image, regions["id"].to_numpy())
    # boxes 1|3 and 2|4 share a face along y; 1 and 2 are 20 mm apart along x
    expected = np.zeros((4, 4), dtype=bool)
    expected[0, 2] = expected[2, 0] = expected[1, 3] = expected[3, 1] = True
    np.testing.assert_array_equal(adjacency, expected)


def test_neighbour_average_uses_adjacent_else_nearest_parcels():
    adjacency = np.zeros((5, 5), dtype=bool)
    adjacency[0, [1, 2]] = adjacency[[1, 2], 0] = True
    centroids = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0], [30, 0, 0]], float)
    values = np.arange(5, dtype=float)[:, None] * np.array([[1.0, 10.0]])
    train = np.array([1, 2, 3])
    out = P.neighbour_average(values[train], train, np.array([0, 4]), adjacency, centroids, k=2)
    np.testing.assert_allclose(out[0], (values[1] + values[2]) / 2)   # its neighbours
    np.testing.assert_allclose(out[1], (values[3] + values[2]) / 2)   # two nearest centroids


def test_leave_parcels_out_scores_every_method(box_atlas):
    image, regions, table = box_atlas
    setup = P.parcel_setup(image, regions, table.index, max_voxels=200)
    assert np.diff(setup.offsets).max() == 200 and setup.adjacency.sum() > 0
    # the centroids are those of every voxel of a parcel (box r01: voxels 30-37, 45-52, 30-37)
    from brainexpr.atlas.space import voxel_to_mni
    np.testing.assert_allclose(setup.centroids[0], voxel_to_mni(np.array([[33.5, 48.5, 33.5]]),
                                                                image.affine)[0])
    folds = P.parcel_folds(table.index, n_folds=4, random_state=0)
    methods = ["parcel-kriging", "inr", "neighbour-average", "global-mean"]
    params = {"inr": ("inr", {"max_steps": 5, "n_layers": 2, "hidden_features": 16,
                              "n_features": 8, "device": "cpu"})}
    predictions, seconds = P.leave_parcels_out(table, setup, folds, methods, params)
    assert set(predictions) == set(methods) == set(seconds)
    for frame in predictions.values():
        assert frame.shape == table.shape and np.isfinite(frame.to_numpy()).all()
    summary = P.summarise_scores(predictions, table, reference="global-mean", seconds=seconds)
    assert summary.loc["parcel-kriging", "mean_r"] > 0.8
    assert summary.loc["parcel-kriging", "mean_r2"] > summary.loc["global-mean", "mean_r2"]
    assert summary.loc["parcel-kriging", "wins_vs_global-mean"] == 2
    genes = P.gene_scores(predictions, table)
    assert len(genes) == 8 and set(genes.columns) == {"method", "gene", "pearson", "r2"}
    with pytest.raises(InputError, match="unknown method"):
        P.leave_parcels_out(table, setup, folds, ["magic"])
    with pytest.raises(InputError, match="rows of setup.index"):
        P.leave_parcels_out(table.iloc[::-1], setup, folds, ["global-mean"])


def test_perfect_predictions_score_one(box_atlas):
    _, _, table = box_atlas
    summary = P.summarise_scores({"truth": table}, table)
    assert summary.loc["truth", "mean_r"] == pytest.approx(1.0)
    assert summary.loc["truth", "mean_r2"] == pytest.approx(1.0)


def test_painted_map_extends_parcels_to_their_nearest_voxels(box_atlas):
    from brainexpr.atlas.space import voxel_to_mni

    image, regions, table = box_atlas
    inside = voxel_to_mni(np.array([[31, 46, 31], [53, 60, 45]]), image.affine)
    outside = voxel_to_mni(np.array([[25, 46, 31]]), image.affine)   # 5 voxels from parcel 1
    painted = P.painted_map(table, regions, image, np.vstack([inside, outside]))
    np.testing.assert_allclose(painted, table.to_numpy()[[0, 11, 0]])
    scores = P.score_map(painted, painted + 0.01 * np.arange(3)[:, None] ** 2, [1, 12, 0])
    assert list(scores.columns) == ["r_all", "r_parcels", "r_outside"]
    assert scores["r_outside"].isna().all()   # fewer than 3 points outside


@pytest.mark.realdata
def test_map_points_lie_in_the_brain_mask(data_dir):
    from brainexpr.datasets import load_atlas

    atlas = load_atlas("dk83", data_dir)
    coords, tissue, label = P.map_points(atlas.image, n_points=500, data_dir=data_dir)
    assert coords.shape == (500, 3) and set(np.unique(tissue)) <= {-1.0, 0.0, 1.0}
    assert 0.2 < (label > 0).mean() < 0.9 and set(label[label > 0]) <= set(atlas.regions["id"])
