/* SPDX-License-Identifier: MIT */
/*
 * Mirrored volumes. Every leg holds the whole volume at the same offsets.
 *
 * Resync copies a returning leg chunk by chunk from a healthy one. A chunk is
 * fenced first: writes that overlap it and arrive meanwhile are held, and the
 * copy starts only once the overlapping writes already in flight are done.
 * Otherwise the copy could read old data from the healthy leg and write it
 * over a newer user write on the returning leg.
 *
 * Only what a leg missed is copied: each leg has a bitmap of resync-sized
 * chunks that a write, write-zeroes or discard did not reach on it (sent
 * while it was degraded, or failed or refused there). The bitmap lives in
 * memory, so a leg whose history is unknown is replaced (copied in full).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/volume_impl.h"

#define MIRROR_MAX_LEGS	   32u
#define MIRROR_RESYNC_SIZE (64u * 1024)

enum resync_phase {
	RESYNC_IDLE = 0, /* no chunk: no fence */
	RESYNC_FENCED,	 /* waiting for overlapping writes to drain, or for a queue slot */
	RESYNC_READING,
	RESYNC_READ_DONE, /* the write to the returning leg waits for a queue slot */
	RESYNC_WRITING,
};

struct resync {
	enum resync_phase phase;
	uint32_t leg;
	uint64_t off, len; /* the fenced chunk */
	uint8_t *buf;
	struct wf_bdev_io io;
};

struct mirror {
	struct wf_volume vol; /* srcs are the legs, in order */
	enum wf_mirror_leg_state state[MIRROR_MAX_LEGS];
	uint64_t *missed[MIRROR_MAX_LEGS]; /* per leg, a bit per chunk it lacks */
	uint64_t nchunks;
	uint32_t next_read;
	struct wf_bdev_io *writes;	 /* in flight, through ->next */
	struct wf_bdev_io_queue held;	 /* overlapping the fence */
	struct wf_bdev_io_queue stalled; /* a leg's queue was full */
	struct resync rs;
	wf_mirror_journal_fn journal;
	void *journal_arg;
};

/* Per request: legs that acknowledged, and legs not yet sent to (writes) or tried (reads). */
#define LEGS_OK(io)   ((io)->scratch[0])
#define LEGS_LEFT(io) ((io)->scratch[1])

static const struct wf_bdev_ops mirror_ops;

static uint32_t leg_of(const struct mirror *m, const struct wf_bdev *leg)
{
	uint32_t i = 0;

	while (m->vol.srcs[i] != leg)
		i++;
	return i;
}

static uint32_t stale_legs(const struct mirror *m)
{
	uint32_t stale = 0;

	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		if (m->state[i] != WF_MIRROR_HEALTHY)
			stale |= 1u << i;
	return stale;
}

/*
 * Tell the journal, synchronously: the callers run before the requests that
 * caused the change complete, which is what makes the record durable in time.
 */
static void journal(struct mirror *m)
{
	int rc;

	if (!m->journal)
		return;
	rc = m->journal(m->journal_arg, stale_legs(m));
	if (rc)
		wf_log_err(m->vol.bdev.log,
			   "%s: recording stale legs %#x failed: %s; after a restart they may be "
			   "read as if current",
			   m->vol.name, stale_legs(m), strerror(-rc));
}

static void leg_fail(struct mirror *m, uint32_t leg, int status)
{
	enum wf_mirror_leg_state was = m->state[leg];

	if (was == WF_MIRROR_DEGRADED)
		return;
	m->state[leg] = WF_MIRROR_DEGRADED;
	wf_log_warn(m->vol.bdev.log, "%s: leg %u (%s) failed: %s; volume degraded", m->vol.name,
		    leg, m->vol.srcs[leg]->name, strerror(-status));
	/* A resyncing leg was already recorded as stale. */
	if (was == WF_MIRROR_HEALTHY)
		journal(m);
}

/* Leg @leg lacks [off, off + len): its chunks are copied when it returns. */
static void mark_missed(struct mirror *m, uint32_t leg, uint64_t off, uint64_t len)
{
	uint64_t *map = m->missed[leg];

	if (!len)
		return;
	for (uint64_t c = off / MIRROR_RESYNC_SIZE; c <= (off + len - 1) / MIRROR_RESYNC_SIZE; c++)
		map[c / 64] |= 1ull << (c % 64);
}

/* First chunk at or after @from that leg @leg lacks; m->nchunks if none. */
static uint64_t next_missed(const struct mirror *m, uint32_t leg, uint64_t from)
{
	const uint64_t *map = m->missed[leg];

	for (uint64_t c = from; c < m->nchunks; c++) {
		uint64_t word = map[c / 64] >> (c % 64);

		if (word) {
			uint64_t hit = c + (uint64_t)__builtin_ctzll(word);

			return hit < m->nchunks ? hit : m->nchunks;
		}
		c |= 63; /* the rest of this word is clear */
	}
	return m->nchunks;
}

/* Next healthy leg after the last one read, skipping legs in @tried; -1 if none. */
static int pick_read_leg(struct mirror *m, uint64_t tried)
{
	for (uint32_t k = 0; k < m->vol.nsrcs; k++) {
		uint32_t i = (m->next_read + k) % m->vol.nsrcs;

		if (m->state[i] == WF_MIRROR_HEALTHY && !(tried & (1ull << i))) {
			m->next_read = i + 1;
			return (int)i;
		}
	}
	return -1;
}

static bool overlaps(const struct wf_bdev_io *io, uint64_t off, uint64_t len)
{
	return io->dev_offset < off + len && off < io->dev_offset + io->len;
}

static bool fenced(const struct mirror *m, const struct wf_bdev_io *io)
{
	return m->rs.phase != RESYNC_IDLE && overlaps(io, m->rs.off, m->rs.len);
}

static void writes_remove(struct mirror *m, struct wf_bdev_io *io)
{
	struct wf_bdev_io **p = &m->writes;

	while (*p != io)
		p = &(*p)->next;
	*p = io->next;
}

static void read_done(struct wf_bdev_io *sub, int status);
static void read_resume(struct mirror *m, struct wf_bdev_io *io);
static void write_done(struct wf_bdev_io *sub, int status);

/*
 * Send a read to the next healthy leg not yet tried. A leg that refuses it
 * outright has failed like one that fails it later: degrade it, try the next.
 * -EIO when no leg is left, -EAGAIN when a queue is full.
 */
static int read_send(struct mirror *m, struct wf_bdev_io *io)
{
	for (;;) {
		int leg = pick_read_leg(m, LEGS_LEFT(io)), rc;

		if (leg < 0)
			return -EIO;
		rc = wf_volume_subreq(&m->vol, io, m->vol.srcs[leg], io->dev_offset, io->len,
				      io->buf, read_done);
		if (rc == -EAGAIN)
			return rc;
		LEGS_LEFT(io) |= 1ull << leg;
		if (!rc)
			return 0;
		leg_fail(m, (uint32_t)leg, rc);
		io->status = rc;
	}
}

/* The leg that fails a read is degraded and the read goes to the next healthy leg. */
static void read_done(struct wf_bdev_io *sub, int status)
{
	struct wf_bdev_io *io = sub->cb_arg;
	struct mirror *m = io->bdev->ctx;
	uint32_t leg = leg_of(m, sub->bdev);

	wf_pool_put(&m->vol.subreqs, sub);
	if (!status) {
		wf_bdev_complete(io, 0);
		return;
	}
	leg_fail(m, leg, status);
	io->status = status;
	read_resume(m, io);
}

static void read_resume(struct mirror *m, struct wf_bdev_io *io)
{
	int rc = read_send(m, io);

	if (rc == -EAGAIN) {
		wf_bdev_io_queue_push(&m->stalled, io);
	} else if (rc) {
		wf_bdev_complete(io, io->status ? io->status : rc);
	}
}

static int mirror_read(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	struct mirror *m = bdev->ctx;

	LEGS_LEFT(io) = 0;
	io->status = 0;
	return read_send(m, io);
}

/* The write is done when every leg it went to answered: good if a still healthy leg has it. */
static void write_finish(struct mirror *m, struct wf_bdev_io *io)
{
	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		if (LEGS_OK(io) & (1ull << i) && m->state[i] == WF_MIRROR_HEALTHY) {
			wf_bdev_complete(io, 0);
			return;
		}
	wf_log_err(m->vol.bdev.log, "%s: %s at %llu+%llu reached no healthy leg", m->vol.name,
		   wf_bdev_op_name(io->op), (unsigned long long)io->dev_offset,
		   (unsigned long long)io->len);
	wf_bdev_complete(io, io->status ? io->status : -EIO);
}

static void write_part_done(struct mirror *m, struct wf_bdev_io *io, uint32_t leg, int status)
{
	if (status) {
		leg_fail(m, leg, status);
		mark_missed(m, leg, io->dev_offset, io->len);
		if (!io->status)
			io->status = status;
	} else {
		LEGS_OK(io) |= 1ull << leg;
	}
	if (--io->pending)
		return;
	writes_remove(m, io);
	write_finish(m, io);
}

static void write_done(struct wf_bdev_io *sub, int status)
{
	struct wf_bdev_io *io = sub->cb_arg;
	struct mirror *m = io->bdev->ctx;
	uint32_t leg = leg_of(m, sub->bdev);

	wf_pool_put(&m->vol.subreqs, sub);
	write_part_done(m, io, leg, status);
}

/*
 * Send to the legs still in LEGS_LEFT; -EAGAIN if a leg's queue is full. A
 * leg that refuses outright fails here, and is accounted without completing
 * the write, which write_go() does once it knows nothing is in flight.
 */
static int write_send(struct mirror *m, struct wf_bdev_io *io)
{
	while (LEGS_LEFT(io)) {
		uint32_t leg = (uint32_t)__builtin_ctzll(LEGS_LEFT(io));
		int rc = wf_volume_subreq(&m->vol, io, m->vol.srcs[leg], io->dev_offset, io->len,
					  io->buf, write_done);

		if (rc == -EAGAIN)
			return rc;
		LEGS_LEFT(io) &= ~(1ull << leg);
		if (rc) {
			leg_fail(m, leg, rc);
			mark_missed(m, leg, io->dev_offset, io->len);
			io->status = io->status ? io->status : rc;
			io->pending--;
		}
	}
	return 0;
}

/*
 * Send what is left of a write. Fully sent writes join the in-flight list
 * the resync fence drains; a write stalled on a full queue waits on the
 * stalled list, which the fence drains as well.
 */
static void write_go(struct mirror *m, struct wf_bdev_io *io)
{
	if (write_send(m, io) == -EAGAIN) {
		wf_bdev_io_queue_push(&m->stalled, io);
		return;
	}
	if (!io->pending) {
		write_finish(m, io);
		return;
	}
	io->next = m->writes;
	m->writes = io;
}

/* Fan a write (or zeroes, discard, flush) out to every leg that is not degraded. */
static void write_start(struct mirror *m, struct wf_bdev_io *io)
{
	uint64_t legs = 0;
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		if (m->state[i] != WF_MIRROR_DEGRADED) {
			legs |= 1ull << i;
			n++;
		} else {
			mark_missed(m, i, io->dev_offset, io->len);
		}
	io->pending = n;
	io->status = 0;
	LEGS_OK(io) = 0;
	LEGS_LEFT(io) = legs;
	write_go(m, io);
}

static bool any_healthy(const struct mirror *m)
{
	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		if (m->state[i] == WF_MIRROR_HEALTHY)
			return true;
	return false;
}

static int mirror_write(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	struct mirror *m = bdev->ctx;

	if (!any_healthy(m)) {
		wf_log_err(bdev->log, "%s: no healthy leg left", m->vol.name);
		return -EIO;
	}
	/* Push back while nothing could go out; a pool short of some legs only stalls those. */
	if (!wf_pool_avail(&m->vol.subreqs))
		return -EAGAIN;
	if (fenced(m, io)) {
		wf_bdev_io_queue_push(&m->held, io);
		return 0;
	}
	write_start(m, io);
	return 0;
}

/* Requests whose leg queue was full go out again now that completions made room. */
static void resume_stalled(struct mirror *m)
{
	struct wf_bdev_io *io = wf_bdev_io_queue_take(&m->stalled);

	while (io) {
		struct wf_bdev_io *next = io->next;

		if (io->op != WF_BDEV_READ)
			write_go(m, io);
		else
			read_resume(m, io);
		io = next;
	}
}

static void release_held(struct mirror *m)
{
	struct wf_bdev_io *io = wf_bdev_io_queue_take(&m->held);

	while (io) {
		struct wf_bdev_io *next = io->next;

		write_start(m, io);
		io = next;
	}
}

static void resync_chunk_end(struct mirror *m, bool advance)
{
	if (advance) {
		uint64_t c = m->rs.off / MIRROR_RESYNC_SIZE;

		/* The fence kept writes off the chunk, so nothing re-marked it meanwhile. */
		m->missed[m->rs.leg][c / 64] &= ~(1ull << (c % 64));
		m->rs.off += m->rs.len;
	}
	m->rs.phase = RESYNC_IDLE;
	release_held(m);
}

static void resync_write_done(struct wf_bdev_io *io, int status)
{
	struct mirror *m = io->cb_arg;

	if (status)
		leg_fail(m, m->rs.leg, status);
	resync_chunk_end(m, !status);
}

static void resync_read_done(struct wf_bdev_io *io, int status)
{
	struct mirror *m = io->cb_arg;

	if (status) {
		leg_fail(m, leg_of(m, io->bdev), status);
		m->rs.phase = RESYNC_FENCED; /* read it again from another healthy leg */
		return;
	}
	m->rs.phase = RESYNC_READ_DONE;
}

static int resync_submit(struct mirror *m, uint32_t leg, enum wf_bdev_op op, wf_bdev_cb cb)
{
	wf_bdev_io_prep(&m->rs.io, op, m->rs.off, m->rs.len, m->rs.buf, cb, m);
	return wf_bdev_submit(m->vol.srcs[leg], &m->rs.io);
}

static void resync_read(struct mirror *m)
{
	struct wf_bdev_io *w;
	int src, rc;

	for (w = m->writes; w; w = w->next)
		if (overlaps(w, m->rs.off, m->rs.len))
			return;
	for (w = m->stalled.head; w; w = w->next)
		if (w->op != WF_BDEV_READ && overlaps(w, m->rs.off, m->rs.len))
			return;
	src = pick_read_leg(m, 0);
	if (src < 0) {
		/* Nothing left to copy from: the returning leg cannot be made whole. */
		leg_fail(m, m->rs.leg, -EIO);
		resync_chunk_end(m, false);
		return;
	}
	rc = resync_submit(m, (uint32_t)src, WF_BDEV_READ, resync_read_done);
	if (rc == 0)
		m->rs.phase = RESYNC_READING;
	else if (rc != -EAGAIN)
		leg_fail(m, (uint32_t)src, rc); /* still fenced: the next poll tries another leg */
}

static void resync_write(struct mirror *m)
{
	int rc = resync_submit(m, m->rs.leg, WF_BDEV_WRITE, resync_write_done);

	if (rc == 0)
		m->rs.phase = RESYNC_WRITING;
	else if (rc != -EAGAIN)
		resync_write_done(&m->rs.io, rc);
}

/* Start the next chunk, or finish: one chunk in flight at a time keeps user I/O first. */
static void resync_next(struct mirror *m)
{
	uint64_t size = m->vol.geo.size;
	uint64_t c;

	if (m->state[m->rs.leg] != WF_MIRROR_RESYNCING)
		return;
	c = next_missed(m, m->rs.leg, m->rs.off / MIRROR_RESYNC_SIZE);
	m->rs.off = c * MIRROR_RESYNC_SIZE;
	if (c >= m->nchunks) {
		m->state[m->rs.leg] = WF_MIRROR_HEALTHY;
		wf_log_info(m->vol.bdev.log, "%s: leg %u (%s) resynchronised", m->vol.name,
			    m->rs.leg, m->vol.srcs[m->rs.leg]->name);
		journal(m);
		return;
	}
	m->rs.len = size - m->rs.off < MIRROR_RESYNC_SIZE ? size - m->rs.off : MIRROR_RESYNC_SIZE;
	m->rs.phase = RESYNC_FENCED;
	resync_read(m);
}

static void resync_step(struct mirror *m)
{
	bool waiting = m->rs.phase == RESYNC_FENCED || m->rs.phase == RESYNC_READ_DONE;

	/* The returning leg failed again between steps: drop the chunk and lift the fence. */
	if (waiting && m->state[m->rs.leg] != WF_MIRROR_RESYNCING)
		resync_chunk_end(m, false);
	else if (m->rs.phase == RESYNC_IDLE)
		resync_next(m);
	else if (m->rs.phase == RESYNC_FENCED)
		resync_read(m);
	else if (m->rs.phase == RESYNC_READ_DONE)
		resync_write(m);
}

static void mirror_poll(struct wf_bdev *bdev)
{
	struct mirror *m = bdev->ctx;

	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		wf_bdev_poll(m->vol.srcs[i]);
	if (m->stalled.head)
		resume_stalled(m);
	resync_step(m);
}

static void mirror_free(struct mirror *m)
{
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		free(m->missed[i]);
	free(m->rs.buf);
}

static void mirror_close(struct wf_bdev *bdev)
{
	struct mirror *m = bdev->ctx;

	mirror_free(m);
	wf_volume_teardown(&m->vol);
	free(m);
}

static const struct wf_bdev_ops mirror_ops = {
    .submit =
	{
	    [WF_BDEV_READ] = mirror_read,
	    [WF_BDEV_WRITE] = mirror_write,
	    [WF_BDEV_FLUSH] = mirror_write,
	    [WF_BDEV_WRITE_ZEROES] = mirror_write,
	    [WF_BDEV_DISCARD] = mirror_write,
	},
    .poll = mirror_poll,
    .geometry = wf_volume_geometry,
    .close = mirror_close,
};

static int mirror_geometry_setup(struct mirror *m, uint32_t n)
{
	uint64_t size = UINT64_MAX, bs = m->vol.geo.block_size;

	if (m->vol.nsrcs != n || n > MIRROR_MAX_LEGS || MIRROR_RESYNC_SIZE % bs)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (m->vol.srcs[i]->geo.size < size)
			size = m->vol.srcs[i]->geo.size;
	m->vol.geo.size = size / bs * bs;
	m->nchunks = (m->vol.geo.size + MIRROR_RESYNC_SIZE - 1) / MIRROR_RESYNC_SIZE;
	for (uint32_t i = 0; i < n; i++) {
		m->missed[i] = calloc((m->nchunks + 63) / 64 + 1, sizeof(uint64_t));
		if (!m->missed[i])
			return -ENOMEM;
	}
	return posix_memalign((void **)&m->rs.buf, 4096, MIRROR_RESYNC_SIZE) ? -ENOMEM : 0;
}

int wf_volume_mirror_create(struct wf_bdev **out, const struct wf_volume_conf *conf,
			    struct wf_bdev *const *legs, uint32_t n)
{
	struct mirror *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return -ENOMEM;
	rc = wf_volume_setup(&m->vol, conf, legs, n);
	if (rc)
		goto err_free;
	rc = mirror_geometry_setup(m, n);
	if (rc) {
		wf_log_err(conf->log, "%s: a mirror needs 1 to %u distinct legs", conf->name,
			   MIRROR_MAX_LEGS);
		goto err_teardown;
	}
	wf_bdev_init(&m->vol.bdev, &mirror_ops, m, m->vol.name, conf->log);
	*out = &m->vol.bdev;
	return 0;

err_teardown:
	mirror_free(m);
	wf_volume_teardown(&m->vol);
err_free:
	free(m);
	return rc;
}

static int leg_resync(struct wf_bdev *bdev, uint32_t leg, bool whole)
{
	struct mirror *m = bdev->ctx;
	uint64_t chunks = 0;

	if (bdev->ops != &mirror_ops || leg >= m->vol.nsrcs || m->state[leg] != WF_MIRROR_DEGRADED)
		return -EINVAL;
	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		if (m->state[i] == WF_MIRROR_RESYNCING)
			return -EBUSY;
	/* A chunk of an aborted resync is still on its way out; it ends at a coming poll. */
	if (m->rs.phase != RESYNC_IDLE)
		return -EBUSY;
	if (whole)
		mark_missed(m, leg, 0, m->vol.geo.size);
	for (uint64_t c = next_missed(m, leg, 0); c < m->nchunks; c = next_missed(m, leg, c + 1))
		chunks++;
	m->state[leg] = WF_MIRROR_RESYNCING;
	m->rs = (struct resync){.leg = leg, .buf = m->rs.buf};
	wf_log_info(bdev->log, "%s: leg %u (%s) %s, resynchronising %llu KiB", m->vol.name, leg,
		    m->vol.srcs[leg]->name, whole ? "replaced" : "returns",
		    (unsigned long long)(chunks * MIRROR_RESYNC_SIZE / 1024));
	return 0;
}

int wf_volume_mirror_leg_return(struct wf_bdev *bdev, uint32_t leg)
{
	return leg_resync(bdev, leg, false);
}

int wf_volume_mirror_leg_replace(struct wf_bdev *bdev, uint32_t leg)
{
	return leg_resync(bdev, leg, true);
}

int wf_volume_mirror_set_journal(struct wf_bdev *bdev, wf_mirror_journal_fn fn, void *arg)
{
	struct mirror *m = bdev->ctx;

	if (bdev->ops != &mirror_ops)
		return -EINVAL;
	m->journal = fn;
	m->journal_arg = arg;
	return 0;
}

int wf_volume_mirror_leg_stale(struct wf_bdev *bdev, uint32_t leg)
{
	struct mirror *m = bdev->ctx;
	uint32_t healthy = 0;

	if (bdev->ops != &mirror_ops || leg >= m->vol.nsrcs)
		return -EINVAL;
	for (uint32_t i = 0; i < m->vol.nsrcs; i++)
		healthy += i != leg && m->state[i] == WF_MIRROR_HEALTHY;
	if (!healthy)
		return -EIO;
	m->state[leg] = WF_MIRROR_DEGRADED;
	mark_missed(m, leg, 0, m->vol.geo.size);
	return 0;
}

enum wf_mirror_leg_state wf_volume_mirror_leg_state(struct wf_bdev *bdev, uint32_t leg)
{
	struct mirror *m = bdev->ctx;

	return m->state[leg];
}
