/*
 * status.h: the mptcpshim command's control subcommands (status.c),
 * which talk to the control sockets of shimmed processes (ctlproto.h).
 *
 * Each takes the arguments after its own name and returns the command's
 * exit status: 0 done, 1 a process could not be asked or refused the
 * request, 2 usage.
 */
#ifndef MPS_STATUS_H
#define MPS_STATUS_H

/* mptcpshim status [PID] [--json] [--watch [SECONDS]] */
int mps_cmd_status(int argc, char **argv);

/* mptcpshim counters [PID] [--json] */
int mps_cmd_counters(int argc, char **argv);

/*
 * mptcpshim backup PID IFNAME|ADDR on|off
 * mptcpshim addr PID add|del ADDR
 * mptcpshim scheduler PID earliest|roundrobin|redundant
 * verb is the subcommand's name.
 */
int mps_cmd_steer(const char *verb, int argc, char **argv);

#endif /* MPS_STATUS_H */
