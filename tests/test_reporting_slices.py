"""Tests of brainexpr.reporting.slices: paper figures of gene maps over the MNI template."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from brainexpr.atlas import mni_grid, voxel_to_mni  # noqa: E402
from brainexpr.errors import InputError  # noqa: E402
from brainexpr.reporting.figures import save_figure  # noqa: E402
from brainexpr.reporting.slices import plot_gene_panel, plot_map_slices  # noqa: E402


@pytest.fixture(scope="module")
def maps():
    """Two smooth 2 mm 'gene' fields (0 outside a ball brain) and an uncertainty map."""
    shape, affine = mni_grid(2)
    mm = voxel_to_mni(np.indices(shape).reshape(3, -1).T, affine).reshape(*shape, 3)
    brain = (mm[..., 0] / 70) ** 2 + ((mm[..., 1] + 18) / 95) ** 2 + ((mm[..., 2] - 10) / 70) ** 2 < 1
    expr = np.where(brain, 2.0 + np.sin(mm[..., 0] / 20.0), 0.0).astype(np.float32)
    std = np.where(brain, 0.1 + 0.05 * np.cos(mm[..., 2] / 15.0), 0.0).astype(np.float32)
    other = np.where(brain, 5.0 + mm[..., 1] / 100.0, 0.0).astype(np.float32)
    image = lambda data: nib.Nifti1Image(data, affine)  # noqa: E731
    mask = nib.Nifti1Image(brain.astype(np.uint8), affine)
    return image(expr), image(std), image(other), mask


def _overlay_limits(figure):
    """Colour limits of the map overlays drawn by nilearn (one per axes with a colour map)."""
    limits = set()
    for ax in figure.axes:
        for artist in ax.get_images():
            if artist.get_cmap().name in ("viridis", "inferno"):
                limits.add((artist.get_cmap().name, *np.round(artist.get_clim(), 4)))
    return limits


def test_map_slices_colour_range_ignores_background(maps, tmp_path):
    expr, std, _, mask = maps
    figure = plot_map_slices(expr, std, gene="APOE", mask=mask, cut_coords=(0, -18, 10))
    inside = np.asarray(expr.dataobj)[np.asarray(mask.dataobj) > 0]
    low, high = np.percentile(inside, [0.5, 99.5])
    limits = _overlay_limits(figure)
    # two rows (expression in viridis, SD in inferno); the background zeros do not pull the range to 0
    assert ("viridis", round(low, 4), round(high, 4)) in limits
    assert {name for name, *_ in limits} == {"viridis", "inferno"}
    assert low > 1.0
    paths = save_figure(figure, tmp_path / "figures" / "APOE.png")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:2000]
    assert not plt.fignum_exists(figure.number)


def test_gene_panel_and_errors(maps, tmp_path):
    expr, std, other, mask = maps
    figure = plot_gene_panel({"APOE": (expr, std), "TREM2": other}, mask=mask, cut_coords=(10.0,))
    names = sorted(name for name, *_ in _overlay_limits(figure))
    assert names.count("viridis") == 2 and names.count("inferno") == 1
    plt.close(figure)

    shape, affine = mni_grid(1)
    wrong_grid = nib.Nifti1Image(np.ones(shape, np.float32), affine)
    with pytest.raises(InputError, match="uncertainty map grid"):
        plot_map_slices(expr, wrong_grid, gene="APOE")
    empty = nib.Nifti1Image(np.zeros(expr.shape, np.float32), expr.affine)
    with pytest.raises(InputError, match="no finite, non-zero value"):
        plot_map_slices(empty, gene="APOE")
    with pytest.raises(InputError, match="display_mode must be one of"):
        plot_map_slices(expr, gene="APOE", display_mode="mosaic")
    with pytest.raises(InputError, match="formats must be among"):
        save_figure(plt.figure(), tmp_path / "x.png", formats=("jpg",))
