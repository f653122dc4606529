# shellcheck shell=bash
# Shared by make-samples.sh, make-correlation-samples.sh, make-faulty-samples.sh,
# make-hep-samples.sh, make-wire-samples.sh and make-rotated-samples.sh:
# tool checks, Kamailio modules, background processes we start (and only those, by PID),
# tcpdump and Kamailio on loopback. Source it after setting SCRIPT (the log prefix).
# Every process is bounded (timeout) and stopped by the EXIT trap.
# NETNS (default empty): run tcpdump (start_capture*) and ss (wait_listen) in
# that network namespace, and CAP_IF (default lo) is tcpdump's interface there.
# A script may define on_cleanup(): the EXIT trap calls it once every process
# we started has ended (e.g. to delete the network namespaces it made).

log() { printf '%s\n' "$SCRIPT: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need() { # command debian-package
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' not found; install the Debian package '$2' (apt-get install $2)"
}
need sipp sip-tester
need kamailio kamailio
need tcpdump tcpdump
need tshark tshark
need ss iproute2
need timeout coreutils

kamailio_modules() { # module ...: find the module directory (Debian: /usr/lib/<multiarch>/kamailio/modules) into KMOD
	local tm m
	KMOD=${KAMAILIO_MODULES:-}
	if [[ -z $KMOD ]]; then
		tm=$(dpkg -L kamailio 2>/dev/null | grep -m1 '/modules/tm\.so$' || true)
		[[ -n $tm ]] || tm=$(ls /usr/lib/*/kamailio/modules/tm.so /usr/lib/kamailio/modules/tm.so 2>/dev/null | head -n1 || true)
		[[ -n $tm ]] || die "Kamailio module tm.so not found; install the Debian package 'kamailio' (or set KAMAILIO_MODULES)"
		KMOD=$(dirname "$tm")
	fi
	for m in "$@"; do
		[[ -f $KMOD/$m.so ]] || die "Kamailio module $m.so missing in $KMOD; install the Debian package 'kamailio'"
	done
}

if [[ $(id -u) -ne 0 ]]; then
	log "warning: not root; tcpdump needs CAP_NET_RAW to capture on lo"
fi

# ---------------------------------------------------------------- state
work_dir() { # name: a fresh work folder in WORK, kept on failure or with KEEP_WORK
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipflow-$1.XXXXXX")
}
BG_PIDS=()      # background processes we started and have not reaped yet
NETNS=""          # network namespace for tcpdump and ss (empty: this one); set by a script
CAP_IF=lo         # tcpdump's interface
CAP_PID=""
PROXY_PID=""
CAP_TIMEOUT=${CAP_TIMEOUT:-120}      # seconds tcpdump and Kamailio may live at most
PROXY_TIMEOUT=${PROXY_TIMEOUT:-120}

cleanup() {
	local rc=$?
	local p
	# a second signal (timeout(1) signals the process and then its whole group)
	# must not cut the cleanup short
	trap '' INT TERM
	for p in "${BG_PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null || true
		fi
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if declare -F on_cleanup >/dev/null; then
		on_cleanup || true
	fi
	if [[ -n ${WORK:-} ]]; then
		if [[ $rc -ne 0 || -n ${KEEP_WORK:-} ]]; then
			log "logs kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bg() { # run "$@" in the background, remember its pid in $BG_LAST
	"$@" &
	BG_LAST=$!
	BG_PIDS+=("$BG_LAST")
}

bg_in() { # dir command...: run in the background in dir, remember its pid in $BG_LAST
	local dir=$1
	shift
	(cd "$dir" && exec "$@") &
	BG_LAST=$!
	BG_PIDS+=("$BG_LAST")
}

reap() { # pid: wait for a background process and forget it; returns its status
	local rc=0 p keep=()
	wait "$1" || rc=$?
	for p in "${BG_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	BG_PIDS=("${keep[@]}")
	return "$rc"
}

in_netns() { # the command prefix that runs a command in $NETNS, into IN_NETNS
	IN_NETNS=()
	if [[ -n $NETNS ]]; then
		IN_NETNS=(ip netns exec "$NETNS")
	fi
}

wait_listen() { # proto addr:port [alternative addr:port]: until something listens there (in $NETNS)
	local opt=-lnu i
	[[ $1 == tcp ]] && opt=-lnt
	in_netns
	for ((i = 0; i < 100; i++)); do
		if "${IN_NETNS[@]}" ss -H "$opt" | awk '{print $4}' | grep -qxF -e "$2" -e "${3:-$2}"; then
			return 0
		fi
		sleep 0.05
	done
	die "nothing listens on $1 $2${NETNS:+ in network namespace $NETNS} after 5 s"
}

check_free() { # addr:port ... must not be in use before we start
	local a
	for a in "$@"; do
		if ss -H -lnu | awk '{print $4}' | grep -qxF "$a" ||
			ss -H -lnt | awk '{print $4}' | grep -qxF "$a"; then
			die "$a is already in use; stop whatever listens there first"
		fi
	done
}

# ---------------------------------------------------------------- capture
start_capture_at() { # dir pcap-path log-path bpf-filter: tcpdump on $CAP_IF (lo) in $NETNS, started in dir
	local dir=$1 pcap=$2 tlog=$3 filter=$4 i
	: >"$tlog"
	in_netns
	bg_in "$dir" timeout "$CAP_TIMEOUT" "${IN_NETNS[@]}" tcpdump -i "$CAP_IF" -n -U --immediate-mode \
		-w "$pcap" "$filter" 2>"$tlog"
	CAP_PID=$BG_LAST
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$tlog" && break
		kill -0 "$CAP_PID" 2>/dev/null || die "tcpdump failed: $(cat "$tlog")"
		sleep 0.05
	done
	grep -q 'listening on' "$tlog" || die "tcpdump did not start"
	sleep 0.3
}

start_capture() { # name bpf-filter: $WORK/name.pcap
	start_capture_at . "$WORK/$1.pcap" "$WORK/$1.tcpdump.log" "$2"
}

stop_capture() {
	sleep 0.3     # let the last packets reach the capture
	kill -INT "$CAP_PID"
	reap "$CAP_PID" || true
	CAP_PID=""
}

# ---------------------------------------------------------------- proxy
start_proxy() { # name [-A DEFINE ...]: Kamailio with $KCFG on $PROXY:$PORT, UDP and TCP
	local name=$1
	shift
	check_free "$PROXY:$PORT"
	mkdir -p "$WORK/kamailio-$name"
	bg timeout "$PROXY_TIMEOUT" kamailio -f "$KCFG" -L "$KMOD" -DD -E -m 32 -M 4 \
		-w "$WORK/kamailio-$name" -Y "$WORK/kamailio-$name" "$@" \
		>"$WORK/$name.kamailio.log" 2>&1
	PROXY_PID=$BG_LAST
	wait_listen udp "$PROXY:$PORT"
	wait_listen tcp "$PROXY:$PORT"
}

stop_proxy() {
	kill "$PROXY_PID"
	reap "$PROXY_PID" || true
	PROXY_PID=""
}

# ---------------------------------------------------------------- samples
select_samples() { # name ...: SAMPLES = the names given, or ALL_SAMPLES; each needs its mk_<name>
	if [[ $# -gt 0 ]]; then
		SAMPLES=("$@")
	else
		SAMPLES=("${ALL_SAMPLES[@]}")
	fi
	local s
	for s in "${SAMPLES[@]}"; do
		declare -F "mk_$s" >/dev/null || die "unknown sample '$s' (known: ${ALL_SAMPLES[*]})"
	done
}

check_sip_only() { # name pcap: not empty, nothing but SIP (TCP handshakes excepted)
	local bad
	[[ -s $2 ]] || die "$1: empty capture"
	bad=$(tshark -r "$2" -Y 'icmp or icmpv6 or (udp and not sip)' 2>/dev/null | wc -l)
	[[ $bad -eq 0 ]] || die "$1: $bad unexpected non-SIP packets in the capture"
}

install_file() { # source target: replace target in one step, through a dot file whose name
	# matches no sample pattern (*.pcap*, *.truth.json)
	local tmp
	tmp=$(dirname "$2")/.$(basename "${2%.*}").tmp
	cp "$1" "$tmp"
	mv -f "$tmp" "$2"
}
