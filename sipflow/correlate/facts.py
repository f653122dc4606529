"""Facts about one leg: what its first initial INVITE says, and its outcomes, gathered once.

The B2BUA heuristic and ``related_calls`` compare legs by these: users (callee and caller,
numbers normalized), From tag, the headers that name another leg, the first SDP offer and
answer (read lazily, ``_load_sdp``: only candidate pairs need them), and when the 18x, the final
response, CANCEL and BYE were seen.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from sipflow.correlate.options import HeaderRule
from sipflow.model.call import CallKind, Leg
from sipflow.model.caller import caller_view
from sipflow.model.message import Message
from sipflow.model.session import SdpRole, iter_sdp_roles
from sipflow.model.transaction import Transaction
from sipflow.sip.message import SipRequest, SipResponse, canonical_name
from sipflow.sip.parse import parse_uri
from sipflow.sip.sdp import Origin, SdpDigest, find_sdp_digest

_NULL_UUID = "0" * 32


@dataclass(slots=True)
class _LegFacts:
    index: int
    call_id: str
    leg: Leg | None
    """The leg, for its SDP (``_load_sdp``); None once that is loaded: the facts then pickle
    small, without the messages (``sipflow.shard`` hands them between processes)."""
    entry: str
    """Host the INVITE went to (the caller side of a B2BUA sits there)."""
    exit: str
    """Host the INVITE came from."""
    exit_at: float
    """When the INVITE left ``exit`` (its first capture at its first hop)."""
    arrive_at: float
    """When the INVITE reached ``entry`` (its last hop)."""
    to_user: str
    from_user: str
    from_tag: str | None
    sdp_loaded: bool
    """Whether ``offer`` and ``answer`` were looked up (lazily: only candidate pairs need them)."""
    offer: SdpDigest | None
    """Of detached facts (``_detached_row`` with ``Sharing``), without its streams: those are
    in ``offer_media``."""
    answer: SdpDigest | None
    """Of detached facts, only its addresses."""
    provisional: tuple[float, ...]
    """Times of the first 18x of each caller-side attempt's hops, sorted."""
    final_at: float | None
    final_class: int | None
    cancel_at: float | None
    bye_at: float | None
    claims: dict[str, str] = field(default_factory=dict)
    """Header rule name → the Call-ID it names."""
    icid: str | None = None
    session_ids: tuple[str, ...] = ()
    offer_media: Collection[tuple[str, int]] = frozenset()
    """(address, port) of each stream of ``offer`` (once loaded): the digest's set, or, of
    detached facts, a sorted tuple (a set of one is four times the size)."""
    offer_addresses: frozenset[str] = frozenset()
    answer_addresses: frozenset[str] = frozenset()


_NOT_DIGIT_RE: Final = re.compile(r"\D")
_NUMBER_LEAD_RE: Final = re.compile(r"\+?(\d{6,})\D")


def _digits(user: str) -> str:
    return _NOT_DIGIT_RE.sub("", user)


def _normalize_user(user: str | None) -> str:
    """A user part without scheme noise: ``+49 30…``, ``0049…`` and ``49…`` compare equal."""
    if not user:
        return ""
    user = user.split(";", 1)[0].strip().lower()
    if user.isascii() and user.isdigit():
        return user.lstrip("0")  # what the rest gives a plain number, sooner
    digits = _digits(user)
    if digits and len(digits) >= len(user.lstrip("+")) - 1:
        return digits.lstrip("0")
    # A number with a suffix (``12675941249_Uclx8s…``, ``2001-ext``) compares as its number.
    lead = _NUMBER_LEAD_RE.match(user)
    return lead.group(1).lstrip("0") if lead else user


def _users_match(a: str, b: str) -> bool:
    if not a or not b:
        return False
    if a == b:
        return True
    if a.isdigit() and b.isdigit() and min(len(a), len(b)) >= 6:
        return a.endswith(b) or b.endswith(a)
    return False


def _user_key(user: str) -> str | None:
    """Equal for any two users that ``_users_match``: a number of 6 digits or more by its last
    six, anything else as itself."""
    if not user:
        return None
    return user[-6:] if user.isdigit() and len(user) >= 6 else user


def _request_user(invite: Message) -> str:
    sip = invite.sip
    if isinstance(sip, SipRequest):
        try:
            user = parse_uri(sip.uri).user
        except Exception:
            user = None
        if user:
            return _normalize_user(user)
    return _normalize_user(sip.to.uri.user if sip.to is not None else None)


def _initial_invites(leg: Leg) -> list[Transaction]:
    """The leg's initial INVITEs whose request was captured, every hop, in time order."""
    view = caller_view(leg)
    if view.kind is not CallKind.CALL:
        return []
    return [
        tx
        for tx in view.initial
        if tx.method == "INVITE" and (r := tx.request) is not None and r.sip.to_tag is None
    ]


def _facts(index: int, leg: Leg, rules: Sequence[HeaderRule]) -> _LegFacts | None:
    invites = _initial_invites(leg)
    if not invites or invites[0].request is None:
        return None
    first = invites[0]
    invite = first.request
    assert invite is not None
    caller = first.client
    # The caller-side attempts (auth retries) and the far end of the leg (last hop).
    attempts = [tx for tx in invites if tx.client == caller]
    last_hop = max(invites, key=lambda tx: tx.start)
    provisional = sorted(
        m.timestamp
        for tx in attempts
        for m in tx.messages
        if isinstance(m.sip, SipResponse) and 100 < m.sip.status < 200 and not m.retransmission
    )
    finals = [tx for tx in attempts if tx.final is not None]
    decisive = next((tx for tx in finals if (tx.final_status or 0) < 300), finals[-1] if finals else None)
    cancels = [tx.start for tx in leg.transactions if tx.method == "CANCEL"]
    byes = [tx.start for tx in leg.transactions if tx.method == "BYE"]
    sip = invite.sip
    facts = _LegFacts(
        index=index,
        call_id=leg.call_id,
        leg=leg,
        entry=last_hop.server.host,
        exit=caller.host,
        exit_at=invite.timestamp,
        arrive_at=last_hop.request.timestamp if last_hop.request is not None else invite.timestamp,
        to_user=_request_user(invite),
        from_user=_normalize_user(sip.from_.uri.user if sip.from_ is not None else None),
        from_tag=sip.from_tag,
        sdp_loaded=False,
        offer=None,
        answer=None,
        provisional=tuple(provisional),
        final_at=decisive.final.timestamp if decisive is not None and decisive.final is not None else None,
        final_class=(decisive.final_status // 100)
        if decisive is not None and decisive.final_status
        else None,
        cancel_at=min(cancels) if cancels else None,
        bye_at=min(byes) if byes else None,
    )
    # Every header the facts read, in one pass over the INVITE's header lines.
    found = sip.headers.collect((*(rule.name for rule in rules), "P-Charging-Vector", "Session-ID"))
    for rule in rules:
        for value in found.get(canonical_name(rule.name), ()):
            claimed = rule.extract(value)
            if claimed:
                facts.claims[rule.name] = claimed
                break
    pcv = next(iter(found.get("p-charging-vector", ())), None)
    if pcv:
        match = re.search(r"icid-value\s*=\s*\"?([^\";]+)", pcv, re.IGNORECASE)
        if match:
            facts.icid = match.group(1).strip()
    sid = next(iter(found.get("session-id", ())), None)
    if sid:
        local, _, params = sid.partition(";")
        uuids = [local.strip().lower()]
        match = re.search(r"remote\s*=\s*([0-9a-fA-F]{32})", params)
        if match:
            uuids.append(match.group(1).lower())
        facts.session_ids = tuple(u for u in uuids if re.fullmatch(r"[0-9a-f]{32}", u) and u != _NULL_UUID)
    return facts


def _load_sdp(f: _LegFacts) -> None:
    """The leg's first SDP offer and answer (RFC 3264), found on first need."""
    if f.sdp_loaded or f.leg is None:
        return
    f.sdp_loaded = True
    for _, role, description in iter_sdp_roles(f.leg.messages, find_sdp_digest):
        if role is SdpRole.OFFER and f.offer is None:
            f.offer = description
        elif role is SdpRole.ANSWER and f.answer is None:
            f.answer = description
        if f.offer is not None and f.answer is not None:
            break
    _spread_sdp(f)


def _spread_sdp(f: _LegFacts) -> None:
    """``offer_media``, ``offer_addresses`` and ``answer_addresses`` from the digests."""
    f.offer_media = f.offer.media if f.offer is not None else frozenset()
    f.offer_addresses = f.offer.addresses if f.offer is not None else frozenset()
    f.answer_addresses = f.answer.addresses if f.answer is not None else frozenset()


_FactRow = tuple[Any, ...]
"""A ``_LegFacts``'s fields in order: what pickles fastest (a third less time than the object)."""

_row_of: Callable[[_LegFacts], _FactRow] = operator.attrgetter(*(f.name for f in fields(_LegFacts)))


class Sharing:
    """Equal values of many legs' facts made one object, before they are pickled: a pickle
    writes an object it has seen once, so the process that loads the facts holds one copy of
    each address and ``o=`` name of a batch, not one per leg (a third of the loaded facts'
    memory on a busy trunk's capture, where every call's SDP names the same few hosts)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[object, Any] = {}

    def digest(self, digest: SdpDigest | None) -> SdpDigest | None:
        if digest is None:
            return None
        one = self._values.setdefault
        o = digest.origin
        if o is not None:
            session = o.session_id
            o = Origin(
                username=one(o.username, o.username),
                session_id=session,
                session_version=session if o.session_version == session else o.session_version,
                nettype=one(o.nettype, o.nettype),
                addrtype=one(o.addrtype, o.addrtype),
                address=one(o.address, o.address),
            )
        addresses = one(digest.addresses, digest.addresses)
        return SdpDigest(o, digest.media, addresses)

    def adopt(self, f: _LegFacts) -> None:
        """``f``'s repeated values (hosts, addresses, ``o=`` names, answers) made the objects
        this ``Sharing`` gave before: what the process that loads the facts of many batches
        does with each (the batches share nothing with each other)."""
        one = self._values.setdefault
        f.entry = one(f.entry, f.entry)
        f.exit = one(f.exit, f.exit)
        f.offer = self.digest(f.offer)
        f.answer = self.answer(f.answer)
        f.offer_media = tuple((one(a, a), port) for a, port in f.offer_media)
        f.offer_addresses = f.offer.addresses if f.offer is not None else frozenset()
        f.answer_addresses = f.answer.addresses if f.answer is not None else frozenset()

    def answer(self, digest: SdpDigest | None) -> SdpDigest | None:
        """Of an answer, what correlation reads (that there is one, and its addresses:
        ``score._anchored``), one object for all the answers naming the same addresses: the
        answer's ``o=`` line and streams are left out (unique to each call, they were most of
        the loaded facts' memory on a busy SBC's capture)."""
        if digest is None:
            return None
        addresses = digest.addresses
        return self._values.setdefault(("answer", addresses), SdpDigest(None, frozenset(), addresses))  # type: ignore[no-any-return]


def _detached_row(f: _LegFacts, sharing: Sharing | None = None) -> _FactRow:
    """``f`` with its SDP loaded and without its leg, as a row: what another process needs of
    the leg (``_from_row`` makes the facts again). With ``sharing``, the SDP's repeated values
    are made the objects that ``sharing`` gave before."""
    _load_sdp(f)
    f.leg = None
    if sharing is not None:
        media = tuple(sorted(f.offer_media))
        offer = sharing.digest(f.offer)
        # The offer's streams travel as ``offer_media`` alone: a tuple, where a set of one is
        # four times the size.
        f.offer = SdpDigest(offer.origin, _NO_MEDIA, offer.addresses) if offer is not None else None
        f.answer = sharing.answer(f.answer)
        _spread_sdp(f)
        f.offer_media = media
        if not f.claims:
            f.claims = _NO_CLAIMS  # one object in a pickle, not an empty dict a leg
    return _row_of(f)


_NO_MEDIA: Final[frozenset[tuple[str, int]]] = frozenset()

_NO_CLAIMS: Final[dict[str, str]] = {}
"""The ``claims`` of detached facts that have none (never written to: the facts of another
process are only read)."""


def _from_row(row: _FactRow) -> _LegFacts:
    return _LegFacts(*row)
