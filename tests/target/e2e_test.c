// SPDX-License-Identifier: MIT
/*
 * End to end: the real target (target/target.h, the library weftd runs) on
 * its own thread, and hosts that use libweft, over tcp on loopback or over
 * verbs in the rxe guest (--transport rdma, address from WEFT_RXE_ADDR).
 * -n N runs the target with N poll-group threads; -W makes the hosts use
 * plain registrations instead of per-command windows; -I has them ask for
 * reads answered by their data's WRITE (WF_CMD_F_CPL_IMM). Every wait is bounded by
 * libweft's own timeouts; nothing is timed.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>
#include <weft/wire.h>

#include "core/log.h"
#include "target/config.h"
#include "target/target.h"
#include "target/target_priv.h"
#include "tests/target/harness.h"
#include "tests/lib/check.h"
#include "transport/transport.h"

#define MIB	   (1u << 20)
#define NHOSTS	   16
#define MANY_HOSTS 64  /* max_connections' default */
#define HOST_BLKS  256 /* blocks of "main" each of the 16 hosts owns */

static const char config_tail[] = "max_transfer 1M\n"
				  "data_buffers 16\n"
				  "small_buffers 32\n" /* fewer than qd 128: requests wait */
				  "device r0 ram 64M\n"
				  "device c0 ram 8M\n"
				  "device c1 ram 8M\n"
				  "device s0 ram 8M\n"
				  "device s1 ram 8M\n"
				  "device s2 ram 8M\n"
				  "device m0 ram 8M\n"
				  "device m1 ram 8M\n"
				  "device k0 ram 16M 4096\n"
				  "device p0 ram 4M\n"
				  "device o0 ram 4M\n"
				  "device n0 null 1G\n"
				  "volume main linear r0\n"
				  "volume cat concat c0 c1\n"
				  "volume str stripe 64K s0 s1 s2\n"
				  "volume mir mirror m0 m1\n"
				  "volume big linear k0\n"
				  "volume priv linear p0\n"
				  "volume ro linear o0\n"
				  "volume nul linear n0\n"
				  "allow host-a main rw\n"
				  "allow host-a cat rw\n"
				  "allow host-a str rw\n"
				  "allow host-a mir rw\n"
				  "allow host-a big rw\n"
				  "allow host-a ro ro\n"
				  "allow host-a nul rw\n"
				  "allow host-b main rw\n"
				  "allow host-b priv rw\n";

struct env {
	struct th_env th; /* transport, address, the target and its thread */
	unsigned threads;
	char file[64];
	int reconnect_ms; /* hosts' reconnect_timeout_ms: 0 but in the fault cases */
	int windows;	  /* hosts' per-command windows: 1 (the default), 0 with -W */
	int cpl_imm;	  /* hosts' cpl_imm_reads: 1 with -I */
	int ka_ms;	  /* hosts' keep_alive_ms; -1: the default */
	int cycles;	  /* connect/disconnect cycles of case cycles */
	int rounds;	  /* rounds of case many, at least 3: a baseline after 2, then more */
	const char *conf; /* more config lines for this case */
};

static void env_start(struct env *e)
{
	char text[8192];
	int fd, n = snprintf(text, sizeof(text), "%s", config_tail);

	/* A file device (io_uring), created by the target at the size given. */
	snprintf(e->file, sizeof(e->file), "/tmp/weft-e2e-XXXXXX");
	fd = mkstemp(e->file);
	WF_CHECK(fd >= 0);
	close(fd);
	n += snprintf(text + n, sizeof(text) - (size_t)n,
		      "device f0 file %s 8M\nvolume fil linear f0\nallow host-a fil rw\n"
		      "device b64k ram 8M 64K\nvolume v64k linear b64k\nallow host-a v64k rw\n"
		      "device b1m ram 8M 1M\nvolume v1m linear b1m\nallow host-a v1m rw\n",
		      e->file);
	for (int h = 0; h < MANY_HOSTS; h++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "allow h%02d main rw\n", h);
	snprintf(text + n, sizeof(text) - (size_t)n, "threads %u\n%s", e->threads,
		 e->conf ? e->conf : "");
	e->th.log_level = WF_LOG_WARN;
	th_env_start(&e->th, text);
}

static void env_stop(struct env *e)
{
	th_env_stop(&e->th);
	unlink(e->file);
}

/* A connected host: its handle and one queue pair. */
struct host {
	struct wf_host *h;
	struct wf_qp *qp;
};

static int host_try(struct env *e, const char *id, uint16_t qd, struct host *out)
{
	struct wf_host_opts o;

	wf_host_opts_default(&o);
	o.addr = e->th.addr;
	o.port = e->th.port;
	o.transport = e->th.transport;
	o.host_id = id;
	o.queue_depth = qd;
	/* Most cases watch one connection's life: a stopped target must fail them, not wait. */
	o.reconnect_timeout_ms = e->reconnect_ms;
	o.windows = e->windows;
	o.cpl_imm_reads = e->cpl_imm;
	if (e->ka_ms >= 0)
		o.keep_alive_ms = e->ka_ms;
	return th_host_open_opts(&o, &out->h, &out->qp);
}

static void host_open(struct env *e, const char *id, uint16_t qd, struct host *out)
{
	WF_CHECK_EQ(host_try(e, id, qd, out), 0);
}

static void host_close(struct host *h)
{
	wf_qp_close(h->qp);
	wf_host_close(h->h);
}

static struct wf_vol *vol_open(struct host *h, const char *name)
{
	struct wf_vol *v = NULL;

	WF_CHECK_EQ(wf_vol_open_name(h->qp, name, &v), 0);
	WF_CHECK_STR_CONTAINS(wf_vol_info(v)->name, name);
	return v;
}

/* Every 8 bytes: the byte offset in the volume, mixed with a generation. */
static void stamp(void *buf, size_t len, uint64_t off, uint64_t gen)
{
	uint64_t *p = buf;

	for (size_t i = 0; i < len / 8; i++)
		p[i] = (off + i * 8) * 0x9e3779b97f4a7c15ull ^ gen;
}

static void check_stamp(const void *buf, size_t len, uint64_t off, uint64_t gen)
{
	const uint64_t *p = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (p[i] != ((off + i * 8) * 0x9e3779b97f4a7c15ull ^ gen)) {
			fprintf(stderr, "mismatch at byte %lu (gen %lu): %016lx\n",
				(unsigned long)(off + i * 8), (unsigned long)gen,
				(unsigned long)p[i]);
			exit(1);
		}
}

static void write_read(struct host *h, struct wf_vol *v, uint64_t lba, uint32_t n, uint64_t gen)
{
	uint32_t bs = wf_vol_block_size(v);
	size_t len = (size_t)n * bs;
	char *w = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	char *r = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);

	WF_CHECK(w && r);
	stamp(w, len, lba * bs, gen);
	memset(r, 0, len);
	WF_CHECK_EQ(wf_qp_io(h->qp, v, WF_IO_WRITE, lba, n, w, 10), 0);
	WF_CHECK_EQ(wf_qp_io(h->qp, v, WF_IO_READ, lba, n, r, 10), 0);
	check_stamp(r, len, lba * bs, gen);
	wf_qp_buf_release(h->qp, w, len);
	wf_qp_buf_release(h->qp, r, len);
	free(w);
	free(r);
}

struct qd_io {
	int done, status;
};

static void qd_cb(void *arg, int status)
{
	struct qd_io *io = arg;

	io->done = 1;
	io->status = status;
}

static void case_opcodes(struct env *e)
{
	struct qd_io fua = {0};
	struct host a;
	struct wf_vol *v, *mv;
	uint32_t ids[16], n = 0;
	char *buf;

	host_open(e, "host-a", 32, &a);
	WF_CHECK_EQ(wf_qp_keep_alive(a.qp), 0);
	WF_CHECK_EQ(wf_qp_list_volumes(a.qp, ids, 16, &n), 0);
	WF_CHECK_EQ(n, 10); /* host-a may use ten of the eleven volumes */
	v = vol_open(&a, "main");
	WF_CHECK_EQ(wf_vol_block_size(v), 512);
	WF_CHECK_EQ(wf_vol_nblocks(v), (64u * MIB) / 512);
	WF_CHECK_EQ(wf_vol_info(v)->max_transfer_blocks, MIB / 512);
	WF_CHECK(!wf_vol_info(v)->read_only);
	write_read(&a, v, 10, 1, 1);   /* in the capsule */
	write_read(&a, v, 100, 64, 2); /* RDMA READ by the target */
	buf = wf_dma_alloc(a.qp, 64 * 512);
	WF_CHECK(buf != NULL);
	/* FUA write, then WRITE_ZEROES and DISCARD and FLUSH. */
	stamp(buf, 64 * 512, 200 * 512, 3);
	WF_CHECK_EQ(wf_qp_submit(a.qp, v, WF_IO_WRITE, 200, 64, buf, WF_IO_FUA, qd_cb, &fua), 0);
	while (wf_qp_outstanding(a.qp))
		WF_CHECK(wf_qp_poll(a.qp, 100) >= 0);
	WF_CHECK(fua.done && fua.status == 0);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_WRITE_ZEROES, 216, 16, NULL, 10), 0);
	memset(buf, 0xee, 64 * 512);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_READ, 200, 64, buf, 10), 0);
	check_stamp(buf, 16 * 512, 200 * 512, 3);
	for (size_t i = 16 * 512; i < 32 * 512; i++)
		WF_CHECK_EQ(buf[i], 0);
	check_stamp(buf + 32 * 512, 32 * 512, 232 * 512, 3);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_DISCARD, 300, 8, NULL, 10), 0);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_FLUSH, 0, 0, NULL, 10), 0);
	wf_dma_free(a.qp, buf);
	wf_vol_close(v);
	/* A read-only grant says so in the identify and refuses writes. */
	v = vol_open(&a, "ro");
	WF_CHECK(wf_vol_info(v)->read_only);
	mv = vol_open(&a, "main");
	write_read(&a, mv, 0, 2, 4);
	wf_vol_close(mv);
	{
		char b[512] = {0};

		WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_WRITE, 0, 1, b, 10), -EROFS);
		WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_READ, 0, 1, b, 10), 0);
	}
	wf_vol_close(v);
	host_close(&a);
}

static void case_sizes(struct env *e)
{
	struct host a;
	struct wf_vol *v, *big;

	host_open(e, "host-a", 8, &a);
	v = vol_open(&a, "main");
	for (uint32_t bytes = 512; bytes <= MIB; bytes *= 2)
		write_read(&a, v, bytes / 512, bytes / 512, bytes);
	wf_vol_close(v);
	/* Volumes whose blocks are 4 KiB, 64 KiB and 1 MiB. */
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = {"big", "v64k", "v1m"};
		static const uint32_t bss[] = {4096, 64u << 10, MIB};

		big = vol_open(&a, names[i]);
		WF_CHECK_EQ(wf_vol_block_size(big), bss[i]);
		WF_CHECK_EQ(wf_vol_info(big)->max_transfer_blocks, MIB / bss[i]);
		for (uint32_t bytes = bss[i]; bytes <= MIB; bytes *= 2)
			write_read(&a, big, 3, bytes / bss[i], bytes + 7);
		wf_vol_close(big);
	}
	host_close(&a);
}

static void case_span(struct env *e)
{
	static const char *const names[] = {"cat", "str", "mir", "fil"};
	struct host a;

	host_open(e, "host-a", 8, &a);
	for (int i = 0; i < 4; i++) {
		struct wf_vol *v = vol_open(&a, names[i]);
		uint64_t nb = wf_vol_nblocks(v);

		/* Across the concat seam, several stripe chunks, both mirror legs. */
		uint32_t n = (uint32_t)(MIB / wf_vol_block_size(v));

		write_read(&a, v, nb / 2 - n / 4, n / 2, 10 + i);
		write_read(&a, v, 0, n, 20 + i);
		write_read(&a, v, nb - n, n, 30 + i);
		wf_vol_close(v);
	}
	host_close(&a);
}

/* @qd commands in flight at once, then all read back and checked. */
static void run_qd(struct host *a, struct wf_vol *v, uint32_t qd, uint64_t gen)
{
	const uint32_t nb = 8, bytes = nb * 512;
	char *mem = wf_dma_alloc(a->qp, (size_t)qd * bytes);
	struct qd_io *ios = calloc(qd, sizeof(*ios));

	WF_CHECK(mem && ios);
	for (int pass = 0; pass < 2; pass++) {
		enum wf_io_op op = pass ? WF_IO_READ : WF_IO_WRITE;

		for (uint32_t i = 0; i < qd; i++) {
			char *b = mem + (size_t)i * bytes;
			uint64_t lba = (uint64_t)i * 37 * nb;

			if (pass)
				memset(b, 0, bytes);
			else
				stamp(b, bytes, lba * 512, gen);
			ios[i] = (struct qd_io){0};
			WF_CHECK_EQ(wf_qp_submit(a->qp, v, op, lba, nb, b, 0, qd_cb, &ios[i]), 0);
		}
		WF_CHECK_EQ(wf_qp_outstanding(a->qp), qd);
		while (wf_qp_outstanding(a->qp))
			WF_CHECK(wf_qp_poll(a->qp, 100) >= 0);
		for (uint32_t i = 0; i < qd; i++)
			WF_CHECK(ios[i].done && ios[i].status == 0);
	}
	for (uint32_t i = 0; i < qd; i++)
		check_stamp(mem + (size_t)i * bytes, bytes, (uint64_t)i * 37 * nb * 512, gen);
	wf_dma_free(a->qp, mem);
	free(ios);
}

static void case_qd(struct env *e)
{
	static const uint16_t depths[] = {1, 2, 8, 32, 128};

	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		struct host a;
		struct wf_vol *v;

		host_open(e, "host-a", depths[i], &a);
		v = vol_open(&a, "main");
		run_qd(&a, v, depths[i], 100 + i);
		wf_vol_close(v);
		host_close(&a);
	}
}

struct host_job {
	struct env *e;
	pthread_barrier_t *all; /* every host connected before any I/O, and until all are done */
	int idx;
	int rc;
};

static void *host_thread(void *arg)
{
	struct host_job *j = arg;
	char id[16];
	struct host h;
	struct wf_vol *v;

	snprintf(id, sizeof(id), "h%02d", j->idx);
	host_open(j->e, id, 16, &h);
	v = vol_open(&h, "main");
	pthread_barrier_wait(j->all);
	for (int round = 0; round < 8; round++)
		write_read(&h, v, (uint64_t)j->idx * HOST_BLKS + (uint64_t)round * 32, 32,
			   (uint64_t)j->idx << 8 | (uint64_t)round);
	pthread_barrier_wait(j->all);
	wf_vol_close(v);
	host_close(&h);
	j->rc = 0;
	return NULL;
}

static void case_hosts(struct env *e)
{
	pthread_t t[NHOSTS];
	struct host_job jobs[NHOSTS];
	pthread_barrier_t all;

	WF_CHECK_EQ(pthread_barrier_init(&all, NULL, NHOSTS), 0);
	for (int i = 0; i < NHOSTS; i++) {
		jobs[i] = (struct host_job){e, &all, i, -1};
		WF_CHECK_EQ(pthread_create(&t[i], NULL, host_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < NHOSTS; i++) {
		WF_CHECK_EQ(pthread_join(t[i], NULL), 0);
		WF_CHECK_EQ(jobs[i].rc, 0);
	}
	pthread_barrier_destroy(&all);
}

#define QP_THREADS 4

struct qp_job {
	struct wf_host *h;
	pthread_barrier_t *all;
	int idx;
};

/* One queue pair per thread on one shared host handle. */
static void *qp_thread(void *arg)
{
	struct qp_job *j = arg;
	struct host h = {.h = j->h};
	struct wf_vol *v;

	WF_CHECK_EQ(wf_qp_open(j->h, &h.qp), 0);
	v = vol_open(&h, "main");
	pthread_barrier_wait(j->all);
	for (int round = 0; round < 16; round++)
		write_read(&h, v, 60000 + (uint64_t)j->idx * 4096 + (uint64_t)round * 128, 128,
			   (uint64_t)j->idx << 16 | (uint64_t)round);
	pthread_barrier_wait(j->all);
	wf_vol_close(v);
	wf_qp_close(h.qp);
	return NULL;
}

static void case_threads(struct env *e)
{
	struct host a;
	pthread_t t[QP_THREADS];
	struct qp_job jobs[QP_THREADS];
	pthread_barrier_t all;

	host_open(e, "host-a", 16, &a);
	WF_CHECK_EQ(pthread_barrier_init(&all, NULL, QP_THREADS), 0);
	for (int i = 0; i < QP_THREADS; i++) {
		jobs[i] = (struct qp_job){a.h, &all, i};
		WF_CHECK_EQ(pthread_create(&t[i], NULL, qp_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < QP_THREADS; i++)
		WF_CHECK_EQ(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&all);
	host_close(&a);
}

#define SHARED_QPS 4
#define SHARED_QD  8

/* Stamped writes of SHARED_QD blocks' worth on @qp at @lba.., not waited for. */
static void submit_writes(struct wf_qp *qp, struct wf_vol *v, char *mem, uint64_t lba, uint64_t gen,
			  struct qd_io *ios)
{
	for (uint32_t i = 0; i < SHARED_QD; i++) {
		ios[i] = (struct qd_io){0};
		stamp(mem + (size_t)i * 4096, 4096, (lba + i * 8) * 512, gen);
		WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_WRITE, lba + i * 8, 8, mem + (size_t)i * 4096,
					 0, qd_cb, &ios[i]),
			    0);
	}
}

/* Read back what submit_writes() put at @lba through @qp, waiting by polling @poller. */
static void read_back(struct wf_qp *qp, struct wf_qp *poller, struct wf_vol *v, char *mem,
		      uint64_t lba, uint64_t gen)
{
	struct qd_io ios[SHARED_QD] = {0};

	memset(mem, 0, SHARED_QD * 4096);
	for (uint32_t i = 0; i < SHARED_QD; i++)
		WF_CHECK_EQ(wf_qp_submit(qp, v, WF_IO_READ, lba + i * 8, 8, mem + (size_t)i * 4096,
					 0, qd_cb, &ios[i]),
			    0);
	while (wf_qp_outstanding(qp))
		WF_CHECK(wf_qp_poll(poller, 100) >= 0);
	for (uint32_t i = 0; i < SHARED_QD; i++) {
		WF_CHECK(ios[i].done && ios[i].status == 0);
		check_stamp(mem + (size_t)i * 4096, 4096, (lba + i * 8) * 512, gen);
	}
}

/*
 * One host thread, SHARED_QPS queue pairs in one poll group: they spread evenly
 * over the target's threads, a poll of any one reaps them all, and closing one
 * (the group's first too) fails only its own I/O while the rest carry on.
 */
static void case_qpshare(struct env *e)
{
	struct qd_io ios[SHARED_QPS][SHARED_QD];
	struct wf_qp *qp[SHARED_QPS];
	char *mem[SHARED_QPS], id[16];
	struct host a, other[4];
	struct wf_vol *v;

	/*
	 * Four hosts, taken in turn by the threads; the first and third leave, so
	 * with two threads one holds both that remain. Turns alone would still
	 * give each thread two of the four below.
	 */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "h%02d", i);
		host_open(e, id, 4, &other[i]);
	}
	host_close(&other[0]);
	host_close(&other[2]);
	for (int i = 0; i < 1000 && atomic_load(&e->th.target->nconns) > 2; i++)
		usleep(5000);
	host_open(e, "host-b", SHARED_QD, &a); /* host-a, with a mirror, stays on thread 0 */
	v = vol_open(&a, "main");
	qp[0] = a.qp;
	for (int k = 1; k < SHARED_QPS; k++)
		WF_CHECK_EQ(wf_qp_open_shared(qp[0], &qp[k]), 0);
	/* The fewest connections first: the threads end up even. */
	for (uint32_t k = 0; k < e->th.target->nshards; k++)
		WF_CHECK_EQ(atomic_load(&e->th.target->shards[k]->nconns),
			    (SHARED_QPS + 2) / e->threads);
	host_close(&other[1]);
	host_close(&other[3]);
	for (int k = 0; k < SHARED_QPS; k++) {
		mem[k] = wf_dma_alloc(qp[k], SHARED_QD * 4096);
		WF_CHECK(mem[k] != NULL);
		submit_writes(qp[k], v, mem[k], 20000 + (uint64_t)k * 1024, 500 + (uint64_t)k,
			      ios[k]);
	}
	/* The last queue pair's poll reaps everyone's completions. */
	for (int k = 0; k < SHARED_QPS; k++)
		while (wf_qp_outstanding(qp[k]))
			WF_CHECK(wf_qp_poll(qp[SHARED_QPS - 1], 100) >= 0);
	for (int k = 0; k < SHARED_QPS; k++)
		for (int i = 0; i < SHARED_QD; i++)
			WF_CHECK(ios[k][i].done && ios[k][i].status == 0);
	/* What one wrote, the next reads, maybe through another target thread. */
	for (int k = 0; k < SHARED_QPS; k++)
		read_back(qp[(k + 1) % SHARED_QPS], qp[k], v, mem[(k + 1) % SHARED_QPS],
			  20000 + (uint64_t)k * 1024, 500 + (uint64_t)k);
	/* Close 1 with writes in flight on 1 and 2: 1's all end by then, 2's all succeed. */
	submit_writes(qp[1], v, mem[1], 30000, 600, ios[1]);
	submit_writes(qp[2], v, mem[2], 40000, 601, ios[2]);
	wf_qp_close(qp[1]);
	for (int i = 0; i < SHARED_QD; i++)
		WF_CHECK(ios[1][i].done &&
			 (ios[1][i].status == 0 || ios[1][i].status == -ECONNRESET ||
			  ios[1][i].status == -ECANCELED));
	while (wf_qp_outstanding(qp[2]))
		WF_CHECK(wf_qp_poll(qp[0], 100) >= 0);
	for (int i = 0; i < SHARED_QD; i++)
		WF_CHECK(ios[2][i].done && ios[2][i].status == 0);
	/* The group outlives the queue pair that made it. */
	wf_qp_close(qp[0]);
	read_back(qp[3], qp[2], v, mem[3], 40000, 601);
	wf_qp_close(qp[2]);
	read_back(qp[3], qp[3], v, mem[3], 20000, 500);
	wf_qp_close(qp[3]);
	wf_vol_close(v);
	wf_host_close(a.h);
}

/* ---- raw capsules through the transport API, for what libweft never sends ---- */

static void raw_open(struct env *e, struct th_raw *r)
{
	WF_CHECK_EQ(th_raw_dial(e->th.transport, e->th.addr, e->th.port, r, "host-a"), 0);
}

/*
 * A read answered by its data's WRITE, the completion in its immediate
 * data: the same bytes a CPL_DATA read of them brings. Not with CPL_DATA
 * (nor INV, but that asks verbs to end a key that is no window here); a
 * failure gets an ordinary completion.
 */
static void raw_cpl_imm(struct th_raw *r, struct wf_cmd *c)
{
	uint8_t want[4096];

	c->flags = WF_CMD_F_CPL_DATA;
	c->nblocks = 8;
	c->data = (struct wf_sgl){0};
	WF_CHECK_EQ(th_raw_cmd(r, c, NULL), WF_SC_SUCCESS);
	WF_CHECK_EQ(r->cpl_data, 4096);
	memcpy(want, r->buf, sizeof(want));
	memset(r->buf, 0xee, 4096);
	c->flags = WF_CMD_F_CPL_IMM;
	c->data = (struct wf_sgl){(uintptr_t)r->buf, 4096, r->mr->key};
	WF_CHECK_EQ(th_raw_cmd(r, c, NULL), WF_SC_SUCCESS);
	WF_CHECK(r->cpl_imm);
	WF_CHECK(memcmp(r->buf, want, sizeof(want)) == 0);
	c->flags = WF_CMD_F_CPL_IMM | WF_CMD_F_CPL_DATA;
	WF_CHECK_EQ(th_raw_cmd(r, c, NULL), WF_SC_INVALID_FIELD);
	c->flags = WF_CMD_F_CPL_IMM;
	c->lba = UINT64_MAX / 2;
	WF_CHECK_EQ(th_raw_cmd(r, c, NULL), WF_SC_LBA_OUT_OF_RANGE);
	WF_CHECK(!r->cpl_imm);
	c->lba = 0;
	c->data = (struct wf_sgl){0};
}

/* Malformed and out-of-order capsules: each earns its status, the connection lives on. */
static void raw_checks(struct env *e)
{
	struct wf_connect_data d = {.host = "host-a", .queue_depth = 4};
	struct wf_cmd c = {.opcode = WF_OP_KEEP_ALIVE, .version = WF_WIRE_VERSION, .cid = 7};
	uint8_t junk[WF_CMD_SIZE] = {0x10, 1, 0x34, 0x12};
	uint8_t data[WF_CONNECT_DATA_SIZE];
	struct th_raw r;

	raw_open(e, &r);
	WF_CHECK_EQ(th_raw_send(&r, junk, 10, 0x1234), WF_SC_MALFORMED);
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_NOT_CONNECTED);
	c.opcode = WF_OP_READ;
	c.volume = 1;
	c.nblocks = 1;
	c.data = (struct wf_sgl){4096, 512, 1};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_NOT_CONNECTED);
	wf_connect_data_encode(&d, data);
	c = (struct wf_cmd){.opcode = WF_OP_CONNECT,
			    .version = WF_WIRE_VERSION,
			    .cid = 1,
			    .inline_len = WF_CONNECT_DATA_SIZE};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, data), WF_SC_SUCCESS);
	WF_CHECK_EQ(th_raw_cmd(&r, &c, data), WF_SC_NOT_CONNECTED); /* CONNECT twice */
	c = (struct wf_cmd){.opcode = 0x77, .version = WF_WIRE_VERSION, .cid = 2};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_INVALID_OPCODE);
	c = (struct wf_cmd){.opcode = WF_OP_KEEP_ALIVE, .version = 9, .cid = 3};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_BAD_VERSION);
	c = (struct wf_cmd){.opcode = WF_OP_KEEP_ALIVE, .version = WF_WIRE_VERSION, .cid = 4};
	c.flags = 0x80;
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_INVALID_FIELD);
	c = (struct wf_cmd){.opcode = WF_OP_READ, .version = WF_WIRE_VERSION, .cid = 5};
	c.volume = 1;
	c.nblocks = 1;
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_INVALID_DATA); /* a read with no buffer */
	/* A read answered by a capsule of its data: as much as a capsule holds, and no more. */
	c.flags = WF_CMD_F_CPL_DATA;
	c.nblocks = 8;
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_SUCCESS);
	WF_CHECK_EQ(r.cpl_data, 4096);
	c.nblocks = 9; /* 4608 bytes: past the 4160-byte capsule */
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_INVALID_DATA);
	WF_CHECK_EQ(r.cpl_data, 0);
	raw_cpl_imm(&r, &c);
	c.flags = 0;
	c.nblocks = 1;
	c.opcode = WF_OP_WRITE;
	c.inline_len = 8; /* not the 512 bytes one block needs */
	WF_CHECK_EQ(th_raw_cmd(&r, &c, junk), WF_SC_INVALID_DATA);
	c = (struct wf_cmd){.opcode = WF_OP_KEEP_ALIVE, .version = WF_WIRE_VERSION, .cid = 6};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), WF_SC_SUCCESS);
	th_raw_close(&r);
}

/*
 * A write naming a key the host never registered: the target's RDMA READ
 * fails the transport's check, which takes that connection down (as a
 * verbs QP would go to error); only that one.
 */
static void raw_bad_key(struct env *e)
{
	struct wf_connect_data d = {.host = "host-a", .queue_depth = 4};
	struct wf_cmd c = {.opcode = WF_OP_CONNECT,
			   .version = WF_WIRE_VERSION,
			   .cid = 1,
			   .inline_len = WF_CONNECT_DATA_SIZE};
	uint8_t data[WF_CONNECT_DATA_SIZE];
	struct th_raw r;

	raw_open(e, &r);
	wf_connect_data_encode(&d, data);
	WF_CHECK_EQ(th_raw_cmd(&r, &c, data), WF_SC_SUCCESS);
	c = (struct wf_cmd){.opcode = WF_OP_WRITE, .version = WF_WIRE_VERSION, .cid = 2};
	c.volume = 1;
	c.nblocks = 64;
	c.data = (struct wf_sgl){0x10000, 64 * 512, 0xdead};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), TH_DOWN);
	th_raw_close(&r);
}

static void case_bad(struct env *e)
{
	struct host a, b, x;
	struct wf_vol *v, *bv, *priv;
	char *buf;
	uint32_t max;

	host_open(e, "host-a", 8, &a);
	host_open(e, "host-b", 8, &b);
	v = vol_open(&a, "main");
	bv = vol_open(&b, "main");
	max = wf_vol_info(v)->max_transfer_blocks;
	buf = wf_dma_alloc(a.qp, (size_t)(max + 1) * 512);
	WF_CHECK(buf != NULL);
	/* Unknown volume, and one that exists but is host-b's alone. */
	WF_CHECK_EQ(wf_vol_open(a.qp, 99, &priv), -ENOENT);
	WF_CHECK_EQ(wf_vol_open_name(a.qp, "priv", &priv), -ENOENT);
	WF_CHECK_EQ(wf_vol_open(a.qp, 6, &priv), -EACCES);
	priv = vol_open(&b, "priv");
	write_read(&b, priv, 0, 4, 55);
	/* host-a aims host-b's volume handle at its own queue: the target refuses. */
	WF_CHECK_EQ(wf_qp_io(a.qp, priv, WF_IO_READ, 0, 1, buf, 10), -EACCES);
	/* Out of range: past the end, and straddling it. */
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_READ, wf_vol_nblocks(v), 1, buf, 10), -ERANGE);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_WRITE, wf_vol_nblocks(v) - 1, 2, buf, 10), -ERANGE);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_DISCARD, UINT64_MAX - 1, 4, NULL, 10), -ERANGE);
	/* Oversized transfer. */
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_READ, 0, max + 1, buf, 10), -E2BIG);
	WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_WRITE, 0, max + 1, buf, 10), -E2BIG);
	/* A host in no allow line is refused at connect. */
	/* Refused with a reason, and the reason reaches the host's caller. */
	WF_CHECK_EQ(host_try(e, "stranger", 8, &x), -EACCES);
	/* Queue depth above the target's. */
	WF_CHECK(host_try(e, "host-a", 1024, &x) < 0);
	raw_checks(e);
	raw_bad_key(e);
	/* After all that, both hosts still work. */
	write_read(&a, v, 1000, 16, 77);
	write_read(&b, bv, 2000, 16, 78);
	write_read(&b, priv, 8, 4, 79);
	WF_CHECK_EQ(wf_qp_keep_alive(a.qp), 0);
	wf_dma_free(a.qp, buf);
	wf_vol_close(v);
	wf_vol_close(bv);
	wf_vol_close(priv);
	host_close(&a);
	host_close(&b);
}

/* Stop with I/O still in flight: it completes, hosts are let go, run() returns 0. */
static void case_drain(struct env *e)
{
	struct host a;
	struct wf_vol *v;
	struct qd_io ios[32] = {0};
	char *mem;

	host_open(e, "host-a", 32, &a);
	v = vol_open(&a, "main");
	mem = wf_dma_alloc(a.qp, 32 * 4096);
	WF_CHECK(mem != NULL);
	for (int i = 0; i < 32; i++)
		WF_CHECK_EQ(wf_qp_submit(a.qp, v, WF_IO_WRITE, (uint64_t)i * 8, 8,
					 mem + (size_t)i * 4096, 0, qd_cb, &ios[i]),
			    0);
	env_stop(e);
	while (wf_qp_outstanding(a.qp))
		WF_CHECK(wf_qp_poll(a.qp, 100) >= 0);
	for (int i = 0; i < 32; i++)
		WF_CHECK(ios[i].done && (ios[i].status == 0 || ios[i].status == -ECANCELED ||
					 ios[i].status == -ECONNRESET));
	wf_dma_free(a.qp, mem);
	wf_vol_close(v);
	host_close(&a);
}

/* Every shard holds at least one of the connections open now: they were spread. */
static void check_spread(struct env *e)
{
	WF_CHECK_EQ(e->th.target->nshards, e->threads);
	for (uint32_t k = 0; k < e->th.target->nshards; k++)
		WF_CHECK(atomic_load(&e->th.target->shards[k]->nconns) >= 1);
}

/*
 * Hosts on different threads see one volume: what one writes through its
 * thread's device instance, the next reads through another's.
 */
static void case_shared(struct env *e)
{
	struct host h[NHOSTS];
	struct wf_vol *v[NHOSTS];
	char id[16];
	int n = (int)e->threads * 2;

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "h%02d", i);
		host_open(e, id, 16, &h[i]);
		v[i] = vol_open(&h[i], "main");
	}
	check_spread(e);
	for (int i = 0; i < n; i++) {
		struct host *w = &h[i], *r = &h[(i + 1) % n];
		uint32_t bs = wf_vol_block_size(v[i]);
		size_t len = 64 * (size_t)bs;
		uint64_t lba = 100000 + (uint64_t)i * 64;
		char *wb = aligned_alloc(4096, len), *rb = aligned_alloc(4096, len);

		WF_CHECK(wb && rb);
		stamp(wb, len, lba * bs, 77 + (uint64_t)i);
		memset(rb, 0, len);
		WF_CHECK_EQ(wf_qp_io(w->qp, v[i], WF_IO_WRITE, lba, 64, wb, 10), 0);
		WF_CHECK_EQ(wf_qp_io(r->qp, v[(i + 1) % n], WF_IO_READ, lba, 64, rb, 10), 0);
		check_stamp(rb, len, lba * bs, 77 + (uint64_t)i);
		wf_qp_buf_release(w->qp, wb, len);
		wf_qp_buf_release(r->qp, rb, len);
		free(wb);
		free(rb);
	}
	for (int i = 0; i < n; i++) {
		wf_vol_close(v[i]);
		host_close(&h[i]);
	}
}

#define DRAIN_HOSTS 8

/* Stop with I/O in flight from hosts on every thread: each drains, run() returns 0. */
static void case_drainmany(struct env *e)
{
	struct host h[DRAIN_HOSTS];
	struct wf_vol *v[DRAIN_HOSTS];
	struct qd_io ios[DRAIN_HOSTS][16];
	char *mem[DRAIN_HOSTS], id[16];

	memset(ios, 0, sizeof(ios));
	for (int i = 0; i < DRAIN_HOSTS; i++) {
		snprintf(id, sizeof(id), "h%02d", i);
		host_open(e, id, 16, &h[i]);
		v[i] = vol_open(&h[i], "main");
		mem[i] = wf_dma_alloc(h[i].qp, 16 * 4096);
		WF_CHECK(mem[i] != NULL);
	}
	check_spread(e);
	for (int i = 0; i < DRAIN_HOSTS; i++)
		for (int j = 0; j < 16; j++)
			WF_CHECK_EQ(wf_qp_submit(h[i].qp, v[i], WF_IO_WRITE,
						 (uint64_t)(i * 16 + j) * 8, 8,
						 mem[i] + (size_t)j * 4096, 0, qd_cb, &ios[i][j]),
				    0);
	env_stop(e);
	for (int i = 0; i < DRAIN_HOSTS; i++) {
		while (wf_qp_outstanding(h[i].qp))
			WF_CHECK(wf_qp_poll(h[i].qp, 100) >= 0);
		for (int j = 0; j < 16; j++)
			WF_CHECK(ios[i][j].done &&
				 (ios[i][j].status == 0 || ios[i][j].status == -ECANCELED ||
				  ios[i][j].status == -ECONNRESET));
		wf_dma_free(h[i].qp, mem[i]);
		wf_vol_close(v[i]);
		host_close(&h[i]);
	}
}

/* Poll @h for @ms milliseconds, as an idle but attentive host does. */
static void idle_poll(struct host *h, uint64_t ms)
{
	struct timespec ts;
	uint64_t end;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + ms;
	for (;;) {
		WF_CHECK(wf_qp_poll(h->qp, 50) >= 0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 >= end)
			return;
	}
}

/*
 * keep_alive_timeout 1: a host that sends nothing for a second is dropped
 * by the target; one whose libweft sends KEEP_ALIVEs stays; and a dropped
 * host that may reconnect does so when next used, its volume handle intact.
 */
static void case_keepalive(struct env *e)
{
	struct host a, b, c;
	struct wf_vol *va, *vb, *vc;
	char buf[4096];

	e->ka_ms = 0;
	host_open(e, "host-a", 8, &a);
	va = vol_open(&a, "main");
	write_read(&a, va, 0, 8, 1);
	sleep(2);
	WF_CHECK_EQ(atomic_load(&e->th.target->nconns), 0);
	WF_CHECK(wf_qp_io(a.qp, va, WF_IO_READ, 0, 8, buf, 5) < 0);

	e->ka_ms = 200;
	host_open(e, "host-b", 8, &b);
	vb = vol_open(&b, "main");
	idle_poll(&b, 2500);
	WF_CHECK_EQ(atomic_load(&e->th.target->nconns), 1);
	write_read(&b, vb, 16, 8, 2);

	e->ka_ms = 0;
	e->reconnect_ms = 5000;
	host_open(e, "host-a", 8, &c);
	vc = vol_open(&c, "main");
	write_read(&c, vc, 32, 8, 3);
	sleep(2);
	write_read(&c, vc, 32, 8, 4);
	WF_CHECK_EQ(wf_qp_reconnects(c.qp), 1);
	wf_vol_close(va);
	wf_vol_close(vb);
	wf_vol_close(vc);
	host_close(&a);
	host_close(&b);
	host_close(&c);
	e->reconnect_ms = 0;
	e->ka_ms = -1;
}

/* Resident set size in KiB, and open fds, of this process: target and hosts both. */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	WF_CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int fd_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	WF_CHECK(d != NULL);
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* The target lets go of closed hosts asynchronously: wait (boundedly) for none left. */
static void wait_no_hosts(struct env *e)
{
	for (int i = 0; i < 1000 && atomic_load(&e->th.target->nconns); i++)
		usleep(5000);
	WF_CHECK_EQ(atomic_load(&e->th.target->nconns), 0);
}

/*
 * The sum of every "KEY N" that rdma(8) @args prints, over all devices, for
 * each of the @n keys; -1 over TCP, where there is no device. A key rdma(8)
 * does not print fails the test: zero must be a reading, not a default.
 */
static long rdma_count(const struct env *e, const char *args, const char *const *keys, int n)
{
	char out[8192], cmd[128], key[40];
	size_t len = 0, got;
	long sum = 0;
	FILE *f;

	if (strcmp(e->th.transport, "rdma"))
		return -1;
	snprintf(cmd, sizeof(cmd), "rdma %s 2>/dev/null | tr '\\n' ' '", args);
	f = popen(cmd, "r");
	WF_CHECK(f != NULL);
	while (len + 1 < sizeof(out) && (got = fread(out + len, 1, sizeof(out) - 1 - len, f)) > 0)
		len += got;
	out[len] = '\0';
	WF_CHECK_EQ(pclose(f), 0);
	for (int k = 0; k < n; k++) {
		const char *p;

		snprintf(key, sizeof(key), " %s ", keys[k]);
		p = strstr(out, key);
		WF_CHECK(p != NULL);
		for (; p; p = strstr(p + 1, key))
			sum += strtol(p + strlen(key), NULL, 10);
	}
	return sum;
}

/* RNR NAKs sent and received so far: each a SEND that met an empty receive queue. */
static long rnr_naks(const struct env *e)
{
	static const char *const keys[] = {"rcvd_rnr_err", "send_rnr_err"};

	return rdma_count(e, "statistic show link", keys, 2);
}

#define MANY_QD 128

struct many_job {
	struct env *e;
	pthread_barrier_t *all;
	int idx;
	int rounds; /* completed with every block checked */
	long rss[2];
};

/* One of 64 hosts: rounds of 128 writes in flight, then 128 reads, all checked. */
static void *many_thread(void *arg)
{
	struct many_job *j = arg;
	const uint32_t nb = 8, bytes = nb * 512;
	uint64_t base = (uint64_t)j->idx * MANY_QD * nb;
	struct qd_io ios[MANY_QD];
	struct wf_vol *v;
	struct host h;
	char id[16], *mem;

	snprintf(id, sizeof(id), "h%02d", j->idx);
	host_open(j->e, id, MANY_QD, &h);
	v = vol_open(&h, "main");
	mem = wf_dma_alloc(h.qp, (size_t)MANY_QD * bytes);
	WF_CHECK(mem != NULL);
	pthread_barrier_wait(j->all);
	for (int round = 0; round < j->e->rounds; round++) {
		for (int pass = 0; pass < 2; pass++) {
			for (uint32_t i = 0; i < MANY_QD; i++) {
				char *b = mem + (size_t)i * bytes;
				uint64_t lba = base + (uint64_t)i * nb;

				if (pass)
					memset(b, 0, bytes);
				else
					stamp(b, bytes, lba * 512,
					      (uint64_t)j->idx << 8 | (uint64_t)round);
				ios[i] = (struct qd_io){0};
				WF_CHECK_EQ(wf_qp_submit(h.qp, v, pass ? WF_IO_READ : WF_IO_WRITE,
							 lba, nb, b, 0, qd_cb, &ios[i]),
					    0);
			}
			while (wf_qp_outstanding(h.qp))
				WF_CHECK(wf_qp_poll(h.qp, 100) >= 0);
			for (uint32_t i = 0; i < MANY_QD; i++) {
				WF_CHECK(ios[i].done);
				WF_CHECK_EQ(ios[i].status, 0);
			}
		}
		for (uint32_t i = 0; i < MANY_QD; i++)
			check_stamp(mem + (size_t)i * bytes, bytes, (base + (uint64_t)i * nb) * 512,
				    (uint64_t)j->idx << 8 | (uint64_t)round);
		j->rounds++;
		/* After round 2 every host is connected and warmed up: the baseline; then the end.
		 */
		if (round != 1 && round != j->e->rounds - 1)
			continue;
		pthread_barrier_wait(j->all);
		if (j->idx == 0)
			j->rss[round != 1] = rss_kib();
		pthread_barrier_wait(j->all);
	}
	wf_dma_free(h.qp, mem);
	wf_vol_close(v);
	host_close(&h);
	return NULL;
}

/*
 * 64 hosts at queue depth 128 on one target, 8192 commands in flight
 * against 32 small buffers and one shared receive queue per poll group:
 * every host finishes every round, and memory does not grow once all are
 * connected and warmed up (requests and buffers are pools made at start).
 */
static void case_many(struct env *e)
{
	pthread_t t[MANY_HOSTS];
	struct many_job jobs[MANY_HOSTS];
	pthread_barrier_t all;
	long rnr0 = rnr_naks(e);

	WF_CHECK_EQ(pthread_barrier_init(&all, NULL, MANY_HOSTS), 0);
	for (int i = 0; i < MANY_HOSTS; i++) {
		jobs[i] = (struct many_job){.e = e, .all = &all, .idx = i};
		WF_CHECK_EQ(pthread_create(&t[i], NULL, many_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < MANY_HOSTS; i++)
		WF_CHECK_EQ(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < MANY_HOSTS; i++)
		WF_CHECK_EQ(jobs[i].rounds, e->rounds);
	printf("e2e many: %d hosts x qd %d: RSS %ld KiB after 2 rounds, %ld KiB at the end\n",
	       MANY_HOSTS, MANY_QD, jobs[0].rss[0], jobs[0].rss[1]);
	WF_CHECK(jobs[0].rss[1] - jobs[0].rss[0] < 16 * 1024);
	/* A receive for every command the hosts may have out, back before each completion. */
	WF_CHECK_EQ(rnr_naks(e), rnr0);
	pthread_barrier_destroy(&all);
	wait_no_hosts(e);
}

/* The devices' count of one resource (qp, mr, cq, cm_id...) over every process. */
static long rdma_res(const struct env *e, const char *what)
{
	return rdma_count(e, "resource show", &what, 1);
}

/*
 * Hosts come and go 1000 times (host handle, queue pair, identify, one
 * write, close): neither side may keep an fd, memory, a connection or a
 * device resource (QP, MR, CQ, CM id) for any of them. Counted after 100
 * cycles, when allocator caches are warm.
 */
static void case_cycles(struct env *e)
{
	static const char *const res[] = {"qp", "mr", "cq", "cm_id"};
	long rss0 = 0, rss1, dev0[4] = {0}, dev1;
	int fds0 = 0, fds1;
	char buf[512];

	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < e->cycles; i++) {
		struct host a;
		struct wf_vol *v;

		host_open(e, "host-a", 16, &a);
		v = vol_open(&a, "main");
		WF_CHECK_EQ(wf_qp_io(a.qp, v, WF_IO_WRITE, (uint64_t)i, 1, buf, 10), 0);
		wf_vol_close(v);
		host_close(&a);
		if (i == e->cycles / 10) {
			wait_no_hosts(e);
			rss0 = rss_kib();
			fds0 = fd_count();
			for (int r = 0; r < 4; r++)
				dev0[r] = rdma_res(e, res[r]);
		}
	}
	wait_no_hosts(e);
	rss1 = rss_kib();
	fds1 = fd_count();
	printf("e2e cycles: %d connects: RSS %ld -> %ld KiB, fds %d -> %d\n", e->cycles, rss0, rss1,
	       fds0, fds1);
	WF_CHECK_EQ(fds1, fds0);
	for (int r = 0; r < 4; r++) {
		dev1 = rdma_res(e, res[r]);
		if (dev1 >= 0)
			printf("e2e cycles: rxe %s %ld -> %ld\n", res[r], dev0[r], dev1);
		WF_CHECK_EQ(dev1, dev0[r]);
	}
#ifndef __SANITIZE_ADDRESS__
	WF_CHECK(rss1 - rss0 < 4 * 1024);
#endif /* ASan keeps freed memory in quarantine; its leak check at exit stands in */
}

static atomic_uint *orphans_of(struct env *e, const char *host)
{
	for (uint32_t i = 0; i < e->th.target->nhosts; i++)
		if (!strcmp(e->th.target->hosts[i].id, host))
			return &e->th.target->hosts[i].orphans;
	WF_CHECK(!"host not in the target's table");
	return NULL;
}

struct fenced_open {
	struct env *e;
	struct host h;
	atomic_int rc; /* 1 until the open returns */
};

static void *fenced_open_thread(void *arg)
{
	struct fenced_open *f = arg;

	atomic_store(&f->rc, host_try(f->e, "host-a", 64, &f->h));
	return NULL;
}

/*
 * A host whose connection died with commands still out (orphans) gets its
 * next CONNECT answered only once they are done, so a write it sends again
 * cannot be overtaken by the original. Held orphans are stood in for by the
 * count itself: a CONNECT that came back while it is up means no fence.
 * Then real ones: a queue of writes abandoned mid-flight drains to 0.
 */
static void case_fence(struct env *e)
{
	atomic_uint *orph = orphans_of(e, "host-a");
	struct fenced_open f = {.e = e, .rc = 1};
	struct qd_io ios[64] = {{0}};
	struct wf_vol *v;
	pthread_t th;
	char *buf;

	atomic_store(orph, 1);
	WF_CHECK_EQ(pthread_create(&th, NULL, fenced_open_thread, &f), 0);
	usleep(500 * 1000);
	WF_CHECK_EQ(atomic_load(&f.rc), 1);
	atomic_store(orph, 0);
	WF_CHECK_EQ(pthread_join(th, NULL), 0);
	WF_CHECK_EQ(atomic_load(&f.rc), 0);

	v = vol_open(&f.h, "fil");
	buf = wf_dma_alloc(f.h.qp, 64 * 4096);
	WF_CHECK(buf != NULL);
	for (int i = 0; i < 64; i++)
		WF_CHECK_EQ(wf_qp_submit(f.h.qp, v, WF_IO_WRITE, (uint64_t)i * 8, 8,
					 buf + (size_t)i * 4096, 0, qd_cb, &ios[i]),
			    0);
	/* Gone with its writes out: each is answered with an error or not at all. */
	wf_dma_free(f.h.qp, buf);
	wf_vol_close(v);
	host_close(&f.h);
	wait_no_hosts(e);
	WF_CHECK_EQ(atomic_load(orph), 0);

	/* Nothing out any more: the next connection is answered at once and works. */
	host_open(e, "host-a", 8, &f.h);
	v = vol_open(&f.h, "fil");
	write_read(&f.h, v, 0, 8, 5);
	wf_vol_close(v);
	host_close(&f.h);
	wait_no_hosts(e);
}

struct test_case {
	const char *name;
	void (*fn)(struct env *e);
};

/* Config lines a case needs beyond the common ones. */
static const char *case_conf(const char *name)
{
	return !strcmp(name, "keepalive") ? "keep_alive_timeout 1\n" : NULL;
}

static const struct test_case cases[] = {
    {"opcodes", case_opcodes},	   {"sizes", case_sizes},
    {"span", case_span},	   {"qd", case_qd},
    {"hosts", case_hosts},	   {"bad", case_bad},
    {"threads", case_threads},	   {"drain", case_drain},
    {"shared", case_shared},	   {"drainmany", case_drainmany},
    {"keepalive", case_keepalive}, {"many", case_many},
    {"cycles", case_cycles},	   {"fence", case_fence},
    {"qpshare", case_qpshare},
};

int main(int argc, char **argv)
{
	struct env e = {.th = {.transport = "tcp", .addr = "127.0.0.1"},
			.threads = 1,
			.ka_ms = -1,
			.windows = 1,
			.cycles = 1000,
			.rounds = 12};
	const char *which = "all";
	int c;

	while ((c = getopt(argc, argv, "t:c:n:k:r:WI")) != -1) {
		if (c == 't')
			e.th.transport = optarg;
		else if (c == 'c')
			which = optarg;
		else if (c == 'n')
			e.threads = (unsigned)atoi(optarg);
		else if (c == 'k')
			e.cycles = atoi(optarg);
		else if (c == 'r' && atoi(optarg) >= 3)
			e.rounds = atoi(optarg);
		else if (c == 'W')
			e.windows = 0;
		else if (c == 'I')
			e.cpl_imm = 1;
		else
			return 2;
	}
	if (!strcmp(e.th.transport, "rdma")) {
		e.th.addr = getenv("WEFT_RXE_ADDR");
		WF_CHECK(e.th.addr != NULL);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(which, "all") && strcmp(which, cases[i].name))
			continue;
		e.conf = case_conf(cases[i].name);
		env_start(&e);
		cases[i].fn(&e);
		if (cases[i].fn != case_drain && cases[i].fn != case_drainmany)
			env_stop(&e);
		printf("e2e %s %s: ok\n", e.th.transport, cases[i].name);
	}
	return 0;
}
