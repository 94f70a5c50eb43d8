// SPDX-License-Identifier: MIT
/*
 * Verbs endpoints: posting xfers in batches (one doorbell per batch), READ
 * credits, and teardown. A torn-down QP is drained before it is freed: a
 * drain WR posted after the QP went to error comes back last, so when it
 * does, the device holds no more of our memory.
 */
#include "transport/verbs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* xfer->status_ bits while the transport owns the xfer. */
#define XFER_STAGED 1

static void list_push(struct wf_xfer_list *l, struct wf_xfer *x)
{
	x->next_ = NULL;
	if (l->tail)
		l->tail->next_ = x;
	else
		l->head = x;
	l->tail = x;
}

static struct wf_xfer *list_pop(struct wf_xfer_list *l)
{
	struct wf_xfer *x = l->head;

	if (x) {
		l->head = x->next_;
		if (!l->head)
			l->tail = NULL;
		x->next_ = NULL;
	}
	return x;
}

static int wc_errno(enum ibv_wc_status status)
{
	switch (status) {
	case IBV_WC_SUCCESS:
		return 0;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR:
		return -EACCES;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return -ETIMEDOUT;
	case IBV_WC_WR_FLUSH_ERR:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

struct wf_verbs_ep *wf_verbs_ep_alloc(struct wf_verbs_pg *pg, bool active)
{
	struct wf_verbs_ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	ep->pg = pg;
	ep->base.pg = &pg->base;
	ep->state = active ? WF_VERBS_EP_RESOLVING : WF_VERBS_EP_ACCEPTING;
	ep->next = pg->eps;
	pg->eps = ep;
	return ep;
}

int wf_verbs_ep_create_qp(struct wf_verbs_ep *ep, uint32_t queue_depth)
{
	struct wf_verbs_pg *pg = ep->pg;
	const struct ibv_device_attr *a = &pg->t->attr;
	/*
	 * Per command a data WR (or a window's bind) and the SEND, plus the drain
	 * and a spare; more waits in the pending list, so this is a capacity,
	 * not a limit on what the caller may post.
	 */
	uint32_t sq = queue_depth * 2 + 2;
	struct ibv_qp_init_attr qa = {
	    .send_cq = pg->cq,
	    .recv_cq = pg->cq,
	    .srq = pg->srq,
	    .qp_type = IBV_QPT_RC,
	    .cap = {.max_send_sge = 1, .max_inline_data = WF_VERBS_INLINE},
	};

	if ((int)sq > a->max_qp_wr)
		sq = (uint32_t)a->max_qp_wr;
	if (pg->cq_used + (int)sq > pg->cq_size)
		return -EBUSY;
	qa.cap.max_send_wr = sq;
	if (rdma_create_qp(ep->id, pg->t->pd, &qa)) {
		/* Not every device does inline sends; fall back to none. */
		qa.cap.max_inline_data = 0;
		if (rdma_create_qp(ep->id, pg->t->pd, &qa))
			return -errno;
	}
	ep->qp = ep->id->qp;
	if (wf_verbs_pg_map_qp(pg, ep)) {
		rdma_destroy_qp(ep->id);
		ep->qp = NULL;
		return -ENOMEM;
	}
	ep->sq_max = qa.cap.max_send_wr - 1;
	ep->max_inline = qa.cap.max_inline_data;
	ep->cq_share = sq;
	pg->cq_used += (int)sq;
	return 0;
}

void wf_verbs_ep_mark_dirty(struct wf_verbs_ep *ep)
{
	if (ep->dirty)
		return;
	ep->dirty = true;
	ep->next_dirty = ep->pg->dirty;
	ep->pg->dirty = ep;
}

void wf_verbs_grant_unbind(struct wf_verbs_grant *g)
{
	int ret;

	if (g->ep) {
		struct wf_verbs_grant **p = &g->ep->grants;

		while (*p != g)
			p = &(*p)->ep_next;
		*p = g->ep_next;
		g->ep = NULL;
	}
	if (!g->mw)
		return;
	/* Freeing a bound window also releases the QP it holds. */
	ret = ibv_dealloc_mw(g->mw);
	if (ret)
		wf_log_warn(g->base.transport->opts.log, "verbs: memory window not freed: %s",
			    strerror(ret));
	g->mw = NULL;
}

void wf_verbs_ep_drop_grants(struct wf_verbs_ep *ep)
{
	while (ep->grants)
		wf_verbs_grant_unbind(ep->grants);
}

/*
 * A grant gets its next key now, for the caller's capsule. A window last
 * bound on another endpoint's QP may still be bound there (QPs die
 * asynchronously), so it is swapped for a fresh one: reconnects only.
 */
static int grant_prepare(struct wf_verbs_ep *ep, struct wf_verbs_grant *g)
{
	if (g->ep != ep)
		wf_verbs_grant_unbind(g);
	if (!g->mw) {
		g->mw = ibv_alloc_mw(ep->pg->t->pd, IBV_MW_TYPE_2);
		if (!g->mw)
			return errno ? -errno : -ENOMEM;
		g->base.key = g->mw->rkey;
	}
	if (!g->ep) {
		g->ep = ep;
		g->ep_next = ep->grants;
		ep->grants = g;
	}
	g->base.key = ibv_inc_rkey(g->base.key);
	return 0;
}

int wf_verbs_post(struct wf_ep *e, struct wf_xfer *x)
{
	struct wf_verbs_ep *ep = wf_verbs_ep(e);

	if (ep->state != WF_VERBS_EP_CONNECTED)
		return -ENOTCONN;
	if (x->op == WF_XFER_GRANT) {
		int ret = grant_prepare(ep, wf_container_of(x->grant, struct wf_verbs_grant, base));

		if (ret)
			return ret;
	}
	/* A window bound on another QP died with it, or will: nothing here to end. */
	if (x->op == WF_XFER_REVOKE &&
	    wf_container_of(x->grant, struct wf_verbs_grant, base)->ep != ep)
		return -EINVAL;
	x->status_ = 0;
	list_push(&ep->pending, x);
	wf_verbs_ep_mark_dirty(ep);
	return 0;
}

/* Copy an unregistered SEND into the staging ring; false when the ring is full. */
static bool stage(struct wf_verbs_ep *ep, struct wf_xfer *x, struct ibv_sge *sge)
{
	uint32_t cap = ep->base.params.capsule_size, slot;

	if (!ep->stage) {
		ep->stage_slots = ep->base.params.queue_depth ? ep->base.params.queue_depth : 1;
		ep->stage = malloc((size_t)ep->stage_slots * cap);
		if (!ep->stage)
			return false;
		ep->stage_mr = ibv_reg_mr(ep->pg->t->pd, ep->stage, (size_t)ep->stage_slots * cap,
					  IBV_ACCESS_LOCAL_WRITE);
		if (!ep->stage_mr) {
			free(ep->stage);
			ep->stage = NULL;
			return false;
		}
	}
	if (ep->stage_used == ep->stage_slots)
		return false;
	slot = (ep->stage_head + ep->stage_used++) % ep->stage_slots;
	memcpy(ep->stage + (size_t)slot * cap, x->buf, x->len);
	*sge = (struct ibv_sge){.addr = (uintptr_t)(ep->stage + (size_t)slot * cap),
				.length = x->len,
				.lkey = ep->stage_mr->lkey};
	x->status_ |= XFER_STAGED;
	return true;
}

static void unstage(struct wf_verbs_ep *ep, struct wf_xfer *x)
{
	if (!(x->status_ & XFER_STAGED))
		return;
	ep->stage_head = (ep->stage_head + 1) % ep->stage_slots;
	ep->stage_used--;
}

/* Bind the grant's window over @x's memory, for the QP this WR goes on only. */
static void build_bind(struct wf_xfer *x, struct ibv_send_wr *wr)
{
	struct wf_verbs_grant *g = wf_container_of(x->grant, struct wf_verbs_grant, base);
	unsigned flags = 0;

	if (x->access & WF_ACCESS_REMOTE_READ)
		flags |= IBV_ACCESS_REMOTE_READ;
	if (x->access & WF_ACCESS_REMOTE_WRITE)
		flags |= IBV_ACCESS_REMOTE_WRITE;
	wr->opcode = IBV_WR_BIND_MW;
	wr->sg_list = NULL;
	wr->num_sge = 0;
	wr->bind_mw.mw = g->mw;
	wr->bind_mw.rkey = g->base.key;
	wr->bind_mw.bind_info = (struct ibv_mw_bind_info){
	    .mr = wf_container_of(x->mr, struct wf_verbs_mr, base)->mr,
	    .addr = (uintptr_t)x->buf,
	    .length = x->len,
	    .mw_access_flags = flags,
	};
}

/* Fill @wr for @x; false if @x must wait (no staging room). */
static bool build_wr(struct wf_verbs_ep *ep, struct wf_xfer *x, struct ibv_send_wr *wr,
		     struct ibv_sge *sge)
{
	*wr = (struct ibv_send_wr){.sg_list = sge, .num_sge = 1};
	*sge = (struct ibv_sge){.addr = (uintptr_t)x->buf, .length = x->len};
	if (x->mr)
		sge->lkey = wf_container_of(x->mr, struct wf_verbs_mr, base)->mr->lkey;
	switch (x->op) {
	case WF_XFER_GRANT:
		build_bind(x, wr);
		break;
	case WF_XFER_REVOKE:
		wr->opcode = IBV_WR_LOCAL_INV;
		wr->sg_list = NULL;
		wr->num_sge = 0;
		wr->invalidate_rkey = x->grant->key;
		break;
	case WF_XFER_SEND:
		wr->opcode = x->inv_key	   ? IBV_WR_SEND_WITH_INV
			     : x->with_imm ? IBV_WR_SEND_WITH_IMM
					   : IBV_WR_SEND;
		if (x->inv_key)
			wr->invalidate_rkey = x->inv_key;
		else
			wr->imm_data = htobe32(x->imm);
		if (x->len <= ep->max_inline)
			wr->send_flags |= IBV_SEND_INLINE;
		else if (!x->mr && !stage(ep, x, sge))
			return false;
		break;
	case WF_XFER_READ:
		wr->opcode = IBV_WR_RDMA_READ;
		break;
	case WF_XFER_WRITE:
		wr->opcode = x->with_imm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
		wr->imm_data = htobe32(x->imm);
		break;
	}
	if (x->op == WF_XFER_READ || x->op == WF_XFER_WRITE) {
		wr->wr.rdma.remote_addr = x->remote.addr;
		wr->wr.rdma.rkey = x->remote.key;
	}
	/*
	 * Unsignaled WRs hold their slots until a signaled one after them
	 * completes; ask for a completion halfway through a run of them so the
	 * send queue never fills with nothing to drain it. Its done may be NULL.
	 */
	if (x->done || ep->unsig_run >= ep->sq_max / 2) {
		wr->send_flags |= IBV_SEND_SIGNALED;
		wr->wr_id = (uintptr_t)x | WF_VERBS_TAG_XFER;
		ep->unsig_run = 0;
	} else {
		wr->wr_id = (uintptr_t)x | WF_VERBS_TAG_UNSIG;
		ep->unsig_run++;
	}
	return true;
}

static int ring(struct wf_verbs_ep *ep, struct ibv_send_wr *wr, int n)
{
	struct ibv_send_wr *bad;
	int ret;

	for (int i = 0; i + 1 < n; i++)
		wr[i].next = &wr[i + 1];
	wr[n - 1].next = NULL;
	ret = ibv_post_send(ep->qp, wr, &bad);
	/*
	 * The provider names a window by the rkey it has now; a type-2 bind
	 * changes it in the device only, so our copy follows once posted.
	 */
	for (int i = 0; !ret && i < n; i++)
		if (wr[i].opcode == IBV_WR_BIND_MW)
			wr[i].bind_mw.mw->rkey = wr[i].bind_mw.rkey;
	if (ret) {
		wf_log_err(wf_verbs_log(ep->pg), "verbs: post on QP %u failed: %s", ep->qp->qp_num,
			   strerror(ret));
		wf_verbs_ep_fail(ep, -EIO);
	}
	return -ret;
}

int wf_verbs_ep_flush(struct wf_verbs_ep *ep)
{
	struct ibv_send_wr wr[WF_VERBS_BATCH];
	struct ibv_sge sge[WF_VERBS_BATCH];
	struct wf_xfer *x;
	int n = 0, ret;

	while (ep->state == WF_VERBS_EP_CONNECTED && (x = ep->pending.head)) {
		if (ep->sq_used >= ep->sq_max)
			break;
		/* The peer's responder resources bound our outstanding READs. */
		if (x->op == WF_XFER_READ && ep->rd_used >= ep->rd_max)
			break;
		if (!build_wr(ep, x, &wr[n], &sge[n]))
			break;
		list_pop(&ep->pending);
		list_push(&ep->inflight, x);
		ep->sq_used++;
		ep->rd_used += x->op == WF_XFER_READ;
		if (++n == WF_VERBS_BATCH) {
			ret = ring(ep, wr, n);
			if (ret)
				return ret;
			n = 0;
		}
	}
	return n ? ring(ep, wr, n) : 0;
}

/* Retire inflight xfers up to and including @upto (all if NULL) onto @done. */
static void retire(struct wf_verbs_ep *ep, struct wf_xfer *upto, struct wf_xfer_list *done)
{
	struct wf_xfer *x;

	while ((x = list_pop(&ep->inflight))) {
		ep->sq_used--;
		if (x->op == WF_XFER_READ)
			ep->rd_used--;
		unstage(ep, x);
		list_push(done, x);
		if (x == upto)
			break;
	}
}

static void complete_all(struct wf_xfer_list *l, int status)
{
	struct wf_xfer *x;

	while ((x = list_pop(l)))
		if (x->done)
			x->done(x, status);
}

void wf_verbs_ep_send_done(struct wf_verbs_ep *ep, uint64_t wr_id, enum ibv_wc_status st)
{
	struct wf_xfer *x = (struct wf_xfer *)(uintptr_t)(wr_id & ~(uint64_t)WF_VERBS_TAG_BITS);
	struct wf_xfer_list done = {0};
	int status = wc_errno(st);

	switch (wr_id & WF_VERBS_TAG_MASK) {
	case WF_VERBS_TAG_DRAIN:
		wf_verbs_ep_finish(ep);
		return;
	case WF_VERBS_TAG_UNSIG:
		/*
		 * An unsignaled WR that failed or was flushed. It is retired with
		 * the signaled xfer after it, which must report its real cause.
		 */
		if (status && st != IBV_WC_WR_FLUSH_ERR && !ep->carried) {
			wf_log_warn(wf_verbs_log(ep->pg),
				    "verbs: QP %u: unsignaled work failed: %s", ep->qp->qp_num,
				    ibv_wc_status_str(st));
			ep->carried = status;
			wf_verbs_ep_fail(ep, status);
		}
		return;
	}
	if (!x->done) {
		/* Signaled by us, not by its caller: the next callback reports it. */
		if (status && st != IBV_WC_WR_FLUSH_ERR && !ep->carried)
			ep->carried = status;
	} else if (st == IBV_WC_WR_FLUSH_ERR && ep->carried) {
		status = ep->carried;
		ep->carried = 0;
	}
	retire(ep, x, &done);
	if (!status && x->op == WF_XFER_READ)
		ep->pg->base.arrivals++; /* the peer's data landed: work a caller waits for */
	if (status && st != IBV_WC_WR_FLUSH_ERR)
		wf_log_warn(wf_verbs_log(ep->pg), "verbs: QP %u: %s", ep->qp->qp_num,
			    ibv_wc_status_str(st));
	if (status)
		wf_verbs_ep_fail(ep, status);
	else if (ep->pending.head)
		wf_verbs_ep_mark_dirty(ep);
	complete_all(&done, status);
}

void wf_verbs_ep_fail(struct wf_verbs_ep *ep, int status)
{
	struct ibv_qp_attr qa = {.qp_state = IBV_QPS_ERR};
	struct ibv_send_wr drain = {.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED}, *bad;

	switch (ep->state) {
	case WF_VERBS_EP_RESOLVING:
	case WF_VERBS_EP_CONNECTING:
		/* Not connected yet: report it as a failed connect from the next poll. */
		ep->down_status = status ? status : -ECANCELED;
		ep->deadline_ns = 1;
		return;
	case WF_VERBS_EP_DRAINING:
	case WF_VERBS_EP_DEAD:
		return;
	case WF_VERBS_EP_ACCEPTING:
	case WF_VERBS_EP_CONNECTED:
		break;
	}
	ep->state = WF_VERBS_EP_DRAINING;
	ep->down_status = status;
	/* The peer may already be gone: neither call's failure changes what follows. */
	(void)rdma_disconnect(ep->id);
	(void)ibv_modify_qp(ep->qp, &qa, IBV_QP_STATE);
	drain.wr_id = (uintptr_t)ep | WF_VERBS_TAG_DRAIN;
	if (ibv_post_send(ep->qp, &drain, &bad)) {
		wf_log_err(wf_verbs_log(ep->pg), "verbs: cannot drain QP %u", ep->qp->qp_num);
		ep->drain_failed = true;
		ep->deadline_ns = 1;
	}
}

static void ep_free(struct wf_verbs_ep *ep)
{
	struct wf_verbs_pg *pg = ep->pg;

	wf_verbs_ep_drop_grants(ep);
	if (ep->qp) {
		wf_verbs_pg_unmap_qp(pg, ep);
		rdma_destroy_qp(ep->id);
		pg->cq_used -= (int)ep->cq_share;
	}
	if (ep->stage_mr)
		ibv_dereg_mr(ep->stage_mr);
	free(ep->stage);
	wf_verbs_pg_unlink(pg, ep);
	if (ep->id)
		rdma_destroy_id(ep->id);
	free(ep);
}

void wf_verbs_ep_finish(struct wf_verbs_ep *ep)
{
	struct wf_xfer_list done = {0};
	int status = ep->down_status ? ep->down_status : -ECONNRESET;
	struct wf_xfer *x;

	ep->state = WF_VERBS_EP_DEAD;
	retire(ep, NULL, &done);
	while ((x = list_pop(&ep->pending)))
		list_push(&done, x);
	complete_all(&done, status);
	if (ep->announced)
		ep->base.h->event(&ep->base, WF_EP_DISCONNECTED, ep->down_status);
	else
		ep->base.h->event(&ep->base, WF_EP_CONNECT_FAILED, status);
	ep_free(ep);
}

void wf_verbs_ep_connect_failed(struct wf_verbs_ep *ep, int status)
{
	ep->state = WF_VERBS_EP_DEAD;
	if (ep->base.h)
		ep->base.h->event(&ep->base, WF_EP_CONNECT_FAILED, status);
	ep_free(ep);
}

void wf_verbs_disconnect(struct wf_ep *e)
{
	wf_verbs_ep_fail(wf_verbs_ep(e), 0);
}
