/* SPDX-License-Identifier: MIT */
#include "core/volume_assemble.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bdev.h"
#include "core/log.h"
#include "core/superblock.h"
#include "core/volume.h"
#include "core/volume_def.h"

/* Labels read from the devices, indexed like them; a device without a usable label has none. */
struct found {
	struct wf_device_label *labels;
	bool *have;
	uint32_t ndev;
};

struct builder_ctx {
	struct wf_volume_set *set;
	const struct wf_volume_def *def;
	struct wf_bdev *srcs[WF_VOLUME_DEF_MAX_MEMBERS];
	struct wf_volume_conf conf;
};

static int set_add(struct wf_volume_set *set, struct wf_bdev *bdev)
{
	if (set->nall == WF_VOLUME_SET_MAX) {
		wf_bdev_close(bdev); /* just created: nothing in flight, cannot be busy */
		return -ENOSPC;
	}
	set->all[set->nall++] = bdev;
	return 0;
}

static int build_linear(struct builder_ctx *b, struct wf_bdev **out)
{
	struct wf_volume_extent ext[WF_VOLUME_DEF_MAX_MEMBERS];

	for (uint32_t k = 0; k < b->def->n; k++)
		ext[k] = (struct wf_volume_extent){.src = b->srcs[k],
						   .phys = b->def->members[k].phys,
						   .len = b->def->members[k].len};
	return wf_volume_linear_create(out, &b->conf, ext, b->def->n);
}

/* Stripes and mirrors take whole devices: each member becomes a carved volume first. */
static int carve_members(struct builder_ctx *b, struct wf_bdev **carved)
{
	struct wf_volume_conf conf = b->conf;
	char name[WF_VOLUME_NAME_MAX + 16];
	int rc;

	conf.name = name;
	for (uint32_t k = 0; k < b->def->n; k++) {
		const struct wf_volume_member *m = &b->def->members[k];

		snprintf(name, sizeof(name), "%s.%u", b->def->name, k);
		rc = wf_volume_carve_create(&carved[k], &conf, b->srcs[k], m->phys, m->len);
		if (!rc)
			rc = set_add(b->set, carved[k]);
		if (rc)
			return rc;
	}
	return 0;
}

static int build_stripe(struct builder_ctx *b, struct wf_bdev **out)
{
	struct wf_bdev *carved[WF_VOLUME_DEF_MAX_MEMBERS];
	int rc = carve_members(b, carved);

	return rc ? rc : wf_volume_stripe_create(out, &b->conf, carved, b->def->n, b->def->chunk);
}

static int build_mirror(struct builder_ctx *b, struct wf_bdev **out)
{
	struct wf_bdev *carved[WF_VOLUME_DEF_MAX_MEMBERS];
	int rc = carve_members(b, carved);

	return rc ? rc : wf_volume_mirror_create(out, &b->conf, carved, b->def->n);
}

static int (*const builders[WF_VOLUME_KIND_COUNT])(struct builder_ctx *, struct wf_bdev **) = {
    [WF_VOLUME_LINEAR] = build_linear,
    [WF_VOLUME_STRIPE] = build_stripe,
    [WF_VOLUME_MIRROR] = build_mirror,
};

static bool def_equal(const struct wf_volume_def *a, const struct wf_volume_def *b)
{
	if (strcmp(a->name, b->name) || a->kind != b->kind || a->chunk != b->chunk || a->n != b->n)
		return false;
	for (uint32_t k = 0; k < a->n; k++)
		if (memcmp(a->members[k].dev, b->members[k].dev, 16) ||
		    a->members[k].phys != b->members[k].phys ||
		    a->members[k].len != b->members[k].len)
			return false;
	return true;
}

/* Find each member's device; log the first that is missing or would overwrite a superblock. */
static int resolve_members(const struct found *f, struct wf_bdev *const *devs,
			   struct builder_ctx *b, struct wf_log *log)
{
	for (uint32_t k = 0; k < b->def->n; k++) {
		const struct wf_volume_member *m = &b->def->members[k];

		b->srcs[k] = NULL;
		for (uint32_t i = 0; i < f->ndev && !b->srcs[k]; i++)
			if (f->have[i] && !memcmp(f->labels[i].id, m->dev, 16))
				b->srcs[k] = devs[i];
		if (!b->srcs[k]) {
			wf_log_err(log, "volume %s: member %u's device is missing; not assembled",
				   b->def->name, k);
			return -ENODEV;
		}
		if (m->phys < WF_SB_RESERVED) {
			wf_log_err(log, "volume %s: member %u on %s overlaps its superblocks",
				   b->def->name, k, b->srcs[k]->name);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Whether to assemble definition @idx of device @dev: only the first label
 * that names the volume decides, and only if every other label naming it
 * agrees; a conflict keeps the volume down rather than guess.
 */
static bool should_assemble(const struct found *f, uint32_t dev, uint32_t idx, struct wf_log *log)
{
	const struct wf_volume_def *def = &f->labels[dev].defs[idx];

	for (uint32_t i = 0; i < f->ndev; i++)
		for (uint32_t j = 0; f->have[i] && j < f->labels[i].ndefs; j++) {
			const struct wf_volume_def *o = &f->labels[i].defs[j];

			if ((i == dev && j == idx) || strcmp(o->name, def->name))
				continue;
			if (i < dev || (i == dev && j < idx))
				return false;
			if (!def_equal(o, def)) {
				wf_log_err(log, "volume %s: devices disagree on its definition",
					   def->name);
				return false;
			}
		}
	return true;
}

static int assemble_one(struct wf_volume_set *set, const struct found *f,
			struct wf_bdev *const *devs, const struct wf_volume_def *def,
			uint32_t max_subreqs, struct wf_log *log)
{
	struct builder_ctx b = {.set = set, .def = def};
	struct wf_bdev *vol;
	int rc;

	b.conf = (struct wf_volume_conf){.name = def->name, .log = log, .max_subreqs = max_subreqs};
	rc = resolve_members(f, devs, &b, log);
	if (rc)
		return rc;
	rc = builders[def->kind](&b, &vol);
	if (!rc)
		rc = set_add(set, vol);
	if (rc) {
		wf_log_err(log, "volume %s: cannot be assembled: %s", def->name, strerror(-rc));
		return rc;
	}
	set->vols[set->nvols++] = vol;
	return 0;
}

static int read_labels(struct found *f, struct wf_bdev *const *devs, struct wf_log *log)
{
	struct wf_sb *sb = malloc(sizeof(*sb));

	if (!sb)
		return -ENOMEM;
	for (uint32_t i = 0; i < f->ndev; i++) {
		int rc = wf_sb_read(devs[i], sb);

		if (!rc)
			rc = wf_label_decode(sb, &f->labels[i]);
		f->have[i] = !rc;
		if (rc && rc != -ENOENT)
			wf_log_err(log, "%s: unusable label (%s); its volumes stay down",
				   devs[i]->name, strerror(-rc));
	}
	free(sb);
	return 0;
}

int wf_volume_assemble(struct wf_volume_set *set, struct wf_bdev *const *devs, uint32_t ndev,
		       uint32_t max_subreqs, struct wf_log *log)
{
	struct found f = {.ndev = ndev};
	int rc = -ENOMEM;

	memset(set, 0, sizeof(*set));
	f.labels = calloc(ndev ? ndev : 1, sizeof(*f.labels));
	f.have = calloc(ndev ? ndev : 1, sizeof(*f.have));
	if (!f.labels || !f.have)
		goto out;
	rc = read_labels(&f, devs, log);
	for (uint32_t i = 0; !rc && i < ndev; i++)
		for (uint32_t j = 0; f.have[i] && j < f.labels[i].ndefs; j++)
			if (should_assemble(&f, i, j, log) &&
			    assemble_one(set, &f, devs, &f.labels[i].defs[j], max_subreqs, log) ==
				-ENOSPC)
				rc = -ENOSPC;
	if (rc)
		wf_volume_set_close(set); /* nothing was submitted yet: cannot be busy */
out:
	free(f.labels);
	free(f.have);
	return rc ? rc : (int)set->nvols;
}

struct wf_bdev *wf_volume_set_find(const struct wf_volume_set *set, const char *name)
{
	for (uint32_t i = 0; i < set->nvols; i++)
		if (!strcmp(set->vols[i]->name, name))
			return set->vols[i];
	return NULL;
}

int wf_volume_set_close(struct wf_volume_set *set)
{
	while (set->nall) {
		int rc = wf_bdev_close(set->all[set->nall - 1]);

		if (rc)
			return rc;
		set->nall--;
	}
	set->nvols = 0;
	return 0;
}
