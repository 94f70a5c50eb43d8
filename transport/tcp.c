// SPDX-License-Identifier: MIT
/*
 * The TCP transport: its ops table, the transport object and the memory
 * registration table that emulated RDMA READ/WRITE are checked against.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "transport/tcp_priv.h"

#define MR_BUCKETS 1024

static int tcp_create(const struct wf_transport_opts *opts, struct wf_transport **out)
{
	struct wf_tcp_transport *t;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->base.ops = &wf_tcp_ops;
	t->base.opts = *opts;
	t->nbuckets = MR_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = -pthread_rwlock_init(&t->lock, NULL);
	if (ret)
		goto err_buckets;
	/* Keys only need to be hard to guess by accident, not secret. */
	if (getrandom(&t->key_seed, sizeof(t->key_seed), GRND_NONBLOCK) != sizeof(t->key_seed))
		t->key_seed = (uint32_t)(uintptr_t)t ^ 0x9e3779b9u;
	*out = &t->base;
	return 0;

err_buckets:
	free(t->buckets);
err_free:
	free(t);
	return ret;
}

static void tcp_destroy(struct wf_transport *tr)
{
	struct wf_tcp_transport *t = wf_container_of(tr, struct wf_tcp_transport, base);

	pthread_rwlock_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

/* A bijection on 32 bits, so distinct counters give distinct keys. */
static uint32_t key_mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

static struct wf_tcp_mr **bucket_of(struct wf_tcp_transport *t, uint32_t key)
{
	return &t->buckets[key & (t->nbuckets - 1)];
}

static struct wf_tcp_mr *lookup(struct wf_tcp_transport *t, uint32_t key)
{
	struct wf_tcp_mr *m;

	for (m = *bucket_of(t, key); m; m = m->hnext)
		if (m->base.key == key)
			return m;
	return NULL;
}

static uint32_t next_key(struct wf_tcp_transport *t)
{
	uint32_t key;

	do
		key = key_mix(t->key_seed + t->key_counter++);
	while (key == 0 || lookup(t, key));
	return key;
}

static int tcp_mr_reg(struct wf_transport *tr, void *addr, size_t len, unsigned access,
		      struct wf_mr **out)
{
	struct wf_tcp_transport *t = wf_container_of(tr, struct wf_tcp_transport, base);
	struct wf_tcp_mr *m, **b;

	if (len > UINT64_MAX - (uintptr_t)addr)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base = (struct wf_mr){.transport = tr, .addr = addr, .len = len, .access = access};
	pthread_rwlock_wrlock(&t->lock);
	m->base.key = next_key(t);
	b = bucket_of(t, m->base.key);
	m->hnext = *b;
	*b = m;
	pthread_rwlock_unlock(&t->lock);
	*out = &m->base;
	return 0;
}

static void tcp_mr_dereg(struct wf_mr *mr)
{
	struct wf_tcp_transport *t = wf_container_of(mr->transport, struct wf_tcp_transport, base);
	struct wf_tcp_mr **p;

	pthread_rwlock_wrlock(&t->lock);
	for (p = bucket_of(t, mr->key); *p; p = &(*p)->hnext) {
		if (&(*p)->base == mr) {
			*p = (*p)->hnext;
			break;
		}
	}
	pthread_rwlock_unlock(&t->lock);
	free(wf_container_of(mr, struct wf_tcp_mr, base));
}

const struct wf_mr *wf_tcp_mr_find(struct wf_tcp_transport *t, uint32_t key, uint64_t addr,
				   uint64_t len, unsigned access)
{
	struct wf_tcp_mr *m;
	uint64_t start, end;

	if (key == 0)
		return NULL;
	m = lookup(t, key);
	if (!m || (m->base.access & access) != access)
		return NULL;
	start = (uintptr_t)m->base.addr;
	end = start + m->base.len;
	if (addr < start || addr > end || len > end - addr)
		return NULL;
	return &m->base;
}

void wf_tcp_mr_rdlock(struct wf_tcp_transport *t)
{
	pthread_rwlock_rdlock(&t->lock);
}

void wf_tcp_mr_unlock(struct wf_tcp_transport *t)
{
	pthread_rwlock_unlock(&t->lock);
}

const struct wf_transport_ops wf_tcp_ops = {
    .name = "tcp",
    .create = tcp_create,
    .destroy = tcp_destroy,
    .mr_reg = tcp_mr_reg,
    .mr_dereg = tcp_mr_dereg,
    .grant_create = wf_tcp_grant_create,
    .grant_destroy = wf_tcp_grant_destroy,
    .pg_create = wf_tcp_pg_create,
    .pg_destroy = wf_tcp_pg_destroy,
    .pg_poll = wf_tcp_pg_poll,
    .pg_fd = wf_tcp_pg_fd,
    .pg_arm = wf_tcp_pg_arm,
    .listen = wf_tcp_listen,
    .listener_close = wf_tcp_listener_close,
    .connect = wf_tcp_connect,
    .post = wf_tcp_post,
    .disconnect = wf_tcp_disconnect,
};
