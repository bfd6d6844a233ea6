/*
 * metrics: what the metrics reporter costs a hot path
 * (include/bulwark/metrics.h).
 *
 * metrics_counter    ns per bw_counter_add from one plain thread (the
 *                    calling thread's own cell: a load and a store).
 * metrics_counter_2t the same from 2 threads at once on one counter (each
 *                    has its own cell, so they never share a cache line).
 * metrics_histogram  ns per bw_histogram_record (bucket, sum, max) from one
 *                    thread, values spread over 5 decades.
 * metrics_overhead   % slower ping-pong with metrics on (a reporter
 *                    collecting every 10 ms, runtime metrics included, and
 *                    both handlers adding to a counter per message) than
 *                    off, measured in the same run: `rounds` off/on pairs,
 *                    interleaved, the best of each side compared (lower is
 *                    better; 0 when on came out faster, which noise
 *                    can make happen: the runner takes no negative figure).
 *
 * Checked before a figure is reported: after a collection the snapshot
 * holds exactly the updates made (counters: every add; histogram: count,
 * max), and every ball of every ping-pong arrived in order.

 */
#include "runner.h"

#include <bulwark/metrics.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Collects now and reads a counter; -1 on any failure. */
static double read_counter(bw_metrics_t *m, const char *name) {
  if (bw_metrics_collect(m, 10000) != 0)
    return -1;
  bw_metrics_snapshot_t *s;
  if (bw_metrics_latest(m, &s) != 0)
    return -1;
  double v = -1;
  if (bw_metrics_snapshot_value(s, name, NULL, 0, &v) != 0)
    v = -1;
  bw_metrics_snapshot_release(s);
  return v;
}

static int metrics_setup(bench_run_t *r, bw_runtime_t **rt, bw_metrics_t **m, uint64_t period_ms,
                         bool runtime_metrics) {
  if (bench_runtime_create(r, rt) != 0)
    return -1;
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  o.period_ms = period_ms;
  o.runtime_metrics = runtime_metrics;
  *m = NULL;
  int rc = bw_metrics_new(*rt, &o, m);
  if (rc == 0)
    rc = bw_metrics_start(*m, NULL);
  if (rc != 0) {
    bench_fail(r, "metrics setup: %s", bw_strerror(rc));
    bw_metrics_destroy(*m);
    bench_runtime_finish(r, *rt, NULL);
    return -1;
  }
  return 0;
}

static int metrics_teardown(bench_run_t *r, bw_runtime_t *rt, bw_metrics_t *m) {
  int rc = bw_metrics_destroy(m);
  int fin = bench_runtime_finish(r, rt, NULL);
  if (rc != 0)
    return bench_fail(r, "bw_metrics_destroy: %s", bw_strerror(rc));
  return fin;
}

/* --- counter ------------------------------------------------------------------ */

typedef struct ctr_arg {
  bw_counter_t *c;
  uint64_t n;
  pthread_barrier_t *start;
  uint64_t t0, t1;
} ctr_arg_t;

static void *ctr_loop(void *p) {
  ctr_arg_t *a = p;
  if (a->start != NULL)
    pthread_barrier_wait(a->start);
  a->t0 = bench_now_ns();
  for (uint64_t i = 0; i < a->n; i++)
    bw_counter_add(a->c, 1);
  a->t1 = bench_now_ns();
  return NULL;
}

static int counter_run_threads(bench_run_t *r, unsigned nthreads) {
  uint64_t n = bench_param(r, "n");
  bw_runtime_t *rt;
  bw_metrics_t *m;
  /* a long period: the measured loop competes with no collection */
  if (metrics_setup(r, &rt, &m, 3600000, false) != 0)
    return -1;
  bw_counter_t *c;
  int rc = bw_metrics_counter_new(m, "bench_ops_total", "Ops.", &c);
  if (rc != 0) {
    bench_fail(r, "counter_new: %s", bw_strerror(rc));
    metrics_teardown(r, rt, m);
    return -1;
  }
  ctr_arg_t a[2];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, nthreads);
  pthread_t th[2];
  for (unsigned i = 0; i < nthreads; i++) {
    a[i] = (ctr_arg_t){.c = c, .n = n, .start = nthreads > 1 ? &start : NULL};
    pthread_create(&th[i], NULL, ctr_loop, &a[i]);
  }
  for (unsigned i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);
  double got = read_counter(m, "bench_ops_total");
  if (metrics_teardown(r, rt, m) != 0)
    return -1;
  if (got != (double)(n * nthreads))
    return bench_fail(r, "counter holds %.0f, expected %" PRIu64, got, n * nthreads);
  /* each thread's own time per update; the slowest thread's figure */
  double worst = 0;
  for (unsigned i = 0; i < nthreads; i++) {
    double ns = (double)(a[i].t1 - a[i].t0) / (double)n;
    if (ns > worst)
      worst = ns;
  }
  r->value = worst;
  r->work = n * nthreads;
  r->seconds = (double)(a[0].t1 - a[0].t0) / 1e9;
  return 0;
}

static int counter_run(bench_run_t *r) { return counter_run_threads(r, 1); }
static int counter_2t_run(bench_run_t *r) { return counter_run_threads(r, 2); }

const bench_t bench_metrics_counter = {
    .name = "metrics_counter",
    .group = "patterns",
    .unit = "ns/update",
    .higher_is_better = false,
    .summary = "ns per bw_counter_add from one thread (its own cell)",
    .params = {{"n", 100000000, 10000000, 1, UINT64_C(1) << 40, "updates"}},
    .run = counter_run,
};

const bench_t bench_metrics_counter_2t = {
    .name = "metrics_counter_2t",
    .group = "patterns",
    .unit = "ns/update",
    .higher_is_better = false,
    .summary = "ns per bw_counter_add, 2 threads on one counter (the slower thread)",
    .params = {{"n", 100000000, 10000000, 1, UINT64_C(1) << 40, "updates per thread"}},
    .run = counter_2t_run,
};

/* --- histogram ------------------------------------------------------------------ */

static int histogram_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  bw_runtime_t *rt;
  bw_metrics_t *m;
  if (metrics_setup(r, &rt, &m, 3600000, false) != 0)
    return -1;
  bw_histogram_t *h;
  int rc = bw_metrics_histogram_new(m, "bench_op_seconds", "Op latency.", &h);
  if (rc != 0) {
    bench_fail(r, "histogram_new: %s", bw_strerror(rc));
    metrics_teardown(r, rt, m);
    return -1;
  }
  /* values from a precomputed table (1 us .. 100 ms, log-spread), so the
   * loop measures the record, not a random number generator */
  enum { TABLE = 1024 };
  static uint64_t vals[TABLE];
  uint64_t seed = 42, max = 0;
  for (int i = 0; i < TABLE; i++) {
    uint64_t x = bench_rand(&seed);
    vals[i] = (uint64_t)1000 << (x % 17);
    vals[i] += (x >> 32) % vals[i];
    if (vals[i] > max)
      max = vals[i];
  }
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++)
    bw_histogram_record(h, vals[i & (TABLE - 1)]);
  uint64_t t1 = bench_now_ns();
  int check = -1;
  bw_histogram_summary_t hs;
  bw_metrics_snapshot_t *s;
  if (bw_metrics_collect(m, 10000) == 0 && bw_metrics_latest(m, &s) == 0) {
    check = bw_metrics_snapshot_histogram(s, "bench_op_seconds", NULL, 0, &hs);
    bw_metrics_snapshot_release(s);
  }
  if (metrics_teardown(r, rt, m) != 0)
    return -1;
  if (check != 0 || hs.count != n || (n >= TABLE && hs.max_ns != max))
    return bench_fail(r, "histogram holds count %" PRIu64 " max %" PRIu64
                         ", expected %" PRIu64 " and %" PRIu64,
                      hs.count, hs.max_ns, n, max);
  r->value = (double)(t1 - t0) / (double)n;
  r->work = n;
  r->seconds = (double)(t1 - t0) / 1e9;
  return 0;
}

const bench_t bench_metrics_histogram = {
    .name = "metrics_histogram",
    .group = "patterns",
    .unit = "ns/record",
    .higher_is_better = false,
    .summary = "ns per bw_histogram_record from one thread",
    .params = {{"n", 50000000, 5000000, 1, UINT64_C(1) << 40, "records"}},
    .run = histogram_run,
};

/* --- ping-pong with metrics on and off --------------------------------------------- */

enum {
  MP_BALL = BENCH_MSG_USER, /* payload: uint64_t ball number, 1..n */
  MP_DONE,                  /* b -> a; payload: bench_note_t */
};

typedef struct mp_arg {
  uint64_t n;
  int side;          /* 0: a, the coordinator; 1: b */
  bw_pid_t peer;     /* a only: b's pid */
  bw_counter_t *ctr; /* NULL: metrics off */
} mp_arg_t;

typedef struct mp_state {
  mp_arg_t a;
  uint64_t expect;
  bench_waiter_t waiter;
} mp_state_t;

static int mp_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  mp_state_t *s = state;
  s->a = *(const mp_arg_t *)arg;
  s->expect = s->a.side == 0 ? 2 : 1;
  return 0;
}

static void mp_finish(bw_ctx_t *ctx, mp_state_t *s, const char *err) {
  if (s->a.side == 0) {
    if (err)
      bench_waiter_fail(&s->waiter, ctx, "%s", err);
    else
      bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
    return;
  }
  if (err)
    bench_note(ctx, s->a.peer, MP_DONE, "%s", err);
  else
    bench_note(ctx, s->a.peer, MP_DONE, NULL);
}

static int mp_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  mp_state_t *s = state;
  if (s->a.ctr != NULL)
    bw_counter_add(s->a.ctr, 1); /* the hot-path update this bench prices */
  switch (msg->type) {
  case BENCH_MSG_GO: {
    if (s->a.side != 0 || bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    uint64_t ball = 1;
    if (bw_send(bw_ctx_runtime(ctx), s->a.peer, MP_BALL, &ball, sizeof ball) != 0)
      bench_waiter_fail(&s->waiter, ctx, "bw_send failed");
    return BW_CONTINUE;
  }
  case MP_BALL: {
    uint64_t ball;
    if (msg->len != sizeof ball) {
      mp_finish(ctx, s, "bad ball");
      return BW_CONTINUE;
    }
    memcpy(&ball, msg->data, sizeof ball);
    if (s->a.side == 1)
      s->a.peer = msg->from;
    if (ball != s->expect) {
      mp_finish(ctx, s, "ball out of order");
      return BW_CONTINUE;
    }
    s->expect += 2;
    if (ball == s->a.n) {
      mp_finish(ctx, s, NULL);
      return BW_CONTINUE;
    }
    ball++;
    if (bw_send(bw_ctx_runtime(ctx), s->a.peer, MP_BALL, &ball, sizeof ball) != 0)
      mp_finish(ctx, s, "bw_send failed");
    return BW_CONTINUE;
  }
  case MP_DONE:
    if (s->a.side != 0)
      return BW_EINVAL;
    return bench_waiter_note(&s->waiter, ctx, msg) == 0 ? BW_CONTINUE : BW_EINVAL;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t mp_behaviour = {
    .name = "bench.metrics_pingpong",
    .state_size = sizeof(mp_state_t),
    .init = mp_init,
    .handle = mp_handle,
};

/* reporter=0: an actor that does nothing on a timer of the same period,
 * instead of the reporter: what any periodic actor costs the ping-pong. */
static int tick_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return BW_CONTINUE;
}

static const bw_behaviour_t tick_behaviour = {.name = "bench.tick", .handle = tick_handle};

static int start_ticker(bench_run_t *r, bw_runtime_t *rt) {
  bw_pid_t t;
  int rc = bw_spawn(rt, &tick_behaviour, NULL, NULL, &t);
  if (rc == 0)
    rc = bw_send_interval(rt, t, bench_param(r, "period_ms"), MP_DONE + 1, NULL, 0, NULL);
  return rc == 0 ? 0 : bench_fail(r, "ticker: %s", bw_strerror(rc));
}

/* One ping-pong of n balls; *secs = its measured span. With metrics on, a
 * reporter collects every 10 ms throughout and the counter must hold
 * exactly one update per message handled (n balls + GO + DONE). */
static int mp_once(bench_run_t *r, uint64_t n, bool on, double *secs) {
  bw_runtime_t *rt;
  bw_metrics_t *m = NULL;
  bw_counter_t *ctr = NULL;
  bool reporter = bench_param(r, "reporter") != 0;
  if (on && !reporter) {
    if (bench_runtime_create(r, &rt) != 0)
      return -1;
    if (start_ticker(r, rt) != 0) {
      bench_runtime_finish(r, rt, NULL);
      return -1;
    }
    on = false; /* no registry: only the ticker runs */
  } else if (on) {
    if (metrics_setup(r, &rt, &m, bench_param(r, "period_ms"), true) != 0)
      return -1;
    int rc = bw_metrics_counter_new(m, "bench_messages_total", "Messages.", &ctr);
    if (rc != 0) {
      bench_fail(r, "counter_new: %s", bw_strerror(rc));
      metrics_teardown(r, rt, m);
      return -1;
    }
  } else if (bench_runtime_create(r, &rt) != 0) {
    return -1;
  }
  if (bench_param(r, "count") == 0)
    ctr = NULL; /* the reporter alone, to tell the two costs apart */
  mp_arg_t args[2] = {{n, 0, BW_PID_NONE, ctr}, {n, 1, BW_PID_NONE, ctr}};
  bw_pid_t a = BW_PID_NONE, b = BW_PID_NONE;
  int rc = bw_spawn(rt, &mp_behaviour, &args[1], NULL, &b);
  if (rc == 0) {
    args[0].peer = b;
    rc = bw_spawn(rt, &mp_behaviour, &args[0], NULL, &a);
  }
  bench_done_t done;
  int go = rc == 0 ? bench_go(r, rt, a, NULL, 0, &done) : -1;
  if (rc != 0)
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
  double count = on && go == 0 ? read_counter(m, "bench_messages_total") : 0;
  int fin = on ? metrics_teardown(r, rt, m) : bench_runtime_finish(r, rt, NULL);
  if (go != 0 || fin != 0)
    return -1;
  /* n balls, GO, and DONE when the last ball ends at b */
  double want = (double)n + 1 + (n % 2 == 1 ? 1 : 0);
  if (on && ctr != NULL && count != want)
    return bench_fail(r, "counter holds %.0f, expected %.0f", count, want);
  *secs = (double)(done.t1_ns - done.t0_ns) / 1e9;
  return *secs > 0 ? 0 : bench_fail(r, "empty span");
}

static int overhead_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  uint64_t rounds = bench_param(r, "rounds");
  double best_off = 0, best_on = 0, total = 0;
  for (uint64_t i = 0; i < rounds; i++) {
    double off, on;
    /* alternate which goes first, so drift in the machine's state
     * (frequency, other load) does not favour one side */
    bool on_first = i % 2 == 1;
    if (mp_once(r, n, on_first, on_first ? &on : &off) != 0 ||
        mp_once(r, n, !on_first, on_first ? &off : &on) != 0)
      return -1;
    if (best_off == 0 || off < best_off)
      best_off = off;
    if (best_on == 0 || on < best_on)
      best_on = on;
    total += off + on;
  }
  /* The runner takes no negative figure; when on came out faster (noise:
   * the two sides are within the machine's run-to-run spread) the figure
   * is 0, "no overhead measured". Clamping commutes with the median, so
   * the reported median is unbiased. */
  double pct = (best_on / best_off - 1.0) * 100.0;
  r->value = pct > 0 ? pct : 0;
  r->work = 2 * n * rounds;
  r->seconds = total;
  return 0;
}

const bench_t bench_metrics_overhead = {
    .name = "metrics_overhead",
    .group = "patterns",
    .unit = "% slower",
    .higher_is_better = false,
    .summary = "ping-pong with a reporter (10 ms) and a counter per message vs without",
    .params = {{"n", 1000000, 100000, 2, UINT64_C(1) << 40, "balls per ping-pong"},
               {"rounds", 3, 2, 1, 100, "off/on pairs (best of each compared)"},
               {"period_ms", 10, 10, 1, 86400000, "the reporter's collection period"},
               {"count", 1, 1, 0, 1, "1: a counter update per message; 0: none"},
               {"reporter", 1, 1, 0, 1, "1: the reporter; 0: a no-op actor on the same timer"}},
    .run = overhead_run,
};
