/*
 * mangleq: a middlebox that changes TCP payload, for the tests of DSS
 * checksums.
 *
 * Usage: mangleq [-r READY_FILE] [-s STATS_FILE] [-n NTH] [-m MIN_LEN]
 *                [-c COUNT] QUEUE
 *
 * Binds NFQUEUE queue QUEUE and accepts every packet netfilter hands it.
 * TCP packets (IPv4 or IPv6 without extension headers) whose payload is at
 * least MIN_LEN bytes (default 1000) are counted; the NTH of them
 * (default 1000) and the COUNT - 1 after it (default COUNT 1) have one
 * byte in the middle of their payload inverted.  The TCP checksum is then
 * computed again over the pseudo-header, header and payload, so that the
 * change is invisible to TCP and only a checksum of the payload above TCP
 * can see it.  Each change is reported on standard error.
 *
 * Whole packets are copied to user space, and GSO packets are segmented
 * by the kernel before they reach the queue (NFQA_CFG_F_GSO is not set),
 * which also completes any checksum left to the hardware.  When the queue
 * is bound, "ready" is written to READY_FILE.  On SIGINT or SIGTERM the
 * program writes "packets=N data_packets=N mangled=N" to STATS_FILE (and
 * standard error) and ends.
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
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define RCVBUF_BYTES (8 * 1024 * 1024)
#define COPY_BYTES 0xffff

static volatile sig_atomic_t stop_requested;

static unsigned long opt_nth = 1000;
static unsigned long opt_min_len = 1000;
static unsigned long opt_count = 1;

static uint64_t packets;
static uint64_t data_packets;
static uint64_t mangled;
static uint64_t verdict_errors;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mangleq [-r READY_FILE] [-s STATS_FILE] [-n NTH] "
		"[-m MIN_LEN] [-c COUNT] QUEUE\n");
	exit(2);
}

static unsigned long parse_number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end != '\0' || v > max)
		usage();
	return v;
}

/* Add len bytes at p to a ones' complement sum of 16-bit words. */
static uint32_t sum_words(uint32_t sum, const uint8_t *p, size_t len)
{
	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * Set the TCP checksum of the segment at tcp (tcp_len bytes, header and
 * payload), carried in an IPv4 (version 4) or IPv6 packet whose source and
 * destination addresses start at addrs (addr_len bytes each).
 */
static void set_tcp_checksum(uint8_t *tcp,
			     size_t tcp_len,
			     const uint8_t *addrs,
			     size_t addr_len)
{
	uint32_t sum = 0;
	uint16_t csum;

	sum = sum_words(sum, addrs, 2 * addr_len);
	sum += IPPROTO_TCP;
	sum += (uint32_t)(tcp_len >> 16) + (uint32_t)(tcp_len & 0xffff);
	tcp[16] = 0;
	tcp[17] = 0;
	sum = sum_words(sum, tcp, tcp_len);
	csum = fold(sum);
	tcp[16] = (uint8_t)(csum >> 8);
	tcp[17] = (uint8_t)csum;
}

/*
 * Find the TCP segment in the IP packet pkt of len bytes.  Returns its
 * offset and sets *tcp_len, *addrs and *addr_len, or returns 0 when the
 * packet is not TCP (or not one this program understands).
 */
static size_t find_tcp(uint8_t *pkt,
		       size_t len,
		       size_t *tcp_len,
		       uint8_t **addrs,
		       size_t *addr_len)
{
	size_t ihl, total;

	if (len < 20)
		return 0;
	if (pkt[0] >> 4 == 4) {
		ihl = (size_t)(pkt[0] & 0x0f) * 4;
		total = (size_t)pkt[2] << 8 | pkt[3];
		if (pkt[9] != IPPROTO_TCP || ihl < 20 || total > len ||
		    total < ihl + 20)
			return 0;
		/* Fragments (MF set or an offset) are left alone. */
		if ((pkt[6] & 0x3f) || pkt[7])
			return 0;
		*tcp_len = total - ihl;
		*addrs = pkt + 12;
		*addr_len = 4;
		return ihl;
	}
	if (pkt[0] >> 4 == 6 && len >= 40) {
		total = 40 + ((size_t)pkt[4] << 8 | pkt[5]);
		if (pkt[6] != IPPROTO_TCP || total > len || total < 60)
			return 0;
		*tcp_len = total - 40;
		*addrs = pkt + 8;
		*addr_len = 16;
		return 40;
	}
	return 0;
}

/*
 * Invert one byte of the TCP payload of pkt if it is the packet chosen.
 * Returns 1 when the packet was changed.
 */
static int maybe_mangle(uint8_t *pkt, size_t len)
{
	size_t off, tcp_len, addr_len, doff, pay_len;
	uint8_t *tcp, *addrs;
	uint32_t seq;

	off = find_tcp(pkt, len, &tcp_len, &addrs, &addr_len);
	if (off == 0)
		return 0;
	tcp = pkt + off;
	doff = (size_t)(tcp[12] >> 4) * 4;
	if (doff < 20 || doff > tcp_len)
		return 0;
	pay_len = tcp_len - doff;
	if (pay_len == 0 || pay_len < opt_min_len)
		return 0;
	data_packets++;
	if (data_packets < opt_nth || data_packets >= opt_nth + opt_count)
		return 0;

	tcp[doff + pay_len / 2] ^= 0xff;
	set_tcp_checksum(tcp, tcp_len, addrs, addr_len);
	mangled++;
	seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 |
	      (uint32_t)tcp[6] << 8 | tcp[7];
	fprintf(stderr,
		"mangleq: data packet %" PRIu64 ": sport=%u dport=%u "
		"seq=%" PRIu32 " payload=%zu: byte %zu inverted\n",
		data_packets,
		(unsigned)(tcp[0] << 8 | tcp[1]),
		(unsigned)(tcp[2] << 8 | tcp[3]),
		seq,
		pay_len,
		pay_len / 2);
	return 1;
}

static int on_packet(struct nfq_q_handle *qh,
		     struct nfgenmsg *msg,
		     struct nfq_data *nfa,
		     void *data)
{
	struct nfqnl_msg_packet_hdr *hdr;
	unsigned char *payload;
	uint32_t id;
	int len, r;

	(void)msg;
	(void)data;
	hdr = nfq_get_msg_packet_hdr(nfa);
	if (hdr == NULL)
		return 0;
	id = ntohl(hdr->packet_id);
	packets++;

	len = nfq_get_payload(nfa, &payload);
	if (len > 0 && maybe_mangle(payload, (size_t)len))
		r = nfq_set_verdict(qh, id, NF_ACCEPT, (uint32_t)len, payload);
	else
		r = nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
	if (r < 0)
		verdict_errors++;
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f;

	if (path == NULL)
		return;
	f = fopen(path, "w");
	if (f == NULL) {
		perror("mangleq: fopen");
		exit(1);
	}
	fputs(text, f);
	fclose(f);
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
	static char buf[COPY_BYTES + 4096] __attribute__((aligned(8)));
	const char *ready_file = NULL, *stats_file = NULL;
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	struct pollfd pfd;
	char stats[200];
	unsigned long queue;
	ssize_t n;
	int opt, on = 1;

	while ((opt = getopt(argc, argv, "r:s:n:m:c:")) != -1) {
		switch (opt) {
		case 'r': ready_file = optarg; break;
		case 's': stats_file = optarg; break;
		case 'n': opt_nth = parse_number(optarg, 1UL << 31); break;
		case 'm': opt_min_len = parse_number(optarg, 65535); break;
		case 'c': opt_count = parse_number(optarg, 1UL << 31); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || opt_nth == 0)
		usage();
	queue = parse_number(argv[optind], 65535);
	install_signals();

	h = nfq_open();
	if (h == NULL) {
		fprintf(stderr, "mangleq: nfq_open: %s\n", strerror(errno));
		return 1;
	}
	nfnl_rcvbufsiz(nfq_nfnlh(h), RCVBUF_BYTES);
	setsockopt(nfq_fd(h), SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on));
	qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
	if (qh == NULL) {
		fprintf(stderr,
			"mangleq: cannot bind queue %lu: %s\n",
			queue,
			strerror(errno));
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_PACKET, COPY_BYTES) < 0) {
		fprintf(stderr, "mangleq: cannot set copy mode\n");
		return 1;
	}
	nfq_set_queue_maxlen(qh, 8192);
	write_file(ready_file, "ready\n");

	pfd.fd = nfq_fd(h);
	pfd.events = POLLIN;
	while (!stop_requested) {
		if (poll(&pfd, 1, -1) <= 0)
			continue;
		while ((n = recv(pfd.fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			nfq_handle_packet(h, buf, (int)n);
	}

	snprintf(stats,
		 sizeof(stats),
		 "packets=%" PRIu64 " data_packets=%" PRIu64
		 " mangled=%" PRIu64 " verdict_errors=%" PRIu64 "\n",
		 packets,
		 data_packets,
		 mangled,
		 verdict_errors);
	fputs(stats, stderr);
	write_file(stats_file, stats);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
