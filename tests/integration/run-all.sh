#!/bin/bash
#
# run-all.sh: run every integration test of mptcpshim against one build
# of the library, print one line per test (PASS, FAIL or SKIP, and its
# seconds), and exit 1 if any test failed.
#
# Usage: run-all.sh path/to/libmptcpshim.so [path/to/mptcpshim]
#
# The library is handed to each test in SHIMLIB; the mptcpshim command,
# when given, in SHIM_CMD.  Each test's output goes to a log
# directory (IT_LOG_DIR, or a fresh one under /tmp) whose path is printed;
# a failing test's reasons are also printed under its line.  IT_ONLY may
# name a subset ("socat errors").  IT_PRELOAD_FIRST (a sanitized library)
# and IT_VALGRIND=1 reach every test (lib.sh).  Each test is stopped after
# IT_TEST_LIMIT seconds (default 120); passing, the suite takes about a
# minute.
#
# Exit: 0 all passed or skipped, 1 some test failed, 2 usage error.

HERE=$(cd "$(dirname "$0")" && pwd)
# Every script beside this one is a test, but the helpers.
TESTS=$(cd "$HERE" && ls ./*.sh | sed 's#^\./##; s#\.sh$##' |
	grep -vx -e lib -e run-all)

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
	echo "usage: $0 path/to/libmptcpshim.so [path/to/mptcpshim]" >&2
	exit 2
fi
SHIMLIB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export SHIMLIB
if [ -n "${2:-}" ]; then
	SHIM_CMD=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
	export SHIM_CMD
fi
LOG_DIR=${IT_LOG_DIR:-$(mktemp -d /tmp/mptcpshim-it-logs.XXXXXX)}
mkdir -p "$LOG_DIR"
LIMIT=${IT_TEST_LIMIT:-120}

echo "library: $SHIMLIB"
[ -n "${IT_PRELOAD_FIRST:-}" ] && echo "preloaded first: $IT_PRELOAD_FIRST"
[ -n "${IT_VALGRIND:-}" ] && echo "shimmed commands run under valgrind"
echo "logs:    $LOG_DIR"

failed=0
suite_start=$(date +%s%N)
for name in ${IT_ONLY:-$TESTS}; do
	log=$LOG_DIR/$name.log
	start=$(date +%s%N)
	timeout -k 15 "$LIMIT" "$HERE/$name.sh" "$SHIMLIB" >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	secs=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
	case $rc in
	0) verdict=PASS ;;
	77) verdict=SKIP ;;
	124 | 137) verdict=FAIL ;;
	*) verdict=FAIL ;;
	esac
	printf '%-4s  %-12s %6ss\n' "$verdict" "$name" "$secs"
	case $verdict in
	FAIL)
		failed=1
		[ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] &&
			echo "      stopped after ${LIMIT}s"
		# report| lines: a sanitizer's or valgrind's (lib.sh).
		grep -E 'FAIL:|^report\| ' "$log" | head -150 |
			sed 's/^/      /'
		;;
	SKIP)
		grep -E 'SKIP:' "$log" | sed 's/^/      /'
		;;
	esac
done
ms=$((($(date +%s%N) - suite_start) / 1000000))
echo "total: $((ms / 1000))s"
exit "$failed"
