import json

import pytest

from brainexpr.workflows.steps import run_step, stable_hash


def test_step_is_reused_until_params_or_upstream_change(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "result.txt").write_text("ok")
        return {"n": 1}

    first = run_step("a", tmp_path, {"k": 1}, [], build)
    assert not first.reused and (tmp_path / "a" / "result.txt").exists()
    again = run_step("a", tmp_path, {"k": 1}, [], build)
    assert again.reused and again.summary == {"n": 1} and len(calls) == 1
    changed = run_step("a", tmp_path, {"k": 2}, [], build)
    assert not changed.reused and len(calls) == 2
    downstream = run_step("b", tmp_path, {}, [changed], build)
    assert run_step("b", tmp_path, {}, [changed], build).reused
    assert not run_step("b", tmp_path, {}, [first], build).reused
    assert json.loads((tmp_path / "b" / "step.json").read_text())["digest"] != downstream.digest


def test_failed_step_leaves_previous_result(tmp_path):
    run_step("a", tmp_path, {"k": 1}, [], lambda f: (f / "x").write_text("1") and {})

    def broken(folder):
        (folder / "x").write_text("partial")
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        run_step("a", tmp_path, {"k": 2}, [], broken)
    assert (tmp_path / "a" / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
