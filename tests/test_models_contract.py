"""One contract check over every registered model (brainexpr.models.registry + base).

In the spirit of scikit-learn's ``check_estimator``: every entry of
:data:`~brainexpr.models.registry.MODELS` clones, returns itself from ``fit``, refuses to
predict before ``fit``, survives a model file (when it declares one: the state protocol of
:mod:`brainexpr.models.base`) and does what its declared
:class:`~brainexpr.models.base.Capabilities` say, and nothing it does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from brainexpr.errors import InputError
from brainexpr.maps.dense import has_uncertainty
from brainexpr.models.base import Capabilities, SampleInterpolator
from brainexpr.models.kriging import DonorKrigingRegressor
from brainexpr.models.registry import (MODELS, capabilities, load_model, make_model, model_name,
                                       regional_models, save_model, workflow_models)

#: Small settings per model so that each fits in about a second (the defaults are the
#: tested behaviour elsewhere); INRs get 2 members so that their ensemble SD exists.
_NETWORK = dict(n_layers=2, hidden_features=8, n_frequencies=2, max_steps=3, eval_every=3,
                validation_fraction=0.0, n_ensemble=2)
SMALL = {
    "paper": _NETWORK,
    "factorized": dict(_NETWORK, n_features=4, gene_hidden=4),
    "per_gene": _NETWORK,
    "donor-kriging": dict(nugget_grid=(0.15,), donor_grid=(0.0, 1.0)),
    "parcel-kriging": dict(range_grid=(20.0, 80.0), nugget_grid=(0.01, 0.1)),
}
NAMES = sorted(MODELS)


def _model(name):
    params = dict(SMALL.get(name, {}))
    estimator = make_model(name, **params)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=0)
    return estimator


@pytest.fixture(scope="module")
def data(sites):
    """The shared ``sites`` fixture (conftest) by name, with gene-axis positions."""
    coords, values, tissue, donors, query, query_tissue = sites
    return dict(coords=coords, values=values, tissue=tissue, donors=donors, gene_axis=[0.2, 0.7],
                query=query, query_tissue=query_tissue, n_query=len(query))


@pytest.fixture(scope="module")
def fitted(data):
    """Every registered model fitted once on ``data`` (donors where it takes them)."""
    models = {}
    for name in NAMES:
        estimator = _model(name)
        extra = {"donors": data["donors"]} if estimator.capabilities.donors else {}
        returned = estimator.fit(data["coords"], data["values"], tissue=data["tissue"],
                                 gene_axis=data["gene_axis"], **extra)
        models[name] = (estimator, returned)
    return models


def test_every_model_declares_its_capabilities():
    for name in NAMES:
        estimator = make_model(name)
        assert isinstance(estimator, SampleInterpolator), name
        assert isinstance(type(estimator).capabilities, Capabilities), name
        assert capabilities(name).network == (name in ("paper", "factorized", "per_gene"))
    assert not capabilities("per_gene").gene_axis and capabilities("factorized").gene_axis
    with pytest.raises(ValueError, match="std must be one of"):
        Capabilities(std="bootstrap")


@pytest.mark.parametrize("name", NAMES)
def test_clone_keeps_the_parameters(name):
    estimator = _model(name)
    copy = clone(estimator)
    assert copy is not estimator and type(copy) is type(estimator)
    assert copy.get_params() == estimator.get_params()


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self(name, fitted):
    estimator, returned = fitted[name]
    assert returned is estimator


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises(name, data):
    with pytest.raises((NotFittedError, InputError)):
        _model(name).predict(data["query"], tissue=data["query_tissue"])


@pytest.mark.parametrize("name", NAMES)
def test_prediction_shape_and_gene_selection(name, data, fitted):
    estimator, _ = fitted[name]
    prediction = np.asarray(estimator.predict(data["query"], tissue=data["query_tissue"]))
    assert prediction.shape == (data["n_query"], 2) and np.isfinite(prediction).all()
    one = np.asarray(estimator.predict(data["query"], tissue=data["query_tissue"],
                                       genes=["MAPT"]))
    np.testing.assert_allclose(one[:, 0], prediction[:, 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_model_file_round_trip(name, data, fitted, tmp_path):
    estimator, _ = fitted[name]
    assert (name in workflow_models()) == estimator.capabilities.model_file
    if not estimator.capabilities.model_file:  # the workflows refuse it: no model file
        with pytest.raises(InputError, match="cannot save"):
            save_model(estimator, tmp_path / "model.pt", name=name)
        return
    loaded = load_model(save_model(estimator, tmp_path / "model.pt", name=name))
    assert type(loaded) is type(estimator) and model_name(loaded) == name
    assert loaded.get_params() == estimator.get_params()
    np.testing.assert_array_equal(loaded.predict(data["query"], tissue=data["query_tissue"]),
                                  estimator.predict(data["query"], tissue=data["query_tissue"]))
    if has_uncertainty(estimator):
        np.testing.assert_array_equal(
            loaded.predict_std(data["query"], tissue=data["query_tissue"]),
            estimator.predict_std(data["query"], tissue=data["query_tissue"]))


@pytest.mark.parametrize("name", NAMES)
def test_declared_sd_matches_behaviour(name, data, fitted):
    estimator, _ = fitted[name]
    declared = estimator.capabilities.std
    assert has_uncertainty(estimator) == (declared is not None)  # INRs here: 2 members
    if declared is None:
        assert not callable(getattr(estimator, "predict_std", None))
        return
    std = np.asarray(estimator.predict_std(data["query"], tissue=data["query_tissue"]))
    assert std.shape == (data["n_query"], 2) and np.isfinite(std).all() and (std >= 0).all() and std.max() > 0
    if declared == "ensemble":
        single = clone(estimator).set_params(n_ensemble=1)
        single.fit(data["coords"], data["values"], tissue=data["tissue"])
        assert not has_uncertainty(single)


@pytest.mark.parametrize("name", NAMES)
def test_declared_donors_match_the_fit_signature(name, data):
    estimator = _model(name)
    if estimator.capabilities.donors:
        return  # the fitted fixture passed donors= to it
    with pytest.raises(TypeError):
        estimator.fit(data["coords"], data["values"], donors=data["donors"])


@pytest.mark.parametrize("name", NAMES)
def test_declared_gene_axis_places_genes(name, data, fitted):
    estimator, _ = fitted[name]
    if not estimator.uses_gene_axis:
        assert name not in ("paper", "factorized")
        return
    at_genes = estimator.predict_at_axis(data["query"], data["gene_axis"],
                                         tissue=data["query_tissue"])
    np.testing.assert_allclose(at_genes, estimator.predict(data["query"],
                                                           tissue=data["query_tissue"]),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_declared_parcel_means_match_fit_regions(name, tiny_atlas):
    estimator = _model(name)
    assert (name in regional_models()) == (estimator.capabilities.parcel_means
                                           and name in workflow_models())
    if not estimator.capabilities.parcel_means:
        assert not hasattr(estimator, "fit_regions")
        return
    image, regions = tiny_atlas
    table = pd.DataFrame({"APOE": [0.1, 0.5, -0.2, 0.9], "MAPT": [1.0, 0.0, 0.3, -0.4]},
                         index=regions.index)
    assert estimator.fit_regions(image, table, regions=regions) is estimator
    assert np.asarray(estimator.predict(np.zeros((2, 3)))).shape == (2, 2)


def _only_savable_values(value, where: str) -> None:
    """The state protocol: arrays, tensors, plain values and lists/tuples/dicts of them."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _only_savable_values(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _only_savable_values(key, f"{where} key")
            _only_savable_values(item, f"{where}[{key!r}]")
    else:
        assert value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.generic,
                                                   torch.Tensor)), \
            f"{where} is a {type(value).__name__}"


@pytest.mark.parametrize("name", NAMES)
def test_state_protocol_restores_the_fitted_model(name, data, fitted):
    estimator, _ = fitted[name]
    if not estimator.capabilities.model_file:
        return
    state = estimator._state()
    _only_savable_values(state, "state")
    restored = type(estimator)._from_state(estimator.get_params(deep=False), state)
    assert type(restored) is type(estimator)
    assert restored.get_params() == estimator.get_params()
    np.testing.assert_array_equal(restored.predict(data["query"], tissue=data["query_tissue"]),
                                  estimator.predict(data["query"], tissue=data["query_tissue"]))


def test_a_subclass_does_not_inherit_the_model_file():
    class Extended(DonorKrigingRegressor):
        pass

    assert DonorKrigingRegressor.capabilities.model_file
    assert not Extended.capabilities.model_file
    assert Extended.capabilities.donors and Extended.capabilities.std == "kriging"
