/* SPDX-License-Identifier: MIT */
#include "core/bdev_file.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bdev.h"
#include "core/log.h"

#define FILE_DIRECT_BLOCK   4096u
#define FILE_BUFFERED_BLOCK 512u

struct file_dev {
	struct wf_bdev bdev;
	struct io_uring ring;
	struct wf_bdev_geometry geo;
	int fd;
	uint32_t depth;
	uint32_t outstanding; /* in the ring or the kernel; bounded so the CQ never overflows */
	bool unsubmitted;
	bool no_zero_range; /* FALLOC_FL_ZERO_RANGE refused: write zeroes by punching */
	char name[];
};

static struct file_dev *file_of(struct wf_bdev *bdev)
{
	return bdev->ctx;
}

static struct io_uring_sqe *file_sqe(struct file_dev *dev, struct wf_bdev_io *io)
{
	struct io_uring_sqe *sqe;

	/* The SQ has at least depth entries, so below depth an SQE is always free. */
	if (dev->outstanding >= dev->depth)
		return NULL;
	sqe = io_uring_get_sqe(&dev->ring);
	if (!sqe)
		return NULL;
	dev->outstanding++;
	dev->unsubmitted = true;
	io_uring_sqe_set_data(sqe, io);
	return sqe;
}

static int file_rw(struct wf_bdev *bdev, struct wf_bdev_io *io, bool write)
{
	struct file_dev *dev = file_of(bdev);
	struct io_uring_sqe *sqe;

	/* An SQE carries a 32-bit length; the volume layer splits far below this. */
	if (io->len > UINT32_MAX)
		return -EINVAL;
	sqe = file_sqe(dev, io);
	if (!sqe)
		return -EAGAIN;
	if (write)
		io_uring_prep_write(sqe, dev->fd, io->buf, (unsigned)io->len, io->dev_offset);
	else
		io_uring_prep_read(sqe, dev->fd, io->buf, (unsigned)io->len, io->dev_offset);
	return 0;
}

static int file_read(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	return file_rw(bdev, io, false);
}

static int file_write(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	return file_rw(bdev, io, true);
}

static int file_flush(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	struct file_dev *dev = file_of(bdev);
	struct io_uring_sqe *sqe = file_sqe(dev, io);

	if (!sqe)
		return -EAGAIN;
	io_uring_prep_fsync(sqe, dev->fd, IORING_FSYNC_DATASYNC);
	return 0;
}

static int file_fallocate(struct wf_bdev *bdev, struct wf_bdev_io *io, int mode)
{
	struct file_dev *dev = file_of(bdev);
	struct io_uring_sqe *sqe = file_sqe(dev, io);

	if (!sqe)
		return -EAGAIN;
	io_uring_prep_fallocate(sqe, dev->fd, mode | FALLOC_FL_KEEP_SIZE, io->dev_offset, io->len);
	return 0;
}

/* A punched hole reads back as zeroes too, on files and block devices alike. */
static int file_write_zeroes(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	return file_fallocate(
	    bdev, io, file_of(bdev)->no_zero_range ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
}

/*
 * Some file systems (tmpfs before Linux 6.6, among others) refuse
 * FALLOC_FL_ZERO_RANGE: send this request again as a hole punch, and every
 * later one straight away. True if @io went out again.
 */
static bool file_zero_retry(struct file_dev *dev, struct wf_bdev_io *io, int res)
{
	if (io->op != WF_BDEV_WRITE_ZEROES || res != -EOPNOTSUPP || dev->no_zero_range)
		return false;
	dev->no_zero_range = true;
	wf_log_info(dev->bdev.log, "%s: no FALLOC_FL_ZERO_RANGE here: zeroing by punching holes",
		    dev->name);
	return file_write_zeroes(&dev->bdev, io) == 0;
}

/* Punching a hole is a discard on block devices and frees blocks in files. */
static int file_discard(struct wf_bdev *bdev, struct wf_bdev_io *io)
{
	return file_fallocate(bdev, io, FALLOC_FL_PUNCH_HOLE);
}

/* A short transfer cannot happen within the file's size; if it does, the data is not there. */
static int file_status(const struct wf_bdev_io *io, int res)
{
	if (res < 0)
		return res;
	if ((io->op == WF_BDEV_READ || io->op == WF_BDEV_WRITE) && (uint64_t)res != io->len)
		return -EIO;
	return 0;
}

/*
 * Hand queued SQEs to the kernel. When it is short of resources (-EAGAIN,
 * -EBUSY) they stay queued and go at the next poll; anything else means the
 * ring is broken, which is logged because those requests cannot finish.
 */
static void file_kick(struct file_dev *dev)
{
	int rc = io_uring_submit(&dev->ring);

	if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
		wf_log_err(dev->bdev.log, "%s: io_uring submit failed: %s", dev->name,
			   strerror(-rc));
	dev->unsubmitted = io_uring_sq_ready(&dev->ring) > 0;
}

static void file_poll(struct wf_bdev *bdev)
{
	struct file_dev *dev = file_of(bdev);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	if (dev->unsubmitted)
		file_kick(dev);
	io_uring_for_each_cqe(&dev->ring, head, cqe)
	{
		struct wf_bdev_io *io = io_uring_cqe_get_data(cqe);

		n++;
		dev->outstanding--; /* first, so a retry finds its slot free */
		if (!file_zero_retry(dev, io, cqe->res))
			wf_bdev_complete(io, file_status(io, cqe->res));
	}
	io_uring_cq_advance(&dev->ring, n);
}

static void file_geometry(struct wf_bdev *bdev, struct wf_bdev_geometry *geo)
{
	*geo = file_of(bdev)->geo;
}

static void file_close(struct wf_bdev *bdev)
{
	struct file_dev *dev = file_of(bdev);

	io_uring_queue_exit(&dev->ring);
	close(dev->fd);
	free(dev);
}

static const struct wf_bdev_ops file_ops = {
    .submit =
	{
	    [WF_BDEV_READ] = file_read,
	    [WF_BDEV_WRITE] = file_write,
	    [WF_BDEV_FLUSH] = file_flush,
	    [WF_BDEV_WRITE_ZEROES] = file_write_zeroes,
	    [WF_BDEV_DISCARD] = file_discard,
	},
    .poll = file_poll,
    .geometry = file_geometry,
    .close = file_close,
};

/* O_DIRECT first; tmpfs and some network file systems refuse it with EINVAL. */
static int file_open(struct file_dev *dev, const char *path, bool *direct, struct wf_log *log)
{
	int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			wf_log_info(log, "%s: %s does not allow O_DIRECT, using buffered I/O",
				    dev->name, path);
	}
	if (fd < 0) {
		int err = errno;

		wf_log_err(log, "%s: cannot open %s: %s", dev->name, path, strerror(err));
		return -err;
	}
	dev->fd = fd;
	return 0;
}

static int file_geometry_probe(struct file_dev *dev, bool direct)
{
	uint64_t size;
	uint32_t bs = direct ? FILE_DIRECT_BLOCK : FILE_BUFFERED_BLOCK;
	struct stat st;
	int ssz;

	if (fstat(dev->fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(dev->fd, BLKGETSIZE64, &size) || ioctl(dev->fd, BLKSSZGET, &ssz))
			return -errno;
		if (direct)
			bs = (uint32_t)ssz;
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		return -ENOTBLK;
	}
	dev->geo = (struct wf_bdev_geometry){.block_size = bs, .size = size / bs * bs};
	return 0;
}

int wf_bdev_file_create(struct wf_bdev **out, const char *name, const char *path,
			uint32_t queue_depth, struct wf_log *log)
{
	struct file_dev *dev;
	bool direct;
	int rc;

	if (!queue_depth)
		return -EINVAL;
	dev = calloc(1, sizeof(*dev) + strlen(name) + 1);
	if (!dev)
		return -ENOMEM;
	strcpy(dev->name, name);
	dev->depth = queue_depth;
	rc = file_open(dev, path, &direct, log);
	if (rc)
		goto err_free;
	rc = file_geometry_probe(dev, direct);
	if (rc) {
		wf_log_err(log, "%s: %s is neither a regular file nor a block device", name, path);
		goto err_close;
	}
	rc = io_uring_queue_init(queue_depth, &dev->ring, 0);
	if (rc) {
		wf_log_err(log, "%s: io_uring setup failed: %s", name, strerror(-rc));
		goto err_close;
	}
	wf_bdev_init(&dev->bdev, &file_ops, dev, dev->name, log);
	*out = &dev->bdev;
	return 0;

err_close:
	close(dev->fd);
err_free:
	free(dev);
	return rc;
}
