#!/bin/bash
# netpaths.sh: emulated network paths for testing and benchmarking mptcpshim.
#
# Builds three network namespaces, named uniquely per run:
#
#   client --c0/r0--+                +--h0/s0-- server
#          --c1/r1--+-- router ------+--h1/s1--   (when multi-homed)
#          ...      |                |
#
# Each client interface ci is one path.  Every link carries IPv4 and IPv6.
# A path has its own rate, one-way delay and random loss, each applied in
# both directions inside the router: the rate by tbf (on ri for the way
# down, on an IFB fed from ri's ingress for the way up), the delay by
# testbed/delayq (an NFQUEUE program; netem where the kernel has it), the
# loss by iptables statistic rules.  Faults can be set per path while
# traffic flows: blackhole, reset, link down and up.
#
# Usage (see testbed/README.md):
#   netpaths.sh up [--paths SPEC] [--server-homes N] [--queue-ms MS]
#                  [--delay-stage auto|nfqueue|netem] [--cc NAME]
#       Builds the bed, prints `export TB_...=...` lines for eval, and
#       leaves it running; tear it down with `netpaths.sh down`.
#   netpaths.sh run [up options] -- COMMAND [ARG...]
#       Builds the bed, runs COMMAND with the TB_ variables in its
#       environment, and tears everything down when COMMAND ends or on
#       interrupt.  Exits with COMMAND's status.
#   netpaths.sh fault [--env FILE] PATH blackhole|reset|down|up|clear
#   netpaths.sh down [--env FILE]
#   netpaths.sh status [--env FILE]
#   netpaths.sh delayq
#       Builds testbed/delayq.c if needed and prints the binary's path.
# fault, down and status find the bed through --env or $TB_ENV.
#
# SPEC is a comma-separated list of RATE:DELAY:LOSS, one per path, e.g.
# "50mbit:10ms:0,20mbit:40ms:0.5%".  RATE is a tc rate (bit, kbit, mbit,
# gbit) of layer-2 bytes, or 0 for no limit; DELAY is one-way (us, ms, s);
# LOSS is a probability (0.01) or a percentage (1%) per direction.
# --cc sets the TCP congestion control of client and server (default: the
# machine's); --queue-ms the tbf queue in ms of line rate (default: one
# round trip, at least 50 ms).
set -eu

TB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Defaults.
opt_paths="50mbit:10ms:0,20mbit:40ms:0"
opt_homes=1
opt_queue_ms=""
opt_delay_stage=auto
opt_cc=""
opt_env=""

die()
{
	printf 'netpaths: %s\n' "$*" >&2
	exit 1
}

note()
{
	printf 'netpaths: %s\n' "$*" >&2
}

# --- parsing of path specifications ---------------------------------------

# Print RATE (tc syntax) as bits per second, 0 for no limit.
rate_to_bps()
{
	awk -v r="$1" 'BEGIN {
		if (r == "0" || r == "none") { print 0; exit 0 }
		if (match(r, /^[0-9.]+/) == 0) exit 1
		n = substr(r, 1, RLENGTH); u = tolower(substr(r, RLENGTH + 1))
		if (u == "bit") m = 1
		else if (u == "kbit") m = 1e3
		else if (u == "mbit") m = 1e6
		else if (u == "gbit") m = 1e9
		else exit 1
		printf "%d\n", n * m
	}' || die "bad rate '$1' (use e.g. 500kbit, 20mbit, 0)"
}

# Print DELAY as microseconds.
delay_to_us()
{
	awk -v d="$1" 'BEGIN {
		if (match(d, /^[0-9.]+/) == 0) exit 1
		n = substr(d, 1, RLENGTH); u = substr(d, RLENGTH + 1)
		if (u == "" && n == 0) m = 0
		else if (u == "us") m = 1
		else if (u == "ms") m = 1e3
		else if (u == "s") m = 1e6
		else exit 1
		printf "%d\n", n * m
	}' || die "bad delay '$1' (use e.g. 500us, 10ms, 0)"
}

# Print LOSS as a probability between 0 and 1.
loss_to_probability()
{
	awk -v l="$1" 'BEGIN {
		pct = sub(/%$/, "", l)
		if (l !~ /^[0-9.]+$/) exit 1
		p = pct ? l / 100 : l + 0
		if (p < 0 || p > 1) exit 1
		printf "%g\n", p
	}' || die "bad loss '$1' (use e.g. 0, 0.01, 1%)"
}

# --- small helpers ----------------------------------------------------------

random_suffix()
{
	od -An -N3 -tx1 /dev/urandom | tr -d ' \n'
}

# Run a command in namespace $1.
in_ns()
{
	local ns=$1

	shift
	ip netns exec "$ns" "$@"
}

# Run iptables or ip6tables with the same arguments in the router.
ipt_both()
{
	in_ns "$TB_NS_ROUTER" iptables -w "$@"
	in_ns "$TB_NS_ROUTER" ip6tables -w "$@"
}

# Read the env file of a bed into this shell.
load_env()
{
	local file=${opt_env:-${TB_ENV:-}}

	[ -n "$file" ] || die "no bed given: use --env FILE or set TB_ENV"
	[ -r "$file" ] || die "cannot read $file"
	# shellcheck disable=SC1090
	. "$file"
}

# --- the delay stage --------------------------------------------------------

# Print the path of a delayq binary, building it into a cache directory
# when $DELAYQ does not name one.
delayq_binary()
{
	local src=$TB_SRC/delayq.c cache bin

	if [ -n "${DELAYQ:-}" ]; then
		[ -x "$DELAYQ" ] || die "DELAYQ=$DELAYQ is not executable"
		echo "$DELAYQ"
		return
	fi
	cache=${TB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mptcpshim-testbed}
	bin=$cache/delayq
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		mkdir -p "$cache"
		# shellcheck disable=SC2046
		cc -O2 -Wall -Wextra -o "$bin.tmp" "$src" \
			$(pkg-config --cflags --libs libnetfilter_queue) >&2 ||
			die "cannot build delayq (libnetfilter-queue-dev?)"
		mv "$bin.tmp" "$bin"
	fi
	echo "$bin"
}

# Succeed when the kernel has netem (probed on a scratch IFB device).
netem_works()
{
	local ok=1

	ip -n "$TB_NS_ROUTER" link add tbprobe type ifb 2>/dev/null || return 1
	if tc -n "$TB_NS_ROUTER" qdisc add dev tbprobe root netem \
		delay 1ms 2>/dev/null; then
		ok=0
	fi
	ip -n "$TB_NS_ROUTER" link del tbprobe
	return $ok
}

# Queue numbers of path $1: way up (client to server) and way down.
queue_up()
{
	echo $((100 + 2 * $1))
}

queue_down()
{
	echo $((101 + 2 * $1))
}

# Start delayq in the router for every path with a delay; wait until its
# queues are bound.
start_delayq()
{
	local bin specs="" i us ready=$TB_STATE/delayq.ready n=0

	for ((i = 0; i < TB_NPATHS; i++)); do
		us=$(path_var DELAY_US "$i")
		[ "$us" -gt 0 ] || continue
		specs="$specs $(queue_up "$i"):$us $(queue_down "$i"):$us"
	done
	TB_DELAYQ_PID=""
	[ -n "$specs" ] || return 0

	bin=$(delayq_binary)
	# shellcheck disable=SC2086
	ip netns exec "$TB_NS_ROUTER" "$bin" -r "$ready" $specs \
		</dev/null >"$TB_STATE/delayq.log" 2>&1 &
	TB_DELAYQ_PID=$!
	while [ ! -e "$ready" ]; do
		kill -0 "$TB_DELAYQ_PID" 2>/dev/null ||
			die "delayq failed: $(cat "$TB_STATE/delayq.log")"
		n=$((n + 1))
		[ $n -lt 200 ] || die "delayq did not start"
		sleep 0.02
	done
}

# --- building the bed -------------------------------------------------------

# Print variable TB_<name>_<i>.
path_var()
{
	local v="TB_$1_$2"

	echo "${!v}"
}

set_var()
{
	printf -v "$1" '%s' "$2"
}

# Parse the path list into TB_RATE_i, TB_DELAY_US_i, TB_LOSS_i and the
# interface and address variables of each path and server home.  All TB_
# variables reach the caller through print_env.
# shellcheck disable=SC2034
plan_bed()
{
	local spec i=0 rate delay loss j v

	TB_ID="$$-$(random_suffix)"
	TB_NS_CLIENT="tb-$TB_ID-cli"
	TB_NS_ROUTER="tb-$TB_ID-rtr"
	TB_NS_SERVER="tb-$TB_ID-srv"
	TB_PATHS=$opt_paths

	IFS=, read -r -a specs <<<"$opt_paths"
	for spec in "${specs[@]}"; do
		IFS=: read -r rate delay loss <<<"$spec"
		[ -n "${loss:-}" ] || die "path '$spec' is not RATE:DELAY:LOSS"
		v=$(rate_to_bps "$rate")
		set_var "TB_RATE_BPS_$i" "$v"
		v=$(delay_to_us "$delay")
		set_var "TB_DELAY_US_$i" "$v"
		v=$(loss_to_probability "$loss")
		set_var "TB_LOSS_$i" "$v"
		set_var "TB_CLIENT_IF_$i" "c$i"
		set_var "TB_ROUTER_IF_$i" "r$i"
		set_var "TB_IFB_$i" "ifb$i"
		set_var "TB_CLIENT4_$i" "10.31.$((i + 1)).1"
		set_var "TB_GW4_$i" "10.31.$((i + 1)).2"
		set_var "TB_CLIENT6_$i" "fd31:0:$((i + 1))::1"
		set_var "TB_GW6_$i" "fd31:0:$((i + 1))::2"
		i=$((i + 1))
	done
	TB_NPATHS=$i
	if [ "$TB_NPATHS" -lt 1 ] || [ "$TB_NPATHS" -gt 8 ]; then
		die "between 1 and 8 paths, please"
	fi

	TB_NHOMES=$opt_homes
	if ! [ "$TB_NHOMES" -ge 1 ] 2>/dev/null || [ "$TB_NHOMES" -gt 4 ]; then
		die "between 1 and 4 server homes, please"
	fi
	for ((j = 0; j < TB_NHOMES; j++)); do
		set_var "TB_SERVER_IF_$j" "s$j"
		set_var "TB_SERVER4_$j" "10.32.$((j + 1)).2"
		set_var "TB_SGW4_$j" "10.32.$((j + 1)).1"
		set_var "TB_SERVER6_$j" "fd32:0:$((j + 1))::2"
		set_var "TB_SGW6_$j" "fd32:0:$((j + 1))::1"
	done
	TB_SERVER4=$(path_var SERVER4 0)
	TB_SERVER6=$(path_var SERVER6 0)
	TB_STATE=${TMPDIR:-/tmp}/netpaths.$TB_ID
	TB_ENV=$TB_STATE/env
}

# Settings every namespace gets: no reverse-path filter, no duplicate
# address detection (addresses usable at once), IPv6 addresses kept over
# link down, no TCP metrics carried from one connection to the next.
tune_namespace()
{
	in_ns "$1" sysctl -q -w \
		net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.keep_addr_on_down=1 \
		net.ipv6.conf.default.keep_addr_on_down=1 \
		net.ipv4.tcp_no_metrics_save=1 >/dev/null
	ip -n "$1" link set lo up
}

create_namespaces()
{
	local ns

	for ns in "$TB_NS_CLIENT" "$TB_NS_ROUTER" "$TB_NS_SERVER"; do
		ip netns add "$ns"
		tune_namespace "$ns"
	done
	in_ns "$TB_NS_ROUTER" sysctl -q -w net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 >/dev/null
	if [ -n "$opt_cc" ]; then
		for ns in "$TB_NS_CLIENT" "$TB_NS_SERVER"; do
			in_ns "$ns" sysctl -q -w \
				net.ipv4.tcp_congestion_control="$opt_cc" \
				>/dev/null || die "cannot use $opt_cc here; \
a namespace may only choose what the initial namespace lists in \
net.ipv4.tcp_allowed_congestion_control"
		done
	fi
	# shellcheck disable=SC2034
	TB_CC=$(in_ns "$TB_NS_CLIENT" sysctl -n \
		net.ipv4.tcp_congestion_control)
}

# (Re)apply addresses and routes of client path $1; safe to repeat, which
# `fault PATH up` relies on after a link was down.
configure_client_path()
{
	local i=$1 c=c$1 t=$((100 + $1)) a4 a6 g4 g6

	a4=$(path_var CLIENT4 "$i")
	a6=$(path_var CLIENT6 "$i")
	g4=$(path_var GW4 "$i")
	g6=$(path_var GW6 "$i")
	ip -n "$TB_NS_CLIENT" link set "$c" up
	ip -n "$TB_NS_ROUTER" link set "r$i" up
	ip -n "$TB_NS_CLIENT" addr replace "$a4/24" dev "$c"
	ip -n "$TB_NS_CLIENT" -6 addr replace "$a6/64" dev "$c" nodad

	# The first path is the default route; the others back it up.
	ip -n "$TB_NS_CLIENT" route replace default via "$g4" dev "$c" \
		metric $((100 + i))
	ip -n "$TB_NS_CLIENT" -6 route replace default via "$g6" dev "$c" \
		metric $((100 + i))

	# Traffic from this path's address leaves by this path, and by no
	# other when the link is down.
	ip -n "$TB_NS_CLIENT" route replace default via "$g4" dev "$c" \
		table $t
	ip -n "$TB_NS_CLIENT" -6 route replace default via "$g6" dev "$c" \
		table $t
}

create_client_paths()
{
	local i t

	for ((i = 0; i < TB_NPATHS; i++)); do
		t=$((100 + i))
		ip link add "c$i" netns "$TB_NS_CLIENT" type veth \
			peer name "r$i" netns "$TB_NS_ROUTER"
		ip -n "$TB_NS_ROUTER" addr add "$(path_var GW4 "$i")/24" \
			dev "r$i"
		ip -n "$TB_NS_ROUTER" -6 addr add "$(path_var GW6 "$i")/64" \
			dev "r$i" nodad
		configure_client_path "$i"
		ip -n "$TB_NS_CLIENT" route add unreachable default \
			metric 4000 table $t
		ip -n "$TB_NS_CLIENT" -6 route add unreachable default \
			metric 4000 table $t
		ip -n "$TB_NS_CLIENT" rule add from "$(path_var CLIENT4 "$i")" \
			table $t pref $((1000 + i))
		ip -n "$TB_NS_CLIENT" -6 rule add \
			from "$(path_var CLIENT6 "$i")" table $t \
			pref $((1000 + i))
	done
}

create_server_homes()
{
	local j t s=$TB_NS_SERVER a4 a6 g4 g6

	for ((j = 0; j < TB_NHOMES; j++)); do
		t=$((200 + j))
		a4=$(path_var SERVER4 "$j")
		a6=$(path_var SERVER6 "$j")
		g4=$(path_var SGW4 "$j")
		g6=$(path_var SGW6 "$j")
		ip link add "s$j" netns "$s" type veth \
			peer name "h$j" netns "$TB_NS_ROUTER"
		ip -n "$TB_NS_ROUTER" addr add "$g4/24" dev "h$j"
		ip -n "$TB_NS_ROUTER" -6 addr add "$g6/64" dev "h$j" nodad
		ip -n "$TB_NS_ROUTER" link set "h$j" up
		ip -n "$s" addr add "$a4/24" dev "s$j"
		ip -n "$s" -6 addr add "$a6/64" dev "s$j" nodad
		ip -n "$s" link set "s$j" up
		ip -n "$s" route add default via "$g4" metric $((100 + j))
		ip -n "$s" -6 route add default via "$g6" metric $((100 + j))
		ip -n "$s" route add default via "$g4" table $t
		ip -n "$s" -6 route add default via "$g6" table $t
		ip -n "$s" rule add from "$a4" table $t pref $((1000 + j))
		ip -n "$s" -6 rule add from "$a6" table $t pref $((1000 + j))
	done
}

# Print the bytes tbf should queue for a path of $1 bit/s and $2 us
# one-way delay: --queue-ms of line rate if given, else one round trip
# (at least 50 ms), and never less than three full frames.  Less than
# 50 ms starves a 3 Mbit/s path without delay (bbr reached 84% of it).
queue_bytes()
{
	awk -v bps="$1" -v us="$2" -v qms="$opt_queue_ms" 'BEGIN {
		ms = qms != "" ? qms : 2 * us / 1000
		if (qms == "" && ms < 50) ms = 50
		b = bps / 8 * ms / 1000
		if (b < 3 * 1514) b = 3 * 1514
		printf "%d\n", b
	}'
}

# Print the tbf bucket size: 2 ms of line rate, at least two frames.
burst_bytes()
{
	awk -v bps="$1" 'BEGIN {
		b = bps / 8 * 0.002
		if (b < 3100) b = 3100
		printf "%d\n", b
	}'
}

# Add a tbf of path $1 as qdisc of device $2 (args after $2: parent).
add_rate_limit()
{
	local i=$1 dev=$2 bps us

	shift 2
	bps=$(path_var RATE_BPS "$i")
	us=$(path_var DELAY_US "$i")
	tc -n "$TB_NS_ROUTER" qdisc add dev "$dev" "$@" tbf \
		rate "${bps}bit" burst "$(burst_bytes "$bps")" \
		limit "$(queue_bytes "$bps" "$us")"
}

# Shape path $1 in the router: rate (and netem delay if chosen) on ri for
# the way down, and on ifbi, fed from ri's ingress, for the way up.
shape_path()
{
	local i=$1 r=r$1 b=ifb$1 bps us dev parent

	bps=$(path_var RATE_BPS "$i")
	us=$(path_var DELAY_US "$i")
	ip -n "$TB_NS_ROUTER" link add "$b" type ifb
	ip -n "$TB_NS_ROUTER" link set "$b" up
	tc -n "$TB_NS_ROUTER" qdisc add dev "$r" handle ffff: ingress
	tc -n "$TB_NS_ROUTER" filter add dev "$r" parent ffff: protocol all \
		u32 match u32 0 0 action mirred egress redirect dev "$b"

	for dev in "$r" "$b"; do
		parent="root"
		if [ "$TB_DELAY_STAGE" = netem ] && [ "$us" -gt 0 ]; then
			tc -n "$TB_NS_ROUTER" qdisc add dev "$dev" root \
				handle 1: netem delay "${us}us" limit 100000
			parent="parent 1:1"
		fi
		if [ "$bps" -gt 0 ]; then
			# shellcheck disable=SC2086
			add_rate_limit "$i" "$dev" $parent
		fi
	done
}

# Steer path $1's forwarded packets, each way, through a fault chain
# (empty until `fault`), its random loss, and its delay queue.
filter_path()
{
	local i=$1 loss us way q

	loss=$(path_var LOSS "$i")
	us=$(path_var DELAY_US "$i")
	ipt_both -N "TB_FAULT_$i"
	for way in UP DOWN; do
		ipt_both -N "TB_${way}_$i"
		if [ "$loss" != 0 ]; then
			ipt_both -A "TB_${way}_$i" -m statistic --mode random \
				--probability "$loss" -j DROP
		fi
		if [ "$TB_DELAY_STAGE" = nfqueue ] && [ "$us" -gt 0 ]; then
			if [ $way = UP ]; then
				q=$(queue_up "$i")
			else
				q=$(queue_down "$i")
			fi
			ipt_both -A "TB_${way}_$i" -j NFQUEUE --queue-num "$q"
		fi
	done
	ipt_both -A FORWARD -i "r$i" -j "TB_FAULT_$i"
	ipt_both -A FORWARD -o "r$i" -j "TB_FAULT_$i"
	ipt_both -A FORWARD -i "r$i" -j "TB_UP_$i"
	ipt_both -A FORWARD -o "r$i" -j "TB_DOWN_$i"
}

choose_delay_stage()
{
	TB_DELAY_STAGE=$opt_delay_stage
	if [ "$TB_DELAY_STAGE" = auto ]; then
		if netem_works; then
			TB_DELAY_STAGE=netem
		else
			TB_DELAY_STAGE=nfqueue
		fi
	fi
}

# Print the bed's variables as shell assignments.
print_env()
{
	local v

	for v in $(compgen -v TB_); do
		case $v in
		TB_SRC) continue ;;
		esac
		printf 'export %s=%q\n' "$v" "${!v}"
	done
}

bed_up()
{
	local i

	[ "$(id -u)" -eq 0 ] || die "needs root"
	plan_bed
	mkdir -p "$TB_STATE"
	trap 'teardown; exit 1' EXIT
	trap 'exit 130' INT TERM

	create_namespaces
	create_client_paths
	create_server_homes
	choose_delay_stage
	for ((i = 0; i < TB_NPATHS; i++)); do
		shape_path "$i"
	done
	if [ "$TB_DELAY_STAGE" = nfqueue ]; then
		start_delayq
	fi
	TB_DELAYQ_PID=${TB_DELAYQ_PID:-}
	for ((i = 0; i < TB_NPATHS; i++)); do
		filter_path "$i"
	done

	print_env >"$TB_ENV"
	trap - EXIT INT TERM
}

# --- faults -----------------------------------------------------------------

# Apply fault $2 to path $1.
apply_fault()
{
	local i=$1 what=$2

	if ! [ "$i" -ge 0 ] 2>/dev/null || [ "$i" -ge "$TB_NPATHS" ]; then
		die "no path '$i' (paths are 0..$((TB_NPATHS - 1)))"
	fi
	case $what in
	blackhole)
		ipt_both -F "TB_FAULT_$i"
		ipt_both -A "TB_FAULT_$i" -j DROP
		;;
	reset)
		ipt_both -F "TB_FAULT_$i"
		ipt_both -A "TB_FAULT_$i" -p tcp -j REJECT \
			--reject-with tcp-reset
		;;
	down)
		ip -n "$TB_NS_CLIENT" link set "c$i" down
		;;
	up)
		configure_client_path "$i"
		;;
	clear)
		ipt_both -F "TB_FAULT_$i"
		configure_client_path "$i"
		;;
	*)
		die "unknown fault '$what' (blackhole|reset|down|up|clear)"
		;;
	esac
}

# --- teardown ---------------------------------------------------------------

# Succeed if pid $1 is a delayq process.
is_delayq()
{
	[ -n "$1" ] && grep -q delayq "/proc/$1/cmdline" 2>/dev/null
}

# Stop our delayq and every process left in our namespaces, delete the
# namespaces and the state directory.  Safe to call on a half-built bed.
teardown()
{
	local ns pid

	if is_delayq "${TB_DELAYQ_PID:-}"; then
		kill "$TB_DELAYQ_PID" 2>/dev/null || true
	fi
	for ns in "${TB_NS_CLIENT:-}" "${TB_NS_ROUTER:-}" "${TB_NS_SERVER:-}"
	do
		[ -n "$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
	if [ -n "${TB_STATE:-}" ] && [ -d "$TB_STATE" ]; then
		rm -rf "$TB_STATE"
	fi
}

# --- command line -----------------------------------------------------------

usage()
{
	sed -n '2,/^set -eu/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 2
}

parse_options()
{
	while [ $# -gt 0 ]; do
		case $1 in
		--paths) opt_paths=$2; shift 2 ;;
		--server-homes) opt_homes=$2; shift 2 ;;
		--queue-ms) opt_queue_ms=$2; shift 2 ;;
		--delay-stage) opt_delay_stage=$2; shift 2 ;;
		--cc) opt_cc=$2; shift 2 ;;
		--env) opt_env=$2; shift 2 ;;
		--) shift; break ;;
		-h|--help) usage ;;
		-*) die "unknown option $1" ;;
		*) break ;;
		esac
	done
	rest=("$@")
}

# Run the command in the background and wait for it, so that a signal to
# this script tears the bed down at once; the command is stopped too.
cmd_run()
{
	local status=0

	bed_up
	run_child=""
	trap 'teardown' EXIT
	trap 'stop_child; exit 130' INT
	trap 'stop_child; exit 143' TERM
	set -a
	# shellcheck disable=SC1090
	. "$TB_ENV"
	set +a
	"$@" &
	run_child=$!
	wait "$run_child" || status=$?
	exit $status
}

stop_child()
{
	if [ -n "$run_child" ]; then
		kill "$run_child" 2>/dev/null || true
	fi
}

main()
{
	local cmd=${1:-}

	[ $# -gt 0 ] && shift
	parse_options "$@"
	set -- ${rest[@]+"${rest[@]}"}
	case $cmd in
	up)
		bed_up
		cat "$TB_ENV"
		;;
	run)
		[ $# -gt 0 ] || die "run: no command given"
		cmd_run "$@"
		;;
	fault)
		[ $# -eq 2 ] ||
			die "usage: fault PATH blackhole|reset|down|up|clear"
		load_env
		apply_fault "$1" "$2"
		;;
	down)
		load_env
		teardown
		;;
	status)
		load_env
		cat "$TB_ENV"
		;;
	delayq)
		delayq_binary
		;;
	*)
		usage
		;;
	esac
}

main "$@"
