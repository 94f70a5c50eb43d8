/* SPDX-License-Identifier: MIT */
/*
 * Every device against the same contract: data round-trips, nothing
 * completes inside submit, bad ranges are refused, zero length completes once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_file.h"
#include "core/bdev_null.h"
#include "core/bdev_ram.h"
#include "core/log.h"
#include "core/pool.h"
#include "tests/core/test_devs.h"
#include "tests/lib/check.h"

#define DEV_SIZE (1u << 20)

struct counter {
	int calls;
	int status;
};

static void count_cb(struct wf_bdev_io *io, int status)
{
	struct counter *c = io->cb_arg;

	c->calls++;
	c->status = status;
}

/* Completion is deferred: nothing runs inside submit, exactly one callback from poll. */
static void check_deferred(struct wf_bdev *bdev)
{
	uint32_t bs = bdev->geo.block_size;
	struct counter c = {0};
	struct wf_bdev_io io;
	void *buf = wf_test_buf(bs);

	wf_bdev_io_prep(&io, WF_BDEV_WRITE, 0, bs, buf, count_cb, &c);
	memset(buf, 0, bs);
	WF_CHECK_EQ(wf_bdev_submit(bdev, &io), 0);
	WF_CHECK_EQ(c.calls, 0);
	WF_CHECK_EQ(wf_bdev_close(bdev), -EBUSY);
	while (!c.calls)
		wf_bdev_poll(bdev);
	WF_CHECK_EQ(c.calls, 1);
	WF_CHECK_EQ(c.status, 0);
	WF_CHECK_EQ(wf_bdev_poll(bdev), 0);
	WF_CHECK_EQ(c.calls, 1);

	/* Zero length is accepted and completes once. */
	wf_bdev_io_prep(&io, WF_BDEV_READ, bs, 0, buf, count_cb, &c);
	WF_CHECK_EQ(wf_bdev_submit(bdev, &io), 0);
	WF_CHECK_EQ(c.calls, 1);
	WF_CHECK_EQ(wf_bdev_poll(bdev), 1);
	WF_CHECK_EQ(c.calls, 2);
	free(buf);
}

static void check_ranges(struct wf_bdev *bdev)
{
	uint64_t size = bdev->geo.size, bs = bdev->geo.block_size;
	void *buf = wf_test_buf(2 * bs);

	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, size - bs, bs, buf), 0);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, size, bs, buf), -ERANGE);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, size - bs, 2 * bs, buf), -ERANGE);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_WRITE, UINT64_MAX - bs + 1, bs, buf), -ERANGE);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, 1, bs, buf), -EINVAL);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, 0, bs + 1, buf), -EINVAL);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_FLUSH, 0, 0, NULL), 0);
	free(buf);
}

/* Write a pattern over the whole device, read it back, then zero a middle range. */
static void check_data(struct wf_bdev *bdev)
{
	uint64_t size = bdev->geo.size, bs = bdev->geo.block_size;
	uint8_t *w = wf_test_buf(size), *r = wf_test_buf(size);

	for (uint64_t i = 0; i < size; i++)
		w[i] = (uint8_t)(i * 7 + i / 4096);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_WRITE, 0, size, w), 0);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, 0, size, r), 0);
	WF_CHECK(memcmp(w, r, size) == 0);

	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_WRITE_ZEROES, 4 * bs, 3 * bs, NULL), 0);
	memset(w + 4 * bs, 0, 3 * bs);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, 0, size, r), 0);
	WF_CHECK(memcmp(w, r, size) == 0);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_DISCARD, 8 * bs, 2 * bs, NULL), 0);
	free(w);
	free(r);
}

/* Many requests in flight at once, more than a file device's queue: -EAGAIN, never loss. */
static void check_queue_full(struct wf_bdev *bdev)
{
	struct wf_bdev_io ios[64];
	struct counter c = {0};
	uint32_t bs = bdev->geo.block_size;
	void *buf = wf_test_buf(bs);
	int accepted = 0;

	for (int i = 0; i < 64; i++) {
		wf_bdev_io_prep(&ios[i], WF_BDEV_READ, (uint64_t)i * bs, bs, buf, count_cb, &c);
		int rc = wf_bdev_submit(bdev, &ios[i]);

		WF_CHECK(rc == 0 || rc == -EAGAIN);
		accepted += rc == 0;
	}
	while (c.calls < accepted)
		wf_bdev_poll(bdev);
	WF_CHECK_EQ(c.calls, accepted);
	WF_CHECK_EQ(c.status, 0);
	free(buf);
}

/* A refused request says what was wrong with it, at debug level (a remote host can cause it). */
static void check_range_message(struct wf_bdev *bdev, struct wf_log *log)
{
	uint8_t buf[512];
	int fd;

	log->level = WF_LOG_DEBUG;
	fd = wf_test_log_begin(log);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, DEV_SIZE, 512, buf), -ERANGE);
	wf_test_log_expect(log, fd, "ram0: read at 1048576+512 beyond size 1048576");
	fd = wf_test_log_begin(log);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_WRITE, 512, 100, buf), -EINVAL);
	wf_test_log_expect(log, fd, "ram0: write at 512+100 not aligned to 512");
	log->level = WF_LOG_INFO;
}

static void check_device(struct wf_bdev *bdev, bool stores)
{
	check_deferred(bdev);
	check_ranges(bdev);
	if (stores)
		check_data(bdev);
	check_queue_full(bdev);
	WF_CHECK_EQ(wf_bdev_close(bdev), 0);
}

static void check_pool(void)
{
	struct wf_pool pool;
	void *a, *b;

	WF_CHECK_EQ(wf_pool_init(&pool, sizeof(struct wf_bdev_io), 2), 0);
	a = wf_pool_get(&pool);
	b = wf_pool_get(&pool);
	WF_CHECK(a && b && a != b);
	WF_CHECK(wf_pool_get(&pool) == NULL);
	WF_CHECK_EQ(wf_pool_avail(&pool), 0);
	wf_pool_put(&pool, a);
	WF_CHECK(wf_pool_get(&pool) == a);
	wf_pool_put(&pool, a);
	wf_pool_put(&pool, b);
	WF_CHECK_EQ(wf_pool_avail(&pool), 2);
	wf_pool_fini(&pool);
}

static void check_file(struct wf_log *log)
{
	struct wf_test_dir dir;
	struct wf_bdev *bdev;
	char path[128];

	wf_test_dir_make(&dir);
	bdev = wf_test_file_dev(&dir, "file0", DEV_SIZE, log);
	WF_CHECK_EQ(bdev->geo.size, DEV_SIZE);
	check_device(bdev, true);
	WF_CHECK_EQ(wf_bdev_file_create(&bdev, "chr", "/dev/null", 16, log), -ENOTBLK);
	wf_test_dir_remove(&dir);
	wf_test_dir_file(&dir, "file0", path, sizeof(path));
	WF_CHECK_EQ(wf_bdev_file_create(&bdev, "missing", path, 16, log), -ENOENT);
}

/*
 * bdev_test PATH BLOCK_SIZE: an existing file or block device through the
 * file device, which must pick BLOCK_SIZE (4096 or the device's sectors with
 * O_DIRECT, 512 buffered); bdev_guest.sh runs this in the guest, whose
 * kernel and file systems differ from this host's.
 */
static int check_path(const char *path, uint32_t bs, struct wf_log *log)
{
	struct wf_bdev *bdev;

	WF_CHECK_EQ(wf_bdev_file_create(&bdev, "given", path, 32, log), 0);
	WF_CHECK_EQ(bdev->geo.block_size, bs);
	WF_CHECK(bdev->geo.size >= DEV_SIZE);
	check_device(bdev, true);
	return 0;
}

int main(int argc, char **argv)
{
	struct wf_bdev *bdev;
	struct wf_log log;

	wf_log_init(&log, "bdev_test", WF_LOG_INFO, STDERR_FILENO);
	if (argc == 3)
		return check_path(argv[1], (uint32_t)strtoul(argv[2], NULL, 0), &log);
	check_pool();
	WF_CHECK_EQ(wf_bdev_null_create(&bdev, "null0", DEV_SIZE, 512, &log), 0);
	check_device(bdev, false);
	WF_CHECK_EQ(wf_bdev_ram_create(&bdev, "ram0", DEV_SIZE, 512, &log), 0);
	check_range_message(bdev, &log);
	check_device(bdev, true);
	WF_CHECK_EQ(wf_bdev_ram_create(&bdev, "bad", 1000, 512, &log), -EINVAL);
	check_file(&log);
	return 0;
}
