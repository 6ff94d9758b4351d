import pytest

from brainexpr.utils import atomic_path, atomic_write, staged_directory


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_suffix_and_moves(tmp_path):
    target = tmp_path / "map.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"


def test_staged_directory_replaces_only_on_success(tmp_path):
    out = tmp_path / "outputs"
    with staged_directory(out) as stage:
        (stage / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(ValueError):
        with staged_directory(out) as stage:
            (stage / "b.txt").write_text("2")
            raise ValueError("bad input")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]
