// SPDX-License-Identifier: MIT
/*
 * weft: the host's command line, a thin user of libweft.
 *   weft [options] list
 *   weft [options] read VOLUME [--lba N] [--blocks N] [--file F]   (stdout by default)
 *   weft [options] write VOLUME [--lba N] [--file F]               (stdin by default)
 *   weft [options] verify VOLUME [--blocks N] [--gen G] [--qd N] [--passes N | --time S]
 *                                [--stop-file F]
 *   weft [options] perf VOLUME [--qd N] [--size BYTES] [--pattern P] [--time S] [--ramp S]
 *                              [--jobs N] [--qps N] [--json]
 * Options: --addr A --port P --transport auto|rdma|tcp --host ID --secret-file F
 *          --reconnect MS --keep-alive MS --keep-alive-timeout MS --spin-us US
 *          --no-windows --no-cpl-data --cpl-imm.
 * The secret is the first line of F, or $WEFT_SECRET; never an argument,
 * since arguments are visible to every user through ps.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#define CHUNK_BLOCKS 64
/*
 * Latency histogram: 1 us buckets up to HIST_US, then 1 ms buckets up to
 * HIST_MS ms more, the last one open. A guest under TCG sees 100 ms I/O at
 * QD 16, which a 65 ms cap would report as p99 = cap.
 */
#define HIST_US	     65536
#define HIST_MS	     4096
#define HIST_N	     (HIST_US + HIST_MS + 1)
#define VERIFY_MAGIC 0x77656674u
#define SECRET_LINE  256
#define MAX_JOBS     64
#define MAX_QPS	     16

struct cli {
	struct wf_host_opts o;
	uint64_t lba, blocks, gen, size;
	uint32_t qd, jobs, qps;
	int seconds, ramp, timed;
	uint64_t passes;
	const char *file, *pattern, *stop_file, *volume;
	int json;
	struct wf_host *h;
	struct wf_qp *qp;
	struct wf_vol *v;
	uint8_t *want; /* one block, what verify expects */
	const char *secret_file;
	char secret[SECRET_LINE];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "weft: %s: %s\n", what, strerror(-rc));
	return 1;
}

/* The secret: the first line of --secret-file, else $WEFT_SECRET, else none. */
static int load_secret(struct cli *c)
{
	const char *env = getenv("WEFT_SECRET");
	FILE *f;

	if (!c->secret_file) {
		if (env && *env)
			c->o.secret = env;
		return 0;
	}
	f = fopen(c->secret_file, "re");
	if (!f)
		return -errno;
	if (!fgets(c->secret, sizeof(c->secret), f))
		c->secret[0] = '\0';
	fclose(f);
	c->secret[strcspn(c->secret, "\r\n")] = '\0';
	c->o.secret = c->secret;
	return 0;
}

static int cli_connect(struct cli *c, const char *volume)
{
	int rc = load_secret(c);

	if (rc)
		return fail(c->secret_file, rc);
	rc = wf_host_open(&c->o, &c->h);

	if (rc == -EINVAL && c->o.secret)
		return fail("secret (16 to 128 bytes)", rc);
	if (rc)
		return fail("transport", rc);
	rc = wf_qp_open(c->h, &c->qp);
	if (rc)
		return fail("connect", rc);
	if (volume) {
		rc = wf_vol_open_name(c->qp, volume, &c->v);
		if (rc)
			return fail(volume, rc);
	}
	return 0;
}

static void cli_close(struct cli *c)
{
	wf_vol_close(c->v);
	wf_qp_close(c->qp);
	wf_host_close(c->h);
}

static int cmd_list(struct cli *c)
{
	uint32_t ids[256], n;
	int rc = wf_qp_list_volumes(c->qp, ids, 256, &n);

	if (rc)
		return fail("list", rc);
	printf("%-4s %-32s %10s %14s %s\n", "id", "name", "block", "blocks", "access");
	for (uint32_t i = 0; i < n && i < 256; i++) {
		struct wf_vol *v;
		const struct wf_vol_info *vi;

		rc = wf_vol_open(c->qp, ids[i], &v);
		if (rc)
			return fail("identify", rc);
		vi = wf_vol_info(v);
		printf("%-4u %-32s %10u %14lu %s\n", vi->id, vi->name, vi->block_size,
		       (unsigned long)vi->nblocks, vi->read_only ? "ro" : "rw");
		wf_vol_close(v);
	}
	return 0;
}

static int cmd_read(struct cli *c)
{
	uint32_t bs = wf_vol_block_size(c->v);
	uint64_t left = c->blocks ? c->blocks : wf_vol_nblocks(c->v) - c->lba, lba = c->lba;
	char *buf = wf_dma_alloc(c->qp, (size_t)CHUNK_BLOCKS * bs);
	FILE *f = c->file ? fopen(c->file, "wb") : stdout;
	int rc = 0;

	if (!buf || !f)
		return fail("read", -ENOMEM);
	while (left && !rc) {
		uint32_t n = left < CHUNK_BLOCKS ? (uint32_t)left : CHUNK_BLOCKS;

		rc = wf_qp_io(c->qp, c->v, WF_IO_READ, lba, n, buf, 30);
		if (!rc && fwrite(buf, bs, n, f) != n)
			rc = -EIO;
		lba += n;
		left -= n;
	}
	if (f != stdout)
		fclose(f);
	else
		fflush(stdout);
	return rc ? fail("read", rc) : 0;
}

static int cmd_write(struct cli *c)
{
	uint32_t bs = wf_vol_block_size(c->v);
	size_t chunk = (size_t)CHUNK_BLOCKS * bs, got;
	char *buf = wf_dma_alloc(c->qp, chunk);
	FILE *f = c->file ? fopen(c->file, "rb") : stdin;
	uint64_t lba = c->lba, total = 0;
	int rc = 0;

	if (!buf || !f)
		return fail("write", f ? -ENOMEM : -errno);
	while (!rc && (got = fread(buf, 1, chunk, f)) > 0) {
		uint32_t n = (uint32_t)((got + bs - 1) / bs);

		memset(buf + got, 0, (size_t)n * bs - got); /* the last block is padded */
		rc = wf_qp_io(c->qp, c->v, WF_IO_WRITE, lba, n, buf, 30);
		lba += n;
		total += got;
	}
	if (f != stdin)
		fclose(f);
	if (rc)
		return fail("write", rc);
	fprintf(stderr, "weft: wrote %lu bytes at block %lu\n", (unsigned long)total,
		(unsigned long)c->lba);
	return 0;
}

/* A verify block: LBA and generation up front, a pattern derived from them after. */
static void verify_fill(uint8_t *b, uint32_t bs, uint64_t lba, uint64_t gen)
{
	uint64_t *w = (uint64_t *)b;

	w[0] = lba;
	w[1] = gen;
	w[2] = VERIFY_MAGIC;
	for (uint32_t i = 3; i < bs / 8; i++)
		w[i] = (lba << 20 ^ gen << 8 ^ i) * 0x9e3779b97f4a7c15ull;
}

struct vslot {
	struct cli *c;
	uint8_t *buf;
	uint64_t lba;
	uint32_t n;
	int busy, status;
};

static void vslot_done(void *arg, int status)
{
	struct vslot *s = arg;

	s->busy = 0;
	s->status = status;
}

/* Run one pass (write or read) of @total blocks from c->lba with c->qd commands in flight. */
static int verify_pass(struct cli *c, struct vslot *slots, int reading, uint64_t total,
		       uint64_t *bad)
{
	uint32_t bs = wf_vol_block_size(c->v);
	uint64_t next = 0;
	int rc, active;

	do {
		active = 0;
		for (uint32_t i = 0; i < c->qd; i++) {
			struct vslot *s = &slots[i];

			if (s->busy) {
				active = 1;
				continue;
			}
			if (s->status)
				return s->status;
			if (reading && s->n) {
				for (uint32_t k = 0; k < s->n; k++) {
					verify_fill(c->want, bs, s->lba + k, c->gen);
					if (memcmp(c->want, s->buf + (size_t)k * bs, bs))
						(*bad)++;
				}
			}
			s->n = 0;
			if (next == total)
				continue;
			s->lba = c->lba + next;
			s->n =
			    total - next < CHUNK_BLOCKS ? (uint32_t)(total - next) : CHUNK_BLOCKS;
			for (uint32_t k = 0; !reading && k < s->n; k++)
				verify_fill(s->buf + (size_t)k * bs, bs, s->lba + k, c->gen);
			if (reading)
				memset(s->buf, 0, (size_t)s->n * bs);
			rc = wf_qp_submit(c->qp, c->v, reading ? WF_IO_READ : WF_IO_WRITE, s->lba,
					  s->n, s->buf, 0, vslot_done, s);
			if (rc)
				return rc;
			s->busy = 1;
			active = 1;
			next += s->n;
		}
		if (active && (rc = wf_qp_poll(c->qp, 100)) < 0)
			return rc;
	} while (active);
	return 0;
}

/*
 * Each pass writes generation g everywhere, then reads it all back: every
 * write was acknowledged before the reads, so each block must hold g.
 * Passes go on (g + 1, ...) until --passes or --time says stop, or until
 * --stop-file exists (a test harness's way to end it once its faults are done).
 */
static int cmd_verify(struct cli *c)
{
	uint32_t bs = wf_vol_block_size(c->v);
	uint64_t total = c->blocks ? c->blocks : wf_vol_nblocks(c->v) - c->lba, bad = 0;
	struct vslot *slots = calloc(c->qd, sizeof(*slots));
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)c->seconds * 1000000000ull, pass = 0;
	uint64_t wr_ns = 0, rd_ns = 0, first_gen = c->gen, t1, t2;
	int rc = 0;

	if (c->lba + total > wf_vol_nblocks(c->v))
		return fail("verify", -ERANGE);
	for (uint32_t i = 0; slots && i < c->qd; i++) {
		slots[i].buf = wf_dma_alloc(c->qp, (size_t)CHUNK_BLOCKS * bs);
		if (!slots[i].buf)
			return fail("verify", -ENOMEM);
	}
	c->want = malloc(bs);
	if (!slots || !c->want)
		return fail("verify", -ENOMEM);
	do {
		t1 = now_ns();
		rc = verify_pass(c, slots, 0, total, &bad);
		t2 = now_ns();
		if (!rc)
			rc = verify_pass(c, slots, 1, total, &bad);
		wr_ns += t2 - t1;
		rd_ns += now_ns() - t2;
		pass++;
		c->gen++;
	} while (!rc && !bad && (c->timed ? now_ns() < end : pass < c->passes) &&
		 !(c->stop_file && !access(c->stop_file, F_OK)));
	free(slots);
	free(c->want);
	if (rc)
		return fail("verify", rc);
	printf("verify: %lu blocks of %u bytes at block %lu, generation %lu", (unsigned long)total,
	       bs, (unsigned long)c->lba, (unsigned long)first_gen);
	if (pass > 1)
		printf(" to %lu (%lu passes, %u reconnects)", (unsigned long)(c->gen - 1),
		       (unsigned long)pass, wf_qp_reconnects(c->qp));
	printf(": wrote in %.3f s, read back in %.3f s, %lu bad\n", (double)wr_ns / 1e9,
	       (double)rd_ns / 1e9, (unsigned long)bad);
	return bad ? 1 : 0;
}

struct pslot {
	struct perf *p;
	struct wf_qp *qp;
	uint8_t *buf;
	uint64_t start_ns;
	int busy;
};

/*
 * The start line the jobs of one perf run share: each arrives once set up
 * (or failed to), and the main thread lets them all go together, so their
 * measured windows overlap.
 */
struct perf_run {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t arrived;
	bool go, failed;
};

/* One job: its own queue pairs, slots and histogram; merged into job 0's at the end. */
struct perf {
	struct cli *c;
	struct perf_run *run;
	uint32_t idx;
	struct wf_qp *qps[MAX_QPS]; /* [0] the job's own; the rest share its poll group */
	struct wf_vol *v;
	struct pslot *slots;
	pthread_t thread;
	int rc;
	uint64_t window_ns; /* the measured time, ramp excluded */
	uint32_t nb;	    /* blocks per I/O */
	uint64_t span;	    /* I/O-sized positions on the volume */
	uint64_t seq;	    /* next sequential position */
	uint64_t rng;	    /* xorshift state */
	int read_pct;	    /* 0, 50 or 100 */
	int random;
	uint64_t ios, errors;
	uint64_t lat_ns; /* sum over ios + errors, for the mean the histogram rounds */
	uint64_t *hist;	 /* HIST_N buckets, see HIST_US */
};

static uint64_t perf_rand(struct perf *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

static void pslot_done(void *arg, int status)
{
	struct pslot *s = arg;
	struct perf *p = s->p;
	uint64_t ns = now_ns() - s->start_ns, us = ns / 1000;

	s->busy = 0;
	p->lat_ns += ns;
	if (us < HIST_US)
		p->hist[us]++;
	else
		p->hist[HIST_US +
			((us - HIST_US) / 1000 < HIST_MS ? (us - HIST_US) / 1000 : HIST_MS)]++;
	if (status)
		p->errors++;
	else
		p->ios++;
}

static int perf_submit(struct perf *p, struct pslot *s)
{
	struct cli *c = p->c;
	uint64_t pos = p->random ? perf_rand(p) % p->span : p->seq++ % p->span;
	int reading = p->read_pct == 100 || (p->read_pct && (perf_rand(p) & 1));
	int rc;

	s->start_ns = now_ns();
	rc = wf_qp_submit(s->qp, p->v, reading ? WF_IO_READ : WF_IO_WRITE, c->lba + pos * p->nb,
			  p->nb, s->buf, 0, pslot_done, s);
	if (!rc)
		s->busy = 1;
	return rc;
}

static double perf_pct(const struct perf *p, double q)
{
	uint64_t total = p->ios + p->errors, seen = 0;

	for (uint32_t i = 0; i < HIST_N; i++) {
		seen += p->hist[i];
		if (total && (double)seen >= q * (double)total)
			return i < HIST_US ? i : HIST_US + (double)(i - HIST_US) * 1000;
	}
	return HIST_US + (double)HIST_MS * 1000;
}

static int perf_pattern(struct perf *p, const char *pat)
{
	static const struct {
		const char *name;
		int random, read_pct;
	} pats[] = {{"read", 0, 100},	 {"write", 0, 0},   {"randread", 1, 100},
		    {"randwrite", 1, 0}, {"randrw", 1, 50}, {"rw", 0, 50}};

	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		if (!strcmp(pat, pats[i].name)) {
			p->random = pats[i].random;
			p->read_pct = pats[i].read_pct;
			return 0;
		}
	}
	return -EINVAL;
}

static double perf_mean_us(const struct perf *p)
{
	uint64_t n = p->ios + p->errors;

	return n ? (double)p->lat_ns / (double)n / 1e3 : 0;
}

static void perf_report(const struct perf *p, double secs)
{
	const struct cli *c = p->c;
	double iops = (double)p->ios / secs;
	double mibs = iops * (double)c->size / (1024.0 * 1024.0);

	if (c->json) {
		printf("{\"transport\":\"%s\",\"pattern\":\"%s\",\"qd\":%u,\"jobs\":%u,\"qps\":%u,"
		       "\"io_size\":%lu,\"seconds\":%.3f,\"ios\":%lu,\"errors\":%lu,\"iops\":%.0f,"
		       "\"mib_s\":%.2f,\"lat_us\":{\"mean\":%.1f,\"p50\":%.0f,\"p90\":%.0f,"
		       "\"p99\":%.0f,\"p999\":%.0f}}\n",
		       wf_host_transport(c->h), c->pattern, c->qd, c->jobs, c->qps,
		       (unsigned long)c->size, secs, (unsigned long)p->ios,
		       (unsigned long)p->errors, iops, mibs, perf_mean_us(p), perf_pct(p, 0.5),
		       perf_pct(p, 0.9), perf_pct(p, 0.99), perf_pct(p, 0.999));
		return;
	}
	printf("perf: %s %s qd %u x %u jobs x %u qps size %lu over %s: %lu I/O in %.2f s, "
	       "%.0f IOPS, %.2f MiB/s, %lu errors\n",
	       c->pattern, c->v ? wf_vol_info(c->v)->name : "?", c->qd, c->jobs, c->qps,
	       (unsigned long)c->size, wf_host_transport(c->h), (unsigned long)p->ios, secs, iops,
	       mibs, (unsigned long)p->errors);
	printf("perf: latency us mean %.1f p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f\n",
	       perf_mean_us(p), perf_pct(p, 0.5), perf_pct(p, 0.9), perf_pct(p, 0.99),
	       perf_pct(p, 0.999));
}

/*
 * A job's queue pair, volume and buffers. Job 0 runs on the CLI's own queue
 * pair; the others open one each, from their own thread, as libweft wants.
 */
static int perf_setup(struct perf *p)
{
	struct cli *c = p->c;
	int rc;

	if (!p->idx) {
		p->qps[0] = c->qp;
		p->v = c->v;
	} else {
		rc = wf_qp_open(c->h, &p->qps[0]);
		if (rc) {
			p->qps[0] = NULL;
			return rc;
		}
		rc = wf_vol_open_name(p->qps[0], c->volume, &p->v);
		if (rc) {
			p->v = NULL;
			return rc;
		}
	}
	p->nb = (uint32_t)(c->size / wf_vol_block_size(p->v));
	p->span = (wf_vol_nblocks(p->v) - c->lba) / p->nb;
	/* Sequential jobs start apart, as fio's jobs on one device do not. */
	p->seq = p->span / c->jobs * p->idx;
	p->rng = 0x2545f4914f6cdd1dull ^ ((uint64_t)p->idx * 0x9e3779b97f4a7c15ull);
	p->hist = calloc(HIST_N, sizeof(*p->hist));
	p->slots = calloc(c->qd, sizeof(*p->slots));
	if (!p->span || !p->hist || !p->slots)
		return -ENOMEM;
	for (uint32_t k = 1; k < c->qps; k++) {
		rc = wf_qp_open_shared(p->qps[0], &p->qps[k]);
		if (rc)
			return rc;
	}
	/* A slot keeps its queue pair: at QD1 only the first carries I/O, as one would alone. */
	for (uint32_t i = 0; i < c->qd; i++) {
		struct wf_qp *qp = p->qps[i % c->qps];

		p->slots[i] = (struct pslot){.p = p, .qp = qp, .buf = wf_dma_alloc(qp, c->size)};
		if (!p->slots[i].buf)
			return -ENOMEM;
	}
	return 0;
}

/* Keep qd commands in flight until the ramp and the measured time have passed. */
static int perf_loop(struct perf *p)
{
	struct cli *c = p->c;
	uint64_t t0 = now_ns(), ramp_end = t0 + (uint64_t)c->ramp * 1000000000ull;
	uint64_t end = ramp_end + (uint64_t)c->seconds * 1000000000ull;
	int rc = 0, active, ramping = c->ramp > 0;

	do {
		uint64_t now = now_ns();
		int going = now < end;

		/*
		 * The ramp's I/O warms caches, connections and the target's pools but
		 * counts for nothing, like fio's ramp_time, so both sides of a
		 * comparison measure the steady state only.
		 */
		if (ramping && now >= ramp_end) {
			ramping = 0;
			t0 = now;
			p->ios = p->errors = p->lat_ns = 0;
			memset(p->hist, 0, HIST_N * sizeof(*p->hist));
		}
		active = 0;
		for (uint32_t i = 0; i < c->qd && !rc; i++) {
			if (!p->slots[i].busy && going)
				rc = perf_submit(p, &p->slots[i]);
			active |= p->slots[i].busy;
		}
		if (rc)
			return rc;
		/*
		 * Every slot is busy: wait in the poll, which spins within the
		 * budget the gaps between completions have earned and yields while
		 * it does, so soft-RoCE's softirq on this CPU still runs.
		 */
		if (active && wf_qp_poll(p->qps[0], 1) < 0)
			return -EIO;
	} while (active);
	p->window_ns = now_ns() - t0;
	return 0;
}

/* Arrive at the start line with @rc; true when every job may go, false when one failed. */
static bool perf_arrive(struct perf_run *run, int rc)
{
	bool ok;

	pthread_mutex_lock(&run->lock);
	run->arrived++;
	run->failed |= rc != 0;
	pthread_cond_broadcast(&run->cond);
	while (!run->go)
		pthread_cond_wait(&run->cond, &run->lock);
	ok = !run->failed;
	pthread_mutex_unlock(&run->lock);
	return ok;
}

/*
 * Release the @n jobs that started once all have arrived (@rc: the main
 * thread's own failure); true when every job, the main one too, may go.
 */
static bool perf_release(struct perf_run *run, uint32_t n, int rc)
{
	bool ok;

	pthread_mutex_lock(&run->lock);
	run->failed |= rc != 0;
	while (run->arrived < n)
		pthread_cond_wait(&run->cond, &run->lock);
	run->go = true;
	ok = !run->failed;
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
	return ok;
}

static void *perf_job(void *arg)
{
	struct perf *p = arg;
	int rc = perf_setup(p);

	if (!perf_arrive(p->run, rc) && !rc)
		rc = -ECANCELED;
	if (!rc)
		rc = perf_loop(p);
	p->rc = rc;
	return NULL;
}

static void perf_free(struct perf *p)
{
	for (uint32_t k = 1; k < p->c->qps; k++)
		wf_qp_close(p->qps[k]); /* NULL-safe, as for a job whose setup failed */
	if (p->idx && p->qps[0]) {
		wf_vol_close(p->v);
		wf_qp_close(p->qps[0]); /* frees the job's buffers too */
	}
	free(p->hist);
	free(p->slots);
}

/* Job @q's counts and histogram into @p's; the run lasts as long as its longest job. */
static void perf_merge(struct perf *p, const struct perf *q)
{
	p->ios += q->ios;
	p->errors += q->errors;
	p->lat_ns += q->lat_ns;
	for (uint32_t i = 0; i < HIST_N; i++)
		p->hist[i] += q->hist[i];
	if (q->window_ns > p->window_ns)
		p->window_ns = q->window_ns;
}

/*
 * --jobs N runs N threads with a queue pair each, qd commands in flight on
 * every one: a target with several poll-group threads serves them on as
 * many CPUs, which one queue pair, polled by one thread, cannot use.
 */
static int cmd_perf(struct cli *c)
{
	uint32_t bs = wf_vol_block_size(c->v), started = 0;
	struct perf_run run = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	struct perf proto = {.c = c, .run = &run}, *jobs;
	int rc = 0;

	if (perf_pattern(&proto, c->pattern) || !c->size || c->size % bs ||
	    c->size / bs > wf_vol_info(c->v)->max_transfer_blocks)
		return fail("perf: pattern or size", -EINVAL);
	jobs = calloc(c->jobs, sizeof(*jobs));
	if (!jobs)
		return fail("perf", -ENOMEM);
	for (uint32_t j = 0; j < c->jobs; j++) {
		jobs[j] = proto;
		jobs[j].idx = j;
	}
	/* Job 0 runs here, on the CLI's queue pair; the others each on a thread of their own. */
	while (started + 1 < c->jobs && !rc) {
		rc = -pthread_create(&jobs[started + 1].thread, NULL, perf_job, &jobs[started + 1]);
		started += !rc;
	}
	if (!rc)
		rc = perf_setup(&jobs[0]);
	/* A job that could not start cancels this one too; its own error is reported below. */
	if (!perf_release(&run, started, rc) && !rc)
		rc = -ECANCELED;
	if (!rc)
		rc = perf_loop(&jobs[0]);
	for (uint32_t j = 1; j <= started; j++) {
		pthread_join(jobs[j].thread, NULL);
		if ((!rc || rc == -ECANCELED) && jobs[j].rc && jobs[j].rc != -ECANCELED)
			rc = jobs[j].rc;
	}
	for (uint32_t j = 1; !rc && j < c->jobs; j++)
		perf_merge(&jobs[0], &jobs[j]);
	if (!rc)
		perf_report(&jobs[0], (double)jobs[0].window_ns / 1e9);
	for (uint32_t j = 0; j < c->jobs; j++)
		perf_free(&jobs[j]);
	rc = rc ? fail("perf", rc) : jobs[0].errors ? 1 : 0;
	free(jobs);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: weft [--addr A] [--port P] [--transport auto|rdma|tcp] [--host ID]\n"
		"            [--secret-file F]   (else $WEFT_SECRET)\n"
		"            list | read VOL | write VOL | verify VOL | perf VOL\n"
		"  read/write: [--lba N] [--blocks N] [--file F]   (stdout/stdin by default)\n"
		"  verify:     [--lba N] [--blocks N] [--gen G] [--qd N] [--passes N | --time S]\n"
		"              [--stop-file F]\n"
		"  perf:       [--qd N] [--size BYTES] [--pattern read|write|randread|randwrite|"
		"randrw|rw]\n"
		"              [--time S] [--ramp S] [--jobs N] [--json]\n"
		"              [--qps N]\n"
		"              (--jobs: N threads, qd in flight on each; --qps: queue pairs per\n"
		"               thread, polled together, the thread's qd spread over them)\n"
		"  connection: [--reconnect MS] [--keep-alive MS] [--keep-alive-timeout MS]\n"
		"              [--spin-us US]   (most a poll spins before sleeping; 0: never)\n"
		"              [--no-windows]   (buffer keys outlive their commands)\n"
		"              [--no-cpl-data]  (small reads too are RDMA-written, not sent back\n"
		"                                in the completion's capsule)\n"
		"              [--cpl-imm]      (a read's data WRITE carries its completion)\n");
}

static int parse_num(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		*out <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		*out <<= 20, end++;
	return *end ? -EINVAL : 0;
}

static int parse_args(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"addr", required_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"transport", required_argument, NULL, 't'},
	    {"host", required_argument, NULL, 'H'},
	    {"secret-file", required_argument, NULL, 'k'},
	    {"lba", required_argument, NULL, 'l'},
	    {"blocks", required_argument, NULL, 'b'},
	    {"file", required_argument, NULL, 'f'},
	    {"gen", required_argument, NULL, 'g'},
	    {"qd", required_argument, NULL, 'q'},
	    {"size", required_argument, NULL, 's'},
	    {"pattern", required_argument, NULL, 'P'},
	    {"time", required_argument, NULL, 'T'},
	    {"ramp", required_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"jobs", required_argument, NULL, 'J'},
	    {"qps", required_argument, NULL, 'Q'},
	    {"passes", required_argument, NULL, 'n'},
	    {"stop-file", required_argument, NULL, 'S'},
	    {"reconnect", required_argument, NULL, 'R'},
	    {"keep-alive", required_argument, NULL, 'K'},
	    {"keep-alive-timeout", required_argument, NULL, 'L'},
	    {"spin-us", required_argument, NULL, 'u'},
	    {"no-windows", no_argument, NULL, 'W'},
	    {"no-cpl-data", no_argument, NULL, 'C'},
	    {"cpl-imm", no_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	uint64_t v;
	int o;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (o == 'a' || o == 't' || o == 'H' || o == 'f' || o == 'P' || o == 'j' ||
		    o == 'h' || o == 'S' || o == 'k' || o == 'W' || o == 'C' || o == 'M')
			v = 0;
		else if (o == '?' || parse_num(optarg, &v))
			return -EINVAL;
		switch (o) {
		case 'a':
			c->o.addr = optarg;
			break;
		case 'p':
			c->o.port = (uint16_t)v;
			break;
		case 't':
			c->o.transport = optarg;
			break;
		case 'H':
			c->o.host_id = optarg;
			break;
		case 'k':
			c->secret_file = optarg;
			break;
		case 'l':
			c->lba = v;
			break;
		case 'b':
			c->blocks = v;
			break;
		case 'f':
			c->file = optarg;
			break;
		case 'g':
			c->gen = v;
			break;
		case 'q':
			c->qd = (uint32_t)v;
			break;
		case 's':
			c->size = v;
			break;
		case 'P':
			c->pattern = optarg;
			break;
		case 'T':
			c->seconds = (int)v;
			c->timed = 1;
			break;
		case 'n':
			c->passes = v;
			break;
		case 'S':
			c->stop_file = optarg;
			break;
		case 'R':
			c->o.reconnect_timeout_ms = (int)v;
			break;
		case 'K':
			c->o.keep_alive_ms = (int)v;
			break;
		case 'L':
			c->o.keep_alive_timeout_ms = (int)v;
			break;
		case 'u':
			c->o.spin_us = (unsigned)v;
			break;
		case 'r':
			c->ramp = (int)v;
			break;
		case 'j':
			c->json = 1;
			break;
		case 'J':
			c->jobs = (uint32_t)v;
			break;
		case 'Q':
			c->qps = (uint32_t)v;
			break;
		case 'W':
			c->o.windows = 0;
			break;
		case 'C':
			c->o.cpl_data_reads = 0;
			break;
		case 'M':
			c->o.cpl_imm_reads = 1;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!c->qd || c->qd > 1024 || !c->jobs || c->jobs > MAX_JOBS || !c->qps || c->qps > MAX_QPS)
		return -EINVAL;
	if (c->o.queue_depth < c->qd)
		c->o.queue_depth = (uint16_t)c->qd;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = {.qd = 16,
			.jobs = 1,
			.qps = 1,
			.size = 4096,
			.seconds = 3,
			.pattern = "randread",
			.gen = 1,
			.passes = 1};
	const char *cmd, *vol;
	int rc;

	wf_host_opts_default(&c.o);
	c.o.host_id = "weft-cli";
	c.o.queue_depth = 16;
	if (parse_args(&c, argc, argv) || optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	vol = optind + 1 < argc ? argv[optind + 1] : NULL;
	c.volume = vol;
	if (strcmp(cmd, "list") && (!vol || optind + 2 != argc)) {
		usage(stderr);
		return 2;
	}
	rc = cli_connect(&c, strcmp(cmd, "list") ? vol : NULL);
	if (!rc) {
		if (!strcmp(cmd, "list"))
			rc = cmd_list(&c);
		else if (!strcmp(cmd, "read"))
			rc = cmd_read(&c);
		else if (!strcmp(cmd, "write"))
			rc = cmd_write(&c);
		else if (!strcmp(cmd, "verify"))
			rc = cmd_verify(&c);
		else if (!strcmp(cmd, "perf"))
			rc = cmd_perf(&c);
		else
			rc = 2, usage(stderr);
	}
	cli_close(&c);
	return rc;
}
