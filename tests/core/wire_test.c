// SPDX-License-Identifier: MIT
#include <weft/wire.h>

#include "tests/lib/check.h"

#include <stdint.h>
#include <stdlib.h>

#define MAX_INLINE 4096

static uint8_t cap[WF_CMD_SIZE + MAX_INLINE + 64];

static struct wf_cmd base_read(void)
{
	return (struct wf_cmd){.opcode = WF_OP_READ,
			       .version = WF_WIRE_VERSION,
			       .cid = 0xbeef,
			       .volume = 7,
			       .lba = 0x123456789aULL,
			       .nblocks = 8,
			       .data = {.addr = 0x7f0000001000ULL, .len = 4096, .key = 0x1234}};
}

/* Encode @c, append @inl in-capsule bytes, decode, return the status. */
static enum wf_status roundtrip(const struct wf_cmd *c, uint32_t inl, struct wf_cmd *out)
{
	wf_cmd_encode(c, cap);
	return wf_cmd_decode(cap, WF_CMD_SIZE + inl, MAX_INLINE, out);
}

static void expect(struct wf_cmd c, uint32_t inl, enum wf_status want)
{
	struct wf_cmd out;
	enum wf_status got = roundtrip(&c, inl, &out);

	if (got != want) {
		fprintf(stderr, "opcode %s: got '%s', want '%s'\n", wf_opcode_str(c.opcode),
			wf_status_str(got), wf_status_str(want));
		exit(1);
	}
	/* Even a rejected command names its cid, so the error can be answered. */
	WF_CHECK_EQ(out.cid, c.cid);
}

static void test_valid_roundtrip(void)
{
	struct wf_cmd c = base_read(), out;

	c.token = 0x1122334455667788ULL;
	WF_CHECK_EQ(roundtrip(&c, 0, &out), WF_SC_SUCCESS);
	WF_CHECK(memcmp(&c, &out, sizeof(c)) == 0);
	/* Fixed offsets, little-endian, whatever the host. */
	WF_CHECK_EQ(cap[0], WF_OP_READ);
	WF_CHECK_EQ(cap[2], 0xef);
	WF_CHECK_EQ(cap[3], 0xbe);
	WF_CHECK_EQ(cap[8], 0x9a);
	WF_CHECK_EQ(cap[36], 0x34);

	c = base_read();
	c.opcode = WF_OP_WRITE;
	c.flags = WF_CMD_F_FUA;
	expect(c, 0, WF_SC_SUCCESS);
	c.data = (struct wf_sgl){0};
	c.inline_len = 512;
	expect(c, 512, WF_SC_SUCCESS);

	expect((struct wf_cmd){.opcode = WF_OP_FLUSH, .version = 1, .volume = 3}, 0, WF_SC_SUCCESS);
	expect(
	    (struct wf_cmd){.opcode = WF_OP_WRITE_ZEROES, .version = 1, .volume = 3, .nblocks = 9},
	    0, WF_SC_SUCCESS);
	expect(
	    (struct wf_cmd){
		.opcode = WF_OP_DISCARD, .version = 1, .volume = 3, .lba = 5, .nblocks = 1},
	    0, WF_SC_SUCCESS);
	expect((struct wf_cmd){.opcode = WF_OP_KEEP_ALIVE, .version = 1, .cid = 4}, 0,
	       WF_SC_SUCCESS);
	expect((struct wf_cmd){.opcode = WF_OP_CONNECT,
			       .version = 1,
			       .inline_len = WF_CONNECT_DATA_SIZE},
	       WF_CONNECT_DATA_SIZE, WF_SC_SUCCESS);
	expect((struct wf_cmd){.opcode = WF_OP_IDENTIFY,
			       .version = 1,
			       .volume = 2,
			       .data = {.addr = 64, .len = WF_VOLUME_INFO_SIZE, .key = 9}},
	       0, WF_SC_SUCCESS);
	expect((struct wf_cmd){.opcode = WF_OP_LIST_VOLUMES,
			       .version = 1,
			       .data = {.addr = 64, .len = 4096, .key = 9}},
	       0, WF_SC_SUCCESS);
}

/* A flag about a command's data means nothing to FLUSH or KEEP_ALIVE, which have none. */
static void refused_without_data(uint32_t flag)
{
	struct wf_cmd c = {.opcode = WF_OP_FLUSH, .version = WF_WIRE_VERSION, .volume = 1};

	c.flags = flag;
	expect(c, 0, WF_SC_INVALID_FIELD);
	c = (struct wf_cmd){.opcode = WF_OP_KEEP_ALIVE, .version = WF_WIRE_VERSION, .flags = flag};
	expect(c, 0, WF_SC_INVALID_FIELD);
}

static void test_each_check_has_its_status(void)
{
	struct wf_cmd c, out;

	/* Too short: malformed, but the cid is still read when present. */
	c = base_read();
	wf_cmd_encode(&c, cap);
	WF_CHECK_EQ(wf_cmd_decode(cap, 63, MAX_INLINE, &out), WF_SC_MALFORMED);
	WF_CHECK_EQ(out.cid, 0xbeef);
	WF_CHECK_EQ(wf_cmd_decode(cap, 2, MAX_INLINE, &out), WF_SC_MALFORMED);
	WF_CHECK_EQ(wf_cmd_decode(cap, 0, MAX_INLINE, &out), WF_SC_MALFORMED);

	c = base_read();
	c.version = 2;
	expect(c, 0, WF_SC_BAD_VERSION);

	c = base_read();
	c.opcode = 0x7f;
	expect(c, 0, WF_SC_INVALID_OPCODE);

	c = base_read();
	c.flags = 0x80;
	expect(c, 0, WF_SC_INVALID_FIELD);
	c = base_read();
	c.flags = WF_CMD_F_FUA; /* FUA means nothing to a read */
	expect(c, 0, WF_SC_INVALID_FIELD);
	/* A window to end (INV) needs a keyed buffer; a read has one, a flush does not. */
	c = base_read();
	c.flags = WF_CMD_F_INV;
	expect(c, 0, WF_SC_SUCCESS);
	c.data.key = 0;
	expect(c, 0, WF_SC_INVALID_FIELD);
	refused_without_data(WF_CMD_F_INV);
	/* CPL_DATA: a READ with no buffer, answered by a capsule of its data. */
	c = base_read();
	c.data = (struct wf_sgl){0};
	c.flags = WF_CMD_F_CPL_DATA;
	expect(c, 0, WF_SC_SUCCESS);
	c.data.len = 4096; /* a buffer too */
	expect(c, 0, WF_SC_INVALID_DATA);
	c.data = (struct wf_sgl){.addr = 4096};
	expect(c, 0, WF_SC_INVALID_DATA);
	c = base_read();
	c.flags = WF_CMD_F_CPL_DATA | WF_CMD_F_INV; /* a window, yet no RDMA to use it */
	expect(c, 0, WF_SC_INVALID_DATA);
	c.data = (struct wf_sgl){0};
	expect(c, 0, WF_SC_INVALID_FIELD);
	c = base_read();
	c.opcode = WF_OP_WRITE;
	c.data = (struct wf_sgl){0};
	c.inline_len = 16;
	c.flags = WF_CMD_F_CPL_DATA;
	expect(c, 16, WF_SC_INVALID_FIELD);
	refused_without_data(WF_CMD_F_CPL_DATA);
	/* CPL_IMM: a READ into a host buffer, answered by its WRITE; never with INV or CPL_DATA. */
	c = base_read();
	c.flags = WF_CMD_F_CPL_IMM;
	expect(c, 0, WF_SC_SUCCESS);
	c.data.key = 0;
	expect(c, 0, WF_SC_INVALID_DATA);
	c = base_read();
	c.flags = WF_CMD_F_CPL_IMM | WF_CMD_F_INV;
	expect(c, 0, WF_SC_INVALID_FIELD);
	c.flags = WF_CMD_F_CPL_IMM | WF_CMD_F_CPL_DATA;
	expect(c, 0, WF_SC_INVALID_FIELD);
	c = base_read();
	c.opcode = WF_OP_WRITE;
	c.flags = WF_CMD_F_CPL_IMM;
	expect(c, 0, WF_SC_INVALID_FIELD);
	refused_without_data(WF_CMD_F_CPL_IMM);
	c = base_read();
	c.cdw[1] = 1;
	expect(c, 0, WF_SC_INVALID_FIELD);
	c = base_read();
	c.nblocks = 0;
	expect(c, 0, WF_SC_INVALID_FIELD);
	c = base_read();
	c.volume = 0;
	expect(c, 0, WF_SC_INVALID_FIELD);

	/* Reserved bytes 60..63 must be zero. */
	c = base_read();
	wf_cmd_encode(&c, cap);
	cap[61] = 1;
	WF_CHECK_EQ(wf_cmd_decode(cap, WF_CMD_SIZE, MAX_INLINE, &out), WF_SC_INVALID_FIELD);

	c = base_read();
	c.lba = UINT64_MAX - 2;
	expect(c, 0, WF_SC_LBA_OUT_OF_RANGE);

	/* Data: a read with no key, a write with both inline and keyed data. */
	c = base_read();
	c.data.key = 0;
	expect(c, 0, WF_SC_INVALID_DATA);
	c = base_read();
	c.opcode = WF_OP_WRITE;
	c.inline_len = 16;
	expect(c, 16, WF_SC_INVALID_DATA);
	c = base_read();
	c.opcode = WF_OP_FLUSH;
	c.nblocks = 0;
	c.lba = 0;
	expect(c, 0, WF_SC_INVALID_DATA);

	/* inline_len must match the capsule exactly and fit the negotiated maximum. */
	c = base_read();
	c.opcode = WF_OP_WRITE;
	c.data = (struct wf_sgl){0};
	c.inline_len = 100;
	expect(c, 99, WF_SC_MALFORMED);
	c.inline_len = MAX_INLINE + 8;
	expect(c, MAX_INLINE + 8, WF_SC_INVALID_DATA);

	expect((struct wf_cmd){.opcode = WF_OP_CONNECT,
			       .version = 1,
			       .volume = 1,
			       .inline_len = WF_CONNECT_DATA_SIZE},
	       WF_CONNECT_DATA_SIZE, WF_SC_INVALID_FIELD);
	expect((struct wf_cmd){.opcode = WF_OP_CONNECT, .version = 1}, 0, WF_SC_INVALID_DATA);
	expect((struct wf_cmd){.opcode = WF_OP_IDENTIFY,
			       .version = 1,
			       .volume = 2,
			       .data = {.addr = 64, .len = 8, .key = 9}},
	       0, WF_SC_INVALID_DATA);
}

/* A read answered with its data: the completion is the capsule's immediate data. */
static void cpl_imms(void)
{
	struct wf_cpl out = {.status = 9, .result = 1};

	WF_CHECK_EQ(wf_cpl_imm(0xbeef), 0xbeefu);
	WF_CHECK_EQ(wf_cpl_imm_decode(wf_cpl_imm(0xbeef), &out), WF_SC_SUCCESS);
	WF_CHECK_EQ(out.cid, 0xbeef);
	WF_CHECK_EQ(out.status, WF_SC_SUCCESS);
	WF_CHECK_EQ(out.result, 0);
	/* A status in the upper half: failures never come this way. */
	WF_CHECK_EQ(wf_cpl_imm_decode(0xbeef | (uint32_t)WF_SC_MEDIA_ERROR << 16, &out),
		    WF_SC_MALFORMED);
	WF_CHECK_EQ(wf_cpl_imm_decode(0xffffffffu, &out), WF_SC_MALFORMED);
}

static void test_cpl_and_payloads(void)
{
	struct wf_cpl c = {.cid = 77,
			   .status = WF_SC_LBA_OUT_OF_RANGE,
			   .sq_head = 65535,
			   .result = 1ULL << 40},
		      out;
	struct wf_connect_data cd = {.host = "host-a", .queue_depth = 128}, cdo;
	struct wf_volume_info vi = {.volume = 3,
				    .block_size = 4096,
				    .nblocks = 1 << 20,
				    .max_transfer_blocks = 256,
				    .name = "vol3"},
			      vio;
	uint8_t b[WF_VOLUME_INFO_SIZE];

	wf_cpl_encode(&c, b);
	WF_CHECK_EQ(wf_cpl_decode(b, WF_CPL_SIZE, &out), WF_SC_SUCCESS);
	WF_CHECK(memcmp(&c, &out, sizeof(c)) == 0);
	WF_CHECK_EQ(wf_cpl_decode(b, WF_CPL_SIZE - 1, &out), WF_SC_MALFORMED);
	b[6] = 1;
	WF_CHECK_EQ(wf_cpl_decode(b, WF_CPL_SIZE, &out), WF_SC_MALFORMED);
	cpl_imms();

	wf_connect_data_encode(&cd, b);
	WF_CHECK_EQ(wf_connect_data_decode(b, WF_CONNECT_DATA_SIZE, &cdo), WF_SC_SUCCESS);
	WF_CHECK(strcmp(cdo.host, "host-a") == 0);
	WF_CHECK_EQ(cdo.queue_depth, 128);
	memset(b, 'x', WF_HOST_NAME_MAX); /* no NUL anywhere in the name */
	WF_CHECK_EQ(wf_connect_data_decode(b, WF_CONNECT_DATA_SIZE, &cdo), WF_SC_INVALID_DATA);
	b[0] = '\0'; /* empty name */
	WF_CHECK_EQ(wf_connect_data_decode(b, WF_CONNECT_DATA_SIZE, &cdo), WF_SC_INVALID_DATA);

	wf_volume_info_encode(&vi, b);
	WF_CHECK_EQ(wf_volume_info_decode(b, sizeof(b), &vio), WF_SC_SUCCESS);
	WF_CHECK(memcmp(&vi, &vio, sizeof(vi)) == 0);
	vi.block_size = 1000;
	wf_volume_info_encode(&vi, b);
	WF_CHECK_EQ(wf_volume_info_decode(b, sizeof(b), &vio), WF_SC_INVALID_DATA);

	WF_CHECK(strcmp(wf_status_str((enum wf_status)999), "unknown status") == 0);
	for (int s = 0; s < WF_SC_MAX_; s++)
		WF_CHECK(wf_status_str((enum wf_status)s) != NULL);
}

/* Random capsules: decode stays in bounds, and what it accepts re-encodes identically. */
static void test_random_capsules(void)
{
	uint8_t re[WF_CMD_SIZE];
	struct wf_cmd out;
	unsigned seed = 12345, accepted = 0;

	for (int i = 0; i < 200000; i++) {
		size_t len = (size_t)(rand_r(&seed) % (WF_CMD_SIZE + 128));
		uint8_t *buf = malloc(len ? len : 1);

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		/* Bias toward plausible commands so the deeper checks run too. */
		if (len >= WF_CMD_SIZE && (i & 1)) {
			buf[1] = WF_WIRE_VERSION;
			buf[0] = (i & 2) ? WF_OP_READ : WF_OP_KEEP_ALIVE;
			memset(buf + 48, 0, 16);
			buf[20] = (uint8_t)(len - WF_CMD_SIZE);
			memset(buf + 21, 0, 3);
			if (i & 4)
				memset(buf + 4, 0, 36);
		}
		if (wf_cmd_decode(buf, len, MAX_INLINE, &out) == WF_SC_SUCCESS) {
			accepted++;
			wf_cmd_encode(&out, re);
			WF_CHECK(memcmp(re, buf, WF_CMD_SIZE) == 0);
		}
		free(buf);
	}
	/* The biased half must reach acceptance sometimes, or the checks above ran on nothing. */
	WF_CHECK(accepted > 0);
}

int main(void)
{
	test_valid_roundtrip();
	test_each_check_has_its_status();
	test_cpl_and_payloads();
	test_random_capsules();
	return 0;
}
