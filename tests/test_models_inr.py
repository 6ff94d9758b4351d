"""Tests of the INR estimator: fitting, validation split, checkpoints, resume, ensembles."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from brainexpr.errors import InputError
from brainexpr.models.checkpoint import read_model_file
from brainexpr.models.base import parcel_voxels
from brainexpr.models.inr import INRRegressor
from brainexpr.models.training import (_ParcelData, masked_mse, resolve_device, segment_mean,
                                       spatial_validation_split)
from brainexpr.models.registry import MODELS, load_model, make_model, register_model

TINY = dict(n_layers=3, hidden_features=32, n_features=16, gene_hidden=16, n_frequencies=4,
            omega_0=10.0, learning_rate=1e-3, eval_every=20, random_state=0)


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Every test of this module runs with one torch thread."""


def smooth_field(coords, phases):
    """A known smooth field per gene (values of order one)."""
    x, y, z = coords.T
    return np.column_stack([np.sin(x / 30 + a) + np.cos(y / 40) * a + 0.5 * z / 60 for a in phases])


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    coords = rng.uniform([-70, -100, -45], [70, 70, 80], (400, 3))
    phases = np.linspace(0, 1, 4)
    values = pd.DataFrame(smooth_field(coords, phases), columns=["A", "B", "C", "D"])
    tissue = rng.choice([-1, 0, 1], len(coords))
    return coords, values, tissue, phases


def test_smooth_field_is_recovered_at_new_points(samples):
    coords, values, tissue, phases = samples
    model = INRRegressor("factorized", max_steps=300, **TINY).fit(coords, values)
    rng = np.random.default_rng(1)
    test = rng.uniform([-60, -90, -35], [60, 60, 70], (300, 3))
    truth = smooth_field(test, phases)
    prediction = model.predict(test)
    assert prediction.shape == (300, 4) and prediction.dtype == np.float32
    r = [np.corrcoef(prediction[:, g], truth[:, g])[0, 1] for g in range(4)]
    assert min(r) > 0.95
    # predict by name, in the requested order
    np.testing.assert_allclose(model.predict(test, genes=["C", "A"]), prediction[:, [2, 0]],
                               rtol=1e-5, atol=1e-6)
    assert model.history_[0][-1][0] == model.best_step_[0] or model.best_step_[0] < 300


@pytest.mark.parametrize("design", ["paper", "per_gene"])
def test_other_designs_fit_and_learn(samples, design):
    coords, values, tissue, phases = samples
    model = INRRegressor(design, max_steps=120, **TINY).fit(coords, values, tissue)
    history = np.array(model.history_[0])
    assert history[-1, 1] < 0.5 * history[0, 1]           # training loss decreased
    assert np.isfinite(history[:, 2]).all()
    assert model.predict(coords[:5]).shape == (5, 4)
    assert np.isnan(model.gene_axis_).all() == (design == "per_gene")


def test_validation_blocks_are_whole_and_spatial():
    rng = np.random.default_rng(2)
    coords = rng.uniform(-60, 60, (2000, 3))
    held = spatial_validation_split(coords, 0.1, 20.0, np.random.default_rng(0))
    assert 0.1 <= held.mean() < 0.2
    blocks = [tuple(b) for b in np.floor(coords / 20.0).astype(int)]
    held_blocks = {b for b, h in zip(blocks, held) if h}
    train_blocks = {b for b, h in zip(blocks, held) if not h}
    assert not held_blocks & train_blocks                  # no block is split
    assert not spatial_validation_split(coords, 0.0, 20.0, np.random.default_rng(0)).any()


def test_missing_values_are_masked_and_empty_genes_rejected(samples):
    coords, values, tissue, _ = samples
    holes = values.copy()
    holes.iloc[::3, 1] = np.nan
    model = INRRegressor("factorized", max_steps=20, **TINY).fit(coords, holes, tissue)
    assert np.isfinite(model.predict(coords[:3])).all()
    empty = values.assign(B=np.nan)
    with pytest.raises(InputError, match="no finite value"):
        INRRegressor(max_steps=2, **TINY).fit(coords, empty)
    target = torch.tensor([[1.0, float("nan")], [3.0, 0.0]])
    assert float(masked_mse(torch.zeros(2, 2), target)) == pytest.approx((1 + 9 + 0) / 3)


def test_warns_when_held_out_data_are_not_predicted(samples, caplog):
    coords, _, _, _ = samples
    noise = pd.DataFrame(np.random.default_rng(5).normal(size=(len(coords), 2)), columns=["n1", "n2"])
    with caplog.at_level("WARNING", logger="brainexpr.models.inr"):
        INRRegressor("factorized", max_steps=40, **TINY).fit(coords, noise)
    assert "predicted little better than by each gene's mean" in caplog.text
    assert "validation_fraction=0" in caplog.text


def test_training_loss_selection_keeps_the_paper_choice(samples):
    """selection='training_loss' keeps the state of lowest training MSE and never stops early."""
    coords, values, _, _ = samples
    settings = dict(TINY, max_steps=120, eval_every=20, patience=1, validation_fraction=0.2)
    paper = INRRegressor("paper", selection="training_loss", **settings).fit(coords, values)
    ours = INRRegressor("paper", **settings).fit(coords, values)
    assert [h[0] for h in paper.history_[0]] == [20, 40, 60, 80, 100, 120]   # no early stop
    # the same seed, split and batches: the same trajectory, only the kept state differs
    np.testing.assert_allclose([h[2] for h in paper.history_[0][:len(ours.history_[0])]],
                               [h[2] for h in ours.history_[0]], rtol=1e-5)
    best_validation = min(ours.history_[0], key=lambda h: h[2])[0]
    assert ours.best_step_[0] == best_validation
    assert paper.best_step_[0] in {h[0] for h in paper.history_[0]}
    with pytest.raises(InputError, match="selection must be one of"):
        INRRegressor(selection="test_loss").fit(coords, values)


def test_bad_parameters_raise_teaching_errors(samples):
    coords, values, _, _ = samples
    with pytest.raises(InputError, match=r"design must be one of 'paper', 'factorized', "
                                         r"'per_gene', got 'siren'"):
        INRRegressor("siren").fit(coords, values)
    with pytest.raises(InputError, match="validation_fraction"):
        INRRegressor(validation_fraction=0.9).fit(coords, values)
    with pytest.raises(InputError, match="resume=True needs checkpoint_path"):
        INRRegressor(resume=True).fit(coords, values)
    with pytest.raises(InputError, match="MNI"):
        INRRegressor(max_steps=1).fit(coords * 10, values)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
    with pytest.raises(InputError, match="model must be one of"):
        make_model("gp")


def test_registry_builds_designs_and_accepts_new_models():
    assert make_model("paper", n_layers=3).design == "paper"
    assert set(MODELS) >= {"paper", "factorized", "per_gene"}
    register_model("_test_model", lambda **kw: "built", overwrite=True)
    try:
        assert make_model("_test_model") == "built"
        with pytest.raises(ValueError, match="already registered"):
            register_model("_test_model", lambda **kw: None)
    finally:
        MODELS.pop("_test_model")


def test_checkpoint_round_trip_gives_identical_predictions(samples, tmp_path):
    coords, values, tissue, _ = samples
    model = INRRegressor("factorized", max_steps=40, n_ensemble=2, **TINY).fit(coords, values, tissue)
    path = model.save(tmp_path / "model.pt")
    loaded = INRRegressor.load(path)
    mean, std = model.predict(coords[:50], tissue[:50], return_std=True)
    mean2, std2 = loaded.predict(coords[:50], tissue[:50], return_std=True)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(std, std2)
    assert loaded.gene_names_ == ["A", "B", "C", "D"]
    assert loaded.get_params() == model.get_params()
    saved = read_model_file(path)
    assert saved.state["complete"] and len(saved.state["members"]) == 2
    assert saved.params["design"] == "factorized" and saved.model == "factorized"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_loading_is_safe(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as handle:
        pickle.dump({"format": "brainexpr-inr", "payload": Evil()}, handle)
    with pytest.raises(InputError, match="not a readable brainexpr model file"):
        load_model(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a brainexpr model file"):
        load_model(tmp_path / "other.pt")


def test_resume_after_interruption_reaches_the_same_state(samples, tmp_path, monkeypatch):
    coords, values, tissue, _ = samples
    params = dict(TINY, max_steps=80, checkpoint_every=20)
    reference = INRRegressor("factorized", checkpoint_path=tmp_path / "ref.pt", **params)
    reference.fit(coords, values, tissue)

    original = INRRegressor._optimisation_step

    def interrupted(self, module, optimizer, data, units, rng, positions, genes, step):
        if step == 45:
            raise KeyboardInterrupt
        return original(self, module, optimizer, data, units, rng, positions, genes, step)

    path = tmp_path / "run.pt"
    monkeypatch.setattr(INRRegressor, "_optimisation_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        INRRegressor("factorized", checkpoint_path=path, **params).fit(coords, values, tissue)
    monkeypatch.setattr(INRRegressor, "_optimisation_step", original)
    saved = read_model_file(path)
    assert not saved.state["complete"] and saved.state["training"]["step"] == 40
    with pytest.raises(InputError, match="unfinished fit"):
        load_model(path)

    resumed = INRRegressor("factorized", checkpoint_path=path, resume=True, **params)
    resumed.fit(coords, values, tissue)
    for key, tensor in reference.members_[0].state_dict().items():
        assert torch.equal(tensor, resumed.members_[0].state_dict()[key]), key
    assert resumed.history_ == reference.history_
    assert resumed.best_step_ == reference.best_step_
    # resuming a finished checkpoint loads it without training
    again = INRRegressor("factorized", checkpoint_path=path, resume=True, **params)
    np.testing.assert_array_equal(again.fit(coords, values, tissue).predict(coords[:5]),
                                  resumed.predict(coords[:5]))
    # other data cannot resume this checkpoint
    with pytest.raises(InputError, match="other training data"):
        INRRegressor("factorized", checkpoint_path=path, resume=True, **params).fit(
            coords, values * 2, tissue)


def test_ensemble_gives_mean_and_spread(samples):
    coords, values, tissue, _ = samples
    single = INRRegressor("factorized", max_steps=30, **TINY).fit(coords, values, tissue)
    with pytest.raises(InputError, match="n_ensemble >= 2"):
        single.predict_std(coords[:3])
    ensemble = INRRegressor("factorized", max_steps=30, n_ensemble=3, **TINY).fit(coords, values, tissue)
    assert len(ensemble.members_) == 3
    mean, std = ensemble.predict(coords[:20], return_std=True)
    assert std.shape == (20, 4) and (std > 0).all()
    members = [INRRegressor._forward(ensemble, m, torch.as_tensor(ensemble.scale_points(coords[:20])),
                                     None, torch.tensor(ensemble.gene_axis_, dtype=torch.float32))
               .detach().numpy() for m in ensemble.members_]
    scaled = np.stack(members) * ensemble.value_scale_ + ensemble.value_offset_
    np.testing.assert_allclose(mean, scaled.mean(0), rtol=1e-5, atol=1e-5)
    # the spread over members, rescaled per gene on held-out blocks, plus a floor (scaled units)
    spread = scaled.std(0, ddof=1) * ensemble.std_scale_
    floor = ensemble.std_floor_ * ensemble.value_scale_
    np.testing.assert_allclose(std, np.sqrt(spread ** 2 + floor ** 2), rtol=1e-4, atol=1e-5)
    # members differ: they were seeded independently
    assert not np.allclose(members[0], members[1])


def test_add_genes_places_and_predicts_new_genes(samples):
    coords, values, tissue, phases = samples
    model = INRRegressor("factorized", max_steps=30, **TINY).fit(coords, values[["A", "B", "D"]], tissue)
    model.add_genes(values[["C"]])
    assert model.genes_ == ["A", "B", "D", "C"]
    assert 0 <= model.gene_axis_[3] <= 1
    assert model.predict(coords[:4], genes=["C"]).shape == (4, 1)
    with pytest.raises(InputError, match="already in the model"):
        model.add_genes(values[["A"]])
    per_gene = INRRegressor("per_gene", max_steps=5, **TINY).fit(coords, values[["A", "B"]])
    with pytest.raises(InputError, match="no gene axis"):
        per_gene.add_genes(values[["C"]])



def test_profile_pca_embedding_comes_from_the_training_parcels_and_round_trips(tiny_atlas,
                                                                               tmp_path):
    from brainexpr.geneaxis import profile_pca_embedding

    image, regions = tiny_atlas
    table = pd.DataFrame(np.random.default_rng(3).uniform(0, 1, (4, 5)), index=regions.index,
                         columns=[f"g{i}" for i in range(5)])
    train = table.iloc[:3]                        # parcel "d" held out
    model = INRRegressor("factorized", gene_embedding="profile-pca", n_gene_components=3,
                         max_steps=300, parcel_samples=64, validation_fraction=0,
                         **TINY).fit_regions(image, train, regions=regions)
    np.testing.assert_array_equal(model.gene_axis_, profile_pca_embedding(train, 3))
    assert model.members_[0].gene_net[0].in_features == 3
    coords, offsets, _ = parcel_voxels(image, regions["id"].to_numpy()[:3])
    prediction = model.predict(coords)
    means = np.stack([prediction[a:b].mean(0) for a, b in zip(offsets[:-1], offsets[1:])])
    np.testing.assert_allclose(means, train.to_numpy(), atol=0.1)
    loaded = INRRegressor.load(model.save(tmp_path / "profile.pt"))
    np.testing.assert_array_equal(loaded.predict(coords[:50]), prediction[:50])
    np.testing.assert_array_equal(loaded.gene_axis_, model.gene_axis_)
    assert loaded.get_params() == model.get_params()
    with pytest.raises(InputError, match="has no gene axis"):
        loaded.add_genes(table[["g0"]].rename(columns={"g0": "new"}))
    with pytest.raises(InputError, match="has no gene axis"):
        loaded.predict_at_axis(coords[:3], [0.5])
    with pytest.raises(InputError, match="needs design='factorized'"):
        INRRegressor("paper", gene_embedding="profile-pca").fit_regions(image, train,
                                                                        regions=regions)
    with pytest.raises(InputError, match="gene_axis is for gene_embedding='axis'"):
        INRRegressor(gene_embedding="profile-pca", max_steps=1, **TINY).fit_regions(
            image, train, regions=regions, gene_axis=np.linspace(0, 1, 5))
    with pytest.raises(InputError, match="gene_embedding must be one of"):
        INRRegressor(gene_embedding="pca").fit_regions(image, train, regions=regions)


def test_predict_at_axis_matches_predict_at_fitted_genes_and_interpolates_scaling(samples):
    coords, values, tissue, _ = samples
    axis = np.array([0.1, 0.4, 0.6, 0.9])
    model = INRRegressor("factorized", max_steps=10, n_ensemble=2, **TINY).fit(coords, values, tissue,
                                                                                 gene_axis=axis)
    at = model.predict_at_axis(coords[:15], axis[[2, 0]], tissue=tissue[:15])
    np.testing.assert_allclose(at, model.predict(coords[:15], tissue[:15], genes=["C", "A"]),
                               rtol=1e-6, atol=1e-6)
    mean, std = model.predict_at_axis(coords[:15], [0.25], tissue=tissue[:15], return_std=True)
    assert mean.shape == std.shape == (15, 1) and (std > 0).all()
    # between two genes the value scaling is interpolated: the network output is rescaled
    raw = torch.stack(model._run_members(torch.as_tensor(model.scale_points(coords[:15], tissue[:15])),
                                         [0], torch.tensor([0.25]), "fp32", torch.device("cpu"))).mean(0)
    offset = np.interp(0.25, axis, model.value_offset_)
    scale = np.interp(0.25, axis, model.value_scale_)
    np.testing.assert_allclose(mean[:, 0], raw.numpy()[:, 0] * scale + offset, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="positions"):
        model.predict_at_axis(coords[:2], [np.nan])
    per_gene = INRRegressor("per_gene", max_steps=5, **TINY).fit(coords, values[["A", "B"]])
    with pytest.raises(InputError, match="no gene axis"):
        per_gene.predict_at_axis(coords[:2], [0.5])

# --------------------------------------------------------------------------- parcel means
def test_segment_mean_matches_a_loop():
    values = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    segments = torch.tensor([0, 2, 2, 0, 1, 2])
    expected = torch.stack([values[segments == s].mean(0) for s in range(3)])
    torch.testing.assert_close(segment_mean(values, segments, 3), expected)


def test_parcel_mean_loss_matches_brute_force(tiny_atlas):
    image, regions = tiny_atlas
    labels = np.asarray(image.dataobj)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(4, 3)), index=regions.index, columns=["x", "y", "z"])
    model = INRRegressor("factorized", max_steps=1, parcel_samples=None, validation_fraction=0,
                         **TINY).fit_regions(image, table, regions=regions)
    coords, offsets, _ = parcel_voxels(image, regions["id"].to_numpy())
    points = model.scale_points(coords)
    targets = (table.to_numpy() - model.value_offset_) / model.value_scale_
    data = _ParcelData(points, offsets, targets, samples=None)
    positions = torch.as_tensor(model.gene_axis_, dtype=torch.float32)
    module = model.members_[0]
    units = np.array([0, 2, 3])
    with torch.no_grad():
        batch_points, segments, batch_targets = data.batch(units, rng)
        prediction = segment_mean(module(batch_points, positions), segments, len(units))
        loss = float(masked_mse(prediction, batch_targets))
        # brute force: every voxel of each parcel, found from the label image
        errors = []
        for unit in units:
            ijk = np.argwhere(labels == regions["id"].iloc[unit])
            from brainexpr.atlas.space import voxel_to_mni

            field = module(torch.as_tensor(model.scale_points(voxel_to_mni(ijk, image.affine))),
                           positions)
            errors.append((field.mean(0).numpy() - targets[unit]) ** 2)
    assert loss == pytest.approx(float(np.mean(errors)), rel=1e-5)
    # sampled mode draws voxels of the right parcel only
    sampled = _ParcelData(points, offsets, targets, samples=16)
    batch_points, segments, _ = sampled.batch(units, np.random.default_rng(1))
    assert len(batch_points) == 16 * len(units)
    voxel_of_point = {tuple(np.round(p, 5)): i for i, p in enumerate(points[:, :3])}
    for point, segment in zip(batch_points.numpy(), segments.numpy()):
        index = voxel_of_point[tuple(np.round(point[:3], 5))]
        assert offsets[units[segment]] <= index < offsets[units[segment] + 1]


def test_fit_regions_reproduces_parcel_means(tiny_atlas):
    image, regions = tiny_atlas
    table = pd.DataFrame({"g1": [0.1, 0.5, 0.9, 0.3], "g2": [0.8, 0.2, 0.4, 0.6]},
                         index=regions.index)
    model = INRRegressor("factorized", max_steps=300, parcel_samples=64, validation_fraction=0,
                         **TINY).fit_regions(image, table, regions=regions)
    coords, offsets, _ = parcel_voxels(image, regions["id"].to_numpy())
    prediction = model.predict(coords)
    means = np.stack([prediction[a:b].mean(0) for a, b in zip(offsets[:-1], offsets[1:])])
    np.testing.assert_allclose(means, table.to_numpy(), atol=0.05)
    assert model.fit_kind_ == "regions"


def test_fit_regions_reports_empty_parcels_and_unknown_regions(tiny_atlas):
    image, regions = tiny_atlas
    table = pd.DataFrame({"g": [1.0, 2.0, 3.0, 4.0]}, index=regions.index)
    extra = pd.concat([regions, pd.DataFrame({"id": [9], "hemisphere": ["L"], "structure": ["cortex"]},
                                             index=pd.Index(["e"], name="region"))])
    with pytest.raises(InputError, match="no voxels in the atlas image: e"):
        INRRegressor(max_steps=1, **TINY).fit_regions(
            image, pd.concat([table, pd.DataFrame({"g": [5.0]}, index=["e"])]), regions=extra)
    with pytest.raises(InputError, match="not in the atlas table"):
        INRRegressor(max_steps=1, **TINY).fit_regions(image, table.rename(index={"a": "zz"}),
                                                      regions=regions)
    with pytest.raises(InputError, match="pass regions="):
        INRRegressor(max_steps=1, **TINY).fit_regions(image, table)
    tissue = nib.Nifti1Image(np.full(image.shape, 2, np.int8), image.affine)
    with pytest.raises(InputError, match="tissue classes"):
        INRRegressor(max_steps=1, **TINY).fit_regions(image, table, regions=regions,
                                                      tissue_image=tissue)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_reduced_precision_is_checked_against_fp32(samples):
    coords, values, tissue, _ = samples
    model = INRRegressor("factorized", max_steps=50, device="cuda", **TINY).fit(coords, values, tissue)
    reference = model.predict(coords)
    for precision in ("tf32", "bf16"):
        model.precision = precision
        fast = model.predict(coords)
        spread = reference.std()
        assert np.abs(fast - reference).max() <= model.precision_tolerance * spread * 1.01


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_celltypes_tiny_fit_learns_held_out_structure(data_dir):
    from brainexpr.workflows.models import load_training_data

    data = load_training_data("celltypes", data_dir=data_dir)
    assert data.values.shape == (3702, 8)
    assert set(np.unique(data.tissue)) <= {-1, 0, 1}
    model = INRRegressor("factorized", max_steps=100, n_layers=3, hidden_features=32, n_features=16,
                         gene_hidden=16, learning_rate=3e-3, eval_every=10, random_state=0)
    model.fit(data.coords, data.values, tissue=data.tissue)
    assert model.gene_names_ == list(data.values.columns)
    assert ((model.gene_axis_ >= 0) & (model.gene_axis_ <= 1)).all()
    first_validation = model.history_[0][0][2]
    best_validation = min(h[2] for h in model.history_[0])
    # the held-out blocks are predicted better than by the training mean (MSE 1 in scaled units)
    assert best_validation < 0.8
    assert best_validation < first_validation
    prediction = model.predict(data.coords[:100], data.tissue[:100])
    assert np.isfinite(prediction).all()
    assert 0 < prediction.mean() < 1


def test_ensemble_sd_is_recalibrated_on_held_out_blocks(samples, tmp_path):
    coords, values, tissue, _ = samples
    noisy = values + np.random.default_rng(1).normal(scale=0.3, size=values.shape)
    model = INRRegressor("factorized", max_steps=30, n_ensemble=2, validation_fraction=0.2,
                         **TINY).fit(coords, noisy, tissue)
    assert model.std_scale_.shape == model.std_floor_.shape == (4,)
    # the noise no member shows needs a floor or a larger spread: the SD grows
    assert ((model.std_floor_ > 0) | (model.std_scale_ > 1)).all()
    _, std = model.predict(coords[:20], tissue[:20], return_std=True)
    np.testing.assert_allclose(model.predict_std(coords[:20], tissue[:20], kind="population"), std)
    loaded = INRRegressor.load(model.save(tmp_path / "model.pt"))
    np.testing.assert_allclose(loaded.std_scale_, model.std_scale_)
    np.testing.assert_allclose(loaded.std_floor_, model.std_floor_)
    np.testing.assert_array_equal(loaded.predict(coords[:20], tissue[:20], return_std=True)[1], std)
    loaded.std_scale_ = loaded.std_floor_ = None  # the raw spread
    raw = loaded.predict(coords[:20], tissue[:20], return_std=True)[1]
    assert (raw > 0).all() and (std > raw).all()
    without = INRRegressor("factorized", max_steps=10, n_ensemble=2, validation_fraction=0.0,
                           **TINY).fit(coords, values, tissue)
    assert np.isnan(without.std_scale_).all()  # nothing held out: the raw spread, said so
