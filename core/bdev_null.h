/* SPDX-License-Identifier: MIT */
/* A device that stores nothing and completes everything: measures the layers above it alone. */
#ifndef WF_CORE_BDEV_NULL_H
#define WF_CORE_BDEV_NULL_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

/* A null device of @size bytes in @block_size units; reads leave buffers untouched. */
int wf_bdev_null_create(struct wf_bdev **out, const char *name, uint64_t size, uint32_t block_size,
			struct wf_log *log);

#endif /* WF_CORE_BDEV_NULL_H */
