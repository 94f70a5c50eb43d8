// SPDX-License-Identifier: MIT
// The volume layer sits on every I/O: extent lookup, request splitting and
// pool traffic must stay cheap, and a 4 KiB I/O through a volume should cost
// at most 5% more than the same I/O on the device directly.
#include <benchmark/benchmark.h>

#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <vector>

extern "C" {
#include "core/bdev.h"
#include "core/bdev_null.h"
#include "core/bdev_ram.h"
#include "core/extent_map.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/volume.h"
}

namespace
{

constexpr uint32_t kBlock = 4096;
constexpr int kDepth = 32;

uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void BM_ExtentLookup(benchmark::State &state)
{
	uint32_t n = (uint32_t)state.range(0);
	struct wf_extent_map map;
	uint64_t seed = 42;
	std::vector<uint64_t> offs(4096);

	if (wf_extent_map_init(&map, n))
		state.SkipWithError("no memory");
	for (uint32_t i = 0; i < n; i++)
		wf_extent_map_append(&map, nullptr, 0, (1 + next_rand(&seed) % 64) * 512);
	for (auto &o : offs) {
		o = next_rand(&seed) % map.size;
		const struct wf_extent *e = &map.ext[wf_extent_map_find(&map, o)];

		// A lookup that is fast because it is wrong must not pass as a result.
		if (o < e->start || o >= e->start + e->len)
			state.SkipWithError("lookup returned the wrong extent");
	}
	size_t i = 0;
	for (auto _ : state) {
		benchmark::DoNotOptimize(wf_extent_map_find(&map, offs[i]));
		i = (i + 1) & (offs.size() - 1);
	}
	wf_extent_map_fini(&map);
}
BENCHMARK(BM_ExtentLookup)->Arg(1)->Arg(1024)->Arg(1 << 20);

void BM_PoolGetPut(benchmark::State &state)
{
	struct wf_pool pool;

	if (wf_pool_init(&pool, sizeof(struct wf_bdev_io), 1024))
		state.SkipWithError("no memory");
	for (auto _ : state) {
		void *p = wf_pool_get(&pool);

		benchmark::DoNotOptimize(p);
		wf_pool_put(&pool, p);
	}
	wf_pool_fini(&pool);
}
BENCHMARK(BM_PoolGetPut);

struct Waiter {
	int done = 0;
};

void count_done(struct wf_bdev_io *io, int)
{
	static_cast<Waiter *>(io->cb_arg)->done++;
}

// A request that spans 3 extents of a linear volume over null devices: split, send, complete.
void BM_SplitSpanning(benchmark::State &state)
{
	struct wf_bdev *devs[3], *vol;
	struct wf_volume_conf conf = {"span", nullptr, 64};
	struct wf_bdev_io io;
	Waiter w;
	void *buf = aligned_alloc(kBlock, 3 * kBlock);

	for (auto &d : devs)
		wf_bdev_null_create(&d, "null", kBlock, kBlock, nullptr);
	wf_volume_concat_create(&vol, &conf, devs, 3);
	for (auto _ : state) {
		wf_bdev_io_prep(&io, WF_BDEV_READ, 0, 3 * kBlock, buf, count_done, &w);
		wf_bdev_submit(vol, &io);
		wf_bdev_poll(vol);
	}
	if (w.done != (int)state.iterations())
		state.SkipWithError("lost completions");
	wf_bdev_close(vol);
	for (auto &d : devs)
		wf_bdev_close(d);
	free(buf);
}
BENCHMARK(BM_SplitSpanning);

// One queue-depth-32 round of 4 KiB writes on @bdev, polled to completion.
struct Qd {
	struct wf_bdev_io ios[kDepth];
	void *bufs[kDepth];
	uint64_t next = 0;
	Waiter w;

	Qd()
	{
		for (auto &b : bufs)
			b = aligned_alloc(kBlock, kBlock);
	}
	~Qd()
	{
		for (auto &b : bufs)
			free(b);
	}
	void round(struct wf_bdev *bdev)
	{
		uint64_t blocks = bdev->geo.size / kBlock;

		w.done = 0;
		for (int i = 0; i < kDepth; i++) {
			wf_bdev_io_prep(&ios[i], WF_BDEV_WRITE, (next++ % blocks) * kBlock, kBlock,
					bufs[i], count_done, &w);
			wf_bdev_submit(bdev, &ios[i]);
		}
		while (w.done < kDepth)
			wf_bdev_poll(bdev);
	}
};

using Maker = int (*)(struct wf_bdev **, const char *, uint64_t, uint32_t, struct wf_log *);

struct Pair {
	struct wf_bdev *dev = nullptr, *vol = nullptr;

	explicit Pair(Maker make)
	{
		struct wf_volume_conf conf = {"vol", nullptr, 256};

		make(&dev, "dev", 64ull << 20, kBlock, nullptr);
		wf_volume_carve_create(&vol, &conf, dev, 0, dev->geo.size);
	}
	~Pair()
	{
		wf_bdev_close(vol);
		wf_bdev_close(dev);
	}
};

void iops(benchmark::State &state, Maker make, bool through_volume)
{
	Pair p(make);
	Qd qd;

	for (auto _ : state)
		qd.round(through_volume ? p.vol : p.dev);
	state.SetItemsProcessed(state.iterations() * kDepth);
}

double now_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// Both paths interleaved in one run, so frequency drift and the other tenant hit them alike.
void volume_vs_direct(benchmark::State &state, Maker make)
{
	Pair p(make);
	Qd qd;
	double direct = 0, volume = 0;

	for (auto _ : state) {
		double t0 = now_ns();

		for (int i = 0; i < 64; i++)
			qd.round(p.dev);
		double t1 = now_ns();

		for (int i = 0; i < 64; i++)
			qd.round(p.vol);
		volume += now_ns() - t1;
		direct += t1 - t0;
	}
	state.counters["direct_ns_per_io"] = direct / (state.iterations() * 64.0 * kDepth);
	state.counters["volume_ns_per_io"] = volume / (state.iterations() * 64.0 * kDepth);
	state.counters["volume_over_direct"] = volume / direct;
}

} // namespace

BENCHMARK_CAPTURE(iops, null_direct, wf_bdev_null_create, false);
BENCHMARK_CAPTURE(iops, null_volume, wf_bdev_null_create, true);
BENCHMARK_CAPTURE(iops, ram_direct, wf_bdev_ram_create, false);
BENCHMARK_CAPTURE(iops, ram_volume, wf_bdev_ram_create, true);
BENCHMARK_CAPTURE(volume_vs_direct, null, wf_bdev_null_create);
BENCHMARK_CAPTURE(volume_vs_direct, ram, wf_bdev_ram_create);
