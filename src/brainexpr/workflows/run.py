"""The main job: gene axis -> fit -> dense maps -> regional tables -> comparison with the
abagen-style table -> disease association -> cross-scale VAE -> held-out accuracy -> report.

Each step lives in its own folder under the output folder and is redone only when its
inputs changed (:mod:`brainexpr.workflows.steps`). The keyword arguments of
:func:`run_main` are the whole configuration; a TOML config file sets any of them.
The fit step's model follows the source by default (``model="auto"``): the factorized INR
for the regional table, donor kriging for sample-level sources (see :func:`run_main`).

One pass: :func:`plan_run` checks the options once and resolves the model
(:class:`RunPlan`); :func:`execute_run` runs the steps. The fit reads the gene axis that
the gene-axis step wrote, and the fitted estimator goes on to the maps and regional steps
as it is (its model file is read only when the fit step is reused).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..outputs import claimed_folder
from ..utils import atomic_write
from .config import write_config
from .steps import StepResult, run_step

logger = logging.getLogger(__name__)

#: The five genes the reference study shows in its Fig. 4 (1 mm maps by default).
SHOWCASE_GENES = ["ANK3", "SIRPA", "TSPOAP1", "PRNP", "APOE"]
#: Surface on which the 1 mm genes are also mapped (``maps/fsaverage5/*.func.gii``).
SURFACE_SPACE = "fsaverage5"
GENE_SETS = ("ad", "ad114", "l1000")
SOURCES = ("regional", "celltypes")
BENCHMARK_MODES = ("quick", "none")
#: Reference datasets the main job reads (``brainnetome-246`` too for that atlas).
RUN_DATASETS = ("regional-dk83", "atlas-dk83", "abagen-samples", "ahba-samples", "ahba-celltypes",
                "mni152-fsl", "adni-pathology", "ad-genes", "open-targets-ad", "l1000")


def prepare_data(atlas: str = "dk83", data_dir=None, offline=None) -> list[str]:
    """Download the reference datasets the main job needs when they are missing.

    Says what and how much it downloads before it starts (log), and with ``offline``
    (default ``BRAINEXPR_OFFLINE``) raises one line listing the missing datasets instead.

    Returns
    -------
    list of str
        The datasets that were downloaded.
    """
    from .data import ensure_datasets

    names = RUN_DATASETS + (("brainnetome-246",) if atlas == "brainnetome246" else ())
    return ensure_datasets(names, data_dir=data_dir, offline=offline)


#: Everything ``run`` may write at the top of its output folder (its manifest entries).
OUTPUT_ENTRIES = ("config.toml", "run.log", "summary.json", "report_options.json", "data",
                  "gene_axis", "fit", "maps", "regional", "associate", "gene_atlas", "vae",
                  "benchmark", "report", "viewer")
#: Gene sets of the ``gene_atlas`` step (``none`` skips it).
GENE_ATLAS_SETS = ("l1000", "ad", "ad114", "all", "none")


@dataclass
class RunSummary:
    """What the main job did: its steps (folder, reuse, seconds) and key numbers."""

    out_dir: Path
    steps: list[StepResult] = field(default_factory=list)
    report: Path | None = None
    viewer: Path | None = None
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable summary, one line per step plus the main outputs."""
        rows = [f"brainexpr run finished in {self.seconds:.0f} s; outputs in {self.out_dir}"]
        for step in self.steps:
            state = "reused" if step.reused else f"{step.seconds:.0f} s"
            rows.append(f"  {step.name:<12} {state:>8}  {step.folder}")
        if self.report:
            rows.append(f"  report: {self.report}")
        if self.viewer:
            rows.append(f"  viewer: {self.viewer} (or: brainexpr view {self.out_dir})")
        return rows


def _gene_arguments(genes) -> dict:
    """Split the ``genes`` option into the engine's ``genes``/``gene_set`` arguments."""
    if isinstance(genes, str) and genes in GENE_SETS:
        return {"genes": None, "gene_set": genes}
    if isinstance(genes, str):
        genes = [g.strip() for g in genes.split(",") if g.strip()]
    if not genes:
        raise InputError("genes must be a gene-set name (ad, ad114, l1000) or a list of symbols")
    return {"genes": list(genes), "gene_set": "ad"}


@dataclass(frozen=True)
class RunPlan:
    """A checked configuration of the main job (:func:`plan_run`), run by :func:`execute_run`.

    Attributes
    ----------
    options : dict
        Every keyword argument of :func:`run_main` (defaults filled in, ``genes_1mm`` a list).
    fit_params : dict
        The fit step's parameters, the model resolved (:func:`run_fit_params`).
    reason : str
        Why ``model="auto"`` chose that model.
    gene_args : dict
        The ``genes`` option as the engine's ``genes``/``gene_set`` arguments.
    with_std : bool
        Whether the maps step writes standard-deviation maps.
    """

    options: dict
    fit_params: dict
    reason: str
    gene_args: dict
    with_std: bool


def plan_run(**options) -> RunPlan:
    """Check the configuration once, before any step runs (so a bad option writes nothing).

    Takes the keyword arguments of :func:`run_main` (missing ones take its defaults); the
    model is resolved for the source (:func:`run_fit_params`) and its settings are checked
    by building (not fitting) it: the INR settings only when the model is an INR.

    Returns
    -------
    RunPlan

    Raises
    ------
    InputError
        For the first bad option, in one line.
    """
    from ..datasets import check_genes, load_regional_expression
    from ..models.registry import gives_std

    defaults = _defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise InputError(f"unknown option(s) of brainexpr run: {', '.join(unknown)}; allowed: "
                         f"{', '.join(defaults)}")
    options = {name: options.get(name, default) for name, default in defaults.items()}
    options["genes_1mm"] = list(options["genes_1mm"] or [])
    source, data_dir, genes_1mm = options["source"], options["data_dir"], options["genes_1mm"]
    if not Path(str(source)).exists():
        check_choice(source, SOURCES, "source",
                     or_else="a sample/regional CSV file or a 'brainexpr ahba' output folder")
    fit_params, reason = run_fit_params(source, **{k: options[k] for k in _FIT_KEYS})
    check_choice(options["resolution"], (1, 2), "resolution (mm)")
    check_choice(options["gene_atlas"], GENE_ATLAS_SETS, "gene_atlas")
    benchmark = options["benchmark"]
    if not Path(str(benchmark)).is_dir():
        check_choice(benchmark, BENCHMARK_MODES, "benchmark",
                     or_else="an existing benchmark output folder")
    gene_args = _gene_arguments(options["genes"])
    if source == "regional":
        full = load_regional_expression(data_dir=data_dir).columns
        if gene_args["genes"] is not None:
            check_genes(gene_args["genes"], full, "the regional DK-83 table")
        if genes_1mm:
            check_genes(genes_1mm, full, "the regional DK-83 table")
    elif Path(str(source)).is_dir() and gene_args["genes"] is not None:
        from ..ahba import load_processed  # samples and gene table; expression memory-mapped

        check_genes(gene_args["genes"], load_processed(source).gene_names,
                    f"the processed AHBA data in {source}")
    elif genes_1mm and genes_1mm != SHOWCASE_GENES and source == "celltypes":
        from ..datasets import load_sample_celltypes

        check_genes(genes_1mm, load_sample_celltypes(data_dir)[1].columns, "the cell-type table")
    return RunPlan(options=options, fit_params=fit_params, reason=reason, gene_args=gene_args,
                   with_std=gives_std(fit_params["model"], options["n_ensemble"]))


def run_fit_params(source, *, model="auto", **settings) -> tuple[dict, str]:
    """The fit step's parameters for a source: the resolved model and what it takes.

    Parameters
    ----------
    source : str or path
        As :func:`run_main` (a folder is a processed AHBA download: sample level).
    model : str
        ``"auto"`` or a model name (:func:`brainexpr.models.registry.resolve_model`).
    **settings
        The other fit keys of :func:`run_main` (network settings, ``random_state``).

    Returns
    -------
    params : dict
        ``model`` (resolved) and, for an INR, its settings; any other model gets only
        ``random_state``. The dict is what :func:`~brainexpr.workflows.models.fit_model`
        receives and what the fit step's hash covers, so INR settings do not refit a
        donor kriging.
    reason : str
        Why ``"auto"`` chose the model (``"requested"`` for a named model).

    Raises
    ------
    InputError
        For an unknown model, one that cannot fit the source, or bad INR settings.
    """
    from ..models.registry import is_network, resolve_model
    from .models import build_model, source_kind

    kind = "samples" if Path(str(source)).is_dir() else source_kind(source)
    name, reason = resolve_model(model, kind)
    if is_network(name):
        params = {"model": name, **settings}
    else:
        params = {"model": name, "random_state": settings.get("random_state", 0)}
    build_model(name, **{k: v for k, v in params.items() if k != "model"})  # checks settings
    return params, reason


@fill_doc
def run_main(out="outputs", *, genes="ad", source: str = "regional", model: str = "auto",
             n_layers: int = 4, hidden_features: int = 128, n_features: int = 64,
             omega_0: float | None = None, n_frequencies: int = 10, learning_rate: float = 1e-3,
             max_steps: int = 1500, validation_fraction: float = 0.0, n_ensemble: int = 3,
             resolution: int = 2,
             genes_1mm=tuple(SHOWCASE_GENES), atlas: str = "dk83", target: str = "tau",
             group: str = "ad", region_set: str = "cortex", null_method: str = "variogram",
             n_surrogates: int = 1000, gene_atlas: str = "ad", vae: bool = True,
             vae_target: str = "atrophy",
             benchmark: str = "quick", viewer: bool = True, random_state: int = 0,
             force: bool = False, overwrite: bool = False, data_dir=None) -> RunSummary:
    """Run the whole analysis of the reference study, validated, into one output folder.

    Parameters
    ----------
    out : path-like
        Output folder; one sub-folder per step, ``report/report.html``, ``viewer/index.html``,
        ``config.toml`` (the resolved configuration) and ``summary.json``.
    genes : str or list of str
        Gene set (``"ad"``: the reference study's AD genes; ``"l1000"``) or symbols.
    source : {"regional", "celltypes"} or path
        Training data: the abagen-style DK-83 regional table (fitted through parcel means,
        the default), the cell-type fractions at the 3,702 real AHBA sites, a CSV file
        (sample table with ``mni_x, mni_y, mni_z`` or a regional table; see
        :func:`brainexpr.workflows.models.load_training_data`), or the output folder of
        ``brainexpr ahba`` (its sample-level expression of the requested genes).
    model : str
        ``"auto"`` (default): the factorized INR ensemble for the regional table and
        ``donor-kriging`` for sample-level sources (cell types, a sample CSV, a processed
        AHBA folder), the most accurate on held-out data
        (:data:`brainexpr.models.registry.AUTO_MODELS`); or a model name, as in
        :func:`brainexpr.workflows.models.fit_model`.
    n_layers, hidden_features, n_features, omega_0, n_frequencies, learning_rate, max_steps :
        INR only (ignored by the other models): network and training settings
        (:class:`brainexpr.models.inr.INRRegressor`); the defaults are sized for a 2-core
        CPU. The paper's network is 12 x 512, lr 1e-4, 5000 steps. ``omega_0`` None takes
        the design's default (3 for ``factorized``, which won on held-out sites; the
        paper's 30 for ``paper`` and ``per_gene``).
    validation_fraction : float
        Fraction of sites (or whole parcels) held out for early stopping. Held-out parcels
        of the 83-region table are predicted no better than each gene's mean, which stops
        the fit too early, so the default fits every parcel for ``max_steps``.
    n_ensemble : int
        INR only: independently seeded fits; their recalibrated spread is the uncertainty
        (``_std``) map. Kriging models write the kriging SD of the population field; kNN
        and nearest give no ``_std`` maps.
    resolution : {1, 2}
        Resolution (mm) of the maps of every gene.
    genes_1mm : sequence of str
        Genes also mapped at 1 mm (default: the five genes of the paper's Fig. 4).
    atlas : str
        Atlas of the regional averages (``dk83``, ``brainnetome246``).
    target, group, region_set, null_method, n_surrogates :
        Disease association (:func:`brainexpr.workflows.associate.associate`).
    gene_atlas : {"ad", "ad114", "l1000", "all", "none"}
        Regional source only: build a gene atlas (``brainexpr atlas build``, parcel kriging
        on Dask into Zarr) of this gene set at 2 mm and rank its genes against the target
        map (``brainexpr atlas match``); ``all`` is the whole transcriptome (15,633 genes,
        about 16 minutes on 2 cores, BENCHMARKS.md "Gene atlas"), ``none`` skips the step.
    vae : bool
        Run the cross-scale VAE (:mod:`brainexpr.workflows.vae`).
    vae_target : str
        Its vulnerability map (``atrophy`` or ``tau``, ADNI AD group).
    benchmark : {"quick", "none"} or path
        Held-out accuracy: run the quick phantom/held-out benchmark, skip it, or read the
        tables of an earlier ``brainexpr benchmark`` output folder.
    viewer : bool
        Write the static map viewer (``viewer/index.html``).
    random_state : int
    force : bool
        Redo every step even when it is up to date.
    overwrite : bool
        Write into a folder holding other files (:mod:`brainexpr.outputs`: only
        brainexpr's own entries there are replaced). The run's own earlier output is
        always resumed in; the folder is locked while the run writes it.
    %(data_dir)s

    Returns
    -------
    RunSummary
    """
    options = dict(locals())
    started = time.perf_counter()
    prepare_data(atlas, data_dir)
    return execute_run(out, plan_run(**{k: v for k, v in options.items() if k != "out"}),
                       started=started)


def execute_run(out, plan: RunPlan, started: float | None = None) -> RunSummary:
    """Run the steps of a checked configuration into ``out`` (what :func:`run_main` does
    after :func:`plan_run`; the CLI calls the two itself, to open its log in between).

    Parameters
    ----------
    out : path-like
        Output folder (see :func:`run_main`).
    plan : RunPlan
    started : float, optional
        :func:`time.perf_counter` at the start of the run (default: now).

    Returns
    -------
    RunSummary
    """
    from ..models.registry import is_network
    from .associate import associate
    from .models import embed_genes, fit_model, parcellate_maps, predict_maps

    started = time.perf_counter() if started is None else started
    out, options = Path(out), plan.options
    fit_params, gene_args, with_std = plan.fit_params, plan.gene_args, plan.with_std
    source, atlas, data_dir, force = (options["source"], options["atlas"], options["data_dir"],
                                      options["force"])
    resolution, genes_1mm, random_state = (options["resolution"], options["genes_1mm"],
                                           options["random_state"])
    if options["model"] == "auto":
        logger.info("model 'auto' -> %s: %s", fit_params["model"], plan.reason)
    with claimed_folder(out, "run", OUTPUT_ENTRIES, overwrite=options["overwrite"]):
        written = {k: v for k, v in options.items() if k not in ("data_dir", "force", "overwrite")}
        write_config(out / "config.toml", written)
        summary = RunSummary(out_dir=out)
        if Path(str(source)).is_dir():  # a processed AHBA download: its samples of these genes
            data = run_step("data", out, {"source": str(Path(source).resolve()), "donors": True,
                                          **gene_args}, [],
                            lambda folder: _step_processed_samples(folder, source, gene_args,
                                                                   data_dir), force)
            summary.steps.append(data)
            source = str(data.folder / "training_samples.csv")
        data_key = {"source": str(source), **gene_args}

        axis = run_step("gene_axis", out, data_key, [], lambda folder: _step_gene_axis(
            embed_genes, folder, source, gene_args, data_dir), force)
        summary.steps.append(axis)

        fitted = _FittedModel(out / "fit" / "model.pt")
        fit = run_step("fit", out, {**data_key, **fit_params}, [axis], lambda folder: _step_fit(
            fit_model, fitted, folder, source, gene_args, fit_params, axis.folder, data_dir),
            force)
        summary.steps.append(fit)

        maps = run_step("maps", out, {"resolution": resolution, "genes_1mm": genes_1mm,
                                      "surface": SURFACE_SPACE, "std": with_std}, [fit],
                        lambda folder: _step_maps(predict_maps, folder, fitted.model, resolution,
                                                  genes_1mm, with_std, data_dir), force)
        summary.steps.append(maps)

        regional = run_step("regional", out, {"atlas": atlas}, [fit], lambda folder: _step_regional(
            parcellate_maps, folder, fitted.model, atlas, axis.folder, data_dir), force)
        summary.steps.append(regional)

        if source == "regional" and atlas in ("dk83", "dk83-abagen"):
            association_params = {k: options[k] for k in (
                "target", "group", "region_set", "null_method", "n_surrogates", "random_state",
                "genes")}
            assoc = run_step("associate", out, association_params, [regional],
                             lambda folder: _step_associate(associate, folder, regional.folder,
                                                            association_params, data_dir), force)
            summary.steps.append(assoc)

        if source == "regional" and options["gene_atlas"] != "none":
            atlas_params = dict(gene_set=options["gene_atlas"], target=options["target"],
                                group=options["group"], null_method=options["null_method"],
                                n_surrogates=options["n_surrogates"], random_state=random_state)
            summary.steps.append(run_step("gene_atlas", out, atlas_params, [], lambda folder:
                                          _step_gene_atlas(folder, atlas_params, data_dir),
                                          force))

        if options["vae"]:
            vae_params = {"target": options["vae_target"], "random_state": random_state}
            summary.steps.append(run_step("vae", out, vae_params, [], lambda folder: _step_vae(
                folder, vae_params, data_dir), force))

        benchmark = options["benchmark"]
        if benchmark == "quick":
            summary.steps.append(run_step("benchmark", out, {"mode": "quick", "seed": random_state},
                                          [], lambda folder: _step_benchmark(folder, random_state,
                                                                             data_dir), force))

        report_options = dict(written, model=fit_params["model"])  # what "auto" became
        if not is_network(fit_params["model"]):  # network settings were not used
            report_options = {k: v for k, v in report_options.items()
                              if k == "model" or k == "random_state" or k not in _FIT_KEYS}
        summary.report = _write_report(out, summary.steps, report_options, benchmark, data_dir)
        if options["viewer"]:
            summary.viewer = _write_viewer(out, maps.folder, resolution, data_dir)
        summary.seconds = time.perf_counter() - started
        with atomic_write(out / "summary.json") as handle:
            json.dump({"seconds": round(summary.seconds, 1),
                       "steps": {s.name: {"folder": str(s.folder), "reused": s.reused,
                                          "seconds": round(s.seconds, 1), "summary": s.summary}
                                 for s in summary.steps},
                       "report": str(summary.report), "viewer": str(summary.viewer)},
                      handle, indent=1, default=str)
        return summary


_FIT_KEYS = ("model", "n_layers", "hidden_features", "n_features", "omega_0", "n_frequencies",
             "learning_rate", "max_steps", "validation_fraction", "n_ensemble", "random_state")


def _defaults() -> dict:
    from .config import workflow_defaults

    return workflow_defaults(run_main)


# --------------------------------------------------------------------------- steps
def _step_gene_axis(embed_genes, folder, source, gene_args, data_dir) -> dict:
    # the fit's training data (the regional table on its own DK-83 atlas), whatever the run's
    # --atlas, which only chooses the parcellation of the regional step
    result = embed_genes(source=source, out_dir=folder, data_dir=data_dir, **gene_args)
    axis = getattr(result, "positions", None)
    return {"n_genes": int(len(axis)) if axis is not None else None}


def _step_processed_samples(folder, processed_dir, gene_args, data_dir) -> dict:
    """Write the sample table of a ``brainexpr ahba`` output for the requested genes.

    Named genes must all be in the folder (unknown ones raise); of a gene set, the genes the
    folder holds are used and the others named in the log
    (:func:`~brainexpr.workflows.models.processed_training_data`).
    """
    from .models import processed_training_data

    data = processed_training_data(processed_dir, gene_args["genes"], gene_args["gene_set"],
                                   data_dir=data_dir)
    table = pd.DataFrame(data.coords, columns=["mni_x", "mni_y", "mni_z"])
    table["tissue_class"] = data.tissue
    table["donor"] = data.donors   # mirrored copies are pseudo-donors (as in donor kriging)
    table = pd.concat([table, data.values.reset_index(drop=True)], axis=1)
    table.to_csv(folder / "training_samples.csv", index=False, float_format="%.6g")
    return {"n_samples": int(len(table)), "n_genes": int(data.values.shape[1])}


def _step_fit(fit_model, fitted, folder, source, gene_args, fit_params, axis_folder,
              data_dir) -> dict:
    """Fit with the gene axis of the gene-axis step; the fitted model goes on to the later
    steps through ``fitted`` (no reading back of the file just written)."""
    from .models import AXIS_STATE_FILE, fit_summary

    gene_axis = axis_folder if (axis_folder / AXIS_STATE_FILE).is_file() else None
    if gene_axis is None:  # a gene-axis step written before the state file existed
        logger.info("%s lacks %s: the fit computes the gene axis itself", axis_folder,
                    AXIS_STATE_FILE)
    estimator = fit_model(source=source, out=folder / "model.pt", gene_axis=gene_axis,
                          data_dir=data_dir, **gene_args, **fit_params)
    fitted.model = estimator
    info = fit_summary(estimator)
    return {k: info[k] for k in info if isinstance(info[k], (int, float, str, bool))}


class _FittedModel:
    """The fit step's model: the estimator it fitted in this run or, when the step was
    reused, its model file read on first use; shared by the steps after it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._model = None

    @property
    def model(self):
        """The fitted estimator (:func:`~brainexpr.models.registry.load_model` of the file
        unless the fit step set it)."""
        if self._model is None:
            from ..models.registry import load_model

            self._model = load_model(self.path)
        return self._model

    @model.setter
    def model(self, estimator):
        self._model = estimator


def _showcase_genes(model, genes_1mm) -> list:
    """The 1 mm genes to map: the default showcase genes only where the model has them
    (a cell-type or other sample-level model has none of them); genes asked for by name
    are kept, so that an unknown one fails with the usual error."""
    if list(genes_1mm) != SHOWCASE_GENES:
        return list(genes_1mm)
    from ..maps.dense import model_genes

    known = set(map(str, model_genes(model)))
    kept = [g for g in genes_1mm if g in known]
    if len(kept) < len(genes_1mm):
        logger.info("1 mm maps: %d of the %d default showcase genes are in the model",
                    len(kept), len(genes_1mm))
    return kept


def _step_maps(predict_maps, folder, model, resolution, genes_1mm, std, data_dir) -> dict:
    written = predict_maps(model=model, resolution=resolution, out_dir=folder, std=std,
                           data_dir=data_dir)
    genes_1mm = _showcase_genes(model, genes_1mm) if genes_1mm else []
    if genes_1mm and resolution != 1:  # write_maps replaces its folder: 1 mm maps get their own
        written += predict_maps(model=model, genes=genes_1mm, resolution=1,
                                out_dir=folder / "1mm", std=std, data_dir=data_dir)
    if genes_1mm:  # the same genes on the cortical surface (GIFTI, both hemispheres)
        written += predict_maps(model=model, genes=genes_1mm, space=SURFACE_SPACE,
                                out_dir=folder / SURFACE_SPACE, std=std, data_dir=data_dir)
    return {"n_files": len(written)}


def _step_regional(parcellate_maps, folder, model, atlas, axis_folder, data_dir) -> dict:
    from ..datasets import load_regional_expression
    from ..reporting.agreement import aggregate_agreement, plot_agreement
    from ..reporting.figures import save_figure

    means, comparison = parcellate_maps(model=model, atlas=atlas, out=folder / "regional_inr.csv",
                                        compare=True, data_dir=data_dir)
    result = {"n_regions": int(means.shape[0]), "n_genes": int(means.shape[1])}
    if atlas in ("dk83", "dk83-abagen"):
        reference = load_regional_expression(data_dir=data_dir)
        genes = [g for g in means.columns if g in reference.columns]
        if genes:
            agreement = aggregate_agreement(means[genes], reference[genes])
            agreement["per_gene"].to_frame().to_csv(folder / "agreement_per_gene.csv")
            order = _axis_order(axis_folder)
            save_figure(plot_agreement(means[genes], reference[genes], order=order),
                        folder / "fig_agreement")
            result.update(mean_r=round(agreement["mean_r"], 4),
                          aggregate_r=round(agreement["aggregate_r"], 4))
    if comparison is not None and "r_voxel" in comparison:
        result["mean_r_voxel_within_mask"] = round(float(comparison["r_voxel"].mean()), 4)
    return result


def _axis_order(axis_folder: Path):
    path = axis_folder / "gene_axis.tsv"
    if not path.is_file():
        return None
    table = pd.read_csv(path, sep="\t", index_col=0)
    return list(table.index)  # written sorted along the axis


def _step_associate(associate, folder, regional_folder, params, data_dir) -> dict:
    result = associate(out_dir=folder, compare=regional_folder / "regional_inr.csv",
                       compare_name="inr", data_dir=data_dir, **params)
    return {k: v for k, v in (result.summary or {}).items() if isinstance(v, (int, float, str))}


def _step_gene_atlas(folder, params, data_dir) -> dict:
    from ..datasets import load_pathology_map
    from ..transcriptome.build import build_atlas
    from ..transcriptome.query import match_map

    result = build_atlas(out=folder / "atlas.zarr", gene_set=params["gene_set"],
                         random_state=params["random_state"], data_dir=data_dir)
    target = folder / f"{params['group']}_{params['target']}.csv"
    load_pathology_map(params["target"], params["group"], data_dir=data_dir).to_csv(target)
    table = match_map(result.path, target, n_surrogates=params["n_surrogates"],
                      null_method=params["null_method"], random_state=params["random_state"],
                      out_dir=folder / "match", data_dir=data_dir)
    return {"n_genes": len(table), "build_seconds": round(result.seconds, 1),
            "top_gene": str(table.index[0]), "top_r": float(table["pearson_r"].iloc[0]),
            "n_q_spatial_below_0.05": int((table["pearson_q_spatial"] < 0.05).sum())}


def _step_vae(folder, params, data_dir) -> dict:
    from .vae import fit_vae

    result = fit_vae(out_dir=folder, target=params["target"], random_state=params["random_state"],
                     data_dir=data_dir)
    return _flat(getattr(result, "summary", {}) or {})


def _step_benchmark(folder, random_state, data_dir) -> dict:
    from .benchmark import benchmark_methods

    result = benchmark_methods(out_dir=folder, quick=True, random_state=random_state,
                               data_dir=data_dir)
    return _flat(getattr(result, "summary", {}) or {})


def _flat(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}


# --------------------------------------------------------------------------- report
def _write_report(out, steps, options, benchmark, data_dir) -> Path:
    from ..reporting.run_report import build_run_report

    return build_run_report(out, steps, options, benchmark=benchmark, data_dir=data_dir)


def _write_viewer(out, maps_folder, resolution, data_dir) -> Path | None:
    from ..viewer.assets import niivue_bundle_path
    from .view import view_maps

    try:
        niivue_bundle_path()
    except Exception as exc:  # the bundle is optional for the run: say why it is skipped
        logger.warning("map viewer not written: %s", exc)
        return None
    return view_maps(out, static=True, out=out / "viewer", resolution=resolution,
                     open_browser=False, data_dir=data_dir)
