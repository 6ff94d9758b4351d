"""Build a gene atlas: a fitted model evaluated for every gene on every voxel, on Dask.

The (genes x voxels) array is cut into blocks that are exactly the storage chunks
(:class:`~brainexpr.transcriptome.store.BlockLayout`). One Dask task per voxel block
prepares the model's inputs there (for parcel kriging: the voxel basis, see
:class:`LowRankKriging`); one task per (gene block, voxel block) evaluates the genes of
the block, writes its chunk(s) into the Zarr store and then marks the block done in
``blocks_done``. Memory is bounded by a few blocks per worker, whatever the number of
genes. A build that was killed is resumed by running it again: only blocks that are not
marked done are computed.

The same graph runs on Dask's local threaded scheduler (default) or, given an address
(``scheduler=`` or ``DASK_SCHEDULER_ADDRESS``), on an existing ``distributed`` cluster
(one started by dask-jobqueue on SLURM, or a ``LocalCluster``); every block is computed
by the same deterministic function, so the stores are identical.

Parcel kriging is linear in the genes: its prediction is a voxel basis (voxels x r:
intercept, tissue terms, and the mean correlation of the voxel with each parcel at each
fitted range) times a gene matrix (r x genes), so a block costs one basis per voxel block
and one float32 matrix product per gene block (:class:`LowRankKriging`). Donor kriging
(the model of sample sites) is linear in the genes too: a voxel block computes its
correlations with the sample sites once, and each gene block is one product with the
genes' kriging weights (:class:`LowRankDonorKriging`). Any other fitted model (an INR)
is evaluated through :func:`brainexpr.maps.dense.predict_prepared` (:class:`ModelEvaluator`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from . import store as S

logger = logging.getLogger(__name__)

#: Environment variable naming a Dask scheduler address (as dask-jobqueue prints it).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"

#: Model an atlas uses for each kind of source when ``model="auto"``: (model, reason).
#: Evidence: BENCHMARKS.md "Gene atlas", model choice (leave-parcels-out on 300 random genes).
ATLAS_MODELS = {
    "regions": ("parcel-kriging",
                "best on held-out whole lobes for 300 random genes of the DK-83 table in "
                "BENCHMARKS.md (Gene atlas: mean per-gene r 0.229 vs 0.190 for the INR with "
                "the profile-PCA gene embedding and 0.188 with the 1-D gene axis; on random "
                "folds of parcels 0.443 vs 0.469 and 0.417, but the best R^2); linear in "
                "genes, one fit for all genes"),
    "samples": ("donor-kriging", "most accurate on held-out sample sites (see "
                                 "brainexpr.models.registry.AUTO_MODELS)"),
}

#: What ``accuracy_r`` holds for a model with a trust score (donor kriging: sample sites).
TRUST_MEANING = ("the model's trust score: Pearson r of each gene's sample values with their "
                 "closed-form leave-one-block-out predictions of the population field ({block} mm "
                 "blocks, each with an 8 mm margin left out too, a random subset of at most {sites} sites, hyperparameters chosen on "
                 "all sites)")

#: Versions of the packages recorded in the provenance.
_PROVENANCE_PACKAGES = ("numpy", "scipy", "pandas", "nibabel", "dask", "distributed", "zarr",
                        "xarray", "torch")


# --------------------------------------------------------------------------- evaluators
class LowRankKriging:
    """A fitted :class:`~brainexpr.models.parcel.ParcelKrigingRegressor` as basis x genes.

    ``model.predict(coords, tissue)`` equals ``basis(coords, tissue) @ gene_matrix`` (up
    to float32 rounding): the basis holds the drift terms (intercept, tissue shares), the
    mean correlation of each point with each parcel at every distinct fitted range, and
    the same at the trend range; the gene matrix holds the matching coefficients (mean,
    scale, drift and kriging weights of each gene).

    Parameters
    ----------
    model : fitted ParcelKrigingRegressor
    with_std : bool
        Also evaluate the block-kriging standard deviation
        (:meth:`~brainexpr.models.parcel.ParcelKrigingRegressor.predict_std`, exact, not
        low-rank: the points are kept with their basis).

    Attributes
    ----------
    gene_matrix : (r, n_genes) float32 array
    genes : list of str
    """

    def __init__(self, model, with_std: bool = False):
        from ..maps.dense import model_genes

        self.model = model
        self.has_std = bool(with_std)
        self.genes = model_genes(model)
        scale, mean = model.scale_, model.mean_
        self.ranges = [float(r) for r in np.unique(model.range_)]
        self.with_trend = bool(model.trend_range) and bool((model.trend_share_ > 0).any())
        drift = (model.drift_ * scale[:, None]).T                  # (n_drift, genes)
        drift[0] += mean                                           # intercept column is 1
        local = model.alpha_ * ((1.0 - model.trend_share_) * scale)[:, None]
        rows = [drift]
        for range_mm in self.ranges:
            rows.append(np.where((model.range_ == range_mm)[:, None], local, 0.0).T)
        if self.with_trend:
            rows.append((model.alpha_ * (model.trend_share_ * scale)[:, None]).T)
        self.gene_matrix = np.vstack(rows).astype(np.float32)

    @property
    def rank(self) -> int:
        return self.gene_matrix.shape[0]

    def prepare(self, coords, tissue):
        """(n, r) float32 voxel basis at points (coords in mm, MNI152; tissue in {1, -1, 0});
        with ``with_std`` the tuple (basis, coords, tissue)."""
        from ..models.parcel import parcel_correlation
        from ..models.kriging import drift_design

        model = self.model
        step = max(1, int(model.chunk_size))
        out = np.empty((len(coords), self.rank), dtype=np.float32)
        for start in range(0, len(coords), step):
            block = coords[start:start + step]
            parts = [drift_design(tissue[start:start + step], True)[:, model.drift_columns_]]
            ranges = self.ranges + ([float(model.trend_range)] if self.with_trend else [])
            parts += [parcel_correlation(block, model.nodes_, model.node_weights_,
                                         model.node_offsets_, r, model.variogram)
                      for r in ranges]
            out[start:start + step] = np.hstack(parts)
        return (out, coords, tissue) if self.has_std else out

    def evaluate(self, prepared, genes: slice):
        """(n_genes_in_slice, n) float32 values, and their SDs (None without ``with_std``)."""
        if not self.has_std:
            return (self.gene_matrix[:, genes].T @ prepared.T).astype(np.float32), None
        basis, coords, tissue = prepared
        values = (self.gene_matrix[:, genes].T @ basis.T).astype(np.float32)
        spread = self.model.predict_std(coords, tissue, genes=self.genes[genes])
        return values, spread.T.astype(np.float32)


class LowRankDonorKriging:
    """A fitted :class:`~brainexpr.models.kriging.DonorKrigingRegressor` with its
    cross-covariances computed once per voxel block for every gene.

    The population field at points ``X`` is ``mean + scale * (F(X) beta' + m(X, w) * [C(X) A
    + w * C(M X) A])``: drift terms ``F``, the correlations ``C`` of the points (and of
    their mirror images ``M X``) with the sites, kriging weights ``A`` (per gene, scaled
    at the sites for the learned symmetry ``w``), and the midline scale ``m``. ``C`` does
    not depend on the gene, so a voxel block computes it once (float32) and every gene
    block is one matrix product; :meth:`DonorKrigingRegressor.predict` recomputes it for
    every call, which at 16,384 voxels x 2,851 sites costs several times the product.
    Equal to ``model.predict`` up to float32 rounding.

    Parameters
    ----------
    model : fitted DonorKrigingRegressor
        Exactly that class (subclasses add network terms: :class:`ModelEvaluator`).
    with_std : bool
        Also evaluate the kriging standard deviation
        (:meth:`~brainexpr.models.kriging.DonorKrigingRegressor.predict_std`, exact).

    Attributes
    ----------
    parts : list of dict
        One per site mask and range of the fitted weights: ``sites`` (s, 3) mm,
        ``length`` (mm), ``genes`` (sorted gene indices), ``weights`` (genes, s) float32,
        ``symmetry`` (genes,).
    genes : list of str
    """

    def __init__(self, model, with_std: bool = False):
        from ..maps.dense import model_genes
        from ..models.baselines import VARIOGRAMS
        from ..models.kriging import _midline_scale

        self.model = model
        self.has_std = bool(with_std)
        self.genes = model_genes(model)
        self.rho = VARIOGRAMS[model.variogram]
        every = np.arange(model.n_genes_)
        symmetry = np.asarray(getattr(model, "symmetry_", np.zeros(model.n_genes_)), dtype=float)
        self.parts = []
        for sites, multiplier, cols, alpha in model._weights_by_sites(every):
            order = np.argsort(cols)
            cols, alpha = cols[order], alpha[:, order]
            length = float(model.range_ * multiplier)
            site_coords = model.coords_[sites]
            weights = alpha
            if symmetry[cols].any():
                weights = alpha * _midline_scale(self.rho, site_coords, length, symmetry[cols])
            self.parts.append({"sites": site_coords, "length": length, "genes": cols,
                               "weights": np.ascontiguousarray(weights.T, dtype=np.float32),
                               "symmetry": symmetry[cols]})

    def _correlations(self, coords, sites, length) -> np.ndarray:
        """(n, s) float32 correlations of points with sites, in bounded temporaries."""
        from scipy.spatial.distance import cdist

        out = np.empty((len(coords), len(sites)), dtype=np.float32)
        step = max(1, int(self.model.chunk_size))
        for start in range(0, len(coords), step):
            out[start:start + step] = self.rho(cdist(coords[start:start + step], sites) / length)
        return out

    def prepare(self, coords, tissue):
        """Inputs at points (coords in mm, MNI152; tissue in {1, -1, 0}): the drift design,
        and per part the correlations with the sites (and of the mirrored points, with
        the midline correlation, where a gene has a symmetric term)."""
        from ..models.baselines import reflect

        crosses = []
        for part in self.parts:
            mirrored = bool(part["symmetry"].any())
            crosses.append((
                self._correlations(coords, part["sites"], part["length"]),
                self._correlations(reflect(coords), part["sites"], part["length"])
                if mirrored else None,
                self.rho(2.0 * np.abs(coords[:, 0]) / part["length"]) if mirrored else None))
        return self.model._design(coords, tissue), crosses, coords, tissue

    def evaluate(self, prepared, genes: slice):
        """(n_genes_in_slice, n) float32 values, and their SDs (None without ``with_std``)."""
        design, crosses, coords, tissue = prepared
        model = self.model
        out = design @ model.drift_[genes].T
        for part, (cross, reflected, midline) in zip(self.parts, crosses):
            first, last = np.searchsorted(part["genes"], [genes.start, genes.stop])
            if first == last:
                continue
            weights = part["weights"][first:last]
            values = cross @ weights.T
            symmetry = part["symmetry"][first:last]
            symmetric = np.flatnonzero(symmetry)
            if len(symmetric):
                values[:, symmetric] += (reflected @ weights[symmetric].T) * symmetry[symmetric]
                values /= np.sqrt(1.0 + midline[:, None] * symmetry)
            out[:, part["genes"][first:last] - genes.start] += values
        values = (model.mean_[genes] + model.scale_[genes] * out).T.astype(np.float32)
        if not self.has_std:
            return values, None
        spread = model.predict_std(coords, tissue, genes=np.arange(model.n_genes_)[genes])
        return values, spread.T.astype(np.float32)


class ModelEvaluator:
    """Any fitted model evaluated through :func:`brainexpr.maps.dense.predict_prepared`.

    Parameters
    ----------
    model : fitted estimator
    with_std : bool
        Also evaluate the model's standard deviation (INR ensembles).
    """

    def __init__(self, model, with_std: bool = False):
        from ..maps.dense import model_genes

        self.model = model
        self.genes = model_genes(model)
        self.has_std = bool(with_std)

    def prepare(self, coords, tissue):
        from ..maps.dense import prepare_points

        return prepare_points(self.model, coords, tissue)

    def evaluate(self, prepared, genes: slice):
        from ..maps.dense import predict_prepared

        result = predict_prepared(self.model, prepared, self.genes[genes],
                                  return_std=self.has_std, gene_major=True)
        if self.has_std:
            return result[0].astype(np.float32), result[1].astype(np.float32)
        return np.asarray(result, dtype=np.float32), None


def make_evaluator(model, with_std: bool = False):
    """The fastest exact evaluator of a fitted model (shared voxel terms for the kriging models).

    ``with_std`` also evaluates the model's standard deviation (an error when it gives none).
    """
    from ..maps.dense import has_uncertainty
    from ..models.parcel import ParcelKrigingRegressor
    from ..models.kriging import DonorKrigingRegressor

    gives_std = has_uncertainty(model)
    if with_std and not gives_std:
        from ..maps.dense import _no_uncertainty

        raise _no_uncertainty(model)
    if isinstance(model, ParcelKrigingRegressor):
        return LowRankKriging(model, with_std=bool(with_std))
    if type(model) is DonorKrigingRegressor:   # subclasses add network terms
        return LowRankDonorKriging(model, with_std=bool(with_std))
    return ModelEvaluator(model, with_std=bool(with_std))


# --------------------------------------------------------------------------- block tasks
def prepare_block(store_path: str, evaluator, voxel_block: int):
    """The evaluator's inputs on one voxel block (coordinates read from the store, so the
    task graph carries no voxel data)."""
    import zarr

    root = zarr.open_group(store_path, mode="r", zarr_format=3)
    voxels = S.layout_of(root).voxels_of(voxel_block)
    coords = root["voxel_mni"][voxels].astype(float)
    return evaluator.prepare(coords, root["voxel_tissue"][voxels])


def write_block(store_path: str, evaluator, prepared, gene_block: int, voxel_block: int) -> int:
    """Evaluate one (gene block, voxel block), write its chunks, then mark it done.

    Returns
    -------
    int
        1 (the block count, summed by the caller).
    """
    import zarr

    root = zarr.open_group(store_path, mode="r+", zarr_format=3)
    layout = S.layout_of(root)
    genes, voxels = layout.genes_of(gene_block), layout.voxels_of(voxel_block)
    values, spread = evaluator.evaluate(prepared, genes)
    expression = root["expression"]
    stored = values.astype(expression.dtype)
    expression[genes, voxels] = stored
    if spread is not None:
        root["std"][genes, voxels] = spread.astype(expression.dtype)
    error = float(np.nanmax(np.abs(stored.astype(np.float32) - values), initial=0.0))
    root["rounding_error"][gene_block, voxel_block] = error
    root["blocks_done"][gene_block, voxel_block] = 1          # last: the block is complete
    return 1


def pending_blocks(root) -> list[tuple[int, int]]:
    """(gene block, voxel block) pairs not yet marked done."""
    done = root["blocks_done"][...]
    return [tuple(map(int, b)) for b in np.argwhere(done == 0)]


def build_graph(store_path, evaluator, blocks):
    """Dask delayed tasks writing ``blocks``; one preparation task per voxel block used."""
    import dask

    shared = dask.delayed(evaluator, pure=True)
    prepared = {}
    tasks = []
    for gene_block, voxel_block in blocks:
        if voxel_block not in prepared:
            prepared[voxel_block] = dask.delayed(prepare_block, pure=True)(
                str(store_path), shared, voxel_block, dask_key_name=f"prepare-{voxel_block}")
        tasks.append(dask.delayed(write_block, pure=False)(
            str(store_path), shared, prepared[voxel_block], gene_block, voxel_block,
            dask_key_name=f"write-{gene_block}-{voxel_block}"))
    return tasks


def resolve_scheduler(scheduler: str | None) -> str | None:
    """The scheduler address to use: ``scheduler``, else ``$DASK_SCHEDULER_ADDRESS``, else
    None (the local threaded scheduler). ``"local"`` forces the local scheduler."""
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    return None if address in (None, "", "local") else address


def run_graph(tasks, scheduler: str | None = None, n_workers: int | None = None) -> int:
    """Compute the write tasks with a progress bar; returns the number of blocks written."""
    import dask

    from ..utils import progress

    if not tasks:
        return 0
    address = resolve_scheduler(scheduler)
    bar = progress(total=len(tasks), desc="atlas blocks", unit="block")
    try:
        if address is None:
            from dask.callbacks import Callback

            class _Bar(Callback):
                def _posttask(self, key, result, dsk, state, worker_id):
                    if str(key).startswith("write-"):
                        bar.update(1)

            with _Bar():
                results = dask.compute(*tasks, scheduler="threads", num_workers=n_workers)
            return int(sum(results))
        from distributed import Client, as_completed

        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address!r} ({exc}); start "
                             "it first or drop --scheduler") from None
        with client:
            logger.info("running on the Dask cluster at %s (%d workers)", address,
                        len(client.scheduler_info()["workers"]))
            futures = client.compute(tasks)
            total = 0
            for future in as_completed(futures):
                total += int(future.result())
                bar.update(1)
            return total
    finally:
        bar.close()


# --------------------------------------------------------------------------- provenance
def file_sha256(path) -> str:
    """SHA-256 of a file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict:
    """Versions of brainexpr and the packages that shape the values."""
    from importlib import metadata

    from .._version import __version__

    versions = {"brainexpr": __version__, "python": platform.python_version()}
    for name in _PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# --------------------------------------------------------------------------- accuracy
def heldout_accuracy(model, values, atlas, tissue_image=None, n_folds: int = 5,
                     max_voxels: int = 200, random_state=0) -> np.ndarray:
    """Per-gene leave-parcels-out Pearson r of a parcel-kriging model's settings.

    Every parcel of the regional table is predicted by the same model (same parameters)
    fitted on the other parcels (``n_folds`` random folds,
    :func:`brainexpr.evaluation.parcel_cv.predict_held_out_parcels`); r is computed per
    gene across the held-out parcels.

    Returns
    -------
    (n_genes,) float array
    """
    from ..evaluation.metrics import gene_metrics
    from ..evaluation.parcel_cv import (fit_on_parcels, parcel_folds, parcel_setup,
                                        predict_held_out_parcels)

    setup = parcel_setup(atlas.image, atlas.regions, values.index, tissue_image,
                         max_voxels=max_voxels, random_state=random_state)
    folds = parcel_folds(values.index, n_folds, random_state=random_state)
    predictions = predict_held_out_parcels(values, setup, folds,
                                           lambda train: fit_on_parcels(model, train, setup),
                                           label="parcel-kriging")
    scores = gene_metrics(predictions.to_numpy(float), values.to_numpy(float), values.columns)
    return scores["pearson"].to_numpy(float)


# --------------------------------------------------------------------------- workflow
@dataclass
class BuildResult:
    """What :func:`build_atlas` did.

    Attributes
    ----------
    path : Path
    n_blocks : int
        Blocks of the store.
    n_computed : int
        Blocks computed by this call (the others were done by an earlier, interrupted one).
    seconds : float
    """

    path: Path
    n_blocks: int
    n_computed: int
    seconds: float


def _fit_for_atlas(source, model, genes, gene_set, atlas, stage, random_state, data_dir):
    """Fit the atlas model on a source; returns (estimator, training data of a regional
    source or None, source used)."""
    from ..workflows.models import fit_model, load_training_data, source_kind

    kind = source_kind(source)
    name, reason = ATLAS_MODELS[kind] if model == "auto" else (model, "requested")
    if source == "regional" and genes is None and gene_set == "all":
        from ..datasets import load_regional_expression

        genes = list(load_regional_expression(data_dir=data_dir).columns)
    elif gene_set == "all" and not Path(str(source)).is_dir():   # CSVs: all their columns
        gene_set = "ad"
    logger.info("atlas model: %s (%s)", name, reason)
    estimator = fit_model(source=source, genes=genes, gene_set=gene_set, atlas=atlas,
                          model=name, out=Path(stage) / "fitted.pt", random_state=random_state,
                          data_dir=data_dir)
    estimator.provenance_["atlas_model_choice"] = {"requested": model, "model": name,
                                                   "reason": reason}
    # the values again only where the held-out accuracy refits them (parcel means)
    data = load_training_data(source, genes, gene_set, atlas, data_dir) if kind == "regions" \
        else None
    return estimator, data, source


def _source_files(source, data_dir) -> dict:
    """Checksums of the files a source reads."""
    from ..workflows.models import _source_file

    if source == "regional":
        from ..datasets.loaders import REGIONAL, _file

        files = [Path(_file(f"{REGIONAL}/gene_expression_data.csv", data_dir))]
    elif source == "celltypes":
        return {"celltypes": "reference data (see brainexpr fetch --list)"}
    elif Path(str(source)).is_dir():     # a `brainexpr ahba` output: the files fitted on
        from ..ahba.io import PROCESSED_FILES

        files = [Path(source) / PROCESSED_FILES[k] for k in ("samples", "expression", "genes")]
    else:
        files = [_source_file(source)]
    return {str(f): file_sha256(f) for f in files if Path(f).is_file()}


@fill_doc
def build_atlas(*, out="atlas.zarr", source: str = "regional", model: str = "auto",
                model_file=None, genes=None, gene_set: str = "all", atlas: str = "dk83",
                resolution: int | None = 2, mask="brain", dtype: str = "float16",
                chunks=S.DEFAULT_CHUNKS, std: bool = False, accuracy: bool = True,
                scheduler: str | None = None, n_workers: int | None = None,
                random_state: int | None = 0, data_dir=None) -> BuildResult:
    """Build (or resume) a gene atlas: every gene of a source on every voxel of a mask.

    Parameters
    ----------
    out : path-like
        The Zarr v3 store (a folder). An existing complete store is refused; an incomplete
        one written by the same settings is resumed; a folder that is not a store of this
        build is refused, never overwritten.
    source : str
        ``regional`` (the DK-83 table), ``celltypes``, a sample or regional CSV, or a
        ``brainexpr ahba`` output folder (see :func:`brainexpr.workflows.models.load_training_data`).
        Ignored with ``model_file``.
    model : str
        ``auto`` (:data:`ATLAS_MODELS`: parcel kriging for parcel means, donor kriging
        for sample sites) or a name of :func:`brainexpr.models.registry.workflow_models`.
    model_file : path-like, optional
        An existing model file to evaluate instead of fitting one.
    genes : sequence of str, optional
        Genes to fit (default: ``gene_set``).
    gene_set : {"all", "ad", "l1000"}
        ``all``: every gene of the regional table (15,633) or of a sample table.
    atlas : str
        Atlas of a regional source.
    resolution, mask :
        The voxel grid (:func:`brainexpr.maps.dense.voxel_grid`): 2 mm brain mask by default.
    dtype : {"float16", "float32"}
        Stored value type; the largest float16 rounding error is measured per block and
        recorded (``float16_max_abs_error``).
    chunks : (int, int)
        Genes x voxels per chunk (= per compute block).
    std : bool
        Also store the model's standard deviation (kriging models, INR ensembles): a
        second array as large as the values, and for parcel kriging an evaluation that is
        no longer low-rank, so it is asked for, not the default.
    accuracy : bool
        Store the per-gene held-out r: parcel kriging of a regional table, 5 random folds
        of leave-parcels-out; donor kriging (sample sites), its trust score
        (:data:`TRUST_MEANING`, computed by the fit); other models get NaN.
    scheduler : str, optional
        Dask scheduler address (default ``$DASK_SCHEDULER_ADDRESS``, else local threads).
    n_workers : int, optional
        Threads of the local scheduler (default: one per core).
    random_state : int, optional
    %(data_dir)s

    Returns
    -------
    BuildResult
    """
    from ..models.registry import load_model
    from ..outputs import folder_lock

    start = time.perf_counter()
    out = Path(out)
    S.check_chunks(chunks)
    check_choice(dtype, S.DTYPES, "dtype")
    settings = {"source": None if model_file else str(source), "model": model,
                "model_file": str(model_file) if model_file else None,
                "genes": list(genes) if genes is not None else None, "gene_set": gene_set,
                "atlas": atlas, "resolution": resolution, "mask": str(mask), "dtype": dtype,
                "chunks": [int(c) for c in chunks], "std": std, "accuracy": accuracy,
                "random_state": random_state}
    with folder_lock(out):  # one builder at a time; leftovers of a killed one removed
        if out.exists():
            if not (out / "zarr.json").is_file():
                raise InputError(f"{out} exists and is not a gene-atlas store; choose another "
                                 "--out (brainexpr never writes into other folders or files)")
            root = S.open_group(out)
            if root.attrs.get("complete"):
                raise InputError(f"{out} is a complete atlas already; choose another --out or "
                                 "remove it")
            if root.attrs.get("settings") != settings:
                raise InputError(f"{out} is an unfinished atlas built with other settings; resume it "
                                 "with the same arguments or choose another --out")
            logger.info("resuming the unfinished atlas %s", out)
            estimator = load_model(out / S.MODEL_FILE)
        else:
            estimator = _create(out, settings, source, model, model_file, genes, gene_set, atlas,
                                resolution, mask, dtype, chunks, std, accuracy, random_state,
                                data_dir)
        root = S.open_group(out)
        evaluator = make_evaluator(estimator, "std" in root)
        blocks = pending_blocks(root)
        layout = S.layout_of(root)
        n_blocks = layout.shape[0] * layout.shape[1]
        logger.info("%d genes x %d voxels: %d of %d blocks to compute (%s chunks %s)",
                    layout.n_genes, layout.n_voxels, len(blocks), n_blocks, dtype,
                    [layout.gene_chunk, layout.voxel_chunk])
        started = time.perf_counter()
        computed = run_graph(build_graph(out, evaluator, blocks), scheduler, n_workers)
        block_seconds = time.perf_counter() - started
        if pending_blocks(root):
            raise RuntimeError(f"{len(pending_blocks(root))} blocks of {out} are still missing")
        seconds = time.perf_counter() - start
        S.finalize_store(out, {"build_seconds_last_run": seconds,
                               "block_seconds_last_run": block_seconds})
        from .query import parcellate_atlas

        parcellate_atlas(out, "dk83", data_dir=data_dir)   # cached in the store for `atlas match`
        logger.info("atlas %s complete: %d blocks (%d computed now) in %.1f s", out, n_blocks,
                    computed, seconds)
        return BuildResult(out, n_blocks, computed, seconds)


def _summary(estimator) -> dict:
    from ..workflows.models import fit_summary

    return fit_summary(estimator)


def _create(out, settings, source, model, model_file, genes, gene_set, atlas, resolution, mask,
            dtype, chunks, std, accuracy, random_state, data_dir):
    """Fit (or load) the model and create the empty store with its model file, in a staging
    folder moved into place when complete; returns the fitted estimator."""
    import shutil
    import tempfile

    from ..maps.dense import model_trust, voxel_grid
    from ..models.registry import load_model, save_model
    from ..models.parcel import ParcelKrigingRegressor
    from ..models.registry import model_name
    from ..workflows.models import _tissue_image_for

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        fit_start = time.perf_counter()
        if model_file is not None:
            estimator, data = load_model(model_file), None
            sources = {str(model_file): file_sha256(model_file)}
        else:
            estimator, data, used = _fit_for_atlas(source, model, genes, gene_set, atlas, stage,
                                                   random_state, data_dir)
            sources = _source_files(used, data_dir)
        fit_seconds = time.perf_counter() - fit_start
        evaluator = make_evaluator(estimator, std)
        grid = voxel_grid(mask, resolution, data_dir)
        scores, meaning = None, "not measured for this model"
        if (accuracy and data is not None and data.kind == "regions"
                and isinstance(estimator, ParcelKrigingRegressor)):
            logger.info("held-out accuracy of %d genes (5 random folds of parcels)",
                        len(evaluator.genes))
            scores = heldout_accuracy(estimator, data.values, data.atlas,
                                      _tissue_image_for(data.atlas.image, data_dir),
                                      random_state=random_state)
            meaning = "leave-parcels-out Pearson r, 5 random folds of parcels"
        elif accuracy and np.isfinite(model_trust(estimator, evaluator.genes)).any():
            scores = model_trust(estimator, evaluator.genes)
            meaning = TRUST_MEANING.format(block=estimator.trust_block_mm,
                                           sites=estimator.max_selection_sites)
        name = model_name(estimator)
        provenance = dict(getattr(estimator, "provenance_", None) or {})
        provenance.pop("genes", None)      # the store's gene array lists them
        attrs = {"settings": settings,
                 "model": {"name": name, "summary": S.provenance_json(_summary(estimator)),
                           "file": S.MODEL_FILE, "rank": getattr(evaluator, "rank", None),
                           "fit_seconds": fit_seconds},
                 "provenance": S.provenance_json(
                     {**provenance, "source_sha256": sources, "packages": package_versions(),
                      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}),
                 "accuracy": meaning}
        store = stage / "store"
        S.create_store(store, evaluator.genes, grid, dtype=dtype, chunks=chunks,
                       with_std=evaluator.has_std, accuracy=scores, attrs=attrs)
        save_model(estimator, store / S.MODEL_FILE, name=name,
                   provenance=getattr(estimator, "provenance_", None))
        os.replace(store, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return estimator
