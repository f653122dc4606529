"""Read the head of a SIP message in Python (RFC 3261 §7, §7.3.1), sans-I/O.

The head is the start line and the header section up to the first empty line (§7: CRLF CRLF,
leniently LF LF). One pass over the header lines, unfolded first (§7.3.1), checks each header
name is a token and collects the values of the headers parsed eagerly (``_INTERESTING``); the
others stay in the raw bytes. The compiled scan ``sipflow.sip._scan`` does the same in C for a
plain message, with the same table of names (``_SCAN_NAMES``); this code reads every message
when it is not built, and the others when it is.
"""

from __future__ import annotations

from typing import Final

from sipflow.errors import ParseError
from sipflow.sip import defects as d
from sipflow.sip import grammar as g
from sipflow.sip.defects import Defect
from sipflow.sip.memo import _memo_start_line
from sipflow.sip.message import COMPACT_FORMS, canonical_name, fold_search, unfold

_INTERESTING: Final = frozenset(
    (
        "call-id",
        "cseq",
        "from",
        "to",
        "via",
        "content-length",
        "max-forwards",
        "content-type",
        "expires",
        "retry-after",
        "warning",
        "date",
        "contact",
    )
)
"""Canonical names the header loop collects for eager parsing or cheap checks."""
_SCAN_NAMES: Final = {
    **{name: name for name in _INTERESTING},
    **{short: long for short, long in COMPACT_FORMS.items() if long in _INTERESTING},
}
"""Lower-case header name (compact forms too) → canonical name, for ``_scan``."""


def _header_section_end(data: bytes, start: int) -> tuple[int, int]:
    """(end of the last header line, start of the body) for the first empty line.

    Accepts CRLF CRLF, and leniently LF LF or a mix (RFC 3261 §7 wants CRLF). Returns
    ``(-1, -1)`` when there is no empty line.
    """
    i = data.find(b"\n\r\n", start)
    j = data.find(b"\n\n", start, i + 1 if i >= 0 else len(data))
    if j >= 0:
        return j, j + 2
    if i >= 0:
        return i, i + 3
    return -1, -1


_EAGER: dict[str, str] = {}
"""Header name as written → its canonical name if the parser collects it, else ``""``.

Only names that are valid tokens are remembered, so a bad name is reported every time."""
_EAGER_MAX: Final = 4096


def _learn_name(name: str, defects: list[Defect]) -> str:
    """The ``_EAGER`` entry for a header name not seen before (validating it, §7.3.1).

    Only valid tokens are remembered, so a bad name is reported every time; so are names with
    blanks before the colon, which ``parse_message`` must strip each time.
    """
    stripped = name.rstrip(" \t")
    key = canonical_name(stripped)
    key = key if key in _INTERESTING else ""
    if g.TOKEN_RE.fullmatch(stripped) is None:
        defects.append(d.HeaderNameNotToken(f"Header name {stripped[:40]!r} is not a token."))
    elif stripped is name and len(_EAGER) < _EAGER_MAX:
        _EAGER[name] = key
    return key


_StartLine = tuple[str, str, str] | tuple[str, int, str]
_Head = tuple[int, _StartLine, dict[str, list[str]], bool, int, int, int, bool, list[Defect]]
"""What reading the head of a message gives: (start, parsed start line, collected header values,
whether one of them repeats, end of the header section, start of the body, end of the start
line or -1, whether the header lines are plain, defects so far)."""


def _read_head(data: bytes) -> _Head:
    """Read the start line and collect the values of the headers parsed eagerly (``_INTERESTING``).

    ``sipflow.sip._scan`` does this in C for a plain message (the common case); this is the
    Python code for every message, and the only code for the others."""
    n = len(data)
    start = 0
    if data[:1] in (b"\r", b"\n"):
        start = n - len(data.lstrip(b"\r\n"))
        if start >= n:
            raise ParseError("no data, only line breaks", offset=start)
    elif not n:
        raise ParseError("no data", offset=0)
    defects: list[Defect] = []
    # The header section ends at the first empty line (§7): CRLF CRLF normally.
    head_end = data.find(b"\r\n\r\n", start)
    if head_end >= 0:
        body_start = head_end + 4
        text = data[start:head_end].decode("utf-8", "replace")
        lines = text.split("\r\n")
        if text.count("\n") != len(lines) - 1:
            head_end = -1  # a bare LF: an earlier LF LF may end the section
    if head_end < 0:
        head_end, body_start = _header_section_end(data, start)
        if head_end < 0:
            if data[-1:] != b"\n":
                raise ParseError("no end of the header section", offset=n)
            defects.append(d.NoBlankLine("No empty line ends the header section."))
            body_start = n
            head_end = n - 1  # the final LF; a CR before it goes below
        if data[head_end - 1 : head_end] == b"\r":
            head_end -= 1
        text = data[start:head_end].decode("utf-8", "replace")
        if text.count("\n") != text.count("\r\n"):
            defects.append(d.BareLineFeed("Lines end in bare LF instead of CRLF."))
            text = text.replace("\r\n", "\n")
            lines = text.split("\n")
        else:
            lines = text.split("\r\n")
    first = lines[0]
    del lines[0]
    folded = bool(lines) and fold_search(text) is not None
    if folded:
        lines = unfold(lines, defects)

    # One pass over the header lines collects the values of the headers parsed eagerly; the
    # others stay in the raw bytes (``Headers`` splits them on request).
    found: dict[str, list[str]] = {}
    eager = _EAGER.get
    repeated = colonless = odd_names = False
    name_defects: list[Defect] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            colonless = True
            continue
        key = eager(name)
        if key is None:
            key = _learn_name(name, name_defects)
            odd_names = odd_names or not name.isascii()
        if key:
            bucket = found.get(key)
            if bucket is None:
                found[key] = [value.strip(" \t")]
            else:
                bucket.append(value.strip(" \t"))
                repeated = True
    if colonless:
        defects.extend(
            d.HeaderLineNoColon(f"Header line has no colon: {line[:40]!r}.")
            for line in lines
            if ":" not in line
        )
    parsed_start = _memo_start_line(first, defects)
    defects.extend(name_defects)
    first_end = data.find(b"\n", start, head_end)
    return (start, parsed_start, found, repeated, head_end, body_start, first_end, not (folded or odd_names),
            defects)  # fmt: skip
