/*
 * fdtab.h: what the library knows about the program's descriptors.
 *
 * One slot per descriptor number, a pointer to the state of the socket
 * behind it (struct mps_sock), or NULL for every descriptor that is not
 * ours.  Wrappers look their descriptor up with one atomic load and no
 * lock, so an unconverted descriptor costs exactly that.  Several numbers
 * (dup, dup2, fcntl F_DUPFD) share one mps_sock; nfds counts them.
 *
 * Decisions:
 * - Only TCP sockets that the program made through socket() are tracked
 *   (state CANDIDATE), so that connect() and listen() know the program's
 *   own TCP_MAXSEG wish.  A candidate that connects to a plain peer leaves
 *   the table: from then on it costs nothing.
 * - The table covers descriptors below the hard RLIMIT_NOFILE at load
 *   time, at most MPS_FDTAB_MAX; higher numbers are never converted.
 * - An mps_sock is never returned to malloc: freed ones wait on a free
 *   list for reuse.  A wrapper racing with close() of its own descriptor
 *   (a program bug) then reads stale state instead of freed memory.
 * - Descriptors the loop owns (kernel sockets, far ends of socketpairs)
 *   are created, recorded and closed under the table's lock, so that a
 *   fork() child sees them all and closes them (see mps_fdtab_child()).
 *
 * Known limitation: a tracked number closed behind our back (fclose() of
 * an fdopen()ed socket, a raw close syscall) leaves a stale slot until
 * the number is reused by socket(), accept() or dup().
 */
#ifndef MPS_FDTAB_H
#define MPS_FDTAB_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MPS_FDTAB_MAX (1 << 20)

/* Registrations of a candidate in epoll sets, moved along at the swap. */
#define MPS_SOCK_WATCH_MAX 4

struct mps_watch {
	int epfd;
	struct epoll_event ev;
};

enum mps_sock_kind {
	MPS_SOCK_CANDIDATE, /* TCP socket, neither connected nor listening */
	MPS_SOCK_LISTENER,  /* prepared listener: MSS signal, saved SYN */
	MPS_SOCK_CONVERTED, /* a socketpair end stands in for the socket */
};

struct mps_sock {
	/* Under the table lock. */
	int nfds; /* numbers of this process naming it */
	int refs; /* nfds + the loop's reference + pins */
	struct mps_sock *next_free;
	bool user_mss; /* the program set TCP_MAXSEG itself */
	int nwatch;    /* epoll registrations below, or -1: too many */
	struct mps_watch watch[MPS_SOCK_WATCH_MAX];
	void *lconn; /* the loop's connection, NULL once the
			loop let go or in a fork child */

	/* Written under the table lock, read by wrappers without it. */
	_Atomic enum mps_sock_kind kind;
	int family; /* AF_INET or AF_INET6, as created */

	/* Set before the kind becomes CONVERTED, read-only afterwards. */
	struct sockaddr_storage local;
	struct sockaddr_storage peer;
	socklen_t local_len;
	socklen_t peer_len;

	/* Shared by wrappers and the loop. */
	atomic_int so_error;	 /* pending error, reported once */
	atomic_int conn_error;	 /* what end of stream means: ECONNRESET.. */
	atomic_bool connecting;	 /* non-blocking connect not finished */
	atomic_bool failed;	 /* that connect failed: no peer */
	atomic_int fail_error;	 /* and how */
	atomic_bool abort;	 /* SO_LINGER 0 and closed: send a reset */
	atomic_bool wr_shut;	 /* the program shut down its sending side:
				    no direct send (loop.h) may follow */
	atomic_int want_sndbuf;	 /* SO_SNDBUF asked while connecting */
	int sndbuf_saved;	 /* the program end's SO_SNDBUF before the
				    filler, as getsockopt() gave it */
	atomic_bool linger_zero; /* SO_LINGER on with a zero timeout */
	atomic_int nodelay;	 /* the program's TCP_NODELAY once converted:
				    0 never set, else the value + 1 (the
				    subflows keep theirs on: pathmgr.h) */

	/* Under fwd_lock (taken before the table lock, never after it):
	 * the kernel socket of subflow 0 and SO_LINGER as set. */
	pthread_mutex_t fwd_lock;
	int kfd; /* -1 once the loop closed it */
	struct linger linger;
};

extern _Atomic(struct mps_sock *) *mps_fdtab;
extern unsigned int mps_fdtab_size;

/* Size the table from RLIMIT_NOFILE; called once at load.  0 or -errno. */
int mps_fdtab_init(void);

/* The state of descriptor fd, or NULL when it is not ours.  Any thread. */
static inline struct mps_sock *mps_fdtab_get(int fd)
{
	if ((unsigned int)fd >= mps_fdtab_size)
		return NULL;
	return atomic_load_explicit(&mps_fdtab[fd], memory_order_acquire);
}

void mps_fdtab_lock(void);
void mps_fdtab_unlock(void);

/* A fresh mps_sock of kind and family, refs 0; NULL on ENOMEM. */
struct mps_sock *mps_sock_new(enum mps_sock_kind kind, int family);

/*
 * Put s at number fd (dropping what was there).  Returns 0, or -EMFILE
 * when fd is beyond the table (s is then released if unused).
 */
int mps_fdtab_set(int fd, struct mps_sock *s);

/*
 * Forget number fd.  Returns s with a pin held when fd was the last
 * number of a converted socket (the caller tells the loop, then calls
 * mps_sock_put()), else NULL.  Sets s->abort when SO_LINGER 0 is on.
 */
struct mps_sock *mps_fdtab_drop(int fd);

/* Number newfd now also names what oldfd names. */
void mps_fdtab_dup(int oldfd, int newfd);

/* Take and release a reference (the loop's, or a pin). */
void mps_sock_get(struct mps_sock *s);
void mps_sock_put(struct mps_sock *s);

/* Highest number that ever had a slot, for close_range(). */
int mps_fdtab_high(void);

/*
 * Loop-owned descriptors.  mps_fdtab_own_locked() records fd (table lock
 * held by the caller, around the call that created fd) and returns the
 * number it now has: fd moved to mps_fdtab_floor() or above when there is
 * room (the original number is closed), else fd itself.
 * mps_fdtab_close() forgets and closes one.  Both any thread.
 *
 * Decision: the loop's descriptors live high, so that the program's own
 * numbers stay as dense as plain TCP would leave them.  Programs size
 * tables by what they opened (wrk's event table holds 10 + 3 x its
 * connections; select() takes numbers below FD_SETSIZE), and a converted
 * connection costs the process three or four descriptors more.
 */
#define MPS_FDTAB_FLOOR_MAX 65536
int mps_fdtab_own_locked(int fd);
void mps_fdtab_close(int fd);

/* A new non-blocking, close-on-exec stream socket of domain, owned by
 * the loop as above; the descriptor or -errno.  Any thread. */
int mps_fdtab_own_socket(int domain);
/*
 * Lowest number for loop-owned descriptors: half of the soft
 * RLIMIT_NOFILE as it is now, at most MPS_FDTAB_FLOOR_MAX and within the
 * table.  Any thread.
 */
int mps_fdtab_floor(void);

/* In a fork child: new locks, the loop's descriptors closed, every
 * converted socket detached from the parent's loop. */
void mps_fdtab_child(void);

#endif /* MPS_FDTAB_H */
