/*
 * conn-int.h: what the files of the connection core share.
 *
 * The core is one module in three files: conn.c (one connection: the
 * MP_CAPABLE exchange, records in and out, the data sequence space, the
 * program's side), conn-mp.c (several subflows: MP_JOIN, address
 * advertisement, MP_PRIO, failure, stall and reinjection, events) and
 * sched.c (the scheduler's pure decisions).  Nothing outside them
 * includes this header; conn.h is the interface.
 *
 * Every field and function here belongs to the event-loop thread that
 * owns the connection.  Functions named mps__* are internal to the core.
 */
#ifndef MPS_CONN_INT_H
#define MPS_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mptcpshim/wire.h"
#include "conn.h"
#include "crypto.h"
#include "reasm.h"
#include "seq.h"

#define MPS_CONN_MAX_SF MPS_CONN_MAX_SUBFLOWS

/* Records queued per subflow, and how many of them data may take. */
#define MPS_CONN_OUTQ 16
#define MPS_CONN_OUTQ_DATA 12

/* Header and option of a record, the most a record has before payload. */
#define MPS_CONN_REC_HEAD_MAX (MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX)

/* Out-of-order bytes: the reassembly queue's memory, beyond rcv_buf. */
#define MPS_CONN_REASM_SLACK (64 * 1024)

/*
 * Ranges of data sent on one subflow and not yet data-ACKed, kept for
 * reinjection.  Contiguous ranges coalesce; when the table is full the
 * last range grows over the gap, which only means that a few bytes more
 * would be sent twice.
 */
#define MPS_SF_RANGES 16

/* Ranges waiting to be sent again, for the whole connection. */
#define MPS_CONN_REINJ 32

/* Control options waiting for an established subflow. */
#define MPS_CONN_SIGNALS 8

/* Nonces of recent MP_JOIN SYN forms, kept to refuse a replayed one. */
#define MPS_CONN_JOIN_NONCES 16

/*
 * Stall detection.  A subflow holding the oldest unacknowledged byte
 * stalls when the data ACK has not moved for max(MPS_STALL_RTTS x srtt,
 * MPS_STALL_MIN_US).  A healthy path delivers within about one srtt, and
 * its first retransmission fires after the RTO, srtt + 4 x rttvar, which
 * Linux keeps above 200 ms (TCP_RTO_MIN): four srtt allow for the RTO of
 * a path whose rttvar is up to three quarters of its srtt, and the floor
 * keeps a path that is merely waiting for its first retransmission from
 * being called stalled.
 */
#define MPS_STALL_RTTS 4
#define MPS_STALL_MIN_US 200000

/*
 * Data ACK policy.  A data ACK rides on every record of ours that carries
 * data (or a DATA_FIN); an ACK-only record goes out only when one is
 * needed (conn.c, ack_urgent()): when nothing of ours has carried it for
 * MPS_ACK_DELAY_US, when ack_hold() received bytes wait for it, when the
 * peer asks for it, with a window record, after the peer's DATA_FIN,
 * outside ESTABLISHED, and when a data ACK already sent is to be sent
 * again (a subflow lost or stalled).  A request answered within the delay
 * thus costs no ACK-only record on either side.
 *
 * The delay is far below the peer's stall time (MPS_STALL_MIN_US), so its
 * stall detection by the data ACK is unaffected.
 *
 * The byte bound is a sixteenth of the receive ring (256 KiB by default,
 * MPS_ACK_HOLD_MIN at least): each ACK-only record wakes the sender's
 * loop, and with a bound of 16 KiB a bulk transfer paid one per batch of
 * input, a fifth of both ends' CPU time at 1 Gbit/s on loopback.  The
 * peer's send ring may be smaller than the bound (MPTCPSHIM_SNDBUF goes
 * down to 64 KiB), which the receiver cannot see, so the sender says when
 * it needs the ACK: once half of its ring holds data sent and not yet
 * acknowledged, it sends an ACK-only record of its own (once until the
 * data ACK moves; ack_wanted()), and the receiver answers any ACK-only
 * record with the data ACK it holds.  That record is an ordinary DSS
 * (RFC 8684 section 3.3), so a peer that does not ask is still served by
 * the delay, and one that does not answer costs only the record.
 * MPS_ACK_HOLD_MIN, the least bound, is a quarter of the smallest window.
 */
/*
 * Floods (RFC 7430 asks that repeated data and signals not exhaust the
 * receiver).  Memory is bounded without these (mps_conn_mem_bound()),
 * but a peer could keep a connection busy forever; such a subflow is
 * reset (MP_TCPRST, administratively prohibited) and counted in floods.
 * - Duplicates: a peer sends data again after a stall or with the
 *   redundant scheduler, but never more than it has unacknowledged, which
 *   our window bounds, plus what a slow subflow's kernel socket still
 *   holds of it (net.ipv4.tcp_wmem allows 4 MiB by default); a subflow
 *   that brings mps__dup_run_max() bytes of duplicates while the
 *   connection gets no new byte is flooding.
 * - Address signals (ADD_ADDR, echoes included, and REMOVE_ADDR): a burst
 *   of MPS_SIG_BURST, then MPS_SIG_PER_S a second; a peer has at most
 *   MPS_CONN_MAX_ADDRS addresses to tell of.
 */
#define MPS_DUP_RUN_FACTOR 4
#define MPS_DUP_RUN_MIN (16u << 20)
#define MPS_SIG_BURST 64
#define MPS_SIG_PER_S 8

static inline uint64_t mps__dup_run_max(size_t rcv_cap)
{
	uint64_t max = MPS_DUP_RUN_FACTOR * (uint64_t)rcv_cap;

	return max > MPS_DUP_RUN_MIN ? max : MPS_DUP_RUN_MIN;
}

#define MPS_ACK_DELAY_US 2000
#define MPS_ACK_HOLD_MIN (MPS_CONN_INITIAL_WINDOW / 4)
#define MPS_ACK_HOLD_SHARE 16 /* of the receive ring */

/* Round robin: bytes a subflow sends in one turn, at most. */
#define MPS_SCHED_RR_QUANTUM MPS_WIRE_PAYLOAD_MAX

/* Smallest new-data chunk cut into a subflow that has less room left. */
#define MPS_SCHED_MIN_CHUNK 1400

/* Room of a subflow without metrics: limited by its out queue only. */
#define MPS_SF_ROOM_UNKNOWN UINT64_MAX

/* A byte ring of fixed capacity.  Bytes past vis are held back. */
struct mps_ring {
	uint8_t *buf;
	size_t cap;
	size_t head; /* offset of the first byte */
	size_t len;  /* bytes held */
	size_t vis;  /* of which the first vis are visible */
};

/* One record waiting in a subflow's out queue. */
struct mps_out_rec {
	uint8_t head[MPS_CONN_REC_HEAD_MAX]; /* header and option */
	uint8_t head_len;
	bool fin;	  /* carries this end's DATA_FIN */
	uint32_t pay_len; /* payload bytes, in the send ring */
	uint64_t pay_dsn; /* DSN of the first payload byte */
};

/* A range of data sequence numbers. */
struct mps_range {
	uint64_t dsn;
	uint64_t len;
};

/*
 * Where a subflow is.  The initial subflow is SF_OPEN from the start (the
 * connection-level MP_CAPABLE exchange gates its data); a join subflow
 * walks the MP_JOIN exchange (RFC 8684 section 3.2) first.
 */
enum sf_phase {
	SF_OPEN = 0,
	SF_JOIN_WAIT_SYNACK, /* initiator: SYN sent */
	SF_JOIN_WAIT_EST,    /* initiator: ACK sent, waits for a DSS */
	SF_JOIN_WAIT_SYN,    /* responder: nothing came yet */
	SF_JOIN_WAIT_ACK,    /* responder: SYN/ACK sent */
};

/* Everything of one subflow.  Owned by the event-loop thread. */
struct mps_sf {
	int num;  /* its index in mps_conn.sf */
	bool used;
	bool closed; /* the caller reported end of stream or error */
	bool dead;   /* input is ignored: reset, or the peer reset it */
	bool failed; /* out of a connection that goes on without it */
	bool stalled;
	bool join;
	bool half_open; /* counted in the process's half-open joins */
	enum sf_phase phase;

	/* MP_JOIN */
	uint32_t local_nonce;
	uint32_t peer_nonce;
	uint8_t local_addr_id;
	uint8_t peer_addr_id;
	bool backup_local; /* we asked the peer: B flag or MP_PRIO */
	bool backup_peer;  /* the peer asked us */
	bool prio_due;	   /* MP_PRIO to send here */
	bool rst_due;	   /* MP_TCPRST to send here (subflow only) */
	uint8_t rst_reason;

	/* receive: the record being parsed */
	uint8_t rx_head[MPS_CONN_REC_HEAD_MAX];
	size_t rx_have;	   /* bytes of rx_head filled */
	size_t rx_opt_len; /* L, once the header is decoded */
	size_t rx_pay_len; /* P of the record whose payload comes */
	size_t rx_pay_done;
	uint64_t rx_dsn; /* DSN of its first payload byte */
	bool rx_fin;	 /* its mapping ends with a DATA_FIN */
	bool rx_csum_on;
	bool rx_discard;   /* payload dropped: after our MP_FAIL */
	struct mps_csum rx_csum;
	/* with checksums, a record's payload waits here until it checks
	 * out (MPS_WIRE_PAYLOAD_MAX bytes, allocated on first use) */
	uint8_t *rx_stage;
	uint32_t rx_ssn;   /* relative subflow sequence of next byte */
	uint64_t ack_rcvd; /* last data ACK received here */
	uint64_t dup_run;  /* bytes it brought twice since dup_mark */
	uint64_t dup_mark; /* the connection's next DSN when they began */

	/* send */
	struct mps_out_rec outq[MPS_CONN_OUTQ];
	unsigned int outq_head;
	unsigned int outq_len;
	size_t head_off;   /* bytes of the first record written */
	uint32_t tx_ssn;   /* relative subflow sequence of next byte */
	uint64_t ack_sent; /* last data ACK sent here */
	bool ack_first;	   /* no data ACK sent here yet (joins) */
	bool ack_now;	   /* a data ACK here at once: the join is up */
	size_t outq_bytes; /* bytes queued and not yet written */

	/* scheduling, from the caller's metrics */
	bool have_m;
	struct mps_sf_metrics m;
	uint64_t room;	     /* m.room less what was written since */
	uint64_t notsent;    /* m.notsent_bytes plus what was written since */
	uint64_t stall_mark; /* unsent + unacked when it stalled */
	bool acked_known;    /* the caller reports m.acked_bytes */
	uint64_t progress_us; /* when its TCP last made progress (acked
				 bytes grew, or nothing was outstanding) */
	uint64_t red_nxt;    /* redundant: next DSN for this subflow */

	/* data sent here, not yet data-ACKed */
	struct mps_range sent[MPS_SF_RANGES];
	unsigned int nsent;
	bool carried_fin; /* our DATA_FIN went out here */

	uint64_t bytes_out;
	uint64_t bytes_in;
	uint64_t reinjected;
};

struct mps_conn {
	enum mps_role role;
	struct mps_conn_params params;
	struct mps_token_table *tokens;
	enum mps_conn_state state;
	int error;
	uint64_t created_us;

	/* negotiation */
	int version;	   /* offered, then agreed */
	int local_version; /* the hash the local key material used */
	int peer_version;  /* the version the peer offered its key with */
	bool csum;	   /* checksums agreed (valid once peer_known) */
	bool peer_csum;	   /* the peer's A flag */
	struct mps_key_material local;
	bool have_token; /* local.token is in the token table */
	bool peer_known; /* the peer's key arrived */
	uint64_t peer_key;
	uint64_t peer_idsn;
	uint32_t peer_token;
	bool mpc_due; /* our first MP_CAPABLE is to be sent */
	bool mpc_sent;
	bool mpc_ack_due; /* client: the third-ACK form is to be sent */
	bool got_first;	  /* server: the client's first record came */
	bool got_third;	  /* server: the client's third ACK came */

	/* send side, DSNs of this end's data */
	struct mps_ring snd;
	uint64_t snd_una;   /* first byte not data-ACKed; snd ring head */
	uint64_t snd_nxt;   /* next byte to put in a record */
	uint64_t snd_end;   /* end of the program's data */
	uint64_t snd_wr;    /* end of what the caller has written */
	uint64_t snd_right; /* the peer's window: send below this */
	bool app_shut;
	bool fin_sent; /* a record with our DATA_FIN is queued */
	bool fin_acked;
	bool tx_raw; /* fallback: bytes go out unframed */

	/* receive side, DSNs of the peer's data */
	struct mps_ring rcv;
	struct mps_reasm reasm; /* its rcv_nxt is the next DSN expected */
	bool reasm_ready;	/* reasm initialised */
	uint64_t rcv_read;	/* DSN of the rcv ring's first byte */
	uint64_t rcv_right;	/* right edge advertised, never moves back */
	bool ack_due;		/* the data ACK moved since it was sent */
	bool ack_clock;		/* the delayed-ACK clock runs (ack_due) */
	bool ack_late;		/* it ran out: the data ACK goes now */
	uint64_t ack_due_us;	/* when it started, from mps_conn_tick() */
	uint64_t ack_told;	/* the last data ACK sent on any subflow */
	bool ack_asked;		/* we asked the peer for a data ACK since
				   snd_una last moved (ack_wanted()) */
	bool rcv_fin_seen;
	bool rcv_fin_done; /* DATA_FIN reached in order: ACK counts it */
	uint64_t rcv_fin_dsn;
	bool rx_raw; /* fallback: bytes come in unframed */
	bool late_check; /* server fell back on its timer: the client's
			    first bytes may still be its MP_CAPABLE */
	bool rx_eof; /* fallback: the subflow ended cleanly */
	uint64_t rx_skip; /* raw bytes already held, to drop (after an
			     infinite mapping from behind rcv_nxt) */

	/*
	 * Bytes the program already consumed, the last MPS_CONN_HIST of
	 * them, from DSN rcv_read - hist.len: a copy of the same range that
	 * arrives again (reinjection, redundant scheduling) is compared
	 * with them.  Allocated when a second subflow appears.
	 */
	struct mps_ring hist;

	/* RFC 8684 section 3.7: MP_FAIL and the infinite mapping */
	bool fail_due;	  /* MP_FAIL to send on the only subflow */
	uint64_t fail_dsn;
	bool infmap_due;  /* our infinite mapping to send, then raw */
	bool fail_wait;	  /* waiting for the peer's infinite mapping */

	/* MP_JOIN nonces of the peer's SYN forms, for replay detection */
	uint32_t join_nonce[MPS_CONN_JOIN_NONCES];
	unsigned int join_nonce_n;
	unsigned int join_nonce_next;
	unsigned int half_open; /* responder joins not yet established */

	/* reset signalling, sent once */
	bool fastclose_due;
	bool tcprst_due;
	uint8_t tcprst_reason;

	struct mps_conn_stats stats;
	int nsf;
	/* allocated one by one (mps__sf_new()), so that a connection with
	 * one subflow does not carry the other seven: 11 KiB */
	struct mps_sf *sf[MPS_CONN_MAX_SF];

	/* address signals the peer may send now, and when the last one was
	 * credited (MPS_SIG_BURST) */
	uint32_t sig_tokens;
	uint64_t sig_credit_us;

	/* multipath */
	uint64_t now_us;       /* the clock, from mps_conn_tick() */
	uint64_t snd_base;     /* DSN of the snd ring's first byte */
	uint64_t una_since_us; /* when snd_una last moved */
	bool una_moved;	       /* it moved since: the next tick restarts
				  the stall clock (the core has no clock
				  of its own between ticks) */
	bool first_map;	       /* a data mapping crossed the initial subflow */
	bool window_force;     /* a window record may have been lost */
	int ack_sf;	       /* where data last arrived: ACKs go there */
	int win_sf;	       /* where the last window record went */
	int rr_last;	       /* round robin: the subflow whose turn it is */
	uint64_t rr_sent;      /* bytes it sent in this turn */
	struct mps_range reinj[MPS_CONN_REINJ]; /* to send again */
	unsigned int nreinj;
	struct mps_option sig[MPS_CONN_SIGNALS];
	unsigned int nsig;
	struct mps_conn_event ev[MPS_CONN_EVENTS];
	unsigned int ev_head;
	unsigned int ev_len;
	struct {
		bool used;
		uint8_t id;
		struct mps_addr addr;
		uint16_t port;
	} addrs[MPS_CONN_MAX_ADDRS];
};

/*
 * Small helpers shared by conn.c and conn-mp.c.
 */

static inline struct mps_sf *conn_sf(struct mps_conn *conn, int sf)
{
	if (sf < 0 || sf >= conn->nsf || !conn->sf[sf]->used)
		return NULL;
	return conn->sf[sf];
}

static inline bool conn_is_over(const struct mps_conn *conn)
{
	return conn->state == MPS_CONN_RESET || conn->state == MPS_CONN_CLOSED;
}

/* The data ACK this end sends: DSN of the next byte it expects. */
static inline uint64_t rcv_data_ack(const struct mps_conn *conn)
{
	return conn->rcv_read + conn->rcv.vis + (conn->rcv_fin_done ? 1 : 0);
}

/* Drops the records no byte of which was written yet. */
static inline void sf_drop_unsent(struct mps_sf *sf)
{
	const struct mps_out_rec *rec = &sf->outq[sf->outq_head];

	sf->outq_len = sf->head_off > 0 ? 1 : 0;
	sf->outq_bytes = 0;
	if (sf->outq_len)
		sf->outq_bytes = rec->head_len + rec->pay_len - sf->head_off;
}

static inline int sf_index(const struct mps_conn *conn, const struct mps_sf *sf)
{
	(void)conn;
	return sf->num;
}

/* Established and still part of the connection. */
static inline bool sf_live(const struct mps_sf *sf)
{
	return sf->used && sf->phase == SF_OPEN && !sf->failed && !sf->closed &&
	       !sf->dead;
}

/* May carry data now (the scheduler's "usable"). */
static inline bool sf_data_ok(const struct mps_sf *sf)
{
	return sf_live(sf) && !sf->stalled;
}

/*
 * conn.c, for conn-mp.c.
 */

/* A fresh subflow slot, or NULL when every slot was used. */
struct mps_sf *mps__sf_new(struct mps_conn *conn);

/* Queues a record whose payload, if any, is in the send ring: 0, or
 * -ENOBUFS when sf's out queue is full. */
int mps__sf_emit(struct mps_conn *conn,
		 struct mps_sf *sf,
		 const struct mps_option *opt,
		 uint64_t pay_dsn,
		 size_t pay_len,
		 bool fin);

/* Drops from the send ring what is acked and no queued record needs. */
void mps__snd_release(struct mps_conn *conn);

/*
 * conn-mp.c, for conn.c.
 */

bool mps__conn_has_other(const struct mps_conn *conn, const struct mps_sf *sf);
/* Whether a subflow other than sf may carry data (live, not stalled). */
bool mps__conn_other_data_ok(const struct mps_conn *conn,
			     const struct mps_sf *sf);
void mps__ranges_add(struct mps_range *r,
		     unsigned int *n,
		     unsigned int cap,
		     uint64_t dsn,
		     uint64_t len);
void mps__ranges_trim(struct mps_range *r, unsigned int *n, uint64_t una);
void mps__sf_lose(struct mps_conn *conn, struct mps_sf *sf, int err);
void mps__sf_reset_alone(struct mps_conn *conn,
			 struct mps_sf *sf,
			 int err,
			 uint8_t rs);

/* Records on a subflow still joining: 0 (handled), 1 (the join came up,
 * go on with the record) or a negative errno. */
int mps__rx_join_phase(struct mps_conn *conn,
		       struct mps_sf *sf,
		       const struct mps_option *opt);
int mps__rx_add_addr(struct mps_conn *conn, const struct mps_add_addr *aa);
int mps__rx_remove_addr(struct mps_conn *conn,
			const struct mps_remove_addr *ra);
int mps__rx_mp_prio(struct mps_conn *conn,
		    struct mps_sf *sf,
		    const struct mps_mp_prio *prio);

/* Stall detection at each tick: microseconds to the next check, or 0. */
uint64_t mps__tick_stall(struct mps_conn *conn);

void mps__sf_get_info(const struct mps_sf *sf, struct mps_sf_info *si);

/* Queues an event for the runtime; NULL when the queue is full. */
struct mps_conn_event *
mps__ev_push(struct mps_conn *conn, enum mps_conn_event_kind kind, int sf);

/* A responder join left its half-open phase (up, failed or freed). */
void mps__sf_half_open_end(struct mps_conn *conn, struct mps_sf *sf);

/* conn.c: history of delivered bytes, for comparing copies. */
int mps__hist_enable(struct mps_conn *conn);

#endif /* MPS_CONN_INT_H */
