"""Tests of ``brainexpr associate`` and its workflow (brainexpr.workflows.associate)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from brainexpr.cli import build_parser, main
from brainexpr.datasets.regions import convert
from brainexpr.workflows.associate import associate
from brainexpr.outputs import MANIFEST

FAST = ["--n-surrogates", "200", "--n-permutations", "500"]


@pytest.fixture(scope="module")
def second_source(data_dir, tmp_path_factory):
    """An 'INR-like' second source: the regional table plus noise, regions in FreeSurfer names."""
    from brainexpr.datasets import load_gene_set, load_regional_expression

    table = load_regional_expression(load_gene_set("ad", data_dir=data_dir), data_dir=data_dir,
                                     allow_missing=True)
    noisy = table.drop(index="B_brainstem") + np.random.default_rng(0).normal(0, 0.08, (82, 100))
    noisy.index = convert(noisy.index, "fs_name")
    path = tmp_path_factory.mktemp("sources") / "inr_regional.csv"
    noisy.to_csv(path)
    return path


def test_help_lists_associate():
    parser = build_parser()
    assert "associate" in parser._subparsers._group_actions[0].choices


def test_default_run_with_second_source(data_dir, second_source, tmp_path, capsys):
    out = tmp_path / "assoc"
    code = main(["associate", "--data-dir", str(data_dir), "--out", str(out),
                 "--compare", str(second_source), *FAST])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [MANIFEST, "association_summary.json", "association_summary.md",
                     "associations.csv",
                     "fig_axis_bars.png", "fig_open_targets.png", "fig_sources_scatter.png",
                     "fig_target_map.png", "target_map.csv"]
    table = pd.read_csv(out / "associations.csv", index_col="gene")
    assert table.shape[0] == 100
    for column in ("axis_position", "axis_rank", "open_targets_score", "abagen_pearson_r",
                   "abagen_pearson_p_spatial", "abagen_pearson_q_spatial", "inr_spearman_r",
                   "abs_difference", "discordant"):
        assert column in table.columns
    assert list(table["axis_rank"]) == list(range(1, 101))      # sorted along the gene axis
    assert table["discordant"].sum() == 6
    assert table.loc["MAPT", "abagen_pearson_r"] == pytest.approx(0.4015, abs=1e-3)
    summary = json.loads((out / "association_summary.json").read_text())
    assert summary["regions"]["n"] == 68 and summary["null"]["distances"] == "adni86"
    assert 0.8 < summary["agreement"]["r"] < 0.97           # noisy copy of the same table
    assert summary["sources"]["abagen"]["open_targets"]["n_genes"] == 73
    gradient = summary["sources"]["abagen"]["axis_gradient"]
    assert gradient["p_permutation"] < 0.01 and gradient["p_spatial"] > 0.05
    assert "| Open Targets vs signed r" in (out / "association_summary.md").read_text()
    assert len(pd.read_csv(out / "target_map.csv")) == 68
    printed = capsys.readouterr().out
    assert "agreement R =" in printed and "wrote 8 files" in printed


def test_user_target_csv_in_another_naming_scheme(data_dir, tmp_path):
    """A target CSV with 'LT_' names and two columns, left cortex only, Moran null."""
    from brainexpr.analysis.association import select_regions

    keys = select_regions("cortex", "left")
    values = np.linspace(0, 1, len(keys))
    csv = tmp_path / "target.csv"
    pd.DataFrame({"region": convert(keys, "lt"), "thickness": values, "other": 1 - values}) \
        .to_csv(csv, index=False)
    result = associate(None, target=str(csv), target_column="thickness", hemisphere="left",
                       genes="APOE,MAPT,BIN1,CLU", null_method="moran", n_surrogates=100,
                       n_permutations=100, figures=False, data_dir=data_dir)
    assert result.files == []
    assert result.summary["regions"]["n"] == 34
    assert result.summary["target"]["name"] == "thickness"
    assert sorted(result.table.index) == ["APOE", "BIN1", "CLU", "MAPT"]
    assert result.summary["null"]["distances"] == "adni86"


@pytest.mark.parametrize("problem, message", [
    ("nan", "missing or infinite values in regions: L_cuneus"),
    ("duplicate", "L_bankssts and Bankssts_L"),
    ("unknown", "unknown region names: Left-Moon"),
    ("missing", "absent from the target map .L_insula"),
])
def test_bad_target_fails_cleanly(data_dir, tmp_path, capsys, problem, message):
    from brainexpr.datasets import load_pathology_map

    tau = load_pathology_map("tau", "ad", data_dir=data_dir)
    if problem == "nan":
        tau["L_cuneus"] = np.nan
    elif problem == "duplicate":
        tau = pd.concat([tau, pd.Series({"Bankssts_L": 0.1})])
    elif problem == "unknown":
        tau = pd.concat([tau, pd.Series({"Left-Moon": 0.1})])
    else:
        tau = tau.drop("L_insula")
    csv = tmp_path / "tau.csv"
    tau.rename("tau").to_csv(csv)
    out = tmp_path / "never"
    code = main(["associate", "--data-dir", str(data_dir), "--out", str(out), "--target",
                 str(csv), "--no-figures", *FAST])
    error = capsys.readouterr().err
    assert code == 2
    assert re.search(message, error), error
    assert not out.exists()                                   # no half-written output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_refuses_to_replace_an_unrelated_folder(data_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    code = main(["associate", "--data-dir", str(data_dir), "--out", str(tmp_path),
                 "--no-figures", *FAST])
    assert code == 2
    assert "brainexpr did not write" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_options_are_checked(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["associate", "--null-method", "spin"])
    out = ["--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--no-figures"]
    assert main(["associate", *out, "--region-set", "neocortex"]) == 2
    assert "region_set must be one of cortex" in capsys.readouterr().err
    assert main(["associate", *out, "--target", "pet"]) == 2
    assert "target must be one of tau, abeta, met, atrophy" in capsys.readouterr().err
