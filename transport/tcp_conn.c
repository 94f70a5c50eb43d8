// SPDX-License-Identifier: MIT
/*
 * Connection setup over TCP. After the TCP connect the client sends CONNECT
 * (struct wf_conn_wire); the target runs wf_conn_negotiate() and its
 * listener's connect_request handler, then answers ACCEPT (the negotiated
 * wf_conn_wire) or REJECT (a wf_reject_wire) and closes. Both sides bound
 * the handshake by a deadline that the poll loop enforces.
 */
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/tcp_priv.h"

#define ACCEPT_BATCH	32
#define ACCEPT_PAUSE_MS 100

static int resolve(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	char svc[8];
	int ret;

	snprintf(svc, sizeof(svc), "%u", (unsigned)port);
	ret = getaddrinfo(addr, svc, &hints, &res);
	if (ret)
		return ret == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Capsules are small and latency-bound: never let Nagle hold them back. */
static int set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ? -errno : 0;
}

static int bound_port(int fd, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* A non-blocking stream socket of the family @addr resolves to, and the address. */
static int open_socket(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len,
		       int *fd)
{
	int ret = resolve(addr, port, ss, len);

	if (ret)
		return ret;
	*fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return *fd < 0 ? -errno : 0;
}

static int listen_socket(const char *addr, uint16_t port, int *out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, ret;

	ret = open_socket(addr, port, &ss, &len, &fd);
	if (ret)
		return ret;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, SOMAXCONN)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

int wf_tcp_listen(struct wf_poll_group *base, const char *addr, uint16_t port,
		  struct wf_listener **out)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(base);
	struct epoll_event ev = {.events = EPOLLIN};
	struct wf_tcp_listener *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->kind = WF_TCP_KIND_LISTENER;
	l->base.pg = base;
	wf_tcp_list_init(&l->node);
	ret = listen_socket(addr, port, &l->fd);
	if (ret)
		goto err_free;
	ret = bound_port(l->fd, &l->base.port);
	if (ret)
		goto err_close;
	ev.data.ptr = &l->kind;
	if (epoll_ctl(pg->epfd, EPOLL_CTL_ADD, l->fd, &ev)) {
		ret = -errno;
		goto err_close;
	}
	wf_tcp_list_add_tail(&pg->listeners, &l->node);
	*out = &l->base;
	return 0;

err_close:
	close(l->fd);
err_free:
	free(l);
	return ret;
}

void wf_tcp_listener_close(struct wf_listener *base)
{
	struct wf_tcp_listener *l = wf_container_of(base, struct wf_tcp_listener, base);
	struct wf_tcp_pg *pg = wf_tcp_pg_of(base->pg);
	struct wf_tcp_node *n;

	close(l->fd);
	l->fd = -1;
	if (l->resume_at)
		pg->npaused--;
	l->resume_at = 0;
	/* Handshakes still under way are refused as BUSY rather than orphaned. */
	for (n = pg->eps.next; n != &pg->eps; n = n->next) {
		struct wf_tcp_ep *ep = wf_container_of(n, struct wf_tcp_ep, node);

		if (ep->listener == l)
			ep->listener = NULL;
	}
	/* An epoll batch may still name it: the poll loop frees it later. */
	wf_tcp_list_add_tail(&pg->dead, &l->node);
}

static void accept_one(struct wf_tcp_listener *l, int fd)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(l->base.pg);
	struct wf_tcp_ep *ep;
	int ret;

	ret = set_nodelay(fd);
	if (!ret)
		ret = wf_tcp_ep_alloc(pg, fd, &ep);
	if (ret) {
		wf_log_warn(pg->log, "tcp: dropping an incoming connection: %s", strerror(-ret));
		close(fd);
		return;
	}
	ep->passive = true;
	ep->listener = l;
	ep->state = WF_TCP_EP_HELLO;
	ep->deadline = wf_now_ns() + (uint64_t)WF_TCP_HELLO_TIMEOUT_MS * 1000000u;
	pg->nhello++;
}

/*
 * Out of fds or memory: the pending connection stays queued and a level-
 * triggered listener would wake us in a loop, so mute it for a while.
 */
static void pause_listener(struct wf_tcp_listener *l, int err)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(l->base.pg);
	struct epoll_event ev = {.events = 0, .data.ptr = &l->kind};

	wf_log_err(pg->log, "tcp: accept on port %u: %s; pausing %d ms", l->base.port,
		   strerror(err), ACCEPT_PAUSE_MS);
	if (epoll_ctl(pg->epfd, EPOLL_CTL_MOD, l->fd, &ev)) {
		wf_log_err(pg->log, "tcp: cannot pause listener: %s", strerror(errno));
		return;
	}
	l->resume_at = wf_now_ns() + ACCEPT_PAUSE_MS * 1000000ull;
	pg->npaused++;
}

int wf_tcp_listeners_resume(struct wf_tcp_pg *pg)
{
	struct epoll_event ev = {.events = EPOLLIN};
	uint64_t now = wf_now_ns(), next = UINT64_MAX;
	struct wf_tcp_node *n;

	if (!pg->npaused)
		return -1;
	for (n = pg->listeners.next; n != &pg->listeners; n = n->next) {
		struct wf_tcp_listener *l = wf_container_of(n, struct wf_tcp_listener, node);

		if (!l->resume_at)
			continue;
		if (l->resume_at > now) {
			next = l->resume_at < next ? l->resume_at : next;
			continue;
		}
		ev.data.ptr = &l->kind;
		if (epoll_ctl(pg->epfd, EPOLL_CTL_MOD, l->fd, &ev))
			wf_log_err(pg->log, "tcp: cannot resume listener: %s", strerror(errno));
		l->resume_at = 0;
		pg->npaused--;
	}
	return next == UINT64_MAX ? -1 : (int)((next - now + 999999) / 1000000);
}

void wf_tcp_listener_ready(struct wf_tcp_listener *l)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(l->base.pg);
	int i, fd;

	/* Level-triggered: what is left after a batch is reported again. */
	for (i = 0; i < ACCEPT_BATCH && l->fd >= 0; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			accept_one(l, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			pause_listener(l, errno);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			wf_log_err(pg->log, "tcp: accept on port %u: %s", l->base.port,
				   strerror(errno));
		break;
	}
}

int wf_tcp_connect(struct wf_poll_group *base, const char *addr, uint16_t port, int timeout_ms,
		   struct wf_ep **out)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(base);
	struct sockaddr_storage ss;
	struct wf_tcp_ep *ep;
	socklen_t len;
	int fd, ret;

	ret = open_socket(addr, port, &ss, &len, &fd);
	if (ret)
		return ret;
	ret = set_nodelay(fd);
	if (!ret)
		ret = wf_tcp_ep_alloc(pg, fd, &ep);
	if (ret) {
		close(fd);
		return ret;
	}
	ep->announced = true;
	ep->state = WF_TCP_EP_CONNECTING;
	ep->deadline = wf_now_ns() + (uint64_t)timeout_ms * 1000000u;
	pg->nhello++;
	/* The caller fills ep->params after we return: CONNECT goes out from poll. */
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		ep->can_write = true;
		wf_tcp_ep_want_work(ep);
	} else if (errno != EINPROGRESS) {
		wf_tcp_ep_down(ep, -errno);
	}
	*out = &ep->base;
	return 0;
}

/* The handshake is over: count it out of the deadlines and tell the handler. */
static void established(struct wf_tcp_ep *ep)
{
	ep->state = WF_TCP_EP_CONNECTED;
	ep->pg->nhello--;
	ep->base.h->event(&ep->base, WF_EP_CONNECTED, 0);
}

void wf_tcp_connect_done(struct wf_tcp_ep *ep)
{
	const struct wf_transport_opts *o = &ep->pg->t->base.opts;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		wf_tcp_ep_down(ep, -err);
		return;
	}
	ep->state = WF_TCP_EP_HELLO;
	/* Our receive buffers bound what we can take, whatever was asked. */
	if (ep->base.params.capsule_size > o->capsule_size)
		ep->base.params.capsule_size = o->capsule_size;
	wf_conn_encode(&ep->base.params, &ep->hello_out);
	/* The ring is empty before the handshake, so this cannot fail. */
	wf_tcp_ctl_push(ep, WF_TCP_CONNECT, 0, &ep->hello_out, sizeof(ep->hello_out), 0);
}

/* The listener's verdict on @params: 0 with handlers set, or a reject reason. */
static enum wf_reject_reason ask_listener(struct wf_tcp_ep *ep, const struct wf_conn_params *params,
					  const struct wf_ep_handlers **h, void **ctx,
					  struct wf_poll_group **pg)
{
	struct wf_tcp_listener *l = ep->listener;
	int ret;

	if (!l)
		return WF_REJECT_BUSY;
	*h = NULL;
	*ctx = NULL;
	*pg = l->base.pg;
	ret = l->base.h->connect_request(&l->base, params, h, ctx, pg);
	if (ret > 0 && ret < WF_REJECT_MAX_)
		return (enum wf_reject_reason)ret;
	if (ret == 0 && *h && (*h)->recv && (*h)->event && *pg &&
	    (*pg)->transport == l->base.pg->transport)
		return WF_REJECT_NONE;
	wf_log_err(ep->pg->log,
		   "tcp: connect_request handler returned %d without usable handlers or group",
		   ret);
	return WF_REJECT_BUSY;
}

static void target_hello(struct wf_tcp_ep *ep, uint8_t type, uint32_t len)
{
	struct wf_tcp_pg *pg = ep->pg;
	struct wf_poll_group *to = &pg->base;
	const struct wf_ep_handlers *h = NULL;
	struct wf_conn_params peer, params;
	struct wf_reject_wire rej = {.magic = htole32(WF_CONN_MAGIC)};
	enum wf_reject_reason reason;
	void *ctx = NULL;

	if (type != WF_TCP_CONNECT) {
		wf_log_warn(pg->log, "tcp: PDU type %u before CONNECT; closing", type);
		wf_tcp_ep_down(ep, -EPROTO);
		return;
	}
	reason = wf_conn_decode(&ep->hello_in, len, &peer);
	if (!reason)
		reason = wf_conn_negotiate(&pg->t->base.opts, &peer, &params);
	if (!reason)
		reason = ask_listener(ep, &params, &h, &ctx, &to);
	if (reason) {
		rej.reason = htole16((uint16_t)reason);
		wf_tcp_close_with(ep, -ECONNREFUSED, WF_TCP_REJECT, 0, 0, &rej, sizeof(rej));
		return;
	}
	wf_ep_init(&ep->base, to, h, ctx);
	ep->base.params = params;
	ep->listener = NULL;
	if (to != &pg->base)
		wf_tcp_ep_move(ep, wf_tcp_pg_of(to));
	else
		wf_tcp_accepted(ep);
}

void wf_tcp_accepted(struct wf_tcp_ep *ep)
{
	ep->announced = true;
	wf_conn_encode(&ep->base.params, &ep->hello_out);
	wf_tcp_ctl_push(ep, WF_TCP_ACCEPT, 0, &ep->hello_out, sizeof(ep->hello_out), 0);
	wf_tcp_ep_want_work(ep);
	established(ep);
}

static bool accept_fits(const struct wf_conn_params *asked, const struct wf_conn_params *got)
{
	return got->version == asked->version && got->queue_depth == asked->queue_depth &&
	       got->capsule_size >= WF_CAPSULE_MIN && got->capsule_size <= asked->capsule_size;
}

static void client_hello(struct wf_tcp_ep *ep, uint8_t type, uint32_t len)
{
	struct wf_conn_params p;

	if (type == WF_TCP_REJECT) {
		ep->base.reject = wf_reject_decode(&ep->hello_in, len);
		if (ep->base.reject == WF_REJECT_NONE)
			ep->base.reject = WF_REJECT_MALFORMED;
		wf_tcp_ep_down(ep, -ECONNREFUSED);
		return;
	}
	if (type != WF_TCP_ACCEPT || wf_conn_decode(&ep->hello_in, len, &p) ||
	    !accept_fits(&ep->base.params, &p)) {
		wf_log_warn(ep->pg->log, "tcp: bad answer (type %u) to CONNECT; closing", type);
		wf_tcp_ep_down(ep, -EPROTO);
		return;
	}
	/* Keep our own host identity; take what the target negotiated. */
	ep->base.params.capsule_size = p.capsule_size;
	established(ep);
}

void wf_tcp_hello_rx(struct wf_tcp_ep *ep, uint8_t type, uint32_t len)
{
	if (ep->passive)
		target_hello(ep, type, len);
	else
		client_hello(ep, type, len);
}
