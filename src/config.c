/*
 * config.c: parse the MPTCPSHIM_ variables (see config.h for the list).
 *
 * Decision: a bad value falls back to the variable's default, after one
 * line on stderr.  A list of rules with a single bad rule is a bad value
 * as a whole: converting by a rule set the user did not write could send
 * the wrong traffic through the library.  The line is written with
 * dprintf(), at load time, before the program ran a single instruction;
 * this is the one case where the library writes to stderr unasked.
 *
 * Decision: MPTCPSHIM_PATHS and MPTCPSHIM_BACKUP take interface names and
 * addresses mixed; a word that parses as an IPv4 or IPv6 address (with or
 * without brackets) is an address, anything else of 1 to 15 characters
 * without '/' or blanks is an interface name.  Names are not checked
 * against the interfaces present: an interface may appear later (a
 * phone's LTE).  MPTCPSHIM_MAX_SUBFLOWS counts live subflows, the
 * initial one included, default 4: two or three paths with a spare for a
 * path coming back while its old subflow is still timing out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "pathsel.h"

struct mps_config mps_config;

void mps_config_defaults(struct mps_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->disable = false;
	cfg->convert = MPS_CONVERT_ALL;
	cfg->version = 1;
	cfg->checksum = false;
	cfg->log_level = MPS_LOG_NONE;
	cfg->rcvbuf = MPS_CONFIG_BUF_DEFAULT;
	cfg->sndbuf = MPS_CONFIG_BUF_DEFAULT;
	cfg->sched = MPS_SCHED_EARLIEST;
	cfg->max_subflows = MPS_CONFIG_SUBFLOWS_DEFAULT;
	cfg->control = true;
	cfg->direct_send = true;
}

void mps_config_complain(const char *name,
			 const char *value,
			 const char *why,
			 const char *instead)
{
	dprintf(STDERR_FILENO,
		"mptcpshim: %s=\"%s\" %s; using %s\n",
		name,
		value,
		why,
		instead);
}

/* "0" or "1" into *out; returns -EINVAL for anything else. */
static int parse_bool(const char *value, bool *out)
{
	if (strcmp(value, "0") == 0)
		*out = false;
	else if (strcmp(value, "1") == 0)
		*out = true;
	else
		return -EINVAL;
	return 0;
}

/* A 0/1 variable into *out: dflt when unset, or when bad after the one
 * line on stderr.  0 or -EINVAL, as the parsers below. */
static int bool_var(bool *out,
		    const char *name,
		    const char *value,
		    bool dflt,
		    const char *instead)
{
	*out = dflt;
	if (!value || parse_bool(value, out) == 0)
		return 0;
	mps_config_complain(name, value, "is not 0 or 1", instead);
	*out = dflt;
	return -EINVAL;
}

int mps_config_disable(struct mps_config *cfg, const char *value)
{
	return bool_var(&cfg->disable,
			"MPTCPSHIM_DISABLE",
			value,
			false,
			"0 (the library is active)");
}

int mps_config_checksum(struct mps_config *cfg, const char *value)
{
	return bool_var(&cfg->checksum,
			"MPTCPSHIM_CHECKSUM",
			value,
			false,
			"0 (checksums when the peer asks)");
}

int mps_config_version(struct mps_config *cfg, const char *value)
{
	cfg->version = 1;
	if (!value)
		return 0;
	if (strcmp(value, "0") == 0 || strcmp(value, "1") == 0) {
		cfg->version = value[0] - '0';
		return 0;
	}
	mps_config_complain(
		"MPTCPSHIM_VERSION", value, "is not 0 or 1", "1 (RFC 8684)");
	return -EINVAL;
}

int mps_config_log_level(struct mps_config *cfg, const char *value)
{
	static const char *const names[] = {
		[MPS_LOG_NONE] = "none",
		[MPS_LOG_ERROR] = "error",
		[MPS_LOG_WARN] = "warn",
		[MPS_LOG_INFO] = "info",
		[MPS_LOG_DEBUG] = "debug",
	};
	size_t i;

	cfg->log_level = MPS_LOG_NONE;
	if (!value)
		return 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(value, names[i]) == 0) {
			cfg->log_level = (enum mps_log_level)i;
			return 0;
		}
	}
	mps_config_complain("MPTCPSHIM_LOG_LEVEL",
			    value,
			    "is not none, error, warn, info or debug",
			    "none (silent)");
	return -EINVAL;
}

int mps_config_log_file(struct mps_config *cfg, const char *value)
{
	cfg->log_file[0] = '\0';
	if (!value)
		return 0;
	if (value[0] && strlen(value) < sizeof(cfg->log_file)) {
		strcpy(cfg->log_file, value);
		return 0;
	}
	mps_config_complain("MPTCPSHIM_LOG_FILE",
			    value,
			    value[0] ? "is too long" : "is empty",
			    "stderr");
	return -EINVAL;
}

/* The pattern stays as given: capture.c expands "%p" in each process. */
int mps_config_capture(struct mps_config *cfg, const char *value)
{
	cfg->capture[0] = '\0';
	if (!value || strcmp(value, "none") == 0)
		return 0;
	if (value[0] && strlen(value) < sizeof(cfg->capture)) {
		strcpy(cfg->capture, value);
		return 0;
	}
	mps_config_complain("MPTCPSHIM_CAPTURE",
			    value,
			    value[0] ? "is too long" : "is empty",
			    "none (no capture)");
	return -EINVAL;
}

/*
 * A size in bytes with an optional K or M (binary) suffix, within
 * [MPS_CONFIG_BUF_MIN, MPS_CONFIG_BUF_MAX].  Returns 0 or -EINVAL.
 */
static int parse_size(const char *value, uint32_t *out)
{
	unsigned long long n;
	char *end;

	if (value[0] < '0' || value[0] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(value, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == 'K' || *end == 'k') {
		n <<= 10;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		n <<= 20;
		end++;
	}
	if (*end || n < MPS_CONFIG_BUF_MIN || n > MPS_CONFIG_BUF_MAX)
		return -EINVAL;
	*out = (uint32_t)n;
	return 0;
}

static int parse_buf(const char *name, uint32_t *field, const char *value)
{
	*field = MPS_CONFIG_BUF_DEFAULT;
	if (!value)
		return 0;
	if (parse_size(value, field) == 0)
		return 0;
	*field = MPS_CONFIG_BUF_DEFAULT;
	mps_config_complain(
		name, value, "is not a size from 64K to 256M", "4M");
	return -EINVAL;
}

int mps_config_rcvbuf(struct mps_config *cfg, const char *value)
{
	return parse_buf("MPTCPSHIM_RCVBUF", &cfg->rcvbuf, value);
}

int mps_config_sndbuf(struct mps_config *cfg, const char *value)
{
	return parse_buf("MPTCPSHIM_SNDBUF", &cfg->sndbuf, value);
}

/* Decimal number in [lo, hi] spanning exactly s..s+len; -EINVAL if not. */
static int parse_number(const char *s,
			size_t len,
			unsigned long lo,
			unsigned long hi,
			unsigned long *out)
{
	unsigned long n = 0;
	size_t i;

	if (len == 0 || len > 6)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

/* The address part of a rule: "[v6]" or "v4"; returns its length. */
static int parse_rule_addr(const char *s, struct mps_rule *r)
{
	char addr[INET6_ADDRSTRLEN + 1];
	size_t len;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (size_t)(close - s - 1) >= sizeof(addr))
			return -EINVAL;
		len = (size_t)(close - s - 1);
		memcpy(addr, s + 1, len);
		addr[len] = '\0';
		r->family = AF_INET6;
		r->prefix = 128;
		if (inet_pton(AF_INET6, addr, r->addr) != 1)
			return -EINVAL;
		return (int)len + 2;
	}
	len = strcspn(s, "/:");
	if (len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, len);
	addr[len] = '\0';
	r->family = AF_INET;
	r->prefix = 32;
	if (inet_pton(AF_INET, addr, r->addr) != 1)
		return -EINVAL;
	return (int)len;
}

/* One rule ADDR[/PREFIX][:PORT] from the NUL-terminated s. */
static int parse_rule(const char *s, struct mps_rule *r)
{
	unsigned long n;
	size_t len;
	int used;

	memset(r, 0, sizeof(*r));
	used = parse_rule_addr(s, r);
	if (used < 0)
		return used;
	s += used;
	if (*s == '/') {
		s++;
		len = strcspn(s, ":");
		if (parse_number(
			    s, len, 0, r->family == AF_INET ? 32 : 128, &n) < 0)
			return -EINVAL;
		r->prefix = (unsigned int)n;
		s += len;
	}
	if (*s == ':') {
		s++;
		if (parse_number(s, strlen(s), 1, 65535, &n) < 0)
			return -EINVAL;
		r->port = (uint16_t)n;
		s += strlen(s);
	}
	return *s ? -EINVAL : 0;
}

/* A comma list of rules into cfg; -EINVAL on the first bad one. */
static int parse_rules(struct mps_config *cfg, const char *value)
{
	char rule[128];
	const char *p = value;

	cfg->nrules = 0;
	for (;;) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(rule) ||
		    cfg->nrules == MPS_CONFIG_MAX_RULES)
			return -EINVAL;
		memcpy(rule, p, len);
		rule[len] = '\0';
		if (parse_rule(rule, &cfg->rules[cfg->nrules]) < 0)
			return -EINVAL;
		cfg->nrules++;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int mps_config_convert(struct mps_config *cfg, const char *value)
{
	cfg->convert = MPS_CONVERT_ALL;
	cfg->nrules = 0;
	if (!value || strcmp(value, "all") == 0)
		return 0;
	if (strcmp(value, "none") == 0) {
		cfg->convert = MPS_CONVERT_NONE;
		return 0;
	}
	if (parse_rules(cfg, value) == 0) {
		cfg->convert = MPS_CONVERT_RULES;
		return 0;
	}
	cfg->nrules = 0;
	mps_config_complain("MPTCPSHIM_CONVERT",
			    value,
			    "is not all, none or a list of "
			    "ADDR[/PREFIX][:PORT]",
			    "all");
	return -EINVAL;
}

int mps_config_scheduler(struct mps_config *cfg, const char *value)
{
	cfg->sched = MPS_SCHED_EARLIEST;
	if (!value || strcmp(value, "earliest") == 0)
		return 0;
	if (strcmp(value, "roundrobin") == 0) {
		cfg->sched = MPS_SCHED_ROUNDROBIN;
		return 0;
	}
	if (strcmp(value, "redundant") == 0) {
		cfg->sched = MPS_SCHED_REDUNDANT;
		return 0;
	}
	mps_config_complain("MPTCPSHIM_SCHEDULER",
			    value,
			    "is not earliest, roundrobin or redundant",
			    "earliest");
	return -EINVAL;
}

/* A comma list of selections; -EINVAL on the first bad one. */
static int parse_sels(const char *value, struct mps_path_sel *sels, int *n)
{
	char word[64];
	const char *p = value;

	*n = 0;
	for (;;) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(word) ||
		    *n == MPS_CONFIG_MAX_SELS)
			return -EINVAL;
		memcpy(word, p, len);
		word[len] = '\0';
		if (mps_pathsel_parse(word, &sels[*n]) < 0)
			return -EINVAL;
		(*n)++;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int mps_config_paths(struct mps_config *cfg, const char *value)
{
	cfg->npaths = 0;
	if (!value)
		return 0;
	if (parse_sels(value, cfg->paths, &cfg->npaths) == 0)
		return 0;
	cfg->npaths = 0;
	mps_config_complain("MPTCPSHIM_PATHS",
			    value,
			    "is not a list of interface names or addresses",
			    "every interface that is up");
	return -EINVAL;
}

int mps_config_backup(struct mps_config *cfg, const char *value)
{
	cfg->nbackup = 0;
	if (!value)
		return 0;
	if (parse_sels(value, cfg->backup, &cfg->nbackup) == 0)
		return 0;
	cfg->nbackup = 0;
	mps_config_complain("MPTCPSHIM_BACKUP",
			    value,
			    "is not a list of interface names or addresses",
			    "no backup paths");
	return -EINVAL;
}

int mps_config_max_subflows(struct mps_config *cfg, const char *value)
{
	unsigned long n;

	cfg->max_subflows = MPS_CONFIG_SUBFLOWS_DEFAULT;
	if (!value)
		return 0;
	if (parse_number(
		    value, strlen(value), 1, MPS_CONFIG_SUBFLOWS_MAX, &n) ==
	    0) {
		cfg->max_subflows = (int)n;
		return 0;
	}
	mps_config_complain("MPTCPSHIM_MAX_SUBFLOWS",
			    value,
			    "is not a number from 1 to 8",
			    "4");
	return -EINVAL;
}

int mps_config_control(struct mps_config *cfg, const char *value)
{
	return bool_var(&cfg->control,
			"MPTCPSHIM_CONTROL",
			value,
			true,
			"1 (the control socket is served)");
}

int mps_config_direct_send(struct mps_config *cfg, const char *value)
{
	return bool_var(&cfg->direct_send,
			"MPTCPSHIM_DIRECT_SEND",
			value,
			true,
			"1 (program threads send directly)");
}

/* Where the control socket goes; a value too long is as good as none. */
static void load_runtime_dir(struct mps_config *cfg, const char *value)
{
	cfg->runtime_dir[0] = '\0';
	if (value && strlen(value) < sizeof(cfg->runtime_dir))
		strcpy(cfg->runtime_dir, value);
}

bool mps_config_sel_match(const struct mps_path_sel *sel,
			  const char *ifname,
			  const struct sockaddr *sa)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	if (sel->family == 0)
		return ifname && strcmp(sel->ifname, ifname) == 0;
	if (!sa || sa->sa_family != sel->family)
		return false;
	if (sel->family == AF_INET)
		return memcmp(&v4->sin_addr, sel->addr, 4) == 0;
	return memcmp(&v6->sin6_addr, sel->addr, 16) == 0;
}

void mps_config_load(struct mps_config *cfg)
{
	mps_config_defaults(cfg);
	mps_config_disable(cfg, getenv("MPTCPSHIM_DISABLE"));
	mps_config_convert(cfg, getenv("MPTCPSHIM_CONVERT"));
	mps_config_version(cfg, getenv("MPTCPSHIM_VERSION"));
	mps_config_checksum(cfg, getenv("MPTCPSHIM_CHECKSUM"));
	mps_config_log_level(cfg, getenv("MPTCPSHIM_LOG_LEVEL"));
	mps_config_log_file(cfg, getenv("MPTCPSHIM_LOG_FILE"));
	mps_config_rcvbuf(cfg, getenv("MPTCPSHIM_RCVBUF"));
	mps_config_sndbuf(cfg, getenv("MPTCPSHIM_SNDBUF"));
	mps_config_scheduler(cfg, getenv("MPTCPSHIM_SCHEDULER"));
	mps_config_paths(cfg, getenv("MPTCPSHIM_PATHS"));
	mps_config_backup(cfg, getenv("MPTCPSHIM_BACKUP"));
	mps_config_max_subflows(cfg, getenv("MPTCPSHIM_MAX_SUBFLOWS"));
	mps_config_control(cfg, getenv("MPTCPSHIM_CONTROL"));
	mps_config_direct_send(cfg, getenv("MPTCPSHIM_DIRECT_SEND"));
	load_runtime_dir(cfg, getenv("XDG_RUNTIME_DIR"));
	mps_config_capture(cfg, getenv("MPTCPSHIM_CAPTURE"));
}
