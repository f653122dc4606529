"""RFC 4475 torture messages: every one of the 49 parses or is flagged, never crashes.

The expected values were read from the message text of RFC 4475 (the files under
``shared/rfc4475``); classes come from its INDEX.md: valid (§3.1.1), invalid (§3.1.2) and
semantic (§3.2-§3.4).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from sipflow.errors import ParseError
from sipflow.sip import SipRequest, SipResponse, find_sdp, parse_message, parse_name_addrs
from sipflow.sip.defects import KINDS, Defect

RFC4475 = Path(__file__).resolve().parent.parent.parent / "shared" / "rfc4475"
if not RFC4475.is_dir():
    RFC4475 = Path("/work/shared/rfc4475")

pytestmark = pytest.mark.skipif(not RFC4475.is_dir(), reason="shared/rfc4475 is not there")


class Expected(NamedTuple):
    first: str | int
    """Method of a request, status code of a response."""
    call_id: str | None
    cseq: tuple[int, str] | None
    from_tag: str | None
    to_tag: str | None
    branch: str | None
    """Branch of the top Via."""
    content_length: int | None
    body_length: int


EXPECTED: dict[str, Expected] = {
    "badaspec": Expected(
        "OPTIONS",
        "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
        (3923239, "OPTIONS"),
        "433423",
        None,
        "z9hG4bKkdju43234",
        0,
        0,
    ),
    "badbranch": Expected(
        "OPTIONS", "badbranch.sadonfo23i420jv0as0derf3j3n", (8, "OPTIONS"), "33242", None, "z9hG4bK", 0, 0
    ),
    "baddate": Expected(
        "INVITE",
        "baddate.239423mnsadf3j23lj42--sedfnm234",
        (1392934, "INVITE"),
        "2234923",
        None,
        "z9hG4bKkdjuw",
        150,
        150,
    ),
    "baddn": Expected(
        "OPTIONS", "baddn.31415@c.example.com", (3923239, "OPTIONS"), "43", None, "z9hG4bKkdjuw", 0, 0
    ),
    "badinv01": Expected(
        "INVITE", "badinv01.0ha0isndaksdjasdf3234nas", (8, "INVITE"), "134161461246", None, None, 152, 152
    ),
    "badvers": Expected(
        "OPTIONS", "badvers.31417@c.example.com", (1, "OPTIONS"), "qweoiqpe", None, "z9hG4bKkdjuw", 0, 0
    ),
    "bcast": Expected(
        200,
        "bcast.0384840201234ksdfak3j2erwedfsASdf",
        (35, "INVITE"),
        "11141343",
        "2229",
        "z9hG4bK1324923",
        154,
        154,
    ),
    "bext01": Expected(
        "OPTIONS", "bext01.0ha0isndaksdj", (8, "OPTIONS"), "242etr", None, "z9hG4bKkdjuw", 0, 0
    ),
    "bigcode": Expected(
        4294967301,
        "bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i",
        (353494, "INVITE"),
        "39ansfi3",
        "902jndnke3",
        "z9hG4bK2398ndaoe",
        0,
        0,
    ),
    "clerr": Expected(
        "INVITE",
        "clerr.0ha0isndaksdjweiafasdk3",
        (8, "INVITE"),
        "93942939o2",
        None,
        "z9hG4bK-39234-23523",
        9999,
        154,
    ),
    "cparam01": Expected(
        "REGISTER",
        "cparam01.70710@saturn.example.com",
        (2, "REGISTER"),
        "DkfVgjkrtMwaerKKpe",
        None,
        "z9hG4bKkdjuw",
        0,
        0,
    ),
    "cparam02": Expected(
        "REGISTER", "cparam02.70710@saturn.example.com", (3, "REGISTER"), "838293", None, "z9hG4bKkdjuw", 0, 0
    ),
    "dblreq": Expected(
        "REGISTER",
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        (8, "REGISTER"),
        "43251j3j324",
        None,
        "z9hG4bKkdjuw23492",
        0,
        0,
    ),
    "esc01": Expected(
        "INVITE",
        "esc01.239409asdfakjkn23onasd0-3234",
        (234234, "INVITE"),
        "938",
        None,
        "z9hG4bKkdjuw",
        150,
        150,
    ),
    "esc02": Expected(
        "RE%47IST%45R",
        "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
        (29344, "RE%47IST%45R"),
        "f232jadfj23",
        None,
        "z9hG4bK209%fzsnel234",
        0,
        0,
    ),
    "escnull": Expected(
        "REGISTER",
        "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
        (14398234, "REGISTER"),
        "839923423",
        None,
        "z9hG4bKkdjuw",
        0,
        0,
    ),
    "escruri": Expected(
        "INVITE",
        "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5",
        (149209342, "INVITE"),
        "341518",
        None,
        "z9hG4bKkdjuw",
        150,
        150,
    ),
    "insuf": Expected("INVITE", None, (193942, "INVITE"), None, None, "z9hG4bKkdj.insuf", 152, 152),
    "intmeth": Expected(
        "!interesting-Method0123456789_*+`.%indeed'~",
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
        (139122385, "!interesting-Method0123456789_*+`.%indeed'~"),
        "_token~1'+`*%!-.",
        None,
        "z9hG4bK-.!%66*_+`'~",
        0,
        0,
    ),
    "inv2543": Expected(
        "INVITE", "inv2543.1717@ift.client.example.com", (56, "INVITE"), None, None, None, None, 105
    ),
    "invut": Expected(
        "INVITE",
        "invut.0ha0isndaksdjadsfij34n23d",
        (235448, "INVITE"),
        "8392034",
        None,
        "z9hG4bKkdjuw",
        40,
        40,
    ),
    "longreq": Expected(
        "INVITE",
        "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
        (3882340, "INVITE"),
        "12982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982424",
        None,
        None,
        150,
        150,
    ),
    "ltgtruri": Expected("INVITE", "ltgtruri.1@192.0.2.5", (1, "INVITE"), "39291", None, None, 159, 159),
    "lwsdisp": Expected(
        "OPTIONS", "lwsdisp.1234abcd@funky.example.com", (60, "OPTIONS"), "323", None, "z9hG4bKkdjuw", 0, 0
    ),
    "lwsruri": Expected(
        "INVITE",
        "lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423",
        (2130706432, "INVITE"),
        "231413434",
        "3xfe-9921883-z9f",
        "z9hG4bKkdjuw2395",
        159,
        159,
    ),
    "lwsstart": Expected(
        "INVITE",
        "lwsstart.dfknq234oi243099adsdfnawe3@example.com",
        (1893884, "INVITE"),
        "8814",
        None,
        "z9hG4bKkdjuw3923",
        150,
        150,
    ),
    "mcl01": Expected(
        "OPTIONS",
        "mcl01.fhn2323orihawfdoa3o4r52o3irsdf",
        (15932, "OPTIONS"),
        "3923942",
        None,
        "z9hG4bK293423",
        13,
        67,
    ),
    "mismatch01": Expected(
        "OPTIONS", "mismatch01.dj0234sxdfl3", (8, "INVITE"), "34525", None, "z9hG4bKkdjuw", 0, 0
    ),
    "mismatch02": Expected(
        "NEWMETHOD", "mismatch02.dj0234sxdfl3", (8, "INVITE"), "34525", None, "z9hG4bKkdjuw", 138, 138
    ),
    "mpart01": Expected(
        "MESSAGE",
        "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
        (1, "MESSAGE"),
        "2fb0dcc9",
        None,
        "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-",
        553,
        553,
    ),
    "multi01": Expected(
        "INVITE", "multi01.98asdh@192.0.2.1", (5, "INVITE"), "3413415", None, "z9hG4bKkdjuw", 154, 154
    ),
    "ncl": Expected(
        "INVITE",
        "ncl.0ha0isndaksdj2193423r542w35",
        (0, "INVITE"),
        "32394234",
        None,
        "z9hG4bKkdjuw",
        None,
        152,
    ),
    "noreason": Expected(
        100,
        "noreason.asndj203insdf99223ndf",
        (35, "INVITE"),
        "39ansfi3",
        "902jndnke3",
        "z9hG4bK2398ndaoe",
        0,
        0,
    ),
    "novelsc": Expected(
        "OPTIONS",
        "novelsc.asdfasser0q239nwsdfasdkl34",
        (3923423, "OPTIONS"),
        "384",
        None,
        "z9hG4bKkdjuw39234",
        0,
        0,
    ),
    "quotbal": Expected(
        "INVITE", "quotbal.aksdj", (8, "INVITE"), "93334", None, "z9hG4bKkdjuw39234", 152, 152
    ),
    "regaut01": Expected(
        "REGISTER", "regaut01.0ha0isndaksdj", (9338, "REGISTER"), "87321hj23128", None, "z9hG4bKkdjuw", 0, 0
    ),
    "regbadct": Expected(
        "REGISTER", "regbadct.k345asrl3fdbv@10.0.0.1", (1, "REGISTER"), "998332", None, "z9hG4bKkdjuw", 0, 0
    ),
    "regescrt": Expected(
        "REGISTER",
        "regescrt.k345asrl3fdbv@192.0.2.1",
        (14398234, "REGISTER"),
        "8",
        None,
        "z9hG4bKkdjuw",
        0,
        0,
    ),
    "scalar02": Expected(
        "REGISTER",
        "scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
        (36893488147419103232, "REGISTER"),
        "239232jh3",
        None,
        "z9hG4bK342sdfoi3",
        0,
        0,
    ),
    "scalarlg": Expected(
        503,
        "scalarlg.noase0of0234hn2qofoaf0232aewf2394r",
        (9292394834772304023312, "OPTIONS"),
        "2easdjfejw",
        None,
        "z9hG4bKzzxdiwo34sw",
        0,
        0,
    ),
    "sdp01": Expected(
        "INVITE", "sdp01.ndaksdj9342dasdd", (8, "INVITE"), "234", None, "z9hG4bKkdjuw", 150, 150
    ),
    "semiuri": Expected(
        "OPTIONS", "semiuri.0ha0isndaksdj", (8, "OPTIONS"), "33242", None, "z9hG4bKkdjuw", 0, 0
    ),
    "transports": Expected(
        "OPTIONS", "transports.kijh4akdnaqjkwendsasfdj", (60, "OPTIONS"), "323", None, "z9hG4bKkdjuw", 0, 0
    ),
    "trws": Expected(
        "OPTIONS",
        "trws.oicu34958239neffasdhr2345r",
        (238923, "OPTIONS"),
        "329429089",
        None,
        "z9hG4bK299342093",
        0,
        0,
    ),
    "unkscm": Expected(
        "OPTIONS",
        "unkscm.nasdfasser0q239nwsdfasdkl34",
        (3923423, "OPTIONS"),
        "384",
        None,
        "z9hG4bKkdjuw39234",
        0,
        0,
    ),
    "unksm2": Expected(
        "REGISTER",
        "unksm2.daksdj@hyphenated-host.example.com",
        (234902, "REGISTER"),
        "3234233",
        None,
        "z9hG4bKkdjuw",
        0,
        0,
    ),
    "unreason": Expected(
        200,
        "unreason.1234ksdfak3j2erwedfsASdf",
        (35, "INVITE"),
        "11141343",
        "2229",
        "z9hG4bK1324923",
        154,
        154,
    ),
    "wsinv": Expected(
        "INVITE", "wsinv.ndaksdj@192.0.2.1", (9, "INVITE"), "98asjd8", "1918181833n", "390skdjuw", 150, 150
    ),
    "zeromf": Expected(
        "OPTIONS",
        "zeromf.jfasdlfnm2o2l43r5u0asdfas",
        (39234321, "OPTIONS"),
        "3ghsd41",
        None,
        "z9hG4bKkdjuw2349i",
        0,
        0,
    ),
}

VALID = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq", "semiuri",
    "transports", "mpart01", "unreason", "noreason",
]  # fmt: skip

# Invalid messages (§3.1.2) → a pattern the defect that flags them must match.
INVALID: dict[str, str] = {
    "badinv01": r"^Via has an empty (parameter|value)",
    "clerr": r"^Content-Length 9999 exceeds the \d+ bytes",
    "ncl": r"^Content-Length is negative",
    "scalar02": r"^CSeq number is overlarge",
    "scalarlg": r"^CSeq number is overlarge",
    "quotbal": r"^To has an unterminated quoted string",
    "ltgtruri": r"^Request-URI is enclosed in <>",
    "lwsruri": r"^Request-URI contains whitespace",
    "lwsstart": r"^Request-Line elements are separated by more than one SP",
    "trws": r"^Request-Line ends in whitespace",
    "escruri": r"^Request-URI carries escaped headers",
    "baddate": r"^Date is not an RFC 1123 date in GMT",
    "regbadct": r"^Contact URI with '\?' or ',' is not enclosed in <>",
    "badaspec": r"^To has whitespace inside <>",
    "baddn": r"^From display name has characters that need quoting",
    "badvers": r"^Unknown SIP version SIP/7\.0",
    "mismatch01": r"^CSeq method INVITE differs from the request method OPTIONS",
    "mismatch02": r"^CSeq method INVITE differs from the request method NEWMETHOD",
    "bigcode": r"^Status code 4294967301 is not three digits",
}

SEMANTIC = [
    "badbranch", "insuf", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01", "multi01",
    "mcl01", "bcast", "zeromf", "cparam01", "cparam02", "regescrt", "sdp01", "inv2543",
]  # fmt: skip

# Semantic messages the RFC wants rejected (INDEX.md): the defects that must flag them.
FLAGGED: dict[str, list[str]] = {
    "insuf": ["No To header field.", "No From header field.", "No Call-ID header field."],
    "multi01": [
        "Several Call-ID header fields.",
        "Several CSeq header fields.",
        "Several From header fields.",
        "Several To header fields.",
        "Several Max-Forwards header fields.",
    ],
    "mcl01": ["Several Content-Length header fields."],
    # RFC 2543 had no Max-Forwards: advisory only, but still noted.
    "inv2543": ["No Max-Forwards header field (RFC 3261 §8.1.1.6)."],
}


# Every message → exactly the defect codes its RFC section describes (``sipflow.sip.defects``).
CODES: dict[str, set[str]] = {
    # §3.1.1 valid messages: none.
    **{name: set() for name in VALID},
    # §3.1.2 invalid messages.
    # §3.1.2.1: stray ";" and "," in Via (";;,;,," also leaves ";" as a Via value of its own,
    # which is no via-parm) and stray ";" in Contact.
    "badinv01": {"sip.malformed.param.empty", "sip.malformed.list.empty", "sip.malformed.via"},
    "clerr": {"sip.malformed.content-length.mismatch"},  # §3.1.2.2
    "ncl": {"sip.malformed.content-length.negative"},  # §3.1.2.3
    # §3.1.2.4: CSeq, Max-Forwards, Expires and a Contact expires overlarge.
    "scalar02": {
        "sip.malformed.cseq.overlarge",
        "sip.malformed.max-forwards.overlarge",
        "sip.malformed.expires.overlarge",
        "sip.malformed.contact.expires",
    },
    # §3.1.2.5: CSeq and Retry-After overlarge, a four-digit warn-code.
    "scalarlg": {
        "sip.malformed.cseq.overlarge",
        "sip.malformed.retry-after.overlarge",
        "sip.malformed.warning.code",
    },
    "quotbal": {"sip.malformed.name-addr.quote"},  # §3.1.2.6
    "ltgtruri": {"sip.malformed.request-uri.brackets"},  # §3.1.2.7
    "lwsruri": {"sip.malformed.request-uri.whitespace"},  # §3.1.2.8
    "lwsstart": {"sip.malformed.request-line.sp"},  # §3.1.2.9
    "trws": {"sip.malformed.request-line.trailing-space"},  # §3.1.2.10
    "escruri": {"sip.malformed.request-uri.headers"},  # §3.1.2.11
    "baddate": {"sip.malformed.date"},  # §3.1.2.12
    "regbadct": {"sip.malformed.addr-spec.unenclosed"},  # §3.1.2.13
    "badaspec": {"sip.malformed.name-addr.whitespace"},  # §3.1.2.14
    # §3.1.2.15: the display names of From and To. The archive's file (Appendix A) also ends
    # right after "l: 0" with no empty line, which the parser notes too.
    "baddn": {"sip.malformed.name-addr.display-name", "sip.malformed.blank-line"},
    # §3.1.2.16: SIP/7.0, in the Request-Line and, as the message shows, in its Via.
    "badvers": {"sip.malformed.version", "sip.malformed.via.protocol"},
    "mismatch01": {"sip.malformed.cseq.method"},  # §3.1.2.17
    "mismatch02": {"sip.malformed.cseq.method"},  # §3.1.2.18
    "bigcode": {"sip.malformed.status-code.digits"},  # §3.1.2.19
    # §3.2 transaction layer: a branch that is only the cookie is well-formed (the model's
    # business, not the parser's: ``test_badbranch_is_not_an_rfc3261_branch``).
    "badbranch": set(),
    # §3.3 application layer.
    # §3.3.1: no Call-ID, From or To; the message has no Max-Forwards either (RFC 3261
    # §8.1.1.6 wants one), which the RFC text does not mention but the parser notes.
    "insuf": {"sip.malformed.header.missing", "sip.malformed.max-forwards.missing"},
    **{name: set() for name in ("unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01")},  # §3.3.2-7
    "multi01": {"sip.malformed.header.repeated"},  # §3.3.8: Call-ID, CSeq, From, To, Max-Forwards
    "mcl01": {"sip.malformed.content-length.repeated"},  # §3.3.9
    # §3.3.10-§3.3.15.
    **{name: set() for name in ("bcast", "zeromf", "cparam01", "cparam02", "regescrt", "sdp01")},
    # §3.4.1: RFC 2543 syntax, to be accepted; it has no Max-Forwards (advisory).
    "inv2543": {"sip.malformed.max-forwards.missing"},
}


def _load(name: str) -> bytes:
    return (RFC4475 / f"{name}.dat").read_bytes()


def test_index_covers_every_file() -> None:
    files = {path.stem for path in RFC4475.glob("*.dat")}
    assert len(files) == 49
    assert files == set(VALID) | set(INVALID) | set(SEMANTIC) == set(EXPECTED)
    index = (RFC4475 / "INDEX.md").read_text()
    for name in VALID:
        assert re.search(rf"`{name}\.dat` \|[^|]*\|[^|]*\| valid \|", index), name
    for name in INVALID:
        assert re.search(rf"`{name}\.dat` \|[^|]*\|[^|]*\| invalid \|", index), name
    for name in SEMANTIC:
        assert re.search(rf"`{name}\.dat` \|[^|]*\|[^|]*\| semantic", index), name


def _check_fields(name: str, message: SipRequest | SipResponse) -> None:
    expected = EXPECTED[name]
    if isinstance(message, SipRequest):
        assert message.method == expected.first
    else:
        assert message.status == expected.first
    assert message.call_id == expected.call_id
    cseq = (message.cseq.seq, message.cseq.method) if message.cseq else None
    assert cseq == expected.cseq
    assert (message.from_.tag if message.from_ else None) == expected.from_tag
    assert (message.to.tag if message.to else None) == expected.to_tag
    assert (message.top_via.branch if message.top_via else None) == expected.branch
    assert message.content_length == expected.content_length
    assert len(message.body) == expected.body_length


@pytest.mark.parametrize("name", VALID)
def test_valid_messages_parse_cleanly(name: str) -> None:
    message = parse_message(_load(name))
    _check_fields(name, message)
    assert message.defects == ()


@pytest.mark.parametrize("name", SEMANTIC)
def test_semantic_messages_parse(name: str) -> None:
    message = parse_message(_load(name))
    _check_fields(name, message)
    for defect in FLAGGED.get(name, []):
        assert defect in message.defects
    if name not in FLAGGED:
        assert message.defects == ()


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_are_flagged(name: str) -> None:
    try:
        message = parse_message(_load(name))
    except ParseError:  # pragma: no cover - none of them is that broken
        return
    _check_fields(name, message)
    pattern = re.compile(INVALID[name])
    assert any(pattern.search(defect) for defect in message.defects), message.defects


# --- Details the RFC text points out -----------------------------------------------------------------


def test_wsinv_whitespace_folding_and_compact_forms() -> None:
    message = parse_message(_load("wsinv"))
    assert message.headers.get("to") is not None
    assert message.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert [via.sent_by for via in message.vias] == [
        "192.0.2.2",
        "spindle.example.com",
        "192.168.255.111",
    ]
    assert [via.transport for via in message.vias] == ["UDP", "TCP", "UDP"]
    assert [via.branch for via in message.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert message.from_ is not None
    assert message.from_.display_name == 'J Rosenberg \\"'
    (contact,) = parse_name_addrs(message.headers.get("m") or "")
    assert contact.display_name == 'Quoted string ""'
    assert contact.param("newparam") == "newvalue"
    assert contact.param("q") == "0.33"
    assert ("TO", "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n") in message.headers.fields


def test_intmeth_unusual_characters() -> None:
    message = parse_message(_load("intmeth"))
    assert isinstance(message, SipRequest)
    assert message.uri.startswith("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1")
    assert message.to is not None
    assert message.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert message.to.uri.host == "example.com"
    assert message.from_ is not None
    assert message.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert message.from_.param("fromparam''~+*_!.-%") == '"работающий"'


def test_dblreq_trailing_message_is_ignored() -> None:
    data = _load("dblreq")
    message = parse_message(data)
    assert message.trailing.lstrip().startswith(b"INVITE sip:joe@example.com SIP/2.0")
    assert message.raw + message.trailing == data
    second = parse_message(message.trailing)
    assert isinstance(second, SipRequest)
    assert second.method == "INVITE"
    assert second.call_id == "dblreq.0ha0isnda977644900765@192.0.2.15"


def test_badbranch_is_not_an_rfc3261_branch() -> None:
    message = parse_message(_load("badbranch"))
    assert message.top_via is not None
    assert message.top_via.branch == "z9hG4bK"
    assert message.top_via.rfc3261_branch is False
    assert parse_message(_load("zeromf")).vias[0].rfc3261_branch is True


def test_transports_and_broadcast_via() -> None:
    message = parse_message(_load("transports"))
    assert [via.transport for via in message.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    bcast = parse_message(_load("bcast"))
    assert [via.host for via in bcast.vias] == ["192.0.2.198", "255.255.255.255"]


def test_longreq_many_vias() -> None:
    message = parse_message(_load("longreq"))
    assert len(message.vias) == 34
    assert message.vias[0].host == "sip33.example.com"
    assert message.vias[-1].param("received") == "192.0.2.5"
    assert message.to is not None
    assert message.to.uri.port == 6000


def test_contact_forms() -> None:
    (c1,) = parse_name_addrs(parse_message(_load("cparam01")).headers.get("contact") or "")
    assert c1.params == (("unknownparam", None),)
    assert c1.uri.params == ()
    (c2,) = parse_name_addrs(parse_message(_load("cparam02")).headers.get("contact") or "")
    assert c2.params == ()
    assert c2.uri.params == (("unknownparam", None),)
    esc02 = parse_message(_load("esc02"))
    assert len(esc02.headers.get_all("contact")) == 2  # C%6Fntact is another header
    assert esc02.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_unknown_schemes() -> None:
    message = parse_message(_load("unksm2"))
    assert message.to is not None and message.to.uri.scheme == "isbn"
    assert message.from_ is not None and message.from_.uri.scheme == "http"
    assert isinstance(parse_message(_load("unkscm")), SipRequest)


def test_mpart01_has_no_sdp_and_a_binary_body() -> None:
    message = parse_message(_load("mpart01"))
    assert message.content_type == "multipart/mixed"
    assert b"\x00" in message.body or any(byte > 0x7F for byte in message.body)
    assert find_sdp(message) is None


def test_noreason_and_unreason() -> None:
    noreason = parse_message(_load("noreason"))
    assert isinstance(noreason, SipResponse)
    assert noreason.reason == ""
    unreason = parse_message(_load("unreason"))
    assert isinstance(unreason, SipResponse)
    assert unreason.reason.startswith("= 2**3 * 5**2 но")


# --- Defect codes --------------------------------------------------------------------------------------


def test_code_table_covers_every_message() -> None:
    assert set(CODES) == set(EXPECTED)
    assert set().union(*CODES.values()) <= set(KINDS)


@pytest.mark.parametrize("name", sorted(CODES))
def test_each_message_has_exactly_the_defect_codes_of_its_section(name: str) -> None:
    message = parse_message(_load(name))
    assert all(isinstance(defect, Defect) for defect in message.defects), message.defects
    assert {defect.code for defect in message.defects} == CODES[name], message.defects
