/* SPDX-License-Identifier: MIT */
/*
 * Internals of the verbs transport, shared by its files: verbs_dev.c (device,
 * protection domain, registrations), verbs_pg.c (CQ, SRQ and the poll loop),
 * verbs_ep.c (posting, doorbell batching, teardown) and verbs_cm.c (rdma_cm).
 */
#ifndef WF_TRANSPORT_VERBS_H
#define WF_TRANSPORT_VERBS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "transport/transport_impl.h"

/*
 * wr_id carries a pointer with its kind in the low bits: rxe leaves
 * wc.opcode unset on error completions, so the opcode cannot say what failed.
 */
enum wf_verbs_tag {
	WF_VERBS_TAG_XFER = 0,	/* signaled xfer; pointer is the struct wf_xfer */
	WF_VERBS_TAG_RECV = 1,	/* pointer is the struct wf_verbs_rx */
	WF_VERBS_TAG_DRAIN = 2, /* pointer is the endpoint being torn down */
	WF_VERBS_TAG_UNSIG = 3, /* unsignaled WR: seen only when it fails */
	WF_VERBS_TAG_MASK = 3,
	WF_VERBS_TAG_STAGED = 4, /* a SEND whose bytes were copied into staging */
	WF_VERBS_TAG_BITS = 7,
};

/* Work requests built per doorbell; a longer queue rings more than once. */
#define WF_VERBS_BATCH 32
/* Capsules up to this size go inline when the device allows it. */
#define WF_VERBS_INLINE 256
/* Outstanding RDMA READs we ask for, capped by the device. */
#define WF_VERBS_RD_DEPTH 16

struct wf_verbs_transport {
	struct wf_transport base;
	struct ibv_context **devs; /* rdma_cm's device list: its contexts own our PD */
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	struct ibv_device_attr attr;
	int numa_node;
	unsigned wc_inv_flags; /* wc_flags that say a receive ended one of our grants */
};

/*
 * A grant is a type-2 memory window, bound to one QP at a time. Its
 * endpoint keeps it on a list, because rxe cannot destroy a QP that a
 * window is still bound to: the window is freed first (a new one is made
 * when the grant is next posted).
 */
struct wf_verbs_grant {
	struct wf_grant base;
	struct ibv_mw *mw;		/* NULL until first posted, or after its QP went */
	struct wf_verbs_ep *ep;		/* the endpoint whose QP it was last bound on */
	struct wf_verbs_grant *ep_next; /* that endpoint's list */
};

struct wf_verbs_mr {
	struct wf_mr base;
	struct ibv_mr *mr;
};

struct wf_verbs_rx {
	struct wf_rx_impl base;
	struct wf_verbs_pg *pg;
	struct ibv_sge sge;
	struct ibv_recv_wr wr;
};

enum wf_verbs_ep_state {
	WF_VERBS_EP_RESOLVING, /* active side: address and route */
	WF_VERBS_EP_CONNECTING,
	WF_VERBS_EP_ACCEPTING, /* passive side: accept sent, waiting for ESTABLISHED */
	WF_VERBS_EP_CONNECTED,
	WF_VERBS_EP_DRAINING, /* QP in error, waiting for the drain WR to flush */
	WF_VERBS_EP_DEAD,     /* on the group's reap list */
};

/* A FIFO of xfers linked through next_. */
struct wf_xfer_list {
	struct wf_xfer *head, *tail;
};

struct wf_verbs_ep {
	struct wf_ep base;
	struct wf_verbs_pg *pg;
	struct rdma_cm_id *id;
	struct ibv_qp *qp;
	enum wf_verbs_ep_state state;
	bool announced;		       /* the owner saw WF_EP_CONNECTED */
	struct wf_verbs_grant *grants; /* posted on this QP: freed before it is */
	bool dirty;		       /* on the group's list of endpoints with work to post */
	bool drain_failed;    /* no drain WR could be posted: finish from the expiry check */
	int down_status;      /* what in-flight xfers and the DISCONNECTED event report */
	int carried;	      /* an unsignaled WR's failure, for the next signaled xfer */
	uint64_t deadline_ns; /* connect timeout */

	struct wf_xfer_list pending;  /* posted by the user, not yet on the wire */
	struct wf_xfer_list inflight; /* on the send queue, in order */
	uint32_t sq_max, sq_used;     /* send queue slots, one kept for the drain WR */
	uint32_t unsig_run;	      /* unsignaled WRs since the last signaled one */
	uint32_t cq_share;	      /* CQ entries this endpoint's send queue may take */
	uint32_t rd_max, rd_used;     /* RDMA READs the peer lets us have outstanding */
	uint32_t max_inline;

	/* Staging for SENDs from unregistered memory, used and freed in SQ order. */
	uint8_t *stage;
	struct ibv_mr *stage_mr;
	uint32_t stage_slots, stage_head, stage_used;

	struct wf_verbs_ep *next; /* all endpoints of the group */
	struct wf_verbs_ep *next_dirty;
};

/*
 * A connection the listener's group approved for another group: what the
 * chosen group needs to create the QP and accept, on its own thread.
 */
struct wf_verbs_accept {
	struct wf_verbs_accept *next;
	struct rdma_cm_id *id; /* already migrated to the chosen group's channel */
	struct wf_conn_params neg;
	const struct wf_ep_handlers *h;
	void *ctx;
	uint8_t initiator_depth;
	uint8_t responder_resources;
};

struct wf_verbs_listener {
	struct wf_listener base;
	struct rdma_cm_id *id;
};

struct wf_verbs_pg {
	struct wf_poll_group base;
	struct wf_verbs_transport *t;
	struct rdma_event_channel *ec;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	struct ibv_srq *srq;
	int epfd;
	int cq_size;
	int cq_used; /* SRQ plus every endpoint's send queue: admission control */
	unsigned unacked_cq_events;
	struct wf_look cm_look; /* at the CM channel */
	bool cm_due;		/* a wake-up said it has news */

	struct wf_verbs_rx *rx;
	uint8_t *rx_buf;
	struct ibv_mr *rx_mr;
	struct ibv_recv_wr *repost; /* released receive buffers, reposted in one call */

	/* qp_num -> endpoint, for receive completions, which name only the QP. */
	struct wf_verbs_ep **qpn_slot;
	uint32_t qpn_mask, qpn_count;

	struct wf_verbs_ep *eps;
	struct wf_verbs_ep *dirty;
	struct wf_verbs_listener **listeners;
	unsigned nlisteners;

	/* Accepts other groups handed to this one; the only cross-thread state. */
	int kickfd; /* eventfd in epfd: a handoff is waiting */
	pthread_mutex_t handoff_lock;
	bool handoff_init;
	struct wf_verbs_accept *handoff, **handoff_tail;
};

static inline struct wf_verbs_pg *wf_verbs_pg(struct wf_poll_group *pg)
{
	return wf_container_of(pg, struct wf_verbs_pg, base);
}

static inline struct wf_verbs_ep *wf_verbs_ep(struct wf_ep *ep)
{
	return wf_container_of(ep, struct wf_verbs_ep, base);
}

static inline struct wf_log *wf_verbs_log(struct wf_verbs_pg *pg)
{
	return pg->t->base.opts.log;
}

/* verbs_ep.c */

/* A new endpoint of @pg for @id (NULL on the active side until resolved). */
struct wf_verbs_ep *wf_verbs_ep_alloc(struct wf_verbs_pg *pg, bool active);

/* Create the QP on @ep->id, sized for @queue_depth. */
int wf_verbs_ep_create_qp(struct wf_verbs_ep *ep, uint32_t queue_depth);

/* Post what @ep has pending, as far as the send queue and READ credits allow. */
int wf_verbs_ep_flush(struct wf_verbs_ep *ep);

/* A send-queue completion of @ep, by its wr_id kind. */
void wf_verbs_ep_send_done(struct wf_verbs_ep *ep, uint64_t wr_id, enum ibv_wc_status status);

/* Begin taking @ep down with @status (0: asked for); idempotent. */
void wf_verbs_ep_fail(struct wf_verbs_ep *ep, int status);

/* The drain WR came back: every send WR is done; report and free @ep. */
void wf_verbs_ep_finish(struct wf_verbs_ep *ep);

/* Report a failed connect and free @ep. */
void wf_verbs_ep_connect_failed(struct wf_verbs_ep *ep, int status);

/* Put @ep on its group's list of endpoints with work to post. */
void wf_verbs_ep_mark_dirty(struct wf_verbs_ep *ep);

/* verbs_pg.c */

/* Index @ep's new QP by its number, so completions find it in O(1). */
int wf_verbs_pg_map_qp(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep);

/* Drop @ep's QP from the index before the QP is destroyed. */
void wf_verbs_pg_unmap_qp(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep);

/* Remove @ep from @pg's endpoint list. */
void wf_verbs_pg_unlink(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep);

/* Queue @a for @pg (another thread's group) and wake it. */
void wf_verbs_pg_hand(struct wf_verbs_pg *pg, struct wf_verbs_accept *a);

/* verbs_cm.c */

/* Accept @a on @pg's thread: endpoint, QP on @pg's CQ and SRQ, rdma_accept. */
void wf_verbs_cm_accept(struct wf_verbs_pg *pg, struct wf_verbs_accept *a);

/* Handle every CM event waiting on @pg's channel; returns how many. */
int wf_verbs_cm_process(struct wf_verbs_pg *pg);

/* Fail connects of @pg whose deadline passed; returns how many. */
int wf_verbs_cm_expire(struct wf_verbs_pg *pg, uint64_t now_ns);

/* verbs_dev.c: the ops that concern the device and memory */
int wf_verbs_create(const struct wf_transport_opts *opts, struct wf_transport **out);
void wf_verbs_destroy(struct wf_transport *t);
int wf_verbs_mr_reg(struct wf_transport *t, void *addr, size_t len, unsigned access,
		    struct wf_mr **out);
void wf_verbs_mr_dereg(struct wf_mr *mr);
int wf_verbs_grant_create(struct wf_transport *t, struct wf_grant **out);
void wf_verbs_grant_destroy(struct wf_grant *g);
/* verbs_ep.c: free the windows bound on @ep's QP, which must not outlive them */
void wf_verbs_ep_drop_grants(struct wf_verbs_ep *ep);
/* verbs_ep.c: free @g's window and take it off its endpoint's list */
void wf_verbs_grant_unbind(struct wf_verbs_grant *g);

/* verbs_pg.c: poll-group ops */
int wf_verbs_pg_create(struct wf_transport *t, struct wf_poll_group **out);
void wf_verbs_pg_destroy(struct wf_poll_group *pg);
int wf_verbs_pg_poll(struct wf_poll_group *pg, int timeout_ms);
int wf_verbs_pg_fd(struct wf_poll_group *pg);
int wf_verbs_pg_arm(struct wf_poll_group *pg);

/* verbs_cm.c: connection ops */
int wf_verbs_listen(struct wf_poll_group *pg, const char *addr, uint16_t port,
		    struct wf_listener **out);
void wf_verbs_listener_close(struct wf_listener *l);
int wf_verbs_connect(struct wf_poll_group *pg, const char *addr, uint16_t port, int timeout_ms,
		     struct wf_ep **out);

/* verbs_ep.c: I/O ops */
int wf_verbs_post(struct wf_ep *ep, struct wf_xfer *x);
void wf_verbs_disconnect(struct wf_ep *ep);

#endif /* WF_TRANSPORT_VERBS_H */
