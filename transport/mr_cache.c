// SPDX-License-Identifier: MIT
/*
 * The registration cache: entries sorted by start address for binary search,
 * reference counts so an entry in use is never deregistered, and LRU eviction
 * of unused entries beyond the byte budget.
 */
#include "transport/mr_cache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
	uintptr_t start, end;
	struct wf_mr *mr;
	unsigned refs;
	bool stale;	    /* invalidated while in use: dropped at the last put */
	unsigned long used; /* LRU clock */
};

struct wf_mr_cache {
	struct wf_transport *t;
	unsigned access;
	size_t max_bytes;
	uintptr_t page;
	struct entry *e; /* sorted by start */
	size_t n, cap;
	size_t idle_bytes; /* registered bytes no one holds */
	unsigned long clock;
	struct wf_mr_cache_stats st;
};

int wf_mr_cache_create(struct wf_transport *t, unsigned access, size_t max_bytes,
		       struct wf_mr_cache **out)
{
	struct wf_mr_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->t = t;
	c->access = access;
	c->max_bytes = max_bytes;
	c->page = (uintptr_t)sysconf(_SC_PAGESIZE);
	*out = c;
	return 0;
}

static void remove_at(struct wf_mr_cache *c, size_t i)
{
	struct entry *e = &c->e[i];

	if (!e->refs)
		c->idle_bytes -= e->end - e->start;
	c->st.bytes -= e->end - e->start;
	wf_mr_dereg(e->mr);
	memmove(e, e + 1, (c->n - i - 1) * sizeof(*e));
	c->n--;
}

void wf_mr_cache_destroy(struct wf_mr_cache *c)
{
	if (!c)
		return;
	while (c->n)
		remove_at(c, c->n - 1);
	free(c->e);
	free(c);
}

/* Index of the first entry whose start is greater than @addr. */
static size_t upper_bound(const struct wf_mr_cache *c, uintptr_t addr)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->e[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct entry *lookup(struct wf_mr_cache *c, uintptr_t start, uintptr_t end)
{
	/* Entries may overlap after a miss on a neighbouring range: walk back a little. */
	for (size_t i = upper_bound(c, start); i-- > 0;) {
		struct entry *e = &c->e[i];

		if (!e->stale && e->end >= end)
			return e;
		if (start - e->start > ((size_t)1 << 30))
			break;
	}
	return NULL;
}

static void evict(struct wf_mr_cache *c)
{
	while (c->idle_bytes > c->max_bytes) {
		size_t victim = c->n;

		for (size_t i = 0; i < c->n; i++)
			if (!c->e[i].refs && (victim == c->n || c->e[i].used < c->e[victim].used))
				victim = i;
		if (victim == c->n)
			return;
		remove_at(c, victim);
		c->st.evictions++;
	}
}

static int insert(struct wf_mr_cache *c, uintptr_t start, uintptr_t end, struct entry **out)
{
	struct wf_mr *mr;
	size_t i;
	int ret;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct entry *grown = realloc(c->e, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		c->e = grown;
		c->cap = cap;
	}
	ret = wf_mr_reg(c->t, (void *)start, end - start, c->access, &mr);
	if (ret)
		return ret;
	i = upper_bound(c, start);
	memmove(&c->e[i + 1], &c->e[i], (c->n - i) * sizeof(*c->e));
	c->e[i] = (struct entry){.start = start, .end = end, .mr = mr};
	c->n++;
	c->st.bytes += end - start;
	*out = &c->e[i];
	return 0;
}

int wf_mr_cache_get(struct wf_mr_cache *c, void *addr, size_t len, struct wf_mr **out)
{
	uintptr_t start = (uintptr_t)addr & ~(c->page - 1);
	uintptr_t end = ((uintptr_t)addr + len + c->page - 1) & ~(c->page - 1);
	struct entry *e;
	int ret;

	if (!addr || len == 0 || (uintptr_t)addr + len < (uintptr_t)addr)
		return -EINVAL;
	e = lookup(c, start, end);
	if (e) {
		c->st.hits++;
	} else {
		ret = insert(c, start, end, &e);
		if (ret)
			return ret;
		c->st.misses++;
		c->idle_bytes += end - start;
	}
	if (!e->refs++)
		c->idle_bytes -= e->end - e->start;
	e->used = ++c->clock;
	*out = e->mr;
	return 0;
}

static size_t find(struct wf_mr_cache *c, struct wf_mr *mr)
{
	for (size_t i = upper_bound(c, (uintptr_t)mr->addr); i-- > 0;)
		if (c->e[i].mr == mr)
			return i;
	return c->n;
}

void wf_mr_cache_put(struct wf_mr_cache *c, struct wf_mr *mr)
{
	size_t i = find(c, mr);
	struct entry *e;

	if (i == c->n)
		return;
	e = &c->e[i];
	if (--e->refs)
		return;
	c->idle_bytes += e->end - e->start;
	if (e->stale)
		remove_at(c, i);
	else
		evict(c);
}

void wf_mr_cache_invalidate(struct wf_mr_cache *c, void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr, end = start + len;

	for (size_t i = c->n; i-- > 0;) {
		struct entry *e = &c->e[i];

		if (e->start >= end || e->end <= start)
			continue;
		if (e->refs)
			e->stale = true;
		else
			remove_at(c, i);
	}
}

void wf_mr_cache_stats(const struct wf_mr_cache *c, struct wf_mr_cache_stats *out)
{
	*out = c->st;
	out->entries = c->n;
}
