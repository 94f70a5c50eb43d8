/* SPDX-License-Identifier: MIT */
/*
 * The storage-node service as a library, so weftd and the end-to-end tests
 * run the very same target: build it from a validated config, run its poll
 * loop on one thread until a stop fd becomes readable, then destroy it.
 */
#ifndef WF_TARGET_TARGET_H
#define WF_TARGET_TARGET_H

#include <stdint.h>

struct wf_config;
struct wf_log;
struct wf_target;

/* Open devices and volumes, register data buffers, start listening; -errno, logged. */
int wf_target_create(const struct wf_config *cfg, struct wf_log *log, struct wf_target **out);

/* The port listen line @i is bound to (the config may say port 0). */
uint16_t wf_target_port(const struct wf_target *t, uint32_t i);

/*
 * Serve until @stop_fd (an eventfd or signalfd) is readable, then stop
 * taking commands, drain in-flight I/O, disconnect hosts and flush devices.
 * The caller reads nothing from @stop_fd. Returns 0, or -errno on failure.
 */
int wf_target_run(struct wf_target *t, int stop_fd);

/* Close everything wf_target_create() opened. */
void wf_target_destroy(struct wf_target *t);

#endif /* WF_TARGET_TARGET_H */
