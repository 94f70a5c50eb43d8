// SPDX-License-Identifier: MIT
/*
 * Encoding and validation of weft's capsules. Fields are read and written at
 * fixed offsets byte by byte, so neither alignment nor host byte order can
 * leak onto the wire, and every field is checked before anyone acts on it.
 */
#include <weft/wire.h>

#include <string.h>

_Static_assert(sizeof(struct wf_sgl) == 16, "sgl is 16 bytes on the wire");

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

void wf_cmd_encode(const struct wf_cmd *c, void *buf)
{
	uint8_t *p = buf;

	memset(p, 0, WF_CMD_SIZE);
	p[0] = c->opcode;
	p[1] = c->version;
	put16(p + 2, c->cid);
	put32(p + 4, c->volume);
	put64(p + 8, c->lba);
	put32(p + 16, c->nblocks);
	put32(p + 20, c->inline_len);
	put64(p + 24, c->data.addr);
	put32(p + 32, c->data.len);
	put32(p + 36, c->data.key);
	put64(p + 40, c->token);
	put32(p + 48, c->flags);
	put32(p + 52, c->cdw[0]);
	put32(p + 56, c->cdw[1]);
}

static void cmd_read(const uint8_t *p, struct wf_cmd *c)
{
	c->opcode = p[0];
	c->version = p[1];
	c->cid = get16(p + 2);
	c->volume = get32(p + 4);
	c->lba = get64(p + 8);
	c->nblocks = get32(p + 16);
	c->inline_len = get32(p + 20);
	c->data.addr = get64(p + 24);
	c->data.len = get32(p + 32);
	c->data.key = get32(p + 36);
	c->token = get64(p + 40);
	c->flags = get32(p + 48);
	c->cdw[0] = get32(p + 52);
	c->cdw[1] = get32(p + 56);
}

static int has_keyed_data(const struct wf_cmd *c)
{
	return c->data.len > 0 && c->data.key != 0;
}

static int no_data(const struct wf_cmd *c)
{
	return c->inline_len == 0 && c->data.len == 0 && c->data.addr == 0 && c->data.key == 0;
}

/* Admin commands that name no blocks. */
static enum wf_status check_admin(const struct wf_cmd *c)
{
	if (c->lba || c->nblocks || (c->flags & ~WF_CMD_F_INV))
		return WF_SC_INVALID_FIELD;
	switch (c->opcode) {
	case WF_OP_CONNECT:
		if (c->volume)
			return WF_SC_INVALID_FIELD;
		if (c->inline_len != WF_CONNECT_DATA_SIZE || c->data.len)
			return WF_SC_INVALID_DATA;
		return WF_SC_SUCCESS;
	case WF_OP_KEEP_ALIVE:
		if (c->volume)
			return WF_SC_INVALID_FIELD;
		return no_data(c) ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
	case WF_OP_IDENTIFY:
		if (!c->volume)
			return WF_SC_INVALID_FIELD;
		return c->inline_len == 0 && has_keyed_data(c) && c->data.len >= WF_VOLUME_INFO_SIZE
			   ? WF_SC_SUCCESS
			   : WF_SC_INVALID_DATA;
	case WF_OP_AUTH_CHALLENGE:
		if (c->volume)
			return WF_SC_INVALID_FIELD;
		return c->inline_len == WF_AUTH_NONCE_SIZE && has_keyed_data(c) &&
			       c->data.len >= WF_AUTH_ANSWER_SIZE
			   ? WF_SC_SUCCESS
			   : WF_SC_INVALID_DATA;
	case WF_OP_AUTH_REPLY:
		if (c->volume)
			return WF_SC_INVALID_FIELD;
		return c->inline_len == WF_AUTH_PROOF_SIZE && c->data.len == 0 &&
			       c->data.addr == 0 && c->data.key == 0
			   ? WF_SC_SUCCESS
			   : WF_SC_INVALID_DATA;
	default: /* WF_OP_LIST_VOLUMES */
		if (c->volume)
			return WF_SC_INVALID_FIELD;
		return c->inline_len == 0 && has_keyed_data(c) && c->data.len >= WF_VOLUME_LIST_HDR
			   ? WF_SC_SUCCESS
			   : WF_SC_INVALID_DATA;
	}
}

/* I/O commands on a volume. */
static enum wf_status check_io(const struct wf_cmd *c)
{
	if (!c->volume)
		return WF_SC_INVALID_FIELD;
	if (c->opcode == WF_OP_FLUSH) {
		if (c->lba || c->nblocks || (c->flags & ~WF_CMD_F_INV))
			return WF_SC_INVALID_FIELD;
		return no_data(c) ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
	}
	if (c->nblocks == 0)
		return WF_SC_INVALID_FIELD;
	if (c->lba + c->nblocks < c->lba)
		return WF_SC_LBA_OUT_OF_RANGE;
	if ((c->flags & WF_CMD_F_FUA) && c->opcode != WF_OP_WRITE &&
	    c->opcode != WF_OP_WRITE_ZEROES)
		return WF_SC_INVALID_FIELD;
	if ((c->flags & (WF_CMD_F_CPL_DATA | WF_CMD_F_CPL_IMM)) && c->opcode != WF_OP_READ)
		return WF_SC_INVALID_FIELD;
	/* One way to answer; the target ends no window it does not answer with a SEND. */
	if ((c->flags & WF_CMD_F_CPL_IMM) && (c->flags & (WF_CMD_F_CPL_DATA | WF_CMD_F_INV)))
		return WF_SC_INVALID_FIELD;
	switch (c->opcode) {
	case WF_OP_READ:
		/* Into a host buffer, or back in the completion's capsule: one, never both. */
		if (c->flags & WF_CMD_F_CPL_DATA)
			return no_data(c) ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
		return c->inline_len == 0 && has_keyed_data(c) ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
	case WF_OP_WRITE:
		/* Either in the capsule or in a host buffer, never both. */
		if (c->inline_len)
			return c->data.len == 0 ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
		return has_keyed_data(c) ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
	default: /* WRITE_ZEROES, DISCARD */
		return no_data(c) ? WF_SC_SUCCESS : WF_SC_INVALID_DATA;
	}
}

enum wf_status wf_cmd_decode(const void *buf, size_t len, uint32_t max_inline, struct wf_cmd *out)
{
	const uint8_t *p = buf;

	memset(out, 0, sizeof(*out));
	if (len >= 4)
		out->cid = get16(p + 2);
	if (len < WF_CMD_SIZE)
		return WF_SC_MALFORMED;
	cmd_read(p, out);
	if (out->version != WF_WIRE_VERSION)
		return WF_SC_BAD_VERSION;
	if (out->inline_len != len - WF_CMD_SIZE)
		return WF_SC_MALFORMED;
	if (out->inline_len > max_inline)
		return WF_SC_INVALID_DATA;
	if (get32(p + 60) || out->cdw[0] || out->cdw[1] || (out->flags & ~WF_CMD_F_ALL))
		return WF_SC_INVALID_FIELD;
	/* Only a key can be a window to end. */
	if ((out->flags & WF_CMD_F_INV) && !has_keyed_data(out))
		return WF_SC_INVALID_FIELD;
	switch (out->opcode) {
	case WF_OP_CONNECT:
	case WF_OP_KEEP_ALIVE:
	case WF_OP_IDENTIFY:
	case WF_OP_LIST_VOLUMES:
	case WF_OP_AUTH_CHALLENGE:
	case WF_OP_AUTH_REPLY:
		return check_admin(out);
	case WF_OP_READ:
	case WF_OP_WRITE:
	case WF_OP_FLUSH:
	case WF_OP_WRITE_ZEROES:
	case WF_OP_DISCARD:
		return check_io(out);
	default:
		return WF_SC_INVALID_OPCODE;
	}
}

void wf_cpl_encode(const struct wf_cpl *c, void *buf)
{
	uint8_t *p = buf;

	memset(p, 0, WF_CPL_SIZE);
	put16(p, c->cid);
	put16(p + 2, c->status);
	put16(p + 4, c->sq_head);
	put64(p + 8, c->result);
}

enum wf_status wf_cpl_decode(const void *buf, size_t len, struct wf_cpl *out)
{
	const uint8_t *p = buf;

	memset(out, 0, sizeof(*out));
	if (len != WF_CPL_SIZE || get16(p + 6))
		return WF_SC_MALFORMED;
	out->cid = get16(p);
	out->status = get16(p + 2);
	out->sq_head = get16(p + 4);
	out->result = get64(p + 8);
	return WF_SC_SUCCESS;
}

uint32_t wf_cpl_imm(uint16_t cid)
{
	return cid | (uint32_t)WF_SC_SUCCESS << 16;
}

enum wf_status wf_cpl_imm_decode(uint32_t imm, struct wf_cpl *out)
{
	memset(out, 0, sizeof(*out));
	out->cid = (uint16_t)imm;
	/* Only a success comes this way: a failure has a completion of its own. */
	return imm >> 16 == WF_SC_SUCCESS ? WF_SC_SUCCESS : WF_SC_MALFORMED;
}

/* A fixed-size string field must hold a NUL; @nonempty: and something before it. */
static int string_ok(const char *s, size_t cap, int nonempty)
{
	return memchr(s, '\0', cap) != NULL && (!nonempty || s[0] != '\0');
}

void wf_connect_data_encode(const struct wf_connect_data *d, void *buf)
{
	uint8_t *p = buf;

	memset(p, 0, WF_CONNECT_DATA_SIZE);
	memcpy(p, d->host, WF_HOST_NAME_MAX);
	p[WF_HOST_NAME_MAX - 1] = '\0';
	put16(p + 40, d->queue_depth);
}

enum wf_status wf_connect_data_decode(const void *buf, size_t len, struct wf_connect_data *out)
{
	const uint8_t *p = buf;

	if (len != WF_CONNECT_DATA_SIZE)
		return WF_SC_INVALID_DATA;
	memcpy(out->host, p, WF_HOST_NAME_MAX);
	out->queue_depth = get16(p + 40);
	if (!string_ok(out->host, sizeof(out->host), 1) || out->queue_depth == 0 || get16(p + 42) ||
	    get32(p + 44))
		return WF_SC_INVALID_DATA;
	return WF_SC_SUCCESS;
}

void wf_volume_info_encode(const struct wf_volume_info *v, void *buf)
{
	uint8_t *p = buf;

	memset(p, 0, WF_VOLUME_INFO_SIZE);
	put32(p, v->volume);
	put32(p + 4, v->block_size);
	put64(p + 8, v->nblocks);
	put32(p + 16, v->max_transfer_blocks);
	put32(p + 20, v->flags);
	memcpy(p + 24, v->name, WF_VOLUME_NAME_MAX);
	p[24 + WF_VOLUME_NAME_MAX - 1] = '\0';
}

enum wf_status wf_volume_info_decode(const void *buf, size_t len, struct wf_volume_info *out)
{
	const uint8_t *p = buf;

	if (len < WF_VOLUME_INFO_SIZE)
		return WF_SC_INVALID_DATA;
	out->volume = get32(p);
	out->block_size = get32(p + 4);
	out->nblocks = get64(p + 8);
	out->max_transfer_blocks = get32(p + 16);
	out->flags = get32(p + 20);
	memcpy(out->name, p + 24, WF_VOLUME_NAME_MAX);
	if (!out->volume || out->block_size < 512 || (out->block_size & (out->block_size - 1)) ||
	    !out->max_transfer_blocks || !string_ok(out->name, sizeof(out->name), 0))
		return WF_SC_INVALID_DATA;
	return WF_SC_SUCCESS;
}

void wf_auth_answer_encode(const struct wf_auth_answer *a, void *buf)
{
	uint8_t *p = buf;

	memset(p, 0, WF_AUTH_ANSWER_SIZE);
	memcpy(p, a->nonce, WF_AUTH_NONCE_SIZE);
	memcpy(p + 32, a->proof, WF_AUTH_PROOF_SIZE);
	put64(p + 64, a->token);
}

enum wf_status wf_auth_answer_decode(const void *buf, size_t len, struct wf_auth_answer *out)
{
	const uint8_t *p = buf;

	if (len < WF_AUTH_ANSWER_SIZE || get64(p + 72))
		return WF_SC_INVALID_DATA;
	memcpy(out->nonce, p, WF_AUTH_NONCE_SIZE);
	memcpy(out->proof, p + 32, WF_AUTH_PROOF_SIZE);
	out->token = get64(p + 64);
	return WF_SC_SUCCESS;
}

static const char *const status_names[WF_SC_MAX_] = {
    [WF_SC_SUCCESS] = "success",
    [WF_SC_MALFORMED] = "malformed capsule",
    [WF_SC_BAD_VERSION] = "unsupported protocol version",
    [WF_SC_INVALID_OPCODE] = "invalid opcode",
    [WF_SC_INVALID_FIELD] = "invalid field in command",
    [WF_SC_INVALID_DATA] = "invalid data descriptor or in-capsule data",
    [WF_SC_NOT_CONNECTED] = "queue not connected",
    [WF_SC_UNKNOWN_VOLUME] = "unknown volume",
    [WF_SC_ACCESS_DENIED] = "access denied",
    [WF_SC_READ_ONLY] = "volume is read-only for this host",
    [WF_SC_LBA_OUT_OF_RANGE] = "LBA out of range",
    [WF_SC_TRANSFER_TOO_LARGE] = "transfer too large",
    [WF_SC_DATA_XFER_ERROR] = "data transfer error",
    [WF_SC_MEDIA_ERROR] = "media error",
    [WF_SC_INTERNAL] = "internal target error",
    [WF_SC_BUSY] = "target busy",
    [WF_SC_ABORTED] = "command aborted",
    [WF_SC_AUTH_REQUIRED] = "authentication required",
    [WF_SC_AUTH_FAILED] = "authentication failed",
};

const char *wf_status_str(enum wf_status s)
{
	return (unsigned)s < WF_SC_MAX_ ? status_names[s] : "unknown status";
}

const char *wf_opcode_str(uint8_t opcode)
{
	switch (opcode) {
	case WF_OP_CONNECT:
		return "connect";
	case WF_OP_KEEP_ALIVE:
		return "keep-alive";
	case WF_OP_IDENTIFY:
		return "identify";
	case WF_OP_LIST_VOLUMES:
		return "list-volumes";
	case WF_OP_AUTH_CHALLENGE:
		return "auth-challenge";
	case WF_OP_AUTH_REPLY:
		return "auth-reply";
	case WF_OP_READ:
		return "read";
	case WF_OP_WRITE:
		return "write";
	case WF_OP_FLUSH:
		return "flush";
	case WF_OP_WRITE_ZEROES:
		return "write-zeroes";
	case WF_OP_DISCARD:
		return "discard";
	default:
		return "unknown";
	}
}
