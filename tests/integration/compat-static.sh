#!/bin/bash
#
# compat-static.sh: a statically linked program under LD_PRELOAD is left
# alone (the dynamic loader never runs, so the library cannot load) and
# talks plain TCP, unharmed, to a shimmed server, which must fall back.
# The client is compat-static.c, linked with cc -static here; busybox nc,
# when a static busybox is installed, is a second client.  Each sends
# 1 MiB to a shimmed echo server over the two-path bed, and every byte of
# the echo is checked; the streams must not start with a record (plain TCP
# on the wire).
#
# Usage: compat-static.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-static "$@"
require_pkg tcpdump tcpdump
TOOL=$IT_DIR/compat-tool.py
PORT=7600
compat_cc compat-static -static
file "$IT_TMP/compat-static" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$IT_TMP/compat-static" 2>&1 | grep -q 'not a dynamic' ||
	skip "cc -static did not give a static binary"
make_random_file "$IT_TMP/data" 1

start_server echo shim "$NS_B" "$PORT" "$PY" "$TOOL" --deadline 60 \
	echo-server --bind "$B4" --port "$PORT"
heads_start static "$PORT"
run_shim "$NS_A" timeout 30 "$IT_TMP/compat-static" "$B4" "$PORT" \
	"$IT_TMP/data" "$IT_TMP/static.out" 2>"$IT_TMP/static.err" ||
	check_fail "the static client exited with $?:" \
		"$(excerpt "$IT_TMP/static.err")"
busybox=$(command -v busybox)
if [ -n "$busybox" ] && ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
	run_shim "$NS_A" timeout 30 "$busybox" nc "$B4" "$PORT" \
		<"$IT_TMP/data" >"$IT_TMP/busybox.out" 2>"$IT_TMP/busybox.err" ||
		check_fail "busybox nc exited with $?:" \
			"$(excerpt "$IT_TMP/busybox.err")"
else
	say "no static busybox: only the cc -static client runs"
	busybox=
fi
if heads_framed static "$PORT"; then
	check_fail "a static client's connection carried records: $FRAMED_MSG"
else
	say "plain TCP on the wire ($FRAMED_MSG)"
fi
for f in static ${busybox:+busybox}; do
	if same_sha256 "$IT_TMP/data" "$IT_TMP/$f.out"; then
		say "ok - $f client: 1 MiB echoed intact by the shimmed server"
	else
		check_fail "$f: $(describe_diff "$IT_TMP/data" "$IT_TMP/$f.out")"
	fi
done
it_finish
