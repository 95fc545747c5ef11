/*
 * compat-fds.c: descriptor games on converted connections, for
 * compat-fds.sh.  Each case connects to an echo server (HOST PORT), moves
 * or copies the descriptor, then sends a pattern, half-closes and checks
 * every byte of the echo through the descriptor it ended with.  Prints one
 * line per case; exits 0 when every case passed.
 *
 * Usage: compat-fds HOST PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define XFER (256 * 1024)

static struct sockaddr_in server;
static int failures;

static int connect_fd(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&server,
			      sizeof(server)) < 0) {
		perror("socket/connect");
		exit(2);
	}
	return fd;
}

static void fill(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

/* Wait until FD is readable (poll, so that a number above 1024 is fine). */
static int wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 20000) == 1 ? 0 : -1;
}

/* Send XFER bytes, half-close, read the echo to EOF and compare; the
 * echo server reads everything before it answers little, so sending the
 * whole buffer first cannot deadlock at this size. */
static const char *exchange(int fd, unsigned seed)
{
	static unsigned char out[XFER], in[XFER + 1];
	size_t sent = 0, got = 0;
	ssize_t n;

	fill(out, XFER, seed);
	while (sent < XFER) {
		n = write(fd, out + sent, XFER - sent);
		if (n < 0)
			return strerror(errno);
		sent += (size_t)n;
		/* drain what came back, so neither side's buffers fill */
		while (got < XFER) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, 0) != 1)
				break;
			n = read(fd, in + got, sizeof(in) - got);
			if (n <= 0)
				return n < 0 ? strerror(errno) : "early EOF";
			got += (size_t)n;
		}
	}
	if (shutdown(fd, SHUT_WR) < 0)
		return strerror(errno);
	for (;;) {
		if (wait_readable(fd) < 0)
			return "no echo within 20 s";
		n = read(fd, in + got, sizeof(in) - got);
		if (n < 0)
			return strerror(errno);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != XFER)
		return "echo length differs";
	if (memcmp(in, out, XFER) != 0)
		return "echo bytes differ";
	return NULL;
}

static void verdict(const char *name, const char *err)
{
	if (err) {
		printf("FAIL %s: %s\n", name, err);
		failures++;
	} else {
		printf("ok %s\n", name);
	}
	fflush(stdout);
}

/* dup2 one converted descriptor over another converted one. */
static void case_dup2_over(void)
{
	int a = connect_fd(), b = connect_fd();

	if (dup2(a, b) != b) {
		verdict("dup2 over a converted descriptor", strerror(errno));
		return;
	}
	verdict("dup2 over a converted descriptor (new number)",
		exchange(b, 1));
	close(a);
	close(b);
}

/* Three duplicates; close two; the last carries on. */
static void case_close_one_of_many(void)
{
	int a = connect_fd(), b = dup(a), c = dup(a);

	close(a);
	close(c);
	verdict("closing duplicates, the connection lives on",
		exchange(b, 2));
	close(b);
}

/* F_DUPFD_CLOEXEC at or above 100; the original closed. */
static void case_dupfd_cloexec(void)
{
	int a = connect_fd(), b = fcntl(a, F_DUPFD_CLOEXEC, 100);
	int flags = fcntl(b, F_GETFD);

	close(a);
	if (b < 100 || flags < 0 || !(flags & FD_CLOEXEC))
		verdict("F_DUPFD_CLOEXEC", "wrong number or no FD_CLOEXEC");
	else
		verdict("F_DUPFD_CLOEXEC (>= 100, FD_CLOEXEC set)",
			exchange(b, 3));
	close(b);
}

/* dup2 to 1500, the limit raised; the addresses still answer there. */
static void case_dup2_high(void)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	int a = connect_fd(), one = 0;
	socklen_t olen = sizeof(one);

	if (dup2(a, 1500) != 1500) {
		verdict("dup2 to 1500", strerror(errno));
		return;
	}
	close(a);
	if (getpeername(1500, (struct sockaddr *)&peer, &len) < 0 ||
	    peer.sin_family != AF_INET ||
	    peer.sin_addr.s_addr != server.sin_addr.s_addr ||
	    peer.sin_port != server.sin_port)
		verdict("getpeername on 1500", "not the server's address");
	else if (getsockopt(1500, IPPROTO_TCP, TCP_NODELAY, &one, &olen) < 0)
		verdict("TCP_NODELAY on 1500", strerror(errno));
	else
		verdict("dup2 to 1500 (getpeername, TCP_NODELAY answer)",
			exchange(1500, 4));
	close(1500);
}

/* A socket created at 1600 (dup2 before connect), then connected. */
static void case_connect_high(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (dup2(s, 1600) != 1600) {
		verdict("socket moved to 1600", strerror(errno));
		return;
	}
	close(s);
	if (connect(1600, (struct sockaddr *)&server, sizeof(server)) < 0) {
		verdict("connect on 1600", strerror(errno));
		return;
	}
	verdict("connect on descriptor 1600", exchange(1600, 5));
	close(1600);
}

/* TCP_NODELAY reads back as the program set it, off then on (the
 * subflows themselves keep it on: libmptcpshim(7)). */
static void case_nodelay_wish(void)
{
	int fd = connect_fd(), v, off = 0, on = 1;
	socklen_t len = sizeof(v);
	const char *err = NULL;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off)) < 0 ||
	    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0)
		err = strerror(errno);
	else if (v != 0)
		err = "TCP_NODELAY set to 0 reads back as nonzero";
	else if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) <
			 0 ||
		 getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0)
		err = strerror(errno);
	else if (v == 0)
		err = "TCP_NODELAY set to 1 reads back as 0";
	verdict("TCP_NODELAY reads back as set", err ? err : exchange(fd, 6));
	close(fd);
}

int main(int argc, char **argv)
{
	struct rlimit rl = { 4096, 4096 };

	if (argc != 3) {
		fprintf(stderr, "usage: compat-fds HOST PORT\n");
		return 2;
	}
	server.sin_family = AF_INET;
	server.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1)
		return 2;
	case_dup2_over();
	case_close_one_of_many();
	case_dupfd_cloexec();
	case_nodelay_wish();
	/* the limit is raised after the library has started */
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("setrlimit");
		return 2;
	}
	case_dup2_high();
	case_connect_high();
	return failures ? 1 : 0;
}
