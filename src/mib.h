/*
 * mib.h: the process's counters, in the spirit of the kernel's MPTCP MIB.
 *
 * Two kinds.  Counters of the runtime (negotiation, the path manager, the
 * join listener, how connections end) are atomics incremented where the
 * thing happens.  Counters of the protocol core are kept per connection
 * by the core itself (struct mps_conn_stats), so that its hot paths stay
 * as they are: loop.c folds a connection's stats in here when the
 * connection ends (mps_mib_fold_conn()), and a query adds those of the
 * live connections to a snapshot (mps_mib_add_stats()).  The control
 * socket reports them by name (mps_mib_name()).
 *
 * Threads: increments and snapshots from any thread (relaxed atomics: a
 * snapshot is not one instant, only each counter is exact).
 */
#ifndef MPS_MIB_H
#define MPS_MIB_H

#include <stdint.h>

#include "conn.h"

enum mps_mib_id {
	/* what connections became */
	MPS_MIB_MPTCP_CLIENT,	     /* converted, this end connected */
	MPS_MIB_MPTCP_SERVER,	     /* converted, this end accepted */
	MPS_MIB_PLAIN_CLIENT,	     /* no MSS signal in the SYN-ACK */
	MPS_MIB_PLAIN_SERVER,	     /* no MSS signal in the SYN */
	MPS_MIB_RELAYED,	     /* plain peer behind a socketpair */
	MPS_MIB_FALLBACK_FIRST,	     /* server: no valid first record in
					time (folded from the core) */
	MPS_MIB_FALLBACK_MP_FAIL,    /* checksum failure on the only subflow
					(folded from the core) */
	MPS_MIB_FALLBACK_OTHER,	     /* any other fallback (folded) */
	/* joins */
	MPS_MIB_JOIN_OPENED,	     /* join connect() started */
	MPS_MIB_JOIN_CONNECT_FAILED, /* its connect failed or timed out */
	MPS_MIB_JOIN_REFUSED_TOKEN,  /* arrived naming no live connection */
	MPS_MIB_JOIN_REFUSED_CAP,    /* MPTCPSHIM_MAX_SUBFLOWS reached */
	MPS_MIB_JOIN_REFUSED_ADDR,   /* to an address withdrawn by control */
	MPS_MIB_JOIN_REFUSED_HALF_OPEN, /* the process's half-open cap */
	MPS_MIB_JOIN_DROPPED,	     /* no join record, or none in time */
	/* how connections ended */
	MPS_MIB_CONN_CLOSED,	     /* cleanly */
	MPS_MIB_RESET_PEER,	     /* ECONNRESET: the peer's reset */
	MPS_MIB_RESET_ABORT,	     /* the program aborted or went away */
	MPS_MIB_RESET_TIMEOUT,	     /* ETIMEDOUT */
	MPS_MIB_RESET_OTHER,	     /* any other error */
	MPS_MIB_SUBFLOW_DOWN,	     /* closed: link or address gone */
	MPS_MIB_SUBFLOW_WITHDRAWN,   /* closed: address withdrawn (control) */
	MPS_MIB_DIRECT_BYTES,	     /* program bytes that skipped the loop
					thread (direct send, loop.h) */
	/* the core's per-connection stats, summed */
	MPS_MIB_BYTES_IN,
	MPS_MIB_BYTES_OUT,
	MPS_MIB_JOINS_ACCEPTED,
	MPS_MIB_JOINS_REFUSED,	     /* wrong token or HMAC, replay, early */
	MPS_MIB_JOINS_REPLAYED,	     /* of which a SYN nonce seen before */
	MPS_MIB_JOINS_BAD_HMAC,	     /* of which a wrong HMAC */
	MPS_MIB_JOINS_HALF_OPEN,     /* over the half-open cap */
	MPS_MIB_CSUM_ERRORS,
	MPS_MIB_PROTOCOL_ERRORS,     /* subflows reset for breaking rules */
	MPS_MIB_FLOODS,		     /* of which floods: duplicates, signals */
	MPS_MIB_WINDOW_ERRORS,
	MPS_MIB_INCONSISTENT_DATA,
	MPS_MIB_MP_FAIL,
	MPS_MIB_LATE_FIRST,	     /* server: MP_CAPABLE after its fallback
					timer; reset, never passed on */
	MPS_MIB_REINJECTED_BYTES,
	MPS_MIB_DUP_BYTES,
	MPS_MIB_STALLS,
	MPS_MIB_ADDRS_ACCEPTED,
	MPS_MIB_ADDRS_REFUSED,
	MPS_MIB_SIGNALS_REFUSED,
	MPS_MIB_EVENTS_DROPPED,
	/* the control socket itself */
	MPS_MIB_CTL_REFUSED,	     /* a client of another user */
	MPS_MIB_CTL_DROPPED,	     /* misbehaved: too long, too slow */
	MPS_MIB_COUNT,
};

void mps_mib_inc(enum mps_mib_id id);
void mps_mib_add(enum mps_mib_id id, uint64_t n);

/* Every counter as it is now, into out[MPS_MIB_COUNT]. */
void mps_mib_snapshot(uint64_t *out);

/* The name a counter is reported under (a lowercase word with '_'). */
const char *mps_mib_name(enum mps_mib_id id);

/*
 * Add one connection's core stats to out[MPS_MIB_COUNT]; server tells
 * how a fallback without MP_FAIL is to be read.  Pure.
 */
void mps_mib_add_stats(uint64_t *out,
		       const struct mps_conn_stats *st,
		       bool server);

/* The same, into the process's counters: a connection ended. */
void mps_mib_fold_conn(const struct mps_conn_stats *st, bool server);

/* In a fork child: the child's counters start from zero. */
void mps_mib_child(void);

#endif /* MPS_MIB_H */
