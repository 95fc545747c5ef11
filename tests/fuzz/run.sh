#!/bin/sh
# run.sh: build the libFuzzer targets with clang-14 and run each for a while.
#
#   tests/fuzz/run.sh [seconds]     (default 20 per target)
#
# Builds straight from the sources (no Autotools) into $FUZZ_BUILD
# (default /tmp/mptcpshim-fuzz), runs fuzz-wire and fuzz-conn one after the
# other, one process each, on copies of the seed corpus.  Exits 77 (skip) when
# clang-14 or its fuzzer runtime is missing and cannot be installed, 1 when
# a target crashes (the reproducer is left in the build directory).
set -eu

secs=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_BUILD:-/tmp/mptcpshim-fuzz}
cc=clang-14

have_fuzzer() {
	command -v $cc >/dev/null 2>&1 &&
		echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' |
			$cc -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null
}

if ! have_fuzzer; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt-get install -y -q clang-14 libclang-rt-14-dev >/dev/null 2>&1 ||
			apt-get install -y -q clang-14 >/dev/null 2>&1 || true
	fi
	if ! have_fuzzer; then
		echo "run.sh: clang-14 with libFuzzer is not available: skipped"
		exit 77
	fi
fi

mkdir -p "$out"
# The sources expect configure's header; the only thing they need from it
# here is what AC_USE_SYSTEM_EXTENSIONS gives them.
echo "#define _GNU_SOURCE 1" >"$out/autoconfig.h"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-I$out -I$top/include -I$top/src"
wire="$top/src/wire.c"
core="$wire $top/src/crypto.c $top/src/token.c $top/src/reasm.c
	$top/src/seq.c $top/src/conn.c $top/src/conn-mp.c $top/src/sched.c"

# shellcheck disable=SC2086
$cc $flags -o "$out/fuzz-wire" "$here/fuzz-wire.c" $wire
# shellcheck disable=SC2086
$cc $flags -o "$out/fuzz-conn" "$here/fuzz-conn.c" $core -lcrypto -lpthread

status=0
for t in wire conn; do
	corpus="$out/corpus-$t"
	mkdir -p "$corpus"
	cp "$here/corpus/$t"/* "$corpus/" 2>/dev/null || true
	echo "run.sh: fuzz-$t for ${secs}s"
	if ! (cd "$out" && ./fuzz-$t -max_total_time="$secs" \
		-max_len=8192 -print_final_stats=1 "$corpus" \
		>"$out/fuzz-$t.log" 2>&1); then
		echo "run.sh: fuzz-$t found a crash; see $out/fuzz-$t.log"
		tail -40 "$out/fuzz-$t.log"
		status=1
	fi
	grep -E '^stat::number_of_executed_units|^Done' "$out/fuzz-$t.log" || true
done
exit $status
