"""Tests of ``brainexpr associate`` and its workflow (brainexpr.workflows.associate)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from brainexpr.cli import build_parser, main
from brainexpr.datasets.regions import convert
from brainexpr.errors import InputError
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
    ("nan", r"1 without a value \(NaN\) \(L_cuneus\).*--drop-missing"),
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
        main(["associate", "--null-method", "spun"])
    out = ["--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--no-figures"]
    assert main(["associate", *out, "--region-set", "neocortex"]) == 2
    assert "region_set must be one of 'cortex'" in capsys.readouterr().err
    assert main(["associate", *out, "--target", "pet"]) == 2
    assert "target must be one of 'tau', 'abeta', 'met', 'atrophy' or a CSV file" in capsys.readouterr().err


# --------------------------------------------------------------------------- users' tables
QUICK = ["--n-surrogates", "100", "--n-permutations", "200", "--no-figures"]
GENES = "APOE,MAPT,BIN1,CLU,PICALM,TREM2"


def _summary(out):
    return json.loads((out / "association_summary.json").read_text())


def _tau(data_dir):
    from brainexpr.datasets import load_pathology_map

    return load_pathology_map("tau", "ad", data_dir=data_dir)


def test_integer_ids_of_the_package_regional_csv(data_dir, tmp_path, capsys):
    """abagen's own layout (label = ids 1-83, a Region name column) as every input."""
    from brainexpr.datasets import load_regional_expression
    from brainexpr.datasets.regions import region_table

    table = load_regional_expression(GENES.split(","), data_dir=data_dir)
    ids = region_table().loc[table.index, "dk83_id"].astype(int).to_numpy()
    source = table.copy()
    source.insert(0, "Region", [k.split("_", 1)[1] for k in table.index])
    source.index = pd.Index(ids, name="label")
    expression = tmp_path / "regional.csv"
    source.to_csv(expression)
    tau = _tau(data_dir)
    target = tmp_path / "tau_ids.csv"
    keys = [k for k in tau.index if k in table.index]
    pd.DataFrame({"label": region_table().loc[keys, "dk83_id"].astype(int),
                  "tau": tau.loc[keys].to_numpy()}).to_csv(target, index=False)
    out = tmp_path / "ids"
    code = main(["associate", "--data-dir", str(data_dir), "--out", str(out), "--expression",
                 str(expression), "--compare", str(expression), "--target", str(target),
                 "--gene-axis", "none", *QUICK])
    assert code == 0, capsys.readouterr().err
    summary = _summary(out)
    assert summary["regions"]["n"] == 68 and summary["sources"]["abagen"]["n_genes"] == 6
    result = pd.read_csv(out / "associations.csv", index_col="gene")
    # same numbers as the built-in table with the built-in target
    reference = associate(None, genes=GENES, null_method="none", gene_axis="none",
                          figures=False, data_dir=data_dir).table
    np.testing.assert_allclose(result.loc[reference.index, "abagen_pearson_r"],
                               reference["abagen_pearson_r"], atol=1e-6)


def test_excel_target_first_sheet_or_named(data_dir, tmp_path, capsys):
    tau = _tau(data_dir)
    workbook = tmp_path / "tau.xlsx"
    with pd.ExcelWriter(workbook, engine="openpyxl") as writer:
        pd.DataFrame({"notes": ["see sheet 2"]}).to_excel(writer, sheet_name="readme")
        tau.rename("suvr").to_frame().to_excel(writer, sheet_name="AD tau")
    base = ["associate", "--data-dir", str(data_dir), "--genes", GENES, "--target",
            str(workbook), "--gene-axis", "none", *QUICK]
    assert main([*base, "--out", str(tmp_path / "first")]) == 2
    assert "unknown dk83_id region names: 0; abagen's ids" in capsys.readouterr().err  # readme
    assert main([*base, "--out", str(tmp_path / "named"), "--sheet", "AD tau"]) == 0
    assert _summary(tmp_path / "named")["regions"]["n"] == 68
    assert main([*base, "--out", str(tmp_path / "nosheet"), "--sheet", "tau"]) == 2
    assert "has no sheet 'tau'; its sheets: readme, AD tau" in capsys.readouterr().err
    csv_named_xls = tmp_path / "tau.csv"
    csv_named_xls.write_bytes(workbook.read_bytes())
    assert main([*base[:6], str(csv_named_xls), *QUICK, "--out", str(tmp_path / "x")]) == 2
    assert "binary spreadsheet, not CSV/TSV" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "first").exists()


def test_plain_names_with_a_hemisphere(data_dir, tmp_path, capsys):
    from brainexpr.datasets.regions import CORTICAL_REGIONS

    tau = _tau(data_dir)
    spaced = {"caudalanteriorcingulate": "caudal anterior cingulate",
              "rostralmiddlefrontal": "Rostral Middle Frontal"}
    target = tmp_path / "plain.csv"
    names = [label for label, _, _ in CORTICAL_REGIONS]
    pd.DataFrame({"region": [spaced.get(n, n) for n in names],
                  "tau": tau.loc[[f"L_{n}" for n in names]].to_numpy()}).to_csv(target,
                                                                                  index=False)
    base = ["associate", "--data-dir", str(data_dir), "--genes", GENES, "--target",
            str(target), "--gene-axis", "none", *QUICK]
    assert main([*base, "--out", str(tmp_path / "both"), "--hemisphere", "both"]) == 0
    assert _summary(tmp_path / "both")["regions"]["n"] == 68
    assert main([*base, "--out", str(tmp_path / "left"), "--hemisphere", "left"]) == 0
    summary = _summary(tmp_path / "left")
    assert summary["regions"]["n"] == 34 and summary["regions"]["keys"][0] == "L_bankssts"


def test_enigma_table_with_subcortex(data_dir, tmp_path, capsys):
    """An ENIGMA-toolbox style table: 'L_bankssts_thickavg' cortex and 'Laccumb' subcortex."""
    from brainexpr.datasets.regions import ENIGMA_SUBCORTEX, region_table

    tau = _tau(data_dir)
    table = region_table()
    cortex = [k for k in table.index if table.loc[k, "structure"] == "cortex"]
    rows = [(f"{k}_thickavg", tau[k]) for k in cortex]
    rows += [(f"{h}{abbr}", tau[f"{h}_{key}"]) for h in "LR"
             for key, abbr in ENIGMA_SUBCORTEX.items()]
    target = tmp_path / "enigma.csv"
    pd.DataFrame(rows, columns=["Structure", "d_icv"]).to_csv(target, index=False)
    out = tmp_path / "enigma"
    code = main(["associate", "--data-dir", str(data_dir), "--out", str(out), "--genes", GENES,
                 "--target", str(target), "--region-set", "cortex+subcortex", "--drop-missing",
                 "--gene-axis", "none", *QUICK])
    assert code == 0, capsys.readouterr().err
    assert _summary(out)["regions"]["n"] == 82


def test_empty_regions_and_fewer_regions_in_the_second_source(data_dir, tmp_path, capsys):
    from brainexpr.datasets import load_regional_expression

    tau = _tau(data_dir)
    tau[["L_cuneus", "R_insula"]] = np.nan
    target = tmp_path / "tau_nan.csv"
    tau.to_csv(target)
    compare = load_regional_expression(GENES.split(","), data_dir=data_dir).drop(
        index=["L_bankssts", "R_precuneus", "B_brainstem"])
    second = tmp_path / "second.csv"
    compare.to_csv(second)
    base = ["associate", "--data-dir", str(data_dir), "--genes", GENES, "--target",
            str(target), "--compare", str(second), *QUICK]
    assert main([*base, "--out", str(tmp_path / "fails")]) == 2
    error = capsys.readouterr().err
    assert "without a value (NaN) (L_cuneus, R_insula)" in error and "--drop-missing" in error
    out = tmp_path / "dropped"
    assert main([*base, "--out", str(out), "--drop-missing"]) == 0, capsys.readouterr().err
    summary = _summary(out)
    assert summary["regions"]["n"] == 64
    assert not {"L_cuneus", "R_insula", "L_bankssts", "R_precuneus"} & set(
        summary["regions"]["keys"])


def test_maps_that_are_not_genes(data_dir, tmp_path, capsys):
    """A table of imaging maps: no Open Targets step, everything else runs."""
    from brainexpr.analysis.association import select_regions

    keys = select_regions("cortex")
    rng = np.random.default_rng(0)
    tau = _tau(data_dir).loc[keys].to_numpy()
    maps = pd.DataFrame({"thickness": -tau + rng.normal(0, 0.1, 68),
                         "myelin": rng.normal(size=68), "fdg": rng.normal(size=68),
                         "area": rng.normal(size=68), "curvature": rng.normal(size=68)},
                        index=keys)
    expression = tmp_path / "maps.tsv"
    maps.to_csv(expression, sep="\t")
    out = tmp_path / "maps"
    code = main(["associate", "--data-dir", str(data_dir), "--out", str(out), "--expression",
                 str(expression), "--expression-name", "imaging", "--n-surrogates", "100",
                 "--n-permutations", "200"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Open Targets step is skipped" in captured.err
    summary = _summary(out)
    assert summary["sources"]["imaging"]["n_genes"] == 5
    assert "open_targets" not in summary["sources"]["imaging"]
    assert not (out / "fig_open_targets.png").exists() and (out / "fig_axis_bars.png").exists()
    table = pd.read_csv(out / "associations.csv", index_col="gene")
    assert table.loc["thickness", "imaging_pearson_r"] < -0.8     # built as -tau + noise


def test_gradient_sign_does_not_depend_on_the_order_of_sources(data_dir, second_source):
    options = dict(genes="ad", null_method="none", n_permutations=200, figures=False,
                   data_dir=data_dir)
    one = associate(None, expression=None, compare=str(second_source), **options).summary
    from brainexpr.datasets import load_gene_set, load_regional_expression

    builtin = load_regional_expression(load_gene_set("ad", data_dir=data_dir),
                                       data_dir=data_dir, allow_missing=True)
    two = associate(None, expression=str(second_source), expression_name="inr",
                    compare=builtin, compare_name="abagen", **options).summary
    for name in ("abagen", "inr"):
        assert one["sources"][name]["axis_gradient"]["r"] == pytest.approx(
            two["sources"][name]["axis_gradient"]["r"], abs=1e-9)
    assert "sign: the gene of largest |loading| at the positive end" in one["gene_axis"]


def test_left_hemisphere_map_is_analysed_on_the_left(data_dir, tmp_path, capsys):
    tau = _tau(data_dir)
    left = tau[[k for k in tau.index if k.startswith("L_")]]
    target = tmp_path / "left.csv"
    left.to_csv(target)
    out = tmp_path / "left"
    assert main(["associate", "--data-dir", str(data_dir), "--out", str(out), "--genes", GENES,
                 "--target", str(target), "--gene-axis", "none", *QUICK]) == 0
    assert "covers only the left hemisphere" in capsys.readouterr().err
    assert _summary(out)["regions"]["n"] == 34


def test_spin_null(data_dir, tmp_path):
    result = associate(None, genes=GENES, null_method="spin", n_surrogates=200,
                       gene_axis="none", figures=False, data_dir=data_dir)
    assert result.summary["null"]["method"] == "spin"
    assert result.summary["null"]["distances"].startswith("fsaverage5 sphere")
    p = result.table["abagen_pearson_p_spatial"]
    assert ((p > 0) & (p <= 1)).all()
    # a spatial null is more conservative than the parametric p for smooth maps
    assert (p >= result.table["abagen_pearson_p"]).mean() > 0.5
    with pytest.raises(InputError, match="L_thalamus.*--region-set cortex"):
        associate(None, genes=GENES, null_method="spin", n_surrogates=20,
                  region_set="cortex+subcortex", drop_missing=True, figures=False,
                  data_dir=data_dir)
