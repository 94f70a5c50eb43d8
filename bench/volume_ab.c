// SPDX-License-Identifier: MIT
/*
 * volume_ab: what one volume costs against another, through weftd, with the
 * machine's noise taken out as far as one run can. One queue pair drives 4 KiB
 * I/O at a fixed depth against volume A, then B, then B, then A (ABBA), in
 * short slices, draining between them. Both sides share the connection, the
 * weftd thread and whatever state their batching settles into, so a slice
 * pair differs in the volume and little else. Each adjacent A/B pair gives a
 * ratio; the result is their geometric mean with a 95% confidence interval.
 * With --target-pid, the target's CPU time per I/O is compared the same way,
 * from the nanosecond run times in /proc/PID/task/TID/schedstat.
 *
 * Usage: volume_ab --addr A --port P --host ID VOL_A VOL_B
 *        [--transport tcp|rdma] [--qd N] [--pattern randread|randwrite]
 *        [--slice-ms MS] [--pairs N] [--warm-ms MS] [--target-pid PID]
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "core/spin.h"

#define BLOCK_BYTES 4096u

struct opts {
	struct wf_host_opts host;
	const char *vol[2];
	const char *pattern;
	uint32_t qd, slice_ms, pairs, warm_ms;
	long target_pid;
};

struct run {
	struct wf_qp *qp;
	struct wf_vol *vol[2];
	void **bufs;
	uint32_t qd, outstanding;
	bool write;
	uint64_t rng, ios, errors;
};

/* A slice on one volume: what it did and what it cost. */
struct slice {
	uint64_t ios, wall_ns, cpu_ns;
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Sum of every thread's run time, so a target with several threads counts whole. */
static int target_cpu_ns(long pid, uint64_t *out)
{
	char path[64];
	struct dirent *de;
	DIR *d;

	*out = 0;
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		unsigned long long ns;
		char file[sizeof(path) + sizeof(de->d_name) + 16];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s/schedstat", path, de->d_name);
		f = fopen(file, "r");
		if (!f)
			continue; /* the thread ended between readdir and open */
		if (fscanf(f, "%llu", &ns) == 1)
			*out += ns;
		fclose(f);
	}
	closedir(d);
	return 0;
}

static void io_done(void *arg, int status)
{
	struct run *r = arg;

	r->outstanding--;
	if (status)
		r->errors++;
	else
		r->ios++;
}

/* Buffers are taken round robin and their data is not checked: this measures, it does not verify.
 */
static int submit(struct run *r, struct wf_vol *v, uint32_t slot)
{
	uint64_t lba = next_rand(&r->rng) % wf_vol_nblocks(v);
	int rc = wf_qp_submit(r->qp, v, r->write ? WF_IO_WRITE : WF_IO_READ, lba, 1, r->bufs[slot],
			      0, io_done, r);

	if (!rc)
		r->outstanding++;
	return rc;
}

/*
 * Keep @qd commands on volume @which for @ms, then drain, so the next slice
 * starts from an empty queue whichever volume it is on.
 */
static int run_slice(struct run *r, const struct opts *o, int which, uint32_t ms, struct slice *s)
{
	uint64_t t0 = wf_now_ns(), end = t0 + (uint64_t)ms * 1000000ull, cpu0, cpu1;
	uint64_t ios0 = r->ios;
	uint32_t slot = 0;
	int rc;

	rc = target_cpu_ns(o->target_pid, &cpu0);
	if (rc)
		return rc;
	while (wf_now_ns() < end || r->outstanding) {
		while (r->outstanding < r->qd && wf_now_ns() < end) {
			rc = submit(r, r->vol[which], slot);
			if (rc == -EAGAIN)
				break;
			if (rc)
				return rc;
			slot = (slot + 1) % r->qd;
		}
		rc = wf_qp_poll(r->qp, 1);
		if (rc < 0)
			return rc;
	}
	s->wall_ns = wf_now_ns() - t0;
	rc = target_cpu_ns(o->target_pid, &cpu1);
	if (rc)
		return rc;
	s->ios = r->ios - ios0;
	s->cpu_ns = cpu1 - cpu0;
	return r->errors ? -EIO : 0;
}

/* Student t, two-sided 95%, for @df degrees of freedom. */
static double t95(uint32_t df)
{
	static const double t[] = {12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
				   2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
				   2.131, 2.120, 2.110, 2.101, 2.093, 2.086};

	if (df == 0)
		return INFINITY;
	if (df <= 20)
		return t[df - 1];
	return df <= 30 ? 2.086 - (df - 20) * 0.0044 : df <= 60 ? 2.042 - (df - 30) * 0.0014 : 1.98;
}

/* Geometric mean of @n ratios and its 95% interval, from the mean and spread of their logs. */
static void ratio_ci(const double *ratio, uint32_t n, double out[3])
{
	double sum = 0, sq = 0, mean, sd, half;

	for (uint32_t i = 0; i < n; i++)
		sum += log(ratio[i]);
	mean = sum / n;
	for (uint32_t i = 0; i < n; i++)
		sq += (log(ratio[i]) - mean) * (log(ratio[i]) - mean);
	sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
	half = t95(n - 1) * sd / sqrt((double)n);
	out[0] = exp(mean);
	out[1] = exp(mean - half);
	out[2] = exp(mean + half);
}

static double per_io(uint64_t v, uint64_t ios)
{
	return ios ? (double)v / (double)ios : 0;
}

/* ABBA slices, each pair one A and one B in alternating order; prints one RESULT line. */
static int measure(struct run *r, const struct opts *o)
{
	double *iops = calloc(o->pairs, sizeof(double)), *cpu = calloc(o->pairs, sizeof(double));
	struct slice tot[2] = {{0}}, s[2], warm;
	double ci_iops[3], ci_cpu[3];
	int rc = -ENOMEM;

	if (!iops || !cpu)
		goto out;
	for (int v = 0; v < 2; v++) {
		rc = run_slice(r, o, v, o->warm_ms / 2, &warm);
		if (rc)
			goto out;
	}
	for (uint32_t p = 0; p < o->pairs; p++) {
		int first = p % 2;

		for (int k = 0; k < 2; k++) {
			int v = k ? !first : first;

			rc = run_slice(r, o, v, o->slice_ms, &s[v]);
			if (rc)
				goto out;
			tot[v].ios += s[v].ios;
			tot[v].wall_ns += s[v].wall_ns;
			tot[v].cpu_ns += s[v].cpu_ns;
		}
		if (!s[0].ios || !s[1].ios) {
			rc = -EIO;
			goto out;
		}
		/* IOPS of B over A; CPU per I/O of B over A. */
		iops[p] = per_io(s[0].wall_ns, s[0].ios) / per_io(s[1].wall_ns, s[1].ios);
		cpu[p] = o->target_pid > 0 && s[0].cpu_ns && s[1].cpu_ns
			     ? per_io(s[1].cpu_ns, s[1].ios) / per_io(s[0].cpu_ns, s[0].ios)
			     : 1;
	}
	ratio_ci(iops, o->pairs, ci_iops);
	ratio_ci(cpu, o->pairs, ci_cpu);
	printf("RESULT pattern=%s qd=%u pairs=%u slice_ms=%u iops_a=%.0f iops_b=%.0f "
	       "iops_ratio=%.4f iops_lo=%.4f iops_hi=%.4f",
	       o->pattern, o->qd, o->pairs, o->slice_ms, 1e9 / per_io(tot[0].wall_ns, tot[0].ios),
	       1e9 / per_io(tot[1].wall_ns, tot[1].ios), ci_iops[0], ci_iops[1], ci_iops[2]);
	if (o->target_pid > 0)
		printf(" cpu_ns_a=%.0f cpu_ns_b=%.0f cpu_ratio=%.4f cpu_lo=%.4f cpu_hi=%.4f",
		       per_io(tot[0].cpu_ns, tot[0].ios), per_io(tot[1].cpu_ns, tot[1].ios),
		       ci_cpu[0], ci_cpu[1], ci_cpu[2]);
	printf("\n");
	rc = 0;
out:
	free(iops);
	free(cpu);
	return rc;
}

static int setup(struct run *r, const struct opts *o, struct wf_host **h)
{
	int rc = wf_host_open(&o->host, h);

	if (rc)
		return rc;
	rc = wf_qp_open(*h, &r->qp);
	if (rc)
		return rc;
	for (int v = 0; v < 2; v++) {
		rc = wf_vol_open_name(r->qp, o->vol[v], &r->vol[v]);
		if (rc)
			return rc;
		if (wf_vol_block_size(r->vol[v]) != BLOCK_BYTES)
			return -EINVAL;
	}
	r->qd = o->qd;
	r->write = !strcmp(o->pattern, "randwrite");
	r->rng = 0x9e3779b97f4a7c15ull;
	r->bufs = calloc(o->qd, sizeof(*r->bufs));
	if (!r->bufs)
		return -ENOMEM;
	for (uint32_t i = 0; i < o->qd; i++) {
		r->bufs[i] = wf_dma_alloc(r->qp, BLOCK_BYTES);
		if (!r->bufs[i])
			return -ENOMEM;
		memset(r->bufs[i], (int)i, BLOCK_BYTES);
	}
	return 0;
}

static void teardown(struct run *r, struct wf_host *h)
{
	for (uint32_t i = 0; r->bufs && i < r->qd; i++)
		if (r->bufs[i])
			wf_dma_free(r->qp, r->bufs[i]);
	free(r->bufs);
	for (int v = 0; v < 2; v++)
		if (r->vol[v])
			wf_vol_close(r->vol[v]);
	if (r->qp)
		wf_qp_close(r->qp);
	if (h)
		wf_host_close(h);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"addr", required_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"host", required_argument, NULL, 'h'},
	    {"transport", required_argument, NULL, 't'},
	    {"qd", required_argument, NULL, 'q'},
	    {"pattern", required_argument, NULL, 'P'},
	    {"slice-ms", required_argument, NULL, 's'},
	    {"pairs", required_argument, NULL, 'n'},
	    {"warm-ms", required_argument, NULL, 'w'},
	    {"target-pid", required_argument, NULL, 'T'},
	    {0},
	};
	int c;

	wf_host_opts_default(&o->host);
	o->host.transport = "tcp";
	o->pattern = "randread";
	o->qd = 32;
	o->slice_ms = 100;
	o->pairs = 50;
	o->warm_ms = 1000;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			o->host.addr = optarg;
			break;
		case 'p':
			o->host.port = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			o->host.host_id = optarg;
			break;
		case 't':
			o->host.transport = optarg;
			break;
		case 'q':
			o->qd = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			o->pattern = optarg;
			break;
		case 's':
			o->slice_ms = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			o->pairs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			o->warm_ms = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'T':
			o->target_pid = strtol(optarg, NULL, 0);
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 2 || !o->host.addr || !o->qd || o->qd > 1024 || !o->slice_ms ||
	    o->pairs < 2 || (strcmp(o->pattern, "randread") && strcmp(o->pattern, "randwrite")))
		return -EINVAL;
	o->host.queue_depth = (uint16_t)o->qd;
	o->vol[0] = argv[optind];
	o->vol[1] = argv[optind + 1];
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct run r = {0};
	struct wf_host *h = NULL;
	int rc;

	if (parse(argc, argv, &o)) {
		fprintf(stderr,
			"usage: %s --addr A --port P --host ID VOL_A VOL_B [--transport T] "
			"[--qd N] [--pattern randread|randwrite] [--slice-ms MS] "
			"[--pairs N] [--warm-ms MS] [--target-pid PID]\n",
			argv[0]);
		return 2;
	}
	rc = setup(&r, &o, &h);
	if (!rc)
		rc = measure(&r, &o);
	if (rc)
		fprintf(stderr, "volume_ab: %s\n", strerror(-rc));
	teardown(&r, h);
	return rc ? 1 : 0;
}
