/* SPDX-License-Identifier: MIT */
#include "core/bdev_fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bdev.h"
#include "core/log.h"
#include "core/pool.h"

struct fault_dev {
	struct wf_bdev bdev;
	struct wf_bdev *inner;
	struct wf_pool subreqs;
	enum wf_fault_mode armed; /* mode to fail in once @countdown reaches 0 */
	enum wf_fault_mode mode;
	uint64_t countdown;
	uint64_t failed;
	char name[];
};

static void fault_done(struct wf_bdev_io *sub, int status)
{
	struct wf_bdev_io *parent = sub->cb_arg;
	struct fault_dev *dev = parent->bdev->ctx;

	wf_pool_put(&dev->subreqs, sub);
	if (dev->mode != WF_FAULT_OFF) {
		status = -EIO;
		dev->failed++;
	}
	wf_bdev_complete(parent, status);
}

static int fault_submit(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	struct fault_dev *dev = bdev->ctx;
	struct wf_bdev_io *sub;
	int rc;

	if (dev->armed && dev->countdown == 0) {
		dev->mode = dev->armed;
		dev->armed = WF_FAULT_OFF;
		wf_log_warn(bdev->log, "%s: injected failure starts", dev->name);
	} else if (dev->armed) {
		dev->countdown--;
	}
	if (dev->mode != WF_FAULT_OFF) {
		dev->failed++;
		if (dev->mode == WF_FAULT_REFUSE)
			return -ENODEV;
		wf_bdev_complete(io, -EIO);
		return 0;
	}
	sub = wf_pool_get(&dev->subreqs);
	if (!sub)
		return -EAGAIN;
	wf_bdev_io_prep(sub, io->op, io->dev_offset, io->len, io->buf, fault_done, io);
	rc = wf_bdev_submit(dev->inner, sub);
	if (rc)
		wf_pool_put(&dev->subreqs, sub);
	return rc;
}

static void fault_poll(struct wf_bdev *bdev)
{
	struct fault_dev *dev = bdev->ctx;

	wf_bdev_poll(dev->inner);
}

static void fault_geometry(struct wf_bdev *bdev, struct wf_bdev_geometry *geo)
{
	struct fault_dev *dev = bdev->ctx;

	*geo = dev->inner->geo;
}

static void fault_close(struct wf_bdev *bdev)
{
	struct fault_dev *dev = bdev->ctx;

	wf_pool_fini(&dev->subreqs);
	free(dev);
}

static const struct wf_bdev_ops fault_ops = {
    .submit =
	{
	    [WF_BDEV_READ] = fault_submit,
	    [WF_BDEV_WRITE] = fault_submit,
	    [WF_BDEV_FLUSH] = fault_submit,
	    [WF_BDEV_WRITE_ZEROES] = fault_submit,
	    [WF_BDEV_DISCARD] = fault_submit,
	},
    .poll = fault_poll,
    .geometry = fault_geometry,
    .close = fault_close,
};

int wf_bdev_fault_create(struct wf_bdev **out, const char *name, struct wf_bdev *inner,
			 uint32_t depth, struct wf_log *log)
{
	struct fault_dev *dev = calloc(1, sizeof(*dev) + strlen(name) + 1);
	int rc;

	if (!dev)
		return -ENOMEM;
	strcpy(dev->name, name);
	dev->inner = inner;
	rc = wf_pool_init(&dev->subreqs, sizeof(struct wf_bdev_io), depth);
	if (rc)
		goto err_free;
	wf_bdev_init(&dev->bdev, &fault_ops, dev, dev->name, log);
	*out = &dev->bdev;
	return 0;

err_free:
	free(dev);
	return rc;
}

void wf_bdev_fault_set(struct wf_bdev *bdev, enum wf_fault_mode mode, uint64_t after)
{
	struct fault_dev *dev = bdev->ctx;

	dev->mode = after ? WF_FAULT_OFF : mode;
	dev->armed = after ? mode : WF_FAULT_OFF;
	dev->countdown = after;
	if (mode == WF_FAULT_OFF)
		wf_log_warn(bdev->log, "%s: injected failure ends", dev->name);
}

uint64_t wf_bdev_fault_count(const struct wf_bdev *bdev)
{
	const struct fault_dev *dev = bdev->ctx;

	return dev->failed;
}
