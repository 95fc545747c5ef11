/*
 * log.h: the library's diagnostics.
 *
 * Silent unless MPTCPSHIM_LOG_LEVEL asks: then one line per event,
 *
 *   mptcpshim[PID]: LEVEL EVENT key=value key=value ...
 *
 * to MPTCPSHIM_LOG_FILE ("%p" there becomes the pid) or, without a file,
 * to the program's stderr (the user asked for it).  Each line is written
 * with a single write(), so lines of several threads do not interleave.
 * Per-packet anomalies are counted elsewhere, never logged here.
 *
 * Threads: any thread may log.  mps_log_open() runs once at load and
 * mps_log_after_fork() in the child of fork(), before other threads exist.
 */
#ifndef MPS_LOG_H
#define MPS_LOG_H

#include <stdbool.h>

enum mps_log_level {
	MPS_LOG_NONE, /* the default: nothing at all */
	MPS_LOG_ERROR,
	MPS_LOG_WARN,
	MPS_LOG_INFO,
	MPS_LOG_DEBUG,
};

extern enum mps_log_level mps_log_level;

/*
 * Start logging at level to the file named by pattern (NULL or "" for
 * stderr).  Returns 0, or a negative errno when the file cannot be opened;
 * lines then go to stderr.
 */
int mps_log_open(enum mps_log_level level, const char *pattern);

/* In a child of fork(): reopen the file if its name holds the pid. */
void mps_log_after_fork(void);

/* Write one line; event is a short word, fmt the key=value detail. */
void mps_log(enum mps_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool mps_log_on(enum mps_log_level level)
{
	return level <= mps_log_level;
}

#define mps_error(...)                                                         \
	do {                                                                   \
		if (mps_log_on(MPS_LOG_ERROR))                                 \
			mps_log(MPS_LOG_ERROR, __VA_ARGS__);                   \
	} while (0)
#define mps_warn(...)                                                          \
	do {                                                                   \
		if (mps_log_on(MPS_LOG_WARN))                                  \
			mps_log(MPS_LOG_WARN, __VA_ARGS__);                    \
	} while (0)
#define mps_info(...)                                                          \
	do {                                                                   \
		if (mps_log_on(MPS_LOG_INFO))                                  \
			mps_log(MPS_LOG_INFO, __VA_ARGS__);                    \
	} while (0)
#define mps_debug(...)                                                         \
	do {                                                                   \
		if (mps_log_on(MPS_LOG_DEBUG))                                 \
			mps_log(MPS_LOG_DEBUG, __VA_ARGS__);                   \
	} while (0)

#endif /* MPS_LOG_H */
