"""The main job end to end on a tiny configuration (real data, a few seconds of training)."""

import json

import pandas as pd
import pytest

from brainexpr.cli import main
from brainexpr.errors import InputError
from brainexpr.workflows.config import load_config, workflow_defaults
from brainexpr.workflows.run import SHOWCASE_GENES, run_main

TINY = dict(genes=["APOE", "MAPT", "APP", "TREM2"], genes_1mm=[], max_steps=5, n_layers=2,
            hidden_features=16, n_features=8, n_ensemble=2, n_surrogates=20, vae=False,
            benchmark="none", viewer=False, gene_atlas="none")


@pytest.mark.slow
def test_run_writes_report_and_resumes(data_dir, tmp_path, monkeypatch):
    from brainexpr.models import registry
    from brainexpr.workflows import run as run_module

    reads, checks = [], []
    load_model, fit_params = registry.load_model, run_module.run_fit_params
    monkeypatch.setattr(registry, "load_model",
                        lambda *args, **kwargs: reads.append(args) or load_model(*args, **kwargs))
    monkeypatch.setattr(run_module, "run_fit_params",
                        lambda *args, **kwargs: checks.append(args) or fit_params(*args, **kwargs))
    out = tmp_path / "run"
    summary = run_main(out, data_dir=data_dir, **TINY)
    assert reads == []  # the fitted model goes on to the maps and regional steps as it is
    assert len(checks) == 1  # the options are checked once
    assert (out / "gene_axis" / "gene_axis_state.json").is_file()  # what the fit read
    names = [step.name for step in summary.steps]
    assert names == ["gene_axis", "fit", "maps", "regional", "associate"]
    assert summary.report.is_file()
    html = summary.report.read_text()
    assert "Agreement with the abagen-style regional table" in html
    assert "Not run" in html or "not run" in html  # the VAE and benchmark sections
    regional = json.loads((out / "regional" / "step.json").read_text())["summary"]
    assert -1.0 <= regional["mean_r"] <= 1.0
    assert (out / "maps" / "maps.tsv").is_file()
    assert load_config(out / "config.toml", workflow_defaults(run_main))["max_steps"] == 5
    again = run_main(out, data_dir=data_dir, **TINY)
    assert all(step.reused for step in again.steps)
    changed = run_main(out, data_dir=data_dir, **dict(TINY, n_surrogates=30))
    assert [s.name for s in changed.steps if not s.reused] == ["associate"]
    # a 1 mm gene is also mapped on the fsaverage5 surface, and the report shows it
    surface = run_main(out, data_dir=data_dir, **dict(TINY, n_surrogates=30, genes_1mm=["APOE"]))
    assert [s.name for s in surface.steps if not s.reused] == ["maps"]
    assert len(reads) == 1  # a reused fit: its model file is read once, for the maps step
    for hemi in ("L", "R"):
        assert (out / "maps" / "fsaverage5" / f"gene-APOE_model-factorized_space-fsaverage_"
                                              f"den-10k_hemi-{hemi}_std.func.gii").is_file()
    assert (out / "report" / "slices" / "surface_fsaverage5.png").is_file()
    assert "Expression on the fsaverage5 cortex" in surface.report.read_text()


def test_bad_options_write_nothing(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(InputError, match="APOEE"):
        run_main(out, data_dir=data_dir, **dict(TINY, genes=["APOEE"]))
    assert not out.exists()
    config = tmp_path / "bad.toml"
    config.write_text('max_step = 5\n')
    code = main(["run", "--data-dir", str(data_dir), "--out", str(out), "--config", str(config)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown config keys ['max_step']" in err[0]
    assert not out.exists()
    code = main(["run", "--data-dir", str(data_dir), "--out", str(out), "--source", "nowhere"])
    assert code == 2 and "source must be one of" in capsys.readouterr().err
    assert not out.exists()


def test_plan_run_fills_defaults_and_refuses_unknown_options(data_dir):
    from brainexpr.workflows.run import plan_run

    plan = plan_run(data_dir=data_dir, **TINY)
    assert plan.options["max_steps"] == 5 and plan.options["resolution"] == 2
    assert plan.fit_params["model"] == "factorized" and plan.with_std  # an ensemble of 2
    assert plan.gene_args == {"genes": TINY["genes"], "gene_set": "ad"}
    with pytest.raises(InputError, match="unknown option.*max_step;"):
        plan_run(data_dir=data_dir, max_step=5)


def test_bad_network_settings_are_rejected_before_any_step(data_dir, tmp_path):
    with pytest.raises(InputError, match="n_layers"):
        run_main(tmp_path / "run", data_dir=data_dir, **dict(TINY, n_layers=1))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_run_from_a_processed_ahba_download(data_dir, tmp_path, monkeypatch):
    """The raw-download path: synthetic raw donors -> brainexpr ahba -> brainexpr run."""
    from brainexpr.ahba import process_ahba
    from brainexpr.ahba.io import write_processed
    from brainexpr.ahba.synthetic import write_synthetic_download

    write_synthetic_download(tmp_path / "raw", n_genes=6, max_samples=60, data_dir=data_dir)
    processed = process_ahba(tmp_path / "raw", use_cache=False, data_dir=data_dir)
    write_processed(processed, tmp_path / "processed")
    genes = list(processed.genes.index[:4])
    summary = run_main(tmp_path / "run", data_dir=data_dir,
                       **dict(TINY, genes=genes, source=str(tmp_path / "processed"),
                              genes_1mm=SHOWCASE_GENES))  # none of them in this model: skipped
    assert [s.name for s in summary.steps][:3] == ["data", "gene_axis", "fit"]
    table = (tmp_path / "run" / "data" / "training_samples.csv").read_text().splitlines()
    assert table[0].split(",")[:5] == ["mni_x", "mni_y", "mni_z", "tissue_class", "donor"]
    assert len(table) - 1 == processed.samples.shape[0]
    # sample-level data: "auto" fits donor kriging, which writes its kriging SD as _std maps
    fit = json.loads((tmp_path / "run" / "fit" / "step.json").read_text())
    assert fit["params"]["model"] == "donor-kriging" and "n_layers" not in fit["params"]
    assert fit["summary"]["model"] == "donor-kriging"
    maps = sorted(p.name for p in (tmp_path / "run" / "maps").glob("*.nii.gz"))
    assert len(maps) == 8 and all("_model-donorkriging_" in m for m in maps)
    assert sum(m.endswith("_expr.nii.gz") for m in maps) == sum(m.endswith("_std.nii.gz") for m in maps) == 4
    assert not list((tmp_path / "run" / "maps").glob("1mm/*.nii.gz"))
    html = summary.report.read_text()  # the Methods describe the model that made the maps
    assert "universal kriging" in html and "modelled with an implicit neural" not in html
    assert "kriging standard deviation" in html and "Trust score of each gene" in html
    with pytest.raises(InputError, match="NOTAGENE1"):  # a named gene is never dropped silently
        run_main(tmp_path / "run2", data_dir=data_dir,
                 **dict(TINY, genes=[*genes, "NOTAGENE1"], source=str(tmp_path / "processed")))
    assert not (tmp_path / "run2").exists()  # refused before the output folder is made
    # a gene set keeps the genes the folder has, and the provenance names the set
    from brainexpr import datasets
    from brainexpr.workflows.models import processed_training_data

    monkeypatch.setattr(datasets, "load_gene_set", lambda name, data_dir=None: [genes[1], "NOTAGENE1", genes[0]])
    data = processed_training_data(tmp_path / "processed", gene_set="ad", data_dir=data_dir)
    assert list(data.values.columns) == [genes[1], genes[0]] and data.provenance["gene_set"] == "ad"
    assert processed_training_data(tmp_path / "processed", genes=genes[:2]).provenance["gene_set"] is None


def test_auto_model_follows_the_source(data_dir, tmp_path):
    from brainexpr.workflows.run import run_fit_params

    settings = dict(n_layers=2, hidden_features=16, random_state=3)
    params, reason = run_fit_params("regional", **settings)
    assert params == {"model": "factorized", **settings} and "BENCHMARKS.md" in reason
    params, reason = run_fit_params("celltypes", **dict(settings, n_layers=1))
    assert params == {"model": "donor-kriging", "random_state": 3}  # INR settings not used
    assert "0.739" in reason  # the evidence quoted from BENCHMARKS.md (cell types, donor-out)
    assert run_fit_params(str(tmp_path), model="knn")[0] == {"model": "knn", "random_state": 0}
    with pytest.raises(InputError, match="model 'kriging' fits sample sites"):
        run_main(tmp_path / "run", data_dir=data_dir, **dict(TINY, model="kriging"))
    with pytest.raises(InputError, match="model must be 'auto' or one of"):
        run_main(tmp_path / "run", data_dir=data_dir, **dict(TINY, model="kriging+inr"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_run_regional_source_on_another_atlas(data_dir, tmp_path):
    """--atlas chooses the regional step's parcellation; the gene axis and the fit stay on DK-83."""
    summary = run_main(tmp_path / "run", data_dir=data_dir, **dict(TINY, atlas="brainnetome246"))
    assert [s.name for s in summary.steps][:4] == ["gene_axis", "fit", "maps", "regional"]
    table = pd.read_csv(tmp_path / "run" / "regional" / "regional_inr.csv", index_col=0)
    assert table.shape == (246, 4)
