"""Workflows ``benchmark_methods`` (every method side by side) and ``ablation_study`` (the
paper's Fig. 3 ablations), each written to a folder."""

from __future__ import annotations

import logging
import time

from ..errors import InputError
from ..evaluation.ablation import AXES, run_ablation
from ..evaluation.benchmark import (DEFAULT_METHODS, PROTOCOLS, celltype_data, check_methods,
                                    check_names, check_protocols, phantom_data, run_benchmark)
from ..evaluation.phantom import make_phantom
from ..reporting.ablation import write_ablation_outputs
from ..reporting.benchmark import write_benchmark_outputs
from ..outputs import check_output_folder, output_folder
from ..docstrings import fill_doc

logger = logging.getLogger(__name__)

#: Datasets a benchmark can run on.
DATASETS = ("phantom", "celltypes")

#: Settings of a full run and of a ``quick`` run (used where an argument is left as None).
PRESETS = {
    "full": {"n_genes": 24, "n_folds": 5, "map_voxels": 20_000, "max_sites": None,
             "phantom": {}},
    "quick": {"n_genes": 6, "n_folds": 3, "map_voxels": 3_000, "max_sites": 1_200,
              "phantom": {"n_basis": 3, "n_anchors": 4, "length_scales": (8.0, 16.0)}},
}


#: Settings of a full and a ``quick`` ablation (``--ablation``); ``inr`` overrides the paper's
#: INR (:data:`brainexpr.evaluation.ablation.PAPER_INR`) in every variant.
ABLATION_PRESETS = {
    "full": {"n_genes": 24, "n_folds": 5, "max_folds": None, "max_sites": None, "phantom": {},
             "inr": {"eval_every": 50}},
    "quick": {"n_genes": 3, "n_folds": 3, "max_folds": 1, "max_sites": 300,
              "phantom": PRESETS["quick"]["phantom"],
              "inr": {"max_steps": 10, "batch_size": 8, "eval_every": 5}},
}


def _load_datasets(datasets, n_genes, phantom_settings, max_sites, random_state, data_dir) -> list:
    """BenchmarkData of the named datasets (phantom first), subsampled to ``max_sites``."""
    data = []
    if "phantom" in datasets:
        phantom = make_phantom(n_genes, random_state=random_state, data_dir=data_dir, **phantom_settings)
        data.append(phantom_data(phantom))
    if "celltypes" in datasets:
        data.append(celltype_data(data_dir))
    if max_sites:
        data = [d.subsample(max_sites, random_state) for d in data]
    return data


@fill_doc
def benchmark_methods(out_dir="benchmark", *, methods=DEFAULT_METHODS, protocols=PROTOCOLS,
                      datasets=DATASETS, n_genes: int | None = None, n_folds: int | None = None,
                      block_size: float = 20.0, buffer: float = 8.0, map_voxels: int | None = None,
                      quick: bool = False, figures: bool = True, random_state: int = 0,
                      overwrite: bool = False, data_dir=None):
    """Compare interpolation methods on phantom and real data under held-out protocols.

    Parameters
    ----------
    out_dir : path-like
        Output folder (tables, figures, ``summary.md``; replaced only when complete).
    methods : sequence of str
        Names in :data:`brainexpr.evaluation.benchmark.METHODS`.
    protocols : sequence of str
        Among ``blocked``, ``donor``, ``parcels``, ``genes``, ``map``.
    datasets : sequence of {"phantom", "celltypes"}
        Phantom AHBA data with known truth, and/or the real cell-type fractions.
    n_genes : int, optional
        Phantom genes (default 24; 6 with ``quick``).
    n_folds : int, optional
        Folds of the blocked, parcel and gene protocols (default 5; 3 with ``quick``).
    block_size, buffer : float
        Block edge and exclusion buffer (mm) of the blocked protocol.
    map_voxels : int, optional
        Brain voxels (2 mm) scored for map accuracy (default 20,000; 3,000 with ``quick``).
    quick : bool
        A small run that checks the whole pipeline: 1,200 of the 3,702 sites, a small
        phantom, short INR training. Its numbers are not the benchmark's results.
    %(figures)s
    random_state : int
        Seeds the phantom, the splits and every model.
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    BenchmarkResult
    """
    methods = check_methods(methods)
    protocols = check_protocols(protocols)
    datasets = check_names(datasets, DATASETS, "datasets")
    check_output_folder(out_dir, "benchmark", overwrite)
    preset = PRESETS["quick" if quick else "full"]
    n_genes = preset["n_genes"] if n_genes is None else int(n_genes)
    n_folds = preset["n_folds"] if n_folds is None else int(n_folds)
    map_voxels = preset["map_voxels"] if map_voxels is None else int(map_voxels)
    start = time.perf_counter()
    data = _load_datasets(datasets, n_genes, preset["phantom"], preset["max_sites"], random_state, data_dir)
    with output_folder(out_dir, "benchmark", overwrite) as stage:
        result = run_benchmark(data, methods, protocols, n_folds=n_folds, block_size=block_size,
                               buffer=buffer, map_voxels=map_voxels,
                               min_region_voxels=10 if quick else 30, quick=quick,
                               random_state=random_state, data_dir=data_dir)
        result.settings.update({"datasets": datasets, "n_genes": n_genes,
                                "sites": {d.name: len(d.values) for d in data},
                                "wall_time_s": round(time.perf_counter() - start, 1)})
        if "phantom" in datasets:
            result.settings["phantom"] = data[0].phantom.settings
        write_benchmark_outputs(result, stage, figures=figures)
    logger.info("benchmark finished in %.0f s; results in %s", time.perf_counter() - start, out_dir)
    return result


@fill_doc
def ablation_study(out_dir="benchmark", *, axes=tuple(AXES), datasets=DATASETS,
                   n_genes: int | None = None, n_folds: int | None = None,
                   max_folds: int | None = None, max_sites: int | None = None,
                   max_steps: int | None = None, batch_size: int | None = None,
                   block_size: float = 20.0, buffer: float = 8.0, quick: bool = False,
                   figures: bool = True, random_state: int = 0, overwrite: bool = False, data_dir=None):
    """The paper's Fig. 3 ablations of its INR, scored on spatially held-out sites.

    Every value of every axis of :data:`brainexpr.evaluation.ablation.AXES` (learning
    rate, encoding frequencies, width, depth, added noise) is fitted on the training sites
    of spatially blocked folds and scored at the held-out ones (and against the truth on
    the phantom); the loss curves are kept (:func:`~brainexpr.evaluation.ablation.run_ablation`).

    Parameters
    ----------
    out_dir : path-like
        Output folder (``ablation_*.csv``, ``ablation.json``, ``ablation.md``, figures).
    axes : sequence of str
        Axes to run (default: all five).
    datasets : sequence of {"phantom", "celltypes"}
    n_genes : int, optional
        Phantom genes (default 24; 3 with ``quick``).
    n_folds : int, optional
        Folds of the blocked split (default 5; 3 with ``quick``).
    max_folds : int, optional
        Folds actually run (default all; 1 with ``quick``).
    max_sites : int, optional
        Random subset of sites, the same share per donor (default all; 300 with ``quick``).
    max_steps : int, optional
        Training steps of every variant (default: the paper's 5,000; 10 with ``quick``).
    batch_size : int, optional
        Sites per step (default: all training sites up to 65,536 (site, gene) pairs; 8
        with ``quick``).
    block_size, buffer : float
        Block edge and exclusion buffer (mm) of the blocked folds.
    quick : bool
        A run that checks the pipeline in seconds; its numbers are not results.
    %(figures)s
    random_state : int
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    AblationResult
    """
    datasets = check_names(datasets, DATASETS, "datasets")
    axes = check_names(axes, AXES, "ablation axes")
    for name, value in (("max_folds", max_folds), ("max_sites", max_sites), ("max_steps", max_steps),
                        ("batch_size", batch_size)):
        if value is not None and int(value) < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    check_output_folder(out_dir, "benchmark", overwrite)
    preset = ABLATION_PRESETS["quick" if quick else "full"]
    inr = dict(preset["inr"])
    inr.update({k: int(v) for k, v in (("max_steps", max_steps), ("batch_size", batch_size))
                if v is not None})
    n_genes = preset["n_genes"] if n_genes is None else int(n_genes)
    start = time.perf_counter()
    data = _load_datasets(datasets, n_genes, preset["phantom"],
                          preset["max_sites"] if max_sites is None else int(max_sites), random_state,
                          data_dir)
    with output_folder(out_dir, "benchmark", overwrite) as stage:
        result = run_ablation(data, {a: AXES[a] for a in axes}, inr=inr,
                              n_folds=preset["n_folds"] if n_folds is None else int(n_folds),
                              max_folds=preset["max_folds"] if max_folds is None else int(max_folds),
                              block_size=block_size, buffer=buffer, random_state=random_state)
        result.settings.update({"datasets": datasets, "n_genes": n_genes, "quick": quick,
                                "sites": {d.name: len(d.values) for d in data},
                                "wall_time_s": round(time.perf_counter() - start, 1)})
        write_ablation_outputs(result, stage, figures=figures)
    logger.info("ablation finished in %.0f s; results in %s", time.perf_counter() - start, out_dir)
    return result
