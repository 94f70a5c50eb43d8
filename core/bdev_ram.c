/* SPDX-License-Identifier: MIT */
#include "core/bdev_ram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/bdev.h"
#include "core/log.h"

#define RAM_HUGE_SIZE (2ull << 20)

struct ram_dev {
	struct wf_bdev bdev;
	struct wf_bdev_geometry geo;
	uint8_t *mem;
	size_t map_len; /* 0: the memory is another device's (a share) */
	char name[];
};

static struct ram_dev *ram_of(struct wf_bdev *bdev)
{
	return bdev->ctx;
}

static int ram_read(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	memcpy(io->buf, ram_of(bdev)->mem + io->dev_offset, io->len);
	wf_bdev_complete(io, 0);
	return 0;
}

static int ram_write(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	memcpy(ram_of(bdev)->mem + io->dev_offset, io->buf, io->len);
	wf_bdev_complete(io, 0);
	return 0;
}

static int ram_zero(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	memset(ram_of(bdev)->mem + io->dev_offset, 0, io->len);
	wf_bdev_complete(io, 0);
	return 0;
}

/* Memory is as durable as it gets here: nothing to flush. */
static int ram_flush(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	(void)bdev;
	wf_bdev_complete(io, 0);
	return 0;
}

static void ram_geometry(struct wf_bdev *bdev, struct wf_bdev_geometry *geo)
{
	*geo = ram_of(bdev)->geo;
}

static void ram_close(struct wf_bdev *bdev)
{
	struct ram_dev *dev = ram_of(bdev);

	if (dev->map_len)
		munmap(dev->mem, dev->map_len);
	free(dev);
}

/* Discard reads back as zeroes, like a thin device, so the reference model stays simple. */
static const struct wf_bdev_ops ram_ops = {
    .submit =
	{
	    [WF_BDEV_READ] = ram_read,
	    [WF_BDEV_WRITE] = ram_write,
	    [WF_BDEV_FLUSH] = ram_flush,
	    [WF_BDEV_WRITE_ZEROES] = ram_zero,
	    [WF_BDEV_DISCARD] = ram_zero,
	},
    .geometry = ram_geometry,
    .close = ram_close,
};

/* Populated at once: a page fault per first touch would land on the I/O path, and vary it. */
static int ram_map(struct ram_dev *dev, uint64_t size, struct wf_log *log)
{
	size_t huge_len = (size + RAM_HUGE_SIZE - 1) & ~(RAM_HUGE_SIZE - 1);
	void *p;

	p = mmap(NULL, huge_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (p != MAP_FAILED) {
		dev->mem = p;
		dev->map_len = huge_len;
		return 0;
	}
	wf_log_info(log, "%s: no hugepages (%s), using normal pages", dev->name, strerror(errno));
	p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	dev->mem = p;
	dev->map_len = size ? size : 1;
	return 0;
}

int wf_bdev_ram_create(struct wf_bdev **out, const char *name, uint64_t size, uint32_t block_size,
		       struct wf_log *log)
{
	struct ram_dev *dev;
	int rc;

	if (!wf_bdev_geometry_valid(size, block_size))
		return -EINVAL;
	dev = calloc(1, sizeof(*dev) + strlen(name) + 1);
	if (!dev)
		return -ENOMEM;
	strcpy(dev->name, name);
	rc = ram_map(dev, size, log);
	if (rc)
		goto err_free;
	dev->geo = (struct wf_bdev_geometry){.block_size = block_size, .size = size};
	wf_bdev_init(&dev->bdev, &ram_ops, dev, dev->name, log);
	*out = &dev->bdev;
	return 0;

err_free:
	free(dev);
	return rc;
}

int wf_bdev_ram_share(struct wf_bdev **out, struct wf_bdev *src, struct wf_log *log)
{
	struct ram_dev *from, *dev;

	if (src->ops != &ram_ops)
		return -EINVAL;
	from = ram_of(src);
	dev = calloc(1, sizeof(*dev) + strlen(from->name) + 1);
	if (!dev)
		return -ENOMEM;
	strcpy(dev->name, from->name);
	dev->mem = from->mem;
	dev->geo = from->geo;
	wf_bdev_init(&dev->bdev, &ram_ops, dev, dev->name, log);
	*out = &dev->bdev;
	return 0;
}
