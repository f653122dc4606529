"""SDP bodies (RFC 8866, offer/answer RFC 3264): the parts a call flow needs.

``parse_sdp`` reads a body leniently (a line it cannot use is skipped and noted in
``defects``); ``find_sdp`` finds the SDP of a message, also inside multipart bodies (RFC 2046
§5.1); ``summarize`` gives the one-line text a ladder diagram shows beside an offer or answer.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from sipflow.errors import ParseError
from sipflow.sip import compiled
from sipflow.sip.grammar import SDP_LINE_RE

_T = TypeVar("_T")

if TYPE_CHECKING:
    from sipflow.sip.message import SipRequest, SipResponse

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "Codec",
    "Media",
    "Origin",
    "SessionDescription",
    "find_sdp",
    "parse_sdp",
    "summarize",
]

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
    port_count: int = 1
    """The ``<number of ports>`` of ``m=<media> <port>/<number of ports>`` (RFC 8866 §5.14)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A parsed SDP body (RFC 8866 §5)."""

    origin: Origin | None
    connection: str | None
    """Session-level ``c=`` address."""
    media: tuple[Media, ...]
    direction: str | None = None
    """The session-level direction attribute, or None (then ``sendrecv``, RFC 3264 §5.1)."""
    defects: tuple[str, ...] = ()
    """Lines that could not be used, one short sentence each."""


# RFC 3551 §6, tables 4 and 5: static RTP payload types (name, clock rate, channels).
STATIC_PAYLOAD_TYPES: Final[dict[str, tuple[str, int, int | None]]] = {
    "0": ("PCMU", 8000, 1),
    "3": ("GSM", 8000, 1),
    "4": ("G723", 8000, 1),
    "5": ("DVI4", 8000, 1),
    "6": ("DVI4", 16000, 1),
    "7": ("LPC", 8000, 1),
    "8": ("PCMA", 8000, 1),
    "9": ("G722", 8000, 1),
    "10": ("L16", 44100, 2),
    "11": ("L16", 44100, 1),
    "12": ("QCELP", 8000, 1),
    "13": ("CN", 8000, 1),
    "14": ("MPA", 90000, None),
    "15": ("G728", 8000, 1),
    "16": ("DVI4", 11025, 1),
    "17": ("DVI4", 22050, 1),
    "18": ("G729", 8000, 1),
    "25": ("CelB", 90000, None),
    "26": ("JPEG", 90000, None),
    "28": ("nv", 90000, None),
    "31": ("H261", 90000, None),
    "32": ("MPV", 90000, None),
    "33": ("MP2T", 90000, None),
    "34": ("H263", 90000, None),
}

_MAX_MULTIPART_DEPTH: Final = 4
_MEDIA_PARAM_RE: Final = re.compile(r';[ \t]*([^\s=;]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^;\s]*)')
"""``;name=value`` of a media type (RFC 2045 §5.1), value a token or a quoted string."""


class _MediaBuilder:
    """The mutable state of one ``m=`` section while its lines are read."""

    __slots__ = ("connection", "direction", "formats", "kind", "port", "port_count", "rtpmap", "transport")

    def __init__(self, kind: str, port: int, port_count: int, transport: str, formats: list[str]) -> None:
        self.kind = kind
        self.port = port
        self.port_count = port_count
        self.transport = transport
        self.formats = formats
        self.connection: str | None = None
        self.direction: str | None = None
        self.rtpmap: dict[str, tuple[str, int | None, int | None]] = {}

    def build(self, session_connection: str | None, session_direction: str | None) -> Media:
        rtp = "RTP" in self.transport.upper()
        codecs = []
        for fmt in self.formats:
            mapped = self.rtpmap.get(fmt)
            if mapped is None and rtp:
                mapped = STATIC_PAYLOAD_TYPES.get(fmt)
            if mapped is None:
                codecs.append(Codec(payload_type=fmt))
            else:
                name, clock_rate, channels = mapped
                codecs.append(Codec(payload_type=fmt, name=name, clock_rate=clock_rate, channels=channels))
        return Media(
            kind=self.kind,
            port=self.port,
            port_count=self.port_count,
            transport=self.transport,
            codecs=tuple(codecs),
            connection=self.connection if self.connection is not None else session_connection,
            # RFC 3264 §5.1, RFC 8866 §6.7: media level overrides session level.
            direction=self.direction or session_direction or "sendrecv",
        )


def _origin(value: str) -> Origin | None:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``
    (RFC 8866 §5.2), or None when it has not six fields."""
    parts = value.split()
    if len(parts) != 6:
        return None
    return Origin(
        username=parts[0],
        session_id=parts[1],
        session_version=parts[2],
        nettype=parts[3],
        addrtype=parts[4],
        address=parts[5],
    )


def _connection_address(value: str, defects: list[str]) -> str | None:
    """``c=<nettype> <addrtype> <connection-address>`` → the address without /ttl/count."""
    parts = value.split()
    if len(parts) < 3:
        defects.append(f"Bad c= line: {value[:40]!r}.")
        return None
    return parts[2].split("/", 1)[0]


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body (RFC 8866 §5) leniently.

    Reads ``o=``, session- and media-level ``c=``, ``m=`` (port, port count, proto, formats),
    ``a=rtpmap`` (encoding name, clock rate, channels; static RTP payload types of RFC 3551
    are named without one) and the direction attributes (RFC 3264 §5.1). Lines may end in
    CRLF or LF; unusable lines go to ``defects``. Raises ``ParseError`` only when the body is
    not SDP at all (no ``<type>=`` first line, or neither a ``v=`` nor an ``m=`` line).
    """
    text = body.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    defects: list[str] = []
    origin: Origin | None = None
    connection: str | None = None
    direction: str | None = None
    media: list[_MediaBuilder] = []
    current: _MediaBuilder | None = None
    seen_v = False
    seen_first = False
    for number, raw_line in enumerate(lines, 1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        m = SDP_LINE_RE.match(line)
        if m is None:
            if not seen_first:
                raise ParseError(f"not an SDP body: {line[:40]!r}", offset=0)
            defects.append(f"Line {number} is not <type>=<value>: {line[:40]!r}.")
            continue
        seen_first = True
        kind = m[1]
        value = line[m.end() :].strip()
        if kind == "v":
            seen_v = True
            if value != "0":
                defects.append(f"Unknown SDP version {value[:10]!r}.")
        elif kind == "o":
            found = _origin(value) if current is None else None
            if found is not None:
                origin = found
            else:
                defects.append(f"Bad o= line: {value[:40]!r}.")
        elif kind == "c":
            address = _connection_address(value, defects)
            if current is None:
                connection = address
            else:
                current.connection = address
        elif kind == "m":
            current = _media_line(value, defects)
            if current is not None:
                media.append(current)
        elif kind == "a":
            name, _, attr_value = value.partition(":")
            if name in DIRECTIONS:
                if current is None:
                    direction = name
                else:
                    current.direction = name
            elif name == "rtpmap" and current is not None:
                _rtpmap(attr_value, current, defects)
    if not seen_v and not media:
        raise ParseError("not an SDP body: no v= and no m= line", offset=0)
    return SessionDescription(
        origin=origin,
        connection=connection,
        media=tuple(builder.build(connection, direction) for builder in media),
        direction=direction,
        defects=tuple(defects),
    )


def _media_line(value: str, defects: list[str]) -> _MediaBuilder | None:
    """``m=<media> <port>[/<number of ports>] <proto> <fmt> ...`` (RFC 8866 §5.14)."""
    parts = value.split()
    if len(parts) < 3:
        defects.append(f"Bad m= line: {value[:40]!r}.")
        return None
    port_text, _, count_text = parts[1].partition("/")
    if not (port_text.isdigit() and port_text.isascii() and len(port_text) <= 5):
        defects.append(f"Bad m= port: {parts[1][:20]!r}.")
        return None
    count = 1
    if count_text:
        if count_text.isdigit() and count_text.isascii() and len(count_text) <= 5:
            count = int(count_text)
        else:
            defects.append(f"Bad m= port count: {parts[1][:20]!r}.")
    return _MediaBuilder(parts[0], int(port_text), count, parts[2], parts[3:])


def _rtpmap(value: str, media: _MediaBuilder, defects: list[str]) -> None:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<parameters>]`` (RFC 8866 §6.6)."""
    pt, _, encoding = value.strip().partition(" ")
    fields = encoding.strip().split("/")
    if not pt or not fields[0]:
        defects.append(f"Bad rtpmap: {value[:40]!r}.")
        return
    clock = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() and len(fields[1]) < 10 else None
    channels = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() and len(fields[2]) < 4 else None
    media.rtpmap[pt] = (fields[0], clock, channels)


def _media_type(value: str | None) -> tuple[str | None, dict[str, str]]:
    """``type/subtype;params`` → (lower-cased type/subtype, params with lower-cased names)."""
    if value is None:
        return None, {}
    if ";" not in value:
        return value.strip().lower(), {}  # the common case: no parameter to read
    params = {}
    for m in _MEDIA_PARAM_RE.finditer(value):
        raw = m[2]
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[m[1].lower()] = raw
    return value.split(";", 1)[0].strip().lower(), params


def _looks_like_sdp(body: bytes) -> bool:
    return body.lstrip()[:2] == b"v="


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    """The body parts of a multipart body (RFC 2046 §5.1.1), leniently (LF or CRLF)."""
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        pos = 0
    else:
        pos = body.find(b"\n" + delimiter)
        if pos < 0:
            return []
        pos += 1
    parts: list[bytes] = []
    while True:
        after = pos + len(delimiter)
        if body[after : after + 2] == b"--":
            break  # the close-delimiter
        eol = body.find(b"\n", after)
        if eol < 0:
            break
        start = eol + 1
        following = body.find(b"\n" + delimiter, start)
        if following < 0:
            parts.append(body[start:])  # no close-delimiter: take the rest
            break
        end = following
        if end > start and body[end - 1 : end] == b"\r":
            end -= 1  # the CRLF before a delimiter belongs to it (RFC 2046 §5.1.1)
        parts.append(body[start:end])
        pos = following + 1
    return parts


def _part_headers(part: bytes) -> tuple[dict[str, str], bytes]:
    """A body part's MIME headers (lower-cased names) and its content."""
    if part.startswith(b"\r\n"):
        return {}, part[2:]
    if part.startswith(b"\n"):
        return {}, part[1:]
    end = part.find(b"\r\n\r\n")
    skip = 4
    lf_end = part.find(b"\n\n")
    if lf_end >= 0 and (end < 0 or lf_end < end):
        end, skip = lf_end, 2
    if end < 0:
        return {}, part
    headers: dict[str, str] = {}
    text = part[:end].decode("utf-8", "replace").replace("\r\n", "\n")
    text = re.sub(r"\n[ \t]+", " ", text)  # unfold (RFC 5322 §2.2.3)
    for line in text.split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers, part[end + skip :]


def _find_in_body(
    content_type: str | None, body: bytes, depth: int, read: Callable[[bytes], _T]
) -> _T | None:
    media_type, params = _media_type(content_type)
    if media_type == "application/sdp" or (media_type is None and _looks_like_sdp(body)):
        try:
            return read(body)
        except ParseError:
            return None
    if media_type is None or not media_type.startswith("multipart/") or depth >= _MAX_MULTIPART_DEPTH:
        return None
    boundary = params.get("boundary")
    if not boundary:
        return None
    for part in _split_multipart(body, boundary.encode("utf-8", "replace")):
        headers, content = _part_headers(part)
        encoding = headers.get("content-transfer-encoding", "").lower()
        if encoding == "base64":
            try:
                content = base64.b64decode(content, validate=False)
            except (binascii.Error, ValueError):
                continue
        # RFC 2046 §5.1: a part without Content-Type is text/plain.
        found = _find_in_body(headers.get("content-type", "text/plain"), content, depth + 1, read)
        if found is not None:
            return found
    return None


def find_sdp(message: SipRequest | SipResponse) -> SessionDescription | None:
    """The session description a message carries, or None.

    Looks at an ``application/sdp`` body, or the first ``application/sdp`` part of a
    ``multipart/*`` body (``multipart/mixed``, ``multipart/alternative``..., RFC 2046 §5.1,
    nested ones too); a body without Content-Type that starts with ``v=`` counts as SDP.
    Returns None when there is none, or when it is not SDP at all (``parse_sdp`` says why).
    """
    if not message.body:
        return None
    return _find_in_body(message.headers.get("content-type"), message.body, 0, parse_sdp)


@dataclass(frozen=True, slots=True)
class SdpDigest:
    """What correlating call legs needs of a session description, read without building it:
    equal to what ``parse_sdp`` gives (a test holds them to that)."""

    origin: Origin | None
    """The ``o=`` line, as ``SessionDescription.origin``."""
    media: frozenset[tuple[str, int]]
    """(connection address, port) of each stream with a port (address ``""`` when none)."""
    addresses: frozenset[str]
    """The connection address of each stream that has one."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Flat: correlation facts cross between processes by the ten thousand (``sipflow.shard``),
        # and a dataclass's own pickling reads its fields one call at a time.
        o = self.origin
        origin = (
            None
            if o is None
            else (o.username, o.session_id, o.session_version, o.nettype, o.addrtype, o.address)
        )
        return _restore_digest, (origin, self.media, self.addresses)


def _restore_digest(
    origin: tuple[str, str, str, str, str, str] | None,
    media: frozenset[tuple[str, int]],
    addresses: frozenset[str],
) -> SdpDigest:
    """The digest ``SdpDigest.__reduce__`` describes."""
    if origin is None:
        return SdpDigest(None, media, addresses)
    username, session_id, session_version, nettype, addrtype, address = origin
    return SdpDigest(
        Origin(username=username, session_id=session_id, session_version=session_version, nettype=nettype,
               addrtype=addrtype, address=address),
        media, addresses,
    )  # fmt: skip


_DIGEST_LINE_RE: Final = re.compile(r"^([vocm])[ \t]*=(.*)$", re.M)
"""The lines a digest reads (``SDP_LINE_RE`` of kind v, o, c or m) and their values."""
_NOT_BLANK_RE: Final = re.compile(r"[^\s]")


_DigestRead = tuple[bool, bool, tuple[str, ...] | None, str | None, list[tuple[str | None, int]]]
_sdp_module = compiled.load("_sdp")
_digest_read: Callable[[bytes], _DigestRead | None] | None = (
    _sdp_module.digest if _sdp_module is not None else None
)
"""``sipflow/sip/_sdp.c``: what ``_digest_sdp`` reads of a plain body (printable ASCII and
line ends), or None for another body; None where it is not in use."""


def digest_sdp(body: bytes) -> SdpDigest:
    """The ``SdpDigest`` of an SDP body; raises ``ParseError`` where ``parse_sdp`` would.

    Reads the lines as ``parse_sdp`` does (split on LF, a CR before it dropped, blank lines
    skipped, the first other line a ``<type>=`` line), but only those of kind v, o, c and m."""
    read = _digest_read(body) if _digest_read is not None else None
    if read is None:
        return _digest_sdp(body)
    first_ok, seen_v, fields, connection, streams = read
    if not first_ok or (not seen_v and not streams):
        return _digest_sdp(body)  # it raises, saying why
    origin = None
    if fields is not None:
        username, session_id, session_version, nettype, addrtype, address = fields
        origin = Origin(
            username=username,
            session_id=session_id,
            session_version=session_version,
            nettype=nettype,
            addrtype=addrtype,
            address=address,
        )
    media = frozenset((own or connection or "", port) for own, port in streams if port)
    addresses = frozenset(own or connection or "" for own, _ in streams) - {""}
    return SdpDigest(origin=origin, media=media, addresses=addresses)


def _digest_sdp(body: bytes) -> SdpDigest:
    """``digest_sdp`` in Python: the reference of the compiled one, and the reader of any body."""
    text = body.decode("utf-8", "replace")
    first = _NOT_BLANK_RE.search(text)
    if first is not None:
        start = text.rfind("\n", 0, first.start()) + 1
        end = text.find("\n", start)
        line = text[start : end if end >= 0 else len(text)].rstrip("\r")
        if SDP_LINE_RE.match(line) is None:
            raise ParseError(f"not an SDP body: {line[:40]!r}", offset=0)
    origin: Origin | None = None
    connection: str | None = None
    streams: list[_MediaBuilder] = []
    current: _MediaBuilder | None = None
    seen_v = False
    ignored: list[str] = []  # defects: parse_sdp's to report
    for m in _DIGEST_LINE_RE.finditer(text):
        kind = m[1]
        value = m[2].strip()
        if kind == "v":
            seen_v = True
        elif kind == "o":
            found = _origin(value) if current is None else None
            if found is not None:
                origin = found
        elif kind == "c":
            address = _connection_address(value, ignored)
            if current is None:
                connection = address
            else:
                current.connection = address
        else:
            current = _media_line(value, ignored)
            if current is not None:
                streams.append(current)
    if not seen_v and not streams:
        raise ParseError("not an SDP body: no v= and no m= line", offset=0)
    media = frozenset((b.connection or connection or "", b.port) for b in streams if b.port)
    addresses = frozenset(b.connection or connection or "" for b in streams) - {""}
    return SdpDigest(origin=origin, media=media, addresses=addresses)


def find_sdp_digest(message: SipRequest | SipResponse) -> SdpDigest | None:
    """The ``SdpDigest`` of the session description a message carries (found as ``find_sdp``
    finds it), or None."""
    if not message.body:
        return None
    return _find_in_body(message.headers.get("content-type"), message.body, 0, digest_sdp)


def _endpoint(address: str | None, port: int) -> str:
    if address is None:
        return f"?:{port}"
    if ":" in address:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def summarize(sd: SessionDescription) -> str:
    """A one-line summary for a ladder: ``audio 10.0.0.1:4000 PCMU,PCMA,telephone-event sendrecv``.

    One entry per ``m=`` line, joined with ``"; "``. A port of 0 (a rejected or disabled
    stream, RFC 3264 §6) shows ``rejected`` instead of the direction.
    """
    if not sd.media:
        return "no media"
    entries = []
    for media in sd.media:
        words = [media.kind, _endpoint(media.connection, media.port)]
        if media.codecs:
            words.append(",".join(str(codec) for codec in media.codecs))
        words.append("rejected" if media.port == 0 else media.direction)
        entries.append(" ".join(words))
    return "; ".join(entries)
