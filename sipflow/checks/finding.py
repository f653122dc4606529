"""What a check found: data, never an exception (STYLE.md habit 7)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    """Fails ``sipflow check`` (exit 1)."""
    WARNING = "warning"
    """Reported; fails only with ``--strict``."""
    INFO = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem in a trace, tied to a call and to frames a user can open in Wireshark."""

    rule: str
    """Stable id of the rule or expectation (``invite-no-final``, ``expect:alice calls bob``)."""
    severity: Severity
    message: str
    """One line naming the call, the message and its frame numbers."""
    explanation: str
    """One or two sentences: what it means and its usual causes."""
    call_index: int | None = None
    call_id: str | None = None
    frames: tuple[tuple[str, int], ...] = ()
    """(file, frame) of the messages concerned."""
    cause: str | None = None
    """The Reason header decoded (Q.850 or SIP cause), where the message carried one."""
