"""Figures of the cross-scale VAE analysis.

* :func:`plot_predicted_vs_observed`: observed against predicted vulnerability, in-sample
  and under spatially blocked cross-validation (regions coloured by held-out group).
* :func:`plot_validation_summary`: in-sample r, blocked-CV r and the spatial-null band of
  every model side by side.
* :func:`~brainexpr.reporting.surface.plot_surface_maps` (re-exported here): regional maps
  (e.g. program scores) on the fsaverage5 inflated cortex, lateral and medial views of both
  hemispheres.
* :func:`plot_top_genes`: the genes with the largest loadings of every program.
* :func:`vae_markdown`: the report text of a run (validation table, the paper's numbers,
  what they mean).

Every function returns a matplotlib ``Figure`` (or draws on given ``Axes``) and never shows
it; :func:`brainexpr.reporting.figures.save_figure` writes figures atomically.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError
from .figures import pyplot as _pyplot
from .surface import plot_surface_maps

__all__ = ["plot_predicted_vs_observed", "plot_surface_maps", "plot_top_genes",
           "plot_validation_summary", "vae_markdown"]

logger = logging.getLogger(__name__)





def _scatter(ax, observed, predicted, groups, title):
    codes, uniques = pd.factorize(np.asarray(groups))
    cmap = _pyplot().get_cmap("tab10" if len(uniques) <= 10 else "tab20")
    for code, label in enumerate(uniques):
        mask = codes == code
        ax.scatter(predicted[mask], observed[mask], s=22, color=cmap(code % cmap.N),
                   label=str(label), edgecolor="white", linewidth=0.4)
    low = float(min(observed.min(), predicted.min()))
    high = float(max(observed.max(), predicted.max()))
    pad = 0.05 * (high - low)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="0.6", lw=0.8, ls="--")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    r = np.corrcoef(observed, predicted)[0, 1]
    r2 = 1 - ((observed - predicted) ** 2).sum() / ((observed - observed.mean()) ** 2).sum()
    ax.set_title(f"{title}\nr = {r:.2f}, R$^2$ = {r2:.2f}", fontsize=10)
    ax.set_xlabel("predicted")
    ax.set_aspect("equal", adjustable="box")


def plot_predicted_vs_observed(predictions: pd.DataFrame, model: str = "graph_vae",
                               target_name: str = "vulnerability"):
    """Observed against predicted vulnerability, in-sample and blocked-CV.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``VulnerabilityValidation.predictions``: columns ``observed``, ``fold``,
        ``<model>_in_sample`` and ``<model>_cv``; one row per region.
    model : str
    target_name : str
        Axis label of the observed values.

    Returns
    -------
    matplotlib.figure.Figure
    """
    needed = ["observed", "fold", f"{model}_in_sample", f"{model}_cv"]
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise InputError(f"predictions lack column(s) {', '.join(missing)}")
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.6), constrained_layout=True)
    observed = predictions["observed"].to_numpy(float)
    _scatter(axes[0], observed, predictions[f"{model}_in_sample"].to_numpy(float),
             predictions["fold"], f"{model}: in-sample fit")
    _scatter(axes[1], observed, predictions[f"{model}_cv"].to_numpy(float),
             predictions["fold"], f"{model}: spatially blocked CV")
    axes[0].set_ylabel(f"observed {target_name}")
    axes[1].legend(title="held-out group", fontsize=7, title_fontsize=8, loc="center left",
                   bbox_to_anchor=(1.02, 0.5), frameon=False)
    return figure


def plot_validation_summary(table: pd.DataFrame, paper=None, ax=None):
    """In-sample r, blocked-CV r and the 95th percentile of the spatial null per model.

    Parameters
    ----------
    table : pandas.DataFrame
        ``VulnerabilityValidation.table`` (index = model).
    paper : dict, optional
        ``{"r": 0.94}``: a reference line for a published in-sample r.
    """
    plt = _pyplot()
    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(1.3 * len(table) + 2.5, 3.8), constrained_layout=True)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["in_sample_r"], width=0.38, color="0.75", label="in-sample r")
    ax.bar(x + 0.2, table["cv_r"], width=0.38, color="tab:blue", label="blocked-CV r")
    if "null_r_95" in table and table["null_r_95"].notna().any():
        ax.scatter(x + 0.2, table["null_r_95"], marker="_", s=400, color="tab:red", zorder=3,
                   label="spatial null, 95th pct")
        for xi, (_, row) in zip(x, table.iterrows()):
            if np.isfinite(row.get("null_p", np.nan)):
                ax.annotate(f"p={row['null_p']:.2g}", (xi + 0.2, max(row["cv_r"], 0)),
                            xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7)
    if paper and "r" in paper:
        ax.axhline(paper["r"], color="k", lw=0.8, ls=":", label=f"paper (in-sample) r={paper['r']}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(x, list(table.index))
    ax.set_ylabel("Pearson r (predicted vs observed)")
    ax.set_ylim(min(0.0, float(np.nanmin(table["cv_r"])) - 0.05), 1.05)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure if figure is not None else ax.figure


def plot_top_genes(loadings: pd.DataFrame, n_top: int = 10, head_weights=None):
    """The genes with the largest positive and negative loading on every program.

    Parameters
    ----------
    loadings : pandas.DataFrame
        (n_genes, n_programs) gene loadings (``GraphVAERegressor.gene_loadings()``).
    n_top : int
        Genes shown per sign and program.
    head_weights : pandas.Series, optional
        Weight of every program in the predictor head, shown in the panel titles.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    programs = list(loadings.columns)
    n_cols = min(3, len(programs))
    n_rows = int(np.ceil(len(programs) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols,
                                figsize=(3.6 * n_cols, 0.23 * 2 * n_top * n_rows + 1),
                                squeeze=False, constrained_layout=True)
    for ax, program in zip(axes.ravel(), programs):
        column = loadings[program].sort_values()
        chosen = pd.concat([column.head(n_top), column.tail(n_top)])
        chosen = chosen[~chosen.index.duplicated()]
        colours = np.where(chosen.to_numpy() > 0, "tab:red", "tab:blue")
        ax.barh(np.arange(len(chosen)), chosen.to_numpy(), color=colours)
        ax.set_yticks(np.arange(len(chosen)), list(chosen.index), fontsize=7)
        ax.axvline(0, color="k", lw=0.5)
        title = program
        if head_weights is not None and program in head_weights.index:
            title += f" (head weight {head_weights[program]:+.2f})"
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in axes.ravel()[len(programs):]:
        ax.axis("off")
    figure.supxlabel("loading (z-scored expression per unit program score)", fontsize=8)
    return figure


# --------------------------------------------------------------------------- text
def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def vae_markdown(summary: dict, model: str = "graph_vae") -> str:
    """The ``vae_report.md`` of ``vae``: the validation table, the paper's numbers, and what
    they mean.

    Parameters
    ----------
    summary : dict
        The summary of :func:`brainexpr.workflows.vae.fit_vae`.
    model : str
        Name of the VAE's row in ``summary["validation"]``.

    Returns
    -------
    str
        Markdown.
    """
    validation = summary["validation"]
    vae = validation[model]
    lines = [
        "# Cross-scale graph VAE: regional expression -> vulnerability", "",
        f"- Target: {summary['target']} on {summary['regions']['n']} cortical regions",
        f"- Genes: {summary['genes']['source']}",
        f"- Region graph: {summary['graph']['method']} ({summary['graph']['edges']} edges, "
        f"{summary['graph']['laplacian']} Laplacian)",
        f"- Blocked CV: {summary['cv']['scheme']}, {summary['cv']['groups']} held-out groups",
        f"- Spatial null: {summary['null']['method']} surrogates of the target "
        f"({summary['null']['n_vae']} for the VAE, {summary['null']['n_baselines']} for the "
        "baselines), each put through the same blocked CV",
        "",
        "| model | in-sample r | in-sample R² | blocked-CV r | blocked-CV R² | spatial-null p "
        "(CV r) | null r 95th pct |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in validation.items():
        lines.append(f"| {name} | {_fmt(row['in_sample_r'])} | {_fmt(row['in_sample_r2'])} | "
                     f"{_fmt(row['cv_r'])} | {_fmt(row['cv_r2'])} | {_fmt(row['null_p'], 3)} "
                     f"(n={int(row['n_nulls'])}) | {_fmt(row['null_r_95'])} |")
    paper = summary["paper"]
    ridge = validation.get("ridge")
    ridge_sentence = (
        f"A plain ridge regression on the same genes reaches r = {_fmt(ridge['in_sample_r'])} "
        f"(R² = {_fmt(ridge['in_sample_r2'])}) in-sample in this run, so an in-sample fit of "
        f"{summary['regions']['n']} regions from {summary['genes']['n']} genes is no evidence "
        "for a model or for the biology: with more genes than regions almost any map can be "
        "fitted. " if ridge else
        f"With more genes ({summary['genes']['n']}) than regions ({summary['regions']['n']}) "
        "almost any map can be fitted in-sample, so such a fit is no evidence for a model or "
        "for the biology. ")
    lines += [
        f"| paper (Vaithianathan 2026) | {paper['r']} | {paper['r2']} | not reported | "
        "not reported | not reported | - |",
        "",
        "## Reading these numbers",
        "",
        f"The paper reports r = {paper['r']} and explained variance {paper['r2']} *in-sample* "
        f"(p {paper['p']}) on {paper['target'].split(';')[0]}, which is not public; this run "
        f"uses {summary['target']}, so the numbers are not directly comparable. In-sample, "
        f"our graph VAE reaches r = {_fmt(vae['in_sample_r'])} "
        f"(R² = {_fmt(vae['in_sample_r2'])}). " + ridge_sentence
        + f"When whole {'lobes' if summary['cv']['scheme'] == 'lobe' else 'groups of regions'} "
        f"are held out and the model is refitted without them, the predicted map correlates "
        f"with the observed one at r = {_fmt(vae['cv_r'])} (R² = {_fmt(vae['cv_r2'])}); this "
        "is the number to compare between models.",
        "",
        _null_sentence(vae, summary),
        "",
    ]
    return "\n".join(lines)


def _null_sentence(vae: dict, summary: dict) -> str:
    if not vae.get("n_nulls"):
        return "No spatial-null test was run (null_method='none' or n_nulls_vae=0)."
    verdict = "exceeds" if vae["null_p"] < 0.05 else "does not exceed"
    return (f"Surrogate targets with the same spatial autocorrelation as the observed map, "
            f"unrelated to expression by construction, reach a blocked-CV r of "
            f"{_fmt(vae['null_r_mean'])} on average (95th percentile {_fmt(vae['null_r_95'])}): "
            f"smooth maps are partly predictable from smooth expression gradients whatever "
            f"they show. The VAE's cross-validated r {verdict} this spatial null at the 5 % "
            f"level (p = {_fmt(vae['null_p'], 3)}, {int(vae['n_nulls'])} surrogates).")
