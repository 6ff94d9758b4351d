"""End to end: synthetic donors in the raw Allen format -> brainexpr ahba -> tables.

The synthetic donors use the real sample layouts (SampleAnnot.csv of donor 9861, the real
sample table of the others), real probe names and a known smooth expression field
(:mod:`brainexpr.ahba.synthetic`).
"""

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from brainexpr.ahba import io, load_processed, process_ahba
from brainexpr.ahba.pipeline import check_options
from brainexpr.ahba.synthetic import write_synthetic_download
from brainexpr.errors import InputError


@pytest.fixture(scope="module")
def download(data_dir, tmp_path_factory):
    """Six small synthetic donors (24 genes) and a shared cache folder."""
    root = tmp_path_factory.mktemp("ahba")
    truth = write_synthetic_download(root / "raw", n_genes=24, random_state=3, data_dir=data_dir)
    return truth, root / "cache"


@pytest.fixture(scope="module")
def atlas_2mm(data_dir):
    """The DK-83 atlas resampled to 2 mm (faster matching), indexed by region keys."""
    from brainexpr.atlas import resample_to_grid
    from brainexpr.datasets import load_atlas

    atlas = load_atlas("dk83", data_dir=data_dir)
    return resample_to_grid(atlas.image, 2, "nearest"), atlas.regions


@pytest.fixture(scope="module")
def default_result(download, data_dir):
    truth, cache = download
    return process_ahba(truth.folder, cache_dir=cache, data_dir=data_dir)


def _run(download, atlas_2mm, data_dir, **options):
    truth, cache = download
    image, regions = atlas_2mm
    return process_ahba(truth.folder, atlas=image, atlas_info=regions, cache_dir=cache,
                        data_dir=data_dir, **options)


def test_default_run_selects_signal_probes_and_filters_low_ones(download, default_result):
    truth, _ = download
    result = default_result
    design = truth.probes
    chosen = design.loc[result.genes["probe_id"].to_numpy(), "role"]
    assert (chosen == "signal").all()
    assert sorted(result.genes.index) == sorted(truth.genes)
    counts = result.provenance["counts"]
    assert counts["probes_total"] == len(design)
    # reannotation drops the 6 unknown probe names and the 3 without Entrez id
    assert counts["probes_annotated"] == len(design) - 9
    # intensity filtering keeps the signal and noisy probes and drops every low one
    assert counts["probes_after_ibf"] == int(design["role"].isin(["signal", "noisy"]).sum())
    assert (result.genes["diff_stability"] > 0.5).all()
    assert result.genes["probe_diff_stability"].min() > 0.5


def test_default_outputs_follow_the_package_layouts(default_result, data_dir):
    from brainexpr.datasets import load_regional_expression, region_table

    result = default_result
    reference = load_regional_expression(genes=["APOE"], data_dir=data_dir)
    assert list(result.regional.index) == list(reference.index)          # 83 region keys
    assert result.regional.shape == (83, 24)
    finite = result.regional.to_numpy()[np.isfinite(result.regional.to_numpy())]
    assert finite.min() >= 0 and finite.max() <= 1
    samples = result.samples
    for column in ("well_id", "donor", "mni_x", "mni_y", "mni_z", "region", "tissue_class"):
        assert column in samples.columns
    assert set(samples["tissue_class"]) <= {-1, 0, 1}
    assert set(samples["region"]) <= set(region_table().index)
    assert (samples["label"] > 0).all()                          # norm_matched=True
    assert result.expression.shape == (len(samples), 24) and result.expression.dtype == np.float32
    assert int(result.counts.to_numpy().sum()) == len(samples)
    assert samples.groupby("donor_uid").size().to_dict() == {
        int(k): v for k, v in result.provenance["counts"]["samples_matched"].items()}
    assert "within 2 mm" in result.methods
    assert f"leaving {result.provenance['counts']['probes_after_ibf']:,} probes" in result.methods


def test_normalised_samples_follow_the_known_field(download, atlas_2mm, data_dir):
    truth, _ = download
    result = _run(download, atlas_2mm, data_dir, sample_norm=None)
    field = truth.field(result.coordinates())
    columns = [truth.genes.index(g) for g in result.genes.index]
    rho = []
    for uid, rows in result.samples.groupby("donor_uid").indices.items():
        for j, col in enumerate(columns):
            rho.append(spearmanr(result.expression[rows, j], field[rows, col])[0])
    assert np.median(rho) > 0.95


def test_second_run_comes_from_the_cache(download, default_result, data_dir, monkeypatch):
    truth, cache = download

    def no_parsing(*args, **kwargs):
        raise AssertionError("raw files parsed again")

    monkeypatch.setattr(io, "read_matrix", no_parsing)
    again = process_ahba(truth.folder, cache_dir=cache, data_dir=data_dir)
    assert again.provenance["cache_hit"] is True
    np.testing.assert_array_equal(again.expression, default_result.expression)
    pd.testing.assert_frame_equal(again.regional, default_result.regional, check_exact=False,
                                  rtol=1e-6, check_names=False)


def test_mirroring_counts_and_coordinates(download, atlas_2mm, data_dir):
    result = _run(download, atlas_2mm, data_dir, lr_mirror="leftright", norm_matched=False)
    samples = result.samples
    originals, copies = samples[~samples["mirrored"]], samples[samples["mirrored"]]
    # every original left/midline sample with x < 0 has exactly one copy in the right hemisphere
    assert len(copies) == int((originals["mni_x"] < 0).sum())
    assert (copies["mni_x"] > 0).all() and set(copies["hemisphere"]) <= {"R", "B"}
    merged = copies.merge(originals, on=["donor_uid", "well_id"], suffixes=("", "_orig"))
    np.testing.assert_allclose(merged["mni_x"], -merged["mni_x_orig"])
    # the four left-only donors now have right-hemisphere samples matched to right regions
    right = samples[(samples["donor_uid"] == 14380) & samples["region"].str.startswith("R_")]
    assert len(right) > 0 and right["mirrored"].all()
    assert (samples["label"] == 0).any()                   # unmatched samples kept


def test_missing_regions_are_interpolated(download, atlas_2mm, data_dir):
    plain = _run(download, atlas_2mm, data_dir)
    filled = _run(download, atlas_2mm, data_dir, missing="interpolate")
    assert filled.provenance["counts"]["regions_filled"] > 0
    for uid, table in filled.regional_donors.items():
        before = plain.regional_donors[uid]
        empty_before = before.isna().all(axis=1)
        new = empty_before & table.notna().all(axis=1)
        # measured regions are untouched; right regions stay empty in left-only donors
        pd.testing.assert_frame_equal(table[~empty_before], before[~empty_before])
        if uid not in (9861, 10021):
            assert table.filter(regex="^R_", axis=0).isna().all(axis=None)
        hemis = {k[0] for k in new[new].index}
        assert hemis <= ({"L", "R", "B"} if uid in (9861, 10021) else {"L", "B"})
    assert "every voxel of the region was assigned" in filled.methods


def test_other_aggregations_and_probe_selection(download, atlas_2mm, data_dir):
    pooled = _run(download, atlas_2mm, data_dir, region_agg="samples", agg_metric="median",
                  probe_selection="max_variance")
    assert pooled.regional.shape[1] == len(pooled.genes)
    assert "summarised by their median" in pooled.methods and "highest variance" in pooled.methods
    sample_level = _run(download, atlas_2mm, data_dir, region_agg=None, probe_selection="average")
    assert sample_level.regional is None and (sample_level.genes["probe_id"] == -1).all()
    assert len(sample_level.regional_donors) == 6


def test_options_are_validated_with_the_parameter_name():
    with pytest.raises(InputError, match=r"lr_mirror must be one of None, 'bidirectional'"):
        check_options(lr_mirror="both")
    with pytest.raises(InputError, match="ibf_threshold must lie in"):
        check_options(ibf_threshold=1.5)
    with pytest.raises(InputError, match="norm_structures must be True or False"):
        check_options(norm_structures="yes")
    with pytest.raises(InputError, match="unknown option"):
        check_options(threshold=1)
    assert check_options()["probe_selection"] == "diff_stability"


def _copy_donors(download, tmp_path, uids=(12876, 15496)):
    truth, _ = download
    raw = tmp_path / "raw"
    for uid in uids:
        name = f"normalized_microarray_donor{uid}"
        shutil.copytree(truth.folder / name, raw / name)
    return raw


@pytest.mark.parametrize("damage, message", [
    ("unknown_donor", r"normalized_microarray_donor4242 is not an AHBA donor folder"),
    ("sample_mismatch", r"donor15496/MicroarrayExpression.csv has \d+ sample columns but "
                        r"SampleAnnot.csv lists \d+ samples"),
    ("no_ontology", r"donor12876/Ontology.csv is missing"),
    ("foreign_well", r"donor12876/SampleAnnot.csv: 1 well ids have no corrected MNI coordinates"),
    ("truncated", r"donor15496/PACall.csv has \d+ rows but Probes.csv lists \d+ probes"),
])
def test_bad_raw_files_fail_with_one_clear_message(download, tmp_path, data_dir, damage, message):
    raw = _copy_donors(download, tmp_path)
    d12876, d15496 = raw / "normalized_microarray_donor12876", raw / "normalized_microarray_donor15496"
    if damage == "unknown_donor":
        shutil.copytree(d12876, raw / "normalized_microarray_donor4242")
    elif damage == "sample_mismatch":
        annot = pd.read_csv(d15496 / "SampleAnnot.csv")
        annot.iloc[:-1].to_csv(d15496 / "SampleAnnot.csv", index=False)
    elif damage == "no_ontology":
        (d12876 / "Ontology.csv").unlink()
    elif damage == "foreign_well":
        annot = pd.read_csv(d12876 / "SampleAnnot.csv")
        annot.loc[0, "well_id"] = 999999999
        annot.to_csv(d12876 / "SampleAnnot.csv", index=False)
    elif damage == "truncated":
        lines = (d15496 / "PACall.csv").read_text().splitlines(keepends=True)
        (d15496 / "PACall.csv").write_text("".join(lines[: len(lines) // 2]))
    with pytest.raises(InputError, match=message):
        process_ahba(raw, cache_dir=tmp_path / "cache", data_dir=data_dir)


def test_cli_writes_a_complete_folder_or_nothing(download, tmp_path, data_dir, capsys):
    from brainexpr.cli import main

    raw = _copy_donors(download, tmp_path)
    out = tmp_path / "out"
    args = ["ahba", str(raw), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--data-dir", str(data_dir), "--lr-mirror", "leftright"]
    assert main(args) == 0
    assert "samples x 24 genes, 83 regions from donors 12876, 15496" in capsys.readouterr().out
    loaded = load_processed(out)
    assert loaded.provenance["options"]["lr_mirror"] == "leftright"
    assert loaded.samples["mirrored"].any()
    assert "left-hemisphere samples were mirrored" in (out / "methods.md").read_text()
    (out / "notes.txt").write_text("mine")
    assert main(args) == 2                         # a file brainexpr did not write, no --overwrite
    assert "brainexpr did not write" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--lr-mirror", "none"]) == 0   # cached parse, new options
    assert not load_processed(out).samples["mirrored"].any()
    assert (out / "notes.txt").read_text() == "mine"                  # only its own files replaced
    (raw / "normalized_microarray_donor12876" / "Ontology.csv").unlink()
    bad_out = tmp_path / "bad"
    assert main(args[:3] + [str(bad_out)] + args[4:]) == 2
    assert "Ontology.csv is missing" in capsys.readouterr().err
    assert not bad_out.exists() and not list(tmp_path.glob(".bad*"))


def test_matches_abagen_when_installed(data_dir, tmp_path):
    """Optional: compare with abagen on the same fixture (abagen 0.1.3 needs pandas < 2).

    abagen expects every reannotated probe in Probes.csv, so the fixture has all 58,692
    probes (and 40 samples per donor). Differences come from sample matching (abagen snaps
    coordinates to the atlas grid and votes among nearby voxels) and from midline samples,
    which abagen keeps only at x == 0.
    """
    abagen = pytest.importorskip("abagen")
    from brainexpr.datasets import load_atlas

    write_synthetic_download(tmp_path / "abagen", layout="abagen", full_size=True,
                             max_samples=40, random_state=5, data_dir=data_dir)
    atlas = load_atlas("dk83", data_dir=data_dir)
    info = atlas.regions.reset_index()[["id", "label", "hemisphere", "structure"]]
    theirs = abagen.get_expression_data(atlas.image, info, data_dir=str(tmp_path / "abagen"),
                                        verbose=0)
    ours = process_ahba(tmp_path / "abagen", cache_dir=tmp_path / "cache", data_dir=data_dir)
    theirs.index = atlas.regions.index[np.searchsorted(atlas.regions["id"], theirs.index)]
    assert set(theirs.columns) == set(ours.regional.columns)
    genes = list(ours.regional.columns)
    a, b = ours.regional.loc[theirs.index, genes].to_numpy(), theirs[genes].to_numpy()
    rows = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    r = [np.corrcoef(a[rows, j], b[rows, j])[0, 1] for j in range(len(genes))]
    assert np.median(r) > 0.95
