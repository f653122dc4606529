#!/usr/bin/env bash
# Regenerate the MEDIA sample captures of sipflow: SIP calls with the RTP that
# SIPp plays (play_pcap_audio of sip-tester's g711a.pcap, G.711 A-law, 7.05 s).
#
#   media-two-way          alice calls bob, both send audio, alice hangs up
#   faulty-one-way-audio   the same, bob sends no RTP      (rule one-way-audio)
#   faulty-no-media        two calls at once: the first with two-way audio,
#                          the second answered with no RTP at all (rule
#                          no-media: the capture holds RTP, none of it the
#                          second call's)
#
# As for samples/make-samples.sh, all traffic is real SIP software on the
# loopback interface only, recorded by tcpdump (UDP only: no ICMP):
#   caller  "alice"  SIPp  127.0.0.10:5060, media 127.0.0.10:6000
#   callee  "bob"    SIPp  127.0.0.30:5060, media 127.0.0.30:6000
#   (faulty-no-media, second call: alice 127.0.0.10:5062 media :6010,
#                                  bob   127.0.0.30:5062 media :6010)
# The faulty-* captures sit next to faulty-<name>.expected.json (the rule ids
# `sipflow check` must report). See samples/README.md, "Media captures".
#
# Needs root (or CAP_NET_RAW for tcpdump and SIPp's pcap play) and the Debian
# packages sip-tester, tcpdump, tshark, coreutils. About 10 s per sample.
#
# Usage: samples/make-media-samples.sh [NAME ...]   (default: all)
#        KEEP_WORK=1 samples/make-media-samples.sh  keeps the logs
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
AUDIO=/usr/share/sip-tester/g711a.pcap

CALLER=127.0.0.10
CALLEE=127.0.0.30
PORT=5060
PORT2=5062

ALL_SAMPLES=(media-two-way faulty-one-way-audio faulty-no-media)
# The SIP messages each capture must hold (as make-faulty-samples.sh checks
# them) and the RTP streams (source -> destination) tshark must find.
declare -A EXPECT_SEQ=(
	[media-two-way]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[faulty-one-way-audio]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[faulty-no-media]="14"
)
declare -A EXPECT_RTP=(
	[media-two-way]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
	[faulty-one-way-audio]="127.0.0.10:6000->127.0.0.30:6000"
	[faulty-no-media]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
)

SCRIPT=make-media-samples
CAP_TIMEOUT=60
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need sipp sip-tester
[[ -r $AUDIO ]] || die "$AUDIO missing (Debian package sip-tester)"
work_dir media

# Every SIPp run bounded twice: its own -timeout inside a `timeout` wrapper.
sipp_args() { # addr port media-port
	echo -i "$1" -p "$2" -mi "$1" -mp "$3" -bind_local -nostdin -timeout 20s -timeout_error -m 1
}

uas_start() { # name role scenario addr port media-port: bob in the background, into UAS_PIDS
	# shellcheck disable=SC2046
	bg timeout 30 sipp -sf "$SCN/$3" $(sipp_args "$4" "$5" "$6") \
		-trace_msg -message_file "$WORK/$1.$2.msg" >"$WORK/$1.$2.out" 2>&1
	UAS_PIDS+=("$BG_LAST")
	wait_listen udp "$4:$5"
}

uac_start() { # name role scenario addr port media-port remote: alice in the background, into UAC_PIDS
	# shellcheck disable=SC2046
	bg timeout 30 sipp "$7" -sf "$SCN/$3" $(sipp_args "$4" "$5" "$6") \
		-cid_str "sipflow-$1-$2-%u@%s" \
		-trace_msg -message_file "$WORK/$1.$2.msg" >"$WORK/$1.$2.out" 2>&1
	UAC_PIDS+=("$BG_LAST")
}

wait_all() { # name: every SIPp started for it must succeed
	local pid
	for pid in "${UAC_PIDS[@]}" "${UAS_PIDS[@]}"; do
		reap "$pid" || die "$1: a SIPp run failed (see $WORK/$1.*.out)"
	done
	UAC_PIDS=() UAS_PIDS=()
}
UAC_PIDS=() UAS_PIDS=()

FILTER="udp and host $CALLER and host $CALLEE"

call() { # name uac-scenario uas-scenario [port media-port role-suffix]
	local p=${4:-$PORT} m=${5:-6000} r=${6:-}
	uas_start "$1" "bob$r" "$3" $CALLEE "$p" "$m"
	uac_start "$1" "alice$r" "$2" $CALLER "$p" "$m" "$CALLEE:$p"
}

mk_media-two-way() {
	start_capture media-two-way "$FILTER"
	call media-two-way media-uac-play.xml media-uas-play.xml
	wait_all media-two-way
	stop_capture
}

mk_faulty-one-way-audio() {
	start_capture faulty-one-way-audio "$FILTER"
	call faulty-one-way-audio media-uac-play.xml media-uas-silent.xml
	wait_all faulty-one-way-audio
	stop_capture
}

mk_faulty-no-media() {
	start_capture faulty-no-media "$FILTER"
	call faulty-no-media media-uac-play.xml media-uas-play.xml
	sleep 0.5
	call faulty-no-media media-uac-silent.xml media-uas-silent.xml $PORT2 6010 -2
	wait_all faulty-no-media
	stop_capture
}

select_samples "$@"
check_free "$CALLER:$PORT" "$CALLEE:$PORT" "$CALLER:$PORT2" "$CALLEE:$PORT2"

start=$SECONDS
for s in "${SAMPLES[@]}"; do
	log "$s ..."
	"mk_$s"
	p=$WORK/$s.pcap
	seq=$(tshark -r "$p" -Y sip -T fields -E separator=, \
		-e sip.Method -e sip.Status-Code -e sip.CSeq.seq 2>/dev/null |
		sed 's/^,//; s/,,*/\//' | tr '\n' ' ' | sed 's/ $//')
	if [[ ${EXPECT_SEQ[$s]} =~ ^[0-9]+$ ]]; then # concurrent calls: the count only
		[[ $(wc -w <<<"$seq") -eq ${EXPECT_SEQ[$s]} ]] ||
			die "$s: SIP messages '$seq', expected ${EXPECT_SEQ[$s]} (see $WORK)"
	else
		[[ $seq == "${EXPECT_SEQ[$s]}" ]] ||
			die "$s: SIP messages '$seq', expected '${EXPECT_SEQ[$s]}' (see $WORK)"
	fi
	rtp=$(tshark -r "$p" -o rtp.heuristic_rtp:TRUE -q -z rtp,streams 2>/dev/null |
		awk '$3 ~ /^127\./ && $5 ~ /^127\./ {print $3 ":" $4 "->" $5 ":" $6}' | sort | tr '\n' ' ' | sed 's/ $//')
	want=$(tr ' ' '\n' <<<"${EXPECT_RTP[$s]}" | sort | tr '\n' ' ' | sed 's/ $//')
	[[ $rtp == "$want" ]] || die "$s: RTP streams '$rtp', expected '$want' (see $WORK)"
	install_file "$p" "$HERE/$s.pcap"
	log "$s: $(wc -w <<<"$seq") SIP messages, RTP $rtp -> samples/$s.pcap"
done
log "done in $((SECONDS - start)) s"
