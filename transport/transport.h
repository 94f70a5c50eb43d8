/* SPDX-License-Identifier: MIT */
/*
 * The transport interface: capsules (two-sided SEND/RECV) and data movement
 * (one-sided RDMA READ/WRITE against memory the peer registered) between two
 * endpoints, the same for verbs and TCP. target/ and initiator/ use only this
 * header and never learn which transport carries them.
 *
 * Threads: a poll group belongs to one thread. Every endpoint, listener and
 * xfer of a poll group is touched only by that thread, so nothing on the I/O
 * path takes a lock. A transport and its memory registrations may be shared.
 * The one crossing is at accept: a listener's connect_request handler may
 * place the new endpoint in another poll group of the same transport. The
 * listener's thread then hands it over through that group's handoff queue
 * (a mutex, taken only at connection setup, and a wakeup of the group's fd);
 * from then on only the chosen group's thread touches it, and its
 * WF_EP_CONNECTED and every later callback run inside that group's
 * wf_poll_group_poll(). A group that may be chosen must outlive every
 * listener that may choose it.
 *
 * Callbacks (recv, xfer done, endpoint events, connect requests) run only
 * inside wf_poll_group_poll(), never inside the call that posted the work.
 *
 * Semantics every transport keeps:
 * - xfers on one endpoint start in post order. A SEND posted after a WRITE is
 *   delivered after the WRITE's data is in place (RC ordering). A SEND posted
 *   after a READ is not held back for the READ's data: wait for its done().
 * - A READ or WRITE names the peer's memory by a wf_rdesc. The peer checks the
 *   key, the access rights and the bounds before touching memory; a violation
 *   fails that xfer with -EACCES and takes the endpoint down (as a verbs QP
 *   goes to error), in both transports.
 * - A WRITE may have done == NULL (unsignaled): it then completes, and fails,
 *   with the next xfer on the endpoint that has a done callback. A run of
 *   them may be longer than any send queue: the transport asks for a
 *   completion of its own before its queue would fill.
 * - Both sides see WF_EP_CONNECTED when a connection is up; for the accepting
 *   side it is the first time the endpoint is handed over.
 * - An endpoint's handler sees exactly one final event: WF_EP_CONNECT_FAILED
 *   (status < 0; -ECANCELED when the owner gave up) if it never saw
 *   WF_EP_CONNECTED, WF_EP_DISCONNECTED otherwise. Before it, every xfer not
 *   yet completed completes with an error (-ECONNRESET unless a more precise
 *   one is known). After that handler returns, the transport frees the
 *   endpoint.
 * - Capsules the peer sent before it hung up are delivered before the final
 *   event, as TCP's byte stream does: a "denied, goodbye" reaches the host.
 * - Received capsules stay valid until wf_rx_release(), which may be called
 *   after their endpoint is gone but must be called before their poll group
 *   is destroyed.
 */
#ifndef WF_TRANSPORT_TRANSPORT_H
#define WF_TRANSPORT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

/* Bump on any change to connection private data or PDU layouts. */
#define WF_TRANSPORT_VERSION 1
/*
 * Host identity bytes, NUL included. rdma_cm allows 56 bytes of private
 * data on connect; the identity takes 40 of them.
 */
#define WF_HOST_ID_MAX 40

struct wf_transport;
struct wf_transport_ops;
struct wf_poll_group;
struct wf_listener;
struct wf_ep;

struct wf_transport_opts {
	uint32_t capsule_size;	  /* largest capsule; receive buffers are this big */
	uint32_t max_queue_depth; /* most outstanding capsules a peer may have per endpoint */
	uint32_t srq_depth;	  /* receive buffers shared by one poll group's endpoints */
	uint32_t spin_us;	  /* cap on a waiting poll's spin (core/spin.h) */
	int numa_node;		  /* -1: the device's own node */
	const char *device;	  /* verbs: device name, NULL for the first; tcp: unused */
	struct wf_log *log;	  /* may be NULL */
};

/* Access a registration grants to peers; local access is always granted. */
enum wf_access {
	WF_ACCESS_LOCAL = 0,
	WF_ACCESS_REMOTE_READ = 1 << 0,
	WF_ACCESS_REMOTE_WRITE = 1 << 1,
	WF_ACCESS_GRANT = 1 << 2, /* parts may be granted to one peer at a time (WF_XFER_GRANT) */
};

/* Registered memory. Fields are read-only for users. */
struct wf_mr {
	struct wf_transport *transport;
	void *addr;
	size_t len;
	uint32_t key;	 /* what a peer names in a wf_rdesc; never 0 with remote access */
	unsigned access; /* enum wf_access bits */
};

/* A peer's memory, as advertised in a capsule: 16 bytes on the wire. */
struct wf_rdesc {
	uint64_t addr;
	uint32_t len;
	uint32_t key;
};

enum wf_xfer_op {
	WF_XFER_SEND = 1,
	WF_XFER_READ,	/* peer memory -> buf */
	WF_XFER_WRITE,	/* buf -> peer memory */
	WF_XFER_GRANT,	/* let this endpoint's peer reach buf (within mr) with access */
	WF_XFER_REVOKE, /* end grant, live on this endpoint, before the peer does */
};

/*
 * A grant: a window on registered memory (a verbs type-2 memory window)
 * that only one endpoint's peer can use, and only until that peer ends it.
 * wf_ep_post() of a WF_XFER_GRANT gives it a fresh key at once, to put in
 * the capsule that goes out after it; the peer ends it with the SEND that
 * names that key in inv_key, and the receiver sees the key in rx->inv_key.
 * An endpoint's grants die with it. A live grant must not be granted again:
 * its owner waits for the ending SEND, ends it with a WF_XFER_REVOKE (when
 * the peer's answer cannot end it, as a WRITE with immediate data cannot),
 * or takes the endpoint down. A REVOKE's done() comes once the peer can no
 * longer reach the grant; a grant the peer already ended must not be revoked.
 */
struct wf_grant;

/*
 * One unit of work on an endpoint. The caller owns it (usually embedded in a
 * request) and must not touch it between wf_ep_post() and done().
 */
struct wf_xfer {
	enum wf_xfer_op op;
	void *buf;		/* local memory: within mr, or any memory for a SEND of */
	uint32_t len;		/* at most the capsule size */
	struct wf_mr *mr;	/* required for READ and WRITE; optional for SEND */
	struct wf_rdesc remote; /* READ and WRITE only */
	void (*done)(struct wf_xfer *x, int status); /* NULL: unsignaled WRITE or GRANT */
	void *arg;				     /* for the caller */
	struct wf_grant *grant;			     /* GRANT and REVOKE only */
	unsigned access;			     /* GRANT: WF_ACCESS_REMOTE_* bits */
	uint32_t inv_key; /* SEND: end the peer's grant with this key on arrival; 0: none */
	/*
	 * SEND or WRITE: 32 bits for the peer's rx->imm, never with inv_key. After a
	 * WRITE the peer gets an rx of len 0, once the data is in place.
	 */
	bool with_imm;
	uint32_t imm;

	/* The transport's own; callers leave them alone. */
	struct wf_xfer *next_;
	int status_;
};

/* A received capsule. */
struct wf_rx {
	void *data;
	uint32_t len;
	uint32_t inv_key; /* the grant of ours the peer ended with it, or 0 */
	bool has_imm;	  /* the peer sent it with_imm: */
	uint32_t imm;	  /* those 32 bits */
};

enum wf_ep_event {
	WF_EP_CONNECTED,      /* status 0 */
	WF_EP_CONNECT_FAILED, /* status < 0; see wf_ep_reject_reason() */
	WF_EP_DISCONNECTED,   /* status 0 when asked for, < 0 when lost */
};

/* Why a target refused a connection; carried in the reject. */
enum wf_reject_reason {
	WF_REJECT_NONE = 0,
	WF_REJECT_VERSION,	/* protocol version differs */
	WF_REJECT_QUEUE_DEPTH,	/* queue depth zero or above the target's maximum */
	WF_REJECT_CAPSULE_SIZE, /* capsule size below the protocol minimum */
	WF_REJECT_HOST,		/* host identity not allowed */
	WF_REJECT_BUSY,		/* out of resources; try later */
	WF_REJECT_MALFORMED,	/* connect request could not be parsed */
	WF_REJECT_MAX_,
};

/* Negotiated in the connect request and answered by the accept. */
struct wf_conn_params {
	uint16_t version;
	uint16_t queue_depth;
	uint32_t capsule_size;
	char host_id[WF_HOST_ID_MAX];
};

struct wf_ep_handlers {
	/* A capsule arrived; release it with wf_rx_release() as soon as it is consumed. */
	void (*recv)(struct wf_ep *ep, struct wf_rx *rx);
	/* Connection state changed; see enum wf_ep_event. */
	void (*event)(struct wf_ep *ep, enum wf_ep_event ev, int status);
};

struct wf_listen_handlers {
	/*
	 * A peer asks to connect, with @params already checked for version and
	 * queue depth, and the capsule size negotiated down to this side's.
	 * Return 0 after setting *handlers and *ctx to accept, or a positive
	 * enum wf_reject_reason to refuse. *pg comes in as the listener's poll
	 * group; set it to another group of the same transport to have the
	 * endpoint live there (see Threads above).
	 */
	int (*connect_request)(struct wf_listener *l, const struct wf_conn_params *params,
			       const struct wf_ep_handlers **handlers, void **ctx,
			       struct wf_poll_group **pg);
};

/* The ops table of a transport kind by name ("verbs", "tcp"); NULL if unknown. */
const struct wf_transport_ops *wf_transport_ops_find(const char *name);

/* Defaults: 4 KiB + 64 B capsules, queue depth 128, 4096 shared receive buffers. */
void wf_transport_opts_default(struct wf_transport_opts *opts);

/* Open a transport of kind @ops (device, protection domain or nothing, per kind). */
int wf_transport_create(const struct wf_transport_ops *ops, const struct wf_transport_opts *opts,
			struct wf_transport **out);

/* Close a transport whose poll groups and registrations are all gone. */
void wf_transport_destroy(struct wf_transport *t);

/* Name of the transport kind, e.g. "tcp". */
const char *wf_transport_name(const struct wf_transport *t);

/* Options the transport was created with. */
const struct wf_transport_opts *wf_transport_opts(const struct wf_transport *t);

/* Register @len bytes at @addr with @access (enum wf_access bits); not for the I/O path. */
int wf_mr_reg(struct wf_transport *t, void *addr, size_t len, unsigned access, struct wf_mr **out);

/* Undo wf_mr_reg(); no xfer may still use it. */
void wf_mr_dereg(struct wf_mr *mr);

/* Make a grant, to be posted (WF_XFER_GRANT) again and again; not for the I/O path. */
int wf_grant_create(struct wf_transport *t, struct wf_grant **out);

/* Free a grant that is not live (ended by the peer, or its endpoint gone). */
void wf_grant_destroy(struct wf_grant *g);

/* The key of @g's latest WF_XFER_GRANT: what the peer names to reach it. */
uint32_t wf_grant_key(const struct wf_grant *g);

/* A poll group: one completion queue and one shared receive queue, for one thread. */
int wf_poll_group_create(struct wf_transport *t, struct wf_poll_group **out);

/* Close every endpoint and listener of @pg (their handlers run), then free it. */
void wf_poll_group_destroy(struct wf_poll_group *pg);

/*
 * Process completions and events and post what was queued, once. With no
 * work ready and @timeout_ms != 0, sleep on the group's fd for up to
 * @timeout_ms (-1: until work). Returns the number of events handled, or < 0.
 */
int wf_poll_group_poll(struct wf_poll_group *pg, int timeout_ms);

/*
 * The fd that becomes readable when @pg has work, for callers' own event
 * loops. Arming it costs a system call, so a poll with timeout 0 (busy
 * polling) leaves it unarmed: wait on it only after a poll with a non-zero
 * timeout returned 0, or simply poll with the timeout you would wait for.
 * Posts go out at the next poll: after posting, poll or arm before waiting.
 */
int wf_poll_group_fd(struct wf_poll_group *pg);

/*
 * How many capsules @pg has delivered and READs it has seen land, ever: the
 * work a waiting caller waits for. Completions of its own SENDs and WRITEs
 * are not counted; they follow a post by a round trip whatever the peer does.
 */
uint64_t wf_poll_group_arrivals(const struct wf_poll_group *pg);

/*
 * Make @pg's fd become readable at its next work, for callers that sleep on
 * several groups' fds at once; runs what is already there and returns how
 * much (> 0: poll again instead of sleeping).
 */
int wf_poll_group_arm(struct wf_poll_group *pg);

/* The transport @pg belongs to. */
struct wf_transport *wf_poll_group_transport(struct wf_poll_group *pg);

/* Listen on @addr:@port (port 0 picks one); endpoints it accepts live in @pg. */
int wf_listen(struct wf_poll_group *pg, const char *addr, uint16_t port,
	      const struct wf_listen_handlers *h, void *ctx, struct wf_listener **out);

/* The port a listener is bound to. */
uint16_t wf_listener_port(const struct wf_listener *l);

/* The ctx given to wf_listen(). */
void *wf_listener_ctx(const struct wf_listener *l);

/* Stop listening; endpoints already accepted are unaffected. */
void wf_listener_close(struct wf_listener *l);

/*
 * Start connecting to @addr:@port. *out is valid at once; the outcome arrives
 * as WF_EP_CONNECTED or WF_EP_CONNECT_FAILED within @timeout_ms.
 */
int wf_connect(struct wf_poll_group *pg, const char *addr, uint16_t port,
	       const struct wf_conn_params *params, const struct wf_ep_handlers *h, void *ctx,
	       int timeout_ms, struct wf_ep **out);

/*
 * Queue @x on @ep; it goes out on the group's next poll, batched with the rest.
 * -EINVAL for a malformed xfer, -ENOTCONN when @ep is not connected.
 */
int wf_ep_post(struct wf_ep *ep, struct wf_xfer *x);

/* Take @ep down; in-flight xfers fail, then WF_EP_DISCONNECTED is delivered. */
void wf_ep_disconnect(struct wf_ep *ep);

/* The ctx given at connect or accept. */
void *wf_ep_ctx(const struct wf_ep *ep);

/* The negotiated parameters (the peer's host identity on the accepting side). */
const struct wf_conn_params *wf_ep_params(const struct wf_ep *ep);

/* The poll group @ep lives in. */
struct wf_poll_group *wf_ep_poll_group(const struct wf_ep *ep);

/* Why the peer refused, after WF_EP_CONNECT_FAILED with -ECONNREFUSED. */
enum wf_reject_reason wf_ep_reject_reason(const struct wf_ep *ep);

/* Give a received capsule's buffer back to its poll group. */
void wf_rx_release(struct wf_rx *rx);

/* Human-readable text for a reject reason. */
const char *wf_reject_reason_str(enum wf_reject_reason r);

/*
 * The errno that says what a reject meant, for callers that report errors as
 * errno: -EACCES for a host not allowed, -EPROTONOSUPPORT for a version,
 * -EINVAL for bad parameters, -EBUSY, -EPROTO; -ECONNREFUSED for no reason.
 */
int wf_reject_reason_errno(enum wf_reject_reason r);

#endif /* WF_TRANSPORT_TRANSPORT_H */
