/* SPDX-License-Identifier: MIT */
#include "core/bdev_null.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bdev.h"

struct null_dev {
	struct wf_bdev bdev;
	struct wf_bdev_geometry geo;
	char name[];
};

static int null_submit(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	wf_bdev_complete(io, 0);
	(void)bdev;
	return 0;
}

static void null_geometry(struct wf_bdev *bdev, struct wf_bdev_geometry *geo)
{
	struct null_dev *dev = bdev->ctx;

	*geo = dev->geo;
}

static void null_close(struct wf_bdev *bdev)
{
	free(bdev->ctx);
}

static const struct wf_bdev_ops null_ops = {
    .submit =
	{
	    [WF_BDEV_READ] = null_submit,
	    [WF_BDEV_WRITE] = null_submit,
	    [WF_BDEV_FLUSH] = null_submit,
	    [WF_BDEV_WRITE_ZEROES] = null_submit,
	    [WF_BDEV_DISCARD] = null_submit,
	},
    .geometry = null_geometry,
    .close = null_close,
};

int wf_bdev_null_create(struct wf_bdev **out, const char *name, uint64_t size, uint32_t block_size,
			struct wf_log *log)
{
	struct null_dev *dev;

	if (!wf_bdev_geometry_valid(size, block_size))
		return -EINVAL;
	dev = calloc(1, sizeof(*dev) + strlen(name) + 1);
	if (!dev)
		return -ENOMEM;
	strcpy(dev->name, name);
	dev->geo = (struct wf_bdev_geometry){.block_size = block_size, .size = size};
	wf_bdev_init(&dev->bdev, &null_ops, dev, dev->name, log);
	*out = &dev->bdev;
	return 0;
}
