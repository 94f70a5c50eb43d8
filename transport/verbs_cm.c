// SPDX-License-Identifier: MIT
/*
 * Connection management for the verbs transport over rdma_cm: listening,
 * the active side's resolve -> route -> connect, the passive side's checks
 * and accept, typed rejects, and the events that end a connection. All CM
 * events of a poll group's ids arrive on its own channel, so they are handled
 * on the group's thread like everything else.
 */
#include "transport/verbs.h"

#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

/* What an event handler needs, copied out so the event can be acked first. */
struct cm_event {
	enum rdma_cm_event_type type;
	int status;
	struct rdma_cm_id *id;
	struct rdma_cm_id *listen_id;
	uint8_t initiator_depth;
	uint8_t responder_resources;
	uint8_t private_len;
	uint8_t private_data[256];
};

static int resolve(struct wf_verbs_pg *pg, const char *addr, uint16_t port,
		   struct sockaddr_storage *ss)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int ret = getaddrinfo(addr, NULL, &hints, &ai);

	if (ret) {
		wf_log_err(wf_verbs_log(pg), "verbs: cannot resolve %s: %s", addr,
			   gai_strerror(ret));
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	return 0;
}

static uint8_t min_u8(int a, int b)
{
	int m = a < b ? a : b;

	return (uint8_t)(m < 0 ? 0 : m > 255 ? 255 : m);
}

int wf_verbs_listen(struct wf_poll_group *p, const char *addr, uint16_t port,
		    struct wf_listener **out)
{
	struct wf_verbs_pg *pg = wf_verbs_pg(p);
	struct wf_verbs_listener *l, **grown;
	struct sockaddr_storage ss;
	int ret;

	ret = resolve(pg, addr, port, &ss);
	if (ret)
		return ret;
	grown = realloc(pg->listeners, (pg->nlisteners + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	pg->listeners = grown;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.pg = p;
	if (rdma_create_id(pg->ec, &l->id, l, RDMA_PS_TCP)) {
		ret = -errno;
		goto err_free;
	}
	if (rdma_bind_addr(l->id, (struct sockaddr *)&ss) || rdma_listen(l->id, 128)) {
		ret = -errno;
		wf_log_err(wf_verbs_log(pg), "verbs: cannot listen on %s:%u: %s", addr, port,
			   strerror(-ret));
		goto err_id;
	}
	l->base.port = ntohs(rdma_get_src_port(l->id));
	pg->listeners[pg->nlisteners++] = l;
	*out = &l->base;
	return 0;

err_id:
	rdma_destroy_id(l->id);
err_free:
	free(l);
	return ret;
}

void wf_verbs_listener_close(struct wf_listener *ll)
{
	struct wf_verbs_listener *l = wf_container_of(ll, struct wf_verbs_listener, base);
	struct wf_verbs_pg *pg = wf_verbs_pg(ll->pg);

	for (unsigned i = 0; i < pg->nlisteners; i++) {
		if (pg->listeners[i] == l) {
			pg->listeners[i] = pg->listeners[--pg->nlisteners];
			break;
		}
	}
	rdma_destroy_id(l->id);
	free(l);
}

int wf_verbs_connect(struct wf_poll_group *p, const char *addr, uint16_t port, int timeout_ms,
		     struct wf_ep **out)
{
	struct wf_verbs_pg *pg = wf_verbs_pg(p);
	struct sockaddr_storage ss;
	struct wf_verbs_ep *ep;
	int ret;

	ret = resolve(pg, addr, port, &ss);
	if (ret)
		return ret;
	ep = wf_verbs_ep_alloc(pg, true);
	if (!ep)
		return -ENOMEM;
	if (rdma_create_id(pg->ec, &ep->id, ep, RDMA_PS_TCP)) {
		ret = -errno;
		goto err;
	}
	ep->deadline_ns = wf_now_ns() + (uint64_t)timeout_ms * 1000000u;
	if (rdma_resolve_addr(ep->id, NULL, (struct sockaddr *)&ss, timeout_ms)) {
		ret = -errno;
		goto err;
	}
	*out = &ep->base;
	return 0;
err:
	wf_verbs_pg_unlink(pg, ep);
	if (ep->id)
		rdma_destroy_id(ep->id);
	free(ep);
	return ret;
}

static int remaining_ms(struct wf_verbs_ep *ep)
{
	uint64_t now = wf_now_ns();

	return ep->deadline_ns > now ? (int)((ep->deadline_ns - now) / 1000000u) + 1 : 1;
}

static int active_connect(struct wf_verbs_ep *ep)
{
	const struct ibv_device_attr *a = &ep->pg->t->attr;
	struct rdma_conn_param cp = {
	    .retry_count = 7,
	    .rnr_retry_count = 7, /* a shared receive queue can run dry: wait, don't fail */
	};
	struct wf_conn_wire w;
	int ret;

	ret = wf_verbs_ep_create_qp(ep, ep->base.params.queue_depth);
	if (ret)
		return ret;
	cp.initiator_depth = min_u8(a->max_qp_init_rd_atom, WF_VERBS_RD_DEPTH);
	cp.responder_resources = min_u8(a->max_qp_rd_atom, WF_VERBS_RD_DEPTH);
	ep->rd_max = cp.initiator_depth;
	wf_conn_encode(&ep->base.params, &w);
	cp.private_data = &w;
	cp.private_data_len = sizeof(w);
	ep->state = WF_VERBS_EP_CONNECTING;
	return rdma_connect(ep->id, &cp) ? -errno : 0;
}

/* The accept's private data: what the target settled on, never more than we asked. */
static int take_accept(struct wf_verbs_ep *ep, const struct cm_event *ev)
{
	struct wf_conn_params got;

	if (wf_conn_decode(ev->private_data, ev->private_len, &got) != WF_REJECT_NONE ||
	    got.queue_depth == 0 || got.queue_depth > ep->base.params.queue_depth ||
	    got.capsule_size < WF_CAPSULE_MIN || got.capsule_size > ep->base.params.capsule_size)
		return -EPROTO;
	ep->base.params.queue_depth = got.queue_depth;
	ep->base.params.capsule_size = got.capsule_size;
	if (ev->responder_resources && ev->responder_resources < ep->rd_max)
		ep->rd_max = ev->responder_resources;
	return 0;
}

static void established(struct wf_verbs_ep *ep, const struct cm_event *ev)
{
	int ret;

	if (ep->state == WF_VERBS_EP_CONNECTING) {
		ret = take_accept(ep, ev);
		if (ret) {
			wf_log_err(wf_verbs_log(ep->pg), "verbs: malformed accept from target");
			wf_verbs_ep_connect_failed(ep, ret);
			return;
		}
	} else if (ep->state != WF_VERBS_EP_ACCEPTING) {
		/* Already promoted by an early capsule, or going down. */
		return;
	}
	ep->deadline_ns = 0;
	ep->state = WF_VERBS_EP_CONNECTED;
	ep->announced = true;
	ep->base.h->event(&ep->base, WF_EP_CONNECTED, 0);
}

static void reject(struct rdma_cm_id *id, enum wf_reject_reason reason)
{
	struct wf_reject_wire w = {.magic = htole32(WF_CONN_MAGIC), .reason = htole16(reason)};

	(void)rdma_reject(id, &w, sizeof(w));
	rdma_destroy_id(id);
}

/* The passive side of a connect request: checks, the owner's say, then accept. */
/*
 * Hand an approved connection to the group its listener's handler chose:
 * its CM events move to that group's channel before anything is accepted,
 * so ESTABLISHED and all later events reach the chosen thread only.
 */
static void hand_to(struct wf_verbs_pg *pg, struct wf_verbs_pg *to, struct wf_verbs_accept *a)
{
	struct wf_verbs_accept *copy = malloc(sizeof(*copy));
	int ret = 0;

	if (!copy)
		ret = -ENOMEM;
	else if (rdma_migrate_id(a->id, to->ec))
		ret = -errno;
	if (ret) {
		wf_log_warn(wf_verbs_log(pg), "verbs: cannot hand a connection over: %s",
			    strerror(-ret));
		free(copy);
		reject(a->id, WF_REJECT_BUSY);
		return;
	}
	*copy = *a;
	wf_verbs_pg_hand(to, copy);
}

/* The passive side of a connect request: checks, the owner's say, then accept. */
static void connect_request(struct wf_verbs_pg *pg, const struct cm_event *ev)
{
	struct wf_verbs_listener *l = ev->listen_id->context;
	struct wf_verbs_accept a = {.id = ev->id,
				    .initiator_depth = ev->initiator_depth,
				    .responder_resources = ev->responder_resources};
	struct wf_poll_group *to = &pg->base;
	struct wf_conn_params peer;
	int reason;

	reason = wf_conn_decode(ev->private_data, ev->private_len, &peer);
	if (!reason)
		reason = wf_conn_negotiate(&pg->t->base.opts, &peer, &a.neg);
	if (!reason)
		reason = l->base.h->connect_request(&l->base, &a.neg, &a.h, &a.ctx, &to);
	if (!reason &&
	    (!a.h || !a.h->recv || !a.h->event || !to || to->transport != pg->base.transport))
		reason = WF_REJECT_BUSY;
	if (reason) {
		wf_log_info(wf_verbs_log(pg), "verbs: refusing a connection: %s",
			    wf_reject_reason_str(reason));
		reject(ev->id, reason);
		return;
	}
	if (to != &pg->base)
		hand_to(pg, wf_verbs_pg(to), &a);
	else
		wf_verbs_cm_accept(pg, &a);
}

void wf_verbs_cm_accept(struct wf_verbs_pg *pg, struct wf_verbs_accept *a)
{
	const struct ibv_device_attr *attr = &pg->t->attr;
	struct rdma_conn_param cp = {.rnr_retry_count = 7};
	struct rdma_cm_id *id = a->id;
	struct wf_conn_params neg = a->neg;
	struct wf_verbs_ep *ep;
	struct wf_conn_wire w;

	ep = wf_verbs_ep_alloc(pg, false);
	if (!ep) {
		reject(id, WF_REJECT_BUSY);
		return;
	}
	wf_ep_init(&ep->base, &pg->base, a->h, a->ctx);
	ep->base.params = neg;
	ep->id = id;
	ep->id->context = ep;
	if (wf_verbs_ep_create_qp(ep, neg.queue_depth))
		goto err_busy;
	cp.responder_resources = min_u8(attr->max_qp_rd_atom, a->initiator_depth);
	cp.initiator_depth =
	    min_u8(min_u8(attr->max_qp_init_rd_atom, a->responder_resources), WF_VERBS_RD_DEPTH);
	ep->rd_max = cp.initiator_depth ? cp.initiator_depth : 1;
	wf_conn_encode(&neg, &w);
	cp.private_data = &w;
	cp.private_data_len = sizeof(w);
	if (rdma_accept(ep->id, &cp)) {
		wf_log_warn(wf_verbs_log(pg), "verbs: accept failed: %s", strerror(errno));
		wf_verbs_ep_connect_failed(ep, -errno);
		return;
	}
	return;

err_busy:
	ep->id = NULL;
	wf_verbs_ep_connect_failed(ep, -EBUSY);
	reject(id, WF_REJECT_BUSY);
}

static int event_errno(const struct cm_event *ev)
{
	switch (ev->type) {
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED;
	case RDMA_CM_EVENT_UNREACHABLE:
		return -EHOSTUNREACH;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
		return ev->status < 0 ? ev->status : -EHOSTUNREACH;
	default:
		return -ECONNABORTED;
	}
}

static void connect_error(struct wf_verbs_ep *ep, const struct cm_event *ev)
{
	int status = event_errno(ev);

	if (ev->type == RDMA_CM_EVENT_REJECTED)
		ep->base.reject = wf_reject_decode(ev->private_data, ev->private_len);
	if (ep->state == WF_VERBS_EP_RESOLVING || ep->state == WF_VERBS_EP_CONNECTING)
		wf_verbs_ep_connect_failed(ep, status);
	else
		wf_verbs_ep_fail(ep, status);
}

static void ep_event(struct wf_verbs_ep *ep, const struct cm_event *ev)
{
	int ret;

	switch (ev->type) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (rdma_resolve_route(ep->id, remaining_ms(ep)))
			wf_verbs_ep_connect_failed(ep, -errno);
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		ret = active_connect(ep);
		if (ret)
			wf_verbs_ep_connect_failed(ep, ret);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		established(ep, ev);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		connect_error(ep, ev);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		wf_verbs_ep_fail(ep, -ECONNRESET);
		break;
	default:
		break;
	}
}

static bool get_event(struct wf_verbs_pg *pg, struct cm_event *out)
{
	struct rdma_cm_event *ev;
	size_t len;

	if (rdma_get_cm_event(pg->ec, &ev))
		return false;
	*out = (struct cm_event){
	    .type = ev->event,
	    .status = ev->status,
	    .id = ev->id,
	    .listen_id = ev->listen_id,
	};
	if (ev->id && ev->id->ps == RDMA_PS_TCP) {
		len = ev->param.conn.private_data_len;
		if (len > sizeof(out->private_data))
			len = sizeof(out->private_data);
		if (ev->param.conn.private_data)
			memcpy(out->private_data, ev->param.conn.private_data, len);
		out->private_len = (uint8_t)len;
		out->initiator_depth = ev->param.conn.initiator_depth;
		out->responder_resources = ev->param.conn.responder_resources;
	}
	/* Ack before handling: destroying an id with an unacked event deadlocks. */
	rdma_ack_cm_event(ev);
	return true;
}

/* Listener ids carry a listener, not an endpoint, in their context. */
static bool is_listener(struct wf_verbs_pg *pg, struct rdma_cm_id *id)
{
	for (unsigned i = 0; i < pg->nlisteners; i++)
		if (pg->listeners[i]->id == id)
			return true;
	return false;
}

int wf_verbs_cm_process(struct wf_verbs_pg *pg)
{
	struct cm_event ev;
	int n = 0;

	while (get_event(pg, &ev)) {
		n++;
		if (ev.type == RDMA_CM_EVENT_CONNECT_REQUEST)
			connect_request(pg, &ev);
		else if (!is_listener(pg, ev.id) && ev.id->context)
			ep_event(ev.id->context, &ev);
	}
	return n;
}

int wf_verbs_cm_expire(struct wf_verbs_pg *pg, uint64_t now_ns)
{
	struct wf_verbs_ep *ep;
	int n = 0;

again:
	for (ep = pg->eps; ep; ep = ep->next) {
		if (!ep->deadline_ns || ep->deadline_ns > now_ns)
			continue;
		n++;
		if (ep->state == WF_VERBS_EP_DRAINING && ep->drain_failed) {
			wf_verbs_ep_finish(ep);
			goto again;
		}
		if (ep->state == WF_VERBS_EP_RESOLVING || ep->state == WF_VERBS_EP_CONNECTING) {
			wf_verbs_ep_connect_failed(ep,
						   ep->down_status ? ep->down_status : -ETIMEDOUT);
			goto again;
		}
		ep->deadline_ns = 0;
	}
	return n;
}
