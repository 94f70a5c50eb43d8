// SPDX-License-Identifier: MIT
/*
 * libweft against a peer written on the transport API that answers CONNECT,
 * IDENTIFY and KEEP_ALIVE but never a READ: the synchronous call's timeout
 * semantics (seed 001: 0 tests once, > 0 waits seconds) and the cached
 * identify (seed 004: no round trip after the first) are checked against
 * what the peer actually received. Then the peer drops connections and
 * refuses new ones on command, for reconnecting: a READ it never answered
 * goes out again on the new connection, and past reconnect_timeout_ms the
 * host gives up with -ETIMEDOUT, then -ENOTCONN. A READ answered by a
 * capsule of data that fits no command, or a WRITE with immediate data
 * that the READ did not ask for, is refused the same way: the host drops
 * the connection and sends the READ again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/weft.h>
#include <weft/wire.h>

#include "tests/lib/check.h"
#include "transport/transport.h"

#define MAX_HELD 64

struct peer {
	struct wf_transport *t;
	struct wf_poll_group *pg;
	struct wf_listener *l;
	struct wf_mr *mr, *mr_data, *mr_late;
	uint8_t info[WF_VOLUME_INFO_SIZE];
	uint8_t cpl[MAX_HELD][WF_CPL_SIZE];
	struct wf_xfer x[MAX_HELD], data_x;
	unsigned nx;
	atomic_int stop;
	atomic_int identifies, reads, keep_alives, connects;
	atomic_int drop_reads;	 /* this many READs: take the connection down instead */
	atomic_int serve_reads;	 /* answer READs with data */
	atomic_int refuse;	 /* refuse connections */
	atomic_int stale;	 /* after answering a READ, write its buffer again */
	atomic_int stale_status; /* how that late WRITE ended */
	atomic_int bad_cpl_data; /* this many READs: answer with a capsule of 100 bytes */
	atomic_int bad_cpl_imm;	 /* this many READs: answer with the WRITE, asked for or not */
	struct wf_xfer stale_x;
	uint8_t late[4096];
	uint8_t data[4096];
};

static void sent(struct wf_xfer *x, int status)
{
	(void)x;
	(void)status;
}

static void stale_done(struct wf_xfer *x, int status)
{
	struct peer *p = x->arg;

	p->stale_status = status ? status : 1;
}

/* Complete @cmd; a window it names (WF_CMD_F_INV) ends with the completion, as weftd does. */
static void answer(struct peer *p, struct wf_ep *ep, const struct wf_cmd *cmd, uint64_t result)
{
	unsigned i = p->nx++ % MAX_HELD;
	struct wf_cpl c = {.cid = cmd->cid, .result = result};

	wf_cpl_encode(&c, p->cpl[i]);
	p->x[i] = (struct wf_xfer){
	    .op = WF_XFER_SEND,
	    .buf = p->cpl[i],
	    .len = WF_CPL_SIZE,
	    .done = sent,
	    .inv_key = cmd->flags & WF_CMD_F_INV ? cmd->data.key : 0,
	};
	WF_CHECK_EQ(wf_ep_post(ep, &p->x[i]), 0);
}

/* Complete a READ with a capsule of @len bytes of data, as weftd does for small reads. */
static void answer_with_data(struct peer *p, struct wf_ep *ep, const struct wf_cmd *cmd,
			     uint32_t len)
{
	p->data_x = (struct wf_xfer){
	    .op = WF_XFER_SEND,
	    .buf = p->data,
	    .len = len,
	    .mr = p->mr_data,
	    .done = sent,
	    .with_imm = true,
	    .imm = wf_cpl_imm(cmd->cid),
	};
	WF_CHECK_EQ(wf_ep_post(ep, &p->data_x), 0);
}

/*
 * RDMA-write a READ's data; the completion follows, or rides on the WRITE
 * as immediate data (@imm), as weftd answers WF_CMD_F_CPL_IMM.
 */
static void serve_read(struct peer *p, struct wf_ep *ep, const struct wf_cmd *c, bool imm)
{
	p->data_x = (struct wf_xfer){
	    .op = WF_XFER_WRITE,
	    .buf = p->data,
	    .len = 4096,
	    .mr = p->mr_data,
	    .remote = {c->data.addr, 4096, c->data.key},
	    .done = imm ? sent : NULL,
	    .with_imm = imm,
	    .imm = wf_cpl_imm(c->cid),
	};
	WF_CHECK_EQ(wf_ep_post(ep, &p->data_x), 0);
	if (!imm)
		answer(p, ep, c, 0);
	if (p->stale) {
		/* A target that keeps a key past its command: the window is gone. */
		p->stale = 0;
		p->stale_x = (struct wf_xfer){
		    .op = WF_XFER_WRITE,
		    .buf = p->late,
		    .len = 4096,
		    .mr = p->mr_late,
		    .remote = {c->data.addr, 4096, c->data.key},
		    .done = stale_done,
		    .arg = p,
		};
		WF_CHECK_EQ(wf_ep_post(ep, &p->stale_x), 0);
	}
}

static void peer_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct peer *p = wf_ep_ctx(ep);
	struct wf_cmd c;

	WF_CHECK_EQ(wf_cmd_decode(rx->data, rx->len, 4096, &c), WF_SC_SUCCESS);
	wf_rx_release(rx);
	switch (c.opcode) {
	case WF_OP_CONNECT:
		p->connects++;
		answer(p, ep, &c, 4);
		break;
	case WF_OP_KEEP_ALIVE:
		p->keep_alives++;
		answer(p, ep, &c, 0);
		break;
	case WF_OP_IDENTIFY:
		p->identifies++;
		p->data_x = (struct wf_xfer){
		    .op = WF_XFER_WRITE,
		    .buf = p->info,
		    .len = WF_VOLUME_INFO_SIZE,
		    .mr = p->mr,
		    .remote = {c.data.addr, WF_VOLUME_INFO_SIZE, c.data.key},
		};
		WF_CHECK_EQ(wf_ep_post(ep, &p->data_x), 0);
		answer(p, ep, &c, 0);
		break;
	default:
		p->reads++;
		if (p->drop_reads > 0) {
			p->drop_reads--;
			wf_ep_disconnect(ep);
		} else if (p->serve_reads && p->bad_cpl_data > 0) {
			p->bad_cpl_data--;
			answer_with_data(p, ep, &c, 100);
		} else if (p->serve_reads && (c.flags & WF_CMD_F_CPL_DATA)) {
			answer_with_data(p, ep, &c, 4096);
		} else if (p->serve_reads && p->bad_cpl_imm > 0) {
			p->bad_cpl_imm--;
			serve_read(p, ep, &c, true);
		} else if (p->serve_reads) {
			serve_read(p, ep, &c, c.flags & WF_CMD_F_CPL_IMM);
		}
		/* else held forever: the host must give up on its own */
		break;
	}
}

static void peer_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	(void)ep;
	(void)ev;
	(void)status;
}

static const struct wf_ep_handlers peer_handlers = {peer_recv, peer_event};

static int peer_request(struct wf_listener *l, const struct wf_conn_params *params,
			const struct wf_ep_handlers **h, void **ctx, struct wf_poll_group **pg)
{
	struct peer *p = wf_listener_ctx(l);

	(void)params;
	(void)pg;
	if (p->refuse)
		return WF_REJECT_BUSY;
	*h = &peer_handlers;
	*ctx = wf_listener_ctx(l);
	return 0;
}

static const struct wf_listen_handlers peer_listen = {peer_request};

static void *peer_main(void *arg)
{
	struct peer *p = arg;

	while (!p->stop)
		WF_CHECK(wf_poll_group_poll(p->pg, 10) >= 0);
	return NULL;
}

static void open_qp(struct wf_host *h, struct wf_qp **qp, struct wf_vol **v)
{
	WF_CHECK_EQ(wf_qp_open(h, qp), 0);
	WF_CHECK_EQ(wf_qp_depth(*qp), 4);
	WF_CHECK_EQ(wf_vol_open(*qp, 1, v), 0);
}

struct io {
	int done, status;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void io_done(void *arg, int status)
{
	struct io *io = arg;

	io->done = 1;
	io->status = status;
}

static void wait_io(struct wf_qp *qp, struct io *io)
{
	while (!io->done)
		WF_CHECK(wf_qp_poll(qp, 100) >= 0);
}

/*
 * A target that writes a READ's buffer again after completing it: the key
 * was a window for that command only, so the write is refused and the
 * buffer keeps what the READ returned. With @cpl_imm the completion is the
 * data's WRITE, which leaves the window open: the host ends it itself
 * before the READ completes.
 */
static void stale_key(struct peer *p, const struct wf_host_opts *base, int cpl_imm, char *buf)
{
	struct wf_host_opts ho = *base;
	struct wf_host *h;
	struct wf_qp *qp;
	struct wf_vol *v;

	ho.cpl_data_reads = 0; /* a key to keep: the read must go by RDMA WRITE */
	ho.cpl_imm_reads = cpl_imm;
	WF_CHECK_EQ(wf_host_open(&ho, &h), 0);
	open_qp(h, &qp, &v);
	p->serve_reads = 1;
	p->stale = 1;
	p->stale_status = 0;
	memset(buf, 0, 4096);
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, 0, 1, buf, 5), 0);
	while (!p->stale_status)
		WF_CHECK(wf_qp_poll(qp, 10) >= 0);
	WF_CHECK(p->stale_status < 0);
	for (int i = 0; i < 4096; i++)
		WF_CHECK_EQ((uint8_t)buf[i], 0xa5);
	wf_vol_close(v);
	wf_qp_close(qp);
	wf_host_close(h);
	p->serve_reads = 0;
}

/*
 * An answer must be the kind the READ asked for. A capsule of data must be
 * the whole of a READ that asked for one: given 100 bytes for a 4 KiB read,
 * or any for a read the target was to RDMA-write, the host drops the
 * connection and reads again on a new one. So it does given a WRITE with
 * immediate data for a read that asked for a completion message. The
 * caller sees only the right data.
 */
static void bad_answer(struct peer *p, const struct wf_host_opts *base, int cpl_data_reads,
		       int cpl_imm_reads, atomic_int *bad, char *buf)
{
	struct wf_host_opts ho = *base;
	struct wf_host *h;
	struct wf_qp *qp;
	struct wf_vol *v;
	int reads, connects;

	ho.cpl_data_reads = cpl_data_reads;
	ho.cpl_imm_reads = cpl_imm_reads;
	WF_CHECK_EQ(wf_host_open(&ho, &h), 0);
	open_qp(h, &qp, &v);
	p->serve_reads = 1;
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, 0, 1, buf, 5), 0);
	WF_CHECK_EQ(wf_qp_reconnects(qp), 0);
	*bad = 1;
	reads = p->reads;
	connects = p->connects;
	memset(buf, 0, 4096);
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, 0, 1, buf, 5), 0);
	for (int i = 0; i < 4096; i++)
		WF_CHECK_EQ((uint8_t)buf[i], 0xa5);
	WF_CHECK_EQ(*bad, 0);
	WF_CHECK_EQ(p->reads - reads, 2);
	WF_CHECK_EQ(p->connects - connects, 1);
	WF_CHECK_EQ(wf_qp_reconnects(qp), 1);
	wf_vol_close(v);
	wf_qp_close(qp);
	wf_host_close(h);
	p->serve_reads = 0;
}

/*
 * The peer drops the connection on a READ it never answers: the host
 * reconnects by itself, sends the READ again, and the caller sees only its
 * data. Then the peer refuses everyone: the host gives up after its timeout.
 */
static void reconnects(struct peer *p, const struct wf_host_opts *base, char *buf)
{
	struct wf_host_opts ho = *base;
	struct wf_host *h;
	struct wf_qp *qp;
	struct wf_vol *v;
	struct io io = {0};
	uint64_t t0;
	int before;

	ho.reconnect_timeout_ms = 800;
	WF_CHECK_EQ(wf_host_open(&ho, &h), 0);
	open_qp(h, &qp, &v);
	p->serve_reads = 1;
	p->drop_reads = 2;
	before = p->connects;
	memset(buf, 0, 4096);
	WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_READ, 0, 1, buf, 0, io_done, &io), 0);
	wait_io(qp, &io);
	WF_CHECK_EQ(io.status, 0);
	for (int i = 0; i < 4096; i++)
		WF_CHECK_EQ((uint8_t)buf[i], 0xa5);
	WF_CHECK_EQ(wf_qp_reconnects(qp), 2);
	WF_CHECK_EQ(p->connects - before, 2);
	/* The cached volume is still good on the third connection. */
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, 1, 1, buf, 5), 0);

	/* Refused from now on: the READ waits out the reconnect timeout, then fails. */
	p->refuse = 1;
	p->drop_reads = 1;
	io = (struct io){0};
	t0 = now_ms();
	WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_READ, 0, 1, buf, 0, io_done, &io), 0);
	wait_io(qp, &io);
	WF_CHECK_EQ(io.status, -ETIMEDOUT);
	WF_CHECK(now_ms() - t0 >= 800);
	WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_READ, 0, 1, buf, 0, io_done, &io), -ENOTCONN);
	wf_vol_close(v);
	wf_qp_close(qp);
	wf_host_close(h);
	p->refuse = 0;
	p->serve_reads = 0;
}

int main(void)
{
	struct wf_transport_opts o;
	struct wf_volume_info vi = {.volume = 1,
				    .block_size = 4096,
				    .nblocks = 1000,
				    .max_transfer_blocks = 16,
				    .name = "held"};
	struct wf_host_opts ho;
	struct peer *p = calloc(1, sizeof(*p));
	struct wf_host *h;
	struct wf_qp *qp;
	struct wf_vol *v;
	pthread_t thr;
	char *buf = aligned_alloc(4096, 4096);

	WF_CHECK(p && buf);
	wf_transport_opts_default(&o);
	WF_CHECK_EQ(wf_transport_create(wf_transport_ops_find("tcp"), &o, &p->t), 0);
	WF_CHECK_EQ(wf_poll_group_create(p->t, &p->pg), 0);
	WF_CHECK_EQ(wf_listen(p->pg, "127.0.0.1", 0, &peer_listen, p, &p->l), 0);
	WF_CHECK_EQ(wf_mr_reg(p->t, p->info, sizeof(p->info), WF_ACCESS_LOCAL, &p->mr), 0);
	WF_CHECK_EQ(wf_mr_reg(p->t, p->data, sizeof(p->data), WF_ACCESS_LOCAL, &p->mr_data), 0);
	WF_CHECK_EQ(wf_mr_reg(p->t, p->late, sizeof(p->late), WF_ACCESS_LOCAL, &p->mr_late), 0);
	memset(p->late, 0x5a, sizeof(p->late));
	memset(p->data, 0xa5, sizeof(p->data));
	wf_volume_info_encode(&vi, p->info);
	wf_host_opts_default(&ho);
	ho.transport = "tcp";
	ho.port = wf_listener_port(p->l);
	ho.queue_depth = 4;
	WF_CHECK_EQ(pthread_create(&thr, NULL, peer_main, p), 0);
	WF_CHECK_EQ(wf_host_open(&ho, &h), 0);
	WF_CHECK(!strcmp(wf_host_transport(h), "tcp"));

	/* Identify once; the answers after it come from the cache. */
	open_qp(h, &qp, &v);
	for (int i = 0; i < 1000; i++) {
		WF_CHECK_EQ(wf_vol_block_size(v), 4096);
		WF_CHECK_EQ(wf_vol_nblocks(v), 1000);
	}
	WF_CHECK(!strcmp(wf_vol_info(v)->name, "held"));
	WF_CHECK_EQ(wf_qp_keep_alive(qp), 0);
	WF_CHECK_EQ(p->identifies, 1);
	WF_CHECK_EQ(p->keep_alives, 1);

	/* 0 tests once: the read is not done, so the queue pair goes down. */
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, 0, 1, buf, 0), -ETIMEDOUT);
	WF_CHECK_EQ(wf_qp_outstanding(qp), 0);
	WF_CHECK(wf_qp_io(qp, v, WF_IO_READ, 0, 1, buf, 0) < 0);
	WF_CHECK(wf_qp_keep_alive(qp) < 0);
	wf_vol_close(v);
	wf_qp_close(qp);

	/* > 0 waits that many seconds, then gives up the same way. */
	open_qp(h, &qp, &v);
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, 0, 1, buf, 1), -ETIMEDOUT);
	WF_CHECK(p->reads >= 1 && p->reads <= 2); /* the 0-second one may not have left */
	WF_CHECK_EQ(p->identifies, 2);
	wf_vol_close(v);
	wf_qp_close(qp);

	/* Asynchronous: a full queue says -EAGAIN instead of overrunning the peer. */
	open_qp(h, &qp, &v);
	for (int i = 0; i < 4; i++)
		WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_READ, 0, 1, buf, 0, NULL, NULL), 0);
	WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_READ, 0, 1, buf, 0, NULL, NULL), -EAGAIN);
	WF_CHECK_EQ(wf_qp_outstanding(qp), 4);
	wf_vol_close(v);
	wf_qp_close(qp); /* fails the four held reads */

	wf_host_close(h);
	stale_key(p, &ho, 0, buf);
	stale_key(p, &ho, 1, buf);
	bad_answer(p, &ho, 1, 1, &p->bad_cpl_data, buf);
	bad_answer(p, &ho, 0, 1, &p->bad_cpl_data, buf);
	bad_answer(p, &ho, 0, 0, &p->bad_cpl_data, buf);
	bad_answer(p, &ho, 0, 0, &p->bad_cpl_imm, buf);
	reconnects(p, &ho, buf);
	p->stop = 1;
	WF_CHECK_EQ(pthread_join(thr, NULL), 0);
	wf_mr_dereg(p->mr);
	wf_mr_dereg(p->mr_data);
	wf_mr_dereg(p->mr_late);
	wf_poll_group_destroy(p->pg);
	wf_transport_destroy(p->t);
	free(buf);
	free(p);
	return 0;
}
