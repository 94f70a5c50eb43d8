// SPDX-License-Identifier: MIT
// What an idle poll loop costs: the floor under every busy-polling thread.
// Runs for whichever transports this machine has (verbs only inside the rxe
// guest: `ci/rxe-vm -- build/bench/micro/weft_micro --benchmark_filter=Poll`).
#include <benchmark/benchmark.h>

extern "C" {
#include "transport/transport.h"
}

namespace
{

void BM_PollNoWork(benchmark::State &state, const char *kind)
{
	const wf_transport_ops *ops = wf_transport_ops_find(kind);
	struct wf_transport_opts opts;
	wf_transport *t;
	wf_poll_group *pg;

	wf_transport_opts_default(&opts);
	opts.srq_depth = 256;
	if (!ops || wf_transport_create(ops, &opts, &t)) {
		state.SkipWithError("transport not available on this machine");
		return;
	}
	if (wf_poll_group_create(t, &pg)) {
		wf_transport_destroy(t);
		state.SkipWithError("cannot create a poll group");
		return;
	}
	for (auto _ : state)
		benchmark::DoNotOptimize(wf_poll_group_poll(pg, 0));
	wf_poll_group_destroy(pg);
	wf_transport_destroy(t);
}
BENCHMARK_CAPTURE(BM_PollNoWork, tcp, "tcp");
BENCHMARK_CAPTURE(BM_PollNoWork, verbs, "verbs");

} // namespace
