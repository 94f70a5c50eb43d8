// SPDX-License-Identifier: MIT
/*
 * Grants on TCP: the emulation of verbs type-2 memory windows. A grant is
 * live in one endpoint's table only, so only that connection's peer can
 * name it; the peer's capsule that carries its key in the header's rkey
 * field ends it before the capsule is delivered. Keys are a table slot and
 * a generation: found in O(1) on every data PDU, and a stale key misses.
 * Everything here runs on the endpoint's poll-group thread.
 */
#include <errno.h>
#include <stdlib.h>

#include "transport/tcp_priv.h"

#define GRANT_SLOTS_MAX 0xffffu

struct wf_tcp_grant {
	struct wf_grant base;
	struct wf_tcp_ep *ep; /* live in this endpoint's table; NULL: not live */
	uint32_t slot;
	uint64_t addr;
	uint32_t len;
	unsigned access;
	uint32_t mr_key; /* the registration it lies in, re-checked at each use */
};

int wf_tcp_grant_create(struct wf_transport *t, struct wf_grant **out)
{
	struct wf_tcp_grant *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->base.transport = t;
	*out = &g->base;
	return 0;
}

static void grant_end(struct wf_tcp_grant *g)
{
	g->ep->gtab[g->slot] = NULL;
	g->ep->gfree_hint = g->slot;
	g->ep = NULL;
}

void wf_tcp_grant_destroy(struct wf_grant *base)
{
	struct wf_tcp_grant *g = wf_container_of(base, struct wf_tcp_grant, base);

	if (g->ep)
		grant_end(g);
	free(g);
}

/* A free slot in @ep's table, growing it the first times; -1 when full. */
static int free_slot(struct wf_tcp_ep *ep)
{
	struct wf_tcp_grant **bigger;
	uint32_t cap, first = ep->gcap;

	for (uint32_t i = 0; i < ep->gcap; i++) {
		uint32_t s = (ep->gfree_hint + i) % ep->gcap;

		if (!ep->gtab[s])
			return (int)s;
	}
	if (ep->gcap >= GRANT_SLOTS_MAX)
		return -1;
	cap = ep->gcap ? 2 * ep->gcap : 64;
	if (cap > GRANT_SLOTS_MAX)
		cap = GRANT_SLOTS_MAX;
	bigger = realloc(ep->gtab, cap * sizeof(*bigger));
	if (!bigger)
		return -1;
	for (uint32_t i = ep->gcap; i < cap; i++)
		bigger[i] = NULL;
	ep->gtab = bigger;
	ep->gcap = cap;
	return (int)first;
}

int wf_tcp_grant_post(struct wf_tcp_ep *ep, struct wf_xfer *x)
{
	struct wf_tcp_grant *g = wf_container_of(x->grant, struct wf_tcp_grant, base);
	int slot;

	if (g->ep)
		return -EBUSY; /* still live: its owner must wait for the peer to end it */
	if (!ep->gcap)	       /* generations start apart, so keys of connections rarely meet */
		ep->ggen =
		    (uint16_t)(ep->pg->t->key_seed ^ (++ep->pg->grant_eps * 0x9e3779b9u) >> 16);
	slot = free_slot(ep);
	if (slot < 0)
		return -ENOMEM;
	ep->ggen++;
	*g = (struct wf_tcp_grant){
	    .base = {.transport = g->base.transport,
		     .key = (uint32_t)(ep->ggen & 0xffff) << 16 | ((uint32_t)slot + 1)},
	    .ep = ep,
	    .slot = (uint32_t)slot,
	    .addr = (uintptr_t)x->buf,
	    .len = x->len,
	    .access = x->access,
	    .mr_key = x->mr->key,
	};
	ep->gtab[slot] = g;
	return 0;
}

/* With the registration table read-locked: may the peer reach this through a grant? */
bool wf_tcp_grant_ok(struct wf_tcp_ep *ep, uint32_t key, uint64_t addr, uint64_t len,
		     unsigned access)
{
	uint32_t slot = (key & 0xffff) - 1;
	struct wf_tcp_grant *g;

	if (!(key & 0xffff) || slot >= ep->gcap)
		return false;
	g = ep->gtab[slot];
	if (!g || g->base.key != key || (g->access & access) != access || addr < g->addr ||
	    addr > g->addr + g->len || len > g->addr + g->len - addr)
		return false;
	/* Deregistered under a live grant: the memory is no longer ours to hand out. */
	return wf_tcp_mr_find(ep->pg->t, g->mr_key, addr, len, WF_ACCESS_LOCAL) != NULL;
}

int wf_tcp_grant_revoke(struct wf_tcp_ep *ep, struct wf_grant *base)
{
	struct wf_tcp_grant *g = wf_container_of(base, struct wf_tcp_grant, base);

	if (g->ep != ep)
		return -EINVAL;
	grant_end(g);
	return 0;
}

void wf_tcp_grant_end_key(struct wf_tcp_ep *ep, uint32_t key)
{
	uint32_t slot = (key & 0xffff) - 1;

	if ((key & 0xffff) && slot < ep->gcap && ep->gtab[slot] && ep->gtab[slot]->base.key == key)
		grant_end(ep->gtab[slot]);
}

void wf_tcp_grants_drop(struct wf_tcp_ep *ep)
{
	for (uint32_t i = 0; i < ep->gcap; i++)
		if (ep->gtab[i])
			ep->gtab[i]->ep = NULL;
	free(ep->gtab);
	ep->gtab = NULL;
	ep->gcap = 0;
}
