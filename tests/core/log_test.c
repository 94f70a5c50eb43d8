// SPDX-License-Identifier: MIT
#include "core/log.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static size_t drain(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len;
}

static void test_levels_filter(void)
{
	struct wf_log log;
	char buf[4096];
	int p[2];

	WF_CHECK(pipe2(p, O_NONBLOCK) == 0);
	wf_log_init(&log, "unit", WF_LOG_INFO, p[1]);
	wf_log_err(&log, "disk %d failed", 3);
	wf_log_debug(&log, "hidden");
	wf_log_info(&log, "shown\n");
	drain(p[0], buf, sizeof(buf));
	WF_CHECK_STR_CONTAINS(buf, "unit err: disk 3 failed\n");
	WF_CHECK_STR_CONTAINS(buf, "unit info: shown\n");
	WF_CHECK(strstr(buf, "hidden") == NULL);
	/* "shown\n" must not gain a second newline. */
	WF_CHECK(strstr(buf, "shown\n\n") == NULL);
	close(p[0]);
	close(p[1]);
}

static void test_long_line_is_cut_not_split(void)
{
	char big[3000], buf[8192];
	struct wf_log log;
	size_t len, lines = 0;
	int p[2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	WF_CHECK(pipe2(p, O_NONBLOCK) == 0);
	wf_log_init(&log, "unit", WF_LOG_DEBUG, p[1]);
	wf_log_warn(&log, "%s", big);
	len = drain(p[0], buf, sizeof(buf));
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	WF_CHECK_EQ(lines, 1);
	WF_CHECK(buf[len - 1] == '\n');
	WF_CHECK(len < sizeof(big));
	close(p[0]);
	close(p[1]);
}

static void test_parse(void)
{
	enum wf_log_level lvl;

	WF_CHECK_EQ(wf_log_level_parse("debug", &lvl), 0);
	WF_CHECK_EQ(lvl, WF_LOG_DEBUG);
	WF_CHECK_EQ(wf_log_level_parse("warn", &lvl), 0);
	WF_CHECK_EQ(lvl, WF_LOG_WARN);
	WF_CHECK_EQ(wf_log_level_parse("loud", &lvl), -EINVAL);
	WF_CHECK(strcmp(wf_log_level_name(WF_LOG_ERR), "err") == 0);
	WF_CHECK(strcmp(wf_log_level_name((enum wf_log_level)42), "?") == 0);
	/* A NULL logger is a valid sink that drops everything. */
	wf_log_err(NULL, "dropped");
}

int main(void)
{
	test_levels_filter();
	test_long_line_is_cut_not_split();
	test_parse();
	return 0;
}
