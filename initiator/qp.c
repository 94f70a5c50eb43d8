// SPDX-License-Identifier: MIT
/*
 * A queue pair: one connection polled by one thread. Each command takes a
 * slot whose index is its command id; the slot is reused only once both its
 * SEND has completed and its completion capsule has arrived, which on TCP
 * may happen in either order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "initiator/lib_priv.h"

#define CACHE_BYTES (256u << 20)

static void slot_finish(struct wf_slot *s)
{
	struct wf_qp *qp = s->qp;
	wf_io_cb cb = s->cb;
	void *arg = s->arg;
	int status = s->status;

	if (s->cached)
		wf_mr_cache_put(qp->cache, s->cached);
	s->cached = NULL;
	s->result = NULL;
	s->cb = NULL;
	s->busy = false;
	s->next_free = qp->free;
	qp->free = s;
	qp->outstanding--;
	if (cb)
		cb(arg, status);
}

static void send_done(struct wf_xfer *x, int status)
{
	struct wf_slot *s = x->arg;

	s->sent = true;
	if (status && !s->answered) {
		s->answered = true;
		s->status = status;
	}
	if (s->answered)
		slot_finish(s);
}

static void qp_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct wf_qp *qp = wf_ep_ctx(ep);
	struct wf_cpl cpl;
	struct wf_slot *s;

	if (wf_cpl_decode(rx->data, rx->len, &cpl) || cpl.cid >= qp->depth ||
	    !qp->slots[cpl.cid].busy || qp->slots[cpl.cid].answered) {
		wf_log_err(&qp->host->log, "target sent a completion for no command");
		wf_rx_release(rx);
		wf_ep_disconnect(ep);
		return;
	}
	wf_rx_release(rx);
	s = &qp->slots[cpl.cid];
	s->answered = true;
	s->status = wf_status_errno(cpl.status);
	if (s->result)
		*s->result = cpl.result;
	if (s->sent)
		slot_finish(s);
}

static void qp_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct wf_qp *qp = wf_ep_ctx(ep);

	if (ev == WF_EP_CONNECTED) {
		qp->up = true;
		return;
	}
	qp->down = true;
	qp->fail_status = status ? status : -ECONNRESET;
	/* A refusal says why; "permission denied" beats "connection refused". */
	if (ev == WF_EP_CONNECT_FAILED && status == -ECONNREFUSED)
		qp->fail_status = wf_reject_reason_errno(wf_ep_reject_reason(ep));
	qp->ep = NULL;
	/* Sends have all failed by now; commands the target never answered fail here. */
	for (uint32_t i = 0; i < qp->depth; i++) {
		struct wf_slot *s = &qp->slots[i];

		if (s->sent && !s->answered) {
			s->answered = true;
			s->status = -ECONNRESET;
			slot_finish(s);
		}
	}
}

static const struct wf_ep_handlers qp_handlers = {.recv = qp_recv, .event = qp_event};

uint64_t wf_lib_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int wf_qp_send_cmd(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data,
		   struct wf_mr *cached, wf_io_cb cb, void *arg)
{
	struct wf_slot *s = qp->free;
	int rc;

	if (qp->down || !qp->ep)
		return qp->fail_status ? qp->fail_status : -ENOTCONN;
	if (!s)
		return -EAGAIN;
	c->cid = (uint16_t)(s - qp->slots);
	c->version = WF_WIRE_VERSION;
	/* AUTH_CHALLENGE's token names the session to resume; all others carry ours. */
	if (c->opcode != WF_OP_AUTH_CHALLENGE)
		c->token = qp->token;
	wf_cmd_encode(c, s->capsule);
	if (c->inline_len)
		memcpy(s->capsule + WF_CMD_SIZE, inline_data, c->inline_len);
	s->x = (struct wf_xfer){
	    .op = WF_XFER_SEND,
	    .buf = s->capsule,
	    .len = WF_CMD_SIZE + c->inline_len,
	    .done = send_done,
	    .arg = s,
	};
	rc = wf_ep_post(qp->ep, &s->x);
	if (rc)
		return rc;
	qp->free = s->next_free;
	s->cb = cb;
	s->arg = arg;
	s->cached = cached;
	s->sent = s->answered = false;
	s->busy = true;
	s->status = 0;
	qp->outstanding++;
	return 0;
}

int wf_qp_poll(struct wf_qp *qp, int timeout_ms)
{
	return wf_poll_group_poll(qp->pg, timeout_ms);
}

void wf_lib_wait_done(void *arg, int status)
{
	struct wf_lib_wait *w = arg;

	w->done = true;
	w->status = status;
}

int wf_qp_admin(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data)
{
	return wf_qp_admin_result(qp, c, inline_data, NULL);
}

int wf_qp_admin_result(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data,
		       uint64_t *result)
{
	struct wf_lib_wait w = {0};
	uint64_t deadline = wf_lib_now_ms() + (uint64_t)qp->host->opts.timeout_ms;
	bool gave_up = false;
	int rc;

	while ((rc = wf_qp_send_cmd(qp, c, inline_data, NULL, wf_lib_wait_done, &w)) == -EAGAIN)
		if (wf_qp_poll(qp, 10) < 0)
			return -EIO;
	if (rc)
		return rc;
	qp->slots[c->cid].result = result;
	while (!w.done) {
		if (wf_lib_now_ms() > deadline && !gave_up && qp->ep) {
			/* The target might still write the admin buffer: take the queue down. */
			wf_ep_disconnect(qp->ep);
			gave_up = true;
		}
		if (wf_qp_poll(qp, 10) < 0)
			return -EIO;
	}
	return gave_up ? -ETIMEDOUT : w.status;
}

static int qp_alloc(struct wf_host *h, struct wf_qp *qp)
{
	uint32_t cap = wf_transport_opts(h->transport)->capsule_size;
	int rc;

	qp->host = h;
	qp->depth = h->opts.queue_depth;
	qp->slots = calloc(qp->depth, sizeof(*qp->slots));
	qp->capsules = calloc(qp->depth, cap);
	qp->admin_buf = aligned_alloc(4096, WF_ADMIN_BUF);
	if (!qp->slots || !qp->capsules || !qp->admin_buf)
		return -ENOMEM;
	for (uint32_t i = qp->depth; i-- > 0;) {
		qp->slots[i].qp = qp;
		qp->slots[i].capsule = qp->capsules + (size_t)i * cap;
		qp->slots[i].next_free = qp->free;
		qp->free = &qp->slots[i];
	}
	rc = wf_mr_reg(h->transport, qp->admin_buf, WF_ADMIN_BUF, WF_ACCESS_REMOTE_WRITE,
		       &qp->admin_mr);
	if (rc)
		return rc;
	rc = wf_mr_cache_create(h->transport, WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE,
				CACHE_BYTES, &qp->cache);
	if (rc)
		return rc;
	return wf_poll_group_create(h->transport, &qp->pg);
}

static int qp_connect(struct wf_qp *qp)
{
	struct wf_host *h = qp->host;
	struct wf_conn_params params = {
	    .version = WF_TRANSPORT_VERSION,
	    .queue_depth = (uint16_t)qp->depth,
	    .capsule_size = wf_transport_opts(h->transport)->capsule_size,
	};
	struct wf_connect_data d = {.queue_depth = (uint16_t)qp->depth};
	uint8_t data[WF_CONNECT_DATA_SIZE];
	struct wf_cmd c = {.opcode = WF_OP_CONNECT, .inline_len = WF_CONNECT_DATA_SIZE};
	uint64_t result = 0;
	int rc;

	snprintf(params.host_id, sizeof(params.host_id), "%s", h->host_id);
	rc = wf_connect(qp->pg, h->addr, h->opts.port, &params, &qp_handlers, qp,
			h->opts.timeout_ms, &qp->ep);
	if (rc)
		return rc;
	while (!qp->up && !qp->down)
		if (wf_qp_poll(qp, 10) < 0)
			return -EIO;
	if (qp->down)
		return qp->fail_status;
	qp->max_inline = wf_ep_params(qp->ep)->capsule_size - WF_CMD_SIZE;
	snprintf(d.host, sizeof(d.host), "%s", h->host_id);
	wf_connect_data_encode(&d, data);
	rc = wf_qp_admin_result(qp, &c, data, &result);
	if (rc)
		return rc;
	return wf_qp_auth(qp, result);
}

static void qp_free(struct wf_qp *qp)
{
	if (qp->pg)
		wf_poll_group_destroy(qp->pg);
	while (qp->dma)
		wf_dma_free(qp, qp->dma->mr->addr);
	if (qp->cache)
		wf_mr_cache_destroy(qp->cache);
	if (qp->admin_mr)
		wf_mr_dereg(qp->admin_mr);
	free(qp->admin_buf);
	free(qp->capsules);
	free(qp->slots);
	free(qp);
}

int wf_qp_open(struct wf_host *h, struct wf_qp **out)
{
	struct wf_qp *qp = calloc(1, sizeof(*qp));
	int rc;

	if (!qp)
		return -ENOMEM;
	rc = qp_alloc(h, qp);
	if (!rc)
		rc = qp_connect(qp);
	if (rc) {
		wf_qp_close(qp);
		return rc;
	}
	*out = qp;
	return 0;
}

void wf_qp_close(struct wf_qp *qp)
{
	if (!qp)
		return;
	/* Destroying the poll group takes the endpoint down; its handler fails what is left. */
	qp_free(qp);
}

uint32_t wf_qp_depth(const struct wf_qp *qp)
{
	return qp->depth;
}

uint32_t wf_qp_outstanding(const struct wf_qp *qp)
{
	return qp->outstanding;
}
