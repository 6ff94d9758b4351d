"""Figures of the agreement between INR regional averages and the abagen-style table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .figures import pyplot as _pyplot




def aggregate_agreement(inr: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """Per-gene and aggregate Pearson r between two regions x genes tables.

    Parameters
    ----------
    inr, reference : pandas.DataFrame
        Regions x genes; compared on their shared regions and genes.

    Returns
    -------
    dict
        ``per_gene`` (Series of r), ``mean_r`` (mean of per-gene r, the paper's 0.67),
        ``aggregate_r`` (all genes and regions pooled, the paper's 0.70), ``n_regions``,
        ``n_genes``.
    """
    regions = inr.index.intersection(reference.index)
    genes = inr.columns.intersection(reference.columns)
    a = inr.loc[regions, genes].to_numpy(float)
    b = reference.loc[regions, genes].to_numpy(float)
    a_c = a - a.mean(axis=0)
    b_c = b - b.mean(axis=0)
    denominator = np.sqrt((a_c ** 2).sum(axis=0) * (b_c ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_gene = pd.Series((a_c * b_c).sum(axis=0) / denominator, index=genes, name="r")
    aggregate = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    return {"per_gene": per_gene, "mean_r": float(per_gene.mean()), "aggregate_r": aggregate,
            "n_regions": len(regions), "n_genes": len(genes)}


def plot_agreement(inr: pd.DataFrame, reference: pd.DataFrame, order=None,
                   inr_name: str = "INR", reference_name: str = "abagen"):
    """Bar plot of per-gene r (ordered by the gene axis) and the pooled scatter.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    result = aggregate_agreement(inr, reference)
    per_gene = result["per_gene"]
    if order is not None:
        per_gene = per_gene.reindex([g for g in order if g in per_gene.index])
    figure, (ax_bar, ax_scatter) = plt.subplots(
        1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    ax_bar.bar(np.arange(len(per_gene)), per_gene.to_numpy(), color="tab:green")
    ax_bar.axhline(result["mean_r"], color="k", lw=0.8, ls="--",
                   label=f"mean r = {result['mean_r']:.2f}")
    ax_bar.set_xticks(np.arange(len(per_gene)))
    ax_bar.set_xticklabels(per_gene.index, rotation=90, fontsize=5)
    ax_bar.set_ylabel(f"r ({inr_name} vs {reference_name}, regions)")
    ax_bar.set_xlim(-1, len(per_gene))
    ax_bar.legend(loc="lower right", fontsize=8)
    regions = inr.index.intersection(reference.index)
    genes = per_gene.index
    x = reference.loc[regions, genes].to_numpy(float).ravel()
    y = inr.loc[regions, genes].to_numpy(float).ravel()
    ax_scatter.scatter(x, y, s=2, alpha=0.3, color="tab:blue", rasterized=True)
    slope, intercept = np.polyfit(x, y, 1)
    grid = np.linspace(x.min(), x.max(), 2)
    ax_scatter.plot(grid, slope * grid + intercept, color="tab:red", lw=1)
    ax_scatter.set_xlabel(f"{reference_name} (regional)")
    ax_scatter.set_ylabel(f"{inr_name} (regional average)")
    ax_scatter.set_title(f"all genes and regions: R = {result['aggregate_r']:.2f}", fontsize=9)
    figure.tight_layout()
    return figure
