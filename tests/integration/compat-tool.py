#!/usr/bin/env python3
"""compat-tool.py: servers and clients of the compatibility matrix.

Standard library only, so that a shimmed python3 goes through libc's
socket calls and nothing else.  Every program stops itself after
--deadline seconds.  A client exits 0 only when every byte it got back
is the byte it expected, and says what it checked on stdout.

  echo-server     selectors-based; echoes each connection until its EOF,
                  then closes it; optionally logs each peer's address
  threads         N threads, each its own connection and exchange
  scale           one process, N connections open at once (selectors),
                  each exchanged and checked; prints VmRSS growth
  exchange        one connection to HOST (IPv4, IPv6 or v4-mapped)
  fork-*          connections across fork(), setsid() and daemonizing
"""

import argparse
import hashlib
import os
import resource
import selectors
import socket
import sys
import threading
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nettool import die, family_of, set_deadline  # noqa: E402


def pattern(tag, n):
    """N bytes that depend on TAG and on each offset."""
    out = bytearray()
    block = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s:%d" % (tag.encode(), block)).digest()
        block += 1
    return bytes(out[:n])


def vmrss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(hard, n)))


# --- the server -------------------------------------------------------------

def cmd_echo_server(a):
    """Echo every connection until its EOF, then close it.  Non-blocking,
    so that one process serves thousands of connections at once."""
    raise_nofile(a.nofile)
    lst = socket.socket(family_of(a.bind), socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if lst.family == socket.AF_INET6:
        lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                       1 if a.v6only else 0)
    lst.bind((a.bind, a.port))
    lst.listen(4096)
    lst.setblocking(False)
    peers = open(a.peers, "a") if a.peers else None
    sel = selectors.DefaultSelector()
    sel.register(lst, selectors.EVENT_READ, None)
    state = {}

    def close(s):
        sel.unregister(s)
        del state[s]
        s.close()

    while True:
        for key, ev in sel.select():
            s = key.fileobj
            if s is lst:
                try:
                    c, addr = lst.accept()
                except BlockingIOError:
                    continue
                if peers:
                    peers.write("%s %s\n" % (addr[0], c.getpeername()[0]))
                    peers.flush()
                c.setblocking(False)
                state[c] = [bytearray(), False]
                sel.register(c, selectors.EVENT_READ, None)
                continue
            buf, eof = state[s]
            if ev & selectors.EVENT_READ and not eof:
                try:
                    data = s.recv(262144)
                except BlockingIOError:
                    data = None
                except OSError:
                    close(s)
                    continue
                if data == b"":
                    state[s][1] = eof = True
                elif data:
                    buf += data
            if buf:
                try:
                    n = s.send(buf)
                    del buf[:n]
                except BlockingIOError:
                    pass
                except OSError:
                    close(s)
                    continue
            if eof and not buf:
                close(s)
                continue
            want = selectors.EVENT_WRITE if buf else 0
            if not eof:
                want |= selectors.EVENT_READ
            sel.modify(s, want)


# --- clients ----------------------------------------------------------------

def exchange(sock, tag, n):
    """Send N bytes of TAG's pattern, half-close, read the echo until EOF,
    return an error string or None."""
    data = pattern(tag, n)
    got = []

    def reader():
        while True:
            b = sock.recv(262144)
            if not b:
                break
            got.append(b)

    t = threading.Thread(target=reader)
    t.start()
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    t.join()
    back = b"".join(got)
    if back != data:
        return "%s: sent %d bytes, got back %d%s" % (
            tag, n, len(back), " (differ)" if len(back) == n else "")
    return None


def cmd_threads(a):
    """N threads start together; each connects, exchanges its own pattern
    (of its own length) and checks the echo."""
    errors = []
    go = threading.Barrier(a.threads)

    def one(i):
        try:
            go.wait()
            s = socket.create_connection((a.host, a.port))
            err = exchange(s, "thread%d" % i, a.bytes + i * 4099)
            s.close()
        except OSError as e:
            err = "thread%d: %s" % (i, e)
        if err:
            errors.append(err)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        die("%d of %d threads failed: %s" % (len(errors), a.threads,
                                             "; ".join(errors[:3])))
    print("ok: %d threads, each exchange checked" % a.threads)


def cmd_scale(a):
    """Open N connections from one process, all at once (non-blocking
    connects under one selector); only when every one is established,
    send each its own pattern and check each echo.  Prints the growth of
    VmRSS while they were all open, per connection."""
    raise_nofile(a.nofile)
    base = vmrss_kib()
    sel = selectors.DefaultSelector()
    conns = {}
    for i in range(a.conns):
        s = socket.socket(family_of(a.host), socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((a.host, a.port))
        if rc not in (0, 115):  # EINPROGRESS
            die("connection %d: connect: %s" % (i, os.strerror(rc)))
        conns[s] = {"i": i, "out": pattern("c%d" % i, a.bytes),
                    "sent": 0, "in": bytearray(), "up": False}
        sel.register(s, selectors.EVENT_WRITE)
    # every connect completes before any data moves
    pending = a.conns
    while pending:
        for key, _ in sel.select(timeout=a.deadline):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                die("connection %d: %s" % (conns[s]["i"], os.strerror(err)))
            conns[s]["up"] = True
            sel.modify(s, selectors.EVENT_READ)
            pending -= 1
    opened = vmrss_kib()
    for s in conns:
        sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    left = a.conns
    peak = opened
    while left:
        for key, ev in sel.select(timeout=a.deadline):
            s = key.fileobj
            c = conns[s]
            if ev & selectors.EVENT_WRITE and c["sent"] < len(c["out"]):
                try:
                    c["sent"] += s.send(c["out"][c["sent"]:])
                except BlockingIOError:
                    pass
                if c["sent"] == len(c["out"]):
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    b = s.recv(65536)
                except BlockingIOError:
                    continue
                if b:
                    c["in"] += b
                    continue
                if bytes(c["in"]) != c["out"]:
                    die("connection %d: got back %d of %d bytes%s"
                        % (c["i"], len(c["in"]), len(c["out"]),
                           " (differ)" if len(c["in"]) == a.bytes else ""))
                sel.unregister(s)
                left -= 1
        peak = max(peak, vmrss_kib())
    for s in conns:
        s.close()
    print("ok: %d connections open at once, each exchange checked; "
          "rss_base_kib=%d rss_open_kib=%d rss_peak_kib=%d "
          "per_conn_open_kib=%.1f per_conn_peak_kib=%.1f"
          % (a.conns, base, opened, peak, (opened - base) / a.conns,
             (peak - base) / a.conns))


def cmd_exchange(a):
    """One connection to HOST; exchange and check; print the local and
    peer addresses the socket reports."""
    s = socket.socket(family_of(a.host), socket.SOCK_STREAM)
    s.connect((a.host, a.port))
    local, peer = s.getsockname()[0], s.getpeername()[0]
    err = exchange(s, "exchange-" + a.host, a.bytes)
    s.close()
    if err:
        die(err)
    print("ok: %s -> %s, %d bytes checked" % (local, peer, a.bytes))


# --- fork, setsid, daemon ---------------------------------------------------

def child_status(pid):
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


def cmd_fork_inherit(a):
    """The parent connects and sends the first half; its child sends the
    second half and reads the whole echo; the parent checks the child's
    verdict, then the same in the other order for a second connection
    (child writes, parent reads after the child exited)."""
    data = pattern("inherit", a.bytes)
    half = a.bytes // 2
    s = socket.create_connection((a.host, a.port))
    s.sendall(data[:half])
    pid = os.fork()
    if pid == 0:
        s.sendall(data[half:])
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            b = s.recv(262144)
            if not b:
                break
            got += b
        os._exit(0 if bytes(got) == data else 3)
    rc = child_status(pid)
    if rc != 0:
        die("fork-inherit: the child's read-back failed (exit %d)" % rc)
    s.close()

    s = socket.create_connection((a.host, a.port))
    pid = os.fork()
    if pid == 0:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        os._exit(0)
    if child_status(pid) != 0:
        die("fork-inherit: the child's send failed")
    got = bytearray()
    while True:
        b = s.recv(262144)
        if not b:
            break
        got += b
    if bytes(got) != data:
        die("fork-inherit: the parent read %d of %d bytes back after the "
            "child sent them" % (len(got), len(data)))
    print("ok: parent's connections used by a child, both ways")


def cmd_fork_new(a):
    """The parent makes a connection (so the library runs in it); then
    several children, each a new connection of its own, concurrently,
    while the parent's connection is still open; then a grandchild."""
    s = socket.create_connection((a.host, a.port))
    kids = []
    for i in range(a.children):
        pid = os.fork()
        if pid == 0:
            try:
                c = socket.create_connection((a.host, a.port))
                err = exchange(c, "child%d" % i, a.bytes + i * 997)
                if err is None and i == 0:
                    # and a grandchild of its own
                    gpid = os.fork()
                    if gpid == 0:
                        g = socket.create_connection((a.host, a.port))
                        os._exit(1 if exchange(g, "grandchild",
                                               a.bytes) else 0)
                    if child_status(gpid) != 0:
                        err = "the grandchild's exchange failed"
            except OSError as e:
                err = str(e)
            if err:
                print("child %d: %s" % (i, err), file=sys.stderr)
            os._exit(1 if err else 0)
        kids.append(pid)
    bad = [i for i, pid in enumerate(kids) if child_status(pid) != 0]
    if bad:
        die("fork-new: children %s failed" % bad)
    err = exchange(s, "parent", a.bytes)
    if err:
        die("fork-new: the parent's own connection: " + err)
    print("ok: %d children (and a grandchild) made connections of their "
          "own; the parent's connection still worked" % a.children)


def daemonize():
    """The classic double fork with setsid(); returns in the grandchild,
    whose parent and grandparent have exited."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)


def cmd_fork_daemon(a):
    """Set up, daemonize, then work; the verdict goes to --result.

    mode listen: a listener opened before daemonizing accepts after it, and
    the daemon echoes what it receives (the test's client checks).
    mode connect: the daemon makes a new connection after daemonizing.
    mode before: a connection made before daemonizing is used after it,
    its maker (the original process) being gone."""
    out = a.result
    if a.mode == "listen":
        lst = socket.socket(family_of(a.host), socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((a.host, a.port))
        lst.listen(16)
        daemonize()
        set_deadline(a.deadline, "fork-daemon listen")
        c, _ = lst.accept()
        while True:
            b = c.recv(262144)
            if not b:
                break
            c.sendall(b)
        c.close()
        with open(out, "w") as f:
            f.write("ok: a listener set up before daemonizing served after\n")
        os._exit(0)
    pre = None
    if a.mode == "before":
        pre = socket.create_connection((a.host, a.port))
    else:
        socket.create_connection((a.host, a.port)).close()
    daemonize()
    set_deadline(a.deadline, "fork-daemon " + a.mode)
    try:
        s = pre or socket.create_connection((a.host, a.port))
        err = exchange(s, "daemon-" + a.mode, a.bytes)
    except OSError as e:
        err = str(e)
    with open(out, "w") as f:
        f.write(("FAIL: " + err if err else "ok: daemon %s" % a.mode) + "\n")
    os._exit(0)


# --- command line -----------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--deadline", type=float, default=60)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("echo-server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--peers")
    s.add_argument("--v6only", action="store_true")
    s.add_argument("--nofile", type=int, default=1024)
    s.set_defaults(func=cmd_echo_server)

    def client(name, func):
        c = sub.add_parser(name)
        c.add_argument("--host", required=True)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--bytes", type=int, default=65536)
        c.set_defaults(func=func)
        return c

    client("threads", cmd_threads).add_argument("--threads", type=int,
                                                default=32)
    c = client("scale", cmd_scale)
    c.add_argument("--conns", type=int, default=1000)
    c.add_argument("--nofile", type=int, default=8192)
    client("exchange", cmd_exchange)
    client("fork-inherit", cmd_fork_inherit)
    client("fork-new", cmd_fork_new).add_argument("--children", type=int,
                                                  default=4)
    c = client("fork-daemon", cmd_fork_daemon)
    c.add_argument("--mode", choices=["listen", "connect", "before"],
                   required=True)
    c.add_argument("--result", required=True)

    a = p.parse_args()
    if a.cmd != "fork-daemon":  # it sets its own, once daemonized
        set_deadline(a.deadline, a.cmd)
    a.func(a)


if __name__ == "__main__":
    main()
