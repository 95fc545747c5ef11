/*
 * control.h: the process's control socket, served by its loop thread,
 * and the runtime steering it keeps (ctlproto.h has the protocol).
 *
 * The socket is DIR/PID.sock (ctlproto.h, mps_ctl_dir()), opened when
 * the loop starts unless MPTCPSHIM_CONTROL=0, and unlinked when the
 * process exits through exit() or _exit().  Only the process's own user
 * (or root) is served: the directory must be the user's own with mode
 * 0700, and each client's SO_PEERCRED is checked.
 *
 * Steering state (the loop thread's): backup overrides by interface or
 * address, withdrawn and added local addresses, and a scheduler for the
 * connections to come.  pathmgr.c and loop.c consult it for future
 * subflows; control.c applies it to live ones through the mps_loop_ctl_
 * functions that loop.c provides.  A fork child keeps the parent's
 * steering, as it keeps its configuration, and opens its own socket when
 * its own loop starts.
 */
#ifndef MPS_CONTROL_H
#define MPS_CONTROL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "ctlproto.h"

/* Control clients served at once; more are closed at accept. */
#define MPS_CTL_MAX_CLIENTS 8

/* A client idle (no request, reply not read) this long is dropped. */
#define MPS_CTL_IDLE_S 10.0

/* Steering rules remembered, of each kind. */
#define MPS_CTL_MAX_RULES 16

/*
 * Open the socket and watch it on loop.  Called while the loop is
 * created, before its thread runs (queue lock held).  Returns 0, also
 * when turned off or when the directory is unsafe (logged at warn
 * level): the program goes on without a control socket.
 */
int mps_ctl_start(struct ev_loop *loop);

/* The process exits: unlink its socket.  Any thread. */
void mps_ctl_exit(void);

/* In a fork child: forget the parent's socket and clients (their
 * descriptors are loop-owned, closed by mps_fdtab_child()). */
void mps_ctl_child(void);

/* Steering lookups, loop thread. */

/* mps_config_sel_match(), an IPv4-mapped sa taken as IPv4.  Any thread. */
bool mps_ctl_sel_match(const struct mps_path_sel *sel,
		       const char *ifname,
		       const struct sockaddr *sa);

/* The scheduler for a new connection: the one set by control, else
 * dflt (MPTCPSHIM_SCHEDULER). */
int mps_ctl_sched(int dflt);

/* Backup as control set it for ifname/sa: 1 or 0, or -1 if not set. */
int mps_ctl_backup_for(const char *ifname, const struct sockaddr *sa);

/* Was the local address sa withdrawn (addr del)? */
bool mps_ctl_withdrawn(const struct sockaddr *sa);

/* Was the local address sa added (addr add), whatever MPTCPSHIM_PATHS
 * says? */
bool mps_ctl_added(const struct sockaddr *sa);

/*
 * Provided by loop.c for control.c, loop thread.  Each returns how many
 * subflows or connections it changed.
 */
/* Append the status lines of every live connection that fits (*shown
 * of them); returns how many there are. */
int mps_loop_ctl_status(struct mps_ctl_buf *b, int *shown);
/* Add the core stats of every live connection to out[MPS_MIB_COUNT]. */
void mps_loop_ctl_counters(uint64_t *out);
/* mps_conn_set_backup() on every live subflow sel matches. */
int mps_loop_ctl_backup(const struct mps_path_sel *sel, bool on);
/* Withdraw address sel: close its subflows (never a connection's last
 * live one), and send REMOVE_ADDR where it was announced and no live
 * subflow uses it any more; *announced counts the REMOVE_ADDRs. */
int mps_loop_ctl_withdraw(const struct mps_path_sel *sel, int *announced);
/* Address allowed again: joins are retried now. */
int mps_loop_ctl_allow(void);
/* Switch every connection's scheduler. */
int mps_loop_ctl_sched(int sched);

#endif /* MPS_CONTROL_H */
