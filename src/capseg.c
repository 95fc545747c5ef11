/*
 * capseg.c: records to synthetic TCP segments (see capseg.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capseg.h"

#define TCP_HDR_LEN 20
#define IP4_HDR_LEN 20
#define IP6_HDR_LEN 40
#define TCPOPT_NOP 1
#define CAP_WINDOW 65535 /* records carry no TCP window: say "open" */

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

uint32_t mps_cap_sum(uint32_t sum, const uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		sum += (uint32_t)buf[i] << 8 | buf[i + 1];
		sum = (sum & 0xffff) + (sum >> 16);
	}
	if (len & 1) {
		sum += (uint32_t)buf[len - 1] << 8;
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return sum;
}

uint16_t mps_cap_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The IPv4 header; total is the whole datagram's length. */
static void ip4_header(const struct mps_cap_seg *seg, uint8_t *h, size_t total)
{
	memset(h, 0, IP4_HDR_LEN);
	h[0] = 0x45;
	put16(h + 2, (uint32_t)total);
	put16(h + 4, seg->ip_id);
	h[6] = 0x40; /* don't fragment, as a TCP stack sets it */
	h[8] = 64;
	h[9] = IPPROTO_TCP;
	memcpy(h + 12, seg->src->addr, 4);
	memcpy(h + 16, seg->dst->addr, 4);
	put16(h + 10, mps_cap_fold(mps_cap_sum(0, h, IP4_HDR_LEN)));
}

static void ip6_header(const struct mps_cap_seg *seg, uint8_t *h, size_t plen)
{
	memset(h, 0, IP6_HDR_LEN);
	h[0] = 0x60;
	put16(h + 4, (uint32_t)plen);
	h[6] = IPPROTO_TCP;
	h[7] = 64;
	memcpy(h + 8, seg->src->addr, 16);
	memcpy(h + 24, seg->dst->addr, 16);
}

/* Sum of the pseudo-header of RFC 9293 section 3.1 (IPv4) or RFC 8200
 * section 8.1 (IPv6), for a TCP segment of tcp_len bytes. */
static uint32_t pseudo_sum(const struct mps_cap_seg *seg, size_t tcp_len)
{
	size_t alen = seg->src->family == AF_INET ? 4 : 16;
	uint8_t tail[8] = {0};
	uint32_t sum;

	sum = mps_cap_sum(0, seg->src->addr, alen);
	sum = mps_cap_sum(sum, seg->dst->addr, alen);
	put32(tail, (uint32_t)tcp_len);
	tail[7] = IPPROTO_TCP;
	return mps_cap_sum(sum, tail, sizeof(tail));
}

/* The TCP header with its option and checksum; returns its length. */
static size_t tcp_header(const struct mps_cap_seg *seg, uint8_t *t)
{
	size_t opt_pad = (seg->opt_len + 3) & ~(size_t)3;
	size_t len = TCP_HDR_LEN + opt_pad;
	uint32_t sum;

	memset(t, 0, TCP_HDR_LEN);
	put16(t, seg->src->port);
	put16(t + 2, seg->dst->port);
	put32(t + 4, seg->seq);
	put32(t + 8, seg->flags & MPS_CAP_ACK ? seg->ack : 0);
	t[12] = (uint8_t)(len / 4 << 4);
	t[13] = seg->flags;
	put16(t + 14, CAP_WINDOW);
	if (seg->opt_len)
		memcpy(t + TCP_HDR_LEN, seg->opt, seg->opt_len);
	memset(t + TCP_HDR_LEN + seg->opt_len,
	       TCPOPT_NOP,
	       opt_pad - seg->opt_len);
	sum = pseudo_sum(seg, len + seg->payload_len);
	sum = mps_cap_sum(sum, t, len);
	sum = mps_cap_sum(sum, seg->payload, seg->payload_len);
	put16(t + 16, mps_cap_fold(sum));
	return len;
}

int mps_cap_build(const struct mps_cap_seg *seg, uint8_t *hdr)
{
	int fam = seg->src->family;
	size_t ip_len = fam == AF_INET ? IP4_HDR_LEN : IP6_HDR_LEN;
	size_t tcp_len = TCP_HDR_LEN + ((seg->opt_len + 3) & ~(size_t)3);
	size_t total = ip_len + tcp_len + seg->payload_len;

	if ((fam != AF_INET && fam != AF_INET6) || fam != seg->dst->family ||
	    seg->opt_len > MPS_WIRE_OPT_MAX || total - ip_len > 65535 ||
	    (fam == AF_INET && total > 65535))
		return -EINVAL;
	tcp_header(seg, hdr + ip_len);
	if (fam == AF_INET)
		ip4_header(seg, hdr, total);
	else
		ip6_header(seg, hdr, total - ip_len);
	return (int)(ip_len + tcp_len);
}

int mps_cap_end_from(struct mps_cap_end *end, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	memset(end, 0, sizeof(*end));
	if (sa->sa_family == AF_INET) {
		end->family = AF_INET;
		memcpy(end->addr, &v4->sin_addr, 4);
		end->port = ntohs(v4->sin_port);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	end->port = ntohs(v6->sin6_port);
	if (memcmp(&v6->sin6_addr, v4mapped, sizeof(v4mapped)) == 0) {
		end->family = AF_INET;
		memcpy(end->addr, (const uint8_t *)&v6->sin6_addr + 12, 4);
		return 0;
	}
	end->family = AF_INET6;
	memcpy(end->addr, &v6->sin6_addr, 16);
	return 0;
}

/* ---- one subflow ---- */

void mps_cap_sf_init(struct mps_cap_sf *sf,
		     const struct mps_cap_end *local,
		     const struct mps_cap_end *peer,
		     bool initiator,
		     bool plain,
		     int version,
		     uint32_t seed,
		     mps_cap_emit_fn emit,
		     void *ctx)
{
	memset(sf, 0, sizeof(*sf));
	sf->local = *local;
	sf->peer = *peer;
	sf->initiator = initiator;
	sf->plain = plain;
	sf->version = version;
	sf->emit = emit;
	sf->ctx = ctx;
	/* any ISN will do; distinct ones keep the two directions apart */
	sf->flow[MPS_CAP_OUT].isn = seed * 2654435761u;
	sf->flow[MPS_CAP_IN].isn = (seed ^ 0x5bd1e995u) * 2246822519u;
	sf->flow[MPS_CAP_OUT].nxt = sf->flow[MPS_CAP_OUT].isn;
	sf->flow[MPS_CAP_IN].nxt = sf->flow[MPS_CAP_IN].isn;
	sf->flow[MPS_CAP_OUT].raw = plain;
	sf->flow[MPS_CAP_IN].raw = plain;
}

/* The direction the subflow's SYN went. */
static enum mps_cap_dir syn_dir(const struct mps_cap_sf *sf)
{
	return sf->initiator ? MPS_CAP_OUT : MPS_CAP_IN;
}

/*
 * Emit one segment in dir.  SYN and FIN take one sequence number, the
 * payload its length; ACK is set once the other direction has started.
 */
static void send_seg(struct mps_cap_sf *sf,
		     enum mps_cap_dir dir,
		     uint8_t flags,
		     const uint8_t *opt,
		     size_t opt_len,
		     const uint8_t *payload,
		     size_t payload_len)
{
	struct mps_cap_flow *f = &sf->flow[dir];
	struct mps_cap_flow *o = &sf->flow[!dir];
	uint8_t hdr[MPS_CAP_HDR_MAX];
	struct mps_cap_seg seg = {
		.src = dir == MPS_CAP_OUT ? &sf->local : &sf->peer,
		.dst = dir == MPS_CAP_OUT ? &sf->peer : &sf->local,
		.seq = f->nxt,
		.ack = o->nxt,
		.flags = flags,
		.ip_id = sf->ip_id++,
		.opt = opt,
		.opt_len = opt_len,
		.payload = payload,
		.payload_len = payload_len,
	};
	int n;

	if (o->started)
		seg.flags |= MPS_CAP_ACK;
	if (payload_len)
		seg.flags |= MPS_CAP_PSH;
	n = mps_cap_build(&seg, hdr);
	if (n < 0)
		return;
	f->nxt += (uint32_t)payload_len;
	if (flags & (MPS_CAP_SYN | MPS_CAP_FIN))
		f->nxt++;
	if (flags & MPS_CAP_SYN)
		f->started = true;
	if (flags & (MPS_CAP_FIN | MPS_CAP_RST))
		f->closed = true;
	sf->emit(sf->ctx, hdr, (size_t)n, payload, payload_len);
}

/* Whatever is missing of a handshake without options, before the first
 * byte that is not part of an MPTCP handshake. */
static void plain_handshake(struct mps_cap_sf *sf)
{
	enum mps_cap_dir d = syn_dir(sf);

	if (sf->hs < 1)
		send_seg(sf, d, MPS_CAP_SYN, NULL, 0, NULL, 0);
	if (sf->hs < 2)
		send_seg(sf, !d, MPS_CAP_SYN, NULL, 0, NULL, 0);
	if (sf->hs < 3)
		send_seg(sf, d, 0, NULL, 0, NULL, 0);
	sf->hs = 3;
}

static void finish_handshake(struct mps_cap_sf *sf);

/* Payload in dir, cut into segments that each carry opt. */
static void send_data(struct mps_cap_sf *sf,
		      enum mps_cap_dir dir,
		      const uint8_t *opt,
		      size_t opt_len,
		      const uint8_t *buf,
		      size_t len)
{
	finish_handshake(sf);
	while (len > 0) {
		size_t n = len < MPS_CAP_SEG_MAX ? len : MPS_CAP_SEG_MAX;

		send_seg(sf, dir, 0, opt, opt_len, buf, n);
		buf += n;
		len -= n;
	}
}

/* The rest of dir is plain bytes (a record that did not parse, or the
 * infinite mapping of RFC 8684 section 3.7). */
static void go_raw(struct mps_cap_sf *sf, enum mps_cap_dir dir)
{
	struct mps_cap_flow *f = &sf->flow[dir];
	size_t held = f->head_len;

	f->raw = true;
	f->head_len = 0;
	f->pay_left = 0;
	if (held)
		send_data(sf, dir, NULL, 0, f->head, held);
}

/* The third ACK's MP_CAPABLE, both keys, from what SYN and SYN/ACK
 * carried in-band (RFC 8684 section 3.1), without data. */
static void mpc_third_ack(struct mps_cap_sf *sf)
{
	struct mps_option o = {.subtype = MPS_MP_CAPABLE};
	struct mps_mp_capable *m = &o.mp_capable;
	uint8_t opt[MPS_WIRE_OPT_MAX];
	int n;

	m->version = sf->mpc_synack.version;
	m->flags = MPS_MPC_HMAC | ((sf->mpc_syn.flags | sf->mpc_synack.flags) &
				   MPS_MPC_CHECKSUM);
	m->nkeys = 2;
	m->sender_key = sf->mpc_syn.sender_key;
	m->receiver_key = sf->mpc_synack.sender_key;
	n = mps_wire_encode_option(&o, m->version, opt, sizeof(opt));
	if (n > 0)
		send_seg(sf, syn_dir(sf), 0, opt, (size_t)n, NULL, 0);
	sf->hs = 3;
	sf->mpc_acked = true;
}

/* The initiator's held bytes follow the handshake, now complete. */
static void release_hold(struct mps_cap_sf *sf)
{
	uint8_t *held = sf->hold;
	size_t len = sf->hold_len;

	sf->hold = NULL;
	sf->hold_len = 0;
	if (held)
		mps_cap_sf_bytes(sf, syn_dir(sf), held, len);
	free(held);
}

/* The handshake ends before a byte that is not part of it: with the
 * third ACK when both keys went in-band, else without options. */
static void finish_handshake(struct mps_cap_sf *sf)
{
	if (sf->hs == 2 && sf->mpc_keys)
		mpc_third_ack(sf);
	else if (sf->hs < 3)
		plain_handshake(sf);
	release_hold(sf);
}

/* Keep the initiator's bytes that came before the SYN/ACK; false when
 * there would be too many. */
static bool hold_bytes(struct mps_cap_sf *sf, const uint8_t *buf, size_t len)
{
	uint8_t *grown;

	if (len > MPS_CAP_HOLD_MAX - sf->hold_len)
		return false;
	grown = realloc(sf->hold, sf->hold_len + len);
	if (!grown)
		return false;
	memcpy(grown + sf->hold_len, buf, len);
	sf->hold = grown;
	sf->hold_len += len;
	return true;
}

/*
 * The handshake forms of RFC 8684 section 3.1 (v1) and RFC 6824 section
 * 3.1 (v0) for an in-band MP_CAPABLE.  In-band, each end's first
 * MP_CAPABLE carries its own key; the initiator's second carries both.
 * Returns true when the record was consumed by the handshake.
 */
static bool mpc_handshake(struct mps_cap_sf *sf,
			  enum mps_cap_dir dir,
			  const struct mps_mp_capable *mpc,
			  const uint8_t *raw,
			  size_t raw_len)
{
	struct mps_option o = {.subtype = MPS_MP_CAPABLE};
	uint8_t opt[MPS_WIRE_OPT_MAX];
	int n;

	if (dir == syn_dir(sf) && sf->hs == 0 && mpc->nkeys == 1) {
		/* v1's SYN carries no key: the third ACK brings both */
		sf->mpc_syn = *mpc;
		o.mp_capable = *mpc;
		if (mpc->version == MPS_VERSION_1)
			o.mp_capable.nkeys = 0;
		n = mps_wire_encode_option(&o, mpc->version, opt, sizeof(opt));
		if (n > 0)
			send_seg(sf, dir, MPS_CAP_SYN, opt, (size_t)n, NULL, 0);
		sf->hs = 1;
		return true;
	}
	if (dir != syn_dir(sf) && sf->hs == 1 && mpc->nkeys == 1) {
		sf->mpc_synack = *mpc;
		sf->mpc_keys = true;
		send_seg(sf, dir, MPS_CAP_SYN, raw, raw_len, NULL, 0);
		sf->hs = 2;
		if (sf->hold)
			finish_handshake(sf);
		return true;
	}
	if (dir == syn_dir(sf) && sf->hs >= 2 && mpc->nkeys == 2) {
		/* data, if any, follows with the record's own option */
		if (!sf->mpc_acked)
			mpc_third_ack(sf);
		return true;
	}
	return false;
}

/* MP_JOIN's SYN, SYN/ACK and ACK forms map onto the TCP handshake as
 * they are (RFC 8684 section 3.2). */
static bool join_handshake(struct mps_cap_sf *sf,
			   enum mps_cap_dir dir,
			   const struct mps_mp_join *j,
			   const uint8_t *raw,
			   size_t raw_len)
{
	bool fwd = dir == syn_dir(sf);

	if (fwd && sf->hs == 0 && j->form == MPS_JOIN_SYN) {
		send_seg(sf, dir, MPS_CAP_SYN, raw, raw_len, NULL, 0);
		sf->hs = 1;
		return true;
	}
	if (!fwd && sf->hs == 1 && j->form == MPS_JOIN_SYNACK) {
		send_seg(sf, dir, MPS_CAP_SYN, raw, raw_len, NULL, 0);
		sf->hs = 2;
		return true;
	}
	if (fwd && sf->hs == 2 && j->form == MPS_JOIN_ACK) {
		send_seg(sf, dir, 0, raw, raw_len, NULL, 0);
		sf->hs = 3;
		return true;
	}
	return false;
}

/* A complete record header and option sit in f->head. */
static void on_record(struct mps_cap_sf *sf,
		      enum mps_cap_dir dir,
		      const struct mps_option *opt,
		      size_t pay_len)
{
	struct mps_cap_flow *f = &sf->flow[dir];
	const uint8_t *raw = f->head + MPS_WIRE_HDR_LEN;
	size_t raw_len = f->head_len - MPS_WIRE_HDR_LEN;

	f->head_len = 0;
	if (opt->subtype == MPS_MP_CAPABLE)
		sf->version = opt->mp_capable.version;
	if (opt->subtype == MPS_MP_CAPABLE &&
	    mpc_handshake(sf, dir, &opt->mp_capable, raw, raw_len) &&
	    pay_len == 0)
		return;
	if (opt->subtype == MPS_MP_JOIN &&
	    join_handshake(sf, dir, &opt->mp_join, raw, raw_len))
		return;
	if (opt->subtype == MPS_MP_EXPERIMENTAL)
		return; /* stands for the TCP window: no option of its own */
	finish_handshake(sf);
	if (pay_len > 0) {
		memcpy(f->opt, raw, raw_len);
		f->opt_len = raw_len;
		f->pay_left = pay_len;
		return;
	}
	send_seg(sf,
		 dir,
		 opt->subtype == MPS_MP_TCPRST ? MPS_CAP_RST : 0,
		 raw,
		 raw_len,
		 NULL,
		 0);
	if (mps_wire_is_infinite_mapping(opt))
		go_raw(sf, dir);
}

/* How many bytes of header and option the next record needs: 4 until
 * the header is there, then 4 + L; 0 when the header is bad. */
static size_t head_need(const struct mps_cap_flow *f)
{
	struct mps_record_hdr h;

	if (f->head_len < MPS_WIRE_HDR_LEN)
		return MPS_WIRE_HDR_LEN;
	if (mps_wire_decode_header(f->head, f->head_len, &h) != 0)
		return 0;
	return MPS_WIRE_HDR_LEN + h.opt_len;
}

/* f->head holds a whole header and option: decode and act on it. */
static void head_done(struct mps_cap_sf *sf, enum mps_cap_dir dir)
{
	struct mps_cap_flow *f = &sf->flow[dir];
	struct mps_record_hdr h;
	struct mps_option opt;
	size_t L = f->head_len - MPS_WIRE_HDR_LEN;

	if (mps_wire_decode_header(f->head, f->head_len, &h) != 0 ||
	    mps_wire_decode_option(
		    f->head + MPS_WIRE_HDR_LEN, L, sf->version, &opt) != 0) {
		go_raw(sf, dir);
		return;
	}
	on_record(sf, dir, &opt, h.payload_len);
}

/* Take header bytes from buf; returns how many it took. */
static size_t take_head(struct mps_cap_sf *sf,
			enum mps_cap_dir dir,
			const uint8_t *buf,
			size_t len)
{
	struct mps_cap_flow *f = &sf->flow[dir];
	size_t need = head_need(f);
	size_t n;

	if (need == 0) {
		go_raw(sf, dir);
		return 0;
	}
	n = need - f->head_len < len ? need - f->head_len : len;
	memcpy(f->head + f->head_len, buf, n);
	f->head_len += n;
	if (f->head_len == need && need > MPS_WIRE_HDR_LEN)
		head_done(sf, dir);
	return n;
}

void mps_cap_sf_bytes(struct mps_cap_sf *sf,
		      enum mps_cap_dir dir,
		      const uint8_t *buf,
		      size_t len)
{
	struct mps_cap_flow *f = &sf->flow[dir];

	while (len > 0 && !f->closed) {
		size_t n;

		if (dir == syn_dir(sf) && sf->hs == 1 && !f->raw &&
		    f->pay_left == 0 && f->head_len == 0) {
			/* before the SYN/ACK: see capseg.h */
			if (hold_bytes(sf, buf, len))
				return;
			finish_handshake(sf);
		}
		if (f->raw) {
			send_data(sf, dir, NULL, 0, buf, len);
			return;
		}
		if (f->pay_left == 0) {
			n = take_head(sf, dir, buf, len);
		} else {
			n = f->pay_left < len ? f->pay_left : len;
			send_data(sf, dir, f->opt, f->opt_len, buf, n);
			f->pay_left -= n;
		}
		buf += n;
		len -= n;
	}
}

void mps_cap_sf_free(struct mps_cap_sf *sf)
{
	free(sf->hold);
	sf->hold = NULL;
	sf->hold_len = 0;
}

void mps_cap_sf_end(struct mps_cap_sf *sf, enum mps_cap_dir dir, bool rst)
{
	if (sf->flow[dir].closed)
		return;
	if (!rst)
		finish_handshake(sf);
	if (!sf->flow[dir].started && sf->hs < 1)
		return; /* nothing ever went: no segment to end */
	send_seg(sf, dir, rst ? MPS_CAP_RST : MPS_CAP_FIN, NULL, 0, NULL, 0);
}
