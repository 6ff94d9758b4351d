"""The model workflows: the fit reads the gene axis that ``embed`` wrote (real data)."""

import numpy as np
import pytest

from brainexpr.errors import InputError
from brainexpr.workflows.models import (AXIS_STATE_FILE, embed_genes, fit_model,
                                        read_gene_axis)

GENES = ["APOE", "MAPT", "APP", "TREM2", "CLU"]
TINY_INR = dict(model="factorized", n_layers=2, hidden_features=8, n_features=4, max_steps=2,
                validation_fraction=0.0, parcel_samples=4)


def test_fit_uses_the_gene_axis_of_embed(data_dir, tmp_path):
    computed = embed_genes(source="regional", genes=GENES, out_dir=tmp_path / "axis",
                           figure=False, data_dir=data_dir)
    read = read_gene_axis(tmp_path / "axis")
    assert read.genes == computed.genes and read.reference is None
    assert np.array_equal(read.positions.to_numpy(), computed.positions.to_numpy())
    assert np.array_equal(read.degree.to_numpy(), computed.degree.to_numpy())

    given = fit_model(source="regional", genes=GENES, gene_axis=tmp_path / "axis",
                      out=tmp_path / "given.pt", data_dir=data_dir, **TINY_INR)
    own = fit_model(source="regional", genes=GENES, out=tmp_path / "own.pt", data_dir=data_dir,
                    **TINY_INR)
    assert np.array_equal(given.gene_axis_, own.gene_axis_)
    assert np.array_equal(given.gene_axis_, computed.positions.loc[GENES].to_numpy())
    # the training values become the reference table, so genes can still be placed
    assert given.gene_axis_info_.reference.equals(own.gene_axis_info_.reference)
    np.testing.assert_array_equal(given.predict(np.zeros((3, 3)), np.ones(3)),
                                  own.predict(np.zeros((3, 3)), np.ones(3)))


def test_a_gene_axis_of_other_data_is_refused(data_dir, tmp_path, capsys):
    from brainexpr.cli import main

    embed_genes(source="regional", genes=GENES[:4], out_dir=tmp_path / "axis", figure=False,
                data_dir=data_dir)
    capsys.readouterr()  # only what the command below prints counts
    code = main(["-q", "fit", "--data-dir", str(data_dir), "--source", "regional", "--model",
                 "factorized", "--genes", ",".join(GENES), "--gene-axis", str(tmp_path / "axis"),
                 "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not the same ones" in err[0]
    with pytest.raises(InputError, match="not the same ones"):
        fit_model(source="regional", genes=GENES, gene_axis=tmp_path / "axis",
                  out=tmp_path / "m.pt", data_dir=data_dir, **TINY_INR)
    with pytest.raises(InputError, match="affinity 'shifted', not 'absolute'"):
        fit_model(source="regional", genes=GENES[:4], gene_axis=tmp_path / "axis",
                  affinity="absolute", out=tmp_path / "m.pt", data_dir=data_dir, **TINY_INR)
    (tmp_path / "axis" / AXIS_STATE_FILE).write_text("{not json")
    with pytest.raises(InputError, match="not a gene axis written by 'brainexpr embed'"):
        read_gene_axis(tmp_path / "axis")
    with pytest.raises(InputError, match="holds no gene_axis_state.json"):
        read_gene_axis(tmp_path)
    assert not (tmp_path / "m.pt").exists()
