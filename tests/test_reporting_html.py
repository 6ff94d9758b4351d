"""Tests of brainexpr.reporting.html: the self-contained HTML report."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from brainexpr.datasets import get_dataset  # noqa: E402
from brainexpr.errors import InputError  # noqa: E402
from brainexpr.reporting import ReportFigure, ReportSection, ReportTable, build_report  # noqa: E402


def _bar_figure(values):
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.bar(range(len(values)), values)
    return figure


@pytest.fixture
def figure_files(tmp_path):
    """A PNG with an SVG beside it, written by matplotlib."""
    png = tmp_path / "inputs" / "agreement.png"
    png.parent.mkdir()
    figure = _bar_figure([0.7, 0.5, 0.2])
    figure.savefig(png, dpi=50)
    figure.savefig(png.with_suffix(".svg"))
    plt.close(figure)
    return png


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.srcs, self.hrefs, self.links = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag in ("img", "script") and "src" in attrs:
            self.srcs.append(attrs["src"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag == "link":
            self.links.append(attrs)


def test_report_embeds_figures_and_writes_copies(tmp_path, figure_files):
    table = pd.DataFrame({"r": [0.71234, 0.5], "p": [0.001, 0.2]}, index=["APOE", "TREM2"])
    sections = [
        ReportSection("Gene maps", text="Slices of <APOE>.\n\nSecond paragraph.",
                      figures=[ReportFigure(figure_files, caption="INR vs abagen")],
                      methods="Maps were drawn [@nilearn]."),
        ReportSection("Agreement", figures=[_bar_figure([1, 2])], tables=[("Per-gene r", table)]),
        ReportSection.not_run("Cross-scale VAE", "the VAE step did not run"),
    ]
    out = build_report(sections, tmp_path / "report", options={"source": "regional", "genes": "ad"},
                       datasets=["regional-dk83"])
    page = out.read_text(encoding="utf-8")

    # the PNG is embedded byte for byte; PNG and SVG copies sit beside the report
    png_bytes = figure_files.read_bytes()
    assert base64.b64encode(png_bytes).decode() in page
    assert (tmp_path / "report/figures/gene-maps-1.png").read_bytes() == png_bytes
    svg_copy = (tmp_path / "report/figures/gene-maps-1.svg").read_bytes()
    assert svg_copy == figure_files.with_suffix(".svg").read_bytes()
    # a matplotlib figure is saved as PNG and SVG and embedded too
    assert (tmp_path / "report/figures/agreement-1.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "report/figures/agreement-1.svg").read_bytes()[:2000]
    assert page.count("data:image/png;base64,") == 2
    # the full table is a CSV beside the report
    saved = pd.read_csv(tmp_path / "report/tables/agreement-1.csv", index_col=0)
    np.testing.assert_allclose(saved.to_numpy(), table.to_numpy())
    assert "0.712" in page and "Per-gene r" in page

    # self-contained: no external scripts, styles or images
    collector = _Collector()
    collector.feed(page)
    assert collector.links == []
    assert all(src.startswith("data:") for src in collector.srcs)
    assert all(not href.startswith("http") for href in collector.hrefs)
    assert len(collector.ids) == len(set(collector.ids))

    # text is escaped, the not-run section is marked with its reason
    assert "Slices of &lt;APOE&gt;." in page
    vae = page[page.index('id="cross-scale-vae"'):]
    assert "Not run:" in vae[:600] and "the VAE step did not run" in vae[:600]
    # the Methods cite the data source from the registry and list package versions
    methods = (tmp_path / "report/methods.txt").read_text(encoding="utf-8")
    assert get_dataset("regional-dk83").citation.strip()[:60] in methods
    assert f"numpy {np.__version__}" in methods
    assert "Abraham A et al. (2014)" in page  # the nilearn sentence of the section ran


def test_section_with_absent_figure_is_not_run(tmp_path, figure_files):
    missing = tmp_path / "benchmark" / "heldout.png"
    sections = [ReportSection("Held-out accuracy", figures=[missing], methods="Held out [@siren]."),
                ReportSection("Maps", figures=[figure_files])]
    page = build_report(sections, tmp_path / "report").read_text(encoding="utf-8")
    block = page[page.index('id="held-out-accuracy"'):page.index('id="maps"')]
    assert "Not run:" in block and str(missing) in block
    assert "not run</span>" in page[:page.index("<section")]  # badge in the contents
    # the sentence of a section that did not run does not enter the Methods
    assert "Sitzmann" not in page

    with pytest.raises(InputError, match="inputs are absent"):
        build_report(sections, tmp_path / "strict", on_missing="error")
    assert not (tmp_path / "strict").exists()


def test_bad_input_writes_nothing(tmp_path, figure_files):
    good = ReportSection("Maps", figures=[figure_files])
    with pytest.raises(InputError, match="DataFrame"):
        build_report([good, ReportSection("Bad", tables=[[1, 2, 3]])], tmp_path / "report")
    with pytest.raises(InputError, match="on_missing must be one of"):
        build_report([good], tmp_path / "report", on_missing="skip")
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        build_report([ReportSection("PDF", figures=[tmp_path / "figure.pdf"])], tmp_path / "report")
    with pytest.raises(InputError, match="status of section"):
        build_report([ReportSection("Odd", status="done")], tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_long_table_is_truncated_in_html_but_complete_in_csv(tmp_path):
    table = pd.DataFrame({"value": np.arange(100) / 7.0}, index=[f"gene{i}" for i in range(100)])
    section = ReportSection("Genes", tables=[ReportTable(table, caption="All genes", max_rows=10)])
    page = build_report([section], tmp_path / "report").read_text(encoding="utf-8")
    assert "Showing 10 of 100 rows" in page
    assert "gene9<" in page and "gene10<" not in page
    assert len(pd.read_csv(tmp_path / "report/tables/genes-1.csv")) == 100


def test_duplicate_titles_get_distinct_anchors(tmp_path):
    sections = [ReportSection.not_run("Maps", "a"), ReportSection.not_run("Maps", "b")]
    page = build_report(sections, tmp_path / "report").read_text(encoding="utf-8")
    assert re.search(r'id="maps"', page) and re.search(r'id="maps-2"', page)
