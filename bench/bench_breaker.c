/*
 * breaker_guard, breaker_guard_2t, breaker_open: what the circuit breaker's
 * guard costs a caller (include/bulwark/breaker.h).
 *
 * breaker_guard (1 thread) and breaker_guard_2t (2 threads at once): each
 * plain thread makes n calls of a small function directly, then n calls
 * through the guard (acquire, the call, report success) on a closed
 * breaker; the figure is the difference per call, in ns: the guard's
 * overhead. Both threads share one breaker, as callers of one dependency do.
 * breaker_open: ns per call refused by an open (forced-open) breaker.
 *
 * Checked before a figure is reported: every guarded call was admitted and
 * reported without error; after a flush the breaker counted exactly the
 * successes made (breaker_open: exactly the rejections), none through the
 * journal's message fallback, and the state never moved.
 *
 * The runtime's real clock only; nothing here touches the manual clock.
 */
#include "runner.h"

#include <bulwark/breaker.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The "dependency": a little integer work, never inlined, so both loops
 * pay for the same call. */
__attribute__((noinline)) static int bb_work(uint64_t *x)
{
  *x = *x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
  __asm__ volatile("" : : "r"(x) : "memory");
  return 0;
}

typedef struct bb_thread {
  bw_breaker_t *br;
  pthread_barrier_t *bar;
  uint64_t n;
  bool rejecting; /* breaker_open: every acquire must be refused */
  uint64_t direct_ns, guarded_ns;
  uint64_t admitted, errors, sink;
} bb_thread_t;

static void *bb_main(void *arg)
{
  bb_thread_t *t = arg;
  uint64_t x = (uint64_t)(uintptr_t)t;

  if (!t->rejecting) {
    pthread_barrier_wait(t->bar);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < t->n; i++)
      (void)bb_work(&x);
    t->direct_ns = bench_now_ns() - t0;
  }

  pthread_barrier_wait(t->bar);
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < t->n; i++) {
    bw_breaker_permit_t p;
    if (bw_breaker_acquire(t->br, &p) == 0) {
      t->admitted++;
      int st = bb_work(&x);
      if (bw_breaker_report(t->br, &p, st) != 0)
        t->errors++;
    }
  }
  t->guarded_ns = bench_now_ns() - t0;
  t->sink = x;
  return NULL;
}

static int bb_run(bench_run_t *r, unsigned nthreads, bool open)
{
  uint64_t n = bench_param(r, "n");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_breaker_opts_t o;
  bw_breaker_opts_init(&o);
  o.name = "bench";
  bw_breaker_t *br = NULL;
  int rc = bw_breaker_new(rt, &o, &br);
  if (rc == 0)
    rc = bw_breaker_start(br, NULL);
  if (rc == 0 && open) {
    rc = bw_breaker_force_open(br);
    if (rc == 0)
      rc = bw_breaker_flush(br, r->timeout_ms);
  }
  if (rc != 0) {
    bench_fail(r, "breaker setup: %s", bw_strerror(rc));
    bw_breaker_destroy(br);
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  int want = open ? BW_BREAKER_FORCED_OPEN : BW_BREAKER_CLOSED;

  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, nthreads);
  bb_thread_t th[2];
  pthread_t tid[2];
  memset(th, 0, sizeof th);
  unsigned started = 0;
  for (unsigned i = 0; i < nthreads; i++) {
    th[i].br = br;
    th[i].bar = &bar;
    th[i].n = n;
    th[i].rejecting = open;
    if (pthread_create(&tid[i], NULL, bb_main, &th[i]) != 0)
      break;
    started++;
  }
  if (started != nthreads) {
    /* the barrier would never open: a thread cannot be created here only
     * when the machine is out of resources; abandon the process's run */
    bench_fail(r, "pthread_create failed");
    abort();
  }
  for (unsigned i = 0; i < nthreads; i++)
    pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&bar);

  rc = bw_breaker_flush(br, r->timeout_ms);
  bw_breaker_stats_t m;
  bw_breaker_stats(br, &m);
  bw_breaker_destroy(br);
  if (bench_runtime_finish(r, rt, NULL) != 0)
    return -1;
  if (rc != 0)
    return bench_fail(r, "bw_breaker_flush: %s", bw_strerror(rc));

  uint64_t admitted = 0, errors = 0, total_ns = 0;
  for (unsigned i = 0; i < nthreads; i++) {
    admitted += th[i].admitted;
    errors += th[i].errors;
    total_ns += open ? th[i].guarded_ns
                     : (th[i].guarded_ns > th[i].direct_ns ? th[i].guarded_ns - th[i].direct_ns
                                                           : 0);
  }
  uint64_t calls = n * nthreads;
  if (m.state != want)
    return bench_fail(r, "state moved to %s", bw_breaker_state_name(m.state));
  if (errors != 0)
    return bench_fail(r, "%" PRIu64 " reports failed", errors);
  if (open) {
    if (admitted != 0 || m.rejected != calls)
      return bench_fail(r, "open: %" PRIu64 " admitted, %" PRIu64 " rejected of %" PRIu64,
                        admitted, m.rejected, calls);
  } else {
    if (admitted != calls || m.successful != calls || m.failed != 0)
      return bench_fail(r, "closed: %" PRIu64 " admitted, %" PRIu64 " counted of %" PRIu64,
                        admitted, m.successful, calls);
  }
  if (m.journal_fallbacks != 0)
    return bench_fail(r, "%" PRIu64 " reports fell back to messages", m.journal_fallbacks);

  /* the figure: mean per-thread overhead per call, in ns */
  r->seconds = (double)total_ns / nthreads / 1e9;
  r->work = calls;
  r->value = (double)total_ns / (double)calls;
  if (r->value <= 0)
    r->value = 0.001; /* below the clock's resolution: report the floor */
  return 0;
}

static int bb_guard_1(bench_run_t *r) { return bb_run(r, 1, false); }
static int bb_guard_2(bench_run_t *r) { return bb_run(r, 2, false); }
static int bb_open(bench_run_t *r) { return bb_run(r, 1, true); }

const bench_t bench_breaker_guard = {
    .name = "breaker_guard",
    .group = "patterns",
    .unit = "ns/call",
    .higher_is_better = false,
    .summary = "guard overhead per call (acquire + report) on a closed breaker, 1 thread",
    .params = {{"n", 20000000, 1000000, 1000, UINT64_C(1) << 36, "calls"}},
    .run = bb_guard_1,
};

const bench_t bench_breaker_guard_2t = {
    .name = "breaker_guard_2t",
    .group = "patterns",
    .unit = "ns/call",
    .higher_is_better = false,
    .summary = "guard overhead per call on a closed breaker, 2 threads sharing it",
    .params = {{"n", 20000000, 1000000, 1000, UINT64_C(1) << 36, "calls per thread"}},
    .run = bb_guard_2,
};

const bench_t bench_breaker_open = {
    .name = "breaker_open",
    .group = "patterns",
    .unit = "ns/call",
    .higher_is_better = false,
    .summary = "cost of a call refused by an open breaker, 1 thread",
    .params = {{"n", 20000000, 1000000, 1000, UINT64_C(1) << 36, "calls"}},
    .run = bb_open,
};
