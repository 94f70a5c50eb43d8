// SPDX-License-Identifier: MIT
/*
 * Volumes seen from the host: listed and identified once over the admin
 * path, then described from the cache without asking the target (seed 004).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "initiator/lib_priv.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int wf_qp_list_volumes(struct wf_qp *qp, uint32_t *ids, uint32_t max, uint32_t *count)
{
	struct wf_cmd c = {
	    .opcode = WF_OP_LIST_VOLUMES,
	    .data = {(uint64_t)(uintptr_t)qp->admin_buf, WF_ADMIN_BUF, qp->admin_mr->key},
	};
	uint32_t n, room = (WF_ADMIN_BUF - WF_VOLUME_LIST_HDR) / 4;
	int rc;

	memset(qp->admin_buf, 0, WF_ADMIN_BUF);
	rc = wf_qp_admin(qp, &c, NULL);
	if (rc)
		return rc;
	n = get32(qp->admin_buf);
	for (uint32_t i = 0; i < n && i < max && i < room; i++)
		ids[i] = get32(qp->admin_buf + WF_VOLUME_LIST_HDR + 4 * i);
	*count = n;
	return 0;
}

int wf_qp_keep_alive(struct wf_qp *qp)
{
	struct wf_cmd c = {.opcode = WF_OP_KEEP_ALIVE};

	return wf_qp_admin(qp, &c, NULL);
}

int wf_vol_open(struct wf_qp *qp, uint32_t id, struct wf_vol **out)
{
	struct wf_cmd c = {
	    .opcode = WF_OP_IDENTIFY,
	    .volume = id,
	    .data = {(uint64_t)(uintptr_t)qp->admin_buf, WF_VOLUME_INFO_SIZE, qp->admin_mr->key},
	};
	struct wf_volume_info info;
	struct wf_vol *v;
	int rc;

	rc = wf_qp_admin(qp, &c, NULL);
	if (rc)
		return rc;
	if (wf_volume_info_decode(qp->admin_buf, WF_VOLUME_INFO_SIZE, &info) || info.volume != id)
		return -EPROTO;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->qp = qp;
	v->info = (struct wf_vol_info){
	    .id = info.volume,
	    .block_size = info.block_size,
	    .nblocks = info.nblocks,
	    .max_transfer_blocks = info.max_transfer_blocks,
	    .read_only = info.flags & WF_VOL_F_READ_ONLY,
	};
	memcpy(v->info.name, info.name, sizeof(v->info.name));
	*out = v;
	return 0;
}

int wf_vol_open_name(struct wf_qp *qp, const char *name, struct wf_vol **out)
{
	uint32_t ids[256], n;
	struct wf_vol *v;
	int rc;

	rc = wf_qp_list_volumes(qp, ids, 256, &n);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n && i < 256; i++) {
		rc = wf_vol_open(qp, ids[i], &v);
		if (rc)
			return rc;
		if (!strcmp(v->info.name, name)) {
			*out = v;
			return 0;
		}
		wf_vol_close(v);
	}
	return -ENOENT;
}

void wf_vol_close(struct wf_vol *v)
{
	free(v);
}

const struct wf_vol_info *wf_vol_info(const struct wf_vol *v)
{
	return &v->info;
}

uint32_t wf_vol_block_size(const struct wf_vol *v)
{
	return v->info.block_size;
}

uint64_t wf_vol_nblocks(const struct wf_vol *v)
{
	return v->info.nblocks;
}
