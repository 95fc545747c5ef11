/*
 * crypto.c: keys, tokens, HMACs and the DSS checksum of MPTCP.
 *
 * OpenSSL 3 only: EVP_MD and EVP_MAC objects are fetched once per process
 * (pthread_once), because an HMAC runs for every MP_JOIN and a fetch per
 * call would take libcrypto's method-store lock every time. Each HMAC
 * duplicates a prepared context, so that threads never share one.
 *
 * Fork: OpenSSL 3.0 keeps its locks (the DRBGs', the method store's) as
 * they were at fork(); it only makes a child's DRBG reseed (fork id).  A
 * child would hang on any of them held by a thread that did not survive,
 * and the child's own program too (Python's hashlib takes the method
 * store's).  So every call into libcrypto from this file holds
 * crypto_lock for reading, and a pthread_atfork handler of this file,
 * registered at load, takes it for writing before fork() and lets it go
 * in parent and child: no thread of ours is inside libcrypto when the
 * process forks.  The lock is a leaf (nothing here takes another lock of
 * the library), so the handler's place among the library's others does
 * not matter; writers are preferred, so that a busy loop cannot hold
 * fork() off.  Calls that libcrypto makes for the program's own threads
 * are the program's business.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto.h"

/* The algorithms, fetched once; read-only after mps_crypto_setup(). */
struct mps_crypto_algs {
	EVP_MD *md[2]; /* indexed by enum mps_version */
	EVP_MAC *hmac;
	EVP_MAC_CTX *hmac_proto[2]; /* digest set, dummy key */
	int err;		    /* 0 or why the setup failed */
};

static struct mps_crypto_algs mps_algs;
static pthread_once_t mps_algs_once = PTHREAD_ONCE_INIT;

/* Held for reading around every libcrypto call, for writing across fork. */
static pthread_rwlock_t crypto_lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static const char *const mps_digest_names[2] = {
    [MPS_V0] = "SHA1",
    [MPS_V1] = "SHA2-256",
};

static void mps_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void mps_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t mps_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t mps_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static bool mps_version_ok(enum mps_version version)
{
	return version == MPS_V0 || version == MPS_V1;
}

/*
 * Prepare an HMAC context with the version's digest. It is keyed with a
 * dummy key because OpenSSL 3.0.0 cannot duplicate an HMAC context that
 * has never been initialised (fixed in 3.0.1); every user re-keys its copy.
 */
static int mps_hmac_proto_new(enum mps_version version, EVP_MAC_CTX **ctxp)
{
	static const uint8_t dummy_key[16];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;

	ctx = EVP_MAC_CTX_new(mps_algs.hmac);
	if (ctx == NULL)
		return -ENOMEM;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)mps_digest_names[version], 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, dummy_key, sizeof(dummy_key), params)) {
		EVP_MAC_CTX_free(ctx);
		return -ENOTSUP;
	}

	*ctxp = ctx;
	return 0;
}

/* Runs once per process, under pthread_once; records its outcome. */
static void mps_crypto_setup(void)
{
	int err;

	for (int v = MPS_V0; v <= MPS_V1; v++) {
		mps_algs.md[v] = EVP_MD_fetch(NULL, mps_digest_names[v], NULL);
		if (mps_algs.md[v] == NULL) {
			mps_algs.err = -ENOTSUP;
			return;
		}
	}

	mps_algs.hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (mps_algs.hmac == NULL) {
		mps_algs.err = -ENOTSUP;
		return;
	}

	for (int v = MPS_V0; v <= MPS_V1; v++) {
		err = mps_hmac_proto_new(v, &mps_algs.hmac_proto[v]);
		if (err < 0) {
			mps_algs.err = err;
			return;
		}
	}
}

static void crypto_prefork(void)
{
	pthread_rwlock_wrlock(&crypto_lock);
}

static void crypto_parent(void)
{
	pthread_rwlock_unlock(&crypto_lock);
}

/* The only thread left is the one that took the lock: start afresh. */
static void crypto_child(void)
{
	pthread_rwlock_init(&crypto_lock, NULL);
}

__attribute__((constructor)) static void crypto_fork_register(void)
{
	pthread_atfork(crypto_prefork, crypto_parent, crypto_child);
}

int mps_crypto_init(void)
{
	int err;

	pthread_rwlock_rdlock(&crypto_lock);
	err = pthread_once(&mps_algs_once, mps_crypto_setup);
	pthread_rwlock_unlock(&crypto_lock);
	if (err != 0)
		return -EIO;
	return mps_algs.err;
}

size_t mps_crypto_hash_len(enum mps_version version)
{
	switch (version) {
	case MPS_V0:
		return MPS_SHA1_LEN;
	case MPS_V1:
		return MPS_SHA256_LEN;
	}
	return 0;
}

int mps_crypto_key_new(uint64_t *key)
{
	uint8_t buf[8];
	int ok;

	if (key == NULL)
		return -EINVAL;
	pthread_rwlock_rdlock(&crypto_lock);
	ok = RAND_bytes(buf, sizeof(buf));
	pthread_rwlock_unlock(&crypto_lock);
	if (ok != 1)
		return -EIO;

	*key = mps_get_be64(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* H(key) with the key as 8 bytes big-endian; out gets the full digest. */
static int mps_hash_key(enum mps_version version,
			uint64_t key,
			uint8_t out[MPS_HASH_MAX_LEN])
{
	uint8_t buf[8];
	int ok;
	int err;

	if (!mps_version_ok(version))
		return -EINVAL;
	err = mps_crypto_init();
	if (err < 0)
		return err;

	mps_put_be64(buf, key);
	pthread_rwlock_rdlock(&crypto_lock);
	ok =
	    EVP_Digest(buf, sizeof(buf), out, NULL, mps_algs.md[version], NULL);
	pthread_rwlock_unlock(&crypto_lock);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok ? 0 : -EIO;
}

/* RFC 8684 section 3.1 (RFC 6824 section 3.1 for v0). */
int mps_crypto_key_derive(enum mps_version version,
			  uint64_t key,
			  uint32_t *token,
			  uint64_t *idsn)
{
	uint8_t hash[MPS_HASH_MAX_LEN];
	size_t len = mps_crypto_hash_len(version);
	int err;

	err = mps_hash_key(version, key, hash);
	if (err < 0)
		return err;

	if (token != NULL)
		*token = mps_get_be32(hash);
	if (idsn != NULL)
		*idsn = mps_get_be64(hash + len - 8);
	OPENSSL_cleanse(hash, sizeof(hash));
	return 0;
}

int mps_crypto_key_material(enum mps_version version,
			    uint64_t key,
			    struct mps_key_material *km)
{
	if (km == NULL)
		return -EINVAL;

	km->key = key;
	return mps_crypto_key_derive(version, key, &km->token, &km->idsn);
}

/*
 * The HMAC itself, on a private copy of the prepared context. out gets the
 * full digest. A NULL key would make EVP_MAC_init() keep the prototype's
 * dummy key, so an empty key is passed as a non-NULL pointer.
 */
int mps_crypto_hmac(enum mps_version version,
		    const void *key,
		    size_t key_len,
		    const void *msg,
		    size_t msg_len,
		    uint8_t *out)
{
	static const uint8_t empty;
	EVP_MAC_CTX *ctx;
	size_t out_len;
	int err;

	if (!mps_version_ok(version) || out == NULL)
		return -EINVAL;
	err = mps_crypto_init();
	if (err < 0)
		return err;

	pthread_rwlock_rdlock(&crypto_lock);
	ctx = EVP_MAC_CTX_dup(mps_algs.hmac_proto[version]);
	if (ctx == NULL) {
		err = -ENOMEM;
		goto out_unlock;
	}

	err = -EIO;
	if (EVP_MAC_init(ctx, key_len ? key : &empty, key_len, NULL) &&
	    EVP_MAC_update(ctx, msg_len ? msg : &empty, msg_len) &&
	    EVP_MAC_final(ctx, out, &out_len, mps_crypto_hash_len(version)))
		err = 0;

	EVP_MAC_CTX_free(ctx);
out_unlock:
	pthread_rwlock_unlock(&crypto_lock);
	return err;
}

/*
 * HMAC(key1 || key2, nonce1 || nonce2): the shape of both MP_JOIN HMACs
 * (RFC 8684 section 3.2). out gets the full digest.
 */
static int mps_join_hmac(enum mps_version version,
			 uint64_t key1,
			 uint64_t key2,
			 uint32_t nonce1,
			 uint32_t nonce2,
			 uint8_t out[MPS_HASH_MAX_LEN])
{
	uint8_t keys[16];
	uint8_t nonces[8];
	int err;

	mps_put_be64(keys, key1);
	mps_put_be64(keys + 8, key2);
	mps_put_be32(nonces, nonce1);
	mps_put_be32(nonces + 4, nonce2);

	err = mps_crypto_hmac(
	    version, keys, sizeof(keys), nonces, sizeof(nonces), out);
	OPENSSL_cleanse(keys, sizeof(keys));
	return err;
}

int mps_crypto_join_synack_hmac(enum mps_version version,
				uint64_t key_a,
				uint64_t key_b,
				uint32_t nonce_a,
				uint32_t nonce_b,
				uint8_t out[MPS_JOIN_TRUNC_HMAC_LEN])
{
	uint8_t hmac[MPS_HASH_MAX_LEN];
	int err;

	if (out == NULL)
		return -EINVAL;

	/* The responder proves its key: B's key and nonce come first. */
	err = mps_join_hmac(version, key_b, key_a, nonce_b, nonce_a, hmac);
	if (err < 0)
		return err;

	memcpy(out, hmac, MPS_JOIN_TRUNC_HMAC_LEN);
	return 0;
}

int mps_crypto_join_ack_hmac(enum mps_version version,
			     uint64_t key_a,
			     uint64_t key_b,
			     uint32_t nonce_a,
			     uint32_t nonce_b,
			     uint8_t out[MPS_JOIN_HMAC_LEN])
{
	uint8_t hmac[MPS_HASH_MAX_LEN];
	int err;

	if (out == NULL)
		return -EINVAL;

	err = mps_join_hmac(version, key_a, key_b, nonce_a, nonce_b, hmac);
	if (err < 0)
		return err;

	memcpy(out, hmac, MPS_JOIN_HMAC_LEN);
	return 0;
}

/* Bytes of an address of family, or 0 if the family is not IP. */
static size_t mps_addr_len(int family)
{
	switch (family) {
	case AF_INET:
		return sizeof(struct in_addr);
	case AF_INET6:
		return sizeof(struct in6_addr);
	}
	return 0;
}

/* RFC 8684 section 3.4.1: the HMAC covers the port even when absent. */
int mps_crypto_add_addr_hmac(uint64_t key_sender,
			     uint64_t key_receiver,
			     uint8_t addr_id,
			     int family,
			     const void *addr,
			     uint16_t port,
			     uint8_t out[MPS_ADD_ADDR_HMAC_LEN])
{
	uint8_t keys[16];
	uint8_t msg[1 + 16 + 2];
	uint8_t hmac[MPS_SHA256_LEN];
	size_t addr_len = mps_addr_len(family);
	int err;

	if (addr_len == 0)
		return -EAFNOSUPPORT;
	if (addr == NULL || out == NULL)
		return -EINVAL;

	msg[0] = addr_id;
	memcpy(msg + 1, addr, addr_len);
	msg[1 + addr_len] = (uint8_t)(port >> 8);
	msg[2 + addr_len] = (uint8_t)port;
	mps_put_be64(keys, key_sender);
	mps_put_be64(keys + 8, key_receiver);

	err = mps_crypto_hmac(
	    MPS_V1, keys, sizeof(keys), msg, addr_len + 3, hmac);
	OPENSSL_cleanse(keys, sizeof(keys));
	if (err < 0)
		return err;

	memcpy(out,
	       hmac + sizeof(hmac) - MPS_ADD_ADDR_HMAC_LEN,
	       MPS_ADD_ADDR_HMAC_LEN);
	return 0;
}

bool mps_crypto_mem_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void mps_crypto_wipe(void *p, size_t len)
{
	if (p != NULL)
		OPENSSL_cleanse(p, len);
}

/*
 * The Internet checksum (RFC 1071). Sums are kept in host byte order: the
 * ones' complement sum does not depend on byte order except for a final
 * swap, so words are loaded natively and converted once at the end.
 */

/* Add with end-around carry, as ones' complement arithmetic needs. */
static uint64_t mps_csum_add64(uint64_t a, uint64_t b)
{
	a += b;
	return a + (a < b);
}

/* Fold a 64-bit ones' complement sum to 16 bits (2^16 = 1 mod 0xffff). */
static uint16_t mps_csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * At most this many bytes go into one pair of accumulators: each takes 32
 * bits per 8 bytes, so fewer than 2^32 words cannot overflow 64 bits.
 */
#define MPS_CSUM_CHUNK ((size_t)1 << 30)

/*
 * Sum one piece as if it started at an even offset, 8 bytes at a time.
 * The halves of each word go into separate accumulators, which removes
 * the carry from the loop and lets the compiler vectorise it. A short
 * tail is zero-padded, which is what the checksum prescribes.
 */
static uint16_t mps_csum_block(const uint8_t *p, size_t len)
{
	uint64_t lo = 0;
	uint64_t hi = 0;
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, sizeof(w));
		lo += w & 0xffffffff;
		hi += w >> 32;
	}
	if (len > 0) {
		w = 0;
		memcpy(&w, p, len);
		lo += w & 0xffffffff;
		hi += w >> 32;
	}
	return mps_csum_fold(mps_csum_add64(lo, hi));
}

void mps_csum_init(struct mps_csum *csum)
{
	csum->sum = 0;
	csum->len = 0;
}

/*
 * A piece that starts at an odd offset has its bytes in the other halves
 * of the 16-bit words, so its sum is byte-swapped before it is added.
 */
void mps_csum_add(struct mps_csum *csum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t n;
	uint16_t sum;

	while (len > 0) {
		n = len < MPS_CSUM_CHUNK ? len : MPS_CSUM_CHUNK;
		sum = mps_csum_block(p, n);
		if (csum->len & 1)
			sum = (uint16_t)(sum << 8 | sum >> 8);
		csum->sum = mps_csum_add64(csum->sum, sum);
		csum->len += n;
		p += n;
		len -= n;
	}
}

void mps_csum_add_iov(struct mps_csum *csum,
		      const struct iovec *iov,
		      size_t iovcnt)
{
	for (size_t i = 0; i < iovcnt; i++)
		mps_csum_add(csum, iov[i].iov_base, iov[i].iov_len);
}

uint16_t mps_csum_final(const struct mps_csum *csum)
{
	uint16_t sum = mps_csum_fold(csum->sum);

	return ntohs((uint16_t)~sum);
}

/* RFC 8684 section 3.3.1: the DSN is always summed as 64 bits. */
void mps_dss_csum_start(struct mps_csum *csum,
			uint64_t dsn,
			uint32_t ssn,
			uint16_t data_len,
			uint16_t field)
{
	uint8_t hdr[16];

	mps_put_be64(hdr, dsn);
	mps_put_be32(hdr + 8, ssn);
	hdr[12] = (uint8_t)(data_len >> 8);
	hdr[13] = (uint8_t)data_len;
	hdr[14] = (uint8_t)(field >> 8);
	hdr[15] = (uint8_t)field;

	mps_csum_init(csum);
	mps_csum_add(csum, hdr, sizeof(hdr));
}

uint16_t mps_dss_csum(uint64_t dsn,
		      uint32_t ssn,
		      uint16_t data_len,
		      const void *payload,
		      size_t len)
{
	struct mps_csum csum;

	mps_dss_csum_start(&csum, dsn, ssn, data_len, 0);
	mps_csum_add(&csum, payload, len);
	return mps_csum_final(&csum);
}

bool mps_dss_csum_ok(uint64_t dsn,
		     uint32_t ssn,
		     uint16_t data_len,
		     const void *payload,
		     size_t len,
		     uint16_t csum)
{
	struct mps_csum state;

	mps_dss_csum_start(&state, dsn, ssn, data_len, csum);
	mps_csum_add(&state, payload, len);
	return mps_csum_final(&state) == 0;
}
