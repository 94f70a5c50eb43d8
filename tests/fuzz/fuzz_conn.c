// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the connection exchange before any capsule, i.e. the
 * private data of a connect request and of a reject, and the acceptor's
 * negotiation. Invariants: what decodes has a terminated, non-empty host
 * identity; what negotiation accepts fits the acceptor's limits.
 */
#include "transport/transport_impl.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_transport_opts opts;
	struct wf_conn_params p, neg;
	struct wf_conn_wire w;
	enum wf_reject_reason r;

	r = wf_reject_decode(data, size);
	if ((unsigned)r >= WF_REJECT_MAX_ || !wf_reject_reason_str(r))
		abort();
	if (wf_conn_decode(data, size, &p) != WF_REJECT_NONE)
		return 0;
	if (!memchr(p.host_id, '\0', sizeof(p.host_id)) || p.host_id[0] == '\0')
		abort();
	/* What decodes re-encodes to the same fields and the same identity. */
	wf_conn_encode(&p, &w);
	if (memcmp(&w, data, offsetof(struct wf_conn_wire, host_id)) != 0 ||
	    strcmp(w.host_id, (const char *)data + offsetof(struct wf_conn_wire, host_id)) != 0)
		abort();
	wf_transport_opts_default(&opts);
	if (wf_conn_negotiate(&opts, &p, &neg) == WF_REJECT_NONE &&
	    (neg.queue_depth == 0 || neg.queue_depth > opts.max_queue_depth ||
	     neg.capsule_size > opts.capsule_size || neg.capsule_size < WF_CAPSULE_MIN ||
	     neg.version != WF_TRANSPORT_VERSION))
		abort();
	return 0;
}
