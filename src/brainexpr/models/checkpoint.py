"""One checkpoint file per INR model: everything needed to predict, or to resume training.

The file is written with :func:`torch.save` and read with ``torch.load(weights_only=True)``,
so loading never unpickles arbitrary objects. Its content is a dict of plain types:

``format``, ``format_version``
    ``"brainexpr-inr"`` and the layout version.
``metadata``
    A JSON string: estimator parameters, package and torch versions, seed, gene names,
    gene-axis positions (and the spectral embedding when it was computed at fit time),
    coordinate and value scalers, training history, the fingerprint of the training
    data, ``complete`` (all ensemble members trained) and free-form ``provenance``.
``members``
    One ``state_dict`` per finished ensemble member.
``reference``
    The expression table the gene axis was computed from (float64 tensor) or ``None``;
    it lets :meth:`INRRegressor.add_genes` place new genes after loading.
``training``
    ``None`` for a finished fit; otherwise the state of the member being trained
    (weights, Adam state, best weights so far, step, early-stopping counters, history).
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..errors import InputError
from ..utils import atomic_path

logger = logging.getLogger(__name__)

FORMAT = "brainexpr-inr"
FORMAT_VERSION = 1

#: Parameters that may differ between an interrupted fit and the call that resumes it.
RESUME_FREE_PARAMS = ("checkpoint_path", "resume", "device", "precision", "precision_tolerance",
                      "checkpoint_every", "max_steps")


def _plain(value):
    """Turn numpy scalars, paths and generators into JSON-compatible values."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.random.Generator):
        return None
    return value


def _params(estimator) -> dict:
    return {key: _plain(value) for key, value in estimator.get_params().items()}


def _metadata(estimator, complete: bool) -> dict:
    info = getattr(estimator, "gene_axis_info_", None)
    reference = None if info is None else info.reference
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "brainexpr_version": __version__,
        "torch_version": torch.__version__,
        "params": _params(estimator),
        "complete": complete,
        "seed": int(estimator.seed_),
        "fit_kind": estimator.fit_kind_,
        "fingerprint": estimator.fingerprint_,
        "n_genes": int(estimator.n_genes_),
        "gene_names": None if estimator.gene_names_ is None else list(estimator.gene_names_),
        "placed_genes": list(estimator.placed_genes_),
        "gene_axis": [float(v) if np.isfinite(v) else None for v in estimator.gene_axis_],
        "gene_axis_info": None if info is None else info.to_state(),
        "reference_index": None if reference is None else [_plain(v) for v in reference.index],
        "coord_center": np.asarray(estimator.coord_center_, dtype=float).tolist(),
        "coord_scale": np.asarray(estimator.coord_scale_, dtype=float).tolist(),
        "value_offset": np.asarray(estimator.value_offset_, dtype=float).tolist(),
        "value_scale": np.asarray(estimator.value_scale_, dtype=float).tolist(),
        "region_names": getattr(estimator, "region_names_", None),
        "history": [[list(row) for row in member] for member in estimator.history_],
        "best_step": [int(s) for s in estimator.best_step_],
        "provenance": getattr(estimator, "provenance_", {}),
    }


def _cpu_state(state):
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


def save_checkpoint(estimator, path, training: dict | None = None) -> Path:
    """Write ``estimator`` (fitted, or being fitted) to one checkpoint file, atomically.

    Parameters
    ----------
    estimator : INRRegressor
    path : path-like
    training : dict, optional
        State of the member in training (see the module docstring); ``None`` once the
        members in ``estimator.members_`` are all there is to save.
    """
    complete = training is None and len(estimator.members_) == estimator.n_ensemble
    info = getattr(estimator, "gene_axis_info_", None)
    reference = None
    if info is not None and info.reference is not None:
        reference = torch.tensor(info.reference.to_numpy(dtype=float, copy=True), dtype=torch.float64)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": json.dumps(_metadata(estimator, complete)),
        "members": [_cpu_state(m.state_dict()) for m in estimator.members_],
        "reference": reference,
        "training": None,
    }
    if training is not None:
        optimizer = training["optimizer"]
        payload["training"] = {
            "member": int(training["member"]), "step": int(training["step"]),
            "module": _cpu_state(training["module"]),
            "optimizer": _optimizer_to_cpu(optimizer),
            "best": _cpu_state(training["best"]),
            "best_value": float(training["best_value"]), "best_step": int(training["best_step"]),
            "bad": int(training["bad"]),
            "history": [[float(x) for x in row] for row in training["history"]],
        }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    logger.debug("checkpoint written: %s (%s)", path, "complete" if complete else "partial")
    return path


def _optimizer_to_cpu(state: dict) -> dict:
    out = {"param_groups": state["param_groups"], "state": {}}
    for key, value in state["state"].items():
        out["state"][key] = {k: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                             for k, v in value.items()}
    return out


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint safely; return ``(metadata, payload)``.

    Raises
    ------
    InputError
        When the file is missing, is not a brainexpr INR checkpoint, or is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; fit a model first (brainexpr fit)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable brainexpr model file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a brainexpr INR model file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} has checkpoint format {payload.get('format_version')}, this "
                         f"brainexpr reads format {FORMAT_VERSION}")
    return json.loads(payload["metadata"]), payload


def _restore_common(estimator, metadata: dict, payload: dict) -> None:
    from ..geneaxis import GeneAxis

    estimator.seed_ = int(metadata["seed"])
    estimator.fit_kind_ = metadata["fit_kind"]
    estimator.fingerprint_ = metadata["fingerprint"]
    estimator.n_genes_ = int(metadata["n_genes"])
    estimator.gene_names_ = metadata["gene_names"]
    estimator.placed_genes_ = list(metadata["placed_genes"])
    estimator.gene_axis_ = np.array([np.nan if v is None else v for v in metadata["gene_axis"]],
                                    dtype=float)
    estimator.coord_center_ = np.asarray(metadata["coord_center"], dtype=float)
    estimator.coord_scale_ = np.asarray(metadata["coord_scale"], dtype=float)
    estimator.value_offset_ = np.asarray(metadata["value_offset"], dtype=float)
    estimator.value_scale_ = np.asarray(metadata["value_scale"], dtype=float)
    if metadata.get("region_names") is not None:
        estimator.region_names_ = metadata["region_names"]
    estimator.provenance_ = metadata.get("provenance") or {}
    estimator.gene_axis_info_ = None
    if metadata.get("gene_axis_info") is not None:
        state = metadata["gene_axis_info"]
        reference = None
        if payload.get("reference") is not None:
            reference = pd.DataFrame(payload["reference"].numpy(), index=metadata["reference_index"],
                                     columns=state["genes"])
        estimator.gene_axis_info_ = GeneAxis.from_state(state, reference=reference)


def _members(estimator, states, n_genes: int, device) -> list:
    n_fitted = n_genes - len(getattr(estimator, "placed_genes_", []))
    members = []
    for state in states:
        module = estimator._build_module(n_fitted)
        module.load_state_dict(state)
        module.to(device)
        module.eval()
        members.append(module)
    return members


def load_model(path, device: str | None = None):
    """Load a fitted :class:`~brainexpr.models.inr.INRRegressor` from a checkpoint file.

    Parameters
    ----------
    path : path-like
    device : str, optional
        Overrides the saved ``device`` parameter (``"auto"``, ``"cpu"``, ``"cuda"``).

    Returns
    -------
    INRRegressor
    """
    from .inr import INRRegressor, resolve_device

    metadata, payload = load_checkpoint(path)
    if not metadata["complete"]:
        raise InputError(f"{path} holds an unfinished fit; resume it (brainexpr fit ... --resume) "
                         "before predicting")
    params = dict(metadata["params"])
    if device is not None:
        params["device"] = device
    estimator = INRRegressor(**params)
    _restore_common(estimator, metadata, payload)
    estimator.history_ = [[tuple(row) for row in member] for member in metadata["history"]]
    estimator.best_step_ = list(metadata["best_step"])
    resolved = resolve_device(estimator.device)
    estimator.device_ = str(resolved)
    estimator.members_ = _members(estimator, payload["members"], estimator.n_genes_, resolved)
    estimator.checkpoint_metadata_ = {k: metadata[k] for k in
                                      ("brainexpr_version", "torch_version", "provenance")}
    return estimator


def restore_training(estimator, metadata: dict, payload: dict):
    """Load the progress of an interrupted fit into ``estimator`` (during :meth:`fit`).

    Returns
    -------
    complete : bool
        True when the checkpoint holds a finished fit (its members are now loaded and
        there is nothing left to train).
    state : dict or None
        The state of the member that was in training, if any.

    Raises
    ------
    InputError
        When the checkpoint belongs to other data or other parameters.
    """
    from .inr import resolve_device

    path = estimator.checkpoint_path
    params = _params(estimator)
    saved = metadata["params"]
    differ = sorted(k for k in params if k not in RESUME_FREE_PARAMS and k != "random_state"
                    and params[k] != saved.get(k))
    if estimator.random_state is not None and saved.get("random_state") != params["random_state"]:
        differ.append("random_state")
    if differ:
        raise InputError(f"{path} was written with other parameters ({', '.join(differ)}); "
                         "use a new checkpoint_path or resume=False")
    if metadata["fingerprint"] != estimator.fingerprint_ or \
            metadata["gene_names"] != estimator.gene_names_ or \
            not np.allclose(np.nan_to_num(np.array([np.nan if v is None else v
                                                     for v in metadata["gene_axis"]])),
                            np.nan_to_num(estimator.gene_axis_)):
        raise InputError(f"{path} was written for other training data; use a new checkpoint_path "
                         "or resume=False")
    estimator.seed_ = int(metadata["seed"])
    device = resolve_device(estimator.device)
    estimator.members_ = _members(estimator, payload["members"], estimator.n_genes_, device)
    estimator.history_ = [[tuple(row) for row in member] for member in metadata["history"]]
    estimator.best_step_ = list(metadata["best_step"])
    if metadata["complete"]:
        return True, None
    training = payload.get("training")
    if training is None:  # only whole members were saved; the next one starts from scratch
        return False, None
    state = dict(training)
    state["history"] = [tuple(row) for row in state["history"]]
    logger.info("resuming from %s: %d member(s) finished, member %d at step %d", path,
                len(estimator.members_), state["member"], state["step"])
    return False, state
