/* SPDX-License-Identifier: MIT */
/* Real devices for tests: file devices in a private temp dir that is removed afterwards. */
#ifndef WF_TESTS_CORE_TEST_DEVS_H
#define WF_TESTS_CORE_TEST_DEVS_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

struct wf_test_dir {
	char path[64];
};

/* Make a fresh directory under /tmp; exits the test on failure. */
void wf_test_dir_make(struct wf_test_dir *dir);

/* Create a zeroed file of @size bytes in @dir and open it as a file device. */
struct wf_bdev *wf_test_file_dev(struct wf_test_dir *dir, const char *name, uint64_t size,
				 struct wf_log *log);

/* Path of the file behind device @name, for tests that reopen it. */
void wf_test_dir_file(const struct wf_test_dir *dir, const char *name, char *out, int outlen);

/* Remove the files made in @dir and the directory itself. */
void wf_test_dir_remove(struct wf_test_dir *dir);

/* Send @log to a fresh memory file, so a test can check what a call logged; returns the fd. */
int wf_test_log_begin(struct wf_log *log);

/* Point @log back at stderr and fail the test unless what it wrote since @fd began has @what. */
void wf_test_log_expect(struct wf_log *log, int fd, const char *what);

/* A 4096-aligned buffer, as O_DIRECT wants; exits on failure. */
void *wf_test_buf(uint64_t len);

/* xorshift64: reproducible from the seed the test prints. */
static inline uint64_t wf_test_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#endif /* WF_TESTS_CORE_TEST_DEVS_H */
