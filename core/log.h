/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to a file descriptor. A logger is a value the caller owns
 * and passes down, so two targets in one process can log differently.
 */
#ifndef WF_CORE_LOG_H
#define WF_CORE_LOG_H

#include <stdarg.h>

enum wf_log_level {
	WF_LOG_ERR = 0,
	WF_LOG_WARN,
	WF_LOG_INFO,
	WF_LOG_DEBUG,
};

struct wf_log {
	enum wf_log_level level; /* messages above this level are dropped */
	int fd;			 /* usually STDERR_FILENO */
	const char *ident;	 /* prefix naming the component, e.g. "weftd" */
};

/* Set up @log to write messages at or below @level to @fd, prefixed by @ident. */
void wf_log_init(struct wf_log *log, const char *ident, enum wf_log_level level, int fd);

/* Parse "err", "warn", "info" or "debug" into @out; -EINVAL for anything else. */
int wf_log_level_parse(const char *name, enum wf_log_level *out);

/* Name of @level as wf_log_level_parse() accepts it. */
const char *wf_log_level_name(enum wf_log_level level);

/*
 * Format one line and write it with a single write(2), so lines from
 * different threads never interleave. A NULL @log drops the message.
 */
void wf_log_write(const struct wf_log *log, enum wf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like wf_log_write(), taking a va_list. */
void wf_log_vwrite(const struct wf_log *log, enum wf_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define wf_log_err(log, ...)   wf_log_write((log), WF_LOG_ERR, __VA_ARGS__)
#define wf_log_warn(log, ...)  wf_log_write((log), WF_LOG_WARN, __VA_ARGS__)
#define wf_log_info(log, ...)  wf_log_write((log), WF_LOG_INFO, __VA_ARGS__)
#define wf_log_debug(log, ...) wf_log_write((log), WF_LOG_DEBUG, __VA_ARGS__)

#endif /* WF_CORE_LOG_H */
