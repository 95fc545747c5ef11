/*
 * libc.h: the real libc functions that the interposer wraps.
 *
 * The library exports its own socket(), connect(), read()... so a plain
 * call from inside the library would come back to the wrapper.  Every
 * module that needs the kernel's behaviour calls through this table,
 * which holds the next definitions in lookup order (dlsym(RTLD_NEXT)).
 *
 * Threads: mps_libc() may be called from any thread at any time, even
 * before the library's constructor ran (another library's constructor
 * may already make calls); the table is filled exactly once.
 */
#ifndef MPS_LIBC_H
#define MPS_LIBC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct mps_libc {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*close)(int);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(
		int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*read_chk)(int, void *, size_t, size_t);
	ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom_chk)(int,
				void *,
				size_t,
				size_t,
				int,
				struct sockaddr *,
				socklen_t *);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int,
			  const void *,
			  size_t,
			  int,
			  const struct sockaddr *,
			  socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*shutdown)(int, int);
	int (*socketpair)(int, int, int, int *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	void (*exit_now)(int) __attribute__((noreturn));  /* _exit */
	void (*exit_now2)(int) __attribute__((noreturn)); /* _Exit */
};

extern struct mps_libc mps_libc_table;
extern atomic_bool mps_libc_ready;

/* Fill the table; idempotent and thread-safe.  Aborts if libc lacks a
 * function the library cannot work without. */
void mps_libc_init(void);

/* The table, filled on first use. */
static inline const struct mps_libc *mps_libc(void)
{
	if (__builtin_expect(!atomic_load_explicit(&mps_libc_ready,
						   memory_order_acquire),
			     0))
		mps_libc_init();
	return &mps_libc_table;
}

#endif /* MPS_LIBC_H */
