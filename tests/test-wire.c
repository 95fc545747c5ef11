/*
 * Unit tests of the wire module: every option form, the record framing,
 * each error, and a robustness run over flipped bits and random bytes.
 *
 * Decoders are always handed heap copies of exactly the bytes they may
 * read, so that a build with -fsanitize=address reports any overread.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mptcpshim/wire.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The lowest error code; every result is 0, NEED_MORE or in between. */
#define LOWEST_ERR MPS_WIRE_E_NO_SPACE

/*
 * Check marks every passing ck_assert through a pipe to the parent, which
 * dominates loops of a million checks; the hot helpers use this instead.
 */
#define require(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

/* Values from PROTOCOL-NOTES.md, so that the fixtures are realistic. */
#define KEY_A UINT64_C(0x0102030405060708)
#define KEY_B UINT64_C(0x1122334455667788)
#define TOKEN_B UINT32_C(0x66840dda)
#define NONCE_A UINT32_C(0xaabbccdd)
#define NONCE_B UINT32_C(0x11223344)
#define PORT 10100

/* clang-format off */
static const uint8_t join_synack_hmac[MPS_JOIN_TRUNC_HMAC_LEN] = {
	0x69, 0x0b, 0xfc, 0x52, 0x20, 0x83, 0x0d, 0x74,
};
/* clang-format on */

/* clang-format off */
static const uint8_t join_ack_hmac[MPS_JOIN_HMAC_LEN] = {
	0xf3, 0x52, 0xb5, 0x1e, 0x7f, 0xf5, 0x99, 0xd9, 0x01, 0x7a,
	0xb3, 0xf4, 0xe6, 0x28, 0x6d, 0x81, 0x27, 0xf2, 0x10, 0x8a,
};
/* clang-format on */

/* clang-format off */
static const uint8_t add_addr_hmac[MPS_ADD_ADDR_HMAC_LEN] = {
	0x37, 0x66, 0x19, 0x3b, 0x87, 0xb7, 0xaf, 0xb1,
};
/* clang-format on */

static const uint8_t ipv4[4] = {10, 0, 2, 1};
/* clang-format off */
static const uint8_t ipv6[16] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
};
/* clang-format on */

/*
 * Helpers: heap copies and decoding through them.
 */

/*
 * A copy of len bytes in a heap block of exactly that size, so that ASan
 * reports a read past either end.  Small blocks are kept for reuse: the
 * robustness cases decode close to a million buffers.
 */
#define POOL_MAX 128

static uint8_t *pool[POOL_MAX + 1];

static uint8_t *exact_copy(const uint8_t *src, size_t len)
{
	uint8_t *p;

	if (len > POOL_MAX) {
		p = malloc(len);
	} else {
		if (!pool[len])
			pool[len] = malloc(len);
		p = pool[len];
	}

	require(p != NULL, "out of memory");
	if (len)
		memcpy(p, src, len);
	return p;
}

static void release_copy(uint8_t *p, size_t len)
{
	if (len > POOL_MAX)
		free(p);
}

static int decode_exact(const uint8_t *bytes,
			size_t len,
			int version,
			struct mps_option *out)
{
	uint8_t *copy = exact_copy(bytes, len);
	int r = mps_wire_decode_option(copy, len, version, out);

	release_copy(copy, len);
	return r;
}

static int decode_record_exact(const uint8_t *bytes,
			       size_t len,
			       int version,
			       struct mps_record *rec)
{
	uint8_t *copy = exact_copy(bytes, len);
	int r = mps_wire_decode_record(copy, len, version, rec);

	release_copy(copy, len);
	return r;
}

static const char *describe(const struct mps_option *opt)
{
	static char text[256];

	mps_wire_format_option(opt, text, sizeof(text));
	return text;
}

static void assert_result_is_defined(int r)
{
	require(r == 0 || r == MPS_WIRE_NEED_MORE || (r < 0 && r >= LOWEST_ERR),
		"undefined result %d",
		r);
}

/* Whatever the decoder accepts must encode back to the same bytes. */
static void assert_reencodes(const struct mps_option *opt,
			     int version,
			     const uint8_t *bytes,
			     size_t len)
{
	uint8_t again[MPS_WIRE_OPT_MAX];
	int n = mps_wire_encode_option(opt, version, again, sizeof(again));

	require(n == (int)len && memcmp(again, bytes, len) == 0,
		"%s: re-encoded differently (%d bytes, not %zu)",
		describe(opt),
		n,
		len);
}

static void assert_record_reencodes(const struct mps_record *rec,
				    int version,
				    const uint8_t *bytes)
{
	uint8_t again[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	int n = mps_wire_encode_record(
		&rec->opt, version, rec->payload_len, again, sizeof(again));

	require(n == (int)rec->payload_off &&
			memcmp(again, bytes, rec->payload_off) == 0,
		"%s: record re-encoded differently (%d bytes)",
		describe(&rec->opt),
		n);
}

/*
 * Fixture builders: one option of each kind, with realistic values.
 */

static struct mps_option blank(enum mps_subtype subtype)
{
	struct mps_option opt;

	memset(&opt, 0, sizeof(opt));
	opt.subtype = subtype;
	return opt;
}

static struct mps_option
mp_capable(int version, uint8_t flags, int nkeys, bool data_len, bool checksum)
{
	struct mps_option opt = blank(MPS_MP_CAPABLE);
	struct mps_mp_capable *mpc = &opt.mp_capable;

	mpc->version = (uint8_t)version;
	mpc->flags = flags;
	mpc->nkeys = (uint8_t)nkeys;
	if (nkeys >= 1)
		mpc->sender_key = KEY_A;
	if (nkeys == 2)
		mpc->receiver_key = KEY_B;
	mpc->has_data_len = data_len;
	mpc->data_len = data_len ? 11 : 0;
	mpc->has_checksum = checksum;
	mpc->checksum = checksum ? 0x6e23 : 0;
	return opt;
}

static struct mps_option mp_join(enum mps_join_form form, bool backup)
{
	struct mps_option opt = blank(MPS_MP_JOIN);
	struct mps_mp_join *join = &opt.mp_join;

	join->form = form;
	if (form == MPS_JOIN_ACK) {
		memcpy(join->hmac, join_ack_hmac, sizeof(join_ack_hmac));
		return opt;
	}

	join->backup = backup;
	join->addr_id = 2;
	if (form == MPS_JOIN_SYN) {
		join->token = TOKEN_B;
		join->nonce = NONCE_A;
	} else {
		memcpy(join->hmac, join_synack_hmac, sizeof(join_synack_hmac));
		join->nonce = NONCE_B;
	}
	return opt;
}

static struct mps_option dss(uint8_t flags, bool checksum)
{
	struct mps_option opt = blank(MPS_DSS);
	struct mps_dss *d = &opt.dss;

	d->flags = flags;
	if (flags & MPS_DSS_ACK)
		d->data_ack = (flags & MPS_DSS_ACK64) ? KEY_A : 0x01020304;
	if (flags & MPS_DSS_MAP) {
		d->dsn = (flags & MPS_DSS_DSN64) ? KEY_B : 0x11223344;
		d->ssn = 1;
		d->data_len = (flags & MPS_DSS_FIN) ? 12 : 11;
	}
	d->has_checksum = checksum;
	d->checksum = checksum ? 0x6e23 : 0;
	return opt;
}

static struct mps_option add_addr(int version, int family, bool port, bool echo)
{
	struct mps_option opt = blank(MPS_ADD_ADDR);
	struct mps_add_addr *aa = &opt.add_addr;

	aa->addr_id = 1;
	aa->addr.family = (uint16_t)family;
	if (family == AF_INET)
		memcpy(aa->addr.bytes, ipv4, sizeof(ipv4));
	else
		memcpy(aa->addr.bytes, ipv6, sizeof(ipv6));
	aa->has_port = port;
	aa->port = port ? PORT : 0;
	aa->echo = echo;
	aa->has_hmac = version == MPS_VERSION_1 && !echo;
	if (aa->has_hmac)
		memcpy(aa->hmac, add_addr_hmac, sizeof(add_addr_hmac));
	return opt;
}

static struct mps_option remove_addr(int count)
{
	struct mps_option opt = blank(MPS_REMOVE_ADDR);
	int i;

	opt.remove_addr.count = (uint8_t)count;
	for (i = 0; i < count; i++)
		opt.remove_addr.ids[i] = (uint8_t)(i + 1);
	return opt;
}

static struct mps_option mp_prio(bool backup, bool has_addr_id)
{
	struct mps_option opt = blank(MPS_MP_PRIO);

	opt.mp_prio.backup = backup;
	opt.mp_prio.has_addr_id = has_addr_id;
	opt.mp_prio.addr_id = has_addr_id ? 7 : 0;
	return opt;
}

static struct mps_option mp_fail(uint64_t dsn)
{
	struct mps_option opt = blank(MPS_MP_FAIL);

	opt.mp_fail.dsn = dsn;
	return opt;
}

static struct mps_option mp_fastclose(uint64_t key)
{
	struct mps_option opt = blank(MPS_MP_FASTCLOSE);

	opt.mp_fastclose.receiver_key = key;
	return opt;
}

static struct mps_option mp_tcprst(int reason, bool transient)
{
	struct mps_option opt = blank(MPS_MP_TCPRST);

	opt.mp_tcprst.reason = (uint8_t)reason;
	opt.mp_tcprst.transient = transient;
	return opt;
}

/*
 * The set of every valid form, built once.
 */

struct fixture {
	int version;
	struct mps_option opt;
};

static struct fixture fixtures[256];
static size_t nfixtures;

static void add_fixture(int version, struct mps_option opt)
{
	ck_assert_uint_lt(nfixtures, ARRAY_SIZE(fixtures));
	fixtures[nfixtures].version = version;
	fixtures[nfixtures].opt = opt;
	nfixtures++;
}

static bool dss_flags_valid(unsigned int f)
{
	if ((f & MPS_DSS_ACK64) && !(f & MPS_DSS_ACK))
		return false;
	if ((f & (MPS_DSS_DSN64 | MPS_DSS_FIN)) && !(f & MPS_DSS_MAP))
		return false;
	return true;
}

static void add_mp_capable_fixtures(void)
{
	static const uint8_t v1_flags[] = {0x01, 0x81, 0xa1};
	static const uint8_t v0_flags[] = {0x01, 0x81};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(v1_flags); i++) {
		add_fixture(1, mp_capable(1, v1_flags[i], 0, false, false));
		add_fixture(1, mp_capable(1, v1_flags[i], 1, false, false));
		add_fixture(1, mp_capable(1, v1_flags[i], 2, false, false));
		add_fixture(1, mp_capable(1, v1_flags[i], 2, true, false));
		add_fixture(1, mp_capable(1, v1_flags[i], 2, true, true));
	}
	for (i = 0; i < ARRAY_SIZE(v0_flags); i++) {
		add_fixture(0, mp_capable(0, v0_flags[i], 1, false, false));
		add_fixture(0, mp_capable(0, v0_flags[i], 2, false, false));
	}
}

/* Options whose layout is the same in both versions. */
static void add_common_fixtures(int version)
{
	unsigned int f;

	add_fixture(version, mp_join(MPS_JOIN_SYN, false));
	add_fixture(version, mp_join(MPS_JOIN_SYN, true));
	add_fixture(version, mp_join(MPS_JOIN_SYNACK, false));
	add_fixture(version, mp_join(MPS_JOIN_SYNACK, true));
	add_fixture(version, mp_join(MPS_JOIN_ACK, false));
	for (f = 0; f <= 0x1f; f++) {
		if (!dss_flags_valid(f))
			continue;
		add_fixture(version, dss((uint8_t)f, false));
		if (f & MPS_DSS_MAP)
			add_fixture(version, dss((uint8_t)f, true));
	}
	add_fixture(version, remove_addr(1));
	add_fixture(version, remove_addr(2));
	add_fixture(version, remove_addr(MPS_REMOVE_ADDR_MAX));
	add_fixture(version, mp_fail(KEY_B));
	add_fixture(version, mp_fastclose(KEY_A));
}

static void add_version_specific_fixtures(void)
{
	int family;
	int port;
	int reason;

	for (family = 0; family < 2; family++) {
		int af = family ? AF_INET6 : AF_INET;

		for (port = 0; port < 2; port++) {
			add_fixture(1, add_addr(1, af, port, false));
			add_fixture(1, add_addr(1, af, port, true));
			add_fixture(0, add_addr(0, af, port, false));
		}
	}
	add_fixture(1, mp_prio(false, false));
	add_fixture(1, mp_prio(true, false));
	add_fixture(0, mp_prio(false, false));
	add_fixture(0, mp_prio(true, true));
	for (reason = MPS_RST_UNSPECIFIED; reason <= MPS_RST_MIDDLEBOX;
	     reason++) {
		add_fixture(1, mp_tcprst(reason, false));
		add_fixture(1, mp_tcprst(reason, true));
	}
}

static void build_fixtures(void)
{
	nfixtures = 0;
	add_mp_capable_fixtures();
	add_common_fixtures(0);
	add_common_fixtures(1);
	add_version_specific_fixtures();
}

static int encode_fixture(const struct fixture *f, uint8_t *buf)
{
	int n = mps_wire_encode_option(
		&f->opt, f->version, buf, MPS_WIRE_OPT_MAX);

	ck_assert_msg(n >= MPS_WIRE_OPT_MIN,
		      "%s: %s",
		      describe(&f->opt),
		      mps_wire_strerror(n));
	return n;
}

/* The payload a record of this option must carry. */
static size_t payload_for(const struct mps_option *opt)
{
	const struct mps_dss *d = &opt->dss;

	if (opt->subtype == MPS_DSS && (d->flags & MPS_DSS_MAP))
		return d->data_len - ((d->flags & MPS_DSS_FIN) ? 1u : 0u);
	if (opt->subtype == MPS_MP_CAPABLE && opt->mp_capable.has_data_len)
		return opt->mp_capable.data_len;
	return 0;
}

/* A whole record: header, option, payload of a recognisable pattern. */
static size_t build_record(const struct mps_option *opt,
			   int version,
			   uint8_t *buf,
			   size_t cap)
{
	size_t payload = payload_for(opt);
	int n = mps_wire_encode_record(opt, version, payload, buf, cap);
	size_t i;

	ck_assert_msg(n > 0, "%s: %s", describe(opt), mps_wire_strerror(n));
	ck_assert_uint_le((size_t)n + payload, cap);
	for (i = 0; i < payload; i++)
		buf[(size_t)n + i] = (uint8_t)(i * 7 + 3);
	return (size_t)n + payload;
}

/* opt encodes to exactly these bytes, and they decode back to opt. */
static void check_layout(int version,
			 const struct mps_option *opt,
			 const uint8_t *bytes,
			 size_t len,
			 struct mps_option *back)
{
	uint8_t out[MPS_WIRE_OPT_MAX];
	char want[256];
	int n;

	n = mps_wire_encode_option(opt, version, out, sizeof(out));
	ck_assert_int_eq(n, (int)len);
	ck_assert_mem_eq(out, bytes, len);

	ck_assert_int_eq(decode_exact(bytes, len, version, back), 0);
	assert_reencodes(back, version, bytes, len);
	mps_wire_format_option(opt, want, sizeof(want));
	ck_assert_str_eq(describe(back), want);
}

/*
 * Options: round trips and known layouts.
 */

START_TEST(test_every_option_form_round_trips)
{
	uint8_t buf[MPS_WIRE_OPT_MAX];
	struct mps_option back;
	char want[256];
	size_t i;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];
		int n = encode_fixture(f, buf);

		ck_assert_int_eq(
			decode_exact(buf, (size_t)n, f->version, &back), 0);
		ck_assert_int_eq(back.subtype, f->opt.subtype);
		mps_wire_format_option(&f->opt, want, sizeof(want));
		ck_assert_str_eq(describe(&back), want);
		assert_reencodes(&back, f->version, buf, (size_t)n);
	}
}
END_TEST

static size_t dss_expected_len(unsigned int f, bool checksum)
{
	size_t len = 4;

	if (f & MPS_DSS_ACK)
		len += (f & MPS_DSS_ACK64) ? 8 : 4;
	if (f & MPS_DSS_MAP)
		len += ((f & MPS_DSS_DSN64) ? 8 : 4) + 6 + (checksum ? 2 : 0);
	return len;
}

static void check_dss_round_trip(unsigned int f, bool checksum)
{
	struct mps_option opt = dss((uint8_t)f, checksum);
	uint8_t buf[MPS_WIRE_OPT_MAX];
	struct mps_option back;
	int n;

	n = mps_wire_encode_option(&opt, 1, buf, sizeof(buf));
	ck_assert_int_eq(n, (int)dss_expected_len(f, checksum));
	ck_assert_int_eq(buf[3], f);
	ck_assert_int_eq(decode_exact(buf, (size_t)n, 1, &back), 0);

	ck_assert_uint_eq(back.dss.flags, f);
	ck_assert_uint_eq(back.dss.data_ack, opt.dss.data_ack);
	ck_assert_uint_eq(back.dss.dsn, opt.dss.dsn);
	ck_assert_uint_eq(back.dss.ssn, opt.dss.ssn);
	ck_assert_uint_eq(back.dss.data_len, opt.dss.data_len);
	ck_assert_int_eq(back.dss.has_checksum, checksum);
	ck_assert_uint_eq(back.dss.checksum, opt.dss.checksum);
}

START_TEST(test_dss_with_every_valid_flag_combination_round_trips)
{
	unsigned int f;
	int valid = 0;

	for (f = 0; f <= 0x1f; f++) {
		if (!dss_flags_valid(f))
			continue;
		valid++;
		check_dss_round_trip(f, false);
		if (f & MPS_DSS_MAP)
			check_dss_round_trip(f, true);
	}

	/* 3 data ACK forms (none, 4, 8) times 5 mapping forms. */
	ck_assert_int_eq(valid, 15);
}
END_TEST

START_TEST(test_dss_with_contradictory_flags_is_rejected)
{
	uint8_t raw[MPS_WIRE_OPT_MAX];
	struct mps_option opt;
	unsigned int f;
	size_t len;

	for (f = 0; f <= 0x1f; f++) {
		if (dss_flags_valid(f))
			continue;

		opt = dss((uint8_t)f, false);
		ck_assert_int_eq(
			mps_wire_encode_option(&opt, 1, raw, sizeof(raw)),
			MPS_WIRE_E_INCONSISTENT_FLAGS);

		len = dss_expected_len(f, false);
		memset(raw, 0, sizeof(raw));
		raw[0] = MPS_TCPOPT_MPTCP;
		raw[1] = (uint8_t)len;
		raw[2] = MPS_DSS << 4;
		raw[3] = (uint8_t)f;
		ck_assert_int_eq(decode_exact(raw, len, 1, &opt),
				 MPS_WIRE_E_INCONSISTENT_FLAGS);
	}
}
END_TEST

START_TEST(test_mp_capable_layouts_match_the_rfc)
{
	static const uint8_t v1_syn[] = {30, 4, 0x01, 0x81};
	/* clang-format off */
	static const uint8_t v1_synack[] = {
		30, 12, 0x01, 0x01, 0x11, 0x22, 0x33, 0x44,
		0x55, 0x66, 0x77, 0x88,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t v1_ack_data_csum[] = {
		30, 24, 0x01, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x00, 0x0b, 0x6e, 0x23,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t v0_ack[] = {
		30, 20, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
	};
	/* clang-format on */
	struct mps_option opt;
	struct mps_option back;

	opt = mp_capable(1, 0x81, 0, false, false);
	check_layout(1, &opt, v1_syn, sizeof(v1_syn), &back);
	ck_assert_uint_eq(back.mp_capable.nkeys, 0);

	/* The responder's key travels as the SYN/ACK's sender key. */
	opt = mp_capable(1, 0x01, 1, false, false);
	opt.mp_capable.sender_key = KEY_B;
	check_layout(1, &opt, v1_synack, sizeof(v1_synack), &back);
	ck_assert_uint_eq(back.mp_capable.sender_key, KEY_B);

	opt = mp_capable(1, 0xa1, 2, true, true);
	check_layout(
		1, &opt, v1_ack_data_csum, sizeof(v1_ack_data_csum), &back);
	ck_assert_uint_eq(back.mp_capable.receiver_key, KEY_B);
	ck_assert_uint_eq(back.mp_capable.data_len, 11);
	ck_assert_uint_eq(back.mp_capable.checksum, 0x6e23);

	/* The connection's version does not apply: the option has its own. */
	opt = mp_capable(0, 0x81, 2, false, false);
	check_layout(1, &opt, v0_ack, sizeof(v0_ack), &back);
	ck_assert_uint_eq(back.mp_capable.version, 0);
}
END_TEST

START_TEST(test_mp_join_layouts_match_the_rfc)
{
	/* clang-format off */
	static const uint8_t syn[] = {
		30, 12, 0x11, 0x02, 0x66, 0x84, 0x0d, 0xda,
		0xaa, 0xbb, 0xcc, 0xdd,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t synack[] = {
		30, 16, 0x10, 0x02, 0x69, 0x0b, 0xfc, 0x52,
		0x20, 0x83, 0x0d, 0x74, 0x11, 0x22, 0x33, 0x44,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t ack[] = {
		30, 24, 0x10, 0x00, 0xf3, 0x52, 0xb5, 0x1e,
		0x7f, 0xf5, 0x99, 0xd9, 0x01, 0x7a, 0xb3, 0xf4,
		0xe6, 0x28, 0x6d, 0x81, 0x27, 0xf2, 0x10, 0x8a,
	};
	/* clang-format on */
	struct mps_option opt;
	struct mps_option back;

	opt = mp_join(MPS_JOIN_SYN, true);
	check_layout(1, &opt, syn, sizeof(syn), &back);
	ck_assert_uint_eq(back.mp_join.token, TOKEN_B);
	ck_assert(back.mp_join.backup);

	opt = mp_join(MPS_JOIN_SYNACK, false);
	check_layout(1, &opt, synack, sizeof(synack), &back);
	ck_assert_uint_eq(back.mp_join.nonce, NONCE_B);

	opt = mp_join(MPS_JOIN_ACK, false);
	check_layout(0, &opt, ack, sizeof(ack), &back);
	ck_assert_mem_eq(back.mp_join.hmac, join_ack_hmac, MPS_JOIN_HMAC_LEN);
}
END_TEST

START_TEST(test_dss_layouts_match_the_rfc)
{
	static const uint8_t ack4[] = {30, 8, 0x20, 0x01, 1, 2, 3, 4};
	/* clang-format off */
	static const uint8_t all8_csum[] = {
		30, 28, 0x20, 0x1f, 1, 2, 3, 4, 5, 6, 7, 8,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0, 0, 0, 1, 0x00, 0x0c, 0x6e, 0x23,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t bare_fin[] = {
		30, 14, 0x20, 0x14, 0, 0, 0, 9, 0, 0, 0, 0, 0, 1,
	};
	/* clang-format on */
	struct mps_option opt;
	struct mps_option back;

	opt = dss(MPS_DSS_ACK, false);
	check_layout(1, &opt, ack4, sizeof(ack4), &back);
	ck_assert_uint_eq(back.dss.data_ack, 0x01020304);

	opt = dss(0x1f, true);
	check_layout(1, &opt, all8_csum, sizeof(all8_csum), &back);
	ck_assert_uint_eq(back.dss.data_ack, KEY_A);
	ck_assert_uint_eq(back.dss.dsn, KEY_B);

	/* RFC 8684 section 3.3.3: subflow sequence 0, length 1. */
	opt = dss(MPS_DSS_MAP | MPS_DSS_FIN, false);
	opt.dss.dsn = 9;
	opt.dss.ssn = 0;
	opt.dss.data_len = 1;
	check_layout(1, &opt, bare_fin, sizeof(bare_fin), &back);
}
END_TEST

START_TEST(test_add_addr_layouts_match_the_rfc)
{
	/* clang-format off */
	static const uint8_t v1_ipv4_port_hmac[] = {
		30, 18, 0x30, 0x01, 10, 0, 2, 1, 0x27, 0x74,
		0x37, 0x66, 0x19, 0x3b, 0x87, 0xb7, 0xaf, 0xb1,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t v1_ipv6_echo[] = {
		30, 20, 0x31, 0x01, 0x20, 0x01, 0x0d, 0xb8,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t v0_ipv4_port[] = {
		30, 10, 0x34, 0x01, 10, 0, 2, 1, 0x27, 0x74,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t v0_ipv6[] = {
		30, 20, 0x36, 0x01, 0x20, 0x01, 0x0d, 0xb8,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	};
	/* clang-format on */
	struct mps_option opt;
	struct mps_option back;

	opt = add_addr(1, AF_INET, true, false);
	check_layout(
		1, &opt, v1_ipv4_port_hmac, sizeof(v1_ipv4_port_hmac), &back);
	ck_assert_uint_eq(back.add_addr.port, PORT);

	/* The same length means IPv6 echo in v1 and IPv6 in v0. */
	opt = add_addr(1, AF_INET6, false, true);
	check_layout(1, &opt, v1_ipv6_echo, sizeof(v1_ipv6_echo), &back);
	ck_assert_uint_eq(back.add_addr.addr.family, AF_INET6);

	opt = add_addr(0, AF_INET, true, false);
	check_layout(0, &opt, v0_ipv4_port, sizeof(v0_ipv4_port), &back);

	opt = add_addr(0, AF_INET6, false, false);
	check_layout(0, &opt, v0_ipv6, sizeof(v0_ipv6), &back);
}
END_TEST

START_TEST(test_other_option_layouts_match_the_rfc)
{
	static const uint8_t remove[] = {30, 5, 0x40, 1, 2};
	static const uint8_t prio_v1[] = {30, 3, 0x51};
	static const uint8_t prio_v0[] = {30, 4, 0x51, 7};
	/* clang-format off */
	static const uint8_t fail[] = {
		30, 12, 0x60, 0, 0x11, 0x22, 0x33, 0x44,
		0x55, 0x66, 0x77, 0x88,
	};
	/* clang-format on */
	/* clang-format off */
	static const uint8_t fastclose[] = {
		30, 12, 0x70, 0, 1, 2, 3, 4, 5, 6, 7, 8,
	};
	/* clang-format on */
	static const uint8_t tcprst[] = {30, 4, 0x81, 0x01};
	struct mps_option opt;
	struct mps_option back;

	opt = remove_addr(2);
	check_layout(1, &opt, remove, sizeof(remove), &back);
	opt = mp_prio(true, false);
	check_layout(1, &opt, prio_v1, sizeof(prio_v1), &back);
	opt = mp_prio(true, true);
	check_layout(0, &opt, prio_v0, sizeof(prio_v0), &back);
	opt = mp_fail(KEY_B);
	check_layout(1, &opt, fail, sizeof(fail), &back);
	opt = mp_fastclose(KEY_A);
	check_layout(1, &opt, fastclose, sizeof(fastclose), &back);
	opt = mp_tcprst(MPS_RST_MPTCP_ERROR, true);
	check_layout(1, &opt, tcprst, sizeof(tcprst), &back);
}
END_TEST

/*
 * Options: rejections.
 */

START_TEST(test_every_prefix_of_every_option_is_truncated)
{
	uint8_t buf[MPS_WIRE_OPT_MAX];
	struct mps_option out;
	size_t i;
	size_t k;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		int n = encode_fixture(&fixtures[i], buf);

		for (k = 0; k < (size_t)n; k++)
			ck_assert_int_eq(
				decode_exact(buf, k, fixtures[i].version, &out),
				MPS_WIRE_E_TRUNCATED);
	}
}
END_TEST

START_TEST(test_bytes_beyond_the_option_length_are_a_mismatch)
{
	uint8_t buf[MPS_WIRE_OPT_MAX + 1];
	struct mps_option out;
	size_t i;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];
		size_t len = (size_t)encode_fixture(f, buf) + 1;

		ck_assert_int_eq(decode_exact(buf, len, f->version, &out),
				 MPS_WIRE_E_LENGTH_MISMATCH);
	}
}
END_TEST

START_TEST(test_option_of_another_kind_is_rejected)
{
	uint8_t buf[] = {2, 4, 0x05, 0xb4}; /* an MSS option */
	struct mps_option out;

	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &out),
			 MPS_WIRE_E_BAD_KIND);
	ck_assert_int_eq(decode_exact(buf, 1, 1, &out), MPS_WIRE_E_BAD_KIND);
}
END_TEST

START_TEST(test_option_length_byte_outside_3_to_40_is_rejected)
{
	uint8_t buf[64] = {30, 0, 0x20, 0};
	static const uint8_t bad[] = {0, 1, 2, 41, 64, 255};
	struct mps_option out;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		buf[1] = bad[i];
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &out),
				 MPS_WIRE_E_BAD_LENGTH);
	}
}
END_TEST

/* For one way to fill bytes 2 and 3, the lengths that are valid. */
struct length_case {
	int version;
	uint8_t byte2;
	uint8_t byte3;
	uint64_t valid; /* bit n set: length n decodes */
};

#define LEN(n) (UINT64_C(1) << (n))

/* clang-format off */
static const struct length_case length_cases[] = {
	{ 1, 0x01, 0x01, LEN(4) | LEN(12) | LEN(20) | LEN(22) | LEN(24) },
	{ 0, 0x00, 0x01, LEN(12) | LEN(20) },
	{ 1, 0x10, 0x00, LEN(12) | LEN(16) | LEN(24) },
	{ 1, 0x20, 0x00, LEN(4) },
	{ 1, 0x20, 0x01, LEN(8) },
	{ 1, 0x20, 0x04, LEN(14) | LEN(16) },
	{ 1, 0x20, 0x0f, LEN(26) | LEN(28) },
	{ 1, 0x30, 0x01, LEN(16) | LEN(18) | LEN(28) | LEN(30) },
	{ 1, 0x31, 0x01, LEN(8) | LEN(10) | LEN(20) | LEN(22) },
	{ 0, 0x34, 0x01, LEN(8) | LEN(10) },
	{ 0, 0x36, 0x01, LEN(20) | LEN(22) },
	{ 1, 0x40, 0x01, ~(LEN(3) - 1) & ~LEN(3) },
	{ 1, 0x50, 0x00, LEN(3) },
	{ 0, 0x50, 0x00, LEN(3) | LEN(4) },
	{ 1, 0x60, 0x00, LEN(12) },
	{ 1, 0x70, 0x00, LEN(12) },
	{ 1, 0x80, 0x00, LEN(4) },
};
/* clang-format on */

START_TEST(test_lengths_that_fit_no_form_are_rejected)
{
	const struct length_case *c = &length_cases[_i];
	uint8_t buf[MPS_WIRE_OPT_MAX] = {0};
	struct mps_option out;
	size_t len;
	int want;

	for (len = MPS_WIRE_OPT_MIN; len <= MPS_WIRE_OPT_MAX; len++) {
		buf[0] = MPS_TCPOPT_MPTCP;
		buf[1] = (uint8_t)len;
		buf[2] = c->byte2;
		buf[3] = c->byte3;
		want = (c->valid & LEN(len)) ? 0 : MPS_WIRE_E_BAD_LENGTH;
		ck_assert_msg(decode_exact(buf, len, c->version, &out) == want,
			      "byte2 0x%02x length %zu: want %d",
			      c->byte2,
			      len,
			      want);
	}
}
END_TEST

START_TEST(test_unknown_subtypes_are_rejected)
{
	uint8_t buf[] = {30, 4, 0, 0};
	struct mps_option out;
	struct mps_option opt;
	unsigned int subtype;

	/* 15 is the private subtype: see the EXPERIMENTAL tests. */
	for (subtype = 9; subtype <= 14; subtype++) {
		buf[2] = (uint8_t)(subtype << 4);
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &out),
				 MPS_WIRE_E_UNKNOWN_SUBTYPE);
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), 0, &out),
				 MPS_WIRE_E_UNKNOWN_SUBTYPE);
	}

	opt = blank((enum mps_subtype)9);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, buf, sizeof(buf)),
			 MPS_WIRE_E_UNKNOWN_SUBTYPE);
}
END_TEST

START_TEST(test_mp_tcprst_does_not_exist_in_version_0)
{
	static const uint8_t buf[] = {30, 4, 0x80, 0x01};
	struct mps_option opt = mp_tcprst(MPS_RST_MPTCP_ERROR, false);
	uint8_t out[MPS_WIRE_OPT_MAX];

	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 0, &opt),
			 MPS_WIRE_E_NOT_IN_VERSION);
	opt = mp_tcprst(MPS_RST_MPTCP_ERROR, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 0, out, sizeof(out)),
			 MPS_WIRE_E_NOT_IN_VERSION);
}
END_TEST

START_TEST(test_mp_capable_versions_above_1_are_rejected)
{
	uint8_t buf[12] = {30, 12, 0, 0x81};
	struct mps_option opt;
	uint8_t out[MPS_WIRE_OPT_MAX];
	unsigned int version;

	for (version = 2; version <= 15; version++) {
		buf[2] = (uint8_t)version;
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
				 MPS_WIRE_E_BAD_VERSION);
	}

	opt = mp_capable(2, 0x81, 1, false, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, out, sizeof(out)),
			 MPS_WIRE_E_BAD_VERSION);
}
END_TEST

START_TEST(test_connection_versions_but_0_and_1_are_rejected)
{
	static const uint8_t buf[] = {30, 3, 0x51};
	static const int bad[] = {-1, 2, 15};
	struct mps_option opt = mp_prio(true, false);
	struct mps_record rec;
	uint8_t out[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), bad[i], &opt),
				 MPS_WIRE_E_BAD_VERSION);
		opt = mp_prio(true, false);
		ck_assert_int_eq(
			mps_wire_encode_option(&opt, bad[i], out, sizeof(out)),
			MPS_WIRE_E_BAD_VERSION);
		ck_assert_int_eq(mps_wire_decode_record(out, 0, bad[i], &rec),
				 MPS_WIRE_E_BAD_VERSION);
	}
}
END_TEST

/* Bits of one byte of an encoded fixture that must be zero. */
struct reserved_case {
	int version;
	struct mps_option opt;
	size_t byte;
	uint8_t mask;
};

static size_t reserved_cases(struct reserved_case *c)
{
	size_t n = 0;

	/* clang-format off */
	c[n++] = (struct reserved_case){ 1, mp_capable(1, 0x81, 1, 0, 0),
					 3, 0x1e };
	c[n++] = (struct reserved_case){ 0, mp_capable(0, 0x81, 2, 0, 0),
					 3, 0x3e };
	c[n++] = (struct reserved_case){ 1, mp_join(MPS_JOIN_SYN, 0), 2,
					 0x0e };
	c[n++] = (struct reserved_case){ 1, mp_join(MPS_JOIN_SYNACK, 1), 2,
					 0x0e };
	c[n++] = (struct reserved_case){ 1, mp_join(MPS_JOIN_ACK, 0), 2,
					 0x0f };
	c[n++] = (struct reserved_case){ 1, mp_join(MPS_JOIN_ACK, 0), 3,
					 0xff };
	c[n++] = (struct reserved_case){ 1, dss(0x1f, true), 2, 0x0f };
	c[n++] = (struct reserved_case){ 1, dss(0x1f, true), 3, 0xe0 };
	c[n++] = (struct reserved_case){ 1, add_addr(1, AF_INET, 0, 0), 2,
					 0x0e };
	c[n++] = (struct reserved_case){ 1, remove_addr(3), 2, 0x0f };
	c[n++] = (struct reserved_case){ 1, mp_prio(0, 0), 2, 0x0e };
	c[n++] = (struct reserved_case){ 0, mp_prio(1, 1), 2, 0x0e };
	c[n++] = (struct reserved_case){ 1, mp_fail(1), 2, 0x0f };
	c[n++] = (struct reserved_case){ 1, mp_fail(1), 3, 0xff };
	c[n++] = (struct reserved_case){ 1, mp_fastclose(1), 2, 0x0f };
	c[n++] = (struct reserved_case){ 1, mp_fastclose(1), 3, 0xff };
	c[n++] = (struct reserved_case){ 1, mp_tcprst(1, 1), 2, 0x0e };
	/* clang-format on */
	return n;
}

/* Set one reserved bit of an encoded case and decode it. */
static int decode_with_bit_set(const struct reserved_case *c, int bit)
{
	uint8_t buf[MPS_WIRE_OPT_MAX];
	struct mps_option out;
	int len;

	len = mps_wire_encode_option(&c->opt, c->version, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	buf[c->byte] |= (uint8_t)(1u << bit);
	return decode_exact(buf, (size_t)len, c->version, &out);
}

START_TEST(test_set_reserved_bits_are_rejected)
{
	struct reserved_case cases[32];
	size_t n = reserved_cases(cases);
	size_t i;
	int bit;
	int r;

	for (i = 0; i < n; i++) {
		for (bit = 0; bit < 8; bit++) {
			if (!(cases[i].mask & (1u << bit)))
				continue;
			r = decode_with_bit_set(&cases[i], bit);
			ck_assert_msg(r == MPS_WIRE_E_RESERVED_BITS,
				      "%s: byte %zu bit %d: %s",
				      describe(&cases[i].opt),
				      cases[i].byte,
				      bit,
				      mps_wire_strerror(r));
		}
	}
}
END_TEST

START_TEST(test_mp_capable_flags_on_reserved_bits_are_not_encoded)
{
	struct mps_option opt;
	uint8_t out[MPS_WIRE_OPT_MAX];

	opt = mp_capable(1, 0x81 | 0x02, 1, false, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, out, sizeof(out)),
			 MPS_WIRE_E_RESERVED_BITS);

	/* C means "no new subflows to this address" only in v1. */
	opt = mp_capable(0, 0x81 | MPS_MPC_NO_SRC_ADDR, 1, false, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 0, out, sizeof(out)),
			 MPS_WIRE_E_RESERVED_BITS);
}
END_TEST

START_TEST(test_mp_capable_with_extensibility_bit_is_rejected)
{
	uint8_t buf[12] = {30, 12, 0x01, 0x81 | MPS_MPC_EXTENSIBILITY};
	struct mps_option opt;

	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
			 MPS_WIRE_E_EXTENSIBILITY);
	buf[2] = 0x00;
	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
			 MPS_WIRE_E_EXTENSIBILITY);

	opt = mp_capable(1, 0x81 | MPS_MPC_EXTENSIBILITY, 1, false, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, buf, sizeof(buf)),
			 MPS_WIRE_E_EXTENSIBILITY);
}
END_TEST

START_TEST(test_mp_capable_without_hmac_algorithm_is_rejected)
{
	uint8_t buf[4] = {30, 4, 0x01, MPS_MPC_CHECKSUM};
	struct mps_option opt;

	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
			 MPS_WIRE_E_NO_HMAC_ALGO);

	opt = mp_capable(0, MPS_MPC_CHECKSUM, 1, false, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 0, buf, sizeof(buf)),
			 MPS_WIRE_E_NO_HMAC_ALGO);
}
END_TEST

START_TEST(test_mp_tcprst_reasons_above_6_are_rejected)
{
	uint8_t buf[4] = {30, 4, 0x80, 0};
	struct mps_option opt;
	unsigned int reason;

	for (reason = 7; reason <= 255; reason++) {
		buf[3] = (uint8_t)reason;
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
				 MPS_WIRE_E_BAD_REASON);
	}

	opt = mp_tcprst(7, false);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, buf, sizeof(buf)),
			 MPS_WIRE_E_BAD_REASON);
}
END_TEST

START_TEST(test_add_addr_with_unknown_family_is_rejected)
{
	uint8_t buf[8] = {30, 8, 0x30, 1, 10, 0, 2, 1};
	struct mps_option opt;
	unsigned int ipver;

	for (ipver = 0; ipver <= 15; ipver++) {
		if (ipver == 4 || ipver == 6)
			continue;
		buf[2] = (uint8_t)(0x30 | ipver);
		ck_assert_int_eq(decode_exact(buf, sizeof(buf), 0, &opt),
				 MPS_WIRE_E_BAD_FAMILY);
	}

	opt = add_addr(1, AF_INET, false, true);
	opt.add_addr.addr.family = AF_UNIX;
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, buf, sizeof(buf)),
			 MPS_WIRE_E_BAD_FAMILY);
}
END_TEST

static void
assert_not_encoded(const struct mps_option *opt, int version, int want)
{
	uint8_t buf[MPS_WIRE_OPT_MAX];
	uint8_t untouched[MPS_WIRE_OPT_MAX];

	memset(buf, 0xa5, sizeof(buf));
	memset(untouched, 0xa5, sizeof(untouched));
	ck_assert_int_eq(mps_wire_encode_option(opt, version, buf, sizeof(buf)),
			 want);
	ck_assert_mem_eq(buf, untouched, sizeof(buf));
}

START_TEST(test_encoders_refuse_fields_that_match_no_form)
{
	struct mps_option opt;

	opt = mp_capable(1, 0x81, 3, false, false);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
	opt = mp_capable(0, 0x81, 0, false, false);
	assert_not_encoded(&opt, 0, MPS_WIRE_E_BAD_FORM);
	opt = mp_capable(0, 0x81, 2, true, false);
	assert_not_encoded(&opt, 0, MPS_WIRE_E_BAD_FORM);
	opt = mp_capable(1, 0x81, 2, false, true);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
	opt = mp_capable(1, 0x81, 1, true, false);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);

	opt = mp_join((enum mps_join_form)3, false);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);

	opt = dss(MPS_DSS_ACK, true);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
	opt = dss(0x20 | MPS_DSS_ACK, false);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_RESERVED_BITS);

	opt = add_addr(1, AF_INET, false, true);
	opt.add_addr.has_hmac = true;
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
	opt = add_addr(1, AF_INET, false, false);
	opt.add_addr.has_hmac = false;
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
	opt = add_addr(1, AF_INET, false, false);
	assert_not_encoded(&opt, 0, MPS_WIRE_E_BAD_FORM);
	opt = add_addr(0, AF_INET6, true, true);
	assert_not_encoded(&opt, 0, MPS_WIRE_E_BAD_FORM);

	opt = remove_addr(0);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
	opt = mp_prio(true, true);
	assert_not_encoded(&opt, 1, MPS_WIRE_E_BAD_FORM);
}
END_TEST

START_TEST(test_encoders_refuse_values_too_large_for_their_fields)
{
	struct mps_option opt;

	opt = dss(MPS_DSS_ACK | MPS_DSS_MAP, false);
	opt.dss.data_ack = UINT64_C(1) << 32;
	assert_not_encoded(&opt, 1, MPS_WIRE_E_OUT_OF_RANGE);

	opt = dss(MPS_DSS_ACK | MPS_DSS_MAP, false);
	opt.dss.dsn = UINT64_C(1) << 32;
	assert_not_encoded(&opt, 1, MPS_WIRE_E_OUT_OF_RANGE);

	opt = remove_addr(MPS_REMOVE_ADDR_MAX);
	opt.remove_addr.count = MPS_REMOVE_ADDR_MAX + 1;
	assert_not_encoded(&opt, 1, MPS_WIRE_E_TOO_LONG);
}
END_TEST

START_TEST(test_encoders_need_room_and_leave_the_buffer_untouched)
{
	uint8_t buf[MPS_WIRE_OPT_MAX];
	uint8_t untouched[MPS_WIRE_OPT_MAX];
	size_t i;
	size_t cap;
	int r;

	memset(untouched, 0xa5, sizeof(untouched));
	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];
		int n = encode_fixture(f, buf);

		for (cap = 0; cap < (size_t)n; cap++) {
			memset(buf, 0xa5, sizeof(buf));
			r = mps_wire_encode_option(
				&f->opt, f->version, buf, cap);
			ck_assert_int_eq(r, MPS_WIRE_E_NO_SPACE);
			ck_assert_mem_eq(buf, untouched, sizeof(buf));
		}
	}
}
END_TEST

/*
 * Records.
 */

START_TEST(test_record_with_bad_marker_is_rejected)
{
	static const uint8_t buf[] = {'X', 3, 0, 0, 30, 3, 0x51};
	struct mps_record rec;
	size_t k;

	/* Garbage is caught on its first byte, not after a whole header. */
	for (k = 1; k <= sizeof(buf); k++)
		ck_assert_int_eq(decode_record_exact(buf, k, 1, &rec),
				 MPS_WIRE_E_BAD_MARKER);
}
END_TEST

START_TEST(test_record_option_length_outside_3_to_40_is_rejected)
{
	static const uint8_t bad[] = {0, 1, 2, 41, 44, 255};
	uint8_t buf[64] = {MPS_WIRE_MARKER, 0, 0, 0, 30};
	struct mps_record_hdr hdr;
	struct mps_record rec;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		buf[1] = bad[i];
		buf[5] = bad[i];
		ck_assert_int_eq(decode_record_exact(buf, 2, 1, &rec),
				 MPS_WIRE_E_BAD_OPT_LEN);
		ck_assert_int_eq(decode_record_exact(buf, sizeof(buf), 1, &rec),
				 MPS_WIRE_E_BAD_OPT_LEN);
		ck_assert_int_eq(mps_wire_decode_header(buf, 4, &hdr),
				 MPS_WIRE_E_BAD_OPT_LEN);
	}
}
END_TEST

START_TEST(test_record_option_of_another_kind_is_rejected)
{
	static const uint8_t buf[] = {
		MPS_WIRE_MARKER, 4, 0, 0, 2, 4, 0x05, 0xb4};
	struct mps_record rec;

	ck_assert_int_eq(decode_record_exact(buf, 5, 1, &rec),
			 MPS_WIRE_E_BAD_KIND);
	ck_assert_int_eq(decode_record_exact(buf, sizeof(buf), 1, &rec),
			 MPS_WIRE_E_BAD_KIND);
}
END_TEST

START_TEST(test_record_option_length_must_equal_the_header_length)
{
	uint8_t buf[] = {MPS_WIRE_MARKER, 4, 0, 0, 30, 3, 0x51, 0};
	struct mps_record rec;

	ck_assert_int_eq(decode_record_exact(buf, 6, 1, &rec),
			 MPS_WIRE_E_LENGTH_MISMATCH);
	ck_assert_int_eq(decode_record_exact(buf, sizeof(buf), 1, &rec),
			 MPS_WIRE_E_LENGTH_MISMATCH);
	buf[1] = 3;
	buf[5] = 4;
	ck_assert_int_eq(decode_record_exact(buf, sizeof(buf), 0, &rec),
			 MPS_WIRE_E_LENGTH_MISMATCH);
}
END_TEST

/* A record of opt announcing payload_len bytes, with the payload. */
static size_t raw_record(const struct mps_option *opt,
			 size_t payload_len,
			 uint8_t *buf,
			 size_t cap)
{
	int n = mps_wire_encode_option(
		opt, 1, buf + MPS_WIRE_HDR_LEN, cap - MPS_WIRE_HDR_LEN);

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(mps_wire_encode_header(buf, (size_t)n, payload_len),
			 0);
	ck_assert_uint_le(MPS_WIRE_HDR_LEN + (size_t)n + payload_len, cap);
	memset(buf + MPS_WIRE_HDR_LEN + n, 'x', payload_len);
	return MPS_WIRE_HDR_LEN + (size_t)n + payload_len;
}

/* Both directions agree on whether this payload length is allowed. */
static void
check_payload_rule(const struct mps_option *opt, size_t payload_len, int want)
{
	static uint8_t buf[MPS_WIRE_RECORD_MAX];
	uint8_t head[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	struct mps_record rec;
	size_t len = raw_record(opt, payload_len, buf, sizeof(buf));
	int r;

	ck_assert_int_eq(decode_record_exact(buf, len, 1, &rec), want);
	r = mps_wire_encode_record(opt, 1, payload_len, head, sizeof(head));
	if (want == 0) {
		ck_assert_int_eq(r, (int)(len - payload_len));
		ck_assert_uint_eq(rec.payload_len, payload_len);
		ck_assert_uint_eq(rec.len, len);
	} else {
		ck_assert_int_eq(r, want);
	}
}

START_TEST(test_payload_on_an_option_that_maps_no_data_is_rejected)
{
	struct mps_option opt;

	opt = mp_prio(true, false);
	check_payload_rule(&opt, 0, 0);
	check_payload_rule(&opt, 1, MPS_WIRE_E_UNEXPECTED_PAYLOAD);
	opt = dss(MPS_DSS_ACK | MPS_DSS_ACK64, false);
	check_payload_rule(&opt, 5, MPS_WIRE_E_UNEXPECTED_PAYLOAD);
	opt = mp_capable(1, 0x81, 2, false, false);
	check_payload_rule(&opt, 11, MPS_WIRE_E_UNEXPECTED_PAYLOAD);
	opt = mp_join(MPS_JOIN_ACK, false);
	check_payload_rule(&opt, 65535, MPS_WIRE_E_UNEXPECTED_PAYLOAD);
}
END_TEST

START_TEST(test_payload_length_must_equal_the_data_level_length)
{
	struct mps_option opt = dss(MPS_DSS_MAP, false);

	opt.dss.data_len = 100;
	check_payload_rule(&opt, 100, 0);
	check_payload_rule(&opt, 99, MPS_WIRE_E_PAYLOAD_MISMATCH);
	check_payload_rule(&opt, 101, MPS_WIRE_E_PAYLOAD_MISMATCH);

	opt.dss.data_len = MPS_WIRE_PAYLOAD_MAX;
	check_payload_rule(&opt, MPS_WIRE_PAYLOAD_MAX, 0);
}
END_TEST

START_TEST(test_data_fin_counts_one_in_the_data_level_length)
{
	struct mps_option opt = dss(MPS_DSS_MAP | MPS_DSS_FIN, false);

	opt.dss.data_len = 101;
	check_payload_rule(&opt, 100, 0);
	check_payload_rule(&opt, 101, MPS_WIRE_E_PAYLOAD_MISMATCH);

	/* A bare DATA_FIN: length 1, no payload. */
	opt.dss.data_len = 1;
	check_payload_rule(&opt, 0, 0);
}
END_TEST

START_TEST(test_infinite_mapping_carries_no_payload)
{
	struct mps_option opt = dss(MPS_DSS_ACK | MPS_DSS_MAP, true);

	opt.dss.data_len = 0;
	ck_assert(mps_wire_is_infinite_mapping(&opt));
	check_payload_rule(&opt, 0, 0);
	check_payload_rule(&opt, 5, MPS_WIRE_E_PAYLOAD_MISMATCH);

	/* A DATA_FIN needs a length of at least one. */
	opt.dss.flags |= MPS_DSS_FIN;
	check_payload_rule(&opt, 0, MPS_WIRE_E_PAYLOAD_MISMATCH);

	opt.dss.data_len = 1;
	ck_assert(!mps_wire_is_infinite_mapping(&opt));
	opt = dss(MPS_DSS_ACK, false);
	ck_assert(!mps_wire_is_infinite_mapping(&opt));
	opt = mp_fail(0);
	ck_assert(!mps_wire_is_infinite_mapping(&opt));
}
END_TEST

START_TEST(test_mp_capable_with_data_carries_its_data_level_length)
{
	struct mps_option opt = mp_capable(1, 0x81, 2, true, false);

	check_payload_rule(&opt, 11, 0);
	check_payload_rule(&opt, 10, MPS_WIRE_E_PAYLOAD_MISMATCH);
	opt = mp_capable(1, 0xa1, 2, true, true);
	check_payload_rule(&opt, 11, 0);
	check_payload_rule(&opt, 0, MPS_WIRE_E_PAYLOAD_MISMATCH);
}
END_TEST

START_TEST(test_record_split_anywhere_needs_more_then_decodes)
{
	static uint8_t buf[2 * MPS_WIRE_OPT_MAX + 600];
	struct mps_option opt = dss(0x0f, true);
	struct mps_record rec;
	size_t len;
	size_t k;

	opt.dss.data_len = 300;
	len = raw_record(&opt, 300, buf, sizeof(buf));
	for (k = 0; k < len; k++)
		ck_assert_int_eq(decode_record_exact(buf, k, 1, &rec),
				 MPS_WIRE_NEED_MORE);

	/* Complete, then complete with the start of the next record. */
	len += raw_record(&opt, 300, buf + len, sizeof(buf) - len);
	for (k = len / 2; k <= len; k++) {
		ck_assert_int_eq(decode_record_exact(buf, k, 1, &rec), 0);
		ck_assert_uint_eq(rec.len, len / 2);
		ck_assert_uint_eq(rec.payload_len, 300);
		ck_assert_uint_eq(rec.payload_off, MPS_WIRE_HDR_LEN + 28);
		ck_assert_uint_eq(rec.opt_len, 28);
	}
}
END_TEST

START_TEST(test_every_record_prefix_needs_more)
{
	uint8_t buf[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX + 64];
	struct mps_record rec;
	size_t i;
	size_t k;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];
		size_t len =
			build_record(&f->opt, f->version, buf, sizeof(buf));

		for (k = 0; k < len; k++)
			ck_assert_int_eq(
				decode_record_exact(buf, k, f->version, &rec),
				MPS_WIRE_NEED_MORE);
		ck_assert_int_eq(
			decode_record_exact(buf, len, f->version, &rec), 0);
		ck_assert_uint_eq(rec.len, len);
		assert_record_reencodes(&rec, f->version, buf);
	}
}
END_TEST

/* Feed a stream chunk by chunk, as a subflow's reads would deliver it. */
static size_t decode_stream(const uint8_t *stream, size_t len, size_t chunk)
{
	struct mps_record rec;
	size_t start = 0;
	size_t end = 0;
	size_t records = 0;
	int r;

	while (start < len) {
		end = end + chunk < len ? end + chunk : len;
		for (;;) {
			r = decode_record_exact(
				stream + start, end - start, 1, &rec);
			if (r != 0)
				break;
			assert_record_reencodes(&rec, 1, stream + start);
			start += rec.len;
			records++;
		}
		ck_assert_int_eq(r, MPS_WIRE_NEED_MORE);

		/* All bytes in and still incomplete: the stream is bad. */
		ck_assert(start == len || end < len);
	}

	return records;
}

START_TEST(test_stream_of_records_decodes_whatever_the_chunk_size)
{
	static const size_t chunks[] = {1, 2, 3, 7, 64, 4096};
	static uint8_t stream[64 * 1024];
	size_t len = 0;
	size_t records = 0;
	size_t i;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		if (fixtures[i].version != MPS_VERSION_1)
			continue;
		len += build_record(&fixtures[i].opt,
				    1,
				    stream + len,
				    sizeof(stream) - len);
		records++;
	}

	for (i = 0; i < ARRAY_SIZE(chunks); i++)
		ck_assert_uint_eq(decode_stream(stream, len, chunks[i]),
				  records);
}
END_TEST

START_TEST(test_header_prefixes_need_more)
{
	static const uint8_t buf[] = {MPS_WIRE_MARKER, 12, 0x01, 0x02};
	struct mps_record_hdr hdr;
	size_t k;

	for (k = 0; k < sizeof(buf); k++)
		ck_assert_int_eq(mps_wire_decode_header(buf, k, &hdr),
				 MPS_WIRE_NEED_MORE);

	ck_assert_int_eq(mps_wire_decode_header(buf, sizeof(buf), &hdr), 0);
	ck_assert_uint_eq(hdr.opt_len, 12);
	ck_assert_uint_eq(hdr.payload_len, 0x0102);
}
END_TEST

START_TEST(test_record_encoders_refuse_what_framing_cannot_carry)
{
	struct mps_option opt = dss(MPS_DSS_MAP, false);
	uint8_t buf[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	uint8_t untouched[sizeof(buf)];
	size_t cap;

	ck_assert_int_eq(mps_wire_encode_header(buf, 2, 0),
			 MPS_WIRE_E_BAD_OPT_LEN);
	ck_assert_int_eq(mps_wire_encode_header(buf, 41, 0),
			 MPS_WIRE_E_BAD_OPT_LEN);
	ck_assert_int_eq(mps_wire_encode_header(buf, 40, 65536),
			 MPS_WIRE_E_TOO_LONG);
	ck_assert_int_eq(
		mps_wire_encode_record(&opt, 1, 65536, buf, sizeof(buf)),
		MPS_WIRE_E_TOO_LONG);
	opt = mp_tcprst(MPS_RST_MIDDLEBOX + 1, false);
	ck_assert_int_eq(mps_wire_encode_record(&opt, 1, 0, buf, sizeof(buf)),
			 MPS_WIRE_E_BAD_REASON);
	opt = dss(MPS_DSS_MAP, false);

	/* Short of room: refused, and nothing written. */
	memset(untouched, 0xa5, sizeof(untouched));
	for (cap = 0; cap < MPS_WIRE_HDR_LEN + 14; cap++) {
		memset(buf, 0xa5, sizeof(buf));
		ck_assert_int_eq(mps_wire_encode_record(&opt, 1, 11, buf, cap),
				 MPS_WIRE_E_NO_SPACE);
		ck_assert_mem_eq(buf, untouched, sizeof(buf));
	}
	ck_assert_int_eq(mps_wire_encode_record(&opt, 1, 11, buf, cap),
			 MPS_WIRE_HDR_LEN + 14);
}
END_TEST

/*
 * Robustness: flipped bits and random bytes.
 */

/* A fixed-seed generator (xorshift64*), the same on every libc. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

/*
 * Run both decoders on untrusted bytes and check what they claim.
 * Returns whether the bytes start with a record the decoder accepts.
 */
static bool decode_untrusted(const uint8_t *bytes, size_t len, int version)
{
	struct mps_record rec;
	struct mps_option opt;
	int record;
	int r;

	record = decode_record_exact(bytes, len, version, &rec);
	assert_result_is_defined(record);
	if (record == 0) {
		require(rec.len <= len &&
				rec.payload_off + rec.payload_len == rec.len,
			"record of %zu bytes in %zu",
			rec.len,
			len);
		assert_record_reencodes(&rec, version, bytes);
	}

	if (len < MPS_WIRE_HDR_LEN)
		return record == 0;
	r = decode_exact(bytes + MPS_WIRE_HDR_LEN,
			 len - MPS_WIRE_HDR_LEN,
			 version,
			 &opt);
	assert_result_is_defined(r);
	require(r != MPS_WIRE_NEED_MORE, "an option is never incomplete");
	if (r == 0)
		assert_reencodes(&opt,
				 version,
				 bytes + MPS_WIRE_HDR_LEN,
				 len - MPS_WIRE_HDR_LEN);

	return record == 0;
}

START_TEST(test_every_single_bit_flip_of_every_record_is_handled)
{
	uint8_t buf[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX + 64];
	size_t i;
	size_t bit;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];
		size_t len =
			build_record(&f->opt, f->version, buf, sizeof(buf));

		for (bit = 0; bit < len * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			decode_untrusted(buf, len, f->version);
			decode_untrusted(buf, len, !f->version);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
}
END_TEST

/*
 * Random bytes; half of the time shaped as one whole record with random
 * option bytes, so that the option decoders and payload rules are reached.
 */
static size_t random_record(uint8_t *buf, size_t cap)
{
	size_t len = rng_next() % cap;
	size_t opt_len;
	size_t payload;
	size_t i;

	for (i = 0; i < cap; i++)
		buf[i] = (uint8_t)rng_next();
	if (rng_next() & 1)
		return len;

	opt_len = MPS_WIRE_OPT_MIN + rng_next() % (MPS_WIRE_OPT_MAX - 2);
	payload = rng_next() % 4 ? 0 : rng_next() % 8;
	buf[0] = MPS_WIRE_MARKER;
	buf[1] = (uint8_t)opt_len;
	buf[2] = 0;
	buf[3] = (uint8_t)payload;
	buf[4] = MPS_TCPOPT_MPTCP;
	buf[5] = (uint8_t)opt_len;
	buf[6] = (uint8_t)((rng_next() % 10) << 4 | (buf[6] & 0x0f));
	return MPS_WIRE_HDR_LEN + opt_len + payload;
}

/* A valid record with one to three of its bytes overwritten. */
static size_t random_mutant(uint8_t *buf, size_t cap, int *version)
{
	const struct fixture *f = &fixtures[rng_next() % nfixtures];
	size_t len = build_record(&f->opt, f->version, buf, cap);
	int k = 1 + (int)(rng_next() % 3);

	while (k--)
		buf[rng_next() % len] = (uint8_t)rng_next();
	*version = f->version;
	return len;
}

START_TEST(test_random_buffers_never_crash_the_decoder)
{
	uint8_t buf[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX + 64];
	int accepted = 0;
	int version;
	size_t len;
	long n;

	build_fixtures();
	rng_state = UINT64_C(0x6d707473686d6e31);
	for (n = 0; n < 300000; n++) {
		version = (int)(n & 1);
		if (n % 3 == 2)
			len = random_mutant(buf, sizeof(buf), &version);
		else
			len = random_record(
				buf, MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX + 8);

		if (decode_untrusted(buf, len, version))
			accepted++;
	}

	/* Enough of them must get through to test the re-encoding. */
	ck_assert_int_gt(accepted, 1000);
}
END_TEST

/*
 * Text.
 */

START_TEST(test_format_describes_each_option_in_key_value_form)
{
	struct mps_option opt;

	opt = dss(MPS_DSS_ACK | MPS_DSS_MAP, false);
	opt.dss.data_ack = 5;
	opt.dss.dsn = 1000;
	opt.dss.data_len = 100;
	ck_assert_str_eq(describe(&opt),
			 "DSS flags=0x05 ack=5 dsn=1000 "
			 "ssn=1 len=100 fin=0");
	opt = dss(0x1f, true);
	ck_assert_str_eq(describe(&opt),
			 "DSS flags=0x1f ack=72623859790382856 "
			 "dsn=1234605616436508552 ssn=1 len=12 csum=0x6e23 "
			 "fin=1");
	opt = mp_capable(1, 0xa1, 2, true, true);
	ck_assert_str_eq(describe(&opt),
			 "MP_CAPABLE v=1 flags=0xa1 "
			 "sndkey=0x0102030405060708 "
			 "rcvkey=0x1122334455667788 len=11 csum=0x6e23");
	opt = mp_join(MPS_JOIN_SYN, true);
	ck_assert_str_eq(describe(&opt),
			 "MP_JOIN form=syn backup=1 id=2 "
			 "token=0x66840dda nonce=0xaabbccdd");
	opt = mp_join(MPS_JOIN_SYNACK, false);
	ck_assert_str_eq(describe(&opt),
			 "MP_JOIN form=synack backup=0 id=2 "
			 "hmac=690bfc5220830d74 nonce=0x11223344");
	opt = add_addr(1, AF_INET, true, false);
	ck_assert_str_eq(describe(&opt),
			 "ADD_ADDR id=1 addr=10.0.2.1 port=10100 echo=0 "
			 "hmac=3766193b87b7afb1");
	opt = add_addr(1, AF_INET6, false, true);
	ck_assert_str_eq(describe(&opt),
			 "ADD_ADDR id=1 addr=2001:db8::1 echo=1");
	opt = remove_addr(3);
	ck_assert_str_eq(describe(&opt), "REMOVE_ADDR ids=1,2,3");
	opt = mp_prio(true, true);
	ck_assert_str_eq(describe(&opt), "MP_PRIO backup=1 id=7");
	opt = mp_fail(42);
	ck_assert_str_eq(describe(&opt), "MP_FAIL dsn=42");
	opt = mp_fastclose(KEY_B);
	ck_assert_str_eq(describe(&opt),
			 "MP_FASTCLOSE rcvkey=0x1122334455667788");
	opt = mp_tcprst(MPS_RST_MPTCP_ERROR, true);
	ck_assert_str_eq(describe(&opt),
			 "MP_TCPRST reason=mptcp-error transient=1");
	opt = blank((enum mps_subtype)12);
	ck_assert_str_eq(describe(&opt), "UNKNOWN subtype=12");
}
END_TEST

START_TEST(test_format_survives_fields_no_decoder_produces)
{
	struct mps_option opt;

	opt = mp_join((enum mps_join_form)5, false);
	ck_assert_str_eq(describe(&opt), "MP_JOIN form=5");
	opt = add_addr(1, AF_INET, false, true);
	opt.add_addr.addr.family = AF_UNIX;
	ck_assert_str_eq(describe(&opt), "ADD_ADDR id=1 addr=? echo=1");
	opt = remove_addr(2);
	opt.remove_addr.count = 255;
	ck_assert_int_lt(mps_wire_format_option(&opt, NULL, 0), 256);
	opt = mp_tcprst(200, false);
	ck_assert_str_eq(describe(&opt),
			 "MP_TCPRST reason=unknown transient=0");
}
END_TEST

START_TEST(test_format_never_overflows_a_small_buffer)
{
	char full[256];
	char buf[256 + 8];
	size_t i;
	size_t cap;
	size_t j;

	build_fixtures();
	for (i = 0; i < nfixtures; i++) {
		const struct mps_option *opt = &fixtures[i].opt;
		int n = mps_wire_format_option(opt, full, sizeof(full));

		ck_assert_int_gt(n, 0);
		ck_assert_uint_lt((size_t)n, sizeof(full));
		ck_assert_int_eq(mps_wire_format_option(opt, NULL, 0), n);
		for (cap = 1; cap <= (size_t)n + 1; cap++) {
			memset(buf, 0x5a, sizeof(buf));
			ck_assert_int_eq(mps_wire_format_option(opt, buf, cap),
					 n);
			ck_assert_uint_eq(strlen(buf), cap - 1);
			ck_assert_mem_eq(buf, full, cap - 1);
			for (j = cap; j < cap + 8; j++)
				ck_assert_int_eq(buf[j], 0x5a);
		}
	}
}
END_TEST

START_TEST(test_every_error_has_a_message_of_its_own)
{
	const char *unknown = mps_wire_strerror(LOWEST_ERR - 1);
	int a;
	int b;

	for (a = LOWEST_ERR; a <= MPS_WIRE_NEED_MORE; a++) {
		ck_assert_str_ne(mps_wire_strerror(a), unknown);
		for (b = LOWEST_ERR; b < a; b++)
			ck_assert_str_ne(mps_wire_strerror(a),
					 mps_wire_strerror(b));
	}
	ck_assert_str_eq(mps_wire_strerror(2), unknown);
	ck_assert_str_eq(mps_wire_strerror(-1000), unknown);
}
END_TEST

START_TEST(test_subtypes_and_reset_reasons_have_names)
{
	ck_assert_str_eq(mps_wire_subtype_name(MPS_MP_CAPABLE), "MP_CAPABLE");
	ck_assert_str_eq(mps_wire_subtype_name(MPS_DSS), "DSS");
	ck_assert_str_eq(mps_wire_subtype_name(MPS_MP_TCPRST), "MP_TCPRST");
	ck_assert_str_eq(mps_wire_subtype_name(9), "UNKNOWN");
	ck_assert_str_eq(mps_wire_subtype_name(14), "UNKNOWN");
	ck_assert_str_eq(mps_wire_subtype_name(-1), "UNKNOWN");
	ck_assert_str_eq(mps_wire_subtype_name(MPS_MP_EXPERIMENTAL),
			 "EXPERIMENTAL");

	ck_assert_str_eq(mps_wire_reason_name(MPS_RST_UNSPECIFIED),
			 "unspecified");
	ck_assert_str_eq(mps_wire_reason_name(MPS_RST_MPTCP_ERROR),
			 "mptcp-error");
	ck_assert_str_eq(mps_wire_reason_name(MPS_RST_MIDDLEBOX), "middlebox");
	ck_assert_str_eq(mps_wire_reason_name(7), "unknown");
	ck_assert_str_eq(mps_wire_reason_name(-1), "unknown");
}
END_TEST

/*
 * The private option, subtype 0xF: the data window.
 */

static struct mps_option data_window(uint32_t window)
{
	struct mps_option opt = blank(MPS_MP_EXPERIMENTAL);

	opt.mp_experimental.type = MPS_EXP_DATA_WINDOW;
	opt.mp_experimental.data_window = window;
	return opt;
}

START_TEST(test_data_window_layout_is_kind_length_subtype_type_window)
{
	static const uint8_t want[] = {30, 8, 0xf0, 1, 0x12, 0x34, 0x56, 0x78};
	struct mps_option opt = data_window(0x12345678);
	uint8_t buf[MPS_WIRE_OPT_MAX];
	int version;

	for (version = 0; version <= 1; version++) {
		ck_assert_int_eq(
			mps_wire_encode_option(&opt, version, buf, sizeof(buf)),
			8);
		ck_assert_mem_eq(buf, want, sizeof(want));
		ck_assert_int_eq(
			decode_exact(want, sizeof(want), version, &opt), 0);
		ck_assert_int_eq(opt.subtype, MPS_MP_EXPERIMENTAL);
		ck_assert_uint_eq(opt.mp_experimental.type,
				  MPS_EXP_DATA_WINDOW);
		ck_assert_uint_eq(opt.mp_experimental.data_window, 0x12345678);
	}
}
END_TEST

START_TEST(test_data_window_of_another_shape_is_rejected)
{
	uint8_t buf[8] = {30, 8, 0xf0, 1, 0, 0, 1, 0};
	uint8_t shortened[4] = {30, 4, 0xf0, 1};
	struct mps_option opt;
	uint8_t out[MPS_WIRE_OPT_MAX];

	ck_assert_int_eq(decode_exact(shortened, sizeof(shortened), 1, &opt),
			 MPS_WIRE_E_BAD_LENGTH);
	buf[2] = 0xf1;
	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
			 MPS_WIRE_E_RESERVED_BITS);
	buf[2] = 0xf0;
	buf[3] = 2;
	ck_assert_int_eq(decode_exact(buf, sizeof(buf), 1, &opt),
			 MPS_WIRE_E_BAD_FORM);

	opt = data_window(1);
	opt.mp_experimental.type = 0;
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, out, sizeof(out)),
			 MPS_WIRE_E_BAD_FORM);
	opt = data_window(1);
	ck_assert_int_eq(mps_wire_encode_option(&opt, 1, out, 7),
			 MPS_WIRE_E_NO_SPACE);
}
END_TEST

START_TEST(test_data_window_record_carries_no_payload)
{
	struct mps_option opt = data_window(65535);
	uint8_t buf[64];
	struct mps_record rec;
	char text[128];
	int n;

	n = mps_wire_encode_record(&opt, 1, 0, buf, sizeof(buf));
	ck_assert_int_eq(n, MPS_WIRE_HDR_LEN + 8);
	ck_assert_int_eq(decode_record_exact(buf, (size_t)n, 1, &rec), 0);
	ck_assert_uint_eq(rec.opt.mp_experimental.data_window, 65535);
	ck_assert_int_eq(mps_wire_encode_record(&opt, 1, 1, buf, sizeof(buf)),
			 MPS_WIRE_E_UNEXPECTED_PAYLOAD);

	mps_wire_format_option(&opt, text, sizeof(text));
	ck_assert_str_eq(text, "EXPERIMENTAL type=1 data_window=65535");
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc;

	tc = tcase_create("options");
	tcase_add_test(tc, test_every_option_form_round_trips);
	tcase_add_test(tc,
		       test_dss_with_every_valid_flag_combination_round_trips);
	tcase_add_test(tc, test_dss_with_contradictory_flags_is_rejected);
	tcase_add_test(tc, test_mp_capable_layouts_match_the_rfc);
	tcase_add_test(tc, test_mp_join_layouts_match_the_rfc);
	tcase_add_test(tc, test_dss_layouts_match_the_rfc);
	tcase_add_test(tc, test_add_addr_layouts_match_the_rfc);
	tcase_add_test(tc, test_other_option_layouts_match_the_rfc);
	suite_add_tcase(s, tc);

	tc = tcase_create("rejections");
	tcase_add_test(tc, test_every_prefix_of_every_option_is_truncated);
	tcase_add_test(tc, test_bytes_beyond_the_option_length_are_a_mismatch);
	tcase_add_test(tc, test_option_of_another_kind_is_rejected);
	tcase_add_test(tc, test_option_length_byte_outside_3_to_40_is_rejected);
	tcase_add_loop_test(tc,
			    test_lengths_that_fit_no_form_are_rejected,
			    0,
			    (int)ARRAY_SIZE(length_cases));
	tcase_add_test(tc, test_unknown_subtypes_are_rejected);
	tcase_add_test(
		tc, test_data_window_layout_is_kind_length_subtype_type_window);
	tcase_add_test(tc, test_data_window_of_another_shape_is_rejected);
	tcase_add_test(tc, test_data_window_record_carries_no_payload);
	tcase_add_test(tc, test_mp_tcprst_does_not_exist_in_version_0);
	tcase_add_test(tc, test_mp_capable_versions_above_1_are_rejected);
	tcase_add_test(tc, test_connection_versions_but_0_and_1_are_rejected);
	tcase_add_test(tc, test_set_reserved_bits_are_rejected);
	tcase_add_test(tc,
		       test_mp_capable_flags_on_reserved_bits_are_not_encoded);
	tcase_add_test(tc, test_mp_capable_with_extensibility_bit_is_rejected);
	tcase_add_test(tc, test_mp_capable_without_hmac_algorithm_is_rejected);
	tcase_add_test(tc, test_mp_tcprst_reasons_above_6_are_rejected);
	tcase_add_test(tc, test_add_addr_with_unknown_family_is_rejected);
	tcase_add_test(tc, test_encoders_refuse_fields_that_match_no_form);
	tcase_add_test(tc,
		       test_encoders_refuse_values_too_large_for_their_fields);
	tcase_add_test(tc,
		       test_encoders_need_room_and_leave_the_buffer_untouched);
	suite_add_tcase(s, tc);

	tc = tcase_create("records");
	tcase_add_test(tc, test_record_with_bad_marker_is_rejected);
	tcase_add_test(tc,
		       test_record_option_length_outside_3_to_40_is_rejected);
	tcase_add_test(tc, test_record_option_of_another_kind_is_rejected);
	tcase_add_test(tc,
		       test_record_option_length_must_equal_the_header_length);
	tcase_add_test(tc,
		       test_payload_on_an_option_that_maps_no_data_is_rejected);
	tcase_add_test(tc,
		       test_payload_length_must_equal_the_data_level_length);
	tcase_add_test(tc, test_data_fin_counts_one_in_the_data_level_length);
	tcase_add_test(tc, test_infinite_mapping_carries_no_payload);
	tcase_add_test(tc,
		       test_mp_capable_with_data_carries_its_data_level_length);
	tcase_add_test(tc, test_record_split_anywhere_needs_more_then_decodes);
	tcase_add_test(tc, test_every_record_prefix_needs_more);
	tcase_add_test(tc,
		       test_stream_of_records_decodes_whatever_the_chunk_size);
	tcase_add_test(tc, test_header_prefixes_need_more);
	tcase_add_test(tc,
		       test_record_encoders_refuse_what_framing_cannot_carry);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc,
		       test_every_single_bit_flip_of_every_record_is_handled);
	tcase_add_test(tc, test_random_buffers_never_crash_the_decoder);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_test(tc, test_format_describes_each_option_in_key_value_form);
	tcase_add_test(tc, test_format_survives_fields_no_decoder_produces);
	tcase_add_test(tc, test_format_never_overflows_a_small_buffer);
	tcase_add_test(tc, test_every_error_has_a_message_of_its_own);
	tcase_add_test(tc, test_subtypes_and_reset_reasons_have_names);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(wire_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
