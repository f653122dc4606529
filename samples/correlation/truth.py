#!/usr/bin/env python3
"""Write and check the ground truth of a correlation sample capture.

Which Call-IDs make one call is taken from what the generators logged
while they made the capture, never from the capture itself:

  topoh   Kamailio logs the caller-side Call-ID and From tag of every initial
          INVITE before topoh masks it ("SIPFLOW-LEG ci=... ft=..."); bob's
          SIPp logs the (masked) Call-ID and the From tag it received
          ("BOB call-id=... from-tag=..."). topoh leaves From tags alone, so
          the two logs join on the From tag.
  b2bua   the B2BUA's outbound half (SIPp 3PCC slave) logs the pair of
          Call-IDs its twin handed it in the 3PCC command
          ("B2BUA-LEG a=... b=..."): alice's Call-ID and the Call-ID of the
          leg it places. Checked against the plan (plan.json) and the
          inbound half's log ("B2BUA-IN a=...").

Then the pairs are checked against the capture (tshark): every Call-ID in
the capture is in exactly one pair, each leg runs between the expected
addresses, both legs of a call end the INVITE with the final status the plan
asked for, nothing was retransmitted, and for topoh the X-CID header is
(or is not) there and right. Writes OUT.json (samples/<name>.truth.json):

  {"calls": [[A-leg Call-ID, B-leg Call-ID], ...], "notes": "...",
   "capture": ..., "details": [{"a": ..., "b": ..., "outcome": ...}, ...]}

Usage: truth.py topoh|topoh-xcid|b2bua NAME WORKDIR PCAP OUT.json
WORKDIR holds plan.json and the logs the generator script wrote there.
"""

import collections
import json
import os
import re
import subprocess
import sys

CALLER = "127.0.0.10"
PROXY = "127.0.0.20"
CALLEE = "127.0.0.30"
B2BUA = "127.0.0.40"

FIELDS = [
    "frame.number",
    "frame.time_relative",
    "ip.src",
    "udp.srcport",
    "ip.dst",
    "udp.dstport",
    "sip.Method",
    "sip.Status-Code",
    "sip.Call-ID",
    "sip.CSeq.method",
    "sip.from.user",
    "sip.to.user",
    "sip.from.tag",
    "sip.msg_hdr",
]


def fail(msg):
    sys.exit("truth.py: ERROR: " + msg)


def read_pcap(pcap):
    args = ["tshark", "-r", pcap, "-Y", "sip", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    msgs = []
    for line in out.splitlines():
        v = line.split("\t")
        m = dict(
            zip(
                [
                    "frame",
                    "time",
                    "src",
                    "sport",
                    "dst",
                    "dport",
                    "method",
                    "status",
                    "callid",
                    "cseq_method",
                    "from_user",
                    "to_user",
                    "from_tag",
                    "hdr",
                ],
                v,
                strict=True,
            )
        )
        m["frame"] = int(m["frame"])
        m["time"] = float(m["time"])
        m["status"] = int(m["status"]) if m["status"] else None
        hdrs = {}
        for h in m.pop("hdr").split("\\r\\n"):
            if ":" in h:
                k, val = h.split(":", 1)
                hdrs.setdefault(k.strip().lower(), val.strip())
        m["headers"] = hdrs
        msgs.append(m)
    stat = subprocess.run(
        ["tshark", "-r", pcap, "-q", "-z", "sip,stat"], check=True, capture_output=True, text=True
    ).stdout
    resent = re.search(r"Number of resent SIP messages: (\d+)", stat)
    if not resent or int(resent.group(1)) != 0:
        fail(f"{pcap}: retransmitted SIP messages ({resent and resent.group(1)})")
    return msgs


def log_lines(path, tag):
    pat = re.compile(re.escape(tag) + r" (.*)")
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.search(line)
            if m:
                out.append(dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv))
    return out


def invite_final(msgs, callid):
    finals = [
        m["status"]
        for m in msgs
        if m["callid"] == callid and m["status"] and m["status"] >= 200 and m["cseq_method"] == "INVITE"
    ]
    return finals[0] if finals else None


def topoh_pairs(workdir, plan):
    legs = {x["ft"]: x["ci"] for x in log_lines(os.path.join(workdir, "kamailio.log"), "SIPFLOW-LEG")}
    bob = {x["from-tag"]: x for x in log_lines(os.path.join(workdir, "bob.log"), "BOB")}
    pairs = []
    for c in plan["calls"]:
        tag = c["alice"]["tag"]
        if legs.get(tag) != c["a_callid"]:
            fail(f"Kamailio did not log the INVITE of {c['a_callid']} (From tag {tag})")
        if tag not in bob:
            fail(f"bob did not log a call with From tag {tag}")
        if bob[tag]["plan"] != c["bob"]["plan"]:
            fail(f"bob used plan line {bob[tag]['plan']} for {tag}, made for {c['bob']['plan']}")
        pairs.append((c, c["a_callid"], bob[tag]["call-id"]))
    return pairs


def b2bua_pairs(workdir, plan):
    out = {x["a"]: x["b"] for x in log_lines(os.path.join(workdir, "b2bua-out.log"), "B2BUA-LEG")}
    inb = {x["a"] for x in log_lines(os.path.join(workdir, "b2bua-in.log"), "B2BUA-IN")}
    bob = {x["call-id"]: x for x in log_lines(os.path.join(workdir, "bob.log"), "BOB")}
    alice = {x["call-id"]: x for x in log_lines(os.path.join(workdir, "alice.log"), "ALICE")}
    pairs = []
    for c in plan["calls"]:
        a = c["a_callid"]
        if a not in inb or a not in alice:
            fail(f"no log of the inbound half or of alice for {a}")
        if a not in out:
            fail(f"the outbound half logged no leg for {a}")
        b = out[a]
        if b != c["b2bua"]["b_callid"]:
            fail(f"B2BUA placed {b} for {a}, the plan said {c['b2bua']['b_callid']}")
        if b not in bob:
            fail(f"bob did not log {b}")
        if bob[b]["plan"] != c["bob"]["plan"]:
            fail(f"bob used plan line {bob[b]['plan']} for {b} (A leg {a}), made for {c['bob']['plan']}")
        if alice[a]["plan"] != c["alice"]["mode"]:
            fail(f"alice used plan {alice[a]['plan']} for {a}, expected {c['alice']['mode']}")
        pairs.append((c, a, b))
    if len(out) != len(plan["calls"]):
        fail(f"the outbound half logged {len(out)} legs for {len(plan['calls'])} calls")
    return pairs


def check(kind, msgs, pairs):
    by_cid = collections.defaultdict(list)
    for m in msgs:
        by_cid[m["callid"]].append(m)
    all_ids = [x for _, a, b in pairs for x in (a, b)]
    if len(set(all_ids)) != len(all_ids):
        fail("a Call-ID is in two calls")
    if set(all_ids) != set(by_cid):
        fail(
            f"Call-IDs in the capture but not in the truth: {sorted(set(by_cid) - set(all_ids))}; "
            f"in the truth but not captured: {sorted(set(all_ids) - set(by_cid))}"
        )
    mid = PROXY if kind.startswith("topoh") else B2BUA
    for c, a, b in pairs:
        if a == b:
            fail(f"both legs of {a} have the same Call-ID")
        for m in by_cid[a]:
            if {m["src"], m["dst"]} != {CALLER, mid}:
                fail(f"A leg {a}: frame {m['frame']} not between alice and {mid}")
            if mid == B2BUA and "5060" not in (m["sport"], m["dport"]):
                fail(f"A leg {a}: frame {m['frame']} not on the B2BUA's inbound port")
        for m in by_cid[b]:
            if {m["src"], m["dst"]} != {mid, CALLEE}:
                fail(f"B leg {b}: frame {m['frame']} not between {mid} and bob")
            if mid == B2BUA and "5080" not in (m["sport"], m["dport"]):
                fail(f"B leg {b}: frame {m['frame']} not on the B2BUA's outbound port")
        fa, fb = invite_final(msgs, a), invite_final(msgs, b)
        if fa != c["final"] or fb != c["final"]:
            fail(f"call {a}/{b}: final responses {fa}/{fb}, the plan said {c['final']}")
        inv_b = [m for m in by_cid[b] if m["method"] == "INVITE"]
        inv_a = [m for m in by_cid[a] if m["method"] == "INVITE"]
        if len(inv_a) != 1 or len(inv_b) != 1:
            fail(f"call {a}/{b}: {len(inv_a)}/{len(inv_b)} INVITEs")
        xcid = inv_b[0]["headers"].get("x-cid")
        if kind == "topoh-xcid":
            if xcid != a:
                fail(f"INVITE of {b} carries X-CID {xcid!r}, expected {a}")
        elif any("x-cid" in m["headers"] for m in msgs):
            fail("an X-CID header in a capture that must not have one")
        if kind.startswith("topoh"):
            if not b.startswith("!!:"):
                fail(f"callee-side Call-ID {b} is not masked by topoh")
            if inv_a[0]["from_tag"] != inv_b[0]["from_tag"]:
                fail(f"topoh changed the From tag of {a}")
        else:
            if (inv_a[0]["from_user"], inv_a[0]["to_user"]) != ("+4930123", "bob") or (
                inv_b[0]["from_user"],
                inv_b[0]["to_user"],
            ) != ("004930123", "1001"):
                fail(f"call {a}/{b}: numbers not rewritten as expected")
            if inv_a[0]["from_tag"] == inv_b[0]["from_tag"]:
                fail("the B2BUA reused alice's From tag")


NOTES = {
    "topoh": (
        "Kamailio 5.6 with the topoh module (mask_callid=1) between alice (127.0.0.10) and "
        "bob (127.0.0.30); the proxy is 127.0.0.20. The caller-side leg keeps alice's Call-ID, "
        "the callee-side leg carries the masked one ('!!:...'). No correlation header: the legs "
        "share only From tag, From/To URIs, CSeq, SDP and timing. Truth: Kamailio's xlog of the "
        "caller-side Call-ID and From tag of each INVITE joined with bob's SIPp log of the "
        "Call-ID and From tag it received, checked against the capture with tshark."
    ),
    "topoh-xcid": (
        "Kamailio 5.6 with the topoh module (mask_callid=1) between alice (127.0.0.10) and "
        "bob (127.0.0.30); the proxy is 127.0.0.20. The caller-side leg keeps alice's Call-ID, "
        "the callee-side leg carries the masked one ('!!:...'), and the INVITE to bob carries "
        "'X-CID: <caller-side Call-ID>' (added with append_hf before t_relay). Truth: "
        "Kamailio's xlog of the caller-side Call-ID and From tag of each INVITE joined with "
        "bob's SIPp log of the Call-ID and From tag it received; the X-CID of every callee-side "
        "INVITE was checked to name its pair's caller-side Call-ID."
    ),
    "b2bua": (
        "B2BUA made of two SIPp 3.6 instances in extended 3PCC mode on 127.0.0.40: the inbound "
        "half (UAS, port 5060) answers alice (127.0.0.10), the outbound half (UAC, port 5080) "
        "calls bob (127.0.0.30) with its own Call-ID (UUID), tags, CSeq numbers, Via branches "
        "and SDP, rewritten numbers (From +4930123 -> 004930123, To bob -> 1001), and the two "
        "mirror ringing, answer, rejection (486/603/480), CANCEL and either side's BYE through "
        "3PCC commands. All calls are between the same two users. No header links the legs. "
        "Truth: the outbound half's SIPp log of the (A-leg, B-leg) Call-ID pair carried in "
        "each 3PCC command, checked against the generator's plan, the inbound half's log, "
        "alice's and bob's logs and the capture (tshark)."
    ),
}


def main(argv):
    if len(argv) != 6 or argv[1] not in NOTES:
        sys.exit(__doc__)
    kind, name, workdir, pcap, out = argv[1:]
    with open(os.path.join(workdir, "plan.json")) as f:
        plan = json.load(f)
    msgs = read_pcap(pcap)
    pairs = (topoh_pairs if kind.startswith("topoh") else b2bua_pairs)(workdir, plan)
    check(kind, msgs, pairs)
    first = {}
    for m in msgs:
        first.setdefault(m["callid"], m["frame"])
    pairs.sort(key=lambda p: first[p[1]])
    count = collections.Counter(m["callid"] for m in msgs)
    truth = {
        "calls": [[a, b] for _, a, b in pairs],
        "notes": NOTES[kind],
        "capture": name + ".pcap",
        "sip_messages": len(msgs),
        "details": [
            {
                "a": a,
                "b": b,
                "a_messages": count[a],
                "b_messages": count[b],
                "first_frame": first[a],
                "outcome": c["outcome"],
                "final": c["final"],
            }
            for c, a, b in pairs
        ],
    }
    # one call per line: readable, and diffs stay small
    text = (
        "{\n"
        + ",\n".join(
            f" {json.dumps(k)}: "
            + (
                "[\n" + ",\n".join("  " + json.dumps(x) for x in v) + "\n ]"
                if isinstance(v, list)
                else json.dumps(v)
            )
            for k, v in truth.items()
        )
        + "\n}\n"
    )
    if json.loads(text) != truth:
        fail("internal error: JSON formatting")
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
    outcomes = collections.Counter(c["outcome"] for c, _, _ in pairs)
    summary = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    print(f"{name}: {len(msgs)} SIP messages, {len(pairs)} calls ({summary})")


if __name__ == "__main__":
    main(sys.argv)
