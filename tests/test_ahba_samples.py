"""Sample handling: ontology classes, corrected coordinates, mirroring, matching at the edge."""

import numpy as np
import pandas as pd
import pytest

from brainexpr.ahba import samples
from brainexpr.errors import InputError


def _ontology():
    return pd.DataFrame({
        "id": [4008, 4249, 10, 11, 20, 21, 30, 40],
        "acronym": ["CTX", "HiF", "SFG", "SFG", "CA1", "CA1", "PnR", "cc"],
        "name": ["cerebral cortex", "hippocampal formation", "superior frontal gyrus, left",
                 "superior frontal gyrus, right", "CA1 field, left", "CA1 field, right",
                 "pontine raphe nucleus", "corpus callosum"],
        "hemisphere": ["B", "B", "L", "R", "L", "R", "B", "B"],
        "structure_id_path": ["/4005/4006/4007/4008/", "/4005/4006/4007/4008/4249/",
                              "/4005/4006/4007/4008/10/", "/4005/4006/4007/4008/11/",
                              "/4005/4006/4007/4008/4249/20/", "/4005/4006/4007/4008/4249/21/",
                              "/4005/4006/4833/9131/30/", "/4005/9218/40/"],
    })


def _annotation(rows):
    cols = ["structure_id", "well_id", "structure_acronym", "structure_name", "mni_x", "mni_y",
            "mni_z"]
    return pd.DataFrame(rows, columns=cols)


def test_structure_class_takes_the_most_specific_class():
    assert samples.structure_class("/4005/4006/4007/4008/4084/") == "cortex"
    assert samples.structure_class("/4005/4006/4007/4008/4249/4251/") == "subcortex/brainstem"
    assert samples.structure_class("/4005/4006/4833/4696/4700/") == "cerebellum"
    assert samples.structure_class("/4005/9218/9219/") == "white matter"
    assert samples.structure_class("/4005/") is None


def test_annotate_mirror_and_mismatch_counts():
    table = _annotation([
        (10, 1, "SFG", "superior frontal gyrus, left", -20.0, 10.0, 40.0),
        (10, 2, "SFG", "superior frontal gyrus, left", -25.0, 12.0, 45.0),
        (20, 3, "CA1", "CA1 field, left", -28.0, -20.0, -10.0),
        (11, 4, "SFG", "superior frontal gyrus, right", 22.0, 10.0, 40.0),
        (21, 5, "CA1", "CA1 field, right", 27.0, -20.0, -10.0),
        (30, 6, "PnR", "pontine raphe nucleus", 0.0, -30.0, -30.0),
        (11, 7, "SFG", "superior frontal gyrus, right", -3.0, 10.0, 40.0),  # right but x < 0
    ])
    ann = samples.annotate_samples(table, _ontology())
    assert list(ann["hemisphere"]) == ["L", "L", "L", "R", "R", "B", "R"]
    assert list(ann["structure"]) == ["cortex", "cortex", "subcortex/brainstem", "cortex",
                                      "subcortex/brainstem", "subcortex/brainstem", "cortex"]
    assert list(samples.drop_mismatch_samples(ann)["well_id"]) == [1, 2, 3, 4, 5, 6]
    # 4 samples with x < 0 (three left, one mismatched right), 2 with x > 0, one at x = 0
    both = samples.mirror_samples(ann, _ontology(), "bidirectional")
    assert len(both) == 7 + 4 + 2
    left_right = samples.mirror_samples(ann, _ontology(), "leftright")
    assert len(left_right) == 11 and len(samples.mirror_samples(ann, _ontology(), "rightleft")) == 9
    copies = left_right[left_right["mirrored"]]
    assert list(copies["well_id"]) == [1, 2, 3, 7]
    assert list(copies["hemisphere"]) == ["R", "R", "R", "L"]
    assert list(copies["structure_id"]) == [11, 11, 21, 10]   # the other hemisphere's structure
    np.testing.assert_allclose(copies["mni_x"], [20.0, 25.0, 28.0, 3.0])
    assert list(copies["column"]) == [0, 1, 2, 6]            # copies reuse the original column
    # after the mismatch check: 6 originals + 3 consistent copies (the copy of 7 is L at x > 0)
    assert len(samples.drop_mismatch_samples(left_right)) == 9
    with pytest.raises(InputError, match="lr_mirror must be one of"):
        samples.mirror_samples(ann, _ontology(), "both")


def test_corrected_coordinates_are_the_real_ones(data_dir):
    corrected = samples.load_corrected_coordinates(data_dir)
    assert corrected.shape == (3702, 3)
    table = _annotation([(4077, 594, "PCLa-i", "paracentral lobule", 5.9, -27.7, 49.7)])
    out = samples.update_coords(table, corrected=corrected)
    np.testing.assert_allclose(out[["mni_x", "mni_y", "mni_z"]].to_numpy()[0],
                               [6.281692579616768, -26.7694562819027, 46.03092023907661])
    with pytest.raises(InputError, match="not AHBA samples"):
        samples.update_coords(_annotation([(1, 999999999, "X", "x", 0, 0, 0)]), corrected=corrected)


def test_matching_at_the_tolerance_edge(tiny_atlas):
    image, regions = tiny_atlas
    # parcel 1 (right cortex) covers voxels i = 20..39, i.e. x = 12..50 mm (x = 90 - 2 i)
    table = pd.DataFrame({
        "mni_x": [30.0, 10.0, 9.9, 10.0, 10.0, 30.0],
        "mni_y": [-20.0] * 6, "mni_z": [0.0] * 6,
        "hemisphere": ["R", "R", "R", "L", "R", "R"],
        "structure": ["cortex", "cortex", "cortex", "cortex", "subcortex/brainstem",
                      "white matter"],
    })
    labels = samples.match_samples(table, image, regions, tolerance=2.0)
    # inside; exactly 2 mm away; 2.1 mm away; wrong hemisphere; wrong class; white matter
    assert list(labels) == [1, 1, 0, 0, 0, 0]
    assert list(samples.match_samples(table, image, regions, tolerance=3.0)) == [1, 1, 1, 0, 0, 0]
    assert list(samples.match_samples(table, image, regions, tolerance=0.0)) == [1, 0, 0, 0, 0, 0]


def test_similarity_threshold_drops_the_outlier_sample():
    rng = np.random.default_rng(1)
    base = rng.normal(size=200)
    data = np.column_stack([base + rng.normal(0, 0.1, 200) for _ in range(9)]
                           + [rng.normal(size=200)])
    table = pd.DataFrame({"column": np.arange(10), "well_id": np.arange(10)})
    kept = samples.similarity_threshold(data, table, threshold=2.0)
    assert list(kept["well_id"]) == list(range(9))
