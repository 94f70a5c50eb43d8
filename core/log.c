// SPDX-License-Identifier: MIT
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Long enough for any sane message; longer ones are cut, never split. */
#define WF_LOG_LINE_MAX 1024

static const char *const level_names[] = {
    [WF_LOG_ERR] = "err",
    [WF_LOG_WARN] = "warn",
    [WF_LOG_INFO] = "info",
    [WF_LOG_DEBUG] = "debug",
};

void wf_log_init(struct wf_log *log, const char *ident, enum wf_log_level level, int fd)
{
	log->level = level;
	log->fd = fd;
	log->ident = ident;
}

int wf_log_level_parse(const char *name, enum wf_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum wf_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *wf_log_level_name(enum wf_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		/* Nowhere left to report a failing log sink; drop the line. */
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void wf_log_vwrite(const struct wf_log *log, enum wf_log_level level, const char *fmt, va_list ap)
{
	char line[WF_LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	if (!log || level > log->level)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
		     log->ident ? log->ident : "weft", wf_log_level_name(level));
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	if (len > 0 && line[len - 1] != '\n') {
		if (len == sizeof(line) - 1)
			len--;
		line[len++] = '\n';
	}
	write_all(log->fd, line, len);
}

void wf_log_write(const struct wf_log *log, enum wf_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wf_log_vwrite(log, level, fmt, ap);
	va_end(ap);
}
