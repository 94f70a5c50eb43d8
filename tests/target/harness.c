// SPDX-License-Identifier: MIT
/* The target test harness (tests/target/harness.h). */
#include "tests/target/harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tests/lib/check.h"

static void *target_main(void *arg)
{
	struct th_env *e = arg;

	e->run_rc = wf_target_run(e->target, e->stop_fd);
	return NULL;
}

void th_env_start(struct th_env *e, const char *body)
{
	char err[WF_CFG_ERR_MAX];
	size_t len = strlen(body) + 128;
	char *text = malloc(len);
	int n;

	WF_CHECK(text != NULL);
	n = snprintf(text, len, "listen %s %s 0\n%s", e->transport, e->addr, body);
	wf_log_init(&e->log, "target", e->log_level, STDERR_FILENO);
	wf_config_init(&e->cfg);
	if (wf_config_parse(&e->cfg, text, (size_t)n, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	free(text);
	WF_CHECK_EQ(wf_target_create(&e->cfg, &e->log, &e->target), 0);
	e->port = wf_target_port(e->target, 0);
	WF_CHECK(e->port != 0);
	e->stop_fd = eventfd(0, EFD_CLOEXEC);
	WF_CHECK(e->stop_fd >= 0);
	WF_CHECK_EQ(pthread_create(&e->thread, NULL, target_main, e), 0);
}

void th_env_stop(struct th_env *e)
{
	uint64_t one = 1;

	WF_CHECK_EQ(write(e->stop_fd, &one, sizeof(one)), sizeof(one));
	WF_CHECK_EQ(pthread_join(e->thread, NULL), 0);
	WF_CHECK_EQ(e->run_rc, 0);
	wf_target_destroy(e->target);
	close(e->stop_fd);
}

int th_host_try(struct th_env *e, const char *id, const char *secret, uint16_t qd,
		struct wf_host **h, struct wf_qp **qp)
{
	struct wf_host_opts o;

	wf_host_opts_default(&o);
	o.addr = e->addr;
	o.port = e->port;
	o.transport = e->transport;
	o.host_id = id;
	o.queue_depth = qd;
	o.secret = secret;
	return th_host_open_opts(&o, h, qp);
}

int th_host_open_opts(const struct wf_host_opts *o, struct wf_host **h, struct wf_qp **qp)
{
	int rc = wf_host_open(o, h);

	if (rc)
		return rc;
	rc = wf_qp_open(*h, qp);
	if (rc) {
		wf_host_close(*h);
		*h = NULL;
	}
	return rc;
}

static void raw_recv(struct wf_ep *ep, struct wf_rx *rx)
{
	struct th_raw *r = wf_ep_ctx(ep);

	r->cpl_data = 0;
	r->cpl_imm = rx->has_imm && rx->len == 0;
	if (rx->has_imm) {
		WF_CHECK_EQ(wf_cpl_imm_decode(rx->imm, &r->cpl), WF_SC_SUCCESS);
		WF_CHECK(rx->len <= 4096);
		memcpy(r->buf, rx->data, rx->len);
		r->cpl_data = rx->len;
	} else {
		WF_CHECK_EQ(wf_cpl_decode(rx->data, rx->len, &r->cpl), WF_SC_SUCCESS);
	}
	r->got++;
	wf_rx_release(rx);
}

static void raw_event(struct wf_ep *ep, enum wf_ep_event ev, int status)
{
	struct th_raw *r = wf_ep_ctx(ep);

	if (ev == WF_EP_CONNECTED) {
		r->up = 1;
		return;
	}
	r->down = status ? status : -ECONNRESET;
	/* A refusal's reason is readable only here: the endpoint goes after we return. */
	if (ev == WF_EP_CONNECT_FAILED && status == -ECONNREFUSED)
		r->down = wf_reject_reason_errno(wf_ep_reject_reason(ep));
	r->ep = NULL;
}

static const struct wf_ep_handlers raw_handlers = {raw_recv, raw_event};

int th_raw_dial(const char *transport, const char *addr, uint16_t port, struct th_raw *r,
		const char *host)
{
	struct wf_transport_opts o;
	struct wf_conn_params p = {.version = WF_TRANSPORT_VERSION, .queue_depth = 4};

	memset(r, 0, sizeof(*r));
	wf_transport_opts_default(&o);
	WF_CHECK_EQ(
	    wf_transport_create(wf_transport_ops_find(strcmp(transport, "rdma") ? "tcp" : "verbs"),
				&o, &r->t),
	    0);
	WF_CHECK_EQ(wf_poll_group_create(r->t, &r->pg), 0);
	r->buf = aligned_alloc(4096, 4096);
	WF_CHECK(r->buf != NULL);
	WF_CHECK_EQ(wf_mr_reg(r->t, r->buf, 4096, WF_ACCESS_REMOTE_WRITE, &r->mr), 0);
	p.capsule_size = o.capsule_size;
	snprintf(p.host_id, sizeof(p.host_id), "%s", host);
	WF_CHECK_EQ(wf_connect(r->pg, addr, port, &p, &raw_handlers, r, 10000, &r->ep), 0);
	while (!r->up && !r->down)
		WF_CHECK(wf_poll_group_poll(r->pg, 100) >= 0);
	return r->up ? 0 : r->down;
}

int th_raw_open(struct th_env *e, struct th_raw *r, const char *host)
{
	return th_raw_dial(e->transport, e->addr, e->port, r, host);
}

static void raw_sent(struct wf_xfer *x, int status)
{
	struct th_raw *r = x->arg;

	WF_CHECK(status == 0 || r->down || status == -ECONNRESET);
	r->sent++;
}

unsigned th_raw_send(struct th_raw *r, const void *bytes, uint32_t len, uint16_t cid)
{
	int want = r->got + 1, sent = r->sent + 1;

	WF_CHECK(len <= sizeof(r->capsule));
	if (r->down)
		return TH_DOWN;
	memcpy(r->capsule, bytes, len);
	r->x = (struct wf_xfer){
	    .op = WF_XFER_SEND, .buf = r->capsule, .len = len, .done = raw_sent, .arg = r};
	WF_CHECK_EQ(wf_ep_post(r->ep, &r->x), 0);
	while ((r->got < want || r->sent < sent) && !r->down)
		WF_CHECK(wf_poll_group_poll(r->pg, 100) >= 0);
	if (r->got < want)
		return TH_DOWN;
	WF_CHECK_EQ(r->cpl.cid, cid);
	return r->cpl.status;
}

unsigned th_raw_cmd(struct th_raw *r, struct wf_cmd *c, const void *data)
{
	uint8_t b[256];

	WF_CHECK(WF_CMD_SIZE + c->inline_len <= sizeof(b));
	if (!c->version)
		c->version = WF_WIRE_VERSION;
	wf_cmd_encode(c, b);
	if (c->inline_len && data)
		memcpy(b + WF_CMD_SIZE, data, c->inline_len);
	return th_raw_send(r, b, WF_CMD_SIZE + c->inline_len, c->cid);
}

unsigned th_raw_connect(struct th_raw *r, const char *host)
{
	struct wf_connect_data d = {.queue_depth = 4};
	uint8_t data[WF_CONNECT_DATA_SIZE];
	struct wf_cmd c = {.opcode = WF_OP_CONNECT, .cid = 1, .inline_len = WF_CONNECT_DATA_SIZE};

	snprintf(d.host, sizeof(d.host), "%s", host);
	wf_connect_data_encode(&d, data);
	return th_raw_cmd(r, &c, data);
}

void th_raw_close(struct th_raw *r)
{
	wf_poll_group_destroy(r->pg);
	wf_mr_dereg(r->mr);
	wf_transport_destroy(r->t);
	free(r->buf);
}
