/* SPDX-License-Identifier: MIT */
/* The adaptive spin budget: how it grows, caps, shrinks and turns off. */
#include "core/spin.h"
#include "tests/lib/check.h"

#define US 1000ull
#define T0 (1000000 * US) /* any start: the clock's zero is not special */

/* The thread's CPU clock as the tests want it: by default it stands still, as if preempted. */
static uint64_t fake_cpu;
static unsigned cpu_reads;

static uint64_t fake_cpu_ns(void)
{
	cpu_reads++;
	return fake_cpu;
}

static void init(struct wf_spin *s, uint32_t max_us)
{
	wf_spin_init(s, max_us);
	WF_CHECK(s->cpu_ns == wf_thread_cpu_ns);
	s->cpu_ns = fake_cpu_ns;
}

static void off_when_capped_at_zero(void)
{
	struct wf_spin s;

	init(&s, 0);
	wf_spin_work(&s, T0);
	wf_spin_work(&s, T0 + 100 * US);
	WF_CHECK(!wf_spin_keep(&s, T0 + 100 * US));
	WF_CHECK_EQ(s.cur_ns, 0);
}

/* Nothing is known before the second piece of work. */
static void first_work_learns_nothing(void)
{
	struct wf_spin s;

	init(&s, 5000);
	WF_CHECK(!wf_spin_keep(&s, T0));
	wf_spin_work(&s, T0);
	WF_CHECK_EQ(s.cur_ns, 0);
	WF_CHECK(!wf_spin_keep(&s, T0 + 1));
}

/* A missed gap under the cap: next time, spin for twice that gap. */
static void grows_to_twice_a_missed_gap(void)
{
	struct wf_spin s;

	init(&s, 5000);
	wf_spin_work(&s, T0);
	wf_spin_work(&s, T0 + 300 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
	WF_CHECK(wf_spin_keep(&s, T0 + 300 * US + 599 * US));
	WF_CHECK(!wf_spin_keep(&s, T0 + 300 * US + 600 * US));
	/* A gap the spin caught teaches nothing. */
	wf_spin_work(&s, T0 + 800 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
	/* Doubling stops at the cap. */
	wf_spin_work(&s, T0 + 800 * US + 4000 * US);
	WF_CHECK_EQ(s.cur_ns, 5000 * US);
}

/* Gaps past the cap, from the second in a row, halve the budget; below the floor it stops. */
static void shrinks_and_stops_when_idle(void)
{
	struct wf_spin s;
	uint64_t t = T0;
	int rounds = 0;

	init(&s, 1000);
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 500 * US);
	WF_CHECK_EQ(s.cur_ns, 1000 * US);
	wf_spin_work(&s, t += 20000 * US);
	WF_CHECK_EQ(s.cur_ns, 1000 * US);
	wf_spin_work(&s, t += 20000 * US);
	WF_CHECK_EQ(s.cur_ns, 500 * US);
	while (s.cur_ns && rounds++ < 64)
		wf_spin_work(&s, t += 20000 * US);
	WF_CHECK_EQ(s.cur_ns, 0);
	WF_CHECK(rounds <= 6); /* 500 us halves below 10 us in six steps */
	WF_CHECK(!wf_spin_keep(&s, t + 1));
	/* One short gap brings it back. */
	wf_spin_work(&s, t += 200 * US);
	WF_CHECK_EQ(s.cur_ns, 400 * US);
}

/*
 * A lone gap past the cap among short ones (a preemption somewhere) keeps
 * the budget: halving it let the next ordinary gap outlast the spin, whose
 * sleep put that gap past the cap too, and so on down to zero.
 */
static void lone_long_gap_keeps_budget(void)
{
	struct wf_spin s;
	uint64_t t = T0;

	init(&s, 200);
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 80 * US);
	WF_CHECK_EQ(s.cur_ns, 160 * US);
	for (int i = 0; i < 10; i++) {
		wf_spin_work(&s, t += 900 * US);
		WF_CHECK_EQ(s.cur_ns, 160 * US);
		wf_spin_work(&s, t += 60 * US);
		wf_spin_work(&s, t += 70 * US);
		WF_CHECK_EQ(s.cur_ns, 160 * US);
	}
	/* A gap under the cap between two past it starts the count again. */
	wf_spin_work(&s, t += 900 * US);
	wf_spin_work(&s, t += 190 * US);
	WF_CHECK_EQ(s.cur_ns, 200 * US);
	wf_spin_work(&s, t += 900 * US);
	WF_CHECK_EQ(s.cur_ns, 200 * US);
	wf_spin_work(&s, t += 900 * US);
	WF_CHECK_EQ(s.cur_ns, 100 * US);
}

/*
 * Work the caller only caused (a completion of its own post) restarts the
 * spin from itself and never grows a budget it has, however long the gap
 * before it; the next real work measures its gap from it.
 */
static void seen_restarts_without_growing(void)
{
	struct wf_spin s;

	init(&s, 1000);
	wf_spin_work(&s, T0);
	wf_spin_work(&s, T0 + 300 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
	/* Seen within the window: the spin runs on past where it would have ended. */
	wf_spin_seen(&s, T0 + 700 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
	WF_CHECK(wf_spin_keep(&s, T0 + 1200 * US));
	WF_CHECK(!wf_spin_keep(&s, T0 + 1300 * US));
	/* A seen gap past the budget grows nothing, nor does one past the cap shrink it. */
	wf_spin_seen(&s, T0 + 1700 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
	wf_spin_seen(&s, T0 + 50000 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
	/* Work 700 us after that seen one: a missed gap, counted from it. */
	wf_spin_work(&s, T0 + 50700 * US);
	WF_CHECK_EQ(s.cur_ns, 1000 * US);
}

/*
 * A budget at zero is re-armed by seen work: a sleeping thread's arrivals
 * carry a wake-up in their gaps, and past the cap those could never grow it.
 */
static void seen_rearms_a_zero_budget(void)
{
	struct wf_spin s;
	uint64_t t = T0;

	init(&s, 200);
	wf_spin_work(&s, t);
	/* Arrivals 350 us apart (a round trip and a wake-up): past the cap, no budget. */
	for (int i = 0; i < 4; i++)
		wf_spin_work(&s, t += 350 * US);
	WF_CHECK_EQ(s.cur_ns, 0);
	/* The thread's own completion 40 us after an arrival re-arms it... */
	wf_spin_seen(&s, t += 40 * US);
	WF_CHECK_EQ(s.cur_ns, 80 * US);
	/* ...a reply caught inside it teaches nothing, and one just missed grows it. */
	wf_spin_work(&s, t += 70 * US);
	WF_CHECK_EQ(s.cur_ns, 80 * US);
	wf_spin_seen(&s, t += 40 * US);
	wf_spin_work(&s, t += 100 * US);
	WF_CHECK_EQ(s.cur_ns, 200 * US);
	/* Re-armed or not, seen work never grows a budget it has. */
	wf_spin_work(&s, t += 50 * US);
	wf_spin_seen(&s, t += 150 * US);
	WF_CHECK_EQ(s.cur_ns, 200 * US);
}

/* A round that took longer than a time slice: the CPU is contended, so stop and stay stopped. */
static void backs_off_when_preempted(void)
{
	struct wf_spin s;
	uint64_t t = T0;

	init(&s, 5000);
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 1000 * US);
	WF_CHECK_EQ(s.cur_ns, 2000 * US);
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK(wf_spin_keep(&s, t += 900 * US)); /* slow, but not a lost slice */
	WF_CHECK(!wf_spin_keep(&s, t += 1001 * US));
	WF_CHECK_EQ(s.cur_ns, 0);
	WF_CHECK_EQ(s.preemptions, 1);
	/* Short gaps teach nothing for the next 5 ms... */
	wf_spin_work(&s, t += 100 * US);
	wf_spin_work(&s, t += 300 * US);
	WF_CHECK_EQ(s.cur_ns, 0);
	/* ...then they do again. */
	t += 6000 * US;
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 300 * US);
	WF_CHECK_EQ(s.cur_ns, 600 * US);
}

/* Work at *@t and 1 ms later (a 2 ms budget), then a spin round that lost 1.5 ms to another task.
 */
static void lose_cpu(struct wf_spin *s, uint64_t *t)
{
	wf_spin_work(s, *t);
	wf_spin_work(s, *t += 1000 * US);
	WF_CHECK(wf_spin_keep(s, *t += 10 * US));
	WF_CHECK(wf_spin_keep(s, *t += 10 * US));
	WF_CHECK(!wf_spin_keep(s, *t += 1500 * US));
}

/* Preemptions that keep coming: each pause doubles, up to a second; a quiet spell resets it. */
static void backoff_doubles_while_contended(void)
{
	struct wf_spin s;
	uint64_t t = T0, want = 5000 * US;

	init(&s, 5000);
	wf_spin_work(&s, t);
	for (int i = 0; i < 12; i++) {
		t = s.resume_ns > t ? s.resume_ns : t;
		lose_cpu(&s, &t);
		WF_CHECK_EQ(s.resume_ns - t, want);
		want = want * 2 < 1000000 * US ? want * 2 : 1000000 * US;
	}
	WF_CHECK_EQ(s.backoff_ns, 1000000 * US);
	/* Ten pauses' worth of quiet: the next preemption is a lone one again. */
	t = s.resume_ns + 10 * 1000000 * US;
	lose_cpu(&s, &t);
	WF_CHECK_EQ(s.backoff_ns, 5000 * US);
}

/* A poll that slept and woke with nothing is not a spin round that lost its CPU. */
static void sleep_between_rounds_is_not_preemption(void)
{
	struct wf_spin s;
	uint64_t t = T0;

	init(&s, 5000);
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 1000 * US);
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK(!wf_spin_keep(&s, t += 2000 * US)); /* budget spent: the loop sleeps */
	WF_CHECK(!wf_spin_keep(&s, t += 5000 * US)); /* woke from a timeout */
	WF_CHECK_EQ(s.preemptions, 0);
	WF_CHECK_EQ(s.cur_ns, 2000 * US);
	wf_spin_work(&s, t += 10 * US);
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK_EQ(s.preemptions, 0);
}

/*
 * A long round while the thread's CPU clock ran on: the time went to the
 * thread (or to a hypervisor that stole the vCPU), not to another task.
 */
static void long_round_on_cpu_is_not_preemption(void)
{
	struct wf_spin s;
	uint64_t t = T0;

	init(&s, 5000);
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 1000 * US);
	fake_cpu = 7 * US;
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	fake_cpu += 1500 * US;
	WF_CHECK(wf_spin_keep(&s, t += 1500 * US));
	WF_CHECK_EQ(s.preemptions, 0);
	/* The same round with the CPU clock standing still: lost. */
	wf_spin_work(&s, t += 10 * US);
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK(!wf_spin_keep(&s, t += 1500 * US));
	WF_CHECK_EQ(s.preemptions, 1);
	fake_cpu = 0;
}

/*
 * A spin's first round reads no CPU clock: its poll sends what the caller
 * just posted, and the system call would delay it. The second round takes
 * the baseline, and a slice lost in the first round goes unseen.
 */
static void first_round_reads_no_cpu_clock(void)
{
	struct wf_spin s;
	uint64_t t = T0;

	init(&s, 5000);
	wf_spin_work(&s, t);
	wf_spin_work(&s, t += 1000 * US);
	cpu_reads = 0;
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK_EQ(cpu_reads, 0);
	WF_CHECK(wf_spin_keep(&s, t += 1500 * US));
	WF_CHECK_EQ(cpu_reads, 1);
	WF_CHECK_EQ(s.preemptions, 0);
	/* Each spin starts over: the next one's first round reads none either. */
	wf_spin_work(&s, t += 10 * US);
	WF_CHECK(wf_spin_keep(&s, t += 10 * US));
	WF_CHECK_EQ(cpu_reads, 1);
}

static void clock_moves_forward(void)
{
	uint64_t a = wf_now_ns(), b = wf_now_ns();

	WF_CHECK(a > 0 && b >= a);
}

int main(void)
{
	off_when_capped_at_zero();
	first_work_learns_nothing();
	grows_to_twice_a_missed_gap();
	shrinks_and_stops_when_idle();
	lone_long_gap_keeps_budget();
	seen_restarts_without_growing();
	seen_rearms_a_zero_budget();
	backs_off_when_preempted();
	backoff_doubles_while_contended();
	sleep_between_rounds_is_not_preemption();
	long_round_on_cpu_is_not_preemption();
	first_round_reads_no_cpu_clock();
	clock_moves_forward();
	return 0;
}
