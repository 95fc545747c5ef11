/*
 * fuzz-wire.c: libFuzzer target for the record and option decoders.
 *
 * The first byte picks the protocol version; the rest is decoded as a
 * record and, separately, as a bare option.  Whatever decodes must encode
 * back to the very same bytes (doc/record-format.md: the decoder accepts
 * exactly what the encoder produces).  Built by tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mptcpshim/wire.h"

static void check_record(const uint8_t *buf, size_t len, int version)
{
	uint8_t out[MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX];
	struct mps_record rec;
	char text[256];
	int n;

	if (mps_wire_decode_record(buf, len, version, &rec) != 0)
		return;
	if (rec.len > len || rec.payload_off + rec.payload_len != rec.len)
		abort();
	n = mps_wire_encode_record(
		&rec.opt, version, rec.payload_len, out, sizeof(out));
	if (n < 0 || (size_t)n != rec.payload_off || memcmp(out, buf, n) != 0)
		abort();
	mps_wire_format_option(&rec.opt, text, sizeof(text));
}

static void check_option(const uint8_t *buf, size_t len, int version)
{
	uint8_t out[MPS_WIRE_OPT_MAX];
	struct mps_option opt;
	int n;

	if (mps_wire_decode_option(buf, len, version, &opt) != 0)
		return;
	n = mps_wire_encode_option(&opt, version, out, sizeof(out));
	if (n < 0 || (size_t)n != len || memcmp(out, buf, len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int version;

	if (size < 1)
		return 0;
	version = data[0] & 1;
	check_record(data + 1, size - 1, version);
	check_option(data + 1, size - 1, version);
	return 0;
}
