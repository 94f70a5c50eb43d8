/* SPDX-License-Identifier: MIT */
/*
 * A registration cache for callers' own buffers: registering memory costs a
 * system call and pins pages, far too slow for the I/O path, so a buffer is
 * registered once (rounded out to whole pages) and found again by address.
 * A cache belongs to one thread, like the poll group it serves.
 *
 * The cache cannot see memory being freed: call wf_mr_cache_invalidate()
 * before freeing or unmapping a buffer that was ever passed to it.
 */
#ifndef WF_TRANSPORT_MR_CACHE_H
#define WF_TRANSPORT_MR_CACHE_H

#include <stddef.h>

#include "transport/transport.h"

struct wf_mr_cache;

struct wf_mr_cache_stats {
	unsigned long hits, misses, evictions;
	size_t entries, bytes;
};

/* A cache registering with @access (enum wf_access), holding at most @max_bytes unused. */
int wf_mr_cache_create(struct wf_transport *t, unsigned access, size_t max_bytes,
		       struct wf_mr_cache **out);

/* Deregister everything; no registration from the cache may still be in use. */
void wf_mr_cache_destroy(struct wf_mr_cache *c);

/* A registration covering [@addr, @addr + @len), held until wf_mr_cache_put(). */
int wf_mr_cache_get(struct wf_mr_cache *c, void *addr, size_t len, struct wf_mr **out);

/* Release a registration obtained from wf_mr_cache_get(). */
void wf_mr_cache_put(struct wf_mr_cache *c, struct wf_mr *mr);

/* Drop registrations overlapping [@addr, @addr + @len) once no one holds them. */
void wf_mr_cache_invalidate(struct wf_mr_cache *c, void *addr, size_t len);

/* Counters, for tests and tuning. */
void wf_mr_cache_stats(const struct wf_mr_cache *c, struct wf_mr_cache_stats *out);

#endif /* WF_TRANSPORT_MR_CACHE_H */
