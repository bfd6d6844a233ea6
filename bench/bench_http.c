/*
 * The HTTP client (bulwark/http.h) against a local server.
 *
 * http_rtt: one GET at a time through the client actor: an actor sends the
 * next request when the previous answer arrives, over one kept-alive
 * connection. The figure is the mean round trip (request sent by the actor
 * to its answer handled). Per request: the request message to the client
 * actor, curl's send, the readiness event (seen by a polling worker)
 * to the client actor, curl's read, the reply to the requester.
 *
 * http_rtt_curl does the same with plain libcurl on one thread: one easy
 * handle kept (so its connection is kept alive), added to a multi handle
 * per request and driven by curl_multi_perform / curl_multi_poll until it
 * is done. Run both in one bw-bench invocation and take the ratio: the
 * same server answers both, so the ratio compares the clients only.
 *
 * http_concurrency: `actors` actors keep `depth` requests each in flight
 * (100 x 100 = 10,000 at once by default, capped by the descriptor limit)
 * until each has had `n` answers; the figure is answers per second, the
 * connection storm at the start included. The same run measured two more
 * ways: http_concurrency_threads (the most threads the client's process
 * had, /proc/self/task, sampled every 2 ms by a thread that does not count
 * itself) and http_concurrency_rss (its peak resident memory, VmHWM, MiB).
 *
 * The server is this file's own: a child process (so its descriptors and
 * memory are not the client's) with one thread on plain epoll, which
 * answers "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" to each request
 * (the end of a request is its "\r\n\r\n"), keeps every connection alive,
 * and counts accepts and answers in shared memory for the checks.
 */
#include "runner.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- the server ------------------------------------------------------------------------------ */

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
#define RESPONSE_LEN (sizeof RESPONSE - 1)

/* In shared memory: written by the server process, read by the bench after
 * waitpid (which orders them), or polled (relaxed: only counts). */
typedef struct hs_shared {
  atomic_uint_fast64_t accepted, served, errors;
  uint16_t port;
} hs_shared_t;

typedef struct hs {
  hs_shared_t *sh;
  pid_t pid;
} hs_t;

/* Raises the soft descriptor limit to the hard one; returns the new soft
 * limit. */
static rlim_t raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

static void hs_loop(hs_shared_t *sh, int lfd)
{
  rlim_t lim = raise_nofile();
  uint8_t *st = calloc(lim, 1); /* per descriptor: how much of "\r\n\r\n" was seen */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
  if (st == NULL || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) != 0)
    _exit(1);
  static char buf[16384], out[16384];
  static struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno == EINTR)
      continue;
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0)
            break;
          if ((rlim_t)c >= lim) {
            close(c);
            atomic_fetch_add_explicit(&sh->errors, 1, memory_order_relaxed);
            continue;
          }
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          st[c] = 0;
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
          atomic_fetch_add_explicit(&sh->accepted, 1, memory_order_relaxed);
        }
        continue;
      }
      ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN)
          continue;
        close(fd); /* the peer closed (or reset): drop the connection */
        continue;
      }
      size_t o = 0;
      uint8_t s = st[fd];
      for (ssize_t k = 0; k < got; k++) {
        char ch = buf[k];
        if (ch == '\r')
          s = s == 2 ? 3 : 1;
        else if (ch == '\n' && (s == 1 || s == 3))
          s++;
        else
          s = 0;
        if (s == 4) { /* a whole request: answer it */
          s = 0;
          if (o + RESPONSE_LEN > sizeof out) {
            atomic_fetch_add_explicit(&sh->errors, 1, memory_order_relaxed);
            break;
          }
          memcpy(out + o, RESPONSE, RESPONSE_LEN);
          o += RESPONSE_LEN;
          atomic_fetch_add_explicit(&sh->served, 1, memory_order_relaxed);
        }
      }
      st[fd] = s;
      if (o > 0 && send(fd, out, o, MSG_NOSIGNAL) != (ssize_t)o)
        atomic_fetch_add_explicit(&sh->errors, 1, memory_order_relaxed);
    }
  }
}

/* Starts the server process. Returns 0, or -1 with r->error set. Call
 * before the runtime exists (the child forks a process with one thread). */
static int hs_start(bench_run_t *r, hs_t *s)
{
  s->sh = mmap(NULL, sizeof *s->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s->sh == MAP_FAILED)
    return bench_fail(r, "mmap: %s", strerror(errno));
  memset(s->sh, 0, sizeof *s->sh);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 65535) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
    if (lfd >= 0)
      close(lfd);
    munmap(s->sh, sizeof *s->sh);
    return bench_fail(r, "listen: %s", strerror(errno));
  }
  s->sh->port = ntohs(sa.sin_port);
  fflush(NULL);
  pid_t parent = getpid();
  s->pid = fork();
  if (s->pid < 0) {
    close(lfd);
    munmap(s->sh, sizeof *s->sh);
    return bench_fail(r, "fork: %s", strerror(errno));
  }
  if (s->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the run */
    if (getppid() != parent) /* it died before the line above */
      _exit(1);
    hs_loop(s->sh, lfd);
    _exit(0);
  }
  close(lfd); /* the child's now; connections queue on it already */
  return 0;
}

static void hs_stop(hs_t *s)
{
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
}

static void hs_free(hs_t *s)
{
  munmap(s->sh, sizeof *s->sh);
}

/* --- the requesters ---------------------------------------------------------------------------- */

enum {
  MSG_START = BENCH_MSG_USER, /* coordinator -> workers */
  MSG_DONE,                   /* worker -> coordinator: a bench_note_t */
};

#define REQ_TIMEOUT_MS 120000u

typedef struct hb_shared {
  bw_http_t *h;
  bw_pid_t client, coord;
  char url[64];
  uint64_t actors, depth, n;  /* per actor: depth in flight, n answers */
  bench_slot_t *slot;         /* per worker: answers checked; msgs handled */
  /* requests sent and not yet answered, over all workers, and the most
   * there were at once (the requesters' view of "in flight") */
  _Atomic uint64_t outstanding, peak_outstanding;
  uint64_t coord_msgs;
} hb_shared_t;

typedef struct hb_worker_arg {
  hb_shared_t *sh;
  bench_slot_t *slot;
} hb_worker_arg_t;

typedef struct hb_worker {
  hb_shared_t *sh;
  bench_slot_t *me;
  uint64_t sent;
} hb_worker_t;

static int hb_worker_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  hb_worker_t *w = state;
  const hb_worker_arg_t *a = arg;
  w->sh = a->sh;
  w->me = a->slot;
  return 0;
}

/* Sends one GET; returns 0 or the error (the run fails). */
static int hb_send(bw_ctx_t *ctx, hb_worker_t *w)
{
  bw_http_req_t *q = bw_http_req_new("GET", w->sh->url);
  if (q == NULL)
    return BW_ENOMEM;
  /* counted before the send, so the answer's decrement never comes first */
  if (w->sh->actors * w->sh->depth > 1) {
    /* relaxed: counts; the peak is read after the runtime is stopped
     * (its threads joined) */
    uint64_t now =
        atomic_fetch_add_explicit(&w->sh->outstanding, 1, memory_order_relaxed) + 1;
    uint64_t seen = atomic_load_explicit(&w->sh->peak_outstanding, memory_order_relaxed);
    while (now > seen &&
           !atomic_compare_exchange_weak_explicit(&w->sh->peak_outstanding, &seen, now,
                                                  memory_order_relaxed, memory_order_relaxed))
      ;
  }
  int rc = bw_http_request(ctx, w->sh->client, q, REQ_TIMEOUT_MS, NULL);
  if (rc == 0)
    w->sent++;
  return rc;
}

static int hb_worker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  hb_worker_t *w = state;
  w->me->msgs++;
  if (msg->type == MSG_START) {
    for (uint64_t i = 0; i < w->sh->depth && w->sent < w->sh->n; i++) {
      int rc = hb_send(ctx, w);
      if (rc != 0) {
        bench_note(ctx, w->sh->coord, MSG_DONE, "bw_http_request: %s", bw_strerror(rc));
        return BW_STOP;
      }
    }
    return BW_CONTINUE;
  }
  if (msg->type != BW_HTTP_MSG_RESPONSE)
    return BW_EINVAL;
  bw_http_resp_t *resp = bw_msg_take(ctx, msg);
  bool ok = msg->status == 0 && resp != NULL && resp->code == 200 && resp->body_len == 2 &&
            memcmp(resp->body, "ok", 2) == 0;
  int status = msg->status;
  bw_http_resp_free(resp);
  if (!ok) {
    bench_note(ctx, w->sh->coord, MSG_DONE, "bad answer: status %s", bw_strerror(status));
    return BW_STOP;
  }
  w->me->work++;
  if (w->sh->actors * w->sh->depth > 1) /* relaxed: a count (see hb_send) */
    atomic_fetch_sub_explicit(&w->sh->outstanding, 1, memory_order_relaxed);
  if (w->me->work == w->sh->n) {
    bench_note(ctx, w->sh->coord, MSG_DONE, NULL);
    return BW_CONTINUE;
  }
  if (w->sent < w->sh->n) {
    int rc = hb_send(ctx, w);
    if (rc != 0) {
      bench_note(ctx, w->sh->coord, MSG_DONE, "bw_http_request: %s", bw_strerror(rc));
      return BW_STOP;
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t hb_worker_b = {
    .name = "bench.http.worker",
    .state_size = sizeof(hb_worker_t),
    .init = hb_worker_init,
    .handle = hb_worker_handle,
};

typedef struct hb_coord {
  hb_shared_t *sh;
  bw_pid_t *workers;
  uint64_t done;
  bench_waiter_t waiter;
} hb_coord_t;

typedef struct hb_coord_arg {
  hb_shared_t *sh;
  bw_pid_t *workers;
} hb_coord_arg_t;

static int hb_coord_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  hb_coord_t *c = state;
  const hb_coord_arg_t *a = arg;
  c->sh = a->sh;
  c->workers = a->workers;
  return 0;
}

static int hb_coord_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  hb_coord_t *c = state;
  c->sh->coord_msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < c->sh->actors; i++) {
      int rc = bw_send(bw_ctx_runtime(ctx), c->workers[i], MSG_START, NULL, 0);
      if (rc != 0) {
        bench_waiter_fail(&c->waiter, ctx, "bw_send: %s", bw_strerror(rc));
        return BW_CONTINUE;
      }
    }
    return BW_CONTINUE;
  }
  if (msg->type != MSG_DONE || msg->len != sizeof(bench_note_t))
    return BW_EINVAL;
  const bench_note_t *note = msg->data;
  if (note->error[0] != '\0' || ++c->done == c->sh->actors)
    bench_waiter_note(&c->waiter, ctx, msg);
  return BW_CONTINUE;
}

static const bw_behaviour_t hb_coord_b = {
    .name = "bench.http.coordinator",
    .state_size = sizeof(hb_coord_t),
    .init = hb_coord_init,
    .handle = hb_coord_handle,
};

/* --- threads of the process, sampled ------------------------------------------------------------- */

typedef struct sampler {
  pthread_t th;
  atomic_bool stop;
  unsigned peak; /* the most threads seen, this sampler excluded */
} sampler_t;

static unsigned count_tasks(void)
{
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return 0;
  unsigned n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void *sampler_main(void *arg)
{
  sampler_t *s = arg;
  /* relaxed: a stop flag; the join orders the peak for the reader. One
   * sample after the flag too: the run's threads live until after it is
   * set, so even a run shorter than this thread's first turn is counted. */
  bool last = false;
  do {
    last = atomic_load_explicit(&s->stop, memory_order_relaxed);
    unsigned n = count_tasks();
    if (n > 0 && n - 1 > s->peak)
      s->peak = n - 1;
    if (!last)
      bench_sleep_ms(2);
  } while (!last);
  return NULL;
}

/* --- the runs through the client ---------------------------------------------------------------- */

enum { M_RTT, M_RATE, M_THREADS, M_RSS };

#define WARMUP 100u

static uint64_t vm_hwm_bytes(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[128];
  unsigned long kb = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return (uint64_t)kb * 1024u;
}

static int hb_run(bench_run_t *r, int mode)
{
  hb_shared_t sh;
  memset(&sh, 0, sizeof sh);
  if (mode == M_RTT) {
    sh.actors = 1;
    sh.depth = 1;
    sh.n = bench_param(r, "n");
  } else {
    sh.actors = bench_param(r, "actors");
    sh.depth = bench_param(r, "depth");
    sh.n = bench_param(r, "n");
    if (sh.depth > sh.n)
      sh.depth = sh.n;
  }
  /* descriptors: one per connection, at most one connection per request in
   * flight; keep 256 for the runtime and the rest */
  rlim_t lim = raise_nofile();
  uint64_t want = sh.actors * sh.depth;
  uint64_t conns = lim > 512 ? (uint64_t)lim - 256 : 256;
  if (conns > want)
    conns = want;
  if (conns > 65536)
    conns = 65536;

  hs_t srv;
  if (hs_start(r, &srv) != 0)
    return -1;
  snprintf(sh.url, sizeof sh.url, "http://127.0.0.1:%u/", (unsigned)srv.sh->port);
  sh.slot = bench_slots(sh.actors);
  bw_pid_t *workers = calloc(sh.actors, sizeof *workers);
  hb_worker_arg_t *wargs = calloc(sh.actors, sizeof *wargs);
  if (sh.slot == NULL || workers == NULL || wargs == NULL) {
    free(sh.slot);
    free(workers);
    free(wargs);
    hs_stop(&srv);
    hs_free(&srv);
    return bench_fail(r, "out of memory");
  }

  bw_runtime_t *rt = NULL;
  int ret = -1;
  if (bench_runtime_create(r, &rt) != 0)
    goto out_srv;
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.name = "bench";
  o.max_in_flight = (uint32_t)conns;
  o.max_per_host = (uint32_t)conns;
  o.max_queued = want > conns ? (uint32_t)(want - conns < 65536 ? want - conns : 65536) : 1024;
  o.default_timeout_ms = REQ_TIMEOUT_MS;
  int rc = bw_http_new(rt, &o, &sh.h);
  if (rc == 0)
    rc = bw_http_start(sh.h, &sh.client);
  if (rc != 0) {
    bench_fail(r, "bw_http_new/start: %s", bw_strerror(rc));
    if (sh.h != NULL)
      bw_http_destroy(sh.h);
    bench_runtime_finish(r, rt, NULL);
    goto out_srv;
  }
  /* the connection (http_rtt's one) is made before the measured part */
  for (unsigned i = 0; i < WARMUP; i++) {
    bw_http_resp_t *resp = NULL;
    bw_http_req_t *q = bw_http_req_new("GET", sh.url);
    rc = q ? bw_http_call(rt, sh.client, q, 10000, &resp) : BW_ENOMEM;
    bool ok = rc == 0 && resp != NULL && resp->code == 200 && resp->body_len == 2;
    bw_http_resp_free(resp);
    if (!ok) {
      bench_fail(r, "warm-up request: %s", rc ? bw_strerror(rc) : "bad answer");
      bw_http_destroy(sh.h);
      bench_runtime_finish(r, rt, NULL);
      goto out_srv;
    }
  }
  bw_pid_t coord = BW_PID_NONE;
  hb_coord_arg_t ca = {&sh, workers};
  rc = 0;
  for (uint64_t i = 0; i < sh.actors && rc == 0; i++) {
    wargs[i] = (hb_worker_arg_t){&sh, &sh.slot[i]};
    rc = bw_spawn(rt, &hb_worker_b, &wargs[i], NULL, &workers[i]);
  }
  if (rc == 0)
    rc = bw_spawn(rt, &hb_coord_b, &ca, NULL, &coord);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bw_http_destroy(sh.h);
    bench_runtime_finish(r, rt, NULL);
    goto out_srv;
  }
  sh.coord = coord;
  sampler_t smp = {.peak = 0};
  bool sampling = mode == M_THREADS && pthread_create(&smp.th, NULL, sampler_main, &smp) == 0;
  if (mode == M_THREADS && !sampling) {
    bench_fail(r, "pthread_create");
    bw_http_destroy(sh.h);
    bench_runtime_finish(r, rt, NULL);
    goto out_srv;
  }
  bench_done_t done;
  int go = bench_go(r, rt, coord, NULL, 0, &done);
  if (sampling) {
    atomic_store_explicit(&smp.stop, true, memory_order_relaxed);
    pthread_join(smp.th, NULL);
  }
  uint64_t hwm = vm_hwm_bytes();
  bw_http_stats_t hst;
  bw_http_stats(sh.h, &hst);
  int des = bw_http_destroy(sh.h);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out_srv;
  if (des != 0) {
    bench_fail(r, "bw_http_destroy: %s", bw_strerror(des));
    goto out_srv;
  }
  hs_stop(&srv);
  uint64_t total = sh.actors * sh.n;
  uint64_t answered = 0;
  for (uint64_t i = 0; i < sh.actors; i++)
    answered += sh.slot[i].work;
  uint64_t served = atomic_load(&srv.sh->served), accepted = atomic_load(&srv.sh->accepted);
  if (answered != total || served != total + WARMUP || atomic_load(&srv.sh->errors) != 0) {
    bench_fail(r,
               "answers %" PRIu64 ", served %" PRIu64 " (with %u warm-up), expected %" PRIu64
               "; server errors %" PRIu64,
               answered, served, WARMUP, total, (uint64_t)atomic_load(&srv.sh->errors));
    goto out;
  }
  if (hst.responses_2xx != total + WARMUP || hst.requests != total + WARMUP) {
    bench_fail(r, "client counted %" PRIu64 " requests, %" PRIu64 " 2xx, expected %" PRIu64,
               hst.requests, hst.responses_2xx, total + WARMUP);
    goto out;
  }
  if (st.crashed != 0 || st.dead_letters != 0 || st.sent != st.handled + st.dead_letters) {
    bench_fail(r, "runtime: %" PRIu64 " crashed, %" PRIu64 " dead letters, sent %" PRIu64
                  ", handled %" PRIu64,
               st.crashed, st.dead_letters, st.sent, st.handled);
    goto out;
  }
  if (mode == M_RTT && accepted != 1) {
    bench_fail(r, "%" PRIu64 " connections accepted: keep-alive expected one", accepted);
    goto out;
  }
  if (mode != M_RTT && accepted > conns) {
    bench_fail(r, "%" PRIu64 " connections accepted, at most %" PRIu64 " expected", accepted,
               conns);
    goto out;
  }
  /* the measured size (10,000) must really have been in flight at once;
   * small sizes (--quick, the smoke test) can legitimately see answers
   * come back before the last actor has sent, so they are not held to it */
  uint64_t peak = atomic_load(&sh.peak_outstanding);
  if (mode != M_RTT && want >= 1000 && peak * 2 < want) {
    bench_fail(r, "at most %" PRIu64 " requests were in flight at once (of %" PRIu64 ")", peak,
               want);
    goto out;
  }
  if (done.t1_ns <= done.t0_ns) {
    bench_fail(r, "empty span");
    goto out;
  }
  r->seconds = (double)(done.t1_ns - done.t0_ns) / 1e9;
  r->work = total;
  switch (mode) {
  case M_RTT:
    r->value = (double)(done.t1_ns - done.t0_ns) / 1e3 / (double)total;
    break;
  case M_RATE:
    r->value = (double)total / r->seconds;
    break;
  case M_THREADS:
    r->value = smp.peak;
    break;
  default:
    r->value = (double)hwm / (1024.0 * 1024.0);
    break;
  }
  ret = 0;
  goto out;
out_srv:
  hs_stop(&srv);
out:
  hs_free(&srv);
  free(sh.slot);
  free(workers);
  free(wargs);
  return ret;
}

static int hb_rtt_run(bench_run_t *r) { return hb_run(r, M_RTT); }
static int hb_rate_run(bench_run_t *r) { return hb_run(r, M_RATE); }
static int hb_threads_run(bench_run_t *r) { return hb_run(r, M_THREADS); }
static int hb_rss_run(bench_run_t *r) { return hb_run(r, M_RSS); }

const bench_t bench_http_rtt = {
    .name = "http_rtt",
    .group = "patterns",
    .unit = "us",
    .higher_is_better = false,
    .summary = "one GET at a time through the HTTP client actor, kept-alive, local epoll server",
    .params = {{"n", 20000, 2000, 1, UINT64_C(1) << 32, "requests"}},
    .run = hb_rtt_run,
};

#define CONC_PARAMS                                                                               \
  {{"actors", 100, 10, 1, 10000, "requester actors"},                                            \
   {"depth", 100, 10, 1, 10000, "requests each keeps in flight"},                                \
   {"n", 1000, 50, 1, UINT64_C(1) << 24, "answers per actor"}}

const bench_t bench_http_concurrency = {
    .name = "http_concurrency",
    .group = "patterns",
    .unit = "req/s",
    .higher_is_better = true,
    .summary = "actors x depth GETs in flight at once (10,000) through one HTTP client actor",
    .params = CONC_PARAMS,
    .run = hb_rate_run,
};

const bench_t bench_http_concurrency_threads = {
    .name = "http_concurrency_threads",
    .group = "patterns",
    .unit = "threads",
    .higher_is_better = false,
    .summary = "http_concurrency's run: the most threads its process had (sampled)",
    .params = CONC_PARAMS,
    .run = hb_threads_run,
};

const bench_t bench_http_concurrency_rss = {
    .name = "http_concurrency_rss",
    .group = "patterns",
    .unit = "MiB",
    .higher_is_better = false,
    .summary = "http_concurrency's run: its process's peak resident memory (VmHWM)",
    .params = CONC_PARAMS,
    .run = hb_rss_run,
};

/* --- plain libcurl: the reference ------------------------------------------------------------ */

typedef struct cb_buf {
  char body[64];
  size_t len, header_bytes;
} cb_buf_t;

static size_t cb_body(char *d, size_t sz, size_t n, void *ud)
{
  cb_buf_t *b = ud;
  size_t bytes = sz * n;
  size_t room = sizeof b->body - 1 - b->len;
  size_t k = bytes < room ? bytes : room;
  memcpy(b->body + b->len, d, k);
  b->len += k;
  return bytes;
}

static size_t cb_header(char *d, size_t sz, size_t n, void *ud)
{
  (void)d;
  cb_buf_t *b = ud;
  b->header_bytes += sz * n;
  return sz * n;
}

/* One request on the kept easy handle through the multi handle. */
static bool curl_once(CURLM *m, CURL *e, cb_buf_t *b)
{
  b->len = 0;
  if (curl_multi_add_handle(m, e) != CURLM_OK)
    return false;
  int running = 1;
  while (running) {
    if (curl_multi_perform(m, &running) != CURLM_OK)
      break;
    if (running && curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK)
      break;
  }
  bool ok = false;
  int left;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(m, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == e && msg->data.result == CURLE_OK)
      ok = true;
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(m, e);
  return ok && code == 200 && b->len == 2 && memcmp(b->body, "ok", 2) == 0;
}

static int hc_run(bench_run_t *r)
{
  uint64_t n = bench_param(r, "n");
  hs_t srv;
  if (hs_start(r, &srv) != 0)
    return -1;
  int ret = -1;
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)srv.sh->port);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *m = curl_multi_init();
  CURL *e = curl_easy_init();
  struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
  cb_buf_t b = {.len = 0};
  if (m == NULL || e == NULL || hdrs == NULL) {
    bench_fail(r, "curl init failed");
    goto out;
  }
  /* what the client sets that changes the bytes on the wire: the same request */
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "bulwark/0.1");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)&b);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cb_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)&b);
  for (unsigned i = 0; i < WARMUP; i++)
    if (!curl_once(m, e, &b)) {
      bench_fail(r, "warm-up request failed");
      goto out;
    }
  uint64_t ok = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    if (!curl_once(m, e, &b))
      break;
    ok++;
  }
  uint64_t t1 = bench_now_ns();
  hs_stop(&srv);
  uint64_t served = atomic_load(&srv.sh->served), accepted = atomic_load(&srv.sh->accepted);
  if (ok != n || served != n + WARMUP || atomic_load(&srv.sh->errors) != 0) {
    bench_fail(r, "answers %" PRIu64 ", served %" PRIu64 " (with %u warm-up), expected %" PRIu64,
               ok, served, WARMUP, n);
  } else if (accepted != 1) {
    bench_fail(r, "%" PRIu64 " connections accepted: keep-alive expected one", accepted);
  } else if (t1 <= t0) {
    bench_fail(r, "empty span");
  } else {
    r->seconds = (double)(t1 - t0) / 1e9;
    r->work = n;
    r->value = (double)(t1 - t0) / 1e3 / (double)n;
    ret = 0;
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(e);
  curl_multi_cleanup(m);
  hs_free(&srv);
  return ret;
out:
  curl_slist_free_all(hdrs);
  if (e)
    curl_easy_cleanup(e);
  if (m)
    curl_multi_cleanup(m);
  hs_stop(&srv);
  hs_free(&srv);
  return ret;
}

const bench_t bench_http_rtt_curl = {
    .name = "http_rtt_curl",
    .group = "patterns",
    .unit = "us",
    .higher_is_better = false,
    .summary = "http_rtt's work with plain libcurl multi on one thread, one kept easy handle",
    .params = {{"n", 20000, 2000, 1, UINT64_C(1) << 32, "requests"}},
    .run = hc_run,
};
