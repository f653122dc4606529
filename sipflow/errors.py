"""The error tree of sipflow.

The library raises only these; ``sipflow.cli`` turns them into one-line messages and exit codes.
A problem inside a readable capture (a bad packet, a malformed SIP message) is *not* an
exception: it is recorded as data (a warning or a malformed item) and the run goes on.
"""

from __future__ import annotations


class SipflowError(Exception):
    """Base class of every error sipflow raises on purpose."""


class CaptureError(SipflowError):
    """A capture file cannot be read (missing, not a capture, corrupt header...).

    ``file`` names the file, ``offset`` the byte offset where reading failed and ``frame``
    the 1-based frame number being read, where known.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        offset: int | None = None,
        frame: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.offset = offset
        self.frame = frame

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        return ": ".join([", ".join(where), self.reason]) if where else self.reason


class ParseError(SipflowError):
    """Bytes that cannot be parsed as a SIP message (or SDP body).

    ``offset`` is the byte offset inside the message where parsing gave up, where known.
    """

    def __init__(self, reason: str, *, offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class UsageError(SipflowError):
    """The library was asked for something that makes no sense (e.g. an unknown call id)."""


EXIT_PARTIAL = 3
"""The command line's exit code when a command completed on partial input: a file was damaged
(truncated or corrupt) or could not be read, and everything else was analysed and shown."""
