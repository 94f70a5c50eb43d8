/* SPDX-License-Identifier: MIT */
/*
 * The parts every volume shares, and the split engine that linear and
 * striped layouts run on: a request becomes one sub-request per piece the
 * layout maps it to, and completes once, when the last piece is back.
 */
#include "core/volume_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static int add_src(struct wf_volume *vol, struct wf_bdev *src)
{
	for (uint32_t i = 0; i < vol->nsrcs; i++)
		if (vol->srcs[i] == src)
			return 0;
	if (!src)
		return -EINVAL;
	vol->srcs[vol->nsrcs++] = src;
	if (src->geo.block_size > vol->geo.block_size)
		vol->geo.block_size = src->geo.block_size;
	return 0;
}

int wf_volume_setup(struct wf_volume *vol, const struct wf_volume_conf *conf,
		    struct wf_bdev *const *srcs, uint32_t n)
{
	int rc = -EINVAL;

	if (!n || !conf->name || !conf->max_subreqs)
		return -EINVAL;
	vol->name = strdup(conf->name);
	vol->srcs = calloc(n, sizeof(*vol->srcs));
	if (!vol->name || !vol->srcs) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (uint32_t i = 0; i < n; i++) {
		rc = add_src(vol, srcs[i]);
		if (rc)
			goto err_free;
	}
	rc = wf_pool_init(&vol->subreqs, sizeof(struct wf_bdev_io), conf->max_subreqs);
	if (rc)
		goto err_free;
	vol->bdev.log = conf->log;
	return 0;

err_free:
	free(vol->srcs);
	free(vol->name);
	return rc;
}

void wf_volume_teardown(struct wf_volume *vol)
{
	wf_pool_fini(&vol->subreqs);
	wf_extent_map_fini(&vol->map);
	free(vol->srcs);
	free(vol->name);
}

/*
 * Account one finished piece of @parent, keeping the first error; complete it
 * with the last. Pieces finish inside the volume's poll (it polls its
 * sources), never inside a submit, so the parent completes right here rather
 * than waiting a second time in the volume's own queue.
 */
static void part_done(struct wf_bdev_io *parent, int status)
{
	if (status && !parent->status)
		parent->status = status;
	if (--parent->pending == 0)
		wf_bdev_complete_now(parent, parent->status);
}

int wf_volume_subreq(struct wf_volume *vol, struct wf_bdev_io *parent, struct wf_bdev *src,
		     uint64_t phys, uint64_t len, void *buf, wf_bdev_cb cb)
{
	struct wf_bdev_io *sub = wf_pool_get(&vol->subreqs);
	int rc;

	if (!sub)
		return -EAGAIN;
	wf_bdev_io_prep(sub, parent->op, phys, len, buf, cb, parent);
	rc = wf_bdev_submit(src, sub);
	if (rc)
		wf_pool_put(&vol->subreqs, sub);
	return rc;
}

static void subreq_done(struct wf_bdev_io *sub, int status)
{
	struct wf_bdev_io *parent = sub->cb_arg;
	struct wf_volume *vol = parent->bdev->ctx;

	wf_pool_put(&vol->subreqs, sub);
	part_done(parent, status);
}

/*
 * A request's progress lives in its scratch words while it is split: bytes
 * already sent, and pieces not yet sent. A flush's pieces are the sources.
 */
#define SENT_BYTES(io)	((io)->scratch[0])
#define PIECES_LEFT(io) ((io)->scratch[1])

static void next_piece(const struct wf_volume *vol, const struct wf_bdev_io *io,
		       struct wf_volume_piece *p)
{
	if (io->op == WF_BDEV_FLUSH) {
		*p = (struct wf_volume_piece){.src = vol->srcs[vol->nsrcs - PIECES_LEFT(io)]};
		return;
	}
	vol->layout->map(vol, io->dev_offset + SENT_BYTES(io), io->len - SENT_BYTES(io), p);
}

/* Send @io's unsent pieces until none is left or one is refused; returns that refusal. */
static int split_send(struct wf_volume *vol, struct wf_bdev_io *io)
{
	struct wf_volume_piece p;
	int rc;

	while (PIECES_LEFT(io)) {
		next_piece(vol, io, &p);
		rc = wf_volume_subreq(vol, io, p.src, p.phys, p.len,
				      io->buf ? (char *)io->buf + SENT_BYTES(io) : NULL,
				      subreq_done);
		if (rc)
			return rc;
		SENT_BYTES(io) += p.len;
		PIECES_LEFT(io)--;
	}
	return 0;
}

/*
 * A piece was refused after others went out. A full source (-EAGAIN) is
 * retried from poll once completions made room; any other error ends the
 * request with that error once the pieces in flight are back.
 */
static void split_stalled(struct wf_volume *vol, struct wf_bdev_io *io, int rc)
{
	if (rc == -EAGAIN) {
		wf_bdev_io_queue_push(&vol->retry, io);
		return;
	}
	io->pending -= (uint32_t)PIECES_LEFT(io);
	PIECES_LEFT(io) = 0;
	if (!io->status)
		io->status = rc;
	if (!io->pending)
		wf_bdev_complete(io, io->status);
}

static int split_start(struct wf_volume *vol, struct wf_bdev_io *io, uint32_t n)
{
	int rc;

	/*
	 * Pieces go out while sub-requests are free; the rest stall and go out
	 * from poll as earlier pieces return, so a request larger than the pool
	 * moves in waves instead of being refused forever.
	 */
	io->pending = n;
	io->status = 0;
	SENT_BYTES(io) = 0;
	PIECES_LEFT(io) = n;
	rc = split_send(vol, io);
	if (!rc)
		return 0;
	if (PIECES_LEFT(io) == n)
		return rc; /* nothing went out: the caller sees the refusal itself */
	split_stalled(vol, io, rc);
	return 0;
}

/*
 * Most requests fall inside one piece: one lookup, and the request itself
 * goes on to the source, with no sub-request and no callback of ours. This
 * is the path the <=5% overhead budget is spent on.
 */
static int split_submit(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	struct wf_volume *vol = bdev->ctx;
	struct wf_volume_piece p;

	vol->layout->map(vol, io->dev_offset, io->len, &p);
	if (p.len < io->len)
		return split_start(vol, io, vol->layout->count(vol, io->dev_offset, io->len));
	return wf_bdev_forward(p.src, io, p.phys);
}

/* A flush has one piece per distinct source. */
static int split_flush(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	struct wf_volume *vol = bdev->ctx;

	return split_start(vol, io, vol->nsrcs);
}

/* Resume requests that stalled on a full source; completions below have just made room. */
static void split_retry(struct wf_volume *vol)
{
	struct wf_bdev_io *io = wf_bdev_io_queue_take(&vol->retry);

	while (io) {
		struct wf_bdev_io *next = io->next;
		int rc = split_send(vol, io);

		if (rc)
			split_stalled(vol, io, rc);
		io = next;
	}
}

/* Poll every source once, then resume requests that stalled on a full source or pool. */
static void split_poll(struct wf_bdev *bdev)
{
	struct wf_volume *vol = bdev->ctx;

	for (uint32_t i = 0; i < vol->nsrcs; i++)
		wf_bdev_poll(vol->srcs[i]);
	if (vol->retry.head)
		split_retry(vol);
}

void wf_volume_geometry(struct wf_bdev *bdev, struct wf_bdev_geometry *geo)
{
	struct wf_volume *vol = bdev->ctx;

	*geo = vol->geo;
}

static void split_close(struct wf_bdev *bdev)
{
	struct wf_volume *vol = bdev->ctx;

	wf_volume_teardown(vol);
	free(vol);
}

static const struct wf_bdev_ops split_ops = {
    .submit =
	{
	    [WF_BDEV_READ] = split_submit,
	    [WF_BDEV_WRITE] = split_submit,
	    [WF_BDEV_FLUSH] = split_flush,
	    [WF_BDEV_WRITE_ZEROES] = split_submit,
	    [WF_BDEV_DISCARD] = split_submit,
	},
    .poll = split_poll,
    .geometry = wf_volume_geometry,
    .close = split_close,
};

int wf_volume_split_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			   const struct wf_volume_layout *layout,
			   int (*build)(struct wf_volume *vol, const void *arg), const void *arg,
			   struct wf_bdev *const *srcs, uint32_t n)
{
	struct wf_volume *vol = calloc(1, sizeof(*vol));
	int rc;

	if (!vol)
		return -ENOMEM;
	rc = wf_volume_setup(vol, conf, srcs, n);
	if (rc)
		goto err_free;
	vol->layout = layout;
	rc = build(vol, arg);
	if (rc) {
		wf_log_err(conf->log, "%s: invalid layout: %s", conf->name, strerror(-rc));
		goto err_teardown;
	}
	wf_bdev_init(&vol->bdev, &split_ops, vol, vol->name, conf->log);
	*out = &vol->bdev;
	return 0;

err_teardown:
	wf_volume_teardown(vol);
err_free:
	free(vol);
	return rc;
}
