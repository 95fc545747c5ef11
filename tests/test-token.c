/*
 * test-token.c: the token table, alone and under eight threads.
 */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

static struct mps_token_table *table;

static void table_setup(void)
{
	ck_assert_int_eq(mps_token_table_create(&table), 0);
}

static void table_teardown(void)
{
	mps_token_table_destroy(table);
	table = NULL;
}

/* A key source that replays a script of keys, then fails. */
struct key_script {
	const uint64_t *keys;
	size_t len;
	size_t drawn;
};

static int scripted_key(void *arg, uint64_t *key)
{
	struct key_script *script = arg;

	if (script->drawn == script->len)
		return -EIO;
	*key = script->keys[script->drawn++];
	return 0;
}

static void
use_script(struct key_script *script, const uint64_t *keys, size_t len)
{
	script->keys = keys;
	script->len = len;
	script->drawn = 0;
	mps_token_table_set_key_source(table, scripted_key, script);
}

/* A key source counting up from *arg: distinct keys, reproducible. */
static int counting_key(void *arg, uint64_t *key)
{
	uint64_t *next = arg;

	*key = (*next)++;
	return 0;
}

/* Insert a token for owner and check what the table handed back. */
static struct mps_key_material add_owner(enum mps_version version, void *owner)
{
	struct mps_key_material km;
	uint32_t token;
	uint64_t idsn;

	ck_assert_int_eq(mps_token_new(table, version, owner, &km), 0);
	ck_assert_int_eq(mps_crypto_key_derive(version, km.key, &token, &idsn),
			 0);
	ck_assert_uint_eq(km.token, token);
	ck_assert_uint_eq(km.idsn, idsn);
	ck_assert_ptr_eq(mps_token_lookup(table, km.token), owner);
	return km;
}

START_TEST(a_new_token_can_be_looked_up_then_removed)
{
	int conn;
	struct mps_key_material km = add_owner(MPS_V1, &conn);

	ck_assert_uint_eq(mps_token_count(table), 1);
	ck_assert_int_eq(mps_token_remove(table, km.token, &conn), 0);
	ck_assert_ptr_null(mps_token_lookup(table, km.token));
	ck_assert_uint_eq(mps_token_count(table), 0);
	ck_assert_int_eq(mps_token_remove(table, km.token, &conn), -ENOENT);
}
END_TEST

START_TEST(tokens_follow_the_version_of_the_connection)
{
	static const uint64_t keys[] = {UINT64_C(0x0102030405060708),
					UINT64_C(0x1122334455667788)};
	struct key_script script;
	int v1_conn;
	int v0_conn;

	use_script(&script, keys, 2);
	ck_assert_uint_eq(add_owner(MPS_V1, &v1_conn).token, 0x66840dda);
	ck_assert_uint_eq(add_owner(MPS_V0, &v0_conn).token, 0xbdc04c09);
}
END_TEST

START_TEST(a_repeated_key_is_replaced_by_a_fresh_draw)
{
	static const uint64_t keys[] = {11, 11, 12};
	struct key_script script;
	int first;
	int second;

	use_script(&script, keys, 3);
	ck_assert_uint_eq(add_owner(MPS_V1, &first).key, 11);
	ck_assert_uint_eq(add_owner(MPS_V1, &second).key, 12);
	ck_assert_uint_eq(script.drawn, 3);
	ck_assert_uint_eq(mps_token_count(table), 2);
}
END_TEST

/* Keys 0xc66f and 0xe658 differ but share the v1 token 0x7357966a. */
START_TEST(a_different_key_with_a_taken_token_is_replaced)
{
	static const uint64_t keys[] = {0xc66f, 0xe658, 0xe659};
	struct key_script script;
	int first;
	int second;

	use_script(&script, keys, 3);
	ck_assert_uint_eq(add_owner(MPS_V1, &first).token, 0x7357966a);
	ck_assert_uint_eq(add_owner(MPS_V1, &second).key, 0xe659);
	ck_assert_uint_eq(script.drawn, 3);
	ck_assert_ptr_eq(mps_token_lookup(table, 0x7357966a), &first);
}
END_TEST

START_TEST(endless_collisions_give_up_with_eagain)
{
	uint64_t keys[1 + MPS_TOKEN_MAX_DRAWS + 1];
	struct key_script script;
	struct mps_key_material km;
	int first;
	int second;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		keys[i] = 5;
	use_script(&script, keys, sizeof(keys) / sizeof(keys[0]));
	add_owner(MPS_V1, &first);

	ck_assert_int_eq(mps_token_new(table, MPS_V1, &second, &km), -EAGAIN);
	ck_assert_uint_eq(script.drawn, 1 + MPS_TOKEN_MAX_DRAWS);
	ck_assert_uint_eq(mps_token_count(table), 1);
}
END_TEST

START_TEST(a_failing_key_source_fails_the_new_token)
{
	struct key_script script;
	struct mps_key_material km;
	int conn;

	use_script(&script, NULL, 0);
	ck_assert_int_eq(mps_token_new(table, MPS_V1, &conn, &km), -EIO);
	ck_assert_uint_eq(mps_token_count(table), 0);

	/* Restoring the default source restores the RNG. */
	mps_token_table_set_key_source(table, NULL, NULL);
	add_owner(MPS_V1, &conn);
}
END_TEST

START_TEST(removal_by_another_owner_fails_and_keeps_the_token)
{
	int owner;
	int intruder;
	struct mps_key_material km = add_owner(MPS_V1, &owner);

	ck_assert_int_eq(mps_token_remove(table, km.token, &intruder), -EPERM);
	ck_assert_ptr_eq(mps_token_lookup(table, km.token), &owner);
	ck_assert_uint_eq(mps_token_count(table), 1);
}
END_TEST

START_TEST(bad_arguments_are_rejected)
{
	struct mps_key_material km;
	int conn;

	ck_assert_int_eq(mps_token_new(table, MPS_V1, NULL, &km), -EINVAL);
	ck_assert_int_eq(mps_token_new(table, MPS_V1, &conn, NULL), -EINVAL);
	ck_assert_int_eq(mps_token_new(table, (enum mps_version)3, &conn, &km),
			 -EINVAL);
	ck_assert_int_eq(mps_token_table_create(NULL), -EINVAL);
	ck_assert_uint_eq(mps_token_count(table), 0);
}
END_TEST

START_TEST(the_table_grows_to_100k_tokens_and_shrinks_back)
{
	enum { N = 100000 };
	char *owners = calloc(N, 1);
	uint32_t *tokens = calloc(N, sizeof(*tokens));

	ck_assert_ptr_nonnull(owners);
	ck_assert_ptr_nonnull(tokens);
	for (size_t i = 0; i < N; i++)
		tokens[i] = add_owner(MPS_V1, &owners[i]).token;
	ck_assert_uint_eq(mps_token_count(table), N);

	/* Holes in every run must not hide the tokens behind them. */
	for (size_t i = 0; i < N; i += 2)
		ck_assert_int_eq(mps_token_remove(table, tokens[i], &owners[i]),
				 0);
	for (size_t i = 1; i < N; i += 2)
		ck_assert_ptr_eq(mps_token_lookup(table, tokens[i]),
				 &owners[i]);

	for (size_t i = 1; i < N; i += 2)
		ck_assert_int_eq(mps_token_remove(table, tokens[i], &owners[i]),
				 0);
	ck_assert_uint_eq(mps_token_count(table), 0);
	for (size_t i = 0; i < N; i++)
		ck_assert_ptr_null(mps_token_lookup(table, tokens[i]));

	free(tokens);
	free(owners);
}
END_TEST

/* Random churn against a shadow copy: grow, shrink and shift-back. */
enum { CHURN_SLOTS = 3000, CHURN_OPS = 200000, CHURN_PHASE = 20000 };

struct shadow {
	char owners[CHURN_SLOTS];
	uint32_t tokens[CHURN_SLOTS];
	bool live[CHURN_SLOTS];
	size_t nlive;
};

/* Flip slot k: insert if dead, remove if live. */
static void shadow_flip(struct shadow *sh, size_t k)
{
	if (sh->live[k]) {
		ck_assert_int_eq(
		    mps_token_remove(table, sh->tokens[k], &sh->owners[k]), 0);
		sh->nlive--;
	} else {
		sh->tokens[k] = add_owner(MPS_V1, &sh->owners[k]).token;
		sh->nlive++;
	}
	sh->live[k] = !sh->live[k];
}

static void shadow_check(const struct shadow *sh)
{
	ck_assert_uint_eq(mps_token_count(table), sh->nlive);
	for (size_t i = 0; i < CHURN_SLOTS; i++) {
		void *found = mps_token_lookup(table, sh->tokens[i]);

		if (sh->live[i])
			ck_assert_ptr_eq(found, &sh->owners[i]);
		else
			ck_assert_ptr_ne(found, &sh->owners[i]);
	}
}

START_TEST(random_churn_agrees_with_a_shadow_copy)
{
	struct shadow *sh = calloc(1, sizeof(*sh));
	uint64_t next_key = 1;
	uint32_t seed = 1;
	bool growing;
	size_t k;

	ck_assert_ptr_nonnull(sh);
	mps_token_table_set_key_source(table, counting_key, &next_key);
	for (int op = 0; op < CHURN_OPS; op++) {
		seed = seed * 1103515245 + 12345;
		k = (seed >> 8) % CHURN_SLOTS;

		/* Phases that mostly insert alternate with ones that
		 * mostly remove, so that the table grows and shrinks. */
		growing = (op / CHURN_PHASE) % 2 == 0;
		if (growing != sh->live[k] || (seed & 0x30000000) == 0)
			shadow_flip(sh, k);

		if (op % 5000 == 0)
			shadow_check(sh);
	}
	shadow_check(sh);
	free(sh);
}
END_TEST

/* Eight threads share the table; each owns THREAD_CONNS connections. */
enum { THREADS = 8, THREAD_CONNS = 5000 };

struct conn {
	uint32_t token;
	bool live;
};

struct worker {
	pthread_t thread;
	struct conn conns[THREAD_CONNS];
	struct conn spare[THREAD_CONNS];
	int failures;
};

static struct worker *workers;

static void worker_add(struct worker *w, struct conn *conn)
{
	struct mps_key_material km;

	if (mps_token_new(table, MPS_V1, conn, &km) != 0) {
		w->failures++;
		return;
	}
	conn->token = km.token;
	conn->live = true;
	mps_crypto_wipe(&km, sizeof(km));
}

static void *insert_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < THREAD_CONNS; i++)
		worker_add(w, &w->conns[i]);
	for (int i = 0; i < THREAD_CONNS; i++) {
		if (mps_token_lookup(table, w->conns[i].token) != &w->conns[i])
			w->failures++;
	}
	return NULL;
}

/* Replace every even connection by a spare one, while others do too. */
static void *replace_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < THREAD_CONNS; i += 2) {
		if (mps_token_remove(table, w->conns[i].token, &w->conns[i]) !=
		    0)
			w->failures++;
		w->conns[i].live = false;
		worker_add(w, &w->spare[i]);
		if (mps_token_lookup(table, w->spare[i].token) != &w->spare[i])
			w->failures++;
	}
	return NULL;
}

static void run_workers(void *(*fn)(void *))
{
	for (int t = 0; t < THREADS; t++)
		ck_assert_int_eq(
		    pthread_create(&workers[t].thread, NULL, fn, &workers[t]),
		    0);
	for (int t = 0; t < THREADS; t++) {
		ck_assert_int_eq(pthread_join(workers[t].thread, NULL), 0);
		ck_assert_int_eq(workers[t].failures, 0);
	}
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Lookup finds conn if live; returns 1 if live, for counting. */
static size_t
assert_found_if_live(const struct conn *conn, uint32_t *tokens, size_t n)
{
	if (!conn->live)
		return 0;

	ck_assert_ptr_eq(mps_token_lookup(table, conn->token), conn);
	tokens[n] = conn->token;
	return 1;
}

/* Every live connection is found under its token, which no other holds. */
static void assert_live_tokens_unique(void)
{
	uint32_t *tokens = calloc(THREADS * THREAD_CONNS, sizeof(*tokens));
	size_t n = 0;

	ck_assert_ptr_nonnull(tokens);
	for (int t = 0; t < THREADS; t++) {
		for (int i = 0; i < THREAD_CONNS; i++) {
			n += assert_found_if_live(
			    &workers[t].conns[i], tokens, n);
			n += assert_found_if_live(
			    &workers[t].spare[i], tokens, n);
		}
	}
	ck_assert_uint_eq(n, THREADS * THREAD_CONNS);
	ck_assert_uint_eq(mps_token_count(table), n);

	qsort(tokens, n, sizeof(*tokens), compare_u32);
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_ne(tokens[i - 1], tokens[i]);
	free(tokens);
}

START_TEST(eight_threads_lose_and_duplicate_no_token)
{
	workers = calloc(THREADS, sizeof(*workers));
	ck_assert_ptr_nonnull(workers);

	run_workers(insert_worker);
	assert_live_tokens_unique();

	run_workers(replace_worker);
	assert_live_tokens_unique();

	free(workers);
	workers = NULL;
}
END_TEST

static Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *tc;

	tc = tcase_create("basics");
	tcase_add_checked_fixture(tc, table_setup, table_teardown);
	tcase_add_test(tc, a_new_token_can_be_looked_up_then_removed);
	tcase_add_test(tc, tokens_follow_the_version_of_the_connection);
	tcase_add_test(tc, removal_by_another_owner_fails_and_keeps_the_token);
	tcase_add_test(tc, bad_arguments_are_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("collisions");
	tcase_add_checked_fixture(tc, table_setup, table_teardown);
	tcase_add_test(tc, a_repeated_key_is_replaced_by_a_fresh_draw);
	tcase_add_test(tc, a_different_key_with_a_taken_token_is_replaced);
	tcase_add_test(tc, endless_collisions_give_up_with_eagain);
	tcase_add_test(tc, a_failing_key_source_fails_the_new_token);
	suite_add_tcase(s, tc);

	tc = tcase_create("scale");
	tcase_add_checked_fixture(tc, table_setup, table_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, the_table_grows_to_100k_tokens_and_shrinks_back);
	tcase_add_test(tc, random_churn_agrees_with_a_shadow_copy);
	tcase_add_test(tc, eight_threads_lose_and_duplicate_no_token);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(token_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
