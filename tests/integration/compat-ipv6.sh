#!/bin/bash
#
# compat-ipv6.sh: IPv6 and v4-mapped addresses through the library, both
# ends shimmed, over two emulated paths.  One shimmed echo server
# (compat-tool.py) listens on [::] with IPV6_V6ONLY off; shimmed clients
# reach it over IPv6, over IPv4 (accepted as ::ffff:a.b.c.d) and from an
# AF_INET6 socket to the v4-mapped address ::ffff:server.  Each exchange is
# 1 MiB, every byte of its echo checked; the addresses the server's
# accept() and getpeername() report must be what plain TCP reports (the
# client's address, v4-mapped for IPv4), and every stream starts with a
# record (MPTCP).  A subflow takes the second path during the IPv6 run
# and during the v4-mapped one.
#
# Usage: compat-ipv6.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-ipv6 "$@"
require_pkg tcpdump tcpdump
TOOL=$IT_DIR/compat-tool.py
PORT=7300
PEERS=$IT_TMP/peers

heads_start v6 "$PORT"
start_server echo shim "$NS_B" "$PORT" "$PY" "$TOOL" --deadline 60 \
	echo-server --bind :: --port "$PORT" --peers "$PEERS"

# Usage: client LABEL HOST WANT_PEER
client()
{
	local out=$IT_TMP/$1.out peer

	: >"$PEERS.mark"
	# 16 MiB, so that the exchange lasts long enough (about a second)
	# for the join on path 1 to come up while it runs.
	if ! run_shim "$NS_A" "$PY" "$TOOL" --deadline 30 exchange \
		--host "$2" --port "$PORT" --bytes 16777216 >"$out" \
		2>"$IT_TMP/$1.err"; then
		check_fail "$1: $(excerpt "$IT_TMP/$1.err")"
		return
	fi
	peer=$(tail -1 "$PEERS")
	if [ "$peer" = "$3 $3" ]; then
		say "ok - $1: $(cat "$out"); the server saw $3"
	else
		check_fail "$1: the server's accept/getpeername gave '$peer'," \
			"plain TCP gives '$3 $3'"
	fi
}

compat_paths_start v6 6
client ipv6 "$B6" "$A6"
compat_paths_stop v6
client "ipv4-to-[::]" "$B4" "::ffff:$A4"
# A dual-stack client socket to an IPv4-mapped server joins from the
# IPv4 address of path 1.
compat_paths_start v4-mapped
client "v4-mapped" "::ffff:$B4" "::ffff:$A4"
compat_paths_stop v4-mapped
compat_framed v6 "$PORT"
it_finish
