"""Small shared helpers: progress bars, random states, atomic output writing, JSON values."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

_PROGRESS_ENABLED = None  # None: decide from the terminal


def _default_mode() -> int:
    """File mode of an ordinary new file under the current umask (mkstemp uses 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def set_progress(enabled: bool | None) -> None:
    """Force progress bars on (True), off (False) or automatic (None: only on a terminal)."""
    global _PROGRESS_ENABLED
    _PROGRESS_ENABLED = enabled


def progress(iterable=None, **kwargs):
    """Wrap ``iterable`` in a tqdm progress bar that writes to stderr.

    Bars are shown only on an interactive terminal unless :func:`set_progress` forced
    them, so logs and CI output stay clean.
    """
    disable = (not sys.stderr.isatty()) if _PROGRESS_ENABLED is None else (not _PROGRESS_ENABLED)
    kwargs.setdefault("disable", disable)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def jsonable(value):
    """``value`` with numpy scalars turned into Python ones, tuples into lists, dict keys into
    strings and non-finite floats into None (valid JSON), recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def check_random_state(seed) -> np.random.Generator:
    """Turn ``None``, an int or a Generator into a :class:`numpy.random.Generator`."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs):
    """Open a temporary file beside ``path`` and move it into place only on success.

    A failure inside the ``with`` block leaves no file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    For writers that want a file name (``nibabel.save``, ``DataFrame.to_csv``, ``savefig``).
    The temporary name keeps the real suffixes so that writers pick the right format.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.part-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike, overwrite: bool = True, commit=None):
    """Build an output folder in a temporary sibling and move it into place on success.

    On any error the staging folder is removed and ``path`` is left as it was, so a
    failed command leaves no half-written outputs.

    Parameters
    ----------
    path : path-like
        Final folder.
    overwrite : bool
        Replace an existing folder at ``path`` once the new one is complete.
    commit : callable, optional
        ``commit(stage)`` puts the finished staging folder in place instead (used by
        :func:`brainexpr.outputs.output_folder`, which replaces only brainexpr's own files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging-", dir=path.parent))
    os.chmod(stage, 0o777 & ~(0o666 & ~_default_mode()))  # rwx where files get rw
    try:
        yield stage
        if commit is not None:
            commit(stage)
            if stage.exists():  # its entries were moved into an existing folder
                shutil.rmtree(stage, ignore_errors=True)
        elif path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, backup)
            os.replace(stage, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(stage, path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
