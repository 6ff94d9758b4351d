"""End-to-end tests of ``brainexpr embed | fit | predict | parcellate`` on the real data."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainexpr.cli import main

pytestmark = pytest.mark.realdata

TINY = ["--n-layers", "3", "--hidden-features", "32", "--n-features", "8", "--gene-hidden", "16",
        "--n-frequencies", "4", "--omega-0", "10", "--learning-rate", "1e-3", "--eval-every", "10"]


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Every test of this module runs with one torch thread."""


def run(capsys, *argv):
    code = main(["-q", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_celltype_maps_end_to_end(capsys, data_dir, tmp_path):
    model = tmp_path / "celltypes.pt"
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "celltypes",
                         "--genes", "ExNeurons,Oligodendrocytes", "--genes", "Astrocytes",
                         "--model", "factorized", "--max-steps", "30", "--n-ensemble", "2",
                         "--out", str(model), *TINY)
    assert code == 0, err
    assert "fitted factorized on 3 genes (samples)" in out
    summary = json.loads(model.with_suffix(".json").read_text())
    assert summary["provenance"]["source"] == "celltypes"
    assert summary["provenance"]["n_sites"] == 3702

    maps = tmp_path / "maps"
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--genes", "ExNeurons", "--resolution", "2", "--std",
                         "--out-dir", str(maps))
    assert code == 0, err
    expr = nib.load(maps / "gene-ExNeurons_model-factorized_res-2mm_space-MNI152_expr.nii.gz")
    std = nib.load(maps / "gene-ExNeurons_model-factorized_res-2mm_space-MNI152_std.nii.gz")
    assert expr.shape == std.shape == (91, 109, 91)
    values = np.asarray(expr.dataobj)
    brain = values != 0
    assert 200_000 < brain.sum() < 260_000
    # cell-type fractions: the map stays in a plausible range inside the brain
    assert -0.2 < np.percentile(values[brain], 1) and np.percentile(values[brain], 99) < 1.0

    surface = tmp_path / "surface"
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--genes", "ExNeurons", "--space", "fsaverage5", "--std",
                         "--out-dir", str(surface))
    assert code == 0, err
    assert "wrote 4 map file(s)" in out
    left = nib.load(surface / "gene-ExNeurons_model-factorized_space-fsaverage_den-10k_hemi-L_"
                              "expr.func.gii").darrays[0].data
    assert left.shape == (10242,) and np.isfinite(left).all()
    assert (surface / "gene-ExNeurons_model-factorized_space-fsaverage_den-10k_hemi-R_"
                      "std.func.gii").is_file()
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--space", "fsaverage5", "--stack", "--out-dir", str(tmp_path / "no"))
    assert code == 2 and "stack applies to MNI152 volumes" in err

    table = tmp_path / "bn.csv"
    code, out, err = run(capsys, "parcellate", "--data-dir", str(data_dir), "--model", str(model),
                         "--atlas", "brainnetome246", "--out", str(table))
    assert code == 0, err
    means = pd.read_csv(table, index_col=0)
    assert means.shape == (246, 3) and means.index[0] == "BN001"
    assert means.notna().all().all()
    assert not (tmp_path / "bn_comparison.csv").exists()


def test_regional_maps_compare_with_the_table(capsys, data_dir, tmp_path):
    genes = "APOE,MAPT,CLU,BIN1,TREM2,ANK3,SIRPA,BHLHE40"
    model = tmp_path / "regional.pt"
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "regional",
                         "--genes", genes, "--max-steps", "40", "--validation-fraction", "0",
                         "--out", str(model), *TINY)
    assert code == 0, err
    assert "fitted factorized on 8 genes (regions)" in out

    table = tmp_path / "dk.csv"
    code, out, err = run(capsys, "parcellate", "--data-dir", str(data_dir), "--model", str(model),
                         "--out", str(table))
    assert code == 0, err
    comparison = pd.read_csv(tmp_path / "dk_comparison.csv", index_col=0)
    assert list(comparison.index) == genes.split(",")
    assert (comparison["n_regions"] == 83).all()
    assert comparison["n_voxels"].min() > 700_000
    # even a 40-step tiny fit follows the regional table it was fitted on
    assert comparison["r_regional"].median() > 0.3

    # the same regional means from the fsaverage5 vertices (DK-68 annotations)
    surface = tmp_path / "dk68_surface.csv"
    code, out, err = run(capsys, "parcellate", "--data-dir", str(data_dir), "--model", str(model),
                         "--space", "fsaverage5", "--out", str(surface))
    assert code == 0, err
    from_surface = pd.read_csv(surface, index_col=0)
    from_volume = pd.read_csv(table, index_col=0).loc[from_surface.index]
    assert from_surface.shape == (68, 8) and from_surface.index[0] == "L_bankssts"
    agreement = [np.corrcoef(from_surface[g], from_volume[g])[0, 1] for g in genes.split(",")]
    assert np.median(agreement) > 0.8
    code, out, err = run(capsys, "parcellate", "--data-dir", str(data_dir), "--model", str(model),
                         "--space", "fsaverage5", "--atlas", "brainnetome246",
                         "--out", str(tmp_path / "bn_surface.csv"))
    assert code == 2 and "use atlas 'dk83'" in err

    # a gene outside the model is placed on its gene axis from its regional profile
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--genes", "SORL1", "--resolution", "2", "--out-dir",
                         str(tmp_path / "placed"))
    assert code == 0, err
    placed = tmp_path / "placed" / "gene-SORL1_model-factorized_res-2mm_space-MNI152_expr.nii.gz"
    assert placed.exists()


def test_embed_writes_axis_tables_and_figure(capsys, data_dir, tmp_path):
    out_dir = tmp_path / "axis"
    code, out, err = run(capsys, "embed", "--data-dir", str(data_dir), "--source", "celltypes",
                         "--out-dir", str(out_dir))
    assert code == 0, err
    axis = pd.read_csv(out_dir / "gene_axis.tsv", sep="\t", index_col=0)
    assert len(axis) == 8 and axis["position"].min() == 0 and axis["position"].max() == 1
    assert list(axis["rank"]) == list(range(1, 9))
    assert len(pd.read_csv(out_dir / "spectrum.tsv", sep="\t")) == 8
    assert (out_dir / "gene_axis.png").stat().st_size > 10_000


def test_errors_are_one_line_with_exit_code_2(capsys, data_dir, tmp_path):
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model",
                         str(tmp_path / "none.pt"), "--out-dir", str(tmp_path / "m"))
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "regional",
                         "--genes", "APOEE,MAPT", "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "APOEE (closest: APOE" in err
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "celltypes",
                         "--model", "factorized", "--validation-fraction", "0.8",
                         "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "validation_fraction must lie in [0, 0.5]" in err
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "samples.xlsx")
    assert code == 2 and "'celltypes', 'regional' or a .csv/.tsv file or a 'brainexpr ahba'" in err
    with pytest.raises(SystemExit):
        main(["embed", "--affinity", "cosine"])
    assert not any(tmp_path.iterdir())


def test_user_csv_sources_are_checked(capsys, data_dir, tmp_path):
    from brainexpr.workflows.models import load_training_data

    celltypes = load_training_data("celltypes", data_dir=data_dir)
    table = pd.DataFrame(celltypes.coords[:300], columns=["mni_x", "mni_y", "mni_z"])
    table["ExNeurons"] = celltypes.values["ExNeurons"].to_numpy()[:300]
    table["Astrocytes"] = celltypes.values["Astrocytes"].to_numpy()[:300]
    good = tmp_path / "sites.csv"
    table.to_csv(good, index=False)
    data = load_training_data(str(good), data_dir=data_dir)
    assert data.kind == "samples" and list(data.values.columns) == ["ExNeurons", "Astrocytes"]
    assert set(np.unique(data.tissue)) <= {-1, 0, 1}
    # voxel indices instead of millimetres: caught with a teaching message
    shifted = table.assign(mni_x=table["mni_x"] + 90, mni_y=table["mni_y"] + 126,
                           mni_z=table["mni_z"] + 72)
    shifted.to_csv(tmp_path / "voxels.csv", index=False)
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source",
                         str(tmp_path / "voxels.csv"), "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "outside the MNI152 brain" in err and "not voxel indices" in err
    # a regional CSV must name atlas regions in its first column
    regional = pd.DataFrame({"region": ["L_bankssts", "nowhere"], "APOE": [0.1, 0.2]})
    regional.to_csv(tmp_path / "regional.csv", index=False)
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source",
                         str(tmp_path / "regional.csv"), "--out", str(tmp_path / "y.pt"))
    assert code == 2 and "not regions of atlas 'dk83': nowhere" in err


def test_sample_sources_default_to_donor_kriging(capsys, data_dir, tmp_path):
    """``--model auto`` on sample sites fits donor kriging (the held-out winner)."""
    from brainexpr.atlas.space import mni_grid

    model = tmp_path / "dk.pt"
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "celltypes",
                         "--genes", "ExNeurons,Astrocytes", "--out", str(model))
    assert code == 0, err
    assert "fitted donor-kriging on 2 genes (samples)" in out
    summary = json.loads(model.with_suffix(".json").read_text())
    assert summary["model"] == "donor-kriging"
    assert summary["provenance"]["model_choice"]["requested"] == "auto"
    assert summary["provenance"]["n_donors"] == 6

    shape, affine = mni_grid(2)  # a 2 mm box mask keeps the test fast
    box = np.zeros(shape, np.uint8)
    box[30:50, 50:70, 35:50] = 1
    nib.save(nib.Nifti1Image(box, affine), tmp_path / "box.nii.gz")
    maps = tmp_path / "maps"
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--resolution", "2", "--mask", str(tmp_path / "box.nii.gz"),
                         "--out-dir", str(maps))
    assert code == 0, err
    expr = nib.load(maps / "gene-ExNeurons_model-donorkriging_res-2mm_space-MNI152_expr.nii.gz")
    values = np.asarray(expr.dataobj)[box > 0]
    assert expr.shape == (91, 109, 91) and np.isfinite(values).all()
    assert 0.0 < values.mean() < 1.0 and values.std() > 0.01  # fractions, spatially varying
    # the default model writes its kriging SD (_std) by default, finite and positive in the brain
    spread = np.asarray(nib.load(maps / "gene-ExNeurons_model-donorkriging_res-2mm_space-MNI152_std.nii.gz")
                        .dataobj)[box > 0]
    assert np.isfinite(spread).all() and (spread > 0).all() and spread.mean() < values.mean()
    listing = pd.read_csv(maps / "maps.tsv", sep="\t")
    assert set(listing["kind"]) == {"expr", "std"} and listing["trust"].between(0, 1).all()
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--no-std", "--mask", str(tmp_path / "box.nii.gz"), "--out-dir", str(tmp_path / "nostd"))
    assert code == 0, err
    assert not list((tmp_path / "nostd").glob("*_std.nii.gz"))
    # --std-kind sample: a new donor's sample scatters further than the population map's error
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--std-kind", "sample", "--mask", str(tmp_path / "box.nii.gz"),
                         "--out-dir", str(tmp_path / "sample"))
    assert code == 0, err
    sample = np.asarray(nib.load(tmp_path / "sample" / "gene-ExNeurons_model-donorkriging_res-2mm_space-MNI152_"
                                 "std.nii.gz").dataobj)[box > 0]
    assert (sample > spread).all()
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--std-kind", "sample", "--no-std", "--out-dir", str(tmp_path / "contradiction"))
    assert code == 2 and "std_kind='sample' describes _std maps" in err  # never silently ignored
    assert not (tmp_path / "contradiction").exists()
    code, out, err = run(capsys, "predict", "--data-dir", str(data_dir), "--model", str(model),
                         "--genes", "ExNeuron", "--out-dir", str(tmp_path / "bad"))
    assert code == 2 and "ExNeuron (closest: ExNeurons" in err
    assert not (tmp_path / "bad").exists()


def test_sample_csv_with_donors_parcellates(capsys, data_dir, tmp_path):
    from brainexpr.workflows.models import load_training_data

    celltypes = load_training_data("celltypes", data_dir=data_dir)
    rows = np.arange(0, 3702, 20)  # 186 sites: parcellating 819,621 voxels stays fast
    table = pd.DataFrame(celltypes.coords[rows], columns=["mni_x", "mni_y", "mni_z"])
    table["donor"] = celltypes.donors[rows]
    table["APOE"] = celltypes.values["ExNeurons"].to_numpy()[rows]
    table["MAPT"] = celltypes.values["Astrocytes"].to_numpy()[rows]
    table.to_csv(tmp_path / "sites.csv", index=False)
    data = load_training_data(str(tmp_path / "sites.csv"), data_dir=data_dir)
    assert list(data.values.columns) == ["APOE", "MAPT"] and len(set(data.donors)) == 6

    model = tmp_path / "csv.pt"
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source",
                         str(tmp_path / "sites.csv"), "--out", str(model))
    assert code == 0, err
    assert "fitted donor-kriging on 2 genes (samples)" in out
    regional = tmp_path / "dk.csv"
    code, out, err = run(capsys, "parcellate", "--data-dir", str(data_dir), "--model", str(model),
                         "--out", str(regional))
    assert code == 0, err
    means = pd.read_csv(regional, index_col=0)
    assert means.shape == (83, 2) and means.notna().all().all()
    assert set(pd.read_csv(tmp_path / "dk_comparison.csv", index_col=0).index) == {"APOE", "MAPT"}
    trust = pd.read_csv(tmp_path / "dk_trust.csv", index_col=0)["trust"]  # held-out r per gene
    assert list(trust.index) == ["APOE", "MAPT"] and trust.between(-1, 1).all()

    # sample-only models cannot fit parcel means: one clear error, nothing written
    code, out, err = run(capsys, "fit", "--data-dir", str(data_dir), "--source", "regional",
                         "--genes", "APOE,MAPT", "--model", "kriging",
                         "--out", str(tmp_path / "r.pt"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "model 'kriging' fits sample sites" in err and "'factorized'" in err
    assert not (tmp_path / "r.pt").exists()
