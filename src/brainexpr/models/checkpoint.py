"""One model file per fitted model: INR checkpoints and pure-numpy estimators.

Two layouts share the safe reader (:func:`load_model` tells them apart by ``format``):

* INR checkpoints (``"brainexpr-inr"``, below): everything an
  :class:`~brainexpr.models.inr.INRRegressor` needs to predict, or to resume training;
* estimator files (``"brainexpr-estimator"``, :func:`save_estimator`): any pure-numpy
  estimator of the allow-list :data:`NUMPY_ESTIMATORS` (nearest, kNN, kriging, donor
  kriging), stored as its constructor parameters plus every fitted attribute ending in
  ``_``, flattened into named tensors and plain JSON values. Nested lists, tuples and
  dicts of arrays are kept (e.g. ``DonorKrigingRegressor.weights_``,
  ``KrigingInterpolator.variogram_``); KD-trees store their points and are rebuilt on load.
  Loading imports only classes of the allow-list.

INR checkpoints
---------------

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
``checksum``
    SHA-256 of everything else in the file (every tensor's name, dtype, shape and bytes,
    and every plain value), written by :func:`payload_checksum` and verified on load, so
    that damaged weight bytes are an error instead of an all-NaN map. Both layouts carry it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
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
ESTIMATOR_FORMAT = "brainexpr-estimator"
ESTIMATOR_FORMAT_VERSION = 1

#: Pure-numpy estimators written by :func:`save_estimator` and rebuilt by
#: :func:`load_model`: class name -> module. Loading imports nothing else, so a file can
#: only ever build one of these; a new estimator needs one line here.
NUMPY_ESTIMATORS = {
    "NearestSampleInterpolator": "brainexpr.models.baselines",
    "KNNInterpolator": "brainexpr.models.baselines",
    "KrigingInterpolator": "brainexpr.models.baselines",
    "DonorKrigingRegressor": "brainexpr.models.kriging",
    "ParcelKrigingRegressor": "brainexpr.models.parcel",
}

#: Fitted attributes that are not saved as attributes (provenance goes in the metadata).
_UNSAVED_ATTRIBUTES = ("provenance_", "checkpoint_metadata_")

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
        # (genes,) positions, or the (genes, k) embedding of gene_embedding="profile-pca"
        "gene_axis": np.where(np.isfinite(estimator.gene_axis_), estimator.gene_axis_,
                              None).tolist(),
        "gene_axis_info": None if info is None else info.to_state(),
        "reference_index": None if reference is None else [_plain(v) for v in reference.index],
        "coord_center": np.asarray(estimator.coord_center_, dtype=float).tolist(),
        "coord_scale": np.asarray(estimator.coord_scale_, dtype=float).tolist(),
        "value_offset": np.asarray(estimator.value_offset_, dtype=float).tolist(),
        "value_scale": np.asarray(estimator.value_scale_, dtype=float).tolist(),
        "region_names": getattr(estimator, "region_names_", None),
        "history": [[list(row) for row in member] for member in estimator.history_],
        "best_step": [int(s) for s in estimator.best_step_],
        "std_scale": _optional_floats(getattr(estimator, "std_scale_", None)),
        "provenance": getattr(estimator, "provenance_", {}),
    }


def _optional_floats(values):
    return None if values is None else [float(v) if np.isfinite(v) else None for v in values]


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
    payload["checksum"] = payload_checksum(payload)
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


def _read_file(path, warn: bool = True) -> dict:
    """``torch.load(weights_only=True)`` of a model file, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; fit a model first (brainexpr fit)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is no model file
        raise InputError(f"{path} is not a readable brainexpr model file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, ESTIMATOR_FORMAT):
        raise InputError(f"{path} is not a brainexpr INR model file nor a saved brainexpr "
                         "estimator")
    if "checksum" not in payload:
        if warn:
            logger.warning("%s has no checksum (written by an earlier brainexpr); its "
                           "arrays cannot be verified", path)
    elif payload["checksum"] != payload_checksum(payload):
        raise InputError(f"{path} is damaged: the checksum of its arrays does not match (the "
                         "file changed after brainexpr wrote it); refit the model or restore "
                         "the file from a copy")
    return payload


def payload_checksum(payload: dict) -> str:
    """SHA-256 (hex) of a model file's content, except its ``checksum`` entry.

    Covers, in a fixed order, every key, every plain value (as JSON) and every tensor's
    dtype, shape and bytes, however deeply they are nested in dicts and lists.

    Parameters
    ----------
    payload : dict
        What :func:`save_checkpoint` or :func:`save_estimator` writes.

    Returns
    -------
    str
    """
    digest = hashlib.sha256()

    def feed(value, name: str) -> None:
        digest.update(name.encode("utf-8") + b"\0")
        if torch.is_tensor(value):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
                          if tensor.numel() else b"")
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                if not (name == "" and key == "checksum"):
                    feed(value[key], f"{name}/{key}")
        elif isinstance(value, (list, tuple)):
            digest.update(f"[{len(value)}".encode())
            for index, item in enumerate(value):
                feed(item, f"{name}/{index}")
        else:
            digest.update(json.dumps(value, default=str).encode("utf-8"))

    feed(payload, "")
    return digest.hexdigest()


def is_model_file(path) -> bool:
    """Whether ``path`` is a brainexpr model file (either layout; damaged ones count too).

    Used by the output policy (:mod:`brainexpr.outputs`): ``brainexpr fit`` replaces an
    earlier model file but never a file it did not write.
    """
    try:
        _read_file(path, warn=False)
    except InputError as exc:
        return "is damaged" in str(exc)
    return True


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read an INR checkpoint safely; return ``(metadata, payload)``.

    Raises
    ------
    InputError
        When the file is missing, is not a brainexpr INR checkpoint, or is corrupt.
    """
    payload = _read_file(path)
    if payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a brainexpr INR model file (it holds a "
                         f"{payload.get('format')!r} estimator)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} has checkpoint format {payload.get('format_version')}, this "
                         f"brainexpr reads format {FORMAT_VERSION}")
    try:
        metadata = json.loads(payload["metadata"])
        _check_consistent(metadata, payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path} is an inconsistent brainexpr model file ({_reason(exc)}); "
                         "refit the model") from None
    return metadata, payload


def _reason(exc: Exception) -> str:
    """``Type: message`` on one line, at most 200 characters."""
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= 200 else text[:197] + "..."


def _check_consistent(metadata: dict, payload: dict) -> None:
    """Raise ValueError/KeyError when the parts of an INR checkpoint do not fit together."""
    n_genes = int(metadata["n_genes"])
    per_gene = {"gene_axis": metadata["gene_axis"], "value_offset": metadata["value_offset"],
                "value_scale": metadata["value_scale"]}
    if metadata["gene_names"] is not None:
        per_gene["gene_names"] = metadata["gene_names"]
    for key, values in per_gene.items():
        if len(values) != n_genes:
            raise ValueError(f"{key} has {len(values)} entries for {n_genes} genes")
    if len(metadata["coord_center"]) != 3 or len(metadata["coord_scale"]) not in (1, 3):
        raise ValueError("coordinate scalers are not 3-D")
    members = payload["members"]
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise ValueError("members is not a list of weight sets")
    if metadata["complete"] and len(members) != int(metadata["params"]["n_ensemble"]):
        raise ValueError(f"{len(members)} member(s) saved for n_ensemble = "
                         f"{metadata['params']['n_ensemble']}")


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
    """Load a fitted model from a file written by :func:`save_model`.

    Parameters
    ----------
    path : path-like
        An INR checkpoint or an estimator file (see the module docstring).
    device : str, optional
        INR only: overrides the saved ``device`` parameter (``"auto"``, ``"cpu"``,
        ``"cuda"``); the numpy estimators run on the CPU.

    Returns
    -------
    INRRegressor or an estimator of :data:`NUMPY_ESTIMATORS`
    """
    from .inr import INRRegressor, resolve_device

    if _read_file(path).get("format") == ESTIMATOR_FORMAT:
        return load_estimator(path)
    metadata, payload = load_checkpoint(path)
    if not metadata["complete"]:
        raise InputError(f"{path} holds an unfinished fit; resume it (brainexpr fit ... --resume) "
                         "before predicting")
    params = dict(metadata["params"])
    if device is not None:
        params["device"] = device
    try:
        estimator = INRRegressor(**params)
        _restore_common(estimator, metadata, payload)
        estimator.history_ = [[tuple(row) for row in member] for member in metadata["history"]]
        estimator.best_step_ = list(metadata["best_step"])
        if metadata.get("std_scale") is not None:
            estimator.std_scale_ = np.array([np.nan if v is None else v
                                             for v in metadata["std_scale"]])
        resolved = resolve_device(estimator.device)
        estimator.device_ = str(resolved)
        estimator.members_ = _members(estimator, payload["members"], estimator.n_genes_, resolved)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} is an inconsistent brainexpr model file ({_reason(exc)}); "
                         "refit the model") from None
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


# --------------------------------------------------------------------------- numpy estimators
def numpy_estimator_class(name: str):
    """The class of :data:`NUMPY_ESTIMATORS` called ``name`` (InputError for any other)."""
    if not isinstance(name, str) or name not in NUMPY_ESTIMATORS:
        raise InputError(f"estimator class {name!r} is not one that brainexpr saves or loads "
                         f"({', '.join(NUMPY_ESTIMATORS)})")
    return getattr(importlib.import_module(NUMPY_ESTIMATORS[name]), name)


def is_numpy_estimator(estimator) -> bool:
    """Whether ``estimator`` is an instance of a class of :data:`NUMPY_ESTIMATORS`."""
    cls = type(estimator)
    return NUMPY_ESTIMATORS.get(cls.__name__) == cls.__module__


class _Flattener:
    """Encode nested values as a JSON spec plus a dict of named tensors (and back)."""

    def __init__(self, arrays: dict | None = None):
        self.arrays = {} if arrays is None else arrays

    def encode(self, value, name: str):
        from scipy.spatial import cKDTree

        if isinstance(value, cKDTree):  # rebuilt from its points on load
            return {"kdtree": self.encode(np.asarray(value.data), name + ".data"),
                    "leafsize": int(value.leafsize)}
        if isinstance(value, np.ndarray):
            return self._encode_array(value, name)
        if isinstance(value, np.generic):
            return {"value": value.item(), "numpy": value.dtype.str}
        if value is None or isinstance(value, (bool, int, float, str)):
            return {"value": value}
        if isinstance(value, Path):
            return {"value": str(value)}
        if isinstance(value, (list, tuple)):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {kind: [self.encode(v, f"{name}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"dict": {k: self.encode(v, f"{name}.{k}") for k, v in value.items()}}
            return {"pairs": [[self.encode(k, f"{name}.key{i}"), self.encode(v, f"{name}.{i}")]
                              for i, (k, v) in enumerate(value.items())]}
        raise InputError(f"cannot save {name}: values of type {type(value).__name__} are not "
                         "supported by the estimator file format")

    def _encode_array(self, array: np.ndarray, name: str):
        if array.dtype.kind in "US" or (array.dtype.kind == "O" and
                                        all(isinstance(v, str) for v in array.ravel())):
            dtype = "object" if array.dtype.kind == "O" else array.dtype.str
            return {"strings": array.tolist(), "dtype": dtype, "shape": list(array.shape)}
        if array.dtype.kind not in "biufc":
            raise InputError(f"cannot save {name}: arrays of dtype {array.dtype} are not supported "
                             "by the estimator file format")
        if name in self.arrays:
            raise InputError(f"cannot save {name}: two values flatten to the same name")
        self.arrays[name] = torch.from_numpy(np.array(array, copy=True, order="C"))
        return {"array": name}

    def decode(self, spec):
        if not isinstance(spec, dict) or len(spec) == 0:
            raise ValueError(f"bad value spec {spec!r}")
        if "array" in spec:
            return self.arrays[spec["array"]].numpy().copy()
        if "strings" in spec:
            dtype = object if spec["dtype"] == "object" else np.dtype(spec["dtype"])
            return np.array(spec["strings"], dtype=dtype).reshape(spec["shape"])
        if "value" in spec:
            value = spec["value"]
            return np.dtype(spec["numpy"]).type(value) if "numpy" in spec else value
        if "list" in spec:
            return [self.decode(v) for v in spec["list"]]
        if "tuple" in spec:
            return tuple(self.decode(v) for v in spec["tuple"])
        if "dict" in spec:
            return {k: self.decode(v) for k, v in spec["dict"].items()}
        if "pairs" in spec:
            return {self.decode(k): self.decode(v) for k, v in spec["pairs"]}
        if "kdtree" in spec:
            from scipy.spatial import cKDTree

            return cKDTree(self.decode(spec["kdtree"]), leafsize=int(spec["leafsize"]))
        raise ValueError(f"bad value spec with keys {sorted(spec)}")


def _json_default(value):
    if isinstance(value, (np.generic, Path)):
        return _plain(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_estimator(estimator, path, name: str | None = None,
                   provenance: dict | None = None) -> Path:
    """Write a fitted estimator of :data:`NUMPY_ESTIMATORS` to one file, atomically.

    Parameters
    ----------
    estimator : fitted estimator
        Its class must be in :data:`NUMPY_ESTIMATORS`.
    path : path-like
    name : str, optional
        Registry name of the model (e.g. ``"donor-kriging"``), kept in the file.
    provenance : dict, optional
        JSON-compatible description of the training data (default: the estimator's
        ``provenance_`` when it has one).

    Returns
    -------
    Path
    """
    from sklearn.utils.validation import check_is_fitted

    cls = type(estimator)
    if not is_numpy_estimator(estimator):
        raise InputError(f"cannot save a {cls.__name__} as an estimator file; known classes: "
                         f"{', '.join(NUMPY_ESTIMATORS)}")
    check_is_fitted(estimator)
    flat = _Flattener()
    attributes = {key: value for key, value in vars(estimator).items()
                  if key.endswith("_") and not key.startswith("_")
                  and key not in _UNSAVED_ATTRIBUTES}
    if provenance is None:
        provenance = getattr(estimator, "provenance_", None) or {}
    metadata = {
        "format": ESTIMATOR_FORMAT,
        "format_version": ESTIMATOR_FORMAT_VERSION,
        "brainexpr_version": __version__,
        "class": cls.__name__,
        "model": name,
        "params": flat.encode(estimator.get_params(deep=False), "params"),
        "attributes": {key: flat.encode(value, key) for key, value in attributes.items()},
        "provenance": provenance,
    }
    payload = {"format": ESTIMATOR_FORMAT, "format_version": ESTIMATOR_FORMAT_VERSION,
               "metadata": json.dumps(metadata, default=_json_default),
               "arrays": flat.arrays}
    payload["checksum"] = payload_checksum(payload)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    logger.debug("estimator %s written: %s", cls.__name__, path)
    return path


def load_estimator(path):
    """Load an estimator written by :func:`save_estimator` (no unpickling of objects).

    Raises
    ------
    InputError
        When the file is missing or corrupt, or names a class outside
        :data:`NUMPY_ESTIMATORS`.
    """
    payload = _read_file(path)
    if payload.get("format") != ESTIMATOR_FORMAT:
        raise InputError(f"{path} is not a saved brainexpr estimator")
    if payload.get("format_version") != ESTIMATOR_FORMAT_VERSION:
        raise InputError(f"{path} has estimator format {payload.get('format_version')}, this "
                         f"brainexpr reads format {ESTIMATOR_FORMAT_VERSION}")
    try:
        metadata = json.loads(payload["metadata"])
        class_name = metadata["class"]
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path} is a corrupt estimator file (unreadable metadata)") from None
    if class_name not in NUMPY_ESTIMATORS:
        raise InputError(f"{path} names estimator class {class_name!r}, which brainexpr does not "
                         f"load (known: {', '.join(NUMPY_ESTIMATORS)})")
    cls = numpy_estimator_class(class_name)
    flat = _Flattener(payload.get("arrays") or {})
    try:
        estimator = cls(**flat.decode(metadata["params"]))
        for key, spec in metadata["attributes"].items():
            if not (key.endswith("_") and not key.startswith("_")):
                raise ValueError(f"attribute name {key!r}")
            setattr(estimator, key, flat.decode(spec))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path} is a corrupt {class_name} file ({type(exc).__name__}: "
                         f"{exc})") from None
    estimator.provenance_ = metadata.get("provenance") or {}
    estimator.checkpoint_metadata_ = {"brainexpr_version": metadata.get("brainexpr_version"),
                                      "model": metadata.get("model"),
                                      "provenance": estimator.provenance_}
    return estimator


def save_model(estimator, path, name: str | None = None, provenance: dict | None = None) -> Path:
    """Write any fitted model the workflows use: an INR checkpoint or an estimator file.

    Parameters
    ----------
    estimator : INRRegressor or an estimator of :data:`NUMPY_ESTIMATORS`
    path : path-like
    name : str, optional
        Registry name (estimator files only; an INR's name is its design).
    provenance : dict, optional
        Estimator files only (an INR saves its ``provenance_``).
    """
    if estimator.capabilities.network:
        return estimator.save(path)
    return save_estimator(estimator, path, name=name, provenance=provenance)
