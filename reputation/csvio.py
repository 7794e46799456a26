"""Block/allow/DNO lists in and out as CSV.

Why line by line: an import is an operator's spreadsheet, and one bad row must not cost the
other ten thousand. Each physical line is parsed on its own (no multi-line quoted fields),
so every problem is reported with its line number and reason, and every good row is kept.

Format (a header row is required; column names are case-insensitive, in any order)::

    number,kind,note,expires
    +15551234567,block,robocaller,2027-01-01T00:00:00Z
    +1555*,block,whole range,
    18005550100,dno,IRS inbound only,

* ``number`` (required): an E.164 number, ``+`` optional, separators allowed, or a prefix
  ending in ``*``;
* ``kind``: ``block`` | ``allow`` | ``dno`` (default: the import's default kind);
* ``note``: free text (at most 500 characters);
* ``expires``: empty (never), an ISO 8601 date or date-time (UTC unless it has an
  offset), or UNIX seconds;
* ``source``, ``created``, ``id``, ``scope`` (written by export) are accepted and ignored.

Export writes the same columns, so an export re-imports unchanged. Notes that a
spreadsheet would run as a formula (``= + - @``) are exported with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .lists import (
    MAX_NOTE_CHARS,
    Invalid,
    ListEntry,
    ListKind,
    ListScope,
    ListSource,
    NewListEntry,
    parse_pattern,
)

COLUMNS = ("number", "kind", "note", "expires")
IGNORED_COLUMNS = ("source", "created", "id", "scope")
MAX_LINE_CHARS = 2000
DEFAULT_MAX_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class CsvRowError:
    line: int
    """1-based physical line number in the file (the header is line 1)."""
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CsvImport:
    entries: tuple[NewListEntry, ...]
    lines: tuple[int, ...]
    """The line each entry came from (same order as ``entries``)."""
    errors: tuple[CsvRowError, ...]

    @property
    def fatal(self) -> bool:
        """True when nothing could be read at all (no usable header)."""
        return not self.entries and any(e.line <= 1 for e in self.errors)


def parse_expiry(text: str) -> float | Invalid | None:
    """Empty → None; ISO 8601 date/date-time (naive = UTC) or UNIX seconds → seconds."""
    s = text.strip()
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(v) or v < 0:
            return Invalid("expires", f"{s!r} is not a time")
        return v
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return Invalid("expires", f"{s!r} is not an ISO 8601 date or date-time")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_expiry(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_list_csv(
    data: bytes | str,
    *,
    scope: ListScope,
    user_id: int | None,
    default_kind: ListKind = ListKind.BLOCK,
    allowed_kinds: Iterable[ListKind] | None = None,
    now: float,
    source: ListSource = ListSource.CSV,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> CsvImport:
    """Read a list CSV into entries for ``scope``/``user_id``; every bad row is an error value.

    ``allowed_kinds`` defaults to block and allow for a user, and all three kinds globally.
    Expiry times in the past (``<= now``) are errors, not silently dead entries.
    """
    allowed = set(
        allowed_kinds
        if allowed_kinds is not None
        else ((ListKind.BLOCK, ListKind.ALLOW) if scope is ListScope.USER else tuple(ListKind))
    )
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    text = text.removeprefix("\ufeff")
    errors: list[CsvRowError] = []
    entries: list[NewListEntry] = []
    lines: list[int] = []
    seen: dict[tuple[ListKind, str, bool], int] = {}
    header: dict[str, int] | None = None
    width = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        problem = _line_problem(line)
        if problem:
            errors.append(CsvRowError(lineno, problem))
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except (csv.Error, StopIteration) as exc:
            errors.append(CsvRowError(lineno, f"malformed CSV ({exc})"))
            continue
        if header is None:
            h = _read_header(fields)
            if isinstance(h, str):
                return CsvImport((), (), (CsvRowError(lineno, h),))
            header, width = h, len(fields)
            continue
        if len(entries) >= max_rows:
            errors.append(CsvRowError(lineno, f"more than {max_rows} rows; the rest was not read"))
            break
        if len(fields) > width:
            errors.append(CsvRowError(lineno, f"{len(fields)} fields, but the header has {width}"))
            continue

        def col(name: str, row: list[str] = fields, hdr: dict[str, int] = header) -> str:
            i = hdr.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        pattern = parse_pattern(col("number").removeprefix("'"))
        if isinstance(pattern, Invalid):
            errors.append(CsvRowError(lineno, str(pattern)))
            continue
        kind_text = col("kind").lower()
        try:
            kind = ListKind(kind_text) if kind_text else default_kind
        except ValueError:
            errors.append(CsvRowError(lineno, f"kind: {kind_text!r} is not block, allow or dno"))
            continue
        if kind not in allowed:
            errors.append(
                CsvRowError(lineno, f"kind: {kind.value} entries cannot be imported here")
            )
            continue
        note = col("note")
        if len(note) > MAX_NOTE_CHARS:
            errors.append(CsvRowError(lineno, f"note: longer than {MAX_NOTE_CHARS} characters"))
            continue
        expires = parse_expiry(col("expires"))
        if isinstance(expires, Invalid):
            errors.append(CsvRowError(lineno, str(expires)))
            continue
        if expires is not None and expires <= now:
            errors.append(CsvRowError(lineno, f"expires: {col('expires')} is already in the past"))
            continue
        key = (kind, pattern.digits, pattern.prefix)
        if key in seen:
            errors.append(
                CsvRowError(lineno, f"duplicate of line {seen[key]} ({kind.value} {pattern})")
            )
            continue
        seen[key] = lineno
        entries.append(NewListEntry(scope, user_id, kind, pattern, _uncell(note), source, expires))
        lines.append(lineno)
    if header is None:
        errors.append(CsvRowError(1, "empty file: expected a header row with a 'number' column"))
    return CsvImport(tuple(entries), tuple(lines), tuple(errors))


def _line_problem(line: str) -> str | None:
    if len(line) > MAX_LINE_CHARS:
        return f"line longer than {MAX_LINE_CHARS} characters"
    if any("\udc80" <= ch <= "\udcff" for ch in line):
        return "not valid UTF-8"
    if "\x00" in line:
        return "contains a NUL byte"
    return None


def _read_header(fields: list[str]) -> dict[str, int] | str:
    names = [f.strip().lower() for f in fields]
    header: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in IGNORED_COLUMNS:
            continue
        if name not in COLUMNS:
            known = ", ".join(COLUMNS + IGNORED_COLUMNS)
            return f"header: unknown column {fields[i].strip()!r} (known: {known})"
        if name in header:
            return f"header: column {name!r} appears twice"
        header[name] = i
    if "number" not in header:
        return "header: a 'number' column is required (first line must name the columns)"
    return header


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def export_list_csv(entries: Iterable[ListEntry]) -> str:
    """The entries as CSV text with the columns :func:`parse_list_csv` reads back."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*COLUMNS, "source", "created"])
    for e in entries:
        w.writerow(
            [
                str(e.pattern),
                e.kind.value,
                _cell(e.note.replace("\r", " ").replace("\n", " ")),
                format_expiry(e.expires),
                e.source.value,
                format_expiry(e.created),
            ]
        )
    return out.getvalue()
