/*
 * status.c: the mptcpshim command's control subcommands (status.h).
 *
 * Decisions:
 * - Without a PID, status and counters ask every process of the user
 *   with a socket in the directory (ctlproto.h, mps_ctl_dir()).  A
 *   socket whose process is gone, or that nobody listens on any more
 *   (a process killed by a signal, or one that exec'd a program without
 *   the library), is stale: it is removed, but only from a directory
 *   that is the user's own.
 * - --json is built with json-c from the reply lines: a value of digits
 *   is a number, anything else a string.  The library itself has no JSON
 *   code.
 * - A process gets 5 seconds to answer; its loop answers between two
 *   batches of traffic, so that is plenty unless it is stopped.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"
#include "status.h"

#define ANSWER_TIMEOUT_S 5
#define MAX_PIDS 1024
#define MAX_PAIRS 32

/* A reply: its lines, NUL-terminated in place. */
struct reply {
	char *text;
	char **lines;
	int nlines;
	const char *error; /* the "error" line's text, or NULL */
};

static volatile sig_atomic_t interrupted;

static void reply_free(struct reply *r)
{
	free(r->text);
	free(r->lines);
	memset(r, 0, sizeof(*r));
}

static int ctl_dir(char *dir, size_t cap)
{
	return mps_ctl_dir(dir, cap, getenv("XDG_RUNTIME_DIR"), geteuid());
}

/* Connect to pid's socket; fd or -errno. */
static int ctl_connect(long pid)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = ANSWER_TIMEOUT_S};
	char dir[MPS_CTL_PATH_MAX];
	int fd, err;

	if (ctl_dir(dir, sizeof(dir)) < 0 ||
	    mps_ctl_sock_path(
		    sun.sun_path, sizeof(sun.sun_path), dir, pid) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Is the last complete line of buf[0..len) "end" or an error? */
static bool reply_complete(const char *buf, size_t len)
{
	size_t start;

	if (len == 0 || buf[len - 1] != '\n')
		return false;
	start = len - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	return strcmp(buf + start, "end\n") == 0 ||
	       strncmp(buf + start, "error ", 6) == 0;
}

/* Read until the reply's last line; its text into *text.  0 or -errno. */
static int read_reply(int fd, char **text)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap), *grown;
	ssize_t n;
	int err = -ECONNRESET;

	while (buf) {
		if (len + 1 >= cap) {
			grown = cap < MPS_CTL_REPLY_MAX * 2
					? realloc(buf, cap * 2)
					: NULL;
			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR && !interrupted)
			continue;
		if (n < 0)
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (reply_complete(buf, len))
			break;
	}
	if (!buf)
		return -ENOMEM;
	buf[len] = '\0';
	*text = buf;
	return reply_complete(buf, len) ? 0 : err;
}

/* Cut text into lines; the reply ends with "end" or "error". */
static int split_lines(struct reply *r)
{
	char *save = NULL, *line;
	int cap = 64;

	r->lines = malloc(sizeof(*r->lines) * (size_t)cap);
	for (line = strtok_r(r->text, "\n", &save); line && r->lines;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "error ", 6) == 0) {
			r->error = line + 6;
			return -EPROTO;
		}
		if (strcmp(line, "end") == 0)
			return 0;
		if (r->nlines == cap) {
			size_t size = sizeof(*r->lines) * (size_t)cap * 2;
			char **grown = realloc(r->lines, size);

			if (!grown)
				return -ENOMEM;
			r->lines = grown;
			cap *= 2;
		}
		r->lines[r->nlines++] = line;
	}
	return r->lines ? -EPROTO : -ENOMEM;
}

/*
 * Ask pid one request.  0 with the reply's lines, -EPROTO with
 * r->error set when the process answered an error, or -errno.
 */
static int ask(long pid, const char *request, struct reply *r)
{
	int fd = ctl_connect(pid), err;
	size_t len = strlen(request);

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return fd;
	/* a refused client is told why and closed: read that even when
	 * the request could not be written */
	if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
		err = errno ? -errno : -EIO;
	else
		err = 0;
	if (read_reply(fd, &r->text) == 0)
		err = 0;
	else if (!err)
		err = -ECONNRESET;
	close(fd);
	if (err)
		return err;
	err = split_lines(r);
	if (err == -EPROTO && !r->error)
		r->error = "the reply ended early";
	return err;
}

/* Print why pid could not be asked; returns 1, the exit status. */
static int complain(long pid, int err, const struct reply *r)
{
	if (err == -EPROTO)
		fprintf(stderr, "mptcpshim: %ld: %s\n", pid, r->error);
	else if (err == -ENOENT || err == -ECONNREFUSED)
		fprintf(stderr,
			"mptcpshim: %ld: no control socket (not shimmed, "
			"no connection yet, MPTCPSHIM_CONTROL=0, or gone)\n",
			pid);
	else
		fprintf(stderr, "mptcpshim: %ld: %s\n", pid, strerror(-err));
	return 1;
}

/* ---- which processes ---- */

static bool pid_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Remove pid's socket file, from our own directory only. */
static void remove_stale(const char *dir, long pid)
{
	char path[MPS_CTL_PATH_MAX];

	if (mps_ctl_check_dir(dir, geteuid()) == 0 &&
	    mps_ctl_sock_path(path, sizeof(path), dir, pid) == 0)
		unlink(path);
}

/* "123.sock" as 123, or -1. */
static long sock_pid(const char *name)
{
	char *end;
	long pid;

	if (!isdigit((unsigned char)name[0]))
		return -1;
	pid = strtol(name, &end, 10);
	return strcmp(end, ".sock") == 0 && pid > 0 ? pid : -1;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/* The pids with a live socket in the directory, sorted; how many. */
static int list_pids(long *pids, int max)
{
	char dir[MPS_CTL_PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;
	long pid;

	if (ctl_dir(dir, sizeof(dir)) < 0 || !(d = opendir(dir)))
		return 0;
	while ((de = readdir(d)) && n < max) {
		pid = sock_pid(de->d_name);
		if (pid < 0)
			continue;
		if (pid_alive(pid))
			pids[n++] = pid;
		else
			remove_stale(dir, pid);
	}
	closedir(d);
	qsort(pids, (size_t)n, sizeof(*pids), cmp_long);
	return n;
}

/* Ask pid, treating a socket nobody listens on as stale (when asking
 * every process, quiet is true and such a process is skipped). */
static int ask_listed(long pid, const char *request, struct reply *r)
{
	char dir[MPS_CTL_PATH_MAX];
	int err = ask(pid, request, r);

	if (err == -ECONNREFUSED && ctl_dir(dir, sizeof(dir)) == 0)
		remove_stale(dir, pid);
	return err;
}

/* ---- JSON ---- */

static json_object *json_value(const char *v)
{
	const char *p = v;

	while (*p >= '0' && *p <= '9')
		p++;
	if (*v && !*p && p - v < 20)
		return json_object_new_uint64(strtoull(v, NULL, 10));
	return json_object_new_string(v);
}

/* The pairs of line into obj; the line is cut up.  Its type, or NULL. */
static const char *json_pairs(char *line, json_object *obj)
{
	struct mps_ctl_kv kv[MAX_PAIRS];
	const char *type;
	int i, n = mps_ctl_split(line, &type, kv, MAX_PAIRS);

	if (n < 0)
		return NULL;
	for (i = 0; i < n; i++)
		json_object_object_add(obj, kv[i].key, json_value(kv[i].value));
	return type;
}

/* The subflow's connection object, by its conn= id, or NULL. */
static json_object *json_conn_of(json_object *conns, json_object *sf)
{
	json_object *id, *c, *cid;
	size_t i;

	if (!json_object_object_get_ex(sf, "conn", &id))
		return NULL;
	for (i = 0; i < json_object_array_length(conns); i++) {
		c = json_object_array_get_idx(conns, i);
		if (json_object_object_get_ex(c, "id", &cid) &&
		    json_object_get_int64(cid) == json_object_get_int64(id))
			return c;
	}
	return NULL;
}

static void json_add_subflow(json_object *conns, json_object *sf)
{
	json_object *c = json_conn_of(conns, sf), *list;

	if (!c) {
		json_object_put(sf);
		return;
	}
	json_object_object_get_ex(c, "subflows", &list);
	json_object_array_add(list, sf);
}

/* One line of a status reply into the process object. */
static void json_status_line(json_object *proc, char *line)
{
	json_object *obj = json_object_new_object(), *conns, *steer;
	const char *type = json_pairs(line, obj);

	json_object_object_get_ex(proc, "connections", &conns);
	json_object_object_get_ex(proc, "steering", &steer);
	if (type && strcmp(type, "process") == 0) {
		json_object_object_foreach(obj, key, val)
			json_object_object_add(
				proc, key, json_object_get(val));
		json_object_put(obj);
	} else if (type && strcmp(type, "conn") == 0) {
		json_object_object_add(
			obj, "subflows", json_object_new_array());
		json_object_array_add(conns, obj);
	} else if (type && strcmp(type, "subflow") == 0) {
		json_add_subflow(conns, obj);
	} else if (type && strcmp(type, "steer") == 0) {
		json_object_array_add(steer, obj);
	} else if (type && strcmp(type, "truncated") == 0) {
		json_object_object_add(proc, "truncated", obj);
	} else {
		json_object_put(obj);
	}
}

static json_object *json_status(long pid, struct reply *r)
{
	json_object *proc = json_object_new_object();
	int i;

	json_object_object_add(proc, "pid", json_object_new_int64(pid));
	json_object_object_add(
		proc, "connections", json_object_new_array());
	json_object_object_add(proc, "steering", json_object_new_array());
	for (i = 0; i < r->nlines; i++)
		json_status_line(proc, r->lines[i]);
	return proc;
}

static json_object *json_counters(long pid, struct reply *r)
{
	json_object *proc = json_object_new_object();
	json_object *all = json_object_new_object();
	int i;

	json_object_object_add(proc, "pid", json_object_new_int64(pid));
	for (i = 0; i < r->nlines; i++)
		json_pairs(r->lines[i], all);
	json_object_object_add(proc, "counters", all);
	return proc;
}

static void json_print(json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY));
	json_object_put(obj);
}

/* ---- text ---- */

/* The value of key among the pairs of a split line, or "-". */
static const char *kv_get(const struct mps_ctl_kv *kv, int n, const char *key)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	return "-";
}

static void text_conn(const struct mps_ctl_kv *kv, int n)
{
	printf("  conn %s %s %s %s v%s csum=%s sched=%s %s -> %s "
	       "in=%s out=%s tokens=%s/%s\n",
	       kv_get(kv, n, "id"),
	       kv_get(kv, n, "mode"),
	       kv_get(kv, n, "role"),
	       kv_get(kv, n, "state"),
	       kv_get(kv, n, "version"),
	       kv_get(kv, n, "checksum"),
	       kv_get(kv, n, "scheduler"),
	       kv_get(kv, n, "local"),
	       kv_get(kv, n, "peer"),
	       kv_get(kv, n, "bytes_in"),
	       kv_get(kv, n, "bytes_out"),
	       kv_get(kv, n, "local_token"),
	       kv_get(kv, n, "peer_token"));
}

static void text_subflow(const struct mps_ctl_kv *kv, int n)
{
	printf("    sf %s %-11s %-6s %s -> %s backup=%s/%s rtt_us=%s "
	       "cwnd=%s out=%s in=%s reinjected=%s\n",
	       kv_get(kv, n, "num"),
	       kv_get(kv, n, "state"),
	       kv_get(kv, n, "ifname"),
	       kv_get(kv, n, "local"),
	       kv_get(kv, n, "remote"),
	       kv_get(kv, n, "backup"),
	       kv_get(kv, n, "peer_backup"),
	       kv_get(kv, n, "rtt_us"),
	       kv_get(kv, n, "cwnd_bytes"),
	       kv_get(kv, n, "bytes_out"),
	       kv_get(kv, n, "bytes_in"),
	       kv_get(kv, n, "reinjected"));
}

/* A status reply as an indented table: process, connections, subflows. */
static void text_status(long pid, struct reply *r)
{
	struct mps_ctl_kv kv[MAX_PAIRS];
	const char *type;
	int i, n;

	for (i = 0; i < r->nlines; i++) {
		n = mps_ctl_split(r->lines[i], &type, kv, MAX_PAIRS);
		if (n < 0)
			continue;
		if (strcmp(type, "process") == 0)
			printf("pid %ld scheduler=%s\n",
			       pid,
			       kv_get(kv, n, "scheduler"));
		else if (strcmp(type, "conn") == 0)
			text_conn(kv, n);
		else if (strcmp(type, "subflow") == 0)
			text_subflow(kv, n);
		else if (strcmp(type, "steer") == 0)
			printf("  steer %s=%s%s%s\n",
			       kv[0].key,
			       kv[0].value,
			       n > 1 ? " on=" : "",
			       n > 1 ? kv_get(kv, n, "on") : "");
		else if (strcmp(type, "truncated") == 0)
			printf("  (%s of %s connections shown)\n",
			       kv_get(kv, n, "shown"),
			       kv_get(kv, n, "conns"));
	}
}

/* A reply of other requests: each line's pairs, as sent. */
static void text_lines(struct reply *r)
{
	int i;

	for (i = 0; i < r->nlines; i++)
		puts(r->lines[i]);
}

/* ---- subcommands ---- */

struct opts {
	long pid; /* 0: every process */
	bool json;
	bool watch;
	unsigned int interval;
};

static bool parse_pid(const char *s, long *pid)
{
	char *end;

	errno = 0;
	*pid = strtol(s, &end, 10);
	return !errno && *s && !*end && *pid > 0;
}

/* [PID] [--json] [--watch [SECONDS]]; false on a bad word. */
static bool parse_opts(int argc, char **argv, struct opts *o, bool watch_ok)
{
	long n;
	int i;

	memset(o, 0, sizeof(*o));
	o->interval = 2;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else if (watch_ok && strcmp(argv[i], "--watch") == 0) {
			o->watch = true;
			if (i + 1 < argc && parse_pid(argv[i + 1], &n) &&
			    n <= 3600) {
				o->interval = (unsigned int)n;
				i++;
			}
		} else if (!o->pid && parse_pid(argv[i], &o->pid)) {
			continue;
		} else {
			return false;
		}
	}
	return !(o->json && o->watch);
}

/* Ask one process and print its reply; 0 or 1. */
static int show_one(long pid, const char *request, const struct opts *o,
		    json_object *array)
{
	struct reply r;
	bool status = strcmp(request, "status") == 0;
	int err = o->pid ? ask(pid, request, &r)
			 : ask_listed(pid, request, &r);

	if (err) {
		if (o->pid)
			complain(pid, err, &r);
		reply_free(&r);
		return 1;
	}
	if (array)
		json_object_array_add(array,
				      status ? json_status(pid, &r)
					     : json_counters(pid, &r));
	else if (o->json)
		json_print(status ? json_status(pid, &r)
				  : json_counters(pid, &r));
	else if (status)
		text_status(pid, &r);
	else
		text_lines(&r);
	reply_free(&r);
	return 0;
}

/* Print request's reply of one process or of all; the exit status. */
static int show(const char *request, const struct opts *o)
{
	long pids[MAX_PIDS];
	json_object *array = NULL;
	int i, n;

	if (o->pid)
		return show_one(o->pid, request, o, NULL);
	n = list_pids(pids, MAX_PIDS);
	if (o->json)
		array = json_object_new_array();
	for (i = 0; i < n; i++)
		show_one(pids[i], request, o, array);
	if (array)
		json_print(array);
	return 0;
}

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Redraw the status until interrupted (SIGINT, SIGTERM). */
static int watch(const struct opts *o)
{
	struct sigaction sa = {.sa_handler = on_interrupt};
	char when[32];
	time_t now;
	int rc = 0;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		now = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
		printf("\033[H\033[2J");
		printf("mptcpshim status, every %us, %s\n\n", o->interval,
		       when);
		rc = show("status", o);
		fflush(stdout);
		if (rc && o->pid)
			return rc;
		sleep(o->interval);
	}
	return 0;
}

int mps_cmd_status(int argc, char **argv)
{
	struct opts o;

	if (!parse_opts(argc, argv, &o, true)) {
		fprintf(stderr,
			"usage: mptcpshim status [PID] [--json] "
			"[--watch [SECONDS]]\n");
		return 2;
	}
	return o.watch ? watch(&o) : show("status", &o);
}

int mps_cmd_counters(int argc, char **argv)
{
	struct opts o;

	if (!parse_opts(argc, argv, &o, false)) {
		fprintf(stderr, "usage: mptcpshim counters [PID] [--json]\n");
		return 2;
	}
	return show("counters", &o);
}

/* The request line of a steering subcommand, or -EINVAL. */
static int steer_request(const char *verb, int argc, char **argv,
			 char *buf, size_t cap)
{
	int need = strcmp(verb, "scheduler") == 0 ? 1 : 2, i, n;
	size_t len;
	struct mps_ctl_req req;
	const char *why;

	if (argc != need)
		return -EINVAL;
	n = snprintf(buf, cap, "%s", verb);
	for (i = 0; i < argc && n > 0 && (size_t)n < cap; i++) {
		len = (size_t)n;
		n = snprintf(buf + len, cap - len, " %s", argv[i]);
		n = n < 0 ? n : n + (int)len;
	}
	if (n < 0 || (size_t)n >= cap)
		return -EINVAL;
	/* say what is wrong here, before asking the process */
	return mps_ctl_parse_request(buf, &req, &why);
}

int mps_cmd_steer(const char *verb, int argc, char **argv)
{
	char request[MPS_CTL_LINE_MAX];
	struct reply r;
	long pid;
	int err;

	if (argc < 1 || !parse_pid(argv[0], &pid) ||
	    steer_request(verb, argc - 1, argv + 1, request, sizeof(request)) <
		    0) {
		fprintf(stderr,
			"usage: mptcpshim backup PID IFNAME|ADDR on|off\n"
			"       mptcpshim addr PID add|del ADDR\n"
			"       mptcpshim scheduler PID "
			"earliest|roundrobin|redundant\n");
		return 2;
	}
	err = ask(pid, request, &r);
	if (err) {
		complain(pid, err, &r);
		reply_free(&r);
		return 1;
	}
	text_lines(&r);
	reply_free(&r);
	return 0;
}
