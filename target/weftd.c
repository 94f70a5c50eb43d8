// SPDX-License-Identifier: MIT
/*
 * weftd: the storage-node service. `weftd --config FILE` serves until
 * SIGTERM or SIGINT, which arrive through a signalfd polled with the
 * transport, so no work ever runs in a signal handler.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "target/config.h"
#include "target/target.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: weftd --config FILE [--log-level err|warn|info|debug]\n"
		   "       weftd --check FILE\n");
}

static int serve(const struct wf_config *cfg, struct wf_log *log)
{
	struct wf_target *t;
	sigset_t set;
	int sfd, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return -errno;
	rc = wf_target_create(cfg, log, &t);
	if (rc)
		goto out;
	wf_log_info(log, "ready");
	rc = wf_target_run(t, sfd);
	wf_target_destroy(t);
out:
	close(sfd);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", required_argument, NULL, 'k'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	enum wf_log_level level = WF_LOG_INFO;
	const char *path = NULL;
	struct wf_config *cfg;
	char err[WF_CFG_ERR_MAX] = "";
	struct wf_log log;
	bool check = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:k:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			path = optarg;
			check = true;
			break;
		case 'l':
			if (wf_log_level_parse(optarg, &level)) {
				fprintf(stderr, "weftd: bad log level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	wf_log_init(&log, "weftd", level, STDERR_FILENO);
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return 1;
	wf_config_init(cfg);
	rc = wf_config_load(cfg, path, err, sizeof(err));
	if (rc) {
		wf_log_err(&log, "%s: %s", path, err);
		free(cfg);
		return 1;
	}
	if (check) {
		printf("%s: ok: %u listen, %u devices, %u volumes, %u allow\n", path, cfg->nlisten,
		       cfg->ndevices, cfg->nvolumes, cfg->nallows);
		free(cfg);
		return 0;
	}
	rc = serve(cfg, &log);
	if (rc)
		wf_log_err(&log, "exiting: %s", strerror(-rc));
	free(cfg);
	return rc ? 1 : 0;
}
