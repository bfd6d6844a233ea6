/*
 * The error-code table of patterns/ERRORS.md, checked row by row: one test
 * per public header of the patterns (breaker, bulkhead, ratelimit, retry,
 * policy, resilience, metrics, health, observer). Every code the table
 * lists is produced here by at least one assert, except the
 * allocation-failure-only BW_ENOMEM rows (ERRORS.md says which).
 *
 * Calls that must be refused on a scheduler thread (BW_EWOULDBLOCK) are
 * made from inside a "probe" actor: main sends it a function with
 * bw_call, the probe runs it in its handler and answers with the code.
 * Everything runs on the manual clock; nothing sleeps.
 *
 * Tests written as the code SHOULD behave but skipped (each names its bug,
 * reported to the lead): test_breaker_destroy_on_scheduler_keeps_actor.
 */
#include "support.h"

#include <math.h>

#include "bulwark/bulwark.h"

/* --- the probe: runs a function on a scheduler thread -------------------------- */

enum { PROBE_RUN = 1, ECHO = 2, SINK = 3 };

typedef int (*probe_fn)(bw_ctx_t *ctx, void *arg);
typedef struct probe_job {
  probe_fn fn;
  void *arg;
} probe_job_t;

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == PROBE_RUN && (msg->flags & BW_MSGF_REQUEST) && msg->len == sizeof(probe_job_t)) {
    probe_job_t j;
    memcpy(&j, msg->data, sizeof j);
    int rc = j.fn(ctx, j.arg);
    (void)bw_reply(ctx, msg, 0, PROBE_RUN, &rc, sizeof rc);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t probe_behaviour = {.name = "probe", .handle = probe_handle};

static bw_pid_t spawn_probe(bw_runtime_t *rt) {
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &probe_behaviour, NULL, NULL, &pid), 0);
  return pid;
}

/* Runs fn(ctx, arg) in the probe's handler; returns what fn returned. */
static int in_actor(bw_runtime_t *rt, bw_pid_t probe, probe_fn fn, void *arg) {
  probe_job_t j = {fn, arg};
  bw_reply_t r;
  assert_int_equal(bw_call(rt, probe, PROBE_RUN, &j, sizeof j, 0, &r), 0);
  assert_int_equal(r.len, sizeof(int));
  int rc;
  memcpy(&rc, r.data, sizeof rc);
  return rc;
}

/* An actor that answers ECHO requests with status 0, and keeps SINK
 * requests unanswered (a target that never replies). */
static int echo_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if ((msg->flags & BW_MSGF_REQUEST) && msg->type == ECHO)
    (void)bw_reply(ctx, msg, 0, ECHO, msg->data, msg->len);
  return BW_CONTINUE;
}

static const bw_behaviour_t echo_behaviour = {.name = "echo", .handle = echo_handle};

static bw_pid_t spawn_echo(bw_runtime_t *rt) {
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &echo_behaviour, NULL, NULL, &pid), 0);
  return pid;
}

/* 'x' * n, NUL-terminated, in a static buffer (n < 300). */
static const char *long_name(size_t n) {
  static char buf[300];
  assert_true(n < sizeof buf);
  memset(buf, 'x', n);
  buf[n] = '\0';
  return buf;
}

/* ============================================================================ */
/* breaker.h                                                                    */
/* ============================================================================ */

/* A breaker with defaults and its actor running (bw_breaker_new + start). */
static bw_breaker_t *breaker_up(bw_runtime_t *rt) {
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, NULL, &br), 0);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  return br;
}

static int br_opts_rc(void (*edit)(bw_breaker_opts_t *)) {
  bw_breaker_opts_t o;
  bw_breaker_opts_init(&o);
  edit(&o);
  return bw_breaker_opts_validate(&o);
}

#define BR_BAD(body)                                                                         \
  do {                                                                                       \
    bw_breaker_opts_t o_;                                                                    \
    bw_breaker_opts_init(&o_);                                                               \
    { bw_breaker_opts_t *o = &o_; body; }                                                    \
    assert_int_equal(bw_breaker_opts_validate(&o_), BW_EINVAL);                              \
  } while (0)

static void br_nothing(bw_breaker_opts_t *o) { (void)o; }

static int p_breaker_flush(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_breaker_flush(arg, 0);
}

static int p_breaker_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_breaker_stop(arg);
}

static int p_breaker_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_breaker_destroy(arg);
}

static void test_breaker_errors(void **state) {
  (void)state;
  /* options */
  assert_int_equal(br_opts_rc(br_nothing), 0);
  assert_int_equal(bw_breaker_opts_validate(NULL), BW_EINVAL);
  BR_BAD(o->name = long_name(32));
  BR_BAD(o->window = (bw_breaker_window_t)7);
  BR_BAD(o->window = BW_BREAKER_WINDOW_NONE; o->failure_threshold = 0);
  BR_BAD(o->window_size = 0); /* the "zero window" */
  BR_BAD(o->minimum_calls = 0);
  BR_BAD(o->failure_rate_pct = 0.0);
  BR_BAD(o->failure_rate_pct = 100.5);
  BR_BAD(o->failure_rate_pct = NAN);
  BR_BAD(o->window = BW_BREAKER_WINDOW_COUNT; o->window_size = 5; o->minimum_calls = 6);
  BR_BAD(o->bucket_ms = 0);
  BR_BAD(o->bucket_ms = 7000); /* does not divide 60 s */
  BR_BAD(o->slow_call_ms = 100; o->slow_rate_pct = 0.0);
  BR_BAD(o->slow_call_ms = 30ull * 86400000 + 1); /* durations: at most 30 days */
  BR_BAD(o->success_threshold = 0);
  BR_BAD(o->half_open_permits = 0);
  BR_BAD(o->half_open_permits = 2; o->success_threshold = 3);
  BR_BAD(o->half_open_max_ms = 30ull * 86400000 + 1);
  BR_BAD(o->open_ms = 0);
  BR_BAD(o->open_ms = (uint64_t)-5); /* a negative duration, cast */
  BR_BAD(o->open_multiplier = 0);
  BR_BAD(o->open_multiplier = 1001);
  BR_BAD(o->jitter_pct = 101);
  BR_BAD(o->open_max_ms = 1000); /* below open_ms */
  BR_BAD(o->target = 12345; o->target_name = "t");
  BR_BAD(o->target_name = "");
  BR_BAD(o->target_name = long_name(64));
  BR_BAD(o->call_timeout_ms = (uint64_t)-1);
  BR_BAD(o->max_inflight = 0);
  BR_BAD(o->max_inflight = 65537);
  BR_BAD(o->journal_size = 8);
  BR_BAD(o->journal_size = 100);
  BR_BAD(o->journal_size = 131072);

  bw_breaker_t *br = NULL;
  bw_breaker_opts_t bad;
  bw_breaker_opts_init(&bad);
  bad.open_ms = 0;
  bw_child_spec_t cs;
  bw_breaker_permit_t pm;
  bw_breaker_stats_t m;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe = spawn_probe(rt);

  /* lifecycle */
  assert_int_equal(bw_breaker_new(NULL, NULL, &br), BW_EINVAL);
  assert_int_equal(bw_breaker_new(rt, NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_new(rt, &bad, &br), BW_EINVAL);
  assert_null(br);
  assert_int_equal(bw_breaker_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_child_spec(NULL, "b", &cs), BW_EINVAL);
  assert_int_equal(bw_breaker_destroy(NULL), 0);

  /* a handle without an actor: control and flush have nobody to talk to,
   * and a report that finds its journal stripe full has nowhere to go */
  bw_breaker_opts_t jo;
  bw_breaker_opts_init(&jo);
  jo.journal_size = 16;
  assert_int_equal(bw_breaker_new(rt, &jo, &br), 0);
  assert_int_equal(bw_breaker_child_spec(br, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_breaker_child_spec(br, "b", NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_pid(br), BW_PID_NONE);
  assert_int_equal(bw_breaker_reset(br), BW_ENOPROC);
  assert_int_equal(bw_breaker_force_open(br), BW_ENOPROC);
  assert_int_equal(bw_breaker_disable(br), BW_ENOPROC);
  assert_int_equal(bw_breaker_metrics_only(br), BW_ENOPROC);
  assert_int_equal(bw_breaker_flush(br, 0), BW_ENOPROC);
  int rc = 0;
  for (int i = 0; i < 17 && rc == 0; i++) {
    /* alternating outcomes: no record merges into the previous one */
    assert_int_equal(bw_breaker_acquire(br, &pm), 0);
    rc = bw_breaker_report(br, &pm, i % 2 == 0 ? 0 : -1);
  }
  assert_int_equal(rc, BW_ENOPROC);
  assert_int_equal(bw_breaker_stop(br), 0); /* no actor: nothing to stop */
  assert_int_equal(bw_breaker_destroy(br), 0);

  /* with an actor */
  br = breaker_up(rt);
  assert_int_equal(bw_breaker_start(br, NULL), BW_EALREADY);
  assert_int_equal(bw_breaker_acquire(NULL, &pm), BW_EINVAL);
  assert_int_equal(bw_breaker_acquire(br, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_report(NULL, &pm, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_report(br, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_report_ns(NULL, &pm, 0, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_report_ns(br, NULL, 0, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_reset(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_force_open(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_disable(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_metrics_only(NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_flush(NULL, 0), BW_EINVAL);
  assert_int_equal(bw_breaker_stats(NULL, &m), BW_EINVAL);
  assert_int_equal(bw_breaker_stats(br, NULL), BW_EINVAL);
  /* the non-code answers for NULL */
  assert_int_equal(bw_breaker_pid(NULL), BW_PID_NONE);
  assert_string_equal(bw_breaker_name(NULL), "");
  assert_int_equal(bw_breaker_state(NULL), BW_BREAKER_CLOSED);
  assert_int_equal(bw_breaker_retry_after_ms(NULL), 0);
  assert_string_equal(bw_breaker_state_name(-1), "unknown");
  /* open: the guard refuses */
  assert_int_equal(bw_breaker_force_open(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_acquire(br, &pm), BW_ECIRCUIT_OPEN);
  assert_int_equal(bw_breaker_retry_after_ms(br), UINT64_MAX);
  /* blocking calls on a scheduler thread */
  assert_int_equal(in_actor(rt, probe, p_breaker_flush, br), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_breaker_stop, br), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_breaker_destroy, br), BW_EWOULDBLOCK);
  assert_int_equal(bw_breaker_destroy(br), 0);

  /* supervised: destroy refuses while the supervisor's actor lives */
  assert_int_equal(bw_breaker_new(rt, NULL, &br), 0);
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_breaker_child_spec(br, "br", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "errsup", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 3, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_breaker_stop(br), BW_ERUNNING);
  assert_int_equal(bw_breaker_destroy(br), BW_ERUNNING);
  assert_int_equal(bw_breaker_start(br, NULL), BW_EALREADY);
  assert_int_equal(bw_sup_stop(rt, sup), 0);

  /* after the runtime stopped: no actor runs, none can be started */
  bw_breaker_t *br2 = NULL;
  br2 = breaker_up(rt);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_breaker_start(br, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_breaker_reset(br2), BW_ENOPROC);
  assert_int_equal(bw_breaker_flush(br2, 0), BW_ENOPROC);
  assert_int_equal(bw_breaker_acquire(br2, &pm), 0); /* the published state: closed */
  assert_int_equal(bw_breaker_stats(br2, &m), 0);
  assert_int_equal(bw_breaker_stop(br2), 0); /* its actor is gone already */
  assert_int_equal(bw_breaker_destroy(br), 0);
  assert_int_equal(bw_breaker_destroy(br2), 0);
  bw_runtime_destroy(rt);
}

static int p_breaker_destroy_rt(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_breaker_destroy(arg);
}

/* bw_breaker_destroy on a scheduler thread refuses before it tells the
 * actor anything, and leaves everything as it was (it used to stop the
 * actor first, then refuse). */
static void test_breaker_destroy_on_scheduler_keeps_actor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe = spawn_probe(rt);
  bw_breaker_t *br = NULL;
  br = breaker_up(rt);
  bw_pid_t pid = bw_breaker_pid(br);
  assert_int_equal(in_actor(rt, probe, p_breaker_destroy_rt, br), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, pid));
  assert_int_equal(bw_breaker_reset(br), 0);
  assert_int_equal(bw_breaker_destroy(br), 0);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* bulkhead.h                                                                   */
/* ============================================================================ */

#define BH_BAD(body)                                                                         \
  do {                                                                                       \
    bw_bulkhead_opts_t o_;                                                                   \
    bw_bulkhead_opts_init(&o_);                                                              \
    { bw_bulkhead_opts_t *o = &o_; body; }                                                   \
    assert_int_equal(bw_bulkhead_opts_validate(&o_), BW_EINVAL);                             \
  } while (0)

static int bh_crash(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)resource;
  (void)arg;
  bw_fail(ctx, -77, "crash on purpose");
}

static int bh_ok(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)ctx;
  (void)resource;
  (void)arg;
  return 0;
}

static int worker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->flags & BW_MSGF_REQUEST)
    (void)bw_reply(ctx, msg, 0, msg->type, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t worker_behaviour = {.name = "bh_worker", .handle = worker_handle};
static const bw_behaviour_t no_handle_behaviour = {.name = "no_handle"};

typedef struct pool_arg {
  bw_bulkhead_t *pool;
  int rc;
} pool_arg_t;

static int p_bulkhead_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  pool_arg_t *a = arg;
  return bw_bulkhead_stop(a->pool);
}

static int p_bulkhead_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  pool_arg_t *a = arg;
  return bw_bulkhead_destroy(a->pool);
}

static int p_bulkhead_submit(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  pool_arg_t *a = arg;
  bw_reply_t r;
  return bw_bulkhead_submit(a->pool, ECHO, NULL, 0, 0, &r);
}

static void *run_in_thread(void *arg) {
  pool_arg_t *a = arg;
  a->rc = bw_bulkhead_run(a->pool, bh_ok, NULL, 0);
  return NULL;
}

/* A pool handle with its pool started. */
static bw_bulkhead_t *pool_up(bw_runtime_t *rt, const bw_bulkhead_opts_t *o) {
  bw_bulkhead_t *b = NULL;
  assert_int_equal(bw_bulkhead_new(rt, o, &b), 0);
  assert_int_equal(bw_bulkhead_start(b, NULL), 0);
  return b;
}

static void test_bulkhead_errors(void **state) {
  (void)state;
  /* options */
  bw_bulkhead_opts_t good;
  bw_bulkhead_opts_init(&good);
  assert_int_equal(bw_bulkhead_opts_validate(&good), 0);
  assert_int_equal(bw_bulkhead_opts_validate(NULL), BW_EINVAL);
  BH_BAD(o->workers = 0);
  BH_BAD(o->workers = BW_BULKHEAD_MAX_WORKERS + 1);
  BH_BAD(o->max_overflow = BW_BULKHEAD_MAX_WORKERS + 1);
  BH_BAD(o->queue_capacity = 4);                          /* a queue without a timeout */
  BH_BAD(o->queue_timeout_ms = 100);                      /* a timeout without a queue */
  BH_BAD(o->queue_capacity = BW_BULKHEAD_MAX_QUEUE + 1; o->queue_timeout_ms = 100);
  BH_BAD(o->queue_capacity = 1; o->queue_timeout_ms = (uint64_t)-100); /* negative, cast */
  BH_BAD(o->overflow_idle_ms = BW_BULKHEAD_MAX_MS + 1);
  BH_BAD(o->restart_period_ms = BW_BULKHEAD_MAX_MS + 1);
  BH_BAD(o->max_restarts = -2);
  BH_BAD(o->max_restarts = BW_BULKHEAD_MAX_RESTARTS + 1);
  BH_BAD(o->name = long_name(BW_BULKHEAD_NAME_MAX + 1));
  BH_BAD(o->worker = &no_handle_behaviour);
  BH_BAD(o->rate_limit = true; o->rate = 0; o->rate_burst = 1);
  BH_BAD(o->rate_limit = true; o->rate = 10; o->rate_burst = 0);
  BH_BAD(o->rate_limit = true; o->rate = 10; o->rate_burst = BW_RATELIMIT_MAX_BURST + 1);
  BH_BAD(o->rate_limit = true; o->rate = 10; o->rate_burst = 1;
         o->rate_period_ms = BW_RATELIMIT_MAX_PERIOD_MS + 1);
  BH_BAD(o->rate_limit = true; o->rate = 1000000001; o->rate_burst = 1); /* < 1 ns apart */
  /* one token a day, bursts of a million: burst * interval beyond 2^62 ns */
  BH_BAD(o->rate_limit = true; o->rate = 1; o->rate_period_ms = 86400000; o->rate_burst = 1000000);
  BH_BAD(o->rate = 10); /* a rate without rate_limit */

  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe = spawn_probe(rt);
  bw_bulkhead_t *pool = (bw_bulkhead_t *)(uintptr_t)0x1;
  bw_bulkhead_opts_t bad = good;
  bad.workers = 0;
  bw_reply_t r;
  bw_bulkhead_lease_t lease = {0};
  bw_bulkhead_stats_t bm;
  bw_child_spec_t cs;

  /* lifecycle */
  assert_int_equal(bw_bulkhead_new(NULL, &good, &pool), BW_EINVAL);
  assert_int_equal(bw_bulkhead_new(rt, &good, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_new(rt, &bad, &pool), BW_EINVAL);
  assert_true(pool == (bw_bulkhead_t *)(uintptr_t)0x1); /* *out untouched */
  assert_int_equal(bw_bulkhead_child_spec(NULL, "p", &cs), BW_EINVAL);
  assert_int_equal(bw_bulkhead_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_destroy(NULL), 0);
  assert_int_equal(bw_bulkhead_pid(NULL), BW_PID_NONE);
  /* a handle without a pool: nothing to talk to */
  bw_bulkhead_t *idle = NULL;
  assert_int_equal(bw_bulkhead_new(rt, NULL, &idle), 0); /* NULL opts: defaults */
  assert_int_equal(bw_bulkhead_child_spec(idle, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_bulkhead_child_spec(idle, "p", NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_pid(idle), BW_PID_NONE);
  assert_int_equal(bw_bulkhead_stop(idle), 0);
  assert_int_equal(bw_bulkhead_submit(idle, ECHO, NULL, 0, 0, &r), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_run(idle, bh_ok, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_checkout(idle, BW_PID_NONE, 0, &lease), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_checkin(idle, &lease), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_stats(idle, &bm), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_destroy(idle), 0);

  /* a pool of one worker without a behaviour (function jobs only) and
   * no queue */
  pool = pool_up(rt, &good);
  bw_pid_t pid = bw_bulkhead_pid(pool);
  assert_int_equal(bw_bulkhead_start(pool, NULL), BW_EALREADY);
  assert_int_equal(bw_bulkhead_submit(pool, BW_MSG_PATTERN_BASE, NULL, 0, 0, &r), BW_EINVAL);
  uint8_t big[BW_MSG_INLINE_MAX] = {0};
  assert_int_equal(bw_bulkhead_submit(pool, ECHO, big, BW_BULKHEAD_PAYLOAD_MAX + 1, 0, &r),
                   BW_ETOOBIG);
  assert_int_equal(bw_bulkhead_submit(pool, ECHO, NULL, 0, 0, &r), BW_EINVAL); /* no worker */
  assert_int_equal(bw_bulkhead_submit(pool, ECHO, NULL, 0, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_submit(NULL, ECHO, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run(pool, NULL, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run(NULL, bh_ok, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run(pool, bh_crash, NULL, 0), BW_ECRASH);
  assert_int_equal(bw_bulkhead_run(pool, bh_ok, NULL, 0), 0); /* restarted */
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkout(NULL, BW_PID_NONE, 0, &lease), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stats(pool, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stats(NULL, &bm), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkin(pool, NULL), BW_EINVAL);
  /* the only worker lent: everything else is refused */
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &lease), 0);
  assert_int_equal(bw_bulkhead_run(pool, bh_ok, NULL, 0), BW_EBULKHEAD_FULL);
  bw_bulkhead_lease_t l2;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &l2), BW_EBULKHEAD_FULL);
  assert_int_equal(bw_bulkhead_checkin(NULL, &lease), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkin(pool, &lease), 0);
  assert_int_equal(bw_bulkhead_checkin(pool, &lease), 0); /* stale lease: ignored */
  assert_int_equal(bw_bulkhead_stats(pool, &bm), 0);
  assert_int_equal(bm.lent, 0);
  assert_int_equal(bm.rejected, 2);
  /* from an actor's thread: the blocking calls refuse, nothing is stopped */
  pool_arg_t pa = {pool, 0};
  assert_int_equal(in_actor(rt, probe, p_bulkhead_submit, &pa), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_bulkhead_stop, &pa), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_bulkhead_destroy, &pa), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, pid));
  assert_int_equal(bw_bulkhead_stop(pool), 0);
  assert_false(bw_is_alive(rt, pid));
  assert_int_equal(bw_bulkhead_stop(pool), 0); /* stopped twice: nothing to do */
  assert_int_equal(bw_bulkhead_run(pool, bh_ok, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_destroy(pool), 0);

  /* supervised: stop and destroy refuse while the supervisor's pool lives */
  pool = NULL;
  assert_int_equal(bw_bulkhead_new(rt, &good, &pool), 0);
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_bulkhead_child_spec(pool, "pool", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "bhsup", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 3, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_bulkhead_start(pool, NULL), BW_EALREADY);
  assert_int_equal(bw_bulkhead_stop(pool), BW_ERUNNING);
  assert_int_equal(bw_bulkhead_destroy(pool), BW_ERUNNING);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_bulkhead_destroy(pool), 0);

  /* a pid that answers, but not as a pool: the stats and checkout
   * decoders refuse its replies */
  bw_pid_t notpool = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &worker_behaviour, NULL, NULL, &notpool), 0);
  assert_int_equal(bw_call(rt, notpool, BW_BULKHEAD_STATS, NULL, 0, 0, &r), 0);
  assert_int_not_equal(r.len, sizeof bm);

  /* the *_request forms: from an actor only */
  uint64_t ref;
  assert_int_equal(bw_bulkhead_run_request(NULL, pid, NULL, NULL, 0, &ref), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run_request(NULL, pid, bh_ok, NULL, 0, &ref), BW_ENOTACTOR);
  assert_int_equal(bw_bulkhead_checkout_request(NULL, pid, 0, &ref), BW_ENOTACTOR);
  assert_int_equal(bw_bulkhead_stats_request(NULL, pid, &ref), BW_ENOTACTOR);

  /* decoding replies */
  bw_msg_t msg = {.type = BW_BULKHEAD_CHECKOUT, .len = sizeof lease, .data = &lease,
                  .flags = BW_MSGF_REPLY};
  assert_int_equal(bw_bulkhead_lease_from_reply(&msg, &l2), 0);
  assert_int_equal(bw_bulkhead_lease_from_reply(NULL, &l2), BW_EINVAL);
  assert_int_equal(bw_bulkhead_lease_from_reply(&msg, NULL), BW_EINVAL);
  msg.flags = 0; /* not a reply */
  assert_int_equal(bw_bulkhead_lease_from_reply(&msg, &l2), BW_EINVAL);
  msg.flags = BW_MSGF_REPLY;
  msg.status = BW_EBULKHEAD_FULL; /* the pool's refusal comes back as is */
  assert_int_equal(bw_bulkhead_lease_from_reply(&msg, &l2), BW_EBULKHEAD_FULL);
  msg.status = 0;
  msg.type = BW_BULKHEAD_STATS; /* another reply */
  assert_int_equal(bw_bulkhead_lease_from_reply(&msg, &l2), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stats_from_reply(&msg, &bm), BW_EINVAL); /* wrong length */
  assert_int_equal(bw_bulkhead_stats_from_reply(NULL, &bm), BW_EINVAL);
  msg.status = BW_ETIMEDOUT;
  assert_int_equal(bw_bulkhead_stats_from_reply(&msg, &bm), BW_ETIMEDOUT);

  /* a pool with a worker behaviour, a queue of one, a rate limit */
  bw_bulkhead_opts_t qo = good;
  qo.worker = &worker_behaviour;
  qo.queue_capacity = 1;
  qo.queue_timeout_ms = 100;
  pool = pool_up(rt, &qo);
  assert_int_equal(bw_bulkhead_submit(pool, ECHO, NULL, 0, 0, &r), 0);
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &lease), 0);
  pthread_t th;
  pa.pool = pool;
  pa.rc = 1;
  assert_int_equal(pthread_create(&th, NULL, run_in_thread, &pa), 0);
  BWT_POLL(bw_bulkhead_stats(pool, &bm) == 0 && bm.queued == 1);
  assert_int_equal(bw_bulkhead_submit(pool, ECHO, NULL, 0, 0, &r), BW_EBULKHEAD_FULL);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(pa.rc, BW_ETIMEDOUT); /* waited past queue_timeout_ms */
  assert_int_equal(bw_bulkhead_checkin(pool, &lease), 0);
  assert_int_equal(bw_bulkhead_destroy(pool), 0);

  bw_bulkhead_opts_t ro = good;
  ro.rate_limit = true;
  ro.rate = 1;
  ro.rate_burst = 1;
  pool = pool_up(rt, &ro);
  assert_int_equal(bw_bulkhead_run(pool, bh_ok, NULL, 0), 0);
  assert_int_equal(bw_bulkhead_run(pool, bh_ok, NULL, 0), BW_ERATE_LIMITED);

  /* after the runtime stopped: the pool is gone with it */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_bulkhead_pid(pool), BW_PID_NONE);
  assert_int_equal(bw_bulkhead_start(pool, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_bulkhead_stop(pool), 0);
  assert_int_equal(bw_bulkhead_run(pool, bh_ok, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_submit(pool, ECHO, NULL, 0, 0, &r), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &lease), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_stats(pool, &bm), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_checkin(pool, &lease), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_destroy(pool), 0);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* ratelimit.h                                                                  */
/* ============================================================================ */

static void test_ratelimit_errors(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  uint64_t wait = 0;
  bw_ratelimit_stats_t st;
  assert_int_equal(bw_ratelimit_init(NULL, rt, 10, 0, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, NULL, 10, 0, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 0, 0, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 10, 0, 0), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 10, 0, BW_RATELIMIT_MAX_BURST + 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 10, BW_RATELIMIT_MAX_PERIOD_MS + 1, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1000001, 1, 1), BW_EINVAL); /* < 1 ns apart */
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, 86400000, 1000000), BW_EINVAL); /* > 2^62 ns */
  /* a bucket never initialised (zeroed) is refused, not used */
  memset(&rl, 0, sizeof rl);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_try_acquire_at(&rl, 0, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_acquire(&rl, 0, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_stats(&rl, &st), BW_EINVAL);
  assert_int_equal(bw_ratelimit_available(&rl), 0);

  assert_int_equal(bw_ratelimit_init(&rl, rt, 10, 0, 1), 0);
  assert_int_equal(bw_ratelimit_try_acquire(NULL, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_try_acquire_at(NULL, 0, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_acquire(NULL, 0, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_acquire(&rl, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_ratelimit_acquire(&rl, BW_RATELIMIT_MAX_PERIOD_MS + 1, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_stats(NULL, &st), BW_EINVAL);
  assert_int_equal(bw_ratelimit_stats(&rl, NULL), BW_EINVAL);
  assert_int_equal(bw_ratelimit_available(NULL), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 100000000ull);
  assert_int_equal(bw_ratelimit_acquire(&rl, 99, &wait), BW_ERATE_LIMITED); /* beyond the timeout */
  assert_int_equal(bw_ratelimit_try_acquire_at(&rl, 0, &wait), BW_ERATE_LIMITED);

  /* the bucket reads the runtime's clock only: it keeps working after stop */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(bw_ratelimit_stats(&rl, &st), 0);
  assert_int_equal(st.acquired, 1);
  assert_int_equal(st.limited, 4);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* retry.h                                                                      */
/* ============================================================================ */

#define RT_BAD(body)                                                                         \
  do {                                                                                       \
    bw_retry_opts_t o_;                                                                      \
    bw_retry_opts_init(&o_);                                                                 \
    o_.target = 777;                                                                         \
    { bw_retry_opts_t *o = &o_; body; }                                                      \
    assert_int_equal(bw_retry_opts_validate(&o_), BW_EINVAL);                                \
  } while (0)

#define BO_BAD(body)                                                                         \
  do {                                                                                       \
    bw_retry_backoff_t b_ = {BW_RETRY_BACKOFF_EXPONENTIAL, 100, 1000, 2.0};                  \
    { bw_retry_backoff_t *b = &b_; body; }                                                   \
    assert_int_equal(bw_retry_backoff_validate(&b_), BW_EINVAL);                             \
  } while (0)

/* From the probe: a request nobody answers before the test ends (it
 * fills an executor's table of one). */
typedef struct held_req {
  bw_pid_t to;
  uint32_t type;
  size_t len;
  uint8_t buf[BW_MSG_INLINE_MAX];
} held_req_t;

static int p_retry_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_retry_stop(arg);
}

static int p_retry_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_retry_destroy(arg);
}

static int p_request_held(bw_ctx_t *ctx, void *arg) {
  const held_req_t *h = arg;
  uint64_t ref;
  return bw_request(ctx, h->to, h->type, h->buf, h->len, 0, &ref);
}

static void test_retry_errors(void **state) {
  (void)state;
  /* backoff */
  bw_retry_backoff_t bo = {BW_RETRY_BACKOFF_EXPONENTIAL, 100, 1000, 2.0};
  bw_retry_backoff_state_t bst;
  assert_int_equal(bw_retry_backoff_validate(&bo), 0);
  assert_int_equal(bw_retry_backoff_validate(NULL), BW_EINVAL);
  BO_BAD(b->kind = -1);
  BO_BAD(b->kind = BW_RETRY_BACKOFF__COUNT);
  BO_BAD(b->initial_ms = 0);
  BO_BAD(b->max_ms = 99);
  BO_BAD(b->max_ms = BW_RETRY_DELAY_MAX_MS + 1);
  BO_BAD(b->multiplier = 0.5);
  BO_BAD(b->multiplier = BW_RETRY_MULTIPLIER_MAX + 1);
  BO_BAD(b->multiplier = NAN);
  bw_retry_backoff_t fixed = {BW_RETRY_BACKOFF_FIXED, 100, 100, NAN}; /* ignored by FIXED */
  assert_int_equal(bw_retry_backoff_validate(&fixed), 0);
  assert_int_equal(bw_retry_backoff_start(NULL, 1, &bst), BW_EINVAL);
  assert_int_equal(bw_retry_backoff_start(&bo, 1, NULL), BW_EINVAL);
  bo.initial_ms = 0;
  assert_int_equal(bw_retry_backoff_start(&bo, 1, &bst), BW_EINVAL);
  bo.initial_ms = 100;

  /* budget */
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_retry_budget_t bu;
  bw_retry_budget_opts_t bop;
  bw_retry_budget_stats_t bs;
  bw_retry_budget_opts_init(&bop);
  assert_int_equal(bw_retry_budget_init(NULL, rt, &bop), BW_EINVAL);
  assert_int_equal(bw_retry_budget_init(&bu, NULL, &bop), BW_EINVAL);
  assert_int_equal(bw_retry_budget_init(&bu, rt, NULL), BW_EINVAL);
  bop.ratio = -0.1;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), BW_EINVAL);
  bop.ratio = 1.01;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), BW_EINVAL);
  bop.ratio = NAN;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), BW_EINVAL);
  bop.ratio = 0.0;
  bop.window_ms = BW_RETRY_BUDGET_SLICES - 1;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), BW_EINVAL);
  bop.window_ms = 3600001;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), BW_EINVAL);
  bop.window_ms = 1000;
  bop.min_retries_per_sec = 1000001;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), BW_EINVAL);
  /* never initialised: refused */
  memset(&bu, 0, sizeof bu);
  assert_int_equal(bw_retry_budget_deposit(&bu), BW_EINVAL);
  assert_int_equal(bw_retry_budget_try_withdraw(&bu), BW_EINVAL);
  assert_int_equal(bw_retry_budget_stats(&bu, &bs), BW_EINVAL);
  assert_int_equal(bw_retry_budget_balance(&bu), 0);
  bw_retry_opts_t ro;
  bw_retry_opts_init(&ro);
  ro.target = 777;
  ro.budget = &bu; /* an uninitialised budget in the options */
  assert_int_equal(bw_retry_opts_validate(&ro), BW_EINVAL);
  /* a budget with no floor and ratio 0 allows no retry */
  bop.min_retries_per_sec = 0;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), 0);
  assert_int_equal(bw_retry_opts_validate(&ro), 0);
  assert_int_equal(bw_retry_budget_deposit(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_budget_try_withdraw(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_budget_stats(NULL, &bs), BW_EINVAL);
  assert_int_equal(bw_retry_budget_stats(&bu, NULL), BW_EINVAL);
  assert_int_equal(bw_retry_budget_balance(NULL), 0);
  assert_int_equal(bw_retry_budget_deposit(&bu), 0);
  assert_int_equal(bw_retry_budget_try_withdraw(&bu), BW_EBUDGET);

  /* options */
  bw_retry_opts_init(&ro);
  ro.target = 777;
  assert_int_equal(bw_retry_opts_validate(&ro), 0);
  assert_int_equal(bw_retry_opts_validate(NULL), BW_EINVAL);
  RT_BAD(o->target_name = "db");                 /* both */
  RT_BAD(o->target = BW_PID_NONE; o->target_name = "");
  RT_BAD(o->target = BW_PID_NONE; o->target_name = long_name(BW_NAME_MAX + 1));
  RT_BAD(o->max_attempts = 0);
  RT_BAD(o->max_attempts = BW_RETRY_ATTEMPTS_MAX + 1);
  RT_BAD(o->backoff.initial_ms = 0);
  RT_BAD(o->backoff.kind = 99);
  RT_BAD(o->backoff.multiplier = 0.0);
  RT_BAD(o->attempt_timeout_ms = 0);
  RT_BAD(o->attempt_timeout_ms = BW_RETRY_DELAY_MAX_MS + 1);
  RT_BAD(o->deadline_ms = (uint64_t)-1000); /* a negative duration, cast */
  RT_BAD(o->capacity = 0);
  RT_BAD(o->capacity = BW_RETRY_CAPACITY_MAX + 1);

  /* the handle */
  bw_retry_t *pol = NULL;
  bw_retry_stats_t rm;
  bw_pid_t ex = BW_PID_NONE;
  bw_child_spec_t cs;
  assert_int_equal(bw_retry_new(NULL, &ro, &pol), BW_EINVAL);
  assert_int_equal(bw_retry_new(rt, &ro, NULL), BW_EINVAL);
  ro.capacity = 0;
  assert_int_equal(bw_retry_new(rt, &ro, &pol), BW_EINVAL);
  assert_null(pol);
  assert_int_equal(bw_retry_start(NULL, &ex), BW_EINVAL);
  assert_int_equal(bw_retry_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_destroy(NULL), 0);
  assert_int_equal(bw_retry_pid(NULL), BW_PID_NONE);
  assert_int_equal(bw_retry_child_spec(NULL, "r", &cs), BW_EINVAL);
  assert_int_equal(bw_retry_stats(NULL, &rm), BW_EINVAL);
  ro.capacity = 1;
  ro.target = BW_PID_NONE; /* every request names its target */
  ro.attempt_timeout_ms = BW_RETRY_DELAY_MAX_MS;
  assert_int_equal(bw_retry_new(rt, &ro, &pol), 0);
  assert_int_equal(bw_retry_stats(pol, NULL), BW_EINVAL);
  assert_int_equal(bw_retry_child_spec(pol, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_retry_child_spec(pol, "r", NULL), BW_EINVAL);
  assert_int_equal(bw_retry_pid(pol), BW_PID_NONE);
  assert_int_equal(bw_retry_stop(pol), 0); /* nothing runs */
  assert_int_equal(bw_retry_start(pol, &ex), 0);
  assert_int_equal(bw_retry_start(pol, NULL), BW_EALREADY);

  /* call_pack */
  uint8_t buf[BW_MSG_INLINE_MAX];
  uint8_t big[BW_MSG_INLINE_MAX] = {0};
  size_t len = 0;
  bw_pid_t sink = spawn_echo(rt);
  assert_int_equal(bw_retry_call_pack(NULL, sink, ECHO, NULL, 0, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, sink, ECHO, NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, BW_PID_NONE, ECHO, NULL, 0, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, sink, BW_MSG_SYSTEM_BASE, NULL, 0, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, sink, ECHO, NULL, 4, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, sink, ECHO, big, BW_RETRY_CALL_PAYLOAD_MAX + 1, &len),
                   BW_ETOOBIG);

  /* the executor's answers: a plain request without a target, a malformed
   * named call, a full table */
  bw_reply_t r;
  assert_int_equal(bw_call(rt, ex, ECHO, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call(rt, ex, BW_MSG_RETRY_CALL, buf, 2, 0, &r), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, sink, ECHO, NULL, 0, &len), 0);
  assert_int_equal(bw_call(rt, ex, BW_MSG_RETRY_CALL, buf, len, 0, &r), 0);
  bw_pid_t probe = spawn_probe(rt);
  held_req_t hold = {.to = ex, .type = BW_MSG_RETRY_CALL};
  assert_int_equal(bw_retry_call_pack(hold.buf, sink, SINK, NULL, 0, &hold.len), 0);
  /* the probe's request holds the only slot: the target never answers */
  assert_int_equal(in_actor(rt, probe, p_request_held, &hold), 0);
  BWT_POLL(bw_retry_stats(pol, &rm) == 0 && rm.in_flight == 1);
  assert_int_equal(bw_call(rt, ex, BW_MSG_RETRY_CALL, buf, len, 0, &r), BW_ELIMIT);
  assert_int_equal(bw_retry_stats(pol, &rm), 0);
  assert_int_equal(rm.rejected, 3);
  /* stop and destroy on a scheduler thread: refused, nothing stopped */
  assert_int_equal(in_actor(rt, probe, p_retry_stop, pol), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_retry_destroy, pol), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, ex));

  /* after the runtime stopped */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_retry_start(pol, &ex), BW_ESHUTDOWN);
  assert_int_equal(bw_retry_stop(pol), 0); /* gone with the runtime */
  assert_int_equal(bw_retry_stats(pol, &rm), 0);
  assert_int_equal(bw_retry_destroy(pol), 0);
  assert_int_equal(bw_retry_budget_deposit(&bu), 0); /* plain memory: still works */
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* policy.h                                                                     */
/* ============================================================================ */

#define PO_BAD(body)                                                                         \
  do {                                                                                       \
    bw_policy_opts_t o_;                                                                     \
    bw_policy_opts_init(&o_);                                                                \
    o_.target = 777;                                                                         \
    { bw_policy_opts_t *o = &o_; body; }                                                     \
    assert_int_equal(bw_policy_opts_validate(&o_), BW_EINVAL);                               \
  } while (0)

static int fb_any(int status, int cause, const bw_msg_t *req, bw_policy_answer_t *out,
                  void *arg) {
  (void)status;
  (void)cause;
  (void)req;
  (void)out;
  (void)arg;
  return 1; /* declines */
}

static int p_policy_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_policy_stop(arg);
}

static int p_policy_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_policy_destroy(arg);
}

static bw_policy_t *mk_policy(bw_runtime_t *rt, const bw_policy_opts_t *o) {
  bw_policy_t *p = NULL;
  assert_int_equal(bw_policy_new(rt, o, &p), 0);
  assert_non_null(p);
  return p;
}

static void test_policy_errors(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_policy_opts_t o;
  bw_policy_opts_init(&o);
  o.target = 777;
  assert_int_equal(bw_policy_opts_validate(&o), 0);
  assert_int_equal(bw_policy_opts_validate(NULL), BW_EINVAL);
  PO_BAD(o->target = BW_PID_NONE);               /* no target */
  PO_BAD(o->target_name = "users");              /* both */
  PO_BAD(o->target = BW_PID_NONE; o->target_name = "");
  PO_BAD(o->target = BW_PID_NONE; o->target_name = long_name(BW_NAME_MAX + 1));
  PO_BAD(o->name = long_name(BW_POLICY_NAME_MAX + 1));
  PO_BAD(o->capacity = 0);
  PO_BAD(o->capacity = BW_POLICY_CAPACITY_MAX + 1);
  PO_BAD(o->max_attempts = 0);
  PO_BAD(o->max_attempts = BW_RETRY_ATTEMPTS_MAX + 1);
  PO_BAD(o->backoff.max_ms = 1);
  PO_BAD(o->deadline_ms = (uint64_t)-1);         /* a negative duration, cast */
  PO_BAD(o->attempt_timeout_ms = (uint64_t)-20);
  PO_BAD(o->rate_wait_ms = BW_POLICY_MS_MAX + 1);
  PO_BAD(o->rate_period_ms = BW_POLICY_MS_MAX + 1);
  PO_BAD(o->max_concurrent = 1; o->max_queued = 1; o->queue_timeout_ms = BW_POLICY_MS_MAX + 1);
  PO_BAD(o->budget = true; o->budget_opts.ratio = NAN);
  PO_BAD(o->budget = true; o->budget_opts.ratio = 2.0);
  PO_BAD(o->budget = true; o->budget_opts.window_ms = 5);
  PO_BAD(o->budget = true; o->budget_opts.min_retries_per_sec = 1000001);
  PO_BAD(o->breaker = true; o->breaker_opts.window_size = 0); /* zero window */
  PO_BAD(o->breaker = true; o->breaker_opts.failure_rate_pct = 101.0);
  PO_BAD(o->rate_limit = true; o->rate = 0; o->rate_burst = 1);
  PO_BAD(o->rate_limit = true; o->rate = 5; o->rate_burst = 0);
  PO_BAD(o->rate_limit = true; o->rate = 5; o->rate_burst = BW_RATELIMIT_MAX_BURST + 1);
  PO_BAD(o->rate_limit = true; o->rate = 2000000000ull; o->rate_burst = 1);
  PO_BAD(o->rate_limit = true; o->rate = 1; o->rate_period_ms = 86400000; o->rate_burst = 1000000);
  PO_BAD(o->max_concurrent = 1; o->max_queued = 1);            /* queue without timeout */
  PO_BAD(o->max_concurrent = 1; o->queue_timeout_ms = 10);     /* timeout without queue */
  PO_BAD(o->max_queued = 1; o->queue_timeout_ms = 10);         /* queue without a limit */
  PO_BAD(o->max_concurrent = BW_POLICY_CAPACITY_MAX + 1);
  PO_BAD(o->max_concurrent = 1; o->max_queued = BW_POLICY_CAPACITY_MAX + 1; o->queue_timeout_ms = 1);
  PO_BAD(o->fallback = fb_any; o->fallback_pid = 778);
  PO_BAD(o->fallback_on = BW_POLICY_FB(BW_POLICY_CAUSE_NONE));
  PO_BAD(o->fallback_on = 1u << 9);
  bw_retry_budget_t zb;
  bw_ratelimit_t zl;
  memset(&zb, 0, sizeof zb);
  memset(&zl, 0, sizeof zl);
  PO_BAD(o->shared_budget = &zb);  /* never initialised */
  PO_BAD(o->shared_limiter = &zl); /* never initialised */

  /* presets */
  assert_int_equal(bw_policy_preset(NULL, &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset("api", NULL), BW_EINVAL);
  assert_int_equal(bw_policy_preset("nope", &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset_kind(-1, &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset_kind(BW_POLICY_PRESET__COUNT, &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset_kind(BW_POLICY_PRESET_API, NULL), BW_EINVAL);
  assert_null(bw_policy_preset_name(BW_POLICY_PRESET__COUNT));
  assert_string_equal(bw_policy_cause_name(99), "unknown");
  assert_int_equal(bw_policy_preset("critical", &o), 0);
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL); /* a preset has no target */

  /* lifecycle */
  bw_policy_t *p = NULL;
  bw_policy_stats_t pm;
  bw_policy_opts_init(&o);
  o.target = 777;
  assert_int_equal(bw_policy_new(NULL, &o, &p), BW_EINVAL);
  assert_int_equal(bw_policy_new(rt, NULL, &p), BW_EINVAL);
  assert_int_equal(bw_policy_new(rt, &o, NULL), BW_EINVAL);
  o.capacity = 0;
  assert_int_equal(bw_policy_new(rt, &o, &p), BW_EINVAL);
  assert_null(p);
  bw_child_spec_t cs;
  assert_int_equal(bw_policy_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_policy_pid(NULL), BW_PID_NONE);
  assert_int_equal(bw_policy_child_spec(NULL, "p", &cs), BW_EINVAL);
  assert_int_equal(bw_policy_stats(NULL, &pm), BW_EINVAL);
  assert_null(bw_policy_breaker(NULL));
  assert_int_equal(bw_policy_destroy(NULL), 0);

  /* the in-caller form */
  bw_policy_ticket_t t, t2;
  bw_policy_ticket_init(&t);
  bw_policy_ticket_init(&t2);
  bw_policy_ticket_init(NULL); /* a no-op */
  bw_breaker_t *br = NULL;
  br = breaker_up(rt);
  bw_policy_opts_init(&o);
  o.target = 777;
  o.shared_breaker = br;
  o.max_concurrent = 1;
  p = mk_policy(rt, &o);
  assert_int_equal(bw_policy_stats(p, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_child_spec(p, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_policy_child_spec(p, "p", NULL), BW_EINVAL);
  assert_int_equal(bw_policy_pid(p), BW_PID_NONE);
  assert_int_equal(bw_policy_stop(p), 0); /* nothing runs */
  assert_int_equal(bw_policy_enter(NULL, &t), BW_EINVAL);
  assert_int_equal(bw_policy_enter(p, NULL), BW_EINVAL);
  bw_policy_ticket_t raw;
  memset(&raw, 0, sizeof raw); /* never initialised */
  assert_int_equal(bw_policy_enter(p, &raw), BW_EINVAL);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), BW_EINVAL); /* not in an attempt */
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_EINVAL); /* in an attempt: exit first */
  assert_int_equal(bw_policy_enter(p, &t2), BW_EBULKHEAD_FULL);
  assert_int_equal(bw_policy_exit(NULL, &t, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_exit(p, NULL, 0, NULL), BW_EINVAL);
  /* BW_POLICY_RETRY is not a status: a final failure, never echoed back */
  assert_int_equal(bw_policy_exit(p, &t, BW_POLICY_RETRY, NULL), BW_EINVAL);
  assert_int_equal(bw_breaker_force_open(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_ECIRCUIT_OPEN);
  assert_int_equal(bw_policy_stats(p, &pm), 0);
  assert_int_equal(pm.rejected_breaker, 1);
  assert_int_equal(pm.rejected_bulkhead, 1);
  assert_ptr_equal(bw_policy_breaker(p), br);
  assert_int_equal(bw_policy_destroy(p), 0);

  bw_policy_opts_init(&o);
  o.target = 777;
  o.rate_limit = true;
  o.rate = 1;
  o.rate_burst = 1;
  p = mk_policy(rt, &o);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_ERATE_LIMITED);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* the deadline passes during a backoff: the re-entry ends it */
  bw_policy_opts_init(&o);
  o.target = 777;
  o.max_attempts = 3;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 100;
  o.deadline_ms = 150;
  p = mk_policy(rt, &o);
  uint64_t retry_in = 0;
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, BW_ETIMEDOUT, &retry_in), BW_POLICY_RETRY);
  assert_int_equal(retry_in, 100);
  assert_int_equal(bw_clock_advance(rt, 200), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_ETIMEDOUT);
  assert_int_equal(t.cause, BW_POLICY_CAUSE_DEADLINE);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* the budget refuses the retry */
  bw_retry_budget_t bu;
  bw_retry_budget_opts_t bop;
  bw_retry_budget_opts_init(&bop);
  bop.ratio = 0.0;
  bop.min_retries_per_sec = 0;
  assert_int_equal(bw_retry_budget_init(&bu, rt, &bop), 0);
  bw_policy_opts_init(&o);
  o.target = 777;
  o.max_attempts = 2;
  o.shared_budget = &bu;
  p = mk_policy(rt, &o);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, BW_ETIMEDOUT, NULL), BW_EBUDGET);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* the executor: its refusals at the door, and destroy on a scheduler
   * thread */
  bw_pid_t sink = spawn_echo(rt);
  bw_pid_t probe = spawn_probe(rt);
  bw_policy_opts_init(&o);
  o.target = sink;
  o.capacity = 1;
  o.breaker = true; /* its own breaker: its actor starts with the executor */
  p = mk_policy(rt, &o);
  bw_pid_t ex = BW_PID_NONE;
  assert_int_equal(bw_policy_start(p, &ex), 0);
  assert_int_equal(bw_policy_pid(p), ex);
  assert_int_equal(bw_policy_start(p, NULL), BW_EALREADY);
  bw_reply_t r;
  assert_int_equal(bw_call(rt, ex, BW_MSG_POLICY_BASE, NULL, 0, 0, &r), BW_EINVAL);
  held_req_t hold = {.to = ex, .type = SINK};
  assert_int_equal(in_actor(rt, probe, p_request_held, &hold), 0);
  BWT_POLL(bw_policy_stats(p, &pm) == 0 && pm.in_flight == 1);
  assert_int_equal(bw_call(rt, ex, SINK, NULL, 0, 0, &r), BW_ELIMIT);
  assert_int_equal(bw_policy_stats(p, &pm), 0);
  assert_int_equal(pm.refused, 2);
  assert_int_equal(in_actor(rt, probe, p_policy_stop, p), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_policy_destroy, p), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, ex)); /* refused before anything was stopped */
  assert_true(bw_is_alive(rt, bw_breaker_pid(bw_policy_breaker(p))));
  /* stop: the executor goes, the policy's own breaker stays for the next */
  assert_int_equal(bw_policy_stop(p), 0);
  assert_false(bw_is_alive(rt, ex));
  assert_int_equal(bw_policy_pid(p), BW_PID_NONE);
  assert_true(bw_is_alive(rt, bw_breaker_pid(bw_policy_breaker(p))));
  assert_int_equal(bw_policy_start(p, &ex), 0);

  assert_int_equal(bw_policy_destroy(p), 0);

  /* a supervised executor: start, stop and destroy refuse while it runs */
  bw_policy_opts_init(&o);
  o.target = sink;
  p = mk_policy(rt, &o);
  static bw_child_spec_t ekids[1];
  assert_int_equal(bw_policy_child_spec(p, "exec", &ekids[0]), 0);
  static const bw_sup_spec_t espec = {.name = "execsup", .strategy = BW_ONE_FOR_ONE,
                                      .intensity = 3, .children = ekids, .nchildren = 1};
  bw_pid_t esup;
  assert_int_equal(bw_supervisor_start(rt, &espec, &esup, NULL), 0);
  assert_int_not_equal(bw_policy_pid(p), BW_PID_NONE);
  assert_int_equal(bw_policy_start(p, NULL), BW_EALREADY);
  assert_int_equal(bw_policy_stop(p), BW_ERUNNING);
  assert_int_equal(bw_policy_destroy(p), BW_ERUNNING);
  assert_int_equal(bw_sup_stop(rt, esup), 0);
  assert_int_equal(bw_policy_pid(p), BW_PID_NONE);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* its own breaker supervised elsewhere: destroy refuses, frees nothing,
   * and succeeds once the supervisor is gone */
  bw_policy_opts_init(&o);
  o.target = sink;
  o.breaker = true;
  p = mk_policy(rt, &o);
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_breaker_child_spec(bw_policy_breaker(p), "pbr", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "polsup", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 3, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_policy_destroy(p), BW_ERUNNING);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* after the runtime stopped */
  bw_policy_opts_init(&o);
  o.target = 777;
  p = mk_policy(rt, &o);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_policy_start(p, &ex), BW_ESHUTDOWN);
  assert_int_equal(bw_policy_enter(p, &t), 0); /* the in-caller form needs no actor */
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  assert_int_equal(bw_breaker_destroy(br), 0);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* resilience.h                                                                 */
/* ============================================================================ */

/* A classifier that holds its breaker's actor inside its handler until
 * released: keeps the registry's keeper waiting in its shutdown. */
typedef struct gate {
  bwt_sync_t sync;
  bool entered, released;
} gate_t;

static int gate_classify(int status, void *arg) {
  gate_t *g = arg;
  bwt_lock(&g->sync);
  g->entered = true;
  pthread_cond_broadcast(&g->sync.cv);
  while (!g->released)
    pthread_cond_wait(&g->sync.cv, &g->sync.mu);
  bwt_unlock(&g->sync);
  return status == 0 ? BW_BREAKER_SUCCESS : BW_BREAKER_FAILURE;
}

typedef struct destroy_arg {
  bw_resilience_t *reg;
  int rc;
} destroy_arg_t;

static void *destroy_in_thread(void *arg) {
  destroy_arg_t *d = arg;
  d->rc = bw_resilience_destroy(d->reg);
  return NULL;
}

static int p_resilience_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_resilience_stop(arg);
}

static int p_resilience_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_resilience_destroy(arg);
}

static int count_entries(const bw_resilience_entry_t *e, void *arg) {
  (void)e;
  ++*(int *)arg;
  return 0;
}

static void test_resilience_errors(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe = spawn_probe(rt);
  bw_resilience_t *reg = NULL;
  bw_resilience_opts_t ro;
  bw_resilience_opts_init(&ro);
  bw_resilience_opts_init(NULL); /* a no-op */
  assert_int_equal(bw_resilience_opts_validate(&ro), 0);
  assert_int_equal(bw_resilience_opts_validate(NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_new(NULL, NULL, &reg), BW_EINVAL);
  assert_int_equal(bw_resilience_new(rt, NULL, NULL), BW_EINVAL);
  ro.capacity = 0;
  assert_int_equal(bw_resilience_opts_validate(&ro), BW_EINVAL);
  assert_int_equal(bw_resilience_new(rt, &ro, &reg), BW_EINVAL);
  ro.capacity = 65537;
  assert_int_equal(bw_resilience_new(rt, &ro, &reg), BW_EINVAL);
  assert_null(reg);
  bw_child_spec_t cs;
  assert_int_equal(bw_resilience_child_spec(NULL, "k", &cs), BW_EINVAL);
  assert_int_equal(bw_resilience_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_destroy(NULL), 0);
  assert_int_equal(bw_resilience_pid(NULL), BW_PID_NONE);

  ro.capacity = 2;
  assert_int_equal(bw_resilience_new(rt, &ro, &reg), 0);
  assert_int_equal(bw_resilience_pid(reg), BW_PID_NONE);
  assert_int_equal(bw_resilience_stop(reg), 0); /* no keeper: nothing to stop */
  assert_int_equal(bw_resilience_start(reg, NULL), 0);
  assert_int_equal(bw_resilience_start(reg, NULL), BW_EALREADY);
  bw_breaker_t *br = NULL;
  bw_bulkhead_t *pool = NULL;
  bw_breaker_opts_t bad_br;
  bw_breaker_opts_init(&bad_br);
  bad_br.open_ms = 0;
  bw_bulkhead_opts_t po, bad_po;
  bw_bulkhead_opts_init(&po);
  bad_po = po;
  bad_po.workers = 0;
  bw_resilience_stats_t hs;

  assert_int_equal(bw_resilience_breaker(NULL, "a", NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, NULL, NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "", NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, long_name(BW_RESILIENCE_NAME_MAX + 1), NULL, &br),
                   BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "a", NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "a", &bad_br, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_pool(NULL, "p", &po, &pool), BW_EINVAL);
  assert_int_equal(bw_resilience_pool(reg, NULL, &po, &pool), BW_EINVAL);
  assert_int_equal(bw_resilience_pool(reg, "p", &po, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_pool(reg, "p", NULL, &pool), BW_EINVAL); /* opts required */
  assert_int_equal(bw_resilience_pool(reg, "p", &bad_po, &pool), BW_EINVAL);
  assert_int_equal(bw_resilience_find_breaker(reg, "a", &br), BW_ENOTFOUND);
  assert_int_equal(bw_resilience_find_pool(reg, "p", &pool), BW_ENOTFOUND);

  assert_int_equal(bw_resilience_breaker(reg, "a", NULL, &br), 0);
  assert_int_equal(bw_resilience_pool(reg, "p", &po, &pool), 0);
  /* a name of the other kind */
  assert_int_equal(bw_resilience_pool(reg, "a", &po, &pool), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "p", NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_find_breaker(reg, "p", &br), BW_ENOTFOUND);
  assert_int_equal(bw_resilience_find_pool(reg, "a", &pool), BW_ENOTFOUND);
  /* full (capacity 2) */
  assert_int_equal(bw_resilience_breaker(reg, "b", NULL, &br), BW_ELIMIT);
  assert_int_equal(bw_resilience_pool(reg, "q", &po, &pool), BW_ELIMIT);
  /* lookups */
  assert_int_equal(bw_resilience_find_breaker(NULL, "a", &br), BW_EINVAL);
  assert_int_equal(bw_resilience_find_breaker(reg, NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_find_breaker(reg, "a", NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_find_pool(NULL, "p", &pool), BW_EINVAL);
  assert_int_equal(bw_resilience_find_pool(reg, "", &pool), BW_EINVAL);
  assert_int_equal(bw_resilience_find_pool(reg, "p", NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_find_breaker(reg, "a", &br), 0);
  assert_int_equal(bw_resilience_find_pool(reg, "p", &pool), 0);
  /* whole-registry calls */
  int n = 0;
  assert_int_equal(bw_resilience_foreach(NULL, count_entries, &n), BW_EINVAL);
  assert_int_equal(bw_resilience_foreach(reg, NULL, &n), BW_EINVAL);
  assert_int_equal(bw_resilience_foreach(reg, count_entries, &n), 2);
  assert_int_equal(n, 2);
  assert_int_equal(bw_resilience_reset_breakers(NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_reset_breakers(reg), 1);
  assert_int_equal(bw_resilience_stats(NULL, &hs), BW_EINVAL);
  assert_int_equal(bw_resilience_stats(reg, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_stats(reg, &hs), 0);
  assert_int_equal(hs.pools, 1);
  /* destroy on a scheduler thread: refused, nothing stopped */
  bw_pid_t keeper = bw_resilience_pid(reg);
  bw_pid_t pool_pid = bw_bulkhead_pid(pool);
  assert_int_equal(in_actor(rt, probe, p_resilience_stop, reg), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_resilience_destroy, reg), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, keeper));
  assert_true(bw_is_alive(rt, pool_pid));
  assert_int_equal(bw_resilience_find_breaker(reg, "a", &br), 0);
  assert_int_equal(bw_resilience_destroy(reg), 0);
  assert_false(bw_is_alive(rt, keeper));
  assert_false(bw_is_alive(rt, pool_pid));

  /* while the registry is stopping: creation is refused. A breaker whose
   * actor is held in its classifier keeps the keeper waiting. */
  static gate_t gate = {BWT_SYNC_INIT, false, false};
  bw_pid_t echo = spawn_echo(rt);
  assert_int_equal(bw_resilience_new(rt, NULL, &reg), 0);
  assert_int_equal(bw_resilience_start(reg, NULL), 0);
  bw_breaker_opts_t gb;
  bw_breaker_opts_init(&gb);
  gb.target = echo;
  gb.classify = gate_classify;
  gb.classify_arg = &gate;
  assert_int_equal(bw_resilience_breaker(reg, "gated", &gb, &br), 0);
  held_req_t hold = {.to = bw_breaker_pid(br), .type = ECHO};
  assert_int_equal(in_actor(rt, probe, p_request_held, &hold), 0);
  BWT_AWAIT(&gate.sync, gate.entered);
  destroy_arg_t d = {reg, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, destroy_in_thread, &d), 0);
  BWT_POLL(bw_resilience_pool(reg, "nope", NULL, &pool) == BW_ESHUTDOWN);
  assert_int_equal(bw_resilience_breaker(reg, "late", NULL, &br), BW_ESHUTDOWN);
  assert_int_equal(bw_resilience_pool(reg, "late", &po, &pool), BW_ESHUTDOWN);
  bwt_lock(&gate.sync);
  gate.released = true;
  bwt_unlock_signal(&gate.sync);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(d.rc, 0);

  /* after the runtime stopped: no keeper can start; destroy frees */
  assert_int_equal(bw_resilience_new(rt, NULL, &reg), 0);
  assert_int_equal(bw_resilience_breaker(reg, "a", NULL, &br), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_resilience_start(reg, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_resilience_destroy(reg), 0);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* metrics.h                                                                    */
/* ============================================================================ */

static int p_metrics_collect(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_metrics_collect(arg, 0);
}

static int p_metrics_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_metrics_stop(arg);
}

static int p_metrics_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_metrics_destroy(arg);
}

static void test_metrics_errors(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe = spawn_probe(rt);
  bw_metrics_t *m = NULL;
  bw_metrics_opts_t o;
  bw_child_spec_t cs;

  /* options and lifecycle */
  assert_int_equal(bw_metrics_new(NULL, NULL, &m), BW_EINVAL);
  assert_int_equal(bw_metrics_new(rt, NULL, NULL), BW_EINVAL);
#define MO_BAD(field, value)                                                                 \
  do {                                                                                       \
    bw_metrics_opts_init(&o);                                                                \
    o.field = value;                                                                         \
    assert_int_equal(bw_metrics_opts_validate(&o), BW_EINVAL);                               \
    assert_int_equal(bw_metrics_new(rt, &o, &m), BW_EINVAL);                                 \
  } while (0)
  MO_BAD(period_ms, 0);
  MO_BAD(period_ms, 86400001);
  MO_BAD(max_families, 0);
  MO_BAD(max_families, 4097);
  MO_BAD(max_series, 0);
  MO_BAD(max_series, 65537);
  MO_BAD(max_cells, 63);
  MO_BAD(max_cells, (1u << 22) + 1);
#undef MO_BAD
  assert_null(m);
  assert_int_equal(bw_metrics_child_spec(NULL, "m", &cs), BW_EINVAL);
  assert_int_equal(bw_metrics_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_destroy(NULL), 0);
  assert_int_equal(bw_metrics_collect(NULL, 0), BW_EINVAL);
  assert_int_equal(bw_metrics_pid(NULL), BW_PID_NONE);

  bw_metrics_opts_init(&o);
  o.runtime_metrics = false;
  o.max_families = 7;
  o.max_series = 2;
  o.max_cells = 64;
  assert_int_equal(bw_metrics_new(rt, &o, &m), 0);
  assert_int_equal(bw_metrics_child_spec(m, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_metrics_child_spec(m, "m", NULL), BW_EINVAL);
  /* no actor yet */
  assert_int_equal(bw_metrics_stop(m), 0);
  assert_int_equal(bw_metrics_collect(m, 0), BW_ENOPROC);
  bw_metrics_snapshot_t *snap = NULL;
  assert_int_equal(bw_metrics_latest(m, &snap), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_latest(NULL, &snap), BW_EINVAL);
  assert_int_equal(bw_metrics_latest(m, NULL), BW_EINVAL);
  char buf[64];
  size_t len = 0;
  char *text = NULL;
  assert_int_equal(bw_metrics_render(m, BW_METRICS_PROMETHEUS, buf, sizeof buf, &len),
                   BW_ENOTFOUND);
  assert_int_equal(bw_metrics_render(NULL, BW_METRICS_PROMETHEUS, buf, sizeof buf, &len),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_JSON, &text, &len), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_render_alloc(NULL, BW_METRICS_JSON, &text, &len), BW_EINVAL);

  /* families */
  bw_metric_family_t *f = NULL, *hf = NULL;
  static const char *const lab1[] = {"path"};
  static const char *const lab_dup[] = {"a", "a"};
  static const char *const lab_le[] = {"le"};
  static const char *const lab_bad[] = {"__x"};
  static const char *const lab9[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  assert_int_equal(bw_metrics_family(NULL, BW_METRIC_COUNTER, "c_total", NULL, NULL, 0, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, NULL, 0, NULL),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, (bw_metric_type_t)3, "c_total", NULL, NULL, 0, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, NULL, NULL, NULL, 0, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "", NULL, NULL, 0, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "1abc", NULL, NULL, 0, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "a-b", NULL, NULL, 0, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, long_name(BW_METRICS_NAME_MAX + 1),
                                     NULL, NULL, 0, &f),
                   BW_EINVAL);
  static char help[BW_METRICS_HELP_MAX + 2];
  memset(help, 'h', BW_METRICS_HELP_MAX + 1);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", help, NULL, 0, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, lab_dup, 2, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, lab_bad, 1, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, lab9, 9, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, NULL, 1, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "h_seconds", NULL, lab_le, 1, &hf),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, lab1, 1, &f), 0);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_GAUGE, "c_total", NULL, NULL, 0, &f), BW_EEXIST);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "h_seconds", NULL, NULL, 0, &hf), 0);
  /* a name a histogram exposes */
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "h_seconds_count", NULL, NULL, 0, &f),
                   BW_EEXIST);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", NULL, lab1, 1, &f),
                   BW_EEXIST);

  /* series */
  bw_counter_t *c = NULL;
  bw_gauge_t *g = NULL;
  bw_histogram_t *h = NULL;
  static const char *const v_null[] = {NULL};
  const char *v_long[] = {long_name(BW_METRICS_VALUE_MAX + 1)};
  static const char *const v1[] = {"/a"}, *const v2[] = {"/b"}, *const v3[] = {"/c"};
  assert_int_equal(bw_metrics_counter(NULL, v1, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(f, v1, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(f, NULL, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(f, v_null, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(f, v_long, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_gauge(f, v1, &g), BW_EINVAL);     /* another type */
  assert_int_equal(bw_metrics_histogram(f, v1, &h), BW_EINVAL); /* another type */
  assert_int_equal(bw_metrics_counter(f, v1, &c), 0);
  assert_int_equal(bw_metrics_counter(f, v2, &c), 0);
  assert_int_equal(bw_metrics_counter(f, v3, &c), BW_ELIMIT); /* max_series 2 */
  /* a histogram needs BW_HISTOGRAM_CELLS cells per thread slot: more than 64 */
  assert_int_equal(bw_metrics_histogram(hf, NULL, &h), BW_ELIMIT);
  assert_int_equal(bw_metrics_counter_new(m, "x_total", NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_gauge_new(m, "g", NULL, &g), 0);
  assert_int_equal(bw_metrics_gauge_new(m, "g", NULL, &g), BW_EEXIST);
  assert_int_equal(bw_metrics_histogram_new(m, "bad name", NULL, &h), BW_EINVAL);
  /* updates */
  assert_int_equal(bw_counter_add(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_counter_inc(NULL), BW_EINVAL);
  assert_int_equal(bw_counter_add((bw_counter_t *)(void *)g, 1), BW_EINVAL); /* not a counter */
  assert_int_equal(bw_gauge_set(NULL, 1.0), BW_EINVAL);
  assert_int_equal(bw_gauge_add(NULL, 1.0), BW_EINVAL);
  assert_int_equal(bw_gauge_set((bw_gauge_t *)(void *)c, 1.0), BW_EINVAL);
  assert_int_equal(bw_histogram_record(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_histogram_record((bw_histogram_t *)(void *)c, 1), BW_EINVAL);
  assert_int_equal(bw_counter_add(c, 1), 0);
  assert_int_equal(bw_gauge_set(g, 2.5), 0);
  /* families full: 3 of 7 taken; a breaker source needs 6 more */
  assert_int_equal(bw_metrics_family(m, BW_METRIC_GAUGE, "g2", NULL, NULL, 0, &f), 0);
  bw_breaker_t *br = NULL;
  br = breaker_up(rt);
  assert_int_equal(bw_metrics_add_breaker(m, br), BW_ELIMIT);
  /* (max_series 2 < the four results of bulwark_breaker_calls_total) */
  /* max_families: more families are refused once 7 exist */
  int frc = 0, k = 0;
  for (; k < 8 && frc == 0; k++) {
    char nm[16];
    snprintf(nm, sizeof nm, "fill%d", k);
    frc = bw_metrics_family(m, BW_METRIC_GAUGE, nm, NULL, NULL, 0, &f);
  }
  assert_int_equal(frc, BW_ELIMIT);
  assert_true(k <= 4); /* 4 of the 7 were taken, and those the source made */
  assert_int_equal(bw_metrics_destroy(m), 0);

  /* sources and subscribers on a registry with room */
  assert_int_equal(bw_metrics_new(rt, NULL, &m), 0);
  assert_int_equal(bw_metrics_start(m, NULL), 0);
  assert_int_equal(bw_metrics_start(m, NULL), BW_EALREADY);
  assert_int_equal(bw_metrics_add_breaker(NULL, br), BW_EINVAL);
  assert_int_equal(bw_metrics_add_breaker(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_breaker(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_breaker(m, br), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_add_breaker(m, br), 0);
  assert_int_equal(bw_metrics_add_breaker(m, br), BW_EEXIST);
  assert_int_equal(bw_metrics_remove_breaker(m, br), 0);
  assert_int_equal(bw_metrics_add_bulkhead(m, BW_PID_NONE, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_bulkhead(m, BW_PID_NONE, ""), BW_EINVAL);
  assert_int_equal(bw_metrics_add_bulkhead(m, BW_PID_NONE, long_name(BW_METRICS_VALUE_MAX + 1)),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_add_bulkhead(NULL, BW_PID_NONE, "db"), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_bulkhead(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_bulkhead(m, "db"), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_add_bulkhead(m, BW_PID_NONE, "db"), 0);
  assert_int_equal(bw_metrics_add_bulkhead(m, BW_PID_NONE, "db"), BW_EEXIST);
  bw_retry_t *rp = NULL;
  bw_retry_opts_t rop;
  bw_retry_opts_init(&rop);
  rop.target = 777;
  assert_int_equal(bw_retry_new(rt, &rop, &rp), 0); /* no name */
  assert_int_equal(bw_metrics_add_retry(m, NULL, "r"), BW_EINVAL);
  assert_int_equal(bw_metrics_add_retry(m, rp, NULL), BW_EINVAL); /* no name at all */
  assert_int_equal(bw_metrics_remove_retry(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_retry(m, rp), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_add_retry(m, rp, "r"), 0);
  assert_int_equal(bw_metrics_add_retry(m, rp, "r"), BW_EEXIST);
  assert_int_equal(bw_metrics_add_actor(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_actor(m, ""), BW_EINVAL);
  assert_int_equal(bw_metrics_add_actor(NULL, "a"), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_actor(NULL, "a"), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_breaker(NULL, br), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_bulkhead(NULL, "db"), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_retry(NULL, rp), BW_EINVAL);
  assert_int_equal(bw_metrics_add_retry(NULL, rp, "r"), BW_EINVAL);
  assert_int_equal(bw_metrics_add_actor(m, long_name(BW_NAME_MAX + 1)), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_actor(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_actor(m, "a"), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_add_actor(m, "a"), 0);
  assert_int_equal(bw_metrics_add_actor(m, "a"), BW_EEXIST);
  assert_int_equal(bw_metrics_subscribe(NULL, probe), BW_EINVAL);
  assert_int_equal(bw_metrics_subscribe(m, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_metrics_unsubscribe(NULL, probe), BW_EINVAL);
  assert_int_equal(bw_metrics_unsubscribe(m, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_metrics_unsubscribe(m, probe), BW_ENOTFOUND);
  for (bw_pid_t i = 0; i < BW_METRICS_SUBSCRIBERS_MAX; i++)
    assert_int_equal(bw_metrics_subscribe(m, probe + 1000 + i), 0);
  assert_int_equal(bw_metrics_subscribe(m, probe), BW_ELIMIT);
  assert_int_equal(bw_metrics_subscribe(m, probe + 1000), 0); /* again: idempotent */
  for (bw_pid_t i = 0; i < BW_METRICS_SUBSCRIBERS_MAX; i++)
    assert_int_equal(bw_metrics_unsubscribe(m, probe + 1000 + i), 0);

  /* snapshots */
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(bw_metrics_latest(m, &snap), 0);
  double v;
  bw_histogram_summary_t hsum;
  bw_metric_family_info_t fi;
  bw_metric_series_info_t si;
  assert_int_equal(bw_metrics_snapshot_value(NULL, "x", NULL, 0, &v), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_value(snap, NULL, NULL, 0, &v), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_value(snap, "x", NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_value(snap, "x", NULL, 1, &v), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_value(snap, "x", v_null, 1, &v), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_value(snap, "nope", NULL, 0, &v), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_snapshot_value(snap, "bulwark_actors_live", NULL, 0, &v), 0);
  assert_int_equal(bw_metrics_snapshot_histogram(NULL, "x", NULL, 0, &hsum), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_histogram(snap, "x", NULL, 0, NULL), BW_EINVAL);
  /* a counter is not a histogram */
  assert_int_equal(bw_metrics_snapshot_histogram(snap, "bulwark_actors_live", NULL, 0, &hsum),
                   BW_ENOTFOUND);
  size_t nf = bw_metrics_snapshot_nfamilies(snap);
  assert_true(nf > 0);
  assert_int_equal(bw_metrics_snapshot_nfamilies(NULL), 0);
  assert_int_equal(bw_metrics_snapshot_seq(NULL), 0);
  assert_int_equal(bw_metrics_snapshot_time_ns(NULL), 0);
  assert_int_equal(bw_metrics_snapshot_family(NULL, 0, &fi), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_family(snap, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_family(snap, nf, &fi), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_family(snap, 0, &fi), 0);
  assert_int_equal(bw_metrics_snapshot_series(NULL, 0, 0, &si), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_series(snap, 0, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_series(snap, nf, 0, &si), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_series(snap, 0, fi.nseries, &si), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render(NULL, BW_METRICS_JSON, buf, sizeof buf, &len),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render(snap, BW_METRICS_JSON, buf, sizeof buf, NULL),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render(snap, 2, buf, sizeof buf, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render(snap, BW_METRICS_JSON, NULL, 1, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render(snap, BW_METRICS_JSON, buf, sizeof buf, &len),
                   BW_ETOOBIG);
  assert_true(len >= sizeof buf);
  assert_int_equal(strlen(buf), sizeof buf - 1); /* a terminated prefix */
  assert_int_equal(bw_metrics_snapshot_render(snap, BW_METRICS_PROMETHEUS, NULL, 0, &len),
                   BW_ETOOBIG); /* size query */
  assert_int_equal(bw_metrics_snapshot_render_alloc(NULL, BW_METRICS_JSON, &text, &len),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render_alloc(snap, BW_METRICS_JSON, NULL, &len),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render_alloc(snap, -1, &text, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_render(m, BW_METRICS_PROMETHEUS, buf, sizeof buf, &len), BW_ETOOBIG);
  assert_int_equal(bw_metrics_render_alloc(m, 7, &text, &len), BW_EINVAL);
  bw_metrics_snapshot_release(snap);
  bw_metrics_snapshot_release(NULL); /* a no-op */
  /* histogram helpers */
  uint64_t buckets[BW_HISTOGRAM_BUCKETS] = {0};
  assert_int_equal(bw_histogram_summarize(NULL, 0, 0, &hsum), BW_EINVAL);
  assert_int_equal(bw_histogram_summarize(buckets, 0, 0, NULL), BW_EINVAL);
  buckets[3] = 1;
  assert_int_equal(bw_histogram_quantile(buckets, 4, 0.0), 0);
  assert_int_equal(bw_histogram_quantile(buckets, 4, 1.5), 0);
  assert_int_equal(bw_histogram_quantile(NULL, 4, 0.5), 0);
  assert_int_equal(bw_histogram_quantile(buckets, 4, 0.5), 4);

  /* blocking calls on a scheduler thread: refused, the actor untouched */
  bw_pid_t actor = bw_metrics_pid(m);
  assert_int_equal(in_actor(rt, probe, p_metrics_collect, m), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_metrics_stop, m), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_metrics_destroy, m), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, actor));
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(bw_metrics_stop(m), 0);
  assert_int_equal(bw_metrics_stop(m), 0); /* stopped twice: nothing to do */
  assert_int_equal(bw_metrics_destroy(m), 0);

  /* supervised */
  assert_int_equal(bw_metrics_new(rt, NULL, &m), 0);
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_metrics_child_spec(m, "metrics", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "msup", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 3, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_metrics_stop(m), BW_ERUNNING);
  assert_int_equal(bw_metrics_destroy(m), BW_ERUNNING);
  assert_int_equal(bw_metrics_start(m, NULL), BW_EALREADY);
  assert_int_equal(bw_sup_stop(rt, sup), 0);

  /* after the runtime stopped */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_metrics_start(m, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_metrics_collect(m, 0), BW_ENOPROC);
  assert_int_equal(bw_metrics_stop(m), 0);
  assert_int_equal(bw_metrics_destroy(m), 0);
  assert_int_equal(bw_breaker_destroy(br), 0);
  assert_int_equal(bw_retry_destroy(rp), 0);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* health.h                                                                     */
/* ============================================================================ */

static int hc_ok(void *arg, char *reason, size_t cap) {
  (void)arg;
  (void)reason;
  (void)cap;
  return BW_HEALTH_HEALTHY;
}

static int hr_noop(void *arg, const char *component) {
  (void)arg;
  (void)component;
  return 0;
}

static int p_health_flush(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_health_flush(arg, 0);
}

static int p_health_stop(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_health_stop(arg);
}

static int p_health_destroy(bw_ctx_t *ctx, void *arg) {
  (void)ctx;
  return bw_health_destroy(arg);
}

/* bw_health_answer from an actor: bad arguments, and a message that is not
 * a request (bw_reply's BW_EINVAL) */
static int p_health_answer(bw_ctx_t *ctx, void *arg) {
  (void)arg;
  bw_msg_t not_req = {.type = BW_HEALTH_MSG_CHECK};
  bw_msg_t req = {.type = BW_HEALTH_MSG_CHECK, .flags = BW_MSGF_REQUEST};
  int bad = 0;
  bad |= bw_health_answer(NULL, &req, BW_HEALTH_HEALTHY, NULL) != BW_EINVAL;
  bad |= (bw_health_answer(ctx, NULL, BW_HEALTH_HEALTHY, NULL) != BW_EINVAL) << 1;
  bad |= (bw_health_answer(ctx, &req, 3, NULL) != BW_EINVAL) << 2;
  bad |= (bw_health_answer(ctx, &req, -1, NULL) != BW_EINVAL) << 3;
  bad |= (bw_health_answer(ctx, &not_req, BW_HEALTH_HEALTHY, "x") != BW_EINVAL) << 4;
  return bad;
}

#define HC_BAD(kind, body)                                                                   \
  do {                                                                                       \
    bw_health_component_t c_;                                                                \
    bw_health_component_init(&c_, kind, "comp");                                             \
    { bw_health_component_t *c = &c_; body; }                                                \
    assert_int_equal(bw_health_add(h, &c_), BW_EINVAL);                                      \
  } while (0)

#define HO_BAD(body)                                                                         \
  do {                                                                                       \
    bw_health_opts_t o_;                                                                     \
    bw_health_opts_init(&o_);                                                                \
    { bw_health_opts_t *o = &o_; body; }                                                     \
    assert_int_equal(bw_health_opts_validate(&o_), BW_EINVAL);                               \
    assert_int_equal(bw_health_new(rt, &o_, &h), BW_EINVAL);                                 \
  } while (0)

static void test_health_errors(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe = spawn_probe(rt);
  bw_health_t *h = NULL;
  bw_health_opts_t ho;
  bw_health_opts_init(&ho);
  assert_int_equal(bw_health_opts_validate(&ho), 0);
  assert_int_equal(bw_health_opts_validate(NULL), BW_EINVAL);
  HO_BAD(o->period_ms = 0);
  HO_BAD(o->period_ms = BW_HEALTH_MAX_MS + 1);
  HO_BAD(o->max_components = 0);
  HO_BAD(o->max_components = BW_HEALTH_MAX_COMPONENTS + 1);
  HO_BAD(o->restart_limit = 1001);
  HO_BAD(o->restart_window_ms = 0);
  HO_BAD(o->restart_window_ms = (uint64_t)-1);
  HO_BAD(o->escalation_hold_ms = BW_HEALTH_MAX_MS + 1);
  HO_BAD(o->hang_hold_ms = BW_HEALTH_MAX_MS + 1);
  HO_BAD(o->hang_status = 3);
  HO_BAD(o->name = "");
  HO_BAD(o->name = long_name(BW_HEALTH_NAME_MAX));
  assert_null(h);
  assert_int_equal(bw_health_new(NULL, NULL, &h), BW_EINVAL);
  assert_int_equal(bw_health_new(rt, NULL, NULL), BW_EINVAL);
  bw_child_spec_t cs;
  assert_int_equal(bw_health_child_spec(NULL, "h", &cs), BW_EINVAL);
  assert_int_equal(bw_health_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_health_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_health_destroy(NULL), 0);
  assert_int_equal(bw_health_pid(NULL), BW_PID_NONE);
  assert_int_equal(bw_health_status(NULL), BW_EINVAL);
  assert_int_equal(bw_health_check_now(NULL), BW_EINVAL);
  assert_int_equal(bw_health_flush(NULL, 0), BW_EINVAL);
  assert_string_equal(bw_health_status_name(9), "unknown");
  assert_string_equal(bw_health_kind_name(0), "unknown");

  /* a handle without a monitor */
  bw_health_opts_init(&ho);
  ho.max_components = 2;
  assert_int_equal(bw_health_new(rt, &ho, &h), 0);
  assert_int_equal(bw_health_child_spec(h, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_health_child_spec(h, "h", NULL), BW_EINVAL);
  assert_int_equal(bw_health_check_now(h), BW_ENOPROC);
  assert_int_equal(bw_health_flush(h, 0), BW_ENOPROC);
  assert_int_equal(bw_health_status(h), BW_HEALTH_UNHEALTHY); /* "monitor not running" */

  /* components */
  bw_breaker_t *br = NULL;
  br = breaker_up(rt);
  bw_health_component_t c;
  bw_health_component_init(NULL, BW_HEALTH_KIND_ACTOR, "x"); /* a no-op */
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "a");
  c.pid = probe;
  assert_int_equal(bw_health_add(NULL, &c), BW_EINVAL);
  assert_int_equal(bw_health_add(h, NULL), BW_EINVAL);
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->name = NULL);
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->name = "");
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->name = long_name(BW_HEALTH_NAME_MAX));
  HC_BAD((bw_health_kind_t)0, c->pid = probe);
  HC_BAD(BW_HEALTH_KIND_RESTARTS, c->pid = probe); /* built in, not for add */
  HC_BAD(BW_HEALTH_KIND_ACTOR, (void)c);            /* no target */
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->target_name = "t"); /* both */
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->target_name = "");
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->target_name = long_name(BW_NAME_MAX));
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->timeout_ms = BW_HEALTH_MAX_MS + 1);
  HC_BAD(BW_HEALTH_KIND_BULKHEAD, c->pid = probe; c->queue_fraction = 0.0);
  HC_BAD(BW_HEALTH_KIND_BULKHEAD, c->pid = probe; c->queue_fraction = 1.5);
  HC_BAD(BW_HEALTH_KIND_CHECK, c->check = NULL);
  HC_BAD(BW_HEALTH_KIND_BREAKER, c->breaker = NULL);
  HC_BAD(BW_HEALTH_KIND_BREAKER, c->breaker = br; c->open_status = 5);
  HC_BAD(BW_HEALTH_KIND_BREAKER, c->breaker = br; c->forced_open_status = -1);
  /* actions that do not fit */
  HC_BAD(BW_HEALTH_KIND_CHECK, c->check = hc_ok; c->action = BW_HEALTH_ACTION_RESTART;
         c->action_after_ms = 10);
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->action = BW_HEALTH_ACTION_RESET_BREAKER;
         c->action_after_ms = 10);
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->action = BW_HEALTH_ACTION_CALL;
         c->action_after_ms = 10);                                   /* no recover */
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->action = BW_HEALTH_ACTION_RESTART;
         c->sup = probe; c->action_after_ms = 10);                   /* sup without child_id */
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->action = BW_HEALTH_ACTION_RESTART;
         c->action_after_ms = 0);
  HC_BAD(BW_HEALTH_KIND_ACTOR, c->pid = probe; c->action = (bw_health_action_t)9;
         c->action_after_ms = 10);
  HC_BAD(BW_HEALTH_KIND_CHECK, c->check = hc_ok; c->recover = hr_noop;
         c->action = BW_HEALTH_ACTION_CALL; c->action_after_ms = BW_HEALTH_MAX_MS + 1);
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_add(h, &c), BW_EEXIST);
  bw_health_component_init(&c, BW_HEALTH_KIND_BREAKER, "b");
  c.breaker = br;
  assert_int_equal(bw_health_add(h, &c), 0);
  bw_health_component_init(&c, BW_HEALTH_KIND_CHECK, "c");
  c.check = hc_ok;
  assert_int_equal(bw_health_add(h, &c), BW_ELIMIT); /* max_components 2 */

  /* subscribers */
  assert_int_equal(bw_health_subscribe(NULL, probe), BW_EINVAL);
  assert_int_equal(bw_health_subscribe(h, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_health_unsubscribe(NULL, probe), BW_EINVAL);
  assert_int_equal(bw_health_unsubscribe(h, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_health_unsubscribe(h, probe), BW_ENOTFOUND);
  for (bw_pid_t i = 0; i < BW_HEALTH_MAX_SUBSCRIBERS; i++)
    assert_int_equal(bw_health_subscribe(h, probe + 1000 + i), 0);
  assert_int_equal(bw_health_subscribe(h, probe), BW_ELIMIT);
  assert_int_equal(bw_health_subscribe(h, probe + 1000), 0); /* idempotent */
  for (bw_pid_t i = 0; i < BW_HEALTH_MAX_SUBSCRIBERS; i++)
    assert_int_equal(bw_health_unsubscribe(h, probe + 1000 + i), 0);

  /* reading */
  char buf[16];
  size_t len = 0;
  int st = -1;
  bw_health_info_t info;
  bw_health_stats_t hm;
  assert_int_equal(bw_health_json(NULL, buf, sizeof buf, &len, &st), BW_EINVAL);
  assert_int_equal(bw_health_json(h, NULL, 1, &len, &st), BW_EINVAL);
  assert_int_equal(bw_health_json(h, buf, sizeof buf, NULL, &st), BW_EINVAL);
  assert_int_equal(bw_health_json(h, buf, sizeof buf, &len, &st), BW_ETOOBIG);
  assert_true(len >= sizeof buf);
  assert_int_equal(bw_health_json(h, NULL, 0, &len, NULL), BW_ETOOBIG); /* size query */
  assert_int_equal(bw_health_component_info(NULL, "a", &info), BW_EINVAL);
  assert_int_equal(bw_health_component_info(h, NULL, &info), BW_EINVAL);
  assert_int_equal(bw_health_component_info(h, "a", NULL), BW_EINVAL);
  assert_int_equal(bw_health_component_info(h, "a", &info), BW_ENOTFOUND); /* no round yet */
  assert_int_equal(bw_health_stats(NULL, &hm), BW_EINVAL);
  assert_int_equal(bw_health_stats(h, NULL), BW_EINVAL);
  assert_int_equal(in_actor(rt, probe, p_health_answer, NULL), 0);

  /* with a monitor */
  assert_int_equal(bw_health_stop(h), 0); /* none runs: nothing to do */
  bw_pid_t started = BW_PID_NONE;
  assert_int_equal(bw_health_start(h, &started), 0);
  assert_int_equal(bw_health_pid(h), started);
  assert_int_equal(bw_health_start(h, NULL), BW_EALREADY);
  assert_int_equal(bw_health_check_now(h), 0);
  assert_int_equal(bw_health_flush(h, 0), 0);
  assert_int_equal(bw_health_component_info(h, "nope", &info), BW_ENOTFOUND);
  bw_pid_t mon = bw_health_pid(h);
  assert_int_equal(in_actor(rt, probe, p_health_flush, h), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_health_stop, h), BW_EWOULDBLOCK);
  assert_int_equal(in_actor(rt, probe, p_health_destroy, h), BW_EWOULDBLOCK);
  assert_true(bw_is_alive(rt, mon)); /* refused before anything was stopped */
  assert_int_equal(bw_health_check_now(h), 0);
  assert_int_equal(bw_health_stop(h), 0);
  assert_false(bw_is_alive(rt, mon));
  assert_int_equal(bw_health_pid(h), BW_PID_NONE);
  assert_int_equal(bw_health_start(h, NULL), 0); /* again, on the same handle */
  assert_int_equal(bw_health_destroy(h), 0);

  /* supervised */
  assert_int_equal(bw_health_new(rt, NULL, &h), 0);
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_health_child_spec(h, "health", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "hsup", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 3, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_health_stop(h), BW_ERUNNING);
  assert_int_equal(bw_health_destroy(h), BW_ERUNNING);
  assert_int_equal(bw_health_start(h, NULL), BW_EALREADY);
  assert_int_equal(bw_sup_stop(rt, sup), 0);

  /* after the runtime stopped */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_health_start(h, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_health_check_now(h), BW_ENOPROC);
  assert_int_equal(bw_health_flush(h, 0), BW_ENOPROC);
  assert_int_equal(bw_health_status(h), BW_HEALTH_UNHEALTHY);
  assert_int_equal(bw_health_stop(h), 0);
  assert_int_equal(bw_health_destroy(h), 0);
  assert_int_equal(bw_breaker_destroy(br), 0);
  bw_runtime_destroy(rt);
}

/* ============================================================================ */
/* observer.h                                                                   */
/* ============================================================================ */

static void test_observer_errors(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_observer_t *ob = NULL;
  bw_observer_opts_t o;
  bw_observer_opts_init(&o);
  bw_observer_opts_init(NULL); /* a no-op */
  uint64_t ok = 0;
  assert_int_equal(bw_observer_start(NULL, &o, &ob), BW_EINVAL);
  assert_int_equal(bw_observer_start(rt, NULL, &ob), BW_EINVAL);
  assert_int_equal(bw_observer_start(rt, &o, NULL), BW_EINVAL);
  assert_int_equal(bw_observer_counts(NULL, &ok, NULL, NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_observer_port(NULL), 0);
  assert_int_equal(bw_observer_stop(NULL), 0);
  int rc = bw_observer_start(rt, &o, &ob);
  if (rc == BW_ENOTSUP) {
    /* built without libmicrohttpd: every start answers so */
    assert_null(ob);
    bw_runtime_destroy(rt);
    return;
  }
  assert_int_equal(rc, 0);
  uint16_t port = bw_observer_port(ob);
  assert_int_not_equal(port, 0);
  assert_int_equal(bw_observer_counts(ob, &ok, NULL, NULL, NULL), 0);
  assert_int_equal(ok, 0);
  bw_observer_t *ob2 = NULL;
#define OB_BAD(field, value)                                                                 \
  do {                                                                                       \
    bw_observer_opts_init(&o);                                                               \
    o.field = value;                                                                         \
    assert_int_equal(bw_observer_start(rt, &o, &ob2), BW_EINVAL);                            \
  } while (0)
  OB_BAD(refresh_ms, 99);
  OB_BAD(refresh_ms, 60001);
  OB_BAD(max_connections, 1025);
  OB_BAD(timeout_s, 3601);
  OB_BAD(max_body, 4095);
  OB_BAD(max_body, (64u << 20) + 1);
  OB_BAD(bind_addr, "localhost");
  OB_BAD(bind_addr, "::1");
#undef OB_BAD
  /* the port is taken */
  bw_observer_opts_init(&o);
  o.port = port;
  assert_int_equal(bw_observer_start(rt, &o, &ob2), BW_ESTATE);
  assert_null(ob2);
  assert_int_equal(bw_observer_stop(ob), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_observer_opts_init(&o);
  assert_int_equal(bw_observer_start(rt, &o, &ob2), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_breaker_errors),
      cmocka_unit_test(test_breaker_destroy_on_scheduler_keeps_actor),
      cmocka_unit_test(test_bulkhead_errors),
      cmocka_unit_test(test_ratelimit_errors),
      cmocka_unit_test(test_retry_errors),
      cmocka_unit_test(test_policy_errors),
      cmocka_unit_test(test_resilience_errors),
      cmocka_unit_test(test_metrics_errors),
      cmocka_unit_test(test_health_errors),
      cmocka_unit_test(test_observer_errors),
  };
  return BWT_RUN_SUITE(tests);
}
