/*
 * test-seq.c: sequence number comparison and 4-byte DSN expansion.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "seq.h"

#define TWO_31 UINT64_C(0x80000000)
#define TWO_32 UINT64_C(0x100000000)
#define TWO_63 UINT64_C(0x8000000000000000)

/* Expands the low half of want against ref and checks it comes back. */
static void assert_expands_back(uint64_t want, uint64_t ref)
{
	uint64_t got = mps_dsn_expand(mps_dsn_low32(want), ref);

	ck_assert_msg(got == want,
		      "ref %#llx: expanded %#llx, want %#llx",
		      (unsigned long long)ref,
		      (unsigned long long)got,
		      (unsigned long long)want);
}

/* xorshift64*: a fixed, portable sequence for the property tests. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;

	return *state * UINT64_C(0x2545f4914f6cdd1d);
}

START_TEST(test_dsn_comparison_holds_across_2_64)
{
	uint64_t last = UINT64_MAX - 1;

	ck_assert(mps_dsn_before(last, 1));
	ck_assert(mps_dsn_after(1, last));
	ck_assert(mps_dsn_before_eq(last, last));
	ck_assert(mps_dsn_after_eq(0, UINT64_MAX));
	ck_assert_int_eq(mps_dsn_diff(1, last), 3);
	ck_assert_int_eq(mps_dsn_diff(last, 1), -3);
	ck_assert_uint_eq(mps_dsn_max(last, 1), 1);
	ck_assert_uint_eq(mps_dsn_min(last, 1), last);
}
END_TEST

START_TEST(test_dsn_comparison_holds_across_2_32)
{
	ck_assert(mps_dsn_before(TWO_32 - 1, TWO_32));
	ck_assert(mps_dsn_after(TWO_32 + 1, TWO_32 - 1));
	ck_assert_int_eq(mps_dsn_diff(TWO_32, TWO_32 - 1), 1);
	ck_assert(mps_dsn_between(TWO_32, TWO_32 - 5, TWO_32 + 5));
}
END_TEST

START_TEST(test_dsn_half_the_space_ahead_counts_as_behind)
{
	uint64_t b = UINT64_MAX - 10;

	ck_assert(mps_dsn_after(b + (TWO_63 - 1), b));
	ck_assert(mps_dsn_before(b + TWO_63, b));
	ck_assert_int_eq(mps_dsn_diff(b + TWO_63, b), INT64_MIN);
}
END_TEST

START_TEST(test_dsn_range_is_half_open_across_2_64)
{
	uint64_t lo = UINT64_MAX - 2;
	uint64_t hi = 3;

	ck_assert(mps_dsn_between(lo, lo, hi));
	ck_assert(mps_dsn_between(UINT64_MAX, lo, hi));
	ck_assert(mps_dsn_between(0, lo, hi));
	ck_assert(mps_dsn_between(2, lo, hi));
	ck_assert(!mps_dsn_between(3, lo, hi));
	ck_assert(!mps_dsn_between(lo - 1, lo, hi));
	ck_assert(!mps_dsn_between(lo, lo, lo));
}
END_TEST

START_TEST(test_ssn_comparison_holds_across_2_32)
{
	ck_assert(mps_ssn_before(0xfffffff0u, 0x10));
	ck_assert(mps_ssn_after(0x10, 0xfffffff0u));
	ck_assert(mps_ssn_before_eq(0x10, 0x10));
	ck_assert(mps_ssn_after_eq(0, UINT32_MAX));
	ck_assert_int_eq(mps_ssn_diff(0x10, 0xfffffff0u), 0x20);
	ck_assert(mps_ssn_between(0, UINT32_MAX, 1));
	ck_assert(!mps_ssn_between(1, UINT32_MAX, 1));
}
END_TEST

START_TEST(test_ssn_half_the_space_ahead_counts_as_behind)
{
	uint32_t b = 0xfffffff0u;

	ck_assert(mps_ssn_after(b + 0x7fffffffu, b));
	ck_assert(mps_ssn_before(b + 0x80000000u, b));
}
END_TEST

START_TEST(test_expand_of_own_low_bits_is_the_reference)
{
	assert_expands_back(0, 0);
	assert_expands_back(UINT64_MAX, UINT64_MAX);
	assert_expands_back(UINT64_C(0x123456789abcdef0),
			    UINT64_C(0x123456789abcdef0));
}
END_TEST

START_TEST(test_expand_carries_past_2_32_from_just_below)
{
	ck_assert_uint_eq(mps_dsn_expand(0x10, TWO_32 - 0x10), TWO_32 + 0x10);
	ck_assert_uint_eq(mps_dsn_expand(0xfffffff8u, TWO_32 - 0x10),
			  TWO_32 - 8);
}
END_TEST

START_TEST(test_expand_borrows_below_2_32_from_just_above)
{
	ck_assert_uint_eq(mps_dsn_expand(0xfffffff0u, TWO_32 + 0x10),
			  TWO_32 - 0x10);
	ck_assert_uint_eq(mps_dsn_expand(0x20, TWO_32 + 0x10), TWO_32 + 0x20);
}
END_TEST

START_TEST(test_expand_wraps_past_2_64_from_just_below)
{
	ck_assert_uint_eq(mps_dsn_expand(0x10, UINT64_MAX - 0xf), 0x10);
	ck_assert_uint_eq(mps_dsn_expand(0, UINT64_MAX), 0);
}
END_TEST

START_TEST(test_expand_wraps_back_from_just_above_2_64)
{
	ck_assert_uint_eq(mps_dsn_expand(0xfffffff0u, 0x10), UINT64_MAX - 0xf);
	ck_assert_uint_eq(mps_dsn_expand(UINT32_MAX, 0), UINT64_MAX);
}
END_TEST

START_TEST(test_expand_reaches_2_31_minus_1_ahead)
{
	uint64_t ref = UINT64_C(0x512345678);

	assert_expands_back(ref + TWO_31 - 1, ref);
	assert_expands_back(UINT64_MAX, UINT64_MAX - (TWO_31 - 1));
}
END_TEST

START_TEST(test_expand_takes_exactly_2_31_away_as_behind)
{
	uint64_t ref = UINT64_C(0x512345678);

	ck_assert_uint_eq(mps_dsn_expand(mps_dsn_low32(ref + TWO_31), ref),
			  ref - TWO_31);
	assert_expands_back(ref - TWO_31, ref);
}
END_TEST

START_TEST(test_expand_reaches_2_31_behind_across_2_64)
{
	uint64_t ref = 5;

	assert_expands_back(ref - TWO_31, ref);
	ck_assert_uint_eq(mps_dsn_expand(mps_dsn_low32(ref - TWO_31), ref),
			  UINT64_MAX - TWO_31 + 6);
}
END_TEST

START_TEST(test_expand_recovers_any_dsn_within_2_31)
{
	uint64_t state = UINT64_C(0x9e3779b97f4a7c15);

	for (int i = 0; i < 100000; i++) {
		uint64_t ref = next_random(&state);
		uint64_t step = next_random(&state) % TWO_32;
		uint64_t want;

		/* Near the edges of both wraps as often as anywhere. */
		if (i % 4 == 1)
			ref = UINT64_MAX - (ref % 64);
		else if (i % 4 == 2)
			ref = TWO_32 - 32 + (ref % 64);
		want = ref + step - TWO_31;

		assert_expands_back(want, ref);
	}
}
END_TEST

static Suite *seq_suite(void)
{
	Suite *s = suite_create("seq");
	TCase *cmp = tcase_create("compare");
	TCase *expand = tcase_create("expand");

	tcase_add_test(cmp, test_dsn_comparison_holds_across_2_64);
	tcase_add_test(cmp, test_dsn_comparison_holds_across_2_32);
	tcase_add_test(cmp, test_dsn_half_the_space_ahead_counts_as_behind);
	tcase_add_test(cmp, test_dsn_range_is_half_open_across_2_64);
	tcase_add_test(cmp, test_ssn_comparison_holds_across_2_32);
	tcase_add_test(cmp, test_ssn_half_the_space_ahead_counts_as_behind);
	suite_add_tcase(s, cmp);

	tcase_add_test(expand, test_expand_of_own_low_bits_is_the_reference);
	tcase_add_test(expand, test_expand_carries_past_2_32_from_just_below);
	tcase_add_test(expand, test_expand_borrows_below_2_32_from_just_above);
	tcase_add_test(expand, test_expand_wraps_past_2_64_from_just_below);
	tcase_add_test(expand, test_expand_wraps_back_from_just_above_2_64);
	tcase_add_test(expand, test_expand_reaches_2_31_minus_1_ahead);
	tcase_add_test(expand, test_expand_takes_exactly_2_31_away_as_behind);
	tcase_add_test(expand, test_expand_reaches_2_31_behind_across_2_64);
	tcase_add_test(expand, test_expand_recovers_any_dsn_within_2_31);
	suite_add_tcase(s, expand);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(seq_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
