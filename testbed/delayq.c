/*
 * delayq: the delay stage of the mptcpshim test bed.
 *
 * Usage: delayq [-r READY_FILE] QUEUE:DELAY_US [QUEUE:DELAY_US ...]
 *
 * Binds each named NFQUEUE queue number, holds every packet that netfilter
 * hands it for the queue's one-way delay, then accepts it.  Packets leave a
 * queue in the order they entered it: each queue has one fixed delay, so a
 * FIFO ring per queue is already sorted by due time, and a run of due
 * packets is released with one batch verdict.  The kernel limits the
 * packets awaiting a verdict per queue to RING_SLOTS, so a ring never
 * overflows; if it did, the packet would be accepted at once and counted.
 *
 * Only packet metadata is copied to user space (NFQNL_COPY_META), and GSO
 * packets are queued whole (NFQA_CFG_F_GSO), so the cost per packet stays
 * small.  When every queue is bound, the word "ready" is written to
 * READY_FILE.  SIGINT and SIGTERM accept all held packets and end the
 * program, which then prints per-queue counts on standard error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define MAX_QUEUES 64
#define RING_SLOTS 16384
#define RCVBUF_BYTES (16 * 1024 * 1024)
#define NSEC_PER_SEC 1000000000ULL

/* One held packet: its id in its queue and when it may leave. */
struct held_packet {
	uint32_t id;
	uint64_t due_ns;
};

/* One NFQUEUE queue with its fixed delay and its FIFO of held packets. */
struct delay_queue {
	uint16_t num;
	uint64_t delay_ns;
	struct nfq_q_handle *qh;
	struct held_packet *ring;
	size_t head;
	size_t count;
	uint64_t packets;
	uint64_t overflows;
	uint64_t verdict_errors;
};

static struct delay_queue queues[MAX_QUEUES];
static size_t queue_count;
static volatile sig_atomic_t stop_requested;
static uint64_t now_cached_ns;

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

static void usage(void)
{
	fprintf(stderr, "usage: delayq [-r READY_FILE] QUEUE:DELAY_US ...\n");
	exit(2);
}

/*
 * Parse "QUEUE:DELAY_US" into q.  Returns 0, or -1 for a malformed spec
 * or a queue number out of 0..65535.
 */
static int parse_queue_spec(const char *spec, struct delay_queue *q)
{
	char *end;
	unsigned long num;
	unsigned long long delay_us;

	errno = 0;
	num = strtoul(spec, &end, 10);
	if (errno || end == spec || *end != ':' || num > 65535)
		return -1;

	spec = end + 1;
	delay_us = strtoull(spec, &end, 10);
	if (errno || end == spec || *end != '\0')
		return -1;

	q->num = (uint16_t)num;
	q->delay_ns = delay_us * 1000ULL;
	return 0;
}

static struct delay_queue *find_queue(uint16_t num)
{
	size_t i;

	for (i = 0; i < queue_count; i++)
		if (queues[i].num == num)
			return &queues[i];
	return NULL;
}

/*
 * Accept every packet of q up to and including the one with id last_id,
 * which is the newest of those being released.
 */
static void accept_through(struct delay_queue *q, uint32_t last_id)
{
	if (nfq_set_verdict_batch(q->qh, last_id, NF_ACCEPT) < 0)
		q->verdict_errors++;
}

/*
 * Release the packets of q that are due at now_ns (all of them when
 * flush is set).  Returns the due time of the oldest packet still held,
 * or UINT64_MAX when q is empty.
 */
static uint64_t release_due(struct delay_queue *q, uint64_t now_ns, int flush)
{
	struct held_packet *p;
	uint32_t last_id = 0;
	int released = 0;

	while (q->count > 0) {
		p = &q->ring[q->head];
		if (!flush && p->due_ns > now_ns)
			break;
		last_id = p->id;
		released = 1;
		q->head = (q->head + 1) % RING_SLOTS;
		q->count--;
	}
	if (released)
		accept_through(q, last_id);

	if (q->count == 0)
		return UINT64_MAX;
	return q->ring[q->head].due_ns;
}

/*
 * libnetfilter_queue callback for one queued packet: append it to its
 * queue's ring, due one delay after now.  A packet that finds its ring
 * full is accepted at once.
 */
static int on_packet(struct nfq_q_handle *qh,
		     struct nfgenmsg *msg,
		     struct nfq_data *nfa,
		     void *data)
{
	struct delay_queue *q = data;
	struct nfqnl_msg_packet_hdr *hdr;
	struct held_packet *slot;
	uint32_t id;

	(void)msg;
	hdr = nfq_get_msg_packet_hdr(nfa);
	if (hdr == NULL)
		return 0;
	id = ntohl(hdr->packet_id);
	q->packets++;

	if (q->count == RING_SLOTS) {
		q->overflows++;
		nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
		return 0;
	}

	slot = &q->ring[(q->head + q->count) % RING_SLOTS];
	slot->id = id;
	slot->due_ns = now_cached_ns + q->delay_ns;
	q->count++;
	return 0;
}

/*
 * Bind queue q on handle h with metadata-only copies, whole GSO packets
 * and a kernel queue as long as the ring.  Returns 0 or -1 with a message
 * printed.
 */
static int bind_queue(struct nfq_handle *h, struct delay_queue *q)
{
	q->ring = calloc(RING_SLOTS, sizeof(*q->ring));
	if (q->ring == NULL) {
		perror("delayq: calloc");
		return -1;
	}

	q->qh = nfq_create_queue(h, q->num, on_packet, q);
	if (q->qh == NULL) {
		fprintf(stderr,
			"delayq: cannot bind queue %u: %s\n",
			q->num,
			strerror(errno));
		return -1;
	}

	if (nfq_set_mode(q->qh, NFQNL_COPY_META, 0) < 0) {
		fprintf(stderr,
			"delayq: queue %u: cannot set copy mode\n",
			q->num);
		return -1;
	}

	nfq_set_queue_maxlen(q->qh, RING_SLOTS);
	nfq_set_queue_flags(q->qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);
	return 0;
}

/* Make the netlink socket large and tell it not to report overruns. */
static void tune_socket(struct nfq_handle *h)
{
	int fd = nfq_fd(h);
	int on = 1;

	nfnl_rcvbufsiz(nfq_nfnlh(h), RCVBUF_BYTES);
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on));
}

static void write_ready_file(const char *path)
{
	FILE *f;

	if (path == NULL)
		return;
	f = fopen(path, "w");
	if (f == NULL) {
		perror("delayq: ready file");
		exit(1);
	}
	fputs("ready\n", f);
	fclose(f);
}

/*
 * Read every netlink message waiting on fd and hand each to
 * libnetfilter_queue, which calls on_packet.
 */
static void drain_socket(struct nfq_handle *h, int fd)
{
	static char buf[65536] __attribute__((aligned(8)));
	ssize_t len;

	for (;;) {
		len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (len < 0)
			return;
		now_cached_ns = monotonic_ns();
		nfq_handle_packet(h, buf, (int)len);
	}
}

/* Release what is due on every queue; return the earliest next due time. */
static uint64_t release_all_due(uint64_t now_ns, int flush)
{
	uint64_t next = UINT64_MAX;
	uint64_t due;
	size_t i;

	for (i = 0; i < queue_count; i++) {
		due = release_due(&queues[i], now_ns, flush);
		if (due < next)
			next = due;
	}
	return next;
}

static void run_loop(struct nfq_handle *h)
{
	struct pollfd pfd = {.fd = nfq_fd(h), .events = POLLIN};
	struct timespec wait, *waitp;
	uint64_t now, next;

	while (!stop_requested) {
		now = monotonic_ns();
		next = release_all_due(now, 0);

		waitp = NULL;
		if (next != UINT64_MAX) {
			now = monotonic_ns();
			next = next > now ? next - now : 0;
			wait.tv_sec = (time_t)(next / NSEC_PER_SEC);
			wait.tv_nsec = (long)(next % NSEC_PER_SEC);
			waitp = &wait;
		}

		if (ppoll(&pfd, 1, waitp, NULL) > 0)
			drain_socket(h, pfd.fd);
	}
	release_all_due(0, 1);
}

static void print_counts(void)
{
	size_t i;
	struct delay_queue *q;

	for (i = 0; i < queue_count; i++) {
		q = &queues[i];
		fprintf(stderr,
			"delayq: queue=%u delay_us=%" PRIu64 " packets=%" PRIu64
			" overflows=%" PRIu64 " verdict_errors=%" PRIu64 "\n",
			q->num,
			q->delay_ns / 1000,
			q->packets,
			q->overflows,
			q->verdict_errors);
	}
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	const char *ready_file = NULL;
	struct nfq_handle *h;
	int opt, i;

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt != 'r')
			usage();
		ready_file = optarg;
	}
	if (optind >= argc || argc - optind > MAX_QUEUES)
		usage();

	for (i = optind; i < argc; i++) {
		if (parse_queue_spec(argv[i], &queues[queue_count]) < 0 ||
		    find_queue(queues[queue_count].num) != NULL) {
			fprintf(stderr,
				"delayq: bad queue spec '%s'\n",
				argv[i]);
			return 2;
		}
		queue_count++;
	}

	/* Wake up when a packet is due, not up to 50 us later. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	install_signals();

	h = nfq_open();
	if (h == NULL) {
		fprintf(stderr, "delayq: nfq_open: %s\n", strerror(errno));
		return 1;
	}
	tune_socket(h);
	for (i = 0; i < (int)queue_count; i++)
		if (bind_queue(h, &queues[i]) < 0)
			return 1;

	write_ready_file(ready_file);
	run_loop(h);
	print_counts();

	for (i = 0; i < (int)queue_count; i++)
		nfq_destroy_queue(queues[i].qh);
	nfq_close(h);
	return 0;
}
