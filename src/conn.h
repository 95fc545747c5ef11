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
 * also what batches data ACKs: one per peek at most.  A data ACK rides
 * on the next record of data; one that no data takes along goes alone
 * after a short delay (the timer of mps_conn_tick()), or at once when
 * many received bytes wait for it (conn-int.h, MPS_ACK_DELAY_US).
 *
 * Threads: a connection takes no lock; it is called by one thread at a
 * time, the holder of its process's loop lock (the loop thread, or a
 * program thread sending directly: loop.h).
 *
 * Subflows are numbered from 0 (the initial subflow) in the order they
 * are added: mps_conn_sf_add() for the initial one, then
 * mps_conn_sf_add_join() (this end opens an MP_JOIN subflow) and
 * mps_conn_sf_accept_join() (the peer opened one).  A number stays valid
 * for the connection's life; a subflow that failed keeps its number and is
 * never reused.  Up to MPS_CONN_MAX_SUBFLOWS subflows, failed ones
 * included.
 *
 * Multipath in one paragraph: the data sequence space, the data ACK, the
 * data window and DATA_FIN belong to the connection; each established
 * subflow carries records of it.  A scheduler (mps_conn_params.sched)
 * decides, when the caller peeks a subflow, how much new data goes there,
 * from the metrics the caller reports (mps_conn_sf_metrics()).  Data stays
 * in the send buffer until the peer's data ACK covers it, so a subflow that
 * fails or stalls has its unacknowledged data sent again on the others
 * (reinjection); the receiver delivers each byte once.  What the runtime
 * must act on (a new peer address, a subflow up or down, a priority
 * change) comes out of mps_conn_next_event().
 */
#ifndef MPS_CONN_H
#define MPS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mptcpshim/wire.h"

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

/* Subflows per connection, failed ones included (numbers are not reused). */
#define MPS_CONN_MAX_SUBFLOWS 8

/* Peer addresses remembered from ADD_ADDR; more are refused and counted. */
#define MPS_CONN_MAX_ADDRS 8

/*
 * Joins the peer opened that have not proved the keys yet (MP_JOIN SYN
 * awaited, or SYN/ACK sent and ACK awaited).  mps_conn_sf_accept_join()
 * refuses more with -EBUSY.  The process's total is
 * mps_conn_half_open_joins(), for the runtime to cap.
 */
#define MPS_CONN_MAX_HALF_OPEN 2

/*
 * Bytes already consumed by the program that are kept to compare with a
 * copy of the same data sequence range arriving again (redundant
 * scheduling, reinjection).  Kept only once a connection has a second
 * subflow; older bytes are not compared (counted in dup_unchecked).
 */
#define MPS_CONN_HIST (256 * 1024)

/* How new data is spread over the established subflows. */
enum mps_sched {
	MPS_SCHED_EARLIEST = 0, /* earliest expected delivery (ECF, BLEST) */
	MPS_SCHED_ROUNDROBIN,	/* one chunk per subflow in turn */
	MPS_SCHED_REDUNDANT,	/* every byte on every subflow */
};

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
				 0 waits forever.  Once a record header
				 is in, the wait goes on; an MP_CAPABLE
				 that comes after the fallback resets the
				 connection (stats.late_first) rather
				 than reach the program as data */
	int sched;	      /* enum mps_sched; 0 is MPS_SCHED_EARLIEST */
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

/*
 * Add the initial subflow; returns its number (0) or negative errno.
 * Further subflows are MP_JOIN subflows: -EOPNOTSUPP here, see
 * mps_conn_sf_add_join() and mps_conn_sf_accept_join().
 */
int mps_conn_sf_add(struct mps_conn *conn);

/*
 * MP_JOIN (RFC 8684 section 3.2), in-band.  The initiator's first record
 * on a new subflow is the SYN form (the receiver's token, a fresh random
 * nonce, its address id and B flag); the responder answers with the
 * SYN/ACK form (64-bit truncated HMAC, its nonce), the initiator checks
 * it and sends the ACK form (160-bit HMAC), the responder checks that and
 * acknowledges with a DSS data ACK.  No data goes on the subflow before
 * both HMACs checked out: for the responder, once the ACK form checked
 * out; for the initiator, once the responder's first DSS arrived.  A
 * wrong token, a wrong HMAC or a join the connection cannot take yet is
 * refused with MP_TCPRST (reason 1; v0 has none, the caller's TCP RST
 * says it) on that subflow alone; the connection is unaffected.
 */

/*
 * True once new subflows may join: the connection is ESTABLISHED, the
 * MP_CAPABLE exchange is complete, and the initial subflow has carried
 * data with a mapping (RFC 8684 section 3.2).  On the initiating side the
 * "complete" part is judged from the peer's data or data ACK; a join that
 * overtakes the third ACK is refused by the peer and reported as
 * SUBFLOW_FAILED.
 */
bool mps_conn_can_join(const struct mps_conn *conn);

/*
 * This end opens a subflow (the caller connects a new kernel socket, e.g.
 * to an address from an ADDR_ADDED event).  Returns its number; its first
 * output is the MP_JOIN SYN form.  backup asks the peer to use it only
 * when no other subflow is usable.  Returns -EAGAIN until
 * mps_conn_can_join(), -ENOSPC when MPS_CONN_MAX_SUBFLOWS are used,
 * -ENOTCONN once the connection is over, or the RNG's error.
 */
int mps_conn_sf_add_join(struct mps_conn *conn,
			 uint8_t local_addr_id,
			 bool backup);

/*
 * Classify the first bytes of a connection accepted on a join listener:
 * 0 and *token (the token of the connection it joins) for an MP_JOIN SYN
 * record, MPS_WIRE_NEED_MORE while it is incomplete, a negative
 * enum mps_wire_err when it is not a join.  Pure; any thread.
 */
int mps_join_parse_first(const uint8_t *buf, size_t len, uint32_t *token);

/*
 * The MP_TCPRST record (reason 1) the caller writes before closing a join
 * it cannot hand to any connection (unknown token).  Returns its length,
 * or a negative enum mps_wire_err if cap is too small.  Pure.
 */
int mps_join_refusal(uint8_t *buf, size_t cap);

/*
 * The peer opened a subflow for this connection (its token matched): add
 * it and feed it every byte read, the SYN record included.  Returns its
 * number, -ENOTCONN unless ESTABLISHED, -ENOSPC when full, -EBUSY when
 * MPS_CONN_MAX_HALF_OPEN joins are half-open already (the caller closes
 * the socket), -ENOMEM.  A join the connection cannot take yet is
 * refused in-band when its SYN arrives.
 */
int mps_conn_sf_accept_join(struct mps_conn *conn);

/*
 * What the runtime reads from TCP_INFO and SIOCOUTQNSD for subflow sf,
 * before peeking it and on a timer.  The scheduler reads them; the core
 * counts what the caller writes after the report as unsent until the next
 * report.  Without a report a subflow counts as unlimited and equal to
 * the others.  When a subflow leaves and one live subflow remains, that
 * one forgets its metrics (and any stall): the caller need not report
 * for a lone subflow.
 */
struct mps_sf_metrics {
	uint32_t srtt_us;
	uint32_t rttvar_us;
	uint64_t cwnd_bytes;	/* snd_cwnd x mss */
	uint64_t notsent_bytes; /* written, not yet sent by the kernel */
	uint64_t unacked_bytes; /* sent, not yet acknowledged (in flight) */
	uint64_t delivery_rate; /* bytes per second; 0 unknown */
	uint64_t room;		/* bytes writable now without the unsent
				   queue passing its low-water mark */
	uint64_t acked_bytes;	/* bytes the peer's TCP acknowledged so far
				   (tcpi_bytes_acked); 0 unknown.  When
				   reported, a subflow with bytes outstanding
				   whose count stands still for the stall time
				   is stalled, whichever end sends data, and
				   only its growth ends a stall */
	bool rate_app_limited;	/* delivery_rate was measured while the
				   sender had too little to send (TCP_INFO's
				   tcpi_delivery_rate_app_limited): a lower
				   bound, not the path's rate */
};

void mps_conn_sf_metrics(struct mps_conn *conn,
			 int sf,
			 const struct mps_sf_metrics *m);

/*
 * Ask the peer, with MP_PRIO on subflow sf (RFC 8684 section 3.3.8; in v1
 * it applies to the subflow it is sent on), to use sf only as a backup
 * (or again normally).  This end then also schedules it as one.  Returns
 * 0, -EINVAL (no such subflow), or -ENOTCONN (not established, failed).
 */
int mps_conn_set_backup(struct mps_conn *conn, int sf, bool backup);

/*
 * Address advertisement (RFC 8684 section 3.4).  mps_conn_announce()
 * queues ADD_ADDR (v1: with the truncated HMAC; v0: without) on an
 * established subflow: port 0 means "the same port", so a server points
 * the client at its join listener by its own address and the listener's
 * port.  mps_conn_withdraw() queues REMOVE_ADDR.  Both return 0,
 * -ENOTCONN unless ESTABLISHED, -EAFNOSUPPORT, or -ENOBUFS when too many
 * signals wait to be sent.
 */
int mps_conn_announce(struct mps_conn *conn,
		      uint8_t addr_id,
		      const struct mps_addr *addr,
		      uint16_t port);
int mps_conn_withdraw(struct mps_conn *conn, uint8_t addr_id);

/* What happened that the runtime may have to act on. */
enum mps_conn_event_kind {
	MPS_EV_ADDR_ADDED = 1,	    /* id, addr, port (0: the same port) */
	MPS_EV_ADDR_REMOVED,	    /* id; the runtime closes its subflows
				       to that address (sf_closed) */
	MPS_EV_SUBFLOW_ESTABLISHED, /* sf: both join HMACs checked out */
	MPS_EV_SUBFLOW_FAILED,	    /* sf, err: out of the connection; close
				       it once mps_conn_sf_done() */
	MPS_EV_PRIO_CHANGED,	    /* sf, backup: the peer's MP_PRIO */
	MPS_EV_INCONSISTENT_DATA,   /* sf, dsn: a copy of data this end
				       holds or delivered differed; sf is
				       reset, its copy dropped.  The core
				       does not log: the runtime logs this
				       one (warn level) */
	MPS_EV_MP_FAIL,		    /* sf, dsn: a DSS checksum failed on the
				       only subflow (or the peer said so
				       with MP_FAIL): the connection falls
				       back to plain TCP from dsn on */
};

struct mps_conn_event {
	enum mps_conn_event_kind kind;
	int sf;	 /* -1 for the address events */
	int err; /* positive errno, or 0 */
	bool backup;
	uint8_t addr_id;
	uint16_t port;
	struct mps_addr addr;
	uint64_t dsn; /* INCONSISTENT_DATA, MP_FAIL */
};

/*
 * Take the oldest event into *ev; false when none is queued.  The queue
 * holds MPS_CONN_EVENTS events; more are dropped and counted.
 */
#define MPS_CONN_EVENTS 32
bool mps_conn_next_event(struct mps_conn *conn, struct mps_conn_event *ev);

/* Is an event queued? */
bool mps_conn_has_event(const struct mps_conn *conn);

/* Does data of ours wait for its data ACK?  (Nagle, in the runtime.) */
bool mps_conn_in_flight(const struct mps_conn *conn);

/* Do records carry DSS checksums, computed over the send ring's bytes? */
bool mps_conn_checksums(const struct mps_conn *conn);

/*
 * Feed bytes read from subflow sf.  Returns 0, or a negative errno when
 * the subflow broke the protocol: the core has then queued an MP_TCPRST
 * (reason 1; v0 has none, MP_FASTCLOSE goes instead) for that subflow, and
 * the caller writes what mps_conn_sf_peek() still gives and closes the
 * subflow.  With no other established subflow the connection is then
 * RESET (ECONNRESET); otherwise only the subflow goes (MP_TCPRST alone,
 * nothing in v0), and SUBFLOW_FAILED is queued.
 *   -EPROTO   a malformed record, an option out of place, a wrong key
 *             echo, data outside the advertised window or after DATA_FIN;
 *   -EPERM    a join refused: wrong token or HMAC, a replayed SYN
 *             nonce, too early, or any other record before the join
 *             proved the keys;
 *   -EBADMSG  a DSS checksum mismatch while another subflow remains:
 *             this one is reset with reason 6 (middlebox interference)
 *             and its data goes again on the others.  On the only
 *             subflow the core instead sends MP_FAIL and falls back to
 *             plain TCP with an infinite mapping each way (RFC 8684
 *             section 3.7), returns 0 and queues MPS_EV_MP_FAIL; the
 *             state becomes FALLBACK and the subflow goes on;
 *   -EPROTO   also: a copy of data this end holds or delivered (the last
 *             MPS_CONN_HIST bytes) that differs from it; the copy is
 *             dropped and MPS_EV_INCONSISTENT_DATA queued;
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
 * it (RESET, or a subflow that failed alone: preferably with a TCP RST).
 */
bool mps_conn_sf_done(const struct mps_conn *conn, int sf);

/*
 * Subflow sf's kernel socket reached end of stream (err 0) or failed
 * (err a positive errno such as ECONNRESET or ETIMEDOUT).  While another
 * established subflow remains, only sf leaves the connection: what it
 * carried that is not data-ACKed yet is sent again on the others, and
 * SUBFLOW_FAILED (err) is queued.  Losing the last subflow is harmless
 * once the peer's DATA_FIN came and the peer has all we sent (CLOSED);
 * otherwise the connection is RESET with err, or with ECONNRESET for an
 * end of stream.  A server still waiting for the first
 * record falls back instead, handing the bytes it got to the program.
 * In FALLBACK an end of stream is a TCP half-close: the peer has
 * finished (mps_conn_peer_finished() once the program read all), but
 * sf stays writable until mps_conn_sf_done(); a second report, or one
 * with an error, ends it.
 */
void mps_conn_sf_closed(struct mps_conn *conn, int sf, int err);

/* Bytes of program data mps_conn_app_write() would accept now. */
size_t mps_conn_app_room(const struct mps_conn *conn);

/* Take up to len bytes the program wrote; returns how many were taken. */
size_t mps_conn_app_write(struct mps_conn *conn, const void *buf, size_t len);

/*
 * The send ring's free space, as up to two iovecs (*iovcnt) that the
 * caller may read program bytes straight into; returns the bytes they
 * cover, mps_conn_app_room() (0: *iovcnt is 0).  Valid until the next
 * call into the core; mps_conn_app_commit() then takes the first n bytes
 * written, as mps_conn_app_write() would have taken them, without a copy.
 */
size_t mps_conn_app_reserve(struct mps_conn *conn,
			    struct iovec iov[2],
			    int *iovcnt);

/* Take the first n bytes of what mps_conn_app_reserve() gave. */
void mps_conn_app_commit(struct mps_conn *conn, size_t n);

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

/*
 * Advance the clock: the server's fallback timer, stall detection and
 * the delayed data ACK.
 * Returns microseconds until the next timer, or 0.  The core knows the
 * time only from here: call it after each batch of events too, not only
 * when the timer fires.
 */
uint64_t mps_conn_tick(struct mps_conn *conn, uint64_t now_us);

enum mps_conn_state mps_conn_state(const struct mps_conn *conn);

/* True once the peer's DATA_FIN came and every byte before it was read. */
bool mps_conn_peer_finished(const struct mps_conn *conn);

/* 0, or the positive errno the program should see (ECONNRESET, ...). */
int mps_conn_error(const struct mps_conn *conn);

/*
 * Switch the scheduler (enum mps_sched) from the next record on; 0 or
 * -EINVAL.  mps_conn_sched() is the one in use.
 */
int mps_conn_set_sched(struct mps_conn *conn, int sched);
int mps_conn_sched(const struct mps_conn *conn);

/* Per-connection counters; anomalies are counted here, never logged. */
struct mps_conn_stats {
	uint64_t bytes_in;  /* payload bytes received */
	uint64_t bytes_out; /* payload bytes put into records */
	uint64_t records_in;
	uint64_t records_out;
	uint64_t dup_bytes;	  /* payload received twice */
	uint64_t options_ignored; /* echoes dropped: signal queue full */
	uint64_t protocol_errors; /* subflows reset for breaking the rules */
	uint64_t csum_errors;	  /* DSS checksum mismatches */
	uint64_t window_errors;	  /* data beyond the advertised window */
	uint64_t fallbacks;	  /* 0 or 1: went plain TCP */
	/* multipath; dup_bytes above counts bytes received twice */
	uint64_t joins_accepted;   /* join subflows established */
	uint64_t joins_refused;	   /* joins this end refused */
	uint64_t reinjected_bytes; /* payload sent again on another subflow */
	uint64_t addrs_accepted;   /* ADD_ADDR remembered */
	uint64_t addrs_refused;	   /* bad HMAC, no room, or out of place */
	uint64_t events_dropped;   /* the event queue was full */
	uint64_t stalls;	   /* subflows found stalled */
	/* security and robustness (RFC 7430) */
	uint64_t inconsistent_data; /* copies that differed: sf reset */
	uint64_t dup_unchecked;	    /* bytes received again too late to
				       compare (older than MPS_CONN_HIST) */
	uint64_t joins_replayed;    /* SYN forms with a nonce seen before
				       (also in joins_refused) */
	uint64_t joins_bad_hmac;    /* SYN/ACK or ACK forms whose HMAC did
				       not check out (also in joins_refused) */
	uint64_t joins_half_open_refused; /* over MPS_CONN_MAX_HALF_OPEN */
	uint64_t signals_refused;   /* REMOVE_ADDR, MP_PRIO or MP_FAIL out
				       of place: ignored */
	uint64_t mp_fail;	    /* MP_FAIL sent or received */
	uint64_t late_first;	    /* server: the client's MP_CAPABLE came
				       after the fallback timer; reset */
	uint64_t floods;	    /* subflows reset for endless duplicates
				       or address signals (conn-int.h) */
};

/* A subflow's state as the statistics show it. */
enum mps_sf_state {
	MPS_SF_UNUSED = 0,
	MPS_SF_JOINING,	    /* MP_JOIN exchange under way */
	MPS_SF_ESTABLISHED, /* carries data */
	MPS_SF_STALLED,	    /* no progress: not scheduled, data reinjected */
	MPS_SF_FAILED,	    /* out of the connection */
	MPS_SF_CLOSED,	    /* the caller reported its end */
};

struct mps_sf_info {
	enum mps_sf_state state;
	bool join;	  /* an MP_JOIN subflow */
	bool backup;	  /* this end asked the peer to treat it as backup */
	bool peer_backup; /* the peer asked this end (B flag, MP_PRIO) */
	uint8_t local_addr_id;
	uint8_t peer_addr_id;
	uint64_t bytes_out;  /* payload put into records on it */
	uint64_t bytes_in;   /* payload received on it */
	uint64_t reinjected; /* of bytes_out, sent again for another one */
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
	int nsf; /* subflows added, failed ones included */
	struct mps_sf_info sf[MPS_CONN_MAX_SUBFLOWS];
};

void mps_conn_get_info(const struct mps_conn *conn, struct mps_conn_info *info);

/*
 * Memory.  A connection never holds more than mps_conn_mem_bound() bytes,
 * whatever its peer sends:
 *
 *   sizeof(struct mps_conn)               fixed: queues, tables
 *   + MPS_CONN_MAX_SUBFLOWS x sizeof(struct mps_sf)   one per subflow
 *                                         added, allocated as it comes
 *   + snd_buf                             the send ring
 *   + R, R = max(rcv_buf, MPS_CONN_INITIAL_WINDOW)   the receive ring
 *   + R + 64 KiB                          the reassembly queue's hard bound
 *                                         (out-of-order data, bookkeeping
 *                                         included)
 *   + MPS_CONN_HIST                       delivered bytes kept to compare
 *                                         copies (multipath only)
 *   + MPS_CONN_MAX_SUBFLOWS x 65535       one record's payload per subflow,
 *                                         held until its DSS checksum
 *                                         checks out (checksums only)
 *
 * With the defaults of 256 KiB each way that is about 1.6 MiB, of which
 * the program's own buffers are 0.5 MiB.  Everything else is fixed size:
 * the record parser keeps at most one record head (44 bytes) per subflow
 * and streams payloads, the out queues, signal, event, address and nonce
 * tables have fixed lengths.  malloc's own overhead is not counted.
 * mps_conn_mem_used() is what the connection holds now, counted the same
 * way.  Both: event-loop thread (mem_bound: any thread).
 */
size_t mps_conn_mem_bound(const struct mps_conn_params *params);
size_t mps_conn_mem_used(const struct mps_conn *conn);

/*
 * Half-open joins (see MPS_CONN_MAX_HALF_OPEN) of every connection of the
 * process, for the runtime to refuse joins above its own cap before it
 * calls mps_conn_sf_accept_join().  Any thread (an atomic counter).
 */
unsigned long mps_conn_half_open_joins(void);

/*
 * Scheduler decisions, as pure functions over a snapshot of the subflows
 * (any thread; the core calls them for each chunk it is about to cut).
 */
struct mps_sched_path {
	bool usable; /* established, neither failed nor stalled */
	bool backup; /* either end asked for backup use */
	uint32_t srtt_us;
	uint64_t rate;	 /* bytes per second; 0 unknown */
	uint64_t queued; /* bytes ahead of a new chunk: the kernel's unsent
			    queue and what the core holds for it */
	uint64_t room;	 /* bytes it may take now */
};

/* Bytes per second assumed for a path without a rate estimate. */
#define MPS_SCHED_DEFAULT_RATE (1024 * 1024)

/*
 * The rate of a path from its metrics: its delivery rate, else cwnd /
 * srtt.  A delivery rate measured while the path was application-limited
 * (an idle or starved subflow: its last sample may be the handshake's)
 * only bounds the rate from below; cwnd / srtt is used when larger.
 */
uint64_t mps_sched_rate(const struct mps_sf_metrics *m);

/*
 * Expected arrival of a chunk sent now on p, in microseconds from now:
 * (queued + chunk) / rate + srtt / 2.
 */
uint64_t mps_sched_arrival_us(const struct mps_sched_path *p, uint64_t chunk);

/*
 * Whether path i may carry data at all: usable, and not a backup while a
 * usable non-backup path exists.
 */
bool mps_sched_eligible(const struct mps_sched_path *paths, int n, int i);

/*
 * Earliest expected delivery: true if the chunk should go on self now,
 * which is when no other eligible path would deliver it sooner, counting
 * the queue each would first have to drain.  A fast path that is full
 * still wins when waiting for it beats the slow path; then nothing goes
 * on the slow one.
 */
bool mps_sched_earliest(const struct mps_sched_path *paths,
			int n,
			int self,
			uint64_t chunk);

/*
 * Round robin: the eligible path with room after last (cyclically, last
 * -1 to start), or -1 if none.
 */
int mps_sched_roundrobin(const struct mps_sched_path *paths, int n, int last);

/*
 * Earliest expected delivery when backlog bytes (the chunk first) wait to
 * be sent, the test of ECF: a faster path that has no room for the chunk
 * now wins only if it would deliver the whole backlog before self
 * delivers the chunk.  With a long backlog the fast path stays busy
 * anyway, so the slow one takes the chunk instead of idling; near the end
 * of a transfer the tail still waits for the fast path.
 * mps_sched_earliest() is this with backlog = chunk.
 */
bool mps_sched_earliest_backlog(const struct mps_sched_path *paths,
				int n,
				int self,
				uint64_t chunk,
				uint64_t backlog);

#endif /* MPS_CONN_H */
