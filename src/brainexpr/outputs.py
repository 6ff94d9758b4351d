"""One output policy for every command: never delete or overwrite what brainexpr did not write.

Every command that writes a folder goes through :func:`output_folder`; every command that
writes single files checks them first with :func:`check_output_file`. The rules:

* A folder that does not exist, or is empty, is written.
* A folder whose every entry was written by the *same* command (its earlier output) is
  updated: the command's old entries are replaced by the new ones.
* Any other non-empty folder (the user's own files, or another command's output) is
  refused with one line suggesting ``--overwrite``. With ``overwrite=True`` brainexpr
  writes into it but replaces only entries that brainexpr wrote (recorded in the folder's
  manifest, :data:`MANIFEST`); an entry of the same name that brainexpr did not write is
  an error, and everything else in the folder is left alone.
* A file where a folder is expected, a folder below a file, a folder where a file is
  expected or a folder that cannot be written is an error, found before any long work.

Outputs are built in a staging folder beside the target and moved into place only when
complete, so a failed command leaves the folder as it was. While a command builds a
folder it holds a lock on it (:func:`folder_lock`): a second process writing the same
folder gets one line naming the process that holds it; the lock of a process that died
(even by ``kill -9``) is taken over, and the staging folders it left are removed.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from ._version import __version__
from .errors import OutputError, OutputLockedError
from .utils import atomic_write, staged_directory

logger = logging.getLogger(__name__)

#: File in each output folder listing the entries brainexpr wrote there (name -> command).
MANIFEST = ".brainexpr-manifest.json"
#: Entries that never count as the user's files (brainexpr's own bookkeeping).
_BOOKKEEPING = (MANIFEST,)


# --------------------------------------------------------------------------- manifest
def read_manifest(folder) -> dict[str, str]:
    """Entries of ``folder`` that brainexpr wrote, as ``{name: command}`` (empty if none)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("entries", {})
    except (OSError, ValueError, AttributeError):
        logger.warning("unreadable manifest %s: treating every file there as the user's", path)
        return {}
    return {str(k): str(v) for k, v in entries.items()} if isinstance(entries, dict) else {}


def _write_manifest(folder: Path, entries: dict[str, str]) -> None:
    with atomic_write(folder / MANIFEST, encoding="utf-8") as handle:
        json.dump({"written_by": f"brainexpr {__version__}",
                   "entries": dict(sorted(entries.items()))}, handle, indent=1)


def record_outputs(folder, names, command: str) -> None:
    """Add ``names`` (entries of ``folder``) to its manifest as written by ``command``."""
    folder = Path(folder)
    entries = read_manifest(folder)
    entries.update({str(name): command for name in names})
    _write_manifest(folder, entries)


def _user_entries(folder: Path, manifest: dict[str, str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in manifest and p.name not in _BOOKKEEPING
                  and not _is_leftover(p.name))


#: Names of brainexpr's own temporary files and folders (staging folders, partial files
#: of :func:`~brainexpr.utils.atomic_write` / ``atomic_path``, write probes, locks).
_LEFTOVER = re.compile(r"^\..+\.staging-[A-Za-z0-9_]{8}(\.old)?$|^\..+\.old-\d+$"
                       r"|^\..+\.part-[A-Za-z0-9_]{8}(\..+)?$|^\..+\.[A-Za-z0-9_]{8}\.part$"
                       r"|^\.brainexpr-write-test-[A-Za-z0-9_]{8}$")


def _is_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary entry of brainexpr's writers, or a lock file."""
    return bool(_LEFTOVER.match(name)) or (name.startswith(".") and name.endswith(".lock"))


# --------------------------------------------------------------------------- checks
def _check_parents(path: Path, what: str) -> None:
    """The first existing ancestor of ``path`` must be a writable folder."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {path} lies below {parent}, which is a file, not a "
                                  "folder; choose another path")
            _probe_writable(parent, f"cannot write {what} {path}: folder {parent}")
            return


def _probe_writable(folder: Path, what: str) -> None:
    """Create and remove a file in ``folder`` (``os.access`` says yes to root even where
    writing fails)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".brainexpr-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} is not writable ({exc.strerror}); choose another path") \
            from None


def check_output_folder(path, command: str, overwrite: bool = False) -> Path:
    """Check that ``command`` may write the folder ``path`` (see the module docstring).

    Call it before any long work; :func:`output_folder` checks again when it writes.

    Parameters
    ----------
    path : path-like
        Output folder.
    command : str
        Name of the subcommand (``"predict"``), recorded in the manifest.
    overwrite : bool
        Allow a folder holding other files: only brainexpr's own entries are replaced.

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        One line naming the path, what is in the way and what to do.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} is an existing file, not a folder; choose "
                          "another path (brainexpr never replaces a file by a folder)")
    _check_parents(path, "output folder")
    if not path.exists():
        return path
    _probe_writable(path, f"output folder {path}")
    manifest = read_manifest(path)
    user = _user_entries(path, manifest)
    others = sorted({c for c in manifest.values() if c != command})
    if overwrite or (not user and not others):
        return path
    if user:
        shown = ", ".join(user[:3]) + (" ..." if len(user) > 3 else "")
        raise OutputError(f"output folder {path} holds {len(user)} file(s) brainexpr did not "
                          f"write ({shown}); choose a new or empty folder, or pass --overwrite "
                          "to write there (only brainexpr's own files are replaced)")
    raise OutputError(f"output folder {path} holds the output of 'brainexpr "
                      f"{', '.join(others)}'; choose another folder, or pass --overwrite to "
                      "write there (only brainexpr's own files are replaced)")


def check_output_file(path, recognise=None) -> Path:
    """Check that a single output file can be written, before any long work.

    An existing file is replaced only when brainexpr wrote it: when the manifest of its
    folder lists it (:func:`record_output_file`) or ``recognise(path)`` says so (e.g. a
    model file, which identifies itself).

    Parameters
    ----------
    path : path-like
        Output file.
    recognise : callable, optional
        ``recognise(path) -> bool`` for an existing file that the manifest does not list.

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        When ``path`` is a folder, lies below a file, its folder is not writable, or it is
        a file brainexpr did not write.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"output file {path} is an existing folder; give a file name")
    _check_parents(path, "output file")
    if path.exists() or path.is_symlink():
        ours = path.name in read_manifest(path.parent) or (recognise is not None
                                                            and recognise(path))
        if not ours:
            raise OutputError(f"{path} exists and brainexpr did not write it; choose another "
                              "name or move it away (brainexpr never replaces other files)")
    return path


def record_output_file(path, command: str) -> None:
    """Note in the manifest of its folder that ``command`` wrote the file ``path``."""
    path = Path(path)
    record_outputs(path.parent, [path.name], command)


# --------------------------------------------------------------------------- lock
#: Folders whose lock this process holds (resolved path -> depth), so that nesting is free.
_HELD: dict[str, int] = {}


def _lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        return f"PID {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def remove_leftovers(folder) -> list[Path]:
    """Remove the staging folders and partial files that killed writers left for ``folder``.

    Only call while holding :func:`folder_lock` on ``folder``: then nobody else can be
    writing them. Looks beside ``folder`` (``.NAME.staging-*``, ``.NAME.old-*``) and inside
    it (step folders of ``brainexpr run``, partial files).

    Returns
    -------
    list of Path
        What was removed.
    """
    folder = Path(folder)
    found = [p for p in folder.parent.glob(f".{glob.escape(folder.name)}.*")
             if _LEFTOVER.match(p.name) and (".staging-" in p.name or ".old-" in p.name)]
    if folder.is_dir() and (folder / MANIFEST).is_file():  # only inside brainexpr's folders
        found += [p for p in folder.iterdir() if _is_leftover(p.name)]  # nobody else writes here
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if found:
        logger.info("removed %d leftover(s) of an interrupted run: %s", len(found),
                    ", ".join(p.name for p in found[:5]))
    return found


@contextlib.contextmanager
def folder_lock(folder):
    """Hold an exclusive lock on the output folder ``folder`` (the folder may not exist yet).

    The lock is a file ``.NAME.lock`` beside the folder, locked with ``flock`` so that the
    operating system releases it when its process dies; it records the holder's PID. On
    entry, leftovers of dead writers are removed (:func:`remove_leftovers`).

    Raises
    ------
    OutputLockedError
        When another live process holds the lock (one line naming its PID).
    """
    import fcntl

    folder = Path(folder).expanduser()
    key = str(folder.resolve())
    if key in _HELD:  # this process holds it already (a command calling another workflow)
        _HELD[key] += 1
        try:
            yield _lock_path(folder)
        finally:
            _HELD[key] -= 1
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(folder)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise OutputLockedError(f"output folder {folder} is being written by {_holder(lock)}; "
                                    "wait for it to finish or choose another folder") from None
        try:  # the file may have been removed by the holder that just released it
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        previous = _holder(lock)
        if previous != "another process":
            logger.info("taking over the lock of %s (no longer running)", previous)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        remove_leftovers(folder)
        _HELD[key] = 1
        yield lock
    finally:
        _HELD.pop(key, None)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


# --------------------------------------------------------------------------- writing
def _commit(stage: Path, path: Path, command: str, overwrite: bool) -> None:
    """Move the entries of ``stage`` into ``path`` by the rules of the module docstring."""
    new = sorted(p.name for p in stage.iterdir() if p.name != MANIFEST)
    if not path.exists():
        _write_manifest(stage, {name: command for name in new})
        os.replace(stage, path)
        return
    check_output_folder(path, command, overwrite)  # again: the folder may have changed
    manifest = read_manifest(path)
    clashes = [n for n in new if (path / n).exists() or (path / n).is_symlink()]
    foreign = [n for n in clashes if n not in manifest]
    if foreign:
        raise OutputError(f"output folder {path} already holds {', '.join(foreign[:3])}, which "
                          "brainexpr did not write; move it away or choose another folder")
    stale = [n for n, c in manifest.items() if c == command and n not in new]
    trash = stage.with_name(stage.name + ".old")
    trash.mkdir()
    try:
        for name in clashes + stale:
            if (path / name).exists() or (path / name).is_symlink():
                os.replace(path / name, trash / name)
        for name in new:
            os.replace(stage / name, path / name)
        entries = {n: c for n, c in manifest.items() if n not in stale}
        entries.update({name: command for name in new})
        _write_manifest(path, entries)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def output_folder(path, command: str, overwrite: bool = False):
    """Build the output folder of ``command`` in a staging folder; put it in place on success.

    Parameters
    ----------
    path : path-like
        Final folder (checked by :func:`check_output_folder`).
    command : str
        Subcommand name, recorded in the folder's manifest.
    overwrite : bool
        Write into a folder holding other files (only brainexpr's entries are replaced).

    Yields
    ------
    Path
        The staging folder to write into. On any error it is removed and ``path`` is left
        as it was.
    """
    path = check_output_folder(path, command, overwrite).resolve()  # "." has a name then
    with folder_lock(path):
        with staged_directory(path, commit=lambda stage: _commit(stage, path, command,
                                                                 overwrite)) as stage:
            yield stage


@contextlib.contextmanager
def claimed_folder(path, command: str, entries, overwrite: bool = False):
    """Hold a folder that a long command fills entry by entry, in place (``brainexpr run``).

    Checks ``path`` (:func:`check_output_folder`), locks it (:func:`folder_lock`, which
    also removes leftovers of killed runs) and records ``entries`` as the command's in the
    manifest, so that a later call of the same command resumes in it.

    Parameters
    ----------
    path : path-like
    command : str
    entries : sequence of str
        Every top-level name the command may write into the folder.
    overwrite : bool
        As :func:`check_output_folder`; an entry of the same name that brainexpr did not
        write is an error either way.

    Yields
    ------
    Path
    """
    path = check_output_folder(path, command, overwrite)
    with folder_lock(path.resolve()):
        manifest = read_manifest(path) if path.is_dir() else {}
        foreign = [n for n in entries if (path / n).exists() and n not in manifest]
        if foreign:
            raise OutputError(f"output folder {path} already holds {', '.join(foreign[:3])}, "
                              "which brainexpr did not write; move it away or choose another "
                              "folder")
        path.mkdir(parents=True, exist_ok=True)
        record_outputs(path, entries, command)
        yield path
