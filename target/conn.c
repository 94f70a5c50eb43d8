// SPDX-License-Identifier: MIT
/*
 * The connection manager: admits a host at the transport's connect request
 * if the config allows it anywhere, places it on a shard (the least loaded,
 * or thread 0 for mirror volumes), and tracks the connection until its last
 * request is done, since bdev requests may outlive the endpoint. Those
 * orphans fence the host's next CONNECT (struct wf_tgt_host).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "target/target_priv.h"

static void conn_event(struct wf_ep *ep, enum wf_ep_event ev, int status);

static const struct wf_ep_handlers conn_handlers = {
    .recv = wf_req_recv,
    .event = conn_event,
};

static struct wf_tgt_host *host_find(struct wf_target *t, const char *host)
{
	for (uint32_t i = 0; i < t->nhosts; i++)
		if (!strcmp(t->hosts[i].id, host))
			return &t->hosts[i];
	return NULL;
}

int wf_conn_hosts_init(struct wf_target *t)
{
	const struct wf_config *cfg = t->cfg;

	t->hosts = calloc(cfg->nallows ? cfg->nallows : 1, sizeof(*t->hosts));
	if (!t->hosts)
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg->nallows; i++) {
		if (host_find(t, cfg->allows[i].host))
			continue;
		snprintf(t->hosts[t->nhosts].id, sizeof(t->hosts[0].id), "%s", cfg->allows[i].host);
		atomic_init(&t->hosts[t->nhosts].orphans, 0);
		t->nhosts++;
	}
	return 0;
}

/* Mirror volumes exist on thread 0 only (their resync state has one owner). */
static bool host_needs_first(const struct wf_config *cfg, const char *host)
{
	for (uint32_t i = 0; i < cfg->nallows; i++)
		if (!strcmp(cfg->allows[i].host, host) &&
		    cfg->volumes[cfg->allows[i].volume].layout == WF_CFG_MIRROR)
			return true;
	return false;
}

/*
 * The shard a new connection goes to; runs on thread 0, the listeners'
 * thread. The one with the fewest connections, first in turn on a tie: a
 * host's queue pairs then land on different threads however many other
 * hosts came and went, so one host thread's I/O can use every CPU here.
 */
static struct wf_tgt_shard *pick_shard(struct wf_target *t, const char *host)
{
	uint32_t first, best;

	if (t->nshards == 1 || host_needs_first(t->cfg, host))
		return t->shards[0];
	first = best = t->next_shard++ % t->nshards;
	for (uint32_t i = 1; i < t->nshards; i++) {
		uint32_t k = (first + i) % t->nshards;

		if (atomic_load(&t->shards[k]->nconns) < atomic_load(&t->shards[best]->nconns))
			best = k;
	}
	return t->shards[best];
}

int wf_conn_request(struct wf_listener *l, const struct wf_conn_params *params,
		    const struct wf_ep_handlers **handlers, void **ctx, struct wf_poll_group **pg)
{
	struct wf_tgt_pg *lpg = wf_listener_ctx(l);
	struct wf_target *t = lpg->shard->target;
	struct wf_tgt_host *h = host_find(t, params->host_id);
	struct wf_tgt_shard *s;
	struct wf_tgt_conn *conn;

	if (atomic_load(&t->stopping))
		return WF_REJECT_BUSY;
	if (!h) {
		wf_log_warn(t->log, "refused host '%.39s': not in any allow line", params->host_id);
		return WF_REJECT_HOST;
	}
	if (params->queue_depth == 0 || params->queue_depth > t->cfg->queue_depth)
		return WF_REJECT_QUEUE_DEPTH;
	if (atomic_load(&t->nconns) >= t->cfg->max_connections)
		return WF_REJECT_BUSY;
	s = pick_shard(t, params->host_id);
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return WF_REJECT_BUSY;
	conn->access = calloc(s->nvolumes + 1, sizeof(*conn->access));
	if (!conn->access) {
		free(conn);
		return WF_REJECT_BUSY;
	}
	/* The same transport kind's group in the chosen shard. */
	conn->tpg = &s->pgs[lpg - lpg->shard->pgs];
	conn->queue_depth = params->queue_depth;
	conn->hostrec = h;
	conn->inflight = 1; /* the endpoint's own reference, dropped at its final event */
	snprintf(conn->host, sizeof(conn->host), "%s", params->host_id);
	atomic_fetch_add(&t->nconns, 1);
	atomic_fetch_add(&s->nconns, 1);
	*handlers = &conn_handlers;
	*ctx = conn;
	*pg = conn->tpg->pg;
	return 0;
}

static void conn_unlist(struct wf_tgt_conn *conn)
{
	struct wf_tgt_shard *t = conn->tpg->shard;

	for (struct wf_tgt_conn **p = &t->conns; *p; p = &(*p)->next) {
		if (*p == conn) {
			*p = conn->next;
			break;
		}
	}
	conn->listed = false;
}

static void conn_free(struct wf_tgt_conn *conn)
{
	atomic_fetch_sub(&conn->tpg->shard->nconns, 1);
	atomic_fetch_sub(&conn->tpg->shard->target->nconns, 1);
	wf_tgt_auth_close(conn);
	free(conn->access);
	free(conn);
}

void wf_conn_put(struct wf_tgt_conn *conn)
{
	if (conn->orphaned)
		atomic_fetch_sub(&conn->hostrec->orphans, 1);
	if (--conn->inflight)
		return;
	conn_free(conn);
}

/* The endpoint is gone: what it leaves out fences the host's next CONNECT. */
static void conn_gone(struct wf_tgt_conn *conn)
{
	if (--conn->inflight == 0) {
		conn_free(conn);
		return;
	}
	atomic_fetch_add(&conn->hostrec->orphans, conn->inflight);
	conn->orphaned = true;
}

bool wf_conn_fence(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_tgt_shard *t = conn->tpg->shard;
	unsigned n = atomic_load(&conn->hostrec->orphans);

	if (!n)
		return false;
	if (!req->fenced)
		wf_log_info(t->log,
			    "host %s: %u commands of its previous connection still out; its "
			    "CONNECT waits for them",
			    conn->host, n);
	req->fenced = true;
	req->wait_next = t->fenced;
	t->fenced = req;
	return true;
}

bool wf_conn_fence_retry(struct wf_tgt_shard *t)
{
	struct wf_tgt_req *req = t->fenced, *next;

	t->fenced = NULL;
	for (; req; req = next) {
		next = req->wait_next;
		req->op->start(req); /* holds it again if it must still wait */
	}
	return t->fenced != NULL;
}

static void conn_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct wf_tgt_conn *conn = wf_ep_ctx(ep);
	struct wf_tgt_shard *t = conn->tpg->shard;

	switch (ev) {
	case WF_EP_CONNECTED:
		conn->ep = ep;
		conn->last_cmd_ms = t->now_ms;
		conn->next = t->conns;
		t->conns = conn;
		conn->listed = true;
		/* Handed over after its shard began to stop: it gets no commands. */
		if (t->stopping)
			wf_ep_disconnect(ep);
		return;
	case WF_EP_CONNECT_FAILED:
	case WF_EP_DISCONNECTED:
		if (conn->connected)
			wf_log_info(t->log, "host %s disconnected (%d)", conn->host, status);
		if (conn->listed)
			conn_unlist(conn);
		conn->ep = NULL; /* freed once we return; requests still out see this */
		conn_gone(conn);
		return;
	}
}

/*
 * A host that died without a word (power loss, cable, kill -9 behind a NAT)
 * would hold its connection and buffers forever: a live host sends at least
 * a KEEP_ALIVE now and then. Its requests still out finish on their own.
 */
void wf_conn_reap_silent(struct wf_tgt_shard *t)
{
	uint64_t limit = (uint64_t)t->cfg->keep_alive_timeout * 1000;

	for (struct wf_tgt_conn *c = t->conns; c; c = c->next) {
		if (!c->ep || t->now_ms - c->last_cmd_ms < limit)
			continue;
		wf_log_warn(t->log, "host %s sent nothing for %u s: disconnecting it", c->host,
			    t->cfg->keep_alive_timeout);
		c->last_cmd_ms = t->now_ms; /* once: the event that unlists it follows */
		wf_ep_disconnect(c->ep);
	}
}

void wf_conn_disconnect_all(struct wf_tgt_shard *t)
{
	for (struct wf_tgt_conn *c = t->conns; c; c = c->next)
		if (c->ep)
			wf_ep_disconnect(c->ep);
}
