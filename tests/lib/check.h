/* SPDX-License-Identifier: MIT */
/*
 * Minimal assertions for weft's tests: a failed check prints where and why,
 * then exits non-zero so CTest records the failure.
 */
#ifndef WF_TESTS_CHECK_H
#define WF_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WF_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define WF_CHECK_EQ(a, b)                                                                          \
	do {                                                                                       \
		long long wf_a_ = (long long)(a), wf_b_ = (long long)(b);                          \
		if (wf_a_ != wf_b_) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n",          \
				__FILE__, __LINE__, #a, #b, wf_a_, wf_b_);                         \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define WF_CHECK_STR_CONTAINS(hay, needle)                                                         \
	do {                                                                                       \
		if (!strstr((hay), (needle))) {                                                    \
			fprintf(stderr, "%s:%d: check failed: \"%s\" not in \"%s\"\n", __FILE__,   \
				__LINE__, (needle), (hay));                                        \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#endif /* WF_TESTS_CHECK_H */
