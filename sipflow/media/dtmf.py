"""DTMF digits: RFC 4733 telephone events in RTP, and SIP INFO bodies.

:class:`EventTracker` takes the telephone-event packets of one RTP stream (RFC 4733 §2.3: an
event code, an end bit, a volume and a duration, the event's RTP timestamp fixed while the sender
repeats the report with a growing duration, the end packet usually sent three times) and turns
them into digits: memory grows with the events, not with the packets. A new event is recognised
by a new RTP timestamp (§2.5.1.2), not by the marker bit, so a lost first packet still gives the
digit; a lost end packet gives it with the last duration seen. A long event continued in segments
(§2.5.1.3: duration 0xFFFF, then the same event at timestamp + 0xFFFF) stays one digit.

Out of scope: several events in one payload (RFC 2198 redundancy, RFC 4733 §2.5.1.5 and
§2.5.2.3): only the first event report of a payload is read. Event codes above 16 (the DTMF
table of §3.2) are ignored.

:func:`dtmf_from_info` reads the ``application/dtmf-relay`` and ``application/dtmf`` bodies of
SIP INFO requests (RFC 6086 carries them; the formats are the vendors' de facto ones).

Nothing here opens a file: bytes and capture times in, frozen digits out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

EVENT_NAMES: Final[dict[int, str]] = {
    **{code: str(code) for code in range(10)},
    10: "*",
    11: "#",
    12: "A",
    13: "B",
    14: "C",
    15: "D",
    16: "flash",
}
"""RFC 4733 §3.2, Table 7: the DTMF named events, event code → digit text."""

RFC4733: Final = "rfc4733"
INFO: Final = "info"

_SEGMENT: Final = 0xFFFF
"""The largest duration field (RFC 4733 §2.5.1.3): a longer event goes on in a new segment."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigit:
    """One DTMF digit, from RTP telephone events or from a SIP INFO request."""

    digit: str
    """``0``-``9``, ``*``, ``#``, ``A``-``D``, or ``flash`` (RFC 4733 §3.2)."""
    frame: int
    """Frame of the event's first packet seen (of the INFO request)."""
    time: float
    """Capture time of that frame, seconds since the Unix epoch."""
    duration_ms: float | None
    """The event's duration: its last duration field (plus its earlier segments) over the clock
    rate; the ``Duration`` of an INFO body. None: not known."""
    source: str
    """``"rfc4733"`` (RTP telephone events) or ``"info"`` (SIP INFO)."""


def rtp_payload(data: bytes | bytearray, start: int, end: int) -> tuple[int, int] | None:
    """The payload span ``(start, end)`` of the RTP packet ``data[start:end]``, or None if the
    packet is shorter than its header says.

    RFC 3550 §5.1: the fixed header and its CSRC list (12 + 4·CC octets), the header extension
    when X is set (§5.3.1: 4 + 4·length octets), and padding when P is set (its last octet
    counts the padding octets, itself included).
    """
    b0 = data[start]
    offset = start + 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # X
        if offset + 4 > end:
            return None
        offset += 4 + 4 * ((data[offset + 2] << 8) | data[offset + 3])
    if b0 & 0x20 and end > start:  # P
        end -= data[end - 1]
    if offset > end:
        return None
    return offset, end


class EventTracker:
    """The DTMF digits of one RTP stream's telephone events (RFC 4733 §2).

    Feed :meth:`packet` the payload of each telephone-event packet in capture order;
    :meth:`digits` gives the events so far, the one still going on included.
    """

    __slots__ = (
        "_clock_rate",
        "_code",
        "_done",
        "_ended",
        "_frame",
        "_offset",
        "_segment",
        "_segment_ts",
        "_time",
        "_ts",
    )

    def __init__(self) -> None:
        self._done: list[DtmfDigit] = []
        self._code = -1
        """Event code of the current event; -1 before the first."""
        self._ts = 0
        """RTP timestamp of the current event's first segment."""
        self._segment_ts = 0
        """RTP timestamp of the current segment (§2.5.1.3)."""
        self._offset = 0
        """Timestamp units of the current event before its current segment."""
        self._segment = 0
        """Largest duration field seen in the current segment."""
        self._ended = False
        self._frame = 0
        self._time = 0.0
        self._clock_rate = 0

    def packet(
        self,
        frame: int,
        time: float,
        data: bytes | bytearray,
        start: int,
        end: int,
        rtp_timestamp: int,
        clock_rate: int,
    ) -> None:
        """One telephone-event packet: its RTP payload is ``data[start:end]``, its header's
        timestamp ``rtp_timestamp``, its payload type's clock rate ``clock_rate`` (0: unknown)."""
        if end - start < 4:
            return
        code = data[start]
        if code not in EVENT_NAMES:
            return
        ended = bool(data[start + 1] & 0x80)  # E; R and the volume do not matter here
        duration = (data[start + 2] << 8) | data[start + 3]
        if self._code >= 0:
            if rtp_timestamp == self._segment_ts:
                if code == self._code:  # a repeated report of the current segment
                    self._segment = max(self._segment, duration)
                    self._ended = self._ended or ended
                return
            step = (rtp_timestamp - self._segment_ts) & 0xFFFFFFFF
            if step >= 0x80000000:
                return  # a late packet of an earlier event
            if (
                code == self._code
                and not self._ended
                and (step == _SEGMENT or (self._segment == _SEGMENT and step <= 2 * _SEGMENT))
            ):
                # RFC 4733 §2.5.1.3: the next segment of a long event.
                self._offset += step
                self._segment_ts = rtp_timestamp
                self._segment = duration
                self._ended = ended
                return
            self._done.append(self._digit())
        # RFC 4733 §2.5.1.2: a new timestamp starts a new event (its first packet may be lost).
        self._code = code
        self._ts = self._segment_ts = rtp_timestamp
        self._offset = 0
        self._segment = duration
        self._ended = ended
        self._frame = frame
        self._time = time
        self._clock_rate = clock_rate

    def _digit(self) -> DtmfDigit:
        rate = self._clock_rate
        return DtmfDigit(
            digit=EVENT_NAMES[self._code],
            frame=self._frame,
            time=self._time,
            duration_ms=(self._offset + self._segment) * 1000.0 / rate if rate > 0 else None,
            source=RFC4733,
        )

    def digits(self) -> list[DtmfDigit]:
        """The digits so far, in order of their first packet."""
        if self._code < 0:
            return list(self._done)
        return [*self._done, self._digit()]


# --- SIP INFO -------------------------------------------------------------------------------------

_INFO_DIGITS: Final = frozenset("0123456789*#ABCD")
_SIGNAL_CODES: Final = {"10": "*", "11": "#"}
"""Numeric ``Signal`` values some senders use for the RFC 4733 codes of * and #."""


def _digit(text: str) -> str | None:
    text = text.strip().upper()
    text = _SIGNAL_CODES.get(text, text)
    return text if len(text) == 1 and text in _INFO_DIGITS else None


def dtmf_from_info(content_type: str, body: bytes) -> tuple[str, float | None] | None:
    """The digit and duration (ms, None if not given) of a SIP INFO body, or None.

    ``application/dtmf-relay``: lines ``Signal=5`` and ``Duration=160`` (keys in any case,
    whitespace around them, CRLF or LF line ends); ``application/dtmf``: the body is the digit.
    The media type is compared without case and without its parameters. Digits: ``0``-``9``,
    ``*``, ``#``, ``A``-``D`` (upper-cased); a ``Signal`` of 10 or 11 is ``*`` or ``#``.
    Another media type, or a body without a valid digit, gives None.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    if media_type == "application/dtmf":
        digit = _digit(text)
        return (digit, None) if digit is not None else None
    if media_type != "application/dtmf-relay":
        return None
    signal: str | None = None
    duration: float | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            return None
        key = key.strip().lower()
        if key == "signal":
            signal = _digit(value)
            if signal is None:
                return None
        elif key == "duration":
            value = value.strip()
            if not value.isdigit():
                return None
            duration = float(int(value))
    if signal is None:
        return None
    return signal, duration
