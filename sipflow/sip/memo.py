"""Bounded memos of the values a SIP message parse reads eagerly (RFC 3261 §7.1, §7.2, §20), sans-I/O.

The eagerly parsed values repeat across a capture: a response copies the Via, From, To, Call-ID
and CSeq of its request, retransmissions repeat everything, and status lines are few. Parsing
is a pure function of the value text and the results are frozen, so they are shared through
small bounded memos (cleared when full). Defects found while parsing a value are memoised too.
Memoised here: the start line (§7.1, §7.2), CSeq (§20.16), From (§20.20), To (§20.39) and Via
(§20.42); Call-ID is taken as written.
"""

from __future__ import annotations

from typing import Final

from sipflow.sip.address import _parse_name_addr
from sipflow.sip.defects import Defect
from sipflow.sip.fields import _parse_cseq, _parse_vias
from sipflow.sip.message import CSeq, NameAddr, Via
from sipflow.sip.startline import _start_line

_MEMO_MAX: Final = 2048

_START_MEMO: dict[str, tuple[tuple[str, str, str] | tuple[str, int, str], tuple[Defect, ...]]] = {}
_FROM_MEMO: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]] = {}
_TO_MEMO: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]] = {}
_VIA_MEMO: dict[str, tuple[tuple[Via, ...], tuple[Defect, ...]]] = {}
_CSEQ_MEMO: dict[str, tuple[CSeq | None, tuple[Defect, ...]]] = {}


def _memo_name_addr(
    memo: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]], value: str, what: str, defects: list[Defect]
) -> NameAddr | None:
    hit = memo.get(value)
    if hit is None:
        sink: list[Defect] = []
        hit = (_parse_name_addr(value, sink, what), tuple(sink))
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[value] = hit
    if hit[1]:
        defects.extend(hit[1])
    return hit[0]


def _memo_vias(values: list[str], defects: list[Defect]) -> tuple[Via, ...]:
    memo = _VIA_MEMO
    out: tuple[Via, ...] = ()
    for value in values:
        hit = memo.get(value)
        if hit is None:
            sink: list[Defect] = []
            hit = (tuple(_parse_vias([value], sink)), tuple(sink))
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[value] = hit
        if hit[1]:
            defects.extend(hit[1])
        out = hit[0] if not out else out + hit[0]
    return out


def _memo_cseq(value: str, defects: list[Defect]) -> CSeq | None:
    hit = _CSEQ_MEMO.get(value)
    if hit is None:
        sink: list[Defect] = []
        hit = (_parse_cseq(value, sink), tuple(sink))
        if len(_CSEQ_MEMO) >= _MEMO_MAX:
            _CSEQ_MEMO.clear()
        _CSEQ_MEMO[value] = hit
    if hit[1]:
        defects.extend(hit[1])
    return hit[0]


def _memo_start_line(line: str, defects: list[Defect]) -> tuple[str, str, str] | tuple[str, int, str]:
    hit = _START_MEMO.get(line)
    if hit is None:
        sink: list[Defect] = []
        hit = (_start_line(line, sink), tuple(sink))  # ParseError propagates, nothing stored
        if len(_START_MEMO) >= _MEMO_MAX:
            _START_MEMO.clear()
        _START_MEMO[line] = hit
    if hit[1]:
        defects.extend(hit[1])
    return hit[0]
