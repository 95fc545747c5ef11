/*
 * xfer: sender, receiver and counter sampler of the mptcpshim benchmark.
 *
 *   xfer server -l ADDR -p PORT (-S|-R) -n BYTES [-r READY] [-o CSV] [-T S]
 *   xfer client -c ADDR -p PORT [-b SRC] (-S|-R) -n BYTES [-o CSV] [-T S]
 *   xfer sample -o CSV [-i MS] LABEL=FILE...
 *   xfer now
 *
 * One TCP connection carries BYTES bytes of a deterministic pattern from
 * the sender (-S) to the receiver (-R); either end may be the server.
 * The byte at stream offset k is byte k % 8 (little end first) of
 * pattern_word(k / 8), so a byte lost, repeated or moved is caught.  The
 * receiver checks every byte, records the bytes delivered at each 10 ms
 * tick after the connection was established (-o CSV: "t,bytes"), and
 * prints one summary line of key=value pairs:
 *
 *   bytes expected verified(yes|no) seconds goodput_mbps max_stall_ms
 *   t0 (CLOCK_MONOTONIC, s) error(none|mismatch|eof|timeout|errno name)
 *
 * The sender ends with shutdown(SHUT_WR) and waits for the receiver to
 * close.  -T bounds the whole transfer in seconds (default 120).
 *
 * "sample" reads each FILE (a counter in /sys) every -i ms (default 10)
 * until SIGINT or SIGTERM, then writes "t,LABEL..." rows with t in
 * CLOCK_MONOTONIC seconds.  "now" prints CLOCK_MONOTONIC in seconds.
 *
 * The program uses only the plain socket calls, so that it can run
 * unchanged under mptcpize or LD_PRELOAD=libmptcpshim.so.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_BYTES (256 * 1024)
#define TICK_NS 10000000ULL
#define NSEC_PER_SEC 1000000000ULL
#define MAX_COUNTERS 32

struct options {
	const char *listen_addr;
	const char *connect_addr;
	const char *bind_addr;
	const char *port;
	const char *ready_file;
	const char *csv_file;
	unsigned long long bytes;
	double timeout_s;
	int sending;
	int receiving;
	unsigned int interval_ms;
};

/* What the receiver measured. */
struct receipt {
	unsigned long long bytes;
	unsigned long long mismatch_at;
	int mismatch;
	uint64_t t0_ns;
	uint64_t last_ns;
	uint64_t max_stall_ns;
	const char *error;
	unsigned long long *ticks; /* bytes delivered at each tick */
	size_t tick_count;
	size_t tick_cap;
};

static volatile sig_atomic_t stop_requested;

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "xfer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fputs("usage: xfer server -l ADDR -p PORT (-S|-R) -n BYTES "
	      "[-r READY] [-o CSV] [-T S]\n"
	      "       xfer client -c ADDR -p PORT [-b SRC] (-S|-R) -n BYTES "
	      "[-o CSV] [-T S]\n"
	      "       xfer sample -o CSV [-i MS] LABEL=FILE...\n"
	      "       xfer now\n",
	      stderr);
	exit(2);
}

/* The 64-bit word at word index w of the pattern (splitmix64). */
static uint64_t pattern_word(uint64_t w)
{
	uint64_t z = w + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned char pattern_byte(uint64_t offset)
{
	return (unsigned char)(pattern_word(offset / 8) >> (8 * (offset % 8)));
}

/* Fill buf with the len pattern bytes that start at stream offset off. */
static void pattern_fill(unsigned char *buf, size_t len, uint64_t off)
{
	size_t i = 0;
	uint64_t word;

	while (i < len && (off + i) % 8 != 0) {
		buf[i] = pattern_byte(off + i);
		i++;
	}
	for (; i + 8 <= len; i += 8) {
		word = htole64(pattern_word((off + i) / 8));
		memcpy(buf + i, &word, 8);
	}
	for (; i < len; i++)
		buf[i] = pattern_byte(off + i);
}

/*
 * Compare buf, the len bytes at stream offset off, with the pattern.
 * Returns the index of the first wrong byte, or len when all are right.
 */
static size_t pattern_check(const unsigned char *buf, size_t len, uint64_t off)
{
	static unsigned char want[CHUNK_BYTES];
	size_t i;

	pattern_fill(want, len, off);
	if (memcmp(buf, want, len) == 0)
		return len;
	for (i = 0; buf[i] == want[i]; i++)
		;
	return i;
}

/*
 * Resolve a numeric address and port.  Returns a list to free with
 * freeaddrinfo, or exits with a message.
 */
static struct addrinfo *resolve(const char *addr, const char *port, int passive)
{
	struct addrinfo hints, *res;
	int err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	err = getaddrinfo(addr, port, &hints, &res);
	if (err != 0) {
		fprintf(stderr,
			"xfer: %s port %s: %s\n",
			addr,
			port ? port : "-",
			gai_strerror(err));
		exit(2);
	}
	return res;
}

static void write_ready_file(const char *path)
{
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("ready file");
	if (write(fd, "ready\n", 6) != 6)
		die("ready file");
	close(fd);
}

/*
 * Wait up to the deadline for fd to become ready for events.  Returns 1
 * when ready, 0 at the deadline.
 */
static int wait_ready(int fd, short events, uint64_t deadline_ns)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	uint64_t now;
	int rc;

	for (;;) {
		now = monotonic_ns();
		if (now >= deadline_ns)
			return 0;
		rc = poll(&pfd, 1, (int)((deadline_ns - now) / 1000000 + 1));
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			die("poll");
	}
}

/*
 * Listen on the server address and accept one connection; return it, and
 * the listener in *lfd_out.  The listener stays open for the whole
 * transfer: kernel MPTCP takes its MP_JOIN subflows through it and
 * resets them once it is closed.
 */
static int
accept_one(const struct options *o, uint64_t deadline_ns, int *lfd_out)
{
	struct addrinfo *ai = resolve(o->listen_addr, o->port, 1);
	int one = 1, lfd, fd;

	lfd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("bind");
	if (listen(lfd, 4) < 0)
		die("listen");
	freeaddrinfo(ai);
	write_ready_file(o->ready_file);

	if (!wait_ready(lfd, POLLIN, deadline_ns)) {
		fprintf(stderr, "xfer: no client before the deadline\n");
		exit(1);
	}
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	*lfd_out = lfd;
	return fd;
}

/* Connect to the server, from the source address if one is given. */
static int connect_one(const struct options *o)
{
	struct addrinfo *ai = resolve(o->connect_addr, o->port, 0);
	struct addrinfo *src;
	int fd;

	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (o->bind_addr != NULL) {
		src = resolve(o->bind_addr, NULL, 1);
		if (bind(fd, src->ai_addr, src->ai_addrlen) < 0)
			die("bind");
		freeaddrinfo(src);
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("connect");
	freeaddrinfo(ai);
	return fd;
}

/*
 * Send o->bytes of the pattern on fd, then shut down the sending side and
 * wait for the receiver to close.  Returns 0, or 1 after a message.
 */
static int run_sender(int fd, const struct options *o, uint64_t deadline_ns)
{
	static unsigned char buf[CHUNK_BYTES];
	unsigned long long off = 0;
	size_t len, done;
	ssize_t n;

	while (off < o->bytes) {
		len = o->bytes - off < CHUNK_BYTES ? (size_t)(o->bytes - off)
						   : CHUNK_BYTES;
		pattern_fill(buf, len, off);
		for (done = 0; done < len; done += (size_t)n) {
			if (!wait_ready(fd, POLLOUT, deadline_ns)) {
				fprintf(stderr, "xfer: send timed out\n");
				return 1;
			}
			n = write(fd, buf + done, len - done);
			if (n < 0 && errno == EINTR)
				n = 0;
			else if (n < 0) {
				perror("xfer: write");
				return 1;
			}
		}
		off += len;
	}

	shutdown(fd, SHUT_WR);
	while (wait_ready(fd, POLLIN, deadline_ns)) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR))
			return 0;
	}
	fprintf(stderr, "xfer: receiver did not close\n");
	return 1;
}

/* Record the bytes delivered at every tick up to now. */
static void record_ticks(struct receipt *r,
			 uint64_t now_ns,
			 unsigned long long bytes_before)
{
	while (r->t0_ns + (r->tick_count + 1) * TICK_NS <= now_ns) {
		if (r->tick_count == r->tick_cap) {
			r->tick_cap = r->tick_cap ? 2 * r->tick_cap : 4096;
			r->ticks = realloc(r->ticks,
					   r->tick_cap * sizeof(*r->ticks));
			if (r->ticks == NULL)
				die("realloc");
		}
		r->ticks[r->tick_count++] = bytes_before;
	}
}

/* Account for n bytes that arrived at now_ns and check them. */
static void account_arrival(struct receipt *r,
			    const unsigned char *buf,
			    size_t n,
			    uint64_t now_ns)
{
	size_t good;

	record_ticks(r, now_ns, r->bytes);
	if (now_ns - r->last_ns > r->max_stall_ns)
		r->max_stall_ns = now_ns - r->last_ns;
	r->last_ns = now_ns;

	if (!r->mismatch) {
		good = pattern_check(buf, n, r->bytes);
		if (good < n) {
			r->mismatch = 1;
			r->mismatch_at = r->bytes + good;
		}
	}
	r->bytes += n;
}

/*
 * A transfer that ended early was stalled from its last byte until it
 * ended: count that too.
 */
static void note_final_stall(struct receipt *r)
{
	uint64_t now = monotonic_ns();

	if (strcmp(r->error, "none") != 0 && now - r->last_ns > r->max_stall_ns)
		r->max_stall_ns = now - r->last_ns;
}

/*
 * Receive and check o->bytes on fd, filling r.  Stops early at end of
 * stream, an error or the deadline, and says which in r->error.
 */
static void run_receiver(int fd,
			 const struct options *o,
			 uint64_t deadline_ns,
			 struct receipt *r)
{
	static unsigned char buf[CHUNK_BYTES];
	size_t want;
	ssize_t n;

	r->error = "none";
	while (r->bytes < o->bytes) {
		if (!wait_ready(fd, POLLIN, deadline_ns)) {
			r->error = "timeout";
			break;
		}
		want = o->bytes - r->bytes < CHUNK_BYTES
			       ? (size_t)(o->bytes - r->bytes)
			       : CHUNK_BYTES;
		n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->error = strerrorname_np(errno);
			break;
		}
		if (n == 0) {
			r->error = "eof";
			break;
		}
		account_arrival(r, buf, (size_t)n, monotonic_ns());
	}
	record_ticks(r, r->last_ns, r->bytes);
	note_final_stall(r);
}

static void write_timeline(const char *path, const struct receipt *r)
{
	FILE *f;
	size_t i;

	if (path == NULL)
		return;
	f = fopen(path, "w");
	if (f == NULL)
		die(path);
	fprintf(f, "t,bytes\n0.00,0\n");
	for (i = 0; i < r->tick_count; i++)
		fprintf(f,
			"%.2f,%llu\n",
			(double)(i + 1) * TICK_NS / 1e9,
			r->ticks[i]);
	fprintf(f,
		"%.3f,%llu\n",
		(double)(r->last_ns - r->t0_ns) / 1e9,
		r->bytes);
	fclose(f);
}

static void print_receipt(const struct options *o, const struct receipt *r)
{
	double secs = (double)(r->last_ns - r->t0_ns) / 1e9;
	int complete = r->bytes == o->bytes && !r->mismatch;

	if (r->mismatch)
		printf("# first wrong byte at offset %llu\n", r->mismatch_at);
	printf("bytes=%llu expected=%llu verified=%s seconds=%.3f "
	       "goodput_mbps=%.2f max_stall_ms=%.0f t0=%.6f error=%s\n",
	       r->bytes,
	       o->bytes,
	       complete ? "yes" : "no",
	       secs,
	       secs > 0 ? (double)r->bytes * 8 / secs / 1e6 : 0.0,
	       (double)r->max_stall_ns / 1e6,
	       (double)r->t0_ns / 1e9,
	       r->mismatch ? "mismatch" : r->error);
}

/* Run one end of the transfer; returns the exit status. */
static int run_transfer(const struct options *o, int is_server)
{
	uint64_t deadline =
		monotonic_ns() + (uint64_t)(o->timeout_s * NSEC_PER_SEC);
	struct receipt r;
	int fd, lfd = -1, status;

	fd = is_server ? accept_one(o, deadline, &lfd) : connect_one(o);
	if (o->sending) {
		status = run_sender(fd, o, deadline);
	} else {
		memset(&r, 0, sizeof(r));
		r.t0_ns = r.last_ns = monotonic_ns();
		run_receiver(fd, o, deadline, &r);
		write_timeline(o->csv_file, &r);
		print_receipt(o, &r);
		status = r.bytes == o->bytes && !r.mismatch ? 0 : 1;
	}
	close(fd);
	if (lfd >= 0)
		close(lfd);
	return status;
}

/* Parse "12345", "16MiB", "10M" (decimal) and the like into bytes. */
static unsigned long long parse_bytes(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		usage();
	if (strcmp(end, "") == 0)
		return (unsigned long long)v;
	if (strcmp(end, "KiB") == 0)
		return (unsigned long long)(v * 1024);
	if (strcmp(end, "MiB") == 0)
		return (unsigned long long)(v * 1024 * 1024);
	if (strcmp(end, "GiB") == 0)
		return (unsigned long long)(v * 1024 * 1024 * 1024);
	if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
		return (unsigned long long)(v * 1e3);
	if (strcmp(end, "M") == 0)
		return (unsigned long long)(v * 1e6);
	usage();
	return 0;
}

static void parse_transfer_options(int argc, char **argv, struct options *o)
{
	int opt;

	o->timeout_s = 120;
	while ((opt = getopt(argc, argv, "l:c:b:p:r:o:n:T:SR")) != -1) {
		switch (opt) {
		case 'l':
			o->listen_addr = optarg;
			break;
		case 'c':
			o->connect_addr = optarg;
			break;
		case 'b':
			o->bind_addr = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'r':
			o->ready_file = optarg;
			break;
		case 'o':
			o->csv_file = optarg;
			break;
		case 'n':
			o->bytes = parse_bytes(optarg);
			break;
		case 'T':
			o->timeout_s = atof(optarg);
			break;
		case 'S':
			o->sending = 1;
			break;
		case 'R':
			o->receiving = 1;
			break;
		default:
			usage();
		}
	}
	if (o->sending == o->receiving || o->port == NULL || o->bytes == 0)
		usage();
}

/* One counter file being sampled, and its label. */
struct counter {
	const char *label;
	int fd;
};

static unsigned long long read_counter(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

/*
 * Sample the counters every interval until a stop signal, then write all
 * rows.  Rows are kept in memory so that sampling does no file output.
 */
static int run_sampler(const struct options *o, struct counter *c, int nc)
{
	unsigned long long *rows = NULL;
	uint64_t *times = NULL;
	size_t n = 0, cap = 0;
	struct timespec next;
	uint64_t step = (uint64_t)o->interval_ms * 1000000ULL;
	FILE *f;
	size_t i;
	int k;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_requested) {
		if (n == cap) {
			cap = cap ? 2 * cap : 8192;
			rows = realloc(rows, cap * nc * sizeof(*rows));
			times = realloc(times, cap * sizeof(*times));
			if (rows == NULL || times == NULL)
				die("realloc");
		}
		times[n] = monotonic_ns();
		for (k = 0; k < nc; k++)
			rows[n * nc + k] = read_counter(c[k].fd);
		n++;

		next.tv_nsec += (long)step;
		while (next.tv_nsec >= (long)NSEC_PER_SEC) {
			next.tv_nsec -= (long)NSEC_PER_SEC;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}

	f = fopen(o->csv_file, "w");
	if (f == NULL)
		die(o->csv_file);
	fprintf(f, "t");
	for (k = 0; k < nc; k++)
		fprintf(f, ",%s", c[k].label);
	fprintf(f, "\n");
	for (i = 0; i < n; i++) {
		fprintf(f, "%.6f", (double)times[i] / 1e9);
		for (k = 0; k < nc; k++)
			fprintf(f, ",%llu", rows[i * nc + k]);
		fprintf(f, "\n");
	}
	fclose(f);
	return 0;
}

static int sample_main(int argc, char **argv)
{
	struct options o = {.interval_ms = 10};
	struct counter c[MAX_COUNTERS];
	char *eq;
	int opt, nc = 0;

	while ((opt = getopt(argc, argv, "o:i:")) != -1) {
		if (opt == 'o')
			o.csv_file = optarg;
		else if (opt == 'i')
			o.interval_ms = (unsigned int)atoi(optarg);
		else
			usage();
	}
	if (o.csv_file == NULL || o.interval_ms == 0 || optind >= argc ||
	    argc - optind > MAX_COUNTERS)
		usage();
	for (; optind < argc; optind++, nc++) {
		eq = strchr(argv[optind], '=');
		if (eq == NULL)
			usage();
		*eq = '\0';
		c[nc].label = argv[optind];
		c[nc].fd = open(eq + 1, O_RDONLY);
		if (c[nc].fd < 0)
			die(eq + 1);
	}
	return run_sampler(&o, c, nc);
}

/* The sampler ends on SIGINT or SIGTERM after writing what it has. */
static void install_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
	struct options o;
	const char *cmd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof(o));

	if (strcmp(cmd, "now") == 0) {
		printf("%.6f\n", (double)monotonic_ns() / 1e9);
		return 0;
	}
	if (strcmp(cmd, "sample") == 0) {
		install_stop_signals();
		return sample_main(argc - 1, argv + 1);
	}

	parse_transfer_options(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "server") == 0 && o.listen_addr != NULL)
		return run_transfer(&o, 1);
	if (strcmp(cmd, "client") == 0 && o.connect_addr != NULL)
		return run_transfer(&o, 0);
	usage();
	return 2;
}
