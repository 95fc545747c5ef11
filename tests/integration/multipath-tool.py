#!/usr/bin/env python3
"""multipath-tool.py: transfer programs for the multipath integration tests.

  server  listen on --bind:--port; --workers N forks N processes that all
          accept on the one listening socket (prefork, like nginx).  Each
          accepted connection appends "PID" to --accepts, then:
            --mode sink:   reads to end of stream, answers the SHA-256 hex
                           of what it read, closes;
            --mode source: sends --file, closes.
          Workers run until --deadline.
  client  connect to --host:--port;
            --mode send: sends --file, shuts down, expects the SHA-256 of
                         the file back;
            --mode recv: reads to end of stream, checks size and SHA-256
                         against --file.
          Prints "bytes=N secs=S mbit=R" and exits 0 only when every byte
          arrived intact.

Only the standard library is used; Python's socket module goes through
libc, so LD_PRELOAD applies.
"""

import argparse
import hashlib
import os
import signal
import socket
import sys
import time

CHUNK = 256 * 1024


def die(msg):
    print("multipath-tool: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                return h.hexdigest(), f.tell()
            h.update(b)


def send_file(sock, path):
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                return
            sock.sendall(b)


def read_all(sock):
    h = hashlib.sha256()
    n = 0
    while True:
        b = sock.recv(CHUNK)
        if not b:
            return h.hexdigest(), n
        h.update(b)
        n += len(b)


def serve_one(conn, a):
    with open(a.accepts, "a") as f:
        f.write("%d\n" % os.getpid())
    if a.mode == "sink":
        sha, n = read_all(conn)
        conn.sendall(("%s %d" % (sha, n)).encode())
    else:
        send_file(conn, a.file)
    conn.close()


def worker(ls, a):
    while True:
        conn, _ = ls.accept()
        try:
            serve_one(conn, a)
        except OSError as e:
            print("worker %d: %s" % (os.getpid(), e), file=sys.stderr)


def cmd_server(a):
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(64)
    signal.alarm(int(a.deadline))
    if a.workers <= 1:
        worker(ls, a)
    pids = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            signal.alarm(int(a.deadline))
            worker(ls, a)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)


def cmd_client(a):
    signal.alarm(int(a.deadline))
    want_sha, want_len = file_sha(a.file)
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    start = time.monotonic()
    s.connect((a.host, a.port))
    if a.mode == "send":
        send_file(s, a.file)
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(256).decode().split()
        secs = time.monotonic() - start
        if len(reply) != 2 or reply[0] != want_sha:
            die("server read %s, sent %d bytes sha %s"
                % (" ".join(reply)[:40], want_len, want_sha[:16]))
        n = want_len
    else:
        got, n = read_all(s)
        secs = time.monotonic() - start
        if n != want_len or got != want_sha:
            die("received %d bytes sha %s, want %d sha %s"
                % (n, got[:16], want_len, want_sha[:16]))
    s.close()
    print("bytes=%d secs=%.2f mbit=%.1f" % (n, secs, n * 8 / secs / 1e6),
          flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--deadline", type=float, default=60)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--mode", choices=["sink", "source"], required=True)
    s.add_argument("--file")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--accepts", required=True)
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--mode", choices=["send", "recv"], required=True)
    c.add_argument("--file", required=True)
    a = p.parse_args()
    if a.cmd == "server":
        cmd_server(a)
    else:
        cmd_client(a)


if __name__ == "__main__":
    main()
