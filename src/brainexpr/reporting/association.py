"""Figures of the disease-association analysis (the seed paper's Fig. 6, with spatial nulls).

* :func:`plot_axis_bars`: gene-target correlations of one or two sources of gene maps as
  bars ordered along the gene axis (Fig. 6a); genes significant under the spatial null are
  starred.
* :func:`plot_source_agreement`: the two sources' correlations against each other with the
  discordant genes labelled (Fig. 6b).
* :func:`plot_open_targets`: gene-target correlation against the Open Targets score (Fig. 6c,d).
* :func:`plot_target_map`: the regional target map painted into the atlas (brain slices).

* :func:`association_markdown`, :func:`association_methods`: the summary and Methods
  text of a run, for exactly the options it used.

Every figure function draws on a matplotlib ``Axes`` (or returns a ``Figure``) and never shows it;
:func:`brainexpr.reporting.figures.save_figure` writes a figure atomically.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .figures import pyplot as _pyplot

logger = logging.getLogger(__name__)

#: Colours of the first and second source (paper: abagen blue, INR green).
SOURCE_COLOURS = ("tab:blue", "tab:green")
#: Colours of discordant genes: stronger in the first / in the second source.
DISCORDANT_COLOURS = ("tab:purple", "tab:red")


def plot_axis_bars(correlations: pd.DataFrame, order, significant: pd.DataFrame | None = None,
                   target_name: str = "target", ax=None):
    """Bar plot of gene-target correlations ordered along the gene axis.

    Parameters
    ----------
    correlations : pandas.DataFrame
        (n_genes, n_sources) correlation per gene and source (one or two columns; column
        names are the source names).
    order : sequence of str
        Genes in gene-axis order (left to right).
    significant : pandas.DataFrame, optional
        Same shape, True where the correlation survives FDR under the spatial null; those
        bars get a star.
    target_name : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    order = [g for g in order if g in correlations.index]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.16 * len(order) + 1.5), 4.2))
    sources = list(correlations.columns)
    width = 0.8 / len(sources)
    position = np.arange(len(order))
    for k, source in enumerate(sources):
        values = correlations.loc[order, source].to_numpy(dtype=float)
        offset = (k - (len(sources) - 1) / 2) * width
        ax.bar(position + offset, values, width=width, color=SOURCE_COLOURS[k % 2],
               label=str(source), linewidth=0)
        if significant is not None and source in significant.columns:
            marks = significant.reindex(order)[source].fillna(False).to_numpy(dtype=bool)
            tips = values[marks] + np.sign(values[marks]) * 0.03
            ax.plot(position[marks] + offset, tips, "*", color="black", markersize=4,
                    linestyle="none")
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.set_xticks(position)
    ax.set_xticklabels(order, rotation=90, fontsize=6 if len(order) > 40 else 8)
    ax.set_xlim(-0.7, len(order) - 0.3)
    ax.set_ylabel(f"correlation with {target_name} (Pearson r)")
    ax.set_xlabel("genes ordered along the gene axis (spectral embedding)")
    handles, labels = ax.get_legend_handles_labels()
    if significant is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="*", color="black", linestyle="none"))
        labels.append("FDR q < 0.05, spatial null")
    ax.legend(handles, labels, frameon=False, fontsize=8, ncol=len(labels))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def _fit_line(ax, x, y, colour="tab:red"):
    slope, intercept = np.polyfit(x, y, 1)
    grid = np.linspace(np.min(x), np.max(x), 50)
    ax.plot(grid, intercept + slope * grid, color=colour, linewidth=1.2)


def plot_source_agreement(agreement, target_name: str = "target", ax=None):
    """Scatter the two sources' gene-target correlations with the discordant genes labelled.

    Parameters
    ----------
    agreement : brainexpr.analysis.association.SourceAgreement
    target_name : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.6))
    table = agreement.table
    first, second = agreement.names
    ax.scatter(table["first"], table["second"], s=14, color="0.55", linewidths=0)
    _fit_line(ax, table["first"].to_numpy(), table["second"].to_numpy())
    low = float(np.nanmin(table[["first", "second"]].to_numpy())) - 0.05
    high = float(np.nanmax(table[["first", "second"]].to_numpy())) + 0.05
    ax.plot([low, high], [low, high], color="0.75", linewidth=0.8, linestyle="--", zorder=0)
    for k, gene in enumerate(agreement.discordant):
        row = table.loc[gene]
        colour = DISCORDANT_COLOURS[int(row["stronger_in"] == second)]
        ax.scatter([row["first"]], [row["second"]], s=26, color=colour, zorder=3)
        # alternate label sides so that neighbouring labels overlap less
        ax.annotate(str(gene), (row["first"], row["second"]), fontsize=8, color=colour,
                    xytext=(4, 3) if k % 2 == 0 else (-4, -9), textcoords="offset points",
                    ha="left" if k % 2 == 0 else "right")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"{first}: r with {target_name}")
    ax.set_ylabel(f"{second}: r with {target_name}")
    ax.set_title(f"R = {agreement.r:.2f}, p = {agreement.p:.1e}, {agreement.n_genes} genes",
                 fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def plot_open_targets(correlations: pd.Series, scores: pd.Series, result: dict,
                      source: str = "", target_name: str = "target", colour="tab:blue",
                      n_labels: int = 5, ax=None):
    """Scatter gene-target correlation against the Open Targets AD score.

    Parameters
    ----------
    correlations : pandas.Series
        Gene-target correlation per gene.
    scores : pandas.Series
        Open Targets global score per gene symbol.
    result : dict
        Output of :func:`brainexpr.analysis.association.open_targets_association` (gives the
        options used and the R and p shown in the title).
    source, target_name : str
    colour : matplotlib colour
    n_labels : int
        The genes with the highest Open Targets scores are labelled.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.2))
    score = scores.reindex(correlations.index)
    if result.get("missing", "drop") == "zero":
        score = score.fillna(0.0)
    keep = score.notna() & correlations.notna()
    x = correlations[keep].abs() if result.get("absolute", True) else correlations[keep]
    y = score[keep]
    ax.scatter(x, y, s=14, color=colour, linewidths=0)
    if len(x) > 2:
        _fit_line(ax, x.to_numpy(dtype=float), y.to_numpy(dtype=float))
    for gene in y.sort_values(ascending=False).index[:n_labels]:
        ax.annotate(str(gene), (x[gene], y[gene]), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")
    label = f"|r| with {target_name}" if result.get("absolute", True) else f"r with {target_name}"
    ax.set_xlabel(f"{source}: {label}" if source else label)
    ax.set_ylabel("Open Targets AD global score")
    ax.set_title(f"R = {result['r']:.2f}, p = {result['p']:.2f}, {result['n_genes']} genes",
                 fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def plot_target_map(target: pd.Series, atlas_image, regions: pd.DataFrame, template=None,
                    title: str = "target map", cmap: str = "magma", figure=None):
    """Brain slices of a regional map painted into an atlas.

    Parameters
    ----------
    target : pandas.Series
        Values per region key (regions outside the series stay empty).
    atlas_image : nibabel.Nifti1Image
        Label image (e.g. ``load_atlas("dk83").image``), MNI152.
    regions : pandas.DataFrame
        Atlas table (column ``id``) indexed by region key.
    template : nibabel.Nifti1Image, optional
        Background (default: nilearn's MNI152 template).
    title : str
    cmap : str
    figure : matplotlib Figure, optional

    Returns
    -------
    matplotlib Figure
    """
    import nibabel as nib
    from matplotlib import cm, colors
    from nilearn import plotting

    from ..atlas import paint

    plt = _pyplot()
    known = target[target.index.isin(regions.index)].astype(float)
    low, high = float(known.min()), float(known.max())
    # nilearn hides voxels at or below the threshold; shift the values so that every painted
    # voxel is positive and the background (0) stays transparent, whatever the sign of the map.
    offset = (high - low) * 1e-3 + 1e-9
    painted = paint(known - low + offset, atlas_image, regions=regions, fill=0.0)
    painted = nib.Nifti1Image(np.asarray(painted.dataobj, dtype=np.float32), painted.affine)
    if figure is None:
        figure = plt.figure(figsize=(10, 2.4))
    plotting.plot_stat_map(
        painted, bg_img=template if template is not None else plotting.img_plotting.MNI152TEMPLATE,
        display_mode="z", cut_coords=(-24, -12, 0, 12, 24, 36, 48), cmap=cmap,
        threshold=offset / 2, vmin=offset, vmax=high - low + offset, symmetric_cbar=False,
        colorbar=False, figure=figure, annotate=True, draw_cross=False, black_bg=False,
    )
    # The colour bar is drawn in the units of the target, not of the shifted image.
    scalar = cm.ScalarMappable(norm=colors.Normalize(vmin=low, vmax=high), cmap=cmap)
    cax = figure.add_axes([0.99, 0.15, 0.012, 0.7])
    figure.colorbar(scalar, cax=cax)
    cax.tick_params(labelsize=7)
    figure.suptitle(title, fontsize=10, x=0.02, ha="left")
    return figure


# --------------------------------------------------------------------------- text
def _fmt(value, digits=2):
    if value is None:
        return "n/a"
    if abs(value) < 10 ** -(digits + 1) and value != 0:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def association_markdown(summary: dict, first: str, second: str | None) -> str:
    """The ``association_summary.md`` of ``associate``: our numbers next to the paper's,
    then a Methods paragraph (:func:`association_methods`).

    Parameters
    ----------
    summary : dict
        The summary of :func:`brainexpr.workflows.associate.associate`.
    first, second : str
        Names of the first and (None without one) second source.

    Returns
    -------
    str
        Markdown.
    """
    null = summary["null"]
    lines = [
        f"# Gene maps vs {summary['target']['name']}",
        "",
        f"Target: {summary['target']['source']}; {summary['regions']['n']} regions "
        f"({summary['regions']['set']}, {summary['regions']['hemisphere']} hemispheres).",
        f"Spatial null: {null['method'] or 'none'}"
        + (f", {null['n_surrogates']} surrogates, distances {null['distances']}, seed "
           f"{null['random_state']}." if null["method"] else "."),
        f"Gene axis: {summary['gene_axis']}.",
        "",
        "| quantity | " + " | ".join([first] + ([second] if second else [])) + " | paper |",
        "|---|" + "---|" * (2 + bool(second)),
    ]
    sources = [summary["sources"][first]] + ([summary["sources"][second]] if second else [])

    def row(label, values, paper=""):
        lines.append(f"| {label} | " + " | ".join(values) + f" | {paper} |")

    row("genes", [str(s["n_genes"]) for s in sources], "100")
    row("p < 0.05 (parametric)", [str(s["pearson_p<0.05"]) for s in sources])
    row("FDR q < 0.05 (parametric)", [str(s["pearson_q<0.05"]) for s in sources])
    if null["method"]:
        row("p < 0.05 (spatial null)", [str(s["pearson_p_spatial<0.05"]) for s in sources])
        row("FDR q < 0.05 (spatial null)", [str(s["pearson_q_spatial<0.05"]) for s in sources])
    if "axis_gradient" in sources[0]:
        row("axis gradient: Spearman r", [_fmt(s["axis_gradient"]["r"]) for s in sources],
            "claimed, no statistic")
        row("axis gradient: gene-shuffle p",
            [_fmt(s["axis_gradient"]["p_permutation"], 4) for s in sources])
        row("axis gradient: spatial-null p",
            [_fmt(s["axis_gradient"]["p_spatial"], 3) for s in sources])
    paper_ot = summary["paper"]["open_targets"]
    for key in ("open_targets", "open_targets_other") if "open_targets" in sources[0] else ():
        kind = "absolute r" if sources[0][key]["absolute"] else "signed r"
        paper = (f"{paper_ot['abagen']['r']} (abagen) / {paper_ot['inr']['r']} (INR)"
                 if not sources[0][key]["absolute"] else "")
        row(f"Open Targets vs {kind}: R (p)",
            [f"{_fmt(s[key]['r'])} ({_fmt(s[key]['p'], 3)})" for s in sources],
            paper + (f", p {paper_ot['abagen']['p']} / {paper_ot['inr']['p']}" if paper else ""))
    if "open_targets" in sources[0]:
        row("Open Targets: genes scored", [str(s["open_targets"]["n_genes"]) for s in sources])
    if second:
        agreement = summary["agreement"]
        lines += [
            "",
            f"Agreement of the gene-target correlations of {first} and {second}: "
            f"R = {_fmt(agreement['r'])}, p = {agreement['p']:.1e}, {agreement['n_genes']} genes "
            f"(paper: R = {summary['paper']['agreement_r']}).",
            "",
            "Most discordant genes (largest difference in |r|): "
            + ", ".join(f"{d['gene']} ({first} {d[first]:.2f}, {second} {d[second]:.2f})"
                        for d in agreement["discordant"])
            + ". Paper: NEAT1, JAZF1, HSPH1 stronger under INR; TMEM41A, PTK2B, ZNF184 "
              "stronger under abagen.",
        ]
    lines += [
        "",
        "## Methods",
        "",
        association_methods(summary, first, second),
        "",
    ]
    return "\n".join(lines)


def association_methods(summary: dict, first: str, second: str | None) -> str:
    """Methods paragraph of an ``associate`` run, for exactly the options it used
    (correlations, the spatial null, the gene-axis gradient, Open Targets)."""
    null = summary["null"]
    text = (
        f"Regional gene expression ({first}"
        + (f" and {second}" if second else "")
        + f") was correlated with the {summary['target']['name']} map over "
        f"{summary['regions']['n']} Desikan-Killiany regions ({summary['regions']['set']}, "
        f"{summary['regions']['hemisphere']} hemispheres) with Pearson and Spearman "
        "correlations (parametric two-sided p-values, t distribution)."
    )
    if null["method"] == "variogram":
        text += (
            f" Spatial autocorrelation was accounted for with {null['n_surrogates']} "
            "variogram-matched surrogate target maps (Burt et al. 2020; brainexpr's "
            "vectorised implementation of the brainsmash algorithm: exponential kernel, "
            "neighbourhood fractions 0.1-0.9, variograms matched up to the 25th percentile "
            f"of distances) computed from {null['distances']} inter-region distances."
        )
    elif null["method"] == "moran":
        text += (
            f" Spatial autocorrelation was accounted for with {null['n_surrogates']} Moran "
            "spectral randomisation surrogates (Wagner & Dray 2015; singleton procedure on "
            f"inverse-distance weights from {null['distances']} distances)."
        )
    elif null["method"] == "spin":
        text += (
            f" Spatial autocorrelation was accounted for with {null['n_surrogates']} spin "
            "permutations (Alexander-Bloch et al. 2018): random rotations of the fsaverage5 "
            "sphere, the left hemisphere's rotation mirrored for the right, each region "
            "reassigned to the region whose rotated centroid it receives (Hungarian "
            "assignment, Vazquez-Rodriguez et al. 2019)."
        )
    elif null["method"] == "permutation":
        text += (f" Null p-values came from {null['n_surrogates']} random permutations of the "
                 "target (which ignore spatial autocorrelation).")
    if null["method"]:
        text += (
            " Spatial-null p-values are two-sided, (1 + #|r_null| >= |r|) / (1 + n); "
            "Benjamini-Hochberg FDR was applied across genes to each p-value column."
        )
    if "axis_gradient" in summary["sources"][first]:
        text += (
            " The gradient along the gene axis is the Spearman correlation between axis "
            "position and gene-target correlation, tested by shuffling genes and against the "
            "same statistic for the surrogate target maps (spatial null)."
        )
    if "open_targets" in summary["sources"][first]:
        text += (
            " Gene-target correlations (absolute and signed) were compared with the Open "
            "Targets AD global score (MONDO_0004975) across the genes that have a score "
            "(Pearson)."
        )
    return text
