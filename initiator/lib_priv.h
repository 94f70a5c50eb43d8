/* SPDX-License-Identifier: MIT */
/* libweft's insides: the host, a queue pair's command slots, volumes. */
#ifndef WF_INITIATOR_LIB_PRIV_H
#define WF_INITIATOR_LIB_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>
#include <weft/wire.h>

#include "core/auth.h"
#include "transport/mr_cache.h"
#include "transport/transport.h"

#define WF_ADMIN_BUF 4096

struct wf_host {
	struct wf_host_opts opts;
	char addr[64];
	char host_id[WF_HOST_NAME_MAX];
	struct wf_transport *transport;
	struct wf_log log;
	uint8_t secret[WF_AUTH_SECRET_MAX];
	size_t secret_len;		 /* 0: no secret, the target must not ask for one */
	pthread_mutex_t lock;		 /* queue pairs of several threads share the session */
	struct wf_auth_cli_session sess; /* what the next queue pair resumes */
};

/* One command in flight; its index is the command id. */
struct wf_slot {
	struct wf_qp *qp;
	struct wf_slot *next_free;
	wf_io_cb cb;
	void *arg;
	struct wf_mr *cached; /* from the registration cache, put back at completion */
	void *cpl_data;	      /* a READ's buffer when its data comes in the completion */
	uint32_t cpl_data_len;
	uint64_t *result; /* where the completion's result goes, if anyone asked */
	bool busy;
	bool sent, answered; /* both needed before the slot is reused */
	bool posted;	     /* its SEND is with the current endpoint */
	int status;
	struct wf_cmd cmd; /* encoded again at each post: the window's key and the token change */
	struct wf_xfer x;
	uint8_t *capsule;
	/* The window the target reaches the command's buffer through, per connection. */
	struct wf_grant *grant; /* NULL: the transport has no grants */
	struct wf_mr *gmr;	/* the buffer's registration; NULL: no buffer or no grants */
	unsigned gaccess;
	struct wf_xfer gx;
	/* CPL_IMM: the target cannot end the window, so the host does, then finishes. */
	bool revoking;
	struct wf_xfer rx;
};

struct wf_dma {
	struct wf_dma *next;
	struct wf_mr *mr;
};

struct wf_qp {
	struct wf_host *host;
	struct wf_poll_group *pg;
	struct wf_qp *next_shared; /* ring of the queue pairs polled through pg; itself alone */
	struct wf_ep *ep;
	struct wf_mr_cache *cache;
	struct wf_dma *dma;
	bool up, down; /* the current endpoint's fate, for qp_connect() */
	bool grants;   /* the transport makes per-command windows (docs/SECURITY.md) */
	int fail_status;
	/*
	 * in_connect: qp_connect() runs (admin commands take the reserve slot,
	 * polls do no upkeep). lost: waiting to reconnect, commands queue.
	 * failed: for good. abandon: we took the endpoint down on purpose.
	 */
	bool in_connect, lost, failed, abandon, ka_out;
	uint64_t last_rx, last_poll; /* ms: something heard from the target; upkeep ran */
	uint64_t lost_at, next_try;  /* ms */
	uint32_t backoff_ms, reconnects;
	uint32_t depth, outstanding, max_inline;
	uint32_t max_cpl_data; /* largest read answered in its completion; 0: none */
	bool cpl_imm;	       /* larger reads are answered by their data's WRITE */
	struct wf_slot *slots; /* depth of them for I/O, then the reserve slot */
	struct wf_slot *free;
	uint8_t *capsules;
	uint64_t token;	    /* the session's, carried by every command; 0 without a secret */
	uint8_t *admin_buf; /* registered scratch for IDENTIFY and LIST_VOLUMES answers */
	struct wf_mr *admin_mr;
};

struct wf_vol {
	struct wf_qp *qp;
	struct wf_vol_info info;
};

/*
 * Queue command @c (cid, version and token are filled here), with its data
 * inline or in the buffer c->data names inside @data_mr, which the target
 * then reaches through a window for this command only. @cached, if any, is
 * put back into the registration cache when the command completes.
 */
int wf_qp_send_cmd(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data,
		   struct wf_mr *data_mr, struct wf_mr *cached, wf_io_cb cb, void *arg);

/* Registration flags for memory the target will reach: windows if we have them. */
unsigned wf_qp_reg_access(const struct wf_qp *qp);

/* A synchronous caller's wait: set by wf_lib_wait_done() from the I/O callback. */
struct wf_lib_wait {
	bool done;
	int status;
};

/* The wf_io_cb of a struct wf_lib_wait. */
void wf_lib_wait_done(void *arg, int status);

/* Monotonic milliseconds, for the deadlines of synchronous calls. */
uint64_t wf_lib_now_ms(void);

/* Run an admin command to completion within the host's timeout. */
int wf_qp_admin(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data);

/* wf_qp_admin(), also returning the completion's result in *@result. */
int wf_qp_admin_result(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data,
		       uint64_t *result);

/* After CONNECT answered @connect_result: authenticate if either side has a secret. */
int wf_qp_auth(struct wf_qp *qp, uint64_t connect_result);

/* Take @qp down for good: a command given up on may still be touched by the target. */
void wf_qp_take_down(struct wf_qp *qp);

#endif /* WF_INITIATOR_LIB_PRIV_H */
