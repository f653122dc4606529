"""JSON schema 1 (documented in README.md): fields may be added later, none removed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sipflow.media.collector import RtpStream
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call, CallOutcome, CallState, Leg, LegOutline, leg_outcome, outline_outcome
from sipflow.model.media import call_dtmf, stream_sdp, streams_by_call
from sipflow.model.message import MatchedBy
from sipflow.model.transaction import Transaction
from sipflow.render.media import dtmf_dict, stream_dict
from sipflow.render.text import iso

SCHEMA = 1


def _uri(leg: Leg, which: str) -> str | None:
    addr = leg.from_ if which == "from" else leg.to
    return addr.uri.raw if addr is not None else None


def transaction_dict(tx: Transaction) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": tx.method,
        "branch": tx.branch,
        "cseq": tx.cseq,
        "src": str(tx.client),
        "dst": str(tx.server),
        "final_status": tx.final_status,
        "messages": len(tx.messages),
        "retransmissions": tx.retransmissions,
        "frames": [m.frame for m in tx.messages],
    }
    copies = [[file, frame] for m in tx.messages for file, frame in m.copies]
    if copies:
        out["copies"] = copies
    by_cseq = [m.frame for m in tx.messages if m.matched_by is MatchedBy.CSEQ]
    if by_cseq:
        # Messages whose Via is missing or names no transaction, matched by Call-ID and CSeq.
        out["matched_by_cseq"] = by_cseq
    return out


def leg_dict(leg: Leg, call: Call | None = None) -> dict[str, Any]:
    """``call``: the leg's call, whose outcome is the leg's own when it is its only leg."""
    state, final_status = _leg_state(leg, call)
    return {"call_id": leg.call_id, "state": state.value, "final_status": final_status, **_leg_rest(leg)}


def _leg_state(leg: Leg, call: Call | None) -> tuple[CallState, int | None]:
    if call is not None and len(call.legs) == 1 and call.legs[0] is leg:
        return call.state, call.final_status
    return leg_outcome(leg)  # the leg's own, besides the call's (caller's view)


def _leg_rest(leg: Leg) -> dict[str, Any]:
    """``leg_dict`` after ``final_status``: what does not depend on the leg's call."""
    return {
        "from": _uri(leg, "from"),
        "to": _uri(leg, "to"),
        "hops": [[str(a), str(b)] for a, b in leg.hops],
        "dialogs": [
            {"from_tag": d.from_tag, "to_tag": d.to_tag, "state": d.state.value, "created_by": d.created_by}
            for d in leg.dialogs
        ],
        "transactions": [transaction_dict(tx) for tx in leg.transactions],
        "messages": len(leg.messages),
    }


def call_dict(call: Call) -> dict[str, Any]:
    return {**_call_head(call), "legs": [leg_dict(leg, call) for leg in call.legs], **_call_tail(call)}


def _call_head(call: Call) -> dict[str, Any]:
    """``call_dict`` before ``legs``."""
    return _head(call, len(call.messages), call.retransmissions)


def _head(call: Call | CallOutcome, messages: int, retransmissions: int) -> dict[str, Any]:
    return {
        "id": call.id,
        "index": call.index,
        "kind": call.kind.value,
        "state": call.state.value,
        "final_status": call.final_status,
        "start": iso(call.start),
        "pdd_ms": call.pdd_ms,
        "setup_ms": call.setup_ms,
        "duration_s": call.duration_s,
        "messages": messages,
        "retransmissions": retransmissions,
    }


def _call_tail(call: Call | CallOutcome) -> dict[str, Any]:
    """``call_dict`` after ``legs``."""
    out: dict[str, Any] = {
        "correlation": [
            {
                "legs": list(link.legs),
                "method": link.method,
                "confidence": link.confidence,
                "evidence": list(link.evidence),
            }
            for link in call.correlation
        ],
        "related": list(call.related),
    }
    if call.expires_s is not None:
        # A registration's (or a subscription's) granted expiry, in seconds.
        out["expires_s"] = call.expires_s
    return out


LegText = tuple[str, str]
"""A leg's compact JSON in ``call_dict``, cut around its state and final status (which may be
its call's): ``leg_text`` makes it before the call is known, ``entry_text_of`` uses it."""

_COMPACT: Final = (",", ":")
_compact: Final = json.JSONEncoder(separators=_COMPACT, ensure_ascii=True).encode
"""``json.dumps(o, separators=_COMPACT, ensure_ascii=True)`` without making an encoder per call."""


def leg_text(leg: Leg) -> LegText:
    """The ``LegText`` of ``leg``."""
    return '{"call_id":' + _compact(leg.call_id), _compact(_leg_rest(leg))[1:]


def entry_text_of(call: Call, legs: Sequence[LegText]) -> str:
    """``entry_text(call)`` (compact, without flow or media) from its legs' ``leg_text``."""
    texts = []
    for leg, (head, rest) in zip(call.legs, legs, strict=True):
        state, final_status = _leg_state(leg, call)
        texts.append(_leg_joined(head, state, final_status, rest))
    return _entry_joined(_call_head(call), texts, call)


def member_text(leg: Leg, text: LegText) -> str:
    """The compact JSON of ``leg`` (its ``leg_text``, ``text``) in a call of several legs,
    where a leg's state is its own."""
    state, final_status = leg_outcome(leg)
    return _leg_joined(text[0], state, final_status, text[1])


def outline_member_text(outline: LegOutline, text: LegText) -> str:
    """``member_text`` of the leg that ``outline`` outlines, from its outline and ``leg_text``."""
    state, final_status = outline_outcome(outline)
    return _leg_joined(text[0], state, final_status, text[1])


def single_entry_text(call: CallOutcome, text: LegText | str) -> str:
    """``entry_text`` (compact, without flow or media) of a call of one leg from its outcome
    and the leg's ``leg_text`` (or the leg's JSON in it, ``EntryCut.member``): the leg takes
    the call's state, as in ``entry_text_of``."""
    if not isinstance(text, str):
        text = _leg_joined(text[0], call.state, call.final_status, text[1])
    return _entry_joined(_head(call, call.messages, call.retransmissions), [text], call)


@dataclass(frozen=True, slots=True)
class EntryCut:
    """A call's entry of one leg made before the call has its number: ``numbered(n)`` is its
    entry as call ``n`` with no related Call-IDs (``single_entry_cut``)."""

    before: str
    """Up to the value of ``index``."""
    after: str
    """After it."""
    start: int
    """Where the leg's JSON begins in ``after``."""
    end: int

    def numbered(self, index: int) -> str:
        return f"{self.before}{index}{self.after}"

    @property
    def member(self) -> str:
        """The leg's JSON in it (the leg's state being the call's, as a call of one leg)."""
        return self.after[self.start : self.end]


def single_entry_cut(call: CallOutcome, text: LegText) -> EntryCut:
    """``single_entry_text(call, text)`` cut around the call's index, for ``call`` (of one leg,
    without links or related Call-IDs) numbered anything."""
    member = _leg_joined(text[0], call.state, call.final_status, text[1])
    before = '{"id":' + _compact(call.id) + ',"index":'
    whole = single_entry_text(call, member)
    number = str(call.index)
    assert whole.startswith(before + number + ","), whole[:200]
    after = whole[len(before) + len(number) :]
    start = after.index(',"legs":[') + len(',"legs":[')
    return EntryCut(before, after, start, start + len(member))


def outlined_entry_text(call: CallOutcome, legs: Sequence[str]) -> str:
    """``entry_text`` (compact, without flow or media) of a call of several legs from its
    outcome and each leg's ``member_text``, in the call's order."""
    return _entry_joined(_head(call, call.messages, call.retransmissions), legs, call)


def _leg_joined(head: str, state: CallState, final_status: int | None, rest: str) -> str:
    return f'{head},"state":{json.dumps(state.value)},"final_status":{json.dumps(final_status)},{rest}'


def _entry_joined(head: dict[str, Any], legs: Sequence[str], call: Call | CallOutcome) -> str:
    return "".join((
        _compact(head)[:-1],
        ',"legs":[',
        ",".join(legs),
        "],",
        _compact(_call_tail(call))[1:],
    ))  # fmt: skip


def flow(call: Call) -> list[dict[str, Any]]:
    """Every message of a call in capture order (``sipflow export … -o x.json``)."""
    leg_of = {m.index: i for i, leg in enumerate(call.legs) for m in leg.messages}
    out = []
    for message in call.messages:
        item: dict[str, Any] = {
            "time": iso(message.timestamp),
            "timestamp": message.timestamp,
            "src": str(message.src),
            "dst": str(message.dst),
            "transport": message.transport.value,
            "first_line": message.sip.first_line,
            "call_id": message.sip.call_id,
            "leg": leg_of.get(message.index, 0),
            "file": message.file,
            "frame": message.frame,
            "frames": list(message.frames),
            "retransmission": message.retransmission,
            "matched_by": message.matched_by.value,
        }
        if message.copies:
            item["copies"] = [list(copy) for copy in message.copies]
        if message.sip.defects:
            item["defects"] = list(message.sip.defects)
        out.append(item)
    return out


def analysis_dict(analysis: Analysis, calls: Iterable[Call], *, with_flow: bool = False) -> dict[str, Any]:
    media = _media_by_call(analysis)
    streams = streams_by_call(analysis.calls, analysis.media) if media is not None else None
    return _document(
        analysis,
        [call_json(c, with_flow=with_flow, media=media, streams=streams) for c in calls],
        media,
    )


def call_json(
    call: Call,
    *,
    with_flow: bool = False,
    media: Mapping[int, list[dict[str, Any]]] | None = None,
    streams: Mapping[int, list[RtpStream]] | None = None,
) -> dict[str, Any]:
    """One entry of the document's ``calls``; with ``media`` (the streams' JSON by call index,
    when the media was measured), its ``media``, and with ``streams`` (the streams by call
    index) its ``dtmf``: the digits of its RTP and its SIP INFO requests."""
    out = call_dict(call)
    if media is not None:
        out["media"] = media.get(call.index, [])
    if streams is not None:
        out["dtmf"] = [dtmf_dict(d) for d in call_dtmf(call, streams.get(call.index, ()))]
    return out | ({"flow": flow(call)} if with_flow else {})


def _media_by_call(analysis: Analysis) -> dict[int, list[dict[str, Any]]] | None:
    """The measured streams as JSON objects by call index (-1: unlinked, as ``streams_by_call``
    keys them); None if the media was not measured."""
    if not analysis.media_measured:
        return None
    calls = {call.index: call for call in analysis.calls}
    out: dict[int, list[dict[str, Any]]] = {}
    for index, streams in streams_by_call(analysis.calls, analysis.media).items():
        call = calls.get(index)
        described = stream_sdp(call, streams) if call is not None else [None] * len(streams)
        out[index] = [stream_dict(s, call, d) for s, d in zip(streams, described, strict=True)]
    return out


def _document(
    analysis: Analysis, calls: list[Any], media: Mapping[int, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    s = analysis.summary
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "files": list(analysis.files),
        "summary": {
            "packets": s.packets,
            "sip_messages": s.sip_messages,
            "malformed": s.malformed,
            "non_sip_packets": s.non_sip_packets,
            "non_sip": dict(sorted(s.non_sip.items())),
            "retransmissions": s.retransmissions,
            "calls": s.calls,
            "items": s.items,
            "partial": s.partial,
        },
        "calls": calls,
        "malformed": [
            {"file": m.file, "frame": m.frame, "src": str(m.src), "dst": str(m.dst), "reason": m.reason}
            for m in analysis.malformed
        ],
        "warnings": [str(w) for w in analysis.warnings],
    }
    if media is not None:
        out["unlinked_media"] = media.get(-1, [])
    if s.untracked:
        # Messages left out over the Call-ID limit (``analyze(max_call_ids=...)``).
        out["summary"]["untracked"] = s.untracked
    if len(analysis.files) > 1 or len(s.capture_points) > 1 or s.skew or s.duplicates:
        # Several capture points, or copies at one: messages merged, and the clock skews taken out.
        out["summary"].update(
            duplicates=s.duplicates,
            doubled=s.doubled,
            skew=dict(s.skew),
            capture_points=[
                {
                    "name": p.name,
                    "file": p.file,
                    "interface": p.interface,
                    "interface_name": p.interface_name,
                    "skew": p.skew,
                }
                for p in s.capture_points
            ],
        )
    return out


def dumps(
    analysis: Analysis, calls: Iterable[Call], *, indent: int | None = None, with_flow: bool = False
) -> str:
    """Schema-1 JSON text; packet text is escaped by the JSON encoder (``ensure_ascii``).

    Compact by default: the standard library's C encoder only serves ``indent=None``, and a
    capture may hold tens of thousands of calls (pipe into ``jq`` to read it)."""
    separators = (",", ":") if indent is None else (",", ": ")
    document = analysis_dict(analysis, calls, with_flow=with_flow)
    return json.dumps(document, indent=indent, separators=separators, ensure_ascii=True)


_CALLS_MARK = "\x00sipflow:calls\x00"
"""Stands for the calls in the document's skeleton (a NUL: no file name or text holds it raw)."""


def iter_dumps(
    analysis: Analysis, calls: Iterable[Call], *, indent: int | None = None, with_flow: bool = False
) -> Iterator[str]:
    """The text of ``dumps``, in pieces: a call's entry is built, encoded and handed out before
    the next one is built, so the document is never whole in memory."""
    media = _media_by_call(analysis)
    streams = streams_by_call(analysis.calls, analysis.media) if media is not None else None
    entries = (entry_text(c, indent=indent, with_flow=with_flow, media=media, streams=streams) for c in calls)
    pieces = iter_document(analysis, entries, indent=indent, media=media)
    if pieces is None:  # cannot happen; then in one piece, as ``dumps``
        yield dumps(analysis, calls, indent=indent, with_flow=with_flow)
        return
    yield from pieces


def entry_text(
    call: Call,
    *,
    indent: int | None = None,
    with_flow: bool = False,
    media: Mapping[int, list[dict[str, Any]]] | None = None,
    streams: Mapping[int, list[RtpStream]] | None = None,
) -> str:
    """One call's entry of ``iter_dumps``, encoded (``call_json``'s arguments)."""
    entry = call_json(call, with_flow=with_flow, media=media, streams=streams)
    if indent is None:
        return _compact(entry)
    text = json.dumps(entry, indent=indent, separators=(",", ": "), ensure_ascii=True)
    return text.replace("\n", "\n" + " " * (2 * indent))  # JSON strings hold no raw line break


def iter_document(
    analysis: Analysis,
    entries: Iterable[str],
    *,
    indent: int | None = None,
    media: Mapping[int, list[dict[str, Any]]] | None = None,
) -> Iterator[str] | None:
    """The document of ``analysis`` with ``entries`` (``entry_text`` of each call, made here
    or elsewhere: ``sipflow.shard``) as its calls; ``analysis.calls`` is not read."""
    separators = (",", ":") if indent is None else (",", ": ")
    skeleton = json.dumps(
        _document(analysis, [_CALLS_MARK], media), indent=indent, separators=separators, ensure_ascii=True
    )
    token = json.dumps(_CALLS_MARK, ensure_ascii=True)
    outer = "" if indent is None else "\n" + " " * indent
    inner = "" if indent is None else "\n" + " " * (2 * indent)
    marker = f"[{inner}{token}{outer}]"
    head, found, tail = skeleton.partition(marker)
    if not found or marker in tail:
        return None
    return _pieces(head, entries, inner, outer, tail)


def _pieces(head: str, entries: Iterable[str], inner: str, outer: str, tail: str) -> Iterator[str]:
    yield head + "["
    count = 0
    for text in entries:
        yield ("," if count else "") + inner + text
        count += 1
    yield (outer if count else "") + "]" + tail
