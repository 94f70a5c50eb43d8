/* SPDX-License-Identifier: MIT */
/*
 * A restarted target finds its volumes: labels written to file devices,
 * everything closed and reopened, volumes assembled again with their data.
 * Missing members, corrupt labels and conflicting definitions keep a volume
 * down with a clear error, never half up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/bdev_file.h"
#include "core/log.h"
#include "core/superblock.h"
#include "core/volume_assemble.h"
#include "core/volume_def.h"
#include "tests/core/model.h"
#include "tests/core/test_devs.h"
#include "tests/lib/check.h"

#define NDEV	 3
#define DEV_SIZE (1u << 20)
#define KIB	 1024u

static struct wf_log log_;

static void id_of(uint8_t *id, int dev)
{
	memset(id, 0, 16);
	snprintf((char *)id, 16, "weft-dev-%d", dev);
}

static struct wf_volume_def def(const char *name, enum wf_volume_kind kind, uint64_t chunk, int n,
				const int *devs, const uint64_t *phys, uint64_t len)
{
	struct wf_volume_def d = {.kind = kind, .chunk = chunk, .n = (uint32_t)n};

	snprintf(d.name, sizeof(d.name), "%s", name);
	for (int k = 0; k < n; k++) {
		id_of(d.members[k].dev, devs[k]);
		d.members[k].phys = phys[k];
		d.members[k].len = len;
	}
	return d;
}

/* cat: dev0+dev1 end to end; str: dev1 x dev2 in 8 KiB chunks; mir: dev0 = dev2. */
static void write_labels(struct wf_bdev **d)
{
	const uint64_t base = WF_SB_RESERVED;
	struct wf_volume_def cat =
	    def("cat", WF_VOLUME_LINEAR, 0, 2, (int[]){0, 1}, (uint64_t[]){base, base}, 256 * KIB);
	struct wf_volume_def str = def("str", WF_VOLUME_STRIPE, 8 * KIB, 2, (int[]){1, 2},
				       (uint64_t[]){base + 256 * KIB, base}, 256 * KIB);
	struct wf_volume_def mir = def("mir", WF_VOLUME_MIRROR, 0, 2, (int[]){0, 2},
				       (uint64_t[]){base + 256 * KIB, base + 256 * KIB}, 256 * KIB);
	struct wf_device_label label[NDEV] = {
	    {.ndefs = 2, .defs = {cat, mir}},
	    {.ndefs = 2, .defs = {cat, str}},
	    {.ndefs = 2, .defs = {str, mir}},
	};

	for (int i = 0; i < NDEV; i++) {
		id_of(label[i].id, i);
		WF_CHECK_EQ(wf_label_write(d[i], &label[i]), 0);
	}
}

static void check_codec(void)
{
	static struct wf_device_label in, out;
	static struct wf_sb sb;

	id_of(in.id, 7);
	in.ndefs = 1;
	in.defs[0] = def("v", WF_VOLUME_STRIPE, 4096, 3, (int[]){1, 2, 3},
			 (uint64_t[]){8192, 16384, 1ull << 40}, 12345);
	WF_CHECK_EQ(wf_label_encode(&in, &sb), 0);
	WF_CHECK_EQ(wf_label_decode(&sb, &out), 0);
	WF_CHECK(!memcmp(out.id, in.id, 16));
	WF_CHECK_EQ(out.defs[0].members[2].phys, 1ull << 40);
	WF_CHECK_EQ(out.defs[0].chunk, 4096);
	sb.len--;
	WF_CHECK_EQ(wf_label_decode(&sb, &out), -EBADMSG);
	sb.len++;
	sb.payload[0] ^= 1;
	WF_CHECK_EQ(wf_label_decode(&sb, &out), -EBADMSG);
	in.defs[0].n = WF_VOLUME_DEF_MAX_MEMBERS + 1;
	WF_CHECK_EQ(wf_label_encode(&in, &sb), -EINVAL);
	in.defs[0].n = 1;
	in.defs[0].kind = WF_VOLUME_KIND_COUNT;
	WF_CHECK_EQ(wf_label_encode(&in, &sb), -EINVAL);
}

static void open_devs(struct wf_test_dir *dir, struct wf_bdev **d)
{
	char path[128], name[16];

	for (int i = 0; i < NDEV; i++) {
		snprintf(name, sizeof(name), "dev%d", i);
		wf_test_dir_file(dir, name, path, sizeof(path));
		WF_CHECK_EQ(wf_bdev_file_create(&d[i], name, path, 32, &log_), 0);
	}
}

static void close_devs(struct wf_bdev **d, int n)
{
	for (int i = 0; i < n; i++)
		WF_CHECK_EQ(wf_bdev_close(d[i]), 0);
}

/* Assemble with the log captured; check the count and that the log names @what. */
static int assemble_logged(struct wf_volume_set *set, struct wf_bdev **d, int n, const char *what)
{
	int fd = wf_test_log_begin(&log_);
	int rc = wf_volume_assemble(set, d, (uint32_t)n, 64, &log_);

	wf_test_log_expect(&log_, fd, what);
	return rc;
}

static void check_restart(uint64_t seed)
{
	static const char *const names[] = {"cat", "str", "mir"};
	struct wf_model models[3];
	struct wf_volume_set set;
	struct wf_test_dir dir;
	struct wf_bdev *d[NDEV];
	char name[16];

	wf_test_dir_make(&dir);
	for (int i = 0; i < NDEV; i++) {
		snprintf(name, sizeof(name), "dev%d", i);
		d[i] = wf_test_file_dev(&dir, name, DEV_SIZE, &log_);
	}
	write_labels(d);
	WF_CHECK_EQ(wf_volume_assemble(&set, d, NDEV, 64, &log_), 3);
	for (int v = 0; v < 3; v++) {
		struct wf_bdev *vol = wf_volume_set_find(&set, names[v]);

		WF_CHECK(vol);
		wf_model_init(&models[v], vol, seed + (uint64_t)v);
		wf_model_run(&models[v], 100);
	}
	WF_CHECK_EQ(wf_volume_set_close(&set), 0);
	close_devs(d, NDEV);

	/* The restart: new device handles, volumes found from the labels alone. */
	open_devs(&dir, d);
	WF_CHECK_EQ(wf_volume_assemble(&set, d, NDEV, 64, &log_), 3);
	for (int v = 0; v < 3; v++) {
		models[v].bdev = wf_volume_set_find(&set, names[v]);
		WF_CHECK(models[v].bdev);
		wf_model_verify(&models[v]);
		wf_model_fini(&models[v]);
	}
	WF_CHECK_EQ(wf_volume_set_close(&set), 0);

	/* dev2 absent: only cat, which does not need it, comes up. */
	WF_CHECK_EQ(assemble_logged(&set, d, 2, "member 1's device is missing"), 1);
	WF_CHECK(wf_volume_set_find(&set, "cat"));
	WF_CHECK_EQ(wf_volume_set_close(&set), 0);

	/* dev2's label corrupt in both copies: its volumes stay down, with the reason. */
	uint8_t *junk = wf_test_buf(WF_SB_RESERVED);

	memset(junk, 0x77, WF_SB_RESERVED);
	WF_CHECK_EQ(wf_bdev_sync_io(d[2], WF_BDEV_WRITE, 0, WF_SB_RESERVED, junk), 0);
	WF_CHECK_EQ(assemble_logged(&set, d, NDEV, "dev2: unusable label"), 1);
	WF_CHECK_EQ(wf_volume_set_close(&set), 0);
	free(junk);

	/* dev1 says cat is something else: cat stays down rather than pick one. */
	struct wf_device_label other = {.ndefs = 1};

	id_of(other.id, 1);
	other.defs[0] =
	    def("cat", WF_VOLUME_LINEAR, 0, 1, (int[]){1}, (uint64_t[]){WF_SB_RESERVED}, 64 * KIB);
	WF_CHECK_EQ(wf_label_write(d[1], &other), 0);
	WF_CHECK_EQ(assemble_logged(&set, d, 2, "volume cat: devices disagree"), 0);
	WF_CHECK_EQ(wf_volume_set_close(&set), 0);

	close_devs(d, NDEV);
	wf_test_dir_remove(&dir);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);

	wf_log_init(&log_, "assemble_test", WF_LOG_WARN, STDERR_FILENO);
	printf("seed %llu\n", (unsigned long long)seed);
	fflush(stdout);
	check_codec();
	check_restart(seed);
	return 0;
}
