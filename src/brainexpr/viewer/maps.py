"""Find the gene maps of an output folder and prepare them for display.

The pipeline writes one NIfTI per gene, model, resolution and kind, with BIDS-like names::

    gene-<SYMBOL>_model-<name>_res-<1mm|2mm>_space-MNI152_<expr|std>.nii.gz

``expr`` is the predicted expression, ``std`` its uncertainty (standard deviation).
:func:`parse_map_filename` is the one place that reads these names.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
import pandas as pd

from ..datasets.validate import check_choice
from ..errors import InputError

logger = logging.getLogger(__name__)

MAP_KINDS = ("expr", "std")

_MAP_NAME = re.compile(
    r"^gene-(?P<gene>[^_/]+)_model-(?P<model>[^_/]+)_res-(?P<resolution>\d+)mm"
    r"_space-(?P<space>[^_/]+)_(?P<kind>expr|std)\.nii(?:\.gz)?$"
)

#: The naming scheme, as told to users in error messages.
MAP_NAME_SCHEME = "gene-<SYMBOL>_model-<name>_res-<1mm|2mm>_space-MNI152_<expr|std>.nii.gz"


class MapName(NamedTuple):
    """The entities of a gene-map file name."""

    gene: str
    model: str
    resolution: int  # mm
    space: str
    kind: str  # "expr" or "std"


def parse_map_filename(name) -> MapName | None:
    """Parse a gene-map file name.

    Parameters
    ----------
    name : str or path-like
        File name or path; only the last component is read.

    Returns
    -------
    MapName or None
        None when the name does not follow :data:`MAP_NAME_SCHEME`.

    Examples
    --------
    >>> parse_map_filename("gene-APOE_model-factorized_res-2mm_space-MNI152_std.nii.gz")
    MapName(gene='APOE', model='factorized', resolution=2, space='MNI152', kind='std')
    """
    match = _MAP_NAME.match(Path(name).name)
    if match is None:
        return None
    fields = match.groupdict()
    return MapName(fields["gene"], fields["model"], int(fields["resolution"]), fields["space"],
                   fields["kind"])


def find_maps(output_dir) -> pd.DataFrame:
    """List the gene maps anywhere under an output folder.

    Parameters
    ----------
    output_dir : path-like

    Returns
    -------
    pandas.DataFrame
        One row per (gene, model, resolution) in MNI152 space, sorted by gene, with
        columns ``gene``, ``model``, ``resolution`` (mm), ``expr`` and ``std`` (paths;
        ``std`` is None when no uncertainty map exists), ``trust`` (the gene's held-out r
        from ``maps.tsv``, NaN when unknown) and ``std_meaning`` (what the SD describes).

    Raises
    ------
    InputError
        When the folder does not exist or holds no map named after the scheme.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise InputError(f"output folder {output_dir} does not exist; pass the folder that "
                         "'brainexpr run --out' wrote")
    rows = {}
    symbols = {}  # file name label -> exact gene symbol, from the maps.tsv beside the maps
    notes = {}  # file -> {"trust": held-out r of the gene, "meaning": what the map shows}
    for table_path in output_dir.rglob("maps.tsv"):
        try:
            listing = pd.read_csv(table_path, sep="\t", dtype=str)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            logger.warning("cannot read %s (%s); using gene labels from file names", table_path, exc)
            continue
        if {"file", "gene"} <= set(listing.columns):
            for name, gene in zip(listing["file"], listing["gene"]):
                symbols[table_path.parent / str(name)] = str(gene)
            for column in ("trust", "meaning"):
                for name, value in zip(listing["file"], listing.get(column, [None] * len(listing))):
                    notes.setdefault(table_path.parent / str(name), {})[column] = value
    for path in sorted(output_dir.rglob("gene-*_space-*.nii*")):
        parsed = parse_map_filename(path)
        if parsed is None or parsed.space != "MNI152":
            continue
        gene = symbols.get(path, parsed.gene)
        key = (gene, parsed.model, parsed.resolution)
        rows.setdefault(key, {"gene": gene, "model": parsed.model,
                              "resolution": parsed.resolution, "expr": None, "std": None,
                              "trust": np.nan, "std_meaning": None})
        rows[key][parsed.kind] = path
        note = notes.get(path, {})
        trust = pd.to_numeric(pd.Series([note.get("trust")]), errors="coerce").iloc[0]
        if np.isfinite(trust):
            rows[key]["trust"] = float(trust)
        if parsed.kind == "std" and isinstance(note.get("meaning"), str):
            rows[key]["std_meaning"] = note["meaning"]
    table = pd.DataFrame(list(rows.values()), columns=["gene", "model", "resolution", "expr", "std",
                                                       "trust", "std_meaning"])
    orphans = table[table["expr"].isna()]
    if len(orphans):
        logger.warning("ignoring %d uncertainty maps without an expression map (e.g. %s)",
                       len(orphans), orphans["std"].iloc[0])
        table = table[table["expr"].notna()]
    if table.empty:
        stacks = "" if not any(output_dir.rglob("genes-*_space-*.nii*")) else (
            " (4-D stacks genes-<N>_... are not browsable: write one map per gene)")
        raise InputError(f"no gene maps named {MAP_NAME_SCHEME} under {output_dir}{stacks}; "
                         "run 'brainexpr run' first or pass its output folder")
    return table.sort_values(["gene", "model", "resolution"]).reset_index(drop=True)


def select_maps(maps: pd.DataFrame, model: str | None = None, resolution: int | None = None,
                genes=None) -> pd.DataFrame:
    """Keep the maps of one resolution (and optionally some models and genes).

    Parameters
    ----------
    maps : pandas.DataFrame
        Output of :func:`find_maps`.
    model : str, optional
        Keep this model only; default: every model.
    resolution : {1, 2}, optional
        Map resolution in mm; default: 2 mm when present (lighter to display), else 1 mm.
    genes : sequence of str, optional
        Keep these genes only (in this order).

    Raises
    ------
    InputError
        Naming what was asked for and what is available.
    """
    available = sorted(maps["resolution"].unique().tolist())
    if resolution is None:
        resolution = 2 if 2 in available else available[0]
    else:
        check_choice(resolution, available, "resolution (mm) of the available maps")
    selected = maps[maps["resolution"] == resolution]
    if model is not None:
        models = sorted(selected["model"].unique())
        check_choice(model, models, f"model of the {resolution} mm maps")
        selected = selected[selected["model"] == model]
    if genes is not None:
        genes = [genes] if isinstance(genes, str) else list(genes)
        missing = [g for g in genes if g not in set(selected["gene"])]
        if missing:
            raise InputError(f"genes without {resolution} mm maps: {', '.join(missing[:10])}; "
                             f"available: {', '.join(sorted(set(selected['gene']))[:10])}...")
        order = {gene: i for i, gene in enumerate(genes)}
        selected = selected[selected["gene"].isin(order)]
        selected = selected.assign(_order=selected["gene"].map(order)).sort_values("_order")
        selected = selected.drop(columns="_order")
    return selected.reset_index(drop=True)


def display_image(image, mask: np.ndarray | None = None) -> nib.Nifti1Image:
    """Return a float32 copy of a map with NaN where nothing was predicted (transparent).

    Voxels outside ``mask``, non-finite voxels and voxels that are exactly 0 (the fill
    value of the map writer outside its prediction mask) become NaN.

    Parameters
    ----------
    image : nibabel.Nifti1Image or path
        A 3-D map in MNI152 space.
    mask : (X, Y, Z) bool array, optional
        Brain mask on the map's grid; voxels outside it become NaN.

    Returns
    -------
    nibabel.Nifti1Image
        Same grid and affine; the other values are unchanged (up to float32).
    """
    if not isinstance(image, nib.spatialimages.SpatialImage):
        try:
            image = nib.load(str(image))
        except Exception as exc:  # nibabel raises many types for unreadable files
            raise InputError(f"cannot read map {image!s}: {exc}") from None
    data = np.asarray(image.dataobj, dtype=np.float32).copy()
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"a gene map must be a 3-D image, got shape {image.shape}")
    if mask is not None:
        if mask.shape != data.shape:
            raise InputError(f"map grid {data.shape} differs from the brain-mask grid {mask.shape}; "
                             "maps must be on the FSL MNI152 1 mm or 2 mm grid")
        data[~mask] = np.nan
    data[~np.isfinite(data) | (data == 0)] = np.nan
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    out = nib.Nifti1Image(data, image.affine, header)
    out.header.set_qform(image.affine, code=4)  # 4 = MNI152
    out.header.set_sform(image.affine, code=4)
    return out


def to_gzip_bytes(image: nib.Nifti1Image, level: int = 6) -> bytes:
    """Serialise a NIfTI image to gzip-compressed ``.nii.gz`` bytes."""
    return gzip.compress(image.to_bytes(), compresslevel=level, mtime=0)
