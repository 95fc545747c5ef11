/*
 * test-crypto.c: known-answer and property tests of the crypto module.
 *
 * The vectors are those of /work/shared/PROTOCOL-NOTES.md.
 */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "crypto.h"

#define KEY_A UINT64_C(0x0102030405060708)
#define KEY_B UINT64_C(0x1122334455667788)
#define NONCE_A UINT32_C(0xaabbccdd)
#define NONCE_B UINT32_C(0x11223344)

/* Decode hex into out; returns the number of bytes. */
static size_t hex_decode(const char *hex, uint8_t *out, size_t out_size)
{
	size_t len = strlen(hex) / 2;
	unsigned int byte;

	ck_assert_uint_le(len, out_size);
	for (size_t i = 0; i < len; i++) {
		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
		out[i] = (uint8_t)byte;
	}
	return len;
}

/* Assert that got holds exactly the bytes that hex spells. */
static void assert_bytes_hex(const uint8_t *got, size_t len, const char *hex)
{
	uint8_t want[64];

	ck_assert_uint_eq(hex_decode(hex, want, sizeof(want)), len);
	ck_assert_mem_eq(got, want, len);
}

/* HMAC-SHA256 vectors of the Linux kernel's MPTCP crypto test. */
static const struct {
	const char *key;
	const char *msg;
	const char *hmac;
} kernel_vectors[] = {
    {"0b0b0b0b0b0b0b0b",
     "48692054",
     "8385e24fb4235ac37556b6b886db106284a1da671699f46db1f235ec622dcafa"},
    {"aaaaaaaaaaaaaaaa",
     "dddddddd",
     "2c5e219164ff1dca1c4a92318d847bb6b9d44492984e1eb71aff9022f71046e9"},
    {"0102030405060708",
     "cdcdcdcd",
     "e73b9ba9969969cefb04aa0d6df18ec2fcc075b6f23b4d8c4da736a5dbbc6e7d"},
};

START_TEST(hmac_sha256_matches_the_kernel_vectors)
{
	uint8_t out[MPS_SHA256_LEN];

	ck_assert_int_eq(mps_crypto_hmac(MPS_V1,
					 kernel_vectors[_i].key,
					 16,
					 kernel_vectors[_i].msg,
					 8,
					 out),
			 0);
	assert_bytes_hex(out, sizeof(out), kernel_vectors[_i].hmac);
}
END_TEST

/* An empty key must not fall back to the prepared context's own key. */
START_TEST(hmac_with_an_empty_key_is_the_standard_one)
{
	uint8_t out[MPS_SHA256_LEN];

	ck_assert_int_eq(mps_crypto_hmac(MPS_V1, NULL, 0, NULL, 0, out), 0);
	assert_bytes_hex(out,
			 MPS_SHA256_LEN,
			 "b613679a0814d9ec772f95d778c35fc5"
			 "ff1697c493715653c6c712144292c5ad");
	ck_assert_int_eq(mps_crypto_hmac(MPS_V0, "", 0, "", 0, out), 0);
	assert_bytes_hex(
	    out, MPS_SHA1_LEN, "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}
END_TEST

static const struct {
	uint64_t key;
	uint32_t v1_token;
	uint64_t v1_idsn;
	uint32_t v0_token;
	uint64_t v0_idsn;
} key_vectors[] = {
    {UINT64_C(0x0102030405060708),
     0x66840dda,
     UINT64_C(0xf5a101d3d29d6f72),
     0xdd5783bc,
     UINT64_C(0x3a95ed6e4ebb4ad5)},
    {UINT64_C(0x1122334455667788),
     0x1dce6604,
     UINT64_C(0x62815714b76ae9a5),
     0xbdc04c09,
     UINT64_C(0xd0549cc0405811d5)},
    {UINT64_C(0x0000000000000000),
     0xaf5570f5,
     UINT64_C(0xe5b2328de0e83dfc),
     0x05fe4057,
     UINT64_C(0xac558654f107c7e9)},
    {UINT64_C(0xffffffffffffffff),
     0x12a3ae44,
     UINT64_C(0x57fb595bbbacf0ca),
     0xbe673e8a,
     UINT64_C(0x866701c11ef8e089)},
};

START_TEST(v1_token_and_idsn_match_the_vectors)
{
	uint32_t token;
	uint64_t idsn;

	ck_assert_int_eq(
	    mps_crypto_key_derive(MPS_V1, key_vectors[_i].key, &token, &idsn),
	    0);
	ck_assert_uint_eq(token, key_vectors[_i].v1_token);
	ck_assert_uint_eq(idsn, key_vectors[_i].v1_idsn);
}
END_TEST

START_TEST(v0_token_and_idsn_match_the_vectors)
{
	uint32_t token;
	uint64_t idsn;

	ck_assert_int_eq(
	    mps_crypto_key_derive(MPS_V0, key_vectors[_i].key, &token, &idsn),
	    0);
	ck_assert_uint_eq(token, key_vectors[_i].v0_token);
	ck_assert_uint_eq(idsn, key_vectors[_i].v0_idsn);
}
END_TEST

START_TEST(key_material_holds_the_key_its_token_and_its_idsn)
{
	struct mps_key_material km;
	uint32_t token;

	ck_assert_int_eq(mps_crypto_key_material(MPS_V1, KEY_B, &km), 0);
	ck_assert_uint_eq(km.key, KEY_B);
	ck_assert_uint_eq(km.token, 0x1dce6604);
	ck_assert_uint_eq(km.idsn, UINT64_C(0x62815714b76ae9a5));

	/* Either output of the derivation may be left out. */
	ck_assert_int_eq(mps_crypto_key_derive(MPS_V0, KEY_B, &token, NULL), 0);
	ck_assert_uint_eq(token, 0xbdc04c09);
}
END_TEST

START_TEST(an_unknown_version_is_rejected)
{
	uint8_t out[MPS_HASH_MAX_LEN];
	uint32_t token;

	ck_assert_int_eq(
	    mps_crypto_key_derive((enum mps_version)2, KEY_A, &token, NULL),
	    -EINVAL);
	ck_assert_int_eq(
	    mps_crypto_hmac((enum mps_version)7, "k", 1, "m", 1, out), -EINVAL);
	ck_assert_int_eq(
	    mps_crypto_join_ack_hmac(
		(enum mps_version)2, KEY_A, KEY_B, NONCE_A, NONCE_B, out),
	    -EINVAL);
	ck_assert_uint_eq(mps_crypto_hash_len((enum mps_version)2), 0);
}
END_TEST

START_TEST(join_synack_hmac_matches_the_v1_and_v0_vectors)
{
	uint8_t out[MPS_JOIN_TRUNC_HMAC_LEN];

	ck_assert_int_eq(mps_crypto_join_synack_hmac(
			     MPS_V1, KEY_A, KEY_B, NONCE_A, NONCE_B, out),
			 0);
	assert_bytes_hex(out, sizeof(out), "690bfc5220830d74");

	ck_assert_int_eq(mps_crypto_join_synack_hmac(
			     MPS_V0, KEY_A, KEY_B, NONCE_A, NONCE_B, out),
			 0);
	assert_bytes_hex(out, sizeof(out), "d227c169dd6a0c77");
}
END_TEST

START_TEST(join_ack_hmac_matches_the_v1_and_v0_vectors)
{
	uint8_t out[MPS_JOIN_HMAC_LEN];

	ck_assert_int_eq(mps_crypto_join_ack_hmac(
			     MPS_V1, KEY_A, KEY_B, NONCE_A, NONCE_B, out),
			 0);
	assert_bytes_hex(
	    out, sizeof(out), "f352b51e7ff599d9017ab3f4e6286d8127f2108a");

	ck_assert_int_eq(mps_crypto_join_ack_hmac(
			     MPS_V0, KEY_A, KEY_B, NONCE_A, NONCE_B, out),
			 0);
	assert_bytes_hex(
	    out, sizeof(out), "9d6655539a5c6d743380628dc0cf67e2230b2b9d");
}
END_TEST

START_TEST(a_received_hmac_verifies_only_when_every_bit_matches)
{
	uint8_t mine[MPS_JOIN_HMAC_LEN];
	uint8_t theirs[MPS_JOIN_HMAC_LEN];

	ck_assert_int_eq(mps_crypto_join_ack_hmac(
			     MPS_V1, KEY_A, KEY_B, NONCE_A, NONCE_B, mine),
			 0);
	memcpy(theirs, mine, sizeof(theirs));
	ck_assert(mps_crypto_mem_equal(mine, theirs, sizeof(mine)));

	for (size_t bit = 0; bit < 8 * sizeof(theirs); bit++) {
		theirs[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert(!mps_crypto_mem_equal(mine, theirs, sizeof(mine)));
		theirs[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}
END_TEST

START_TEST(add_addr_hmac_matches_the_vector_without_a_port)
{
	const uint8_t addr[4] = {10, 0, 2, 1};
	uint8_t out[MPS_ADD_ADDR_HMAC_LEN];

	ck_assert_int_eq(
	    mps_crypto_add_addr_hmac(KEY_A, KEY_B, 1, AF_INET, addr, 0, out),
	    0);
	assert_bytes_hex(out, sizeof(out), "824d6e72dfc352cc");
}
END_TEST

START_TEST(add_addr_hmac_matches_the_vector_with_a_port)
{
	struct in_addr addr;
	uint8_t out[MPS_ADD_ADDR_HMAC_LEN];

	ck_assert_int_eq(inet_pton(AF_INET, "10.0.2.1", &addr), 1);
	ck_assert_int_eq(mps_crypto_add_addr_hmac(
			     KEY_A, KEY_B, 1, AF_INET, &addr, 10100, out),
			 0);
	assert_bytes_hex(out, sizeof(out), "3766193b87b7afb1");
}
END_TEST

/* No vector exists for IPv6: check the layout against the generic HMAC. */
START_TEST(add_addr_hmac_covers_all_16_bytes_of_an_ipv6_address)
{
	struct in6_addr addr;
	uint8_t keys[16];
	uint8_t msg[19];
	uint8_t full[MPS_SHA256_LEN];
	uint8_t out[MPS_ADD_ADDR_HMAC_LEN];

	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &addr), 1);
	hex_decode("01020304050607081122334455667788", keys, sizeof(keys));
	msg[0] = 7;
	memcpy(msg + 1, &addr, 16);
	msg[17] = 0x1f;
	msg[18] = 0x90;

	ck_assert_int_eq(
	    mps_crypto_hmac(MPS_V1, keys, sizeof(keys), msg, sizeof(msg), full),
	    0);
	ck_assert_int_eq(mps_crypto_add_addr_hmac(
			     KEY_A, KEY_B, 7, AF_INET6, &addr, 8080, out),
			 0);
	ck_assert_mem_eq(out, full + sizeof(full) - sizeof(out), sizeof(out));
}
END_TEST

START_TEST(add_addr_hmac_refuses_a_family_other_than_ip)
{
	const uint8_t addr[16] = {0};
	uint8_t out[MPS_ADD_ADDR_HMAC_LEN];

	ck_assert_int_eq(
	    mps_crypto_add_addr_hmac(KEY_A, KEY_B, 1, AF_UNIX, addr, 0, out),
	    -EAFNOSUPPORT);
}
END_TEST

/* HMACs from many threads at once must all be right (shared contexts). */
static void *hmac_worker(void *arg)
{
	uint8_t out[MPS_JOIN_TRUNC_HMAC_LEN];
	uint8_t want[MPS_JOIN_TRUNC_HMAC_LEN];
	long bad = 0;

	(void)arg;
	hex_decode("690bfc5220830d74", want, sizeof(want));
	for (int i = 0; i < 2000; i++) {
		if (mps_crypto_join_synack_hmac(
			MPS_V1, KEY_A, KEY_B, NONCE_A, NONCE_B, out) != 0 ||
		    memcmp(out, want, sizeof(out)) != 0)
			bad++;
	}
	return (void *)bad;
}

START_TEST(hmacs_from_eight_threads_at_once_are_all_right)
{
	pthread_t threads[8];
	void *bad;

	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(
		    pthread_create(&threads[i], NULL, hmac_worker, NULL), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_join(threads[i], &bad), 0);
		ck_assert_ptr_null(bad);
	}
}
END_TEST

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

START_TEST(random_keys_differ)
{
	enum { N = 4096 };
	uint64_t *keys = calloc(N, sizeof(*keys));

	ck_assert_ptr_nonnull(keys);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(mps_crypto_key_new(&keys[i]), 0);

	qsort(keys, N, sizeof(*keys), compare_u64);
	for (int i = 1; i < N; i++)
		ck_assert_uint_ne(keys[i - 1], keys[i]);
	free(keys);
}
END_TEST

START_TEST(wiping_a_key_zeroes_it)
{
	uint64_t key = KEY_A;

	mps_crypto_wipe(&key, sizeof(key));
	ck_assert_uint_eq(key, 0);
	mps_crypto_wipe(NULL, 8);
}
END_TEST

static const char hello[] = "hello world";
#define HELLO_DSN UINT64_C(0x100000001)

START_TEST(dss_checksum_matches_the_vector)
{
	ck_assert_uint_eq(mps_dss_csum(HELLO_DSN, 1, 11, hello, 11), 0x6e23);
}
END_TEST

START_TEST(dss_checksum_sums_to_zero_with_itself_in_place)
{
	struct mps_csum csum;

	mps_dss_csum_start(&csum, HELLO_DSN, 1, 11, 0x6e23);
	mps_csum_add(&csum, hello, 11);
	ck_assert_uint_eq(mps_csum_final(&csum), 0);
	ck_assert(mps_dss_csum_ok(HELLO_DSN, 1, 11, hello, 11, 0x6e23));
}
END_TEST

START_TEST(dss_checksum_catches_a_changed_byte_or_header)
{
	char bad[sizeof(hello)];

	memcpy(bad, hello, sizeof(bad));
	bad[4] ^= 0x20;
	ck_assert(!mps_dss_csum_ok(HELLO_DSN, 1, 11, bad, 11, 0x6e23));
	ck_assert(!mps_dss_csum_ok(HELLO_DSN + 1, 1, 11, hello, 11, 0x6e23));
	ck_assert(!mps_dss_csum_ok(HELLO_DSN, 2, 11, hello, 11, 0x6e23));
	ck_assert(!mps_dss_csum_ok(HELLO_DSN, 1, 12, hello, 11, 0x6e23));
}
END_TEST

/* The checksum the slow way: 16-bit big-endian words, one at a time. */
static uint16_t reference_csum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < len; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Deterministic bytes, biased towards 0xff to exercise the carries. */
static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		p[i] = (seed >> 16) % 3 ? 0xff : (uint8_t)(seed >> 8);
	}
}

START_TEST(checksum_agrees_with_a_bytewise_reference)
{
	uint8_t buf[520];
	struct mps_csum csum;

	/* Every length and every misalignment of the start. */
	for (size_t len = 0; len <= 512; len++) {
		for (size_t off = 0; off < 8; off++) {
			fill_pattern(buf, sizeof(buf), (uint32_t)(len + off));
			mps_csum_init(&csum);
			mps_csum_add(&csum, buf + off, len);
			ck_assert_uint_eq(mps_csum_final(&csum),
					  reference_csum(buf + off, len));
		}
	}
}
END_TEST

START_TEST(incremental_checksum_equals_the_one_shot_at_every_split)
{
	uint8_t buf[77];
	struct mps_csum csum;
	uint16_t whole;

	for (size_t len = 1; len <= sizeof(buf); len += len < 20 ? 1 : 19) {
		fill_pattern(buf, len, (uint32_t)len);
		whole = mps_dss_csum(HELLO_DSN, 7, (uint16_t)len, buf, len);

		for (size_t i = 0; i <= len; i++) {
			for (size_t j = i; j <= len; j++) {
				mps_dss_csum_start(
				    &csum, HELLO_DSN, 7, (uint16_t)len, 0);
				mps_csum_add(&csum, buf, i);
				mps_csum_add(&csum, buf + i, j - i);
				mps_csum_add(&csum, buf + j, len - j);
				ck_assert_uint_eq(mps_csum_final(&csum), whole);
			}
		}
	}
}
END_TEST

START_TEST(checksum_over_an_iovec_equals_the_one_shot)
{
	uint8_t buf[1 + 2 + 3 + 8 + 13 + 64];
	const size_t sizes[] = {1, 2, 3, 8, 13, 64};
	struct iovec iov[6];
	struct mps_csum csum;
	size_t off = 0;

	fill_pattern(buf, sizeof(buf), 42);
	for (size_t i = 0; i < 6; i++) {
		iov[i].iov_base = buf + off;
		iov[i].iov_len = sizes[i];
		off += sizes[i];
	}

	mps_dss_csum_start(&csum, 1, 2, sizeof(buf), 0);
	mps_csum_add_iov(&csum, iov, 6);
	ck_assert_uint_eq(mps_csum_final(&csum),
			  mps_dss_csum(1, 2, sizeof(buf), buf, sizeof(buf)));
}
END_TEST

static Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc;

	tc = tcase_create("hmac");
	tcase_add_loop_test(tc, hmac_sha256_matches_the_kernel_vectors, 0, 3);
	tcase_add_test(tc, hmac_with_an_empty_key_is_the_standard_one);
	tcase_add_test(tc, an_unknown_version_is_rejected);
	tcase_add_test(tc, hmacs_from_eight_threads_at_once_are_all_right);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_loop_test(tc, v1_token_and_idsn_match_the_vectors, 0, 4);
	tcase_add_loop_test(tc, v0_token_and_idsn_match_the_vectors, 0, 4);
	tcase_add_test(tc, key_material_holds_the_key_its_token_and_its_idsn);
	tcase_add_test(tc, random_keys_differ);
	tcase_add_test(tc, wiping_a_key_zeroes_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("join");
	tcase_add_test(tc, join_synack_hmac_matches_the_v1_and_v0_vectors);
	tcase_add_test(tc, join_ack_hmac_matches_the_v1_and_v0_vectors);
	tcase_add_test(tc,
		       a_received_hmac_verifies_only_when_every_bit_matches);
	suite_add_tcase(s, tc);

	tc = tcase_create("add_addr");
	tcase_add_test(tc, add_addr_hmac_matches_the_vector_without_a_port);
	tcase_add_test(tc, add_addr_hmac_matches_the_vector_with_a_port);
	tcase_add_test(tc,
		       add_addr_hmac_covers_all_16_bytes_of_an_ipv6_address);
	tcase_add_test(tc, add_addr_hmac_refuses_a_family_other_than_ip);
	suite_add_tcase(s, tc);

	tc = tcase_create("checksum");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dss_checksum_matches_the_vector);
	tcase_add_test(tc, dss_checksum_sums_to_zero_with_itself_in_place);
	tcase_add_test(tc, dss_checksum_catches_a_changed_byte_or_header);
	tcase_add_test(tc, checksum_agrees_with_a_bytewise_reference);
	tcase_add_test(tc,
		       incremental_checksum_equals_the_one_shot_at_every_split);
	tcase_add_test(tc, checksum_over_an_iovec_equals_the_one_shot);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crypto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
