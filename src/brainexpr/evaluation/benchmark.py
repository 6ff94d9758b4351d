"""Side-by-side comparison of interpolation methods on held-out data.

:func:`run_benchmark` fits every method under every protocol of
:mod:`brainexpr.evaluation.protocols` and scores it with
:mod:`brainexpr.evaluation.metrics`:

``blocked``
    Spatially blocked K-fold with an exclusion buffer; scored at the held-out sites
    against the observed values and, on phantoms, against the ground truth there.
``donor``
    Leave-one-donor-out; scored per held-out donor at its sites (sample level) and on
    its regional profile (DK-83 region means of its samples), next to the ceiling
    ``sqrt(DS)`` implied by the between-donor reproducibility. On phantoms the oracle
    (the population truth itself) is scored too.
``parcels``
    Leave-parcels-out; the regional value of a held-out parcel is the mean prediction at
    its sample sites, scored across parcels against the observed regional means and, on
    phantoms, against the true parcel means.
``genes``
    Leave-genes-out; withheld genes are predicted from their gene-axis position (models
    without a gene-axis input interpolate their neighbours' maps along the axis).
``map``
    Phantoms only: fit on all samples, predict at brain voxels (2 mm), score against the
    truth within the brain mask; regional agreement (per-gene R over DK-83 regions and
    the aggregate R) against the true and the abagen-style regional values; and the
    reference study's whole-volume R with background zeros, to show its inflation.

Methods are looked up by name in :data:`METHODS` (``name -> Method``: a model of
:data:`brainexpr.models.registry.MODELS` with its settings, a description and the
protocols the method runs in). Models that declare ``capabilities.donors`` receive the
donor of every training site. Scripts in ``benchmarks/`` add methods of models outside the
package with :func:`register_method` (e.g. ``benchmarks/inr_variants.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..datasets.validate import check_choices as check_names  # noqa: F401 (workflows use it)
from ..docstrings import fill_doc
from ..maps.dense import has_uncertainty
from ..models.base import fit_samples
from ..models.baselines import STD_KINDS
from ..utils import check_random_state, progress
from . import metrics as M
from .protocols import (interpolate_along_axis, leave_genes_out, leave_one_donor_out,
                        leave_parcels_out, map_voxels_for_scoring, reproducibility_ceiling,
                        spatial_block_folds)

logger = logging.getLogger(__name__)

COORD_COLUMNS = ["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]
PROTOCOLS = ("blocked", "donor", "parcels", "genes", "map")


# --------------------------------------------------------------------------- methods
#: INR settings of the benchmark methods (CPU budget; ``quick`` shortens training only;
#: the design is the registry model of :data:`METHODS`). The paper's configuration keeps
#: its architecture and learning rate; its step count is limited by CPU time and stated in
#: every report.
INR_SETTINGS = {
    "inr-paper": dict(n_layers=12, hidden_features=512, learning_rate=1e-4,
                      max_steps=300, batch_size=8, eval_every=50, patience=3),
    "inr-per-gene": dict(n_layers=3, hidden_features=32, learning_rate=1e-3,
                         max_steps=300, eval_every=50, patience=3),
    "inr-factorized": dict(n_layers=4, hidden_features=128, n_features=32,
                           learning_rate=1e-3, max_steps=300, eval_every=50, patience=3),
    "inr-ensemble": dict(n_layers=4, hidden_features=128, n_features=32,
                         learning_rate=1e-3, max_steps=300, eval_every=50, patience=3, n_ensemble=3),
}
_QUICK_STEPS = {"inr-paper": 4, "inr-per-gene": 20, "inr-factorized": 30, "inr-ensemble": 12}


def _inr_settings(name):
    def settings(quick):
        params = dict(INR_SETTINGS[name])
        if quick:
            params["max_steps"] = _QUICK_STEPS[name]
            params["eval_every"] = max(params["max_steps"] // 2, 1)
        return params

    return settings


@dataclass(frozen=True)
class Method:
    """A benchmarked method: a model of the registry with its settings.

    Attributes
    ----------
    model : str
        Name in :data:`brainexpr.models.registry.MODELS` (what the method fits).
    description : str
    protocols : tuple of str
        The protocols the method runs in.
    params : dict or callable
        Parameters of the model; a callable ``params(quick) -> dict`` when a quick run
        changes them. ``random_state`` is set for every model that takes one.
    """

    model: str
    description: str
    protocols: tuple = PROTOCOLS
    params: object = field(default_factory=dict)

    def factory(self, quick: bool, random_state):
        """An unfitted estimator of this method (``quick``: the shortened settings)."""
        from ..models.registry import make_model

        params = self.params(quick) if callable(self.params) else dict(self.params)
        estimator = make_model(self.model, **params)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=random_state)
        return estimator


_SITES = ("blocked", "donor")
#: name -> Method. Slow INR designs run in fewer protocols (CPU budget); the tables say so.
METHODS = {
    "nearest": Method("nearest", "value of the nearest sample site"),
    "knn": Method("knn", "inverse-distance weighting of the 10 nearest sites, no mirroring",
                  params=dict(n_neighbors=10)),
    "abagen": Method("knn", "abagen's get_interpolated_map: every site also copied to x -> -x "
                            "(lr_mirror='bidirectional'), then 1/distance weights of the 10 nearest",
                     params=dict(n_neighbors=10, power=1.0, mirror="bidirectional")),
    "kriging": Method("kriging", "ordinary kriging, one fitted exponential variogram with nugget"),
    "kriging-mirrored": Method("kriging", "the same kriging on the sites and their mirror images "
                                          "(x -> -x)", params=dict(mirror="bidirectional")),
    "donor-kriging": Method("donor-kriging", "ours: universal kriging with donor effects, tissue "
                                             "and covariate drift, learned left-right symmetry "
                                             "and per-gene hyperparameters"),
    "donor-kriging-asymmetric": Method("donor-kriging", "donor kriging without the symmetry term "
                                                        "and the covariate drift (the default "
                                                        "before issue 12)", _SITES,
                                       params=dict(symmetry_grid=(0.0,), tissue_probability_mm=None,
                                                   coordinate_trend=None)),
    "inr-per-gene": Method("per_gene", "one SIREN per gene (3 x 32, lr 1e-3, 300 steps)",
                           ("blocked",), _inr_settings("inr-per-gene")),
    "inr-paper": Method("paper", "the paper's joint SIREN: 12 x 512, lr 1e-4, gene axis; at most "
                                 "300 steps of 8 sites, early stopping (CPU budget)",
                        _SITES + ("genes",), _inr_settings("inr-paper")),
    "inr-factorized": Method("factorized", "factorized SIREN (4 x 128 trunk, 32 features, gene "
                                           "axis, lr 1e-3, 300 steps)",
                             _SITES + ("genes", "map"), _inr_settings("inr-factorized")),
    "inr-ensemble": Method("factorized", "3 factorized SIRENs averaged", ("blocked",),
                           _inr_settings("inr-ensemble")),
}

#: Methods run only when named (``--methods``): not in the default or quick runs.
OPTIONAL_METHODS = ("donor-kriging-asymmetric",)
#: The methods of a default run.
DEFAULT_METHODS = tuple(m for m in METHODS if m not in OPTIONAL_METHODS)


def register_method(name: str, method: Method, overwrite: bool = False) -> None:
    """Add a benchmark method under ``name`` (run only when named, never by default).

    The way scripts in ``benchmarks/`` benchmark models that are not part of the package
    (their model is added with :func:`brainexpr.models.registry.register_model`).

    Parameters
    ----------
    name : str
        The method's name in every output table.
    method : Method
    overwrite : bool
        Replace an existing entry instead of raising.
    """
    if name in METHODS and not overwrite:
        raise ValueError(f"benchmark method {name!r} is already registered")
    METHODS[name] = method


def check_methods(methods) -> list[str]:
    """Validate method names against :data:`METHODS`."""
    return check_names(methods, METHODS, "methods")


def check_protocols(protocols) -> list[str]:
    """Validate protocol names against :data:`PROTOCOLS`."""
    return check_names(protocols, PROTOCOLS, "protocols")


# --------------------------------------------------------------------------- data
@dataclass
class BenchmarkData:
    """Sample-level data to benchmark on.

    Attributes
    ----------
    name : str
        ``phantom`` or ``celltypes`` (used in every output table).
    samples : pandas.DataFrame
        Sample table (:func:`brainexpr.datasets.load_samples` columns and ``tissue_class``),
        one row per site.
    values : pandas.DataFrame
        (n_sites, n_genes) values in the same row order.
    gene_axis : (n_genes,) array or None
        Gene-axis positions (given to every model; needed by the ``genes`` protocol).
    phantom : Phantom or None
        The generator output when the truth is known.
    truth_at_sites : pandas.DataFrame or None
        Ground truth at the sites (phantoms), same rows and columns as ``values``.
    """

    name: str
    samples: pd.DataFrame
    values: pd.DataFrame
    gene_axis: np.ndarray | None = None
    phantom: object | None = None
    truth_at_sites: pd.DataFrame | None = None

    def subsample(self, n_sites: int, random_state=None) -> "BenchmarkData":
        """A random subset of ``n_sites`` sites (the same share from every donor)."""
        if n_sites >= len(self.values):
            return self
        rng = check_random_state(random_state)
        fraction = n_sites / len(self.values)
        rows = np.sort(np.concatenate([
            rng.choice(idx, size=max(int(round(fraction * len(idx))), 2), replace=False)
            for idx in pd.Series(np.arange(len(self.values))).groupby(self.donors).groups.values()]))
        take = lambda t: None if t is None else t.iloc[rows].reset_index(drop=True)  # noqa: E731
        return BenchmarkData(self.name, take(self.samples), take(self.values), self.gene_axis,
                             self.phantom, take(self.truth_at_sites))

    @property
    def coords(self) -> np.ndarray:
        return self.samples[COORD_COLUMNS].to_numpy(float)

    @property
    def tissue(self) -> np.ndarray:
        return self.samples["tissue_class"].to_numpy(float)

    @property
    def donors(self) -> np.ndarray:
        return self.samples["donor"].to_numpy(object)

    @property
    def regions(self) -> np.ndarray:
        return self.samples["dk_region"].to_numpy(object)

    @property
    def genes(self) -> list[str]:
        return [str(c) for c in self.values.columns]


def phantom_data(phantom) -> BenchmarkData:
    """Benchmark data from a :class:`~brainexpr.evaluation.phantom.Phantom`."""
    return BenchmarkData("phantom", phantom.samples.reset_index(drop=True),
                         phantom.values.reset_index(drop=True), phantom.gene_axis, phantom,
                         phantom.truth_at_sites.reset_index(drop=True))


def celltype_data(data_dir=None) -> BenchmarkData:
    """Benchmark data from the real AHBA cell-type fractions (no voxel ground truth)."""
    from ..atlas.tissue import with_tissue_class
    from ..datasets import load_sample_celltypes

    samples, values = load_sample_celltypes(data_dir)
    samples = with_tissue_class(samples, data_dir)
    return BenchmarkData("celltypes", samples.reset_index(drop=True), values.reset_index(drop=True))


# --------------------------------------------------------------------------- results
@dataclass
class BenchmarkResult:
    """Tables (and a few arrays for figures) produced by :func:`run_benchmark`.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Long table, one row per (dataset, method, protocol, target, gene): ``pearson``,
        ``spearman``, ``mse``, ``r2``, ``n``, ``ds`` (reproducibility of the gene) and
        ``ds_bin``. Targets: ``observed`` (held-out sample values), ``truth`` (phantom
        ground truth), ``regional_observed`` / ``regional_truth`` (regional profiles),
        ``whole_volume_truth`` (the inflated whole-grid R, ``pearson`` only).
    aggregate : pandas.DataFrame
        The paper's aggregate regional R: (dataset, method, protocol, target, aggregate_r).
    timings : pandas.DataFrame
        (dataset, method, protocol, n_fits, fit_s, predict_s).
    ceilings : pandas.DataFrame
        Per (dataset, gene): ``ds`` and ``ceiling`` = sqrt(DS).
    calibration : pandas.DataFrame
        Methods with a ``predict_std``, blocked and donor protocols: one row per
        (dataset, method, protocol, target, kind, gene) with the columns of
        :func:`~brainexpr.evaluation.metrics.calibration_metrics`, pooled over the
        held-out sites of all folds. ``kind`` ``sample`` (a new donor's value: nugget and
        donor deviation included) is scored against the held-out observations,
        ``population`` (the field) against the phantom truth.
    held_out : pandas.DataFrame
        Blocked-protocol predictions at held-out sites for the scatter figure (dataset,
        method, gene, predicted, observed, truth), a subsample.
    slices : dict
        ``{"truth": {name: 2-D array}, method: {...}}`` slices of one phantom gene.
    settings : dict
    """

    metrics: pd.DataFrame
    aggregate: pd.DataFrame
    timings: pd.DataFrame
    ceilings: pd.DataFrame
    held_out: pd.DataFrame
    slices: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def summary(self) -> dict:
        """Headline numbers as a flat, JSON-compatible dict.

        ``quick``, ``wall_time_s``, ``n_methods`` and, for every dataset, protocol and
        target scored, the mean per-gene Pearson r of each method
        (``"phantom/blocked/truth/kriging": 0.65``).
        """
        out = {"quick": bool(self.settings.get("quick", False)),
               "n_methods": len(self.settings.get("methods", [])),
               "wall_time_s": float(self.settings.get("wall_time_s", float("nan")))}
        if len(self.metrics):
            means = self.metrics.groupby(["dataset", "protocol", "target", "method"], sort=False)["pearson"].mean()
            out.update({"/".join(key): round(float(value), 4) for key, value in means.items()
                        if np.isfinite(value)})
        return out

    def summary_table(self) -> pd.DataFrame:
        """Mean/median/SD of each metric by dataset, method, protocol and target, with times."""
        table = M.summarise(self.metrics, ["dataset", "method", "protocol", "target"])
        times = self.timings.groupby(["dataset", "method"], sort=False)[["fit_s", "predict_s"]].sum()
        return table.join(times, on=["dataset", "method"])

    def by_reproducibility(self) -> pd.DataFrame:
        """Mean Pearson r by dataset, method, protocol, target and reproducibility bin."""
        table = self.metrics.dropna(subset=["ds_bin"])
        wide = (table.groupby(["dataset", "protocol", "target", "ds_bin", "method"], observed=True)
                ["pearson"].mean().unstack("method").reset_index())
        order = [m for m in pd.unique(self.metrics["method"]) if m in wide.columns]
        return wide[["dataset", "protocol", "target", "ds_bin"] + order]


# --------------------------------------------------------------------------- helpers
class _Timer:
    def __init__(self):
        self.fit = 0.0
        self.predict = 0.0
        self.fits = 0


def _fit(estimator, data, rows, timer, genes=None):
    values = data.values.iloc[rows] if genes is None else data.values.iloc[rows, genes]
    axis = None
    if data.gene_axis is not None:
        axis = data.gene_axis if genes is None else data.gene_axis[genes]
    start = time.perf_counter()
    fit_samples(estimator, data.coords[rows], values.to_numpy(float), tissue=data.tissue[rows],
                gene_axis=axis, donors=data.donors[rows])
    timer.fit += time.perf_counter() - start
    timer.fits += 1
    return estimator


def _predict(estimator, coords, tissue, timer, std_kind=None):
    start = time.perf_counter()
    if std_kind is None:
        out = estimator.predict(coords, tissue=tissue)
    else:
        out = estimator.predict_std(coords, tissue=tissue, kind=std_kind)
    timer.predict += time.perf_counter() - start
    return np.asarray(out, dtype=float)


def _calibration(data, method, protocol, prediction, spread, observed, truth_sites) -> list:
    """Calibration tables of one method and protocol (see :class:`BenchmarkResult`)."""
    pairs = [("observed", "sample", observed)]
    if truth_sites is not None:
        pairs.append(("truth", "population", truth_sites))
    out = []
    for target, kind, reference in pairs:
        table = _gene_frame(M.calibration_metrics(prediction, spread[kind], reference, data.genes))
        for column, value in (("kind", kind), ("target", target), ("protocol", protocol),
                              ("method", method), ("dataset", data.name)):
            table.insert(0, column, value)
        out.append(table)
    return out


def predict_at_axis(estimator, coords, tissue, positions, train_axis) -> np.ndarray:
    """Predict genes that were not fitted, from their gene-axis positions.

    Models that place genes on the gene axis (``uses_gene_axis``, from their declared
    ``capabilities.gene_axis``), e.g. :class:`~brainexpr.models.inr.INRRegressor` models
    with a gene-axis input, are evaluated at the new positions
    (:meth:`~brainexpr.models.inr.INRRegressor.predict_at_axis`); every other model
    predicts its fitted genes and interpolates linearly between the two neighbours of
    each new position (:func:`interpolate_along_axis`).

    Returns
    -------
    (n_points, n_new) array
    """
    positions = np.asarray(positions, dtype=float)
    if estimator.uses_gene_axis:
        return np.asarray(estimator.predict_at_axis(coords, positions, tissue=tissue), dtype=float)
    known = np.asarray(estimator.predict(coords, tissue=tissue), dtype=float)
    return interpolate_along_axis(train_axis, known, positions)


def _rows(dataset, method, protocol, target, table, ds):
    table = table.copy()
    table.insert(0, "target", target)
    table.insert(0, "protocol", protocol)
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    table["ds"] = ds.reindex(table["gene"]).to_numpy() if ds is not None else np.nan
    return table


def _gene_frame(metric_table):
    return metric_table.reset_index().rename(columns={"index": "gene"})


def _slice_points(data_dir, gene_axis_slices=None):
    """Voxels of three orthogonal 2 mm slices through the brain (x = -20, y = -18, z = 8 mm)."""
    from ..atlas.space import mni_grid, mni_to_voxel, voxel_to_mni
    from ..atlas.tissue import tissue_class_at
    from .phantom import brain_mask

    mask = brain_mask(2, data_dir)
    shape, affine = mni_grid(2)
    centre = mni_to_voxel(np.array([[-20.0, -18.0, 8.0]]), affine)[0]
    views = {}
    for axis, name in enumerate(("sagittal", "coronal", "axial")):
        index = [slice(None)] * 3
        index[axis] = int(centre[axis])
        plane = np.zeros(shape, dtype=bool)
        plane[tuple(index)] = True
        ijk = np.argwhere(plane & mask)
        views[name] = (ijk, tuple(np.delete(np.array(shape), axis)), axis)
    all_ijk = np.concatenate([v[0] for v in views.values()])
    coords = voxel_to_mni(all_ijk, affine)
    return views, coords, tissue_class_at(coords, data_dir=data_dir).astype(float)


def _fill_slices(views, values):
    out, start = {}, 0
    for name, (ijk, shape2d, axis) in views.items():
        plane = np.full(shape2d, np.nan)
        other = [a for a in range(3) if a != axis]
        plane[ijk[:, other[0]], ijk[:, other[1]]] = values[start:start + len(ijk)]
        out[name] = plane
        start += len(ijk)
    return out


# --------------------------------------------------------------------------- runner
@fill_doc
def run_benchmark(datasets, methods=DEFAULT_METHODS, protocols=PROTOCOLS, *, n_folds: int = 5,
                  block_size: float = 20.0, buffer: float = 8.0, map_voxels: int = 20_000,
                  min_region_voxels: int = 30, scatter_points: int = 3000, quick: bool = False,
                  random_state: int = 0, data_dir=None) -> BenchmarkResult:
    """Fit and score every method under every protocol on every dataset.

    Parameters
    ----------
    datasets : sequence of BenchmarkData
    methods : sequence of str
        Names in :data:`METHODS`.
    protocols : sequence of str
        Among :data:`PROTOCOLS`; ``genes`` runs only where a gene axis is known and ``map``
        only on phantoms.
    n_folds : int
        Folds of the blocked, parcel and gene protocols.
    block_size, buffer : float
        Block edge and exclusion buffer (mm) of the blocked protocol.
    map_voxels : int
        Uniformly drawn 2 mm brain voxels scored in the ``map`` protocol.
    min_region_voxels : int
        Extra voxels are drawn so that each DK-83 region has at least this many for its
        regional mean.
    scatter_points : int
        Held-out (site, gene) pairs kept per method for the scatter figure.
    quick : bool
        Short INR training (for ``--quick`` runs and tests).
    random_state : int
        Seeds splits, voxel draws and every model.
    %(data_dir)s

    Returns
    -------
    BenchmarkResult
    """
    methods = check_methods(methods)
    protocols = check_protocols(protocols)
    rng = check_random_state(random_state)
    metric_rows, aggregate_rows, timing_rows, ceiling_rows, scatter_rows = [], [], [], [], []
    calibration_rows = []
    slices = {}
    for data in datasets:
        observed = data.values.to_numpy(float)
        genes = data.genes
        ds = M.differential_stability(data.values, data.donors, data.regions)
        if data.phantom is not None:
            ds = pd.Series(data.phantom.genes["ds_target"].to_numpy(), index=genes)
        ceiling_rows.append(pd.DataFrame({"dataset": data.name, "gene": genes, "ds": ds.to_numpy(),
                                          "ceiling": reproducibility_ceiling(ds.to_numpy())}))
        truth_sites = None if data.truth_at_sites is None else data.truth_at_sites.to_numpy(float)
        splits = {
            "blocked": lambda: spatial_block_folds(data.coords, n_folds, block_size, buffer, random_state),
            "donor": lambda: leave_one_donor_out(data.donors),
            "parcels": lambda: leave_parcels_out(data.regions, n_folds, random_state),
        }
        cached_splits = {p: splits[p]() for p in protocols if p in splits}
        gene_splits = (leave_genes_out(data.gene_axis, n_folds, random_state)
                       if "genes" in protocols and data.gene_axis is not None else None)
        run_map = "map" in protocols and data.phantom is not None
        if run_map:
            map_coords, map_tissue, map_regions, n_uniform, n_background, n_mask = \
                map_voxels_for_scoring(map_voxels, min_region_voxels, rng, data_dir)
            map_truth = data.phantom.truth(map_coords)
            truth_regional = data.phantom.regional_truth()
            abagen_regional = M.abagen_regional(observed, data.donors, data.regions)
            abagen_regional.columns = genes
            views, slice_coords, slice_tissue = _slice_points(data_dir)
            example = int(np.argmax(data.phantom.genes["ds_target"].to_numpy() >= 0.7)) \
                if (data.phantom.genes["ds_target"] >= 0.7).any() else 0
            slices["gene"] = genes[example]
            slices["truth"] = _fill_slices(views, data.phantom.truth(slice_coords, genes=[example])[:, 0])
            # abagen-style regional values themselves, scored against the truth (a reference row)
            per_gene, agg = M.regional_agreement(abagen_regional, truth_regional)
            metric_rows.append(_rows(data.name, "abagen-style regional means", "map", "regional_truth",
                                     pd.DataFrame({"gene": per_gene.index, "pearson": per_gene.to_numpy()}), ds))
            aggregate_rows.append((data.name, "abagen-style regional means", "map", "regional_truth", agg))

        bar = progress(total=len(methods), desc=f"benchmark {data.name}")
        for method in methods:
            factory = METHODS[method].factory
            for protocol in protocols:
                if protocol not in METHODS[method].protocols:
                    continue
                timer = _Timer()
                if protocol in ("blocked", "donor", "parcels"):
                    prediction = np.full_like(observed, np.nan)
                    spread = {kind: np.full_like(observed, np.nan) for kind in STD_KINDS}
                    for split in cached_splits[protocol]:
                        estimator = _fit(factory(quick, random_state), data, split.train, timer)
                        prediction[split.test] = _predict(estimator, data.coords[split.test],
                                                          data.tissue[split.test], timer)
                        if protocol != "parcels" and has_uncertainty(estimator):
                            for kind in STD_KINDS:
                                spread[kind][split.test] = _predict(
                                    estimator, data.coords[split.test], data.tissue[split.test], timer,
                                    std_kind=kind)
                    _score_sites(protocol, data, method, prediction, observed, truth_sites, ds,
                                 cached_splits[protocol], metric_rows, aggregate_rows)
                    if np.isfinite(spread["sample"]).any():
                        calibration_rows.extend(_calibration(data, method, protocol, prediction, spread,
                                                             observed, truth_sites))
                    if protocol == "blocked":
                        scatter_rows.append(_scatter(data, method, prediction, observed, truth_sites,
                                                     scatter_points, rng))
                elif protocol == "genes" and gene_splits is not None:
                    prediction = np.full_like(observed, np.nan)
                    all_rows = np.arange(len(observed))
                    for split in gene_splits:
                        estimator = _fit(factory(quick, random_state), data, all_rows, timer, split.train)
                        start = time.perf_counter()
                        prediction[:, split.test] = predict_at_axis(
                            estimator, data.coords, data.tissue, data.gene_axis[split.test],
                            data.gene_axis[split.train])
                        timer.predict += time.perf_counter() - start
                    held = np.concatenate([s.test for s in gene_splits])
                    keep = np.zeros(len(genes), dtype=bool)
                    keep[held] = True
                    _add_metrics(metric_rows, data, method, "genes", "observed",
                                 np.where(keep, prediction, np.nan), observed, ds, keep)
                    if truth_sites is not None:
                        _add_metrics(metric_rows, data, method, "genes", "truth",
                                     np.where(keep, prediction, np.nan), truth_sites, ds, keep)
                elif protocol == "map" and run_map:
                    estimator = _fit(factory(quick, random_state), data, np.arange(len(observed)), timer)
                    predicted = _predict(estimator, map_coords, map_tissue, timer)
                    _score_map(data, method, predicted, map_truth, map_regions, n_uniform, n_background,
                               n_mask, truth_regional, abagen_regional, ds, metric_rows, aggregate_rows)
                    slices[method] = _fill_slices(views, _predict(estimator, slice_coords, slice_tissue,
                                                                  _Timer())[:, example])
                else:
                    continue
                timing_rows.append((data.name, method, protocol, timer.fits, timer.fit, timer.predict))
                logger.info("%s / %s / %s: %d fits, fit %.1f s, predict %.1f s", data.name, method,
                            protocol, timer.fits, timer.fit, timer.predict)
            bar.update()
        bar.close()
        if "donor" in protocols and truth_sites is not None:
            _score_sites("donor", data, "oracle (population truth)", truth_sites, observed, truth_sites,
                         ds, cached_splits["donor"], metric_rows, aggregate_rows)

    metrics = pd.concat(metric_rows, ignore_index=True) if metric_rows else pd.DataFrame()
    if len(metrics):
        metrics["ds_bin"] = M.reproducibility_bins(metrics["ds"])
    return BenchmarkResult(
        metrics=metrics,
        aggregate=pd.DataFrame(aggregate_rows, columns=["dataset", "method", "protocol", "target",
                                                        "aggregate_r"]),
        timings=pd.DataFrame(timing_rows, columns=["dataset", "method", "protocol", "n_fits", "fit_s",
                                                   "predict_s"]),
        ceilings=pd.concat(ceiling_rows, ignore_index=True),
        held_out=pd.concat(scatter_rows, ignore_index=True) if scatter_rows else pd.DataFrame(),
        slices=slices,
        calibration=pd.concat(calibration_rows, ignore_index=True) if calibration_rows else pd.DataFrame(),
        settings={"methods": methods, "protocols": protocols, "n_folds": n_folds,
                  "block_size": block_size, "buffer": buffer, "map_voxels": map_voxels,
                  "quick": quick, "random_state": random_state,
                  "method_descriptions": {m: METHODS[m].description for m in methods},
                  "method_protocols": {m: [p for p in protocols if p in METHODS[m].protocols]
                                       for m in methods},
                  "inr_settings": {m: INR_SETTINGS[m] for m in methods if m in INR_SETTINGS}},
    )


def _add_metrics(rows, data, method, protocol, target, prediction, reference, ds, keep=None):
    table = M.gene_metrics(prediction, reference, data.genes)
    if keep is not None:
        table = table[keep]
    rows.append(_rows(data.name, method, protocol, target, _gene_frame(table), ds))


def _score_sites(protocol, data, method, prediction, observed, truth_sites, ds, splits, rows, aggregates):
    if protocol == "blocked":
        _add_metrics(rows, data, method, protocol, "observed", prediction, observed, ds)
        if truth_sites is not None:
            _add_metrics(rows, data, method, protocol, "truth", prediction, truth_sites, ds)
        return
    if protocol == "donor":
        # per held-out donor, then averaged over donors (each donor is one replicate)
        sample_level, regional = [], []
        for split in splits:
            test = split.test
            sample_level.append(M.gene_metrics(prediction[test], observed[test], data.genes))
            pred_reg = M.regional_means(prediction[test], data.regions[test])
            obs_reg = M.regional_means(observed[test], data.regions[test])
            regional.append(M.regional_agreement(pred_reg, obs_reg)[0].to_numpy())
        mean = sum(t[["pearson", "spearman", "mse", "r2"]] for t in sample_level) / len(sample_level)
        mean["n"] = sum(t["n"] for t in sample_level)
        rows.append(_rows(data.name, method, protocol, "observed", _gene_frame(mean), ds))
        rows.append(_rows(data.name, method, protocol, "regional_observed",
                          pd.DataFrame({"gene": data.genes, "pearson": np.nanmean(regional, axis=0)}), ds))
        if truth_sites is not None and not method.startswith("oracle"):
            truth_level = [M.gene_metrics(prediction[s.test], truth_sites[s.test], data.genes) for s in splits]
            mean = sum(t[["pearson", "spearman", "mse", "r2"]] for t in truth_level) / len(truth_level)
            mean["n"] = sum(t["n"] for t in truth_level)
            rows.append(_rows(data.name, method, protocol, "truth", _gene_frame(mean), ds))
        return
    if protocol == "parcels":
        pred_reg = M.regional_means(prediction, data.regions)
        obs_reg = M.regional_means(observed, data.regions)
        pred_reg.columns = obs_reg.columns = data.genes
        per_gene, agg = M.regional_agreement(pred_reg, obs_reg)
        rows.append(_rows(data.name, method, protocol, "regional_observed",
                          pd.DataFrame({"gene": per_gene.index, "pearson": per_gene.to_numpy()}), ds))
        aggregates.append((data.name, method, protocol, "regional_observed", agg))
        if data.phantom is not None:
            truth_reg = data.phantom.regional_truth()
            per_gene, agg = M.regional_agreement(pred_reg, truth_reg)
            rows.append(_rows(data.name, method, protocol, "regional_truth",
                              pd.DataFrame({"gene": per_gene.index, "pearson": per_gene.to_numpy()}), ds))
            aggregates.append((data.name, method, protocol, "regional_truth", agg))


def _score_map(data, method, predicted, truth, regions, n_uniform, n_background, n_mask,
               truth_regional, abagen_regional, ds, rows, aggregates):
    uniform = slice(0, n_uniform)
    table = M.gene_metrics(predicted[uniform], truth[uniform], data.genes)
    rows.append(_rows(data.name, method, "map", "truth", _gene_frame(table), ds))
    inflated = M.whole_volume_r(predicted[uniform], truth[uniform], n_background, n_mask=n_mask)
    rows.append(_rows(data.name, method, "map", "whole_volume_truth",
                      pd.DataFrame({"gene": data.genes, "pearson": inflated}), ds))
    pred_reg = M.regional_means(predicted, regions)
    pred_reg.columns = data.genes
    for target, reference in (("regional_truth", truth_regional), ("regional_abagen_style", abagen_regional)):
        per_gene, agg = M.regional_agreement(pred_reg, reference)
        rows.append(_rows(data.name, method, "map", target,
                          pd.DataFrame({"gene": per_gene.index, "pearson": per_gene.to_numpy()}), ds))
        aggregates.append((data.name, method, "map", target, agg))


def _scatter(data, method, prediction, observed, truth_sites, n_points, rng):
    sites, genes = np.nonzero(np.isfinite(prediction))
    take = rng.choice(len(sites), size=min(n_points, len(sites)), replace=False)
    sites, genes = sites[take], genes[take]
    return pd.DataFrame({
        "dataset": data.name, "method": method, "gene": np.asarray(data.genes, dtype=object)[genes],
        "predicted": prediction[sites, genes], "observed": observed[sites, genes],
        "truth": truth_sites[sites, genes] if truth_sites is not None else np.nan,
    })
