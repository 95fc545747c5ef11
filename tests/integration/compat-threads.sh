#!/bin/bash
#
# compat-threads.sh: 32 threads of one shimmed python3 process start
# together (a barrier), each connects at the same moment, sends its own
# pattern of its own length (256 KiB plus a few KiB per thread), half-
# closes and checks every byte of the echo from a shimmed selectors echo
# server (compat-tool.py).  Both ends shimmed, over two emulated paths;
# the run is done three times.  Proves that connect, send, recv and
# shutdown are safe when many threads call them at once.
#
# Usage: compat-threads.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-threads "$@"
TOOL=$IT_DIR/compat-tool.py
PORT=7100

start_server echo shim "$NS_B" "$PORT" "$PY" "$TOOL" --deadline 90 \
	echo-server --bind "$B4" --port "$PORT"
compat_paths_start threads
for run in 1 2 3; do
	if run_shim "$NS_A" "$PY" "$TOOL" --deadline 30 threads --host "$B4" \
		--port "$PORT" --threads 32 --bytes 262144 \
		>"$IT_TMP/run$run.out" 2>"$IT_TMP/run$run.err"; then
		say "ok - run $run: $(cat "$IT_TMP/run$run.out")"
	else
		check_fail "run $run: $(excerpt "$IT_TMP/run$run.err")"
	fi
done
compat_paths_stop threads
it_finish
