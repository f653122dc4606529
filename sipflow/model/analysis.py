"""The result of an analysis: every call, message and transaction, and a summary."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sipflow.capture.types import CaptureWarning
from sipflow.media.collector import RtpStream
from sipflow.model.call import Call, CallKind, CallOutcome, CallState
from sipflow.model.dialog import Dialog
from sipflow.model.message import Malformed, Message
from sipflow.model.transaction import Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturePoint:
    """Where packets were captured: one file, or one interface of a pcapng file that has
    several (two probes merged with ``mergecap``, say)."""

    name: str
    """``FILE``, or ``FILE#N`` for interface N of a file with several."""
    file: str
    interface: int
    """The pcapng interface id (0 for pcap)."""
    interface_name: str = ""
    """The interface's ``if_name`` where the file gives one."""
    skew: float = 0.0
    """Seconds this point's clock runs ahead of the first point's (taken out of its times)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """Counts over the whole analysis."""

    files: tuple[str, ...]
    packets: int
    """Frames read from the files."""
    sip_messages: int
    """SIP messages parsed (retransmissions included)."""
    malformed: int
    """Payloads that looked like SIP but could not be parsed."""
    non_sip_packets: int
    non_sip: Mapping[str, int]
    """Frames without SIP, by kind (RTP, TLS, DNS, other UDP...)."""
    unsupported: Mapping[str, int]
    """Frames that could not be decoded, by reason."""
    retransmissions: int
    calls: int
    """Items of kind ``call``."""
    items: int
    """Items of every kind (one per Call-ID, for now)."""
    partial: bool
    """The result is partial: some file could not be read to its end (truncated or corrupt),
    or ``untracked`` messages were left out."""
    first_time: float | None
    last_time: float | None
    duplicates: int = 0
    """Further captures of a message folded into it (``sipflow.merge``): at another capture
    point, or the same datagram twice at one."""
    doubled: int = 0
    """Of ``duplicates``, those of a datagram seen again at the same capture point."""
    incomplete_files: tuple[str, ...] = ()
    """Files that could not be read to their end (truncated or corrupt)."""
    untracked: int = 0
    """SIP messages left out because their Call-ID came after the limit on Call-IDs
    (``analyze(max_call_ids=...)``) was reached; not counted in ``sip_messages``."""
    skew: Mapping[str, float] = field(default_factory=dict)
    """Clock skew of each capture point (``CapturePoint.name``) whose clock was corrected:
    seconds it runs ahead of the first point's (estimated, or given); subtracted from its
    timestamps. Points at 0 are left out."""
    capture_points: tuple[CapturePoint, ...] = ()
    """Every capture point read, in order: the files, or the interfaces of files with several."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """Everything sipflow learnt from a set of capture files."""

    files: tuple[str, ...]
    summary: Summary
    calls: tuple[Call, ...]
    """Every item (calls, registrations, subscriptions, OPTIONS...), in start order."""
    messages: tuple[Message, ...]
    malformed: tuple[Malformed, ...]
    transactions: tuple[Transaction, ...]
    dialogs: tuple[Dialog, ...]
    warnings: tuple[CaptureWarning, ...]
    media: tuple[RtpStream, ...] = ()
    """The RTP streams, measured (``analyze(media=True)``; empty otherwise), in order of their
    first packet."""
    media_measured: bool = False
    """Whether the media was measured (``analyze(media=True)``): ``media`` empty then means no RTP."""

    def select(
        self,
        *,
        all_kinds: bool = False,
        call_id: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        state: Iterable[str] | None = None,
        index: int | None = None,
        since: float | None = None,
        until: float | None = None,
        status: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Call]:
        """Filter the items: calls only unless ``all_kinds``; substring matches on From/To
        (URI or user, case-insensitive); exact Call-ID (any leg); state names; started at
        ``since`` or later and before ``until`` (epoch seconds); final ``status`` (``486``, or
        a class: ``4xx``); ``headers``: (name, text) pairs, each a header of that name in a
        message of the call containing the text (case-insensitive)."""
        matches = call_filter(
            all_kinds=all_kinds, call_id=call_id, from_=from_, to=to, state=state, index=index, since=since,
            until=until, status=status, headers=headers,
        )  # fmt: skip
        return [call for call in self.calls if matches(call)]


def status_matcher(status: str) -> Callable[[int | None], bool]:
    """What ``select(status=...)`` keeps: a status code (``486``) or a class (``4xx``, ``4``).
    Raises ValueError for anything else."""
    text = status.strip().lower()
    if len(text) == 3 and text[0] in "123456" and text[1:] == "xx":
        text = text[0]
    if len(text) == 1 and text in "123456":
        klass = int(text)
        return lambda code: code is not None and code // 100 == klass
    if len(text) == 3 and text.isdigit() and 100 <= int(text) <= 699:
        code_wanted = int(text)
        return lambda code: code == code_wanted
    raise ValueError(f"status {status!r}: expected a code such as 486 or a class such as 4xx")


def _has_header(call: Call, name: str, text: str) -> bool:
    for message in call.messages:
        for value in message.sip.headers.get_all(name):
            if text in value.lower():
                return True
    return False


def _addr_matches(call: Call, needle: str, which: str) -> bool:
    needle = needle.lower()
    for leg in call.legs:
        addr = leg.from_ if which == "from" else leg.to
        if addr is None:
            continue
        texts = [addr.uri.raw, addr.uri.user or "", addr.display_name or ""]
        if any(needle in t.lower() for t in texts):
            return True
    return False


def call_filter(
    *,
    all_kinds: bool = False,
    call_id: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    state: Iterable[str] | None = None,
    index: int | None = None,
    since: float | None = None,
    until: float | None = None,
    status: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Callable[[Call], bool]:
    """``Analysis.select``'s test of one call (its arguments): true for a call it selects."""
    decided = outcome_filter(
        all_kinds=all_kinds,
        call_id=call_id,
        state=state,
        index=index,
        since=since,
        until=until,
        status=status,
    )
    wanted = [(name, text.lower()) for name, text in headers]

    def matches(call: Call) -> bool:
        if not decided(call):
            return False
        if from_ is not None and not _addr_matches(call, from_, "from"):
            return False
        if to is not None and not _addr_matches(call, to, "to"):
            return False
        return not wanted or all(_has_header(call, name, text) for name, text in wanted)

    return matches


def outcome_filter(
    *,
    all_kinds: bool = False,
    call_id: str | None = None,
    state: Iterable[str] | None = None,
    index: int | None = None,
    since: float | None = None,
    until: float | None = None,
    status: str | None = None,
) -> Callable[[Call | CallOutcome], bool]:
    """The part of ``call_filter`` that a call's outcome decides (without its legs'
    addresses and headers): for a ``CallOutcome`` as for a ``Call``."""
    states = {CallState(s) for s in state} if state else None
    statuses = status_matcher(status) if status is not None else None

    def matches(call: Call | CallOutcome) -> bool:
        if index is not None:
            if call.index != index:
                return False
        elif not all_kinds and call_id is None and call.kind is not CallKind.CALL:
            return False
        if call_id is not None and call_id not in call.call_ids:
            return False
        if states is not None and call.state not in states:
            return False
        if since is not None and call.start < since:
            return False
        if until is not None and call.start >= until:
            return False
        return statuses is None or statuses(call.final_status)

    return matches
