"""Conversions that rebuild the registry's ``derived/`` files from the originals beside them.

The ADNI group maps of the Raj lab ship as MATLAB ``.mat`` and Excel ``.xlsx`` files; the
loaders read plain CSV conversions of them. Each converter takes the paths of its inputs
(in the order the registry lists them) and returns the CSV text, byte for byte the file
whose SHA-256 the registry records (pandas ``to_csv`` with its default float format).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import scipy.io

from ..errors import BrainexprError

_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _region_names(fs_region_list: Path) -> list[str]:
    """The 86 region names of ``FSRegionList.mat`` (right cortex first, see MANIFEST)."""
    return [str(name[0]) for name in scipy.io.loadmat(fs_region_list)["RegionNames"][0]]


def adni_group_data(group_data: Path, fs_region_list: Path, lobes: Path) -> str:
    """``ADNI_group_data.mat`` -> 86 regions x (region, lobe code, 15 group maps).

    Parameters
    ----------
    group_data : Path
        ``ADNI_group_data.mat``: 15 vectors of shape (86, 1) (``nc_tau`` ... ``ad_atrophy``).
    fs_region_list, lobes : Path
        ``FSRegionList.mat`` (region names) and ``FSatlas_lobes.mat`` (lobe codes).

    Returns
    -------
    str
        CSV with columns ``index0, region, lobe_code`` and the maps in the order
        ``{nc,emci,lmci,ad}_tau, _abeta, _met``, ``{emci,lmci,ad}_atrophy``.
    """
    maps = scipy.io.loadmat(group_data)
    table = pd.DataFrame({"index0": range(86), "region": _region_names(fs_region_list),
                          "lobe_code": scipy.io.loadmat(lobes)["lobes"][:, 0]})
    groups = ("nc", "emci", "lmci", "ad")
    columns = [f"{g}_{m}" for m in ("tau", "abeta", "met") for g in groups]
    columns += [f"{g}_atrophy" for g in groups[1:]]
    for column in columns:
        table[column] = maps[column][:, 0]
    return table.to_csv(index=False)


def _xlsx_rows(path: Path) -> list[list]:
    """Cell values of the first sheet of an ``.xlsx`` file (strings and floats), by row."""
    with zipfile.ZipFile(path) as archive:
        shared = [
            "".join(t.text or "" for t in item.iter(f"{_XLSX}t"))
            for item in ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
        ]
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.find(f"{_XLSX}sheetData"):
        values = []
        for cell in row.findall(f"{_XLSX}c"):
            value = cell.find(f"{_XLSX}v")
            text = None if value is None else value.text
            values.append(shared[int(text)] if cell.get("t") == "s" else float(text))
        rows.append(values)
    return rows


def group_nrc_amyloid(workbook: Path) -> str:
    """``Group_NRC_Amyloid.xlsx`` (groups x regions) -> 86 regions x (AD, aMCI, naMCI, NL).

    Parameters
    ----------
    workbook : Path
        One sheet: a header row of 86 region names (``LT_BANKSSTS`` ...), then one row of
        amyloid-PET SUVR means per group.
    """
    header, *groups = _xlsx_rows(workbook)
    table = pd.DataFrame([row[1:] for row in groups], index=[row[0] for row in groups],
                         columns=header[1:]).T
    table.index.name = "region"
    return table.to_csv()


def ashishadnitstats_foryize(stats: Path, fs_region_list: Path) -> str:
    """``AshishADNItstats_forYize.mat`` (MATLAB v7.3) -> 86 regions x [h, p, t] statistics.

    Needs :mod:`h5py` (MATLAB v7.3 files are HDF5), which brainexpr does not require.

    Parameters
    ----------
    stats : Path
        Nine (3, 86) arrays ``{AD,EMCI,LMCI}_{baseline_AV45,baseline_FDG,vol_1}_stats``.
    fs_region_list : Path
        ``FSRegionList.mat`` (region names).
    """
    try:
        import h5py
    except ImportError:
        raise BrainexprError(f"converting {Path(stats).name} (MATLAB v7.3) needs h5py: "
                             f"'pip install h5py', then fetch again") from None
    table = pd.DataFrame(index=pd.Index(_region_names(fs_region_list), name="region"))
    with h5py.File(stats, "r") as handle:
        for key in sorted(handle.keys()):
            values = np.asarray(handle[key])
            for row, statistic in enumerate("hpt"):
                table[f"{key}_{statistic}"] = values[row]
    return table.to_csv()


#: converter name (the registry's ``derive``) -> function of the input paths.
DERIVERS = {
    "adni_group_data": adni_group_data,
    "group_nrc_amyloid": group_nrc_amyloid,
    "ashishadnitstats_foryize": ashishadnitstats_foryize,
}
