// SPDX-License-Identifier: MIT
/*
 * A queue pair: one connection polled by one thread. Each command takes a
 * slot whose index is its command id; the slot is reused only once both its
 * SEND has completed and its completion capsule has arrived, which on TCP
 * may happen in either order.
 *
 * A lost connection is not the caller's problem for reconnect_timeout_ms:
 * unanswered commands stay in their slots (capsule, buffer and registration
 * untouched: keys belong to the host's transport, not to the connection) and
 * go out again once qp_connect() has made a new one. One extra slot is kept
 * for the commands qp_connect() sends, so it never waits behind a full queue.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "initiator/lib_priv.h"

#define CACHE_BYTES	 (256u << 20)
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS	 1000
#define UPKEEP_SLICE_MS	 100 /* the longest a poll sleeps while timers run */

static int qp_connect(struct wf_qp *qp);

static void slot_finish(struct wf_slot *s)
{
	struct wf_qp *qp = s->qp;
	wf_io_cb cb = s->cb;
	void *arg = s->arg;
	int status = s->status;

	if (s->cached)
		wf_mr_cache_put(qp->cache, s->cached);
	s->cached = NULL;
	s->cpl_data = NULL;
	s->result = NULL;
	s->cb = NULL;
	s->busy = false;
	if (s != &qp->slots[qp->depth]) { /* the reserve slot is never on the free list */
		s->next_free = qp->free;
		qp->free = s;
	}
	qp->outstanding--;
	if (cb)
		cb(arg, status);
}

static void slot_fail(struct wf_slot *s, int status)
{
	s->answered = true;
	s->status = status;
	slot_finish(s);
}

/* Fail every command not yet answered; those with a SEND out finish in send_done(). */
static int fail_pending(struct wf_qp *qp, int status)
{
	int n = 0;

	for (uint32_t i = 0; i <= qp->depth; i++) {
		struct wf_slot *s = &qp->slots[i];

		if (s->busy && !s->answered && !s->posted) {
			slot_fail(s, status);
			n++;
		}
	}
	return n;
}

/* Sent, answered, and its window (if the host must end it) ended: the slot is free. */
static void slot_maybe_finish(struct wf_slot *s)
{
	if (s->sent && s->answered && !s->revoking)
		slot_finish(s);
}

static void send_done(struct wf_xfer *x, int status)
{
	struct wf_slot *s = x->arg;

	s->posted = false;
	/* A failed SEND means a broken endpoint: its final event decides what follows. */
	if (status && !s->answered)
		return;
	s->sent = true;
	slot_maybe_finish(s);
}

/* A failed REVOKE means a broken endpoint, whose windows are dead with it. */
static void revoke_done(struct wf_xfer *x, int status)
{
	struct wf_slot *s = x->arg;

	(void)status;
	s->revoking = false;
	slot_maybe_finish(s);
}

/*
 * The answer must be the kind the READ asked for. A capsule of data (with
 * imm) answers only a CPL_DATA read, and holds all of it; an empty one (a
 * WRITE's imm) only a CPL_IMM read. A plain completion of success for a
 * CPL_DATA read would leave the caller's buffer unfilled.
 */
static bool cpl_data_fits(const struct wf_slot *s, const struct wf_rx *rx, const struct wf_cpl *cpl)
{
	if (rx->has_imm && rx->len == 0)
		return s->cmd.flags & WF_CMD_F_CPL_IMM;
	if (rx->has_imm)
		return s->cpl_data && rx->len == s->cpl_data_len;
	return !s->cpl_data || cpl->status != WF_SC_SUCCESS;
}

/*
 * A CPL_IMM read's window stays open after its answer unless the target
 * ended it anyway; end it, and finish the read only once it is dead.
 */
static void revoke_window(struct wf_qp *qp, struct wf_slot *s, uint32_t inv)
{
	if (inv == s->cmd.data.key)
		return;
	s->rx = (struct wf_xfer){
	    .op = WF_XFER_REVOKE, .grant = s->grant, .done = revoke_done, .arg = s};
	/* Not posted: the endpoint is going, and its windows with it. */
	s->revoking = wf_ep_post(qp->ep, &s->rx) == 0;
}

static void qp_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct wf_qp *qp = wf_ep_ctx(ep);
	struct wf_cpl cpl;
	struct wf_slot *s;
	enum wf_status st;
	uint32_t inv;

	st =
	    rx->has_imm ? wf_cpl_imm_decode(rx->imm, &cpl) : wf_cpl_decode(rx->data, rx->len, &cpl);
	if (st || cpl.cid > qp->depth || !qp->slots[cpl.cid].busy || qp->slots[cpl.cid].answered) {
		wf_log_err(&qp->host->log, "target sent a completion for no command");
		wf_rx_release(rx);
		wf_ep_disconnect(ep);
		return;
	}
	s = &qp->slots[cpl.cid];
	if (!cpl_data_fits(s, rx, &cpl)) {
		/* Unanswered, it goes again on a new connection, or fails with this one. */
		wf_log_err(&qp->host->log,
			   "target %s answered command %u with %u bytes of data where %u were due: "
			   "disconnecting",
			   qp->host->addr, cpl.cid, rx->has_imm ? rx->len : 0,
			   s->cpl_data ? s->cpl_data_len : 0);
		wf_rx_release(rx);
		wf_ep_disconnect(ep);
		return;
	}
	/* A WRITE's immediate brings no bytes: its slot has no cpl_data to copy into. */
	if (rx->has_imm && rx->len)
		memcpy(s->cpl_data, rx->data, rx->len);
	inv = rx->inv_key;
	wf_rx_release(rx);
	qp->last_rx = wf_lib_now_ms();
	if (s->gmr && (s->cmd.flags & WF_CMD_F_CPL_IMM)) {
		revoke_window(qp, s, inv);
	} else if (s->gmr && inv != s->cmd.data.key) {
		/* A window the target left open dies with the connection, and nowhere else. */
		wf_log_err(&qp->host->log, "target %s left command %u's window open: disconnecting",
			   qp->host->addr, cpl.cid);
		wf_ep_disconnect(ep);
	}
	s->answered = true;
	s->status = wf_status_errno(cpl.status);
	if (s->result)
		*s->result = cpl.result;
	slot_maybe_finish(s);
}

/* The connection broke by itself: keep the commands and start reconnecting. */
static void qp_lost(struct wf_qp *qp, int status)
{
	struct wf_slot *reserve = &qp->slots[qp->depth];

	wf_log_warn(&qp->host->log, "connection to %s lost (%s): reconnecting", qp->host->addr,
		    strerror(status < 0 ? -status : ECONNRESET));
	qp->lost = true;
	qp->lost_at = qp->next_try = wf_lib_now_ms();
	qp->backoff_ms = BACKOFF_FIRST_MS;
	for (uint32_t i = 0; i < qp->depth; i++)
		if (qp->slots[i].busy && !qp->slots[i].answered)
			qp->slots[i].sent = false; /* to be sent again */
	if (reserve->busy && !reserve->answered)
		slot_fail(reserve, -ECONNRESET);
}

static void qp_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct wf_qp *qp = wf_ep_ctx(ep);

	if (ev == WF_EP_CONNECTED) {
		qp->up = true;
		qp->last_rx = wf_lib_now_ms();
		return;
	}
	qp->down = true;
	qp->fail_status = status ? status : -ECONNRESET;
	/* A refusal says why; "permission denied" beats "connection refused". */
	if (ev == WF_EP_CONNECT_FAILED && status == -ECONNREFUSED)
		qp->fail_status = wf_reject_reason_errno(wf_ep_reject_reason(ep));
	qp->ep = NULL;
	if (qp->in_connect) {
		/* Only qp_connect()'s own command was out; it fails, the caller retries. */
		if (qp->slots[qp->depth].busy && !qp->slots[qp->depth].answered)
			slot_fail(&qp->slots[qp->depth], -ECONNRESET);
		return;
	}
	if (ev == WF_EP_DISCONNECTED && !qp->abandon && qp->host->opts.reconnect_timeout_ms > 0) {
		qp_lost(qp, status);
		return;
	}
	/* Sends have all failed by now; commands the target never answered fail here. */
	qp->failed = true;
	fail_pending(qp, -ECONNRESET);
}

static const struct wf_ep_handlers qp_handlers = {.recv = qp_recv, .event = qp_event};

uint64_t wf_lib_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Put @s's command on the current endpoint: a fresh window over its buffer
 * first (the same doorbell), then the capsule, encoded now with that
 * window's key and the session token of this connection.
 */
static int slot_post(struct wf_qp *qp, struct wf_slot *s)
{
	int rc;

	if (s->gmr) {
		s->gx = (struct wf_xfer){
		    .op = WF_XFER_GRANT,
		    .buf = (void *)(uintptr_t)s->cmd.data.addr,
		    .len = s->cmd.data.len,
		    .mr = s->gmr,
		    .grant = s->grant,
		    .access = s->gaccess,
		};
		rc = wf_ep_post(qp->ep, &s->gx);
		if (rc)
			return rc;
		s->cmd.data.key = wf_grant_key(s->grant);
	}
	/* AUTH_CHALLENGE's token names the session to resume; all others carry ours. */
	if (s->cmd.opcode != WF_OP_AUTH_CHALLENGE)
		s->cmd.token = qp->token;
	wf_cmd_encode(&s->cmd, s->capsule);
	s->x = (struct wf_xfer){
	    .op = WF_XFER_SEND,
	    .buf = s->capsule,
	    .len = s->x.len,
	    .done = send_done,
	    .arg = s,
	};
	rc = wf_ep_post(qp->ep, &s->x);
	if (!rc)
		s->posted = true;
	return rc;
}

/* The slot for a new command: the reserve one inside qp_connect(), else a free one. */
static struct wf_slot *slot_take(struct wf_qp *qp)
{
	struct wf_slot *s;

	if (qp->in_connect) {
		s = &qp->slots[qp->depth];
		return s->busy ? NULL : s;
	}
	s = qp->free;
	if (s)
		qp->free = s->next_free;
	return s;
}

unsigned wf_qp_reg_access(const struct wf_qp *qp)
{
	return qp->grants ? WF_ACCESS_GRANT : WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE;
}

int wf_qp_send_cmd(struct wf_qp *qp, struct wf_cmd *c, const void *inline_data,
		   struct wf_mr *data_mr, struct wf_mr *cached, wf_io_cb cb, void *arg)
{
	struct wf_slot *s;
	int rc;

	if (qp->failed || (!qp->ep && !qp->lost))
		return qp->fail_status ? qp->fail_status : -ENOTCONN;
	s = slot_take(qp);
	if (!s)
		return -EAGAIN;
	c->cid = (uint16_t)(s - qp->slots);
	c->version = WF_WIRE_VERSION;
	s->gmr = qp->grants && c->data.len ? data_mr : NULL;
	if (s->gmr && !(c->flags & WF_CMD_F_CPL_IMM))
		c->flags |= WF_CMD_F_INV;
	if (s->gmr) {
		/* The target RDMA-READs what the host writes and RDMA-WRITEs all else. */
		s->gaccess =
		    c->opcode == WF_OP_WRITE ? WF_ACCESS_REMOTE_READ : WF_ACCESS_REMOTE_WRITE;
	}
	s->cmd = *c;
	if (c->inline_len)
		memcpy(s->capsule + WF_CMD_SIZE, inline_data, c->inline_len);
	s->x.len = WF_CMD_SIZE + c->inline_len;
	s->posted = false;
	/* Down but not yet reported, or reconnecting: the command waits for the new connection. */
	rc = qp->lost && !qp->in_connect ? 0 : slot_post(qp, s);
	if (rc && (rc != -ENOTCONN || qp->host->opts.reconnect_timeout_ms <= 0 || qp->in_connect)) {
		if (s != &qp->slots[qp->depth]) {
			s->next_free = qp->free;
			qp->free = s;
		}
		return rc;
	}
	if (!qp->outstanding)
		qp->last_rx = wf_lib_now_ms(); /* silence is timed from the first command out */
	s->cb = cb;
	s->arg = arg;
	s->cached = cached;
	s->sent = s->answered = s->revoking = false;
	s->busy = true;
	s->status = 0;
	qp->outstanding++;
	return 0;
}

void wf_qp_take_down(struct wf_qp *qp)
{
	qp->abandon = true;
	if (qp->ep) {
		wf_ep_disconnect(qp->ep);
		return;
	}
	if (qp->lost) {
		qp->lost = false;
		qp->failed = true;
		fail_pending(qp, -ECONNRESET);
	}
}

/* Send again what the target never answered, on the connection just made. */
static void resend(struct wf_qp *qp)
{
	for (uint32_t i = 0; i < qp->depth && qp->ep; i++) {
		struct wf_slot *s = &qp->slots[i];

		if (s->busy && !s->answered && !s->posted && !s->sent && slot_post(qp, s))
			return; /* broken again: its event puts us back to reconnecting */
	}
}

/* One try at a new connection; qp_connect() does every step of a session's setup. */
static void reconnect_try(struct wf_qp *qp)
{
	int rc;

	qp->up = qp->down = qp->abandon = false;
	qp->fail_status = 0;
	qp->in_connect = true;
	rc = qp_connect(qp);
	if (rc && qp->ep) {
		/* Up at the transport but refused as a session: drop it before the next try. */
		wf_ep_disconnect(qp->ep);
		while (!qp->down)
			if (wf_poll_group_poll(qp->pg, 10) < 0)
				break;
	}
	qp->in_connect = false;
	if (rc) {
		wf_log_warn(&qp->host->log, "reconnect to %s: %s", qp->host->addr, strerror(-rc));
		qp->next_try = wf_lib_now_ms() + qp->backoff_ms;
		qp->backoff_ms =
		    qp->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : qp->backoff_ms * 2;
		return;
	}
	qp->lost = false;
	qp->reconnects++;
	qp->last_rx = wf_lib_now_ms();
	wf_log_warn(&qp->host->log, "reconnected to %s after %lu ms", qp->host->addr,
		    (unsigned long)(qp->last_rx - qp->lost_at));
	resend(qp);
}

/* Reconnecting: try when the backoff says, give up past the reconnect timeout. */
static int reconnect_upkeep(struct wf_qp *qp, uint64_t now)
{
	if (now - qp->lost_at >= (uint64_t)qp->host->opts.reconnect_timeout_ms) {
		wf_log_err(&qp->host->log, "no connection to %s for %d ms: giving up",
			   qp->host->addr, qp->host->opts.reconnect_timeout_ms);
		qp->lost = false;
		qp->failed = true;
		qp->fail_status = -ENOTCONN;
		return fail_pending(qp, -ETIMEDOUT);
	}
	if (now >= qp->next_try)
		reconnect_try(qp);
	return 0;
}

static void ka_done(void *arg, int status)
{
	struct wf_qp *qp = arg;

	(void)status; /* a lost keep-alive is the connection's problem, seen elsewhere */
	qp->ka_out = false;
}

/* Connected: prove the target alive when idle, declare it lost when silent too long. */
static void keep_alive_upkeep(struct wf_qp *qp, uint64_t now)
{
	const struct wf_host_opts *o = &qp->host->opts;
	struct wf_cmd c = {.opcode = WF_OP_KEEP_ALIVE};

	if (o->keep_alive_timeout_ms > 0 && qp->outstanding &&
	    now - qp->last_rx >= (uint64_t)o->keep_alive_timeout_ms) {
		wf_log_warn(&qp->host->log, "nothing from %s for %d ms: connection lost",
			    qp->host->addr, o->keep_alive_timeout_ms);
		qp->last_rx = now;
		wf_ep_disconnect(qp->ep);
		return;
	}
	if (o->keep_alive_ms > 0 && !qp->ka_out &&
	    now - qp->last_rx >= (uint64_t)o->keep_alive_ms &&
	    !wf_qp_send_cmd(qp, &c, NULL, NULL, NULL, ka_done, qp))
		qp->ka_out = true;
}

/* Timers of a poll: keep-alive while connected, reconnect while lost. */
static int upkeep(struct wf_qp *qp)
{
	const struct wf_host_opts *o = &qp->host->opts;
	uint64_t now = wf_lib_now_ms();

	if (qp->in_connect)
		return 0;
	/* A caller that did not poll for long was not listening: silence since then is not news. */
	if (o->keep_alive_timeout_ms > 0 &&
	    now - qp->last_poll > (uint64_t)o->keep_alive_timeout_ms / 2)
		qp->last_rx = now;
	qp->last_poll = now;
	if (qp->lost)
		return reconnect_upkeep(qp, now);
	if (qp->ep && qp->up)
		keep_alive_upkeep(qp, now);
	return 0;
}

static bool timers_run(const struct wf_qp *qp)
{
	const struct wf_host_opts *o = &qp->host->opts;

	return !qp->in_connect &&
	       (qp->lost || (qp->ep && (o->keep_alive_ms > 0 || o->keep_alive_timeout_ms > 0)));
}

/* Any timer of the queue pairs that share @qp's poll group: each poll of it is theirs too. */
static bool ring_timers_run(const struct wf_qp *qp)
{
	const struct wf_qp *m = qp;

	do {
		if (timers_run(m))
			return true;
		m = m->next_shared;
	} while (m != qp);
	return false;
}

static int ring_upkeep(struct wf_qp *qp)
{
	struct wf_qp *m = qp;
	int n = 0;

	do {
		n += upkeep(m);
		m = m->next_shared;
	} while (m != qp);
	return n;
}

int wf_qp_poll(struct wf_qp *qp, int timeout_ms)
{
	uint64_t end = wf_lib_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int n, slice;

	for (;;) {
		slice = timeout_ms;
		/* Sleep in slices so the timers keep running, but keep the caller's timeout. */
		if (ring_timers_run(qp) && (timeout_ms < 0 || timeout_ms > UPKEEP_SLICE_MS)) {
			uint64_t left = timeout_ms < 0 ? UPKEEP_SLICE_MS : end - wf_lib_now_ms();

			slice = left > UPKEEP_SLICE_MS ? UPKEEP_SLICE_MS : (int)left;
		}
		n = wf_poll_group_poll(qp->pg, slice);
		if (n < 0)
			return n;
		n += ring_upkeep(qp);
		if (n || slice == timeout_ms || (timeout_ms >= 0 && wf_lib_now_ms() >= end))
			return n;
	}
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

	while ((rc = wf_qp_send_cmd(qp, c, inline_data, c->data.len ? qp->admin_mr : NULL, NULL,
				    wf_lib_wait_done, &w)) == -EAGAIN)
		if (wf_qp_poll(qp, 10) < 0)
			return -EIO;
	if (rc)
		return rc;
	qp->slots[c->cid].result = result;
	while (!w.done) {
		if (wf_lib_now_ms() > deadline && !gave_up) {
			/* The target might still write the admin buffer: take the queue down. */
			wf_qp_take_down(qp);
			gave_up = true;
		}
		if (wf_qp_poll(qp, 10) < 0)
			return -EIO;
	}
	return gave_up ? -ETIMEDOUT : w.status;
}

/* One window per slot, if wanted and the transport can; else keys live as long as registrations. */
static int grants_create(struct wf_qp *qp)
{
	int rc;

	if (!qp->host->opts.windows)
		return 0;
	for (uint32_t i = 0; i <= qp->depth; i++) {
		rc = wf_grant_create(qp->host->transport, &qp->slots[i].grant);
		if (rc == -EOPNOTSUPP && i == 0) {
			wf_log_warn(&qp->host->log, "no memory windows on this device: buffer keys "
						    "outlive their commands");
			return 0;
		}
		if (rc)
			return rc;
	}
	qp->grants = true;
	return 0;
}

static int qp_alloc(struct wf_host *h, struct wf_qp *qp, struct wf_qp *with)
{
	uint32_t cap = wf_transport_opts(h->transport)->capsule_size;
	int rc;

	qp->host = h;
	qp->depth = h->opts.queue_depth;
	qp->slots = calloc(qp->depth + 1, sizeof(*qp->slots));
	qp->capsules = calloc(qp->depth + 1, cap);
	qp->admin_buf = aligned_alloc(4096, WF_ADMIN_BUF);
	if (!qp->slots || !qp->capsules || !qp->admin_buf)
		return -ENOMEM;
	for (uint32_t i = qp->depth + 1; i-- > 0;) {
		qp->slots[i].qp = qp;
		qp->slots[i].capsule = qp->capsules + (size_t)i * cap;
		if (i == qp->depth)
			continue; /* the reserve slot */
		qp->slots[i].next_free = qp->free;
		qp->free = &qp->slots[i];
	}
	rc = grants_create(qp);
	if (rc)
		return rc;
	rc = wf_mr_reg(h->transport, qp->admin_buf, WF_ADMIN_BUF,
		       qp->grants ? WF_ACCESS_GRANT : WF_ACCESS_REMOTE_WRITE, &qp->admin_mr);
	if (rc)
		return rc;
	rc = wf_mr_cache_create(h->transport, wf_qp_reg_access(qp), CACHE_BYTES, &qp->cache);
	if (rc)
		return rc;
	qp->next_shared = qp;
	if (!with)
		return wf_poll_group_create(h->transport, &qp->pg);
	qp->pg = with->pg;
	qp->next_shared = with->next_shared;
	with->next_shared = qp;
	return 0;
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
	qp->max_cpl_data = h->opts.cpl_data_reads ? wf_ep_params(qp->ep)->capsule_size : 0;
	qp->cpl_imm = h->opts.cpl_imm_reads;
	snprintf(d.host, sizeof(d.host), "%s", h->host_id);
	wf_connect_data_encode(&d, data);
	rc = wf_qp_admin_result(qp, &c, data, &result);
	if (rc)
		return rc;
	return wf_qp_auth(qp, result);
}

/*
 * Leave the ring of queue pairs sharing the poll group. Our endpoint must go
 * first, since the group outlives us: its handlers would run on freed memory,
 * and a window must not outlive its QP. The others' events may run meanwhile.
 */
static void qp_unshare(struct wf_qp *qp)
{
	struct wf_qp *prev = qp;

	if (qp->ep)
		wf_ep_disconnect(qp->ep);
	while (qp->ep) {
		int rc = wf_poll_group_poll(qp->pg, 10);

		if (rc < 0)
			wf_log_err(&qp->host->log, "closing a queue pair: poll: %s", strerror(-rc));
	}
	while (prev->next_shared != qp)
		prev = prev->next_shared;
	prev->next_shared = qp->next_shared;
	qp->next_shared = qp;
	qp->pg = NULL;
}

static void qp_free(struct wf_qp *qp)
{
	if (qp->pg && qp->next_shared != qp)
		qp_unshare(qp);
	if (qp->pg)
		wf_poll_group_destroy(qp->pg);
	/* After the endpoints: a window must not outlive its QP's teardown. */
	for (uint32_t i = 0; qp->slots && i <= qp->depth; i++)
		wf_grant_destroy(qp->slots[i].grant);
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

static int qp_open(struct wf_host *h, struct wf_qp *with, struct wf_qp **out)
{
	struct wf_qp *qp = calloc(1, sizeof(*qp));
	int rc;

	if (!qp)
		return -ENOMEM;
	rc = qp_alloc(h, qp, with);
	if (!rc) {
		qp->in_connect = true;
		rc = qp_connect(qp);
		qp->in_connect = false;
		qp->last_poll = wf_lib_now_ms();
	}
	if (rc) {
		wf_qp_close(qp);
		return rc;
	}
	*out = qp;
	return 0;
}

int wf_qp_open(struct wf_host *h, struct wf_qp **out)
{
	return qp_open(h, NULL, out);
}

int wf_qp_open_shared(struct wf_qp *with, struct wf_qp **out)
{
	return qp_open(with->host, with, out);
}

void wf_qp_close(struct wf_qp *qp)
{
	if (!qp)
		return;
	qp->abandon = true;
	/* Commands queued for a reconnect are in no endpoint's hands: fail them here. */
	if (qp->slots && !qp->ep)
		fail_pending(qp, -ECONNRESET);
	qp->lost = false;
	/* Taking the endpoint down (with the poll group, if ours alone) fails what is left. */
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

uint32_t wf_qp_reconnects(const struct wf_qp *qp)
{
	return qp->reconnects;
}
