#!/usr/bin/env bash
# Regenerate the sample captures for call-leg correlation (samples/README.md,
# "Correlating call legs"): calls whose two legs have DIFFERENT Call-IDs,
# written to samples/<name>.pcap, each with a ground truth file
# samples/<name>.truth.json saying which Call-IDs make one call.
#
#   topoh-xcid    Kamailio with topoh (mask_callid) + "X-CID: <caller Call-ID>"
#   topoh-plain   the same without the X-CID header
#   b2bua-3pcc    a B2BUA of two SIPp instances in extended 3PCC mode,
#                 36 overlapping calls between the same two users
#   b2bua-load    the same B2BUA, 300 calls overlapping in time
#
# Real SIP software only, on the loopback interface only:
#   caller  "alice"  SIPp       127.0.0.10:5060
#   proxy            Kamailio   127.0.0.20:5060   (topoh captures)
#   callee  "bob"    SIPp       127.0.0.30:5060
#   B2BUA            SIPp x 2   127.0.0.40:5060 (inbound half, 3PCC master "m")
#                               127.0.0.40:5080 (outbound half, 3PCC slave "s1")
#                               twin (3PCC command) sockets: TCP 127.0.0.40:5098/5099
#                               (SIPp listens on 0.0.0.0 for them), not captured
# recorded with tcpdump on "lo". What each caller and callee does comes from
# a plan that samples/correlation/plan.py makes (seeded, so every run makes
# the same calls); samples/correlation/truth.py writes the ground truth from
# the generators' logs and checks it against the capture with tshark.
#
# Needs root (or CAP_NET_RAW for tcpdump) and the Debian packages sip-tester,
# kamailio, tcpdump, tshark, iproute2, coreutils, python3. Takes about 45 s.
#
# Usage: samples/make-correlation-samples.sh [NAME ...]   (default: all)
#        KEEP_WORK=1 samples/make-correlation-samples.sh  keeps logs and plans
#        TRACE_MSG=1 ...                                   also SIPp message traces
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
TOPOH_CFG=$HERE/kamailio/topoh.cfg
PLAN=$HERE/correlation/plan.py
TRUTH=$HERE/correlation/truth.py
OUT=$HERE

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
B2BUA=127.0.0.40
PORT=5060
B2BUA_OUT_PORT=5080
TWIN_M_PORT=5098
TWIN_S_PORT=5099

ALL_SAMPLES=(topoh-xcid topoh-plain b2bua-3pcc b2bua-load)
MAX_BYTES=$((3 * 1024 * 1024))

SCRIPT=make-correlation-samples
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need python3 python3
kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex topoh
work_dir correlation

# ---------------------------------------------------------------- capture
start_capture() { # name bpf-filter: $WORK/name/capture.pcap, tcpdump started in $WORK/name
	start_capture_at "$WORK/$1" "$WORK/$1/capture.pcap" "$WORK/$1/tcpdump.log" "$2"
}


start_topoh_proxy() { # name [-A DEFINE ...]
	local name=$1 d=$WORK/$1
	shift
	mkdir -p "$d/kamailio-run"
	bg_in "$d" timeout 120 kamailio -f "$TOPOH_CFG" -L "$KMOD" -DD -E -m 32 -M 4 \
		-w "$d/kamailio-run" -Y "$d/kamailio-run" "$@" \
		>"$d/kamailio.log" 2>&1
	PROXY_PID=$BG_LAST
	wait_listen udp "$PROXY:$PORT"
}


# ---------------------------------------------------------------- SIPp
# Every SIPp: bound to its role's address, no keyboard, bounded in time,
# <log> actions to <role>.log in the capture's work dir, errors to a file.
sipp_opts() { # role timeout-seconds
	SIPP_OPTS=(-bind_local -nostdin -timeout "$2s" -timeout_error
		-trace_logs -log_file "$1.log" -trace_err -error_file "$1.errors")
	if [[ -n ${TRACE_MSG:-} ]]; then
		SIPP_OPTS+=(-trace_msg -message_file "$1.msg")
	fi
}

sipp_bg() { # name role timeout-seconds sipp-args...: start SIPp in the background
	local name=$1 role=$2 secs=$3
	shift 3
	sipp_opts "$role" "$secs"
	bg_in "$WORK/$name" timeout $((secs + 15)) sipp "$@" "${SIPP_OPTS[@]}" \
		>"$WORK/$name/$role.out" 2>&1
}

sipp_wait() { # name role pid
	if ! reap "$3"; then
		tail -n 30 "$WORK/$1/$2.out" >&2 || true
		die "$1: SIPp $2 failed (see $WORK/$1/$2.*)"
	fi
}

# tcpdump filters: only our roles' SIP ports (no 3PCC twin traffic, no noise)
F_PROXY="udp and (host $CALLER or host $PROXY or host $CALLEE) and port $PORT"
F_B2BUA="udp and (host $CALLER or host $B2BUA or host $CALLEE) and (port $PORT or port $B2BUA_OUT_PORT)"

# ---------------------------------------------------------------- samples
# Three calls through the topology-hiding proxy, 300 ms apart (they
# overlap): answered + BYE from alice, 486 after ringing, CANCEL while ringing.
mk_topoh() { # name [kamailio -A ...]
	local n=$1 d=$WORK/$1
	shift
	python3 "$PLAN" topoh "$n" "$d"
	check_free "$CALLER:$PORT" "$PROXY:$PORT" "$CALLEE:$PORT"
	start_topoh_proxy "$n" "$@"
	start_capture "$n" "$F_PROXY"
	sipp_bg "$n" bob 20 -sf "$SCN/uas-plan.xml" -i $CALLEE -p $PORT -m 3 -inf bob.csv
	local bob=$BG_LAST
	wait_listen udp "$CALLEE:$PORT"
	sipp_bg "$n" alice 20 "$PROXY:$PORT" -sf "$SCN/uac-plan.xml" -i $CALLER -p $PORT \
		-m 3 -r 1 -rp 300 -l 3 -inf alice.csv -cid_str "sipflow-$n-%u@%s"
	sipp_wait "$n" alice "$BG_LAST"
	sipp_wait "$n" bob "$bob"
	stop_capture
	stop_proxy
}

mk_topoh-xcid() { mk_topoh topoh-xcid -A WITH_XCID; }
mk_topoh-plain() { mk_topoh topoh-plain; }

# The SIPp B2BUA between alice and bob: CALLS calls, RATE new calls per second.
mk_b2bua() { # name calls rate seed timeout-seconds
	local n=$1 calls=$2 rate=$3 seed=$4 secs=$5 d=$WORK/$1
	python3 "$PLAN" b2bua "$n" "$calls" "$seed" "$d"
	# each 3PCC instance reads its own copy of the twin address file
	printf 'm;%s:%s\ns1;%s:%s\n' $B2BUA $TWIN_M_PORT $B2BUA $TWIN_S_PORT >"$d/twin-m.cfg"
	cp "$d/twin-m.cfg" "$d/twin-s1.cfg"
	check_free "$CALLER:$PORT" "$CALLEE:$PORT" "$B2BUA:$PORT" "$B2BUA:$B2BUA_OUT_PORT" \
		"$B2BUA:$TWIN_M_PORT" "$B2BUA:$TWIN_S_PORT" "0.0.0.0:$TWIN_M_PORT" "0.0.0.0:$TWIN_S_PORT"
	start_capture "$n" "$F_B2BUA"
	sipp_bg "$n" bob "$secs" -sf "$SCN/uas-plan.xml" -i $CALLEE -p $PORT -m "$calls" -inf bob.csv
	local bob=$BG_LAST
	wait_listen udp "$CALLEE:$PORT"
	# the outbound half (3PCC slave) first, then the master
	sipp_bg "$n" b2bua-out "$secs" "$CALLEE:$PORT" -sf "$SCN/b2bua-out.xml" -i $B2BUA \
		-p $B2BUA_OUT_PORT -m "$calls" -slave s1 -slave_cfg twin-s1.cfg
	local out=$BG_LAST
	wait_listen udp "$B2BUA:$B2BUA_OUT_PORT"
	# (SIPp 3.6 listens for its twin on all addresses, whatever -i says)
	wait_listen tcp "$B2BUA:$TWIN_S_PORT" "0.0.0.0:$TWIN_S_PORT"
	sipp_bg "$n" b2bua-in "$secs" -sf "$SCN/b2bua-in.xml" -i $B2BUA -p $PORT -m "$calls" \
		-master m -slave_cfg twin-m.cfg -inf b2bua-in.csv -infindex b2bua-in.csv 0
	local in=$BG_LAST
	wait_listen udp "$B2BUA:$PORT"
	sipp_bg "$n" alice "$secs" "$B2BUA:$PORT" -sf "$SCN/uac-plan.xml" -i $CALLER -p $PORT \
		-m "$calls" -r "$rate" -l 1000 -inf alice.csv -cid_str "sipflow-$n-%u@%s"
	sipp_wait "$n" alice "$BG_LAST"
	sipp_wait "$n" b2bua-in "$in"
	sipp_wait "$n" b2bua-out "$out"
	sipp_wait "$n" bob "$bob"
	stop_capture
}

mk_b2bua-3pcc() { mk_b2bua b2bua-3pcc 36 6 3 30; }
mk_b2bua-load() { mk_b2bua b2bua-load 300 40 300 45; }

truth_kind() {
	case $1 in
	topoh-xcid) echo topoh-xcid ;;
	topoh-*) echo topoh ;;
	b2bua-*) echo b2bua ;;
	esac
}

# ---------------------------------------------------------------- main
select_samples "$@"

start=$SECONDS
for s in "${SAMPLES[@]}"; do
	log "$s ..."
	mkdir -p "$WORK/$s"
	"mk_$s"
	pcap=$WORK/$s/capture.pcap
	check_sip_only "$s" "$pcap"
	size=$(stat -c %s "$pcap")
	[[ $size -le $MAX_BYTES ]] || die "$s: capture is $size bytes, more than $MAX_BYTES"
	# ground truth from the generators' logs, checked against the capture
	python3 "$TRUTH" "$(truth_kind "$s")" "$s" "$WORK/$s" "$pcap" "$WORK/$s/truth.json" >&2 ||
		die "$s: ground truth check failed (see $WORK/$s)"
	install_file "$pcap" "$OUT/$s.pcap"
	install_file "$WORK/$s/truth.json" "$OUT/$s.truth.json"
	log "$s: $(tshark -r "$OUT/$s.pcap" -Y sip 2>/dev/null | wc -l) SIP messages, $size bytes -> samples/$s.pcap, samples/$s.truth.json"
done
log "done in $((SECONDS - start)) s"
