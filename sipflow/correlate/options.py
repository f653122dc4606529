"""What a caller of ``correlate`` passes in and gets counted: header rules, options, work counters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sipflow.assign import AssignmentStats

DEFAULT_HEADERS = ("X-CID", "X-Call-ID", "X-Orig-Call-ID", "X-Original-Call-ID")


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """A header that carries the other leg's Call-ID; ``pattern``'s group 1 extracts it."""

    name: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> HeaderRule:
        """``NAME`` or ``NAME:REGEX`` (``'X-Info:orig=([^;]+)'``); raises ValueError."""
        name, sep, regex = text.partition(":")
        name = name.strip()
        if not name or not re.fullmatch(r"[!-9;-~]+", name):
            raise ValueError(f"{text!r}: expected a header name, optionally ':REGEX'")
        if not sep:
            return cls(name)
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise ValueError(f"{text!r}: bad regular expression: {exc}") from None
        if pattern.groups < 1:
            raise ValueError(f"{text!r}: the regular expression needs a group for the Call-ID")
        return cls(name, pattern)

    def extract(self, value: str) -> str | None:
        if self.pattern is None:
            return value.strip() or None
        match = self.pattern.search(value)
        return match.group(1).strip() if match and match.group(1) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrelationOptions:
    enabled: bool = True
    headers: tuple[HeaderRule, ...] = tuple(HeaderRule(h) for h in DEFAULT_HEADERS)
    window: float = 2.0
    """Seconds after an INVITE arrives at a host within which an INVITE leaving it may be its
    outbound leg (and, for hunting, after the previous outbound leg ended)."""


@dataclass(slots=True)
class CorrelationStats:
    """The work one ``correlate`` (and ``related_calls``) call did: for tests and measurements."""

    legs: int = 0
    pairs_scored: int = 0
    """B2BUA candidate pairs scored (``_score``), hunting included."""
    candidates: int = 0
    """Pairs that scored at least ``MIN_SCORE``."""
    assignment: AssignmentStats = field(default_factory=AssignmentStats)
    transfer_checks: int = 0
    """INVITEs compared with a REFER's target (``related_calls``)."""
