/*
 * Shared helpers for the bulwark test suites.
 *
 * The rules these helpers exist for (STYLE.md, "Tests"):
 * - cmocka asserts only run on the main thread. Actors and worker threads
 *   record what they saw (in their state, or in a struct guarded by a
 *   bwt_sync_t) and the main thread asserts afterwards.
 * - Time-based behaviour uses the manual clock. The real-time deadlines below
 *   only turn a hang into a failure; no test waits on them when it passes.
 */
#ifndef BW_TESTS_SUPPORT_H
#define BW_TESTS_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bulwark/bulwark.h"

/* How long a waiting helper gives up after: generous, for sanitizer builds on
 * a loaded 2-core machine (what the tests wait for takes milliseconds there).
 * Only a broken runtime ever reaches it; it is short enough that a few such
 * failures in one suite still end before ctest's timeout. */
#ifndef BWT_WAIT_SECONDS
#define BWT_WAIT_SECONDS 30
#endif

/* BW_TEST_SCALE: an integer divisor for the big-volume counts only, so CI
 * can shrink them under sanitizers. Defaults to 1 (the full counts). */
static inline unsigned long bwt_scale(void) {
  const char *s = getenv("BW_TEST_SCALE");
  long v = s != NULL ? strtol(s, NULL, 10) : 1;
  return v < 1 ? 1ul : (unsigned long)v;
}

static inline unsigned long bwt_scaled(unsigned long full) {
  unsigned long v = full / bwt_scale();
  return v < 1 ? 1 : v;
}

/* The suites crash actors on purpose, and the logger would report every
 * crash on stderr (bulwark/log.h): a test's runtime logs nothing unless
 * BW_LOG_LEVEL asks for lines (BW_LOG_LEVEL=info ctest -V, to see them). */
static inline void bwt_quiet_log(bw_runtime_opts_t *o) {
  const char *v = getenv("BW_LOG_LEVEL");
  if (v == NULL || v[0] == '\0')
    o->log_level = BW_LOG_OFF;
}

/* A runtime for one test: workers (0 = online CPUs), manual clock or not. */
static inline bw_runtime_t *bwt_runtime(unsigned workers, bool manual_clock) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bwt_quiet_log(&o);
  o.workers = workers;
  o.manual_clock = manual_clock;
  bw_runtime_t *rt = NULL;
  int rc = bw_runtime_create(&o, &rt);
  assert_int_equal(rc, 0);
  assert_non_null(rt);
  return rt;
}

static inline bw_runtime_stats_t bwt_stats(const bw_runtime_t *rt) {
  bw_runtime_stats_t s;
  memset(&s, 0xA5, sizeof s);
  assert_int_equal(bw_runtime_stats(rt, &s), 0);
  return s;
}

/* The accounting invariant of runtime.h, for a runtime whose mailboxes are
 * drained (for instance after bw_runtime_stop). */
static inline void bwt_assert_accounting(const bw_runtime_stats_t *s) {
  uint64_t sum = 0;
  for (int i = 0; i < BW_DL__COUNT; i++)
    sum += s->dead_by_reason[i];
  assert_int_equal(s->dead_letters, sum);
  assert_int_equal(s->sent, s->handled + s->dead_letters + s->forwarded);
}

static inline struct timespec bwt_deadline_in(long seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += seconds;
  return ts;
}

static inline struct timespec bwt_deadline(void) { return bwt_deadline_in(BWT_WAIT_SECONDS); }

static inline bool bwt_past(const struct timespec *dl) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec > dl->tv_sec ||
         (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

/* Lets other threads run while the main thread polls for a condition it
 * cannot wait on (bw_is_alive, a counter). Not a timing assumption. */
static inline void bwt_relax(unsigned *spins) {
  if (++*spins < 64) {
    sched_yield();
  } else {
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Polls expr until it holds; fails the test if it never does (within
 * seconds, for BWT_POLL_FOR). */
#define BWT_POLL(expr) BWT_POLL_FOR(expr, BWT_WAIT_SECONDS)
#define BWT_POLL_FOR(expr, seconds)                                            \
  do {                                                                         \
    struct timespec bwt_dl_ = bwt_deadline_in(seconds);                        \
    unsigned bwt_spins_ = 0;                                                   \
    while (!(expr)) {                                                          \
      if (bwt_past(&bwt_dl_))                                                  \
        fail_msg("gave up waiting for: %s", #expr);                            \
      bwt_relax(&bwt_spins_);                                                  \
    }                                                                          \
  } while (0)

/* A mutex and condvar that actors signal after recording something. */
typedef struct bwt_sync {
  pthread_mutex_t mu;
  pthread_cond_t cv;
} bwt_sync_t;

#define BWT_SYNC_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER}

static inline void bwt_lock(bwt_sync_t *s) { pthread_mutex_lock(&s->mu); }

/* Unlocks and wakes every waiter: call after changing guarded data. */
static inline void bwt_unlock_signal(bwt_sync_t *s) {
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static inline void bwt_unlock(bwt_sync_t *s) { pthread_mutex_unlock(&s->mu); }

/* Waits until expr (evaluated under s's lock) holds; fails the test if it
 * never does. */
#define BWT_AWAIT(s, expr)                                                     \
  do {                                                                         \
    struct timespec bwt_dl_ = bwt_deadline();                                  \
    bool bwt_ok_;                                                              \
    pthread_mutex_lock(&(s)->mu);                                              \
    while (!(bwt_ok_ = (expr))) {                                              \
      if (pthread_cond_timedwait(&(s)->cv, &(s)->mu, &bwt_dl_) == ETIMEDOUT) { \
        bwt_ok_ = (expr);                                                      \
        break;                                                                 \
      }                                                                        \
    }                                                                          \
    pthread_mutex_unlock(&(s)->mu);                                            \
    if (!bwt_ok_)                                                              \
      fail_msg("gave up waiting for: %s", #expr);                              \
  } while (0)

/*
 * A gate that blocking handlers (on dedicated threads) wait at until the main
 * thread opens it. waiting counts the threads inside, so the main thread can
 * tell that a handler is blocked (and its mailbox will only fill).
 */
typedef struct bwt_gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  int waiting; /* threads blocked now */
  int entered; /* threads that ever arrived */
} bwt_gate_t;

static inline void bwt_gate_init(bwt_gate_t *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = false;
  g->waiting = 0;
  g->entered = 0;
}

static inline void bwt_gate_destroy(bwt_gate_t *g) {
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
}

/* From a handler: blocks until the gate is open. Returns false if it was
 * never opened (the test failed and gave up). */
static inline bool bwt_gate_pass(bwt_gate_t *g) {
  struct timespec dl = bwt_deadline();
  bool ok = true;
  pthread_mutex_lock(&g->mu);
  g->waiting++;
  g->entered++;
  pthread_cond_broadcast(&g->cv);
  while (!g->open) {
    if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT) {
      ok = g->open;
      break;
    }
  }
  g->waiting--;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  return ok;
}

static inline void bwt_gate_open(bwt_gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* Main thread: waits until n threads are blocked at the gate. */
static inline bool bwt_gate_await_waiting(bwt_gate_t *g, int n) {
  struct timespec dl = bwt_deadline();
  bool ok = true;
  pthread_mutex_lock(&g->mu);
  while (g->waiting < n) {
    if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT) {
      ok = g->waiting >= n;
      break;
    }
  }
  pthread_mutex_unlock(&g->mu);
  return ok;
}

static inline bool bwt_reason_eq(const bw_reason_t *a, const bw_reason_t *b) {
  return a->kind == b->kind && a->code == b->code &&
         strncmp(a->text, b->text, BW_REASON_TEXT_MAX) == 0;
}

/* Waits until pid has exited (exits are asynchronous), including telling
 * its links and monitors: a test that then checks that something did NOT
 * happen to a linked actor needs the exit complete, not just begun. */
#define BWT_AWAIT_DEAD(rt, pid)                                                \
  do {                                                                         \
    BWT_POLL(!bw_is_alive((rt), (pid)));                                       \
    assert_int_equal(bw_wait_exit((rt), (pid), 0, NULL), 0);                   \
  } while (0)

/* Runs a suite; BWT_FILTER=pattern (cmocka's wildcards) runs only the
 * matching tests, for debugging one of them. */
static inline void bwt_apply_filter(void) {
  const char *f = getenv("BWT_FILTER");
  if (f != NULL && *f != '\0')
    cmocka_set_test_filter(f);
}
#define BWT_RUN_SUITE(tests) (bwt_apply_filter(), cmocka_run_group_tests(tests, NULL, NULL))

#endif
