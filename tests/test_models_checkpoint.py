"""Model files of the pure-numpy estimators (brainexpr.models.checkpoint, estimator format)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from brainexpr.errors import InputError
from brainexpr.models.checkpoint import (NUMPY_ESTIMATORS, load_estimator, load_model,
                                         payload_checksum, save_estimator, save_model)
from brainexpr.models.registry import (MODELS, make_model, model_name, regional_models,
                                       resolve_model, workflow_models)

NUMPY_MODELS = ["nearest", "knn", "kriging", "donor-kriging"]


@pytest.mark.parametrize("name", NUMPY_MODELS)
def test_round_trip_gives_identical_predictions(name, sites, tmp_path):
    coords, values, tissue, donors, query, query_tissue = sites
    model = make_model(name)
    extra = {"donors": donors} if name == "donor-kriging" else {}
    model.fit(coords, values, tissue=tissue, **extra)
    path = save_model(model, tmp_path / "model.pt", name=name, provenance={"source": "test"})
    loaded = load_model(path)
    assert type(loaded) is type(model) and model_name(loaded) == name
    assert loaded.get_params() == model.get_params()
    assert loaded.provenance_ == {"source": "test"}
    np.testing.assert_array_equal(loaded.predict(query, query_tissue),
                                  model.predict(query, query_tissue))
    np.testing.assert_array_equal(loaded.predict(query, query_tissue, genes=["MAPT"]),
                                  model.predict(query, query_tissue, genes=["MAPT"]))


def test_nested_attributes_keep_their_types(sites, tmp_path):
    coords, values, tissue, donors, *_ = sites
    model = make_model("kriging").fit(coords, values)
    loaded = load_estimator(save_estimator(model, tmp_path / "k.pt"))
    assert isinstance(loaded.weights_, list) and len(loaded.weights_) == 2
    sites_mask, genes, alpha = loaded.weights_[0]
    assert sites_mask.dtype == bool and genes.dtype == model.weights_[0][1].dtype
    assert loaded.variogram_ == model.variogram_ and isinstance(loaded.empirical_variogram_, tuple)
    assert loaded.gene_names_ == ["APOE", "MAPT"]
    fitted = make_model("nearest").fit(coords, values)
    nearest = load_estimator(save_estimator(fitted, tmp_path / "n.pt"))
    for (tree, stored, genes), (original, *_) in zip(nearest.groups_, fitted.groups_):
        assert isinstance(tree, cKDTree)  # rebuilt from its points, not unpickled
        np.testing.assert_array_equal(tree.data, original.data)
        assert tree.leafsize == original.leafsize


def _tamper(path, **changes):
    payload = torch.load(path, weights_only=True)
    metadata = json.loads(payload["metadata"])
    metadata.update(changes)
    payload["metadata"] = json.dumps(metadata)
    payload["checksum"] = payload_checksum(payload)  # a checksum is no signature: re-made
    torch.save(payload, path)


def test_unknown_or_tampered_classes_are_refused(sites, tmp_path):
    coords, values, *_ = sites
    path = save_estimator(make_model("knn").fit(coords, values), tmp_path / "knn.pt")
    _tamper(path, **{"class": "os.system"})
    with pytest.raises(InputError, match="names estimator class 'os.system', which brainexpr "
                                         "does not load"):
        load_model(path)
    _tamper(path, **{"class": "INRRegressor"})
    with pytest.raises(InputError, match="does not load"):
        load_model(path)
    _tamper(path, **{"class": "KNNInterpolator", "attributes": {"n_genes_": {"array": "x"}}})
    with pytest.raises(InputError, match="corrupt KNNInterpolator file"):
        load_model(path)
    with pytest.raises(InputError, match="cannot save a INRRegressor as an estimator file"):
        save_estimator(MODELS["factorized"](), tmp_path / "b.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a brainexpr INR model file nor a saved"):
        load_model(tmp_path / "other.pt")


def test_registry_resolves_auto_by_kind_of_data():
    assert resolve_model("auto", "samples")[0] == "donor-kriging"
    assert "BENCHMARKS.md" in resolve_model("auto", "samples")[1]
    assert resolve_model("auto", "regions")[0] == "factorized"
    assert resolve_model("kriging", "samples") == ("kriging", "requested")
    assert set(NUMPY_MODELS) <= set(workflow_models())
    assert "kriging" not in regional_models()
    assert len(NUMPY_ESTIMATORS) == 5 and "parcel-kriging" in regional_models()
    with pytest.raises(InputError, match="fits sample sites.*'factorized'.*'parcel-kriging'"):
        resolve_model("kriging", "regions")
    with pytest.raises(InputError, match="model must be 'auto' or one of"):
        resolve_model("krigging", "samples")


def test_damaged_or_inconsistent_inr_files_are_one_line_errors(sites, tmp_path):
    from brainexpr.models.inr import INRRegressor

    coords, values, *_ = sites
    model = INRRegressor("factorized", n_layers=2, hidden_features=16, n_features=8,
                         gene_hidden=8, n_frequencies=2, max_steps=5,
                         validation_fraction=0.0, device="cpu").fit(coords, values)
    path = model.save(tmp_path / "inr.pt")
    payload = torch.load(path, weights_only=True)
    name = next(iter(payload["members"][0]))

    flipped = dict(payload, members=[{k: v.clone() for k, v in payload["members"][0].items()}])
    flipped["members"][0][name].view(-1)[0] += 1.0  # one weight changed, checksum kept
    torch.save(flipped, tmp_path / "flipped.pt")
    with pytest.raises(InputError, match="is damaged: the checksum of its arrays"):
        load_model(tmp_path / "flipped.pt")

    for change, message in [
        (lambda p: p["members"][0].__setitem__(name, torch.zeros(3, 3)), "size mismatch"),
        (lambda p: p["members"].append(p["members"][0]), "2 member\\(s\\) saved for n_ensemble"),
        (lambda p: p.__setitem__("metadata", p["metadata"].replace('"n_genes"', '"n_gene"')),
         "KeyError"),
    ]:
        broken = torch.load(path, weights_only=True)
        change(broken)
        broken["checksum"] = payload_checksum(broken)
        torch.save(broken, tmp_path / "broken.pt")
        with pytest.raises(InputError, match=f"inconsistent brainexpr model file.*{message}"):
            load_model(tmp_path / "broken.pt")
