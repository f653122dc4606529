"""SDP bodies (RFC 8866, offer/answer RFC 3264): the parts a call flow needs.

Types only live here for now; ``parse_sdp`` and ``find_sdp`` are filled in by the parser work.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """The ``o=`` line: username, session id, version, network type, address type, address."""

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """One media format of an ``m=`` line, named by its ``a=rtpmap`` where there is one."""

    payload_type: str
    """The format token of the m= line (``0``, ``101``, or a non-RTP token)."""
    name: str | None = None
    """Encoding name from rtpmap (``PCMU``, ``opus``, ``telephone-event``), or the static
    payload type's well-known name, or None."""
    clock_rate: int | None = None
    channels: int | None = None

    def __str__(self) -> str:
        return self.name or self.payload_type


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """One ``m=`` section."""

    kind: str
    """``audio``, ``video``, ``application``, ``image``..."""
    port: int
    """0 means the stream is rejected or disabled (RFC 3264 §6)."""
    transport: str
    """``RTP/AVP``, ``RTP/SAVP``, ``UDP/TLS/RTP/SAVPF``, ``udptl``..."""
    codecs: tuple[Codec, ...]
    connection: str | None
    """The address from the media-level ``c=``, else the session-level one."""
    direction: str
    """``sendrecv`` unless an a= attribute (media or session level) says otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    origin: Origin | None
    connection: str | None
    """Session-level ``c=`` address."""
    media: tuple[Media, ...]
