"""Tests of brainexpr.reporting.surface: regional and vertex maps on the inflated cortex."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from brainexpr.atlas.surface import dk_vertex_labels
from brainexpr.datasets import region_table
from brainexpr.errors import InputError
from brainexpr.reporting import surface as figures


def test_surface_maps_draw_every_region(data_dir):
    """Each cortical region gets its own colour on the surface (no region lost or swapped)."""
    table = region_table()
    cortex = list(table.index[table["structure"] == "cortex"])
    for hemi in ("L", "R"):
        seen = set()
        for view in ("lateral", "medial"):
            region, shade, drawn, extent = figures._view(str(data_dir), hemi, view)
            seen |= set(region[drawn])
            assert extent[1] > extent[0] and extent[3] > extent[2]
            assert 0.5 <= shade[drawn].min() and shade[drawn].max() <= 1.0
        assert {k for k in cortex if k.startswith(hemi)} <= seen
        assert seen <= {k for k in cortex if k.startswith(hemi)} | {""}   # "" = medial wall
    lateral, _, _, _ = figures._view(str(data_dir), "L", "lateral")
    assert "L_precentral" in set(lateral.ravel()) and "L_lingual" not in set(lateral.ravel())
    values = pd.Series(np.arange(len(cortex), dtype=float), index=cortex)
    figure = figures.plot_surface_maps(values, data_dir=data_dir)
    assert len(figure.axes) == 5
    plt.close(figure)


def test_vertex_maps_paint_the_vertex_values(data_dir):
    """A vertex map that is constant within regions paints the same pixels as the regions."""
    key = str(data_dir)
    codes = {k: float(i) for i, k in enumerate(region_table().index)}
    maps = {"codes": {h: np.array([codes.get(k, np.nan) for k in dk_vertex_labels(h, key)])
                      for h in ("L", "R")}}
    figure = figures.plot_vertex_maps(maps, data_dir=data_dir)
    assert len(figure.axes) == 5
    plt.close(figure)
    # the face value is the mean of its vertices: inside a region it is the region's code
    _, faces, labels = figures._surface(key)["L"]
    face, _, drawn, _ = figures._projection(key, "L", "lateral")
    vertex = maps["codes"]["L"]
    pixel = vertex[faces].mean(axis=1)[face[drawn]]
    region, _, _, _ = figures._view(key, "L", "lateral")
    uniform = (labels[faces[face[drawn]]] == labels[faces[face[drawn], :1]]).all(axis=1)
    expected = np.array([codes.get(k, np.nan) for k in region[drawn]])
    np.testing.assert_array_equal(pixel[uniform], expected[uniform])
    assert uniform.mean() > 0.8
    with pytest.raises(InputError, match="10242"):
        figures.plot_vertex_maps({"bad": {"L": np.ones(5)}}, data_dir=data_dir)
