/*
 * capseg.h: one subflow's records turned into synthetic TCP segments, so
 * that a capture of mptcpshim reads like a capture of kernel MPTCP.
 *
 * The loop hands over the bytes each subflow socket read or wrote; each
 * direction runs its own record parser (wire.h) and every record becomes
 * one or more IPv4 or IPv6 TCP segments between the subflow's real
 * addresses and ports, whose TCP header carries the record's option
 * (kind 30, the bytes unchanged) and whose payload is the record's data.
 *
 * Sequence numbers: each direction has a synthetic initial sequence
 * number (ISN).  The core numbers a subflow's payload bytes from 1 (the
 * DSS subflow sequence number, relative to the subflow's start as in RFC
 * 8684 section 3.3.1), so the byte with subflow sequence number s sits at
 * TCP sequence number ISN + s, and a segment's DSS mapping agrees with
 * its own sequence number.  A segment acknowledges everything the other
 * direction has carried so far.
 *
 * Handshakes: the in-band MP_CAPABLE and MP_JOIN exchanges become SYN,
 * SYN/ACK and ACK in the forms of RFC 8684 sections 3.1 and 3.2: the
 * initiator's first MP_CAPABLE (12 bytes in-band, with its key) becomes
 * the SYN (v1: the 4-byte form without a key; v0: the 12-byte form), the
 * responder's the SYN/ACK, and the initiator's MP_CAPABLE with both keys
 * the third ACK (the 20-byte form; when it maps data, the data follows in
 * segments that carry the record's own 22- or 24-byte option).  A subflow
 * whose first bytes are not records (a plain peer, a fallback) gets a
 * handshake without options and its bytes as plain data.
 *
 * What has no TCP counterpart is left out: mptcpshim's private data
 * window option (subtype 15).  A record that cannot be parsed turns the
 * rest of that direction into plain data, as the infinite mapping does.
 *
 * In-band, the initiator may send data right after its MP_CAPABLE, before
 * the responder's key came back; a TCP SYN cannot carry data, so those
 * bytes are held until the SYN/ACK is known and then follow the third
 * ACK (at most MPS_CAP_HOLD_MAX: the peer's initial data window bounds
 * them; beyond it the handshake is written without options).
 *
 * Memory: besides that hold, a direction keeps at most one record header
 * and option (44 bytes); payload is cut into segments as it arrives, each
 * carrying the record's option again (RFC 8684 allows a mapping to be
 * repeated).
 *
 * Every function here is pure (no I/O, no global state): the caller owns
 * the struct and gives the emit function.  Threads: whoever owns it.
 */
#ifndef MPS_CAPSEG_H
#define MPS_CAPSEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mptcpshim/wire.h"

/* Largest payload of one synthetic segment: an IPv4 datagram with a full
 * TCP header still fits the 16-bit total length. */
#define MPS_CAP_SEG_MAX 65000

/* Bytes held before the SYN/ACK (see above): the initial data window
 * (conn.h) with room for its records' headers. */
#define MPS_CAP_HOLD_MAX (128 * 1024)

/* IP header (40 for IPv6) + TCP header with the longest options. */
#define MPS_CAP_HDR_MAX (40 + 20 + MPS_WIRE_OPT_MAX)

#define MPS_CAP_FIN 0x01
#define MPS_CAP_SYN 0x02
#define MPS_CAP_RST 0x04
#define MPS_CAP_PSH 0x08
#define MPS_CAP_ACK 0x10

/* Which way bytes went, seen from this process. */
enum mps_cap_dir {
	MPS_CAP_OUT = 0, /* written: local -> peer */
	MPS_CAP_IN = 1,	 /* read: peer -> local */
};

/* One endpoint: family AF_INET or AF_INET6, address in network order. */
struct mps_cap_end {
	int family;
	uint8_t addr[16]; /* IPv4 in addr[0..3] */
	uint16_t port;	  /* host order */
};

/* Everything one segment needs. */
struct mps_cap_seg {
	const struct mps_cap_end *src, *dst;
	uint32_t seq, ack;
	uint8_t flags; /* MPS_CAP_* */
	uint16_t ip_id;
	const uint8_t *opt; /* one TCP option, or NULL */
	size_t opt_len;
	const uint8_t *payload;
	size_t payload_len;
};

/*
 * Write the IP and TCP headers of seg into hdr (MPS_CAP_HDR_MAX bytes),
 * checksums included (the TCP one covers seg->payload).  The option is
 * padded with NOPs to a multiple of 4.  Returns the header length, or
 * -EINVAL for a family other than AF_INET and AF_INET6, an option longer
 * than 40 bytes or a segment too long for its IP header.
 */
int mps_cap_build(const struct mps_cap_seg *seg, uint8_t *hdr);

/* The Internet checksum (RFC 1071) of buf, folded, not complemented,
 * added to sum.  Pieces of odd length may only come last. */
uint32_t mps_cap_sum(uint32_t sum, const uint8_t *buf, size_t len);

/* Folds sum and complements it: the value a header carries. */
uint16_t mps_cap_fold(uint32_t sum);

/* Receives each synthetic packet: hdr[0..hlen) then payload[0..plen). */
typedef void (*mps_cap_emit_fn)(void *ctx,
				const uint8_t *hdr,
				size_t hlen,
				const uint8_t *payload,
				size_t plen);

/* One direction's parser and sequence state. */
struct mps_cap_flow {
	uint32_t isn; /* synthetic initial sequence number */
	uint32_t nxt; /* sequence number of the next byte */
	bool started; /* its SYN (or SYN/ACK) went out */
	bool raw;     /* no more records: plain bytes */
	bool closed;  /* FIN or RST went out: nothing more */
	uint8_t head[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	size_t head_len; /* bytes of the next record's header and option */
	size_t pay_left; /* payload of the current record still to come */
	uint8_t opt[MPS_WIRE_OPT_MAX]; /* the option its payload carries */
	size_t opt_len;
};

/* One subflow, both directions. */
struct mps_cap_sf {
	struct mps_cap_end local, peer;
	bool initiator; /* this end opened the subflow (sent the SYN) */
	bool plain;	/* not MPTCP: no records at all */
	int version;	/* for decoding; MP_CAPABLE's own version wins */
	int hs;		/* handshake segments synthesised: 0 to 3 */
	bool mpc_keys;	/* both MP_CAPABLE keys went in-band */
	bool mpc_acked; /* the third ACK with both keys went out */
	struct mps_mp_capable mpc_syn, mpc_synack; /* as carried in-band */
	uint16_t ip_id;
	struct mps_cap_flow flow[2]; /* by enum mps_cap_dir */
	uint8_t *hold; /* the initiator's bytes before the SYN/ACK */
	size_t hold_len;
	mps_cap_emit_fn emit;
	void *ctx;
};

/*
 * Start sf: both ends, who opened it, whether its bytes are plain TCP,
 * the connection's MPTCP version, and a seed for the ISNs.
 */
void mps_cap_sf_init(struct mps_cap_sf *sf,
		     const struct mps_cap_end *local,
		     const struct mps_cap_end *peer,
		     bool initiator,
		     bool plain,
		     int version,
		     uint32_t seed,
		     mps_cap_emit_fn emit,
		     void *ctx);

/* Bytes that went dir on the subflow, in order, cut anywhere. */
void mps_cap_sf_bytes(struct mps_cap_sf *sf,
		      enum mps_cap_dir dir,
		      const uint8_t *buf,
		      size_t len);

/* dir ended: a FIN, or a RST when rst (once; nothing after it). */
void mps_cap_sf_end(struct mps_cap_sf *sf, enum mps_cap_dir dir, bool rst);

/* Free what sf holds (not sf itself). */
void mps_cap_sf_free(struct mps_cap_sf *sf);

/* Fill an end from a sockaddr (an IPv4-mapped IPv6 address becomes
 * IPv4).  Returns 0 or -EAFNOSUPPORT. */
struct sockaddr;
int mps_cap_end_from(struct mps_cap_end *end, const struct sockaddr *sa);

#endif /* MPS_CAPSEG_H */
