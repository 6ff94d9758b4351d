"""Reading and validating raw AHBA files; the parse cache; the processed-output round trip."""

import os

import numpy as np
import pandas as pd
import pytest

from brainexpr.ahba import io
from brainexpr.errors import InputError

VALUES = np.array([[5.25, 6.5, 7.125, 8.0],
                   [1.5, 2.25, 3.0, 4.75],
                   [10.0, 11.5, 12.25, 13.0]])
PACALL = np.array([[1, 1, 1, 1], [0, 0, 1, 0], [1, 0, 1, 1]])
PROBE_IDS = [1058685, 1058686, 1058689]


def _matrix_text(ids, values, fmt="{:g}"):
    return "".join(f"{i}," + ",".join(fmt.format(v) for v in row) + "\n"
                   for i, row in zip(ids, values))


def write_tiny_donor(root, uid=9861):
    """Three probes x four samples in the raw Allen layout."""
    folder = root / f"normalized_microarray_donor{uid}"
    folder.mkdir(parents=True)
    pd.DataFrame({"probe_id": PROBE_IDS, "probe_name": ["A_23_P1", "A_23_P2", "CUST_3_PI1"],
                  "gene_id": [1, 2, 3], "gene_symbol": ["G1", "G2", "G3"],
                  "gene_name": ["g1", "g2", "g3"], "entrez_id": [11, 12, None],
                  "chromosome": ["1", "2", "3"]}).to_csv(folder / "Probes.csv", index=False)
    annot = pd.DataFrame({"structure_id": [10, 10, 11, 30], "slab_num": 1,
                          "well_id": [594, 2985, 2785, 2793], "slab_type": "CX",
                          "structure_acronym": ["SFG", "SFG", "SFG", "PnR"],
                          "structure_name": ["sfg, left", "sfg, left", "sfg, right", "raphe"],
                          "polygon_id": 1, "mri_voxel_x": 1, "mri_voxel_y": 2, "mri_voxel_z": 3,
                          "mni_x": [-20.0, -25.0, 22.0, 0.0], "mni_y": 10.0, "mni_z": 40.0})
    annot.to_csv(folder / "SampleAnnot.csv", index=False)
    pd.DataFrame({"id": [10, 11, 30], "acronym": ["SFG", "SFG", "PnR"],
                  "name": ["sfg, left", "sfg, right", "raphe"], "parent_structure_id": 4008,
                  "hemisphere": ["L", "R", None], "graph_order": [1, 2, 3],
                  "structure_id_path": ["/4005/4008/10/", "/4005/4008/11/", "/4005/9131/30/"],
                  "color_hex_triplet": "FFFFFF"}).to_csv(folder / "Ontology.csv", index=False)
    (folder / "MicroarrayExpression.csv").write_text(_matrix_text(PROBE_IDS, VALUES))
    (folder / "PACall.csv").write_text(_matrix_text(PROBE_IDS, PACALL, "{:d}"))
    return folder


def test_check_donors_accepts_every_naming():
    assert io.check_donors(["9861", "H0351.2002", "H0351_1009", "1012", 15496,
                            "normalized_microarray_donor15697"]) == [9861, 10021, 12876, 14380,
                                                                     15496, 15697]
    assert io.check_donors("all")[0] == 9861
    with pytest.raises(InputError, match="unknown AHBA donor '1234'"):
        io.check_donors(["1234"])


def test_find_donor_dirs_in_both_layouts(tmp_path):
    write_tiny_donor(tmp_path / "allen", 9861)
    write_tiny_donor(tmp_path / "abagen" / "microarray", 10021)
    assert list(io.find_donor_dirs(tmp_path / "allen")) == [9861]
    assert list(io.find_donor_dirs(tmp_path / "abagen", donors=["10021"])) == [10021]
    with pytest.raises(InputError, match="no folder for donor"):
        io.find_donor_dirs(tmp_path / "allen", donors=[10021])
    (tmp_path / "allen" / "normalized_microarray_donor4242").mkdir()
    with pytest.raises(InputError, match="donor 4242 is unknown"):
        io.find_donor_dirs(tmp_path / "allen")
    with pytest.raises(InputError, match="does not exist"):
        io.find_donor_dirs(tmp_path / "nowhere")


def test_load_donor_reads_exact_values_and_caches(tmp_path, monkeypatch):
    folder = write_tiny_donor(tmp_path / "raw")
    donor = io.load_donor(folder, cache_dir=tmp_path / "cache")
    assert donor.uid == 9861 and donor.name == "H0351.2001"
    np.testing.assert_array_equal(np.asarray(donor.microarray), VALUES.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(donor.pacall), PACALL.astype(bool))
    assert list(donor.probes.index) == PROBE_IDS and np.isnan(donor.probes["entrez_id"].iloc[2])
    assert list(donor.ontology["hemisphere"]) == ["L", "R", "B"]

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cached matrices should have been used")

    monkeypatch.setattr(io, "read_matrix", no_parsing)
    again = io.load_donor(folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(again.microarray), np.asarray(donor.microarray))
    # editing a raw file invalidates the cache
    path = folder / "MicroarrayExpression.csv"
    path.write_text(_matrix_text(PROBE_IDS, VALUES + 1))
    os.utime(path, ns=(1, 1))
    with pytest.raises(AssertionError, match="cached matrices"):
        io.load_donor(folder, cache_dir=tmp_path / "cache")


def _load(folder, tmp_path):
    return io.load_donor(folder, cache_dir=tmp_path / "cache")


def test_truncated_matrix_names_file_and_line(tmp_path):
    folder = write_tiny_donor(tmp_path)
    path = folder / "MicroarrayExpression.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex(",") - 2])        # cut inside the last row
    with pytest.raises(InputError, match=r"MicroarrayExpression.csv has missing values on line 3"):
        _load(folder, tmp_path)
    path.write_text(text[: text.index("\n") + 1])          # only the first row survived
    with pytest.raises(InputError, match=r"MicroarrayExpression.csv has 1 rows but Probes.csv "
                                         r"lists 3 probes; the file is truncated"):
        _load(folder, tmp_path)
    path.write_text("")
    with pytest.raises(InputError, match="MicroarrayExpression.csv is empty"):
        _load(folder, tmp_path)
    # nothing half-written stays in the cache
    assert not list((tmp_path / "cache" / "ahba-raw").glob("donor*"))


def test_sample_count_mismatch_names_both_files(tmp_path):
    folder = write_tiny_donor(tmp_path)
    extra = np.hstack([PACALL, PACALL[:, :1]])
    (folder / "PACall.csv").write_text(_matrix_text(PROBE_IDS, extra, "{:d}"))
    with pytest.raises(InputError, match=r"PACall.csv has 5 sample columns but SampleAnnot.csv "
                                         r"lists 4 samples"):
        _load(folder, tmp_path)


def test_bad_pacall_and_probe_order(tmp_path):
    folder = write_tiny_donor(tmp_path)
    (folder / "PACall.csv").write_text(_matrix_text(PROBE_IDS, PACALL * 2, "{:d}"))
    with pytest.raises(InputError, match="PACall.csv holds values other than 0 and 1"):
        _load(folder, tmp_path)
    (folder / "PACall.csv").write_text(_matrix_text(PROBE_IDS, PACALL, "{:d}"))
    (folder / "MicroarrayExpression.csv").write_text(_matrix_text(PROBE_IDS[::-1], VALUES))
    with pytest.raises(InputError, match="lists its probes in a different order"):
        _load(folder, tmp_path)


def test_missing_or_foreign_ontology(tmp_path):
    folder = write_tiny_donor(tmp_path)
    ontology = pd.read_csv(folder / "Ontology.csv")
    ontology.iloc[:2].to_csv(folder / "Ontology.csv", index=False)
    with pytest.raises(InputError, match=r"structure ids absent from .*Ontology.csv"):
        _load(folder, tmp_path)
    (folder / "Ontology.csv").unlink()
    with pytest.raises(InputError, match=r"Ontology.csv is missing"):
        _load(folder, tmp_path)


def test_truncated_sample_annotation(tmp_path):
    folder = write_tiny_donor(tmp_path)
    path = folder / "SampleAnnot.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex(",")])              # last row loses mni_z
    with pytest.raises(InputError, match=r"SampleAnnot.csv has a missing or non-numeric 'mni_z' "
                                         r"on line 5"):
        _load(folder, tmp_path)


def test_write_table_and_processed_round_trip(tmp_path):
    regions = pd.Index(["L_bankssts", "R_insula"], name="region")
    genes = pd.Index(["A1BG", "APOE"], name="gene")
    regional = pd.DataFrame([[0.125, np.nan], [0.5, 0.75]], index=regions, columns=genes)
    io.write_table(regional, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", index_col=0)
    pd.testing.assert_frame_equal(back, regional, check_names=False, check_index_type=False,
                                  check_column_type=False)
    samples = pd.DataFrame({"well_id": [1, 2], "donor": "H0351.2001", "donor_uid": 9861,
                            "mirrored": [False, True], "mni_x": [1.0, -1.0], "mni_y": 0.0,
                            "mni_z": 0.0, "label": [1, 0], "region": ["L_bankssts", ""],
                            "tissue_class": [1, 0]},
                           index=pd.Index([0, 1], name="sample_id"))
    result = io.ProcessedAHBA(
        samples=samples, expression=np.array([[0.1, 0.2], [0.3, 0.4]], np.float32),
        genes=pd.DataFrame({"entrez_id": [1, 348], "diff_stability": [0.5, 0.9]},
                           index=pd.Index(["A1BG", "APOE"], name="gene_symbol")),
        regional=regional, regional_donors={9861: regional},
        counts=pd.DataFrame({"9861": [3, 0]}, index=regions), methods="Methods.",
        provenance={"options": {"lr_mirror": None}})
    io.write_processed(result, tmp_path / "out")
    loaded = io.load_processed(tmp_path / "out")
    assert loaded.samples["region"].tolist() == ["L_bankssts", ""]
    assert loaded.samples["mirrored"].tolist() == [False, True]
    np.testing.assert_array_equal(loaded.expression, result.expression)
    assert loaded.sample_expression(["APOE"]).iloc[:, 0].tolist() == pytest.approx([0.2, 0.4])
    assert list(loaded.regional_donors) == [9861] and loaded.methods == "Methods."
    np.testing.assert_allclose(loaded.coordinates()[:, 0], [1.0, -1.0])
    coords, values, tissue = loaded.training_data(["A1BG"])
    assert coords.shape == (2, 3) and list(values.columns) == ["A1BG"] and list(tissue) == [1, 0]
    io.write_processed(result, tmp_path / "binary", binary_tables=True)
    fast = io.load_processed(tmp_path / "binary")
    np.testing.assert_allclose(fast.regional.to_numpy(), regional.to_numpy())
    assert list(fast.regional.index) == list(regions) and list(fast.regional_donors) == [9861]
    with pytest.raises(InputError, match="is not a processed AHBA folder"):
        io.load_processed(tmp_path)
