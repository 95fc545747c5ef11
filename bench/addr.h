/*
 * addr.h: the address argument of bench/idle.c and bench/ttfb.c.
 */
#ifndef BENCH_ADDR_H
#define BENCH_ADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Fill *sa from ADDR (IPv4 or IPv6) and PORT, or exit 2; its length. */
static inline socklen_t bench_parse_addr(const char *addr,
					 const char *port,
					 struct sockaddr_storage *sa)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((unsigned short)atoi(port));
		return sizeof(*in4);
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)atoi(port));
		return sizeof(*in6);
	}
	fprintf(stderr, "not an address: %s\n", addr);
	exit(2);
}

#endif /* BENCH_ADDR_H */
