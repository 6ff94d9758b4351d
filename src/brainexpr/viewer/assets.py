"""The NiiVue viewer bundle: where it is found and how it is installed.

The viewer draws volumes with NiiVue (https://github.com/niivue/niivue, BSD-2-Clause), the
WebGL 2 viewer used across neuroimaging web tools. Its self-contained UMD bundle
(``dist/niivue.umd.js`` of the npm package ``@niivue/niivue``) is not stored in the
repository; it is installed at set-up time by::

    python -m brainexpr.viewer.assets          # needs npm; verifies the pinned checksum

which runs ``npm pack @niivue/niivue@<pinned version>``, checks the tarball's SHA-512
against the value recorded here, and copies the bundle into ``brainexpr/viewer/static/``.
``$BRAINEXPR_NIIVUE_JS`` may point at a copy elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import BrainexprError
from ..utils import atomic_path

logger = logging.getLogger(__name__)

NIIVUE_PACKAGE = "@niivue/niivue"
NIIVUE_VERSION = "0.69.0"
#: ``dist.integrity`` of the npm tarball (``npm view @niivue/niivue@0.69.0 dist.integrity``).
NIIVUE_INTEGRITY = ("sha512-YMjQvJgD1W2b7DuoxkwlC4VxbrgIePRJ5qyQzXKxi2v2MBVg285P/CIQyg46oDDGDIcaNl"
                    "bd+MhtO/edMbXJkA==")
#: SHA-256 of ``package/dist/niivue.umd.js`` inside that tarball.
NIIVUE_BUNDLE_SHA256 = "47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af"
BUNDLE_NAME = f"niivue-{NIIVUE_VERSION}.umd.js"
ENV_VAR = "BRAINEXPR_NIIVUE_JS"

STATIC_DIR = Path(__file__).resolve().parent / "static"


class ViewerAssetError(BrainexprError):
    """The NiiVue bundle is missing or could not be installed."""


def niivue_bundle_path() -> Path:
    """Return the path of the NiiVue UMD bundle.

    Looks at ``$BRAINEXPR_NIIVUE_JS``, then ``brainexpr/viewer/static/``.

    Raises
    ------
    ViewerAssetError
        With the command that installs it.
    """
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ViewerAssetError(f"${ENV_VAR} points at {path}, which does not exist")
        return path
    path = STATIC_DIR / BUNDLE_NAME
    if not path.is_file():
        raise ViewerAssetError(
            f"the NiiVue viewer bundle ({NIIVUE_PACKAGE} {NIIVUE_VERSION}) is not installed; run "
            f"'python -m brainexpr.viewer.assets' (needs npm) or set ${ENV_VAR}=/path/to/niivue.umd.js"
        )
    return path


def _integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def install_niivue(destination: Path | None = None, npm: str | None = None) -> Path:
    """Download the pinned NiiVue release with npm, verify it and install its bundle.

    Parameters
    ----------
    destination : path-like, optional
        Folder for the bundle (default: ``brainexpr/viewer/static/``).
    npm : str, optional
        npm executable (default: ``npm`` on the PATH).

    Returns
    -------
    Path
        The installed bundle. Nothing is written when a check fails.
    """
    destination = Path(destination) if destination is not None else STATIC_DIR
    target = destination / BUNDLE_NAME
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == NIIVUE_BUNDLE_SHA256:
        logger.info("NiiVue %s already installed at %s", NIIVUE_VERSION, target)
        return target
    npm = npm or shutil.which("npm")
    if npm is None:
        raise ViewerAssetError("npm is needed to install the NiiVue viewer bundle; install Node.js "
                               "and npm (Debian: apt-get install npm) and run this again")
    with tempfile.TemporaryDirectory(prefix="brainexpr-niivue-") as tmp:
        result = subprocess.run(
            [npm, "pack", f"{NIIVUE_PACKAGE}@{NIIVUE_VERSION}", "--pack-destination", tmp,
             "--silent"], capture_output=True, text=True, cwd=tmp)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            raise ViewerAssetError(f"npm pack {NIIVUE_PACKAGE}@{NIIVUE_VERSION} failed: "
                                   f"{(result.stderr or result.stdout).strip()[-300:]}")
        if _integrity(tarballs[0]) != NIIVUE_INTEGRITY:
            raise ViewerAssetError(f"the downloaded {NIIVUE_PACKAGE} {NIIVUE_VERSION} tarball does "
                                   "not match the pinned SHA-512; not installing it")
        with tarfile.open(tarballs[0]) as archive:
            member = archive.extractfile("package/dist/niivue.umd.js")
            bundle = member.read()
    if hashlib.sha256(bundle).hexdigest() != NIIVUE_BUNDLE_SHA256:
        raise ViewerAssetError("the NiiVue bundle inside the verified tarball has an unexpected "
                               "checksum; not installing it")
    with atomic_path(target) as tmp_path:
        tmp_path.write_bytes(bundle)
    logger.info("installed NiiVue %s (%d kB) at %s", NIIVUE_VERSION, len(bundle) // 1024, target)
    return target


def main(argv=None) -> int:
    """``python -m brainexpr.viewer.assets [DESTINATION]``: install the NiiVue bundle."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = install_niivue(Path(argv[0]) if argv else None)
    except BrainexprError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
