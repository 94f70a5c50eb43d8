// SPDX-License-Identifier: MIT
/*
 * PDUs on a TCP endpoint: capsules, and RDMA READ/WRITE emulated by PDUs
 * that name the target's (address, key).
 *
 * Requests (the caller's xfers) go out in post order, batched into one
 * writev with the replies this side owes (ACK, READ_RESP, handshake). A
 * request is tagged with its sequence number; the target answers in order,
 * so replies match the oldest xfer awaiting one.
 *
 * Completion: an xfer completes once it and every xfer posted before it are
 * done, so the completions of one endpoint come in post order as on a verbs
 * QP. A SEND is done when written to the socket, a READ when its data has
 * arrived, a signaled WRITE when the target ACKs it. An unsignaled WRITE
 * needs no reply of its own, but the next signaled xfer then asks for an
 * ACK, so a violation by the WRITE is known before that xfer completes.
 *
 * Credits: a requester keeps at most WF_TCP_CTL_DEPTH requests awaiting a
 * reply, so the target's reply ring cannot overflow and the target never
 * stops reading for want of room (two such stalls facing each other, with
 * both sockets full, would deadlock). A peer that sends more is broken.
 *
 * The target checks key, access and bounds before it touches memory, with
 * the registration table read-locked around check and copy. A violation
 * sends TERM naming the request's tag and takes the endpoint down; the
 * requester fails the first signaled xfer at or after that tag with the
 * TERM's errno, and every other one with -ECONNRESET.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "transport/tcp_priv.h"

#define TX_ITEMS  16   /* PDUs per writev */
#define TX_ROUNDS 8    /* writevs per endpoint turn */
#define RX_STEPS  256  /* rx steps per endpoint turn, so one peer cannot hog the group */
#define RX_DIRECT 8192 /* a payload at least this big skips the read-ahead buffer */
#define MAX_ERRNO 4095

struct tx_item {
	struct wf_tcp_pdu hdr; /* wire order */
	const void *data;
	uint32_t len;
	bool ctl;
};

static void pdu_fill(struct wf_tcp_pdu *w, uint8_t type, uint8_t flags, uint32_t len, uint64_t tag,
		     uint64_t raddr, uint32_t rkey, uint32_t arg)
{
	*w = (struct wf_tcp_pdu){
	    .type = type,
	    .flags = flags,
	    .len = htole32(len),
	    .tag = htole64(tag),
	    .raddr = htole64(raddr),
	    .rkey = htole32(rkey),
	    .arg = htole32(arg),
	};
}

int wf_tcp_ctl_push(struct wf_tcp_ep *ep, uint8_t type, uint64_t tag, const void *data,
		    uint32_t len, uint32_t key)
{
	struct wf_tcp_ctl *c;

	if (ep->ctl_count == WF_TCP_CTL_DEPTH)
		return -ENOSPC;
	c = &ep->ctl[(ep->ctl_head + ep->ctl_count) % WF_TCP_CTL_DEPTH];
	pdu_fill(&c->hdr, type, 0, len, tag, 0, 0, 0);
	c->data = data;
	c->key = key;
	ep->ctl_count++;
	return 0;
}

static bool ctl_full(const struct wf_tcp_ep *ep)
{
	return ep->ctl_count == WF_TCP_CTL_DEPTH;
}

/* xfers queue through their next_ field, as the contract reserves it for us. */
static void xfer_append(struct wf_xfer **head, struct wf_xfer **tail, struct wf_xfer *x)
{
	x->next_ = NULL;
	if (*tail)
		(*tail)->next_ = x;
	else
		*head = x;
	*tail = x;
}

int wf_tcp_post(struct wf_ep *base, struct wf_xfer *x)
{
	struct wf_tcp_ep *ep = wf_tcp_ep_of(base);

	if (ep->state != WF_TCP_EP_CONNECTED)
		return -ENOTCONN;
	/* Nothing to send: live at once, ahead of the capsule that names it. */
	if (x->op == WF_XFER_GRANT)
		return wf_tcp_grant_post(ep, x);
	/* Nothing to send either: dead at once, done at the next progress, never inside a post. */
	if (x->op == WF_XFER_REVOKE) {
		int ret = wf_tcp_grant_revoke(ep, x->grant);

		if (ret)
			return ret;
		xfer_append(&ep->rvq_head, &ep->rvq_tail, x);
		wf_tcp_ep_want_work(ep);
		return 0;
	}
	/* status_ is 1 while the xfer needs a reply from the peer to complete. */
	switch (x->op) {
	case WF_XFER_WRITE:
		x->status_ = x->done != NULL;
		ep->uncovered = !x->done;
		break;
	case WF_XFER_READ:
		x->status_ = 1;
		ep->uncovered = false;
		break;
	default:
		x->status_ = ep->uncovered;
		ep->uncovered = false;
		break;
	}
	xfer_append(&ep->txq_head, &ep->txq_tail, x);
	wf_tcp_ep_want_work(ep);
	return 0;
}

static void item_of_xfer(struct tx_item *it, const struct wf_xfer *x, uint64_t seq)
{
	uint8_t flags = x->status_ == 1 ? WF_TCP_F_ACK : 0;

	it->ctl = false;
	it->data = x->buf;
	it->len = x->len;
	switch (x->op) {
	case WF_XFER_WRITE:
		pdu_fill(&it->hdr, WF_TCP_WRITE, flags | (x->with_imm ? WF_TCP_F_IMM : 0), x->len,
			 seq, x->remote.addr, x->remote.key, x->with_imm ? x->imm : 0);
		break;
	case WF_XFER_READ:
		pdu_fill(&it->hdr, WF_TCP_READ_REQ, 0, 0, seq, x->remote.addr, x->remote.key,
			 x->len);
		it->data = NULL;
		it->len = 0;
		break;
	default:
		/* A capsule's rkey names the peer's grant it ends, as SEND_WITH_INV does. */
		pdu_fill(&it->hdr, WF_TCP_CAPSULE, flags | (x->with_imm ? WF_TCP_F_IMM : 0), x->len,
			 seq, 0, x->inv_key, x->with_imm ? x->imm : 0);
		break;
	}
}

static void item_of_ctl(struct tx_item *it, const struct wf_tcp_ctl *c)
{
	it->ctl = true;
	it->hdr = c->hdr;
	it->data = c->data;
	it->len = le32toh(c->hdr.len);
}

/* The next PDUs to write: the half-written one first, then replies, then requests. */
static int gather(struct wf_tcp_ep *ep, struct tx_item *items, int max)
{
	struct wf_xfer *x = ep->txq_head;
	uint64_t seq = ep->tx_seq;
	uint32_t c;
	int n = 0;

	uint32_t due = ep->replies_due;

	if (ep->tx_cur == WF_TCP_TX_XFER) {
		due += x->status_ == 1;
		item_of_xfer(&items[n++], x, seq++);
		x = x->next_;
	}
	for (c = 0; c < ep->ctl_count && n < max; c++)
		item_of_ctl(&items[n++], &ep->ctl[(ep->ctl_head + c) % WF_TCP_CTL_DEPTH]);
	for (; x && n < max; x = x->next_) {
		/* Out of credits: this and everything after it waits for replies. */
		if (x->status_ == 1 && due++ >= WF_TCP_CTL_DEPTH)
			break;
		item_of_xfer(&items[n++], x, seq++);
	}
	return n;
}

static bool has_read_resp(const struct tx_item *items, int n)
{
	for (int i = 0; i < n; i++)
		if (items[i].ctl && items[i].hdr.type == WF_TCP_READ_RESP)
			return true;
	return false;
}

/* With the table read-locked: a live grant of this endpoint, or a registration, allows it. */
static bool access_ok(struct wf_tcp_ep *ep, uint32_t key, uint64_t addr, uint64_t len,
		      unsigned access)
{
	return wf_tcp_grant_ok(ep, key, addr, len, access) ||
	       wf_tcp_mr_find(ep->pg->t, key, addr, len, access) != NULL;
}

/* With the table locked: how many items may go out before memory deregistered since. */
static int still_registered(struct wf_tcp_ep *ep, const struct tx_item *items, int n)
{
	uint32_t c = 0;

	for (int i = 0; i < n; i++) {
		const struct wf_tcp_ctl *ctl;

		if (!items[i].ctl)
			continue;
		ctl = &ep->ctl[(ep->ctl_head + c++) % WF_TCP_CTL_DEPTH];
		if (ctl->hdr.type == WF_TCP_READ_RESP &&
		    !access_ok(ep, ctl->key, (uintptr_t)ctl->data, items[i].len,
			       WF_ACCESS_REMOTE_READ))
			return i;
	}
	return n;
}

static int to_iov(const struct tx_item *items, int n, size_t off, struct iovec *iov)
{
	int cnt = 0;

	for (int i = 0; i < n; i++, off = 0) {
		const char *hdr = (const char *)&items[i].hdr;

		if (off < sizeof(items[i].hdr))
			iov[cnt++] =
			    (struct iovec){(void *)(hdr + off), sizeof(items[i].hdr) - off};
		off = off > sizeof(items[i].hdr) ? off - sizeof(items[i].hdr) : 0;
		if (items[i].len > off)
			iov[cnt++] =
			    (struct iovec){(char *)items[i].data + off, items[i].len - off};
	}
	return cnt;
}

static void pop_written(struct wf_tcp_ep *ep, bool ctl)
{
	struct wf_xfer *x = ep->txq_head;

	if (ctl) {
		ep->ctl_head = (ep->ctl_head + 1) % WF_TCP_CTL_DEPTH;
		ep->ctl_count--;
		return;
	}
	ep->txq_head = x->next_;
	if (!ep->txq_head)
		ep->txq_tail = NULL;
	ep->tx_seq++;
	ep->replies_due += x->status_ == 1;
	xfer_append(&ep->flq_head, &ep->flq_tail, x);
}

/* Account @written bytes against @items: finished PDUs leave their queue. */
static void consume(struct wf_tcp_ep *ep, const struct tx_item *items, int n, size_t written)
{
	size_t off = ep->tx_off;

	ep->tx_cur = WF_TCP_TX_NONE;
	ep->tx_off = 0;
	for (int i = 0; i < n && written; i++, off = 0) {
		size_t size = sizeof(items[i].hdr) + items[i].len - off;

		if (written < size) {
			ep->tx_cur = items[i].ctl ? WF_TCP_TX_CTL : WF_TCP_TX_XFER;
			ep->tx_off = off + written;
			return;
		}
		written -= size;
		pop_written(ep, items[i].ctl);
	}
}

/* A failed read or write: 0 to retry when ready again (readiness spent on EAGAIN), -1 if down. */
static int sock_error(struct wf_tcp_ep *ep, int err, bool *ready)
{
	if (err == EAGAIN || err == EWOULDBLOCK) {
		*ready = false;
		return 0;
	}
	if (err == EINTR)
		return 0;
	wf_tcp_ep_down(ep, -err);
	return -1;
}

/* writev(2) that reports a closed peer as EPIPE rather than killing us with SIGPIPE. */
static ssize_t send_iov(int fd, struct iovec *iov, int cnt)
{
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};

	return sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* One writev of up to @max PDUs: 1 if bytes went out, 0 if blocked, -1 if now down. */
static int tx_once(struct wf_tcp_ep *ep, int max)
{
	struct tx_item items[TX_ITEMS];
	struct iovec iov[2 * TX_ITEMS];
	bool locked;
	ssize_t ret;
	int n, err;

	n = gather(ep, items, max);
	if (!n)
		return 0;
	locked = has_read_resp(items, n);
	if (locked) {
		wf_tcp_mr_rdlock(ep->pg->t);
		n = still_registered(ep, items, n);
	}
	if (!n) {
		wf_tcp_mr_unlock(ep->pg->t);
		wf_log_err(ep->pg->log, "tcp: memory deregistered under a peer's READ; closing");
		wf_tcp_ep_down(ep, -EACCES);
		return -1;
	}
	ret = send_iov(ep->fd, iov, to_iov(items, n, ep->tx_off, iov));
	err = errno;
	if (locked)
		wf_tcp_mr_unlock(ep->pg->t);
	if (ret < 0)
		return sock_error(ep, err, &ep->can_write);
	consume(ep, items, n, (size_t)ret);
	return 1;
}

/* Something may go out now: a reply, or a request within the reply credits. */
static bool tx_ready(const struct wf_tcp_ep *ep)
{
	const struct wf_xfer *x = ep->txq_head;

	return ep->ctl_count || (x && (ep->tx_cur == WF_TCP_TX_XFER || x->status_ != 1 ||
				       ep->replies_due < WF_TCP_CTL_DEPTH));
}

/* Complete the oldest xfers that are done, in post order. */
static void complete_head(struct wf_tcp_ep *ep)
{
	struct wf_xfer *x;

	while (ep->state != WF_TCP_EP_DOWN && (x = ep->flq_head) && x->status_ == 0) {
		ep->flq_head = x->next_;
		if (!ep->flq_head)
			ep->flq_tail = NULL;
		ep->fl_seq++;
		x->next_ = NULL;
		if (x->done)
			x->done(x, 0);
	}
}

static void tx_flush(struct wf_tcp_ep *ep)
{
	for (int i = 0; i < TX_ROUNDS && ep->can_write && tx_ready(ep); i++)
		if (tx_once(ep, TX_ITEMS) < 0)
			return;
	complete_head(ep);
}

void wf_tcp_close_with(struct wf_tcp_ep *ep, int status, uint8_t type, uint64_t tag, uint32_t arg,
		       const void *data, uint32_t len)
{
	if (ep->state >= WF_TCP_EP_CLOSING)
		return;
	if (len > sizeof(ep->last_data)) {
		wf_tcp_ep_down(ep, status);
		return;
	}
	if (!wf_tcp_ep_timed(ep))
		ep->pg->nhello++;
	ep->closing_from = ep->state;
	ep->state = WF_TCP_EP_CLOSING;
	ep->closing_status = status;
	ep->deadline = wf_now_ns() + WF_TCP_CLOSE_TIMEOUT_MS * 1000000ull;
	pdu_fill(&ep->last, type, 0, len, tag, 0, 0, arg);
	if (len)
		memcpy(&ep->last_data, data, len);
	ep->last_off = 0;
	wf_tcp_ep_want_work(ep);
}

/* CLOSING: finish the half-written PDU (the peer must not misframe ours), then the last one. */
static void close_progress(struct wf_tcp_ep *ep)
{
	struct tx_item it = {.hdr = ep->last, .data = &ep->last_data, .len = le32toh(ep->last.len)};
	struct iovec iov[2];
	ssize_t ret;

	while (ep->state == WF_TCP_EP_CLOSING && ep->can_write) {
		if (ep->tx_cur != WF_TCP_TX_NONE) {
			tx_once(ep, 1);
			continue;
		}
		ret = send_iov(ep->fd, iov, to_iov(&it, 1, ep->last_off, iov));
		if (ret < 0) {
			sock_error(ep, errno, &ep->can_write);
			continue;
		}
		ep->last_off += (uint32_t)ret;
		if (ep->last_off == sizeof(it.hdr) + it.len)
			wf_tcp_ep_down(ep, ep->closing_status);
	}
}

/* REVOKEs took effect when posted; their done()s wait for a progress outside any post. */
static void complete_revokes(struct wf_tcp_ep *ep)
{
	struct wf_xfer *x;

	while ((x = ep->rvq_head)) {
		ep->rvq_head = x->next_;
		if (!ep->rvq_head)
			ep->rvq_tail = NULL;
		x->next_ = NULL;
		x->done(x, 0);
	}
}

void wf_tcp_fail_xfers(struct wf_tcp_ep *ep)
{
	struct wf_xfer *lists[2] = {ep->flq_head, ep->txq_head};
	uint64_t seq = ep->fl_seq;
	int pending = 0;
	bool term = ep->term_status != 0;

	/* Ended already, and grants die with the endpoint anyway. */
	complete_revokes(ep);
	ep->flq_head = ep->flq_tail = ep->txq_head = ep->txq_tail = NULL;
	for (int i = 0; i < 2; i++) {
		struct wf_xfer *x = lists[i], *next;

		for (; x; x = next, seq++) {
			next = x->next_;
			x->next_ = NULL;
			if (term && seq >= ep->term_tag) {
				pending = ep->term_status;
				term = false;
			}
			if (!x->done)
				continue;
			x->done(x, pending ? pending : -ECONNRESET);
			pending = 0;
		}
	}
}

static void protocol_error(struct wf_tcp_ep *ep, const char *why)
{
	wf_log_warn(ep->pg->log, "tcp: bad PDU from peer (type %u, %s); closing", ep->rx_wire.type,
		    why);
	wf_tcp_ep_down(ep, -EPROTO);
}

/* The peer asked for memory it may not touch: tell it which request, and close. */
static void access_violation(struct wf_tcp_ep *ep, uint64_t tag)
{
	wf_log_warn(ep->pg->log, "tcp: peer's request %llu breaks key, access or bounds; closing",
		    (unsigned long long)tag);
	wf_tcp_close_with(ep, -EACCES, WF_TCP_TERM, tag, EACCES, NULL, 0);
}

static bool mr_ok(struct wf_tcp_ep *ep, uint32_t key, uint64_t addr, uint64_t len, unsigned access)
{
	bool ok;

	wf_tcp_mr_rdlock(ep->pg->t);
	ok = access_ok(ep, key, addr, len, access);
	wf_tcp_mr_unlock(ep->pg->t);
	return ok;
}

/* The xfer the next reply answers: the oldest one still waiting for one. */
static struct wf_xfer *awaiting(struct wf_tcp_ep *ep, uint64_t *seq)
{
	struct wf_xfer *x;

	*seq = ep->fl_seq;
	for (x = ep->flq_head; x; x = x->next_, (*seq)++)
		if (x->status_ == 1)
			return x;
	return NULL;
}

static void rx_reset(struct wf_tcp_ep *ep)
{
	ep->rx_hoff = 0;
	ep->rx_poff = 0;
	ep->rx_body = false;
	ep->rx_dst = NULL;
	ep->rx_x = NULL;
}

/* Requests must come in sequence, and within the reply credits. */
static int request_begin(struct wf_tcp_ep *ep, bool needs_reply)
{
	if (le64toh(ep->rx_wire.tag) != ep->rx_seq) {
		protocol_error(ep, "request out of sequence");
		return -1;
	}
	if (needs_reply && ctl_full(ep)) {
		protocol_error(ep, "more requests awaiting replies than credits");
		return -1;
	}
	return 1;
}

static int begin_capsule(struct wf_tcp_ep *ep, uint32_t len)
{
	struct wf_tcp_rxbuf *b;
	int ret;

	if (len == 0 || len > ep->base.params.capsule_size) {
		protocol_error(ep, "capsule size");
		return -1;
	}
	ret = request_begin(ep, ep->rx_wire.flags & WF_TCP_F_ACK);
	if (ret <= 0)
		return ret;
	b = wf_tcp_rxbuf_get(ep->pg);
	if (!b) {
		/* Backpressure: leave the bytes in the socket until a buffer comes back. */
		ep->stall = WF_TCP_STALL_BUF;
		ep->pg->nstalled++;
		return 0;
	}
	ep->rx_buf = b;
	ep->rx_dst = b->impl.rx.data;
	ep->rx_seq++;
	return 1;
}

static int begin_write(struct wf_tcp_ep *ep, uint32_t len)
{
	const struct wf_tcp_pdu *w = &ep->rx_wire;
	uint64_t tag = le64toh(w->tag);
	int ret;

	ret = request_begin(ep, w->flags & WF_TCP_F_ACK);
	if (ret <= 0)
		return ret;
	if (len == 0 ||
	    !mr_ok(ep, le32toh(w->rkey), le64toh(w->raddr), len, WF_ACCESS_REMOTE_WRITE)) {
		access_violation(ep, tag);
		return -1;
	}
	/* Its immediate is delivered as an empty capsule: it needs a receive buffer too. */
	if (w->flags & WF_TCP_F_IMM) {
		ep->rx_buf = wf_tcp_rxbuf_get(ep->pg);
		if (!ep->rx_buf) {
			ep->stall = WF_TCP_STALL_BUF;
			ep->pg->nstalled++;
			return 0;
		}
	}
	ep->rx_dst = (char *)(uintptr_t)le64toh(w->raddr);
	ep->rx_seq++;
	return 1;
}

static int begin_read_req(struct wf_tcp_ep *ep, uint32_t len)
{
	const struct wf_tcp_pdu *w = &ep->rx_wire;
	uint64_t tag = le64toh(w->tag), addr = le64toh(w->raddr);
	uint32_t want = le32toh(w->arg), key = le32toh(w->rkey);
	int ret;

	if (len) {
		protocol_error(ep, "READ_REQ with payload");
		return -1;
	}
	ret = request_begin(ep, true);
	if (ret <= 0)
		return ret;
	if (want == 0 || !mr_ok(ep, key, addr, want, WF_ACCESS_REMOTE_READ)) {
		access_violation(ep, tag);
		return -1;
	}
	wf_tcp_ctl_push(ep, WF_TCP_READ_RESP, tag, (void *)(uintptr_t)addr, want, key);
	ep->rx_seq++;
	rx_reset(ep);
	return 1;
}

static int begin_reply(struct wf_tcp_ep *ep, uint8_t type, uint32_t len)
{
	uint64_t seq;
	struct wf_xfer *x = awaiting(ep, &seq);

	if (!x || seq != le64toh(ep->rx_wire.tag)) {
		protocol_error(ep, "reply to no request");
		return -1;
	}
	/* The target freed the reply's slot before it sent it: the credit is back. */
	ep->replies_due--;
	if (type == WF_TCP_ACK) {
		if (len || x->op == WF_XFER_READ) {
			protocol_error(ep, "ACK");
			return -1;
		}
		x->status_ = 0;
		rx_reset(ep);
		complete_head(ep);
		return 1;
	}
	if (x->op != WF_XFER_READ || len != x->len) {
		protocol_error(ep, "READ_RESP");
		return -1;
	}
	ep->rx_x = x;
	ep->rx_dst = x->buf;
	return 1;
}

static int begin_term(struct wf_tcp_ep *ep, uint32_t len)
{
	uint32_t err = le32toh(ep->rx_wire.arg);

	if (len || err == 0 || err > MAX_ERRNO) {
		protocol_error(ep, "TERM");
		return -1;
	}
	wf_log_info(ep->pg->log, "tcp: peer terminated the connection: %s", strerror((int)err));
	ep->term_status = -(int)err;
	ep->term_tag = le64toh(ep->rx_wire.tag);
	wf_tcp_ep_down(ep, -(int)err);
	return -1;
}

static int begin_hello(struct wf_tcp_ep *ep, uint8_t type, uint32_t len)
{
	if (type != WF_TCP_CONNECT && type != WF_TCP_ACCEPT && type != WF_TCP_REJECT) {
		protocol_error(ep, "before the handshake ended");
		return -1;
	}
	if (len == 0 || len > sizeof(ep->hello_in)) {
		protocol_error(ep, "handshake size");
		return -1;
	}
	ep->rx_dst = (char *)&ep->hello_in;
	return 1;
}

/* A whole header is in: decide where its payload goes. 1 go on, 0 stall, -1 down. */
static int rx_begin(struct wf_tcp_ep *ep)
{
	uint8_t type = ep->rx_wire.type;
	uint32_t len = le32toh(ep->rx_wire.len);
	int ret;

	if (ep->state == WF_TCP_EP_HELLO)
		ret = begin_hello(ep, type, len);
	else if (type == WF_TCP_CAPSULE)
		ret = begin_capsule(ep, len);
	else if (type == WF_TCP_WRITE)
		ret = begin_write(ep, len);
	else if (type == WF_TCP_READ_REQ)
		ret = begin_read_req(ep, len);
	else if (type == WF_TCP_READ_RESP || type == WF_TCP_ACK)
		ret = begin_reply(ep, type, len);
	else if (type == WF_TCP_TERM)
		ret = begin_term(ep, len);
	else {
		protocol_error(ep, "unexpected type");
		return -1;
	}
	/* PDUs without payload are done with; the others now read into rx_dst. */
	if (ret > 0 && ep->rx_dst)
		ep->rx_body = true;
	return ret;
}

/* A PDU's payload is in place: deliver it. */
static void rx_end(struct wf_tcp_ep *ep)
{
	uint8_t type = ep->rx_wire.type;
	uint32_t len = le32toh(ep->rx_wire.len);
	uint64_t tag = le64toh(ep->rx_wire.tag);
	bool ack = ep->rx_wire.flags & WF_TCP_F_ACK;
	struct wf_tcp_rxbuf *b = ep->rx_buf;
	struct wf_xfer *x = ep->rx_x;

	ep->rx_buf = NULL;
	rx_reset(ep);
	if (ep->state == WF_TCP_EP_HELLO) {
		wf_tcp_hello_rx(ep, type, len);
		return;
	}
	if ((type == WF_TCP_CAPSULE || type == WF_TCP_WRITE) && ack)
		wf_tcp_ctl_push(ep, WF_TCP_ACK, tag, NULL, 0, 0);
	if (type == WF_TCP_WRITE && b) {
		b->impl.rx.len = 0;
		b->impl.rx.inv_key = 0;
		b->impl.rx.has_imm = true;
		b->impl.rx.imm = le32toh(ep->rx_wire.arg);
		ep->pg->base.arrivals++;
		ep->base.h->recv(&ep->base, &b->impl.rx);
	} else if (type == WF_TCP_CAPSULE) {
		b->impl.rx.len = len;
		b->impl.rx.inv_key = le32toh(ep->rx_wire.rkey);
		b->impl.rx.has_imm = ep->rx_wire.flags & WF_TCP_F_IMM;
		b->impl.rx.imm = b->impl.rx.has_imm ? le32toh(ep->rx_wire.arg) : 0;
		if (b->impl.rx.inv_key)
			wf_tcp_grant_end_key(ep, b->impl.rx.inv_key);
		ep->pg->base.arrivals++;
		ep->base.h->recv(&ep->base, &b->impl.rx);
	} else if (type == WF_TCP_READ_RESP) {
		ep->pg->base.arrivals++;
		x->status_ = 0;
		complete_head(ep);
	}
}

/*
 * read(2) with the endpoint's error handling: > 0 bytes, 0 nothing now, -1 down.
 * A short read emptied the socket: TCP stops copying only when its receive
 * queue and backlog are, and bytes that come later raise a new edge. So the
 * read that would only say EAGAIN is saved, one a PDU at low queue depth.
 * Not after a FIN was reported, whose edge is spent: the read of 0 must come.
 */
static ssize_t rx_read(struct wf_tcp_ep *ep, void *buf, size_t len)
{
	ssize_t n = read(ep->fd, buf, len);

	if (n > 0) {
		if ((size_t)n < len && !ep->hup)
			ep->can_read = false;
		return n;
	}
	if (n == 0) {
		wf_tcp_ep_down(ep, -ECONNRESET);
		return -1;
	}
	return sock_error(ep, errno, &ep->can_read);
}

static uint32_t ra_avail(const struct wf_tcp_ep *ep)
{
	return ep->ra_tail - ep->ra_head;
}

/*
 * Move up to @len bytes of the stream to @dst: from the read-ahead buffer
 * while it has any, straight from the socket for a large payload, else by
 * refilling the buffer with one read that usually holds many small PDUs.
 */
static ssize_t rx_copy(struct wf_tcp_ep *ep, char *dst, size_t len)
{
	size_t n = ra_avail(ep);
	ssize_t got;

	if (!n && len >= RX_DIRECT)
		return rx_read(ep, dst, len);
	if (!n) {
		ep->ra_head = ep->ra_tail = 0;
		got = rx_read(ep, ep->ra, sizeof(ep->ra));
		if (got <= 0)
			return got;
		ep->ra_tail = (uint32_t)got;
		n = (size_t)got;
	}
	if (n > len)
		n = len;
	memcpy(dst, ep->ra + ep->ra_head, n);
	ep->ra_head += (uint32_t)n;
	return (ssize_t)n;
}

/* WRITE data lands in registered memory: re-check under the lock the copy runs in. */
static ssize_t rx_body_write(struct wf_tcp_ep *ep, uint32_t len)
{
	const struct wf_tcp_pdu *w = &ep->rx_wire;
	ssize_t n = -2;

	wf_tcp_mr_rdlock(ep->pg->t);
	if (access_ok(ep, le32toh(w->rkey), le64toh(w->raddr), len, WF_ACCESS_REMOTE_WRITE))
		n = rx_copy(ep, ep->rx_dst + ep->rx_poff, len - ep->rx_poff);
	wf_tcp_mr_unlock(ep->pg->t);
	if (n == -2) {
		access_violation(ep, le64toh(w->tag));
		return -1;
	}
	return n;
}

/* One read: part of a header or of a payload. */
static void rx_step(struct wf_tcp_ep *ep)
{
	uint32_t len = le32toh(ep->rx_wire.len);
	ssize_t n;

	if (!ep->rx_body && ep->rx_hoff == sizeof(ep->rx_wire)) {
		/* A new header, or a stalled one whose buffer or reply slot may be free now. */
		rx_begin(ep);
		return;
	}
	if (!ep->rx_body) {
		n = rx_copy(ep, (char *)&ep->rx_wire + ep->rx_hoff,
			    sizeof(ep->rx_wire) - ep->rx_hoff);
		if (n > 0)
			ep->rx_hoff += (uint32_t)n;
		return;
	}
	if (ep->rx_wire.type == WF_TCP_WRITE)
		n = rx_body_write(ep, len);
	else
		n = rx_copy(ep, ep->rx_dst + ep->rx_poff, len - ep->rx_poff);
	if (n > 0)
		ep->rx_poff += (uint32_t)n;
	if (n > 0 && ep->rx_poff == len)
		rx_end(ep);
}

static bool rx_ready(const struct wf_tcp_ep *ep)
{
	return ep->state < WF_TCP_EP_CLOSING && ep->stall == WF_TCP_STALL_NONE &&
	       (ep->can_read || ra_avail(ep) ||
		(!ep->rx_body && ep->rx_hoff == sizeof(ep->rx_wire)));
}

bool wf_tcp_ep_progress(struct wf_tcp_ep *ep)
{
	int steps = RX_STEPS;

	if (ep->state == WF_TCP_EP_CONNECTING) {
		if (!ep->can_write)
			return false;
		wf_tcp_connect_done(ep);
	}
	complete_revokes(ep);
	while (steps-- && rx_ready(ep))
		rx_step(ep);
	if (ep->state == WF_TCP_EP_CLOSING)
		close_progress(ep);
	if (ep->state >= WF_TCP_EP_CLOSING)
		return false;
	tx_flush(ep);
	if (ep->state == WF_TCP_EP_DOWN)
		return false;
	return rx_ready(ep) || (ep->can_write && tx_ready(ep));
}
