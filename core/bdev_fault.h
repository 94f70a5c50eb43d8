/* SPDX-License-Identifier: MIT */
/*
 * A fault-injecting wrapper around a real device: requests pass through to
 * it until told to fail. Failing, requests already in flight complete with
 * -EIO (their data may or may not have reached the device, as with a
 * failing disk), and new ones either do the same or are refused at submit
 * like a device that is gone. For testing the layers that must survive it.
 */
#ifndef WF_CORE_BDEV_FAULT_H
#define WF_CORE_BDEV_FAULT_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

enum wf_fault_mode {
	WF_FAULT_OFF = 0,
	WF_FAULT_EIO,	 /* accept, then complete with -EIO */
	WF_FAULT_REFUSE, /* refuse at submit with -ENODEV */
};

/* Wrap @inner (still owned by the caller) with up to @depth requests in flight. */
int wf_bdev_fault_create(struct wf_bdev **out, const char *name, struct wf_bdev *inner,
			 uint32_t depth, struct wf_log *log);

/* Let @after more requests through, then fail in @mode (0: at once). @bdev is a fault device. */
void wf_bdev_fault_set(struct wf_bdev *bdev, enum wf_fault_mode mode, uint64_t after);

/* Requests failed so far, so a test can show its fault really happened. */
uint64_t wf_bdev_fault_count(const struct wf_bdev *bdev);

#endif /* WF_CORE_BDEV_FAULT_H */
