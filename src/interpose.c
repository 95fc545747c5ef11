/*
 * interpose.c: the libc functions that libmptcpshim.so exports.
 *
 * Each wrapper follows POSIX exactly: -1 and errno on failure, errno left
 * alone on success.  A descriptor that is not ours costs one array load
 * and no lock (mps_fdtab_get()).
 *
 * Decisions:
 * - The program's descriptor, client side.  A blocking connect() runs the
 *   real connect() in the calling thread; on success the signal decides:
 *   a plain server leaves the program its kernel socket, untouched; a
 *   server running the library gets the kernel socket moved to a loop-
 *   owned descriptor (F_DUPFD_CLOEXEC) and a socketpair end dup3()ed onto
 *   the program's number, with its O_NONBLOCK and FD_CLOEXEC as they were.
 * - A non-blocking connect() to a destination not cached as plain swaps
 *   the socketpair in before returning EINPROGRESS, so before the program
 *   can register the descriptor with epoll.  To keep "writable means the
 *   connect finished, SO_ERROR says how", the program's end gets a tiny
 *   SO_SNDBUF and filler bytes until it is full; the loop discards exactly
 *   that many, restores the buffer, and stores the outcome first.  A failed
 *   connect shows its error once, in SO_ERROR or the next read or write.
 * - epoll registrations the program made before connect() (nginx does)
 *   are tracked (epoll_ctl is interposed for candidate sockets) and moved
 *   to the socketpair end at the swap, with the same events and data.  A
 *   socket in more than MPS_SOCK_WATCH_MAX epoll sets stays plain.  The
 *   records are not updated when an epoll descriptor is closed.
 * - Server side: accept() and accept4() on a prepared listener classify
 *   by the saved SYN (none saved, a SYN cookie: converted, see
 *   negotiate.c) and never wait for data; a client running the
 *   library gets a socketpair swapped in before the number is returned,
 *   and the loop's server core falls back to plain by itself if the
 *   client's first record does not come.
 * - Emulated for converted descriptors: getsockname, getpeername (as the
 *   kernel socket gave them, v4-mapped kept), SO_ERROR, SO_DOMAIN,
 *   SO_TYPE, SO_PROTOCOL, SO_ACCEPTCONN, SO_LINGER (recorded; zero timeout
 *   makes close() reset the peer); TCP, IP and IPv6 options and
 *   SO_KEEPALIVE go to the kernel socket of subflow 0; other socket
 *   options (SO_RCVBUF, SO_SNDBUF, timeouts) apply to the socketpair end.
 *   End of stream while the connection has an error reads as -1 with it.
 *   recvfrom/recvmsg fill no address and, when the caller passed an
 *   address buffer, report its length as 0, as Linux TCP does for a
 *   connected socket (tcp_recvmsg() leaves the name alone and the socket
 *   layer copies out the length 0 it started with);
 *   sendto/sendmsg ignore an address and ancillary data, as TCP does.
 *   poll, epoll, sendfile and splice work on the socketpair natively;
 *   shutdown too, once it noted a shut sending side for direct sends.
 * - Writes (write, writev, send, sendto, sendmsg) first offer their bytes
 *   to the loop's direct send (loop.h), which puts what the connection's
 *   core takes into records on the subflows from the program's own
 *   thread; the rest goes into the socketpair as before, which keeps a
 *   full send buffer's blocking, EAGAIN and back-pressure as they were.
 *   Flags other than MSG_NOSIGNAL and MSG_DONTWAIT (MSG_MORE, MSG_OOB)
 *   always take the socketpair.
 * - Several numbers of one socket (dup, dup2, dup3, F_DUPFD) share its
 *   state; close() forgets one number, and the loop sees end of stream
 *   when the last copy of the program's end is closed.
 * - fork: the child's one thread must find free every lock it can take,
 *   although the parent's loop thread may hold any of them at fork().
 *   at_prefork() takes the loop's queue lock, then the descriptor
 *   table's, then the negotiate cache's (always this order; nothing takes
 *   them in another), at_parent() lets them go, at_child() makes them
 *   anew.  The rest: the token table is the loop's, and the child's loop
 *   makes a new one (its parent's lock is never taken there); the log
 *   takes no lock (one write() a line); libcrypto's locks are covered by
 *   crypto.c's own handler, which keeps our threads out of libcrypto
 *   across fork() (OpenSSL 3.0 does not reset its locks in a child, and
 *   a key draw or the first fetch in the parent's loop left the child's
 *   RAND_bytes() and the program's own hashing blocked for good); a
 *   pthread_once in progress is restarted in the child by glibc.  The
 *   child closes every loop-owned descriptor and starts its own loop on
 *   demand.  Connections inherited from the parent keep working in the
 *   child while the parent's loop serves them.
 * - exec: loop-owned descriptors are close-on-exec.  A converted
 *   descriptor that survives exec is a bare socketpair end: it works while
 *   the process that forked keeps running its loop, and breaks (end of
 *   stream, EPIPE) when the process image that served it is gone; in the
 *   new image it is seen as AF_UNIX.
 * - Threads: the table and the loop's queue are locked; nothing else is
 *   shared.  Wrappers of unconverted descriptors take no lock.
 */
#undef _FORTIFY_SOURCE /* the fortified inline read() would clash */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, dup3, close_range */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config.h"
#include "fdtab.h"
#include "libc.h"
#include "log.h"
#include "loop.h"
#include "negotiate.h"

#define MPS_EXPORT __attribute__((visibility("default")))

#define MPS_FILLER_CHUNK 4096
#define MPS_SEND_IOV_MAX 64 /* longer writes skip the direct send */

/* The fortified entry points have no prototype without _FORTIFY_SOURCE. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd,
		       void *buf,
		       size_t len,
		       size_t buflen,
		       int flags,
		       struct sockaddr *addr,
		       socklen_t *alen);
int fcntl64(int fd, int cmd, ...);

static atomic_bool tracking; /* socket() records TCP sockets */

/* ---- helpers ---- */

/* The state of fd when it is a converted socket, else NULL. */
static struct mps_sock *converted(int fd)
{
	struct mps_sock *s = mps_fdtab_get(fd);

	if (s && atomic_load_explicit(&s->kind, memory_order_acquire) ==
			 MPS_SOCK_CONVERTED)
		return s;
	return NULL;
}

/* Forget fd and tell the loop when it was the last number of a socket
 * whose connect is still running. */
static void forget(int fd)
{
	struct mps_sock *pinned = mps_fdtab_drop(fd);

	if (!pinned)
		return;
	if (atomic_load(&pinned->connecting))
		mps_loop_closed(pinned);
	else
		mps_sock_put(pinned);
}

/* Report an error pending on s once: returns it and clears it, or 0. */
static int take_error(struct mps_sock *s)
{
	if (atomic_load_explicit(&s->so_error, memory_order_relaxed) == 0)
		return 0;
	return atomic_exchange(&s->so_error, 0);
}

/* A read's result, with end of stream turned into the connection's
 * error when it has one. */
static ssize_t read_result(struct mps_sock *s, ssize_t n, size_t len)
{
	int err;

	if (n != 0 || len == 0)
		return n;
	err = atomic_load(&s->conn_error);
	if (!err)
		return 0;
	errno = err;
	return -1;
}

/* Copy a stored address out as getsockname() would. */
static void copy_addr(const struct sockaddr_storage *from,
		      socklen_t flen,
		      struct sockaddr *to,
		      socklen_t *tlen)
{
	if (!to || !tlen)
		return;
	memcpy(to, from, *tlen < flen ? *tlen : flen);
	*tlen = flen;
}

/* ---- epoll registrations made before connect() ---- */

/* Record a successful epoll_ctl() on candidate s; table lock held. */
static void
watch_note(struct mps_sock *s, int epfd, int op, const struct epoll_event *ev)
{
	int i;

	if (s->nwatch < 0)
		return;
	for (i = 0; i < s->nwatch && s->watch[i].epfd != epfd; i++)
		;
	if (op == EPOLL_CTL_DEL) {
		if (i < s->nwatch)
			s->watch[i] = s->watch[--s->nwatch];
		return;
	}
	if (i == s->nwatch) {
		if (i == MPS_SOCK_WATCH_MAX || op != EPOLL_CTL_ADD) {
			s->nwatch = -1; /* lost track: never convert */
			return;
		}
		s->nwatch++;
	}
	s->watch[i].epfd = epfd;
	s->watch[i].ev = *ev;
}

MPS_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct mps_sock *s = mps_fdtab_get(fd);
	int r;

	if (!s || atomic_load(&s->kind) != MPS_SOCK_CANDIDATE)
		return mps_libc()->epoll_ctl(epfd, op, fd, ev);
	mps_fdtab_lock();
	r = mps_libc()->epoll_ctl(epfd, op, fd, ev);
	if (r == 0)
		watch_note(s, epfd, op, ev);
	mps_fdtab_unlock();
	return r;
}

/*
 * Move s's epoll registrations from the kernel socket to the socketpair
 * end about to take number fd: the first half, before the dup3() (the
 * registration is keyed by file and number, so it must go while the
 * number still names the kernel socket).  Table lock held.
 */
static void watch_detach(struct mps_sock *s, int fd)
{
	int i;

	for (i = 0; i < s->nwatch; i++)
		mps_libc()->epoll_ctl(
			s->watch[i].epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* The second half, after the dup3(). */
static void watch_attach(struct mps_sock *s, int fd)
{
	int i;

	for (i = 0; i < s->nwatch; i++)
		mps_libc()->epoll_ctl(
			s->watch[i].epfd, EPOLL_CTL_ADD, fd, &s->watch[i].ev);
	s->nwatch = 0;
}

/* ---- conversion ---- */

/*
 * Swap a socketpair in for the kernel socket at fd.  On success returns
 * 0, the loop's end in *afd and the kernel socket in *kfd (both owned by
 * the loop, close-on-exec, non-blocking), and fd names the program's end
 * with the file flags and FD_CLOEXEC it had.  On failure returns -errno
 * and fd is unchanged.  Caller's thread.
 */
static int swap_in(int fd, struct mps_sock *s, int *afd, int *kfd)
{
	const struct mps_libc *c = mps_libc();
	int fl = c->fcntl(fd, F_GETFL), fdfl = c->fcntl(fd, F_GETFD);
	int sp[2], k, err = 0;

	if (fl < 0 || fdfl < 0)
		return -errno;
	mps_fdtab_lock();
	k = c->fcntl(fd, F_DUPFD_CLOEXEC, mps_fdtab_floor());
	if (k < 0)
		k = c->fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (k < 0) {
		err = -errno;
		goto out_unlock;
	}
	if (c->socketpair(AF_UNIX,
			  SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			  0,
			  sp) < 0) {
		err = -errno;
		c->close(k);
		goto out_unlock;
	}
	watch_detach(s, fd);
	if (c->dup3(sp[0], fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		err = -errno;
		c->close(k);
		c->close(sp[1]);
	}
	watch_attach(s, fd);
	c->close(sp[0]);
	if (err == 0) {
		k = mps_fdtab_own_locked(k);
		sp[1] = mps_fdtab_own_locked(sp[1]);
	}
out_unlock:
	mps_fdtab_unlock();
	if (err)
		return err;
	c->fcntl(fd, F_SETFL, fl);
	c->fcntl(k, F_SETFL, fl | O_NONBLOCK);
	*afd = sp[1];
	*kfd = k;
	return 0;
}

/* Undo swap_in(): the kernel socket goes back to fd. */
static void swap_out(int fd, int afd, int kfd)
{
	const struct mps_libc *c = mps_libc();
	int fl = c->fcntl(fd, F_GETFL), fdfl = c->fcntl(fd, F_GETFD);

	c->dup3(kfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	c->fcntl(fd, F_SETFL, fl);
	mps_fdtab_close(afd);
	mps_fdtab_close(kfd);
}

/* Record the kernel socket's addresses in s (peer given for a connect
 * still running). */
static void record_addrs(struct mps_sock *s,
			 int kfd,
			 const struct sockaddr *peer,
			 socklen_t plen)
{
	const struct mps_libc *c = mps_libc();

	s->local_len = sizeof(s->local);
	if (c->getsockname(kfd, (struct sockaddr *)&s->local, &s->local_len) <
	    0)
		s->local_len = 0;
	if (peer && plen <= sizeof(s->peer)) {
		memcpy(&s->peer, peer, plen);
		s->peer_len = plen;
		return;
	}
	s->peer_len = sizeof(s->peer);
	if (c->getpeername(kfd, (struct sockaddr *)&s->peer, &s->peer_len) < 0)
		s->peer_len = 0;
}

/*
 * Convert the connected socket fd (state s, already in the table) and
 * hand it to the loop as kind.  Returns 0 or -errno (fd unchanged).
 */
static int
convert_connected(int fd, struct mps_sock *s, enum mps_loop_kind kind)
{
	struct mps_loop_req req = {.kind = kind, .sock = s, .pfd = -1};
	int err;

	err = swap_in(fd, s, &req.afd, &req.kfd);
	if (err < 0)
		return err;
	record_addrs(s, req.kfd, NULL, 0);
	s->kfd = req.kfd;
	atomic_store_explicit(
		&s->kind, MPS_SOCK_CONVERTED, memory_order_release);
	mps_sock_get(s);
	err = mps_loop_submit(&req);
	if (err < 0) {
		atomic_store(&s->kind, MPS_SOCK_CANDIDATE);
		s->kfd = -1;
		mps_sock_put(s);
		swap_out(fd, req.afd, req.kfd);
	}
	return err;
}

/*
 * Fill the program's end so that it is not writable until the loop
 * drains it.  Returns the number of filler bytes written.
 */
static size_t fill(int fd, struct mps_sock *s)
{
	static const char zeros[MPS_FILLER_CHUNK];
	const struct mps_libc *c = mps_libc();
	socklen_t len = sizeof(int);
	int tiny = 1, cur = 0;
	size_t total = 0;
	ssize_t n;

	if (c->getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) == 0)
		s->sndbuf_saved = cur;
	c->setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny));
	while ((n = c->send(fd,
			    zeros,
			    sizeof(zeros),
			    MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
		total += (size_t)n;
	return total;
}

/*
 * The non-blocking connect of fd is running: swap the socketpair in and
 * let the loop finish it.  Always returns -1 with errno EINPROGRESS (on
 * failure to convert, the program keeps the plain connecting socket).
 */
static int connect_async(int fd,
			 struct mps_sock *s,
			 const struct sockaddr *addr,
			 socklen_t len)
{
	const struct mps_libc *c = mps_libc();
	struct mps_loop_req req = {.kind = MPS_LOOP_CONNECTING, .sock = s};
	int err;

	if (swap_in(fd, s, &req.afd, &req.kfd) < 0)
		goto out_plain;
	record_addrs(s, req.kfd, addr, len);
	req.filler = fill(fd, s);
	req.sndbuf = s->sndbuf_saved / 2;
	mps_fdtab_lock();
	req.pfd = mps_fdtab_own_locked(c->fcntl(fd, F_DUPFD_CLOEXEC, 0));
	mps_fdtab_unlock();
	memcpy(&req.dst, addr, len);
	req.dst_len = len;
	s->kfd = req.kfd;
	atomic_store(&s->connecting, true);
	atomic_store_explicit(
		&s->kind, MPS_SOCK_CONVERTED, memory_order_release);
	mps_sock_get(s);
	err = req.pfd < 0 ? -EMFILE : mps_loop_submit(&req);
	if (err < 0) {
		mps_sock_put(s);
		mps_fdtab_close(req.pfd);
		swap_out(fd, req.afd, req.kfd);
		goto out_plain;
	}
	mps_debug(
		"connect", "fd=%d kfd=%d filler=%zu", fd, req.kfd, req.filler);
	errno = EINPROGRESS;
	return -1;
out_plain:
	forget(fd);
	errno = EINPROGRESS;
	return -1;
}

/* A connect() of the candidate fd succeeded: decide and convert. */
static void connect_done(int fd,
			 struct mps_sock *s,
			 const struct sockaddr *addr,
			 socklen_t len)
{
	int err;

	if (!mps_neg_client_peer_is_shim(fd)) {
		mps_neg_cache_plain(addr, len);
		mps_debug("connect", "fd=%d mode=plain", fd);
		forget(fd);
		return;
	}
	err = convert_connected(fd, s, MPS_LOOP_CLIENT);
	if (err < 0) {
		mps_warn("convert-failed", "fd=%d err=%d", fd, -err);
		forget(fd);
		return;
	}
	mps_debug("connect", "fd=%d mode=mptcp", fd);
}

static bool candidate(int fd, struct mps_sock **sp)
{
	struct mps_sock *s = mps_fdtab_get(fd);

	*sp = s;
	return s && atomic_load(&s->kind) == MPS_SOCK_CANDIDATE;
}

/* connect() of a tracked TCP socket. */
static int shim_connect(int fd,
			struct mps_sock *s,
			const struct sockaddr *addr,
			socklen_t len)
{
	const struct mps_libc *c = mps_libc();
	int fl, saved;

	if (!addr || s->user_mss || s->nfds != 1 || s->nwatch < 0 ||
	    !mps_neg_should_convert(addr, len))
		goto out_plain;
	fl = c->fcntl(fd, F_GETFL);
	if (fl < 0 || mps_neg_client_prepare(fd) < 0)
		goto out_plain;
	if (c->connect(fd, addr, len) < 0) {
		if (errno == EINPROGRESS && (fl & O_NONBLOCK) &&
		    len <= sizeof(struct sockaddr_storage))
			return connect_async(fd, s, addr, len);
		saved = errno;
		forget(fd);
		errno = saved;
		return -1;
	}
	saved = errno;
	connect_done(fd, s, addr, len);
	errno = saved;
	return 0;
out_plain:
	saved = errno;
	forget(fd);
	errno = saved;
	return c->connect(fd, addr, len);
}

/* A connection accepted on a prepared listener of family. */
static void accepted(int fd, int family)
{
	struct mps_sock *s;
	int err;

	if (!mps_neg_server_peer_maybe_shim(fd))
		return;
	s = mps_sock_new(MPS_SOCK_CANDIDATE, family);
	if (!s || mps_fdtab_set(fd, s) < 0)
		return;
	err = convert_connected(fd, s, MPS_LOOP_SERVER);
	if (err < 0) {
		mps_warn("convert-failed", "fd=%d err=%d", fd, -err);
		forget(fd);
		return;
	}
	mps_debug("accept", "fd=%d mode=mptcp", fd);
}

/* ---- socket, connect, listen, accept ---- */

static bool tcp_socket(int domain, int type, int protocol)
{
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	return (domain == AF_INET || domain == AF_INET6) &&
	       type == SOCK_STREAM &&
	       (protocol == 0 || protocol == IPPROTO_TCP);
}

MPS_EXPORT int socket(int domain, int type, int protocol)
{
	int fd = mps_libc()->socket(domain, type, protocol);
	int saved = errno;
	struct mps_sock *s;

	if (fd < 0 || !atomic_load_explicit(&tracking, memory_order_relaxed))
		return fd;
	if (mps_fdtab_get(fd))
		forget(fd); /* a stale slot: the number was closed unseen */
	if (!tcp_socket(domain, type, protocol))
		return fd;
	s = mps_sock_new(MPS_SOCK_CANDIDATE, domain);
	if (s)
		mps_fdtab_set(fd, s);
	errno = saved;
	return fd;
}

/*
 * connect() again on a converted socket, as TCP answers it: the pending
 * error of a failed connect, EALREADY while it runs, EISCONN after.
 */
static int connect_again(struct mps_sock *s)
{
	int err = take_error(s);

	if (!err && atomic_load(&s->connecting))
		err = EALREADY;
	else if (!err && atomic_load(&s->failed))
		err = atomic_load(&s->fail_error);
	else if (!err)
		err = EISCONN;
	errno = err;
	return -1;
}

MPS_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct mps_sock *s;

	if (candidate(fd, &s))
		return shim_connect(fd, s, addr, len);
	if (s && atomic_load(&s->kind) == MPS_SOCK_CONVERTED)
		return connect_again(s);
	return mps_libc()->connect(fd, addr, len);
}

MPS_EXPORT int listen(int fd, int backlog)
{
	struct mps_sock *s;

	if (candidate(fd, &s) && !s->user_mss &&
	    mps_config.convert != MPS_CONVERT_NONE &&
	    mps_neg_listener_prepare(fd) == 0) {
		atomic_store(&s->kind, MPS_SOCK_LISTENER);
		mps_debug("listen", "fd=%d", fd);
	}
	return mps_libc()->listen(fd, backlog);
}

static int shim_accept(
	int lfd, struct sockaddr *addr, socklen_t *alen, int flags, bool four)
{
	struct mps_sock *s = mps_fdtab_get(lfd);
	const struct mps_libc *c = mps_libc();
	int fd, saved;

	fd = four ? c->accept4(lfd, addr, alen, flags)
		  : c->accept(lfd, addr, alen);
	if (fd < 0)
		return fd;
	saved = errno;
	if (mps_fdtab_get(fd))
		forget(fd);
	if (s && atomic_load(&s->kind) == MPS_SOCK_LISTENER)
		accepted(fd, s->family);
	errno = saved;
	return fd;
}

MPS_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	return shim_accept(fd, addr, alen, 0, false);
}

MPS_EXPORT int
accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	return shim_accept(fd, addr, alen, flags, true);
}

/* ---- descriptor numbers ---- */

MPS_EXPORT int close(int fd)
{
	int saved = errno;

	if (mps_fdtab_get(fd)) {
		forget(fd);
		errno = saved;
	}
	return mps_libc()->close(fd);
}

/* Forget every tracked number in [first, last]. */
static void forget_range(unsigned int first, unsigned int last)
{
	int high = mps_fdtab_high(), saved = errno;
	unsigned int fd;

	if (high < 0)
		return;
	if (last > (unsigned int)high)
		last = (unsigned int)high;
	for (fd = first; fd <= last; fd++)
		if (mps_fdtab_get((int)fd))
			forget((int)fd);
	errno = saved;
}

MPS_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!mps_libc()->close_range) {
		errno = ENOSYS;
		return -1;
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		forget_range(first, last);
	return mps_libc()->close_range(first, last, flags);
}

MPS_EXPORT void closefrom(int lowfd)
{
	if (lowfd >= 0)
		forget_range((unsigned int)lowfd, ~0u);
	if (mps_libc()->closefrom)
		mps_libc()->closefrom(lowfd);
}

/* After oldfd was duplicated to newfd: keep the table right. */
static void duplicated(int oldfd, int newfd)
{
	if (newfd >= 0 && (mps_fdtab_get(oldfd) || mps_fdtab_get(newfd)))
		mps_fdtab_dup(oldfd, newfd);
}

MPS_EXPORT int dup(int fd)
{
	int nfd = mps_libc()->dup(fd);

	duplicated(fd, nfd);
	return nfd;
}

MPS_EXPORT int dup2(int oldfd, int newfd)
{
	int r = mps_libc()->dup2(oldfd, newfd);

	if (oldfd != newfd)
		duplicated(oldfd, r);
	return r;
}

MPS_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	int r = mps_libc()->dup3(oldfd, newfd, flags);

	duplicated(oldfd, r);
	return r;
}

static int
shim_fcntl(int (*real)(int, int, ...), int fd, int cmd, unsigned long arg)
{
	int r;

	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	r = real(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		duplicated(fd, r);
	return r;
}

/* The argument is read as unsigned long, which carries both the int and
 * the pointer arguments of every command on the ABIs we build for. */
MPS_EXPORT int fcntl(int fd, int cmd, ...)
{
	unsigned long arg;
	va_list ap;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	return shim_fcntl(mps_libc()->fcntl, fd, cmd, arg);
}

MPS_EXPORT int fcntl64(int fd, int cmd, ...)
{
	unsigned long arg;
	va_list ap;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	return shim_fcntl(mps_libc()->fcntl64, fd, cmd, arg);
}

/* ---- socket options and addresses ---- */

/* Store an int option value as getsockopt() would. */
static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len || *len < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(val, &v, sizeof(int));
	*len = sizeof(int);
	return 0;
}

/* getsockopt() or setsockopt() on the kernel socket of subflow 0. */
static int
forward_get(struct mps_sock *s, int level, int name, void *val, socklen_t *len)
{
	int r;

	pthread_mutex_lock(&s->fwd_lock);
	if (s->kfd < 0) {
		errno = ENOTCONN;
		r = -1;
	} else {
		r = mps_libc()->getsockopt(s->kfd, level, name, val, len);
	}
	pthread_mutex_unlock(&s->fwd_lock);
	return r;
}

static int forward_set(
	struct mps_sock *s, int level, int name, const void *val, socklen_t len)
{
	int r = 0;

	pthread_mutex_lock(&s->fwd_lock);
	if (s->kfd >= 0)
		r = mps_libc()->setsockopt(s->kfd, level, name, val, len);
	pthread_mutex_unlock(&s->fwd_lock);
	return r;
}

static bool forwarded_level(int level)
{
	return level == IPPROTO_TCP || level == IPPROTO_IP ||
	       level == IPPROTO_IPV6;
}

static int
sol_socket_get(int fd, struct mps_sock *s, int name, void *val, socklen_t *len)
{
	switch (name) {
	case SO_ERROR:
		return put_int(val, len, take_error(s));
	case SO_DOMAIN:
		return put_int(val, len, s->family);
	case SO_TYPE:
		return put_int(val, len, SOCK_STREAM);
	case SO_PROTOCOL:
		return put_int(val, len, IPPROTO_TCP);
	case SO_ACCEPTCONN:
		return put_int(val, len, 0);
	case SO_KEEPALIVE:
		return forward_get(s, SOL_SOCKET, name, val, len);
	case SO_LINGER:
		if (!val || !len || *len < sizeof(struct linger)) {
			errno = EINVAL;
			return -1;
		}
		pthread_mutex_lock(&s->fwd_lock);
		memcpy(val, &s->linger, sizeof(struct linger));
		pthread_mutex_unlock(&s->fwd_lock);
		*len = sizeof(struct linger);
		return 0;
	case SO_SNDBUF:
		if (atomic_load(&s->connecting))
			return put_int(val, len, s->sndbuf_saved);
		break;
	}
	return mps_libc()->getsockopt(fd, SOL_SOCKET, name, val, len);
}

MPS_EXPORT int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->getsockopt(fd, level, name, val, len);
	if (level == SOL_SOCKET)
		return sol_socket_get(fd, s, name, val, len);
	if (level == IPPROTO_TCP && name == TCP_NODELAY &&
	    atomic_load(&s->nodelay) != 0)
		return put_int(val, len, atomic_load(&s->nodelay) - 1);
	if (forwarded_level(level))
		return forward_get(s, level, name, val, len);
	return mps_libc()->getsockopt(fd, level, name, val, len);
}

static int set_linger(struct mps_sock *s, const void *val, socklen_t len)
{
	struct linger lg;

	if (!val || len < sizeof(lg)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&lg, val, sizeof(lg));
	pthread_mutex_lock(&s->fwd_lock);
	s->linger = lg;
	pthread_mutex_unlock(&s->fwd_lock);
	atomic_store(&s->linger_zero, lg.l_onoff && lg.l_linger == 0);
	return 0;
}

static int sol_socket_set(
	int fd, struct mps_sock *s, int name, const void *val, socklen_t len)
{
	int v;

	switch (name) {
	case SO_LINGER:
		return set_linger(s, val, len);
	case SO_KEEPALIVE:
		return forward_set(s, SOL_SOCKET, name, val, len);
	case SO_SNDBUF:
		if (!atomic_load(&s->connecting) || !val || len < sizeof(int))
			break;
		memcpy(&v, val, sizeof(v));
		atomic_store(&s->want_sndbuf, v > 0 ? v : 1);
		s->sndbuf_saved = 2 * (v > 0 ? v : 1);
		return 0;
	}
	return mps_libc()->setsockopt(fd, SOL_SOCKET, name, val, len);
}

/*
 * TCP_NODELAY on a converted socket.  Subflows that carry records keep
 * Nagle off whatever the program asks (pathmgr.h): our own signalling
 * records are short segments that Nagle would hold the program's next
 * write behind.  The wish is kept for getsockopt(), and turning Nagle
 * off is still forwarded, for a connection that turned out plain.
 */
static int set_nodelay(struct mps_sock *s, const void *val, socklen_t len)
{
	int v;

	if (!val || len < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&v, val, sizeof(v));
	atomic_store(&s->nodelay, v ? 2 : 1);
	if (v)
		return forward_set(s, IPPROTO_TCP, TCP_NODELAY, val, len);
	return 0;
}

MPS_EXPORT int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct mps_sock *s = mps_fdtab_get(fd);
	enum mps_sock_kind kind;

	if (!s)
		return mps_libc()->setsockopt(fd, level, name, val, len);
	kind = atomic_load(&s->kind);
	if (kind != MPS_SOCK_CONVERTED) {
		if (level == IPPROTO_TCP && name == TCP_MAXSEG)
			s->user_mss = true;
		return mps_libc()->setsockopt(fd, level, name, val, len);
	}
	if (level == SOL_SOCKET)
		return sol_socket_set(fd, s, name, val, len);
	if (level == IPPROTO_TCP && name == TCP_NODELAY)
		return set_nodelay(s, val, len);
	if (forwarded_level(level))
		return forward_set(s, level, name, val, len);
	return mps_libc()->setsockopt(fd, level, name, val, len);
}

MPS_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct mps_sock *s = converted(fd);

	if (!s || s->local_len == 0)
		return mps_libc()->getsockname(fd, addr, len);
	copy_addr(&s->local, s->local_len, addr, len);
	return 0;
}

MPS_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct mps_sock *s = converted(fd);

	if (!s || s->peer_len == 0)
		return mps_libc()->getpeername(fd, addr, len);
	if (atomic_load(&s->connecting) || atomic_load(&s->failed)) {
		errno = ENOTCONN;
		return -1;
	}
	copy_addr(&s->peer, s->peer_len, addr, len);
	return 0;
}

/* ---- reading ---- */

/* Before a read or write of a converted socket: a pending error? */
static bool pending(struct mps_sock *s)
{
	int err = take_error(s);

	if (!err)
		return false;
	errno = err;
	return true;
}

MPS_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->read(fd, buf, len);
	if (pending(s))
		return -1;
	return read_result(s, mps_libc()->read(fd, buf, len), len);
}

MPS_EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->read_chk(fd, buf, len, buflen);
	if (pending(s))
		return -1;
	return read_result(s, mps_libc()->read_chk(fd, buf, len, buflen), len);
}

MPS_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct mps_sock *s = converted(fd);
	size_t len = 0;
	int i;

	if (!s)
		return mps_libc()->readv(fd, iov, cnt);
	if (pending(s))
		return -1;
	for (i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	return read_result(s, mps_libc()->readv(fd, iov, cnt), len);
}

MPS_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->recv(fd, buf, len, flags);
	if (pending(s))
		return -1;
	return read_result(s, mps_libc()->recv(fd, buf, len, flags), len);
}

MPS_EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->recv_chk(fd, buf, len, buflen, flags);
	if (pending(s))
		return -1;
	return read_result(
		s, mps_libc()->recv_chk(fd, buf, len, buflen, flags), len);
}

MPS_EXPORT ssize_t recvfrom(int fd,
			    void *buf,
			    size_t len,
			    int flags,
			    struct sockaddr *addr,
			    socklen_t *alen)
{
	struct mps_sock *s = converted(fd);
	ssize_t n;

	if (!s)
		return mps_libc()->recvfrom(fd, buf, len, flags, addr, alen);
	if (pending(s))
		return -1;
	n = read_result(s, mps_libc()->recv(fd, buf, len, flags), len);
	if (n >= 0 && addr && alen)
		*alen = 0;
	return n;
}

MPS_EXPORT ssize_t __recvfrom_chk(int fd,
				  void *buf,
				  size_t len,
				  size_t buflen,
				  int flags,
				  struct sockaddr *addr,
				  socklen_t *alen)
{
	struct mps_sock *s = converted(fd);
	ssize_t n;

	if (!s)
		return mps_libc()->recvfrom_chk(
			fd, buf, len, buflen, flags, addr, alen);
	if (pending(s))
		return -1;
	n = mps_libc()->recvfrom_chk(fd, buf, len, buflen, flags, NULL, NULL);
	n = read_result(s, n, len);
	if (n >= 0 && addr && alen)
		*alen = 0;
	return n;
}

MPS_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct mps_sock *s = converted(fd);
	size_t len = 0, i;
	ssize_t n;

	if (!s)
		return mps_libc()->recvmsg(fd, msg, flags);
	if (pending(s))
		return -1;
	for (i = 0; i < msg->msg_iovlen; i++)
		len += msg->msg_iov[i].iov_len;
	n = read_result(s, mps_libc()->recvmsg(fd, msg, flags), len);
	if (n >= 0 && msg->msg_name)
		msg->msg_namelen = 0;
	return n;
}

/* ---- writing ---- */

static size_t iov_sum(const struct iovec *iov, size_t cnt)
{
	size_t sum = 0, i;

	for (i = 0; i < cnt; i++)
		sum += iov[i].iov_len;
	return sum;
}

/*
 * Write to converted socket s at fd: what the direct send takes, then the
 * rest into the socketpair.  Bytes the direct send took count as written
 * even when the rest then fails or would block, as a TCP write that got
 * part of its bytes into the send buffer returns their number.
 */
static ssize_t send_converted(struct mps_sock *s,
			      int fd,
			      const struct iovec *iov,
			      size_t cnt,
			      int flags)
{
	struct iovec rest[MPS_SEND_IOV_MAX];
	struct msghdr msg;
	size_t took = 0, total, i, skip;
	ssize_t n;

	if (pending(s))
		return -1;
	total = iov_sum(iov, cnt);
	if (total > 0 && cnt <= MPS_SEND_IOV_MAX &&
	    !(flags & ~(MSG_NOSIGNAL | MSG_DONTWAIT)) &&
	    !atomic_load_explicit(&s->wr_shut, memory_order_relaxed))
		took = mps_loop_direct_send(s, iov, (int)cnt, total);
	if (took == total && took > 0)
		return (ssize_t)took;
	memset(&msg, 0, sizeof(msg));
	if (took == 0) {
		msg.msg_iov = (struct iovec *)iov;
		msg.msg_iovlen = cnt;
		return mps_libc()->sendmsg(fd, &msg, flags);
	}
	/* the part after the first took bytes */
	skip = took;
	msg.msg_iov = rest;
	for (i = 0; i < cnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		rest[msg.msg_iovlen].iov_base = (char *)iov[i].iov_base + skip;
		rest[msg.msg_iovlen].iov_len = iov[i].iov_len - skip;
		msg.msg_iovlen++;
		skip = 0;
	}
	n = mps_libc()->sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
	return n > 0 ? (ssize_t)took + n : (ssize_t)took;
}

static ssize_t
send_one(struct mps_sock *s, int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return send_converted(s, fd, &iov, 1, flags);
}

MPS_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->write(fd, buf, len);
	return send_one(s, fd, buf, len, 0);
}

MPS_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct mps_sock *s = converted(fd);

	if (!s || cnt < 0)
		return mps_libc()->writev(fd, iov, cnt);
	return send_converted(s, fd, iov, (size_t)cnt, 0);
}

MPS_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->send(fd, buf, len, flags);
	return send_one(s, fd, buf, len, flags);
}

MPS_EXPORT ssize_t sendto(int fd,
			  const void *buf,
			  size_t len,
			  int flags,
			  const struct sockaddr *addr,
			  socklen_t alen)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->sendto(fd, buf, len, flags, addr, alen);
	return send_one(s, fd, buf, len, flags);
}

MPS_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct mps_sock *s = converted(fd);

	if (!s)
		return mps_libc()->sendmsg(fd, msg, flags);
	return send_converted(s, fd, msg->msg_iov, msg->msg_iovlen, flags);
}

/* A shut sending side ends direct sends before the socketpair's end of
 * stream reaches the loop (POSIX: later writes fail with EPIPE). */
MPS_EXPORT int shutdown(int fd, int how)
{
	struct mps_sock *s = converted(fd);

	if (s && (how == SHUT_WR || how == SHUT_RDWR))
		atomic_store(&s->wr_shut, true);
	return mps_libc()->shutdown(fd, how);
}

/* ---- exit ---- */

/* _exit() skips the destructor; the loop still hands what the program
 * wrote to the kernel first (see mps_loop_exit()). */
MPS_EXPORT void _exit(int status)
{
	mps_loop_exit();
	mps_libc()->exit_now(status);
}

MPS_EXPORT void _Exit(int status)
{
	mps_loop_exit();
	mps_libc()->exit_now2(status);
}

/* ---- load and fork ---- */

static void at_prefork(void)
{
	mps_loop_prefork();
	mps_fdtab_lock();
	mps_neg_prefork();
}

static void at_parent(void)
{
	mps_neg_parent();
	mps_fdtab_unlock();
	mps_loop_parent();
}

static void at_child(void)
{
	mps_neg_child();
	mps_fdtab_child();
	mps_loop_child();
	mps_log_after_fork();
}

__attribute__((destructor)) static void mps_unload(void)
{
	mps_loop_exit();
}

__attribute__((constructor)) static void mps_load(void)
{
	int err;

	mps_libc_init();
	mps_config_load(&mps_config);
	err = mps_log_open(mps_config.log_level, mps_config.log_file);
	if (err < 0)
		mps_config_complain("MPTCPSHIM_LOG_FILE",
				    mps_config.log_file,
				    "cannot be opened",
				    "stderr");
	if (mps_config.disable) {
		mps_info("load", "disabled=1");
		return;
	}
	/* OpenSSL's own atexit cleanup would run before this library's
	 * destructor, while the loop still drains and may need keys and
	 * HMACs (a join, a new key): keep OpenSSL alive to the end. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
	err = mps_fdtab_init();
	if (err < 0) {
		mps_error("load", "err=%d what=fdtab", -err);
		return;
	}
	pthread_atfork(at_prefork, at_parent, at_child);
	atomic_store(&tracking, mps_config.convert != MPS_CONVERT_NONE);
	mps_debug("load",
		  "convert=%d version=%d checksum=%d rcvbuf=%u "
		  "sndbuf=%u",
		  (int)mps_config.convert,
		  mps_config.version,
		  (int)mps_config.checksum,
		  mps_config.rcvbuf,
		  mps_config.sndbuf);
}
