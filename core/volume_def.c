/* SPDX-License-Identifier: MIT */
/*
 * Label encoding, little-endian:
 *   "WFLB" | version u32 | id[16] | ndefs u32 | defs...
 *   def: name[32] | kind u32 | n u32 | chunk u64 | members: (dev[16] phys u64 len u64) * n
 * The superblock's CRC already covers the bytes; this layer checks structure.
 */
#include "core/volume_def.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/superblock.h"

#define LABEL_MAGIC   0x424c4657u /* "WFLB" */
#define LABEL_VERSION 1u

struct cursor {
	uint8_t *p;
	uint32_t len, off;
	int err;
};

static void put(struct cursor *c, const void *src, uint32_t n)
{
	if (c->err || n > c->len - c->off) {
		c->err = -EMSGSIZE;
		return;
	}
	memcpy(c->p + c->off, src, n);
	c->off += n;
}

static void get(struct cursor *c, void *dst, uint32_t n)
{
	if (c->err || n > c->len - c->off) {
		c->err = -EBADMSG;
		return;
	}
	memcpy(dst, c->p + c->off, n);
	c->off += n;
}

static void put_u(struct cursor *c, uint64_t v, uint32_t bytes)
{
	uint8_t b[8];

	for (uint32_t i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(c, b, bytes);
}

static uint64_t get_u(struct cursor *c, uint32_t bytes)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	get(c, b, bytes);
	for (uint32_t i = bytes; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

static bool def_valid(const struct wf_volume_def *d)
{
	return (unsigned)d->kind < WF_VOLUME_KIND_COUNT && d->n &&
	       d->n <= WF_VOLUME_DEF_MAX_MEMBERS && memchr(d->name, 0, sizeof(d->name)) &&
	       d->name[0];
}

int wf_label_encode(const struct wf_device_label *label, struct wf_sb *sb)
{
	struct cursor c = {.p = sb->payload, .len = WF_SB_PAYLOAD_MAX};

	if (label->ndefs > WF_LABEL_MAX_DEFS)
		return -EINVAL;
	put_u(&c, LABEL_MAGIC, 4);
	put_u(&c, LABEL_VERSION, 4);
	put(&c, label->id, sizeof(label->id));
	put_u(&c, label->ndefs, 4);
	for (uint32_t i = 0; i < label->ndefs; i++) {
		const struct wf_volume_def *d = &label->defs[i];

		if (!def_valid(d))
			return -EINVAL;
		put(&c, d->name, sizeof(d->name));
		put_u(&c, d->kind, 4);
		put_u(&c, d->n, 4);
		put_u(&c, d->chunk, 8);
		for (uint32_t k = 0; k < d->n; k++) {
			put(&c, d->members[k].dev, sizeof(d->members[k].dev));
			put_u(&c, d->members[k].phys, 8);
			put_u(&c, d->members[k].len, 8);
		}
	}
	sb->len = c.off;
	return c.err;
}

static int def_decode(struct cursor *c, struct wf_volume_def *d)
{
	get(c, d->name, sizeof(d->name));
	d->kind = (enum wf_volume_kind)get_u(c, 4);
	d->n = (uint32_t)get_u(c, 4);
	d->chunk = get_u(c, 8);
	if (c->err || !def_valid(d))
		return -EBADMSG;
	for (uint32_t k = 0; k < d->n; k++) {
		get(c, d->members[k].dev, sizeof(d->members[k].dev));
		d->members[k].phys = get_u(c, 8);
		d->members[k].len = get_u(c, 8);
	}
	return c->err;
}

int wf_label_decode(const struct wf_sb *sb, struct wf_device_label *label)
{
	struct cursor c = {.p = (uint8_t *)sb->payload, .len = sb->len};

	if (get_u(&c, 4) != LABEL_MAGIC || get_u(&c, 4) != LABEL_VERSION)
		return -EBADMSG;
	get(&c, label->id, sizeof(label->id));
	label->ndefs = (uint32_t)get_u(&c, 4);
	if (c.err || label->ndefs > WF_LABEL_MAX_DEFS)
		return -EBADMSG;
	for (uint32_t i = 0; i < label->ndefs; i++)
		if (def_decode(&c, &label->defs[i]))
			return -EBADMSG;
	return c.off == sb->len ? 0 : -EBADMSG;
}

int wf_label_write(struct wf_bdev *dev, const struct wf_device_label *label)
{
	struct wf_sb *sb = malloc(sizeof(*sb));
	int rc;

	if (!sb)
		return -ENOMEM;
	rc = wf_sb_read(dev, sb);
	if (rc == -ENOENT) {
		sb->generation = 0;
		rc = 0;
	}
	if (!rc)
		rc = wf_label_encode(label, sb);
	if (!rc)
		rc = wf_sb_write(dev, sb);
	free(sb);
	return rc;
}
