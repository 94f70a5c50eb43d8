/* SPDX-License-Identifier: MIT */
/*
 * Superblocks: good copies are found, corrupt, torn and misplaced copies are
 * reported and never used, and a writer killed at random points 200 times
 * always leaves a device whose reopened superblock is consistent.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_file.h"
#include "core/bdev_ram.h"
#include "core/crc32c.h"
#include "core/log.h"
#include "core/superblock.h"
#include "tests/core/test_devs.h"
#include "tests/lib/check.h"

#define DEV_SIZE (64u * 1024)
#define KILLS	 200

static struct wf_log log_;

/* What generation @gen's payload must be, so a reader can tell a mixed-up copy. */
static void payload_for(struct wf_sb *sb, uint64_t gen)
{
	sb->len = 16 + (uint32_t)(gen * 7 % 3000);
	for (uint32_t k = 0; k < sb->len; k++)
		sb->payload[k] = (uint8_t)(gen * 131 + k);
}

static void check_payload(const struct wf_sb *sb)
{
	static struct wf_sb want;

	payload_for(&want, sb->generation);
	WF_CHECK_EQ(sb->len, want.len);
	WF_CHECK(memcmp(sb->payload, want.payload, sb->len) == 0);
}

static void raw(struct wf_bdev *dev, enum wf_bdev_op op, uint64_t off, uint8_t *buf, uint64_t len)
{
	WF_CHECK_EQ(wf_bdev_sync_io(dev, op, off, len, buf), 0);
}

/* Read the superblock with the log captured, and check the log names @what. */
static int read_logged(struct wf_bdev *dev, struct wf_sb *sb, const char *what)
{
	int fd = wf_test_log_begin(&log_);
	int rc = wf_sb_read(dev, sb);

	wf_test_log_expect(&log_, fd, what);
	return rc;
}

static void check_copies(void)
{
	struct wf_bdev *dev, *scratch;
	static struct wf_sb sb, got;
	uint8_t *slot = wf_test_buf(WF_SB_SLOT_SIZE), *torn = wf_test_buf(WF_SB_SLOT_SIZE);

	WF_CHECK_EQ(wf_crc32c(0, "123456789", 9), 0xe3069283u);
	WF_CHECK_EQ(wf_bdev_ram_create(&dev, "sb", DEV_SIZE, 512, &log_), 0);
	WF_CHECK_EQ(wf_sb_read(dev, &got), -ENOENT);
	for (int i = 0; i < 3; i++) {
		payload_for(&sb, sb.generation + 1);
		WF_CHECK_EQ(wf_sb_write(dev, &sb), 0);
		WF_CHECK_EQ(wf_sb_read(dev, &got), 0);
		WF_CHECK_EQ(got.generation, i + 1);
		check_payload(&got);
	}

	/* Newest copy (3, slot 1) corrupted: reported, and the older one is used. */
	raw(dev, WF_BDEV_READ, WF_SB_SLOT_SIZE, slot, WF_SB_SLOT_SIZE);
	slot[100] ^= 1;
	raw(dev, WF_BDEV_WRITE, WF_SB_SLOT_SIZE, slot, WF_SB_SLOT_SIZE);
	WF_CHECK_EQ(read_logged(dev, &got, "copy 1 (bytes 4096..8191): checksum mismatch"), 0);
	WF_CHECK_EQ(got.generation, 2);
	check_payload(&got);

	/* Both bad: a clear error, never a guess. */
	raw(dev, WF_BDEV_READ, 0, slot, WF_SB_SLOT_SIZE);
	slot[0] ^= 1;
	raw(dev, WF_BDEV_WRITE, 0, slot, WF_SB_SLOT_SIZE);
	WF_CHECK_EQ(read_logged(dev, &got, "no good superblock copy left"), -EBADMSG);

	/* A good copy in the wrong slot is not trusted either. */
	sb.generation = 0;
	payload_for(&sb, 1);
	WF_CHECK_EQ(wf_sb_write(dev, &sb), 0);
	raw(dev, WF_BDEV_READ, WF_SB_SLOT_SIZE, slot, WF_SB_SLOT_SIZE);
	raw(dev, WF_BDEV_WRITE, 0, slot, WF_SB_SLOT_SIZE);
	WF_CHECK_EQ(read_logged(dev, &got, "copy 0 (bytes 0..4095): generation in the wrong slot"),
		    0);
	WF_CHECK_EQ(got.generation, 1);

	/* Torn: the first half of generation 2 landed over an old copy in slot 0. */
	WF_CHECK_EQ(wf_bdev_ram_create(&scratch, "scratch", DEV_SIZE, 512, &log_), 0);
	sb.generation = 1;
	payload_for(&sb, 2);
	WF_CHECK_EQ(wf_sb_write(scratch, &sb), 0);
	raw(scratch, WF_BDEV_READ, 0, torn, WF_SB_SLOT_SIZE);
	memcpy(slot, torn, WF_SB_SLOT_SIZE / 2);
	memset(slot + WF_SB_SLOT_SIZE / 2, 0xee, WF_SB_SLOT_SIZE / 2); /* what was there before */
	raw(dev, WF_BDEV_WRITE, 0, slot, WF_SB_SLOT_SIZE);
	WF_CHECK_EQ(read_logged(dev, &got, "copy 0 (bytes 0..4095): checksum mismatch"), 0);
	WF_CHECK_EQ(got.generation, 1);
	check_payload(&got);

	sb.len = WF_SB_PAYLOAD_MAX + 1;
	WF_CHECK_EQ(wf_sb_write(dev, &sb), -EMSGSIZE);
	WF_CHECK_EQ(wf_bdev_close(scratch), 0);
	WF_CHECK_EQ(wf_bdev_close(dev), 0);
	WF_CHECK_EQ(wf_bdev_ram_create(&dev, "tiny", 4096, 512, &log_), 0);
	WF_CHECK_EQ(wf_sb_read(dev, &got), -EINVAL);
	WF_CHECK_EQ(wf_bdev_close(dev), 0);
	free(slot);
	free(torn);
}

/* The victim: rewrite the superblock as fast as it can until killed. */
static void writer(const char *path)
{
	static struct wf_sb sb;
	struct wf_bdev *dev;

	if (wf_bdev_file_create(&dev, "victim", path, 4, &log_) || wf_sb_read(dev, &sb))
		_exit(2);
	for (;;) {
		payload_for(&sb, sb.generation + 1);
		if (wf_sb_write(dev, &sb))
			_exit(3);
	}
}

static uint64_t reopen_check(const char *path, uint64_t last)
{
	static struct wf_sb sb;
	struct wf_bdev *dev;

	WF_CHECK_EQ(wf_bdev_file_create(&dev, "reopen", path, 4, &log_), 0);
	WF_CHECK_EQ(wf_sb_read(dev, &sb), 0);
	WF_CHECK(sb.generation >= last);
	check_payload(&sb);
	WF_CHECK_EQ(wf_bdev_close(dev), 0);
	return sb.generation;
}

static void check_kills(void)
{
	static struct wf_sb sb;
	struct wf_test_dir dir;
	struct wf_bdev *dev;
	uint64_t gen, seed = (uint64_t)time(NULL) | 1;
	char path[128];
	int status;

	wf_test_dir_make(&dir);
	dev = wf_test_file_dev(&dir, "sbdev", DEV_SIZE, &log_);
	payload_for(&sb, 1);
	WF_CHECK_EQ(wf_sb_write(dev, &sb), 0);
	WF_CHECK_EQ(wf_bdev_close(dev), 0);
	wf_test_dir_file(&dir, "sbdev", path, sizeof(path));
	gen = 1;
	for (int i = 0; i < KILLS; i++) {
		pid_t pid = fork();

		WF_CHECK(pid >= 0);
		if (pid == 0)
			writer(path);
		usleep((useconds_t)(wf_test_rand(&seed) % 4000));
		WF_CHECK_EQ(kill(pid, SIGKILL), 0);
		WF_CHECK_EQ(waitpid(pid, &status, 0), pid);
		/* Killed, not failed: a writer that exited had an error of its own. */
		WF_CHECK(WIFSIGNALED(status));
		gen = reopen_check(path, gen);
	}
	printf("%d kills, superblock generation %llu reached\n", KILLS, (unsigned long long)gen);
	WF_CHECK(gen > 1); /* the writer did write between kills */
	wf_test_dir_remove(&dir);
}

int main(void)
{
	wf_log_init(&log_, "superblock_test", WF_LOG_WARN, STDERR_FILENO);
	check_copies();
	check_kills();
	return 0;
}
