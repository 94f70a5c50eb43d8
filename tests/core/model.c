/* SPDX-License-Identifier: MIT */
#include "tests/core/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bdev.h"
#include "tests/core/test_devs.h"
#include "tests/lib/check.h"

#define MODEL_SLOTS	 8
#define MODEL_MAX_BLOCKS 24

struct slot {
	struct wf_model *m;
	struct wf_bdev_io io;
	uint8_t *buf;
	int done;
};

void wf_model_init(struct wf_model *m, struct wf_bdev *bdev, uint64_t seed)
{
	*m = (struct wf_model){.bdev = bdev, .seed = seed ? seed : 1};
	m->ref = wf_test_buf(bdev->geo.size);
	WF_CHECK_EQ(wf_bdev_sync_io(bdev, WF_BDEV_READ, 0, bdev->geo.size, m->ref), 0);
}

void wf_model_fini(struct wf_model *m)
{
	free(m->ref);
	m->ref = NULL;
}

void wf_model_verify(const struct wf_model *m)
{
	uint64_t size = m->bdev->geo.size;
	uint8_t *buf = wf_test_buf(size);

	WF_CHECK_EQ(wf_bdev_sync_io(m->bdev, WF_BDEV_READ, 0, size, buf), 0);
	for (uint64_t i = 0; i < size; i++)
		if (buf[i] != m->ref[i]) {
			fprintf(stderr, "%s: byte %llu is %u, model says %u (seed %llu)\n",
				m->bdev->name, (unsigned long long)i, buf[i], m->ref[i],
				(unsigned long long)m->seed);
			exit(1);
		}
	free(buf);
}

/* Apply a finished request to the model, or check a read against it. */
static void slot_done(struct wf_bdev_io *io, int status)
{
	struct slot *s = io->cb_arg;
	struct wf_model *m = s->m;

	WF_CHECK_EQ(status, 0);
	s->done = 1;
	if (io->op == WF_BDEV_WRITE) {
		memcpy(m->ref + io->offset, s->buf, io->len);
		m->writes++;
	} else if (io->op == WF_BDEV_WRITE_ZEROES) {
		memset(m->ref + io->offset, 0, io->len);
	} else if (io->op == WF_BDEV_READ && memcmp(m->ref + io->offset, s->buf, io->len)) {
		fprintf(stderr, "%s: read at %llu+%llu differs from the model (seed %llu)\n",
			m->bdev->name, (unsigned long long)io->offset, (unsigned long long)io->len,
			(unsigned long long)m->seed);
		exit(1);
	}
}

static int overlaps(const struct slot *slots, int n, uint64_t off, uint64_t len)
{
	for (int i = 0; i < n; i++)
		if (off < slots[i].io.offset + slots[i].io.len && slots[i].io.offset < off + len)
			return 1;
	return 0;
}

static void pick(struct wf_model *m, struct slot *slots, int i)
{
	uint64_t bs = m->bdev->geo.block_size, blocks = m->bdev->geo.size / bs;
	uint64_t r = wf_test_rand(&m->seed), len, off;
	int tries = 0;
	enum wf_bdev_op op = r % 100 < 50   ? WF_BDEV_WRITE
			     : r % 100 < 88 ? WF_BDEV_READ
			     : r % 100 < 97 ? WF_BDEV_WRITE_ZEROES
					    : WF_BDEV_FLUSH;

	do {
		len = 1 + wf_test_rand(&m->seed) % MODEL_MAX_BLOCKS;
		len = len > blocks ? blocks : len;
		off = wf_test_rand(&m->seed) % (blocks - len + 1);
	} while (overlaps(slots, i, off * bs, len * bs) && ++tries < 50);
	/* No free range left in this batch: a flush needs none. */
	if (tries == 50)
		op = WF_BDEV_FLUSH;
	if (op == WF_BDEV_FLUSH)
		len = off = 0;
	for (uint64_t b = 0; op == WF_BDEV_WRITE && b < len * bs; b++)
		slots[i].buf[b] = (uint8_t)(r >> (b % 7) ^ b);
	wf_bdev_io_prep(&slots[i].io, op, off * bs, len * bs, slots[i].buf, slot_done, &slots[i]);
	slots[i].done = 0;
}

static void run_batch(struct wf_model *m, struct slot *slots, int n)
{
	for (int i = 0; i < n; i++) {
		int rc;

		pick(m, slots, i);
		while ((rc = wf_bdev_submit(m->bdev, &slots[i].io)) == -EAGAIN)
			wf_bdev_poll(m->bdev);
		WF_CHECK_EQ(rc, 0);
	}
	for (int i = 0; i < n; i++)
		while (!slots[i].done)
			wf_bdev_poll(m->bdev);
}

void wf_model_run(struct wf_model *m, unsigned batches)
{
	struct slot slots[MODEL_SLOTS];
	uint64_t bs = m->bdev->geo.block_size;

	for (int i = 0; i < MODEL_SLOTS; i++)
		slots[i] = (struct slot){.m = m, .buf = wf_test_buf(MODEL_MAX_BLOCKS * bs)};
	while (batches--)
		run_batch(m, slots, 1 + (int)(wf_test_rand(&m->seed) % MODEL_SLOTS));
	for (int i = 0; i < MODEL_SLOTS; i++)
		free(slots[i].buf);
	wf_model_verify(m);
}
