// SPDX-License-Identifier: MIT
/*
 * Admin commands: CONNECT opens the session and fills the connection's
 * table of volume descriptors for this host; IDENTIFY and LIST_VOLUMES
 * RDMA-WRITE their answer into the host's buffer; KEEP_ALIVE proves life.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "target/target_priv.h"

static enum wf_status check_connect(struct wf_tgt_req *req)
{
	return req->conn->connected ? WF_SC_NOT_CONNECTED : WF_SC_SUCCESS;
}

static const struct wf_cfg_allow *find_allow(const struct wf_config *cfg, const char *host,
					     uint32_t vol_idx)
{
	for (uint32_t i = 0; i < cfg->nallows; i++)
		if (cfg->allows[i].volume == vol_idx && !strcmp(cfg->allows[i].host, host))
			return &cfg->allows[i];
	return NULL;
}

static void start_connect(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_tgt_shard *t = conn->tpg->shard;
	const struct wf_conn_params *params;
	struct wf_connect_data d;

	/* Held by the fence, then the host hung up: nothing to answer. */
	if (!conn->ep) {
		wf_req_complete(req, WF_SC_ABORTED);
		return;
	}
	if (wf_conn_fence(req))
		return;
	params = wf_ep_params(conn->ep);
	if (wf_connect_data_decode((const uint8_t *)req->rx->data + WF_CMD_SIZE,
				   req->cmd.inline_len, &d)) {
		wf_req_complete(req, WF_SC_INVALID_DATA);
		return;
	}
	/* The capsule must name the identity the transport admitted. */
	if (strcmp(d.host, params->host_id)) {
		wf_req_complete(req, WF_SC_ACCESS_DENIED);
		return;
	}
	if (d.queue_depth == 0 || d.queue_depth > params->queue_depth) {
		wf_req_complete(req, WF_SC_INVALID_DATA);
		return;
	}
	for (uint32_t i = 0; i < t->nvolumes; i++) {
		const struct wf_cfg_allow *a = find_allow(t->cfg, d.host, i);

		conn->access[i + 1].vol = a && t->volumes[i].bdev ? &t->volumes[i] : NULL;
		conn->access[i + 1].rw = a && a->rw;
	}
	conn->connected = true;
	conn->queue_depth = d.queue_depth;
	req->result = d.queue_depth;
	wf_tgt_auth_connect(conn, &req->result);
	wf_log_info(t->log, "host %s connected, queue depth %u, thread %u", conn->host,
		    d.queue_depth, t->index);
	wf_req_complete(req, WF_SC_SUCCESS);
}

static enum wf_status check_connected(struct wf_tgt_req *req)
{
	return wf_req_check_session(req);
}

static void start_keep_alive(struct wf_tgt_req *req)
{
	wf_req_complete(req, WF_SC_SUCCESS);
}

static void start_identify(struct wf_tgt_req *req)
{
	const struct wf_tgt_volume *v = req->vol;
	struct wf_volume_info info = {
	    .volume = v->id,
	    .block_size = v->block_size,
	    .nblocks = v->nblocks,
	    .max_transfer_blocks = v->max_blocks,
	    .flags = req->conn->access[v->id].rw ? 0 : WF_VOL_F_READ_ONLY,
	};

	snprintf(info.name, sizeof(info.name), "%s", v->name);
	wf_volume_info_encode(&info, req->buf);
	req->len = WF_VOLUME_INFO_SIZE;
	wf_req_data_out(req);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void start_list(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	struct wf_tgt_shard *t = conn->tpg->shard;
	uint32_t room = req->cmd.data.len, count = 0;
	uint8_t *p = req->buf;

	if (room > WF_TGT_SMALL_BUF)
		room = WF_TGT_SMALL_BUF;
	room = (room - WF_VOLUME_LIST_HDR) / 4;
	/* Only the volumes this host may use; the count says if the buffer was short. */
	for (uint32_t id = 1; id <= t->nvolumes; id++) {
		if (!conn->access[id].vol)
			continue;
		if (count < room)
			put32(p + WF_VOLUME_LIST_HDR + 4 * count, id);
		count++;
	}
	put32(p, count);
	put32(p + 4, 0);
	req->len = WF_VOLUME_LIST_HDR + 4 * (count < room ? count : room);
	wf_req_data_out(req);
}

const struct wf_tgt_op wf_admin_connect_op = {check_connect, false, start_connect};
const struct wf_tgt_op wf_admin_keep_alive_op = {check_connected, false, start_keep_alive};
const struct wf_tgt_op wf_admin_identify_op = {wf_req_check_volume, true, start_identify};
const struct wf_tgt_op wf_admin_list_op = {check_connected, true, start_list};
