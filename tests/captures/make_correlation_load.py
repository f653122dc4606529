"""Crafted correlation load: many concurrent B2BUA calls, or many attended transfers.

    python tests/captures/make_correlation_load.py b2bua --calls 5000 --rate 50 -o /tmp/b2bua.pcap
    python tests/captures/make_correlation_load.py refer --transfers 1000 -o /tmp/refer.pcap

Not committed output: the scaling tests (``tests/test_correlate_scaling.py``) feed the same
messages straight to a ``Tracker`` (``tests/sipmsg.py``), and a person measuring
``sipflow calls FILE`` writes a pcap with ``-o`` (classic pcap, Ethernet / IPv4 / UDP, packed
with ``struct``: 100,000 packets take about a second). Seeded: the same arguments give the
same bytes.

``b2bua``: ``--calls`` calls through one B2BUA (SBC) at 192.168.10.5 (inbound side port 5060,
outbound side port 5080), started at ``--rate`` calls per second with a random jitter, from
1,000 caller hosts to 100 callee hosts. Each call has two legs with their own Call-ID, tags,
branches and CSeq, and no header that names the other leg. The B-leg INVITE leaves the B2BUA
5–200 ms after the A-leg INVITE reached it (so B-leg INVITEs come out of order whenever calls
start closer together than that); numbers are rewritten (caller ``+4930…`` becomes
``004930…``, callee ``030…`` becomes ``+4930…``); the SDP offer and answer are relayed
unchanged (``--anchored``: the B2BUA puts its own media address and port in both instead);
100 Trying on each hop, 180, final response, CANCEL and BYE are passed on to the other leg
1–20 ms later. Outcomes: 70 % answered (either side hangs up after 5–120 s), 10 % busy (486),
8 % cancelled by the caller while ringing (487), 7 % no answer (480 after 10–20 s), 5 %
answered without ringing. Caller numbers are drawn from a pool of ``4 × calls``, callee
numbers from ten million, so a number can repeat, as on a real trunk.

``refer``: ``--transfers`` attended transfers (RFC 5589 §7), started at ``--rate`` per second,
each between three phones of their own: Bob calls Alice (call 1), puts her on hold and calls
Carol (call 2, the consultation), then sends Alice a REFER on call 1 whose Refer-To names
Carol with ``?Replaces=`` call 2 (RFC 3891 §7.1, escaped); Alice answers 202, NOTIFYs
``100 Trying``, sends Carol an INVITE with ``Replaces:`` call 2 (call 3), NOTIFYs ``200 OK``;
Carol ends call 2 with BYE, Bob ends call 1, Alice and Carol talk and hang up.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Address = tuple[str, int]
Event = tuple[float, Address, Address, bytes]
"""(seconds since the start of the capture, source, destination, UDP payload)."""

EPOCH_START = 1_700_000_000
SBC_IN: Address = ("192.168.10.5", 5060)
SBC_OUT: Address = ("192.168.10.5", 5080)
SBC_MEDIA = "192.168.10.6"


@dataclass
class Load:
    events: list[Event] = field(default_factory=list)
    """Every message, sorted by time."""
    calls: list[tuple[str, ...]] = field(default_factory=list)
    """The truth: the Call-IDs of each call's legs (B2BUA: A leg, B leg; REFER: calls 1, 2, 3)."""

    def add(self, t: float, src: Address, dst: Address, data: bytes) -> None:
        self.events.append((round(t, 6), src, dst, data))

    def finish(self) -> Load:
        self.events.sort(key=lambda e: e[0])  # stable: same time keeps the order of creation
        return self


# --- messages -------------------------------------------------------------------------------------


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def sdp(user: str, session: int, address: str, port: int) -> str:
    return (
        f"v=0\r\no={user} {session} {session} IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )


def _message(first: str, headers: Sequence[str], body: str = "", ctype: str = "application/sdp") -> bytes:
    lines = [first, *headers]
    if body:
        lines.append(f"Content-Type: {ctype}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@dataclass
class _Dialog:
    """One side's view of a dialog: enough to write its requests and the other side's responses."""

    rng: random.Random
    call_id: str
    local: Address
    local_uri: str
    local_tag: str
    remote: Address
    remote_uri: str
    ruri: str
    contact: str
    remote_tag: str = ""
    remote_contact: str = ""
    cseq: int = 1
    remote_cseq: int = 1
    last: dict[str, str] = field(default_factory=dict)

    def _via(self, addr: Address) -> tuple[str, str]:
        branch = "z9hG4bK" + _hex(self.rng, 16)
        return f"Via: SIP/2.0/UDP {addr[0]}:{addr[1]};branch={branch};rport", branch

    def request(self, method: str, *, body: str = "", extra: Iterable[str] = (), cseq: int | None = None,
                ctype: str = "application/sdp", branch: str | None = None) -> bytes:  # fmt: skip
        """A request from the local side (the dialog creator or, after ``swap``, the other one)."""
        via, new_branch = self._via(self.local)
        if branch is not None:
            via = f"Via: SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch={branch};rport"
        else:
            branch = new_branch
        if cseq is None:
            if method not in ("ACK", "CANCEL"):
                self.cseq += 1 if self.last else 0
            cseq = self.cseq
        self.last[method] = branch
        tagged = self.remote_tag and method != "CANCEL"  # RFC 3261 §9.1: the To of the INVITE
        to = f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if tagged else "")
        target = self.remote_contact if self.remote_tag and method != "CANCEL" else self.ruri
        headers = [
            via,
            "Max-Forwards: 70",
            f"From: <{self.local_uri}>;tag={self.local_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            *([f"Contact: <{self.contact}>"] if method in ("INVITE", "REFER", "NOTIFY") else []),
            *extra,
        ]
        return _message(f"{method} {target} SIP/2.0", headers, body, ctype)

    def response(self, request: bytes, status: int, reason: str, *, body: str = "",
                 remote_tag: str | None = None) -> bytes:  # fmt: skip
        """The remote side's response to ``request``; a To tag once the dialog exists."""
        head = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
        keep = [h for h in head if h.split(":", 1)[0] in ("Via", "From", "Call-ID", "CSeq")]
        to = next(h for h in head if h.startswith("To:"))
        if status > 100 and ";tag=" not in to:
            if remote_tag is not None:
                self.remote_tag = remote_tag
            to += f";tag={self.remote_tag}"
        headers = [*keep, to]
        if 100 < status < 300 and any(h.startswith("CSeq:") and h.endswith("INVITE") for h in head):
            headers.append(f"Contact: <{self.remote_contact}>")
        return _message(f"SIP/2.0 {status} {reason}", headers, body)

    def swapped(self) -> _Dialog:
        """The same dialog seen from the other side (for a request the callee sends)."""
        return _Dialog(
            rng=self.rng, call_id=self.call_id, local=self.remote, local_uri=self.remote_uri,
            local_tag=self.remote_tag, remote=self.local, remote_uri=self.local_uri, ruri=self.contact,
            contact=self.remote_contact, remote_tag=self.local_tag, remote_contact=self.contact,
            cseq=self.remote_cseq, last={"INVITE": ""},
        )  # fmt: skip


def _ack_for_error(request: bytes, response: bytes) -> bytes:
    """RFC 3261 §17.1.1.3: the ACK to a non-2xx final response, in the INVITE's transaction."""
    head = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    resp = response.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    ruri = head[0].split(" ")[1]
    vias = [h for h in head[1:] if h.startswith("Via:")][:1]
    keep = [h for h in head[1:] if h.split(":", 1)[0] in ("From", "Call-ID", "Max-Forwards")]
    to = next(h for h in resp if h.startswith("To:"))
    cseq = next(h for h in head if h.startswith("CSeq:")).split()[1]
    return _message(f"ACK {ruri} SIP/2.0", [*vias, *keep, to, f"CSeq: {cseq} ACK"])


# --- B2BUA calls ----------------------------------------------------------------------------------

OUTCOMES = (("answered", 0.70), ("busy", 0.10), ("cancelled", 0.08), ("no-answer", 0.07), ("no-ring", 0.05))


def _outcome(rng: random.Random) -> str:
    x = rng.random()
    for name, share in OUTCOMES:
        if x < share:
            return name
        x -= share
    return OUTCOMES[0][0]


def b2bua_load(
    calls: int, *, rate: float = 50.0, seed: int = 1, anchored: bool = False, same_numbers: bool = False
) -> Load:
    """``calls`` B2BUA calls (two legs each) started at ``rate`` per second; see the module doc.
    ``same_numbers``: every call from one number to one number (as in ``samples/b2bua-load``),
    so only timing, SDP and mirrored events tell the calls apart."""
    rng = random.Random(seed)
    load = Load()
    callers = [f"{rng.randrange(10**7):07d}" for _ in range(4 * max(calls, 1))]
    for n in range(calls):
        t0 = n / rate + rng.uniform(0, 0.5 / rate)
        caller: Address = (f"10.{1 + n % 4}.{(n // 4) % 250}.{1 + (n // 1000) % 250}", 5060)
        callee: Address = (f"172.16.{rng.randrange(4)}.{1 + rng.randrange(25)}", 5060)
        number = callers[0] if same_numbers else rng.choice(callers)
        dialled = "1234567" if same_numbers else f"{rng.randrange(10**7):07d}"
        a = _Dialog(
            rng=rng, call_id=f"{_hex(rng, 24)}@{caller[0]}", local=caller,
            local_uri=f"sip:+4930{number}@{caller[0]}", local_tag=_hex(rng, 10), remote=SBC_IN,
            remote_uri=f"sip:030{dialled}@{SBC_IN[0]}", ruri=f"sip:030{dialled}@{SBC_IN[0]}",
            contact=f"sip:+4930{number}@{caller[0]}:5060", remote_contact=f"sip:sbc@{SBC_IN[0]}:5060",
            cseq=rng.randrange(1, 30000),
        )  # fmt: skip
        b = _Dialog(
            rng=rng, call_id=_uuid(rng), local=SBC_OUT, local_uri=f"sip:004930{number}@{SBC_OUT[0]}",
            local_tag=_hex(rng, 13), remote=callee, remote_uri=f"sip:+4930{dialled}@{callee[0]}",
            ruri=f"sip:+4930{dialled}@{callee[0]}:5060", contact=f"sip:sbc@{SBC_OUT[0]}:5080",
            remote_contact=f"sip:+4930{dialled}@{callee[0]}:5060", cseq=rng.randrange(1, 60000),
        )  # fmt: skip
        load.calls.append((a.call_id, b.call_id))
        session = rng.randrange(10**9, 10**10)
        offer_a = sdp("caller", session, caller[0], 2 * rng.randrange(5000, 15000))
        answer_b = sdp("callee", session + 7, callee[0], 2 * rng.randrange(5000, 15000))
        if anchored:
            port = 20000 + 4 * (n % 10000)
            offer_b = sdp("sbc", session + 3, SBC_MEDIA, port)
            answer_a = sdp("sbc", session + 5, SBC_MEDIA, port + 2)
        else:
            offer_b, answer_a = offer_a, answer_b

        def lag() -> float:
            return rng.uniform(0.001, 0.020)

        inv_a = a.request("INVITE", body=offer_a)
        load.add(t0, caller, SBC_IN, inv_a)
        load.add(t0 + 0.0005, SBC_IN, caller, a.response(inv_a, 100, "Trying"))
        tb = t0 + rng.uniform(0.005, 0.200)
        inv_b = b.request("INVITE", body=offer_b)
        load.add(tb, SBC_OUT, callee, inv_b)
        load.add(tb + 0.001, callee, SBC_OUT, b.response(inv_b, 100, "Trying"))
        outcome = _outcome(rng)
        a_tag, b_tag = _hex(rng, 12), _hex(rng, 8)
        ring = tb + rng.uniform(0.3, 3.0)
        if outcome != "no-ring":
            load.add(ring, callee, SBC_OUT, b.response(inv_b, 180, "Ringing", remote_tag=b_tag))
            ring2 = ring + lag()
            load.add(ring2, SBC_IN, caller, a.response(inv_a, 180, "Ringing", remote_tag=a_tag))
        if outcome in ("answered", "no-ring"):
            answer = ring + rng.uniform(1.0, 15.0)
            ok_b = b.response(inv_b, 200, "OK", body=answer_b, remote_tag=b_tag)
            load.add(answer, callee, SBC_OUT, ok_b)
            load.add(answer + 0.001, SBC_OUT, callee, b.request("ACK", cseq=b.cseq))
            answer2 = answer + lag()
            load.add(answer2, SBC_IN, caller, a.response(inv_a, 200, "OK", body=answer_a, remote_tag=a_tag))
            load.add(answer2 + rng.uniform(0.001, 0.030), caller, SBC_IN, a.request("ACK", cseq=a.cseq))
            hangup = answer2 + rng.uniform(5.0, 120.0)
            if rng.random() < 0.6:  # the caller hangs up
                first, second = a, b
                first_src, first_dst, second_src, second_dst = caller, SBC_IN, SBC_OUT, callee
            else:
                first, second = b.swapped(), a.swapped()
                first_src, first_dst, second_src, second_dst = callee, SBC_OUT, SBC_IN, caller
            bye1 = first.request("BYE")
            load.add(hangup, first_src, first_dst, bye1)
            load.add(hangup + 0.0005, first_dst, first_src, first.response(bye1, 200, "OK"))
            hangup2 = hangup + lag()
            bye2 = second.request("BYE")
            load.add(hangup2, second_src, second_dst, bye2)
            load.add(hangup2 + 0.002, second_dst, second_src, second.response(bye2, 200, "OK"))
        elif outcome in ("busy", "no-answer"):
            status, reason = (486, "Busy Here") if outcome == "busy" else (480, "Temporarily Unavailable")
            final = ring + (rng.uniform(0.5, 4.0) if outcome == "busy" else rng.uniform(10.0, 20.0))
            resp_b = b.response(inv_b, status, reason)
            load.add(final, callee, SBC_OUT, resp_b)
            load.add(final + 0.0005, SBC_OUT, callee, _ack_for_error(inv_b, resp_b))
            final2 = final + lag()
            resp_a = a.response(inv_a, status, reason)
            load.add(final2, SBC_IN, caller, resp_a)
            load.add(final2 + 0.001, caller, SBC_IN, _ack_for_error(inv_a, resp_a))
        else:  # cancelled by the caller while ringing
            cancel = ring + rng.uniform(1.0, 8.0)
            cancel_a = a.request("CANCEL", cseq=a.cseq, branch=a.last["INVITE"])
            load.add(cancel, caller, SBC_IN, cancel_a)
            load.add(cancel + 0.0005, SBC_IN, caller, a.response(cancel_a, 200, "OK"))
            cancel2 = cancel + lag()
            cancel_b = b.request("CANCEL", cseq=b.cseq, branch=b.last["INVITE"])
            load.add(cancel2, SBC_OUT, callee, cancel_b)
            load.add(cancel2 + 0.001, callee, SBC_OUT, b.response(cancel_b, 200, "OK"))
            resp_b = b.response(inv_b, 487, "Request Terminated")
            load.add(cancel2 + 0.002, callee, SBC_OUT, resp_b)
            load.add(cancel2 + 0.0025, SBC_OUT, callee, _ack_for_error(inv_b, resp_b))
            resp_a = a.response(inv_a, 487, "Request Terminated")
            final2 = cancel2 + 0.002 + lag()
            load.add(final2, SBC_IN, caller, resp_a)
            load.add(final2 + 0.001, caller, SBC_IN, _ack_for_error(inv_a, resp_a))
    return load.finish()


# --- attended transfers -----------------------------------------------------------------------------


def _answered_call(load: Load, d: _Dialog, t: float, offer: str, answer: str, tag: str) -> float:
    inv = d.request("INVITE", body=offer)
    load.add(t, d.local, d.remote, inv)
    load.add(t + 0.2, d.remote, d.local, d.response(inv, 180, "Ringing", remote_tag=tag))
    load.add(t + 1.5, d.remote, d.local, d.response(inv, 200, "OK", body=answer))
    load.add(t + 1.51, d.local, d.remote, d.request("ACK", cseq=d.cseq))
    return t + 1.51


def _bye(load: Load, d: _Dialog, t: float) -> None:
    bye = d.request("BYE")
    load.add(t, d.local, d.remote, bye)
    load.add(t + 0.01, d.remote, d.local, d.response(bye, 200, "OK"))


def refer_load(transfers: int, *, rate: float = 5.0, seed: int = 2) -> Load:
    """``transfers`` attended transfers started at ``rate`` per second; see the module doc."""
    rng = random.Random(seed)
    load = Load()
    for n in range(transfers):
        _transfer(load, rng, n, n / rate + rng.uniform(0, 0.5 / rate))
    return load.finish()


def _transfer(load: Load, rng: random.Random, n: int, t0: float) -> None:
    net = f"{(n // 250) % 250}.{1 + n % 250}"
    alice: Address = (f"10.20.{net}", 5060)
    bob: Address = (f"10.21.{net}", 5060)
    carol: Address = (f"10.22.{net}", 5060)
    numbers = {who: f"+4930{rng.randrange(10**8):08d}" for who in ("alice", "bob", "carol")}

    def uri(who: str, host: Address) -> str:
        return f"sip:{numbers[who]}@{host[0]}"

    def dialog(src: str, s: Address, dst: str, d: Address) -> _Dialog:
        return _Dialog(
            rng=rng, call_id=f"{_hex(rng, 20)}@{s[0]}", local=s, local_uri=uri(src, s),
            local_tag=_hex(rng, 8), remote=d, remote_uri=uri(dst, d), ruri=uri(dst, d),
            contact=f"{uri(src, s)}:5060", remote_contact=f"{uri(dst, d)}:5060",
            cseq=rng.randrange(1, 5000),
        )  # fmt: skip

    call1 = dialog("bob", bob, "alice", alice)
    call2 = dialog("bob", bob, "carol", carol)
    call3 = dialog("alice", alice, "carol", carol)
    load.calls.append((call1.call_id, call2.call_id, call3.call_id))
    session = rng.randrange(10**9, 10**10)
    t = _answered_call(load, call1, t0, sdp("bob", session, bob[0], 4000),
                       sdp("alice", session + 1, alice[0], 6000), _hex(rng, 8))  # fmt: skip
    t = _answered_call(load, call2, t + rng.uniform(2.0, 10.0), sdp("bob", session + 2, bob[0], 4002),
                       sdp("carol", session + 3, carol[0], 8000), _hex(rng, 8))  # fmt: skip
    t += rng.uniform(2.0, 10.0)
    replaces = f"{call2.call_id};to-tag={call2.remote_tag};from-tag={call2.local_tag}"
    escaped = replaces.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")
    refer_to = f"Refer-To: <{uri('carol', carol)}?Replaces={escaped}>"
    refer = call1.request("REFER", extra=(refer_to, f"Referred-By: <{call1.local_uri}>"))
    load.add(t, bob, alice, refer)
    load.add(t + 0.01, alice, bob, call1.response(refer, 202, "Accepted"))
    from_alice = call1.swapped()

    def notify(when: float, frag: str, state: str) -> None:
        req = from_alice.request(
            "NOTIFY", body=frag, ctype="message/sipfrag;version=2.0",
            extra=("Event: refer", f"Subscription-State: {state}"),
        )  # fmt: skip
        load.add(when, alice, bob, req)
        load.add(when + 0.01, bob, alice, from_alice.response(req, 200, "OK"))

    notify(t + 0.02, "SIP/2.0 100 Trying\r\n", "active;expires=60")
    call3_extra = (f"Replaces: {replaces}", f"Referred-By: <{call1.local_uri}>")
    inv = call3.request("INVITE", body=sdp("alice", session + 4, alice[0], 6002), extra=call3_extra)
    t3 = t + 0.05
    load.add(t3, alice, carol, inv)
    answer = sdp("carol", session + 5, carol[0], 8002)
    load.add(t3 + 0.1, carol, alice, call3.response(inv, 200, "OK", body=answer, remote_tag=_hex(rng, 8)))
    load.add(t3 + 0.11, alice, carol, call3.request("ACK", cseq=call3.cseq))
    notify(t3 + 0.12, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource")
    _bye(load, call2.swapped(), t3 + 0.15)  # Carol ends the replaced call
    _bye(load, call1, t3 + 0.3)  # Bob ends the call with Alice
    _bye(load, call3, t3 + rng.uniform(10.0, 60.0))


# --- pcap -------------------------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def _ip(host: str) -> bytes:
    return bytes(int(x) for x in host.split("."))


def write_pcap(events: Iterable[Event], out: Path) -> int:
    """Classic pcap, Ethernet / IPv4 / UDP (no UDP checksum), microsecond timestamps."""
    count = 0
    with out.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, src, dst, payload in events:
            udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), count & 0xFFFF, 0, 64, 17, 0,
                             _ip(src[0]), _ip(dst[0]))  # fmt: skip
            ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
            frame = b"\0" * 12 + b"\x08\x00" + ip + udp
            us = round(t * 1_000_000)
            seconds, micros = divmod(us, 1_000_000)
            f.write(struct.pack("<IIII", EPOCH_START + seconds, micros, len(frame), len(frame)))
            f.write(frame)
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("kind", choices=("b2bua", "refer"))
    parser.add_argument("--calls", type=int, default=1000, help="b2bua: number of calls")
    parser.add_argument("--transfers", type=int, default=100, help="refer: number of transfers")
    parser.add_argument("--rate", type=float, help="calls (transfers) started per second")
    parser.add_argument("--anchored", action="store_true", help="b2bua: the B2BUA anchors the media")
    parser.add_argument("--same-numbers", action="store_true", help="b2bua: every call between two numbers")
    parser.add_argument("--seed", type=int)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--truth", type=Path, help='write {"calls": [[Call-ID, ...], ...]} here')
    args = parser.parse_args(argv)
    if args.kind == "b2bua":
        load = b2bua_load(
            args.calls, rate=args.rate or 50.0, seed=args.seed or 1, anchored=args.anchored,
            same_numbers=args.same_numbers,
        )  # fmt: skip
    else:
        load = refer_load(args.transfers, rate=args.rate or 5.0, seed=args.seed or 2)
    count = write_pcap(load.events, args.output)
    if args.truth:
        args.truth.write_text(json.dumps({"calls": load.calls}, indent=0) + "\n")
    print(f"{args.output}: {count} packets, {len(load.calls)} calls", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
