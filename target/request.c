// SPDX-License-Identifier: MIT
/*
 * The request state machine. One request per received capsule; the receive
 * handler decodes it and calls the volume's submit directly (seed 000), and
 * every later step runs from a transport or bdev callback on the same thread.
 * The request keeps the host's command id and the completion restores it.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "target/target_priv.h"

static enum wf_status check_io(struct wf_tgt_req *req);
static enum wf_status check_flush(struct wf_tgt_req *req);
static void start_read(struct wf_tgt_req *req);
static void start_write(struct wf_tgt_req *req);
static void start_nodata(struct wf_tgt_req *req);

static const struct wf_tgt_op read_op = {check_io, true, start_read};
static const struct wf_tgt_op write_op = {check_io, true, start_write};
static const struct wf_tgt_op flush_op = {check_flush, false, start_nodata};
static const struct wf_tgt_op nodata_op = {check_io, false, start_nodata};

/* Indexed by opcode; the codec has already refused opcodes not listed. */
static const struct wf_tgt_op *const ops[] = {
    [WF_OP_CONNECT] = &wf_admin_connect_op,
    [WF_OP_KEEP_ALIVE] = &wf_admin_keep_alive_op,
    [WF_OP_IDENTIFY] = &wf_admin_identify_op,
    [WF_OP_LIST_VOLUMES] = &wf_admin_list_op,
    [WF_OP_AUTH_CHALLENGE] = &wf_auth_challenge_op,
    [WF_OP_AUTH_REPLY] = &wf_auth_reply_op,
    [WF_OP_READ] = &read_op,
    [WF_OP_WRITE] = &write_op,
    [WF_OP_FLUSH] = &flush_op,
    [WF_OP_WRITE_ZEROES] = &nodata_op,
    [WF_OP_DISCARD] = &nodata_op,
};

static const enum wf_bdev_op bdev_ops[] = {
    [WF_OP_READ] = WF_BDEV_READ,       [WF_OP_WRITE] = WF_BDEV_WRITE,
    [WF_OP_FLUSH] = WF_BDEV_FLUSH,     [WF_OP_WRITE_ZEROES] = WF_BDEV_WRITE_ZEROES,
    [WF_OP_DISCARD] = WF_BDEV_DISCARD,
};

static bool is_write(uint8_t opcode)
{
	return opcode == WF_OP_WRITE || opcode == WF_OP_WRITE_ZEROES || opcode == WF_OP_DISCARD;
}

enum wf_status wf_req_check_volume(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_tgt_shard *t = conn->tpg->shard;
	uint32_t id = req->cmd.volume;
	enum wf_status st = wf_req_check_session(req);

	if (st)
		return st;
	if (id == 0 || id > t->nvolumes)
		return WF_SC_UNKNOWN_VOLUME;
	req->vol = conn->access[id].vol;
	if (!req->vol)
		return WF_SC_ACCESS_DENIED;
	return WF_SC_SUCCESS;
}

static enum wf_status check_flush(struct wf_tgt_req *req)
{
	return wf_req_check_volume(req);
}

static enum wf_status check_io(struct wf_tgt_req *req)
{
	const struct wf_cmd *c = &req->cmd;
	enum wf_status st = wf_req_check_volume(req);
	uint64_t bytes;

	if (st)
		return st;
	if (is_write(c->opcode) && !req->conn->access[c->volume].rw)
		return WF_SC_READ_ONLY;
	if (c->lba + c->nblocks > req->vol->nblocks)
		return WF_SC_LBA_OUT_OF_RANGE;
	if (c->opcode != WF_OP_READ && c->opcode != WF_OP_WRITE)
		return WF_SC_SUCCESS;
	if (c->nblocks > req->vol->max_blocks)
		return WF_SC_TRANSFER_TOO_LARGE;
	bytes = (uint64_t)c->nblocks * req->vol->block_size;
	req->len = (uint32_t)bytes;
	if (c->inline_len)
		return c->inline_len == bytes ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
	/* The data comes back as a capsule: the host's receive buffers must hold it. */
	if (c->flags & WF_CMD_F_CPL_DATA)
		return bytes <= wf_ep_params(req->conn->ep)->capsule_size ? WF_SC_SUCCESS
									  : WF_SC_INVALID_DATA;
	return c->data.len < bytes ? WF_SC_TRANSFER_TOO_LARGE : WF_SC_SUCCESS;
}

static void release_rx(struct wf_tgt_req *req)
{
	if (req->rx) {
		wf_rx_release(req->rx);
		req->rx = NULL;
	}
}

/* The smallest class that holds what @req will move. */
static struct wf_tgt_bufs *buf_class(struct wf_tgt_req *req)
{
	struct wf_tgt_pg *tpg = req->conn->tpg;
	uint32_t need = req->cmd.opcode >= WF_OP_READ ? req->len : WF_TGT_SMALL_BUF;

	req->buf_cls =
	    need <= tpg->bufs[WF_TGT_BUF_SMALL].size ? WF_TGT_BUF_SMALL : WF_TGT_BUF_LARGE;
	return &tpg->bufs[req->buf_cls];
}

static void buf_put(struct wf_tgt_req *req)
{
	struct wf_tgt_bufs *b = &req->conn->tpg->bufs[req->buf_cls];
	struct wf_tgt_req *w;

	if (!req->buf)
		return;
	req->buf = NULL;
	w = b->wait_head;
	if (!w) {
		b->free[b->nfree++] = req->buf_idx;
		return;
	}
	/* Hand the buffer straight to the oldest waiter, so none starves. */
	b->wait_head = w->wait_next;
	if (!b->wait_head)
		b->wait_tail = NULL;
	w->buf_idx = req->buf_idx;
	w->buf = b->base + (size_t)w->buf_idx * b->size;
	w->state = WF_REQ_START;
	w->op->start(w);
}

static bool buf_get(struct wf_tgt_req *req)
{
	struct wf_tgt_bufs *b = buf_class(req);

	if (!b->nfree) {
		req->wait_next = NULL;
		if (b->wait_tail)
			b->wait_tail->wait_next = req;
		else
			b->wait_head = req;
		b->wait_tail = req;
		return false;
	}
	req->buf_idx = b->free[--b->nfree];
	req->buf = b->base + (size_t)req->buf_idx * b->size;
	return true;
}

static void req_free(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_tgt_shard *t = conn->tpg->shard;

	release_rx(req);
	if (req->io_active)
		t->active_io--;
	req->state = WF_REQ_FREE;
	buf_put(req);
	wf_pool_put(&conn->tpg->reqs, req);
	wf_conn_put(conn);
}

static void cpl_done(struct wf_xfer *x, int status)
{
	struct wf_tgt_req *req = x->arg;

	if (status)
		wf_log_debug(req->conn->tpg->shard->log, "host %s: completion cid %u lost: %d",
			     req->conn->host, req->cmd.cid, status);
	if (req->drop_conn && req->conn->ep)
		wf_ep_disconnect(req->conn->ep);
	req_free(req);
}

void wf_req_complete(struct wf_tgt_req *req, enum wf_status status)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_cpl cpl = {
	    .cid = req->cmd.cid, /* the host's own id, saved at receive */
	    .status = (uint16_t)status,
	    .sq_head = conn->sq_head,
	    .result = req->result,
	};

	if (status)
		wf_log_debug(conn->tpg->shard->log, "host %s: %s cid %u: %s", conn->host,
			     wf_opcode_str(req->cmd.opcode), req->cmd.cid, wf_status_str(status));
	req->state = WF_REQ_COMPLETING;
	release_rx(req);
	if (!conn->ep) {
		req_free(req);
		return;
	}
	req->cpl_x = (struct wf_xfer){
	    .op = WF_XFER_SEND,
	    .buf = req->cpl,
	    .len = WF_CPL_SIZE,
	    .done = cpl_done,
	    .arg = req,
	    /* The host's window dies as its completion arrives, whatever the status. */
	    .inv_key = req->cmd.flags & WF_CMD_F_INV ? req->cmd.data.key : 0,
	};
	/* Only data_out() completes a READ with success, so its data is in req->buf. */
	if ((req->cmd.flags & WF_CMD_F_CPL_DATA) && !status) {
		/* The data is the capsule, from its buffer; the completion rides as imm. */
		req->cpl_x.buf = req->buf;
		req->cpl_x.len = req->len;
		req->cpl_x.mr = conn->tpg->mr;
		req->cpl_x.with_imm = true;
		req->cpl_x.imm = wf_cpl_imm(req->cmd.cid);
	} else {
		wf_cpl_encode(&cpl, req->cpl);
	}
	if (wf_ep_post(conn->ep, &req->cpl_x))
		req_free(req);
}

void wf_req_data_out(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;

	req->state = WF_REQ_DATA_OUT;
	if (!conn->ep) {
		req_free(req);
		return;
	}
	if (req->cmd.flags & WF_CMD_F_CPL_DATA) {
		wf_req_complete(req, WF_SC_SUCCESS);
		return;
	}
	/* Unsignaled: it completes (or fails) with the SEND that follows it. */
	req->data_x = (struct wf_xfer){
	    .op = WF_XFER_WRITE,
	    .buf = req->buf,
	    .len = req->len,
	    .mr = conn->tpg->mr,
	    .remote = {req->cmd.data.addr, req->len, req->cmd.data.key},
	};
	/* Or it is the completion itself, in its immediate data: then nothing follows. */
	if (req->cmd.flags & WF_CMD_F_CPL_IMM) {
		req->state = WF_REQ_COMPLETING;
		release_rx(req);
		req->data_x.done = cpl_done;
		req->data_x.arg = req;
		req->data_x.with_imm = true;
		req->data_x.imm = wf_cpl_imm(req->cmd.cid);
	}
	if (wf_ep_post(conn->ep, &req->data_x)) {
		wf_req_complete(req, WF_SC_DATA_XFER_ERROR);
		return;
	}
	if (!(req->cmd.flags & WF_CMD_F_CPL_IMM))
		wf_req_complete(req, WF_SC_SUCCESS);
}

static void bdev_done(struct wf_bdev_io *io, int status)
{
	struct wf_tgt_req *req = io->cb_arg;

	if (status) {
		wf_log_warn(req->conn->tpg->shard->log, "volume %s: %s failed: %d", req->vol->name,
			    wf_opcode_str(req->cmd.opcode), status);
		wf_req_complete(req, WF_SC_MEDIA_ERROR);
		return;
	}
	if ((req->cmd.flags & WF_CMD_F_FUA) && !req->fua_flushed) {
		/* Write-through: the data is down, now make it stable. */
		req->fua_flushed = true;
		wf_bdev_io_prep(&req->io, WF_BDEV_FLUSH, 0, 0, NULL, bdev_done, req);
		wf_req_advance(req);
		return;
	}
	if (req->cmd.opcode == WF_OP_READ)
		wf_req_data_out(req);
	else
		wf_req_complete(req, WF_SC_SUCCESS);
}

static void execute(struct wf_tgt_req *req)
{
	const struct wf_cmd *c = &req->cmd;
	uint32_t bs = req->vol->block_size;

	wf_bdev_io_prep(&req->io, bdev_ops[c->opcode], c->lba * bs, (uint64_t)c->nblocks * bs,
			req->buf, bdev_done, req);
	req->state = WF_REQ_EXECUTING;
	wf_req_advance(req);
}

static void start_read(struct wf_tgt_req *req)
{
	execute(req);
}

static void start_nodata(struct wf_tgt_req *req)
{
	execute(req);
}

static void need_data_done(struct wf_xfer *x, int status)
{
	struct wf_tgt_req *req = x->arg;

	if (status) {
		wf_req_complete(req, WF_SC_DATA_XFER_ERROR);
		return;
	}
	execute(req);
}

static void start_write(struct wf_tgt_req *req)
{
	const struct wf_cmd *c = &req->cmd;

	if (c->inline_len) {
		/* The bdev write is asynchronous: copy out so the rx buffer goes back now. */
		memcpy(req->buf, (const uint8_t *)req->rx->data + WF_CMD_SIZE, c->inline_len);
		release_rx(req);
		execute(req);
		return;
	}
	req->state = WF_REQ_NEED_DATA;
	wf_req_advance(req);
}

static void post_read(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;

	if (!conn->ep) {
		req_free(req);
		return;
	}
	req->data_x = (struct wf_xfer){
	    .op = WF_XFER_READ,
	    .buf = req->buf,
	    .len = req->len,
	    .mr = conn->tpg->mr,
	    .remote = {req->cmd.data.addr, req->len, req->cmd.data.key},
	    .done = need_data_done,
	    .arg = req,
	};
	if (wf_ep_post(conn->ep, &req->data_x))
		wf_req_complete(req, WF_SC_DATA_XFER_ERROR);
}

static void submit(struct wf_tgt_req *req)
{
	int rc;

	if (!req->conn->ep) {
		req_free(req);
		return;
	}
	/* The direct call: through the volume descriptor's ops table. */
	rc = wf_bdev_submit(req->vol->bdev, &req->io);
	if (rc)
		wf_req_complete(req, rc == -EAGAIN ? WF_SC_BUSY : WF_SC_INTERNAL);
}

/* Decode and check a new capsule; pick the opcode's ops. */
static void req_new(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_tgt_shard *t = conn->tpg->shard;
	enum wf_status st;

	st = wf_cmd_decode(req->rx->data, req->rx->len, t->cfg->in_capsule, &req->cmd);
	if (st) {
		wf_req_complete(req, st);
		return;
	}
	if (t->stopping) {
		wf_req_complete(req, WF_SC_ABORTED);
		return;
	}
	req->op = ops[req->cmd.opcode];
	st = req->op->check(req);
	if (st) {
		wf_req_complete(req, st);
		return;
	}
	if (req->cmd.opcode >= WF_OP_READ) {
		req->io_active = true;
		t->active_io++;
	}
	/* Only in-capsule data (CONNECT's, a small write's) still needs the rx buffer. */
	if (!req->cmd.inline_len)
		release_rx(req);
	req->state = req->op->needs_buf ? WF_REQ_WAIT_BUF : WF_REQ_START;
	wf_req_advance(req);
}

void wf_req_advance(struct wf_tgt_req *req)
{
	switch (req->state) {
	case WF_REQ_NEW:
		req_new(req);
		return;
	case WF_REQ_WAIT_BUF:
		if (!buf_get(req))
			return; /* buf_put() starts it */
		req->state = WF_REQ_START;
		/* fall through */
	case WF_REQ_START:
		req->op->start(req);
		return;
	case WF_REQ_NEED_DATA:
		post_read(req);
		return;
	case WF_REQ_EXECUTING:
		submit(req);
		return;
	case WF_REQ_DATA_OUT:
		wf_req_data_out(req);
		return;
	case WF_REQ_COMPLETING:
	case WF_REQ_FREE:
		return; /* a transport callback moves these on */
	}
}

void wf_req_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct wf_tgt_conn *conn = wf_ep_ctx(ep);
	struct wf_tgt_req *req = NULL;

	/*
	 * A host may send a new command once it has a completion, before our
	 * SEND of it has reported done: allow twice its depth, which the pool is
	 * sized for, so one host overrunning its queue cannot starve the others.
	 */
	if (conn->inflight <= 2u * conn->queue_depth)
		req = wf_pool_get(&conn->tpg->reqs);
	if (!req) {
		wf_log_warn(conn->tpg->shard->log, "host %s: more commands than its queue depth",
			    conn->host);
		wf_rx_release(rx);
		wf_ep_disconnect(ep);
		return;
	}
	memset(req, 0, sizeof(*req));
	req->conn = conn;
	req->rx = rx;
	req->state = WF_REQ_NEW;
	conn->inflight++;
	conn->sq_head++;
	conn->last_cmd_ms = conn->tpg->shard->now_ms;
	wf_req_advance(req);
}
