/*
 * control.c: the control socket and the steering state (see control.h).
 *
 * Decisions:
 * - The loop never blocks on a client.  Everything is non-blocking; a
 *   request line is at most MPS_CTL_LINE_MAX bytes (longer: an error and
 *   the client is dropped); a reply is held up to MPS_CTL_REPLY_MAX bytes
 *   (status beyond that says "truncated"); while a reply waits, nothing
 *   more is read from its client, so a client that sends without reading
 *   only fills its own socket buffer; one idle for MPS_CTL_IDLE_S is
 *   dropped.  At most MPS_CTL_MAX_CLIENTS are served at once.
 * - Who may ask: the directory is created 0700 and refused when it is
 *   someone else's or open to group or others (a symlink counts as
 *   someone else's); the socket file is 0600; and each accepted client's
 *   SO_PEERCRED uid must be ours or root's.  The first two keep other
 *   users from reaching the socket, the last still holds if someone
 *   loosened the modes by hand.
 * - The socket is named by the pid, so a program that execs keeps its
 *   pid and leaves its old file: the new image's loop replaces it.  A
 *   process killed by a signal leaves its file too: mptcpshim status
 *   removes files whose process is gone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "fdtab.h"
#include "libc.h"
#include "log.h"
#include "mib.h"

/* A connected client; the loop thread's. */
struct ctl_client {
	int fd; /* -1: slot free */
	char in[MPS_CTL_LINE_MAX];
	size_t in_len;
	bool eof;     /* it shut down its side: answer, then close */
	bool closing; /* close once the reply is out */
	struct mps_ctl_buf out;
	ev_io r, w;
	ev_timer idle;
};

/* A backup override. */
struct ctl_backup {
	struct mps_path_sel sel;
	bool on;
};

static struct ev_loop *ctl_loop;
static int listen_fd = -1;
static ev_io listen_w;
static char sock_path[MPS_CTL_PATH_MAX];
static pid_t sock_pid; /* the process that made sock_path */
static struct ctl_client clients[MPS_CTL_MAX_CLIENTS];

/* Steering; the loop thread's. */
static struct ctl_backup backups[MPS_CTL_MAX_RULES];
static int nbackups;
static struct mps_path_sel withdrawn[MPS_CTL_MAX_RULES];
static int nwithdrawn;
static struct mps_path_sel added[MPS_CTL_MAX_RULES];
static int nadded;
static int sched_set = -1;

/* ---- steering state ---- */

static bool sel_equal(const struct mps_path_sel *a,
		      const struct mps_path_sel *b)
{
	return a->family == b->family &&
	       strcmp(a->ifname, b->ifname) == 0 &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* Remove sel from list; true when it was there. */
static bool sel_remove(struct mps_path_sel *list,
		       int *n,
		       const struct mps_path_sel *sel)
{
	int i;

	for (i = 0; i < *n; i++) {
		if (sel_equal(&list[i], sel)) {
			list[i] = list[--*n];
			return true;
		}
	}
	return false;
}

/* Add sel to list once; -ENOSPC when full. */
static int sel_add(struct mps_path_sel *list,
		   int *n,
		   const struct mps_path_sel *sel)
{
	int i;

	for (i = 0; i < *n; i++)
		if (sel_equal(&list[i], sel))
			return 0;
	if (*n == MPS_CTL_MAX_RULES)
		return -ENOSPC;
	list[(*n)++] = *sel;
	return 0;
}

/* sa with an IPv4-mapped IPv6 address (a dual-stack socket's) as IPv4,
 * into out; returns what to compare. */
static const struct sockaddr *unmapped(const struct sockaddr *sa,
				       struct sockaddr_in *out)
{
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	if (!sa || sa->sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
		return sa;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = v6->sin6_port;
	memcpy(&out->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
	return (const struct sockaddr *)out;
}

bool mps_ctl_sel_match(const struct mps_path_sel *sel,
		       const char *ifname,
		       const struct sockaddr *sa)
{
	struct sockaddr_in v4;

	return mps_config_sel_match(sel, ifname, unmapped(sa, &v4));
}

static bool sel_listed(const struct mps_path_sel *list,
		       int n,
		       const struct sockaddr *sa)
{
	int i;

	for (i = 0; i < n; i++)
		if (mps_ctl_sel_match(&list[i], NULL, sa))
			return true;
	return false;
}

int mps_ctl_sched(int dflt)
{
	return sched_set >= 0 ? sched_set : dflt;
}

int mps_ctl_backup_for(const char *ifname, const struct sockaddr *sa)
{
	int i;

	/* an address rule is more precise than an interface rule */
	for (i = 0; i < nbackups; i++)
		if (backups[i].sel.family &&
		    mps_ctl_sel_match(&backups[i].sel, ifname, sa))
			return backups[i].on;
	for (i = 0; i < nbackups; i++)
		if (!backups[i].sel.family &&
		    mps_ctl_sel_match(&backups[i].sel, ifname, sa))
			return backups[i].on;
	return -1;
}

bool mps_ctl_withdrawn(const struct sockaddr *sa)
{
	return sel_listed(withdrawn, nwithdrawn, sa);
}

bool mps_ctl_added(const struct sockaddr *sa)
{
	return sel_listed(added, nadded, sa);
}

static int backup_set(const struct mps_path_sel *sel, bool on)
{
	int i;

	for (i = 0; i < nbackups; i++) {
		if (sel_equal(&backups[i].sel, sel)) {
			backups[i].on = on;
			return 0;
		}
	}
	if (nbackups == MPS_CTL_MAX_RULES)
		return -ENOSPC;
	backups[nbackups].sel = *sel;
	backups[nbackups++].on = on;
	return 0;
}

/* ---- requests ---- */

static const char *sel_str(const struct mps_path_sel *sel,
			   char *buf,
			   size_t cap)
{
	if (!sel->family)
		snprintf(buf, cap, "%s", sel->ifname);
	else if (!inet_ntop(sel->family, sel->addr, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
	return buf;
}

static void put_steering(struct mps_ctl_buf *b)
{
	char s[INET6_ADDRSTRLEN];
	int i;

	for (i = 0; i < nbackups; i++)
		mps_ctl_printf(b,
			       "steer backup=%s on=%d\n",
			       sel_str(&backups[i].sel, s, sizeof(s)),
			       (int)backups[i].on);
	for (i = 0; i < nwithdrawn; i++)
		mps_ctl_printf(b,
			       "steer withdrawn=%s\n",
			       sel_str(&withdrawn[i], s, sizeof(s)));
	for (i = 0; i < nadded; i++)
		mps_ctl_printf(b,
			       "steer added=%s\n",
			       sel_str(&added[i], s, sizeof(s)));
}

static int do_status(struct mps_ctl_buf *b)
{
	int shown = 0, total;
	int err = mps_ctl_printf(b,
				 "process pid=%ld proto=%d scheduler=%s\n",
				 (long)getpid(),
				 MPS_CTL_PROTO,
				 mps_ctl_sched_name(
					 mps_ctl_sched(mps_config.sched)));

	if (err)
		return err;
	put_steering(b);
	/* keep room for the last lines whatever the connections take */
	b->max -= 128;
	total = mps_loop_ctl_status(b, &shown);
	b->max += 128;
	if (shown < total)
		return mps_ctl_printf(
			b, "truncated shown=%d conns=%d\n", shown, total);
	return 0;
}

static int do_counters(struct mps_ctl_buf *b)
{
	uint64_t v[MPS_MIB_COUNT];
	int i, err = 0;

	mps_mib_snapshot(v);
	mps_loop_ctl_counters(v);
	for (i = 0; i < MPS_MIB_COUNT && !err; i++)
		err = mps_ctl_printf(b,
				     "counter %s=%llu\n",
				     mps_mib_name((enum mps_mib_id)i),
				     (unsigned long long)v[i]);
	return err;
}

static int do_backup(struct mps_ctl_buf *b, const struct mps_ctl_req *r)
{
	char s[INET6_ADDRSTRLEN];
	int err = backup_set(&r->sel, r->on), n;

	if (err)
		return err;
	sel_str(&r->sel, s, sizeof(s));
	n = mps_loop_ctl_backup(&r->sel, r->on);
	mps_info("control-backup",
		 "sel=%s on=%d subflows=%d",
		 s,
		 (int)r->on,
		 n);
	return mps_ctl_printf(b,
			      "backup sel=%s on=%d subflows=%d\n",
			      s,
			      (int)r->on,
			      n);
}

static int do_addr(struct mps_ctl_buf *b, const struct mps_ctl_req *r)
{
	char s[INET6_ADDRSTRLEN];
	int n, ann = 0, err;

	sel_str(&r->sel, s, sizeof(s));
	if (r->verb == MPS_CTL_ADDR_ADD) {
		sel_remove(withdrawn, &nwithdrawn, &r->sel);
		err = sel_add(added, &nadded, &r->sel);
		if (err)
			return err;
		n = mps_loop_ctl_allow();
		mps_info("control-addr", "add=%s conns=%d", s, n);
		return mps_ctl_printf(b, "addr add=%s conns=%d\n", s, n);
	}
	sel_remove(added, &nadded, &r->sel);
	err = sel_add(withdrawn, &nwithdrawn, &r->sel);
	if (err)
		return err;
	n = mps_loop_ctl_withdraw(&r->sel, &ann);
	mps_info("control-addr", "del=%s subflows=%d removed=%d", s, n, ann);
	return mps_ctl_printf(
		b, "addr del=%s subflows=%d remove_addr=%d\n", s, n, ann);
}

static int do_sched(struct mps_ctl_buf *b, const struct mps_ctl_req *r)
{
	int n;

	sched_set = r->sched;
	n = mps_loop_ctl_sched(r->sched);
	mps_info("control-scheduler",
		 "name=%s conns=%d",
		 mps_ctl_sched_name(r->sched),
		 n);
	return mps_ctl_printf(b,
			      "scheduler name=%s conns=%d\n",
			      mps_ctl_sched_name(r->sched),
			      n);
}

static int dispatch(struct mps_ctl_buf *b, const struct mps_ctl_req *r)
{
	switch (r->verb) {
	case MPS_CTL_STATUS:
		return do_status(b);
	case MPS_CTL_COUNTERS:
		return do_counters(b);
	case MPS_CTL_BACKUP:
		return do_backup(b, r);
	case MPS_CTL_ADDR_ADD:
	case MPS_CTL_ADDR_DEL:
		return do_addr(b, r);
	case MPS_CTL_SCHEDULER:
		return do_sched(b, r);
	}
	return -EINVAL;
}

/*
 * Answer one request line into c's reply.  A reply that does not fit
 * (a client that pipelines without reading) drops the client.
 */
static void answer(struct ctl_client *c, const char *line)
{
	struct mps_ctl_req req;
	const char *why;
	size_t start = c->out.len;
	int err;

	if (mps_ctl_parse_request(line, &req, &why) < 0) {
		mps_ctl_printf(&c->out, "error einval %s\n", why);
		return;
	}
	err = dispatch(&c->out, &req);
	if (err == -ENOSPC) {
		c->out.len = start;
		mps_ctl_printf(&c->out, "error enospc too many rules\n");
		return;
	}
	if (err == 0 && mps_ctl_printf(&c->out, "end\n") == 0)
		return;
	c->out.len = start;
	if (mps_ctl_printf(&c->out, "error enobufs reply too large\n") < 0 ||
	    start > 0)
		c->closing = true;
}

/* ---- clients ---- */

static void client_drop(struct ctl_client *c)
{
	ev_io_stop(ctl_loop, &c->r);
	ev_io_stop(ctl_loop, &c->w);
	ev_timer_stop(ctl_loop, &c->idle);
	mps_fdtab_close(c->fd);
	c->fd = -1;
	mps_ctl_buf_free(&c->out);
}

/* Answer every complete line held; a full buffer without one is an
 * error that ends the client. */
static void client_lines(struct ctl_client *c)
{
	char *nl;
	size_t used;

	while (!c->closing && (nl = memchr(c->in, '\n', c->in_len))) {
		*nl = '\0';
		if (nl > c->in && nl[-1] == '\r')
			nl[-1] = '\0';
		if (c->in[0])
			answer(c, c->in);
		used = (size_t)(nl - c->in) + 1;
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
	/* a last request without its newline */
	if (!c->closing && c->eof && c->in_len > 0 &&
	    c->in_len < sizeof(c->in)) {
		c->in[c->in_len] = '\0';
		answer(c, c->in);
		c->in_len = 0;
	}
	if (!c->closing && c->in_len == sizeof(c->in)) {
		mps_ctl_printf(&c->out, "error einval request too long\n");
		mps_mib_inc(MPS_MIB_CTL_DROPPED);
		c->closing = true;
	}
	if (c->eof)
		c->closing = true;
}

/* Watch for what the client's state needs; drop it when it is done. */
static void client_arm(struct ctl_client *c)
{
	bool sending = c->out.len > 0;

	if (!sending && c->closing) {
		client_drop(c);
		return;
	}
	if (sending && !ev_is_active(&c->w))
		ev_io_start(ctl_loop, &c->w);
	if (!sending && ev_is_active(&c->w))
		ev_io_stop(ctl_loop, &c->w);
	/* a reply waits: read nothing more until it is out */
	if (!sending && !c->closing && !ev_is_active(&c->r))
		ev_io_start(ctl_loop, &c->r);
	if ((sending || c->closing) && ev_is_active(&c->r))
		ev_io_stop(ctl_loop, &c->r);
	ev_timer_again(ctl_loop, &c->idle);
}

static void client_read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	ssize_t n;

	(void)l;
	(void)revents;
	n = mps_libc()->read(
		c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		c->eof = true;
	else
		c->in_len += (size_t)n;
	client_lines(c);
	client_arm(c);
}

static void client_write_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	ssize_t n;

	(void)l;
	(void)revents;
	n = mps_libc()->send(
		c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		client_drop(c);
		return;
	}
	mps_ctl_buf_consume(&c->out, (size_t)n);
	if (c->out.len == 0)
		client_lines(c); /* requests that waited behind the reply */
	client_arm(c);
}

static void client_idle_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)revents;
	mps_mib_inc(MPS_MIB_CTL_DROPPED);
	client_drop(w->data);
}

/* Is the peer of fd our own user, or root? */
static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (mps_libc()->getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) <
	    0)
		return false;
	return cred.uid == geteuid() || cred.uid == 0;
}

/* Refuse fd: say why, in one write that may not block, and close it. */
static void refuse(int fd, const char *line)
{
	mps_libc()->send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	mps_fdtab_close(fd);
}

static struct ctl_client *client_slot(void)
{
	int i;

	for (i = 0; i < MPS_CTL_MAX_CLIENTS; i++)
		if (clients[i].fd < 0)
			return &clients[i];
	return NULL;
}

static void client_start(struct ctl_client *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	mps_ctl_buf_init(&c->out, MPS_CTL_REPLY_MAX);
	ev_io_init(&c->r, client_read_cb, fd, EV_READ);
	ev_io_init(&c->w, client_write_cb, fd, EV_WRITE);
	ev_init(&c->idle, client_idle_cb);
	c->idle.repeat = MPS_CTL_IDLE_S;
	c->r.data = c->w.data = c->idle.data = c;
	client_arm(c);
}

static int accept_fd(void)
{
	int fd;

	mps_fdtab_lock();
	fd = mps_libc()->accept4(
		listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		fd = mps_fdtab_own_locked(fd);
	mps_fdtab_unlock();
	return fd;
}

static void listen_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct ctl_client *c;
	int i, fd;

	(void)l;
	(void)w;
	(void)revents;
	for (i = 0; i < MPS_CTL_MAX_CLIENTS; i++) {
		fd = accept_fd();
		if (fd < 0)
			return;
		if (!peer_allowed(fd)) {
			mps_mib_inc(MPS_MIB_CTL_REFUSED);
			refuse(fd, "error eperm not the process's user\n");
			continue;
		}
		c = client_slot();
		if (!c) {
			mps_mib_inc(MPS_MIB_CTL_DROPPED);
			refuse(fd, "error ebusy too many control clients\n");
			continue;
		}
		client_start(c, fd);
	}
}

/* ---- the socket ---- */

/* The directory, created if missing and checked; 0 or -errno. */
static int ctl_dir(char *dir, size_t cap)
{
	int err = mps_ctl_dir(dir, cap, mps_config.runtime_dir, geteuid());

	if (err)
		return err;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return mps_ctl_check_dir(dir, geteuid());
}

/* A listening unix socket at path, loop-owned; fd or -errno. */
static int ctl_listen(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, err = 0;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = mps_fdtab_own_socket(AF_UNIX);
	if (fd < 0)
		return fd;
	/* a file of our pid is a leftover of this pid's earlier image */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0600) < 0 || mps_libc()->listen(fd, 8) < 0) {
		err = -errno;
		mps_fdtab_close(fd);
		return err;
	}
	return fd;
}

int mps_ctl_start(struct ev_loop *loop)
{
	char dir[MPS_CTL_PATH_MAX] = "", path[MPS_CTL_PATH_MAX];
	int i, err;

	ctl_loop = loop;
	for (i = 0; i < MPS_CTL_MAX_CLIENTS; i++)
		clients[i].fd = -1;
	if (!mps_config.control || listen_fd >= 0)
		return 0;
	err = ctl_dir(dir, sizeof(dir));
	if (err == 0)
		err = mps_ctl_sock_path(
			path, sizeof(path), dir, (long)getpid());
	if (err == 0)
		err = listen_fd = ctl_listen(path);
	if (err < 0) {
		listen_fd = -1;
		mps_warn("control", "dir=%s err=%d", dir, -err);
		return 0;
	}
	memcpy(sock_path, path, sizeof(sock_path));
	sock_pid = getpid();
	ev_io_init(&listen_w, listen_cb, listen_fd, EV_READ);
	ev_io_start(loop, &listen_w);
	mps_debug("control", "path=%s", sock_path);
	return 0;
}

void mps_ctl_exit(void)
{
	if (sock_path[0] && sock_pid == getpid())
		unlink(sock_path);
}

void mps_ctl_child(void)
{
	int i;

	for (i = 0; i < MPS_CTL_MAX_CLIENTS; i++) {
		if (clients[i].fd >= 0)
			mps_ctl_buf_free(&clients[i].out);
		clients[i].fd = -1;
	}
	listen_fd = -1;
	sock_path[0] = '\0';
	sock_pid = 0;
	ctl_loop = NULL;
}
