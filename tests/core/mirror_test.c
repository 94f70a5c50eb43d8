/* SPDX-License-Identifier: MIT */
/*
 * Mirrors under random I/O against the reference model, over ram and file
 * devices; a leg that fails mid-I/O (a real device behind a fault wrapper)
 * and comes back: no acknowledged write lost, resync completes while I/O
 * goes on, and afterwards the legs are byte-identical.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_fault.h"
#include "core/bdev_ram.h"
#include "core/log.h"
#include "core/volume.h"
#include "tests/core/model.h"
#include "tests/core/test_devs.h"
#include "tests/lib/check.h"

#define LEG_SIZE (1u << 20)

static struct wf_log log_;
static uint64_t seed_;

static struct wf_volume_conf conf(const char *name)
{
	return (struct wf_volume_conf){.name = name, .log = &log_, .max_subreqs = 256};
}

/* Every leg holds exactly what the model says the volume holds. */
static void check_legs_match(const struct wf_model *m, struct wf_bdev **legs, int n)
{
	uint64_t size = m->bdev->geo.size;
	uint8_t *buf = wf_test_buf(size);

	for (int i = 0; i < n; i++) {
		WF_CHECK_EQ(wf_bdev_sync_io(legs[i], WF_BDEV_READ, 0, size, buf), 0);
		WF_CHECK(memcmp(buf, m->ref, size) == 0);
	}
	free(buf);
}

/* Every leg holds what @vol reads back as a whole. */
static void check_legs_hold_vol(struct wf_bdev *vol, struct wf_bdev **legs, int n)
{
	struct wf_model m;

	wf_model_init(&m, vol, seed_++);
	check_legs_match(&m, legs, n);
	wf_model_fini(&m);
}

static void check_plain(struct wf_bdev **devs)
{
	struct wf_volume_conf c = conf("mirror3");
	struct wf_bdev *vol;
	struct wf_model m;

	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, devs, 3), 0);
	WF_CHECK_EQ(vol->geo.size, LEG_SIZE);
	wf_model_init(&m, vol, seed_++);
	wf_model_run(&m, 300);
	check_legs_match(&m, devs, 3);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);

	/* One sub-request for three legs: writes reach the legs one after another. */
	c.max_subreqs = 1;
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, devs, 3), 0);
	m.bdev = vol;
	wf_model_run(&m, 50);
	check_legs_match(&m, devs, 3);
	wf_model_fini(&m);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, (struct wf_bdev *[]){devs[0], devs[0]}, 2),
		    -EINVAL);
}

/* Run batches until leg 1 is healthy again; returns how many ran during the resync. */
static int run_until_healthy(struct wf_model *m, struct wf_bdev *vol)
{
	int batches = 0;

	while (wf_volume_mirror_leg_state(vol, 1) != WF_MIRROR_HEALTHY) {
		WF_CHECK(batches++ < 5000);
		wf_model_run(m, 1);
	}
	return batches;
}

/* Leg @leg fails in @mode under random I/O, is degraded, comes back and starts its resync. */
static void leg_fails_and_returns(struct wf_model *m, struct wf_bdev *vol, struct wf_bdev *fault,
				  uint32_t leg, enum wf_fault_mode mode)
{
	wf_bdev_fault_set(fault, mode, 0);
	wf_model_run(m, 20);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, leg), WF_MIRROR_DEGRADED);
	wf_bdev_fault_set(fault, WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, leg), 0);
	wf_model_run(m, 2);
}

static void check_fail_and_return(struct wf_bdev **devs)
{
	struct wf_volume_conf c = conf("mirror2");
	struct wf_bdev *f[2], *vol;
	struct wf_model m;

	WF_CHECK_EQ(wf_bdev_fault_create(&f[0], "fault0", devs[0], 64, &log_), 0);
	WF_CHECK_EQ(wf_bdev_fault_create(&f[1], "fault1", devs[1], 64, &log_), 0);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, f, 2), 0);
	wf_model_init(&m, vol, seed_++);
	wf_model_run(&m, 50);

	/* Leg 1 dies in the middle of a batch; every request must still succeed. */
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 37);
	wf_model_run(&m, 200);
	WF_CHECK(wf_bdev_fault_count(f[1]) > 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 1), WF_MIRROR_DEGRADED);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 0), WF_MIRROR_HEALTHY);

	/* It comes back and is copied while random I/O goes on. */
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, 0), -EINVAL);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, 1), 0);
	WF_CHECK(run_until_healthy(&m, vol) > 1);

	/* It fails again during its resync, comes back, and catches up. */
	leg_fails_and_returns(&m, vol, f[1], 1, WF_FAULT_EIO);
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 11);
	while (wf_volume_mirror_leg_state(vol, 1) != WF_MIRROR_DEGRADED)
		wf_model_run(&m, 1);
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	while (wf_volume_mirror_leg_return(vol, 1) == -EBUSY)
		wf_bdev_poll(vol);
	run_until_healthy(&m, vol);

	/* Reads now rotate over both legs again, and both legs equal the model. */
	wf_model_run(&m, 100);
	check_legs_match(&m, devs, 2);

	/* With every leg gone, writes fail rather than being acknowledged into nothing. */
	wf_bdev_fault_set(f[0], WF_FAULT_EIO, 0);
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 0);
	WF_CHECK(wf_bdev_sync_io(vol, WF_BDEV_WRITE, 0, vol->geo.block_size, m.ref) < 0);
	WF_CHECK(wf_bdev_sync_io(vol, WF_BDEV_WRITE, 0, vol->geo.block_size, m.ref) == -EIO);
	wf_model_fini(&m);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	WF_CHECK_EQ(wf_bdev_close(f[0]), 0);
	WF_CHECK_EQ(wf_bdev_close(f[1]), 0);
}

/* @n ram legs of @bs-byte blocks named @prefix0.., each behind a fault device in @f. */
static void fault_legs_open(const char *prefix, int n, uint32_t bs, struct wf_bdev **devs,
			    struct wf_bdev **f)
{
	char name[16];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		WF_CHECK_EQ(wf_bdev_ram_create(&devs[i], name, LEG_SIZE, bs, &log_), 0);
		WF_CHECK_EQ(wf_bdev_fault_create(&f[i], name, devs[i], 64, &log_), 0);
	}
}

static void fault_legs_close(int n, struct wf_bdev **devs, struct wf_bdev **f)
{
	for (int i = 0; i < n; i++) {
		WF_CHECK_EQ(wf_bdev_close(f[i]), 0);
		WF_CHECK_EQ(wf_bdev_close(devs[i]), 0);
	}
}

/*
 * A write to the chunk being copied, arriving after the copy read its data,
 * must not be overwritten on the returning leg by that older data. Ram legs
 * make the order deterministic: the copy's read takes its data at submit.
 */
static void check_resync_race(void)
{
	struct wf_volume_conf c = conf("race");
	struct wf_bdev *devs[2], *f[2], *vol;
	uint32_t bs = 512;
	uint8_t *w = wf_test_buf(bs), *r = wf_test_buf(bs);

	fault_legs_open("race", 2, bs, devs, f);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, f, 2), 0);
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 0);
	memset(w, 0x5a, bs);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_WRITE, bs, bs, w), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 1), WF_MIRROR_DEGRADED);
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, 1), 0);
	wf_bdev_poll(vol); /* the copy of chunk 0 reads leg 0 */
	memset(w, 0xa5, bs);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_WRITE, bs, bs, w), 0);
	while (wf_volume_mirror_leg_state(vol, 1) != WF_MIRROR_HEALTHY)
		wf_bdev_poll(vol);
	WF_CHECK_EQ(wf_bdev_sync_io(devs[1], WF_BDEV_READ, bs, bs, r), 0);
	WF_CHECK(memcmp(r, w, bs) == 0);
	check_legs_hold_vol(vol, devs, 2);
	free(w);
	free(r);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	fault_legs_close(2, devs, f);
}

/*
 * A leg that is gone (refuses at submit) while another leg resyncs: it is
 * degraded, the copy reads from the remaining healthy leg, nothing acked is lost.
 */
static void check_refuse(void)
{
	struct wf_volume_conf c = conf("refuse");
	struct wf_bdev *devs[3], *f[3], *vol;
	struct wf_model m;

	fault_legs_open("r", 3, 512, devs, f);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, f, 3), 0);
	wf_model_init(&m, vol, seed_++);
	leg_fails_and_returns(&m, vol, f[2], 2, WF_FAULT_REFUSE);
	wf_bdev_fault_set(f[0], WF_FAULT_REFUSE, 0);
	while (wf_volume_mirror_leg_state(vol, 2) != WF_MIRROR_HEALTHY)
		wf_model_run(&m, 1);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 0), WF_MIRROR_DEGRADED);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 1), WF_MIRROR_HEALTHY);
	check_legs_match(&m, &devs[1], 2);
	wf_model_fini(&m);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	fault_legs_close(3, devs, f);
}

/* Polls of @vol until leg @leg is healthy. */
static int polls_until_healthy(struct wf_bdev *vol, uint32_t leg)
{
	int polls = 0;

	while (wf_volume_mirror_leg_state(vol, leg) != WF_MIRROR_HEALTHY) {
		WF_CHECK(polls++ < 10000);
		wf_bdev_poll(vol);
	}
	return polls;
}

/*
 * A returning leg gets only the chunks it missed: one write while it was
 * away costs one chunk's copy, not the volume's (16 chunks here, at least
 * two polls each). What it had stays, so a leg that lost its data behind
 * our back must be replaced instead, which copies everything.
 */
static void check_missed_only(void)
{
	struct wf_volume_conf c = conf("missed");
	struct wf_bdev *devs[2], *f[2], *vol;
	uint32_t bs = 512;
	uint8_t *w = wf_test_buf(bs), *r = wf_test_buf(bs);

	fault_legs_open("missed", 2, bs, devs, f);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, f, 2), 0);

	/* Away with nothing missed (reads fail it): healthy at the first poll, nothing copied. */
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 0);
	for (int i = 0; i < 2; i++)
		WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 0, bs, r), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 1), WF_MIRROR_DEGRADED);
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, 1), 0);
	WF_CHECK_EQ(polls_until_healthy(vol, 1), 1);

	/* One write missed, in the volume's last chunk: that chunk alone is copied. */
	wf_bdev_fault_set(f[1], WF_FAULT_REFUSE, 0);
	memset(w, 0x3c, bs);
	WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_WRITE, LEG_SIZE - bs, bs, w), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 1), WF_MIRROR_DEGRADED);
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, 1), 0);
	WF_CHECK(polls_until_healthy(vol, 1) <= 4);
	WF_CHECK_EQ(wf_bdev_sync_io(devs[1], WF_BDEV_READ, LEG_SIZE - bs, bs, r), 0);
	WF_CHECK(memcmp(r, w, bs) == 0);

	/* Leg 1 is swapped for a blank device behind the mirror's back, then replaced. */
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 0);
	for (int i = 0; i < 2; i++)
		WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 0, bs, r), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_state(vol, 1), WF_MIRROR_DEGRADED);
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_bdev_sync_io(devs[1], WF_BDEV_WRITE_ZEROES, 0, LEG_SIZE, NULL), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_replace(vol, 1), 0);
	WF_CHECK(polls_until_healthy(vol, 1) >= (int)(2 * LEG_SIZE / (64 * 1024)));
	check_legs_hold_vol(vol, devs, 2);
	WF_CHECK_EQ(wf_volume_mirror_leg_replace(vol, 1), -EINVAL); /* not degraded */
	free(w);
	free(r);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	fault_legs_close(2, devs, f);
}

/* What the journal was told, and whether the write it guards had completed by then. */
struct journal_log {
	uint32_t calls, last;
	bool write_done_before;
	const bool *write_done;
};

static int record(void *arg, uint32_t stale)
{
	struct journal_log *j = arg;

	j->calls++;
	j->last = stale;
	j->write_done_before |= *j->write_done;
	return 0;
}

static void note_done(struct wf_bdev_io *io, int status)
{
	*(bool *)io->cb_arg = true;
	WF_CHECK_EQ(status, 0);
}

/*
 * A leg that fails is recorded as stale before the write it missed is
 * acknowledged, and as current once resynchronised; a leg a record calls
 * stale at start (stale bytes on it here) serves no read until it has been
 * copied over in full.
 */
static void check_journal(void)
{
	struct wf_volume_conf c = conf("journal");
	struct wf_bdev *devs[2], *f[2], *vol;
	uint32_t bs = 512;
	uint8_t *w = wf_test_buf(bs), *r = wf_test_buf(bs);
	bool done = false;
	struct journal_log j = {.write_done = &done};
	struct wf_bdev_io io;

	fault_legs_open("journal", 2, bs, devs, f);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, f, 2), 0);
	WF_CHECK_EQ(wf_volume_mirror_set_journal(vol, record, &j), 0);
	WF_CHECK_EQ(wf_volume_mirror_set_journal(devs[0], record, &j), -EINVAL);
	wf_bdev_fault_set(f[1], WF_FAULT_EIO, 0);
	memset(w, 0x77, bs);
	wf_bdev_io_prep(&io, WF_BDEV_WRITE, 0, bs, w, note_done, &done);
	WF_CHECK_EQ(wf_bdev_submit(vol, &io), 0);
	while (!done)
		wf_bdev_poll(vol);
	WF_CHECK_EQ(j.calls, 1u);
	WF_CHECK_EQ(j.last, 2u);
	WF_CHECK(!j.write_done_before);
	wf_bdev_fault_set(f[1], WF_FAULT_OFF, 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_return(vol, 1), 0);
	polls_until_healthy(vol, 1);
	WF_CHECK_EQ(j.calls, 2u);
	WF_CHECK_EQ(j.last, 0u);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);

	/* A restart: leg 0 is current, leg 1 holds other bytes, and the record says so. */
	memset(w, 0xee, bs);
	for (uint64_t off = 0; off < LEG_SIZE; off += bs)
		WF_CHECK_EQ(wf_bdev_sync_io(devs[1], WF_BDEV_WRITE, off, bs, w), 0);
	WF_CHECK_EQ(wf_volume_mirror_create(&vol, &c, f, 2), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_stale(vol, 2), -EINVAL);
	WF_CHECK_EQ(wf_volume_mirror_leg_stale(vol, 1), 0);
	WF_CHECK_EQ(wf_volume_mirror_leg_stale(vol, 0), -EIO); /* the last current leg */
	WF_CHECK_EQ(wf_volume_mirror_leg_replace(vol, 1), 0);
	for (int i = 0; i < 8; i++) {
		WF_CHECK_EQ(wf_bdev_sync_io(vol, WF_BDEV_READ, 0, bs, r), 0);
		WF_CHECK_EQ(r[0], 0x77);
	}
	polls_until_healthy(vol, 1);
	check_legs_hold_vol(vol, devs, 2);
	free(w);
	free(r);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
	fault_legs_close(2, devs, f);
}

static void check_all(struct wf_bdev **devs)
{
	check_plain(devs);
	check_fail_and_return(devs);
	for (int i = 0; i < 3; i++)
		WF_CHECK_EQ(wf_bdev_close(devs[i]), 0);
}

int main(int argc, char **argv)
{
	struct wf_bdev *d[3];
	struct wf_test_dir dir;
	char name[16];

	wf_log_init(&log_, "mirror_test", WF_LOG_ERR, STDERR_FILENO);
	seed_ = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
	printf("seed %llu\n", (unsigned long long)seed_);
	fflush(stdout);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "ram%d", i);
		WF_CHECK_EQ(wf_bdev_ram_create(&d[i], name, LEG_SIZE, 512, &log_), 0);
	}
	check_resync_race();
	check_refuse();
	check_missed_only();
	check_journal();
	check_all(d);
	wf_test_dir_make(&dir);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "file%d", i);
		d[i] = wf_test_file_dev(&dir, name, LEG_SIZE, &log_);
	}
	check_all(d);
	wf_test_dir_remove(&dir);
	return 0;
}
