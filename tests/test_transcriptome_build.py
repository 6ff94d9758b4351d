"""Building a gene atlas: low-rank evaluation, local vs distributed, resuming after a kill."""

from __future__ import annotations

import numpy as np
import pytest

import socket

from brainexpr.errors import InputError
from brainexpr.transcriptome import build as B
from brainexpr.transcriptome.store import load_atlas

from transcriptome_fixtures import CHUNKS, GENES, atlas_inputs, build_small  # noqa: F401

_REAL_CONNECT = socket.socket.connect     # before conftest's network blocker replaces it


def test_low_rank_kriging_equals_predict(atlas_inputs, data_dir):
    from brainexpr.maps.dense import voxel_grid
    from brainexpr.models.registry import load_model

    model = load_model(atlas_inputs[0])
    grid = voxel_grid(str(atlas_inputs[1]), 2, data_dir)
    evaluator = B.make_evaluator(model)
    assert isinstance(evaluator, B.LowRankKriging)
    assert evaluator.rank == 1 + 83 * (len(evaluator.ranges) + evaluator.with_trend)
    values, spread = evaluator.evaluate(evaluator.prepare(grid.coords, grid.tissue), slice(2, 9))
    expected = model.predict(grid.coords, tissue=grid.tissue, genes=GENES[2:9]).T
    assert spread is None
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture
def loopback_only(monkeypatch):
    """Let the test talk to a local Dask cluster: connections to this machine only."""
    import socket

    real_connect = _REAL_CONNECT

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") \
                and not host.startswith("/"):
            raise RuntimeError("tests must not use the network")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def test_distributed_build_equals_local(tmp_path, atlas_inputs, data_dir, loopback_only):
    distributed = pytest.importorskip("distributed")
    local = build_small(tmp_path / "local.zarr", atlas_inputs, data_dir)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        remote = build_small(tmp_path / "cluster.zarr", atlas_inputs, data_dir,
                             scheduler=cluster.scheduler_address)
    assert local.n_blocks == remote.n_blocks == 3 * 4
    a, b = load_atlas(local.path), load_atlas(remote.path)
    assert a.genes == b.genes == GENES
    # equal up to float32 rounding (BLAS may sum in another order with other thread counts)
    np.testing.assert_allclose(a.root["expression"][...], b.root["expression"][...], atol=1e-5)


def test_killed_build_resumes_only_unfinished_blocks(tmp_path, atlas_inputs, data_dir,
                                                     monkeypatch):
    real_write = B.write_block
    written = []

    def dies_after_five(*args):
        if len(written) == 5:
            raise KeyboardInterrupt("killed")
        written.append(args[3:5])
        return real_write(*args)

    monkeypatch.setattr(B, "write_block", dies_after_five)
    out = tmp_path / "atlas.zarr"
    with pytest.raises(KeyboardInterrupt):
        build_small(out, atlas_inputs, data_dir)
    with pytest.raises(InputError, match="not complete"):
        load_atlas(out)
    monkeypatch.setattr(B, "write_block", real_write)
    computed = []
    monkeypatch.setattr(B, "write_block", lambda *a: computed.append(a[3:5]) or real_write(*a))
    result = build_small(out, atlas_inputs, data_dir)
    assert result.n_computed == 12 - 5
    assert not set(computed) & set(written)
    fresh = build_small(tmp_path / "fresh.zarr", atlas_inputs, data_dir)
    np.testing.assert_array_equal(load_atlas(out).root["expression"][...],
                                  load_atlas(fresh.path).root["expression"][...])


def test_existing_outputs_are_refused(tmp_path, atlas_inputs, data_dir):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a gene-atlas store"):
        build_small(folder, atlas_inputs, data_dir)
    assert (folder / "notes.txt").read_text() == "keep me"
    done = build_small(tmp_path / "done.zarr", atlas_inputs, data_dir)
    with pytest.raises(InputError, match="complete atlas already"):
        build_small(done.path, atlas_inputs, data_dir)


def test_scheduler_address_from_environment(monkeypatch):
    monkeypatch.delenv(B.SCHEDULER_ENV, raising=False)
    assert B.resolve_scheduler(None) is None
    monkeypatch.setenv(B.SCHEDULER_ENV, "tcp://10.0.0.1:8786")
    assert B.resolve_scheduler(None) == "tcp://10.0.0.1:8786"
    assert B.resolve_scheduler("local") is None


def test_build_from_the_regional_table_fits_and_scores_every_gene(tmp_path, atlas_inputs,
                                                                   data_dir):
    result = B.build_atlas(out=tmp_path / "atlas.zarr", genes=GENES[:4], mask=str(atlas_inputs[1]),
                           chunks=CHUNKS, n_workers=1, data_dir=data_dir)
    atlas = load_atlas(result.path)
    assert atlas.genes == GENES[:4]
    assert atlas.attrs["model"]["name"] == "parcel-kriging"
    assert atlas.attrs["provenance"]["atlas_model_choice"]["model"] == "parcel-kriging"
    digest = next(iter(atlas.attrs["provenance"]["source_sha256"].values()))
    assert len(digest) == 64
    accuracy = atlas.root["accuracy_r"][...]
    assert np.isfinite(accuracy).all() and (accuracy > 0).all()   # real genes are smooth


@pytest.fixture(scope="module")
def ahba_folder(tmp_path_factory, data_dir):
    """A small `brainexpr ahba` output: 6 synthetic donors, 6 genes, up to 60 samples each."""
    from brainexpr.ahba import process_ahba
    from brainexpr.ahba.io import write_processed
    from brainexpr.ahba.synthetic import write_synthetic_download

    root = tmp_path_factory.mktemp("ahba_atlas")
    write_synthetic_download(root / "raw", n_genes=6, max_samples=60, random_state=1,
                             data_dir=data_dir)
    processed = process_ahba(root / "raw", use_cache=False, data_dir=data_dir)
    return write_processed(processed, root / "processed"), list(processed.genes.index)


def test_build_from_an_ahba_folder_equals_predict(tmp_path, ahba_folder, atlas_inputs, data_dir,
                                                  capsys):
    """`atlas build --source FOLDER`: donor kriging of every gene of the folder, evaluated with
    shared cross-covariances, equal to the model's own predict."""
    from brainexpr.cli import main
    from brainexpr.maps.dense import voxel_grid
    from brainexpr.models.registry import load_model

    folder, genes = ahba_folder
    store = tmp_path / "samples.zarr"
    assert main(["atlas", "build", "--source", str(folder), "--out", str(store), "--mask",
                 str(atlas_inputs[1]), "--dtype", "float32", "--chunks", "4,1000",
                 "--n-workers", "1", "--data-dir", str(data_dir)]) == 0
    atlas = load_atlas(store)
    assert atlas.genes == genes and atlas.attrs["model"]["name"] == "donor-kriging"
    model = load_model(store / "model.pt")
    evaluator = B.make_evaluator(model, with_std=True)
    assert isinstance(evaluator, B.LowRankDonorKriging)
    assert model.symmetry_.any()               # the mirrored term is exercised
    grid = voxel_grid(str(atlas_inputs[1]), 2, data_dir)
    gene = genes[int(np.argmax(model.symmetry_))]
    expected = model.predict(grid.coords, tissue=grid.tissue, genes=[gene])[:, 0]
    np.testing.assert_allclose(atlas.root["expression"][genes.index(gene), :], expected,
                               rtol=1e-4, atol=1e-4)
    values, spread = evaluator.evaluate(evaluator.prepare(grid.coords, grid.tissue), slice(1, 5))
    np.testing.assert_allclose(values, model.predict(grid.coords, grid.tissue, genes=genes[1:5]).T,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(spread, model.predict_std(grid.coords, grid.tissue,
                                                         genes=genes[1:5]).T, rtol=1e-5)
    # the per-gene accuracy is the donor kriging's trust score, and says so
    np.testing.assert_allclose(atlas.root["accuracy_r"][...], model.trust_, rtol=1e-6)
    assert "leave-one-block-out" in atlas.attrs["accuracy"]
    assert len(atlas.attrs["provenance"]["source_sha256"]) == 3
