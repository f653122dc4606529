"""Transactions as an observer sees them (RFC 3261 §17).

A transaction is one request, its retransmissions, its provisional and final responses and,
for an INVITE answered with a non-2xx final response, the ACK that completes it
(§17.1.1.3). An ACK for a 2xx is a transaction of its own (§13.2.2.4, §17.1.1.3); a CANCEL
is its own transaction, linked to the INVITE it cancels (§9.1). Matching follows §17.1.3
(responses: top Via branch + sent-by + CSeq method) and §17.2.3 (requests: branch +
sent-by + method, ACK matching the INVITE), with the RFC 2543 fallback (§17.2.3, last
paragraphs) where the branch lacks the ``z9hG4bK`` magic cookie.
"""

from __future__ import annotations

from collections.abc import Reversible
from dataclasses import dataclass, field
from typing import NamedTuple

from sipflow.capture.types import Endpoint
from sipflow.model.message import MatchedBy, Message
from sipflow.sip.message import SipRequest, SipResponse, is_rfc3261_branch

T1 = 0.5
"""RFC 3261 §17.1.1.1: the RTT estimate, 500 ms."""
TIMER_B = 64 * T1
"""RFC 3261 §17.1.1.2: INVITE client transaction timeout, 32 s."""
TIMER_F = 64 * T1
"""RFC 3261 §17.1.2.2: non-INVITE client transaction timeout, 32 s."""

FALLBACK_LOOKBACK = 64
"""Transactions of the same Call-ID (latest first) the CSeq fallback looks at: a response
answers a recent request, and a Call-ID refreshed for days must not make it quadratic."""


class TransactionKey(NamedTuple):
    """What identifies a transaction at one hop (RFC 3261 §17.1.3, §17.2.3)."""

    branch: str
    """The top Via branch; for RFC 2543 peers a synthetic key built from Call-ID, From tag,
    CSeq number and the branch if any (prefixed ``rfc2543|``)."""
    sent_by: str
    """The top Via sent-by, ``host[:port]``."""
    method: str
    """The request method; an ACK looks for ``INVITE`` first (§17.2.3)."""
    call_id: str
    """The Call-ID. RFC 3261 matching does not need it, since a branch is unique across space
    and time (§8.1.1.7); an observer does: UAs and hand-written scenarios that reuse a fixed
    branch for every call would otherwise merge the transactions of different calls."""


_key = tuple.__new__
"""``TransactionKey(*values)`` without the named tuple's Python-level ``__new__`` (one per message)."""


def transaction_key(sip: SipRequest | SipResponse, method: str) -> TransactionKey:
    """The key of the transaction ``sip`` belongs to, looked up under ``method``."""
    sent_by = sip.sent_by or ""
    branch = sip.branch
    if is_rfc3261_branch(branch):  # sip.rfc3261_branch, without the property's call
        return _key(TransactionKey, (branch, sent_by, method, sip.call_id or ""))
    # RFC 3261 §17.2.3: RFC 2543 requests are matched on Request-URI, tags, Call-ID, CSeq
    # and top Via. Responses carry neither the Request-URI nor (in the request) the To tag,
    # so the observer keys on what both directions share.
    from_tag = sip.from_tag
    seq = sip.cseq.seq if sip.cseq is not None else -1
    parts = ("rfc2543", sip.call_id or "", from_tag or "", str(seq), branch or "")
    return TransactionKey("|".join(parts), sent_by, method, sip.call_id or "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """One transaction at one hop, with every message of it that was captured."""

    id: int
    """Index of the transaction in its analysis (0-based, in order of first message)."""
    key: TransactionKey
    method: str
    call_id: str | None
    cseq: int | None
    branch: str | None
    """The top Via branch as written (None if absent)."""
    rfc3261: bool
    """The branch carries the magic cookie (§8.1.1.7); otherwise RFC 2543 matching was used."""
    client: Endpoint
    """Where the request came from (for a transaction seen only by its responses: where they went)."""
    server: Endpoint
    messages: tuple[Message, ...]
    """Request, its retransmissions, responses and (non-2xx INVITE) the ACK, in capture order."""
    final_status: int | None
    retransmissions: int
    cancelled_by: int | None = None
    """For an INVITE: the id of the CANCEL transaction that targeted it."""
    cancels: int | None = None
    """For a CANCEL: the id of the INVITE transaction it targets."""
    timed_out: bool = False
    """No final response although the capture went on past timer B/F after the request."""

    @property
    def request(self) -> Message | None:
        """The first copy of the request, or None where only responses were captured."""
        for m in self.messages:
            if isinstance(m.sip, SipRequest) and m.sip.method == self.method:
                return m
        return None

    @property
    def responses(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if isinstance(m.sip, SipResponse))

    @property
    def final(self) -> Message | None:
        """The first final (≥ 200) response."""
        for m in self.messages:
            if isinstance(m.sip, SipResponse) and m.sip.status >= 200:
                return m
        return None

    @property
    def first_provisional(self) -> Message | None:
        """The first 1xx response other than 100 (the ringing/progress signal)."""
        for m in self.messages:
            if isinstance(m.sip, SipResponse) and 100 < m.sip.status < 200:
                return m
        return None

    @property
    def ack(self) -> Message | None:
        """For an INVITE answered with a non-2xx final response: its ACK (§17.1.1.3)."""
        for m in self.messages:
            if isinstance(m.sip, SipRequest) and m.sip.method == "ACK":
                return m
        return None

    @property
    def start(self) -> float:
        return self.messages[0].timestamp

    @property
    def end(self) -> float:
        return self.messages[-1].timestamp


@dataclass(slots=True)
class TransactionBuilder:
    """The mutable state of a transaction while messages are fed (see ``Transaction``)."""

    id: int
    key: TransactionKey
    method: str
    client: Endpoint
    server: Endpoint
    messages: list[Message] = field(default_factory=list)
    final_status: int | None = None
    retransmissions: int = 0
    cancelled_by: int | None = None
    cancels: int | None = None
    has_request: bool = False
    seen_responses: set[tuple[int, str | None, Endpoint]] | None = None
    """(status, To tag, sender) of each response seen; None until the first one (memory:
    most transactions of a large capture are one request and its answer)."""

    def build(self, capture_end: float) -> Transaction:
        first = self.messages[0].sip
        timeout = TIMER_B if self.method == "INVITE" else TIMER_F
        # §17.1.1.2: timer B runs only in the Calling state; a provisional response moves an
        # INVITE client transaction to Proceeding, where it waits for the final response.
        # §17.1.2.2: timer F runs in Trying and Proceeding alike.
        seen = self.seen_responses or ()
        proceeding = self.method == "INVITE" and any(status < 200 for status, _, _ in seen)
        timed_out = (
            self.final_status is None
            and self.method != "ACK"
            and not proceeding
            and capture_end - self.messages[0].timestamp >= timeout
        )
        return Transaction(
            id=self.id,
            key=self.key,
            method=self.method,
            call_id=first.call_id,
            cseq=first.cseq.seq if first.cseq is not None else None,
            branch=first.branch,
            rfc3261=first.rfc3261_branch,
            client=self.client,
            server=self.server,
            messages=tuple(self.messages),
            final_status=self.final_status,
            retransmissions=self.retransmissions,
            cancelled_by=self.cancelled_by,
            cancels=self.cancels,
            timed_out=timed_out,
        )


class TransactionTable:
    """Matches messages to transactions (RFC 3261 §17.1.3 and §17.2.3), as an observer.

    ``match_request`` and ``match_response`` return the builder the message belongs to,
    whether the message is a retransmission of one already seen in it, and how it was
    matched. The caller builds the ``Message`` record.

    A response whose top Via is missing, or names no transaction (a UAS that answered an
    INVITE with the Via of the CANCEL, a proxy that stripped its own Via and relayed a
    response with none), is matched by a fallback on what the response still carries:
    ``candidates``, the ids of the transactions with the same Call-ID (the caller keeps
    them), are searched latest first for one with the same CSeq number and method whose
    request went the reverse way (same addresses and ports, else the same hosts), an open
    one before one already answered. A non-2xx ACK whose branch names no INVITE is matched
    the same way to the INVITE it acknowledges (its To tag that of the refusal). Such a message is marked
    ``MatchedBy.CSEQ``.
    """

    def __init__(self) -> None:
        self.builders: list[TransactionBuilder | None] = []
        """By id; None where the transaction was let go (``release``)."""
        self._by_key: dict[TransactionKey, TransactionBuilder] = {}

    def _new(
        self, key: TransactionKey, method: str, client: Endpoint, server: Endpoint
    ) -> TransactionBuilder:
        tx = TransactionBuilder(id=len(self.builders), key=key, method=method, client=client, server=server)
        self.builders.append(tx)
        self._by_key[key] = tx
        return tx

    def release(self, tx_id: int) -> None:
        """Let the transaction ``tx_id`` go: no message is matched to it any more, and
        ``freeze`` leaves it out (the tracker retires the legs that are over)."""
        tx = self.builders[tx_id]
        if tx is not None:
            self.builders[tx_id] = None
            if self._by_key.get(tx.key) is tx:
                del self._by_key[tx.key]

    def freeze(self, capture_end: float, *, release: bool = False) -> tuple[Transaction, ...]:
        """Every transaction held, frozen, in order of id (indexed by it, unless some were
        let go: ``release``). With ``release``, the table is empty afterwards: each builder
        is let go once frozen."""
        if not release:
            return tuple(b.build(capture_end) for b in self.builders if b is not None)
        builders, self.builders = self.builders, []
        self._by_key = {}
        builders.reverse()
        out = []
        while builders:
            b = builders.pop()
            if b is not None:
                out.append(b.build(capture_end))
        return tuple(out)

    def match_request(
        self, sip: SipRequest, src: Endpoint, dst: Endpoint, candidates: Reversible[int] = ()
    ) -> tuple[TransactionBuilder, bool, MatchedBy]:
        method = sip.method
        if method == "ACK":
            # §17.2.3: the ACK of a non-2xx final response matches the INVITE transaction.
            matched_by = MatchedBy.VIA
            invite = self._by_key.get(transaction_key(sip, "INVITE"))
            if invite is None or not _acknowledgeable(invite):
                invite = self._fallback(sip, "INVITE", src, dst, candidates, ack=True)
                matched_by = MatchedBy.CSEQ
            if invite is not None and _acknowledgeable(invite):
                retrans = any(
                    isinstance(m.sip, SipRequest) and m.sip.method == "ACK" for m in invite.messages
                )
                if retrans:
                    invite.retransmissions += 1
                return invite, retrans, matched_by
        key = transaction_key(sip, method)
        tx = self._by_key.get(key)
        if tx is None:
            tx = self._new(key, method, src, dst)
            tx.has_request = True
            if method == "CANCEL":
                # §9.1: a CANCEL carries the branch of the INVITE it cancels.
                invite = self._by_key.get(transaction_key(sip, "INVITE"))
                if invite is not None:
                    tx.cancels = invite.id
                    invite.cancelled_by = tx.id
            return tx, False, MatchedBy.VIA
        if not tx.has_request:
            # Responses came first (the request was not captured, or arrived late).
            tx.has_request = True
            tx.client, tx.server = src, dst
            return tx, False, MatchedBy.VIA
        tx.retransmissions += 1
        return tx, True, MatchedBy.VIA

    def match_response(
        self, sip: SipResponse, src: Endpoint, dst: Endpoint, candidates: Reversible[int] = ()
    ) -> tuple[TransactionBuilder, bool, MatchedBy]:
        method = sip.cseq.method if sip.cseq is not None else ""
        key = transaction_key(sip, method)
        tx = self._by_key.get(key)
        matched_by = MatchedBy.VIA
        if tx is None:
            found = self._fallback(sip, method, dst, src, candidates, ack=False)
            if found is None:
                tx = self._new(key, method, dst, src)
            else:
                tx, matched_by = found, MatchedBy.CSEQ
        to_tag = sip.to_tag
        fingerprint = (sip.status, to_tag, src)
        seen = tx.seen_responses
        if seen is None:
            seen = tx.seen_responses = set()
        elif fingerprint in seen:
            tx.retransmissions += 1
            return tx, True, matched_by
        seen.add(fingerprint)
        if sip.status >= 200 and tx.final_status is None:
            tx.final_status = sip.status
        return tx, False, matched_by

    def _fallback(
        self,
        sip: SipRequest | SipResponse,
        method: str,
        client: Endpoint,
        server: Endpoint,
        candidates: Reversible[int],
        *,
        ack: bool,
    ) -> TransactionBuilder | None:
        """The transaction a message with a missing or unknown Via belongs to, by Call-ID
        (``candidates``), CSeq and the request's ``client`` and ``server``; None if none fits.

        Ranked: exact addresses before same hosts, open (for an ACK: answered non-2xx)
        before answered, then the latest."""
        cseq = sip.cseq
        if cseq is None or not method or cseq.method != (method if not ack else "ACK"):
            return None
        best: TransactionBuilder | None = None
        best_rank = 4
        builders = self.builders
        for looked, tx_id in enumerate(reversed(candidates)):
            if looked >= FALLBACK_LOOKBACK:
                break
            tx = builders[tx_id]
            if tx is None or tx.method != method or not tx.has_request:
                continue
            first = tx.messages[0].sip.cseq if tx.messages else None
            if first is None or first.seq != cseq.seq:
                continue
            if tx.client == client and tx.server == server:
                rank = 0
            elif tx.client.host == client.host and tx.server.host == server.host:
                rank = 1
            else:
                continue
            if ack:
                # The ACK of *this* refusal: its To tag is the final response's (§17.1.1.3),
                # not that of a 2xx to another INVITE that reused the CSeq.
                to_tag = sip.to_tag
                if not _acknowledgeable(tx) or not any(
                    status >= 300 and tag == to_tag for status, tag, _ in tx.seen_responses or ()
                ):
                    continue
            elif tx.final_status is not None:
                rank += 2
            if rank < best_rank:
                best, best_rank = tx, rank
                if rank == 0:
                    break
        return best


def _acknowledgeable(invite: TransactionBuilder) -> bool:
    """An INVITE transaction whose final response was non-2xx: its ACK belongs to it (§17.1.1.3)."""
    return invite.final_status is not None and invite.final_status >= 300
