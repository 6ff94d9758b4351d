"""``brainexpr fetch ahba``: resumable, verified download of the raw AHBA microarray data.

The six donor archives (``normalized_microarray_donor{uid}.zip``, about 4 GB together)
are downloaded from the Allen Institute (the URLs abagen uses) into
``<data_dir>/microarray/`` and extracted to ``normalized_microarray_donor{uid}/``
(abagen's data folder layout, which :func:`brainexpr.ahba.process_ahba` reads).

* **Resumable**: :func:`brainexpr.datasets.download.download_file` writes to
  ``<name>.zip.part``; an interrupted download continues with an HTTP ``Range`` request
  where it stopped (and restarts when the server ignores it).
* **Verified**: the size must equal the server's announced size, every member's CRC-32
  must match (``zipfile.testzip``), the five raw files must be present, and the donor's
  ``SampleAnnot.csv`` must list its published number of samples and ``Probes.csv``
  58,692 probes. The Allen Institute publishes no checksums for these archives.

Like the reference-data fetcher, it touches the network only when called.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from ..config import get_data_dir
from ..datasets.download import DownloadError, download_file
from ..datasets.loaders import DONORS
from .io import DONOR_FOLDER, RAW_FILES, check_donors

logger = logging.getLogger(__name__)

#: Allen Institute download of each donor's normalised microarray archive.
AHBA_URLS = {
    9861: "https://human.brain-map.org/api/v2/well_known_file_download/178238387",
    10021: "https://human.brain-map.org/api/v2/well_known_file_download/178238373",
    12876: "https://human.brain-map.org/api/v2/well_known_file_download/178238359",
    14380: "https://human.brain-map.org/api/v2/well_known_file_download/178238316",
    15496: "https://human.brain-map.org/api/v2/well_known_file_download/178238266",
    15697: "https://human.brain-map.org/api/v2/well_known_file_download/178236545",
}
N_PROBES = 58692
CITATION = ("Hawrylycz MJ et al. (2012) An anatomically comprehensive atlas of the adult human "
            "brain transcriptome. Nature 489:391-399. Allen Institute terms of use apply.")


def verify_archive(path, uid: int) -> None:
    """Check a donor archive: CRC-32 of every member, the five raw files, sample count.

    Raises
    ------
    DownloadError
        Naming the archive and the problem.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise DownloadError(f"{path}: member {bad} fails its CRC-32 check; delete the file "
                                    f"and download again")
            names = {Path(n).name: n for n in archive.namelist()}
            missing = [f for f in RAW_FILES.values() if f not in names]
            if missing:
                raise DownloadError(f"{path} lacks {', '.join(missing)}; it is not an AHBA donor "
                                    f"archive")
            with archive.open(names["SampleAnnot.csv"]) as handle:
                n_samples = sum(1 for _ in handle) - 1
            with archive.open(names["Probes.csv"]) as handle:
                n_probes = sum(1 for _ in handle) - 1
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DownloadError(f"{path} is not a valid zip archive ({exc}); delete it and download "
                            f"again") from None
    expected = int(DONORS.set_index("uid").loc[uid, "n_samples"])
    if n_samples != expected:
        raise DownloadError(f"{path}: SampleAnnot.csv lists {n_samples} samples, donor {uid} has "
                            f"{expected}")
    if n_probes != N_PROBES:
        raise DownloadError(f"{path}: Probes.csv lists {n_probes} probes, expected {N_PROBES}")


def _extract(archive_path: Path, target: Path) -> Path:
    """Extract the five raw files into ``target`` through a staging folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for member in archive.namelist():
                name = Path(member).name
                if name in RAW_FILES.values():
                    with archive.open(member) as src, open(stage / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return target


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in RAW_FILES.values())


def fetch_ahba(data_dir=None, donors="all", keep_zip: bool = False, opener=None) -> dict:
    """Download, verify and extract the raw AHBA microarray data.

    Parameters
    ----------
    data_dir : path-like, optional
        Data folder (see :func:`brainexpr.config.get_data_dir`); files go to
        ``<data_dir>/microarray/normalized_microarray_donor{uid}/``.
    donors : "all" or sequence
    keep_zip : bool
        Keep the verified archives after extraction.
    opener : callable, optional
        Replaces :func:`urllib.request.urlopen` (for testing without a network).

    Returns
    -------
    dict of int -> Path
        Donor uid -> extracted folder. Pass ``<data_dir>/microarray`` (or ``data_dir``)
        to ``brainexpr ahba``.
    """
    root = get_data_dir(data_dir) / "microarray"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot write to {root} ({exc}); pass --data-dir with a writable "
                            f"folder") from None
    folders = {}
    for uid in check_donors(donors):
        folder = root / DONOR_FOLDER.format(uid=uid)
        if _complete(folder):
            logger.info("donor %d already present in %s", uid, folder)
            folders[uid] = folder
            continue
        archive = root / f"{DONOR_FOLDER.format(uid=uid)}.zip"
        if not archive.exists():
            logger.info("downloading donor %d from %s", uid, AHBA_URLS[uid])
            download_file(AHBA_URLS[uid], archive, opener=opener)
        try:
            verify_archive(archive, uid)
        except DownloadError:
            archive.unlink(missing_ok=True)
            raise
        folders[uid] = _extract(archive, folder)
        if not keep_zip:
            archive.unlink()
    logger.info("AHBA raw data ready in %s (cite: %s)", root, CITATION)
    return folders
