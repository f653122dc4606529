#!/usr/bin/env bash
# Regenerate the WIRE sample captures of sipflow: what the wire and the
# capture setup do to SIP, next to samples/wire-facts.json (the ground truth
# per frame, computed here from tshark's view of each capture).
#
#   via-487-proxy           alice -> Kamailio -> bob; alice CANCELs (same branch
#                           as her INVITE); bob sends the 487 with the Via set of
#                           the CANCEL ([last_Via:] after the CANCEL). Kamailio
#                           5.6 relays it to alice with NO Via at all; alice ACKs
#                           with her INVITE's branch.
#   via-487-direct          the same over one hop, alice -> bob, and alice's CANCEL
#                           has a new branch: bob's 487 carries the CANCEL's Via,
#                           whose branch matches no INVITE; alice ACKs with her
#                           INVITE's branch.
#   two-probes.pcapng       a call through Kamailio with a slow callee (Kamailio
#                           retransmits the INVITE to bob once), recorded by two
#                           tcpdumps: probe A (all three roles, interface 0) and
#                           probe B (only bob's traffic, interface 1), B's clock
#                           shifted by +0.35 s (editcap -t), merged with
#                           mergecap -I none (each probe keeps its interface).
#   doubled-one-interface   a direct call inside network namespaces made here:
#                           alice and bob hang on a Linux bridge by veth pairs, and
#                           "tcpdump -i any" in the bridge's namespace records each
#                           packet twice (in on alice's port, out on bob's or back),
#                           in one interface (Linux cooked v2).
#
# Real software only: SIPp (Debian sip-tester), Kamailio 5.6 with
# samples/kamailio/proxy.cfg, tcpdump; scenarios samples/scenarios/wire-*.xml
# (plus uac-call.xml / uas-answer.xml). Addresses:
#   caller  "alice"  SIPp      127.0.0.10:5060   (doubled: 192.0.2.10, own netns)
#   proxy            Kamailio  127.0.0.20:5060
#   callee  "bob"    SIPp      127.0.0.30:5060   (doubled: 192.0.2.30, own netns)
# Network traffic only on loopback, or inside the three network namespaces
# the script makes for doubled-one-interface (sipflow-wire-<pid>-{br,alice,bob};
# TEST-NET-1 addresses) and deletes afterwards, also on failure (EXIT trap).
# Every process is bounded (SIPp -timeout, timeout wrappers) and stopped by PID.
# Each capture must hold exactly its EXPECT_SEQ (and retransmissions, copies,
# defects), or the attempt is rejected; a capture gets ATTEMPTS tries (3).
# See samples/README.md, "Wire captures".
#
# Needs root (tcpdump, ip netns) and the Debian packages sip-tester, kamailio,
# tcpdump, tshark, wireshark-common (editcap, mergecap, capinfos), iproute2,
# coreutils, python3. Takes about 15 s.
#
# Usage: samples/make-wire-samples.sh [NAME ...]   (default: all four)
#        KEEP_WORK=1 samples/make-wire-samples.sh  keeps the logs
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
KCFG=$HERE/kamailio/proxy.cfg

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
PORT=5060
NS_CALLER=192.0.2.10      # inside the namespaces of doubled-one-interface only
NS_CALLEE=192.0.2.30
SKEW=0.35                 # probe B's clock, ahead of probe A's (two-probes)
ATTEMPTS=${ATTEMPTS:-3}

ALL_SAMPLES=(via-487-proxy via-487-direct two-probes doubled-one-interface)
declare -A OUT=(
	[via-487-proxy]=faulty-via-487-proxy.pcap [via-487-direct]=faulty-via-487-direct.pcap
	[two-probes]=two-probes.pcapng [doubled-one-interface]=doubled-one-interface.pcap
)
# The exact sequence of SIP frames: [probe:]from>to:message/CSeq-number, with
# a = alice, p = proxy, b = bob; in two-probes A: is probe A (interface 0), B:
# probe B (interface 1). Anything else rejects the attempt.
declare -A EXPECT_SEQ=(
	[via-487-proxy]="a>p:INVITE/1 p>a:100/1 p>b:INVITE/1 b>p:100/1 b>p:180/1 p>a:180/1
		a>p:CANCEL/1 p>b:CANCEL/1 p>a:200/1 b>p:200/1 b>p:487/1 p>b:ACK/1 p>a:487/1 a>p:ACK/1"
	[via-487-direct]="a>b:INVITE/1 b>a:100/1 b>a:180/1 a>b:CANCEL/1 b>a:200/1 b>a:487/1 a>b:ACK/1"
	[two-probes]="A:a>p:INVITE/1 A:p>a:100/1 A:p>b:INVITE/1 B:p>b:INVITE/1 A:p>b:INVITE/1
		A:b>p:100/1 B:p>b:INVITE/1 A:b>p:180/1 A:p>a:180/1 B:b>p:100/1
		A:b>p:200/1 A:p>a:200/1 A:a>p:ACK/1 A:p>b:ACK/1 B:b>p:180/1 B:b>p:200/1 B:p>b:ACK/1
		A:a>p:BYE/2 A:p>b:BYE/2 A:b>p:200/2 A:p>a:200/2 B:p>b:BYE/2 B:b>p:200/2"
	[doubled-one-interface]="a>b:INVITE/1 a>b:INVITE/1 b>a:100/1 b>a:100/1 b>a:180/1 b>a:180/1
		b>a:200/1 b>a:200/1 a>b:ACK/1 a>b:ACK/1 a>b:BYE/2 a>b:BYE/2 b>a:200/2 b>a:200/2"
)
# Probe A and probe B of two-probes on their own.
SEQ_PROBE_A="a>p:INVITE/1 p>a:100/1 p>b:INVITE/1 p>b:INVITE/1 b>p:100/1 b>p:180/1 p>a:180/1
	b>p:200/1 p>a:200/1 a>p:ACK/1 p>b:ACK/1 a>p:BYE/2 p>b:BYE/2 b>p:200/2 p>a:200/2"
SEQ_PROBE_B="p>b:INVITE/1 p>b:INVITE/1 b>p:100/1 b>p:180/1 b>p:200/1 p>b:ACK/1 p>b:BYE/2 b>p:200/2"
# Real retransmissions (by the first frame of each; copies aside), the
# defects (token=kind), and how frames are copied.
declare -A EXPECT_RETRANS=(
	[via-487-proxy]="" [via-487-direct]="" [two-probes]="A:p>b:INVITE/1" [doubled-one-interface]=""
)
declare -A EXPECT_DEFECTS=(
	[via-487-proxy]="b>p:487/1=cancel-vias p>a:487/1=via-less"
	[via-487-direct]="a>b:CANCEL/1=cancel-new-branch b>a:487/1=cancel-vias"
	[two-probes]="" [doubled-one-interface]=""
)
declare -A EXPECT_COPIES=(
	[via-487-proxy]=none [via-487-direct]=none [two-probes]=probe-b [doubled-one-interface]=double
)
declare -A EXPECT_INTERFACES=(
	[via-487-proxy]=1 [via-487-direct]=1 [two-probes]=2 [doubled-one-interface]=1
)

SCRIPT=make-wire-samples
CAP_TIMEOUT=60 PROXY_TIMEOUT=60
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need python3 python3
need editcap wireshark-common
need mergecap wireshark-common
need capinfos wireshark-common
need ip iproute2
kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex
work_dir wire

# ---------------------------------------------------------------- SIPp
# Bound every SIPp run: SIPp's own -timeout inside a `timeout` wrapper. Both
# run in $NETNS (see lib.sh) when it is set.
SIPP_COMMON=(-bind_local -nostdin -timeout 15s -timeout_error)

uas_start() { # name role-label scenario addr port [extra sipp args...]
	local name=$1 role=$2 scen=$3 addr=$4 port=$5
	shift 5
	in_netns
	bg timeout 30 "${IN_NETNS[@]}" sipp -sf "$SCN/$scen" -i "$addr" -p "$port" "${SIPP_COMMON[@]}" \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	UAS_PID=$BG_LAST
	wait_listen udp "$addr:$port"
}

uas_wait() { # name role
	if ! reap "$UAS_PID"; then
		tail -n 30 "$WORK/$1.$2.out" >&2 || true
		die "$1: SIPp $2 failed (see $WORK/$1.$2.msg)"
	fi
}

uac_run() { # name role-label scenario remote addr port [extra sipp args...]
	local name=$1 role=$2 scen=$3 remote=$4 addr=$5 port=$6
	shift 6
	in_netns
	bg timeout 30 "${IN_NETNS[@]}" sipp "$remote" -sf "$SCN/$scen" -i "$addr" -p "$port" "${SIPP_COMMON[@]}" \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	if ! reap "$BG_LAST"; then
		tail -n 30 "$WORK/$name.$role.out" >&2 || true
		die "$name: SIPp $role failed (see $WORK/$name.$role.msg)"
	fi
}

# only our roles, only the SIP port
F4="udp and (host $CALLER or host $PROXY or host $CALLEE) and port $PORT"
cid() { echo "-cid_str" "sipflow-$1-%u@%s"; }

# ---------------------------------------------------------------- namespaces
# doubled-one-interface: three namespaces, made here and deleted afterwards
# (drop_netns, and the EXIT trap through on_cleanup if anything fails).
NS_BR=sipflow-wire-$$-br
NS_A=sipflow-wire-$$-alice
NS_B=sipflow-wire-$$-bob
NETNS_MADE=()

drop_netns() {
	local n
	for n in "${NETNS_MADE[@]}"; do
		ip netns del "$n" 2>/dev/null || log "could not delete network namespace $n"
	done
	NETNS_MADE=()
}
on_cleanup() { drop_netns; }

make_netns() {
	# bridge br0 in NS_BR with two veth members: port-alice <-> eth0 in NS_A
	# (192.0.2.10/24), port-bob <-> eth0 in NS_B (192.0.2.30/24). No IPv6
	# (no ND/MLD chatter), no STP, no address on the bridge.
	local n i
	for n in "$NS_BR" "$NS_A" "$NS_B"; do
		if ip netns list | awk '{print $1}' | grep -qxF "$n"; then
			die "network namespace $n exists already"
		fi
		ip netns add "$n"
		NETNS_MADE+=("$n")
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$n" link set lo up
	done
	ip -n "$NS_BR" link add br0 type bridge stp_state 0
	ip -n "$NS_BR" link add port-alice type veth peer name eth0 netns "$NS_A"
	ip -n "$NS_BR" link add port-bob type veth peer name eth0 netns "$NS_B"
	ip -n "$NS_BR" link set port-alice master br0
	ip -n "$NS_BR" link set port-bob master br0
	ip -n "$NS_BR" link set br0 up
	ip -n "$NS_BR" link set port-alice up
	ip -n "$NS_BR" link set port-bob up
	ip -n "$NS_A" addr add "$NS_CALLER/24" dev eth0
	ip -n "$NS_A" link set eth0 up
	ip -n "$NS_B" addr add "$NS_CALLEE/24" dev eth0
	ip -n "$NS_B" link set eth0 up
	# both bridge ports forwarding (brport state 3)
	for ((i = 0; i < 100; i++)); do
		if [[ $(ip netns exec "$NS_BR" cat /sys/class/net/port-alice/brport/state) == 3 &&
			$(ip netns exec "$NS_BR" cat /sys/class/net/port-bob/brport/state) == 3 ]]; then
			break
		fi
		sleep 0.05
	done
	((i < 100)) || die "the bridge ports do not forward after 5 s"
	# ifindex=name of the interfaces "tcpdump -i any" sees, for the truth
	IFNAMES=$(ip -n "$NS_BR" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s=%s ", $1, $2 }')
}

# ---------------------------------------------------------------- samples
# alice -> Kamailio -> bob: alice's CANCEL has her INVITE's branch, bob's 487
# the CANCEL's Via set.
mk_via-487-proxy() {
	local n=via-487-proxy
	start_proxy "$n"
	start_capture "$n" "$F4"
	uas_start "$n" bob wire-uas-487-lastvia.xml $CALLEE $PORT -m 1
	# shellcheck disable=SC2046
	uac_run "$n" alice wire-uac-cancel.xml $PROXY:$PORT $CALLER $PORT -m 1 \
		-key cancel_branch inv $(cid "$n")
	uas_wait "$n" bob
	stop_capture
	stop_proxy
	cp "$WORK/$n.pcap" "$WORK/$n.out.pcap"
}

# alice -> bob: alice's CANCEL has a new branch, bob's 487 the CANCEL's Via.
mk_via-487-direct() {
	local n=via-487-direct
	start_capture "$n" "$F4"
	uas_start "$n" bob wire-uas-487-lastvia.xml $CALLEE $PORT -m 1
	# shellcheck disable=SC2046
	uac_run "$n" alice wire-uac-cancel.xml $CALLEE:$PORT $CALLER $PORT -m 1 \
		-key cancel_branch cancel $(cid "$n")
	uas_wait "$n" bob
	stop_capture
	cp "$WORK/$n.pcap" "$WORK/$n.out.pcap"
}

# alice -> Kamailio -> slow bob, two probes; B shifted by +SKEW, merged.
mk_two-probes() {
	local n=two-probes cap_a cap_b
	start_proxy "$n"
	start_capture "$n-A" "$F4"
	cap_a=$CAP_PID
	start_capture "$n-B" "udp and host $CALLEE and port $PORT"
	cap_b=$CAP_PID
	uas_start "$n" bob wire-uas-slow.xml $CALLEE $PORT -m 1
	# shellcheck disable=SC2046
	uac_run "$n" alice uac-call.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid "$n")
	uas_wait "$n" bob
	CAP_PID=$cap_b
	stop_capture
	CAP_PID=$cap_a
	stop_capture
	stop_proxy
	editcap -t "$SKEW" "$WORK/$n-B.pcap" "$WORK/$n-B-shifted.pcap"
	mergecap -I none -w "$WORK/$n.out.pcapng" "$WORK/$n-A.pcap" "$WORK/$n-B-shifted.pcap"
}

# a direct call across a bridge, "tcpdump -i any" in the bridge's namespace.
mk_doubled-one-interface() {
	local n=doubled-one-interface
	make_netns
	NETNS=$NS_BR CAP_IF=any start_capture "$n" "udp and port $PORT"
	NETNS=$NS_B uas_start "$n" bob uas-answer.xml $NS_CALLEE $PORT -m 1
	# shellcheck disable=SC2046
	NETNS=$NS_A uac_run "$n" alice uac-call.xml $NS_CALLEE:$PORT $NS_CALLER $PORT -m 1 $(cid "$n")
	uas_wait "$n" bob
	stop_capture
	drop_netns
	cp "$WORK/$n.pcap" "$WORK/$n.out.pcap"
}

# ---------------------------------------------------------------- checks
# Reads tshark's fields of one capture (one line a SIP frame), checks the
# sequence, the retransmissions, the copies and the Via/branch defects, prints
# the listing and writes the facts of the capture (JSON) for wire-facts.json.
#
# A copy is a frame with the same addresses, ports, IP identification, TTL, IP
# and UDP checksums and UDP payload as an earlier frame: the same packet seen
# twice. A retransmission is another packet (other IP identification) with the
# same addresses, ports and payload as an earlier one.
FIELDS=(frame.number frame.interface_id frame.time_relative frame.time_epoch ip.src ip.dst
	udp.srcport udp.dstport ip.id ip.ttl ip.checksum udp.checksum sip.Method sip.Status-Code
	sip.CSeq sip.Call-ID sip.Via sip.Via.branch sip.resend sll.ifindex sll.pkttype udp.payload)
ANALYZE_PY=$(cat <<'PY'
import argparse, json, sys
ap = argparse.ArgumentParser()
for o in ("name", "file", "tsv", "facts"):
    ap.add_argument(o)
for o in ("--seq", "--retrans", "--defects", "--copies", "--ifnames", "--link-type", "--meta"):
    ap.add_argument(o, default="")
ap.add_argument("--skew", type=float)
ap.add_argument("--interfaces", type=int, default=1)
ap.add_argument("--tshark-resent", type=int)
ap.add_argument("--probe-a-resent", type=int)
a = ap.parse_args()
ROLE = {"127.0.0.10": "alice", "192.0.2.10": "alice", "127.0.0.20": "proxy",
        "127.0.0.30": "bob", "192.0.2.30": "bob"}
NAMES = ["frame", "iface", "trel", "tepoch", "src", "dst", "sport", "dport", "ipid", "ttl",
         "ipsum", "udpsum", "method", "status", "cseq", "callid", "vias", "branches",
         "resend", "ifindex", "pkttype", "payload"]
ifnames = dict(x.split("=", 1) for x in a.ifnames.split())
rows = []
for line in open(a.tsv):
    f = line.rstrip("\n").split("\t")
    if len(f) != len(NAMES):
        sys.exit(f"{a.name}: tshark line with {len(f)} fields: {line!r}")
    r = dict(zip(NAMES, f))
    r["frame"], r["iface"] = int(r["frame"]), int(r["iface"] or 0)  # empty in pcap files
    # one Via value each; SIPp [last_Via:] writes several in one header line, comma-separated
    r["vias"] = [v.strip() for h in r["vias"].split("|") for v in h.split(",")] if r["vias"] else []
    r["branches"] = r["branches"].split("|") if r["branches"] else []
    r["top"] = r["branches"][0] if r["branches"] else None
    r["msg"] = r["method"] or r["status"]
    r["num"] = r["cseq"].split()[0]
    r["from"], r["to"] = ROLE[r["src"]], ROLE[r["dst"]]
    probe = ("AB"[r["iface"]] + ":") if a.interfaces > 1 else ""
    r["token"] = f"{probe}{r['from'][0]}>{r['to'][0]}:{r['msg']}/{r['num']}"
    r["hop"] = (r["src"], r["sport"], r["dst"], r["dport"])
    rows.append(r)
bad = []
seq = " ".join(r["token"] for r in rows)
if seq != " ".join(a.seq.split()):
    bad.append(f"SIP frames\n  {seq}\nexpected\n  {' '.join(a.seq.split())}")
byframe = {r["frame"]: r for r in rows}
# copies and retransmissions
groups = {}
for r in rows:
    groups.setdefault(r["hop"] + (r["payload"],), []).append(r)
for g in groups.values():
    packets = {}
    for r in g:
        packets.setdefault((r["ipid"], r["ttl"], r["ipsum"], r["udpsum"]), []).append(r)
    first = g[0]
    for p in packets.values():
        for r in p:
            r["copy_of"] = p[0]["frame"] if r is not p[0] else None
            r["retransmission_of"] = first["frame"] if p[0] is not first else None
unique = [r for r in rows if r["copy_of"] is None]
retrans = [r for r in unique if r["retransmission_of"] is not None]
retrans_all = [r for r in rows if r["retransmission_of"] is not None]
copies = [r for r in rows if r["copy_of"] is not None]
copy_pairs = [[r["copy_of"], r["frame"]] for r in copies]
deltas = [float(r["tepoch"]) - float(byframe[r["copy_of"]]["tepoch"]) for r in copies]
got = " ".join(r["token"] for r in retrans)
if got != " ".join(a.retrans.split()):
    bad.append(f"retransmissions {got!r}, expected {a.retrans!r}")
ncopy = {}
for r in copies:
    ncopy[r["copy_of"]] = ncopy.get(r["copy_of"], 0) + 1
if a.copies == "none" and copies:
    bad.append(f"copies {copy_pairs}, expected none")
if a.copies == "double":
    if any(ncopy.get(r["frame"]) != 1 for r in unique):
        bad.append(f"not every packet exactly twice: copies {copy_pairs}")
    if deltas and not (0 <= min(deltas) and max(deltas) < 0.001):
        bad.append(f"copies {min(deltas):.6f} .. {max(deltas):.6f} s after their packet, expected < 1 ms")
    if any(r["ifindex"] == byframe[r["copy_of"]]["ifindex"] for r in copies):
        bad.append("a copy on the same interface index as its packet")
if a.copies == "probe-b":
    want = [r["frame"] for r in rows if r["iface"] == 0 and "bob" in (r["from"], r["to"])]
    if sorted(ncopy) != want or set(ncopy.values()) != {1}:
        bad.append(f"copies {copy_pairs}: expected one of each of probe A frames {want}")
    if any(r["iface"] != 1 or byframe[r["copy_of"]]["iface"] != 0 for r in copies):
        bad.append("a copy that is not probe B copying probe A")
    if not deltas or abs(min(deltas) - a.skew) > 0.001 or abs(max(deltas) - a.skew) > 0.001:
        bad.append(f"probe B {deltas and min(deltas)} .. {deltas and max(deltas)} s after A, expected {a.skew}")
# Via / branch defects, among the packets (copies aside)
defects, acks = [], []
requests = [r for r in unique if r["method"]]
def earlier(r, **kw):
    return [q for q in requests if q["frame"] < r["frame"] and all(q[k] == v for k, v in kw.items())]
for r in unique:
    back = (r["dst"], r["dport"], r["src"], r["sport"])
    if r["status"]:
        req = [q for q in earlier(r, callid=r["callid"], cseq=r["cseq"]) if q["hop"] == back]
        if not req:
            defects.append({"frame": r["frame"], "kind": "no-request"})
            continue
        q = req[-1]
        if r["vias"] != q["vias"]:
            same = [x for x in earlier(r, callid=r["callid"]) if x["hop"] == back and x["vias"] == r["vias"]]
            invites = [x for x in earlier(r, callid=r["callid"], method="INVITE") if x["hop"] == back]
            kind = "via-less" if not r["vias"] else (
                "cancel-vias" if same and same[-1]["method"] == "CANCEL" else "via-mismatch")
            defects.append({
                "frame": r["frame"], "kind": kind, "message": r["msg"], "cseq": r["cseq"],
                "answers_frame": q["frame"], "via_count": len(r["vias"]),
                "request_via_count": len(q["vias"]), "top_branch": r["top"],
                "request_top_branch": q["top"],
                "same_vias_as_frame": same[-1]["frame"] if same else None,
                "top_branch_matches_an_invite": any(x["top"] == r["top"] for x in invites)})
    elif r["method"] == "CANCEL":
        inv = earlier(r, callid=r["callid"], method="INVITE", hop=r["hop"])
        inv = [x for x in inv if x["num"] == r["num"]]
        if inv and inv[-1]["top"] != r["top"]:
            defects.append({"frame": r["frame"], "kind": "cancel-new-branch", "message": "CANCEL",
                            "cseq": r["cseq"], "invite_frame": inv[-1]["frame"],
                            "top_branch": r["top"], "invite_top_branch": inv[-1]["top"]})
    elif r["method"] == "ACK":
        inv = [x for x in earlier(r, callid=r["callid"], method="INVITE", hop=r["hop"]) if x["num"] == r["num"]]
        if not inv:
            continue
        fin = [x for x in unique if x["frame"] < r["frame"] and x["status"] and int(x["status"]) >= 200
               and x["callid"] == r["callid"] and x["cseq"] == inv[-1]["cseq"]
               and x["hop"] == (r["dst"], r["dport"], r["src"], r["sport"])]
        if fin and int(fin[-1]["status"]) >= 300:
            f = fin[-1]
            acks.append({"frame": r["frame"], "answers_frame": f["frame"], "status": int(f["status"]),
                         "invite_frame": inv[-1]["frame"], "top_branch": r["top"],
                         "same_branch_as_invite": r["top"] == inv[-1]["top"],
                         "same_branch_as_response": r["top"] == f["top"]})
            if r["top"] != inv[-1]["top"]:
                defects.append({"frame": r["frame"], "kind": "ack-branch", "message": "ACK",
                                "cseq": r["cseq"], "invite_frame": inv[-1]["frame"]})
got = sorted(f"{byframe[d['frame']]['token']}={d['kind']}" for d in defects)
if got != sorted(a.defects.split()):
    bad.append(f"defects {got}, expected {sorted(a.defects.split())}")
tshark_resent = [r["frame"] for r in rows if r["resend"] in ("1", "True")]
if a.copies == "none" and tshark_resent != [r["frame"] for r in retrans_all]:
    bad.append(f"tshark marks frames {tshark_resent} resent, we find {[r['frame'] for r in retrans_all]}")
if a.probe_a_resent is not None and a.probe_a_resent != len([r for r in retrans if r["iface"] == 0]):
    bad.append(f"tshark counts {a.probe_a_resent} resent messages in probe A, we find {len(retrans)}")
print(f"{a.file}: {len(rows)} SIP frames, {len(unique)} unique, {len(retrans)} retransmitted, "
      f"{len(copies)} copies, defects {[d['frame'] for d in defects]}")
print("frame\tif\ttime\tsrc\tdst\tmessage\tCSeq\ttop Via branch")
for r in rows:
    print(f"{r['frame']}\t{r['iface']}\t{float(r['trel']):.6f}\t"
          f"{r['src']}:{r['sport']}\t{r['dst']}:{r['dport']}\t"
          f"{r['msg']}\t{r['cseq']}\t{r['top'] or '-'}")
if bad:
    print("\n".join(f"REJECTED: {b}" for b in bad))
    sys.exit(1)
meta = json.loads(a.meta or "{}")
facts = dict(meta)
facts.update({
    "capture": a.file, "link_type": a.link_type, "interfaces": a.interfaces,
    "frames": len(rows), "sip_messages": len(rows), "unique_messages": len(unique),
    "retransmissions": len(retrans), "distinct_messages": len(unique) - len(retrans),
    "retransmission_frames": [r["frame"] for r in retrans],
    "retransmission_frames_with_copies": [r["frame"] for r in retrans_all],
    "retransmission_pairs": [[r["retransmission_of"], r["frame"]] for r in retrans],
    "copy_pairs": copy_pairs,
    "copy_delay_seconds": {"min": round(min(deltas), 6), "max": round(max(deltas), 6)} if deltas else None,
    "skew_seconds": a.skew,
    "tshark_resent_frames": tshark_resent, "tshark_sip_stat_resent": a.tshark_resent,
    "defect_frames": sorted(d["frame"] for d in defects), "defects": defects,
    "non2xx_acks": acks,
})
if a.probe_a_resent is not None:
    facts["probe_a_tshark_sip_stat_resent"] = a.probe_a_resent
msgs = []
for r in rows:
    m = {"frame": r["frame"], "interface": r["iface"], "time": round(float(r["trel"]), 6),
         "src": f"{r['src']}:{r['sport']}",
         "dst": f"{r['dst']}:{r['dport']}",
         "from": r["from"], "to": r["to"], "message": r["msg"], "cseq": r["cseq"],
         "call_id": r["callid"], "via_count": len(r["vias"]), "top_via_branch": r["top"],
         "ip_id": r["ipid"], "copy_of": r["copy_of"], "retransmission_of": r["retransmission_of"]}
    if r["ifindex"]:
        m["sll_ifindex"] = int(r["ifindex"])
        m["sll_interface"] = ifnames.get(r["ifindex"])
        m["sll_pkttype"] = int(r["pkttype"])
    msgs.append(m)
facts["messages"] = msgs
json.dump(facts, open(a.facts, "w"), indent=1)
PY
)

# Per capture: its description in wire-facts.json.
declare -A META=(
	[via-487-proxy]='{"shows": "alice -> Kamailio (tm) -> bob; alice CANCELs with her INVITE branch; bob answers the CANCEL 200 and sends 487 with [last_Via:] taken after the CANCEL, i.e. the Via set of the proxy CANCEL (one Via, the proxy own, whose branch is that of the proxy INVITE); Kamailio ACKs it and relays it to alice with its Via removed, so with no Via at all; alice ACKs with her INVITE branch", "made_by": "kamailio/proxy.cfg; bob scenarios/wire-uas-487-lastvia.xml; alice scenarios/wire-uac-cancel.xml -key cancel_branch inv"}'
	[via-487-direct]='{"shows": "alice -> bob, no proxy; alice CANCEL has a new branch (not her INVITE one); bob answers the CANCEL 200 and sends 487 with the CANCEL Via, whose branch matches no INVITE; alice ACKs with her INVITE branch", "made_by": "bob scenarios/wire-uas-487-lastvia.xml; alice scenarios/wire-uac-cancel.xml -key cancel_branch cancel"}'
	[two-probes]='{"shows": "alice -> Kamailio -> slow bob (silent 750 ms): Kamailio retransmits the INVITE to bob once; recorded by probe A (interface 0: the three roles) and probe B (interface 1: only bob 127.0.0.30), probe B clock shifted +0.35 s (editcap -t 0.35), merged with mergecap -I none", "made_by": "kamailio/proxy.cfg; bob scenarios/wire-uas-slow.xml; alice scenarios/uac-call.xml", "probes": {"0": {"name": "A", "filter": "udp and (host 127.0.0.10 or host 127.0.0.20 or host 127.0.0.30) and port 5060", "shift_seconds": 0}, "1": {"name": "B", "filter": "udp and host 127.0.0.30 and port 5060", "shift_seconds": 0.35}}}'
	[doubled-one-interface]='{"shows": "a direct call alice -> bob across a Linux bridge (veth members port-alice and port-bob) recorded by tcpdump -i any in the bridge namespace: every packet twice on one interface, in on the sender port (SLL2 packet type 3, other host) and out on the receiver port (packet type 4, outgoing), same bytes, microseconds apart", "made_by": "network namespaces made by the script, TEST-NET-1 192.0.2.10 (alice) and 192.0.2.30 (bob); bob scenarios/uas-answer.xml; alice scenarios/uac-call.xml"}'
)

check_capture() { # name: 0 if $WORK/name.out.* holds exactly what it must
	local n=$1 f=${OUT[$1]} p ifaces lt nif resent x pa_resent=() ifn=() skew=() tf=()
	p=$WORK/$n.out.${f##*.}
	check_sip_only "$n" "$p"
	nif=$(capinfos "$p" | sed -n 's/^Number of interfaces in file: *//p')
	lt=$(capinfos "$p" | sed -n 's/^File encapsulation: *//p')
	ifaces=$(tshark -r "$p" -T fields -e frame.interface_id 2>/dev/null | sort -u | tr '\n' ' ')
	if [[ $nif != "${EXPECT_INTERFACES[$n]}" ]]; then
		log "$n: $nif interfaces in the file, expected ${EXPECT_INTERFACES[$n]}"
		return 1
	fi
	if [[ $nif == 2 && $ifaces != "0 1 " ]]; then
		log "$n: frames on interfaces '$ifaces', expected '0 1'"
		return 1
	fi
	resent=$(tshark -r "$p" -q -z sip,stat 2>/dev/null | sed -n 's/.*Number of resent SIP messages: *//p')
	if [[ $n == two-probes ]]; then
		# probe A on its own
		local sa sb
		sa=$(tshark -r "$WORK/$n-A.pcap" -Y sip -T fields -e ip.src -e ip.dst -e sip.Method \
			-e sip.Status-Code -e sip.CSeq.seq 2>/dev/null | seq_tokens)
		sb=$(tshark -r "$WORK/$n-B.pcap" -Y sip -T fields -e ip.src -e ip.dst -e sip.Method \
			-e sip.Status-Code -e sip.CSeq.seq 2>/dev/null | seq_tokens)
		if [[ $sa != "$(words "$SEQ_PROBE_A")" || $sb != "$(words "$SEQ_PROBE_B")" ]]; then
			log "$n: probe A '$sa', probe B '$sb', expected '$(words "$SEQ_PROBE_A")' and '$(words "$SEQ_PROBE_B")'"
			return 1
		fi
		pa_resent=(--probe-a-resent "$(tshark -r "$WORK/$n-A.pcap" -q -z sip,stat 2>/dev/null |
			sed -n 's/.*Number of resent SIP messages: *//p')")
	fi
	[[ $n == doubled-one-interface ]] && ifn=(--ifnames "${IFNAMES:-}")
	[[ $n == two-probes ]] && skew=(--skew "$SKEW")
	for x in "${FIELDS[@]}"; do tf+=(-e "$x"); done
	tshark -r "$p" -Y sip -T fields -E occurrence=a -E aggregator='|' "${tf[@]}" \
		>"$WORK/$n.fields.tsv" 2>/dev/null
	if ! python3 -c "$ANALYZE_PY" "$n" "$f" "$WORK/$n.fields.tsv" "$WORK/$n.facts.json" \
		--seq "${EXPECT_SEQ[$n]}" --retrans "${EXPECT_RETRANS[$n]}" --defects "${EXPECT_DEFECTS[$n]}" \
		--copies "${EXPECT_COPIES[$n]}" --interfaces "$nif" --link-type "$lt" \
		--tshark-resent "${resent:-0}" --meta "${META[$n]}" \
		"${skew[@]}" "${pa_resent[@]}" "${ifn[@]}" \
		>"$WORK/$n.listing" 2>&1; then
		cat "$WORK/$n.listing" >&2
		return 1
	fi
	cat "$WORK/$n.listing" >&2
}

words() { echo "$*" | tr -s ' \t\n' ' ' | sed 's/^ //; s/ $//'; }

seq_tokens() { # tshark "src dst method status cseq" lines -> a>b:MSG/n tokens
	awk -F'\t' '
		function r(ip) { return ip == "'$CALLER'" ? "a" : ip == "'$PROXY'" ? "p" : ip == "'$CALLEE'" ? "b" : "?" }
		{ printf "%s%s>%s:%s/%s", (NR > 1 ? " " : ""), r($1), r($2), ($3 != "" ? $3 : $4), $5 }'
}

# The truth file: the facts of every capture made now, with those of the
# captures not made now taken over from the current samples/wire-facts.json.
COMBINE_PY=$(cat <<'PY'
import json, os, sys, collections
out, old, order, versions = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
facts = {}
for path in sys.argv[5:]:
    f = json.load(open(path))
    facts[f["capture"]] = f
prev = json.load(open(old)).get("captures", {}) if os.path.exists(old) else {}
caps = collections.OrderedDict()
for name in order:
    if name in facts:
        caps[name] = facts[name]
    elif name in prev:
        caps[name] = prev[name]
truth = {
    "notes": "Ground truth of the wire sample captures, made by samples/make-wire-samples.sh from "
             "tshark output of each capture. Frames are frame numbers (1-based). A copy is the same "
             "packet seen again (same addresses, ports, IP identification, TTL, IP and UDP checksums, "
             "UDP payload): copy_pairs = [[first frame, copy frame], ...]. A retransmission is another "
             "packet (other IP identification) with the same addresses, ports and payload as an earlier "
             "one: retransmission_pairs = [[original frame, retransmission frame], ...], "
             "retransmission_frames = the retransmissions (their first appearance), "
             "retransmission_frames_with_copies adds the copies of these. unique_messages = SIP frames "
             "minus copies (each packet once); distinct_messages = unique_messages minus "
             "retransmissions. skew_seconds: how far a second probe clock was shifted. defects: "
             "responses whose Via set differs from that of the request they answer (via-less: none at "
             "all; cancel-vias: the Via set of the CANCEL on that hop), CANCELs whose top branch "
             "differs from their INVITE (cancel-new-branch). tshark_resent_frames: what tshark 4.0 "
             "marks sip.resend (it takes copies for retransmissions).",
    "generator": "samples/make-wire-samples.sh",
    "software": versions,
    "captures": caps,
}
with open(out, "w") as fh:
    json.dump(truth, fh, indent=1)
    fh.write("\n")
PY
)

# ---------------------------------------------------------------- main
select_samples "$@"

check_free "$CALLER:$PORT" "$PROXY:$PORT" "$CALLEE:$PORT"

start=$SECONDS
made=()
for s in "${SAMPLES[@]}"; do
	ok=""
	for ((try = 1; try <= ATTEMPTS; try++)); do
		log "$s (attempt $try) ..."
		"mk_$s"
		if check_capture "$s"; then
			ok=1
			break
		fi
		log "$s: attempt $try rejected"
		mkdir -p "$WORK/rejected-$s-$try"
		mv "$WORK/$s".* "$WORK/$s"-* "$WORK/rejected-$s-$try/" 2>/dev/null || true
	done
	[[ -n $ok ]] || die "$s: rejected $ATTEMPTS times (see $WORK)"
	f=${OUT[$s]}
	install_file "$WORK/$s.out.${f##*.}" "$HERE/$f"
	made+=("$WORK/$s.facts.json")
	log "$s: -> samples/$f"
done
versions="$(sipp -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*[^ .]' || true); $(kamailio -v 2>&1 | sed -n '1s/^version: *//p' | sed 's/ *$//');"
versions+=" $(tshark -v 2>/dev/null | grep -m1 '^TShark' | sed 's/ (Git.*//'); $(tcpdump --version 2>&1 | head -n1)"
# keep the captures in ALL_SAMPLES order
order=()
for s in "${ALL_SAMPLES[@]}"; do order+=("${OUT[$s]}"); done
python3 -c "$COMBINE_PY" "$WORK/wire-facts.json" "$HERE/wire-facts.json" \
	"${order[*]}" "$versions" "${made[@]}"
install_file "$WORK/wire-facts.json" "$HERE/wire-facts.json"
log "truth -> samples/wire-facts.json"
log "done in $((SECONDS - start)) s"
