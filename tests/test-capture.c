/*
 * test-capture.c: records turned into synthetic TCP segments (capseg.c).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capseg.h"

#define MAX_PKTS 512

/* What the emit function saw. */
struct pkt {
	uint8_t buf[MPS_CAP_HDR_MAX + 256];
	size_t len;
};

static struct pkt pkts[MAX_PKTS];
static int npkts;

static void collect(void *ctx,
		    const uint8_t *hdr,
		    size_t hlen,
		    const uint8_t *payload,
		    size_t plen)
{
	struct pkt *p;

	(void)ctx;
	ck_assert_int_lt(npkts, MAX_PKTS);
	p = &pkts[npkts++];
	ck_assert_uint_le(hlen + plen, sizeof(p->buf));
	memcpy(p->buf, hdr, hlen);
	if (plen)
		memcpy(p->buf + hlen, payload, plen);
	p->len = hlen + plen;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Offsets into an IPv4 packet without IP options. */
static const uint8_t *tcp_of(const struct pkt *p)
{
	return p->buf + 20;
}

static uint32_t seq_of(const struct pkt *p)
{
	return get32(tcp_of(p) + 4);
}

static uint32_t ack_of(const struct pkt *p)
{
	return get32(tcp_of(p) + 8);
}

static uint8_t flags_of(const struct pkt *p)
{
	return tcp_of(p)[13];
}

static size_t tcp_hlen(const struct pkt *p)
{
	return (size_t)(tcp_of(p)[12] >> 4) * 4;
}

static bool has_opt(const struct pkt *p)
{
	return tcp_hlen(p) > 20 && tcp_of(p)[20] == MPS_TCPOPT_MPTCP;
}

/* The MPTCP option of p (kind 30 right after the fixed header). */
static const uint8_t *mptcp_opt(const struct pkt *p)
{
	static const uint8_t none[MPS_WIRE_OPT_MAX];

	ck_assert_msg(has_opt(p), "no MPTCP option");
	return has_opt(p) ? tcp_of(p) + 20 : none;
}

static size_t payload_len(const struct pkt *p)
{
	return p->len - 20 - tcp_hlen(p);
}

/* Both checksums of an IPv4 packet verify: the sums come to 0xffff. */
static void assert_checksums(const struct pkt *p)
{
	uint8_t pseudo[12];
	size_t tcp_len = p->len - 20;
	uint32_t sum;

	ck_assert_uint_eq(mps_cap_fold(mps_cap_sum(0, p->buf, 20)), 0);
	memcpy(pseudo, p->buf + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	pseudo[10] = (uint8_t)(tcp_len >> 8);
	pseudo[11] = (uint8_t)tcp_len;
	sum = mps_cap_sum(0, pseudo, sizeof(pseudo));
	sum = mps_cap_sum(sum, p->buf + 20, tcp_len);
	ck_assert_uint_eq(mps_cap_fold(sum), 0);
}

static struct mps_cap_end client = {
	.family = AF_INET, .addr = {10, 0, 1, 1}, .port = 40000};
static struct mps_cap_end server = {
	.family = AF_INET, .addr = {10, 0, 9, 1}, .port = 8080};

static void sf_client(struct mps_cap_sf *sf, int version)
{
	npkts = 0;
	mps_cap_sf_init(
		sf, &client, &server, true, false, version, 7, collect, NULL);
}

/* A record of opt and n bytes of payload ('a', 'b', ...) into buf. */
static size_t
record(const struct mps_option *opt, int version, size_t n, uint8_t *buf)
{
	int len = mps_wire_encode_record(opt, version, n, buf, 64);
	size_t i;

	ck_assert_int_gt(len, 0);
	for (i = 0; i < n; i++)
		buf[len + i] = (uint8_t)('a' + i % 26);
	return (size_t)len + n;
}

static size_t
mpc(uint8_t *buf, int nkeys, uint64_t k1, uint64_t k2, size_t data)
{
	struct mps_option o = {.subtype = MPS_MP_CAPABLE};

	o.mp_capable.version = MPS_VERSION_1;
	o.mp_capable.flags = MPS_MPC_HMAC;
	o.mp_capable.nkeys = (uint8_t)nkeys;
	o.mp_capable.sender_key = k1;
	o.mp_capable.receiver_key = k2;
	o.mp_capable.has_data_len = data > 0;
	o.mp_capable.data_len = (uint16_t)data;
	return record(&o, MPS_VERSION_1, data, buf);
}

static size_t dss(uint8_t *buf, uint64_t dsn, uint32_t ssn, size_t n)
{
	struct mps_option o = {.subtype = MPS_DSS};

	o.dss.flags = MPS_DSS_MAP | MPS_DSS_DSN64 | MPS_DSS_ACK | MPS_DSS_ACK64;
	o.dss.data_ack = 1;
	o.dss.dsn = dsn;
	o.dss.ssn = ssn;
	o.dss.data_len = (uint16_t)n;
	return record(&o, MPS_VERSION_1, n, buf);
}

/* Feed buf in pieces of step bytes. */
static void feed(struct mps_cap_sf *sf,
		 enum mps_cap_dir dir,
		 const uint8_t *buf,
		 size_t len,
		 size_t step)
{
	while (len > 0) {
		size_t n = len < step ? len : step;

		mps_cap_sf_bytes(sf, dir, buf, n);
		buf += n;
		len -= n;
	}
}

/* A v1 client subflow past the SYN and SYN/ACK (keys 0x1111, 0x2222),
 * their records fed in pieces of step bytes. */
static void sf_client_keyed(struct mps_cap_sf *sf, size_t step)
{
	uint8_t buf[64];

	sf_client(sf, MPS_VERSION_1);
	feed(sf, MPS_CAP_OUT, buf, mpc(buf, 1, 0x1111, 0, 0), step);
	feed(sf, MPS_CAP_IN, buf, mpc(buf, 1, 0x2222, 0, 0), step);
}

/* The v1 handshake of a client: SYN, SYN/ACK, third ACK. */
static void handshake_v1(struct mps_cap_sf *sf, size_t step)
{
	uint8_t buf[64];

	sf_client_keyed(sf, step);
	feed(sf, MPS_CAP_OUT, buf, mpc(buf, 2, 0x1111, 0x2222, 0), step);
}

START_TEST(test_sum_matches_a_published_ipv4_header)
{
	/* a header whose checksum field (0xb861) is published widely */
	uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40,
			 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
			 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	/* RFC 1071 section 3's example sums to 0xddf2 */
	uint8_t rfc[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	ck_assert_uint_eq(mps_cap_fold(mps_cap_sum(0, h, sizeof(h))), 0xb861);
	ck_assert_uint_eq(mps_cap_sum(0, rfc, sizeof(rfc)), 0xddf2);
}
END_TEST

START_TEST(test_build_pads_the_option_and_checksums)
{
	uint8_t opt[22] = {30, 22, 0x01, 0x81};
	uint8_t data[5] = "hello";
	struct mps_cap_seg seg = {
		.src = &client,
		.dst = &server,
		.seq = 1000,
		.ack = 2000,
		.flags = MPS_CAP_ACK | MPS_CAP_PSH,
		.opt = opt,
		.opt_len = sizeof(opt),
		.payload = data,
		.payload_len = sizeof(data),
	};
	struct pkt p;
	int n = mps_cap_build(&seg, p.buf);

	ck_assert_int_eq(n, 20 + 20 + 24);
	memcpy(p.buf + n, data, sizeof(data));
	p.len = (size_t)n + sizeof(data);
	ck_assert_uint_eq(tcp_hlen(&p), 44);
	ck_assert_mem_eq(tcp_of(&p) + 20, opt, sizeof(opt));
	ck_assert_uint_eq(tcp_of(&p)[42], 1); /* NOP padding */
	ck_assert_uint_eq(tcp_of(&p)[43], 1);
	ck_assert_uint_eq(seq_of(&p), 1000);
	ck_assert_uint_eq(ack_of(&p), 2000);
	ck_assert_uint_eq(p.buf[2] << 8 | p.buf[3], p.len);
	assert_checksums(&p);
}
END_TEST

START_TEST(test_build_refuses_an_option_too_long)
{
	uint8_t opt[44] = {30, 44};
	struct mps_cap_seg seg = {
		.src = &client, .dst = &server, .opt = opt, .opt_len = 44};
	uint8_t hdr[MPS_CAP_HDR_MAX + 4];

	ck_assert_int_eq(mps_cap_build(&seg, hdr), -EINVAL);
}
END_TEST

START_TEST(test_build_ipv6_has_the_payload_length)
{
	struct mps_cap_end a = {.family = AF_INET6, .addr = {0xfd}, .port = 1};
	struct mps_cap_end b = {.family = AF_INET6, .addr = {0xfe}, .port = 2};
	struct mps_cap_seg seg = {.src = &a, .dst = &b, .payload_len = 0};
	uint8_t hdr[MPS_CAP_HDR_MAX];

	ck_assert_int_eq(mps_cap_build(&seg, hdr), 60);
	ck_assert_uint_eq(hdr[0], 0x60);
	ck_assert_uint_eq(hdr[4] << 8 | hdr[5], 20);
	ck_assert_uint_eq(hdr[6], 6);
}
END_TEST

START_TEST(test_v4_mapped_address_becomes_ipv4)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
				  .sin6_port = htons(443)};
	struct mps_cap_end end;

	inet_pton(AF_INET6, "::ffff:10.1.2.3", &sa.sin6_addr);
	ck_assert_int_eq(mps_cap_end_from(&end, (struct sockaddr *)&sa), 0);
	ck_assert_int_eq(end.family, AF_INET);
	ck_assert_uint_eq(end.port, 443);
	ck_assert_uint_eq(get32(end.addr), 0x0a010203);
	inet_pton(AF_INET6, "fd00::1", &sa.sin6_addr);
	ck_assert_int_eq(mps_cap_end_from(&end, (struct sockaddr *)&sa), 0);
	ck_assert_int_eq(end.family, AF_INET6);
}
END_TEST

START_TEST(test_mp_capable_becomes_syn_synack_ack)
{
	struct mps_cap_sf sf;

	handshake_v1(&sf, 1000);
	ck_assert_int_eq(npkts, 3);
	ck_assert_uint_eq(flags_of(&pkts[0]), MPS_CAP_SYN);
	ck_assert_uint_eq(mptcp_opt(&pkts[0])[1], 4); /* v1 SYN: no key */
	ck_assert_uint_eq(flags_of(&pkts[1]), MPS_CAP_SYN | MPS_CAP_ACK);
	ck_assert_uint_eq(mptcp_opt(&pkts[1])[1], 12);
	ck_assert_uint_eq(ack_of(&pkts[1]), seq_of(&pkts[0]) + 1);
	ck_assert_uint_eq(flags_of(&pkts[2]), MPS_CAP_ACK);
	ck_assert_uint_eq(mptcp_opt(&pkts[2])[1], 20);
	ck_assert_uint_eq(seq_of(&pkts[2]), seq_of(&pkts[0]) + 1);
	ck_assert_uint_eq(ack_of(&pkts[2]), seq_of(&pkts[1]) + 1);
	/* the sender's key, then the receiver's */
	ck_assert_uint_eq(get32(mptcp_opt(&pkts[2]) + 8), 0x1111);
	ck_assert_uint_eq(get32(mptcp_opt(&pkts[2]) + 16), 0x2222);
	assert_checksums(&pkts[0]);
	assert_checksums(&pkts[2]);
}
END_TEST

START_TEST(test_first_data_keeps_its_mp_capable)
{
	struct mps_cap_sf sf;
	uint8_t buf[128];
	size_t n;

	sf_client_keyed(&sf, sizeof(buf));
	n = mpc(buf, 2, 0x1111, 0x2222, 10);
	feed(&sf, MPS_CAP_OUT, buf, n, n);
	ck_assert_int_eq(npkts, 4);
	ck_assert_uint_eq(mptcp_opt(&pkts[2])[1], 20);
	ck_assert_uint_eq(payload_len(&pkts[2]), 0);
	ck_assert_uint_eq(mptcp_opt(&pkts[3])[1], 22);
	ck_assert_uint_eq(payload_len(&pkts[3]), 10);
	ck_assert_uint_eq(seq_of(&pkts[3]), seq_of(&pkts[0]) + 1);
	assert_checksums(&pkts[3]);
}
END_TEST

START_TEST(test_responder_data_first_brings_the_third_ack)
{
	struct mps_cap_sf sf;
	uint8_t buf[128];
	size_t n;

	sf_client_keyed(&sf, sizeof(buf));
	n = dss(buf, 77, 1, 3);
	feed(&sf, MPS_CAP_IN, buf, n, n);
	n = mpc(buf, 2, 0x1111, 0x2222, 0);
	feed(&sf, MPS_CAP_OUT, buf, n, n);
	ck_assert_int_eq(npkts, 4);
	ck_assert_uint_eq(mptcp_opt(&pkts[2])[1], 20);
	ck_assert_uint_eq(get32(mptcp_opt(&pkts[2]) + 16), 0x2222);
	ck_assert_uint_eq(payload_len(&pkts[3]), 3);
}
END_TEST

START_TEST(test_split_records_keep_seq_equal_to_the_mapping)
{
	struct mps_cap_sf sf;
	uint8_t buf[4096];
	size_t len = 0, step;
	uint32_t ssn = 1;
	int i;

	for (step = 1; step <= 50; step += 7) {
		handshake_v1(&sf, step);
		len = 0;
		ssn = 1;
		for (i = 0; i < 5; i++) {
			len += dss(buf + len, 100 + ssn, ssn, 20 + i);
			ssn += 20 + i;
		}
		feed(&sf, MPS_CAP_OUT, buf, len, step);
		for (i = 3; i < npkts; i++) {
			const uint8_t *o = mptcp_opt(&pkts[i]);

			uint32_t rel = seq_of(&pkts[i]) - seq_of(&pkts[0]);
			/* DSS: flags, 8-byte ACK, 8-byte DSN, ssn, length;
			 * a piece of a record lies inside its mapping */
			uint32_t map = get32(o + 20);
			uint32_t end = map + (uint32_t)(o[24] << 8 | o[25]);

			ck_assert_uint_ge(rel, map);
			ck_assert_uint_le(rel + payload_len(&pkts[i]), end);
			assert_checksums(&pkts[i]);
		}
		ck_assert_uint_eq(seq_of(&pkts[npkts - 1]) +
					  payload_len(&pkts[npkts - 1]) -
					  seq_of(&pkts[0]),
				  ssn);
	}
}
END_TEST

START_TEST(test_join_forms_map_onto_the_handshake)
{
	struct mps_cap_sf sf;
	struct mps_option o = {.subtype = MPS_MP_JOIN};
	uint8_t buf[64];
	size_t n;

	sf_client(&sf, MPS_VERSION_1);
	o.mp_join.form = MPS_JOIN_SYN;
	o.mp_join.token = 0xabcdef01;
	o.mp_join.nonce = 5;
	n = record(&o, MPS_VERSION_1, 0, buf);
	feed(&sf, MPS_CAP_OUT, buf, n, 3);
	o.mp_join.form = MPS_JOIN_SYNACK;
	n = record(&o, MPS_VERSION_1, 0, buf);
	feed(&sf, MPS_CAP_IN, buf, n, 3);
	o.mp_join.form = MPS_JOIN_ACK;
	n = record(&o, MPS_VERSION_1, 0, buf);
	feed(&sf, MPS_CAP_OUT, buf, n, 3);
	ck_assert_int_eq(npkts, 3);
	ck_assert_uint_eq(flags_of(&pkts[0]), MPS_CAP_SYN);
	ck_assert_uint_eq(mptcp_opt(&pkts[0])[1], 12);
	ck_assert_uint_eq(get32(mptcp_opt(&pkts[0]) + 4), 0xabcdef01);
	ck_assert_uint_eq(flags_of(&pkts[1]), MPS_CAP_SYN | MPS_CAP_ACK);
	ck_assert_uint_eq(mptcp_opt(&pkts[1])[1], 16);
	ck_assert_uint_eq(mptcp_opt(&pkts[2])[1], 24);
}
END_TEST

START_TEST(test_data_before_the_synack_waits_for_it)
{
	struct mps_cap_sf sf;
	uint8_t buf[256];
	size_t n;

	/* in-band, the client's first data may precede the server's key */
	sf_client(&sf, MPS_VERSION_1);
	n = mpc(buf, 1, 0x1111, 0, 0);
	n += dss(buf + n, 500, 1, 30);
	feed(&sf, MPS_CAP_OUT, buf, n, 7);
	ck_assert_int_eq(npkts, 1);
	n = mpc(buf, 1, 0x2222, 0, 0);
	feed(&sf, MPS_CAP_IN, buf, n, n);
	/* SYN, SYN/ACK, the third ACK with both keys, then the data */
	ck_assert_int_eq(npkts, 4);
	ck_assert_uint_eq(mptcp_opt(&pkts[2])[1], 20);
	ck_assert_uint_eq(get32(mptcp_opt(&pkts[2]) + 8), 0x1111);
	ck_assert_uint_eq(seq_of(&pkts[3]), seq_of(&pkts[0]) + 1);
	ck_assert_uint_eq(ack_of(&pkts[3]), seq_of(&pkts[1]) + 1);
	/* the real third ACK adds nothing */
	n = mpc(buf, 2, 0x1111, 0x2222, 0);
	feed(&sf, MPS_CAP_OUT, buf, n, n);
	ck_assert_int_eq(npkts, 4);
	ck_assert_uint_eq(payload_len(&pkts[3]), 30);
	mps_cap_sf_free(&sf);
}
END_TEST

START_TEST(test_private_window_option_is_left_out)
{
	struct mps_cap_sf sf;
	struct mps_option o = {.subtype = MPS_MP_EXPERIMENTAL};
	uint8_t buf[64];
	size_t n;

	handshake_v1(&sf, 64);
	o.mp_experimental.type = MPS_EXP_DATA_WINDOW;
	o.mp_experimental.data_window = 1 << 20;
	n = record(&o, MPS_VERSION_1, 0, buf);
	feed(&sf, MPS_CAP_IN, buf, n, n);
	ck_assert_int_eq(npkts, 3);
}
END_TEST

START_TEST(test_garbage_becomes_plain_data)
{
	struct mps_cap_sf sf;
	const uint8_t text[] = "GET / HTTP/1.0\r\n\r\n";

	sf_client(&sf, MPS_VERSION_1);
	feed(&sf, MPS_CAP_OUT, text, sizeof(text) - 1, 2);
	/* SYN, SYN/ACK, ACK without options, then every byte once */
	ck_assert(!has_opt(&pkts[0]));
	ck_assert_uint_eq(flags_of(&pkts[1]), MPS_CAP_SYN | MPS_CAP_ACK);
	ck_assert_uint_eq(seq_of(&pkts[npkts - 1]) +
				  payload_len(&pkts[npkts - 1]) -
				  seq_of(&pkts[0]) - 1,
			  sizeof(text) - 1);
}
END_TEST

START_TEST(test_end_sends_fin_once)
{
	struct mps_cap_sf sf;

	handshake_v1(&sf, 64);
	mps_cap_sf_end(&sf, MPS_CAP_OUT, false);
	mps_cap_sf_end(&sf, MPS_CAP_OUT, true);
	ck_assert_int_eq(npkts, 4);
	ck_assert_uint_eq(flags_of(&pkts[3]), MPS_CAP_FIN | MPS_CAP_ACK);
}
END_TEST

static Suite *capture_suite(void)
{
	Suite *s = suite_create("capture");
	TCase *tc = tcase_create("segments");

	tcase_add_test(tc, test_sum_matches_a_published_ipv4_header);
	tcase_add_test(tc, test_build_pads_the_option_and_checksums);
	tcase_add_test(tc, test_build_refuses_an_option_too_long);
	tcase_add_test(tc, test_build_ipv6_has_the_payload_length);
	tcase_add_test(tc, test_v4_mapped_address_becomes_ipv4);
	tcase_add_test(tc, test_mp_capable_becomes_syn_synack_ack);
	tcase_add_test(tc, test_first_data_keeps_its_mp_capable);
	tcase_add_test(tc, test_responder_data_first_brings_the_third_ack);
	tcase_add_test(tc, test_split_records_keep_seq_equal_to_the_mapping);
	tcase_add_test(tc, test_join_forms_map_onto_the_handshake);
	tcase_add_test(tc, test_data_before_the_synack_waits_for_it);
	tcase_add_test(tc, test_private_window_option_is_left_out);
	tcase_add_test(tc, test_garbage_becomes_plain_data);
	tcase_add_test(tc, test_end_sends_fin_once);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(capture_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
