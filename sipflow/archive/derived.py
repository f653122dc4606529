"""What the analysis made of some packets, as rows of the derived tables (``schema.DERIVED``):
messages, transactions, dialogs, legs, calls, correlation, findings and the addresses the calls'
SDP described (``sdp_addresses``), keyed by ``call_key``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sipflow.archive.files import time_ns
from sipflow.model.call import Call, Leg, leg_outcome
from sipflow.model.media import described_addresses
from sipflow.sip.message import SipRequest

if TYPE_CHECKING:
    import pyarrow as pa

    from sipflow.checks.finding import Finding
    from sipflow.model.message import Message


@dataclass(frozen=True, slots=True)
class PacketRef:
    """Where a message's packet is in ``packets``, and its capture point."""

    file_id: int
    seq: int
    interface: int


Locate = Callable[["Message"], PacketRef]
"""The packet row of a message of the analysis."""
InterfaceOf = Callable[[str, int], int]
"""The interface of frame N of a file (for the capture points of a message's copies)."""


def _user(addr: Any) -> str | None:
    return addr.uri.user if addr is not None else None


def _uri(addr: Any) -> str | None:
    return addr.uri.raw if addr is not None else None


def order_start(call: Call) -> float:
    """When a call starts, as ``correlate`` orders calls: its legs' initial INVITEs (a leg
    without one: its first message)."""
    out = []
    for leg in call.legs:
        invite = next(
            (
                m
                for m in leg.messages
                if isinstance(m.sip, SipRequest) and m.sip.method == "INVITE" and m.sip.to_tag is None
            ),
            None,
        )
        out.append(invite.timestamp if invite is not None else leg.start)
    return min(out)


def point_name(file: str, interface: int, multi: bool) -> str:
    """The capture point a packet of ``file`` on ``interface`` was seen at, named as the
    pipeline names it (``multi``: the file has several interfaces)."""
    return f"{file}#{interface}" if interface or multi else file


class Rows:
    """Columns of each derived table, filled call by call, then made Arrow tables."""

    def __init__(self) -> None:
        from sipflow.archive.schema import DERIVED, TABLES  # noqa: PLC0415

        self.columns: dict[str, dict[str, list[Any]]] = {}
        for name in DERIVED:
            names = [line.split()[0] for line in TABLES[name].strip().splitlines()]
            self.columns[name] = {n: [] for n in names}

    def add(self, table: str, **values: Any) -> None:
        columns = self.columns[table]
        for name, column in columns.items():
            column.append(values[name])

    def tables(self) -> dict[str, pa.Table]:
        import pyarrow as pa  # noqa: PLC0415

        return {name: pa.table(cols) for name, cols in self.columns.items()}


def call_rows(
    rows: Rows,
    call: Call,
    key: int,
    *,
    locate: Locate,
    interface_of: InterfaceOf,
    multi: Mapping[str, bool],
    position_base: int,
) -> None:
    """The rows of one call, ``key`` its ``call_key``; a message's ``position`` is its index
    in the analysis plus ``position_base``. ``multi``: the files with several interfaces."""
    first = call.messages[0]
    ref0 = locate(first)
    rows.add(
        "calls",
        call_key=key,
        call_index=call.index,
        id=call.id,
        kind=call.kind.value,
        state=call.state.value,
        final_status=call.final_status,
        final_reason=call.final_reason,
        start_ns=time_ns(call.start),
        end_ns=time_ns(call.end),
        pdd_ms=call.pdd_ms,
        setup_ms=call.setup_ms,
        duration_s=call.duration_s,
        messages=len(call.messages),
        retransmissions=call.retransmissions,
        legs=len(call.legs),
        from_uri=_uri(call.legs[0].from_),
        to_uri=_uri(call.legs[0].to),
        from_user=_user(call.legs[0].from_),
        to_user=_user(call.legs[0].to),
        call_ids=[leg.call_id for leg in call.legs],
        related=list(call.related),
        expires_s=call.expires_s,
        order_start=order_start(call),
        order_file=ref0.file_id,
        order_seq=ref0.seq,
    )
    for link in call.correlation:
        rows.add(
            "correlation",
            call_key=key,
            leg_a=link.legs[0],
            leg_b=link.legs[1],
            method=link.method,
            confidence=link.confidence,
            evidence=list(link.evidence),
        )
    for n, leg in enumerate(call.legs):
        _leg_rows(rows, call, leg, n, key, locate, interface_of, multi, position_base)
    for (address, port), message in described_addresses(call):
        rows.add("sdp_addresses", call_key=key, address=address, port=port, timestamp=message.timestamp)


def _leg_rows(
    rows: Rows,
    call: Call,
    leg: Leg,
    n: int,
    key: int,
    locate: Locate,
    interface_of: InterfaceOf,
    multi: Mapping[str, bool],
    position_base: int,
) -> None:
    if len(call.legs) == 1:
        state, final_status = call.state, call.final_status
    else:
        state, final_status = leg_outcome(leg)
    rows.add(
        "legs",
        call_key=key,
        leg=n,
        call_id=leg.call_id,
        state=state.value,
        final_status=final_status,
        from_uri=_uri(leg.from_),
        to_uri=_uri(leg.to),
        from_user=_user(leg.from_),
        to_user=_user(leg.to),
        from_display=leg.from_.display_name if leg.from_ is not None else None,
        to_display=leg.to.display_name if leg.to is not None else None,
        messages=len(leg.messages),
        first_ns=time_ns(leg.start),
        last_ns=time_ns(leg.end),
    )
    for position, dialog in enumerate(leg.dialogs):
        rows.add(
            "dialogs",
            call_key=key,
            leg=n,
            position=position,
            call_id=dialog.id.call_id,
            from_tag=dialog.id.from_tag,
            to_tag=dialog.id.to_tag,
            state=dialog.state.value,
            created_by=dialog.created_by,
        )
    for position, tx in enumerate(leg.transactions):
        rows.add(
            "transactions",
            call_key=key,
            leg=n,
            position=position,
            method=tx.method,
            branch=tx.branch,
            cseq=tx.cseq,
            client=str(tx.client),
            server=str(tx.server),
            final_status=tx.final_status,
            messages=len(tx.messages),
            retransmissions=tx.retransmissions,
            first_ns=time_ns(tx.messages[0].timestamp) if tx.messages else 0,
        )
    for m in leg.messages:
        ref = locate(m)
        sip = m.sip
        request = isinstance(sip, SipRequest)
        cseq = sip.cseq
        points = {(m.file, ref.interface)} | {(f, interface_of(f, frame)) for f, frame in m.copies}
        rows.add(
            "messages",
            file_id=ref.file_id,
            seq=ref.seq,
            position=position_base + m.index,
            call_key=key,
            leg=n,
            file=m.file,
            frame=m.frame,
            time_ns=time_ns(m.timestamp),
            timestamp=m.timestamp,
            capture_point=point_name(m.file, ref.interface, multi.get(m.file, False)),
            src=str(m.src),
            dst=str(m.dst),
            transport=m.transport.value,
            is_request=request,
            method=sip.method if isinstance(sip, SipRequest) else None,
            status=None if isinstance(sip, SipRequest) else sip.status,
            reason=None if isinstance(sip, SipRequest) else sip.reason,
            call_id=sip.call_id or "",
            cseq=cseq.seq if cseq is not None else None,
            cseq_method=cseq.method if cseq is not None else None,
            branch=sip.branch,
            from_tag=sip.from_tag,
            to_tag=sip.to_tag,
            from_user=_user(sip.from_),
            to_user=_user(sip.to),
            request_uri=sip.uri if isinstance(sip, SipRequest) else None,
            retransmission=m.retransmission,
            matched_by=m.matched_by.value,
            copies=[{"file": f, "frame": frame} for f, frame in m.copies],
            doubled=1 + len(m.copies) - len(points),
        )


def finding_rows(rows: Rows, findings: Sequence[Finding], keys: Mapping[int, int]) -> None:
    """The rows of ``findings``; ``keys``: the call_key of each call index."""
    for f in findings:
        rows.add(
            "findings",
            call_key=keys.get(f.call_index) if f.call_index is not None else None,
            rule=f.rule,
            severity=f.severity.value,
            message=f.message,
            call_id=f.call_id,
            frames=[{"file": file, "frame": frame} for file, frame in f.frames],
            cause=f.cause,
        )
