#!/usr/bin/env bash
# Regenerate the bundled sample captures of sipflow (samples/*.pcap).
#
# Every capture is real traffic between real SIP software on the loopback
# interface only:
#   caller  "alice"  SIPp        127.0.0.10:5060   ([::1]:5061 for IPv6)
#   proxy            Kamailio    127.0.0.20:5060   (UDP and TCP)
#   callee  "bob"    SIPp        127.0.0.30:5060   ([::1]:5060 for IPv6)
# recorded with tcpdump on "lo". Scenarios: samples/scenarios/*.xml,
# proxy configuration: samples/kamailio/proxy.cfg. See samples/README.md.
#
# Needs root (or CAP_NET_RAW for tcpdump) and the Debian packages sip-tester,
# kamailio, tcpdump, tshark, iproute2, coreutils. Takes about 35 seconds.
# A full run (no NAME) then runs samples/make-correlation-samples.sh (~40 s,
# the captures for call-leg correlation) unless SKIP_CORRELATION=1.
#
# Usage: samples/make-samples.sh [NAME ...]   (default: all captures)
#        KEEP_WORK=1 samples/make-samples.sh  keeps the logs in the work dir
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
KCFG=$HERE/kamailio/proxy.cfg

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
PORT=5060
CALLER6_PORT=5061          # IPv6: only ::1 exists, so the roles differ by port
CALLEE6_PORT=5060

ALL_SAMPLES=(basic-call proxy-call busy-486 cancel auth-407 reinvite-hold
             tcp-call register ipv6-call no-answer-timeout three-calls)
# SIP messages each capture must hold: anything else means a retransmission
# or a lost message, and the capture is rejected.
declare -A EXPECT_SIP=(
	[basic-call]=7 [proxy-call]=14 [busy-486]=8 [cancel]=14 [auth-407]=17
	[reinvite-hold]=21 [tcp-call]=14 [register]=6 [ipv6-call]=7
	[no-answer-timeout]=12 [three-calls]=42
)

SCRIPT=make-samples
# shellcheck source=lib.sh
. "$HERE/lib.sh"
kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex auth usrloc registrar
work_dir samples

# ---------------------------------------------------------------- SIPp
# Common SIPp options: bind to the role's own address, no keyboard, bounded.
SIPP_COMMON=(-bind_local -nostdin -timeout 15s -timeout_error)

uas_start() { # name role-label scenario addr port [extra sipp args...]
	local name=$1 role=$2 scen=$3 addr=$4 port=$5
	shift 5
	bg timeout 30 sipp -sf "$SCN/$scen" -i "$addr" -p "$port" "${SIPP_COMMON[@]}" \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	UAS_PID=$BG_LAST
	local proto=udp hostport="$addr:$port"
	[[ " $* " == *" -t t1 "* ]] && proto=tcp
	[[ $addr == *:* ]] && hostport="[$addr]:$port"
	wait_listen $proto "$hostport"
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
	# in the background + wait, so that a signal interrupts the script at once
	bg timeout 30 sipp "$remote" -sf "$SCN/$scen" -i "$addr" -p "$port" "${SIPP_COMMON[@]}" \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	if ! reap "$BG_LAST"; then
		tail -n 30 "$WORK/$name.$role.out" >&2 || true
		die "$name: SIPp $role failed (see $WORK/$name.$role.msg)"
	fi
}

# tcpdump filters: only our roles, only the SIP port (no RTP/ICMP/other noise)
F4="(host $CALLER or host $PROXY or host $CALLEE) and port $PORT"
F6="ip6 host ::1 and (port $CALLER6_PORT or port $CALLEE6_PORT)"

# cid NAME: deterministic Call-IDs (sipflow-NAME-<n>@<caller ip>)
cid() { echo "-cid_str" "sipflow-$1-%u@%s"; }

# ---------------------------------------------------------------- samples
# A direct call, no proxy.
mk_basic-call() {
	local n=basic-call
	start_capture $n "$F4"
	uas_start $n bob uas-answer.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-call.xml $CALLEE:$PORT $CALLER $PORT -m 1 $(cid $n)
	uas_wait $n bob
	stop_capture
}

# The same call through the stateful, record-routing proxy.
mk_proxy-call() {
	local n=proxy-call
	start_proxy $n
	start_capture $n "$F4"
	uas_start $n bob uas-answer.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-call.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

mk_busy-486() {
	local n=busy-486
	start_proxy $n
	start_capture $n "$F4"
	uas_start $n bob uas-busy.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-busy.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

mk_cancel() {
	local n=cancel
	start_proxy $n
	start_capture $n "$F4"
	uas_start $n bob uas-ring.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-cancel.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

mk_auth-407() {
	local n=auth-407
	start_proxy $n -A WITH_AUTH
	start_capture $n "$F4"
	uas_start $n bob uas-answer.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-auth.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n) -auth_uri bob@$PROXY
	uas_wait $n bob
	stop_capture
	stop_proxy
}

mk_reinvite-hold() {
	local n=reinvite-hold
	start_proxy $n
	start_capture $n "$F4"
	uas_start $n bob uas-hold.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-hold.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

mk_tcp-call() {
	local n=tcp-call
	start_proxy $n
	start_capture $n "$F4"
	uas_start $n bob uas-answer.xml $CALLEE $PORT -m 1 -t t1
	uac_run $n alice uac-call.xml $PROXY:$PORT $CALLER $PORT -m 1 -t t1 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

mk_register() {
	local n=register
	start_proxy $n -A WITH_REGISTRAR
	start_capture $n "$F4"
	uac_run $n alice-register uac-register.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n) -auth_uri $PROXY
	sleep 0.5
	uac_run $n alice-options uac-options.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid options)
	stop_capture
	stop_proxy
}

mk_ipv6-call() {
	local n=ipv6-call
	check_free "[::1]:$CALLEE6_PORT" "[::1]:$CALLER6_PORT"
	start_capture $n "$F6"
	uas_start $n bob uas-answer.xml ::1 $CALLEE6_PORT -m 1
	uac_run $n alice uac-call.xml "[::1]:$CALLEE6_PORT" ::1 $CALLER6_PORT -m 1 -mp 6010 $(cid $n)
	uas_wait $n bob
	stop_capture
}

mk_no-answer-timeout() {
	local n=no-answer-timeout
	start_proxy $n -A WITH_SHORT_FR
	start_capture $n "$F4"
	uas_start $n bob uas-ring.xml $CALLEE $PORT -m 1
	uac_run $n alice uac-noanswer.xml $PROXY:$PORT $CALLER $PORT -m 1 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

# Three overlapping calls through the proxy (a new one every 300 ms,
# each lasting ~1.5 s), to exercise call separation. Events of different
# calls are at least ~100 ms apart, so their order is stable.
mk_three-calls() {
	local n=three-calls
	start_proxy $n
	start_capture $n "$F4"
	uas_start $n bob uas-answer.xml $CALLEE $PORT -m 3
	uac_run $n alice uac-call.xml $PROXY:$PORT $CALLER $PORT -m 3 -r 1 -rp 300 -l 3 $(cid $n)
	uas_wait $n bob
	stop_capture
	stop_proxy
}

# ---------------------------------------------------------------- main
select_samples "$@"

check_free "$CALLER:$PORT" "$PROXY:$PORT" "$CALLEE:$PORT"

start=$SECONDS
for s in "${SAMPLES[@]}"; do
	log "$s ..."
	"mk_$s"
	check_sip_only "$s" "$WORK/$s.pcap"
	nsip=$(tshark -r "$WORK/$s.pcap" -Y sip 2>/dev/null | wc -l)
	[[ $nsip -eq ${EXPECT_SIP[$s]} ]] ||
		die "$s: $nsip SIP messages captured, expected ${EXPECT_SIP[$s]} (see $WORK)"
	install_file "$WORK/$s.pcap" "$HERE/$s.pcap"
	log "$s: $nsip SIP messages -> samples/$s.pcap"
done
# The captures for call-leg correlation (legs with different Call-IDs, with
# ground truth files) have a script of their own, ~40 s; only on a full run.
if [[ $# -eq 0 && -z ${SKIP_CORRELATION:-} ]]; then
	log "correlation captures: samples/make-correlation-samples.sh"
	"$HERE/make-correlation-samples.sh"
fi
log "done in $((SECONDS - start)) s"
