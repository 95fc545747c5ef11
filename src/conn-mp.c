/*
 * conn-mp.c: several subflows in one connection, without sockets.
 *
 * The subflow set of a connection (see conn-int.h for how the core's
 * files divide the work): MP_JOIN subflows (RFC 8684 section 3.2),
 * address advertisement (3.4), MP_PRIO (3.3.8), subflows that fail or
 * stall and the reinjection of their data (3.3.6), the events that tell
 * the runtime what to do, and the statistics of each subflow.
 *
 * Decisions about several subflows:
 *
 * - MP_JOIN in-band has no TCP handshake to lean on.  Its three records
 *   (SYN, SYN/ACK, ACK forms) are the first of each direction of the new
 *   subflow, and the responder's first DSS stands for the fourth ACK of
 *   RFC 8684 section 3.2: the initiator sends no data before it.  The
 *   MP_JOIN HMACs use the connection's agreed version.
 *
 * - A subflow that fails (error, end of stream, MP_TCPRST, protocol
 *   error, refused join) leaves the connection for good: its number is
 *   not reused, it is never scheduled again, and the data it carried
 *   that the data ACK does not cover yet is sent again on the others.  A
 *   window or data ACK queued on it is sent again too.  The connection
 *   ends as before only when no live subflow remains.
 *
 * - A stalled subflow (see MPS_STALL_RTTS) stays in the connection but is
 *   not scheduled until the caller's metrics show it moving again.  Only
 *   the subflow that carried the byte the data ACK waits for is suspected;
 *   the others are waiting behind the same hole.
 *
 * - Pure data ACKs go on the subflow data last arrived on (its reverse
 *   path is known to work), unless that one cannot write now.
 *
 * - A backup subflow is one that either end asked to be a backup (B flag,
 *   MP_PRIO): this end then sends data on it only when no other subflow
 *   is usable, as the peer asked or as it asked the peer to do.
 *
 * - Redundant scheduling sends every byte on every usable subflow, but a
 *   subflow that lags skips bytes the data ACK already covers.
 *
 * - REMOVE_ADDR does not close subflows here: the core does not know
 *   which address a subflow's socket uses.  The runtime gets the event and
 *   reports the subflows it closes with mps_conn_sf_closed().
 *
 * - Joins under attack (RFC 7430): a join the peer opens is
 *   half-open until its ACK form's HMAC checks out; a connection has at
 *   most MPS_CONN_MAX_HALF_OPEN of them, and the process's total is a
 *   counter the runtime caps.  A SYN form that repeats a nonce of an
 *   earlier one on the same connection (the last MPS_CONN_JOIN_NONCES)
 *   is a replay and is refused.  Every refusal resets that subflow alone.
 *
 * - Signals that change the connection (REMOVE_ADDR, MP_PRIO) count only
 *   on an established connection and an authenticated subflow: the
 *   initial one after the MP_CAPABLE exchange, a join after both HMACs.
 *   Out of place they are ignored and counted (signals_refused).
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#include "conn-int.h"

/*
 * Subflows leaving the connection.
 */

/* Whether a live subflow other than sf remains. */
bool mps__conn_has_other(const struct mps_conn *conn, const struct mps_sf *sf)
{
	int i;

	for (i = 0; i < conn->nsf; i++)
		if (conn->sf[i] != sf && sf_live(conn->sf[i]))
			return true;
	return false;
}

/* Responder joins of the whole process still proving the keys. */
static atomic_ulong half_open_joins;

unsigned long mps_conn_half_open_joins(void)
{
	return atomic_load(&half_open_joins);
}

static void sf_half_open_begin(struct mps_conn *conn, struct mps_sf *sf)
{
	sf->half_open = true;
	conn->half_open++;
	atomic_fetch_add(&half_open_joins, 1);
}

void mps__sf_half_open_end(struct mps_conn *conn, struct mps_sf *sf)
{
	if (!sf->half_open)
		return;
	sf->half_open = false;
	conn->half_open--;
	atomic_fetch_sub(&half_open_joins, 1);
}

/* A zeroed event slot at the queue's tail, or NULL (dropped, counted). */
struct mps_conn_event *
mps__ev_push(struct mps_conn *conn, enum mps_conn_event_kind kind, int sf)
{
	struct mps_conn_event *ev;

	if (conn->ev_len == MPS_CONN_EVENTS) {
		conn->stats.events_dropped++;
		return NULL;
	}
	ev = &conn->ev[(conn->ev_head + conn->ev_len) % MPS_CONN_EVENTS];
	conn->ev_len++;
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->sf = sf;
	return ev;
}

static void ev_sf_failed(struct mps_conn *conn, struct mps_sf *sf, int err)
{
	struct mps_conn_event *ev =
		mps__ev_push(conn, MPS_EV_SUBFLOW_FAILED, sf_index(conn, sf));

	if (ev)
		ev->err = err;
}

/* Appends a range, coalescing with the last one when they touch. */
void mps__ranges_add(struct mps_range *r,
		     unsigned int *n,
		     unsigned int cap,
		     uint64_t dsn,
		     uint64_t len)
{
	struct mps_range *last = *n ? &r[*n - 1] : NULL;
	uint64_t lo, hi;

	if (len == 0)
		return;
	if (last && last->dsn + last->len == dsn) {
		last->len += len;
		return;
	}
	if (*n < cap) {
		r[*n].dsn = dsn;
		r[(*n)++].len = len;
		return;
	}
	/* Full: the last range spans the gap; the extra bytes are unacked
	 * data too, so at worst they are sent twice. */
	lo = mps_dsn_min(last->dsn, dsn);
	hi = mps_dsn_max(last->dsn + last->len, dsn + len);
	last->dsn = lo;
	last->len = hi - lo;
}

/* Drops what the data ACK una covers. */
void mps__ranges_trim(struct mps_range *r, unsigned int *n, uint64_t una)
{
	unsigned int i, j = 0;

	for (i = 0; i < *n; i++) {
		uint64_t end = r[i].dsn + r[i].len;

		if (!mps_dsn_after(end, una))
			continue;
		if (mps_dsn_before(r[i].dsn, una)) {
			r[i].len = end - una;
			r[i].dsn = una;
		}
		r[j++] = r[i];
	}
	*n = j;
}

/* Queues the unacknowledged data sf carried for another subflow. */
static void sf_reinject_all(struct mps_conn *conn, struct mps_sf *sf)
{
	unsigned int i;

	mps__ranges_trim(sf->sent, &sf->nsent, conn->snd_una);
	for (i = 0; i < sf->nsent; i++)
		mps__ranges_add(conn->reinj,
				&conn->nreinj,
				MPS_CONN_REINJ,
				sf->sent[i].dsn,
				sf->sent[i].len);
	sf->nsent = 0;
	if (sf->carried_fin && !conn->fin_acked)
		conn->fin_sent = false; /* the DATA_FIN goes again */
	sf->carried_fin = false;
}

/*
 * With no subflow left that may carry data, the stalled ones are all
 * there is: they are tried again rather than leaving the connection
 * stuck (the caller may not report metrics for a lone subflow, so
 * nothing else would ever end their stall).
 */
static void conn_unstall_if_alone(struct mps_conn *conn)
{
	int i;

	for (i = 0; i < conn->nsf; i++)
		if (sf_data_ok(conn->sf[i]))
			return;
	for (i = 0; i < conn->nsf; i++)
		if (sf_live(conn->sf[i]))
			conn->sf[i]->stalled = false;
}

/*
 * The last live subflow forgets its metrics: the caller reports none for
 * a lone subflow (there is nothing to choose), and a room counted down
 * from the last report would never grow again.  It counts as unlimited
 * until the next report, as a subflow that never had one.
 */
static void conn_forget_metrics_if_one(struct mps_conn *conn)
{
	struct mps_sf *last = NULL;
	int i;

	for (i = 0; i < conn->nsf; i++) {
		if (!sf_live(conn->sf[i]))
			continue;
		if (last)
			return;
		last = conn->sf[i];
	}
	if (!last)
		return;
	last->have_m = false;
	last->acked_known = false;
	last->room = MPS_SF_ROOM_UNKNOWN;
	last->notsent = 0;
	last->stalled = false;
}

/*
 * Takes sf out of a connection that goes on: its unacknowledged data is
 * sent again elsewhere, and the runtime hears of it.
 */
void mps__sf_lose(struct mps_conn *conn, struct mps_sf *sf, int err)
{
	if (sf->failed)
		return;
	mps__sf_half_open_end(conn, sf);
	sf->failed = true;
	sf->dead = true;
	sf->stalled = false;
	sf_reinject_all(conn, sf);
	sf_drop_unsent(sf);
	mps__snd_release(conn);
	/* A window or ACK queued here may never leave: send them again. */
	if (conn->peer_known && sf->phase == SF_OPEN) {
		conn->window_force = true;
		conn->ack_due = true;
	}
	conn_unstall_if_alone(conn);
	conn_forget_metrics_if_one(conn);
	ev_sf_failed(conn, sf, err);
}

/* Resets sf alone (RFC 8684 section 3.6); v0 leaves it to a TCP RST. */
void mps__sf_reset_alone(struct mps_conn *conn,
			 struct mps_sf *sf,
			 int err,
			 uint8_t rs)
{
	mps__sf_lose(conn, sf, err);
	if (conn->version == MPS_VERSION_1) {
		sf->rst_due = true;
		sf->rst_reason = rs;
	}
}

/*
 * MP_JOIN, receiving side (RFC 8684 section 3.2).  A is the subflow's
 * initiator, B its responder; the HMAC helpers take keys and nonces by
 * those roles.
 */

/* A fresh 32-bit nonce from the OpenSSL RNG. */
static int nonce_draw(uint32_t *nonce)
{
	uint64_t r;
	int err = mps_crypto_key_new(&r);

	if (!err)
		*nonce = (uint32_t)r;
	mps_crypto_wipe(&r, sizeof(r));
	return err;
}

/* This end refuses a join: MP_TCPRST on it alone.  Returns -EPERM. */
static int sf_refuse(struct mps_conn *conn, struct mps_sf *sf, uint8_t rs)
{
	conn->stats.joins_refused++;
	mps__sf_reset_alone(conn, sf, ECONNREFUSED, rs);
	return -EPERM;
}

/* Both HMACs checked out: the subflow may carry data. */
static void sf_join_up(struct mps_conn *conn, struct mps_sf *sf)
{
	mps__sf_half_open_end(conn, sf);
	sf->phase = SF_OPEN;
	sf->ack_first = true;
	sf->ack_sent = rcv_data_ack(conn);
	sf->ack_rcvd = conn->snd_una;
	sf->red_nxt = conn->snd_una;
	conn->stats.joins_accepted++;
	mps__ev_push(conn, MPS_EV_SUBFLOW_ESTABLISHED, sf_index(conn, sf));
}

static int sf_emit_join(struct mps_conn *conn,
			struct mps_sf *sf,
			const struct mps_mp_join *join)
{
	struct mps_option opt = {.subtype = MPS_MP_JOIN};

	opt.mp_join = *join;
	return mps__sf_emit(conn, sf, &opt, 0, 0, false);
}

/*
 * Whether nonce came in an earlier SYN form on this connection; remembers
 * it either way.  The initiator draws a fresh random nonce per join, so a
 * repeat is a replay of a recorded SYN (RFC 7430 worries about
 * replayed joins; the SYN alone proves nothing, but a replay is refused
 * before this end spends a nonce and two HMACs on it).
 */
static bool join_nonce_seen(struct mps_conn *conn, uint32_t nonce)
{
	unsigned int i;

	for (i = 0; i < conn->join_nonce_n; i++)
		if (conn->join_nonce[i] == nonce)
			return true;
	conn->join_nonce[conn->join_nonce_next] = nonce;
	conn->join_nonce_next =
		(conn->join_nonce_next + 1) % MPS_CONN_JOIN_NONCES;
	if (conn->join_nonce_n < MPS_CONN_JOIN_NONCES)
		conn->join_nonce_n++;
	return false;
}

/* Responder: the SYN form names our token and brings A's nonce. */
static int rx_join_syn(struct mps_conn *conn,
		       struct mps_sf *sf,
		       const struct mps_mp_join *syn)
{
	struct mps_mp_join ans = {.form = MPS_JOIN_SYNACK};
	uint8_t mac[MPS_JOIN_TRUNC_HMAC_LEN];

	if (syn->token != conn->local.token || !mps_conn_can_join(conn))
		return sf_refuse(conn, sf, MPS_RST_MPTCP_ERROR);
	if (join_nonce_seen(conn, syn->nonce)) {
		conn->stats.joins_replayed++;
		return sf_refuse(conn, sf, MPS_RST_MPTCP_ERROR);
	}
	sf->peer_nonce = syn->nonce;
	sf->peer_addr_id = syn->addr_id;
	sf->backup_peer = syn->backup;
	if (nonce_draw(&sf->local_nonce) ||
	    mps_crypto_join_synack_hmac(conn->version,
					conn->peer_key,
					conn->local.key,
					sf->peer_nonce,
					sf->local_nonce,
					mac))
		return sf_refuse(conn, sf, MPS_RST_NO_RESOURCES);

	ans.backup = sf->backup_local;
	ans.addr_id = sf->local_addr_id;
	ans.nonce = sf->local_nonce;
	memcpy(ans.hmac, mac, sizeof(mac));
	if (sf_emit_join(conn, sf, &ans))
		return sf_refuse(conn, sf, MPS_RST_NO_RESOURCES);
	sf->phase = SF_JOIN_WAIT_ACK;
	return 0;
}

/* Initiator: check B's truncated HMAC, answer with ours in full. */
static int rx_join_synack(struct mps_conn *conn,
			  struct mps_sf *sf,
			  const struct mps_mp_join *sa)
{
	struct mps_mp_join ack = {.form = MPS_JOIN_ACK};
	uint8_t mac[MPS_JOIN_TRUNC_HMAC_LEN];

	if (mps_crypto_join_synack_hmac(conn->version,
					conn->local.key,
					conn->peer_key,
					sf->local_nonce,
					sa->nonce,
					mac))
		return sf_refuse(conn, sf, MPS_RST_NO_RESOURCES);
	if (!mps_crypto_mem_equal(mac, sa->hmac, sizeof(mac))) {
		conn->stats.joins_bad_hmac++;
		return sf_refuse(conn, sf, MPS_RST_MPTCP_ERROR);
	}
	sf->peer_nonce = sa->nonce;
	sf->peer_addr_id = sa->addr_id;
	sf->backup_peer = sa->backup;
	if (mps_crypto_join_ack_hmac(conn->version,
				     conn->local.key,
				     conn->peer_key,
				     sf->local_nonce,
				     sf->peer_nonce,
				     ack.hmac) ||
	    sf_emit_join(conn, sf, &ack))
		return sf_refuse(conn, sf, MPS_RST_NO_RESOURCES);
	sf->phase = SF_JOIN_WAIT_EST;
	return 0;
}

/*
 * Responder: A's full HMAC.  RFC 8684 section 3.2: the subflow is not
 * established, and carries no data, before it checks out.  Our first DSS
 * tells A that it did.
 */
static int rx_join_ack(struct mps_conn *conn,
		       struct mps_sf *sf,
		       const struct mps_mp_join *ack)
{
	uint8_t mac[MPS_JOIN_HMAC_LEN];

	if (mps_crypto_join_ack_hmac(conn->version,
				     conn->peer_key,
				     conn->local.key,
				     sf->peer_nonce,
				     sf->local_nonce,
				     mac))
		return sf_refuse(conn, sf, MPS_RST_NO_RESOURCES);
	if (!mps_crypto_mem_equal(mac, ack->hmac, sizeof(mac))) {
		conn->stats.joins_bad_hmac++;
		return sf_refuse(conn, sf, MPS_RST_MPTCP_ERROR);
	}
	sf_join_up(conn, sf);
	sf->ack_now = true;
	return 0;
}

static bool join_form_is(const struct mps_option *opt, enum mps_join_form f)
{
	return opt->subtype == MPS_MP_JOIN && opt->mp_join.form == f;
}

/*
 * A record on a subflow still joining.  Returns 0 when it was the join's
 * business, 1 when the join just came up and the record is for the
 * connection (the responder's first DSS), or a negative errno.
 */
int mps__rx_join_phase(struct mps_conn *conn,
		       struct mps_sf *sf,
		       const struct mps_option *opt)
{
	if (opt->subtype == MPS_MP_TCPRST) {
		mps__sf_lose(conn, sf, ECONNREFUSED); /* the peer refused it */
		return 0;
	}
	switch (sf->phase) {
	case SF_JOIN_WAIT_SYN:
		if (join_form_is(opt, MPS_JOIN_SYN))
			return rx_join_syn(conn, sf, &opt->mp_join);
		break;
	case SF_JOIN_WAIT_SYNACK:
		if (join_form_is(opt, MPS_JOIN_SYNACK))
			return rx_join_synack(conn, sf, &opt->mp_join);
		break;
	case SF_JOIN_WAIT_ACK:
		if (join_form_is(opt, MPS_JOIN_ACK))
			return rx_join_ack(conn, sf, &opt->mp_join);
		break;
	case SF_JOIN_WAIT_EST:
		/* The responder's first DSS stands for the fourth ACK. */
		if (opt->subtype == MPS_DSS) {
			sf_join_up(conn, sf);
			return 1;
		}
		break;
	default:
		break;
	}
	return sf_refuse(conn, sf, MPS_RST_MPTCP_ERROR);
}

/*
 * Address advertisement, receiving side (RFC 8684 section 3.4).
 */

/* RFC 8684 section 3.4.1: the HMAC keyed by the sender's key first. */
static bool add_addr_hmac_ok(const struct mps_conn *conn,
			     const struct mps_add_addr *aa)
{
	uint8_t mac[MPS_ADD_ADDR_HMAC_LEN];

	if (!aa->has_hmac ||
	    mps_crypto_add_addr_hmac(conn->peer_key,
				     conn->local.key,
				     aa->addr_id,
				     aa->addr.family,
				     aa->addr.bytes,
				     aa->has_port ? aa->port : 0,
				     mac))
		return false;
	return mps_crypto_mem_equal(mac, aa->hmac, sizeof(mac));
}

/* Remembers an address by id; false when the table is full. */
static bool addr_remember(struct mps_conn *conn, const struct mps_add_addr *aa)
{
	int i, free_slot = -1;

	for (i = 0; i < MPS_CONN_MAX_ADDRS; i++) {
		if (conn->addrs[i].used && conn->addrs[i].id == aa->addr_id)
			break;
		if (!conn->addrs[i].used && free_slot < 0)
			free_slot = i;
	}
	if (i == MPS_CONN_MAX_ADDRS)
		i = free_slot;
	if (i < 0)
		return false;
	conn->addrs[i].used = true;
	conn->addrs[i].id = aa->addr_id;
	conn->addrs[i].addr = aa->addr;
	conn->addrs[i].port = aa->has_port ? aa->port : 0;
	return true;
}

/* Queues a control option for the next established subflow peeked. */
static int sig_queue(struct mps_conn *conn, const struct mps_option *opt)
{
	if (conn->nsig == MPS_CONN_SIGNALS)
		return -ENOBUFS;
	conn->sig[conn->nsig++] = *opt;
	return 0;
}

/* RFC 8684 section 3.4.1: an accepted ADD_ADDR is echoed, E set. */
static void add_addr_echo(struct mps_conn *conn, const struct mps_add_addr *aa)
{
	struct mps_option opt = {.subtype = MPS_ADD_ADDR};

	opt.add_addr = *aa;
	opt.add_addr.echo = true;
	opt.add_addr.has_hmac = false;
	memset(opt.add_addr.hmac, 0, sizeof(opt.add_addr.hmac));
	if (sig_queue(conn, &opt))
		conn->stats.options_ignored++;
}

/*
 * Accepted only on an established connection and, in v1, with an HMAC
 * that checks out; RFC 8684 section 3.4.1 has a bad one ignored silently
 * (here: counted).  Echoes of our own announcements need nothing: the
 * record stream is reliable, nothing waits to be sent again.
 */
int mps__rx_add_addr(struct mps_conn *conn, const struct mps_add_addr *aa)
{
	struct mps_conn_event *ev;

	if (aa->echo)
		return 0;
	if (conn->state != MPS_CONN_ESTABLISHED ||
	    (conn->version == MPS_VERSION_1 && !add_addr_hmac_ok(conn, aa)) ||
	    !addr_remember(conn, aa)) {
		conn->stats.addrs_refused++;
		return 0;
	}

	conn->stats.addrs_accepted++;
	ev = mps__ev_push(conn, MPS_EV_ADDR_ADDED, -1);
	if (ev) {
		ev->addr_id = aa->addr_id;
		ev->addr = aa->addr;
		ev->port = aa->has_port ? aa->port : 0;
	}
	if (conn->version == MPS_VERSION_1)
		add_addr_echo(conn, aa);
	return 0;
}

/* RFC 8684 section 3.4.2: each id is forgotten and reported. */
int mps__rx_remove_addr(struct mps_conn *conn, const struct mps_remove_addr *ra)
{
	unsigned int k;
	int i;

	if (conn->state != MPS_CONN_ESTABLISHED) {
		conn->stats.signals_refused++;
		return 0;
	}
	for (k = 0; k < ra->count; k++) {
		struct mps_conn_event *ev;

		for (i = 0; i < MPS_CONN_MAX_ADDRS; i++)
			if (conn->addrs[i].used &&
			    conn->addrs[i].id == ra->ids[k])
				conn->addrs[i].used = false;
		ev = mps__ev_push(conn, MPS_EV_ADDR_REMOVED, -1);
		if (ev)
			ev->addr_id = ra->ids[k];
	}
	return 0;
}

/*
 * RFC 8684 section 3.3.8: the peer asks this end to use the subflow it
 * came on as a backup (or no longer).  A v0 address id is not looked at:
 * the option applies to its own subflow.
 */
int mps__rx_mp_prio(struct mps_conn *conn,
		    struct mps_sf *sf,
		    const struct mps_mp_prio *prio)
{
	struct mps_conn_event *ev;

	if (conn->state != MPS_CONN_ESTABLISHED || !sf_live(sf)) {
		conn->stats.signals_refused++;
		return 0;
	}
	sf->backup_peer = prio->backup;
	ev = mps__ev_push(conn, MPS_EV_PRIO_CHANGED, sf_index(conn, sf));
	if (ev)
		ev->backup = prio->backup;
	return 0;
}

/* The usable subflow that carried snd_una: the data ACK waits for it. */
static struct mps_sf *stall_suspect(struct mps_conn *conn)
{
	int i;

	for (i = 0; i < conn->nsf; i++) {
		struct mps_sf *sf = conn->sf[i];
		unsigned int k;

		if (!sf_data_ok(sf))
			continue;
		for (k = 0; k < sf->nsent; k++)
			if (mps_dsn_between(conn->snd_una,
					    sf->sent[k].dsn,
					    sf->sent[k].dsn + sf->sent[k].len))
				return sf;
	}
	return NULL;
}

bool mps__conn_other_data_ok(const struct mps_conn *conn,
			     const struct mps_sf *sf)
{
	int i;

	for (i = 0; i < conn->nsf; i++)
		if (conn->sf[i] != sf && sf_data_ok(conn->sf[i]))
			return true;
	return false;
}

/* How long sf may hold the data ACK back before it counts as stalled. */
static uint64_t sf_stall_us(const struct mps_sf *sf)
{
	uint64_t t = sf->have_m ? (uint64_t)sf->m.srtt_us * MPS_STALL_RTTS : 0;

	return t > MPS_STALL_MIN_US ? t : MPS_STALL_MIN_US;
}

/*
 * sf stalled: not scheduled until its metrics show progress (its
 * unacknowledged and unsent bytes drop), its data goes out elsewhere.
 */
static void sf_stall(struct mps_conn *conn, struct mps_sf *sf)
{
	sf->stalled = true;
	sf->stall_mark = UINT64_MAX;
	if (sf->have_m)
		sf->stall_mark = sf->m.unacked_bytes + sf->m.notsent_bytes;
	conn->stats.stalls++;
	sf_reinject_all(conn, sf);
	conn->una_since_us = conn->now_us;
	/* The data ACK and window sent here may never arrive: again,
	 * elsewhere (a stalled subflow takes no signals, sf_takes_ack). */
	if (conn->peer_known) {
		conn->ack_due = true;
		if (conn->win_sf == sf_index(conn, sf))
			conn->window_force = true;
	}
}

/*
 * A subflow whose TCP has bytes outstanding and has acknowledged none of
 * them for the stall time (the caller reports acked_bytes) is stalled,
 * whether it carries data or only this end's data ACKs and windows: that
 * is how the receiving end of a blackholed path finds out.  Returns
 * microseconds to the next check, or 0.
 */
static uint64_t tick_no_progress(struct mps_conn *conn)
{
	uint64_t next = 0;
	int i;

	for (i = 0; i < conn->nsf; i++) {
		struct mps_sf *sf = conn->sf[i];
		uint64_t limit, idle;

		if (!sf_data_ok(sf) || !sf->acked_known ||
		    !mps__conn_other_data_ok(conn, sf))
			continue;
		limit = sf_stall_us(sf);
		idle = conn->now_us - sf->progress_us;
		if (idle < limit) {
			if (next == 0 || limit - idle < next)
				next = limit - idle;
			continue;
		}
		sf_stall(conn, sf);
	}
	return next;
}

/* Stall detection; returns microseconds until the next check, or 0. */
uint64_t mps__tick_stall(struct mps_conn *conn)
{
	struct mps_sf *sf;
	uint64_t limit, idle, next;

	if (conn->una_moved) {
		conn->una_since_us = conn->now_us;
		conn->una_moved = false;
	}
	if (conn->state != MPS_CONN_ESTABLISHED)
		return 0;
	conn_unstall_if_alone(conn);
	next = tick_no_progress(conn);
	if (!mps_dsn_after(conn->snd_nxt, conn->snd_una))
		return next;
	sf = stall_suspect(conn);
	if (!sf || !mps__conn_other_data_ok(conn, sf))
		return next;

	limit = sf_stall_us(sf);
	idle = conn->now_us - conn->una_since_us;
	if (idle >= limit) {
		sf_stall(conn, sf);
		return MPS_STALL_MIN_US;
	}
	return next && next < limit - idle ? next : limit - idle;
}

static enum mps_sf_state sf_state(const struct mps_sf *sf)
{
	if (sf->closed)
		return MPS_SF_CLOSED;
	if (sf->failed || sf->dead)
		return MPS_SF_FAILED;
	if (sf->phase != SF_OPEN)
		return MPS_SF_JOINING;
	return sf->stalled ? MPS_SF_STALLED : MPS_SF_ESTABLISHED;
}

void mps__sf_get_info(const struct mps_sf *sf, struct mps_sf_info *si)
{
	si->state = sf_state(sf);
	si->join = sf->join;
	si->backup = sf->backup_local;
	si->peer_backup = sf->backup_peer;
	si->local_addr_id = sf->local_addr_id;
	si->peer_addr_id = sf->peer_addr_id;
	si->bytes_out = sf->bytes_out;
	si->bytes_in = sf->bytes_in;
	si->reinjected = sf->reinjected;
}

/*
 * Joins, addresses, priorities and events: the caller's side.
 */

bool mps_conn_can_join(const struct mps_conn *conn)
{
	bool mpc_done = conn->role == MPS_ROLE_SERVER
				? conn->got_third
				: conn->mpc_sent && !conn->mpc_ack_due;

	return conn->state == MPS_CONN_ESTABLISHED && conn->peer_known &&
	       mpc_done && conn->first_map;
}

int mps_conn_sf_add_join(struct mps_conn *conn,
			 uint8_t local_addr_id,
			 bool backup)
{
	struct mps_mp_join syn = {.form = MPS_JOIN_SYN};
	struct mps_sf *sf;
	uint32_t nonce;
	int err;

	if (conn_is_over(conn) || conn->state == MPS_CONN_FALLBACK)
		return -ENOTCONN;
	/* RFC 8684 section 3.2: not before the initial subflow is fully
	 * MPTCP and has carried data with a mapping. */
	if (!mps_conn_can_join(conn))
		return -EAGAIN;
	err = nonce_draw(&nonce);
	if (!err)
		err = mps__hist_enable(conn);
	if (err)
		return err;
	sf = mps__sf_new(conn);
	if (!sf)
		return -ENOSPC;
	sf->join = true;
	sf->phase = SF_JOIN_WAIT_SYNACK;
	sf->local_nonce = nonce;
	sf->local_addr_id = local_addr_id;
	sf->backup_local = backup;
	syn.backup = backup;
	syn.addr_id = local_addr_id;
	syn.token = conn->peer_token;
	syn.nonce = nonce;
	sf_emit_join(conn, sf, &syn);
	return sf_index(conn, sf);
}

int mps_conn_sf_accept_join(struct mps_conn *conn)
{
	struct mps_sf *sf;

	if (conn->state != MPS_CONN_ESTABLISHED)
		return -ENOTCONN;
	if (conn->half_open >= MPS_CONN_MAX_HALF_OPEN) {
		conn->stats.joins_half_open_refused++;
		conn->stats.joins_refused++;
		return -EBUSY;
	}
	if (mps__hist_enable(conn))
		return -ENOMEM;
	sf = mps__sf_new(conn);
	if (!sf)
		return -ENOSPC;
	sf->join = true;
	sf->phase = SF_JOIN_WAIT_SYN;
	sf_half_open_begin(conn, sf);
	return sf_index(conn, sf);
}

int mps_join_parse_first(const uint8_t *buf, size_t len, uint32_t *token)
{
	struct mps_record rec;
	int err;

	/* MP_JOIN's layout is the same in v0 and v1. */
	err = mps_wire_decode_record(buf, len, MPS_VERSION_1, &rec);
	if (err)
		return err;
	if (rec.opt.subtype != MPS_MP_JOIN ||
	    rec.opt.mp_join.form != MPS_JOIN_SYN)
		return MPS_WIRE_E_BAD_FORM;
	*token = rec.opt.mp_join.token;
	return 0;
}

int mps_join_refusal(uint8_t *buf, size_t cap)
{
	struct mps_option opt = {.subtype = MPS_MP_TCPRST};

	opt.mp_tcprst.reason = MPS_RST_MPTCP_ERROR;
	return mps_wire_encode_record(&opt, MPS_VERSION_1, 0, buf, cap);
}

/*
 * A stalled subflow moves again: its TCP acknowledged more bytes, or
 * (acked_bytes unknown) its unsent and unacknowledged bytes dropped.  The
 * byte counts of TCP_INFO are segments times the MSS, which a blackholed
 * path lowers (MTU probing): a drop in them alone proves nothing there.
 */
static bool sf_moves_again(const struct mps_sf *sf,
			   const struct mps_sf_metrics *m)
{
	if (sf->acked_known || m->acked_bytes > 0)
		return m->acked_bytes > sf->m.acked_bytes;
	return m->unacked_bytes + m->notsent_bytes < sf->stall_mark;
}

void mps_conn_sf_metrics(struct mps_conn *conn,
			 int sfi,
			 const struct mps_sf_metrics *m)
{
	struct mps_sf *sf = conn_sf(conn, sfi);

	if (!sf)
		return;
	if (!sf->have_m || m->acked_bytes != sf->m.acked_bytes ||
	    m->unacked_bytes + m->notsent_bytes == 0)
		sf->progress_us = conn->now_us;
	if (sf->stalled && sf_moves_again(sf, m))
		sf->stalled = false;
	sf->m = *m;
	sf->have_m = true;
	sf->acked_known = sf->acked_known || m->acked_bytes > 0;
	sf->room = m->room;
	sf->notsent = m->notsent_bytes;
}

int mps_conn_set_backup(struct mps_conn *conn, int sfi, bool backup)
{
	struct mps_sf *sf = conn_sf(conn, sfi);

	if (!sf)
		return -EINVAL;
	if (!sf_live(sf) || conn->state != MPS_CONN_ESTABLISHED)
		return -ENOTCONN;
	sf->backup_local = backup;
	sf->prio_due = true;
	return 0;
}

int mps_conn_announce(struct mps_conn *conn,
		      uint8_t addr_id,
		      const struct mps_addr *addr,
		      uint16_t port)
{
	struct mps_option opt = {.subtype = MPS_ADD_ADDR};
	struct mps_add_addr *aa = &opt.add_addr;
	int err;

	if (conn->state != MPS_CONN_ESTABLISHED || !conn->peer_known)
		return -ENOTCONN;
	if (addr->family != AF_INET && addr->family != AF_INET6)
		return -EAFNOSUPPORT;

	aa->addr_id = addr_id;
	aa->addr = *addr;
	if (addr->family == AF_INET)
		memset(aa->addr.bytes + 4, 0, sizeof(aa->addr.bytes) - 4);
	aa->has_port = port != 0;
	aa->port = port;
	if (conn->version == MPS_VERSION_1) {
		/* RFC 8684 section 3.4.1: keyed by the sender's key first. */
		aa->has_hmac = true;
		err = mps_crypto_add_addr_hmac(conn->local.key,
					       conn->peer_key,
					       addr_id,
					       addr->family,
					       aa->addr.bytes,
					       port,
					       aa->hmac);
		if (err)
			return err;
	}
	return sig_queue(conn, &opt);
}

int mps_conn_withdraw(struct mps_conn *conn, uint8_t addr_id)
{
	struct mps_option opt = {.subtype = MPS_REMOVE_ADDR};

	if (conn->state != MPS_CONN_ESTABLISHED || !conn->peer_known)
		return -ENOTCONN;
	opt.remove_addr.count = 1;
	opt.remove_addr.ids[0] = addr_id;
	return sig_queue(conn, &opt);
}

bool mps_conn_has_event(const struct mps_conn *conn)
{
	return conn->ev_len > 0;
}

bool mps_conn_in_flight(const struct mps_conn *conn)
{
	return conn->snd_nxt != conn->snd_una;
}

bool mps_conn_checksums(const struct mps_conn *conn)
{
	return conn->csum;
}

bool mps_conn_next_event(struct mps_conn *conn, struct mps_conn_event *ev)
{
	if (conn->ev_len == 0)
		return false;
	*ev = conn->ev[conn->ev_head];
	conn->ev_head = (conn->ev_head + 1) % MPS_CONN_EVENTS;
	conn->ev_len--;
	return true;
}
