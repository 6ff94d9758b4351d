"""Model files (brainexpr.models.checkpoint: the container; registry: save_model/load_model)."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial import cKDTree

import brainexpr.models
from brainexpr.errors import InputError
from brainexpr.models.checkpoint import (FORMAT, payload_checksum, read_model_file,
                                         write_model_file)
from brainexpr.models.inr import INRRegressor
from brainexpr.models.registry import (MODELS, load_model, make_model, model_name,
                                       regional_models, resolve_model, save_model,
                                       workflow_models)
from brainexpr.models.vae import GraphVAERegressor

NUMPY_MODELS = ["nearest", "knn", "kriging", "donor-kriging"]
LEGACY = Path(__file__).parent / "data" / "legacy_models"


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
    loaded = load_model(save_model(model, tmp_path / "k.pt"))
    assert isinstance(loaded.weights_, list) and len(loaded.weights_) == 2
    sites_mask, genes, alpha = loaded.weights_[0]
    assert sites_mask.dtype == bool and genes.dtype == model.weights_[0][1].dtype
    assert loaded.variogram_ == model.variogram_ and isinstance(loaded.empirical_variogram_, tuple)
    assert loaded.gene_names_ == ["APOE", "MAPT"]
    fitted = make_model("nearest").fit(coords, values)
    nearest = load_model(save_model(fitted, tmp_path / "n.pt"))
    for (tree, stored, genes), (original, *_) in zip(nearest.groups_, fitted.groups_):
        assert isinstance(tree, cKDTree)  # rebuilt from its points, not unpickled
        np.testing.assert_array_equal(tree.data, original.data)
        assert tree.leafsize == original.leafsize


def test_container_keeps_values_with_their_types(tmp_path):
    state = {"array": np.arange(6, dtype=np.float32).reshape(2, 3), "tensor": torch.ones(2),
             "scalar": np.int16(3), "plain": [1, None, "a", 2.5], "pair": (1, 2),
             "nested": [{"x": np.zeros(1)}, (np.ones(2, dtype=bool),)], "keys": {3: "three"},
             "strings": np.array(["a", "bc"], dtype=object), "nan": float("nan")}
    path = write_model_file(tmp_path / "m.pt", "Anything", {"k": (0.1, 0.2)}, state,
                            model="any", provenance={"source": "test"})
    saved = read_model_file(path)
    assert (saved.class_name, saved.model, saved.layout) == ("Anything", "any", FORMAT)
    assert saved.params == {"k": (0.1, 0.2)} and saved.provenance == {"source": "test"}
    got = saved.state
    assert got["array"].dtype == np.float32 and got["array"].shape == (2, 3)
    assert torch.is_tensor(got["tensor"]) and isinstance(got["scalar"], np.int16)
    assert got["plain"] == [1, None, "a", 2.5] and got["pair"] == (1, 2)
    assert got["nested"][1][0].dtype == bool and got["keys"] == {3: "three"}
    assert got["strings"].dtype == object and list(got["strings"]) == ["a", "bc"]
    assert np.isnan(got["nan"])
    with pytest.raises(InputError, match="cannot save state.bad: values of type object"):
        write_model_file(tmp_path / "bad.pt", "Anything", {}, {"bad": object()})
    assert not (tmp_path / "bad.pt").exists()


def _tamper(path, **changes):
    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["header"])
    header.update(changes)
    payload["header"] = json.dumps(header)
    payload["checksum"] = payload_checksum(payload)  # a checksum is no signature: re-made
    torch.save(payload, path)


def test_unknown_or_tampered_classes_are_refused(sites, tmp_path):
    coords, values, *_ = sites
    path = save_model(make_model("knn").fit(coords, values), tmp_path / "knn.pt")
    _tamper(path, **{"class": "os.system"})
    with pytest.raises(InputError, match="names estimator class 'os.system' \\(model 'knn'\\), "
                                         "which brainexpr does not load"):
        load_model(path)
    _tamper(path, **{"class": "INRRegressor"})  # a loadable class, but not the model's
    with pytest.raises(InputError, match="does not load"):
        load_model(path)
    _tamper(path, **{"class": "KNNInterpolator", "model": "no-such-model"})
    with pytest.raises(InputError, match="does not load"):
        load_model(path)
    _tamper(path, **{"class": "KNNInterpolator", "model": "knn",
                     "state": {"dict": {"n_genes_": {"array": "x"}}}})
    with pytest.raises(InputError, match="corrupt brainexpr model file \\(KeyError"):
        load_model(path)
    _tamper(path, **{"state": {"dict": {"n_genes_": {"value": 2}}}})
    with pytest.raises(InputError, match="inconsistent brainexpr model file \\(KeyError: "
                                         "'groups_'\\)"):
        load_model(path)
    path = save_model(make_model("kriging").fit(coords, values), tmp_path / "kriging.pt")
    _tamper(path, **{"state": {"dict": {"_private": {"value": 1}}}})
    with pytest.raises(InputError, match="inconsistent brainexpr model file.*no fitted attribute"):
        load_model(path)
    unsaveable = type("Unsaveable", (MODELS["knn"],), {"capabilities": dataclasses.replace(
        MODELS["knn"].capabilities, model_file=False)})
    with pytest.raises(InputError, match="cannot save a Unsaveable to a model file"):
        save_model(unsaveable(), tmp_path / "b.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a brainexpr model file"):
        load_model(tmp_path / "other.pt")
    torch.save({"format": FORMAT, "format_version": 2}, tmp_path / "future.pt")
    with pytest.raises(InputError, match="has brainexpr-model format 2, this brainexpr reads "
                                         "format 1"):
        load_model(tmp_path / "future.pt")


def test_registry_resolves_auto_by_kind_of_data():
    assert resolve_model("auto", "samples")[0] == "donor-kriging"
    assert "BENCHMARKS.md" in resolve_model("auto", "samples")[1]
    assert resolve_model("auto", "regions")[0] == "factorized"
    assert resolve_model("kriging", "samples") == ("kriging", "requested")
    assert set(NUMPY_MODELS) <= set(workflow_models())
    assert "kriging" not in regional_models() and "parcel-kriging" in regional_models()
    with pytest.raises(InputError, match="fits sample sites.*'factorized'.*'parcel-kriging'"):
        resolve_model("kriging", "regions")
    with pytest.raises(InputError, match="model must be 'auto' or one of"):
        resolve_model("krigging", "samples")


def test_damaged_or_inconsistent_inr_files_are_one_line_errors(sites, tmp_path):
    coords, values, *_ = sites
    model = INRRegressor("factorized", n_layers=2, hidden_features=16, n_features=8,
                         gene_hidden=8, n_frequencies=2, max_steps=5,
                         validation_fraction=0.0, device="cpu").fit(coords, values)
    path = model.save(tmp_path / "inr.pt")
    payload = torch.load(path, weights_only=True)
    name = next(k for k in payload["arrays"] if k.startswith("state.members.0."))

    flipped = dict(payload, arrays={k: v.clone() for k, v in payload["arrays"].items()})
    flipped["arrays"][name].view(-1)[0] += 1.0  # one weight changed, checksum kept
    torch.save(flipped, tmp_path / "flipped.pt")
    with pytest.raises(InputError, match="is damaged: the checksum of its arrays"):
        load_model(tmp_path / "flipped.pt")

    def header(change):
        def apply(p):
            h = json.loads(p["header"])
            change(h)
            p["header"] = json.dumps(h)
        return apply

    members = lambda h: h["state"]["dict"]["members"]["list"]  # noqa: E731
    for change, message in [
        (lambda p: p["arrays"].__setitem__(name, torch.zeros(3, 3)), "size mismatch"),
        (header(lambda h: members(h).append(members(h)[0])),
         "2 member\\(s\\) saved for n_ensemble"),
        (header(lambda h: h["state"]["dict"].pop("n_genes")), "KeyError"),
    ]:
        broken = torch.load(path, weights_only=True)
        change(broken)
        broken["checksum"] = payload_checksum(broken)
        torch.save(broken, tmp_path / "broken.pt")
        with pytest.raises(InputError, match=f"inconsistent brainexpr model file.*{message}"):
            load_model(tmp_path / "broken.pt")


def test_files_of_earlier_versions_load():
    """Files written by main before the container (tests/data/legacy_models) predict what
    that code predicted, bit for bit."""
    expected = np.load(LEGACY / "expected.npz")
    query, query_tissue = expected["query"], expected["query_tissue"]
    for name in ("nearest", "donor-kriging", "factorized"):
        model = load_model(LEGACY / f"{name}.pt")
        assert model_name(model) == name and model.checkpoint_metadata_["brainexpr_version"]
        prediction = model.predict(query, query_tissue)
        np.testing.assert_array_equal(prediction, expected[name])
        if f"{name}_std" in expected:
            np.testing.assert_array_equal(model.predict_std(query, query_tissue),
                                          expected[f"{name}_std"])
    assert load_model(LEGACY / "nearest.pt").provenance_ == {"source": "legacy"}
    inr = INRRegressor.load(LEGACY / "factorized.pt")
    assert inr.gene_names_ == ["APOE", "MAPT"] and inr.provenance_ == {"source": "legacy"}
    assert inr.gene_axis_info_ is not None and inr.gene_axis_info_.reference.shape == (40, 2)
    vae = GraphVAERegressor.load(LEGACY / "graph_vae.pt")
    X = pd.DataFrame(expected["vae_X"], columns=[f"G{i}" for i in range(5)],
                     index=[f"r{i}" for i in range(8)])
    np.testing.assert_array_equal(vae.predict(X), expected["vae"])
    np.testing.assert_array_equal(vae.transform(X), expected["vae_transform"])
    with pytest.raises(InputError, match="holds a GraphVAERegressor, not a INRRegressor"):
        INRRegressor.load(LEGACY / "graph_vae.pt")


def test_legacy_files_saved_again_use_the_container(tmp_path):
    model = load_model(LEGACY / "donor-kriging.pt")
    again = load_model(save_model(model, tmp_path / "again.pt"))
    assert read_model_file(tmp_path / "again.pt").layout == FORMAT
    query = np.load(LEGACY / "expected.npz")["query"]
    np.testing.assert_array_equal(again.predict(query), model.predict(query))


def _imports(path: Path) -> set[str]:
    """Modules of brainexpr.models imported anywhere in ``path`` (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level == 1:
                found.add(node.module.split(".")[0])
            elif node.level == 2 and node.module.startswith("models."):
                found.add(node.module.split(".")[1])
            elif node.module.startswith("brainexpr.models."):
                found.add(node.module.split(".")[2])
    return found


def test_models_import_each_other_without_cycles():
    folder = Path(brainexpr.models.__file__).parent
    graph = {p.stem: _imports(p) & {q.stem for q in folder.glob("*.py")}
             for p in folder.glob("*.py")}
    assert graph["checkpoint"] == set()  # the container imports no estimator (nor anything)
    state = {name: "new" for name in graph}

    def visit(name, trail):
        state[name] = "open"
        for other in sorted(graph[name]):
            assert state[other] != "open", f"import cycle: {' -> '.join(trail + [other])}"
            if state[other] == "new":
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(graph):
        if state[name] == "new":
            visit(name, [name])


def test_container_loads_without_any_estimator_module():
    code = ("import sys, brainexpr.models.checkpoint\n"
            "loaded = [m for m in sys.modules if m.startswith('brainexpr.models.') and "
            "m != 'brainexpr.models.checkpoint']\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)
