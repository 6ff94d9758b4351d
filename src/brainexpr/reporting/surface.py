"""Cortical maps on the fsaverage5 inflated surface: lateral and medial views of both
hemispheres, drawn with matplotlib alone (a small depth-buffered rasteriser; no OpenGL).

* :func:`plot_surface_maps`: regional maps (values per Desikan-Killiany region key).
* :func:`plot_vertex_maps`: vertex maps (10,242 values per hemisphere, e.g. a gene map
  from ``brainexpr predict --space fsaverage5``), shaded per face from its vertices.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import pandas as pd

from ..atlas.surface import N_VERTICES, dk_vertex_labels, fsaverage5_mesh
from ..docstrings import fill_doc
from ..errors import InputError
from .figures import pyplot as _pyplot

logger = logging.getLogger(__name__)

__all__ = ["VIEWS", "plot_surface_maps", "plot_vertex_maps"]

#: (hemisphere, view) -> (axis of the screen x, its sign, sign of the viewing direction on x)
VIEWS = {("L", "lateral"): (-1, -1.0), ("L", "medial"): (1, 1.0),
         ("R", "lateral"): (1, 1.0), ("R", "medial"): (-1, -1.0)}

#: Panel order of every figure: left lateral, left medial, right medial, right lateral.
PANELS = [("L", "lateral"), ("L", "medial"), ("R", "medial"), ("R", "lateral")]




@lru_cache(maxsize=2)
def _surface(data_dir_key):
    """fsaverage5 inflated meshes and DK region keys per vertex ("" on the medial wall)."""
    out = {}
    for hemi in ("L", "R"):
        mesh = fsaverage5_mesh("infl", hemi)
        out[hemi] = (mesh.coords, mesh.faces, dk_vertex_labels(hemi, data_dir_key))
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
def _projection(data_dir_key, hemi: str, view: str):
    """Pixels -> faces of one view of one hemisphere, with Lambert shading per face.

    Returns
    -------
    face : (height, width) int array, -1 where no face is seen
    shade, drawn, extent : as for :func:`_view`
    """
    coords, faces, _ = _surface(data_dir_key)[hemi]
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
    return face, shade, drawn, extent


@lru_cache(maxsize=8)
def _view(data_dir_key, hemi: str, view: str):
    """Pixels -> region keys of one view of one hemisphere, with shading and extent."""
    _, faces, keys = _surface(data_dir_key)[hemi]
    face, shade, drawn, extent = _projection(data_dir_key, hemi, view)
    region = np.where(drawn, keys[faces[np.clip(face, 0, None), 0]], "")
    return region, shade, drawn, extent


def _draw_view(ax, region, shade, drawn, extent, values: pd.Series, cmap, norm):
    lookup = values.reindex(pd.unique(region.ravel())).astype(float)
    pixel_values = lookup.reindex(region.ravel()).to_numpy(float).reshape(region.shape)
    _paint(ax, pixel_values, shade, drawn, extent, cmap, norm)


def _paint(ax, pixel_values, shade, drawn, extent, cmap, norm):
    image = cmap(norm(np.nan_to_num(pixel_values)))
    image[np.isnan(pixel_values)] = (0.82, 0.82, 0.82, 1.0)
    image[..., :3] *= shade[..., None]
    image[~drawn] = (1.0, 1.0, 1.0, 0.0)
    ax.imshow(image, origin="lower", extent=extent, interpolation="antialiased")
    ax.set_aspect("equal")
    ax.axis("off")


@fill_doc
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
    %(data_dir)s

    Returns
    -------
    matplotlib.figure.Figure
    """
    frame = maps.to_frame() if isinstance(maps, pd.Series) else maps
    if not set(frame.index) & {f"{h}_bankssts" for h in "LR"} and not any(
            str(k).startswith(("L_", "R_")) for k in frame.index):
        raise InputError("maps must be indexed by region keys such as 'L_bankssts'")
    data_key = None if data_dir is None else str(data_dir)

    def draw(ax, column, hemi, view, cmap, norm):
        values = frame[column].astype(float)
        _draw_view(ax, *_view(data_key, hemi, view), values, cmap, norm)

    values = {c: frame[c].to_numpy(float) for c in frame.columns}
    return _figure(values, draw, titles, cmap, symmetric, limits)


def plot_vertex_maps(maps: dict, titles=None, cmap: str = "viridis", symmetric: bool = False,
                     limits=None, data_dir=None):
    """Vertex maps on the fsaverage5 inflated surface, lateral and medial views.

    Parameters
    ----------
    maps : dict
        Map name -> ``{"L": (10242,) array, "R": (10242,) array}`` (one hemisphere may be
        missing: drawn grey); one row of four views per map. Each face takes the mean of
        its three vertices; NaN vertices are grey.
    titles, cmap, symmetric, limits :
        As for :func:`plot_surface_maps` (default colour range: the data's).
    data_dir : path-like, optional
        Only for the region labels of the meshes' cache.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data_key = None if data_dir is None else str(data_dir)
    for name, hemis in maps.items():
        for hemi, values in hemis.items():
            if hemi not in ("L", "R") or np.shape(values) != (N_VERTICES,):
                raise InputError(f"map {name!r}: give 'L'/'R' -> ({N_VERTICES},) vertex values, "
                                 f"got {hemi!r} with shape {np.shape(values)}")

    def draw(ax, name, hemi, view, cmap, norm):
        _, faces, _ = _surface(data_key)[hemi]
        face, shade, drawn, extent = _projection(data_key, hemi, view)
        vertex = np.asarray(maps[name].get(hemi, np.full(N_VERTICES, np.nan)), dtype=float)
        pixel_values = np.where(drawn, vertex[faces].mean(axis=1)[np.clip(face, 0, None)], np.nan)
        _paint(ax, pixel_values, shade, drawn, extent, cmap, norm)

    values = {name: np.concatenate([np.asarray(v, float).ravel() for v in hemis.values()])
              for name, hemis in maps.items()}
    return _figure(values, draw, titles, cmap, symmetric, limits)


def _figure(values: dict, draw, titles, cmap, symmetric, limits):
    """One row of the four :data:`PANELS` per map, with its colour bar.

    ``values`` maps each row name to all its values (for the colour range); ``draw(ax,
    name, hemi, view, cmap, norm)`` paints one panel.
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize

    names = list(values)
    n_rows = len(names)
    titles = names if titles is None else list(titles)
    cmaps = [cmap] * n_rows if isinstance(cmap, str) else list(cmap)
    symmetric = [symmetric] * n_rows if isinstance(symmetric, bool) else list(symmetric)
    limits = [None] * n_rows if limits is None else list(limits)
    if len(cmaps) != n_rows or len(symmetric) != n_rows or len(titles) != n_rows \
            or len(limits) != n_rows:
        raise InputError(f"give one title, cmap, symmetric flag and limit per map ({n_rows})")
    figure, axes = plt.subplots(n_rows, 5, figsize=(11, 2.0 * n_rows),
                                gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.06]},
                                squeeze=False)
    for row, name in enumerate(names):
        finite = values[name][np.isfinite(values[name])]
        colour_map = plt.get_cmap(cmaps[row])
        if limits[row] is not None:
            norm = Normalize(float(limits[row][0]), float(limits[row][1]))
        elif symmetric[row]:
            bound = float(np.abs(finite).max()) if len(finite) else 1.0
            norm = Normalize(-bound, bound)
        else:
            norm = Normalize(float(finite.min()), float(finite.max())) if len(finite) else \
                Normalize(0.0, 1.0)
        for col, (hemi, view) in enumerate(PANELS):
            draw(axes[row, col], name, hemi, view, colour_map, norm)
            if row == 0:
                axes[row, col].set_title(f"{'left' if hemi == 'L' else 'right'} {view}",
                                         fontsize=8)
        axes[row, 0].text(-0.04, 0.5, str(titles[row]), transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=8, rotation=90)
        figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colour_map), cax=axes[row, 4])
        axes[row, 4].tick_params(labelsize=7)
    figure.subplots_adjust(wspace=0.02, hspace=0.08, left=0.06, right=0.95)
    return figure
