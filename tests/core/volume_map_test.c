/* SPDX-License-Identifier: MIT */
/*
 * Where bytes land: mapping edge cases checked by reading the backing
 * devices directly, so a wrong offset cannot hide behind a symmetric bug.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_fault.h"
#include "core/bdev_ram.h"
#include "core/extent_map.h"
#include "core/log.h"
#include "core/volume.h"
#include "tests/lib/check.h"

#define BS 512u

static struct wf_log log_;

static void check_extent_map(void)
{
	struct wf_extent_map map;

	WF_CHECK_EQ(wf_extent_map_init(&map, 3), 0);
	WF_CHECK_EQ(wf_extent_map_find(&map, 0), -ERANGE);
	WF_CHECK_EQ(wf_extent_map_append(&map, NULL, 0, 0), -EINVAL);
	WF_CHECK_EQ(wf_extent_map_append(&map, NULL, 0, 10), 0);
	WF_CHECK_EQ(wf_extent_map_find(&map, 0), 0);
	WF_CHECK_EQ(wf_extent_map_find(&map, 9), 0);
	WF_CHECK_EQ(wf_extent_map_find(&map, 10), -ERANGE);
	WF_CHECK_EQ(wf_extent_map_append(&map, NULL, 100, 1), 0);
	WF_CHECK_EQ(wf_extent_map_append(&map, NULL, 7, 5), 0);
	WF_CHECK_EQ(wf_extent_map_append(&map, NULL, 7, 5), -ENOSPC);
	WF_CHECK_EQ(wf_extent_map_find(&map, 10), 1);
	WF_CHECK_EQ(wf_extent_map_find(&map, 11), 2);
	WF_CHECK_EQ(wf_extent_map_find(&map, 15), 2);
	WF_CHECK_EQ(wf_extent_map_find(&map, 16), -ERANGE);
	WF_CHECK_EQ(wf_extent_map_find(&map, UINT64_MAX), -ERANGE);
	WF_CHECK_EQ(map.size, 16);
	WF_CHECK_EQ(wf_extent_map_append(&map, NULL, 0, UINT64_MAX), -EINVAL);
	wf_extent_map_fini(&map);
}

static struct wf_bdev *ram(const char *name, uint64_t blocks)
{
	struct wf_bdev *b;

	WF_CHECK_EQ(wf_bdev_ram_create(&b, name, blocks * BS, BS, &log_), 0);
	return b;
}

/* Fill @len bytes with a pattern that differs per call, so stale data shows. */
static void fill(uint8_t *buf, uint64_t len, unsigned seed)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + i / BS);
}

/* Write @len bytes at @off through @vol and check they sit at @phys of @dev. */
static void check_lands(struct wf_bdev *vol, uint64_t off, uint64_t len, struct wf_bdev *dev,
			uint64_t phys, uint64_t buf_off, unsigned seed)
{
	uint8_t *w = malloc(len), *r = malloc(len);

	fill(w, len, seed);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_WRITE, off, len, w), 0);
	WF_CHECK_EQ(wf_bdev_sync_io(dev, WF_BDEV_READ, phys, BS, r), 0);
	WF_CHECK(memcmp(r, w + buf_off, BS) == 0);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, off, len, r), 0);
	WF_CHECK(memcmp(w, r, len) == 0);
	free(w);
	free(r);
}

struct counter {
	int calls, status;
};

static void count_cb(struct wf_bdev_io *io, int status)
{
	struct counter *c = io->cb_arg;

	c->calls++;
	c->status = status;
}

/* Three devices of odd sizes (5, 7 and 3 blocks) concatenated: 15 blocks. */
static void check_concat(void)
{
	struct wf_bdev *d[3] = {ram("a", 5), ram("b", 7), ram("c", 3)}, *vol;
	struct wf_volume_conf conf = {.name = "cat", .log = &log_, .max_subreqs = 2};
	struct counter c = {0};
	struct wf_bdev_io io;
	uint8_t buf[15 * BS];

	WF_CHECK_EQ(wf_volume_concat_create(&vol, &conf, d, 3), 0);
	WF_CHECK_EQ(vol->geo.size, 15 * BS);
	check_lands(vol, 0, BS, d[0], 0, 0, 1);		      /* first sector */
	check_lands(vol, 14 * BS, BS, d[2], 2 * BS, 0, 2);    /* last sector */
	check_lands(vol, 4 * BS, 2 * BS, d[1], 0, BS, 3);     /* over 2 extents */
	check_lands(vol, 4 * BS, 2 * BS, d[0], 4 * BS, 0, 4); /* same span, other side */
	check_lands(vol, 11 * BS, 2 * BS, d[2], 0, BS, 5);    /* b|c boundary */

	/* Three extents with sub-requests for one at a time: the pieces go in waves. */
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	conf.max_subreqs = 1;
	WF_CHECK_EQ(wf_volume_concat_create(&vol, &conf, d, 3), 0);
	check_lands(vol, 4 * BS, 9 * BS, d[2], 0, 8 * BS, 6); /* over 3 extents */
	check_lands(vol, 0, 15 * BS, d[1], 6 * BS, 11 * BS, 7);

	/* Zero length completes once; out of range and misaligned are refused at submit. */
	wf_bdev_io_prep(&io, WF_BDEV_READ, 15 * BS, 0, buf, count_cb, &c);
	WF_CHECK_EQ(wf_bdev_submit(vol, &io), 0);
	WF_CHECK_EQ(wf_bdev_poll(vol) + wf_bdev_poll(vol), 1);
	WF_CHECK_EQ(c.calls, 1);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 15 * BS, BS, buf), -ERANGE);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 14 * BS, 2 * BS, buf), -ERANGE);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, BS / 2, BS, buf), -EINVAL);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_FLUSH, 0, 0, NULL), 0);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	for (int i = 0; i < 3; i++)
		WF_CHECK_EQ(wf_bdev_close(d[i]), 0);
}

/* Two volumes carved from one device do not overlap, and stack under a concat. */
static void check_carve_and_stack(void)
{
	struct wf_bdev *dev = ram("dev", 16), *v[2], *top;
	struct wf_volume_conf conf = {.name = "v0", .log = &log_, .max_subreqs = 4};
	uint8_t buf[BS];

	WF_CHECK_EQ(wf_volume_carve_create(&v[0], &conf, dev, 0, 8 * BS), 0);
	conf.name = "v1";
	WF_CHECK_EQ(wf_volume_carve_create(&v[1], &conf, dev, 8 * BS, 8 * BS), 0);
	WF_CHECK_EQ(wf_volume_carve_create(&top, &conf, dev, 9 * BS, 8 * BS), -EINVAL);
	WF_CHECK_EQ(wf_volume_carve_create(&top, &conf, dev, 100, 8 * BS), -EINVAL);
	check_lands(v[1], 0, BS, dev, 8 * BS, 0, 1);
	check_lands(v[0], 7 * BS, BS, dev, 7 * BS, 0, 2);
	WF_CHECK_EQ(wf_bdev_sync_io(v[0], WF_BDEV_READ, 8 * BS, BS, buf), -ERANGE);

	/* Reversed order on top: the top volume's first half is v1, i.e. dev's second half. */
	conf.name = "top";
	WF_CHECK_EQ(wf_volume_concat_create(&top, &conf, (struct wf_bdev *[]){v[1], v[0]}, 2), 0);
	check_lands(top, 0, BS, dev, 8 * BS, 0, 3);
	check_lands(top, 7 * BS, 2 * BS, dev, 0, BS, 4);
	WF_CHECK_EQ(wf_bdev_close(top), 0);
	WF_CHECK_EQ(wf_bdev_close(v[0]), 0);
	WF_CHECK_EQ(wf_bdev_close(v[1]), 0);
	WF_CHECK_EQ(wf_bdev_close(dev), 0);
}

/* Chunk k on device k % 3 at row k / 3; devices of unequal size are cut to whole chunks. */
static void check_stripe(void)
{
	struct wf_bdev *d[3] = {ram("s0", 9), ram("s1", 8), ram("s2", 11)}, *vol;
	struct wf_volume_conf conf = {.name = "stripe", .log = &log_, .max_subreqs = 8};

	WF_CHECK_EQ(wf_volume_stripe_create(&vol, &conf, d, 3, 2 * BS), 0);
	WF_CHECK_EQ(vol->geo.size, 3 * 4 * 2 * BS);
	check_lands(vol, 0, BS, d[0], 0, 0, 1);
	check_lands(vol, 2 * BS, BS, d[1], 0, 0, 2);
	check_lands(vol, 7 * BS, 2 * BS, d[0], 3 * BS, 0, 3);  /* chunk 3 -> s0 row 1 */
	check_lands(vol, 7 * BS, 2 * BS, d[1], 2 * BS, BS, 4); /* chunk 4 -> s1 row 1 */
	check_lands(vol, 23 * BS, BS, d[2], 7 * BS, 0, 4);     /* last sector */
	check_lands(vol, BS, 5 * BS, d[2], 0, 3 * BS, 5);      /* 3 chunks */
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_WRITE, 24 * BS, BS, (uint8_t[BS]){0}), -ERANGE);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	WF_CHECK_EQ(wf_volume_stripe_create(&vol, &conf, (struct wf_bdev *[]){d[0], d[0]}, 2, BS),
		    -EINVAL);
	WF_CHECK_EQ(wf_volume_stripe_create(&vol, &conf, d, 3, BS + 1), -EINVAL);
	for (int i = 0; i < 3; i++)
		WF_CHECK_EQ(wf_bdev_close(d[i]), 0);
}

/* A piece that fails makes the whole request fail, once, with that error. */
static void check_first_error(void)
{
	struct wf_bdev *d[3] = {ram("e0", 4), ram("e1", 4), ram("e2", 4)}, *f, *vol;
	struct wf_volume_conf conf = {.name = "err", .log = &log_, .max_subreqs = 8};
	struct counter c = {0};
	struct wf_bdev_io io;
	uint8_t buf[12 * BS] = {0};

	WF_CHECK_EQ(wf_bdev_fault_create(&f, "f1", d[1], 8, &log_), 0);
	WF_CHECK_EQ(wf_volume_concat_create(&vol, &conf, (struct wf_bdev *[]){d[0], f, d[2]}, 3),
		    0);
	wf_bdev_fault_set(f, WF_FAULT_EIO, 0);
	wf_bdev_io_prep(&io, WF_BDEV_WRITE, 2 * BS, 8 * BS, buf, count_cb, &c);
	WF_CHECK_EQ(wf_bdev_submit(vol, &io), 0);
	for (int i = 0; i < 5; i++)
		wf_bdev_poll(vol);
	WF_CHECK_EQ(c.calls, 1);
	WF_CHECK_EQ(c.status, -EIO);
	WF_CHECK(wf_bdev_fault_count(f) > 0);
	/* The pieces that do not touch the failed device still work. */
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 0, 4 * BS, buf), 0);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 0, 5 * BS, buf), -EIO);

	/* A device that refuses at submit: refused outright if it holds the first piece... */
	wf_bdev_fault_set(f, WF_FAULT_REFUSE, 0);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 4 * BS, 2 * BS, buf), -ENODEV);
	/* ...else the pieces already sent finish, and the request completes once with it. */
	c.calls = 0;
	wf_bdev_io_prep(&io, WF_BDEV_WRITE, 2 * BS, 8 * BS, buf, count_cb, &c);
	WF_CHECK_EQ(wf_bdev_submit(vol, &io), 0);
	for (int i = 0; i < 5; i++)
		wf_bdev_poll(vol);
	WF_CHECK_EQ(c.calls, 1);
	WF_CHECK_EQ(c.status, -ENODEV);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	WF_CHECK_EQ(wf_bdev_close(f), 0);
	for (int i = 0; i < 3; i++)
		WF_CHECK_EQ(wf_bdev_close(d[i]), 0);
}

int main(void)
{
	wf_log_init(&log_, "volume_map_test", WF_LOG_WARN, STDERR_FILENO);
	check_extent_map();
	check_concat();
	check_carve_and_stack();
	check_stripe();
	check_first_error();
	return 0;
}
