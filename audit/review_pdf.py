"""The human-readable page of a review's evidence: the manifest's facts and the reviewed items
as a PDF (reportlab, server-side, no fonts or images fetched).

`invariant=1` makes reportlab leave out the creation time and random document id, so the same
review renders to the same bytes, as the rest of the evidence does.
"""

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

_STYLES = getSampleStyleSheet()
_CELL = _STYLES["BodyText"].clone("cell", fontSize=7.5, leading=9)
_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
    ]
)


# Page width between the margins; a cell is cut to CELL_LIMIT characters so that no row grows
# taller than a page (reportlab cannot split a cell): the CSV beside it has every character.
WIDTH = landscape(A4)[0] - 24 * mm
CELL_LIMIT = 300


def _cell(value: object, limit: int | None = CELL_LIMIT) -> Paragraph:
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"... ({len(text)} characters: see the CSV)"
    return Paragraph(escape(text), _CELL)


def _facts(manifest: dict[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    """The manifest flattened to (dotted key, value) lines, in its (sorted) key order."""
    lines: list[tuple[str, object]] = []
    for key in sorted(manifest):
        value = manifest[key]
        if isinstance(value, dict):
            lines.extend(_facts(value, f"{prefix}{key}."))
        else:
            lines.append((f"{prefix}{key}", value))
    return lines


def review_pdf(
    *,
    title: str,
    manifest: dict[str, Any],
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
) -> bytes:
    """One document: the title, the manifest's facts, then one table line per reviewed item."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        creator="Tollgate",
        invariant=1,
    )
    facts = Table(
        [[_cell(key), _cell(value, limit=None)] for key, value in _facts(manifest)],
        colWidths=[70 * mm, WIDTH - 70 * mm],
        style=_GRID,
    )
    items = Table(
        [[_cell(column) for column in columns], *([_cell(v) for v in row] for row in rows)],
        colWidths=[WIDTH / len(columns)] * len(columns),
        repeatRows=1,
        style=_GRID,
    )
    document.build(
        [
            Paragraph(escape(title), _STYLES["Title"]),
            facts,
            Spacer(1, 6 * mm),
            items,
        ]
    )
    return buffer.getvalue()
