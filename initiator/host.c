// SPDX-License-Identifier: MIT
/*
 * The host handle: options and one transport shared by every queue pair
 * (a transport may be shared; poll groups may not). "auto" picks verbs when
 * an RDMA device can be opened and falls back to TCP otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <openssl/crypto.h>

#include "initiator/lib_priv.h"

void wf_host_opts_default(struct wf_host_opts *o)
{
	*o = (struct wf_host_opts){
	    .addr = "127.0.0.1",
	    .port = 4420,
	    .transport = "auto",
	    .host_id = "host",
	    .queue_depth = 128,
	    .timeout_ms = 10000,
	    .reconnect_timeout_ms = 30000,
	    .keep_alive_ms = 5000,
	    .keep_alive_timeout_ms = 15000,
	    .windows = 1,
	    .cpl_data_reads = 1,
	    .spin_us = WF_SPIN_US_DEFAULT,
	};
}

static int open_kind(struct wf_host *h, const char *kind)
{
	const struct wf_transport_ops *ops = wf_transport_ops_find(kind);
	struct wf_transport_opts topts;

	if (!ops)
		return -EPROTONOSUPPORT;
	wf_transport_opts_default(&topts);
	topts.max_queue_depth = h->opts.queue_depth;
	topts.srq_depth = 2u * h->opts.queue_depth;
	topts.spin_us = h->opts.spin_us;
	topts.log = &h->log;
	return wf_transport_create(ops, &topts, &h->transport);
}

/* What "auto" asks: is there any RDMA device at all? */
static bool rdma_device_present(void)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);

	if (list)
		ibv_free_device_list(list);
	return n > 0;
}

static void host_free(struct wf_host *h)
{
	pthread_mutex_destroy(&h->lock);
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
}

int wf_host_open(const struct wf_host_opts *o, struct wf_host **out)
{
	struct wf_host *h;
	int rc;

	if (!o->addr || !o->host_id || !o->host_id[0] || strlen(o->host_id) >= WF_HOST_NAME_MAX ||
	    strlen(o->addr) >= sizeof(h->addr) || !o->queue_depth || o->queue_depth > 1024 ||
	    o->reconnect_timeout_ms < 0 || o->keep_alive_ms < 0 || o->keep_alive_timeout_ms < 0)
		return -EINVAL;
	if (o->secret &&
	    (strlen(o->secret) < WF_AUTH_SECRET_MIN || strlen(o->secret) > WF_AUTH_SECRET_MAX))
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = pthread_mutex_init(&h->lock, NULL);
	if (rc) {
		free(h);
		return -rc;
	}
	if (o->secret) {
		h->secret_len = strlen(o->secret);
		memcpy(h->secret, o->secret, h->secret_len);
	}
	h->opts = *o;
	snprintf(h->addr, sizeof(h->addr), "%s", o->addr);
	snprintf(h->host_id, sizeof(h->host_id), "%s", o->host_id);
	h->opts.addr = h->addr;
	h->opts.host_id = h->host_id;
	h->opts.secret = NULL; /* the copy above is the only one we keep */
	wf_log_init(&h->log, "libweft", WF_LOG_WARN, STDERR_FILENO);
	if (!o->transport || !strcmp(o->transport, "auto")) {
		rc = open_kind(h, rdma_device_present() ? "verbs" : "tcp");
	} else if (!strcmp(o->transport, "rdma") || !strcmp(o->transport, "verbs")) {
		rc = open_kind(h, "verbs");
	} else if (!strcmp(o->transport, "tcp")) {
		rc = open_kind(h, "tcp");
	} else {
		rc = -EINVAL;
	}
	if (rc) {
		host_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void wf_host_close(struct wf_host *h)
{
	if (!h)
		return;
	wf_transport_destroy(h->transport);
	host_free(h);
}

const char *wf_host_transport(const struct wf_host *h)
{
	return wf_transport_name(h->transport);
}

int wf_status_errno(unsigned status)
{
	static const int map[WF_SC_MAX_] = {
	    [WF_SC_SUCCESS] = 0,
	    [WF_SC_MALFORMED] = -EBADMSG,
	    [WF_SC_BAD_VERSION] = -EPROTONOSUPPORT,
	    [WF_SC_INVALID_OPCODE] = -EOPNOTSUPP,
	    [WF_SC_INVALID_FIELD] = -EINVAL,
	    [WF_SC_INVALID_DATA] = -EPROTO,
	    [WF_SC_NOT_CONNECTED] = -ENOTCONN,
	    [WF_SC_UNKNOWN_VOLUME] = -ENOENT,
	    [WF_SC_ACCESS_DENIED] = -EACCES,
	    [WF_SC_READ_ONLY] = -EROFS,
	    [WF_SC_LBA_OUT_OF_RANGE] = -ERANGE,
	    [WF_SC_TRANSFER_TOO_LARGE] = -E2BIG,
	    [WF_SC_DATA_XFER_ERROR] = -EFAULT,
	    [WF_SC_MEDIA_ERROR] = -EIO,
	    [WF_SC_INTERNAL] = -EREMOTEIO,
	    [WF_SC_BUSY] = -EBUSY,
	    [WF_SC_ABORTED] = -ECANCELED,
	    [WF_SC_AUTH_REQUIRED] = -ENOKEY,
	    [WF_SC_AUTH_FAILED] = -EKEYREJECTED,
	};

	return status < WF_SC_MAX_ ? map[status] : -EREMOTEIO;
}
