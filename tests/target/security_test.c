// SPDX-License-Identifier: MIT
/*
 * Security end to end, on the real target over tcp (loopback) or verbs
 * (rxe guest): authentication both ways through libweft and through raw
 * capsules, per-command session tokens, and a hostile run of 10,000 bad
 * inputs while a good host keeps doing verified I/O without an error.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "initiator/lib_priv.h"
#include "target/target_priv.h"
#include "tests/lib/check.h"
#include "tests/target/harness.h"

#define SECRET_S "secret-of-host-s-0123456789"
#define SECRET_G "secret-of-host-g-9876543210"
#define WRONG	 "not-the-secret-of-host-s-000"

static const char config[] = "device r0 ram 16M\n"
			     "device p0 ram 1M\n"
			     "device o0 ram 1M\n"
			     "volume main linear r0\n"
			     "volume priv linear p0\n"
			     "volume ro linear o0\n"
			     "allow host-s main rw\n"
			     "allow host-s ro ro\n"
			     "allow host-g main rw\n"
			     "allow host-a main rw\n"
			     "allow host-a ro ro\n"
			     "allow host-p priv rw\n"
			     "secret host-s " SECRET_S "\n"
			     "secret host-g " SECRET_G "\n"
			     "max_connections 16\n"
			     /* raw connections sit idle for the whole hostile run */
			     "keep_alive_timeout 600\n";

/* ---- authentication through libweft ---- */

static void io_check(struct wf_qp *qp, uint64_t lba, uint8_t fill)
{
	struct wf_vol *v;
	uint8_t *w = wf_dma_alloc(qp, 4096), *r = wf_dma_alloc(qp, 4096);

	WF_CHECK(w && r);
	WF_CHECK_EQ(wf_vol_open_name(qp, "main", &v), 0);
	memset(w, fill, 4096);
	memset(r, 0, 4096);
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_WRITE, lba, 8, w, 10), 0);
	WF_CHECK_EQ(wf_qp_io(qp, v, WF_IO_READ, lba, 8, r, 10), 0);
	WF_CHECK(!memcmp(w, r, 4096));
	wf_vol_close(v);
	wf_dma_free(qp, w);
	wf_dma_free(qp, r);
}

static uint32_t session_conns(struct th_env *e, uint64_t token)
{
	struct wf_auth_sessions *s = &e->target->sessions;
	uint32_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].token == token)
			n = s->v[i].nconns;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void libweft_auth(struct th_env *e)
{
	struct wf_host *h, *x;
	struct wf_qp *qp, *qp2, *xq;

	WF_CHECK_EQ(th_host_try(e, "host-s", SECRET_S, 8, &h, &qp), 0);
	WF_CHECK(qp->token != 0);
	io_check(qp, 0, 0x5a);
	/* A second queue pair resumes the session: same token, one session, two connections. */
	WF_CHECK_EQ(wf_qp_open(h, &qp2), 0);
	WF_CHECK_EQ(qp2->token, qp->token);
	WF_CHECK_EQ(session_conns(e, qp->token), 2);
	io_check(qp2, 8, 0xa5);
	/* Wrong secret, no secret, a secret the target does not hold, one too short. */
	WF_CHECK_EQ(th_host_try(e, "host-s", WRONG, 8, &x, &xq), -EKEYREJECTED);
	WF_CHECK_EQ(th_host_try(e, "host-s", NULL, 8, &x, &xq), -ENOKEY);
	WF_CHECK_EQ(th_host_try(e, "host-a", SECRET_S, 8, &x, &xq), -EKEYREJECTED);
	WF_CHECK_EQ(th_host_try(e, "host-s", "short", 8, &x, &xq), -EINVAL);
	/* Another host's secret under this identity. */
	WF_CHECK_EQ(th_host_try(e, "host-s", SECRET_G, 8, &x, &xq), -EKEYREJECTED);
	/* A host without a secret on a target that has none for it still works. */
	WF_CHECK_EQ(th_host_try(e, "host-a", NULL, 8, &x, &xq), 0);
	WF_CHECK_EQ(xq->token, 0u);
	io_check(xq, 16, 0x11);
	wf_qp_close(xq);
	wf_host_close(x);
	/* None of the failures above disturbed the authenticated queue pairs. */
	io_check(qp, 24, 0x3c);
	wf_qp_close(qp2);
	wf_qp_close(qp);
	wf_host_close(h);
}

/* ---- authentication by hand ---- */

struct raw_auth {
	struct wf_auth_cli cli;
	uint8_t proof[WF_AUTH_PROOF_SIZE];
	uint64_t token;
};

/* AUTH_CHALLENGE with a fresh nonce; the host's proof, made with @secret, in a->proof. */
static unsigned raw_challenge(struct th_raw *r, struct raw_auth *a, const char *secret,
			      uint64_t resume)
{
	struct wf_auth_cli_session sess = {.token = resume};
	uint8_t hn[WF_AUTH_NONCE_SIZE];
	struct wf_auth_answer ans;
	struct wf_cmd c = {.opcode = WF_OP_AUTH_CHALLENGE,
			   .cid = 2,
			   .token = resume,
			   .inline_len = WF_AUTH_NONCE_SIZE,
			   .data = {(uint64_t)(uintptr_t)r->buf, WF_AUTH_ANSWER_SIZE, r->mr->key}};
	unsigned st;

	WF_CHECK_EQ(
	    wf_auth_cli_init(&a->cli, "host-s", (const uint8_t *)secret, strlen(secret), &sess, hn),
	    0);
	st = th_raw_cmd(r, &c, hn);
	if (st)
		return st;
	WF_CHECK_EQ(wf_auth_answer_decode(r->buf, WF_AUTH_ANSWER_SIZE, &ans), WF_SC_SUCCESS);
	/* With the wrong secret the target's proof fails here; make ours anyway. */
	if (wf_auth_cli_answer(&a->cli, &ans, a->proof))
		WF_CHECK_EQ(wf_auth_proof((const uint8_t *)secret, strlen(secret),
					  WF_AUTH_ROLE_HOST, "host-s", a->cli.hn, ans.nonce, 0,
					  a->proof),
			    0);
	return 0;
}

static unsigned raw_reply(struct th_raw *r, struct raw_auth *a)
{
	struct wf_cmd c = {.opcode = WF_OP_AUTH_REPLY, .cid = 3, .inline_len = WF_AUTH_PROOF_SIZE};
	unsigned st = th_raw_cmd(r, &c, a->proof);

	if (st == WF_SC_SUCCESS)
		a->token = r->cpl.result;
	return st;
}

static unsigned raw_keep_alive(struct th_raw *r, uint64_t token)
{
	struct wf_cmd c = {.opcode = WF_OP_KEEP_ALIVE, .cid = 9, .token = token};

	return th_raw_cmd(r, &c, NULL);
}

static unsigned raw_read(struct th_raw *r, uint32_t vol, uint64_t token)
{
	struct wf_cmd c = {.opcode = WF_OP_READ,
			   .cid = 10,
			   .volume = vol,
			   .nblocks = 1,
			   .token = token,
			   .data = {(uint64_t)(uintptr_t)r->buf, 512, r->mr->key}};

	return th_raw_cmd(r, &c, NULL);
}

/* Wait for the target to hang up on @r. */
static void raw_wait_down(struct th_raw *r)
{
	while (!r->down)
		WF_CHECK(wf_poll_group_poll(r->pg, 100) >= 0);
}

static void raw_auth(struct th_env *e)
{
	struct raw_auth a, b;
	struct th_raw r, r2;

	WF_CHECK_EQ(th_raw_open(e, &r, "host-s"), 0);
	WF_CHECK_EQ(th_raw_connect(&r, "host-s"), WF_SC_SUCCESS);
	WF_CHECK(r.cpl.result & WF_CONNECT_RES_AUTH);
	/* Before authentication nothing but AUTH runs. */
	WF_CHECK_EQ(raw_keep_alive(&r, 0), WF_SC_AUTH_REQUIRED);
	WF_CHECK_EQ(raw_read(&r, 1, 0), WF_SC_AUTH_REQUIRED);
	WF_CHECK_EQ(raw_challenge(&r, &a, SECRET_S, 0), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_read(&r, 1, 0), WF_SC_AUTH_REQUIRED); /* half way is not done */
	WF_CHECK_EQ(raw_reply(&r, &a), WF_SC_SUCCESS);
	WF_CHECK(a.token != 0);
	/* Every command must carry the session token, not only the first. */
	WF_CHECK_EQ(raw_keep_alive(&r, a.token), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_keep_alive(&r, 0), WF_SC_AUTH_REQUIRED);
	WF_CHECK_EQ(raw_read(&r, 1, a.token + 1), WF_SC_AUTH_REQUIRED);
	WF_CHECK_EQ(raw_read(&r, 1, a.token), WF_SC_SUCCESS);
	/* Authorization per command: volume 3 is read-only, 2 is not host-s's at all. */
	WF_CHECK_EQ(raw_read(&r, 3, a.token), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_read(&r, 2, a.token), WF_SC_ACCESS_DENIED);
	/* A replayed proof on a new connection (fresh nonces): refused, and hung up on. */
	WF_CHECK_EQ(th_raw_open(e, &r2, "host-s"), 0);
	WF_CHECK_EQ(th_raw_connect(&r2, "host-s"), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_challenge(&r2, &b, SECRET_S, 0), WF_SC_SUCCESS);
	memcpy(b.proof, a.proof, sizeof(b.proof));
	WF_CHECK_EQ(raw_reply(&r2, &b), WF_SC_AUTH_FAILED);
	raw_wait_down(&r2);
	th_raw_close(&r2);
	/* A resumed session with the wrong secret still fails: the answer is keyed by the session.
	 */
	WF_CHECK_EQ(th_raw_open(e, &r2, "host-s"), 0);
	WF_CHECK_EQ(th_raw_connect(&r2, "host-s"), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_challenge(&r2, &b, WRONG, a.token), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_reply(&r2, &b), WF_SC_AUTH_FAILED);
	raw_wait_down(&r2);
	th_raw_close(&r2);
	/* The authenticated connection replays its own reply: refused and dropped too. */
	WF_CHECK_EQ(raw_reply(&r, &a), WF_SC_AUTH_FAILED);
	raw_wait_down(&r);
	th_raw_close(&r);
	/* AUTH from a host with no secret configured: refused, not dropped. */
	WF_CHECK_EQ(th_raw_open(e, &r, "host-a"), 0);
	WF_CHECK_EQ(th_raw_connect(&r, "host-a"), WF_SC_SUCCESS);
	WF_CHECK(!(r.cpl.result & WF_CONNECT_RES_AUTH));
	WF_CHECK_EQ(raw_challenge(&r, &a, SECRET_S, 0), WF_SC_AUTH_FAILED);
	WF_CHECK_EQ(raw_keep_alive(&r, 0), WF_SC_SUCCESS);
	th_raw_close(&r);
}

static void case_auth(struct th_env *e)
{
	libweft_auth(e);
	raw_auth(e);
}

/* ---- the hostile run ---- */

struct good {
	struct th_env *e;
	atomic_bool stop;
	uint64_t ios;
	int errors;
};

/* host-g: authenticated, writing and reading back stamped blocks until told to stop. */
static void *good_host(void *arg)
{
	struct good *g = arg;
	struct wf_host *h;
	struct wf_qp *qp;
	struct wf_vol *v;
	uint64_t *w, *r;

	WF_CHECK_EQ(th_host_try(g->e, "host-g", SECRET_G, 8, &h, &qp), 0);
	WF_CHECK_EQ(wf_vol_open_name(qp, "main", &v), 0);
	w = wf_dma_alloc(qp, 8192);
	r = wf_dma_alloc(qp, 8192);
	WF_CHECK(w && r);
	for (uint64_t gen = 1; !atomic_load(&g->stop) || gen < 50; gen++) {
		uint64_t lba = 1024 + (gen % 512) * 16;

		for (int i = 0; i < 1024; i++)
			w[i] = lba * 0x9e3779b97f4a7c15ull ^ gen ^ (uint64_t)i;
		if (wf_qp_io(qp, v, WF_IO_WRITE, lba, 16, w, 10) ||
		    wf_qp_io(qp, v, WF_IO_READ, lba, 16, r, 10) || memcmp(w, r, 8192))
			g->errors++;
		g->ios += 2;
	}
	wf_dma_free(qp, w);
	wf_dma_free(qp, r);
	wf_vol_close(v);
	wf_qp_close(qp);
	wf_host_close(h);
	return NULL;
}

/* One malformed capsule on a connected raw host-a queue, from a list of kinds. */
static void bad_capsule(struct th_raw *r, unsigned kind)
{
	uint8_t b[WF_CMD_SIZE + 16];
	struct wf_cmd c = {.opcode = WF_OP_READ,
			   .cid = (uint16_t)(100 + kind),
			   .volume = 1,
			   .nblocks = 1,
			   .data = {(uint64_t)(uintptr_t)r->buf, 512, r->mr->key}};
	unsigned want;

	switch (kind % 12) {
	case 0: /* cut short */
		memset(b, 0xee, sizeof(b));
		b[2] = (uint8_t)c.cid;
		b[3] = (uint8_t)(c.cid >> 8);
		WF_CHECK_EQ(th_raw_send(r, b, 4 + kind % 60, c.cid), WF_SC_MALFORMED);
		return;
	case 1:
		c.version = 7;
		wf_cmd_encode(&c, b);
		b[1] = 7;
		WF_CHECK_EQ(th_raw_send(r, b, WF_CMD_SIZE, c.cid), WF_SC_BAD_VERSION);
		return;
	case 2: /* inline_len that disagrees with the capsule's length */
		c.version = WF_WIRE_VERSION;
		c.inline_len = 16;
		wf_cmd_encode(&c, b);
		WF_CHECK_EQ(th_raw_send(r, b, WF_CMD_SIZE, c.cid), WF_SC_MALFORMED);
		return;
	case 3:
		c.opcode = (uint8_t)(0x20 + kind % 200);
		want = WF_SC_INVALID_OPCODE;
		break;
	case 4:
		c.cdw[1] = kind;
		want = WF_SC_INVALID_FIELD;
		break;
	case 5:
		c.data = (struct wf_sgl){0};
		want = WF_SC_INVALID_DATA;
		break;
	case 6:
		c.volume = 99;
		want = WF_SC_UNKNOWN_VOLUME;
		break;
	case 7:
		c.volume = 2; /* priv: host-p's */
		want = WF_SC_ACCESS_DENIED;
		break;
	case 8:
		c.lba = (16u << 20) / 512 + kind;
		want = WF_SC_LBA_OUT_OF_RANGE;
		break;
	case 9:
		c.opcode = WF_OP_WRITE;
		c.volume = 3; /* ro */
		want = WF_SC_READ_ONLY;
		break;
	case 10:
		c.nblocks = 4096; /* 2 MiB: over max_transfer */
		want = WF_SC_TRANSFER_TOO_LARGE;
		break;
	default:
		c.opcode = WF_OP_CONNECT; /* a second CONNECT */
		c.volume = 0;
		c.nblocks = 0;
		c.data = (struct wf_sgl){0};
		c.inline_len = WF_CONNECT_DATA_SIZE;
		want = WF_SC_NOT_CONNECTED;
		WF_CHECK_EQ(th_raw_cmd(r, &c, b), want);
		return;
	}
	WF_CHECK_EQ(th_raw_cmd(r, &c, NULL), want);
}

/* A write whose buffer key the host never registered: that connection, only, goes. */
static void wrong_key(struct th_env *e, uint32_t key)
{
	struct wf_cmd c = {.opcode = WF_OP_WRITE, .cid = 5, .volume = 1, .nblocks = 8};
	struct th_raw r;

	WF_CHECK_EQ(th_raw_open(e, &r, "host-a"), 0);
	WF_CHECK_EQ(th_raw_connect(&r, "host-a"), WF_SC_SUCCESS);
	c.data = (struct wf_sgl){(uint64_t)(uintptr_t)r.buf, 4096, r.mr->key ^ key};
	WF_CHECK_EQ(th_raw_cmd(&r, &c, NULL), TH_DOWN);
	th_raw_close(&r);
}

/* CONNECT as host-s and try to work without authenticating. */
static void unauthenticated(struct th_env *e, unsigned n)
{
	struct th_raw r;

	WF_CHECK_EQ(th_raw_open(e, &r, "host-s"), 0);
	WF_CHECK_EQ(th_raw_connect(&r, "host-s"), WF_SC_SUCCESS);
	for (unsigned i = 0; i < n; i++)
		WF_CHECK_EQ(i & 1 ? raw_read(&r, 1, i) : raw_keep_alive(&r, 0),
			    WF_SC_AUTH_REQUIRED);
	th_raw_close(&r);
}

/* A proof replayed from @old, or made with a wrong secret: refused and hung up on. */
static void bad_auth(struct th_env *e, const struct raw_auth *old)
{
	struct raw_auth a;
	struct th_raw r;

	WF_CHECK_EQ(th_raw_open(e, &r, "host-s"), 0);
	WF_CHECK_EQ(th_raw_connect(&r, "host-s"), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_challenge(&r, &a, old ? SECRET_S : WRONG, 0), WF_SC_SUCCESS);
	if (old)
		memcpy(a.proof, old->proof, sizeof(a.proof));
	WF_CHECK_EQ(raw_reply(&r, &a), WF_SC_AUTH_FAILED);
	raw_wait_down(&r);
	th_raw_close(&r);
}

#define HOSTILE_TOTAL 10000
#define HOSTILE_CONNS 60 /* of each kind that costs a connection */

static void case_hostile(struct th_env *e)
{
	struct good g = {.e = e};
	struct raw_auth rec;
	struct th_raw r, m;
	pthread_t t;
	unsigned n = 0;

	WF_CHECK_EQ(pthread_create(&t, NULL, good_host, &g), 0);
	/* A genuine exchange to record, for replaying later. */
	WF_CHECK_EQ(th_raw_open(e, &r, "host-s"), 0);
	WF_CHECK_EQ(th_raw_connect(&r, "host-s"), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_challenge(&r, &rec, SECRET_S, 0), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_reply(&r, &rec), WF_SC_SUCCESS);
	for (int i = 0; i < HOSTILE_CONNS; i++, n += 4) {
		struct th_raw x;

		bad_auth(e, &rec); /* replayed */
		bad_auth(e, NULL); /* wrong secret */
		wrong_key(e, 0x5a5a0000u + (uint32_t)i);
		WF_CHECK_EQ(th_raw_open(e, &x, "mallory"), -EACCES); /* unknown host */
		th_raw_close(&x);
	}
	for (int i = 0; i < HOSTILE_CONNS; i++, n += 8)
		unauthenticated(e, 8);
	/* The rest: malformed and forbidden capsules on one connected queue. */
	WF_CHECK_EQ(th_raw_open(e, &m, "host-a"), 0);
	WF_CHECK_EQ(th_raw_connect(&m, "host-a"), WF_SC_SUCCESS);
	for (unsigned k = 0; n < HOSTILE_TOTAL; k++, n++)
		bad_capsule(&m, k);
	/* The recorded session's connection still works, then replays its own reply. */
	WF_CHECK_EQ(raw_keep_alive(&r, rec.token), WF_SC_SUCCESS);
	WF_CHECK_EQ(raw_keep_alive(&m, 0), WF_SC_SUCCESS);
	th_raw_close(&m);
	th_raw_close(&r);
	atomic_store(&g.stop, true);
	WF_CHECK_EQ(pthread_join(t, NULL), 0);
	printf("hostile: %u bad inputs, each refused; good host: %lu I/Os, %d errors\n", n,
	       (unsigned long)g.ios, g.errors);
	WF_CHECK_EQ(g.errors, 0);
	WF_CHECK(g.ios >= 100);
}

struct test_case {
	const char *name;
	void (*fn)(struct th_env *e);
};

static const struct test_case cases[] = {
    {"auth", case_auth},
    {"hostile", case_hostile},
};

int main(int argc, char **argv)
{
	struct th_env e = {.transport = "tcp", .addr = "127.0.0.1"};
	const char *which = "all";
	int c;

	while ((c = getopt(argc, argv, "t:c:")) != -1) {
		if (c == 't')
			e.transport = optarg;
		else if (c == 'c')
			which = optarg;
		else
			return 2;
	}
	if (!strcmp(e.transport, "rdma")) {
		e.addr = getenv("WEFT_RXE_ADDR");
		WF_CHECK(e.addr != NULL);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(which, "all") && strcmp(which, cases[i].name))
			continue;
		th_env_start(&e, config);
		cases[i].fn(&e);
		th_env_stop(&e);
		printf("security %s %s: ok\n", e.transport, cases[i].name);
	}
	return 0;
}
