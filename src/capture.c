/*
 * capture.c: the pcap file of MPTCPSHIM_CAPTURE (see capture.h).
 *
 * Decisions:
 * - libpcap writes the file (pcap_open_dead, pcap_dump_fopen, pcap_dump)
 *   with link type RAW: each packet starts with its IPv4 or IPv6 header.
 *   Its few functions are declared here, not taken from pcap.h, so that
 *   building needs no libpcap-dev; pcap_dump() and struct pcap_pkthdr are
 *   part of libpcap's stable ABI.
 * - The file's FILE is our own (fopencookie) and writes only in the
 *   process that opened it: a fork child holds a copy of stdio's buffer,
 *   and glibc flushes every FILE at exit, which must not write the
 *   parent's packets a second time.
 * - The file descriptor is loop-owned (fdtab), so that the program's
 *   close_range() or dup2() cannot take it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "capture.h"
#include "config.h"
#include "fdtab.h"
#include "libc.h"
#include "log.h"

#define CAP_DLT_RAW 12 /* DLT_RAW on Linux: LINKTYPE_RAW in the file */
#define CAP_SNAPLEN (MPS_CAP_HDR_MAX + MPS_CAP_SEG_MAX)

/* libpcap's ABI, as far as this file uses it. */
struct cap_pkthdr {
	struct timeval ts;
	uint32_t caplen;
	uint32_t len;
};

struct cap_pcap {
	void *(*open_dead)(int linktype, int snaplen);
	void *(*dump_fopen)(void *pcap, FILE *f);
	void (*dump)(unsigned char *dumper,
		     const struct cap_pkthdr *h,
		     const unsigned char *pkt);
};

/* The loop thread's; file and stopped are also read by
 * mps_capture_flush() in the thread that exits. */
static struct cap_pcap pcap;
static void *pcap_handle;
static void *dumper;
static _Atomic(FILE *) file;
static int file_fd = -1;
static pid_t file_pid;	     /* the process that opened it */
static _Atomic bool stopped; /* an error: capture nothing more */
static uint32_t seeds;	     /* ISN seeds handed out */
static uint8_t *pkt;	     /* CAP_SNAPLEN bytes: one packet, assembled */

/*
 * Stop capturing: one line on stderr when the capture cannot start (no
 * libpcap, no file), as for a bad variable; one log line when writing
 * fails later, so that a running program's stderr stays its own.
 */
static void cap_stop(const char *what, const char *why, bool starting)
{
	stopped = true;
	if (starting)
		fprintf(stderr,
			"mptcpshim: MPTCPSHIM_CAPTURE=%s: %s; not capturing\n",
			mps_config.capture,
			why);
	mps_error("capture-stopped", "what=%s why=\"%s\"", what, why);
}

static int cap_load(void)
{
	static const char *const names[] = {
		"libpcap.so.0.8", "libpcap.so.1", "libpcap.so"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]) && !pcap_handle; i++)
		pcap_handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!pcap_handle)
		return -ENOENT;
	*(void **)&pcap.open_dead = dlsym(pcap_handle, "pcap_open_dead");
	*(void **)&pcap.dump_fopen = dlsym(pcap_handle, "pcap_dump_fopen");
	*(void **)&pcap.dump = dlsym(pcap_handle, "pcap_dump");
	if (!pcap.open_dead || !pcap.dump_fopen || !pcap.dump)
		return -ENOSYS;
	return 0;
}

/* The file name with "%p" as the pid and "%%" as "%". */
static int cap_path(char *out, size_t size)
{
	const char *p;
	size_t n = 0;
	int w;

	for (p = mps_config.capture; *p; p++) {
		if (p[0] == '%' && p[1] == 'p')
			w = snprintf(out + n, size - n, "%ld", (long)getpid());
		else if (p[0] == '%' && p[1] == '%')
			w = snprintf(out + n, size - n, "%%");
		else
			w = snprintf(out + n, size - n, "%c", *p);
		if (p[0] == '%' && (p[1] == 'p' || p[1] == '%'))
			p++;
		if (w < 0 || (size_t)w >= size - n)
			return -ENAMETOOLONG;
		n += (size_t)w;
	}
	return 0;
}

/* Where one FILE writes, and for which process (each FILE its own: a
 * child's file must not receive its parent's buffered packets). */
struct cap_sink {
	int fd;
	pid_t pid;
};

/* stdio's writes, in the opening process only (see the top). */
static ssize_t cookie_write(void *cookie, const char *buf, size_t len)
{
	const struct cap_sink *sink = cookie;
	size_t done = 0;

	if (getpid() != sink->pid)
		return (ssize_t)len;
	while (done < len) {
		ssize_t n = mps_libc()->write(sink->fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static int cap_open_file(void)
{
	cookie_io_functions_t io = {.write = cookie_write};
	char path[MPS_CONFIG_PATH_MAX + 32];
	struct cap_sink *sink;
	int fd;

	if (cap_path(path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	pkt = pkt ? pkt : malloc(CAP_SNAPLEN);
	sink = malloc(sizeof(*sink));
	if (!pkt || !sink) {
		free(sink);
		return -ENOMEM;
	}
	mps_fdtab_lock();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		fd = mps_fdtab_own_locked(fd);
	mps_fdtab_unlock();
	if (fd < 0) {
		free(sink);
		return -errno;
	}
	sink->fd = file_fd = fd;
	sink->pid = file_pid = getpid();
	/* sink lives as long as the FILE, which is never closed */
	file = fopencookie(sink, "w", io);
	if (file)
		return 0;
	mps_fdtab_close(fd);
	free(sink);
	return -ENOMEM;
}

/* First use in this process: libpcap, the file, its header. */
static bool cap_start(void)
{
	void *p;
	int err;

	if (dumper)
		return true;
	if (stopped)
		return false;
	if (cap_load() < 0) {
		cap_stop("dlopen", "cannot load libpcap (libpcap0.8)", true);
		return false;
	}
	err = cap_open_file();
	if (err < 0) {
		cap_stop("open", strerror(-err), true);
		return false;
	}
	p = pcap.open_dead(CAP_DLT_RAW, CAP_SNAPLEN);
	dumper = p ? pcap.dump_fopen(p, file) : NULL;
	if (!dumper) {
		cap_stop("pcap_dump_fopen",
			 "libpcap cannot write the file",
			 true);
		return false;
	}
	mps_info("capture", "fd=%d", file_fd);
	return true;
}

/* capseg's emit function: one packet into the file. */
static void cap_emit(void *ctx,
		     const uint8_t *hdr,
		     size_t hlen,
		     const uint8_t *payload,
		     size_t plen)
{
	struct cap_pkthdr h;

	(void)ctx;
	if (stopped || !dumper || hlen + plen > CAP_SNAPLEN)
		return;
	memcpy(pkt, hdr, hlen);
	if (plen)
		memcpy(pkt + hlen, payload, plen);
	gettimeofday(&h.ts, NULL);
	h.caplen = h.len = (uint32_t)(hlen + plen);
	pcap.dump(dumper, &h, pkt);
	if (ferror(file))
		cap_stop("write", strerror(errno), false);
}

struct mps_cap_sf *mps_capture_open(const struct sockaddr *local,
				    const struct sockaddr *peer,
				    bool initiator,
				    bool plain,
				    int version)
{
	struct mps_cap_end l, p;
	struct mps_cap_sf *c;

	if (!mps_config.capture[0] || !cap_start())
		return NULL;
	if (mps_cap_end_from(&l, local) < 0 || mps_cap_end_from(&p, peer) < 0)
		return NULL;
	if (l.family != p.family)
		return NULL;
	c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	seeds++;
	mps_cap_sf_init(c,
			&l,
			&p,
			initiator,
			plain,
			version,
			(uint32_t)getpid() * 7919u + seeds,
			cap_emit,
			NULL);
	return c;
}

void mps_capture_bytes(struct mps_cap_sf *c,
		       enum mps_cap_dir dir,
		       const uint8_t *buf,
		       size_t len)
{
	if (!stopped)
		mps_cap_sf_bytes(c, dir, buf, len);
}

void mps_capture_written(struct mps_cap_sf *c,
			 const struct iovec *iov,
			 int cnt,
			 size_t n)
{
	int i;

	for (i = 0; i < cnt && n > 0 && !stopped; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

		mps_cap_sf_bytes(c, MPS_CAP_OUT, iov[i].iov_base, k);
		n -= k;
	}
}

void mps_capture_end(struct mps_cap_sf *c, enum mps_cap_dir dir, bool rst)
{
	if (!stopped)
		mps_cap_sf_end(c, dir, rst);
}

void mps_capture_close(struct mps_cap_sf *c, bool rst)
{
	if (!stopped)
		mps_cap_sf_end(c, MPS_CAP_OUT, rst);
	mps_cap_sf_free(c);
	free(c);
}

void mps_capture_flush(void)
{
	FILE *f = file;

	if (f && !stopped && getpid() == file_pid)
		fflush(f);
}

void mps_capture_child(void)
{
	/* the parent's FILE stays behind unused: closing it would flush */
	dumper = NULL;
	file = NULL;
	file_fd = -1; /* loop-owned: mps_fdtab_child() closed it */
	seeds = 0;
	if (mps_config.capture[0] && !strstr(mps_config.capture, "%p"))
		stopped = true; /* its name is the parent's file */
}
