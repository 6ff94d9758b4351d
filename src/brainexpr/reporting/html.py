"""A self-contained HTML report built from a list of sections.

Each :class:`ReportSection` has a title, text (plain, or trusted HTML), figures and
tables. PNG and SVG figures are embedded in the HTML as base64, so ``report.html`` is one
file that can be mailed or archived; copies of the figures (PNG and SVG, for papers) and of
the tables (CSV) are written beside it. A section whose inputs are absent (a step that did
not run, a figure file that does not exist) is rendered as a clearly marked "not run"
note with its reason, never silently dropped.

Layout of the report folder::

    report.html
    methods.txt                 # the Methods paragraph, references and versions
    figures/<section>-<n>.png   # and .svg when available
    tables/<section>-<n>.csv
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
import pandas as pd

from .._version import __version__
from ..datasets.validate import check_choice
from ..errors import InputError
from ..utils import atomic_path, atomic_write
from .methods import Methods, build_methods

logger = logging.getLogger(__name__)

STATUSES = ("ok", "not run")
#: What to do with a section whose figure files are absent.
ON_MISSING = ("not run", "error")
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}


@dataclass
class ReportFigure:
    """One figure of a section.

    Parameters
    ----------
    source : path-like or matplotlib.figure.Figure
        A ``.png`` or ``.svg`` file, or a matplotlib figure (saved as PNG and SVG).
    caption : str
        Plain text.
    svg : path-like, optional
        SVG version of a PNG file; default: the ``.svg`` beside it, when it exists.
    """

    source: object
    caption: str = ""
    svg: object = None


@dataclass
class ReportTable:
    """One table of a section.

    Parameters
    ----------
    data : pandas.DataFrame
    caption : str
    max_rows : int
        Rows shown in the HTML (the CSV beside the report holds all of them).
    float_format : str
        Format of floating-point cells, e.g. ``"{:.3g}"``.
    index : bool
        Show the index (row names) as the first column.
    """

    data: pd.DataFrame
    caption: str = ""
    max_rows: int = 30
    float_format: str = "{:.3g}"
    index: bool = True


@dataclass
class ReportSection:
    """One section of the report.

    Parameters
    ----------
    title : str
    text : str
        Plain text; blank lines separate paragraphs (escaped in the HTML).
    html : str
        Trusted HTML inserted as is after the text (e.g. a list built by another module).
    figures : list of ReportFigure, path or matplotlib Figure
    tables : list of ReportTable, DataFrame or (caption, DataFrame)
    status : {"ok", "not run"}
    reason : str
        Why the section did not run (shown in the "not run" note).
    methods : str
        One Methods sentence for this step, with ``[@key]`` citations (see
        :mod:`brainexpr.reporting.methods`); used only when the section ran.
    """

    title: str
    text: str = ""
    html: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    status: str = "ok"
    reason: str = ""
    methods: str = ""

    @classmethod
    def not_run(cls, title: str, reason: str) -> "ReportSection":
        """A section for a step that did not run, e.g. ``not_run("VAE", "issue 7 not merged")``."""
        return cls(title=title, status="not run", reason=reason)


def _slug(text: str, used: set) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def _as_figure(item) -> ReportFigure:
    if isinstance(item, ReportFigure):
        return item
    if isinstance(item, (str, Path)) or hasattr(item, "savefig"):
        return ReportFigure(item)
    raise InputError(f"a report figure must be a PNG/SVG path, a matplotlib Figure or a "
                     f"ReportFigure, got {type(item).__name__}")


def _as_table(item) -> ReportTable:
    if isinstance(item, ReportTable):
        table = item
    elif isinstance(item, pd.DataFrame):
        table = ReportTable(item)
    elif isinstance(item, pd.Series):
        table = ReportTable(item.to_frame())
    elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (pd.DataFrame, pd.Series)):
        data = item[1].to_frame() if isinstance(item[1], pd.Series) else item[1]
        table = ReportTable(data, caption=str(item[0]))
    else:
        raise InputError(f"a report table must be a DataFrame, (caption, DataFrame) or a "
                         f"ReportTable, got {type(item).__name__}")
    if not isinstance(table.data, pd.DataFrame):
        raise InputError(f"ReportTable.data must be a pandas DataFrame, got {type(table.data).__name__}")
    return table


def _check_section(section: ReportSection, on_missing: str) -> ReportSection:
    """Validate a section; turn one with absent figure files into a "not run" section."""
    if not isinstance(section, ReportSection):
        raise InputError(f"report sections must be ReportSection objects, got {type(section).__name__}")
    check_choice(section.status, STATUSES, f"status of section {section.title!r}")
    if section.status != "ok":
        return ReportSection.not_run(section.title, section.reason or "the step did not run")
    figures = [_as_figure(item) for item in section.figures]
    tables = [_as_table(item) for item in section.tables]
    missing = []
    for figure in figures:
        if hasattr(figure.source, "savefig"):
            continue
        path = Path(figure.source)
        if path.suffix.lower() not in _IMAGE_TYPES:
            raise InputError(f"figure {path.name} of section {section.title!r} must be a .png or "
                             f".svg file, got {path.suffix or 'no suffix'}")
        if not path.is_file():
            missing.append(str(path))
    if missing:
        reason = f"inputs are absent: {', '.join(missing[:5])}"
        if on_missing == "error":
            raise InputError(f"section {section.title!r}: {reason}")
        logger.warning("report section %r not run: %s", section.title, reason)
        return ReportSection.not_run(section.title, reason)
    return ReportSection(title=section.title, text=section.text, html=section.html,
                         figures=figures, tables=tables, status="ok", methods=section.methods)


def _figure_files(figure: ReportFigure) -> dict:
    """Return {suffix: bytes} of a figure (PNG and/or SVG)."""
    if hasattr(figure.source, "savefig"):
        files = {}
        for suffix in (".png", ".svg"):
            buffer = io.BytesIO()
            figure.source.savefig(buffer, format=suffix[1:], dpi=200, bbox_inches="tight")
            files[suffix] = buffer.getvalue()
        return files
    path = Path(figure.source)
    files = {path.suffix.lower(): path.read_bytes()}
    svg = Path(figure.svg) if figure.svg is not None else path.with_suffix(".svg")
    if ".svg" not in files and svg.is_file():
        files[".svg"] = svg.read_bytes()
    return files


def _display_width(png: bytes) -> int | None:
    """CSS width of a PNG: half its pixel width (figures are saved at 200 dpi for sharp zoom)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return None
    return int.from_bytes(png[16:20], "big") // 2


def _table_html(table: ReportTable) -> str:
    data = table.data
    shown = data.head(table.max_rows)
    return shown.to_html(index=table.index, float_format=table.float_format.format, border=0, na_rep="n/a",
                         classes="data", escape=True)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text or "") if block.strip()]


def build_report(sections, out_dir, *, title: str = "brainexpr report", options: dict | None = None,
                 datasets=(), methods: Methods | None = None, on_missing: str = "not run",
                 filename: str = "report.html") -> Path:
    """Write a self-contained HTML report (and its figures and tables) into a folder.

    Parameters
    ----------
    sections : sequence of ReportSection
        In the order they appear.
    out_dir : path-like
        Report folder; ``report.html``, ``methods.txt``, ``figures/`` and ``tables/`` are
        written there (other files in it are left alone).
    title : str
    options : dict, optional
        The run's configuration, shown as the "Data and options" table and described in
        the Methods.
    datasets : sequence of str
        Registry names of the datasets read (cited in the Methods).
    methods : Methods, optional
        A ready Methods text; default: :func:`brainexpr.reporting.methods.build_methods`
        from ``options``, the ``methods`` sentences of the sections that ran, and ``datasets``.
    on_missing : {"not run", "error"}
        A section whose figure files are absent becomes a "not run" note, or raises.
    filename : str

    Returns
    -------
    Path
        The HTML file.

    Raises
    ------
    InputError
        For malformed sections (checked before anything is written).
    """
    check_choice(on_missing, ON_MISSING, "on_missing")
    checked = [_check_section(section, on_missing) for section in sections]
    if methods is None:
        methods = build_methods(options, steps=[s.methods for s in checked if s.status == "ok"],
                                datasets=datasets)
    out_dir = Path(out_dir)

    used: set = set()
    rendered = []
    writes = []  # (path, bytes), done only after every section rendered without error
    for section in checked:
        slug = _slug(section.title, used)
        entry = {"title": section.title, "slug": slug, "status": section.status,
                 "reason": section.reason, "paragraphs": _paragraphs(section.text),
                 "html": section.html, "figures": [], "tables": []}
        for number, figure in enumerate(section.figures, 1):
            stem = f"{slug}-{number}"
            files = _figure_files(figure)
            embedded = ".png" if ".png" in files else ".svg"
            entry["figures"].append({
                "data": base64.b64encode(files[embedded]).decode("ascii"),
                "width": _display_width(files[embedded]) if embedded == ".png" else None,
                "mime": _IMAGE_TYPES[embedded], "caption": figure.caption, "number": number,
                "links": [f"figures/{stem}{suffix}" for suffix in sorted(files)],
            })
            writes += [(out_dir / "figures" / f"{stem}{suffix}", payload)
                       for suffix, payload in files.items()]
        for number, table in enumerate(section.tables, 1):
            stem = f"{slug}-{number}"
            entry["tables"].append({
                "html": _table_html(table), "caption": table.caption,
                "n_rows": len(table.data), "shown": min(len(table.data), table.max_rows),
                "csv": f"tables/{stem}.csv",
            })
            writes.append((out_dir / "tables" / f"{stem}.csv",
                           table.data.to_csv(index=table.index).encode("utf-8")))
        rendered.append(entry)

    option_rows = [(str(k), _format_option(v)) for k, v in (options or {}).items()]
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(
        resources.files(__package__).joinpath("templates", "report.html.j2").read_text("utf-8"))
    page = template.render(
        title=title, sections=rendered, options=option_rows, methods=methods,
        version=__version__, created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        n_not_run=sum(s["status"] != "ok" for s in rendered),
    )
    _close_figures(checked)
    for path, payload in writes:
        with atomic_path(path) as tmp:
            tmp.write_bytes(payload)
    with atomic_write(out_dir / "methods.txt", encoding="utf-8") as handle:
        handle.write(methods.text())
    target = out_dir / filename
    with atomic_write(target, encoding="utf-8") as handle:
        handle.write(page)
    logger.info("wrote the report %s (%d sections, %d not run, %d figure files)", target,
                len(rendered), sum(s["status"] != "ok" for s in rendered), len(writes))
    return target


def _close_figures(sections) -> None:
    """Close the matplotlib figures the report saved (they are not shown anywhere)."""
    figures = [f.source for s in sections for f in s.figures if hasattr(f.source, "savefig")]
    if figures:
        import matplotlib.pyplot as plt

        for figure in figures:
            plt.close(figure)


def _format_option(value) -> str:
    if isinstance(value, (list, tuple)):
        shown = ", ".join(map(str, value[:12]))
        return f"{shown}, ... ({len(value)} items)" if len(value) > 12 else shown
    return str(value)
