/*
 * Bulkhead pool and rate limiter benchmarks.
 *
 * bulkhead_rtt: one client actor sends a trivial message job to a pool of
 *   `workers` workers and waits for the answer before it sends the next:
 *   the latency of one submit-to-reply round trip (client -> pool -> worker
 *   -> client, plus the worker's done note to the pool), in microseconds.
 * bulkhead_rtt_call: the same from the main thread with bw_call (a plain
 *   thread waiting on each answer: adds the wake-up of a sleeping thread).
 * bulkhead_throughput: `clients` client actors keep `window` jobs each in
 *   flight through a pool of `workers` workers (the excess waits in the
 *   pool's queue), n jobs in all: jobs per second.
 * ratelimit_acquire: ns per bw_ratelimit_try_acquire from one thread, on a
 *   bucket that always has tokens (the uncontended fast path: a clock read,
 *   a load, a CAS and a counter).
 *
 * Every job carries its sequence number and the worker echoes it; clients
 * check each answer. After the run the pool's own stats must count every
 * job completed and none refused, and the runtime's counters must match
 * the messages the protocol sends exactly (4 per job: request, job, reply,
 * done note).
 */
#include "runner.h"

#include <bulwark/bulkhead.h>
#include <bulwark/ratelimit.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  BH_JOB = BENCH_MSG_USER, /* client -> pool (a job) -> worker; payload: uint64_t seq */
  BH_KICK,                 /* client -> itself: start (throughput clients) */
};

/* --- the worker: echoes the job's sequence number ------------------------- */

static int echo_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == BH_JOB && (msg->flags & BW_MSGF_REQUEST))
    bw_reply(ctx, msg, 0, BH_JOB, msg->data, msg->len);
  return BW_CONTINUE;
}

static const bw_behaviour_t echo_behaviour = {
    .name = "bench.bulkhead.echo", .state_size = 0, .handle = echo_handle};

static int pool_create(bench_run_t *r, bw_runtime_t *rt, uint32_t workers, uint32_t queue,
                       bw_bulkhead_t **pool) {
  bw_bulkhead_opts_t o;
  bw_bulkhead_opts_init(&o);
  o.name = "bench";
  o.workers = workers;
  o.worker = &echo_behaviour;
  o.queue_capacity = queue;
  o.queue_timeout_ms = queue ? 60000 : 0;
  int rc = bw_bulkhead_new(rt, &o, pool);
  if (rc != 0)
    return bench_fail(r, "bw_bulkhead_new: %s", bw_strerror(rc));
  if ((rc = bw_bulkhead_start(*pool, NULL)) != 0)
    return bench_fail(r, "bw_bulkhead_start: %s", bw_strerror(rc));
  return 0;
}

/* From main, after the run: the pool must have completed n jobs and
 * refused none. Message jobs' done notes may trail the last answer, so
 * this polls; returns the number of stats calls made (each 2 handled
 * messages), or -1. */
static int64_t pool_settle(bench_run_t *r, bw_bulkhead_t *pool, uint64_t n) {
  bw_bulkhead_stats_t m;
  for (int64_t calls = 1;; calls++) {
    int rc = bw_bulkhead_stats(pool, &m);
    if (rc != 0)
      return bench_fail(r, "bw_bulkhead_stats: %s", bw_strerror(rc));
    if (m.completed == n && m.busy == 0) {
      if (m.submitted != n || m.rejected != 0 || m.timed_out != 0 || m.crashed != 0)
        return bench_fail(r, "pool counted submitted %" PRIu64 " rejected %" PRIu64
                             " timed out %" PRIu64 " crashed %" PRIu64 " of %" PRIu64,
                          m.submitted, m.rejected, m.timed_out, m.crashed, n);
      return calls;
    }
    if (m.completed > n || calls > 1000000)
      return bench_fail(r, "pool completed %" PRIu64 " of %" PRIu64, m.completed, n);
  }
}

/* --- clients ------------------------------------------------------------------ */

typedef struct bh_arg {
  bw_pid_t pool;
  uint64_t n;      /* jobs this client makes */
  uint32_t window; /* in flight at once */
  uint32_t clients; /* the coordinator: clients in all, itself included */
  bw_pid_t coordinator; /* BW_PID_NONE: this client is the coordinator */
  const bw_pid_t *peers; /* the coordinator: pids[1 .. clients-1], read at GO */
  bench_slot_t *slot;
} bh_arg_t;

typedef struct bh_client {
  bh_arg_t a;
  uint64_t sent;     /* jobs sent: seq 1..sent */
  uint64_t answered; /* answers, which come back in any order */
  uint64_t sum;      /* of the answered sequence numbers, checked at the end */
  bench_waiter_t waiter;
  uint32_t finished; /* the coordinator: clients done, itself included */
  bool failed;
} bh_client_t;

enum { BH_NOTE = BH_KICK + 1 }; /* client -> coordinator: bench_note_t */

static int bh_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  bh_client_t *c = state;
  c->a = *(const bh_arg_t *)arg;
  return 0;
}

static void bh_fail(bw_ctx_t *ctx, bh_client_t *c, const char *what) {
  if (c->failed)
    return;
  c->failed = true;
  if (c->a.coordinator == BW_PID_NONE)
    bench_waiter_fail(&c->waiter, ctx, "%s", what);
  else
    bench_note(ctx, c->a.coordinator, BH_NOTE, "%s", what);
}

static void bh_send_one(bw_ctx_t *ctx, bh_client_t *c) {
  uint64_t seq = ++c->sent;
  int rc = bw_request(ctx, c->a.pool, BH_JOB, &seq, sizeof seq, 0, NULL);
  if (rc != 0) {
    char e[96];
    snprintf(e, sizeof e, "bw_request: %s", bw_strerror(rc));
    bh_fail(ctx, c, e);
  }
}

static void bh_start(bw_ctx_t *ctx, bh_client_t *c) {
  for (uint32_t i = 0; i < c->a.window && c->sent < c->a.n; i++)
    bh_send_one(ctx, c);
}

/* The coordinator: one more client is done; answer GO when all are. */
static void bh_count_finish(bw_ctx_t *ctx, bh_client_t *c) {
  if (++c->finished == c->a.clients)
    bench_waiter_ok(&c->waiter, ctx, bench_now_ns());
}

/* This client is done: tell the coordinator (or, being it, count itself). */
static void bh_finished(bw_ctx_t *ctx, bh_client_t *c) {
  if (c->sum != c->a.n * (c->a.n + 1) / 2) {
    bh_fail(ctx, c, "answers' sequence numbers do not add up");
    return;
  }
  if (c->a.coordinator != BW_PID_NONE)
    bench_note(ctx, c->a.coordinator, BH_NOTE, NULL);
  else
    bh_count_finish(ctx, c);
}

static int bh_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  bh_client_t *c = state;
  c->a.slot->msgs++;
  if (msg->flags & BW_MSGF_REPLY) {
    uint64_t seq = 0;
    if (msg->status != 0 || msg->len != sizeof seq) {
      char e[96];
      snprintf(e, sizeof e, "job answered %s", bw_strerror(msg->status));
      bh_fail(ctx, c, e);
      return BW_CONTINUE;
    }
    memcpy(&seq, msg->data, sizeof seq);
    c->sum += seq;
    c->answered++;
    c->a.slot->work++;
    if (c->sent < c->a.n)
      bh_send_one(ctx, c);
    else if (c->answered == c->a.n)
      bh_finished(ctx, c);
    return BW_CONTINUE;
  }
  switch (msg->type) {
  case BENCH_MSG_GO:
    if (c->a.coordinator != BW_PID_NONE || bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint32_t i = 1; i < c->a.clients; i++)
      (void)bw_send(bw_ctx_runtime(ctx), c->a.peers[i], BH_KICK, NULL, 0);
    bh_start(ctx, c);
    return BW_CONTINUE;
  case BH_KICK:
    bh_start(ctx, c);
    return BW_CONTINUE;
  case BH_NOTE: {
    bench_note_t note;
    if (c->a.coordinator != BW_PID_NONE || msg->len != sizeof note)
      return BW_EINVAL;
    memcpy(&note, msg->data, sizeof note);
    if (note.error[0] != '\0')
      bh_fail(ctx, c, note.error);
    else
      bh_count_finish(ctx, c);
    return BW_CONTINUE;
  }
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t bh_client_behaviour = {
    .name = "bench.bulkhead.client",
    .state_size = sizeof(bh_client_t),
    .init = bh_init,
    .handle = bh_handle,
};

#define BH_MAX_CLIENTS 64

/*
 * One run: a pool of `workers`, `clients` clients (client 0 coordinates:
 * it kicks the others at GO and answers when all are done), each making
 * n / clients jobs with `window` in flight. Fills *done.
 */
static int bh_run_clients(bench_run_t *r, uint64_t n, uint32_t workers, uint32_t clients,
                          uint32_t window, bench_done_t *done) {
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bench_slot_t *slots = bench_slots(clients);
  bw_bulkhead_t *pool = NULL;
  static bw_pid_t pids[BH_MAX_CLIENTS];
  int rc = slots == NULL ? bench_fail(r, "out of memory") : 0;
  if (rc == 0)
    rc = pool_create(r, rt, workers, clients * window, &pool);
  uint64_t per = n / clients;
  for (uint32_t i = 0; rc == 0 && i < clients; i++) {
    bh_arg_t a = {.pool = bw_bulkhead_pid(pool), .n = per, .window = window,
                  .clients = clients,
                  .coordinator = i == 0 ? BW_PID_NONE : pids[0], .peers = pids,
                  .slot = &slots[i]};
    int s = bw_spawn(rt, &bh_client_behaviour, &a, NULL, &pids[i]);
    if (s != 0)
      rc = bench_fail(r, "bw_spawn: %s", bw_strerror(s));
  }
  int go = -1;
  int64_t settle = -1;
  if (rc == 0) {
    go = bench_go(r, rt, pids[0], NULL, 0, done);
    if (go == 0)
      settle = pool_settle(r, pool, per * clients);
  }
  (void)bw_bulkhead_destroy(pool); /* stops the pool: before the runtime goes */
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  uint64_t msgs = 0, work = 0;
  if (slots != NULL)
    for (uint32_t i = 0; i < clients; i++) {
      msgs += slots[i].msgs;
      work += slots[i].work;
    }
  free(slots);
  if (rc != 0 || go != 0 || settle < 0 || fin != 0)
    return -1;
  uint64_t jobs = per * clients;
  if (work != jobs)
    return bench_fail(r, "clients counted %" PRIu64 " answers of %" PRIu64, work, jobs);
  /* per job: request (pool), job (worker), done note (pool); the answers,
   * GO, kicks and notes are the clients' msgs; + 2 per stats call
   * (request at the pool, reply taken by bw_call) */
  uint64_t handled = msgs + 3 * jobs + 2 * (uint64_t)settle;
  if (bench_check_stats(r, &st, handled, 1 + workers + clients) != 0)
    return -1;
  return 0;
}

static int rtt_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  uint32_t workers = (uint32_t)bench_param(r, "workers");
  bench_done_t done;
  if (bh_run_clients(r, n, workers, 1, 1, &done) != 0)
    return -1;
  if (bench_rate(r, &done, n) != 0)
    return -1;
  r->value = r->seconds * 1e6 / (double)n; /* us per round trip */
  return 0;
}

static int throughput_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  uint32_t workers = (uint32_t)bench_param(r, "workers");
  uint32_t clients = (uint32_t)bench_param(r, "clients");
  uint32_t window = (uint32_t)bench_param(r, "window");
  n -= n % clients;
  bench_done_t done;
  if (bh_run_clients(r, n, workers, clients, window, &done) != 0)
    return -1;
  return bench_rate(r, &done, n);
}

/* bw_call from the main thread, one job at a time. */
static int rtt_call_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  uint32_t workers = (uint32_t)bench_param(r, "workers");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_bulkhead_t *pool = NULL;
  int rc = pool_create(r, rt, workers, 0, &pool);
  uint64_t t0 = bench_now_ns(), t1 = t0, sum = 0;
  for (uint64_t seq = 1; rc == 0 && seq <= n; seq++) {
    bw_reply_t rep;
    int s = bw_bulkhead_submit(pool, BH_JOB, &seq, sizeof seq, r->timeout_ms, &rep);
    if (s != 0 || rep.len != sizeof seq) {
      rc = bench_fail(r, "job %" PRIu64 ": %s", seq, bw_strerror(s));
      break;
    }
    uint64_t got;
    memcpy(&got, rep.data, sizeof got);
    sum += got;
  }
  t1 = bench_now_ns();
  int64_t settle = rc == 0 ? pool_settle(r, pool, n) : -1;
  (void)bw_bulkhead_destroy(pool);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (rc != 0 || settle < 0 || fin != 0)
    return -1;
  if (sum != n * (n + 1) / 2)
    return bench_fail(r, "answers' sequence numbers do not add up");
  /* per job: request, job, done note, and the reply bw_call took */
  if (bench_check_stats(r, &st, 4 * n + 2 * (uint64_t)settle, 1 + workers) != 0)
    return -1;
  bench_done_t d = {.t0_ns = t0, .t1_ns = t1};
  if (bench_rate(r, &d, n) != 0)
    return -1;
  r->value = r->seconds * 1e6 / (double)n;
  return 0;
}

/* Tokens are plentiful (a rate of 10^9 per second, bursts of 10^9), so
 * every call takes the fast path and succeeds. */
static int ratelimit_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  static bw_ratelimit_t rl; /* static: a cache line of its own is not needed single-threaded */
  int rc = bw_ratelimit_init(&rl, rt, 1000000000ull, 1000, BW_RATELIMIT_MAX_BURST);
  uint64_t ok = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; rc == 0 && i < n; i++)
    ok += bw_ratelimit_try_acquire(&rl, NULL) == 0;
  uint64_t t1 = bench_now_ns();
  bw_ratelimit_stats_t st;
  if (rc == 0)
    rc = bw_ratelimit_stats(&rl, &st);
  int fin = bench_runtime_finish(r, rt, NULL);
  if (rc != 0 || fin != 0)
    return rc != 0 ? bench_fail(r, "ratelimit: %s", bw_strerror(rc)) : -1;
  if (ok != n || st.acquired != n || st.limited != 0)
    return bench_fail(r, "took %" PRIu64 " tokens of %" PRIu64, ok, n);
  bench_done_t d = {.t0_ns = t0, .t1_ns = t1};
  if (bench_rate(r, &d, n) != 0)
    return -1;
  r->value = (double)(t1 - t0) / (double)n; /* ns per call */
  return 0;
}

const bench_t bench_bulkhead_rtt = {
    .name = "bulkhead_rtt",
    .group = "patterns",
    .unit = "us",
    .higher_is_better = false,
    .summary = "client actor -> bulkhead pool -> worker -> client, one job at a time",
    .params = {{"n", 200000, 20000, 1, UINT64_C(1) << 32, "jobs"},
               {"workers", 4, 4, 1, BW_BULKHEAD_MAX_WORKERS, "pool workers"}},
    .run = rtt_run,
};

const bench_t bench_bulkhead_rtt_call = {
    .name = "bulkhead_rtt_call",
    .group = "patterns",
    .unit = "us",
    .higher_is_better = false,
    .summary = "bw_call from the main thread through a bulkhead pool, one job at a time",
    .params = {{"n", 100000, 10000, 1, UINT64_C(1) << 32, "jobs"},
               {"workers", 4, 4, 1, BW_BULKHEAD_MAX_WORKERS, "pool workers"}},
    .run = rtt_call_run,
};

const bench_t bench_bulkhead_throughput = {
    .name = "bulkhead_throughput",
    .group = "patterns",
    .unit = "jobs/s",
    .higher_is_better = true,
    .summary = "client actors keep a window of jobs in flight through a bulkhead pool",
    .params = {{"n", 1000000, 100000, 1, UINT64_C(1) << 32, "jobs in all"},
               {"workers", 4, 4, 1, BW_BULKHEAD_MAX_WORKERS, "pool workers"},
               {"clients", 4, 4, 1, BH_MAX_CLIENTS, "client actors"},
               {"window", 16, 16, 1, 1024, "jobs in flight per client"}},
    .run = throughput_run,
};

const bench_t bench_ratelimit_acquire = {
    .name = "ratelimit_acquire",
    .group = "patterns",
    .unit = "ns",
    .higher_is_better = false,
    .summary = "bw_ratelimit_try_acquire from one thread, tokens always available",
    .params = {{"n", 20000000, 1000000, 1, UINT64_C(1) << 40, "calls"}},
    .run = ratelimit_run,
};
