"""Shared parameter docs (brainexpr.docstrings)."""

from __future__ import annotations

import pytest

from brainexpr.docstrings import docdict, fill_doc


def test_fill_doc_indents_the_entry_like_the_line_it_replaces():
    class Model:
        @fill_doc
        def fit(self, data_dir=None):
            """Fit: 90 % of it.

            Parameters
            ----------
            %(data_dir)s
            """

    lines = Model.fit.__doc__.splitlines()
    start = lines.index("            data_dir : path-like, optional")
    assert lines[start + 1].startswith("                Reference data folder")
    assert "90 % of it" in Model.fit.__doc__ and "%(" not in Model.fit.__doc__
    entry = docdict["data_dir"].splitlines()
    assert [line.strip() for line in lines[start:start + len(entry)]] == [e.strip() for e in entry]


def test_fill_doc_refuses_unknown_entries():
    def f():
        """%(no_such_parameter)s"""

    with pytest.raises(KeyError):
        fill_doc(f)


def test_workflow_docstrings_are_filled():
    from brainexpr.workflows.models import predict_maps
    from brainexpr.workflows.run import run_main

    for func in (predict_maps, run_main):
        assert "%(data_dir)s" not in func.__doc__ and "BRAINEXPR_DATA" in func.__doc__


def test_no_docstring_of_the_package_is_left_unfilled():
    """Every ``%(name)s`` line of a docstring is filled (its function has ``@fill_doc``)."""
    import importlib
    import inspect
    import pkgutil
    import re

    import brainexpr

    field = re.compile(r"^\s*%\(\w+\)s\s*$", re.M)
    unfilled = []
    for info in pkgutil.walk_packages(brainexpr.__path__, "brainexpr."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [obj] + [m for m in vars(obj).values() if callable(m)] \
                if inspect.isclass(obj) else [obj]
            unfilled += [f"{module.__name__}.{name}" for m in members
                         if isinstance(getattr(m, "__doc__", None), str) and field.search(m.__doc__)]
    assert unfilled == []
