/*
 * loop.h: the event-loop thread that serves converted connections.
 *
 * One libev loop runs in one thread per process, started when the first
 * converted socket is handed over.  Wrappers hand over work through a
 * locked queue and an ev_async.  The loop thread holds the loop's lock
 * except while it waits for events; the one thing another thread does
 * under that lock is mps_loop_direct_send().
 */
#ifndef MPS_LOOP_H
#define MPS_LOOP_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fdtab.h"

enum mps_loop_kind {
	MPS_LOOP_CONNECTING, /* non-blocking connect() running on kfd */
	MPS_LOOP_CLIENT,     /* connected; the server runs the library */
	MPS_LOOP_SERVER,     /* accepted; the client runs the library */
};

/* A connection handed to the loop; the loop owns every descriptor in it
 * from the moment mps_loop_submit() returns 0. */
struct mps_loop_req {
	enum mps_loop_kind kind;
	struct mps_sock *sock; /* a reference the loop now holds */
	int afd;	       /* the loop's end of the socketpair */
	int kfd;	       /* the kernel TCP socket (subflow 0) */
	int pfd;	       /* CONNECTING: a duplicate of the program's
				  end, to restore its SO_SNDBUF; else -1 */
	size_t filler;	       /* CONNECTING: filler bytes to discard */
	int sndbuf;	       /* CONNECTING: SO_SNDBUF to restore */
	struct sockaddr_storage dst;
	socklen_t dst_len;
};

/*
 * Hand a connection to the loop, starting the loop thread if needed.
 * Returns 0, or a negative errno when the loop cannot start (the caller
 * keeps its descriptors and its reference).  Any thread.
 */
int mps_loop_submit(const struct mps_loop_req *req);

/*
 * The program closed the last number of s while its non-blocking connect
 * was running: the loop gives the connection up.  Takes over the caller's
 * pin on s.  Any thread.
 */
void mps_loop_closed(struct mps_sock *s);

/*
 * At process exit (the library's destructor): wait while the loop hands
 * what the program wrote to the kernel sockets; see loop.c.  Any thread.
 */
void mps_loop_exit(void);

/*
 * Direct send: a program thread writing to converted socket s puts the
 * bytes into the connection's core and writes the records to the
 * subflows itself, instead of through the socketpair and a wakeup of the
 * loop thread.  len is the bytes iov holds.  Returns how many of them
 * (from the start) it took; 0 when the bytes must take the socketpair:
 * MPTCPSHIM_DIRECT_SEND=0, the loop stays busy (the lock is only tried),
 * bytes wait in the socketpair (they go first), the connection is not
 * ESTABLISHED, Nagle holds a short write (no TCP_NODELAY), or its send
 * buffer is full.  Never blocks.  Any thread.
 */
size_t mps_loop_direct_send(struct mps_sock *s,
			    const struct iovec *iov,
			    int cnt,
			    size_t len);

/* fork(): hold the queue's lock across it; the child forgets the parent's
 * loop (its thread does not exist there) and starts its own on demand. */
void mps_loop_prefork(void);
void mps_loop_parent(void);
void mps_loop_child(void);

#endif /* MPS_LOOP_H */
