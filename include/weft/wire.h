/* SPDX-License-Identifier: MIT */
/*
 * weft's wire protocol: the capsules a host and a target exchange over any
 * transport. A 64-byte command, optionally followed by in-capsule data, goes
 * host -> target; a 16-byte completion goes back. A small READ may instead be
 * answered by a capsule of its data that carries the completion in the
 * transport's immediate data (WF_CMD_F_CPL_DATA). Everything is
 * little-endian with fixed offsets; docs/PROTOCOL.md is the prose version of
 * this file.
 *
 * The structs below are the decoded, host-order form. wf_cmd_encode() and
 * wf_cmd_decode() convert to and from the wire; decode validates every field
 * and names the first problem with its own status code.
 */
#ifndef WEFT_WIRE_H
#define WEFT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WF_WIRE_VERSION	   1
#define WF_CMD_SIZE	   64
#define WF_CPL_SIZE	   16
#define WF_HOST_NAME_MAX   40 /* host identity bytes, NUL included */
#define WF_VOLUME_NAME_MAX 32

enum wf_opcode {
	/* Admin: no volume, or naming one only to describe it. */
	WF_OP_CONNECT = 0x01,	     /* first capsule of a queue: host identity, queue depth */
	WF_OP_KEEP_ALIVE = 0x02,     /* proves the host is alive; no data */
	WF_OP_IDENTIFY = 0x03,	     /* struct wf_volume_info -> host buffer */
	WF_OP_LIST_VOLUMES = 0x04,   /* struct wf_volume_list -> host buffer */
	WF_OP_AUTH_CHALLENGE = 0x05, /* host nonce in; struct wf_auth_answer -> host buffer */
	WF_OP_AUTH_REPLY = 0x06,     /* host proof in; result: the session token */
	/* I/O on a volume. */
	WF_OP_READ = 0x10,
	WF_OP_WRITE = 0x11,
	WF_OP_FLUSH = 0x12,
	WF_OP_WRITE_ZEROES = 0x13,
	WF_OP_DISCARD = 0x14,
};

/* Completion status; each check on a command has its own. */
enum wf_status {
	WF_SC_SUCCESS = 0,
	WF_SC_MALFORMED = 1,	       /* capsule shorter than a command, or length mismatch */
	WF_SC_BAD_VERSION = 2,	       /* command version is not WF_WIRE_VERSION */
	WF_SC_INVALID_OPCODE = 3,      /* unknown opcode */
	WF_SC_INVALID_FIELD = 4,       /* a field is invalid for the opcode (flags, reserved) */
	WF_SC_INVALID_DATA = 5,	       /* data descriptor or in-capsule data wrong for the op */
	WF_SC_NOT_CONNECTED = 6,       /* I/O before CONNECT, or a second CONNECT */
	WF_SC_UNKNOWN_VOLUME = 7,      /* no such volume on this target */
	WF_SC_ACCESS_DENIED = 8,       /* volume exists but this host may not use it */
	WF_SC_READ_ONLY = 9,	       /* write to a volume this host may only read */
	WF_SC_LBA_OUT_OF_RANGE = 10,   /* blocks beyond the volume's end */
	WF_SC_TRANSFER_TOO_LARGE = 11, /* more blocks than the target's maximum transfer */
	WF_SC_DATA_XFER_ERROR = 12,    /* moving data to or from the host failed */
	WF_SC_MEDIA_ERROR = 13,	       /* the backing device failed the I/O */
	WF_SC_INTERNAL = 14,	       /* target-side failure not caused by the command */
	WF_SC_BUSY = 15,	       /* out of resources; retry */
	WF_SC_ABORTED = 16,	       /* the target is shutting down */
	WF_SC_AUTH_REQUIRED = 17,      /* not authenticated yet, or the wrong session token */
	WF_SC_AUTH_FAILED = 18,	       /* a proof did not verify, or out of sequence */
	WF_SC_MAX_,
};

/* wf_cmd.flags bits. */
#define WF_CMD_F_FUA 0x0001 /* write through to stable media before completing */
#define WF_CMD_F_INV 0x0002 /* data.key is a window: end it with the completion */
/*
 * READ only, with no data descriptor: answer with a capsule holding just the
 * data, the completion in its immediate data (wf_cpl_imm()), so a small read
 * costs two messages, one packet each way up to the path MTU, and no window.
 * The data must fit the negotiated capsule size; a failure is answered by an
 * ordinary completion.
 */
#define WF_CMD_F_CPL_DATA 0x0004
/*
 * READ only, into the host buffer data names, never with INV: answer a
 * success with the data's RDMA WRITE carrying the completion as immediate
 * data (wf_cpl_imm()), so a large read costs no completion message. A
 * failure is answered by an ordinary completion. If data.key is a window,
 * the host ends it itself.
 */
#define WF_CMD_F_CPL_IMM 0x0008
#define WF_CMD_F_ALL	 (WF_CMD_F_FUA | WF_CMD_F_INV | WF_CMD_F_CPL_DATA | WF_CMD_F_CPL_IMM)

/* A host buffer the target may read or write: what the host registered. */
struct wf_sgl {
	uint64_t addr;
	uint32_t len;
	uint32_t key;
};

/* A command, decoded. Wire offsets in brackets; bytes 60-63 are reserved, zero. */
struct wf_cmd {
	uint8_t opcode;	     /* [0] enum wf_opcode */
	uint8_t version;     /* [1] WF_WIRE_VERSION */
	uint16_t cid;	     /* [2] command id, echoed in the completion */
	uint32_t volume;     /* [4] volume id; 0 for CONNECT, KEEP_ALIVE, LIST_VOLUMES */
	uint64_t lba;	     /* [8] first block */
	uint32_t nblocks;    /* [16] blocks, at least 1 for READ/WRITE/WRITE_ZEROES/DISCARD */
	uint32_t inline_len; /* [20] bytes of in-capsule data after the command */
	struct wf_sgl data;  /* [24] host buffer; len 0 when none */
	uint64_t token;	     /* [40] session token from AUTH_REPLY; 0 without authentication */
	uint32_t flags;	     /* [48] WF_CMD_F_* */
	uint32_t cdw[2];     /* [52] opcode-specific, zero unless the op defines them */
};

/* A completion, decoded; bytes 6-7 are reserved, zero. */
struct wf_cpl {
	uint16_t cid;	  /* [0] */
	uint16_t status;  /* [2] enum wf_status */
	uint16_t sq_head; /* [4] commands the target has taken off this queue, mod 2^16 */
			  /* [6] reserved, zero */
	uint64_t result;  /* [8] opcode-specific: see WF_CONNECT_RES_* and AUTH_REPLY */
};

/* CONNECT's result: the queue depth granted, and whether AUTH must follow. */
#define WF_CONNECT_RES_QD_MASK 0xffffull
#define WF_CONNECT_RES_AUTH    (1ull << 32)

/* CONNECT's in-capsule data (48 bytes; 42-47 reserved, zero). */
struct wf_connect_data {
	char host[WF_HOST_NAME_MAX]; /* [0] NUL-terminated, non-empty */
	uint16_t queue_depth;	     /* [40] commands the host will have outstanding */
				     /* [42] reserved, zero */
};
#define WF_CONNECT_DATA_SIZE 48

/*
 * Authentication (docs/SECURITY.md): HMAC-SHA256 challenge-response in both
 * directions. AUTH_CHALLENGE carries the host's nonce in the capsule and the
 * session token to resume in the command's token field (0: a new session);
 * the target RDMA-writes its answer. AUTH_REPLY carries the host's proof.
 */
#define WF_AUTH_NONCE_SIZE  32
#define WF_AUTH_PROOF_SIZE  32
#define WF_AUTH_ANSWER_SIZE 80

/* The target's answer to AUTH_CHALLENGE (80 bytes; 72-79 reserved, zero). */
struct wf_auth_answer {
	uint8_t nonce[WF_AUTH_NONCE_SIZE]; /* [0] the target's challenge */
	uint8_t proof[WF_AUTH_PROOF_SIZE]; /* [32] the target's proof */
	uint64_t token;			   /* [64] session resumed; 0: keyed by the secret */
};

/* IDENTIFY's data (64 bytes; 56-63 reserved, zero). */
struct wf_volume_info {
	uint32_t volume;	       /* [0] */
	uint32_t block_size;	       /* [4] bytes, a power of two >= 512 */
	uint64_t nblocks;	       /* [8] capacity in blocks */
	uint32_t max_transfer_blocks;  /* [16] largest READ/WRITE */
	uint32_t flags;		       /* [20] WF_VOL_F_* */
	char name[WF_VOLUME_NAME_MAX]; /* [24] NUL-terminated */
				       /* [56] reserved, zero */
};
#define WF_VOLUME_INFO_SIZE 64
#define WF_VOL_F_READ_ONLY  0x1 /* this host may only read */

/* LIST_VOLUMES' data: a count, then that many volume ids (4 bytes each). */
#define WF_VOLUME_LIST_HDR 8 /* uint32_t count, uint32_t reserved */

/* Encode @c into the first WF_CMD_SIZE bytes of @buf. */
void wf_cmd_encode(const struct wf_cmd *c, void *buf);

/*
 * Decode and validate a capsule of @len bytes: the command and, when
 * inline_len > 0, its in-capsule data (which follows at buf + WF_CMD_SIZE).
 * Returns WF_SC_SUCCESS, or the status for the first problem found.
 * @out->cid is filled whenever @len covers it, so an error can be answered.
 */
enum wf_status wf_cmd_decode(const void *buf, size_t len, uint32_t max_inline, struct wf_cmd *out);

/* Encode @c into WF_CPL_SIZE bytes at @buf. */
void wf_cpl_encode(const struct wf_cpl *c, void *buf);

/* Decode a completion of @len bytes; WF_SC_MALFORMED if it is not one. */
enum wf_status wf_cpl_decode(const void *buf, size_t len, struct wf_cpl *out);

/*
 * The immediate data that completes READ @cid with its data in the capsule
 * or written before it: bits 0-15 the cid, bits 16-31 the status, always
 * WF_SC_SUCCESS.
 */
uint32_t wf_cpl_imm(uint16_t cid);

/* The completion an immediate stands for; WF_SC_MALFORMED if it is not one. */
enum wf_status wf_cpl_imm_decode(uint32_t imm, struct wf_cpl *out);

/* Encode CONNECT's data into WF_CONNECT_DATA_SIZE bytes at @buf. */
void wf_connect_data_encode(const struct wf_connect_data *d, void *buf);

/* Decode CONNECT's data; WF_SC_INVALID_DATA if malformed. */
enum wf_status wf_connect_data_decode(const void *buf, size_t len, struct wf_connect_data *out);

/* Encode the answer to AUTH_CHALLENGE into WF_AUTH_ANSWER_SIZE bytes at @buf. */
void wf_auth_answer_encode(const struct wf_auth_answer *a, void *buf);

/* Decode an AUTH_CHALLENGE answer; WF_SC_INVALID_DATA if malformed. */
enum wf_status wf_auth_answer_decode(const void *buf, size_t len, struct wf_auth_answer *out);

/* Encode IDENTIFY's data into WF_VOLUME_INFO_SIZE bytes at @buf. */
void wf_volume_info_encode(const struct wf_volume_info *v, void *buf);

/* Decode IDENTIFY's data; WF_SC_INVALID_DATA if malformed. */
enum wf_status wf_volume_info_decode(const void *buf, size_t len, struct wf_volume_info *out);

/* Text for a status code, for logs and error messages. */
const char *wf_status_str(enum wf_status s);

/* Name of an opcode, or "unknown". */
const char *wf_opcode_str(uint8_t opcode);

#endif /* WEFT_WIRE_H */
