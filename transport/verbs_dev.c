// SPDX-License-Identifier: MIT
/* The verbs transport's device, protection domain and memory registrations. */
#include "transport/verbs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <numa.h>

#include "core/log.h"

/* The NUMA node a device hangs off, or -1 (soft devices have none). */
static int device_numa_node(struct ibv_context *verbs)
{
	char path[PATH_MAX];
	FILE *f;
	int node = -1;

	snprintf(path, sizeof(path), "%s/device/numa_node", verbs->device->ibdev_path);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &node) != 1)
		node = -1;
	fclose(f);
	return node;
}

static struct ibv_context *pick_device(struct ibv_context **devs, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!name || strcmp(ibv_get_device_name(devs[i]->device), name) == 0)
			return devs[i];
	return NULL;
}

/*
 * The shared receive queue and every endpoint's send queue complete into
 * one CQ: keep at least half of it for send queues. A queue cut short can run
 * dry, and the peer then waits out RNR timers: say so.
 */
static void clamp_receives(struct wf_verbs_transport *t)
{
	uint32_t want = t->base.opts.srq_depth, max = (uint32_t)t->attr.max_cqe / 2;

	if ((uint32_t)t->attr.max_srq_wr < max)
		max = (uint32_t)t->attr.max_srq_wr;
	if (want <= max)
		return;
	t->base.opts.srq_depth = max;
	wf_log_warn(t->base.opts.log,
		    "verbs: %s takes %u shared receives, not %u: past that, hosts wait on RNR",
		    ibv_get_device_name(t->verbs->device), max, want);
}

int wf_verbs_create(const struct wf_transport_opts *opts, struct wf_transport **out)
{
	struct wf_verbs_transport *t;
	int n = 0, ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->base.ops = &wf_verbs_ops;
	t->base.opts = *opts;

	/* rdma_cm binds ids to its own contexts; a PD from any other would not match. */
	t->devs = rdma_get_devices(&n);
	if (!t->devs || n == 0) {
		wf_log_err(opts->log, "verbs: no RDMA device found");
		ret = -ENODEV;
		goto err_free;
	}
	t->verbs = pick_device(t->devs, n, opts->device);
	if (!t->verbs) {
		wf_log_err(opts->log, "verbs: no RDMA device named %s", opts->device);
		ret = -ENODEV;
		goto err_devs;
	}
	if (ibv_query_device(t->verbs, &t->attr)) {
		ret = -errno;
		goto err_devs;
	}
	clamp_receives(t);
	t->pd = ibv_alloc_pd(t->verbs);
	if (!t->pd) {
		ret = -errno;
		goto err_devs;
	}
	/*
	 * rxe hands user space the kernel's IB_WC_WITH_INVALIDATE (bit 2, which
	 * libibverbs calls IP_CSUM_OK) instead of IBV_WC_WITH_INV: seen on
	 * Debian's 6.1. Only there is that bit read as an invalidation.
	 */
	/* Read by every poll group now and then; never block one of them. */
	fcntl(t->verbs->async_fd, F_SETFL, fcntl(t->verbs->async_fd, F_GETFL) | O_NONBLOCK);
	t->wc_inv_flags = IBV_WC_WITH_INV;
	if (!strncmp(ibv_get_device_name(t->verbs->device), "rxe", 3))
		t->wc_inv_flags |= 1u << 2;
	t->numa_node = opts->numa_node >= 0 ? opts->numa_node : device_numa_node(t->verbs);
	if (numa_available() < 0)
		t->numa_node = -1;
	wf_log_info(opts->log, "verbs: device %s, NUMA node %d",
		    ibv_get_device_name(t->verbs->device), t->numa_node);
	*out = &t->base;
	return 0;

err_devs:
	rdma_free_devices(t->devs);
err_free:
	free(t);
	return ret;
}

void wf_verbs_destroy(struct wf_transport *tt)
{
	struct wf_verbs_transport *t = wf_container_of(tt, struct wf_verbs_transport, base);

	ibv_dealloc_pd(t->pd);
	rdma_free_devices(t->devs);
	free(t);
}

int wf_verbs_mr_reg(struct wf_transport *tt, void *addr, size_t len, unsigned access,
		    struct wf_mr **out)
{
	struct wf_verbs_transport *t = wf_container_of(tt, struct wf_verbs_transport, base);
	int flags = IBV_ACCESS_LOCAL_WRITE;
	struct wf_verbs_mr *m;

	if (access & WF_ACCESS_REMOTE_READ)
		flags |= IBV_ACCESS_REMOTE_READ;
	if (access & WF_ACCESS_REMOTE_WRITE)
		flags |= IBV_ACCESS_REMOTE_WRITE;
	if (access & WF_ACCESS_GRANT)
		flags |= IBV_ACCESS_MW_BIND;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->mr = ibv_reg_mr(t->pd, addr, len, flags);
	if (!m->mr) {
		int ret = -errno;

		free(m);
		return ret;
	}
	m->base = (struct wf_mr){
	    .transport = tt, .addr = addr, .len = len, .key = m->mr->rkey, .access = access};
	*out = &m->base;
	return 0;
}

void wf_verbs_mr_dereg(struct wf_mr *mr)
{
	struct wf_verbs_mr *m = wf_container_of(mr, struct wf_verbs_mr, base);

	ibv_dereg_mr(m->mr);
	free(m);
}

int wf_verbs_grant_create(struct wf_transport *tt, struct wf_grant **out)
{
	struct wf_verbs_transport *t = wf_container_of(tt, struct wf_verbs_transport, base);
	struct wf_verbs_grant *g;

	if (!(t->attr.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B))
		return -EOPNOTSUPP;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->base.transport = tt;
	*out = &g->base;
	return 0;
}

void wf_verbs_grant_destroy(struct wf_grant *gg)
{
	struct wf_verbs_grant *g = wf_container_of(gg, struct wf_verbs_grant, base);

	wf_verbs_grant_unbind(g);
	free(g);
}

const struct wf_transport_ops wf_verbs_ops = {
    .name = "verbs",
    .create = wf_verbs_create,
    .destroy = wf_verbs_destroy,
    .mr_reg = wf_verbs_mr_reg,
    .mr_dereg = wf_verbs_mr_dereg,
    .grant_create = wf_verbs_grant_create,
    .grant_destroy = wf_verbs_grant_destroy,
    .pg_create = wf_verbs_pg_create,
    .pg_destroy = wf_verbs_pg_destroy,
    .pg_poll = wf_verbs_pg_poll,
    .pg_fd = wf_verbs_pg_fd,
    .pg_arm = wf_verbs_pg_arm,
    .listen = wf_verbs_listen,
    .listener_close = wf_verbs_listener_close,
    .connect = wf_verbs_connect,
    .post = wf_verbs_post,
    .disconnect = wf_verbs_disconnect,
};
