"""The registry of reference datasets: files, SHA-256 checksums, sources, licences, citations.

The registry itself is the JSON file beside this module (one entry per dataset, one
checksum per file, paths relative to the data directory). It mirrors
``shared/data/MANIFEST.md`` of the development set-up.
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
    pypi : str or None
        ``package==version`` when the files ship inside a PyPI wheel.
    """

    name: str
    description: str
    files: dict = field(default_factory=dict)
    source: str = ""
    url: str = ""
    licence: str = ""
    citation: str = ""
    pypi: str | None = None


@lru_cache(maxsize=1)
def _load_registry() -> dict[str, Dataset]:
    text = resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")
    return {entry["name"]: Dataset(**entry) for entry in json.loads(text)}


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
