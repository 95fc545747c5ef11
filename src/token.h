/*
 * token.h: the process's table of local tokens.
 *
 * A peer's MP_JOIN names the connection it joins by our token (RFC 8684
 * sections 3.1 and 3.2), so a token must identify one live connection of
 * this process. The table draws each connection's key and inserts the
 * resulting token atomically, which keeps tokens, and so keys, unique
 * among the live connections.
 *
 * Every function may be called from any thread: a mutex inside serialises
 * them. The table stores owners but never dereferences them.
 */
#ifndef MPS_TOKEN_H
#define MPS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

/* Keys drawn for one connection before giving up with -EAGAIN. */
#define MPS_TOKEN_MAX_DRAWS 16

struct mps_token_table;

/*
 * A source of keys: stores a fresh key in *key, returns 0 or a negative
 * errno. It is called without the table's lock held, possibly from
 * several threads at once.
 */
typedef int (*mps_key_source_fn)(void *arg, uint64_t *key);

/* Returns 0 and a new empty table in *tablep, or -ENOMEM. */
int mps_token_table_create(struct mps_token_table **tablep);

/* Frees the table; its owners are the caller's. No call may be running. */
void mps_token_table_destroy(struct mps_token_table *table);

/*
 * Draw keys from fn instead of the OpenSSL RNG (fn NULL restores it).
 * Meant for tests, which need to force a collision.
 */
void mps_token_table_set_key_source(struct mps_token_table *table,
				    mps_key_source_fn fn,
				    void *arg);

/*
 * Draw a key for owner (not NULL) whose token under version is not in the
 * table, and insert the token with owner. On success returns 0 and fills
 * *km; the key is secret, and the caller wipes it (mps_crypto_wipe) when
 * the connection ends. Returns -EAGAIN when MPS_TOKEN_MAX_DRAWS keys all
 * collided, -ENOMEM (-ENOSPC past 2^30 tokens) if the table cannot grow,
 * -EINVAL on bad arguments, or the error of the key source or the hash.
 */
int mps_token_new(struct mps_token_table *table,
		  enum mps_version version,
		  void *owner,
		  struct mps_key_material *km);

/*
 * The owner of token, or NULL. The table holds no reference: the caller
 * must know that the owner outlives its use, e.g. because owners are
 * removed from the table before they are freed, on the same thread.
 */
void *mps_token_lookup(struct mps_token_table *table, uint32_t token);

/*
 * Remove token if owner owns it. Returns 0, -ENOENT if the token is not in
 * the table, or -EPERM if another owner holds it (it then stays).
 */
int mps_token_remove(struct mps_token_table *table,
		     uint32_t token,
		     const void *owner);

/* Number of live tokens. */
size_t mps_token_count(struct mps_token_table *table);

#endif /* MPS_TOKEN_H */
