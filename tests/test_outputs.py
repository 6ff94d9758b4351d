"""The output policy: what a command may write, replace and remove."""

import json

import pytest

from brainexpr.errors import OutputError
from brainexpr.outputs import (MANIFEST, check_output_file, check_output_folder, folder_lock,
                               output_folder, read_manifest, record_output_file,
                               remove_leftovers)


def _write(command, path, names, overwrite=False):
    with output_folder(path, command, overwrite) as stage:
        for name in names:
            (stage / name).write_text(command)


def test_new_folder_gets_a_manifest(tmp_path):
    _write("predict", tmp_path / "out", ["a.nii", "maps.tsv"])
    assert read_manifest(tmp_path / "out") == {"a.nii": "predict", "maps.tsv": "predict"}


def test_user_files_are_refused_then_kept_with_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    (out / ".thesis.partial").write_text("mine too")
    with pytest.raises(OutputError, match=r"holds 2 file\(s\) brainexpr did not write"):
        check_output_folder(out, "predict")
    _write("predict", out, ["a.nii"], overwrite=True)
    _write("predict", out, ["b.nii"], overwrite=True)  # a.nii was brainexpr's: removed
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".thesis.partial", MANIFEST, "b.nii", "thesis.tex"])
    with pytest.raises(OutputError, match="thesis.tex, which brainexpr did not write"):
        _write("predict", out, ["thesis.tex"], overwrite=True)
    assert (out / "thesis.tex").read_text() == "mine"


def test_another_commands_output_needs_overwrite(tmp_path):
    _write("run", tmp_path / "out", ["config.toml"])
    with pytest.raises(OutputError, match="holds the output of 'brainexpr run'"):
        check_output_folder(tmp_path / "out", "view")
    _write("view", tmp_path / "out", ["index.html"], overwrite=True)
    assert read_manifest(tmp_path / "out") == {"config.toml": "run", "index.html": "view"}


def test_files_and_folders_in_the_wrong_place(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(OutputError, match="is an existing file"):
        check_output_folder(plain, "predict")
    with pytest.raises(OutputError, match="which is a file"):
        check_output_folder(plain / "sub", "predict")
    with pytest.raises(OutputError, match="existing folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="brainexpr did not write it"):
        check_output_file(plain)
    record_output_file(plain, "parcellate")
    assert check_output_file(plain) == plain


def test_a_failure_leaves_the_folder_as_it_was(tmp_path):
    _write("predict", tmp_path / "out", ["a.nii"])
    with pytest.raises(RuntimeError):
        with output_folder(tmp_path / "out", "predict") as stage:
            (stage / "b.nii").write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MANIFEST, "a.nii"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_are_brainexprs_only(tmp_path):
    out = tmp_path / "out"
    _write("run", out, ["maps"])
    (out / ".maps.staging-abcd1234").mkdir()
    (out / ".notes.part").write_text("the user's")
    (tmp_path / ".out.staging-zyxw9876").mkdir()
    removed = remove_leftovers(out)
    assert sorted(p.name for p in removed) == [".maps.staging-abcd1234", ".out.staging-zyxw9876"]
    assert (out / ".notes.part").exists()


def test_lock_records_the_holder(tmp_path):
    with folder_lock(tmp_path / "out") as lock:
        assert json.loads(lock.read_text())["pid"] > 0
