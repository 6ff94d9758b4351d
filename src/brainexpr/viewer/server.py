"""Serve a :class:`~brainexpr.viewer.site.ViewerSite` on the loopback interface."""

from __future__ import annotations

import errno
import logging
import mimetypes
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from ..errors import InputError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def make_server(site, host: str = LOOPBACK, port: int = 8765) -> ThreadingHTTPServer:
    """Create (but do not start) an HTTP server for the viewer files.

    Parameters
    ----------
    site : ViewerSite
    host : str
        Interface to listen on; only loopback addresses are allowed (the maps stay local).
    port : int
        TCP port; 0 picks a free one (read it from ``server.server_address``).

    Raises
    ------
    InputError
        When ``host`` is not a loopback address or the port is taken.
    """
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise InputError(f"host must be a loopback address (127.0.0.1, localhost), got {host!r}; "
                         "the viewer serves local files and is not meant for other machines")

    class Handler(BaseHTTPRequestHandler):
        server_version = "brainexpr-viewer"

        def do_GET(self):  # noqa: N802 (http.server naming)
            path = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
            try:
                body = site.read(path)
            except KeyError:
                self.send_error(HTTPStatus.NOT_FOUND, "not part of the viewer")
                return
            except Exception as exc:  # a broken map file: answer 500 and log it, keep serving
                logger.error("cannot serve %s: %s", path, exc)
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc)[:200])
                return
            kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            logger.debug("%s - %s", self.address_string(), fmt % args)

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} is already in use; pass another port (0 picks a free one)") from None
        raise
