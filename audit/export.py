"""CSV export of the trail: streamed by sequence, closed by a SHA-256 manifest line.

The manifest is the last line: `#manifest,rows=<n>,sha256=<hex>`, where the digest covers
every byte before that line. Cells of free text that start like a spreadsheet formula get a
leading apostrophe (OWASP CSV injection): a rejected webhook's user agent is attacker text.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from audit import chain
from audit.selectors import rows_by_sequence

COLUMNS = (
    "sequence",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "outcome",
    "stripe_event_id",
    "request_id",
    "ip",
    "user_agent",
    "reason",
    "meta",
    "prev_hash",
    "hash",
)
_OCCURRED_AT = COLUMNS.index("occurred_at")
_META = COLUMNS.index("meta")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """Text of a cell, with a leading apostrophe when it would start a spreadsheet formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def csv_lines(queryset: QuerySet[Any], *, up_to: int) -> Iterator[str]:
    """Header, one line per row with sequence <= up_to, then the manifest line."""
    digest = hashlib.sha256()
    rows = 0
    header = csv_line(COLUMNS)
    digest.update(header.encode())
    yield header
    for row in rows_by_sequence(queryset, columns=COLUMNS, up_to=up_to):
        values = list(row)
        values[_OCCURRED_AT] = chain.format_time(values[_OCCURRED_AT])
        values[_META] = json.dumps(values[_META], sort_keys=True, separators=(",", ":"))
        line = csv_line([csv_cell(value) for value in values])
        digest.update(line.encode())
        rows += 1
        yield line
    yield f"#manifest,rows={rows},sha256={digest.hexdigest()}\n"
