/*
 * negotiate.c: the handshake signal, the destination rules and the cache
 * of plain destinations (see negotiate.h for the signal).
 *
 * Decisions:
 * - Which sockets: AF_INET and AF_INET6 SOCK_STREAM with protocol 0 or
 *   IPPROTO_TCP (the interposer checks that).  MPTCPSHIM_CONVERT picks the
 *   destinations that connect() converts; listeners are prepared unless
 *   it is "none".  An IPv4-mapped IPv6 destination matches IPv4 rules.
 * - A program that set TCP_MAXSEG itself is never converted: its wish is
 *   kept and the signal cannot be sent (the interposer checks that too).
 * - The client reads the signal as tcpi_snd_mss equal to 1213, or to
 *   1213 - 12 when timestamps were negotiated.  A plain server advertises
 *   its own MSS, and the client then sees min(1219, that) instead.
 * - A server connection without a saved SYN (the kernel answered with a
 *   SYN cookie: it keeps no SYN, but its SYN-ACK carried our signal) is
 *   converted, and its core decides by the client's first bytes: without
 *   that, a client of ours would send records to the program as data.
 *   A plain client then waits for the core's fallback only when it
 *   expects the server to speak first.
 * - A destination (address and port) found plain is cached for
 *   MPS_NEG_CACHE_TTL seconds; later connects to it are not converted at
 *   all (their SYN is the program's own).  The cache holds
 *   MPS_NEG_CACHE_SIZE entries; a new one replaces an expired one or the
 *   oldest.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "libc.h"
#include "mib.h"
#include "negotiate.h"

/* A destination in one form for both families. */
struct dest {
	int family; /* AF_INET (also for v4-mapped) or AF_INET6 */
	uint8_t addr[16];
	uint16_t port; /* host byte order */
};

struct cache_entry {
	struct dest dst;
	time_t expires; /* CLOCK_MONOTONIC seconds; 0 when empty */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry cache[MPS_NEG_CACHE_SIZE]; /* under cache_lock */

static const uint8_t v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* dst from a sockaddr; -EAFNOSUPPORT for other families. */
static int dest_from(const struct sockaddr *sa, socklen_t len, struct dest *d)
{
	memset(d, 0, sizeof(*d));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		d->family = AF_INET;
		memcpy(d->addr, &in->sin_addr, 4);
		d->port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		d->port = ntohs(in6->sin6_port);
		if (memcmp(a, v4mapped_prefix, 12) == 0) {
			d->family = AF_INET;
			memcpy(d->addr, a + 12, 4);
		} else {
			d->family = AF_INET6;
			memcpy(d->addr, a, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	unsigned int whole = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static bool rule_match(const struct mps_rule *r, const struct dest *d)
{
	if (r->family != d->family)
		return false;
	if (r->port && r->port != d->port)
		return false;
	return prefix_equal(r->addr, d->addr, r->prefix);
}

bool mps_neg_rules_match(const struct sockaddr *dst, socklen_t len)
{
	struct dest d;
	int i;

	if (mps_config.convert == MPS_CONVERT_ALL)
		return true;
	if (mps_config.convert == MPS_CONVERT_NONE)
		return false;
	if (dest_from(dst, len, &d) < 0)
		return false;
	for (i = 0; i < mps_config.nrules; i++)
		if (rule_match(&mps_config.rules[i], &d))
			return true;
	return false;
}

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1; /* never 0, which marks an empty entry */
}

static bool dest_equal(const struct dest *a, const struct dest *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool cache_holds(const struct dest *d)
{
	time_t now = now_s();
	bool found = false;
	int i;

	pthread_mutex_lock(&cache_lock);
	for (i = 0; i < MPS_NEG_CACHE_SIZE && !found; i++)
		found = cache[i].expires > now && dest_equal(&cache[i].dst, d);
	pthread_mutex_unlock(&cache_lock);
	return found;
}

void mps_neg_cache_plain(const struct sockaddr *dst, socklen_t len)
{
	struct dest d;
	time_t now = now_s();
	int i, victim = 0;

	if (dest_from(dst, len, &d) < 0)
		return;
	pthread_mutex_lock(&cache_lock);
	for (i = 0; i < MPS_NEG_CACHE_SIZE; i++) {
		if (cache[i].expires > now && dest_equal(&cache[i].dst, &d)) {
			victim = i;
			break;
		}
		if (cache[i].expires < cache[victim].expires)
			victim = i;
	}
	cache[victim].dst = d;
	cache[victim].expires = now + MPS_NEG_CACHE_TTL;
	pthread_mutex_unlock(&cache_lock);
}

bool mps_neg_should_convert(const struct sockaddr *dst, socklen_t len)
{
	struct dest d;

	if (dest_from(dst, len, &d) < 0)
		return false;
	if (!mps_neg_rules_match(dst, len))
		return false;
	return !cache_holds(&d);
}

int mps_neg_client_prepare(int fd)
{
	int mss = MPS_NEG_CLIENT_MSS;

	if (mps_libc()->setsockopt(
		    fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) < 0)
		return -errno;
	return 0;
}

bool mps_neg_client_peer_is_shim(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (mps_libc()->getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return false;
	if (ti.tcpi_snd_mss == MPS_NEG_SERVER_MSS)
		return true;
	if ((ti.tcpi_options & TCPI_OPT_TIMESTAMPS) &&
	    ti.tcpi_snd_mss == MPS_NEG_SERVER_MSS - MPS_NEG_TS_LEN)
		return true;
	mps_mib_inc(MPS_MIB_PLAIN_CLIENT);
	return false;
}

int mps_neg_listener_prepare(int fd)
{
	int mss = MPS_NEG_SERVER_MSS, on = 1;
	const struct mps_libc *c = mps_libc();

	if (c->setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) < 0)
		return -errno;
	if (c->setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &on, sizeof(on)) < 0)
		return -errno;
	return 0;
}

/* Offset of the TCP header in an IPv6 packet, skipping the extension
 * headers a SYN may carry; -1 when there is none. */
static long ipv6_tcp_offset(const uint8_t *p, size_t len)
{
	size_t off = 40;
	uint8_t next;

	if (len < 40)
		return -1;
	next = p[6];
	while (next == 0 || next == 43 || next == 60) {
		if (len < off + 8)
			return -1;
		next = p[off];
		off += ((size_t)p[off + 1] + 1) * 8;
	}
	return next == IPPROTO_TCP ? (long)off : -1;
}

/* Offset of the TCP header in a saved SYN; -1 when malformed. */
static long tcp_offset(const uint8_t *p, size_t len)
{
	size_t ihl;

	if (len < 1)
		return -1;
	switch (p[0] >> 4) {
	case 4:
		if (len < 20)
			return -1;
		ihl = (size_t)(p[0] & 0x0f) * 4;
		if (ihl < 20 || p[9] != IPPROTO_TCP)
			return -1;
		return (long)ihl;
	case 6:
		return ipv6_tcp_offset(p, len);
	default:
		return -1;
	}
}

/* The MSS option among TCP options opt[0..len); -1 if absent. */
static int tcp_options_mss(const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = opt[i];

		if (kind == TCPOPT_EOL)
			return -1;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len || opt[i + 1] < 2 || i + opt[i + 1] > len)
			return -1;
		if (kind == TCPOPT_MAXSEG && opt[i + 1] == TCPOLEN_MAXSEG)
			return opt[i + 2] << 8 | opt[i + 3];
		i += opt[i + 1];
	}
	return -1;
}

int mps_neg_syn_mss(const uint8_t *syn, size_t len)
{
	long off = tcp_offset(syn, len);
	size_t doff;

	if (off < 0 || len < (size_t)off + 20)
		return -1;
	doff = (size_t)(syn[off + 12] >> 4) * 4;
	if (doff < 20 || len < (size_t)off + doff)
		return -1;
	return tcp_options_mss(syn + off + 20, doff - 20);
}

bool mps_neg_server_peer_maybe_shim(int fd)
{
	uint8_t syn[512];
	socklen_t len = sizeof(syn);

	if (mps_libc()->getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, syn, &len) <
	    0)
		return false;
	/* the kernel reports an empty SYN when it kept none (SYN cookie) */
	if (len == 0)
		return true;
	if (mps_neg_syn_mss(syn, len) == MPS_NEG_CLIENT_MSS)
		return true;
	mps_mib_inc(MPS_MIB_PLAIN_SERVER);
	return false;
}

uint64_t mps_neg_fallback_us(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	uint64_t us = 1000000;

	memset(&ti, 0, sizeof(ti));
	if (mps_libc()->getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    (uint64_t)ti.tcpi_rtt * 3 > us)
		us = (uint64_t)ti.tcpi_rtt * 3;
	return us;
}

void mps_neg_prefork(void)
{
	pthread_mutex_lock(&cache_lock);
}

void mps_neg_parent(void)
{
	pthread_mutex_unlock(&cache_lock);
}

void mps_neg_child(void)
{
	pthread_mutex_init(&cache_lock, NULL);
}
