/*
 * config.h: the MPTCPSHIM_ environment variables.
 *
 * Read once, when the library is loaded, into mps_config; nothing reads
 * the environment later (the program may change it).  Each variable has
 * its own parser, which takes the variable's value (NULL when unset) so
 * that tests call it without touching the environment.
 *
 * A bad value is never silent and never fatal: the parser writes exactly
 * one line on stderr that names the variable, the value and what is used
 * instead, and the documented outcome is that the default is used.
 *
 *   variable             values                         default
 *   MPTCPSHIM_DISABLE    0, 1                           0
 *   MPTCPSHIM_CONVERT    all, none, RULE[,RULE...]      all
 *                        RULE: ADDR[/PREFIX][:PORT], ADDR an IPv4
 *                        address or an IPv6 address in brackets
 *   MPTCPSHIM_VERSION    0 (RFC 6824), 1 (RFC 8684)     1
 *   MPTCPSHIM_CHECKSUM   0, 1 (require DSS checksums)   0
 *   MPTCPSHIM_LOG_LEVEL  none, error, warn, info, debug none
 *   MPTCPSHIM_LOG_FILE   a path; "%p" becomes the pid   stderr
 *   MPTCPSHIM_RCVBUF     bytes, suffix K or M allowed,  4M
 *   MPTCPSHIM_SNDBUF     64K..256M                      4M
 *   MPTCPSHIM_SCHEDULER  earliest, roundrobin, redundant earliest
 *   MPTCPSHIM_PATHS      SEL[,SEL...]: local interfaces all that are up,
 *                        or addresses that carry joins  not loopback
 *                        SEL: an interface name, an IPv4 address, or
 *                        an IPv6 address (brackets optional)
 *   MPTCPSHIM_BACKUP     SEL[,SEL...]: subflows from     none
 *                        these are backup (MP_JOIN B)
 *   MPTCPSHIM_MAX_SUBFLOWS  1..8: live subflows of one    4
 *                        connection, the initial one
 *                        included; 1 opens no joins
 *   MPTCPSHIM_CONTROL    0, 1: the control socket       1
 *                        (control.h); XDG_RUNTIME_DIR,
 *                        read with it, says where
 *   MPTCPSHIM_CAPTURE    none, or a pcap file; "%p"     none
 *                        becomes the pid (capture.h)
 *
 * Threads: parsed before any other thread of the library exists; read
 * only afterwards.
 */
#ifndef MPS_CONFIG_H
#define MPS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define MPS_CONFIG_MAX_RULES 64
#define MPS_CONFIG_BUF_DEFAULT (4u << 20)
#define MPS_CONFIG_BUF_MIN (64u << 10)
#define MPS_CONFIG_BUF_MAX (256u << 20)
#define MPS_CONFIG_PATH_MAX 4096
#define MPS_CONFIG_MAX_SELS 16
#define MPS_CONFIG_SUBFLOWS_DEFAULT 4
#define MPS_CONFIG_SUBFLOWS_MAX 8 /* MPS_CONN_MAX_SUBFLOWS */
#define MPS_CONFIG_IFNAME_MAX 16 /* IF_NAMESIZE */

enum mps_convert_mode {
	MPS_CONVERT_ALL,   /* every destination */
	MPS_CONVERT_NONE,  /* nothing: neither clients nor listeners */
	MPS_CONVERT_RULES, /* destinations matching one of the rules */
};

/* One local interface or address, in MPTCPSHIM_PATHS or _BACKUP. */
struct mps_path_sel {
	int family;			    /* 0: by name; AF_INET, AF_INET6 */
	char ifname[MPS_CONFIG_IFNAME_MAX]; /* family 0 */
	uint8_t addr[16];		   /* network byte order */
};

/* One destination rule: address prefix and optional port. */
struct mps_rule {
	int family;	     /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network byte order; 4 bytes used for IPv4 */
	unsigned int prefix; /* leading bits that must match */
	uint16_t port;	     /* host byte order; 0 matches any port */
};

struct mps_config {
	bool disable;
	enum mps_convert_mode convert;
	int nrules;
	struct mps_rule rules[MPS_CONFIG_MAX_RULES];
	int version;
	bool checksum;
	enum mps_log_level log_level;
	char log_file[MPS_CONFIG_PATH_MAX]; /* "" means stderr */
	uint32_t rcvbuf;
	uint32_t sndbuf;
	int sched; /* enum mps_sched */
	int npaths; /* 0: every usable interface */
	struct mps_path_sel paths[MPS_CONFIG_MAX_SELS];
	int nbackup;
	struct mps_path_sel backup[MPS_CONFIG_MAX_SELS];
	int max_subflows;
	bool control;			       /* serve the control socket */
	bool direct_send; /* program threads write records (loop.h) */
	char runtime_dir[MPS_CONFIG_PATH_MAX]; /* XDG_RUNTIME_DIR or "" */
	char capture[MPS_CONFIG_PATH_MAX]; /* pcap file; "" means none */
};

/* The process's configuration, filled by mps_config_load(). */
extern struct mps_config mps_config;

/* Every field at its default. */
void mps_config_defaults(struct mps_config *cfg);

/* Parse every variable from the environment into cfg. */
void mps_config_load(struct mps_config *cfg);

/*
 * One parser per variable.  value is the variable's value or NULL when
 * it is unset.  Each returns 0 when the value was used (or absent), or
 * -EINVAL after writing the one stderr line and storing the default.
 */
int mps_config_disable(struct mps_config *cfg, const char *value);
int mps_config_convert(struct mps_config *cfg, const char *value);
int mps_config_version(struct mps_config *cfg, const char *value);
int mps_config_checksum(struct mps_config *cfg, const char *value);
int mps_config_log_level(struct mps_config *cfg, const char *value);
int mps_config_log_file(struct mps_config *cfg, const char *value);
int mps_config_rcvbuf(struct mps_config *cfg, const char *value);
int mps_config_sndbuf(struct mps_config *cfg, const char *value);
int mps_config_scheduler(struct mps_config *cfg, const char *value);
int mps_config_paths(struct mps_config *cfg, const char *value);
int mps_config_backup(struct mps_config *cfg, const char *value);
int mps_config_max_subflows(struct mps_config *cfg, const char *value);
int mps_config_control(struct mps_config *cfg, const char *value);
int mps_config_capture(struct mps_config *cfg, const char *value);
int mps_config_direct_send(struct mps_config *cfg, const char *value);

/* Does sel name the interface ifname or the address sa? */
struct sockaddr;
bool mps_config_sel_match(const struct mps_path_sel *sel,
			  const char *ifname,
			  const struct sockaddr *sa);

/* Write the one line about a bad value of name: "mptcpshim: NAME=VALUE
 * WHY; using INSTEAD". */
void mps_config_complain(const char *name,
			 const char *value,
			 const char *why,
			 const char *instead);

#endif /* MPS_CONFIG_H */
