/*
 * libc.c: the table of real libc functions.
 *
 * Filled once with dlsym(RTLD_NEXT), under pthread_once, so that any
 * number of threads may race into their first wrapper call.  Functions
 * that an older libc may lack (close_range, closefrom, fcntl64 and the
 * _chk variants) may stay NULL; their wrappers then fail with ENOSYS,
 * which is what the program would have seen without us.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "libc.h"

struct mps_libc mps_libc_table;
atomic_bool mps_libc_ready;

static pthread_once_t libc_once = PTHREAD_ONCE_INIT;

/* dlsym returns void *; POSIX guarantees it converts to a function. */
#define LOOKUP(field, name)                                                    \
	(*(void **)&mps_libc_table.field = dlsym(RTLD_NEXT, name))

static void libc_fill(void)
{
	LOOKUP(socket, "socket");
	LOOKUP(connect, "connect");
	LOOKUP(listen, "listen");
	LOOKUP(accept, "accept");
	LOOKUP(accept4, "accept4");
	LOOKUP(close, "close");
	LOOKUP(close_range, "close_range");
	LOOKUP(closefrom, "closefrom");
	LOOKUP(dup, "dup");
	LOOKUP(dup2, "dup2");
	LOOKUP(dup3, "dup3");
	LOOKUP(fcntl, "fcntl");
	LOOKUP(fcntl64, "fcntl64");
	LOOKUP(getsockopt, "getsockopt");
	LOOKUP(setsockopt, "setsockopt");
	LOOKUP(getsockname, "getsockname");
	LOOKUP(getpeername, "getpeername");
	LOOKUP(read, "read");
	LOOKUP(readv, "readv");
	LOOKUP(recv, "recv");
	LOOKUP(recvfrom, "recvfrom");
	LOOKUP(recvmsg, "recvmsg");
	LOOKUP(read_chk, "__read_chk");
	LOOKUP(recv_chk, "__recv_chk");
	LOOKUP(recvfrom_chk, "__recvfrom_chk");
	LOOKUP(write, "write");
	LOOKUP(writev, "writev");
	LOOKUP(send, "send");
	LOOKUP(sendto, "sendto");
	LOOKUP(sendmsg, "sendmsg");
	LOOKUP(shutdown, "shutdown");
	LOOKUP(socketpair, "socketpair");
	LOOKUP(epoll_ctl, "epoll_ctl");
	LOOKUP(exit_now, "_exit");
	LOOKUP(exit_now2, "_Exit");

	if (!mps_libc_table.socket || !mps_libc_table.connect ||
	    !mps_libc_table.close || !mps_libc_table.dup3 ||
	    !mps_libc_table.fcntl || !mps_libc_table.read ||
	    !mps_libc_table.write || !mps_libc_table.getsockopt ||
	    !mps_libc_table.setsockopt || !mps_libc_table.accept4 ||
	    !mps_libc_table.socketpair || !mps_libc_table.sendmsg ||
	    !mps_libc_table.shutdown || !mps_libc_table.exit_now ||
	    !mps_libc_table.exit_now2 || !mps_libc_table.epoll_ctl) {
		/* dprintf writes inside libc, past our own write(). */
		dprintf(STDERR_FILENO,
			"mptcpshim: libc socket functions not found\n");
		abort();
	}
	atomic_store_explicit(&mps_libc_ready, true, memory_order_release);
}

void mps_libc_init(void)
{
	pthread_once(&libc_once, libc_fill);
}
