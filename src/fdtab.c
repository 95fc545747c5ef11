/*
 * fdtab.c: per-descriptor state of converted sockets (see fdtab.h).
 *
 * One mutex guards every change; lookups are lock-free.  The table itself
 * is an anonymous mapping sized once at load, so that it never moves and
 * untouched pages cost nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "fdtab.h"
#include "libc.h"

_Atomic(struct mps_sock *) *mps_fdtab;
unsigned int mps_fdtab_size;

static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mps_sock *free_socks; /* under tab_lock */
static atomic_int tab_high = -1;    /* highest slot ever set */

static unsigned char *owned; /* loop-owned fds, under tab_lock */
static int owned_high = -1;  /* under tab_lock */

int mps_fdtab_init(void)
{
	struct rlimit rl;
	size_t n = MPS_FDTAB_MAX;
	void *p;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < n)
		n = rl.rlim_max;
	p = mmap(NULL,
		 n * sizeof(*mps_fdtab) + n,
		 PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1,
		 0);
	if (p == MAP_FAILED)
		return -errno;
	mps_fdtab = p;
	owned = (unsigned char *)p + n * sizeof(*mps_fdtab);
	atomic_store_explicit((_Atomic unsigned int *)&mps_fdtab_size,
			      (unsigned int)n,
			      memory_order_release);
	return 0;
}

void mps_fdtab_lock(void)
{
	pthread_mutex_lock(&tab_lock);
}

void mps_fdtab_unlock(void)
{
	pthread_mutex_unlock(&tab_lock);
}

static void sock_reset(struct mps_sock *s, enum mps_sock_kind kind, int family)
{
	pthread_mutex_t keep = s->fwd_lock;

	memset(s, 0, sizeof(*s));
	s->fwd_lock = keep;
	s->kind = kind;
	s->family = family;
	s->kfd = -1;
}

struct mps_sock *mps_sock_new(enum mps_sock_kind kind, int family)
{
	struct mps_sock *s;

	mps_fdtab_lock();
	s = free_socks;
	if (s)
		free_socks = s->next_free;
	mps_fdtab_unlock();
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		pthread_mutex_init(&s->fwd_lock, NULL);
	}
	sock_reset(s, kind, family);
	return s;
}

/* Drop one reference; table lock held. */
static void sock_put_locked(struct mps_sock *s)
{
	if (--s->refs > 0)
		return;
	s->next_free = free_socks;
	free_socks = s;
}

void mps_sock_get(struct mps_sock *s)
{
	mps_fdtab_lock();
	s->refs++;
	mps_fdtab_unlock();
}

void mps_sock_put(struct mps_sock *s)
{
	mps_fdtab_lock();
	sock_put_locked(s);
	mps_fdtab_unlock();
}

/*
 * Empty slot fd; table lock held.  Returns the sock with a pin when fd
 * was the last number of a converted socket.
 */
static struct mps_sock *slot_clear_locked(int fd)
{
	struct mps_sock *s =
		atomic_load_explicit(&mps_fdtab[fd], memory_order_relaxed);
	struct mps_sock *pinned = NULL;

	if (!s)
		return NULL;
	atomic_store_explicit(&mps_fdtab[fd], NULL, memory_order_release);
	if (--s->nfds == 0 && s->kind == MPS_SOCK_CONVERTED) {
		if (atomic_load(&s->linger_zero))
			atomic_store(&s->abort, true);
		s->refs++;
		pinned = s;
	}
	sock_put_locked(s);
	return pinned;
}

static void slot_set_locked(int fd, struct mps_sock *s)
{
	struct mps_sock *old = slot_clear_locked(fd);

	if (old)
		sock_put_locked(old);
	s->nfds++;
	s->refs++;
	atomic_store_explicit(&mps_fdtab[fd], s, memory_order_release);
	if (fd > atomic_load(&tab_high))
		atomic_store(&tab_high, fd);
}

int mps_fdtab_set(int fd, struct mps_sock *s)
{
	if (fd < 0 || (unsigned int)fd >= mps_fdtab_size) {
		mps_fdtab_lock();
		if (s->refs == 0) {
			s->next_free = free_socks;
			free_socks = s;
		}
		mps_fdtab_unlock();
		return -EMFILE;
	}
	mps_fdtab_lock();
	slot_set_locked(fd, s);
	mps_fdtab_unlock();
	return 0;
}

struct mps_sock *mps_fdtab_drop(int fd)
{
	struct mps_sock *s;

	if ((unsigned int)fd >= mps_fdtab_size)
		return NULL;
	mps_fdtab_lock();
	s = slot_clear_locked(fd);
	mps_fdtab_unlock();
	return s;
}

void mps_fdtab_dup(int oldfd, int newfd)
{
	struct mps_sock *s;

	if ((unsigned int)oldfd >= mps_fdtab_size ||
	    (unsigned int)newfd >= mps_fdtab_size)
		return;
	mps_fdtab_lock();
	s = atomic_load_explicit(&mps_fdtab[oldfd], memory_order_relaxed);
	if (s) {
		slot_set_locked(newfd, s);
	} else {
		s = slot_clear_locked(newfd);
		if (s)
			sock_put_locked(s);
	}
	mps_fdtab_unlock();
}

int mps_fdtab_high(void)
{
	return atomic_load(&tab_high);
}

int mps_fdtab_floor(void)
{
	struct rlimit rl;
	rlim_t floor = MPS_FDTAB_FLOOR_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < floor)
		floor = rl.rlim_cur / 2;
	if (floor > mps_fdtab_size / 2)
		floor = mps_fdtab_size / 2;
	return (int)floor;
}

/* fd at mps_fdtab_floor() or above when there is room, else fd. */
static int lift(int fd)
{
	int floor = mps_fdtab_floor(), high;

	if (fd >= floor)
		return fd;
	high = mps_libc()->fcntl(fd, F_DUPFD_CLOEXEC, floor);
	if (high < 0)
		return fd;
	mps_libc()->close(fd);
	return high;
}

int mps_fdtab_own_locked(int fd)
{
	if (fd < 0)
		return fd;
	fd = lift(fd);
	if ((unsigned int)fd >= mps_fdtab_size)
		return fd;
	owned[fd] = 1;
	if (fd > owned_high)
		owned_high = fd;
	return fd;
}

int mps_fdtab_own_socket(int domain)
{
	int fd, err = 0;

	mps_fdtab_lock();
	fd = mps_libc()->socket(
		domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		err = -errno;
	else
		fd = mps_fdtab_own_locked(fd);
	mps_fdtab_unlock();
	return fd < 0 ? err : fd;
}

void mps_fdtab_close(int fd)
{
	if (fd < 0)
		return;
	mps_fdtab_lock();
	if ((unsigned int)fd < mps_fdtab_size)
		owned[fd] = 0;
	mps_libc()->close(fd);
	mps_fdtab_unlock();
}

/* The parent's loop does not exist here: its descriptors go, and every
 * converted socket stops pointing at it. */
void mps_fdtab_child(void)
{
	int fd;

	pthread_mutex_init(&tab_lock, NULL);
	for (fd = 0; fd <= owned_high; fd++) {
		if (owned[fd]) {
			owned[fd] = 0;
			mps_libc()->close(fd);
		}
	}
	owned_high = -1;
	for (fd = 0; fd <= atomic_load(&tab_high); fd++) {
		struct mps_sock *s = atomic_load(&mps_fdtab[fd]);

		if (!s)
			continue;
		pthread_mutex_init(&s->fwd_lock, NULL);
		s->kfd = -1;
		s->lconn = NULL;
	}
}
