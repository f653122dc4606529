#!/usr/bin/env bash
# Regenerate the rotated capture of sipflow's archive tests (samples/README.md,
# "Rotated captures"): one long run of calls through the Kamailio proxy,
# recorded once and cut into the files a probe rotating its capture would write.
#
#   samples/rotated.pcap              the whole run (CALLS calls, RATE new calls a second)
#   samples/rotated/part-01..NN.pcap  the same packets cut into PARTS files of equal
#                                     packet counts (editcap -r), in time order: calls
#                                     cross the cuts (an INVITE in one file, its 200
#                                     or BYE in a later one)
#
# Real SIP software only, on the loopback interface only:
#   caller  "alice"  SIPp       127.0.0.10:5060
#   proxy            Kamailio   127.0.0.20:5060   (samples/kamailio/proxy.cfg)
#   callee  "bob"    SIPp       127.0.0.30:5060
# What each call does comes from samples/correlation/plan.py (kind "proxy",
# seeded): answered and hung up by either side, busy, declined, unavailable,
# rejected without ringing, cancelled while ringing; callers and callees with
# numbers of their own. The script checks the capture against the plan: every
# call is there with the final status it was planned to get, through the proxy.
#
# Needs root (or CAP_NET_RAW for tcpdump) and the Debian packages sip-tester,
# kamailio, tcpdump, tshark (editcap), iproute2, coreutils, python3.
# Takes about CALLS/RATE + 15 seconds.
#
# Usage: samples/make-rotated-samples.sh
#        CALLS=60 RATE=2 PARTS=20 SEED=16 samples/make-rotated-samples.sh   (the defaults)
#        KEEP_WORK=1 samples/make-rotated-samples.sh                     keeps logs and plans
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
KCFG=$HERE/kamailio/proxy.cfg
PLAN=$HERE/correlation/plan.py

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
PORT=5060

CALLS=${CALLS:-60}
RATE=${RATE:-2}
PARTS=${PARTS:-20}
SEED=${SEED:-16}
NAME=rotated

SCRIPT=make-rotated-samples
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need python3 python3
need editcap wireshark-common
kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex auth usrloc registrar
work_dir rotated
SECS=$((CALLS / RATE + 30))
PROXY_TIMEOUT=$((SECS + 30))
CAP_TIMEOUT=$((SECS + 30))

sipp_bg() { # role sipp-args...: SIPp in $WORK, bounded, logs to role.*
	local role=$1
	shift
	bg_in "$WORK" timeout $((SECS + 15)) sipp "$@" -bind_local -nostdin -timeout "${SECS}s" \
		-timeout_error -trace_err -error_file "$role.errors" >"$WORK/$role.out" 2>&1
}

sipp_wait() { # role pid
	if ! reap "$2"; then
		tail -n 30 "$WORK/$1.out" >&2 || true
		die "SIPp $1 failed (see $WORK/$1.*)"
	fi
}

# ---------------------------------------------------------------- the run
python3 "$PLAN" proxy "$NAME" "$CALLS" "$SEED" "$WORK"
check_free "$CALLER:$PORT" "$PROXY:$PORT" "$CALLEE:$PORT"
start=$SECONDS
start_proxy "$NAME" -A WITH_NUMBERS
start_capture "$NAME" "udp and (host $CALLER or host $PROXY or host $CALLEE) and port $PORT"
sipp_bg bob -sf "$SCN/uas-plan.xml" -i $CALLEE -p $PORT -m "$CALLS" -inf bob.csv
bob=$BG_LAST
wait_listen udp "$CALLEE:$PORT"
sipp_bg alice "$PROXY:$PORT" -sf "$SCN/uac-plan.xml" -i $CALLER -p $PORT \
	-m "$CALLS" -r "$RATE" -l 1000 -inf alice.csv -cid_str "sipflow-$NAME-%u@%s"
sipp_wait alice "$BG_LAST"
sipp_wait bob "$bob"
stop_capture
stop_proxy
pcap=$WORK/$NAME.pcap
check_sip_only "$NAME" "$pcap"

# ---------------------------------------------------------------- check against the plan
tshark -r "$pcap" -Y sip -T fields -E separator=/t -e frame.number -e ip.src -e ip.dst \
	-e sip.Call-ID -e sip.CSeq.method -e sip.Status-Code >"$WORK/sip.tsv" 2>/dev/null
python3 - "$WORK/plan.json" "$WORK/sip.tsv" <<'EOF'
import collections, json, sys

plan = json.load(open(sys.argv[1]))["calls"]
final = collections.defaultdict(set)   # Call-ID -> final INVITE statuses (both hops)
hops = collections.defaultdict(set)    # Call-ID -> (src, dst)
for line in open(sys.argv[2]):
    _, src, dst, cid, method, status = (line.rstrip("\n").split("\t") + [""] * 6)[:6]
    hops[cid].add((src, dst))
    if method == "INVITE" and status and int(status) >= 200:
        final[cid].add(int(status))
bad = []
for c in plan:
    cid = c["a_callid"]
    if final.get(cid) != {c["final"]}:
        bad.append(f"{cid}: final {sorted(final.get(cid, ()))}, planned {c['final']}")
    elif not {("127.0.0.10", "127.0.0.20"), ("127.0.0.20", "127.0.0.30")} <= hops[cid]:
        bad.append(f"{cid}: not through the proxy: {sorted(hops[cid])}")
extra = set(hops) - {c["a_callid"] for c in plan}
if extra:
    bad.append(f"Call-IDs nobody planned: {sorted(extra)}")
if bad:
    sys.exit("make-rotated-samples: the capture is not the plan:\n  " + "\n  ".join(bad))
EOF

# ---------------------------------------------------------------- cut it
total=$(tshark -r "$pcap" 2>/dev/null | wc -l)
per=$(((total + PARTS - 1) / PARTS))
mkdir -p "$WORK/parts"
for ((i = 1; i <= PARTS; i++)); do
	first=$(((i - 1) * per + 1))
	last=$((i * per))
	((last <= total)) || last=$total
	((first <= last)) || die "$total packets do not make $PARTS parts"
	editcap -F pcap -r "$pcap" "$WORK/parts/part-$(printf %02d "$i").pcap" "$first-$last"
done
# calls that cross a cut: their Call-ID is in more than one part
crossing=$(for f in "$WORK"/parts/part-*.pcap; do
	tshark -r "$f" -Y sip -T fields -e sip.Call-ID 2>/dev/null | sort -u
done | sort | uniq -d | wc -l)
((crossing >= PARTS / 2)) || die "only $crossing calls cross a cut; raise CALLS or RATE"

install_file "$pcap" "$HERE/$NAME.pcap"
mkdir -p "$HERE/$NAME"
rm -f "$HERE/$NAME"/part-*.pcap
for f in "$WORK"/parts/part-*.pcap; do
	install_file "$f" "$HERE/$NAME/$(basename "$f")"
done
log "$CALLS calls, $total packets -> samples/$NAME.pcap and $PARTS parts in samples/$NAME/" \
	"($crossing calls cross a cut) in $((SECONDS - start)) s"
