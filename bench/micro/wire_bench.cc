// SPDX-License-Identifier: MIT
// Every command a target receives is decoded and validated before anything
// else happens, and every completion encoded: both sit on the I/O path.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>

extern "C" {
#include <weft/wire.h>
}

namespace
{

wf_cmd sample_read()
{
	wf_cmd c;

	std::memset(&c, 0, sizeof(c));
	c.opcode = WF_OP_READ;
	c.version = WF_WIRE_VERSION;
	c.cid = 42;
	c.volume = 1;
	c.lba = 123456;
	c.nblocks = 8;
	c.data.addr = 0x7f0000001000ULL;
	c.data.len = 4096;
	c.data.key = 0x1234;
	return c;
}

void BM_CapsuleEncode(benchmark::State &state)
{
	wf_cmd c = sample_read();
	uint8_t buf[WF_CMD_SIZE];

	for (auto _ : state) {
		wf_cmd_encode(&c, buf);
		benchmark::DoNotOptimize(buf);
		c.cid++;
	}
}
BENCHMARK(BM_CapsuleEncode);

void BM_CapsuleDecodeValidate(benchmark::State &state)
{
	wf_cmd c = sample_read(), out;
	uint8_t buf[WF_CMD_SIZE];

	wf_cmd_encode(&c, buf);
	for (auto _ : state) {
		enum wf_status st = wf_cmd_decode(buf, sizeof(buf), 4096, &out);

		benchmark::DoNotOptimize(st);
		benchmark::DoNotOptimize(out);
	}
}
BENCHMARK(BM_CapsuleDecodeValidate);

void BM_CompletionEncode(benchmark::State &state)
{
	wf_cpl c = {42, WF_SC_SUCCESS, 7, 0};
	uint8_t buf[WF_CPL_SIZE];

	for (auto _ : state) {
		wf_cpl_encode(&c, buf);
		benchmark::DoNotOptimize(buf);
		c.sq_head++;
	}
}
BENCHMARK(BM_CompletionEncode);

} // namespace
