/*
 * reasm.c: the receiver's reassembly queue, keyed by data sequence number.
 *
 * The queue is a doubly linked list of segments sorted by DSN. Positions
 * are compared as offsets from rcv_nxt (dsn - rcv_nxt, modulo 2^64): every
 * held byte lies in [rcv_nxt, rcv_nxt + mem_limit), so the offsets of held
 * bytes are small and ordered even where the DSNs wrap past 2^64.
 *
 * An insert runs twice over the same walk: a first pass compares the new
 * bytes with those held and prices the gaps it would fill, a second pass
 * stores them. The bound is checked between the two, so a refused insert
 * changes nothing.
 *
 * TODO: a segment that starts before the tail segment is placed by walking
 * the list from the head, O(segments) per insert; a peer that scatters
 * 1-byte fragments can make each insert walk up to
 * mem_limit / (mps_reasm_seg_overhead() + 1) segments. A balanced tree
 * keyed by offset would make it O(log n) without changing the interface.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "reasm.h"
#include "seq.h"

struct mps_reasm_seg {
	struct mps_reasm_seg *prev;
	struct mps_reasm_seg *next;
	/* DSN of the first byte held, data[off] */
	uint64_t dsn;
	/* bytes already consumed from the front; freed with the segment */
	size_t off;
	/* bytes held, from data + off to the end of the allocation */
	size_t len;
	unsigned char data[];
};

/*
 * A gap that starts where a segment shorter than this ends is appended to
 * that segment instead of getting a header of its own. This caps the
 * overhead of streams of small fragments; the limit keeps the cost of the
 * realloc copy small.
 */
#define MPS_REASM_MERGE_MAX 1024

/* New bytes of one insert, as offsets from rcv_nxt. */
struct mps_reasm_span {
	uint64_t start;
	uint64_t end;
	/* the byte at start */
	const unsigned char *data;
};

size_t mps_reasm_seg_overhead(void)
{
	return sizeof(struct mps_reasm_seg);
}

static uint64_t mps_reasm_off(const struct mps_reasm *q, uint64_t dsn)
{
	return dsn - q->rcv_nxt;
}

static uint64_t mps_reasm_seg_start(const struct mps_reasm *q,
				    const struct mps_reasm_seg *seg)
{
	return mps_reasm_off(q, seg->dsn);
}

static uint64_t mps_reasm_seg_end(const struct mps_reasm *q,
				  const struct mps_reasm_seg *seg)
{
	return mps_reasm_seg_start(q, seg) + seg->len;
}

/* Memory a segment of cap bytes (consumed ones included) is charged. */
static size_t mps_reasm_seg_cost(size_t cap)
{
	return sizeof(struct mps_reasm_seg) + cap;
}

int mps_reasm_init(struct mps_reasm *q, uint64_t rcv_nxt, size_t mem_limit)
{
	if (mem_limit == 0)
		return -EINVAL;

	memset(q, 0, sizeof(*q));
	q->rcv_nxt = rcv_nxt;
	q->mem_limit = mem_limit;

	return 0;
}

/* Frees every segment; the queue must be initialised again before use. */
void mps_reasm_destroy(struct mps_reasm *q)
{
	struct mps_reasm_seg *seg = q->head;

	while (seg) {
		struct mps_reasm_seg *next = seg->next;

		free(seg);
		seg = next;
	}

	memset(q, 0, sizeof(*q));
}

/* The first segment that ends after offset start, or NULL. */
static struct mps_reasm_seg *mps_reasm_find(const struct mps_reasm *q,
					    uint64_t start)
{
	struct mps_reasm_seg *seg;

	/* Fast paths: beyond everything held, or within the tail. */
	if (!q->tail || mps_reasm_seg_end(q, q->tail) <= start)
		return NULL;
	if (mps_reasm_seg_start(q, q->tail) <= start)
		return q->tail;

	/*
	 * Holes are filled mostly from the front, by the slower subflow, so
	 * search from the head. The tail ends after start: this stops.
	 */
	seg = q->head;
	while (mps_reasm_seg_end(q, seg) <= start)
		seg = seg->next;

	return seg;
}

/* Puts seg between prev and next, either of which may be NULL. */
static void mps_reasm_link(struct mps_reasm *q,
			   struct mps_reasm_seg *seg,
			   struct mps_reasm_seg *prev,
			   struct mps_reasm_seg *next)
{
	seg->prev = prev;
	seg->next = next;
	if (prev)
		prev->next = seg;
	else
		q->head = seg;
	if (next)
		next->prev = seg;
	else
		q->tail = seg;
}

static void mps_reasm_unlink(struct mps_reasm *q, struct mps_reasm_seg *seg)
{
	if (seg->prev)
		seg->prev->next = seg->next;
	else
		q->head = seg->next;
	if (seg->next)
		seg->next->prev = seg->prev;
	else
		q->tail = seg->prev;
}

/* Whether a gap starting at offset start is to be appended to prev. */
static bool mps_reasm_can_merge(const struct mps_reasm *q,
				const struct mps_reasm_seg *prev,
				uint64_t start)
{
	return prev && mps_reasm_seg_end(q, prev) == start &&
	       prev->off + prev->len < MPS_REASM_MERGE_MAX;
}

/*
 * Appends n bytes to seg, which may move. Returns 0 or -ENOMEM (nothing
 * changed then).
 */
static int mps_reasm_extend(struct mps_reasm *q,
			    struct mps_reasm_seg *seg,
			    const unsigned char *src,
			    size_t n)
{
	size_t cap = seg->off + seg->len;
	struct mps_reasm_seg *grown;

	grown = realloc(seg, mps_reasm_seg_cost(cap + n));
	if (!grown)
		return -ENOMEM;

	mps_reasm_link(q, grown, grown->prev, grown->next);
	memcpy(grown->data + cap, src, n);
	grown->len += n;
	q->mem_used += n;
	q->bytes_held += n;

	return 0;
}

/*
 * Stores n bytes at offset start in a new segment between prev and next.
 * Returns 0 or -ENOMEM (nothing changed then).
 */
static int mps_reasm_add(struct mps_reasm *q,
			 struct mps_reasm_seg *prev,
			 struct mps_reasm_seg *next,
			 uint64_t start,
			 const unsigned char *src,
			 size_t n)
{
	struct mps_reasm_seg *seg = malloc(mps_reasm_seg_cost(n));

	if (!seg)
		return -ENOMEM;

	seg->dsn = q->rcv_nxt + start;
	seg->off = 0;
	seg->len = n;
	memcpy(seg->data, src, n);
	mps_reasm_link(q, seg, prev, next);
	q->mem_used += mps_reasm_seg_cost(n);
	q->bytes_held += n;
	q->seg_count++;

	return 0;
}

/*
 * Fills the gap [start, start + n) that ends at next (NULL: past the tail):
 * prices it into *cost when planning, stores it when committing. Returns 0
 * or -ENOMEM.
 */
static int mps_reasm_fill(struct mps_reasm *q,
			  struct mps_reasm_seg *next,
			  uint64_t start,
			  size_t n,
			  const unsigned char *src,
			  size_t *cost)
{
	struct mps_reasm_seg *prev = next ? next->prev : q->tail;
	bool merge = mps_reasm_can_merge(q, prev, start);

	if (cost) {
		*cost += merge ? n : mps_reasm_seg_cost(n);
		return 0;
	}

	if (merge)
		return mps_reasm_extend(q, prev, src, n);

	return mps_reasm_add(q, prev, next, start, src, n);
}

/*
 * Compares n new bytes with those seg holds from offset start and counts
 * them as duplicate or mismatched. The held bytes are never replaced: the
 * first copy of a DSN range is the one delivered, and a differing second
 * copy is reported so that the caller can act on the subflow that sent it.
 */
static void mps_reasm_compare(const struct mps_reasm *q,
			      const struct mps_reasm_seg *seg,
			      uint64_t start,
			      const unsigned char *src,
			      size_t n,
			      struct mps_reasm_result *res)
{
	const unsigned char *held;
	size_t differ = 0;

	held = seg->data + seg->off + (start - mps_reasm_seg_start(q, seg));
	if (memcmp(held, src, n) != 0) {
		for (size_t i = 0; i < n; i++)
			differ += held[i] != src[i];
	}

	res->duplicate += n - differ;
	res->mismatched += differ;
}

static uint64_t mps_reasm_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Walks the span against the held segments in order, alternating between
 * gaps (new bytes) and overlaps (bytes held already).
 *
 * Planning (cost not NULL): counts every byte into *res and adds the memory
 * the gaps would take to *cost; changes nothing. Committing (cost NULL):
 * stores the gaps and counts only res->accepted. Both passes take the same
 * decisions, since no segment that decides a merge is touched before it is
 * consulted. Returns 0 or -ENOMEM (committing only; what was stored before
 * the failure stays, and res->accepted counts it).
 */
static int mps_reasm_walk(struct mps_reasm *q,
			  const struct mps_reasm_span *sp,
			  struct mps_reasm_result *res,
			  size_t *cost)
{
	struct mps_reasm_seg *seg = mps_reasm_find(q, sp->start);
	uint64_t cur = sp->start;
	int err;

	while (cur < sp->end) {
		const unsigned char *src = sp->data + (cur - sp->start);
		uint64_t seg_start, upto;
		size_t n;

		seg_start = seg ? mps_reasm_seg_start(q, seg) : sp->end;
		if (seg_start > cur) {
			upto = mps_reasm_min(seg_start, sp->end);
			n = upto - cur;
			err = mps_reasm_fill(q, seg, cur, n, src, cost);
			if (err)
				return err;
			res->accepted += n;
			cur = upto;
			continue;
		}

		upto = mps_reasm_min(mps_reasm_seg_end(q, seg), sp->end);
		n = upto - cur;
		if (cost)
			mps_reasm_compare(q, seg, cur, src, n, res);
		cur = upto;
		seg = seg->next;
	}

	return 0;
}

/*
 * Turns (dsn, len) into a span of offsets from rcv_nxt, counting the bytes
 * before rcv_nxt into res->duplicate (the span is empty when all are).
 * Returns 0, or -ERANGE if a byte lies at or past rcv_nxt + mem_limit.
 *
 * The data-level receive window (RFC 8684 section 3.3.4) is the caller's to
 * enforce and should be narrower; this is the queue's own backstop, since no
 * byte past it could be held within the bound.
 */
static int mps_reasm_clip(const struct mps_reasm *q,
			  uint64_t dsn,
			  const unsigned char *data,
			  size_t len,
			  struct mps_reasm_span *sp,
			  struct mps_reasm_result *res)
{
	uint64_t start = mps_reasm_off(q, dsn);

	if (mps_dsn_before(dsn, q->rcv_nxt)) {
		uint64_t behind = q->rcv_nxt - dsn;
		size_t dup = behind < len ? (size_t)behind : len;

		res->duplicate = dup;
		data += dup;
		len -= dup;
		start = 0;
	}

	if (start > q->mem_limit || len > q->mem_limit - start)
		return -ERANGE;

	sp->start = start;
	sp->end = start + len;
	sp->data = data;

	return 0;
}

/*
 * Copies the new bytes of [dsn, dsn + len) into the queue. Bytes before
 * rcv_nxt count as duplicates and are dropped; bytes the queue holds
 * already are compared, never stored twice nor replaced (see
 * mps_reasm_compare). data stays the caller's.
 *
 * Returns 0 and fills *res on success, or, with *res all zero and the queue
 * unchanged:
 *   -ERANGE   a byte lies at or past rcv_nxt + mem_limit;
 *   -ENOBUFS  storing the new bytes would take mem_used past mem_limit.
 * -ENOMEM (malloc failed) may leave some gaps stored: res->accepted says
 * how many bytes, the queue stays consistent.
 *
 * The subflow has acknowledged a refused segment already; it comes again
 * only through the peer's data-level retransmission.
 */
int mps_reasm_insert(struct mps_reasm *q,
		     uint64_t dsn,
		     const void *data,
		     size_t len,
		     struct mps_reasm_result *res)
{
	struct mps_reasm_result plan = {0};
	struct mps_reasm_span sp;
	size_t cost = 0;
	int err;

	memset(res, 0, sizeof(*res));
	if (len == 0)
		return 0;

	err = mps_reasm_clip(q, dsn, data, len, &sp, &plan);
	if (err)
		return err;

	mps_reasm_walk(q, &sp, &plan, &cost);
	if (cost > q->mem_limit - q->mem_used)
		return -ENOBUFS;

	err = mps_reasm_walk(q, &sp, res, NULL);
	if (err)
		return err;

	res->duplicate = plan.duplicate;
	res->mismatched = plan.mismatched;

	return 0;
}

/*
 * How many leading bytes of a segment [dsn, dsn + len) the caller may hand
 * to the program directly, bypassing the queue: all of them when dsn is
 * rcv_nxt and nothing is held, up to the first held byte when something
 * is, none when dsn is not rcv_nxt. The caller then reports what it
 * delivered with mps_reasm_advance and inserts whatever is left.
 */
size_t mps_reasm_direct_len(const struct mps_reasm *q, uint64_t dsn, size_t len)
{
	uint64_t hole;

	if (dsn != q->rcv_nxt)
		return 0;
	if (!q->head)
		return len;

	hole = mps_reasm_seg_start(q, q->head);

	return hole < len ? (size_t)hole : len;
}

/*
 * Moves rcv_nxt past n bytes the caller delivered without queueing them.
 * Returns 0, or -EINVAL if that would pass a held byte (n larger than
 * mps_reasm_direct_len allows); nothing changes then.
 */
int mps_reasm_advance(struct mps_reasm *q, size_t n)
{
	if (q->head && n > mps_reasm_seg_start(q, q->head))
		return -EINVAL;

	q->rcv_nxt += n;

	return 0;
}

/* Contiguous bytes held from rcv_nxt on, ready for the program. */
size_t mps_reasm_ready(const struct mps_reasm *q)
{
	const struct mps_reasm_seg *seg = q->head;
	size_t ready = 0;

	if (!seg || seg->dsn != q->rcv_nxt)
		return 0;

	for (; seg; seg = seg->next) {
		ready += seg->len;
		if (!seg->next || seg->next->dsn != seg->dsn + seg->len)
			break;
	}

	return ready;
}

/*
 * Describes the ready bytes in at most iovcnt entries of iov, without
 * copying; the memory stays the queue's and is valid until the next
 * insert, consume, read or destroy. Returns the number of entries filled
 * (0 when nothing is ready) and, if bytes is not NULL, their total length;
 * -EINVAL if iovcnt is negative.
 */
int mps_reasm_peek(const struct mps_reasm *q,
		   struct iovec *iov,
		   int iovcnt,
		   size_t *bytes)
{
	const struct mps_reasm_seg *seg = q->head;
	uint64_t expect = q->rcv_nxt;
	size_t total = 0;
	int n = 0;

	if (iovcnt < 0)
		return -EINVAL;

	for (; seg && n < iovcnt && seg->dsn == expect; seg = seg->next) {
		iov[n].iov_base = (void *)(seg->data + seg->off);
		iov[n].iov_len = seg->len;
		total += seg->len;
		expect += seg->len;
		n++;
	}

	if (bytes)
		*bytes = total;

	return n;
}

/*
 * Drops n ready bytes from the front, moving rcv_nxt past them and freeing
 * segments emptied. A partly consumed segment keeps its memory charged
 * until it empties. Returns 0, or -EINVAL if fewer than n bytes are ready
 * (nothing changes then).
 */
int mps_reasm_consume(struct mps_reasm *q, size_t n)
{
	if (n > mps_reasm_ready(q))
		return -EINVAL;

	while (n > 0) {
		struct mps_reasm_seg *seg = q->head;
		size_t take = n < seg->len ? n : seg->len;

		seg->off += take;
		seg->len -= take;
		seg->dsn += take;
		q->rcv_nxt += take;
		q->bytes_held -= take;
		n -= take;

		if (seg->len == 0) {
			mps_reasm_unlink(q, seg);
			q->mem_used -= mps_reasm_seg_cost(seg->off);
			q->seg_count--;
			free(seg);
		}
	}

	return 0;
}

/* Copies up to len ready bytes into buf and consumes them; returns how many. */
size_t mps_reasm_read(struct mps_reasm *q, void *buf, size_t len)
{
	const struct mps_reasm_seg *seg = q->head;
	unsigned char *out = buf;
	uint64_t expect = q->rcv_nxt;
	size_t done = 0;

	for (; seg && done < len && seg->dsn == expect; seg = seg->next) {
		size_t take = len - done < seg->len ? len - done : seg->len;

		memcpy(out + done, seg->data + seg->off, take);
		done += take;
		expect += take;
	}

	mps_reasm_consume(q, done);

	return done;
}

uint64_t mps_reasm_rcv_nxt(const struct mps_reasm *q)
{
	return q->rcv_nxt;
}

size_t mps_reasm_bytes_held(const struct mps_reasm *q)
{
	return q->bytes_held;
}

size_t mps_reasm_mem_used(const struct mps_reasm *q)
{
	return q->mem_used;
}

size_t mps_reasm_seg_count(const struct mps_reasm *q)
{
	return q->seg_count;
}
