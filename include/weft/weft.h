/* SPDX-License-Identifier: MIT */
/*
 * libweft: the host side of weft. A host handle names a target and a
 * transport; each thread opens its own queue pair on it (one connection,
 * polled only by that thread, so the I/O path takes no lock). Volumes are
 * identified once and then answered from the cached identify (seed 004).
 *
 * I/O is asynchronous: wf_qp_submit() with a callback, wf_qp_poll() to reap.
 * wf_qp_io() is the synchronous form, built on the same calls. Every error is
 * a negative errno; a target's wire status maps to one (wf_status_errno()).
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wf_host;
struct wf_qp;
struct wf_vol;

struct wf_host_opts {
	const char *addr;      /* target address */
	uint16_t port;	       /* target port; 4420 by default */
	const char *transport; /* "auto" (verbs if an RDMA device opens, else tcp), "rdma", "tcp" */
	const char *host_id;   /* identity the target's allow lines name */
	uint16_t queue_depth;  /* commands a queue pair keeps outstanding, 1 to 1024 */
	int timeout_ms;	       /* connect and admin commands */
	const char *secret;    /* 16-128 bytes shared with the target, or NULL (copied at open) */
	/*
	 * A lost connection (transport error, socket error, or silence past
	 * keep_alive_timeout_ms) is re-established with backoff for up to this
	 * long, and commands the target had not answered are sent again on the
	 * new one, unseen by the caller. Past it they fail with -ETIMEDOUT and
	 * later submissions with -ENOTCONN. 0: fail at once (-ECONNRESET).
	 */
	int reconnect_timeout_ms;
	int keep_alive_ms;	   /* idle this long: send a KEEP_ALIVE; 0: never */
	int keep_alive_timeout_ms; /* commands out and nothing heard this long: lost; 0: never */
	/*
	 * Per-command memory windows (docs/SECURITY.md): a buffer's key works on
	 * its connection, for its command only. 1 (default): on; 0: off, and
	 * keys live as long as their registration (one WR per command less).
	 */
	int windows;
	/*
	 * Reads that fit a capsule (4 KiB by default) come back as one, with
	 * their completion, and are copied out: one message less and no window.
	 * 1 (default): on; 0: every read is RDMA-written into the buffer.
	 */
	int cpl_data_reads;
	/*
	 * Larger reads complete with their data: the target's RDMA WRITE carries
	 * the completion as immediate data, and the host ends the window itself.
	 * 0 (default): a completion message follows the data and ends the window,
	 * which measured as fast on rxe (docs/PERFORMANCE.md); 1: on.
	 */
	int cpl_imm_reads;
	/*
	 * The most a poll that would sleep spins first; below it the budget
	 * adapts to the gaps between completions (0: sleep at once). Longer
	 * gaps come with a deep queue of large I/O, where a wake-up costs no
	 * throughput and a spin takes the CPU the transfers need.
	 */
	unsigned spin_us;
};

/* A cached IDENTIFY. */
struct wf_vol_info {
	uint32_t id;
	uint32_t block_size;
	uint64_t nblocks;
	uint32_t max_transfer_blocks;
	bool read_only;
	char name[32];
};

enum wf_io_op {
	WF_IO_READ = 0,
	WF_IO_WRITE,
	WF_IO_FLUSH, /* lba and nblocks ignored */
	WF_IO_WRITE_ZEROES,
	WF_IO_DISCARD,
};

#define WF_SPIN_US_DEFAULT 200 /* wf_host_opts.spin_us unless set; the kernel's haltpoll cap */
#define WF_IO_FUA	   0x1 /* wf_qp_submit() flag: write through before completing */

/* An I/O finished: @status is 0 or a negative errno. Runs inside wf_qp_poll(). */
typedef void (*wf_io_cb)(void *arg, int status);

/*
 * Fill @o with defaults: tcp-or-rdma "auto", port 4420, queue depth 128, 10 s
 * timeout, reconnect for 30 s, keep-alive after 5 s idle, lost after 15 s silent.
 */
void wf_host_opts_default(struct wf_host_opts *o);

/* Open the transport for @o; connects nothing yet. */
int wf_host_open(const struct wf_host_opts *o, struct wf_host **out);

/* Close @h once all its queue pairs are closed. */
void wf_host_close(struct wf_host *h);

/* The transport kind in use ("verbs" or "tcp"), after "auto" chose. */
const char *wf_host_transport(const struct wf_host *h);

/*
 * Connect one queue pair for the calling thread, send CONNECT and, when the
 * host has a secret, authenticate both ways; blocks up to the timeout.
 * -EKEYREJECTED: a proof failed either way; -ENOKEY: the target wants a secret.
 */
int wf_qp_open(struct wf_host *h, struct wf_qp **out);

/*
 * wf_qp_open() another queue pair for the thread that polls @with: the two
 * share one poll group, so a poll of either reaps and upkeeps both, and a
 * target with several threads may serve each on its own CPU.
 */
int wf_qp_open_shared(struct wf_qp *with, struct wf_qp **out);

/*
 * Disconnect @qp; outstanding I/O (queued for a reconnect too) completes with
 * -ECONNRESET first. Completions of queue pairs sharing its poll group may run too.
 */
void wf_qp_close(struct wf_qp *qp);

/* The queue depth the target granted. */
uint32_t wf_qp_depth(const struct wf_qp *qp);

/* Commands submitted and not yet completed (a keep-alive counts too). */
uint32_t wf_qp_outstanding(const struct wf_qp *qp);

/* How many times @qp re-established a lost connection. */
uint32_t wf_qp_reconnects(const struct wf_qp *qp);

/* Ids of the volumes this host may use: up to @max into @ids, the total in *@count. */
int wf_qp_list_volumes(struct wf_qp *qp, uint32_t *ids, uint32_t max, uint32_t *count);

/* Send a KEEP_ALIVE and wait for its completion. */
int wf_qp_keep_alive(struct wf_qp *qp);

/* IDENTIFY volume @id once; later questions about it need no round trip. */
int wf_vol_open(struct wf_qp *qp, uint32_t id, struct wf_vol **out);

/* Find a volume by name among those listed for this host, then wf_vol_open() it. */
int wf_vol_open_name(struct wf_qp *qp, const char *name, struct wf_vol **out);

/* Forget @v. */
void wf_vol_close(struct wf_vol *v);

/* The cached identify of @v. */
const struct wf_vol_info *wf_vol_info(const struct wf_vol *v);

/* Block size of @v in bytes, from the cache. */
uint32_t wf_vol_block_size(const struct wf_vol *v);

/* Capacity of @v in blocks, from the cache. */
uint64_t wf_vol_nblocks(const struct wf_vol *v);

/*
 * Queue one command; @buf holds nblocks x block size bytes for READ and
 * WRITE. -EAGAIN when the queue is full (poll, then retry); @cb runs later,
 * from wf_qp_poll(), never from inside this call. While the connection is
 * being re-established the command waits and goes out on the new one.
 */
int wf_qp_submit(struct wf_qp *qp, struct wf_vol *v, enum wf_io_op op, uint64_t lba,
		 uint32_t nblocks, void *buf, unsigned flags, wf_io_cb cb, void *arg);

/*
 * Reap completions, of @qp and of the queue pairs sharing its poll group,
 * sleeping up to @timeout_ms (-1: until one) when none is ready. Keep-alives
 * and reconnects run from here: a poll that reconnects may block for up to
 * the host's timeout_ms.
 */
int wf_qp_poll(struct wf_qp *qp, int timeout_ms);

/*
 * Synchronous I/O (seed 001): @timeout_s < 0 waits forever, 0 only tests
 * once, > 0 waits that many seconds. On -ETIMEDOUT the queue pair is taken
 * down, because the target could still write into @buf.
 */
int wf_qp_io(struct wf_qp *qp, struct wf_vol *v, enum wf_io_op op, uint64_t lba, uint32_t nblocks,
	     void *buf, int timeout_s);

/* @len bytes of memory registered once on @qp, for zero-copy I/O; NULL on failure. */
void *wf_dma_alloc(struct wf_qp *qp, size_t len);

/* Free memory from wf_dma_alloc(); no I/O may still use it. */
void wf_dma_free(struct wf_qp *qp, void *p);

/* Forget any registration of [@buf, +@len) before the caller frees that memory. */
void wf_qp_buf_release(struct wf_qp *qp, void *buf, size_t len);

/* The negative errno a wire status (enum wf_status in <weft/wire.h>) stands for. */
int wf_status_errno(unsigned status);

#endif /* WEFT_WEFT_H */
