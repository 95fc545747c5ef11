/*
 * mptcpshim wire format: MPTCP options carried in-band in subflow streams.
 *
 * A user-space process cannot put options into TCP headers, so each
 * subflow's byte stream is a sequence of records:
 *
 *   offset  size  field
 *   0       1     marker, always 0x4d ('M')
 *   1       1     L: option length, 3..40
 *   2       2     P: payload length, 0..65535, big-endian
 *   4       L     one MPTCP option, laid out exactly as in a TCP header:
 *                 kind 30, length byte == L, subtype in the high nibble
 *                 of the third byte, then the subtype's fields
 *   4 + L   P     payload: connection-level data
 *
 * P may be non-zero only for a DSS option with a mapping (M flag) or for
 * the MP_CAPABLE form that carries a data-level length; there the
 * data-level length equals P, plus one when DATA_FIN (F) is set.  A DSS
 * mapping with data-level length 0 is the infinite mapping (RFC 8684
 * section 3.7): its record has P == 0 and every byte after it on that
 * subflow is raw, unframed data.
 *
 * A receiver that cannot parse a record resets the subflow (MP_TCPRST,
 * reason 1) and closes it; the connection's other subflows carry on.
 * doc/record-format.md explains the format and its rules in full.
 *
 * Every function here is pure: no allocation, no global state, safe from
 * any thread.  Decoders never read outside [buf, buf + len).  Encoders
 * refuse to write anything the decoders would reject.
 */
#ifndef MPS_WIRE_H
#define MPS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MPS_WIRE_MARKER 0x4d
#define MPS_WIRE_HDR_LEN 4
#define MPS_WIRE_OPT_MIN 3  /* MP_PRIO (v1) is 3 bytes long */
#define MPS_WIRE_OPT_MAX 40 /* TCP's option space */
#define MPS_WIRE_PAYLOAD_MAX 65535
#define MPS_WIRE_RECORD_MAX                                                    \
	(MPS_WIRE_HDR_LEN + MPS_WIRE_OPT_MAX + MPS_WIRE_PAYLOAD_MAX)

#define MPS_TCPOPT_MPTCP 30 /* TCP option kind of every MPTCP option */

#define MPS_VERSION_0 0 /* RFC 6824 */
#define MPS_VERSION_1 1 /* RFC 8684 */

/* Result codes.  0 is success; errors are negative. */
enum mps_wire_err {
	MPS_WIRE_NEED_MORE = 1, /* not an error: the record is incomplete */
	MPS_WIRE_E_TRUNCATED = -1,
	MPS_WIRE_E_BAD_MARKER = -2,
	MPS_WIRE_E_BAD_OPT_LEN = -3,
	MPS_WIRE_E_BAD_KIND = -4,
	MPS_WIRE_E_LENGTH_MISMATCH = -5,
	MPS_WIRE_E_BAD_LENGTH = -6,
	MPS_WIRE_E_UNKNOWN_SUBTYPE = -7,
	MPS_WIRE_E_BAD_VERSION = -8,
	MPS_WIRE_E_NOT_IN_VERSION = -9,
	MPS_WIRE_E_RESERVED_BITS = -10,
	MPS_WIRE_E_NO_HMAC_ALGO = -11,
	MPS_WIRE_E_EXTENSIBILITY = -12,
	MPS_WIRE_E_INCONSISTENT_FLAGS = -13,
	MPS_WIRE_E_UNEXPECTED_PAYLOAD = -14,
	MPS_WIRE_E_PAYLOAD_MISMATCH = -15,
	MPS_WIRE_E_TOO_LONG = -16,
	MPS_WIRE_E_OUT_OF_RANGE = -17,
	MPS_WIRE_E_BAD_FAMILY = -18,
	MPS_WIRE_E_BAD_REASON = -19,
	MPS_WIRE_E_BAD_FORM = -20,
	MPS_WIRE_E_NO_SPACE = -21,
};

/* The value of the subtype nibble. */
enum mps_subtype {
	MPS_MP_CAPABLE = 0,
	MPS_MP_JOIN = 1,
	MPS_DSS = 2,
	MPS_ADD_ADDR = 3,
	MPS_REMOVE_ADDR = 4,
	MPS_MP_PRIO = 5,
	MPS_MP_FAIL = 6,
	MPS_MP_FASTCLOSE = 7,
	MPS_MP_TCPRST = 8,	  /* v1 only */
	MPS_MP_EXPERIMENTAL = 15, /* private use: struct mps_mp_experimental */
};

/* MP_CAPABLE flags (RFC 8684 section 3.1); D to G are reserved. */
#define MPS_MPC_CHECKSUM 0x80	   /* A: DSS checksums required */
#define MPS_MPC_EXTENSIBILITY 0x40 /* B: must be 0 */
#define MPS_MPC_NO_SRC_ADDR 0x20   /* C (v1): no subflows to source */
#define MPS_MPC_HMAC 0x01	   /* H: HMAC-SHA256 (v1), -SHA1 (v0) */

/*
 * MP_CAPABLE, every form.  The option length selects the form:
 *   v1: 4 (SYN, no key), 12 (SYN/ACK, responder's key as sender_key),
 *       20 (ACK, both keys), 22 (ACK + data-level length),
 *       24 (ACK + data-level length + checksum);
 *   v0: 12 (SYN and SYN/ACK, sender's key), 20 (ACK, both keys).
 */
struct mps_mp_capable {
	uint8_t version; /* MPS_VERSION_0 or MPS_VERSION_1 */
	uint8_t flags;	 /* MPS_MPC_* */
	uint8_t nkeys;	 /* 0, 1 (sender_key) or 2 (both) */
	uint64_t sender_key;
	uint64_t receiver_key;
	bool has_data_len; /* v1 only, with both keys */
	uint16_t data_len;
	bool has_checksum; /* v1 only, with has_data_len */
	uint16_t checksum;
};

enum mps_join_form {
	MPS_JOIN_SYN = 0,    /* 12 bytes: token and nonce */
	MPS_JOIN_SYNACK = 1, /* 16 bytes: truncated HMAC and nonce */
	MPS_JOIN_ACK = 2,    /* 24 bytes: full HMAC */
};

#define MPS_JOIN_TRUNC_HMAC_LEN 8
#define MPS_JOIN_HMAC_LEN 20

/* MP_JOIN (RFC 8684 section 3.2). */
struct mps_mp_join {
	enum mps_join_form form;
	bool backup;	 /* B; SYN and SYN/ACK */
	uint8_t addr_id; /* SYN and SYN/ACK */
	uint32_t token;	 /* SYN: the receiver's token */
	uint32_t nonce;	 /* SYN and SYN/ACK: the sender's random */
	/* SYN/ACK: the leftmost 64 bits in hmac[0..7]; ACK: all 160 bits */
	uint8_t hmac[MPS_JOIN_HMAC_LEN];
};

/* DSS flags (RFC 8684 section 3.3); the other bits are reserved. */
#define MPS_DSS_ACK 0x01   /* A: data ACK present */
#define MPS_DSS_ACK64 0x02 /* a: data ACK is 8 bytes (needs A) */
#define MPS_DSS_MAP 0x04   /* M: mapping present */
#define MPS_DSS_DSN64 0x08 /* m: DSN is 8 bytes (needs M) */
#define MPS_DSS_FIN 0x10   /* F: DATA_FIN (needs M) */

/*
 * DSS.  Fields that the flags leave out are zero.  A 4-byte data ACK or
 * DSN holds the low 32 bits only.  has_checksum is inferred from the
 * option length; whether checksums were negotiated is the connection's
 * business.
 */
struct mps_dss {
	uint8_t flags; /* MPS_DSS_* */
	uint64_t data_ack;
	uint64_t dsn;
	uint32_t ssn;	   /* subflow sequence number */
	uint16_t data_len; /* data-level length; 0: infinite mapping */
	bool has_checksum; /* only with a mapping */
	uint16_t checksum;
};

/* An IP address without a sockaddr: family AF_INET or AF_INET6. */
struct mps_addr {
	uint16_t family;
	uint8_t bytes[16]; /* IPv4 in bytes[0..3], the rest zero */
};

#define MPS_ADD_ADDR_HMAC_LEN 8

/*
 * ADD_ADDR.  v1: echo (E) forms carry no HMAC, the others the rightmost
 * 64 bits of the HMAC; the family follows from the length.  v0: no echo,
 * no HMAC; the family is in the IPVer nibble.
 */
struct mps_add_addr {
	bool echo; /* v1 only */
	uint8_t addr_id;
	struct mps_addr addr;
	bool has_port;
	uint16_t port;
	bool has_hmac; /* v1 and !echo, exactly */
	uint8_t hmac[MPS_ADD_ADDR_HMAC_LEN];
};

#define MPS_REMOVE_ADDR_MAX (MPS_WIRE_OPT_MAX - 3)

struct mps_remove_addr {
	uint8_t count; /* 1..MPS_REMOVE_ADDR_MAX */
	uint8_t ids[MPS_REMOVE_ADDR_MAX];
};

/* MP_PRIO: 3 bytes; v0 may add an address id (4 bytes). */
struct mps_mp_prio {
	bool backup;
	bool has_addr_id; /* v0 only */
	uint8_t addr_id;
};

struct mps_mp_fail {
	uint64_t dsn;
};

struct mps_mp_fastclose {
	uint64_t receiver_key;
};

/* MP_TCPRST reasons (RFC 8684 section 3.6). */
enum mps_tcprst_reason {
	MPS_RST_UNSPECIFIED = 0,
	MPS_RST_MPTCP_ERROR = 1,
	MPS_RST_NO_RESOURCES = 2,
	MPS_RST_PROHIBITED = 3,
	MPS_RST_TOO_MUCH_DATA = 4,
	MPS_RST_POOR_PERFORMANCE = 5,
	MPS_RST_MIDDLEBOX = 6,
};

/* MP_TCPRST: flags U, V and W are reserved; T means transient. */
struct mps_mp_tcprst {
	bool transient;
	uint8_t reason; /* enum mps_tcprst_reason */
};

/*
 * mptcpshim's private option, in the subtype RFC 8684 keeps for private
 * and experimental use (0xF):
 *
 *   byte 0  kind 30          byte 1  length 8
 *   byte 2  0xF0 (subtype 0xF, low nibble 0)
 *   byte 3  private type: 1, the data window
 *   byte 4  32-bit big-endian window in bytes
 *
 * The data window stands in for the TCP header's window, which in-band
 * records lack (RFC 8684 section 3.3.4): how many bytes beyond the data
 * ACK of the sender's last DSS on the same subflow it will accept.  It is
 * the same in v0 and v1.  No other private type is defined.
 */
#define MPS_EXP_DATA_WINDOW 1
#define MPS_EXP_LEN 8

struct mps_mp_experimental {
	uint8_t type; /* MPS_EXP_DATA_WINDOW */
	uint32_t data_window;
};

/* One MPTCP option: subtype says which member of the union is valid. */
struct mps_option {
	enum mps_subtype subtype;
	union {
		struct mps_mp_capable mp_capable;
		struct mps_mp_join mp_join;
		struct mps_dss dss;
		struct mps_add_addr add_addr;
		struct mps_remove_addr remove_addr;
		struct mps_mp_prio mp_prio;
		struct mps_mp_fail mp_fail;
		struct mps_mp_fastclose mp_fastclose;
		struct mps_mp_tcprst mp_tcprst;
		struct mps_mp_experimental mp_experimental;
	};
};

struct mps_record_hdr {
	uint8_t opt_len;      /* L */
	uint16_t payload_len; /* P */
};

/* A decoded record; offsets are from the start of the record. */
struct mps_record {
	struct mps_option opt;
	size_t opt_len;
	size_t payload_off;
	size_t payload_len;
	size_t len; /* header + option + payload: bytes consumed */
};

/*
 * Decode a record header from the first len bytes of buf.  Returns 0,
 * MPS_WIRE_NEED_MORE while fewer than 4 bytes are there, or a negative
 * error as soon as the bytes present prove one (bad marker, L out of
 * range).
 */
int mps_wire_decode_header(const uint8_t *buf,
			   size_t len,
			   struct mps_record_hdr *hdr);

/*
 * Decode one record at the start of buf: header, option, and the rules
 * binding P to the option.  version is the connection's MPTCP version
 * (MP_CAPABLE carries its own).  Returns 0 with *rec filled in,
 * MPS_WIRE_NEED_MORE if the record has not fully arrived and nothing
 * seen so far is wrong, or a negative error.  Bytes after rec->len
 * belong to the next record.  *rec is meaningful only on 0.
 */
int mps_wire_decode_record(const uint8_t *buf,
			   size_t len,
			   int version,
			   struct mps_record *rec);

/*
 * Decode one option of exactly len bytes (its length byte must equal
 * len).  version matters for ADD_ADDR, MP_PRIO and MP_TCPRST and must be
 * 0 or 1 in any case.  Returns 0 or a negative error.  On 0, fields that
 * the option's form does not carry are zero; on error, *out means nothing.
 */
int mps_wire_decode_option(const uint8_t *buf,
			   size_t len,
			   int version,
			   struct mps_option *out);

/*
 * Encode opt for a connection of the given version into buf.  Returns
 * the number of bytes written (3..40), or a negative error, in which
 * case buf is left untouched.
 */
int mps_wire_encode_option(const struct mps_option *opt,
			   int version,
			   uint8_t *buf,
			   size_t cap);

/* Write a record header.  Returns 0, BAD_OPT_LEN or TOO_LONG. */
int mps_wire_encode_header(uint8_t *buf, size_t opt_len, size_t payload_len);

/*
 * Write the header and option of a record whose payload_len bytes of
 * payload the caller sends right after them (so that the payload is
 * never copied).  Checks the same payload rules as the decoder.
 * Returns the bytes written (MPS_WIRE_HDR_LEN + option length) or a
 * negative error.
 */
int mps_wire_encode_record(const struct mps_option *opt,
			   int version,
			   size_t payload_len,
			   uint8_t *buf,
			   size_t cap);

/* True for a DSS mapping of data-level length 0 (RFC 8684 section 3.7). */
bool mps_wire_is_infinite_mapping(const struct mps_option *opt);

/*
 * Write a one-line key=value description of opt, for logs.  Like
 * snprintf: never writes more than cap bytes, terminates the text when
 * cap > 0, and returns the length the whole text has.
 */
int mps_wire_format_option(const struct mps_option *opt, char *buf, size_t cap);

/* Static strings; never NULL, also for values out of range. */
const char *mps_wire_strerror(int err);
const char *mps_wire_subtype_name(int subtype);
const char *mps_wire_reason_name(int reason);

#endif /* MPS_WIRE_H */
