# shellcheck shell=bash disable=SC2034
#
# multipath-topo.bash: the topology of the multipath tests, sourced after
# lib.sh (named .bash so that a glob of tests, *.sh, does not run it).
#
#   client ns (NS_A)            router ns (NS_R)          server ns (NS_B)
#   c1 10.20.1.1/24 ---- r1 10.20.1.254
#   c2 10.20.2.1/24 ---- r2 10.20.2.254     rs 10.30.0.254 ---- s0 10.30.0.2
#   c3 10.20.3.1/24 ---- r3 10.20.3.254
#
# The client has one default route per link (metrics 10, 20, 30), so the
# program's own connection takes c1, and a join bound to c2 (SO_BINDTODEVICE)
# leaves by c2 without policy routing.  Each link is shaped with tbf in
# both directions (MP_RATES, default "20 10 10" Mbit/s).  The server is
# single-homed: joins reach it through the router, on its join listener.

SRV=10.30.0.2
MP_RATES=${MP_RATES:-"20 10 10"}

# Usage: mp_setup NAME NPATHS [SHIMLIB]
mp_setup()
{
	local name=$1 npaths=$2 i rate

	shift 2
	it_setup "$name" "$@"
	require_cmd tc
	NS_R=${NS_A%-a}-r
	ip netns add "$NS_R" || fail "ip netns add $NS_R failed"
	IT_NAMESPACES+=("$NS_R")
	ip -n "$NS_A" link del "$IF_A" 2>/dev/null
	ip -n "$NS_R" link set lo up
	ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1
	ip link add s0 netns "$NS_B" type veth peer name rs netns "$NS_R" ||
		fail "cannot create the server link"
	ip -n "$NS_B" addr add "$SRV/24" dev s0
	ip -n "$NS_B" link set s0 up
	ip -n "$NS_R" addr add 10.30.0.254/24 dev rs
	ip -n "$NS_R" link set rs up
	ip -n "$NS_B" route add default via 10.30.0.254
	for i in $(seq "$npaths"); do
		rate=$(echo "$MP_RATES" | cut -d' ' -f"$i")
		ip link add "c$i" netns "$NS_A" type veth \
			peer name "r$i" netns "$NS_R" ||
			fail "cannot create link $i"
		ip -n "$NS_A" addr add "10.20.$i.1/24" dev "c$i"
		ip -n "$NS_R" addr add "10.20.$i.254/24" dev "r$i"
		ip -n "$NS_A" link set "c$i" up
		ip -n "$NS_R" link set "r$i" up
		ip -n "$NS_A" route add default via "10.20.$i.254" \
			dev "c$i" metric $((i * 10))
		mp_shape "c$i" "r$i" "$rate"
	done
	mp_wait_links "$npaths" || fail "the links do not carry packets"
}

# tbf on both ends of one link, RATE Mbit/s.
mp_shape()
{
	tc -n "$NS_A" qdisc add dev "$1" root tbf rate "$3mbit" \
		burst 32kb latency 100ms || fail "tbf on $1 failed"
	tc -n "$NS_R" qdisc add dev "$2" root tbf rate "$3mbit" \
		burst 32kb latency 100ms || fail "tbf on $2 failed"
}

# Wait (bounded) until every link reaches the server.
mp_wait_links()
{
	local i ok

	for _ in $(seq 50); do
		ok=1
		for i in $(seq "$1"); do
			ip netns exec "$NS_A" ping -c1 -W1 -q -I "c$i" "$SRV" \
				>/dev/null 2>&1 || ok=0
		done
		[ "$ok" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# Bytes that crossed client link i, both directions.
mp_bytes()
{
	local d=/sys/class/net/c$1/statistics

	ip netns exec "$NS_A" sh -c "echo \$((\$(cat $d/tx_bytes) + \$(cat $d/rx_bytes)))"
}

# Established TCP connections from the client to the server.
mp_subflows()
{
	ip netns exec "$NS_A" ss -tnH state established "dst $SRV" | wc -l
}

# Largest number of subflows seen while PID runs (bounded by SECS).
mp_max_subflows()
{
	local pid=$1 secs=${2:-20} max=0 n

	for _ in $(seq $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		n=$(mp_subflows)
		[ "$n" -gt "$max" ] && max=$n
		sleep 0.1
	done
	echo "$max"
}

MPTOOL=$IT_DIR/multipath-tool.py
