#!/bin/sh
# deps.sh: install the Debian packages mptcpshim needs that are missing.
#
# Usage: scripts/deps.sh build|test|all
#   build  compilers, Autotools, libev, OpenSSL 3, Check, groff, json-c
#   test   the programs the integration tests and benchmarks run
# Runs apt-get only when something is missing, so a second run is quick.
# Needs root (or sudo) only when it has something to install.
set -eu

BUILD_PKGS="gcc make autoconf automake libtool pkg-config libev-dev \
libssl-dev check groff-base libjson-c-dev"
TEST_PKGS="iproute2 iptables python3 curl socat ncat iperf3 tcpdump \
tshark libpcap0.8 mptcpd procps psmisc clang-14 libclang-rt-14-dev \
libnetfilter-queue-dev iputils-ping mptcpize gnuplot-nox valgrind"

want=""
case "${1:-all}" in
build) want=$BUILD_PKGS ;;
test) want=$TEST_PKGS ;;
all) want="$BUILD_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 build|test|all" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $pkg" ;;
	esac
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "deps: need root to install:$missing" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no, quietly.
echo "wireshark-common wireshark-common/install-setuid boolean false" |
	$sudo debconf-set-selections 2>/dev/null || true
$sudo apt-get update -q >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
