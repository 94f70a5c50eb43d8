/* SPDX-License-Identifier: MIT */
/* Linear volumes: source ranges laid end to end (concatenate, carve). */
#include <errno.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/volume_impl.h"

struct linear_arg {
	const struct wf_volume_extent *ext;
	uint32_t n;
};

static uint32_t linear_count(const struct wf_volume *vol, uint64_t off, uint64_t len)
{
	int64_t first = wf_extent_map_find(&vol->map, off);
	int64_t last = wf_extent_map_find(&vol->map, off + len - 1);

	return (uint32_t)(last - first + 1);
}

static void linear_map(const struct wf_volume *vol, uint64_t off, uint64_t len,
		       struct wf_volume_piece *piece)
{
	const struct wf_extent *e = &vol->map.ext[wf_extent_map_find(&vol->map, off)];
	uint64_t in = off - e->start;

	piece->src = e->src;
	piece->phys = e->phys + in;
	piece->len = e->len - in < len ? e->len - in : len;
}

static const struct wf_volume_layout linear_layout = {
    .count = linear_count,
    .map = linear_map,
};

static int linear_build(struct wf_volume *vol, const void *argp)
{
	const struct linear_arg *arg = argp;
	uint64_t bs = vol->geo.block_size;
	int rc = wf_extent_map_init(&vol->map, arg->n);

	for (uint32_t i = 0; !rc && i < arg->n; i++) {
		const struct wf_volume_extent *e = &arg->ext[i];

		if (e->phys % bs || e->len % bs || e->phys > e->src->geo.size ||
		    e->len > e->src->geo.size - e->phys) {
			wf_log_err(vol->bdev.log,
				   "%s: extent %u (%s at %llu+%llu) is outside the device or not "
				   "aligned to %llu",
				   vol->name, i, e->src->name, (unsigned long long)e->phys,
				   (unsigned long long)e->len, (unsigned long long)bs);
			return -EINVAL;
		}
		rc = wf_extent_map_append(&vol->map, e->src, e->phys, e->len);
	}
	vol->geo.size = vol->map.size;
	return rc;
}

int wf_volume_linear_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    const struct wf_volume_extent *ext, uint32_t n)
{
	struct linear_arg arg = {.ext = ext, .n = n};
	struct wf_bdev **srcs = calloc(n ? n : 1, sizeof(*srcs));
	int rc;

	if (!srcs)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		srcs[i] = ext[i].src;
	rc = wf_volume_split_create(out, conf, &linear_layout, linear_build, &arg, srcs, n);
	free(srcs);
	return rc;
}

int wf_volume_concat_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    struct wf_bdev *const *devs, uint32_t n)
{
	struct wf_volume_extent *ext = calloc(n ? n : 1, sizeof(*ext));
	int rc;

	if (!ext)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		ext[i] = (struct wf_volume_extent){.src = devs[i], .len = devs[i]->geo.size};
	rc = wf_volume_linear_create(out, conf, ext, n);
	free(ext);
	return rc;
}

int wf_volume_carve_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			   struct wf_bdev *dev, uint64_t offset, uint64_t len)
{
	struct wf_volume_extent ext = {.src = dev, .phys = offset, .len = len};

	return wf_volume_linear_create(out, conf, &ext, 1);
}
