"""Read and validate the raw Allen Human Brain Atlas microarray download.

The Allen Institute distributes one folder per donor, ``normalized_microarray_donor{uid}/``
(for example ``normalized_microarray_donor9861``), holding five files:

=========================  ======================================================
``MicroarrayExpression.csv``  no header; first column ``probe_id``, then one column of
                              log2 expression per sample (order of SampleAnnot.csv)
``PACall.csv``                same layout; 1 when the probe is above background
``Probes.csv``                ``probe_id, probe_name, gene_id, gene_symbol, gene_name,
                              entrez_id, chromosome`` (same file for every donor)
``SampleAnnot.csv``           one row per sample: ``structure_id, slab_num, well_id, ...,
                              mni_x, mni_y, mni_z``
``Ontology.csv``              the Allen structure ontology (``id, acronym, name,
                              parent_structure_id, hemisphere, ..., structure_id_path``)
=========================  ======================================================

Both the Allen layout (donor folders directly under the raw folder) and abagen's data
folder layout (``<data_dir>/microarray/normalized_microarray_donor{uid}/``) are accepted.

The two large matrices are parsed once with the pandas C engine in chunks straight into
float32 ``.npy`` files of a cache folder, keyed by the size and modification time of the
raw files; later runs memory-map them and start in a fraction of a second. This module
also writes and reads the processed output folder (:func:`write_processed`,
:func:`load_processed`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets.loaders import DONORS
from ..errors import InputError
from ..utils import atomic_path, atomic_write, progress

logger = logging.getLogger(__name__)

#: Folder name of one donor in the Allen download.
DONOR_FOLDER = "normalized_microarray_donor{uid}"

#: The five files of a donor folder (key -> file name).
RAW_FILES = {
    "microarray": "MicroarrayExpression.csv",
    "pacall": "PACall.csv",
    "probes": "Probes.csv",
    "annotation": "SampleAnnot.csv",
    "ontology": "Ontology.csv",
}

PROBE_COLUMNS = ["probe_id", "probe_name", "gene_id", "gene_symbol", "gene_name", "entrez_id",
                 "chromosome"]
ANNOTATION_COLUMNS = ["structure_id", "slab_num", "well_id", "slab_type", "structure_acronym",
                      "structure_name", "polygon_id", "mri_voxel_x", "mri_voxel_y", "mri_voxel_z",
                      "mni_x", "mni_y", "mni_z"]
ONTOLOGY_COLUMNS = ["id", "acronym", "name", "parent_structure_id", "hemisphere", "graph_order",
                    "structure_id_path", "color_hex_triplet"]

#: Version of the on-disk cache layout; bump it when the parsed arrays change meaning.
CACHE_FORMAT = 1
CACHE_ENV_VAR = "BRAINEXPR_CACHE"

_CHUNK_ROWS = 16384


# --------------------------------------------------------------------------- donors
def check_donors(donors="all") -> list[int]:
    """Turn a donor selection into Allen donor uids.

    Parameters
    ----------
    donors : "all" or sequence of int or str
        Donors by uid (``9861``), specimen name (``"H0351.2001"``), sample-table label
        (``"H0351_2001"``), short number (``"2001"``) or folder name
        (``"normalized_microarray_donor9861"``).

    Returns
    -------
    list of int
        Uids in the order given (``"all"``: the six donors in Allen order).

    Raises
    ------
    InputError
        For an unknown donor; the message lists the six valid ones.
    """
    if isinstance(donors, str) and donors == "all":
        return [int(u) for u in DONORS["uid"]]
    if isinstance(donors, (str, int, np.integer)):
        donors = [donors]
    lookup = {}
    for row in DONORS.itertuples():
        for alias in (row.uid, row.donor, row.sample_label, row.donor.split(".")[1],
                      f"donor{row.uid}", DONOR_FOLDER.format(uid=row.uid)):
            lookup[str(alias).lower()] = int(row.uid)
    uids = []
    for donor in donors:
        key = str(donor).strip().lower()
        if key not in lookup:
            raise InputError(
                f"unknown AHBA donor {donor!r}; expected one of "
                f"{', '.join(str(u) for u in DONORS['uid'])} (or H0351.2001 ... H0351.1016)"
            )
        if lookup[key] not in uids:
            uids.append(lookup[key])
    if not uids:
        raise InputError("donors is empty; give 'all' or at least one AHBA donor")
    return uids


def donor_name(uid: int) -> str:
    """Return the specimen name (``"H0351.2001"``) of an Allen donor uid."""
    row = DONORS.loc[DONORS["uid"] == int(uid)]
    return str(row["donor"].iloc[0])


def find_donor_dirs(raw_dir, donors="all") -> dict[int, Path]:
    """Locate the donor folders of a raw AHBA download.

    Parameters
    ----------
    raw_dir : path-like
        Folder that holds ``normalized_microarray_donor{uid}/`` folders, either directly
        (Allen layout) or under ``microarray/`` (abagen's data folder).
    donors : "all" or sequence
        Donors to use (see :func:`check_donors`).

    Returns
    -------
    dict of int -> Path
        Donor uid -> its folder, in the requested order.

    Raises
    ------
    InputError
        When the folder does not exist, holds a folder of an unknown donor, or lacks a
        requested donor.
    """
    raw_dir = Path(raw_dir).expanduser()
    if not raw_dir.is_dir():
        raise InputError(f"raw AHBA folder {raw_dir} does not exist; download it with "
                         f"'brainexpr fetch ahba' or point to the folder that holds "
                         f"normalized_microarray_donor*/")
    found: dict[int, Path] = {}
    pattern = re.compile(r"^normalized_microarray_donor(\d+)$")
    known = set(int(u) for u in DONORS["uid"])
    for base in (raw_dir, raw_dir / "microarray"):
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            match = pattern.match(child.name)
            if not (match and child.is_dir()):
                continue
            uid = int(match.group(1))
            if uid not in known:
                raise InputError(
                    f"{child} is not an AHBA donor folder: donor {uid} is unknown; the six AHBA "
                    f"donors are {', '.join(str(u) for u in DONORS['uid'])}"
                )
            found.setdefault(uid, child)
    wanted = check_donors(donors)
    if not found:
        raise InputError(f"no normalized_microarray_donor*/ folders in {raw_dir} (nor in "
                         f"{raw_dir / 'microarray'}); is this the raw AHBA download?")
    absent = [u for u in wanted if u not in found]
    if absent:
        if isinstance(donors, str) and donors == "all":
            logger.warning("raw folder %s lacks donors %s; using the %d donors present",
                           raw_dir, absent, len(found))
            wanted = [u for u in wanted if u in found]
        else:
            raise InputError(
                f"{raw_dir} has no folder for donor(s) {', '.join(map(str, absent))}; present: "
                f"{', '.join(map(str, sorted(found)))}"
            )
    return {uid: found[uid] for uid in wanted}


def donor_files(donor_dir) -> dict[str, Path]:
    """Return the paths of the five raw files of one donor folder.

    Raises
    ------
    InputError
        Naming the first missing file and the folder.
    """
    donor_dir = Path(donor_dir)
    paths = {key: donor_dir / name for key, name in RAW_FILES.items()}
    for key, path in paths.items():
        if not path.is_file():
            raise InputError(
                f"{path} is missing: every AHBA donor folder must hold "
                f"{', '.join(RAW_FILES.values())}; re-extract the donor's zip file"
            )
    return paths


# --------------------------------------------------------------------------- small tables
def _read_table(path, columns, what: str, numeric=(), **kwargs) -> pd.DataFrame:
    path = Path(path)
    try:
        table = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable {what} CSV: {str(exc).strip()}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path} lacks the {what} column(s) {', '.join(missing)}; expected the "
                         f"Allen layout ({', '.join(columns)})")
    if table.empty:
        raise InputError(f"{path} has no rows; the file is empty or truncated")
    for column in numeric:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # 1-based, after the header
            raise InputError(f"{path} has a missing or non-numeric {column!r} on line {row}; "
                             f"the file is truncated or damaged")
        table[column] = values
    return table


def read_probes(path) -> pd.DataFrame:
    """Read ``Probes.csv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``probe_id`` (int) with columns ``probe_name``, ``gene_id``,
        ``gene_symbol``, ``gene_name``, ``entrez_id`` (float, NaN when absent),
        ``chromosome``.
    """
    table = _read_table(path, PROBE_COLUMNS, "Probes.csv", numeric=("probe_id",))
    table["probe_id"] = table["probe_id"].astype(np.int64)
    if table["probe_id"].duplicated().any():
        dup = table.loc[table["probe_id"].duplicated(), "probe_id"].iloc[0]
        raise InputError(f"{path} lists probe_id {dup} twice")
    table["entrez_id"] = pd.to_numeric(table["entrez_id"], errors="coerce")
    return table.set_index("probe_id")


def read_annotation(path) -> pd.DataFrame:
    """Read ``SampleAnnot.csv`` (one row per sample, in the column order of the matrices)."""
    numeric = ("structure_id", "well_id", "mni_x", "mni_y", "mni_z")
    table = _read_table(path, ANNOTATION_COLUMNS, "SampleAnnot.csv", numeric=numeric)
    table["structure_id"] = table["structure_id"].astype(np.int64)
    table["well_id"] = table["well_id"].astype(np.int64)
    for column in ("mni_x", "mni_y", "mni_z"):
        table[column] = table[column].astype(float)
    return table.reset_index(drop=True)


def read_ontology(path) -> pd.DataFrame:
    """Read ``Ontology.csv``; ``hemisphere`` is L, R or B (the file leaves midline blank)."""
    table = _read_table(path, ONTOLOGY_COLUMNS, "Ontology.csv", numeric=("id",))
    table["id"] = table["id"].astype(np.int64)
    table["hemisphere"] = table["hemisphere"].fillna("B").astype(str)
    table["structure_id_path"] = table["structure_id_path"].fillna("").astype(str)
    return table


# --------------------------------------------------------------------------- big matrices
def _count_columns(path: Path) -> int:
    with open(path, "rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise InputError(f"{path} is empty; the file is truncated")
    return first.count(b",") + 1


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) in (b"\n", b"\r")


def read_matrix(path, n_rows: int, n_samples: int, out=None, what: str | None = None,
                binary: bool = False):
    """Parse ``MicroarrayExpression.csv`` or ``PACall.csv`` in chunks.

    Parameters
    ----------
    path : path-like
    n_rows : int
        Expected number of probes (rows of ``Probes.csv``).
    n_samples : int
        Expected number of samples (rows of ``SampleAnnot.csv``).
    out : (n_rows, n_samples) array, optional
        Where to write the values (e.g. a ``.npy`` memory map); allocated when omitted.
    what : str, optional
        File description for messages (default: the file name).
    binary : bool
        The values must be 0 or 1 (PACall).

    Returns
    -------
    probe_ids : (n_rows,) int64 array
    values : (n_rows, n_samples) array
        float32 (or whatever ``out`` holds).

    Raises
    ------
    InputError
        Naming the file and the problem: wrong number of sample columns, wrong number of
        rows, missing values (a truncated file), non-binary PA calls.
    """
    path = Path(path)
    what = what or path.name
    n_columns = _count_columns(path)
    if n_columns - 1 != n_samples:
        raise InputError(
            f"{path} has {n_columns - 1} sample columns but SampleAnnot.csv lists {n_samples} "
            f"samples; the files of this donor do not belong together"
        )
    if out is None:
        out = np.empty((n_rows, n_samples), dtype=np.float32)
    probe_ids = np.empty(n_rows, dtype=np.int64)
    start = 0
    try:
        # float64 parsing is the pandas C engine's fastest path; blocks are cast on copy
        reader = pd.read_csv(path, header=None, dtype=np.float64, engine="c",
                             chunksize=_CHUNK_ROWS)
        for chunk in progress(reader, desc=f"reading {path.parent.name}/{path.name}",
                              total=-(-n_rows // _CHUNK_ROWS), unit="chunk"):
            stop = start + len(chunk)
            if stop > n_rows:
                raise InputError(f"{path} has more than the {n_rows} rows of Probes.csv; the "
                                 f"files of this donor do not belong together")
            if chunk.shape[1] != n_columns:
                raise InputError(f"{path} has rows with {chunk.shape[1]} fields, expected "
                                 f"{n_columns}; the file is damaged")
            block = chunk.to_numpy(dtype=np.float64, copy=False)
            ids = block[:, 0]
            values = block[:, 1:]
            bad = ~np.isfinite(values)
            if bad.any() or not np.isfinite(ids).all():
                row = start + int(np.flatnonzero(bad.any(axis=1) | ~np.isfinite(ids))[0]) + 1
                raise InputError(f"{path} has missing values on line {row}; the file is "
                                 f"truncated or damaged (re-extract or re-download it)")
            if binary and not ((values == 0.0) | (values == 1.0)).all():
                raise InputError(f"{path} holds values other than 0 and 1; expected PA calls")
            probe_ids[start:stop] = ids.astype(np.int64)
            out[start:stop] = values
            start = stop
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} cannot be parsed as a {what} matrix: "
                         f"{str(exc).strip().splitlines()[0]}") from None
    if start != n_rows:
        raise InputError(f"{path} has {start} rows but Probes.csv lists {n_rows} probes; the "
                         f"file is truncated")
    if not _ends_with_newline(path):
        logger.warning("%s does not end with a line break; its last value may be truncated",
                       path)
    return probe_ids, out


# --------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """Return the cache folder: ``$BRAINEXPR_CACHE`` or ``~/.cache/brainexpr``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "brainexpr"


def file_fingerprint(path) -> dict:
    """Identify a file cheaply by absolute path, size and modification time."""
    path = Path(path).resolve()
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def hash_key(payload) -> str:
    """Return a short SHA-256 hex key of a JSON-serialisable payload."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass
class RawDonor:
    """The raw files of one donor, validated, with the matrices memory-mapped.

    Attributes
    ----------
    uid : int
        Allen donor uid (9861 ...).
    name : str
        Specimen name (``H0351.2001`` ...).
    folder : Path
    probes : pandas.DataFrame
        ``Probes.csv`` indexed by ``probe_id``.
    annotation : pandas.DataFrame
        ``SampleAnnot.csv``; row ``i`` is column ``i`` of the matrices.
    ontology : pandas.DataFrame
    microarray : (n_probes, n_samples) float32 array
        log2 expression, rows in ``probes`` order.
    pacall : (n_probes, n_samples) bool array
        Probe above background.
    fingerprint : dict
        Size and modification time of the five files (cache key material).
    """

    uid: int
    name: str
    folder: Path
    probes: pd.DataFrame
    annotation: pd.DataFrame
    ontology: pd.DataFrame
    microarray: np.ndarray
    pacall: np.ndarray
    fingerprint: dict = field(default_factory=dict)


def _parse_matrices(paths, n_probes: int, n_samples: int, folder: Path):
    """Parse both matrices into ``folder`` (``.npy``); return their probe ids."""
    micro = np.lib.format.open_memmap(folder / "microarray.npy", mode="w+", dtype=np.float32,
                                      shape=(n_probes, n_samples))
    ids_micro, _ = read_matrix(paths["microarray"], n_probes, n_samples, out=micro)
    micro.flush()
    del micro
    pacall = np.lib.format.open_memmap(folder / "pacall.npy", mode="w+", dtype=np.bool_,
                                       shape=(n_probes, n_samples))
    ids_pa, _ = read_matrix(paths["pacall"], n_probes, n_samples, out=pacall, binary=True)
    pacall.flush()
    del pacall
    return ids_micro, ids_pa


def load_donor(donor_dir, uid: int | None = None, cache_dir=None, use_cache: bool = True) -> RawDonor:
    """Read and validate the five raw files of one donor.

    Parameters
    ----------
    donor_dir : path-like
        A ``normalized_microarray_donor{uid}`` folder.
    uid : int, optional
        Donor uid (default: parsed from the folder name).
    cache_dir : path-like, optional
        Cache folder (default :func:`default_cache_dir`); the parsed matrices are kept
        under ``<cache_dir>/ahba-raw/``.
    use_cache : bool
        When False the matrices are parsed into a temporary folder that is removed
        when the returned arrays are no longer used.

    Returns
    -------
    RawDonor

    Raises
    ------
    InputError
        For a missing file, mismatched sample or probe counts, truncated matrices.
    """
    donor_dir = Path(donor_dir)
    if uid is None:
        match = re.search(r"donor(\d+)$", donor_dir.name)
        if not match:
            raise InputError(f"cannot tell the donor of folder {donor_dir}; expected a "
                             f"normalized_microarray_donor{{uid}} folder")
        uid = check_donors([match.group(1)])[0]
    paths = donor_files(donor_dir)
    probes = read_probes(paths["probes"])
    annotation = read_annotation(paths["annotation"])
    ontology = read_ontology(paths["ontology"])
    unknown = sorted(set(annotation["structure_id"]) - set(ontology["id"]))
    if unknown:
        raise InputError(f"{paths['annotation']} uses structure ids absent from "
                         f"{paths['ontology']} (e.g. {unknown[:5]}); the Ontology.csv does not "
                         f"belong to this download")
    n_probes, n_samples = len(probes), len(annotation)
    fingerprint = {key: file_fingerprint(p) for key, p in paths.items()}
    key = hash_key({"format": CACHE_FORMAT, "uid": uid, "files": fingerprint})
    if use_cache:
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        folder = root / "ahba-raw" / f"donor{uid}-{key}"
    else:
        folder = None
    if folder is not None and (folder / "complete.json").is_file():
        logger.info("donor %d: using parsed matrices cached in %s", uid, folder)
        ids = np.load(folder / "probe_ids.npy")
    else:
        target = folder.parent if folder is not None else None
        if target is not None:
            target.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".donor{uid}-", dir=target))
        try:
            logger.info("donor %d: parsing %s and %s (%d probes x %d samples)", uid,
                        RAW_FILES["microarray"], RAW_FILES["pacall"], n_probes, n_samples)
            ids, ids_pa = _parse_matrices(paths, n_probes, n_samples, stage)
            if not np.array_equal(ids, ids_pa):
                raise InputError(f"{paths['pacall']} lists its probes in a different order than "
                                 f"{paths['microarray']}; the files do not belong together")
            np.save(stage / "probe_ids.npy", ids)
            with open(stage / "complete.json", "w", encoding="utf-8") as handle:
                json.dump({"uid": uid, "files": fingerprint, "format": CACHE_FORMAT}, handle)
            if folder is not None:
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                os.replace(stage, folder)
            else:
                folder = stage
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    if not np.array_equal(ids, probes.index.to_numpy()):
        raise InputError(f"{paths['microarray']} lists different probes (or a different order) "
                         f"than {paths['probes']}; the files do not belong together")
    micro = np.load(folder / "microarray.npy", mmap_mode="r")
    pacall = np.load(folder / "pacall.npy", mmap_mode="r")
    if not use_cache:
        # read into memory so that the temporary folder can go
        micro, pacall = np.array(micro), np.array(pacall)
        shutil.rmtree(folder, ignore_errors=True)
    return RawDonor(uid=uid, name=donor_name(uid), folder=donor_dir, probes=probes,
                    annotation=annotation, ontology=ontology, microarray=micro, pacall=pacall,
                    fingerprint=fingerprint)


# --------------------------------------------------------------------------- processed output
PROCESSED_FILES = {
    "samples": "samples.csv",
    "expression": "expression.npy",
    "genes": "genes.csv",
    "regional": "regional_expression.csv",
    "counts": "sample_counts.csv",
    "methods": "methods.md",
    "provenance": "provenance.json",
}
DONOR_TABLE = "regional_expression_donor-{uid}.csv"
#: Binary copy of the regional tables kept in the cache only (fast reloading).
REGIONAL_NPZ = "regional_tables.npz"


@dataclass
class ProcessedAHBA:
    """The processed AHBA data: samples, sample x gene matrix, regional tables.

    Attributes
    ----------
    samples : pandas.DataFrame
        One row per sample, in the row order of ``expression``, indexed by ``sample_id``:
        ``well_id``, ``donor`` (``H0351.2001``...), ``donor_uid``, ``mirrored``,
        ``structure_id``, ``structure_acronym``, ``structure_name``, ``hemisphere``
        (L/R/B), ``structure`` (cortex, subcortex/brainstem, cerebellum, white matter,
        other), ``mni_x/y/z`` (mm, MNI152; the coordinates used for matching), ``label``
        (atlas id, 0 unmatched), ``region`` (region key, empty when unmatched),
        ``tissue_class`` (grey 1, white -1, other 0).
    expression : (n_samples, n_genes) float32 array
        Normalised expression; memory-mapped when loaded from disk.
    genes : pandas.DataFrame
        Indexed by ``gene_symbol`` in column order of ``expression``: ``entrez_id``,
        ``probe_id``, ``probe_name``, ``n_probes``, ``probe_diff_stability`` and
        ``diff_stability`` (mean pairwise Spearman correlation of the gene's regional
        profile between donors).
    regional : pandas.DataFrame or None
        (n_regions, n_genes) aggregated across donors, index = region keys.
    regional_donors : dict of int -> pandas.DataFrame
        The same per donor uid (NaN rows for regions without samples).
    counts : pandas.DataFrame
        Samples per region (rows) and donor uid (columns).
    methods : str
        The Methods paragraph for exactly the options used.
    provenance : dict
        Options, inputs, counts per step, package versions.
    """

    samples: pd.DataFrame
    expression: np.ndarray
    genes: pd.DataFrame
    regional: pd.DataFrame | None
    regional_donors: dict
    counts: pd.DataFrame
    methods: str
    provenance: dict

    @property
    def gene_names(self) -> list[str]:
        return list(self.genes.index)

    def sample_expression(self, genes=None) -> pd.DataFrame:
        """Return the sample x gene matrix as a DataFrame (index ``sample_id``).

        Parameters
        ----------
        genes : sequence of str, optional
            Gene symbols to keep (default all); unknown ones raise
            :class:`brainexpr.errors.UnknownGeneError`.
        """
        from ..datasets.loaders import check_genes

        if genes is None:
            columns = np.arange(len(self.genes))
            names = self.gene_names
        else:
            names, _ = check_genes(list(genes), self.gene_names, "the processed AHBA data")
            lookup = {g: i for i, g in enumerate(self.gene_names)}
            columns = np.array([lookup[g] for g in names], dtype=int)
        values = np.asarray(self.expression[:, columns], dtype=np.float32)
        return pd.DataFrame(values, index=self.samples.index, columns=pd.Index(names, name="gene"))

    def coordinates(self) -> np.ndarray:
        """Return the (n_samples, 3) sample coordinates, mm, MNI152."""
        return self.samples[["mni_x", "mni_y", "mni_z"]].to_numpy(float)

    def training_data(self, genes=None):
        """Return what a sample-level interpolator's ``fit`` takes.

        Returns
        -------
        coords : (n_samples, 3) float array, mm, MNI152
        values : pandas.DataFrame
            (n_samples, n_genes) normalised expression (see :meth:`sample_expression`).
        tissue : (n_samples,) int array
            Tissue class per sample: grey 1, white -1, other 0.
        """
        return (self.coordinates(), self.sample_expression(genes),
                self.samples["tissue_class"].to_numpy(int))


def write_table(frame: pd.DataFrame, path, float_format: str = "%.7g") -> None:
    """Write a numeric table (index + float columns) as CSV, fast for thousands of columns.

    pandas' ``to_csv`` spends minutes on 83 x 20,000 tables; formatting whole rows with one
    ``%`` operation takes a second. NaN is written as ``nan`` (read back as NaN).
    """
    values = np.asarray(frame.to_numpy(dtype=np.float64))
    row_format = ",".join([float_format] * values.shape[1])
    name = frame.index.name or ""
    with atomic_write(path) as handle:
        handle.write(",".join([name] + [str(c) for c in frame.columns]) + "\n")
        for key, row in zip(frame.index, values):
            handle.write(f"{key}," + row_format % tuple(row) + "\n")


def write_processed(result: ProcessedAHBA, out_dir, binary_tables: bool = False) -> Path:
    """Write a :class:`ProcessedAHBA` into a folder (files listed in :data:`PROCESSED_FILES`).

    The caller is responsible for atomicity (write into a staging folder, see
    :func:`brainexpr.utils.staged_directory`); each file is also written atomically.
    ``binary_tables`` also stores the regional tables as ``regional_tables.npz``, which
    :func:`load_processed` reads in a fraction of the time of the wide CSV files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / PROCESSED_FILES["samples"]) as tmp:
        result.samples.to_csv(tmp)
    with atomic_path(out / PROCESSED_FILES["expression"]) as tmp:
        np.save(tmp, np.ascontiguousarray(result.expression, dtype=np.float32))
    with atomic_path(out / PROCESSED_FILES["genes"]) as tmp:
        result.genes.to_csv(tmp)
    if result.regional is not None:
        write_table(result.regional, out / PROCESSED_FILES["regional"])
    for uid, table in result.regional_donors.items():
        write_table(table, out / DONOR_TABLE.format(uid=uid))
    with atomic_path(out / PROCESSED_FILES["counts"]) as tmp:
        result.counts.to_csv(tmp)
    if binary_tables:
        first = result.regional if result.regional is not None \
            else next(iter(result.regional_donors.values()))
        arrays = {"regions": np.asarray(first.index, dtype=str),
                  "genes": np.asarray(first.columns, dtype=str)}
        if result.regional is not None:
            arrays["regional"] = result.regional.to_numpy(np.float32)
        for uid, table in result.regional_donors.items():
            arrays[f"donor_{uid}"] = table.to_numpy(np.float32)
        with atomic_path(out / REGIONAL_NPZ) as tmp:
            np.savez(tmp, **arrays)
    with atomic_write(out / PROCESSED_FILES["methods"]) as handle:
        handle.write(result.methods + "\n")
    with atomic_write(out / PROCESSED_FILES["provenance"]) as handle:
        json.dump(result.provenance, handle, indent=1, default=str)
    return out


def load_processed(out_dir, mmap: bool = True) -> ProcessedAHBA:
    """Read a folder written by ``brainexpr ahba`` (or :func:`write_processed`) back.

    Parameters
    ----------
    out_dir : path-like
    mmap : bool
        Memory-map the sample x gene matrix instead of reading it into memory.

    Returns
    -------
    ProcessedAHBA

    Raises
    ------
    InputError
        When the folder is not a processed AHBA folder or its files disagree.
    """
    out = Path(out_dir).expanduser()
    required = ("samples", "expression", "genes", "counts", "provenance")
    missing = [PROCESSED_FILES[k] for k in required if not (out / PROCESSED_FILES[k]).is_file()]
    if missing:
        raise InputError(f"{out} is not a processed AHBA folder (missing {', '.join(missing)}); "
                         f"create it with 'brainexpr ahba RAW_DIR --out {out}'")
    samples = pd.read_csv(out / PROCESSED_FILES["samples"], index_col="sample_id",
                          keep_default_na=False)
    expression = np.load(out / PROCESSED_FILES["expression"], mmap_mode="r" if mmap else None)
    genes = pd.read_csv(out / PROCESSED_FILES["genes"], index_col="gene_symbol")
    if expression.shape != (len(samples), len(genes)):
        raise InputError(f"{out / PROCESSED_FILES['expression']} has shape {expression.shape} but "
                         f"the folder lists {len(samples)} samples and {len(genes)} genes")
    counts = pd.read_csv(out / PROCESSED_FILES["counts"], index_col=0)
    regional, regional_donors = None, {}
    if (out / REGIONAL_NPZ).is_file():
        with np.load(out / REGIONAL_NPZ) as arrays:
            index = pd.Index(arrays["regions"].astype(object), name="region")
            columns = pd.Index(arrays["genes"].astype(object), name="gene")

            def frame(key):
                return pd.DataFrame(arrays[key].astype(np.float64), index=index, columns=columns)

            if "regional" in arrays.files:
                regional = frame("regional")
            for column in counts.columns:
                if f"donor_{column}" in arrays.files:
                    regional_donors[int(column)] = frame(f"donor_{column}")
    else:
        if (out / PROCESSED_FILES["regional"]).is_file():
            regional = pd.read_csv(out / PROCESSED_FILES["regional"], index_col=0)
        for column in counts.columns:
            path = out / DONOR_TABLE.format(uid=column)
            if path.is_file():
                regional_donors[int(column)] = pd.read_csv(path, index_col=0)
    methods = (out / PROCESSED_FILES["methods"]).read_text(encoding="utf-8").strip() \
        if (out / PROCESSED_FILES["methods"]).is_file() else ""
    with open(out / PROCESSED_FILES["provenance"], encoding="utf-8") as handle:
        provenance = json.load(handle)
    return ProcessedAHBA(samples=samples, expression=expression, genes=genes, regional=regional,
                         regional_donors=regional_donors, counts=counts, methods=methods,
                         provenance=provenance)
