import hashlib
import shutil

import pytest

from brainexpr.datasets import dataset_status, fetch_file, get_dataset, list_datasets, sha256sum
from brainexpr.errors import BrainexprError, ChecksumError, DataNotFoundError


def test_registry_entries_are_complete():
    names = list_datasets()
    assert {"regional-dk83", "ahba-samples", "ahba-celltypes", "adni-pathology", "ad-genes",
            "open-targets-ad", "l1000", "mni152-fsl", "brainnetome-246"} <= set(names)
    for name in names:
        entry = get_dataset(name)
        assert entry.files and entry.citation and entry.licence and entry.source
        assert all(len(h) == 64 for h in entry.files.values())


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(BrainexprError, match="regional-dk83"):
        get_dataset("nope")


def test_every_registered_file_is_present_and_verified(data_dir):
    for name in list_datasets():
        status = dataset_status(name, data_dir=data_dir)
        assert status["verified"], status


def test_checksum_failure_on_corrupted_copy(data_dir, tmp_path):
    rel = "genes/ad_genes_114.csv"
    copy = tmp_path / rel
    copy.parent.mkdir(parents=True)
    shutil.copy(data_dir / rel, copy)
    assert fetch_file(rel, data_dir=tmp_path) == copy
    with open(copy, "a") as handle:
        handle.write("NOTAGENE\n")
    with pytest.raises(ChecksumError, match="brainexpr fetch ad-genes"):
        fetch_file(rel, data_dir=tmp_path)


def test_missing_file_names_file_places_and_source(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        fetch_file("genes/L1000_genes.txt", data_dir=tmp_path)
    message = str(info.value)
    assert "genes/L1000_genes.txt" in message and str(tmp_path) in message
    assert "brainexpr fetch l1000" in message


def test_sha256sum_matches_hashlib(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"brainexpr" * 1000)
    assert sha256sum(path) == hashlib.sha256(b"brainexpr" * 1000).hexdigest()
