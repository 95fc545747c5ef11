/*
 * pathsel.h: parsing one selection of a local path, as MPTCPSHIM_PATHS,
 * MPTCPSHIM_BACKUP and the control socket's steering requests name them:
 * an IPv4 or IPv6 address (in brackets or not), else an interface name.
 *
 * Shared by the environment parser (config.c) and the control protocol
 * (ctlproto.c, which the mptcpshim command uses as well).  Pure; any
 * thread.
 */
#ifndef MPS_PATHSEL_H
#define MPS_PATHSEL_H

#include "config.h"

/* An address into *sel; 0, or -EINVAL when s is none. */
int mps_pathsel_addr(const char *s, struct mps_path_sel *sel);

/*
 * An address, else an interface name (shorter than
 * MPS_CONFIG_IFNAME_MAX, without '/', '=', brackets or blanks); 0, or
 * -EINVAL.
 */
int mps_pathsel_parse(const char *s, struct mps_path_sel *sel);

#endif /* MPS_PATHSEL_H */
