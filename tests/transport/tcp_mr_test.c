// SPDX-License-Identifier: MIT
/*
 * The TCP transport's registration table, which every emulated READ and
 * WRITE is checked against: keys are non-zero and unique, and a lookup
 * grants exactly the registered range and access, with no wrap-around.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/check.h"
#include "transport/tcp_priv.h"

#define NREGS 20000

static int cmp_key(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static const struct wf_mr *find(struct wf_tcp_transport *t, uint32_t key, uint64_t addr,
				uint64_t len, unsigned access)
{
	const struct wf_mr *m;

	wf_tcp_mr_rdlock(t);
	m = wf_tcp_mr_find(t, key, addr, len, access);
	wf_tcp_mr_unlock(t);
	return m;
}

/* Many registrations at once: every key non-zero, distinct, and found again. */
static void keys_unique(struct wf_transport *tr)
{
	struct wf_tcp_transport *t = wf_container_of(tr, struct wf_tcp_transport, base);
	static const unsigned rw = WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE;
	struct wf_mr **mrs = calloc(NREGS, sizeof(*mrs));
	uint32_t *keys = calloc(NREGS, sizeof(*keys)), *sorted = calloc(NREGS, sizeof(*keys));
	char *mem = malloc(NREGS);

	WF_CHECK(mrs && keys && sorted && mem);
	for (int i = 0; i < NREGS; i++) {
		WF_CHECK_EQ(wf_mr_reg(tr, mem + i, 1, rw, &mrs[i]), 0);
		keys[i] = mrs[i]->key;
		WF_CHECK(keys[i] != 0);
	}
	for (int i = 0; i < NREGS; i++)
		WF_CHECK(find(t, keys[i], (uintptr_t)(mem + i), 1, rw) == mrs[i]);
	memcpy(sorted, keys, NREGS * sizeof(*keys));
	qsort(sorted, NREGS, sizeof(*sorted), cmp_key);
	for (int i = 1; i < NREGS; i++)
		WF_CHECK(sorted[i] != sorted[i - 1]);
	/* Deregistered keys are gone, the others stay. */
	for (int i = 0; i < NREGS; i += 2)
		wf_mr_dereg(mrs[i]);
	for (int i = 0; i < NREGS; i++)
		WF_CHECK((find(t, keys[i], (uintptr_t)(mem + i), 1, rw) != NULL) == (i % 2));
	for (int i = 1; i < NREGS; i += 2)
		wf_mr_dereg(mrs[i]);
	free(mem);
	free(sorted);
	free(keys);
	free(mrs);
}

/* Exactly the registered bytes and rights, whatever the arithmetic tries. */
static void bounds_and_access(struct wf_transport *tr)
{
	struct wf_tcp_transport *t = wf_container_of(tr, struct wf_tcp_transport, base);
	char *buf = malloc(4096);
	uint64_t a = (uintptr_t)buf;
	struct wf_mr *ro, *wo;
	uint32_t rk, wk;

	WF_CHECK(buf);

	WF_CHECK_EQ(wf_mr_reg(tr, buf, 1024, WF_ACCESS_REMOTE_READ, &ro), 0);
	WF_CHECK_EQ(wf_mr_reg(tr, buf + 1024, 1024, WF_ACCESS_REMOTE_WRITE, &wo), 0);
	WF_CHECK(find(t, ro->key, a, 1024, WF_ACCESS_REMOTE_READ) == ro);
	WF_CHECK(find(t, ro->key, a + 1023, 1, WF_ACCESS_REMOTE_READ) == ro);
	WF_CHECK(find(t, ro->key, a + 1024, 0, WF_ACCESS_REMOTE_READ) == ro);
	WF_CHECK(!find(t, ro->key, a, 1025, WF_ACCESS_REMOTE_READ));
	WF_CHECK(!find(t, ro->key, a - 1, 1, WF_ACCESS_REMOTE_READ));
	WF_CHECK(!find(t, ro->key, a + 1024, 1, WF_ACCESS_REMOTE_READ));
	WF_CHECK(!find(t, ro->key, a + 8, UINT64_MAX - 4, WF_ACCESS_REMOTE_READ));
	WF_CHECK(!find(t, ro->key, UINT64_MAX, 2, WF_ACCESS_REMOTE_READ));
	WF_CHECK(!find(t, ro->key, a, 8, WF_ACCESS_REMOTE_WRITE));
	WF_CHECK(!find(t, wo->key, a + 1024, 8, WF_ACCESS_REMOTE_READ));
	WF_CHECK(find(t, wo->key, a + 1024, 8, WF_ACCESS_REMOTE_WRITE) == wo);
	/* One key never reaches the neighbour's bytes. */
	WF_CHECK(!find(t, wo->key, a + 1016, 16, WF_ACCESS_REMOTE_WRITE));
	WF_CHECK(!find(t, 0, a, 1, WF_ACCESS_REMOTE_READ));
	rk = ro->key;
	wk = wo->key;
	wf_mr_dereg(ro);
	wf_mr_dereg(wo);
	WF_CHECK(!find(t, rk, a, 1, WF_ACCESS_REMOTE_READ));
	WF_CHECK(!find(t, wk, a + 1024, 1, WF_ACCESS_REMOTE_WRITE));
	free(buf);
}

int main(void)
{
	const struct wf_transport_ops *ops = wf_transport_ops_find("tcp");
	struct wf_transport_opts o;
	struct wf_transport *tr;

	WF_CHECK(ops);
	wf_transport_opts_default(&o);
	WF_CHECK_EQ(wf_transport_create(ops, &o, &tr), 0);
	WF_CHECK_EQ(wf_mr_reg(tr, NULL, 1, 0, &(struct wf_mr *){NULL}), -EINVAL);
	keys_unique(tr);
	bounds_and_access(tr);
	wf_transport_destroy(tr);
	printf("tcp mr: %d unique keys, bounds and access exact\n", NREGS);
	return 0;
}
