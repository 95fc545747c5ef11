/*
 * conn.h: the MPTCP state machine of one connection, without sockets.
 *
 * The connection core is driven entirely by its caller: bytes read from a
 * subflow's kernel socket go in through mps_conn_sf_input(), bytes the
 * program wrote go in through mps_conn_app_write(), and time goes in
 * through mps_conn_tick().  What the core wants written to a subflow, and
 * what it has ready for the program, the caller takes out with the
 * peek/consume pairs below.  Nothing here blocks, sleeps or touches a
 * descriptor, so the unit tests can wire two cores back to back and feed
 * them bytes and time.
 *
 * Records are cut lazily, when the caller peeks a subflow: after any call
 * that may give a subflow something to carry (input, a program write,
 * read or shutdown, abort, tick), the caller peeks every subflow.  That is
 * also what batches data ACKs: one per peek at most.
 *
 * Threads: a connection is owned by the event-loop thread of its process;
 * no function here may be called from any other thread.
 *
 * Subflows are numbered from 0 (the initial subflow) in the order the
 * caller adds them.  This interface carries one subflow today; the numbers
 * exist so that MP_JOIN subflows can be added without changing it.
 */
#ifndef MPS_CONN_H
#define MPS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mps_token_table;
struct mps_conn;

/* Which side of the initial subflow this end is. */
enum mps_role {
	MPS_ROLE_CLIENT,
	MPS_ROLE_SERVER,
};

/* The connection's life, as the caller needs to see it. */
enum mps_conn_state {
	MPS_CONN_HANDSHAKE,   /* MP_CAPABLE exchange not yet complete */
	MPS_CONN_ESTABLISHED, /* MPTCP in both directions */
	MPS_CONN_FALLBACK,    /* plain TCP: bytes pass through unframed */
	MPS_CONN_CLOSED,      /* both DATA_FINs exchanged and acknowledged,
				 or the subflow ended after the peer's
				 DATA_FIN with nothing of ours unacked */
	MPS_CONN_RESET,	      /* aborted; mps_conn_error() says how */
};

/*
 * The data window a sender may fill before the receiver's first window
 * advertisement: in-band records carry no TCP window, so both ends start
 * from this.  A rcv_buf below it is raised to it.
 */
#define MPS_CONN_INITIAL_WINDOW 65535

/* Settings fixed when the connection is created. */
struct mps_conn_params {
	int version;	      /* 1 (RFC 8684) or 0 (RFC 6824): the highest
				 version this end offers or accepts */
	bool checksum;	      /* this end requires DSS checksums */
	uint32_t rcv_buf;     /* bytes held for the program before the
				 advertised window closes */
	uint32_t snd_buf;     /* bytes of program data held until the
				 peer's data ACK covers them */
	uint64_t fallback_us; /* server only: how long, from creation, to
				 wait for the client's first complete
				 record before falling back to plain TCP;
				 0 waits forever */
};

/*
 * Create a connection.  The token table draws this end's key, unique among
 * the process's live connections.  Returns NULL with errno set on failure.
 */
struct mps_conn *mps_conn_new(enum mps_role role,
			      const struct mps_conn_params *params,
			      struct mps_token_table *tokens,
			      uint64_t now_us);

/* Free a connection: its token leaves the table and its keys are wiped. */
void mps_conn_free(struct mps_conn *conn);

/* Add a subflow; returns its number (0 for the first) or negative errno. */
int mps_conn_sf_add(struct mps_conn *conn);

/*
 * Feed bytes read from subflow sf.  Returns 0, or a negative errno when
 * the subflow broke the protocol: the core has then queued an MP_TCPRST
 * (reason 1; v0 has none, MP_FASTCLOSE goes instead) for that subflow, and
 * the caller writes what mps_conn_sf_peek() still gives and closes the
 * subflow.  With one subflow the connection is then RESET (ECONNRESET).
 *   -EPROTO   a malformed record, an option out of place, a wrong key
 *             echo, data outside the advertised window or after DATA_FIN;
 *   -EBADMSG  a DSS checksum mismatch;
 *   -ENOBUFS  out-of-order data beyond the reassembly memory bound, or
 *             more bytes than mps_conn_sf_rx_room() allowed (FALLBACK);
 *   -EINVAL   no such subflow.
 * A valid MP_FASTCLOSE or MP_TCPRST from the peer returns 0 and leaves the
 * connection RESET.  Once RESET, input is discarded.
 */
int mps_conn_sf_input(struct mps_conn *conn,
		      int sf,
		      const uint8_t *buf,
		      size_t len);

/*
 * How many bytes mps_conn_sf_input() accepts from subflow sf now.  While
 * the connection speaks MPTCP the peer respects the advertised data window,
 * so this is SIZE_MAX and the caller reads freely (it must keep reading, or
 * the data ACKs that carry the peer's window stop arriving).  In FALLBACK,
 * and on a server still waiting for the client's first record, it is the
 * room left in the program's receive buffer: the caller reads no more, so
 * that a slow program pushes back on the kernel socket as plain TCP does.
 * Feeding more returns -ENOBUFS.
 */
size_t mps_conn_sf_rx_room(const struct mps_conn *conn, int sf);

/*
 * Bytes waiting to be written to subflow sf, as up to iovcnt iovecs that
 * stay valid until the next call into the core.  Returns the number of
 * iovecs filled (0 when there is nothing to write).
 */
int mps_conn_sf_peek(struct mps_conn *conn,
		     int sf,
		     struct iovec *iov,
		     int iovcnt);

/* The caller wrote n bytes of what mps_conn_sf_peek() gave. */
void mps_conn_sf_consume(struct mps_conn *conn, int sf, size_t n);

/*
 * True when nothing more will ever be written to subflow sf: once
 * mps_conn_sf_peek() gives nothing, the caller shuts down the socket's
 * writing side (FALLBACK after mps_conn_app_shutdown(), CLOSED) or closes
 * it (RESET, preferably with a TCP RST).
 */
bool mps_conn_sf_done(const struct mps_conn *conn, int sf);

/*
 * Subflow sf's kernel socket reached end of stream (err 0) or failed
 * (err a positive errno such as ECONNRESET or ETIMEDOUT).  Losing the only
 * subflow is harmless once the peer's DATA_FIN came and the peer has all
 * we sent (CLOSED); otherwise the connection is RESET with err, or with
 * ECONNRESET for an end of stream.  A server still waiting for the first
 * record falls back instead, handing the bytes it got to the program.
 */
void mps_conn_sf_closed(struct mps_conn *conn, int sf, int err);

/* Bytes of program data mps_conn_app_write() would accept now. */
size_t mps_conn_app_room(const struct mps_conn *conn);

/* Take up to len bytes the program wrote; returns how many were taken. */
size_t mps_conn_app_write(struct mps_conn *conn, const void *buf, size_t len);

/*
 * In-order data ready for the program, as up to iovcnt iovecs valid until
 * the next call into the core.  Returns the number of iovecs filled.
 */
int mps_conn_app_peek(struct mps_conn *conn, struct iovec *iov, int iovcnt);

/* The program was given n bytes of what mps_conn_app_peek() gave. */
void mps_conn_app_consume(struct mps_conn *conn, size_t n);

/* The program shut down its writing side: DATA_FIN after queued data. */
void mps_conn_app_shutdown(struct mps_conn *conn);

/*
 * The program aborted the connection (SO_LINGER 0): RESET with
 * ECONNABORTED, and MP_FASTCLOSE queued when the peer's key is known
 * (before that, and in FALLBACK, the caller's TCP RST says it alone).
 */
void mps_conn_abort(struct mps_conn *conn);

/* Advance the clock; returns microseconds until the next timer, or 0. */
uint64_t mps_conn_tick(struct mps_conn *conn, uint64_t now_us);

enum mps_conn_state mps_conn_state(const struct mps_conn *conn);

/* True once the peer's DATA_FIN came and every byte before it was read. */
bool mps_conn_peer_finished(const struct mps_conn *conn);

/* 0, or the positive errno the program should see (ECONNRESET, ...). */
int mps_conn_error(const struct mps_conn *conn);

/* Per-connection counters; anomalies are counted here, never logged. */
struct mps_conn_stats {
	uint64_t bytes_in;  /* payload bytes received */
	uint64_t bytes_out; /* payload bytes put into records */
	uint64_t records_in;
	uint64_t records_out;
	uint64_t dup_bytes;	  /* payload received twice */
	uint64_t options_ignored; /* ADD_ADDR, REMOVE_ADDR, MP_PRIO */
	uint64_t protocol_errors; /* subflows reset for breaking the rules */
	uint64_t csum_errors;	  /* DSS checksum mismatches */
	uint64_t window_errors;	  /* data beyond the advertised window */
	uint64_t fallbacks;	  /* 0 or 1: went plain TCP */
};

/* A snapshot for statistics and tests.  DSNs are 0 until known. */
struct mps_conn_info {
	enum mps_conn_state state;
	int version;   /* agreed, or offered while in HANDSHAKE */
	bool checksum; /* DSS checksums agreed */
	uint32_t local_token;
	uint32_t peer_token;
	uint64_t snd_una;   /* first DSN of ours not data-ACKed */
	uint64_t snd_nxt;   /* next DSN of ours to put in a record */
	uint64_t snd_right; /* the peer's window ends here */
	uint64_t data_ack;  /* the data ACK this end sends */
	uint64_t rcv_right; /* the window this end advertised ends here */
	size_t snd_held;    /* program bytes held until data-ACKed */
	size_t rcv_held;    /* received bytes held for the program */
	size_t reasm_mem;   /* out-of-order bytes, with bookkeeping */
	struct mps_conn_stats stats;
};

void mps_conn_get_info(const struct mps_conn *conn, struct mps_conn_info *info);

#endif /* MPS_CONN_H */
