/* SPDX-License-Identifier: MIT */
/*
 * Fixed-size object pool: one allocation up front, then get/put are a
 * pointer swap, so the I/O path never calls malloc. Single-threaded: each
 * poll group owns its pools.
 */
#ifndef WF_CORE_POOL_H
#define WF_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct wf_pool {
	void *mem;
	void *free; /* singly linked through each free object's first word */
	size_t obj_size;
	uint32_t count;
	uint32_t avail;
};

/* Allocate @count objects of @obj_size bytes (rounded up to pointer alignment); -ENOMEM. */
int wf_pool_init(struct wf_pool *pool, size_t obj_size, uint32_t count);

/* Free the backing memory; every object must have been put back. */
void wf_pool_fini(struct wf_pool *pool);

/*
 * An object, or NULL when the pool is empty (callers turn that into -EAGAIN).
 * Inline, like wf_pool_put(): both run several times per I/O.
 */
static inline void *wf_pool_get(struct wf_pool *pool)
{
	void *obj = pool->free;

	if (!obj)
		return NULL;
	pool->free = *(void **)obj;
	pool->avail--;
	return obj;
}

/* Return @obj, which must have come from this pool. */
static inline void wf_pool_put(struct wf_pool *pool, void *obj)
{
	*(void **)obj = pool->free;
	pool->free = obj;
	pool->avail++;
}

/* Objects left; lets a caller take several at once or none. */
static inline uint32_t wf_pool_avail(const struct wf_pool *pool)
{
	return pool->avail;
}

#endif /* WF_CORE_POOL_H */
