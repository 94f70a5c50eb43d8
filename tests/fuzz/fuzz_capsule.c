// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: everything a target decodes from a host's capsule.
 * The first byte picks the in-capsule limit so both the accept and the
 * refuse paths of inline data get explored. Invariants checked: a capsule
 * the decoder accepts re-encodes to the same bytes, and a status is always
 * one the protocol defines.
 */
#include <weft/wire.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cmd(const uint8_t *p, size_t n, uint32_t max_inline)
{
	uint8_t re[WF_CMD_SIZE];
	struct wf_cmd c;
	enum wf_status st = wf_cmd_decode(p, n, max_inline, &c);

	if ((unsigned)st >= WF_SC_MAX_)
		abort();
	if (st != WF_SC_SUCCESS)
		return;
	wf_cmd_encode(&c, re);
	if (memcmp(re, p, WF_CMD_SIZE) != 0 || c.inline_len != n - WF_CMD_SIZE)
		abort();
	if (c.opcode == WF_OP_CONNECT) {
		struct wf_connect_data d;

		if (wf_connect_data_decode(p + WF_CMD_SIZE, c.inline_len, &d) == WF_SC_SUCCESS &&
		    (d.queue_depth == 0 || !memchr(d.host, '\0', sizeof(d.host))))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_volume_info vi;
	struct wf_cpl cpl;

	if (size < 1)
		return 0;
	/* 0..4096 in steps of 16, plus a few odd limits. */
	check_cmd(data + 1, size - 1, (uint32_t)data[0] * 16 + (data[0] & 1));
	if (wf_cpl_decode(data, size, &cpl) == WF_SC_SUCCESS && size != WF_CPL_SIZE)
		abort();
	if (wf_volume_info_decode(data, size, &vi) == WF_SC_SUCCESS &&
	    (vi.block_size < 512 || (vi.block_size & (vi.block_size - 1)) || !vi.volume))
		abort();
	return 0;
}
