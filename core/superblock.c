/* SPDX-License-Identifier: MIT */
#include "core/superblock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/bdev.h"
#include "core/crc32c.h"
#include "core/log.h"

/* "WEFTSB\0\1" read as a little-endian u64. */
#define SB_MAGIC 0x0100425354464557ull

/* On-disk layout, little-endian, offsets in bytes. */
#define SB_OFF_MAGIC 0
#define SB_OFF_VER   8
#define SB_OFF_CRC   12
#define SB_OFF_GEN   16
#define SB_OFF_LEN   24

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* CRC over the whole slot with the CRC field taken as zero. */
static uint32_t slot_crc(const uint8_t *slot)
{
	static const uint8_t zero[4];
	uint32_t crc = wf_crc32c(0, slot, SB_OFF_CRC);

	crc = wf_crc32c(crc, zero, sizeof(zero));
	return wf_crc32c(crc, slot + SB_OFF_CRC + 4, WF_SB_SLOT_SIZE - SB_OFF_CRC - 4);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

/*
 * Decode slot @i into @sb: 0 if good, -ENOENT if never written, -EBADMSG
 * with the reason in @why.
 */
static int slot_decode(const uint8_t *slot, uint32_t i, struct wf_sb *sb, const char **why)
{
	uint32_t crc = (uint32_t)get_le(slot + SB_OFF_CRC, 4);

	if (all_zero(slot, WF_SB_SLOT_SIZE))
		return -ENOENT;
	*why = get_le(slot, 8) != SB_MAGIC		       ? "bad magic"
	       : get_le(slot + SB_OFF_VER, 4) != WF_SB_VERSION ? "unknown version"
	       : crc != slot_crc(slot) ? "checksum mismatch (torn or corrupt)"
	       : get_le(slot + SB_OFF_LEN, 4) > WF_SB_PAYLOAD_MAX ? "payload length out of range"
	       : get_le(slot + SB_OFF_GEN, 8) % 2 != i		  ? "generation in the wrong slot"
								  : NULL;
	if (*why)
		return -EBADMSG;
	sb->generation = get_le(slot + SB_OFF_GEN, 8);
	sb->len = (uint32_t)get_le(slot + SB_OFF_LEN, 4);
	memcpy(sb->payload, slot + WF_SB_HEADER_SIZE, sb->len);
	return 0;
}

static uint8_t *slots_alloc(void)
{
	void *p = NULL;

	return posix_memalign(&p, WF_SB_SLOT_SIZE, WF_SB_RESERVED) ? NULL : p;
}

/* Keep the newer of @cand and @best; @have says whether @best holds anything yet. */
static void keep_newest(struct wf_sb *best, bool *have, const struct wf_sb *cand)
{
	if (*have && best->generation >= cand->generation)
		return;
	best->generation = cand->generation;
	best->len = cand->len;
	memcpy(best->payload, cand->payload, cand->len);
	*have = true;
}

static int sb_pick(struct wf_bdev *dev, const uint8_t *slots, struct wf_sb *sb)
{
	struct wf_sb *cand = malloc(sizeof(*cand));
	int blank = 0, bad = 0;
	bool have = false;

	if (!cand)
		return -ENOMEM;
	for (uint32_t i = 0; i < 2; i++) {
		const char *why = NULL;
		int rc = slot_decode(slots + i * WF_SB_SLOT_SIZE, i, cand, &why);

		if (rc == -ENOENT)
			blank++;
		else if (rc)
			bad++;
		else
			keep_newest(sb, &have, cand);
		if (why)
			wf_log_err(dev->log, "%s: superblock copy %u (bytes %u..%u): %s", dev->name,
				   i, i * WF_SB_SLOT_SIZE, (i + 1) * WF_SB_SLOT_SIZE - 1, why);
	}
	free(cand);
	if (have)
		return 0;
	if (bad)
		wf_log_err(dev->log, "%s: no good superblock copy left", dev->name);
	return bad ? -EBADMSG : -ENOENT;
}

int wf_sb_read(struct wf_bdev *dev, struct wf_sb *sb)
{
	uint8_t *slots;
	int rc;

	if (dev->geo.size < WF_SB_RESERVED || WF_SB_SLOT_SIZE % dev->geo.block_size)
		return -EINVAL;
	slots = slots_alloc();
	if (!slots)
		return -ENOMEM;
	rc = wf_bdev_sync_io(dev, WF_BDEV_READ, 0, WF_SB_RESERVED, slots);
	if (!rc)
		rc = sb_pick(dev, slots, sb);
	else
		wf_log_err(dev->log, "%s: cannot read superblocks: %s", dev->name, strerror(-rc));
	free(slots);
	return rc;
}

int wf_sb_write(struct wf_bdev *dev, struct wf_sb *sb)
{
	uint64_t gen = sb->generation + 1;
	uint8_t *slot;
	int rc;

	if (sb->len > WF_SB_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (dev->geo.size < WF_SB_RESERVED || WF_SB_SLOT_SIZE % dev->geo.block_size)
		return -EINVAL;
	slot = slots_alloc();
	if (!slot)
		return -ENOMEM;
	memset(slot, 0, WF_SB_SLOT_SIZE);
	put_le(slot + SB_OFF_MAGIC, SB_MAGIC, 8);
	put_le(slot + SB_OFF_VER, WF_SB_VERSION, 4);
	put_le(slot + SB_OFF_GEN, gen, 8);
	put_le(slot + SB_OFF_LEN, sb->len, 4);
	memcpy(slot + WF_SB_HEADER_SIZE, sb->payload, sb->len);
	put_le(slot + SB_OFF_CRC, slot_crc(slot), 4);
	rc =
	    wf_bdev_sync_io(dev, WF_BDEV_WRITE, (gen % 2) * WF_SB_SLOT_SIZE, WF_SB_SLOT_SIZE, slot);
	if (!rc)
		rc = wf_bdev_sync_io(dev, WF_BDEV_FLUSH, 0, 0, NULL);
	free(slot);
	if (rc) {
		wf_log_err(dev->log, "%s: superblock generation %llu not written: %s", dev->name,
			   (unsigned long long)gen, strerror(-rc));
		return rc;
	}
	sb->generation = gen;
	return 0;
}
