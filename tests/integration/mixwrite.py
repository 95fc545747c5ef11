#!/usr/bin/env python3
"""mixwrite.py: one connection written with every kind of write, for
direct-send.sh, against nettool.py's sink server.

  mixwrite.py --host HOST --port PORT --bytes N [--nodelay] [--nonblock]
              [--counters CMD]

Sends N bytes of a seeded pseudo-random stream, choosing for each piece
at random among send() of 1 to 100 bytes, send() of up to 64 KiB,
sendmsg() of three buffers, send() with MSG_MORE and os.sendfile() from a
file holding the same stream; shuts down its sending side and reads the
sink's answer.  Prints one JSON line: the bytes sent and their sha256,
the sink's answer, the bytes sendfile carried and, with --counters, the
process's direct_send_bytes as "CMD counters PID --json" reports it.

Pieces follow one another with no pause, so that each kind of write
meets the bytes of the others still in flight.  With --nonblock every
call may take part of its piece, and the rest waits for poll().
"""
import argparse
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nettool import (connect_to, die, recv_all, set_deadline,  # noqa: E402
                     wait_writable)

SEED = 20261204


def pieces(total):
    """(kind, length) pairs that add up to total."""
    rng = random.Random(SEED)
    left = total
    while left > 0:
        kind = rng.choice(["tiny", "tiny", "large", "vector", "more",
                           "sendfile"])
        if kind == "tiny":
            n = rng.randint(1, 100)
        elif kind == "sendfile":
            n = rng.randint(1, 200000)
        else:
            n = rng.randint(1, 65536)
        n = min(n, left)
        left -= n
        yield kind, n


def send_piece(sock, kind, data, fileno, offset):
    """Write data (which sits at offset in the file fileno) by kind, all
    of it, waiting for room when the socket is non-blocking."""
    done = 0
    while done < len(data):
        try:
            if kind == "sendfile":
                n = os.sendfile(sock.fileno(), fileno, offset + done,
                                len(data) - done)
            elif kind == "vector":
                rest = memoryview(data)[done:]
                third = len(rest) // 3
                n = sock.sendmsg([rest[:third], rest[third:2 * third],
                                  rest[2 * third:]])
            elif kind == "more":
                n = sock.send(memoryview(data)[done:], socket.MSG_MORE)
            else:
                n = sock.send(memoryview(data)[done:])
        except BlockingIOError:
            n = 0
        done += n
        if done < len(data) and not sock.getblocking() and \
                not wait_writable(sock, 30):
            die("no room to write for 30 s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--nodelay", action="store_true")
    p.add_argument("--nonblock", action="store_true")
    p.add_argument("--counters")
    p.add_argument("--deadline", type=float, default=60)
    a = p.parse_args()
    set_deadline(a.deadline, "mixwrite")

    stream = random.Random(SEED + 1).randbytes(a.bytes)
    sent_file = 0
    with tempfile.TemporaryFile() as f:
        f.write(stream)
        f.flush()
        sock = connect_to(a.host, a.port)
        if a.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(not a.nonblock)
        # the handshake done and the connection idle, so that the first
        # piece can go direct whatever the mix then does
        time.sleep(0.3)
        offset = 0
        for kind, n in pieces(a.bytes):
            send_piece(sock, kind, stream[offset:offset + n], f.fileno(),
                       offset)
            if kind == "sendfile":
                sent_file += n
            offset += n
    direct = None
    if a.counters:
        out = subprocess.run(
            [a.counters, "counters", str(os.getpid()), "--json"],
            check=True, capture_output=True, text=True).stdout
        direct = json.loads(out)["counters"]["direct_send_bytes"]
    sock.setblocking(True)
    sock.shutdown(socket.SHUT_WR)
    answer = recv_all(sock).decode().strip()
    sock.close()
    print(json.dumps({"bytes": offset,
                      "sha256": hashlib.sha256(stream).hexdigest(),
                      "answer": answer, "sendfile": sent_file,
                      "direct": direct}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
