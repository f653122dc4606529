"""The lines the commands write around their output: the summary line under a listing, the
malformed messages, the warnings of a run, and what to say when nothing was selected.

Plain strings (no rich, no click): the command line prints them on stdout or stderr, prefixed
``sipflow: `` where they are diagnostics. Text from packets or file names is cleaned here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sipflow.model.analysis import Analysis
from sipflow.model.call import Call
from sipflow.render.summary import kinds_summary
from sipflow.render.text import clean

MAX_WARNINGS_SHOWN = 20
"""Warnings of a run shown one by one; the rest are counted in one more line."""


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 packet``, ``2 packets``; ``words`` for an irregular plural (``copies``)."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def partial_reasons(analysis: Analysis) -> str:
    """Why a result is partial: a file not read to its end, Call-IDs beyond the limit."""
    s = analysis.summary
    reasons = []
    if s.incomplete_files or not s.untracked:
        reasons.append("a file could not be read to its end")
    if s.untracked:
        reasons.append(f"{plural(s.untracked, 'SIP message')} beyond the Call-ID limit left out")
    return "; ".join(reasons)


def summary_line(analysis: Analysis, shown: int) -> str:
    """One line of counts under a listing."""
    s = analysis.summary
    parts = [
        f"{plural(s.packets, 'packet')} read",
        f"{plural(s.sip_messages, 'SIP message')}",
        f"{plural(s.calls, 'call')} and {s.items - s.calls} other Call-IDs, {shown} shown",
    ]
    if s.retransmissions:
        parts.append(plural(s.retransmissions, "retransmission"))
    if s.duplicates:
        points = len(s.capture_points)
        where = f"{s.duplicates - s.doubled} from {points} capture points" if s.duplicates > s.doubled else ""
        doubled = f"{s.doubled} captured twice at one point" if s.doubled else ""
        detail = ", ".join(p for p in (where, doubled) if p)
        parts.append(f"{plural(s.duplicates, 'copy', 'copies')} merged ({detail})")
    if s.skew:
        skews = (f"{clean(f)} {v:+.6f}".rstrip("0").rstrip(".") + " s" for f, v in s.skew.items())
        parts.append("clock skew " + ", ".join(skews))
    parts.append(f"{s.malformed} malformed")
    if s.non_sip_packets:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.non_sip.items(), key=lambda kv: (-kv[1], kv[0])))
        parts.append(f"{s.non_sip_packets} non-SIP ({kinds})")
    if s.unsupported:
        parts.append("not decoded: " + ", ".join(f"{k} {v}" for k, v in sorted(s.unsupported.items())))
    if s.partial:
        parts.append(f"PARTIAL: {partial_reasons(analysis)}")
    return "; ".join(parts)


def malformed_lines(analysis: Analysis) -> list[str]:
    """One line per malformed message: file, frame, addresses and why."""
    return [
        f"malformed: {clean(m.file)} frame {m.frame} {m.src} -> {m.dst}: {clean(m.reason, 200)}"
        + (" (truncated)" if m.truncated else "")
        for m in analysis.malformed
    ]


def warning_lines(analysis: Analysis) -> list[str]:
    """The run's warnings (at most ``MAX_WARNINGS_SHOWN``, then a count of the others) and,
    for a partial result, why it is partial (always said, even when the warning naming the
    damage is among those left out); each to follow ``sipflow: warning: ``."""
    warnings = analysis.warnings
    lines = [clean(str(warning)) for warning in warnings[:MAX_WARNINGS_SHOWN]]
    if len(warnings) > MAX_WARNINGS_SHOWN:
        lines.append(f"… and {len(warnings) - MAX_WARNINGS_SHOWN} more")
    if analysis.summary.partial:
        lines.append(f"partial result: {partial_reasons(analysis)}")
    return lines


def no_call_line(analysis: Analysis, others: Sequence[Call], *, filtered: bool) -> str:
    """What to say when no call was selected (to follow ``sipflow: ``): the summary, or the
    ``others`` (items of other kinds) that ``--all`` would show; ``filtered``: the selection
    named a From, To or state."""
    if not others:
        return f"no call matches ({summary_line(analysis, 0)})"
    n = len(others)
    what = plural(n, "other Call-ID")
    said = f"no call matches; {what} {'does' if n == 1 else 'do'}" if filtered else f"no call; {what}"
    return f"{said} ({kinds_summary(others)}): add --all"
