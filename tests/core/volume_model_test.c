/* SPDX-License-Identifier: MIT */
/*
 * Every volume type under random I/O against a reference model, over ram
 * devices and over io_uring file devices in a temp dir.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_ram.h"
#include "core/log.h"
#include "core/volume.h"
#include "tests/core/model.h"
#include "tests/core/test_devs.h"
#include "tests/lib/check.h"

#define NDEV	3
#define BATCHES 300

static struct wf_log log_;
static uint64_t seed_;

/* Odd device sizes in blocks, so no layout lines up by accident. */
static const uint64_t dev_blocks[NDEV] = {72, 88, 56};

static struct wf_volume_conf conf(const char *name)
{
	return (struct wf_volume_conf){.name = name, .log = &log_, .max_subreqs = 256};
}

static void model_check(struct wf_bdev *vol)
{
	struct wf_model m;

	wf_model_init(&m, vol, seed_++);
	wf_model_run(&m, BATCHES);
	wf_model_fini(&m);
}

static void check_concat(struct wf_bdev **d)
{
	struct wf_bdev *vol;
	struct wf_volume_conf c = conf("concat");

	WF_CHECK_EQ(wf_volume_concat_create(&vol, &c, d, NDEV), 0);
	model_check(vol);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
}

static void check_stripe(struct wf_bdev **d)
{
	struct wf_bdev *vol;
	struct wf_volume_conf c = conf("stripe");

	WF_CHECK_EQ(wf_volume_stripe_create(&vol, &c, d, NDEV, 2 * d[0]->geo.block_size), 0);
	model_check(vol);
	WF_CHECK_EQ(wf_bdev_close(vol), 0);
}

/* Two carved volumes on one device: the second's I/O leaves the first's data alone. */
static void check_carve(struct wf_bdev **d)
{
	uint64_t half = d[0]->geo.size / 2 / d[0]->geo.block_size * d[0]->geo.block_size;
	struct wf_volume_conf c0 = conf("carve0"), c1 = conf("carve1");
	struct wf_bdev *v0, *v1;
	struct wf_model m0, m1;

	WF_CHECK_EQ(wf_volume_carve_create(&v0, &c0, d[0], 0, half), 0);
	WF_CHECK_EQ(wf_volume_carve_create(&v1, &c1, d[0], half, half), 0);
	wf_model_init(&m0, v0, seed_++);
	wf_model_init(&m1, v1, seed_++);
	wf_model_run(&m0, BATCHES);
	wf_model_run(&m1, BATCHES);
	wf_model_verify(&m0);
	wf_model_fini(&m0);
	wf_model_fini(&m1);
	WF_CHECK_EQ(wf_bdev_close(v0), 0);
	WF_CHECK_EQ(wf_bdev_close(v1), 0);
}

/* Volumes stack: a concat of a carved piece and a stripe. */
static void check_stack(struct wf_bdev **d)
{
	struct wf_volume_conf cc = conf("piece"), cs = conf("stripe"), ct = conf("top");
	struct wf_bdev *piece, *stripe, *top;

	WF_CHECK_EQ(wf_volume_carve_create(&piece, &cc, d[0], d[0]->geo.block_size * 8,
					   d[0]->geo.block_size * 40),
		    0);
	WF_CHECK_EQ(wf_volume_stripe_create(&stripe, &cs, &d[1], 2, d[1]->geo.block_size), 0);
	WF_CHECK_EQ(wf_volume_concat_create(&top, &ct, (struct wf_bdev *[]){stripe, piece}, 2), 0);
	model_check(top);
	WF_CHECK_EQ(wf_bdev_close(top), 0);
	WF_CHECK_EQ(wf_bdev_close(stripe), 0);
	WF_CHECK_EQ(wf_bdev_close(piece), 0);
}

static void check_all(struct wf_bdev **d)
{
	check_concat(d);
	check_stripe(d);
	check_carve(d);
	check_stack(d);
	for (int i = 0; i < NDEV; i++)
		WF_CHECK_EQ(wf_bdev_close(d[i]), 0);
}

int main(int argc, char **argv)
{
	struct wf_bdev *d[NDEV];
	struct wf_test_dir dir;
	char name[16];

	wf_log_init(&log_, "volume_model_test", WF_LOG_WARN, STDERR_FILENO);
	seed_ = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
	printf("seed %llu\n", (unsigned long long)seed_);
	fflush(stdout);

	for (int i = 0; i < NDEV; i++) {
		snprintf(name, sizeof(name), "ram%d", i);
		WF_CHECK_EQ(wf_bdev_ram_create(&d[i], name, dev_blocks[i] * 512, 512, &log_), 0);
	}
	check_all(d);

	wf_test_dir_make(&dir);
	for (int i = 0; i < NDEV; i++) {
		snprintf(name, sizeof(name), "file%d", i);
		d[i] = wf_test_file_dev(&dir, name, dev_blocks[i] * 4096, &log_);
	}
	check_all(d);
	wf_test_dir_remove(&dir);
	return 0;
}
