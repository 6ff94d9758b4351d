"""Name -> estimator factory: the one place where models are named and looked up.

Every entry is a callable that takes keyword parameters and returns an unfitted estimator
following :mod:`brainexpr.models.base` (``fit(coords, values, tissue, gene_axis)``,
``predict(coords, tissue, genes)``). Other modules add their models with
:func:`register_model`; workflows, the benchmark and the report call :func:`make_model`
and read what a model can do from :func:`capabilities` (declared on its class as
:class:`~brainexpr.models.base.Capabilities`).

The workflows (``brainexpr fit | predict | parcellate | run``) accept the models of
:func:`workflow_models`: those whose class declares ``Capabilities(model_file=True)`` and
so saves its state to a model file. :func:`save_model` and :func:`load_model` write and
read those files (the format is :mod:`brainexpr.models.checkpoint`, which knows no model
class: loading looks the class up here). :func:`resolve_model` turns ``"auto"`` into
a model for the kind of training data (:data:`AUTO_MODELS`: donor kriging for sample
sites, the factorized INR for parcel means) and checks that a named model can fit it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

from ..datasets.validate import check_choice
from ..errors import InputError
from .base import Capabilities
from .checkpoint import read_model_file, restore, save_state
from .baselines import KNNInterpolator, KrigingInterpolator, NearestSampleInterpolator
from .inr import INRRegressor
from .parcel import ParcelKrigingRegressor
from .kriging import DonorKrigingRegressor

#: model name -> factory(**params) -> estimator
MODELS: dict[str, Callable] = {
    "paper": functools.partial(INRRegressor, design="paper"),
    "factorized": functools.partial(INRRegressor, design="factorized"),
    "per_gene": functools.partial(INRRegressor, design="per_gene"),
    # classical baselines and the held-out winner (see BENCHMARKS.md, accuracy on held-out data)
    "nearest": NearestSampleInterpolator,
    "knn": KNNInterpolator,
    "kriging": KrigingInterpolator,
    "donor-kriging": DonorKrigingRegressor,
    # parcel level: block kriging of a regional table (fit_regions); benchmarks/parcel_fits.py
    "parcel-kriging": ParcelKrigingRegressor,
}

#: What ``model="auto"`` means for each kind of training data: (model, reason). Held-out
#: evidence in BENCHMARKS.md ("Accuracy on held-out data", mean per-gene Pearson r).
AUTO_MODELS = {
    "samples": ("donor-kriging",
                "most accurate on held-out sample sites in BENCHMARKS.md (mean per-gene r, cell "
                "types: 0.696 blocked / 0.739 donor-out; phantom: 0.755 / 0.833), ahead of "
                "mirrored kriging (0.674 / 0.732), abagen's mirrored kNN (0.655 / 0.718) and the "
                "factorized INR (0.617 / 0.706); it also gives calibrated _std maps"),
    "regions": ("factorized",
                "best on real held-out DK-83 parcels in BENCHMARKS.md (3-member ensemble, mean "
                "per-gene r 0.504 vs 0.448 for parcel-kriging; tie on phantoms)"),
}


def register_model(name: str, factory: Callable, overwrite: bool = False) -> None:
    """Add a model factory under ``name``.

    Parameters
    ----------
    name : str
    factory : callable
        ``factory(**params)`` returns an unfitted estimator.
    overwrite : bool
        Replace an existing entry instead of raising.
    """
    if name in MODELS and not overwrite:
        raise ValueError(f"model {name!r} is already registered")
    MODELS[name] = factory


def available_models() -> list[str]:
    """Names of the registered models."""
    return list(MODELS)


def make_model(name: str, **params):
    """Build an unfitted estimator by name.

    Raises
    ------
    InputError
        Naming the allowed models when ``name`` is unknown, or the parameter that the
        model does not accept.
    """
    check_choice(name, MODELS, "model")
    try:
        return MODELS[name](**params)
    except TypeError as exc:
        raise InputError(f"model {name!r} does not accept these parameters: {exc}") from None


def model_class(name: str):
    """The estimator class a registry entry builds (None for an opaque factory)."""
    factory = MODELS[name]
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory if isinstance(factory, type) else None


def capabilities(name: str) -> Capabilities:
    """What the model ``name`` can do (:class:`~brainexpr.models.base.Capabilities` of its
    class; ``gene_axis`` as the entry's parameters set it, e.g. False for ``per_gene``)."""
    estimator = make_model(name)  # __init__ only stores parameters
    return dataclasses.replace(estimator.capabilities, gene_axis=estimator.uses_gene_axis)


def is_network(name: str) -> bool:
    """Whether the model ``name`` is an INR (network and training settings apply to it)."""
    return capabilities(name).network


def gives_std(name: str, n_ensemble: int = 1) -> bool:
    """Whether the model ``name`` predicts a standard deviation (``_std`` maps) when fitted
    with ``n_ensemble`` members (:meth:`~brainexpr.models.base.Capabilities.gives_std`)."""
    return capabilities(name).gives_std(n_ensemble)


def workflow_models() -> list[str]:
    """Models that ``brainexpr fit | predict | parcellate | run`` accept: those that save
    their state to a model file (``capabilities.model_file``)."""
    names = []
    for name in MODELS:
        cls = model_class(name)
        if cls is not None and cls.capabilities.model_file:
            names.append(name)
    return names


def regional_models() -> list[str]:
    """Workflow models that fit parcel means (``capabilities.parcel_means``)."""
    return [name for name in workflow_models() if capabilities(name).parcel_means]


def resolve_model(name: str, data_kind: str) -> tuple[str, str]:
    """The model to fit on a kind of training data, and why.

    Parameters
    ----------
    name : str
        ``"auto"`` or a name of :func:`workflow_models`.
    data_kind : {"samples", "regions"}
        Sample sites with coordinates, or parcel means of an atlas.

    Returns
    -------
    name : str
        ``"auto"`` resolved through :data:`AUTO_MODELS`.
    reason : str
        Why ``"auto"`` chose it (``"requested"`` for an explicit name).

    Raises
    ------
    InputError
        For an unknown name, or a model that cannot fit ``data_kind``.
    """
    check_choice(data_kind, AUTO_MODELS, "data_kind", error=ValueError)
    allowed = workflow_models()
    if name == "auto":
        return AUTO_MODELS[data_kind]
    if name not in allowed:
        raise InputError(f"model must be 'auto' or one of {', '.join(map(repr, allowed))}, got "
                         f"{name!r}")
    if data_kind == "regions" and name not in regional_models():
        raise InputError(f"model {name!r} fits sample sites, but this source holds parcel means; "
                         f"models that fit parcel means: "
                         f"{', '.join(map(repr, regional_models()))} (or 'auto')")
    return name, "requested"


def model_name(estimator) -> str:
    """Registry name of a fitted estimator (an INR's design; else the entry of its class)."""
    if estimator.capabilities.network:
        return estimator.design
    saved = (getattr(estimator, "checkpoint_metadata_", None) or {}).get("model")
    if saved in MODELS and model_class(saved) is type(estimator):
        return saved
    for name in MODELS:
        if model_class(name) is type(estimator):
            return name
    return type(estimator).__name__


def saved_model_class(model: str | None, class_name: str):
    """The class that loads a model file: the registry entry ``model`` (or, for files
    that name no model, the registered class called ``class_name``).

    Only classes of :func:`workflow_models` are ever returned, so a file can build
    nothing else.

    Raises
    ------
    InputError
        When the file names a class that brainexpr does not load.
    """
    classes = {}
    for name in workflow_models():
        classes.setdefault(name, model_class(name))
    if isinstance(model, str) and model in classes:
        cls = classes[model]
        if cls.__name__ == class_name:
            return cls
    elif model is None:
        for cls in classes.values():
            if cls.__name__ == class_name:
                return cls
    known = sorted({cls.__name__ for cls in classes.values()})
    raise InputError(f"names estimator class {class_name!r} (model {model!r}), which brainexpr "
                     f"does not load (known: {', '.join(known)})")


def save_model(estimator, path, name: str | None = None, provenance: dict | None = None):
    """Write any fitted model the workflows use to one model file, atomically.

    Parameters
    ----------
    estimator : fitted estimator of a model of :func:`workflow_models`
    path : path-like
    name : str, optional
        Registry name, kept in the file (default: :func:`model_name`).
    provenance : dict, optional
        JSON-compatible description of the training data (default: the estimator's
        ``provenance_`` when it has one).

    Returns
    -------
    Path

    Raises
    ------
    InputError
        For an estimator whose class has no model file (``capabilities.model_file``).
    """
    from sklearn.utils.validation import check_is_fitted

    cls = type(estimator)
    if not cls.capabilities.model_file:
        known = sorted({model_class(n).__name__ for n in workflow_models()})
        raise InputError(f"cannot save a {cls.__name__} to a model file; models that have one: "
                         f"{', '.join(known)}")
    check_is_fitted(estimator)
    return save_state(estimator, path, model=name or model_name(estimator),
                      provenance=provenance)


def load_model(path, device: str | None = None):
    """Load a fitted model from a model file (any layout brainexpr wrote).

    Parameters
    ----------
    path : path-like
    device : str, optional
        Overrides the saved ``device`` parameter of an INR (``"auto"``, ``"cpu"``,
        ``"cuda"``); the numpy estimators run on the CPU.

    Returns
    -------
    estimator
        Of the class the file names, looked up by :func:`saved_model_class`.
    """
    model_file = read_model_file(path)
    try:
        cls = saved_model_class(model_file.model, model_file.class_name)
    except InputError as exc:
        raise InputError(f"{path} {exc}") from None
    return restore(model_file, cls, device=device)
