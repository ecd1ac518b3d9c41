"""CSV downloads of the dashboard's tables, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi.responses import Response

# A cell a spreadsheet would run as a formula starts with one of these.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NAME = re.compile(r"[^a-z0-9_.-]+")


def cell(value: Any) -> str:
    """A value as CSV text; text that a spreadsheet would take for a formula is quoted with a
    leading apostrophe (numbers, negative ones included, are left as they are)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(round(value, 6)) if isinstance(value, float) else str(value)
    if isinstance(value, list | tuple):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return out.getvalue()


def csv_response(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], filename: str
) -> Response:
    safe = _NAME.sub("-", filename.lower()).strip("-") or "export"
    return Response(
        csv_text(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}.csv"'},
    )
