#!/usr/bin/env bash
# Regenerate the HEP sample captures of sipflow (samples/hep-*.pcap): SIP
# mirrored as HEP3 (HOMER encapsulation) by Kamailio's siptrace module, over
# UDP and over TCP, each with a plain capture of the same run's SIP.
#
#   hep-udp.pcap          only the HEP3 datagrams, UDP to the collector 127.0.0.70:9060
#   hep-udp-direct.pcap   the SIP of that same run on the SIP port (the reference)
#   hep-tcp.pcap          only the HEP3-over-TCP connection to the collector 127.0.0.70:9061
#   hep-tcp-direct.pcap   the SIP of that same run on the SIP port (the reference)
#
# siptrace has one collector address, so UDP and TCP take one run each, and
# each run has its own reference capture. In each run two calls go through the
# proxy: an answered call with SDP (uac-call.xml / uas-answer.xml) and a call
# rejected 486 (uac-busy.xml / uas-busy.xml).
#
# Real software only, on the loopback interface only:
#   caller     "alice"  SIPp               127.0.0.10:5060
#   proxy               Kamailio+siptrace  127.0.0.20:5060 (SIP over UDP; a TCP
#                                          listener only to send HEP over TCP)
#   callee     "bob"    SIPp               127.0.0.30:5060
#   collector           a Python sink      127.0.0.70 UDP 9060 / TCP 9061
#                       started here, reads and discards, bounded in time
# recorded with two tcpdumps on "lo": one keeps only the collector port (so any
# SIP in it can only come from decoding HEP), the other only the SIP port.
# Proxy configuration: samples/kamailio/hep.cfg (-A WITH_HEP_TCP for TCP).
# See samples/README.md, "HEP captures".
#
# Needs root (or CAP_NET_RAW for tcpdump) and the Debian packages sip-tester,
# kamailio, tcpdump, tshark, iproute2, coreutils, python3. Takes about 10 s.
#
# Usage: samples/make-hep-samples.sh [NAME ...]   (default: hep-udp hep-tcp)
#        KEEP_WORK=1 samples/make-hep-samples.sh  keeps the logs in the work dir
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCN=$HERE/scenarios
KCFG=$HERE/kamailio/hep.cfg

CALLER=127.0.0.10
PROXY=127.0.0.20
CALLEE=127.0.0.30
PORT=5060
COLLECTOR=127.0.0.70
HEP_UDP_PORT=9060
HEP_TCP_PORT=9061

ALL_SAMPLES=(hep-udp hep-tcp)
# SIP messages in each run: the answered call (14 on two hops) and the 486
# (8). The proxy sees every one of them, so it mirrors exactly as many.
EXPECT_SIP=22
SINK_SECONDS=60          # the collector sink ends on its own after this

SCRIPT=make-hep-samples
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need python3 python3
kamailio_modules tm tmx sl rr pv maxfwd textops siputils xlog kex corex siptrace
work_dir hep

# ---------------------------------------------------------------- SIPp
SIPP_COMMON=(-bind_local -nostdin -timeout 15s -timeout_error)

uas_start() { # name role-label scenario [extra sipp args...]
	local name=$1 role=$2 scen=$3
	shift 3
	bg timeout 30 sipp -sf "$SCN/$scen" -i $CALLEE -p $PORT "${SIPP_COMMON[@]}" \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	UAS_PID=$BG_LAST
	wait_listen udp "$CALLEE:$PORT"
}

uas_wait() { # name role
	if ! reap "$UAS_PID"; then
		tail -n 30 "$WORK/$1.$2.out" >&2 || true
		die "$1: SIPp $2 failed (see $WORK/$1.$2.msg)"
	fi
}

uac_run() { # name role-label scenario [extra sipp args...]: alice calls bob through the proxy
	local name=$1 role=$2 scen=$3
	shift 3
	bg timeout 30 sipp "$PROXY:$PORT" -sf "$SCN/$scen" -i $CALLER -p $PORT "${SIPP_COMMON[@]}" \
		-trace_msg -message_file "$WORK/$name.$role.msg" "$@" \
		>"$WORK/$name.$role.out" 2>&1
	if ! reap "$BG_LAST"; then
		tail -n 30 "$WORK/$name.$role.out" >&2 || true
		die "$name: SIPp $role failed (see $WORK/$name.$role.msg)"
	fi
}

# ---------------------------------------------------------------- collector
# A HEP collector that reads and discards: UDP datagrams, or every TCP
# connection until its peer closes it. It ends on its own after SINK_SECONDS
# (or on SIGTERM) and prints how many octets it got.
SINK_PY='
import select, signal, socket, sys, time
proto, addr, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
deadline = time.monotonic() + secs
tcp = proto == "tcp"
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
if tcp:
    s.listen(4)
socks, octets, conns = [s], 0, 0
try:
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(socks, [], [], left)
        for x in ready:
            if tcp and x is s:
                c, _ = s.accept()
                socks.append(c)
                conns += 1
                continue
            data = x.recv(65536)
            if tcp and not data:
                x.close()
                socks.remove(x)
            octets += len(data)
finally:
    print(f"sink {proto} {addr}:{port}: {octets} octets, {conns} connections", flush=True)
'

start_sink() { # name proto port
	local name=$1 proto=$2 port=$3
	check_free "$COLLECTOR:$port"
	bg timeout $((SINK_SECONDS + 5)) python3 -c "$SINK_PY" "$proto" $COLLECTOR "$port" $SINK_SECONDS \
		>"$WORK/$name.sink.log" 2>&1
	SINK_PID=$BG_LAST
	wait_listen "$proto" "$COLLECTOR:$port"
}

stop_sink() {
	kill "$SINK_PID" 2>/dev/null || true
	reap "$SINK_PID" || true
	SINK_PID=""
}

# ---------------------------------------------------------------- checks
# Compares the HEP capture with the reference capture of the same run: every
# HEP3 message carries one SIP message, and the (source, destination, start
# line) of the HEP3 messages are exactly those of the SIP port's messages.
# Input: the reference as "src sport dst dport start-line" lines, then a line
# "--", then the HEP capture's payloads in hex (one UDP datagram or one TCP
# segment a line; TCP segments are joined into the stream).
CHECK_PY='
import collections, ipaddress, struct, sys
proto, expect = sys.argv[1], int(sys.argv[2])
lines = sys.stdin.read().split("\n")
cut = lines.index("--")
direct = collections.Counter(tuple(l.split("\t")) for l in lines[:cut] if l)
payloads = [bytes.fromhex(l.replace(":", "")) for l in lines[cut + 1:] if l]
chunks = [b"".join(payloads)] if proto == "tcp" else payloads
hep = collections.Counter()
n = 0
for buf in chunks:
    p = 0
    while p < len(buf):
        if buf[p:p + 4] != b"HEP3":
            sys.exit(f"not a HEP3 header at octet {p}: {buf[p:p + 8]!r}")
        total = struct.unpack_from("!H", buf, p + 4)[0]
        if p + total > len(buf) or (proto == "udp" and total != len(buf)):
            sys.exit(f"HEP3 length {total} does not fit the {len(buf)} octets")
        f = {}
        q = p + 6
        while q < p + total:
            vendor, ctype, clen = struct.unpack_from("!HHH", buf, q)
            f[(vendor, ctype)] = buf[q + 6:q + clen]
            q += clen
        src = str(ipaddress.IPv4Address(f[(0, 3)]))
        dst = str(ipaddress.IPv4Address(f[(0, 4)]))
        sport, dport = (struct.unpack("!H", f[(0, k)])[0] for k in (7, 8))
        line = f[(0, 15)].split(b"\r\n", 1)[0].decode()
        hep[(src, str(sport), dst, str(dport), line)] += 1
        n += 1
        p += total
if n != expect:
    sys.exit(f"{n} HEP3 messages, expected {expect}")
if hep != direct:
    sys.exit(f"HEP and SIP port differ: only in HEP {hep - direct}, only on the SIP port {direct - hep}")
print(f"{n} HEP3 messages, the same as on the SIP port")
'

check_run() { # name proto: reject the run unless both captures hold what they must
	local n=$1 proto=$2 hep=$WORK/$1.pcap direct=$WORK/$1-direct.pcap bad nsip port
	port=$HEP_UDP_PORT
	[[ $proto == tcp ]] && port=$HEP_TCP_PORT
	[[ -s $hep && -s $direct ]] || die "$n: empty capture"
	bad=$(tshark -r "$direct" -Y 'icmp or icmpv6 or (udp and not sip) or tcp' 2>/dev/null | wc -l)
	[[ $bad -eq 0 ]] || die "$n: $bad unexpected non-SIP packets on the SIP port"
	nsip=$(tshark -r "$direct" -Y sip 2>/dev/null | wc -l)
	[[ $nsip -eq $EXPECT_SIP ]] ||
		die "$n: $nsip SIP messages on the SIP port, expected $EXPECT_SIP (see $WORK)"
	# only HEP to the collector; the collector sends nothing back (TCP: bare ACKs and FIN)
	bad=$(tshark -r "$hep" -Y "icmp or not $proto.port==$port or $proto.srcport==$port and $proto.payload" \
		2>/dev/null | wc -l)
	[[ $bad -eq 0 ]] || die "$n: $bad packets in the HEP capture that are not HEP to the collector"
	if [[ $proto == tcp ]]; then
		bad=$(tshark -r "$hep" -Y 'tcp.analysis.retransmission or tcp.analysis.lost_segment or tcp.analysis.out_of_order' \
			2>/dev/null | wc -l)
		[[ $bad -eq 0 ]] || die "$n: $bad retransmitted, lost or reordered TCP segments"
	fi
	{
		tshark -r "$direct" -Y sip -T fields -E occurrence=f -e ip.src -e udp.srcport -e ip.dst \
			-e udp.dstport -e sip.Request-Line -e sip.Status-Line 2>/dev/null |
			awk -F'\t' -v OFS='\t' '{ print $1, $2, $3, $4, ($5 != "" ? $5 : $6) }'
		echo --
		tshark -r "$hep" -Y "$proto.dstport==$port and $proto.payload" -T fields -e "$proto.payload" 2>/dev/null
	} | python3 -c "$CHECK_PY" "$proto" "$EXPECT_SIP" >"$WORK/$n.check.log" 2>&1 ||
		die "$n: $(cat "$WORK/$n.check.log")"
	log "$n: $(cat "$WORK/$n.check.log")"
	# everything Kamailio sent reached the collector
	local sent got
	sent=$(tshark -r "$hep" -Y "$proto.dstport==$port and $proto.payload" -T fields -e "$proto.payload" 2>/dev/null |
		tr -d ':\n' | wc -c)
	sent=$((sent / 2))
	got=$(sed -n 's/.*: \([0-9]*\) octets.*/\1/p' "$WORK/$n.sink.log")
	[[ $sent == "$got" ]] || die "$n: the capture has $sent HEP octets, the collector got ${got:-none}"
}

# ---------------------------------------------------------------- samples
# tcpdump filters: the SIP port of our three roles (HEP copies leave the proxy
# from its UDP port 5060 too: they are kept out), and the collector port alone.
F_SIP="udp and (host $CALLER or host $PROXY or host $CALLEE) and port $PORT and not host $COLLECTOR"

mk_run() { # name proto port [kamailio -A ...]
	local n=$1 proto=$2 port=$3 hep_cap sip_cap
	shift 3
	check_free "$CALLER:$PORT" "$CALLEE:$PORT"
	start_sink "$n" "$proto" "$port"
	start_proxy "$n" "$@"
	start_capture "$n" "$proto and host $COLLECTOR and port $port"
	hep_cap=$CAP_PID
	start_capture "$n-direct" "$F_SIP"
	sip_cap=$CAP_PID
	# an answered call with SDP, then a 486
	uas_start "$n" bob-call uas-answer.xml -m 1
	uac_run "$n" alice-call uac-call.xml -m 1 -cid_str "sipflow-$n-call-%u@%s"
	uas_wait "$n" bob-call
	uas_start "$n" bob-busy uas-busy.xml -m 1
	uac_run "$n" alice-busy uac-busy.xml -m 1 -cid_str "sipflow-$n-busy-%u@%s"
	uas_wait "$n" bob-busy
	sleep 0.3
	stop_proxy      # closes its HEP connection (TCP): FIN
	sleep 0.3
	stop_sink
	CAP_PID=$sip_cap
	stop_capture
	CAP_PID=$hep_cap
	stop_capture
}

mk_hep-udp() { mk_run hep-udp udp $HEP_UDP_PORT; }
mk_hep-tcp() { mk_run hep-tcp tcp $HEP_TCP_PORT -A WITH_HEP_TCP; }

# ---------------------------------------------------------------- main
select_samples "$@"

check_free "$CALLER:$PORT" "$PROXY:$PORT" "$CALLEE:$PORT"

start=$SECONDS
for s in "${SAMPLES[@]}"; do
	log "$s ..."
	"mk_$s"
	check_run "$s" "${s#hep-}"
	for f in "$s" "$s-direct"; do
		install_file "$WORK/$f.pcap" "$HERE/$f.pcap"
	done
	log "$s: $(stat -c %s "$HERE/$s.pcap") bytes -> samples/$s.pcap," \
		"$(stat -c %s "$HERE/$s-direct.pcap") bytes -> samples/$s-direct.pcap"
done
log "done in $((SECONDS - start)) s"
