/* SPDX-License-Identifier: MIT */
/*
 * The target's insides, shared by its files: the per-volume descriptor that
 * connections point at, the per-poll-group pools, connections and requests.
 * A shard is what one poll-group thread owns: its own device and volume
 * stack, poll groups (one per transport kind), pools and connections; on
 * the I/O path nothing takes a lock. Only admission crosses threads: thread
 * 0's listeners count a connection into the shard they place it in, so
 * those counters (and the stop flags) are atomics.
 */
#ifndef WF_TARGET_PRIV_H
#define WF_TARGET_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/wire.h>

#include "core/auth.h"
#include "core/bdev.h"
#include "core/pool.h"
#include "target/config.h"
#include "transport/transport.h"

struct wf_target;
struct wf_tgt_shard;
struct wf_tgt_conn;
struct wf_tgt_req;

/* state_dir (checked by the config to leave room), '/', a volume name, ".mirror". */
#define WF_TGT_STATE_PATH_MAX (WF_CFG_PATH_MAX + WF_CFG_NAME_MAX + 8)

/*
 * An exported volume's descriptor (seed 000): the bdev is its ops table and
 * context; connections hold pointers to these and call through them.
 */
struct wf_tgt_volume {
	struct wf_bdev *bdev;
	bool is_device; /* a linear volume of one device is that device: closed with it */
	uint32_t id;	/* wire volume id, 1-based */
	uint32_t block_size;
	uint64_t nblocks;
	uint32_t max_blocks;
	const char *name;
	char state_path[WF_TGT_STATE_PATH_MAX]; /* mirrors with a state_dir */
};
/* A volume absent from a shard (a mirror beyond thread 0) has bdev NULL. */

/*
 * Mirror @v (bdev and name set): read its record under @dir, mark the
 * legs it names stale and start copying the first back, then keep the record
 * current. @dir "": warn that nothing is recorded. -EBADMSG: a bad record.
 */
int wf_tgt_mirror_state_open(struct wf_tgt_volume *v, const char *dir, struct wf_log *log);

/* What one connection may do with one volume; vol NULL: nothing. */
struct wf_tgt_access {
	const struct wf_tgt_volume *vol;
	bool rw;
};

#define WF_TGT_SMALL_BUF 4096 /* the small class: most I/O, and every admin answer */

/* Data buffers of one size: a stack of free ones, a FIFO of requests waiting. */
struct wf_tgt_bufs {
	char *base;
	uint32_t size;
	uint32_t *free; /* indexes */
	uint32_t nfree;
	struct wf_tgt_req *wait_head, *wait_tail;
};

enum { WF_TGT_BUF_SMALL = 0, WF_TGT_BUF_LARGE, WF_TGT_BUF_CLASSES };

/* One poll group: its transport, its request pool and its registered data buffers. */
struct wf_tgt_pg {
	struct wf_tgt_shard *shard;
	struct wf_transport *transport; /* shard 0's, shared by every shard's group */
	struct wf_poll_group *pg;
	uint64_t arrivals; /* the group's count at the shard's last poll */
	struct wf_pool reqs;
	char *bufmem; /* both classes, registered once, local access only */
	struct wf_mr *mr;
	struct wf_tgt_bufs bufs[WF_TGT_BUF_CLASSES];
};

/*
 * One host identity the config allows, over every shard: how many commands
 * of its dead connections are still out. A new connection of the host waits
 * for none, so a write it resent on the new one cannot be overtaken by the
 * original, still on its way to the device.
 */
struct wf_tgt_host {
	char id[WF_HOST_NAME_MAX];
	atomic_uint orphans;
};

struct wf_tgt_conn {
	struct wf_tgt_pg *tpg;
	struct wf_tgt_host *hostrec;
	struct wf_ep *ep; /* NULL once disconnected */
	struct wf_tgt_conn *next;
	char host[WF_HOST_NAME_MAX];
	bool connected; /* CONNECT capsule accepted */
	bool listed;	/* on the target's connection list */
	bool orphaned;	/* gone with commands still out: they count in hostrec */
	uint16_t sq_head;
	uint16_t queue_depth;
	uint32_t inflight;	      /* requests not yet freed */
	uint64_t last_cmd_ms;	      /* when the host last sent a capsule (shard clock) */
	struct wf_tgt_access *access; /* indexed by volume id; [0] unused */
	bool auth_needed;	      /* the host has a secret: AUTH must follow CONNECT */
	bool authed;		      /* commands other than CONNECT and AUTH may run */
	uint64_t token;		      /* every command must carry it; 0 without a secret */
	struct wf_auth_srv auth;
};

enum wf_req_state {
	WF_REQ_FREE = 0,
	WF_REQ_NEW,	  /* capsule received, not yet decoded */
	WF_REQ_WAIT_BUF,  /* needs a data buffer, none free */
	WF_REQ_START,	  /* checked, buffer held: run the opcode */
	WF_REQ_NEED_DATA, /* RDMA READ of the host's buffer in flight */
	WF_REQ_EXECUTING, /* bdev request in flight */
	WF_REQ_DATA_OUT,  /* RDMA WRITE the result to the host */
	WF_REQ_COMPLETING /* SEND of the completion, or CPL_IMM's WRITE, in flight */
};

struct wf_tgt_req {
	void *pool_link_; /* wf_pool's while free */
	enum wf_req_state state;
	struct wf_tgt_conn *conn;
	const struct wf_tgt_op *op;
	const struct wf_tgt_volume *vol;
	struct wf_rx *rx; /* held only while in-capsule data is still needed */
	struct wf_cmd cmd;
	uint16_t status;
	uint64_t result;
	bool fua_flushed;
	bool io_active; /* counted in the target's drain count */
	bool drop_conn; /* disconnect once the completion is sent (failed auth) */
	bool fenced;	/* a CONNECT held for the host's orphans: said once */
	void *buf;
	uint32_t buf_idx;
	uint8_t buf_cls;
	uint32_t len; /* bytes of buf in use */
	struct wf_tgt_req *wait_next;
	struct wf_bdev_io io;
	struct wf_xfer data_x, cpl_x;
	uint8_t cpl[WF_CPL_SIZE];
};

/*
 * What one opcode needs: its session and volume checks (after the codec's),
 * whether it needs a data buffer, and how it starts once it has one.
 */
struct wf_tgt_op {
	enum wf_status (*check)(struct wf_tgt_req *req);
	bool needs_buf;
	void (*start)(struct wf_tgt_req *req);
};

struct wf_tgt_shard {
	struct wf_target *target;
	uint32_t index; /* its thread: 0 is the caller of wf_target_run() */
	const struct wf_config *cfg;
	struct wf_log *log;
	struct wf_bdev *devices[WF_CFG_DEVICES];
	struct wf_tgt_volume volumes[WF_CFG_VOLUMES];
	uint32_t nvolumes;
	struct wf_tgt_pg
	    pgs[WF_CFG_LISTENS]; /* one per transport kind, same order in every shard */
	uint32_t npgs;
	struct wf_tgt_conn *conns;
	struct wf_tgt_req *fenced; /* CONNECTs waiting for their host's orphans, via wait_next */
	atomic_uint nconns;	   /* accepted (by thread 0) or being accepted */
	uint32_t active_io;
	uint64_t now_ms;       /* read once a loop, for the keep-alive clock */
	uint64_t next_reap_ms; /* next look for silent hosts */
	bool stopping;
	pthread_t thread;
	int rc; /* what its run returned */
};

struct wf_target {
	const struct wf_config *cfg;
	struct wf_log *log;
	struct wf_tgt_shard *shards[WF_CFG_THREADS];
	uint32_t nshards;
	struct wf_listener *listeners[WF_CFG_LISTENS]; /* in shard 0's poll groups */
	uint32_t next_shard;			       /* round robin; thread 0 only */
	atomic_uint nconns;			       /* over every shard */
	struct wf_tgt_host *hosts;		       /* one per identity in allow lines */
	uint32_t nhosts;
	atomic_bool stopping;
	atomic_bool listeners_closed; /* no handoff to a shard can follow */
	struct wf_auth_sessions sessions;
};

/* Accept or refuse a transport connection (listener handler). */
int wf_conn_request(struct wf_listener *l, const struct wf_conn_params *params,
		    const struct wf_ep_handlers **handlers, void **ctx, struct wf_poll_group **pg);

/* A request finished with @conn; free @conn if it is gone and idle. */
void wf_conn_put(struct wf_tgt_conn *conn);

/* One record per host identity the config allows; -ENOMEM. */
int wf_conn_hosts_init(struct wf_target *t);

/* Hold CONNECT @req until its host has no orphans; false if there are none. */
bool wf_conn_fence(struct wf_tgt_req *req);

/* Run the CONNECTs of shard @t held by wf_conn_fence() again; true if any is still held. */
bool wf_conn_fence_retry(struct wf_tgt_shard *t);

/* Disconnect hosts of shard @t that sent nothing for the keep-alive timeout. */
void wf_conn_reap_silent(struct wf_tgt_shard *t);

/* Disconnect every host of shard @t; their requests finish on their own. */
void wf_conn_disconnect_all(struct wf_tgt_shard *t);

/* Capsule receive handler: one request per capsule, advanced as far as it goes. */
void wf_req_recv(struct wf_ep *ep, struct wf_rx *rx);

/* Run @req's state machine until it has to wait. */
void wf_req_advance(struct wf_tgt_req *req);

/* Finish @req with @status: the completion goes back to the host. */
void wf_req_complete(struct wf_tgt_req *req, enum wf_status status);

/* Send req->len bytes of req->buf to the host's buffer, then the completion. */
void wf_req_data_out(struct wf_tgt_req *req);

/* Set up sessions and say loudly which hosts are not authenticated. */
int wf_tgt_auth_init(struct wf_target *t);

/* Free the sessions. */
void wf_tgt_auth_fini(struct wf_target *t);

/* At CONNECT: require AUTH if @conn's host has a secret (sets the bit in @result). */
void wf_tgt_auth_connect(struct wf_tgt_conn *conn, uint64_t *result);

/* A connection is gone: release its session reference. */
void wf_tgt_auth_close(struct wf_tgt_conn *conn);

/* Every command after CONNECT: connected, authenticated, carrying the session token. */
enum wf_status wf_req_check_session(struct wf_tgt_req *req);

/* Checks shared by every command that names a volume. */
enum wf_status wf_req_check_volume(struct wf_tgt_req *req);

/* Ops of the admin commands, indexed like the opcode table in request.c. */
extern const struct wf_tgt_op wf_admin_connect_op;
extern const struct wf_tgt_op wf_admin_keep_alive_op;
extern const struct wf_tgt_op wf_admin_identify_op;
extern const struct wf_tgt_op wf_admin_list_op;
extern const struct wf_tgt_op wf_auth_challenge_op;
extern const struct wf_tgt_op wf_auth_reply_op;

#endif /* WF_TARGET_PRIV_H */
