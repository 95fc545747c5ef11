#!/bin/bash
#
# compat-iperf3-socat-ncat.sh: four everyday tools, unchanged, through the
# library, both ends shimmed, over two emulated paths.
#   - iperf3 (control and data connections, select, TCP_INFO), 3 s each
#     way (-R: the server sends): exit 0 and a nonzero rate (iperf3 does
#     not check content, and bytes still buffered when the time is up are
#     not received, so the byte counts are printed, not compared);
#   - python3 -m http.server and curl: a 20 MiB file, sha256 compared;
#   - socat: 20 MiB client to server and 20 MiB server to client (-u),
#     sha256 compared;
#   - ncat: the same both ways (--send-only / --recv-only);
#   - each exchange starts every stream with a record (MPTCP, checked on
#     the curl, socat and ncat ones), and a subflow takes the second path
#     during iperf3.
#
# Usage: compat-iperf3-socat-ncat.sh [path/to/libmptcpshim.so]
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-iperf3-socat-ncat "$@"
require_pkg iperf3 iperf3
require_pkg curl curl
require_pkg socat socat
require_pkg ncat ncat
require_pkg tcpdump tcpdump

make_random_file "$IT_TMP/data" 20

# iperf3; Usage: iperf PORT [-R]
iperf()
{
	local port=$1 label=iperf3${2:-} json sent rcvd

	json=$IT_TMP/$label.json
	start_server "$label" shim "$NS_B" "$port" \
		timeout 30 iperf3 -s -1 -B "$B4" -p "$port"
	run_shim "$NS_A" timeout 30 iperf3 -c "$B4" -p "$port" -t 3 -J \
		${2:+"$2"} >"$json" 2>"$IT_TMP/$label.err" ||
		check_fail "$label exited with $?: $(excerpt "$IT_TMP/$label.err")"
	wait_pid "$SERVER_PID" 10 >/dev/null 2>&1
	read -r sent rcvd rate <<<"$("$PY" -c '
import json, sys
e = json.load(open(sys.argv[1]))["end"]
print(e["sum_sent"]["bytes"], e["sum_received"]["bytes"],
      int(e["sum_received"]["bits_per_second"] / 1e6))' "$json" 2>&1)"
	if [ -z "$rate" ] || [ "$rate" -le 0 ]; then
		check_fail "$label: sent=$sent received=$rcvd rate=$rate" \
			"$(grep -m1 '"error"' "$json")"
	else
		say "ok - $label: $rate Mbit/s ($sent bytes sent, $rcvd received)"
	fi
}

# Usage: check_copy LABEL OUTPUT
check_copy()
{
	if same_sha256 "$IT_TMP/data" "$2"; then
		say "ok - $1: 20 MiB, sha256 matches"
	else
		check_fail "$1: $(describe_diff "$IT_TMP/data" "$2")"
	fi
	rm -f "$2"
}

compat_paths_start iperf3
iperf 5201
iperf 5202 -R
compat_paths_stop iperf3

# python3 http.server and curl
heads_start http 8000
start_server http shim "$NS_B" 8000 "$PY" -m http.server 8000 \
	--bind "$B4" --directory "$IT_TMP"
run_shim "$NS_A" timeout 30 curl -sS --fail -o "$IT_TMP/http.out" \
	"http://$B4:8000/data" 2>"$IT_TMP/curl.err" ||
	check_fail "curl exited with $?: $(excerpt "$IT_TMP/curl.err")"
stop_pid "$SERVER_PID"
compat_framed http 8000
check_copy "http.server + curl" "$IT_TMP/http.out"

# socat, client to server, then server to client
heads_start socat 8010
start_server socat-up shim "$NS_B" 8010 timeout 30 socat -u \
	"TCP-LISTEN:8010,bind=$B4,reuseaddr" "CREATE:$IT_TMP/socat-up.out"
run_shim "$NS_A" timeout 30 socat -u "FILE:$IT_TMP/data" \
	"TCP:$B4:8010" 2>"$IT_TMP/socat-up.err" ||
	check_fail "socat up exited with $?: $(excerpt "$IT_TMP/socat-up.err")"
wait_pid "$SERVER_PID" 20 || check_fail "socat up: the server exited with $?"
start_server socat-down shim "$NS_B" 8010 timeout 30 socat -u \
	"FILE:$IT_TMP/data" "TCP-LISTEN:8010,bind=$B4,reuseaddr"
run_shim "$NS_A" timeout 30 socat -u "TCP:$B4:8010" \
	"CREATE:$IT_TMP/socat-down.out" 2>"$IT_TMP/socat-down.err" ||
	check_fail "socat down exited with $?:" \
		"$(excerpt "$IT_TMP/socat-down.err")"
wait_pid "$SERVER_PID" 20 || check_fail "socat down: the server exited with $?"
compat_framed socat 8010
check_copy "socat client to server" "$IT_TMP/socat-up.out"
check_copy "socat server to client" "$IT_TMP/socat-down.out"

# ncat, the same
heads_start ncat 8020
run_shim "$NS_B" timeout 30 ncat -l --recv-only "$B4" 8020 \
	>"$IT_TMP/ncat-up.out" 2>"$IT_TMP/ncat-up-srv.err" &
SERVER_PID=$!
wait_listen "$NS_B" 8020 "$SERVER_PID" || fail "ncat -l does not listen"
run_shim "$NS_A" timeout 30 ncat --send-only "$B4" 8020 \
	<"$IT_TMP/data" 2>"$IT_TMP/ncat-up.err" ||
	check_fail "ncat up exited with $?: $(excerpt "$IT_TMP/ncat-up.err")"
wait_pid "$SERVER_PID" 20 || check_fail "ncat up: the server exited with $?"
run_shim "$NS_B" timeout 30 ncat -l --send-only "$B4" 8020 \
	<"$IT_TMP/data" 2>"$IT_TMP/ncat-down-srv.err" &
SERVER_PID=$!
wait_listen "$NS_B" 8020 "$SERVER_PID" || fail "ncat -l does not listen"
run_shim "$NS_A" timeout 30 ncat --recv-only "$B4" 8020 \
	>"$IT_TMP/ncat-down.out" 2>"$IT_TMP/ncat-down.err" ||
	check_fail "ncat down exited with $?: $(excerpt "$IT_TMP/ncat-down.err")"
wait_pid "$SERVER_PID" 20 || check_fail "ncat down: the server exited with $?"
compat_framed ncat 8020
check_copy "ncat client to server" "$IT_TMP/ncat-up.out"
check_copy "ncat server to client" "$IT_TMP/ncat-down.out"
it_finish
