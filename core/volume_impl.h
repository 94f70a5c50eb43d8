/* SPDX-License-Identifier: MIT */
/* What the volume layouts share: the device they expose, their sources, the sub-request pool. */
#ifndef WF_CORE_VOLUME_IMPL_H
#define WF_CORE_VOLUME_IMPL_H

#include "core/bdev.h"
#include "core/extent_map.h"
#include "core/pool.h"
#include "core/volume.h"

struct wf_volume;

/* One contiguous piece of a request on one source. */
struct wf_volume_piece {
	struct wf_bdev *src;
	uint64_t phys;
	uint64_t len;
};

/* How a splitting layout maps logical bytes; the split engine does the rest. */
struct wf_volume_layout {
	/* Pieces that [off, off + len) splits into; len > 0 and in range. */
	uint32_t (*count)(const struct wf_volume *vol, uint64_t off, uint64_t len);
	/* The piece holding @off, cut at @len bytes. */
	void (*map)(const struct wf_volume *vol, uint64_t off, uint64_t len,
		    struct wf_volume_piece *piece);
};

struct wf_volume {
	struct wf_bdev bdev; /* what users of the volume see */
	const struct wf_volume_layout *layout;
	struct wf_pool subreqs; /* struct wf_bdev_io for sub-requests */
	struct wf_bdev **srcs;	/* distinct sources: flushed and polled once each */
	uint32_t nsrcs;
	struct wf_bdev_geometry geo;
	struct wf_extent_map map;      /* linear layouts */
	uint64_t chunk;		       /* stripe */
	struct wf_bdev_io_queue retry; /* stalled on a full source */
	char *name;
};

/*
 * Set up the parts every volume has, from @conf and @srcs (duplicates
 * allowed, they are folded). The block size becomes the largest of theirs.
 */
int wf_volume_setup(struct wf_volume *vol, const struct wf_volume_conf *conf,
		    struct wf_bdev *const *srcs, uint32_t n);

/*
 * Allocate a splitting volume over @srcs, let @build fill in its map or
 * stripe and size from @arg, and expose it as a device.
 */
int wf_volume_split_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			   const struct wf_volume_layout *layout,
			   int (*build)(struct wf_volume *vol, const void *arg), const void *arg,
			   struct wf_bdev *const *srcs, uint32_t n);

/* Undo wf_volume_setup(). */
void wf_volume_teardown(struct wf_volume *vol);

/* Send @parent's op on [phys, phys + len) of @src from the pool; @cb gets the sub-request. */
int wf_volume_subreq(struct wf_volume *vol, struct wf_bdev_io *parent, struct wf_bdev *src,
		     uint64_t phys, uint64_t len, void *buf, wf_bdev_cb cb);

/* ops->geometry for every volume. */
void wf_volume_geometry(struct wf_bdev *bdev, struct wf_bdev_geometry *geo);

#endif /* WF_CORE_VOLUME_IMPL_H */
