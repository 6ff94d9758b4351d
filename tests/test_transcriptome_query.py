"""Queries of a gene atlas: get equals predict, parcellate, match recovers a planted gene."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainexpr.cli import main
from brainexpr.transcriptome import query as Q
from brainexpr.transcriptome.store import load_atlas

from transcriptome_fixtures import GENES, atlas_inputs, build_small  # noqa: F401


@pytest.fixture(scope="module")
def store(tmp_path_factory, atlas_inputs, data_dir):
    folder = tmp_path_factory.mktemp("query")
    return build_small(folder / "atlas.zarr", atlas_inputs, data_dir).path


def _get_and_predict(tmp_path, store, atlas_inputs, data_dir, std: bool):
    model, mask = atlas_inputs
    flag = ["--std"] if std else []
    assert main(["atlas", "get", str(store), "APOE,MAPT", *flag, "--out-dir",
                 str(tmp_path / "get"), "--data-dir", str(data_dir)]) == 0
    assert main(["predict", "--model", str(model), "--genes", "APOE,MAPT", "--mask", str(mask),
                 "--std" if std else "--no-std", "--out-dir", str(tmp_path / "predict"),
                 "--data-dir", str(data_dir)]) == 0
    got = sorted(p.name for p in (tmp_path / "get").glob("*.nii.gz"))
    assert got == sorted(p.name for p in (tmp_path / "predict").glob("*.nii.gz"))
    assert len(got) == (4 if std else 2)
    for name in got:
        a = nib.load(tmp_path / "get" / name)
        b = nib.load(tmp_path / "predict" / name)
        np.testing.assert_array_equal(a.affine, b.affine)
        np.testing.assert_allclose(a.get_fdata(), b.get_fdata(), atol=1e-5)


def test_get_equals_predict(tmp_path, store, atlas_inputs, data_dir):
    _get_and_predict(tmp_path, store, atlas_inputs, data_dir, std=False)


def test_std_atlas_equals_predicted_std(tmp_path, atlas_inputs, data_dir):
    with_std = build_small(tmp_path / "std.zarr", atlas_inputs, data_dir, std=True).path
    _get_and_predict(tmp_path, with_std, atlas_inputs, data_dir, std=True)


def test_get_refuses_unknown_genes_and_missing_std(tmp_path, store, capsys):
    assert main(["atlas", "get", str(store), "APOEE", "--out-dir", str(tmp_path / "x")]) == 2
    assert "closest: APOE" in capsys.readouterr().err
    assert main(["atlas", "get", str(store), "APOE", "--std", "--out-dir",
                 str(tmp_path / "x")]) == 2
    assert "no std values" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_parcellate_is_the_mean_within_parcels(store, data_dir):
    from brainexpr.datasets import load_atlas as load_parcellation

    atlas = load_atlas(store)
    table = Q.parcellate_atlas(store, "brainnetome246", cache=False, data_dir=data_dir)
    regions = Q.voxel_regions(atlas.grid, load_parcellation("brainnetome246", data_dir))
    values = atlas.read(["CLU"])[0]
    first = int(np.flatnonzero(np.bincount(regions[regions >= 0]) > 0)[0])
    assert table["CLU"].iloc[first] == pytest.approx(values[regions == first].mean(), rel=1e-5)
    assert table.shape == (246, len(GENES))
    cached = Q.parcellate_atlas(store, "dk83", data_dir=data_dir)      # written by the build
    np.testing.assert_allclose(cached, Q.parcellate_atlas(store, "dk83", cache=False,
                                                          data_dir=data_dir), rtol=1e-6)


def test_match_recovers_a_planted_gene(tmp_path, store, data_dir):
    regional = Q.parcellate_atlas(store, "dk83", data_dir=data_dir).dropna()
    rng = np.random.default_rng(0)
    planted = regional["PICALM"] + rng.normal(0, 0.05 * regional["PICALM"].std(), len(regional))
    planted.rename("my_map").to_csv(tmp_path / "map.csv")
    assert main(["atlas", "match", str(store), str(tmp_path / "map.csv"), "--n-surrogates",
                 "200", "--out-dir", str(tmp_path / "match"), "--data-dir", str(data_dir)]) == 0
    table = pd.read_csv(tmp_path / "match" / "matches.tsv", sep="\t", index_col=0)
    assert table.index[0] == "PICALM" and table["rank"].iloc[0] == 1
    assert table["pearson_r"].iloc[0] > 0.99
    assert len(table) == len(GENES)
    assert {"pearson_p_spatial", "pearson_q_spatial", "accuracy_r"} <= set(table.columns)
    assert (tmp_path / "match" / "matches.png").is_file()


def test_match_takes_a_nifti_map(tmp_path, store, data_dir):
    atlas = load_atlas(store)
    image = nib.Nifti1Image(atlas.grid.volume(atlas.read(["GRN"])[0]), atlas.grid.affine)
    nib.save(image, tmp_path / "map.nii.gz")
    table = Q.match_map(store, tmp_path / "map.nii.gz", n_surrogates=50, data_dir=data_dir)
    assert table.index[0] == "GRN"


def test_viewer_serves_any_gene_of_a_store_on_demand(store, data_dir):
    import base64
    import gzip
    import io
    import re

    from brainexpr.workflows.view import prepare_viewer

    site = prepare_viewer(store, data_dir=data_dir)
    entries = {m["gene"]: m for m in site.manifest()["maps"]}
    assert sorted(entries) == sorted(GENES)
    assert site._cache == {}                         # nothing read before a gene is picked
    script = site.read(f"data/{entries['BIN1']['expr']}.js").decode("ascii")
    payload = base64.b64decode(re.search(r'"([A-Za-z0-9+/=]+)";', script).group(1))
    image = nib.Nifti1Image.from_stream(io.BytesIO(gzip.decompress(payload)))
    shown = np.asarray(image.dataobj)
    atlas = load_atlas(store)
    expected = atlas.grid.volume(atlas.read(["BIN1"])[0])
    assert np.isfinite(shown).sum() > 1000
    np.testing.assert_allclose(shown[np.isfinite(shown)], expected[np.isfinite(shown)], rtol=1e-6)
    assert 'list="gene-names"' in site.index_html()


def test_get_equals_predict_with_std_for_an_inr_ensemble(tmp_path, atlas_inputs, data_dir,
                                                         torch_one_thread):
    from brainexpr.workflows.models import fit_model

    model = tmp_path / "inr.pt"
    fit_model(source="regional", genes=GENES[:3], model="factorized", out=model, n_layers=2,
              hidden_features=16, n_features=8, gene_hidden=8, max_steps=5, n_ensemble=2,
              learning_rate=1e-3, validation_fraction=0.0, device="cpu", data_dir=data_dir)
    store = build_small(tmp_path / "inr.zarr", (model, atlas_inputs[1]), data_dir,
                        std=True).path
    assert load_atlas(store).has_std
    mask = str(atlas_inputs[1])
    assert main(["atlas", "get", str(store), "MAPT", "--std", "--out-dir",
                 str(tmp_path / "get")]) == 0
    assert main(["predict", "--model", str(model), "--genes", "MAPT", "--std", "--mask", mask,
                 "--out-dir", str(tmp_path / "predict"), "--data-dir", str(data_dir)]) == 0
    names = sorted(p.name for p in (tmp_path / "get").glob("*.nii.gz"))
    assert names == sorted(p.name for p in (tmp_path / "predict").glob("*.nii.gz"))
    assert any(name.endswith("_std.nii.gz") for name in names)
    for name in names:
        np.testing.assert_allclose(nib.load(tmp_path / "get" / name).get_fdata(),
                                   nib.load(tmp_path / "predict" / name).get_fdata(), atol=1e-5)
