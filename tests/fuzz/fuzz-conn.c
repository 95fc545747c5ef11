/*
 * fuzz-conn.c: libFuzzer target for the connection core.
 *
 * A client and a server core are wired back to back and, after a valid
 * MP_CAPABLE exchange with a little data (or none, for a fresh server),
 * the input is read as a script: arbitrary bytes fed to either end as
 * subflow input, interleaved with program writes and reads, clock ticks,
 * joins and subflow ends.  After every step nothing may crash and each
 * core's memory stays within mps_conn_mem_bound().  Keys come from a
 * counter so that a crash replays.  Built by tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "mptcpshim/wire.h"
#include "conn.h"
#include "token.h"

struct script {
	const uint8_t *p;
	size_t left;
};

static uint8_t take(struct script *sc)
{
	if (sc->left == 0)
		return 0;
	sc->left--;
	return *sc->p++;
}

static int key_counter(void *arg, uint64_t *key)
{
	uint64_t *n = arg;

	*key = 0x0102030405060708ull + 0x1111111111111111ull * ++*n;
	return 0;
}

static struct mps_conn *client, *server;
static struct mps_conn_params params;
static size_t bound;
static uint64_t now;

static void check_bound(void)
{
	if (mps_conn_mem_used(client) > bound ||
	    mps_conn_mem_used(server) > bound)
		abort();
}

/* Everything src has for subflow sf; to dst when it is not NULL. */
static void move(struct mps_conn *src, int sf, struct mps_conn *dst, int dsf)
{
	int rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		struct iovec iov[8];
		int n = mps_conn_sf_peek(src, sf, iov, 8);
		size_t total = 0;
		int i;

		if (n == 0)
			return;
		for (i = 0; i < n; i++) {
			if (dst)
				mps_conn_sf_input(dst,
						  dsf,
						  iov[i].iov_base,
						  iov[i].iov_len);
			total += iov[i].iov_len;
		}
		mps_conn_sf_consume(src, sf, total);
	}
}

static void pump(void)
{
	int i;

	for (i = 0; i < 8; i++) {
		move(client, 0, server, 0);
		move(server, 0, client, 0);
	}
}

static void app_drain(struct mps_conn *conn, size_t max)
{
	struct iovec iov[2];
	int n = mps_conn_app_peek(conn, iov, 2);
	size_t total = 0;
	int i;

	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	mps_conn_app_consume(conn, total < max ? total : max);
}

static void step(struct script *sc)
{
	static const uint8_t fill[255 * 64];
	struct mps_conn *conn;
	uint8_t op = take(sc);
	size_t n;
	int sf;

	conn = (op & 0x80) ? client : server;
	sf = (op >> 4) & 7;
	switch (op & 0x0f) {
	case 0: case 1: case 2: case 3: case 4: case 5:
		/* subflow input: a length byte, then that many bytes */
		n = (size_t)take(sc) + 1;
		if (n > sc->left)
			n = sc->left;
		mps_conn_sf_input(conn, sf, sc->p, n);
		sc->p += n;
		sc->left -= n;
		break;
	case 6:
		mps_conn_app_write(conn, fill, (size_t)take(sc) * 64);
		break;
	case 7:
		app_drain(conn, (size_t)take(sc) * 256);
		break;
	case 8:
		now += (uint64_t)take(sc) * 10000;
		mps_conn_tick(client, now);
		mps_conn_tick(server, now);
		break;
	case 9:
		move(conn, sf, NULL, 0); /* output is written and lost */
		break;
	case 10:
		if (op & 0x80)
			mps_conn_sf_add_join(conn, take(sc), take(sc) & 1);
		else
			mps_conn_sf_accept_join(conn);
		break;
	case 11:
		mps_conn_sf_closed(conn, sf, take(sc) & 1 ? 104 : 0);
		break;
	case 12:
		mps_conn_app_shutdown(conn);
		break;
	case 13:
		pump();
		break;
	default: {
		struct mps_conn_event ev;

		while (mps_conn_next_event(conn, &ev))
			;
		break;
	}
	}
	check_bound();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mps_token_table *tab;
	struct script sc = {data, size};
	uint64_t keys = 0;
	uint8_t mode = take(&sc);
	int steps;

	if (mps_token_table_create(&tab))
		return 0;
	mps_token_table_set_key_source(tab, key_counter, &keys);
	memset(&params, 0, sizeof(params));
	params.version = mode & 1;
	params.checksum = mode & 2;
	params.sched = (mode >> 2) % 3;
	params.rcv_buf = 64 * 1024;
	params.snd_buf = 64 * 1024;
	params.fallback_us = 1000000;
	bound = mps_conn_mem_bound(&params);
	now = 0;
	client = mps_conn_new(MPS_ROLE_CLIENT, &params, tab, 0);
	server = mps_conn_new(MPS_ROLE_SERVER, &params, tab, 0);
	if (!client || !server)
		abort();
	mps_conn_sf_add(client);
	mps_conn_sf_add(server);
	if (mode & 0x20) {
		/* a valid start: handshake and a little data each way */
		mps_conn_app_write(client, "hello", 5);
		mps_conn_app_write(server, "world", 5);
		pump();
		app_drain(client, 5);
		app_drain(server, 5);
	}
	check_bound();
	for (steps = 0; sc.left > 0 && steps < 4096; steps++)
		step(&sc);
	pump();
	check_bound();
	mps_conn_free(client);
	mps_conn_free(server);
	mps_token_table_destroy(tab);
	return 0;
}
