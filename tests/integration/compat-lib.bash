# shellcheck shell=bash disable=SC2034  # variables for the tests
#
# compat-lib.bash: shared set-up of the compatibility matrix (compat-*.sh),
# sourced first by each of them (it sources lib.sh itself).  Named .bash
# so that run-all.sh, which runs every *.sh, does not take it for a test.
#
# compat_setup replaces lib.sh's it_setup: instead of one veth pair it
# builds the emulated bed of testbed/netpaths.sh with two modest paths
# (COMPAT_PATHS, default 100mbit:1ms:0,50mbit:5ms:0), so that every row
# runs over two paths, and maps the bed onto lib.sh's names, so that
# run_shim, run_plain, start_server, wait_listen, heads_start and the
# file helpers work unchanged:
#
#   NS_A  client namespace (interfaces c0 and c1, one per path)
#   NS_B  server namespace (interface s0)
#   A4 A6 client addresses on path 0; A4_1 A6_1 on path 1
#   B4 B6 server addresses
#   IF_A IF_B  c0 and s0
#
# The bed, its state directory and every process in its namespaces go on
# EXIT, INT or TERM (lib.sh's it_cleanup, after COMPAT_CLEANUP_HOOK when a
# test defines one, for daemons that want a polite stop).

# shellcheck source=./lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPAT_PATHS=${COMPAT_PATHS:-100mbit:1ms:0,50mbit:5ms:0}
NETPATHS=$(cd "$IT_DIR/../../testbed" 2>/dev/null && pwd)/netpaths.sh

compat_cleanup()
{
	local status=$?

	trap - EXIT INT TERM
	if declare -F COMPAT_CLEANUP_HOOK >/dev/null; then
		COMPAT_CLEANUP_HOOK >/dev/null 2>&1
	fi
	if [ -n "${TB_ENV:-}" ] && [ -f "$TB_ENV" ]; then
		"$NETPATHS" down --env "$TB_ENV" >/dev/null 2>&1
	fi
	(exit "$status")
	it_cleanup
}

# Build the bed and the temporary directory, install the traps.
# Usage: compat_setup NAME [SHIMLIB]
compat_setup()
{
	local envout

	IT_NAME=$1
	shift
	require_netns
	find_python
	find_shimlib "$@"
	require_cmd ss timeout sha256sum cc
	[ -x "$NETPATHS" ] || skip "no testbed/netpaths.sh beside the tests"

	trap compat_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	IT_TMP=$(mktemp -d "/tmp/mptcpshim-compat-$IT_NAME.XXXXXX") ||
		fail "mktemp failed"
	# TMPDIR puts the bed's state directory inside ours.
	envout=$(TMPDIR=$IT_TMP "$NETPATHS" up --paths "$COMPAT_PATHS" \
		2>"$IT_TMP/netpaths.err") ||
		skip "the testbed does not come up here:" \
			"$(excerpt "$IT_TMP/netpaths.err")"
	eval "$envout"
	IT_NAMESPACES+=("$TB_NS_CLIENT" "$TB_NS_ROUTER" "$TB_NS_SERVER")
	NS_A=$TB_NS_CLIENT
	NS_B=$TB_NS_SERVER
	IF_A=$TB_CLIENT_IF_0
	IF_B=$TB_SERVER_IF_0
	A4=$TB_CLIENT4_0
	A6=$TB_CLIENT6_0
	A4_1=$TB_CLIENT4_1
	A6_1=$TB_CLIENT6_1
	B4=$TB_SERVER4
	B6=$TB_SERVER6
	say "bed: $COMPAT_PATHS, client $A4 and $A4_1, server $B4"
}

# Compile a C helper of this directory into $IT_TMP.
# Usage: compat_cc NAME [CFLAGS...]    (builds NAME.c into $IT_TMP/NAME)
compat_cc()
{
	local name=$1

	shift
	cc -O2 -Wall -o "$IT_TMP/$name" "$IT_DIR/$name.c" "$@" \
		2>"$IT_TMP/$name.cc.err" ||
		fail "cannot compile $name.c: $(excerpt "$IT_TMP/$name.cc.err")"
}

# Sample, every 100 ms in the background, the TCP connections the client
# namespace holds to the server from each path's address (any port: joins
# may go to a join listener of their own), and keep the largest count
# seen per path.  compat_paths_stop prints and checks.
# Usage: compat_paths_start LABEL [6]   (6: the paths' IPv6 addresses)
compat_paths_start()
{
	local file=$IT_TMP/$1.paths src0=$A4 src1=$A4_1 dst=$B4

	# ss's filter takes IPv6 addresses only in brackets.
	[ "${2:-}" = 6 ] && { src0="[$A6]"; src1="[$A6_1]"; dst="[$B6]"; }
	PATHS_SRC1=$src1
	echo "0 0" >"$file"
	(
		max0=0 max1=0
		while :; do
			n0=$(ip netns exec "$NS_A" ss -tnH state established \
				"src $src0 and dst $dst" 2>/dev/null | wc -l)
			n1=$(ip netns exec "$NS_A" ss -tnH state established \
				"src $src1 and dst $dst" 2>/dev/null | wc -l)
			[ "$n0" -gt "$max0" ] && max0=$n0
			[ "$n1" -gt "$max1" ] && max1=$n1
			echo "$max0 $max1" >"$file.new" && mv "$file.new" "$file"
			sleep 0.1
		done
	) &
	PATHS_PID=$!
}

# Stop the sampler; print the counts; a check fails when path 1 never
# carried a subflow (the connections did not use both paths).
# Usage: compat_paths_stop LABEL
compat_paths_stop()
{
	local counts

	stop_pid "$PATHS_PID"
	counts=$(cat "$IT_TMP/$1.paths")
	PATH0_MAX=${counts% *}
	PATH1_MAX=${counts#* }
	say "$1: most subflows seen at once: path 0 $PATH0_MAX," \
		"path 1 $PATH1_MAX"
	[ "$PATH1_MAX" -gt 0 ] ||
		check_fail "$1: no subflow ever took path 1 ($PATHS_SRC1)"
}

# Check that every stream to or from PORT since heads_start began with a
# record (lib.sh's heads_framed), so that the exchange was MPTCP and not a
# silent fallback to plain TCP.
# Usage: compat_framed LABEL PORT
compat_framed()
{
	if heads_framed "$1" "$2"; then
		say "$1: MPTCP on the wire ($FRAMED_MSG)"
	else
		check_fail "$1: not MPTCP on the wire: $FRAMED_MSG"
	fi
}

# Resident memory of a process in KiB (VmRSS), 0 when it is gone.
rss_kib()
{
	awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' \
		"/proc/$1/status" 2>/dev/null || echo 0
}
