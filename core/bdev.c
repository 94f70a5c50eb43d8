/* SPDX-License-Identifier: MIT */
/* The generic half of every backing device: range checks, deferred completion. */
#include "core/bdev.h"

#include <errno.h>
#include <stddef.h>

#include "core/log.h"

void wf_bdev_init(struct wf_bdev *bdev, const struct wf_bdev_ops *ops, void *ctx, const char *name,
		  struct wf_log *log)
{
	*bdev = (struct wf_bdev){.ops = ops, .ctx = ctx, .name = name, .log = log};
	ops->geometry(bdev, &bdev->geo);
}

bool wf_bdev_geometry_valid(uint64_t size, uint32_t block_size)
{
	return block_size && !(block_size & (block_size - 1)) && !(size & (block_size - 1));
}

const char *wf_bdev_op_name(enum wf_bdev_op op)
{
	static const char *const names[WF_BDEV_OP_COUNT] = {
	    [WF_BDEV_READ] = "read",	   [WF_BDEV_WRITE] = "write",
	    [WF_BDEV_FLUSH] = "flush",	   [WF_BDEV_WRITE_ZEROES] = "write-zeroes",
	    [WF_BDEV_DISCARD] = "discard",
	};

	return (unsigned)op < WF_BDEV_OP_COUNT ? names[op] : "invalid";
}

/*
 * A bad request usually comes from a remote host: say exactly what was wrong,
 * at debug level so a misbehaving host cannot flood the log.
 */
static int check_range(const struct wf_bdev *bdev, const struct wf_bdev_io *io)
{
	uint64_t bs = bdev->geo.block_size;

	if (io->op == WF_BDEV_FLUSH)
		return 0;
	/* Block sizes are powers of two; a mask is far cheaper than two divisions per I/O. */
	if ((io->dev_offset | io->len) & (bs - 1)) {
		wf_log_debug(bdev->log, "%s: %s at %llu+%llu not aligned to %llu", bdev->name,
			     wf_bdev_op_name(io->op), (unsigned long long)io->dev_offset,
			     (unsigned long long)io->len, (unsigned long long)bs);
		return -EINVAL;
	}
	if (io->dev_offset > bdev->geo.size || io->len > bdev->geo.size - io->dev_offset) {
		wf_log_debug(bdev->log, "%s: %s at %llu+%llu beyond size %llu", bdev->name,
			     wf_bdev_op_name(io->op), (unsigned long long)io->dev_offset,
			     (unsigned long long)io->len, (unsigned long long)bdev->geo.size);
		return -ERANGE;
	}
	return 0;
}

/* Submission below the caller's own: forwarding must not clear what it saved. */
static int bdev_submit(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	wf_bdev_submit_fn fn;
	int rc;

	if ((unsigned)io->op >= WF_BDEV_OP_COUNT)
		return -EINVAL;
	fn = bdev->ops->submit[io->op];
	if (!fn)
		return -EOPNOTSUPP;
	rc = check_range(bdev, io);
	if (rc)
		return rc;
	io->bdev = bdev;
	io->next = NULL;
	/* Zero length is a valid no-op: it still completes once, through poll. */
	if (io->len == 0 && io->op != WF_BDEV_FLUSH) {
		bdev->inflight++;
		wf_bdev_complete(io, 0);
		return 0;
	}
	rc = fn(bdev, io);
	if (rc == 0) {
		bdev->inflight++;
	} else if (rc == WF_BDEV_FORWARDED) {
		/*
		 * The device below counts it too. The one it was submitted to
		 * counts it, so its owner sees it in flight (weftd polls while
		 * inflight is set); the layers between do not, since no
		 * completion passes back through them.
		 */
		if (io->fwd_bdev == bdev)
			bdev->inflight++;
		rc = 0;
	}
	return rc;
}

int wf_bdev_submit(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	io->dev_offset = io->offset;
	io->fwd_bdev = NULL;
	return bdev_submit(bdev, io);
}

int wf_bdev_forward(struct wf_bdev *below, struct wf_bdev_io *io, uint64_t offset)
{
	struct wf_bdev *from = io->bdev;
	uint64_t above = io->dev_offset;
	bool outermost = !io->fwd_bdev;
	int rc;

	if (outermost)
		io->fwd_bdev = from;
	io->dev_offset = offset;
	rc = bdev_submit(below, io);
	if (rc) {
		io->dev_offset = above;
		io->bdev = from;
		if (outermost)
			io->fwd_bdev = NULL;
		return rc;
	}
	return WF_BDEV_FORWARDED;
}

/* Undo forwarding: the callback sees the device it submitted to, which counted it. */
static inline void unforward(struct wf_bdev_io *io)
{
	if (io->fwd_bdev) {
		io->bdev = io->fwd_bdev;
		io->bdev->inflight--;
		io->fwd_bdev = NULL;
	}
}

void wf_bdev_complete(struct wf_bdev_io *io, int status)
{
	io->status = status;
	wf_bdev_io_queue_push(&io->bdev->done, io);
}

void wf_bdev_complete_now(struct wf_bdev_io *io, int status)
{
	io->bdev->inflight--;
	unforward(io);
	io->cb(io, status);
}

unsigned wf_bdev_poll(struct wf_bdev *bdev)
{
	struct wf_bdev_io *io;
	unsigned n = 0;

	if (bdev->ops->poll)
		bdev->ops->poll(bdev);
	/* Callbacks may submit again and queue new completions: those wait for the next poll. */
	io = wf_bdev_io_queue_take(&bdev->done);
	while (io) {
		struct wf_bdev_io *next = io->next;

		bdev->inflight--;
		unforward(io);
		io->cb(io, io->status);
		io = next;
		n++;
	}
	return n;
}

int wf_bdev_close(struct wf_bdev *bdev)
{
	if (!bdev)
		return 0;
	if (bdev->inflight)
		return -EBUSY;
	bdev->ops->close(bdev);
	return 0;
}

struct sync_wait {
	bool done;
	int status;
};

static void sync_done(struct wf_bdev_io *io, int status)
{
	struct sync_wait *w = io->cb_arg;

	w->status = status;
	w->done = true;
}

int wf_bdev_sync_io(struct wf_bdev *bdev, enum wf_bdev_op op, uint64_t offset, uint64_t len,
		    void *buf)
{
	struct sync_wait w = {0};
	struct wf_bdev_io io;
	int rc;

	wf_bdev_io_prep(&io, op, offset, len, buf, sync_done, &w);
	rc = wf_bdev_submit(bdev, &io);
	if (rc)
		return rc;
	while (!w.done)
		wf_bdev_poll(bdev);
	return w.status;
}
