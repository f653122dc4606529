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
#   media-dtmf             two-way audio, then DTMF from alice both ways:
#                          the digits 1, 5, # as RFC 2833 telephone-events
#                          (RTP payload type 101, offered and answered in the
#                          SDP with a=fmtp:101 0-15) and the digit 7 as SIP
#                          INFO (application/dtmf-relay, Signal=7) -> 200.
#                          The events are sip-tester's dtmf_2833_1.pcap,
#                          dtmf_2833_5.pcap and dtmf_2833_pound.pcap, 0.5 s
#                          apart, joined to g711a.pcap by join-rtp.py into
#                          one stream as a phone sends it: g711a's SSRC
#                          (0xDEE0EE8F), the next sequence numbers, RTP
#                          timestamps on the audio's clock.
#   media-hold-resume      audio from SIPp's rtp_stream (a raw A-law file made
#                          in the work folder from g711a.pcap's payloads), one
#                          SSRC and one sequence per side for the whole call;
#                          after 3 s alice holds (re-INVITE CSeq 2 a=sendonly,
#                          200 a=recvonly) and bob stops sending, after 3 s
#                          more she resumes (re-INVITE CSeq 3 a=sendrecv) and
#                          bob's stream goes on with the next sequence number
#                          after a ~3 s silence; BYE 3 s later (CSeq 4).
#   media-other-port       media-two-way in a network namespace of its own,
#                          where an iptables SNAT rule moves bob's RTP source
#                          port from 6000 (the port of his SDP) to 7000, as a
#                          NAT or SBC does: bob's stream comes from :7000.
#                          (A second rule there, raw OUTPUT -j CT --notrack
#                          for alice's RTP, keeps her packets out of conntrack:
#                          otherwise whichever side sends first owns the one
#                          UDP flow, and either bob's packets become its
#                          un-NATed replies or alice's packets get their
#                          source port remapped to avoid a tuple clash.)
#   media-loss-jitter      media-two-way with impaired audio from alice: the
#                          kernel here has no netem qdisc (tc qdisc ... netem
#                          fails), so the impairment is put into the audio
#                          file SIPp plays. samples/impair-rtp.py writes a
#                          copy of g711a.pcap into the work folder, seeded
#                          (fixed seed 2024): ~3 % of the RTP packets removed
#                          (7 of 236, among them one burst of 4 in a row) and
#                          each capture timestamp moved later by a random
#                          0-25 ms (never decreasing, order kept). SIPp paces
#                          play_pcap_audio by those timestamps, so alice's
#                          stream is really sent with gaps in its sequence
#                          numbers and jitter. bob plays the clean g711a.pcap.
#   kamailio-direct-media  media-two-way through the Kamailio proxy of
#                          make-samples.sh (samples/kamailio/proxy.cfg on
#                          127.0.0.20:5060, record-routing): the SIP goes
#                          alice <-> proxy <-> bob, the RTP directly between
#                          alice and bob (Kamailio relays SIP only).
#
# As for samples/make-samples.sh, all traffic is real SIP software on the
# loopback interface only, recorded by tcpdump (UDP only: no ICMP):
#   caller  "alice"  SIPp  127.0.0.10:5060, media 127.0.0.10:6000
#   callee  "bob"    SIPp  127.0.0.30:5060, media 127.0.0.30:6000
#   (faulty-no-media, second call: alice 127.0.0.10:5062 media :6010,
#                                  bob   127.0.0.30:5062 media :6010)
#   proxy            Kamailio 127.0.0.20:5060 (kamailio-direct-media only)
# media-other-port runs in a network namespace sipflow-media-<pid> that the
# script creates (with its own lo) and deletes again.
# The faulty-* captures sit next to faulty-<name>.expected.json (the rule ids
# `sipflow check` must report). See samples/README.md, "Media captures".
#
# Needs root (or CAP_NET_RAW for tcpdump and SIPp's pcap play; CAP_NET_ADMIN
# for media-other-port's namespace) and the Debian packages sip-tester,
# tcpdump, tshark, coreutils, python3, and for single samples kamailio
# (kamailio-direct-media), iproute2 and iptables (media-other-port).
# About 10 s per sample.
#
# Usage: samples/make-media-samples.sh [NAME ...]   (default: all)
#        KEEP_WORK=1 samples/make-media-samples.sh  keeps the logs
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
AUDIO=/usr/share/sip-tester/g711a.pcap
DTMF_DIR=/usr/share/sip-tester
KCFG=$HERE/kamailio/proxy.cfg

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
PORT=5060
PORT2=5062

ALL_SAMPLES=(media-two-way faulty-one-way-audio faulty-no-media
             media-dtmf media-hold-resume media-other-port media-loss-jitter
             kamailio-direct-media)
# The SIP messages each capture must hold (as make-faulty-samples.sh checks
# them) and the RTP streams (source -> destination) tshark must find.
declare -A EXPECT_SEQ=(
	[media-two-way]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[faulty-one-way-audio]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[faulty-no-media]="14"
	[media-dtmf]="INVITE/1 100/1 180/1 200/1 ACK/1 INFO/2 200/2 BYE/3 200/3"
	[media-hold-resume]="INVITE/1 100/1 180/1 200/1 ACK/1 INVITE/2 200/2 ACK/2 INVITE/3 200/3 ACK/3 BYE/4 200/4"
	[media-other-port]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[media-loss-jitter]="INVITE/1 100/1 180/1 200/1 ACK/1 BYE/2 200/2"
	[kamailio-direct-media]="INVITE/1 100/1 INVITE/1 100/1 180/1 180/1 200/1 200/1 ACK/1 ACK/1 BYE/2 BYE/2 200/2 200/2"
)
declare -A EXPECT_RTP=(
	[media-two-way]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
	[faulty-one-way-audio]="127.0.0.10:6000->127.0.0.30:6000"
	[faulty-no-media]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
	[media-dtmf]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
	[media-hold-resume]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
	[media-other-port]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:7000->127.0.0.10:6000"
	[media-loss-jitter]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
	[kamailio-direct-media]="127.0.0.10:6000->127.0.0.30:6000 127.0.0.30:6000->127.0.0.10:6000"
)

SCRIPT=make-media-samples
CAP_TIMEOUT=60
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need sipp sip-tester
need python3 python3
[[ -r $AUDIO ]] || die "$AUDIO missing (Debian package sip-tester)"
work_dir media

# Every SIPp run bounded twice: its own -timeout inside a `timeout` wrapper.
sipp_args() { # addr port media-port
	echo -i "$1" -p "$2" -mi "$1" -mp "$3" -bind_local -nostdin -timeout 20s -timeout_error -m 1
}

# SIPp runs in $WORK (scenarios name the audio files made there relative to
# it) and in $NETNS if set.
uas_start() { # name role scenario addr port media-port: bob in the background, into UAS_PIDS
	in_netns
	# shellcheck disable=SC2046
	bg_in "$WORK" timeout 30 "${IN_NETNS[@]}" sipp -sf "$SCN/$3" $(sipp_args "$4" "$5" "$6") \
		-trace_msg -message_file "$WORK/$1.$2.msg" >"$WORK/$1.$2.out" 2>&1
	UAS_PIDS+=("$BG_LAST")
	wait_listen udp "$4:$5"
}

uac_start() { # name role scenario addr port media-port remote: alice in the background, into UAC_PIDS
	in_netns
	# shellcheck disable=SC2046
	bg_in "$WORK" timeout 30 "${IN_NETNS[@]}" sipp "$7" -sf "$SCN/$3" $(sipp_args "$4" "$5" "$6") \
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

call() { # name uac-scenario uas-scenario [port media-port role-suffix [alice's remote]]
	local p=${4:-$PORT} m=${5:-6000} r=${6:-}
	uas_start "$1" "bob$r" "$3" $CALLEE "$p" "$m"
	uac_start "$1" "alice$r" "$2" $CALLER "$p" "$m" "${7:-$CALLEE:$p}"
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

# RFC 2833 digits 1, 5, # (sip-tester's dtmf_2833_*.pcap) in the audio's
# stream after the audio (join-rtp.py makes $WORK/g711a-dtmf.pcap, which the
# scenario, run in $WORK, plays), then the digit 7 as SIP INFO.
mk_media-dtmf() {
	local d events=()
	for d in 1 5 pound; do
		[[ -r $DTMF_DIR/dtmf_2833_$d.pcap ]] ||
			die "$DTMF_DIR/dtmf_2833_$d.pcap missing (Debian package sip-tester)"
		events+=("$DTMF_DIR/dtmf_2833_$d.pcap")
	done
	python3 "$HERE/join-rtp.py" "$AUDIO" "${events[@]}" -o "$WORK/g711a-dtmf.pcap" ||
		die "media-dtmf: join-rtp.py failed"
	start_capture media-dtmf "$FILTER"
	call media-dtmf media-uac-dtmf.xml media-uas-dtmf.xml
	wait_all media-dtmf
	stop_capture
}

# rtp_stream plays raw, headerless G.711: g711a.pcap's RTP payloads, in $WORK
# where the scenarios (run there) find it as g711a.alaw.
mk_media-hold-resume() {
	tshark -r "$AUDIO" -o rtp.heuristic_rtp:TRUE -T fields -e rtp.payload 2>/dev/null |
		python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().replace(":", "").replace("\n", "")))' \
			>"$WORK/g711a.alaw"
	[[ -s $WORK/g711a.alaw ]] || die "media-hold-resume: no RTP payload read from $AUDIO"
	start_capture media-hold-resume "$FILTER"
	call media-hold-resume media-uac-hold-resume.xml media-uas-hold-resume.xml
	wait_all media-hold-resume
	stop_capture
}

# In a network namespace of its own: bob's RTP leaves from port 7000 while
# his SDP says 6000. Alice's RTP is kept out of conntrack (see the header).
mk_media-other-port() {
	need ip iproute2
	need iptables iptables
	NETNS=sipflow-media-$$
	ip netns add "$NETNS" || die "cannot create network namespace $NETNS"
	in_netns
	"${IN_NETNS[@]}" ip link set lo up
	"${IN_NETNS[@]}" iptables -t raw -A OUTPUT -o lo -p udp -s $CALLER --sport 6000 -j CT --notrack
	"${IN_NETNS[@]}" iptables -t nat -A POSTROUTING -o lo -p udp -s $CALLEE --sport 6000 \
		-j SNAT --to-source $CALLEE:7000
	start_capture media-other-port "$FILTER"
	call media-other-port media-uac-play.xml media-uas-play.xml
	wait_all media-other-port
	stop_capture
	"${IN_NETNS[@]}" iptables -t nat -L POSTROUTING -n -v >"$WORK/media-other-port.iptables" 2>&1 || true
	ip netns delete "$NETNS"
	NETNS=""
	local sdp
	sdp=$(tshark -r "$WORK/media-other-port.pcap" -Y 'sip.Status-Code == 200 and sdp' \
		-T fields -e ip.src -e sdp.media.port 2>/dev/null | tr '\t\n' ': ' | sed 's/ $//')
	[[ $sdp == "$CALLEE:6000" ]] || die "media-other-port: bob's SDP answer '$sdp', expected $CALLEE:6000"
}

on_cleanup() {
	if [[ -n $NETNS ]]; then
		ip netns delete "$NETNS" 2>/dev/null || true
	fi
}

# alice plays a copy of g711a.pcap with loss and jitter (samples/impair-rtp.py).
mk_media-loss-jitter() {
	python3 "$HERE/impair-rtp.py" --seed 2024 --loss 3 --burst 4 --max-delay-ms 25 \
		"$AUDIO" "$WORK/g711a-impaired.pcap" 2>"$WORK/media-loss-jitter.impair.log" ||
		die "impair-rtp.py failed: $(cat "$WORK/media-loss-jitter.impair.log")"
	log "$(cat "$WORK/media-loss-jitter.impair.log")"
	start_capture media-loss-jitter "$FILTER"
	call media-loss-jitter media-uac-impaired.xml media-uas-play.xml
	wait_all media-loss-jitter
	stop_capture
}

# Through Kamailio (samples/kamailio/proxy.cfg): SIP via the proxy, RTP direct.
mk_kamailio-direct-media() {
	kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex
	start_proxy kamailio-direct-media
	start_capture kamailio-direct-media "udp and (host $CALLER or host $PROXY or host $CALLEE)"
	call kamailio-direct-media media-uac-play.xml media-uas-play.xml "" "" "" "$PROXY:$PORT"
	wait_all kamailio-direct-media
	stop_capture
	stop_proxy
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
	streams=$(tshark -r "$p" -o rtp.heuristic_rtp:TRUE -q -z rtp,streams 2>/dev/null)
	printf '%s\n' "$streams" >&2
	log "$s: SIP $seq"
	rtp=$(awk '$3 ~ /^127\./ && $5 ~ /^127\./ {print $3 ":" $4 "->" $5 ":" $6}' <<<"$streams" |
		sort | tr '\n' ' ' | sed 's/ $//')
	want=$(tr ' ' '\n' <<<"${EXPECT_RTP[$s]}" | sort | tr '\n' ' ' | sed 's/ $//')
	[[ $rtp == "$want" ]] || die "$s: RTP streams '$rtp', expected '$want' (see $WORK)"
	install_file "$p" "$HERE/$s.pcap"
	log "$s: $(wc -w <<<"$seq") SIP messages, RTP $rtp -> samples/$s.pcap"
done
log "done in $((SECONDS - start)) s"
