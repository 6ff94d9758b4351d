"""Layout of a gene-atlas store (Zarr v3) and its readers.

A store is a Zarr v3 group (a folder) with consolidated metadata::

    zarr.json                 root attributes: format, provenance, grid, build settings,
                              float16 rounding error, ``complete``
    expression  (gene, voxel) float16 or float32, chunks (gene_chunk, voxel_chunk)
    std         (gene, voxel) same, only when the model gives an uncertainty
    gene        (gene,)       gene symbols
    accuracy_r  (gene,)       per-gene held-out Pearson r (NaN where not measured)
    voxel_ijk   (voxel, 3)    int32 voxel indices in the grid
    voxel_mni   (voxel, 3)    float32 MNI152 coordinates (mm)
    mask        (x, y, z)     uint8 brain mask of the grid
    blocks_done (gene_block, voxel_block) uint8, one chunk per block: 1 once the block's
                              values are written (what a resumed build skips)
    rounding_error (gene_block, voxel_block) float32: largest |float16 - float32| of the block
    parcellations/<atlas>     (gene, region) regional means, cached by ``atlas parcellate``
                              and ``build`` (DK-83)
    model.pt                  the fitted model (any ``brainexpr`` command that takes
                              ``--model`` reads it), when the build fitted one

A compute block is one storage chunk, so every block write replaces whole chunks and two
workers never write the same chunk. :func:`open_atlas` gives the store as an
:class:`xarray.Dataset` whose variables are Dask arrays with the storage chunks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.validate import check_choice
from ..errors import InputError

logger = logging.getLogger(__name__)

FORMAT = "brainexpr-atlas"
FORMAT_VERSION = 1

#: Value types of the expression array (``--dtype``).
DTYPES = ("float16", "float32")

#: Default chunk shape (genes, voxels); BENCHMARKS.md "Gene atlas" measures the reads.
DEFAULT_CHUNKS = (256, 16384)

#: File name of the fitted model inside a store.
MODEL_FILE = "model.pt"


@contextlib.contextmanager
def _quiet():
    """Silence zarr's notice that consolidated metadata is not yet in the v3 specification
    (the store is consolidated, as xarray expects; zarr-python reads it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        warnings.filterwarnings("ignore", message=f"Object at {MODEL_FILE} is not recognized")
        yield


@dataclass(frozen=True)
class BlockLayout:
    """How the (genes x voxels) array is cut into compute blocks (= storage chunks).

    Attributes
    ----------
    n_genes, n_voxels : int
    gene_chunk, voxel_chunk : int
    """

    n_genes: int
    n_voxels: int
    gene_chunk: int
    voxel_chunk: int

    @property
    def shape(self) -> tuple[int, int]:
        """Number of blocks along genes and voxels."""
        return (-(-self.n_genes // self.gene_chunk), -(-self.n_voxels // self.voxel_chunk))

    def genes_of(self, gene_block: int) -> slice:
        start = gene_block * self.gene_chunk
        return slice(start, min(start + self.gene_chunk, self.n_genes))

    def voxels_of(self, voxel_block: int) -> slice:
        start = voxel_block * self.voxel_chunk
        return slice(start, min(start + self.voxel_chunk, self.n_voxels))


def check_chunks(chunks) -> tuple[int, int]:
    """Validate a ``(gene_chunk, voxel_chunk)`` pair (both >= 1)."""
    try:
        gene_chunk, voxel_chunk = (int(c) for c in chunks)
    except (TypeError, ValueError):
        raise InputError(f"chunks must be two integers (genes, voxels), got {chunks!r}") from None
    if gene_chunk < 1 or voxel_chunk < 1:
        raise InputError(f"chunks must be >= 1, got {chunks!r}")
    return gene_chunk, voxel_chunk


def create_store(path, genes, grid, *, dtype: str = "float16", chunks=DEFAULT_CHUNKS,
                 with_std: bool = False, accuracy=None, attrs: dict | None = None):
    """Create an empty store: metadata, gene names, grid; no expression values yet.

    Parameters
    ----------
    path : path-like
        New folder (must not exist).
    genes : sequence of str
    grid : brainexpr.maps.dense.VoxelGrid
    dtype : {"float16", "float32"}
    chunks : (int, int)
        Genes and voxels per chunk (= per compute block).
    with_std : bool
        Also create the ``std`` array.
    accuracy : (n_genes,) array, optional
        Per-gene held-out Pearson r (NaN = not measured).
    attrs : dict, optional
        Root attributes (JSON-compatible): provenance, model, settings.

    Returns
    -------
    BlockLayout
    """
    import zarr

    check_choice(dtype, DTYPES, "dtype")
    gene_chunk, voxel_chunk = check_chunks(chunks)
    genes = [str(g) for g in genes]
    layout = BlockLayout(len(genes), grid.n_voxels, min(gene_chunk, len(genes)),
                         min(voxel_chunk, grid.n_voxels))
    with _quiet():
        root = zarr.open_group(str(path), mode="w-", zarr_format=3)
        values = dict(shape=(layout.n_genes, layout.n_voxels), dtype=dtype,
                      chunks=(layout.gene_chunk, layout.voxel_chunk), fill_value=np.nan,
                      dimension_names=("gene", "voxel"))
        root.create_array("expression", **values)
        if with_std:
            root.create_array("std", **values)
        names = root.create_array("gene", shape=(len(genes),), dtype=str,
                                  dimension_names=("gene",))
        names[:] = np.array(genes, dtype=object)
        accuracy = (np.full(len(genes), np.nan) if accuracy is None
                    else np.asarray(accuracy, dtype=float))
        root.create_array("accuracy_r", data=accuracy.astype(np.float32),
                          dimension_names=("gene",))
        root.create_array("voxel_ijk", data=grid.ijk.astype(np.int32),
                          dimension_names=("voxel", "axis"))
        root.create_array("voxel_mni", data=grid.coords.astype(np.float32),
                          dimension_names=("voxel", "axis"))
        root.create_array("voxel_tissue", data=grid.tissue.astype(np.int8),
                          dimension_names=("voxel",))
        root.create_array("mask", data=grid.volume(1.0).astype(np.uint8),
                          dimension_names=("x", "y", "z"))
        for name, kind, fill in (("blocks_done", "uint8", 0), ("rounding_error", "float32", 0)):
            root.create_array(name, shape=layout.shape, chunks=(1, 1), dtype=kind,
                              fill_value=fill, dimension_names=("gene_block", "voxel_block"))
        root.attrs.update({
            "format": FORMAT, "format_version": FORMAT_VERSION, "complete": False,
            "dtype": dtype, "chunks": [layout.gene_chunk, layout.voxel_chunk],
            "grid": {"shape": list(grid.shape), "affine": grid.affine.tolist(),
                     "label": grid.label, "n_voxels": grid.n_voxels},
            **(attrs or {})})
    return layout


def open_group(path, mode: str = "r"):
    """Open a store's Zarr group, checking that it is a brainexpr atlas."""
    import zarr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise InputError(f"{path} is not a gene-atlas store (no zarr.json); build one with "
                         "`brainexpr atlas build`")
    with _quiet():
        root = zarr.open_group(str(path), mode=mode, zarr_format=3)
    if root.attrs.get("format") != FORMAT:
        raise InputError(f"{path} is a Zarr store but not a brainexpr gene atlas")
    return root


def layout_of(root) -> BlockLayout:
    """The block layout of an open store."""
    n_genes, n_voxels = root["expression"].shape
    gene_chunk, voxel_chunk = root.attrs["chunks"]
    return BlockLayout(int(n_genes), int(n_voxels), int(gene_chunk), int(voxel_chunk))


def finalize_store(path, attrs: dict | None = None) -> None:
    """Record the final attributes, mark the store complete and consolidate its metadata."""
    import zarr

    root = open_group(path, mode="r+")
    error = float(np.nanmax(root["rounding_error"][...]))
    root.attrs.update({**(attrs or {}), "complete": True,
                       "float16_max_abs_error": error if root.attrs["dtype"] == "float16"
                       else 0.0})
    with _quiet():
        zarr.consolidate_metadata(str(path))


@dataclass
class Atlas:
    """A store opened for queries (everything but the values is read into memory).

    Attributes
    ----------
    path : Path
    genes : list of str
    grid : brainexpr.maps.dense.VoxelGrid
    attrs : dict
        Root attributes (provenance, model, settings).
    root : zarr.Group
    """

    path: Path
    genes: list
    grid: object
    attrs: dict
    root: object

    @property
    def has_std(self) -> bool:
        return "std" in self.root

    @property
    def model_label(self) -> str:
        return str(self.attrs.get("model", {}).get("name", "model"))

    def gene_index(self, genes) -> np.ndarray:
        """Row of every gene (an unknown gene raises, naming the closest ones)."""
        from ..datasets import check_genes

        lookup = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in genes if g not in lookup]
        if missing:
            check_genes(list(genes), self.genes, f"the atlas {self.path.name}")
        return np.array([lookup[g] for g in genes], dtype=np.int64)

    def read(self, genes, kind: str = "expression") -> np.ndarray:
        """(len(genes), n_voxels) float32 values of some genes."""
        if kind not in ("expression", "std") or kind not in self.root:
            raise InputError(f"the atlas {self.path.name} has no {kind!r} values")
        rows = self.gene_index(genes)
        array = self.root[kind]
        return np.stack([array[int(r), :] for r in rows]).astype(np.float32)


def load_atlas(path) -> Atlas:
    """Open a complete store for queries.

    Raises
    ------
    InputError
        When ``path`` is not a store or its build has not finished.
    """
    root = open_group(path)
    attrs = root.attrs.asdict()
    if not attrs.get("complete"):
        raise InputError(f"the atlas {path} is not complete; run `brainexpr atlas build` "
                         "again with the same arguments to finish it")
    genes = [str(g) for g in root["gene"][...]]
    return Atlas(Path(path), genes, grid_of(root), attrs, root)


def grid_of(root):
    """The voxel grid of a store (:class:`brainexpr.maps.dense.VoxelGrid`)."""
    from ..maps.dense import VoxelGrid

    info = root.attrs["grid"]
    return VoxelGrid(shape=tuple(info["shape"]), affine=np.asarray(info["affine"]),
                     ijk=root["voxel_ijk"][...].astype(np.int64),
                     coords=root["voxel_mni"][...].astype(float),
                     tissue=root["voxel_tissue"][...], label=info["label"])


def open_atlas(path, chunks="storage"):
    """Open a gene atlas as an :class:`xarray.Dataset` backed by Dask.

    Parameters
    ----------
    path : path-like
        Store written by ``brainexpr atlas build``.
    chunks : "storage", dict or None
        ``"storage"`` (default) uses the storage chunks as Dask chunks; anything else is
        passed to :func:`xarray.open_zarr`.

    Returns
    -------
    xarray.Dataset
        ``expression`` (and ``std``) with dims ``(gene, voxel)``; coordinate ``gene``
        (symbols); ``accuracy_r`` per gene; ``voxel_mni`` (voxel, axis) in mm; the
        provenance in ``attrs``.

    Examples
    --------
    >>> atlas = open_atlas("atlas.zarr")                       # doctest: +SKIP
    >>> atlas.expression.sel(gene="APOE").compute()             # doctest: +SKIP
    """
    import xarray as xr

    root = open_group(path)
    if not root.attrs.get("complete"):
        raise InputError(f"the atlas {path} is not complete; run `brainexpr atlas build` again "
                         "with the same arguments to finish it")
    with _quiet():
        dataset = xr.open_zarr(str(path), consolidated=True,
                               chunks={} if chunks == "storage" else chunks)
    return dataset


def provenance_json(value) -> dict:
    """A JSON-compatible copy of a provenance dict (numbers, strings, lists)."""
    return json.loads(json.dumps(value, default=str))
