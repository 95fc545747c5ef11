#!/usr/bin/env python3
"""nettool.py: small network programs for the mptcpshim integration tests.

Python's socket module calls libc's socket, connect, send and recv, so a
program run with LD_PRELOAD=libmptcpshim.so goes through the library.  The
servers here accept exactly one connection and exit; every program stops
itself after --deadline seconds, so that no test waits forever.

Subcommands (see each function for details):
  sink, send                    client speaks first, server records bytes
  banner-server, banner-client  server speaks first, then echoes
  abort-server, close-server    peers that reset or close
  probe-refused, probe-nb-refused, probe-nb-connect, probe-nb-blackhole,
  probe-reset, probe-epipe      error semantics, one each
  records                       check a pcap of a shim-to-shim connection
  framed                        check that streams start with a record
  iperf-rate                    read the rate out of iperf3 -J output

Only the standard library is used.
"""

import argparse
import errno
import hashlib
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

CHUNK = 65536


def die(msg):
    """Print one line saying why, and exit 1 at once: also from a thread
    or a forked child, where sys.exit() would not end the process."""
    prog = os.path.basename(sys.argv[0]).removesuffix(".py")
    sys.stdout.flush()
    print(prog + ": " + msg, file=sys.stderr, flush=True)
    os._exit(1)


def set_deadline(seconds, what):
    """Exit 1 if the program is still running after SECONDS."""
    def on_alarm(_signum, _frame):
        die("%s: timed out after %ss" % (what, seconds))

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(seconds))


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listen_once(bind, port):
    """Return a listening socket on BIND:PORT."""
    s = socket.socket(family_of(bind), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    s.listen(4)
    return s


def accept_one(bind, port):
    """Listen, accept one connection, close the listener."""
    lsock = listen_once(bind, port)
    conn, _peer = lsock.accept()
    lsock.close()
    return conn


def connect_to(host, port):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.connect((host, port))
    return s


def recv_all(sock):
    """Read until end of stream; return the bytes."""
    parts = []
    while True:
        data = sock.recv(CHUNK)
        if not data:
            return b"".join(parts)
        parts.append(data)


def recv_exact(sock, n):
    """Read exactly N bytes, or fewer if the stream ends first."""
    parts = []
    got = 0
    while got < n:
        data = sock.recv(n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


# --- client speaks first ---------------------------------------------------

def cmd_sink(a):
    """Accept one connection, store every byte received until end of
    stream in --out, then answer "OK <count> <sha256>\\n" and close."""
    conn = accept_one(a.bind, a.port)
    data = recv_all(conn)
    write_file(a.out, data)
    reply = "OK %d %s\n" % (len(data), hashlib.sha256(data).hexdigest())
    conn.sendall(reply.encode())
    conn.close()


def cmd_send(a):
    """Connect, send --in, shut down the write side, store the answer
    (everything until end of stream) in --reply-out."""
    sock = connect_to(a.host, a.port)
    sock.sendall(read_file(a.infile))
    sock.shutdown(socket.SHUT_WR)
    reply = recv_all(sock)
    sock.close()
    write_file(a.reply_out, reply)


# --- server speaks first ---------------------------------------------------

def cmd_banner_server(a):
    """Accept one connection, send --banner at once, then echo every byte
    until end of stream, then close."""
    conn = accept_one(a.bind, a.port)
    conn.sendall(read_file(a.banner))
    while True:
        data = conn.recv(CHUNK)
        if not data:
            break
        conn.sendall(data)
    conn.close()


def cmd_banner_client(a):
    """Connect and read the whole banner before writing anything; then
    send --data (from a thread, while reading the echo), shut down the
    write side, read until end of stream.  Everything received, banner
    included, goes to --out.  Fails if the banner is wrong or late."""
    banner = read_file(a.banner)
    data = read_file(a.data)
    sock = connect_to(a.host, a.port)
    start = time.monotonic()
    got = recv_exact(sock, len(banner))
    took = time.monotonic() - start
    if got != banner:
        write_file(a.out, got)
        die("banner: got %d bytes %r, want %d bytes %r"
            % (len(got), got[:60], len(banner), banner[:60]))
    if took > a.banner_wait:
        die("banner came after %.2fs (bound %.1fs)" % (took, a.banner_wait))

    def writer():
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    rest = recv_all(sock)
    thread.join()
    sock.close()
    write_file(a.out, got + rest)


# --- peers that reset or close ---------------------------------------------

def cmd_abort_server(a):
    """Accept, read one byte, then abort: SO_LINGER {1, 0} and close,
    which makes TCP send a reset.  Stays alive a while afterwards."""
    conn = accept_one(a.bind, a.port)
    conn.recv(1)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    conn.close()
    time.sleep(a.stay)


def cmd_close_server(a):
    """Accept and close at once (an orderly close).  Stays alive a while
    afterwards, so that the process's exit is not what the peer sees."""
    conn = accept_one(a.bind, a.port)
    conn.close()
    time.sleep(a.stay)


# --- error probes: each prints "ok: ..." and exits 0, or fails -------------

def err_name(num):
    return errno.errorcode.get(num, str(num))


def expect_errno(got, want, what):
    if got != want:
        die("%s: got %s, want %s" % (what, err_name(got), err_name(want)))


def nb_connect(host, port, limit):
    """Non-blocking connect; returns (socket, result of connect_ex, seconds
    the call took).  Fails if the call itself took longer than LIMIT."""
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    sock.setblocking(False)
    start = time.monotonic()
    res = sock.connect_ex((host, port))
    took = time.monotonic() - start
    if took > limit:
        die("non-blocking connect blocked for %.3fs" % took)
    return sock, res, took


def wait_writable(sock, seconds):
    """Poll for writability (bounded); return the revents, 0 on timeout."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    events = poller.poll(seconds * 1000)
    return events[0][1] if events else 0


def so_error(sock):
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def cmd_probe_refused(a):
    """A blocking connect to a closed port fails with ECONNREFUSED."""
    sock = socket.socket(family_of(a.host), socket.SOCK_STREAM)
    try:
        sock.connect((a.host, a.port))
    except OSError as e:
        expect_errno(e.errno, errno.ECONNREFUSED, "blocking connect")
        print("ok: blocking connect: ECONNREFUSED")
        return
    die("blocking connect to a closed port succeeded")


def cmd_probe_nb_refused(a):
    """A non-blocking connect to a closed port returns EINPROGRESS, then
    the socket becomes writable and SO_ERROR is ECONNREFUSED."""
    sock, res, took = nb_connect(a.host, a.port, a.immediate)
    if res == errno.ECONNREFUSED:
        die("non-blocking connect gave ECONNREFUSED synchronously, "
            "want EINPROGRESS")
    expect_errno(res, errno.EINPROGRESS, "non-blocking connect")
    if not wait_writable(sock, 10):
        die("not writable 10s after a non-blocking connect")
    expect_errno(so_error(sock), errno.ECONNREFUSED, "SO_ERROR")
    print("ok: non-blocking connect: EINPROGRESS in %.1fms, then SO_ERROR "
          "ECONNREFUSED" % (took * 1000))


def cmd_probe_nb_connect(a):
    """A non-blocking connect to a listening port returns EINPROGRESS at
    once, then writability with SO_ERROR 0; the socket then carries data
    (the peer is an echo server)."""
    sock, res, took = nb_connect(a.host, a.port, a.immediate)
    expect_errno(res, errno.EINPROGRESS, "non-blocking connect")
    if not wait_writable(sock, 10):
        die("not writable 10s after a non-blocking connect")
    expect_errno(so_error(sock), 0, "SO_ERROR")
    sock.setblocking(True)
    sock.sendall(b"ping")
    sock.shutdown(socket.SHUT_WR)
    echo = recv_all(sock)
    if echo != b"ping":
        die("echo after non-blocking connect: got %r" % echo)
    print("ok: non-blocking connect: EINPROGRESS in %.1fms, SO_ERROR 0, "
          "echo" % (took * 1000))


def cmd_probe_nb_blackhole(a):
    """A non-blocking connect to an address that never answers returns
    EINPROGRESS at once: nothing waits for a handshake inside connect."""
    sock, res, took = nb_connect(a.host, a.port, a.immediate)
    expect_errno(res, errno.EINPROGRESS, "non-blocking connect")
    print("ok: non-blocking connect to a silent address: EINPROGRESS in "
          "%.1fms" % (took * 1000))
    sock.close()


def cmd_probe_reset(a):
    """After the peer aborts (SO_LINGER 0, close), recv fails with
    ECONNRESET."""
    sock = connect_to(a.host, a.port)
    sock.sendall(b"x")
    try:
        data = sock.recv(CHUNK)
    except OSError as e:
        expect_errno(e.errno, errno.ECONNRESET, "recv after peer abort")
        print("ok: recv after the peer's abort: ECONNRESET")
        return
    die("recv after the peer's abort returned %r, want ECONNRESET" % data)


def cmd_probe_epipe(a):
    """After the peer closed, send(MSG_NOSIGNAL) ends in EPIPE and no
    SIGPIPE kills the process.  The first sends may still succeed, as
    with TCP: the peer answers them with a reset."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sock = connect_to(a.host, a.port)
    data = sock.recv(CHUNK)
    if data:
        die("expected end of stream from the closing peer, got %r" % data)
    end = time.monotonic() + 5
    sends = 0
    while time.monotonic() < end:
        try:
            sock.send(b"y" * 1000, socket.MSG_NOSIGNAL)
            sends += 1
        except OSError as e:
            expect_errno(e.errno, errno.EPIPE, "send after peer close")
            print("ok: send after the peer closed: EPIPE after %d "
                  "successful sends, no SIGPIPE" % sends)
            return
        time.sleep(0.02)
    die("send after the peer closed kept succeeding for 5s (%d sends)"
        % sends)


# --- pcap reading ----------------------------------------------------------

def pcap_packets(path):
    """Yield (linktype, frame) for every packet of a classic pcap file."""
    data = read_file(path)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        die("%s: not a pcap file (pcapng is not read here)" % path)
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def l3_of(linktype, frame):
    """Return (ethertype, network-layer bytes) of a frame, or None."""
    if linktype == 1:				# Ethernet
        etype = struct.unpack("!H", frame[12:14])[0]
        off = 14
        while etype in (0x8100, 0x88A8):	# VLAN tags
            etype = struct.unpack("!H", frame[off + 2:off + 4])[0]
            off += 4
        return etype, frame[off:]
    if linktype == 113:				# Linux cooked v1
        return struct.unpack("!H", frame[14:16])[0], frame[16:]
    if linktype == 276:				# Linux cooked v2
        return struct.unpack("!H", frame[0:2])[0], frame[20:]
    if linktype in (12, 101):			# raw IP
        return (0x86DD if frame[0] >> 4 == 6 else 0x0800), frame
    return None


def tcp_of(linktype, frame):
    """Return (src, sport, dst, dport, seq, flags, payload) or None."""
    l3 = l3_of(linktype, frame)
    if l3 is None:
        return None
    etype, pkt = l3
    if etype == 0x0800:
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack("!H", pkt[2:4])[0]
        if pkt[9] != 6 or struct.unpack("!H", pkt[6:8])[0] & 0x3FFF:
            return None				# not TCP, or a fragment
        src = socket.inet_ntop(socket.AF_INET, pkt[12:16])
        dst = socket.inet_ntop(socket.AF_INET, pkt[16:20])
        seg = pkt[ihl:total]
    elif etype == 0x86DD:
        nxt = pkt[6]
        total = 40 + struct.unpack("!H", pkt[4:6])[0]
        src = socket.inet_ntop(socket.AF_INET6, pkt[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, pkt[24:40])
        off = 40
        while nxt in (0, 43, 60):		# hop-by-hop, routing, dest
            nxt, hlen = pkt[off], (pkt[off + 1] + 1) * 8
            off += hlen
        if nxt != 6:
            return None
        seg = pkt[off:total]
    else:
        return None
    sport, dport, seq = struct.unpack("!HHI", seg[0:8])
    doff = (seg[12] >> 4) * 4
    return src, sport, dst, dport, seq, seg[13], seg[doff:]


def tcp_streams(path):
    """Reassemble every TCP byte stream of a capture.  Returns a dict
    (src, sport, dst, dport) -> bytes; missing bytes are an error."""
    isn = {}
    segs = {}
    for linktype, frame in pcap_packets(path):
        t = tcp_of(linktype, frame)
        if t is None:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        key = (src, sport, dst, dport)
        if flags & 0x02:			# SYN
            isn[key] = seq
            segs.setdefault(key, {})
            continue
        if key in isn and payload:
            rel = (seq - isn[key] - 1) & 0xFFFFFFFF
            segs[key].setdefault(rel, payload)
    streams = {}
    for key, parts in segs.items():
        out = bytearray()
        for rel in sorted(parts):
            data = parts[rel]
            if rel > len(out):
                die("capture lost bytes of %s at offset %d" % (key, len(out)))
            out += data[len(out) - rel:]
        streams[key] = bytes(out)
    return streams


def cmd_framed(a):
    """For a capture that may hold only the first bytes of each packet
    (tcpdump -s), check that every TCP stream to or from --port that
    carried data starts with a record header: 0x4d, L, two bytes of
    payload length, then option kind 30 and length L."""
    isn = {}
    heads = {}
    for linktype, frame in pcap_packets(a.pcap):
        t = tcp_of(linktype, frame)
        if t is None:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        if a.port not in (sport, dport):
            continue
        key = (src, sport, dst, dport)
        if flags & 0x02:
            isn[key] = seq
        elif key in isn and payload and seq == (isn[key] + 1) & 0xFFFFFFFF:
            heads.setdefault(key, payload[:6])
    if not heads:
        die("no stream to or from port %d carried data" % a.port)
    for key, head in sorted(heads.items()):
        if len(head) < 6:
            die("%s: capture holds only %d bytes of the first segment"
                % (key, len(head)))
        if head[0] != 0x4D or head[4] != 30 or head[5] != head[1]:
            die("%s:%d -> %s:%d starts with %s, not with a record"
                % (key[0], key[1], key[2], key[3], head.hex()))
    print("ok: %d streams, each starts with a record" % len(heads))


# --- record parsing --------------------------------------------------------

SUBTYPES = {0: "MP_CAPABLE", 1: "MP_JOIN", 2: "DSS", 3: "ADD_ADDR",
            4: "REMOVE_ADDR", 5: "MP_PRIO", 6: "MP_FAIL",
            7: "MP_FASTCLOSE", 8: "MP_TCPRST", 15: "private"}


def parse_records(stream, what):
    """Split a subflow's byte stream into records; every byte must belong
    to one.  Returns a list of (offset, subtype, option, payload)."""
    recs = []
    i = 0
    while i < len(stream):
        if len(stream) - i < 4:
            die("%s: %d stray bytes at offset %d" % (what, len(stream) - i, i))
        if stream[i] != 0x4D:
            die("%s: byte 0x%02x at offset %d where a record header "
                "(0x4d) must start" % (what, stream[i], i))
        olen = stream[i + 1]
        plen = struct.unpack("!H", stream[i + 2:i + 4])[0]
        if i + 4 + olen + plen > len(stream):
            die("%s: record at offset %d runs past the end of the stream"
                % (what, i))
        opt = stream[i + 4:i + 4 + olen]
        if olen < 3 or opt[0] != 30 or opt[1] != olen:
            die("%s: record at offset %d: option kind %d length %d, want "
                "kind 30 length %d" % (what, i, opt[0], opt[1], olen))
        recs.append((i, opt[2] >> 4, opt, stream[i + 4 + olen:
                                                 i + 4 + olen + plen]))
        i += 4 + olen + plen
        if is_infinite_mapping(recs[-1]):
            die("%s: infinite mapping at offset %d: fell back to raw bytes"
                % (what, i))
    return recs


def dss_mapping(opt):
    """Return (dsn, dsn_bytes, dll) of a DSS option, or None when it
    carries no mapping."""
    flags = opt[3]
    off = 4
    if flags & 0x01:				# data ACK present
        off += 8 if flags & 0x02 else 4
    if not flags & 0x04:			# no mapping
        return None
    width = 8 if flags & 0x08 else 4
    dsn = int.from_bytes(opt[off:off + width], "big")
    off += width + 4				# DSN, subflow sequence
    dll = struct.unpack("!H", opt[off:off + 2])[0]
    return dsn, width, dll


def is_infinite_mapping(rec):
    _off, subtype, opt, _payload = rec
    if subtype != 2:
        return False
    m = dss_mapping(opt)
    return m is not None and m[2] == 0


def idsn_of(key, version):
    """RFC 8684 / 6824: the IDSN is the least significant 64 bits of
    H(key), H being SHA-256 (v1) or SHA-1 (v0), the key 8 bytes."""
    algo = hashlib.sha256 if version == 1 else hashlib.sha1
    return int.from_bytes(algo(key).digest()[-8:], "big")


def mpc_keys(recs):
    """Return (version, first key, second key) from the MP_CAPABLE
    records of one stream; keys are None when absent."""
    for _off, subtype, opt, _payload in recs:
        if subtype == 0 and len(opt) >= 12:
            k2 = opt[12:20] if len(opt) >= 20 else None
            return opt[2] & 0x0F, opt[4:12], k2
    return None, None, None


def data_of(streams_recs, idsn, what):
    """Rebuild the data-level stream from the records of all subflows of
    one direction: MP_CAPABLE data at IDSN + 1, DSS payloads at their
    DSN.  Gaps fail; overlaps must agree."""
    pieces = []
    for recs in streams_recs:
        for _off, subtype, opt, payload in recs:
            if not payload:
                continue
            if subtype == 0:
                pieces.append((0, payload))
                continue
            if subtype != 2:
                die("%s: a %s record carries payload"
                    % (what, SUBTYPES.get(subtype, subtype)))
            m = dss_mapping(opt)
            if m is None:
                die("%s: DSS record with payload but no mapping" % what)
            dsn, width, _dll = m
            mask = (1 << (8 * width)) - 1
            pieces.append(((dsn - idsn - 1) & mask, payload))
    out = bytearray()
    for rel, payload in sorted(pieces, key=lambda p: p[0]):
        if rel > len(out):
            die("%s: data sequence gap at %d (next mapping at %d)"
                % (what, len(out), rel))
        overlap = out[rel:rel + len(payload)]
        if overlap != payload[:len(overlap)]:
            die("%s: two mappings disagree about data at %d" % (what, rel))
        out += payload[len(overlap):]
    return bytes(out)


def summary(recs):
    counts = {}
    for rec in recs:
        name = SUBTYPES.get(rec[1], str(rec[1]))
        counts[name] = counts.get(name, 0) + 1
    return ", ".join("%s %d" % kv for kv in sorted(counts.items()))


def cmd_records(a):
    """Check a capture of one shim-to-shim connection from --client to
    --server:--port: each subflow stream is all records; the main
    subflow's first record is MP_CAPABLE; payload travels in DSS records;
    the data rebuilt from the records equals --payload (client to
    server) and --reply (server to client); the program's bytes do not
    start the stream."""
    payload = read_file(a.payload)
    reply = read_file(a.reply)
    streams = tcp_streams(a.pcap)
    up = {k: v for k, v in streams.items() if k[0] == a.client
          and k[2] == a.server}
    down = {k: v for k, v in streams.items() if k[0] == a.server
            and k[2] == a.client}
    main = [k for k in up if k[3] == a.port]
    if len(main) != 1:
        die("want one client-to-server subflow to port %d in the capture, "
            "found %d" % (a.port, len(main)))
    main = main[0]
    stream = streams[main]
    if not stream:
        die("the main subflow carried no bytes from the client")
    if stream[:16] == payload[:16]:
        die("the client's stream starts with the program's own bytes: "
            "not framed, plain TCP")
    recs = parse_records(stream, "client->server")
    first = recs[0]
    if first[1] != 0:
        die("client->server: first record is %s, want MP_CAPABLE"
            % SUBTYPES.get(first[1], first[1]))
    print("client->server main subflow: %d bytes, %d records (%s)"
          % (len(stream), len(recs), summary(recs)))

    up_recs = [recs]
    for key in up:
        if key == main:
            continue
        r = parse_records(up[key], "join subflow %s" % (key,))
        if r and r[0][1] != 1:
            die("extra subflow %s starts with %s, want MP_JOIN"
                % (key, SUBTYPES.get(r[0][1], r[0][1])))
        up_recs.append(r)
    down_recs = []
    for key in down:
        r = parse_records(down[key], "server->client %s" % (key,))
        down_recs.append(r)
        if key[1] == a.port:
            print("server->client main subflow: %d bytes, %d records (%s)"
                  % (len(down[key]), len(r), summary(r)))

    version, ckey, skey = mpc_keys(recs)
    if ckey is None:
        die("no MP_CAPABLE record of the client carries its key")
    if skey is None:
        for r in down_recs:
            _v, skey, _k2 = mpc_keys(r)
            if skey is not None:
                break
    if skey is None:
        die("no MP_CAPABLE record carries the server's key")

    if len(up_recs) == 1:
        plain = b"".join(r[3] for r in recs if r[1] in (0, 2))
        if plain != payload:
            die("client->server: record payloads in stream order (%d bytes) "
                "differ from the program's %d bytes" % (len(plain),
                                                        len(payload)))
    got = data_of(up_recs, idsn_of(ckey, version), "client->server")
    if got != payload:
        die("client->server: data rebuilt by DSN (%d bytes) differs from "
            "the program's %d bytes" % (len(got), len(payload)))
    got = data_of(down_recs, idsn_of(skey, version), "server->client")
    if got != reply:
        die("server->client: data rebuilt by DSN (%d bytes) differs from "
            "the program's %d bytes" % (len(got), len(reply)))
    print("ok: MPTCP v%d, %d subflow(s); %d payload bytes up and %d down, "
          "all in records" % (version, len(up_recs), len(payload), len(reply)))


# --- iperf3 ----------------------------------------------------------------

def cmd_iperf_rate(a):
    """Print the received rate (bit/s) of an iperf3 -J result; fail when
    iperf3 reported an error or a rate of zero."""
    import json

    try:
        res = json.loads(read_file(a.json) or b"{}")
    except ValueError as e:
        die("iperf3 output is not JSON: %s" % e)
    if res.get("error"):
        die("iperf3: %s" % res["error"])
    try:
        rate = res["end"]["sum_received"]["bits_per_second"]
    except KeyError:
        die("iperf3 output has no end.sum_received")
    if not rate > 0:
        die("iperf3 measured a rate of %r" % rate)
    print("%.0f" % rate)


# --- command line ----------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--deadline", type=float, default=30)
    sub = p.add_subparsers(dest="cmd", required=True)

    def server(name, func):
        s = sub.add_parser(name)
        s.add_argument("--bind", required=True)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--stay", type=float, default=5)
        s.set_defaults(func=func)
        return s

    def client(name, func):
        s = sub.add_parser(name)
        s.add_argument("--host", required=True)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--immediate", type=float, default=0.5,
                       help="bound on a non-blocking connect call, seconds")
        s.set_defaults(func=func)
        return s

    server("sink", cmd_sink).add_argument("--out", required=True)
    s = client("send", cmd_send)
    s.add_argument("--in", dest="infile", required=True)
    s.add_argument("--reply-out", required=True)
    server("banner-server", cmd_banner_server).add_argument("--banner",
                                                            required=True)
    s = client("banner-client", cmd_banner_client)
    s.add_argument("--banner", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--banner-wait", type=float, default=5)
    server("abort-server", cmd_abort_server)
    server("close-server", cmd_close_server)
    client("probe-refused", cmd_probe_refused)
    client("probe-nb-refused", cmd_probe_nb_refused)
    client("probe-nb-connect", cmd_probe_nb_connect)
    client("probe-nb-blackhole", cmd_probe_nb_blackhole)
    client("probe-reset", cmd_probe_reset)
    client("probe-epipe", cmd_probe_epipe)

    s = sub.add_parser("records")
    s.add_argument("--pcap", required=True)
    s.add_argument("--client", required=True)
    s.add_argument("--server", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--payload", required=True)
    s.add_argument("--reply", required=True)
    s.set_defaults(func=cmd_records)

    s = sub.add_parser("framed")
    s.add_argument("--pcap", required=True)
    s.add_argument("--port", type=int, required=True)
    s.set_defaults(func=cmd_framed)

    s = sub.add_parser("iperf-rate")
    s.add_argument("json")
    s.set_defaults(func=cmd_iperf_rate)

    a = p.parse_args()
    set_deadline(a.deadline, a.cmd)
    try:
        a.func(a)
    except OSError as e:
        die("%s: %s" % (a.cmd, e))


if __name__ == "__main__":
    main()
