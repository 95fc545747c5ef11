/*
 * pathmgr.c: the system side of the path manager (see pathmgr.h).
 *
 * Decisions:
 * - Usable local addresses come from getifaddrs() each time the path
 *   manager runs (when a connection may first join, on ADD_ADDR, on a
 *   netlink change, on a retry), not from a cache: those are rare, and a
 *   cache would need the netlink socket to be right.
 * - A join socket is bound to its interface with SO_BINDTODEVICE and to
 *   the interface's address, so the kernel routes it out of that
 *   interface by its own table (a default route per interface, any
 *   metric) and the peer sees the address of that path; no policy
 *   routing rule is needed.  Unprivileged SO_BINDTODEVICE works from
 *   Linux 5.7 for a socket not yet bound; on EPERM the socket is bound
 *   to the address alone, which is logged once per process: routing then
 *   follows the main table, and source-address rules may be needed.
 * - Every subflow socket of an MPTCP connection gets TCP_NOTSENT_LOWAT
 *   (MPS_PM_NOTSENT_LOWAT): writability then means "little unsent", and
 *   room = lowat - tcpi_notsent_bytes tells the scheduler how much more
 *   it may hand the kernel before the queue hides the path's speed.
 *   It also gets TCP_NODELAY: see mps_pm_tune() in pathmgr.h.
 * - Link down is IFF_UP or IFF_RUNNING clear in RTM_NEWLINK (or
 *   RTM_DELLINK); link up is both set.  Every RTM_NEWLINK that says up is
 *   reported (the kernel sends several per change); callers treat up as
 *   "retry now", which is idempotent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* tcp_info with notsent_bytes, delivery_rate */
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "fdtab.h"
#include "libc.h"
#include "log.h"
#include "pathmgr.h"

static bool bindtodevice_denied; /* logged once */

static socklen_t sa_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in)
				 : sizeof(struct sockaddr_in6);
}

bool mps_pm_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	struct mps_addr wa, wb;

	if (mps_pm_to_wire(a, &wa) < 0 || mps_pm_to_wire(b, &wb) < 0)
		return false;
	return wa.family == wb.family &&
	       memcmp(wa.bytes, wb.bytes, sizeof(wa.bytes)) == 0;
}

int mps_pm_to_wire(const struct sockaddr *sa, struct mps_addr *out)
{
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		out->family = AF_INET;
		memcpy(out->bytes,
		       &((const struct sockaddr_in *)sa)->sin_addr,
		       4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
		out->family = AF_INET;
		memcpy(out->bytes, &v6->sin6_addr.s6_addr[12], 4);
		return 0;
	}
	out->family = AF_INET6;
	memcpy(out->bytes, &v6->sin6_addr, 16);
	return 0;
}

int mps_pm_from_wire(const struct mps_addr *a,
		     uint16_t port,
		     int want,
		     struct sockaddr_storage *out)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (a->family == AF_INET && want == AF_INET) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		memcpy(&v4->sin_addr, a->bytes, 4);
		return sizeof(*v4);
	}
	if (want != AF_INET6 || (a->family != AF_INET && a->family != AF_INET6))
		return -EAFNOSUPPORT;
	v6->sin6_family = AF_INET6;
	v6->sin6_port = htons(port);
	if (a->family == AF_INET) {
		v6->sin6_addr.s6_addr[10] = 0xff;
		v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], a->bytes, 4);
	} else {
		memcpy(&v6->sin6_addr, a->bytes, 16);
	}
	return sizeof(*v6);
}

const char *mps_pm_ntop(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *src =
		sa->sa_family == AF_INET
			? (const void *)&((const struct sockaddr_in *)sa)
				  ->sin_addr
			: (const void *)&((const struct sockaddr_in6 *)sa)
				  ->sin6_addr;

	if (!inet_ntop(sa->sa_family, src, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

/* Does the configuration let ifname/addr carry subflows? */
static bool path_selected(const char *ifname, const struct sockaddr *sa)
{
	int i;

	if (mps_config.npaths == 0 || mps_ctl_added(sa))
		return true;
	for (i = 0; i < mps_config.npaths; i++)
		if (mps_config_sel_match(&mps_config.paths[i], ifname, sa))
			return true;
	return false;
}

static bool path_backup(const char *ifname, const struct sockaddr *sa)
{
	int i = mps_ctl_backup_for(ifname, sa);

	if (i >= 0)
		return i; /* the control socket overrides the environment */
	for (i = 0; i < mps_config.nbackup; i++)
		if (mps_config_sel_match(&mps_config.backup[i], ifname, sa))
			return true;
	return false;
}

/* Is this getifaddrs() entry a candidate of family at all? */
static bool ifa_usable(const struct ifaddrs *ifa, int family)
{
	const struct sockaddr_in6 *v6;

	if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family)
		return false;
	if (!(ifa->ifa_flags & IFF_UP) || !(ifa->ifa_flags & IFF_RUNNING))
		return false;
	if (family == AF_INET6) {
		v6 = (const struct sockaddr_in6 *)ifa->ifa_addr;
		if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr))
			return false;
	}
	if (mps_ctl_withdrawn(ifa->ifa_addr))
		return false;
	/* loopback only when the user named it */
	if ((ifa->ifa_flags & IFF_LOOPBACK) && mps_config.npaths == 0)
		return false;
	return path_selected(ifa->ifa_name, ifa->ifa_addr);
}

int mps_pm_paths(int family, struct mps_path *out, int max)
{
	struct ifaddrs *all, *ifa;
	int n = 0;

	if (getifaddrs(&all) < 0)
		return -errno;
	for (ifa = all; ifa && n < max; ifa = ifa->ifa_next) {
		struct mps_path *p = &out[n];

		if (!ifa_usable(ifa, family))
			continue;
		memset(p, 0, sizeof(*p));
		snprintf(p->ifname, sizeof(p->ifname), "%s", ifa->ifa_name);
		p->ifindex = if_nametoindex(ifa->ifa_name);
		p->addr_len = sa_len(family);
		memcpy(&p->addr, ifa->ifa_addr, p->addr_len);
		p->backup = path_backup(ifa->ifa_name, ifa->ifa_addr);
		n++;
	}
	freeifaddrs(all);
	return n;
}

unsigned int mps_pm_ifindex_of(const struct sockaddr *sa)
{
	struct ifaddrs *all, *ifa;
	unsigned int idx = 0;

	if (getifaddrs(&all) < 0)
		return 0;
	for (ifa = all; ifa; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr && mps_pm_same_addr(ifa->ifa_addr, sa)) {
			idx = if_nametoindex(ifa->ifa_name);
			break;
		}
	}
	freeifaddrs(all);
	return idx;
}

/* SO_BINDTODEVICE, tolerating EPERM (logged once). */
static int bind_device(int fd, const struct mps_path *p)
{
	if (mps_libc()->setsockopt(fd,
		       SOL_SOCKET,
		       SO_BINDTODEVICE,
		       p->ifname,
		       (socklen_t)strlen(p->ifname) + 1) == 0)
		return 0;
	if (errno != EPERM)
		return -errno;
	if (!bindtodevice_denied) {
		bindtodevice_denied = true;
		mps_warn("bindtodevice-denied",
			 "ifname=%s fallback=bind-address",
			 p->ifname);
	}
	return 0;
}

int mps_pm_family(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
		return AF_INET;
	return sa->sa_family;
}

/*
 * dst in the family of path p (an IPv4-mapped peer unmapped for an IPv4
 * path), into out; its length, or -EAFNOSUPPORT when p cannot reach it.
 */
static int join_dst(const struct mps_path *p,
		    const struct sockaddr *dst,
		    socklen_t dst_len,
		    struct sockaddr_storage *out)
{
	struct mps_addr wire;
	uint16_t port;

	if (dst->sa_family == p->addr.ss_family) {
		if (dst_len > sizeof(*out))
			return -EINVAL;
		memcpy(out, dst, dst_len);
		return (int)dst_len;
	}
	if (mps_pm_family(dst) != p->addr.ss_family ||
	    mps_pm_to_wire(dst, &wire) < 0)
		return -EAFNOSUPPORT;
	port = ntohs(((const struct sockaddr_in6 *)dst)->sin6_port);
	return mps_pm_from_wire(&wire, port, AF_INET, out);
}

int mps_pm_join_socket(const struct mps_path *p,
		       const struct sockaddr *dst,
		       socklen_t dst_len)
{
	struct sockaddr_storage to;
	int len = join_dst(p, dst, dst_len, &to), fd, err;

	if (len < 0)
		return len;
	dst = (const struct sockaddr *)&to;
	dst_len = (socklen_t)len;
	fd = mps_fdtab_own_socket(p->addr.ss_family);
	if (fd < 0)
		return fd;
	err = bind_device(fd, p);
	if (err == 0 &&
	    bind(fd, (const struct sockaddr *)&p->addr, p->addr_len) < 0)
		err = -errno;
	if (err == 0 && mps_libc()->connect(fd, dst, dst_len) < 0 &&
	    errno != EINPROGRESS)
		err = -errno;
	if (err) {
		mps_fdtab_close(fd);
		return err;
	}
	return fd;
}

void mps_pm_tune(int fd)
{
	int lowat = MPS_PM_NOTSENT_LOWAT;

	int one = 1;

	mps_libc()->setsockopt(
		fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	mps_libc()->setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void mps_pm_user_timeout(int fd, unsigned int ms)
{
	mps_libc()->setsockopt(
		fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

int mps_pm_metrics(int fd, struct mps_sf_metrics *m)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	uint64_t mss;

	memset(&ti, 0, sizeof(ti));
	if (mps_libc()->getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	mss = ti.tcpi_snd_mss;
	memset(m, 0, sizeof(*m));
	m->srtt_us = ti.tcpi_rtt;
	m->rttvar_us = ti.tcpi_rttvar;
	m->cwnd_bytes = (uint64_t)ti.tcpi_snd_cwnd * mss;
	m->notsent_bytes = ti.tcpi_notsent_bytes;
	m->unacked_bytes = (uint64_t)ti.tcpi_unacked * mss;
	m->delivery_rate = ti.tcpi_delivery_rate;
	m->rate_app_limited = ti.tcpi_delivery_rate_app_limited;
	/* Older kernels fill less of tcp_info: 0 then means unknown. */
	if (len >= offsetof(struct tcp_info, tcpi_bytes_acked) +
			   sizeof(ti.tcpi_bytes_acked))
		m->acked_bytes = ti.tcpi_bytes_acked;
	m->room = ti.tcpi_notsent_bytes < MPS_PM_NOTSENT_LOWAT
			  ? MPS_PM_NOTSENT_LOWAT - ti.tcpi_notsent_bytes
			  : 0;
	return 0;
}

int mps_pm_netlink_open(void)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR |
			     RTMGRP_IPV6_IFADDR,
	};
	int fd, err = 0;

	mps_fdtab_lock();
	fd = mps_libc()->socket(AF_NETLINK,
				SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
				NETLINK_ROUTE);
	if (fd < 0)
		err = -errno;
	else
		fd = mps_fdtab_own_locked(fd);
	mps_fdtab_unlock();
	if (fd < 0)
		return err;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		mps_fdtab_close(fd);
		return err;
	}
	return fd;
}

static void nl_link(const struct nlmsghdr *nh, mps_pm_change_fn fn, void *arg)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(nh);
	bool up = (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING);

	if (nh->nlmsg_type == RTM_DELLINK)
		up = false;
	fn(up ? MPS_PM_LINK_UP : MPS_PM_LINK_DOWN,
	   (unsigned int)ifi->ifi_index,
	   NULL,
	   arg);
}

static void nl_addr(const struct nlmsghdr *nh, mps_pm_change_fn fn, void *arg)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
	const struct rtattr *rta = IFA_RTA(ifa);
	int len = (int)IFA_PAYLOAD(nh);
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type != IFA_ADDRESS && rta->rta_type != IFA_LOCAL)
			continue;
		if (ifa->ifa_family == AF_INET && RTA_PAYLOAD(rta) >= 4) {
			ss.ss_family = AF_INET;
			memcpy(&((struct sockaddr_in *)&ss)->sin_addr,
			       RTA_DATA(rta),
			       4);
		} else if (ifa->ifa_family == AF_INET6 &&
			   RTA_PAYLOAD(rta) >= 16) {
			ss.ss_family = AF_INET6;
			memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr,
			       RTA_DATA(rta),
			       16);
		}
	}
	if (ss.ss_family == 0)
		return;
	fn(nh->nlmsg_type == RTM_NEWADDR ? MPS_PM_ADDR_NEW : MPS_PM_ADDR_DEL,
	   ifa->ifa_index,
	   (struct sockaddr *)&ss,
	   arg);
}

int mps_pm_netlink_read(int fd, mps_pm_change_fn fn, void *arg)
{
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	const struct nlmsghdr *nh;
	ssize_t n;

	for (;;) {
		n = mps_libc()->recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (n == 0)
			return 0;
		for (nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, n);
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == RTM_NEWLINK ||
			    nh->nlmsg_type == RTM_DELLINK)
				nl_link(nh, fn, arg);
			else if (nh->nlmsg_type == RTM_NEWADDR ||
				 nh->nlmsg_type == RTM_DELADDR)
				nl_addr(nh, fn, arg);
		}
	}
}
