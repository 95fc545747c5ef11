/*
 * negotiate.h: does the peer run the library?  Decided in the TCP
 * handshake, without a byte of ours in the stream and without an extra
 * round trip.
 *
 * The signal: a converted client sets TCP_MAXSEG to MPS_NEG_CLIENT_MSS
 * before connect(), so its SYN carries that MSS; a prepared listener sets
 * TCP_MAXSEG to MPS_NEG_SERVER_MSS and TCP_SAVE_SYN before listen(), so
 * its SYN-ACK carries that MSS.  The server reads the saved SYN after
 * accept(); the client reads TCP_INFO once connected.  Both values are odd
 * and below 1220 so that any path with IPv6's minimum MTU carries them
 * unchanged; a middlebox that rewrites the MSS only makes the connection
 * plain.  Measured on loopback: the client saw tcpi_snd_mss 1201 (1213
 * less 12 bytes of timestamps), the server's saved SYN showed MSS 1219.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef MPS_NEGOTIATE_H
#define MPS_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MPS_NEG_CLIENT_MSS 1219 /* in the SYN of a client running us */
#define MPS_NEG_SERVER_MSS 1213 /* in the SYN-ACK of a listener of ours */
#define MPS_NEG_TS_LEN 12	/* TCP timestamps option, padded */

#define MPS_NEG_CACHE_SIZE 256 /* destinations remembered as plain */
#define MPS_NEG_CACHE_TTL 600  /* seconds an entry is believed */

/*
 * Should connect() to dst be converted?  False when MPTCPSHIM_CONVERT
 * excludes it or the cache holds it as plain.
 */
bool mps_neg_should_convert(const struct sockaddr *dst, socklen_t len);

/* Does dst match one of the configured rules?  For tests as well. */
bool mps_neg_rules_match(const struct sockaddr *dst, socklen_t len);

/* Remember dst (address and port) as a peer without the library. */
void mps_neg_cache_plain(const struct sockaddr *dst, socklen_t len);

/* Client, before connect(): put the signal into the SYN.  0 or -errno. */
int mps_neg_client_prepare(int fd);

/* Client, once connected: did the SYN-ACK carry the listener's signal? */
bool mps_neg_client_peer_is_shim(int fd);

/* Listener, before listen(): signal in SYN-ACKs, keep SYNs.  0/-errno. */
int mps_neg_listener_prepare(int fd);

/*
 * Server, after accept(): may the client run the library?  True when the
 * saved SYN carried the client's signal, and when no SYN was saved: the
 * kernel answered with a SYN cookie (its SYN queue overflowed, a small
 * listen backlog under many concurrent connects) and keeps no SYN for
 * such a connection, while its SYN-ACK still carried our signal, so a
 * client of ours took it for MPTCP.  The server core then decides by the
 * client's first bytes: a well-formed MP_CAPABLE record goes on, anything
 * else, or nothing within the fallback time, is plain TCP (conn.h).
 */
bool mps_neg_server_peer_maybe_shim(int fd);

/*
 * The MSS option of a saved SYN (IPv4 or IPv6 header, then TCP header),
 * or -1 when there is none or the headers are malformed.
 */
int mps_neg_syn_mss(const uint8_t *syn, size_t len);

/* Server: how long to wait for the client's first record, in us:
 * 1 s or three smoothed RTTs of the subflow, whichever is larger. */
uint64_t mps_neg_fallback_us(int fd);

/* fork(): hold the cache's lock across it (prepare, parent), and give
 * the child a fresh one. */
void mps_neg_prefork(void);
void mps_neg_parent(void);
void mps_neg_child(void);

#endif /* MPS_NEGOTIATE_H */
