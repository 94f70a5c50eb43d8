// SPDX-License-Identifier: MIT
/*
 * A verbs poll group: one CQ and one SRQ shared by all its endpoints, one
 * rdma_cm event channel for their connection events, and the loop that
 * drives them. Everything here runs on the group's one thread.
 */
#include "transport/verbs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <numa.h>

/* Completions taken per ibv_poll_cq call, and batches per poll before yielding. */
#define CQ_BATCH   32
#define CQ_BATCHES 8
/* CQ events are acked in bunches: each ack takes a lock inside libibverbs. */
#define CQ_ACK_EVERY 64

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void *numa_zalloc(int node, size_t len)
{
	void *p;

	if (node >= 0) {
		p = numa_alloc_onnode(len, node);
		if (p)
			memset(p, 0, len);
		return p;
	}
	if (posix_memalign(&p, 4096, len))
		return NULL;
	memset(p, 0, len);
	return p;
}

static void numa_zfree(int node, void *p, size_t len)
{
	if (!p)
		return;
	if (node >= 0)
		numa_free(p, len);
	else
		free(p);
}

static void rx_release(struct wf_rx_impl *r)
{
	struct wf_verbs_rx *rx = wf_container_of(r, struct wf_verbs_rx, base);
	struct wf_verbs_pg *pg = rx->pg;

	/* Reposted together, ahead of the poll's SENDs (flush_dirty): one post for many. */
	rx->wr.next = pg->repost;
	pg->repost = &rx->wr;
}

static int repost_rx(struct wf_verbs_pg *pg)
{
	struct ibv_recv_wr *bad;
	int ret;

	if (!pg->repost)
		return 0;
	ret = ibv_post_srq_recv(pg->srq, pg->repost, &bad);
	pg->repost = NULL;
	if (ret)
		wf_log_err(wf_verbs_log(pg), "verbs: reposting receive buffers failed: %s",
			   strerror(ret));
	return ret ? -ret : 0;
}

static size_t rx_buf_len(struct wf_verbs_pg *pg)
{
	return (size_t)pg->t->base.opts.srq_depth * pg->t->base.opts.capsule_size;
}

static int rx_setup(struct wf_verbs_pg *pg)
{
	const struct wf_transport_opts *o = &pg->t->base.opts;

	pg->rx = calloc(o->srq_depth, sizeof(*pg->rx));
	pg->rx_buf = numa_zalloc(pg->t->numa_node, rx_buf_len(pg));
	if (!pg->rx || !pg->rx_buf)
		return -ENOMEM;
	pg->rx_mr = ibv_reg_mr(pg->t->pd, pg->rx_buf, rx_buf_len(pg), IBV_ACCESS_LOCAL_WRITE);
	if (!pg->rx_mr)
		return -errno;
	for (uint32_t i = 0; i < o->srq_depth; i++) {
		struct wf_verbs_rx *rx = &pg->rx[i];

		rx->pg = pg;
		rx->base.release = rx_release;
		rx->base.rx.data = pg->rx_buf + (size_t)i * o->capsule_size;
		rx->sge = (struct ibv_sge){.addr = (uintptr_t)rx->base.rx.data,
					   .length = o->capsule_size,
					   .lkey = pg->rx_mr->lkey};
		rx->wr = (struct ibv_recv_wr){
		    .wr_id = (uintptr_t)rx | WF_VERBS_TAG_RECV, .sg_list = &rx->sge, .num_sge = 1};
		rx_release(&rx->base);
	}
	return repost_rx(pg);
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int queues_setup(struct wf_verbs_pg *pg)
{
	struct wf_verbs_transport *t = pg->t;
	struct ibv_srq_init_attr sa = {.attr = {.max_sge = 1}};
	int ret;

	pg->ec = rdma_create_event_channel();
	pg->cc = ibv_create_comp_channel(t->verbs);
	if (!pg->ec || !pg->cc)
		return -errno;
	ret = set_nonblock(pg->ec->fd);
	if (!ret)
		ret = set_nonblock(pg->cc->fd);
	if (ret)
		return ret;
	/* Room for every receive plus every endpoint's send queue; see admission in cm. */
	pg->cq_size = t->attr.max_cqe;
	pg->cq_used = (int)t->base.opts.srq_depth;
	pg->cq = ibv_create_cq(t->verbs, pg->cq_size, pg, pg->cc, 0);
	if (!pg->cq)
		return -errno;
	sa.attr.max_wr = t->base.opts.srq_depth;
	if ((int)sa.attr.max_wr > t->attr.max_srq_wr)
		return -EINVAL;
	pg->srq = ibv_create_srq(t->pd, &sa);
	if (!pg->srq)
		return -errno;
	pg->epfd = epoll_create1(EPOLL_CLOEXEC);
	pg->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pg->epfd < 0 || pg->kickfd < 0)
		return -errno;
	ret = epoll_add(pg->epfd, pg->cc->fd);
	if (!ret)
		ret = epoll_add(pg->epfd, pg->ec->fd);
	if (!ret)
		ret = epoll_add(pg->epfd, pg->kickfd);
	return ret;
}

static void queues_teardown(struct wf_verbs_pg *pg)
{
	if (pg->epfd > 0)
		close(pg->epfd);
	if (pg->kickfd > 0)
		close(pg->kickfd);
	if (pg->handoff_init)
		pthread_mutex_destroy(&pg->handoff_lock);
	if (pg->srq)
		ibv_destroy_srq(pg->srq);
	if (pg->cq) {
		ibv_ack_cq_events(pg->cq, pg->unacked_cq_events);
		ibv_destroy_cq(pg->cq);
	}
	if (pg->cc)
		ibv_destroy_comp_channel(pg->cc);
	if (pg->ec)
		rdma_destroy_event_channel(pg->ec);
}

static void pg_free(struct wf_verbs_pg *pg)
{
	if (pg->rx_mr)
		ibv_dereg_mr(pg->rx_mr);
	queues_teardown(pg);
	numa_zfree(pg->t->numa_node, pg->rx_buf, rx_buf_len(pg));
	free(pg->rx);
	free(pg->qpn_slot);
	free(pg->listeners);
	free(pg);
}

int wf_verbs_pg_create(struct wf_transport *tt, struct wf_poll_group **out)
{
	struct wf_verbs_transport *t = wf_container_of(tt, struct wf_verbs_transport, base);
	struct wf_verbs_pg *pg;
	int ret;

	/* The group's thread and its buffers belong near the device. */
	if (t->numa_node >= 0)
		numa_run_on_node(t->numa_node);
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->base.transport = tt;
	pg->t = t;
	pg->epfd = -1;
	pg->kickfd = -1;
	pg->handoff_tail = &pg->handoff;
	ret = -pthread_mutex_init(&pg->handoff_lock, NULL);
	pg->handoff_init = !ret;
	if (!ret)
		ret = queues_setup(pg);
	if (!ret)
		ret = rx_setup(pg);
	if (ret) {
		wf_log_err(tt->opts.log, "verbs: poll group setup failed: %s", strerror(-ret));
		pg_free(pg);
		return ret;
	}
	*out = &pg->base;
	return 0;
}

void wf_verbs_pg_unlink(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep)
{
	struct wf_verbs_ep **pp;

	for (pp = &pg->eps; *pp; pp = &(*pp)->next) {
		if (*pp == ep) {
			*pp = ep->next;
			break;
		}
	}
	for (pp = &pg->dirty; *pp; pp = &(*pp)->next_dirty) {
		if (*pp == ep) {
			*pp = ep->next_dirty;
			break;
		}
	}
}

void wf_verbs_pg_hand(struct wf_verbs_pg *pg, struct wf_verbs_accept *a)
{
	uint64_t one = 1;

	a->next = NULL;
	pthread_mutex_lock(&pg->handoff_lock);
	*pg->handoff_tail = a;
	pg->handoff_tail = &a->next;
	pthread_mutex_unlock(&pg->handoff_lock);
	if (write(pg->kickfd, &one, sizeof(one)) != sizeof(one))
		wf_log_err(wf_verbs_log(pg), "verbs: cannot wake a poll group: %s",
			   strerror(errno));
}

/* Accept, on this thread, what other groups' listeners handed over; how many. */
static int take_handoffs(struct wf_verbs_pg *pg)
{
	struct wf_verbs_accept *list, *a;
	int n = 0;

	pthread_mutex_lock(&pg->handoff_lock);
	list = pg->handoff;
	pg->handoff = NULL;
	pg->handoff_tail = &pg->handoff;
	pthread_mutex_unlock(&pg->handoff_lock);
	while ((a = list)) {
		list = a->next;
		wf_verbs_cm_accept(pg, a);
		free(a);
		n++;
	}
	return n;
}

/*
 * The device's asynchronous events (a QP gone fatal, a port down) say why a
 * QP broke when no completion does: log them. The fd is non-blocking.
 */
static void async_events(struct wf_verbs_pg *pg)
{
	struct ibv_async_event ev;

	while (ibv_get_async_event(pg->t->verbs, &ev) == 0) {
		if ((ev.event_type >= IBV_EVENT_QP_FATAL &&
		     ev.event_type <= IBV_EVENT_PATH_MIG_ERR) ||
		    ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED)
			wf_log_warn(wf_verbs_log(pg), "verbs: QP %u: %s", ev.element.qp->qp_num,
				    ibv_event_type_str(ev.event_type));
		else
			wf_log_warn(wf_verbs_log(pg), "verbs: device event: %s",
				    ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
}

/* Handoffs first: their CM events already arrive on our channel. */
static int cm_round(struct wf_verbs_pg *pg)
{
	int n = take_handoffs(pg);

	async_events(pg);
	return n + wf_verbs_cm_process(pg);
}

static uint32_t qpn_home(const struct wf_verbs_pg *pg, uint32_t qp_num)
{
	return (qp_num * 2654435761u) & pg->qpn_mask;
}

static void qpn_place(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep)
{
	uint32_t i = qpn_home(pg, ep->qp->qp_num);

	while (pg->qpn_slot[i])
		i = (i + 1) & pg->qpn_mask;
	pg->qpn_slot[i] = ep;
}

/* Rebuild the index at @cap slots from the endpoints that have a QP. */
static int qpn_grow(struct wf_verbs_pg *pg, uint32_t cap)
{
	struct wf_verbs_ep **slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	free(pg->qpn_slot);
	pg->qpn_slot = slot;
	pg->qpn_mask = cap - 1;
	pg->qpn_count = 0;
	for (struct wf_verbs_ep *ep = pg->eps; ep; ep = ep->next) {
		if (ep->qp) {
			qpn_place(pg, ep);
			pg->qpn_count++;
		}
	}
	return 0;
}

int wf_verbs_pg_map_qp(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep)
{
	uint32_t cap = pg->qpn_mask + 1;

	/* At most half full, so probes stay short; growing indexes @ep with the rest. */
	if (!pg->qpn_slot || 2 * (pg->qpn_count + 1) > cap)
		return qpn_grow(pg, pg->qpn_slot ? 2 * cap : 16);
	qpn_place(pg, ep);
	pg->qpn_count++;
	return 0;
}

void wf_verbs_pg_unmap_qp(struct wf_verbs_pg *pg, struct wf_verbs_ep *ep)
{
	uint32_t i = qpn_home(pg, ep->qp->qp_num);

	while (pg->qpn_slot[i] && pg->qpn_slot[i] != ep)
		i = (i + 1) & pg->qpn_mask;
	if (!pg->qpn_slot[i])
		return;
	pg->qpn_slot[i] = NULL;
	pg->qpn_count--;
	/* Place the rest of the probe cluster again so no lookup stops at the hole. */
	for (i = (i + 1) & pg->qpn_mask; pg->qpn_slot[i]; i = (i + 1) & pg->qpn_mask) {
		struct wf_verbs_ep *moved = pg->qpn_slot[i];

		pg->qpn_slot[i] = NULL;
		qpn_place(pg, moved);
	}
}

/* The endpoint whose QP has @qp_num: one hashed probe per completion. */
static struct wf_verbs_ep *ep_by_qpn(struct wf_verbs_pg *pg, uint32_t qp_num)
{
	if (!pg->qpn_slot)
		return NULL;
	for (uint32_t i = qpn_home(pg, qp_num); pg->qpn_slot[i]; i = (i + 1) & pg->qpn_mask)
		if (pg->qpn_slot[i]->qp->qp_num == qp_num)
			return pg->qpn_slot[i];
	return NULL;
}

static void recv_done(struct wf_verbs_pg *pg, struct ibv_wc *wc)
{
	struct wf_verbs_rx *rx =
	    (struct wf_verbs_rx *)(uintptr_t)(wc->wr_id & ~(uint64_t)WF_VERBS_TAG_BITS);
	struct wf_verbs_ep *ep = ep_by_qpn(pg, wc->qp_num);

	if (wc->status != IBV_WC_SUCCESS) {
		rx_release(&rx->base);
		/* Flushes follow a QP error that the send side reports; others are news. */
		if (ep && wc->status != IBV_WC_WR_FLUSH_ERR) {
			wf_log_warn(wf_verbs_log(pg), "verbs: receive failed on QP %u: %s",
				    wc->qp_num, ibv_wc_status_str(wc->status));
			wf_verbs_ep_fail(ep, -EIO);
		}
		return;
	}
	if (ep && ep->state == WF_VERBS_EP_ACCEPTING) {
		/* The first capsule can beat the ESTABLISHED event; it proves the link. */
		ep->state = WF_VERBS_EP_CONNECTED;
		ep->announced = true;
		ep->base.h->event(&ep->base, WF_EP_CONNECTED, 0);
	}
	/* Received before the peer hung up (the drain WR is still to come): deliver it. */
	if (!ep || (ep->state != WF_VERBS_EP_CONNECTED &&
		    !(ep->state == WF_VERBS_EP_DRAINING && ep->announced))) {
		rx_release(&rx->base);
		return;
	}
	/* A WRITE's immediate brings no capsule: its bytes went where it named. */
	rx->base.rx.len = wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM ? 0 : wc->byte_len;
	rx->base.rx.inv_key = wc->wc_flags & pg->t->wc_inv_flags ? wc->invalidated_rkey : 0;
	rx->base.rx.has_imm = wc->wc_flags & IBV_WC_WITH_IMM;
	rx->base.rx.imm = rx->base.rx.has_imm ? be32toh(wc->imm_data) : 0;
	pg->base.arrivals++;
	ep->base.h->recv(&ep->base, &rx->base.rx);
}

static void send_done(struct wf_verbs_pg *pg, struct ibv_wc *wc)
{
	struct wf_verbs_ep *ep;

	if ((wc->wr_id & WF_VERBS_TAG_MASK) == WF_VERBS_TAG_DRAIN)
		ep = (struct wf_verbs_ep *)(uintptr_t)(wc->wr_id & ~(uint64_t)WF_VERBS_TAG_BITS);
	else
		ep = ep_by_qpn(pg, wc->qp_num);
	if (!ep) {
		wf_log_warn(wf_verbs_log(pg), "verbs: completion for unknown QP %u", wc->qp_num);
		return;
	}
	if (wc->status != IBV_WC_SUCCESS)
		wf_log_debug(wf_verbs_log(pg),
			     "verbs: QP %u: send-side %s, vendor error 0x%x, tag %u", wc->qp_num,
			     ibv_wc_status_str(wc->status), wc->vendor_err,
			     (unsigned)(wc->wr_id & WF_VERBS_TAG_MASK));
	wf_verbs_ep_send_done(ep, wc->wr_id, wc->status);
}

static int poll_cq(struct wf_verbs_pg *pg)
{
	struct ibv_wc wc[CQ_BATCH];
	int total = 0;

	for (int b = 0; b < CQ_BATCHES; b++) {
		int n = ibv_poll_cq(pg->cq, CQ_BATCH, wc);

		if (n < 0)
			return -EIO;
		for (int i = 0; i < n; i++) {
			if ((wc[i].wr_id & WF_VERBS_TAG_MASK) == WF_VERBS_TAG_RECV)
				recv_done(pg, &wc[i]);
			else
				send_done(pg, &wc[i]);
		}
		total += n;
		if (n < CQ_BATCH)
			break;
	}
	return total;
}

/*
 * Receives go back before the SENDs go out. A target releases a command's
 * buffer as it queues the completion, and over rxe a SEND is delivered
 * inside its post: a host can answer a completion with a new command before
 * this function returns. Posted in the other order, that command could find
 * the shared receive queue empty even with a buffer for every command the
 * hosts may have out, and the RNR retry that follows breaks rxe's windows
 * (docs/SECURITY.md).
 */
static int flush_dirty(struct wf_verbs_pg *pg)
{
	struct wf_verbs_ep *list = pg->dirty, *ep;
	int ret = repost_rx(pg);

	pg->dirty = NULL;
	while ((ep = list)) {
		list = ep->next_dirty;
		ep->next_dirty = NULL;
		ep->dirty = false;
		wf_verbs_ep_flush(ep);
	}
	return ret;
}

static void drain_cq_events(struct wf_verbs_pg *pg)
{
	struct ibv_cq *cq;
	void *ctx;

	while (ibv_get_cq_event(pg->cc, &cq, &ctx) == 0)
		pg->unacked_cq_events++;
	if (pg->unacked_cq_events >= CQ_ACK_EVERY) {
		ibv_ack_cq_events(pg->cq, pg->unacked_cq_events);
		pg->unacked_cq_events = 0;
	}
}

static bool has_connecting(struct wf_verbs_pg *pg, uint64_t *deadline)
{
	bool any = false;

	for (struct wf_verbs_ep *ep = pg->eps; ep; ep = ep->next) {
		if (ep->deadline_ns && (!any || ep->deadline_ns < *deadline)) {
			*deadline = ep->deadline_ns;
			any = true;
		}
	}
	return any;
}

/* Ask for an event at the next completion, and reap what came before the ask, which raised none. */
static int arm_cq(struct wf_verbs_pg *pg)
{
	if (ibv_req_notify_cq(pg->cq, 0))
		return -EIO;
	return poll_cq(pg);
}

/*
 * Take what makes the group's fd readable, waiting up to @timeout_ms for it:
 * CQ events are acked, a kick is read, and a kick or the CM channel has the
 * next poll look at connection events. Anything left would keep the fd
 * readable, and an outside loop sleeping on it would spin.
 */
static int take_wakeups(struct wf_verbs_pg *pg, int timeout_ms)
{
	struct epoll_event ev[3];
	uint64_t kicks;
	int n;

	n = epoll_wait(pg->epfd, ev, 3, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == pg->cc->fd) {
			drain_cq_events(pg);
			continue;
		}
		if (ev[i].data.fd == pg->kickfd && read(pg->kickfd, &kicks, sizeof(kicks)) < 0 &&
		    errno != EAGAIN)
			return -errno;
		pg->cm_due = true;
	}
	return 0;
}

/* Sleep until the CQ or the CM channel has something, or @timeout_ms passes. */
static int wait_for_work(struct wf_verbs_pg *pg, int timeout_ms)
{
	uint64_t deadline = 0, now;
	int n;

	n = arm_cq(pg);
	if (n)
		return n;
	if (has_connecting(pg, &deadline)) {
		now = wf_now_ns();
		int until = deadline > now ? (int)((deadline - now) / 1000000u) + 1 : 0;

		if (timeout_ms < 0 || until < timeout_ms)
			timeout_ms = until;
	}
	return take_wakeups(pg, timeout_ms);
}

/* Whether to look at the CM channel now: two system calls, so now and then only. */
static bool cm_look(struct wf_verbs_pg *pg)
{
	if (!wf_look_due(&pg->cm_look, pg->cm_due))
		return false;
	pg->cm_due = false;
	return true;
}

int wf_verbs_pg_poll(struct wf_poll_group *p, int timeout_ms)
{
	struct wf_verbs_pg *pg = wf_verbs_pg(p);
	int n, ret;

	/*
	 * Work posted since the last poll goes out before the CQ is read, not
	 * after: a lone command or ping rings its doorbell one CQ read sooner.
	 * Work the completions below post still shares one doorbell.
	 */
	if (pg->dirty) {
		ret = flush_dirty(pg);
		if (ret)
			return ret;
	}
	n = poll_cq(pg);
	if (n < 0)
		return n;
	/* Connection events are rare and cost two syscalls: look now and then. */
	if (cm_look(pg)) {
		n += cm_round(pg);
		n += wf_verbs_cm_expire(pg, pg->cm_look.seen_ns);
	}
	ret = flush_dirty(pg);
	if (ret)
		return ret;
	if (n > 0 || timeout_ms == 0)
		return n;

	ret = wait_for_work(pg, timeout_ms);
	if (ret < 0)
		return ret;
	n = ret;
	if (cm_look(pg))
		n += cm_round(pg);
	n += poll_cq(pg);
	n += wf_verbs_cm_expire(pg, wf_now_ns());
	ret = flush_dirty(pg);
	return ret ? ret : n;
}

int wf_verbs_pg_arm(struct wf_poll_group *p)
{
	struct wf_verbs_pg *pg = wf_verbs_pg(p);
	int n, ret;

	/*
	 * What woke the caller is taken, so the fd is quiet until new work. A
	 * handoff or a connection event is work: poll for it, do not sleep.
	 */
	n = take_wakeups(pg, 0);
	if (n < 0)
		return n;
	if (pg->cm_due)
		return 1;
	n = arm_cq(pg);
	if (n < 0)
		return n;
	ret = flush_dirty(pg);
	return ret ? ret : n;
}

int wf_verbs_pg_fd(struct wf_poll_group *p)
{
	return wf_verbs_pg(p)->epfd;
}

void wf_verbs_pg_destroy(struct wf_poll_group *p)
{
	struct wf_verbs_pg *pg = wf_verbs_pg(p);
	uint64_t give_up = wf_now_ns() + 5000000000ull;

	while (pg->nlisteners)
		wf_verbs_listener_close(&pg->listeners[0]->base);
	/* Handed-over connections are ours: accept them so their handlers hear the end. */
	take_handoffs(pg);
	for (struct wf_verbs_ep *ep = pg->eps; ep; ep = ep->next)
		wf_verbs_ep_fail(ep, -ECONNRESET);
	/* Let the drains complete so every handler runs and every QP is freed. */
	while (pg->eps && wf_now_ns() < give_up)
		if (wf_verbs_pg_poll(p, 100) < 0)
			break;
	if (pg->eps)
		wf_log_err(wf_verbs_log(pg), "verbs: endpoints did not drain; leaking them");
	pg_free(pg);
}
