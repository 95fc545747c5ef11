#!/bin/bash
#
# status.sh: the control socket and the mptcpshim command's status,
# counters and steering, during a transfer over two shaped paths with both
# ends shimmed (multipath-topo.bash; c1 20 Mbit/s, c2 10 Mbit/s).
#
#   - status PID --json shows one MPTCP connection with two established
#     subflows, one per path, with bytes on both; counters shows it;
#   - backup c2 on: the subflow on c2 says backup=1, the server sees
#     peer_backup=1 (MP_PRIO), and c2 then carries under a tenth of what
#     c1 carries while the transfer goes on;
#   - scheduler roundrobin shows in status, process and connection;
#   - addr del of c2's address closes its subflow and no join replaces
#     it; addr add brings one back, a backup as the rule remembered;
#   - another user (nobody) is refused: by the directory's mode, and, with
#     the modes loosened by hand, by SO_PEERCRED;
#   - a stale socket is removed by status; the process's own socket is
#     gone when it exits.
#
# Usage: status.sh path/to/libmptcpshim.so [path/to/mptcpshim]
# (or SHIM_CMD in the environment, as run-all.sh gives it).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multipath-topo.bash"

SIZE_MB=${MP_SIZE_MB:-32}
PORT=5901
MP_RATES="20 10"

mp_setup status 2 "$1"
CMD=$(find_shim_cmd "${2:-}") ||
	skip "the mptcpshim command is not built (give its path)"
require_cmd setpriv
make_random_file "$IT_TMP/data" "$SIZE_MB"
private_runtime_dir
CTL=$RUN/mptcpshim

# Run a python snippet on the JSON status of PID (stdin), print its
# output.  Usage: js PID 'EXPRESSION over s (the status object)'
js()
{
	"$CMD" status "$1" --json |
		"$PY" -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# The value of KEY of the subflow on interface IF of PID's only
# connection.  Usage: sf_field PID IF KEY
sf_field()
{
	js "$1" "[f['$3'] for c in s['connections'] for f in c['subflows'] \
if f['ifname'] == '$2' and f['state'] == 'established'][0]" 2>/dev/null
}

# The pid of the one program in namespace NS (bounded wait): $! is the
# pid of a subshell, while ip netns exec and env exec the program.
ns_pid()
{
	local p

	for _ in $(seq 100); do
		p=$(ip netns pids "$1" | head -1)
		[ -n "$p" ] && echo "$p" && return 0
		sleep 0.05
	done
	return 1
}

start_server srv shim "$NS_B" "$PORT" XDG_RUNTIME_DIR="$RUN" \
	"$PY" "$MPTOOL" --deadline 90 server --bind 0.0.0.0 --port "$PORT" \
	--mode sink --accepts "$IT_TMP/accepts"
SRV_PID=$(ns_pid "$NS_B") || fail "no server process"
run_shim "$NS_A" XDG_RUNTIME_DIR="$RUN" "$PY" "$MPTOOL" --deadline 80 \
	client --host "$SRV" --port "$PORT" --mode send \
	--file "$IT_TMP/data" >"$IT_TMP/client.out" 2>"$IT_TMP/client.err" &
CLIENT_JOB=$!
CLIENT=$(ns_pid "$NS_A") || fail "no client process"

# Both subflows up and carrying data (bounded wait).
ok=0
for _ in $(seq 100); do
	n=$(js "$CLIENT" "sum(1 for c in s['connections'] \
for f in c['subflows'] if f['state'] == 'established' and f['bytes_out'] > 0)" \
		2>/dev/null)
	[ "${n:-0}" -ge 2 ] && ok=1 && break
	sleep 0.1
done
[ "$ok" = 1 ] || fail "status never showed two subflows carrying data:" \
	"$("$CMD" status "$CLIENT" 2>&1 | head -5)"
"$CMD" status "$CLIENT" | sed 's/^/  /'

# The directory and socket modes keep other users out.
[ "$(stat -c %a "$CTL")" = 700 ] ||
	check_fail "the control directory has mode $(stat -c %a "$CTL")"
[ "$(stat -c %a "$CTL/$CLIENT.sock")" = 600 ] ||
	check_fail "the socket has mode $(stat -c %a "$CTL/$CLIENT.sock")"

# One connection, MPTCP, two established subflows on c1 and c2.
got=$(js "$CLIENT" "len(s['connections']), s['connections'][0]['mode'], \
s['connections'][0]['state'], sorted(f['ifname'] for f in \
s['connections'][0]['subflows'] if f['state'] == 'established'), \
s['connections'][0]['bytes_out'] > 0")
say "status: $got"
[ "$got" = "1 mptcp established ['c1', 'c2'] True" ] ||
	check_fail "status shows '$got', wanted one established MPTCP" \
		"connection with subflows on c1 and c2 and bytes out"
rtt=$(sf_field "$CLIENT" c1 rtt_us)
[ "${rtt:-0}" -gt 0 ] || check_fail "no RTT for the c1 subflow: '$rtt'"

# The counters show the connection, on both ends.
got=$("$CMD" counters "$CLIENT" --json | "$PY" -c "import json,sys; \
c=json.load(sys.stdin)['counters']; print(c['mptcp_client'], \
c['join_opened'] >= 1, c['bytes_out'] > 0)")
[ "$got" = "1 True True" ] ||
	check_fail "client counters: '$got' (mptcp_client, joins, bytes)"
got=$("$CMD" counters "$SRV_PID" | grep -c '^counter mptcp_server=1$')
[ "$got" = 1 ] || check_fail "server counters do not show its connection"

# Steer c2 to backup: visible on both ends, and traffic leaves c2.
"$CMD" backup "$CLIENT" c2 on | grep -q 'subflows=1' ||
	check_fail "backup c2 on did not change one subflow"
sleep 0.5
[ "$(sf_field "$CLIENT" c2 backup)" = 1 ] ||
	check_fail "status does not show the c2 subflow as backup"
[ "$(js "$SRV_PID" "sum(f['peer_backup'] for c in s['connections'] \
for f in c['subflows'])")" = 1 ] ||
	check_fail "the server did not see MP_PRIO for the c2 subflow"
a0=$(sf_field "$CLIENT" c1 bytes_out)
b0=$(sf_field "$CLIENT" c2 bytes_out)
sleep 2
a1=$(sf_field "$CLIENT" c1 bytes_out)
b1=$(sf_field "$CLIENT" c2 bytes_out)
say "in 2 s as backup: c1 carried $((a1 - a0)), c2 $((b1 - b0)) bytes"
[ $((a1 - a0)) -gt 1000000 ] ||
	check_fail "c1 carried only $((a1 - a0)) bytes in 2 s"
[ $(((b1 - b0) * 10)) -lt $((a1 - a0)) ] ||
	check_fail "c2 carried $((b1 - b0)) bytes as backup (c1: $((a1 - a0)))"

# Switch the scheduler: the process and its connection show it.
"$CMD" scheduler "$CLIENT" roundrobin | grep -q 'conns=1' ||
	check_fail "scheduler roundrobin did not reach the connection"
got=$(js "$CLIENT" "s['scheduler'], s['connections'][0]['scheduler']")
[ "$got" = "roundrobin roundrobin" ] ||
	check_fail "after scheduler roundrobin, status shows '$got'"

# Withdraw c2's address: its subflow goes and stays gone ...
"$CMD" addr "$CLIENT" del 10.20.2.1 | grep -q 'subflows=1' ||
	check_fail "addr del did not close the c2 subflow"
sleep 1.5
[ -z "$(sf_field "$CLIENT" c2 num)" ] ||
	check_fail "a subflow on c2 is established after addr del"
# ... until it is allowed again: a new one, backup as remembered.
"$CMD" addr "$CLIENT" add 10.20.2.1 >/dev/null ||
	check_fail "addr add failed"
for _ in $(seq 50); do
	[ -n "$(sf_field "$CLIENT" c2 num)" ] && break
	sleep 0.1
done
got=$(sf_field "$CLIENT" c2 backup)
[ "$got" = 1 ] ||
	check_fail "after addr add, the c2 subflow has backup='$got'" \
		"(wanted a new one, backup as remembered)"

# Another user: the directory keeps nobody out ...
cp "$CMD" "$IT_TMP/mptcpshim" && chmod 755 "$IT_TMP/mptcpshim"
as_nobody()
{
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		env XDG_RUNTIME_DIR="$RUN" "$IT_TMP/mptcpshim" "$@"
}
if as_nobody status "$CLIENT" >"$IT_TMP/nobody.out" 2>&1; then
	check_fail "nobody could read the status:" \
		"$(head -2 "$IT_TMP/nobody.out")"
fi
# ... and with the modes loosened by hand, SO_PEERCRED does.
chmod 711 "$IT_TMP" "$RUN" "$CTL"
chmod 666 "$CTL/$CLIENT.sock"
refused_before=$("$CMD" counters "$CLIENT" |
	sed -n 's/^counter control_refused=//p')
if as_nobody status "$CLIENT" >"$IT_TMP/nobody.out" 2>&1; then
	check_fail "nobody read the status through loosened modes"
fi
grep -q "not the process's user" "$IT_TMP/nobody.out" ||
	check_fail "nobody was not refused by the process:" \
		"$(head -2 "$IT_TMP/nobody.out")"
refused=$("$CMD" counters "$CLIENT" | sed -n 's/^counter control_refused=//p')
[ "$refused" -eq $((refused_before + 1)) ] ||
	check_fail "control_refused went from $refused_before to $refused"
chmod 700 "$IT_TMP" "$RUN" "$CTL"

# A socket whose process is gone is removed by status.
touch "$CTL/999999999.sock"
"$CMD" status >/dev/null
[ ! -e "$CTL/999999999.sock" ] ||
	check_fail "status left the stale socket of a gone process"

wait_pid "$CLIENT_JOB" 80
rc=$?
[ "$rc" -eq 0 ] || check_fail "transfer failed: $(excerpt "$IT_TMP/client.err")"
say "client: $(cat "$IT_TMP/client.out")"
[ ! -e "$CTL/$CLIENT.sock" ] ||
	check_fail "the client's socket is still there after it exited"
[ -e "$CTL/$SRV_PID.sock" ] ||
	check_fail "the server's socket is gone while it runs"
stop_pid "$SERVER_PID"
it_finish
