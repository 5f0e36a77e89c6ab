"""HTML building blocks: escaped text, tables, inlined images and the page shell.

Self-contained: inline CSS, images as data: URIs, no scripts and no external URLs, so
the file opens offline and can be mailed or archived as is.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from plait.atomic import atomic_write_text

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 2px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #666; margin: 0 0 12px; }
nav a { margin-right: 12px; color: #2d5a9e; text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #e1e1e1; padding: 3px 8px; text-align: left; }
th { background: #f5f6f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0 14px; }
.note { color: #555; background: #f6f6f6; border-left: 4px solid #bbb; padding: 6px 10px; }
.warn { background: #fff6e0; border-left: 4px solid #e0a000; padding: 6px 10px; margin: 6px 0; }
.error { background: #fdecea; border-left: 4px solid #c0392b; padding: 6px 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { border: 1px solid #e1e1e1; border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.card b { display: block; font-size: 18px; }
.card span { color: #666; font-size: 12px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
"""


def text(value: Any) -> str:
    return escape(str(value))


def fmt(value: Any) -> str:
    """Numbers to four significant digits; None and NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return text(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A table of records; columns default to every key in order of appearance."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{text(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{fmt(v)}</td>' if numeric else f"<td>{fmt(v)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(data: bytes, alt: str) -> str:
    """An inlined PNG."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{text(alt)}">'


def cards(values: dict[str, Any]) -> str:
    items = "".join(
        f'<div class="card"><b>{fmt(v)}</b><span>{text(k)}</span></div>' for k, v in values.items()
    )
    return f'<div class="cards">{items}</div>'


def note(message: str, kind: str = "note") -> str:
    """A one-paragraph box; `message` is HTML (escape user text first)."""
    return f'<p class="{kind}">{message}</p>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{text(anchor)}"><h2>{text(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]], alerts: str = "") -> str:
    """The whole document from (anchor, title, body HTML) sections, with a contents bar
    and `alerts` (HTML) above the first section."""
    nav = "".join(f'<a href="#{text(a)}">{text(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request
        f"<title>{text(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{text(title)}</h1><p class="sub">{subtitle}</p><nav>{nav}</nav>{alerts}{body}'
        "</body></html>\n"
    )


def write_page(path: Path, html: str) -> Path:
    """Write atomically, so a reader never sees half a page."""
    atomic_write_text(path, html)
    return path
