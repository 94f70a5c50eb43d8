/* SPDX-License-Identifier: MIT */
/*
 * Striped volumes: chunk k lives on device k % n at row k / n. The mapping
 * is arithmetic, so it needs no extent map and lookup is O(1).
 */
#include <errno.h>

#include "core/log.h"
#include "core/volume_impl.h"

struct stripe_arg {
	uint32_t n;
	uint64_t chunk;
};

static uint32_t stripe_count(const struct wf_volume *vol, uint64_t off, uint64_t len)
{
	return (uint32_t)((off + len - 1) / vol->chunk - off / vol->chunk + 1);
}

static void stripe_map(const struct wf_volume *vol, uint64_t off, uint64_t len,
		       struct wf_volume_piece *piece)
{
	uint64_t k = off / vol->chunk, in = off % vol->chunk;

	piece->src = vol->srcs[k % vol->nsrcs];
	piece->phys = k / vol->nsrcs * vol->chunk + in;
	piece->len = vol->chunk - in < len ? vol->chunk - in : len;
}

static const struct wf_volume_layout stripe_layout = {
    .count = stripe_count,
    .map = stripe_map,
};

static int stripe_build(struct wf_volume *vol, const void *argp)
{
	const struct stripe_arg *arg = argp;
	uint64_t rows = UINT64_MAX;

	/* Duplicates were folded: the same device twice would put two chunks in one place. */
	if (vol->nsrcs != arg->n || !arg->chunk || arg->chunk % vol->geo.block_size)
		return -EINVAL;
	for (uint32_t i = 0; i < vol->nsrcs; i++)
		if (vol->srcs[i]->geo.size / arg->chunk < rows)
			rows = vol->srcs[i]->geo.size / arg->chunk;
	if (!rows)
		return -EINVAL;
	vol->chunk = arg->chunk;
	vol->geo.size = rows * arg->chunk * vol->nsrcs;
	return 0;
}

int wf_volume_stripe_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    struct wf_bdev *const *devs, uint32_t n, uint64_t chunk)
{
	struct stripe_arg arg = {.n = n, .chunk = chunk};

	return wf_volume_split_create(out, conf, &stripe_layout, stripe_build, &arg, devs, n);
}
