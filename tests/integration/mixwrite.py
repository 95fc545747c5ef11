#!/usr/bin/env python3
"""mixwrite.py: one connection written with every kind of write, for
direct-send.sh.

  mixwrite.py server --port PORT
      accept one connection, read it to its end, print
      "BYTES SHA256" on one line, exit
  mixwrite.py client --host HOST --port PORT --bytes N [--nodelay]
                     [--nonblock] [--counters CMD]
      send N bytes of a seeded pseudo-random stream, choosing for each
      piece at random among send() of 1 to 100 bytes, send() of up to
      64 KiB, sendmsg() of three buffers, send() with MSG_MORE and
      os.sendfile() from a file holding the same stream; then print one
      JSON line: bytes sent, their sha256, the bytes sendfile carried
      and, with --counters, the process's direct_send_bytes as
      "CMD counters PID --json" reports it.

Pieces follow one another with no pause, so that each kind of write
meets the bytes of the others still in flight.  With --nonblock every
call may take part of its piece, and the rest waits for select().
"""
import argparse
import hashlib
import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import time

SEED = 20261204


def serve(args):
    lsock = socket.create_server(("0.0.0.0", args.port))
    conn, _ = lsock.accept()
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = conn.recv(1 << 18)
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
    print(total, digest.hexdigest(), flush=True)


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


def wait_writable(sock):
    select.select([], [sock], [], 30)


def send_piece(sock, kind, data, fileno, offset, nonblock):
    """Write data (which sits at offset in the file fileno) by kind,
    all of it, waiting for room when nonblocking."""
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
            if not nonblock:
                raise
            wait_writable(sock)
            continue
        done += n
        if nonblock and done < len(data):
            wait_writable(sock)


def client(args):
    rng = random.Random(SEED + 1)
    stream = rng.randbytes(args.bytes)
    with tempfile.TemporaryFile() as f:
        f.write(stream)
        f.flush()
        sock = socket.create_connection((args.host, args.port), timeout=60)
        if args.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # blocking for real: a timeout makes Python's socket non-blocking
        # underneath, and os.sendfile() would see EAGAIN
        sock.setblocking(not args.nonblock)
        # the handshake done and the connection idle, so that the first
        # piece can go direct whatever the mix then does
        time.sleep(0.3)
        offset = 0
        by_sendfile = 0
        for kind, n in pieces(args.bytes):
            send_piece(sock, kind, stream[offset:offset + n], f.fileno(),
                       offset, args.nonblock)
            if kind == "sendfile":
                by_sendfile += n
            offset += n
        direct = None
        if args.counters:
            out = subprocess.run(
                [args.counters, "counters", str(os.getpid()), "--json"],
                check=True, capture_output=True, text=True).stdout
            direct = json.loads(out)["counters"]["direct_send_bytes"]
        if args.nonblock:
            sock.setblocking(True)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)
        sock.close()
    print(json.dumps({"bytes": offset,
                      "sha256": hashlib.sha256(stream).hexdigest(),
                      "sendfile": by_sendfile, "direct": direct}),
          flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--bytes", type=int, required=True)
    c.add_argument("--nodelay", action="store_true")
    c.add_argument("--nonblock", action="store_true")
    c.add_argument("--counters")
    args = p.parse_args()
    if args.role == "server":
        serve(args)
    else:
        client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
