/*
 * seq.c: expansion of 4-byte data sequence numbers and data ACKs.
 *
 * Pure functions; any thread may call them.
 */
#include "seq.h"

/*
 * The 64-bit value nearest to ref whose lower 32 bits are wire: the result
 * lies in [ref - 2^31, ref + 2^31 - 1], so a wire value exactly 2^31 away
 * from ref is taken as behind it. The arithmetic is modular, which makes it
 * correct across 2^32 and across 2^64.
 *
 * RFC 8684 section 3.3: a receiver MUST accept the 4-byte form of a DSN
 * and promote it to 64 bits, the upper half advancing each time the lower
 * half wraps. Expanding against a reference that moves with the connection
 * (rcv_nxt for a DSN, snd_una for a data ACK) does exactly that, and a
 * value that lands far from the reference is for the caller to refuse
 * (the sanity check the same section asks for).
 */
uint64_t mps_dsn_expand(uint32_t wire, uint64_t ref)
{
	int32_t delta = (int32_t)(wire - mps_dsn_low32(ref));

	return ref + (uint64_t)(int64_t)delta;
}
