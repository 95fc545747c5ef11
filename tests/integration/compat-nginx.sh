#!/bin/bash
#
# compat-nginx.sh: nginx, unchanged, serves through the library.  A master
# and two workers (epoll, sendfile on, accept in the workers: listeners
# inherited across fork), run as root in the server namespace with
# "daemon off" and a configuration of their own in a temporary directory.
# Both ends shimmed, over two emulated paths:
#   - curl downloads a 20 MiB random file; its sha256 must match, every
#     stream must start with a record (MPTCP, not a fallback), and a
#     subflow must take the second path;
#   - wrk, 100 connections for 10 s, checks every reply (a Lua hook: status
#     200 and the exact body) and must see no socket error and no non-2xx;
#     the same run with neither end shimmed gives plain TCP's request rate,
#     printed beside the shim's (nothing is asserted on speed).
#
# Usage: compat-nginx.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-nginx "$@"
require_pkg nginx nginx
require_pkg wrk wrk
require_pkg curl curl
require_pkg tcpdump tcpdump

WWW=$IT_TMP/www
mkdir -p "$WWW"
make_random_file "$WWW/big.bin" 20
head -c 2048 /dev/urandom | base64 -w 76 >"$WWW/small.txt"

# Write an nginx configuration listening on B4:PORT.
# Usage: nginx_conf PORT FILE
nginx_conf()
{
	local d=$IT_TMP/nginx-$1

	mkdir -p "$d"
	cat >"$2" <<CONF
user root;
daemon off;
master_process on;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { use epoll; worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	types { application/octet-stream bin; text/plain txt; }
	server {
		listen $B4:$1;
		root $WWW;
	}
}
CONF
}

# wrk's Lua hook: every reply must be 200 with the exact body.
cat >"$IT_TMP/check.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
	local f = assert(io.open(args[1], "rb"))
	expected = f:read("*a")
	f:close()
	good, bad = 0, 0
end
function response(status, headers, body)
	if status == 200 and body == expected then
		good = good + 1
	else
		bad = bad + 1
	end
end
function done(summary, latency, requests)
	local g, b = 0, 0
	for _, t in ipairs(threads) do
		g = g + t:get("good")
		b = b + t:get("bad")
	end
	io.write(string.format("checked: good=%d bad=%d\n", g, b))
end
LUA

# Run nginx (MODE) on PORT and wrk (MODE) against it; leaves RATE.
# Usage: bench MODE PORT
bench()
{
	local mode=$1 port=$2 out=$IT_TMP/wrk-$1.out good bad

	nginx_conf "$port" "$IT_TMP/nginx-$mode.conf"
	start_server "nginx-$mode" "$mode" "$NS_B" "$port" \
		nginx -p "$IT_TMP" -c "$IT_TMP/nginx-$mode.conf"
	[ "$mode" = shim ] && compat_paths_start wrk
	run_as "$mode" "$NS_A" timeout 40 wrk -t 2 -c 100 -d 10s \
		-s "$IT_TMP/check.lua" "http://$B4:$port/small.txt" \
		-- "$WWW/small.txt" >"$out" 2>&1 ||
		check_fail "wrk ($mode) exited with $?: $(excerpt "$out")"
	[ "$mode" = shim ] && compat_paths_stop wrk
	RATE=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
	good=$(sed -n 's/^checked: good=\([0-9]*\).*/\1/p' "$out")
	bad=$(sed -n 's/^checked: .*bad=\([0-9]*\).*/\1/p' "$out")
	grep -E 'Socket errors|Non-2xx' "$out" >/dev/null &&
		check_fail "wrk ($mode): $(grep -E 'Socket errors|Non-2xx' \
			"$out" | tr '\n' ' ')"
	[ -n "$good" ] && [ "$good" -gt 0 ] && [ "$bad" = 0 ] ||
		check_fail "wrk ($mode): replies good=${good:-?} bad=${bad:-?}"
	say "wrk $mode: ${RATE:-?} requests/s, $good replies checked, $bad bad"
	stop_pid "$SERVER_PID"
	wait_pid "$SERVER_PID" 10 >/dev/null 2>&1
}

# The big file, both ends shimmed.
nginx_conf 8100 "$IT_TMP/nginx-curl.conf"
heads_start curl 8100
start_server nginx-curl shim "$NS_B" 8100 \
	nginx -p "$IT_TMP" -c "$IT_TMP/nginx-curl.conf"
compat_paths_start curl
start=$(now_ms)
run_shim "$NS_A" timeout 60 curl -sS --fail -o "$IT_TMP/big.out" \
	"http://$B4:8100/big.bin" 2>"$IT_TMP/curl.err" ||
	check_fail "curl exited with $?: $(excerpt "$IT_TMP/curl.err")"
took=$(seconds_since "$start")
compat_paths_stop curl
workers=$(ps --ppid "$(pgrep -f "nginx-curl.conf" | head -1)" -o comm= |
	grep -c nginx)
stop_pid "$SERVER_PID"
compat_framed curl 8100
if same_sha256 "$WWW/big.bin" "$IT_TMP/big.out"; then
	say "ok - curl: 20 MiB, sha256 matches (${took}s, $workers workers)"
else
	check_fail "curl: $(describe_diff "$WWW/big.bin" "$IT_TMP/big.out")"
fi
rm -f "$IT_TMP/big.out"

bench plain 8101
plain_rate=$RATE
bench shim 8102
say "requests/s: shim ${RATE:-?}, plain TCP ${plain_rate:-?}" \
	"(100 connections, 10 s, same run)"
it_finish
