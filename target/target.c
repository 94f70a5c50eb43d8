// SPDX-License-Identifier: MIT
/*
 * Target life cycle: one shard per poll-group thread, each with its own
 * devices and volumes and one poll group per transport kind with its pools
 * and data buffers registered once; listeners on shard 0, which hands each
 * host to a shard. Every thread polls its shard until the stop fd is
 * readable (each sees it: nobody reads it), then drains it before exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/bdev_file.h"
#include "core/bdev_null.h"
#include "core/bdev_ram.h"
#include "core/log.h"
#include "core/spin.h"
#include "core/volume.h"
#include "target/target.h"
#include "target/target_priv.h"

#define FILE_QD	      256
#define MAX_SUBREQS   4096
#define IDLE_SLEEP_MS 20
#define REAP_EVERY_MS 250

typedef int (*dev_open_fn)(struct wf_tgt_shard *t, const struct wf_cfg_device *d,
			   struct wf_bdev **out);

/* One mapping for every thread: shards past 0 share shard 0's device's memory. */
static int open_ram(struct wf_tgt_shard *t, const struct wf_cfg_device *d, struct wf_bdev **out)
{
	if (t->index)
		return wf_bdev_ram_share(out, t->target->shards[0]->devices[d - t->cfg->devices],
					 t->log);
	return wf_bdev_ram_create(out, d->name, d->size, d->block_size, t->log);
}

static int open_null(struct wf_tgt_shard *t, const struct wf_cfg_device *d, struct wf_bdev **out)
{
	return wf_bdev_null_create(out, d->name, d->size, d->block_size, t->log);
}

/* A file device's file is created, or grown, to the configured size. */
static int open_file(struct wf_tgt_shard *t, const struct wf_cfg_device *d, struct wf_bdev **out)
{
	struct stat st;
	int fd, rc = 0;

	fd = open(d->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < d->size &&
	    ftruncate(fd, (off_t)d->size))
		rc = -errno;
	close(fd);
	if (rc)
		return rc;
	return wf_bdev_file_create(out, d->name, d->path, FILE_QD, t->log);
}

static const dev_open_fn dev_open[] = {
    [WF_CFG_DEV_RAM] = open_ram,
    [WF_CFG_DEV_FILE] = open_file,
    [WF_CFG_DEV_NULL] = open_null,
};

static int open_volume(struct wf_tgt_shard *t, uint32_t i)
{
	const struct wf_cfg_volume *cv = &t->cfg->volumes[i];
	struct wf_volume_conf conf = {.name = cv->name, .log = t->log, .max_subreqs = MAX_SUBREQS};
	struct wf_tgt_volume *v = &t->volumes[i];
	struct wf_bdev *devs[WF_CFG_VOL_DEVS];
	int rc;

	v->id = i + 1;
	v->name = cv->name;
	t->nvolumes = i + 1;
	/* A mirror's resync state has one owner: thread 0 (its hosts go there). */
	if (cv->layout == WF_CFG_MIRROR && t->index)
		return 0;
	for (uint32_t j = 0; j < cv->ndev; j++)
		devs[j] = t->devices[cv->dev[j]];
	for (uint32_t j = 1; j < cv->ndev; j++)
		if (devs[j]->geo.block_size != devs[0]->geo.block_size)
			return -EINVAL;
	switch (cv->layout) {
	case WF_CFG_STRIPE:
		rc = wf_volume_stripe_create(&v->bdev, &conf, devs, cv->ndev, cv->chunk);
		break;
	case WF_CFG_MIRROR:
		rc = wf_volume_mirror_create(&v->bdev, &conf, devs, cv->ndev);
		if (!rc)
			rc = wf_tgt_mirror_state_open(v, t->cfg->state_dir, t->log);
		break;
	case WF_CFG_LINEAR:
		/*
		 * One whole device, nothing to map: the device's own descriptor is
		 * exported and requests skip the volume layer altogether.
		 */
		v->bdev = devs[0];
		v->is_device = true;
		rc = 0;
		break;
	default:
		rc = wf_volume_concat_create(&v->bdev, &conf, devs, cv->ndev);
		break;
	}
	if (rc)
		return rc;
	v->block_size = v->bdev->geo.block_size;
	v->nblocks = v->bdev->geo.size / v->block_size;
	v->max_blocks = t->cfg->max_transfer / v->block_size;
	return 0;
}

static int open_storage(struct wf_tgt_shard *t)
{
	const struct wf_config *cfg = t->cfg;
	int rc;

	for (uint32_t i = 0; i < cfg->ndevices; i++) {
		rc = dev_open[cfg->devices[i].kind](t, &cfg->devices[i], &t->devices[i]);
		if (rc) {
			wf_log_err(t->log, "device %s: %s", cfg->devices[i].name, strerror(-rc));
			return rc;
		}
	}
	for (uint32_t i = 0; i < cfg->nvolumes; i++) {
		rc = open_volume(t, i);
		if (rc) {
			wf_log_err(t->log, "volume %s: %s", cfg->volumes[i].name, strerror(-rc));
			return rc;
		}
		if (!t->index)
			wf_log_info(t->log, "volume %u '%s': %lu blocks of %u bytes",
				    t->volumes[i].id, t->volumes[i].name,
				    (unsigned long)t->volumes[i].nblocks, t->volumes[i].block_size);
	}
	return 0;
}

/* Shard 0 opens the transport of @kind; the others make their groups on the same one. */
static int pg_init(struct wf_tgt_shard *t, struct wf_tgt_pg *tpg, const char *kind,
		   struct wf_transport *shared)
{
	const struct wf_config *cfg = t->cfg;
	const struct wf_transport_ops *ops = wf_transport_ops_find(kind);
	struct wf_transport_opts opts;
	uint32_t counts[WF_TGT_BUF_CLASSES] = {cfg->small_buffers, cfg->data_buffers};
	uint32_t sizes[WF_TGT_BUF_CLASSES] = {WF_TGT_SMALL_BUF, cfg->max_transfer};
	size_t bytes = 0, off = 0;
	int rc;

	if (!ops)
		return -EPROTONOSUPPORT;
	tpg->shard = t;
	wf_transport_opts_default(&opts);
	opts.capsule_size = WF_CMD_SIZE + cfg->in_capsule;
	opts.max_queue_depth = cfg->queue_depth;
	opts.srq_depth = wf_config_receive_buffers(cfg);
	opts.log = t->log;
	tpg->transport = shared;
	if (!shared) {
		rc = wf_transport_create(ops, &opts, &tpg->transport);
		if (rc)
			return rc;
	}
	rc = wf_poll_group_create(tpg->transport, &tpg->pg);
	if (rc)
		return rc;
	rc = wf_pool_init(&tpg->reqs, sizeof(struct wf_tgt_req),
			  2 * cfg->max_connections * cfg->queue_depth);
	if (rc)
		return rc;
	for (int c = 0; c < WF_TGT_BUF_CLASSES; c++)
		bytes += (size_t)counts[c] * sizes[c];
	tpg->bufmem = aligned_alloc(4096, bytes);
	if (!tpg->bufmem)
		return -ENOMEM;
	/* Local access only: the target moves data itself and never exposes memory. */
	rc = wf_mr_reg(tpg->transport, tpg->bufmem, bytes, WF_ACCESS_LOCAL, &tpg->mr);
	if (rc)
		return rc;
	for (int c = 0; c < WF_TGT_BUF_CLASSES; c++) {
		struct wf_tgt_bufs *b = &tpg->bufs[c];

		b->base = tpg->bufmem + off;
		b->size = sizes[c];
		b->free = calloc(counts[c], sizeof(*b->free));
		if (!b->free)
			return -ENOMEM;
		for (uint32_t i = 0; i < counts[c]; i++)
			b->free[b->nfree++] = counts[c] - 1 - i;
		off += (size_t)counts[c] * sizes[c];
	}
	return 0;
}

/* Shard 0 closes the transports, after every other shard is gone. */
static void pg_fini(struct wf_tgt_pg *tpg)
{
	if (tpg->pg)
		wf_poll_group_destroy(tpg->pg);
	if (tpg->mr)
		wf_mr_dereg(tpg->mr);
	if (tpg->reqs.mem)
		wf_pool_fini(&tpg->reqs);
	free(tpg->bufmem);
	for (int c = 0; c < WF_TGT_BUF_CLASSES; c++)
		free(tpg->bufs[c].free);
	if (tpg->transport && !tpg->shard->index)
		wf_transport_destroy(tpg->transport);
}

static const char *kind_of(const char *listen_transport)
{
	return strcmp(listen_transport, "rdma") ? "tcp" : "verbs";
}

static struct wf_tgt_pg *pg_for(struct wf_tgt_shard *t, const char *kind, int *rc)
{
	struct wf_tgt_pg *tpg;

	for (uint32_t i = 0; i < t->npgs; i++)
		if (!strcmp(wf_transport_name(t->pgs[i].transport), kind))
			return &t->pgs[i];
	tpg = &t->pgs[t->npgs++];
	*rc = pg_init(t, tpg, kind, NULL);
	return *rc ? NULL : tpg;
}

static const struct wf_listen_handlers listen_handlers = {.connect_request = wf_conn_request};

/* Shard 0's groups listen; the other shards get a group per kind on the same transports. */
static int start_listening(struct wf_target *t)
{
	const struct wf_config *cfg = t->cfg;
	struct wf_tgt_shard *s0 = t->shards[0];
	int rc = 0;

	for (uint32_t i = 0; i < cfg->nlisten; i++) {
		const struct wf_cfg_listen *l = &cfg->listen[i];
		struct wf_tgt_pg *tpg = pg_for(s0, kind_of(l->transport), &rc);

		if (!tpg) {
			wf_log_err(t->log, "transport %s: %s", l->transport, strerror(-rc));
			return rc;
		}
		rc = wf_listen(tpg->pg, l->addr, l->port, &listen_handlers, tpg, &t->listeners[i]);
		if (rc) {
			wf_log_err(t->log, "listen %s %s %u: %s", l->transport, l->addr, l->port,
				   strerror(-rc));
			return rc;
		}
		wf_log_info(t->log, "listening on %s %s port %u", l->transport, l->addr,
			    wf_listener_port(t->listeners[i]));
	}
	for (uint32_t k = 1; k < t->nshards; k++) {
		struct wf_tgt_shard *s = t->shards[k];

		for (uint32_t i = 0; i < s0->npgs; i++) {
			struct wf_transport *tr = s0->pgs[i].transport;

			s->npgs = i + 1;
			rc = pg_init(s, &s->pgs[i], wf_transport_name(tr), tr);
			if (rc) {
				wf_log_err(t->log, "thread %u: %s poll group: %s", k,
					   wf_transport_name(tr), strerror(-rc));
				return rc;
			}
		}
	}
	return 0;
}

/* A shard with its own device and volume stack; the ram ones share shard 0's memory. */
static int shard_create(struct wf_target *t, uint32_t index)
{
	struct wf_tgt_shard *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->target = t;
	s->index = index;
	s->cfg = t->cfg;
	s->log = t->log;
	t->shards[index] = s;
	t->nshards = index + 1;
	return open_storage(s);
}

int wf_target_create(const struct wf_config *cfg, struct wf_log *log, struct wf_target **out)
{
	struct wf_target *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	t->cfg = cfg;
	t->log = log;
	rc = wf_tgt_auth_init(t);
	if (!rc)
		rc = wf_conn_hosts_init(t);
	if (rc)
		goto fail;
	for (uint32_t i = 0; i < cfg->threads; i++) {
		rc = shard_create(t, i);
		if (rc)
			goto fail;
	}
	rc = start_listening(t);
	if (rc)
		goto fail;
	*out = t;
	return 0;
fail:
	wf_target_destroy(t);
	return rc;
}

uint16_t wf_target_port(const struct wf_target *t, uint32_t i)
{
	return i < t->cfg->nlisten && t->listeners[i] ? wf_listener_port(t->listeners[i]) : 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * One pass over every poll group and volume of a shard; returns the work
 * done. *@arrived: whether a command, READ data or a device completion came
 * in, the only work the spin budget learns from (transport/transport.c).
 */
static int poll_once(struct wf_tgt_shard *t, bool *busy, bool *arrived)
{
	int n = 0, rc;

	*busy = *arrived = false;
	t->now_ms = now_ms();
	for (uint32_t i = 0; i < t->npgs; i++) {
		struct wf_tgt_pg *g = &t->pgs[i];
		uint64_t a;

		rc = wf_poll_group_poll(g->pg, 0);
		if (rc < 0)
			return rc;
		n += rc;
		a = wf_poll_group_arrivals(g->pg);
		*arrived |= a != g->arrivals;
		g->arrivals = a;
	}
	for (uint32_t i = 0; i < t->nvolumes; i++) {
		if (!t->volumes[i].bdev)
			continue;
		rc = (int)wf_bdev_poll(t->volumes[i].bdev);
		n += rc;
		*arrived |= rc > 0;
		/* Completions below a bdev wake no fd: keep polling while any are out. */
		if (t->volumes[i].bdev->inflight)
			*busy = true;
	}
	/* A held CONNECT waits on other shards' devices too, which wake nothing here. */
	if (t->fenced && wf_conn_fence_retry(t))
		*busy = true;
	return n;
}

static int make_epoll(struct wf_tgt_shard *t, int stop_fd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int efd = epoll_create1(EPOLL_CLOEXEC);

	if (efd < 0)
		return -errno;
	for (uint32_t i = 0; i <= t->npgs; i++) {
		ev.data.u32 = i;
		if (epoll_ctl(efd, EPOLL_CTL_ADD,
			      i < t->npgs ? wf_poll_group_fd(t->pgs[i].pg) : stop_fd, &ev)) {
			int rc = -errno;

			close(efd);
			return rc;
		}
	}
	return efd;
}

static bool stop_requested(struct wf_tgt_shard *t, struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++)
		if (ev[i].data.u32 == t->npgs)
			return true;
	return false;
}

/*
 * Nothing to do: sleep until there is. A verbs poll group arms its CQ only
 * when it sleeps inside wf_poll_group_poll() (see the report on
 * transport/verbs_pg.c), so a lone group sleeps there, briefly, and the stop
 * fd is looked at after; several groups share an epoll with a short timeout.
 */
static int wait_events(int efd, struct epoll_event *ev, int nev, int ms)
{
	int n = epoll_wait(efd, ev, nev, ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n;
}

static int idle_wait(struct wf_tgt_shard *t, int efd, struct epoll_event *ev, int nev)
{
	int rc;

	if (t->npgs == 1) {
		rc = wf_poll_group_poll(t->pgs[0].pg, IDLE_SLEEP_MS);
		if (rc < 0)
			return rc;
		/* Then only look at the stop fd. */
		return wait_events(efd, ev, nev, 0);
	}
	/* Several groups: sleep on all their fds at once, each armed first. */
	for (uint32_t i = 0; i < t->npgs; i++) {
		rc = wf_poll_group_arm(t->pgs[i].pg);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	return wait_events(efd, ev, nev, IDLE_SLEEP_MS);
}

/* Thread 0 owns the listeners: close them, then no handoff to any shard can follow. */
static void stop_listening(struct wf_target *t)
{
	for (uint32_t i = 0; i < t->cfg->nlisten; i++) {
		if (t->listeners[i])
			wf_listener_close(t->listeners[i]);
		t->listeners[i] = NULL;
	}
	atomic_store(&t->listeners_closed, true);
}

/*
 * Stop taking commands, let what is in flight finish, then let hosts go. A
 * shard is done once the listeners were closed before one of its polls (so
 * that poll took in every connection handed to it) and no host is left.
 */
static int drain(struct wf_tgt_shard *t, int efd)
{
	struct wf_target *tg = t->target;
	struct epoll_event ev[WF_CFG_LISTENS + 1];
	bool busy, arrived, closed, disconnected = false;
	int rc;

	wf_log_info(t->log, "thread %u stopping: %u I/O in flight, %u hosts", t->index,
		    t->active_io, atomic_load(&t->nconns));
	t->stopping = true;
	atomic_store(&tg->stopping, true);
	if (!t->index)
		stop_listening(tg);
	for (;;) {
		closed = atomic_load(&tg->listeners_closed);
		rc = poll_once(t, &busy, &arrived);
		if (rc < 0)
			return rc;
		if (!disconnected && !t->active_io) {
			wf_conn_disconnect_all(t);
			disconnected = true;
		}
		if (closed && disconnected && !atomic_load(&t->nconns) && !busy)
			return 0;
		if (!rc && !busy && (rc = idle_wait(t, efd, ev, WF_CFG_LISTENS)) < 0)
			return rc;
	}
}

static int flush_all(struct wf_tgt_shard *t)
{
	int rc, first = 0;

	for (uint32_t i = 0; i < t->nvolumes; i++) {
		if (!t->volumes[i].bdev)
			continue;
		rc = wf_bdev_sync_io(t->volumes[i].bdev, WF_BDEV_FLUSH, 0, 0, NULL);
		if (rc && rc != -EOPNOTSUPP) {
			wf_log_err(t->log, "volume %s: flush failed: %d", t->volumes[i].name, rc);
			first = first ? first : rc;
		}
	}
	return first;
}

/* One shard's thread: serve until the stop fd is readable, drain, flush. */
static int shard_run(struct wf_tgt_shard *t, int stop_fd)
{
	struct epoll_event ev[WF_CFG_LISTENS + 1];
	struct wf_look stop_look = {0};
	struct wf_spin spin;
	uint64_t now;
	int efd, n, rc;
	bool busy, arrived, worked;

	efd = make_epoll(t, stop_fd);
	if (efd < 0)
		return efd;
	wf_spin_init(&spin, t->cfg->spin_us);
	t->next_reap_ms = now_ms() + REAP_EVERY_MS;
	for (;;) {
		rc = poll_once(t, &busy, &arrived);
		if (rc < 0)
			goto out;
		if (t->cfg->keep_alive_timeout && t->now_ms >= t->next_reap_ms) {
			wf_conn_reap_silent(t);
			t->next_reap_ms = t->now_ms + REAP_EVERY_MS;
		}
		/* A thread that may not spin reads no clock for it. */
		now = spin.max_ns ? wf_now_ns() : 0;
		if ((arrived || rc) && spin.max_ns)
			wf_spin_found(&spin, now, arrived);
		/*
		 * Spinning a while after work saves a wake-up per I/O at low queue
		 * depth. A spinning thread yields each round, so rxe's softirq and
		 * other spinners on the same CPU still get it. A thread that does
		 * not sleep looks at the stop fd now and then: a look is a system
		 * call, and one a round cost 4 KiB QD1 about a tenth of its latency.
		 */
		worked = rc || busy;
		if (!worked && !wf_spin_keep(&spin, now))
			n = idle_wait(t, efd, ev, WF_CFG_LISTENS + 1);
		else if (!worked && sched_yield())
			n = -errno;
		else if (wf_look_due(&stop_look, false))
			n = wait_events(efd, ev, WF_CFG_LISTENS + 1, 0);
		else
			n = 0;
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (n > 0 && stop_requested(t, ev, n))
			break;
	}
	if (spin.preemptions)
		wf_log_info(t->log, "thread %u: spinning lost the CPU to other tasks %llu times",
			    t->index, (unsigned long long)spin.preemptions);
	/* From here on only the poll groups wake us; the stop fd stays readable. */
	if (epoll_ctl(efd, EPOLL_CTL_DEL, stop_fd, NULL)) {
		rc = -errno;
		goto out;
	}
	rc = drain(t, efd);
	if (!rc)
		rc = flush_all(t);
out:
	close(efd);
	return rc;
}

struct shard_arg {
	struct wf_tgt_shard *shard;
	int stop_fd;
};

static void *shard_main(void *p)
{
	struct shard_arg *a = p;

	a->shard->rc = shard_run(a->shard, a->stop_fd);
	if (a->shard->rc)
		wf_log_err(a->shard->log, "thread %u: %s", a->shard->index,
			   strerror(-a->shard->rc));
	return NULL;
}

/* Start threads 1..N-1; @started says how many are running. */
static int start_threads(struct wf_target *t, struct shard_arg *args, int stop_fd,
			 uint32_t *started)
{
	int rc;

	for (uint32_t i = 1; i < t->nshards; i++) {
		args[i] = (struct shard_arg){t->shards[i], stop_fd};
		rc = -pthread_create(&t->shards[i]->thread, NULL, shard_main, &args[i]);
		if (rc)
			return rc;
		*started = i;
	}
	return 0;
}

int wf_target_run(struct wf_target *t, int stop_fd)
{
	struct shard_arg args[WF_CFG_THREADS];
	uint32_t started = 0;
	int rc;

	rc = start_threads(t, args, stop_fd, &started);
	if (rc) {
		/*
		 * Threads already running cannot be told otherwise: they stop when
		 * the stop fd becomes readable, and only then does this return.
		 */
		wf_log_err(t->log, "cannot start poll-group threads: %s", strerror(-rc));
		atomic_store(&t->stopping, true);
	}
	if (!rc)
		rc = shard_run(t->shards[0], stop_fd);
	else
		stop_listening(t);
	for (uint32_t i = 1; i <= started; i++) {
		pthread_join(t->shards[i]->thread, NULL);
		if (!rc)
			rc = t->shards[i]->rc;
	}
	if (!rc)
		wf_log_info(t->log, "stopped cleanly");
	return rc;
}

/* A device still busy here was left by a failed run; it is leaked, not freed under its I/O. */
static void close_bdev(struct wf_tgt_shard *t, struct wf_bdev *b)
{
	const char *name = b->name;
	int rc = wf_bdev_close(b);

	if (rc)
		wf_log_err(t->log, "%s: not closed: %s", name, strerror(-rc));
}

static void shard_destroy(struct wf_tgt_shard *t)
{
	for (uint32_t i = 0; i < t->npgs; i++)
		pg_fini(&t->pgs[i]);
	for (uint32_t i = 0; i < t->nvolumes; i++)
		if (t->volumes[i].bdev && !t->volumes[i].is_device)
			close_bdev(t, t->volumes[i].bdev);
	for (uint32_t i = 0; i < WF_CFG_DEVICES; i++)
		if (t->devices[i])
			close_bdev(t, t->devices[i]);
	free(t);
}

void wf_target_destroy(struct wf_target *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < WF_CFG_LISTENS; i++)
		if (t->listeners[i])
			wf_listener_close(t->listeners[i]);
	/* Shard 0 last: it owns the transports and the ram mappings the others share. */
	for (uint32_t i = t->nshards; i-- > 0;)
		shard_destroy(t->shards[i]);
	wf_tgt_auth_fini(t);
	free(t->hosts);
	free(t);
}
