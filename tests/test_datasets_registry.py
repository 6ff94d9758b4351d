import hashlib
import shutil
from pathlib import Path

import pytest

import brainexpr
from brainexpr.cli import main
from brainexpr.datasets import (dataset_status, fetch_dataset, fetch_file, get_dataset,
                                list_datasets, sha256sum)
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
    with pytest.raises(ChecksumError, match="brainexpr fetch ad-genes-114"):
        fetch_file(rel, data_dir=tmp_path)


def test_a_file_shipped_with_the_package_is_always_present(tmp_path, capsys):
    (rel,) = get_dataset("ad-genes").files
    packaged = fetch_file(rel, data_dir=tmp_path)
    assert packaged.is_relative_to(Path(brainexpr.__file__).parent)
    assert dataset_status("ad-genes", data_dir=tmp_path)["verified"]
    assert main(["fetch", "ad-genes", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(packaged)] and not any(tmp_path.iterdir())
    copy = tmp_path / rel  # a corrupted copy in the data folder is found first ...
    copy.parent.mkdir(parents=True)
    copy.write_text(packaged.read_text().replace("APOE", "APOF"))
    with pytest.raises(ChecksumError, match="brainexpr fetch ad-genes"):
        fetch_file(rel, data_dir=tmp_path)
    assert fetch_dataset("ad-genes", data_dir=tmp_path) == [copy]  # ... and replaced
    assert copy.read_bytes() == packaged.read_bytes()


def test_the_114_line_list_is_optional_and_named(tmp_path, capsys):
    assert main(["fetch", "ad-genes-114", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the log's plan line
    assert error.startswith("brainexpr fetch: error:") and "optional" in error
    assert "genes/ad_genes_114.csv" in error


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
