// SPDX-License-Identifier: MIT
/*
 * Authentication commands (docs/SECURITY.md). AUTH_CHALLENGE and AUTH_REPLY
 * drive the connection's core/auth.h exchange; until it is done every other
 * command answers AUTH_REQUIRED, and afterwards each must carry the session
 * token. A failed exchange ends the connection once its completion is sent:
 * one guess per connection.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/auth.h"
#include "core/log.h"
#include "target/target_priv.h"

#define SESSION_IDLE_MS (300u * 1000u)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int wf_tgt_auth_init(struct wf_target *t)
{
	const struct wf_config *cfg = t->cfg;

	if (!cfg->nsecrets) {
		wf_log_warn(t->log, "NO SECRETS CONFIGURED: hosts are not authenticated; any peer "
				    "that names an allowed host identity gets its volumes");
	} else {
		for (uint32_t i = 0; i < cfg->nallows; i++)
			if (!wf_config_secret(cfg, cfg->allows[i].host))
				wf_log_warn(t->log,
					    "host %s has no secret: it is not authenticated",
					    cfg->allows[i].host);
		if (cfg->world_readable)
			wf_log_warn(t->log, "the config file holds secrets and others may read it");
	}
	return wf_auth_sessions_init(&t->sessions, 2 * cfg->max_connections, SESSION_IDLE_MS);
}

void wf_tgt_auth_fini(struct wf_target *t)
{
	wf_auth_sessions_fini(&t->sessions);
}

void wf_tgt_auth_connect(struct wf_tgt_conn *conn, uint64_t *result)
{
	const struct wf_cfg_secret *k = wf_config_secret(conn->tpg->shard->cfg, conn->host);

	if (!k) {
		conn->authed = true; /* token 0 */
		return;
	}
	wf_auth_srv_init(&conn->auth, conn->host, k->key, k->len);
	conn->auth_needed = true;
	*result |= WF_CONNECT_RES_AUTH;
}

void wf_tgt_auth_close(struct wf_tgt_conn *conn)
{
	if (conn->authed && conn->token)
		wf_auth_session_put(&conn->tpg->shard->target->sessions, conn->host, conn->token,
				    now_ms());
}

enum wf_status wf_req_check_session(struct wf_tgt_req *req)
{
	const struct wf_tgt_conn *conn = req->conn;

	if (!conn->connected)
		return WF_SC_NOT_CONNECTED;
	if (!conn->authed || req->cmd.token != conn->token)
		return WF_SC_AUTH_REQUIRED;
	return WF_SC_SUCCESS;
}

static enum wf_status check_auth(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;

	if (!conn->connected)
		return WF_SC_NOT_CONNECTED;
	/* No secret here, a second exchange, or a replay: all the same refusal. */
	if (!conn->auth_needed || conn->authed) {
		req->drop_conn = conn->auth_needed;
		return WF_SC_AUTH_FAILED;
	}
	return WF_SC_SUCCESS;
}

static void auth_failed(struct wf_tgt_req *req, enum wf_status st)
{
	wf_log_warn(req->conn->tpg->shard->log, "host %s: %s: %s", req->conn->host,
		    wf_opcode_str(req->cmd.opcode), wf_status_str(st));
	req->drop_conn = true;
	wf_req_complete(req, st);
}

static void start_challenge(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	const uint8_t *hn = (const uint8_t *)req->rx->data + WF_CMD_SIZE;
	struct wf_auth_answer ans;
	enum wf_status st;

	st = wf_auth_srv_challenge(&conn->auth, &conn->tpg->shard->target->sessions, req->cmd.token,
				   hn, now_ms(), &ans);
	if (st) {
		auth_failed(req, st);
		return;
	}
	wf_auth_answer_encode(&ans, req->buf);
	req->len = WF_AUTH_ANSWER_SIZE;
	wf_req_data_out(req);
}

static void start_reply(struct wf_tgt_req *req)
{
	struct wf_tgt_conn *conn = req->conn;
	const uint8_t *proof = (const uint8_t *)req->rx->data + WF_CMD_SIZE;
	bool resumed = conn->auth.token != 0;
	uint64_t token = 0;
	enum wf_status st;

	st = wf_auth_srv_reply(&conn->auth, &conn->tpg->shard->target->sessions, proof, now_ms(),
			       &token);
	if (st) {
		auth_failed(req, st);
		return;
	}
	conn->authed = true;
	conn->token = token;
	req->result = token;
	wf_log_info(conn->tpg->shard->log, "host %s authenticated (%s session)", conn->host,
		    resumed ? "resumed" : "new");
	wf_req_complete(req, WF_SC_SUCCESS);
}

const struct wf_tgt_op wf_auth_challenge_op = {check_auth, true, start_challenge};
const struct wf_tgt_op wf_auth_reply_op = {check_auth, false, start_reply};
