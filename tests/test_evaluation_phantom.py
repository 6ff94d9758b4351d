"""Tests of the phantom generator (real sample sites and atlas: needs the data folder)."""

import numpy as np
import pytest

from brainexpr.errors import InputError
from brainexpr.evaluation.phantom import OFFSET, SCALE, brain_mask, make_phantom

pytestmark = pytest.mark.realdata

SMALL = dict(n_basis=3, n_anchors=4, length_scales=(8.0, 16.0))


@pytest.fixture(scope="module")
def phantom(data_dir):
    return make_phantom(8, random_state=3, data_dir=data_dir, **SMALL)


def test_samples_follow_the_real_ahba_sites(phantom):
    assert phantom.values.shape == (3702, 8)
    assert phantom.truth_at_sites.shape == (3702, 8)
    counts = phantom.samples["donor"].value_counts()
    assert counts["H0351.2001"] == 946 and counts["H0351.1009"] == 363
    assert np.array_equal(phantom.values.index, phantom.samples["well_id"].to_numpy())
    assert np.isfinite(phantom.values.to_numpy()).all()


def test_truth_is_one_function_at_sites_and_voxels(phantom, data_dir):
    again = phantom.truth(phantom.coords)
    assert np.allclose(again, phantom.truth_at_sites.to_numpy())
    volume = phantom.truth_volume(2, genes=[0, 5], data_dir=data_dir)
    data = np.asarray(volume.dataobj)
    mask = brain_mask(2, data_dir)
    assert data.shape == (91, 109, 91, 2)
    assert np.all(data[~mask] == 0)
    inside = data[mask]
    # standardised over the brain mask: mean OFFSET, SD SCALE in abagen-like units
    assert np.allclose(inside.mean(0), OFFSET, atol=0.01)
    assert np.allclose(inside.std(0), SCALE, rtol=0.05)


def test_observed_values_are_donor_field_plus_noise(phantom):
    observed = phantom.values.to_numpy()
    donor_field = phantom.donor_truth_at_sites.to_numpy()
    residual = (observed - donor_field) / SCALE
    assert residual.std() == pytest.approx(phantom.settings["noise"], rel=0.05)
    truth = phantom.truth_at_sites.to_numpy()
    # donor deviations are larger for genes with low target reproducibility
    deviation = ((donor_field - truth) / SCALE).std(axis=0)
    target = phantom.genes["ds_target"].to_numpy()
    assert np.corrcoef(deviation, target)[0, 1] < -0.7


def test_reproducibility_targets_are_met(phantom):
    genes = phantom.genes
    assert genes["ds_target"].between(0.1, 0.9).all()
    assert np.corrcoef(genes["ds_target"], genes["ds_field"])[0, 1] > 0.9
    assert np.corrcoef(genes["ds_target"], genes["ds_samples"])[0, 1] > 0.7
    assert np.abs(genes["ds_field"] - genes["ds_target"]).mean() < 0.1


def test_neighbours_on_the_gene_axis_are_alike(phantom):
    truth = phantom.truth_at_sites.to_numpy()
    order = np.argsort(phantom.gene_axis)
    corr = np.corrcoef(truth[:, order].T)
    adjacent = np.mean(np.diag(corr, 1))
    distant = np.mean(np.abs(corr[0, -3:]))
    assert adjacent > distant + 0.2


def test_regional_truth(phantom):
    regional = phantom.regional_truth()
    assert regional.shape == (83, 8)
    assert "L_bankssts" in regional.index and "B_brainstem" in regional.index
    # the regional means of the truth follow its values at the samples of each region
    sites = phantom.truth_at_sites.groupby(phantom.samples["dk_region"].to_numpy()).mean()
    shared = sites.index.intersection(regional.index)
    r = [np.corrcoef(sites.loc[shared, g], regional.loc[shared, g])[0, 1] for g in regional.columns]
    assert np.mean(r) > 0.7


def test_symmetry_setting_makes_mirror_images_agree(phantom, data_dir):
    symmetric = make_phantom(4, symmetry=1.0, random_state=3, data_dir=data_dir, **SMALL)
    partly = make_phantom(4, symmetry=0.5, random_state=3, data_dir=data_dir, **SMALL)
    points = symmetric.coords[:300]
    mirrored = points * [-1, 1, 1]
    np.testing.assert_allclose(symmetric.truth(points), symmetric.truth(mirrored), atol=1e-4)

    def asymmetry(p):
        return np.mean(np.abs(p.truth(points) - p.truth(mirrored)))

    assert asymmetry(phantom) > asymmetry(partly) > 0.01
    assert symmetric.settings["symmetry"] == 1.0 and phantom.settings["symmetry"] == 0.0
    with pytest.raises(InputError, match="symmetry"):
        make_phantom(4, symmetry=1.5, data_dir=data_dir)


def test_invalid_settings_raise(data_dir):
    with pytest.raises(InputError, match="reproducibility"):
        make_phantom(4, reproducibility=(0.0, 0.5), data_dir=data_dir)
    with pytest.raises(InputError, match="components"):
        make_phantom(4, components={"regional": 1.0, "texture": 0.2}, data_dir=data_dir)
