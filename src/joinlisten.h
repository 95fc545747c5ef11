/*
 * joinlisten.h: the process's join listeners, where MP_JOIN subflows of
 * its server-side connections arrive, never seen by the program.
 *
 * Threads: the loop thread only.
 */
#ifndef MPS_JOINLISTEN_H
#define MPS_JOINLISTEN_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

/* How long an accepted join may take to send its first record. */
#define MPS_JL_FIRST_TIMEOUT 2.0

/* Joins waiting for their first record at once; more are refused. */
#define MPS_JL_MAX_PENDING 64

/*
 * Joins of the whole process that a connection took but that have not
 * proved the keys yet (mps_conn_half_open_joins()).  A join that arrives
 * when this many are half open is refused before any connection sees it,
 * so that a flood of joins with valid tokens costs the process a bounded
 * number of subflows, whatever the number of its connections
 * (MPS_CONN_MAX_HALF_OPEN bounds each connection).
 */
#define MPS_JL_MAX_HALF_OPEN 64

/*
 * A join whose first record names token arrived on fd (non-blocking,
 * loop-owned), after buf[0..len) was read from it.  The callee takes fd
 * and returns 0, or returns -ENOENT (unknown token) and leaves fd to the
 * caller, which refuses the join.
 */
typedef int (*mps_jl_deliver_fn)(uint32_t token,
				 int fd,
				 const uint8_t *buf,
				 size_t len);

/* Remember the loop and the delivery function (once per loop). */
void mps_jl_init(struct ev_loop *loop, mps_jl_deliver_fn deliver);

/*
 * The port (host order) of the join listener for connections of family
 * (AF_INET or AF_INET6; an AF_INET6 listener is dual-stack), opening it
 * on first use.  Returns the port or -errno.
 */
int mps_jl_port(int family);

/* In a fork child: forget the parent's listeners (their descriptors are
 * loop-owned and already closed by mps_fdtab_child()). */
void mps_jl_child(void);

#endif /* MPS_JOINLISTEN_H */
