#!/bin/sh
# deps.sh: install the Debian packages the test bed and the benchmark need.
#
# Usage: testbed/deps.sh testbed|bench
#   testbed  namespaces, tc, iptables, the delay stage's build, ping, iperf3
#   bench    the above, plus mptcpize (kernel MPTCP reference) and gnuplot
# Installs only what is missing; exits 1 if it cannot (not root, no
# package source), so that a caller can skip with a reason.
set -eu

TESTBED_PKGS="iproute2 iptables procps gcc pkg-config libnetfilter-queue-dev \
iputils-ping iperf3"
BENCH_PKGS="$TESTBED_PKGS mptcpize gnuplot-nox"

case "${1:-}" in
testbed) want=$TESTBED_PKGS ;;
bench) want=$BENCH_PKGS ;;
*) echo "usage: $0 testbed|bench" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
