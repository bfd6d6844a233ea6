/*
 * tcp_echo_rtt: one loopback TCP connection, one line at a time: a client
 * actor writes "ping\n", an echo server actor answers it, the client waits
 * for the answer before the next. Both are actors on the runtime's I/O
 * (bulwark/io.h): each round trip is two readiness events through the
 * runtime's polling workers and two actor turns. The figure is the mean
 * round trip.
 *
 * tcp_echo_rtt_epoll does the same with two plain threads, each blocked in
 * its own epoll_wait (the floor the runtime's I/O layer is compared with:
 * run both in one bw-bench invocation and take the ratio).
 */
#include "runner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- through the runtime ------------------------------------------------------- */

typedef struct te_shared {
  uint64_t n;
  uint16_t port;      /* written by the server's init, before spawn returns */
  bench_slot_t slot[2]; /* [0] client: round trips; [1] server: lines echoed */
} te_shared_t;

typedef struct te_server {
  te_shared_t *sh;
  bw_tcp_t *l;
} te_server_t;

static int te_server_init(bw_ctx_t *ctx, void *state, void *arg)
{
  te_server_t *s = state;
  s->sh = arg;
  int rc = bw_tcp_listen(ctx, NULL, 0, 16, NULL, &s->l);
  if (rc == 0)
    s->sh->port = bw_tcp_port(s->l);
  return rc;
}

static int te_server_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  te_server_t *s = state;
  if (msg->type != BW_MSG_IO) {
    s->sh->slot[1].msgs++;
    return BW_CONTINUE;
  }
  const bw_io_event_t *ev = msg->data;
  bw_tcp_t *c = ev->ud;
  int r = bw_tcp_on_io(ctx, c, ev);
  if (r < 0) {
    bw_tcp_close(ctx, c);
    return BW_CONTINUE;
  }
  if (r & BW_TCP_ACCEPT) {
    bw_tcp_t *nc;
    while (bw_tcp_accept(ctx, c, &nc) == 1)
      ;
    return BW_CONTINUE;
  }
  const char *line;
  size_t len;
  char out[64];
  while (bw_tcp_getline(ctx, c, &line, &len) == 1) {
    if (len >= sizeof out)
      len = sizeof out - 1;
    memcpy(out, line, len);
    out[len] = '\n';
    if (bw_tcp_write(ctx, c, out, len + 1) != 0)
      return BW_EIO;
    s->sh->slot[1].work++;
  }
  if (r & BW_TCP_EOF)
    bw_tcp_close(ctx, c);
  return BW_CONTINUE;
}

static const bw_behaviour_t te_server_b = {
    .name = "bench.tcp_echo.server",
    .state_size = sizeof(te_server_t),
    .init = te_server_init,
    .handle = te_server_handle,
};

typedef struct te_client {
  te_shared_t *sh;
  bw_tcp_t *c;
  bool connected, going;
  uint64_t done;
  bench_waiter_t waiter;
} te_client_t;

static int te_client_init(bw_ctx_t *ctx, void *state, void *arg)
{
  te_client_t *s = state;
  s->sh = arg;
  return bw_tcp_connect(ctx, NULL, s->sh->port, 10000, NULL, &s->c);
}

static void te_ping(bw_ctx_t *ctx, te_client_t *s)
{
  int rc = bw_tcp_write(ctx, s->c, "ping\n", 5);
  if (rc != 0)
    bench_waiter_fail(&s->waiter, ctx, "bw_tcp_write: %s", bw_strerror(rc));
}

static int te_client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  te_client_t *s = state;
  if (msg->type == BENCH_MSG_GO) {
    s->sh->slot[0].msgs++;
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    s->going = true;
    if (s->connected)
      te_ping(ctx, s);
    return BW_CONTINUE;
  }
  if (msg->type != BW_MSG_IO)
    return BW_EINVAL;
  int r = bw_tcp_on_io(ctx, s->c, msg->data);
  if (r < 0) {
    bench_waiter_fail(&s->waiter, ctx, "client: %s", bw_strerror(r));
    return BW_CONTINUE;
  }
  if (r & BW_TCP_CONNECTED) {
    s->connected = true;
    if (s->going)
      te_ping(ctx, s);
  }
  const char *line;
  size_t len;
  while (bw_tcp_getline(ctx, s->c, &line, &len) == 1) {
    if (len != 4 || memcmp(line, "ping", 4) != 0) {
      bench_waiter_fail(&s->waiter, ctx, "bad echo");
      return BW_CONTINUE;
    }
    s->sh->slot[0].work++;
    if (++s->done == s->sh->n) {
      bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
      bw_tcp_close(ctx, s->c);
      s->c = NULL;
      return BW_CONTINUE;
    }
    te_ping(ctx, s);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t te_client_b = {
    .name = "bench.tcp_echo.client",
    .state_size = sizeof(te_client_t),
    .init = te_client_init,
    .handle = te_client_handle,
};

static int rtt_result(bench_run_t *r, uint64_t t0, uint64_t t1, uint64_t n)
{
  if (t1 <= t0)
    return bench_fail(r, "empty span");
  r->seconds = (double)(t1 - t0) / 1e9;
  r->work = n;
  r->value = (double)(t1 - t0) / 1e3 / (double)n; /* microseconds per round trip */
  return 0;
}

static int te_run(bench_run_t *r)
{
  te_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_pid_t srv = BW_PID_NONE, cli = BW_PID_NONE;
  int rc = bw_spawn(rt, &te_server_b, &sh, NULL, &srv);
  if (rc == 0)
    rc = bw_spawn(rt, &te_client_b, &sh, NULL, &cli);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  bench_done_t done;
  int go = bench_go(r, rt, cli, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    return -1;
  if (sh.slot[0].work != sh.n || sh.slot[1].work != sh.n)
    return bench_fail(r, "round trips %" PRIu64 ", echoes %" PRIu64 ", expected %" PRIu64,
                      sh.slot[0].work, sh.slot[1].work, sh.n);
  if (bench_check_stats(r, &st, sh.slot[0].msgs + sh.slot[1].msgs, 2) != 0)
    return -1;
  return rtt_result(r, done.t0_ns, done.t1_ns, sh.n);
}

const bench_t bench_tcp_echo_rtt = {
    .name = "tcp_echo_rtt",
    .group = "runtime",
    .unit = "us",
    .higher_is_better = false,
    .summary = "one loopback TCP line echo at a time, client and server actors on the runtime's I/O",
    .params = {{"n", 50000, 5000, 1, UINT64_C(1) << 32, "round trips"}},
    .run = te_run,
};

/* --- plain epoll: the floor ------------------------------------------------------ */

typedef struct pe_server {
  int lfd;
  uint64_t echoed;
  int err;
} pe_server_t;

/* One thread, one epoll set, level-triggered: accept, then echo lines
 * until the peer closes. */
static void *pe_server_main(void *arg)
{
  pe_server_t *s = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = s->lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, s->lfd, &e);
  char buf[4096];
  for (;;) {
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, -1);
    if (n < 0 && errno == EINTR)
      continue;
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == s->lfd) {
        int c = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN)
          continue;
        close(fd);
        close(ep);
        return NULL; /* the one client is done */
      }
      for (ssize_t k = 0; k < got; k++)
        if (buf[k] == '\n')
          s->echoed++;
      if (send(fd, buf, (size_t)got, MSG_NOSIGNAL) != got)
        s->err = 1;
    }
  }
}

static int pe_run(bench_run_t *r)
{
  uint64_t n = bench_param(r, "n");
  pe_server_t s = {.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (s.lfd < 0 || bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(s.lfd, 16) != 0 || getsockname(s.lfd, (struct sockaddr *)&sa, &sl) != 0)
    return bench_fail(r, "listen: %s", strerror(errno));
  pthread_t th;
  if (pthread_create(&th, NULL, pe_server_main, &s) != 0) {
    close(s.lfd);
    return bench_fail(r, "pthread_create");
  }
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(c);
    return bench_fail(r, "connect: %s", strerror(errno));
  }
  /* the client waits in epoll too, as an event loop would */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
  char buf[64];
  uint64_t ok = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    if (send(c, "ping\n", 5, MSG_NOSIGNAL) != 5)
      break;
    size_t have = 0;
    while (have < 5) {
      struct epoll_event ev;
      if (epoll_wait(ep, &ev, 1, -1) < 1)
        continue;
      ssize_t got = recv(c, buf + have, sizeof buf - have, MSG_DONTWAIT);
      if (got > 0)
        have += (size_t)got;
      else if (got == 0 || errno != EAGAIN)
        break;
    }
    if (have == 5 && memcmp(buf, "ping\n", 5) == 0)
      ok++;
    else
      break;
  }
  uint64_t t1 = bench_now_ns();
  close(ep);
  close(c);
  pthread_join(th, NULL);
  close(s.lfd);
  if (ok != n || s.echoed != n || s.err)
    return bench_fail(r, "round trips %" PRIu64 ", echoed %" PRIu64 ", expected %" PRIu64, ok,
                      s.echoed, n);
  return rtt_result(r, t0, t1, n);
}

const bench_t bench_tcp_echo_rtt_epoll = {
    .name = "tcp_echo_rtt_epoll",
    .group = "runtime",
    .unit = "us",
    .higher_is_better = false,
    .summary = "tcp_echo_rtt's work with two plain threads in epoll_wait (the floor)",
    .params = {{"n", 50000, 5000, 1, UINT64_C(1) << 32, "round trips"}},
    .run = pe_run,
};

/* --- plain epoll, one thread: the strictest floor ----------------------------------- */

/* Both ends in one thread and one level-triggered epoll set, so nothing
 * ever sleeps between the two halves of a round trip: what the runtime
 * does when one worker runs both actors, without the actors. */
static int pe1_loop(int ep, int cli, int srv, uint64_t n, uint64_t *ok, uint64_t *echoed)
{
  char buf[4096];
  if (send(cli, "ping\n", 5, MSG_NOSIGNAL) != 5)
    return -1;
  while (*ok < n) {
    struct epoll_event evs[2];
    int k = epoll_wait(ep, evs, 2, -1);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -1;
    for (int i = 0; i < k; i++) {
      int fd = evs[i].data.fd;
      ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got < 0 && errno == EAGAIN)
        continue;
      if (got <= 0)
        return -1;
      if (fd == srv) {
        *echoed += 1;
        if (send(srv, buf, (size_t)got, MSG_NOSIGNAL) != got)
          return -1;
      } else if (got == 5 && memcmp(buf, "ping\n", 5) == 0) {
        if (++*ok < n && send(cli, "ping\n", 5, MSG_NOSIGNAL) != 5)
          return -1;
      } else {
        return -1;
      }
    }
  }
  return 0;
}

static int pe1_run(bench_run_t *r)
{
  uint64_t n = bench_param(r, "n");
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 16) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
    if (lfd >= 0)
      close(lfd);
    return bench_fail(r, "listen: %s", strerror(errno));
  }
  int cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int srv = -1;
  if (connect(cli, (struct sockaddr *)&sa, sizeof sa) == 0)
    srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  close(lfd);
  if (srv < 0) {
    close(cli);
    return bench_fail(r, "connect/accept: %s", strerror(errno));
  }
  setsockopt(srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ec = {.events = EPOLLIN, .data.fd = cli};
  struct epoll_event es = {.events = EPOLLIN, .data.fd = srv};
  epoll_ctl(ep, EPOLL_CTL_ADD, cli, &ec);
  epoll_ctl(ep, EPOLL_CTL_ADD, srv, &es);
  uint64_t ok = 0, echoed = 0;
  uint64_t t0 = bench_now_ns();
  int rc = pe1_loop(ep, cli, srv, n, &ok, &echoed);
  uint64_t t1 = bench_now_ns();
  close(ep);
  close(cli);
  close(srv);
  if (rc != 0 || ok != n || echoed != n)
    return bench_fail(r, "round trips %" PRIu64 ", echoed %" PRIu64 ", expected %" PRIu64, ok,
                      echoed, n);
  return rtt_result(r, t0, t1, n);
}

const bench_t bench_tcp_echo_rtt_epoll1 = {
    .name = "tcp_echo_rtt_epoll1",
    .group = "runtime",
    .unit = "us",
    .higher_is_better = false,
    .summary = "tcp_echo_rtt's work in one plain thread and one epoll set (no sleep between halves)",
    .params = {{"n", 50000, 5000, 1, UINT64_C(1) << 32, "round trips"}},
    .run = pe1_run,
};
