/* SPDX-License-Identifier: MIT */
/*
 * An ordered map from a volume's logical byte ranges to (source, physical
 * offset) extents. Extents tile the logical space from 0 without holes, so
 * the map is a sorted array and lookup is a binary search: O(log n), no
 * allocation, cache-friendly even at a million extents.
 */
#ifndef WF_CORE_EXTENT_MAP_H
#define WF_CORE_EXTENT_MAP_H

#include <errno.h>
#include <stdint.h>

struct wf_bdev;

struct wf_extent {
	uint64_t start; /* logical byte offset */
	uint64_t len;
	struct wf_bdev *src;
	uint64_t phys; /* byte offset in src */
};

struct wf_extent_map {
	struct wf_extent *ext;
	uint64_t *starts; /* ext[i].start again, densely: the search touches 4x fewer lines */
	uint32_t count, cap;
	uint64_t size; /* logical bytes covered: the end of the last extent */
};

/* An empty map with room for @cap extents; -ENOMEM. */
int wf_extent_map_init(struct wf_extent_map *map, uint32_t cap);

/* Free the array; the sources are the caller's. */
void wf_extent_map_fini(struct wf_extent_map *map);

/* Map the next @len logical bytes onto @src at @phys; -EINVAL for 0 bytes, -ENOSPC when full. */
int wf_extent_map_append(struct wf_extent_map *map, struct wf_bdev *src, uint64_t phys,
			 uint64_t len);

/*
 * Index of the extent holding logical byte @off, or -ERANGE at or beyond the
 * end. Inline: it runs on every volume I/O.
 */
static inline int64_t wf_extent_map_find(const struct wf_extent_map *map, uint64_t off)
{
	uint32_t lo = 0, hi = map->count;

	if (off >= map->size)
		return -ERANGE;
	/* Invariant: the answer is in [lo, hi); starts[0] is 0, so it exists. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (map->starts[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

#endif /* WF_CORE_EXTENT_MAP_H */
