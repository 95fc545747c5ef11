/*
 * pathmgr.h: what the path manager asks of the system: the local
 * interfaces that may carry subflows, join sockets bound to one of them,
 * the socket options every subflow gets, a subflow's metrics from
 * TCP_INFO, and link and address changes from an rtnetlink socket.
 *
 * The decisions of when to open or close which subflow are loop.c's; this
 * module only touches the system.  Every function returns a negative
 * errno on failure.  Threads: the loop thread calls everything here.
 */
#ifndef MPS_PATHMGR_H
#define MPS_PATHMGR_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"

/*
 * Kernel unsent bytes a subflow may hold: with TCP_NOTSENT_LOWAT at this
 * value, a subflow is writable only while less than this is unsent, so a
 * slow path queues little and the scheduler decides late.  128 KiB keeps
 * a 100 Mbit/s path busy for 10 ms between wakeups.
 */
#define MPS_PM_NOTSENT_LOWAT (128 * 1024)

/* TCP_USER_TIMEOUT on subflows while the connection has another. */
#define MPS_PM_USER_TIMEOUT_MS 5000

/* A join connect() that has not finished after this is given up. */
#define MPS_PM_CONNECT_TIMEOUT_US (5 * 1000000ull)

/* Local interfaces considered at once. */
#define MPS_PM_MAX_PATHS 16

/* One local address that may carry a subflow. */
struct mps_path {
	char ifname[IF_NAMESIZE];
	unsigned int ifindex;
	struct sockaddr_storage addr; /* port 0 */
	socklen_t addr_len;
	bool backup; /* named by MPTCPSHIM_BACKUP or control's backup */
};

/*
 * The usable local addresses of family (AF_INET or AF_INET6): by default
 * those of interfaces that are up and running and not loopback, or those
 * MPTCPSHIM_PATHS selects (an interface name selects all its addresses
 * of the family).  IPv6 link-local addresses are left out.  The control
 * socket's steering (control.h) applies on top: withdrawn addresses are
 * left out, added ones are in whatever MPTCPSHIM_PATHS says, and its
 * backup rules override MPTCPSHIM_BACKUP.  Returns how many were stored
 * in out (at most max), or -errno.
 */
int mps_pm_paths(int family, struct mps_path *out, int max);

/*
 * The family whose local addresses can reach sa: AF_INET for an IPv4
 * address and for an IPv4-mapped IPv6 one (a dual-stack socket talking
 * to an IPv4 peer), else sa's own family.
 */
int mps_pm_family(const struct sockaddr *sa);

/* The interface index that holds local address sa, or 0. */
unsigned int mps_pm_ifindex_of(const struct sockaddr *sa);

/*
 * Open a join socket from path p to dst: non-blocking, close-on-exec,
 * bound to p's interface (SO_BINDTODEVICE; on EPERM only to its address,
 * which is logged) and address, connect() started.  The descriptor is
 * recorded as loop-owned (closed in fork children).  An IPv4-mapped dst
 * is unmapped for an IPv4 path.  Returns it, or -errno when the connect
 * failed at once (-EAFNOSUPPORT: p's family cannot reach dst).
 */
int mps_pm_join_socket(const struct mps_path *p,
		       const struct sockaddr *dst,
		       socklen_t dst_len);

/*
 * Tune a subflow socket of an MPTCP connection: TCP_NOTSENT_LOWAT
 * (MPS_PM_NOTSENT_LOWAT), and TCP_NODELAY whatever the program asked.
 * Records of ours that the program never wrote (a window update, an
 * ADD_ADDR, a data ACK) are short segments; with Nagle the program's next
 * short write waits behind them for the peer's delayed ACK, which cost a
 * request/response exchange up to 40 ms (bench/targets.sh, time to first
 * byte: 1.93 times plain TCP's before, 1.01 after).  The loop writes once
 * per wakeup, so what the program wrote meanwhile still goes together.
 */
void mps_pm_tune(int fd);

/* Set TCP_USER_TIMEOUT on a subflow socket: ms, or 0 for the default. */
void mps_pm_user_timeout(int fd, unsigned int ms);

/* Fill *m from the socket's TCP_INFO.  0 or -errno. */
int mps_pm_metrics(int fd, struct mps_sf_metrics *m);

/*
 * Open the rtnetlink socket (link, IPv4 and IPv6 address groups),
 * non-blocking, close-on-exec, loop-owned.  Returns it or -errno.
 */
int mps_pm_netlink_open(void);

/* What one rtnetlink notification means for subflows. */
enum mps_pm_change {
	MPS_PM_LINK_UP,	  /* ifindex is up and running again */
	MPS_PM_LINK_DOWN, /* ifindex went down */
	MPS_PM_ADDR_NEW,  /* addr appeared on ifindex */
	MPS_PM_ADDR_DEL,  /* addr left ifindex */
};

typedef void (*mps_pm_change_fn)(enum mps_pm_change what,
				 unsigned int ifindex,
				 const struct sockaddr *addr,
				 void *arg);

/*
 * Read every pending notification from the rtnetlink socket fd and call
 * fn for each (addr NULL for links).  Returns 0 or -errno (-EAGAIN is
 * not an error and returns 0).
 */
int mps_pm_netlink_read(int fd, mps_pm_change_fn fn, void *arg);

/* Is sa the address (ignoring ports) of p? */
bool mps_pm_same_addr(const struct sockaddr *a, const struct sockaddr *b);

/* sa (IPv4, IPv6 or v4-mapped IPv6) as a wire address; v4-mapped
 * becomes IPv4.  -EAFNOSUPPORT for other families. */
int mps_pm_to_wire(const struct sockaddr *sa, struct mps_addr *out);

/* A wire address and port (host order) as a sockaddr of family want
 * (AF_INET6 maps IPv4).  Returns its length, or -EAFNOSUPPORT. */
int mps_pm_from_wire(const struct mps_addr *a,
		     uint16_t port,
		     int want,
		     struct sockaddr_storage *out);

/* Print sa as "addr" into buf (at least INET6_ADDRSTRLEN bytes). */
const char *mps_pm_ntop(const struct sockaddr *sa, char *buf, size_t len);

#endif /* MPS_PATHMGR_H */
