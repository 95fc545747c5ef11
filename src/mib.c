/*
 * mib.c: the process's counters (see mib.h).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "mib.h"

static atomic_ullong counters[MPS_MIB_COUNT];

static const char *const names[MPS_MIB_COUNT] = {
	[MPS_MIB_MPTCP_CLIENT] = "mptcp_client",
	[MPS_MIB_MPTCP_SERVER] = "mptcp_server",
	[MPS_MIB_PLAIN_CLIENT] = "plain_client_no_signal",
	[MPS_MIB_PLAIN_SERVER] = "plain_server_no_signal",
	[MPS_MIB_RELAYED] = "relayed_plain",
	[MPS_MIB_FALLBACK_FIRST] = "fallback_first_record",
	[MPS_MIB_FALLBACK_MP_FAIL] = "fallback_mp_fail",
	[MPS_MIB_FALLBACK_OTHER] = "fallback_other",
	[MPS_MIB_JOIN_OPENED] = "join_opened",
	[MPS_MIB_JOIN_CONNECT_FAILED] = "join_connect_failed",
	[MPS_MIB_JOIN_REFUSED_TOKEN] = "join_refused_token",
	[MPS_MIB_JOIN_REFUSED_CAP] = "join_refused_cap",
	[MPS_MIB_JOIN_REFUSED_ADDR] = "join_refused_withdrawn",
	[MPS_MIB_JOIN_REFUSED_HALF_OPEN] = "join_refused_half_open",
	[MPS_MIB_JOIN_DROPPED] = "join_dropped",
	[MPS_MIB_CONN_CLOSED] = "conn_closed",
	[MPS_MIB_RESET_PEER] = "reset_peer",
	[MPS_MIB_RESET_ABORT] = "reset_abort",
	[MPS_MIB_RESET_TIMEOUT] = "reset_timeout",
	[MPS_MIB_RESET_OTHER] = "reset_other",
	[MPS_MIB_SUBFLOW_DOWN] = "subflow_down",
	[MPS_MIB_SUBFLOW_WITHDRAWN] = "subflow_withdrawn",
	[MPS_MIB_DIRECT_BYTES] = "direct_send_bytes",
	[MPS_MIB_BYTES_IN] = "bytes_in",
	[MPS_MIB_BYTES_OUT] = "bytes_out",
	[MPS_MIB_JOINS_ACCEPTED] = "joins_accepted",
	[MPS_MIB_JOINS_REFUSED] = "joins_refused",
	[MPS_MIB_JOINS_REPLAYED] = "joins_replayed",
	[MPS_MIB_JOINS_BAD_HMAC] = "joins_bad_hmac",
	[MPS_MIB_JOINS_HALF_OPEN] = "joins_half_open_refused",
	[MPS_MIB_CSUM_ERRORS] = "csum_errors",
	[MPS_MIB_PROTOCOL_ERRORS] = "protocol_errors",
	[MPS_MIB_FLOODS] = "floods",
	[MPS_MIB_WINDOW_ERRORS] = "window_errors",
	[MPS_MIB_INCONSISTENT_DATA] = "inconsistent_data",
	[MPS_MIB_MP_FAIL] = "mp_fail",
	[MPS_MIB_LATE_FIRST] = "late_first_record",
	[MPS_MIB_REINJECTED_BYTES] = "reinjected_bytes",
	[MPS_MIB_DUP_BYTES] = "dup_bytes",
	[MPS_MIB_STALLS] = "stalls",
	[MPS_MIB_ADDRS_ACCEPTED] = "addrs_accepted",
	[MPS_MIB_ADDRS_REFUSED] = "addrs_refused",
	[MPS_MIB_SIGNALS_REFUSED] = "signals_refused",
	[MPS_MIB_EVENTS_DROPPED] = "events_dropped",
	[MPS_MIB_CTL_REFUSED] = "control_refused",
	[MPS_MIB_CTL_DROPPED] = "control_dropped",
};

/* Which core stat feeds which counter. */
static const struct {
	enum mps_mib_id id;
	size_t off;
} from_stats[] = {
	{MPS_MIB_BYTES_IN, offsetof(struct mps_conn_stats, bytes_in)},
	{MPS_MIB_BYTES_OUT, offsetof(struct mps_conn_stats, bytes_out)},
	{MPS_MIB_JOINS_ACCEPTED,
	 offsetof(struct mps_conn_stats, joins_accepted)},
	{MPS_MIB_JOINS_REFUSED, offsetof(struct mps_conn_stats, joins_refused)},
	{MPS_MIB_JOINS_REPLAYED,
	 offsetof(struct mps_conn_stats, joins_replayed)},
	{MPS_MIB_JOINS_BAD_HMAC,
	 offsetof(struct mps_conn_stats, joins_bad_hmac)},
	{MPS_MIB_JOINS_HALF_OPEN,
	 offsetof(struct mps_conn_stats, joins_half_open_refused)},
	{MPS_MIB_CSUM_ERRORS, offsetof(struct mps_conn_stats, csum_errors)},
	{MPS_MIB_PROTOCOL_ERRORS,
	 offsetof(struct mps_conn_stats, protocol_errors)},
	{MPS_MIB_WINDOW_ERRORS, offsetof(struct mps_conn_stats, window_errors)},
	{MPS_MIB_FLOODS, offsetof(struct mps_conn_stats, floods)},
	{MPS_MIB_INCONSISTENT_DATA,
	 offsetof(struct mps_conn_stats, inconsistent_data)},
	{MPS_MIB_MP_FAIL, offsetof(struct mps_conn_stats, mp_fail)},
	{MPS_MIB_LATE_FIRST, offsetof(struct mps_conn_stats, late_first)},
	{MPS_MIB_REINJECTED_BYTES,
	 offsetof(struct mps_conn_stats, reinjected_bytes)},
	{MPS_MIB_DUP_BYTES, offsetof(struct mps_conn_stats, dup_bytes)},
	{MPS_MIB_STALLS, offsetof(struct mps_conn_stats, stalls)},
	{MPS_MIB_ADDRS_ACCEPTED,
	 offsetof(struct mps_conn_stats, addrs_accepted)},
	{MPS_MIB_ADDRS_REFUSED, offsetof(struct mps_conn_stats, addrs_refused)},
	{MPS_MIB_SIGNALS_REFUSED,
	 offsetof(struct mps_conn_stats, signals_refused)},
	{MPS_MIB_EVENTS_DROPPED,
	 offsetof(struct mps_conn_stats, events_dropped)},
};

void mps_mib_inc(enum mps_mib_id id)
{
	mps_mib_add(id, 1);
}

void mps_mib_add(enum mps_mib_id id, uint64_t n)
{
	if ((unsigned int)id < MPS_MIB_COUNT)
		atomic_fetch_add_explicit(
			&counters[id], n, memory_order_relaxed);
}

void mps_mib_snapshot(uint64_t *out)
{
	int i;

	for (i = 0; i < MPS_MIB_COUNT; i++)
		out[i] = atomic_load_explicit(&counters[i],
					      memory_order_relaxed);
}

const char *mps_mib_name(enum mps_mib_id id)
{
	return (unsigned int)id < MPS_MIB_COUNT ? names[id] : "?";
}

/* Which fallback counter a connection's fallback goes to, or -1. */
static int fallback_id(const struct mps_conn_stats *st, bool server)
{
	if (!st->fallbacks)
		return -1;
	if (st->mp_fail)
		return MPS_MIB_FALLBACK_MP_FAIL;
	return server ? MPS_MIB_FALLBACK_FIRST : MPS_MIB_FALLBACK_OTHER;
}

void mps_mib_add_stats(uint64_t *out,
		       const struct mps_conn_stats *st,
		       bool server)
{
	const char *base = (const char *)st;
	size_t i;
	uint64_t v;
	int fb = fallback_id(st, server);

	for (i = 0; i < sizeof(from_stats) / sizeof(from_stats[0]); i++) {
		memcpy(&v, base + from_stats[i].off, sizeof(v));
		out[from_stats[i].id] += v;
	}
	if (fb >= 0)
		out[fb]++;
}

void mps_mib_fold_conn(const struct mps_conn_stats *st, bool server)
{
	uint64_t add[MPS_MIB_COUNT] = {0};
	int i;

	mps_mib_add_stats(add, st, server);
	for (i = 0; i < MPS_MIB_COUNT; i++)
		if (add[i])
			mps_mib_add((enum mps_mib_id)i, add[i]);
}

void mps_mib_child(void)
{
	int i;

	for (i = 0; i < MPS_MIB_COUNT; i++)
		atomic_store(&counters[i], 0);
}
