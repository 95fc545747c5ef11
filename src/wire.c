/*
 * Records and MPTCP options: decoding, encoding and formatting.
 *
 * Each option has its own decoder, encoder and formatter, reached through
 * a table indexed by subtype.  Decoders check, in this order, the length
 * (which selects the form), reserved bits, then what the flags mean, so
 * that each malformed input maps to one error.  Encoders run the same
 * checks on the fields before writing a single byte.
 *
 * The record format is described in include/mptcpshim/wire.h and in
 * doc/record-format.md.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mptcpshim/wire.h"

/* Offsets inside an option. */
#define OPT_KIND 0
#define OPT_LEN 1
#define OPT_SUBTYPE 2 /* subtype in the high nibble */
#define OPT_BYTE3 3

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Byte-order helpers: everything on the wire is big-endian. */

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Read a 4- or 8-byte sequence number; returns the byte after it. */
static const uint8_t *get_seq(const uint8_t *p, bool wide, uint64_t *v)
{
	if (wide) {
		*v = get_be64(p);
		return p + 8;
	}

	*v = get_be32(p);
	return p + 4;
}

static uint8_t *put_seq(uint8_t *p, bool wide, uint64_t v)
{
	if (wide) {
		put_be64(p, v);
		return p + 8;
	}

	put_be32(p, (uint32_t)v);
	return p + 4;
}

static bool version_ok(int version)
{
	return version == MPS_VERSION_0 || version == MPS_VERSION_1;
}

static unsigned int low_nibble(const uint8_t *opt)
{
	return opt[OPT_SUBTYPE] & 0x0f;
}

/* Write kind, length and the subtype byte; the caller checked the room. */
static void put_opt_head(uint8_t *buf,
			 size_t len,
			 enum mps_subtype subtype,
			 unsigned int nibble)
{
	buf[OPT_KIND] = MPS_TCPOPT_MPTCP;
	buf[OPT_LEN] = (uint8_t)len;
	buf[OPT_SUBTYPE] = (uint8_t)(subtype << 4 | (nibble & 0x0f));
}

/* Text output for the formatters: counts what did not fit, like snprintf. */

struct text {
	char *buf;
	size_t cap;
	size_t len;
};

static void text_add(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	char *dst = NULL;
	size_t room = 0;
	va_list ap;
	int n;

	if (t->len < t->cap) {
		dst = t->buf + t->len;
		room = t->cap - t->len;
	}

	va_start(ap, fmt);
	n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);

	if (n > 0)
		t->len += (size_t)n;
}

static void text_add_hex(struct text *t, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		text_add(t, "%02x", p[i]);
}

/*
 * MP_CAPABLE (RFC 8684 section 3.1; RFC 6824 section 3.1).
 */

struct mpc_form {
	uint8_t version;
	uint8_t len;
	uint8_t nkeys;
	bool data_len;
	bool checksum;
};

/* The option length selects the form; v0 has no data-level length. */
static const struct mpc_form mpc_forms[] = {
	{MPS_VERSION_1, 4, 0, false, false},
	{MPS_VERSION_1, 12, 1, false, false},
	{MPS_VERSION_1, 20, 2, false, false},
	{MPS_VERSION_1, 22, 2, true, false},
	{MPS_VERSION_1, 24, 2, true, true},
	{MPS_VERSION_0, 12, 1, false, false},
	{MPS_VERSION_0, 20, 2, false, false},
};

static const struct mpc_form *mpc_form_by_len(unsigned int version, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mpc_forms); i++) {
		if (mpc_forms[i].version == version && mpc_forms[i].len == len)
			return &mpc_forms[i];
	}

	return NULL;
}

static const struct mpc_form *
mpc_form_by_fields(const struct mps_mp_capable *mpc)
{
	const struct mpc_form *f;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mpc_forms); i++) {
		f = &mpc_forms[i];
		if (f->version == mpc->version && f->nkeys == mpc->nkeys &&
		    f->data_len == mpc->has_data_len &&
		    f->checksum == mpc->has_checksum)
			return f;
	}

	return NULL;
}

/*
 * RFC 8684 section 3.1: B must be 0, and without an algorithm bit there
 * is no agreed HMAC, so both mean fallback.  D to G (and, in v0, C, which
 * there selects a crypto algorithm that was never defined) are reserved.
 */
static int mpc_check_flags(unsigned int version, uint8_t flags)
{
	uint8_t known = MPS_MPC_CHECKSUM | MPS_MPC_EXTENSIBILITY | MPS_MPC_HMAC;

	if (version == MPS_VERSION_1)
		known |= MPS_MPC_NO_SRC_ADDR;

	if (flags & MPS_MPC_EXTENSIBILITY)
		return MPS_WIRE_E_EXTENSIBILITY;
	if (flags & ~known)
		return MPS_WIRE_E_RESERVED_BITS;
	if (!(flags & MPS_MPC_HMAC))
		return MPS_WIRE_E_NO_HMAC_ALGO;

	return 0;
}

/* The option carries its own version; the connection's does not apply. */
static int decode_mp_capable(const uint8_t *opt,
			     size_t len,
			     int version,
			     struct mps_option *out)
{
	struct mps_mp_capable *mpc = &out->mp_capable;
	unsigned int mpc_version = low_nibble(opt);
	const uint8_t *p = opt + 4;
	const struct mpc_form *form;
	int err;

	(void)version;
	if (mpc_version > MPS_VERSION_1)
		return MPS_WIRE_E_BAD_VERSION;

	form = mpc_form_by_len(mpc_version, len);
	if (!form)
		return MPS_WIRE_E_BAD_LENGTH;

	err = mpc_check_flags(mpc_version, opt[OPT_BYTE3]);
	if (err)
		return err;

	mpc->version = (uint8_t)mpc_version;
	mpc->flags = opt[OPT_BYTE3];
	mpc->nkeys = form->nkeys;
	if (form->nkeys >= 1)
		mpc->sender_key = get_be64(p);
	if (form->nkeys == 2)
		mpc->receiver_key = get_be64(p + 8);
	p += 8 * form->nkeys;

	mpc->has_data_len = form->data_len;
	if (form->data_len)
		mpc->data_len = get_be16(p);
	mpc->has_checksum = form->checksum;
	if (form->checksum)
		mpc->checksum = get_be16(p + 2);

	return 0;
}

static int encode_mp_capable(const struct mps_option *opt,
			     int version,
			     uint8_t *buf,
			     size_t cap)
{
	const struct mps_mp_capable *mpc = &opt->mp_capable;
	const struct mpc_form *form;
	uint8_t *p = buf + 4;
	int err;

	(void)version;
	if (mpc->version > MPS_VERSION_1)
		return MPS_WIRE_E_BAD_VERSION;

	form = mpc_form_by_fields(mpc);
	if (!form)
		return MPS_WIRE_E_BAD_FORM;

	err = mpc_check_flags(mpc->version, mpc->flags);
	if (err)
		return err;
	if (cap < form->len)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, form->len, MPS_MP_CAPABLE, mpc->version);
	buf[OPT_BYTE3] = mpc->flags;
	if (form->nkeys >= 1)
		put_be64(p, mpc->sender_key);
	if (form->nkeys == 2)
		put_be64(p + 8, mpc->receiver_key);
	p += 8 * form->nkeys;

	if (form->data_len)
		put_be16(p, mpc->data_len);
	if (form->checksum)
		put_be16(p + 2, mpc->checksum);

	return form->len;
}

static void format_mp_capable(const struct mps_option *opt, struct text *t)
{
	const struct mps_mp_capable *mpc = &opt->mp_capable;

	text_add(t, "MP_CAPABLE v=%u flags=0x%02x", mpc->version, mpc->flags);
	if (mpc->nkeys >= 1)
		text_add(t, " sndkey=0x%016" PRIx64, mpc->sender_key);
	if (mpc->nkeys >= 2)
		text_add(t, " rcvkey=0x%016" PRIx64, mpc->receiver_key);
	if (mpc->has_data_len)
		text_add(t, " len=%u", mpc->data_len);
	if (mpc->has_checksum)
		text_add(t, " csum=0x%04x", mpc->checksum);
}

/*
 * MP_JOIN (RFC 8684 section 3.2).  The length selects the form.
 */

static const uint8_t join_len[] = {
	[MPS_JOIN_SYN] = 12,
	[MPS_JOIN_SYNACK] = 16,
	[MPS_JOIN_ACK] = 24,
};

/* SYN and SYN/ACK: three reserved bits sit between subtype and B. */
static int join_check_reserved(const uint8_t *opt, enum mps_join_form form)
{
	if (form == MPS_JOIN_ACK) {
		if (low_nibble(opt) || opt[OPT_BYTE3])
			return MPS_WIRE_E_RESERVED_BITS;
		return 0;
	}

	if (opt[OPT_SUBTYPE] & 0x0e)
		return MPS_WIRE_E_RESERVED_BITS;
	return 0;
}

static int decode_mp_join(const uint8_t *opt,
			  size_t len,
			  int version,
			  struct mps_option *out)
{
	struct mps_mp_join *join = &out->mp_join;
	int err;

	(void)version;
	if (len == join_len[MPS_JOIN_SYN])
		join->form = MPS_JOIN_SYN;
	else if (len == join_len[MPS_JOIN_SYNACK])
		join->form = MPS_JOIN_SYNACK;
	else if (len == join_len[MPS_JOIN_ACK])
		join->form = MPS_JOIN_ACK;
	else
		return MPS_WIRE_E_BAD_LENGTH;

	err = join_check_reserved(opt, join->form);
	if (err)
		return err;

	if (join->form == MPS_JOIN_ACK) {
		memcpy(join->hmac, opt + 4, MPS_JOIN_HMAC_LEN);
		return 0;
	}

	join->backup = opt[OPT_SUBTYPE] & 0x01;
	join->addr_id = opt[OPT_BYTE3];
	if (join->form == MPS_JOIN_SYN) {
		join->token = get_be32(opt + 4);
		join->nonce = get_be32(opt + 8);
	} else {
		memcpy(join->hmac, opt + 4, MPS_JOIN_TRUNC_HMAC_LEN);
		join->nonce = get_be32(opt + 12);
	}

	return 0;
}

static int encode_mp_join(const struct mps_option *opt,
			  int version,
			  uint8_t *buf,
			  size_t cap)
{
	const struct mps_mp_join *join = &opt->mp_join;
	size_t len;

	(void)version;
	if ((unsigned int)join->form >= ARRAY_SIZE(join_len))
		return MPS_WIRE_E_BAD_FORM;

	len = join_len[join->form];
	if (cap < len)
		return MPS_WIRE_E_NO_SPACE;

	if (join->form == MPS_JOIN_ACK) {
		put_opt_head(buf, len, MPS_MP_JOIN, 0);
		buf[OPT_BYTE3] = 0;
		memcpy(buf + 4, join->hmac, MPS_JOIN_HMAC_LEN);
		return (int)len;
	}

	put_opt_head(buf, len, MPS_MP_JOIN, join->backup);
	buf[OPT_BYTE3] = join->addr_id;
	if (join->form == MPS_JOIN_SYN) {
		put_be32(buf + 4, join->token);
		put_be32(buf + 8, join->nonce);
	} else {
		memcpy(buf + 4, join->hmac, MPS_JOIN_TRUNC_HMAC_LEN);
		put_be32(buf + 12, join->nonce);
	}

	return (int)len;
}

static void format_mp_join(const struct mps_option *opt, struct text *t)
{
	const struct mps_mp_join *join = &opt->mp_join;

	switch (join->form) {
	case MPS_JOIN_SYN:
		text_add(t,
			 "MP_JOIN form=syn backup=%d id=%u token=0x%08" PRIx32
			 " nonce=0x%08" PRIx32,
			 join->backup,
			 join->addr_id,
			 join->token,
			 join->nonce);
		break;
	case MPS_JOIN_SYNACK:
		text_add(t,
			 "MP_JOIN form=synack backup=%d id=%u hmac=",
			 join->backup,
			 join->addr_id);
		text_add_hex(t, join->hmac, MPS_JOIN_TRUNC_HMAC_LEN);
		text_add(t, " nonce=0x%08" PRIx32, join->nonce);
		break;
	case MPS_JOIN_ACK:
		text_add(t, "MP_JOIN form=ack hmac=");
		text_add_hex(t, join->hmac, MPS_JOIN_HMAC_LEN);
		break;
	default:
		text_add(t, "MP_JOIN form=%d", (int)join->form);
		break;
	}
}

/*
 * DSS (RFC 8684 section 3.3).  The flags give the length, except for the
 * checksum, whose presence only the length tells.
 */

#define DSS_FLAGS_ALL 0x1f

static int dss_check_flags(uint8_t flags)
{
	if (flags & ~DSS_FLAGS_ALL)
		return MPS_WIRE_E_RESERVED_BITS;

	/* a and m only give the width of a field that A or M says is there. */
	if ((flags & MPS_DSS_ACK64) && !(flags & MPS_DSS_ACK))
		return MPS_WIRE_E_INCONSISTENT_FLAGS;
	if ((flags & MPS_DSS_DSN64) && !(flags & MPS_DSS_MAP))
		return MPS_WIRE_E_INCONSISTENT_FLAGS;

	/* RFC 8684 section 3.3.3: a DATA_FIN is counted by a mapping. */
	if ((flags & MPS_DSS_FIN) && !(flags & MPS_DSS_MAP))
		return MPS_WIRE_E_INCONSISTENT_FLAGS;

	return 0;
}

static size_t dss_len(uint8_t flags, bool checksum)
{
	size_t len = 4;

	if (flags & MPS_DSS_ACK)
		len += (flags & MPS_DSS_ACK64) ? 8 : 4;
	if (flags & MPS_DSS_MAP)
		len += ((flags & MPS_DSS_DSN64) ? 8 : 4) + 4 + 2;
	if (checksum)
		len += 2;

	return len;
}

static int
decode_dss(const uint8_t *opt, size_t len, int version, struct mps_option *out)
{
	struct mps_dss *dss = &out->dss;
	const uint8_t *p = opt + 4;
	uint8_t flags;
	int err;

	(void)version;
	if (len < 4)
		return MPS_WIRE_E_BAD_LENGTH;

	flags = opt[OPT_BYTE3];
	if (low_nibble(opt))
		return MPS_WIRE_E_RESERVED_BITS;
	err = dss_check_flags(flags);
	if (err)
		return err;

	if ((flags & MPS_DSS_MAP) && len == dss_len(flags, true))
		dss->has_checksum = true;
	else if (len != dss_len(flags, false))
		return MPS_WIRE_E_BAD_LENGTH;

	dss->flags = flags;
	if (flags & MPS_DSS_ACK)
		p = get_seq(p, flags & MPS_DSS_ACK64, &dss->data_ack);
	if (!(flags & MPS_DSS_MAP))
		return 0;

	p = get_seq(p, flags & MPS_DSS_DSN64, &dss->dsn);
	dss->ssn = get_be32(p);
	dss->data_len = get_be16(p + 4);
	if (dss->has_checksum)
		dss->checksum = get_be16(p + 6);

	return 0;
}

/* Fields that are present must be consistent and fit their width. */
static int dss_check_fields(const struct mps_dss *dss)
{
	uint8_t flags = dss->flags;
	int err;

	err = dss_check_flags(flags);
	if (err)
		return err;
	if (dss->has_checksum && !(flags & MPS_DSS_MAP))
		return MPS_WIRE_E_BAD_FORM;

	if ((flags & MPS_DSS_ACK) && !(flags & MPS_DSS_ACK64) &&
	    dss->data_ack > UINT32_MAX)
		return MPS_WIRE_E_OUT_OF_RANGE;
	if ((flags & MPS_DSS_MAP) && !(flags & MPS_DSS_DSN64) &&
	    dss->dsn > UINT32_MAX)
		return MPS_WIRE_E_OUT_OF_RANGE;

	return 0;
}

static int
encode_dss(const struct mps_option *opt, int version, uint8_t *buf, size_t cap)
{
	const struct mps_dss *dss = &opt->dss;
	uint8_t *p = buf + 4;
	size_t len;
	int err;

	(void)version;
	err = dss_check_fields(dss);
	if (err)
		return err;

	len = dss_len(dss->flags, dss->has_checksum);
	if (cap < len)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, len, MPS_DSS, 0);
	buf[OPT_BYTE3] = dss->flags;
	if (dss->flags & MPS_DSS_ACK)
		p = put_seq(p, dss->flags & MPS_DSS_ACK64, dss->data_ack);
	if (!(dss->flags & MPS_DSS_MAP))
		return (int)len;

	p = put_seq(p, dss->flags & MPS_DSS_DSN64, dss->dsn);
	put_be32(p, dss->ssn);
	put_be16(p + 4, dss->data_len);
	if (dss->has_checksum)
		put_be16(p + 6, dss->checksum);

	return (int)len;
}

static void format_dss(const struct mps_option *opt, struct text *t)
{
	const struct mps_dss *dss = &opt->dss;

	text_add(t, "DSS flags=0x%02x", dss->flags);
	if (dss->flags & MPS_DSS_ACK)
		text_add(t, " ack=%" PRIu64, dss->data_ack);
	if (!(dss->flags & MPS_DSS_MAP))
		return;

	text_add(t,
		 " dsn=%" PRIu64 " ssn=%" PRIu32 " len=%u",
		 dss->dsn,
		 dss->ssn,
		 dss->data_len);
	if (dss->has_checksum)
		text_add(t, " csum=0x%04x", dss->checksum);
	text_add(t, " fin=%d", (dss->flags & MPS_DSS_FIN) != 0);
}

/*
 * ADD_ADDR (RFC 8684 section 3.4.1; RFC 6824 section 3.4.1).
 */

struct add_addr_form {
	uint8_t len;
	uint16_t family;
	bool port;
	bool hmac;
};

/* The length tells family, port and HMAC apart; v0 has no HMAC forms. */
static const struct add_addr_form add_addr_forms[] = {
	{8, AF_INET, false, false},
	{10, AF_INET, true, false},
	{16, AF_INET, false, true},
	{18, AF_INET, true, true},
	{20, AF_INET6, false, false},
	{22, AF_INET6, true, false},
	{28, AF_INET6, false, true},
	{30, AF_INET6, true, true},
};

static const struct add_addr_form *add_addr_form_by_len(size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(add_addr_forms); i++) {
		if (add_addr_forms[i].len == len)
			return &add_addr_forms[i];
	}

	return NULL;
}

static const struct add_addr_form *
add_addr_form_by_fields(const struct mps_add_addr *aa)
{
	const struct add_addr_form *f;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(add_addr_forms); i++) {
		f = &add_addr_forms[i];
		if (f->family == aa->addr.family && f->port == aa->has_port &&
		    f->hmac == aa->has_hmac)
			return f;
	}

	return NULL;
}

static size_t addr_size(uint16_t family)
{
	return family == AF_INET ? 4 : 16;
}

/* Address id, address, port and HMAC, as the form lays them out. */
static void get_add_addr_fields(const uint8_t *opt,
				const struct add_addr_form *form,
				struct mps_add_addr *aa)
{
	const uint8_t *p = opt + 4;
	size_t n = addr_size(form->family);

	aa->addr_id = opt[OPT_BYTE3];
	aa->addr.family = form->family;
	memcpy(aa->addr.bytes, p, n);
	p += n;

	aa->has_port = form->port;
	if (form->port) {
		aa->port = get_be16(p);
		p += 2;
	}

	aa->has_hmac = form->hmac;
	if (form->hmac)
		memcpy(aa->hmac, p, MPS_ADD_ADDR_HMAC_LEN);
}

/* v1: an echo (E) carries no HMAC, every other form one. */
static int
decode_add_addr_v1(const uint8_t *opt, size_t len, struct mps_add_addr *aa)
{
	const struct add_addr_form *form = add_addr_form_by_len(len);
	bool echo = opt[OPT_SUBTYPE] & 0x01;

	if (!form)
		return MPS_WIRE_E_BAD_LENGTH;
	if (opt[OPT_SUBTYPE] & 0x0e)
		return MPS_WIRE_E_RESERVED_BITS;
	if (form->hmac == echo)
		return MPS_WIRE_E_BAD_LENGTH;

	aa->echo = echo;
	get_add_addr_fields(opt, form, aa);
	return 0;
}

/* v0: the IPVer nibble names the family, and the length must agree. */
static int
decode_add_addr_v0(const uint8_t *opt, size_t len, struct mps_add_addr *aa)
{
	const struct add_addr_form *form = add_addr_form_by_len(len);
	unsigned int ipver = low_nibble(opt);
	uint16_t family;

	if (ipver != 4 && ipver != 6)
		return MPS_WIRE_E_BAD_FAMILY;

	family = ipver == 4 ? AF_INET : AF_INET6;
	if (!form || form->hmac || form->family != family)
		return MPS_WIRE_E_BAD_LENGTH;

	get_add_addr_fields(opt, form, aa);
	return 0;
}

static int decode_add_addr(const uint8_t *opt,
			   size_t len,
			   int version,
			   struct mps_option *out)
{
	if (version == MPS_VERSION_0)
		return decode_add_addr_v0(opt, len, &out->add_addr);
	return decode_add_addr_v1(opt, len, &out->add_addr);
}

/* RFC 8684 section 3.4.1: only an echo goes without an HMAC. */
static int add_addr_check_fields(const struct mps_add_addr *aa, int version)
{
	if (aa->addr.family != AF_INET && aa->addr.family != AF_INET6)
		return MPS_WIRE_E_BAD_FAMILY;

	if (version == MPS_VERSION_0) {
		if (aa->echo || aa->has_hmac)
			return MPS_WIRE_E_BAD_FORM;
		return 0;
	}

	if (aa->has_hmac == aa->echo)
		return MPS_WIRE_E_BAD_FORM;
	return 0;
}

static int encode_add_addr(const struct mps_option *opt,
			   int version,
			   uint8_t *buf,
			   size_t cap)
{
	const struct mps_add_addr *aa = &opt->add_addr;
	const struct add_addr_form *form;
	size_t n = addr_size(aa->addr.family);
	unsigned int nibble = aa->echo;
	uint8_t *p = buf + 4;
	int err;

	err = add_addr_check_fields(aa, version);
	if (err)
		return err;

	form = add_addr_form_by_fields(aa);
	if (!form)
		return MPS_WIRE_E_BAD_FORM;
	if (cap < form->len)
		return MPS_WIRE_E_NO_SPACE;

	if (version == MPS_VERSION_0)
		nibble = aa->addr.family == AF_INET ? 4 : 6;
	put_opt_head(buf, form->len, MPS_ADD_ADDR, nibble);
	buf[OPT_BYTE3] = aa->addr_id;
	memcpy(p, aa->addr.bytes, n);
	p += n;
	if (aa->has_port) {
		put_be16(p, aa->port);
		p += 2;
	}
	if (aa->has_hmac)
		memcpy(p, aa->hmac, MPS_ADD_ADDR_HMAC_LEN);

	return form->len;
}

static void format_add_addr(const struct mps_option *opt, struct text *t)
{
	const struct mps_add_addr *aa = &opt->add_addr;
	char addr[INET6_ADDRSTRLEN];

	if (!inet_ntop(aa->addr.family, aa->addr.bytes, addr, sizeof(addr)))
		strcpy(addr, "?");

	text_add(t, "ADD_ADDR id=%u addr=%s", aa->addr_id, addr);
	if (aa->has_port)
		text_add(t, " port=%u", aa->port);
	text_add(t, " echo=%d", aa->echo);
	if (aa->has_hmac) {
		text_add(t, " hmac=");
		text_add_hex(t, aa->hmac, MPS_ADD_ADDR_HMAC_LEN);
	}
}

/*
 * REMOVE_ADDR (RFC 8684 section 3.4.2): one or more address ids.
 */

static int decode_remove_addr(const uint8_t *opt,
			      size_t len,
			      int version,
			      struct mps_option *out)
{
	struct mps_remove_addr *ra = &out->remove_addr;

	(void)version;
	if (len < 4)
		return MPS_WIRE_E_BAD_LENGTH;
	if (low_nibble(opt))
		return MPS_WIRE_E_RESERVED_BITS;

	/* len <= MPS_WIRE_OPT_MAX was checked, so the ids fit. */
	ra->count = (uint8_t)(len - 3);
	memcpy(ra->ids, opt + 3, ra->count);
	return 0;
}

static int encode_remove_addr(const struct mps_option *opt,
			      int version,
			      uint8_t *buf,
			      size_t cap)
{
	const struct mps_remove_addr *ra = &opt->remove_addr;
	size_t len = 3 + (size_t)ra->count;

	(void)version;
	if (ra->count == 0)
		return MPS_WIRE_E_BAD_FORM;
	if (ra->count > MPS_REMOVE_ADDR_MAX)
		return MPS_WIRE_E_TOO_LONG;
	if (cap < len)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, len, MPS_REMOVE_ADDR, 0);
	memcpy(buf + 3, ra->ids, ra->count);
	return (int)len;
}

static void format_remove_addr(const struct mps_option *opt, struct text *t)
{
	const struct mps_remove_addr *ra = &opt->remove_addr;
	size_t n = ra->count;
	size_t i;

	if (n > MPS_REMOVE_ADDR_MAX)
		n = MPS_REMOVE_ADDR_MAX;

	text_add(t, "REMOVE_ADDR ids=");
	for (i = 0; i < n; i++)
		text_add(t, "%s%u", i ? "," : "", ra->ids[i]);
}

/*
 * MP_PRIO (RFC 8684 section 3.3.8): v1 dropped v0's optional address id.
 */

static int decode_mp_prio(const uint8_t *opt,
			  size_t len,
			  int version,
			  struct mps_option *out)
{
	struct mps_mp_prio *prio = &out->mp_prio;

	if (len != 3 && !(len == 4 && version == MPS_VERSION_0))
		return MPS_WIRE_E_BAD_LENGTH;
	if (opt[OPT_SUBTYPE] & 0x0e)
		return MPS_WIRE_E_RESERVED_BITS;

	prio->backup = opt[OPT_SUBTYPE] & 0x01;
	if (len == 4) {
		prio->has_addr_id = true;
		prio->addr_id = opt[OPT_BYTE3];
	}

	return 0;
}

static int encode_mp_prio(const struct mps_option *opt,
			  int version,
			  uint8_t *buf,
			  size_t cap)
{
	const struct mps_mp_prio *prio = &opt->mp_prio;
	size_t len = prio->has_addr_id ? 4 : 3;

	if (prio->has_addr_id && version != MPS_VERSION_0)
		return MPS_WIRE_E_BAD_FORM;
	if (cap < len)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, len, MPS_MP_PRIO, prio->backup);
	if (prio->has_addr_id)
		buf[OPT_BYTE3] = prio->addr_id;

	return (int)len;
}

static void format_mp_prio(const struct mps_option *opt, struct text *t)
{
	const struct mps_mp_prio *prio = &opt->mp_prio;

	text_add(t, "MP_PRIO backup=%d", prio->backup);
	if (prio->has_addr_id)
		text_add(t, " id=%u", prio->addr_id);
}

/*
 * MP_FAIL (RFC 8684 section 3.7) and MP_FASTCLOSE (section 3.5) share a
 * layout: 12 reserved bits after the subtype, then one 64-bit value.
 */

static int decode_reserved_u64(const uint8_t *opt, size_t len, uint64_t *value)
{
	if (len != 12)
		return MPS_WIRE_E_BAD_LENGTH;
	if (low_nibble(opt) || opt[OPT_BYTE3])
		return MPS_WIRE_E_RESERVED_BITS;

	*value = get_be64(opt + 4);
	return 0;
}

static int encode_reserved_u64(enum mps_subtype subtype,
			       uint64_t value,
			       uint8_t *buf,
			       size_t cap)
{
	if (cap < 12)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, 12, subtype, 0);
	buf[OPT_BYTE3] = 0;
	put_be64(buf + 4, value);
	return 12;
}

static int decode_mp_fail(const uint8_t *opt,
			  size_t len,
			  int version,
			  struct mps_option *out)
{
	(void)version;
	return decode_reserved_u64(opt, len, &out->mp_fail.dsn);
}

static int encode_mp_fail(const struct mps_option *opt,
			  int version,
			  uint8_t *buf,
			  size_t cap)
{
	(void)version;
	return encode_reserved_u64(MPS_MP_FAIL, opt->mp_fail.dsn, buf, cap);
}

static void format_mp_fail(const struct mps_option *opt, struct text *t)
{
	text_add(t, "MP_FAIL dsn=%" PRIu64, opt->mp_fail.dsn);
}

static int decode_mp_fastclose(const uint8_t *opt,
			       size_t len,
			       int version,
			       struct mps_option *out)
{
	(void)version;
	return decode_reserved_u64(opt, len, &out->mp_fastclose.receiver_key);
}

static int encode_mp_fastclose(const struct mps_option *opt,
			       int version,
			       uint8_t *buf,
			       size_t cap)
{
	(void)version;
	return encode_reserved_u64(
		MPS_MP_FASTCLOSE, opt->mp_fastclose.receiver_key, buf, cap);
}

static void format_mp_fastclose(const struct mps_option *opt, struct text *t)
{
	text_add(t,
		 "MP_FASTCLOSE rcvkey=0x%016" PRIx64,
		 opt->mp_fastclose.receiver_key);
}

/*
 * MP_TCPRST (RFC 8684 section 3.6), which v0 does not have.  U, V and W
 * are reserved; T marks the error transient.
 */

#define TCPRST_T 0x01
#define TCPRST_UVW 0x0e

static int decode_mp_tcprst(const uint8_t *opt,
			    size_t len,
			    int version,
			    struct mps_option *out)
{
	struct mps_mp_tcprst *rst = &out->mp_tcprst;

	if (version == MPS_VERSION_0)
		return MPS_WIRE_E_NOT_IN_VERSION;
	if (len != 4)
		return MPS_WIRE_E_BAD_LENGTH;
	if (opt[OPT_SUBTYPE] & TCPRST_UVW)
		return MPS_WIRE_E_RESERVED_BITS;
	if (opt[OPT_BYTE3] > MPS_RST_MIDDLEBOX)
		return MPS_WIRE_E_BAD_REASON;

	rst->transient = opt[OPT_SUBTYPE] & TCPRST_T;
	rst->reason = opt[OPT_BYTE3];
	return 0;
}

static int encode_mp_tcprst(const struct mps_option *opt,
			    int version,
			    uint8_t *buf,
			    size_t cap)
{
	const struct mps_mp_tcprst *rst = &opt->mp_tcprst;

	if (version == MPS_VERSION_0)
		return MPS_WIRE_E_NOT_IN_VERSION;
	if (rst->reason > MPS_RST_MIDDLEBOX)
		return MPS_WIRE_E_BAD_REASON;
	if (cap < 4)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, 4, MPS_MP_TCPRST, rst->transient ? TCPRST_T : 0);
	buf[OPT_BYTE3] = rst->reason;
	return 4;
}

static void format_mp_tcprst(const struct mps_option *opt, struct text *t)
{
	const struct mps_mp_tcprst *rst = &opt->mp_tcprst;

	text_add(t,
		 "MP_TCPRST reason=%s transient=%d",
		 mps_wire_reason_name(rst->reason),
		 rst->transient);
}

/*
 * The private option (subtype 0xF): only the data window is defined.
 */

static int decode_mp_experimental(const uint8_t *opt,
				  size_t len,
				  int version,
				  struct mps_option *out)
{
	struct mps_mp_experimental *exp = &out->mp_experimental;

	(void)version;
	if (len != MPS_EXP_LEN)
		return MPS_WIRE_E_BAD_LENGTH;
	if (low_nibble(opt))
		return MPS_WIRE_E_RESERVED_BITS;
	if (opt[OPT_BYTE3] != MPS_EXP_DATA_WINDOW)
		return MPS_WIRE_E_BAD_FORM;

	exp->type = opt[OPT_BYTE3];
	exp->data_window = get_be32(opt + 4);
	return 0;
}

static int encode_mp_experimental(const struct mps_option *opt,
				  int version,
				  uint8_t *buf,
				  size_t cap)
{
	const struct mps_mp_experimental *exp = &opt->mp_experimental;

	(void)version;
	if (exp->type != MPS_EXP_DATA_WINDOW)
		return MPS_WIRE_E_BAD_FORM;
	if (cap < MPS_EXP_LEN)
		return MPS_WIRE_E_NO_SPACE;

	put_opt_head(buf, MPS_EXP_LEN, MPS_MP_EXPERIMENTAL, 0);
	buf[OPT_BYTE3] = exp->type;
	put_be32(buf + 4, exp->data_window);
	return MPS_EXP_LEN;
}

static void format_mp_experimental(const struct mps_option *opt, struct text *t)
{
	const struct mps_mp_experimental *exp = &opt->mp_experimental;

	text_add(t,
		 "EXPERIMENTAL type=%u data_window=%" PRIu32,
		 exp->type,
		 exp->data_window);
}

/*
 * Dispatch by subtype.
 */

struct option_codec {
	int (*decode)(const uint8_t *opt,
		      size_t len,
		      int version,
		      struct mps_option *out);
	int (*encode)(const struct mps_option *opt,
		      int version,
		      uint8_t *buf,
		      size_t cap);
	void (*format)(const struct mps_option *opt, struct text *t);
};

static const struct option_codec codecs[] = {
	[MPS_MP_CAPABLE] = {decode_mp_capable,
			    encode_mp_capable,
			    format_mp_capable},
	[MPS_MP_JOIN] = {decode_mp_join, encode_mp_join, format_mp_join},
	[MPS_DSS] = {decode_dss, encode_dss, format_dss},
	[MPS_ADD_ADDR] = {decode_add_addr, encode_add_addr, format_add_addr},
	[MPS_REMOVE_ADDR] = {decode_remove_addr,
			     encode_remove_addr,
			     format_remove_addr},
	[MPS_MP_PRIO] = {decode_mp_prio, encode_mp_prio, format_mp_prio},
	[MPS_MP_FAIL] = {decode_mp_fail, encode_mp_fail, format_mp_fail},
	[MPS_MP_FASTCLOSE] = {decode_mp_fastclose,
			      encode_mp_fastclose,
			      format_mp_fastclose},
	[MPS_MP_TCPRST] = {decode_mp_tcprst,
			   encode_mp_tcprst,
			   format_mp_tcprst},
	[MPS_MP_EXPERIMENTAL] = {decode_mp_experimental,
				 encode_mp_experimental,
				 format_mp_experimental},
};

static const struct option_codec *codec_for(unsigned int subtype)
{
	/* Subtypes 9 to 14 are unassigned: their slots are empty. */
	if (subtype >= ARRAY_SIZE(codecs) || !codecs[subtype].decode)
		return NULL;
	return &codecs[subtype];
}

/* Kind and length byte of an option that the caller says is len long. */
static int check_option_bounds(const uint8_t *buf, size_t len)
{
	if (len < 1)
		return MPS_WIRE_E_TRUNCATED;
	if (buf[OPT_KIND] != MPS_TCPOPT_MPTCP)
		return MPS_WIRE_E_BAD_KIND;
	if (len < 2)
		return MPS_WIRE_E_TRUNCATED;
	if (buf[OPT_LEN] < MPS_WIRE_OPT_MIN || buf[OPT_LEN] > MPS_WIRE_OPT_MAX)
		return MPS_WIRE_E_BAD_LENGTH;
	if (len < buf[OPT_LEN])
		return MPS_WIRE_E_TRUNCATED;
	if (len > buf[OPT_LEN])
		return MPS_WIRE_E_LENGTH_MISMATCH;

	return 0;
}

int mps_wire_decode_option(const uint8_t *buf,
			   size_t len,
			   int version,
			   struct mps_option *out)
{
	const struct option_codec *codec;
	unsigned int subtype;
	int err;

	memset(out, 0, sizeof(*out));
	if (!version_ok(version))
		return MPS_WIRE_E_BAD_VERSION;

	err = check_option_bounds(buf, len);
	if (err)
		return err;

	subtype = buf[OPT_SUBTYPE] >> 4;
	codec = codec_for(subtype);
	if (!codec)
		return MPS_WIRE_E_UNKNOWN_SUBTYPE;

	out->subtype = (enum mps_subtype)subtype;
	return codec->decode(buf, len, version, out);
}

int mps_wire_encode_option(const struct mps_option *opt,
			   int version,
			   uint8_t *buf,
			   size_t cap)
{
	const struct option_codec *codec;

	if (!version_ok(version))
		return MPS_WIRE_E_BAD_VERSION;

	codec = codec_for((unsigned int)opt->subtype);
	if (!codec)
		return MPS_WIRE_E_UNKNOWN_SUBTYPE;

	return codec->encode(opt, version, buf, cap);
}

/*
 * Records.
 */

/*
 * The data-level length of a mapping counts its payload and, when
 * DATA_FIN is set, one more.  With no payload and no DATA_FIN this lets
 * length 0 through: the infinite mapping, whose record carries nothing.
 */
static int check_mapping(uint16_t data_len, size_t payload_len, bool fin)
{
	if ((size_t)data_len != payload_len + fin)
		return MPS_WIRE_E_PAYLOAD_MISMATCH;
	return 0;
}

/* Only a mapping (DSS with M, MP_CAPABLE with data) carries payload. */
static int check_payload(const struct mps_option *opt, size_t payload_len)
{
	const struct mps_mp_capable *mpc = &opt->mp_capable;
	const struct mps_dss *dss = &opt->dss;

	if (opt->subtype == MPS_DSS && (dss->flags & MPS_DSS_MAP))
		return check_mapping(
			dss->data_len, payload_len, dss->flags & MPS_DSS_FIN);
	if (opt->subtype == MPS_MP_CAPABLE && mpc->has_data_len)
		return check_mapping(mpc->data_len, payload_len, false);
	if (payload_len)
		return MPS_WIRE_E_UNEXPECTED_PAYLOAD;

	return 0;
}

int mps_wire_decode_header(const uint8_t *buf,
			   size_t len,
			   struct mps_record_hdr *hdr)
{
	/* Fail on the first wrong byte so that garbage is caught early. */
	if (len >= 1 && buf[0] != MPS_WIRE_MARKER)
		return MPS_WIRE_E_BAD_MARKER;
	if (len >= 2 &&
	    (buf[1] < MPS_WIRE_OPT_MIN || buf[1] > MPS_WIRE_OPT_MAX))
		return MPS_WIRE_E_BAD_OPT_LEN;
	if (len < MPS_WIRE_HDR_LEN)
		return MPS_WIRE_NEED_MORE;

	hdr->opt_len = buf[1];
	hdr->payload_len = get_be16(buf + 2);
	return 0;
}

/* The option of a record: its kind and length byte are checked early. */
static int decode_record_option(const uint8_t *opt,
				size_t avail,
				const struct mps_record_hdr *hdr,
				int version,
				struct mps_option *out)
{
	if (avail >= 1 && opt[OPT_KIND] != MPS_TCPOPT_MPTCP)
		return MPS_WIRE_E_BAD_KIND;
	if (avail >= 2 && opt[OPT_LEN] != hdr->opt_len)
		return MPS_WIRE_E_LENGTH_MISMATCH;
	if (avail < hdr->opt_len)
		return MPS_WIRE_NEED_MORE;

	return mps_wire_decode_option(opt, hdr->opt_len, version, out);
}

int mps_wire_decode_record(const uint8_t *buf,
			   size_t len,
			   int version,
			   struct mps_record *rec)
{
	struct mps_record_hdr hdr;
	size_t total;
	int err;

	if (!version_ok(version))
		return MPS_WIRE_E_BAD_VERSION;

	err = mps_wire_decode_header(buf, len, &hdr);
	if (err)
		return err;

	err = decode_record_option(buf + MPS_WIRE_HDR_LEN,
				   len - MPS_WIRE_HDR_LEN,
				   &hdr,
				   version,
				   &rec->opt);
	if (err)
		return err;

	err = check_payload(&rec->opt, hdr.payload_len);
	if (err)
		return err;

	total = MPS_WIRE_HDR_LEN + (size_t)hdr.opt_len + hdr.payload_len;
	if (len < total)
		return MPS_WIRE_NEED_MORE;

	rec->opt_len = hdr.opt_len;
	rec->payload_off = MPS_WIRE_HDR_LEN + (size_t)hdr.opt_len;
	rec->payload_len = hdr.payload_len;
	rec->len = total;
	return 0;
}

int mps_wire_encode_header(uint8_t *buf, size_t opt_len, size_t payload_len)
{
	if (opt_len < MPS_WIRE_OPT_MIN || opt_len > MPS_WIRE_OPT_MAX)
		return MPS_WIRE_E_BAD_OPT_LEN;
	if (payload_len > MPS_WIRE_PAYLOAD_MAX)
		return MPS_WIRE_E_TOO_LONG;

	buf[0] = MPS_WIRE_MARKER;
	buf[1] = (uint8_t)opt_len;
	put_be16(buf + 2, (uint16_t)payload_len);
	return 0;
}

int mps_wire_encode_record(const struct mps_option *opt,
			   int version,
			   size_t payload_len,
			   uint8_t *buf,
			   size_t cap)
{
	uint8_t option[MPS_WIRE_OPT_MAX];
	size_t len;
	int n;
	int err;

	if (payload_len > MPS_WIRE_PAYLOAD_MAX)
		return MPS_WIRE_E_TOO_LONG;

	/* Into a scratch buffer first, so that buf stays as it was on error. */
	n = mps_wire_encode_option(opt, version, option, sizeof(option));
	if (n < 0)
		return n;

	err = check_payload(opt, payload_len);
	if (err)
		return err;

	len = MPS_WIRE_HDR_LEN + (size_t)n;
	if (cap < len)
		return MPS_WIRE_E_NO_SPACE;

	err = mps_wire_encode_header(buf, (size_t)n, payload_len);
	if (err)
		return err;

	memcpy(buf + MPS_WIRE_HDR_LEN, option, (size_t)n);
	return (int)len;
}

bool mps_wire_is_infinite_mapping(const struct mps_option *opt)
{
	return opt->subtype == MPS_DSS && (opt->dss.flags & MPS_DSS_MAP) &&
	       opt->dss.data_len == 0;
}

int mps_wire_format_option(const struct mps_option *opt, char *buf, size_t cap)
{
	const struct option_codec *codec;
	struct text t = {buf, cap, 0};

	if (cap > 0)
		buf[0] = '\0';

	codec = codec_for((unsigned int)opt->subtype);
	if (codec)
		codec->format(opt, &t);
	else
		text_add(&t, "UNKNOWN subtype=%d", (int)opt->subtype);

	return t.len > INT_MAX ? INT_MAX : (int)t.len;
}

/*
 * Names.
 */

static const char *const error_text[] = {
	[0] = "success",
	[-MPS_WIRE_E_TRUNCATED] = "input ends inside the option",
	[-MPS_WIRE_E_BAD_MARKER] = "record does not start with marker 0x4d",
	[-MPS_WIRE_E_BAD_OPT_LEN] = "record option length outside 3..40",
	[-MPS_WIRE_E_BAD_KIND] = "option kind is not 30 (MPTCP)",
	[-MPS_WIRE_E_LENGTH_MISMATCH] =
		"option length byte differs from the length given",
	[-MPS_WIRE_E_BAD_LENGTH] = "option length fits no form of the option",
	[-MPS_WIRE_E_UNKNOWN_SUBTYPE] = "unknown MPTCP option subtype",
	[-MPS_WIRE_E_BAD_VERSION] = "MPTCP version is neither 0 nor 1",
	[-MPS_WIRE_E_NOT_IN_VERSION] =
		"option does not exist in this MPTCP version",
	[-MPS_WIRE_E_RESERVED_BITS] = "reserved bits are set",
	[-MPS_WIRE_E_NO_HMAC_ALGO] = "MP_CAPABLE names no HMAC algorithm",
	[-MPS_WIRE_E_EXTENSIBILITY] = "MP_CAPABLE extensibility bit is set",
	[-MPS_WIRE_E_INCONSISTENT_FLAGS] = "flags contradict each other",
	[-MPS_WIRE_E_UNEXPECTED_PAYLOAD] =
		"payload on a record whose option maps no data",
	[-MPS_WIRE_E_PAYLOAD_MISMATCH] =
		"payload length differs from the data-level length",
	[-MPS_WIRE_E_TOO_LONG] = "more data than the format can carry",
	[-MPS_WIRE_E_OUT_OF_RANGE] = "value too large for its field",
	[-MPS_WIRE_E_BAD_FAMILY] = "address family is neither IPv4 nor IPv6",
	[-MPS_WIRE_E_BAD_REASON] = "unknown MP_TCPRST reason",
	[-MPS_WIRE_E_BAD_FORM] = "fields match no form of the option",
	[-MPS_WIRE_E_NO_SPACE] = "output buffer too small",
};

const char *mps_wire_strerror(int err)
{
	if (err == MPS_WIRE_NEED_MORE)
		return "record incomplete, more bytes needed";
	if (err > 0 || err <= -(int)ARRAY_SIZE(error_text))
		return "unknown wire error";

	return error_text[-err];
}

static const char *const subtype_names[] = {
	[MPS_MP_CAPABLE] = "MP_CAPABLE",
	[MPS_MP_JOIN] = "MP_JOIN",
	[MPS_DSS] = "DSS",
	[MPS_ADD_ADDR] = "ADD_ADDR",
	[MPS_REMOVE_ADDR] = "REMOVE_ADDR",
	[MPS_MP_PRIO] = "MP_PRIO",
	[MPS_MP_FAIL] = "MP_FAIL",
	[MPS_MP_FASTCLOSE] = "MP_FASTCLOSE",
	[MPS_MP_TCPRST] = "MP_TCPRST",
	[MPS_MP_EXPERIMENTAL] = "EXPERIMENTAL",
};

const char *mps_wire_subtype_name(int subtype)
{
	if (subtype < 0 || (size_t)subtype >= ARRAY_SIZE(subtype_names) ||
	    !subtype_names[subtype])
		return "UNKNOWN";
	return subtype_names[subtype];
}

/* Names without spaces, so that they fit key=value log lines. */
static const char *const reason_names[] = {
	[MPS_RST_UNSPECIFIED] = "unspecified",
	[MPS_RST_MPTCP_ERROR] = "mptcp-error",
	[MPS_RST_NO_RESOURCES] = "no-resources",
	[MPS_RST_PROHIBITED] = "prohibited",
	[MPS_RST_TOO_MUCH_DATA] = "too-much-data",
	[MPS_RST_POOR_PERFORMANCE] = "poor-performance",
	[MPS_RST_MIDDLEBOX] = "middlebox",
};

const char *mps_wire_reason_name(int reason)
{
	if (reason < 0 || (size_t)reason >= ARRAY_SIZE(reason_names))
		return "unknown";
	return reason_names[reason];
}
