// SPDX-License-Identifier: MIT
/*
 * Host I/O: commands built from a volume and a buffer. Small writes go in
 * the capsule, and small reads come back as one, with the completion in its
 * immediate data: one message each way, no key, no window, and copying a
 * few KiB out costs less than a message. Otherwise the buffer is advertised
 * by key, from memory that wf_dma_alloc() registered or through the
 * registration cache. The synchronous call is the asynchronous one plus a
 * bounded wait.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "initiator/lib_priv.h"

static const uint8_t wire_op[] = {
    [WF_IO_READ] = WF_OP_READ,	     [WF_IO_WRITE] = WF_OP_WRITE,
    [WF_IO_FLUSH] = WF_OP_FLUSH,     [WF_IO_WRITE_ZEROES] = WF_OP_WRITE_ZEROES,
    [WF_IO_DISCARD] = WF_OP_DISCARD,
};

static struct wf_mr *dma_find(struct wf_qp *qp, const void *buf, size_t len)
{
	const char *p = buf;

	for (struct wf_dma *d = qp->dma; d; d = d->next) {
		const char *a = d->mr->addr;

		if (p >= a && p + len <= a + d->mr->len)
			return d->mr;
	}
	return NULL;
}

/*
 * Fill the data descriptor; *mr is the registration holding @buf, and
 * *cached the same when it came from the cache, to put back later.
 */
static int describe(struct wf_qp *qp, void *buf, uint32_t len, struct wf_cmd *c, struct wf_mr **mr,
		    struct wf_mr **cached)
{
	int rc;

	*cached = NULL;
	*mr = dma_find(qp, buf, len);
	if (!*mr) {
		rc = wf_mr_cache_get(qp->cache, buf, len, cached);
		if (rc)
			return rc;
		*mr = *cached;
	}
	c->data = (struct wf_sgl){(uint64_t)(uintptr_t)buf, len, (*mr)->key};
	return 0;
}

int wf_qp_submit(struct wf_qp *qp, struct wf_vol *v, enum wf_io_op op, uint64_t lba,
		 uint32_t nblocks, void *buf, unsigned flags, wf_io_cb cb, void *arg)
{
	struct wf_cmd c = {.opcode = wire_op[op], .volume = v->info.id};
	struct wf_mr *cached = NULL, *mr = NULL;
	uint64_t bytes = (uint64_t)nblocks * v->info.block_size;
	const void *inline_data = NULL;
	int rc;

	if ((unsigned)op > WF_IO_DISCARD || (flags & ~WF_IO_FUA))
		return -EINVAL;
	if (!qp->free)
		return -EAGAIN;
	c.flags = flags & WF_IO_FUA ? WF_CMD_F_FUA : 0;
	if (op != WF_IO_FLUSH) {
		c.lba = lba;
		c.nblocks = nblocks;
	}
	if (op == WF_IO_READ || op == WF_IO_WRITE) {
		if (!buf || bytes > UINT32_MAX)
			return -EINVAL;
		if (op == WF_IO_WRITE && bytes <= qp->max_inline) {
			c.inline_len = (uint32_t)bytes;
			inline_data = buf;
		} else if (op == WF_IO_READ && bytes <= qp->max_cpl_data) {
			c.flags |= WF_CMD_F_CPL_DATA;
		} else {
			rc = describe(qp, buf, (uint32_t)bytes, &c, &mr, &cached);
			if (rc)
				return rc;
			if (op == WF_IO_READ && qp->cpl_imm)
				c.flags |= WF_CMD_F_CPL_IMM;
		}
	}
	rc = wf_qp_send_cmd(qp, &c, inline_data, mr, cached, cb, arg);
	if (rc) {
		if (cached)
			wf_mr_cache_put(qp->cache, cached);
		return rc;
	}
	/* Callbacks run only inside a poll: the slot waits for this. */
	if (c.flags & WF_CMD_F_CPL_DATA) {
		qp->slots[c.cid].cpl_data = buf;
		qp->slots[c.cid].cpl_data_len = (uint32_t)bytes;
	}
	return 0;
}

int wf_qp_io(struct wf_qp *qp, struct wf_vol *v, enum wf_io_op op, uint64_t lba, uint32_t nblocks,
	     void *buf, int timeout_s)
{
	uint64_t deadline = wf_lib_now_ms() + (timeout_s > 0 ? (uint64_t)timeout_s * 1000 : 0);
	struct wf_lib_wait w = {0};
	int rc;

	while ((rc = wf_qp_submit(qp, v, op, lba, nblocks, buf, 0, wf_lib_wait_done, &w)) ==
	       -EAGAIN)
		if ((rc = wf_qp_poll(qp, 1)) < 0)
			return rc;
	if (rc)
		return rc;
	for (;;) {
		rc = wf_qp_poll(qp, timeout_s < 0 ? -1 : timeout_s == 0 ? 0 : 1);
		if (w.done)
			return w.status;
		if (rc < 0 || (timeout_s >= 0 && wf_lib_now_ms() >= deadline))
			break;
	}
	/* Still out: the target may yet touch @buf, so nothing of this queue may stay up. */
	wf_qp_take_down(qp);
	while (!w.done)
		if (wf_qp_poll(qp, 10) < 0)
			break;
	return -ETIMEDOUT;
}

void *wf_dma_alloc(struct wf_qp *qp, size_t len)
{
	struct wf_dma *d = calloc(1, sizeof(*d));
	size_t rounded = (len + 4095) & ~(size_t)4095;
	void *p = rounded ? aligned_alloc(4096, rounded) : NULL;

	if (!d || !p)
		goto fail;
	if (wf_mr_reg(qp->host->transport, p, rounded, wf_qp_reg_access(qp), &d->mr))
		goto fail;
	d->next = qp->dma;
	qp->dma = d;
	return p;
fail:
	free(p);
	free(d);
	return NULL;
}

void wf_dma_free(struct wf_qp *qp, void *p)
{
	for (struct wf_dma **dp = &qp->dma; *dp; dp = &(*dp)->next) {
		struct wf_dma *d = *dp;

		if (d->mr->addr != p)
			continue;
		*dp = d->next;
		wf_mr_dereg(d->mr);
		free(p);
		free(d);
		return;
	}
}

void wf_qp_buf_release(struct wf_qp *qp, void *buf, size_t len)
{
	wf_mr_cache_invalidate(qp->cache, buf, len);
}
