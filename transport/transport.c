// SPDX-License-Identifier: MIT
/*
 * The transport-independent half: option defaults, the connect-request wire
 * format, and thin dispatch through each object's ops table.
 */
#include "transport/transport_impl.h"

#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

static const struct wf_transport_ops *const kinds[] = {
    &wf_verbs_ops,
    &wf_tcp_ops,
    NULL,
};

static const char *const reject_names[WF_REJECT_MAX_] = {
    [WF_REJECT_NONE] = "refused (nobody listening, or not a weft target)",
    [WF_REJECT_VERSION] = "protocol version mismatch",
    [WF_REJECT_QUEUE_DEPTH] = "queue depth not allowed",
    [WF_REJECT_CAPSULE_SIZE] = "capsule size too small",
    [WF_REJECT_HOST] = "host not allowed",
    [WF_REJECT_BUSY] = "target busy",
    [WF_REJECT_MALFORMED] = "malformed connect request",
};

const struct wf_transport_ops *wf_transport_ops_find(const char *name)
{
	for (size_t i = 0; kinds[i]; i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

void wf_transport_opts_default(struct wf_transport_opts *opts)
{
	*opts = (struct wf_transport_opts){
	    .capsule_size = 4096 + 64,
	    .max_queue_depth = 128,
	    .srq_depth = 4096,
	    .numa_node = -1,
	};
}

const char *wf_reject_reason_str(enum wf_reject_reason r)
{
	if ((unsigned)r >= WF_REJECT_MAX_)
		return "unknown reject reason";
	return reject_names[r];
}

int wf_reject_reason_errno(enum wf_reject_reason r)
{
	switch (r) {
	case WF_REJECT_HOST:
		return -EACCES;
	case WF_REJECT_VERSION:
		return -EPROTONOSUPPORT;
	case WF_REJECT_QUEUE_DEPTH:
	case WF_REJECT_CAPSULE_SIZE:
		return -EINVAL;
	case WF_REJECT_BUSY:
		return -EBUSY;
	case WF_REJECT_MALFORMED:
		return -EPROTO;
	default:
		return -ECONNREFUSED;
	}
}

void wf_conn_encode(const struct wf_conn_params *p, struct wf_conn_wire *w)
{
	memset(w, 0, sizeof(*w));
	w->magic = htole32(WF_CONN_MAGIC);
	w->version = htole16(p->version);
	w->queue_depth = htole16(p->queue_depth);
	w->capsule_size = htole32(p->capsule_size);
	memcpy(w->host_id, p->host_id, sizeof(w->host_id));
	w->host_id[sizeof(w->host_id) - 1] = '\0';
}

enum wf_reject_reason wf_conn_decode(const void *data, size_t len, struct wf_conn_params *p)
{
	struct wf_conn_wire w;

	/* rdma_cm pads private data, so more than ours is fine; less is not. */
	if (!data || len < sizeof(w))
		return WF_REJECT_MALFORMED;
	memcpy(&w, data, sizeof(w));
	if (le32toh(w.magic) != WF_CONN_MAGIC)
		return WF_REJECT_MALFORMED;
	if (memchr(w.host_id, '\0', sizeof(w.host_id)) == NULL || w.host_id[0] == '\0')
		return WF_REJECT_MALFORMED;
	p->version = le16toh(w.version);
	p->queue_depth = le16toh(w.queue_depth);
	p->capsule_size = le32toh(w.capsule_size);
	memcpy(p->host_id, w.host_id, sizeof(p->host_id));
	return WF_REJECT_NONE;
}

enum wf_reject_reason wf_reject_decode(const void *data, size_t len)
{
	struct wf_reject_wire w;
	uint16_t r;

	if (!data || len < sizeof(w))
		return WF_REJECT_NONE;
	memcpy(&w, data, sizeof(w));
	if (le32toh(w.magic) != WF_CONN_MAGIC)
		return WF_REJECT_NONE;
	r = le16toh(w.reason);
	return r < WF_REJECT_MAX_ ? (enum wf_reject_reason)r : WF_REJECT_MALFORMED;
}

enum wf_reject_reason wf_conn_negotiate(const struct wf_transport_opts *opts,
					const struct wf_conn_params *peer,
					struct wf_conn_params *out)
{
	if (peer->version != WF_TRANSPORT_VERSION)
		return WF_REJECT_VERSION;
	if (peer->queue_depth == 0 || peer->queue_depth > opts->max_queue_depth)
		return WF_REJECT_QUEUE_DEPTH;
	if (peer->capsule_size < WF_CAPSULE_MIN)
		return WF_REJECT_CAPSULE_SIZE;
	*out = *peer;
	if (out->capsule_size > opts->capsule_size)
		out->capsule_size = opts->capsule_size;
	return WF_REJECT_NONE;
}

void wf_ep_init(struct wf_ep *ep, struct wf_poll_group *pg, const struct wf_ep_handlers *h,
		void *ctx)
{
	ep->pg = pg;
	ep->h = h;
	ep->ctx = ctx;
	ep->reject = WF_REJECT_NONE;
	memset(&ep->params, 0, sizeof(ep->params));
}

int wf_transport_create(const struct wf_transport_ops *ops, const struct wf_transport_opts *opts,
			struct wf_transport **out)
{
	if (!ops || !opts || opts->capsule_size < WF_CAPSULE_MIN || opts->max_queue_depth == 0 ||
	    opts->max_queue_depth > UINT16_MAX || opts->srq_depth == 0)
		return -EINVAL;
	return ops->create(opts, out);
}

void wf_transport_destroy(struct wf_transport *t)
{
	if (t)
		t->ops->destroy(t);
}

const char *wf_transport_name(const struct wf_transport *t)
{
	return t->ops->name;
}

const struct wf_transport_opts *wf_transport_opts(const struct wf_transport *t)
{
	return &t->opts;
}

int wf_mr_reg(struct wf_transport *t, void *addr, size_t len, unsigned access, struct wf_mr **out)
{
	if (!addr || len == 0 ||
	    (access &
	     ~(unsigned)(WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE | WF_ACCESS_GRANT)))
		return -EINVAL;
	return t->ops->mr_reg(t, addr, len, access, out);
}

int wf_grant_create(struct wf_transport *t, struct wf_grant **out)
{
	return t->ops->grant_create(t, out);
}

void wf_grant_destroy(struct wf_grant *g)
{
	if (g)
		g->transport->ops->grant_destroy(g);
}

uint32_t wf_grant_key(const struct wf_grant *g)
{
	return g->key;
}

/* Local memory an xfer names must lie in its registration, of this transport. */
static bool in_mr(const struct wf_ep *ep, const struct wf_xfer *x)
{
	return x->mr && x->mr->transport == ep->pg->transport &&
	       (char *)x->buf >= (char *)x->mr->addr &&
	       (char *)x->buf + x->len <= (char *)x->mr->addr + x->mr->len;
}

void wf_mr_dereg(struct wf_mr *mr)
{
	if (mr)
		mr->transport->ops->mr_dereg(mr);
}

int wf_poll_group_create(struct wf_transport *t, struct wf_poll_group **out)
{
	int rc = t->ops->pg_create(t, out);

	if (!rc)
		wf_spin_init(&(*out)->spin, t->opts.spin_us);
	return rc;
}

void wf_poll_group_destroy(struct wf_poll_group *pg)
{
	if (pg)
		pg->transport->ops->pg_destroy(pg);
}

/*
 * One poll of the transport, whose finds the budget learns from. Arrivals
 * teach it. A SEND's completion comes a round trip after its post whatever
 * the peer does; learning from it kept a 128 KiB reader spinning between
 * replies milliseconds apart, on the CPU rxe needed to move them. It still
 * restarts the spin, which a QD1 reply then lands in (core/spin.h).
 */
static int poll_and_learn(struct wf_poll_group *pg, int timeout_ms)
{
	uint64_t arrivals = pg->arrivals;
	int n = pg->transport->ops->pg_poll(pg, timeout_ms);

	if (n > 0 && pg->spin.max_ns)
		wf_spin_found(&pg->spin, wf_now_ns(), pg->arrivals != arrivals);
	return n;
}

/*
 * A caller that would sleep is waiting for something: within the budget the
 * gaps between work have earned, poll instead, and save a wake-up through
 * the kernel. Each round yields, so the softirq that carries soft-RoCE's
 * packets, or another spinner, still gets this CPU.
 */
int wf_poll_group_poll(struct wf_poll_group *pg, int timeout_ms)
{
	int n;

	while (timeout_ms && wf_spin_keep(&pg->spin, wf_now_ns())) {
		n = poll_and_learn(pg, 0);
		if (n)
			return n;
		if (sched_yield())
			return -errno;
	}
	return poll_and_learn(pg, timeout_ms);
}

uint64_t wf_poll_group_arrivals(const struct wf_poll_group *pg)
{
	return pg->arrivals;
}

int wf_poll_group_fd(struct wf_poll_group *pg)
{
	return pg->transport->ops->pg_fd(pg);
}

int wf_poll_group_arm(struct wf_poll_group *pg)
{
	return pg->transport->ops->pg_arm ? pg->transport->ops->pg_arm(pg) : 0;
}

struct wf_transport *wf_poll_group_transport(struct wf_poll_group *pg)
{
	return pg->transport;
}

int wf_listen(struct wf_poll_group *pg, const char *addr, uint16_t port,
	      const struct wf_listen_handlers *h, void *ctx, struct wf_listener **out)
{
	struct wf_listener *l;
	int ret;

	if (!addr || !h || !h->connect_request || !out)
		return -EINVAL;
	ret = pg->transport->ops->listen(pg, addr, port, &l);
	if (ret)
		return ret;
	l->h = h;
	l->ctx = ctx;
	*out = l;
	return 0;
}

uint16_t wf_listener_port(const struct wf_listener *l)
{
	return l->port;
}

void *wf_listener_ctx(const struct wf_listener *l)
{
	return l->ctx;
}

void wf_listener_close(struct wf_listener *l)
{
	if (l)
		l->pg->transport->ops->listener_close(l);
}

int wf_connect(struct wf_poll_group *pg, const char *addr, uint16_t port,
	       const struct wf_conn_params *params, const struct wf_ep_handlers *h, void *ctx,
	       int timeout_ms, struct wf_ep **out)
{
	struct wf_ep *ep;
	int ret;

	if (!addr || !params || !h || !h->recv || !h->event || !out || timeout_ms <= 0 ||
	    memchr(params->host_id, '\0', sizeof(params->host_id)) == NULL ||
	    params->host_id[0] == '\0')
		return -EINVAL;
	ret = pg->transport->ops->connect(pg, addr, port, timeout_ms, &ep);
	if (ret)
		return ret;
	/* The transport sends ep->params, so fill them before the first poll. */
	wf_ep_init(ep, pg, h, ctx);
	ep->params = *params;
	*out = ep;
	return 0;
}

int wf_ep_post(struct wf_ep *ep, struct wf_xfer *x)
{
	if (!x)
		return -EINVAL;
	/* A revoke names a grant, and moves nothing. */
	if (x->op == WF_XFER_REVOKE)
		return x->grant && x->grant->transport == ep->pg->transport && x->done &&
			       !x->with_imm
			   ? ep->pg->transport->ops->post(ep, x)
			   : -EINVAL;
	if (!x->buf || x->len == 0 ||
	    (x->with_imm && x->op != WF_XFER_SEND && x->op != WF_XFER_WRITE))
		return -EINVAL;
	switch (x->op) {
	case WF_XFER_SEND:
		if (x->len > ep->params.capsule_size || !x->done || (x->with_imm && x->inv_key))
			return -EINVAL;
		break;
	case WF_XFER_READ:
	case WF_XFER_WRITE:
		/* A registration of another transport means nothing to this one's device. */
		if (!in_mr(ep, x) || x->len > x->remote.len || (x->op == WF_XFER_READ && !x->done))
			return -EINVAL;
		break;
	case WF_XFER_GRANT:
		/* Unsignaled: a grant that fails takes its endpoint, and what follows, down. */
		if (!in_mr(ep, x) || !(x->mr->access & WF_ACCESS_GRANT) || !x->grant ||
		    x->grant->transport != ep->pg->transport || x->done || !x->access ||
		    (x->access & ~(unsigned)(WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE)))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	return ep->pg->transport->ops->post(ep, x);
}

void wf_ep_disconnect(struct wf_ep *ep)
{
	ep->pg->transport->ops->disconnect(ep);
}

void *wf_ep_ctx(const struct wf_ep *ep)
{
	return ep->ctx;
}

const struct wf_conn_params *wf_ep_params(const struct wf_ep *ep)
{
	return &ep->params;
}

struct wf_poll_group *wf_ep_poll_group(const struct wf_ep *ep)
{
	return ep->pg;
}

enum wf_reject_reason wf_ep_reject_reason(const struct wf_ep *ep)
{
	return ep->reject;
}

void wf_rx_release(struct wf_rx *rx)
{
	struct wf_rx_impl *r = wf_container_of(rx, struct wf_rx_impl, rx);

	r->release(r);
}
