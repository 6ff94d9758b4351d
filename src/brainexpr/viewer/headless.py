"""Drive a headless Chromium through the DevTools protocol over a pipe (standard library only).

Used by the viewer tests and by ``docs/make_viewer_screenshot.py`` to load a viewer page,
interact with it and take screenshots. Chromium is started with
``--remote-debugging-pipe``: commands go to its file descriptor 3 and replies come from
its file descriptor 4 as NUL-terminated JSON messages, so no network socket (not even on
the loopback interface) is opened by this process. WebGL 2 (which NiiVue needs) is
rendered in software by SwiftShader, so no GPU or display is required.

Only what the viewer needs is implemented: open a page, evaluate JavaScript, click,
take a (clipped) PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from ..errors import BrainexprError

logger = logging.getLogger(__name__)

#: Executable names tried in order (Debian's package installs ``chromium``).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Return the path of a Chromium executable (``$BRAINEXPR_CHROMIUM`` first), or None."""
    explicit = os.environ.get("BRAINEXPR_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(BrainexprError):
    """Chromium could not be started, or a DevTools command failed or timed out."""


class HeadlessChromium:
    """A headless Chromium with one page, controlled over the DevTools pipe.

    Parameters
    ----------
    width, height : int
        Window size in CSS pixels.
    executable : str, optional
        Chromium executable; default :func:`find_chromium`.
    timeout : float
        Seconds to wait for any single DevTools reply.

    Examples
    --------
    >>> with HeadlessChromium() as browser:          # doctest: +SKIP
    ...     browser.open("file:///tmp/page.html")
    ...     browser.evaluate("document.title")
    """

    def __init__(self, width: int = 1280, height: int = 900, executable: str | None = None,
                 timeout: float = 60.0):
        self.width = width
        self.height = height
        self.executable = executable
        self.timeout = timeout
        self._process = None
        self._profile = None
        self._session = None
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._reader = None
        self._log = None
        self.console: list[str] = []

    # ------------------------------------------------------------------ life cycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self) -> None:
        """Start Chromium and attach to a blank page."""
        executable = self.executable or find_chromium()
        if executable is None:
            raise BrowserError("no Chromium found; install Debian's 'chromium' package or set "
                               "BRAINEXPR_CHROMIUM=/path/to/chromium")
        self._profile = tempfile.mkdtemp(prefix="brainexpr-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            "--headless", "--remote-debugging-pipe", "--no-sandbox", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--mute-audio",
            "--hide-scrollbars", f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}", "about:blank",
        ]
        # a tiny Python trampoline moves the pipe ends onto the descriptors 3 and 4 that
        # Chromium expects (dash cannot redirect descriptors above 9), then becomes Chromium
        trampoline = ("import fcntl, os, sys; r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) "
                      "for fd in sys.argv[1:3]); os.dup2(r, 3); os.dup2(w, 4); "
                      "os.execv(sys.argv[3], sys.argv[3:])")
        self._log = open(os.path.join(self._profile, "chromium.log"), "wb")
        self._process = subprocess.Popen(
            [sys.executable, "-c", trampoline, str(to_browser_r), str(from_browser_w), executable,
             *args], pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        targets = self.send("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        target = pages[0]["targetId"] if pages else self.send(
            "Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", session=True, width=self.width,
                  height=self.height, deviceScaleFactor=1, mobile=False)

    def close(self) -> None:
        """Close Chromium and remove its temporary profile."""
        if self._process is not None:
            try:
                self.send("Browser.close", timeout=5)
            except BrowserError:
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        for fd in ("_to_browser", "_from_browser"):
            if getattr(self, fd, None) is not None:
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                setattr(self, fd, None)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def _log_tail(self, n_chars: int = 600) -> str:
        """The end of Chromium's own log (what it printed before a failure)."""
        try:
            self._log.flush()
            with open(self._log.name, "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
        except (OSError, AttributeError, ValueError):
            return "(no log)"
        lines = [line for line in text.splitlines() if "dbus" not in line.lower()]
        return " | ".join(lines)[-n_chars:] or "(empty)"

    # ------------------------------------------------------------------ protocol
    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[-1] = {"error": {"message": "Chromium closed the pipe"}}
                    self._cond.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()
                elif message.get("method") == "Runtime.consoleAPICalled":
                    params = message["params"]
                    text = " ".join(str(a.get("value", a.get("description", "")))
                                    for a in params.get("args", []))
                    self.console.append(f"{params.get('type')}: {text}")
                elif message.get("method") == "Runtime.exceptionThrown":
                    details = message["params"]["exceptionDetails"]
                    description = details.get("exception", {}).get("description", details.get("text"))
                    self.console.append(f"exception: {description}")

    def send(self, method: str, session: bool = False, timeout: float | None = None, **params):
        """Send one DevTools command and return its result.

        Parameters
        ----------
        method : str
            DevTools method, e.g. ``"Page.navigate"``.
        session : bool
            Send to the attached page (True) or to the browser (False).
        timeout : float, optional
            Seconds to wait for the reply (default: the instance's ``timeout``).
        **params
            The command's parameters.
        """
        with self._cond:
            self._next_id += 1
            message_id = self._next_id
        message = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except OSError as exc:
            raise BrowserError(f"cannot talk to Chromium ({exc}); its log ends: {self._log_tail()}") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while message_id not in self._replies:
                if -1 in self._replies:
                    raise BrowserError(f"{self._replies[-1]['error']['message']}; its log ends: "
                                       f"{self._log_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BrowserError(f"Chromium did not answer {method} in time")
                self._cond.wait(remaining)
            reply = self._replies.pop(message_id)
        if "error" in reply:
            raise BrowserError(f"{method} failed: {reply['error'].get('message')}")
        return reply.get("result", {})

    # ------------------------------------------------------------------ page helpers
    def open(self, url: str, wait: float = 30.0) -> None:
        """Navigate to ``url`` and wait until the document has loaded."""
        self.send("Page.navigate", session=True, url=url)
        self.wait_for("document.readyState === 'complete'", timeout=wait)

    def evaluate(self, expression: str, await_promise: bool = True):
        """Evaluate JavaScript in the page and return its (JSON-serialisable) value."""
        result = self.send("Runtime.evaluate", session=True, expression=expression,
                           awaitPromise=await_promise, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description", details.get("text"))
            raise BrowserError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.1):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                recent = "; ".join(self.console[-3:])
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for {expression}"
                                   + (f" (console: {recent})" if recent else ""))
            time.sleep(interval)

    def click(self, x: float, y: float) -> None:
        """Click the left mouse button at page coordinates (CSS pixels)."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            extra = {} if kind == "mouseMoved" else {"button": "left", "clickCount": 1}
            self.send("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, **extra)

    def screenshot(self, path=None, clip: dict | None = None) -> bytes:
        """Take a PNG screenshot of the page (or of ``clip``: x, y, width, height in CSS px).

        Returns the PNG bytes and writes them to ``path`` when given.
        """
        params = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        data = base64.b64decode(self.send("Page.captureScreenshot", session=True, **params)["data"])
        if path is not None:
            with open(path, "wb") as handle:
                handle.write(data)
        return data

    def element_box(self, selector: str) -> dict:
        """Return the bounding box (x, y, width, height, CSS px) of the first match of ``selector``."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")
        if not box:
            raise BrowserError(f"no element matches {selector}")
        return box
