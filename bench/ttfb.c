/*
 * ttfb.c: time to the first response byte of a new connection, for
 * bench/targets.sh.
 *
 *   ttfb server ADDR PORT
 *       accept connections one after the other; read a request line,
 *       answer with RESPONSE_BYTES bytes and close
 *   ttfb client ADDR PORT COUNT
 *       COUNT times: connect, send a request line, read until the first
 *       byte of the answer arrives (that time is measured, from before
 *       socket()), read the rest, close; print one line
 *       "first_ms median_ms p90_ms" where first is the first connection
 *       (nothing known about the peer yet) and median and p90 are over
 *       the others (the peer known)
 *
 * Only plain socket calls, so it runs unchanged under mptcpize or
 * LD_PRELOAD=libmptcpshim.so.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"

#define RESPONSE_BYTES 1024
#define REQUEST "GET / HTTP/1.0\r\n\r\n"

static void die(const char *what)
{
	fprintf(stderr, "ttfb: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Read the request: up to the blank line that ends it, or end of stream. */
static void read_request(int fd)
{
	char buf[512];
	size_t have = 0;

	while (have < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			return;
	}
}

static void server(const struct sockaddr_storage *sa, socklen_t len)
{
	char answer[RESPONSE_BYTES];
	int one = 1;
	int lfd = socket(sa->ss_family, SOCK_STREAM, 0);

	memset(answer, 'x', sizeof(answer));
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (const struct sockaddr *)sa, len) < 0)
		die("bind");
	if (listen(lfd, 128) < 0)
		die("listen");
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		read_request(fd);
		if (write(fd, answer, sizeof(answer)) < 0)
			fprintf(stderr, "ttfb: write: %s\n", strerror(errno));
		close(fd);
	}
}

/* One exchange; returns the milliseconds to the first answer byte. */
static double one_exchange(const struct sockaddr_storage *sa, socklen_t len)
{
	char buf[RESPONSE_BYTES];
	double t0 = now_ms(), t1;
	int fd = socket(sa->ss_family, SOCK_STREAM, 0);
	ssize_t n;

	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)sa, len) < 0)
		die("connect");
	if (write(fd, REQUEST, strlen(REQUEST)) < 0)
		die("write");
	n = read(fd, buf, 1);
	t1 = now_ms();
	if (n != 1)
		die(n == 0 ? "read: end of stream" : "read");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void client(const struct sockaddr_storage *sa, socklen_t len, int n)
{
	double *t = calloc((size_t)n, sizeof(*t));

	if (t == NULL || n < 2) {
		fprintf(stderr, "ttfb: COUNT must be at least 2\n");
		exit(2);
	}
	for (int i = 0; i < n; i++)
		t[i] = one_exchange(sa, len);
	qsort(t + 1, (size_t)n - 1, sizeof(*t), cmp_double);
	printf("%.2f %.2f %.2f\n",
	       t[0],
	       t[1 + (n - 1) / 2],
	       t[1 + (n - 1) * 9 / 10]);
	free(t);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage sa;
	socklen_t len;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "server") == 0) {
		len = bench_parse_addr(argv[2], argv[3], &sa);
		server(&sa, len);
	} else if (argc == 5 && strcmp(argv[1], "client") == 0) {
		len = bench_parse_addr(argv[2], argv[3], &sa);
		client(&sa, len, atoi(argv[4]));
		return 0;
	}
	fprintf(stderr, "usage: ttfb server ADDR PORT | "
			"ttfb client ADDR PORT COUNT\n");
	return 2;
}
