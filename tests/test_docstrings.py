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
