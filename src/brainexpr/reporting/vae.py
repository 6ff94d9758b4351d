"""Figures of the cross-scale VAE analysis.

* :func:`plot_predicted_vs_observed`: observed against predicted vulnerability, in-sample
  and under spatially blocked cross-validation (regions coloured by held-out group).
* :func:`plot_validation_summary`: in-sample r, blocked-CV r and the spatial-null band of
  every model side by side.
* :func:`plot_surface_maps`: regional maps (e.g. program scores) on the fsaverage5
  inflated cortex, lateral and medial views of both hemispheres.
* :func:`plot_top_genes`: the genes with the largest loadings of every program.

Every function returns a matplotlib ``Figure`` (or draws on given ``Axes``) and never shows
it; :func:`brainexpr.reporting.slices.save_figure` writes figures atomically.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import InputError

logger = logging.getLogger(__name__)

ANNOT = "regional/imaging-transcriptomics-1.1.0/fsa5_{side}_aparc.annot"
#: (hemisphere, view) -> (axis of the screen x, its sign, sign of the viewing direction on x)
VIEWS = {("L", "lateral"): (-1, -1.0), ("L", "medial"): (1, 1.0),
         ("R", "lateral"): (1, 1.0), ("R", "medial"): (-1, -1.0)}


def _pyplot():
    from .slices import _pyplot as pyplot

    return pyplot()


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


# --------------------------------------------------------------------------- surfaces
@lru_cache(maxsize=2)
def _surface(data_dir_key):
    """fsaverage5 inflated meshes (from nilearn) and DK region keys per vertex."""
    import nibabel as nib
    from nilearn.datasets import load_fsaverage

    from ..datasets.fetch import fetch_file

    meshes = load_fsaverage("fsaverage5")["inflated"]
    out = {}
    for hemi, side, part in (("L", "lh", "left"), ("R", "rh", "right")):
        path = fetch_file(ANNOT.format(side=side), data_dir=data_dir_key)
        labels, _, names = nib.freesurfer.read_annot(str(path))
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        keys = np.array([f"{hemi}_{names[i]}" if i >= 0 else "" for i in labels], dtype=object)
        mesh = meshes.parts[part]
        out[hemi] = (np.asarray(mesh.coordinates, float), np.asarray(mesh.faces, int), keys)
    return out


def _rasterize(triangles: np.ndarray, depth: np.ndarray, width: int = 360):
    """Scan-convert screen-space triangles with a depth buffer.

    Parameters
    ----------
    triangles : (f, 3, 2) array
        Screen coordinates (mm) of the faces.
    depth : (f,) array
        Larger = nearer to the viewer.
    width : int
        Image width in pixels.

    Returns
    -------
    owner : (height, width) int array
        Index of the face seen at every pixel, -1 where none.
    extent : (left, right, bottom, top) in mm, for ``imshow``.
    """
    low = triangles.reshape(-1, 2).min(axis=0)
    high = triangles.reshape(-1, 2).max(axis=0)
    scale = (width - 1) / max(high[0] - low[0], 1e-9)
    height = int(np.ceil((high[1] - low[1]) * scale)) + 1
    pixels = (triangles - low) * scale                                   # (f, 3, 2)
    start = np.floor(pixels.min(axis=1)).astype(int)                     # (f, 2)
    extent_px = np.ceil(pixels.max(axis=1) - start).max(axis=1).astype(int) + 1
    best = np.full(height * width, -np.inf)
    owner = np.full(height * width, -1)
    bounds = [0, 2, 4, 8, 16, 32, int(extent_px.max())]
    for small, large in zip(bounds[:-1], bounds[1:]):
        group = np.flatnonzero((extent_px > small) & (extent_px <= large))
        if not len(group):
            continue
        offsets = np.stack(np.meshgrid(np.arange(large), np.arange(large), indexing="ij"),
                           axis=-1).reshape(-1, 2)
        chunk = max(1, 2_000_000 // len(offsets))
        for first in range(0, len(group), chunk):
            idx = group[first:first + chunk]
            candidate = start[idx, None, :] + offsets[None, :, :]        # (c, s*s, 2)
            cx, cy = candidate[..., 0] + 0.5, candidate[..., 1] + 0.5
            (ax_, ay), (bx, by), (qx, qy) = ((pixels[idx, k, 0][:, None],
                                              pixels[idx, k, 1][:, None]) for k in range(3))
            area = (bx - ax_) * (qy - ay) - (by - ay) * (qx - ax_)
            w0 = (bx - cx) * (qy - cy) - (by - cy) * (qx - cx)
            w1 = (qx - cx) * (ay - cy) - (qy - cy) * (ax_ - cx)
            w2 = area - w0 - w1
            sign = np.sign(area)
            tol = -1e-6 * np.abs(area)
            inside = ((w0 * sign >= tol) & (w1 * sign >= tol) & (w2 * sign >= tol)
                      & (candidate[..., 0] < width) & (candidate[..., 1] < height))
            face = np.broadcast_to(idx[:, None], inside.shape)[inside]
            flat = candidate[..., 1][inside] * width + candidate[..., 0][inside]
            order = np.argsort(-depth[face], kind="stable")              # nearest first
            flat, face = flat[order], face[order]
            keep = np.unique(flat, return_index=True)[1]                 # nearest per pixel
            flat, face = flat[keep], face[keep]
            nearer = depth[face] > best[flat]
            best[flat[nearer]] = depth[face[nearer]]
            owner[flat[nearer]] = face[nearer]
    right = low[0] + (width - 1) / scale
    top = low[1] + (height - 1) / scale
    return owner.reshape(height, width), (low[0], right, low[1], top)


@lru_cache(maxsize=8)
def _view(data_dir_key, hemi: str, view: str):
    """Pixels -> faces of one view of one hemisphere, with Lambert shading per face."""
    coords, faces, keys = _surface(data_dir_key)[hemi]
    screen_sign, toward = VIEWS[(hemi, view)]
    triangles = coords[faces]                                            # (f, 3, 3)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    facing = normals[:, 0] * toward
    visible = np.flatnonzero(facing > 0)
    screen = np.stack([screen_sign * triangles[visible, :, 1], triangles[visible, :, 2]],
                      axis=-1)
    depth = triangles[visible, :, 0].mean(axis=1) * toward
    owner, extent = _rasterize(screen, depth)
    drawn = owner >= 0
    face = np.where(drawn, visible[np.clip(owner, 0, None)], -1)
    shade = np.where(drawn, 0.55 + 0.45 * facing[np.clip(face, 0, None)], 1.0)
    region = np.where(drawn, keys[faces[np.clip(face, 0, None), 0]], "")
    return region, shade, drawn, extent


def _draw_view(ax, region, shade, drawn, extent, values: pd.Series, cmap, norm):
    lookup = values.reindex(pd.unique(region.ravel())).astype(float)
    pixel_values = lookup.reindex(region.ravel()).to_numpy(float).reshape(region.shape)
    image = cmap(norm(np.nan_to_num(pixel_values)))
    image[np.isnan(pixel_values)] = (0.82, 0.82, 0.82, 1.0)
    image[..., :3] *= shade[..., None]
    image[~drawn] = (1.0, 1.0, 1.0, 0.0)
    ax.imshow(image, origin="lower", extent=extent, interpolation="antialiased")
    ax.set_aspect("equal")
    ax.axis("off")


def plot_surface_maps(maps, titles=None, cmap: str = "RdBu_r", symmetric: bool = True,
                      limits=None, data_dir=None):
    """Cortical maps of Desikan-Killiany regions on the fsaverage5 inflated surface.

    Parameters
    ----------
    maps : pandas.Series or DataFrame
        Values indexed by region key (``"L_bankssts"`` ...); one row of four views
        (left lateral, left medial, right medial, right lateral) per column. Regions not
        in the index are drawn grey.
    titles : sequence of str, optional
        Row titles (default: the column names).
    cmap : str or sequence of str
        Matplotlib colour map (one for all rows, or one per row).
    symmetric : bool or sequence of bool
        Colour range symmetric around 0 (for signed scores); one for all rows or per row.
    limits : sequence of (low, high) or None, optional
        Colour range per row (``None`` entries: from the data), e.g. to draw an observed and
        a predicted map on the same scale.
    data_dir : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize

    frame = maps.to_frame() if isinstance(maps, pd.Series) else maps
    if not set(frame.index) & {f"{h}_bankssts" for h in "LR"} and not any(
            str(k).startswith(("L_", "R_")) for k in frame.index):
        raise InputError("maps must be indexed by region keys such as 'L_bankssts'")
    titles = list(frame.columns) if titles is None else list(titles)
    data_key = None if data_dir is None else str(data_dir)
    n_rows = len(frame.columns)
    cmaps = [cmap] * n_rows if isinstance(cmap, str) else list(cmap)
    symmetric = [symmetric] * n_rows if isinstance(symmetric, bool) else list(symmetric)
    limits = [None] * n_rows if limits is None else list(limits)
    if len(cmaps) != n_rows or len(symmetric) != n_rows or len(titles) != n_rows \
            or len(limits) != n_rows:
        raise InputError(f"give one title, cmap, symmetric flag and limit per map ({n_rows})")
    views = [("L", "lateral"), ("L", "medial"), ("R", "medial"), ("R", "lateral")]
    figure, axes = plt.subplots(len(frame.columns), 5, figsize=(11, 2.0 * len(frame.columns)),
                                gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.06]},
                                squeeze=False)
    for row, column in enumerate(frame.columns):
        values = frame[column].astype(float)
        finite = values[np.isfinite(values)]
        colour_map = plt.get_cmap(cmaps[row])
        if limits[row] is not None:
            norm = Normalize(float(limits[row][0]), float(limits[row][1]))
        elif symmetric[row]:
            bound = float(np.abs(finite).max()) if len(finite) else 1.0
            norm = Normalize(-bound, bound)
        else:
            norm = Normalize(float(finite.min()), float(finite.max()))
        for col, (hemi, view) in enumerate(views):
            _draw_view(axes[row, col], *_view(data_key, hemi, view), values, colour_map, norm)
            if row == 0:
                axes[row, col].set_title(f"{'left' if hemi == 'L' else 'right'} {view}",
                                         fontsize=8)
        axes[row, 0].text(-0.04, 0.5, str(titles[row]), transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=8, rotation=90)
        figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colour_map), cax=axes[row, 4])
        axes[row, 4].tick_params(labelsize=7)
    figure.subplots_adjust(wspace=0.02, hspace=0.08, left=0.06, right=0.95)
    return figure


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
