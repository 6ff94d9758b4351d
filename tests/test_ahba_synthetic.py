"""The synthetic raw-format donors: real layouts, consistent ontology, known PA calls."""

import numpy as np
import pandas as pd

from brainexpr.ahba import io
from brainexpr.ahba.samples import structure_class
from brainexpr.ahba.synthetic import (build_ontology, format_matrix_rows, raw_sample_table,
                                      write_synthetic_download)


def test_fast_row_formatter_is_exact():
    values = np.array([[1.5, 12.3456789, 0.0000004], [99.9999999, 7.0, 10.0]])
    text = format_matrix_rows(np.array([5, 6]), values)
    assert text == b"5,1.500000,12.345679,0.000000\n6,99.999999,7.000000,10.000000\n"
    assert format_matrix_rows(np.array([5]), np.array([[True, False]]), decimals=0) == b"5,1,0\n"


def test_real_sample_layouts(data_dir):
    counts = {uid: len(raw_sample_table(uid, data_dir)) for uid in (9861, 10021, 12876)}
    assert counts == {9861: 946, 10021: 893, 12876: 363}
    table = raw_sample_table(14380, data_dir)
    assert list(table.columns) == io.ANNOTATION_COLUMNS


def test_ontology_covers_every_sample_with_a_class(data_dir):
    ontology = build_ontology(data_dir)
    assert list(ontology.columns) == io.ONTOLOGY_COLUMNS
    samples = pd.concat([raw_sample_table(uid, data_dir) for uid in (9861, 12876)])
    assert set(samples["structure_id"]) <= set(ontology["id"])
    classes = ontology.set_index("id").loc[samples["structure_id"], "structure_id_path"].map(
        structure_class)
    assert classes.notna().all()
    assert set(classes) == {"cortex", "subcortex/brainstem", "cerebellum", "white matter"}
    lateral = ontology[ontology["hemisphere"].isin(["L", "R"])]
    pairs = lateral.groupby("acronym")["hemisphere"].nunique()
    assert (pairs == 2).all()                    # every structure has a mirror counterpart


def test_written_donor_reads_back_with_known_pa_calls(data_dir, tmp_path):
    truth = write_synthetic_download(tmp_path, donors=[12876], n_genes=5, max_samples=50,
                                     random_state=1, data_dir=data_dir, layout="abagen")
    folder = tmp_path / "microarray" / "normalized_microarray_donor12876"
    donor = io.load_donor(folder, cache_dir=tmp_path / "cache")
    assert donor.microarray.shape == (len(truth.probes), 50)
    np.testing.assert_array_equal(np.asarray(donor.pacall),
                                  np.asarray(donor.microarray) > truth.background)
    assert list(donor.probes.index) == list(truth.probes.index)
    assert set(truth.probes["role"]) == {"signal", "noisy", "low", "unannotated"}


def test_custom_field_drives_the_signal_probes(data_dir, tmp_path):
    def left_right(coords):                  # 3 genes: x, -x and y (order 1 values)
        coords = np.asarray(coords, dtype=float) / 50
        return np.column_stack([coords[:, 0], -coords[:, 0], coords[:, 1]])

    truth = write_synthetic_download(tmp_path, donors=[10021], n_genes=3, max_samples=80,
                                     field=left_right, random_state=4, data_dir=data_dir)
    donor = io.load_donor(tmp_path / "normalized_microarray_donor10021",
                          cache_dir=tmp_path / "cache")
    x = donor.annotation["mni_x"].to_numpy()
    signal = truth.probes["role"].to_numpy() == "signal"
    genes = truth.probes["gene_index"].to_numpy()
    first = np.asarray(donor.microarray)[signal & (genes == 0)][0]
    second = np.asarray(donor.microarray)[signal & (genes == 1)][0]
    assert np.corrcoef(first, x)[0, 1] > 0.9 and np.corrcoef(second, x)[0, 1] < -0.9
