/*
 * joinlisten.c: join listeners (see joinlisten.h).
 *
 * Decisions:
 * - Joins never reach the program.  Each process that serves MPTCP
 *   connections opens, when its first one needs it, one listener per
 *   family on the wildcard address and an ephemeral port (IPv6 with
 *   IPV6_V6ONLY off, so it also takes IPv4), owned by its loop thread:
 *   close-on-exec, recorded as loop-owned so a fork child closes it, not
 *   in the program's descriptor table.  Its connections announce it with
 *   ADD_ADDR (address and port).  In a prefork server each worker has its
 *   own listener and announces its own port, so a join reaches the
 *   process that owns its connection; the program's own listening socket
 *   only ever gets new connections.
 * - Accepting never blocks: the listener is non-blocking, and each
 *   accepted join waits in a small table, with its own read watcher and a
 *   MPS_JL_FIRST_TIMEOUT timer, until its first record is complete.  Too
 *   slow, not a join, or the table full: closed and counted.  A token no
 *   live connection owns, or a join over the process's cap of half-open
 *   joins (MPS_JL_MAX_HALF_OPEN): MP_TCPRST (mps_join_refusal()) then
 *   close.
 * - Bytes read before the first record is complete are kept and handed
 *   over with the descriptor, so the core sees the SYN record intact.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "fdtab.h"
#include "joinlisten.h"
#include "libc.h"
#include "log.h"
#include "mib.h"

#define JL_FIRST_MAX 256 /* bytes kept while waiting: the SYN is 16 */

/* A listener; the loop thread's. */
struct jl_listener {
	int fd; /* -1: not open */
	int port;
	ev_io w;
};

/* An accepted join waiting for its first record; the loop thread's. */
struct jl_pending {
	int fd; /* -1: slot free */
	uint8_t buf[JL_FIRST_MAX];
	size_t len;
	ev_io r;
	ev_timer t;
};

static struct ev_loop *jl_loop;
static mps_jl_deliver_fn jl_deliver;
static struct jl_listener listeners[2] = {{.fd = -1}, {.fd = -1}};
static struct jl_pending pending[MPS_JL_MAX_PENDING];

static void pending_free(struct jl_pending *p, bool close_fd)
{
	ev_io_stop(jl_loop, &p->r);
	ev_timer_stop(jl_loop, &p->t);
	if (close_fd)
		mps_fdtab_close(p->fd);
	p->fd = -1;
	p->len = 0;
}

/* A join no connection takes: say so in-band, close. */
static void pending_refuse(struct jl_pending *p)
{
	uint8_t rst[64];
	int n = mps_join_refusal(rst, sizeof(rst));

	if (n > 0)
		mps_libc()->send(p->fd, rst, (size_t)n, MSG_NOSIGNAL);
	pending_free(p, true);
}

static void pending_read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct jl_pending *p = w->data;
	uint32_t token;
	ssize_t n;
	int r;

	(void)l;
	(void)revents;
	n = mps_libc()->read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mps_mib_inc(MPS_MIB_JOIN_DROPPED);
		pending_free(p, true);
		return;
	}
	p->len += (size_t)n;
	r = mps_join_parse_first(p->buf, p->len, &token);
	if (r == MPS_WIRE_NEED_MORE && p->len < sizeof(p->buf))
		return;
	if (r != 0) {
		mps_info("join-dropped", "fd=%d why=not-a-join", p->fd);
		mps_mib_inc(MPS_MIB_JOIN_DROPPED);
		pending_free(p, true);
		return;
	}
	if (mps_conn_half_open_joins() >= MPS_JL_MAX_HALF_OPEN) {
		/* Counted, not logged: a flood must not flood the log. */
		mps_mib_inc(MPS_MIB_JOIN_REFUSED_HALF_OPEN);
		pending_refuse(p);
		return;
	}
	/* the deliverer counts why it refused (unknown token, caps) */
	if (jl_deliver(token, p->fd, p->buf, p->len) < 0) {
		mps_info("join-refused", "token=%08x", token);
		pending_refuse(p);
		return;
	}
	pending_free(p, false);
}

static void pending_timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct jl_pending *p = w->data;

	(void)l;
	(void)revents;
	mps_info("join-dropped", "fd=%d why=timeout", p->fd);
	mps_mib_inc(MPS_MIB_JOIN_DROPPED);
	pending_free(p, true);
}

static struct jl_pending *pending_slot(void)
{
	int i;

	for (i = 0; i < MPS_JL_MAX_PENDING; i++)
		if (pending[i].fd < 0)
			return &pending[i];
	return NULL;
}

/* Accept one join; false when the queue is empty or accept failed. */
static bool accept_one(struct jl_listener *ls)
{
	struct jl_pending *p;
	int fd;

	mps_fdtab_lock();
	fd = mps_libc()->accept4(
		ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		fd = mps_fdtab_own_locked(fd);
	mps_fdtab_unlock();
	if (fd < 0)
		return false;
	p = pending_slot();
	if (!p) {
		mps_mib_inc(MPS_MIB_JOIN_DROPPED);
		mps_fdtab_close(fd);
		return true;
	}
	p->fd = fd;
	p->len = 0;
	ev_io_init(&p->r, pending_read_cb, fd, EV_READ);
	p->r.data = p;
	ev_timer_init(&p->t, pending_timeout_cb, MPS_JL_FIRST_TIMEOUT, 0.);
	p->t.data = p;
	ev_io_start(jl_loop, &p->r);
	ev_timer_start(jl_loop, &p->t);
	return true;
}

static void listener_cb(struct ev_loop *l, ev_io *w, int revents)
{
	int i;

	(void)l;
	(void)revents;
	for (i = 0; i < 16 && accept_one(w->data); i++)
		;
}

void mps_jl_init(struct ev_loop *loop, mps_jl_deliver_fn deliver)
{
	int i;

	jl_loop = loop;
	jl_deliver = deliver;
	for (i = 0; i < MPS_JL_MAX_PENDING; i++)
		pending[i].fd = -1;
}

/* Bind fd to the wildcard of family on an ephemeral port, listen, and
 * return the port, or -errno. */
static int listen_any(int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int off = 0;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	len = family == AF_INET ? sizeof(struct sockaddr_in)
				: sizeof(struct sockaddr_in6);
	if (family == AF_INET6)
		mps_libc()->setsockopt(
			fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    mps_libc()->listen(fd, SOMAXCONN) < 0 ||
	    mps_libc()->getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return family == AF_INET
		       ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int mps_jl_port(int family)
{
	struct jl_listener *ls = &listeners[family == AF_INET6];
	int fd, port;

	if (ls->fd >= 0)
		return ls->port;
	fd = mps_fdtab_own_socket(family);
	if (fd < 0)
		return fd;
	port = listen_any(fd, family);
	if (port < 0) {
		mps_fdtab_close(fd);
		return port;
	}
	ls->fd = fd;
	ls->port = port;
	ev_io_init(&ls->w, listener_cb, fd, EV_READ);
	ls->w.data = ls;
	ev_io_start(jl_loop, &ls->w);
	mps_info("join-listener", "family=%d port=%d", family, port);
	return port;
}

void mps_jl_child(void)
{
	int i;

	for (i = 0; i < 2; i++)
		listeners[i].fd = -1;
	for (i = 0; i < MPS_JL_MAX_PENDING; i++)
		pending[i].fd = -1;
	jl_loop = NULL;
}
