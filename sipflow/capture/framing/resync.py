"""Framers of messages back to back that resynchronise after a hole: SIP and HEP3 (sans-I/O).

* :class:`SipFramer`, RFC 3261 §18.3: a message's header ends at the first empty line
  (CRLFCRLF), its body is ``Content-Length`` octets long (§20.14; compact form ``l``, §7.3.3,
  any case; absent means 0). CRLFs between messages are keep-alives (RFC 5626 §3.5.1, RFC 3261
  §7.5) and are skipped. A stream that does not start with a SIP start line (§7.1, §7.2) is
  searched for the next line that is one (:func:`detect.find_sip_start`), each octet searched
  O(1) times however the stream is cut into segments; HEP3 headers found while searching hand
  the stream to :class:`HepFramer`.
* :class:`HepFramer`: HEP3 messages back to back, each framed by its 16-bit total length and
  decoded like HEP over UDP (inner addresses and time); resynchronises on the next plausible
  HEP3 header.

Both share :class:`_Resynchronising`: after a hole, the message in progress is handed up
truncated and the stream hunted for the next message's start. Memory is bounded per stream by
``max_message``; an oversized message is handed up truncated (SIP) or skipped (HEP3).
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

from sipflow.capture import detect, hep
from sipflow.capture.framing.base import Framer, FramerContext, Segment, StreamBytes, span
from sipflow.capture.types import SipPayload, Transport

MAX_LINE: Final = 16384
"""Longest start line waited for before a stream is declared out of sync."""

# RFC 3261 §20.14 Content-Length, §7.3.3 compact form "l"; header names are case-insensitive
# (§7.3.1) and the value may follow folded whitespace (LWS, §25.1).
_CONTENT_LENGTH: Final = re.compile(
    rb"\n(?:content-length|l)[ \t]*(?:\r?\n[ \t]+)?:[ \t]*(?:\r?\n[ \t]+)?(\d{1,12})", re.IGNORECASE
)
_CRLF_RUN: Final = re.compile(rb"[\r\n]*")
_SIP_VERSION: Final = b"SIP/2.0"


def content_length(buf: bytes | bytearray, header_end: int) -> int | None:
    """The Content-Length of a message whose header ends at ``header_end`` (the CRLFCRLF).

    ``None`` when the header has none (RFC 3261 §18.3 makes it mandatory on streams; the
    framer then assumes an empty body).
    """
    m = _CONTENT_LENGTH.search(buf, 0, header_end + 2)
    return int(m.group(1)) if m is not None else None


def _status_line_from(buf: bytes | bytearray, start: int) -> int:
    """Offset of the first Status-Line (RFC 3261 §7.2) whose ``SIP/2.0`` is at or after ``start``.

    What :func:`detect.find_sip_start` finds in a buffer without a line feed, where no
    Request-Line can be complete: a ``SIP/2.0`` that starts a Status-Line (its version is no
    token, so :func:`detect.is_sip_start` there tests the Status-Line alone).
    """
    k = buf.find(_SIP_VERSION, max(0, start))
    while k >= 0:
        if detect.is_sip_start(buf, k):
            return k
        k = buf.find(_SIP_VERSION, k + 1)
    return -1


class _Resynchronising(Framer):
    """A framer of messages back to back that, after a hole, hands up the message in progress
    (truncated) and hunts for the next one's start: SIP and HEP3."""

    __slots__ = ("hunting", "skip")

    MESSAGE: ClassVar[str] = "message"
    """What the warning about a hole calls the message in progress."""

    hunting: bool
    """Searching for the next message's start (False: in step with the stream's messages)."""
    skip: int
    """Octets of an oversized message still to be dropped."""

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        if self.skip >= nbytes:
            self.skip -= nbytes  # the hole is inside octets being dropped anyway: still in sync
            return self
        self.skip = 0
        if not self.hunting:
            self.ctx.warn_stream(
                b,
                f"{nbytes} octets missing from the capture; the {self.MESSAGE} in progress is handed "
                "up truncated and the stream resynchronised",
                b.last_frame,
            )
        self.end(b, out)
        self.hunting = True
        return self


class SipFramer(_Resynchronising):
    """SIP messages on a stream, framed by their Content-Length (RFC 3261 §18.3)."""

    __slots__ = ("need", "scan", "sep")

    def __init__(self, ctx: FramerContext) -> None:
        super().__init__(ctx, detect.OTHER_TCP)
        self.hunting = True
        """Searching for a SIP start line (False: in step with the stream's messages)."""
        self.need = 0
        """Total length of the message at the front of the buffer once its header is complete."""
        self.scan = 0
        """Where to resume a search: for the end of the header, or, hunting, the octets already
        searched in vain for a SIP start line (they hold no line feed)."""
        self.sep = 0
        """Length of the empty line ending the header at the front of the buffer (4: CRLFCRLF,
        2: LFLF) once its start line has been checked; 0 before."""
        self.skip = 0
        """Body octets of an oversized message still to be dropped."""

    def _consume(self, b: StreamBytes, n: int, kind: str | None) -> list[Segment]:
        self.need = self.scan = self.sep = 0  # positions in the buffer, whose front moves
        return b.consume(n, kind)

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        buf = b.data
        max_message = self.ctx.max_message
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                self._consume(b, n, None)
                continue
            if self.hunting:
                skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
                if skip:
                    self._consume(b, skip, detect.SIP_KEEPALIVE)
                    continue
                # Octets searched in vain before hold no line feed (the search kept only the
                # unfinished last line): unless a line ends in the new ones, only a Status-Line
                # can have been completed, and only by them. Each octet is searched O(1) times.
                searched = self.scan
                last_nl = buf.rfind(b"\n", searched)
                if searched and last_nl < 0:
                    i = _status_line_from(buf, searched - 11)  # 11: "SIP/2.0 NNN" may straddle
                else:
                    i = detect.find_sip_start(buf)
                if i and hep.hep3_before(buf, i):
                    # HEP3 messages picked up mid-stream: the SIP inside them is read through
                    # their headers, never found by the SIP search.
                    return HepFramer(self.ctx, hunting=True)
                if i < 0:
                    # Keep the last, unfinished line: it may be the start of a start line.
                    keep_from = max(last_nl + 1, len(buf) - MAX_LINE)
                    if keep_from > 0:
                        self._consume(b, keep_from, self.kind)
                    if buf and not detect.TOKEN_START[buf[0]]:
                        self._consume(b, len(buf), self.kind)
                    self.scan = len(buf)
                    return self
                if i:
                    self._consume(b, i, self.kind)
                self.hunting = False
                self.scan = self.sep = 0
            if self.need:
                if len(buf) < self.need:
                    return self
                self._emit(b, self.need, out)
                continue
            # RFC 5626 §3.5.1 keep-alives and RFC 3261 §7.5 leading CRLFs.
            skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
            if skip:
                self._consume(b, skip, detect.SIP_KEEPALIVE)
                continue
            if not self.sep:
                # The start line, checked once per message; ``scan``: no line feed before it.
                eol = buf.find(b"\n", self.scan, MAX_LINE)
                if eol < 0:
                    if len(buf) >= MAX_LINE or not detect.TOKEN_START[buf[0]]:
                        self._resync(b, "no SIP start line")
                        continue
                    self.scan = len(buf)
                    return self
                if not detect.is_sip_start(buf, 0, eol + 1):
                    self._resync(b, "data that is not a SIP start line")
                    continue
                # The header ends at the first empty line; a sender that ends its start line with
                # a bare LF (not RFC 3261, seen in the wild) is expected to end the header with LFLF.
                self.sep = 4 if eol and buf[eol - 1] == 13 else 2
                self.scan = max(0, eol - 1)
            sep = self.sep
            end = buf.find(b"\r\n\r\n" if sep == 4 else b"\n\n", self.scan)
            if end < 0:
                if len(buf) > max_message:
                    self._oversize(b, out, f"SIP header longer than {max_message} octets")
                    continue
                self.scan = max(0, len(buf) - 3)
                return self
            clen = content_length(buf, end) or 0
            total = end + sep + clen
            if total > max_message and len(buf) < total:
                # Too big to wait for: hand up what is here, drop the rest of the body as it
                # arrives; the next message starts right after it.
                self.skip = total - len(buf)
                self._oversize(b, out, f"SIP message of {total} octets exceeds {max_message}")
                self.hunting = False
                continue
            if len(buf) < total:
                self.need = total
                return self
            self._emit(b, total, out)
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        buf = b.data
        if not buf:
            return
        if not self.hunting:
            skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
            if skip:
                self._consume(b, skip, detect.SIP_KEEPALIVE)
            if buf and (detect.is_sip_start(buf, 0) or detect.is_partial_sip_start(buf, 0)):
                self._emit(b, len(buf), out, truncated=True)
                return
        else:
            i = detect.find_sip_start(buf)
            if i >= 0:
                self._consume(b, i, self.kind)
                self._emit(b, len(buf), out, truncated=True)
                return
        if buf:
            self._consume(b, len(buf), self.kind)

    def _resync(self, b: StreamBytes, why: str) -> None:
        if not b.warned:
            b.warned = True
            self.ctx.warn_stream(b, f"{why}; resynchronising on the next SIP start line", b.first_frame)
        self.hunting = True
        self.scan = self.sep = 0  # the search starts after offset 0, which is known not to be a start

    def _oversize(self, b: StreamBytes, out: list[SipPayload], why: str) -> None:
        self.ctx.warn_stream(b, f"{why}; handed up truncated", b.last_frame)
        self._emit(b, len(b.data), out, truncated=True)
        self.hunting = True

    def _emit(self, b: StreamBytes, n: int, out: list[SipPayload], *, truncated: bool = False) -> None:
        payload = bytes(b.data[:n])
        self.need = self.scan = self.sep = 0  # as _consume (inlined: once per message)
        touched = b.consume(n, None)
        if touched:
            out.append(self.ctx.packet(b, touched, Transport.TCP, payload, truncated))


class HepFramer(_Resynchronising):
    """HEP3 messages back to back, each framed by its 16-bit total length (HEP3 spec)."""

    __slots__ = ()

    MESSAGE = "HEP3 message"

    def __init__(self, ctx: FramerContext, *, hunting: bool = False) -> None:
        super().__init__(ctx, detect.HEP)
        self.hunting = hunting
        """Searching for the next HEP3 header (after junk, a hole, or a mid-stream pickup)."""
        self.skip = 0
        """Octets of an oversized message still to be dropped."""

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        """Cut HEP3 messages by their total length; each one that carries SIP is one packet."""
        buf = b.data
        max_message = self.ctx.max_message
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                b.consume(n, detect.HEP)
                continue
            if self.hunting and not self._hunt(b):
                return self
            total = hep.v3_length(buf)
            if total == 0 and hep.HEP3_MAGIC.startswith(buf[:4]):
                return self  # the header is still arriving
            if total <= 0:
                if buf.startswith(hep.HEP3_MAGIC):  # 6 octets or more are there
                    self._resync(b, f"a HEP3 header with an impossible length ({buf[4] << 8 | buf[5]})")
                else:
                    self._resync(b, "data that is not a HEP3 header")
                continue
            if total > max_message:
                self.ctx.warn_stream(
                    b, f"HEP3 message of {total} octets exceeds {max_message}; skipped", b.first_frame
                )
                self.skip = total
                continue
            if len(buf) < total:
                return self
            if not hep.v3_well_formed(buf, 0, total):
                self._resync(b, f"a HEP3 header whose length ({total}) does not fit its chunks")
                continue
            h = hep.decode(buf, 0, total)
            if h is None or hep.sip_transport(h) is None:
                b.consume(total, detect.HEP)  # RTCP reports, logs, ... (as over UDP)
                continue
            self._emit(b, h, total, out)
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        """Hand up the SIP a HEP3 message cut short began (truncated); count the rest."""
        buf = b.data
        if not buf:
            return
        if not self.hunting and not self.skip and hep.v3_length(buf) > len(buf):
            h = hep.decode(buf, 0, len(buf), cut=True)
            if h is not None and hep.sip_transport(h, truncated=True) is not None:
                self._emit(b, h, len(buf), out, truncated=True)
        if buf:
            b.consume(len(buf), detect.HEP)

    def _hunt(self, b: StreamBytes) -> bool:
        """Drop octets up to the next plausible HEP3 header; False while none is in the buffer."""
        buf = b.data
        find = buf.find
        i = find(hep.HEP3_MAGIC)
        while i >= 0:
            if len(buf) - i < hep.V3_PLAUSIBLE:
                break  # a candidate still arriving
            if hep.v3_plausible(buf, i):
                if i:
                    b.consume(i, detect.HEP)
                self.hunting = False
                return True
            i = find(hep.HEP3_MAGIC, i + 1)
        keep = len(buf) - i if i >= 0 else 3  # the last octets may begin a magic
        if len(buf) > keep:
            b.consume(len(buf) - keep, detect.HEP)
        return False

    def _resync(self, b: StreamBytes, why: str) -> None:
        if not b.warned:
            b.warned = True
            self.ctx.warn_stream(b, f"{why}; resynchronising on the next HEP3 header", b.first_frame)
        b.consume(1, detect.HEP)  # the search starts after the octet known not to begin one
        self.hunting = True

    def _emit(
        self, b: StreamBytes, h: hep.HepPacket, n: int, out: list[SipPayload], *, truncated: bool = False
    ) -> None:
        touched = b.consume(n, None)
        if not touched:
            return
        last, frames = span(touched)
        p = hep.to_packet(
            h,
            frame=last.frame,
            frames=frames,
            timestamp=last.timestamp,
            file=self.ctx.file,
            truncated=truncated,
        )
        if p is not None:
            out.append(p)
