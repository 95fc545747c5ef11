# shellcheck shell=bash disable=SC2034  # variables for the tests
#
# lib.sh: shared helpers for the integration tests of mptcpshim.
#
# Source it from a test script written for bash.  It gives the test two
# network namespaces joined by one veth pair, each with an IPv4 and an IPv6
# address, and helpers to run programs there with or without the preload
# library, to wait for a server, to capture packets, to make random files
# and to compare them.  Everything it creates (namespaces, processes,
# temporary files) is removed by a trap on EXIT, INT and TERM, whether the
# test passes or fails.
#
# Exit codes of a test: 0 pass, 1 fail, 77 skip (the machine lacks
# something; the reason is printed).
#
# The library under test is named by $SHIMLIB or by the test's first
# argument.  Every wait is bounded; no helper sleeps blindly for long.
# IT_KEEP_TMP=1 keeps the temporary directory (captures, outputs);
# IT_SHIM_LOG=debug makes every shimmed process log there.
#
# Looking for memory errors in the library, two hooks apply to every
# shimmed process (README tells how to run each):
#   IT_PRELOAD_FIRST  libraries preloaded ahead of the library: the ASan
#                     runtime, for a library built --enable-sanitizers.
#                     ASan and UBSan then write reports to files in
#                     $IT_TMP/san (programs may swallow stderr), and any
#                     report fails the test.
#   IT_VALGRIND=1     run shimmed commands under valgrind's memcheck;
#                     any error it reports fails the test.
#
# Variables a test may read after it_setup:
#   NS_A, NS_B         namespace names (client side, server side)
#   IF_A, IF_B         the veth end inside each namespace
#   A4, B4, A6, B6     their IPv4 and IPv6 addresses
#   IT_TMP             a private temporary directory
#   SHIMLIB            absolute path of libmptcpshim.so
#   PY                 a python3 interpreter (Debian's when present)
#   NETTOOL            tests/integration/nettool.py

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETTOOL=$IT_DIR/nettool.py

A4=10.251.0.1
B4=10.251.0.2
A6=fd51:0:0:1::1
B6=fd51:0:0:1::2
IF_A=mps0
IF_B=mps0

# Bounds, in seconds, for waits of each kind.
IT_LISTEN_WAIT=${IT_LISTEN_WAIT:-10}
IT_XFER_WAIT=${IT_XFER_WAIT:-30}

IT_NAMESPACES=()
IT_FAILED=0
IT_TMP=

# Print a progress line.
say()
{
	printf '%s: %s\n' "${IT_NAME:-test}" "$*"
}

# Print one line saying why the test fails, then exit 1.
fail()
{
	printf '%s: FAIL: %s\n' "${IT_NAME:-test}" "$*" >&2
	exit 1
}

# Print one line saying why the test cannot run here, then exit 77.
skip()
{
	printf '%s: SKIP: %s\n' "${IT_NAME:-test}" "$*" >&2
	exit 77
}

# Record a failed check and carry on, so that one run reports every mode
# that fails; it_finish turns the record into exit status 1.
check_fail()
{
	printf '%s: FAIL: %s\n' "${IT_NAME:-test}" "$*" >&2
	IT_FAILED=1
}

# Exit with 1 if any check_fail happened, else 0.
it_finish()
{
	if [ "$IT_FAILED" -ne 0 ]; then
		exit 1
	fi
	say "all checks passed"
	exit 0
}

# Stop the processes we started, delete our namespaces and files.  Runs
# once, from the EXIT trap.
it_cleanup()
{
	local status=$? pid ns

	trap - EXIT INT TERM
	# Only children not yet reaped: a reaped pid may belong to another
	# process by now.
	for pid in $(jobs -p); do
		kill "$pid" 2>/dev/null
	done
	# Anything else still running inside our own namespaces is ours too.
	for ns in "${IT_NAMESPACES[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
	done
	for pid in $(jobs -p); do
		wait "$pid" 2>/dev/null
	done
	for ns in "${IT_NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	it_memory_reports || status=1
	if [ -n "$IT_TMP" ] && [ -d "$IT_TMP" ]; then
		if [ -n "${IT_KEEP_TMP:-}" ]; then
			echo "${IT_NAME:-test}: kept $IT_TMP" >&2
		else
			rm -rf "$IT_TMP"
		fi
	fi
	exit "$status"
}

# Skip unless we are root and can create network namespaces.
require_netns()
{
	local probe

	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	command -v ip >/dev/null || skip "needs ip (iproute2)"
	probe=mps-probe-$$-$RANDOM
	ip netns add "$probe" 2>/dev/null ||
		skip "cannot create a network namespace (ip netns add)"
	ip netns del "$probe"
}

# Skip unless each named command exists.
require_cmd()
{
	local cmd

	for cmd in "$@"; do
		command -v "$cmd" >/dev/null || skip "needs $cmd"
	done
}

# Install a Debian package when a command is missing (root only); skip
# if that fails.  Must run outside $(...), so that skip ends the test.
# Usage: require_pkg COMMAND PACKAGE
require_pkg()
{
	command -v "$1" >/dev/null && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		say "installing $2 for $1"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" \
			>/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y \
				-qq "$2" >/dev/null 2>&1; }
	fi
	command -v "$1" >/dev/null || skip "needs $1 (package $2)"
}

# Find the library under test: $SHIMLIB, else the first argument.  A
# missing name skips; a name that is not a file fails.
find_shimlib()
{
	SHIMLIB=${SHIMLIB:-${1:-}}
	[ -n "$SHIMLIB" ] ||
		skip "no library: pass the path of libmptcpshim.so" \
			"as argument 1 or in SHIMLIB"
	[ -f "$SHIMLIB" ] || fail "SHIMLIB=$SHIMLIB is not a file"
	SHIMLIB=$(cd "$(dirname "$SHIMLIB")" && pwd)/$(basename "$SHIMLIB")
	export SHIMLIB
}

# The mptcpshim command: the path given (a test's second argument), else
# SHIM_CMD (from run-all.sh), else next to the library (libtool's .libs
# is one level down).  Prints its absolute path; false when not built.
# Usage: CMD=$(find_shim_cmd [PATH])
find_shim_cmd()
{
	local cmd=${1:-${SHIM_CMD:-}}

	[ -n "$cmd" ] || cmd=$(dirname "$SHIMLIB")/../mptcpshim
	[ -x "$cmd" ] || return 1
	echo "$(cd "$(dirname "$cmd")" && pwd)/$(basename "$cmd")"
}

# A directory of this test's own for the control sockets of the
# processes it starts, exported as XDG_RUNTIME_DIR so that the command
# finds them there.  Sets RUN.
private_runtime_dir()
{
	RUN=$IT_TMP/run
	mkdir -m 700 "$RUN"
	export XDG_RUNTIME_DIR=$RUN
}

# Prefer Debian's python3 over a pyenv shim (a shell script), so that
# the preload applies to the interpreter itself and nothing else.
find_python()
{
	if [ ! -x /usr/bin/python3 ]; then
		require_pkg python3 python3
	fi
	if [ -x /usr/bin/python3 ]; then
		PY=/usr/bin/python3
	else
		PY=$(command -v python3)
	fi
}

# Create the namespaces and the veth pair, install the traps.
# Usage: it_setup NAME [SHIMLIB]
it_setup()
{
	local suffix

	IT_NAME=$1
	shift
	require_netns
	find_python
	find_shimlib "$@"
	require_cmd ss timeout sha256sum

	trap it_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	IT_TMP=$(mktemp -d "/tmp/mptcpshim-it-$IT_NAME.XXXXXX") ||
		fail "mktemp failed"
	suffix=$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	NS_A=mps-$suffix-a
	NS_B=mps-$suffix-b
	ip netns add "$NS_A" || fail "ip netns add $NS_A failed"
	IT_NAMESPACES+=("$NS_A")
	ip netns add "$NS_B" || fail "ip netns add $NS_B failed"
	IT_NAMESPACES+=("$NS_B")

	# Both ends are created inside their namespaces, so their names
	# never meet the host's interfaces.
	ip link add "$IF_A" netns "$NS_A" type veth \
		peer name "$IF_B" netns "$NS_B" ||
		fail "cannot create a veth pair"
	it_addr "$NS_A" "$IF_A" "$A4" "$A6"
	it_addr "$NS_B" "$IF_B" "$B4" "$B6"
	it_wait_ping || fail "the veth pair does not carry packets"
}

# Usage: it_addr NS IFACE IPV4 IPV6
it_addr()
{
	ip -n "$1" link set lo up &&
		ip -n "$1" link set "$2" up &&
		ip -n "$1" addr add "$3/24" dev "$2" &&
		ip -n "$1" -6 addr add "$4/64" dev "$2" nodad ||
		fail "cannot configure $2 in $1"
}

# Wait (bounded) until A reaches B over IPv4 and IPv6.
it_wait_ping()
{
	command -v ping >/dev/null || return 0
	for _ in $(seq 50); do
		if ip netns exec "$NS_A" ping -c1 -W1 -q "$B4" \
			>/dev/null 2>&1 &&
			ip netns exec "$NS_A" ping -6 -c1 -W1 -q "$B6" \
				>/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Run a command in a namespace without the preload library.
# Usage: run_plain NS COMMAND...
run_plain()
{
	local ns=$1

	shift
	ip netns exec "$ns" env -u LD_PRELOAD "$@"
}

# Leave in SHIM_ENV the environment of a shimmed process: LD_PRELOAD
# (IT_PRELOAD_FIRST, then LIBRARY or $SHIMLIB) and, with IT_PRELOAD_FIRST,
# the sanitizers' options.  Reports go to files in $IT_TMP/san, which any
# user may write (postgres runs as its own).  Leak detection is off: the
# programs under test leak at exit by design, and so does a forked child
# of the library, which abandons its parent's libev loop (src/loop.c);
# the unit tests keep it on.
# Usage: shim_env [LIBRARY]
shim_env()
{
	local dir=$IT_TMP/san first=${IT_PRELOAD_FIRST:-}

	SHIM_ENV=(LD_PRELOAD="${first:+$first }${1:-$SHIMLIB}")
	[ -n "${IT_PRELOAD_FIRST:-}" ] || return 0
	mkdir -p "$dir" && chmod 1777 "$dir"
	SHIM_ENV+=(ASAN_OPTIONS="detect_leaks=0:log_path=$dir/asan"
		UBSAN_OPTIONS="print_stacktrace=1:log_path=$dir/ubsan")
}

# True when shimmed processes run with the ASan runtime (IT_PRELOAD_FIRST),
# for the few checks that cannot hold there: resident memory bounds, for
# one (ASan's shadow and quarantine are counted).
it_sanitized()
{
	case ${IT_PRELOAD_FIRST:-} in
	*libasan*) return 0 ;;
	esac
	return 1
}

# Valgrind's memcheck for IT_VALGRIND=1, in front of env: the valgrind
# command is a shell script, which must not load the library.  Leaks are
# not errors, for the reason shim_env gives.  Python's own allocator
# upsets memcheck (it reads memory it never wrote, on purpose), so python
# uses malloc.  The markers let it_memory_reports find each error.
VALGRIND_ARGS=(valgrind -q --error-exitcode=97 --errors-for-leak-kinds=none
	--trace-children=yes --num-callers=30
	"--error-markers=VGERR-BEGIN,VGERR-END"
	--suppressions="$IT_DIR/valgrind.supp")

# Run a command in a namespace with the preload library.  With
# IT_SHIM_LOG=LEVEL in the environment, each shimmed process logs at that
# level to $IT_TMP/shim-PID.log (and IT_KEEP_TMP=1 keeps them).
# Usage: run_shim NS COMMAND...
run_shim()
{
	local ns=$1 wrap=()

	shift
	if [ -n "${IT_SHIM_LOG:-}" ]; then
		set -- MPTCPSHIM_LOG_LEVEL="$IT_SHIM_LOG" \
			MPTCPSHIM_LOG_FILE="$IT_TMP/shim-%p.log" "$@"
	fi
	if [ -n "${IT_VALGRIND:-}" ]; then
		wrap=("${VALGRIND_ARGS[@]}"
			--log-file="$IT_TMP/valgrind-%p.log")
		set -- PYTHONMALLOC=malloc "$@"
	fi
	shim_env "$SHIMLIB"
	ip netns exec "$ns" "${wrap[@]}" env "${SHIM_ENV[@]}" "$@"
}

# Print every sanitizer report and valgrind error the test's processes
# left in $IT_TMP; false when there is one.
it_memory_reports()
{
	local f found=0

	[ -n "$IT_TMP" ] && [ -d "$IT_TMP" ] || return 0
	for f in "$IT_TMP"/san/*; do
		[ -s "$f" ] || continue
		printf '%s: FAIL: sanitizer report %s\n' "${IT_NAME:-test}" \
			"${f##*/}" >&2
		head -60 "$f" | sed 's/^/report| /' >&2
		found=1
	done
	for f in "$IT_TMP"/valgrind-*.log; do
		grep -q VGERR-BEGIN "$f" 2>/dev/null || continue
		printf '%s: FAIL: valgrind error in %s\n' "${IT_NAME:-test}" \
			"${f##*/}" >&2
		sed -n '/VGERR-BEGIN/,/VGERR-END/p' "$f" | head -80 |
			sed 's/^/report| /' >&2
		found=1
	done
	[ "$found" -eq 0 ]
}

# Run a command in a namespace, shimmed or not by the word MODE.
# Usage: run_as MODE NS COMMAND...   (MODE is shim or plain)
run_as()
{
	local mode=$1

	shift
	case $mode in
	shim) run_shim "$@" ;;
	plain) run_plain "$@" ;;
	*) fail "run_as: bad mode $mode" ;;
	esac
}

# Start a server in the background and wait until PORT listens in NS.
# Its output goes to $IT_TMP/LABEL.out and .err; its pid is left in
# SERVER_PID.  Fails the test if it dies or does not listen in time.
# Usage: start_server LABEL MODE NS PORT COMMAND...
start_server()
{
	local label=$1 mode=$2 ns=$3 port=$4

	shift 4
	run_as "$mode" "$ns" "$@" >"$IT_TMP/$label.out" \
		2>"$IT_TMP/$label.err" &
	SERVER_PID=$!
	wait_listen "$ns" "$port" "$SERVER_PID" ||
		fail "$label: server not listening on port $port after" \
			"${IT_LISTEN_WAIT}s: $(excerpt "$IT_TMP/$label.err")"
}

# Poll ss until PORT listens in NS (bounded by IT_LISTEN_WAIT), or the
# process PID has died.  Returns 0 when listening.
wait_listen()
{
	local ns=$1 port=$2 pid=${3:-} tries

	tries=$((IT_LISTEN_WAIT * 20))
	while [ "$tries" -gt 0 ]; do
		if ip netns exec "$ns" ss -ltnH "sport = :$port" |
			grep -q .; then
			return 0
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	return 1
}

# Wait (bounded by SECONDS, default IT_XFER_WAIT) for a background
# process to exit; returns its exit status, or 124 on timeout (after
# killing it).
# Usage: wait_pid PID [SECONDS]
wait_pid()
{
	local pid=$1 limit=${2:-$IT_XFER_WAIT} tries

	tries=$((limit * 20))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$tries" -le 0 ]; then
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	wait "$pid"
}

# Kill a background process we started and reap it.
stop_pid()
{
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# Start tcpdump on IFACE in NS, writing FILE; waits (bounded) until it
# captures.  Leaves the pid in CAPTURE_PID.  CAPTURE_SNAPLEN, when set,
# keeps only that many bytes of each packet.
# Usage: capture_start NS IFACE FILE [FILTER...]
capture_start()
{
	local ns=$1 iface=$2 file=$3 tries=100

	shift 3
	require_pkg tcpdump tcpdump
	# A 16 MiB ring (-B, KiB) so that a loaded machine drops nothing.
	ip netns exec "$ns" tcpdump -i "$iface" -nn -U --immediate-mode \
		-B 16384 -s "${CAPTURE_SNAPLEN:-0}" -Z root -w "$file" "$@" \
		2>"$file.err" &
	CAPTURE_PID=$!
	CAPTURE_FILE=$file
	while ! grep -q 'listening on' "$file.err" 2>/dev/null; do
		kill -0 "$CAPTURE_PID" 2>/dev/null ||
			fail "tcpdump failed: $(head -c 300 "$file.err")"
		[ "$tries" -gt 0 ] || fail "tcpdump did not start in 5s"
		sleep 0.05
		tries=$((tries - 1))
	done
}

# Wait until the files (or directories) given have stopped growing for
# 0.6 s, at most 10 s in all: a writer on a loaded machine (tcpdump, a
# program's MPTCPSHIM_CAPTURE) may be seconds behind the traffic.
# Usage: settle PATH...
settle()
{
	local last=-1 size stable=0 tries=50

	while [ "$stable" -lt 3 ] && [ "$tries" -gt 0 ]; do
		sleep 0.2
		size=$(du -sbc "$@" 2>/dev/null | tail -1 | cut -f1)
		if [ "$size" = "$last" ]; then
			stable=$((stable + 1))
		else
			stable=0
		fi
		last=$size
		tries=$((tries - 1))
	done
}

# Stop the capture started last, letting tcpdump flush its file.
capture_stop()
{
	# Packets already sent may still sit in the capture ring, and on a
	# loaded machine tcpdump may be seconds behind.
	settle "$CAPTURE_FILE"
	kill -INT "$CAPTURE_PID" 2>/dev/null
	wait_pid "$CAPTURE_PID" 5 >/dev/null 2>&1
	return 0
}

# Record the first bytes of every packet to or from PORT on B's veth,
# for heads_framed.  Usage: heads_start LABEL PORT
heads_start()
{
	CAPTURE_SNAPLEN=160 capture_start "$NS_B" "$IF_B" \
		"$IT_TMP/$1.heads.pcap" tcp port "$2"
}

# Stop the capture of heads_start; true when every stream to or from
# PORT that carried data started with a record (so the connection was
# MPTCP, not plain TCP).  The verdict, one line, is left in FRAMED_MSG.
# Usage: heads_framed LABEL PORT
heads_framed()
{
	local rc

	capture_stop
	FRAMED_MSG=$("$PY" "$NETTOOL" framed --pcap "$IT_TMP/$1.heads.pcap" \
		--port "$2" 2>&1)
	rc=$?
	FRAMED_MSG=$(echo "$FRAMED_MSG" | sed 's/^ok: //; s/^nettool: //' |
		head -1)
	return "$rc"
}

# Milliseconds since the epoch.
now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# Seconds elapsed since a now_ms value, with two decimals.
seconds_since()
{
	local ms=$(($(now_ms) - $1))

	printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10))
}

# Write N MiB of random bytes to FILE.
# Usage: make_random_file FILE N
make_random_file()
{
	head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1" ||
		fail "cannot write $1"
}

# Print the sha256 of a file.
sha256_of()
{
	sha256sum "$1" | cut -d' ' -f1
}

# True when both files exist and have the same sha256.
# Usage: same_sha256 EXPECTED ACTUAL
same_sha256()
{
	[ -f "$1" ] && [ -f "$2" ] &&
		[ "$(sha256_of "$1")" = "$(sha256_of "$2")" ]
}

# Describe how ACTUAL differs from EXPECTED, in a few words.
describe_diff()
{
	local want got

	if [ ! -f "$2" ]; then
		echo "no output file"
		return
	fi
	want=$(stat -c %s "$1")
	got=$(stat -c %s "$2")
	if [ "$want" != "$got" ]; then
		echo "got $got bytes, want $want"
	else
		echo "same length ($got bytes), contents differ:" \
			"$(cmp "$1" "$2" 2>&1 | head -1)"
	fi
}

# The first lines of a file, on one line, for a failure message.
excerpt()
{
	[ -f "$1" ] || return 0
	head -c 300 "$1" | tr '\n' ' '
}
