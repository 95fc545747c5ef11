/*
 * pingpong.c: one-byte request/response latency over one TCP connection,
 * for scripts/bench-loopback.sh.
 *
 *   pingpong server PORT [ADDRESS]
 *       accept one connection, answer each byte with one byte, exit at
 *       end of stream
 *   pingpong client HOST PORT COUNT
 *       connect, make WARMUP round trips, then COUNT timed ones; print
 *       "median_us mean_us p99_us" on one line
 *
 * Both ends set TCP_NODELAY; a failure to set it is reported on stderr
 * and does not stop the run (a shimmed socket may refuse it).  Built by
 * the benchmark with plain cc; nothing else needs it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 1000

static void die(const char *what)
{
	fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		fprintf(stderr, "pingpong: TCP_NODELAY: %s (continuing)\n",
			strerror(errno));
}

/* Resolve host and port; passive when host is NULL. */
static struct addrinfo *resolve(const char *host, const char *port)
{
	struct addrinfo hints = { 0 }, *res;
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = host ? 0 : AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "pingpong: %s: %s\n", host ? host : "any",
			gai_strerror(rc));
		exit(1);
	}
	return res;
}

/* Read exactly one byte; 0 at end of stream, 1 otherwise. */
static int read_byte(int fd, char *c)
{
	ssize_t n;

	do
		n = read(fd, c, 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("read");
	return (int)n;
}

static void write_byte(int fd, char c)
{
	ssize_t n;

	do
		n = write(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		die("write");
}

static int run_server(const char *port, const char *addr)
{
	struct addrinfo *ai = resolve(addr, port);
	int one = 1, lfd, fd;
	char c;

	lfd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");
	freeaddrinfo(ai);

	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(lfd);
	set_nodelay(fd);

	while (read_byte(fd, &c))
		write_byte(fd, c);
	close(fd);
	return 0;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One round trip; returns its duration in us. */
static double round_trip(int fd)
{
	double start = now_us();
	char c = 'p';

	write_byte(fd, c);
	if (!read_byte(fd, &c)) {
		fprintf(stderr, "pingpong: the server closed early\n");
		exit(1);
	}
	return now_us() - start;
}

static int run_client(const char *host, const char *port, long count)
{
	struct addrinfo *ai = resolve(host, port);
	double *rtt, sum = 0;
	long i;
	int fd;

	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("connect");
	freeaddrinfo(ai);
	set_nodelay(fd);

	rtt = calloc((size_t)count, sizeof(*rtt));
	if (!rtt)
		die("calloc");
	for (i = 0; i < WARMUP; i++)
		round_trip(fd);
	for (i = 0; i < count; i++) {
		rtt[i] = round_trip(fd);
		sum += rtt[i];
	}
	close(fd);

	qsort(rtt, (size_t)count, sizeof(*rtt), cmp_double);
	printf("%.1f %.1f %.1f\n", rtt[count / 2], sum / count,
	       rtt[count * 99 / 100]);
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "server") == 0)
		return run_server(argv[2], argc > 3 ? argv[3] : NULL);
	if (argc == 5 && strcmp(argv[1], "client") == 0 && atol(argv[4]) > 0)
		return run_client(argv[2], argv[3], atol(argv[4]));
	fprintf(stderr, "usage: pingpong server PORT [ADDRESS]\n"
		"       pingpong client HOST PORT COUNT\n");
	return 2;
}
