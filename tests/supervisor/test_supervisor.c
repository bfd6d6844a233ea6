/*
 * Tests of supervisor/: strategies, restart types, intensity and
 * escalation, shutdown timeouts, start rollback, dynamic children, backoff,
 * the run-time API and spec validation.
 *
 * Children record "+id" when their init runs and "-id" when their terminate
 * runs in one log; the main thread waits (on a condition variable, never a
 * sleep) until the log has the entries it expects, then asserts their exact
 * order. Time-based behaviour runs on the manual clock.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <bulwark/bulwark.h>

/* --- the event log ------------------------------------------------------- */

static pthread_mutex_t log_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static char log_buf[8192];
static int log_n;

static void log_add(char what, const char *id) {
  pthread_mutex_lock(&log_mx);
  size_t l = strlen(log_buf);
  snprintf(log_buf + l, sizeof(log_buf) - l, "%s%c%s", l ? " " : "", what, id);
  log_n++;
  pthread_cond_broadcast(&log_cv);
  pthread_mutex_unlock(&log_mx);
}

static void log_reset(void) {
  pthread_mutex_lock(&log_mx);
  log_buf[0] = '\0';
  log_n = 0;
  pthread_mutex_unlock(&log_mx);
}

/* Waits until the log holds n entries (10 s cap against a hang), then
 * returns a copy of it and clears it. */
static const char *log_take(int n) {
  static char copy[8192];
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 10;
  pthread_mutex_lock(&log_mx);
  while (log_n < n)
    if (pthread_cond_timedwait(&log_cv, &log_mx, &dl) != 0)
      break;
  snprintf(copy, sizeof(copy), "%s", log_buf);
  log_buf[0] = '\0';
  log_n = 0;
  pthread_mutex_unlock(&log_mx);
  return copy;
}

/* --- a worker that logs, crashes on request, and can ignore shutdown ---- */

enum { MSG_CRASH = 1, MSG_PING, MSG_STOP_NORMAL };

typedef struct worker {
  const char *id;
} worker_t;

static int w_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx;
  ((worker_t *)st)->id = arg;
  log_add('+', arg);
  return 0;
}

static int w_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)st;
  switch (m->type) {
  case MSG_CRASH:
    bw_fail(ctx, BW_ECRASH, "asked to crash");
  case MSG_STOP_NORMAL:
    return BW_STOP;
  case MSG_PING:
    if (m->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, m, 0, MSG_PING, NULL, 0);
    return BW_CONTINUE;
  case BW_MSG_EXIT:
    /* a trapping worker that ignores shutdown (see stubborn below) */
    log_add('x', ((worker_t *)st)->id);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static void w_term(bw_ctx_t *ctx, void *st, const bw_reason_t *r) {
  (void)ctx;
  (void)r;
  log_add('-', ((worker_t *)st)->id);
}

static const bw_behaviour_t worker = {.name = "worker",
                                      .state_size = sizeof(worker_t),
                                      .init = w_init,
                                      .handle = w_handle,
                                      .terminate = w_term};

static int stubborn_init(bw_ctx_t *ctx, void *st, void *arg) {
  bw_trap_exit(ctx, true);
  return w_init(ctx, st, arg);
}

static const bw_behaviour_t stubborn = {.name = "stubborn",
                                        .state_size = sizeof(worker_t),
                                        .init = stubborn_init,
                                        .handle = w_handle,
                                        .terminate = w_term};

static int fail_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx;
  (void)st;
  log_add('!', arg);
  return BW_EINVAL;
}

static const bw_behaviour_t failing = {.name = "failing",
                                       .state_size = sizeof(worker_t),
                                       .init = fail_init,
                                       .handle = w_handle,
                                       .terminate = w_term};

/* --- helpers ------------------------------------------------------------- */

static bw_runtime_t *rt_new(void) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  o.log_level = getenv("BW_LOG_LEVEL") ? BW_LOG_DEFAULT : BW_LOG_OFF; /* as support.h: quiet */
  o.manual_clock = true;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  log_reset();
  return rt;
}

static bw_pid_t pid_of(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_sup_child_pid(rt, sup, id, &p), 0);
  return p;
}

/* Crashes child id and waits for it to be gone. */
static void crash(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = pid_of(rt, sup, id);
  assert_int_equal(bw_send(rt, p, MSG_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, p, 0, NULL), 0);
}

/* Waits until the supervisor has finished what it was doing: a call is
 * answered only after the jobs queued before it. */
static void settle(bw_runtime_t *rt, bw_pid_t sup) {
  bw_child_counts_t cc;
  assert_int_equal(bw_sup_count_children(rt, sup, &cc), 0);
}

#define KID(name, r) {.id = name, .behaviour = &worker, .arg = name, .restart = r}

static const bw_child_spec_t five[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT),
                                       KID("c", BW_PERMANENT), KID("d", BW_PERMANENT),
                                       KID("e", BW_PERMANENT)};

static bw_pid_t start_five(bw_runtime_t *rt, bw_strategy_t st) {
  static bw_sup_spec_t spec;
  spec = (bw_sup_spec_t){.name = "five", .strategy = st, .intensity = 10,
                         .children = five, .nchildren = 5};
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, &err), 0);
  assert_string_equal(log_take(5), "+a +b +c +d +e");
  return sup;
}

/* --- strategies ------------------------------------------------------------ */

static void test_rest_for_one_order(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup = start_five(rt, BW_REST_FOR_ONE);
  bw_pid_t a_before = pid_of(rt, sup, "a");
  crash(rt, sup, "c");
  /* c's terminate, then d and e stopped in reverse, then c, d, e restarted */
  assert_string_equal(log_take(6), "-c -e -d +c +d +e");
  settle(rt, sup);
  assert_true(pid_of(rt, sup, "a") == a_before); /* untouched */
  /* restart counts: c, and d and e restarted with it; a and b not */
  bw_child_info_t info[5];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 5, &n), 0);
  assert_int_equal(n, 5);
  const uint32_t want[5] = {0, 0, 1, 1, 1};
  for (int i = 0; i < 5; i++)
    assert_int_equal(info[i].restarts, want[i]);
  bw_runtime_destroy(rt);
}

static void test_one_for_one_order(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup = start_five(rt, BW_ONE_FOR_ONE);
  bw_pid_t d_before = pid_of(rt, sup, "d");
  crash(rt, sup, "c");
  assert_string_equal(log_take(2), "-c +c");
  settle(rt, sup);
  assert_true(pid_of(rt, sup, "d") == d_before);
  bw_runtime_destroy(rt);
}

static void test_one_for_all_order(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup = start_five(rt, BW_ONE_FOR_ALL);
  crash(rt, sup, "c");
  assert_string_equal(log_take(10), "-c -e -d -b -a +a +b +c +d +e");
  bw_runtime_destroy(rt);
}

static void test_stale_pid_after_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup = start_five(rt, BW_ONE_FOR_ONE);
  bw_pid_t old = pid_of(rt, sup, "b");
  crash(rt, sup, "b");
  log_take(2);
  settle(rt, sup);
  bw_pid_t now = pid_of(rt, sup, "b");
  assert_true(now != old);
  bw_runtime_stats_t st0, st1;
  bw_runtime_stats(rt, &st0);
  assert_int_equal(bw_send(rt, old, MSG_PING, NULL, 0), BW_ENOPROC);
  bw_runtime_stats(rt, &st1);
  assert_int_equal(st1.dead_by_reason[BW_DL_NOPROC], st0.dead_by_reason[BW_DL_NOPROC] + 1);
  bw_reply_t r;
  assert_int_equal(bw_call(rt, now, MSG_PING, NULL, 0, 0, &r), 0);
  bw_runtime_destroy(rt);
}

/* --- restart types ----------------------------------------------------------- */

static const bw_child_spec_t mixed[] = {KID("p", BW_PERMANENT), KID("t", BW_TRANSIENT),
                                        KID("tmp", BW_TEMPORARY), KID("q", BW_PERMANENT)};

static void test_restart_types_one_for_one(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 10, .children = mixed,
                        .nchildren = 4};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(4);
  /* transient exiting normally: not restarted, kept as stopped */
  bw_pid_t t = pid_of(rt, sup, "t");
  bw_send(rt, t, MSG_STOP_NORMAL, NULL, 0);
  bw_wait_exit(rt, t, 0, NULL);
  assert_string_equal(log_take(1), "-t");
  settle(rt, sup);
  bw_pid_t p;
  assert_int_equal(bw_sup_child_pid(rt, sup, "t", &p), BW_ESTATE);
  /* transient crashing: restarted */
  assert_int_equal(bw_sup_restart_child(rt, sup, "t", &p), 0);
  log_take(1);
  crash(rt, sup, "t");
  assert_string_equal(log_take(2), "-t +t");
  /* temporary: never restarted, and removed */
  crash(rt, sup, "tmp");
  assert_string_equal(log_take(1), "-tmp");
  settle(rt, sup);
  assert_int_equal(bw_sup_child_pid(rt, sup, "tmp", &p), BW_ENOTFOUND);
  bw_child_counts_t cc;
  assert_int_equal(bw_sup_count_children(rt, sup, &cc), 0);
  assert_int_equal(cc.specs, 3);
  assert_int_equal(cc.active, 3);
  /* permanent exiting normally: restarted */
  bw_pid_t q = pid_of(rt, sup, "q");
  bw_send(rt, q, MSG_STOP_NORMAL, NULL, 0);
  assert_string_equal(log_take(2), "-q +q");
  bw_runtime_destroy(rt);
}

static void test_temporary_not_restarted_by_group(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_sup_spec_t spec = {.strategy = BW_REST_FOR_ONE, .intensity = 10, .children = mixed,
                        .nchildren = 4};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(4);
  crash(rt, sup, "p");
  /* p dies; q, tmp, t stopped in reverse; p, t, q restarted, tmp is not */
  assert_string_equal(log_take(7), "-p -q -tmp -t +p +t +q");
  settle(rt, sup);
  bw_pid_t x;
  assert_int_equal(bw_sup_child_pid(rt, sup, "tmp", &x), BW_ENOTFOUND);
  bw_runtime_destroy(rt);
}

/* Under every strategy: a transient child exiting normally and a temporary
 * child crashing cause no restart at all (and the temporary one is gone). */
static void test_restart_types_each_strategy(void **state) {
  (void)state;
  bw_strategy_t strategies[] = {BW_ONE_FOR_ONE, BW_REST_FOR_ONE, BW_ONE_FOR_ALL};
  for (int k = 0; k < 3; k++) {
    bw_runtime_t *rt = rt_new();
    bw_sup_spec_t spec = {.strategy = strategies[k], .intensity = 10, .children = mixed,
                          .nchildren = 4};
    bw_pid_t sup;
    assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
    assert_string_equal(log_take(4), "+p +t +tmp +q");
    bw_pid_t p0 = pid_of(rt, sup, "p"), q0 = pid_of(rt, sup, "q");
    bw_pid_t t = pid_of(rt, sup, "t");
    bw_send(rt, t, MSG_STOP_NORMAL, NULL, 0);
    bw_wait_exit(rt, t, 0, NULL);
    crash(rt, sup, "tmp");
    settle(rt, sup);
    assert_string_equal(log_take(2), "-t -tmp");
    assert_true(pid_of(rt, sup, "p") == p0);
    assert_true(pid_of(rt, sup, "q") == q0);
    bw_child_counts_t cc;
    assert_int_equal(bw_sup_count_children(rt, sup, &cc), 0);
    assert_int_equal(cc.specs, 3);
    assert_int_equal(cc.active, 2);
    bw_runtime_destroy(rt);
  }
}

/* --- intensity and escalation --------------------------------------------------- */

static const bw_child_spec_t leaf_kids[] = {KID("w", BW_PERMANENT)};
static const bw_sup_spec_t leaf = {.name = "leaf", .strategy = BW_ONE_FOR_ONE, .intensity = 1,
                                   .children = leaf_kids, .nchildren = 1};
static const bw_child_spec_t mid_kids[] = {{.id = "leaf", .supervisor = &leaf}};
static const bw_sup_spec_t mid = {.name = "mid", .strategy = BW_ONE_FOR_ONE, .intensity = 1,
                                  .children = mid_kids, .nchildren = 1};
static const bw_child_spec_t root_kids[] = {KID("r1", BW_PERMANENT),
                                            {.id = "mid", .supervisor = &mid}};
static const bw_sup_spec_t root3 = {.name = "root", .strategy = BW_ONE_FOR_ONE,
                                    .intensity = BW_INTENSITY_NONE, .children = root_kids,
                                    .nchildren = 2};

/* Monitors a pid from before the faults, and records its exit reason. */
static bw_reason_t watched_reason;

static int watch_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)st;
  uint64_t ref;
  return bw_monitor(ctx, *(bw_pid_t *)arg, &ref);
}

static int watch_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx;
  (void)st;
  if (m->type == BW_MSG_DOWN) {
    memcpy(&watched_reason, m->data, sizeof(watched_reason));
    log_add('D', "own");
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t watcher = {.name = "watcher", .init = watch_init,
                                       .handle = watch_handle};

static bw_pid_t nested_pid(bw_runtime_t *rt, bw_pid_t root) {
  bw_pid_t m = pid_of(rt, root, "mid");
  bw_pid_t l = pid_of(rt, m, "leaf");
  return pid_of(rt, l, "w");
}

static void test_intensity_escalates_from_depth_3(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t root;
  assert_int_equal(bw_supervisor_start(rt, &root3, &root, NULL), 0);
  assert_string_equal(log_take(2), "+r1 +w");
  assert_int_equal(bw_spawn(rt, &watcher, &root, NULL, NULL), 0);
  /* leaf allows 1 restart: the 2nd crash escalates to mid, which restarts
   * leaf (its 1st restart); two more escalations exceed mid's intensity and
   * mid escalates to root, which allows none: the whole tree goes down. */
  bw_pid_t w = nested_pid(rt, root);
  bw_send(rt, w, MSG_CRASH, NULL, 0);
  bw_wait_exit(rt, w, 0, NULL);
  assert_string_equal(log_take(2), "-w +w");
  w = nested_pid(rt, root);
  bw_send(rt, w, MSG_CRASH, NULL, 0);
  bw_wait_exit(rt, w, 0, NULL);
  assert_string_equal(log_take(2), "-w +w"); /* leaf escalated; mid restarted it */
  w = nested_pid(rt, root);
  bw_send(rt, w, MSG_CRASH, NULL, 0);
  bw_wait_exit(rt, w, 0, NULL);
  assert_string_equal(log_take(2), "-w +w"); /* the new leaf's 1st restart */
  w = nested_pid(rt, root);
  bw_send(rt, w, MSG_CRASH, NULL, 0);
  /* leaf escalates, mid's 2nd restart exceeds its intensity, root allows
   * none: root stops r1 and exits */
  assert_string_equal(log_take(3), "-w -r1 Down");
  assert_int_equal(watched_reason.kind, BW_REASON_CRASH);
  assert_int_equal(watched_reason.code, BW_ELIMIT);
  assert_non_null(strstr(watched_reason.text, "max restart intensity"));
  assert_false(bw_is_alive(rt, root));
  bw_runtime_destroy(rt);
}

/* A child whose init fails while flaky_fail is set. */
static int flaky_fail;

static int flaky_init(bw_ctx_t *ctx, void *st, void *arg) {
  if (__atomic_load_n(&flaky_fail, __ATOMIC_ACQUIRE)) {
    log_add('!', arg);
    return BW_EINVAL;
  }
  return w_init(ctx, st, arg);
}

static const bw_behaviour_t flaky = {.name = "flaky",
                                     .state_size = sizeof(worker_t),
                                     .init = flaky_init,
                                     .handle = w_handle,
                                     .terminate = w_term};

/* Failed restarts count toward intensity and are retried: with intensity 3,
 * the crash is restart 1, failed attempts are 2 and 3, the 4th escalates. */
static void test_failed_restarts_count(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {{.id = "f", .behaviour = &flaky, .arg = "f"}};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 3, .children = kids,
                        .nchildren = 1};
  bw_pid_t sup;
  __atomic_store_n(&flaky_fail, 0, __ATOMIC_RELEASE);
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_spawn(rt, &watcher, &sup, NULL, NULL), 0);
  log_take(1);
  __atomic_store_n(&flaky_fail, 1, __ATOMIC_RELEASE);
  crash(rt, sup, "f");
  /* the crash, then 3 failed attempts (restarts 1..3), then escalation */
  assert_string_equal(log_take(5), "-f !f !f !f Down");
  assert_int_equal(watched_reason.code, BW_ELIMIT);
  __atomic_store_n(&flaky_fail, 0, __ATOMIC_RELEASE);
  bw_runtime_destroy(rt);
}

/* The intensity window on the manual clock: a restart counts for exactly
 * period_ms (runtime/intensity.h). With intensity 1 and a 1000 ms period,
 * a restart 1000 ms after the first is the only one in its window (OTP,
 * and this supervisor before the toolkit, counted both); a third 999 ms
 * after that is the second within 1000 ms, one too many. */
static void test_intensity_window_boundary(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("w", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 1, .period_ms = 1000,
                        .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_spawn(rt, &watcher, &sup, NULL, NULL), 0);
  log_take(1);
  crash(rt, sup, "w"); /* t = 0: restart 1 */
  assert_string_equal(log_take(2), "-w +w");
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  crash(rt, sup, "w"); /* t = 1000: the first has just left the window */
  assert_string_equal(log_take(2), "-w +w");
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 999), 0);
  crash(rt, sup, "w"); /* t = 1999: two within 1000 ms */
  assert_string_equal(log_take(2), "-w Down");
  assert_int_equal(watched_reason.code, BW_ELIMIT);
  bw_runtime_destroy(rt);
}

/* While restarts keep failing, the supervisor still hears a stop. */
static void test_stop_while_restarts_fail(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {{.id = "f", .behaviour = &flaky, .arg = "f"},
                                         KID("ok", BW_PERMANENT)};
  /* intensity out of reach within the period: it would retry forever */
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 1000000, .period_ms = 1,
                        .children = kids, .nchildren = 2};
  bw_pid_t sup;
  __atomic_store_n(&flaky_fail, 0, __ATOMIC_RELEASE);
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(2);
  __atomic_store_n(&flaky_fail, 1, __ATOMIC_RELEASE);
  crash(rt, sup, "f");
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_false(bw_is_alive(rt, sup));
  __atomic_store_n(&flaky_fail, 0, __ATOMIC_RELEASE);
  bw_runtime_destroy(rt);
}

/* --- shutdown ----------------------------------------------------------------------- */

typedef struct term_call {
  bw_runtime_t *rt;
  bw_pid_t sup;
  const char *id;
  int rc;
} term_call_t;

static void *terminate_thread(void *arg) {
  term_call_t *c = arg;
  c->rc = bw_sup_terminate_child(c->rt, c->sup, c->id);
  return NULL;
}

static void test_shutdown_timeout_kills(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {
      {.id = "s", .behaviour = &stubborn, .arg = "s", .shutdown_ms = 2000}};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(1);
  bw_pid_t s = pid_of(rt, sup, "s");
  assert_int_equal(bw_spawn(rt, &watcher, &s, NULL, NULL), 0);
  term_call_t c = {.rt = rt, .sup = sup, .id = "s", .rc = 1};
  pthread_t th;
  pthread_create(&th, NULL, terminate_thread, &c);
  /* the child traps the shutdown and ignores it */
  assert_string_equal(log_take(1), "xs");
  assert_int_equal(bw_clock_advance(rt, 1999), 0);
  assert_true(bw_is_alive(rt, s));
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  pthread_join(th, NULL);
  assert_int_equal(c.rc, 0);
  /* killed: the watcher saw reason killed, and terminate did not run */
  assert_string_equal(log_take(1), "Down");
  assert_int_equal(watched_reason.kind, BW_REASON_KILLED);
  assert_false(bw_is_alive(rt, s));
  bw_child_info_t info[1];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 1, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(info[0].state, BW_CHILD_STOPPED);
  bw_runtime_destroy(rt);
}

static void test_stop_whole_tree_deepest_first(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t in_kids[] = {KID("i1", BW_PERMANENT), KID("i2", BW_PERMANENT)};
  static const bw_sup_spec_t inner = {.strategy = BW_ONE_FOR_ONE, .children = in_kids,
                                      .nchildren = 2};
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), {.id = "in", .supervisor = &inner},
                                         KID("z", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 3};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_string_equal(log_take(4), "+a +i1 +i2 +z");
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_string_equal(log_take(4), "-z -i2 -i1 -a");
  assert_false(bw_is_alive(rt, sup));
  bw_runtime_destroy(rt);
}

static void test_runtime_stop_is_ordered(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup = start_five(rt, BW_REST_FOR_ONE);
  (void)sup;
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_string_equal(log_take(5), "-e -d -c -b -a");
  bw_runtime_destroy(rt);
}

/* --- start failure --------------------------------------------------------------- */

static void test_start_failure_rolls_back(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT),
                                         KID("c", BW_PERMANENT),
                                         {.id = "bad", .behaviour = &failing, .arg = "bad"},
                                         KID("e", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 5};
  bw_pid_t sup = BW_PID_NONE;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, &err), BW_EINVAL);
  assert_string_equal(err.child, "bad");
  assert_int_equal(err.code, BW_EINVAL);
  assert_non_null(strstr(err.message, "bad"));
  assert_string_equal(log_take(7), "+a +b +c !bad -c -b -a");
  bw_runtime_stats_t st;
  bw_runtime_stats(rt, &st);
  assert_int_equal(st.live, 0);
  bw_runtime_destroy(rt);
}

static void test_nested_start_failure_names_path(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t in_kids[] = {KID("i1", BW_PERMANENT),
                                            {.id = "boom", .behaviour = &failing, .arg = "boom"}};
  static const bw_sup_spec_t inner = {.strategy = BW_ONE_FOR_ONE, .children = in_kids,
                                      .nchildren = 2};
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT),
                                         {.id = "in", .supervisor = &inner}};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 2};
  bw_sup_error_t err;
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, &err), BW_EINVAL);
  assert_string_equal(err.child, "in/boom");
  assert_string_equal(log_take(5), "+a +i1 !boom -i1 -a");
  bw_runtime_destroy(rt);
}

/* A remote child on a runtime where no node was started: the supervisor
 * reaches nodes only through the runtime's hook, which nothing installed,
 * so the start fails with BW_ENOTSUP and says why; the children before it
 * are rolled back. */
static void test_remote_child_without_node(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_remote_child_t far = {.behaviour = "rworker", .nodes = {"beta"}};
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), {.id = "far", .remote = &far}};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 2};
  bw_sup_error_t err;
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, &err), BW_ENOTSUP);
  assert_string_equal(err.child, "far");
  assert_int_equal(err.code, BW_ENOTSUP);
  assert_int_equal(err.reason.kind, BW_REASON_NOCONNECTION);
  assert_non_null(strstr(err.message, "no node started on this runtime"));
  assert_string_equal(log_take(2), "+a -a");
  bw_runtime_destroy(rt);
}

/* --- dynamic children ---------------------------------------------------------------- */

static void test_simple_one_for_one(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t tmpl[] = {{.id = "tmpl", .behaviour = &worker}};
  bw_sup_spec_t spec = {.strategy = BW_SIMPLE_ONE_FOR_ONE, .intensity = 10, .children = tmpl,
                        .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  bw_pid_t d[3];
  const char *names[3] = {"d0", "d1", "d2"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(bw_sup_start_dynamic(rt, sup, (void *)names[i], &d[i]), 0);
  assert_string_equal(log_take(3), "+d0 +d1 +d2");
  bw_child_counts_t cc;
  bw_sup_count_children(rt, sup, &cc);
  assert_int_equal(cc.active, 3);
  /* crash one: restarted with the same argument */
  bw_send(rt, d[1], MSG_CRASH, NULL, 0);
  assert_string_equal(log_take(2), "-d1 +d1");
  assert_int_equal(bw_sup_terminate_pid(rt, sup, d[0]), 0);
  assert_string_equal(log_take(1), "-d0");
  bw_sup_count_children(rt, sup, &cc);
  assert_int_equal(cc.active, 2);
  assert_int_equal(bw_sup_terminate_pid(rt, sup, d[0]), BW_ENOTFOUND);
  bw_pid_t x;
  assert_int_equal(bw_sup_restart_child(rt, sup, "tmpl", &x), BW_ENOTSUP);
  assert_int_equal(bw_sup_delete_child(rt, sup, "tmpl"), BW_ENOTSUP);
  assert_int_equal(bw_sup_start_child(rt, sup, &tmpl[0], &x), BW_ENOTSUP);
  bw_runtime_destroy(rt);
}

/* --- backoff ------------------------------------------------------------------------ */

static void test_backoff_delays_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("f", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
                        .backoff = {.initial_ms = 100, .max_ms = 400},
                        .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(1);
  uint64_t expect[] = {100, 200, 400, 400};
  for (int k = 0; k < 4; k++) {
    crash(rt, sup, "f");
    assert_string_equal(log_take(1), "-f");
    bw_pid_t p;
    assert_int_equal(bw_sup_child_pid(rt, sup, "f", &p), BW_ERESTARTING);
    bw_clock_advance(rt, expect[k] - 1);
    assert_int_equal(bw_sup_child_pid(rt, sup, "f", &p), BW_ERESTARTING);
    bw_clock_advance(rt, 1);
    assert_string_equal(log_take(1), "+f");
  }
  bw_runtime_destroy(rt);
}

/* Jitter takes up to jitter_pct off each delay, never adds. */
static void test_backoff_jitter_bounds(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("j", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 100, .period_ms = 3600000,
                        .backoff = {.initial_ms = 1000, .max_ms = 1000, .jitter_pct = 50},
                        .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(1);
  for (int k = 0; k < 5; k++) {
    crash(rt, sup, "j");
    assert_string_equal(log_take(1), "-j");
    bw_pid_t p;
    /* asking first also makes sure the restart is scheduled before the
     * clock moves */
    assert_int_equal(bw_sup_child_pid(rt, sup, "j", &p), BW_ERESTARTING);
    /* never sooner than 500 ms (1000 - 50%) ... */
    bw_clock_advance(rt, 499);
    assert_int_equal(bw_sup_child_pid(rt, sup, "j", &p), BW_ERESTARTING);
    /* ... never later than 1000 ms */
    bw_clock_advance(rt, 501);
    assert_string_equal(log_take(1), "+j");
  }
  bw_runtime_destroy(rt);
}

/* --- backoff: one timer per child, the supervisor keeps serving ---------------------- */

/* A supervisor call made from a helper thread, so the main thread can find
 * out whether it returns at once and still move the manual clock when it
 * does not (the 10 s cap only stops a broken build from hanging). */
typedef struct sup_call {
  bw_runtime_t *rt;
  bw_pid_t sup;
  const char *id;
  int op; /* 0 terminate_child, 1 count_children, 2 start_child */
  const bw_child_spec_t *spec;
  int rc;
  bool done; /* under log_mx */
  pthread_t th;
} sup_call_t;

static void *sup_call_thread(void *arg) {
  sup_call_t *c = arg;
  bw_child_counts_t cc;
  bw_pid_t p;
  int rc = c->op == 0   ? bw_sup_terminate_child(c->rt, c->sup, c->id)
           : c->op == 1 ? bw_sup_count_children(c->rt, c->sup, &cc)
                        : bw_sup_start_child(c->rt, c->sup, c->spec, &p);
  pthread_mutex_lock(&log_mx);
  c->rc = rc;
  c->done = true;
  pthread_cond_broadcast(&log_cv);
  pthread_mutex_unlock(&log_mx);
  return NULL;
}

static void sup_call_begin(sup_call_t *c) {
  c->done = false;
  c->rc = 1;
  assert_int_equal(pthread_create(&c->th, NULL, sup_call_thread, c), 0);
}

/* Whether the call has returned, waiting for it up to wait_ms of real time. */
static bool sup_call_wait(sup_call_t *c, long wait_ms) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += wait_ms / 1000;
  dl.tv_nsec += (wait_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&log_mx);
  while (!c->done)
    if (pthread_cond_timedwait(&log_cv, &log_mx, &dl) != 0)
      break;
  bool done = c->done;
  pthread_mutex_unlock(&log_mx);
  return done;
}

static bool sup_call_done(sup_call_t *c) {
  pthread_mutex_lock(&log_mx);
  bool done = c->done;
  pthread_mutex_unlock(&log_mx);
  return done;
}

static int32_t child_state(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_child_info_t info[8];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 8, &n), 0);
  for (size_t k = 0; k < n && k < 8; k++)
    if (strcmp(info[k].id, id) == 0)
      return info[k].state;
  return -1;
}

/* The scenario: one_for_one, three children, 1 s backoff. a crashes
 * at 0, b at 500 ms: b runs again at 1500 ms (not at 2000, behind a's
 * delay), and terminate_child of c at 500 ms returns at once. */
static void test_backoff_per_child_timer(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT),
                                         KID("c", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
                        .backoff = {.initial_ms = 1000, .max_ms = 1000},
                        .children = kids, .nchildren = 3};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_string_equal(log_take(3), "+a +b +c");
  crash(rt, sup, "a"); /* t = 0 */
  assert_string_equal(log_take(1), "-a");
  settle(rt, sup); /* a's timer runs from 0 */
  assert_int_equal(bw_clock_advance(rt, 500), 0);
  crash(rt, sup, "b"); /* t = 500 */
  assert_string_equal(log_take(1), "-b");
  /* the API is served during both backoffs */
  sup_call_t t = {.rt = rt, .sup = sup, .id = "c", .op = 0};
  sup_call_begin(&t);
  bool returned = sup_call_wait(&t, 10000);
  for (int k = 0; !returned && k < 100 && !sup_call_wait(&t, 100); k++)
    bw_clock_advance(rt, 1000); /* a broken build: let it go before failing */
  pthread_join(t.th, NULL);
  assert_true(returned);
  assert_int_equal(t.rc, 0);
  assert_string_equal(log_take(1), "-c");
  assert_int_equal(child_state(rt, sup, "a"), BW_CHILD_RESTARTING);
  assert_int_equal(child_state(rt, sup, "b"), BW_CHILD_RESTARTING);
  assert_int_equal(child_state(rt, sup, "c"), BW_CHILD_STOPPED);
  assert_int_equal(bw_clock_advance(rt, 500), 0); /* t = 1000: a */
  assert_string_equal(log_take(1), "+a");
  assert_int_equal(bw_clock_advance(rt, 499), 0); /* t = 1499 */
  bw_pid_t p;
  assert_int_equal(bw_sup_child_pid(rt, sup, "b", &p), BW_ERESTARTING);
  assert_int_equal(bw_clock_advance(rt, 1), 0); /* t = 1500: b */
  assert_string_equal(log_take(1), "+b");
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "b"), BW_CHILD_RUNNING);
  assert_int_equal(child_state(rt, sup, "c"), BW_CHILD_STOPPED);
  bw_runtime_destroy(rt);
}

/* Restart intensity counts exits when they happen: a crash past the
 * intensity while another child waits out its backoff escalates at once,
 * and the waiting child is never started again. */
static void test_backoff_with_escalation(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 2, .period_ms = 10000,
                        .backoff = {.initial_ms = 1000, .max_ms = 10000},
                        .children = kids, .nchildren = 2};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_string_equal(log_take(2), "+a +b");
  assert_int_equal(bw_spawn(rt, &watcher, &sup, NULL, NULL), 0);
  crash(rt, sup, "a"); /* t = 0: restart 1, a waits 1000 ms */
  assert_string_equal(log_take(1), "-a");
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_string_equal(log_take(1), "+a");
  crash(rt, sup, "a"); /* t = 1000: restart 2, a waits 2000 ms (to 3000) */
  assert_string_equal(log_take(1), "-a");
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 500), 0);
  assert_int_equal(child_state(rt, sup, "a"), BW_CHILD_RESTARTING);
  bw_pid_t b = pid_of(rt, sup, "b");
  assert_int_equal(bw_send(rt, b, MSG_CRASH, NULL, 0), 0); /* t = 1500: restart 3 */
  /* b's exit, then the supervisor stops (nothing left to stop) and exits */
  assert_string_equal(log_take(2), "-b Down");
  assert_int_equal(watched_reason.kind, BW_REASON_CRASH);
  assert_int_equal(watched_reason.code, BW_ELIMIT);
  assert_false(bw_is_alive(rt, sup));
  assert_int_equal(bw_now_ms(rt), 1500);
  /* a's timer died with it: a is not started at 3000 */
  assert_int_equal(bw_clock_advance(rt, 5000), 0);
  bw_runtime_stats_t st;
  assert_int_equal(bw_runtime_stats(rt, &st), 0);
  assert_string_equal(log_take(0), "");
  bw_runtime_destroy(rt);
}

/* A child that stays up a whole period starts its backoff over. */
static void test_backoff_resets_after_stable_period(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("f", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 5000,
                        .backoff = {.initial_ms = 100, .max_ms = 10000},
                        .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(1);
  /* 100, 200, 400 while it keeps crashing at once; then it stays up for
   * the 5000 ms period, and the next crash waits 100 ms again */
  uint64_t expect[] = {100, 200, 400, 100};
  for (int k = 0; k < 4; k++) {
    if (k == 3)
      assert_int_equal(bw_clock_advance(rt, 5000), 0);
    crash(rt, sup, "f");
    assert_string_equal(log_take(1), "-f");
    bw_pid_t p;
    assert_int_equal(bw_sup_child_pid(rt, sup, "f", &p), BW_ERESTARTING);
    assert_int_equal(bw_clock_advance(rt, expect[k] - 1), 0);
    assert_int_equal(bw_sup_child_pid(rt, sup, "f", &p), BW_ERESTARTING);
    assert_int_equal(bw_clock_advance(rt, 1), 0);
    assert_string_equal(log_take(1), "+f");
    /* "+f" is logged by the child's init, inside the supervisor's start,
     * before the supervisor notes when it started: let it finish before the
     * clock moves (else the 5000 ms below could count as no time up) */
    settle(rt, sup);
  }
  bw_runtime_destroy(rt);
}

/* rest_for_one: the failed child's backoff delays its group; meanwhile the
 * API is served; a failure earlier in the order takes the pending restart
 * over (one restart of the larger group, after the new failure's backoff). */
static void test_backoff_group_rest_for_one(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT),
                                         KID("c", BW_PERMANENT), KID("d", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_REST_FOR_ONE, .intensity = 10, .period_ms = 60000,
                        .backoff = {.initial_ms = 1000, .max_ms = 1000},
                        .children = kids, .nchildren = 4};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_string_equal(log_take(4), "+a +b +c +d");
  bw_pid_t d = pid_of(rt, sup, "d");
  crash(rt, sup, "c"); /* t = 0: d stopped now, c and d back at 1000 */
  assert_string_equal(log_take(2), "-c -d");
  assert_int_equal(bw_wait_exit(rt, d, 0, NULL), 0); /* its EXIT is queued first */
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "c"), BW_CHILD_RESTARTING);
  assert_int_equal(child_state(rt, sup, "d"), BW_CHILD_RESTARTING);
  assert_int_equal(bw_clock_advance(rt, 500), 0);
  /* delete_child / restart_child of a waiting child: restarting */
  bw_pid_t p;
  assert_int_equal(bw_sup_restart_child(rt, sup, "d", &p), BW_ERESTARTING);
  assert_int_equal(bw_sup_delete_child(rt, sup, "c"), BW_ERESTARTING);
  crash(rt, sup, "b"); /* t = 500: the group from b takes c's restart over */
  assert_string_equal(log_take(1), "-b");
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 500), 0); /* t = 1000: c's timer is gone */
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "c"), BW_CHILD_RESTARTING);
  assert_int_equal(bw_clock_advance(rt, 500), 0); /* t = 1500: b's */
  assert_string_equal(log_take(3), "+b +c +d");
  settle(rt, sup);
  bw_child_info_t info[4];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 4, &n), 0);
  for (size_t k = 0; k < 4; k++)
    assert_int_equal(info[k].state, BW_CHILD_RUNNING);
  assert_string_equal(log_take(0), "");
  bw_runtime_destroy(rt);
}

/* one_for_all: the failed child's timer brings the whole group back; a
 * failed restart is retried on that child's own timer, and the children
 * after it in the group wait for it (rest_for_one). */
static void test_backoff_group_retry(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT),
                                         KID("c", BW_PERMANENT)};
  bw_sup_spec_t all = {.strategy = BW_ONE_FOR_ALL, .intensity = 10, .period_ms = 60000,
                       .backoff = {.initial_ms = 1000, .max_ms = 1000},
                       .children = kids, .nchildren = 3};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &all, &sup, NULL), 0);
  assert_string_equal(log_take(3), "+a +b +c");
  bw_pid_t a = pid_of(rt, sup, "a");
  crash(rt, sup, "b");
  assert_string_equal(log_take(3), "-b -c -a");
  assert_int_equal(bw_wait_exit(rt, a, 0, NULL), 0);
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 999), 0);
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "a"), BW_CHILD_RESTARTING);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_string_equal(log_take(3), "+a +b +c");
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_string_equal(log_take(3), "-c -b -a");

  static const bw_child_spec_t rest_kids[] = {{.id = "f", .behaviour = &flaky, .arg = "f"},
                                              KID("x", BW_PERMANENT)};
  bw_sup_spec_t rest = {.strategy = BW_REST_FOR_ONE, .intensity = 10, .period_ms = 60000,
                        .backoff = {.initial_ms = 100, .max_ms = 10000},
                        .children = rest_kids, .nchildren = 2};
  __atomic_store_n(&flaky_fail, 0, __ATOMIC_RELEASE);
  assert_int_equal(bw_supervisor_start(rt, &rest, &sup, NULL), 0);
  assert_string_equal(log_take(2), "+f +x");
  bw_pid_t x = pid_of(rt, sup, "x");
  __atomic_store_n(&flaky_fail, 1, __ATOMIC_RELEASE);
  crash(rt, sup, "f"); /* restart 1: 100 ms */
  assert_string_equal(log_take(2), "-f -x");
  assert_int_equal(bw_wait_exit(rt, x, 0, NULL), 0);
  settle(rt, sup);
  assert_int_equal(bw_clock_advance(rt, 100), 0); /* t = 100: f fails (restart 2: 200 ms) */
  assert_string_equal(log_take(1), "!f");
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "f"), BW_CHILD_RESTARTING);
  assert_int_equal(child_state(rt, sup, "x"), BW_CHILD_RESTARTING); /* waits for f */
  __atomic_store_n(&flaky_fail, 0, __ATOMIC_RELEASE);
  assert_int_equal(bw_clock_advance(rt, 199), 0);
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "f"), BW_CHILD_RESTARTING);
  assert_int_equal(bw_clock_advance(rt, 1), 0); /* t = 300 */
  assert_string_equal(log_take(2), "+f +x");
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "x"), BW_CHILD_RUNNING);
  bw_runtime_destroy(rt);
}

/* terminate_child of a child in backoff cancels its restart (under
 * rest_for_one the rest of its group still comes back on time); a
 * shutdown during a backoff is served at once. */
static void test_backoff_terminate_and_stop(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT)};
  bw_sup_spec_t one = {.strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
                       .backoff = {.initial_ms = 1000, .max_ms = 1000},
                       .children = kids, .nchildren = 2};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &one, &sup, NULL), 0);
  assert_string_equal(log_take(2), "+a +b");
  crash(rt, sup, "a");
  assert_string_equal(log_take(1), "-a");
  assert_int_equal(bw_sup_terminate_child(rt, sup, "a"), 0);
  assert_int_equal(child_state(rt, sup, "a"), BW_CHILD_STOPPED);
  assert_int_equal(bw_clock_advance(rt, 2000), 0);
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "a"), BW_CHILD_STOPPED); /* not restarted */
  bw_pid_t p;
  assert_int_equal(bw_sup_restart_child(rt, sup, "a", &p), 0);
  assert_string_equal(log_take(1), "+a");
  /* a shutdown while b waits: served at once, b stays down */
  crash(rt, sup, "b");
  assert_string_equal(log_take(1), "-b");
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_string_equal(log_take(1), "-a");
  assert_false(bw_is_alive(rt, sup));
  assert_int_equal(bw_clock_advance(rt, 2000), 0);
  assert_string_equal(log_take(0), "");

  /* rest_for_one: a terminated (and then deleted) head of a waiting group
   * does not strand the others */
  static const bw_child_spec_t three[] = {KID("x", BW_PERMANENT), KID("y", BW_PERMANENT),
                                          KID("z", BW_PERMANENT)};
  bw_sup_spec_t rest = {.strategy = BW_REST_FOR_ONE, .intensity = 10, .period_ms = 60000,
                        .backoff = {.initial_ms = 1000, .max_ms = 1000},
                        .children = three, .nchildren = 3};
  assert_int_equal(bw_supervisor_start(rt, &rest, &sup, NULL), 0);
  assert_string_equal(log_take(3), "+x +y +z");
  bw_pid_t y = pid_of(rt, sup, "y");
  crash(rt, sup, "x");
  assert_string_equal(log_take(3), "-x -z -y");
  assert_int_equal(bw_wait_exit(rt, y, 0, NULL), 0); /* the group is stopped */
  assert_int_equal(bw_sup_terminate_child(rt, sup, "x"), 0);
  assert_int_equal(bw_sup_delete_child(rt, sup, "x"), 0);
  assert_int_equal(bw_clock_advance(rt, 999), 0);
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "y"), BW_CHILD_RESTARTING);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_string_equal(log_take(2), "+y +z");
  settle(rt, sup);
  assert_int_equal(child_state(rt, sup, "x"), -1); /* deleted */
  bw_runtime_destroy(rt);
}

/* --- the run-time API's deadline ------------------------------------------------------ */

/* A child whose init blocks until released: its supervisor is stuck in
 * that start and answers nothing meanwhile. */
static pthread_mutex_t gate_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static int gated_init(bw_ctx_t *ctx, void *st, void *arg) {
  log_add('+', arg);
  pthread_mutex_lock(&gate_mx);
  while (!gate_open)
    pthread_cond_wait(&gate_cv, &gate_mx);
  pthread_mutex_unlock(&gate_mx);
  return w_init(ctx, st, arg);
}

static const bw_behaviour_t gated = {.name = "gated",
                                     .state_size = sizeof(worker_t),
                                     .init = gated_init,
                                     .handle = w_handle,
                                     .terminate = w_term};

static void gate_set(bool open) {
  pthread_mutex_lock(&gate_mx);
  gate_open = open;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mx);
}

static void test_api_call_deadline(void **state) {
  (void)state;
  assert_int_equal(bw_sup_call_timeout(), BW_SUP_CALL_TIMEOUT_DEFAULT);
  assert_int_equal(bw_sup_set_call_timeout(BW_SUP_CALL_TIMEOUT_MAX + 1), BW_EINVAL);
  assert_int_equal(bw_sup_call_timeout(), BW_SUP_CALL_TIMEOUT_DEFAULT);
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT)};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(1);
  /* the supervisor gets stuck in g's init */
  static const bw_child_spec_t g = {.id = "g", .behaviour = &gated, .arg = "g"};
  gate_set(false);
  sup_call_t start = {.rt = rt, .sup = sup, .op = 2, .spec = &g};
  sup_call_begin(&start);
  assert_string_equal(log_take(1), "+g"); /* (start_child read the deadline before) */
  assert_int_equal(bw_sup_set_call_timeout(1000), 0);
  assert_int_equal(bw_sup_call_timeout(), 1000);
  bw_runtime_stats_t st;
  assert_int_equal(bw_runtime_stats(rt, &st), 0);
  uint64_t sent = st.sent;
  sup_call_t count = {.rt = rt, .sup = sup, .op = 1};
  sup_call_begin(&count);
  /* bw_call arms its deadline before it sends: once the request is counted
   * as sent (nothing else sends now), the deadline runs from this instant
   * of the manual clock (a 10 s cap against a broken build) */
  for (int k = 0; k < 10000 && st.sent == sent; k++) {
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    assert_int_equal(bw_runtime_stats(rt, &st), 0);
  }
  assert_int_equal(st.sent, sent + 1);
  /* not before the deadline ... */
  assert_int_equal(bw_clock_advance(rt, 999), 0);
  assert_false(sup_call_done(&count));
  /* ... and at it */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  bool done = sup_call_wait(&count, 10000);
  if (!done) /* a broken build: release the supervisor before failing */
    gate_set(true);
  pthread_join(count.th, NULL);
  assert_true(done);
  assert_int_equal(count.rc, BW_ETIMEDOUT);
  /* the supervisor is not harmed: released, it finishes the start and
   * answers again */
  gate_set(true);
  pthread_join(start.th, NULL);
  assert_int_equal(start.rc, 0);
  assert_string_equal(log_take(1), "+g");
  bw_child_counts_t cc;
  assert_int_equal(bw_sup_count_children(rt, sup, &cc), 0);
  assert_int_equal(cc.active, 2);
  assert_int_equal(bw_sup_set_call_timeout(0), 0); /* back to the default */
  assert_int_equal(bw_sup_call_timeout(), BW_SUP_CALL_TIMEOUT_DEFAULT);
  bw_runtime_destroy(rt);
}

/* --- registered supervisors ------------------------------------------------------------ */

static void test_supervisor_names_registered(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t in_kids[] = {KID("i", BW_PERMANENT)};
  static const bw_sup_spec_t inner = {.name = "inner-label", .strategy = BW_ONE_FOR_ONE,
                                      .children = in_kids, .nchildren = 1};
  static const bw_child_spec_t kids[] = {
      {.id = "in", .supervisor = &inner, .type = BW_SUPERVISOR, .name = "the-inner"}};
  static const bw_sup_spec_t root = {.name = "the-root", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 10, .children = kids, .nchildren = 1};
  bw_pid_t sup, p;
  assert_int_equal(bw_supervisor_start(rt, &root, &sup, NULL), 0);
  assert_string_equal(log_take(1), "+i");
  /* the root under its spec's name, the nested one under its child spec's */
  assert_int_equal(bw_whereis(rt, "the-root", &p), 0);
  assert_true(p == sup);
  bw_pid_t in1 = pid_of(rt, sup, "in");
  assert_int_equal(bw_whereis(rt, "the-inner", &p), 0);
  assert_true(p == in1);
  assert_int_equal(bw_whereis(rt, "inner-label", &p), BW_ENOTFOUND);
  /* the name follows the nested supervisor's restart (the old i and the
   * new one overlap: killed, its supervisor did not wait for it) */
  bw_pid_t i1 = pid_of(rt, in1, "i");
  assert_int_equal(bw_exit(rt, in1, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, in1, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, i1, 0, NULL), 0);
  const char *l = log_take(2);
  assert_true(strcmp(l, "-i +i") == 0 || strcmp(l, "+i -i") == 0);
  settle(rt, sup);
  bw_pid_t in2 = pid_of(rt, sup, "in");
  assert_true(in2 != in1);
  assert_int_equal(bw_whereis(rt, "the-inner", &p), 0);
  assert_true(p == in2);
  /* a second tree naming a child "the-inner" fails to start: EEXIST */
  static const bw_child_spec_t kids2[] = {
      KID("a", BW_PERMANENT),
      {.id = "dup", .supervisor = &inner, .type = BW_SUPERVISOR, .name = "the-inner"}};
  static const bw_sup_spec_t root2 = {.strategy = BW_ONE_FOR_ONE, .children = kids2,
                                      .nchildren = 2};
  bw_sup_error_t err;
  bw_pid_t sup2;
  assert_int_equal(bw_supervisor_start(rt, &root2, &sup2, &err), BW_EEXIST);
  assert_int_equal(err.code, BW_EEXIST);
  assert_string_equal(err.child, "dup");
  assert_string_equal(log_take(2), "+a -a"); /* rolled back */
  /* and a second root of the same name */
  assert_int_equal(bw_supervisor_start(rt, &root, &sup2, &err), BW_EEXIST);
  assert_string_equal(err.child, "the-root");
  /* both names go with the tree */
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_string_equal(log_take(1), "-i");
  assert_int_equal(bw_whereis(rt, "the-root", &p), BW_ENOTFOUND);
  assert_int_equal(bw_whereis(rt, "the-inner", &p), BW_ENOTFOUND);
  /* and are free for the next one */
  assert_int_equal(bw_supervisor_start(rt, &root, &sup2, NULL), 0);
  assert_string_equal(log_take(1), "+i");
  assert_int_equal(bw_whereis(rt, "the-root", &p), 0);
  assert_true(p == sup2);
  bw_runtime_destroy(rt);
}

/* --- run-time API errors -------------------------------------------------------------- */

static void test_api_error_cases(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup = start_five(rt, BW_ONE_FOR_ONE);
  bw_pid_t p;
  assert_int_equal(bw_sup_restart_child(rt, sup, "a", &p), BW_ERUNNING);
  assert_int_equal(bw_sup_delete_child(rt, sup, "a"), BW_ERUNNING);
  assert_int_equal(bw_sup_terminate_child(rt, sup, "nope"), BW_ENOTFOUND);
  assert_int_equal(bw_sup_restart_child(rt, sup, "nope", &p), BW_ENOTFOUND);
  assert_int_equal(bw_sup_start_child(rt, sup, &five[0], &p), BW_EALREADY);
  assert_int_equal(bw_sup_terminate_child(rt, sup, "b"), 0);
  assert_string_equal(log_take(1), "-b");
  assert_int_equal(bw_sup_start_child(rt, sup, &five[1], &p), BW_EALREADY);
  assert_int_equal(bw_sup_restart_child(rt, sup, "b", &p), 0);
  assert_string_equal(log_take(1), "+b");
  assert_true(bw_is_alive(rt, p));
  assert_int_equal(bw_sup_terminate_child(rt, sup, "b"), 0);
  log_take(1);
  assert_int_equal(bw_sup_delete_child(rt, sup, "b"), 0);
  assert_int_equal(bw_sup_delete_child(rt, sup, "b"), BW_ENOTFOUND);
  static const bw_child_spec_t extra = KID("f", BW_PERMANENT);
  assert_int_equal(bw_sup_start_child(rt, sup, &extra, &p), 0);
  assert_string_equal(log_take(1), "+f");
  static const bw_child_spec_t bad = {.id = "g"};
  assert_int_equal(bw_sup_start_child(rt, sup, &bad, &p), BW_EINVAL);
  bw_child_info_t info[8];
  size_t n = 0;
  /* a pid that is no supervisor's is refused at once (it would never
   * answer); a dead one is noproc */
  bw_pid_t worker = BW_PID_NONE;
  assert_int_equal(bw_sup_child_pid(rt, sup, "a", &worker), 0);
  assert_int_equal(bw_sup_which_children(rt, worker, info, 8, &n), BW_EINVAL);
  assert_int_equal(bw_sup_count_children(rt, worker, &(bw_child_counts_t){0}), BW_EINVAL);
  assert_int_equal(bw_sup_which_children(rt, (bw_pid_t)0x7777000000001ull, info, 8, &n),
                   BW_ENOPROC);
  assert_int_equal(bw_sup_which_children(rt, sup, info, 8, &n), 0);
  assert_int_equal(n, 5);
  assert_string_equal(info[0].id, "a");
  assert_string_equal(info[4].id, "f");
  assert_int_equal(bw_sup_which_children(rt, sup, NULL, 0, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(bw_sup_which_children(rt, BW_PID_NONE, info, 8, &n), BW_ENOPROC);
  bw_runtime_destroy(rt);
}

static void test_registered_name_follows_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  static const bw_child_spec_t kids[] = {
      {.id = "n", .behaviour = &worker, .arg = "n", .name = "the-worker"}};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  log_take(1);
  bw_pid_t a, b;
  assert_int_equal(bw_whereis(rt, "the-worker", &a), 0);
  crash(rt, sup, "n");
  log_take(2);
  settle(rt, sup);
  assert_int_equal(bw_whereis(rt, "the-worker", &b), 0);
  assert_true(a != b);
  assert_true(b == pid_of(rt, sup, "n"));
  bw_runtime_destroy(rt);
}

/* --- telemetry events -------------------------------------------------------------------- */

static bw_event_t events[64];
static int nevents;

static int rec_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx;
  (void)st;
  if (m->type == BW_MSG_EVENT && nevents < 64) {
    pthread_mutex_lock(&log_mx);
    memcpy(&events[nevents++], m->data, sizeof(bw_event_t));
    pthread_mutex_unlock(&log_mx);
    log_add('E', bw_event_type_name(((const bw_event_t *)m->data)->type));
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t recorder = {.name = "recorder", .handle = rec_handle};

/* Waits until the recorder holds n events (10 s cap against a hang). */
static int wait_events(int n) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 10;
  pthread_mutex_lock(&log_mx);
  while (nevents < n)
    if (pthread_cond_timedwait(&log_cv, &log_mx, &dl) != 0)
      break;
  int got = nevents;
  pthread_mutex_unlock(&log_mx);
  return got;
}

static void test_events_published(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  nevents = 0;
  bw_pid_t rec;
  assert_int_equal(bw_spawn(rt, &recorder, NULL, NULL, &rec), 0);
  assert_int_equal(bw_event_subscribe(rt, rec, BW_EV_ALL), 0);
  assert_int_equal(bw_clock_advance(rt, 5), 0);
  static const bw_child_spec_t kids[] = {KID("a", BW_PERMANENT), KID("b", BW_PERMANENT)};
  static const bw_sup_spec_t spec = {.name = "evsup", .strategy = BW_REST_FOR_ONE,
                                     .intensity = 1, .children = kids, .nchildren = 2};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(wait_events(2), 2);
  bw_pid_t a = pid_of(rt, sup, "a");
  crash(rt, sup, "a");
  /* exited a, exited b (stopped by rest_for_one), restarted a, restarted b */
  assert_int_equal(wait_events(6), 6);
  crash(rt, sup, "a");
  /* the 2nd restart in the period escalates: the tree stops */
  assert_int_equal(wait_events(10), 10);
  log_reset();
  assert_int_equal(events[0].type, BW_EV_CHILD_STARTED);
  assert_string_equal(events[0].subject_id, "a");
  assert_string_equal(events[0].source_name, "evsup");
  assert_true(events[0].source == sup);
  assert_int_equal(events[0].time_ns, 5000000);
  assert_int_equal(events[1].type, BW_EV_CHILD_STARTED);
  assert_string_equal(events[1].subject_id, "b");
  assert_int_equal(events[2].type, BW_EV_CHILD_EXITED);
  assert_true(events[2].subject == a);
  assert_int_equal(events[2].reason_kind, BW_REASON_CRASH);
  assert_string_equal(events[2].text, "asked to crash");
  assert_int_equal(events[3].type, BW_EV_CHILD_EXITED);
  assert_string_equal(events[3].subject_id, "b");
  assert_int_equal(events[3].reason_kind, BW_REASON_SHUTDOWN);
  assert_int_equal(events[4].type, BW_EV_CHILD_RESTARTED);
  assert_string_equal(events[4].subject_id, "a");
  assert_int_equal(events[4].a, 1);
  assert_int_equal(events[5].type, BW_EV_CHILD_RESTARTED);
  assert_string_equal(events[5].subject_id, "b");
  assert_int_equal(events[6].type, BW_EV_CHILD_EXITED);
  assert_int_equal(events[7].type, BW_EV_SUP_ESCALATED);
  assert_int_equal(events[8].type, BW_EV_CHILD_EXITED);
  assert_string_equal(events[8].subject_id, "b");
  assert_int_equal(events[9].type, BW_EV_SUP_SHUTDOWN);
  assert_int_equal(events[9].reason_code, BW_ELIMIT);
  assert_int_equal(bw_event_unsubscribe(rt, rec), 0);
  assert_int_equal(bw_event_unsubscribe(rt, rec), BW_ENOTFOUND);
  assert_int_equal(bw_event_subscribe(rt, BW_PID_NONE, BW_EV_ALL), BW_EINVAL);
  bw_runtime_destroy(rt);
}

/* --- watchdog ------------------------------------------------------------------------------ */

enum { MSG_SPIN = 10 };
static int spin_flag; /* accessed with __atomic builtins */

static int spin_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  if (m->type == MSG_SPIN) {
    log_add('s', ((worker_t *)st)->id);
    while (__atomic_load_n(&spin_flag, __ATOMIC_ACQUIRE))
      ; /* a handler stuck in a loop */
    return BW_CONTINUE;
  }
  return w_handle(ctx, st, m);
}

static const bw_behaviour_t spinner = {.name = "spinner",
                                       .state_size = sizeof(worker_t),
                                       .init = w_init,
                                       .handle = spin_handle,
                                       .terminate = w_term};

static void test_watchdog_replaces_hung_child(void **state) {
  (void)state;
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  o.log_level = getenv("BW_LOG_LEVEL") ? BW_LOG_DEFAULT : BW_LOG_OFF; /* as support.h: quiet */
  o.manual_clock = true;
  o.workers = 1; /* the hung handler holds the only scheduler thread */
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  log_reset();
  nevents = 0;
  bw_pid_t rec, pinger;
  assert_int_equal(bw_spawn(rt, &recorder, NULL, NULL, &rec), 0);
  assert_int_equal(bw_event_subscribe(rt, rec, BW_EV_MASK(BW_EV_WATCHDOG_HUNG)), 0);
  assert_int_equal(bw_spawn(rt, &worker, "pinger", NULL, &pinger), 0);
  static const bw_child_spec_t kids[] = {{.id = "spin", .behaviour = &spinner, .arg = "spin",
                                          .hang_limit_ms = 100, .hang_is_crash = true,
                                          .name = "the-spinner"}};
  static const bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids,
                                     .nchildren = 1};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_string_equal(log_take(2), "+pinger +spin");
  bw_pid_t old = pid_of(rt, sup, "spin");
  __atomic_store_n(&spin_flag, 1, __ATOMIC_RELEASE);
  assert_int_equal(bw_send(rt, old, MSG_SPIN, NULL, 0), 0);
  assert_string_equal(log_take(1), "sspin");
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(nevents, 0); /* not yet past the limit */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  /* reported, a spare worker started, the supervisor replaced the child */
  assert_int_equal(wait_events(1), 1);
  assert_int_equal(events[0].type, BW_EV_WATCHDOG_HUNG);
  assert_true(events[0].subject == old);
  assert_string_equal(events[0].subject_id, "spin"); /* from the supervisor */
  assert_true(events[0].source == sup);
  assert_int_equal(events[0].a, 100000000);
  assert_int_equal(events[0].b, 100);
  /* the recorder's own entry and the replacement's init, in either order */
  const char *l = log_take(2);
  assert_non_null(strstr(l, "Ewatchdog_hung"));
  assert_non_null(strstr(l, "+spin"));
  bw_pid_t fresh = pid_of(rt, sup, "spin");
  assert_true(fresh != old);
  bw_pid_t named;
  assert_int_equal(bw_whereis(rt, "the-spinner", &named), 0);
  assert_true(named == fresh);
  /* other actors are still served */
  bw_reply_t r;
  assert_int_equal(bw_call(rt, pinger, MSG_PING, NULL, 0, 0, &r), 0);
  assert_int_equal(bw_call(rt, fresh, MSG_PING, NULL, 0, 0, &r), 0);
  /* the old handler returns and the pending kill takes it (no terminate) */
  __atomic_store_n(&spin_flag, 0, __ATOMIC_RELEASE);
  bw_reason_t why;
  assert_int_equal(bw_wait_exit(rt, old, 0, &why), 0);
  settle(rt, sup);
  assert_string_equal(log_take(0), "");
  assert_true(bw_is_alive(rt, fresh));
  bw_child_info_t info[1];
  size_t n;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 1, &n), 0);
  assert_int_equal(info[0].restarts, 1);
  bw_runtime_destroy(rt);
}

/* --- validation ------------------------------------------------------------------------ */

static void test_invalid_specs(void **state) {
  (void)state;
  bw_sup_error_t err;
  static const bw_child_spec_t dup[] = {KID("x", BW_PERMANENT), KID("x", BW_PERMANENT)};
  bw_sup_spec_t s1 = {.name = "s", .children = dup, .nchildren = 2};
  assert_int_equal(bw_supervisor_validate(&s1, &err), BW_EINVAL);
  assert_string_equal(err.child, "x");
  assert_non_null(strstr(err.message, "duplicate"));

  static const bw_child_spec_t nobeh[] = {{.id = "nb"}};
  bw_sup_spec_t s2 = {.children = nobeh, .nchildren = 1};
  assert_int_equal(bw_supervisor_validate(&s2, &err), BW_EINVAL);
  assert_string_equal(err.child, "nb");

  bw_sup_spec_t s3 = {.strategy = BW_SIMPLE_ONE_FOR_ONE, .children = dup, .nchildren = 2};
  assert_int_equal(bw_supervisor_validate(&s3, &err), BW_EINVAL);
  assert_non_null(strstr(err.message, "exactly one"));

  bw_sup_spec_t s4 = {.intensity = -2, .children = five, .nchildren = 5};
  assert_int_equal(bw_supervisor_validate(&s4, &err), BW_EINVAL);
  bw_sup_spec_t s5 = {.period_ms = 86400001ull, .children = five, .nchildren = 5};
  assert_int_equal(bw_supervisor_validate(&s5, &err), BW_EINVAL);

  /* nested: the error names the nested child */
  static const bw_child_spec_t bad_in[] = {{.id = "deep", .shutdown_ms = -5, .behaviour = &worker}};
  static const bw_sup_spec_t inner = {.children = bad_in, .nchildren = 1};
  static const bw_child_spec_t outer_kids[] = {{.id = "in", .supervisor = &inner}};
  bw_sup_spec_t s6 = {.children = outer_kids, .nchildren = 1};
  assert_int_equal(bw_supervisor_validate(&s6, &err), BW_EINVAL);
  assert_string_equal(err.child, "deep");

  assert_int_equal(bw_supervisor_validate(NULL, &err), BW_EINVAL);
  bw_sup_spec_t ok = {.children = five, .nchildren = 5};
  assert_int_equal(bw_supervisor_validate(&ok, &err), 0);

  /* rejected before anything starts */
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &s1, &sup, &err), BW_EINVAL);
  assert_string_equal(log_take(0), "");
  assert_int_equal(bw_supervisor_start(NULL, &ok, &sup, &err), BW_EINVAL);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rest_for_one_order),
      cmocka_unit_test(test_one_for_one_order),
      cmocka_unit_test(test_one_for_all_order),
      cmocka_unit_test(test_stale_pid_after_restart),
      cmocka_unit_test(test_restart_types_one_for_one),
      cmocka_unit_test(test_temporary_not_restarted_by_group),
      cmocka_unit_test(test_restart_types_each_strategy),
      cmocka_unit_test(test_intensity_escalates_from_depth_3),
      cmocka_unit_test(test_failed_restarts_count),
      cmocka_unit_test(test_intensity_window_boundary),
      cmocka_unit_test(test_stop_while_restarts_fail),
      cmocka_unit_test(test_shutdown_timeout_kills),
      cmocka_unit_test(test_stop_whole_tree_deepest_first),
      cmocka_unit_test(test_runtime_stop_is_ordered),
      cmocka_unit_test(test_start_failure_rolls_back),
      cmocka_unit_test(test_nested_start_failure_names_path),
      cmocka_unit_test(test_remote_child_without_node),
      cmocka_unit_test(test_simple_one_for_one),
      cmocka_unit_test(test_backoff_delays_restart),
      cmocka_unit_test(test_backoff_jitter_bounds),
      cmocka_unit_test(test_backoff_per_child_timer),
      cmocka_unit_test(test_backoff_with_escalation),
      cmocka_unit_test(test_backoff_resets_after_stable_period),
      cmocka_unit_test(test_backoff_group_rest_for_one),
      cmocka_unit_test(test_backoff_group_retry),
      cmocka_unit_test(test_backoff_terminate_and_stop),
      cmocka_unit_test(test_api_call_deadline),
      cmocka_unit_test(test_supervisor_names_registered),
      cmocka_unit_test(test_api_error_cases),
      cmocka_unit_test(test_registered_name_follows_restart),
      cmocka_unit_test(test_events_published),
      cmocka_unit_test(test_watchdog_replaces_hung_child),
      cmocka_unit_test(test_invalid_specs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
