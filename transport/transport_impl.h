/* SPDX-License-Identifier: MIT */
/*
 * For transport implementations only: the ops table each kind fills, the
 * base objects each kind embeds first in its own, and the connect-request
 * format both kinds put on the wire.
 */
#ifndef WF_TRANSPORT_IMPL_H
#define WF_TRANSPORT_IMPL_H

#include <stddef.h>

#include "core/spin.h"
#include "transport/transport.h"

#define wf_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* A capsule must at least hold a command. */
#define WF_CAPSULE_MIN 64

struct wf_transport {
	const struct wf_transport_ops *ops;
	struct wf_transport_opts opts;
};

struct wf_poll_group {
	struct wf_transport *transport;
	struct wf_spin spin; /* a poll with a timeout spins on this budget first */
	uint64_t arrivals;   /* capsules delivered and READs landed; see wf_poll_group_arrivals() */
};

struct wf_listener {
	struct wf_poll_group *pg;
	const struct wf_listen_handlers *h;
	void *ctx;
	uint16_t port;
};

struct wf_ep {
	struct wf_poll_group *pg;
	const struct wf_ep_handlers *h;
	void *ctx;
	struct wf_conn_params params;
	enum wf_reject_reason reject;
};

struct wf_grant {
	struct wf_transport *transport;
	uint32_t key;
};

struct wf_rx_impl {
	struct wf_rx rx;
	void (*release)(struct wf_rx_impl *rx);
};

struct wf_transport_ops {
	const char *name;
	int (*create)(const struct wf_transport_opts *opts, struct wf_transport **out);
	void (*destroy)(struct wf_transport *t);
	int (*mr_reg)(struct wf_transport *t, void *addr, size_t len, unsigned access,
		      struct wf_mr **out);
	void (*mr_dereg)(struct wf_mr *mr);
	int (*grant_create)(struct wf_transport *t, struct wf_grant **out);
	void (*grant_destroy)(struct wf_grant *g);
	int (*pg_create)(struct wf_transport *t, struct wf_poll_group **out);
	void (*pg_destroy)(struct wf_poll_group *pg);
	int (*pg_poll)(struct wf_poll_group *pg, int timeout_ms);
	int (*pg_fd)(struct wf_poll_group *pg);
	int (*pg_arm)(struct wf_poll_group *pg); /* NULL: the fd is always live */
	int (*listen)(struct wf_poll_group *pg, const char *addr, uint16_t port,
		      struct wf_listener **out);
	void (*listener_close)(struct wf_listener *l);
	int (*connect)(struct wf_poll_group *pg, const char *addr, uint16_t port, int timeout_ms,
		       struct wf_ep **out);
	int (*post)(struct wf_ep *ep, struct wf_xfer *x);
	void (*disconnect)(struct wf_ep *ep);
};

extern const struct wf_transport_ops wf_verbs_ops;
extern const struct wf_transport_ops wf_tcp_ops;

/* Connect request and accept, little-endian, fits rdma_cm's 56 private bytes. */
struct wf_conn_wire {
	uint32_t magic; /* WF_CONN_MAGIC */
	uint16_t version;
	uint16_t queue_depth;
	uint32_t capsule_size;
	char host_id[WF_HOST_ID_MAX];
} __attribute__((packed));
_Static_assert(sizeof(struct wf_conn_wire) == 52, "connect private data must fit rdma_cm's 56");

/* A reject's private data: which reason, so the peer sees more than "refused". */
struct wf_reject_wire {
	uint32_t magic; /* WF_CONN_MAGIC */
	uint16_t reason;
	uint16_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct wf_reject_wire) == 8, "reject private data layout");

#define WF_CONN_MAGIC 0x54464557u /* "WEFT" */

/* Encode @p for the wire. */
void wf_conn_encode(const struct wf_conn_params *p, struct wf_conn_wire *w);

/* Decode and sanity-check @len bytes of private data; a reason on failure, else 0. */
enum wf_reject_reason wf_conn_decode(const void *data, size_t len, struct wf_conn_params *p);

/* Decode a reject's private data; WF_REJECT_NONE if it is not ours. */
enum wf_reject_reason wf_reject_decode(const void *data, size_t len);

/*
 * The accepting side's checks: version and queue depth against @opts, and
 * the capsule size negotiated down into @out. Returns 0 or a reject reason.
 */
enum wf_reject_reason wf_conn_negotiate(const struct wf_transport_opts *opts,
					const struct wf_conn_params *peer,
					struct wf_conn_params *out);

/* Set up the shared part of an endpoint. */
void wf_ep_init(struct wf_ep *ep, struct wf_poll_group *pg, const struct wf_ep_handlers *h,
		void *ctx);

#endif /* WF_TRANSPORT_IMPL_H */
