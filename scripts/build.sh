#!/bin/sh
# build.sh: configure and build mptcpshim out of tree in _build/.
#
# Usage: scripts/build.sh [configure options...]
# Regenerates the Autotools files when configure is missing or older than
# configure.ac or Makefile.am, so it works on a fresh clone and again later.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ ! -x configure ] || [ configure.ac -nt configure ] ||
   [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi

mkdir -p _build
cd _build
if [ ! -f Makefile ] || [ "$#" -gt 0 ] || [ ../configure -nt Makefile ]; then
	../configure -q "$@"
fi
make -s -j"$(nproc)"
