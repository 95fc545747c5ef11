#!/bin/bash
#
# hostile-peer.sh: a peer that completes a valid MP_CAPABLE exchange with
# a shimmed server, then misbehaves, must not make the server process
# grow past its documented memory bound (libmptcpshim(7), SECURITY), nor
# disturb a well-behaved client, nor stop the server.
#
# The server is one process (a threaded sink in Python: reads to end of
# stream, answers the SHA-256 and length) under the library, with
# MPTCPSHIM_RCVBUF and MPTCPSHIM_SNDBUF of 256K.  The hostile client
# (hostile.c, built with cc against the core's sources) sends the MSS
# signal of negotiate.h, lets the core do the handshake and a first
# mapping, then, one connection per offence, all at once:
#
#   window     HP_N mappings beyond the advertised window    must be reset
#   hole       HP_N in-window mappings after a hole, then on  must be reset
#   malformed  2 records with an option length of 41          must be reset
#   oversized  2 MP_PRIO records with 65535 bytes of payload  must be reset
#   stall      8 mappings of 65535 bytes of which 1000 come   bounded
#   dup        2 floods of the same 60 KiB mapping            must be reset
#   addbad     2 floods of 100000 ADD_ADDR with a wrong HMAC  must be reset
#   addgood    2 floods of 100000 ADD_ADDR with a valid HMAC  must be reset
#   joins      HP_JOIN_CONNS connections, each opening 3 joins to the
#              announced join listener that never complete: no more
#              than 64 of them may get an answer in the whole process
#              (MPS_JL_MAX_HALF_OPEN), 2 per connection; once 64
#              are answered, the server's counters (mptcpshim counters,
#              when the command is built) must show the cap's refusals
#
# Each offender that sends data sends up to 32 MiB unless it is reset,
# HP_N x 2 x 32 MiB in all from window and hole alone: far above the
# bound, so a dropped window or reassembly limit fails the bound.  With
# no process cap on half-open joins, 2 x HP_JOIN_CONNS (68) joins would
# be answered.
#
# Meanwhile a shimmed client sends a file twice and checks the server's
# SHA-256.  The server's VmRSS is sampled every 0.2 s; the bound is
#   before + C x (B + 64 KiB) + 16 MiB
# with B the documented per-connection bound of conn.h for these buffers
# (mps_conn_mem_bound() must not exceed it), 64 KiB the runtime's own
# per-connection state, C the MPTCP connections the hostile client
# opens (not counting joins), and "before" the RSS after a first clean
# transfer.  After the offenders are gone the RSS must be back under
# before + 16 MiB.
#
# Usage: hostile-peer.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup hostile-peer "$@"
require_cmd cc

SRC=$(cd "$IT_DIR/../.." && pwd)
PORT=5790
HOLD=${HP_HOLD:-12}
HP_N=${HP_N:-4}
HP_JOIN_CONNS=${HP_JOIN_CONNS:-34}
CMD=$(find_shim_cmd "${2:-}") || CMD=""
private_runtime_dir
ALLOW_KB=$((16 * 1024))
BUF=262144

# The core's sources, with the build's autoconfig.h (next to the
# library, or one level up for libtool's .libs).
build_hostile()
{
	local dir inc=

	for dir in "$(dirname "$SHIMLIB")" "$(dirname "$SHIMLIB")/.." "$SRC"; do
		if [ -f "$dir/autoconfig.h" ]; then
			inc=$dir
			break
		fi
	done
	[ -n "$inc" ] || skip "no autoconfig.h near $SHIMLIB"
	cc -O2 -Wall -o "$IT_TMP/hostile" "$IT_DIR/hostile.c" \
		"$SRC"/src/{wire,crypto,token,seq,reasm,conn,conn-mp,sched}.c \
		-I"$SRC/include" -I"$SRC/src" -I"$inc" -lcrypto \
		2>"$IT_TMP/hostile.cc.err" ||
		fail "cannot compile hostile.c:" \
			"$(excerpt "$IT_TMP/hostile.cc.err")"
}

# A threaded sink in one process: every connection is read to its end
# and answered with "SHA256 LENGTH"; small reads keep Python's own
# memory small.
write_sink()
{
	cat >"$IT_TMP/sink.py" <<'EOF'
import hashlib, socket, socketserver, sys

class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        h, n = hashlib.sha256(), 0
        try:
            while True:
                b = self.request.recv(16384)
                if not b:
                    break
                h.update(b)
                n += len(b)
            self.request.sendall(("%s %d" % (h.hexdigest(), n)).encode())
        except OSError:
            pass

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

Server(("0.0.0.0", int(sys.argv[1])), Sink).serve_forever()
EOF
}

# The pid of the process listening on PORT in NS_B (SERVER_PID is the
# subshell that started it).
listener_pid()
{
	ip netns exec "$NS_B" ss -ltnpH "sport = :$PORT" |
		sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

rss_kb()
{
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# Sample the server's RSS into $IT_TMP/rss.max until the file stop exists.
sample_rss()
{
	local max=0 r

	while [ ! -e "$IT_TMP/rss.stop" ]; do
		r=$(rss_kb "$SRV")
		[ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
		echo "$max" >"$IT_TMP/rss.max"
		sleep 0.2
	done
}

good_client()
{
	run_shim "$NS_A" "$PY" "$IT_DIR/multipath-tool.py" --deadline 60 \
		client --host "$B4" --port "$PORT" --mode send \
		--file "$IT_TMP/data" >"$IT_TMP/good-$1.out" \
		2>"$IT_TMP/good-$1.err"
}

# Usage: offend MODE COUNT [N]: COUNT hostile connections in background.
offend()
{
	local mode=$1 count=$2 i

	for i in $(seq "$count"); do
		run_plain "$NS_A" "$IT_TMP/hostile" "$B4" "$PORT" "$mode" \
			"$HOLD" ${3:+"$3"} >"$IT_TMP/h-$mode-$i.out" \
			2>"$IT_TMP/h-$mode-$i.err" &
		HPIDS+=($!)
		CONNS=$((CONNS + 1))
	done
}

build_hostile
write_sink
make_random_file "$IT_TMP/data" 16
start_server sink shim "$NS_B" "$PORT" MPTCPSHIM_RCVBUF=$BUF \
	MPTCPSHIM_SNDBUF=$BUF "$PY" "$IT_TMP/sink.py" "$PORT"

good_client warm || fail "the first clean transfer failed:" \
	"$(excerpt "$IT_TMP/good-warm.err")"
SRV=$(listener_pid)
[ -n "$SRV" ] || fail "cannot find the server's pid"
say "server: pid $SRV, $(tr '\0' ' ' <"/proc/$SRV/cmdline" | cut -c1-60)"
BEFORE=$(rss_kb "$SRV")
# The bound of conn.h, from its documented terms (so that a build whose
# limits grew fails it): snd_buf + 2 R + 64 KiB of reassembly slack +
# MPS_CONN_HIST + 8 staged payloads, and 64 KiB for the fixed part.
DOC_CONN=$((3 * BUF + 65536 + 262144 + 8 * 65535 + 65536))
PER_CONN=$("$IT_TMP/hostile" bound $BUF $BUF)
say "server RSS before: ${BEFORE} kB; mps_conn_mem_bound: $PER_CONN" \
	"bytes (documented: $DOC_CONN at most)"
[ "$PER_CONN" -le "$DOC_CONN" ] ||
	check_fail "mps_conn_mem_bound() $PER_CONN is over the documented" \
		"$DOC_CONN"

HPIDS=()
CONNS=0
sample_rss &
SAMPLER=$!
offend window "$HP_N"
offend hole "$HP_N"
offend malformed 2
offend oversized 2
offend stall 8
offend dup 2
offend addbad 2
offend addgood 2
offend joins "$HP_JOIN_CONNS" 3
good_client 1
GOOD1=$?
good_client 2
GOOD2=$?
for p in "${HPIDS[@]}"; do
	wait_pid "$p" $((HOLD + 60)) || true
done
touch "$IT_TMP/rss.stop"
wait "$SAMPLER"
DURING=$(cat "$IT_TMP/rss.max")
sleep 1
AFTER=$(rss_kb "$SRV")
BOUND=$((BEFORE + CONNS * (DOC_CONN / 1024 + 64) + ALLOW_KB))
say "server RSS: before ${BEFORE} kB, peak during ${DURING} kB," \
	"after ${AFTER:-gone} kB; bound ${BOUND} kB for $CONNS connections"

kill -0 "$SRV" 2>/dev/null || check_fail "the server process died"
if it_sanitized; then
	# ASan's shadow memory and its quarantine of freed blocks count in
	# RSS, so the bounds say nothing there.
	say "RSS bounds not checked under ASan"
else
	[ "$DURING" -le "$BOUND" ] ||
		check_fail "peak RSS ${DURING} kB is over the bound ${BOUND} kB"
	if [ -z "$AFTER" ] || [ "$AFTER" -gt $((BEFORE + ALLOW_KB)) ]; then
		check_fail "RSS after the offenders ${AFTER:-?} kB is over" \
			"$((BEFORE + ALLOW_KB)) kB"
	fi
fi
if [ "$GOOD1" -ne 0 ] || [ "$GOOD2" -ne 0 ]; then
	check_fail "the well-behaved client failed:" \
		"$(excerpt "$IT_TMP/good-1.err")" \
		"$(excerpt "$IT_TMP/good-2.err")"
fi

for mode in window hole malformed oversized stall dup addbad addgood; do
	res=$(cat "$IT_TMP"/h-$mode-*.out | sed -n 's/^result=//p' |
		sort | uniq -c | tr -s ' \n' ' ')
	say "$mode: ${res:-no result} $(cat "$IT_TMP"/h-$mode-*.err |
		head -1)"
	case $mode in
	window | hole | malformed | oversized | dup | addbad | addgood)
		if grep -q '^result=open' "$IT_TMP"/h-$mode-*.out ||
			! grep -q '^result=reset' "$IT_TMP"/h-$mode-*.out; then
			check_fail "$mode: an offender was not reset"
		fi
		;;
	*)
		grep -q '^result=' "$IT_TMP"/h-$mode-*.out ||
			check_fail "$mode: the hostile client did not finish"
		;;
	esac
done

read -r ANSWERED PER_MAX < <(cat "$IT_TMP"/h-joins-*.out |
	sed -n 's/.*synack=\([0-9]*\).*/\1/p' |
	awk '{ s += $1; if ($1 > m) m = $1 } END { print s + 0, m + 0 }')
say "joins: $ANSWERED answered of $((HP_JOIN_CONNS * 3))," \
	"at most $PER_MAX per connection"
[ "$ANSWERED" -le 64 ] ||
	check_fail "$ANSWERED half-open joins were answered, over 64"
[ "$PER_MAX" -le 2 ] ||
	check_fail "$PER_MAX half-open joins on one connection, over 2"
[ "$ANSWERED" -gt 0 ] ||
	check_fail "no join was answered: the test saw no join"

# The process cap was reached (all 64 answered and held open), so the
# joins that came after were refused by it, and its counter says so.  A
# slow server (sanitizers) may answer fewer in time and never reach it.
if [ -n "$CMD" ] && [ "$ANSWERED" -ge 64 ]; then
	REFUSED=$("$CMD" counters "$SRV" 2>&1 |
		sed -n 's/^counter join_refused_half_open=//p')
	say "join_refused_half_open: ${REFUSED:-none}"
	[ "${REFUSED:-0}" -ge 1 ] ||
		check_fail "the process cap refused joins, but" \
			"join_refused_half_open is '${REFUSED:-missing}'"
else
	say "join_refused_half_open not checked: the cap was not reached"
fi

# The floods were reset as floods, and counted so (conn-int.h).
if [ -n "$CMD" ]; then
	FLOODS=$("$CMD" counters "$SRV" 2>&1 | sed -n 's/^counter floods=//p')
	say "floods: ${FLOODS:-none}"
	[ "${FLOODS:-0}" -ge 6 ] ||
		check_fail "six flooding connections (dup, addbad, addgood)," \
			"but the counter floods is '${FLOODS:-missing}'"
fi

stop_pid "$SERVER_PID"
it_finish
