/*
 * Tests of patterns/breaker.c and patterns/window.c: every transition with
 * each way of tripping (consecutive failures, count-based rate, time-based
 * rate with bucket expiry, slow-call rate), minimum calls, ignored outcomes,
 * open backoff with jitter, half-open max wait, the manual states, exactly N
 * half-open admissions under two hammering threads, the journal (fallback,
 * exact counts under concurrency), proxy mode, events, restart under a
 * supervisor, and bad configurations.
 *
 * Everything runs on the manual clock. The breaker's actor judges outcomes
 * when it takes them from the journal, so tests call bw_breaker_flush (a
 * bw_call the actor answers after catching up) before they assert or move
 * the clock; after bw_clock_advance a flush also queues behind the timer
 * messages that fired.
 */
#include "support.h"

#include <math.h>

#include "bulwark/breaker.h"
#include "patterns/window.h"

#define FLUSH(br) assert_int_equal(bw_breaker_flush((br), 0), 0)

static bw_breaker_opts_t consecutive_opts(uint32_t threshold) {
  bw_breaker_opts_t o;
  bw_breaker_opts_init(&o);
  o.name = "test";
  o.window = BW_BREAKER_WINDOW_NONE;
  o.failure_threshold = threshold;
  o.open_ms = 1000;
  o.success_threshold = 2;
  o.half_open_permits = 3;
  return o;
}

static bw_breaker_t *mk(bw_runtime_t *rt, const bw_breaker_opts_t *o) {
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, o, &br), 0);
  assert_non_null(br);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  return br;
}

/* One guarded call with this status; the guard must admit it. */
static void call(bw_breaker_t *br, int status) {
  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report(br, &p, status), 0);
}

static void calls(bw_breaker_t *br, int status, int n) {
  for (int i = 0; i < n; i++)
    call(br, status);
}

static void expect_state(bw_breaker_t *br, int st) {
  FLUSH(br);
  assert_string_equal(bw_breaker_state_name((int)bw_breaker_state(br)), bw_breaker_state_name(st));
}

static bw_breaker_stats_t stats(bw_breaker_t *br) {
  bw_breaker_stats_t m;
  assert_int_equal(bw_breaker_stats(br, &m), 0);
  return m;
}

static void teardown(bw_runtime_t *rt, bw_breaker_t *br) {
  assert_int_equal(bw_breaker_destroy(br), 0);
  bw_runtime_destroy(rt);
}

/* --- the windows themselves ---------------------------------------------------- */

static void test_window_count(void **state) {
  (void)state;
  bw__window_t w;
  bw__window_totals_t t;
  assert_int_equal(bw__window_init(&w, BW__WIN_COUNT, 0, 0), BW_EINVAL);
  assert_int_equal(bw__window_init(&w, 99, 4, 0), BW_EINVAL);
  assert_int_equal(bw__window_init(&w, BW__WIN_COUNT, 4, 0), 0);
  bw__window_add(&w, 0, true, false, 3);
  bw__window_add(&w, 0, false, true, 1);
  bw__window_totals(&w, 0, &t);
  assert_int_equal(t.calls, 4);
  assert_int_equal(t.failures, 3);
  assert_int_equal(t.slow, 1);
  /* the oldest calls slide out */
  bw__window_add(&w, 0, false, false, 2);
  bw__window_totals(&w, 0, &t);
  assert_int_equal(t.calls, 4);
  assert_int_equal(t.failures, 1);
  assert_int_equal(t.slow, 1);
  /* more than the window at once keeps only the window's worth */
  bw__window_add(&w, 0, true, true, 1000);
  bw__window_totals(&w, 0, &t);
  assert_int_equal(t.calls, 4);
  assert_int_equal(t.failures, 4);
  assert_int_equal(t.slow, 4);
  bw__window_reset(&w);
  bw__window_totals(&w, 0, &t);
  assert_int_equal(t.calls, 0);
  bw__window_free(&w);
  bw__window_free(&w);
}

static void test_window_time_buckets_expire(void **state) {
  (void)state;
  bw__window_t w;
  bw__window_totals_t t;
  assert_int_equal(bw__window_init(&w, BW__WIN_TIME, 4, 0), BW_EINVAL);
  /* 4 buckets of 250 ms: a 1 s window */
  assert_int_equal(bw__window_init(&w, BW__WIN_TIME, 4, 250), 0);
  bw__window_add(&w, 0, true, false, 2);     /* bucket 0 */
  bw__window_add(&w, 300, false, false, 3);  /* bucket 1 */
  bw__window_add(&w, 999, false, true, 1);   /* bucket 3 */
  bw__window_totals(&w, 999, &t);
  assert_int_equal(t.calls, 6);
  assert_int_equal(t.failures, 2);
  bw__window_totals(&w, 1000, &t); /* bucket 0 has left */
  assert_int_equal(t.calls, 4);
  assert_int_equal(t.failures, 0);
  assert_int_equal(t.slow, 1);
  bw__window_totals(&w, 1250, &t); /* bucket 1 too */
  assert_int_equal(t.calls, 1);
  bw__window_totals(&w, 10000, &t); /* everything */
  assert_int_equal(t.calls, 0);
  assert_int_equal(t.slow, 0);
  bw__window_add(&w, 10000, true, false, 1);
  bw__window_totals(&w, 10000, &t);
  assert_int_equal(t.calls, 1);
  bw__window_free(&w);
}

/* --- configuration ------------------------------------------------------------------ */

static void test_defaults(void **state) {
  (void)state;
  bw_breaker_opts_t o;
  bw_breaker_opts_init(&o);
  assert_int_equal(o.failure_threshold, 5);
  assert_int_equal(o.success_threshold, 3);
  assert_int_equal(o.half_open_permits, 3);
  assert_int_equal(o.open_ms, 60000);
  assert_int_equal(o.window, BW_BREAKER_WINDOW_TIME);
  assert_int_equal(o.window_size, 60);
  assert_int_equal(o.report_flush_ms, BW_BREAKER_REPORT_FLUSH_MS);
  assert_int_equal(o.half_open_max_ms, BW_BREAKER_HALF_OPEN_MAX_MS);
  assert_int_equal(bw_breaker_opts_validate(&o), 0);

  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, NULL, &br), 0); /* NULL opts: defaults */
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  assert_string_equal(bw_breaker_name(br), "breaker");
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_CLOSED);
  calls(br, -1, 4);
  expect_state(br, BW_BREAKER_CLOSED);
  call(br, -1); /* the 5th in a row */
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_breaker_retry_after_ms(br), 60000);
  teardown(rt, br);
}

static void test_bad_configs(void **state) {
  (void)state;
  bw_breaker_opts_t o;
#define BAD(stmt)                                                                        \
  do {                                                                                   \
    bw_breaker_opts_init(&o);                                                            \
    stmt;                                                                                \
    assert_int_equal(bw_breaker_opts_validate(&o), BW_EINVAL);                           \
  } while (0)
  BAD(o.window_size = 0);                                     /* zero window */
  BAD((o.window = BW_BREAKER_WINDOW_COUNT, o.window_size = 0));
  BAD(o.window = (bw_breaker_window_t)7);                     /* unknown window */
  BAD(o.failure_rate_pct = 0.0);                              /* rate outside (0,100] */
  BAD(o.failure_rate_pct = -5.0);
  BAD(o.failure_rate_pct = 100.5);
  BAD(o.failure_rate_pct = NAN);
  BAD((o.slow_call_ms = 100, o.slow_rate_pct = 0.0));
  BAD((o.slow_call_ms = 100, o.slow_rate_pct = 101.0));
  BAD(o.minimum_calls = 0);                                   /* zero minimum calls */
  BAD((o.window = BW_BREAKER_WINDOW_COUNT, o.window_size = 10, o.minimum_calls = 11));
  BAD(o.bucket_ms = 0);                                       /* zero bucket */
  BAD(o.bucket_ms = 7000);                                    /* does not divide 60 s */
  BAD(o.bucket_ms = 61000);                                   /* wider than the window */
  BAD((o.window = BW_BREAKER_WINDOW_NONE, o.failure_threshold = 0)); /* cannot trip */
  BAD(o.half_open_permits = 0);                               /* no half-open permit */
  BAD(o.success_threshold = 0);
  BAD((o.success_threshold = 4, o.half_open_permits = 3));   /* could never close */
  BAD(o.open_ms = 0);                                         /* zero open wait */
  BAD(o.open_ms = 365ull * 24 * 3600 * 1000);                 /* absurd */
  BAD(o.open_multiplier = 0);
  BAD(o.open_multiplier = 1001);
  BAD(o.jitter_pct = 101);
  BAD((o.open_ms = 1000, o.open_max_ms = 999));               /* cap below the base */
  BAD(o.name = "a name that is far too long for a breaker's name field");
  BAD((o.target = 12345, o.target_name = "svc"));             /* both targets */
  BAD(o.target_name = "");
  BAD(o.max_inflight = 0);
  BAD(o.max_inflight = 100000);
  BAD(o.journal_size = 100);                                  /* not a power of two */
  BAD(o.journal_size = 8);
  BAD(o.journal_size = 1u << 17);
  BAD(o.report_flush_ms = 60001);                              /* a minute at most */
#undef BAD
  assert_int_equal(bw_breaker_opts_validate(NULL), BW_EINVAL);

  /* new refuses them too, and leaves *out alone */
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_breaker_t *br = (bw_breaker_t *)(uintptr_t)0x1;
  bw_breaker_opts_init(&o);
  o.open_ms = 0;
  assert_int_equal(bw_breaker_new(rt, &o, &br), BW_EINVAL);
  assert_true(br == (bw_breaker_t *)(uintptr_t)0x1);
  bw_breaker_opts_init(&o);
  assert_int_equal(bw_breaker_new(NULL, &o, &br), BW_EINVAL);
  assert_int_equal(bw_breaker_new(rt, &o, NULL), BW_EINVAL);
  bw_runtime_destroy(rt);
}

static void test_bad_input_and_after_stop(void **state) {
  (void)state;
  bw_breaker_permit_t p;
  bw_breaker_stats_t m;
  bw_child_spec_t cs;
  assert_int_equal(bw_breaker_acquire(NULL, &p), BW_EINVAL);
  assert_int_equal(bw_breaker_report(NULL, &p, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_report_ns(NULL, &p, 0, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_reset(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_force_open(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_disable(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_metrics_only(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_flush(NULL, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_stats(NULL, &m), BW_EINVAL);
  assert_int_equal(bw_breaker_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_child_spec(NULL, "x", &cs), BW_EINVAL);
  assert_int_equal(bw_breaker_destroy(NULL), 0);
  assert_int_equal(bw_breaker_pid(NULL), BW_PID_NONE);
  assert_int_equal(bw_breaker_retry_after_ms(NULL), 0);
  assert_string_equal(bw_breaker_state_name(42), "unknown");

  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(2);
  bw_breaker_t *br = mk(rt, &o);
  assert_int_equal(bw_breaker_acquire(br, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_report(br, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_stats(br, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_child_spec(br, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_breaker_child_spec(br, "x", NULL), BW_EINVAL);
  /* a second actor for the same handle is refused */
  assert_int_equal(bw_breaker_start(br, NULL), BW_EALREADY);
  /* stop and start again: the handle keeps its state and counters */
  call(br, -1);
  FLUSH(br);
  bw_pid_t first = bw_breaker_pid(br);
  assert_int_equal(bw_breaker_stop(br), 0);
  assert_int_equal(bw_breaker_pid(br), BW_PID_NONE);
  assert_false(bw_is_alive(rt, first));
  assert_int_equal(bw_breaker_stop(br), 0); /* nothing runs: nothing to do */
  bw_pid_t second = BW_PID_NONE;
  assert_int_equal(bw_breaker_start(br, &second), 0);
  assert_int_equal(second, bw_breaker_pid(br));
  assert_int_not_equal(second, first);
  assert_int_equal(stats(br).failed, 1);

  assert_int_equal(bw_runtime_stop(rt), 0);
  /* after the stop: control fails cleanly, the guard still answers from the
   * published state and reports fail with a code, nothing crashes */
  assert_int_equal(bw_breaker_reset(br), BW_ENOPROC);
  assert_int_equal(bw_breaker_flush(br, 0), BW_ENOPROC);
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  int rc = bw_breaker_report(br, &p, 0); /* queued in the journal, no actor to wake */
  assert_true(rc == 0 || rc == BW_ENOPROC || rc == BW_ESHUTDOWN);
  assert_int_equal(bw_breaker_stats(br, &m), 0);
  teardown(rt, br);
}

/* --- tripping and recovering ------------------------------------------------------ */

static void test_consecutive_full_cycle(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(3);
  bw_breaker_t *br = mk(rt, &o);

  /* closed: a success resets the run of failures */
  calls(br, -1, 2);
  call(br, 0);
  calls(br, -1, 2);
  expect_state(br, BW_BREAKER_CLOSED);
  call(br, -1); /* third in a row */
  expect_state(br, BW_BREAKER_OPEN);

  /* open: rejected until the wait is over */
  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), BW_ECIRCUIT_OPEN);
  assert_int_equal(bw_breaker_retry_after_ms(br), 1000);
  assert_int_equal(bw_clock_advance(rt, 999), 0);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_breaker_retry_after_ms(br), 1);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(stats(br).half_open_permits_left, 3);

  /* half-open: a failure reopens */
  call(br, -1);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);

  /* half-open: success_threshold successes close */
  call(br, 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  call(br, 0);
  expect_state(br, BW_BREAKER_CLOSED);

  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.failed, 6);
  assert_int_equal(m.successful, 3);
  assert_int_equal(m.rejected, 1);
  assert_int_equal(m.not_permitted, 0);
  assert_int_equal(m.opens, 2);
  assert_int_equal(m.transitions, 5);
  teardown(rt, br);
}

static void test_half_open_permits_exhausted(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1);
  bw_breaker_t *br = mk(rt, &o);
  call(br, -1);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  bw_breaker_permit_t p[4];
  for (int i = 0; i < 3; i++)
    assert_int_equal(bw_breaker_acquire(br, &p[i]), 0);
  assert_int_equal(bw_breaker_acquire(br, &p[3]), BW_ECIRCUIT_OPEN);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.rejected, 1);
  assert_int_equal(m.not_permitted, 1);
  assert_int_equal(m.half_open_permits_left, 0);
  assert_int_equal(bw_breaker_report(br, &p[0], 0), 0);
  assert_int_equal(bw_breaker_report(br, &p[1], 0), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  /* the third permit's report arrives after the close: counted, not judged */
  assert_int_equal(bw_breaker_report(br, &p[2], -1), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  assert_int_equal(stats(br).failed, 2);
  teardown(rt, br);
}

static void test_stale_permit_not_judged(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(2);
  bw_breaker_t *br = mk(rt, &o);
  bw_breaker_permit_t old;
  assert_int_equal(bw_breaker_acquire(br, &old), 0); /* granted while closed */
  calls(br, -1, 2);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  /* a failure of a call let through while closed must not reopen */
  assert_int_equal(bw_breaker_report(br, &old, -1), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(stats(br).failed, 3);
  teardown(rt, br);
}

static void test_count_window_rate(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(0); /* rates only */
  o.window = BW_BREAKER_WINDOW_COUNT;
  o.window_size = 4;
  o.minimum_calls = 4;
  o.failure_rate_pct = 50.0;
  bw_breaker_t *br = mk(rt, &o);

  /* minimum calls: three failures out of three calls do not trip */
  calls(br, -1, 3);
  expect_state(br, BW_BREAKER_CLOSED);
  assert_true(stats(br).failure_rate < 0);
  assert_int_equal(stats(br).window_calls, 3);
  call(br, 0); /* F F F S: 4 calls, 75 % */
  expect_state(br, BW_BREAKER_OPEN);

  /* half-open, then closed: the window starts empty */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  calls(br, 0, 2);
  expect_state(br, BW_BREAKER_CLOSED);
  assert_int_equal(stats(br).window_calls, 0);

  /* the window slides: only the last 4 calls count */
  calls(br, -1, 1);
  calls(br, 0, 4); /* F S S S S -> S S S S */
  expect_state(br, BW_BREAKER_CLOSED);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.window_calls, 4);
  assert_true(m.failure_rate == 0.0);
  call(br, -1); /* S S S F: 25 % */
  expect_state(br, BW_BREAKER_CLOSED);
  assert_true(stats(br).failure_rate == 25.0);
  call(br, -1); /* S S F F: 50 % */
  expect_state(br, BW_BREAKER_OPEN);
  teardown(rt, br);
}

static void test_time_window_rate_and_expiry(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(0);
  o.window = BW_BREAKER_WINDOW_TIME;
  o.window_size = 10; /* seconds */
  o.bucket_ms = 2000;
  o.minimum_calls = 4;
  o.failure_rate_pct = 50.0;
  bw_breaker_t *br = mk(rt, &o);

  calls(br, -1, 3); /* bucket [0, 2 s) */
  expect_state(br, BW_BREAKER_CLOSED);
  assert_int_equal(stats(br).window_calls, 3);
  /* 10 s later those failures have left the window */
  assert_int_equal(bw_clock_advance(rt, 10000), 0);
  call(br, -1);
  expect_state(br, BW_BREAKER_CLOSED); /* one call in the window */
  assert_int_equal(stats(br).window_calls, 1);
  calls(br, 0, 3);
  expect_state(br, BW_BREAKER_CLOSED); /* 1 of 4: 25 % */
  assert_true(stats(br).failure_rate == 25.0);
  /* a bucket later, still inside: 2 of 5 = 40 % */
  assert_int_equal(bw_clock_advance(rt, 2000), 0);
  call(br, -1);
  expect_state(br, BW_BREAKER_CLOSED);
  assert_true(stats(br).failure_rate == 40.0);
  /* the first bucket (1 F, 3 S) expires at 20 s: what is left is 1 F,
   * below the minimum; two more failures: 3 of 3 */
  assert_int_equal(bw_clock_advance(rt, 8000), 0);
  FLUSH(br);
  assert_int_equal(stats(br).window_calls, 1);
  call(br, -1);
  call(br, -1);
  expect_state(br, BW_BREAKER_CLOSED); /* 3 calls: below the minimum */
  call(br, 0);                          /* 3 of 4 */
  expect_state(br, BW_BREAKER_OPEN);
  teardown(rt, br);
}

static void test_slow_call_rate(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(0);
  o.window = BW_BREAKER_WINDOW_COUNT;
  o.window_size = 4;
  o.minimum_calls = 4;
  o.failure_rate_pct = 100.0;
  o.slow_call_ms = 100;
  o.slow_rate_pct = 50.0;
  bw_breaker_t *br = mk(rt, &o);
  bw_breaker_permit_t p;

  /* durations measured by the caller */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(bw_breaker_acquire(br, &p), 0);
    assert_int_equal(bw_breaker_report_ns(br, &p, 0, 100u * 1000000u), 0); /* not longer */
  }
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report_ns(br, &p, 0, 101u * 1000000u), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  /* measured by the breaker on the runtime's clock: 150 ms */
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_clock_advance(rt, 150), 0);
  assert_int_equal(bw_breaker_report(br, &p, 0), 0);
  expect_state(br, BW_BREAKER_OPEN); /* 2 slow of 4 */
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.slow, 2);
  assert_int_equal(m.successful, 4);
  assert_int_equal(m.failed, 0);

  /* half-open: a slow success counts as a failure */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report_ns(br, &p, 0, 500u * 1000000u), 0);
  expect_state(br, BW_BREAKER_OPEN);
  teardown(rt, br);
}

static int classify_ignore_100(int status, void *arg) {
  (void)arg;
  if (status == -100)
    return BW_BREAKER_IGNORED;
  return status == 0 || status == -200 ? BW_BREAKER_SUCCESS : BW_BREAKER_FAILURE;
}

static void test_ignored_outcomes(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(2);
  o.window = BW_BREAKER_WINDOW_COUNT;
  o.window_size = 10;
  o.minimum_calls = 10;
  o.classify = classify_ignore_100;
  bw_breaker_t *br = mk(rt, &o);
  /* ignored outcomes neither reset the run of failures nor fill the window */
  call(br, -1);
  calls(br, -100, 5);
  call(br, -200); /* classified a success: resets the run */
  call(br, -1);
  calls(br, -100, 3);
  expect_state(br, BW_BREAKER_CLOSED);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.ignored, 8);
  assert_int_equal(m.window_calls, 3);
  assert_int_equal(m.successful, 1);
  call(br, -1);
  expect_state(br, BW_BREAKER_OPEN);

  /* half-open: an ignored call gives its permit back */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  calls(br, -100, 3);
  FLUSH(br);
  assert_int_equal(stats(br).half_open_permits_left, 3);
  calls(br, 0, 2);
  expect_state(br, BW_BREAKER_CLOSED);
  teardown(rt, br);
}

/* Trips the breaker from half-open (or closed) with one failing call. */
static void fail_once(bw_breaker_t *br) {
  call(br, -1);
  FLUSH(br);
}

static void test_backoff_with_jitter(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1);
  o.open_ms = 1000;
  o.open_multiplier = 2;
  o.open_max_ms = 5000;
  o.jitter_pct = 20;
  o.seed = 42;
  bw_breaker_t *br = mk(rt, &o);
  const uint64_t base[] = {1000, 2000, 4000, 5000, 5000, 5000};
  bool shortened = false;
  for (int round = 0; round < 3; round++) {
    fail_once(br); /* closed -> open */
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
      assert_int_equal(bw_breaker_state(br), BW_BREAKER_OPEN);
      uint64_t wait = bw_breaker_retry_after_ms(br);
      assert_true(wait <= base[i]);
      assert_true(wait >= base[i] - base[i] / 5);
      shortened |= wait != base[i];
      assert_int_equal(bw_clock_advance(rt, wait - 1), 0);
      expect_state(br, BW_BREAKER_OPEN);
      assert_int_equal(bw_clock_advance(rt, 1), 0);
      expect_state(br, BW_BREAKER_HALF_OPEN);
      if (i + 1 < sizeof base / sizeof base[0])
        fail_once(br); /* reopen: the next wait grows */
    }
    /* close: the backoff starts over */
    calls(br, 0, 2);
    expect_state(br, BW_BREAKER_CLOSED);
  }
  assert_true(shortened); /* the jitter did something */
  teardown(rt, br);
}

static void test_half_open_max_wait(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1);
  o.half_open_max_ms = 500;
  bw_breaker_t *br = mk(rt, &o);
  fail_once(br);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), 0); /* a call that never reports */
  assert_int_equal(bw_clock_advance(rt, 499), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(stats(br).opens, 2);
  /* and the next half-open works normally */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  calls(br, 0, 2);
  expect_state(br, BW_BREAKER_CLOSED);
  /* the cancelled max-wait timer of that half-open does not fire later */
  assert_int_equal(bw_clock_advance(rt, 5000), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  teardown(rt, br);
}

/* The default maximum wait: a half-open with no traffic at all goes back
 * to open (it stayed half-open for good when the default was 0), then
 * half-open again after the open wait, and closes on traffic. */
static void test_half_open_default_max_wait(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1); /* half_open_max_ms left at its default */
  bw_breaker_t *br = mk(rt, &o);
  fail_once(br);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_clock_advance(rt, BW_BREAKER_HALF_OPEN_MAX_MS - 1), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(stats(br).half_open_permits_left, 3); /* nobody came */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(stats(br).opens, 2);
  assert_int_equal(bw_breaker_retry_after_ms(br), 1000);
  /* an idle breaker keeps probing: open, half-open, open ... */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_clock_advance(rt, BW_BREAKER_HALF_OPEN_MAX_MS), 0);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(stats(br).opens, 3);
  /* traffic in the next half-open closes it */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  calls(br, 0, 2);
  expect_state(br, BW_BREAKER_CLOSED);
  teardown(rt, br);

  /* 0: the old behaviour on request, half-open for good */
  rt = bwt_runtime(2, true);
  o.half_open_max_ms = 0;
  br = mk(rt, &o);
  fail_once(br);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_clock_advance(rt, 3600 * 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  teardown(rt, br);
}

static void test_manual_states(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(2);
  o.window = BW_BREAKER_WINDOW_COUNT;
  o.window_size = 4;
  o.minimum_calls = 2;
  o.failure_rate_pct = 100.0;
  bw_breaker_t *br = mk(rt, &o);
  bw_breaker_permit_t p;

  /* forced open: everything is refused, however long, until reset */
  assert_int_equal(bw_breaker_force_open(br), 0);
  expect_state(br, BW_BREAKER_FORCED_OPEN);
  assert_int_equal(bw_breaker_acquire(br, &p), BW_ECIRCUIT_OPEN);
  assert_true(bw_breaker_retry_after_ms(br) == UINT64_MAX);
  assert_int_equal(bw_clock_advance(rt, 3600 * 1000), 0);
  expect_state(br, BW_BREAKER_FORCED_OPEN);
  assert_int_equal(bw_breaker_reset(br), 0);
  expect_state(br, BW_BREAKER_CLOSED);

  /* disabled: everything flows, nothing is recorded */
  assert_int_equal(bw_breaker_disable(br), 0);
  expect_state(br, BW_BREAKER_DISABLED);
  bw_breaker_stats_t before = stats(br);
  calls(br, -1, 20);
  expect_state(br, BW_BREAKER_DISABLED);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.failed, before.failed);

  /* metrics-only: records and computes rates, never rejects */
  assert_int_equal(bw_breaker_metrics_only(br), 0);
  expect_state(br, BW_BREAKER_METRICS_ONLY);
  calls(br, -1, 10);
  expect_state(br, BW_BREAKER_METRICS_ONLY);
  m = stats(br);
  assert_int_equal(m.failed, before.failed + 10);
  assert_int_equal(m.window_calls, 4);
  assert_true(m.failure_rate == 100.0);
  assert_int_equal(m.rejected, 1);

  /* reset from an open breaker closes it at once (calls admitted before the
   * actor handled the reset would count for metrics-only, not for closed) */
  assert_int_equal(bw_breaker_reset(br), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  calls(br, -1, 2);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_breaker_reset(br), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  assert_int_equal(stats(br).window_calls, 0);
  /* the open's timer is gone with it */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_CLOSED);
  /* reset of a closed breaker forgets the run of failures */
  call(br, -1);
  assert_int_equal(bw_breaker_reset(br), 0);
  FLUSH(br);
  call(br, -1);
  expect_state(br, BW_BREAKER_CLOSED);
  teardown(rt, br);
}

/* --- exactly N in half-open, two threads hammering ------------------------------------ */

#define HAMMER_TRIES 64

typedef struct hammer {
  bw_breaker_t *br;
  pthread_barrier_t *start;
  int admitted;
  bw_breaker_permit_t permits[HAMMER_TRIES];
} hammer_t;

static void *hammer_main(void *arg) {
  hammer_t *h = arg;
  h->admitted = 0;
  pthread_barrier_wait(h->start);
  for (int i = 0; i < HAMMER_TRIES; i++)
    if (bw_breaker_acquire(h->br, &h->permits[h->admitted]) == 0)
      h->admitted++;
  return NULL;
}

static void test_half_open_exactly_n_concurrent(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1);
  o.success_threshold = 3;
  o.half_open_permits = 5;
  bw_breaker_t *br = mk(rt, &o);
  fail_once(br);
  unsigned long rounds = bwt_scaled(300);
  uint64_t rejected = 0;
  for (unsigned long r = 0; r < rounds; r++) {
    assert_int_equal(bw_clock_advance(rt, 1000), 0);
    expect_state(br, BW_BREAKER_HALF_OPEN);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    hammer_t h[2] = {{.br = br, .start = &bar}, {.br = br, .start = &bar}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    for (int i = 0; i < 2; i++)
      pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    assert_int_equal(h[0].admitted + h[1].admitted, 5);
    rejected += 2 * HAMMER_TRIES - 5;
    /* one admitted call fails: reopen for the next round */
    hammer_t *w = h[0].admitted > 0 ? &h[0] : &h[1];
    assert_int_equal(bw_breaker_report(br, &w->permits[0], -1), 0);
    expect_state(br, BW_BREAKER_OPEN);
  }
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.rejected, rejected);
  assert_int_equal(m.not_permitted, rejected);
  teardown(rt, br);
}

/* --- the journal -------------------------------------------------------------------- */

static void test_journal_full_falls_back(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1000000);
  o.journal_size = 16;
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, &o, &br), 0); /* no actor yet */
  assert_int_equal(bw_breaker_pid(br), BW_PID_NONE);
  assert_int_equal(bw_breaker_flush(br, 0), BW_ENOPROC);
  /* alternating outcomes cannot merge: one slot each */
  bw_breaker_permit_t p;
  for (int i = 0; i < 16; i++) {
    assert_int_equal(bw_breaker_acquire(br, &p), 0);
    assert_int_equal(bw_breaker_report(br, &p, i % 2 ? -1 : 0), 0);
  }
  /* full, and no actor to send to: the caller is told, not ignored */
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report(br, &p, 0), BW_ENOPROC);
  assert_int_equal(stats(br).journal_fallbacks, 1);
  /* a repeated outcome merges into the newest record: no slot needed */
  assert_int_equal(bw_breaker_report(br, &p, -1), 0);

  /* the actor takes everything waiting when it starts */
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  FLUSH(br);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.successful, 8);
  assert_int_equal(m.failed, 9);
  /* with the actor running, every report is counted, by journal or message */
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(bw_breaker_acquire(br, &p), 0);
    assert_int_equal(bw_breaker_report(br, &p, i % 2 ? -1 : 0), 0);
  }
  FLUSH(br);
  m = stats(br);
  assert_int_equal(m.successful, 8 + 500);
  assert_int_equal(m.failed, 9 + 500);
  teardown(rt, br);
}

typedef struct reporter {
  bw_breaker_t *br;
  unsigned long n;
  uint64_t ok, fail, errors;
  unsigned seed;
} reporter_t;

static void *reporter_main(void *arg) {
  reporter_t *r = arg;
  unsigned s = r->seed;
  for (unsigned long i = 0; i < r->n; i++) {
    bw_breaker_permit_t p;
    if (bw_breaker_acquire(r->br, &p) != 0) {
      r->errors++;
      continue;
    }
    s = s * 1103515245u + 12345u;
    /* runs of equal outcomes (merges) mixed with changes (new slots) */
    bool fail = ((s >> 16) & 7u) == 0;
    if (bw_breaker_report(r->br, &p, fail ? -1 : 0) != 0)
      r->errors++;
    else if (fail)
      r->fail++;
    else
      r->ok++;
  }
  return NULL;
}

static void test_concurrent_reports_exact(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(1);
  o.journal_size = 64; /* small: the fallback path runs too */
  bw_breaker_t *br = mk(rt, &o);
  assert_int_equal(bw_breaker_metrics_only(br), 0); /* never trips */
  FLUSH(br);
  reporter_t r[2] = {{.br = br, .n = bwt_scaled(200000), .seed = 1},
                     {.br = br, .n = bwt_scaled(200000), .seed = 2}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, reporter_main, &r[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  FLUSH(br);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(r[0].errors + r[1].errors, 0);
  assert_int_equal(m.successful, r[0].ok + r[1].ok);
  assert_int_equal(m.failed, r[0].fail + r[1].fail);
  teardown(rt, br);
}

/* --- proxy mode -------------------------------------------------------------------------- */

enum { P_ECHO = 1, P_FAIL, P_CRASH, P_HOLD, P_RELEASE, P_GET };

static bwt_sync_t psync = BWT_SYNC_INIT;
static int held_count; /* under psync */
static bw_msg_t held_req;

static int target_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)st;
  switch (m->type) {
  case P_ECHO:
    bw_reply(ctx, m, 0, P_ECHO, m->data, m->len);
    return BW_CONTINUE;
  case P_FAIL:
    bw_reply(ctx, m, -1000, P_FAIL, NULL, 0);
    return BW_CONTINUE;
  case P_CRASH:
    return BW_ECRASH;
  case P_HOLD:
    bwt_lock(&psync);
    held_req = *m;
    held_req.data = NULL;
    held_req.len = 0;
    held_count++;
    bwt_unlock_signal(&psync);
    return BW_CONTINUE;
  case P_RELEASE: {
    bwt_lock(&psync);
    bw_msg_t h = held_req;
    bwt_unlock(&psync);
    bw_reply(ctx, &h, 0, P_HOLD, NULL, 0);
    bw_reply(ctx, m, 0, P_RELEASE, NULL, 0);
    return BW_CONTINUE;
  }
  case P_GET:
    bw_reply(ctx, m, 0, P_GET, NULL, 0);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t target_beh = {.name = "target", .state_size = 8,
                                          .handle = target_handle};

static bw_pid_t spawn_target(bw_runtime_t *rt) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &target_beh, NULL, NULL, &pid), 0);
  return pid;
}

static void test_proxy_relay_and_crash(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn_target(rt);
  bw_breaker_opts_t o = consecutive_opts(2);
  o.target = target;
  bw_breaker_t *br = mk(rt, &o);
  bw_pid_t bp = bw_breaker_pid(br);
  bw_reply_t rep;

  /* success: the target's status, type and payload reach the requester */
  char msg[] = "hello through the breaker";
  assert_int_equal(bw_call(rt, bp, P_ECHO, msg, sizeof msg, 0, &rep), 0);
  assert_int_equal(rep.type, P_ECHO);
  assert_int_equal(rep.len, sizeof msg);
  assert_memory_equal(rep.data, msg, sizeof msg);
  /* the target's own error status is relayed, and is a failure */
  assert_int_equal(bw_call(rt, bp, P_FAIL, NULL, 0, 0, &rep), -1000);
  assert_int_equal(rep.type, P_FAIL);
  FLUSH(br);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.successful, 1);
  assert_int_equal(m.failed, 1);

  /* the target crashes while handling: BW_ENOPROC, a failure; trips */
  assert_int_equal(bw_call(rt, bp, P_CRASH, NULL, 0, 0, &rep), BW_ENOPROC);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(stats(br).failed, 2);

  /* open: BW_ECIRCUIT_OPEN with the time until retry */
  assert_int_equal(bw_clock_advance(rt, 400), 0);
  assert_int_equal(bw_call(rt, bp, P_ECHO, msg, sizeof msg, 0, &rep), BW_ECIRCUIT_OPEN);
  assert_int_equal(rep.type, BW_BREAKER_MSG_OPEN);
  assert_int_equal(rep.len, sizeof(uint64_t));
  uint64_t retry;
  memcpy(&retry, rep.data, sizeof retry);
  assert_int_equal(retry, 600);
  m = stats(br);
  assert_int_equal(m.rejected, 1);

  /* the target is dead: half-open, the next call fails at once: reopens */
  assert_int_equal(bw_clock_advance(rt, 600), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_call(rt, bp, P_ECHO, msg, sizeof msg, 0, &rep), BW_ENOPROC);
  expect_state(br, BW_BREAKER_OPEN);
  teardown(rt, br);
}

static void test_proxy_by_name_and_no_target(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(2);
  bw_breaker_t *none = mk(rt, &o);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, bw_breaker_pid(none), P_ECHO, NULL, 0, 0, &rep), BW_ESTATE);
  assert_int_equal(bw_breaker_destroy(none), 0);

  o.target_name = "svc";
  bw_breaker_t *br = mk(rt, &o);
  /* not registered yet: a failure */
  assert_int_equal(bw_call(rt, bw_breaker_pid(br), P_ECHO, NULL, 0, 0, &rep), BW_ENOPROC);
  bw_pid_t t = spawn_target(rt);
  assert_int_equal(bw_register(rt, "svc", t), 0);
  uint32_t v = 7;
  assert_int_equal(bw_call(rt, bw_breaker_pid(br), P_ECHO, &v, sizeof v, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof v);
  FLUSH(br);
  assert_int_equal(stats(br).successful, 1);
  assert_int_equal(stats(br).failed, 1);
  teardown(rt, br);
}

/* A breaker behind a breaker: the inner one's BW_ECIRCUIT_OPEN answer (a
 * type of the breaker's own range) is relayed as the target's reply. */
static void test_proxy_chain(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn_target(rt);
  bw_breaker_opts_t o = consecutive_opts(100);
  o.target = target;
  bw_breaker_t *inner = mk(rt, &o);
  o.target = bw_breaker_pid(inner);
  bw_breaker_t *outer = mk(rt, &o);
  bw_reply_t rep;
  uint32_t v = 5;
  assert_int_equal(bw_call(rt, bw_breaker_pid(outer), P_ECHO, &v, sizeof v, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof v);
  assert_int_equal(bw_breaker_force_open(inner), 0);
  FLUSH(inner);
  assert_int_equal(bw_call(rt, bw_breaker_pid(outer), P_ECHO, &v, sizeof v, 0, &rep),
                   BW_ECIRCUIT_OPEN);
  assert_int_equal(rep.type, BW_BREAKER_MSG_OPEN);
  uint64_t retry;
  memcpy(&retry, rep.data, sizeof retry);
  assert_true(retry == UINT64_MAX);
  FLUSH(outer);
  assert_int_equal(stats(outer).failed, 1);
  assert_int_equal(stats(inner).rejected, 1);
  /* a request of the breaker's own range that is not its protocol */
  assert_int_equal(bw_call(rt, bw_breaker_pid(outer), BW_MSG_BREAKER_BASE + 0x90, NULL, 0, 0, &rep),
                   BW_EINVAL);
  assert_int_equal(bw_breaker_destroy(outer), 0);
  teardown(rt, inner);
}

typedef struct caller {
  bw_runtime_t *rt;
  bw_pid_t to;
  uint32_t type;
  int rc;
  bw_reply_t rep;
} caller_t;

static void *caller_main(void *arg) {
  caller_t *c = arg;
  c->rc = bw_call(c->rt, c->to, c->type, NULL, 0, 0, &c->rep);
  return NULL;
}

static void test_proxy_timeout(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn_target(rt);
  bw_breaker_opts_t o = consecutive_opts(1);
  o.target = target;
  o.call_timeout_ms = 100;
  bw_breaker_t *br = mk(rt, &o);
  bwt_lock(&psync);
  held_count = 0;
  bwt_unlock(&psync);

  caller_t c = {.rt = rt, .to = bw_breaker_pid(br), .type = P_HOLD, .rc = 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, caller_main, &c), 0);
  BWT_AWAIT(&psync, held_count == 1); /* the target holds the request */
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  FLUSH(br);
  assert_int_equal(stats(br).timeouts, 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  pthread_join(th, NULL);
  assert_int_equal(c.rc, BW_ETIMEDOUT);
  expect_state(br, BW_BREAKER_OPEN);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.timeouts, 1);
  assert_int_equal(m.failed, 1);

  /* the target answers late: a dead letter, not a second answer */
  bw_runtime_stats_t before = bwt_stats(rt);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, target, P_RELEASE, NULL, 0, 0, &rep), 0);
  FLUSH(br);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] ==
           before.dead_by_reason[BW_DL_LATE_REPLY] + 1);
  assert_int_equal(stats(br).successful, 0);
  teardown(rt, br);
}

/* --- events ------------------------------------------------------------------------------ */

#define MAXEV 64
static bwt_sync_t esync = BWT_SYNC_INIT;
static struct {
  uint32_t type;
  int64_t a, b;
  char name[32];
} evs[MAXEV];
static int nev;
static int64_t rejected_sum;

static int sub_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx;
  (void)st;
  if (m->type != BW_MSG_EVENT)
    return BW_CONTINUE;
  const bw_event_t *e = m->data;
  bwt_lock(&esync);
  if (e->type == BW_EV_CALL_REJECTED)
    rejected_sum += e->a;
  if (nev < MAXEV) {
    evs[nev].type = e->type;
    evs[nev].a = e->a;
    evs[nev].b = e->b;
    snprintf(evs[nev].name, sizeof evs[nev].name, "%s", e->source_name);
  }
  nev++;
  bwt_unlock_signal(&esync);
  return BW_CONTINUE;
}

static const bw_behaviour_t sub_beh = {.name = "sub", .state_size = 8, .handle = sub_handle};

static int count_state_events(void) {
  int n = 0;
  for (int i = 0; i < nev && i < MAXEV; i++)
    n += evs[i].type == BW_EV_BREAKER_STATE;
  return n;
}

static void test_events(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bwt_lock(&esync);
  nev = 0;
  rejected_sum = 0;
  bwt_unlock(&esync);
  bw_pid_t sub;
  assert_int_equal(bw_spawn(rt, &sub_beh, NULL, NULL, &sub), 0);
  assert_int_equal(bw_event_subscribe(rt, sub, BW_EV_MASK(BW_EV_BREAKER_STATE) |
                                                   BW_EV_MASK(BW_EV_CALL_REJECTED)),
                   0);
  bw_breaker_opts_t o = consecutive_opts(1);
  o.name = "payments";
  bw_breaker_t *br = mk(rt, &o);
  fail_once(br);
  BWT_AWAIT(&esync, count_state_events() == 1);
  bw_breaker_permit_t p;
  for (int i = 0; i < 25; i++)
    assert_int_equal(bw_breaker_acquire(br, &p), BW_ECIRCUIT_OPEN);
  FLUSH(br);
  BWT_AWAIT(&esync, rejected_sum == 25); /* batched: a = how many */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  FLUSH(br);
  calls(br, 0, 2);
  FLUSH(br);
  BWT_AWAIT(&esync, count_state_events() == 3);

  bwt_lock(&esync);
  int want[3][2] = {{BW_BREAKER_CLOSED, BW_BREAKER_OPEN},
                    {BW_BREAKER_OPEN, BW_BREAKER_HALF_OPEN},
                    {BW_BREAKER_HALF_OPEN, BW_BREAKER_CLOSED}};
  int k = 0;
  for (int i = 0; i < nev && i < MAXEV; i++) {
    if (evs[i].type != BW_EV_BREAKER_STATE)
      continue;
    assert_int_equal(evs[i].a, want[k][0]);
    assert_int_equal(evs[i].b, want[k][1]);
    assert_string_equal(evs[i].name, "payments");
    k++;
  }
  bwt_unlock(&esync);
  teardown(rt, br);
}

/* --- supervision -------------------------------------------------------------------------- */

/* A barrier: see the deferred reports' tests below. */
static void barrier(bw_runtime_t *rt, bw_breaker_t *br) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, bw_breaker_pid(br), BW_MSG_BREAKER_BASE + 0x70u, NULL, 0, 0, &rep),
                   BW_EINVAL);
}

static uint64_t sent(const bw_runtime_t *rt) { return bwt_stats(rt).sent; }

static void test_supervised_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn_target(rt);
  bw_breaker_opts_t o = consecutive_opts(2);
  o.target = target;
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, &o, &br), 0);
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_breaker_child_spec(br, "breaker", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "root", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 10, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  bw_pid_t first = bw_breaker_pid(br);
  assert_int_not_equal(first, BW_PID_NONE);
  /* supervised: stop and destroy refuse while it runs */
  assert_int_equal(bw_breaker_stop(br), BW_ERUNNING);
  assert_int_equal(bw_breaker_destroy(br), BW_ERUNNING);
  assert_true(bw_is_alive(rt, first));

  calls(br, -1, 2);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(rt, 300), 0);

  /* crash it: the supervisor starts a new actor on the same handle */
  assert_int_equal(bw_exit(rt, first, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(bw_breaker_pid(br) != BW_PID_NONE && bw_breaker_pid(br) != first);
  bw_pid_t second = bw_breaker_pid(br);
  /* the published state survived: still open, for the rest of its wait */
  expect_state(br, BW_BREAKER_OPEN);
  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), BW_ECIRCUIT_OPEN);
  assert_int_equal(bw_clock_advance(rt, 699), 0);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  /* it keeps serving: guard reports and proxied calls */
  calls(br, 0, 2);
  expect_state(br, BW_BREAKER_CLOSED);
  bw_reply_t rep;
  uint32_t v = 9;
  assert_int_equal(bw_call(rt, second, P_ECHO, &v, sizeof v, 0, &rep), 0);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.failed, 2); /* the counters survived too */
  assert_int_equal(m.successful, 3);

  /* a restart in half-open starts a fresh half-open with all its permits */
  calls(br, -1, 2);
  expect_state(br, BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_exit(rt, second, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(bw_breaker_pid(br) != BW_PID_NONE && bw_breaker_pid(br) != second);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  assert_int_equal(stats(br).half_open_permits_left, 3);
  calls(br, 0, 2);
  expect_state(br, BW_BREAKER_CLOSED);

  /* a restart while deferred reports wait for their flush timer: the new
   * actor takes them at init, and the next idle period arms a flush again */
  bw_pid_t third = bw_breaker_pid(br);
  calls(br, 0, 5); /* deferred: the breaker is closed */
  assert_int_equal(bw_exit(rt, third, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(bw_breaker_pid(br) != BW_PID_NONE && bw_breaker_pid(br) != third);
  FLUSH(br);
  assert_int_equal(stats(br).successful, 3 + 2 + 5);
  calls(br, 0, 4);
  barrier(rt, br); /* the flush arm handled: its timer counts from now */
  assert_int_equal(bw_clock_advance(rt, BW_BREAKER_REPORT_FLUSH_MS), 0);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 3 + 2 + 5 + 4);

  assert_int_equal(bw_sup_stop(rt, sup), 0);
  teardown(rt, br);
}

/* --- deferred reports (report_flush_ms) ------------------------------------------------
 *
 * A success or ignored outcome of a closed-state permit cannot change the
 * state, so it does not wake the breaker's actor: it waits in the journal
 * for the next report that can, or for the flush timer. These tests use a
 * request of the breaker's range that it does not know as a barrier: the
 * actor answers it BW_EINVAL without taking anything from the journal, after
 * everything this thread sent before (a wake-up, a flush arm, or, after
 * bw_clock_advance, the timer's tick). */

static void test_deferred_reports_flush_timer(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(5);
  o.report_flush_ms = 10;
  bw_breaker_t *br = mk(rt, &o);
  FLUSH(br); /* the actor is up and idle */

  /* 100 successes: one message in all (the flush arm), none taken yet */
  uint64_t s0 = sent(rt);
  calls(br, 0, 100);
  assert_int_equal(sent(rt) - s0, 1);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 0);
  /* the flush timer takes them report_flush_ms later, not before */
  assert_int_equal(bw_clock_advance(rt, 9), 0);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 100);

  /* the next idle period arms its own flush */
  s0 = sent(rt);
  calls(br, 0, 7);
  assert_int_equal(sent(rt) - s0, 1);
  barrier(rt, br); /* the arm handled before the clock moves */
  assert_int_equal(bw_clock_advance(rt, 10), 0);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 107);

  /* a failure wakes the actor at once, and it takes the waiting successes
   * first (the stripe's order): no flush, no clock */
  calls(br, 0, 3);
  call(br, -1);
  BWT_POLL(stats(br).failed == 1);
  assert_int_equal(stats(br).successful, 110);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_CLOSED);
  teardown(rt, br);
}

/* Deferred successes still reset the run of failures exactly where they
 * were reported; failures trip without a flush or a clock move; half-open
 * outcomes are never deferred. */
static void test_deferred_reports_trip_exactly(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o = consecutive_opts(5);
  o.report_flush_ms = 60000; /* the timer never fires here */
  bw_breaker_t *br = mk(rt, &o);
  FLUSH(br);
  calls(br, 0, 3);
  calls(br, -1, 4);
  call(br, 0); /* resets the run: 4, then 4 again */
  calls(br, -1, 4);
  expect_state(br, BW_BREAKER_CLOSED);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.successful, 4);
  assert_int_equal(m.failed, 8);
  /* the 5th failure in a row trips, waking the actor by itself */
  calls(br, 0, 2);
  calls(br, -1, 5);
  BWT_POLL(bw_breaker_state(br) == BW_BREAKER_OPEN);
  m = stats(br);
  assert_int_equal(m.successful, 6); /* taken before the failures after them */
  assert_int_equal(m.failed, 13);
  assert_int_equal(m.opens, 1);

  /* half-open: successes close it with no flush and no clock move */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  expect_state(br, BW_BREAKER_HALF_OPEN);
  calls(br, 0, 2);
  BWT_POLL(bw_breaker_state(br) == BW_BREAKER_CLOSED);

  /* a slow success can trip a slow-call window: never deferred either */
  teardown(rt, br);

  rt = bwt_runtime(2, true);
  bw_breaker_opts_init(&o);
  o.window = BW_BREAKER_WINDOW_COUNT;
  o.window_size = 4;
  o.minimum_calls = 4;
  o.failure_threshold = 0;
  o.slow_call_ms = 100;
  o.slow_rate_pct = 50.0;
  o.report_flush_ms = 60000;
  br = mk(rt, &o);
  FLUSH(br);
  bw_breaker_permit_t p;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(bw_breaker_acquire(br, &p), 0);
    assert_int_equal(bw_breaker_report_ns(br, &p, 0, i < 2 ? 200000000ull : 0), 0);
  }
  /* two slow (woke the actor), then two fast successes (deferred): the
   * window holds 4 calls only once those are taken; a flush does it */
  expect_state(br, BW_BREAKER_OPEN);
  teardown(rt, br);

  /* report_flush_ms = 0: every report from idle wakes the actor */
  rt = bwt_runtime(2, true);
  o = consecutive_opts(5);
  o.report_flush_ms = 0;
  br = mk(rt, &o);
  FLUSH(br);
  call(br, 0);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 1);
  teardown(rt, br);
}

/* A time window files deferred outcomes at most one bucket late: the flush
 * waits min(report_flush_ms, bucket_ms). */
static void test_deferred_reports_time_window_bound(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t o;
  bw_breaker_opts_init(&o);
  o.window = BW_BREAKER_WINDOW_TIME;
  o.window_size = 1;
  o.bucket_ms = 5;
  o.report_flush_ms = 10;
  bw_breaker_t *br = mk(rt, &o);
  FLUSH(br);
  calls(br, 0, 3);
  barrier(rt, br);
  assert_int_equal(bw_clock_advance(rt, 4), 0);
  barrier(rt, br);
  assert_int_equal(stats(br).successful, 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  barrier(rt, br);
  bw_breaker_stats_t m = stats(br);
  assert_int_equal(m.successful, 3);
  assert_int_equal(m.window_calls, 3); /* filed at 5 ms: inside the 1 s window */

  /* reports made with no actor: the first actor takes them, and the flag a
   * flush arm left set is cleared, so the next idle period arms again */
  bw_breaker_t *b2 = NULL;
  bw_breaker_opts_t o2 = consecutive_opts(5);
  assert_int_equal(bw_breaker_new(rt, &o2, &b2), 0);
  calls(b2, 0, 6);
  assert_int_equal(bw_breaker_start(b2, NULL), 0);
  FLUSH(b2);
  assert_int_equal(stats(b2).successful, 6);
  uint64_t s0 = sent(rt);
  calls(b2, 0, 2);
  assert_int_equal(sent(rt) - s0, 1);
  barrier(rt, b2);
  assert_int_equal(bw_clock_advance(rt, BW_BREAKER_REPORT_FLUSH_MS), 0);
  barrier(rt, b2);
  assert_int_equal(stats(b2).successful, 8);
  assert_int_equal(bw_breaker_destroy(b2), 0);
  teardown(rt, br);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_window_count),
      cmocka_unit_test(test_window_time_buckets_expire),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_bad_configs),
      cmocka_unit_test(test_bad_input_and_after_stop),
      cmocka_unit_test(test_consecutive_full_cycle),
      cmocka_unit_test(test_half_open_permits_exhausted),
      cmocka_unit_test(test_stale_permit_not_judged),
      cmocka_unit_test(test_count_window_rate),
      cmocka_unit_test(test_time_window_rate_and_expiry),
      cmocka_unit_test(test_slow_call_rate),
      cmocka_unit_test(test_ignored_outcomes),
      cmocka_unit_test(test_backoff_with_jitter),
      cmocka_unit_test(test_half_open_max_wait),
      cmocka_unit_test(test_half_open_default_max_wait),
      cmocka_unit_test(test_manual_states),
      cmocka_unit_test(test_half_open_exactly_n_concurrent),
      cmocka_unit_test(test_journal_full_falls_back),
      cmocka_unit_test(test_concurrent_reports_exact),
      cmocka_unit_test(test_proxy_relay_and_crash),
      cmocka_unit_test(test_proxy_by_name_and_no_target),
      cmocka_unit_test(test_proxy_timeout),
      cmocka_unit_test(test_proxy_chain),
      cmocka_unit_test(test_events),
      cmocka_unit_test(test_supervised_restart),
      cmocka_unit_test(test_deferred_reports_flush_timer),
      cmocka_unit_test(test_deferred_reports_trip_exactly),
      cmocka_unit_test(test_deferred_reports_time_window_bound),
  };
  return BWT_RUN_SUITE(tests);
}
