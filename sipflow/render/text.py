"""Making packet text safe to show: everything in a packet is untrusted."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def clean(text: str, limit: int | None = None) -> str:
    """Packet text made safe for a terminal or a document: tabs become spaces; every other
    control character (C0, DEL, C1 — so no ANSI escape can start), and the Unicode bidi
    overrides and line separators, become U+FFFD. ``limit`` cuts the result with an ellipsis."""
    text = _CONTROL.sub("\ufffd", text.replace("\t", " "))
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def clean_lines(raw: bytes) -> list[str]:
    """A raw message as display lines, each cleaned (CRLF or LF line ends)."""
    text = raw.decode("utf-8", errors="replace")
    return [clean(line) for line in text.replace("\r\n", "\n").split("\n")]


def csv_cell(text: str) -> str:
    """A cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = clean(text)
    if text.lstrip(" ").startswith(_CSV_FORMULA):
        return "'" + text
    return text


def clock(ts: float) -> str:
    """``HH:MM:SS.mmm`` in UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def iso(ts: float) -> str:
    """ISO 8601 with milliseconds, UTC (``2024-05-01T10:00:00.123Z``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"
