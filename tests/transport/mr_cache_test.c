// SPDX-License-Identifier: MIT
/* The registration cache over a real transport: hits, misses, eviction, invalidation. */
#include "transport/mr_cache.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define PAGE 4096

static void covers(struct wf_mr *mr, void *addr, size_t len)
{
	WF_CHECK(mr->key != 0 || !(mr->access & (WF_ACCESS_REMOTE_READ | WF_ACCESS_REMOTE_WRITE)));
	WF_CHECK((uintptr_t)mr->addr <= (uintptr_t)addr);
	WF_CHECK((uintptr_t)addr + len <= (uintptr_t)mr->addr + mr->len);
}

static void test_hits_and_misses(struct wf_transport *t, uint8_t *mem)
{
	struct wf_mr_cache_stats st;
	struct wf_mr_cache *c;
	struct wf_mr *a, *b, *d;

	WF_CHECK_EQ(wf_mr_cache_create(t, WF_ACCESS_REMOTE_READ, 1 << 20, &c), 0);
	WF_CHECK_EQ(wf_mr_cache_get(c, mem + 100, 1000, &a), 0);
	covers(a, mem + 100, 1000);
	/* Anything inside the page-rounded registration is a hit on the same one. */
	WF_CHECK_EQ(wf_mr_cache_get(c, mem + 2000, 2000, &b), 0);
	WF_CHECK(a == b);
	/* Reaching past it is a miss with a registration that covers the new range. */
	WF_CHECK_EQ(wf_mr_cache_get(c, mem + 3000, 3 * PAGE, &d), 0);
	WF_CHECK(d != a);
	covers(d, mem + 3000, 3 * PAGE);
	wf_mr_cache_stats(c, &st);
	WF_CHECK_EQ(st.hits, 1);
	WF_CHECK_EQ(st.misses, 2);
	WF_CHECK_EQ(st.entries, 2);
	WF_CHECK_EQ(wf_mr_cache_get(c, NULL, 10, &d), -EINVAL);
	WF_CHECK_EQ(wf_mr_cache_get(c, mem, 0, &d), -EINVAL);
	wf_mr_cache_put(c, a);
	wf_mr_cache_put(c, b);
	wf_mr_cache_put(c, d);
	wf_mr_cache_destroy(c);
}

static void test_eviction_keeps_held(struct wf_transport *t, uint8_t *mem)
{
	struct wf_mr_cache_stats st;
	struct wf_mr_cache *c;
	struct wf_mr *held, *mr;

	/* Room for two idle pages only. */
	WF_CHECK_EQ(wf_mr_cache_create(t, 0, 2 * PAGE, &c), 0);
	WF_CHECK_EQ(wf_mr_cache_get(c, mem, PAGE, &held), 0);
	for (int i = 1; i <= 8; i++) {
		WF_CHECK_EQ(wf_mr_cache_get(c, mem + 2 * i * PAGE, PAGE, &mr), 0);
		wf_mr_cache_put(c, mr);
	}
	wf_mr_cache_stats(c, &st);
	WF_CHECK(st.evictions >= 6);
	WF_CHECK(st.entries <= 3);
	/* The held one survived every eviction and is still found. */
	WF_CHECK_EQ(wf_mr_cache_get(c, mem + 10, 10, &mr), 0);
	WF_CHECK(mr == held);
	wf_mr_cache_put(c, mr);
	wf_mr_cache_put(c, held);
	wf_mr_cache_destroy(c);
}

static void test_invalidate(struct wf_transport *t, uint8_t *mem)
{
	struct wf_mr_cache_stats st;
	struct wf_mr_cache *c;
	struct wf_mr *a, *b;

	WF_CHECK_EQ(wf_mr_cache_create(t, 0, 1 << 20, &c), 0);
	WF_CHECK_EQ(wf_mr_cache_get(c, mem, PAGE, &a), 0);
	wf_mr_cache_invalidate(c, mem, PAGE);
	/* Invalidated while held: not handed out again, but not pulled from under a. */
	WF_CHECK_EQ(wf_mr_cache_get(c, mem, PAGE, &b), 0);
	WF_CHECK(a != b);
	covers(a, mem, PAGE);
	wf_mr_cache_put(c, a);
	wf_mr_cache_stats(c, &st);
	WF_CHECK_EQ(st.entries, 1);
	wf_mr_cache_put(c, b);
	wf_mr_cache_invalidate(c, mem + PAGE - 1, 2);
	wf_mr_cache_stats(c, &st);
	WF_CHECK_EQ(st.entries, 0);
	WF_CHECK_EQ(st.bytes, 0);
	wf_mr_cache_destroy(c);
}

int main(int argc, char **argv)
{
	const struct wf_transport_ops *ops = wf_transport_ops_find(argc > 1 ? argv[1] : "tcp");
	struct wf_transport_opts o;
	struct wf_transport *t;
	uint8_t *mem;

	WF_CHECK(ops != NULL);
	wf_transport_opts_default(&o);
	WF_CHECK_EQ(wf_transport_create(ops, &o, &t), 0);
	WF_CHECK_EQ(posix_memalign((void **)&mem, PAGE, 32 * PAGE), 0);
	test_hits_and_misses(t, mem);
	test_eviction_keeps_held(t, mem);
	test_invalidate(t, mem);
	free(mem);
	wf_transport_destroy(t);
	return 0;
}
