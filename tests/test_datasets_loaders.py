import numpy as np
import pandas as pd
import pytest

from brainexpr import datasets
from brainexpr.errors import DataNotFoundError, InputError, UnknownGeneError


def test_regional_expression(data_dir):
    table = datasets.load_regional_expression(data_dir=data_dir)
    assert table.shape == (83, 15633)
    assert table.index[0] == "L_bankssts" and table.index[-1] == "B_brainstem"
    assert table.index[39] == "L_hippocampus"
    assert 0.0 <= table.to_numpy().min() and table.to_numpy().max() <= 1.0
    apoe = datasets.load_regional_expression(["APOE", "MAPT"], data_dir=data_dir)
    assert list(apoe.columns) == ["APOE", "MAPT"]
    np.testing.assert_allclose(apoe["APOE"], table["APOE"])


def test_unknown_gene_lists_closest(data_dir):
    with pytest.raises(UnknownGeneError, match="APOE"):
        datasets.load_regional_expression(["APOEE"], data_dir=data_dir)
    table = datasets.load_regional_expression(["APOE", "NOTAGENE1"], data_dir=data_dir,
                                              allow_missing=True)
    assert list(table.columns) == ["APOE"]


def test_samples(data_dir):
    samples = datasets.load_samples(data_dir=data_dir)
    assert len(samples) == 3702 and samples["well_id"].is_unique
    counts = samples["donor"].value_counts()
    assert counts.to_dict() == {"H0351.2001": 946, "H0351.2002": 893, "H0351.1009": 363,
                                "H0351.1012": 529, "H0351.1015": 470, "H0351.1016": 501}
    # only the first two donors have right-hemisphere samples
    right = samples[samples["hemisphere"] == "R"]["donor_uid"].unique()
    assert set(right) == {9861, 10021}
    assert "tissue_class" not in samples  # brainexpr.atlas.tissue.with_tissue_class adds it
    assert set(samples["structure_class"]) == {"cortex", "subcortex", "brainstem", "cerebellum"}
    coords = samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy()
    assert np.isfinite(coords).all() and np.abs(coords).max() < 120
    assert samples.loc[samples["fs_code"] == 17, "dk_region"].eq("L_hippocampus").all()


def test_celltypes_joined_by_well_id(data_dir):
    samples, values = datasets.load_sample_celltypes(data_dir=data_dir)
    assert values.shape == (3702, 8)
    assert list(values.index) == list(samples["well_id"])
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=0.02)


def test_pathology(data_dir):
    table = datasets.load_pathology(data_dir=data_dir)
    assert table.shape[0] == 86 and table.index[0] == "R_bankssts"
    tau = datasets.load_pathology_map("tau", "ad", data_dir=data_dir)
    assert tau.name == "ad_tau" and tau.notna().all()
    # AD tau is higher than control tau in the entorhinal cortex
    nc = datasets.load_pathology_map("tau", "nc", data_dir=data_dir)
    assert tau["L_entorhinal"] > nc["L_entorhinal"]
    with pytest.raises(InputError):
        datasets.load_pathology_map("atrophy", "nc", data_dir=data_dir)
    amyloid = datasets.load_amyloid_groups(data_dir=data_dir)
    assert amyloid.shape == (86, 4) and "R_insula" in amyloid.index


def test_distances_and_connectome(data_dir):
    distances = datasets.load_region_distances(data_dir=data_dir)
    assert distances.shape == (72, 72) and np.allclose(np.diag(distances), 0)
    assert np.allclose(distances, distances.T)
    connectome = datasets.load_connectome(data_dir=data_dir)
    assert connectome.shape == (86, 86) and connectome.index[0] == "L_cerebellumcortex"


def test_gene_sets(data_dir, tmp_path):
    ad = datasets.load_gene_set("ad", data_dir=data_dir)
    assert len(ad) == 101 and "APOE" in ad and len(set(ad)) == len(ad)
    regional = datasets.load_regional_expression(data_dir=data_dir)
    present, missing = datasets.check_genes(ad, regional.columns, allow_missing=True)
    assert len(present) == 100 and missing == ["NEAT"]
    assert datasets.load_gene_set("ad114", data_dir=data_dir) == ad
    # without that file: the published table, the same 100 genes in its own order
    assert set(datasets.load_gene_set("ad", data_dir=tmp_path)) == set(present)
    assert len(datasets.load_gene_set("l1000", data_dir=data_dir)) == 978
    scores = datasets.load_open_targets(data_dir=data_dir)
    assert scores["APOE"] > 0.5 and scores.index.is_unique


@pytest.mark.realdata
def test_both_ad_gene_lists_give_the_same_gene_axis(data_dir, tmp_path):
    from brainexpr.geneaxis.embedding import spectral_gene_axis

    axes = [spectral_gene_axis(datasets.load_regional_expression(
        datasets.load_gene_set("ad", data_dir=folder), data_dir=data_dir, allow_missing=True))
        for folder in (data_dir, tmp_path)]  # the 114-line list, then the published table
    assert list(axes[0].positions.index) != list(axes[1].positions.index)
    np.testing.assert_allclose(axes[0].positions, axes[1].positions[axes[0].positions.index],
                               atol=1e-12)


def test_ad_genes_without_a_data_folder_are_the_published_table(tmp_path):
    ad = datasets.load_gene_set("ad", data_dir=tmp_path)
    assert len(ad) == len(set(ad)) == 100
    assert ad[:2] == ["ABCA1", "ANK3"] and ad[-1] == "USP6NL"  # Supplementary Table 2's rows
    with pytest.raises(DataNotFoundError, match="ad-genes-114"):
        datasets.load_gene_set("ad114", data_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_atlases(data_dir):
    dk = datasets.load_atlas("dk83", data_dir=data_dir)
    assert dk.image.shape == (182, 218, 182) and len(dk.regions) == 83
    assert set(np.unique(np.asarray(dk.image.dataobj))) == set(range(84))
    bn = datasets.load_atlas("brainnetome246", data_dir=data_dir)
    assert bn.regions.shape[0] == 246
    with pytest.raises(InputError, match="dk83"):
        datasets.load_atlas("aal")


def test_validate_expression_table_rejects_bad_tables():
    good = pd.DataFrame(np.ones((3, 2)), columns=["A", "B"])
    datasets.validate_expression_table(good)
    with pytest.raises(InputError, match="missing"):
        datasets.validate_expression_table(good.mask(good > 0))
    with pytest.raises(InputError, match="duplicated genes: A"):
        datasets.validate_expression_table(pd.DataFrame(np.ones((2, 2)), columns=["A", "A"]))
    with pytest.raises(InputError, match="non-numeric"):
        datasets.validate_expression_table(pd.DataFrame({"A": ["x", "y"]}))


def test_read_region_table_formats(tmp_path):
    from brainexpr.datasets.loaders import read_region_table

    frame = pd.DataFrame({"value": [1.0, 2.0]}, index=pd.Index(["L_bankssts", "R_bankssts"],
                                                               name="region"))
    workbook = tmp_path / "maps.xlsx"
    with pd.ExcelWriter(workbook, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="first")
        (frame * 10).to_excel(writer, sheet_name="second")
    assert read_region_table(workbook)["value"].tolist() == [1.0, 2.0]
    assert read_region_table(workbook, sheet="second")["value"].tolist() == [10.0, 20.0]
    assert read_region_table(workbook, sheet="1")["value"].tolist() == [10.0, 20.0]
    with pytest.raises(InputError, match="has no sheet 'third'; its sheets: first, second"):
        read_region_table(workbook, sheet="third")
    csv = tmp_path / "maps.csv"
    frame.to_csv(csv)
    with pytest.raises(InputError, match=r"sheet \('first'\) applies to Excel workbooks"):
        read_region_table(csv, sheet="first")
    legacy = tmp_path / "maps.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(InputError, match="binary spreadsheet, not CSV/TSV; save it as .xlsx"):
        read_region_table(legacy, "target map")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("region,valeur\nL_bankssts,1\nR_bankssts,\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte \d+\); export it as CSV"):
        read_region_table(latin)
    broken = tmp_path / "broken.xlsx"
    broken.write_text("not a workbook")
    with pytest.raises(InputError, match="cannot read region table .* as an Excel workbook"):
        read_region_table(broken)


def test_select_value_column():
    from brainexpr.datasets.loaders import select_value_column

    table = pd.DataFrame({"tau": ["1", "x"], "amyloid": [2.0, 3.0]}, index=["a", "b"])
    with pytest.raises(InputError, match=r"map m.csv has 2 value columns \(tau, amyloid\); "
                                          "choose one with --column"):
        select_value_column(table, None, "m.csv")
    with pytest.raises(InputError, match="column 'atrophy' is not in map m.csv; columns: tau"):
        select_value_column(table, "atrophy", "m.csv")
    tau = select_value_column(table, "tau", "m.csv")
    assert tau.name == "tau" and tau.iloc[0] == 1.0 and np.isnan(tau.iloc[1])
    assert select_value_column(table[["amyloid"]], None, "m.csv").tolist() == [2.0, 3.0]
    labels = pd.DataFrame({"lobe": ["frontal", "parietal"]}, index=["a", "b"])
    with pytest.raises(InputError, match="column 'lobe' of map m.csv holds no numbers "
                                         r"\(first value 'frontal'\)"):
        select_value_column(labels, None, "m.csv")


def test_ad_genes_dataset_names_the_list_that_was_read(data_dir, tmp_path):
    from brainexpr.datasets.loaders import ad_genes_dataset

    assert ad_genes_dataset(data_dir) == "ad-genes-114"   # the development folder has it
    assert ad_genes_dataset(tmp_path) == "ad-genes"        # otherwise the packaged table
