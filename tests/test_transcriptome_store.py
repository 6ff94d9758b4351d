"""The gene-atlas store: values, grid and provenance survive the round trip."""

from __future__ import annotations

import numpy as np
import pytest

import brainexpr
from brainexpr.errors import InputError
from brainexpr.transcriptome import store as S
from brainexpr.transcriptome.build import file_sha256, make_evaluator

from transcriptome_fixtures import GENES, atlas_inputs, build_small  # noqa: F401


@pytest.fixture(scope="module")
def stores(tmp_path_factory, atlas_inputs, data_dir):
    folder = tmp_path_factory.mktemp("stores")
    return {dtype: build_small(folder / f"{dtype}.zarr", atlas_inputs, data_dir, dtype=dtype).path
            for dtype in S.DTYPES}


def test_round_trip_of_values_grid_and_provenance(stores, atlas_inputs, data_dir):
    from brainexpr.maps.dense import voxel_grid
    from brainexpr.models.registry import load_model

    atlas = S.load_atlas(stores["float32"])
    grid = voxel_grid(str(atlas_inputs[1]), 2, data_dir)
    assert atlas.genes == GENES
    np.testing.assert_array_equal(atlas.grid.ijk, grid.ijk)
    np.testing.assert_array_equal(atlas.grid.coords, grid.coords)
    np.testing.assert_array_equal(atlas.grid.affine, grid.affine)
    assert atlas.grid.shape == grid.shape and atlas.grid.label == "2mm"
    evaluator = make_evaluator(load_model(atlas_inputs[0]))
    expected = evaluator.evaluate(evaluator.prepare(grid.coords, grid.tissue), slice(None))[0]
    # float32 stored as computed (blocked products round differently from one product)
    np.testing.assert_allclose(atlas.read(GENES), expected, rtol=1e-5, atol=1e-6)
    provenance = atlas.attrs["provenance"]
    assert provenance["source_sha256"] == {str(atlas_inputs[0]): file_sha256(atlas_inputs[0])}
    assert provenance["packages"]["zarr"].startswith("3.")
    assert atlas.attrs["model"]["name"] == "parcel-kriging"
    assert atlas.attrs["settings"]["chunks"] == [5, 1000]
    assert atlas.root["expression"].chunks == (5, 1000)
    # the model file in the store predicts what the store holds
    assert load_model(atlas.path / S.MODEL_FILE).genes_ == GENES


def test_float16_error_is_measured_and_bounded(stores):
    exact = S.load_atlas(stores["float32"]).read(GENES)
    rounded = S.load_atlas(stores["float16"])
    error = np.abs(rounded.read(GENES) - exact).max()
    recorded = rounded.attrs["float16_max_abs_error"]
    assert error == pytest.approx(recorded, rel=1e-6)
    assert 0 < recorded <= np.abs(exact).max() * 2.0 ** -11
    assert S.load_atlas(stores["float32"]).attrs["float16_max_abs_error"] == 0.0


def test_open_atlas_is_a_dask_backed_dataset(stores):
    dataset = brainexpr.open_atlas(stores["float32"])
    assert dataset.expression.dims == ("gene", "voxel")
    assert type(dataset.expression.data).__module__.startswith("dask")
    assert dataset.expression.data.chunksize == (5, 1000)
    np.testing.assert_array_equal(dataset.expression.sel(gene="MAPT").values,
                                  S.load_atlas(stores["float32"]).read(["MAPT"])[0])
    assert dataset.attrs["model"]["name"] == "parcel-kriging"


def test_not_a_store_and_unknown_gene(tmp_path, stores):
    with pytest.raises(InputError, match="not a gene-atlas store"):
        S.load_atlas(tmp_path)
    with pytest.raises(InputError, match="closest"):
        S.load_atlas(stores["float32"]).read(["APOEE"])
