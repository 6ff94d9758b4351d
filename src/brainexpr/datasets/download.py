"""Resumable, verified HTTP downloads (the only code of brainexpr that opens a URL).

:func:`download_file` writes to ``<dest>.part`` and renames it to ``dest`` only once the
transfer is complete and, when a SHA-256 is given, verified; a failed or rejected
transfer never leaves a file at ``dest``.

* **Resume**: a ``.part`` left by an interrupted transfer is continued with an HTTP
  ``Range`` request; a server that ignores it (status 200) restarts from zero.
* **Retry with backoff**: dropped connections, time-outs, HTTP 5xx and 429 are retried
  (``backoff * 2**attempt`` seconds, at most 30); other HTTP errors (404, 403) are final.
* **Checks**: size against the server's announced size, an HTML page served in place of
  a data file (a login or error page) is rejected, and the SHA-256 when given.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import BrainexprError
from ..utils import progress

logger = logging.getLogger(__name__)

USER_AGENT = "brainexpr (https://github.com/brainexpr)"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<?xml version")
_RETRY_STATUS = {429, 500, 502, 503, 504}


class DownloadError(BrainexprError):
    """A download failed, or what arrived is not the expected file."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def _total_size(response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def looks_like_html(first_block: bytes, content_type: str | None) -> bool:
    """Return True when a response is an HTML page (by its type or its first bytes)."""
    if content_type and content_type.split(";")[0].strip().lower() == "text/html":
        return True
    return first_block.lstrip()[:16].lower().startswith(_HTML_STARTS)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _transfer(url: str, part: Path, opener, chunk_size: int, timeout: float,
              label: str) -> int | None:
    """One attempt: append to (or restart) ``part``; return the announced total size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = opener(request, timeout=timeout)  # noqa: S310 (explicit fetch only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is longer than the file: start again
            part.unlink()
            raise DownloadError(f"{url}: range not satisfiable; restarting") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}",
                            retry=exc.code in _RETRY_STATUS) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):  # a file:// mirror without the file
            raise DownloadError(f"{url}: no such file", retry=False) from None
        raise
    with response:
        status = getattr(response, "status", None) or 200
        if offset and status != 206:
            logger.info("server ignored the resume request; restarting %s", label)
            offset = 0
        total = _total_size(response, offset)
        first = True
        with open(part, "ab" if offset else "wb") as handle, \
                progress(total=total, initial=offset, unit="B", unit_scale=True,
                         desc=label) as bar:
            while True:
                block = response.read(chunk_size)
                if not block:
                    break
                if first and not offset and looks_like_html(
                        block, response.headers.get("Content-Type")):
                    handle.close()
                    part.unlink()
                    raise DownloadError(f"{url} sent an HTML page instead of the file (a login, "
                                        f"licence or error page)", retry=False)
                first = False
                handle.write(block)
                bar.update(len(block))
    return total


def download_file(url: str, dest, *, sha256: str | None = None, opener=None,
                  chunk_size: int = 1 << 20, timeout: float = 60.0, retries: int = 5,
                  backoff: float = 1.0) -> Path:
    """Download ``url`` to ``dest``, resuming a partial download, and verify it.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` address.
    dest : path-like
        Final file; the data arrive in ``dest + ".part"``, renamed to ``dest`` only after
        the checks passed.
    sha256 : str, optional
        Expected SHA-256 (hex). On a mismatch the ``.part`` is deleted and nothing is
        written to ``dest``.
    opener : callable, optional
        ``opener(request, timeout=...)`` returning a response (default
        :func:`urllib.request.urlopen`).
    chunk_size : int
        Bytes per read.
    timeout : float
        Seconds per network operation.
    retries : int
        Further attempts after a transient failure (each resumes where the last stopped).
    backoff : float
        Seconds before the first retry; doubled for each further one (at most 30 s).

    Returns
    -------
    Path

    Raises
    ------
    DownloadError
        When the server keeps failing, answers with a final HTTP error or an HTML page,
        or the data differ from the announced size or the expected SHA-256.
    """
    opener = opener or urllib.request.urlopen
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            total = _transfer(url, part, opener, chunk_size, timeout, dest.name)
            size = part.stat().st_size
            if total is not None and size != total:
                raise DownloadError(f"{dest.name}: received {size} of {total} bytes")
            if sha256 is not None:
                actual = _sha256_of(part)
                if actual != sha256:
                    part.unlink()
                    raise DownloadError(f"{url}: checksum mismatch (expected sha256 "
                                        f"{sha256[:12]}..., got {actual[:12]}...); the source "
                                        f"holds a different version", retry=False)
            os.replace(part, dest)
            return dest
        except DownloadError as exc:
            if not exc.retry:
                raise
            last_error = exc
        except PermissionError as exc:
            raise DownloadError(f"cannot write {part} ({exc}); pass --data-dir with a writable "
                                f"folder", retry=False) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = exc
        if attempt < retries:
            delay = min(backoff * 2 ** attempt, 30.0)
            logger.warning("download of %s failed (%s); retry %d of %d in %.0f s", dest.name,
                           last_error, attempt + 1, retries, delay)
            time.sleep(delay)
    raise DownloadError(f"could not download {url} ({last_error}); run the same command again "
                        f"to resume", retry=False)
