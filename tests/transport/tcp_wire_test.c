// SPDX-License-Identifier: MIT
/*
 * The TCP transport against a hostile peer: a raw socket speaks the PDU
 * format by hand and breaks it in one way per case. Each time the target
 * must close that connection (with a log line, -EPROTO to its handler, or a
 * TERM naming the request for an access violation) while an honest weft
 * endpoint in the same poll group keeps being served.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/check.h"
#include "tests/transport/wait.h"
#include "transport/tcp_priv.h"

#define WAIT_MS 5000
#define BIG	(1u << 20)
#define BIG_N	32

struct wenv {
	struct wf_log log;
	struct wf_transport *ts, *tc;
	struct wf_poll_group *ps, *pc;
	struct wf_listener *l;
	struct wf_mr *mr, *bmr;
	char mem[4096];
	char *big; /* BIG bytes peers may READ */
	int accepted, down, down_status, received;
	struct wf_ep *honest;
	int honest_up, honest_down, honest_sent;
	int failed, failed_status; /* connects that never came up */
};

static void pump(struct wenv *w)
{
	WF_CHECK(wf_poll_group_poll(w->ps, 1) >= 0);
	WF_CHECK(wf_poll_group_poll(w->pc, 1) >= 0);
}

#define WAIT_FOR(w, cond) WF_WAIT_FOR(pump(w), cond, WAIT_MS)

static void srv_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct wenv *w = wf_ep_ctx(ep);

	w->received++;
	wf_rx_release(rx);
}

static void srv_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct wenv *w = wf_ep_ctx(ep);

	if (ev == WF_EP_CONNECTED) {
		w->accepted++;
		return;
	}
	w->down++;
	w->down_status = status;
}

static const struct wf_ep_handlers srv_handlers = {.recv = srv_recv, .event = srv_event};

static int srv_request(struct wf_listener *l, const struct wf_conn_params *p,
		       const struct wf_ep_handlers **h, void **ctx, struct wf_poll_group **pg)
{
	(void)p;
	(void)pg;
	*h = &srv_handlers;
	*ctx = wf_listener_ctx(l);
	return 0;
}

static const struct wf_listen_handlers srv_listen = {.connect_request = srv_request};

static void honest_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	(void)ep;
	wf_rx_release(rx);
}

static void honest_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct wenv *w = wf_ep_ctx(ep);

	if (ev == WF_EP_CONNECTED) {
		w->honest_up++;
	} else if (ev == WF_EP_CONNECT_FAILED) {
		w->failed++;
		w->failed_status = status;
	} else {
		w->honest_down++;
	}
}

static const struct wf_ep_handlers honest_handlers = {.recv = honest_recv, .event = honest_event};

static void honest_done(struct wf_xfer *x, int status)
{
	struct wenv *w = x->arg;

	WF_CHECK_EQ(status, 0);
	w->honest_sent++;
}

static struct wf_conn_params params(const char *host)
{
	struct wf_conn_params p = {
	    .version = WF_TRANSPORT_VERSION, .queue_depth = 32, .capsule_size = 4096 + 64};

	snprintf(p.host_id, sizeof(p.host_id), "%s", host);
	return p;
}

/* The honest endpoint still gets a capsule through to the target. */
static void check_honest(struct wenv *w)
{
	char msg[64] = "still here";
	int got = w->received, sent = w->honest_sent;
	struct wf_xfer x = {
	    .op = WF_XFER_SEND, .buf = msg, .len = sizeof(msg), .done = honest_done, .arg = w};

	WF_CHECK_EQ(w->honest_down, 0);
	WF_CHECK_EQ(wf_ep_post(w->honest, &x), 0);
	WAIT_FOR(w, w->received == got + 1 && w->honest_sent == sent + 1);
}

static int raw_connect(struct wenv *w)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(wf_listener_port(w->l))};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	WF_CHECK(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	WF_CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* send(2) all of @len bytes, or fail the test saying why. */
static void raw_send(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	if (n != (ssize_t)len) {
		fprintf(stderr, "raw send of %zu bytes: %zd (%s)\n", len, n, strerror(errno));
		exit(1);
	}
}

static void raw_pdu(int fd, const struct wf_tcp_pdu *h, const void *payload, size_t len)
{
	raw_send(fd, h, sizeof(*h));
	if (len)
		raw_send(fd, payload, len);
}

static struct wf_tcp_pdu pdu(uint8_t type, uint32_t len, uint64_t tag)
{
	return (struct wf_tcp_pdu){.type = type, .len = htole32(len), .tag = htole64(tag)};
}

/* Read exactly @len bytes while the poll groups run; false on EOF or reset. */
static bool raw_read(struct wenv *w, int fd, void *buf, size_t len)
{
	uint64_t t0 = wf_test_now_ms();
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return false;
		if (n > 0)
			got += (size_t)n;
		else
			pump(w);
		WF_CHECK(wf_test_now_ms() - t0 < WAIT_MS);
	}
	return true;
}

static void expect_closed(struct wenv *w, int fd)
{
	char c;

	WF_CHECK(!raw_read(w, fd, &c, 1));
	close(fd);
}

/* CONNECT on a connected raw socket, and check the ACCEPT. */
static void raw_hello(struct wenv *w, int fd)
{
	struct wf_conn_params p = params("raw"), got;
	struct wf_conn_wire cw;
	struct wf_tcp_pdu h = pdu(WF_TCP_CONNECT, sizeof(cw), 0);

	wf_conn_encode(&p, &cw);
	raw_pdu(fd, &h, &cw, sizeof(cw));
	WF_CHECK(raw_read(w, fd, &h, sizeof(h)));
	WF_CHECK_EQ(h.type, WF_TCP_ACCEPT);
	WF_CHECK_EQ(le32toh(h.len), sizeof(cw));
	WF_CHECK(raw_read(w, fd, &cw, sizeof(cw)));
	WF_CHECK_EQ(wf_conn_decode(&cw, sizeof(cw), &got), WF_REJECT_NONE);
	WF_CHECK_EQ(got.capsule_size, p.capsule_size);
}

static int raw_handshake(struct wenv *w)
{
	int fd = raw_connect(w), accepted = w->accepted;

	raw_hello(w, fd);
	WAIT_FOR(w, w->accepted == accepted + 1);
	return fd;
}

/* After a good handshake, send @h (+ @len bytes) and expect the target to drop us. */
static void expect_dropped(struct wenv *w, struct wf_tcp_pdu h, size_t len, int status)
{
	char junk[8192] = {0};
	int fd = raw_handshake(w), down = w->down;

	raw_pdu(fd, &h, junk, len);
	WAIT_FOR(w, w->down == down + 1);
	WF_CHECK_EQ(w->down_status, status);
	expect_closed(w, fd);
	check_honest(w);
}

static void case_junk_before_handshake(struct wenv *w)
{
	unsigned char junk[64];
	int fd = raw_connect(w), accepted = w->accepted;

	memset(junk, 0xff, sizeof(junk));
	WF_CHECK_EQ(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), sizeof(junk));
	expect_closed(w, fd);
	WF_CHECK_EQ(w->accepted, accepted);
	check_honest(w);
}

static void case_bad_connect(struct wenv *w)
{
	struct wf_conn_wire cw;
	struct wf_conn_params p = params("raw");
	struct wf_tcp_pdu h = pdu(WF_TCP_CONNECT, sizeof(cw), 0);
	struct wf_reject_wire rej;
	int fd = raw_connect(w);

	wf_conn_encode(&p, &cw);
	cw.magic = 0;
	raw_pdu(fd, &h, &cw, sizeof(cw));
	WF_CHECK(raw_read(w, fd, &h, sizeof(h)));
	WF_CHECK_EQ(h.type, WF_TCP_REJECT);
	WF_CHECK_EQ(le32toh(h.len), sizeof(rej));
	WF_CHECK(raw_read(w, fd, &rej, sizeof(rej)));
	WF_CHECK_EQ(wf_reject_decode(&rej, sizeof(rej)), WF_REJECT_MALFORMED);
	expect_closed(w, fd);
	check_honest(w);
}

static void case_bad_key(struct wenv *w)
{
	struct wf_tcp_pdu h = pdu(WF_TCP_WRITE, 16, 0);
	int fd = raw_handshake(w), down = w->down;
	char data[16] = {0};

	h.raddr = htole64((uintptr_t)w->mem);
	h.rkey = htole32(w->mr->key ^ 0x40000000u);
	memset(w->mem, 0x5a, sizeof(w->mem));
	raw_pdu(fd, &h, data, sizeof(data));
	WF_CHECK(raw_read(w, fd, &h, sizeof(h)));
	WF_CHECK_EQ(h.type, WF_TCP_TERM);
	WF_CHECK_EQ(le32toh(h.arg), EACCES);
	WF_CHECK_EQ(le64toh(h.tag), 0);
	expect_closed(w, fd);
	WAIT_FOR(w, w->down == down + 1);
	WF_CHECK_EQ(w->down_status, -EACCES);
	for (size_t i = 0; i < sizeof(w->mem); i++)
		WF_CHECK_EQ((unsigned char)w->mem[i], 0x5a);
	check_honest(w);
}

/* A peer that ignores its reply credits is cut off, not queued for without bound. */
static void case_credit_overflow(struct wenv *w)
{
	struct wf_tcp_pdu reqs[WF_TCP_CTL_DEPTH + 8];
	int fd = raw_handshake(w), down = w->down;
	uint64_t t0 = wf_test_now_ms();
	char buf[4096];
	ssize_t n;

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		reqs[i] = pdu(WF_TCP_READ_REQ, 0, i);
		reqs[i].raddr = htole64((uintptr_t)w->mem);
		reqs[i].rkey = htole32(w->mr->key);
		reqs[i].arg = htole32(64);
	}
	WF_CHECK_EQ(send(fd, reqs, sizeof(reqs), MSG_NOSIGNAL), sizeof(reqs));
	WAIT_FOR(w, w->down == down + 1);
	WF_CHECK_EQ(w->down_status, -EPROTO);
	/* Replies already queued may arrive; then the connection ends. */
	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0 && !(n < 0 && errno != EAGAIN))
		WF_CHECK(wf_test_now_ms() - t0 < WAIT_MS);
	close(fd);
	check_honest(w);
}

/* Out of fds, the listener pauses instead of spinning, and accepts once fds are back. */
static void case_out_of_fds(struct wenv *w)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(wf_listener_port(w->l))};
	int fds[3], accepted = w->accepted, down = w->down, polls = 0, spare;
	struct rlimit old, low;
	uint64_t t0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 3; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		WF_CHECK(fds[i] >= 0);
	}
	/* No new fd can be made: the lowest free number is the limit. */
	spare = dup(0);
	WF_CHECK(spare >= 0);
	close(spare);
	WF_CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)spare;
	WF_CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (int i = 0; i < 3; i++)
		WF_CHECK_EQ(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	for (t0 = wf_test_now_ms(); wf_test_now_ms() - t0 < 300; polls++)
		WF_CHECK(wf_poll_group_poll(w->ps, 50) >= 0);
	WF_CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* A spinning listener would have polled thousands of times. */
	WF_CHECK(polls < 50);
	WF_CHECK_EQ(w->accepted, accepted);
	/*
	 * The kernel keeps the queued connections for the next accept, but
	 * valgrind's fd-limit emulation closes them: test the resumed listener
	 * with new ones.
	 */
	for (int i = 0; i < 3; i++) {
		close(fds[i]);
		fds[i] = raw_handshake(w);
	}
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	WAIT_FOR(w, w->down == down + 3);
	check_honest(w);
}

/* An empty host identity is the caller's mistake, refused before anything is sent. */
static void case_empty_host(struct wenv *w)
{
	struct wf_conn_params p = params("");
	int accepted = w->accepted;
	struct wf_ep *ep;

	WF_CHECK_EQ(wf_connect(w->pc, "127.0.0.1", wf_listener_port(w->l), &p, &honest_handlers, w,
			       WAIT_MS, &ep),
		    -EINVAL);
	check_honest(w);
	WF_CHECK_EQ(w->accepted, accepted);
}

/* Skip @len bytes of the stream. */
static void raw_skip(struct wenv *w, int fd, size_t len)
{
	const size_t chunk = 256u << 10;
	char *buf = malloc(chunk);

	WF_CHECK(buf);
	while (len) {
		size_t n = len < chunk ? len : chunk;

		WF_CHECK(raw_read(w, fd, buf, n));
		len -= n;
	}
	free(buf);
}

/*
 * A violation while a big reply is half written and the peer reads
 * nothing: the target must neither block its poll loop nor misframe the
 * stream. The reply in progress is finished, TERM follows, then the end.
 */
static void case_term_after_partial(struct wenv *w)
{
	struct wf_tcp_pdu req[BIG_N + 1];
	int fd = raw_handshake(w), down = w->down, replies = 0;
	char data[16] = {0};
	uint64_t t0, t1;

	for (int i = 0; i < BIG_N; i++) {
		req[i] = pdu(WF_TCP_READ_REQ, 0, (uint64_t)i);
		req[i].raddr = htole64((uintptr_t)w->big);
		req[i].rkey = htole32(w->bmr->key);
		req[i].arg = htole32(BIG);
	}
	req[BIG_N] = pdu(WF_TCP_WRITE, sizeof(data), BIG_N);
	req[BIG_N].raddr = htole64((uintptr_t)w->big);
	req[BIG_N].rkey = htole32(w->bmr->key ^ 0x1000u);
	/* The replies fill both socket buffers and stall half way. */
	WF_CHECK_EQ(send(fd, req, BIG_N * sizeof(req[0]), MSG_NOSIGNAL), BIG_N * sizeof(req[0]));
	for (t0 = wf_test_now_ms(); wf_test_now_ms() - t0 < 200;)
		pump(w);
	WF_CHECK_EQ(send(fd, &req[BIG_N], sizeof(req[0]), MSG_NOSIGNAL), sizeof(req[0]));
	WF_CHECK_EQ(send(fd, data, sizeof(data), MSG_NOSIGNAL), sizeof(data));
	for (t0 = wf_test_now_ms(); wf_test_now_ms() - t0 < 200;) {
		t1 = wf_test_now_ms();
		pump(w);
		WF_CHECK(wf_test_now_ms() - t1 < 50);
	}
	/* Still closing (the socket is full), and the honest peer is served meanwhile. */
	WF_CHECK_EQ(w->down, down);
	check_honest(w);
	for (;;) {
		struct wf_tcp_pdu h;

		WF_CHECK(raw_read(w, fd, &h, sizeof(h)));
		if (h.type != WF_TCP_READ_RESP) {
			WF_CHECK_EQ(h.type, WF_TCP_TERM);
			WF_CHECK_EQ(le32toh(h.arg), EACCES);
			WF_CHECK_EQ(le64toh(h.tag), BIG_N);
			break;
		}
		WF_CHECK_EQ(le64toh(h.tag), replies);
		WF_CHECK_EQ(le32toh(h.len), BIG);
		raw_skip(w, fd, BIG);
		WF_CHECK(++replies < BIG_N);
	}
	expect_closed(w, fd);
	printf("  TERM after %d whole READ replies\n", replies);
	WAIT_FOR(w, w->down == down + 1);
	WF_CHECK_EQ(w->down_status, -EACCES);
	check_honest(w);
}

static void case_protocol_errors(struct wenv *w)
{
	struct wf_tcp_pdu h;

	/* A capsule bigger than negotiated. */
	expect_dropped(w, pdu(WF_TCP_CAPSULE, 4096 + 65, 0), 4096 + 65, -EPROTO);
	/* An unknown type. */
	expect_dropped(w, pdu(99, 0, 0), 0, -EPROTO);
	/* A request out of sequence. */
	expect_dropped(w, pdu(WF_TCP_CAPSULE, 8, 5), 8, -EPROTO);
	/* A reply to nothing. */
	expect_dropped(w, pdu(WF_TCP_ACK, 0, 0), 0, -EPROTO);
	/* A READ_REQ with a payload. */
	expect_dropped(w, pdu(WF_TCP_READ_REQ, 4, 0), 4, -EPROTO);
	/* A second CONNECT after the handshake. */
	expect_dropped(w, pdu(WF_TCP_CONNECT, sizeof(struct wf_conn_wire), 0),
		       sizeof(struct wf_conn_wire), -EPROTO);
	/* A TERM with no errno in it. */
	h = pdu(WF_TCP_TERM, 0, 0);
	expect_dropped(w, h, 0, -EPROTO);
}

int main(void)
{
	const struct wf_transport_ops *ops = wf_transport_ops_find("tcp");
	struct wf_conn_params p = params("honest");
	struct wf_transport_opts o;
	struct wenv *w = calloc(1, sizeof(*w));

	WF_CHECK(ops && w);
	wf_log_init(&w->log, "tcp_wire_test", WF_LOG_WARN, STDERR_FILENO);
	wf_transport_opts_default(&o);
	o.srq_depth = 64;
	o.log = &w->log;
	WF_CHECK_EQ(wf_transport_create(ops, &o, &w->ts), 0);
	WF_CHECK_EQ(wf_transport_create(ops, &o, &w->tc), 0);
	WF_CHECK_EQ(wf_poll_group_create(w->ts, &w->ps), 0);
	WF_CHECK_EQ(wf_poll_group_create(w->tc, &w->pc), 0);
	WF_CHECK_EQ(wf_mr_reg(w->ts, w->mem, sizeof(w->mem),
			      WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE, &w->mr),
		    0);
	w->big = calloc(1, BIG);
	WF_CHECK(w->big);
	WF_CHECK_EQ(wf_mr_reg(w->ts, w->big, BIG, WF_ACCESS_REMOTE_READ, &w->bmr), 0);
	WF_CHECK_EQ(wf_listen(w->ps, "127.0.0.1", 0, &srv_listen, w, &w->l), 0);
	WF_CHECK_EQ(wf_connect(w->pc, "127.0.0.1", wf_listener_port(w->l), &p, &honest_handlers, w,
			       WAIT_MS, &w->honest),
		    0);
	WAIT_FOR(w, w->honest_up && w->accepted == 1);

	case_junk_before_handshake(w);
	case_bad_connect(w);
	case_bad_key(w);
	case_protocol_errors(w);
	case_credit_overflow(w);
	case_out_of_fds(w);
	case_empty_host(w);
	case_term_after_partial(w);

	wf_ep_disconnect(w->honest);
	WAIT_FOR(w, w->honest_down == 1 && w->down == w->accepted);
	wf_listener_close(w->l);
	wf_mr_dereg(w->mr);
	wf_mr_dereg(w->bmr);
	free(w->big);
	wf_poll_group_destroy(w->ps);
	wf_poll_group_destroy(w->pc);
	wf_transport_destroy(w->ts);
	wf_transport_destroy(w->tc);
	free(w);
	printf("tcp wire: all hostile peers dropped, honest endpoint served\n");
	return 0;
}
