/*
 * test-conn.c: unit tests of the connection core.
 *
 * Two cores are wired back to back: what one gives with mps_conn_sf_peek()
 * the other gets with mps_conn_sf_input(), whole, one byte at a time, or
 * in random pieces.  Records are decoded with the wire module to check
 * that what goes on the wire is what RFC 8684 says.  The multipath tests
 * wire N subflows through simulated links (see struct link) that can be
 * slowed, frozen or failed.  The scheduler's pure decisions are tested
 * with metrics directly.
 */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mptcpshim/wire.h"
#include "conn.h"
#include "conn-int.h" /* MPS_ACK_DELAY_US, MPS_ACK_HOLD_MIN, _SHARE */
#include "crypto.h"
#include "token.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* How the pump cuts the byte stream between the two ends. */
enum pump_mode {
	PUMP_WHOLE,  /* everything sf_peek gives, at once */
	PUMP_BYTES,  /* one byte per sf_input call */
	PUMP_RANDOM, /* random pieces of 1 to 3000 bytes */
};

/* A client and a server core, with their token tables. */
struct pair {
	struct mps_token_table *ctab;
	struct mps_token_table *stab; /* == ctab when shared */
	struct mps_conn *c;
	struct mps_conn *s;
	int c_err; /* first error sf_input returned at each end */
	int s_err;
	uint64_t rng;
};

static uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* The byte at position i of a test stream: no buffer of 10 MB needed. */
static uint8_t stream_byte(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)x;
}

static struct mps_conn_params params(int version, bool checksum)
{
	struct mps_conn_params p = {
		.version = version,
		.checksum = checksum,
		.rcv_buf = 256 * KIB,
		.snd_buf = 256 * KIB,
		.fallback_us = 1000000,
	};

	return p;
}

static struct mps_conn *conn_new(enum mps_role role,
				 const struct mps_conn_params *p,
				 struct mps_token_table *tab)
{
	struct mps_conn *conn = mps_conn_new(role, p, tab, 0);

	ck_assert_ptr_nonnull(conn);
	ck_assert_int_eq(mps_conn_sf_add(conn), 0);
	return conn;
}

static void pair_init(struct pair *pr,
		      const struct mps_conn_params *cp,
		      const struct mps_conn_params *sp,
		      bool shared)
{
	memset(pr, 0, sizeof(*pr));
	ck_assert_int_eq(mps_token_table_create(&pr->ctab), 0);
	if (shared)
		pr->stab = pr->ctab;
	else
		ck_assert_int_eq(mps_token_table_create(&pr->stab), 0);
	pr->c = conn_new(MPS_ROLE_CLIENT, cp, pr->ctab);
	pr->s = conn_new(MPS_ROLE_SERVER, sp, pr->stab);
	pr->rng = 0x1234567887654321ull;
}

static void pair_free(struct pair *pr)
{
	mps_conn_free(pr->c);
	mps_conn_free(pr->s);
	if (pr->stab != pr->ctab)
		mps_token_table_destroy(pr->stab);
	mps_token_table_destroy(pr->ctab);
}

/* Everything src has for its subflow, copied out and consumed. */
static size_t drain(struct mps_conn *src, uint8_t *buf, size_t cap)
{
	size_t total = 0;

	for (;;) {
		struct iovec iov[16];
		int n = mps_conn_sf_peek(src, 0, iov, 16);
		size_t got = 0;
		int i;

		if (n == 0)
			return total;
		for (i = 0; i < n && total + got < cap; i++) {
			size_t take = iov[i].iov_len;

			if (take > cap - total - got)
				take = cap - total - got;
			memcpy(buf + total + got, iov[i].iov_base, take);
			got += take;
		}
		mps_conn_sf_consume(src, 0, got);
		total += got;
		if (total == cap)
			return total;
	}
}

/* Feeds len bytes to dst in pieces; returns the first error, or 0. */
static int feed(struct pair *pr,
		struct mps_conn *dst,
		const uint8_t *buf,
		size_t len,
		enum pump_mode mode)
{
	while (len > 0) {
		size_t n = len;
		int err;

		if (mode == PUMP_BYTES)
			n = 1;
		else if (mode == PUMP_RANDOM)
			n = 1 + rng_next(&pr->rng) % 3000;
		if (n > len)
			n = len;
		err = mps_conn_sf_input(dst, 0, buf, n);
		if (err)
			return err;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Moves one batch from src to dst; returns the bytes moved. */
static size_t pump_one(struct pair *pr,
		       struct mps_conn *src,
		       struct mps_conn *dst,
		       int *err,
		       enum pump_mode mode)
{
	static uint8_t buf[1024 * 1024];
	size_t n = drain(src, buf, sizeof(buf));
	int rc;

	if (n == 0 || *err)
		return n;
	rc = feed(pr, dst, buf, n, mode);
	if (rc)
		*err = rc;
	return n;
}

/* Pumps both ways until nothing moves. */
static void pump(struct pair *pr, enum pump_mode mode)
{
	size_t moved;

	do {
		moved = pump_one(pr, pr->c, pr->s, &pr->s_err, mode);
		moved += pump_one(pr, pr->s, pr->c, &pr->c_err, mode);
	} while (moved > 0);
}

static size_t app_read(struct mps_conn *conn, uint8_t *buf, size_t cap)
{
	size_t total = 0;

	while (total < cap) {
		struct iovec iov[4];
		int n = mps_conn_app_peek(conn, iov, 4);
		size_t got = 0;
		int i;

		if (n == 0)
			break;
		for (i = 0; i < n && total + got < cap; i++) {
			size_t take = iov[i].iov_len;

			if (take > cap - total - got)
				take = cap - total - got;
			memcpy(buf + total + got, iov[i].iov_base, take);
			got += take;
		}
		mps_conn_app_consume(conn, got);
		total += got;
	}
	return total;
}

static void app_write_all(struct mps_conn *conn, const void *buf, size_t len)
{
	ck_assert_uint_eq(mps_conn_app_write(conn, buf, len), len);
}

static void expect_read(struct mps_conn *conn, const char *text)
{
	uint8_t buf[4096];
	size_t n = app_read(conn, buf, sizeof(buf));

	ck_assert_uint_eq(n, strlen(text));
	ck_assert_mem_eq(buf, text, n);
}

static void info(const struct mps_conn *conn, struct mps_conn_info *inf)
{
	mps_conn_get_info(conn, inf);
}

/* The first record in buf, which must decode. */
static void decode_first(const uint8_t *buf,
			 size_t len,
			 int version,
			 struct mps_record *rec)
{
	ck_assert_int_eq(mps_wire_decode_record(buf, len, version, rec), 0);
}

static void expect_event(struct mps_conn *conn,
			 enum mps_conn_event_kind kind,
			 struct mps_conn_event *ev);
static bool find_option(const uint8_t *buf,
			size_t len,
			int version,
			int subtype,
			struct mps_option *opt);

static void handshake(struct pair *pr)
{
	pump(pr, PUMP_WHOLE);
	ck_assert_int_eq(mps_conn_state(pr->c), MPS_CONN_ESTABLISHED);
	ck_assert_int_eq(mps_conn_state(pr->s), MPS_CONN_ESTABLISHED);
}

/*
 * Handshake and the records on the wire.
 */

static void check_handshake(int cv, int sv, int want, bool shared)
{
	struct mps_conn_params cp = params(cv, false);
	struct mps_conn_params sp = params(sv, false);
	struct mps_conn_info ci, si;
	struct pair pr;

	pair_init(&pr, &cp, &sp, shared);
	handshake(&pr);
	info(pr.c, &ci);
	info(pr.s, &si);

	ck_assert_int_eq(ci.version, want);
	ck_assert_int_eq(si.version, want);
	ck_assert_uint_eq(ci.peer_token, si.local_token);
	ck_assert_uint_eq(si.peer_token, ci.local_token);
	ck_assert_ptr_eq(mps_token_lookup(pr.ctab, ci.local_token), pr.c);
	ck_assert_ptr_eq(mps_token_lookup(pr.stab, si.local_token), pr.s);
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);

	app_write_all(pr.c, "ping", 4);
	app_write_all(pr.s, "pong", 4);
	pump(&pr, PUMP_WHOLE);
	expect_read(pr.s, "ping");
	expect_read(pr.c, "pong");
	pair_free(&pr);
}

START_TEST(handshake_v1_establishes_both_ends)
{
	check_handshake(MPS_VERSION_1, MPS_VERSION_1, MPS_VERSION_1, true);
}
END_TEST

START_TEST(handshake_v0_establishes_both_ends)
{
	check_handshake(MPS_VERSION_0, MPS_VERSION_0, MPS_VERSION_0, false);
}
END_TEST

START_TEST(v1_client_and_v0_server_agree_on_v0)
{
	check_handshake(MPS_VERSION_1, MPS_VERSION_0, MPS_VERSION_0, false);
}
END_TEST

START_TEST(v0_client_and_v1_server_agree_on_v0)
{
	check_handshake(MPS_VERSION_0, MPS_VERSION_1, MPS_VERSION_0, true);
}
END_TEST

START_TEST(client_first_record_is_mp_capable_with_a_registered_key)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	const struct mps_mp_capable *mpc;
	uint8_t buf[4096];
	struct mps_record rec;
	uint32_t token;
	uint64_t idsn;
	struct pair pr;
	size_t n;

	pair_init(&pr, &p, &p, true);
	app_write_all(pr.c, "hello", 5);
	n = drain(pr.c, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_1, &rec);

	ck_assert_int_eq(rec.opt.subtype, MPS_MP_CAPABLE);
	ck_assert_uint_eq(rec.opt_len, 12);
	ck_assert_uint_eq(rec.payload_len, 0);
	mpc = &rec.opt.mp_capable;
	ck_assert_uint_eq(mpc->version, MPS_VERSION_1);
	ck_assert_uint_eq(mpc->nkeys, 1);
	ck_assert(mpc->flags & MPS_MPC_HMAC);
	ck_assert(!(mpc->flags & MPS_MPC_CHECKSUM));
	ck_assert_int_eq(
		mps_crypto_key_derive(MPS_V1, mpc->sender_key, &token, &idsn),
		0);
	ck_assert_ptr_eq(mps_token_lookup(pr.ctab, token), pr.c);

	/* The early data follows: a DSS mapping at IDSN + 1, no data ACK. */
	decode_first(buf + rec.len, n - rec.len, MPS_VERSION_1, &rec);
	ck_assert_int_eq(rec.opt.subtype, MPS_DSS);
	ck_assert_uint_eq(rec.opt.dss.flags, MPS_DSS_MAP | MPS_DSS_DSN64);
	ck_assert(rec.opt.dss.dsn == idsn + 1);
	ck_assert_uint_eq(rec.opt.dss.ssn, 1);
	ck_assert_uint_eq(rec.opt.dss.data_len, 5);
	ck_assert_uint_eq(rec.payload_len, 5);
	pair_free(&pr);
}
END_TEST

START_TEST(one_peek_gives_every_queued_record)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	struct iovec iov[64];
	struct mps_record rec;
	uint8_t buf[4096];
	size_t n = 0;
	int cnt;
	int i, j;

	/* Keys are random: the first DSN lands anywhere in 64 bits. */
	for (i = 0; i < 8; i++) {
		struct mps_conn *c = conn_new(MPS_ROLE_CLIENT, &p, NULL);

		app_write_all(c, "hello", 5);
		cnt = mps_conn_sf_peek(c, 0, iov, 64);
		for (n = 0, j = 0; j < cnt; j++) {
			memcpy(buf + n, iov[j].iov_base, iov[j].iov_len);
			n += iov[j].iov_len;
		}
		mps_conn_sf_consume(c, 0, n);
		ck_assert_int_eq(mps_conn_sf_peek(c, 0, iov, 64), 0);

		decode_first(buf, n, MPS_VERSION_1, &rec);
		ck_assert_int_eq(rec.opt.subtype, MPS_MP_CAPABLE);
		decode_first(buf + rec.len, n - rec.len, MPS_VERSION_1, &rec);
		ck_assert_int_eq(rec.opt.subtype, MPS_DSS);
		ck_assert_uint_eq(rec.payload_len, 5);
		mps_conn_free(c);
	}
}
END_TEST

START_TEST(partial_writes_resume_inside_a_record)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	uint8_t data[3000];
	struct pair pr;
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	pair_init(&pr, &p, &p, true);
	app_write_all(pr.c, data, sizeof(data));
	/* The caller manages 1 to 7 bytes per write. */
	for (i = 0; i < 20000; i++) {
		struct iovec iov[8];
		int cnt = mps_conn_sf_peek(pr.c, 0, iov, 8);
		size_t take;

		if (cnt == 0)
			break;
		take = 1 + i % 7;
		if (take > iov[0].iov_len)
			take = iov[0].iov_len;
		ck_assert_int_eq(
			mps_conn_sf_input(pr.s, 0, iov[0].iov_base, take), 0);
		mps_conn_sf_consume(pr.c, 0, take);
		pump_one(&pr, pr.s, pr.c, &pr.c_err, PUMP_WHOLE);
	}
	{
		uint8_t got[4000];

		ck_assert_uint_eq(app_read(pr.s, got, sizeof(got)),
				  sizeof(data));
		ck_assert_mem_eq(got, data, sizeof(data));
	}
	pair_free(&pr);
}
END_TEST

START_TEST(server_answers_with_its_key_and_the_lower_version)
{
	struct mps_conn_params cp = params(MPS_VERSION_1, false);
	struct mps_conn_params sp = params(MPS_VERSION_0, true);
	uint8_t buf[4096];
	struct mps_conn_info si;
	struct mps_record rec;
	struct pair pr;
	size_t n;

	pair_init(&pr, &cp, &sp, false);
	n = drain(pr.c, buf, sizeof(buf));
	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_WHOLE), 0);
	n = drain(pr.s, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_0, &rec);
	info(pr.s, &si);

	ck_assert_int_eq(rec.opt.subtype, MPS_MP_CAPABLE);
	ck_assert_uint_eq(rec.opt_len, 12);
	ck_assert_uint_eq(rec.opt.mp_capable.version, MPS_VERSION_0);
	ck_assert(rec.opt.mp_capable.flags & MPS_MPC_CHECKSUM);
	/* Its token in the table is that of the key it sent, under v0. */
	ck_assert_ptr_eq(mps_token_lookup(pr.stab, si.local_token), pr.s);
	{
		uint32_t token;

		mps_crypto_key_derive(
			MPS_V0, rec.opt.mp_capable.sender_key, &token, NULL);
		ck_assert_uint_eq(token, si.local_token);
	}
	pair_free(&pr);
}
END_TEST

START_TEST(early_data_survives_a_downgrade_and_a_checksum_upgrade)
{
	struct mps_conn_params cp = params(MPS_VERSION_1, false);
	struct mps_conn_params sp = params(MPS_VERSION_0, true);
	struct mps_conn_info ci;
	struct pair pr;

	pair_init(&pr, &cp, &sp, false);
	/* Sent before the client learns of v0 and of checksums. */
	app_write_all(pr.c, "early", 5);
	pump(&pr, PUMP_RANDOM);
	app_write_all(pr.c, " and late", 9);
	pump(&pr, PUMP_RANDOM);
	expect_read(pr.s, "early and late");

	info(pr.c, &ci);
	ck_assert_int_eq(ci.version, MPS_VERSION_0);
	ck_assert(ci.checksum);
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
}
END_TEST

START_TEST(server_sends_nothing_before_the_client_record)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct iovec iov[4];
	struct pair pr;

	pair_init(&pr, &p, &p, true);
	app_write_all(pr.s, "banner", 6);
	ck_assert_int_eq(mps_conn_sf_peek(pr.s, 0, iov, 4), 0);
	ck_assert_uint_gt(mps_conn_tick(pr.s, 1000), 0);
	ck_assert_int_eq(mps_conn_sf_peek(pr.s, 0, iov, 4), 0);

	pump(&pr, PUMP_WHOLE);
	expect_read(pr.c, "banner");
	pair_free(&pr);
}
END_TEST

START_TEST(third_ack_carries_the_first_data_in_v1)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	uint8_t buf[4096];
	struct mps_record rec;
	struct pair pr;
	size_t n;

	pair_init(&pr, &p, &p, true);
	n = drain(pr.c, buf, sizeof(buf));
	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_WHOLE), 0);
	n = drain(pr.s, buf, sizeof(buf));
	app_write_all(pr.c, "first", 5);
	ck_assert_int_eq(feed(&pr, pr.c, buf, n, PUMP_WHOLE), 0);

	n = drain(pr.c, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_1, &rec);
	ck_assert_int_eq(rec.opt.subtype, MPS_MP_CAPABLE);
	ck_assert_uint_eq(rec.opt_len, 22);
	ck_assert_uint_eq(rec.opt.mp_capable.nkeys, 2);
	ck_assert_uint_eq(rec.opt.mp_capable.data_len, 5);
	ck_assert_uint_eq(rec.payload_len, 5);

	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_WHOLE), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_ESTABLISHED);
	expect_read(pr.s, "first");
	pair_free(&pr);
}
END_TEST

START_TEST(server_resets_when_the_third_ack_echoes_a_wrong_key)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_MP_CAPABLE};
	uint8_t buf[4096];
	struct mps_record rec;
	struct pair pr;
	size_t n;
	int len;

	pair_init(&pr, &p, &p, true);
	n = drain(pr.c, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_1, &rec);
	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_WHOLE), 0);
	drain(pr.s, buf, sizeof(buf));

	opt.mp_capable.version = MPS_VERSION_1;
	opt.mp_capable.flags = MPS_MPC_HMAC;
	opt.mp_capable.nkeys = 2;
	opt.mp_capable.sender_key = rec.opt.mp_capable.sender_key;
	opt.mp_capable.receiver_key = 0x0102030405060708ull;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	ck_assert_int_lt(mps_conn_sf_input(pr.s, 0, buf, (size_t)len), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_RESET);
	ck_assert_int_eq(mps_conn_error(pr.s), ECONNRESET);
	pair_free(&pr);
}
END_TEST

/*
 * Checksums.
 */

static bool checksum_agreed(bool client, bool server)
{
	struct mps_conn_params cp = params(MPS_VERSION_1, client);
	struct mps_conn_params sp = params(MPS_VERSION_1, server);
	struct mps_conn_info ci, si;
	struct pair pr;

	pair_init(&pr, &cp, &sp, true);
	handshake(&pr);
	app_write_all(pr.c, "checked", 7);
	app_write_all(pr.s, "both ways", 9);
	pump(&pr, PUMP_RANDOM);
	expect_read(pr.s, "checked");
	expect_read(pr.c, "both ways");
	info(pr.c, &ci);
	info(pr.s, &si);
	ck_assert_int_eq(ci.checksum, si.checksum);
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
	return ci.checksum;
}

START_TEST(checksums_are_used_when_either_end_requires_them)
{
	ck_assert(!checksum_agreed(false, false));
	ck_assert(checksum_agreed(true, false));
	ck_assert(checksum_agreed(false, true));
	ck_assert(checksum_agreed(true, true));
}
END_TEST

/* Finds the first DSS record with payload in buf. */
static size_t find_payload(const uint8_t *buf,
			   size_t len,
			   int version,
			   struct mps_record *rec)
{
	size_t off = 0;

	while (off < len) {
		decode_first(buf + off, len - off, version, rec);
		if (rec->opt.subtype == MPS_DSS && rec->payload_len > 0)
			return off;
		off += rec->len;
	}
	ck_abort_msg("no DSS with payload");
	return 0;
}

START_TEST(data_records_carry_a_valid_checksum)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	const struct mps_dss *dss;
	uint8_t buf[4096];
	struct mps_record rec;
	struct pair pr;
	size_t off;
	size_t n;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	app_write_all(pr.c, "hello world", 11);
	n = drain(pr.c, buf, sizeof(buf));
	off = find_payload(buf, n, MPS_VERSION_1, &rec);
	dss = &rec.opt.dss;

	ck_assert(dss->has_checksum);
	ck_assert(dss->flags & MPS_DSS_ACK64);
	ck_assert(dss->flags & MPS_DSS_DSN64);
	ck_assert(mps_dss_csum_ok(dss->dsn,
				  dss->ssn,
				  dss->data_len,
				  buf + off + rec.payload_off,
				  rec.payload_len,
				  dss->checksum));
	pair_free(&pr);
}
END_TEST

START_TEST(a_bad_checksum_on_the_only_subflow_falls_back_with_mp_fail)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	struct mps_conn_event ev;
	struct mps_conn_info si;
	struct mps_option opt;
	uint8_t buf[4096];
	struct mps_record rec;
	struct pair pr;
	size_t off;
	size_t n;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	app_write_all(pr.c, "hello world", 11);
	app_write_all(pr.s, "queued before", 13);
	n = drain(pr.c, buf, sizeof(buf));
	off = find_payload(buf, n, MPS_VERSION_1, &rec);
	buf[off + rec.payload_off + 3] ^= 0x20;

	/* RFC 8684 section 3.7: MP_FAIL, not a reset, on the only subflow. */
	ck_assert_int_eq(mps_conn_sf_input(pr.s, 0, buf, n), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_FALLBACK);
	ck_assert_int_eq(mps_conn_app_peek(pr.s, (struct iovec[1]){0}, 1), 0);
	expect_event(pr.s, MPS_EV_MP_FAIL, &ev);
	n = drain(pr.s, buf, sizeof(buf));
	ck_assert(find_option(buf, n, MPS_VERSION_1, MPS_MP_FAIL, &opt));
	ck_assert(find_option(buf, n, MPS_VERSION_1, MPS_DSS, &opt));
	ck_assert(mps_wire_is_infinite_mapping(&opt));
	ck_assert_int_eq(feed(&pr, pr.c, buf, n, PUMP_BYTES), 0);
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_FALLBACK);

	/* From now on plain TCP both ways, with the exact bytes. */
	pump(&pr, PUMP_RANDOM);
	expect_read(pr.s, "hello world");
	expect_read(pr.c, "queued before");
	app_write_all(pr.c, "raw now", 7);
	app_write_all(pr.s, "and back", 8);
	pump(&pr, PUMP_BYTES);
	expect_read(pr.s, "raw now");
	expect_read(pr.c, "and back");
	info(pr.s, &si);
	ck_assert_uint_eq(si.stats.csum_errors, 1);
	ck_assert_uint_eq(si.stats.mp_fail, 1);
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
}
END_TEST

START_TEST(mp_fail_without_checksums_is_ignored_and_counted)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_MP_FAIL};
	struct mps_conn_info si;
	uint8_t buf[64];
	struct pair pr;
	int len;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_eq(mps_conn_sf_input(pr.s, 0, buf, (size_t)len), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_ESTABLISHED);
	info(pr.s, &si);
	ck_assert_uint_eq(si.stats.signals_refused, 1);
	app_write_all(pr.c, "fine", 4);
	pump(&pr, PUMP_WHOLE);
	expect_read(pr.s, "fine");
	pair_free(&pr);
}
END_TEST

/*
 * Bulk data and flow control.
 */

/* Writes up to want bytes of the stream from *pos; advances *pos. */
static void write_stream(struct mps_conn *conn,
			 uint64_t seed,
			 uint64_t *pos,
			 uint64_t want,
			 size_t max)
{
	uint8_t buf[64 * 1024];
	size_t n = mps_conn_app_room(conn);
	size_t i;

	if (n > max)
		n = max;
	if (n > sizeof(buf))
		n = sizeof(buf);
	if (n > want - *pos)
		n = (size_t)(want - *pos);
	for (i = 0; i < n; i++)
		buf[i] = stream_byte(seed, *pos + i);
	*pos += mps_conn_app_write(conn, buf, n);
}

/* Reads up to max bytes and checks them against the stream. */
static void
read_stream(struct mps_conn *conn, uint64_t seed, uint64_t *pos, size_t max)
{
	uint8_t buf[64 * 1024];
	size_t n;
	size_t i;

	if (max > sizeof(buf))
		max = sizeof(buf);
	n = app_read(conn, buf, max);
	for (i = 0; i < n; i++) {
		if (buf[i] != stream_byte(seed, *pos + i))
			ck_abort_msg("byte %llu differs",
				     (unsigned long long)(*pos + i));
	}
	*pos += n;
}

static void transfer_both_ways(int version, bool checksum, uint64_t total)
{
	struct mps_conn_params p = params(version, checksum);
	uint64_t c_wr = 0, c_rd = 0, s_wr = 0, s_rd = 0;
	struct pair pr;
	int rounds = 0;

	pair_init(&pr, &p, &p, true);
	while (c_rd < total || s_rd < total) {
		size_t piece = 1 + rng_next(&pr.rng) % (40 * KIB);

		write_stream(pr.c, 1, &c_wr, total, piece);
		write_stream(pr.s, 2, &s_wr, total, piece);
		pump_one(&pr, pr.c, pr.s, &pr.s_err, PUMP_RANDOM);
		pump_one(&pr, pr.s, pr.c, &pr.c_err, PUMP_RANDOM);
		read_stream(pr.s, 1, &s_rd, 1 + rng_next(&pr.rng) % (80 * KIB));
		read_stream(pr.c, 2, &c_rd, 1 + rng_next(&pr.rng) % (80 * KIB));
		ck_assert_int_eq(pr.c_err, 0);
		ck_assert_int_eq(pr.s_err, 0);
		ck_assert_int_lt(++rounds, 100000);
	}
	ck_assert(c_wr == total && s_wr == total);
	pair_free(&pr);
}

START_TEST(ten_megabytes_each_way_arrive_intact_in_random_pieces)
{
	transfer_both_ways(MPS_VERSION_1, false, 10 * MIB);
}
END_TEST

START_TEST(two_megabytes_each_way_arrive_intact_with_v0_checksums)
{
	transfer_both_ways(MPS_VERSION_0, true, 2 * MIB);
}
END_TEST

START_TEST(records_split_at_every_byte_are_parsed)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	struct pair pr;

	pair_init(&pr, &p, &p, true);
	app_write_all(pr.c, "early data", 10);
	pump(&pr, PUMP_BYTES);
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_ESTABLISHED);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_ESTABLISHED);
	expect_read(pr.s, "early data");

	app_write_all(pr.s, "one byte at a time", 18);
	pump(&pr, PUMP_BYTES);
	expect_read(pr.c, "one byte at a time");
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
}
END_TEST

static size_t mem_held(const struct mps_conn *conn)
{
	struct mps_conn_info inf;

	info(conn, &inf);
	return inf.snd_held + inf.rcv_held + inf.reasm_mem;
}

START_TEST(a_slow_reader_pushes_back_and_memory_stays_bounded)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	uint64_t wr = 0, rd = 0;
	struct mps_conn_info si;
	struct pair pr;
	int i;

	p.rcv_buf = 100 * KIB;
	p.snd_buf = 70 * KIB;
	pair_init(&pr, &p, &p, true);
	handshake(&pr);

	/* The server's program never reads: the client's room runs out. */
	for (i = 0; i < 200 && mps_conn_app_room(pr.c) > 0; i++) {
		write_stream(pr.c, 7, &wr, UINT64_MAX, SIZE_MAX);
		pump(&pr, PUMP_RANDOM);
		ck_assert_uint_le(mem_held(pr.c) + mem_held(pr.s),
				  p.rcv_buf + p.snd_buf + 4 * KIB);
	}
	ck_assert_uint_eq(mps_conn_app_room(pr.c), 0);
	info(pr.s, &si);
	ck_assert_uint_eq(si.rcv_held, p.rcv_buf);
	ck_assert(wr == p.rcv_buf + p.snd_buf);

	/* Reading reopens the window, and every byte arrives. */
	for (i = 0; i < 1000 && rd < wr + 1 * MIB; i++) {
		write_stream(pr.c, 7, &wr, UINT64_MAX, SIZE_MAX);
		pump(&pr, PUMP_RANDOM);
		read_stream(pr.s, 7, &rd, 1 + rng_next(&pr.rng) % (30 * KIB));
		ck_assert_uint_le(mem_held(pr.c) + mem_held(pr.s),
				  p.rcv_buf + p.snd_buf + 4 * KIB);
	}
	ck_assert(rd >= 1 * MIB);
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
}
END_TEST

START_TEST(data_beyond_the_advertised_window_resets_the_subflow)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_DSS};
	struct mps_conn_info ci, si;
	uint8_t buf[64];
	struct pair pr;
	int len;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	info(pr.c, &ci);
	info(pr.s, &si);

	opt.dss.flags = MPS_DSS_MAP | MPS_DSS_DSN64;
	opt.dss.dsn = si.rcv_right;
	opt.dss.ssn = 1;
	opt.dss.data_len = 1;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 1, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	buf[len] = 'x';
	ck_assert_int_lt(mps_conn_sf_input(pr.s, 0, buf, (size_t)len + 1), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_RESET);
	ck_assert_uint_eq(ci.snd_right, si.rcv_right);
	pair_free(&pr);
}
END_TEST

/*
 * Closing.
 */

START_TEST(data_fin_both_ways_closes_the_connection)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	struct pair pr;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	app_write_all(pr.c, "request", 7);
	mps_conn_app_shutdown(pr.c);
	ck_assert_uint_eq(mps_conn_app_room(pr.c), 0);
	pump(&pr, PUMP_RANDOM);

	ck_assert(!mps_conn_peer_finished(pr.s));
	expect_read(pr.s, "request");
	ck_assert(mps_conn_peer_finished(pr.s));
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_ESTABLISHED);

	app_write_all(pr.s, "response", 8);
	mps_conn_app_shutdown(pr.s);
	pump(&pr, PUMP_RANDOM);
	expect_read(pr.c, "response");
	ck_assert(mps_conn_peer_finished(pr.c));
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_CLOSED);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_CLOSED);
	ck_assert(mps_conn_sf_done(pr.c, 0));
	ck_assert(mps_conn_sf_done(pr.s, 0));

	/* The subflows then end; that changes nothing. */
	mps_conn_sf_closed(pr.c, 0, 0);
	mps_conn_sf_closed(pr.s, 0, 0);
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_CLOSED);
	ck_assert_int_eq(mps_conn_error(pr.c), 0);
	ck_assert_int_eq(mps_conn_error(pr.s), 0);
	pair_free(&pr);
}
END_TEST

/*
 * Data ACK policy.
 */

static uint64_t records_out(const struct mps_conn *conn)
{
	struct mps_conn_info ci;

	info(conn, &ci);
	return ci.stats.records_out;
}

/* Everything src has for its subflow goes to dst; returns the bytes. */
static size_t hand_over(struct pair *pr, struct mps_conn *src, int *err)
{
	return pump_one(pr, src, src == pr->c ? pr->s : pr->c, err, PUMP_WHOLE);
}

/*
 * As the runtime does it: each input is followed by a tick and a peek of
 * the subflow before the program has answered; the answer comes 20 us
 * later and takes the data ACK along, so no record goes without data.
 */
START_TEST(a_request_and_its_answer_send_no_ack_only_record)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	uint64_t now = 1000, c0, s0;
	struct mps_conn_info ci;
	uint8_t byte = 'q';
	struct pair pr;
	int i;

	pair_init(&pr, &p, &p, false);
	handshake(&pr);
	c0 = records_out(pr.c);
	s0 = records_out(pr.s);
	for (i = 0; i < 1000; i++) {
		app_write_all(pr.c, &byte, 1);
		mps_conn_tick(pr.c, now += 10);
		ck_assert_uint_gt(hand_over(&pr, pr.c, &pr.s_err), 0);
		mps_conn_tick(pr.s, now += 10);
		ck_assert_uint_eq(hand_over(&pr, pr.s, &pr.c_err), 0);
		ck_assert_uint_eq(app_read(pr.s, &byte, 1), 1);
		app_write_all(pr.s, &byte, 1);
		mps_conn_tick(pr.s, now += 10);
		ck_assert_uint_gt(hand_over(&pr, pr.s, &pr.c_err), 0);
		mps_conn_tick(pr.c, now += 10);
		ck_assert_uint_eq(hand_over(&pr, pr.c, &pr.s_err), 0);
		ck_assert_uint_eq(app_read(pr.c, &byte, 1), 1);
	}
	ck_assert_uint_eq(records_out(pr.c) - c0, 1000);
	ck_assert_uint_eq(records_out(pr.s) - s0, 1000);
	info(pr.c, &ci);
	ck_assert_uint_eq(ci.snd_held, 0); /* every request acked */

	/* The last answer is not followed by data: its ACK goes alone once
	 * the delay ran out, and not before. */
	info(pr.s, &ci);
	ck_assert_uint_eq(ci.snd_held, 1);
	ck_assert_uint_eq(mps_conn_tick(pr.c, now += 10),
			  MPS_ACK_DELAY_US - 10);
	ck_assert_uint_eq(hand_over(&pr, pr.c, &pr.s_err), 0);
	ck_assert_uint_eq(mps_conn_tick(pr.c, now += MPS_ACK_DELAY_US), 0);
	ck_assert_uint_gt(hand_over(&pr, pr.c, &pr.s_err), 0);
	ck_assert_uint_eq(records_out(pr.c) - c0, 1001);
	info(pr.s, &ci);
	ck_assert_uint_eq(ci.snd_held, 0);
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
}
END_TEST

/*
 * A one-way transfer in records of 1400 bytes, without the clock moving,
 * from a sender with snd_buf to a receiver with rcv_buf.  Returns the
 * most the sender held unacknowledged; *acks is the receiver's records
 * (it sends no data: ACK-only and window records).
 */
static size_t bulk_one_way(size_t snd_buf, size_t rcv_buf, uint64_t total,
			   uint64_t *acks)
{
	struct mps_conn_params cp = params(MPS_VERSION_1, false);
	struct mps_conn_params sp = cp;
	static uint8_t chunk[1400], sink[4096];
	struct mps_conn_info ci;
	uint64_t sent = 0, s0;
	size_t most = 0;
	struct pair pr;

	cp.snd_buf = (uint32_t)snd_buf;
	sp.rcv_buf = (uint32_t)rcv_buf;
	pair_init(&pr, &cp, &sp, false);
	handshake(&pr);
	s0 = records_out(pr.s);
	while (sent < total) {
		app_write_all(pr.c, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		hand_over(&pr, pr.c, &pr.s_err);
		while (app_read(pr.s, sink, sizeof(sink)) > 0)
			;
		hand_over(&pr, pr.s, &pr.c_err);
		info(pr.c, &ci);
		if (ci.snd_held > most)
			most = ci.snd_held;
	}
	*acks = records_out(pr.s) - s0;
	ck_assert_int_eq(pr.c_err, 0);
	ck_assert_int_eq(pr.s_err, 0);
	pair_free(&pr);
	return most;
}

/*
 * The receiver holds its data ACK for a sixteenth of its ring (256 KiB
 * of 4 MiB): the data ACKs alone keep the sender's ring from filling, one
 * ACK-only record per hold, and a window record per eighth of the ring.
 */
START_TEST(a_bulk_transfer_is_acked_within_the_hold_bound)
{
	const size_t hold = 4 * MIB / MPS_ACK_HOLD_SHARE;
	const uint64_t total = 16 * MIB;
	uint64_t acks;
	size_t most = bulk_one_way(4 * MIB, 4 * MIB, total, &acks);

	ck_assert_uint_lt(most, hold + 1400);
	ck_assert_uint_ge(most, hold - 1400);
	ck_assert_uint_le(acks, total / hold + total / (4 * MIB / 8) + 2);
	/* the least hold, for a receive ring of 256 KiB */
	most = bulk_one_way(4 * MIB, 256 * KIB, total, &acks);
	ck_assert_uint_lt(most, MPS_ACK_HOLD_MIN + 1400);
}
END_TEST

/*
 * A sender whose ring (64 KiB) is smaller than the receiver's hold asks
 * for the data ACK once half of its ring waits for one, and the receiver
 * answers at once: without the clock moving, the transfer goes on (with
 * no ask, the sender's ring would fill and wait for the delay).
 */
START_TEST(a_small_send_ring_asks_for_the_data_ack)
{
	uint64_t acks;
	size_t most = bulk_one_way(64 * KIB, 4 * MIB, 4 * MIB, &acks);

	ck_assert_uint_lt(most, 32 * KIB + 2 * 1400);
	ck_assert_uint_ge(most, 32 * KIB - 2 * 1400);
	ck_assert_uint_le(acks, 4 * MIB / (32 * KIB - 1400) + 16 + 2);
}
END_TEST

START_TEST(a_bare_data_fin_has_subflow_sequence_zero_and_length_one)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	uint8_t buf[4096];
	struct mps_conn_info ci;
	struct mps_record rec;
	struct pair pr;
	size_t n;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	info(pr.c, &ci);
	mps_conn_app_shutdown(pr.c);
	n = drain(pr.c, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_1, &rec);

	ck_assert_int_eq(rec.opt.subtype, MPS_DSS);
	ck_assert(rec.opt.dss.flags & MPS_DSS_FIN);
	ck_assert_uint_eq(rec.opt.dss.ssn, 0);
	ck_assert_uint_eq(rec.opt.dss.data_len, 1);
	ck_assert(rec.opt.dss.dsn == ci.snd_nxt);
	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_WHOLE), 0);
	ck_assert(mps_conn_peer_finished(pr.s));
	pair_free(&pr);
}
END_TEST

START_TEST(subflow_end_without_data_fin_resets_the_connection)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct pair pr;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	mps_conn_sf_closed(pr.s, 0, 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_RESET);
	ck_assert_int_eq(mps_conn_error(pr.s), ECONNRESET);
	mps_conn_sf_closed(pr.c, 0, ETIMEDOUT);
	ck_assert_int_eq(mps_conn_error(pr.c), ETIMEDOUT);
	pair_free(&pr);
}
END_TEST

START_TEST(abort_sends_fastclose_and_the_peer_resets)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_info si;
	uint8_t buf[4096];
	struct mps_record rec;
	struct pair pr;
	size_t n;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	app_write_all(pr.c, "never sent", 10);
	mps_conn_abort(pr.c);
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_RESET);
	ck_assert_uint_eq(mps_conn_app_room(pr.c), 0);

	n = drain(pr.c, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_1, &rec);
	ck_assert_uint_eq(rec.len, n);
	ck_assert_int_eq(rec.opt.subtype, MPS_MP_FASTCLOSE);
	info(pr.s, &si);
	{
		uint32_t token;

		mps_crypto_key_derive(MPS_V1,
				      rec.opt.mp_fastclose.receiver_key,
				      &token,
				      NULL);
		ck_assert_uint_eq(token, si.local_token);
	}
	ck_assert(mps_conn_sf_done(pr.c, 0));

	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_BYTES), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_RESET);
	ck_assert_int_eq(mps_conn_error(pr.s), ECONNRESET);
	pair_free(&pr);
}
END_TEST

START_TEST(mp_tcprst_from_the_peer_resets_the_connection)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_MP_TCPRST};
	uint8_t buf[64];
	struct pair pr;
	int len;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	opt.mp_tcprst.reason = MPS_RST_POOR_PERFORMANCE;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_eq(mps_conn_sf_input(pr.c, 0, buf, (size_t)len), 0);
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_RESET);
	ck_assert_int_eq(mps_conn_error(pr.c), ECONNRESET);
	pair_free(&pr);
}
END_TEST

START_TEST(a_malformed_record_queues_mp_tcprst_and_resets)
{
	static const uint8_t garbage[] = {0x4d, 4, 0, 0, 30, 4, 0x90, 0};
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	uint8_t buf[4096];
	struct mps_record rec;
	struct pair pr;
	size_t n;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	ck_assert_int_lt(mps_conn_sf_input(pr.c, 0, garbage, sizeof(garbage)),
			 0);
	ck_assert_int_eq(mps_conn_state(pr.c), MPS_CONN_RESET);
	ck_assert_int_eq(mps_conn_error(pr.c), ECONNRESET);

	n = drain(pr.c, buf, sizeof(buf));
	decode_first(buf, n, MPS_VERSION_1, &rec);
	ck_assert_int_eq(rec.opt.subtype, MPS_MP_TCPRST);
	ck_assert_uint_eq(rec.opt.mp_tcprst.reason, MPS_RST_MPTCP_ERROR);
	ck_assert(mps_conn_sf_done(pr.c, 0));

	/* The peer reads it and resets too. */
	ck_assert_int_eq(feed(&pr, pr.s, buf, n, PUMP_WHOLE), 0);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_RESET);
	pair_free(&pr);
}
END_TEST

START_TEST(an_unexpected_option_resets_the_subflow)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_MP_JOIN};
	uint8_t buf[64];
	struct pair pr;
	int len;

	pair_init(&pr, &p, &p, true);
	handshake(&pr);
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_eq(mps_conn_sf_input(pr.s, 0, buf, (size_t)len), -EPROTO);
	ck_assert_int_eq(mps_conn_state(pr.s), MPS_CONN_RESET);
	pair_free(&pr);
}
END_TEST

/*
 * Fallback.
 */

START_TEST(server_falls_back_when_the_first_bytes_are_not_a_record)
{
	static const char req[] = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *s;
	struct mps_token_table *tab;
	uint8_t buf[4096];
	size_t n;

	ck_assert_int_eq(mps_token_table_create(&tab), 0);
	s = conn_new(MPS_ROLE_SERVER, &p, tab);
	app_write_all(s, "held", 4);
	/* Two bytes first: the marker alone already proves it plain. */
	ck_assert_int_eq(mps_conn_sf_input(s, 0, (const uint8_t *)req, 2), 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);
	ck_assert_int_eq(
		mps_conn_sf_input(
			s, 0, (const uint8_t *)req + 2, sizeof(req) - 3),
		0);
	expect_read(s, req);

	app_write_all(s, " and more", 9);
	n = drain(s, buf, sizeof(buf));
	ck_assert_uint_eq(n, 13);
	ck_assert_mem_eq(buf, "held and more", 13);

	mps_conn_app_shutdown(s);
	ck_assert(mps_conn_sf_done(s, 0));
	mps_conn_sf_closed(s, 0, 0);
	ck_assert(mps_conn_peer_finished(s));
	mps_conn_free(s);
	mps_token_table_destroy(tab);
}
END_TEST

START_TEST(server_falls_back_on_a_record_that_is_not_mp_capable)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	/* The marker, then bytes that are no MPTCP option. */
	static const uint8_t plain[] = {'M', 12, 'x', 'y', 'z', 'w', 'v'};
	struct mps_conn *s;
	uint8_t buf[64];
	size_t n;

	s = conn_new(MPS_ROLE_SERVER, &p, NULL);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, plain, 4), 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_HANDSHAKE);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, plain + 4, 3), 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);
	n = app_read(s, buf, sizeof(buf));
	ck_assert_uint_eq(n, sizeof(plain));
	ck_assert_mem_eq(buf, plain, n);
	mps_conn_free(s);
}
END_TEST

START_TEST(server_falls_back_when_nothing_arrives_in_time)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *s = mps_conn_new(MPS_ROLE_SERVER, &p, NULL, 5000);
	uint8_t buf[64];
	size_t n;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(mps_conn_sf_add(s), 0);
	app_write_all(s, "220 smtp ready\r\n", 16);
	ck_assert(mps_conn_tick(s, 5000 + 400000) == 600000);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_HANDSHAKE);
	ck_assert(mps_conn_tick(s, 5000 + 1000000) == 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);

	n = drain(s, buf, sizeof(buf));
	ck_assert_uint_eq(n, 16);
	ck_assert_mem_eq(buf, "220 smtp ready\r\n", 16);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, (const uint8_t *)"EHLO", 4),
			 0);
	expect_read(s, "EHLO");
	mps_conn_free(s);
}
END_TEST

/* The client's first record, as its core would send it. */
static size_t client_first_record(uint8_t *buf, size_t cap)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *c = conn_new(MPS_ROLE_CLIENT, &p, NULL);
	size_t n = drain(c, buf, cap);

	mps_conn_free(c);
	return n;
}

START_TEST(a_first_record_after_the_fallback_timer_resets)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *s = mps_conn_new(MPS_ROLE_SERVER, &p, NULL, 0);
	uint8_t rec[256], buf[64];
	size_t n = client_first_record(rec, sizeof(rec));

	ck_assert_uint_gt(n, 3);
	ck_assert_int_eq(mps_conn_sf_add(s), 0);
	ck_assert(mps_conn_tick(s, 1000000) == 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);
	/* split, as a slow client's bytes may come */
	ck_assert_int_eq(mps_conn_sf_input(s, 0, rec, 3), 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);
	ck_assert_uint_eq(app_read(s, buf, sizeof(buf)), 0);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, rec + 3, n - 3), 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_RESET);
	ck_assert_int_eq(mps_conn_error(s), ECONNRESET);
	ck_assert_uint_eq(app_read(s, buf, sizeof(buf)), 0);
	mps_conn_free(s);
}
END_TEST

START_TEST(a_slow_first_record_is_waited_for_once_its_header_is_in)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *s = mps_conn_new(MPS_ROLE_SERVER, &p, NULL, 0);
	uint8_t rec[256];
	size_t n = client_first_record(rec, sizeof(rec));

	ck_assert_int_eq(mps_conn_sf_add(s), 0);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, rec, 6), 0);
	ck_assert(mps_conn_tick(s, 1000000) > 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_HANDSHAKE);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, rec + 6, n - 6), 0);
	ck_assert_int_ne(mps_conn_state(s), MPS_CONN_FALLBACK);
	ck_assert_int_ne(mps_conn_state(s), MPS_CONN_RESET);
	mps_conn_free(s);
}
END_TEST

START_TEST(plain_bytes_after_the_fallback_timer_pass_unchanged)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *s = mps_conn_new(MPS_ROLE_SERVER, &p, NULL, 0);
	/* the marker first, then no record */
	static const char req[] = "MGET key\r\n";

	ck_assert_int_eq(mps_conn_sf_add(s), 0);
	ck_assert(mps_conn_tick(s, 1000000) == 0);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, (const uint8_t *)req, 1), 0);
	ck_assert_int_eq(
		mps_conn_sf_input(
			s, 0, (const uint8_t *)req + 1, sizeof(req) - 2),
		0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);
	expect_read(s, req);
	mps_conn_free(s);
}
END_TEST

START_TEST(fallback_input_is_bounded_by_the_receive_buffer)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	static uint8_t big[300 * 1024];
	struct mps_conn *s;
	size_t room;

	s = conn_new(MPS_ROLE_SERVER, &p, NULL);
	memset(big, 'a', sizeof(big));
	room = mps_conn_sf_rx_room(s, 0);
	ck_assert_uint_le(room, p.rcv_buf);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, big, room), 0);
	ck_assert_int_eq(mps_conn_state(s), MPS_CONN_FALLBACK);
	ck_assert_uint_eq(mps_conn_sf_rx_room(s, 0), 0);
	ck_assert_int_eq(mps_conn_sf_input(s, 0, big, 1), -ENOBUFS);
	mps_conn_free(s);
}
END_TEST

START_TEST(client_never_falls_back_after_its_mp_capable)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn *c = conn_new(MPS_ROLE_CLIENT, &p, NULL);
	uint8_t buf[256];

	drain(c, buf, sizeof(buf));
	ck_assert_int_eq(mps_conn_tick(c, 10000000), 0);
	ck_assert_int_eq(mps_conn_state(c), MPS_CONN_HANDSHAKE);
	ck_assert_int_lt(mps_conn_sf_input(c, 0, (const uint8_t *)"HTTP", 4),
			 0);
	ck_assert_int_eq(mps_conn_state(c), MPS_CONN_RESET);
	mps_conn_free(c);
}
END_TEST

/*
 * Multipath: N subflows back to back.
 *
 * Each link models one kernel TCP connection per direction: the sender
 * writes into a buffer (its unsent queue, bounded by a low-water mark like
 * TCP_NOTSENT_LOWAT) and the link delivers up to rate bytes per round to
 * the receiver.  A link can be frozen (it delivers nothing, as a path
 * that silently drops everything) or failed (both ends see the socket
 * reset).  Every round is one millisecond of the cores' clock.
 */

#define LINK_CAP (512 * KIB)
#define LINK_LOWAT (128 * KIB)
#define MAX_LINKS 8

struct link {
	uint8_t *buf;
	size_t len;
	size_t rate; /* bytes delivered per round; 0: all */
	uint32_t srtt_us;
	uint64_t drate;		/* delivery rate reported in the metrics */
	uint64_t cwnd;		/* cwnd_bytes reported; 0 unknown */
	bool drate_app_limited; /* drate reported as application-limited */
	uint64_t acked;		/* bytes delivered so far (acked_bytes) */
};

struct mp {
	struct pair pr;
	int n;
	int csf[MAX_LINKS];
	int ssf[MAX_LINKS];
	struct link up[MAX_LINKS];   /* client to server */
	struct link down[MAX_LINKS]; /* server to client */
	bool frozen[MAX_LINKS];
	bool failed[MAX_LINKS];
	bool metrics; /* report metrics before each peek */
	bool acked;   /* ... with acked_bytes */
	uint64_t now_us;
	int c_err[MAX_LINKS];
	int s_err[MAX_LINKS];
};

static void link_init(struct link *l)
{
	memset(l, 0, sizeof(*l));
	l->buf = malloc(LINK_CAP);
	ck_assert_ptr_nonnull(l->buf);
	l->srtt_us = 10000;
}

static void mp_add_link(struct mp *mp, int csf, int ssf)
{
	int i = mp->n++;

	ck_assert_int_lt(i, MAX_LINKS);
	mp->csf[i] = csf;
	mp->ssf[i] = ssf;
	link_init(&mp->up[i]);
	link_init(&mp->down[i]);
}

static void mp_init(struct mp *mp, const struct mps_conn_params *p)
{
	memset(mp, 0, sizeof(*mp));
	pair_init(&mp->pr, p, p, false);
	mp_add_link(mp, 0, 0);
}

static void mp_free(struct mp *mp)
{
	int i;

	for (i = 0; i < mp->n; i++) {
		free(mp->up[i].buf);
		free(mp->down[i].buf);
	}
	pair_free(&mp->pr);
}

static void report_metrics(struct mps_conn *conn,
			   int sf,
			   const struct link *l,
			   bool acked)
{
	struct mps_sf_metrics m = {
		.srtt_us = l->srtt_us,
		.rttvar_us = l->srtt_us / 4,
		.notsent_bytes = l->len,
		.delivery_rate = l->drate,
		.room = l->len < LINK_LOWAT ? LINK_LOWAT - l->len : 0,
		.acked_bytes = acked ? l->acked : 0,
		.cwnd_bytes = l->cwnd,
		.rate_app_limited = l->drate_app_limited,
	};

	mps_conn_sf_metrics(conn, sf, &m);
}

/* The sender writes what its core gives into the link; returns bytes. */
static size_t
link_write(struct mp *mp, struct mps_conn *src, int sf, struct link *l)
{
	size_t total = 0;

	for (;;) {
		struct iovec iov[16];
		size_t got = 0;
		int n, i;

		if (mp->metrics)
			report_metrics(src, sf, l, mp->acked);
		n = mps_conn_sf_peek(src, sf, iov, 16);
		for (i = 0; i < n && l->len + got < LINK_CAP; i++) {
			size_t take = iov[i].iov_len;

			if (take > LINK_CAP - l->len - got)
				take = LINK_CAP - l->len - got;
			if (mp->metrics &&
			    l->len + got + take > LINK_LOWAT + 64 * KIB)
				take = l->len + got < LINK_LOWAT + 64 * KIB
					       ? LINK_LOWAT + 64 * KIB -
							 l->len - got
					       : 0;
			memcpy(l->buf + l->len + got, iov[i].iov_base, take);
			got += take;
		}
		if (got == 0)
			return total;
		mps_conn_sf_consume(src, sf, got);
		l->len += got;
		total += got;
	}
}

/* The link hands up to its rate to the receiver; returns bytes. */
static size_t
link_deliver(struct mps_conn *dst, int sf, struct link *l, int *err)
{
	size_t n = l->len;
	int rc;

	if (l->rate && n > l->rate)
		n = l->rate;
	if (n == 0)
		return 0;
	rc = mps_conn_sf_input(dst, sf, l->buf, n);
	if (rc && !*err)
		*err = rc;
	memmove(l->buf, l->buf + n, l->len - n);
	l->len -= n;
	l->acked += n;
	return n;
}

/* One round of one millisecond; returns the bytes moved. */
static size_t mp_round(struct mp *mp)
{
	size_t moved = 0;
	int i;

	for (i = 0; i < mp->n; i++) {
		if (mp->failed[i])
			continue;
		moved += link_write(mp, mp->pr.c, mp->csf[i], &mp->up[i]);
		moved += link_write(mp, mp->pr.s, mp->ssf[i], &mp->down[i]);
		if (mp->frozen[i])
			continue;
		moved += link_deliver(
			mp->pr.s, mp->ssf[i], &mp->up[i], &mp->s_err[i]);
		moved += link_deliver(
			mp->pr.c, mp->csf[i], &mp->down[i], &mp->c_err[i]);
	}
	mp->now_us += 1000;
	mps_conn_tick(mp->pr.c, mp->now_us);
	mps_conn_tick(mp->pr.s, mp->now_us);
	return moved;
}

static void mp_pump(struct mp *mp)
{
	int rounds = 0;

	while (mp_round(mp) > 0)
		ck_assert_int_lt(++rounds, 1000000);
}

/* Both ends see link i's sockets fail. */
static void mp_fail(struct mp *mp, int i, int err)
{
	mp->failed[i] = true;
	mp->up[i].len = 0;
	mp->down[i].len = 0;
	mps_conn_sf_closed(mp->pr.c, mp->csf[i], err);
	mps_conn_sf_closed(mp->pr.s, mp->ssf[i], err);
}

/* The handshake and a little data each way, so that joins may start. */
static void mp_establish(struct mp *mp)
{
	app_write_all(mp->pr.c, "hello", 5);
	app_write_all(mp->pr.s, "world", 5);
	mp_pump(mp);
	expect_read(mp->pr.s, "hello");
	expect_read(mp->pr.c, "world");
	ck_assert(mps_conn_can_join(mp->pr.c));
	ck_assert(mps_conn_can_join(mp->pr.s));
}

/*
 * The client opens a join; the server's runtime classifies its first
 * bytes, looks the token up and accepts it.  Returns the link index.
 */
static int mp_join(struct mp *mp, bool backup)
{
	uint8_t buf[256];
	struct iovec iov[4];
	uint32_t token = 0;
	int csf, ssf, n, i;
	size_t len = 0;

	csf = mps_conn_sf_add_join(mp->pr.c, (uint8_t)(mp->n + 1), backup);
	ck_assert_int_gt(csf, 0);
	n = mps_conn_sf_peek(mp->pr.c, csf, iov, 4);
	ck_assert_int_gt(n, 0);
	for (i = 0; i < n; i++) {
		memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	/* A part of the record is not enough to tell. */
	ck_assert_int_eq(mps_join_parse_first(buf, 3, &token),
			 MPS_WIRE_NEED_MORE);
	ck_assert_int_eq(mps_join_parse_first(buf, len, &token), 0);
	ck_assert_ptr_eq(mps_token_lookup(mp->pr.stab, token), mp->pr.s);
	ssf = mps_conn_sf_accept_join(mp->pr.s);
	ck_assert_int_gt(ssf, 0);
	mp_add_link(mp, csf, ssf);
	return mp->n - 1;
}

static void expect_event(struct mps_conn *conn,
			 enum mps_conn_event_kind kind,
			 struct mps_conn_event *ev)
{
	ck_assert(mps_conn_next_event(conn, ev));
	ck_assert_int_eq(ev->kind, kind);
}

static void check_join(int version)
{
	struct mps_conn_params p = params(version, false);
	struct mps_conn_event ev;
	struct mps_conn_info ci, si;
	struct mp mp;
	int l;

	mp_init(&mp, &p);
	mp_establish(&mp);
	l = mp_join(&mp, false);
	mp_pump(&mp);

	expect_event(mp.pr.c, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	ck_assert_int_eq(ev.sf, mp.csf[l]);
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	ck_assert_int_eq(ev.sf, mp.ssf[l]);
	info(mp.pr.c, &ci);
	info(mp.pr.s, &si);
	ck_assert_int_eq(ci.version, version);
	ck_assert_uint_eq(ci.stats.joins_accepted, 1);
	ck_assert_uint_eq(si.stats.joins_accepted, 1);
	ck_assert_int_eq(ci.sf[mp.csf[l]].state, MPS_SF_ESTABLISHED);
	ck_assert_int_eq(si.sf[mp.ssf[l]].state, MPS_SF_ESTABLISHED);
	ck_assert_uint_eq(si.sf[mp.ssf[l]].peer_addr_id, 2);
	ck_assert_int_eq(mp.s_err[l], 0);
	ck_assert_int_eq(mp.c_err[l], 0);
	mp_free(&mp);
}

START_TEST(a_v1_join_checks_both_hmacs_and_establishes)
{
	check_join(MPS_VERSION_1);
}
END_TEST

START_TEST(a_v0_join_checks_both_hmacs_and_establishes)
{
	check_join(MPS_VERSION_0);
}
END_TEST

/* Moves one link's pending bytes c->s or s->c, letting tamper edit them. */
static int move_once(struct mp *mp, int l, bool up, size_t flip_at)
{
	struct link *lk = up ? &mp->up[l] : &mp->down[l];
	struct mps_conn *src = up ? mp->pr.c : mp->pr.s;
	struct mps_conn *dst = up ? mp->pr.s : mp->pr.c;
	int rc;

	link_write(mp, src, up ? mp->csf[l] : mp->ssf[l], lk);
	ck_assert_uint_gt(lk->len, flip_at);
	if (flip_at)
		lk->buf[flip_at] ^= 0x01;
	rc = mps_conn_sf_input(
		dst, up ? mp->ssf[l] : mp->csf[l], lk->buf, lk->len);
	lk->len = 0;
	return rc;
}

/* The connection still carries data over its first subflow. */
static void expect_conn_fine(struct mp *mp)
{
	ck_assert_int_eq(mps_conn_state(mp->pr.c), MPS_CONN_ESTABLISHED);
	ck_assert_int_eq(mps_conn_state(mp->pr.s), MPS_CONN_ESTABLISHED);
	app_write_all(mp->pr.c, "still", 5);
	mp_pump(mp);
	expect_read(mp->pr.s, "still");
}

START_TEST(a_join_with_a_wrong_token_is_refused_alone)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_MP_JOIN};
	struct mps_conn_info si;
	struct mps_conn_event ev;
	struct mps_record rec;
	uint8_t buf[64], out[64];
	struct iovec iov[4];
	struct mp mp;
	int ssf, len, n;

	mp_init(&mp, &p);
	mp_establish(&mp);
	info(mp.pr.s, &si);
	opt.mp_join.form = MPS_JOIN_SYN;
	opt.mp_join.token = si.local_token + 1;
	opt.mp_join.nonce = 42;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);

	ssf = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.s, ssf, buf, (size_t)len),
			 -EPERM);
	n = mps_conn_sf_peek(mp.pr.s, ssf, iov, 4);
	ck_assert_int_eq(n, 1);
	memcpy(out, iov[0].iov_base, iov[0].iov_len);
	decode_first(out, iov[0].iov_len, MPS_VERSION_1, &rec);
	ck_assert_int_eq(rec.opt.subtype, MPS_MP_TCPRST);
	ck_assert_uint_eq(rec.opt.mp_tcprst.reason, MPS_RST_MPTCP_ERROR);
	mps_conn_sf_consume(mp.pr.s, ssf, iov[0].iov_len);
	ck_assert(mps_conn_sf_done(mp.pr.s, ssf));
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_FAILED, &ev);
	ck_assert_int_eq(ev.sf, ssf);
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.joins_refused, 1);
	ck_assert_uint_eq(si.stats.joins_bad_hmac, 0);

	/* What the runtime sends for a token it does not know at all. */
	len = mps_join_refusal(out, sizeof(out));
	decode_first(out, (size_t)len, MPS_VERSION_1, &rec);
	ck_assert_int_eq(rec.opt.subtype, MPS_MP_TCPRST);
	expect_conn_fine(&mp);
	mp_free(&mp);
}
END_TEST

START_TEST(a_join_with_a_bad_synack_hmac_is_refused_alone)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_info ci;
	struct mps_conn_event ev;
	struct mp mp;
	int l;

	mp_init(&mp, &p);
	mp_establish(&mp);
	l = mp_join(&mp, false);
	ck_assert_int_eq(move_once(&mp, l, true, 0), 0);
	/* Byte 8 of the SYN/ACK record is the first byte of its HMAC. */
	ck_assert_int_eq(move_once(&mp, l, false, 8), -EPERM);
	ck_assert(mps_conn_sf_done(mp.pr.c, mp.csf[l]) == false);
	ck_assert_int_eq(move_once(&mp, l, true, 0), 0); /* the MP_TCPRST */
	ck_assert(mps_conn_sf_done(mp.pr.c, mp.csf[l]));
	ck_assert(mps_conn_sf_done(mp.pr.s, mp.ssf[l]));
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_FAILED, &ev);
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_FAILED, &ev);
	ck_assert_int_eq(ev.err, ECONNREFUSED);
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.joins_refused, 1);
	ck_assert_uint_eq(ci.stats.joins_bad_hmac, 1);
	ck_assert_uint_eq(ci.stats.joins_accepted, 0);
	mp.failed[l] = true;
	expect_conn_fine(&mp);
	mp_free(&mp);
}
END_TEST

START_TEST(a_join_with_a_bad_ack_hmac_is_refused_alone)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_info si;
	struct mps_conn_event ev;
	struct mp mp;
	int l;

	mp_init(&mp, &p);
	mp_establish(&mp);
	l = mp_join(&mp, false);
	ck_assert_int_eq(move_once(&mp, l, true, 0), 0);
	ck_assert_int_eq(move_once(&mp, l, false, 0), 0);
	/* Byte 8 of the ACK record is the first byte of its HMAC. */
	ck_assert_int_eq(move_once(&mp, l, true, 8), -EPERM);
	ck_assert_int_eq(move_once(&mp, l, false, 0), 0); /* MP_TCPRST */
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_FAILED, &ev);
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_FAILED, &ev);
	ck_assert(mps_conn_sf_done(mp.pr.c, mp.csf[l]));
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.joins_refused, 1);
	ck_assert_uint_eq(si.stats.joins_bad_hmac, 1);
	ck_assert_uint_eq(si.stats.joins_accepted, 0);
	mp.failed[l] = true;
	expect_conn_fine(&mp);
	mp_free(&mp);
}
END_TEST

START_TEST(no_join_before_the_first_data_mapping)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_MP_JOIN};
	struct mps_conn_info si;
	uint8_t buf[64];
	struct mp mp;
	int ssf, len;

	mp_init(&mp, &p);
	mp_pump(&mp); /* the MP_CAPABLE exchange, no data */
	ck_assert_int_eq(mps_conn_state(mp.pr.c), MPS_CONN_ESTABLISHED);
	ck_assert(!mps_conn_can_join(mp.pr.c));
	ck_assert(!mps_conn_can_join(mp.pr.s));
	ck_assert_int_eq(mps_conn_sf_add_join(mp.pr.c, 1, false), -EAGAIN);

	/* A peer that tries anyway is refused. */
	info(mp.pr.s, &si);
	opt.mp_join.form = MPS_JOIN_SYN;
	opt.mp_join.token = si.local_token;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ssf = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_gt(ssf, 0);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.s, ssf, buf, (size_t)len),
			 -EPERM);
	ck_assert_int_eq(mps_conn_state(mp.pr.s), MPS_CONN_ESTABLISHED);
	mp_free(&mp);
}
END_TEST

/*
 * Address advertisement.
 */

static struct mps_addr addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct mps_addr addr = {.family = AF_INET, .bytes = {a, b, c, d}};

	return addr;
}

/* Looks for an option of subtype in a stream of records. */
static bool find_option(const uint8_t *buf,
			size_t len,
			int version,
			int subtype,
			struct mps_option *opt)
{
	struct mps_record rec;

	while (len > 0 &&
	       mps_wire_decode_record(buf, len, version, &rec) == 0) {
		if ((int)rec.opt.subtype == subtype) {
			*opt = rec.opt;
			return true;
		}
		buf += rec.len;
		len -= rec.len;
	}
	return false;
}

START_TEST(add_addr_with_a_valid_hmac_is_echoed_and_reported)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_addr a = addr4(10, 0, 2, 1);
	struct mps_conn_event ev;
	struct mps_conn_info ci;
	struct mps_option opt;
	struct mp mp;

	mp_init(&mp, &p);
	mp_establish(&mp);
	ck_assert_int_eq(mps_conn_announce(mp.pr.s, 1, &a, 10100), 0);
	link_write(&mp, mp.pr.s, 0, &mp.down[0]);
	ck_assert(find_option(mp.down[0].buf,
			      mp.down[0].len,
			      MPS_VERSION_1,
			      MPS_ADD_ADDR,
			      &opt));
	ck_assert(opt.add_addr.has_hmac && !opt.add_addr.echo);
	link_deliver(mp.pr.c, 0, &mp.down[0], &mp.c_err[0]);

	expect_event(mp.pr.c, MPS_EV_ADDR_ADDED, &ev);
	ck_assert_uint_eq(ev.addr_id, 1);
	ck_assert_uint_eq(ev.port, 10100);
	ck_assert_mem_eq(ev.addr.bytes, a.bytes, 4);
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.addrs_accepted, 1);

	/* RFC 8684 section 3.4.1: the receiver echoes it, E set. */
	link_write(&mp, mp.pr.c, 0, &mp.up[0]);
	ck_assert(find_option(
		mp.up[0].buf, mp.up[0].len, MPS_VERSION_1, MPS_ADD_ADDR, &opt));
	ck_assert(opt.add_addr.echo && !opt.add_addr.has_hmac);
	ck_assert_uint_eq(opt.add_addr.addr_id, 1);
	mp_pump(&mp);
	ck_assert_int_eq(mp.s_err[0], 0);
	ck_assert(!mps_conn_next_event(mp.pr.s, &ev));
	mp_free(&mp);
}
END_TEST

START_TEST(add_addr_with_a_bad_hmac_is_ignored_and_counted)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_ADD_ADDR};
	struct mps_conn_event ev;
	struct mps_conn_info ci;
	uint8_t buf[64];
	struct mp mp;
	int len;

	mp_init(&mp, &p);
	mp_establish(&mp);
	opt.add_addr.addr_id = 3;
	opt.add_addr.addr = addr4(192, 0, 2, 7);
	opt.add_addr.has_hmac = true;
	memset(opt.add_addr.hmac, 0x5a, sizeof(opt.add_addr.hmac));
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.c, 0, buf, (size_t)len), 0);

	ck_assert(!mps_conn_next_event(mp.pr.c, &ev));
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.addrs_refused, 1);
	ck_assert_uint_eq(ci.stats.addrs_accepted, 0);
	expect_conn_fine(&mp);
	mp_free(&mp);
}
END_TEST

START_TEST(add_addr_in_v0_carries_no_hmac_and_is_accepted)
{
	struct mps_conn_params p = params(MPS_VERSION_0, false);
	struct mps_addr a = addr4(10, 0, 3, 1);
	struct mps_conn_event ev;
	struct mp mp;

	mp_init(&mp, &p);
	mp_establish(&mp);
	ck_assert_int_eq(mps_conn_announce(mp.pr.s, 4, &a, 0), 0);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_ADDR_ADDED, &ev);
	ck_assert_uint_eq(ev.addr_id, 4);
	ck_assert_uint_eq(ev.port, 0);
	ck_assert_int_eq(mp.c_err[0], 0);
	mp_free(&mp);
}
END_TEST

START_TEST(remembered_addresses_are_bounded_and_refusals_counted)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_event ev;
	struct mps_conn_info ci;
	struct mp mp;
	int i;

	mp_init(&mp, &p);
	mp_establish(&mp);
	for (i = 0; i <= MPS_CONN_MAX_ADDRS; i++) {
		struct mps_addr a = addr4(10, 0, (uint8_t)i, 1);

		ck_assert_int_eq(mps_conn_announce(mp.pr.s, (uint8_t)i, &a, 0),
				 0);
		mp_pump(&mp);
	}
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.addrs_accepted, MPS_CONN_MAX_ADDRS);
	ck_assert_uint_eq(ci.stats.addrs_refused, 1);
	for (i = 0; i < MPS_CONN_MAX_ADDRS; i++)
		expect_event(mp.pr.c, MPS_EV_ADDR_ADDED, &ev);
	ck_assert(!mps_conn_next_event(mp.pr.c, &ev));
	mp_free(&mp);
}
END_TEST

START_TEST(remove_addr_is_reported)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_addr a = addr4(10, 0, 2, 1);
	struct mps_conn_event ev;
	struct mp mp;

	mp_init(&mp, &p);
	mp_establish(&mp);
	ck_assert_int_eq(mps_conn_announce(mp.pr.s, 1, &a, 0), 0);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_ADDR_ADDED, &ev);
	ck_assert_int_eq(mps_conn_withdraw(mp.pr.s, 1), 0);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_ADDR_REMOVED, &ev);
	ck_assert_uint_eq(ev.addr_id, 1);
	ck_assert(!mps_conn_next_event(mp.pr.c, &ev));
	mp_free(&mp);
}
END_TEST

/*
 * Data over several subflows.
 */

/* Sends total bytes client to server, pumping; between rounds, hook. */
typedef void (*mp_hook)(struct mp *mp, uint64_t sent, uint64_t rcvd);

/* Every byte was read once: nothing more for the program. */
static void expect_nothing_more(struct mps_conn *conn)
{
	struct iovec iov[2];
	struct mps_conn_info inf;

	ck_assert_int_eq(mps_conn_app_peek(conn, iov, 2), 0);
	info(conn, &inf);
	ck_assert_uint_eq(inf.rcv_held, 0);
	ck_assert_uint_eq(inf.reasm_mem, 0);
}

static void mp_transfer(struct mp *mp, uint64_t total, mp_hook hook)
{
	uint64_t wr = 0, rd = 0;
	int rounds = 0;

	while (rd < total) {
		write_stream(mp->pr.c, 7, &wr, total, 256 * KIB);
		mp_round(mp);
		read_stream(mp->pr.s, 7, &rd, 256 * KIB);
		if (hook)
			hook(mp, wr, rd);
		ck_assert_int_lt(++rounds, 200000);
	}
	ck_assert(wr == total);
	mp_pump(mp);
	expect_nothing_more(mp->pr.s);
}

static struct mp *mp_with_joins(struct mp *mp, int sched, int joins)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_event ev;
	int i;

	p.sched = sched;
	mp_init(mp, &p);
	mp->metrics = true;
	mp_establish(mp);
	for (i = 0; i < joins; i++) {
		mp_join(mp, false);
		mp_pump(mp);
		expect_event(mp->pr.c, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
		expect_event(mp->pr.s, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	}
	return mp;
}

/* Each link delivers at most rate bytes per millisecond. */
static void mp_set_rate(struct mp *mp, int l, size_t rate, uint32_t srtt)
{
	mp->up[l].rate = rate;
	mp->up[l].srtt_us = srtt;
	mp->up[l].drate = (uint64_t)rate * 1000;
	mp->down[l].srtt_us = srtt;
}

static void check_all_carry(struct mp *mp, uint64_t total)
{
	struct mps_conn_info ci, si;
	uint64_t sum = 0;
	int l;

	info(mp->pr.c, &ci);
	info(mp->pr.s, &si);
	for (l = 0; l < mp->n; l++) {
		ck_assert_uint_gt(ci.sf[mp->csf[l]].bytes_out, 0);
		ck_assert_uint_eq(si.sf[mp->ssf[l]].bytes_in,
				  ci.sf[mp->csf[l]].bytes_out);
		sum += ci.sf[mp->csf[l]].bytes_out;
	}
	/* 5 bytes of greeting, and nothing sent twice. */
	ck_assert_uint_eq(sum, total + 5);
	ck_assert_uint_eq(si.stats.dup_bytes, 0);
	for (l = 0; l < mp->n; l++) {
		ck_assert_int_eq(mp->s_err[l], 0);
		ck_assert_int_eq(mp->c_err[l], 0);
	}
}

START_TEST(ten_megabytes_over_two_subflows_use_both)
{
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 1);
	mp_set_rate(&mp, 0, 64 * KIB, 10000);
	mp_set_rate(&mp, 1, 48 * KIB, 12000);
	mp_transfer(&mp, 10 * MIB, NULL);
	check_all_carry(&mp, 10 * MIB);
	mp_free(&mp);
}
END_TEST

START_TEST(ten_megabytes_over_three_subflows_use_all)
{
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 2);
	mp_set_rate(&mp, 0, 32 * KIB, 10000);
	mp_set_rate(&mp, 1, 32 * KIB, 10000);
	mp_set_rate(&mp, 2, 16 * KIB, 12000);
	mp_transfer(&mp, 10 * MIB, NULL);
	check_all_carry(&mp, 10 * MIB);
	mp_free(&mp);
}
END_TEST

START_TEST(round_robin_spreads_over_every_subflow)
{
	struct mps_conn_info ci;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_ROUNDROBIN, 1);
	mp_transfer(&mp, 2 * MIB, NULL);
	info(mp.pr.c, &ci);
	check_all_carry(&mp, 2 * MIB);
	/* Chunks alternate: the shares differ by about one record. */
	ck_assert_uint_lt(ci.sf[0].bytes_out > ci.sf[1].bytes_out
				  ? ci.sf[0].bytes_out - ci.sf[1].bytes_out
				  : ci.sf[1].bytes_out - ci.sf[0].bytes_out,
			  256 * KIB);
	mp_free(&mp);
}
END_TEST

START_TEST(redundant_sends_every_byte_on_every_subflow_and_delivers_once)
{
	struct mps_conn_info ci, si;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_REDUNDANT, 1);
	mp_transfer(&mp, 2 * MIB, NULL);
	info(mp.pr.c, &ci);
	info(mp.pr.s, &si);
	ck_assert_uint_ge(ci.sf[0].bytes_out, 2 * MIB);
	ck_assert_uint_ge(ci.sf[1].bytes_out, 2 * MIB);
	ck_assert_uint_ge(si.stats.dup_bytes, 2 * MIB);
	ck_assert_int_eq(mp.s_err[0], 0);
	ck_assert_int_eq(mp.s_err[1], 0);
	mp_free(&mp);
}
END_TEST

/*
 * What the runtime reads from TCP_INFO for a subflow that went idle is
 * stale: its srtt still counts the queue it once had, its delivery rate is
 * an application-limited sample.  Judged on those alone it never looks
 * better than a fast subflow that is full, so it gets nothing and its
 * metrics never refresh.  With a long backlog the fast subflow is busy
 * anyway: the slow one must be filled.
 */
START_TEST(a_full_fast_subflow_leaves_backlog_to_the_slow_one)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_event ev;
	struct mps_conn_info ci;
	uint64_t start;
	struct mp mp;

	p.snd_buf = 4 * MIB;
	p.rcv_buf = 4 * MIB;
	mp_init(&mp, &p);
	mp.metrics = true;
	mp_establish(&mp);
	mp_join(&mp, false);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	mp_set_rate(&mp, 0, 20 * KIB, 5000);
	mp_set_rate(&mp, 1, 10 * KIB, 115000); /* stale srtt */
	mp.up[1].drate = 5 * MIB;	       /* half its real rate */
	start = mp.now_us;
	mp_transfer(&mp, 10 * MIB, NULL);
	check_all_carry(&mp, 10 * MIB);
	info(mp.pr.c, &ci);
	ck_assert_uint_ge(ci.sf[1].bytes_out, 2 * MIB);
	/* One path alone needs 512 ms, both 341 ms. */
	ck_assert_uint_lt(mp.now_us - start, 450000);
	mp_free(&mp);
}
END_TEST

/*
 * The hetero scenario of the benchmark (50 Mbit/s with 20 ms RTT, 20
 * Mbit/s with 80 ms): the join's subflow has carried only its handshake,
 * so its TCP_INFO delivery rate is an application-limited sample of a few
 * kB/s.  Taken as the path's rate, it made every chunk look seconds away
 * on that subflow, so the fast one got everything and the slow one never
 * earned a better sample: no aggregation at all.  Its window per round
 * trip must count instead.
 */
START_TEST(an_app_limited_delivery_rate_does_not_starve_a_slow_subflow)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_event ev;
	struct mps_conn_info ci;
	uint64_t start;
	struct mp mp;

	p.snd_buf = 4 * MIB;
	p.rcv_buf = 4 * MIB;
	mp_init(&mp, &p);
	mp.metrics = true;
	mp_establish(&mp);
	mp_join(&mp, false);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	mp_set_rate(&mp, 0, 6 * KIB, 20000);
	mp.up[0].cwnd = 240 * KIB;
	mp_set_rate(&mp, 1, 2 * KIB + KIB / 2, 80000);
	mp.up[1].cwnd = 12 * 1448; /* its initial window */
	mp.up[1].drate = 18000;	   /* the handshake's sample */
	mp.up[1].drate_app_limited = true;
	start = mp.now_us;
	mp_transfer(&mp, 16 * MIB, NULL);
	check_all_carry(&mp, 16 * MIB);
	info(mp.pr.c, &ci);
	ck_assert_uint_ge(ci.sf[1].bytes_out, 3 * MIB);
	/* The fast path alone needs 2.73 s, both 1.93 s. */
	ck_assert_uint_lt(mp.now_us - start, 2300000);
	mp_free(&mp);
}
END_TEST

static void fail_link1_at_3mb(struct mp *mp, uint64_t sent, uint64_t rcvd)
{
	(void)sent;
	if (rcvd >= 3 * MIB && !mp->failed[1])
		mp_fail(mp, 1, ECONNRESET);
}

START_TEST(a_subflow_reset_mid_transfer_loses_and_duplicates_nothing)
{
	struct mps_conn_event ev;
	struct mps_conn_info ci;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 1);
	mp_set_rate(&mp, 0, 32 * KIB, 10000);
	mp_set_rate(&mp, 1, 32 * KIB, 10000);
	mp_transfer(&mp, 8 * MIB, fail_link1_at_3mb);
	info(mp.pr.c, &ci);
	ck_assert_int_eq(ci.state, MPS_CONN_ESTABLISHED);
	ck_assert_int_eq(ci.sf[1].state, MPS_SF_CLOSED);
	ck_assert_uint_gt(ci.stats.reinjected_bytes, 0);
	ck_assert_uint_eq(ci.sf[0].reinjected, ci.stats.reinjected_bytes);
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_FAILED, &ev);
	ck_assert_int_eq(ev.sf, 1);
	ck_assert_int_eq(ev.err, ECONNRESET);
	ck_assert(mps_conn_sf_done(mp.pr.c, 1));
	ck_assert_int_eq(mp.s_err[0], 0);
	mp_free(&mp);
}
END_TEST

static uint64_t frozen_at_us;
static uint64_t seen_unstalled_us;

static void freeze_link1_at_2mb(struct mp *mp, uint64_t sent, uint64_t rcvd)
{
	struct mps_conn_info ci;

	(void)sent;
	if (rcvd >= 2 * MIB && !mp->frozen[1] && frozen_at_us == 0) {
		mp->frozen[1] = true;
		frozen_at_us = mp->now_us;
	}
	info(mp->pr.c, &ci);
	if (ci.stats.stalls == 0)
		seen_unstalled_us = mp->now_us;
}

START_TEST(a_frozen_subflow_has_its_data_reinjected_after_the_stall_time)
{
	struct mps_conn_info ci, si;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 1);
	mp_set_rate(&mp, 0, 32 * KIB, 10000);
	mp_set_rate(&mp, 1, 32 * KIB, 10000);
	frozen_at_us = 0;
	mp_transfer(&mp, 6 * MIB, freeze_link1_at_2mb);
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.stalls, 1);
	/* Not before max(4 x srtt, 200 ms) without progress, nor long after. */
	ck_assert_uint_ge(seen_unstalled_us - frozen_at_us, 190000);
	ck_assert_uint_le(seen_unstalled_us - frozen_at_us, 260000);
	ck_assert_int_eq(ci.sf[1].state, MPS_SF_STALLED);
	ck_assert_uint_gt(ci.sf[0].reinjected, 0);
	ck_assert_int_eq(ci.state, MPS_CONN_ESTABLISHED);

	/* The path comes back: its stale copies arrive and are dropped. */
	mp.frozen[1] = false;
	mp_pump(&mp);
	info(mp.pr.s, &si);
	ck_assert_uint_gt(si.stats.dup_bytes, 0);
	expect_nothing_more(mp.pr.s);
	ck_assert_int_eq(mp.s_err[1], 0);
	/* It drained: its metrics show progress, it is scheduled again. */
	info(mp.pr.c, &ci);
	ck_assert_int_eq(ci.sf[1].state, MPS_SF_ESTABLISHED);
	mp_free(&mp);
}
END_TEST

/* Sends total bytes each way at once, pumping; between rounds, hook. */
static void mp_transfer_both(struct mp *mp, uint64_t total, mp_hook hook)
{
	uint64_t cwr = 0, crd = 0, swr = 0, srd = 0;
	int rounds = 0;

	while (crd < total || srd < total) {
		write_stream(mp->pr.c, 7, &cwr, total, 256 * KIB);
		write_stream(mp->pr.s, 8, &swr, total, 256 * KIB);
		mp_round(mp);
		read_stream(mp->pr.s, 7, &srd, 256 * KIB);
		read_stream(mp->pr.c, 8, &crd, 256 * KIB);
		if (hook)
			hook(mp, cwr + swr, srd + crd);
		ck_assert_int_lt(++rounds, 60000);
	}
	mp_pump(mp);
	expect_nothing_more(mp->pr.s);
	expect_nothing_more(mp->pr.c);
}

static void freeze_link0_at_1mb(struct mp *mp, uint64_t sent, uint64_t rcvd)
{
	(void)sent;
	if (rcvd >= 1 * MIB)
		mp->frozen[0] = true;
}

/*
 * The initial subflow blackholed in both directions mid-transfer, its
 * sockets never failing: each end's data, data ACKs and window updates
 * must move to the other subflow.  Data ACKs and windows go where data
 * last arrived, and never stay on a subflow that makes no progress, or
 * the peer's window never reopens; each end finds the dead subflow
 * stalled, the receiving side too (its TCP acknowledges nothing).
 */
START_TEST(a_frozen_subflow_moves_data_acks_and_windows_away)
{
	struct mps_conn_info ci, si;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 1);
	mp.acked = true;
	mp_set_rate(&mp, 0, 32 * KIB, 10000);
	mp_set_rate(&mp, 1, 16 * KIB, 20000);
	mp.down[0].rate = 32 * KIB;
	mp.down[1].rate = 16 * KIB;
	mp_transfer_both(&mp, 4 * MIB, freeze_link0_at_1mb);
	info(mp.pr.c, &ci);
	info(mp.pr.s, &si);
	ck_assert_int_eq(ci.state, MPS_CONN_ESTABLISHED);
	ck_assert_int_eq(si.state, MPS_CONN_ESTABLISHED);
	ck_assert_int_eq(ci.sf[0].state, MPS_SF_STALLED);
	ck_assert_int_eq(si.sf[0].state, MPS_SF_STALLED);
	ck_assert_uint_gt(ci.sf[1].reinjected, 0);
	ck_assert_uint_gt(si.sf[1].reinjected, 0);
	ck_assert_int_eq(mp.s_err[1], 0);
	ck_assert_int_eq(mp.c_err[1], 0);
	mp_free(&mp);
}
END_TEST

/*
 * Once the frozen subflow's socket fails, the subflow left must carry on
 * even if it was found stalled itself and no metrics come any more (the
 * runtime reports none for a lone subflow).
 */
START_TEST(a_lone_stalled_subflow_is_used_again)
{
	struct mps_conn_info ci;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 1);
	mp_set_rate(&mp, 0, 32 * KIB, 10000);
	mp_set_rate(&mp, 1, 32 * KIB, 10000);
	frozen_at_us = 0;
	mp_transfer(&mp, 3 * MIB, freeze_link1_at_2mb);
	info(mp.pr.c, &ci);
	ck_assert_int_eq(ci.sf[1].state, MPS_SF_STALLED);
	/* Link 1 comes back, no metrics are reported, link 0 fails. */
	mp.metrics = false;
	mp.frozen[1] = false;
	mp_fail(&mp, 0, ETIMEDOUT);
	mp_transfer(&mp, 1 * MIB, NULL);
	info(mp.pr.c, &ci);
	ck_assert_int_eq(ci.sf[1].state, MPS_SF_ESTABLISHED);
	ck_assert_int_eq(ci.state, MPS_CONN_ESTABLISHED);
	mp_free(&mp);
}
END_TEST

START_TEST(a_backup_subflow_idles_until_the_primary_fails)
{
	struct mps_conn_event ev;
	struct mps_conn_info ci, si;
	uint64_t before;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_EARLIEST, 0);
	mp_join(&mp, true);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	mp_transfer(&mp, 1 * MIB, NULL);
	info(mp.pr.c, &ci);
	info(mp.pr.s, &si);
	ck_assert(ci.sf[1].backup && si.sf[1].peer_backup);
	ck_assert_uint_eq(ci.sf[1].bytes_out, 0);
	before = ci.sf[0].bytes_out;

	mp_fail(&mp, 0, ECONNRESET);
	mp_transfer(&mp, 1 * MIB, NULL);
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.sf[0].bytes_out, before);
	ck_assert_uint_ge(ci.sf[1].bytes_out, 1 * MIB);
	ck_assert_int_eq(ci.state, MPS_CONN_ESTABLISHED);
	mp_free(&mp);
}
END_TEST

START_TEST(mp_prio_makes_a_subflow_backup_at_the_peer)
{
	struct mps_conn_event ev;
	struct mps_conn_info si;
	uint64_t before;
	struct mp mp;

	mp_with_joins(&mp, MPS_SCHED_ROUNDROBIN, 1);
	ck_assert_int_eq(mps_conn_set_backup(mp.pr.c, 1, true), 0);
	mp_pump(&mp);
	expect_event(mp.pr.s, MPS_EV_PRIO_CHANGED, &ev);
	ck_assert_int_eq(ev.sf, 1);
	ck_assert(ev.backup);
	info(mp.pr.s, &si);
	ck_assert(si.sf[1].peer_backup);
	before = si.sf[1].bytes_out;

	/* The server's data now avoids subflow 1. */
	app_write_all(mp.pr.s, "x", 1);
	mp_pump(&mp);
	expect_read(mp.pr.c, "x");
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.sf[1].bytes_out, before);

	ck_assert_int_eq(mps_conn_set_backup(mp.pr.c, 1, false), 0);
	mp_pump(&mp);
	expect_event(mp.pr.s, MPS_EV_PRIO_CHANGED, &ev);
	ck_assert(!ev.backup);
	mp_free(&mp);
}
END_TEST

/*
 * Scheduler decisions, as pure functions.
 */

static struct mps_sched_path path(uint64_t rate, uint32_t srtt, uint64_t q)
{
	struct mps_sched_path p = {
		.usable = true,
		.srtt_us = srtt,
		.rate = rate,
		.queued = q,
		.room = 64 * KIB,
	};

	return p;
}

START_TEST(earliest_prefers_the_fast_subflow)
{
	struct mps_sched_path p[2] = {
		path(10 * MIB, 10000, 64 * KIB), /* fast */
		path(1 * MIB, 50000, 0),	 /* slow, idle */
	};

	ck_assert(mps_sched_earliest(p, 2, 0, 64 * KIB));
	ck_assert(!mps_sched_earliest(p, 2, 1, 64 * KIB));
}
END_TEST

START_TEST(earliest_uses_the_slow_subflow_when_the_fast_one_is_saturated)
{
	struct mps_sched_path p[2] = {
		path(10 * MIB, 10000, 2 * MIB), /* fast, long queue */
		path(1 * MIB, 50000, 0),
	};

	p[0].room = 0;
	ck_assert(mps_sched_earliest(p, 2, 1, 64 * KIB));
	ck_assert(!mps_sched_earliest(p, 2, 0, 64 * KIB));
}
END_TEST

START_TEST(earliest_fills_a_stale_slow_subflow_while_the_backlog_is_long)
{
	/* Figures of a 20 + 10 Mbit/s run: the fast path full, the slow
	 * one idle with the srtt and rate of its last busy period. */
	struct mps_sched_path p[2] = {
		path(2370000, 5000, 128 * KIB),
		path(650000, 115000, 0),
	};

	p[0].room = 0;
	p[1].room = 128 * KIB;
	/* One chunk alone: waiting for the fast path is better. */
	ck_assert(!mps_sched_earliest(p, 2, 1, 64 * KIB));
	ck_assert(!mps_sched_earliest_backlog(p, 2, 1, 64 * KIB, 64 * KIB));
	/* 4 MiB waiting: the fast path is busy for 1.8 s, use both. */
	ck_assert(mps_sched_earliest_backlog(p, 2, 1, 64 * KIB, 4 * MIB));
	/* A fast path with room takes the chunk itself. */
	p[0].room = 128 * KIB;
	ck_assert(!mps_sched_earliest_backlog(p, 2, 1, 64 * KIB, 4 * MIB));
	ck_assert(mps_sched_earliest_backlog(p, 2, 0, 64 * KIB, 4 * MIB));
}
END_TEST

START_TEST(earliest_rates_come_from_delivery_rate_or_cwnd)
{
	struct mps_sf_metrics m = {.srtt_us = 20000, .cwnd_bytes = 100000};

	ck_assert_uint_eq(mps_sched_rate(&m), 5000000);
	m.delivery_rate = 123;
	ck_assert_uint_eq(mps_sched_rate(&m), 123);
	m.delivery_rate = 0;
	m.srtt_us = 0;
	ck_assert_uint_eq(mps_sched_rate(&m), 0);
}
END_TEST

START_TEST(earliest_takes_an_app_limited_delivery_rate_as_a_lower_bound)
{
	/* A subflow that carried only its handshake: 12 segments of cwnd,
	 * 80 ms, a delivery rate sample of 18 kB/s while app-limited. */
	struct mps_sf_metrics m = {
		.srtt_us = 80000,
		.cwnd_bytes = 12 * 1448,
		.delivery_rate = 18000,
		.rate_app_limited = true,
	};

	ck_assert_uint_eq(mps_sched_rate(&m), 217200);
	/* A sample above the window rate stands, app-limited or not. */
	m.delivery_rate = 300000;
	ck_assert_uint_eq(mps_sched_rate(&m), 300000);
	/* A sample of a busy path is its rate, even below cwnd / srtt. */
	m.delivery_rate = 18000;
	m.rate_app_limited = false;
	ck_assert_uint_eq(mps_sched_rate(&m), 18000);
	/* Without cwnd or srtt the sample is all there is. */
	m.rate_app_limited = true;
	m.cwnd_bytes = 0;
	ck_assert_uint_eq(mps_sched_rate(&m), 18000);
}
END_TEST

START_TEST(round_robin_alternates_over_subflows_with_room)
{
	struct mps_sched_path p[3] = {
		path(0, 0, 0), path(0, 0, 0), path(0, 0, 0)};

	ck_assert_int_eq(mps_sched_roundrobin(p, 3, -1), 0);
	ck_assert_int_eq(mps_sched_roundrobin(p, 3, 0), 1);
	ck_assert_int_eq(mps_sched_roundrobin(p, 3, 1), 2);
	ck_assert_int_eq(mps_sched_roundrobin(p, 3, 2), 0);
	p[1].room = 0;
	ck_assert_int_eq(mps_sched_roundrobin(p, 3, 0), 2);
	p[0].usable = false;
	p[2].usable = false;
	ck_assert_int_eq(mps_sched_roundrobin(p, 3, 0), -1);
}
END_TEST

START_TEST(backup_paths_are_eligible_only_without_a_regular_one)
{
	struct mps_sched_path p[2] = {path(0, 0, 0), path(0, 0, 0)};

	p[1].backup = true;
	ck_assert(mps_sched_eligible(p, 2, 0));
	ck_assert(!mps_sched_eligible(p, 2, 1));
	ck_assert(!mps_sched_earliest(p, 2, 1, 1000));
	p[0].usable = false;
	ck_assert(mps_sched_eligible(p, 2, 1));
	ck_assert(mps_sched_earliest(p, 2, 1, 1000));
}
END_TEST

/*
 * The runner.
 */


/*
 * Security and robustness (RFC 7430, RFC 8684 sections 3.7 and 5).
 */

/* Flips one payload byte of the first data record waiting on a link. */
static void doctor_link(struct link *l)
{
	struct mps_record rec;
	size_t off = find_payload(l->buf, l->len, MPS_VERSION_1, &rec);

	l->buf[off + rec.payload_off + rec.payload_len / 2] ^= 0x40;
}

START_TEST(a_bad_checksum_with_another_subflow_resets_it_and_reinjects)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	struct mps_conn_event ev;
	struct mps_conn_info si;
	struct mps_option opt;
	struct mp mp;
	int l;

	mp_init(&mp, &p);
	mp_establish(&mp);
	l = mp_join(&mp, false);
	mp_pump(&mp);
	expect_event(mp.pr.c, MPS_EV_SUBFLOW_ESTABLISHED, &ev);
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_ESTABLISHED, &ev);

	/* The join is peeked first: the data goes there; a middlebox
	 * changes one byte of it. */
	app_write_all(mp.pr.c, "exactly these bytes", 19);
	link_write(&mp, mp.pr.c, mp.csf[l], &mp.up[l]);
	doctor_link(&mp.up[l]);
	link_deliver(mp.pr.s, mp.ssf[l], &mp.up[l], &mp.s_err[l]);
	ck_assert_int_eq(mp.s_err[l], -EBADMSG);
	ck_assert_int_eq(mps_conn_app_peek(mp.pr.s, (struct iovec[1]){0}, 1),
			 0);
	link_write(&mp, mp.pr.s, mp.ssf[l], &mp.down[l]);
	ck_assert(find_option(mp.down[l].buf,
			      mp.down[l].len,
			      MPS_VERSION_1,
			      MPS_MP_TCPRST,
			      &opt));
	ck_assert_uint_eq(opt.mp_tcprst.reason, MPS_RST_MIDDLEBOX);

	/* The client hears the reset and sends the data on the other. */
	mp.s_err[l] = 0;
	mp_pump(&mp);
	expect_read(mp.pr.s, "exactly these bytes");
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.csum_errors, 1);
	ck_assert_int_eq(si.sf[mp.ssf[l]].state, MPS_SF_FAILED);
	mp.failed[l] = true;
	expect_conn_fine(&mp);
	mp_free(&mp);
}
END_TEST

/*
 * Flips one payload byte of the first data record on a link that starts
 * at a record boundary; false when no data record waits there.
 */
static bool doctor_first_data(struct link *l)
{
	struct mps_record rec;
	size_t off = 0;

	while (off < l->len) {
		if (mps_wire_decode_record(
			    l->buf + off, l->len - off, MPS_VERSION_1, &rec))
			return false;
		if (rec.opt.subtype == MPS_DSS && rec.payload_len > 0) {
			l->buf[off + rec.payload_off + rec.payload_len / 2] ^=
				0x40;
			return true;
		}
		off += rec.len;
	}
	return false;
}

/* As link_deliver, within what the receiver takes now (fallback). */
static void link_deliver_room(struct mps_conn *dst, struct link *l, int *err)
{
	size_t room = mps_conn_sf_rx_room(dst, 0);
	size_t rate = l->rate;

	if (room == 0)
		return;
	if (room < l->len)
		l->rate = room;
	link_deliver(dst, 0, l, err);
	l->rate = rate;
}

/*
 * The runtime's side of a half-close: once a core is done sending and
 * the link drained, the receiver's socket reads end of stream.
 */
static void link_eof(struct mps_conn *src,
		     struct mps_conn *dst,
		     const struct link *l,
		     bool *told)
{
	if (*told || l->len > 0 || !mps_conn_sf_done(src, 0))
		return;
	*told = true;
	mps_conn_sf_closed(dst, 0, 0);
}

/*
 * RFC 8684 section 3.7 with data in flight both ways: a middlebox changes
 * one byte of a record in the middle of a transfer on the only subflow.
 * Records behind the damaged one are already on their way when MP_FAIL
 * reaches the sender.  As the integration test's sink does, the server
 * answers only once it has read everything and seen the end of stream.
 * Each end must read the other's exact bytes, then end of stream.  With
 * pause, the server's program stops reading for that many rounds from
 * 1 MiB on, and the byte is changed 3 rounds later, so that its buffer
 * is nearly full when the raw bytes come after the client's infinite
 * mapping.
 */
static void check_mp_fail_mid_transfer(int pause)
{
	struct mps_conn_params p = params(MPS_VERSION_1, true);
	uint64_t cwr = 0, crd = 0, swr = 0, srd = 0, total = 3 * MIB;
	struct mps_conn_info ci, si;
	bool doctored = false, c_eof = false, s_eof = false;
	struct mp mp;
	int rounds = 0, held = 0;

	mp_init(&mp, &p);
	mp_establish(&mp);
	while (!mps_conn_peer_finished(mp.pr.c)) {
		write_stream(mp.pr.c, 6, &cwr, total, 64 * KIB);
		if (cwr == total)
			mps_conn_app_shutdown(mp.pr.c);
		if (pause > 0 && srd >= 1 * MIB && held < pause)
			held++;
		else
			read_stream(mp.pr.s, 6, &srd, 256 * KIB);
		if (mps_conn_peer_finished(mp.pr.s)) {
			write_stream(mp.pr.s, 7, &swr, total, 64 * KIB);
			if (swr == total)
				mps_conn_app_shutdown(mp.pr.s);
		}
		read_stream(mp.pr.c, 7, &crd, 256 * KIB);
		link_write(&mp, mp.pr.c, 0, &mp.up[0]);
		link_write(&mp, mp.pr.s, 0, &mp.down[0]);
		if (!doctored && srd >= 1 * MIB && held >= (pause ? 3 : 0))
			doctored = doctor_first_data(&mp.up[0]);
		link_deliver_room(mp.pr.s, &mp.up[0], &mp.s_err[0]);
		link_deliver_room(mp.pr.c, &mp.down[0], &mp.c_err[0]);
		link_eof(mp.pr.c, mp.pr.s, &mp.up[0], &s_eof);
		link_eof(mp.pr.s, mp.pr.c, &mp.down[0], &c_eof);
		mp.now_us += 1000;
		mps_conn_tick(mp.pr.c, mp.now_us);
		mps_conn_tick(mp.pr.s, mp.now_us);
		ck_assert_int_eq(mp.s_err[0], 0);
		ck_assert_int_eq(mp.c_err[0], 0);
		ck_assert_int_lt(++rounds, 20000);
	}
	ck_assert(doctored);
	ck_assert_uint_eq(srd, total);
	ck_assert_uint_eq(crd, total);
	info(mp.pr.c, &ci);
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.csum_errors, 1);
	ck_assert_uint_eq(ci.stats.mp_fail, 1);
	ck_assert_int_eq(ci.state, MPS_CONN_FALLBACK);
	ck_assert_int_eq(si.state, MPS_CONN_FALLBACK);
	ck_assert_int_eq(mps_conn_error(mp.pr.c), 0);
	ck_assert_int_eq(mps_conn_error(mp.pr.s), 0);
	mp_free(&mp);
}

START_TEST(mp_fail_mid_transfer_loses_no_byte_either_way)
{
	check_mp_fail_mid_transfer(0);
}
END_TEST

START_TEST(mp_fail_with_a_full_receive_buffer_loses_no_byte)
{
	check_mp_fail_mid_transfer(20);
}
END_TEST

/* Redundant scheduling over two subflows, link 1 doctored. */
static void check_inconsistent_copy(bool read_first)
{
	static uint8_t data[3000];
	uint8_t got[3000];
	struct mps_conn_event ev;
	struct mps_conn_info si;
	struct mp mp;
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = stream_byte(3, i);
	mp_with_joins(&mp, MPS_SCHED_REDUNDANT, 1);
	app_write_all(mp.pr.c, data, sizeof(data));
	link_write(&mp, mp.pr.c, mp.csf[0], &mp.up[0]);
	link_write(&mp, mp.pr.c, mp.csf[1], &mp.up[1]);
	link_deliver(mp.pr.s, mp.ssf[0], &mp.up[0], &mp.s_err[0]);
	if (read_first) {
		/* Delivered already: compared with the history. */
		ck_assert_uint_eq(app_read(mp.pr.s, got, sizeof(got)),
				  sizeof(data));
		ck_assert_mem_eq(got, data, sizeof(data));
	}
	doctor_link(&mp.up[1]);
	link_deliver(mp.pr.s, mp.ssf[1], &mp.up[1], &mp.s_err[1]);
	ck_assert_int_eq(mp.s_err[1], -EPROTO);

	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.inconsistent_data, 1);
	ck_assert_int_eq(si.sf[mp.ssf[1]].state, MPS_SF_FAILED);
	expect_event(mp.pr.s, MPS_EV_INCONSISTENT_DATA, &ev);
	ck_assert_int_eq(ev.sf, mp.ssf[1]);
	if (!read_first) {
		ck_assert_uint_eq(app_read(mp.pr.s, got, sizeof(got)),
				  sizeof(data));
		ck_assert_mem_eq(got, data, sizeof(data));
	}
	ck_assert_int_eq(mps_conn_app_peek(mp.pr.s, (struct iovec[1]){0}, 1),
			 0);
	mp.s_err[1] = 0;
	mp_pump(&mp);
	mp.failed[1] = true;
	expect_conn_fine(&mp);
	ck_assert_int_eq(mp.s_err[0], 0);
	mp_free(&mp);
}

START_TEST(a_different_copy_of_held_data_resets_its_subflow)
{
	check_inconsistent_copy(false);
}
END_TEST

START_TEST(
	a_different_copy_of_delivered_data_resets_its_subflow)
{
	check_inconsistent_copy(true);
}
END_TEST

/* An MP_JOIN SYN record for token with nonce. */
static int join_syn(uint8_t *buf, size_t cap, uint32_t token, uint32_t nonce)
{
	struct mps_option opt = {.subtype = MPS_MP_JOIN};

	opt.mp_join.form = MPS_JOIN_SYN;
	opt.mp_join.token = token;
	opt.mp_join.nonce = nonce;
	return mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, cap);
}

START_TEST(replayed_joins_are_refused_and_half_open_joins_are_capped)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	unsigned long base = mps_conn_half_open_joins();
	struct mps_conn_info si;
	uint8_t buf[64];
	struct mp mp;
	int s1, s2, s3, len;

	mp_init(&mp, &p);
	mp_establish(&mp);
	info(mp.pr.s, &si);
	len = join_syn(buf, sizeof(buf), si.local_token, 0x01020304);

	s1 = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.s, s1, buf, (size_t)len), 0);
	ck_assert_uint_eq(mps_conn_half_open_joins(), base + 1);
	s2 = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.s, s2, buf, (size_t)len),
			 -EPERM);
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.joins_replayed, 1);
	ck_assert_uint_eq(mps_conn_half_open_joins(), base + 1);

	/* Two half-open joins at most per connection. */
	s3 = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_gt(s3, 0);
	ck_assert_int_eq(mps_conn_sf_accept_join(mp.pr.s), -EBUSY);
	ck_assert_uint_eq(mps_conn_half_open_joins(), base + 2);
	info(mp.pr.s, &si);
	ck_assert_uint_eq(si.stats.joins_half_open_refused, 1);

	/* A join that goes away is no longer half-open. */
	mps_conn_sf_closed(mp.pr.s, s3, ECONNRESET);
	ck_assert_uint_eq(mps_conn_half_open_joins(), base + 1);
	expect_conn_fine(&mp);
	mp_free(&mp);
	ck_assert_uint_eq(mps_conn_half_open_joins(), base);
}
END_TEST

static int signal_record(uint8_t *buf, size_t cap, int subtype)
{
	struct mps_option opt = {.subtype = subtype};

	opt.remove_addr.count = 1;
	opt.remove_addr.ids[0] = 0;
	return mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, cap);
}

START_TEST(remove_addr_and_mp_prio_count_only_from_authenticated_subflows)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_conn_event ev;
	struct mps_conn_info si;
	uint8_t buf[64], first[256];
	struct pair pr;
	struct mp mp;
	int sf, len;
	size_t n;

	/* On a join that has not proved the keys: refused with it. */
	mp_init(&mp, &p);
	mp_establish(&mp);
	len = signal_record(buf, sizeof(buf), MPS_REMOVE_ADDR);
	sf = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.s, sf, buf, (size_t)len),
			 -EPERM);
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_FAILED, &ev);
	len = signal_record(buf, sizeof(buf), MPS_MP_PRIO);
	sf = mps_conn_sf_accept_join(mp.pr.s);
	ck_assert_int_eq(mps_conn_sf_input(mp.pr.s, sf, buf, (size_t)len),
			 -EPERM);
	expect_event(mp.pr.s, MPS_EV_SUBFLOW_FAILED, &ev);
	ck_assert(!mps_conn_next_event(mp.pr.s, &ev));
	expect_conn_fine(&mp);
	mp_free(&mp);

	/* Before the MP_CAPABLE exchange is complete: ignored, counted. */
	pair_init(&pr, &p, &p, true);
	n = drain(pr.c, first, sizeof(first));
	ck_assert_int_eq(mps_conn_sf_input(pr.s, 0, first, n), 0);
	len = signal_record(buf, sizeof(buf), MPS_REMOVE_ADDR);
	ck_assert_int_eq(mps_conn_sf_input(pr.s, 0, buf, (size_t)len), 0);
	len = signal_record(buf, sizeof(buf), MPS_MP_PRIO);
	ck_assert_int_eq(mps_conn_sf_input(pr.s, 0, buf, (size_t)len), 0);
	ck_assert(!mps_conn_next_event(pr.s, &ev));
	info(pr.s, &si);
	ck_assert_uint_eq(si.stats.signals_refused, 2);
	pair_free(&pr);
}
END_TEST

/* A DSS mapping record of the peer's data, payload from pay. */
static size_t dss_record(uint8_t *buf,
			 uint64_t dsn,
			 uint32_t ssn,
			 const uint8_t *pay,
			 size_t n)
{
	struct mps_option opt = {.subtype = MPS_DSS};
	int len;

	opt.dss.flags = MPS_DSS_MAP | MPS_DSS_DSN64;
	opt.dss.dsn = dsn;
	opt.dss.ssn = ssn;
	opt.dss.data_len = (uint16_t)n;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, n, buf, 64);
	ck_assert_int_gt(len, 0);
	memcpy(buf + len, pay, n);
	return (size_t)len + n;
}

/* A server core whose client the test plays by hand. */
struct hostile {
	struct pair pr;
	size_t bound;
	uint64_t dsn; /* the client's next DSN */
	uint32_t ssn;
};

static void hostile_init(struct hostile *h, struct mps_conn_params *p)
{
	struct mps_conn_info ci;

	pair_init(&h->pr, p, p, true);
	handshake(&h->pr);
	info(h->pr.c, &ci);
	h->dsn = ci.snd_nxt;
	h->ssn = 1;
	h->bound = mps_conn_mem_bound(p);
	ck_assert_uint_le(mps_conn_mem_used(h->pr.s), h->bound);
}

static int hostile_send(struct hostile *h, const uint8_t *buf, size_t len)
{
	int rc = mps_conn_sf_input(h->pr.s, 0, buf, len);

	ck_assert_uint_le(mps_conn_mem_used(h->pr.s), h->bound);
	return rc;
}

START_TEST(a_hostile_peer_cannot_push_memory_past_the_bound)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	static uint8_t pay[MPS_WIRE_PAYLOAD_MAX];
	static uint8_t rec[MPS_WIRE_RECORD_MAX];
	struct mps_conn_info si;
	struct hostile h;
	size_t n, i;
	int rc = 0;

	memset(pay, 'z', sizeof(pay));

	/* A record of the largest size whose payload trickles in. */
	hostile_init(&h, &p);
	n = dss_record(rec, h.dsn, h.ssn, pay, MPS_WIRE_PAYLOAD_MAX);
	for (i = 0; i + 1 < n && rc == 0; i++)
		rc = hostile_send(&h, rec + i, 1);
	ck_assert_int_eq(rc, 0);
	pair_free(&h.pr);

	/* Endless duplicates of the same data: accepted (and compared) up
	 * to mps__dup_run_max(), then a flood: reset. */
	hostile_init(&h, &p);
	n = dss_record(rec, h.dsn, h.ssn, pay, 1000);
	ck_assert_int_eq(hostile_send(&h, rec, n), 0);
	for (i = 1; rc == 0 && i < 100000; i++) {
		h.ssn += 1000;
		n = dss_record(rec, h.dsn, h.ssn, pay, 1000);
		rc = hostile_send(&h, rec, n);
	}
	ck_assert_int_lt(rc, 0);
	ck_assert_int_eq(mps_conn_state(h.pr.s), MPS_CONN_RESET);
	info(h.pr.s, &si);
	ck_assert_uint_gt(si.stats.dup_bytes, mps__dup_run_max(p.rcv_buf));
	ck_assert_uint_le(si.stats.dup_bytes,
			  mps__dup_run_max(p.rcv_buf) + 1000);
	ck_assert_uint_eq(si.stats.floods, 1);
	pair_free(&h.pr);
	rc = 0;

	/* Out-of-order scraps ahead of a hole, up to the window: the
	 * reassembly bound stops them, and the sender is reset. */
	hostile_init(&h, &p);
	for (i = 0; rc == 0 && i < 100000; i++) {
		n = dss_record(rec, h.dsn + 1 + 2 * i, h.ssn, pay, 1);
		h.ssn += 1;
		rc = hostile_send(&h, rec, n);
	}
	ck_assert_int_lt(rc, 0);
	ck_assert_int_eq(mps_conn_state(h.pr.s), MPS_CONN_RESET);
	pair_free(&h.pr);

	/* Data beyond the window: reset at once. */
	hostile_init(&h, &p);
	info(h.pr.s, &si);
	n = dss_record(rec, si.rcv_right - 10, h.ssn, pay, 20);
	ck_assert_int_lt(hostile_send(&h, rec, n), 0);
	ck_assert_int_eq(mps_conn_state(h.pr.s), MPS_CONN_RESET);
	pair_free(&h.pr);
}
END_TEST

START_TEST(join_floods_stay_bounded_add_addr_floods_reset)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_ADD_ADDR};
	size_t bound = mps_conn_mem_bound(&p);
	struct mps_conn_info si;
	uint8_t buf[64];
	struct mp mp;
	int i, sf, len, refused = 0;

	mp_init(&mp, &p);
	mp_establish(&mp);
	info(mp.pr.s, &si);
	for (i = 0; i < 100; i++) {
		len = join_syn(buf, sizeof(buf), si.local_token, (uint32_t)i);
		sf = mps_conn_sf_accept_join(mp.pr.s);
		if (sf < 0) {
			refused++;
			continue;
		}
		mps_conn_sf_input(mp.pr.s, sf, buf, (size_t)len);
		ck_assert_uint_le(mps_conn_mem_used(mp.pr.s), bound);
	}
	ck_assert_int_gt(refused, 90);

	/* ADD_ADDR with a wrong HMAC: each ignored and counted, up to the
	 * burst; past it, the subflow that carries them is reset. */
	opt.add_addr.addr = addr4(192, 0, 2, 1);
	opt.add_addr.has_hmac = true;
	for (i = 0; i < MPS_SIG_BURST; i++) {
		opt.add_addr.addr_id = (uint8_t)i;
		len = mps_wire_encode_record(
			&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
		ck_assert_int_eq(
			mps_conn_sf_input(mp.pr.c, 0, buf, (size_t)len), 0);
		ck_assert_uint_le(mps_conn_mem_used(mp.pr.c), bound);
	}
	info(mp.pr.c, &si);
	ck_assert_uint_eq(si.stats.addrs_refused, MPS_SIG_BURST);
	ck_assert_uint_eq(si.stats.floods, 0);
	expect_conn_fine(&mp);
	ck_assert_int_lt(mps_conn_sf_input(mp.pr.c, 0, buf, (size_t)len), 0);
	info(mp.pr.c, &si);
	ck_assert_uint_eq(si.stats.floods, 1);
	ck_assert_int_eq(mps_conn_state(mp.pr.c), MPS_CONN_RESET);
	mp_free(&mp);
}
END_TEST

/* The signal budget refills with time: MPS_SIG_PER_S a second, never
 * beyond the burst. */
START_TEST(address_signals_refill_at_their_rate)
{
	struct mps_conn_params p = params(MPS_VERSION_1, false);
	struct mps_option opt = {.subtype = MPS_ADD_ADDR};
	struct mps_conn_info ci;
	uint64_t now = 1000000;
	uint8_t buf[64];
	struct mp mp;
	int i, len;

	mp_init(&mp, &p);
	mp_establish(&mp);
	opt.add_addr.addr = addr4(192, 0, 2, 1);
	opt.add_addr.has_hmac = true;
	len = mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	/* an hour idle banks no more than the burst */
	now += 3600ull * 1000000;
	mps_conn_tick(mp.pr.c, now);
	for (i = 0; i < MPS_SIG_BURST; i++)
		ck_assert_int_eq(
			mps_conn_sf_input(mp.pr.c, 0, buf, (size_t)len), 0);
	/* one second later, MPS_SIG_PER_S more, and not one beyond */
	now += 1000000;
	mps_conn_tick(mp.pr.c, now);
	for (i = 0; i < MPS_SIG_PER_S; i++)
		ck_assert_int_eq(
			mps_conn_sf_input(mp.pr.c, 0, buf, (size_t)len), 0);
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.floods, 0);
	ck_assert_int_lt(mps_conn_sf_input(mp.pr.c, 0, buf, (size_t)len), 0);
	info(mp.pr.c, &ci);
	ck_assert_uint_eq(ci.stats.floods, 1);
	mp_free(&mp);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *hs = tcase_create("handshake");
	TCase *cs = tcase_create("checksum");
	TCase *data = tcase_create("data");
	TCase *close = tcase_create("close");
	TCase *fb = tcase_create("fallback");
	TCase *join = tcase_create("join");
	TCase *mpath = tcase_create("multipath");
	TCase *sched = tcase_create("sched");

	tcase_add_test(hs, handshake_v1_establishes_both_ends);
	tcase_add_test(hs, handshake_v0_establishes_both_ends);
	tcase_add_test(hs, v1_client_and_v0_server_agree_on_v0);
	tcase_add_test(hs, v0_client_and_v1_server_agree_on_v0);
	tcase_add_test(hs,
		       client_first_record_is_mp_capable_with_a_registered_key);
	tcase_add_test(hs, one_peek_gives_every_queued_record);
	tcase_add_test(hs, partial_writes_resume_inside_a_record);
	tcase_add_test(hs, server_answers_with_its_key_and_the_lower_version);
	tcase_add_test(hs,
		       early_data_survives_a_downgrade_and_a_checksum_upgrade);
	tcase_add_test(hs, server_sends_nothing_before_the_client_record);
	tcase_add_test(hs, third_ack_carries_the_first_data_in_v1);
	tcase_add_test(hs, server_resets_when_the_third_ack_echoes_a_wrong_key);
	suite_add_tcase(s, hs);

	tcase_add_test(cs, checksums_are_used_when_either_end_requires_them);
	tcase_add_test(cs, data_records_carry_a_valid_checksum);
	tcase_add_test(
		cs, a_bad_checksum_on_the_only_subflow_falls_back_with_mp_fail);
	tcase_add_test(cs, mp_fail_without_checksums_is_ignored_and_counted);
	tcase_add_test(cs, mp_fail_mid_transfer_loses_no_byte_either_way);
	tcase_add_test(cs, mp_fail_with_a_full_receive_buffer_loses_no_byte);
	suite_add_tcase(s, cs);

	tcase_set_timeout(data, 120);
	tcase_add_test(data,
		       ten_megabytes_each_way_arrive_intact_in_random_pieces);
	tcase_add_test(data,
		       two_megabytes_each_way_arrive_intact_with_v0_checksums);
	tcase_add_test(data, records_split_at_every_byte_are_parsed);
	tcase_add_test(data,
		       a_slow_reader_pushes_back_and_memory_stays_bounded);
	tcase_add_test(data,
		       data_beyond_the_advertised_window_resets_the_subflow);
	suite_add_tcase(s, data);

	tcase_add_test(data, a_request_and_its_answer_send_no_ack_only_record);
	tcase_add_test(data, a_bulk_transfer_is_acked_within_the_hold_bound);
	tcase_add_test(data, a_small_send_ring_asks_for_the_data_ack);
	tcase_add_test(close, data_fin_both_ways_closes_the_connection);
	tcase_add_test(
		close,
		a_bare_data_fin_has_subflow_sequence_zero_and_length_one);
	tcase_add_test(close,
		       subflow_end_without_data_fin_resets_the_connection);
	tcase_add_test(close, abort_sends_fastclose_and_the_peer_resets);
	tcase_add_test(close, mp_tcprst_from_the_peer_resets_the_connection);
	tcase_add_test(close, a_malformed_record_queues_mp_tcprst_and_resets);
	tcase_add_test(close, an_unexpected_option_resets_the_subflow);
	suite_add_tcase(s, close);

	tcase_add_test(fb,
		       server_falls_back_when_the_first_bytes_are_not_a_record);
	tcase_add_test(fb,
		       server_falls_back_on_a_record_that_is_not_mp_capable);
	tcase_add_test(fb, server_falls_back_when_nothing_arrives_in_time);
	tcase_add_test(fb, a_first_record_after_the_fallback_timer_resets);
	tcase_add_test(fb,
		       a_slow_first_record_is_waited_for_once_its_header_is_in);
	tcase_add_test(fb, plain_bytes_after_the_fallback_timer_pass_unchanged);
	tcase_add_test(fb, fallback_input_is_bounded_by_the_receive_buffer);
	tcase_add_test(fb, client_never_falls_back_after_its_mp_capable);
	suite_add_tcase(s, fb);

	tcase_add_test(join, a_v1_join_checks_both_hmacs_and_establishes);
	tcase_add_test(join, a_v0_join_checks_both_hmacs_and_establishes);
	tcase_add_test(join, a_join_with_a_wrong_token_is_refused_alone);
	tcase_add_test(join, a_join_with_a_bad_synack_hmac_is_refused_alone);
	tcase_add_test(join, a_join_with_a_bad_ack_hmac_is_refused_alone);
	tcase_add_test(join, no_join_before_the_first_data_mapping);
	tcase_add_test(join, add_addr_with_a_valid_hmac_is_echoed_and_reported);
	tcase_add_test(join, add_addr_with_a_bad_hmac_is_ignored_and_counted);
	tcase_add_test(join, add_addr_in_v0_carries_no_hmac_and_is_accepted);
	tcase_add_test(join,
		       remembered_addresses_are_bounded_and_refusals_counted);
	tcase_add_test(join, remove_addr_is_reported);
	suite_add_tcase(s, join);

	tcase_set_timeout(mpath, 300);
	tcase_add_test(mpath, ten_megabytes_over_two_subflows_use_both);
	tcase_add_test(mpath, ten_megabytes_over_three_subflows_use_all);
	tcase_add_test(mpath, round_robin_spreads_over_every_subflow);
	tcase_add_test(
		mpath,
		redundant_sends_every_byte_on_every_subflow_and_delivers_once);
	tcase_add_test(
		mpath,
		a_subflow_reset_mid_transfer_loses_and_duplicates_nothing);
	tcase_add_test(
		mpath,
		a_frozen_subflow_has_its_data_reinjected_after_the_stall_time);
	tcase_add_test(
		mpath,
		a_full_fast_subflow_leaves_backlog_to_the_slow_one);
	tcase_add_test(
		mpath,
		an_app_limited_delivery_rate_does_not_starve_a_slow_subflow);
	tcase_add_test(
		mpath,
		a_frozen_subflow_moves_data_acks_and_windows_away);
	tcase_add_test(mpath, a_lone_stalled_subflow_is_used_again);
	tcase_add_test(mpath, a_backup_subflow_idles_until_the_primary_fails);
	tcase_add_test(mpath, mp_prio_makes_a_subflow_backup_at_the_peer);
	suite_add_tcase(s, mpath);

	tcase_add_test(sched, earliest_prefers_the_fast_subflow);
	tcase_add_test(
		sched,
		earliest_uses_the_slow_subflow_when_the_fast_one_is_saturated);
	tcase_add_test(
		sched,
		earliest_fills_a_stale_slow_subflow_while_the_backlog_is_long);
	tcase_add_test(sched, earliest_rates_come_from_delivery_rate_or_cwnd);
	tcase_add_test(
		sched,
		earliest_takes_an_app_limited_delivery_rate_as_a_lower_bound);
	tcase_add_test(sched, round_robin_alternates_over_subflows_with_room);
	tcase_add_test(sched,
		       backup_paths_are_eligible_only_without_a_regular_one);
	suite_add_tcase(s, sched);

	TCase *sec = tcase_create("security");

	tcase_set_timeout(sec, 60);
	tcase_add_test(
		sec,
		a_bad_checksum_with_another_subflow_resets_it_and_reinjects);
	tcase_add_test(
		sec,
		a_different_copy_of_held_data_resets_its_subflow);
	tcase_add_test(
		sec,
		a_different_copy_of_delivered_data_resets_its_subflow);
	tcase_add_test(
		sec, replayed_joins_are_refused_and_half_open_joins_are_capped);
	tcase_add_test(
		sec,
		remove_addr_and_mp_prio_count_only_from_authenticated_subflows);
	tcase_add_test(sec, a_hostile_peer_cannot_push_memory_past_the_bound);
	tcase_add_test(sec, join_floods_stay_bounded_add_addr_floods_reset);
	tcase_add_test(sec, address_signals_refill_at_their_rate);
	suite_add_tcase(s, sec);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
