"""Assemble the HTML report of ``brainexpr run`` from the folders of its steps.

Each step folder holds figures (PNG, with SVG beside them), tables (CSV/TSV) and often a
Markdown summary written by its workflow. A step that did not run becomes a clearly
marked "not run" section.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..docstrings import fill_doc
from .html import ReportFigure, ReportSection, ReportTable, build_report
from .markdown import markdown_to_html

logger = logging.getLogger(__name__)

#: step name -> (section title, Markdown summary file, main table file, Methods sentence)
SECTIONS = {
    "gene_axis": ("Gene axis (spectral embedding)", None, "gene_axis.tsv",
                  "Genes were ordered on a one-dimensional gene axis by spectral embedding of "
                  "their correlation matrix (first non-trivial eigenvector of the normalised "
                  "Laplacian) [@yu2025]."),
    "maps": ("Gene maps and their uncertainty", None, None, None),  # see maps_methods
    "regional": ("Agreement with the abagen-style regional table", None, "agreement_per_gene.csv",
                 "Maps were averaged within the Desikan-Killiany parcels and compared with the "
                 "abagen regional table [@abagen] (per-gene and pooled Pearson r)."),
    "benchmark": ("Held-out accuracy (ground-truth phantoms and real held-out sites)",
                  "summary.md", None, ""),
    "associate": ("Association with Alzheimer's tau (spatial nulls)", "association_summary.md",
                  "associations.csv", ""),
    "vae": ("Cross-scale generative model (graph-regularised VAE)", "vae_report.md", None, ""),
}

PAPER_AGREEMENT = {"mean_r": 0.67, "aggregate_r": 0.70}

#: Methods sentence of the maps section, by the kind of model that made them
_MAPS_METHODS = {
    "inr": ("Continuous maps were predicted on the MNI152 grid by a sinusoidal implicit neural "
            "representation [@siren] conditioned on the gene axis with a positional encoding "
            "[@nerf], following [@yu2025]"),
    "donor-kriging": ("Continuous maps were predicted on the MNI152 grid by universal kriging of "
                      "the population field shared by the donors (donor deviation fields and "
                      "measurement noise modelled and excluded, a mean per tissue class, a "
                      "left-right mirrored covariance term whose weight each gene learns, "
                      "per-gene hyperparameters by marginal likelihood), validated on held-out "
                      "sites in the brainexpr benchmark"),
    "kriging": ("Continuous maps were predicted on the MNI152 grid by ordinary kriging with a "
                "fitted variogram"),
    "knn": ("Continuous maps were predicted on the MNI152 grid by inverse-distance weighting of "
            "the k nearest samples, as abagen's dense interpolation does [@abagen]"),
    "nearest": "Continuous maps were predicted on the MNI152 grid from the nearest sample",
    "parcel-kriging": ("Continuous maps were predicted on the MNI152 grid by area-to-point "
                       "kriging of the parcel means (each parcel value the mean of a Gaussian-"
                       "process field over the parcel, hyperparameters by restricted likelihood)"),
}


def maps_methods(model: str | None, n_ensemble: int = 1) -> str:
    """Methods sentence for maps made by a registry model (``None``: the INR, as before).

    Parameters
    ----------
    model : str or None
        Registry name of the fitted model (the fit step's ``model``).
    n_ensemble : int
        Ensemble size of an INR (its spread is the uncertainty map when >= 2).

    Returns
    -------
    str
    """
    from ..models.registry import MODELS, capabilities

    caps = capabilities(model) if model in MODELS else None
    kind = "inr" if model is None or (caps is not None and caps.network) else model
    std = "ensemble" if model is None else (caps.std if caps is not None else None)
    text = _MAPS_METHODS.get(kind, f"Continuous maps were predicted by the {model} model")
    if std == "ensemble" and n_ensemble > 1:
        text += ("; the standard deviation over independently seeded fits gives the "
                 "uncertainty map")
    elif std == "kriging":
        text += ("; the kriging standard deviation of the predicted map (hyperparameters and "
                 "variance by likelihood; for donor kriging, the variance then matched per gene "
                 "to the training donors' leave-one-donor-out errors) gives the uncertainty map")
    return text + "."


def _figures(folder: Path, limit: int = 8) -> list[ReportFigure]:
    pngs = sorted(p for p in folder.rglob("*.png") if "viewer" not in p.parts)[:limit]
    return [ReportFigure(p, caption=p.stem.replace("_", " ")) for p in pngs]


def _read_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix == ".tsv" else ","
    return pd.read_csv(path, sep=sep, index_col=0)


def _step_section(name: str, folder: Path, summary: dict) -> ReportSection:
    title, markdown_file, table_file, methods = SECTIONS[name]
    html = ""
    if markdown_file:
        candidates = [folder / markdown_file] + sorted(folder.glob("*summary*.md"))
        for path in candidates:
            if path.is_file():
                html = markdown_to_html(path.read_text(encoding="utf-8"))
                break
    text = _section_text(name, summary)
    tables = []
    if table_file and (folder / table_file).is_file():
        tables.append(ReportTable(_read_table(folder / table_file),
                                  caption=f"{table_file} (first rows; the full table is beside "
                                          "the report)", max_rows=25))
    return ReportSection(title=title, text=text, html=html, figures=_figures(folder),
                         tables=tables, methods=methods)


def _section_text(name: str, summary: dict) -> str:
    if name == "regional" and "mean_r" in summary:
        return (f"Per-gene Pearson r between the regional averages of the maps and the abagen-style "
                f"table, averaged over genes: {summary['mean_r']:.2f} (paper: "
                f"{PAPER_AGREEMENT['mean_r']}); pooled over all genes and regions: "
                f"{summary['aggregate_r']:.2f} (paper: {PAPER_AGREEMENT['aggregate_r']}). "
                "Note that this agreement is not accuracy: both come from the same samples. "
                "Held-out accuracy is in its own section.")
    if name == "benchmark" and summary.get("quick", True):
        return ("This is the quick benchmark that checks the pipeline on a subset of sites with "
                "short training; its numbers are not the benchmark's results. The full "
                "comparison (`make benchmark`, or `brainexpr run --benchmark FOLDER` with its "
                "output) is recorded in BENCHMARKS.md.")
    return ""


def _map_section(maps_folder: Path, data_dir=None, fit_summary: dict | None = None) -> ReportSection:
    """Slices of the 1 mm showcase maps (or the first 2 mm maps) with uncertainty."""
    import matplotlib.pyplot as plt

    from ..datasets import load_brain_mask, load_template
    from ..viewer.maps import find_maps
    from .figures import save_figure
    from .slices import plot_map_slices

    title = SECTIONS["maps"][0]
    fit_summary = fit_summary or {}
    methods = maps_methods(fit_summary.get("model"), int(fit_summary.get("n_ensemble", 1) or 1))
    try:
        maps = find_maps(maps_folder)
    except Exception as exc:  # no maps: the section says so
        return ReportSection.not_run(title, str(exc))
    best = maps.sort_values("resolution").groupby("gene", sort=False).head(1)
    best = best.sort_values("resolution").head(5)
    figures_dir = maps_folder.parent / "report" / "slices"
    figures_dir.mkdir(parents=True, exist_ok=True)
    template, mask = load_template(data_dir), load_brain_mask(data_dir)
    figures = []
    for row in best.itertuples():
        figure = plot_map_slices(row.expr, row.std, gene=row.gene, bg_img=template, mask=mask)
        paths = save_figure(figure, figures_dir / f"slices_{row.gene}_{row.resolution}mm")
        plt.close("all")
        has_std = isinstance(row.std, (str, Path)) and str(row.std) not in ("", "nan")
        caption = (f"{row.gene}: expression (top) and standard deviation (bottom)" if has_std
                   else f"{row.gene}: expression")
        if np.isfinite(row.trust):
            caption += f"; trust (held-out r) {row.trust:.2f}"
        figures.append(ReportFigure(paths[0], caption=f"{caption}, {row.resolution} mm"))
    text = (f"{maps['gene'].nunique()} genes mapped; interactive browsing: the viewer folder "
            "beside this report, or `brainexpr view` on the output folder.")
    meanings = maps["std_meaning"].dropna().unique()
    if len(meanings):
        text += f" The standard-deviation maps show the {meanings[0]}."
    trust = maps.drop_duplicates("gene")["trust"].dropna()
    if len(trust):
        text += (f" Trust score of each gene (the r of each training sample with its prediction "
                 f"from the samples outside its 20 mm block and an 8 mm margin, in maps.tsv): median {trust.median():.2f}, "
                 f"range {trust.min():.2f} to {trust.max():.2f}; genes with a low score have "
                 "maps to read with caution.")
    surface = _surface_figure(maps_folder, figures_dir, data_dir)
    if surface is not None:
        figures.append(surface)
        methods += (" The same genes were evaluated at the mid-thickness point of every "
                    "fsaverage5 vertex (pial and white surfaces mapped from MNI305 to MNI152 "
                    "with FreeSurfer's affine) and written as GIFTI.")
    return ReportSection(title=title, text=text, figures=figures, methods=methods)


def _surface_figure(maps_folder: Path, figures_dir: Path, data_dir=None,
                    limit: int = 5) -> ReportFigure | None:
    """Lateral and medial views of both hemispheres of the surface (GIFTI) expression maps."""
    import matplotlib.pyplot as plt
    import nibabel as nib

    from .figures import save_figure
    from .surface import plot_vertex_maps

    listings = sorted(maps_folder.rglob("maps.tsv"))
    rows = []
    for path in listings:
        table = pd.read_csv(path, sep="\t", dtype=str)
        if {"hemisphere", "kind"} <= set(table.columns):
            table["path"] = [str(path.parent / f) for f in table["file"]]
            rows.append(table[table["kind"] == "expr"])
    if not rows:
        return None
    table = pd.concat(rows)
    genes = list(dict.fromkeys(table["gene"]))[:limit]
    maps = {gene: {row.hemisphere: nib.load(row.path).darrays[0].data
                   for row in table[table["gene"] == gene].itertuples()} for gene in genes}
    figure = plot_vertex_maps(maps, data_dir=data_dir)
    paths = save_figure(figure, figures_dir / "surface_fsaverage5")
    plt.close("all")
    return ReportFigure(paths[0], caption="Expression on the fsaverage5 cortex (model evaluated "
                                          "at the vertices): lateral and medial views")


@fill_doc
def build_run_report(out_dir, steps, options: dict, benchmark=None, data_dir=None) -> Path:
    """Write ``<out_dir>/report/report.html`` from the steps of a run.

    Parameters
    ----------
    out_dir : path-like
        The run's output folder.
    steps : sequence of brainexpr.workflows.steps.StepResult
    options : dict
        The run's configuration (shown and described in the Methods).
    benchmark : str or path, optional
        A benchmark output folder to report when the run did not run one itself.
    %(data_dir)s
    """
    out_dir = Path(out_dir)
    done = {step.name: step for step in steps}
    sections = []
    for name in ("gene_axis", "maps", "regional", "benchmark", "associate", "vae"):
        title = SECTIONS[name][0]
        step = done.get(name)
        folder = step.folder if step else None
        if name == "benchmark" and step is None and benchmark not in (None, "none", "quick"):
            folder = Path(str(benchmark))
        if folder is None or not folder.is_dir():
            reason = {"associate": "runs for the regional source on the DK-83 atlas only",
                      "benchmark": "disabled (benchmark = \"none\")",
                      "vae": "disabled (vae = false)"}.get(name, "step did not run")
            sections.append(ReportSection.not_run(title, reason))
            continue
        if name == "maps":
            fit = done.get("fit")
            sections.append(_map_section(folder, data_dir, fit.summary if fit else None))
        else:
            sections.append(_step_section(name, folder, step.summary if step else {"quick": False}))
    from ..datasets.loaders import ad_genes_dataset

    datasets = ["regional-dk83", ad_genes_dataset(data_dir), "atlas-dk83", "mni152-fsl",
                "adni-pathology", "open-targets-ad", "l1000", "ahba-samples", "ahba-celltypes"]
    with open(out_dir / "report_options.json", "w", encoding="utf-8") as handle:
        json.dump(options, handle, indent=1, default=str)
    return build_report(sections, out_dir / "report", title="brainexpr: gene-expression maps "
                        "and Alzheimer's associations", options=options, datasets=datasets)
