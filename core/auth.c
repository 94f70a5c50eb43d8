// SPDX-License-Identifier: MIT
/*
 * HMAC-SHA256 challenge-response and sessions (core/auth.h). OpenSSL's
 * libcrypto does the cryptography; this file only decides what is hashed
 * and in which state a message is acceptable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/auth.h"

static const char *const labels[] = {
    [WF_AUTH_ROLE_HOST] = "weft-auth-v1 host",
    [WF_AUTH_ROLE_TARGET] = "weft-auth-v1 target",
};
static const char session_label[] = "weft-auth-v1 session";

int wf_auth_random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

/* HMAC over label || host (fixed width, zero padded) || hn || tn || token (LE). */
static int mac(const uint8_t *key, size_t keylen, const char *label, const char *host,
	       const uint8_t *hn, const uint8_t *tn, uint64_t token, uint8_t *out)
{
	uint8_t msg[32 + WF_HOST_NAME_MAX + 2 * WF_AUTH_NONCE_SIZE + 8] = {0};
	size_t off = strlen(label) + 1;
	unsigned int outlen = 0;

	memcpy(msg, label, off);
	off = 32;
	strncpy((char *)msg + off, host, WF_HOST_NAME_MAX - 1);
	off += WF_HOST_NAME_MAX;
	memcpy(msg + off, hn, WF_AUTH_NONCE_SIZE);
	off += WF_AUTH_NONCE_SIZE;
	memcpy(msg + off, tn, WF_AUTH_NONCE_SIZE);
	off += WF_AUTH_NONCE_SIZE;
	for (int i = 0; i < 8; i++)
		msg[off + i] = (uint8_t)(token >> (8 * i));
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, sizeof(msg), out, &outlen) ||
	    outlen != WF_AUTH_PROOF_SIZE)
		return -EIO;
	return 0;
}

int wf_auth_proof(const uint8_t *key, size_t keylen, enum wf_auth_role role, const char *host,
		  const uint8_t *hn, const uint8_t *tn, uint64_t token,
		  uint8_t out[WF_AUTH_PROOF_SIZE])
{
	return mac(key, keylen, labels[role], host, hn, tn, token, out);
}

int wf_auth_session_key(const uint8_t *secret, size_t len, const char *host, const uint8_t *hn,
			const uint8_t *tn, uint8_t out[WF_AUTH_KEY_SIZE])
{
	return mac(secret, len, session_label, host, hn, tn, 0, out);
}

bool wf_auth_proof_equal(const uint8_t *a, const uint8_t *b)
{
	return CRYPTO_memcmp(a, b, WF_AUTH_PROOF_SIZE) == 0;
}

int wf_auth_sessions_init(struct wf_auth_sessions *s, uint32_t n, uint64_t idle_ms)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->v = calloc(n, sizeof(*s->v));
	if (!s->v)
		return -ENOMEM;
	rc = pthread_mutex_init(&s->lock, NULL);
	if (rc) {
		free(s->v);
		return -rc;
	}
	s->n = n;
	s->idle_ms = idle_ms;
	return 0;
}

void wf_auth_sessions_fini(struct wf_auth_sessions *s)
{
	if (!s->v)
		return;
	OPENSSL_cleanse(s->v, s->n * sizeof(*s->v));
	free(s->v);
	s->v = NULL;
	pthread_mutex_destroy(&s->lock);
}

static bool expired(const struct wf_auth_sessions *s, const struct wf_auth_session *e,
		    uint64_t now_ms)
{
	return e->nconns == 0 && now_ms - e->idle_since_ms > s->idle_ms;
}

/* Under the lock: the live session @token of @host, or NULL. */
static struct wf_auth_session *find(struct wf_auth_sessions *s, const char *host, uint64_t token,
				    uint64_t now_ms)
{
	for (uint32_t i = 0; i < s->n; i++) {
		struct wf_auth_session *e = &s->v[i];

		if (e->token != token || strcmp(e->host, host))
			continue;
		if (!expired(s, e, now_ms))
			return e;
		OPENSSL_cleanse(e, sizeof(*e));
		return NULL;
	}
	return NULL;
}

/* Under the lock: a free slot, else the longest idle one, else NULL. */
static struct wf_auth_session *slot(struct wf_auth_sessions *s)
{
	struct wf_auth_session *idle = NULL;

	for (uint32_t i = 0; i < s->n; i++) {
		struct wf_auth_session *e = &s->v[i];

		if (!e->token)
			return e;
		if (!e->nconns && (!idle || e->idle_since_ms < idle->idle_since_ms))
			idle = e;
	}
	return idle;
}

void wf_auth_session_put(struct wf_auth_sessions *s, const char *host, uint64_t token,
			 uint64_t now_ms)
{
	struct wf_auth_session *e;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->n; i++) {
		e = &s->v[i];
		if (e->token == token && !strcmp(e->host, host) && e->nconns) {
			if (!--e->nconns)
				e->idle_since_ms = now_ms;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

void wf_auth_srv_init(struct wf_auth_srv *a, const char *host, const uint8_t *secret, size_t len)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->host, sizeof(a->host), "%s", host);
	a->secret = secret;
	a->secret_len = len;
}

static enum wf_status srv_fail(struct wf_auth_srv *a)
{
	a->state = WF_AUTH_SRV_FAILED;
	OPENSSL_cleanse(a->key, sizeof(a->key));
	return WF_SC_AUTH_FAILED;
}

/* The key this connection's proofs use: the session's, or the secret. */
static void srv_key(const struct wf_auth_srv *a, const uint8_t **key, size_t *len)
{
	if (a->token) {
		*key = a->key;
		*len = sizeof(a->key);
	} else {
		*key = a->secret;
		*len = a->secret_len;
	}
}

enum wf_status wf_auth_srv_challenge(struct wf_auth_srv *a, struct wf_auth_sessions *s,
				     uint64_t token, const uint8_t *hn, uint64_t now_ms,
				     struct wf_auth_answer *ans)
{
	const uint8_t *key;
	size_t len;

	if (a->state != WF_AUTH_SRV_WAIT_CHALLENGE)
		return srv_fail(a);
	a->token = 0;
	if (token) {
		struct wf_auth_session *e;

		pthread_mutex_lock(&s->lock);
		e = find(s, a->host, token, now_ms);
		if (e) {
			memcpy(a->key, e->key, sizeof(a->key));
			a->token = token;
		}
		pthread_mutex_unlock(&s->lock);
	}
	memcpy(a->hn, hn, WF_AUTH_NONCE_SIZE);
	if (wf_auth_random(a->tn, sizeof(a->tn)))
		return WF_SC_INTERNAL;
	srv_key(a, &key, &len);
	memset(ans, 0, sizeof(*ans));
	memcpy(ans->nonce, a->tn, WF_AUTH_NONCE_SIZE);
	ans->token = a->token;
	if (wf_auth_proof(key, len, WF_AUTH_ROLE_TARGET, a->host, a->hn, a->tn, a->token,
			  ans->proof))
		return WF_SC_INTERNAL;
	a->state = WF_AUTH_SRV_WAIT_REPLY;
	return WF_SC_SUCCESS;
}

/* Under the lock: take a reference to the resumed session, or open a new one. */
static enum wf_status srv_bind(struct wf_auth_srv *a, struct wf_auth_sessions *s, uint64_t now_ms)
{
	struct wf_auth_session *e;
	uint64_t token = 0;

	if (a->token) {
		e = find(s, a->host, a->token, now_ms);
		if (!e)
			return WF_SC_AUTH_FAILED; /* expired between challenge and reply */
		e->nconns++;
		return WF_SC_SUCCESS;
	}
	e = slot(s);
	if (!e)
		return WF_SC_BUSY;
	while (!token || find(s, a->host, token, now_ms))
		if (wf_auth_random(&token, sizeof(token)))
			return WF_SC_INTERNAL;
	memset(e, 0, sizeof(*e));
	snprintf(e->host, sizeof(e->host), "%s", a->host);
	if (wf_auth_session_key(a->secret, a->secret_len, a->host, a->hn, a->tn, e->key)) {
		OPENSSL_cleanse(e, sizeof(*e));
		return WF_SC_INTERNAL;
	}
	e->token = token;
	e->nconns = 1;
	a->token = token;
	return WF_SC_SUCCESS;
}

enum wf_status wf_auth_srv_reply(struct wf_auth_srv *a, struct wf_auth_sessions *s,
				 const uint8_t *proof, uint64_t now_ms, uint64_t *token)
{
	uint8_t want[WF_AUTH_PROOF_SIZE];
	enum wf_status st;
	const uint8_t *key;
	size_t len;

	if (a->state != WF_AUTH_SRV_WAIT_REPLY)
		return srv_fail(a);
	srv_key(a, &key, &len);
	if (wf_auth_proof(key, len, WF_AUTH_ROLE_HOST, a->host, a->hn, a->tn, a->token, want))
		return srv_fail(a);
	if (!wf_auth_proof_equal(want, proof))
		return srv_fail(a);
	pthread_mutex_lock(&s->lock);
	st = srv_bind(a, s, now_ms);
	pthread_mutex_unlock(&s->lock);
	if (st == WF_SC_AUTH_FAILED)
		return srv_fail(a);
	if (st)
		return st;
	OPENSSL_cleanse(a->key, sizeof(a->key));
	a->state = WF_AUTH_SRV_DONE;
	*token = a->token;
	return WF_SC_SUCCESS;
}

int wf_auth_cli_init(struct wf_auth_cli *c, const char *host, const uint8_t *secret, size_t len,
		     const struct wf_auth_cli_session *sess, uint8_t hn[WF_AUTH_NONCE_SIZE])
{
	memset(c, 0, sizeof(*c));
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->secret = secret;
	c->secret_len = len;
	if (sess)
		c->sess = *sess;
	if (wf_auth_random(c->hn, sizeof(c->hn)))
		return -EIO;
	memcpy(hn, c->hn, WF_AUTH_NONCE_SIZE);
	return 0;
}

int wf_auth_cli_answer(struct wf_auth_cli *c, const struct wf_auth_answer *ans,
		       uint8_t proof[WF_AUTH_PROOF_SIZE])
{
	uint8_t want[WF_AUTH_PROOF_SIZE];
	const uint8_t *key = c->secret;
	size_t len = c->secret_len;

	if (c->answered)
		return -EPROTO;
	/* The target keys by the session we asked for, or falls back to the secret. */
	if (ans->token) {
		if (ans->token != c->sess.token)
			return -EKEYREJECTED;
		key = c->sess.key;
		len = sizeof(c->sess.key);
	}
	memcpy(c->tn, ans->nonce, WF_AUTH_NONCE_SIZE);
	c->token = ans->token;
	if (wf_auth_proof(key, len, WF_AUTH_ROLE_TARGET, c->host, c->hn, c->tn, c->token, want))
		return -EIO;
	if (!wf_auth_proof_equal(want, ans->proof))
		return -EKEYREJECTED;
	c->answered = true;
	return wf_auth_proof(key, len, WF_AUTH_ROLE_HOST, c->host, c->hn, c->tn, c->token, proof);
}

int wf_auth_cli_finish(struct wf_auth_cli *c, uint64_t token, struct wf_auth_cli_session *out)
{
	if (!c->answered || !token || (c->token && token != c->token))
		return -EPROTO;
	if (c->token) {
		*out = c->sess; /* resumed: the same session */
		return 0;
	}
	out->token = token;
	return wf_auth_session_key(c->secret, c->secret_len, c->host, c->hn, c->tn, out->key);
}
