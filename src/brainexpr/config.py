"""Where brainexpr finds its reference data.

The data directory is resolved in this order:

1. an explicit argument (``data_dir=...`` in Python, ``--data-dir`` on the command line);
2. the environment variable ``BRAINEXPR_DATA``;
3. ``../shared/data`` next to the repository checkout, when it exists;
4. ``~/brainexpr-data``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_VAR = "BRAINEXPR_DATA"
HOME_DEFAULT = Path("~/brainexpr-data")


def repository_root() -> Path:
    """Return the folder that holds this checkout (``src/brainexpr`` -> repo root)."""
    return Path(__file__).resolve().parents[2]


def candidate_data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """List the data directories in the order they are tried.

    Parameters
    ----------
    data_dir : path-like, optional
        Explicit directory. When given it is the only candidate.

    Returns
    -------
    list of Path
    """
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    candidates = []
    env = os.environ.get(ENV_VAR)
    if env:
        candidates.append(Path(env).expanduser())
    for base in (repository_root(), Path.cwd()):
        shared = base.parent / "shared" / "data"
        if shared not in candidates:
            candidates.append(shared)
    candidates.append(HOME_DEFAULT.expanduser())
    return candidates


def get_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Resolve the reference-data directory.

    Parameters
    ----------
    data_dir : path-like, optional
        Explicit directory; returned as is (it need not exist yet, e.g. for ``fetch``).

    Returns
    -------
    Path
        The first candidate that exists, or the last candidate (``~/brainexpr-data``)
        when none exists.
    """
    candidates = candidate_data_dirs(data_dir)
    if data_dir is not None:
        return candidates[0]
    if os.environ.get(ENV_VAR):
        return candidates[0]
    for path in candidates:
        if path.is_dir():
            logger.debug("data directory: %s", path)
            return path
    return candidates[-1]
