/*
 * log.c: one-line diagnostics, silent by default (see log.h).
 *
 * The file is opened O_APPEND, so that the processes of a prefork
 * server sharing one file still write whole lines.  Without a file the
 * line goes to descriptor 2 as it is at the time of the event.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum mps_log_level mps_log_level = MPS_LOG_NONE;

static int log_fd = -1;	       /* -1: stderr */
static char log_pattern[4096]; /* as configured, "%p" unexpanded */

static const char *const level_names[] = {
	[MPS_LOG_NONE] = "none",
	[MPS_LOG_ERROR] = "error",
	[MPS_LOG_WARN] = "warn",
	[MPS_LOG_INFO] = "info",
	[MPS_LOG_DEBUG] = "debug",
};

/* Expand "%p" to the pid and "%%" to "%"; returns -ENAMETOOLONG. */
static int log_expand(char *out, size_t size, const char *pattern)
{
	size_t n = 0;
	const char *p;

	for (p = pattern; *p; p++) {
		int w;

		if (p[0] == '%' && (p[1] == 'p' || p[1] == '%')) {
			if (p[1] == 'p')
				w = snprintf(out + n,
					     size - n,
					     "%ld",
					     (long)getpid());
			else
				w = snprintf(out + n, size - n, "%%");
			p++;
		} else {
			w = snprintf(out + n, size - n, "%c", *p);
		}
		if (w < 0 || (size_t)w >= size - n)
			return -ENAMETOOLONG;
		n += (size_t)w;
	}
	return 0;
}

static int log_reopen(void)
{
	char path[sizeof(log_pattern) + 32];
	int fd, err;

	err = log_expand(path, sizeof(path), log_pattern);
	if (err < 0)
		return err;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int mps_log_open(enum mps_log_level level, const char *pattern)
{
	int err;

	mps_log_level = level;
	if (level == MPS_LOG_NONE || !pattern || !*pattern)
		return 0;
	if (strlen(pattern) >= sizeof(log_pattern))
		return -ENAMETOOLONG;
	strcpy(log_pattern, pattern);
	err = log_reopen();
	if (err < 0)
		log_pattern[0] = '\0';
	return err;
}

void mps_log_after_fork(void)
{
	if (log_pattern[0] && strstr(log_pattern, "%p"))
		log_reopen();
}

void mps_log(enum mps_log_level level, const char *event, const char *fmt, ...)
{
	char line[1024];
	int saved = errno;
	size_t len;
	va_list ap;
	int n;

	n = snprintf(line,
		     sizeof(line),
		     "mptcpshim[%ld]: %s %s ",
		     (long)getpid(),
		     level_names[level],
		     event);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	len = (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2; /* cut long lines, keep the newline */
	line[len++] = '\n';
	if (write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, len) < 0)
		goto out; /* nowhere left to report it */
out:
	errno = saved;
}
