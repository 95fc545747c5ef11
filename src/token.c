/*
 * token.c: the process's table of local tokens.
 *
 * An open-addressing hash table with linear probing. Deletion shifts the
 * following entries back instead of leaving tombstones, so probe lengths
 * depend only on the load, which stays between 1/8 and 1/2: the table
 * doubles when it would pass half full and halves when under 1/8 full.
 * Keys are drawn and hashed outside the lock; only the check-and-insert
 * runs under it, so a colliding draw costs one more lock round trip.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "token.h"

#define MPS_TOKEN_MIN_BITS 6
/* 2^31 slots at a load of 1/2 already hold 2^30 tokens of the 2^32. */
#define MPS_TOKEN_MAX_BITS 31

/* An empty slot has a NULL owner; owners are never NULL. */
struct mps_token_slot {
	void *owner;
	uint32_t token;
};

struct mps_token_table {
	pthread_mutex_t lock;	      /* guards every field below */
	struct mps_token_slot *slots; /* 2^bits of them */
	unsigned int bits;
	size_t count;
	mps_key_source_fn key_source; /* NULL: mps_crypto_key_new() */
	void *key_source_arg;
};

static size_t mps_token_cap(const struct mps_token_table *table)
{
	return (size_t)1 << table->bits;
}

/*
 * Home slot of a token. Tokens are hash outputs and so already uniform,
 * but a multiplicative mix keeps the table sound for any key source.
 */
static size_t mps_token_home(uint32_t token, unsigned int bits)
{
	uint32_t mixed = token * UINT32_C(0x9e3779b1);

	return (size_t)(mixed >> (32 - bits));
}

/* Lock held. Index of token's slot, or the capacity if it is absent. */
static size_t mps_token_find(const struct mps_token_table *table,
			     uint32_t token)
{
	size_t mask = mps_token_cap(table) - 1;
	size_t i = mps_token_home(token, table->bits);

	for (; table->slots[i].owner != NULL; i = (i + 1) & mask) {
		if (table->slots[i].token == token)
			return i;
	}
	return mps_token_cap(table);
}

/* Put an absent token into slots that have a free slot. */
static void mps_token_place(struct mps_token_slot *slots,
			    unsigned int bits,
			    uint32_t token,
			    void *owner)
{
	size_t mask = ((size_t)1 << bits) - 1;
	size_t i = mps_token_home(token, bits);

	while (slots[i].owner != NULL)
		i = (i + 1) & mask;
	slots[i].owner = owner;
	slots[i].token = token;
}

/* Lock held. Rehash into 2^bits slots; returns 0 or -ENOMEM. */
static int mps_token_resize(struct mps_token_table *table, unsigned int bits)
{
	struct mps_token_slot *slots;
	size_t cap = mps_token_cap(table);

	slots = calloc((size_t)1 << bits, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;

	for (size_t i = 0; i < cap; i++) {
		if (table->slots[i].owner != NULL)
			mps_token_place(slots,
					bits,
					table->slots[i].token,
					table->slots[i].owner);
	}

	free(table->slots);
	table->slots = slots;
	table->bits = bits;
	return 0;
}

int mps_token_table_create(struct mps_token_table **tablep)
{
	struct mps_token_table *table;

	if (tablep == NULL)
		return -EINVAL;

	table = calloc(1, sizeof(*table));
	if (table == NULL)
		return -ENOMEM;

	table->bits = MPS_TOKEN_MIN_BITS;
	table->slots = calloc(mps_token_cap(table), sizeof(*table->slots));
	if (table->slots == NULL) {
		free(table);
		return -ENOMEM;
	}

	pthread_mutex_init(&table->lock, NULL);
	*tablep = table;
	return 0;
}

void mps_token_table_destroy(struct mps_token_table *table)
{
	if (table == NULL)
		return;

	pthread_mutex_destroy(&table->lock);
	free(table->slots);
	free(table);
}

void mps_token_table_set_key_source(struct mps_token_table *table,
				    mps_key_source_fn fn,
				    void *arg)
{
	pthread_mutex_lock(&table->lock);
	table->key_source = fn;
	table->key_source_arg = arg;
	pthread_mutex_unlock(&table->lock);
}

/*
 * Lock held. Insert token for owner unless present. Returns 0, -EEXIST,
 * or -ENOMEM / -ENOSPC when the table cannot grow.
 */
static int
mps_token_insert(struct mps_token_table *table, uint32_t token, void *owner)
{
	int err;

	if (mps_token_find(table, token) != mps_token_cap(table))
		return -EEXIST;

	if ((table->count + 1) * 2 > mps_token_cap(table)) {
		if (table->bits >= MPS_TOKEN_MAX_BITS)
			return -ENOSPC;
		err = mps_token_resize(table, table->bits + 1);
		if (err < 0)
			return err;
	}

	mps_token_place(table->slots, table->bits, token, owner);
	table->count++;
	return 0;
}

static int mps_token_draw(struct mps_token_table *table,
			  enum mps_version version,
			  struct mps_key_material *km)
{
	mps_key_source_fn fn;
	void *arg;
	uint64_t key;
	int err;

	pthread_mutex_lock(&table->lock);
	fn = table->key_source;
	arg = table->key_source_arg;
	pthread_mutex_unlock(&table->lock);

	err = fn != NULL ? fn(arg, &key) : mps_crypto_key_new(&key);
	if (err < 0)
		return err;

	err = mps_crypto_key_material(version, key, km);
	mps_crypto_wipe(&key, sizeof(key));
	return err;
}

int mps_token_new(struct mps_token_table *table,
		  enum mps_version version,
		  void *owner,
		  struct mps_key_material *km)
{
	struct mps_key_material cand;
	int err = -EAGAIN;

	if (table == NULL || owner == NULL || km == NULL)
		return -EINVAL;

	for (int draw = 0; draw < MPS_TOKEN_MAX_DRAWS; draw++) {
		err = mps_token_draw(table, version, &cand);
		if (err < 0)
			break;

		pthread_mutex_lock(&table->lock);
		err = mps_token_insert(table, cand.token, owner);
		pthread_mutex_unlock(&table->lock);
		if (err != -EEXIST)
			break;
		err = -EAGAIN;
	}

	if (err == 0)
		*km = cand;
	mps_crypto_wipe(&cand, sizeof(cand));
	return err;
}

void *mps_token_lookup(struct mps_token_table *table, uint32_t token)
{
	void *owner = NULL;
	size_t i;

	pthread_mutex_lock(&table->lock);
	i = mps_token_find(table, token);
	if (i != mps_token_cap(table))
		owner = table->slots[i].owner;
	pthread_mutex_unlock(&table->lock);
	return owner;
}

/*
 * Lock held. Empty slot i, then walk the run after it and move back every
 * entry whose home is not between the hole and itself, so that no lookup
 * meets an empty slot before its token.
 */
static void mps_token_erase(struct mps_token_table *table, size_t i)
{
	struct mps_token_slot *slots = table->slots;
	size_t mask = mps_token_cap(table) - 1;
	size_t j = i;
	size_t home;

	for (;;) {
		j = (j + 1) & mask;
		if (slots[j].owner == NULL)
			break;
		home = mps_token_home(slots[j].token, table->bits);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			slots[i] = slots[j];
			i = j;
		}
	}
	slots[i].owner = NULL;
	slots[i].token = 0;
}

int mps_token_remove(struct mps_token_table *table,
		     uint32_t token,
		     const void *owner)
{
	size_t i;
	int err = 0;

	pthread_mutex_lock(&table->lock);
	i = mps_token_find(table, token);
	if (i == mps_token_cap(table)) {
		err = -ENOENT;
		goto out_unlock;
	}
	if (table->slots[i].owner != owner) {
		err = -EPERM;
		goto out_unlock;
	}

	mps_token_erase(table, i);
	table->count--;

	/* Give memory back after a burst; a failure only keeps it. */
	if (table->bits > MPS_TOKEN_MIN_BITS &&
	    table->count * 8 < mps_token_cap(table))
		(void)mps_token_resize(table, table->bits - 1);

out_unlock:
	pthread_mutex_unlock(&table->lock);
	return err;
}

size_t mps_token_count(struct mps_token_table *table)
{
	size_t count;

	pthread_mutex_lock(&table->lock);
	count = table->count;
	pthread_mutex_unlock(&table->lock);
	return count;
}
