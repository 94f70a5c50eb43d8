// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: weftd's config parser (target/config.c). Invariants: a
 * refusal always explains itself in a terminated, non-empty message naming
 * a line; an accepted config is internally consistent (every index in
 * range, every limit respected), so nothing downstream needs to re-check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "target/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_volume(const struct wf_config *cfg, const struct wf_cfg_volume *v)
{
	if (!v->ndev || v->ndev > WF_CFG_VOL_DEVS || !memchr(v->name, '\0', sizeof(v->name)))
		abort();
	for (uint32_t j = 0; j < v->ndev; j++)
		if (v->dev[j] >= cfg->ndevices)
			abort();
	if (v->layout == WF_CFG_LINEAR && v->ndev != 1)
		abort();
}

static void check_config(const struct wf_config *cfg)
{
	if (!cfg->nlisten || cfg->nlisten > WF_CFG_LISTENS || !cfg->nvolumes ||
	    cfg->nvolumes > WF_CFG_VOLUMES || cfg->ndevices > WF_CFG_DEVICES ||
	    cfg->nallows > WF_CFG_ALLOWS || cfg->nsecrets > WF_CFG_ALLOWS)
		abort();
	if (!cfg->threads || cfg->threads > WF_CFG_THREADS || !cfg->queue_depth ||
	    !cfg->max_connections || cfg->max_transfer < 4096)
		abort();
	for (uint32_t i = 0; i < cfg->ndevices; i++)
		if (!cfg->devices[i].size || cfg->devices[i].block_size < 512 ||
		    (cfg->devices[i].block_size & (cfg->devices[i].block_size - 1)))
			abort();
	for (uint32_t i = 0; i < cfg->nvolumes; i++)
		check_volume(cfg, &cfg->volumes[i]);
	for (uint32_t i = 0; i < cfg->nallows; i++)
		if (cfg->allows[i].volume >= cfg->nvolumes || !cfg->allows[i].host[0] ||
		    !memchr(cfg->allows[i].host, '\0', sizeof(cfg->allows[i].host)))
			abort();
	for (uint32_t i = 0; i < cfg->nsecrets; i++)
		if (cfg->secrets[i].len < WF_CFG_SECRET_MIN ||
		    cfg->secrets[i].len > WF_CFG_SECRET_MAX)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wf_config cfg;
	char err[WF_CFG_ERR_MAX];

	memset(err, 0x55, sizeof(err));
	wf_config_init(&cfg);
	if (wf_config_parse(&cfg, (const char *)data, size, err, sizeof(err)) == 0) {
		check_config(&cfg);
		return 0;
	}
	if (!memchr(err, '\0', sizeof(err)) || !err[0] || !strstr(err, "line"))
		abort();
	return 0;
}
