/* SPDX-License-Identifier: MIT */
/*
 * Volumes: devices made of other devices. Every volume is itself a
 * struct wf_bdev with the same ops table, so volumes stack. A volume never
 * owns its sources: close the volume first, then them. Polling a volume
 * polls its sources; requests that span sources are split into
 * sub-requests from a pool sized at creation and complete once, with the
 * first error.
 */
#ifndef WF_CORE_VOLUME_H
#define WF_CORE_VOLUME_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

struct wf_volume_conf {
	const char *name;
	struct wf_log *log;
	uint32_t max_subreqs; /* sub-requests in flight at once; larger requests go in waves */
};

/* A source range for wf_volume_linear_create(). */
struct wf_volume_extent {
	struct wf_bdev *src;
	uint64_t phys; /* byte offset in src */
	uint64_t len;
};

/* Lay @n source ranges end to end; the general form of concatenate and carve. */
int wf_volume_linear_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    const struct wf_volume_extent *ext, uint32_t n);

/* Concatenate @n whole devices (3 x 20 GiB -> 60 GiB). */
int wf_volume_concat_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    struct wf_bdev *const *devs, uint32_t n);

/* Carve @len bytes at @offset out of @dev; several carved volumes share one device. */
int wf_volume_carve_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			   struct wf_bdev *dev, uint64_t offset, uint64_t len);

/*
 * Stripe over @n distinct devices in @chunk-byte units (a multiple of every
 * block size); each device contributes the largest whole number of chunks
 * that fits in the smallest of them.
 */
int wf_volume_stripe_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    struct wf_bdev *const *devs, uint32_t n, uint64_t chunk);

enum wf_mirror_leg_state {
	WF_MIRROR_HEALTHY = 0, /* in sync: serves reads and writes */
	WF_MIRROR_DEGRADED,    /* failed: gets nothing until it is returned */
	WF_MIRROR_RESYNCING,   /* returned: gets writes and the background copy, no reads */
};

/*
 * Mirror over @n distinct legs (up to 32). A write completes once every
 * healthy leg has it and succeeds if at least one still healthy leg does;
 * reads rotate across healthy legs and retry on another leg if one fails. A
 * leg that fails any request is marked degraded and the volume keeps serving.
 * The legs must hold the same data at creation (fresh zeroed devices, or a
 * mirror being reopened): nothing here compares them. A reopened mirror
 * learns which legs fell behind before the restart from its journal's
 * record, through wf_volume_mirror_leg_stale().
 */
int wf_volume_mirror_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    struct wf_bdev *const *legs, uint32_t n);

/*
 * Put degraded leg @leg back with the data it had: the chunks it missed
 * while away are copied from a healthy leg in the background, one per poll,
 * while I/O goes on, then it becomes healthy. -EBUSY while another leg
 * resyncs, -EINVAL for a bad leg or a non-mirror.
 */
int wf_volume_mirror_leg_return(struct wf_bdev *mirror, uint32_t leg);

/* As wf_volume_mirror_leg_return(), for a leg whose contents are new or unknown: copy it all. */
int wf_volume_mirror_leg_replace(struct wf_bdev *mirror, uint32_t leg);

/*
 * The legs that lack writes changed: bit i of @stale is set while leg i is
 * degraded or resyncing. Runs inside the mirror's submit or poll, before any
 * request that left a leg behind completes, so a record made here is on disk
 * before a host sees that write acknowledged. A nonzero return is logged.
 */
typedef int (*wf_mirror_journal_fn)(void *arg, uint32_t stale);

/*
 * Have @journal told of every change to which legs are stale, so a restarted
 * target knows which legs not to read (NULL: nobody is told). -EINVAL for a
 * non-mirror.
 */
int wf_volume_mirror_set_journal(struct wf_bdev *mirror, wf_mirror_journal_fn journal, void *arg);

/*
 * Mark leg @leg degraded without a failure, before any I/O: a record from
 * before a restart says it lacks writes. Its contents are then unknown, so it
 * comes back through wf_volume_mirror_leg_replace(). -EINVAL for a bad leg or
 * a non-mirror, -EIO if no healthy leg would be left.
 */
int wf_volume_mirror_leg_stale(struct wf_bdev *mirror, uint32_t leg);

/* Where leg @leg (< its leg count) of @mirror (a mirror volume) stands; tests and tools watch it.
 */
enum wf_mirror_leg_state wf_volume_mirror_leg_state(struct wf_bdev *mirror, uint32_t leg);

#endif /* WF_CORE_VOLUME_H */
