/*
 * capture.h: MPTCPSHIM_CAPTURE, a pcap file of every subflow's traffic
 * as kernel MPTCP would have put it on the wire (capseg.h says how).
 *
 * libpcap is loaded with dlopen() when the first subflow is captured, so
 * that a program without the variable loads no new library.  One file per
 * process: "%p" in the name becomes the pid, and a fork child captures
 * into its own file only when the name has "%p" (else it would truncate
 * its parent's).  Packets are buffered by stdio; the file is flushed when
 * a connection ends and at exit.
 *
 * A capture only watches: it never changes what goes on the wire.  An
 * error (no libpcap, a file that cannot be opened or written) stops the
 * capture with one line on stderr, and the connections carry on.
 *
 * Threads: every function runs on the loop thread, except
 * mps_capture_flush() (any thread, stdio's lock) and mps_capture_child()
 * (the fork child, before other threads exist).
 */
#ifndef MPS_CAPTURE_H
#define MPS_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "capseg.h"

/*
 * Start capturing one subflow, or return NULL (capture off, stopped, or
 * no memory).  initiator: this end connected it; plain: its bytes are
 * plain TCP, not records; version: the connection's MPTCP version.
 */
struct mps_cap_sf *mps_capture_open(const struct sockaddr *local,
				    const struct sockaddr *peer,
				    bool initiator,
				    bool plain,
				    int version);

/* buf[0..len) went dir on the subflow. */
void mps_capture_bytes(struct mps_cap_sf *c,
		       enum mps_cap_dir dir,
		       const uint8_t *buf,
		       size_t len);

/* The first n bytes of iov[0..cnt) were written to the subflow. */
void mps_capture_written(struct mps_cap_sf *c,
			 const struct iovec *iov,
			 int cnt,
			 size_t n);

/* dir ended with a FIN, or with a RST when rst. */
void mps_capture_end(struct mps_cap_sf *c, enum mps_cap_dir dir, bool rst);

/* The subflow's socket closes (reset when rst): end what is open, free. */
void mps_capture_close(struct mps_cap_sf *c, bool rst);

/* Write what stdio holds to the file. */
void mps_capture_flush(void);

/* In a fork child: forget the parent's file. */
void mps_capture_child(void);

#endif /* MPS_CAPTURE_H */
