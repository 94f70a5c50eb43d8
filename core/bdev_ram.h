/* SPDX-License-Identifier: MIT */
/* A device in anonymous memory, for tests and the demo. */
#ifndef WF_CORE_BDEV_RAM_H
#define WF_CORE_BDEV_RAM_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

/*
 * A zero-filled ram device of @size bytes in @block_size units. Backed by
 * hugepages when the system has them reserved, else by normal pages (logged).
 */
int wf_bdev_ram_create(struct wf_bdev **out, const char *name, uint64_t size, uint32_t block_size,
		       struct wf_log *log);

/*
 * Another ram device over @src's memory, for another thread: devices belong
 * to one thread, the data must be one. Closing it leaves the memory to
 * @src, which must be closed last. -EINVAL if @src is not a ram device.
 */
int wf_bdev_ram_share(struct wf_bdev **out, struct wf_bdev *src, struct wf_log *log);

#endif /* WF_CORE_BDEV_RAM_H */
