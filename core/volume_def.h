/* SPDX-License-Identifier: MIT */
/*
 * Volume definitions as they live in device superblocks. Every member
 * device of a volume carries the whole definition, so whichever device is
 * found first tells what else must be found before the volume can come up.
 * Members name their device by the 16-byte id in that device's own label.
 */
#ifndef WF_CORE_VOLUME_DEF_H
#define WF_CORE_VOLUME_DEF_H

#include <stdint.h>

struct wf_bdev;
struct wf_sb;

#define WF_VOLUME_NAME_MAX	  32u /* including the NUL */
#define WF_VOLUME_DEF_MAX_MEMBERS 16u
#define WF_LABEL_MAX_DEFS	  4u

enum wf_volume_kind {
	WF_VOLUME_LINEAR = 0, /* members laid end to end */
	WF_VOLUME_STRIPE,     /* members striped in chunk bytes */
	WF_VOLUME_MIRROR,     /* members hold copies */
	WF_VOLUME_KIND_COUNT,
};

struct wf_volume_member {
	uint8_t dev[16]; /* the id in the member device's label */
	uint64_t phys, len;
};

struct wf_volume_def {
	char name[WF_VOLUME_NAME_MAX];
	enum wf_volume_kind kind;
	uint64_t chunk; /* stripe only */
	uint32_t n;
	struct wf_volume_member members[WF_VOLUME_DEF_MAX_MEMBERS];
};

/* What a device's superblock says: who it is and which volumes it is part of. */
struct wf_device_label {
	uint8_t id[16];
	uint32_t ndefs;
	struct wf_volume_def defs[WF_LABEL_MAX_DEFS];
};

/* Serialise @label into @sb's payload; -EMSGSIZE or -EINVAL for a malformed label. */
int wf_label_encode(const struct wf_device_label *label, struct wf_sb *sb);

/* Parse @sb's payload; -EBADMSG for anything malformed, never a partial label. */
int wf_label_decode(const struct wf_sb *sb, struct wf_device_label *label);

/*
 * Write @label as @dev's next superblock generation (the first one on a
 * fresh device); the label's own id is how volumes name @dev.
 */
int wf_label_write(struct wf_bdev *dev, const struct wf_device_label *label);

#endif /* WF_CORE_VOLUME_DEF_H */
