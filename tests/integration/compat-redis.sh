#!/bin/bash
#
# compat-redis.sh: redis-server and its clients, unchanged, through the
# library, both ends shimmed, over two emulated paths.
#   - redis-benchmark, 50 clients, -q, SET GET INCR LPUSH LRANGE_100 MSET,
#     without and with pipelining (-P 16): every test must report its rate
#     and no error may appear; the rates are printed beside plain TCP's
#     (both ends unshimmed, same run; nothing is asserted on speed);
#   - redis-cli --pipe sends 20000 SETs and must report 20000 replies and
#     0 errors, then DBSIZE and a sample of GETs are compared;
#   - a 1 MiB value (SET from stdin, GET back) compared byte for byte;
#   - every stream of the 1 MiB exchange starts with a record (MPTCP, not a
#     fallback), and a subflow takes the second path during the benchmark.
#
# Usage: compat-redis.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-redis "$@"
require_pkg redis-server redis-server
require_pkg redis-benchmark redis-tools
require_pkg redis-cli redis-tools
require_pkg tcpdump tcpdump

PORT=6390
TESTS=set,get,incr,lpush,lrange_100,mset

cli()
{
	run_shim "$NS_A" timeout 30 redis-cli -h "$B4" -p "$PORT" "$@"
}

start_server redis shim "$NS_B" "$PORT" redis-server --port "$PORT" \
	--bind "$B4" --save "" --appendonly no --protected-mode no \
	--dir "$IT_TMP" --logfile "$IT_TMP/redis.log"

# Usage: benchmark MODE LABEL [ARGS...]
benchmark()
{
	local mode=$1 label="$2 ($1)" out=$IT_TMP/bench-$1-${2// /}.out n

	shift 2
	run_as "$mode" "$NS_A" timeout 60 redis-benchmark -h "$B4" -p "$PORT" \
		-c 50 -q -t "$TESTS" "$@" >"$out" 2>&1 ||
		check_fail "redis-benchmark $label exited with $?:" \
			"$(excerpt "$out")"
	# -q rewrites its progress line with \r; keep the final lines
	tr '\r' '\n' <"$out" | grep 'requests per second' >"$out.rates"
	n=$(wc -l <"$out.rates")
	[ "$n" -eq 7 ] ||
		check_fail "redis-benchmark $label: $n of 7 tests reported" \
			"a rate: $(excerpt "$out")"
	grep -qiE 'error|closed|refused|reset' "$out" &&
		check_fail "redis-benchmark $label: $(grep -iE \
			'error|closed|refused|reset' "$out" | head -3 | tr '\n' ' ')"
	say "redis-benchmark $label:" \
		"$(sed 's/ requests per second.*//; s/ *$//' "$out.rates" |
			tr '\n' ';' | sed 's/;$//; s/;/, /g') requests/s"
}

compat_paths_start bench
benchmark shim "-P 1" -n 5000
benchmark shim "-P 16" -n 50000 -P 16
compat_paths_stop bench
# The same against a plain server from a plain client, for comparison.
start_server redis-plain plain "$NS_B" $((PORT + 1)) redis-server \
	--port $((PORT + 1)) --bind "$B4" --save "" --appendonly no \
	--protected-mode no --dir "$IT_TMP" --logfile "$IT_TMP/redis-plain.log"
PORT=$((PORT + 1)) benchmark plain "-P 1" -n 5000
PORT=$((PORT + 1)) benchmark plain "-P 16" -n 50000 -P 16
stop_pid "$SERVER_PID"

# 20000 SETs through one pipelined connection; every reply counted.
"$PY" -c '
import sys
out = sys.stdout.buffer
for i in range(20000):
    k, v = b"key:%d" % i, b"value-%d-" % i * 7
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
              % (len(k), k, len(v), v))
' >"$IT_TMP/pipe.resp"
cli FLUSHALL >/dev/null
cli --pipe <"$IT_TMP/pipe.resp" >"$IT_TMP/pipe.out" 2>&1
grep -q 'errors: 0, replies: 20000' "$IT_TMP/pipe.out" ||
	check_fail "redis-cli --pipe: $(excerpt "$IT_TMP/pipe.out")"
[ "$(cli DBSIZE)" = 20000 ] || check_fail "DBSIZE is $(cli DBSIZE), not 20000"
for i in 0 7777 19999; do
	want=$(printf "value-$i-%.0s" 1 2 3 4 5 6 7)
	[ "$(cli GET "key:$i")" = "$want" ] || check_fail "GET key:$i differs"
done
say "ok - redis-cli --pipe: 20000 replies, 0 errors, DBSIZE and GETs match"

# A 1 MiB value, there and back (hex text: redis-cli -x takes stdin whole).
head -c 524288 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$IT_TMP/value"
heads_start big "$PORT"
cli -x SET big <"$IT_TMP/value" >"$IT_TMP/set.out" 2>&1
cli --raw GET big >"$IT_TMP/get.out" 2>&1
compat_framed big "$PORT"
head -c "$(stat -c %s "$IT_TMP/value")" "$IT_TMP/get.out" >"$IT_TMP/got"
if grep -q OK "$IT_TMP/set.out" && same_sha256 "$IT_TMP/value" "$IT_TMP/got"
then
	say "ok - a 1 MiB value SET and GET back intact"
else
	check_fail "1 MiB value: SET said '$(excerpt "$IT_TMP/set.out")'," \
		"GET $(describe_diff "$IT_TMP/value" "$IT_TMP/got")"
fi
it_finish
