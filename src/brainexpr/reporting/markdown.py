"""A small Markdown-to-HTML converter for the summaries the workflows write.

It handles what those summaries use: ``#`` headings, paragraphs, ``-`` bullet lists,
pipe tables, ``**bold**`` and ``code``. Everything is HTML-escaped first.
"""

from __future__ import annotations

import html
import re


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
    return text


def _table(lines: list[str]) -> str:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if not rows:
        return ""
    head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                   for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_to_html(text: str, heading_offset: int = 2) -> str:
    """Convert simple Markdown to HTML.

    Parameters
    ----------
    text : str
    heading_offset : int
        Added to heading levels (``#`` becomes ``<h3>`` with the default), so that a
        summary sits under its report section.
    """
    out, paragraph, items, table = [], [], [], []

    def flush():
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            out.append(_table(table))
            table.clear()

    for raw in text.splitlines():
        line = raw.rstrip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + heading_offset)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.lstrip().startswith("|"):
            if paragraph or items:
                flush()
            table.append(line)
        elif re.match(r"^\s*[-*]\s+", line):
            if paragraph or table:
                flush()
            items.append(re.sub(r"^\s*[-*]\s+", "", line))
        elif not line.strip():
            flush()
        elif items and raw.startswith("  "):
            items[-1] += " " + line.strip()
        else:
            if items or table:
                flush()
            paragraph.append(line.strip())
    flush()
    return "\n".join(out)
