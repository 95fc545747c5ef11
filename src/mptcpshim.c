/*
 * mptcpshim: run a program under libmptcpshim.so, and look at records.
 *
 *   mptcpshim run PROGRAM [ARGS...]   preload the library and exec
 *   mptcpshim decode [FILE]           print the records of one subflow
 *   mptcpshim example                 write a client's opening records
 *   mptcpshim version
 *   mptcpshim status|counters|backup|addr|scheduler ...
 *                                     ask or steer shimmed processes
 *                                     through their control sockets
 *                                     (status.c)
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mptcpshim/wire.h"
#include "crypto.h"
#include "status.h"

#define LIB_NAME "libmptcpshim.so"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mptcpshim run PROGRAM [ARGS...]\n"
		"       mptcpshim decode [FILE]\n"
		"       mptcpshim example\n"
		"       mptcpshim version\n"
		"       mptcpshim status [PID] [--json] [--watch [SECONDS]]\n"
		"       mptcpshim counters [PID] [--json]\n"
		"       mptcpshim backup PID IFNAME|ADDR on|off\n"
		"       mptcpshim addr PID add|del ADDR\n"
		"       mptcpshim scheduler PID "
		"earliest|roundrobin|redundant\n");
}

/*
 * Find the library: beside the command in a libtool build tree first, so
 * that an uninstalled build runs its own library, then where make install
 * puts it.  Returns 0 with the path in buf, or -ENOENT.
 */
static int find_library(char *buf, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');

		if (slash != NULL) {
			int len;

			*slash = '\0';
			len = snprintf(buf, cap, "%s/.libs/%s", exe, LIB_NAME);
			if (len > 0 && (size_t)len < cap &&
			    access(buf, R_OK) == 0)
				return 0;
		}
	}

	snprintf(buf, cap, "%s/%s", PKGLIBDIR, LIB_NAME);
	if (access(buf, R_OK) == 0)
		return 0;

	return -ENOENT;
}

/* Append the library to LD_PRELOAD, keeping what is already there. */
static int set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *value;
	int rc;

	if (old == NULL || old[0] == '\0')
		return setenv("LD_PRELOAD", lib, 1);

	if (asprintf(&value, "%s %s", old, lib) < 0)
		return -1;

	rc = setenv("LD_PRELOAD", value, 1);
	free(value);

	return rc;
}

static int cmd_run(int argc, char **argv)
{
	char lib[PATH_MAX];

	if (argc < 1) {
		usage(stderr);
		return 2;
	}

	if (find_library(lib, sizeof(lib)) < 0) {
		fprintf(stderr, "mptcpshim: %s not found in %s\n", LIB_NAME,
			PKGLIBDIR);
		return 127;
	}

	if (set_preload(lib) < 0) {
		perror("mptcpshim: setenv");
		return 127;
	}

	execvp(argv[0], argv);
	fprintf(stderr, "mptcpshim: %s: %s\n", argv[0], strerror(errno));

	return 127;
}

/* Read all of f into a growing buffer; returns NULL on failure. */
static uint8_t *read_all(FILE *f, size_t *lenp)
{
	size_t cap = 65536, len = 0;
	uint8_t *buf = malloc(cap);

	while (buf != NULL) {
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
		if (len == cap) {
			uint8_t *bigger = realloc(buf, cap * 2);

			if (bigger == NULL) {
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}

	*lenp = len;

	return buf;
}

/*
 * Print each record of one subflow's stream.  The connection's version is
 * taken from its MP_CAPABLE; after an infinite mapping the rest is raw.
 */
static int decode_stream(const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int version = MPS_VERSION_1;
	char text[256];

	while (off < len) {
		struct mps_record rec;
		int rc = mps_wire_decode_record(buf + off, len - off, version,
						&rec);

		if (rc == MPS_WIRE_NEED_MORE) {
			printf("%zu: incomplete record, %zu bytes left\n", off,
			       len - off);
			return 1;
		}
		if (rc < 0) {
			printf("%zu: malformed record: %s\n", off,
			       mps_wire_strerror(rc));
			return 1;
		}

		if (rec.opt.subtype == MPS_MP_CAPABLE)
			version = rec.opt.mp_capable.version;

		mps_wire_format_option(&rec.opt, text, sizeof(text));
		printf("%zu: %s payload=%zu\n", off, text, rec.payload_len);
		off += rec.len;

		if (mps_wire_is_infinite_mapping(&rec.opt)) {
			printf("%zu: raw data to the end, %zu bytes\n", off,
			       len - off);
			return 0;
		}
	}

	return 0;
}

static int cmd_decode(int argc, char **argv)
{
	FILE *f = stdin;
	uint8_t *buf;
	size_t len;
	int rc;

	if (argc > 0 && strcmp(argv[0], "-") != 0) {
		f = fopen(argv[0], "rb");
		if (f == NULL) {
			fprintf(stderr, "mptcpshim: %s: %s\n", argv[0],
				strerror(errno));
			return 2;
		}
	}

	buf = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (buf == NULL) {
		fprintf(stderr, "mptcpshim: out of memory\n");
		return 2;
	}

	rc = decode_stream(buf, len);
	free(buf);

	return rc;
}

/* Encode one record (option and payload) to stdout. */
static int put_record(const struct mps_option *opt, const void *payload,
		      size_t payload_len)
{
	uint8_t head[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	int n = mps_wire_encode_record(opt, MPS_VERSION_1, payload_len, head,
				       sizeof(head));

	if (n < 0) {
		fprintf(stderr, "mptcpshim: encode: %s\n",
			mps_wire_strerror(n));
		return -1;
	}

	fwrite(head, 1, (size_t)n, stdout);
	fwrite(payload, 1, payload_len, stdout);

	return 0;
}

/*
 * Write what a client's subflow opens with: its MP_CAPABLE with a fresh
 * key, one mapped piece of data, and a bare DATA_FIN (RFC 8684 3.3.3).
 */
static int cmd_example(void)
{
	static const char data[] = "hello, multipath world\n";
	struct mps_key_material km;
	struct mps_option opt;
	uint64_t key;

	if (mps_crypto_key_new(&key) < 0 ||
	    mps_crypto_key_material(MPS_V1, key, &km) < 0) {
		fprintf(stderr, "mptcpshim: cannot draw a key\n");
		return 1;
	}

	memset(&opt, 0, sizeof(opt));
	opt.subtype = MPS_MP_CAPABLE;
	opt.mp_capable.version = MPS_VERSION_1;
	opt.mp_capable.flags = MPS_MPC_HMAC;
	opt.mp_capable.nkeys = 1;
	opt.mp_capable.sender_key = km.key;
	if (put_record(&opt, NULL, 0) < 0)
		return 1;

	memset(&opt, 0, sizeof(opt));
	opt.subtype = MPS_DSS;
	opt.dss.flags = MPS_DSS_MAP | MPS_DSS_DSN64;
	opt.dss.dsn = km.idsn + 1;
	opt.dss.ssn = 1;
	opt.dss.data_len = sizeof(data) - 1;
	if (put_record(&opt, data, sizeof(data) - 1) < 0)
		return 1;

	opt.dss.flags |= MPS_DSS_FIN;
	opt.dss.dsn += sizeof(data) - 1;
	opt.dss.ssn = 0;
	opt.dss.data_len = 1;
	if (put_record(&opt, NULL, 0) < 0)
		return 1;

	mps_crypto_wipe(&key, sizeof(key));
	mps_crypto_wipe(&km, sizeof(km));

	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}

	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "decode") == 0)
		return cmd_decode(argc - 2, argv + 2);
	if (strcmp(argv[1], "example") == 0)
		return cmd_example();
	if (strcmp(argv[1], "status") == 0)
		return mps_cmd_status(argc - 2, argv + 2);
	if (strcmp(argv[1], "counters") == 0)
		return mps_cmd_counters(argc - 2, argv + 2);
	if (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "addr") == 0 ||
	    strcmp(argv[1], "scheduler") == 0)
		return mps_cmd_steer(argv[1], argc - 2, argv + 2);
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("mptcpshim %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}

	usage(stderr);

	return 2;
}
