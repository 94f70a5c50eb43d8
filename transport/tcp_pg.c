// SPDX-License-Identifier: MIT
/*
 * A TCP poll group: one epoll fd, edge-triggered sockets, a pool of receive
 * buffers, and the lists that keep callbacks inside wf_poll_group_poll():
 *   work  endpoints with queued writes or unread input, served next round
 *   reap  endpoints already closed whose xfers and handler are still due
 *   dead  closed listeners, freed once no epoll event can name them
 * Nothing is freed while an epoll batch is being walked, so a handler may
 * disconnect any endpoint or close any listener at any time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp_priv.h"

#define POLL_EVENTS 64

/*
 * Work queued outside a poll is run by the next one. Only an owner that armed
 * the group and may sleep on the fd instead needs it made readable: a write to
 * the eventfd, and a read to take it back, two system calls an I/O for a host
 * that busy-polls. A poll with a timeout arms nothing: it runs what was queued
 * before it sleeps, as the next one will (transport.h: poll or arm after posting).
 */
void wf_tcp_pg_kick(struct wf_tcp_pg *pg)
{
	uint64_t one = 1;

	if (pg->in_poll || pg->kicked || !pg->armed)
		return;
	if (write(pg->kickfd, &one, sizeof(one)) != sizeof(one)) {
		wf_log_err(pg->log, "tcp: cannot wake poll group: %s", strerror(errno));
		return;
	}
	pg->kicked = true;
}

void wf_tcp_ep_want_work(struct wf_tcp_ep *ep)
{
	if (ep->state == WF_TCP_EP_DOWN || ep->stall == WF_TCP_STALL_MOVE)
		return;
	wf_tcp_list_add_tail(&ep->pg->work, &ep->work);
	wf_tcp_pg_kick(ep->pg);
}

struct wf_tcp_rxbuf *wf_tcp_rxbuf_get(struct wf_tcp_pg *pg)
{
	if (pg->nfree == 0)
		return NULL;
	return &pg->bufs[pg->free[--pg->nfree]];
}

static void rxbuf_put(struct wf_tcp_pg *pg, struct wf_tcp_rxbuf *b)
{
	pg->free[pg->nfree++] = b->index;
	if (pg->nstalled)
		wf_tcp_pg_kick(pg);
}

static void rx_release(struct wf_rx_impl *r)
{
	struct wf_tcp_rxbuf *b = wf_container_of(r, struct wf_tcp_rxbuf, impl);

	rxbuf_put(b->pg, b);
}

/* Put @ep's socket in @pg's epoll set; edge-triggered, so it reports what is ready now. */
static int ep_watch(struct wf_tcp_pg *pg, struct wf_tcp_ep *ep)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};

	ev.data.ptr = &ep->kind;
	if (epoll_ctl(pg->epfd, EPOLL_CTL_ADD, ep->fd, &ev))
		return -errno;
	return 0;
}

int wf_tcp_ep_alloc(struct wf_tcp_pg *pg, int fd, struct wf_tcp_ep **out)
{
	struct wf_tcp_ep *ep;
	int ret;

	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->kind = WF_TCP_KIND_EP;
	ep->pg = pg;
	ep->fd = fd;
	ep->base.pg = &pg->base;
	wf_tcp_list_init(&ep->node);
	wf_tcp_list_init(&ep->work);
	ret = ep_watch(pg, ep);
	if (ret) {
		free(ep);
		return ret;
	}
	wf_tcp_list_add_tail(&pg->eps, &ep->node);
	*out = ep;
	return 0;
}

void wf_tcp_ep_move(struct wf_tcp_ep *ep, struct wf_tcp_pg *to)
{
	struct wf_tcp_pg *pg = ep->pg;

	if (epoll_ctl(pg->epfd, EPOLL_CTL_DEL, ep->fd, NULL)) {
		int ret = -errno;

		/* Cannot happen for a watched socket; if it does, fail it where it is. */
		wf_log_err(pg->log, "tcp: cannot move a connection: %s", strerror(-ret));
		ep->announced = true;
		wf_tcp_ep_down(ep, ret);
		return;
	}
	/* Out of every list of this group but moving: no deadline, no teardown here. */
	wf_tcp_list_del(&ep->node);
	pg->nhello--;
	ep->stall = WF_TCP_STALL_MOVE;
	ep->move_to = to;
	wf_tcp_list_add_tail(&pg->moving, &ep->work);
}

/* Wake @pg from another thread: only the eventfd, none of its owner's flags. */
static void kick_remote(struct wf_tcp_pg *pg)
{
	uint64_t one = 1;

	if (write(pg->kickfd, &one, sizeof(one)) != sizeof(one))
		wf_log_err(pg->log, "tcp: cannot wake a poll group: %s", strerror(errno));
}

/* Give the endpoints accepted for other groups to them; ours is done with them. */
static void hand_over(struct wf_tcp_pg *pg)
{
	while (!wf_tcp_list_empty(&pg->moving)) {
		struct wf_tcp_ep *ep = wf_container_of(pg->moving.next, struct wf_tcp_ep, work);
		struct wf_tcp_pg *to = ep->move_to;

		wf_tcp_list_del(&ep->work);
		ep->pg = to;
		pthread_mutex_lock(&to->handoff_lock);
		wf_tcp_list_add_tail(&to->handoff, &ep->work);
		pthread_mutex_unlock(&to->handoff_lock);
		kick_remote(to);
	}
}

/* Take in what other groups handed over: watch, then ACCEPT and announce from here. */
static int adopt(struct wf_tcp_pg *pg)
{
	struct wf_tcp_node got;
	int n = 0;

	/*
	 * Every poll round comes here, twice, and handoffs are rare: a lock
	 * each time cost a spinning thread. Each handoff is queued before its
	 * kick, so only a round that read a kick has any to take.
	 */
	if (!pg->adopt_due)
		return 0;
	pg->adopt_due = false;
	wf_tcp_list_init(&got);
	pthread_mutex_lock(&pg->handoff_lock);
	while (!wf_tcp_list_empty(&pg->handoff))
		wf_tcp_list_add_tail(&got, pg->handoff.next);
	pthread_mutex_unlock(&pg->handoff_lock);
	while (!wf_tcp_list_empty(&got)) {
		struct wf_tcp_ep *ep = wf_container_of(got.next, struct wf_tcp_ep, work);
		int ret;

		wf_tcp_list_del(&ep->work);
		ep->stall = WF_TCP_STALL_NONE;
		ep->move_to = NULL;
		wf_tcp_list_add_tail(&pg->eps, &ep->node);
		pg->nhello++;
		ret = ep_watch(pg, ep);
		if (ret) {
			ep->announced = true;
			wf_tcp_ep_down(ep, ret);
		} else {
			wf_tcp_accepted(ep);
		}
		n++;
	}
	return n;
}

void wf_tcp_ep_down(struct wf_tcp_ep *ep, int status)
{
	struct wf_tcp_pg *pg = ep->pg;

	if (ep->state == WF_TCP_EP_DOWN)
		return;
	if (wf_tcp_ep_timed(ep))
		pg->nhello--;
	if (ep->stall == WF_TCP_STALL_BUF)
		pg->nstalled--;
	ep->stall = WF_TCP_STALL_NONE;
	ep->down_from = ep->state == WF_TCP_EP_CLOSING ? ep->closing_from : ep->state;
	ep->state = WF_TCP_EP_DOWN;
	ep->down_status = status;
	/* Closing also drops it from the epoll set; queued events are ignored. */
	close(ep->fd);
	ep->fd = -1;
	if (ep->rx_buf) {
		rxbuf_put(pg, ep->rx_buf);
		ep->rx_buf = NULL;
	}
	wf_tcp_list_add_tail(&pg->reap, &ep->work);
	wf_tcp_pg_kick(pg);
}

void wf_tcp_disconnect(struct wf_ep *base)
{
	struct wf_tcp_ep *ep = wf_tcp_ep_of(base);

	/* Already on its way down for a reason: keep that reason. */
	wf_tcp_ep_down(ep, ep->state == WF_TCP_EP_CLOSING ? ep->closing_status : 0);
}

/* Fail what is left, tell the handler (if it ever knew the endpoint), free it. */
static void reap_one(struct wf_tcp_ep *ep)
{
	enum wf_ep_event ev = WF_EP_DISCONNECTED;
	int status = ep->down_status;

	wf_tcp_list_del(&ep->work);
	wf_tcp_list_del(&ep->node);
	wf_tcp_fail_xfers(ep);
	/* Never connected: the one final event is a failed connect, and says why. */
	if (ep->down_from < WF_TCP_EP_CONNECTED) {
		ev = WF_EP_CONNECT_FAILED;
		if (status == 0)
			status = -ECANCELED;
	}
	if (ep->announced)
		ep->base.h->event(&ep->base, ev, status);
	wf_tcp_grants_drop(ep);
	free(ep);
}

static void free_dead_listeners(struct wf_tcp_pg *pg)
{
	while (!wf_tcp_list_empty(&pg->dead)) {
		struct wf_tcp_node *n = pg->dead.next;

		wf_tcp_list_del(n);
		free(wf_container_of(n, struct wf_tcp_listener, node));
	}
}

/* Buffers came back: let every endpoint that waited for one try again. */
static void resume_stalled(struct wf_tcp_pg *pg)
{
	struct wf_tcp_node *n;

	if (!pg->nstalled || !pg->nfree)
		return;
	for (n = pg->eps.next; n != &pg->eps; n = n->next) {
		struct wf_tcp_ep *ep = wf_container_of(n, struct wf_tcp_ep, node);

		if (ep->stall == WF_TCP_STALL_BUF) {
			ep->stall = WF_TCP_STALL_NONE;
			pg->nstalled--;
			wf_tcp_ep_want_work(ep);
		}
	}
}

/* One turn for every endpoint on the work list, then every teardown due. */
static int run_pending(struct wf_tcp_pg *pg)
{
	struct wf_tcp_node batch;
	int n = adopt(pg);

	resume_stalled(pg);
	/* Endpoints that ask for another turn meanwhile wait for the next round. */
	wf_tcp_list_init(&batch);
	if (!wf_tcp_list_empty(&pg->work)) {
		batch.next = pg->work.next;
		batch.prev = pg->work.prev;
		batch.next->prev = &batch;
		batch.prev->next = &batch;
		wf_tcp_list_init(&pg->work);
	}
	while (!wf_tcp_list_empty(&batch)) {
		struct wf_tcp_ep *ep = wf_container_of(batch.next, struct wf_tcp_ep, work);

		wf_tcp_list_del(&ep->work);
		if (wf_tcp_ep_progress(ep))
			wf_tcp_ep_want_work(ep);
		n++;
	}
	hand_over(pg);
	while (!wf_tcp_list_empty(&pg->reap)) {
		reap_one(wf_container_of(pg->reap.next, struct wf_tcp_ep, work));
		n++;
	}
	free_dead_listeners(pg);
	return n;
}

/* Time out late handshakes and closes; the ms until the next deadline, or -1 for none. */
static int expire_handshakes(struct wf_tcp_pg *pg)
{
	uint64_t now = wf_now_ns(), next = UINT64_MAX;
	struct wf_tcp_node *n;

	if (!pg->nhello)
		return -1;
	for (n = pg->eps.next; n != &pg->eps; n = n->next) {
		struct wf_tcp_ep *ep = wf_container_of(n, struct wf_tcp_ep, node);

		if (!wf_tcp_ep_timed(ep))
			continue;
		if (ep->deadline <= now)
			wf_tcp_ep_down(ep, ep->state == WF_TCP_EP_CLOSING ? ep->closing_status
									  : -ETIMEDOUT);
		else if (ep->deadline < next)
			next = ep->deadline;
	}
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now + 999999) / 1000000);
}

static void ep_event(struct wf_tcp_ep *ep, uint32_t events)
{
	if (ep->state == WF_TCP_EP_DOWN)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		ep->can_read = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		ep->hup = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		ep->can_write = true;
	if (wf_tcp_ep_progress(ep))
		wf_tcp_ep_want_work(ep);
}

static void dispatch(struct wf_tcp_pg *pg, const struct epoll_event *e)
{
	enum wf_tcp_kind *kind = e->data.ptr;
	uint64_t v;

	switch (*kind) {
	case WF_TCP_KIND_KICK:
		if (read(pg->kickfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			wf_log_err(pg->log, "tcp: eventfd read: %s", strerror(errno));
		pg->kicked = false;
		pg->adopt_due = true;
		break;
	case WF_TCP_KIND_LISTENER:
		wf_tcp_listener_ready(wf_container_of(kind, struct wf_tcp_listener, kind));
		break;
	case WF_TCP_KIND_EP:
		ep_event(wf_container_of(kind, struct wf_tcp_ep, kind), e->events);
		break;
	}
}

static int wait_events(struct wf_tcp_pg *pg, int timeout_ms)
{
	struct epoll_event evs[POLL_EVENTS];
	int nev, i;

	nev = epoll_wait(pg->epfd, evs, POLL_EVENTS, timeout_ms);
	if (nev < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < nev; i++)
		dispatch(pg, &evs[i]);
	return nev;
}

/*
 * A group with no endpoint gets work only from a listener or a handoff, and
 * those can wait a millisecond: a poll that may not sleep looks for them now
 * and then, as verbs looks at its CM channel, not at every round of a
 * spin. A thread spinning for another transport's reply then saves the
 * system call. Before sleeping on the fd, arm looks (wf_tcp_pg_arm()).
 */
static bool quiet_skip(struct wf_tcp_pg *pg, int timeout_ms)
{
	if (timeout_ms || !wf_tcp_list_empty(&pg->eps) || !wf_tcp_list_empty(&pg->work) ||
	    !wf_tcp_list_empty(&pg->reap) || !wf_tcp_list_empty(&pg->moving) || pg->npaused)
		return false;
	return !wf_look_due(&pg->quiet, false);
}

/* @arm: the caller may sleep on the fd next, without polling first. */
static int poll_round(struct wf_tcp_pg *pg, int timeout_ms, bool arm)
{
	int n, ret, next;

	pg->in_poll = true;
	n = run_pending(pg);
	if (n || !wf_tcp_list_empty(&pg->work))
		timeout_ms = 0;
	next = expire_handshakes(pg);
	ret = wf_tcp_listeners_resume(pg);
	if (ret >= 0 && (next < 0 || ret < next))
		next = ret;
	if (next >= 0 && (timeout_ms < 0 || next < timeout_ms))
		timeout_ms = next;
	ret = wait_events(pg, timeout_ms);
	if (ret >= 0) {
		n += ret;
		expire_handshakes(pg);
		n += run_pending(pg);
		ret = n;
	}
	pg->in_poll = false;
	pg->armed = arm;
	/* Handlers may have queued work: keep the fd readable for outside loops. */
	if (!wf_tcp_list_empty(&pg->work) || !wf_tcp_list_empty(&pg->reap))
		wf_tcp_pg_kick(pg);
	return ret;
}

int wf_tcp_pg_poll(struct wf_poll_group *base, int timeout_ms)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(base);

	return quiet_skip(pg, timeout_ms) ? 0 : poll_round(pg, timeout_ms, false);
}

int wf_tcp_pg_arm(struct wf_poll_group *base)
{
	/* The fd is level-triggered and always live: a look takes what woke it. */
	return poll_round(wf_tcp_pg_of(base), 0, true);
}

int wf_tcp_pg_fd(struct wf_poll_group *pg)
{
	return wf_tcp_pg_of(pg)->epfd;
}

static int pool_init(struct wf_tcp_pg *pg, const struct wf_transport_opts *o)
{
	uint32_t i;

	pg->nbufs = o->srq_depth;
	if ((size_t)o->capsule_size > SIZE_MAX / pg->nbufs)
		return -EINVAL;
	pg->slab = malloc((size_t)o->capsule_size * pg->nbufs);
	pg->bufs = calloc(pg->nbufs, sizeof(*pg->bufs));
	pg->free = calloc(pg->nbufs, sizeof(*pg->free));
	if (!pg->slab || !pg->bufs || !pg->free)
		return -ENOMEM;
	for (i = 0; i < pg->nbufs; i++) {
		struct wf_tcp_rxbuf *b = &pg->bufs[i];

		b->impl.rx.data = pg->slab + (size_t)i * o->capsule_size;
		b->impl.release = rx_release;
		b->pg = pg;
		b->index = i;
		pg->free[i] = pg->nbufs - 1 - i;
	}
	pg->nfree = pg->nbufs;
	return 0;
}

static void pg_free(struct wf_tcp_pg *pg)
{
	if (pg->handoff_init)
		pthread_mutex_destroy(&pg->handoff_lock);
	if (pg->kickfd >= 0)
		close(pg->kickfd);
	if (pg->epfd >= 0)
		close(pg->epfd);
	free(pg->slab);
	free(pg->bufs);
	free(pg->free);
	free(pg);
}

int wf_tcp_pg_create(struct wf_transport *t, struct wf_poll_group **out)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct wf_tcp_pg *pg;
	int ret;

	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->base.transport = t;
	pg->t = wf_container_of(t, struct wf_tcp_transport, base);
	pg->log = t->opts.log;
	pg->kick_kind = WF_TCP_KIND_KICK;
	ret = -pthread_mutex_init(&pg->handoff_lock, NULL);
	if (ret) {
		free(pg);
		return ret;
	}
	pg->handoff_init = true;
	wf_tcp_list_init(&pg->eps);
	wf_tcp_list_init(&pg->work);
	wf_tcp_list_init(&pg->reap);
	wf_tcp_list_init(&pg->listeners);
	wf_tcp_list_init(&pg->dead);
	wf_tcp_list_init(&pg->moving);
	wf_tcp_list_init(&pg->handoff);
	pg->epfd = epoll_create1(EPOLL_CLOEXEC);
	pg->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pg->epfd < 0 || pg->kickfd < 0) {
		ret = -errno;
		goto err;
	}
	ev.data.ptr = &pg->kick_kind;
	if (epoll_ctl(pg->epfd, EPOLL_CTL_ADD, pg->kickfd, &ev)) {
		ret = -errno;
		goto err;
	}
	ret = pool_init(pg, &t->opts);
	if (ret)
		goto err;
	*out = &pg->base;
	return 0;

err:
	pg_free(pg);
	return ret;
}

void wf_tcp_pg_destroy(struct wf_poll_group *base)
{
	struct wf_tcp_pg *pg = wf_tcp_pg_of(base);
	struct wf_tcp_node *n;

	pg->in_poll = true;
	while (!wf_tcp_list_empty(&pg->listeners))
		wf_tcp_listener_close(
		    &wf_container_of(pg->listeners.next, struct wf_tcp_listener, node)->base);
	/* Moving endpoints belong to their new group; handed-over ones are ours to close. */
	hand_over(pg);
	adopt(pg);
	/* Handlers may connect anew while we close; go round until nothing is left. */
	while (!wf_tcp_list_empty(&pg->eps)) {
		for (n = pg->eps.next; n != &pg->eps; n = n->next)
			wf_tcp_ep_down(wf_container_of(n, struct wf_tcp_ep, node), 0);
		while (!wf_tcp_list_empty(&pg->reap))
			reap_one(wf_container_of(pg->reap.next, struct wf_tcp_ep, work));
	}
	free_dead_listeners(pg);
	pg_free(pg);
}
