"""Reporting: figures of each analysis, slices of gene maps, the Methods text, the HTML report.

Submodules are imported on first use (``brainexpr.reporting.build_report`` imports
:mod:`~brainexpr.reporting.html`), so importing one figure module does not load them all.

* :mod:`.html`: :class:`ReportSection`, :func:`build_report` (self-contained HTML).
* :mod:`.methods`: :func:`build_methods` (Methods paragraph, citations, package versions).
* :mod:`.slices`: :func:`plot_map_slices`, :func:`plot_gene_panel`.
* :mod:`.figures`: :func:`save_figure` (every figure of the package), :func:`pyplot`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ReportFigure": "html", "ReportSection": "html", "ReportTable": "html", "build_report": "html",
    "Methods": "methods", "build_methods": "methods", "package_versions": "methods",
    "REFERENCES": "methods",
    "plot_map_slices": "slices", "plot_gene_panel": "slices", "save_figure": "figures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
