/*
 * reasm.h: the receiver's reassembly queue, keyed by data sequence number.
 *
 * Bytes of one MPTCP connection arrive over several subflows, each in the
 * order of its own TCP stream but not of the connection's. The queue holds
 * what arrived ahead of rcv_nxt, the next DSN owed to the program, until
 * the bytes before it arrive, and hands out the contiguous run at rcv_nxt.
 *
 * Every queue belongs to one connection and is used only by the event-loop
 * thread; nothing here locks. A queue never holds more than its memory
 * bound, counting each segment's bookkeeping as well as its bytes, so a
 * peer that sends many tiny fragments runs into the bound as quickly as
 * one that sends large ones.
 *
 * The common case costs nothing: when a segment starts at rcv_nxt and the
 * queue holds nothing before its end, the caller delivers it straight to
 * the program and only moves rcv_nxt (mps_reasm_direct_len, then
 * mps_reasm_advance). Only data that arrives ahead of a hole is copied in.
 */
#ifndef MPS_REASM_H
#define MPS_REASM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mps_reasm_seg;

/*
 * Where the bytes of one insert went. On success the three add up to the
 * length given.
 */
struct mps_reasm_result {
	/* new bytes, now held */
	size_t accepted;
	/* bytes before rcv_nxt, or held already with the same content */
	size_t duplicate;
	/* bytes held already with different content; the held ones stay */
	size_t mismatched;
};

/*
 * One connection's queue. The caller provides the storage (usually inside
 * its connection) and reads it only through the functions below; the
 * fields are private to reasm.c and owned by the event-loop thread.
 */
struct mps_reasm {
	/* segments sorted by DSN, disjoint, none empty */
	struct mps_reasm_seg *head;
	struct mps_reasm_seg *tail;
	/* next DSN owed to the program; all held bytes lie after it */
	uint64_t rcv_nxt;
	/* hard bound on mem_used, and the width of the acceptable range */
	size_t mem_limit;
	/* bytes allocated for segments, headers included */
	size_t mem_used;
	/* data bytes held, not yet consumed */
	size_t bytes_held;
	size_t seg_count;
};

/*
 * All functions below are called by the event-loop thread that owns q;
 * their full contracts are above their definitions in reasm.c.
 */

/* 0, or -EINVAL for a zero bound. destroy frees every segment. */
int mps_reasm_init(struct mps_reasm *q, uint64_t rcv_nxt, size_t mem_limit);
void mps_reasm_destroy(struct mps_reasm *q);

/* Copies the new bytes in: 0, -ERANGE, -ENOBUFS (nothing stored), -ENOMEM. */
int mps_reasm_insert(struct mps_reasm *q,
		     uint64_t dsn,
		     const void *data,
		     size_t len,
		     struct mps_reasm_result *res);

/* The bypass: bytes deliverable without queueing, and rcv_nxt moved past. */
size_t
mps_reasm_direct_len(const struct mps_reasm *q, uint64_t dsn, size_t len);
int mps_reasm_advance(struct mps_reasm *q, size_t n);

/* The read side: contiguous bytes at rcv_nxt, without copy or with one. */
size_t mps_reasm_ready(const struct mps_reasm *q);
int mps_reasm_peek(const struct mps_reasm *q,
		   struct iovec *iov,
		   int iovcnt,
		   size_t *bytes);
int mps_reasm_consume(struct mps_reasm *q, size_t n);
size_t mps_reasm_read(struct mps_reasm *q, void *buf, size_t len);

uint64_t mps_reasm_rcv_nxt(const struct mps_reasm *q);
/* data bytes held */
size_t mps_reasm_bytes_held(const struct mps_reasm *q);
/* data bytes held or consumed from a segment not yet freed, plus headers */
size_t mps_reasm_mem_used(const struct mps_reasm *q);
size_t mps_reasm_seg_count(const struct mps_reasm *q);
/* what each segment costs beyond its data bytes */
size_t mps_reasm_seg_overhead(void);

#endif /* MPS_REASM_H */
