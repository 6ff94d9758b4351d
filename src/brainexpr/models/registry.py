"""Name -> estimator factory: the one place where workflows look up models.

Every entry is a callable that takes keyword parameters and returns an unfitted estimator
following :mod:`brainexpr.models.base` (``fit(coords, values, tissue, gene_axis)``,
``predict(coords, tissue, genes)``). Other modules add their models with
:func:`register_model`; workflows call :func:`make_model`.
"""

from __future__ import annotations

import functools
from typing import Callable

from ..errors import InputError
from .baselines import KNNInterpolator, KrigingInterpolator, NearestSampleInterpolator
from .inr import INRRegressor
from .residual import BlendedINRRegressor, DonorKrigingRegressor, ResidualINRRegressor

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
    "residual-inr": ResidualINRRegressor,
    "kriging+inr": BlendedINRRegressor,
}

#: Models that are INRs (trained networks, saved as checkpoint files).
INR_MODELS = ("paper", "factorized", "per_gene")


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
    if name not in MODELS:
        raise InputError(f"model must be one of {', '.join(map(repr, MODELS))}, got {name!r}")
    try:
        return MODELS[name](**params)
    except TypeError as exc:
        raise InputError(f"model {name!r} does not accept these parameters: {exc}") from None
