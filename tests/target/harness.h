/* SPDX-License-Identifier: MIT */
/*
 * Test harness for the target: the real target (the library weftd runs) on
 * its own thread from config text, and "raw" hosts that speak capsules
 * through the transport API directly, for what libweft never sends.
 */
#ifndef WF_TESTS_TARGET_HARNESS_H
#define WF_TESTS_TARGET_HARNESS_H

#include <pthread.h>
#include <stdint.h>

#include <weft/weft.h>
#include <weft/wire.h>

#include "core/log.h"
#include "target/config.h"
#include "target/target.h"
#include "transport/transport.h"

struct th_env {
	const char *transport; /* "tcp" or "rdma" */
	const char *addr;
	enum wf_log_level log_level; /* the target's; WF_LOG_ERR (0) unless set */
	struct wf_log log;
	struct wf_config cfg;
	struct wf_target *target;
	pthread_t thread;
	int stop_fd;
	int run_rc;
	uint16_t port;
};

/* Start a target listening on e->transport/e->addr, port chosen by the kernel, with @body. */
void th_env_start(struct th_env *e, const char *body);

/* Stop it (SIGTERM's path) and check it stopped cleanly. */
void th_env_stop(struct th_env *e);

/* Open a libweft host with @o and one queue pair; its error, or 0 (*h NULL on failure). */
int th_host_open_opts(const struct wf_host_opts *o, struct wf_host **h, struct wf_qp **qp);

/* Open a libweft host with @secret (may be NULL); its error, or 0. */
int th_host_try(struct th_env *e, const char *id, const char *secret, uint16_t qd,
		struct wf_host **h, struct wf_qp **qp);

#define TH_DOWN 0xffffu /* th_raw_cmd(): the target dropped the connection instead */

/* A hand-driven connection: one command at a time. */
struct th_raw {
	struct wf_transport *t;
	struct wf_poll_group *pg;
	struct wf_ep *ep;
	int up, down, got, sent;
	struct wf_cpl cpl;
	uint32_t cpl_data; /* bytes of read data the last answer was (imm), copied to buf */
	int cpl_imm;	   /* the last answer was a WRITE's immediate data */
	struct wf_xfer x;
	uint8_t capsule[256];
	uint8_t *buf; /* 4 KiB the target may RDMA-write, e.g. an AUTH answer */
	struct wf_mr *mr;
};

/* Connect as @host to a target on @transport ("tcp" or "rdma") at @addr:@port; as th_raw_open(). */
int th_raw_dial(const char *transport, const char *addr, uint16_t port, struct th_raw *r,
		const char *host);

/* Connect as @host; the transport's error (a typed refusal) or 0. */
int th_raw_open(struct th_env *e, struct th_raw *r, const char *host);

/* Send @len raw bytes; the completion's status (its cid must be @cid) or TH_DOWN. */
unsigned th_raw_send(struct th_raw *r, const void *bytes, uint32_t len, uint16_t cid);

/* Encode @c (version filled in if 0) plus @data and send it, as th_raw_send(). */
unsigned th_raw_cmd(struct th_raw *r, struct wf_cmd *c, const void *data);

/* CONNECT as @host: the status; the result lands in r->cpl. */
unsigned th_raw_connect(struct th_raw *r, const char *host);

/* Tear the connection down. */
void th_raw_close(struct th_raw *r);

#endif /* WF_TESTS_TARGET_HARNESS_H */
