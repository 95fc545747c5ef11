/*
 * test-reasm.c: the reassembly queue against a known byte stream.
 *
 * Each test inserts slices of one stream, named by their offset in it, at
 * DSN base + offset, and checks what comes out at rcv_nxt.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reasm.h"

#define STREAM_LEN 65536
#define DEFAULT_BASE UINT64_C(0x0123456789abcdef)
#define DEFAULT_LIMIT 65536

static unsigned char stream[STREAM_LEN];
static struct mps_reasm q;
static uint64_t base;

/* xorshift64*: a fixed, portable sequence. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;

	return *state * UINT64_C(0x2545f4914f6cdd1d);
}

static void reinit(uint64_t new_base, size_t limit)
{
	mps_reasm_destroy(&q);
	base = new_base;
	ck_assert_int_eq(mps_reasm_init(&q, base, limit), 0);
}

static void setup(void)
{
	uint64_t state = 42;

	for (size_t i = 0; i < STREAM_LEN; i++)
		stream[i] = (unsigned char)(next_random(&state) >> 56);

	base = DEFAULT_BASE;
	ck_assert_int_eq(mps_reasm_init(&q, base, DEFAULT_LIMIT), 0);
}

static void teardown(void)
{
	mps_reasm_destroy(&q);
}

static size_t overhead(void)
{
	return mps_reasm_seg_overhead();
}

/* Inserts stream[off, off + len); returns the error code. */
static int put_rc(size_t off, size_t len, struct mps_reasm_result *res)
{
	return mps_reasm_insert(&q, base + off, stream + off, len, res);
}

/* Inserts stream[off, off + len), which must succeed. */
static struct mps_reasm_result put(size_t off, size_t len)
{
	struct mps_reasm_result res;

	ck_assert_int_eq(put_rc(off, len, &res), 0);
	ck_assert_uint_eq(res.accepted + res.duplicate + res.mismatched, len);

	return res;
}

static void assert_result(struct mps_reasm_result res,
			  size_t accepted,
			  size_t duplicate,
			  size_t mismatched)
{
	ck_assert_uint_eq(res.accepted, accepted);
	ck_assert_uint_eq(res.duplicate, duplicate);
	ck_assert_uint_eq(res.mismatched, mismatched);
}

/* Reads len bytes, which must be ready, and checks they are stream[off..]. */
static void assert_delivers(size_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base + off);
	ck_assert_uint_eq(mps_reasm_read(&q, buf, len), len);
	ck_assert_mem_eq(buf, stream + off, len);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base + off + len);
	free(buf);
}

struct snapshot {
	uint64_t rcv_nxt;
	size_t held;
	size_t mem;
	size_t segs;
	size_t ready;
};

static struct snapshot take_snapshot(void)
{
	struct snapshot s = {
		.rcv_nxt = mps_reasm_rcv_nxt(&q),
		.held = mps_reasm_bytes_held(&q),
		.mem = mps_reasm_mem_used(&q),
		.segs = mps_reasm_seg_count(&q),
		.ready = mps_reasm_ready(&q),
	};

	return s;
}

static void assert_unchanged(const struct snapshot *before)
{
	struct snapshot now = take_snapshot();

	ck_assert_uint_eq(now.rcv_nxt, before->rcv_nxt);
	ck_assert_uint_eq(now.held, before->held);
	ck_assert_uint_eq(now.mem, before->mem);
	ck_assert_uint_eq(now.segs, before->segs);
	ck_assert_uint_eq(now.ready, before->ready);
}

START_TEST(test_init_refuses_a_zero_memory_bound)
{
	struct mps_reasm other;

	ck_assert_int_eq(mps_reasm_init(&other, 0, 0), -EINVAL);
}
END_TEST

START_TEST(test_in_order_segments_are_ready_at_once)
{
	assert_result(put(0, 100), 100, 0, 0);
	assert_result(put(100, 200), 200, 0, 0);

	ck_assert_uint_eq(mps_reasm_ready(&q), 300);
	assert_delivers(0, 300);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 0);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), 0);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 0);
}
END_TEST

START_TEST(test_empty_insert_changes_nothing)
{
	struct mps_reasm_result res;
	struct snapshot before = take_snapshot();

	ck_assert_int_eq(mps_reasm_insert(&q, base + 10, NULL, 0, &res), 0);
	assert_result(res, 0, 0, 0);
	assert_unchanged(&before);
}
END_TEST

START_TEST(test_in_order_data_bypasses_an_empty_queue)
{
	ck_assert_uint_eq(mps_reasm_direct_len(&q, base, 500), 500);
	ck_assert_int_eq(mps_reasm_advance(&q, 500), 0);

	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base + 500);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), 0);
	ck_assert_uint_eq(mps_reasm_direct_len(&q, base + 501, 10), 0);
}
END_TEST

START_TEST(test_direct_delivery_stops_at_a_held_byte)
{
	put(1000, 100);

	ck_assert_uint_eq(mps_reasm_direct_len(&q, base, 1500), 1000);
	ck_assert_uint_eq(mps_reasm_direct_len(&q, base, 700), 700);
	ck_assert_int_eq(mps_reasm_advance(&q, 1001), -EINVAL);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base);

	ck_assert_int_eq(mps_reasm_advance(&q, 1000), 0);
	ck_assert_uint_eq(mps_reasm_direct_len(&q, base + 1000, 50), 0);
	assert_delivers(1000, 100);
}
END_TEST

START_TEST(test_out_of_order_segments_fill_holes)
{
	put(200, 100);
	put(400, 100);
	ck_assert_uint_eq(mps_reasm_ready(&q), 0);

	put(0, 100);
	ck_assert_uint_eq(mps_reasm_ready(&q), 100);

	put(100, 100);
	ck_assert_uint_eq(mps_reasm_ready(&q), 300);

	put(300, 100);
	ck_assert_uint_eq(mps_reasm_ready(&q), 500);
	assert_delivers(0, 500);
}
END_TEST

START_TEST(test_bytes_before_rcv_nxt_count_as_duplicates)
{
	ck_assert_int_eq(mps_reasm_advance(&q, 100), 0);

	assert_result(put(0, 100), 0, 100, 0);
	assert_result(put(20, 30), 0, 30, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 0);

	assert_result(put(50, 100), 50, 50, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 50);
	assert_delivers(100, 50);
}
END_TEST

START_TEST(test_exact_duplicate_is_not_stored_twice)
{
	size_t mem;

	put(100, 100);
	mem = mps_reasm_mem_used(&q);

	assert_result(put(100, 100), 0, 100, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 100);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), mem);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 1);
}
END_TEST

START_TEST(test_overlap_at_the_front_stores_only_the_new_bytes)
{
	put(100, 100);

	assert_result(put(50, 100), 50, 50, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 150);

	put(0, 50);
	assert_delivers(0, 200);
}
END_TEST

START_TEST(test_overlap_at_the_back_stores_only_the_new_bytes)
{
	put(100, 100);

	assert_result(put(150, 100), 50, 50, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 150);

	put(0, 100);
	assert_delivers(0, 250);
}
END_TEST

START_TEST(test_overlap_at_both_ends_stores_only_the_gap)
{
	put(100, 100);
	put(300, 100);

	assert_result(put(150, 200), 100, 100, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 300);

	put(0, 100);
	assert_delivers(0, 400);
}
END_TEST

START_TEST(test_segment_over_several_held_ones_fills_each_hole)
{
	put(100, 10);
	put(120, 10);
	put(140, 10);

	assert_result(put(90, 70), 40, 30, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 70);
	ck_assert_uint_eq(mps_reasm_ready(&q), 0);

	put(0, 90);
	ck_assert_uint_eq(mps_reasm_ready(&q), 160);
	assert_delivers(0, 160);
}
END_TEST

START_TEST(test_segment_inside_a_held_one_is_all_duplicate)
{
	put(100, 100);

	assert_result(put(120, 30), 0, 30, 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 100);
}
END_TEST

START_TEST(test_mismatched_overlap_is_reported_and_not_delivered)
{
	unsigned char forged[100];
	struct mps_reasm_result res;
	int rc;

	put(100, 100);

	/* Same DSN range 150..250, with 10 bytes of the held part altered. */
	memcpy(forged, stream + 150, sizeof(forged));
	for (int i = 5; i < 15; i++)
		forged[i] ^= 0x5a;
	rc = mps_reasm_insert(&q, base + 150, forged, sizeof(forged), &res);
	ck_assert_int_eq(rc, 0);
	assert_result(res, 50, 40, 10);

	put(0, 100);
	assert_delivers(0, 250);
}
END_TEST

START_TEST(test_memory_bound_gives_enobufs_and_changes_nothing)
{
	size_t limit = 2 * overhead() + 250;
	struct mps_reasm_result res;
	struct snapshot before;

	reinit(DEFAULT_BASE, limit);
	put(10, 100);
	put(150, 100);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), 2 * overhead() + 200);

	/* 40 bytes in a segment of their own would cost more than 50. */
	before = take_snapshot();
	ck_assert_int_eq(put_rc(280, 40, &res), -ENOBUFS);
	assert_result(res, 0, 0, 0);
	assert_unchanged(&before);

	/* Appended to a small held segment, 50 bytes cost 50: a fit. */
	assert_result(put(250, 50), 50, 0, 0);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), limit);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 2);

	before = take_snapshot();
	ck_assert_int_eq(put_rc(0, 1, &res), -ENOBUFS);
	assert_unchanged(&before);

	/* Bytes held already cost nothing and are still compared. */
	assert_result(put(150, 150), 0, 150, 0);
}
END_TEST

START_TEST(test_many_one_byte_fragments_run_into_the_bound)
{
	size_t limit = 4096;
	size_t fit = limit / (overhead() + 1);
	struct mps_reasm_result res;
	struct snapshot before;
	size_t n = 0;
	int rc;

	reinit(DEFAULT_BASE, limit);
	/* Every other byte, so that no fragment touches another. */
	for (;;) {
		before = take_snapshot();
		rc = put_rc(2 * n + 1, 1, &res);
		if (rc != 0)
			break;
		n++;
	}

	ck_assert_int_eq(rc, -ENOBUFS);
	assert_unchanged(&before);
	ck_assert_uint_eq(n, fit);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), fit);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), fit * (overhead() + 1));
	ck_assert_uint_le(mps_reasm_mem_used(&q), limit);
}
END_TEST

START_TEST(test_one_byte_fragments_in_sequence_share_one_segment)
{
	for (size_t off = 1; off <= 500; off++)
		assert_result(put(off, 1), 1, 0, 0);

	ck_assert_uint_eq(mps_reasm_seg_count(&q), 1);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), overhead() + 500);

	put(0, 1);
	assert_delivers(0, 501);
}
END_TEST

START_TEST(test_segment_past_the_window_is_refused_whole)
{
	uint64_t far_ahead = UINT64_C(1) << 40;
	struct mps_reasm_result res;
	struct snapshot before;
	int rc;

	reinit(DEFAULT_BASE, 1000);
	before = take_snapshot();

	ck_assert_int_eq(put_rc(990, 11, &res), -ERANGE);
	assert_result(res, 0, 0, 0);
	rc = mps_reasm_insert(&q, base + far_ahead, stream, 1, &res);
	ck_assert_int_eq(rc, -ERANGE);
	assert_unchanged(&before);

	assert_result(put(990, 10), 10, 0, 0);
}
END_TEST

START_TEST(test_segment_straddling_both_window_edges_is_refused)
{
	struct mps_reasm_result res;
	struct snapshot before;

	reinit(DEFAULT_BASE, 1000);
	ck_assert_int_eq(mps_reasm_advance(&q, 100), 0);
	before = take_snapshot();

	ck_assert_int_eq(put_rc(50, 1051, &res), -ERANGE);
	assert_result(res, 0, 0, 0);
	assert_unchanged(&before);

	assert_result(put(50, 150), 100, 50, 0);
}
END_TEST

START_TEST(test_consume_in_pieces_crosses_segment_boundaries)
{
	struct iovec iov[4];
	size_t bytes;

	/* Inserted back to front, so that none merges into another. */
	put(250, 50);
	put(100, 150);
	put(0, 100);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 3);
	ck_assert_uint_eq(mps_reasm_ready(&q), 300);

	ck_assert_int_eq(mps_reasm_consume(&q, 30), 0);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base + 30);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 270);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 3);

	ck_assert_int_eq(mps_reasm_consume(&q, 100), 0);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 2);
	ck_assert_int_eq(mps_reasm_peek(&q, iov, 4, &bytes), 2);
	ck_assert_uint_eq(bytes, 170);
	ck_assert_mem_eq(iov[0].iov_base, stream + 130, iov[0].iov_len);

	ck_assert_int_eq(mps_reasm_consume(&q, 171), -EINVAL);
	ck_assert_int_eq(mps_reasm_consume(&q, 120), 0);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 1);
	assert_delivers(250, 50);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), 0);
}
END_TEST

START_TEST(test_partly_consumed_segment_keeps_memory_until_empty)
{
	put(0, 100);

	ck_assert_int_eq(mps_reasm_consume(&q, 60), 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 40);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), overhead() + 100);

	ck_assert_int_eq(mps_reasm_consume(&q, 40), 0);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), 0);
}
END_TEST

START_TEST(test_peek_describes_the_ready_bytes_without_copying)
{
	struct iovec iov[8], again[8];
	size_t bytes, total = 0;
	int n;

	put(2000, 1500);
	put(500, 1500);
	put(0, 500);
	put(4000, 10);

	n = mps_reasm_peek(&q, iov, 8, &bytes);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(bytes, 3500);
	for (int i = 0; i < n; i++) {
		ck_assert_mem_eq(
			iov[i].iov_base, stream + total, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	ck_assert_uint_eq(total, 3500);

	ck_assert_int_eq(mps_reasm_peek(&q, again, 2, &bytes), 2);
	ck_assert_uint_eq(bytes, iov[0].iov_len + iov[1].iov_len);
	ck_assert_ptr_eq(again[0].iov_base, iov[0].iov_base);
	ck_assert_ptr_eq(again[1].iov_base, iov[1].iov_base);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base);
}
END_TEST

START_TEST(test_peek_finds_nothing_ahead_of_a_hole)
{
	struct iovec iov[2];
	size_t bytes = 99;

	put(10, 10);

	ck_assert_int_eq(mps_reasm_peek(&q, iov, 2, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_int_eq(mps_reasm_peek(&q, iov, -1, NULL), -EINVAL);
}
END_TEST

START_TEST(test_read_copies_only_the_contiguous_prefix)
{
	unsigned char buf[300];

	put(0, 100);
	put(200, 100);

	ck_assert_uint_eq(mps_reasm_read(&q, buf, sizeof(buf)), 100);
	ck_assert_mem_eq(buf, stream, 100);
	ck_assert_uint_eq(mps_reasm_read(&q, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 100);
}
END_TEST

START_TEST(test_dsns_wrapping_past_2_64_reassemble_in_order)
{
	reinit(UINT64_MAX - 99, DEFAULT_LIMIT);

	/* 2^64 falls at offset 100 of the stream. */
	put(150, 100);
	put(90, 20);
	ck_assert_uint_eq(mps_reasm_direct_len(&q, base, 1000), 90);
	put(0, 90);
	ck_assert_uint_eq(mps_reasm_ready(&q), 110);
	assert_result(put(60, 100), 40, 60, 0);
	ck_assert_uint_eq(mps_reasm_ready(&q), 250);

	assert_delivers(0, 250);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), 150);
	assert_result(put(100, 100), 0, 100, 0);
}
END_TEST

START_TEST(test_destroy_frees_every_held_segment)
{
	for (size_t off = 1; off < 2000; off += 7)
		put(off, 3);

	mps_reasm_destroy(&q);
	ck_assert_uint_eq(mps_reasm_seg_count(&q), 0);
	ck_assert_uint_eq(mps_reasm_mem_used(&q), 0);
}
END_TEST

/*
 * The model: which stream bytes the queue holds, and how far the program
 * has read. Every outcome of the queue is predicted from it.
 */
struct model {
	bool held[STREAM_LEN];
	unsigned char out[STREAM_LEN];
	size_t nxt;
	size_t held_count;
	size_t limit;
	uint64_t rng;
};

static size_t model_new_bytes(const struct model *m, size_t off, size_t len)
{
	size_t n = 0;

	for (size_t i = off; i < off + len; i++)
		n += i >= m->nxt && !m->held[i];

	return n;
}

static size_t model_ready(const struct model *m)
{
	size_t i = m->nxt;

	while (i < STREAM_LEN && m->held[i])
		i++;

	return i - m->nxt;
}

/*
 * Hands the program what may bypass the queue, as the connection core
 * would; returns how many bytes that was.
 */
static size_t model_deliver_directly(struct model *m, size_t off, size_t len)
{
	size_t n = mps_reasm_direct_len(&q, base + off, len);
	size_t free_run = 0;

	if (off == m->nxt) {
		while (free_run < len && !m->held[off + free_run])
			free_run++;
	}
	ck_assert_uint_eq(n, free_run);

	memcpy(m->out + m->nxt, stream + off, n);
	ck_assert_int_eq(mps_reasm_advance(&q, n), 0);
	m->nxt += n;

	return n;
}

static void model_insert(struct model *m, size_t off, size_t len)
{
	struct snapshot before = take_snapshot();
	size_t fresh = model_new_bytes(m, off, len);
	struct mps_reasm_result res;
	int rc = put_rc(off, len, &res);

	if (off + len > m->nxt && off + len - m->nxt > m->limit) {
		ck_assert_int_eq(rc, -ERANGE);
		assert_unchanged(&before);
		return;
	}
	if (rc == -ENOBUFS) {
		ck_assert_uint_gt(fresh, 0);
		assert_unchanged(&before);
		return;
	}

	ck_assert_int_eq(rc, 0);
	assert_result(res, fresh, len - fresh, 0);
	for (size_t i = off > m->nxt ? off : m->nxt; i < off + len; i++)
		m->held[i] = true;
	m->held_count += fresh;
}

/* Sends a held range again with one byte altered: one mismatch. */
static void model_forge(struct model *m, size_t off, size_t len)
{
	unsigned char forged[64];
	struct mps_reasm_result res;
	size_t n = 0;

	if (off < m->nxt)
		return;
	while (n < len && n < sizeof(forged) && m->held[off + n])
		n++;
	if (n == 0)
		return;

	memcpy(forged, stream + off, n);
	forged[n / 2] ^= 0x80;
	ck_assert_int_eq(mps_reasm_insert(&q, base + off, forged, n, &res), 0);
	assert_result(res, 0, n - 1, 1);
}

static void model_read(struct model *m, size_t want)
{
	size_t ready = model_ready(m);
	size_t got;

	ck_assert_uint_eq(mps_reasm_ready(&q), ready);
	got = mps_reasm_read(&q, m->out + m->nxt, want);
	ck_assert_uint_eq(got, want < ready ? want : ready);

	for (size_t i = m->nxt; i < m->nxt + got; i++)
		m->held[i] = false;
	m->nxt += got;
	m->held_count -= got;
}

static void model_check_accounting(const struct model *m)
{
	size_t segs = mps_reasm_seg_count(&q);

	ck_assert_uint_eq(mps_reasm_bytes_held(&q), m->held_count);
	ck_assert_uint_eq(mps_reasm_rcv_nxt(&q), base + m->nxt);
	ck_assert_uint_le(mps_reasm_mem_used(&q), m->limit);
	ck_assert_uint_ge(mps_reasm_mem_used(&q),
			  m->held_count + segs * overhead());
}

/* A random uint64_t below n. */
static size_t model_below(struct model *m, size_t n)
{
	return (size_t)(next_random(&m->rng) % n);
}

/*
 * A fragment of the stream near rcv_nxt: from a little before it (stale
 * retransmissions) to a little past the window (refused), mostly short,
 * one in sixteen long; one in ten starts right at rcv_nxt.
 */
static void model_fragment(struct model *m, size_t *off, size_t *len)
{
	size_t lead = model_below(m, m->limit + 300);
	size_t max_len = model_below(m, 16) ? 40 : 3000;

	*off = m->nxt + lead > 200 ? m->nxt + lead - 200 : 0;
	if (model_below(m, 10) == 0)
		*off = m->nxt;
	if (*off >= STREAM_LEN)
		*off = STREAM_LEN - 1;

	*len = 1 + model_below(m, max_len);
	if (*len > STREAM_LEN - *off)
		*len = STREAM_LEN - *off;
}

/* One random step: mostly a fragment, sometimes a read or a forgery. */
static void model_step(struct model *m)
{
	size_t off, len, direct;

	model_fragment(m, &off, &len);

	switch (model_below(m, 8)) {
	case 0:
		model_read(m, model_below(m, 5000));
		break;
	case 1:
		model_forge(m, off, len);
		break;
	default:
		direct = model_deliver_directly(m, off, len);
		if (direct < len)
			model_insert(m, off + direct, len - direct);
		break;
	}
}

START_TEST(test_random_fragments_reassemble_to_the_original_stream)
{
	struct model *m = calloc(1, sizeof(*m));
	long steps = 0;

	ck_assert_ptr_nonnull(m);
	m->limit = 16384;
	m->rng = UINT64_C(20240601);
	/* Start close enough to 2^64 that the stream wraps inside. */
	reinit(UINT64_MAX - 30000, m->limit);

	while (m->nxt < STREAM_LEN) {
		ck_assert_int_lt(++steps, 1000000);
		model_step(m);
		model_check_accounting(m);
	}

	ck_assert_mem_eq(m->out, stream, STREAM_LEN);
	ck_assert_uint_eq(mps_reasm_bytes_held(&q), 0);
	free(m);
}
END_TEST

static TCase *reasm_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);

	return tc;
}

static Suite *reasm_suite(void)
{
	Suite *s = suite_create("reasm");
	TCase *basic = reasm_tcase("basic");
	TCase *overlap = reasm_tcase("overlap");
	TCase *bound = reasm_tcase("bound");
	TCase *read = reasm_tcase("read");
	TCase *model = reasm_tcase("model");

	tcase_add_test(basic, test_init_refuses_a_zero_memory_bound);
	tcase_add_test(basic, test_in_order_segments_are_ready_at_once);
	tcase_add_test(basic, test_empty_insert_changes_nothing);
	tcase_add_test(basic, test_in_order_data_bypasses_an_empty_queue);
	tcase_add_test(basic, test_direct_delivery_stops_at_a_held_byte);
	tcase_add_test(basic, test_out_of_order_segments_fill_holes);
	tcase_add_test(basic, test_dsns_wrapping_past_2_64_reassemble_in_order);
	tcase_add_test(basic, test_destroy_frees_every_held_segment);
	suite_add_tcase(s, basic);

	tcase_add_test(overlap, test_bytes_before_rcv_nxt_count_as_duplicates);
	tcase_add_test(overlap, test_exact_duplicate_is_not_stored_twice);
	tcase_add_test(overlap,
		       test_overlap_at_the_front_stores_only_the_new_bytes);
	tcase_add_test(overlap,
		       test_overlap_at_the_back_stores_only_the_new_bytes);
	tcase_add_test(overlap, test_overlap_at_both_ends_stores_only_the_gap);
	tcase_add_test(overlap,
		       test_segment_over_several_held_ones_fills_each_hole);
	tcase_add_test(overlap,
		       test_segment_inside_a_held_one_is_all_duplicate);
	tcase_add_test(overlap,
		       test_mismatched_overlap_is_reported_and_not_delivered);
	suite_add_tcase(s, overlap);

	tcase_add_test(bound,
		       test_memory_bound_gives_enobufs_and_changes_nothing);
	tcase_add_test(bound, test_many_one_byte_fragments_run_into_the_bound);
	tcase_add_test(bound,
		       test_one_byte_fragments_in_sequence_share_one_segment);
	tcase_add_test(bound, test_segment_past_the_window_is_refused_whole);
	tcase_add_test(bound,
		       test_segment_straddling_both_window_edges_is_refused);
	suite_add_tcase(s, bound);

	tcase_add_test(read, test_consume_in_pieces_crosses_segment_boundaries);
	tcase_add_test(read,
		       test_partly_consumed_segment_keeps_memory_until_empty);
	tcase_add_test(read,
		       test_peek_describes_the_ready_bytes_without_copying);
	tcase_add_test(read, test_peek_finds_nothing_ahead_of_a_hole);
	tcase_add_test(read, test_read_copies_only_the_contiguous_prefix);
	suite_add_tcase(s, read);

	tcase_add_test(model,
		       test_random_fragments_reassemble_to_the_original_stream);
	tcase_set_timeout(model, 60);
	suite_add_tcase(s, model);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reasm_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
