"""Parse the structured header field values that are not addresses (RFC 3261 §20), sans-I/O.

Via (§20.42: sent-protocol, sent-by, via-params), CSeq (§20.16, the number below 2**31 as
§8.1.1.5 wants) and Content-Length (§20.14), and the cheap range checks of the scalar header
fields RFC 4475 §3.1.2 exercises: Max-Forwards (§20.22), Expires (§20.19), Retry-After
(§20.33), Warning (§20.43), Date (§20.17) and the ``expires`` parameter of Contact (§20.10).
"""

from __future__ import annotations

import re
from typing import Final

from sipflow.sip import defects as d
from sipflow.sip import grammar as g
from sipflow.sip.address import _parse_name_addrs, _split_hostport
from sipflow.sip.defects import Defect
from sipflow.sip.message import CSeq, Via
from sipflow.sip.values import _generic_params, _shared, _simple_params, _split_values, _to_int

__all__ = ["parse_via_values"]

_MAX_CSEQ: Final = 2**31 - 1
"""RFC 3261 §8.1.1.5: the CSeq number MUST be less than 2**31."""
_MAX_DELTA_SECONDS: Final = 2**32 - 1
"""RFC 3261 §20.19/§20.33 delta-seconds, bounded as 32-bit values (RFC 4475 §3.1.2.4)."""
_MAX_MAX_FORWARDS: Final = 255
"""RFC 4475 §3.1.2.4: Max-Forwards values above 255 are overlarge."""
_VIA_FAST_RE: Final = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9_\-.]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    rf"((?:;{g.TOKEN}(?:=[^\s;,\"]*)?)*)"
)
"""The usual via-parm: ``SIP/2.0/UDP host:port;params`` without blanks or quotes."""
_CONTACT_EXPIRES_RE: Final = re.compile(r";[ \t]*expires[ \t]*=[ \t]*([0-9]+)", re.IGNORECASE)
_WARN_CODE_RE: Final = re.compile(r"[ \t]*([0-9]+)[ \t]")


# --- Via (RFC 3261 §20.42) -----------------------------------------------------------------------------


def _parse_via(text: str, sink: list[Defect] | None) -> Via | None:
    m = _VIA_FAST_RE.fullmatch(text)
    if m is not None:
        transport, host, port_digits, ptext = m.groups()
        fast_port = int(port_digits) if port_digits is not None else None
        if fast_port is None or fast_port <= 65535:
            return Via(
                protocol="SIP/2.0",
                transport=_shared(transport.upper()),
                host=_shared(host[1:-1] if host[0] == "[" else host),
                port=_shared(fast_port) if fast_port is not None else None,
                params=_simple_params(ptext) if ptext else (),
            )
    # RFC 3261 §20.42: via-parm = sent-protocol LWS sent-by *( SEMI via-params )
    m = g.VIA_SENT_PROTOCOL_RE.match(text)
    if m is None:
        if sink is not None:
            sink.append(d.BadVia(f"Via value is malformed: {text[:60]!r}."))
        return None
    rest = text[m.end() :]
    semi = rest.find(";")
    sent_by = (rest if semi < 0 else rest[:semi]).strip(" \t")
    host, port_text = _split_hostport(sent_by, sink, "Via sent-by")
    if sink is not None and ":" not in host and g.HOSTNAME_RE.fullmatch(host) is None:
        sink.append(d.ViaBadHost(f"Via sent-by host is malformed: {host[:40]!r}."))
    port: int | None = None
    if port_text:
        port = _to_int(port_text) if port_text.isdigit() and port_text.isascii() else None
        if port is None or port > 65535:
            if sink is not None:
                sink.append(d.ViaBadPort(f"Via sent-by port is bad: {port_text[:20]!r}."))
            port = None
    params = _generic_params(rest[semi:], sink, "Via") if semi >= 0 else ()
    name = m[1].upper()
    version = m[2]
    if sink is not None and (name != "SIP" or version != "2.0"):
        sink.append(d.ViaBadProtocol(f"Via has an unknown protocol {name}/{version}."))
    return Via(protocol=f"{name}/{version}", transport=m[3].upper(), host=host, port=port, params=params)


def _parse_vias(values: list[str], sink: list[Defect] | None) -> list[Via]:
    out: list[Via] = []
    for value in values:
        for part in _split_values(value):
            if not part:
                if sink is not None:
                    sink.append(d.EmptyListValue("Via has an empty value in its list."))
                continue
            via = _parse_via(part, sink)
            if via is not None:
                out.append(via)
    return out


def parse_via_values(value: str) -> list[Via]:
    """Parse one Via header value, possibly holding several comma-separated via-parms.

    Transport is upper-cased, the host of an IPv6 reference loses its brackets, parameter names
    are lower-cased. Malformed values are skipped.
    """
    return _parse_vias([value], None)


# --- CSeq, Content-Length and the scalar header fields (RFC 3261 §20) ---------------------------


def _parse_cseq(value: str, defects: list[Defect]) -> CSeq | None:
    """``CSeq = 1*DIGIT LWS Method`` (RFC 3261 §20.16; the number below 2**31, §8.1.1.5)."""
    m = g.CSEQ_RE.fullmatch(value)
    if m is None:
        defects.append(d.BadCSeq(f"CSeq is malformed: {value[:40]!r}."))
        return None
    seq = _to_int(m[1])
    if seq is None or seq > _MAX_CSEQ:
        defects.append(d.CSeqOverlarge("CSeq number is overlarge (RFC 3261 §8.1.1.5: below 2**31)."))
    return CSeq(seq, m[2]) if seq is not None else None


def _content_length(value: str, defects: list[Defect]) -> int | None:
    """``Content-Length = 1*DIGIT`` (§20.14); None (with a defect) when unusable."""
    if value.isdigit() and value.isascii():
        length = _to_int(value)
        if length is None:
            defects.append(d.ContentLengthOverlarge("Content-Length is overlarge."))
        return length
    if value[:1] == "-" and value[1:].isdigit():
        # RFC 4475 §3.1.2.3.
        defects.append(d.ContentLengthNegative(f"Content-Length is negative ({value[:20]})."))
    else:
        defects.append(d.ContentLengthNotNumber(f"Content-Length is not a number: {value[:20]!r}."))
    return None


def _check_scalars(found: dict[str, list[str]], defects: list[Defect]) -> None:
    """Range checks of the scalar headers RFC 4475 §3.1.2.4/§3.1.2.5/§3.1.2.12 exercise."""
    values = found.get("max-forwards")
    if values is not None:
        text = values[0]
        if not (text.isdigit() and text.isascii()):
            defects.append(d.MaxForwardsNotNumber(f"Max-Forwards is not a number: {text[:20]!r}."))
        elif len(text) > 10 or int(text) > _MAX_MAX_FORWARDS:
            defects.append(d.MaxForwardsOverlarge("Max-Forwards is overlarge (above 255)."))
    values = found.get("contact")
    if values is not None:
        for value in values:
            if "<" not in value or ";;" in value:
                # Rare shapes get the full check (RFC 4475 §3.1.2.1, §3.1.2.13).
                _parse_name_addrs(value, defects, "Contact")
            if "xpires" in value or "XPIRES" in value:
                for m in _CONTACT_EXPIRES_RE.finditer(value):
                    if len(m[1]) > 10 or int(m[1]) > _MAX_DELTA_SECONDS:
                        defects.append(d.ContactExpiresOverlarge("Contact expires parameter is overlarge."))
    values = found.get("expires")
    if values is not None:
        _check_delta_seconds("Expires", values[0], defects, (d.ExpiresNotNumber, d.ExpiresOverlarge))
    values = found.get("retry-after")
    if values is not None:
        value = values[0].partition("(")[0].partition(";")[0]
        _check_delta_seconds("Retry-After", value, defects, (d.RetryAfterNotNumber, d.RetryAfterOverlarge))
    values = found.get("warning")
    if values is not None:
        for value in values:
            for part in _split_values(value):
                code = _WARN_CODE_RE.match(part)
                if code is None or len(code[1]) != 3:
                    # RFC 3261 §20.43: warn-code = 3DIGIT.
                    defects.append(d.WarningCode("Warning code is not three digits."))
                    break
    values = found.get("date")
    if values is not None and g.RFC1123_DATE_RE.fullmatch(values[0]) is None:
        # RFC 3261 §20.17: rfc1123-date, always in GMT (RFC 4475 §3.1.2.12).
        defects.append(d.BadDate("Date is not an RFC 1123 date in GMT."))


def _check_delta_seconds(
    name: str, value: str, defects: list[Defect], kinds: tuple[type[Defect], type[Defect]]
) -> None:
    """``delta-seconds = 1*DIGIT`` (RFC 3261 §25.1), up to 2**32-1; ``kinds`` are the kinds of
    defect for a value that is not a number and for one that is overlarge."""
    text = value.strip()
    if not (text.isdigit() and text.isascii()):
        defects.append(kinds[0](f"{name} is not a number of seconds: {text[:20]!r}."))
    elif len(text) > 10 or int(text) > _MAX_DELTA_SECONDS:
        defects.append(kinds[1](f"{name} is overlarge (above 2**32-1)."))
