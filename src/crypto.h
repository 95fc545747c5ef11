/*
 * crypto.h: keys, tokens, HMACs and the DSS checksum of MPTCP.
 *
 * Keys are 64-bit numbers held in host order and always serialised as
 * 8 bytes big-endian before hashing; nonces are 32-bit and serialised as
 * 4 bytes big-endian (RFC 8684 section 3.2). HMAC outputs are byte arrays
 * in wire order, ready to be copied into an option.
 *
 * Every function here may be called from any thread. The OpenSSL
 * algorithm objects are fetched once per process, on first use, from the
 * default library context, and live until the process exits.
 *
 * Internal functions return 0 or a negative errno:
 *   -EINVAL        a bad argument (unknown version, NULL output);
 *   -EAFNOSUPPORT  an address family other than AF_INET and AF_INET6;
 *   -ENOTSUP       libcrypto offers no SHA-1, SHA-256 or HMAC;
 *   -ENOMEM        libcrypto could not allocate a context;
 *   -EIO           libcrypto failed otherwise (including the RNG).
 */
#ifndef MPS_CRYPTO_H
#define MPS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mptcpshim/wire.h"

/* The protocol version decides the hash: v0 (RFC 6824) uses SHA-1, v1
 * (RFC 8684) uses SHA-256. The values are the version field's. */
enum mps_version {
	MPS_V0 = 0,
	MPS_V1 = 1,
};

#define MPS_SHA1_LEN 20
#define MPS_SHA256_LEN 32
#define MPS_HASH_MAX_LEN MPS_SHA256_LEN

/*
 * The HMAC lengths the options carry (MPS_JOIN_TRUNC_HMAC_LEN,
 * MPS_JOIN_HMAC_LEN, MPS_ADD_ADDR_HMAC_LEN) are wire facts: wire.h has them.
 */

/* What a local key determines: the token names the connection in MP_JOIN,
 * the IDSN starts its data sequence space (RFC 8684 section 3.1). */
struct mps_key_material {
	uint64_t key;
	uint64_t idsn;
	uint32_t token;
};

/*
 * Fetch the algorithms once. Calling it is optional (every function below
 * calls it) but lets the library fail early. Returns 0, or the same
 * negative errno on every call if libcrypto lacks an algorithm.
 */
int mps_crypto_init(void);

/* Digest length of the version's hash (20 or 32), or 0 if unknown. */
size_t mps_crypto_hash_len(enum mps_version version);

/*
 * Draw a fresh 64-bit key from the OpenSSL RNG into *key.
 * Returns 0, or -EIO if the RNG fails (the key is then left unchanged).
 */
int mps_crypto_key_new(uint64_t *key);

/*
 * Derive the token (most significant 32 bits of H(key)) and the IDSN
 * (least significant 64 bits of H(key)). Either output may be NULL.
 */
int mps_crypto_key_derive(enum mps_version version,
			  uint64_t key,
			  uint32_t *token,
			  uint64_t *idsn);

/* mps_crypto_key_derive() filling a struct mps_key_material. */
int mps_crypto_key_material(enum mps_version version,
			    uint64_t key,
			    struct mps_key_material *km);

/*
 * HMAC with the version's hash over arbitrary bytes. out receives
 * mps_crypto_hash_len(version) bytes.
 */
int mps_crypto_hmac(enum mps_version version,
		    const void *key,
		    size_t key_len,
		    const void *msg,
		    size_t msg_len,
		    uint8_t *out);

/*
 * MP_JOIN, with A the initiator of the subflow and B the responder; the
 * caller passes the keys and nonces by role, never by "local" or "remote".
 *
 * synack: leftmost 64 bits of HMAC(Key-B || Key-A, R-B || R-A).
 * ack:    leftmost 160 bits of HMAC(Key-A || Key-B, R-A || R-B).
 */
int mps_crypto_join_synack_hmac(enum mps_version version,
				uint64_t key_a,
				uint64_t key_b,
				uint32_t nonce_a,
				uint32_t nonce_b,
				uint8_t out[MPS_JOIN_TRUNC_HMAC_LEN]);
int mps_crypto_join_ack_hmac(enum mps_version version,
			     uint64_t key_a,
			     uint64_t key_b,
			     uint32_t nonce_a,
			     uint32_t nonce_b,
			     uint8_t out[MPS_JOIN_HMAC_LEN]);

/*
 * ADD_ADDR (v1): rightmost 64 bits of HMAC-SHA256(Key-sender ||
 * Key-receiver, addr id || address || port). addr holds 4 (AF_INET) or 16
 * (AF_INET6) bytes in network order; port is in host order, 0 when the
 * option carries none. To verify a received option, the peer is the
 * sender.
 */
int mps_crypto_add_addr_hmac(uint64_t key_sender,
			     uint64_t key_receiver,
			     uint8_t addr_id,
			     int family,
			     const void *addr,
			     uint16_t port,
			     uint8_t out[MPS_ADD_ADDR_HMAC_LEN]);

/* Compare two HMACs in time independent of where they differ. */
bool mps_crypto_mem_equal(const void *a, const void *b, size_t len);

/* Wipe a key (or anything secret) so that the compiler keeps the stores. */
void mps_crypto_wipe(void *p, size_t len);

/*
 * The DSS checksum (RFC 8684 section 3.3.1), computed incrementally: an
 * Internet checksum over a pseudo-header (64-bit DSN, 32-bit subflow
 * sequence number, 16-bit data-level length, 16-bit checksum field)
 * followed by the mapped payload, which may arrive in pieces of any
 * length. The state belongs to its caller; nothing is allocated.
 */
struct mps_csum {
	uint64_t sum; /* ones' complement sum in host byte order */
	uint64_t len; /* bytes summed so far; its parity aligns pieces */
};

void mps_csum_init(struct mps_csum *csum);
void mps_csum_add(struct mps_csum *csum, const void *buf, size_t len);
void mps_csum_add_iov(struct mps_csum *csum,
		      const struct iovec *iov,
		      size_t iovcnt);

/* The ones' complement of the sum so far, as a host-order number. */
uint16_t mps_csum_final(const struct mps_csum *csum);

/*
 * Start a DSS checksum with its pseudo-header. field is 0 to compute a
 * checksum, or the received checksum to verify one: the final value is
 * then 0 if and only if the data is intact.
 */
void mps_dss_csum_start(struct mps_csum *csum,
			uint64_t dsn,
			uint32_t ssn,
			uint16_t data_len,
			uint16_t field);

/* One-shot forms over a contiguous payload. */
uint16_t mps_dss_csum(uint64_t dsn,
		      uint32_t ssn,
		      uint16_t data_len,
		      const void *payload,
		      size_t len);
bool mps_dss_csum_ok(uint64_t dsn,
		     uint32_t ssn,
		     uint16_t data_len,
		     const void *payload,
		     size_t len,
		     uint16_t csum);

#endif /* MPS_CRYPTO_H */
