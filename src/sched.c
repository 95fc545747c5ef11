/*
 * sched.c: the scheduler's decisions, as pure functions.
 *
 * The connection core (conn.c) takes a snapshot of its subflows for each
 * chunk of data it is about to cut and asks these functions where the
 * chunk goes; conn.h documents each.  No state, no allocation: any
 * thread may call them, and the unit tests feed them metrics directly.
 */
#include "autoconfig.h"

#include "conn.h"

/*
 * An application-limited delivery rate says how fast the path carried
 * what little it was given, not how fast it can go.  Trusting it starves
 * a path for good: a slow subflow that only carried the handshake reports
 * a few kB/s, the scheduler never gives it data, and no better sample
 * ever comes.  Its window per round trip is what it could send now.
 */
uint64_t mps_sched_rate(const struct mps_sf_metrics *m)
{
	uint64_t wnd_rate = 0;

	if (m->cwnd_bytes > 0 && m->srtt_us > 0)
		wnd_rate = m->cwnd_bytes * 1000000 / m->srtt_us;
	if (m->delivery_rate == 0)
		return wnd_rate;
	if (m->rate_app_limited && wnd_rate > m->delivery_rate)
		return wnd_rate;
	return m->delivery_rate;
}

uint64_t mps_sched_arrival_us(const struct mps_sched_path *p, uint64_t chunk)
{
	uint64_t rate = p->rate ? p->rate : MPS_SCHED_DEFAULT_RATE;

	return (p->queued + chunk) * 1000000 / rate + p->srtt_us / 2;
}

bool mps_sched_eligible(const struct mps_sched_path *paths, int n, int i)
{
	int j;

	if (i < 0 || i >= n || !paths[i].usable)
		return false;
	if (!paths[i].backup)
		return true;
	for (j = 0; j < n; j++)
		if (paths[j].usable && !paths[j].backup)
			return false;
	return true;
}

/*
 * Whether path j, faster than self for the chunk, should have it: when j
 * can take it now, or when j is full but would deliver everything that
 * waits (backlog) before self delivers the chunk.  Otherwise j stays busy
 * with the rest of the backlog anyway, and leaving the chunk for it only
 * leaves self idle.
 */
static bool sched_wait_for(const struct mps_sched_path *j,
			   uint64_t chunk,
			   uint64_t backlog,
			   uint64_t mine)
{
	if (j->room >= chunk)
		return true;
	return mps_sched_arrival_us(j, backlog) <= mine;
}

bool mps_sched_earliest_backlog(const struct mps_sched_path *paths,
				int n,
				int self,
				uint64_t chunk,
				uint64_t backlog)
{
	uint64_t mine;
	int j;

	if (!mps_sched_eligible(paths, n, self))
		return false;
	if (backlog < chunk)
		backlog = chunk;
	mine = mps_sched_arrival_us(&paths[self], chunk);
	for (j = 0; j < n; j++) {
		if (j == self || !mps_sched_eligible(paths, n, j))
			continue;
		if (mps_sched_arrival_us(&paths[j], chunk) < mine &&
		    sched_wait_for(&paths[j], chunk, backlog, mine))
			return false;
	}
	return true;
}

bool mps_sched_earliest(const struct mps_sched_path *paths,
			int n,
			int self,
			uint64_t chunk)
{
	return mps_sched_earliest_backlog(paths, n, self, chunk, chunk);
}

int mps_sched_roundrobin(const struct mps_sched_path *paths, int n, int last)
{
	int k;

	if (n <= 0)
		return -1;
	if (last < -1 || last >= n)
		last = -1;
	for (k = 1; k <= n; k++) {
		int i = (last + k) % n;

		if (mps_sched_eligible(paths, n, i) && paths[i].room > 0)
			return i;
	}
	return -1;
}
