/*
 * hostile.c: a client that speaks mptcpshim's in-band MPTCP well enough
 * to be taken for one of ours, then misbehaves (hostile-peer.sh).
 *
 * It is built by the test against the protocol core's sources: the
 * connection core does the handshake (the MSS signal of negotiate.h, the
 * MP_CAPABLE exchange and a first data mapping), then the client writes
 * records of its own making on the same socket.  conn-int.h gives it the
 * sequence numbers and keys the core agreed.
 *
 *   hostile bound RCVBUF SNDBUF
 *       prints mps_conn_mem_bound() for a server with those buffers (and
 *       checksums, the larger bound)
 *   hostile HOST PORT MODE HOLD [N]
 *       one connection, then MODE; prints "result=reset" when the server
 *       reset or ended it, else "result=open", and then keeps the
 *       connection (and any joins) open for HOLD seconds or until the
 *       server ends it.  Modes:
 *         window     mappings beyond the advertised window
 *         hole       in-window mappings after a one-byte hole, then on
 *         malformed  a record with an option length of 41
 *         oversized  MP_PRIO with 65535 bytes of payload
 *         stall      a 65535-byte mapping of which 1000 bytes come
 *         dup        the same 60 KiB mapping, over and over
 *         addbad     ADD_ADDR with wrong HMACs
 *         addgood    ADD_ADDR with valid HMACs, every id and address
 *         joins      N MP_JOIN SYNs to the announced join listener,
 *                    never completed; prints "joins synack=S refused=R"
 *       Each mode that sends data sends at most MPS_H_VOLUME bytes.
 *
 * Exit: 0 done, 1 error, 77 the server is not a shimmed one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn-int.h"
#include "crypto.h"
#include "negotiate.h"
#include "token.h"

#define MPS_H_VOLUME (32u << 20)
#define H_BUF (256 * 1024)

struct h {
	int fd;
	struct mps_conn *conn;
	struct mps_token_table *tab;
	uint64_t dsn; /* our next DSN */
	uint32_t ssn; /* our next subflow sequence number */
	bool reset;   /* the server ended or reset the connection */
	bool feed;    /* the core still parses what the server sends */
	uint16_t jl_port;
	uint8_t buf[H_BUF];
};

static struct h H;

static void die(const char *what)
{
	fprintf(stderr, "hostile: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct mps_conn_params h_params(uint32_t rcv, uint32_t snd)
{
	struct mps_conn_params p = {
		.version = MPS_VERSION_1,
		.checksum = true,
		.rcv_buf = rcv,
		.snd_buf = snd,
	};

	return p;
}

/* Reads what the server sent; true once it ended or reset the socket. */
static bool h_read(struct h *h, int wait_ms)
{
	struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
	ssize_t n;

	if (h->reset || poll(&pfd, 1, wait_ms) <= 0)
		return h->reset;
	n = recv(h->fd, h->buf, sizeof(h->buf), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		h->reset = true;
		return true;
	}
	if (n > 0 && h->feed &&
	    mps_conn_sf_input(h->conn, 0, h->buf, (size_t)n) < 0) {
		fprintf(stderr, "hostile: the server broke the protocol\n");
		exit(1);
	}
	return false;
}

/* Writes all of buf unless the server ends the connection. */
static void h_write(struct h *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0 && !h->reset) {
		struct pollfd pfd = {.fd = h->fd, .events = POLLOUT};
		ssize_t n;

		h_read(h, 0);
		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr,
				"hostile: the server stopped reading\n");
			return;
		}
		n = send(h->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			h->reset = true;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Writes what the core has for the subflow. */
static void h_flush(struct h *h)
{
	struct iovec iov[16];
	int n, i;

	while ((n = mps_conn_sf_peek(h->conn, 0, iov, 16)) > 0) {
		size_t total = 0;

		for (i = 0; i < n; i++) {
			h_write(h, iov[i].iov_base, iov[i].iov_len);
			total += iov[i].iov_len;
		}
		mps_conn_sf_consume(h->conn, 0, total);
		if (h->reset)
			return;
	}
}

static void h_connect(struct h *h, const char *host, int port, int mss)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "hostile: bad address %s\n", host);
		exit(1);
	}
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (h->fd < 0)
		die("socket");
	if (mss &&
	    setsockopt(h->fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) < 0)
		die("TCP_MAXSEG");
	if (connect(h->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect");
	if (!mss)
		return;
	if (getsockopt(h->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		die("TCP_INFO");
	/* negotiate.h: 1213, less 12 with timestamps */
	if (ti.tcpi_snd_mss != MPS_NEG_SERVER_MSS &&
	    ti.tcpi_snd_mss != MPS_NEG_SERVER_MSS - 12) {
		fprintf(stderr,
			"hostile: SYN-ACK MSS %u: not a shim\n",
			ti.tcpi_snd_mss);
		exit(77);
	}
}

/* Takes the join listener's port from the server's ADD_ADDR. */
static void h_events(struct h *h)
{
	struct mps_conn_event ev;

	while (mps_conn_next_event(h->conn, &ev)) {
		if (ev.kind == MPS_EV_ADDR_ADDED && ev.port)
			h->jl_port = ev.port;
	}
}

/*
 * The MP_CAPABLE exchange and a first mapping ("hello"), done by the
 * core, until the server acknowledged the data and announced its join
 * listener (or a second passed).
 */
static void h_handshake(struct h *h)
{
	struct mps_conn_params p = h_params(256 * 1024, 256 * 1024);
	struct mps_conn_info inf;
	uint64_t start = now_us();

	if (mps_token_table_create(&h->tab) < 0)
		die("token table");
	h->conn = mps_conn_new(MPS_ROLE_CLIENT, &p, h->tab, now_us());
	if (!h->conn || mps_conn_sf_add(h->conn) < 0)
		die("mps_conn_new");
	mps_conn_app_write(h->conn, "hello", 5);
	h->feed = true;
	for (;;) {
		h_flush(h);
		if (h_read(h, 20)) {
			fprintf(stderr, "hostile: reset in the handshake\n");
			exit(1);
		}
		mps_conn_tick(h->conn, now_us());
		h_events(h);
		mps_conn_get_info(h->conn, &inf);
		if (inf.state == MPS_CONN_ESTABLISHED &&
		    inf.snd_una == inf.snd_nxt &&
		    (h->jl_port || now_us() - start > 1000000))
			break;
		if (now_us() - start > 5000000) {
			fprintf(stderr, "hostile: no handshake in 5 s\n");
			exit(1);
		}
	}
	h_flush(h);
	h->feed = false;
	h->dsn = h->conn->snd_nxt;
	h->ssn = h->conn->sf[0]->tx_ssn;
}

/* Sends one record of opt with n payload bytes from pay. */
static void h_record(struct h *h,
		     const struct mps_option *opt,
		     const uint8_t *pay,
		     size_t n)
{
	uint8_t head[MPS_CONN_REC_HEAD_MAX];
	int len = mps_wire_encode_record(
		opt, MPS_VERSION_1, n, head, sizeof(head));

	if (len < 0) {
		fprintf(stderr, "hostile: cannot encode: %d\n", len);
		exit(1);
	}
	h_write(h, head, (size_t)len);
	h_write(h, pay, n);
}

/* A DSS mapping of n bytes at dsn, checksummed when checksums are on. */
static void h_map(struct h *h, uint64_t dsn, const uint8_t *pay, size_t n)
{
	struct mps_option opt = {.subtype = MPS_DSS};

	opt.dss.flags = MPS_DSS_MAP | MPS_DSS_DSN64;
	opt.dss.dsn = dsn;
	opt.dss.ssn = h->ssn;
	opt.dss.data_len = (uint16_t)n;
	if (h->conn->csum) {
		opt.dss.has_checksum = true;
		opt.dss.checksum =
			mps_dss_csum(dsn, h->ssn, (uint16_t)n, pay, n);
	}
	h_record(h, &opt, pay, n);
	h->ssn += (uint32_t)n;
}

static uint8_t payload[65535];

static void mode_window(struct h *h, bool hole)
{
	uint64_t dsn = hole ? h->dsn + 1 : h->conn->snd_right + 4096;
	size_t sent = 0, chunk = 60000;

	while (sent < MPS_H_VOLUME && !h->reset) {
		h_map(h, dsn, payload, chunk);
		dsn += chunk;
		sent += chunk;
	}
}

static void mode_malformed(struct h *h, bool oversized)
{
	static const uint8_t bad_len[] = {0x4d, 41, 0, 0};
	struct mps_option opt = {.subtype = MPS_MP_PRIO};
	uint8_t head[8] = {0x4d, 3, 0xff, 0xff};
	size_t sent = 0;

	if (oversized) {
		/* the encoder refuses payload on MP_PRIO: write by hand */
		if (mps_wire_encode_option(&opt, MPS_VERSION_1, head + 4, 4) !=
		    3)
			die("encode MP_PRIO");
		h_write(h, head, 7);
	} else {
		h_write(h, bad_len, sizeof(bad_len));
	}
	while (sent < MPS_H_VOLUME && !h->reset) {
		h_write(h, payload, sizeof(payload));
		sent += sizeof(payload);
	}
}

static void mode_stall(struct h *h)
{
	struct mps_option opt = {.subtype = MPS_DSS};
	uint8_t head[MPS_CONN_REC_HEAD_MAX];
	int len;

	opt.dss.flags = MPS_DSS_MAP | MPS_DSS_DSN64;
	opt.dss.dsn = h->dsn;
	opt.dss.ssn = h->ssn;
	opt.dss.data_len = sizeof(payload);
	if (h->conn->csum) {
		opt.dss.has_checksum = true;
		opt.dss.checksum = mps_dss_csum(h->dsn,
						h->ssn,
						sizeof(payload),
						payload,
						sizeof(payload));
	}
	len = mps_wire_encode_record(
		&opt, MPS_VERSION_1, sizeof(payload), head, sizeof(head));
	if (len < 0)
		die("encode DSS");
	h_write(h, head, (size_t)len);
	h_write(h, payload, 1000);
}

static void mode_dup(struct h *h)
{
	size_t sent = 0, chunk = 60 * 1024;

	h_map(h, h->dsn, payload, chunk);
	while (sent < MPS_H_VOLUME && !h->reset) {
		h_map(h, h->dsn, payload, chunk);
		sent += chunk;
	}
}

/* ADD_ADDR floods: 100000 options, ids and addresses cycling. */
static void mode_add_addr(struct h *h, bool good)
{
	struct mps_option opt = {.subtype = MPS_ADD_ADDR};
	struct mps_add_addr *aa = &opt.add_addr;
	uint32_t i;

	aa->addr.family = AF_INET;
	aa->has_hmac = true;
	for (i = 0; i < 100000 && !h->reset; i++) {
		aa->addr_id = (uint8_t)(1 + i % 254);
		aa->addr.bytes[0] = 10;
		aa->addr.bytes[1] = 99;
		aa->addr.bytes[2] = (uint8_t)(i >> 8);
		aa->addr.bytes[3] = (uint8_t)i;
		memset(aa->hmac, (int)i, sizeof(aa->hmac));
		if (good && mps_crypto_add_addr_hmac(h->conn->local.key,
						     h->conn->peer_key,
						     aa->addr_id,
						     AF_INET,
						     aa->addr.bytes,
						     0,
						     aa->hmac) < 0)
			die("ADD_ADDR HMAC");
		h_record(h, &opt, NULL, 0);
	}
}

/* The first record a join got back: 1 a SYN/ACK, 0 anything else. */
static int join_answer(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint8_t buf[256];
	struct mps_record rec;
	size_t have = 0;

	while (poll(&pfd, 1, 3000) > 0) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);

		if (n <= 0)
			return 0;
		have += (size_t)n;
		if (mps_wire_decode_record(buf, have, MPS_VERSION_1, &rec) ==
		    MPS_WIRE_NEED_MORE)
			continue;
		return mps_wire_decode_record(buf, have, MPS_VERSION_1, &rec) ==
			       0 &&
		       rec.opt.subtype == MPS_MP_JOIN &&
		       rec.opt.mp_join.form == MPS_JOIN_SYNACK;
	}
	return 0;
}

/* n joins that send their SYN form and never their ACK. */
static void mode_joins(struct h *h, const char *host, int n, int *fds)
{
	struct mps_option opt = {.subtype = MPS_MP_JOIN};
	int synack = 0, i;

	if (!h->jl_port) {
		fprintf(stderr, "hostile: no join listener announced\n");
		exit(1);
	}
	opt.mp_join.form = MPS_JOIN_SYN;
	opt.mp_join.token = h->conn->peer_token;
	for (i = 0; i < n; i++) {
		struct h j = {0};
		uint8_t rec[64];
		int len;

		h_connect(&j, host, h->jl_port, 0);
		fds[i] = j.fd;
		opt.mp_join.addr_id = (uint8_t)(2 + i);
		opt.mp_join.nonce = (uint32_t)random() ^ (uint32_t)getpid();
		len = mps_wire_encode_record(
			&opt, MPS_VERSION_1, 0, rec, sizeof(rec));
		if (len < 0 ||
		    send(j.fd, rec, (size_t)len, MSG_NOSIGNAL) != len)
			continue;
		synack += join_answer(j.fd);
	}
	printf("joins synack=%d refused=%d\n", synack, n - synack);
}

static void hold(struct h *h, int seconds)
{
	uint64_t end = now_us() + (uint64_t)seconds * 1000000;

	while (!h->reset && now_us() < end)
		h_read(h, 100);
}

static int cmd_bound(char **argv)
{
	struct mps_conn_params p =
		h_params((uint32_t)atol(argv[2]), (uint32_t)atol(argv[3]));

	printf("%zu\n", mps_conn_mem_bound(&p));
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode;
	int fds[256];
	int n = 0;

	if (argc == 4 && strcmp(argv[1], "bound") == 0)
		return cmd_bound(argv);
	if (argc < 5) {
		fprintf(stderr, "usage: hostile HOST PORT MODE HOLD [N]\n");
		return 1;
	}
	mode = argv[3];
	if (argc > 5)
		n = atoi(argv[5]);
	if (n < 0 || n > 256)
		n = 256;
	srandom((unsigned int)(now_us() ^ (uint64_t)getpid()));
	memset(payload, 'x', sizeof(payload));
	h_connect(&H, argv[1], atoi(argv[2]), MPS_NEG_CLIENT_MSS);
	h_handshake(&H);

	if (strcmp(mode, "window") == 0 || strcmp(mode, "hole") == 0)
		mode_window(&H, mode[0] == 'h');
	else if (strcmp(mode, "malformed") == 0)
		mode_malformed(&H, false);
	else if (strcmp(mode, "oversized") == 0)
		mode_malformed(&H, true);
	else if (strcmp(mode, "stall") == 0)
		mode_stall(&H);
	else if (strcmp(mode, "dup") == 0)
		mode_dup(&H);
	else if (strcmp(mode, "addbad") == 0 || strcmp(mode, "addgood") == 0)
		mode_add_addr(&H, mode[3] == 'g');
	else if (strcmp(mode, "joins") == 0)
		mode_joins(&H, argv[1], n, fds);
	else
		return fprintf(stderr, "hostile: bad mode %s\n", mode), 1;

	/* Whatever the server still sends comes before its RST or FIN. */
	hold(&H, 1);
	printf("result=%s\n", H.reset ? "reset" : "open");
	fflush(stdout);
	hold(&H, atoi(argv[4]));
	return 0;
}
