"""Slices of gene maps and their uncertainty over the MNI152 template (nilearn), for papers.

* :func:`plot_map_slices`: one gene, orthogonal slices of its expression map and (when
  given) its uncertainty map, each with its colour bar.
* :func:`plot_gene_panel`: several genes side by side, one slice each (expression row and
  optional uncertainty row), for an overview figure.
* figures are saved with :func:`brainexpr.reporting.figures.save_figure`.

Voxels outside the brain mask, non-finite voxels and exact zeros (the writer's fill value)
are transparent, so the template shows around the brain.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np

from ..atlas.space import check_mni_image
from ..datasets.validate import check_choice
from ..errors import InputError
from .figures import pyplot as _pyplot

logger = logging.getLogger(__name__)

#: Colour maps of the two kinds of map (matplotlib names).
COLORMAPS = {"expr": "viridis", "std": "inferno"}
DISPLAY_MODES = ("ortho", "x", "y", "z")
#: Opacity of the map over the template (the anatomy shows through a little).
OVERLAY_OPACITY = 0.85
#: nilearn draws values with ``|v|`` below this as transparent: the zero/NaN background.
_TRANSPARENT_BELOW = 1e-9


def _load(image, name: str) -> nib.Nifti1Image:
    image = check_mni_image(image, name, ndim=(3, 4))
    if image.ndim == 4:
        if image.shape[3] != 1:
            raise InputError(f"{name} must be one 3-D map, got a 4-D image with {image.shape[3]} volumes")
        image = nib.Nifti1Image(np.asarray(image.dataobj)[..., 0], image.affine)
    return image


def _masked(image: nib.Nifti1Image, mask: nib.Nifti1Image | None) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Return the image with 0 where nothing is shown (transparent), and its shown values."""
    data = np.asarray(image.dataobj, dtype=np.float32).copy()
    if mask is not None:
        from ..atlas.space import resample_to_grid

        mask_data = np.asarray(mask.dataobj)
        if mask_data.shape != data.shape:
            shape = data.shape
            resolution = int(round(abs(image.affine[0, 0])))
            mask_data = np.asarray(resample_to_grid(mask, resolution, "nearest").dataobj)
            if mask_data.shape != shape:
                raise InputError(f"brain mask grid {mask_data.shape} does not match the map grid {shape}")
        data[mask_data <= 0] = np.nan
    data[~np.isfinite(data) | (data == 0)] = np.nan
    values = data[np.isfinite(data)]
    data = np.nan_to_num(data, nan=0.0)  # nilearn draws exact zeros below its threshold as transparent
    if values.size == 0:
        raise InputError("the map has no finite, non-zero value inside the brain mask")
    return nib.Nifti1Image(data, image.affine), values


def _range(values: np.ndarray, vmin=None, vmax=None) -> tuple[float, float]:
    low = float(np.percentile(values, 0.5)) if vmin is None else float(vmin)
    high = float(np.percentile(values, 99.5)) if vmax is None else float(vmax)
    if not high > low:
        high = low + max(abs(low) * 1e-3, 1e-6)
    return low, high


def _draw(image, values, ax, figure, bg_img, kind, cut_coords, display_mode, title, vmin, vmax,
          title_size=12):
    from nilearn import plotting

    low, high = _range(values, vmin, vmax)
    kwargs = {} if bg_img is None else {"bg_img": bg_img}
    display = plotting.plot_stat_map(
        image, cut_coords=cut_coords, display_mode=display_mode, colorbar=True, figure=figure,
        axes=ax, title=None, threshold=_TRANSPARENT_BELOW, annotate=True, draw_cross=False,
        black_bg=False, cmap=COLORMAPS[kind], symmetric_cbar=False, vmin=low, vmax=high,
        transparency=OVERLAY_OPACITY, resampling_interpolation="nearest", cbar_tick_format="%.3g",
        **kwargs)
    display.title(title, size=title_size, color="black", bgcolor="white", alpha=0.0)
    return display


def plot_map_slices(expr_img, std_img=None, *, gene: str, bg_img=None, mask=None,
                    cut_coords=None, display_mode: str = "ortho", vmin=None, vmax=None,
                    figsize=(9.0, None)):
    """Orthogonal slices of one gene's expression map and its uncertainty.

    Parameters
    ----------
    expr_img : nibabel.Nifti1Image or path
        Expression map, MNI152 (FSL 1 mm or 2 mm grid).
    std_img : nibabel.Nifti1Image or path, optional
        Uncertainty (standard deviation) map on the same grid; adds a second row.
    gene : str
        Gene symbol (titles).
    bg_img : nibabel.Nifti1Image or path, optional
        Background; default nilearn's MNI152 template. Pass
        :func:`brainexpr.datasets.load_template` for the FSL template of the maps' grid.
    mask : nibabel.Nifti1Image, optional
        Brain mask; voxels outside are transparent.
    cut_coords : (3,) sequence of float, mm, MNI152, optional
        Slice positions (ortho); default: nilearn's choice for the expression map (centre of
        its mass), used for every row.
    display_mode : {"ortho", "x", "y", "z"}
    vmin, vmax : float, optional
        Colour range of the expression row; default 0.5th to 99.5th percentile.
    figsize : (float, float or None)
        Width and height in inches; height None fits the number of rows.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_choice(display_mode, DISPLAY_MODES, "display_mode")
    plt = _pyplot()
    expr, expr_values = _masked(_load(expr_img, f"{gene} expression map"), mask)
    rows = [("expr", expr, expr_values, f"{gene} expression", vmin, vmax)]
    if std_img is not None:
        std = _load(std_img, f"{gene} uncertainty map")
        if std.shape != expr.shape or not np.allclose(std.affine, expr.affine):
            raise InputError(f"the {gene} uncertainty map grid {std.shape} differs from its "
                             f"expression map grid {expr.shape}")
        std, std_values = _masked(std, mask)
        rows.append(("std", std, std_values, f"{gene} uncertainty (SD)", None, None))
    if cut_coords is None and display_mode == "ortho":  # same slices in every row
        from nilearn.plotting import find_xyz_cut_coords

        cut_coords = tuple(float(c) for c in find_xyz_cut_coords(expr))
    width, height = figsize
    height = height if height is not None else 3.0 * len(rows)
    figure = plt.figure(figsize=(width, height))
    axes = figure.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (kind, image, values, title, low, high) in zip(axes, rows):
        _draw(image, values, ax, figure, bg_img, kind, cut_coords, display_mode, title, low, high)
    return figure


def plot_gene_panel(maps: dict, *, bg_img=None, mask=None, display_mode: str = "z",
                    cut_coords=(10.0,), columns: int = 4, panel_size=(3.0, 2.6)):
    """One slice per gene (expression, and uncertainty when given) in a grid.

    Parameters
    ----------
    maps : dict of str -> image or (image, image or None)
        Gene -> expression map, or (expression map, uncertainty map).
    bg_img, mask
        See :func:`plot_map_slices`.
    display_mode : {"x", "y", "z"}
        Slice direction.
    cut_coords : sequence of float
        Slice position(s) in mm along that direction.
    columns : int
        Genes per row of the grid.
    panel_size : (float, float)
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_choice(display_mode, DISPLAY_MODES[1:], "display_mode")
    if not maps:
        raise InputError("maps is empty: give at least one gene -> map")
    plt = _pyplot()
    items = [(gene, *(value if isinstance(value, tuple) else (value, None))) for gene, value in maps.items()]
    with_std = any(std is not None for _, _, std in items)
    columns = max(1, min(columns, len(items)))
    gene_rows = -(-len(items) // columns)
    rows_per_gene = 2 if with_std else 1
    figure = plt.figure(figsize=(panel_size[0] * columns, panel_size[1] * gene_rows * rows_per_gene))
    axes = figure.subplots(gene_rows * rows_per_gene, columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for index, (gene, expr_img, std_img) in enumerate(items):
        row, col = divmod(index, columns)
        expr, values = _masked(_load(expr_img, f"{gene} expression map"), mask)
        _draw(expr, values, axes[row * rows_per_gene, col], figure, bg_img, "expr", cut_coords,
              display_mode, f"{gene}", None, None, title_size=10)
        if std_img is not None:
            std, std_values = _masked(_load(std_img, f"{gene} uncertainty map"), mask)
            _draw(std, std_values, axes[row * rows_per_gene + 1, col], figure, bg_img, "std",
                  cut_coords, display_mode, f"{gene} SD", None, None, title_size=10)
    return figure
