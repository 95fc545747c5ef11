/*
 * idle.c: many idle connections in one process, for bench/targets.sh.
 *
 *   idle server ADDR PORT COUNT
 *       accept COUNT connections; answer the first byte of each with one
 *       byte; print "ready" once all COUNT have been answered, then hold
 *       them until SIGTERM
 *   idle client ADDR PORT COUNT
 *       open COUNT connections one after the other, each making one
 *       one-byte round trip; print "ready" once all are open, then hold
 *       them until SIGTERM
 *
 * Each also prints "one" after its first connection has made its round
 * trip and waits for a line on standard input before going on, so that
 * the script can read the process's memory with one live connection (the
 * loop thread started, the libraries loaded) and again with COUNT.  The
 * round trip makes sure a converted connection has finished its
 * handshake, so that what is measured is the connection at rest.
 *
 * Only plain socket calls: it runs unchanged under mptcpize or
 * LD_PRELOAD=libmptcpshim.so.  Needs RLIMIT_NOFILE well above COUNT
 * (the script raises it).
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
#include <unistd.h>

#include "addr.h"

static void die(const char *what)
{
	fprintf(stderr, "idle: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Read exactly one byte, retrying interrupted reads. */
static void read_one(int fd)
{
	char c;
	ssize_t n;

	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1)
		die(n == 0 ? "read: end of stream" : "read");
}

static void write_one(int fd)
{
	if (write(fd, "x", 1) != 1)
		die("write");
}

/* Say "one" and wait until the script has measured. */
static void checkpoint(void)
{
	char line[16];

	printf("one\n");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		exit(0);
}

static void hold(void)
{
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

static void server(const struct sockaddr_storage *sa, socklen_t len, long n)
{
	int one = 1;
	int lfd = socket(sa->ss_family, SOCK_STREAM, 0);

	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (const struct sockaddr *)sa, len) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	for (long i = 0; i < n; i++) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			die("accept");
		read_one(fd);
		write_one(fd);
		if (i == 0)
			checkpoint();
	}
	hold();
}

static void client(const struct sockaddr_storage *sa, socklen_t len, long n)
{
	for (long i = 0; i < n; i++) {
		int fd = socket(sa->ss_family, SOCK_STREAM, 0);

		if (fd < 0)
			die("socket");
		if (connect(fd, (const struct sockaddr *)sa, len) < 0)
			die("connect");
		write_one(fd);
		read_one(fd);
		if (i == 0)
			checkpoint();
	}
	hold();
}

int main(int argc, char **argv)
{
	struct sockaddr_storage sa;
	socklen_t len;
	long n;

	if (argc != 5) {
		fprintf(stderr, "usage: idle server|client ADDR PORT COUNT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	len = bench_parse_addr(argv[2], argv[3], &sa);
	n = atol(argv[4]);
	if (n < 1)
		n = 1;
	if (strcmp(argv[1], "server") == 0)
		server(&sa, len, n);
	else if (strcmp(argv[1], "client") == 0)
		client(&sa, len, n);
	fprintf(stderr, "idle: unknown mode %s\n", argv[1]);
	return 2;
}
