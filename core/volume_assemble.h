/* SPDX-License-Identifier: MIT */
/*
 * Bringing volumes back from the labels on their devices, as a restarted
 * target does. What assembly creates lives in a set that closes it all.
 */
#ifndef WF_CORE_VOLUME_ASSEMBLE_H
#define WF_CORE_VOLUME_ASSEMBLE_H

#include <stdint.h>

struct wf_bdev;
struct wf_log;

#define WF_VOLUME_SET_MAX 256u

struct wf_volume_set {
	struct wf_bdev *all[WF_VOLUME_SET_MAX]; /* in creation order: members before volumes */
	uint32_t nall;
	struct wf_bdev *vols[WF_VOLUME_SET_MAX]; /* the named volumes the labels define */
	uint32_t nvols;
};

/*
 * Read the labels on @devs and bring up every volume whose member devices
 * are all among them. A volume with a member missing, a member overlapping a
 * superblock, or conflicting definitions is logged and left down; a device
 * with corrupt metadata is logged and its volumes stay down. Returns the
 * number of volumes brought up, or a negative errno (the set is then empty).
 */
int wf_volume_assemble(struct wf_volume_set *set, struct wf_bdev *const *devs, uint32_t ndev,
		       uint32_t max_subreqs, struct wf_log *log);

/* The assembled volume called @name, or NULL. */
struct wf_bdev *wf_volume_set_find(const struct wf_volume_set *set, const char *name);

/*
 * Close everything in @set, volumes before their members; the devices stay
 * open. -EBUSY, with the rest left in @set, if a volume has I/O in flight.
 */
int wf_volume_set_close(struct wf_volume_set *set);

#endif /* WF_CORE_VOLUME_ASSEMBLE_H */
