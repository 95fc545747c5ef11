/*
 * compat-static.c: a client for compat-static.sh, meant to be linked
 * statically, so that LD_PRELOAD cannot load into it.  It sends the file
 * FILE to HOST PORT, half-closes, and writes what comes back to OUT.
 *
 * Usage: compat-static HOST PORT FILE OUT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	static char buf[65536];
	FILE *in, *out;
	size_t n;
	ssize_t r;
	int fd;

	if (argc != 5)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	in = fopen(argv[3], "rb");
	out = fopen(argv[4], "wb");
	if (!in || !out)
		return 2;
	/* the file is small (1 MiB): the echo server buffers it all */
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		for (size_t off = 0; off < n; off += (size_t)r) {
			r = write(fd, buf + off, n - off);
			if (r < 0) {
				perror("write");
				return 1;
			}
		}
	shutdown(fd, SHUT_WR);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)r, out);
	if (r < 0) {
		perror("read");
		return 1;
	}
	return fclose(out) == 0 ? 0 : 1;
}
