import numpy as np
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


def test_outputs_get_ordinary_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as handle:
            handle.write("x")
        with staged_directory(tmp_path / "folder") as stage:
            (stage / "b.txt").write_text("y")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755


def test_jsonable_makes_valid_json():
    import json

    from brainexpr.utils import jsonable

    value = {1: np.int64(3), "r": np.float32(0.5), "bad": float("nan"), "flag": np.bool_(True),
             "list": (np.float64(np.inf), "text")}
    out = jsonable(value)
    assert out == {"1": 3, "r": 0.5, "bad": None, "flag": True, "list": [None, "text"]}
    assert json.loads(json.dumps(out, allow_nan=False)) == out
