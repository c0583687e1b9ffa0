"""A small document model written two ways: Markdown, and one self-contained HTML
file (styles inline, figures embedded as data URIs).

A document is a list of blocks: :class:`Heading`, :class:`Paragraph`,
:class:`Bullets`, :class:`Table`, :class:`Figure`. Text may carry two inline marks,
written as in Markdown: ``**strong**`` and ```code```; everything else is literal
(escaped for each output, so a ``*`` or ``<`` in a network's name stays itself)."""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table; a float cell prints with 3 significant digits (infinity as
    ``never``), any other cell as its text (marks allowed)."""

    headers: tuple[str, ...]
    rows: tuple[tuple, ...]
    align_right: tuple[bool, ...] = ()
    """Per column, whether it is right-aligned (numbers); default: left."""


@dataclass(frozen=True)
class Figure:
    """An image file (PNG or SVG) and its caption; Markdown links it (relative to the
    document's folder), HTML embeds it."""

    path: Path
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure

_MARK = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`")


def _spans(text: str) -> list[tuple[str, str]]:
    """``text`` as (kind, text) spans: ``plain``, ``strong`` or ``code``."""
    out, at = [], 0
    for m in _MARK.finditer(text):
        if m.start() > at:
            out.append(("plain", text[at : m.start()]))
        out.append(("strong", m.group(1)) if m.group(1) is not None else ("code", m.group(2)))
        at = m.end()
    if at < len(text):
        out.append(("plain", text[at:]))
    return out


def cell_text(x) -> str:
    """A table cell as text: floats with 3 significant digits, infinity ``never``,
    NaN ``-``."""
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return "never" if math.isinf(x) else f"{x:.3g}"
    return str(x)


# --- Markdown ------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"[\\*|\[\]`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|<(?=[A-Za-z/!?])")
"""Characters Markdown would read as markup: emphasis, table and link marks, an
underscore at a word's edge (inside a word it is literal), ``<`` opening a tag."""


def _md_inline(text: str) -> str:
    parts = []
    for kind, s in _spans(text):
        if kind == "code":
            parts.append(f"`{s}`")
        else:
            s = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)
            parts.append(f"**{s}**" if kind == "strong" else s)
    return "".join(parts)


def to_markdown(blocks: Sequence[Block], folder: Path) -> str:
    """The document as Markdown; figures link their files relative to ``folder``."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _md_inline(b.text))
        elif isinstance(b, Paragraph):
            out.append(_md_inline(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join("- " + _md_inline(i) for i in b.items))
        elif isinstance(b, Table):
            right = b.align_right or (False,) * len(b.headers)
            lines = ["| " + " | ".join(_md_inline(h) for h in b.headers) + " |"]
            lines.append("|" + "".join("---:|" if r else "---|" for r in right))
            lines += [
                "| " + " | ".join(_md_inline(cell_text(c)) for c in row) + " |" for row in b.rows
            ]
            out.append("\n".join(lines))
        elif isinstance(b, Figure):
            rel = Path(b.path).relative_to(folder).as_posix()
            out.append(f"![{_md_inline(b.caption)}]({rel})")
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"not a document block: {b!r}")
    return "\n\n".join(out) + "\n"


# --- HTML ----------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:72rem;
margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1d1d1f}
h1{font-size:1.7rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;vertical-align:top}
th{background:#f3f3f3}td.r{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}code{background:#f3f3f3;padding:0 .2rem}
""".strip()

RIGHT_TD = '<td class="r">'
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}


def _html_inline(text: str) -> str:
    parts = []
    for kind, s in _spans(text):
        s = html.escape(s)
        parts.append(
            {"plain": s, "strong": f"<strong>{s}</strong>", "code": f"<code>{s}</code>"}[kind]
        )
    return "".join(parts)


def data_uri(path: Path) -> str:
    """A PNG or SVG file as a ``data:`` URI."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: a figure must be .png or .svg")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The document as one HTML file that needs nothing else: figures embedded."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_html_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{_html_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            items = "".join(f"<li>{_html_inline(i)}</li>" for i in b.items)
            out.append(f"<ul>{items}</ul>")
        elif isinstance(b, Table):
            right = b.align_right or (False,) * len(b.headers)
            head = "".join(f"<th>{_html_inline(h)}</th>" for h in b.headers)
            body = []
            for row in b.rows:
                cells = "".join(
                    (RIGHT_TD if r else "<td>") + _html_inline(cell_text(c)) + "</td>"
                    for c, r in zip(row, right, strict=True)
                )
                body.append(f"<tr>{cells}</tr>")
            out.append(
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            )
        elif isinstance(b, Figure):
            alt = html.escape(b.caption, quote=True)
            out.append(
                f'<figure><img src="{data_uri(b.path)}" alt="{alt}">'
                f"<figcaption>{_html_inline(b.caption)}</figcaption></figure>"
            )
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"not a document block: {b!r}")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
