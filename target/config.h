/* SPDX-License-Identifier: MIT */
/*
 * weftd's configuration: a line-based text file (docs/CONFIG.md) parsed and
 * fully validated before anything is opened, so `weftd --check` and a real
 * start reject exactly the same files, naming the line at fault.
 */
#ifndef WF_TARGET_CONFIG_H
#define WF_TARGET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/wire.h>

#define WF_CFG_NAME_MAX	  32
#define WF_CFG_PATH_MAX	  256
#define WF_CFG_LISTENS	  4
#define WF_CFG_DEVICES	  64
#define WF_CFG_VOLUMES	  64
#define WF_CFG_VOL_DEVS	  16
#define WF_CFG_ALLOWS	  256
#define WF_CFG_ERR_MAX	  256
#define WF_CFG_THREADS	  64
#define WF_CFG_SPIN_US	  1000 /* default spin cap: longer gaps are cheaper to sleep through */
#define WF_CFG_SECRET_MIN 16
#define WF_CFG_SECRET_MAX 128

enum wf_cfg_dev_kind {
	WF_CFG_DEV_RAM = 0,
	WF_CFG_DEV_FILE,
	WF_CFG_DEV_NULL,
};

enum wf_cfg_layout {
	WF_CFG_LINEAR = 0, /* one device */
	WF_CFG_CONCAT,
	WF_CFG_STRIPE,
	WF_CFG_MIRROR,
};

struct wf_cfg_listen {
	char transport[8]; /* "tcp" or "rdma" */
	char addr[64];
	uint16_t port;
};

struct wf_cfg_device {
	char name[WF_CFG_NAME_MAX];
	enum wf_cfg_dev_kind kind;
	char path[WF_CFG_PATH_MAX]; /* file only */
	uint64_t size;
	uint32_t block_size;
};

struct wf_cfg_volume {
	char name[WF_CFG_NAME_MAX];
	enum wf_cfg_layout layout;
	uint64_t chunk; /* stripe only */
	uint32_t ndev;
	uint32_t dev[WF_CFG_VOL_DEVS]; /* indexes into devices[] */
};

struct wf_cfg_allow {
	char host[WF_HOST_NAME_MAX];
	uint32_t volume; /* index into volumes[] */
	bool rw;
};

/* A host's shared secret: its key for HMAC-SHA256 challenge-response. */
struct wf_cfg_secret {
	char host[WF_HOST_NAME_MAX];
	uint8_t key[WF_CFG_SECRET_MAX];
	uint32_t len;
};

struct wf_config {
	struct wf_cfg_listen listen[WF_CFG_LISTENS];
	uint32_t nlisten;
	struct wf_cfg_device devices[WF_CFG_DEVICES];
	uint32_t ndevices;
	struct wf_cfg_volume volumes[WF_CFG_VOLUMES];
	uint32_t nvolumes;
	struct wf_cfg_allow allows[WF_CFG_ALLOWS];
	uint32_t nallows;
	struct wf_cfg_secret secrets[WF_CFG_ALLOWS];
	uint32_t nsecrets;
	bool auth_required;	  /* `auth required`: every allowed host must have a secret */
	bool world_readable;	  /* set by wf_config_load(): secrets in a file others can read */
	uint32_t max_transfer;	  /* bytes one READ/WRITE may move */
	uint32_t queue_depth;	  /* most commands a host may have outstanding */
	uint32_t in_capsule;	  /* bytes of write data carried inside a capsule */
	uint32_t max_connections; /* hosts connected at once */
	uint32_t data_buffers;	  /* registered max_transfer-sized buffers */
	uint32_t small_buffers;	  /* registered 4 KiB buffers, for small I/O and admin */
	uint32_t receive_buffers; /* capsule receive buffers per poll group; 0: one per command */
	uint32_t threads;	  /* poll-group threads, each with its own device stack */
	/* Seconds a host may send nothing before it is dropped; 0: forever. */
	uint32_t keep_alive_timeout;
	/* The most a thread polls after its last work before sleeping (core/spin.h). */
	uint32_t spin_us;
	/* Where mirrors record which legs lack writes, across restarts; "": nowhere. */
	char state_dir[WF_CFG_PATH_MAX];
};

/* Defaults for every setting; lists empty. */
void wf_config_init(struct wf_config *cfg);

/*
 * Parse and validate @len bytes of config text into @cfg (which
 * wf_config_init() prepared). -EINVAL with "line N: why" in @err.
 */
int wf_config_parse(struct wf_config *cfg, const char *text, size_t len, char *err, size_t errlen);

/* Read @path and parse it; -errno for I/O failures, also explained in @err. */
int wf_config_load(struct wf_config *cfg, const char *path, char *err, size_t errlen);

/* The secret configured for @host, or NULL: that host is not authenticated. */
const struct wf_cfg_secret *wf_config_secret(const struct wf_config *cfg, const char *host);

/* Parse "64M", "1G", "4096" (K, M, G, T: powers of 1024) into bytes; -EINVAL. */
int wf_config_size(const char *s, uint64_t *out);

/*
 * Receive buffers per poll group: as configured, else one for every command
 * every allowed connection may have out (queue_depth plus its reserve slot),
 * so a host never meets a dry shared receive queue (an RNR wait over verbs).
 */
uint32_t wf_config_receive_buffers(const struct wf_config *cfg);

#endif /* WF_TARGET_CONFIG_H */
