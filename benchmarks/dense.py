"""SIP-dense benchmark captures: a busy SBC port and a B2BUA, seeded, signalling only (no RTP).

Two workloads, both classic pcap (Ethernet / IPv4 / UDP, microsecond timestamps), written record by
record with ``struct`` (the frame layers come from ``generate.py``) and streamed to disk in time order,
so memory stays flat whatever the size:

``sip-dense``
    One SBC signalling port (203.0.113.10:5060) seen by a probe beside it. ``100,000 x scale`` calls,
    Poisson arrivals over ``1,500 s x scale`` (25 minutes at 1x), hold times drawn so that about 6,500
    calls are up at once. Each call is one Call-ID between the SBC and a phone (behind NAT, about 8,000
    of them on some 5,000 public addresses) or a carrier trunk (100-odd addresses, 30 % behind a
    record-routing proxy), in both directions. Every call has its own Call-ID, tags and branches in
    the formats of the UA family that made them (Yealink, Grandstream, Polycom, Cisco, snom,
    Linphone, MicroSIP, Zoiper, Bria, RFC 3261-style soft clients, BroadWorks, Sonus, FreeSWITCH,
    Asterisk, the SBC's own), a full header set (Via with rport/received, Max-Forwards, From/To with
    display names and E.164 numbers, Call-ID, CSeq, Contact, Allow, Supported, User-Agent/Server,
    Content-Type/Length; Session-Expires, P-Asserted-Identity, Record-Route/Route on some) and SDP
    in INVITE and 200 (and in 183 on early-media calls): each side its own c= address and port, 2-4
    codecs and telephone-event. Outcomes: answered (INVITE, 100, 180/183, 200, ACK, BYE, 200),
    cancelled (CANCEL, 200, 487, ACK), 486, 404, 408, 503; some INVITEs challenged with 401/407
    first; retransmissions on the RFC 3261 schedules (timer A for INVITEs, timer E for BYEs, timer
    G and the 2xx retransmission for final responses: T1 = 500 ms, doubling). About 7 messages a
    call, 546 bytes on average: 686,244 SIP messages and 415 MB at 1x.

``b2bua-dense``
    One B2BUA (198.51.100.50:5060) that re-originates every call: ``50,000 x scale`` calls over
    ``1,500 s x scale``, about 2,350 up at once. Leg A (caller -> B2BUA) and leg B (B2BUA -> callee)
    each have their own Call-ID, tags, branches and CSeq; the numbers are rewritten (``+4930...`` ->
    ``004930...``); the B2BUA anchors the media (its own c= address and ports on both legs, codecs
    relayed); routing takes from 2 ms to ~900 ms (log-normal, median 25 ms) so B-leg INVITEs leave
    out of order with respect to their A-leg INVITEs; provisional and final responses, CANCEL and
    BYE are mirrored to the other leg after 0.2-5 ms. 3 % of calls are refused by the B2BUA itself
    (one leg), 4 % of those to carriers hunt (a first B leg gets 503, a second B leg to another
    carrier follows). The
    ground truth (which Call-IDs make one call) is written beside the capture as
    ``NAME.truth.json``, in the format of ``samples/*.truth.json``.

Both print their counts (as ``tshark -z sip,stat`` counts them), ``--json`` saves them and
``--verify`` checks them against tshark. Same seed, scale and code: same bytes.

Example::

    python benchmarks/dense.py sip-dense -o /tmp/sip-dense.pcap --verify
    python benchmarks/dense.py b2bua-dense --scale 0.1 -o /tmp/b2bua.pcap --verify
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import json
import math
import random
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from generate import EPOCH_START, PCAP_HEADER, REC_HDR, Capture, Host, Stats, verify

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 20240612
WORKLOADS = ("sip-dense", "b2bua-dense")
SIP_DENSE_CALLS = 100_000
B2BUA_CALLS = 50_000
WINDOW_S = 1500.0  # arrivals spread over 25 minutes at scale 1
T1 = 500_000  # µs, RFC 3261 timer T1
T2 = 4_000_000  # µs, RFC 3261 timer T2 (cap of the non-INVITE and 2xx retransmission interval)

ROUTER_MAC = b"\x00\x1b\x21\x3c\x4d\x5e"  # every remote frame reaches the probe through one router


def generator_digest() -> str:
    """A digest of the generator's code (this file and ``generate.py``): a cached capture made by other
    code is stale."""
    h = hashlib.sha256()
    for name in ("dense.py", "generate.py"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# Identifiers in the formats of real UA families
# ---------------------------------------------------------------------------------------------------
ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
TOKEN = ALNUM + "~-"  # belle-sip uses these in Call-IDs and tags


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _dig(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def _aln(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _gs_ip(host: str) -> str:
    """Grandstream's Call-ID host: each digit of the address as a letter (0 -> A)."""
    ip = host.split(":", 1)[0]
    return ip.translate(str.maketrans("0123456789", "ABCDEFGHIJ"))


CITIES = ("atlanta", "biloxi", "chicago", "denver", "boston", "munich", "berlin", "hamburg", "vienna")


@dataclass(frozen=True, slots=True)
class Family:
    """How one kind of SIP software spells its identifiers and headers."""

    name: str
    agents: tuple[str, ...]
    call_id: Callable[[random.Random, str], str]
    """(rng, its own sent-by host:port) -> a Call-ID."""
    tag: Callable[[random.Random], str]
    branch: Callable[[random.Random], str]
    """The part of the branch after the magic cookie ``z9hG4bK``."""
    allow: str
    supported: str
    rport: bool
    """Puts ``;rport`` into its Via (RFC 3581)."""
    session: str
    """SDP ``s=`` line."""
    codecs: tuple[int, ...]
    """Payload types it offers, in its order of preference."""
    timer: float
    """Share of its INVITEs with Session-Expires (RFC 4028)."""
    instance: bool = False
    """Puts a ``+sip.instance`` (RFC 5626) on its Contact."""


ALLOW_PHONE = (
    "INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, UPDATE, "
    "MESSAGE"
)
ALLOW_SHORT = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY"
ALLOW_FS = (
    "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE"
)

PHONE_FAMILIES = (
    Family(
        "yealink",
        ("Yealink SIP-T46S 66.86.0.15", "Yealink SIP-T54W 96.86.0.70", "Yealink SIP-T33G 124.86.0.40"),
        lambda r, h: f"0_{_dig(r, 10)}@{h.split(':')[0]}",
        lambda r: _dig(r, 10),
        lambda r: _dig(r, 16),
        ALLOW_PHONE,
        "replaces, timer",
        True,
        "SDP data",
        (8, 0, 9, 18),
        0.5,
    ),
    Family(
        "grandstream",
        ("Grandstream GXP2170 1.0.11.23", "Grandstream GRP2614 1.0.5.67"),
        lambda r, h: f"{_dig(r, 10)}-{h.split(':')[1]}-{r.randrange(1, 9)}@{_gs_ip(h)}",
        lambda r: _dig(r, 10),
        lambda r: _dig(r, 18),
        ALLOW_PHONE,
        "replaces, path, timer, eventlist",
        True,
        "SIP Call",
        (0, 8, 9, 18),
        0.4,
    ),
    Family(
        "polycom",
        ("PolycomVVX-VVX_411-UA/6.4.3.5018", "PolycomVVX-VVX_450-UA/6.3.1.8427"),
        lambda r, h: f"{_hex(r, 8)}-{_hex(r, 8)}-{_hex(r, 8)}-{_hex(r, 8)}",
        lambda r: f"{_hex(r, 8)}-{_hex(r, 8)}",
        lambda r: _hex(r, 24),
        "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, UPDATE, REFER",
        "100rel, replaces",
        True,
        "-",
        (9, 0, 8, 18),
        0.0,
    ),
    Family(
        "cisco",
        ("Cisco-CP8845/14.1.1", "Cisco-CP7841/12.8.1"),
        lambda r, h: f"{_hex(r, 8)}-{_hex(r, 8)}-{_hex(r, 8)}-{_hex(r, 8)}@{h.split(':')[0]}",
        lambda r: f"{_hex(r, 24)}-{_hex(r, 8)}",
        lambda r: _hex(r, 16),
        "ACK, BYE, CANCEL, INVITE, NOTIFY, OPTIONS, REFER, REGISTER, UPDATE, SUBSCRIBE, INFO",
        "replaces, join, sdp-anat, norefersub, resource-priority, extended-refer, X-cisco-callinfo",
        False,
        "SIP Call",
        (0, 8, 9, 18),
        0.6,
    ),
    Family(
        "snom",
        ("snom D385/10.1.141.13", "snomD735/10.1.101.11"),
        lambda r, h: f"{_hex(r, 12)}-{_aln(r, 12, LOWER_ALNUM)}",
        lambda r: _aln(r, 10, LOWER_ALNUM),
        lambda r: "-" + _aln(r, 15, LOWER_ALNUM),
        ALLOW_SHORT,
        "timer, 100rel, replaces, from-change",
        True,
        "-",
        (9, 8, 0, 18),
        0.3,
    ),
    Family(
        "linphone",
        ("Linphone/5.2.0 (belle-sip/5.2.0)", "LinphoneAndroid/5.1.2 (belle-sip/5.2.0)"),
        lambda r, h: _aln(r, 10, TOKEN),
        lambda r: _aln(r, 9, TOKEN),
        lambda r: "." + _aln(r, 16, TOKEN),
        "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, PRACK, UPDATE",
        "replaces, outbound, gruu, path",
        True,
        "Talk",
        (111, 9, 0, 8),
        0.0,
        True,
    ),
    Family(
        "microsip",
        ("MicroSIP/3.21.3", "MicroSIP/3.20.7"),
        lambda r, h: _hex(r, 32),
        lambda r: _hex(r, 32),
        lambda r: "Pj" + _hex(r, 30),
        "PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE, OPTIONS",
        "replaces, 100rel, timer, norefersub",
        True,
        "pjmedia",
        (9, 8, 0, 18),
        0.6,
    ),
    Family(
        "zoiper",
        ("Z 5.6.1 v2.10.19.5", "Z 5.5.14 v2.10.18.2"),
        lambda r, h: base64.b64encode(_hex(r, 32).encode()).decode().rstrip("=") + ".",
        lambda r: _hex(r, 8),
        lambda r: f"-524287-1---{_hex(r, 16)}",
        "INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE",
        "replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri",
        True,
        "Z",
        (8, 0, 9, 111),
        0.5,
        True,
    ),
    Family(
        "bria",
        ("Bria 6 release 6.5.4 stamp 109820", "Bria iOS release 6.14.3 stamp 119"),
        lambda r, h: _aln(r, 22),
        lambda r: _hex(r, 8),
        lambda r: f"-d8754z-{_hex(r, 16)}-1---d8754z-",
        "INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE",
        "replaces, norefersub, extended-refer, timer, X-cisco-serviceuri",
        True,
        "Bria 6 release 6.5.4 stamp 109820",
        (111, 9, 0, 8, 18),
        0.5,
    ),
    Family(
        "softclient",
        ("eyeBeam release 1105a stamp 56793", "Twinkle/1.10.2", "Jitsi2.10.5550Linux"),
        lambda r, h: f"{_hex(r, 14)}@pc{r.randrange(1, 99)}.{r.choice(CITIES)}.example.com",
        lambda r: _dig(r, 10),
        lambda r: _aln(r, 16, LOWER_ALNUM),
        ALLOW_SHORT,
        "replaces",
        False,
        "Session SDP",
        (0, 8, 18),
        0.0,
    ),
)
PHONE_WEIGHTS = (26, 14, 12, 10, 6, 6, 8, 8, 5, 5)

TRUNK_FAMILIES = (
    Family(
        "broadworks",
        ("BroadWorks",),
        lambda r, h: f"BW{_dig(r, 6)}{_dig(r, 9)}{_dig(r, 4)}-{_dig(r, 9)}@{h.split(':')[0]}",
        lambda r: f"{_dig(r, 9)}-{_dig(r, 13)}",
        lambda r: "BroadWorks." + _aln(r, 20, LOWER_ALNUM),
        "ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, PRACK, REFER, NOTIFY, UPDATE",
        "100rel, timer",
        False,
        "-",
        (8, 0, 18),
        0.8,
    ),
    Family(
        "sonus",
        ("Sonus_UAC", "Ribbon SBC SWe 11.01"),
        lambda r, h: f"{_aln(r, 32)}@{h.split(':')[0]}",
        lambda r: "gK" + _hex(r, 8),
        lambda r: _hex(r, 20),
        "INVITE, ACK, CANCEL, BYE, REGISTER, REFER, INFO, SUBSCRIBE, NOTIFY, PRACK, UPDATE, OPTIONS",
        "timer, 100rel",
        False,
        "SBC",
        (8, 18, 0),
        0.6,
    ),
    Family(
        "freeswitch",
        ("FreeSWITCH-mod_sofia/1.10.11-release~64bit",),
        lambda r, h: _uuid(r),
        lambda r: _aln(r, 13),
        lambda r: _aln(r, 16),
        ALLOW_FS,
        "timer, path, replaces",
        True,
        "FreeSWITCH",
        (8, 0, 9),
        0.5,
    ),
    Family(
        "asterisk",
        ("Asterisk PBX 20.5.0", "Asterisk PBX 18.20.1"),
        lambda r, h: _uuid(r),
        _uuid,
        lambda r: "Pj" + _uuid(r).replace("-", "")[:28],
        "OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, MESSAGE, "
        "REFER",
        "100rel, timer, replaces, norefersub",
        True,
        "Asterisk",
        (8, 0, 9, 18),
        0.3,
    ),
)
TRUNK_WEIGHTS = (3, 3, 2, 2)

SBC_FAMILY = Family(
    "audiocodes",
    ("Mediant SW/v.7.40A.500.003",),
    lambda r, h: f"{_dig(r, 22)}@{h.split(':')[0]}",
    lambda r: "1c" + _dig(r, 10),
    lambda r: "ac" + _dig(r, 16),
    "REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE",
    "em,timer,replaces,path",
    False,
    "Phone-Call",
    (8, 0, 9, 18),
    0.4,
)
B2BUA_FAMILY = TRUNK_FAMILIES[2]  # a FreeSWITCH as the B2BUA

CODECS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("PCMU/8000", ()),
    8: ("PCMA/8000", ()),
    9: ("G722/8000", ()),
    18: ("G729/8000", ("annexb=no",)),
    111: ("opus/48000/2", ("useinbandfec=1; minptime=10",)),
}

FIRST = (
    "Anna", "Lukas", "Mia", "Leon", "Emma", "Paul", "Sofia", "Jonas", "Hannah", "Felix", "Lea", "Maximilian",
    "Lena", "Elias", "Marie", "Noah", "Laura", "Ben", "Julia", "Finn", "Sarah", "Tim", "Katharina", "David",
    "Nina", "Jan", "Sabine", "Thomas", "Petra", "Michael", "Claudia", "Andreas", "Monika", "Stefan", "Aylin",
    "Mehmet", "Olga", "Piotr", "Giulia", "Ahmed", "Jörg", "Björn",
)  # fmt: skip
LAST = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun",
    "Krüger", "Hofmann", "Hartmann", "Lange", "Yılmaz", "Kowalski", "Rossi", "Nowak", "Groß", "Vogel",
)  # fmt: skip
WORDS = (
    "nord", "sued", "alpha", "kraft", "werk", "data", "logistik", "medien", "bau", "consult", "technik",
    "handel", "stahl", "energie", "pflege", "kanzlei", "praxis", "immobilien", "software", "transport",
)  # fmt: skip
AREAS = ("30", "40", "89", "69", "221", "211", "711", "341", "351", "511", "911", "201", "421", "231")
MOBILE = ("151", "152", "157", "160", "162", "170", "171", "172", "173", "175", "176", "177", "179")
FOREIGN = (("43", 10), ("41", 9), ("33", 9), ("44", 10), ("1", 10), ("31", 9), ("39", 10), ("48", 9))


def _external_number(rng: random.Random) -> str:
    """A random E.164 number of the outside world: German landline or mobile, or abroad."""
    x = rng.random()
    if x < 0.5:
        area = rng.choice(AREAS)
        return f"+49{area}{_dig(rng, 10 - len(area))}"
    if x < 0.8:
        return f"+49{rng.choice(MOBILE)}{_dig(rng, rng.choice((7, 8)))}"
    cc, n = rng.choice(FOREIGN)
    return f"+{cc}{_dig(rng, n)}"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


# ---------------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Party:
    """One SIP endpoint as the probe sees it."""

    wire: Host
    """The address and port its datagrams carry (the NAT's public side for a phone behind NAT)."""
    sent_by: str
    """host:port in its Via (a private address behind NAT)."""
    contact_host: str
    """host:port[;params] of its Contact URI."""
    media_ips: tuple[str, ...]
    """c= addresses it uses."""
    family: Family
    agent: str
    local: bool = False
    """The box the probe sits on (the SBC, the B2BUA): what it sends is captured as it leaves."""
    nat: bool = False
    rtt_us: int = 0
    """Round trip between the probe and this endpoint."""
    number: str = ""
    display: str = ""
    domain: str = ""
    inner_via: str = ""
    """A carrier trunk behind a proxy: host:port of the softswitch behind it (a second Via)."""
    record_route: str = ""
    """The Record-Route its proxy adds (empty: none)."""
    instance: str = ""


def _host(ip: bytes, port: int, mac: bytes, agent: str = "") -> Host:
    return Host(ip=ip, addr=".".join(map(str, ip)), mac=mac, port=port, user="", agent=agent)


class Pools:
    """The phones and trunks around the SBC or B2BUA (fixed per seed, whatever the scale)."""

    def __init__(self, rng: random.Random, *, phones: int, carriers: int) -> None:
        self.rng = rng
        self.phones: list[Party] = []
        self.trunks: list[Party] = []
        tenants = []
        for i in range(max(phones // 25, 1)):
            area = rng.choice(AREAS)
            block = _dig(rng, 8 - len(area))
            domain = f"sip.{rng.choice(WORDS)}-{rng.choice(WORDS)}{i}.de"
            tenants.append((f"+49{area}{block}", domain))
        nat_ips: list[bytes] = []
        used: set[bytes] = set()
        while len(nat_ips) < max(phones * 5 // 8, 1):  # CGNAT space 100.64.0.0/10, several phones per NAT
            ip = bytes((100, 64 + rng.randrange(64), rng.randrange(256), rng.randrange(1, 255)))
            if ip not in used:
                used.add(ip)
                nat_ips.append(ip)
        nat_ports: dict[bytes, set[int]] = {}
        for i in range(phones):
            fam = rng.choices(PHONE_FAMILIES, PHONE_WEIGHTS)[0]
            prefix, domain = tenants[i % len(tenants)]
            nat = rng.random() < 0.85
            if nat:
                pub = nat_ips[rng.randrange(len(nat_ips))]
                taken = nat_ports.setdefault(pub, set())
                port = rng.randrange(30000, 65000)
                while port in taken:
                    port = rng.randrange(30000, 65000)
                taken.add(port)
                priv = f"192.168.{rng.randrange(256)}.{rng.randrange(2, 255)}"
                lport = rng.choice((5060, 5060, 5060, 5062, 5070))
                sent_by = f"{priv}:{lport}"
                media = (priv,) if rng.random() < 0.7 else (".".join(map(str, pub)),)
            else:  # a phone on a public address (a branch office with a routed range)
                pub = bytes((198, 19, rng.randrange(128, 256), rng.randrange(1, 255)))
                port = rng.choice((5060, 5060, 5062, 5070, 5080))
                sent_by = f"{'.'.join(map(str, pub))}:{port}"
                media = (".".join(map(str, pub)),)
            contact = sent_by + (";transport=udp" if rng.random() < 0.5 else "")
            self.phones.append(
                Party(
                    wire=_host(pub, port, ROUTER_MAC),
                    sent_by=sent_by,
                    contact_host=contact,
                    media_ips=media,
                    family=fam,
                    agent=rng.choice(fam.agents),
                    nat=nat,
                    rtt_us=rng.randrange(8_000, 160_000),
                    number=f"{prefix}{i // len(tenants):03d}",
                    display=_name(rng),
                    domain=domain,
                    instance=f"<urn:uuid:{_uuid(rng)}>" if fam.instance else "",
                )
            )
        for c in range(carriers):
            fam = rng.choices(TRUNK_FAMILIES, TRUNK_WEIGHTS)[0]
            domain = f"trunk.{rng.choice(WORDS)}-carrier{c}.net"
            proxied = rng.random() < 0.3
            for _ in range(rng.randrange(1, 5)):
                ip = bytes((198, 18, rng.randrange(256), rng.randrange(1, 255)))
                addr = ".".join(map(str, ip))
                inner = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(2, 255)}:5060"
                gateways = tuple(f"198.19.{rng.randrange(128)}.{rng.randrange(1, 255)}" for _ in range(3))
                if proxied:
                    rr = rng.choice(
                        (
                            f"<sip:{addr};lr;ftag=%s;did=%s>",
                            f"<sip:{addr};lr=on;ftag=%s>",
                            f"<sip:{addr}:5060;lr>",
                        )
                    )
                else:
                    rr = ""
                self.trunks.append(
                    Party(
                        wire=_host(ip, 5060, ROUTER_MAC),
                        sent_by=f"{addr}:5060",
                        contact_host=inner if proxied else f"{addr}:5060",
                        media_ips=gateways,
                        family=fam,
                        agent=rng.choice(fam.agents),
                        rtt_us=rng.randrange(1_500, 40_000),
                        domain=domain,
                        inner_via=inner if proxied else "",
                        record_route=rr,
                    )
                )

    def hosts(self) -> int:
        """Distinct remote IP addresses."""
        return len({p.wire.ip for p in self.phones} | {p.wire.ip for p in self.trunks})


def local_party(ip: str, agent: str, family: Family, media: tuple[str, ...]) -> Party:
    """The SBC or B2BUA the probe sits beside."""
    raw = bytes(int(x) for x in ip.split("."))
    return Party(
        wire=_host(raw, 5060, b"\x00\x50\x56\x8a\x11\x01", agent),
        sent_by=f"{ip}:5060",
        contact_host=f"{ip}:5060",
        media_ips=media,
        family=family,
        agent=agent,
        local=True,
    )


# ---------------------------------------------------------------------------------------------------
# The capture: frames from generate.py, kept in a heap and written out in time order as they settle
# ---------------------------------------------------------------------------------------------------
class StreamCapture(Capture):
    """A ``Capture`` that streams: frames wait in a heap until no later call can come before them."""

    def __init__(self, rng: random.Random, out: BinaryIO) -> None:
        super().__init__(rng, udp_checksums=False)
        self.out = out
        self.heap: list[tuple[int, int, bytes]] = []
        self.seq = 0
        self.written = PCAP_HEADER.size
        self.first_ts: int | None = None
        self.last_ts = 0
        self.call_last = 0
        """Latest timestamp queued for the current call."""
        self.payload_bytes = 0
        self.extras: Counter[str] = Counter()
        """Calls challenged, hunted...: things a call may have besides its outcome."""
        out.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def add(self, ts_us: int, frame: bytes) -> None:
        n = len(frame)
        heapq.heappush(
            self.heap, (ts_us, self.seq, REC_HDR.pack(ts_us // 1_000_000, ts_us % 1_000_000, n, n) + frame)
        )
        self.seq += 1

    def flush(self, before_us: int | None = None) -> None:
        """Write every frame earlier than ``before_us`` (all of them when None)."""
        heap = self.heap
        blobs = []
        pop = heapq.heappop
        while heap and (before_us is None or heap[0][0] < before_us):
            ts, _, rec = pop(heap)
            if self.first_ts is None:
                self.first_ts = ts
            self.last_ts = ts
            blobs.append(rec)
        if blobs:
            blob = b"".join(blobs)
            self.out.write(blob)
            self.written += len(blob)
            self.stats.frames += len(blobs)

    def sip(self, ts: int, src: Party, dst: Party, msg: bytes, *, resent: bool = False) -> None:
        """Queue one SIP message over UDP and count it as ``tshark -z sip,stat`` does."""
        self.udp(ts, src.wire, dst.wire, sport=src.wire.port, dport=dst.wire.port, payload=msg)
        st = self.stats
        st.sip_messages += 1
        self.payload_bytes += len(msg)
        if msg.startswith(b"SIP/2.0 "):
            st.responses[int(msg[8:11])] += 1
        else:
            st.requests[msg[: msg.index(b" ")].decode()] += 1
        if resent:
            st.resent += 1
        self.call_last = max(self.call_last, ts)


# ---------------------------------------------------------------------------------------------------
# SIP messages of one leg (one Call-ID)
# ---------------------------------------------------------------------------------------------------
REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    503: "Service Unavailable",
}


def _msg(start: str, headers: list[str], body: bytes = b"") -> bytes:
    if body:
        headers.append("Content-Type: application/sdp")
    headers.append(f"Content-Length: {len(body)}")
    return ("\r\n".join([start, *headers, "", ""])).encode() + body


@dataclass(slots=True)
class Sent:
    """A request as sent: what its responses copy, and where it went."""

    method: str
    cseq: int
    branch: str
    vias: list[str]
    """The Via lines its responses carry (with received/rport as the receiver filled them in)."""
    sender: Party
    ruri: str
    raw: bytes
    last_ts: int = 0


@dataclass(slots=True)
class Media:
    """One side's SDP state."""

    ip: str
    port: int
    codecs: tuple[int, ...]
    te: int
    sess: int
    user: str
    session: str
    version: int = 0
    fmtp: bool = True
    sendrecv: bool = True

    def sdp(self) -> bytes:
        """The SDP body (each call renders its own; the version goes up on every new offer/answer)."""
        pts = " ".join(str(c) for c in self.codecs)
        lines = [
            "v=0",
            f"o={self.user} {self.sess} {self.sess + self.version} IN IP4 {self.ip}",
            f"s={self.session}",
            f"c=IN IP4 {self.ip}",
            "t=0 0",
            f"m=audio {self.port} RTP/AVP {pts} {self.te}",
        ]
        for c in self.codecs:
            name, fmtp = CODECS[c]
            lines.append(f"a=rtpmap:{c} {name}")
            lines.extend(f"a=fmtp:{c} {f}" for f in fmtp)
        lines.append(f"a=rtpmap:{self.te} telephone-event/8000")
        if self.fmtp:
            lines.append(f"a=fmtp:{self.te} 0-16")
        lines.append("a=ptime:20")
        if self.sendrecv:
            lines.append("a=sendrecv")
        self.version += 1
        return ("\r\n".join(lines) + "\r\n").encode()


def _media(rng: random.Random, party: Party, *, offer: tuple[int, ...] | None = None) -> Media:
    """An offer (2-4 of the party's codecs) or an answer (its first codec the offer has, or the offer's)."""
    fam = party.family
    if offer is None:
        n = min(len(fam.codecs), rng.choice((2, 2, 3, 3, 4)))
        codecs = fam.codecs[:n]
        te = rng.choice((101, 101, 101, 96, 100, 126))
    else:
        common = [c for c in fam.codecs if c in offer]
        codecs = (common[0] if common else offer[0],)
        te = 101
    if party.local:
        ip = party.media_ips[rng.randrange(len(party.media_ips))]
        port = rng.randrange(20000, 60000) & ~1
    else:
        ip = party.media_ips[rng.randrange(len(party.media_ips))]
        port = rng.randrange(10000, 29999) & ~1  # below the NAT ports 30000-64999, even (RTCP on +1)
    user = "-" if fam.session in ("-", "SDP data") else fam.name
    sess = rng.randrange(10**6, 10**10)
    return Media(ip, port, codecs, te, sess, user, fam.session, 0, fam.rport, rng.random() < 0.5)


class Leg:
    """The identifiers and routing state of one Call-ID between a UAC and a UAS."""

    def __init__(
        self,
        cap: StreamCapture,
        uac: Party,
        uas: Party,
        *,
        from_user: str,
        from_display: str,
        from_domain: str,
        to_user: str,
        to_domain: str,
        ruri: str,
        invite_extra: tuple[str, ...] = (),
    ) -> None:
        rng = cap.rng
        self.cap, self.rng = cap, rng
        self.uac, self.uas = uac, uas
        self.call_id = uac.family.call_id(rng, uac.sent_by)
        cap.stats.call_ids += 1
        self.from_tag = uac.family.tag(rng)
        self.to_tag = ""
        shown = f'"{from_display}" ' if from_display else ""
        self.from_val = f"{shown}<sip:{from_user}@{from_domain}>;tag={self.from_tag}"
        self.to_val = f"<sip:{to_user}@{to_domain}>"
        self.cseq = rng.randrange(1, 1000) if rng.random() < 0.7 else rng.randrange(1, 2**31 // 64)
        self.uas_cseq = rng.randrange(1, 1000)
        if self.uas_cseq == self.cseq + 1 or self.uas_cseq == self.cseq:
            self.uas_cseq += 7
        self.ruri = ruri
        inst = f';+sip.instance="{uac.instance}"' if uac.instance else ""
        self.uac_contact = f"<sip:{from_user}@{uac.contact_host}>{inst}"
        self.uas_contact = f"<sip:{to_user}@{uas.contact_host}>"
        self.uac_target = f"sip:{from_user}@{uac.contact_host.split(';')[0]}"
        self.uas_target = f"sip:{to_user}@{uas.contact_host.split(';')[0]}"
        # the route set: a record-routing proxy in front of either side
        proxy = uac if uac.record_route else uas if uas.record_route else None
        self.rr = ""
        if proxy is not None:
            rr = proxy.record_route
            if "%s" in rr:
                rr = rr % ((self.from_tag, _hex(rng, 8))[: rr.count("%s")])
            self.rr = f"Record-Route: {rr}"
        self.invite_extra = invite_extra
        self.timer = rng.random() < uac.family.timer
        self.events = 0

    # -- headers ------------------------------------------------------------------------------------
    def _vias(self, sender: Party, receiver: Party, branch: str) -> tuple[list[str], list[str]]:
        """(the Via lines as sent, as the responses carry them)."""
        top = f"Via: SIP/2.0/UDP {sender.sent_by}"
        if sender.inner_via:  # a Kamailio in front of a carrier's softswitch: its own Via on top
            rng = self.rng
            sent = f"{top};branch=z9hG4bK{_hex(rng, 4)}.{_hex(rng, 32)}.0"
            ip = sender.inner_via.split(":")[0]
            inner = f"Via: SIP/2.0/UDP {sender.inner_via};received={ip};rport=5060;branch=z9hG4bK{branch}"
            return [sent, inner], [sent, inner]
        if sender.family.rport:
            sent = f"{top};rport;branch=z9hG4bK{branch}"
            if receiver.local:
                recv = f";received={sender.wire.addr}" if sender.nat else ""
                back = f"{top};rport={sender.wire.port}{recv};branch=z9hG4bK{branch}"
            else:
                back = sent
        else:
            sent = f"{top};branch=z9hG4bK{branch}"
            back = f"{top};received={sender.wire.addr};branch=z9hG4bK{branch}" if sender.nat else sent
        return [sent], [back]

    def _from_to(self, from_uac: bool, to_tagged: bool) -> tuple[str, str]:
        to = self.to_val + (f";tag={self.to_tag}" if to_tagged and self.to_tag else "")
        if from_uac:
            return f"From: {self.from_val}", f"To: {to}"
        return f"From: {to}", f"To: {self.from_val}"

    # -- requests -----------------------------------------------------------------------------------
    def invite(self, ts: int, *, extra: tuple[str, ...] = (), body: bytes = b"") -> Sent:
        """The initial INVITE (or its re-send with credentials: ``self.cseq`` bumped by the caller)."""
        uac, uas = self.uac, self.uas
        branch = uac.family.branch(self.rng)
        vias, back = self._vias(uac, uas, branch)
        h = [
            *vias,
            f"Max-Forwards: {69 if uac.inner_via else 70}",
            f"From: {self.from_val}",
            f"To: {self.to_val}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} INVITE",
            f"Contact: {self.uac_contact}",
        ]
        if uac.record_route:
            h.append(self.rr)
        h.extend(self.invite_extra)
        h.extend(extra)
        h.append(f"Allow: {uac.family.allow}")
        h.append(f"Supported: {uac.family.supported}")
        if self.timer:
            h += ["Session-Expires: 1800;refresher=uac", "Min-SE: 90"]
        h.append(f"User-Agent: {uac.agent}")
        raw = _msg(f"INVITE {self.ruri} SIP/2.0", h, body)
        self.cap.sip(ts, uac, uas, raw)
        return Sent("INVITE", self.cseq, branch, back, uac, self.ruri, raw, ts)

    def resend(self, ts: int, sent: Sent, dst: Party) -> None:
        """A retransmission of a request: the same bytes again."""
        self.cap.sip(ts, sent.sender, dst, sent.raw, resent=True)
        sent.last_ts = ts

    def ack_non2xx(self, ts: int, inv: Sent) -> None:
        """The ACK of a 3xx-6xx: same branch, the INVITE's R-URI and top Via (RFC 3261 §17.1.1.3)."""
        uac = self.uac
        h = [
            self._top_via_as_sent(inv),
            f"Max-Forwards: {69 if uac.inner_via else 70}",
            f"From: {self.from_val}",
            f"To: {self.to_val};tag={self.to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {inv.cseq} ACK",
            f"User-Agent: {uac.agent}" if not uac.local else "",
        ]
        self.cap.sip(ts, uac, self.uas, _msg(f"ACK {inv.ruri} SIP/2.0", [x for x in h if x]))

    def _top_via_as_sent(self, sent: Sent) -> str:
        """The top Via of a request as its sender wrote it (before the receiver added received/rport)."""
        top = sent.vias[0]
        head, _, branch = top.partition(";branch=")
        if ";rport=" in head:
            head = head.split(";rport=")[0] + ";rport"
        elif ";received=" in head:
            head = head.split(";received=")[0]
        return f"{head};branch={branch}"

    def cancel(self, ts: int, inv: Sent) -> Sent:
        """CANCEL of the INVITE: its top Via and branch, R-URI, From, To and CSeq number."""
        uac = self.uac
        via = self._top_via_as_sent(inv)
        h = [
            via,
            "Max-Forwards: 70",
            f"From: {self.from_val}",
            f"To: {self.to_val}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {inv.cseq} CANCEL",
        ]
        if self.rng.random() < 0.4:
            h.append('Reason: SIP;cause=487;text="ORIGINATOR_CANCEL"')
        if not uac.local:
            h.append(f"User-Agent: {uac.agent}")
        raw = _msg(f"CANCEL {inv.ruri} SIP/2.0", h)
        self.cap.sip(ts, uac, self.uas, raw)
        return Sent("CANCEL", inv.cseq, inv.branch, [inv.vias[0]], uac, inv.ruri, raw, ts)

    def in_dialog(
        self, ts: int, method: str, *, from_uac: bool, cseq: int, extra: tuple[str, ...] = ()
    ) -> Sent:
        """ACK of a 2xx or BYE: a new branch, the remote target as R-URI, the route set as Route."""
        sender, receiver = (self.uac, self.uas) if from_uac else (self.uas, self.uac)
        branch = sender.family.branch(self.rng)
        vias, back = self._vias(sender, receiver, branch)
        target = self.uas_target if from_uac else self.uac_target
        frm, to = self._from_to(from_uac, True)
        h = [*vias]
        if self.rr and not sender.record_route:  # the route set leads through the other side's proxy
            h.append("Route: " + self.rr.split(": ", 1)[1])
        h += ["Max-Forwards: 70", frm, to, f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}"]
        h.extend(extra)
        if method != "ACK" or not sender.local:
            h.append(f"User-Agent: {sender.agent}")
        raw = _msg(f"{method} {target} SIP/2.0", h)
        self.cap.sip(ts, sender, receiver, raw)
        return Sent(method, cseq, branch, back, sender, target, raw, ts)

    # -- responses ----------------------------------------------------------------------------------
    def respond(
        self,
        ts: int,
        req: Sent,
        code: int,
        *,
        body: bytes = b"",
        extra: tuple[str, ...] = (),
        resent: bool = False,
    ) -> bytes:
        """A response to ``req`` from the party it went to."""
        from_uac = req.sender is self.uac
        responder, receiver = (self.uas, self.uac) if from_uac else (self.uac, self.uas)
        tagged = code > 100
        if tagged and not self.to_tag and from_uac:
            self.to_tag = responder.family.tag(self.rng)
        frm, to = self._from_to(from_uac, tagged)
        h = [*req.vias]
        invite = req.method == "INVITE"
        if invite and 100 < code < 300 and self.rr:
            h.append(self.rr)
        h += [frm, to, f"Call-ID: {self.call_id}", f"CSeq: {req.cseq} {req.method}"]
        if invite and 100 < code < 300:
            h.append(f"Contact: {self.uas_contact}")
        if invite and code == 200:
            h.append(f"Allow: {responder.family.allow}")
            h.append(f"Supported: {responder.family.supported}")
            if self.timer:
                h += ["Session-Expires: 1800;refresher=uac", "Require: timer"]
        h.extend(extra)
        if code > 100:
            h.append(f"Server: {responder.agent}")
        raw = _msg(f"SIP/2.0 {code} {REASONS[code]}", h, body)
        self.cap.sip(ts, responder, receiver, raw, resent=resent)
        return raw

    def resend_response(self, ts: int, req: Sent, raw: bytes) -> None:
        """A retransmitted response (timer G, or the UAS core's 2xx retransmission)."""
        from_uac = req.sender is self.uac
        responder, receiver = (self.uas, self.uac) if from_uac else (self.uac, self.uas)
        self.cap.sip(ts, responder, receiver, raw, resent=True)


def _challenge(rng: random.Random, code: int, realm: str) -> tuple[str, ...]:
    name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
    opaque = f', opaque="{_hex(rng, 16)}"' if rng.random() < 0.5 else ""
    return (f'{name}: Digest realm="{realm}", nonce="{_hex(rng, rng.choice((32, 40, 48)))}"{opaque}, '
            'algorithm=MD5, qop="auth"',)  # fmt: skip


def _credentials(rng: random.Random, code: int, user: str, realm: str, uri: str) -> tuple[str, ...]:
    name = "Authorization" if code == 401 else "Proxy-Authorization"
    return (
        f'{name}: Digest username="{user}", realm="{realm}", nonce="{_hex(rng, 40)}", uri="{uri}", '
        f'response="{_hex(rng, 32)}", algorithm=MD5, cnonce="{_hex(rng, 16)}", qop=auth, nc=00000001',
    )


def _retransmits(start: int, count: int, cap: int = T2) -> list[int]:
    """``count`` retransmission times after ``start``: T1, then doubling (capped at ``cap``)."""
    out, t, step = [], start, T1
    for _ in range(count):
        t += step
        out.append(t)
        step = min(step * 2, cap)
    return out


# ---------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------
class Clock:
    """Delays as the probe sees them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def proc(self) -> int:
        """The probe's own box reacting to a message (0.1-~3 ms)."""
        return int(self.rng.lognormvariate(math.log(600), 0.7)) + 80

    def reply(self, p: Party) -> int:
        """How long after the probe's box sent something ``p``'s reaction comes back."""
        if p.local:
            return self.proc()
        return p.rtt_us + int(self.rng.lognormvariate(math.log(1500), 0.8))

    def mirror(self) -> int:
        """A B2BUA relaying an event from one leg to the other (0.2-5 ms)."""
        return self.rng.randrange(200, 5000)

    def pdd(self) -> int:
        """INVITE to the first ringing."""
        return int(min(self.rng.lognormvariate(math.log(900_000), 0.8), 12_000_000))

    def ring(self) -> int:
        """Ringing until the callee answers or the caller gives up."""
        return int(min(self.rng.lognormvariate(math.log(6_000_000), 0.6), 55_000_000))

    def talk(self, mean_s: float) -> int:
        """Talk time: log-normal (sigma 0.9) of the given mean, cut at 20 minutes."""
        mu = math.log(mean_s * 1e6) - 0.9**2 / 2
        return int(min(self.rng.lognormvariate(mu, 0.9), 1200e6))


# ---------------------------------------------------------------------------------------------------
# sip-dense: one SBC port
# ---------------------------------------------------------------------------------------------------
SIP_DENSE_OUTCOMES = {
    "cancelled": 0.12,
    "busy": 0.07,
    "not-found": 0.04,
    "timeout": 0.03,
    "unavailable": 0.04,
}
P_CHALLENGE = 0.15  # of the INVITEs phones send: a 401/407 first
P_TIMER_A = 0.05  # INVITE retransmitted (the 100 Trying is late)
P_2XX = 0.04  # 2xx retransmitted (the ACK is late)
P_TIMER_E = 0.05  # BYE retransmitted
P_TIMER_G = 0.04  # a 3xx-6xx retransmitted (its ACK is late)
P_EARLY_MEDIA = 0.2  # 183 with SDP instead of 180
SIP_DENSE_TALK_S = 128.0  # mean talk time: about 6,500 calls up at once at 66.7 calls/s


def _outcome(rng: random.Random, shares: dict[str, float]) -> str:
    x = rng.random()
    for kind, share in shares.items():
        if x < share:
            return kind
        x -= share
    return "answered"


class Flow:
    """Writes one call (single leg or both legs of a B2BUA)."""

    def __init__(self, cap: StreamCapture, pools: Pools, local: Party, talk_s: float) -> None:
        self.cap = cap
        self.rng = cap.rng
        self.pools = pools
        self.local = local
        self.clock = Clock(cap.rng)
        self.talk_s = talk_s

    # -- one leg, the probe at one end --------------------------------------------------------------
    def single_leg(self, t0: int) -> str:
        """One sip-dense call starting at ``t0``; returns its outcome."""
        rng, clk, sbc = self.rng, self.clock, self.local
        pools = self.pools
        x = rng.random()
        pai: tuple[str, ...] = ()
        if x < 0.45:  # a phone calls out through the SBC
            uac, uas = pools.phones[rng.randrange(len(pools.phones))], sbc
            dialled = _external_number(rng)
            if rng.random() < 0.3 and dialled.startswith("+49"):
                dialled = "0" + dialled[3:]  # dialled in national format
            leg = Leg(self.cap, uac, uas, from_user=uac.number, from_display=uac.display,
                      from_domain=uac.domain, to_user=dialled, to_domain=uac.domain,
                      ruri=f"sip:{dialled}@{uac.domain};user=phone")  # fmt: skip
        elif x < 0.70:  # a call for a phone, from the SBC
            uac, uas = sbc, pools.phones[rng.randrange(len(pools.phones))]
            caller = _external_number(rng)
            if rng.random() < 0.05:
                pai = (f"P-Asserted-Identity: <sip:{caller}@{sbc.domain}>", "Privacy: id")
                frm, disp, dom = "anonymous", "Anonymous", "anonymous.invalid"
            else:
                frm, disp, dom = caller, rng.choice((_name(rng), caller, "")), uas.domain
                if rng.random() < 0.5:
                    pai = (f'P-Asserted-Identity: "{disp or caller}" <sip:{caller}@{uas.domain};user=phone>',)
            leg = Leg(self.cap, uac, uas, from_user=frm, from_display=disp, from_domain=dom,
                      to_user=uas.number, to_domain=uas.domain,
                      ruri=f"sip:{uas.number}@{uas.contact_host}", invite_extra=pai)  # fmt: skip
        elif x < 0.90:  # a carrier trunk delivers a call
            uac, uas = pools.trunks[rng.randrange(len(pools.trunks))], sbc
            caller = _external_number(rng)
            callee = pools.phones[rng.randrange(len(pools.phones))].number
            if rng.random() < 0.6:
                pai = (f"P-Asserted-Identity: <sip:{caller}@{uac.domain};user=phone>",)
            leg = Leg(self.cap, uac, uas, from_user=caller, from_display=rng.choice(("", caller)),
                      from_domain=uac.domain, to_user=callee, to_domain=sbc.sent_by.split(":")[0],
                      ruri=f"sip:{callee}@{sbc.sent_by};user=phone", invite_extra=pai)  # fmt: skip
        else:  # the SBC hands a call to a carrier
            uac, uas = sbc, pools.trunks[rng.randrange(len(pools.trunks))]
            phone = pools.phones[rng.randrange(len(pools.phones))]
            callee = _external_number(rng)
            pai = (f'P-Asserted-Identity: "{phone.display}" <sip:{phone.number}@{phone.domain};user=phone>',)
            leg = Leg(self.cap, uac, uas, from_user=phone.number, from_display=phone.display,
                      from_domain=phone.domain, to_user=callee, to_domain=uas.domain,
                      ruri=f"sip:{callee}@{uas.sent_by};user=phone", invite_extra=pai)  # fmt: skip
        outcome = _outcome(rng, SIP_DENSE_OUTCOMES)
        offer = _media(rng, uac)
        t = t0
        auth: tuple[str, ...] = ()
        if not uac.local and uac.nat and rng.random() < P_CHALLENGE:
            code = rng.choice((401, 407))
            realm = uac.domain
            inv = leg.invite(t, body=offer.sdp())
            t += clk.reply(uas)
            leg.respond(t, inv, code, extra=_challenge(rng, code, realm))
            t += clk.reply(uac)
            leg.ack_non2xx(t, inv)
            leg.cseq += 1
            leg.to_tag = ""
            t += rng.randrange(2_000, 40_000)
            auth = _credentials(rng, code, uac.number.lstrip("+"), realm, leg.ruri)
            self.cap.extras["challenged"] += 1
        self._dialog(leg, t, outcome, offer, auth)
        return outcome

    def _dialog(self, leg: Leg, t: int, outcome: str, offer: Media, auth: tuple[str, ...]) -> int:
        """INVITE to the end of the call on one leg; returns the time of its last message."""
        rng, clk = self.rng, self.clock
        uac, uas = leg.uac, leg.uas
        inv = leg.invite(t, extra=auth, body=offer.sdp())
        if rng.random() < P_TIMER_A:
            for ts in _retransmits(t, rng.choice((1, 1, 2))):
                leg.resend(ts, inv, uas)
            t = inv.last_ts + rng.randrange(50_000, 400_000)  # the 100 comes, late
        else:
            t += clk.reply(uas)
        leg.respond(t, inv, 100)
        if outcome in ("not-found", "unavailable"):
            t += int(rng.lognormvariate(math.log(40_000), 1.0))
            return self._refuse(leg, inv, t, 404 if outcome == "not-found" else 503)
        ringing = outcome != "busy" or rng.random() < 0.5
        answer: Media | None = None
        if ringing:
            t += clk.pdd()
            if rng.random() < P_EARLY_MEDIA:
                answer = _media(rng, uas, offer=offer.codecs)
                leg.respond(t, inv, 183, body=answer.sdp())
            else:
                leg.respond(t, inv, 180)
        if outcome == "busy":
            t += rng.randrange(300_000, 5_000_000)
            return self._refuse(leg, inv, t, 486)
        if outcome == "timeout":
            t += rng.randrange(30_000_000, 60_000_000)
            return self._refuse(leg, inv, t, 408)
        t += clk.ring()
        if outcome == "cancelled":
            can = leg.cancel(t, inv)
            t += clk.reply(uas)
            leg.respond(t, can, 200)
            t += clk.proc() if uas.local else rng.randrange(200, 3_000)
            return self._refuse(leg, inv, t, 487)
        # answered
        if answer is None:
            answer = _media(rng, uas, offer=offer.codecs)
        ok = leg.respond(t, inv, 200, body=answer.sdp())
        if rng.random() < P_2XX:
            for ts in _retransmits(t, rng.choice((1, 1, 1, 2))):
                leg.resend_response(ts, inv, ok)
                t = ts
            t += rng.randrange(20_000, 300_000)
        else:
            t += clk.reply(uac)
        leg.in_dialog(t, "ACK", from_uac=True, cseq=inv.cseq)
        t += clk.talk(self.talk_s)
        return self._hangup(leg, t, inv.cseq)

    def _refuse(self, leg: Leg, inv: Sent, t: int, code: int) -> int:
        """A 3xx-6xx final response and its ACK (timer G retransmissions when the ACK is late)."""
        rng, clk = self.rng, self.clock
        extra = ("Retry-After: 30",) if code == 503 and rng.random() < 0.5 else ()
        if code == 487 and rng.random() < 0.3:
            extra = ('Reason: Q.850;cause=16;text="Normal call clearing"',)
        raw = leg.respond(t, inv, code, extra=extra)
        if rng.random() < P_TIMER_G:
            for ts in _retransmits(t, 1):
                leg.resend_response(ts, inv, raw)
                t = ts
            t += rng.randrange(20_000, 200_000)
        else:
            t += clk.reply(leg.uac)
        leg.ack_non2xx(t, inv)
        return t

    def _hangup(self, leg: Leg, t: int, cseq: int) -> int:
        rng, clk = self.rng, self.clock
        by_uac = rng.random() < 0.55
        extra = ('Reason: Q.850;cause=16;text="Normal call clearing"',) if rng.random() < 0.3 else ()
        bye = leg.in_dialog(t, "BYE", from_uac=by_uac, cseq=cseq + 1 if by_uac else leg.uas_cseq, extra=extra)
        peer = leg.uas if by_uac else leg.uac
        if rng.random() < P_TIMER_E:
            for ts in _retransmits(t, rng.choice((1, 1, 2))):
                leg.resend(ts, bye, peer)
            t = bye.last_ts + rng.randrange(20_000, 300_000)
        else:
            t += clk.reply(peer)
        leg.respond(t, bye, 200)
        return t


def generate_sip_dense(out: Path, *, scale: float = 1.0, seed: int = DEFAULT_SEED) -> dict[str, object]:
    """Write the sip-dense capture; return its counts."""
    rng = random.Random(seed)
    calls = max(round(SIP_DENSE_CALLS * scale), 1)
    window = int(WINDOW_S * scale * 1e6)
    with out.open("wb") as f:
        cap = StreamCapture(rng, f)
        pools = Pools(rng, phones=8000, carriers=40)
        sbc = local_party("203.0.113.10", SBC_FAMILY.agents[0], SBC_FAMILY,
                          ("203.0.113.20", "203.0.113.21", "203.0.113.22", "203.0.113.23"))  # fmt: skip
        sbc.domain = "sbc.example.net"
        flow = Flow(cap, pools, sbc, SIP_DENSE_TALK_S)
        spans = _run(cap, calls, window, flow.single_leg)
    return _summary(cap, spans, "sip-dense", scale, seed, calls, window, pools.hosts() + 1)


def _run(cap: StreamCapture, calls: int, window: int, one: Callable[[int], str]) -> list[tuple[int, int]]:
    """Start ``calls`` calls at Poisson arrival times over ``window`` µs (uniform order statistics)."""
    rng = cap.rng
    base = EPOCH_START * 1_000_000
    starts = sorted(rng.randrange(window) for _ in range(calls))
    spans: list[tuple[int, int]] = []
    for off in starts:
        t0 = base + off
        cap.flush(t0)
        cap.call_last = t0
        outcome = one(t0)
        cap.stats.scenarios[outcome] += 1
        spans.append((t0, cap.call_last))
    cap.flush()
    return spans


def _summary(
    cap: StreamCapture,
    spans: list[tuple[int, int]],
    workload: str,
    scale: float,
    seed: int,
    calls: int,
    window: int,
    hosts: int,
) -> dict[str, object]:
    st = cap.stats
    st.bytes = cap.written
    st.hosts = hosts
    st.span_s = ((cap.last_ts - (cap.first_ts or 0)) / 1e6) if cap.first_ts else 0.0
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    level, peak = 0, 0
    base = spans[0][0] if spans else 0
    lo, hi = base + window // 2, base + window  # the second half of the arrival window: steady state
    weighted, prev = 0, lo
    for ts, step in edges:
        if lo <= ts <= hi:
            weighted += level * (ts - prev)
            prev = ts
        elif ts > hi and prev < hi:
            weighted += level * (hi - prev)
            prev = hi
        level += step
        peak = max(peak, level)
    st.peak_concurrent = peak
    data = st.as_dict()
    for k in ("rtp_packets", "tcp_control_segments", "tcp_scenarios"):
        data.pop(k, None)
    data.update(
        {
            "workload": workload,
            "scale": scale,
            "seed": seed,
            "generator": generator_digest(),
            "calls": calls,
            "window_s": window / 1e6,
            "mean_concurrent": round(weighted / max(hi - lo, 1)),
            "mean_sip_bytes": round(cap.payload_bytes / max(st.sip_messages, 1), 1),
            "outcomes": data.pop("scenarios"),
            "extras": dict(sorted(cap.extras.items())),
        }
    )
    return data


# ---------------------------------------------------------------------------------------------------
# b2bua-dense
# ---------------------------------------------------------------------------------------------------
B2BUA_OUTCOMES = {"cancelled": 0.11, "busy": 0.07, "not-found": 0.03, "timeout": 0.03, "refused": 0.03}
P_HUNT = 0.04
P_B_CHALLENGE = 0.05  # a carrier challenges the B2BUA's INVITE
B2BUA_TALK_S = 85.0  # mean talk time: about 2,350 calls up at once at 33.3 calls/s


def _national_00(number: str) -> str:
    """The B2BUA's outbound numbering: +E.164 becomes 00-international."""
    return "00" + number[1:] if number.startswith("+") else number


class B2buaFlow(Flow):
    """Writes one call through the B2BUA: leg A in, one or two legs B out, ground truth kept."""

    def __init__(self, cap: StreamCapture, pools: Pools, local: Party, talk_s: float) -> None:
        super().__init__(cap, pools, local, talk_s)
        self.truth: list[list[str]] = []

    def call(self, t0: int) -> str:
        """One call through the B2BUA starting at ``t0``; returns its outcome."""
        rng, clk, b2b, pools = self.rng, self.clock, self.local, self.pools
        domain = b2b.domain
        callee_phone: Party | None = None
        if rng.random() < 0.6:  # a phone calls out to a carrier
            caller = pools.phones[rng.randrange(len(pools.phones))]
            from_user, disp = caller.number, caller.display
            callee_num = _external_number(rng)
        else:  # a carrier delivers a call for a phone
            caller = pools.trunks[rng.randrange(len(pools.trunks))]
            from_user, disp = _external_number(rng), ""
            callee_phone = pools.phones[rng.randrange(len(pools.phones))]
            callee_num = callee_phone.number
        a = Leg(self.cap, caller, b2b, from_user=from_user, from_display=disp,
                from_domain=caller.domain, to_user=callee_num, to_domain=domain,
                ruri=f"sip:{callee_num}@{b2b.sent_by};user=phone")  # fmt: skip
        outcome = _outcome(rng, B2BUA_OUTCOMES)
        hunt = outcome != "refused" and callee_phone is None and rng.random() < P_HUNT
        offer_a = _media(rng, caller)
        group = [a.call_id]
        self.truth.append(group)
        t = t0
        auth: tuple[str, ...] = ()
        if caller.nat and rng.random() < P_CHALLENGE:
            inv = a.invite(t, body=offer_a.sdp())
            t += clk.proc()
            a.respond(t, inv, 407, extra=_challenge(rng, 407, domain))
            t += clk.reply(caller)
            a.ack_non2xx(t, inv)
            a.cseq += 1
            a.to_tag = ""
            t += rng.randrange(2_000, 40_000)
            auth = _credentials(rng, 407, from_user.lstrip("+"), domain, a.ruri)
            self.cap.extras["challenged"] += 1
        inv_a = a.invite(t, extra=auth, body=offer_a.sdp())
        a.respond(t + clk.proc(), inv_a, 100)
        # routing (number lookup, LCR, ENUM...): a few ms to most of a second
        t += int(min(max(rng.lognormvariate(math.log(25_000), 1.2), 2_000), 900_000))
        if outcome == "refused":
            self._refuse(a, inv_a, t, rng.choice((404, 403, 484)))
            return outcome
        for attempt in range(2 if hunt else 1):
            callee = callee_phone or pools.trunks[rng.randrange(len(pools.trunks))]
            b_from = _national_00(from_user)
            b_user = _national_00(callee_num)
            pai = (f"P-Asserted-Identity: <sip:{b_from}@{domain}>",) if rng.random() < 0.5 else ()
            b = Leg(self.cap, b2b, callee, from_user=b_from, from_display=disp if rng.random() < 0.7 else "",
                    from_domain=domain, to_user=b_user, to_domain=callee.domain,
                    ruri=f"sip:{b_user}@{callee.contact_host.split(';')[0]}", invite_extra=pai)  # fmt: skip
            group.append(b.call_id)
            offer_b = Media(
                ip=rng.choice(b2b.media_ips), port=rng.randrange(20000, 60000) & ~1,
                codecs=offer_a.codecs, te=101, sess=rng.randrange(10**8, 10**10),
                user="FreeSWITCH", session="FreeSWITCH",
            )  # fmt: skip
            if callee_phone is None and rng.random() < P_B_CHALLENGE:  # the carrier wants credentials
                inv_b = b.invite(t, body=offer_b.sdp())
                t += clk.reply(callee)
                b.respond(t, inv_b, 401, extra=_challenge(rng, 401, callee.domain))
                t += clk.proc()
                b.ack_non2xx(t, inv_b)
                b.cseq += 1
                b.to_tag = ""
                t += clk.proc()
                cred = _credentials(rng, 401, "b2bua-trunk", callee.domain, b.ruri)
                inv_b = b.invite(t, extra=cred, body=offer_b.sdp())
                self.cap.extras["challenged-b"] += 1
            else:
                inv_b = b.invite(t, body=offer_b.sdp())
            if rng.random() < P_TIMER_A:
                for ts in _retransmits(t, rng.choice((1, 1, 2))):
                    b.resend(ts, inv_b, callee)
                t = inv_b.last_ts + rng.randrange(50_000, 400_000)
            else:
                t += clk.reply(callee)
            b.respond(t, inv_b, 100)
            if hunt and attempt == 0:  # the first route fails: 503, ACK, the next trunk is tried
                t += int(rng.lognormvariate(math.log(30_000), 0.8))
                b.respond(t, inv_b, 503)
                t += clk.proc()
                b.ack_non2xx(t, inv_b)
                t += rng.randrange(2_000, 50_000)
                self.cap.extras["hunted"] += 1
                continue
            self._bridge(a, inv_a, b, inv_b, offer_a, t, outcome)
        return outcome

    def _bridge(self, a: Leg, inv_a: Sent, b: Leg, inv_b: Sent, offer_a: Media, t: int, outcome: str) -> int:
        """Leg B's progress mirrored on leg A, to the end of the call."""
        rng, clk, b2b = self.rng, self.clock, self.local
        caller, callee = a.uac, b.uas
        if outcome == "not-found":
            t += int(rng.lognormvariate(math.log(40_000), 1.0))
            return self._mirror_refusal(a, inv_a, b, inv_b, t, 404)
        ringing = outcome != "busy" or rng.random() < 0.5
        if ringing:
            t += clk.pdd()
            b.respond(t, inv_b, 180)
            t += clk.mirror()
            a.respond(t, inv_a, 180)
        if outcome == "busy":
            t += rng.randrange(300_000, 5_000_000)
            return self._mirror_refusal(a, inv_a, b, inv_b, t, 486)
        if outcome == "timeout":  # the B2BUA's no-answer timer: CANCEL leg B, 408 on leg A
            t += rng.randrange(30_000_000, 60_000_000)
            can = b.cancel(t, inv_b)
            t += clk.reply(callee)
            b.respond(t, can, 200)
            t += rng.randrange(200, 3_000)
            b.respond(t, inv_b, 487)
            t += clk.proc()
            b.ack_non2xx(t, inv_b)
            return self._refuse(a, inv_a, t + clk.mirror(), 408)
        t += clk.ring()
        if outcome == "cancelled":  # the caller gives up: CANCEL mirrored
            can_a = a.cancel(t, inv_a)
            a.respond(t + clk.proc(), can_a, 200)
            t += clk.mirror()
            can_b = b.cancel(t, inv_b)
            t += clk.reply(callee)
            b.respond(t, can_b, 200)
            t += rng.randrange(200, 3_000)
            b.respond(t, inv_b, 487)
            t += clk.proc()
            b.ack_non2xx(t, inv_b)
            t += clk.mirror()
            return self._refuse(a, inv_a, t, 487)
        # answered: 200 on B (callee's SDP), ACK on B, 200 on A (the B2BUA's anchored SDP), ACK on A
        answer_b = _media(rng, callee, offer=offer_a.codecs)
        b.respond(t, inv_b, 200, body=answer_b.sdp())
        b.in_dialog(t + clk.proc(), "ACK", from_uac=True, cseq=inv_b.cseq)
        t += clk.mirror()
        answer_a = Media(
            ip=rng.choice(b2b.media_ips), port=rng.randrange(20000, 60000) & ~1, codecs=answer_b.codecs,
            te=101, sess=rng.randrange(10**8, 10**10), user="FreeSWITCH", session="FreeSWITCH",
        )  # fmt: skip
        ok = a.respond(t, inv_a, 200, body=answer_a.sdp())
        if rng.random() < P_2XX:
            for ts in _retransmits(t, rng.choice((1, 1, 1, 2))):
                a.resend_response(ts, inv_a, ok)
                t = ts
            t += rng.randrange(20_000, 300_000)
        else:
            t += clk.reply(caller)
        a.in_dialog(t, "ACK", from_uac=True, cseq=inv_a.cseq)
        t += clk.talk(self.talk_s)
        # BYE from either end, answered by the B2BUA at once and mirrored to the other leg
        reason = ('Reason: Q.850;cause=16;text="Normal call clearing"',) if rng.random() < 0.3 else ()
        if rng.random() < 0.55:  # the caller hangs up
            near, far, near_cseq, far_cseq, from_uac = a, b, inv_a.cseq + 1, inv_b.cseq + 1, True
        else:  # the callee hangs up
            near, far, near_cseq, far_cseq, from_uac = b, a, b.uas_cseq, a.uas_cseq, False
        bye = near.in_dialog(t, "BYE", from_uac=from_uac, cseq=near_cseq, extra=reason)
        near.respond(t + clk.proc(), bye, 200)
        t += clk.mirror()
        bye2 = far.in_dialog(t, "BYE", from_uac=from_uac, cseq=far_cseq, extra=reason)
        peer = far.uas if from_uac else far.uac
        if rng.random() < P_TIMER_E:
            for ts in _retransmits(t, rng.choice((1, 1, 2))):
                far.resend(ts, bye2, peer)
            t = bye2.last_ts + rng.randrange(20_000, 300_000)
        else:
            t += clk.reply(peer)
        far.respond(t, bye2, 200)
        return t

    def _mirror_refusal(self, a: Leg, inv_a: Sent, b: Leg, inv_b: Sent, t: int, code: int) -> int:
        """A refusal on leg B, ACKed there, mirrored to leg A."""
        b.respond(t, inv_b, code)
        b.ack_non2xx(t + self.clock.proc(), inv_b)
        return self._refuse(a, inv_a, t + self.clock.mirror(), code)


def generate_b2bua_dense(
    out: Path, *, scale: float = 1.0, seed: int = DEFAULT_SEED
) -> tuple[dict[str, object], list[list[str]]]:
    """Write the b2bua-dense capture; return its counts and the ground truth (Call-IDs of each call)."""
    rng = random.Random(seed + 1)
    calls = max(round(B2BUA_CALLS * scale), 1)
    window = int(WINDOW_S * scale * 1e6)
    with out.open("wb") as f:
        cap = StreamCapture(rng, f)
        pools = Pools(rng, phones=6000, carriers=40)
        b2b = local_party("198.51.100.50", B2BUA_FAMILY.agents[0], B2BUA_FAMILY,
                          ("198.51.100.51", "198.51.100.52", "198.51.100.53"))  # fmt: skip
        b2b.domain = "b2bua.example.org"
        flow = B2buaFlow(cap, pools, b2b, B2BUA_TALK_S)
        spans = _run(cap, calls, window, flow.call)
    data = _summary(cap, spans, "b2bua-dense", scale, seed, calls, window, pools.hosts() + 1)
    data["call_ids"] = sum(len(g) for g in flow.truth)
    data["legs"] = {str(n): sum(1 for g in flow.truth if len(g) == n) for n in (1, 2, 3)}
    return data, flow.truth


TRUTH_NOTES = (
    "benchmarks/dense.py b2bua-dense: a B2BUA at 198.51.100.50:5060 re-originates every call: leg A "
    "(caller -> B2BUA) and leg B (B2BUA -> callee) have their own Call-ID, tags, branches and CSeq; numbers "
    "are rewritten (+E.164 -> 00-international); SDP is anchored (the B2BUA's own c= and ports on both "
    "legs); routing takes 2-900 ms, so B-leg INVITEs leave out of order; 18x, final responses, CANCEL and "
    "BYE are mirrored after 0.2-5 ms. No header links the legs. Calls refused by the B2BUA have one leg; "
    "calls that hunt have two B legs. Truth: the generator's own record of the Call-IDs of each call."
)


def truth_path(pcap: Path) -> Path:
    """``NAME.truth.json`` beside ``NAME.pcap`` (as in samples/)."""
    return pcap.with_name(pcap.stem + ".truth.json")


# ---------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------
def counts_path(pcap: Path) -> Path:
    """The generator's counts beside the capture (the name ``run.py`` reads)."""
    return pcap.with_suffix(pcap.suffix + ".counts.json")


def write(workload: str, out: Path, *, scale: float, seed: int) -> dict[str, object]:
    """Generate ``workload`` into ``out`` (plus counts, and truth for b2bua-dense); return the counts."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    started = time.perf_counter()
    if workload == "sip-dense":
        data = generate_sip_dense(tmp, scale=scale, seed=seed)
    else:
        data, truth = generate_b2bua_dense(tmp, scale=scale, seed=seed)
        head = {"notes": TRUTH_NOTES, "capture": out.name, "sip_messages": data["sip_messages"]}
        calls = ",\n".join("  " + json.dumps(g) for g in truth)
        truth_path(out).write_text('{\n "calls": [\n' + calls + "\n ],\n" + json.dumps(head)[1:-1] + "\n}\n")
    data["generate_s"] = round(time.perf_counter() - started, 2)
    tmp.replace(out)
    counts_path(out).write_text(json.dumps(data, indent=2) + "\n")
    return data


def _stats_of(data: dict[str, object]) -> Stats:
    st = Stats()
    st.sip_messages = int(str(data["sip_messages"]))
    st.resent = int(str(data["resent"]))
    req = data["requests"]
    resp = data["responses"]
    assert isinstance(req, dict) and isinstance(resp, dict)
    st.requests.update({str(k): int(v) for k, v in req.items()})
    st.responses.update({int(k): int(v) for k, v in resp.items()})
    return st


def describe(data: dict[str, object], out: Path) -> str:
    """Human summary of what was written."""

    def d(key: str) -> dict[str, object]:
        v = data[key]
        assert isinstance(v, dict)
        return v

    outcomes = ", ".join(f"{k} {v}" for k, v in d("outcomes").items())
    extras = ", ".join(f"{k} {v}" for k, v in d("extras").items()) or "nothing"
    lines = [
        f"wrote {out}: {data['frames']:,} frames, {data['bytes']:,} bytes in {data['generate_s']} s",
        f"calls {data['calls']:,} over {data['window_s']:,.0f} s ({outcomes}); also {extras}",
        f"SIP messages {data['sip_messages']:,} (resent {data['resent']:,}), "
        f"{data['mean_sip_bytes']} bytes on average; Call-IDs {data['call_ids']:,}; hosts {data['hosts']:,}",
        "requests:  " + ", ".join(f"{k} {v}" for k, v in d("requests").items()),
        "responses: " + ", ".join(f"{k} {v}" for k, v in d("responses").items()),
        f"capture spans {data['span_s']:,.1f} s; calls up at once: peak {data['peak_concurrent']:,}, "
        f"mean {data['mean_concurrent']:,} over the second half of the arrivals",
    ]
    if "legs" in data:
        lines.append("calls by legs: " + ", ".join(f"{k} legs {v:,}" for k, v in d("legs").items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("-o", "--output", type=Path, default=None, help="default: benchmarks/out/WORKLOAD.pcap")
    p.add_argument("--scale", type=float, default=1.0, help="calls and arrival window times this")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (same seed, same bytes)")
    p.add_argument("--verify", action="store_true", help="check the counts against tshark -z sip,stat")
    p.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = p.parse_args(argv)
    if args.scale <= 0:
        p.error("--scale must be > 0")
    out = args.output or HERE / "out" / f"{args.workload}.pcap"
    data = write(args.workload, out, scale=args.scale, seed=args.seed)
    print(describe(data, out))
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    if args.verify and not verify(out, _stats_of(data)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
