/*
 * loop.c: the libev thread that relays between the program's socketpair
 * ends and the kernel TCP sockets, and runs the path manager.
 *
 * Decisions:
 * - One loop thread per process (ev_loop_new, epoll), started by the first
 *   converted socket.  Wrappers feed it through a locked queue and an
 *   ev_async.  The thread blocks every signal: the program's handlers run
 *   in the program's threads, and no SIGPIPE is ever raised here (all
 *   writes use MSG_NOSIGNAL).
 * - Per connection: the loop's end of the socketpair (afd) and one kernel
 *   socket per subflow (lsf; subflow 0 is the one the program connected
 *   or accepted), all non-blocking, an ev_io per direction on each, and a
 *   timer set from mps_conn_tick().  A wakeup makes one read of up to
 *   MPS_READ_CHUNK: the program's bytes go straight into the core's send ring
 *   (mps_conn_app_reserve()), a subflow's through a scratch buffer (its
 *   records must be parsed); writes go out with one sendmsg() of the
 *   core's iovecs.
 *   After every call into the core every subflow is peeked (the core's
 *   contract), and a subflow is watched for writability only while the
 *   core has bytes for it.
 * - Reading from the program stops while mps_conn_app_room() is 0.
 * - Direct send (mps_loop_direct_send()).  Each hop through the loop
 *   thread is a wakeup, and the socketpair a copy more than putting the
 *   bytes into the send ring: a one-byte round trip paid four hops on top
 *   of plain TCP's.  So the loop thread holds loop_mtx except while it
 *   waits for events (libev's release and acquire hooks), and a program
 *   thread that gets it (direct_lock()) puts its bytes into the core's
 *   send ring and writes the records to the subflows itself, as
 *   lc_pump() would.  It does so only when the socketpair holds none of
 *   its bytes (FIONREAD on afd, read under the same lock), so the two
 *   ways keep the program's order.  What needs the loop afterwards (a
 *   subflow that took less than the core has for it, a timer due sooner
 *   than the one armed, an event, a failed write) sets lc->kicked and
 *   wakes the loop with the kick watcher, which pumps those connections;
 *   the metrics timer is started in place (direct_pump()).  The way back,
 *   from the subflows to the program, still goes through the loop: the
 *   program waits on its socketpair end, not on the subflows.
 * - A subflow's sending side is shut down when the core says
 *   mps_conn_sf_done() and has nothing left for it; reads from it are
 *   bounded by mps_conn_sf_rx_room() (all of it in MPTCP, the program's
 *   free buffer in fallback, so a slow program pushes back on the peer).
 * - A plain peer found after a non-blocking connect (the program's
 *   descriptor is already a socketpair) is relayed without a core,
 *   through two rings of MPS_RELAY_BUF bytes, and its destination is
 *   cached as plain.
 * - A connection ends when the core is CLOSED or RESET (or, in fallback
 *   and relay, both directions finished) and what can be flushed was:
 *   then the error the program should see goes into its mps_sock and
 *   every loop descriptor is closed; a reset or an abort closes the
 *   kernel sockets with SO_LINGER 0 so that they send RST.
 * - Scheduling over kernel TCP.  Once the connection speaks MPTCP, every
 *   subflow socket gets TCP_NOTSENT_LOWAT (pathmgr.h).  While two or more
 *   subflows are live, TCP_INFO of each is read before the subflows are
 *   peeked (at most once per pump: when the core has data to schedule
 *   and the subflow's last room may not hold it, else when the last
 *   read is MPS_METRICS_MIN_US old; see report_metrics()) and every
 *   MPS_METRICS_MS while program data is held, and given to the core
 *   (mps_conn_sf_metrics(), room = lowat - notsent); the timer also
 *   wakes the scheduler when a full subflow drains.  With one subflow
 *   there is nothing to choose and no TCP_INFO is read.  TCP_USER_TIMEOUT
 *   (MPS_PM_USER_TIMEOUT_MS) is set on every subflow while the connection
 *   has more than one, so a blackholed path fails in bounded time, and
 *   cleared on the last one, which then lives as long as plain TCP would.
 *   The core's own stall detection reinjects sooner than that.
 * - Path manager, client side.  When mps_conn_can_join() first holds, on
 *   ADDR_ADDED, on a netlink change and on retry timers, the loop opens a
 *   join subflow for every (usable local path, announced peer address)
 *   pair that no live subflow covers (same local interface, same peer
 *   address), up to MPTCPSHIM_MAX_SUBFLOWS live ones.  Joins go only to
 *   announced addresses and ports: a server of ours announces its join
 *   listener, and its program's own port must never see a join.  A join
 *   that fails (connect error, MPS_PM_CONNECT_TIMEOUT_US, refused,
 *   SUBFLOW_FAILED) is retried after 1, 2, 4, ... 30 s per pair while the
 *   connection lives; a link or address that comes up (rtnetlink) retries
 *   every pair at once.  The local address id of a join is its
 *   interface's index (mod 255, never 0).
 * - Server side: once the connection is ESTABLISHED, it announces the
 *   process's join listener (joinlisten.c) with ADD_ADDR: id 1 is the
 *   initial subflow's own address with the listener's port, ids 2 and on
 *   every other usable local address of the same family.
 * - A link that goes down, or a local address that goes away, closes the
 *   subflows on it at once (mps_conn_sf_closed() with ENETDOWN), so their
 *   data is reinjected on the others without waiting for a timeout.
 *   Events: ADDR_ADDED starts joins; ADDR_REMOVED closes the subflows to
 *   that address; SUBFLOW_FAILED closes the socket once the core is done
 *   with it and schedules a retry of its pair; PRIO_CHANGED is logged.
 * - When subflow 0's socket closes while other subflows live, the
 *   program's forwarded TCP options (mps_sock kfd) move to a live one.
 * - fork: the child never touches the parent's loop.  It leaks the
 *   loop's memory and its two descriptors (epoll and the ev_async
 *   wakeup, both close-on-exec), because libev offers no safe way to free
 *   a loop whose thread vanished in the middle of a call, and does not
 *   publish the descriptors' numbers.  The connection descriptors, join
 *   listeners and the netlink socket the loop owned are closed
 *   (mps_fdtab_child()).  The next converted socket starts a new loop.
 * - The control socket (control.c) starts with the loop and is served on
 *   this thread between events; what it asks of connections is in the
 *   section at the end (mps_loop_ctl_*()).  Process counters (mib.h)
 *   are bumped where things happen here; a core's own stats are folded
 *   in when its connection ends (lc_count_end()), so that the core's
 *   paths stay untouched.  Control's backup rules reach a subflow when
 *   it is established (subflow 0: when the connection is), and its
 *   scheduler every connection created after it was set.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "config.h"
#include "conn.h"
#include "control.h"
#include "joinlisten.h"
#include "libc.h"
#include "log.h"
#include "loop.h"
#include "mib.h"
#include "negotiate.h"
#include "pathmgr.h"
#include "token.h"

#define MPS_READ_CHUNK (128 * 1024) /* one read per wakeup: see below */
/* A subflow read takes a chunk's records whole: its payload in records of
 * at most MPS_WIRE_PAYLOAD_MAX, each with a header of at most 44 bytes.
 * Without the slack the last header bytes of a 128 KiB write came in a
 * second read, a second wakeup of both the loop and the program. */
#define MPS_READ_SLACK 1024
#define MPS_RELAY_BUF (256 * 1024)
#define MPS_IOV_MAX 16
#define MPS_DIRECT_FULL 16384 /* a write this long is not held by Nagle */
#define MPS_DIRECT_TRIES 3 /* yields for the loop lock: direct_lock() */
#define MPS_DIRECT_SPANS 8 /* pieces of a direct send read back: below */
#define MPS_EXIT_STALL_MS 1000
#define MPS_METRICS_MS 20	  /* TCP_INFO refresh while data is held */
#define MPS_METRICS_MIN_US 5000	  /* TCP_INFO age read again with nothing
				     to schedule: see report_metrics() */
#define MPS_RETRY_MIN_S 1	  /* first join retry after a failure */
#define MPS_RETRY_MAX_S 30	  /* longest wait between retries */
#define MPS_MAX_ATTEMPTS 16	  /* (local path, peer address) pairs */

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

struct lconn;

/* One subflow's kernel socket; every field is the loop thread's.  Its
 * index in lconn.sf is the core's subflow number. */
struct lsf {
	struct lconn *lc;
	int num;
	int fd;	     /* -1: never opened, or closed */
	ev_io r, w;
	bool eof;    /* nothing more comes from it */
	bool shut;   /* we shut down its sending side */
	bool dead;   /* it failed: write nothing more */
	bool failed; /* the core gave it up (SUBFLOW_FAILED) */
	int attempt; /* index in lconn.att it was opened for, or -1 */
	unsigned int ifindex; /* of its local address, 0 unknown */
	uint64_t mx_us;	      /* when its TCP_INFO was last read */
	unsigned int mx_pump; /* in which pump (lconn.pumps) */
	uint64_t mx_room;     /* the room it gave */
	uint64_t mx_wrote;    /* bytes written to the socket since */
	struct sockaddr_storage local, peer;
	struct mps_cap_sf *cap; /* MPTCPSHIM_CAPTURE, or NULL */
};

/* A (local path, peer address) pair the client joins over. */
struct latt {
	bool used;
	struct mps_path path;
	uint8_t peer_id;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int fd;		    /* connecting join socket, or -1 */
	ev_io cw;	    /* its connect */
	uint64_t deadline;  /* connect given up at this time */
	int sf;		    /* live subflow opened for it, or -1 */
	unsigned int backoff_s;
	uint64_t retry_at;  /* no new try before this (us) */
};

/* An address the peer announced (ADD_ADDR). */
struct lpeer {
	bool used;
	uint8_t id;
	struct sockaddr_storage sa; /* with the announced port */
	socklen_t len;
};

/* One connection; every field is the loop thread's. */
struct lconn {
	struct mps_sock *sock;
	struct mps_conn *core; /* LC_CORE only */
	enum lc_mode mode;
	enum mps_loop_kind kind;
	int afd, pfd;
	size_t filler;
	int sndbuf;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	ev_io afd_r, afd_w;
	ev_timer timer;	   /* the core's */
	ev_timer pm_timer; /* join retries and connect deadlines */
	ev_timer mx_timer; /* metrics refresh */
	bool mx_due;	   /* it fired: read every subflow's TCP_INFO */
	unsigned int pumps; /* lc_pump() calls, for reading once per pump */
	uint64_t timer_at;  /* when the core's timer fires at the latest
			       (now_us() time), 0 when it is stopped */
	bool kicked;	    /* a direct send left work for the loop: in
			       kick_list (kick_cb()) */
	struct lconn *next_kicked;
	bool app_eof;  /* the program shut down or closed its side */
	bool app_shut; /* we shut down the direction toward the program */
	bool app_gone; /* writing to the program failed: it closed */
	int sf_err;    /* relay: the kernel socket's error */
	bool aborting; /* SO_LINGER 0 close: reset the peer */
	bool mptcp_tuned; /* subflow 0 got the MPTCP socket options */
	bool announced;	  /* server: join listener announced */
	bool pm_dirty;	  /* client: run the path manager */
	bool multi;	  /* user timeouts set: more than one live subflow */
	bool steered0;	  /* control's backup rules applied to subflow 0 */
	uint64_t relay_in, relay_out; /* LC_RELAY: bytes each way */
	int nann;	  /* server: addresses announced, ids 1..nann */
	struct mps_addr ann[MPS_PM_MAX_PATHS + 1];
	int nsf;	  /* subflows added to the core (or 1) */
	struct lsf sf[MPS_CONN_MAX_SUBFLOWS];
	/* Allocated when first needed, so that a connection that joins
	 * nothing (every server's, a single-path client's) does not carry
	 * them: 7 KiB of the 11 an idle connection held here. */
	struct latt *att;     /* MPS_MAX_ATTEMPTS, or NULL: natt() */
	struct lpeer *peers;  /* MPS_CONN_MAX_ADDRS, or NULL: npeers() */
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

/* Held by the loop thread except while it waits for events, and by a
 * program thread in mps_loop_direct_send(): every lconn field, the cores
 * and the loop's watchers are under it. */
static pthread_mutex_t loop_mtx = PTHREAD_MUTEX_INITIALIZER;
static ev_async kick_w; /* a direct send left work: see kick_cb() */
static struct lconn *kick_list; /* those connections, under loop_mtx */

/* The loop thread's. */
static struct mps_token_table *tokens;
static uint8_t scratch[MPS_READ_CHUNK + MPS_READ_SLACK];
static struct lconn *conns; /* every live connection */
static bool exiting;	    /* exit_asked, as the loop saw it */
static int nl_fd = -1;	    /* rtnetlink, opened with the first core */
static ev_io nl_w;

static void lc_pump(struct lconn *lc);
static void lc_unkick(struct lconn *lc);
static void exit_check(void);
static void exit_drain(void);
static void exit_take_app(struct lconn *lc);

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

/* Join attempts and peer addresses of lc so far (see struct lconn). */
static int natt(const struct lconn *lc)
{
	return lc->att ? MPS_MAX_ATTEMPTS : 0;
}

static int npeers(const struct lconn *lc)
{
	return lc->peers ? MPS_CONN_MAX_ADDRS : 0;
}

static bool sf_open(const struct lsf *sf)
{
	return sf->fd >= 0;
}

/* Open, not failed, and able to carry data. */
static bool sf_live(const struct lsf *sf)
{
	return sf->fd >= 0 && !sf->dead && !sf->failed;
}

static int live_count(const struct lconn *lc)
{
	int i, n = 0;

	for (i = 0; i < lc->nsf; i++)
		n += sf_live(&lc->sf[i]);
	return n;
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

/*
 * The direct send in progress, under loop_mtx: where the bytes it put in
 * the core's send ring came from in the program's buffers.  Its records go
 * to the kernel from those buffers (flush()): the bytes are the same, and
 * the kernel's copy from buffers the program has just written is cheaper
 * than from the ring (in a profile of a 1 Gbit/s upload on loopback, the
 * copy into TCP took 11 % of the samples from the ring and 4 % from the
 * program's buffer).  The ring keeps its copy for sending again.  Not
 * with DSS checksums: they are computed over the ring's copy, and a
 * program thread that changes the buffer during another's write() would
 * make them disagree.  Without them such a write is sent as plain TCP
 * would send it, and a later copy from the ring that differs is caught by
 * the peer's comparison of duplicates (a reset of that subflow at worst).
 */
struct span {
	const char *ring;
	const char *prog;
	size_t len;
};
static struct span direct_spans[MPS_DIRECT_SPANS];
static int direct_nspans;

/* Record spans for the first took bytes of iov[0..cnt), which went to the
 * ring's free space room[0..nroom) in order. */
static void direct_spans_set(const struct iovec *iov,
			     int cnt,
			     const struct iovec *room,
			     int nroom,
			     size_t took)
{
	size_t io = 0, fo = 0, n;
	int i = 0, f = 0;

	direct_nspans = 0;
	while (took > 0 && i < cnt && f < nroom &&
	       direct_nspans < MPS_DIRECT_SPANS) {
		n = iov[i].iov_len - io;
		if (room[f].iov_len - fo < n)
			n = room[f].iov_len - fo;
		if (took < n)
			n = took;
		direct_spans[direct_nspans++] = (struct span){
			.ring = (const char *)room[f].iov_base + fo,
			.prog = (const char *)iov[i].iov_base + io,
			.len = n,
		};
		took -= n;
		io += n;
		fo += n;
		if (io == iov[i].iov_len)
			i++, io = 0;
		if (fo == room[f].iov_len)
			f++, fo = 0;
	}
}

/*
 * iov[0..n) with the ring bytes of direct_spans pointing into the program's
 * buffers instead; an entry is cut where a span begins or ends.  At most
 * MPS_IOV_MAX entries: what does not fit goes with the next sendmsg().
 */
static int direct_spans_apply(struct iovec *iov, int n)
{
	struct iovec out[MPS_IOV_MAX];
	int i, k, m = 0;

	for (i = 0; i < n && m < MPS_IOV_MAX; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left > 0 && m < MPS_IOV_MAX) {
			const char *base = p;
			size_t piece = left;

			for (k = 0; k < direct_nspans; k++) {
				const struct span *sp = &direct_spans[k];
				const char *end = sp->ring + sp->len;

				if (p >= sp->ring && p < end) {
					base = sp->prog + (p - sp->ring);
					if (piece > (size_t)(end - p))
						piece = (size_t)(end - p);
				} else if (sp->ring > p &&
					   (size_t)(sp->ring - p) < piece) {
					piece = (size_t)(sp->ring - p);
				}
			}
			out[m].iov_base = (void *)base;
			out[m++].iov_len = piece;
			p += piece;
			left -= piece;
		}
	}
	memcpy(iov, out, sizeof(out[0]) * (size_t)m);
	return m;
}

static int sf_out(struct lconn *lc, int num, struct iovec *iov)
{
	if (lc->mode == LC_CORE)
		return mps_conn_sf_peek(lc->core, num, iov, MPS_IOV_MAX);
	return num == 0 ? ring_data_iov(&lc->to_sf, iov) : 0;
}

static void sf_out_done(struct lconn *lc, int num, size_t n)
{
	lc->sf[num].mx_wrote += n;
	if (lc->mode == LC_CORE)
		mps_conn_sf_consume(lc->core, num, n);
	else
		ring_drop(&lc->to_sf, n);
}

static int app_out(struct lconn *lc, int num, struct iovec *iov)
{
	(void)num;
	if (lc->mode == LC_CORE)
		return mps_conn_app_peek(lc->core, iov, MPS_IOV_MAX);
	return ring_data_iov(&lc->to_app, iov);
}

static void app_out_done(struct lconn *lc, int num, size_t n)
{
	(void)num;
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

	return iov_total(iov, app_out(lc, 0, iov));
}

static bool sf_out_empty(struct lconn *lc, int num)
{
	struct iovec iov[MPS_IOV_MAX];

	return sf_out(lc, num, iov) == 0;
}

/* Nothing waits for any subflow that can still be written. */
static bool all_sf_out_empty(struct lconn *lc)
{
	int i;

	for (i = 0; i < lc->nsf; i++)
		if (sf_open(&lc->sf[i]) && !lc->sf[i].dead &&
		    !sf_out_empty(lc, i))
			return false;
	return true;
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
		 int num,
		 int fd,
		 int (*out)(struct lconn *, int, struct iovec *),
		 void (*done)(struct lconn *, int, size_t))
{
	struct iovec iov[MPS_IOV_MAX];
	struct msghdr msg;
	ssize_t n;
	int cnt;

	while ((cnt = out(lc, num, iov)) > 0) {
		if (out == sf_out && direct_nspans)
			cnt = direct_spans_apply(iov, cnt);
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)cnt;
		n = mps_libc()->sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : errno;
		if (out == sf_out && lc->sf[num].cap)
			mps_capture_written(
				lc->sf[num].cap, iov, cnt, (size_t)n);
		done(lc, num, (size_t)n);
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

/*
 * One read of at most MPS_READ_CHUNK bytes from the program, straight
 * into the core's send ring (no scratch copy).  128 KiB rather than 64
 * took a fifth off the CPU per byte at 1 Gbit/s (fewer wakeups, and one
 * data ACK per read at the peer) and raised loopback throughput; 256 KiB
 * gained nothing more, and repeated reads per wakeup halved throughput on
 * two CPUs: the stages downstream sat idle while the loop read a batch
 * (doc/performance.md).
 */
static ssize_t read_app_core(struct lconn *lc)
{
	struct iovec iov[2];
	ssize_t n;
	int cnt;
	size_t want = mps_conn_app_reserve(lc->core, iov, &cnt);

	if (want > MPS_READ_CHUNK) {
		want = MPS_READ_CHUNK;
		if (iov[0].iov_len >= want) {
			iov[0].iov_len = want;
			cnt = 1;
		} else {
			iov[1].iov_len = want - iov[0].iov_len;
		}
	}
	n = mps_libc()->readv(lc->afd, iov, cnt);
	if (n > 0)
		mps_conn_app_commit(lc->core, (size_t)n);
	return n;
}

static void read_app(struct lconn *lc)
{
	struct iovec iov[2];
	size_t room = app_in_room(lc);
	ssize_t n;

	if (room == 0)
		return;
	if (lc->mode == LC_CORE) {
		n = read_app_core(lc);
	} else {
		n = mps_libc()->readv(
			lc->afd, iov, ring_free_iov(&lc->to_sf, iov));
		if (n > 0) {
			lc->to_sf.len += (size_t)n;
			lc->relay_out += (uint64_t)n;
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
	    (n < 0 && exiting))
		app_eof_seen(lc);
}

/* Subflow sf failed with err: nothing more is read or written on it. */
static void sf_failed(struct lconn *lc, struct lsf *sf, int err)
{
	sf->eof = true;
	sf->dead = true;
	if (sf->num == 0)
		lc->sf_err = err;
	if (lc->mode == LC_CORE)
		mps_conn_sf_closed(lc->core, sf->num, err);
}

/* Largest read from the subflow now: what the core takes (in MPTCP the
 * peer respects our window, so the core takes all), or the relay's room. */
static size_t sf_read_limit(struct lconn *lc, struct lsf *sf)
{
	size_t room;

	if (lc->mode == LC_RELAY)
		return MPS_RELAY_BUF - lc->to_app.len;
	if (lc->mode != LC_CORE || sf->eof || sf->dead)
		return 0;
	room = mps_conn_sf_rx_room(lc->core, sf->num);
	return room < sizeof(scratch) ? room : sizeof(scratch);
}

static void read_sf_core(struct lconn *lc, struct lsf *sf, size_t limit)
{
	ssize_t n = mps_libc()->read(sf->fd, scratch, limit);
	int err;

	if (n > 0 && sf->cap)
		mps_capture_bytes(sf->cap, MPS_CAP_IN, scratch, (size_t)n);
	else if (n >= 0 && sf->cap)
		mps_capture_end(sf->cap, MPS_CAP_IN, false);
	if (n > 0) {
		err = mps_conn_sf_input(lc->core, sf->num, scratch, (size_t)n);
		if (err < 0) {
			/* the core queued MP_TCPRST: send it, then stop */
			mps_info("subflow-error",
				 "fd=%d sf=%d err=%d",
				 sf->fd,
				 sf->num,
				 -err);
			flush(lc, sf->num, sf->fd, sf_out, sf_out_done);
			sf_failed(lc, sf, -err);
		}
	} else if (n == 0) {
		sf->eof = true;
		mps_conn_sf_closed(lc->core, sf->num, 0);
	} else if (errno != EAGAIN && errno != EINTR) {
		sf_failed(lc, sf, errno);
	}
}

static void read_sf(struct lconn *lc, struct lsf *sf)
{
	struct iovec iov[2];
	size_t limit = sf_read_limit(lc, sf);
	ssize_t n;

	if (limit == 0)
		return;
	if (lc->mode == LC_CORE) {
		read_sf_core(lc, sf, limit);
		return;
	}
	n = mps_libc()->readv(sf->fd, iov, ring_free_iov(&lc->to_app, iov));
	if (n > 0) {
		lc->to_app.len += (size_t)n;
		lc->relay_in += (uint64_t)n;
	} else if (n == 0)
		sf->eof = true;
	else if (errno != EAGAIN && errno != EINTR)
		sf_failed(lc, sf, errno);
}

/* ---- closing subflows ---- */

/* The program's forwarded TCP options follow a live subflow. */
static void sock_kfd_update(struct lconn *lc)
{
	struct mps_sock *s = lc->sock;
	int i, fd = -1;

	for (i = 0; i < lc->nsf && fd < 0; i++)
		if (sf_live(&lc->sf[i]))
			fd = lc->sf[i].fd;
	pthread_mutex_lock(&s->fwd_lock);
	s->kfd = fd;
	pthread_mutex_unlock(&s->fwd_lock);
}

/* Close a subflow's socket, resetting the peer when rst is set. */
static void sf_close_fd(struct lconn *lc, struct lsf *sf, bool rst)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct mps_sock *s = lc->sock;
	bool was_kfd;

	if (!sf_open(sf))
		return;
	io_want(&sf->r, false);
	io_want(&sf->w, false);
	if (rst)
		mps_libc()->setsockopt(
			sf->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (sf->cap) {
		mps_capture_close(sf->cap, rst);
		sf->cap = NULL;
	}
	pthread_mutex_lock(&s->fwd_lock);
	was_kfd = s->kfd == sf->fd;
	if (was_kfd)
		s->kfd = -1;
	pthread_mutex_unlock(&s->fwd_lock);
	mps_fdtab_close(sf->fd);
	sf->fd = -1;
	sf->eof = sf->dead = true;
	if (was_kfd)
		sock_kfd_update(lc);
}

/* ---- ending ---- */

static void lc_unqueue_watchers(struct lconn *lc)
{
	int i;

	io_want(&lc->afd_r, false);
	io_want(&lc->afd_w, false);
	for (i = 0; i < lc->nsf; i++) {
		io_want(&lc->sf[i].r, false);
		io_want(&lc->sf[i].w, false);
	}
	for (i = 0; i < natt(lc); i++)
		if (lc->att[i].used)
			io_want(&lc->att[i].cw, false);
	ev_timer_stop(loop, &lc->timer);
	ev_timer_stop(loop, &lc->pm_timer);
	ev_timer_stop(loop, &lc->mx_timer);
}

static void att_close_all(struct lconn *lc)
{
	int i;

	for (i = 0; i < natt(lc); i++) {
		if (lc->att[i].used && lc->att[i].fd >= 0) {
			mps_fdtab_close(lc->att[i].fd);
			lc->att[i].fd = -1;
		}
	}
}

/* Count how a connection ended, and fold its core's stats in. */
static void lc_count_end(struct lconn *lc, int err, bool rst)
{
	struct mps_conn_info info;
	enum mps_mib_id why = MPS_MIB_RESET_OTHER;

	if (lc->mode == LC_CONNECTING)
		return;
	if (lc->core) {
		mps_conn_get_info(lc->core, &info);
		mps_mib_fold_conn(&info.stats, lc->kind == MPS_LOOP_SERVER);
	}
	if (!err && !rst)
		why = MPS_MIB_CONN_CLOSED;
	else if (lc->app_gone || lc->aborting || err == ECONNABORTED)
		why = MPS_MIB_RESET_ABORT;
	else if (err == ECONNRESET)
		why = MPS_MIB_RESET_PEER;
	else if (err == ETIMEDOUT)
		why = MPS_MIB_RESET_TIMEOUT;
	mps_mib_inc(why);
}

/*
 * Free the connection.  err is what the program's reads see at end of
 * stream (0 for a clean end); rst resets the peer.
 */
static void lc_finish(struct lconn *lc, int err, bool rst)
{
	struct mps_sock *s = lc->sock;
	int i;

	mps_debug("conn-end",
		  "afd=%d kfd=%d nsf=%d err=%d rst=%d",
		  lc->afd,
		  lc->sf[0].fd,
		  lc->nsf,
		  err,
		  rst);
	lc_count_end(lc, err, rst);
	lc_unqueue_watchers(lc);
	lc_unkick(lc);
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
	for (i = 0; i < lc->nsf; i++)
		sf_close_fd(lc, &lc->sf[i], rst);
	mps_capture_flush();
	att_close_all(lc);
	mps_fdtab_close(lc->afd);
	mps_fdtab_close(lc->pfd);
	atomic_store(&s->connecting, false);
	s->lconn = NULL;
	mps_sock_put(s);
	if (lc->core)
		mps_conn_free(lc->core);
	free(lc->to_app.buf);
	free(lc->to_sf.buf);
	free(lc->att);
	free(lc->peers);
	free(lc);
}

/* Every subflow finished: nothing more from it, nothing more to it. */
static bool subflows_finished(struct lconn *lc)
{
	int i;

	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (sf_open(sf) && !(sf->eof && (sf->shut || sf->dead)))
			return false;
	}
	return true;
}

/* True when nothing more will flow in either direction. */
static bool both_finished(struct lconn *lc)
{
	return lc->app_eof && lc->app_shut && subflows_finished(lc);
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
	if ((st == MPS_CONN_CLOSED && all_sf_out_empty(lc) &&
	     app_pending(lc) == 0) ||
	    both_finished(lc)) {
		lc_finish(lc, 0, false);
		return true;
	}
	return false;
}

/* ---- scheduling over kernel TCP ---- */

/* TCP_USER_TIMEOUT on every live subflow while there are several. */
static void user_timeouts(struct lconn *lc)
{
	bool multi = live_count(lc) > 1;
	int i;

	if (multi == lc->multi)
		return;
	lc->multi = multi;
	for (i = 0; i < lc->nsf; i++)
		if (sf_live(&lc->sf[i]))
			mps_pm_user_timeout(lc->sf[i].fd,
					    multi ? MPS_PM_USER_TIMEOUT_MS : 0);
}

/* Program bytes the core holds not yet put into records. */
static uint64_t core_unsent(struct lconn *lc)
{
	struct mps_conn_info info;
	uint64_t flight;

	mps_conn_get_info(lc->core, &info);
	/* held bytes beyond those in flight; a few acked bytes a queued
	 * record still needs count too, which costs one read at most */
	flight = info.snd_nxt - info.snd_una;
	return info.snd_held > flight ? info.snd_held - flight : 0;
}

/*
 * Report live subflows' TCP_INFO to the core, once the connection had
 * several: a lone survivor's room must keep growing as it drains.
 * Each read is a system call, and a one-byte round trip used to make 8 of
 * them on each side.  A subflow is read at most once per pump, and then:
 * - when the core has program data to schedule and may find the subflow
 *   short of room: the core counts the room of the last read less what
 *   was written since, so while that and the waiting data stay under
 *   half of it the room cannot limit the scheduler, and the rest (srtt,
 *   rate, a queue that counts as unsent what the kernel has sent since)
 *   is at most MPS_METRICS_MIN_US old; a bulk sender reads every pump;
 * - when the metrics timer fired (every MPS_METRICS_MS while data is
 *   held), which also wakes the scheduler for a full subflow that drained;
 * - otherwise when its last read is MPS_METRICS_MIN_US old.  Stall
 *   detection and recovery need acked_bytes while bytes are outstanding,
 *   also on the end that only sends data ACKs (a stall takes 200 ms at
 *   least, MPS_STALL_MIN_US); reading only while data is held left a path
 *   that came back after a fault stalled (the multipath-failover test).
 */
static void report_metrics(struct lconn *lc)
{
	struct mps_sf_metrics m;
	uint64_t now, unsent;
	bool force, short_room;
	int i;

	if (lc->mode != LC_CORE || lc->nsf < 2)
		return;
	force = lc->mx_due;
	lc->mx_due = false;
	unsent = core_unsent(lc);
	now = now_us();
	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_live(sf) || sf->mx_pump == lc->pumps)
			continue;
		short_room = unsent > 0 &&
			     sf->mx_wrote + unsent >= sf->mx_room / 2;
		if (!force && !short_room &&
		    now - sf->mx_us < MPS_METRICS_MIN_US)
			continue;
		sf->mx_pump = lc->pumps;
		sf->mx_us = now;
		if (mps_pm_metrics(sf->fd, &m) != 0)
			continue;
		sf->mx_room = m.room;
		sf->mx_wrote = 0;
		mps_conn_sf_metrics(lc->core, i, &m);
	}
}

/* Start the metrics timer unless it runs; true when it was started. */
static bool start_metrics(struct lconn *lc)
{
	if (ev_is_active(&lc->mx_timer))
		return false;
	ev_timer_set(&lc->mx_timer, MPS_METRICS_MS / 1e3, 0.);
	ev_timer_start(loop, &lc->mx_timer);
	return true;
}

/* Keep the metrics timer running while program data is held, once the
 * connection had several subflows. */
static void arm_metrics(struct lconn *lc)
{
	struct mps_conn_info info;
	bool want = false;

	if (lc->mode == LC_CORE && lc->nsf > 1) {
		mps_conn_get_info(lc->core, &info);
		want = info.snd_held > 0;
	}
	if (want)
		start_metrics(lc);
	else
		ev_timer_stop(loop, &lc->mx_timer);
}

/* ---- the pump: after every event ---- */

/* Does a subflow's sending side end now?  The core says so (FALLBACK
 * after the program's shutdown, CLOSED); a relay ends it after the
 * program's end of stream. */
static bool sf_sending_done(struct lconn *lc, struct lsf *sf)
{
	if (lc->mode == LC_CORE)
		return mps_conn_sf_done(lc->core, sf->num) &&
		       mps_conn_state(lc->core) != MPS_CONN_RESET;
	return lc->app_eof;
}

static void shut_directions(struct lconn *lc)
{
	bool peer_done;
	int i;

	if (lc->mode == LC_CORE)
		peer_done = mps_conn_peer_finished(lc->core);
	else
		peer_done = lc->sf[0].eof;
	if (!lc->app_shut && peer_done && app_pending(lc) == 0) {
		shutdown(lc->afd, SHUT_WR);
		lc->app_shut = true;
	}
	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_open(sf) || sf->shut || sf->dead ||
		    !sf_out_empty(lc, i))
			continue;
		if (sf->failed) {
			/* the core is done with it: what it had went */
			sf_close_fd(lc, sf, true);
			continue;
		}
		if (sf_sending_done(lc, sf)) {
			shutdown(sf->fd, SHUT_WR);
			sf->shut = true;
			if (sf->cap)
				mps_capture_end(sf->cap, MPS_CAP_OUT, false);
		}
	}
}

static void arm_timer(struct lconn *lc)
{
	uint64_t next, now;

	if (lc->mode != LC_CORE)
		return;
	now = now_us();
	next = mps_conn_tick(lc->core, now);
	ev_timer_stop(loop, &lc->timer);
	lc->timer_at = 0;
	if (next) {
		/* set from the loop's cached time, which is no later than
		 * now: the timer fires at timer_at or before */
		ev_timer_set(&lc->timer, (double)next / 1e6, 0.);
		ev_timer_start(loop, &lc->timer);
		lc->timer_at = now + next;
	}
}

static void arm_watchers(struct lconn *lc)
{
	int i;

	io_want(&lc->afd_r, !lc->app_eof && app_in_room(lc) > 0);
	io_want(&lc->afd_w, !lc->app_gone && app_pending(lc) > 0);
	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_open(sf))
			continue;
		io_want(&sf->r, !sf->eof && sf_read_limit(lc, sf) > 0);
		io_want(&sf->w, !sf->dead && !sf_out_empty(lc, i));
	}
}

/* Write what the core has for every subflow. */
static void flush_subflows(struct lconn *lc)
{
	int i, err;

	report_metrics(lc);
	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_open(sf) || sf->dead)
			continue;
		err = flush(lc, i, sf->fd, sf_out, sf_out_done);
		if (err) {
			mps_info("subflow-down",
				 "sf=%d fd=%d err=%d",
				 i,
				 sf->fd,
				 err);
			sf_failed(lc, sf, err);
			if (lc->nsf > 1)
				sf_close_fd(lc, sf, true);
		}
	}
}

static bool pm_events(struct lconn *lc);
static void pm_run(struct lconn *lc);
static void server_announce(struct lconn *lc);
static void steer_initial(struct lconn *lc);
static void steer_sf(struct lconn *lc, int num);

static void lc_pump(struct lconn *lc)
{
	int pass;

	if (exiting)
		exit_take_app(lc);
	lc->pumps++;
	arm_timer(lc);
	for (pass = 0; pass < 4; pass++) {
		bool acted = lc->mode == LC_CORE && pm_events(lc);

		flush_subflows(lc);
		if (!acted)
			break;
	}
	if (lc->mode == LC_CORE) {
		server_announce(lc);
		steer_initial(lc);
		pm_run(lc);
		flush_subflows(lc);
		user_timeouts(lc);
	}
	if (!lc->app_gone &&
	    flush(lc, 0, lc->afd, app_out, app_out_done))
		lc->app_gone = true;
	shut_directions(lc);
	if (!lc_maybe_end(lc)) {
		arm_watchers(lc);
		arm_metrics(lc);
	}
	if (exiting)
		exit_check();
}

/* ---- subflow sockets ---- */

static void sf_r_cb(struct ev_loop *l, ev_io *w, int revents);
static void sf_w_cb(struct ev_loop *l, ev_io *w, int revents);

/* MPTCPSHIM_CAPTURE: sf's traffic from now on, in kernel MPTCP's form.
 * The client opened subflow 0 and the joins it made (attempt >= 0). */
static void sf_capture(struct lconn *lc, struct lsf *sf, int attempt)
{
	bool initiator = sf->num == 0 ? lc->kind != MPS_LOOP_SERVER
				      : attempt >= 0;
	struct mps_conn_info info = {.version = mps_config.version};

	if (lc->core)
		mps_conn_get_info(lc->core, &info);
	sf->cap = mps_capture_open((struct sockaddr *)&sf->local,
				   (struct sockaddr *)&sf->peer,
				   initiator,
				   lc->mode != LC_CORE,
				   info.version);
}

/* Take fd as subflow num of lc (added to the core already, or 0). */
static void sf_attach(struct lconn *lc, int num, int fd, int attempt)
{
	struct lsf *sf = &lc->sf[num];
	socklen_t len;

	memset(sf, 0, sizeof(*sf));
	sf->lc = lc;
	sf->num = num;
	sf->fd = fd;
	sf->attempt = attempt;
	ev_io_init(&sf->r, sf_r_cb, fd, EV_READ);
	ev_io_init(&sf->w, sf_w_cb, fd, EV_WRITE);
	sf->r.data = sf;
	sf->w.data = sf;
	if (num >= lc->nsf)
		lc->nsf = num + 1;
	if (lc->mode == LC_CONNECTING)
		return; /* addresses once connected */
	len = sizeof(sf->local);
	mps_libc()->getsockname(fd, (struct sockaddr *)&sf->local, &len);
	len = sizeof(sf->peer);
	mps_libc()->getpeername(fd, (struct sockaddr *)&sf->peer, &len);
	sf->ifindex = mps_pm_ifindex_of((struct sockaddr *)&sf->local);
	if (mps_config.capture[0])
		sf_capture(lc, sf, attempt);
}

/* A subflow gets the MPTCP socket options (not in relay or fallback). */
static void sf_tune(struct lconn *lc, struct lsf *sf)
{
	mps_pm_tune(sf->fd);
	if (lc->multi)
		mps_pm_user_timeout(sf->fd, MPS_PM_USER_TIMEOUT_MS);
}

/* ---- events from the core ---- */

static struct lpeer *peer_by_id(struct lconn *lc, uint8_t id)
{
	int i;

	for (i = 0; i < npeers(lc); i++)
		if (lc->peers[i].used && lc->peers[i].id == id)
			return &lc->peers[i];
	return NULL;
}

static void ev_addr_added(struct lconn *lc, const struct mps_conn_event *ev)
{
	struct lpeer *p = peer_by_id(lc, ev->addr_id);
	uint16_t port = ev->port;
	int i, len;

	if (!port)
		port = ntohs(((struct sockaddr_in *)&lc->sf[0].peer)->sin_port);
	if (!lc->peers)
		lc->peers = calloc(MPS_CONN_MAX_ADDRS, sizeof(*lc->peers));
	for (i = 0; !p && i < npeers(lc); i++)
		if (!lc->peers[i].used)
			p = &lc->peers[i];
	if (!p)
		return;
	len = mps_pm_from_wire(
		&ev->addr, port, lc->sf[0].peer.ss_family, &p->sa);
	if (len < 0)
		return;
	p->used = true;
	p->id = ev->addr_id;
	p->len = (socklen_t)len;
	lc->pm_dirty = true;
}

static void ev_addr_removed(struct lconn *lc, uint8_t id)
{
	struct lpeer *p = peer_by_id(lc, id);
	int i;

	if (!p)
		return;
	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_open(sf) ||
		    !mps_pm_same_addr((struct sockaddr *)&sf->peer,
				      (struct sockaddr *)&p->sa))
			continue;
		mps_conn_sf_closed(lc->core, i, 0);
		sf_close_fd(lc, sf, true);
	}
	for (i = 0; i < natt(lc); i++) {
		struct latt *a = &lc->att[i];

		if (a->used && a->peer_id == id) {
			io_want(&a->cw, false);
			if (a->fd >= 0)
				mps_fdtab_close(a->fd);
			a->used = false;
		}
	}
	p->used = false;
}

/* A join's pair waits before its next try, longer each time. */
static void att_backoff(struct lconn *lc, struct latt *a)
{
	a->retry_at = now_us() + (uint64_t)a->backoff_s * 1000000;
	a->backoff_s = a->backoff_s * 2 > MPS_RETRY_MAX_S ? MPS_RETRY_MAX_S
							  : a->backoff_s * 2;
	lc->pm_dirty = true;
}

static void ev_subflow_failed(struct lconn *lc, int num, int err)
{
	struct lsf *sf = &lc->sf[num];

	if (num < 0 || num >= lc->nsf)
		return;
	sf->failed = true;
	if (sf->attempt >= 0 && lc->att[sf->attempt].sf == num) {
		lc->att[sf->attempt].sf = -1;
		att_backoff(lc, &lc->att[sf->attempt]);
	}
	lc->pm_dirty = true;
	mps_info("subflow-failed", "sf=%d err=%d", num, err);
}

static void ev_subflow_established(struct lconn *lc, int num)
{
	struct lsf *sf = &lc->sf[num];

	if (num >= 0 && num < lc->nsf && sf->attempt >= 0)
		lc->att[sf->attempt].backoff_s = MPS_RETRY_MIN_S;
	if (num >= 0 && num < lc->nsf)
		steer_sf(lc, num);
	mps_info("subflow-established", "sf=%d fd=%d", num, sf->fd);
}

/* Act on every queued event; true when there was one. */
static bool pm_events(struct lconn *lc)
{
	struct mps_conn_event ev;
	char buf[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	bool any = false;

	while (mps_conn_next_event(lc->core, &ev)) {
		any = true;
		switch (ev.kind) {
		case MPS_EV_ADDR_ADDED:
			if (mps_pm_from_wire(&ev.addr, 0, ev.addr.family, &ss) <
			    0)
				snprintf(buf, sizeof(buf), "?");
			else
				mps_pm_ntop((struct sockaddr *)&ss,
					    buf,
					    sizeof(buf));
			mps_info("addr-added",
				 "id=%u addr=%s port=%u",
				 ev.addr_id,
				 buf,
				 ev.port);
			ev_addr_added(lc, &ev);
			break;
		case MPS_EV_ADDR_REMOVED:
			mps_info("addr-removed", "id=%u", ev.addr_id);
			ev_addr_removed(lc, ev.addr_id);
			break;
		case MPS_EV_SUBFLOW_ESTABLISHED:
			ev_subflow_established(lc, ev.sf);
			break;
		case MPS_EV_SUBFLOW_FAILED:
			ev_subflow_failed(lc, ev.sf, ev.err);
			break;
		case MPS_EV_PRIO_CHANGED:
			mps_info("prio-changed",
				 "sf=%d backup=%d",
				 ev.sf,
				 (int)ev.backup);
			break;
		case MPS_EV_INCONSISTENT_DATA:
			mps_warn("inconsistent-data",
				 "sf=%d dsn=%llu",
				 ev.sf,
				 (unsigned long long)ev.dsn);
			break;
		case MPS_EV_MP_FAIL:
			mps_info("mp-fail",
				 "sf=%d dsn=%llu",
				 ev.sf,
				 (unsigned long long)ev.dsn);
			break;
		}
	}
	return any;
}

/* ---- path manager, client side ---- */

static void att_cw_cb(struct ev_loop *l, ev_io *w, int revents);

/* Is a live subflow on path's interface to peer's address? */
static bool pair_covered(struct lconn *lc,
			 const struct mps_path *path,
			 const struct lpeer *peer)
{
	int i;

	for (i = 0; i < lc->nsf; i++) {
		const struct lsf *sf = &lc->sf[i];

		if (sf_live(sf) && sf->ifindex == path->ifindex &&
		    mps_pm_same_addr((const struct sockaddr *)&sf->peer,
				     (const struct sockaddr *)&peer->sa))
			return true;
	}
	return false;
}

static struct latt *
att_get(struct lconn *lc, const struct mps_path *path, const struct lpeer *p)
{
	struct latt *free_slot = NULL;
	int i;

	for (i = 0; i < natt(lc); i++) {
		struct latt *a = &lc->att[i];

		if (!a->used) {
			if (!free_slot)
				free_slot = a;
			continue;
		}
		if (a->peer_id == p->id && a->path.ifindex == path->ifindex &&
		    mps_pm_same_addr((struct sockaddr *)&a->path.addr,
				     (struct sockaddr *)&path->addr))
			return a;
	}
	if (!lc->att) {
		lc->att = calloc(MPS_MAX_ATTEMPTS, sizeof(*lc->att));
		free_slot = lc->att;
	}
	if (!free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	free_slot->fd = -1;
	free_slot->sf = -1;
	free_slot->backoff_s = MPS_RETRY_MIN_S;
	ev_io_init(&free_slot->cw, att_cw_cb, 0, EV_WRITE);
	free_slot->cw.data = lc;
	return free_slot;
}

static int connecting_count(const struct lconn *lc)
{
	int i, n = 0;

	for (i = 0; i < natt(lc); i++)
		n += lc->att[i].used && lc->att[i].fd >= 0;
	return n;
}

/* Start a join for pair a; failures wait for a retry. */
static void att_start(struct lconn *lc, struct latt *a)
{
	char la[INET6_ADDRSTRLEN], pa[INET6_ADDRSTRLEN];
	int fd;

	mps_pm_ntop((struct sockaddr *)&a->path.addr, la, sizeof(la));
	mps_pm_ntop((struct sockaddr *)&a->peer, pa, sizeof(pa));
	fd = mps_pm_join_socket(
		&a->path, (struct sockaddr *)&a->peer, a->peer_len);
	if (fd < 0) {
		mps_info("join-failed",
			 "ifname=%s local=%s peer=%s err=%d retry=%us",
			 a->path.ifname,
			 la,
			 pa,
			 -fd,
			 a->backoff_s);
		att_backoff(lc, a);
		return;
	}
	mps_info("join-connect",
		 "ifname=%s local=%s peer=%s port=%u backup=%d",
		 a->path.ifname,
		 la,
		 pa,
		 ntohs(((struct sockaddr_in *)&a->peer)->sin_port),
		 (int)a->path.backup);
	mps_mib_inc(MPS_MIB_JOIN_OPENED);
	a->fd = fd;
	a->deadline = now_us() + MPS_PM_CONNECT_TIMEOUT_US;
	ev_io_set(&a->cw, fd, EV_WRITE);
	a->cw.data = lc;
	io_want(&a->cw, true);
}

/* The earliest retry or deadline of lc's pairs, or 0. */
static uint64_t att_next_time(struct lconn *lc)
{
	uint64_t next = 0, t;
	int i;

	for (i = 0; i < natt(lc); i++) {
		struct latt *a = &lc->att[i];

		if (!a->used || a->sf >= 0)
			continue;
		t = a->fd >= 0 ? a->deadline : a->retry_at;
		if (t && (!next || t < next))
			next = t;
	}
	return next;
}

static void arm_pm_timer(struct lconn *lc)
{
	uint64_t next = att_next_time(lc), now = now_us();

	ev_timer_stop(loop, &lc->pm_timer);
	if (!next)
		return;
	ev_timer_set(&lc->pm_timer,
		     next > now ? (double)(next - now) / 1e6 : 0.001,
		     0.);
	ev_timer_start(loop, &lc->pm_timer);
}

/* Pairs of every usable path with every announced address. */
static void pm_try_pairs(struct lconn *lc,
			 const struct mps_path *paths,
			 int npaths)
{
	uint64_t now = now_us();
	int i, j;

	for (i = 0; i < npaths; i++) {
		for (j = 0; j < npeers(lc); j++) {
			struct lpeer *p = &lc->peers[j];
			struct latt *a;

			if (!p->used || pair_covered(lc, &paths[i], p))
				continue;
			if (live_count(lc) + connecting_count(lc) >=
			    mps_config.max_subflows)
				return;
			a = att_get(lc, &paths[i], p);
			if (!a || a->fd >= 0 || a->sf >= 0 || a->retry_at > now)
				continue;
			a->path = paths[i];
			a->peer_id = p->id;
			memcpy(&a->peer, &p->sa, sizeof(a->peer));
			a->peer_len = p->len;
			att_start(lc, a);
		}
	}
}

static void pm_run(struct lconn *lc)
{
	struct mps_path paths[MPS_PM_MAX_PATHS];
	int n;

	if (lc->kind == MPS_LOOP_SERVER || !lc->pm_dirty ||
	    mps_config.max_subflows < 2)
		return;
	if (mps_conn_state(lc->core) != MPS_CONN_ESTABLISHED ||
	    !mps_conn_can_join(lc->core))
		return;
	lc->pm_dirty = false;
	/* a dual-stack socket to an IPv4 peer joins from IPv4 addresses */
	n = mps_pm_paths(mps_pm_family((struct sockaddr *)&lc->sf[0].peer),
			 paths,
			 MPS_PM_MAX_PATHS);
	mps_debug("pm-run", "paths=%d", n);
	if (n > 0)
		pm_try_pairs(lc, paths, n);
	arm_pm_timer(lc);
}

/* A join's connect finished (or its deadline passed: err ETIMEDOUT). */
static void att_connected(struct lconn *lc, struct latt *a, int err)
{
	uint8_t id = (uint8_t)(a->path.ifindex % 255 + 1);
	int num = -EINVAL;

	io_want(&a->cw, false);
	if (!err && lc->mode == LC_CORE)
		num = mps_conn_sf_add_join(lc->core, id, a->path.backup);
	if (err || num < 0) {
		mps_mib_inc(MPS_MIB_JOIN_CONNECT_FAILED);
		mps_info("join-failed",
			 "ifname=%s err=%d retry=%us",
			 a->path.ifname,
			 err ? err : -num,
			 a->backoff_s);
		mps_fdtab_close(a->fd);
		a->fd = -1;
		att_backoff(lc, a);
		return;
	}
	sf_attach(lc, num, a->fd, (int)(a - lc->att));
	sf_tune(lc, &lc->sf[num]);
	a->fd = -1;
	a->sf = num;
	mps_info("subflow-join",
		 "sf=%d fd=%d ifname=%s backup=%d",
		 num,
		 lc->sf[num].fd,
		 a->path.ifname,
		 (int)a->path.backup);
}

static void att_cw_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lconn *lc = w->data;
	struct latt *a = (struct latt *)((char *)w - offsetof(struct latt, cw));
	socklen_t len = sizeof(int);
	int err = 0;

	(void)l;
	(void)revents;
	if (mps_libc()->getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) <
	    0)
		err = errno;
	att_connected(lc, a, err);
	lc->pm_dirty = true;
	lc_pump(lc);
}

static void pm_timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct lconn *lc = w->data;
	uint64_t now = now_us();
	int i;

	(void)l;
	(void)revents;
	for (i = 0; i < natt(lc); i++) {
		struct latt *a = &lc->att[i];

		if (a->used && a->fd >= 0 && a->deadline <= now)
			att_connected(lc, a, ETIMEDOUT);
	}
	lc->pm_dirty = true;
	lc_pump(lc); /* pm_run() arms the timer again */
}

/* ---- path manager, server side ---- */

/* Announce the join listener on every usable address (see the top). */
static void server_announce(struct lconn *lc)
{
	struct mps_path paths[MPS_PM_MAX_PATHS];
	struct lsf *sf0 = &lc->sf[0];
	struct mps_addr own, a;
	uint8_t id = 2;
	int port, n, i;

	if (lc->kind != MPS_LOOP_SERVER || lc->announced ||
	    mps_config.max_subflows < 2 ||
	    mps_conn_state(lc->core) != MPS_CONN_ESTABLISHED)
		return;
	lc->announced = true;
	if (!sf_open(sf0) ||
	    mps_pm_to_wire((struct sockaddr *)&sf0->local, &own) < 0)
		return;
	port = mps_jl_port(sf0->local.ss_family);
	if (port < 0) {
		mps_warn("join-listener", "err=%d", -port);
		return;
	}
	if (!mps_ctl_withdrawn((struct sockaddr *)&sf0->local))
		mps_conn_announce(lc->core, 1, &own, (uint16_t)port);
	lc->ann[0] = own;
	n = mps_pm_paths(own.family, paths, MPS_PM_MAX_PATHS);
	for (i = 0; i < n; i++) {
		if (mps_pm_to_wire((struct sockaddr *)&paths[i].addr, &a) < 0 ||
		    memcmp(a.bytes, own.bytes, sizeof(a.bytes)) == 0)
			continue;
		lc->ann[id - 1] = a;
		mps_conn_announce(lc->core, id++, &a, (uint16_t)port);
	}
	lc->nann = id - 1;
	mps_info("announce", "port=%d addrs=%u", port, (unsigned)(id - 1));
}

/* The connection whose core owns token, or NULL. */
static struct lconn *conn_by_token(uint32_t token)
{
	void *core = tokens ? mps_token_lookup(tokens, token) : NULL;
	struct lconn *lc;

	for (lc = conns; core && lc; lc = lc->next)
		if (lc->core == core)
			return lc;
	return NULL;
}

/* Did a join arrive at a local address withdrawn by control? */
static bool join_to_withdrawn(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return mps_libc()->getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	       mps_ctl_withdrawn((struct sockaddr *)&ss);
}

/* joinlisten.c hands over a join that names token. */
static int join_deliver(uint32_t token,
			int fd,
			const uint8_t *buf,
			size_t len)
{
	struct lconn *lc = conn_by_token(token);
	int num;

	if (!lc || lc->mode != LC_CORE) {
		mps_mib_inc(MPS_MIB_JOIN_REFUSED_TOKEN);
		return -ENOENT;
	}
	if (live_count(lc) >= mps_config.max_subflows) {
		mps_mib_inc(MPS_MIB_JOIN_REFUSED_CAP);
		return -ENOENT;
	}
	if (join_to_withdrawn(fd)) {
		mps_mib_inc(MPS_MIB_JOIN_REFUSED_ADDR);
		return -ENOENT;
	}
	num = mps_conn_sf_accept_join(lc->core);
	if (num < 0)
		return -ENOENT;
	sf_attach(lc, num, fd, -1);
	sf_tune(lc, &lc->sf[num]);
	mps_info("subflow-accept", "sf=%d fd=%d token=%08x", num, fd, token);
	if (lc->sf[num].cap)
		mps_capture_bytes(lc->sf[num].cap, MPS_CAP_IN, buf, len);
	if (mps_conn_sf_input(lc->core, num, buf, len) < 0)
		flush(lc, num, fd, sf_out, sf_out_done);
	lc_pump(lc);
	return 0;
}

/* ---- link and address changes ---- */

/* Close lc's subflows on ifindex (or with local address addr). */
static bool close_on(struct lconn *lc,
		     unsigned int ifindex,
		     const struct sockaddr *addr)
{
	bool any = false;
	int i;

	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_open(sf) || sf->dead)
			continue;
		if (addr ? !mps_pm_same_addr((struct sockaddr *)&sf->local,
					     addr)
			 : sf->ifindex != ifindex)
			continue;
		mps_info("subflow-down", "sf=%d ifindex=%u err=%d", i, ifindex,
			 ENETDOWN);
		sf_failed(lc, sf, ENETDOWN);
		if (live_count(lc) > 0)
			sf_close_fd(lc, sf, true);
		mps_mib_inc(MPS_MIB_SUBFLOW_DOWN);
		any = true;
	}
	for (i = 0; i < natt(lc); i++) {
		struct latt *a = &lc->att[i];

		if (a->used && a->fd >= 0 && a->path.ifindex == ifindex &&
		    !addr)
			att_connected(lc, a, ENETDOWN);
	}
	return any;
}

/* Retry every pair of lc at once. */
static void retry_now(struct lconn *lc)
{
	int i;

	for (i = 0; i < natt(lc); i++) {
		lc->att[i].retry_at = 0;
		lc->att[i].backoff_s = MPS_RETRY_MIN_S;
	}
	lc->pm_dirty = true;
}

static void nl_change(enum mps_pm_change what,
		      unsigned int ifindex,
		      const struct sockaddr *addr,
		      void *arg)
{
	struct lconn *lc, *next;
	bool act;

	(void)arg;
	if (what == MPS_PM_LINK_DOWN || what == MPS_PM_ADDR_DEL)
		mps_info(what == MPS_PM_LINK_DOWN ? "link-down" : "addr-del",
			 "ifindex=%u",
			 ifindex);
	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode != LC_CORE)
			continue;
		if (what == MPS_PM_LINK_UP || what == MPS_PM_ADDR_NEW) {
			retry_now(lc);
			act = lc->kind != MPS_LOOP_SERVER;
		} else {
			act = close_on(lc,
				       ifindex,
				       what == MPS_PM_ADDR_DEL ? addr : NULL);
		}
		if (act)
			lc_pump(lc);
	}
}

static void nl_cb(struct ev_loop *l, ev_io *w, int revents)
{
	(void)l;
	(void)revents;
	mps_pm_netlink_read(w->fd, nl_change, NULL);
}

/* The netlink socket, opened with the first core of the loop. */
static void nl_start(void)
{
	if (nl_fd >= 0)
		return;
	nl_fd = mps_pm_netlink_open();
	if (nl_fd < 0) {
		mps_warn("netlink", "err=%d", -nl_fd);
		nl_fd = -2; /* do not try again */
		return;
	}
	ev_io_init(&nl_w, nl_cb, nl_fd, EV_READ);
	ev_io_start(loop, &nl_w);
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
				       ? mps_neg_fallback_us(lc->sf[0].fd)
				       : 0,
		.sched = mps_ctl_sched(mps_config.sched),
	};

	lc->core = mps_conn_new(role, &p, tokens, now_us());
	if (!lc->core)
		return -errno;
	if (mps_conn_sf_add(lc->core) < 0)
		return -EINVAL;
	lc->mode = LC_CORE;
	mps_mib_inc(role == MPS_ROLE_SERVER ? MPS_MIB_MPTCP_SERVER
					    : MPS_MIB_MPTCP_CLIENT);
	sf_attach(lc, 0, lc->sf[0].fd, -1);
	sf_tune(lc, &lc->sf[0]);
	lc->pm_dirty = true;
	nl_start();
	return 0;
}

static int lc_start_relay(struct lconn *lc)
{
	lc->to_app.buf = malloc(MPS_RELAY_BUF);
	lc->to_sf.buf = malloc(MPS_RELAY_BUF);
	if (!lc->to_app.buf || !lc->to_sf.buf)
		return -ENOMEM;
	lc->mode = LC_RELAY;
	mps_mib_inc(MPS_MIB_RELAYED);
	return 0;
}

static void lc_connected(struct lconn *lc)
{
	socklen_t len = sizeof(int);
	int kfd = lc->sf[0].fd, err = 0;
	bool shim;

	if (mps_libc()->getsockopt(kfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	io_want(&lc->sf[0].w, false);
	if (err) {
		mps_info("connect-failed", "fd=%d err=%d", kfd, err);
		atomic_store(&lc->sock->so_error, err);
		atomic_store(&lc->sock->fail_error, err);
		atomic_store(&lc->sock->failed, true);
		restore_sndbuf(lc);
		lc_finish(lc, 0, false);
		return;
	}
	shim = mps_neg_client_peer_is_shim(kfd);
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
		 kfd,
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

static void sf_r_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lsf *sf = w->data;
	struct lconn *lc = sf->lc;

	(void)l;
	(void)revents;
	read_sf(lc, sf);
	if (sf->dead && lc->mode == LC_CORE && live_count(lc) > 0)
		sf_close_fd(lc, sf, true);
	lc_pump(lc);
}

static void sf_w_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lsf *sf = w->data;
	struct lconn *lc = sf->lc;

	(void)l;
	(void)revents;
	if (lc->mode == LC_CONNECTING)
		lc_connected(lc);
	else
		lc_pump(lc);
}

static void afd_w_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	lc_pump(lc);
}

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	lc_pump(lc);
}

static void mx_timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct lconn *lc = w->data;

	(void)l;
	(void)revents;
	lc->mx_due = true;
	lc_pump(lc);
}

static void lc_init_watchers(struct lconn *lc, int kfd)
{
	ev_io_init(&lc->afd_r, afd_r_cb, lc->afd, EV_READ);
	ev_io_init(&lc->afd_w, afd_w_cb, lc->afd, EV_WRITE);
	ev_timer_init(&lc->timer, timer_cb, 0., 0.);
	ev_timer_init(&lc->pm_timer, pm_timer_cb, 0., 0.);
	ev_timer_init(&lc->mx_timer, mx_timer_cb, 0., 0.);
	lc->afd_r.data = lc;
	lc->afd_w.data = lc;
	lc->timer.data = lc;
	lc->pm_timer.data = lc;
	lc->mx_timer.data = lc;
	sf_attach(lc, 0, kfd, -1);
}

/* A connection arrived from the queue. */
static void lc_begin(struct lconn *lc, int kfd)
{
	int err = 0;

	lc->sock->lconn = lc;
	lc->next = conns;
	if (conns)
		conns->prev = lc;
	conns = lc;
	if (lc->kind == MPS_LOOP_CONNECTING)
		lc->mode = LC_CONNECTING;
	lc_init_watchers(lc, kfd);
	switch (lc->kind) {
	case MPS_LOOP_CONNECTING:
		io_want(&lc->sf[0].w, true);
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
		lc_begin(lc, lc->sf[0].fd);
	}
	for (i = 0; i < n; i++)
		lc_closed(closed[i]);
	free(closed);
	if (exiting)
		exit_drain();
}

/* ---- direct send (loop.h) ---- */

/* Direct sends left work: pump the connections they marked.  A pump
 * may end its connection, which then leaves the list (lc_unkick()). */
static void kick_cb(struct ev_loop *l, ev_async *w, int revents)
{
	struct lconn *lc;

	(void)l;
	(void)w;
	(void)revents;
	while ((lc = kick_list) != NULL) {
		kick_list = lc->next_kicked;
		lc->kicked = false;
		lc_pump(lc);
	}
}

/* Take lc out of the kicked list before it is freed. */
static void lc_unkick(struct lconn *lc)
{
	struct lconn **p;

	if (!lc->kicked)
		return;
	for (p = &kick_list; *p; p = &(*p)->next_kicked) {
		if (*p == lc) {
			*p = lc->next_kicked;
			break;
		}
	}
	lc->kicked = false;
}

/*
 * The part of lc_pump() a program thread runs after a direct send: the
 * core's clock, then the records out to every subflow.  Returns true
 * when the loop must pump lc (see the decisions at the top).  Subflow
 * errors are left for the loop: its own flush meets them again.
 */
static bool direct_pump(struct lconn *lc)
{
	uint64_t now = now_us(), next;
	bool kick = false;
	int i;

	lc->pumps++;
	next = mps_conn_tick(lc->core, now);
	if (next && (lc->timer_at == 0 || now + next < lc->timer_at))
		kick = true;
	report_metrics(lc);
	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_open(sf) || sf->dead)
			continue;
		if (flush(lc, i, sf->fd, sf_out, sf_out_done) != 0 ||
		    (!sf_out_empty(lc, i) && !ev_is_active(&sf->w)))
			kick = true;
	}
	/* The metrics timer (arm_metrics()) may be started from here: the
	 * loop reads its timers when it wakes, and a core timer due sooner
	 * wakes it in time; else the kick makes it recompute its wait. */
	if (lc->nsf > 1 && start_metrics(lc) &&
	    (lc->timer_at == 0 || lc->timer_at > now + MPS_METRICS_MS * 1000))
		kick = true;
	return kick || mps_conn_has_event(lc->core);
}

/*
 * Nagle for a program that left TCP_NODELAY off: a short write while its
 * data is unacknowledged goes by the socketpair, where the loop gathers
 * the writes made until its next wakeup into one record, as the kernel
 * would gather them into one segment (the subflows themselves always have
 * TCP_NODELAY: see the manual page).
 */
static bool nagle_holds(struct lconn *lc, const struct mps_sock *s, size_t len)
{
	return atomic_load_explicit(&s->nodelay, memory_order_relaxed) <= 1 &&
	       len < MPS_DIRECT_FULL && mps_conn_in_flight(lc->core);
}

/*
 * The loop lock for a direct send, or false.  A busy loop thread is most
 * often at the end of its pass: on one CPU the program it just woke has
 * preempted it, on two it finishes in microseconds.  Yielding a few
 * times lets it reach its wait and let go, which costs less than the
 * socketpair's way (the same two switches, plus a pass of the loop).
 */
static bool direct_lock(void)
{
	int i;

	for (i = 0; i < MPS_DIRECT_TRIES; i++) {
		if (pthread_mutex_trylock(&loop_mtx) == 0)
			return true;
		sched_yield();
	}
	return pthread_mutex_trylock(&loop_mtx) == 0;
}

size_t mps_loop_direct_send(struct mps_sock *s,
			    const struct iovec *iov,
			    int cnt,
			    size_t len)
{
	struct iovec room[2];
	struct lconn *lc;
	size_t took = 0, n;
	int i, queued, nroom;

	if (!mps_config.direct_send || !direct_lock())
		return 0;
	lc = s->lconn;
	if (!lc || lc->mode != LC_CORE || exiting || lc->app_eof ||
	    lc->app_gone || lc->aborting ||
	    mps_conn_state(lc->core) != MPS_CONN_ESTABLISHED)
		goto out;
	if (ioctl(lc->afd, FIONREAD, &queued) != 0 || queued != 0 ||
	    nagle_holds(lc, s, len))
		goto out;
	mps_conn_app_reserve(lc->core, room, &nroom);
	for (i = 0; i < cnt; i++) {
		n = mps_conn_app_write(lc->core, iov[i].iov_base, iov[i].iov_len);
		took += n;
		if (n < iov[i].iov_len)
			break;
	}
	if (took == 0)
		goto out;
	if (!mps_conn_checksums(lc->core))
		direct_spans_set(iov, cnt, room, nroom, took);
	mps_mib_add(MPS_MIB_DIRECT_BYTES, took);
	if (direct_pump(lc) && !lc->kicked) {
		lc->kicked = true;
		lc->next_kicked = kick_list;
		kick_list = lc;
		ev_async_send(loop, &kick_w);
	}
out:
	direct_nspans = 0;
	pthread_mutex_unlock(&loop_mtx);
	return took;
}

/* ---- the control socket (control.h: control.c calls in, loop thread) ---- */

/* The name of sf's local interface into buf, or NULL when unknown. */
static const char *sf_ifname(const struct lsf *sf, char *buf)
{
	if (sf->ifindex && if_indextoname(sf->ifindex, buf))
		return buf;
	return NULL;
}

/* Does sel name sf's local interface or address? */
static bool sf_selected(const struct lsf *sf, const struct mps_path_sel *sel)
{
	char name[IF_NAMESIZE];

	return mps_ctl_sel_match(
		sel, sf_ifname(sf, name), (const struct sockaddr *)&sf->local);
}

/* Apply control's backup rule for its interface or address, if there is
 * one, to live subflow num (its join may have said otherwise). */
static void steer_sf(struct lconn *lc, int num)
{
	struct lsf *sf = &lc->sf[num];
	struct mps_conn_info info;
	char name[IF_NAMESIZE];
	int on;

	if (lc->mode != LC_CORE || !sf_live(sf))
		return;
	on = mps_ctl_backup_for(sf_ifname(sf, name),
				(const struct sockaddr *)&sf->local);
	if (on < 0)
		return;
	mps_conn_get_info(lc->core, &info);
	if (info.sf[num].backup != (bool)on)
		mps_conn_set_backup(lc->core, num, on);
}

/* Subflow 0 has no SUBFLOW_ESTABLISHED event: steer it once the
 * connection is. */
static void steer_initial(struct lconn *lc)
{
	if (lc->steered0 || mps_conn_state(lc->core) != MPS_CONN_ESTABLISHED)
		return;
	lc->steered0 = true;
	steer_sf(lc, 0);
}

static void ctl_sf_view(struct lconn *lc,
			int num,
			const struct mps_sf_info *in,
			struct mps_ctl_sf *v)
{
	struct lsf *sf = &lc->sf[num];
	struct mps_sf_metrics m;
	char name[IF_NAMESIZE];

	v->num = num;
	v->state = in->state;
	v->join = in->join;
	v->backup = in->backup;
	v->peer_backup = in->peer_backup;
	v->bytes_out = in->bytes_out;
	v->bytes_in = in->bytes_in;
	v->reinjected = in->reinjected;
	mps_ctl_addr_str(sf->local.ss_family ? (struct sockaddr *)&sf->local
					     : NULL,
			 v->local,
			 sizeof(v->local));
	mps_ctl_addr_str(sf->peer.ss_family ? (struct sockaddr *)&sf->peer
					    : NULL,
			 v->remote,
			 sizeof(v->remote));
	if (sf_ifname(sf, name))
		memcpy(v->ifname, name, sizeof(v->ifname));
	if (sf_open(sf) && mps_pm_metrics(sf->fd, &m) == 0) {
		v->has_tcp_info = true;
		v->rtt_us = m.srtt_us;
		v->cwnd_bytes = m.cwnd_bytes;
	}
}

static void ctl_core_view(struct lconn *lc, struct mps_ctl_conn *v)
{
	struct mps_conn_info info;
	int i;

	mps_conn_get_info(lc->core, &info);
	v->has_core = true;
	v->state = info.state;
	v->version = info.version;
	v->checksum = info.checksum;
	v->local_token = info.local_token;
	v->peer_token = info.peer_token;
	v->sched = mps_conn_sched(lc->core);
	v->bytes_in = info.stats.bytes_in;
	v->bytes_out = info.stats.bytes_out;
	v->nsf = info.nsf < lc->nsf ? info.nsf : lc->nsf;
	for (i = 0; i < v->nsf; i++)
		ctl_sf_view(lc, i, &info.sf[i], &v->sf[i]);
}

static void ctl_conn_view(struct lconn *lc, int id, struct mps_ctl_conn *v)
{
	struct lsf *sf0 = &lc->sf[0];
	const struct sockaddr_storage *peer =
		sf0->peer.ss_family ? &sf0->peer : &lc->dst;

	memset(v, 0, sizeof(*v));
	v->id = id;
	v->mode = lc->mode == LC_CORE	 ? "mptcp"
		  : lc->mode == LC_RELAY ? "relay"
					 : "connecting";
	v->role = lc->kind == MPS_LOOP_SERVER ? "server" : "client";
	mps_ctl_addr_str(sf0->local.ss_family ? (struct sockaddr *)&sf0->local
					      : NULL,
			 v->local,
			 sizeof(v->local));
	mps_ctl_addr_str(peer->ss_family ? (const struct sockaddr *)peer
					 : NULL,
			 v->peer,
			 sizeof(v->peer));
	v->bytes_in = lc->relay_in;
	v->bytes_out = lc->relay_out;
	if (lc->mode == LC_CORE)
		ctl_core_view(lc, v);
}

int mps_loop_ctl_status(struct mps_ctl_buf *b, int *shown)
{
	struct mps_ctl_conn v;
	struct lconn *lc;
	int total = 0;

	for (lc = conns; lc; lc = lc->next) {
		ctl_conn_view(lc, total++, &v);
		if (mps_ctl_put_conn(b, &v) == 0)
			(*shown)++;
	}
	return total;
}

void mps_loop_ctl_counters(uint64_t *out)
{
	struct mps_conn_info info;
	struct lconn *lc;

	for (lc = conns; lc; lc = lc->next) {
		if (lc->mode != LC_CORE)
			continue;
		mps_conn_get_info(lc->core, &info);
		mps_mib_add_stats(
			out, &info.stats, lc->kind == MPS_LOOP_SERVER);
	}
}

int mps_loop_ctl_backup(const struct mps_path_sel *sel, bool on)
{
	struct lconn *lc, *next;
	int i, n = 0, before;

	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode != LC_CORE)
			continue;
		before = n;
		for (i = 0; i < lc->nsf; i++)
			if (sf_live(&lc->sf[i]) &&
			    sf_selected(&lc->sf[i], sel) &&
			    mps_conn_set_backup(lc->core, i, on) == 0)
				n++;
		if (n > before)
			lc_pump(lc); /* MP_PRIO goes out */
	}
	return n;
}

/* Is the announced address a what sel names? */
static bool ann_selected(const struct mps_addr *a,
			 const struct mps_path_sel *sel)
{
	struct sockaddr_storage ss;

	return mps_pm_from_wire(a, 0, a->family, &ss) > 0 &&
	       mps_ctl_sel_match(sel, NULL, (struct sockaddr *)&ss);
}

/* Close lc's subflows and joins from sel but its last live subflow;
 * returns how many subflows were closed. */
static int withdraw_subflows(struct lconn *lc, const struct mps_path_sel *sel)
{
	int i, n = 0;

	for (i = 0; i < lc->nsf; i++) {
		struct lsf *sf = &lc->sf[i];

		if (!sf_live(sf) || !sf_selected(sf, sel) ||
		    live_count(lc) <= 1)
			continue;
		mps_info("subflow-withdrawn", "sf=%d", i);
		sf_failed(lc, sf, ECONNABORTED);
		sf_close_fd(lc, sf, true);
		mps_mib_inc(MPS_MIB_SUBFLOW_WITHDRAWN);
		n++;
	}
	for (i = 0; i < natt(lc); i++) {
		struct latt *a = &lc->att[i];

		if (a->used && a->fd >= 0 &&
		    mps_ctl_sel_match(
			    sel, NULL, (struct sockaddr *)&a->path.addr))
			att_connected(lc, a, ECONNABORTED);
	}
	return n;
}

/* Does a live subflow of lc have the local address sel? */
static bool local_in_use(struct lconn *lc, const struct mps_path_sel *sel)
{
	int i;

	for (i = 0; i < lc->nsf; i++)
		if (sf_live(&lc->sf[i]) && sf_selected(&lc->sf[i], sel))
			return true;
	return false;
}

int mps_loop_ctl_withdraw(const struct mps_path_sel *sel, int *announced)
{
	struct lconn *lc, *next;
	int id, n = 0;

	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode != LC_CORE)
			continue;
		n += withdraw_subflows(lc, sel);
		/* a kept last subflow still uses it: the peer would close
		 * that one too on REMOVE_ADDR */
		for (id = 1; id <= lc->nann && !local_in_use(lc, sel); id++)
			if (ann_selected(&lc->ann[id - 1], sel) &&
			    mps_conn_withdraw(lc->core, (uint8_t)id) == 0)
				(*announced)++;
		lc_pump(lc);
	}
	return n;
}

int mps_loop_ctl_allow(void)
{
	struct lconn *lc, *next;
	int n = 0;

	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode != LC_CORE || lc->kind == MPS_LOOP_SERVER)
			continue;
		retry_now(lc);
		lc_pump(lc);
		n++;
	}
	return n;
}

int mps_loop_ctl_sched(int sched)
{
	struct lconn *lc, *next;
	int n = 0;

	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode != LC_CORE ||
		    mps_conn_set_sched(lc->core, sched) < 0)
			continue;
		lc_pump(lc);
		n++;
	}
	return n;
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
		return lc->sf[0].shut;
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
		if (!all_sf_out_empty(lc))
			return false;
		if (live_count(lc) > 0 && !core_finished(lc))
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

/*
 * The process is exiting: take what the program left in its end, and
 * once that end is empty, end the program's direction as if it had
 * closed it (DATA_FIN after the data).  Called before every pump while
 * exiting, because a core whose send buffer was full takes the rest
 * only as the peer acknowledges, and an end emptied by a short read
 * raises no further readiness event that would show it drained.
 */
static void exit_take_app(struct lconn *lc)
{
	int reads;

	/* read_app() treats EAGAIN as the end while exiting; a short read
	 * drains the end, so the second read sees EAGAIN */
	for (reads = 0; reads < 2; reads++) {
		if (lc->mode == LC_CONNECTING || lc->app_eof ||
		    app_in_room(lc) == 0)
			return;
		read_app(lc);
	}
}

/* The process is exiting: push what every connection holds toward the
 * kernel sockets (lc_pump() takes the program's bytes first). */
static void exit_drain(void)
{
	struct lconn *lc, *next;

	for (lc = conns; lc; lc = next) {
		next = lc->next;
		if (lc->mode == LC_CONNECTING || lc->app_eof)
			continue;
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
	mps_debug("exit", "drained=%d stalled_ms=%d", exit_drained, stalled_ms);
	mps_ctl_exit();
out_unlock:
	pthread_mutex_unlock(&queue_lock);
	mps_capture_flush();
}

/* ---- the thread ---- */

static void loop_release(struct ev_loop *l)
{
	(void)l;
	pthread_mutex_unlock(&loop_mtx);
}

static void loop_acquire(struct ev_loop *l)
{
	(void)l;
	pthread_mutex_lock(&loop_mtx);
}

static void *loop_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&loop_mtx);
	ev_run(loop, 0);
	pthread_mutex_unlock(&loop_mtx);
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
	mps_jl_init(loop, join_deliver);
	mps_ctl_start(loop);
	ev_async_init(&wakeup, wakeup_cb);
	ev_async_start(loop, &wakeup);
	ev_async_init(&kick_w, kick_cb);
	ev_async_start(loop, &kick_w);
	ev_set_loop_release_cb(loop, loop_release, loop_acquire);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&tid, NULL, loop_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		mps_ctl_exit();
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
	lc->sf[0].fd = req->kfd;
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
	pthread_mutex_init(&loop_mtx, NULL);
	pthread_cond_init(&exit_cond, NULL);
	loop = NULL;
	conns = NULL;
	kick_list = NULL;
	exiting = exit_asked = exit_drained = false;
	loop_pid = 0;
	loop_running = false;
	queue_head = queue_tail = NULL;
	closed_socks = NULL;
	closed_len = closed_cap = 0;
	tokens = NULL;
	nl_fd = -1;
	mps_jl_child();
	mps_ctl_child();
	mps_mib_child();
	mps_capture_child();
}
