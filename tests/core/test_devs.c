/* SPDX-License-Identifier: MIT */
#include "tests/core/test_devs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_file.h"
#include "core/log.h"
#include "tests/lib/check.h"

void wf_test_dir_make(struct wf_test_dir *dir)
{
	snprintf(dir->path, sizeof(dir->path), "/tmp/weft-test-XXXXXX");
	WF_CHECK(mkdtemp(dir->path));
}

void wf_test_dir_file(const struct wf_test_dir *dir, const char *name, char *out, int outlen)
{
	snprintf(out, (size_t)outlen, "%s/%s", dir->path, name);
}

struct wf_bdev *wf_test_file_dev(struct wf_test_dir *dir, const char *name, uint64_t size,
				 struct wf_log *log)
{
	struct wf_bdev *bdev;
	char path[128];
	int fd;

	wf_test_dir_file(dir, name, path, sizeof(path));
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	WF_CHECK(fd >= 0);
	WF_CHECK_EQ(ftruncate(fd, (off_t)size), 0);
	close(fd);
	WF_CHECK_EQ(wf_bdev_file_create(&bdev, name, path, 32, log), 0);
	return bdev;
}

void wf_test_dir_remove(struct wf_test_dir *dir)
{
	DIR *d = opendir(dir->path);
	struct dirent *e;
	char path[400];

	WF_CHECK(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir->path, e->d_name);
		WF_CHECK_EQ(unlink(path), 0);
	}
	closedir(d);
	WF_CHECK_EQ(rmdir(dir->path), 0);
}

int wf_test_log_begin(struct wf_log *log)
{
	int fd = memfd_create("log", 0);

	WF_CHECK(fd >= 0);
	log->fd = fd;
	return fd;
}

void wf_test_log_expect(struct wf_log *log, int fd, const char *what)
{
	char text[4096] = {0};

	log->fd = STDERR_FILENO;
	WF_CHECK(pread(fd, text, sizeof(text) - 1, 0) >= 0);
	close(fd);
	WF_CHECK_STR_CONTAINS(text, what);
}

void *wf_test_buf(uint64_t len)
{
	void *p = NULL;

	WF_CHECK(posix_memalign(&p, 4096, len ? len : 1) == 0);
	return p;
}
