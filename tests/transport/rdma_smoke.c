// SPDX-License-Identifier: MIT
/*
 * The first real RDMA test: two processes connect an RC queue pair through
 * librdmacm, and the client moves data through memory the server registered
 * and advertised: RDMA READ, then RDMA WRITE, then SEND/RECV both ways. Every
 * byte is checked on the side that receives it.
 *
 * Roles: "both" forks a server and runs a client against it (one machine);
 * "server" and "client" run one side each (two machines); "auto" picks from
 * WEFT_NODE/WEFT_NODES that ci/rxe-vm sets. With no RDMA device it fails: an
 * rdma test never skips.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define SMOKE_MAGIC   0x77656674u /* "weft" */
#define MAX_SIZE      (1u << 20)
#define TIMEOUT_MS    20000
#define DEFAULT_PORT  "7174"
#define SEED_SERVER   0x5eedu
#define SEED_CLIENT   0xc11eu
#define STATUS_OK     0
#define STATUS_BADBUF 1

/* The op lives in wr_id: rxe leaves wc.opcode unset on error completions. */
enum smoke_op {
	OP_RECV = 1,
	OP_SEND,
	OP_READ,
	OP_WRITE,
	OP_MAX,
};

/* One message format for every SEND, so each side can validate what it got. */
struct smoke_msg {
	uint32_t magic;
	uint32_t round;
	uint64_t addr; /* server buffer, in the advert */
	uint32_t rkey;
	uint32_t len;
	uint32_t status; /* in the verdict */
	uint32_t seed;	 /* pattern the receiver must find in the buffer */
};

struct smoke {
	const char *role;
	const char *addr;
	const char *port;
	int connect_timeout_s;

	struct rdma_event_channel *ec;
	struct rdma_cm_id *listen_id;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	struct ibv_mr *buf_mr, *msg_mr;
	uint8_t *buf;
	struct smoke_msg *rx, *tx; /* tx = msgs[0], rx = msgs[1] */
	unsigned int done[OP_MAX]; /* completions seen but not yet consumed */
};

static const uint32_t sizes[] = {1, 7, 4096, 65536, MAX_SIZE};
#define NROUNDS (sizeof(sizes) / sizeof(sizes[0]))

static void fill(uint8_t *p, uint32_t len, uint32_t seed, uint32_t round)
{
	uint32_t x = seed * 2654435761u + round;

	for (uint32_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

static int verify(const uint8_t *p, uint32_t len, uint32_t seed, uint32_t round, const char *what)
{
	uint8_t *want = malloc(len);
	int ret = 0;

	if (!want)
		return -ENOMEM;
	fill(want, len, seed, round);
	for (uint32_t i = 0; i < len; i++) {
		if (p[i] != want[i]) {
			fprintf(stderr, "%s: byte %u of %u is %#x, want %#x\n", what, i, len, p[i],
				want[i]);
			ret = -EIO;
			break;
		}
	}
	free(want);
	return ret;
}

static int wait_cm(struct smoke *s, enum rdma_cm_event_type want, struct rdma_cm_event **out)
{
	struct pollfd pfd = {.fd = s->ec->fd, .events = POLLIN};
	struct rdma_cm_event *ev;
	int n;

	n = poll(&pfd, 1, TIMEOUT_MS);
	if (n == 0) {
		fprintf(stderr, "%s: no %s within %d ms\n", s->role, rdma_event_str(want),
			TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	if (n < 0 || rdma_get_cm_event(s->ec, &ev))
		return -errno;
	if (ev->event != want) {
		enum rdma_cm_event_type got = ev->event;
		int st = ev->status;

		rdma_ack_cm_event(ev);
		if (got == RDMA_CM_EVENT_REJECTED)
			return -ECONNREFUSED;
		fprintf(stderr, "%s: got %s (status %d), want %s\n", s->role, rdma_event_str(got),
			st, rdma_event_str(want));
		return -EPROTO;
	}
	if (out)
		*out = ev;
	else
		rdma_ack_cm_event(ev);
	return 0;
}

static int reap(struct smoke *s)
{
	struct ibv_wc wc;
	int n;

	while ((n = ibv_poll_cq(s->cq, 1, &wc)) == 1) {
		if (wc.status != IBV_WC_SUCCESS) {
			fprintf(stderr, "%s: op %" PRIu64 " failed: %s\n", s->role, wc.wr_id,
				ibv_wc_status_str(wc.status));
			return -EIO;
		}
		if (wc.wr_id < OP_RECV || wc.wr_id >= OP_MAX) {
			fprintf(stderr, "%s: completion with unknown wr_id %" PRIu64 "\n", s->role,
				wc.wr_id);
			return -EPROTO;
		}
		s->done[wc.wr_id]++;
	}
	return n < 0 ? -EIO : 0;
}

/*
 * Wait until a completion for @op has arrived. RC orders completions within
 * one queue only, so a RECV may surface before the SEND that preceded it:
 * count every completion and consume the one asked for.
 */
static int wait_wc(struct smoke *s, enum smoke_op op)
{
	struct pollfd pfd = {.fd = s->cc->fd, .events = POLLIN};
	struct ibv_cq *cq;
	void *ctx;
	int ret, n;

	for (;;) {
		ret = reap(s);
		if (ret)
			return ret;
		if (s->done[op]) {
			s->done[op]--;
			return 0;
		}
		/* Sleep on the channel: busy-polling starves rxe's softirq on small guests. */
		if (ibv_req_notify_cq(s->cq, 0))
			return -EIO;
		ret = reap(s);
		if (ret)
			return ret;
		if (s->done[op])
			continue;
		n = poll(&pfd, 1, TIMEOUT_MS);
		if (n == 0) {
			fprintf(stderr, "%s: op %d did not complete within %d ms\n", s->role, op,
				TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		if (n < 0 || ibv_get_cq_event(s->cc, &cq, &ctx))
			return -EIO;
		ibv_ack_cq_events(cq, 1);
	}
}

static int post_recv(struct smoke *s)
{
	struct ibv_sge sge = {
	    .addr = (uintptr_t)s->rx, .length = sizeof(*s->rx), .lkey = s->msg_mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = OP_RECV, .sg_list = &sge, .num_sge = 1}, *bad;

	return ibv_post_recv(s->id->qp, &wr, &bad) ? -EIO : 0;
}

static int post_send(struct smoke *s)
{
	struct ibv_sge sge = {
	    .addr = (uintptr_t)s->tx, .length = sizeof(*s->tx), .lkey = s->msg_mr->lkey};
	struct ibv_send_wr wr = {.wr_id = OP_SEND,
				 .sg_list = &sge,
				 .num_sge = 1,
				 .opcode = IBV_WR_SEND,
				 .send_flags = IBV_SEND_SIGNALED},
			   *bad;

	return ibv_post_send(s->id->qp, &wr, &bad) ? -EIO : 0;
}

static int post_rdma(struct smoke *s, enum smoke_op op, uint32_t len, uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = {.addr = (uintptr_t)s->buf, .length = len, .lkey = s->buf_mr->lkey};
	struct ibv_send_wr wr = {.wr_id = op,
				 .sg_list = &sge,
				 .num_sge = 1,
				 .opcode = op == OP_READ ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE,
				 .send_flags = IBV_SEND_SIGNALED,
				 .wr.rdma = {.remote_addr = raddr, .rkey = rkey}},
			   *bad;

	return ibv_post_send(s->id->qp, &wr, &bad) ? -EIO : 0;
}

static int recv_msg(struct smoke *s, uint32_t round)
{
	int ret = wait_wc(s, OP_RECV);

	if (ret)
		return ret;
	if (s->rx->magic != SMOKE_MAGIC || s->rx->round != round) {
		fprintf(stderr, "%s: bad message: magic %#x round %u, want round %u\n", s->role,
			s->rx->magic, s->rx->round, round);
		return -EPROTO;
	}
	return 0;
}

/* PD, CQ with its channel, QP and both registrations, on s->id's device. */
static int setup_qp(struct smoke *s)
{
	struct ibv_qp_init_attr qpa = {
	    .cap = {.max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1},
	    .qp_type = IBV_QPT_RC,
	};
	int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

	s->pd = ibv_alloc_pd(s->id->verbs);
	if (!s->pd)
		return -errno;
	s->cc = ibv_create_comp_channel(s->id->verbs);
	if (!s->cc)
		return -errno;
	s->cq = ibv_create_cq(s->id->verbs, 8, NULL, s->cc, 0);
	if (!s->cq)
		return -errno;
	qpa.send_cq = s->cq;
	qpa.recv_cq = s->cq;
	if (rdma_create_qp(s->id, s->pd, &qpa))
		return -errno;
	s->buf = aligned_alloc(4096, MAX_SIZE);
	s->tx = calloc(2, sizeof(*s->tx));
	if (!s->buf || !s->tx)
		return -ENOMEM;
	s->rx = s->tx + 1;
	s->buf_mr = ibv_reg_mr(s->pd, s->buf, MAX_SIZE, acc);
	s->msg_mr = ibv_reg_mr(s->pd, s->tx, 2 * sizeof(*s->tx), IBV_ACCESS_LOCAL_WRITE);
	if (!s->buf_mr || !s->msg_mr)
		return -errno;
	return 0;
}

static void teardown(struct smoke *s)
{
	if (s->id && s->id->qp)
		rdma_destroy_qp(s->id);
	if (s->buf_mr)
		ibv_dereg_mr(s->buf_mr);
	if (s->msg_mr)
		ibv_dereg_mr(s->msg_mr);
	if (s->cq)
		ibv_destroy_cq(s->cq);
	if (s->cc)
		ibv_destroy_comp_channel(s->cc);
	if (s->pd)
		ibv_dealloc_pd(s->pd);
	if (s->id)
		rdma_destroy_id(s->id);
	if (s->listen_id)
		rdma_destroy_id(s->listen_id);
	if (s->ec)
		rdma_destroy_event_channel(s->ec);
	free(s->buf);
	free(s->tx);
	s->id = NULL;
	s->listen_id = NULL;
	s->ec = NULL;
	s->pd = NULL;
	s->cc = NULL;
	s->cq = NULL;
	s->buf_mr = s->msg_mr = NULL;
	s->buf = NULL;
	s->tx = s->rx = NULL;
	memset(s->done, 0, sizeof(s->done));
}

static int resolve(const char *addr, const char *port, struct addrinfo **ai)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_flags = AI_NUMERICHOST};
	int ret = getaddrinfo(addr, port, &hints, ai);

	if (ret) {
		fprintf(stderr, "bad address %s:%s: %s\n", addr, port, gai_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

/* Listen, accept one client; @ready_fd (if >= 0) is told once we listen. */
static int server_accept(struct smoke *s, int ready_fd)
{
	struct rdma_conn_param cp = {.responder_resources = 1, .initiator_depth = 1};
	struct rdma_cm_event *ev;
	struct addrinfo *ai;
	int ret;

	ret = resolve(s->addr, s->port, &ai);
	if (ret)
		return ret;
	s->ec = rdma_create_event_channel();
	if (!s->ec || rdma_create_id(s->ec, &s->listen_id, NULL, RDMA_PS_TCP) ||
	    rdma_bind_addr(s->listen_id, ai->ai_addr) || rdma_listen(s->listen_id, 1)) {
		ret = -errno;
		fprintf(stderr, "server: cannot listen on %s:%s: %s\n", s->addr, s->port,
			strerror(errno));
		freeaddrinfo(ai);
		return ret;
	}
	freeaddrinfo(ai);
	if (ready_fd >= 0) {
		if (write(ready_fd, "r", 1) != 1)
			return -errno;
		close(ready_fd);
	}
	ret = wait_cm(s, RDMA_CM_EVENT_CONNECT_REQUEST, &ev);
	if (ret)
		return ret;
	s->id = ev->id;
	rdma_ack_cm_event(ev);
	ret = setup_qp(s);
	if (ret)
		return ret;
	/* Post the first RECV before accepting, so the client's SEND never meets RNR. */
	ret = post_recv(s);
	if (ret)
		return ret;
	if (rdma_accept(s->id, &cp))
		return -errno;
	return wait_cm(s, RDMA_CM_EVENT_ESTABLISHED, NULL);
}

static int client_try_connect(struct smoke *s, struct sockaddr *dst)
{
	struct rdma_conn_param cp = {
	    .responder_resources = 1, .initiator_depth = 1, .retry_count = 7, .rnr_retry_count = 7};
	int ret;

	s->ec = rdma_create_event_channel();
	if (!s->ec || rdma_create_id(s->ec, &s->id, NULL, RDMA_PS_TCP))
		return -errno;
	if (rdma_resolve_addr(s->id, NULL, dst, TIMEOUT_MS))
		return -errno;
	ret = wait_cm(s, RDMA_CM_EVENT_ADDR_RESOLVED, NULL);
	if (ret)
		return ret;
	if (rdma_resolve_route(s->id, TIMEOUT_MS))
		return -errno;
	ret = wait_cm(s, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL);
	if (ret)
		return ret;
	ret = setup_qp(s);
	if (ret)
		return ret;
	ret = post_recv(s);
	if (ret)
		return ret;
	if (rdma_connect(s->id, &cp))
		return -errno;
	return wait_cm(s, RDMA_CM_EVENT_ESTABLISHED, NULL);
}

/* The server of a two-node run may still be booting: retry refusals until the deadline. */
static int client_connect(struct smoke *s)
{
	struct timespec t0, now;
	struct addrinfo *ai;
	int ret;

	ret = resolve(s->addr, s->port, &ai);
	if (ret)
		return ret;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ret = client_try_connect(s, ai->ai_addr);
		if (ret != -ECONNREFUSED)
			break;
		teardown(s);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= s->connect_timeout_s)
			break;
		usleep(200 * 1000);
	}
	freeaddrinfo(ai);
	if (ret)
		fprintf(stderr, "client: cannot connect to %s:%s: %s\n", s->addr, s->port,
			strerror(-ret));
	return ret;
}

static int server_round(struct smoke *s, uint32_t round)
{
	uint32_t len = sizes[round];
	int ret;

	fill(s->buf, len, SEED_SERVER, round);
	*s->tx = (struct smoke_msg){.magic = SMOKE_MAGIC,
				    .round = round,
				    .addr = (uintptr_t)s->buf,
				    .rkey = s->buf_mr->rkey,
				    .len = len};
	ret = post_send(s);
	if (!ret)
		ret = wait_wc(s, OP_SEND);
	/* The client READs, WRITEs, then SENDs; RC ordering puts its data here first. */
	if (!ret)
		ret = recv_msg(s, round);
	if (ret)
		return ret;
	if (s->rx->len != len || s->rx->seed != SEED_CLIENT) {
		fprintf(stderr, "server: client reports len %u seed %#x\n", s->rx->len,
			s->rx->seed);
		return -EPROTO;
	}
	ret = post_recv(s);
	if (ret)
		return ret;
	*s->tx = (struct smoke_msg){.magic = SMOKE_MAGIC, .round = round};
	s->tx->status = verify(s->buf, len, SEED_CLIENT, round, "server: RDMA WRITE data")
			    ? STATUS_BADBUF
			    : STATUS_OK;
	ret = post_send(s);
	if (!ret)
		ret = wait_wc(s, OP_SEND);
	if (!ret && s->tx->status != STATUS_OK)
		ret = -EIO;
	return ret;
}

static int client_round(struct smoke *s, uint32_t round)
{
	uint32_t len = sizes[round];
	uint64_t raddr;
	uint32_t rkey;
	int ret;

	ret = recv_msg(s, round);
	if (ret)
		return ret;
	if (s->rx->len != len) {
		fprintf(stderr, "client: advert for %u bytes, want %u\n", s->rx->len, len);
		return -EPROTO;
	}
	raddr = s->rx->addr;
	rkey = s->rx->rkey;
	ret = post_recv(s);
	if (ret)
		return ret;

	memset(s->buf, 0, len);
	ret = post_rdma(s, OP_READ, len, raddr, rkey);
	if (!ret)
		ret = wait_wc(s, OP_READ);
	if (!ret)
		ret = verify(s->buf, len, SEED_SERVER, round, "client: RDMA READ data");
	if (ret)
		return ret;

	fill(s->buf, len, SEED_CLIENT, round);
	ret = post_rdma(s, OP_WRITE, len, raddr, rkey);
	if (!ret)
		ret = wait_wc(s, OP_WRITE);
	if (ret)
		return ret;
	*s->tx = (struct smoke_msg){
	    .magic = SMOKE_MAGIC, .round = round, .len = len, .seed = SEED_CLIENT};
	ret = post_send(s);
	if (!ret)
		ret = wait_wc(s, OP_SEND);
	if (!ret)
		ret = recv_msg(s, round);
	if (ret)
		return ret;
	if (s->rx->status != STATUS_OK) {
		fprintf(stderr, "client: server found bad RDMA WRITE data in round %u\n", round);
		return -EIO;
	}
	return post_recv(s);
}

static int run_server(struct smoke *s, int ready_fd)
{
	int ret = server_accept(s, ready_fd);

	for (uint32_t r = 0; !ret && r < NROUNDS; r++)
		ret = server_round(s, r);
	if (!ret)
		printf("server: %zu rounds verified (1 B to %u B)\n", NROUNDS, MAX_SIZE);
	teardown(s);
	return ret;
}

static int run_client(struct smoke *s)
{
	int ret = client_connect(s);

	for (uint32_t r = 0; !ret && r < NROUNDS; r++)
		ret = client_round(s, r);
	if (!ret) {
		rdma_disconnect(s->id);
		printf("client: READ, WRITE and SEND/RECV verified for %zu sizes\n", NROUNDS);
	}
	teardown(s);
	return ret;
}

static int run_both(struct smoke *s)
{
	int ready[2], status, ret;
	char c;
	pid_t pid;

	if (pipe(ready))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(ready[0]);
		s->role = "server";
		_exit(run_server(s, ready[1]) ? 1 : 0);
	}
	close(ready[1]);
	/* The server says when it listens; EOF means it died first. */
	if (read(ready[0], &c, 1) != 1) {
		waitpid(pid, &status, 0);
		return -EIO;
	}
	close(ready[0]);
	s->role = "client";
	ret = run_client(s);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "server process failed\n");
		return ret ? ret : -EIO;
	}
	return ret;
}

static int require_device(void)
{
	struct ibv_device **list;
	int n = 0;

	list = ibv_get_device_list(&n);
	if (list)
		ibv_free_device_list(list);
	if (n > 0)
		return 0;
	fprintf(stderr,
		"no RDMA device here (%s): rdma tests run inside ci/rxe-vm and never "
		"skip\n",
		list ? "none listed" : strerror(errno));
	return -ENODEV;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"role", required_argument, NULL, 'r'},
	    {"addr", required_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"connect-timeout", required_argument, NULL, 't'},
	    {0},
	};
	struct smoke s = {.role = "auto", .port = DEFAULT_PORT, .connect_timeout_s = 120};
	const char *nodes = getenv("WEFT_NODES"), *node = getenv("WEFT_NODE");
	int c, ret;

	s.addr = getenv("WEFT_RXE_ADDR");
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			s.role = optarg;
			break;
		case 'a':
			s.addr = optarg;
			break;
		case 'p':
			s.port = optarg;
			break;
		case 't':
			s.connect_timeout_s = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [--role auto|both|server|client] [--addr A] "
				"[--port P] [--connect-timeout S]\n",
				argv[0]);
			return 2;
		}
	}
	if (strcmp(s.role, "auto") == 0) {
		s.role = "both";
		if (nodes && strcmp(nodes, "2") == 0 && node) {
			s.role = strcmp(node, "0") == 0 ? "server" : "client";
			if (strcmp(s.role, "client") == 0 && !getenv("WEFT_PEER_ADDR")) {
				fprintf(stderr, "WEFT_PEER_ADDR is not set\n");
				return 1;
			}
			if (strcmp(s.role, "client") == 0)
				s.addr = getenv("WEFT_PEER_ADDR");
		}
	}
	if (require_device())
		return 1;
	if (!s.addr) {
		fprintf(stderr, "no address: pass --addr or run under ci/rxe-vm\n");
		return 1;
	}

	if (strcmp(s.role, "both") == 0)
		ret = run_both(&s);
	else if (strcmp(s.role, "server") == 0)
		ret = run_server(&s, -1);
	else if (strcmp(s.role, "client") == 0)
		ret = run_client(&s);
	else
		ret = -EINVAL;
	if (ret) {
		fprintf(stderr, "rdma_smoke %s failed: %s\n", s.role, strerror(-ret));
		return 1;
	}
	return 0;
}
