/* SPDX-License-Identifier: MIT */
/*
 * The TCP transport's own types, shared by its files:
 *   tcp.c       the transport and its memory registration table
 *   tcp_pg.c    poll group: epoll loop, receive pool, teardown of endpoints
 *   tcp_conn.c  listen, connect and the CONNECT/ACCEPT/REJECT handshake
 *   tcp_io.c    PDUs on a connected endpoint: capsules, emulated READ/WRITE
 *
 * One thread owns a poll group and everything in it; only the registration
 * table is shared between threads (see struct wf_tcp_transport).
 */
#ifndef WF_TRANSPORT_TCP_PRIV_H
#define WF_TRANSPORT_TCP_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport_impl.h"

/*
 * Every PDU starts with this header, little-endian on the wire, followed by
 * @len payload bytes. @tag is the requester's sequence number of the xfer
 * the PDU carries or answers, counted per endpoint and direction from 0.
 */
struct wf_tcp_pdu {
	uint8_t type;	/* enum wf_tcp_pdu_type */
	uint8_t flags;	/* WF_TCP_F_* */
	uint16_t rsvd;	/* zero */
	uint32_t len;	/* payload bytes after the header */
	uint64_t tag;	/* requester's xfer sequence number */
	uint64_t raddr; /* WRITE, READ_REQ: the target's address */
	uint32_t rkey;	/* WRITE, READ_REQ: the target's key */
	uint32_t arg;	/* READ_REQ: bytes asked for; TERM: a positive errno; CAPSULE, WRITE: imm */
};
_Static_assert(sizeof(struct wf_tcp_pdu) == 32, "PDU header is 32 bytes on the wire");
_Static_assert(offsetof(struct wf_tcp_pdu, raddr) == 16, "PDU header has no padding");

enum wf_tcp_pdu_type {
	WF_TCP_CONNECT = 1, /* client to target: struct wf_conn_wire */
	WF_TCP_ACCEPT,	    /* target to client: the negotiated struct wf_conn_wire */
	WF_TCP_REJECT,	    /* target to client: struct wf_reject_wire, then close */
	WF_TCP_CAPSULE,	    /* a SEND */
	WF_TCP_WRITE,	    /* data for the target's (raddr, rkey) */
	WF_TCP_READ_REQ,    /* asks for arg bytes at the target's (raddr, rkey) */
	WF_TCP_READ_RESP,   /* the data a READ_REQ asked for */
	WF_TCP_ACK,	    /* the PDU @tag, sent with WF_TCP_F_ACK, has been processed */
	WF_TCP_TERM,	    /* the PDU @tag broke the rules (errno in arg); closing */
	WF_TCP_PDU_MAX_,
};

/* The requester needs to know the PDU was processed before it completes. */
#define WF_TCP_F_ACK 0x01
/* CAPSULE, WRITE: arg carries immediate data, as verbs SEND/RDMA_WRITE_WITH_IMM do. */
#define WF_TCP_F_IMM 0x02

/* Replies (and handshake PDUs) an endpoint can owe its peer at once: the peer's credits. */
#define WF_TCP_CTL_DEPTH 64
/* Read-ahead per endpoint: one read(2) takes in many small PDUs. */
#define WF_TCP_RA_BYTES 16384
/* How long a closing endpoint may take to get its last PDU out. */
#define WF_TCP_CLOSE_TIMEOUT_MS 2000
/* How long a target waits for a CONNECT PDU after the TCP accept. */
#define WF_TCP_HELLO_TIMEOUT_MS 10000

/* An intrusive doubly linked list; a node that is in no list points at itself. */
struct wf_tcp_node {
	struct wf_tcp_node *prev, *next;
};

static inline void wf_tcp_list_init(struct wf_tcp_node *n)
{
	n->prev = n->next = n;
}

static inline bool wf_tcp_list_empty(const struct wf_tcp_node *head)
{
	return head->next == head;
}

static inline void wf_tcp_list_del(struct wf_tcp_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	wf_tcp_list_init(n);
}

static inline void wf_tcp_list_add_tail(struct wf_tcp_node *head, struct wf_tcp_node *n)
{
	wf_tcp_list_del(n);
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* What an epoll event points at. */
enum wf_tcp_kind {
	WF_TCP_KIND_EP,
	WF_TCP_KIND_LISTENER,
	WF_TCP_KIND_KICK,
};

struct wf_tcp_mr {
	struct wf_mr base;
	struct wf_tcp_mr *hnext; /* hash chain */
};

/*
 * Registrations live in a chained hash table keyed by the (random-looking,
 * unique) key, behind a rwlock: registering is rare and takes it for
 * writing, while the I/O path takes it for reading around the check *and*
 * the copy, so a deregistered region is never touched afterwards. Readers
 * of different poll groups do not exclude each other.
 */
struct wf_tcp_transport {
	struct wf_transport base;
	pthread_rwlock_t lock;
	struct wf_tcp_mr **buckets;
	uint32_t nbuckets; /* power of two */
	uint32_t key_seed; /* keys are mix(seed + counter): unique, never 0 */
	uint32_t key_counter;
};

struct wf_tcp_pg;

struct wf_tcp_rxbuf {
	struct wf_rx_impl impl;
	struct wf_tcp_pg *pg;
	uint32_t index;
};

struct wf_tcp_listener {
	struct wf_listener base;
	enum wf_tcp_kind kind;
	int fd;
	uint64_t resume_at;	 /* muted after running out of fds: when to listen again */
	struct wf_tcp_node node; /* pg->listeners, then pg->dead until freed */
};

enum wf_tcp_ep_state {
	WF_TCP_EP_CONNECTING, /* client: TCP connect under way */
	WF_TCP_EP_HELLO,      /* client: awaiting ACCEPT; target: awaiting CONNECT */
	WF_TCP_EP_CONNECTED,
	WF_TCP_EP_CLOSING, /* no more reads: finishing a last PDU (TERM, REJECT), then down */
	WF_TCP_EP_DOWN,	   /* socket closed; on pg->reap until its handler has run */
};

enum wf_tcp_stall {
	WF_TCP_STALL_NONE,
	WF_TCP_STALL_BUF,  /* a capsule waits for a receive buffer */
	WF_TCP_STALL_MOVE, /* accepted into another group: awaiting the handoff */
};

/* Which queue's head is being written when a PDU went out in part. */
enum wf_tcp_txcur {
	WF_TCP_TX_NONE,
	WF_TCP_TX_XFER,
	WF_TCP_TX_CTL,
};

/* A PDU this side owes the peer: a reply or a handshake step. */
struct wf_tcp_ctl {
	struct wf_tcp_pdu hdr; /* wire order */
	const void *data;      /* payload, hdr.len bytes */
	uint32_t key;	       /* READ_RESP: re-checked when the data goes out */
};

struct wf_tcp_ep {
	struct wf_ep base;
	enum wf_tcp_kind kind;
	struct wf_tcp_pg *pg;
	struct wf_tcp_listener *listener; /* target side, until the handshake ends */
	struct wf_tcp_pg *move_to;	  /* STALL_MOVE: the group it goes to */
	int fd;
	enum wf_tcp_ep_state state;
	enum wf_tcp_ep_state down_from; /* the state it went down from */
	bool passive;			/* accepted by a listener */
	bool announced;			/* its handlers know it exists */
	bool can_read, can_write;	/* edge-triggered readiness not yet used up */
	bool hup;			/* the peer's FIN or an error was reported */
	enum wf_tcp_stall stall;
	int down_status;
	int term_status;	 /* the peer's or our TERM: the failing xfer's status */
	uint64_t term_tag;	 /* ... and its tag */
	uint64_t deadline;	 /* CONNECTING, HELLO, CLOSING: CLOCK_MONOTONIC ns */
	struct wf_tcp_node node; /* pg->eps */
	struct wf_tcp_node work; /* pg->work while it has work, pg->reap once down */

	/* Requests: posted and not fully written, then written and awaiting completion. */
	struct wf_xfer *txq_head, *txq_tail;
	struct wf_xfer *flq_head, *flq_tail;
	struct wf_xfer *rvq_head, *rvq_tail; /* REVOKEs, done at the next progress */
	uint64_t tx_seq;		     /* tag of txq_head */
	uint64_t fl_seq;		     /* tag of flq_head */
	uint32_t replies_due; /* written requests awaiting a reply: at most WF_TCP_CTL_DEPTH */
	bool uncovered;	      /* an unsignaled WRITE awaits a later PDU asking for an ACK */
	enum wf_tcp_txcur tx_cur;
	size_t tx_off; /* bytes of the current PDU already written */

	struct wf_tcp_ctl ctl[WF_TCP_CTL_DEPTH];
	uint32_t ctl_head, ctl_count;

	/* The PDU being read. */
	struct wf_tcp_pdu rx_wire;
	uint32_t rx_hoff; /* header bytes read */
	bool rx_body;	  /* header parsed; reading its payload into rx_dst */
	uint32_t rx_poff; /* payload bytes read */
	char *rx_dst;
	struct wf_tcp_rxbuf *rx_buf; /* CAPSULE: the buffer it lands in */
	struct wf_xfer *rx_x;	     /* READ_RESP: the READ it answers */
	uint64_t rx_seq;	     /* tag the peer's next request must carry */

	/* CLOSING: the last PDU, how much of it is out, and the status to go down with. */
	struct wf_tcp_pdu last;
	struct wf_reject_wire last_data;
	uint32_t last_off;
	int closing_status;
	enum wf_tcp_ep_state closing_from;

	struct wf_conn_wire hello_out; /* CONNECT or ACCEPT payload */
	struct wf_conn_wire hello_in;

	/* Grants live on this endpoint (tcp_grant.c), by slot; keys carry slot and generation. */
	struct wf_tcp_grant **gtab;
	uint32_t gcap, gfree_hint;
	uint16_t ggen;

	/* Stream bytes read ahead of the PDU being parsed: ra[ra_head..ra_tail). */
	uint32_t ra_head, ra_tail;
	char ra[WF_TCP_RA_BYTES];
};

struct wf_tcp_pg {
	struct wf_poll_group base;
	struct wf_tcp_transport *t;
	struct wf_log *log;
	int epfd;
	int kickfd; /* eventfd: wakes epfd for work queued outside poll */
	enum wf_tcp_kind kick_kind;
	bool in_poll, kicked;
	bool adopt_due; /* a kick was read: other groups may have handed endpoints over */
	bool armed;	/* armed for a sleep on epfd: work queued outside a poll kicks */
	char *slab;	/* nbufs receive buffers of capsule_size bytes */
	struct wf_tcp_rxbuf *bufs;
	uint32_t *free; /* stack of free buffer indexes */
	uint32_t nfree, nbufs;
	uint32_t nstalled;    /* endpoints in WF_TCP_STALL_BUF */
	uint32_t grant_eps;   /* endpoints that granted: spreads their key generations */
	uint32_t nhello;      /* endpoints with a handshake deadline */
	uint32_t npaused;     /* listeners muted for want of fds */
	struct wf_look quiet; /* with no endpoint, at the epoll: see quiet_skip() */
	struct wf_tcp_node eps, work, reap, listeners, dead;
	struct wf_tcp_node moving; /* accepted for another group; handed over after this round */

	/* Endpoints other groups handed to this one; the only cross-thread state. */
	pthread_mutex_t handoff_lock;
	bool handoff_init;
	struct wf_tcp_node handoff;
};

static inline struct wf_tcp_ep *wf_tcp_ep_of(struct wf_ep *ep)
{
	return wf_container_of(ep, struct wf_tcp_ep, base);
}

static inline struct wf_tcp_pg *wf_tcp_pg_of(struct wf_poll_group *pg)
{
	return wf_container_of(pg, struct wf_tcp_pg, base);
}

/* tcp.c */

/*
 * Find the registration behind (@key, @addr, @len) granting @access, with
 * the table read-locked by the caller; NULL if there is none.
 */
const struct wf_mr *wf_tcp_mr_find(struct wf_tcp_transport *t, uint32_t key, uint64_t addr,
				   uint64_t len, unsigned access);

/* Read-lock the registration table around a check and the copy it allows. */
void wf_tcp_mr_rdlock(struct wf_tcp_transport *t);

/* Undo wf_tcp_mr_rdlock(). */
void wf_tcp_mr_unlock(struct wf_tcp_transport *t);

/* tcp_pg.c */

/* Make the poll group's fd readable so the next poll runs queued work. */
void wf_tcp_pg_kick(struct wf_tcp_pg *pg);

/* Have the next poll give @ep a turn (writes queued, reads not drained). */
void wf_tcp_ep_want_work(struct wf_tcp_ep *ep);

/* A free receive buffer, or NULL when the pool is empty (the caller stalls). */
struct wf_tcp_rxbuf *wf_tcp_rxbuf_get(struct wf_tcp_pg *pg);

/*
 * Take @ep down: close its socket now, fail its xfers and tell its handler
 * later, from the poll loop. @status goes to the handler; idempotent.
 */
void wf_tcp_ep_down(struct wf_tcp_ep *ep, int status);

/*
 * Take @ep, whose listener's handler chose another group, out of its own
 * group now (epoll set, endpoint list, deadlines); the handoff itself
 * happens once this round no longer names it.
 */
void wf_tcp_ep_move(struct wf_tcp_ep *ep, struct wf_tcp_pg *to);

/* Allocate an endpoint of @pg around connected or connecting socket @fd. */
int wf_tcp_ep_alloc(struct wf_tcp_pg *pg, int fd, struct wf_tcp_ep **out);

/* ops: an epoll fd, an eventfd and a pool of srq_depth receive buffers. */
int wf_tcp_pg_create(struct wf_transport *t, struct wf_poll_group **out);
/* ops: take every endpoint down, run their handlers, free it all. */
void wf_tcp_pg_destroy(struct wf_poll_group *pg);
/* ops: one round of queued work, socket events, deadlines and teardowns. */
int wf_tcp_pg_poll(struct wf_poll_group *pg, int timeout_ms);
/* ops: the epoll fd. */
int wf_tcp_pg_fd(struct wf_poll_group *pg);
/* ops: one round that may not wait, also in a group quiet_skip() would skip. */
int wf_tcp_pg_arm(struct wf_poll_group *pg);
/* ops: local disconnect; the handler runs from the next poll. */
void wf_tcp_disconnect(struct wf_ep *ep);

/* tcp_conn.c */

/* Handle readiness of a listening socket: accept every pending connection. */
void wf_tcp_listener_ready(struct wf_tcp_listener *l);

/* Unmute listeners whose pause is over; the ms until the next one is due, or -1. */
int wf_tcp_listeners_resume(struct wf_tcp_pg *pg);

/* The client's TCP connect finished (or failed): send CONNECT. */
void wf_tcp_connect_done(struct wf_tcp_ep *ep);

/* Answer ACCEPT and announce the endpoint, in the group it lives in. */
void wf_tcp_accepted(struct wf_tcp_ep *ep);

/* A handshake PDU arrived complete in ep->rx_wire and ep->hello_in. */
void wf_tcp_hello_rx(struct wf_tcp_ep *ep, uint8_t type, uint32_t len);

/* ops for tcp.c's table */
int wf_tcp_listen(struct wf_poll_group *pg, const char *addr, uint16_t port,
		  struct wf_listener **out);
/* Stop listening; the listener is freed by the poll loop. */
void wf_tcp_listener_close(struct wf_listener *l);
/* Start a non-blocking TCP connect; the handshake runs in the poll loop. */
int wf_tcp_connect(struct wf_poll_group *pg, const char *addr, uint16_t port, int timeout_ms,
		   struct wf_ep **out);

/* tcp_io.c */

/* Queue a handshake or reply PDU; -ENOSPC when the control ring is full. */
int wf_tcp_ctl_push(struct wf_tcp_ep *ep, uint8_t type, uint64_t tag, const void *data,
		    uint32_t len, uint32_t key);

/* Read and write what the socket allows, within a budget; true if more is pending. */
bool wf_tcp_ep_progress(struct wf_tcp_ep *ep);

/*
 * Stop reading and close after one last PDU (TERM or REJECT, @len bytes of
 * @data at most a wf_reject_wire), once what is half written is out; then
 * go down with @status. Never blocks: the poll loop writes it, within
 * WF_TCP_CLOSE_TIMEOUT_MS.
 */
void wf_tcp_close_with(struct wf_tcp_ep *ep, int status, uint8_t type, uint64_t tag, uint32_t arg,
		       const void *data, uint32_t len);

/* True while @ep has a deadline the poll loop must watch. */
static inline bool wf_tcp_ep_timed(const struct wf_tcp_ep *ep)
{
	return ep->state < WF_TCP_EP_CONNECTED || ep->state == WF_TCP_EP_CLOSING;
}

/* Fail every xfer of a down endpoint, in post order; see the TERM rules. */
void wf_tcp_fail_xfers(struct wf_tcp_ep *ep);

/* ops: queue an xfer. */
int wf_tcp_post(struct wf_ep *ep, struct wf_xfer *x);

/* tcp_grant.c: grants, the emulation of verbs memory windows */
struct wf_tcp_grant;
int wf_tcp_grant_create(struct wf_transport *t, struct wf_grant **out);
void wf_tcp_grant_destroy(struct wf_grant *g);
/* Make @x's grant live on @ep with a fresh key; -EBUSY if it still is. */
int wf_tcp_grant_post(struct wf_tcp_ep *ep, struct wf_xfer *x);
/* End @g, live on @ep, now; -EINVAL if it is not. */
int wf_tcp_grant_revoke(struct wf_tcp_ep *ep, struct wf_grant *g);
/* With the registration table read-locked: does a live grant of @ep allow this? */
bool wf_tcp_grant_ok(struct wf_tcp_ep *ep, uint32_t key, uint64_t addr, uint64_t len,
		     unsigned access);
/* The peer ended the grant with @key (a capsule's rkey); unknown keys are ignored. */
void wf_tcp_grant_end_key(struct wf_tcp_ep *ep, uint32_t key);
/* @ep is going away: its grants are no longer live anywhere. */
void wf_tcp_grants_drop(struct wf_tcp_ep *ep);

#endif /* WF_TRANSPORT_TCP_PRIV_H */
