"""Workflow ``vae``: the cross-scale generative model, fitted and validated honestly.

Regional AHBA expression of the L1000 landmark genes on the 68 cortical Desikan-Killiany
regions is linked to a regional Alzheimer vulnerability map (default: ADNI AD atrophy)
by a graph-regularised VAE (:class:`brainexpr.models.vae.GraphVAERegressor`; Vaithianathan
2026). Next to the in-sample fit that the paper reports, the same run gives spatially
blocked cross-validation, a spatial-null test of the cross-validated r and the baselines of
imaging transcriptomics (PLS, ridge, PCA regression) on the same genes
(:mod:`brainexpr.analysis.vulnerability`). Everything is configured by the keyword
arguments of :func:`fit_vae`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..analysis.graphs import GRAPH_METHODS, LAPLACIANS, region_graph
from ..analysis.nulls import NULL_INPUTS, NULL_METHODS, generate_surrogates
from ..analysis.vulnerability import (BASELINES, CV_SCHEMES, VulnerabilityValidation,
                                      spatial_folds, validate_vulnerability)
from ..datasets import (load_gene_set, load_pathology_map, load_region_distances,
                        load_regional_expression)
from ..datasets.loaders import PATHOLOGY_GROUPS, PATHOLOGY_MEASURES
from ..datasets.validate import check_choice, check_choices
from ..docstrings import fill_doc
from ..errors import InputError
from ..models.vae import GraphVAERegressor, select_device
from ..outputs import check_output_folder, output_folder
from ..utils import atomic_write, jsonable

logger = logging.getLogger(__name__)

__all__ = ["GENE_SETS", "PAPER", "VaeResult", "fit_vae", "read_region_map"]

#: Gene-set names accepted by ``genes`` (``all``: every gene of the regional table).
GENE_SETS = ("l1000", "ad", "all")

#: The paper's numbers (abstract of arXiv:2606.05870), in-sample, on a non-public target.
PAPER = {
    "r": 0.9439, "r2": 0.8604, "p": "< 0.001 (parametric)", "regions": 68, "genes": 910,
    "target": "ADNI FreeSurfer cortical thinning, AD (n=426) vs NC (n=926); not public",
    "evaluation": "in-sample (no held-out regions reported)",
}

OUTPUT_MARKER = "vae_summary.json"
MODEL_NAME = "graph_vae"


@dataclass
class VaeResult:
    """What :func:`fit_vae` computed.

    Attributes
    ----------
    validation : VulnerabilityValidation
        ``table`` (one row per model: in-sample, blocked-CV and spatial-null numbers),
        ``predictions`` (per region), ``null_r`` and the models fitted on all regions.
    model : GraphVAERegressor
        The graph VAE fitted on all regions.
    programs : pandas.DataFrame
        (n_regions, n_components) program scores (latent means) per region.
    loadings : pandas.DataFrame
        (n_genes, n_components) gene loadings of the programs.
    top_genes : pandas.DataFrame
        Rows ``program, sign, rank, gene, loading``.
    target : pandas.Series
        The vulnerability map used, by region key.
    summary : dict
        Options, numbers, timings and the paper's numbers (written as ``vae_summary.json``).
    files : list of Path
        Files written (empty without ``out_dir``).
    """

    validation: VulnerabilityValidation
    model: GraphVAERegressor
    programs: pd.DataFrame
    loadings: pd.DataFrame
    top_genes: pd.DataFrame
    target: pd.Series
    summary: dict
    files: list = field(default_factory=list)


# --------------------------------------------------------------------------- inputs
def read_region_map(path, column=None, sheet=None, hemisphere=None) -> pd.Series:
    """Read a regional map from a CSV/TSV/xlsx: region names in the first column, values next.

    Parameters
    ----------
    path : path-like
        Region names of any Desikan-Killiany scheme (``L_bankssts``, ``Bankssts_L``,
        ``LT_BANKSSTS``, ``ctx-lh-bankssts``, ENIGMA's ``Laccumb``, abagen ids).
    column : str, optional
        Value column when the file has several.
    sheet : str or int, optional
        Sheet of an Excel workbook (default: the first).
    hemisphere : {"left", "right", "both"}, optional
        Hemisphere(s) that names without one (``"precuneus"``) describe.

    Returns
    -------
    pandas.Series
        Values by region key; rows without a finite value are dropped (with a warning).
    """
    from ..analysis.association import to_region_keys

    from ..datasets.loaders import read_region_table, select_value_column

    path = Path(path)
    values = select_value_column(read_region_table(path, "target map", sheet=sheet), column,
                                 path, "target map", "target_column (--target-column)")
    bad = values.index[~np.isfinite(values.to_numpy(dtype=float))]
    if len(bad):
        logger.warning("target map %s: %d region(s) without a numeric value dropped: %s",
                       path, len(bad), ", ".join(map(str, bad[:8])))
    series = to_region_keys(values.loc[np.isfinite(values.to_numpy(dtype=float))],
                            f"target map {path}", hemisphere=hemisphere)
    series.name = values.name
    return series.astype(float)


def _load_target(target, group, target_column, data_dir, sheet=None,
                 hemisphere=None) -> tuple[pd.Series, str]:
    if isinstance(target, pd.Series):
        from ..analysis.association import to_region_keys

        return (to_region_keys(target.astype(float), "target map", hemisphere=hemisphere),
                str(target.name or "target"))
    if target in PATHOLOGY_MEASURES:
        check_choice(group, PATHOLOGY_GROUPS, "group")
        series = load_pathology_map(target, group, data_dir=data_dir)
        return series, f"ADNI {group.upper()} {target}"
    if isinstance(target, (str, os.PathLike)) and (Path(target).suffix or os.path.isfile(target)):
        series = read_region_map(target, target_column, sheet=sheet, hemisphere=hemisphere)
        return series, f"{Path(target).name} ({series.name})"
    check_choice(target, PATHOLOGY_MEASURES, "target", or_else="a CSV file of region -> value")


def _genes(genes, data_dir) -> tuple[pd.DataFrame, str]:
    table = load_regional_expression(data_dir=data_dir)
    if isinstance(genes, str) and genes == "all":
        return table, "all genes of the regional table"
    if isinstance(genes, str) and genes in GENE_SETS:
        wanted, name = load_gene_set(genes, data_dir=data_dir), f"{genes} gene set"
    elif isinstance(genes, (str, os.PathLike)) and os.path.isfile(genes):
        with open(genes, encoding="utf-8") as handle:
            wanted = list(dict.fromkeys(line.strip() for line in handle if line.strip()))
        name = str(genes)
    else:
        check_choice(genes, GENE_SETS, "genes", or_else="a file with one gene symbol per line")
    present = [g for g in wanted if g in table.columns]
    if len(present) < 2:
        raise InputError(f"only {len(present)} of the {len(wanted)} genes of {name} are in the "
                         "regional expression table; check the gene symbols")
    if len(present) < len(wanted):
        logger.info("%d of %d genes of %s are absent from the regional table",
                    len(wanted) - len(present), len(wanted), name)
    return table[present], f"{name} ({len(present)} of {len(wanted)} in the regional table)"


def _cortical_regions(target: pd.Series, hemisphere: str = "both") -> list[str]:
    from ..analysis.association import restrict_to_covered_hemisphere, select_regions

    cortex = restrict_to_covered_hemisphere(select_regions("cortex", hemisphere), target.index)
    regions = [r for r in cortex if r in target.index]
    missing = [r for r in cortex if r not in target.index]
    if len(regions) < 20:
        raise InputError(f"the target map covers only {len(regions)} of the {len(cortex)} "
                         "cortical Desikan-Killiany regions analysed; at least 20 are needed")
    if missing:
        logger.warning("the target map lacks %d cortical region(s), analysed without them: %s",
                       len(missing), ", ".join(missing))
    ignored = [r for r in target.index if r not in set(cortex)]
    if ignored:
        logger.info("%d non-cortical region(s) of the target map are not analysed", len(ignored))
    return regions


@contextlib.contextmanager
def _blas_threads(n_threads):
    """Limit BLAS threads (numpy/scipy) inside the block when threadpoolctl is present."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn installs it
        yield
        return
    if n_threads is None:
        yield
        return
    with threadpool_limits(int(n_threads)):
        yield


def _parse_sizes(hidden_sizes) -> tuple[int, ...]:
    if isinstance(hidden_sizes, str):
        try:
            return tuple(int(h) for h in hidden_sizes.split(",") if h.strip())
        except ValueError:
            raise InputError(f"hidden_sizes must be comma-separated integers, got "
                             f"{hidden_sizes!r}") from None
    return tuple(int(h) for h in hidden_sizes)


def top_gene_table(loadings: pd.DataFrame, n_top: int = 20) -> pd.DataFrame:
    """The ``n_top`` genes with the largest positive and negative loading per program."""
    rows = []
    for program in loadings.columns:
        ordered = loadings[program].sort_values()
        for sign, genes in (("positive", ordered[::-1].head(n_top)),
                            ("negative", ordered.head(n_top))):
            for rank, (gene, value) in enumerate(genes.items(), start=1):
                rows.append({"program": program, "sign": sign, "rank": rank, "gene": gene,
                             "loading": float(value)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- workflow
@fill_doc
def fit_vae(out_dir=None, *, target="atrophy", group: str = "ad", target_column=None,
            sheet=None, hemisphere: str = "both", genes: str = "l1000", graph: str = "atlas", laplacian: str = "normalized",
            cv: str = "lobe", n_groups: int = 10, null_method: str = "variogram",
            n_nulls: int = 1000, n_nulls_vae: int = 100, baselines=("pls", "ridge", "pca"),
            n_components: int = 6, hidden_sizes=(32,), beta: float = 0.01,
            reconstruction_weight: float = 1.0, prediction_weight: float = 1.0,
            graph_weight: float = 0.1, prediction_graph_weight: float = 0.0,
            n_epochs: int = 300, learning_rate: float = 2e-2, n_top_genes: int = 20,
            figures: bool = True, device: str = "auto", n_threads: int | None = 1,
            random_state: int = 0, overwrite: bool = False, data_dir=None) -> VaeResult:
    """Fit the graph-regularised VAE and validate it against baselines and spatial nulls.

    Parameters
    ----------
    out_dir : path-like, optional
        Output folder (written atomically; a previous ``vae`` output is replaced). Without
        it nothing is written.
    target : {"atrophy", "tau", "abeta", "met"}, path or pandas.Series
        Vulnerability map: an ADNI group map (default AD atrophy; tau = AV1451 SUVR), a
        CSV/TSV of region -> value (any Desikan-Killiany naming), or a Series.
    group : {"ad", "lmci", "emci", "nc"}
        ADNI group of a built-in target.
    target_column : str, optional
        Value column of a target file with several columns.
    sheet : str or int, optional
        Sheet of an Excel (``.xlsx``) target (default: the first).
    hemisphere : {"both", "left", "right"}
        Cortical hemispheres analysed, and those that region names without one describe.
        A target that covers one hemisphere only is analysed on that hemisphere (with a
        warning), as in ``associate``.
    genes : {"l1000", "ad", "all"} or path
        Gene set (L1000 landmark genes: 916 of 978 are in the regional table), or a file
        with one symbol per line.
    graph : {"atlas", "distance", "connectome"}
        Region graph of the smoothness penalty (:mod:`brainexpr.analysis.graphs`).
    laplacian : {"normalized", "combinatorial"}
    cv : {"lobe", "distance", "random"}
        Held-out groups of the blocked CV (lobe x hemisphere by default; ``random`` ignores
        space and is for comparison only).
    n_groups : int
        Number of groups for ``cv="distance"`` or ``"random"``.
    null_method : {"variogram", "moran", "spin", "permutation", "none"}
        Surrogate targets of the spatial null (``spin``: rotations of the fsaverage5
        sphere).
    n_nulls : int
        Surrogates for the baselines (each costs about a fit of a linear model).
    n_nulls_vae : int
        Surrogates for the graph VAE (the first ``n_nulls_vae`` of the same set; each is a
        full blocked CV of the VAE, trained in one batched run).
    baselines : sequence of {"pls", "ridge", "pca"}
    n_components, hidden_sizes, beta, reconstruction_weight, prediction_weight,
    graph_weight, prediction_graph_weight, n_epochs, learning_rate :
        Parameters of :class:`~brainexpr.models.vae.GraphVAERegressor`.
    n_top_genes : int
        Genes per sign and program in ``top_genes.csv``.
    %(figures)s
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    n_threads : int or None
        CPU threads of torch and BLAS during the analysis (1 is fastest for these small
        problems; ``None`` leaves the libraries' settings).
    random_state : int
        Seed of the model fits and the surrogates.
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    VaeResult
    """
    started = time.perf_counter()
    timings = {}
    check_choice(null_method, (*NULL_METHODS, "none"), "null_method")
    check_choice(graph, GRAPH_METHODS, "graph")
    check_choice(laplacian, LAPLACIANS, "laplacian")
    check_choice(cv, CV_SCHEMES, "cv")
    baselines = [b.strip() for b in baselines.split(",") if b.strip()] if isinstance(
        baselines, str) else list(baselines)
    check_choices(baselines, BASELINES, "baselines")
    if int(n_nulls) < 0 or int(n_nulls_vae) < 0:
        raise InputError("n_nulls and n_nulls_vae must be >= 0")
    if int(n_top_genes) < 1:
        raise InputError(f"n_top_genes must be >= 1, got {n_top_genes}")
    if out_dir is not None:
        check_output_folder(out_dir, "vae", overwrite)
    estimator = GraphVAERegressor(
        n_components=n_components, hidden_sizes=_parse_sizes(hidden_sizes), beta=beta,
        reconstruction_weight=reconstruction_weight, prediction_weight=prediction_weight,
        graph_weight=graph_weight, prediction_graph_weight=prediction_graph_weight,
        laplacian=laplacian, n_epochs=n_epochs, learning_rate=learning_rate, device=device,
        n_threads=n_threads, random_state=random_state)
    estimator._check_params()
    select_device(device)  # a CUDA request without CUDA fails now, not after the data load

    # ---- data
    vulnerability, target_name = _load_target(target, group, target_column, data_dir,
                                              sheet=sheet, hemisphere=hemisphere)
    regions = _cortical_regions(vulnerability, hemisphere)
    expression, gene_description = _genes(genes, data_dir)
    expression = expression.loc[regions]
    constant = expression.columns[expression.std(axis=0) == 0]
    if len(constant):
        logger.info("dropping %d genes that are constant over the regions", len(constant))
        expression = expression.drop(columns=constant)
    y = vulnerability.loc[regions]
    adjacency = region_graph(regions, graph, data_dir=data_dir)
    folds = spatial_folds(regions, cv, n_groups=n_groups, data_dir=data_dir,
                          random_state=random_state)
    timings["data_s"] = time.perf_counter() - started

    with _blas_threads(n_threads):
        surrogates = None
        n_total = max(int(n_nulls), int(n_nulls_vae)) if null_method != "none" else 0
        if n_total > 0:
            tick = time.perf_counter()
            distances, options = None, {}
            if "distances" in NULL_INPUTS[null_method]:
                distances = load_region_distances(data_dir=data_dir).loc[regions, regions]
                distances = distances.to_numpy()
            if "regions" in NULL_INPUTS[null_method]:
                options = {"regions": regions, "data_dir": data_dir}
            surrogates = generate_surrogates(y.to_numpy(), distances, n_total,
                                             method=null_method, random_state=random_state,
                                             **options)
            timings["surrogates_s"] = time.perf_counter() - tick
        models = {MODEL_NAME: estimator, **{name: BASELINES[name]() for name in baselines}}
        tick = time.perf_counter()
        validation = validate_vulnerability(
            models, expression, y, folds, adjacency=adjacency, surrogates=surrogates,
            n_nulls={MODEL_NAME: int(n_nulls_vae), **{b: int(n_nulls) for b in baselines}})
        timings["validation_s"] = time.perf_counter() - tick

    model = validation.models[MODEL_NAME]
    programs = pd.DataFrame(model.transform(expression), index=expression.index,
                            columns=model.program_names())
    loadings = model.gene_loadings()
    top_genes = top_gene_table(loadings, int(n_top_genes))
    summary = _summary(validation, model, locals_=dict(
        target=target_name, group=group, genes=gene_description, n_genes=expression.shape[1],
        regions=regions, graph=graph, laplacian=laplacian, cv=cv, folds=folds,
        null_method=null_method, n_nulls=int(n_nulls), n_nulls_vae=int(n_nulls_vae),
        baselines=baselines, n_edges=int((adjacency.to_numpy() > 0).sum() // 2),
        random_state=random_state))

    files = []
    if out_dir is not None:
        tick = time.perf_counter()
        with output_folder(out_dir, "vae", overwrite) as stage:
            _write_tables(stage, validation, model, programs, loadings, top_genes, y, folds)
            if figures:
                _write_figures(stage, validation, model, programs, loadings, y, target_name,
                               data_dir)
            timings["outputs_s"] = time.perf_counter() - tick
            timings["total_s"] = time.perf_counter() - started
            summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
            from ..reporting.vae import vae_markdown

            with atomic_write(stage / "vae_report.md") as handle:
                handle.write(vae_markdown(summary, MODEL_NAME))
            with atomic_write(stage / OUTPUT_MARKER) as handle:
                json.dump(jsonable(summary), handle, indent=1)
            names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
        files = [Path(out_dir) / n for n in names]
        logger.info("wrote %d files to %s", len(files), out_dir)
    else:
        timings["total_s"] = time.perf_counter() - started
        summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    return VaeResult(validation=validation, model=model, programs=programs, loadings=loadings,
                     top_genes=top_genes, target=y, summary=jsonable(summary), files=files)


# --------------------------------------------------------------------------- outputs
def _summary(validation, model, locals_) -> dict:
    table = validation.table
    folds = locals_["folds"]
    return {
        "brainexpr_version": __version__,
        "target": locals_["target"],
        "regions": {"n": len(locals_["regions"]), "set": "cortical Desikan-Killiany"},
        "genes": {"n": locals_["n_genes"], "source": locals_["genes"]},
        "graph": {"method": locals_["graph"], "laplacian": locals_["laplacian"],
                  "edges": locals_["n_edges"]},
        "cv": {"scheme": locals_["cv"], "groups": int(folds.nunique()),
               "sizes": {str(k): int(v) for k, v in folds.value_counts().sort_index().items()}},
        "null": {"method": locals_["null_method"], "n_baselines": locals_["n_nulls"],
                 "n_vae": locals_["n_nulls_vae"]},
        "model": {k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in model.get_params().items()},
        "loss_terms": {k: float(v) for k, v in model.loss_terms_.iloc[0].items()},
        "validation": {name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
                       for name, row in table.iterrows()},
        "paper": PAPER,
        "random_state": locals_["random_state"],
    }


def _csv(frame: pd.DataFrame, path: Path, index: bool = True) -> None:
    with atomic_write(path, newline="") as handle:
        frame.to_csv(handle, float_format="%.6g", index=index)


def _write_tables(stage, validation, model, programs, loadings, top_genes, y, folds) -> None:
    _csv(validation.table, stage / "validation.csv")
    _csv(validation.predictions, stage / "predictions.csv")
    _csv(programs, stage / "programs.csv")
    _csv(loadings, stage / "gene_loadings.csv")
    _csv(top_genes, stage / "top_genes.csv", index=False)
    head = model.head_coefficients()
    terms = model.loss_terms_.iloc[0]
    weights = model._weights()
    loss = pd.DataFrame({"value": terms, "weight": [weights.get(k, np.nan) for k in terms.index]})
    loss.index.name = "term"
    _csv(loss, stage / "loss_terms.csv")
    _csv(model.loss_history_, stage / "loss_history.csv")
    _csv(head.to_frame(), stage / "program_head_weights.csv")
    model.save(stage / "graph_vae.pt")


def _write_figures(stage, validation, model, programs, loadings, y, target_name,
                   data_dir) -> None:
    from ..reporting import vae as figures
    from ..reporting.figures import save_figure

    folder = stage / "figures"
    save_figure(figures.plot_predicted_vs_observed(validation.predictions, MODEL_NAME,
                                                   target_name),
                folder / "predicted_vs_observed.png", formats=("png", "svg"))
    save_figure(figures.plot_validation_summary(validation.table, paper=PAPER),
                folder / "validation_summary.png", formats=("png", "svg"))
    save_figure(figures.plot_top_genes(loadings, n_top=10, head_weights=model.head_coefficients()),
                folder / "top_genes.png", formats=("png", "svg"))
    head = model.head_coefficients()
    maps = pd.concat([validation.predictions[["observed", f"{MODEL_NAME}_cv"]], programs],
                     axis=1)
    titles = [f"observed\n{target_name}", "predicted\n(blocked CV)",
              *[f"{p}\n(head {head[p]:+.2f})" for p in programs.columns]]
    observed = maps.iloc[:, :2].to_numpy(float)
    shared = (float(observed.min()), float(observed.max()))   # observed and predicted alike
    save_figure(figures.plot_surface_maps(
        maps, titles=titles, cmap=["viridis", "viridis", *["RdBu_r"] * programs.shape[1]],
        symmetric=[False, False, *[True] * programs.shape[1]],
        limits=[shared, shared, *[None] * programs.shape[1]], data_dir=data_dir),
        folder / "program_maps.png", formats=("png",), dpi=120)
