#!/bin/bash
#
# compat-fds.sh: descriptor operations on converted connections, by a
# small C client (compat-fds.c, compiled here with cc), shimmed, against a
# shimmed echo server, over two emulated paths: dup2 over a converted
# descriptor, closing two of three duplicates (the connection lives on),
# F_DUPFD_CLOEXEC, TCP_NODELAY read back as the program set it (off, then
# on), dup2 to 1500 after raising RLIMIT_NOFILE (getpeername and
# TCP_NODELAY answered there), and a socket moved to 1600 before its
# connect.  After each, 256 KiB go through the resulting descriptor and
# every byte of the echo is checked.  The same client runs unshimmed
# first, to prove the helper itself.  The shimmed run's streams are
# checked to be MPTCP on the wire; which paths its subflows took is not
# checked: each exchange is too short for a join to come up reliably, and
# the paths are compat-ipv6.sh's and the others' business, not this one's.
#
# Usage: compat-fds.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-fds "$@"
TOOL=$IT_DIR/compat-tool.py
compat_cc compat-fds

# Usage: fds MODE PORT
fds()
{
	start_server "echo-$1" "$1" "$NS_B" "$2" "$PY" "$TOOL" --deadline 60 \
		echo-server --bind "$B4" --port "$2"
	run_as "$1" "$NS_A" timeout 60 "$IT_TMP/compat-fds" "$B4" "$2" \
		>"$IT_TMP/fds-$1.out" 2>&1
	local rc=$?
	stop_pid "$SERVER_PID"
	sed "s/^/$1: /" "$IT_TMP/fds-$1.out" | while read -r line; do
		say "$line"
	done
	[ "$rc" -eq 0 ] || check_fail "$1: compat-fds exited with $rc:" \
		"$(grep -v '^ok' "$IT_TMP/fds-$1.out" | tr '\n' ' ')"
}

fds plain 7500
heads_start fds 7501
fds shim 7501
compat_framed fds 7501
it_finish
