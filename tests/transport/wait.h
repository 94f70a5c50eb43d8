/* SPDX-License-Identifier: MIT */
/*
 * Bounded waiting for transport tests: drive the poll loop until a condition
 * holds, and fail (never hang) when it does not within a time limit.
 */
#ifndef WF_TESTS_TRANSPORT_WAIT_H
#define WF_TESTS_TRANSPORT_WAIT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t wf_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run @step until @cond holds; exit(1) naming the condition after @ms. */
#define WF_WAIT_FOR(step, cond, ms)                                                                \
	do {                                                                                       \
		uint64_t wf_t0_ = wf_test_now_ms();                                                \
		while (!(cond)) {                                                                  \
			step;                                                                      \
			if (wf_test_now_ms() - wf_t0_ > (uint64_t)(ms)) {                          \
				fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__,     \
					__LINE__, #cond);                                          \
				exit(1);                                                           \
			}                                                                          \
		}                                                                                  \
	} while (0)

#endif /* WF_TESTS_TRANSPORT_WAIT_H */
