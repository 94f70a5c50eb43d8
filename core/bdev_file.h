/* SPDX-License-Identifier: MIT */
/* A device on a regular file or a block device, driven through io_uring. */
#ifndef WF_CORE_BDEV_FILE_H
#define WF_CORE_BDEV_FILE_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

/*
 * Open @path (an existing regular file or block device) as a device with up
 * to @queue_depth requests in flight. O_DIRECT (block size 4096, or the
 * device's logical block size) where the file system allows it; otherwise
 * buffered (block size 512) with an info line saying so. The size is the
 * file's size rounded down to the block size. Requests are queued to the
 * ring at submit and handed to the kernel in one batch at the next poll.
 */
int wf_bdev_file_create(struct wf_bdev **out, const char *name, const char *path,
			uint32_t queue_depth, struct wf_log *log);

#endif /* WF_CORE_BDEV_FILE_H */
