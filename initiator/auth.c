// SPDX-License-Identifier: MIT
/*
 * The host's half of authentication (docs/SECURITY.md). A host with a
 * secret insists that the target prove it too, so a target that does not
 * ask is refused rather than trusted. The first queue pair of a host handle
 * opens a session; later ones resume it with the session's key.
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "initiator/lib_priv.h"

static int challenge(struct wf_qp *qp, struct wf_auth_cli *cli, uint8_t *proof)
{
	struct wf_host *h = qp->host;
	struct wf_auth_cli_session sess;
	uint8_t hn[WF_AUTH_NONCE_SIZE];
	struct wf_auth_answer ans;
	struct wf_cmd c = {
	    .opcode = WF_OP_AUTH_CHALLENGE,
	    .inline_len = WF_AUTH_NONCE_SIZE,
	    .data = {(uint64_t)(uintptr_t)qp->admin_buf, WF_AUTH_ANSWER_SIZE, qp->admin_mr->key},
	};
	int rc;

	pthread_mutex_lock(&h->lock);
	sess = h->sess;
	pthread_mutex_unlock(&h->lock);
	rc = wf_auth_cli_init(cli, h->host_id, h->secret, h->secret_len, &sess, hn);
	OPENSSL_cleanse(&sess, sizeof(sess));
	if (rc)
		return rc;
	c.token = cli->sess.token;
	memset(qp->admin_buf, 0, WF_AUTH_ANSWER_SIZE);
	rc = wf_qp_admin(qp, &c, hn);
	if (rc)
		return rc;
	if (wf_auth_answer_decode(qp->admin_buf, WF_AUTH_ANSWER_SIZE, &ans))
		return -EPROTO;
	rc = wf_auth_cli_answer(cli, &ans, proof);
	if (rc == -EKEYREJECTED)
		wf_log_err(&h->log, "target %s failed to prove it knows host %s's secret", h->addr,
			   h->host_id);
	return rc;
}

static int reply(struct wf_qp *qp, struct wf_auth_cli *cli, const uint8_t *proof)
{
	struct wf_host *h = qp->host;
	struct wf_auth_cli_session sess;
	struct wf_cmd c = {.opcode = WF_OP_AUTH_REPLY, .inline_len = WF_AUTH_PROOF_SIZE};
	uint64_t token = 0;
	int rc;

	rc = wf_qp_admin_result(qp, &c, proof, &token);
	if (rc == -EKEYREJECTED)
		wf_log_err(&h->log, "target %s rejected host %s's proof: wrong secret?", h->addr,
			   h->host_id);
	if (rc)
		return rc;
	rc = wf_auth_cli_finish(cli, token, &sess);
	if (rc)
		return rc;
	pthread_mutex_lock(&h->lock);
	h->sess = sess;
	pthread_mutex_unlock(&h->lock);
	OPENSSL_cleanse(&sess, sizeof(sess));
	qp->token = token;
	return 0;
}

int wf_qp_auth(struct wf_qp *qp, uint64_t connect_result)
{
	struct wf_host *h = qp->host;
	uint8_t proof[WF_AUTH_PROOF_SIZE];
	struct wf_auth_cli cli;
	int rc;

	if (!(connect_result & WF_CONNECT_RES_AUTH)) {
		if (!h->secret_len)
			return 0;
		wf_log_err(&h->log, "target %s does not authenticate host %s: refusing it", h->addr,
			   h->host_id);
		return -EKEYREJECTED;
	}
	if (!h->secret_len) {
		wf_log_err(&h->log, "target %s requires a secret for host %s", h->addr, h->host_id);
		return -ENOKEY;
	}
	rc = challenge(qp, &cli, proof);
	if (!rc)
		rc = reply(qp, &cli, proof);
	OPENSSL_cleanse(&cli, sizeof(cli));
	return rc;
}
