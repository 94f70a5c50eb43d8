// SPDX-License-Identifier: MIT
/*
 * Transport performance, measured the way perftest measures verbs so the two
 * can be compared line by line: SEND ping-pong latency (half the round trip,
 * like ib_send_lat), RDMA READ latency (ib_read_lat), and WRITE and READ
 * bandwidth with a window of outstanding operations (ib_write_bw, ib_read_bw).
 * Server and client are separate processes, as with perftest; as with
 * perftest, the server of a one-sided test (read_lat, write_bw, read_bw)
 * sleeps until the client quits, whatever --poll says.
 *
 * cmd_lat has no perftest twin: it is a storage read's wire pattern with no
 * storage stack around it (a 64-byte command naming the client's buffer; the
 * server RDMA-WRITEs --size bytes into it, then SENDs a 64-byte reply), timed
 * over the whole round trip. With --cpl-data it is the pattern weft uses for
 * reads that fit a capsule: the server SENDs the data as one capsule, with
 * immediate data standing for the reply, and the client copies the data
 * out of its receive buffer. It is the floor for weft's QD1 read latency.
 * cmd_bw is the same pattern with --window commands outstanding, each naming
 * its own slice of the client's buffer: the most a storage read of --size
 * at that queue depth can move over this transport, in MiB/s; with --cpl-imm
 * the reply is the WRITE's immediate data instead of a SEND, the pattern
 * weft uses for reads larger than a capsule. cmd_write_bw
 * is a storage write's: the server RDMA-READs the slice the command names
 * and, once the READ has completed, SENDs the reply.
 *
 * --cpus S,C pins the server to CPU S and the client to CPU C, as taskset
 * would pin perftest's two processes, so a comparison can place both tools
 * alike; without it the scheduler places them.
 *
 * Output: one "RESULT key=value ..." line per test, for bench/compare-transport.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/transport.h"

#define MAGIC_ADVERT 0x41445654u /* server -> client: its buffer */
#define MAGIC_QUIT   0x51554954u /* client -> server: done */
#define MAGIC_CMD    0x434d4421u /* client -> server: write into this buffer */
#define CMD_BYTES    64
#define MAX_SAMPLES  100000
#define WAIT_MS	     30000
#define QUEUE_DEPTH  128  /* the client asks for it; cmd_bw keeps no more commands out */
#define FILL	     0x5a /* every buffer's bytes at setup: data that moved shows it */

enum test {
	T_SEND_LAT,
	T_READ_LAT,
	T_CMD_LAT,
	T_WRITE_BW,
	T_READ_BW,
	T_CMD_BW,
	T_CMD_WRITE_BW,
	T_COUNT
};
static const char *const test_names[] = {"send_lat", "read_lat", "cmd_lat",	"write_bw",
					 "read_bw",  "cmd_bw",	 "cmd_write_bw"};

struct advert {
	uint32_t magic;
	uint32_t pad;
	struct wf_rdesc buf;
};

/* An answer the server owes: to a command, or the echo of a capsule of len bytes. */
struct job {
	struct advert cmd;
	uint32_t len;
};

struct perf {
	/* options */
	const char *kind, *addr, *poll_mode;
	int poll_timeout_ms; /* 0 with --poll busy */
	uint16_t port;
	uint32_t size, iters, window, spin_us;
	uint32_t pairs;		    /* server: --pairs, 0 for the default */
	bool cpl_data;		    /* cmd_lat: the data comes back in the reply's capsule */
	bool cpl_imm;		    /* cmd_bw: the reply is the data WRITE's immediate */
	int cpu_server, cpu_client; /* -1: wherever the scheduler puts the role */
	enum test test;

	struct wf_transport *t;
	struct wf_poll_group *pg;
	struct wf_listener *l;
	struct wf_ep *ep;
	uint8_t *buf;
	struct wf_mr *mr;
	struct wf_rdesc peer;
	bool down, have_peer, quit;
	uint32_t connected, recvs, done;
	int err;
	struct wf_xfer *xfers;	     /* client: one per window slot; server: a pair per answer */
	struct advert *cmds;	     /* cmd_bw: the commands in flight, one per window slot */
	uint32_t *free_pairs, nfree; /* server: pairs of xfers whose answer is done */
	struct job *owed;	     /* server: answers waiting for a pair, oldest first */
	uint32_t owed_head, owed_count;
	double *samples;
};

static bool is_cmd(enum test t)
{
	return t == T_CMD_LAT || t == T_CMD_BW || t == T_CMD_WRITE_BW;
}

/* The windowed command tests: each command in flight has its own slice of the buffer. */
static bool is_cmd_bw(enum test t)
{
	return t == T_CMD_BW || t == T_CMD_WRITE_BW;
}

/* A latency test keeps one operation out; the others keep --window out. */
static bool is_lat(enum test t)
{
	return t == T_SEND_LAT || t == T_READ_LAT || t == T_CMD_LAT;
}

/*
 * Whether the server only lends its buffer: the client READs or WRITEs it and
 * the server has nothing to do until the client quits. perftest's passive
 * side sleeps meanwhile, so ours does too, whatever --poll says: a server
 * spinning on nothing takes a CPU from the guest the client's transfers run in.
 */
static bool is_one_sided(enum test t)
{
	return t == T_READ_LAT || t == T_WRITE_BW || t == T_READ_BW;
}

/*
 * The server's pairs of xfers, one per answer in flight. An answer's last
 * completion (its SEND's ACK) may be reaped after the client has its reply
 * and sent more commands, so twice the window keeps answers from waiting.
 * --pairs sets another number; with 1, answers do wait now and then.
 */
static uint32_t npairs(const struct perf *p)
{
	return p->pairs ? p->pairs : 2 * p->window;
}

/* Answers the server may have to hold: as many as the client can have out. */
static uint32_t owed_cap(const struct perf *p)
{
	return p->window + npairs(p);
}

/*
 * cmd_bw: the client's commands name a slice of its buffer per window slot,
 * and the server READs into a slice of its own per pair.
 */
static size_t buf_len(const struct perf *p)
{
	uint32_t slices = p->window > npairs(p) ? p->window : npairs(p);
	size_t len = is_cmd_bw(p->test) ? (size_t)p->size * slices : p->size;

	return len < 4096 ? 4096 : len;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int poll_once(struct perf *p)
{
	return wf_poll_group_poll(p->pg, p->poll_timeout_ms);
}

/* Poll until *@flag reaches @want, the endpoint drops, or WAIT_MS pass. */
static int wait_for(struct perf *p, const uint32_t *flag, uint32_t want)
{
	double deadline = now_us() + WAIT_MS * 1e3;

	while (*flag < want) {
		if (p->err)
			return p->err;
		if (p->down)
			return -ECONNRESET;
		if (now_us() > deadline)
			return -ETIMEDOUT;
		if (poll_once(p) < 0)
			return -EIO;
	}
	return 0;
}

static void on_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct perf *p = wf_ep_ctx(ep);

	if (ev == WF_EP_CONNECTED) {
		p->connected = 1;
		p->ep = ep;
		return;
	}
	if (ev == WF_EP_CONNECT_FAILED)
		p->err = status;
	p->down = true;
	p->ep = NULL;
}

static void xfer_done(struct wf_xfer *x, int status)
{
	struct perf *p = x->arg;

	if (status && !p->err)
		p->err = status;
	p->done++;
}

/* Post from a callback, where no caller can take the error: the test fails with it. */
static void post_or_fail(struct perf *p, struct wf_xfer *x)
{
	int ret = wf_ep_post(p->ep, x);

	if (ret && !p->err)
		p->err = ret;
}

static void send_bytes(struct perf *p, struct wf_xfer *x, const void *data, uint32_t len,
		       void (*done)(struct wf_xfer *, int))
{
	if (data)
		memcpy(p->buf, data, len);
	*x = (struct wf_xfer){
	    .op = WF_XFER_SEND, .buf = p->buf, .len = len, .mr = p->mr, .done = done, .arg = p};
	post_or_fail(p, x);
}

static void answer_with(struct perf *p, uint32_t pair, const struct job *j);

/*
 * The last xfer of an answer is done, so its pair may be used again: for
 * the oldest answer still owed, else back on the free list. The transport
 * owns an xfer until its done, so a pair is never reused before this.
 */
static void answered(struct wf_xfer *x, int status)
{
	struct perf *p = x->arg;
	uint32_t pair = (uint32_t)((x - p->xfers) / 2);
	struct job j;

	xfer_done(x, status);
	if (status || !p->owed_count) {
		p->free_pairs[p->nfree++] = pair;
		return;
	}
	j = p->owed[p->owed_head];
	p->owed_head = (p->owed_head + 1) % owed_cap(p);
	p->owed_count--;
	answer_with(p, pair, &j);
}

/*
 * cmd_write_bw: the READ of a command's slice is in, into a slice of ours
 * whose last byte was cleared. It must hold the client's byte; then the reply
 * goes, from the xfer after the READ's.
 */
static void write_data_in(struct wf_xfer *x, int status)
{
	struct perf *p = x->arg;

	xfer_done(x, status);
	if (status)
		return;
	if (((uint8_t *)x->buf)[x->len - 1] != FILL && !p->err)
		p->err = -EBADMSG;
	send_bytes(p, x + 1, NULL, CMD_BYTES, answered);
}

/*
 * The data of command @c, with @pair's xfers: a read's WRITE from our
 * buffer into the client's, then the reply; or a write's READ of the
 * client's into the pair's slice of ours, whose last byte is cleared, and
 * the reply once it is in.
 */
static void serve_cmd(struct perf *p, uint32_t pair, const struct advert *c)
{
	struct wf_xfer *x = &p->xfers[2 * pair];
	bool write = p->test == T_CMD_WRITE_BW;
	uint8_t *buf = p->buf;

	if (p->cpl_data) {
		*x = (struct wf_xfer){.op = WF_XFER_SEND,
				      .buf = p->buf,
				      .len = c->buf.len,
				      .mr = p->mr,
				      .done = answered,
				      .arg = p,
				      .with_imm = true,
				      .imm = MAGIC_CMD};
		post_or_fail(p, x);
		return;
	}
	if (write) {
		buf += (size_t)pair * p->size;
		buf[c->buf.len - 1] = 0;
	}
	*x = (struct wf_xfer){.op = write ? WF_XFER_READ : WF_XFER_WRITE,
			      .buf = buf,
			      .len = c->buf.len,
			      .mr = p->mr,
			      .remote = c->buf,
			      .done = write ? write_data_in : xfer_done,
			      .arg = p};
	if (p->cpl_imm) {
		x->with_imm = true;
		x->imm = MAGIC_CMD;
		x->done = answered;
	}
	post_or_fail(p, x);
	if (!write && !p->cpl_imm)
		send_bytes(p, x + 1, NULL, CMD_BYTES, answered);
}

static void answer_with(struct perf *p, uint32_t pair, const struct job *j)
{
	if (is_cmd(p->test))
		serve_cmd(p, pair, &j->cmd);
	else
		send_bytes(p, &p->xfers[2 * pair], NULL, j->len, answered);
}

/* Answer @j with a free pair of xfers, or owe it until an answer before it is done. */
static void answer(struct perf *p, const struct job *j)
{
	if (p->nfree) {
		answer_with(p, p->free_pairs[--p->nfree], j);
		return;
	}
	/* The client keeps at most a window out, so this many owed is a broken client. */
	if (p->owed_count == owed_cap(p)) {
		if (!p->err)
			fprintf(stderr, "xport_perf: the client has more out than its window\n");
		p->err = p->err ? p->err : -EOVERFLOW;
		return;
	}
	p->owed[(p->owed_head + p->owed_count++) % owed_cap(p)] = *j;
}

static void on_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct perf *p = wf_ep_ctx(ep);
	struct advert a = {0};

	p->recvs++;
	if (rx->len >= sizeof(a))
		memcpy(&a, rx->data, sizeof(a));
	/* cmd_lat --cpl-data: the reply holds the data; copy it out, as libweft does. */
	if (!p->l && p->cpl_data && rx->has_imm && rx->imm == MAGIC_CMD && rx->len == p->size)
		memcpy(p->buf, rx->data, p->size);
	else if (a.magic == MAGIC_ADVERT) {
		p->peer = a.buf;
		p->have_peer = true;
	} else if (a.magic == MAGIC_QUIT) {
		p->quit = true;
	}
	/* The server answers from its own registered buffer: echo or read reply. */
	if (p->l && !p->quit && is_cmd(p->test) && a.magic == MAGIC_CMD && a.buf.len &&
	    a.buf.len <= p->size)
		answer(p, &(struct job){.cmd = a});
	else if (p->l && !p->quit && !is_cmd(p->test))
		answer(p, &(struct job){.len = rx->len});
	wf_rx_release(rx);
}

static const struct wf_ep_handlers handlers = {.recv = on_recv, .event = on_event};

static int on_connect_request(struct wf_listener *l, const struct wf_conn_params *params,
			      const struct wf_ep_handlers **h, void **ctx,
			      struct wf_poll_group **pg)
{
	struct perf *p = wf_listener_ctx(l);

	(void)pg;
	(void)params;
	if (p->connected)
		return WF_REJECT_BUSY;
	*h = &handlers;
	*ctx = p;
	return 0;
}

static const struct wf_listen_handlers listen_handlers = {.connect_request = on_connect_request};

static int setup(struct perf *p)
{
	struct wf_transport_opts o;
	const struct wf_transport_ops *ops = wf_transport_ops_find(p->kind);
	size_t len = buf_len(p);
	int ret;

	if (!ops)
		return -EINVAL;
	wf_transport_opts_default(&o);
	o.capsule_size = (p->size > 4096 ? p->size : 4096) + 64;
	/*
	 * A latency test has one message out. Spread over 512 buffers, each
	 * round trip would land on a new page of a 2 MiB ring, where perftest
	 * receives every message into one buffer; 16 leave room and stay warm.
	 */
	o.srq_depth = is_lat(p->test) ? 16 : 512;
	o.spin_us = p->spin_us;
	ret = wf_transport_create(ops, &o, &p->t);
	if (ret)
		return ret;
	ret = wf_poll_group_create(p->t, &p->pg);
	if (ret)
		return ret;
	p->buf = aligned_alloc(4096, len);
	/* The client's window slots and the server's pairs, whichever is more. */
	p->xfers = calloc(p->window > 2 * npairs(p) ? p->window : 2 * npairs(p), sizeof(*p->xfers));
	p->cmds = calloc(p->window, sizeof(*p->cmds));
	p->free_pairs = calloc(npairs(p), sizeof(*p->free_pairs));
	p->owed = calloc(owed_cap(p), sizeof(*p->owed));
	p->samples = calloc(MAX_SAMPLES, sizeof(*p->samples));
	if (!p->buf || !p->xfers || !p->cmds || !p->free_pairs || !p->owed || !p->samples)
		return -ENOMEM;
	/* Pair 0 on top: a latency test answers from the same pair every time it can. */
	for (uint32_t i = npairs(p); i > 0; i--)
		p->free_pairs[p->nfree++] = i - 1;
	memset(p->buf, FILL, len);
	return wf_mr_reg(p->t, p->buf, len, WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE, &p->mr);
}

static void teardown(struct perf *p)
{
	if (p->pg)
		wf_poll_group_destroy(p->pg);
	wf_mr_dereg(p->mr);
	wf_transport_destroy(p->t);
	free(p->buf);
	free(p->xfers);
	free(p->cmds);
	free(p->free_pairs);
	free(p->owed);
	free(p->samples);
}

static int run_server(struct perf *p, int ready_fd)
{
	struct advert a = {.magic = MAGIC_ADVERT};
	int timeout_ms = is_one_sided(p->test) ? 100 : p->poll_timeout_ms;
	struct wf_xfer ax;
	uint16_t port;
	int ret;

	ret = wf_listen(p->pg, p->addr, p->port, &listen_handlers, p, &p->l);
	if (ret)
		return ret;
	/* The client learns the port from here: with --port 0 the system chose it. */
	if (ready_fd >= 0) {
		port = wf_listener_port(p->l);
		if (write(ready_fd, &port, sizeof(port)) != sizeof(port))
			return -errno;
		close(ready_fd);
	}
	/* No deadline: a server waits for its client however long that takes. */
	while (!p->connected && !p->err)
		if (wf_poll_group_poll(p->pg, 100) < 0)
			return -EIO;
	if (p->err)
		return p->err;
	a.buf = (struct wf_rdesc){.addr = (uintptr_t)p->buf, .len = p->size, .key = p->mr->key};
	send_bytes(p, &ax, &a, sizeof(a), xfer_done);
	while (!p->quit && !p->down && !p->err)
		if (wf_poll_group_poll(p->pg, timeout_ms) < 0)
			return -EIO;
	return p->err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report_lat(struct perf *p, uint32_t n)
{
	double sum = 0;

	qsort(p->samples, n, sizeof(double), cmp_double);
	for (uint32_t i = 0; i < n; i++)
		sum += p->samples[i];
	printf("RESULT transport=%s test=%s size=%u iters=%u usec_typical=%.2f usec_avg=%.2f "
	       "usec_p99=%.2f\n",
	       p->kind, test_names[p->test], p->size, n, p->samples[n / 2], sum / n,
	       p->samples[(uint32_t)(n * 0.99)]);
}

/* A READ or WRITE of --size bytes between our buffer and the peer's. */
static void rw_xfer(struct perf *p, struct wf_xfer *x, enum wf_xfer_op op)
{
	*x = (struct wf_xfer){.op = op,
			      .buf = p->buf,
			      .len = p->size,
			      .mr = p->mr,
			      .remote = p->peer,
			      .done = xfer_done,
			      .arg = p};
}

static int lat_test(struct perf *p)
{
	uint32_t n = p->iters < MAX_SAMPLES ? p->iters : MAX_SAMPLES;
	struct wf_xfer x;
	int ret;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t recvs = p->recvs, done = p->done;
		double t0 = now_us();

		if (p->test == T_SEND_LAT) {
			double t1;

			/* Timed to the echo, like ib_send_lat; the ping's own ACK may come later.
			 */
			send_bytes(p, &x, NULL, p->size, xfer_done);
			ret = wait_for(p, &p->recvs, recvs + 1);
			t1 = now_us();
			if (!ret)
				ret = wait_for(p, &p->done, done + 1);
			p->samples[i] = (t1 - t0) / 2;
		} else if (p->test == T_CMD_LAT) {
			struct advert c = {
			    .magic = MAGIC_CMD,
			    .buf = {.addr = (uintptr_t)p->buf, .len = p->size, .key = p->mr->key}};

			memcpy(p->buf, &c, sizeof(c));
			p->buf[p->size - 1] = 0;
			send_bytes(p, &x, NULL, CMD_BYTES, xfer_done);
			ret = wait_for(p, &p->recvs, recvs + 1);
			p->samples[i] = now_us() - t0;
			/* The reply follows the WRITE on one QP, or holds the data: it is here. */
			if (!ret && p->buf[p->size - 1] != FILL)
				ret = -EBADMSG;
			if (!ret)
				ret = wait_for(p, &p->done, done + 1);
		} else {
			rw_xfer(p, &x, WF_XFER_READ);
			ret = wf_ep_post(p->ep, &x);
			if (!ret)
				ret = wait_for(p, &p->done, done + 1);
			p->samples[i] = now_us() - t0;
		}
		if (ret)
			return ret;
	}
	report_lat(p, n);
	return 0;
}

/* One poll of a windowed test; an error once the endpoint failed or went down. */
static int pump(struct perf *p)
{
	if (p->err || p->down)
		return p->err ? p->err : -ECONNRESET;
	return poll_once(p) < 0 ? -EIO : 0;
}

static void report_bw(const struct perf *p, double secs)
{
	printf("RESULT transport=%s test=%s size=%u iters=%u window=%u mib_s=%.2f msg_s=%.0f\n",
	       p->kind, test_names[p->test], p->size, p->iters, p->window,
	       (double)p->size * p->iters / secs / (1 << 20), p->iters / secs);
}

/* Operation @i of a windowed test: a READ or WRITE, or cmd_bw's command for its slice. */
static int post_op(struct perf *p, uint32_t i)
{
	uint32_t slot = i % p->window;
	struct wf_xfer *x = &p->xfers[slot];

	if (!is_cmd_bw(p->test)) {
		rw_xfer(p, x, p->test == T_WRITE_BW ? WF_XFER_WRITE : WF_XFER_READ);
		return wf_ep_post(p->ep, x);
	}
	p->cmds[slot] =
	    (struct advert){.magic = MAGIC_CMD,
			    .buf = {.addr = (uintptr_t)(p->buf + (size_t)slot * p->size),
				    .len = p->size,
				    .key = p->mr->key}};
	/* From unregistered memory: small enough to go inline, or the transport stages it. */
	*x = (struct wf_xfer){.op = WF_XFER_SEND,
			      .buf = &p->cmds[slot],
			      .len = sizeof(p->cmds[slot]),
			      .done = xfer_done,
			      .arg = p};
	return wf_ep_post(p->ep, x);
}

/*
 * Operations finished since the test began (@done0, @recvs0): for cmd_bw,
 * commands both sent and answered, which happens in order for both.
 */
static uint32_t finished(const struct perf *p, uint32_t done0, uint32_t recvs0)
{
	uint32_t sent = p->done - done0, got = p->recvs - recvs0;

	return is_cmd_bw(p->test) && got < sent ? got : sent;
}

/* cmd_bw: each reply followed its WRITE on one QP, so every slice used ends in the server's byte.
 */
static bool slices_placed(const struct perf *p)
{
	for (uint32_t i = 0; i < p->window && i < p->iters; i++)
		if (p->buf[(size_t)(i + 1) * p->size - 1] != FILL)
			return false;
	return true;
}

/* Keep --window operations out until --iters have finished, and report the rate. */
static int bw_test(struct perf *p)
{
	uint32_t posted = 0, done0 = p->done, recvs0 = p->recvs;
	double t0 = now_us(), secs;
	int ret;

	if (p->test == T_CMD_BW)
		memset(p->buf, 0, buf_len(p));
	while (finished(p, done0, recvs0) < p->iters) {
		while (posted < p->iters && posted - finished(p, done0, recvs0) < p->window) {
			ret = post_op(p, posted);
			if (ret)
				return ret;
			posted++;
		}
		ret = pump(p);
		if (ret)
			return ret;
	}
	secs = (now_us() - t0) / 1e6;
	if (p->test == T_CMD_BW && !slices_placed(p))
		return -EBADMSG;
	report_bw(p, secs);
	return 0;
}

static int run_client(struct perf *p)
{
	struct wf_conn_params cp = {.version = WF_TRANSPORT_VERSION, .queue_depth = QUEUE_DEPTH};
	struct advert q = {.magic = MAGIC_QUIT};
	struct wf_xfer x;
	int ret;

	cp.capsule_size = wf_transport_opts(p->t)->capsule_size;
	snprintf(cp.host_id, sizeof(cp.host_id), "xport-perf-%d", (int)getpid());
	ret = wf_connect(p->pg, p->addr, p->port, &cp, &handlers, p, WAIT_MS, &p->ep);
	if (ret)
		return ret;
	ret = wait_for(p, &p->connected, 1);
	while (!ret && !p->have_peer)
		ret = wait_for(p, &p->recvs, p->recvs + 1);
	if (ret)
		return ret;
	ret = is_lat(p->test) ? lat_test(p) : bw_test(p);
	if (ret)
		return ret;
	send_bytes(p, &x, &q, sizeof(q), xfer_done);
	return wait_for(p, &p->done, p->done + 1);
}

static void usage(const char *argv0)
{
	fprintf(
	    stderr,
	    "usage: %s --transport verbs|tcp --addr A [--port P (0: any, with --role both)] --test "
	    "send_lat|read_lat|cmd_lat|write_bw|read_bw|cmd_bw|cmd_write_bw [--size B] [--iters N] "
	    "[--window W] [--poll event|busy] [--spin-us U] [--role both|server|client] "
	    "[--cpus S,C] [--pairs N] [--cpl-data (cmd_lat)] [--cpl-imm (cmd_bw)]\n",
	    argv0);
}

/* "S,C": two CPU numbers, for the server and the client. */
static int parse_cpus(const char *arg, struct perf *p)
{
	char *end;
	long s = strtol(arg, &end, 10), c;

	if (end == arg || *end != ',' || s < 0 || s >= CPU_SETSIZE)
		return -EINVAL;
	arg = end + 1;
	c = strtol(arg, &end, 10);
	if (end == arg || *end || c < 0 || c >= CPU_SETSIZE)
		return -EINVAL;
	p->cpu_server = (int)s;
	p->cpu_client = (int)c;
	return 0;
}

static int parse(struct perf *p, int argc, char **argv, const char **role)
{
	static const struct option opts[] = {
	    {"transport", required_argument, NULL, 'T'},
	    {"addr", required_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"test", required_argument, NULL, 't'},
	    {"size", required_argument, NULL, 's'},
	    {"iters", required_argument, NULL, 'n'},
	    {"window", required_argument, NULL, 'w'},
	    {"poll", required_argument, NULL, 'P'},
	    {"role", required_argument, NULL, 'r'},
	    {"spin-us", required_argument, NULL, 'S'},
	    {"cpus", required_argument, NULL, 'c'},
	    {"pairs", required_argument, NULL, 'A'},
	    {"cpl-data", no_argument, NULL, 'D'}, /* cmd_lat only */
	    {"cpl-imm", no_argument, NULL, 'I'},  /* cmd_bw only */
	    {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'T':
			p->kind = optarg;
			break;
		case 'a':
			p->addr = optarg;
			break;
		case 'p':
			p->port = (uint16_t)atoi(optarg);
			break;
		case 't':
			for (c = 0; c < T_COUNT && strcmp(optarg, test_names[c]); c++)
				;
			if (c == T_COUNT)
				return -EINVAL;
			p->test = (enum test)c;
			break;
		case 's':
			p->size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			p->iters = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			p->window = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			p->poll_mode = optarg;
			break;
		case 'r':
			*role = optarg;
			break;
		case 'S':
			p->spin_us = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'c':
			if (parse_cpus(optarg, p))
				return -EINVAL;
			break;
		case 'D':
			p->cpl_data = true;
			break;
		case 'I':
			p->cpl_imm = true;
			break;
		case 'A':
			p->pairs = (uint32_t)strtoul(optarg, NULL, 0);
			if (p->pairs == 0 || p->pairs > 8192)
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!p->addr || p->size == 0 || p->iters == 0 || p->window == 0 || p->window > 4096)
		return -EINVAL;
	/* Apart, server and client must agree on a port beforehand. */
	if (p->port == 0 && strcmp(*role, "both") != 0)
		return -EINVAL;
	/* The command itself travels in the buffer the reply's data lands in. */
	if (p->test == T_CMD_LAT && p->size < CMD_BYTES)
		return -EINVAL;
	if (is_cmd_bw(p->test) && p->window > QUEUE_DEPTH)
		return -EINVAL;
	/* The windowed tests' replies must say which slice they fill: only cmd_lat has this. */
	if (p->cpl_data && p->test != T_CMD_LAT)
		return -EINVAL;
	if (p->cpl_imm && p->test != T_CMD_BW)
		return -EINVAL;
	/* Busy polling two processes on two vCPUs starves rxe's softirq; default to events. */
	p->poll_timeout_ms = strcmp(p->poll_mode, "busy") == 0 ? 0 : 100;
	return 0;
}

/* Keep this process on @cpu (-1: leave it to the scheduler), before it sets anything up. */
static int pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		int err = -errno;

		fprintf(stderr, "xport_perf: cannot run on CPU %d: %s\n", cpu, strerror(-err));
		return err;
	}
	return 0;
}

static int run_role(struct perf *p, const char *role, int ready_fd)
{
	bool server = strcmp(role, "server") == 0;
	int ret = pin(server ? p->cpu_server : p->cpu_client);

	if (ret)
		return ret;
	ret = setup(p);

	if (!ret)
		ret = server ? run_server(p, ready_fd) : run_client(p);
	teardown(p);
	return ret;
}

int main(int argc, char **argv)
{
	struct perf p = {.kind = "verbs",
			 .poll_mode = "event",
			 .port = 0,
			 .size = 4096,
			 .iters = 1000,
			 .window = 128,
			 .cpu_server = -1,
			 .cpu_client = -1};
	const char *role = "both";
	int ready[2], status, ret;
	pid_t pid;

	if (parse(&p, argc, argv, &role)) {
		usage(argv[0]);
		return 2;
	}
	if (strcmp(role, "both") != 0) {
		ret = run_role(&p, role, -1);
		goto out;
	}
	if (pipe(ready))
		return 1;
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		ret = run_role(&p, "server", ready[1]);
		/* Its own failure (a READ's data not placed, say) reaches the client as a reset. */
		if (ret)
			fprintf(stderr, "xport_perf %s %s server: %s\n", p.kind, test_names[p.test],
				strerror(-ret));
		_exit(ret ? 1 : 0);
	}
	close(ready[1]);
	if (pid < 0 || read(ready[0], &p.port, sizeof(p.port)) != sizeof(p.port)) {
		fprintf(stderr, "xport_perf: server did not start\n");
		return 1;
	}
	ret = run_role(&p, "client", -1);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		ret = ret ? ret : -EIO;
out:
	if (ret)
		fprintf(stderr, "xport_perf %s %s: %s\n", p.kind, test_names[p.test],
			strerror(-ret));
	return ret ? 1 : 0;
}
