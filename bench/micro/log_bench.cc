// SPDX-License-Identifier: MIT
// Logging sits on error paths next to the I/O path: a debug line that the
// level filters out must cost next to nothing.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

extern "C" {
#include "core/log.h"
}

static void BM_LogFilteredOut(benchmark::State &state)
{
	struct wf_log log;

	wf_log_init(&log, "bench", WF_LOG_WARN, STDERR_FILENO);
	for (auto _ : state)
		wf_log_debug(&log, "request %d state %s", 42, "executing");
}
BENCHMARK(BM_LogFilteredOut);

static void BM_LogToDevNull(benchmark::State &state)
{
	struct wf_log log;
	int fd = open("/dev/null", O_WRONLY);

	wf_log_init(&log, "bench", WF_LOG_DEBUG, fd);
	for (auto _ : state)
		wf_log_info(&log, "request %d state %s", 42, "executing");
	close(fd);
}
BENCHMARK(BM_LogToDevNull);
