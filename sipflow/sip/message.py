"""SIP message objects (RFC 3261 §7, §20): frozen values built by ``sipflow.sip.parse``.

Headers keep their order and raw case; lookups accept long or compact names in any case.
The fields the protocol model needs (Call-ID, CSeq, From/To tags, Via) are parsed eagerly;
everything else is parsed on request from ``headers``, which keeps no strings of its own: it
splits the message's raw bytes each time it is asked (a message costs its bytes plus a few
small objects, so a capture of a million messages fits in memory).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final

from sipflow.sip import compiled
from sipflow.sip.defects import ContinuationFirst, Defect, HeaderLineNoColon

# RFC 3261 §7.3.3 compact forms, plus those of later RFCs that the issue lists.
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "u": "allow-events",  # RFC 6665
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
    "b": "referred-by",  # RFC 3892
    "a": "accept-contact",  # RFC 3841
    "j": "reject-contact",  # RFC 3841
    "d": "request-disposition",  # RFC 3841
    "n": "identity-info",  # RFC 4474
}


_CANONICAL_CACHE: dict[str, str] = {}
_CANONICAL_CACHE_MAX = 4096


def canonical_name(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded (RFC 3261 §7.3.3)."""
    key = _CANONICAL_CACHE.get(name)
    if key is None:
        low = name.strip().lower()
        key = COMPACT_FORMS.get(low, low)
        # Bounded: names seen on the wire are few, but a hostile capture could invent many.
        if len(_CANONICAL_CACHE) < _CANONICAL_CACHE_MAX:
            _CANONICAL_CACHE[name] = key
    return key


_FOLD_RE: Final = re.compile(r"\r?\n[ \t]+")
"""A line break followed by whitespace: folding, replaced by one SP (RFC 3261 §7.3.1)."""
fold_search: Final = re.compile(r"\n[ \t]").search
"""Finds a line that starts with SP or HTAB (a folded line, §7.3.1) in header text."""


def unfold(lines: list[str], defects: list[Defect] | None = None) -> list[str]:
    """Header lines (after the start line, line ends removed) with folding undone: a line
    starting with SP or HTAB continues the one before, joined with one SP (RFC 3261 §7.3.1).
    One right after the start line has nothing to continue and is dropped (a defect)."""
    if lines and lines[0][:1] in (" ", "\t"):
        if defects is not None:
            defects.append(ContinuationFirst("Continuation line follows the start line."))
        lines = lines[1:]
    return _FOLD_RE.sub(" ", "\n".join(lines)).split("\n")


def split_fields(
    lines: list[str], folded: bool, defects: list[Defect] | None = None
) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of the header lines after the start line (line ends removed).

    With ``folded`` (some line starts with SP or HTAB), lines are unfolded first (``unfold``).
    Values lose the blanks around them; names keep blanks before the colon. Lines without a
    colon are dropped. Each problem is appended to ``defects``.
    """
    if folded:
        lines = unfold(lines, defects)
    fields = [(n, v.strip(" \t")) for n, c, v in map(str.partition, lines, repeat(":")) if c]
    if defects is not None and len(fields) != len(lines):
        for line in lines:
            if ":" not in line:
                defects.append(HeaderLineNoColon(f"Header line has no colon: {line[:40]!r}."))
    return fields


_COMPACT_OF: Final = {long: short for short, long in COMPACT_FORMS.items()}
_LINE_PATTERNS_MAX: Final = 4096
# What str.strip() removes from a name and may stand on its line before the colon (§7.3.1).
_NAME_BLANKS: Final = rb"[ \t\x0b\x0c\r\x1c-\x1f]*"
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
"""RFC 3261 §25.1 token: the header names the fast lookup serves (others take the slow path)."""


@dataclass(frozen=True, slots=True)
class _Lookup:
    """How a plain header section is searched for the fields called one of some names."""

    pattern: re.Pattern[bytes]
    """At a line start, one of the names as written (group 1: long or compact, any case), its
    colon and the blanks after it."""
    names: tuple[bytes, ...]
    """The same names for ``_find``: lower case, compact forms included."""
    keys: tuple[str, ...]
    """The canonical name of each of ``names``."""


_LOOKUPS: dict[tuple[str, ...], _Lookup | None] = {}
_fields_module = compiled.load("_fields")
_find: Callable[[bytes, int, int, tuple[bytes, ...], bool], Any] | None = (
    _fields_module.find if _fields_module is not None else None
)
"""``sipflow/sip/_fields.c``: what ``_Lookup.pattern`` finds, with each value read as
``Headers._value`` reads it; None where it is not in use."""


def _lookup(keys: tuple[str, ...]) -> _Lookup | None:
    """The lookup of header names whose canonical name is one of ``keys``; None when one of
    them is not a token (left to the slow path)."""
    lookup = _LOOKUPS.get(keys)
    if lookup is None and keys not in _LOOKUPS:
        if all(_TOKEN_RE.fullmatch(k) is not None for k in keys):
            pairs = [(k, k) for k in keys] + [(c, k) for k in keys if (c := _COMPACT_OF.get(k)) is not None]
            alternatives = sorted((re.escape(name.encode()) for name, _ in pairs), key=len, reverse=True)
            pattern = re.compile(
                rb"^(" + b"|".join(alternatives) + rb")" + _NAME_BLANKS + rb":[ \t]*", re.I | re.M
            )
            lookup = _Lookup(pattern, tuple(name.encode() for name, _ in pairs), tuple(k for _, k in pairs))
        if len(_LOOKUPS) < _LINE_PATTERNS_MAX:
            _LOOKUPS[keys] = lookup
    return lookup


@dataclass(frozen=True, slots=True)
class Headers:
    """The header fields of a message, in order, with their raw names and values.

    A view of ``data[start:end]``, the header lines after the start line in the message's raw
    bytes, decoded as UTF-8 (invalid octets become U+FFFD) and split on each request: folded
    lines come unfolded (RFC 3261 §7.3.1); a header repeated on several lines appears several
    times; names lose blanks before the colon; lines without a colon are left out (the parser
    reports them as defects).
    """

    data: bytes = field(repr=False)
    """The message's raw bytes (shared with ``raw``, not a copy)."""
    start: int = 0
    """Offset of the first header line in ``data``."""
    end: int = 0
    """Offset of the end of the last header line (before the empty line)."""
    plain: bool = False
    """The header section has no folded lines and only ASCII names: a lookup may then search
    the bytes for the one line it wants instead of splitting them all (same answers, faster;
    UTF-8 decodes the same in pieces cut at ASCII octets, and only a name with non-ASCII
    characters, like a Kelvin sign or a no-break space, could lower or strip to a name sought)."""

    @classmethod
    def from_fields(cls, fields: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> Headers:
        """Headers holding ``fields`` (for messages built by hand, e.g. in tests)."""
        text = "".join(f"{name}: {value}\r\n" for name, value in fields)
        plain = all(name.isascii() for name, _ in fields) and fold_search(text) is None
        block = text.encode()
        return cls(block, 0, max(0, len(block) - 2), plain)

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        """``(raw name, raw value)`` pairs in wire order."""
        if self.end <= self.start:
            return ()
        block = self.data[self.start : self.end].decode("utf-8", "replace")
        if "\r\n" in block:
            block = block.replace("\r\n", "\n")
        folded = block[:1] in (" ", "\t") or fold_search(block) is not None
        return tuple((name.rstrip(" \t"), value) for name, value in split_fields(block.split("\n"), folded))

    def get(self, name: str) -> str | None:
        """The value of the first field called ``name`` (long or compact, any case)."""
        key = canonical_name(name)
        lookup = _lookup((key,)) if self.plain else None
        if lookup is not None:
            if _find is not None:
                found = _find(self.data, self.start, self.end, lookup.names, True)
                return None if found is None else found[1]
            m = lookup.pattern.search(self.data, self.start, self.end)
            return None if m is None else self._value(m.end())
        for raw_name, value in self.fields:
            if canonical_name(raw_name) == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """The values of every field called ``name``, one per header line."""
        key = canonical_name(name)
        lookup = _lookup((key,)) if self.plain else None
        if lookup is not None:
            if _find is not None:
                return [value for _, value in _find(self.data, self.start, self.end, lookup.names, False)]
            return [self._value(m.end()) for m in lookup.pattern.finditer(self.data, self.start, self.end)]
        return [value for raw_name, value in self.fields if canonical_name(raw_name) == key]

    def collect(self, names: tuple[str, ...]) -> dict[str, list[str]]:
        """The values of every field called one of ``names``, by canonical name (lower case,
        compact forms expanded), each list in wire order: ``get_all`` of each, in one pass."""
        keys = tuple(dict.fromkeys(canonical_name(n) for n in names))
        lookup = _lookup(keys) if self.plain else None
        out: dict[str, list[str]] = {}
        if lookup is not None:
            if _find is not None:
                of = lookup.keys
                for index, value in _find(self.data, self.start, self.end, lookup.names, False):
                    out.setdefault(of[index], []).append(value)
                return out
            for m in lookup.pattern.finditer(self.data, self.start, self.end):
                key = canonical_name(m[1].decode("ascii"))
                out.setdefault(key, []).append(self._value(m.end()))
            return out
        wanted = set(keys)
        for raw_name, value in self.fields:
            key = canonical_name(raw_name)
            if key in wanted:
                out.setdefault(key, []).append(value)
        return out

    def _value(self, i: int) -> str:
        """The value of a plain header line whose value starts at ``data[i]``, as ``fields``
        gives it: up to the line end (one CR before the LF is the line end's), blanks off."""
        data = self.data
        j = data.find(b"\n", i, self.end)
        if j < 0:
            j = self.end
        elif data[j - 1 : j] == b"\r":
            j -= 1
        return data[i:j].decode("utf-8", "replace").strip(" \t")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


def _param(params: tuple[tuple[str, str | None], ...], key: str) -> str | None:
    """The value of parameter ``key`` (lower case, as parameter names are stored), ``""`` for
    one without a value, None when absent."""
    for name, value in params:
        if name == key:
            return value if value is not None else ""
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Uri:
    """A SIP/SIPS/tel or other URI (RFC 3261 §19.1). Unknown schemes keep only ``raw``."""

    raw: str
    scheme: str
    """Lower-cased scheme (``sip``, ``sips``, ``tel``...)."""
    user: str | None = None
    host: str | None = None
    """Host without brackets for IPv6 references."""
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    """URI parameters; names lower-cased, values as written."""

    def param(self, name: str) -> str | None:
        return _param(self.params, name.lower())

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAddr:
    """A From/To/Contact/Route value: ``"Display" <uri>;params`` or a bare addr-spec (§20.10)."""

    display_name: str | None
    """Display name with quotes removed and escapes resolved, or None."""
    uri: Uri
    params: tuple[tuple[str, str | None], ...] = ()
    """Header parameters (outside the angle brackets); names lower-cased."""

    def param(self, name: str) -> str | None:
        return _param(self.params, name.lower())

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or None."""
        return _param(self.params, "tag")

    @property
    def is_wildcard(self) -> bool:
        """True for the special ``Contact: *`` value of a REGISTER (RFC 3261 §10.2.2)."""
        return self.uri.raw == "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via value (RFC 3261 §20.42): ``SIP/2.0/UDP host:port;branch=...``."""

    protocol: str
    """``SIP/2.0`` normally."""
    transport: str
    """Upper-cased transport token (UDP, TCP, TLS, SCTP, WS, WSS or an extension)."""
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        return _param(self.params, name.lower())

    @property
    def branch(self) -> str | None:
        return _param(self.params, "branch")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written, the sent-by of RFC 3261 §17.2.3 (host lower-cased)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host.lower() if self.port is None else f"{host.lower()}:{self.port}"

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch carries the magic cookie and something after it (§8.1.1.7)."""
        return is_rfc3261_branch(self.branch)


def is_rfc3261_branch(branch: str | None) -> bool:
    """The branch carries the magic cookie ``z9hG4bK`` and something after it (§8.1.1.7)."""
    return branch is not None and branch.startswith("z9hG4bK") and len(branch) > 7


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header (RFC 3261 §20.16)."""

    seq: int
    method: str


@dataclass(frozen=True, slots=True)
class _Names:
    """What a message parses only when asked: its From and To, and their defects."""

    from_: NameAddr | None
    to: NameAddr | None
    defects: tuple[Defect, ...]


@dataclass(frozen=True, slots=True)
class _Vias:
    """What a message parses only when asked: every Via value, and their defects."""

    vias: tuple[Via, ...]
    defects: tuple[Defect, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageBase:
    """A parsed message: its envelope (what the protocol model needs for every message: the
    start line, Call-ID, CSeq, the From and To tags, the top Via and the framing) is read
    when it is parsed; the rest (From and To in full, every Via, every other header) is a
    view over ``raw``, parsed on first use and kept."""

    headers: Headers
    raw: bytes
    """The whole message as received (start line, headers, body)."""
    body_start: int
    """Offset of the body in ``raw`` (``len(raw)`` when there is none)."""
    call_id: str | None
    cseq: CSeq | None
    from_tag: str | None
    """The ``tag`` parameter of From (RFC 3261 §19.3), or None; read without parsing the rest
    of From. Where From's URI cannot be parsed, ``from_`` is None but the tag still counts."""
    to_tag: str | None
    """The ``tag`` parameter of To, as ``from_tag``."""
    branch: str | None
    """The ``branch`` of the top Via (the first Via value that parses, ``vias[0]``; RFC 3261
    §8.1.1.7), or None; read without parsing the rest of the Via header fields."""
    sent_by: str | None
    """The sent-by of the top Via, ``host[:port]`` (host lower-cased, as ``Via.sent_by``), or
    None without a Via that parses."""
    content_length: int | None
    """The Content-Length header value, or None where absent or unusable (negative, not a
    number, several disagreeing values: see ``defects``)."""
    ingest_defects: tuple[Defect, ...] = field(default=())
    """The ``defects`` found while reading the envelope; ``defects`` adds those of the lazily
    parsed header fields."""
    trailing: bytes = b""
    """Bytes after the Content-Length-framed body, not part of this message (e.g. a second
    message in the same UDP datagram, RFC 4475 §3.1.1.8: ignored, and not a defect)."""
    _names: _Names | None = field(default=None, init=False, repr=False, compare=False)
    _vias: _Vias | None = field(default=None, init=False, repr=False, compare=False)

    def _resolved_names(self) -> _Names:
        names = self._names
        if names is None:
            from sipflow.sip.envelope import parse_lazy_names  # noqa: PLC0415  # envelope imports this module

            names = parse_lazy_names(self.headers)
            object.__setattr__(self, "_names", names)
        return names

    def _resolved_vias(self) -> _Vias:
        vias = self._vias
        if vias is None:
            from sipflow.sip.envelope import parse_lazy_vias  # noqa: PLC0415  # envelope imports this module

            vias = parse_lazy_vias(self.headers)
            object.__setattr__(self, "_vias", vias)
        return vias

    @property
    def from_(self) -> NameAddr | None:
        """The From header (RFC 3261 §20.20), or None where absent or unparseable."""
        return self._resolved_names().from_

    @property
    def to(self) -> NameAddr | None:
        """The To header (RFC 3261 §20.39), or None where absent or unparseable."""
        return self._resolved_names().to

    @property
    def vias(self) -> tuple[Via, ...]:
        """Every Via value in order, comma-separated values split; ``vias[0]`` is the top one."""
        return self._resolved_vias().vias

    @property
    def top_via(self) -> Via | None:
        """The first Via value that parses (``branch`` and ``sent_by`` come from it)."""
        vias = self._resolved_vias().vias
        return vias[0] if vias else None

    @property
    def rfc3261_branch(self) -> bool:
        """The top Via's branch carries the magic cookie and something after it (§8.1.1.7)."""
        return is_rfc3261_branch(self.branch)

    @property
    def defects(self) -> tuple[Defect, ...]:
        """Problems found while parsing that did not stop it (one short sentence each, a ``str``
        whose ``code`` names its kind: ``sipflow.sip.defects``): Content-Length disagreeing
        with the body, a missing mandatory header, a bad Via..."""
        lazy = self._resolved_names().defects + self._resolved_vias().defects
        return self.ingest_defects + lazy if lazy else self.ingest_defects

    @property
    def body(self) -> bytes:
        """The message body (framed by Content-Length where it is usable, §18.3)."""
        return self.raw[self.body_start :]

    @property
    def content_type(self) -> str | None:
        """Media type of the body, lower-cased, parameters dropped."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Flat (headers and CSeq inline, the lazily parsed parts left out): messages cross
        # from worker processes by the hundred thousand (``sipflow.pipeline``).
        h, cseq = self.headers, self.cseq
        first: tuple[object, ...] = ()
        if isinstance(self, SipRequest):
            first = (self.method, self.uri, self.version)
        elif isinstance(self, SipResponse):
            first = (self.status, self.reason, self.version)
        return restore_message, (
            isinstance(self, SipRequest), h.data, h.start, h.end, h.plain, self.raw, self.body_start,
            self.call_id, None if cseq is None else cseq.seq, None if cseq is None else cseq.method,
            self.from_tag, self.to_tag, self.branch, self.sent_by, self.content_length, self.ingest_defects,
            self.trailing, *first,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class SipRequest(_MessageBase):
    """A request (RFC 3261 §7.1)."""

    method: str
    """As written (methods are case-sensitive, §7.1)."""
    uri: str
    """The Request-URI as written."""
    version: str = "SIP/2.0"

    @property
    def is_request(self) -> bool:
        return True

    @property
    def first_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SipResponse(_MessageBase):
    """A response (RFC 3261 §7.2)."""

    status: int
    reason: str
    version: str = "SIP/2.0"

    @property
    def is_request(self) -> bool:
        return False

    @property
    def first_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}".rstrip()


SipMessage = SipRequest | SipResponse


_BASE_FIELDS = ("headers", "raw", "body_start", "call_id", "cseq", "from_tag", "to_tag", "branch", "sent_by",
                "content_length", "ingest_defects", "trailing")  # fmt: skip
_REQUEST_SETTERS = tuple(getattr(SipRequest, n).__set__ for n in (*_BASE_FIELDS, "method", "uri", "version"))
_RESPONSE_SETTERS = tuple(
    getattr(SipResponse, n).__set__ for n in (*_BASE_FIELDS, "status", "reason", "version")
)
_LAZY_SETTERS = (getattr(_MessageBase, "_names").__set__, getattr(_MessageBase, "_vias").__set__)  # noqa: B009
_HEADERS_SETTERS = tuple(getattr(Headers, n).__set__ for n in ("data", "start", "end", "plain"))


def restore_message(
    is_request: bool, data: bytes, start: int, end: int, plain: bool, *values: object
) -> SipRequest | SipResponse:
    """The message ``__reduce__`` describes (slots set directly: the classes are frozen)."""
    headers = object.__new__(Headers)
    for set_field, value in zip(_HEADERS_SETTERS, (data, start, end, plain), strict=True):
        set_field(headers, value)
    seq, method = values[3], values[4]
    cseq = None if seq is None else CSeq(seq, method)  # type: ignore[arg-type]
    fields = (headers, *values[:3], cseq, *values[5:])
    message: SipRequest | SipResponse
    if is_request:
        message, setters = object.__new__(SipRequest), _REQUEST_SETTERS
    else:
        message, setters = object.__new__(SipResponse), _RESPONSE_SETTERS
    for set_field, value in zip(setters, fields, strict=True):
        set_field(message, value)
    for set_field in _LAZY_SETTERS:
        set_field(message, None)
    return message
