/*
 * conn.c: the MPTCP state machine of one connection, without sockets.
 *
 * This file is the connection and its records; conn-mp.c adds what
 * several subflows need, sched.c the scheduler (see conn-int.h).
 *
 * How the pieces fit:
 *
 *   program --app_write--> snd ring --records--> subflow out queue --peek-->
 *   program <--app_peek--- rcv ring <--payload-- record parser <--input----
 *                                        \-- reassembly (out of order) --/
 *
 * The send ring holds the program's bytes from snd_base to snd_end:
 * snd_base is the peer's data ACK (snd_una), or an older byte that a
 * queued record still has to write; new data is cut at snd_nxt, data sent
 * again anywhere between snd_una and snd_nxt.  A queued record
 * is its header and option, encoded into a slot of the subflow's out
 * queue, plus a reference to its payload in the send ring, so that
 * payload is never copied on the way out and nothing is allocated per
 * record.  The receive ring holds in-order bytes for the program, from
 * rcv_read (the next byte the program reads) to rcv_nxt.
 *
 * Records to send are cut lazily, in mps_conn_sf_peek(): many inputs or
 * consumes between two peeks cost one data ACK.  That is also where the
 * scheduler decides which subflow carries which data.
 *
 * Decisions this file makes beyond RFC 8684 (see also conn.h):
 *
 * - Key derivation and the version.  The client sends its key before it
 *   knows the version the server picks, and may send data under it at
 *   once.  So a key's token and IDSN are always derived with the hash of
 *   the version its owner offered with it: the client's with the version
 *   it offered, the server's with the version it answered.  When both
 *   ends run the same version (every connection but a downgrade) this is
 *   exactly RFC 8684; on a v1 to v0 downgrade the client's IDSN stays
 *   SHA-256 derived.  The server draws its key again if it downgrades,
 *   since it has not sent it yet.
 *
 * - Checksums on early data.  Records the client sends before it has the
 *   server's answer carry a DSS checksum if and only if the client itself
 *   asked for checksums (its A flag); after the answer, both directions
 *   follow the negotiated choice.
 *
 * - The data window.  In-band records have no TCP window field, so the
 *   receiver advertises its data-level window (RFC 8684 section 3.3.4) in
 *   a private option (subtype 0xF, type 1).  The window counts from the
 *   data ACK of the last DSS that the same end sent on the same subflow
 *   before the option (from the first DSN of that direction if none).
 *   Until the first such option, the window is MPS_CONN_INITIAL_WINDOW.
 *   The right edge never moves back.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "conn-int.h"
#include "token.h"

/*
 * Rings.
 */

static int ring_init(struct mps_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc(cap);
	if (!r->buf)
		return -ENOMEM;
	r->cap = cap;
	return 0;
}

static void ring_free(struct mps_ring *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

static size_t ring_room(const struct mps_ring *r)
{
	return r->cap - r->len;
}

/* Appends up to n bytes, held back until ring_show(); returns how many. */
static size_t ring_put(struct mps_ring *r, const uint8_t *p, size_t n)
{
	size_t done = 0;

	if (n > ring_room(r))
		n = ring_room(r);
	while (done < n) {
		size_t tail = (r->head + r->len) % r->cap;
		size_t chunk = r->cap - tail;

		if (chunk > n - done)
			chunk = n - done;
		memcpy(r->buf + tail, p + done, chunk);
		r->len += chunk;
		done += chunk;
	}

	return n;
}

/* Makes every byte held visible. */
static void ring_show(struct mps_ring *r)
{
	r->vis = r->len;
}

/* The contiguous free space at the tail, for copying into directly. */
static uint8_t *ring_tail(const struct mps_ring *r, size_t *n)
{
	size_t tail = (r->head + r->len) % r->cap;
	size_t chunk = r->cap - tail;

	*n = chunk < ring_room(r) ? chunk : ring_room(r);
	return r->buf + tail;
}

/* Up to two iovecs for n held bytes from offset off; returns the count. */
static int
ring_iov(const struct mps_ring *r, size_t off, size_t n, struct iovec iov[2])
{
	size_t start = (r->head + off) % r->cap;
	size_t first = r->cap - start;

	if (n == 0)
		return 0;
	iov[0].iov_base = r->buf + start;
	if (first >= n) {
		iov[0].iov_len = n;
		return 1;
	}
	iov[0].iov_len = first;
	iov[1].iov_base = r->buf;
	iov[1].iov_len = n - first;
	return 2;
}

/* Drops n visible bytes from the front. */
static void ring_drop(struct mps_ring *r, size_t n)
{
	if (n > r->vis)
		n = r->vis;
	r->head = (r->head + n) % r->cap;
	r->len -= n;
	r->vis -= n;
	if (r->len == 0)
		r->head = 0;
}

/* Whether n held bytes from offset off equal data (all held, or false). */
static bool
ring_same(const struct mps_ring *r, size_t off, const uint8_t *data, size_t n)
{
	struct iovec iov[2];
	int k, i;

	if (n == 0)
		return true;
	if (off > r->len || n > r->len - off)
		return false;
	k = ring_iov(r, off, n, iov);
	for (i = 0; i < k; i++) {
		if (memcmp(iov[i].iov_base, data, iov[i].iov_len) != 0)
			return false;
		data += iov[i].iov_len;
	}
	return true;
}

/* Appends to a ring that forgets its oldest bytes to make room. */
static void ring_push_last(struct mps_ring *r, const uint8_t *p, size_t n)
{
	if (r->cap == 0)
		return;
	if (n > r->cap) {
		p += n - r->cap;
		n = r->cap;
	}
	if (n > ring_room(r))
		ring_drop(r, n - ring_room(r));
	ring_put(r, p, n);
	ring_show(r);
}

/*
 * Small helpers.
 */

static uint64_t rcv_nxt(const struct mps_conn *conn)
{
	return mps_reasm_rcv_nxt(&conn->reasm);
}

/* Whether the payload of this end's records carries a DSS checksum. */
static bool tx_csum(const struct mps_conn *conn)
{
	return conn->peer_known ? conn->csum : conn->params.checksum;
}

/* Whether the peer's records carry one (see the file comment). */
static bool rx_csum(const struct mps_conn *conn)
{
	if (conn->role == MPS_ROLE_SERVER && !conn->got_third)
		return conn->peer_csum;
	return conn->csum;
}

static void conn_drop_unsent(struct mps_conn *conn)
{
	int i;

	for (i = 0; i < conn->nsf; i++)
		sf_drop_unsent(conn->sf[i]);
}

static void conn_check_closed(struct mps_conn *conn)
{
	if (conn->state != MPS_CONN_ESTABLISHED &&
	    conn->state != MPS_CONN_HANDSHAKE)
		return;
	if (conn->fin_acked && conn->rcv_fin_done)
		conn->state = MPS_CONN_CLOSED;
}

/* The peer ended the connection (MP_FASTCLOSE, MP_TCPRST, lost subflow). */
static void conn_reset(struct mps_conn *conn, int err)
{
	if (conn->state == MPS_CONN_RESET)
		return;
	conn->state = MPS_CONN_RESET;
	conn->error = err;
	conn_drop_unsent(conn);
}

/*
 * Lets the send ring drop what the data ACK covers, except bytes a queued
 * record still has to write (a record's header is encoded, so its payload
 * must stay until written, even if another subflow got it acked).
 */
void mps__snd_release(struct mps_conn *conn)
{
	uint64_t keep = conn->snd_una;
	int i;

	for (i = 0; i < conn->nsf; i++) {
		const struct mps_sf *sf = conn->sf[i];
		unsigned int k;

		for (k = 0; k < sf->outq_len; k++) {
			const struct mps_out_rec *rec =
				&sf->outq[(sf->outq_head + k) % MPS_CONN_OUTQ];
			uint64_t start = rec->pay_dsn;

			if (rec->pay_len == 0)
				continue;
			if (k == 0 && sf->head_off > rec->head_len)
				start += sf->head_off - rec->head_len;
			if (mps_dsn_before(start, keep))
				keep = start;
		}
	}
	if (mps_dsn_after(keep, conn->snd_base)) {
		ring_drop(&conn->snd, (size_t)(keep - conn->snd_base));
		conn->snd_base = keep;
	}
}

/*
 * Subflow sf broke the protocol: reset it with MP_TCPRST (RFC 8684
 * section 3.6; v0 has no MP_TCPRST, so MP_FASTCLOSE says it there).  With
 * no other live subflow, the connection goes with it.  Returns err,
 * negative.
 */
static int
sf_fail(struct mps_conn *conn, struct mps_sf *sf, int err, uint8_t reason)
{
	conn->stats.protocol_errors++;
	if (!sf_live(sf) || mps__conn_has_other(conn, sf)) {
		mps__sf_reset_alone(conn, sf, ECONNRESET, reason);
		return err;
	}
	sf->dead = true;
	conn_reset(conn, ECONNRESET);
	if (conn->version == MPS_VERSION_1) {
		conn->tcprst_due = true;
		conn->tcprst_reason = reason;
	} else if (conn->peer_known) {
		conn->fastclose_due = true;
	}
	return err;
}

static int sf_protocol_error(struct mps_conn *conn, struct mps_sf *sf)
{
	return sf_fail(conn, sf, -EPROTO, MPS_RST_MPTCP_ERROR);
}

/* Subflow sf floods (conn-int.h): reset it, counted apart. */
static int sf_flood(struct mps_conn *conn, struct mps_sf *sf)
{
	conn->stats.floods++;
	return sf_fail(conn, sf, -EPROTO, MPS_RST_PROHIBITED);
}

/* One address signal from the peer; false once over its budget. */
static bool sig_budget_take(struct mps_conn *conn)
{
	const uint64_t step = 1000000 / MPS_SIG_PER_S;
	uint64_t got = 0;

	if (conn->now_us > conn->sig_credit_us)
		got = (conn->now_us - conn->sig_credit_us) / step;
	if (got >= MPS_SIG_BURST - conn->sig_tokens) {
		/* full: no credit is banked beyond the burst */
		conn->sig_tokens = MPS_SIG_BURST;
		conn->sig_credit_us = conn->now_us;
	} else if (got > 0) {
		conn->sig_tokens += (uint32_t)got;
		conn->sig_credit_us += got * step;
	}
	if (conn->sig_tokens == 0)
		return false;
	conn->sig_tokens--;
	return true;
}

/* Plain TCP from now on, in both directions (server only). */
static void conn_fall_back(struct mps_conn *conn)
{
	conn->state = MPS_CONN_FALLBACK;
	conn->rx_raw = true;
	conn->tx_raw = true;
	conn->snd_nxt = conn->snd_una;
	conn->snd_wr = conn->snd_una;
	conn->stats.fallbacks++;
}

/*
 * Keys.
 */

static int key_draw(struct mps_conn *conn, int version)
{
	int err;

	if (!conn->tokens) {
		err = mps_crypto_key_new(&conn->local.key);
		if (!err)
			err = mps_crypto_key_material(
				version, conn->local.key, &conn->local);
	} else {
		err = mps_token_new(conn->tokens, version, conn, &conn->local);
		conn->have_token = err == 0;
	}
	if (!err)
		conn->local_version = version;
	return err;
}

static void key_drop(struct mps_conn *conn)
{
	if (conn->have_token)
		mps_token_remove(conn->tokens, conn->local.token, conn);
	conn->have_token = false;
	mps_crypto_wipe(&conn->local, sizeof(conn->local));
}

/* Puts the send side's DSNs on the local IDSN: the first DSN is IDSN + 1. */
static void snd_rebase(struct mps_conn *conn)
{
	uint64_t first = conn->local.idsn + 1;
	uint64_t held = conn->snd_end - conn->snd_una;
	int i;

	conn->snd_una = first;
	conn->snd_base = first;
	conn->snd_nxt = first;
	conn->snd_wr = first;
	conn->snd_end = first + held;
	conn->snd_right = first + MPS_CONN_INITIAL_WINDOW;
	for (i = 0; i < conn->nsf; i++)
		conn->sf[i]->ack_rcvd = first;
}

/* The peer's key is known: its data starts at its IDSN + 1. */
static int peer_set_key(struct mps_conn *conn, uint64_t key, int version)
{
	uint64_t first;
	int err;
	int i;

	err = mps_crypto_key_derive(
		version, key, &conn->peer_token, &conn->peer_idsn);
	if (err)
		return err;

	conn->peer_key = key;
	conn->peer_version = version;
	conn->peer_known = true;
	first = conn->peer_idsn + 1;
	err = mps_reasm_init(
		&conn->reasm, first, conn->rcv.cap + MPS_CONN_REASM_SLACK);
	if (err)
		return err;

	conn->reasm_ready = true;
	conn->rcv_read = first;
	conn->rcv_right = first + MPS_CONN_INITIAL_WINDOW;
	conn->ack_told = first; /* the ACK implied so far (ack_urgent()) */
	for (i = 0; i < conn->nsf; i++)
		conn->sf[i]->ack_sent = first;
	return 0;
}

/*
 * Creating and freeing.
 */

static int conn_init(struct mps_conn *conn,
		     enum mps_role role,
		     const struct mps_conn_params *params,
		     struct mps_token_table *tokens,
		     uint64_t now_us)
{
	size_t rcv_cap = params->rcv_buf;
	int err;

	if (params->version != MPS_VERSION_0 &&
	    params->version != MPS_VERSION_1)
		return -EINVAL;
	if (params->snd_buf == 0)
		return -EINVAL;
	if (rcv_cap < MPS_CONN_INITIAL_WINDOW)
		rcv_cap = MPS_CONN_INITIAL_WINDOW;

	conn->role = role;
	conn->params = *params;
	conn->tokens = tokens;
	conn->state = MPS_CONN_HANDSHAKE;
	conn->created_us = now_us;
	conn->now_us = now_us;
	conn->una_since_us = now_us;
	conn->sig_tokens = MPS_SIG_BURST;
	conn->sig_credit_us = now_us;
	conn->version = params->version;
	err = ring_init(&conn->snd, params->snd_buf);
	if (!err)
		err = ring_init(&conn->rcv, rcv_cap);
	if (!err)
		err = key_draw(conn, params->version);
	if (!err)
		snd_rebase(conn);
	return err;
}

struct mps_conn *mps_conn_new(enum mps_role role,
			      const struct mps_conn_params *params,
			      struct mps_token_table *tokens,
			      uint64_t now_us)
{
	struct mps_conn *conn;
	int err;

	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		errno = ENOMEM;
		return NULL;
	}

	err = conn_init(conn, role, params, tokens, now_us);
	if (err) {
		mps_conn_free(conn);
		errno = -err;
		return NULL;
	}

	return conn;
}

/*
 * Frees everything.  The keys go first (mps_crypto_wipe), then the whole
 * structure is wiped too, since encoded records (MP_CAPABLE, MP_FASTCLOSE)
 * in the out queues and the record parser's buffer hold key bytes.
 */
void mps_conn_free(struct mps_conn *conn)
{
	int i;

	if (!conn)
		return;

	key_drop(conn);
	mps_crypto_wipe(&conn->peer_key, sizeof(conn->peer_key));
	if (conn->reasm_ready)
		mps_reasm_destroy(&conn->reasm);
	for (i = 0; i < conn->nsf; i++) {
		mps__sf_half_open_end(conn, conn->sf[i]);
		free(conn->sf[i]->rx_stage);
		mps_crypto_wipe(conn->sf[i], sizeof(*conn->sf[i]));
		free(conn->sf[i]);
	}
	ring_free(&conn->snd);
	ring_free(&conn->rcv);
	ring_free(&conn->hist);
	mps_crypto_wipe(conn, sizeof(*conn));
	free(conn);
}

int mps__hist_enable(struct mps_conn *conn)
{
#ifdef MPS_BENCH_NO_DUP_COMPARE
	/* bench/dupcost.sh only: no history, no comparison of copies */
	return 0;
#endif
	if (conn->hist.buf)
		return 0;
	return ring_init(&conn->hist, MPS_CONN_HIST);
}

size_t mps_conn_mem_bound(const struct mps_conn_params *params)
{
	size_t rcv = params->rcv_buf;

	if (rcv < MPS_CONN_INITIAL_WINDOW)
		rcv = MPS_CONN_INITIAL_WINDOW;
	return sizeof(struct mps_conn) +
	       (size_t)MPS_CONN_MAX_SF * sizeof(struct mps_sf) +
	       params->snd_buf + rcv +
	       (rcv + MPS_CONN_REASM_SLACK) + MPS_CONN_HIST +
	       (size_t)MPS_CONN_MAX_SF * MPS_WIRE_PAYLOAD_MAX;
}

size_t mps_conn_mem_used(const struct mps_conn *conn)
{
	size_t n = sizeof(*conn) + conn->snd.cap + conn->rcv.cap +
		   conn->hist.cap + (size_t)conn->nsf * sizeof(struct mps_sf);
	int i;

	if (conn->reasm_ready)
		n += mps_reasm_mem_used(&conn->reasm);
	for (i = 0; i < conn->nsf; i++)
		if (conn->sf[i]->rx_stage)
			n += MPS_WIRE_PAYLOAD_MAX;
	return n;
}

/* A fresh subflow slot, or NULL when every slot was used. */
struct mps_sf *mps__sf_new(struct mps_conn *conn)
{
	struct mps_sf *sf;

	if (conn->nsf >= MPS_CONN_MAX_SF)
		return NULL;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		return NULL;
	sf->num = conn->nsf;
	conn->sf[conn->nsf++] = sf;
	sf->used = true;
	sf->rx_ssn = 1;
	sf->tx_ssn = 1;
	sf->ack_rcvd = conn->snd_una;
	sf->red_nxt = conn->snd_una;
	sf->room = MPS_SF_ROOM_UNKNOWN;
	sf->progress_us = conn->now_us;
	return sf;
}

int mps_conn_sf_add(struct mps_conn *conn)
{
	/* Further subflows join: mps_conn_sf_add_join(), _accept_join(). */
	if (conn->nsf >= 1)
		return -EOPNOTSUPP;
	if (conn_is_over(conn))
		return -ENOTCONN;

	if (!mps__sf_new(conn))
		return -ENOMEM;
	if (conn->role == MPS_ROLE_CLIENT && conn->state == MPS_CONN_HANDSHAKE)
		conn->mpc_due = true;
	return 0;
}

/*
 * Sending: cutting records into a subflow's out queue.
 */

static unsigned int sf_outq_room(const struct mps_sf *sf)
{
	return MPS_CONN_OUTQ - sf->outq_len;
}

/* Queues a record whose payload, if any, is in the send ring. */
int mps__sf_emit(struct mps_conn *conn,
		 struct mps_sf *sf,
		 const struct mps_option *opt,
		 uint64_t pay_dsn,
		 size_t pay_len,
		 bool fin)
{
	struct mps_out_rec *rec;
	unsigned int slot;
	int n;

	if (sf_outq_room(sf) == 0)
		return -ENOBUFS;

	slot = (sf->outq_head + sf->outq_len) % MPS_CONN_OUTQ;
	rec = &sf->outq[slot];
	n = mps_wire_encode_record(
		opt, conn->version, pay_len, rec->head, sizeof(rec->head));
	if (n < 0)
		return -EINVAL; /* a bug here: the option is ours */

	rec->head_len = (uint8_t)n;
	rec->pay_dsn = pay_dsn;
	rec->pay_len = (uint32_t)pay_len;
	rec->fin = fin;
	sf->outq_len++;
	sf->outq_bytes += (size_t)n + pay_len;
	conn->stats.records_out++;
	return 0;
}

/* The DSS checksum of a mapping whose payload is in the send ring. */
static uint16_t snd_csum(const struct mps_conn *conn,
			 uint64_t dsn,
			 uint32_t ssn,
			 uint16_t data_len,
			 size_t pay_len)
{
	struct mps_csum csum;
	struct iovec iov[2];
	int n;

	n = ring_iov(&conn->snd, dsn - conn->snd_base, pay_len, iov);
	mps_dss_csum_start(&csum, dsn, ssn, data_len, 0);
	mps_csum_add_iov(&csum, iov, (size_t)n);
	return mps_csum_final(&csum);
}

/* Adds the data ACK to a DSS once the peer's key gives its DSN space. */
static void
dss_add_ack(struct mps_conn *conn, struct mps_sf *sf, struct mps_dss *dss)
{
	if (!conn->peer_known)
		return;
	dss->flags |= MPS_DSS_ACK | MPS_DSS_ACK64;
	dss->data_ack = rcv_data_ack(conn);
	sf->ack_sent = dss->data_ack;
	sf->ack_first = false;
	sf->ack_now = false;
	conn->ack_due = false;
	conn->ack_clock = false;
	conn->ack_late = false;
	conn->ack_told = dss->data_ack;
}

static bool snd_outstanding(const struct mps_conn *conn)
{
	return mps_dsn_after(conn->snd_nxt, conn->snd_una) || conn->nreinj;
}

/* Payload of n bytes at dsn went into a record on sf. */
static void
sf_sent(struct mps_conn *conn, struct mps_sf *sf, uint64_t dsn, size_t n)
{
	if (n == 0)
		return;
	if (!snd_outstanding(conn))
		conn->una_moved = true; /* the stall clock starts */
	mps__ranges_add(sf->sent, &sf->nsent, MPS_SF_RANGES, dsn, n);
	sf->tx_ssn += (uint32_t)n;
	sf->bytes_out += n;
	conn->stats.bytes_out += n;
}

/*
 * A DSS mapping of n bytes at dsn, with DATA_FIN if fin (a bare DATA_FIN
 * when n is 0).  The caller moves its own send position.
 */
static int sf_emit_map(struct mps_conn *conn,
		       struct mps_sf *sf,
		       uint64_t dsn,
		       size_t n,
		       bool fin)
{
	struct mps_option opt = {.subtype = MPS_DSS};
	struct mps_dss *dss = &opt.dss;
	int err;

	if (sf_outq_room(sf) == 0)
		return -ENOBUFS;
	dss->flags = MPS_DSS_MAP | MPS_DSS_DSN64 | (fin ? MPS_DSS_FIN : 0);
	dss->dsn = dsn;
	/* RFC 8684 section 3.3.3: a bare DATA_FIN has subflow sequence 0. */
	dss->ssn = n ? sf->tx_ssn : 0;
	dss->data_len = (uint16_t)(n + fin);
	if (tx_csum(conn)) {
		dss->has_checksum = true;
		dss->checksum = snd_csum(conn, dsn, dss->ssn, dss->data_len, n);
	}
	dss_add_ack(conn, sf, dss);

	err = mps__sf_emit(conn, sf, &opt, dsn, n, fin);
	if (err)
		return err;

	sf_sent(conn, sf, dsn, n);
	if (fin) {
		conn->fin_sent = true;
		sf->carried_fin = true;
	}
	return 0;
}

/* Bytes from pos on that the peer's window lets out now, up to max. */
static size_t
snd_sendable_at(const struct mps_conn *conn, uint64_t pos, size_t max)
{
	uint64_t unsent = 0;
	uint64_t wnd = 0;

	if (mps_dsn_after(conn->snd_end, pos))
		unsent = conn->snd_end - pos;
	if (mps_dsn_after(conn->snd_right, pos))
		wnd = conn->snd_right - pos;
	if (unsent > wnd)
		unsent = wnd;
	return unsent < max ? (size_t)unsent : max;
}

/* New bytes at snd_nxt that the peer's window lets out now, up to max. */
static size_t snd_sendable(const struct mps_conn *conn, size_t max)
{
	return snd_sendable_at(conn, conn->snd_nxt, max);
}

/* Data may go out: after our MP_CAPABLE, which follows the client's. */
static bool snd_allowed(const struct mps_conn *conn)
{
	return conn->mpc_sent && !conn->mpc_ack_due &&
	       (conn->state == MPS_CONN_HANDSHAKE ||
		conn->state == MPS_CONN_ESTABLISHED);
}

/* Our first MP_CAPABLE: the 12-byte form with our key. */
static int sf_emit_mpc(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt = {.subtype = MPS_MP_CAPABLE};
	struct mps_mp_capable *mpc = &opt.mp_capable;
	bool csum = conn->role == MPS_ROLE_SERVER ? conn->csum
						  : conn->params.checksum;

	mpc->version = (uint8_t)conn->version;
	mpc->flags = MPS_MPC_HMAC | (csum ? MPS_MPC_CHECKSUM : 0);
	mpc->nkeys = 1;
	mpc->sender_key = conn->local.key;
	return mps__sf_emit(conn, sf, &opt, 0, 0, false);
}

/*
 * The client's third-ACK form, echoing both keys (RFC 8684 section 3.1).
 * In v1 it carries the first data when none was sent yet: the data-level
 * length (and checksum) then map it at the first DSN, subflow sequence 1.
 */
static int sf_emit_mpc_ack(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt = {.subtype = MPS_MP_CAPABLE};
	struct mps_mp_capable *mpc = &opt.mp_capable;
	uint64_t first = conn->local.idsn + 1;
	size_t n = 0;
	int err;

	mpc->version = (uint8_t)conn->version;
	mpc->flags = MPS_MPC_HMAC | (conn->csum ? MPS_MPC_CHECKSUM : 0);
	mpc->nkeys = 2;
	mpc->sender_key = conn->local.key;
	mpc->receiver_key = conn->peer_key;
	if (conn->version == MPS_VERSION_1 && conn->snd_nxt == first)
		n = snd_sendable(conn, MPS_WIRE_PAYLOAD_MAX);
	if (n > 0) {
		mpc->has_data_len = true;
		mpc->data_len = (uint16_t)n;
		mpc->has_checksum = conn->csum;
		if (conn->csum)
			mpc->checksum =
				snd_csum(conn, first, 1, (uint16_t)n, n);
	}

	err = mps__sf_emit(conn, sf, &opt, first, n, false);
	if (err)
		return err;

	sf_sent(conn, sf, first, n);
	conn->snd_nxt += n;
	conn->mpc_ack_due = false;
	return 0;
}

static void sf_fill_handshake(struct mps_conn *conn, struct mps_sf *sf)
{
	if (sf_index(conn, sf) != 0)
		return;
	if (conn->mpc_due && sf_emit_mpc(conn, sf) == 0) {
		conn->mpc_due = false;
		conn->mpc_sent = true;
	}
	if (conn->mpc_ack_due)
		sf_emit_mpc_ack(conn, sf);
}

/* Bytes the caller may still write to sf before its room is used up. */
static uint64_t sf_room_left(const struct mps_sf *sf)
{
	if (sf->room == MPS_SF_ROOM_UNKNOWN)
		return MPS_SF_ROOM_UNKNOWN;
	return sf->room > sf->outq_bytes ? sf->room - sf->outq_bytes : 0;
}

/*
 * The largest data record worth cutting for sf now, when want bytes wait:
 * 0 when its out queue is full, or its room is smaller than both want and
 * MPS_SCHED_MIN_CHUNK (no tiny records while a bigger write is coming).
 */
static size_t sf_chunk_max(const struct mps_sf *sf, size_t want)
{
	uint64_t left = sf_room_left(sf);

	if (sf->outq_len >= MPS_CONN_OUTQ_DATA || want == 0)
		return 0;
	if (left >= MPS_WIRE_PAYLOAD_MAX)
		return MPS_WIRE_PAYLOAD_MAX;
	if (left < MPS_SCHED_MIN_CHUNK && left < want)
		return 0;
	return (size_t)left;
}

/* The scheduler's view of every subflow. */
static void sched_snapshot(const struct mps_conn *conn,
			   struct mps_sched_path p[MPS_CONN_MAX_SF])
{
	int i;

	for (i = 0; i < conn->nsf; i++) {
		const struct mps_sf *sf = conn->sf[i];

		p[i].usable = sf_data_ok(sf);
		p[i].backup = sf->backup_local || sf->backup_peer;
		p[i].srtt_us = sf->have_m ? sf->m.srtt_us : 0;
		p[i].rate = sf->have_m ? mps_sched_rate(&sf->m) : 0;
		p[i].queued = sf->notsent + sf->outq_bytes;
		p[i].room = sf_room_left(sf);
	}
}

/* Whether sf may carry data at all (the backup rule). */
static bool sf_may_send(const struct mps_conn *conn, const struct mps_sf *sf)
{
	struct mps_sched_path p[MPS_CONN_MAX_SF];

	sched_snapshot(conn, p);
	return mps_sched_eligible(p, conn->nsf, sf_index(conn, sf));
}

/* Whether the scheduler gives the next n new bytes to sf. */
static bool
sched_pick(const struct mps_conn *conn, const struct mps_sf *sf, size_t n)
{
	struct mps_sched_path p[MPS_CONN_MAX_SF];
	int self = sf_index(conn, sf);

	sched_snapshot(conn, p);
	if (conn->params.sched != MPS_SCHED_ROUNDROBIN)
		return mps_sched_earliest_backlog(
			p, conn->nsf, self, n, snd_sendable(conn, SIZE_MAX));
	/* A turn lasts a quantum, so that a scrap of data is not a turn. */
	if (conn->rr_sent < MPS_SCHED_RR_QUANTUM && conn->rr_last < conn->nsf &&
	    mps_sched_eligible(p, conn->nsf, conn->rr_last) &&
	    p[conn->rr_last].room > 0)
		return conn->rr_last == self;
	return mps_sched_roundrobin(p, conn->nsf, conn->rr_last) == self;
}

/*
 * Reinjection (RFC 8684 section 3.3.6): data of a failed or stalled
 * subflow goes out again ahead of new data.
 */
static void sf_fill_reinject(struct mps_conn *conn, struct mps_sf *sf)
{
	for (;;) {
		struct mps_range *r = &conn->reinj[0];
		size_t max, n;

		mps__ranges_trim(conn->reinj, &conn->nreinj, conn->snd_una);
		if (conn->nreinj == 0)
			return;
		max = sf_chunk_max(sf, r->len > SIZE_MAX ? SIZE_MAX : r->len);
		n = r->len < max ? (size_t)r->len : max;
		if (n == 0 || sf_emit_map(conn, sf, r->dsn, n, false))
			return;
		sf->reinjected += n;
		conn->stats.reinjected_bytes += n;
		r->dsn += n;
		r->len -= n;
		if (r->len == 0)
			memmove(conn->reinj,
				conn->reinj + 1,
				--conn->nreinj * sizeof(*r));
	}
}

/* New data at snd_nxt, chunk by chunk, while the scheduler says so. */
static void sf_fill_new(struct mps_conn *conn, struct mps_sf *sf)
{
	for (;;) {
		size_t max = sf_chunk_max(sf, snd_sendable(conn, SIZE_MAX));
		size_t n = snd_sendable(conn, max);
		bool fin;

		if (n == 0 || !sched_pick(conn, sf, n))
			return;
		/* The DATA_FIN rides on the last data when it can. */
		fin = conn->app_shut && conn->peer_known &&
		      conn->snd_nxt + n == conn->snd_end;
		if (sf_emit_map(conn, sf, conn->snd_nxt, n, fin))
			return;
		conn->snd_nxt += n;
		if (conn->rr_last != sf_index(conn, sf)) {
			conn->rr_last = sf_index(conn, sf);
			conn->rr_sent = 0;
		}
		conn->rr_sent += n;
	}
}

/* Redundant: sf sends every byte from its own position on. */
static void sf_fill_redundant(struct mps_conn *conn, struct mps_sf *sf)
{
	if (mps_dsn_before(sf->red_nxt, conn->snd_una))
		sf->red_nxt = conn->snd_una;
	for (;;) {
		size_t want = snd_sendable_at(conn, sf->red_nxt, SIZE_MAX);
		size_t n = snd_sendable_at(
			conn, sf->red_nxt, sf_chunk_max(sf, want));
		bool fin;

		if (n == 0)
			return;
		fin = conn->app_shut && conn->peer_known && !conn->fin_sent &&
		      sf->red_nxt + n == conn->snd_end;
		if (sf_emit_map(conn, sf, sf->red_nxt, n, fin))
			return;
		sf->red_nxt += n;
		if (mps_dsn_after(sf->red_nxt, conn->snd_nxt))
			conn->snd_nxt = sf->red_nxt;
	}
}

static void sf_fill_data(struct mps_conn *conn, struct mps_sf *sf)
{
	if (!snd_allowed(conn) || !sf_data_ok(sf) || !sf_may_send(conn, sf))
		return;
	sf_fill_reinject(conn, sf);
	if (conn->params.sched == MPS_SCHED_REDUNDANT)
		sf_fill_redundant(conn, sf);
	else
		sf_fill_new(conn, sf);
}

/* A bare DATA_FIN when the last data left without it. */
static void sf_fill_fin(struct mps_conn *conn, struct mps_sf *sf)
{
	if (!conn->app_shut || conn->fin_sent || !conn->peer_known)
		return;
	if (!snd_allowed(conn) || conn->snd_nxt != conn->snd_end)
		return;
	if (!sf_data_ok(sf) || !sf_may_send(conn, sf) || conn->nreinj > 0)
		return;
	sf_emit_map(conn, sf, conn->snd_end, 0, true);
}

/* An ACK-only DSS (RFC 8684 section 3.3.2). */
static int sf_emit_ack(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt = {.subtype = MPS_DSS};

	if (sf_outq_room(sf) == 0)
		return -ENOBUFS;
	dss_add_ack(conn, sf, &opt.dss);
	return mps__sf_emit(conn, sf, &opt, 0, 0, false);
}

/* The right edge this end can take now: the rcv ring's free space. */
static uint64_t rcv_right_now(const struct mps_conn *conn)
{
	return conn->rcv_read + conn->rcv.cap;
}

/* Whether the window opened by enough to be worth a record. */
static bool rcv_window_due(const struct mps_conn *conn)
{
	uint64_t step = conn->rcv.cap / 8;

	if (step == 0)
		step = 1;
	return conn->window_force ||
	       rcv_right_now(conn) - conn->rcv_right >= step;
}

/* The private data-window option, relative to the last data ACK sent. */
static int sf_emit_window(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt = {.subtype = MPS_MP_EXPERIMENTAL};
	uint64_t right = rcv_right_now(conn);
	int err;

	opt.mp_experimental.type = MPS_EXP_DATA_WINDOW;
	opt.mp_experimental.data_window = (uint32_t)(right - sf->ack_sent);
	err = mps__sf_emit(conn, sf, &opt, 0, 0, false);
	if (!err) {
		conn->rcv_right = right;
		conn->window_force = false;
		conn->win_sf = sf_index(conn, sf);
	}
	return err;
}

/*
 * Whether a pure data ACK or a window record should leave on sf: on the
 * subflow data last arrived on, unless that one cannot send promptly.  A
 * stalled subflow makes no progress: it takes signals only when no other
 * may carry them, or they could be lost with it.
 */
static bool sf_takes_ack(const struct mps_conn *conn, const struct mps_sf *sf)
{
	const struct mps_sf *pref = conn->sf[conn->ack_sf];

	if (sf->ack_now)
		return true;
	if (!sf_data_ok(sf))
		return !mps__conn_other_data_ok(conn, sf);
	if (sf == pref)
		return true;
	return !sf_data_ok(pref) || pref->outq_len > 0;
}

/*
 * A live subflow that takes no signals still gets a data ACK once the
 * data ACK moved a window step past the last one sent there: otherwise a
 * path that carries nothing from this end would never find out (TCP
 * retransmission, the peer's RST) that it died, and its pair would never
 * be joined again.  It carries no window, and the ACK still goes where it
 * belongs.
 */
static void sf_fill_keepalive(struct mps_conn *conn, struct mps_sf *sf)
{
	uint64_t step = conn->rcv.cap / 8 ? conn->rcv.cap / 8 : 1;
	bool due = conn->ack_due;

	if (!sf_data_ok(sf) || sf->ack_first || sf_outq_room(sf) == 0 ||
	    rcv_data_ack(conn) - sf->ack_sent < step)
		return;
	if (sf_emit_ack(conn, sf) == 0)
		conn->ack_due = due;
}

/*
 * Whether a data ACK that is due must leave now in a record of its own,
 * rather than wait for data of ours to carry it (MPS_ACK_DELAY_US; the
 * reasons are in conn-int.h):
 * - outside ESTABLISHED, and once the peer's DATA_FIN is in: closing
 *   waits for these ACKs, and they are few;
 * - a data ACK already sent is due again (a subflow that may have lost
 *   it failed or stalled): the peer's reinjection and stall detection
 *   wait for it;
 * - ack_hold() bytes wait for it, or the peer asked for it (an ACK-only
 *   record came in): the peer's send ring must not fill;
 * - the delay ran out (mps_conn_tick()): nothing of ours went out.
 * A window record takes its data ACK with it in any case
 * (sf_fill_control()).
 */
static size_t ack_hold(const struct mps_conn *conn)
{
	size_t hold = conn->rcv.cap / MPS_ACK_HOLD_SHARE;

	return hold > MPS_ACK_HOLD_MIN ? hold : MPS_ACK_HOLD_MIN;
}

static bool ack_urgent(const struct mps_conn *conn)
{
	uint64_t held = rcv_data_ack(conn) - conn->ack_told;

	if (!conn->ack_due)
		return false;
	if (conn->state != MPS_CONN_ESTABLISHED || conn->rcv_fin_done)
		return true;
	return held == 0 || held >= ack_hold(conn) || conn->ack_late;
}

/* The delayed-ACK clock: microseconds until the held ACK is due, or 0. */
static uint64_t tick_ack(struct mps_conn *conn)
{
	uint64_t waited;

	if (!conn->ack_due) {
		conn->ack_clock = false;
		conn->ack_late = false;
		return 0;
	}
	if (!conn->ack_clock) {
		conn->ack_clock = true;
		conn->ack_due_us = conn->now_us;
	}
	waited = conn->now_us - conn->ack_due_us;
	if (waited >= MPS_ACK_DELAY_US) {
		conn->ack_late = true;
		return 0;
	}
	return MPS_ACK_DELAY_US - waited;
}

/*
 * Whether to ask the peer for a data ACK (conn-int.h): half of the send
 * ring is sent and not acknowledged, and we have not asked since snd_una
 * last moved.
 */
static bool ack_wanted(const struct mps_conn *conn)
{
	return !conn->ack_asked && conn->state == MPS_CONN_ESTABLISHED &&
	       conn->snd_nxt - conn->snd_una >= conn->snd.cap / 2;
}

static void sf_fill_control(struct mps_conn *conn, struct mps_sf *sf)
{
	bool window, ask;

	if (!conn->peer_known || !conn->mpc_sent || conn->mpc_ack_due)
		return;
	if (!sf_takes_ack(conn, sf)) {
		sf_fill_keepalive(conn, sf);
		return;
	}
	window = rcv_window_due(conn);
	if (window && (sf->ack_first || sf->ack_sent != rcv_data_ack(conn)))
		conn->ack_due = true;
	/* Data cut above already carried a due ACK (sf_emit_map()). */
	ask = ack_wanted(conn);
	if (((conn->ack_due && (window || ack_urgent(conn))) || sf->ack_now ||
	     ask) &&
	    sf_outq_room(sf) >= (window ? 2u : 1u) &&
	    sf_emit_ack(conn, sf) == 0 && ask)
		conn->ack_asked = true;
	if (window && !conn->ack_due && !sf->ack_first)
		sf_emit_window(conn, sf);
}

/* MP_PRIO for this subflow, then signals waiting for any subflow. */
static void sf_fill_signals(struct mps_conn *conn, struct mps_sf *sf)
{
	if (!sf_live(sf) || conn->state != MPS_CONN_ESTABLISHED)
		return;
	if (sf->prio_due) {
		struct mps_option opt = {.subtype = MPS_MP_PRIO};

		opt.mp_prio.backup = sf->backup_local;
		if (mps__sf_emit(conn, sf, &opt, 0, 0, false) == 0)
			sf->prio_due = false;
	}
	while (conn->nsig > 0 && sf_outq_room(sf) > 0) {
		if (mps__sf_emit(conn, sf, &conn->sig[0], 0, 0, false))
			return;
		memmove(conn->sig,
			conn->sig + 1,
			--conn->nsig * sizeof(conn->sig[0]));
	}
}

/* After a reset: MP_FASTCLOSE or MP_TCPRST, once. */
static void sf_fill_reset(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt;

	memset(&opt, 0, sizeof(opt));
	if (conn->fastclose_due && conn->peer_known) {
		/* RFC 8684 section 3.5: it carries the receiver's key. */
		opt.subtype = MPS_MP_FASTCLOSE;
		opt.mp_fastclose.receiver_key = conn->peer_key;
	} else if (conn->tcprst_due && conn->version == MPS_VERSION_1) {
		opt.subtype = MPS_MP_TCPRST;
		opt.mp_tcprst.reason = conn->tcprst_reason;
	} else {
		return;
	}

	if (mps__sf_emit(conn, sf, &opt, 0, 0, false) == 0) {
		conn->fastclose_due = false;
		conn->tcprst_due = false;
	}
}

/* A subflow reset alone: its MP_TCPRST. */
static void sf_fill_sf_reset(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt = {.subtype = MPS_MP_TCPRST};

	if (!sf->rst_due)
		return;
	opt.mp_tcprst.reason = sf->rst_reason;
	if (mps__sf_emit(conn, sf, &opt, 0, 0, false) == 0)
		sf->rst_due = false;
}

/*
 * RFC 8684 section 3.7: our MP_FAIL, if we found the damage, then our
 * infinite mapping (a DSS mapping of length 0 at the first byte the peer
 * has not acknowledged) with a data ACK, after which the rest of this
 * direction is raw bytes from that DSN on.
 */
static void sf_fill_fail(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_option opt;
	struct mps_dss *dss = &opt.dss;

	if (!sf_live(sf))
		return;
	if (conn->fail_due) {
		memset(&opt, 0, sizeof(opt));
		opt.subtype = MPS_MP_FAIL;
		opt.mp_fail.dsn = conn->fail_dsn;
		if (mps__sf_emit(conn, sf, &opt, 0, 0, false))
			return;
		conn->fail_due = false;
	}
	if (!conn->infmap_due || sf_outq_room(sf) == 0)
		return;
	memset(&opt, 0, sizeof(opt));
	opt.subtype = MPS_DSS;
	dss->flags = MPS_DSS_MAP | MPS_DSS_DSN64;
	dss->dsn = conn->snd_una;
	dss->ssn = sf->tx_ssn;
	if (tx_csum(conn)) {
		dss->has_checksum = true;
		dss->checksum = mps_dss_csum(dss->dsn, dss->ssn, 0, "", 0);
	}
	dss_add_ack(conn, sf, dss);
	if (mps__sf_emit(conn, sf, &opt, 0, 0, false))
		return;
	conn->infmap_due = false;
	conn->tx_raw = true;
}

/* Cuts what subflow sf should carry next into its out queue. */
static void sf_fill(struct mps_conn *conn, struct mps_sf *sf)
{
	if (sf->closed)
		return;
	if (sf->failed) {
		sf_fill_sf_reset(conn, sf);
		return;
	}
	if (conn->state == MPS_CONN_RESET) {
		sf_fill_reset(conn, sf);
		return;
	}
	if (conn->fail_due || conn->infmap_due) {
		sf_fill_fail(conn, sf);
		return;
	}
	if (conn->tx_raw || sf->phase != SF_OPEN)
		return;

	sf_fill_handshake(conn, sf);
	sf_fill_signals(conn, sf);
	sf_fill_data(conn, sf);
	sf_fill_fin(conn, sf);
	sf_fill_control(conn, sf);
}

/* Adds one piece to iov; returns the new count. */
static int
iov_push(struct iovec *iov, int n, int iovcnt, const void *base, size_t len)
{
	if (n >= iovcnt || len == 0)
		return n;
	iov[n].iov_base = (void *)(uintptr_t)base;
	iov[n].iov_len = len;
	return n + 1;
}

/* The iovecs of a record from its byte off on (those before are written). */
static int rec_iov(const struct mps_conn *conn,
		   const struct mps_out_rec *rec,
		   size_t off,
		   struct iovec *iov,
		   int n,
		   int iovcnt)
{
	size_t pw = off > rec->head_len ? off - rec->head_len : 0;
	struct iovec pay[2];
	int npay;
	int i;

	if (off < rec->head_len)
		n = iov_push(
			iov, n, iovcnt, rec->head + off, rec->head_len - off);
	npay = ring_iov(&conn->snd,
			rec->pay_dsn + pw - conn->snd_base,
			rec->pay_len - pw,
			pay);
	for (i = 0; i < npay; i++)
		n = iov_push(iov, n, iovcnt, pay[i].iov_base, pay[i].iov_len);
	return n;
}

int mps_conn_sf_peek(struct mps_conn *conn,
		     int sfi,
		     struct iovec *iov,
		     int iovcnt)
{
	struct mps_sf *sf = conn_sf(conn, sfi);
	unsigned int k;
	int n = 0;

	if (!sf || iovcnt <= 0)
		return 0;

	sf_fill(conn, sf);
	for (k = 0; k < sf->outq_len && n < iovcnt; k++) {
		unsigned int slot = (sf->outq_head + k) % MPS_CONN_OUTQ;

		n = rec_iov(conn,
			    &sf->outq[slot],
			    k == 0 ? sf->head_off : 0,
			    iov,
			    n,
			    iovcnt);
	}

	if (conn->tx_raw && k == sf->outq_len && !sf->closed) {
		struct iovec raw[2];
		int nraw = ring_iov(&conn->snd,
				    conn->snd_nxt - conn->snd_base,
				    conn->snd_end - conn->snd_nxt,
				    raw);

		for (k = 0; k < (unsigned int)nraw; k++)
			n = iov_push(iov,
				     n,
				     iovcnt,
				     raw[k].iov_base,
				     raw[k].iov_len);
	}

	return n;
}

/* The caller wrote take bytes of the first queued record. */
static void
sf_consume_rec(struct mps_conn *conn, struct mps_sf *sf, size_t take)
{
	struct mps_out_rec *rec = &sf->outq[sf->outq_head];
	size_t before = sf->head_off;
	size_t after = before + take;

	if (after > rec->head_len && rec->pay_len > 0) {
		uint64_t end = rec->pay_dsn + (after - rec->head_len);

		if (mps_dsn_after(end, conn->snd_wr))
			conn->snd_wr = end;
	}

	sf->head_off = after;
	sf->outq_bytes -= take;
	if (after < (size_t)rec->head_len + rec->pay_len)
		return;

	if (rec->fin)
		conn->snd_wr = conn->snd_end + 1;
	sf->outq_head = (sf->outq_head + 1) % MPS_CONN_OUTQ;
	sf->outq_len--;
	sf->head_off = 0;
}

/* Fallback: raw bytes leave the send ring as soon as they are written. */
static void sf_consume_raw(struct mps_conn *conn, size_t n)
{
	uint64_t unsent = conn->snd_end - conn->snd_nxt;

	if (n > unsent)
		n = (size_t)unsent;
	conn->snd_nxt += n;
	conn->snd_wr = conn->snd_nxt;
	ring_drop(&conn->snd, (size_t)(conn->snd_nxt - conn->snd_base));
	conn->snd_una = conn->snd_nxt;
	conn->snd_base = conn->snd_nxt;
	conn->stats.bytes_out += n;
}

/* The caller wrote n more bytes into sf's kernel socket. */
static void sf_wrote(struct mps_sf *sf, size_t n)
{
	if (sf->room != MPS_SF_ROOM_UNKNOWN)
		sf->room = sf->room > n ? sf->room - n : 0;
	sf->notsent += n;
}

void mps_conn_sf_consume(struct mps_conn *conn, int sfi, size_t n)
{
	struct mps_sf *sf = conn_sf(conn, sfi);

	if (!sf)
		return;

	sf_wrote(sf, n);
	while (n > 0 && sf->outq_len > 0) {
		struct mps_out_rec *rec = &sf->outq[sf->outq_head];
		size_t left = rec->head_len + rec->pay_len - sf->head_off;
		size_t take = n < left ? n : left;

		sf_consume_rec(conn, sf, take);
		n -= take;
	}

	if (n > 0 && conn->tx_raw)
		sf_consume_raw(conn, n);
	if (conn->snd_base != conn->snd_una)
		mps__snd_release(conn);
}

/*
 * Receiving: records in, payload out to the program.
 */

/* Moves the contiguous bytes the reassembly queue holds into the ring. */
static void rcv_pull_ready(struct mps_conn *conn)
{
	while (mps_reasm_ready(&conn->reasm) > 0) {
		size_t space;
		uint8_t *tail = ring_tail(&conn->rcv, &space);
		size_t n;

		if (space == 0)
			break;
		n = mps_reasm_read(&conn->reasm, tail, space);
		if (n == 0)
			break;
		conn->rcv.len += n;
	}
}

/* Bytes of the current record are checked: the program may see them. */
static void rcv_commit(struct mps_conn *conn)
{
	if (conn->rcv.vis == conn->rcv.len)
		return;
	ring_show(&conn->rcv);
	conn->ack_due = true;
}

/* The peer's DATA_FIN is reached once every byte before it arrived. */
static void rcv_check_fin(struct mps_conn *conn)
{
	if (!conn->rcv_fin_seen || conn->rcv_fin_done)
		return;
	if (rcv_nxt(conn) != conn->rcv_fin_dsn ||
	    conn->rcv.vis != conn->rcv.len)
		return;
	conn->rcv_fin_done = true;
	conn->ack_due = true;
	conn_check_closed(conn);
}

/*
 * Whether n bytes at dsn, all before rcv_nxt, are the ones this end holds
 * (the receive ring: rcv_read to rcv_nxt) or delivered (the history:
 * MPS_CONN_HIST bytes before rcv_read, once there is a second subflow).
 * Older bytes cannot be compared; they are counted in dup_unchecked.
 */
static bool
rcv_same(struct mps_conn *conn, uint64_t dsn, const uint8_t *data, size_t n)
{
#ifdef MPS_BENCH_NO_DUP_COMPARE
	return true; /* bench/dupcost.sh only */
#endif
	if (mps_dsn_before(dsn, conn->rcv_read)) {
		uint64_t hist_from = conn->rcv_read - conn->hist.len;
		uint64_t old = conn->rcv_read - dsn;
		size_t k = old < n ? (size_t)old : n;
		size_t lost = 0;

		if (mps_dsn_before(dsn, hist_from)) {
			uint64_t u = hist_from - dsn;

			lost = u < k ? (size_t)u : k;
			conn->stats.dup_unchecked += lost;
		}
		if (!ring_same(&conn->hist,
			       (size_t)(dsn + lost - hist_from),
			       data + lost,
			       k - lost))
			return false;
		dsn += k;
		data += k;
		n -= k;
	}
	return ring_same(&conn->rcv, (size_t)(dsn - conn->rcv_read), data, n);
}

/*
 * RFC 7430 and RFC 8684 section 5: a copy of data that this
 * end already has, with different content.  The copy that came first
 * wins; the subflow that brought the other one is reset (MP_TCPRST,
 * reason 1) and the runtime hears of it.  Returns a negative errno.
 */
static int
rx_inconsistent(struct mps_conn *conn, struct mps_sf *sf, uint64_t dsn)
{
	struct mps_conn_event *ev;

	conn->stats.inconsistent_data++;
	ev = mps__ev_push(conn, MPS_EV_INCONSISTENT_DATA, sf_index(conn, sf));
	if (ev)
		ev->dsn = dsn;
	return sf_fail(conn, sf, -EPROTO, MPS_RST_MPTCP_ERROR);
}

/* n more bytes sf brought twice; false once its run of them, while the
 * connection got no new byte, makes a flood (conn-int.h). */
static bool dup_run_ok(struct mps_conn *conn, struct mps_sf *sf, uint64_t n)
{
	if (sf->dup_mark != rcv_nxt(conn)) {
		sf->dup_mark = rcv_nxt(conn);
		sf->dup_run = 0;
	}
	sf->dup_run += n;
	return sf->dup_run <= mps__dup_run_max(conn->rcv.cap);
}

/*
 * Delivers n checked bytes at dsn: straight into the ring when in order
 * with nothing queued (the common case), else through the reassembly
 * queue.  Bytes this end already has are compared with the copy it has.
 */
static int rcv_deliver(struct mps_conn *conn,
		       struct mps_sf *sf,
		       uint64_t dsn,
		       const uint8_t *data,
		       size_t n)
{
	struct mps_reasm_result res;
	size_t direct;
	int err;

	if (mps_dsn_before(dsn, rcv_nxt(conn))) {
		uint64_t behind = rcv_nxt(conn) - dsn;
		size_t skip = behind < n ? (size_t)behind : n;

		if (!rcv_same(conn, dsn, data, skip))
			return rx_inconsistent(conn, sf, dsn);
		conn->stats.dup_bytes += skip;
		if (!dup_run_ok(conn, sf, skip))
			return sf_flood(conn, sf);
		dsn += skip;
		data += skip;
		n -= skip;
	}
	if (n == 0)
		return 0;

	direct = mps_reasm_direct_len(&conn->reasm, dsn, n);
	if (direct > 0) {
		ring_put(&conn->rcv, data, direct);
		mps_reasm_advance(&conn->reasm, direct);
	}
	if (direct < n) {
		err = mps_reasm_insert(&conn->reasm,
				       dsn + direct,
				       data + direct,
				       n - direct,
				       &res);
		if (err == -ENOBUFS || err == -ENOMEM)
			return sf_fail(conn, sf, err, MPS_RST_NO_RESOURCES);
		if (err)
			return sf_protocol_error(conn, sf);
		if (res.mismatched)
			return rx_inconsistent(conn, sf, dsn + direct);
		conn->stats.dup_bytes += res.duplicate;
		if (res.duplicate && !dup_run_ok(conn, sf, res.duplicate))
			return sf_flood(conn, sf);
	}
	rcv_pull_ready(conn);
	return 0;
}

/* Our send side goes plain TCP: the infinite mapping, then raw bytes. */
static void conn_tx_fall_back(struct mps_conn *conn, uint64_t from)
{
	int i;

	if (conn->infmap_due || conn->tx_raw)
		return;
	conn->state = MPS_CONN_FALLBACK;
	conn->stats.fallbacks++;
	conn->infmap_due = true;
	conn->nreinj = 0;
	for (i = 0; i < conn->nsf; i++) {
		sf_drop_unsent(conn->sf[i]);
		conn->sf[i]->nsent = 0;
	}
	if (mps_dsn_after(from, conn->snd_una) &&
	    !mps_dsn_after(from, conn->snd_end))
		conn->snd_una = from; /* the peer has what lies before */
	conn->snd_nxt = conn->snd_una;
	conn->snd_wr = conn->snd_una;
	mps__snd_release(conn);
}

/*
 * RFC 8684 section 3.7: a checksum failed on the only subflow.  MP_FAIL
 * names the first byte this end is missing (rcv_nxt: the damaged
 * mapping's bytes were never delivered), both directions fall back to
 * plain TCP with an infinite mapping each, and each side sends raw bytes
 * from where the other's data ACK left it.  Until the peer's infinite
 * mapping arrives, payload of its records is dropped: it comes again raw.
 *
 * The exact-bytes decision.  With TCP options the damaged segment could
 * simply be taken as it is; here the damaged bytes sit in the kernel
 * stream and TCP will never take them back.  So the receiver delivers
 * nothing of the failed mapping (its payload is staged until the
 * checksum checks out), nor of any record behind it, and the sender
 * rewinds to the MP_FAIL's DSN (conn_tx_fall_back()) and sends every
 * byte from there again, raw, after its infinite mapping at that DSN.
 * The program thus reads each byte once and unaltered, at the cost of
 * resending what was in flight.  Plain TCP's half-close then ends each
 * direction (mps_conn_sf_closed()).
 */
static void conn_mp_fail(struct mps_conn *conn, struct mps_sf *sf)
{
	struct mps_conn_event *ev;

	conn->stats.mp_fail++;
	conn->fail_due = true;
	conn->fail_dsn = rcv_nxt(conn);
	conn->fail_wait = true;
	conn_tx_fall_back(conn, conn->snd_una);
	ev = mps__ev_push(conn, MPS_EV_MP_FAIL, sf_index(conn, sf));
	if (ev)
		ev->dsn = conn->fail_dsn;
}

/*
 * A DSS checksum failed (RFC 8684 section 3.7): with another subflow
 * left, this one is reset (MP_TCPRST, middlebox interference) and the
 * sender sends its unacknowledged data again on the others; on the only
 * one, MP_FAIL and fallback (returns 0: the subflow goes on).  Nothing
 * of the damaged mapping reaches the program.
 */
static int rx_csum_fail(struct mps_conn *conn, struct mps_sf *sf)
{
	conn->stats.csum_errors++;
	sf->rx_pay_len = 0;
	if (!sf_live(sf) || mps__conn_has_other(conn, sf) ||
	    conn->state != MPS_CONN_ESTABLISHED)
		return sf_fail(conn, sf, -EBADMSG, MPS_RST_MIDDLEBOX);
	conn_mp_fail(conn, sf);
	return 0;
}

/* The record's payload is all in: check its checksum, then deliver it. */
static int rx_payload_end(struct mps_conn *conn, struct mps_sf *sf)
{
	int err;

	if (sf->rx_discard) {
		sf->rx_pay_len = 0;
		return 0;
	}
	if (sf->rx_csum_on) {
		if (mps_csum_final(&sf->rx_csum) != 0)
			return rx_csum_fail(conn, sf);
		err = rcv_deliver(
			conn, sf, sf->rx_dsn, sf->rx_stage, sf->rx_pay_len);
		if (err)
			return err;
	}

	sf->rx_pay_len = 0;
	rcv_commit(conn);
	if (sf->rx_fin) {
		uint64_t fin_dsn = sf->rx_dsn + sf->rx_pay_done;

		if (conn->rcv_fin_seen && conn->rcv_fin_dsn != fin_dsn)
			return sf_protocol_error(conn, sf);
		conn->rcv_fin_seen = true;
		conn->rcv_fin_dsn = fin_dsn;
	}
	rcv_check_fin(conn);
	return 0;
}

static int rx_payload(struct mps_conn *conn,
		      struct mps_sf *sf,
		      const uint8_t *buf,
		      size_t n)
{
	int err;

	if (sf->rx_discard) {
		/* nothing */
	} else if (sf->rx_csum_on) {
		/* Held until the checksum checks out (rx_payload_end). */
		mps_csum_add(&sf->rx_csum, buf, n);
		memcpy(sf->rx_stage + sf->rx_pay_done, buf, n);
	} else {
		err = rcv_deliver(
			conn, sf, sf->rx_dsn + sf->rx_pay_done, buf, n);
		if (err)
			return err;
	}

	sf->rx_pay_done += n;
	sf->rx_ssn += (uint32_t)n;
	sf->bytes_in += n;
	conn->stats.bytes_in += n;
	conn->ack_sf = sf_index(conn, sf);
	if (sf->rx_pay_done == sf->rx_pay_len)
		return rx_payload_end(conn, sf);
	if (!sf->rx_csum_on)
		rcv_commit(conn);
	return 0;
}

/*
 * A mapping of payload bytes (P > 0) starts.  RFC 8684 section 3.3.1: the
 * subflow sequence number must be the next one, the DSNs must lie in the
 * window this end advertised (3.3.4) and before any DATA_FIN seen (3.3.3).
 */
static int rx_map_start(struct mps_conn *conn,
			struct mps_sf *sf,
			uint64_t dsn,
			uint32_t ssn,
			uint16_t data_len,
			size_t pay_len,
			bool fin,
			int checksum)
{
	uint64_t end = dsn + pay_len;

	if (ssn != sf->rx_ssn)
		return sf_protocol_error(conn, sf);
	if (mps_dsn_after(end, conn->rcv_right)) {
		conn->stats.window_errors++;
		return sf_protocol_error(conn, sf);
	}
	if (conn->rcv_fin_seen && mps_dsn_after(end, conn->rcv_fin_dsn))
		return sf_protocol_error(conn, sf);

	conn->first_map = true;
	sf->rx_dsn = dsn;
	sf->rx_pay_len = pay_len;
	sf->rx_pay_done = 0;
	sf->rx_fin = fin;
	/* After an MP_FAIL the data comes again raw: drop this copy. */
	sf->rx_discard = conn->fail_wait;
	sf->rx_csum_on = checksum >= 0 && !sf->rx_discard;
	if (sf->rx_csum_on && !sf->rx_stage) {
		sf->rx_stage = malloc(MPS_WIRE_PAYLOAD_MAX);
		if (!sf->rx_stage) {
			sf->rx_pay_len = 0;
			return sf_fail(conn, sf, -ENOMEM, MPS_RST_NO_RESOURCES);
		}
	}
	if (sf->rx_csum_on)
		mps_dss_csum_start(
			&sf->rx_csum, dsn, ssn, data_len, (uint16_t)checksum);
	return 0;
}

/* A bare DATA_FIN (RFC 8684 section 3.3.3): subflow sequence 0, length 1. */
static int rx_bare_fin(struct mps_conn *conn,
		       struct mps_sf *sf,
		       const struct mps_dss *dss,
		       uint64_t dsn)
{
	if (dss->ssn != 0)
		return sf_protocol_error(conn, sf);
	if (conn->fail_wait)
		return 0; /* in raw mode the end of stream says it */
	if (dss->has_checksum &&
	    !mps_dss_csum_ok(dsn, 0, 1, "", 0, dss->checksum))
		return rx_csum_fail(conn, sf);
	if (mps_dsn_before(dsn, rcv_nxt(conn)) ||
	    (conn->rcv_fin_seen && dsn != conn->rcv_fin_dsn))
		return sf_protocol_error(conn, sf);

	conn->rcv_fin_seen = true;
	conn->rcv_fin_dsn = dsn;
	rcv_check_fin(conn);
	return 0;
}

/* The data ACK moved to snd_una: forget what it covers. */
static void snd_acked(struct mps_conn *conn)
{
	int i;

	conn->una_moved = true;
	conn->ack_asked = false;
	conn->first_map = true; /* the peer took a mapping of ours */
	for (i = 0; i < conn->nsf; i++)
		mps__ranges_trim(
			conn->sf[i]->sent, &conn->sf[i]->nsent, conn->snd_una);
	mps__ranges_trim(conn->reinj, &conn->nreinj, conn->snd_una);
	mps__snd_release(conn);
}

/* A data ACK (RFC 8684 section 3.3.2) frees what it covers. */
static int
rx_data_ack(struct mps_conn *conn, struct mps_sf *sf, const struct mps_dss *dss)
{
	uint64_t ack = dss->data_ack;
	uint64_t data_end;

	if (!(dss->flags & MPS_DSS_ACK64))
		ack = mps_dsn_expand((uint32_t)ack, conn->snd_una);
	sf->ack_rcvd = ack;
	if (mps_dsn_after(ack, conn->snd_wr))
		return sf_protocol_error(conn, sf); /* acks unsent data */
	if (!mps_dsn_after(ack, conn->snd_una))
		return 0;

	data_end = mps_dsn_min(ack, conn->snd_end);
	if (mps_dsn_after(data_end, conn->snd_una)) {
		conn->snd_una = data_end;
		snd_acked(conn);
	}
	/* snd_wr passed snd_end only once our DATA_FIN was written. */
	if (ack == conn->snd_end + 1 && !conn->fin_acked) {
		conn->fin_acked = true;
		conn_check_closed(conn);
	}
	return 0;
}

/*
 * The peer's infinite mapping (RFC 8684 section 3.7): accepted only as
 * the answer to an MP_FAIL, on the only subflow.  From its DSN on, the
 * rest of the stream is raw; bytes this end has already are dropped
 * (after a comparison).  Data beyond a gap cannot be recovered.
 */
static int rx_infinite(struct mps_conn *conn, struct mps_sf *sf, uint64_t dsn)
{
	uint64_t nxt = rcv_nxt(conn);
	int err;

	if (!conn->fail_wait || mps__conn_has_other(conn, sf) ||
	    mps_dsn_after(dsn, nxt) ||
	    nxt - dsn > conn->rcv.cap + (uint64_t)MPS_CONN_HIST)
		return sf_protocol_error(conn, sf);

	/* The out-of-order data is superseded by the raw stream. */
	mps_reasm_destroy(&conn->reasm);
	err = mps_reasm_init(
		&conn->reasm, nxt, conn->rcv.cap + MPS_CONN_REASM_SLACK);
	if (err)
		return sf_fail(conn, sf, err, MPS_RST_NO_RESOURCES);
	conn->fail_wait = false;
	conn->rx_raw = true;
	conn->rx_skip = nxt - dsn;
	return 0;
}

/*
 * The peer's MP_FAIL (RFC 8684 section 3.7): it found a checksum failure
 * on the only subflow.  Only with checksums agreed and one subflow;
 * otherwise it is ignored and counted.
 */
static int rx_mp_fail(struct mps_conn *conn,
		      struct mps_sf *sf,
		      const struct mps_mp_fail *fail)
{
	struct mps_conn_event *ev;

	if (!conn->csum || conn->state != MPS_CONN_ESTABLISHED ||
	    mps__conn_has_other(conn, sf)) {
		conn->stats.signals_refused++;
		return 0;
	}
	conn->stats.mp_fail++;
	conn->fail_wait = true;
	conn_tx_fall_back(conn, fail->dsn);
	ev = mps__ev_push(conn, MPS_EV_MP_FAIL, sf_index(conn, sf));
	if (ev)
		ev->dsn = fail->dsn;
	return 0;
}

static int rx_dss_map(struct mps_conn *conn,
		      struct mps_sf *sf,
		      const struct mps_dss *dss,
		      size_t pay_len)
{
	bool fin = dss->flags & MPS_DSS_FIN;
	uint64_t dsn = dss->dsn;

	if (dss->has_checksum != rx_csum(conn))
		return sf_protocol_error(conn, sf);
	if (!(dss->flags & MPS_DSS_DSN64))
		dsn = mps_dsn_expand((uint32_t)dsn, rcv_nxt(conn));
	if (dss->data_len == 0)
		return rx_infinite(conn, sf, dsn);

	if (pay_len == 0)
		return rx_bare_fin(conn, sf, dss, dsn);
	return rx_map_start(conn,
			    sf,
			    dsn,
			    dss->ssn,
			    dss->data_len,
			    pay_len,
			    fin,
			    dss->has_checksum ? dss->checksum : -1);
}

static int rx_dss(struct mps_conn *conn,
		  struct mps_sf *sf,
		  const struct mps_dss *dss,
		  size_t pay_len)
{
	int err;

	if (dss->flags & MPS_DSS_ACK) {
		/* The client cannot ack before it has the server's key. */
		if (conn->role == MPS_ROLE_SERVER && !conn->got_third)
			return sf_protocol_error(conn, sf);
		err = rx_data_ack(conn, sf, dss);
		if (err)
			return err;
		/* An ACK-only record asks for ours (conn-int.h) */
		if (!(dss->flags & MPS_DSS_MAP) && conn->ack_due)
			conn->ack_late = true;
	}
	if (dss->flags & MPS_DSS_MAP)
		return rx_dss_map(conn, sf, dss, pay_len);
	return 0;
}

/* Server: the client's first record, its key (RFC 8684 section 3.1). */
static int rx_mpc_first(struct mps_conn *conn,
			struct mps_sf *sf,
			const struct mps_mp_capable *mpc)
{
	int version = mpc->version < conn->params.version
			      ? mpc->version
			      : conn->params.version;
	int err;

	conn->got_first = true;
	conn->version = version;
	conn->peer_csum = mpc->flags & MPS_MPC_CHECKSUM;
	conn->csum = conn->params.checksum || conn->peer_csum;
	if (version != conn->local_version) {
		/* Our key is not out yet: draw it under the agreed hash. */
		key_drop(conn);
		err = key_draw(conn, version);
		if (err)
			return sf_fail(conn, sf, err, MPS_RST_NO_RESOURCES);
		snd_rebase(conn);
	}

	err = peer_set_key(conn, mpc->sender_key, mpc->version);
	if (err)
		return sf_fail(conn, sf, err, MPS_RST_NO_RESOURCES);
	conn->mpc_due = true;
	return 0;
}

/* Client: the server's answer; its version is the connection's. */
static int rx_mpc_answer(struct mps_conn *conn,
			 struct mps_sf *sf,
			 const struct mps_mp_capable *mpc)
{
	int err;

	if (mpc->nkeys != 1 || mpc->version > conn->version)
		return sf_protocol_error(conn, sf);

	conn->version = mpc->version;
	conn->peer_csum = mpc->flags & MPS_MPC_CHECKSUM;
	conn->csum = conn->params.checksum || conn->peer_csum;
	err = peer_set_key(conn, mpc->sender_key, mpc->version);
	if (err)
		return sf_fail(conn, sf, err, MPS_RST_NO_RESOURCES);

	conn->mpc_ack_due = true;
	conn->state = MPS_CONN_ESTABLISHED;
	return 0;
}

/*
 * Server: the client's third-ACK form.  RFC 8684 section 3.1: both keys
 * must be the ones exchanged, else the subflow is reset.  With a data-
 * level length it maps the client's first data at its first DSN.
 */
static int rx_mpc_third(struct mps_conn *conn,
			struct mps_sf *sf,
			const struct mps_mp_capable *mpc,
			size_t pay_len)
{
	uint64_t first = conn->peer_idsn + 1;
	uint16_t data_len = mpc->data_len;

	if (mpc->nkeys != 2 || mpc->version != conn->version ||
	    mpc->sender_key != conn->peer_key ||
	    mpc->receiver_key != conn->local.key)
		return sf_protocol_error(conn, sf);

	conn->got_third = true;
	conn->state = MPS_CONN_ESTABLISHED;
	if (!mpc->has_data_len)
		return 0;

	if (mpc->has_checksum != conn->csum || rcv_nxt(conn) != first ||
	    pay_len == 0)
		return sf_protocol_error(conn, sf);
	return rx_map_start(conn,
			    sf,
			    first,
			    1,
			    data_len,
			    pay_len,
			    false,
			    mpc->has_checksum ? mpc->checksum : -1);
}

static int rx_mpc(struct mps_conn *conn,
		  struct mps_sf *sf,
		  const struct mps_mp_capable *mpc,
		  size_t pay_len)
{
	if (conn->role == MPS_ROLE_CLIENT && !conn->peer_known)
		return rx_mpc_answer(conn, sf, mpc);
	if (conn->role == MPS_ROLE_SERVER && conn->got_first &&
	    !conn->got_third)
		return rx_mpc_third(conn, sf, mpc, pay_len);
	return sf_protocol_error(conn, sf);
}

/* The peer's data window (the private option; see the file comment). */
static int rx_window(struct mps_conn *conn,
		     struct mps_sf *sf,
		     const struct mps_mp_experimental *exp)
{
	uint64_t right;

	if (exp->type != MPS_EXP_DATA_WINDOW)
		return sf_protocol_error(conn, sf);
	right = sf->ack_rcvd + exp->data_window;
	if (mps_dsn_after(right, conn->snd_right))
		conn->snd_right = right;
	return 0;
}

/* RFC 8684 section 3.5: valid only with our own key. */
static int rx_fastclose(struct mps_conn *conn,
			struct mps_sf *sf,
			const struct mps_mp_fastclose *fc)
{
	if (!mps_crypto_mem_equal(&fc->receiver_key,
				  &conn->local.key,
				  sizeof(fc->receiver_key)))
		return sf_protocol_error(conn, sf);
	sf->dead = true;
	conn_reset(conn, ECONNRESET);
	return 0;
}

/* RFC 8684 section 3.6: the peer resets this subflow. */
static int rx_tcprst(struct mps_conn *conn, struct mps_sf *sf)
{
	if (mps__conn_has_other(conn, sf)) {
		mps__sf_lose(conn, sf, ECONNRESET);
		return 0;
	}
	sf->dead = true;
	conn_reset(conn, ECONNRESET);
	return 0;
}

static int rx_record(struct mps_conn *conn,
		     struct mps_sf *sf,
		     const struct mps_option *opt,
		     size_t pay_len)
{
	conn->stats.records_in++;
	if (sf->phase != SF_OPEN) {
		int rc = mps__rx_join_phase(conn, sf, opt);

		if (rc <= 0)
			return rc;
	}
	if (opt->subtype == MPS_MP_CAPABLE)
		return rx_mpc(conn, sf, &opt->mp_capable, pay_len);
	if (!conn->peer_known)
		return sf_protocol_error(conn, sf);

	switch (opt->subtype) {
	case MPS_DSS:
		return rx_dss(conn, sf, &opt->dss, pay_len);
	case MPS_MP_EXPERIMENTAL:
		return rx_window(conn, sf, &opt->mp_experimental);
	case MPS_MP_FASTCLOSE:
		return rx_fastclose(conn, sf, &opt->mp_fastclose);
	case MPS_MP_TCPRST:
		return rx_tcprst(conn, sf);
	case MPS_ADD_ADDR:
		if (!sig_budget_take(conn))
			return sf_flood(conn, sf);
		return mps__rx_add_addr(conn, &opt->add_addr);
	case MPS_REMOVE_ADDR:
		if (!sig_budget_take(conn))
			return sf_flood(conn, sf);
		return mps__rx_remove_addr(conn, &opt->remove_addr);
	case MPS_MP_PRIO:
		return mps__rx_mp_prio(conn, sf, &opt->mp_prio);
	case MPS_MP_FAIL:
		return rx_mp_fail(conn, sf, &opt->mp_fail);
	default:
		return sf_protocol_error(conn, sf);
	}
}

/*
 * The server's first record decides: a well-formed MP_CAPABLE with the
 * client's key goes on, anything else means the client does not frame
 * records, and every byte so far goes to the program as it came.
 */
static bool rx_first_ok(const struct mps_option *opt, size_t pay_len)
{
	return opt->subtype == MPS_MP_CAPABLE && opt->mp_capable.nkeys == 1 &&
	       !opt->mp_capable.has_data_len && pay_len == 0;
}

/* Fallback with the bytes of the unfinished record handed on as data. */
static void rx_fall_back(struct mps_conn *conn, struct mps_sf *sf)
{
	conn_fall_back(conn);
	ring_put(&conn->rcv, sf->rx_head, sf->rx_have);
	ring_show(&conn->rcv);
	sf->rx_have = 0;
}

static bool rx_awaits_first(const struct mps_conn *conn)
{
	return conn->role == MPS_ROLE_SERVER && !conn->got_first;
}

/* Only a mapping carries payload, as much as its data-level length. */
static bool rx_payload_fits(const struct mps_option *opt, size_t pay_len)
{
	if (opt->subtype == MPS_DSS && (opt->dss.flags & MPS_DSS_MAP))
		return opt->dss.data_len ==
		       pay_len + !!(opt->dss.flags & MPS_DSS_FIN);
	if (opt->subtype == MPS_MP_CAPABLE && opt->mp_capable.has_data_len)
		return opt->mp_capable.data_len == pay_len;
	return pay_len == 0;
}

/* Header and option are in: decode and act. */
static int
rx_head_done(struct mps_conn *conn, struct mps_sf *sf, size_t pay_len)
{
	struct mps_option opt;
	int err;

	err = mps_wire_decode_option(sf->rx_head + MPS_WIRE_HDR_LEN,
				     sf->rx_opt_len,
				     conn->version,
				     &opt);
	if (!err && !rx_payload_fits(&opt, pay_len))
		err = MPS_WIRE_E_PAYLOAD_MISMATCH;
	if (rx_awaits_first(conn)) {
		if (err || !rx_first_ok(&opt, pay_len)) {
			rx_fall_back(conn, sf);
			return 0;
		}
		sf->rx_have = 0;
		err = rx_mpc_first(conn, sf, &opt.mp_capable);
		mps_crypto_wipe(&opt, sizeof(opt));
		return err;
	}
	if (err)
		return sf_protocol_error(conn, sf);

	sf->rx_have = 0;
	sf->rx_pay_len = 0;
	err = rx_record(conn, sf, &opt, pay_len);
	/* MP_CAPABLE and MP_FASTCLOSE carry keys: no copy stays behind. */
	mps_crypto_wipe(&opt, sizeof(opt));
	return err;
}

/*
 * Takes bytes of a record's header and option; returns how many, or a
 * negative errno.  Records may arrive split anywhere.
 */
static ssize_t rx_head(struct mps_conn *conn,
		       struct mps_sf *sf,
		       const uint8_t *buf,
		       size_t len)
{
	struct mps_record_hdr hdr;
	struct mps_record rec;
	size_t want = MPS_WIRE_HDR_LEN;
	size_t take;
	int err;

	if (sf->rx_have >= MPS_WIRE_HDR_LEN)
		want += sf->rx_opt_len;
	take = want - sf->rx_have < len ? want - sf->rx_have : len;
	memcpy(sf->rx_head + sf->rx_have, buf, take);
	sf->rx_have += take;

	if (sf->rx_have >= MPS_WIRE_HDR_LEN &&
	    mps_wire_decode_header(sf->rx_head, sf->rx_have, &hdr) == 0) {
		sf->rx_opt_len = hdr.opt_len;
		if (sf->rx_have == MPS_WIRE_HDR_LEN + sf->rx_opt_len) {
			err = rx_head_done(conn, sf, hdr.payload_len);
			return err < 0 ? err : (ssize_t)take;
		}
	}

	/* Part of a record: the wire module refutes garbage early. */
	err = mps_wire_decode_record(
		sf->rx_head, sf->rx_have, conn->version, &rec);
	if (err >= 0)
		return (ssize_t)take;
	if (!rx_awaits_first(conn))
		return sf_protocol_error(conn, sf);
	rx_fall_back(conn, sf);
	return (ssize_t)take;
}

/*
 * The first bytes after a fallback on the server's timer (late_check):
 * held in rx_head until they prove to be a record or not.  A client of
 * ours whose MP_CAPABLE came too late believes the connection is MPTCP
 * and frames everything it sends: rather than hand records to the
 * program as data, the connection is reset (counted in late_first).
 * Anything else is a plain client after all and goes on raw.  Returns
 * 1 while more bytes are needed (all of buf taken), 0 when the held
 * bytes went to the program, or -ECONNRESET when the connection is now
 * RESET.
 */
static int rx_late_first(struct mps_conn *conn,
			 struct mps_sf *sf,
			 const uint8_t **buf,
			 size_t *len)
{
	size_t room = sizeof(sf->rx_head) - sf->rx_have;
	size_t take = *len < room ? *len : room;
	struct mps_record rec;
	int err;

	memcpy(sf->rx_head + sf->rx_have, *buf, take);
	sf->rx_have += take;
	*buf += take;
	*len -= take;
	err = mps_wire_decode_record(
		sf->rx_head, sf->rx_have, conn->version, &rec);
	if (err == MPS_WIRE_NEED_MORE && sf->rx_have < sizeof(sf->rx_head))
		return 1;

	conn->late_check = false;
	if (err == 0 && rx_first_ok(&rec.opt, rec.payload_len)) {
		mps_crypto_wipe(&rec, sizeof(rec));
		mps_crypto_wipe(sf->rx_head, sizeof(sf->rx_head));
		sf->rx_have = 0;
		conn->stats.late_first++;
		conn_reset(conn, ECONNRESET);
		return -ECONNRESET;
	}
	ring_put(&conn->rcv, sf->rx_head, sf->rx_have);
	ring_show(&conn->rcv);
	conn->stats.bytes_in += sf->rx_have;
	sf->rx_have = 0;
	return 0;
}

/* Fallback input: the program gets the bytes as they are. */
static int
rx_raw(struct mps_conn *conn, struct mps_sf *sf, const uint8_t *buf, size_t len)
{
	size_t n;

	if (conn->late_check) {
		int err = rx_late_first(conn, sf, &buf, &len);

		if (err != 0)
			return 0; /* held, or the connection is RESET */
	}

	if (conn->rx_skip > 0) {
		/* Raw data from behind rcv_nxt: this end has it already. */
		size_t k = conn->rx_skip < len ? (size_t)conn->rx_skip : len;

		if (!rcv_same(conn, rcv_nxt(conn) - conn->rx_skip, buf, k))
			return rx_inconsistent(conn, sf, rcv_nxt(conn));
		conn->stats.dup_bytes += k;
		conn->rx_skip -= k;
		buf += k;
		len -= k;
	}
	n = ring_put(&conn->rcv, buf, len);

	ring_show(&conn->rcv);
	conn->stats.bytes_in += n;
	return n < len ? -ENOBUFS : 0;
}

static int rx_step(struct mps_conn *conn,
		   struct mps_sf *sf,
		   const uint8_t *buf,
		   size_t len,
		   size_t *used)
{
	ssize_t n;

	if (sf->rx_pay_len > 0) {
		size_t left = sf->rx_pay_len - sf->rx_pay_done;

		*used = len < left ? len : left;
		return rx_payload(conn, sf, buf, *used);
	}

	n = rx_head(conn, sf, buf, len);
	if (n < 0)
		return (int)n;
	*used = (size_t)n;
	return 0;
}

int mps_conn_sf_input(struct mps_conn *conn,
		      int sfi,
		      const uint8_t *buf,
		      size_t len)
{
	struct mps_sf *sf = conn_sf(conn, sfi);

	if (!sf)
		return -EINVAL;
	if (conn->state == MPS_CONN_RESET || sf->dead || sf->closed)
		return 0;

	while (len > 0 && !sf->dead && conn->state != MPS_CONN_RESET) {
		size_t used = 0;
		int err;

		if (conn->rx_raw)
			return rx_raw(conn, sf, buf, len);
		err = rx_step(conn, sf, buf, len, &used);
		if (err)
			return err;
		buf += used;
		len -= used;
	}

	return 0;
}

size_t mps_conn_sf_rx_room(const struct mps_conn *conn, int sfi)
{
	if (sfi < 0 || sfi >= conn->nsf)
		return 0;
	if (conn->rx_raw)
		return ring_room(&conn->rcv) + conn->rx_skip;
	/* The raw bytes after the peer's infinite mapping may come in the
	 * same read: no more than the program's ring holds. */
	if (conn->fail_wait)
		return ring_room(&conn->rcv);
	if (rx_awaits_first(conn))
		return ring_room(&conn->rcv) - conn->sf[sfi]->rx_have;
	return SIZE_MAX;
}

/* Forgets what was queued for a subflow whose socket is gone. */
static void sf_clear_outq(struct mps_conn *conn, struct mps_sf *sf)
{
	sf->outq_len = 0;
	sf->head_off = 0;
	sf->outq_bytes = 0;
	mps__snd_release(conn);
}

void mps_conn_sf_closed(struct mps_conn *conn, int sfi, int err)
{
	struct mps_sf *sf = conn_sf(conn, sfi);
	bool was_live;

	if (!sf || sf->closed)
		return;
	if (conn->state == MPS_CONN_HANDSHAKE && !sf->failed &&
	    rx_awaits_first(conn)) {
		/* No record came: a plain client that ended its side. */
		rx_fall_back(conn, sf);
	}
	if (conn->state == MPS_CONN_FALLBACK && err == 0 && !conn->rx_eof) {
		/*
		 * Plain TCP: the peer's FIN ends its direction only.  This
		 * end may still have to send (an answer after the request's
		 * end of stream, bytes sent again after MP_FAIL), so the
		 * subflow stays writable until mps_conn_sf_done().
		 */
		conn->rx_eof = true;
		return;
	}
	was_live = sf_live(sf);
	sf->closed = true;
	sf->dead = true;
	if (conn_is_over(conn) || sf->failed) {
		sf_clear_outq(conn, sf);
		return;
	}

	if (conn->state == MPS_CONN_FALLBACK) {
		sf_clear_outq(conn, sf);
		if (err)
			conn_reset(conn, err);
		else
			conn->rx_eof = true;
		return;
	}

	/* All done: the peer finished, and has all we sent. */
	if (conn->rcv_fin_done && conn->snd_una == conn->snd_end &&
	    (!conn->fin_sent || conn->fin_acked)) {
		sf_clear_outq(conn, sf);
		conn->state = MPS_CONN_CLOSED;
		return;
	}
	/* A join that never came up, or one of several: the rest go on. */
	if (!was_live || mps__conn_has_other(conn, sf)) {
		mps__sf_lose(conn, sf, err);
		sf_clear_outq(conn, sf);
		return;
	}
	sf_clear_outq(conn, sf);
	conn_reset(conn, err ? err : ECONNRESET);
}

bool mps_conn_sf_done(const struct mps_conn *conn, int sfi)
{
	const struct mps_sf *sf;

	if (sfi < 0 || sfi >= conn->nsf)
		return true;
	sf = conn->sf[sfi];
	if (sf->closed)
		return true;
	if (sf->outq_len > 0)
		return false;
	if (sf->failed)
		return !sf->rst_due;
	if (conn->fail_due || conn->infmap_due)
		return false;

	switch (conn->state) {
	case MPS_CONN_RESET:
		return !conn->tcprst_due && !conn->fastclose_due;
	case MPS_CONN_CLOSED:
		return !conn->ack_due;
	case MPS_CONN_FALLBACK:
		return conn->app_shut && conn->snd_nxt == conn->snd_end;
	default:
		return false;
	}
}

/*
 * The program's side.
 */

size_t mps_conn_app_room(const struct mps_conn *conn)
{
	if (conn->app_shut || conn_is_over(conn))
		return 0;
	return ring_room(&conn->snd);
}

size_t mps_conn_app_write(struct mps_conn *conn, const void *buf, size_t len)
{
	size_t n;

	if (mps_conn_app_room(conn) == 0)
		return 0;
	n = ring_put(&conn->snd, buf, len);
	ring_show(&conn->snd);
	conn->snd_end += n;
	return n;
}

size_t mps_conn_app_reserve(struct mps_conn *conn,
			    struct iovec iov[2],
			    int *iovcnt)
{
	struct mps_ring *r = &conn->snd;
	size_t room = mps_conn_app_room(conn);
	size_t first;

	*iovcnt = 0;
	if (room == 0)
		return 0;
	iov[0].iov_base = ring_tail(r, &first);
	iov[0].iov_len = first;
	*iovcnt = 1;
	if (first < room) {
		/* the free space wraps: its rest is at the start */
		iov[1].iov_base = r->buf;
		iov[1].iov_len = room - first;
		*iovcnt = 2;
	}
	return room;
}

void mps_conn_app_commit(struct mps_conn *conn, size_t n)
{
	size_t room = mps_conn_app_room(conn);

	if (n > room)
		n = room;
	conn->snd.len += n;
	ring_show(&conn->snd);
	conn->snd_end += n;
}

int mps_conn_app_peek(struct mps_conn *conn, struct iovec *iov, int iovcnt)
{
	struct iovec two[2];
	int n;
	int i;

	if (iovcnt <= 0)
		return 0;
	n = ring_iov(&conn->rcv, 0, conn->rcv.vis, two);
	if (n > iovcnt)
		n = iovcnt;
	for (i = 0; i < n; i++)
		iov[i] = two[i];
	return n;
}

void mps_conn_app_consume(struct mps_conn *conn, size_t n)
{
	struct iovec iov[2];
	int k, i;

	if (n > conn->rcv.vis)
		n = conn->rcv.vis;
	if (conn->hist.buf && !conn->rx_raw && n > 0) {
		k = ring_iov(&conn->rcv, 0, n, iov);
		for (i = 0; i < k; i++)
			ring_push_last(
				&conn->hist, iov[i].iov_base, iov[i].iov_len);
	}
	ring_drop(&conn->rcv, n);
	conn->rcv_read += n;
}

void mps_conn_app_shutdown(struct mps_conn *conn)
{
	conn->app_shut = true;
}

void mps_conn_abort(struct mps_conn *conn)
{
	if (conn->state == MPS_CONN_RESET)
		return;

	/*
	 * RFC 8684 section 3.5: MP_FASTCLOSE carries the peer's key.  Before
	 * it is known (and in FALLBACK) nothing goes in-band: the caller's
	 * TCP RST says it all.
	 */
	conn->fastclose_due =
		conn->state != MPS_CONN_FALLBACK && conn->peer_known;
	conn_reset(conn, ECONNABORTED);
}

/* The fallback timer of a server still waiting for the first record. */
static uint64_t tick_fallback(struct mps_conn *conn, uint64_t now_us)
{
	uint64_t deadline;

	if (conn->state != MPS_CONN_HANDSHAKE || !rx_awaits_first(conn) ||
	    conn->params.fallback_us == 0)
		return 0;

	deadline = conn->created_us + conn->params.fallback_us;
	if (now_us < deadline)
		return deadline - now_us;

	/*
	 * A whole record header already checked out: the client frames
	 * records and is only slow (a loaded machine, its first connection
	 * starting its event loop).  Falling back now would hand its
	 * MP_CAPABLE to the program as data; wait for the rest instead.
	 */
	if (conn->nsf > 0 && conn->sf[0]->rx_have >= MPS_WIRE_HDR_LEN)
		return conn->params.fallback_us;

	/* Bytes of an unfinished first record go to the program as data. */
	if (conn->nsf > 0)
		rx_fall_back(conn, conn->sf[0]);
	else
		conn_fall_back(conn);
	conn->late_check = !conn->stats.bytes_in;
	return 0;
}

uint64_t mps_conn_tick(struct mps_conn *conn, uint64_t now_us)
{
	uint64_t fb, st, ack;

	if (now_us > conn->now_us)
		conn->now_us = now_us;
	fb = tick_fallback(conn, now_us);
	st = mps__tick_stall(conn);
	ack = tick_ack(conn);
	if (fb == 0 || (st != 0 && st < fb))
		fb = st;
	if (fb == 0 || (ack != 0 && ack < fb))
		return ack;
	return fb;
}

enum mps_conn_state mps_conn_state(const struct mps_conn *conn)
{
	return conn->state;
}

bool mps_conn_peer_finished(const struct mps_conn *conn)
{
	if (conn->rx_raw)
		return conn->rx_eof && conn->rcv.len == 0;
	return conn->rcv_fin_done && conn->rcv.len == 0;
}

int mps_conn_error(const struct mps_conn *conn)
{
	return conn->error;
}

/* Safe at any point: each fill reads the scheduler afresh, and a subflow
 * turning redundant starts from the oldest unacknowledged byte. */
int mps_conn_set_sched(struct mps_conn *conn, int sched)
{
	if (sched < MPS_SCHED_EARLIEST || sched > MPS_SCHED_REDUNDANT)
		return -EINVAL;
	conn->params.sched = sched;
	return 0;
}

int mps_conn_sched(const struct mps_conn *conn)
{
	return conn->params.sched;
}

void mps_conn_get_info(const struct mps_conn *conn, struct mps_conn_info *info)
{
	int i;

	memset(info, 0, sizeof(*info));
	info->state = conn->state;
	info->version = conn->version;
	info->checksum = conn->peer_known && conn->csum;
	info->local_token = conn->local.token;
	info->peer_token = conn->peer_token;
	info->snd_una = conn->snd_una;
	info->snd_nxt = conn->snd_nxt;
	info->snd_right = conn->snd_right;
	info->data_ack = conn->peer_known ? rcv_data_ack(conn) : 0;
	info->rcv_right = conn->rcv_right;
	info->snd_held = conn->snd.len;
	info->rcv_held = conn->rcv.len;
	if (conn->reasm_ready)
		info->reasm_mem = mps_reasm_mem_used(&conn->reasm);
	info->stats = conn->stats;
	info->nsf = conn->nsf;
	for (i = 0; i < conn->nsf; i++)
		mps__sf_get_info(conn->sf[i], &info->sf[i]);
}
