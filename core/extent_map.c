/* SPDX-License-Identifier: MIT */
#include "core/extent_map.h"

#include <errno.h>
#include <stdlib.h>

int wf_extent_map_init(struct wf_extent_map *map, uint32_t cap)
{
	*map = (struct wf_extent_map){.cap = cap};
	map->ext = calloc(cap ? cap : 1, sizeof(*map->ext));
	map->starts = calloc(cap ? cap : 1, sizeof(*map->starts));
	if (map->ext && map->starts)
		return 0;
	wf_extent_map_fini(map);
	return -ENOMEM;
}

void wf_extent_map_fini(struct wf_extent_map *map)
{
	free(map->ext);
	free(map->starts);
	map->ext = NULL;
	map->starts = NULL;
	map->count = map->cap = 0;
}

int wf_extent_map_append(struct wf_extent_map *map, struct wf_bdev *src, uint64_t phys,
			 uint64_t len)
{
	if (!len || map->size + len < map->size)
		return -EINVAL;
	if (map->count == map->cap)
		return -ENOSPC;
	map->starts[map->count] = map->size;
	map->ext[map->count++] =
	    (struct wf_extent){.start = map->size, .len = len, .src = src, .phys = phys};
	map->size += len;
	return 0;
}
