"""The static RTP payload types (RFC 3551 §6, Table 4 and 5; IANA "RTP Payload Types")."""

from __future__ import annotations

from typing import Final, NamedTuple


class PayloadType(NamedTuple):
    """An encoding name and its RTP clock rate (timestamp units per second)."""

    name: str
    clock_rate: int


STATIC: Final[dict[int, PayloadType]] = {
    0: PayloadType("PCMU", 8000),
    3: PayloadType("GSM", 8000),
    4: PayloadType("G723", 8000),
    5: PayloadType("DVI4", 8000),
    6: PayloadType("DVI4", 16000),
    7: PayloadType("LPC", 8000),
    8: PayloadType("PCMA", 8000),
    9: PayloadType("G722", 8000),  # RFC 3551 §4.5.2: an 8000 Hz clock for 16 kHz audio
    10: PayloadType("L16", 44100),
    11: PayloadType("L16", 44100),
    12: PayloadType("QCELP", 8000),
    13: PayloadType("CN", 8000),
    14: PayloadType("MPA", 90000),
    15: PayloadType("G728", 8000),
    16: PayloadType("DVI4", 11025),
    17: PayloadType("DVI4", 22050),
    18: PayloadType("G729", 8000),
    19: PayloadType("CN", 8000),  # reserved since RFC 3551; comfort noise before RFC 3389
    25: PayloadType("CelB", 90000),
    26: PayloadType("JPEG", 90000),
    28: PayloadType("nv", 90000),
    31: PayloadType("H261", 90000),
    32: PayloadType("MPV", 90000),
    33: PayloadType("MP2T", 90000),
    34: PayloadType("H263", 90000),
}
"""Payload type → encoding and clock rate, for the types RFC 3551 assigns."""

COMFORT_NOISE: Final = frozenset((13, 19))
"""Comfort noise (RFC 3389; 19 in older use): sent only in silence, so not a regular packet."""

DYNAMIC: Final = range(96, 128)
"""Payload types an SDP ``a=rtpmap`` binds (RFC 3551 §3)."""
