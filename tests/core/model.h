/* SPDX-License-Identifier: MIT */
/*
 * A device checked against an in-memory reference copy under random I/O:
 * batches of non-overlapping requests in flight together, every read
 * compared with what the model says the bytes must be.
 */
#ifndef WF_TESTS_CORE_MODEL_H
#define WF_TESTS_CORE_MODEL_H

#include <stdint.h>

struct wf_bdev;

struct wf_model {
	struct wf_bdev *bdev;
	uint8_t *ref;
	uint64_t seed;
	uint64_t writes; /* acknowledged writes, for the report */
};

/* Start a model of @bdev from its current contents. */
void wf_model_init(struct wf_model *m, struct wf_bdev *bdev, uint64_t seed);

/* Run @batches batches of random reads, writes, write-zeroes and flushes; exits on a mismatch. */
void wf_model_run(struct wf_model *m, unsigned batches);

/* Read the whole device and compare it with the model. */
void wf_model_verify(const struct wf_model *m);

/* Free the model; the device stays open. */
void wf_model_fini(struct wf_model *m);

#endif /* WF_TESTS_CORE_MODEL_H */
