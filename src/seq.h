/*
 * seq.h: arithmetic on MPTCP sequence numbers.
 *
 * Two sequence spaces exist. The data sequence space of a connection is
 * 64 bits wide (RFC 8684 section 3.3.1); each subflow keeps the 32-bit
 * sequence space of its TCP connection. Both wrap, so no comparison in the
 * tree may use < or > on raw values: a number is "before" another when the
 * forward distance from it to the other is less than half the space. The
 * helpers below are that rule, once.
 *
 * Everything here is a pure function: any thread may call it.
 */
#ifndef MPS_SEQ_H
#define MPS_SEQ_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Signed distance from b to a in the 64-bit data sequence space: positive
 * when a lies after b. Exact while the two are less than 2^63 apart.
 * (GCC defines the unsigned to signed conversion as modular.)
 */
static inline int64_t mps_dsn_diff(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b);
}

static inline bool mps_dsn_before(uint64_t a, uint64_t b)
{
	return mps_dsn_diff(a, b) < 0;
}

static inline bool mps_dsn_before_eq(uint64_t a, uint64_t b)
{
	return mps_dsn_diff(a, b) <= 0;
}

static inline bool mps_dsn_after(uint64_t a, uint64_t b)
{
	return mps_dsn_diff(a, b) > 0;
}

static inline bool mps_dsn_after_eq(uint64_t a, uint64_t b)
{
	return mps_dsn_diff(a, b) >= 0;
}

/*
 * Whether dsn lies in the half-open range [lo, hi), walking forward from lo.
 * An empty range (lo == hi) holds nothing. Correct across 2^64 for any
 * range shorter than the whole space.
 */
static inline bool mps_dsn_between(uint64_t dsn, uint64_t lo, uint64_t hi)
{
	return dsn - lo < hi - lo;
}

static inline uint64_t mps_dsn_max(uint64_t a, uint64_t b)
{
	return mps_dsn_after(a, b) ? a : b;
}

static inline uint64_t mps_dsn_min(uint64_t a, uint64_t b)
{
	return mps_dsn_before(a, b) ? a : b;
}

/* The lower 32 bits, as a DSN or data ACK is sent in its 4-byte form. */
static inline uint32_t mps_dsn_low32(uint64_t dsn)
{
	return (uint32_t)dsn;
}

/* The same rules for 32-bit subflow (TCP) sequence numbers. */
static inline int32_t mps_ssn_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static inline bool mps_ssn_before(uint32_t a, uint32_t b)
{
	return mps_ssn_diff(a, b) < 0;
}

static inline bool mps_ssn_before_eq(uint32_t a, uint32_t b)
{
	return mps_ssn_diff(a, b) <= 0;
}

static inline bool mps_ssn_after(uint32_t a, uint32_t b)
{
	return mps_ssn_diff(a, b) > 0;
}

static inline bool mps_ssn_after_eq(uint32_t a, uint32_t b)
{
	return mps_ssn_diff(a, b) >= 0;
}

/* Whether ssn lies in [lo, hi), walking forward from lo; see above. */
static inline bool mps_ssn_between(uint32_t ssn, uint32_t lo, uint32_t hi)
{
	return (uint32_t)(ssn - lo) < (uint32_t)(hi - lo);
}

/*
 * The 64-bit value within [ref - 2^31, ref + 2^31) whose lower 32 bits are
 * wire: a 4-byte DSN expanded against rcv_nxt, or a 4-byte data ACK against
 * snd_una (RFC 8684 section 3.3). Details in seq.c.
 */
uint64_t mps_dsn_expand(uint32_t wire, uint64_t ref);

#endif /* MPS_SEQ_H */
