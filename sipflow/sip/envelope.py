"""The envelope of a SIP message: From and To tags (RFC 3261 §19.3) and the top Via (§20.42), sans-I/O.

``parse_message`` needs the tags and the top Via's branch and sent-by for every message (the
keys of transactions and dialogs, §17.1.3, §17.2.3, §12); where a value has the usual shape
they are read here without building a ``NameAddr`` or ``Via``. The full From, To and Via list,
with their defects, are parsed on first use of a message's ``from_``, ``to`` or ``vias``
(``parse_lazy_names``, ``parse_lazy_vias``).
"""

from __future__ import annotations

from sipflow.sip.address import _QUOTED_AT_RE
from sipflow.sip.defects import Defect
from sipflow.sip.fields import _VIA_FAST_RE, _parse_via
from sipflow.sip.memo import _FROM_MEMO, _TO_MEMO, _memo_name_addr, _memo_vias
from sipflow.sip.message import Headers, NameAddr, _Names, _Vias
from sipflow.sip.values import _SIMPLE_PARAMS_RE, _split_values

__all__ = ["parse_lazy_names", "parse_lazy_vias"]


def _envelope_tag(
    memo: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]], value: str, what: str
) -> str | None:
    """The ``tag`` of a From or To value without parsing its URI, where its shape is plain
    (an optional quoted or token display name, ``<URI>`` or a bare URI, then parameters
    without blanks or quotes); else from the full parse, as ``NameAddr.tag`` gives it."""
    s = value.strip(" \t")
    pos = 0
    if s[:1] == '"':
        m = _QUOTED_AT_RE.match(s)
        pos = m.end() if m is not None else -1
    if pos >= 0 and '"' not in s[pos:]:
        lt = s.find("<", pos)
        if lt >= 0:
            gt = s.find(">", lt)
            tail = s[gt + 1 :] if gt >= 0 else None
        else:
            semi = s.find(";", pos)
            tail = s[semi:] if semi >= 0 else ""
        if tail == "":
            return None
        if tail is not None and _SIMPLE_PARAMS_RE.fullmatch(tail) is not None:
            for part in tail[1:].split(";"):
                name, eq, tag = part.partition("=")
                if name.lower() == "tag":
                    return tag if eq else ""
            return None
    addr = _memo_name_addr(memo, value, what, [])
    return addr.tag if addr is not None else None


def _via_envelope(values: list[str]) -> tuple[str | None, str] | None:
    """(branch, sent-by) of the first Via value that parses, as ``Via.branch`` and
    ``Via.sent_by`` give them; the usual shape is read without building the Via."""
    for value in values:
        for part in _split_values(value) if "," in value else (value.strip(),):
            if not part:
                continue
            m = _VIA_FAST_RE.fullmatch(part)
            if m is not None and (m[3] is None or int(m[3]) <= 65535):
                host = m[2].lower()
                sent_by = host if m[3] is None else f"{host}:{int(m[3])}"
                branch = None
                ptext = m[4]
                if ptext:
                    for param in ptext[1:].split(";"):
                        name, eq, text = param.partition("=")
                        if name.lower() == "branch":
                            branch = text if eq else ""
                            break
                return branch, sent_by
            via = _parse_via(part, None)
            if via is not None:
                return via.branch, via.sent_by
    return None


def parse_lazy_names(headers: Headers) -> _Names:
    """From and To of a message, parsed in full, with the defects they show (``from_`` and
    ``to`` of a message call this on first use)."""
    defects: list[Defect] = []
    value = headers.get("from")
    from_ = _memo_name_addr(_FROM_MEMO, value, "From", defects) if value is not None else None
    value = headers.get("to")
    to = _memo_name_addr(_TO_MEMO, value, "To", defects) if value is not None else None
    return _Names(from_=from_, to=to, defects=tuple(defects))


def parse_lazy_vias(headers: Headers) -> _Vias:
    """Every Via of a message, parsed in full, with the defects they show (``vias`` of a
    message calls this on first use)."""
    defects: list[Defect] = []
    values = headers.get_all("via")
    vias = _memo_vias(values, defects) if values else ()
    return _Vias(vias=vias, defects=tuple(defects))
