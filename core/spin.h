/* SPDX-License-Identifier: MIT */
#ifndef WF_CORE_SPIN_H
#define WF_CORE_SPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/*
 * An adaptive busy-poll budget. A poll loop that found no work either spins
 * or sleeps; a sleep costs a wake-up (on a soft-RoCE guest, hundreds of
 * microseconds), a spin costs a core. The budget follows the gaps between
 * pieces of work, as the kernel's haltpoll governor does for idle CPUs: a gap
 * that outlasted the budget but not the cap grows it to twice that gap; gaps
 * past the cap, two in a row, halve it, so a loop that goes idle stops
 * spinning while one that only met an outlier keeps its budget. Work the
 * caller only caused (its own posts completing) restarts the spin, and
 * re-arms a budget at zero, but grows no other: wf_spin_seen().
 *
 * Spinning only pays on a CPU nobody else wants. A spinner is always
 * runnable, so on a contended CPU it waits out other tasks' time slices where
 * a sleeper would be woken at once. A round of the spin that took longer than
 * a slice, during which the thread's own CPU clock fell behind the wall
 * clock, shows exactly that, and spinning stops for a while: 5 ms after a
 * lone preemption (a noisy neighbour), doubling up to a second while they
 * keep coming (a CPU shared for good). The CPU clock keeps a virtual
 * machine's stolen time from counting: its guest kernel sees the vCPU as
 * running, and so does the spinner.
 */
struct wf_spin {
	uint64_t max_ns;	  /* the cap; 0: never spin */
	uint64_t cur_ns;	  /* spin this long after the last work before sleeping */
	uint64_t last_ns;	  /* when work was last seen; 0: never */
	uint32_t long_gaps;	  /* gaps past the cap in a row */
	uint64_t round_ns;	  /* the spin's previous round; 0: not spinning */
	uint64_t start_ns;	  /* this spin's second round, by the wall clock (0: before)... */
	uint64_t start_cpu;	  /* ...and by the thread's CPU clock */
	uint64_t (*cpu_ns)(void); /* the thread's CPU clock (tests give their own) */
	uint64_t resume_ns;	  /* after a preemption, the budget stays 0 until then */
	uint64_t backoff_ns;	  /* the latest such pause */
	uint64_t preempt_ns;	  /* when the latest preemption was seen */
	uint64_t preemptions;	  /* times a spin lost its CPU and stopped */
};

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t wf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time the calling thread has used, in nanoseconds. */
uint64_t wf_thread_cpu_ns(void);

/* Start with no budget and a cap of @max_us (0 turns spinning off). */
void wf_spin_init(struct wf_spin *s, uint32_t max_us);

/* Work was found at @now_ns: learn from the gap since the work before it. */
void wf_spin_work(struct wf_spin *s, uint64_t now_ns);

/*
 * Work the caller only caused was found at @now_ns (the completion of its own
 * post, a round trip later whatever the peer does): the spin starts over from
 * it with the budget it has. Only a budget at zero learns from it, as a re-arm.
 */
void wf_spin_seen(struct wf_spin *s, uint64_t now_ns);

/* Work was found at @now_ns: wf_spin_work() if it arrived, else wf_spin_seen(). */
void wf_spin_found(struct wf_spin *s, uint64_t now_ns, bool arrived);

/* Whether a loop that found nothing at @now_ns should poll again rather than sleep. */
bool wf_spin_keep(struct wf_spin *s, uint64_t now_ns);

/*
 * Work a poll loop looks at now and then rather than at every poll, since a
 * look costs system calls (verbs' CM channel, an idle TCP group's sockets,
 * weftd's stop fd).
 * Counted in polls alone, a group polled rarely (every few ms) would leave
 * that work waiting for seconds, so the clock decides, read only every
 * WF_LOOK_POLLS polls: a look is due at most every WF_LOOK_NS.
 */
#define WF_LOOK_NS    1000000u
#define WF_LOOK_POLLS 8u

struct wf_look {
	uint32_t polls;	  /* since the clock was last read */
	uint64_t seen_ns; /* when the last look was */
};

/* Whether to look now: @due (a wake-up said there is news) or the time has come. */
bool wf_look_due(struct wf_look *l, bool due);

#endif
