"""The model file: one container format for every fitted model brainexpr saves.

This module knows the file format, not the models. Each estimator saves and restores its
own state (the protocol of :mod:`brainexpr.models.base`: ``_state()`` and the classmethod
``_from_state(params, state)``); the container writes that state with the constructor
parameters, a header and SHA-256 checksums, and hands it back on load to a class that the
caller chooses (:func:`brainexpr.models.registry.load_model` looks it up by the registered
model name; :meth:`INRRegressor.load` and :meth:`GraphVAERegressor.load` pass their own).
It imports no estimator class.

Layout (``format = "brainexpr-model"``, :data:`FORMAT_VERSION` 1)
-----------------------------------------------------------------

The file is written with :func:`torch.save` and read with ``torch.load(weights_only=True)``,
so loading never unpickles arbitrary objects. Its content is a dict of plain types:

``format``, ``format_version``
    ``"brainexpr-model"`` and the layout version.
``header``
    A JSON string: ``class`` (the estimator class name), ``model`` (its registry name, or
    ``None``), ``brainexpr_version``, ``torch_version``, ``params`` and ``state`` (value
    specs, below) and free-form JSON ``provenance``.
``arrays``
    Named tensors: every numpy array and torch tensor of ``params`` and ``state``.
``checksum``
    SHA-256 of everything else in the file (every tensor's name, dtype, shape and bytes,
    and every plain value), written by :func:`payload_checksum` and verified on load, so
    that damaged weight bytes are an error instead of an all-NaN map.

A *value spec* keeps nested values with their types: ``{"array": name}`` (numpy array
in ``arrays``), ``{"tensor": name}`` (torch tensor), ``{"strings": [...], "dtype", "shape"}``
(string arrays), ``{"value": v}`` (``None``, bool, int, float, str; ``"numpy"`` adds a
numpy scalar type), ``{"values": [...], "kind": "list"|"tuple"}`` (a list of plain
values), ``{"list": [spec...]}``, ``{"tuple": [...]}``, ``{"dict": {key: spec}}`` (string
keys) and ``{"pairs": [[spec, spec]...]}`` (other keys).

Earlier layouts
---------------

Files written by brainexpr before this container still load (:func:`read_model_file`
turns them into the same parameters and state):

* ``"brainexpr-estimator"`` 1: the pure-numpy estimators (nearest, kNN, kriging, donor
  and parcel kriging). Its ``metadata`` JSON holds ``class``, ``model``, ``params`` and
  ``attributes`` (the state) as value specs; a KD-tree was stored as its points
  (``{"kdtree": spec, "leafsize"}``), read back as the points array.
* ``"brainexpr-inr"`` 1: INR checkpoints. The ``metadata`` JSON holds ``params``,
  ``provenance``, the versions and the INR's state as plain values; ``members``,
  ``reference`` and ``training`` are tensors beside it. The state is those values and
  tensors under the same names (the INR's state still uses them).
* ``"brainexpr.GraphVAERegressor/1"``: the graph VAE (no checksum): ``params`` and the
  rest of the dict, which is the VAE's state under the same names.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..errors import InputError
from ..utils import atomic_path

logger = logging.getLogger(__name__)

FORMAT = "brainexpr-model"
FORMAT_VERSION = 1

#: Layouts of earlier brainexpr versions that :func:`read_model_file` still reads:
#: format -> the version it reads (key of the version number in the file).
LEGACY_FORMATS = {"brainexpr-estimator": ("format_version", 1),
                  "brainexpr-inr": ("format_version", 1),
                  "brainexpr.GraphVAERegressor/1": ("version", None)}

#: Fitted attributes that are never part of a saved state: what the container itself
#: sets on load (provenance goes in the header).
UNSAVED_ATTRIBUTES = ("provenance_", "checkpoint_metadata_")


@dataclass
class ModelFile:
    """What a model file holds, whatever its layout.

    Attributes
    ----------
    path : Path
    class_name : str
        Name of the estimator class that wrote it.
    model : str or None
        Registry name of the model, when the file records one.
    params : dict
        Constructor parameters.
    state : dict
        The estimator's ``_state()``.
    provenance : dict
        Free-form JSON description of the training data.
    versions : dict
        ``brainexpr_version`` and ``torch_version`` of the writer (``None`` when unknown).
    layout : str
        ``format`` of the file (:data:`FORMAT` or one of :data:`LEGACY_FORMATS`).
    """

    path: Path
    class_name: str
    model: str | None
    params: dict
    state: dict
    provenance: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    layout: str = FORMAT


def plain(value):
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


def plain_params(estimator) -> dict:
    """``estimator.get_params()`` as JSON-compatible values (see :func:`plain`)."""
    return {key: plain(value) for key, value in estimator.get_params().items()}


def fitted_attributes(estimator) -> dict:
    """The public fitted attributes of ``estimator`` (names ending in ``_``), except
    :data:`UNSAVED_ATTRIBUTES`: the default state of an estimator."""
    return {key: value for key, value in vars(estimator).items()
            if key.endswith("_") and not key.startswith("_") and key not in UNSAVED_ATTRIBUTES}


def reason(exc: Exception) -> str:
    """``Type: message`` on one line, at most 200 characters."""
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- value specs
_PLAIN_TYPES = (bool, int, float, str, type(None))


class _Flattener:
    """Encode nested values as a JSON spec plus a dict of named tensors (and back)."""

    def __init__(self, arrays: dict | None = None):
        self.arrays = {} if arrays is None else arrays

    def encode(self, value, name: str):
        if torch.is_tensor(value):
            return {"tensor": self._store(value.detach().cpu().clone(), name)}
        if isinstance(value, np.ndarray):
            return self._encode_array(value, name)
        if isinstance(value, np.generic):
            return {"value": value.item(), "numpy": value.dtype.str}
        if isinstance(value, _PLAIN_TYPES):
            return {"value": value}
        if isinstance(value, Path):
            return {"value": str(value)}
        if isinstance(value, (list, tuple)):
            kind = "tuple" if isinstance(value, tuple) else "list"
            if all(type(v) in _PLAIN_TYPES for v in value):
                return {"values": list(value), "kind": kind}
            return {kind: [self.encode(v, f"{name}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"dict": {k: self.encode(v, f"{name}.{k}") for k, v in value.items()}}
            return {"pairs": [[self.encode(k, f"{name}.key{i}"), self.encode(v, f"{name}.{i}")]
                              for i, (k, v) in enumerate(value.items())]}
        raise InputError(f"cannot save {name}: values of type {type(value).__name__} are not "
                         "supported by the model file format")

    def _store(self, tensor: torch.Tensor, name: str) -> str:
        if name in self.arrays:
            raise InputError(f"cannot save {name}: two values flatten to the same name")
        self.arrays[name] = tensor
        return name

    def _encode_array(self, array: np.ndarray, name: str):
        if array.dtype.kind in "US" or (array.dtype.kind == "O" and
                                        all(isinstance(v, str) for v in array.ravel())):
            dtype = "object" if array.dtype.kind == "O" else array.dtype.str
            return {"strings": array.tolist(), "dtype": dtype, "shape": list(array.shape)}
        if array.dtype.kind not in "biufc":
            raise InputError(f"cannot save {name}: arrays of dtype {array.dtype} are not supported "
                             "by the model file format")
        return {"array": self._store(torch.from_numpy(np.array(array, copy=True, order="C")),
                                     name)}

    def decode(self, spec):
        if not isinstance(spec, dict) or len(spec) == 0:
            raise ValueError(f"bad value spec {spec!r}")
        if "array" in spec:
            return self.arrays[spec["array"]].numpy().copy()
        if "tensor" in spec:
            return self.arrays[spec["tensor"]].clone()
        if "strings" in spec:
            dtype = object if spec["dtype"] == "object" else np.dtype(spec["dtype"])
            return np.array(spec["strings"], dtype=dtype).reshape(spec["shape"])
        if "value" in spec:
            value = spec["value"]
            return np.dtype(spec["numpy"]).type(value) if "numpy" in spec else value
        if "values" in spec:
            return tuple(spec["values"]) if spec["kind"] == "tuple" else list(spec["values"])
        if "list" in spec:
            return [self.decode(v) for v in spec["list"]]
        if "tuple" in spec:
            return tuple(self.decode(v) for v in spec["tuple"])
        if "dict" in spec:
            return {k: self.decode(v) for k, v in spec["dict"].items()}
        if "pairs" in spec:
            return {self.decode(k): self.decode(v) for k, v in spec["pairs"]}
        if "kdtree" in spec:  # brainexpr-estimator 1 stored a KD-tree as its points
            return self.decode(spec["kdtree"])
        raise ValueError(f"bad value spec with keys {sorted(spec)}")


def _json_default(value):
    if isinstance(value, (np.generic, Path)):
        return plain(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# --------------------------------------------------------------------------- writing
def write_model_file(path, class_name: str, params: dict, state: dict, model: str | None = None,
                     provenance: dict | None = None) -> Path:
    """Write one model file (the layout of the module docstring), atomically.

    Parameters
    ----------
    path : path-like
    class_name : str
        Name of the estimator class (checked against the class that loads the file).
    params : dict
        Constructor parameters (``get_params(deep=False)``, JSON-compatible: see
        :func:`plain`).
    state : dict
        The estimator's state: numpy arrays, torch tensors, plain values and nested
        lists, tuples and dicts of them.
    model : str, optional
        Registry name of the model.
    provenance : dict, optional
        JSON-compatible description of the training data.

    Returns
    -------
    Path
    """
    flat = _Flattener()
    header = {"class": class_name, "model": model, "brainexpr_version": __version__,
              "torch_version": torch.__version__, "params": flat.encode(params, "params"),
              "state": flat.encode(state, "state"), "provenance": provenance or {}}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "header": json.dumps(header, default=_json_default), "arrays": flat.arrays}
    payload["checksum"] = payload_checksum(payload)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    logger.debug("%s written: %s", class_name, path)
    return path


def save_state(estimator, path, model: str | None = None, provenance: dict | None = None,
               state: dict | None = None) -> Path:
    """Write a fitted estimator through its state protocol (``_state()``).

    Parameters
    ----------
    estimator : estimator with ``get_params`` and ``_state``
    path : path-like
    model : str, optional
        Registry name of the model, kept in the file.
    provenance : dict, optional
        Default: the estimator's ``provenance_`` when it has one.
    state : dict, optional
        The state to write instead of ``estimator._state()`` (e.g. an INR's state with
        the progress of an unfinished fit).

    Returns
    -------
    Path
    """
    if provenance is None:
        provenance = getattr(estimator, "provenance_", None) or {}
    params = {key: plain(value) for key, value in estimator.get_params(deep=False).items()}
    return write_model_file(path, type(estimator).__name__, params,
                            estimator._state() if state is None else state, model=model,
                            provenance=provenance)


# --------------------------------------------------------------------------- reading
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
    if not isinstance(payload, dict) or (payload.get("format") != FORMAT
                                         and payload.get("format") not in LEGACY_FORMATS):
        raise InputError(f"{path} is not a brainexpr model file (neither an INR nor a saved "
                         "estimator)")
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
        What :func:`write_model_file` writes (or an earlier layout).

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
    """Whether ``path`` is a brainexpr model file (any layout; damaged ones count too).

    Used by the output policy (:mod:`brainexpr.outputs`): ``brainexpr fit`` replaces an
    earlier model file but never a file it did not write.
    """
    try:
        _read_file(path, warn=False)
    except InputError as exc:
        return "is damaged" in str(exc)
    return True


def read_model_file(path) -> ModelFile:
    """Read any model file safely (the current layout or an earlier one).

    Raises
    ------
    InputError
        When the file is missing, is no brainexpr model file, has a layout version this
        brainexpr does not read, or is corrupt.
    """
    payload = _read_file(path)
    layout = payload["format"]
    key, version = (("format_version", FORMAT_VERSION) if layout == FORMAT
                    else LEGACY_FORMATS[layout])
    if version is not None and payload.get(key) != version:
        raise InputError(f"{path} has {layout} format {payload.get(key)}, this brainexpr reads "
                         f"format {version}")
    reader = {FORMAT: _read_current, "brainexpr-estimator": _read_estimator_v1,
              "brainexpr-inr": _read_inr_v1,
              "brainexpr.GraphVAERegressor/1": _read_vae_v1}[layout]
    try:
        model_file = reader(payload)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(f"{path} is a corrupt brainexpr model file ({reason(exc)}); refit "
                         "the model") from None
    model_file.path, model_file.layout = Path(path), layout
    return model_file


def _read_current(payload: dict) -> ModelFile:
    header = json.loads(payload["header"])
    flat = _Flattener(payload["arrays"])
    return ModelFile(None, str(header["class"]), header["model"], flat.decode(header["params"]),
                     flat.decode(header["state"]), header.get("provenance") or {},
                     {k: header.get(k) for k in ("brainexpr_version", "torch_version")})


def _read_estimator_v1(payload: dict) -> ModelFile:
    metadata = json.loads(payload["metadata"])
    flat = _Flattener(payload.get("arrays") or {})
    return ModelFile(None, str(metadata["class"]), metadata.get("model"),
                     flat.decode(metadata["params"]), flat.decode({"dict": metadata["attributes"]}),
                     metadata.get("provenance") or {},
                     {"brainexpr_version": metadata.get("brainexpr_version"),
                      "torch_version": None})


#: Entries of a ``brainexpr-inr`` 1 metadata dict that are no part of the INR's state.
_INR_V1_HEADER = ("format", "format_version", "brainexpr_version", "torch_version", "params",
                  "provenance")


def _read_inr_v1(payload: dict) -> ModelFile:
    metadata = json.loads(payload["metadata"])
    state = {k: v for k, v in metadata.items() if k not in _INR_V1_HEADER}
    state.update(members=payload["members"], reference=payload.get("reference"),
                 training=payload.get("training"))
    return ModelFile(None, "INRRegressor", metadata["params"].get("design"),
                     dict(metadata["params"]), state, metadata.get("provenance") or {},
                     {k: metadata.get(k) for k in ("brainexpr_version", "torch_version")})


def _read_vae_v1(payload: dict) -> ModelFile:
    state = {k: v for k, v in payload.items() if k not in ("format", "version", "params")}
    return ModelFile(None, "GraphVAERegressor", None, dict(payload["params"]), state, {},
                     {"brainexpr_version": payload.get("version"), "torch_version": None})


def restore(model_file: ModelFile, cls, device: str | None = None):
    """Build a fitted estimator of class ``cls`` from a model file (its ``_from_state``).

    Parameters
    ----------
    model_file : ModelFile
        From :func:`read_model_file`.
    cls : type
        The class to build; it must be the class that wrote the file.
    device : str, optional
        Overrides a ``device`` parameter (``"auto"``, ``"cpu"``, ``"cuda"``) of models that
        have one; the others ignore it.

    Returns
    -------
    estimator
        With ``provenance_`` and ``checkpoint_metadata_`` (writer's versions, registry
        name, provenance) set.

    Raises
    ------
    InputError
        When the file was written by another class, or its state does not fit the class.
    """
    path = model_file.path
    if model_file.class_name != cls.__name__:
        raise InputError(f"{path} holds a {model_file.class_name}, not a {cls.__name__}")
    params = dict(model_file.params)
    if device is not None and "device" in params:
        params["device"] = device
    try:
        estimator = cls._from_state(params, model_file.state)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise InputError(f"{path} is an inconsistent brainexpr model file ({reason(exc)}); "
                         "refit the model") from None
    estimator.provenance_ = model_file.provenance
    estimator.checkpoint_metadata_ = dict(model_file.versions, model=model_file.model,
                                          provenance=model_file.provenance)
    return estimator
