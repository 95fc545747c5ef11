/*
 * ctlproto.c: the control protocol's pure parts (see ctlproto.h).
 *
 * Decision: replies are plain text, one record per line, so that a shell
 * script can read them with a few words of awk and the library needs no
 * JSON code; the command turns them into JSON for those who want it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctlproto.h"
#include "pathsel.h"

#define MAX_WORDS 4

/* Split s (modified) at blanks into at most max words; how many, or
 * max + 1 when there are more. */
static int words(char *s, char **w, int max)
{
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(s, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = tok;
	}
	return n;
}

static int parse_sched(const char *s, int *sched)
{
	int i;

	for (i = MPS_SCHED_EARLIEST; i <= MPS_SCHED_REDUNDANT; i++) {
		if (strcmp(s, mps_ctl_sched_name(i)) == 0) {
			*sched = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_backup(char **w, int n, struct mps_ctl_req *req,
			const char **why)
{
	if (n != 3) {
		*why = "usage: backup IFNAME|ADDR on|off";
		return -EINVAL;
	}
	if (mps_pathsel_parse(w[1], &req->sel) < 0) {
		*why = "not an interface name or an address";
		return -EINVAL;
	}
	if (strcmp(w[2], "on") != 0 && strcmp(w[2], "off") != 0) {
		*why = "backup takes on or off";
		return -EINVAL;
	}
	req->on = strcmp(w[2], "on") == 0;
	req->verb = MPS_CTL_BACKUP;
	return 0;
}

static int parse_addr_req(char **w, int n, struct mps_ctl_req *req,
			  const char **why)
{
	if (n != 3 || (strcmp(w[1], "add") != 0 && strcmp(w[1], "del") != 0)) {
		*why = "usage: addr add|del ADDR";
		return -EINVAL;
	}
	if (mps_pathsel_addr(w[2], &req->sel) < 0) {
		*why = "not an IPv4 or IPv6 address";
		return -EINVAL;
	}
	req->verb = strcmp(w[1], "add") == 0 ? MPS_CTL_ADDR_ADD
					      : MPS_CTL_ADDR_DEL;
	return 0;
}

int mps_ctl_parse_request(const char *line,
			  struct mps_ctl_req *req,
			  const char **why)
{
	char copy[MPS_CTL_LINE_MAX], *w[MAX_WORDS];
	int n;

	memset(req, 0, sizeof(*req));
	*why = "unknown request";
	if (strlen(line) >= sizeof(copy)) {
		*why = "request too long";
		return -EINVAL;
	}
	strcpy(copy, line);
	n = words(copy, w, MAX_WORDS);
	if (n == 0 || n > MAX_WORDS)
		return -EINVAL;
	if (strcmp(w[0], "status") == 0 || strcmp(w[0], "counters") == 0) {
		req->verb = w[0][0] == 's' ? MPS_CTL_STATUS : MPS_CTL_COUNTERS;
		return n == 1 ? 0 : -EINVAL;
	}
	if (strcmp(w[0], "backup") == 0)
		return parse_backup(w, n, req, why);
	if (strcmp(w[0], "addr") == 0)
		return parse_addr_req(w, n, req, why);
	if (strcmp(w[0], "scheduler") != 0)
		return -EINVAL;
	if (n == 2 && parse_sched(w[1], &req->sched) == 0) {
		req->verb = MPS_CTL_SCHEDULER;
		return 0;
	}
	*why = "scheduler takes earliest, roundrobin or redundant";
	return -EINVAL;
}

/* ---- reply buffers ---- */

void mps_ctl_buf_init(struct mps_ctl_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void mps_ctl_buf_free(struct mps_ctl_buf *b)
{
	free(b->data);
	mps_ctl_buf_init(b, b->max);
}

void mps_ctl_buf_consume(struct mps_ctl_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* Room for need more bytes (and a NUL); 0, -ENOBUFS or -ENOMEM. */
static int buf_reserve(struct mps_ctl_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *grown;

	if (b->len + need > b->max)
		return -ENOBUFS;
	if (b->len + need + 1 <= b->cap)
		return 0;
	while (cap < b->len + need + 1)
		cap *= 2;
	grown = realloc(b->data, cap);
	if (!grown)
		return -ENOMEM;
	b->data = grown;
	b->cap = cap;
	return 0;
}

int mps_ctl_printf(struct mps_ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	err = buf_reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* ---- status lines ---- */

const char *mps_ctl_sched_name(int sched)
{
	switch (sched) {
	case MPS_SCHED_EARLIEST:
		return "earliest";
	case MPS_SCHED_ROUNDROBIN:
		return "roundrobin";
	case MPS_SCHED_REDUNDANT:
		return "redundant";
	}
	return "unknown";
}

const char *mps_ctl_state_name(enum mps_conn_state st)
{
	switch (st) {
	case MPS_CONN_HANDSHAKE:
		return "handshake";
	case MPS_CONN_ESTABLISHED:
		return "established";
	case MPS_CONN_FALLBACK:
		return "fallback";
	case MPS_CONN_CLOSED:
		return "closed";
	case MPS_CONN_RESET:
		return "reset";
	}
	return "unknown";
}

const char *mps_ctl_sf_state_name(enum mps_sf_state st)
{
	switch (st) {
	case MPS_SF_UNUSED:
		return "unused";
	case MPS_SF_JOINING:
		return "joining";
	case MPS_SF_ESTABLISHED:
		return "established";
	case MPS_SF_STALLED:
		return "stalled";
	case MPS_SF_FAILED:
		return "failed";
	case MPS_SF_CLOSED:
		return "closed";
	}
	return "unknown";
}

const char *mps_ctl_addr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
	char a[INET6_ADDRSTRLEN];

	if (sa && sa->sa_family == AF_INET &&
	    inet_ntop(AF_INET, &v4->sin_addr, a, sizeof(a)))
		snprintf(buf, cap, "%s:%u", a, ntohs(v4->sin_port));
	else if (sa && sa->sa_family == AF_INET6 &&
		 inet_ntop(AF_INET6, &v6->sin6_addr, a, sizeof(a)))
		snprintf(buf, cap, "[%s]:%u", a, ntohs(v6->sin6_port));
	else
		snprintf(buf, cap, "-");
	return buf;
}

/* A string value as the protocol carries it: no blanks, never empty. */
static const char *word(const char *s)
{
	return s[0] && !strpbrk(s, " \t\n=") ? s : "-";
}

static int put_conn_head(struct mps_ctl_buf *b, const struct mps_ctl_conn *c)
{
	return mps_ctl_printf(b,
			      "conn id=%d mode=%s role=%s local=%s peer=%s "
			      "bytes_in=%llu bytes_out=%llu",
			      c->id,
			      c->mode,
			      c->role,
			      word(c->local),
			      word(c->peer),
			      (unsigned long long)c->bytes_in,
			      (unsigned long long)c->bytes_out);
}

static int put_conn_core(struct mps_ctl_buf *b, const struct mps_ctl_conn *c)
{
	return mps_ctl_printf(b,
			      " state=%s version=%d checksum=%d "
			      "scheduler=%s local_token=0x%08x "
			      "peer_token=0x%08x subflows=%d",
			      mps_ctl_state_name(c->state),
			      c->version,
			      (int)c->checksum,
			      mps_ctl_sched_name(c->sched),
			      (unsigned int)c->local_token,
			      (unsigned int)c->peer_token,
			      c->nsf);
}

static int put_sf(struct mps_ctl_buf *b, int conn, const struct mps_ctl_sf *s)
{
	int err = mps_ctl_printf(
		b,
		"subflow conn=%d num=%d state=%s join=%d local=%s "
		"remote=%s ifname=%s backup=%d peer_backup=%d "
		"bytes_out=%llu bytes_in=%llu reinjected=%llu",
		conn,
		s->num,
		mps_ctl_sf_state_name(s->state),
		(int)s->join,
		word(s->local),
		word(s->remote),
		word(s->ifname),
		(int)s->backup,
		(int)s->peer_backup,
		(unsigned long long)s->bytes_out,
		(unsigned long long)s->bytes_in,
		(unsigned long long)s->reinjected);

	if (!err && s->has_tcp_info)
		err = mps_ctl_printf(b,
				     " rtt_us=%u cwnd_bytes=%llu",
				     (unsigned int)s->rtt_us,
				     (unsigned long long)s->cwnd_bytes);
	return err ? err : mps_ctl_printf(b, "\n");
}

int mps_ctl_put_conn(struct mps_ctl_buf *b, const struct mps_ctl_conn *c)
{
	size_t start = b->len;
	int err = put_conn_head(b, c), i;

	if (!err && c->has_core)
		err = put_conn_core(b, c);
	if (!err)
		err = mps_ctl_printf(b, "\n");
	for (i = 0; !err && c->has_core && i < c->nsf; i++)
		err = put_sf(b, c->id, &c->sf[i]);
	if (err)
		b->len = start; /* all of a connection or none of it */
	return err;
}

/* ---- reading replies ---- */

int mps_ctl_split(char *line,
		  const char **type,
		  struct mps_ctl_kv *kv,
		  int max)
{
	char *save = NULL, *tok, *eq;
	int n = 0;

	tok = strtok_r(line, " \t\r\n", &save);
	if (!tok)
		return -EINVAL;
	*type = tok;
	while (n < max && (tok = strtok_r(NULL, " \t\r\n", &save))) {
		eq = strchr(tok, '=');
		kv[n].key = tok;
		kv[n].value = "";
		if (eq) {
			*eq = '\0';
			kv[n].value = eq + 1;
		}
		n++;
	}
	return n;
}

/* ---- where the sockets are ---- */

int mps_ctl_dir(char *buf, size_t cap, const char *xdg, uid_t uid)
{
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/mptcpshim", xdg);
	else
		n = snprintf(
			buf, cap, "/tmp/mptcpshim-%lu", (unsigned long)uid);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int mps_ctl_check_dir(const char *dir, uid_t uid)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid ||
	    (st.st_mode & (S_IRWXG | S_IRWXO)))
		return -EPERM;
	return 0;
}

int mps_ctl_sock_path(char *buf, size_t cap, const char *dir, long pid)
{
	int n = snprintf(buf, cap, "%s/%ld.sock", dir, pid);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
