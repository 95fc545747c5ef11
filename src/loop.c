/*
 * loop.c: the libev thread that relays between the program's socketpair
 * ends and the kernel TCP sockets.
 *
 * Decisions:
 * - One loop thread per process (ev_loop_new, epoll), started by the first
 *   converted socket.  Wrappers feed it through a locked queue and an
 *   ev_async.  The thread blocks every signal: the program's handlers run
 *   in the program's threads, and no SIGPIPE is ever raised here (all
 *   writes use MSG_NOSIGNAL).
 * - Per connection: the loop's end of the socketpair (afd) and the kernel
 *   socket (kfd), both non-blocking, an ev_io per direction on each, and a
 *   timer set from mps_conn_tick().  Reads take up to 64 KiB straight into
 *   the core; writes go out with one sendmsg() of the core's iovecs.
 * - Reading from the program stops while mps_conn_app_room() is 0.
 * - The kernel socket's sending side is shut down when the core says
 *   mps_conn_sf_done() and has nothing left for it; reads from it are
 *   bounded by mps_conn_sf_rx_room() (all of it in MPTCP, the program's
 *   free buffer in fallback, so a slow program pushes back on the peer).
 * - A plain peer found after a non-blocking connect (the program's
 *   descriptor is already a socketpair) is relayed without a core,
 *   through two rings of MPS_RELAY_BUF bytes, and its destination is
 *   cached as plain.
 * - A connection ends when the core is CLOSED or RESET (or, in fallback
 *   and relay, both directions finished) and what can be flushed was:
 *   then the error the program should see goes into its mps_sock and both
 *   loop descriptors are closed; a reset or an abort closes the kernel
 *   socket with SO_LINGER 0 so that it sends RST.
 * - fork: the child never touches the parent's loop.  It leaks the
 *   loop's memory and its two descriptors (epoll and the ev_async
 *   wakeup, both close-on-exec), because libev offers no safe way to free
 *   a loop whose thread vanished in the middle of a call, and does not
 *   publish the descriptors' numbers.  The connection descriptors the
 *   loop owned are closed (mps_fdtab_child()).  The next converted
 *   socket starts a new loop.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "libc.h"
#include "log.h"
#include "loop.h"
#include "negotiate.h"
#include "token.h"

#define MPS_READ_CHUNK (64 * 1024)
#define MPS_RELAY_BUF (256 * 1024)
#define MPS_IOV_MAX 16
#define MPS_EXIT_STALL_MS 1000

enum lc_mode {
	LC_CONNECTING, /* waiting for the kernel socket to connect */
	LC_CORE,       /* a connection core between the two */
	LC_RELAY,      /* plain peer: bytes copied both ways */
};

/* A byte ring for relay mode. */
struct ring {
	uint8_t *buf;
	size_t head; /* offset of the first byte held */
	size_t len;  /* bytes held */
};

/* One connection; every field is the loop thread's. */
struct lconn {
	struct mps_sock *sock;
	struct mps_conn *core; /* LC_CORE only */
	enum lc_mode mode;
	enum mps_loop_kind kind;
	int afd, kfd, pfd;
	size_t filler;
	int sndbuf;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	ev_io afd_r, afd_w, kfd_r, kfd_w;
	ev_timer timer;
	bool app_eof;  /* the program shut down or closed its side */
	bool app_shut; /* we shut down the direction toward the program */
	bool app_gone; /* writing to the program failed: it closed */
	bool sf_eof;   /* nothing more comes from the kernel socket */
	bool sf_shut;  /* we shut down the kernel socket's sending side */
	bool sf_dead;  /* the kernel socket failed: write nothing more */
	int sf_err;    /* relay: the kernel socket's error */
	bool aborting; /* SO_LINGER 0 close: reset the peer */
	struct ring to_app, to_sf; /* LC_RELAY only */
	struct lconn *next_req;	   /* in the queue, before the loop has it */
	struct lconn *prev, *next; /* every connection of the loop */
};

/* Shared with the wrappers, under queue_lock. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lconn *queue_head, *queue_tail;
static struct mps_sock **closed_socks;
static size_t closed_len, closed_cap;
static bool loop_running;
static struct ev_loop *loop;
static ev_async wakeup;
static bool exit_asked;	  /* the process is exiting: drain */
static bool exit_drained; /* every connection handed its data on */
static pthread_cond_t exit_cond = PTHREAD_COND_INITIALIZER;
static atomic_ullong progress; /* bytes written; any thread reads it */
static pid_t loop_pid;	       /* the process the loop thread runs in */

/* The loop thread's. */
static struct mps_token_table *tokens;
static uint8_t scratch[MPS_READ_CHUNK];
static struct lconn *conns; /* every live connection */
static bool exiting;	    /* exit_asked, as the loop saw it */

static void lc_pump(struct lconn *lc);
static void exit_check(void);
static void exit_drain(void);

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void io_want(ev_io *w, bool on)
{
	if (on && !ev_is_active(w))
		ev_io_start(loop, w);
	else if (!on && ev_is_active(w))
		ev_io_stop(loop, w);
}

/* ---- relay rings ---- */

static int ring_free_iov(struct ring *r, struct iovec *iov)
{
	size_t tail = (r->head + r->len) % MPS_RELAY_BUF;
	size_t room = MPS_RELAY_BUF - r->len;

	if (room == 0)
		return 0;
	iov[0].iov_base = r->buf + tail;
	iov[0].iov_len = tail >= r->head ? MPS_RELAY_BUF - tail : room;
	if (iov[0].iov_len >= room)
		return 1;
	iov[1].iov_base = r->buf;
	iov[1].iov_len = room - iov[0].iov_len;
	return 2;
}

static int ring_data_iov(const struct ring *r, struct iovec *iov)
{
	size_t first = MPS_RELAY_BUF - r->head;

	if (r->len == 0)
		return 0;
	iov[0].iov_base = r->buf + r->head;
	iov[0].iov_len = r->len < first ? r->len : first;
	if (iov[0].iov_len == r->len)
		return 1;
	iov[1].iov_base = r->buf;
	iov[1].iov_len = r->len - first;
	return 2;
}

static void ring_drop(struct ring *r, size_t n)
{
	r->head = (r->head + n) % MPS_RELAY_BUF;
	r->len -= n;
	if (r->len == 0)
		r->head = 0;
}

/* ---- what is waiting, in either mode ---- */

static int sf_out(struct lconn *lc, struct iovec *iov)
{
	if (lc->mode == LC_CORE)
		return mps_conn_sf_peek(lc->core, 0, iov, MPS_IOV_MAX);
	return ring_data_iov(&lc->to_sf, iov);
}

static void sf_out_done(struct lconn *lc, size_t n)
{
	if (lc->mode == LC_CORE)
		mps_conn_sf_consume(lc->core, 0, n);
	else
		ring_drop(&lc->to_sf, n);
}

static int app_out(struct lconn *lc, struct iovec *iov)
{
	if (lc->mode == LC_CORE)
		return mps_conn_app_peek(lc->core, iov, MPS_IOV_MAX);
	return ring_data_iov(&lc->to_app, iov);
}

static void app_out_done(struct lconn *lc, size_t n)
{
	if (lc->mode == LC_CORE)
		mps_conn_app_consume(lc->core, n);
	else
		ring_drop(&lc->to_app, n);
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += iov[i].iov_len;
	return sum;
}

/* Bytes the program has not been given yet. */
static size_t app_pending(struct lconn *lc)
{
	struct iovec iov[MPS_IOV_MAX];

	return iov_total(iov, app_out(lc, iov));
}

static bool sf_out_empty(struct lconn *lc)
{
	struct iovec iov[MPS_IOV_MAX];

	return sf_out(lc, iov) == 0;
}

/* Room for bytes from the program. */
static size_t app_in_room(struct lconn *lc)
{
	if (lc->mode == LC_CORE)
		return mps_conn_app_room(lc->core);
	return MPS_RELAY_BUF - lc->to_sf.len;
}

/*
 * Write what out() gives to fd.  Returns 0 when all went or fd is full
 * (EAGAIN), or a positive errno when fd failed.
 */
static int flush(struct lconn *lc,
		 int fd,
		 int (*out)(struct lconn *, struct iovec *),
		 void (*done)(struct lconn *, size_t))
{
	struct iovec iov[MPS_IOV_MAX];
	struct msghdr msg;
	ssize_t n;
	int cnt;

	while ((cnt = out(lc, iov)) > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)cnt;
		n = mps_libc()->sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : errno;
		done(lc, (size_t)n);
		atomic_fetch_add_explicit(
			&progress, (unsigned long long)n, memory_order_relaxed);
		if ((size_t)n < iov_total(iov, cnt))
			return 0;
	}
	return 0;
}

/* ---- reading ---- */

static void app_eof_seen(struct lconn *lc)
{
	lc->app_eof = true;
	if (atomic_load(&lc->sock->abort)) {
		lc->aborting = true;
		if (lc->mode == LC_CORE)
			mps_conn_abort(lc->core);
		return;
	}
	if (lc->mode == LC_CORE)
		mps_conn_app_shutdown(lc->core);
}

static void read_app(struct lconn *lc)
{
	struct iovec iov[2];
	size_t room = app_in_room(lc);
	ssize_t n;

	if (room == 0)
		return;
	if (lc->mode == LC_CORE) {
		n = mps_libc()->read(lc->afd,
				     scratch,
				     room < sizeof(scratch) ? room
							    : sizeof(scratch));
		if (n > 0)
			mps_conn_app_write(lc->core, scratch, (size_t)n);
	} else {
		n = mps_libc()->readv(
			lc->afd, iov, ring_free_iov(&lc->to_sf, iov));
		if (n > 0)
			lc->to_sf.len += (size_t)n;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
	    (n < 0 && exiting))
		app_eof_seen(lc);
}

static void sf_failed(struct lconn *lc, int err)
{
	lc->sf_eof = true;
	lc->sf_dead = true;
	lc->sf_err = err;
	if (lc->mode == LC_CORE)
		mps_conn_sf_closed(lc->core, 0, err);
}

/* Largest read from the subflow now: what the core takes (in MPTCP the
 * peer respects our window, so the core takes all), or the relay's room. */
static size_t sf_read_limit(struct lconn *lc)
{
	size_t room;

	if (lc->mode == LC_RELAY)
		return MPS_RELAY_BUF - lc->to_app.len;
	room = mps_conn_sf_rx_room(lc->core, 0);
	return room < sizeof(scratch) ? room : sizeof(scratch);
}

static void read_sf_core(struct lconn *lc, size_t limit)
{
	ssize_t n = mps_libc()->read(lc->kfd, scratch, limit);
	int err;

	if (n > 0) {
		err = mps_conn_sf_input(lc->core, 0, scratch, (size_t)n);
		if (err < 0) {
			/* the core queued MP_TCPRST: send it, then stop */
			mps_info(
				"subflow-error", "fd=%d err=%d", lc->kfd, -err);
			flush(lc, lc->kfd, sf_out, sf_out_done);
			sf_failed(lc, -err);
		}
	} else if (n == 0) {
		lc->sf_eof = true;
		mps_conn_sf_closed(lc->core, 0, 0);
	} else if (errno != EAGAIN && errno != EINTR) {
		sf_failed(lc, errno);
	}
}

static void read_sf(struct lconn *lc)
{
	struct iovec iov[2];
	size_t limit = sf_read_limit(lc);
	ssize_t n;

	if (limit == 0)
		return;
	if (lc->mode == LC_CORE) {
		read_sf_core(lc, limit);
		return;
	}
	n = mps_libc()->readv(lc->kfd, iov, ring_free_iov(&lc->to_app, iov));
	if (n > 0)
		lc->to_app.len += (size_t)n;
	else if (n == 0)
		lc->sf_eof = true;
	else if (errno != EAGAIN && errno != EINTR)
		sf_failed(lc, errno);
}

/* ---- ending ---- */

static void lc_unqueue_watchers(struct lconn *lc)
{
	io_want(&lc->afd_r, false);
	io_want(&lc->afd_w, false);
	io_want(&lc->kfd_r, false);
	io_want(&lc->kfd_w, false);
	ev_timer_stop(loop, &lc->timer);
}

/* Close the kernel socket, resetting the peer when rst is set. */
static void lc_close_kfd(struct lconn *lc, bool rst)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct mps_sock *s = lc->sock;

	if (rst)
		mps_libc()->setsockopt(
			lc->kfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	pthread_mutex_lock(&s->fwd_lock);
	mps_fdtab_close(lc->kfd);
	s->kfd = -1;
	pthread_mutex_unlock(&s->fwd_lock);
	lc->kfd = -1;
}

/*
 * Free the connection.  err is what the program's reads see at end of
 * stream (0 for a clean end); rst resets the peer.
 */
static void lc_finish(struct lconn *lc, int err, bool rst)
{
	struct mps_sock *s = lc->sock;

	mps_debug("conn-end",
		  "afd=%d kfd=%d err=%d rst=%d",
		  lc->afd,
		  lc->kfd,
		  err,
		  rst);
	lc_unqueue_watchers(lc);
	if (lc->prev)
		lc->prev->next = lc->next;
	else
		conns = lc->next;
	if (lc->next)
		lc->next->prev = lc->prev;
	/* after an in-order end of stream the program saw a clean end; a
	 * later reset shows only in its writes (EPIPE) */
	if (err && !lc->app_shut)
		atomic_store(&s->conn_error, err);
	if (lc->kfd >= 0)
		lc_close_kfd(lc, rst);
	mps_fdtab_close(lc->afd);
	mps_fdtab_close(lc->pfd);
	atomic_store(&s->connecting, false);
	s->lconn = NULL;
	mps_sock_put(s);
	if (lc->core)
		mps_conn_free(lc->core);
	free(lc->to_app.buf);
	free(lc->to_sf.buf);
	free(lc);
}

/* True when nothing more will flow in either direction. */
static bool both_finished(struct lconn *lc)
{
	return lc->app_eof && lc->app_shut && lc->sf_eof &&
	       (lc->sf_shut || lc->sf_dead);
}

/* End the connection if it is over; returns true when it did. */
static bool lc_maybe_end(struct lconn *lc)
{
	enum mps_conn_state st;
	int err;

	if (lc->app_gone || lc->aborting) {
		lc_finish(lc, 0, true);
		return true;
	}
	if (lc->mode == LC_RELAY) {
		if (lc->sf_err) {
			lc_finish(lc, lc->sf_err, false);
			return true;
		}
		if (!both_finished(lc))
			return false;
		lc_finish(lc, 0, false);
		return true;
	}
	st = mps_conn_state(lc->core);
	if (st == MPS_CONN_RESET) {
		err = mps_conn_error(lc->core);
		lc_finish(lc, err ? err : ECONNRESET, true);
		return true;
	}
	if ((st == MPS_CONN_CLOSED && sf_out_empty(lc) &&
	     app_pending(lc) == 0) ||
	    both_finished(lc)) {
		lc_finish(lc, 0, false);
		return true;
	}
	return false;
}

/* ---- the pump: after every event ---- */

/* Does the kernel socket's sending side end now?  The core says so
 * (FALLBACK after the program's shutdown, CLOSED); a relay ends it after
 * the program's end of stream. */
static bool sf_sending_done(struct lconn *lc)
{
	if (lc->mode == LC_CORE)
		return mps_conn_sf_done(lc->core, 0) &&
		       mps_conn_state(lc->core) != MPS_CONN_RESET;
	return lc->app_eof;
}

static void shut_directions(struct lconn *lc)
{
	bool peer_done;

	if (lc->mode == LC_CORE)
		peer_done = mps_conn_peer_finished(lc->core);
	else
		peer_done = lc->sf_eof;
	if (!lc->app_shut && peer_done && app_pending(lc) == 0) {
		shutdown(lc->afd, SHUT_WR);
		lc->app_shut = true;
	}
	if (!lc->sf_shut && !lc->sf_dead && sf_out_empty(lc) &&
	    sf_sending_done(lc)) {
		shutdown(lc->kfd, SHUT_WR);
		lc->sf_shut = true;
	}
}

static void arm_timer(struct lconn *lc)
{
	uint64_t next;

	if (lc->mode != LC_CORE)
		return;
	next = mps_conn_tick(lc->core, now_us());
	ev_timer_stop(loop, &lc->timer);
	if (next) {
		ev_timer_set(&lc->timer, (double)next / 1e6, 0.);
		ev_timer_start(loop, &lc->timer);
	}
}

static void arm_watchers(struct lconn *lc)
{
	io_want(&lc->afd_r, !lc->app_eof && app_in_room(lc) > 0);
	io_want(&lc->kfd_r, !lc->sf_eof && sf_read_limit(lc) > 0);
	io_want(&lc->kfd_w, !lc->sf_dead && !sf_out_empty(lc));
	io_want(&lc->afd_w, !lc->app_gone && app_pending(lc) > 0);
}

static void lc_pump(struct lconn *lc)
{
	int err;

	arm_timer(lc);
	if (!lc->sf_dead) {
		err = flush(lc, lc->kfd, sf_out, sf_out_done);
		if (err)
			sf_failed(lc, err);
	}
	if (!lc->app_gone && flush(lc, lc->afd, app_out, app_out_done))
		lc->app_gone = true;
	shut_directions(lc);
	if (!lc_maybe_end(lc))
		arm_watchers(lc);
	if (exiting)
		exit_check();
}

/* ---- the connect of a non-blocking connect() ---- */

/* Discard the filler the wrapper wrote; true when all of it was there. */
static bool drain_filler(struct lconn *lc)
{
	while (lc->filler > 0) {
		size_t want = lc->filler < sizeof(scratch) ? lc->filler
							   : sizeof(scratch);
		ssize_t n = mps_libc()->read(lc->afd, scratch, want);

		if (n <= 0)
			return false;
		lc->filler -= (size_t)n;
	}
	return true;
}

static void restore_sndbuf(struct lconn *lc)
{
	int want = atomic_load(&lc->sock->want_sndbuf);
	int val = want ? want : lc->sndbuf;

	mps_libc()->setsockopt(
		lc->pfd, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val));
	mps_fdtab_close(lc->pfd);
	lc->pfd = -1;
}

static int lc_start_core(struct lconn *lc, enum mps_role role)
{
	struct mps_conn_params p = {
		.version = mps_config.version,
		.checksum = mps_config.checksum,
		.rcv_buf = mps_config.rcvbuf,
		.snd_buf = mps_config.sndbuf,
		.fallback_us = role == MPS_ROLE_SERVER
				       ? mps_neg_fallback_us(lc->kfd)
				       : 0,
	};

	lc->core = mps_conn_new(role, &p, tokens, now_us());
	if (!lc->core)
		return -errno;
	if (mps_conn_sf_add(lc->core) < 0)
		return -EINVAL;
	lc->mode = LC_CORE;
	return 0;
}

static int lc_start_relay(struct lconn *lc)
{
	lc->to_app.buf = malloc(MPS_RELAY_BUF);
	lc->to_sf.buf = malloc(MPS_RELAY_BUF);
	if (!lc->to_app.buf || !lc->to_sf.buf)
		return -ENOMEM;
	lc->mode = LC_RELAY;
	return 0;
}

static void lc_connected(struct lconn *lc)
{
	socklen_t len = sizeof(int);
	int err = 0;
	bool shim;

	if (mps_libc()->getsockopt(lc->kfd, SOL_SOCKET, SO_ERROR, &err, &len) <
	    0)
		err = errno;
	io_want(&lc->kfd_w, false);
	if (err) {
		mps_info("connect-failed", "fd=%d err=%d", lc->kfd, err);
		atomic_store(&lc->sock->so_error, err);
		atomic_store(&lc->sock->fail_error, err);
		atomic_store(&lc->sock->failed, true);
		restore_sndbuf(lc);
		lc_finish(lc, 0, false);
		return;
	}
	shim = mps_neg_client_peer_is_shim(lc->kfd);
	err = shim ? lc_start_core(lc, MPS_ROLE_CLIENT) : lc_start_relay(lc);
	if (err == 0) {
		/* the end becomes writable from here: all is decided */
		atomic_store(&lc->sock->connecting, false);
		restore_sndbuf(lc);
		if (!drain_filler(lc))
			err = -EIO;
	}
	if (err) {
		atomic_store(&lc->sock->so_error, -err);
		atomic_store(&lc->sock->fail_error, -err);
		atomic_store(&lc->sock->failed, true);
		lc_finish(lc, 0, true);
		return;
	}
	if (!shim)
		mps_neg_cache_plain((struct sockaddr *)&lc->dst, lc->dst_len);
	mps_info("connected",
		 "fd=%d mode=%s",
		 lc->kfd,
		 shim ? "mptcp" : "plain-relay");
	lc_pump(lc);
}

/* ---- watchers ---- */

static void afd_r_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	read_app(lc);
	lc_pump(lc);
}

static void kfd_r_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	read_sf(lc);
	lc_pump(lc);
}

static void out_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	if (lc->mode == LC_CONNECTING)
		lc_connected(lc);
	else
		lc_pump(lc);
}

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	lc_pump(lc);
}

static void lc_init_watchers(struct lconn *lc)
{
	ev_io_init(&lc->afd_r, afd_r_cb, lc->afd, EV_READ);
	ev_io_init(&lc->afd_w, out_cb, lc->afd, EV_WRITE);
	ev_io_init(&lc->kfd_r, kfd_r_cb, lc->kfd, EV_READ);
	ev_io_init(&lc->kfd_w, out_cb, lc->kfd, EV_WRITE);
	ev_timer_init(&lc->timer, timer_cb, 0., 0.);
	lc->afd_r.data = lc;
	lc->afd_w.data = lc;
	lc->kfd_r.data = lc;
	lc->kfd_w.data = lc;
	lc->timer.data = lc;
}

/* A connection arrived from the queue. */
static void lc_begin(struct lconn *lc)
{
	int err = 0;

	lc->sock->lconn = lc;
	lc->next = conns;
	if (conns)
		conns->prev = lc;
	conns = lc;
	lc_init_watchers(lc);
	switch (lc->kind) {
	case MPS_LOOP_CONNECTING:
		lc->mode = LC_CONNECTING;
		io_want(&lc->kfd_w, true);
		return;
	case MPS_LOOP_CLIENT:
		err = lc_start_core(lc, MPS_ROLE_CLIENT);
		break;
	case MPS_LOOP_SERVER:
		err = lc_start_core(lc, MPS_ROLE_SERVER);
		break;
	}
	if (err) {
		mps_error("conn-failed", "afd=%d err=%d", lc->afd, -err);
		lc_finish(lc, -err, true);
		return;
	}
	lc_pump(lc);
}

/* The program closed a connecting socket: give the connect up. */
static void lc_closed(struct mps_sock *s)
{
	struct lconn *lc = s->lconn;

	if (lc && lc->mode == LC_CONNECTING)
		lc_finish(lc, 0, false);
	mps_sock_put(s);
}

static void wakeup_cb(struct ev_loop *l, ev_async *w, int revents)
{
	struct mps_sock **closed;
	struct lconn *lc, *next;
	size_t i, n;

	(void)l;
	(void)w;
	(void)revents;
	pthread_mutex_lock(&queue_lock);
	lc = queue_head;
	queue_head = queue_tail = NULL;
	closed = closed_socks;
	n = closed_len;
	closed_socks = NULL;
	closed_len = closed_cap = 0;
	if (exit_asked && !exiting)
		exiting = true;
	pthread_mutex_unlock(&queue_lock);
	for (; lc; lc = next) {
		next = lc->next_req;
		lc_begin(lc);
	}
	for (i = 0; i < n; i++)
		lc_closed(closed[i]);
	free(closed);
	if (exiting)
		exit_drain();
}

/* ---- process exit ---- */

/*
 * Is a core connection over enough for the process to go?  Only CLOSED
 * (both DATA_FINs exchanged and acknowledged) makes sure the peer will
 * not send to a socket that the exit closes, which would answer with a
 * TCP RST; conn.h does not tell when our DATA_FIN alone was acknowledged.
 * In fallback the kernel socket carries on as a plain one.
 */
static bool core_finished(struct lconn *lc)
{
	enum mps_conn_state st;

	if (lc->mode != LC_CORE)
		return true;
	st = mps_conn_state(lc->core);
	if (st == MPS_CONN_FALLBACK)
		return lc->sf_shut;
	return st == MPS_CONN_CLOSED || st == MPS_CONN_RESET;
}

/* Has every connection handed what the program wrote to its kernel
 * socket, and the peer acknowledged it (or the socket is lost)? */
static bool all_drained(void)
{
	struct lconn *lc;

	for (lc = conns; lc; lc = lc->next) {
		if (lc->mode == LC_CONNECTING)
			continue;
		if (!lc->app_eof)
			return false;
		if (!lc->sf_dead && !sf_out_empty(lc))
			return false;
		if (!lc->sf_dead && !core_finished(lc))
			return false;
	}
	return true;
}

static void exit_check(void)
{
	if (!all_drained())
		return;
	pthread_mutex_lock(&queue_lock);
	exit_drained = true;
	pthread_cond_broadcast(&exit_cond);
	pthread_mutex_unlock(&queue_lock);
}

/* The process is exiting: take what the program wrote, as if it had
 * closed every descriptor, and push it toward the kernel sockets. */
static void exit_drain(void)
{
	struct lconn *lc, *next;

	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode == LC_CONNECTING || lc->app_eof)
			continue;
		read_app(lc);
		lc_pump(lc);
	}
	exit_check();
}

/*
 * Decision: exit() waits while the loop still holds bytes the program
 * wrote (in its socketpairs or its cores) and until each MPTCP connection
 * is CLOSED, as if the program had closed every descriptor; the kernel
 * sockets then deliver what is left after the process is gone, as they
 * would for a plain socket.  The wait ends
 * when all is handed on, or after MPS_EXIT_STALL_MS without a byte of progress
 * (a peer that stopped reading).  _exit() and _Exit() are interposed to wait as
 * well; fatal signals and the raw exit syscall skip it, and such bytes are lost
 * (an MPTCP peer then sees its subflow end without DATA_FIN: a reset).
 */
void mps_loop_exit(void)
{
	unsigned long long seen;
	struct timespec until;
	int stalled_ms = 0;

	/* a vfork() child shares our memory but is not the loop's process */
	if (!loop_pid || getpid() != loop_pid)
		return;
	pthread_mutex_lock(&queue_lock);
	if (!loop_running)
		goto out_unlock;
	exit_asked = true;
	ev_async_send(loop, &wakeup);
	seen = atomic_load(&progress);
	while (!exit_drained && stalled_ms < MPS_EXIT_STALL_MS) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&exit_cond, &queue_lock, &until);
		if (atomic_load(&progress) != seen) {
			seen = atomic_load(&progress);
			stalled_ms = 0;
		} else {
			stalled_ms += 100;
		}
	}
out_unlock:
	pthread_mutex_unlock(&queue_lock);
}

/* ---- the thread ---- */

static void *loop_main(void *arg)
{
	(void)arg;
	ev_run(loop, 0);
	return NULL;
}

/* Create the loop and its thread; queue lock held.  0 or -errno. */
static int loop_start_locked(void)
{
	sigset_t all, old;
	pthread_t tid;
	int err;

	if (!tokens && mps_token_table_create(&tokens) < 0)
		return -ENOMEM;
	loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
	if (!loop)
		loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!loop)
		return -ENOMEM;
	ev_async_init(&wakeup, wakeup_cb);
	ev_async_start(loop, &wakeup);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&tid, NULL, loop_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		ev_loop_destroy(loop);
		loop = NULL;
		return -err;
	}
	pthread_detach(tid);
	loop_running = true;
	loop_pid = getpid();
	mps_debug("loop-start", "pid=%ld", (long)getpid());
	return 0;
}

int mps_loop_submit(const struct mps_loop_req *req)
{
	struct lconn *lc = calloc(1, sizeof(*lc));
	int err = 0;

	if (!lc)
		return -ENOMEM;
	lc->kind = req->kind;
	lc->sock = req->sock;
	lc->afd = req->afd;
	lc->kfd = req->kfd;
	lc->pfd = req->pfd;
	lc->filler = req->filler;
	lc->sndbuf = req->sndbuf;
	lc->dst = req->dst;
	lc->dst_len = req->dst_len;
	pthread_mutex_lock(&queue_lock);
	if (!loop_running)
		err = loop_start_locked();
	if (err == 0) {
		if (queue_tail)
			queue_tail->next_req = lc;
		else
			queue_head = lc;
		queue_tail = lc;
		ev_async_send(loop, &wakeup);
	}
	pthread_mutex_unlock(&queue_lock);
	if (err)
		free(lc);
	return err;
}

void mps_loop_closed(struct mps_sock *s)
{
	struct mps_sock **grown;

	pthread_mutex_lock(&queue_lock);
	if (!loop_running)
		goto out_unpin;
	if (closed_len == closed_cap) {
		size_t cap = closed_cap ? closed_cap * 2 : 8;

		grown = realloc(closed_socks, cap * sizeof(*grown));
		if (!grown)
			goto out_unpin;
		closed_socks = grown;
		closed_cap = cap;
	}
	closed_socks[closed_len++] = s;
	ev_async_send(loop, &wakeup);
	pthread_mutex_unlock(&queue_lock);
	return;
out_unpin:
	pthread_mutex_unlock(&queue_lock);
	mps_sock_put(s);
}

void mps_loop_prefork(void)
{
	pthread_mutex_lock(&queue_lock);
}

void mps_loop_parent(void)
{
	pthread_mutex_unlock(&queue_lock);
}

void mps_loop_child(void)
{
	pthread_mutex_init(&queue_lock, NULL);
	pthread_cond_init(&exit_cond, NULL);
	loop = NULL;
	conns = NULL;
	exiting = exit_asked = exit_drained = false;
	loop_pid = 0;
	loop_running = false;
	queue_head = queue_tail = NULL;
	closed_socks = NULL;
	closed_len = closed_cap = 0;
	tokens = NULL;
}
