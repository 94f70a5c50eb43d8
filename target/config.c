// SPDX-License-Identifier: MIT
/*
 * Config parsing. Each line is one directive, split on blanks; '#' starts a
 * comment. The whole file is checked before weftd acts on any of it, and a
 * file that does not end in a newline is treated as cut short, because a
 * half-written config must never start a half-configured target.
 */
#include "target/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define MAX_TOKENS   24
#define MAX_LINE     1024
#define MAX_FILE     (1u << 20)
#define MIN_TRANSFER 4096u
#define MAX_TRANSFER (16u << 20)
#define MAX_QD	     1024u

struct parse {
	struct wf_config *cfg;
	char *err;
	size_t errlen;
	unsigned line;
	char *tok[MAX_TOKENS];
	unsigned ntok;
};

typedef int (*directive_fn)(struct parse *p);

struct directive {
	const char *name;
	unsigned min_args, max_args;
	directive_fn fn;
};

void wf_config_init(struct wf_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_transfer = 1u << 20;
	cfg->queue_depth = 128;
	cfg->in_capsule = 4096;
	cfg->max_connections = 64;
	cfg->data_buffers = 32;
	cfg->small_buffers = 1024;
	cfg->threads = 1;
	cfg->keep_alive_timeout = 30;
	cfg->spin_us = WF_CFG_SPIN_US;
}

__attribute__((format(printf, 2, 3))) static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "line %u: ", p->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

uint32_t wf_config_receive_buffers(const struct wf_config *cfg)
{
	uint64_t n = (uint64_t)cfg->max_connections * (cfg->queue_depth + 1);

	if (cfg->receive_buffers)
		return cfg->receive_buffers;
	return n > (1u << 20) ? 1u << 20 : (uint32_t)n;
}

int wf_config_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'T':
		shift += 10;
		/* fall through */
	case 'G':
		shift += 10;
		/* fall through */
	case 'M':
		shift += 10;
		/* fall through */
	case 'K':
		shift += 10;
		end++;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= WF_CFG_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!(*s == '-' || *s == '_' || *s == '.' || (*s >= '0' && *s <= '9') ||
		      (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return 0;
	return 1;
}

static int find_device(const struct wf_config *cfg, const char *name)
{
	for (uint32_t i = 0; i < cfg->ndevices; i++)
		if (!strcmp(cfg->devices[i].name, name))
			return (int)i;
	return -1;
}

static int find_volume(const struct wf_config *cfg, const char *name)
{
	for (uint32_t i = 0; i < cfg->nvolumes; i++)
		if (!strcmp(cfg->volumes[i].name, name))
			return (int)i;
	return -1;
}

static int parse_u32(struct parse *p, const char *what, const char *s, uint32_t lo, uint32_t hi,
		     uint32_t *out)
{
	uint64_t v;

	if (wf_config_size(s, &v) || v < lo || v > hi)
		return fail(p, "%s '%s' is not a number from %u to %u", what, s, lo, hi);
	*out = (uint32_t)v;
	return 0;
}

static int do_listen(struct parse *p)
{
	struct wf_config *cfg = p->cfg;
	struct wf_cfg_listen *l;
	uint32_t port = 0;

	if (cfg->nlisten == WF_CFG_LISTENS)
		return fail(p, "more than %d listen lines", WF_CFG_LISTENS);
	if (strcmp(p->tok[1], "tcp") && strcmp(p->tok[1], "rdma"))
		return fail(p, "transport '%s' is neither tcp nor rdma", p->tok[1]);
	if (strlen(p->tok[2]) >= sizeof(l->addr))
		return fail(p, "address too long");
	if (parse_u32(p, "port", p->tok[3], 0, 65535, &port))
		return -EINVAL;
	l = &cfg->listen[cfg->nlisten++];
	snprintf(l->transport, sizeof(l->transport), "%s", p->tok[1]);
	snprintf(l->addr, sizeof(l->addr), "%s", p->tok[2]);
	l->port = (uint16_t)port;
	return 0;
}

/* device NAME ram|null SIZE [BLOCK] | device NAME file PATH SIZE [BLOCK] */
static int do_device(struct parse *p)
{
	struct wf_config *cfg = p->cfg;
	struct wf_cfg_device d = {.block_size = 512};
	unsigned i = 3;

	if (cfg->ndevices == WF_CFG_DEVICES)
		return fail(p, "more than %d devices", WF_CFG_DEVICES);
	if (!name_ok(p->tok[1]))
		return fail(p, "bad device name '%s'", p->tok[1]);
	if (find_device(cfg, p->tok[1]) >= 0)
		return fail(p, "device '%s' declared twice", p->tok[1]);
	snprintf(d.name, sizeof(d.name), "%s", p->tok[1]);
	if (!strcmp(p->tok[2], "ram")) {
		d.kind = WF_CFG_DEV_RAM;
	} else if (!strcmp(p->tok[2], "null")) {
		d.kind = WF_CFG_DEV_NULL;
	} else if (!strcmp(p->tok[2], "file")) {
		d.kind = WF_CFG_DEV_FILE;
		if (p->ntok < 5 || strlen(p->tok[3]) >= sizeof(d.path) || p->tok[3][0] != '/')
			return fail(p, "file device needs an absolute PATH and a SIZE");
		snprintf(d.path, sizeof(d.path), "%s", p->tok[3]);
		i = 4;
	} else {
		return fail(p, "device kind '%s' is not ram, file or null", p->tok[2]);
	}
	if (wf_config_size(p->tok[i], &d.size) || d.size == 0)
		return fail(p, "bad size '%s'", p->tok[i]);
	if (i + 1 < p->ntok &&
	    parse_u32(p, "block size", p->tok[i + 1], 512, 1u << 20, &d.block_size))
		return -EINVAL;
	if (i + 2 < p->ntok)
		return fail(p, "too many words");
	if (d.block_size & (d.block_size - 1) || d.size % d.block_size)
		return fail(p, "size must be a whole number of power-of-two blocks");
	cfg->devices[cfg->ndevices++] = d;
	return 0;
}

/* volume NAME linear DEV | concat DEV... | stripe CHUNK DEV... | mirror DEV... */
static int do_volume(struct parse *p)
{
	struct wf_config *cfg = p->cfg;
	struct wf_cfg_volume v = {0};
	unsigned first = 3;

	if (cfg->nvolumes == WF_CFG_VOLUMES)
		return fail(p, "more than %d volumes", WF_CFG_VOLUMES);
	if (!name_ok(p->tok[1]))
		return fail(p, "bad volume name '%s'", p->tok[1]);
	if (find_volume(cfg, p->tok[1]) >= 0)
		return fail(p, "volume '%s' declared twice", p->tok[1]);
	snprintf(v.name, sizeof(v.name), "%s", p->tok[1]);
	if (!strcmp(p->tok[2], "linear")) {
		v.layout = WF_CFG_LINEAR;
	} else if (!strcmp(p->tok[2], "concat")) {
		v.layout = WF_CFG_CONCAT;
	} else if (!strcmp(p->tok[2], "mirror")) {
		v.layout = WF_CFG_MIRROR;
	} else if (!strcmp(p->tok[2], "stripe")) {
		v.layout = WF_CFG_STRIPE;
		if (wf_config_size(p->tok[3], &v.chunk) || v.chunk < 512 ||
		    (v.chunk & (v.chunk - 1)))
			return fail(p, "stripe chunk '%s' is not a power of two >= 512", p->tok[3]);
		first = 4;
	} else {
		return fail(p, "layout '%s' is not linear, concat, stripe or mirror", p->tok[2]);
	}
	if (first >= p->ntok)
		return fail(p, "volume needs at least one device");
	if (v.layout == WF_CFG_LINEAR && p->ntok - first != 1)
		return fail(p, "linear takes exactly one device");
	if (p->ntok - first > WF_CFG_VOL_DEVS)
		return fail(p, "more than %d devices in a volume", WF_CFG_VOL_DEVS);
	for (unsigned i = first; i < p->ntok; i++) {
		int d = find_device(cfg, p->tok[i]);

		if (d < 0)
			return fail(p, "unknown device '%s'", p->tok[i]);
		/* Two volumes over one device would write over each other. */
		for (uint32_t k = 0; k < cfg->nvolumes; k++)
			for (uint32_t j = 0; j < cfg->volumes[k].ndev; j++)
				if (cfg->volumes[k].dev[j] == (uint32_t)d)
					return fail(p, "device '%s' is already in volume '%s'",
						    p->tok[i], cfg->volumes[k].name);
		for (uint32_t j = 0; j < v.ndev; j++)
			if (v.dev[j] == (uint32_t)d)
				return fail(p, "device '%s' used twice", p->tok[i]);
		v.dev[v.ndev++] = (uint32_t)d;
	}
	cfg->volumes[cfg->nvolumes++] = v;
	return 0;
}

/* allow HOST VOLUME ro|rw */
static int do_allow(struct parse *p)
{
	struct wf_config *cfg = p->cfg;
	struct wf_cfg_allow *a;
	int v;

	if (cfg->nallows == WF_CFG_ALLOWS)
		return fail(p, "more than %d allow lines", WF_CFG_ALLOWS);
	if (strlen(p->tok[1]) >= WF_HOST_NAME_MAX)
		return fail(p, "host name longer than %d bytes", WF_HOST_NAME_MAX - 1);
	v = find_volume(cfg, p->tok[2]);
	if (v < 0)
		return fail(p, "unknown volume '%s'", p->tok[2]);
	if (strcmp(p->tok[3], "ro") && strcmp(p->tok[3], "rw"))
		return fail(p, "access '%s' is neither ro nor rw", p->tok[3]);
	for (uint32_t i = 0; i < cfg->nallows; i++)
		if (!strcmp(cfg->allows[i].host, p->tok[1]) && cfg->allows[i].volume == (uint32_t)v)
			return fail(p, "host '%s' already allowed on '%s'", p->tok[1], p->tok[2]);
	a = &cfg->allows[cfg->nallows++];
	snprintf(a->host, sizeof(a->host), "%s", p->tok[1]);
	a->volume = (uint32_t)v;
	a->rw = !strcmp(p->tok[3], "rw");
	return 0;
}

/* secret HOST TEXT: 16 to 128 printable bytes, no blanks */
static int do_secret(struct parse *p)
{
	struct wf_config *cfg = p->cfg;
	struct wf_cfg_secret *k;
	size_t len = strlen(p->tok[2]);

	if (strlen(p->tok[1]) >= WF_HOST_NAME_MAX)
		return fail(p, "host name longer than %d bytes", WF_HOST_NAME_MAX - 1);
	if (len < WF_CFG_SECRET_MIN || len > WF_CFG_SECRET_MAX)
		return fail(p, "secret for '%s' is %zu bytes, not %d to %d", p->tok[1], len,
			    WF_CFG_SECRET_MIN, WF_CFG_SECRET_MAX);
	if (wf_config_secret(cfg, p->tok[1]))
		return fail(p, "a second secret for host '%s'", p->tok[1]);
	k = &cfg->secrets[cfg->nsecrets++];
	snprintf(k->host, sizeof(k->host), "%s", p->tok[1]);
	memcpy(k->key, p->tok[2], len);
	k->len = (uint32_t)len;
	return 0;
}

/* auth required|optional */
static int do_auth(struct parse *p)
{
	if (strcmp(p->tok[1], "required") && strcmp(p->tok[1], "optional"))
		return fail(p, "auth '%s' is neither required nor optional", p->tok[1]);
	p->cfg->auth_required = !strcmp(p->tok[1], "required");
	return 0;
}

const struct wf_cfg_secret *wf_config_secret(const struct wf_config *cfg, const char *host)
{
	for (uint32_t i = 0; i < cfg->nsecrets; i++)
		if (!strcmp(cfg->secrets[i].host, host))
			return &cfg->secrets[i];
	return NULL;
}

static int do_max_transfer(struct parse *p)
{
	return parse_u32(p, "max_transfer", p->tok[1], MIN_TRANSFER, MAX_TRANSFER,
			 &p->cfg->max_transfer);
}

static int do_queue_depth(struct parse *p)
{
	return parse_u32(p, "queue_depth", p->tok[1], 1, MAX_QD, &p->cfg->queue_depth);
}

static int do_in_capsule(struct parse *p)
{
	return parse_u32(p, "in_capsule", p->tok[1], WF_CONNECT_DATA_SIZE, 64u << 10,
			 &p->cfg->in_capsule);
}

static int do_max_connections(struct parse *p)
{
	return parse_u32(p, "max_connections", p->tok[1], 1, 4096, &p->cfg->max_connections);
}

static int do_data_buffers(struct parse *p)
{
	return parse_u32(p, "data_buffers", p->tok[1], 1, 4096, &p->cfg->data_buffers);
}

static int do_receive_buffers(struct parse *p)
{
	return parse_u32(p, "receive_buffers", p->tok[1], 16, 1u << 20, &p->cfg->receive_buffers);
}

static int do_small_buffers(struct parse *p)
{
	return parse_u32(p, "small_buffers", p->tok[1], 1, 65536, &p->cfg->small_buffers);
}

static int do_threads(struct parse *p)
{
	return parse_u32(p, "threads", p->tok[1], 1, WF_CFG_THREADS, &p->cfg->threads);
}

static int do_spin_us(struct parse *p)
{
	return parse_u32(p, "spin_us", p->tok[1], 0, 1000000, &p->cfg->spin_us);
}

static int do_state_dir(struct parse *p)
{
	if (strlen(p->tok[1]) + WF_CFG_NAME_MAX + 8 >= sizeof(p->cfg->state_dir) ||
	    p->tok[1][0] != '/')
		return fail(p, "state_dir wants an absolute path under %zu bytes",
			    sizeof(p->cfg->state_dir) - WF_CFG_NAME_MAX - 8);
	snprintf(p->cfg->state_dir, sizeof(p->cfg->state_dir), "%s", p->tok[1]);
	return 0;
}

static int do_keep_alive_timeout(struct parse *p)
{
	return parse_u32(p, "keep_alive_timeout", p->tok[1], 0, 3600, &p->cfg->keep_alive_timeout);
}

static const struct directive directives[] = {
    {"listen", 3, 3, do_listen},
    {"device", 3, 6, do_device},
    {"volume", 3, 3 + WF_CFG_VOL_DEVS, do_volume},
    {"allow", 3, 3, do_allow},
    {"secret", 2, 2, do_secret},
    {"auth", 1, 1, do_auth},
    {"max_transfer", 1, 1, do_max_transfer},
    {"queue_depth", 1, 1, do_queue_depth},
    {"in_capsule", 1, 1, do_in_capsule},
    {"max_connections", 1, 1, do_max_connections},
    {"data_buffers", 1, 1, do_data_buffers},
    {"small_buffers", 1, 1, do_small_buffers},
    {"receive_buffers", 1, 1, do_receive_buffers},
    {"threads", 1, 1, do_threads},
    {"keep_alive_timeout", 1, 1, do_keep_alive_timeout},
    {"spin_us", 1, 1, do_spin_us},
    {"state_dir", 1, 1, do_state_dir},
};

static int split(struct parse *p, char *s)
{
	char *hash = strchr(s, '#');

	if (hash)
		*hash = '\0';
	p->ntok = 0;
	for (char *t = strtok(s, " \t"); t; t = strtok(NULL, " \t")) {
		if (p->ntok == MAX_TOKENS)
			return fail(p, "too many words");
		p->tok[p->ntok++] = t;
	}
	return 0;
}

static int parse_line(struct parse *p, char *s)
{
	if (split(p, s))
		return -EINVAL;
	if (!p->ntok)
		return 0;
	for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++) {
		const struct directive *d = &directives[i];

		if (strcmp(p->tok[0], d->name))
			continue;
		if (p->ntok - 1 < d->min_args || p->ntok - 1 > d->max_args)
			return fail(p, "'%s' takes %u to %u words, not %u", d->name, d->min_args,
				    d->max_args, p->ntok - 1);
		return d->fn(p);
	}
	return fail(p, "unknown directive '%.40s'", p->tok[0]);
}

static bool host_allowed(const struct wf_config *cfg, const char *host)
{
	for (uint32_t i = 0; i < cfg->nallows; i++)
		if (!strcmp(cfg->allows[i].host, host))
			return true;
	return false;
}

/* A secret nobody uses is a typo; `auth required` leaves no host without one. */
static int check_secrets(struct parse *p)
{
	const struct wf_config *cfg = p->cfg;

	for (uint32_t i = 0; i < cfg->nsecrets; i++)
		if (!host_allowed(cfg, cfg->secrets[i].host))
			return fail(p, "secret for host '%s', which no allow line names",
				    cfg->secrets[i].host);
	if (!cfg->auth_required)
		return 0;
	for (uint32_t i = 0; i < cfg->nallows; i++)
		if (!wf_config_secret(cfg, cfg->allows[i].host))
			return fail(p, "auth required, but host '%s' has no secret",
				    cfg->allows[i].host);
	return 0;
}

/* Cross-line rules, checked once everything is read. */
static int check_whole(struct parse *p)
{
	struct wf_config *cfg = p->cfg;

	if (!cfg->nlisten)
		return fail(p, "no listen line");
	if (!cfg->nvolumes)
		return fail(p, "no volume line");
	for (uint32_t i = 0; i < cfg->nvolumes; i++) {
		const struct wf_cfg_volume *v = &cfg->volumes[i];
		uint32_t bs = cfg->devices[v->dev[0]].block_size;

		for (uint32_t j = 1; j < v->ndev; j++)
			if (cfg->devices[v->dev[j]].block_size != bs)
				return fail(p, "volume '%s' mixes block sizes", v->name);
		if (cfg->max_transfer % bs)
			return fail(p, "max_transfer is not a multiple of volume '%s' blocks",
				    v->name);
		if (v->layout == WF_CFG_STRIPE && v->chunk % bs)
			return fail(p, "volume '%s' chunk is not a multiple of its blocks",
				    v->name);
	}
	return check_secrets(p);
}

int wf_config_parse(struct wf_config *cfg, const char *text, size_t len, char *err, size_t errlen)
{
	struct parse p = {.cfg = cfg, .err = err, .errlen = errlen, .line = 1};
	char line[MAX_LINE];
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n') {
			if (i - start >= sizeof(line))
				return fail(&p, "line longer than %d bytes", MAX_LINE - 1);
			memcpy(line, text + start, i - start);
			line[i - start] = '\0';
			if (parse_line(&p, line))
				return -EINVAL;
			p.line++;
			start = i + 1;
		} else if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			return fail(&p, "byte 0x%02x is not text: the file is garbled", c);
		}
	}
	if (start != len)
		return fail(&p, "no newline at the end: the file looks cut short");
	p.line--;
	return check_whole(&p);
}

int wf_config_load(struct wf_config *cfg, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		snprintf(err, errlen, "%s: not a regular file under 1 MiB", path);
		rc = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		rc = -EIO;
		goto out;
	}
	rc = wf_config_parse(cfg, buf, (size_t)n, err, errlen);
	cfg->world_readable = cfg->nsecrets && (st.st_mode & 0077);
out:
	if (buf)
		OPENSSL_cleanse(buf, (size_t)st.st_size);
	free(buf);
	close(fd);
	return rc;
}
