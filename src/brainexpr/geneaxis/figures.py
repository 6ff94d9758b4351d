"""Figures of the gene axis, of the kind of the seed paper's Fig. 2b-e and Fig. S1.

* eigen-spectrum of the normalised Laplacian (with the eigenvalue that gives ``e_g``);
* genes on the first two non-trivial eigenvectors;
* the gene correlation matrix unsorted and sorted by the gene axis.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..reporting.figures import pyplot as _pyplot
from ..reporting.figures import save_figure
from .embedding import GeneAxis

logger = logging.getLogger(__name__)

#: Label genes on the axes when there are at most this many.
MAX_LABELLED_GENES = 40


def plot_spectrum(axis: GeneAxis, ax=None, n_show: int = 30):
    """Plot the smallest eigenvalues of the normalised Laplacian (paper Fig. 2b)."""
    plt = _pyplot()
    ax = ax or plt.gca()
    values = np.asarray(axis.eigenvalues)[:n_show]
    index = np.arange(len(values))
    ax.plot(index, values, "o-", color="0.3", markersize=4)
    ax.plot([1], [values[1]], "o", color="tab:red", markersize=7, label="gene axis ($e_g$)")
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue of $I - D^{-1/2} A D^{-1/2}$")
    ax.set_title("Eigen-spectrum")
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_eigenvectors(axis: GeneAxis, ax=None):
    """Scatter genes on the first two non-trivial eigenvectors (paper Fig. 2c)."""
    plt = _pyplot()
    ax = ax or plt.gca()
    vectors = axis.eigenvectors
    first = vectors.iloc[:, 1]
    second = vectors.iloc[:, 2] if vectors.shape[1] > 2 else np.zeros(len(first))
    points = ax.scatter(first, second, c=axis.positions.loc[vectors.index], cmap="viridis", s=18)
    if len(first) <= MAX_LABELLED_GENES:
        for gene, x, y in zip(vectors.index, first, second):
            ax.annotate(str(gene), (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel("eigenvector 1 ($e_g$ before scaling)")
    ax.set_ylabel("eigenvector 2")
    ax.set_title("Genes on the first two eigenvectors")
    plt.colorbar(points, ax=ax, label="$e_g$")
    return ax


def plot_correlation(axis: GeneAxis, ax=None, sort: bool = True):
    """Show the gene correlation matrix, unsorted or sorted by the axis (paper Fig. 2d-e)."""
    plt = _pyplot()
    ax = ax or plt.gca()
    if axis.correlation is None:
        raise ValueError("this gene axis keeps no correlation matrix")
    corr = axis.correlation
    if sort:
        corr = corr.loc[axis.order, axis.order]
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    if len(corr) <= MAX_LABELLED_GENES:
        ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=5)
        ax.set_yticks(range(len(corr)), corr.index, fontsize=5)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title("Gene correlation, sorted by gene axis" if sort else "Gene correlation, input order")
    plt.colorbar(image, ax=ax, label="Pearson r" if axis.correlation_method == "pearson"
                 else "Spearman r")
    return ax


def plot_gene_axis(axis: GeneAxis, path=None, title: str | None = None, dpi: int = 200):
    """Four-panel figure: spectrum, eigenvectors, correlation unsorted and sorted.

    Parameters
    ----------
    axis : GeneAxis
    path : path-like, optional
        Where to save the figure (format from the suffix: .png, .pdf, .svg); written
        atomically.
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 9.5))
    plot_spectrum(axis, axes[0, 0])
    plot_eigenvectors(axis, axes[0, 1])
    plot_correlation(axis, axes[1, 0], sort=False)
    plot_correlation(axis, axes[1, 1], sort=True)
    fig.suptitle(title or f"Spectral gene axis: {len(axis.positions)} genes, affinity "
                          f"'{axis.affinity}'")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, formats=(Path(path).suffix.lstrip("."),), dpi=dpi, tight=False,
                    close=False)
        logger.info("wrote %s", path)
    return fig
