#!/usr/bin/env bash
# Regenerate the FAULTY sample captures of sipflow (samples/faulty-*.pcap):
# small traces that each break exactly one rule of `sipflow check`, next to
# samples/faulty-<name>.expected.json (the rule ids the trace must trigger).
#
#   faulty-no-ack             200 OK to INVITE never ACKed (bob retransmits
#                             it twice, gives up after 3 s and sends BYE)
#   faulty-bye-481            call set up, BYE answered 481
#   faulty-invite-timeout     INVITE never answered, retransmitted per
#                             timer A until timer B (32 s)      (~34 s)
#   faulty-cseq-backwards     INVITE CSeq 5 ... BYE CSeq 3 in the same dialog
#   faulty-no-max-forwards    INVITE without Max-Forwards
#   faulty-content-length     INVITE "Content-Length: 300", shorter SDP body
#
# As for samples/make-samples.sh, all traffic is real SIP software on the
# loopback interface only, recorded by tcpdump:
#   caller  "alice"  SIPp       127.0.0.10:5060
#   proxy            Kamailio   127.0.0.20:5060  (only faulty-invite-timeout:
#                                                 answers one OPTIONS ping)
#   callee  "bob"    SIPp       127.0.0.30:5060
# The faults come from the content of the SIPp scenarios
# samples/scenarios/faulty-*.xml (plus uas-answer.xml / uac-options.xml).
# See samples/README.md, "Faulty captures".
#
# Needs root (or CAP_NET_RAW for tcpdump) and the Debian packages sip-tester,
# kamailio, tcpdump, tshark, iproute2, coreutils. Takes about 55 s in all:
# ~34 s for faulty-invite-timeout, ~20 s for the others together.
#
# Usage: samples/make-faulty-samples.sh [NAME ...]   (default: all; NAME
#        with or without the "faulty-" prefix)
#        KEEP_WORK=1 samples/make-faulty-samples.sh  keeps the logs
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
KCFG=$HERE/kamailio/proxy.cfg

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
PORT=5060

ALL_SAMPLES=(faulty-no-ack faulty-bye-481 faulty-cseq-backwards
             faulty-no-max-forwards faulty-content-length faulty-invite-timeout)
# The exact sequence of SIP messages each capture must hold ("method CSeq" or
# "status CSeq"), and how many of them Wireshark marks as resent. Anything
# else (a lost message, one retransmission more or less, another order)
# means the capture is rejected.
declare -A EXPECT_SEQ=(
	[faulty-no-ack]="INVITE/1 100/1 180/1 200/1 200/1 200/1 BYE/1 200/1"
	[faulty-bye-481]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 481/2"
	[faulty-invite-timeout]="INVITE/1 INVITE/1 INVITE/1 INVITE/1 INVITE/1 INVITE/1 INVITE/1 OPTIONS/1 200/1"
	[faulty-cseq-backwards]="INVITE/5 100/5 180/5 200/5 ACK/5 BYE/3 200/3"
	[faulty-no-max-forwards]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[faulty-content-length]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
)
declare -A EXPECT_RESENT=(
	[faulty-no-ack]=2 [faulty-bye-481]=0 [faulty-invite-timeout]=6
	[faulty-cseq-backwards]=0 [faulty-no-max-forwards]=0 [faulty-content-length]=0
)

SCRIPT=make-faulty-samples
CAP_TIMEOUT=60 PROXY_TIMEOUT=60
# shellcheck source=lib.sh
. "$HERE/lib.sh"
kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex
work_dir faulty

# ---------------------------------------------------------------- SIPp
# Bound every SIPp run: SIPp's own -timeout (the whole run) inside a
# `timeout` wrapper. SIPP_TMO/WRAP_TMO are raised for faulty-invite-timeout.
SIPP_TMO=15
WRAP_TMO=30
sipp_common() { echo -bind_local -nostdin -timeout "${SIPP_TMO}s" -timeout_error; }

uas_start() { # name role-label scenario addr port [extra sipp args...]
	local name=$1 role=$2 scen=$3 addr=$4 port=$5
	shift 5
	# shellcheck disable=SC2046
	bg timeout "$WRAP_TMO" sipp -sf "$SCN/$scen" -i "$addr" -p "$port" $(sipp_common) \
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
	# shellcheck disable=SC2046
	bg timeout "$WRAP_TMO" sipp "$remote" -sf "$SCN/$scen" -i "$addr" -p "$port" $(sipp_common) \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	if ! reap "$BG_LAST"; then
		tail -n 30 "$WORK/$name.$role.out" >&2 || true
		die "$name: SIPp $role failed (see $WORK/$name.$role.msg)"
	fi
}

# only our roles, only the SIP port (no RTP/ICMP/other noise)
F4="(host $CALLER or host $PROXY or host $CALLEE) and port $PORT"

# cid NAME: deterministic Call-IDs (sipflow-NAME-<n>@<caller ip>)
cid() { echo "-cid_str" "sipflow-$1-%u@%s"; }

# ---------------------------------------------------------------- samples
# A direct call alice -> bob with caller scenario $2 and callee scenario $3.
direct_call() { # name uac-scenario uas-scenario
	local n=$1
	start_capture "$n" "$F4"
	uas_start "$n" bob "$3" $CALLEE $PORT -m 1
	uac_run "$n" alice "$2" $CALLEE:$PORT $CALLER $PORT -m 1 $(cid "$n")
	uas_wait "$n" bob
	stop_capture
}

# alice never ACKs bob's 200; bob retransmits it twice (0.5 s, then 1 s
# later), gives up 3 s after the first 200 and hangs up with BYE, which
# alice answers.
mk_faulty-no-ack() {
	direct_call faulty-no-ack faulty-uac-no-ack.xml faulty-uas-no-ack.xml
}

# a normal call; bob answers alice's BYE with 481.
mk_faulty-bye-481() {
	direct_call faulty-bye-481 faulty-uac-bye-481.xml faulty-uas-bye-481.xml
}

# INVITE/ACK with CSeq 5, then BYE with CSeq 3 in the same dialog.
mk_faulty-cseq-backwards() {
	direct_call faulty-cseq-backwards faulty-uac-cseq-backwards.xml uas-answer.xml
}

# the INVITE has no Max-Forwards.
mk_faulty-no-max-forwards() {
	direct_call faulty-no-max-forwards faulty-uac-no-max-forwards.xml uas-answer.xml
}

# the INVITE says Content-Length: 300 with a shorter body.
mk_faulty-content-length() {
	direct_call faulty-content-length faulty-uac-content-length.xml uas-answer.xml
}

# bob never answers; alice retransmits the INVITE per timer A and gives up at
# timer B (32 s). A capture only says how long it ran through its frames, so
# 2 s later alice pings the proxy (OPTIONS -> 200, its own Call-ID): that
# frame shows the capture went on past timer B.
mk_faulty-invite-timeout() {
	local n=faulty-invite-timeout
	local SIPP_TMO=40 WRAP_TMO=45
	start_proxy "$n"
	start_capture "$n" "$F4"
	uas_start "$n" bob faulty-uas-silent.xml $CALLEE $PORT -m 1
	# SIPp gives up an INVITE after 6 sends by default; let timer B decide
	uac_run "$n" alice faulty-uac-invite-timeout.xml $CALLEE:$PORT $CALLER $PORT -m 1 \
		-max_invite_retrans 10 $(cid "$n")
	sleep 2
	SIPP_TMO=5 WRAP_TMO=10 uac_run "$n" alice-ping uac-options.xml $PROXY:$PORT $CALLER $PORT -m 1 \
		$(cid "$n-ping")
	uas_wait "$n" bob
	stop_capture
	stop_proxy
}

# ---------------------------------------------------------------- main
names=()
for s in "$@"; do
	[[ $s == faulty-* ]] || s=faulty-$s
	names+=("$s")
done
select_samples "${names[@]}"

check_free "$CALLER:$PORT" "$PROXY:$PORT" "$CALLEE:$PORT"

start=$SECONDS
for s in "${SAMPLES[@]}"; do
	log "$s ..."
	"mk_$s"
	p=$WORK/$s.pcap
	check_sip_only "$s" "$p"
	seq=$(tshark -r "$p" -Y sip -T fields -E separator=, \
		-e sip.Method -e sip.Status-Code -e sip.CSeq.seq 2>/dev/null |
		sed 's/^,//; s/,,*/\//' | tr '\n' ' ' | sed 's/ $//')
	[[ $seq == "${EXPECT_SEQ[$s]}" ]] ||
		die "$s: SIP messages '$seq', expected '${EXPECT_SEQ[$s]}' (see $WORK)"
	resent=$(tshark -r "$p" -Y 'sip.resend == 1' 2>/dev/null | wc -l)
	[[ $resent -eq ${EXPECT_RESENT[$s]} ]] ||
		die "$s: $resent resent SIP messages, expected ${EXPECT_RESENT[$s]} (see $WORK)"
	install_file "$p" "$HERE/$s.pcap"
	log "$s: $(wc -w <<<"$seq") SIP messages -> samples/$s.pcap"
done
log "done in $((SECONDS - start)) s"
