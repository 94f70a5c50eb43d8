/* SPDX-License-Identifier: MIT */
/*
 * Authentication: HMAC-SHA256 challenge-response in both directions, and
 * the sessions that later connections of an authenticated host resume.
 *
 * Each side sends a fresh 32-byte nonce and proves it knows the key by an
 * HMAC over a role label, the host identity, both nonces and the session
 * token. The labels differ, so a proof can never be reflected back as the
 * other side's, and both nonces are in every proof, so none can be replayed
 * on another connection. The key is the host's secret for a new session and
 * the session's derived key for a resumed one; neither crosses the wire.
 *
 * The state machines here are pure (no I/O, time passed in) so that the
 * target, the host and a fuzzer drive the very same code.
 */
#ifndef WF_CORE_AUTH_H
#define WF_CORE_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/wire.h>

#define WF_AUTH_SECRET_MIN 16  /* bytes; shorter secrets are refused */
#define WF_AUTH_SECRET_MAX 128 /* bytes */
#define WF_AUTH_KEY_SIZE   32  /* a session key: SHA-256 sized */

enum wf_auth_role { WF_AUTH_ROLE_HOST, WF_AUTH_ROLE_TARGET };

/* Fill @buf with @len bytes from OpenSSL's CSPRNG; 0 or -EIO. */
int wf_auth_random(void *buf, size_t len);

/*
 * @role's proof: HMAC-SHA256 under @key over the role's label, @host, the
 * host nonce @hn, the target nonce @tn and @token. 0 or -EIO.
 */
int wf_auth_proof(const uint8_t *key, size_t keylen, enum wf_auth_role role, const char *host,
		  const uint8_t *hn, const uint8_t *tn, uint64_t token,
		  uint8_t out[WF_AUTH_PROOF_SIZE]);

/* The key a new session's later connections prove with, derived from the secret. */
int wf_auth_session_key(const uint8_t *secret, size_t len, const char *host, const uint8_t *hn,
			const uint8_t *tn, uint8_t out[WF_AUTH_KEY_SIZE]);

/* Compare two proofs in constant time. */
bool wf_auth_proof_equal(const uint8_t *a, const uint8_t *b);

/* One live or recently idle session. */
struct wf_auth_session {
	char host[WF_HOST_NAME_MAX];
	uint64_t token; /* 0: slot unused */
	uint8_t key[WF_AUTH_KEY_SIZE];
	uint32_t nconns;
	uint64_t idle_since_ms;
};

/*
 * The target's sessions, shared by its threads. Only connection setup and
 * teardown take the lock; commands compare a token the connection holds.
 */
struct wf_auth_sessions {
	pthread_mutex_t lock;
	struct wf_auth_session *v;
	uint32_t n;
	uint64_t idle_ms; /* a session with no connection lives this long */
};

/* Make room for @n sessions that outlive their last connection by @idle_ms. */
int wf_auth_sessions_init(struct wf_auth_sessions *s, uint32_t n, uint64_t idle_ms);

/* Free the table. */
void wf_auth_sessions_fini(struct wf_auth_sessions *s);

/* Drop one connection's reference to session @token of @host. */
void wf_auth_session_put(struct wf_auth_sessions *s, const char *host, uint64_t token,
			 uint64_t now_ms);

enum wf_auth_srv_state {
	WF_AUTH_SRV_WAIT_CHALLENGE = 0,
	WF_AUTH_SRV_WAIT_REPLY,
	WF_AUTH_SRV_DONE,
	WF_AUTH_SRV_FAILED, /* terminal: the connection gets no second try */
};

/* The target's side of one connection's exchange. */
struct wf_auth_srv {
	enum wf_auth_srv_state state;
	char host[WF_HOST_NAME_MAX];
	const uint8_t *secret;
	size_t secret_len;
	uint8_t hn[WF_AUTH_NONCE_SIZE], tn[WF_AUTH_NONCE_SIZE];
	uint8_t key[WF_AUTH_KEY_SIZE]; /* a resumed session's */
	uint64_t token;		       /* resumed, or (when done) issued */
};

/* Start the exchange for @host, whose secret is @secret (kept by reference). */
void wf_auth_srv_init(struct wf_auth_srv *a, const char *host, const uint8_t *secret, size_t len);

/*
 * AUTH_CHALLENGE: the host's nonce @hn and the token it wants to resume
 * (0: new). Fills @ans. An unknown or expired token falls back to the
 * secret, and the answer says so (ans->token 0).
 */
enum wf_status wf_auth_srv_challenge(struct wf_auth_srv *a, struct wf_auth_sessions *s,
				     uint64_t token, const uint8_t *hn, uint64_t now_ms,
				     struct wf_auth_answer *ans);

/*
 * AUTH_REPLY: check the host's @proof; on success the connection holds a
 * reference to its session, whose token lands in *@token.
 */
enum wf_status wf_auth_srv_reply(struct wf_auth_srv *a, struct wf_auth_sessions *s,
				 const uint8_t *proof, uint64_t now_ms, uint64_t *token);

/* What a host keeps between its connections: the session they resume. */
struct wf_auth_cli_session {
	uint64_t token; /* 0: none yet */
	uint8_t key[WF_AUTH_KEY_SIZE];
};

/* The host's side of one connection's exchange. */
struct wf_auth_cli {
	char host[WF_HOST_NAME_MAX];
	const uint8_t *secret;
	size_t secret_len;
	struct wf_auth_cli_session sess; /* what this connection asked to resume */
	uint8_t hn[WF_AUTH_NONCE_SIZE], tn[WF_AUTH_NONCE_SIZE];
	uint64_t token; /* what the target's answer is keyed for */
	bool answered;
};

/* Begin: draw the host nonce into @hn; @sess is the session to resume (token 0: none). */
int wf_auth_cli_init(struct wf_auth_cli *c, const char *host, const uint8_t *secret, size_t len,
		     const struct wf_auth_cli_session *sess, uint8_t hn[WF_AUTH_NONCE_SIZE]);

/* Check the target's answer; on success fill the host's @proof. -EKEYREJECTED if forged. */
int wf_auth_cli_answer(struct wf_auth_cli *c, const struct wf_auth_answer *ans,
		       uint8_t proof[WF_AUTH_PROOF_SIZE]);

/* AUTH_REPLY succeeded with @token: the session later connections resume. */
int wf_auth_cli_finish(struct wf_auth_cli *c, uint64_t token, struct wf_auth_cli_session *out);

#endif /* WF_CORE_AUTH_H */
