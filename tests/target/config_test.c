// SPDX-License-Identifier: MIT
/* weftd's config parser: what it accepts, and the line and reason for what it refuses. */
#include <errno.h>
#include <string.h>

#include "target/config.h"
#include "tests/lib/check.h"

static const char good[] = "# a comment\n"
			   "listen tcp 127.0.0.1 4420   # trailing comment\n"
			   "listen rdma 0.0.0.0 0\n"
			   "\n"
			   "max_transfer 256K\n"
			   "queue_depth 64\n"
			   "threads 4\n"
			   "device d0 ram 64M\n"
			   "device d1 file /tmp/x.img 1G 4096\n"
			   "device d2 null 1G\n"
			   "device d3 ram 1G\n"
			   "device d4\tram 1G\n"
			   "device d5 ram 1G\n"
			   "device d6 ram 1G\n"
			   "device d7 ram 1G\n"
			   "device d8 ram 1G\n"
			   "volume v1 linear d0\n"
			   "volume v2 concat d2 d3\n"
			   "volume v3 stripe 64K d4 d5 d6\n"
			   "volume v4 mirror d7 d8\n"
			   "allow host-a v1 rw\n"
			   "allow host-a v2 ro\n";

/* keep_alive_timeout: seconds, 0 (never) to 3600. */
#define BASE_KA "listen tcp 127.0.0.1 1\ndevice d0 ram 1M\nvolume v linear d0\n"

static void keep_alive(void)
{
	static const char text[] = BASE_KA "keep_alive_timeout 0\n";
	struct wf_config cfg;
	char err[WF_CFG_ERR_MAX] = "";

	wf_config_init(&cfg);
	WF_CHECK_EQ(wf_config_parse(&cfg, text, strlen(text), err, sizeof(err)), 0);
	WF_CHECK_EQ(cfg.keep_alive_timeout, 0);
}

/* receive_buffers: by default one per command any allowed connection may have out. */
static void receive_buffers(void)
{
	static const char text[] = BASE_KA "max_connections 8\nqueue_depth 32\n";
	static const char set[] = BASE_KA "receive_buffers 100\n";
	struct wf_config cfg;
	char err[WF_CFG_ERR_MAX] = "";

	wf_config_init(&cfg);
	WF_CHECK_EQ(wf_config_receive_buffers(&cfg), 64 * 129);
	WF_CHECK_EQ(wf_config_parse(&cfg, text, strlen(text), err, sizeof(err)), 0);
	WF_CHECK_EQ(wf_config_receive_buffers(&cfg), 8 * 33);
	wf_config_init(&cfg);
	WF_CHECK_EQ(wf_config_parse(&cfg, set, strlen(set), err, sizeof(err)), 0);
	WF_CHECK_EQ(wf_config_receive_buffers(&cfg), 100);
}

/* spin_us (a default unless set), state_dir and secrets: accepted as written. */
static void spin_and_secrets(void)
{
	static const char text[] = BASE_KA "allow h v rw\n"
					   "secret h 0123456789abcdef\n"
					   "auth required\n"
					   "spin_us 50\n"
					   "state_dir /var/lib/weft\n";
	struct wf_config cfg;
	char err[WF_CFG_ERR_MAX] = "";

	wf_config_init(&cfg);
	WF_CHECK_EQ(cfg.spin_us, WF_CFG_SPIN_US);
	WF_CHECK_EQ(wf_config_parse(&cfg, text, strlen(text), err, sizeof(err)), 0);
	WF_CHECK_EQ(cfg.spin_us, 50);
	WF_CHECK(strcmp(cfg.state_dir, "/var/lib/weft") == 0);
	WF_CHECK(cfg.auth_required);
	WF_CHECK(wf_config_secret(&cfg, "h") != NULL);
	WF_CHECK_EQ(wf_config_secret(&cfg, "h")->len, 16);
	WF_CHECK(wf_config_secret(&cfg, "other") == NULL);
}

static void refused(const char *text, const char *want)
{
	struct wf_config cfg;
	char err[WF_CFG_ERR_MAX] = "";

	wf_config_init(&cfg);
	WF_CHECK_EQ(wf_config_parse(&cfg, text, strlen(text), err, sizeof(err)), -EINVAL);
	WF_CHECK_STR_CONTAINS(err, want);
}

#define BASE "listen tcp 127.0.0.1 1\ndevice d0 ram 1M\n"

int main(void)
{
	struct wf_config cfg;
	char err[WF_CFG_ERR_MAX] = "";
	uint64_t sz;

	wf_config_init(&cfg);
	WF_CHECK_EQ(wf_config_parse(&cfg, good, strlen(good), err, sizeof(err)), 0);
	WF_CHECK_EQ(cfg.nlisten, 2);
	WF_CHECK_EQ(cfg.listen[0].port, 4420);
	WF_CHECK_EQ(cfg.ndevices, 9);
	WF_CHECK_EQ(cfg.keep_alive_timeout, 30); /* the default */
	WF_CHECK_EQ(cfg.devices[0].size, 64u << 20);
	WF_CHECK_EQ(cfg.devices[1].kind, WF_CFG_DEV_FILE);
	WF_CHECK_EQ(cfg.devices[1].block_size, 4096);
	WF_CHECK_EQ(cfg.nvolumes, 4);
	WF_CHECK_EQ(cfg.volumes[2].layout, WF_CFG_STRIPE);
	WF_CHECK_EQ(cfg.volumes[2].chunk, 64u << 10);
	WF_CHECK_EQ(cfg.volumes[2].ndev, 3);
	WF_CHECK_EQ(cfg.nallows, 2);
	WF_CHECK(cfg.allows[0].rw && !cfg.allows[1].rw);
	WF_CHECK_EQ(cfg.max_transfer, 256u << 10);
	WF_CHECK_EQ(cfg.queue_depth, 64);
	WF_CHECK_EQ(cfg.threads, 4);
	wf_config_init(&cfg);
	WF_CHECK_EQ(cfg.threads, 1);

	WF_CHECK_EQ(wf_config_size("4K", &sz), 0);
	WF_CHECK_EQ(sz, 4096);
	WF_CHECK(wf_config_size("4X", &sz) < 0);
	WF_CHECK(wf_config_size("", &sz) < 0);
	WF_CHECK(wf_config_size("-1", &sz) < 0);
	WF_CHECK(wf_config_size("99999999999T", &sz) < 0);

	refused(BASE "volume v1 linear d0", "line 3: no newline at the end");
	refused(BASE "volume v1 lin\x01"
		     "ar d0\n",
		"line 3: byte 0x01");
	refused(BASE "bogus 1\n", "line 3: unknown directive 'bogus'");
	refused(BASE "keep_alive_timeout 3601\n",
		"line 3: keep_alive_timeout '3601' is not a number");
	keep_alive();
	receive_buffers();
	refused(BASE_KA "receive_buffers 8\n", "line 4: receive_buffers '8'");
	spin_and_secrets();
	refused(BASE_KA "allow h v rw\nsecret h short\n",
		"line 5: secret for 'h' is 5 bytes, not 16 to 128");
	refused(BASE_KA "allow h v rw\nsecret nobody 0123456789abcdef\n",
		"secret for host 'nobody', which no allow line names");
	refused(BASE_KA "allow h v rw\nallow g v ro\nsecret h 0123456789abcdef\nauth required\n",
		"auth required, but host 'g' has no secret");
	refused(BASE_KA "allow h v rw\nsecret h 0123456789abcdef\nsecret h 0123456789abcdef\n",
		"line 6: a second secret for host 'h'");
	refused(BASE_KA "auth sometimes\n",
		"line 4: auth 'sometimes' is neither required nor optional");
	refused(BASE_KA "spin_us 2000000\n", "line 4: spin_us '2000000'");
	refused(BASE_KA "state_dir relative/dir\n", "line 4: state_dir wants an absolute path");
	refused(BASE "volume v1 linear d9\n", "line 3: unknown device 'd9'");
	refused(BASE "volume v1 linear d0\nallow h v2 rw\n", "line 4: unknown volume 'v2'");
	refused(BASE "volume v1 linear d0\nallow h v1 rx\n", "line 4: access 'rx'");
	refused(BASE "device d0 ram 2M\n", "line 3: device 'd0' declared twice");
	refused(BASE "device d1 ram 1000\n", "line 3: size must be a whole number");
	refused(BASE "device d1 disk 1M\n", "line 3: device kind 'disk'");
	refused(BASE "device d1 file rel.img 1M\n", "line 3: file device needs an absolute PATH");
	refused(BASE "volume v1 stripe 1000 d0\n", "line 3: stripe chunk '1000'");
	refused(BASE "volume v1 concat d0 d0\n", "line 3: device 'd0' used twice");
	refused(BASE "volume v1 linear\n", "line 3: 'volume' takes 3 to");
	refused(BASE "volume v1 linear d0\nvolume v2 linear d0\n",
		"line 4: device 'd0' is already in volume 'v1'");
	refused("listen udp 127.0.0.1 1\n", "line 1: transport 'udp'");
	refused("listen tcp 127.0.0.1 70000\n", "line 1: port '70000'");
	refused("queue_depth 0\n", "line 1: queue_depth '0'");
	refused("threads 0\n", "line 1: threads '0'");
	refused("threads 65\n", "line 1: threads '65'");
	refused(BASE, "no volume line");
	refused("device d0 ram 1M\nvolume v linear d0\n", "no listen line");
	refused(BASE "device d1 ram 1M 4096\nvolume v concat d0 d1\n", "mixes block sizes");
	return 0;
}
