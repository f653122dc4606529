"""``sipflow stats`` output: the statistics as table lines (plain text) and as a JSON document.

Plain ``str`` lines, no rich: the CLI prints them (and may style them). Reason phrases are packet
text and are cleaned (``sipflow.render.text.clean``); methods are SIP tokens, cleaned all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sipflow.media_stats import MediaStats, Spread
from sipflow.model.call import CallKind
from sipflow.render.summary import kind_count
from sipflow.render.text import clean
from sipflow.stats import Distribution, Stats

REASON_WIDTH = 32
"""Reason phrases are cut to this many characters in the table."""

_RFC6076_ROWS: tuple[tuple[str, str, str], ...] = (
    # key, abbreviation, name
    ("rrd_ms", "RRD", "Registration Request Delay"),
    ("srd_ms", "SRD", "Session Request Delay"),
    ("srd_failed_ms", "SRD", "Session Request Delay, failed setups"),
    ("sdd_ms", "SDD", "Session Disconnect Delay"),
    ("sdt_s", "SDT", "Session Duration Time"),
    ("ser", "SER", "Session Establishment Ratio"),
    ("seer", "SEER", "Session Establishment Effectiveness Ratio"),
    ("isa", "ISA", "Ineffective Session Attempts"),
    ("scr", "SCR", "Session Completion Ratio"),
    ("asr", "ASR", "Answer-Seizure Ratio"),
    ("ner", "NER", "Network Effectiveness Ratio"),
)
_DELAY_OF = {"rrd_ms": "rrd", "srd_ms": "srd", "srd_failed_ms": "srd_failed", "sdd_ms": "sdd", "sdt_s": "sdt"}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 1000:
        return f"{value:.1f}"
    return f"{value:.0f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Columns two spaces apart, each right-aligned where ``right`` says so; the header first."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]
        out.append("  ".join(cells).rstrip())
    return out


def _ratio_counts(stats: Stats, key: str) -> str:
    s = stats.sessions
    attempts, not_redirected = s.get("attempts", 0), s.get("attempts", 0) - s.get("redirected", 0)
    numerator, denominator = {
        "ser": (s.get("answered", 0), not_redirected),
        "seer": (s.get("effective", 0), not_redirected),
        "isa": (s.get("ineffective", 0), attempts),
        "scr": (s.get("completed", 0), attempts),
        "asr": (s.get("answered", 0), attempts),
        "ner": (s.get("network_effective", 0), attempts),
    }[key]
    return f"{numerator} of {denominator}"


def _rfc6076_rows(stats: Stats) -> list[list[str]]:
    rows = []
    for key, abbr, name in _RFC6076_ROWS:
        value = stats.rfc6076.get(key)
        if key in _DELAY_OF:
            dist = stats.delays.get(_DELAY_OF[key])
            count = dist.count if dist is not None else 0
            unit = "s" if key.endswith("_s") else "ms"
            shown = "-" if value is None else f"{_number(value)} {unit}"
            rows.append([f"{abbr:<4}  {name}", shown, f"n={count}"])
        else:
            shown = "-" if value is None else f"{value * 100:.1f} %"
            rows.append([f"{abbr:<4}  {name}", shown, _ratio_counts(stats, key)])
    return rows


def _dist_cells(dist: Distribution) -> list[str]:
    values = (dist.min_ms, dist.p50_ms, dist.p90_ms, dist.p99_ms, dist.max_ms, dist.mean_ms)
    return [str(dist.count), *(_number(v) for v in values)]


def stats_lines(stats: Stats) -> list[str]:
    """The statistics as plain-text lines: counts like ``tshark -z sip,stat``, retransmissions
    and response times per method, then the RFC 6076 metrics with ASR and NER."""
    lines = [f"SIP messages: {stats.messages} ({stats.resent} retransmitted)", ""]

    methods = list(stats.requests)
    for key in stats.retransmissions:
        method = key.removeprefix("response to ")
        if method not in methods:
            methods.append(method)
    rows = [
        [
            clean(method, 24),
            str(stats.requests.get(method, 0)),
            str(stats.retransmissions.get(method, 0)),
            str(stats.retransmissions.get(f"response to {method}", 0)),
        ]
        for method in methods
    ]
    lines += _table(["Method", "Requests", "Retr.", "Resp. retr."], rows, [False, True, True, True])
    lines.append("")

    rows = [
        [f"{code} {clean(stats.reasons.get(code, ''), REASON_WIDTH)}".rstrip(), str(count)]
        for code, count in stats.responses.items()
    ]
    lines += _table(["Status", "Responses"], rows, [False, True])
    lines.append("")

    rows = []
    for method in sorted(set(stats.first_response) | set(stats.final_response)):
        for which, table in (("first", stats.first_response), ("final", stats.final_response)):
            dist = table.get(method)
            if dist is not None:
                rows.append([f"{clean(method, 24)} {which}", *_dist_cells(dist)])
    header = ["Response time (ms)", "Count", "Min", "p50", "p90", "p99", "Max", "Mean"]
    lines += _table(header, rows, [False] + [True] * 7)
    lines.append("")

    lines += _table(
        ["Metric (RFC 6076; ASR, NER)", "Value", "Basis"], _rfc6076_rows(stats), [False, True, True]
    )
    s = stats.sessions
    attempts, registrations = (
        _plural(s.get("attempts", 0), "attempt"),
        _plural(s.get("registrations", 0), "attempt"),
    )
    lines.append(
        f"Sessions: {attempts} with an outcome, {s.get('pending', 0)} pending; "
        f"registrations: {registrations}, {s.get('registered', 0)} successful"
    )
    if stats.items:
        kinds = (
            kind_count(CallKind(kind), sum(states.values()))
            + " ("
            + ", ".join(f"{n} {state}" for state, n in states.items())
            + ")"
            for kind, states in stats.items.items()
        )
        lines.append("Items: " + "; ".join(kinds))
    return lines


_SATISFACTION_ROWS: Mapping[str, str] = {
    "very_satisfied": "4.34-4.50  very satisfied (R 90-100)",
    "satisfied": "4.03-4.34  satisfied (R 80-90)",
    "some_dissatisfied": "3.60-4.03  some users dissatisfied (R 70-80)",
    "many_dissatisfied": "3.10-3.60  many users dissatisfied (R 60-70)",
    "nearly_all_dissatisfied": "2.58-3.10  nearly all users dissatisfied (R 50-60)",
    "not_recommended": "1.00-2.58  not recommended (R 0-50)",
}
"""The rows of the MOS table: G.107 Annex B's bands (``sipflow.media_stats.SATISFACTION``)."""


def _spread_cells(spread: Spread) -> list[str]:
    values = (spread.min, spread.p50, spread.p90, spread.p99, spread.max, spread.mean)
    return [str(spread.count), *(_number(v) for v in values)]


def media_stats_lines(media: MediaStats) -> list[str]:
    """The media totals as plain-text lines: streams, packets and loss, the answered calls by
    the direction of their RTP, the spread of loss, jitter and MOS over the streams, the MOS
    bands and the codecs."""
    loss = "-" if media.lost_pct is None else f"{media.lost_pct:.2f} %"
    calls = media.calls
    lines = [
        f"RTP streams: {media.streams} ({media.linked} linked to calls, "
        f"{media.streams - media.linked} unlinked); {media.packets} packets, {media.lost} lost "
        f"of {media.expected} expected ({loss}); {media.streams_with_loss} with loss",
        f"Answered calls: {calls.get('two-way', 0)} with two-way RTP, {calls.get('one-way', 0)} "
        f"one-way, {calls.get('none', 0)} with none",
        "",
    ]
    rows = [
        ["Loss (%)", *_spread_cells(media.loss_pct)],
        ["Max jitter (ms)", *_dist_cells(media.max_jitter)],
        ["Mean jitter (ms)", *_dist_cells(media.mean_jitter)],
        ["MOS (estimated)", *_spread_cells(media.mos)],
    ]
    header = ["Per stream", "Count", "Min", "p50", "p90", "p99", "Max", "Mean"]
    lines += _table(header, rows, [False] + [True] * 7)
    lines.append("")
    rows = [[_SATISFACTION_ROWS[key], str(n)] for key, n in media.satisfaction.items()]
    rows.append(["not rated (codec unknown to the E-model)", str(media.unrated)])
    lines += _table(["MOS (ITU-T G.107 bands)", "Streams"], rows, [False, True])
    if media.codecs:
        lines.append("")
        rows = [[clean(codec, 32), str(n)] for codec, n in media.codecs.items()]
        lines += _table(["Codec", "Streams"], rows, [False, True])
    return lines


def _spread_dict(spread: Spread) -> dict[str, Any]:
    return {
        "count": spread.count,
        "min": spread.min,
        "p50": spread.p50,
        "p90": spread.p90,
        "p99": spread.p99,
        "max": spread.max,
        "mean": spread.mean,
    }


def media_stats_dict(media: MediaStats) -> dict[str, Any]:
    """The media totals as a JSON-ready dict (the document's ``media`` key)."""
    return {
        "streams": media.streams,
        "linked": media.linked,
        "unlinked": media.streams - media.linked,
        "packets": media.packets,
        "expected": media.expected,
        "lost": media.lost,
        "lost_pct": media.lost_pct,
        "streams_with_loss": media.streams_with_loss,
        "loss_pct": _spread_dict(media.loss_pct),
        "max_jitter": _dist_dict(media.max_jitter),
        "mean_jitter": _dist_dict(media.mean_jitter),
        "mos": _spread_dict(media.mos),
        "satisfaction": dict(media.satisfaction),
        "unrated": media.unrated,
        "codecs": {clean(codec, 64): n for codec, n in media.codecs.items()},
        "calls": dict(media.calls),
    }


def _dist_dict(dist: Distribution) -> dict[str, Any]:
    return {
        "count": dist.count,
        "min_ms": dist.min_ms,
        "p50_ms": dist.p50_ms,
        "p90_ms": dist.p90_ms,
        "p99_ms": dist.p99_ms,
        "max_ms": dist.max_ms,
        "mean_ms": dist.mean_ms,
    }


def _dists(table: Mapping[str, Distribution]) -> dict[str, Any]:
    return {key: _dist_dict(dist) for key, dist in table.items()}


def stats_dict(stats: Stats) -> dict[str, Any]:
    """The statistics as a JSON-ready dict (status codes become string keys)."""
    return {
        "messages": stats.messages,
        "resent": stats.resent,
        "requests": dict(stats.requests),
        "responses": {str(code): count for code, count in stats.responses.items()},
        "reasons": {str(code): reason for code, reason in stats.reasons.items()},
        "retransmissions": dict(stats.retransmissions),
        "first_response": _dists(stats.first_response),
        "final_response": _dists(stats.final_response),
        "rfc6076": dict(stats.rfc6076),
        "delays": _dists(stats.delays),
        "sessions": dict(stats.sessions),
        "items": {kind: dict(states) for kind, states in stats.items.items()},
    }
