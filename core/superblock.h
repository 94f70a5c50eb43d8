/* SPDX-License-Identifier: MIT */
/*
 * Superblocks: a device's own record of what it is part of, so a restarted
 * target finds its volumes. Two copies live in the first two 4 KiB slots of
 * the device; generation g goes to slot g % 2, so a write never touches the
 * newest good copy and a torn write leaves the other one intact. Each copy
 * carries a magic, a version, its generation and a CRC-32C over the slot.
 */
#ifndef WF_CORE_SUPERBLOCK_H
#define WF_CORE_SUPERBLOCK_H

#include <stdint.h>

struct wf_bdev;

#define WF_SB_SLOT_SIZE	  4096u
#define WF_SB_RESERVED	  (2 * WF_SB_SLOT_SIZE) /* device bytes volumes must not map */
#define WF_SB_HEADER_SIZE 32u
#define WF_SB_PAYLOAD_MAX (WF_SB_SLOT_SIZE - WF_SB_HEADER_SIZE)
#define WF_SB_VERSION	  1u

struct wf_sb {
	uint64_t generation; /* of the copy read, or of the last copy written */
	uint32_t len;	     /* payload bytes */
	uint8_t payload[WF_SB_PAYLOAD_MAX];
};

/*
 * Read both copies and return the good one with the highest generation.
 * A bad copy is logged with its slot and what is wrong with it. -ENOENT: no
 * superblock was ever written; -EBADMSG: copies exist and none is good.
 */
int wf_sb_read(struct wf_bdev *dev, struct wf_sb *sb);

/*
 * Write @sb's payload as generation @sb->generation + 1 to its slot, then
 * flush; on success @sb->generation is the new generation. Start a fresh
 * device with generation 0. -EMSGSIZE if the payload does not fit.
 */
int wf_sb_write(struct wf_bdev *dev, struct wf_sb *sb);

#endif /* WF_CORE_SUPERBLOCK_H */
