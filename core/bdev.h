/* SPDX-License-Identifier: MIT */
/*
 * Backing device descriptor: an ops table plus the device's context.
 *
 * Submission never blocks and never completes inline: a submit call either
 * rejects the request at once (negative errno, no callback) or accepts it
 * (0), and the callback then runs from wf_bdev_poll() on the caller's thread.
 * Deferring every completion to poll means a callback can never run inside
 * the submit call that caused it, so callers and stacked volumes need no
 * re-entrancy guards. Offsets and lengths are bytes, multiples of the
 * device's block size; buffers must be aligned to it (file devices may use
 * O_DIRECT). A device and everything stacked on it belong to one thread.
 */
#ifndef WF_CORE_BDEV_H
#define WF_CORE_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wf_log;
struct wf_bdev;
struct wf_bdev_io;

enum wf_bdev_op {
	WF_BDEV_READ = 0,
	WF_BDEV_WRITE,
	WF_BDEV_FLUSH,
	WF_BDEV_WRITE_ZEROES,
	WF_BDEV_DISCARD,
	WF_BDEV_OP_COUNT,
};

typedef void (*wf_bdev_cb)(struct wf_bdev_io *io, int status);

/*
 * One request. The submitter owns it (usually from a wf_pool) and fills the
 * public fields, which no device changes; the device it is submitted to may
 * use the fields below them until it completes the request.
 */
struct wf_bdev_io {
	enum wf_bdev_op op;
	uint64_t offset; /* bytes from the device's start */
	uint64_t len;	 /* bytes; 0 for flush */
	void *buf;	 /* read/write only */
	wf_bdev_cb cb;
	void *cb_arg;

	/* Owned by the device the request is submitted to. */
	struct wf_bdev *bdev;
	struct wf_bdev_io *next; /* completion queue, device-private lists */
	int status;		 /* first error of split requests */
	uint32_t pending;	 /* sub-requests still out */
	uint64_t scratch[2];	 /* device-private per-request state */
	/*
	 * Devices read this, never offset: the offset on the device that holds the
	 * request now, which forwarding moves while the submitter's view stays.
	 */
	uint64_t dev_offset;
	struct wf_bdev *fwd_bdev; /* where it was submitted, while forwarded below */
};

/* A FIFO of requests linked through ->next; a request sits on one queue at a time. */
struct wf_bdev_io_queue {
	struct wf_bdev_io *head, *tail;
};

/* Append @io to @q. */
static inline void wf_bdev_io_queue_push(struct wf_bdev_io_queue *q, struct wf_bdev_io *io)
{
	io->next = NULL;
	if (q->tail)
		q->tail->next = io;
	else
		q->head = io;
	q->tail = io;
}

/* Empty @q and return its requests in order, so handlers may push to @q again meanwhile. */
static inline struct wf_bdev_io *wf_bdev_io_queue_take(struct wf_bdev_io_queue *q)
{
	struct wf_bdev_io *io = q->head;

	q->head = q->tail = NULL;
	return io;
}

struct wf_bdev_geometry {
	uint32_t block_size; /* power of two; unit of offset, length and buffer alignment */
	uint64_t size;	     /* bytes, a multiple of block_size */
};

typedef int (*wf_bdev_submit_fn)(struct wf_bdev *bdev, struct wf_bdev_io *io);

/*
 * What a device implements. submit[] is indexed by enum wf_bdev_op; the
 * generic layer has already checked the range when these run. A NULL entry
 * means the device does not support the operation (-EOPNOTSUPP).
 */
struct wf_bdev_ops {
	wf_bdev_submit_fn submit[WF_BDEV_OP_COUNT];
	/* Reap finished work from below and wf_bdev_complete() it; may be NULL. */
	void (*poll)(struct wf_bdev *bdev);
	void (*geometry)(struct wf_bdev *bdev, struct wf_bdev_geometry *geo);
	/* Release the context; called with nothing in flight. */
	void (*close)(struct wf_bdev *bdev);
};

struct wf_bdev {
	const struct wf_bdev_ops *ops;
	void *ctx;
	const char *name;
	struct wf_log *log;
	struct wf_bdev_geometry geo;  /* cached from ops->geometry at init */
	struct wf_bdev_io_queue done; /* completed, callbacks not yet run */
	uint64_t inflight;	      /* accepted, callback not yet run */
};

/* True if @block_size is a power of two and @size a whole number of blocks. */
bool wf_bdev_geometry_valid(uint64_t size, uint32_t block_size);

/* Bind @ops and @ctx into @bdev and cache its geometry; devices call this from create. */
void wf_bdev_init(struct wf_bdev *bdev, const struct wf_bdev_ops *ops, void *ctx, const char *name,
		  struct wf_log *log);

/*
 * Check @io against the device and hand it to the device. 0: the callback
 * will run from a later wf_bdev_poll(); negative errno: rejected, no callback
 * (-ERANGE beyond the end, -EINVAL misaligned, -EOPNOTSUPP, -EAGAIN full).
 */
int wf_bdev_submit(struct wf_bdev *bdev, struct wf_bdev_io *io);

/* Fill @io's public fields; inline because every layer does it once per I/O. */
static inline void wf_bdev_io_prep(struct wf_bdev_io *io, enum wf_bdev_op op, uint64_t offset,
				   uint64_t len, void *buf, wf_bdev_cb cb, void *cb_arg)
{
	io->op = op;
	io->offset = offset;
	io->len = len;
	io->buf = buf;
	io->cb = cb;
	io->cb_arg = cb_arg;
}

/* What a submit fn returns when it passed @io on whole with wf_bdev_forward(). */
#define WF_BDEV_FORWARDED 1

/*
 * Devices: from a submit fn, pass @io on whole to @below at @offset instead
 * of sending a sub-request, and return what this returns. @io then belongs to
 * @below: its callback runs from @below's poll (which the forwarding device's
 * poll drives), with the bdev it was submitted to put back. Costs no pool,
 * no second callback and no bookkeeping in the layers between.
 */
int wf_bdev_forward(struct wf_bdev *below, struct wf_bdev_io *io, uint64_t offset);

/* Devices: queue @io's callback for the next poll of its device. */
void wf_bdev_complete(struct wf_bdev_io *io, int status);

/*
 * Devices: run @io's callback now. Only from inside a poll of @io's device
 * (e.g. a stacked device's sub-request callback), never from submit.
 */
void wf_bdev_complete_now(struct wf_bdev_io *io, int status);

/* Drive the device: reap work below it and run queued callbacks. Returns callbacks run. */
unsigned wf_bdev_poll(struct wf_bdev *bdev);

/* Close @bdev; -EBUSY while requests are in flight, since their callbacks would dangle. */
int wf_bdev_close(struct wf_bdev *bdev);

/* Submit one request and poll @bdev until it completes; for setup and metadata, not I/O paths. */
int wf_bdev_sync_io(struct wf_bdev *bdev, enum wf_bdev_op op, uint64_t offset, uint64_t len,
		    void *buf);

/* Name of @op for log lines. */
const char *wf_bdev_op_name(enum wf_bdev_op op);

#endif /* WF_CORE_BDEV_H */
