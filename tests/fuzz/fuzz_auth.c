// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the authentication exchange (core/auth.h). The input is
 * a script of steps played against one target-side session table and one
 * connection at a time: challenges with any token and nonce, replies with
 * fuzzed proofs or with the genuine host's proof, fuzzed answers shown to a
 * genuine host, new connections, hang-ups and the clock moving on.
 * Invariants: a fuzzed proof never authenticates; the genuine host never
 * accepts a fuzzed answer it did not get from the target; a genuine exchange
 * that reaches the reply succeeds (or the table is full); session reference
 * counts never go below zero or above the connections that took them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[] = "fuzzing-secret-0123456789";
#define SLEN   (sizeof(secret) - 1)
#define NCONNS 4

struct conn {
	struct wf_auth_srv srv;
	struct wf_auth_cli cli;
	struct wf_auth_answer ans; /* the target's genuine answer */
	bool answered;		   /* the target answered a challenge */
	bool holds;		   /* holds a session reference */
	uint64_t token;
};

struct state {
	struct wf_auth_sessions s;
	struct wf_auth_cli_session sess; /* the genuine host's */
	struct conn c[NCONNS];
	uint64_t now;
	uint32_t refs; /* references the connections hold */
};

static uint64_t take64(const uint8_t **p, size_t *n)
{
	uint64_t v = 0;

	for (int i = 0; i < 8 && *n; i++, (*p)++, (*n)--)
		v |= (uint64_t) * *p << (8 * i);
	return v;
}

static void take(const uint8_t **p, size_t *n, uint8_t *out, size_t len)
{
	memset(out, 0, len);
	len = len < *n ? len : *n;
	memcpy(out, *p, len);
	*p += len;
	*n -= len;
}

static void hang_up(struct state *st, struct conn *c)
{
	if (c->holds) {
		wf_auth_session_put(&st->s, "host", c->token, st->now);
		st->refs--;
	}
	memset(c, 0, sizeof(*c));
	wf_auth_srv_init(&c->srv, "host", secret, SLEN);
}

static void challenge(struct state *st, struct conn *c, uint64_t token, const uint8_t *hn,
		      bool genuine)
{
	uint8_t mine[WF_AUTH_NONCE_SIZE];

	if (genuine) {
		if (wf_auth_cli_init(&c->cli, "host", secret, SLEN, &st->sess, mine))
			abort();
		hn = mine;
		token = st->sess.token;
	}
	c->answered =
	    wf_auth_srv_challenge(&c->srv, &st->s, token, hn, st->now, &c->ans) == WF_SC_SUCCESS;
	if (c->answered && c->ans.token && c->ans.token != token)
		abort();
}

static void reply(struct state *st, struct conn *c, const uint8_t *fuzzed)
{
	uint8_t proof[WF_AUTH_PROOF_SIZE];
	bool genuine = !fuzzed;
	enum wf_status s;
	uint64_t token = 0;

	if (genuine) {
		/* Only a host that itself asked, and got the target's real answer, can prove. */
		if (!c->answered || c->cli.answered || !c->cli.secret ||
		    wf_auth_cli_answer(&c->cli, &c->ans, proof))
			return;
	} else {
		memcpy(proof, fuzzed, sizeof(proof));
	}
	s = wf_auth_srv_reply(&c->srv, &st->s, proof, st->now, &token);
	if (s == WF_SC_SUCCESS) {
		if (!genuine || !token || c->holds)
			abort();
		c->holds = true;
		c->token = token;
		st->refs++;
		if (wf_auth_cli_finish(&c->cli, token, &st->sess) || st->sess.token != token)
			abort();
	} else if (genuine && s != WF_SC_BUSY && s != WF_SC_AUTH_FAILED) {
		abort();
	}
}

/* A fuzzed answer shown to a genuine host that has a challenge out. */
static void forged_answer(struct conn *c, const uint8_t *bytes)
{
	struct wf_auth_answer a;
	uint8_t proof[WF_AUTH_PROOF_SIZE];

	if (!c->cli.secret || c->cli.answered)
		return;
	if (wf_auth_answer_decode(bytes, WF_AUTH_ANSWER_SIZE, &a) != WF_SC_SUCCESS)
		return;
	if (c->answered && !memcmp(&a, &c->ans, sizeof(a)))
		return; /* the genuine one, by chance: nothing forged */
	if (wf_auth_cli_answer(&c->cli, &a, proof) == 0)
		abort();
}

static void check_table(const struct state *st)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < st->s.n; i++)
		sum += st->s.v[i].nconns;
	if (sum != st->refs)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	uint8_t buf[WF_AUTH_ANSWER_SIZE];

	memset(&st, 0, sizeof(st));
	if (wf_auth_sessions_init(&st.s, 3, 100))
		abort();
	for (int i = 0; i < NCONNS; i++)
		hang_up(&st, &st.c[i]);
	while (size >= 1) {
		uint8_t op = *data++;
		struct conn *c = &st.c[(op >> 4) % NCONNS];

		size--;
		switch (op & 0x7) {
		case 0: {
			uint64_t token = take64(&data, &size);

			take(&data, &size, buf, WF_AUTH_NONCE_SIZE);
			challenge(&st, c, token, buf, false);
			break;
		}
		case 1:
			challenge(&st, c, 0, NULL, true);
			break;
		case 2:
			take(&data, &size, buf, WF_AUTH_PROOF_SIZE);
			reply(&st, c, buf);
			break;
		case 3:
			reply(&st, c, NULL);
			break;
		case 4:
			take(&data, &size, buf, WF_AUTH_ANSWER_SIZE);
			forged_answer(c, buf);
			break;
		case 5:
			hang_up(&st, c);
			break;
		case 6:
			st.now += take64(&data, &size) & 0xff;
			break;
		default:
			if (op & 0x8)
				memset(&st.sess, 0,
				       sizeof(st.sess)); /* the host forgets its session */
			break;
		}
		check_table(&st);
	}
	for (int i = 0; i < NCONNS; i++)
		hang_up(&st, &st.c[i]);
	check_table(&st);
	wf_auth_sessions_fini(&st.s);
	return 0;
}
