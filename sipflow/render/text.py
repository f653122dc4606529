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


_AGO = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds of a time a user typed: ISO 8601 (``2026-12-05T10:00``, ``2026-12-05
    10:00:00.5``, a date; UTC unless it names a zone, as sipflow prints times), epoch seconds
    (``1796299186.4``), or a span ago (``90s``, ``30m``, ``2h``, ``1d``, ``1w``; ``now``:
    this moment). Raises ValueError for anything else."""
    import time  # noqa: PLC0415

    value = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", value.lower())
    if match is not None:
        return (time.time() if now is None else now) - float(match[1]) * _AGO[match[2]]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(
            f"{clean(text)!r}: expected ISO 8601 (2026-12-05T10:00), epoch seconds, or an age (30m, 2h, 1d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
