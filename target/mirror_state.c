/* SPDX-License-Identifier: MIT */
/*
 * A mirror's record of which legs lack writes, kept in a small file under
 * state_dir so that a restarted weftd reads none of them as current. The
 * mirror calls the journal before it acknowledges a write a leg missed, so
 * the record is replaced synchronously: a new file, fsync, rename over the
 * old one, fsync of the directory. A crash leaves the old record or the new
 * one, never a mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/volume.h"
#include "target/target_priv.h"

#define RECORD_MAX 64

/* The stale-leg mask in the record at @path; 0 if there is none. -EBADMSG if malformed. */
static int state_read(const char *path, uint32_t *stale)
{
	char buf[RECORD_MAX + 1], *end;
	unsigned long v;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*stale = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* no record: no leg ever fell behind */
	n = read(fd, buf, RECORD_MAX);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (strncmp(buf, "stale ", 6))
		return -EBADMSG;
	errno = 0;
	v = strtoul(buf + 6, &end, 0);
	if (errno || end == buf + 6 || strcmp(end, "\n") || v > UINT32_MAX)
		return -EBADMSG;
	*stale = (uint32_t)v;
	return 0;
}

static int fsync_dir(const char *path)
{
	char dir[WF_TGT_STATE_PATH_MAX];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	*(slash == dir ? slash + 1 : slash) = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

/* Replace the record at @path with @stale, durably. */
static int state_write(const char *path, uint32_t stale)
{
	char tmp[WF_TGT_STATE_PATH_MAX + 4], rec[RECORD_MAX];
	int len = snprintf(rec, sizeof(rec), "stale %#x\n", stale);
	int fd, rc = 0;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, rec, (size_t)len);
	if (n != len)
		rc = n < 0 ? -errno : -EIO;
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return fsync_dir(path);
}

static int journal(void *arg, uint32_t stale)
{
	struct wf_tgt_volume *v = arg;

	return state_write(v->state_path, stale);
}

int wf_tgt_mirror_state_open(struct wf_tgt_volume *v, const char *dir, struct wf_log *log)
{
	uint32_t stale, leg;
	int rc;

	if (!dir[0]) {
		wf_log_warn(log,
			    "mirror %s: no state_dir, so which legs fell behind is forgotten at a "
			    "restart, and a stale leg would then be read as current",
			    v->name);
		return 0;
	}
	snprintf(v->state_path, sizeof(v->state_path), "%s/%s.mirror", dir, v->name);
	rc = state_read(v->state_path, &stale);
	if (rc) {
		wf_log_err(log, "mirror %s: record %s unreadable: %s", v->name, v->state_path,
			   strerror(-rc));
		return rc;
	}
	/* The mirror knows its legs: it refuses one it lacks, and the last current one. */
	for (leg = 0; leg < 32; leg++) {
		if (!(stale & (1u << leg)))
			continue;
		rc = wf_volume_mirror_leg_stale(v->bdev, leg);
		if (rc) {
			wf_log_err(log, "mirror %s: record %s marks legs %#x stale: %s", v->name,
				   v->state_path, stale,
				   rc == -EIO ? "that is every leg" : "the mirror has no such leg");
			return -EBADMSG;
		}
		wf_log_warn(log, "mirror %s: leg %u fell behind before the restart", v->name, leg);
	}
	/*
	 * Write the record now: a state_dir that cannot take it fails the start,
	 * not the first leg failure, when the write it guards is already done.
	 */
	rc = state_write(v->state_path, stale);
	if (rc) {
		wf_log_err(log, "mirror %s: cannot write record %s: %s", v->name, v->state_path,
			   strerror(-rc));
		return rc;
	}
	rc = wf_volume_mirror_set_journal(v->bdev, journal, v);
	if (rc || !stale)
		return rc;
	/* One leg resyncs at a time; others stay degraded until the next restart. */
	return wf_volume_mirror_leg_replace(v->bdev, (uint32_t)__builtin_ctz(stale));
}
