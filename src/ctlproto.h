/*
 * ctlproto.h: the control protocol, as pure functions shared by the
 * library (control.c, which serves it) and the mptcpshim command (which
 * asks): request parsing, reply formatting and parsing, and where the
 * sockets live.
 *
 * The protocol.  A client connects to the unix stream socket
 * DIR/PID.sock (DIR: mps_ctl_dir()) and writes one request per line, at
 * most MPS_CTL_LINE_MAX bytes with the newline:
 *
 *   status                       every live connection and subflow
 *   counters                     the process's counters (mib.h)
 *   backup IFNAME|ADDR on|off    subflows from there backup, or not
 *   addr del ADDR                withdraw a local address
 *   addr add ADDR                allow it again, or add it
 *   scheduler earliest|roundrobin|redundant
 *
 * Each reply is lines of the form "TYPE KEY=VALUE KEY=VALUE ...", where
 * TYPE and KEY are lowercase words and a VALUE holds no blank: a value of
 * decimal digits only is a number, anything else a string.  The last line
 * is "end", or "error CODE TEXT" (CODE a word such as einval, TEXT for
 * people).  Requests are answered in order; the server closes the
 * connection after an error that was the client's misbehaviour (a line
 * too long, a reply it does not read).
 *
 * Threads: everything here is pure but the directory functions, and may
 * be called from any thread.
 */
#ifndef MPS_CTLPROTO_H
#define MPS_CTLPROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "conn.h"

#define MPS_CTL_PROTO 1		     /* reported by status */
#define MPS_CTL_LINE_MAX 512	     /* a request, newline included */
#define MPS_CTL_REPLY_MAX (1u << 20) /* a reply, held by the server */
#define MPS_CTL_ADDR_MAX 64	     /* "[v6]:port" and its NUL */
#define MPS_CTL_PATH_MAX 108	     /* sun_path */

enum mps_ctl_verb {
	MPS_CTL_STATUS,
	MPS_CTL_COUNTERS,
	MPS_CTL_BACKUP,
	MPS_CTL_ADDR_ADD,
	MPS_CTL_ADDR_DEL,
	MPS_CTL_SCHEDULER,
};

struct mps_ctl_req {
	enum mps_ctl_verb verb;
	struct mps_path_sel sel; /* BACKUP: an interface or an address;
				    ADDR_*: an address */
	bool on;		 /* BACKUP */
	int sched;		 /* SCHEDULER: enum mps_sched */
};

/*
 * Parse one request line (without its newline).  Returns 0, or -EINVAL
 * with *why saying what is wrong (a static string).
 */
int mps_ctl_parse_request(const char *line,
			  struct mps_ctl_req *req,
			  const char **why);

/* A reply under construction: grows up to max bytes, never past. */
struct mps_ctl_buf {
	char *data;
	size_t len; /* bytes held */
	size_t cap; /* bytes allocated */
	size_t max;
};

void mps_ctl_buf_init(struct mps_ctl_buf *b, size_t max);
void mps_ctl_buf_free(struct mps_ctl_buf *b);

/* Drop the first n bytes (they were sent). */
void mps_ctl_buf_consume(struct mps_ctl_buf *b, size_t n);

/*
 * Append formatted text.  Returns 0, -ENOBUFS when it would pass max
 * (nothing is appended), or -ENOMEM.
 */
int mps_ctl_printf(struct mps_ctl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One subflow, as status shows it. */
struct mps_ctl_sf {
	int num;
	enum mps_sf_state state;
	bool join;
	char local[MPS_CTL_ADDR_MAX];
	char remote[MPS_CTL_ADDR_MAX];
	char ifname[MPS_CONFIG_IFNAME_MAX]; /* "" unknown */
	bool backup;	  /* this end asked for backup use */
	bool peer_backup; /* the peer asked */
	bool has_tcp_info;
	uint32_t rtt_us;
	uint64_t cwnd_bytes;
	uint64_t bytes_out, bytes_in, reinjected;
};

/* One connection, as status shows it. */
struct mps_ctl_conn {
	int id;		   /* its place in the list, for the reader */
	const char *mode;  /* "mptcp", "relay", "connecting" */
	const char *role;  /* "client", "server" */
	bool has_core;	   /* the fields below up to nsf are set */
	enum mps_conn_state state;
	char local[MPS_CTL_ADDR_MAX];
	char peer[MPS_CTL_ADDR_MAX];
	uint32_t local_token, peer_token;
	int version;
	bool checksum;
	int sched;
	uint64_t bytes_in, bytes_out;
	int nsf;
	struct mps_ctl_sf sf[MPS_CONN_MAX_SUBFLOWS];
};

/* The status lines of c: "conn ..." then one "subflow ..." each. */
int mps_ctl_put_conn(struct mps_ctl_buf *b, const struct mps_ctl_conn *c);

const char *mps_ctl_sched_name(int sched);
const char *mps_ctl_state_name(enum mps_conn_state st);
const char *mps_ctl_sf_state_name(enum mps_sf_state st);

/* sa as "A.B.C.D:PORT" or "[V6]:PORT" ("-" when none) into buf. */
const char *mps_ctl_addr_str(const struct sockaddr *sa, char *buf, size_t cap);

/* One KEY=VALUE of a reply line. */
struct mps_ctl_kv {
	const char *key;
	const char *value;
};

/*
 * Split a reply line in place: *type its first word, kv[] its pairs (at
 * most max; a word without '=' has an empty value).  Returns how many
 * pairs, or -EINVAL for an empty line.
 */
int mps_ctl_split(char *line,
		  const char **type,
		  struct mps_ctl_kv *kv,
		  int max);

/*
 * The directory of the control sockets of user uid: XDG/mptcpshim when
 * xdg (XDG_RUNTIME_DIR) is set and absolute, else /tmp/mptcpshim-UID.
 * Returns 0 or -ENAMETOOLONG.
 */
int mps_ctl_dir(char *buf, size_t cap, const char *xdg, uid_t uid);

/*
 * Is dir safe to use: a real directory (not a symlink) owned by uid,
 * with no permission for group or others?  0, -EPERM when it is not,
 * or -errno from lstat().
 */
int mps_ctl_check_dir(const char *dir, uid_t uid);

/* DIR/PID.sock into buf; 0 or -ENAMETOOLONG. */
int mps_ctl_sock_path(char *buf, size_t cap, const char *dir, long pid);

#endif /* MPS_CTLPROTO_H */
