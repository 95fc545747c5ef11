#!/bin/bash
# dupcost.sh: the CPU cost of comparing duplicate data (bench/dupcost.c).
#
# Usage: bench/dupcost.sh [BUILD_DIR] [MIB]
#   BUILD_DIR  a configured build directory, for its autoconfig.h
#              (default: the first of _build-sec, _build under the tree)
#   MIB        program data sent, each byte twice (default 512)
#
# Builds dupcost.c with the core's sources twice, with -O2: as shipped,
# and with -DMPS_BENCH_NO_DUP_COMPARE, a switch for this benchmark only
# that skips the comparison of copies and the history it needs
# (src/conn.c).  Runs each RUNS times (default 3), keeps the fastest,
# and prints both and their ratio.  A benchmark, not a test: it always
# exits 0 once it has run.
set -eu

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/.." && pwd)
BUILD=${1:-}
MIB=${2:-512}
RUNS=${RUNS:-3}

if [ -z "$BUILD" ]; then
	for d in "$TOP/_build-sec" "$TOP/_build" "$TOP"; do
		[ -f "$d/autoconfig.h" ] && { BUILD=$d; break; }
	done
fi
[ -f "$BUILD/autoconfig.h" ] || {
	echo "dupcost: no autoconfig.h in ${BUILD:-any build dir}" >&2
	exit 1
}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/dupcost.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# Usage: build NAME [CFLAGS...]
build()
{
	local name=$1

	shift
	cc -O2 "$@" -o "$OUT/$name" "$BENCH/dupcost.c" \
		"$TOP"/src/{wire,crypto,token,seq,reasm,conn,conn-mp,sched}.c \
		-I"$TOP/include" -I"$TOP/src" -I"$BUILD" -lcrypto
}

# Prints the lowest ms_per_mib of RUNS runs of NAME.
best()
{
	local i v min=

	for i in $(seq "$RUNS"); do
		"$OUT/$1" "$MIB" >"$OUT/$1.$i"
		v=$(sed -n 's/.*ms_per_mib=\([0-9.]*\).*/\1/p' "$OUT/$1.$i")
		min=$(echo "${min:-$v} $v" |
			awk '{ print ($2 < $1) ? $2 : $1 }')
	done
	echo "$min"
}

build compare
build nocompare -DMPS_BENCH_NO_DUP_COMPARE
WITH=$(best compare)
WITHOUT=$(best nocompare)
echo "compare:    $(cat "$OUT/compare.1")"
echo "no compare: $(cat "$OUT/nocompare.1")"
echo "$WITH $WITHOUT" | awk '{
	printf "cpu ms per MiB: %.3f with the comparison, %.3f without; " \
	       "ratio %.2f\n", $1, $2, $1 / $2 }'
