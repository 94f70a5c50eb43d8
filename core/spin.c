/* SPDX-License-Identifier: MIT */
#include "spin.h"

/*
 * Gaps past the cap in a row before the budget shrinks. A lone one is most
 * often a preemption somewhere on the path; halving on it made the next
 * ordinary gap outlast the budget, and that one's gap held a wake-up, past
 * the cap again: a cascade of sleeps to zero from one outlier.
 */
#define SPIN_LONG_GAPS 2u
/* Below this a budget is not worth a loop: spinning stops altogether. */
#define SPIN_FLOOR_NS 10000u
/* A round (one poll and a yield) this long means another task had the CPU. */
#define SPIN_PREEMPTED_NS 1000000u
/* After that, sleep only, this long at first, since a retry costs a time slice. */
#define SPIN_BACKOFF_MIN_NS 5000000u
#define SPIN_BACKOFF_MAX_NS 1000000000u

uint64_t wf_thread_cpu_ns(void)
{
	struct timespec ts;

	/* Cannot fail for the calling thread's own clock. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wf_spin_init(struct wf_spin *s, uint32_t max_us)
{
	*s = (struct wf_spin){.max_ns = (uint64_t)max_us * 1000u, .cpu_ns = wf_thread_cpu_ns};
}

/* A long round: did another task have this CPU for a slice since the baseline? */
static bool lost_cpu(struct wf_spin *s, uint64_t now_ns)
{
	uint64_t wall = now_ns - s->start_ns, cpu = s->cpu_ns() - s->start_cpu;

	return wall > cpu && wall - cpu > SPIN_PREEMPTED_NS;
}

void wf_spin_work(struct wf_spin *s, uint64_t now_ns)
{
	uint64_t gap = now_ns - s->last_ns;
	bool learn = s->last_ns && now_ns >= s->resume_ns;

	s->round_ns = 0;
	if (gap <= s->max_ns) {
		s->long_gaps = 0;
		/* A spin this long would have caught it: next time, with room to spare. */
		if (learn && gap > s->cur_ns)
			s->cur_ns = gap * 2 < s->max_ns ? gap * 2 : s->max_ns;
	} else if (learn && ++s->long_gaps >= SPIN_LONG_GAPS) {
		/* Nothing spun this long would have, and not by chance: spin less. */
		s->cur_ns /= 2;
		if (s->cur_ns < SPIN_FLOOR_NS)
			s->cur_ns = 0;
	}
	s->last_ns = now_ns;
}

void wf_spin_seen(struct wf_spin *s, uint64_t now_ns)
{
	/*
	 * A budget at zero is re-armed from it: its thread sleeps, so the next
	 * arrival's gap holds a wake-up and may never come in under the cap.
	 */
	if (!s->cur_ns) {
		wf_spin_work(s, now_ns);
		return;
	}
	s->round_ns = 0;
	if (s->last_ns)
		s->last_ns = now_ns;
}

void wf_spin_found(struct wf_spin *s, uint64_t now_ns, bool arrived)
{
	if (arrived)
		wf_spin_work(s, now_ns);
	else
		wf_spin_seen(s, now_ns);
}

bool wf_spin_keep(struct wf_spin *s, uint64_t now_ns)
{
	bool keep = s->cur_ns && now_ns - s->last_ns < s->cur_ns;

	if (keep && !s->round_ns) {
		/*
		 * The baseline waits for the second round: the first one's poll
		 * sends what the caller just posted, and a system call before it
		 * would delay every command by its cost. A preemption within that
		 * first round goes unseen.
		 */
		s->start_ns = 0;
	} else if (keep && !s->start_ns) {
		s->start_ns = now_ns;
		s->start_cpu = s->cpu_ns();
	} else if (keep && now_ns - s->round_ns > SPIN_PREEMPTED_NS && lost_cpu(s, now_ns)) {
		/* Soon after the last pause: the CPU is still shared, pause longer. */
		if (s->preemptions && now_ns - s->preempt_ns < 10 * s->backoff_ns)
			s->backoff_ns = s->backoff_ns * 2 < SPIN_BACKOFF_MAX_NS
					    ? s->backoff_ns * 2
					    : SPIN_BACKOFF_MAX_NS;
		else
			s->backoff_ns = SPIN_BACKOFF_MIN_NS;
		s->cur_ns = 0;
		s->preempt_ns = now_ns;
		s->resume_ns = now_ns + s->backoff_ns;
		s->preemptions++;
		keep = false;
	}
	s->round_ns = keep ? now_ns : 0;
	return keep;
}

bool wf_look_due(struct wf_look *l, bool due)
{
	uint64_t now;

	if (!due && ++l->polls < WF_LOOK_POLLS)
		return false;
	l->polls = 0;
	now = wf_now_ns();
	if (!due && now - l->seen_ns < WF_LOOK_NS)
		return false;
	l->seen_ns = now;
	return true;
}
