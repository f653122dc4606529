"""Real messages: every UDP payload tshark calls SIP parses, and agrees with tshark.

The reference is ``shared/captures/ground_truth.json`` (tshark 4.0): per SIP frame its methods,
status codes and Call-IDs. Payloads are taken out of the captures with scapy (the reference
decoder, STYLE.md); IP fragments are left out since scapy does not reassemble them here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sipflow.sip import SipRequest, find_sdp, parse_message, summarize

CAPTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "captures"
if not CAPTURES.is_dir():
    CAPTURES = Path("/work/shared/captures")

pytestmark = pytest.mark.skipif(
    not (CAPTURES / "ground_truth.json").is_file(), reason="shared/captures is not there"
)

# The defects real traffic in these files has (each one a genuine RFC 3261 violation).
KNOWN_DEFECTS: dict[str, set[str]] = {
    "aaa.pcap": {"No Max-Forwards header field (RFC 3261 §8.1.1.6)."},
    "voip1b.pcapng": {"No Max-Forwards header field (RFC 3261 §8.1.1.6)."},
    "rtp_rtcp_sip_ipv4_udp.pcap": {"No Max-Forwards header field (RFC 3261 §8.1.1.6)."},
    "sip-long-request-response-paths.pcap": {"No Max-Forwards header field (RFC 3261 §8.1.1.6)."},
    "sip-488-Not-Acceptable-Here-codec-null.pcapng": {"No Max-Forwards header field (RFC 3261 §8.1.1.6)."},
    # The rewritten INVITE carries a literal backslash-quote: f: \"arik\" <sip:...>
    "sip_compact_form.pcap": {"From display name has characters that need quoting."},
    "sip_ipv6_udp.pcap": {
        "From has an IPv6 address without brackets.",
        "To has an IPv6 address without brackets.",
        "Via sent-by has an IPv6 address without brackets.",
    },
    "sip-junk-before-request.pcap": {
        "No Max-Forwards header field (RFC 3261 §8.1.1.6).",
        "No To header field.",
        "No From header field.",
        "No Call-ID header field.",
        "No CSeq header field.",
        "No Via header field.",
    },
}

FILES = [
    "aaa.pcap",
    "voip1b.pcapng",
    "DTMFsipinfo.pcap",
    "sip_compact_form.pcap",
    "sip-long-request-response-paths.pcap",
    "rtp_rtcp_sip_ipv4_udp.pcap",
    "sip_ipv6_udp.pcap",
    "voip-extension.pcap",
    "voip-extension2downata.pcap",
    "register-invite-reinvite-bye.pcap",
    "Forensic_challenge_4.pcap",
    "sip-488-Not-Acceptable-Here-codec-null.pcapng",
    "sip-register-wrong_password-401-403-401-403.pcapng",
    "h263-over-rtp.pcap",
    "sip-junk-before-request.pcap",
]


def _ground_truth() -> dict[str, Any]:
    data = json.loads((CAPTURES / "ground_truth.json").read_text())
    return {entry["file"]: entry for entry in data["files"]}


@pytest.mark.parametrize("name", FILES)
def test_udp_sip_payloads_parse_like_tshark(name: str) -> None:
    scapy = pytest.importorskip("scapy.all")
    truth = _ground_truth()[name]
    packets = scapy.rdpcap(str(CAPTURES / name))
    checked = 0
    sdp_seen = 0
    for frame, methods, codes, call_ids, _requests, _statuses in truth["sip_frames"]:
        packet = packets[frame - 1]
        if scapy.UDP not in packet:
            continue
        if scapy.IP in packet and (packet[scapy.IP].flags.MF or packet[scapy.IP].frag):
            continue
        message = parse_message(bytes(packet[scapy.UDP].payload))
        if isinstance(message, SipRequest):
            assert ([message.method], []) == (methods, codes), frame
        else:
            assert ([], [message.status]) == (methods, codes), frame
        assert ([message.call_id] if message.call_id else []) == call_ids, frame
        assert set(message.defects) <= KNOWN_DEFECTS.get(name, set()), (frame, message.defects)
        sd = find_sdp(message)
        if sd is not None:
            sdp_seen += 1
            assert summarize(sd)
        checked += 1
    assert checked == int(truth["tshark_frames_with_sip"])
    if name == "DTMFsipinfo.pcap":
        assert sdp_seen > 0


def test_compact_form_capture() -> None:
    scapy = pytest.importorskip("scapy.all")
    (packet,) = scapy.rdpcap(str(CAPTURES / "sip_compact_form.pcap"))
    message = parse_message(bytes(packet[scapy.UDP].payload))
    assert message.call_id == "105090259-446faf7a@192.168.1.2"
    assert message.to is not None and message.to.uri.user == "97239287044"
    assert message.top_via is not None and message.top_via.branch == "z9hG4bKnp104984053-44ce4a41192.168.1.2"
    assert message.content_length == len(message.body) == 272
    # The rewrite lengthened the SDP without fixing Content-Length: the m= line is cut off
    # (RFC 3261 §18.3: octets past Content-Length are not part of the message), as in tshark.
    assert message.trailing.endswith(b"m=audio 30000 RTP/AVP 0 8 97 2 3\r\na=rtpmap:0 pcmu/8000\r\n")
    sd = find_sdp(message)
    assert sd is not None and sd.origin is not None and sd.origin.username == "SIPPS"
    assert sd.connection == "192.168.1.2"
    assert sd.media == ()
