// SPDX-License-Identifier: MIT
/*
 * core/auth: the host and target state machines run against each other in
 * memory, with every message in between open to tampering: right secrets,
 * wrong ones, forged and reflected proofs, replays, resumed and expired
 * sessions, a full table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/auth.h"
#include "tests/lib/check.h"

static const uint8_t secret[] = "0123456789abcdef-host-a";
static const uint8_t other[] = "0123456789abcdef-host-b";
#define SLEN (sizeof(secret) - 1)

struct run {
	struct wf_auth_srv srv;
	struct wf_auth_cli cli;
	struct wf_auth_answer ans;
	uint8_t hn[WF_AUTH_NONCE_SIZE], proof[WF_AUTH_PROOF_SIZE];
	uint64_t token;
};

/* The challenge half: host init, target answer. */
static void begin(struct run *r, struct wf_auth_sessions *s, const uint8_t *hsecret,
		  const struct wf_auth_cli_session *sess, uint64_t now)
{
	memset(r, 0, sizeof(*r));
	wf_auth_srv_init(&r->srv, "host-a", secret, SLEN);
	WF_CHECK_EQ(wf_auth_cli_init(&r->cli, "host-a", hsecret, SLEN, sess, r->hn), 0);
	WF_CHECK_EQ(wf_auth_srv_challenge(&r->srv, s, sess ? sess->token : 0, r->hn, now, &r->ans),
		    WF_SC_SUCCESS);
}

/* A whole exchange that must succeed; returns the session the host keeps. */
static struct wf_auth_cli_session full(struct wf_auth_sessions *s,
				       const struct wf_auth_cli_session *sess, uint64_t now)
{
	struct wf_auth_cli_session out = {0};
	struct run r;

	begin(&r, s, secret, sess, now);
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &r.ans, r.proof), 0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, s, r.proof, now, &r.token), WF_SC_SUCCESS);
	WF_CHECK(r.token != 0);
	WF_CHECK_EQ(r.srv.state, WF_AUTH_SRV_DONE);
	WF_CHECK_EQ(wf_auth_cli_finish(&r.cli, r.token, &out), 0);
	WF_CHECK_EQ(out.token, r.token);
	return out;
}

static void test_new_and_resume(void)
{
	struct wf_auth_sessions s;
	struct wf_auth_cli_session a, b, c;

	WF_CHECK_EQ(wf_auth_sessions_init(&s, 4, 1000), 0);
	a = full(&s, NULL, 0);
	b = full(&s, &a, 10); /* a second connection resumes it */
	WF_CHECK_EQ(b.token, a.token);
	WF_CHECK(!memcmp(b.key, a.key, sizeof(a.key)));
	WF_CHECK_EQ(s.v[0].nconns, 2u);
	/* Both connections go; the session outlives them for idle_ms only. */
	wf_auth_session_put(&s, "host-a", a.token, 100);
	wf_auth_session_put(&s, "host-a", a.token, 100);
	WF_CHECK_EQ(s.v[0].nconns, 0u);
	c = full(&s, &a, 1000); /* 900 ms idle: still there */
	WF_CHECK_EQ(c.token, a.token);
	wf_auth_session_put(&s, "host-a", a.token, 1000);
	/* Expired: the target falls back to the secret and opens a new session. */
	c = full(&s, &a, 2001);
	WF_CHECK(c.token != a.token);
	WF_CHECK(memcmp(c.key, a.key, sizeof(a.key)) != 0);
	wf_auth_sessions_fini(&s);
}

static void test_wrong_secret(void)
{
	struct wf_auth_sessions s;
	struct run r;

	WF_CHECK_EQ(wf_auth_sessions_init(&s, 4, 1000), 0);
	/* The host's secret is wrong: the target's proof does not verify at the host... */
	begin(&r, &s, other, NULL, 0);
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &r.ans, r.proof), -EKEYREJECTED);
	/* ...and a proof made with the wrong secret fails at the target, for good. */
	WF_CHECK_EQ(
	    wf_auth_proof(other, SLEN, WF_AUTH_ROLE_HOST, "host-a", r.hn, r.ans.nonce, 0, r.proof),
	    0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, r.proof, 0, &r.token), WF_SC_AUTH_FAILED);
	WF_CHECK_EQ(r.srv.state, WF_AUTH_SRV_FAILED);
	/* The right proof after a failure: still refused (one guess per connection). */
	WF_CHECK_EQ(
	    wf_auth_proof(secret, SLEN, WF_AUTH_ROLE_HOST, "host-a", r.hn, r.ans.nonce, 0, r.proof),
	    0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, r.proof, 0, &r.token), WF_SC_AUTH_FAILED);
	wf_auth_sessions_fini(&s);
}

static void test_forgery(void)
{
	struct wf_auth_sessions s;
	struct wf_auth_answer ans;
	uint8_t old_proof[WF_AUTH_PROOF_SIZE];
	struct run r, r2;

	WF_CHECK_EQ(wf_auth_sessions_init(&s, 4, 1000), 0);
	/* Reflection: the target's own proof sent back as the host's. */
	begin(&r, &s, secret, NULL, 0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, r.ans.proof, 0, &r.token), WF_SC_AUTH_FAILED);
	/* A tampered answer: one bit of the target's nonce. */
	begin(&r, &s, secret, NULL, 0);
	ans = r.ans;
	ans.nonce[5] ^= 1;
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &ans, r.proof), -EKEYREJECTED);
	/* An answer claiming a session the host never asked for. */
	ans = r.ans;
	ans.token = 42;
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &ans, r.proof), -EKEYREJECTED);
	/* Replay: a good proof from one exchange, presented in another. */
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &r.ans, old_proof), 0);
	begin(&r2, &s, secret, NULL, 0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r2.srv, &s, old_proof, 0, &r2.token), WF_SC_AUTH_FAILED);
	/* Out of order: a reply before any challenge; a second challenge. */
	wf_auth_srv_init(&r.srv, "host-a", secret, SLEN);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, old_proof, 0, &r.token), WF_SC_AUTH_FAILED);
	begin(&r, &s, secret, NULL, 0);
	WF_CHECK_EQ(wf_auth_srv_challenge(&r.srv, &s, 0, r.hn, 0, &ans), WF_SC_AUTH_FAILED);
	/* Another host's identity with this host's proof. */
	begin(&r, &s, secret, NULL, 0);
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &r.ans, r.proof), 0);
	snprintf(r.srv.host, sizeof(r.srv.host), "host-b");
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, r.proof, 0, &r.token), WF_SC_AUTH_FAILED);
	/* Nothing above opened a session. */
	for (uint32_t i = 0; i < s.n; i++)
		WF_CHECK_EQ(s.v[i].token, 0u);
	wf_auth_sessions_fini(&s);
}

static void test_other_host_cannot_resume(void)
{
	struct wf_auth_sessions s;
	struct wf_auth_cli_session a;
	struct run r;

	WF_CHECK_EQ(wf_auth_sessions_init(&s, 4, 1000), 0);
	a = full(&s, NULL, 0);
	/* host-b names host-a's token: the target does not find it for host-b. */
	wf_auth_srv_init(&r.srv, "host-b", other, SLEN);
	WF_CHECK_EQ(wf_auth_cli_init(&r.cli, "host-b", other, SLEN, &a, r.hn), 0);
	WF_CHECK_EQ(wf_auth_srv_challenge(&r.srv, &s, a.token, r.hn, 0, &r.ans), WF_SC_SUCCESS);
	WF_CHECK_EQ(r.ans.token, 0u); /* keyed by host-b's secret instead */
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &r.ans, r.proof), 0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, r.proof, 0, &r.token), WF_SC_SUCCESS);
	WF_CHECK(r.token != a.token);
	wf_auth_sessions_fini(&s);
}

static void test_table_full(void)
{
	struct wf_auth_sessions s;
	struct run r;

	WF_CHECK_EQ(wf_auth_sessions_init(&s, 2, 1000), 0);
	full(&s, NULL, 0);
	full(&s, NULL, 0);
	/* Two live sessions, room for two: the third waits (BUSY), nothing is evicted. */
	begin(&r, &s, secret, NULL, 0);
	WF_CHECK_EQ(wf_auth_cli_answer(&r.cli, &r.ans, r.proof), 0);
	WF_CHECK_EQ(wf_auth_srv_reply(&r.srv, &s, r.proof, 0, &r.token), WF_SC_BUSY);
	/* Once one is idle, it is the one replaced. */
	wf_auth_session_put(&s, "host-a", s.v[1].token, 5);
	full(&s, NULL, 10);
	WF_CHECK_EQ(s.v[0].nconns, 1u);
	WF_CHECK_EQ(s.v[1].nconns, 1u);
	wf_auth_sessions_fini(&s);
}

int main(void)
{
	test_new_and_resume();
	test_wrong_secret();
	test_forgery();
	test_other_host_cannot_resume();
	test_table_full();
	return 0;
}
