/* SPDX-License-Identifier: MIT */
/*
 * A fault-injecting wrapper around a real device: requests pass through to
 * it until told to fail, then complete with -EIO, including those already in
 * flight (whose data may or may not have reached the device, as with a
 * failing disk). For testing the layers that must survive a failing device.
 */
#ifndef WF_CORE_BDEV_FAULT_H
#define WF_CORE_BDEV_FAULT_H

#include <stdbool.h>
#include <stdint.h>

struct wf_bdev;
struct wf_log;

/* Wrap @inner (still owned by the caller) with up to @depth requests in flight. */
int wf_bdev_fault_create(struct wf_bdev **out, const char *name, struct wf_bdev *inner,
			 uint32_t depth, struct wf_log *log);

/* Let @after more requests through, then fail (0: at once); or stop failing. @bdev is a fault
 * device. */
void wf_bdev_fault_set(struct wf_bdev *bdev, bool failing, uint64_t after);

/* Requests failed so far, so a test can show its fault really happened. */
uint64_t wf_bdev_fault_count(const struct wf_bdev *bdev);

#endif /* WF_CORE_BDEV_FAULT_H */
