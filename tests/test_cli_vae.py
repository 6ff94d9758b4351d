"""Tests of ``brainexpr vae``: the workflow, its outputs, figures and errors."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest

from brainexpr.cli import build_parser, main
from brainexpr.cli import vae as cli_vae

#: A small but complete configuration (few epochs and surrogates) for end-to-end runs.
FAST = ["--n-epochs", "60", "--n-nulls", "30", "--n-nulls-vae", "4", "--n-components", "3"]


def _subparser(name: str):
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices[name]


def test_flags_map_one_to_one_to_the_workflow():
    from brainexpr.workflows import vae as workflow

    dests = {a.dest for a in _subparser("vae")._actions} - {"help", "data_dir"}
    kwargs = set(inspect.signature(workflow.fit_vae).parameters) - {"data_dir"}
    assert dests == kwargs
    assert cli_vae.GENE_SETS == workflow.GENE_SETS
    defaults = {a.dest: a.default for a in _subparser("vae")._actions if a.dest in kwargs}
    signature = inspect.signature(workflow.fit_vae).parameters
    for name in ("target", "genes", "graph", "cv", "n_nulls", "n_nulls_vae", "n_components",
                 "beta", "graph_weight", "n_epochs", "learning_rate", "random_state"):
        assert defaults[name] == signature[name].default, name


@pytest.mark.realdata
def test_default_problem_end_to_end(data_dir, tmp_path, capsys):
    out = tmp_path / "vae"
    code = main(["vae", "--data-dir", str(data_dir), "--out", str(out), *FAST])
    printed = capsys.readouterr().out
    assert code == 0
    assert "ADNI AD atrophy: 68 regions x 916 genes" in printed and "paper" in printed
    expected = {"validation.csv", "predictions.csv", "programs.csv", "gene_loadings.csv",
                "top_genes.csv", "loss_terms.csv", "loss_history.csv", "graph_vae.pt",
                "program_head_weights.csv", "vae_report.md", "vae_summary.json",
                "figures/predicted_vs_observed.png", "figures/predicted_vs_observed.svg",
                "figures/validation_summary.png", "figures/top_genes.png",
                "figures/program_maps.png"}
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert expected <= written
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".vae")]

    summary = json.loads((out / "vae_summary.json").read_text())
    assert summary["regions"]["n"] == 68 and summary["genes"]["n"] == 916
    assert summary["graph"] == {"method": "atlas", "laplacian": "normalized", "edges": 185}
    assert summary["cv"]["groups"] == 10
    assert summary["paper"]["r"] == 0.9439
    validation = pd.read_csv(out / "validation.csv", index_col=0)
    assert list(validation.index) == ["graph_vae", "pls", "ridge", "pca"]
    assert validation.loc["graph_vae", "n_nulls"] == 4
    assert validation.loc["pls", "n_nulls"] == 30
    # the honest picture: in-sample fits are far better than held-out lobes
    assert (validation["in_sample_r2"] > validation["cv_r2"]).all()
    assert validation.loc["pls", "cv_r"] == pytest.approx(0.487, abs=0.005)

    predictions = pd.read_csv(out / "predictions.csv", index_col=0)
    assert predictions.shape[0] == 68 and predictions["fold"].nunique() == 10
    programs = pd.read_csv(out / "programs.csv", index_col=0)
    loadings = pd.read_csv(out / "gene_loadings.csv", index_col=0)
    assert programs.shape == (68, 3) and loadings.shape == (916, 3)
    top = pd.read_csv(out / "top_genes.csv")
    assert len(top) == 3 * 2 * 20
    first = top[(top["program"] == "program1") & (top["sign"] == "positive")]
    assert first["gene"].iloc[0] == loadings["program1"].idxmax()
    loss = pd.read_csv(out / "loss_terms.csv", index_col=0)
    assert list(loss.index) == ["reconstruction", "kl", "prediction", "graph",
                                "prediction_graph", "total"]

    # the checkpoint alone reproduces the in-sample predictions and programs
    from brainexpr.datasets import load_regional_expression
    from brainexpr.models.vae import GraphVAERegressor

    model = GraphVAERegressor.load(out / "graph_vae.pt")
    X = load_regional_expression(list(loadings.index), data_dir=data_dir).loc[programs.index]
    np.testing.assert_allclose(model.predict(X), predictions["graph_vae_in_sample"], rtol=1e-4)
    np.testing.assert_allclose(model.transform(X), programs.to_numpy(), rtol=1e-4, atol=1e-5)
    report = (out / "vae_report.md").read_text()
    assert "0.9439" in report and "blocked-CV" in report


@pytest.mark.realdata
def test_user_target_in_another_naming_scheme(data_dir, tmp_path, capsys):
    from brainexpr.datasets import load_pathology_map, region_table

    tau = load_pathology_map("tau", "ad", data_dir=data_dir)
    table = region_table()
    cortex = [k for k in tau.index if table.loc[k, "structure"] == "cortex"]
    target = tmp_path / "thinning.csv"
    pd.DataFrame({"region": table.loc[cortex, "fs_name"], "effect": tau.loc[cortex].to_numpy()}
                 ).to_csv(target, index=False)
    out = tmp_path / "user"
    code = main(["vae", "--data-dir", str(data_dir), "--out", str(out), "--target", str(target),
                 "--null-method", "none", "--baselines", "pls", "--no-figures", *FAST])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "vae_summary.json").read_text())
    assert summary["regions"]["n"] == 68 and summary["target"] == "thinning.csv (effect)"
    assert set(summary["validation"]) == {"graph_vae", "pls"}
    assert summary["validation"]["pls"]["null_p"] is None
    assert not (out / "figures").exists()


@pytest.mark.parametrize("content, extra, message", [
    ("region,value\nL_bankssts,1\nNowhere_region,2\n", [], "unknown"),
    ("region,a,b\nL_bankssts,1,2\n", [], "--target-column"),
    ("region,value\nL_bankssts,1\nR_bankssts,2\n", [], "at least 20"),
    (None, ["--target", "amyloid-ish"], "target must be one of"),
    (None, ["--graph", "knn"], "invalid choice"),
    (None, ["--baselines", "pls,lasso"], "baselines must be among 'pls', 'ridge', 'pca'"),
    (None, ["--beta", "-1"], "beta must be"),
])
def test_bad_input_gives_one_line_and_writes_nothing(data_dir, tmp_path, capsys, content,
                                                     extra, message):
    args = ["vae", "--data-dir", str(data_dir), "--out", str(tmp_path / "o"), "--no-figures",
            "--n-nulls-vae", "0", "--n-nulls", "0"]
    if content is not None:
        (tmp_path / "target.csv").write_text(content)
        args += ["--target", str(tmp_path / "target.csv")]
    if message == "invalid choice":
        with pytest.raises(SystemExit) as exit_info:
            main(args + extra)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
        return
    code = main(args + extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert message in err[-1] and "Traceback" not in err[-1]
    assert not (tmp_path / "o").exists()


def test_refuses_to_replace_a_foreign_folder(data_dir, tmp_path, capsys):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    code = main(["vae", "--data-dir", str(data_dir), "--out", str(out)])
    assert code == 2 and "brainexpr did not write" in capsys.readouterr().err
    assert (out / "thesis.tex").read_text() == "do not delete"


@pytest.mark.realdata
def test_left_hemisphere_excel_target_with_spin_null(data_dir, tmp_path, capsys):
    """One behaviour with associate: a left-only map is analysed on the left hemisphere."""
    from brainexpr.datasets import load_pathology_map

    tau = load_pathology_map("tau", "ad", data_dir=data_dir)
    left = [k for k in tau.index if k.startswith("L_") and "thalamus" not in k]
    workbook = tmp_path / "left.xlsx"
    tau.loc[left].rename("effect").to_frame().to_excel(workbook)
    out = tmp_path / "left"
    code = main(["vae", "--data-dir", str(data_dir), "--out", str(out), "--target",
                 str(workbook), "--null-method", "spin", "--baselines", "pls", "--no-figures",
                 "--n-epochs", "30", "--n-nulls", "20", "--n-nulls-vae", "2",
                 "--n-components", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "covers only the left hemisphere" in captured.err
    summary = json.loads((out / "vae_summary.json").read_text())
    assert summary["regions"]["n"] == 34 and summary["null"]["method"] == "spin"
    assert summary["validation"]["pls"]["null_p"] is not None
