/*
 * dupcost.c: what comparing duplicate data costs the receiver.
 *
 * Two connection cores, back to back in one process, with the redundant
 * scheduler over two subflows: every byte arrives twice.  The copy on
 * subflow 0 is delivered first and read by the program at once; the copy
 * on subflow 1 then arrives behind rcv_nxt and is compared with the
 * delivered bytes that the receiver keeps (MPS_CONN_HIST, conn.c).  Built
 * twice by dupcost.sh, once with MPS_BENCH_NO_DUP_COMPARE, which skips
 * the comparison and the history it needs.  Prints the CPU time of the
 * whole process (both cores) per MiB of program data.
 *
 * Usage: dupcost [MIB]   (default 512)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "token.h"

#define LINK_CAP (4u << 20)

struct link {
	unsigned char *buf;
	size_t len;
};

static struct mps_conn *cli, *srv;
static int csf[2], ssf[2];
static struct link up[2];

static void die(const char *what)
{
	fprintf(stderr, "dupcost: %s\n", what);
	exit(1);
}

/* Everything src has for sf goes into the link (until it is full). */
static void link_write(struct mps_conn *src, int sf, struct link *l)
{
	struct iovec iov[16];
	int n, i;

	while ((n = mps_conn_sf_peek(src, sf, iov, 16)) > 0) {
		size_t got = 0;

		for (i = 0; i < n; i++) {
			size_t take = iov[i].iov_len;

			if (take > LINK_CAP - l->len - got)
				take = LINK_CAP - l->len - got;
			memcpy(l->buf + l->len + got, iov[i].iov_base, take);
			got += take;
		}
		if (got == 0)
			return;
		mps_conn_sf_consume(src, sf, got);
		l->len += got;
	}
}

static void link_deliver(struct mps_conn *dst, int sf, struct link *l)
{
	if (l->len && mps_conn_sf_input(dst, sf, l->buf, l->len) < 0)
		die("the receiver refused a record");
	l->len = 0;
}

/* Moves everything both ways on subflow pair i (handshakes, ACKs). */
static void exchange(int i)
{
	struct link down = {.buf = up[i].buf + LINK_CAP / 2};
	int round;

	for (round = 0; round < 64; round++) {
		link_write(cli, csf[i], &up[i]);
		link_deliver(srv, ssf[i], &up[i]);
		link_write(srv, ssf[i], &down);
		link_deliver(cli, csf[i], &down);
	}
}

/* The program reads all there is; returns the bytes. */
static size_t app_read(struct mps_conn *conn)
{
	struct iovec iov[4];
	size_t total = 0;
	int n, i;

	while ((n = mps_conn_app_peek(conn, iov, 4)) > 0) {
		size_t got = 0;

		for (i = 0; i < n; i++)
			got += iov[i].iov_len;
		mps_conn_app_consume(conn, got);
		total += got;
	}
	return total;
}

/* Returns the ACKs of the server to the client, on both subflows. */
static void acks_back(void)
{
	static unsigned char buf[1 << 20];
	struct link down = {.buf = buf};
	int i;

	for (i = 0; i < 2; i++) {
		link_write(srv, ssf[i], &down);
		link_deliver(cli, csf[i], &down);
	}
}

static void setup(struct mps_token_table *tab)
{
	struct mps_conn_params p = {
		.version = 1,
		.rcv_buf = 1u << 20,
		.snd_buf = 1u << 20,
		.sched = MPS_SCHED_REDUNDANT,
	};
	struct mps_conn_event ev;

	cli = mps_conn_new(MPS_ROLE_CLIENT, &p, tab, 0);
	srv = mps_conn_new(MPS_ROLE_SERVER, &p, tab, 0);
	if (!cli || !srv || mps_conn_sf_add(cli) || mps_conn_sf_add(srv))
		die("cannot create the cores");
	mps_conn_app_write(cli, "hello", 5);
	mps_conn_app_write(srv, "world", 5);
	exchange(0);
	app_read(cli);
	app_read(srv);
	csf[1] = mps_conn_sf_add_join(cli, 2, false);
	ssf[1] = mps_conn_sf_accept_join(srv);
	if (csf[1] <= 0 || ssf[1] <= 0)
		die("cannot join");
	exchange(1);
	while (mps_conn_next_event(cli, &ev) || mps_conn_next_event(srv, &ev))
		;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static unsigned char chunk[256 * 1024];
	struct mps_token_table *tab;
	struct mps_conn_info si;
	uint64_t total, sent = 0, rcvd = 0;
	double t0, t;

	total = (uint64_t)(argc > 1 ? atoi(argv[1]) : 512) << 20;
	up[0].buf = malloc(LINK_CAP);
	up[1].buf = malloc(LINK_CAP);
	if (!up[0].buf || !up[1].buf || mps_token_table_create(&tab) < 0)
		die("out of memory");
	memset(chunk, 0xa5, sizeof(chunk));
	setup(tab);

	t0 = cpu_s();
	while (rcvd < total) {
		size_t room = mps_conn_app_room(cli);

		if (room > sizeof(chunk))
			room = sizeof(chunk);
		if (room > total - sent)
			room = (size_t)(total - sent);
		sent += mps_conn_app_write(cli, chunk, room);
		link_write(cli, csf[0], &up[0]);
		link_write(cli, csf[1], &up[1]);
		link_deliver(srv, ssf[0], &up[0]);
		rcvd += app_read(srv);
		link_deliver(srv, ssf[1], &up[1]);
		rcvd += app_read(srv);
		acks_back();
	}
	t = cpu_s() - t0;

	mps_conn_get_info(srv, &si);
	printf("mib=%llu cpu_s=%.3f ms_per_mib=%.3f dup_mib=%.1f "
	       "unchecked_mib=%.1f\n",
	       (unsigned long long)(total >> 20),
	       t,
	       t * 1000 / (total >> 20),
	       (double)si.stats.dup_bytes / (1 << 20),
	       (double)si.stats.dup_unchecked / (1 << 20));
	mps_conn_free(cli);
	mps_conn_free(srv);
	mps_token_table_destroy(tab);
	return 0;
}
