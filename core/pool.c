/* SPDX-License-Identifier: MIT */
#include "core/pool.h"

#include <errno.h>
#include <stdlib.h>

int wf_pool_init(struct wf_pool *pool, size_t obj_size, uint32_t count)
{
	size_t align = _Alignof(max_align_t);
	char *p;

	if (obj_size < sizeof(void *))
		obj_size = sizeof(void *);
	obj_size = (obj_size + align - 1) / align * align;
	*pool = (struct wf_pool){.obj_size = obj_size, .count = count};
	pool->mem = calloc(count ? count : 1, obj_size);
	if (!pool->mem)
		return -ENOMEM;
	p = pool->mem;
	for (uint32_t i = count; i-- > 0;)
		wf_pool_put(pool, p + i * obj_size);
	return 0;
}

void wf_pool_fini(struct wf_pool *pool)
{
	free(pool->mem);
	pool->mem = pool->free = NULL;
	pool->avail = 0;
}
