#!/usr/bin/env python3
"""Make the call plans for samples/make-correlation-samples.sh.

A plan says, for every call of a capture, what the caller (alice) and the
callee (bob) do, and (B2BUA captures) which identifiers the B2BUA uses on
its outbound leg. It is written as SIPp injection files:

  alice.csv       SEQUENTIAL, one line per call, in call order
                  (scenarios/uac-plan.xml)
  bob.csv         SEQUENTIAL, one line per call, in the order the INVITEs
                  reach bob (scenarios/uas-plan.xml)
  b2bua-in.csv    (b2bua only) indexed by the caller's Call-ID: the
                  B2BUA's outbound Call-ID, tags, CSeq numbers and branch
                  (scenarios/b2bua-in.xml)
  plan.json       all of it, for samples/correlation/truth.py

Everything comes from a seeded random generator, so a plan, and therefore
the Call-IDs, tags and CSeqs in the captures, are the same every time.

Usage: plan.py topoh NAME OUTDIR
       plan.py b2bua NAME CALLS SEED OUTDIR
       plan.py proxy NAME CALLS SEED OUTDIR   (samples/make-rotated-samples.sh:
                                               the b2bua mix through a proxy,
                                               callers and callees of their own)
"""

import json
import os
import random
import sys
import uuid

CALLER_IP = "127.0.0.10"
B2BUA_IP = "127.0.0.40"

# what alice does for each of bob's behaviours
ALICE_MODE = {
    "answer": "bye",
    "answer-bye": "waitbye",
    "reject": "fail",
    "reject-now": "fail",
    "ring": "cancel",
}

OUTCOME = {
    "answer": "answered, caller hangs up",
    "answer-bye": "answered, callee hangs up",
    "reject": "rejected after ringing",
    "reject-now": "rejected without ringing",
    "ring": "cancelled by the caller while ringing",
}


def a_callid(name, n):
    # what SIPp makes of -cid_str "sipflow-NAME-%u@%s" for call n
    return f"sipflow-{name}-{n}@{CALLER_IP}"


def call(
    n, name, from_user, to_user, bob_mode, d180, dfinal, code, reason, talk, cancel_after, a_tag, bob_tag
):
    alice_mode = ALICE_MODE[bob_mode]
    ms = {"bye": talk, "cancel": cancel_after}.get(alice_mode, 0)
    return {
        "index": n,
        "a_callid": a_callid(name, n),
        "outcome": OUTCOME[bob_mode],
        "final": {"answer": 200, "answer-bye": 200, "ring": 487}.get(bob_mode, code),
        "alice": {"from_user": from_user, "to_user": to_user, "mode": alice_mode, "ms": ms, "tag": a_tag},
        "bob": {
            "plan": f"p{n}",
            "mode": bob_mode,
            "d180": d180,
            "dfinal": dfinal,
            "code": code,
            "reason": reason,
            "talk": talk if bob_mode == "answer-bye" else 0,
            "tag": bob_tag,
        },
    }


def topoh_plan(name):
    # three overlapping calls, 300 ms apart: answered, busy, cancelled
    return [
        call(1, name, "alice", "bob", "answer", 50, 400, 0, "-", 1000, 0, "alice-tag-1", "bob-tag-1"),
        call(2, name, "alice", "bob", "reject", 50, 400, 486, "Busy Here", 0, 0, "alice-tag-2", "bob-tag-2"),
        call(3, name, "alice", "bob", "ring", 50, 0, 0, "-", 0, 1000, "alice-tag-3", "bob-tag-3"),
    ]


def b2bua_plan(name, calls, seed):
    rnd = random.Random(seed)

    def hexs(k):
        return "".join(rnd.choice("0123456789abcdef") for _ in range(k))

    def token(k):
        return "".join(
            rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(k)
        )

    kinds = (
        ["answer"] * 35
        + ["answer-bye"] * 15
        + ["busy"] * 8
        + ["busy-now"] * 7
        + ["decline"] * 10
        + ["unavailable"] * 5
        + ["ring"] * 20
    )
    out = []
    for n in range(1, calls + 1):
        kind = rnd.choice(kinds)
        d180 = rnd.randrange(10, 160, 10)
        dfinal = rnd.randrange(100, 2600, 10)
        talk = rnd.randrange(300, 4000, 10)
        cancel_after = rnd.randrange(300, 3000, 10)
        code, reason, mode = 0, "-", kind
        if kind in ("busy", "busy-now"):
            code, reason = 486, "Busy Here"
            mode = "reject" if kind == "busy" else "reject-now"
        elif kind == "decline":
            code, reason, mode = 603, "Decline", "reject"
        elif kind == "unavailable":
            code, reason, mode = 480, "Temporarily Unavailable", "reject"
        if mode == "reject-now":
            dfinal = rnd.randrange(0, 100, 5)
        if mode == "ring":
            dfinal = 0
        c = call(
            n,
            name,
            "+4930123",
            "bob",
            mode,
            d180,
            dfinal,
            code,
            reason,
            talk,
            cancel_after,
            hexs(10),
            token(12),
        )
        # the B2BUA's own identifiers for its outbound leg
        bcseq = rnd.randrange(1, 60000)
        c["b2bua"] = {
            "b_callid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "a_totag": token(13),  # its To tag towards alice
            "b_fromtag": token(13),  # its From tag towards bob
            "b_cseq": bcseq,
            "b_cseq_bye": bcseq + 1,
            "b_branch": "z9hG4bK" + hexs(16),
            "a_cseq_bye": rnd.randrange(1, 60000),  # its BYE towards alice
            "a_branch_bye": "z9hG4bK" + hexs(16),
            "b_branch_ack": "z9hG4bK" + hexs(16),  # ACK for a 2xx
            "b_branch_bye": "z9hG4bK" + hexs(16),
        }
        c["bob"]["branch_bye"] = "z9hG4bK" + hexs(16)
        out.append(c)
    return out


def proxy_plan(name, calls, seed):
    # the b2bua mix of outcomes and times, without the B2BUA's identifiers; a number
    # of its own for each caller and callee (a few callers call often)
    out = b2bua_plan(name, calls, seed)
    rnd = random.Random(seed + 1)
    callers = [f"+49301234{k:03d}" for k in rnd.sample(range(1000), 8)]
    for c in out:
        del c["b2bua"]
        c["alice"]["from_user"] = rnd.choice(callers)
        c["alice"]["to_user"] = f"+4940555{rnd.randrange(10000):04d}"
    return out


def write(outdir, name, kind, calls):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "alice.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for c in calls:
            a = c["alice"]
            f.write(
                ";".join(str(v) for v in (a["from_user"], a["to_user"], a["mode"], a["ms"], a["tag"])) + "\n"
            )
    with open(os.path.join(outdir, "bob.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for c in calls:
            b = c["bob"]
            f.write(
                ";".join(
                    str(v)
                    for v in (
                        b["plan"],
                        b["mode"],
                        b["d180"],
                        b["dfinal"],
                        b["code"],
                        b["reason"],
                        b["talk"],
                        b["tag"],
                        b.get("branch_bye", f"z9hG4bK-bob-bye-{c['index']}"),
                    )
                )
                + "\n"
            )
    if kind == "b2bua":
        with open(os.path.join(outdir, "b2bua-in.csv"), "w") as f:
            f.write("SEQUENTIAL\n")
            for c in calls:
                x = c["b2bua"]
                f.write(
                    ";".join(
                        str(v)
                        for v in (
                            c["a_callid"],
                            x["b_callid"],
                            x["a_totag"],
                            x["b_fromtag"],
                            x["b_cseq"],
                            x["b_cseq_bye"],
                            x["b_branch"],
                            x["a_cseq_bye"],
                            x["a_branch_bye"],
                            x["b_branch_ack"],
                            x["b_branch_bye"],
                        )
                    )
                    + "\n"
                )
    with open(os.path.join(outdir, "plan.json"), "w") as f:
        json.dump({"name": name, "kind": kind, "calls": calls}, f, indent=1)
        f.write("\n")


def main(argv):
    if len(argv) == 4 and argv[1] == "topoh":
        write(argv[3], argv[2], "topoh", topoh_plan(argv[2]))
    elif len(argv) == 6 and argv[1] == "b2bua":
        write(argv[5], argv[2], "b2bua", b2bua_plan(argv[2], int(argv[3]), int(argv[4])))
    elif len(argv) == 6 and argv[1] == "proxy":
        write(argv[5], argv[2], "proxy", proxy_plan(argv[2], int(argv[3]), int(argv[4])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
