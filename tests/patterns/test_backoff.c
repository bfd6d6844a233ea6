/*
 * Retry delays and the retry budget, without an executor: exact delays for
 * fixed and exponential backoff, the documented bounds of each jitter kind
 * over many draws, capping, determinism per seed, option validation; the
 * budget's bound under a storm (retries <= ratio * calls + floor), its
 * refill as the window moves (manual clock), exact withdrawals from
 * several threads, and its validation; the one retry decision
 * (patterns/retry_internal.h) step by step.
 */
#include "support.h"

#include <math.h>

#include "bulwark/retry.h"
#include "patterns/retry_internal.h"

#define DRAWS 20000
#define USER_ERR_CODE (-1000) /* a user failure: not retried by default */

static bw_retry_backoff_t bo(int kind, uint64_t initial, uint64_t max, double mult) {
  bw_retry_backoff_t b = {.kind = kind, .initial_ms = initial, .max_ms = max, .multiplier = mult};
  return b;
}

static void test_fixed_exact(void **state) {
  (void)state;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_FIXED, 250, 1000, 0.0); /* multiplier ignored */
  bw_retry_backoff_state_t st;
  assert_int_equal(bw_retry_backoff_start(&b, 1, &st), 0);
  for (int i = 0; i < 10; i++)
    assert_int_equal(bw_retry_backoff_next(&b, &st), 250);
  assert_int_equal(st.retries, 10);
}

static void test_exponential_exact_and_capped(void **state) {
  (void)state;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 100, 1000, 2.0);
  bw_retry_backoff_state_t st;
  assert_int_equal(bw_retry_backoff_start(&b, 7, &st), 0);
  const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    assert_int_equal(bw_retry_backoff_next(&b, &st), want[i]);
  /* a fractional multiplier truncates to whole ms, from the exact product */
  b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 100, 100000, 1.5);
  assert_int_equal(bw_retry_backoff_start(&b, 7, &st), 0);
  const uint64_t want15[] = {100, 150, 225, 337, 506, 759};
  for (size_t i = 0; i < sizeof want15 / sizeof want15[0]; i++)
    assert_int_equal(bw_retry_backoff_next(&b, &st), want15[i]);
  /* multiplier 1: a fixed delay */
  b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 40, 100, 1.0);
  assert_int_equal(bw_retry_backoff_start(&b, 7, &st), 0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(bw_retry_backoff_next(&b, &st), 40);
  /* a long run stays at the cap (no overflow of the running product) */
  b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 1, BW_RETRY_DELAY_MAX_MS, BW_RETRY_MULTIPLIER_MAX);
  assert_int_equal(bw_retry_backoff_start(&b, 7, &st), 0);
  for (int i = 0; i < 1000; i++) {
    uint64_t d = bw_retry_backoff_next(&b, &st);
    assert_true(d >= 1 && d <= BW_RETRY_DELAY_MAX_MS);
    if (i >= 3)
      assert_int_equal(d, BW_RETRY_DELAY_MAX_MS);
  }
}

/* The exponential ceiling of retry n (0-based) for initial 10, x2, cap 5000. */
static uint64_t ceil_n(int n) {
  uint64_t e = 10;
  for (int i = 0; i < n && e < 5000; i++)
    e *= 2;
  return e < 5000 ? e : 5000;
}

static void test_full_jitter_bounds(void **state) {
  (void)state;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_FULL_JITTER, 10, 5000, 2.0);
  for (int n = 0; n < 12; n++) {
    uint64_t lo = UINT64_MAX, hi = 0;
    double sum = 0;
    for (int k = 0; k < DRAWS / 10; k++) {
      bw_retry_backoff_state_t st;
      assert_int_equal(bw_retry_backoff_start(&b, (uint64_t)k * 977 + 13, &st), 0);
      uint64_t d = 0;
      for (int i = 0; i <= n; i++)
        d = bw_retry_backoff_next(&b, &st);
      assert_true(d <= ceil_n(n));
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
      sum += (double)d;
    }
    /* spread over the whole range [0, e]: uniform, mean about e/2 */
    uint64_t e = ceil_n(n);
    assert_true(lo <= e / 10);
    assert_true(hi >= e - e / 10);
    double mean = sum / (DRAWS / 10);
    assert_true(fabs(mean - (double)e / 2) <= (double)e * 0.1);
  }
}

static void test_equal_jitter_bounds(void **state) {
  (void)state;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_EQUAL_JITTER, 10, 5000, 2.0);
  for (int n = 0; n < 12; n++) {
    uint64_t e = ceil_n(n), lo = UINT64_MAX, hi = 0;
    for (int k = 0; k < DRAWS / 10; k++) {
      bw_retry_backoff_state_t st;
      assert_int_equal(bw_retry_backoff_start(&b, (uint64_t)k * 31 + 5, &st), 0);
      uint64_t d = 0;
      for (int i = 0; i <= n; i++)
        d = bw_retry_backoff_next(&b, &st);
      assert_true(d >= e / 2 && d <= e);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
    }
    assert_true(lo <= e / 2 + e / 20 + 1); /* reaches both ends */
    assert_true(hi >= e - e / 20 - 1);
  }
}

static void test_decorrelated_bounds(void **state) {
  (void)state;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_DECORRELATED, 50, 3000, 3.0);
  bw_retry_backoff_state_t st;
  assert_int_equal(bw_retry_backoff_start(&b, 99, &st), 0);
  uint64_t prev = 50;
  int at_cap = 0;
  uint64_t lo = UINT64_MAX;
  for (int i = 0; i < DRAWS; i++) {
    if (i % 20 == 0) { /* new sequences now and then: the walk starts over at base */
      assert_int_equal(bw_retry_backoff_start(&b, (uint64_t)i, &st), 0);
      prev = 50;
    }
    uint64_t d = bw_retry_backoff_next(&b, &st);
    assert_true(d >= 50 && d <= 3000);
    assert_true(d <= prev * 3); /* AWS: rand[base, prev * 3], then capped */
    at_cap += d == 3000;
    lo = d < lo ? d : lo;
    prev = d;
  }
  assert_true(at_cap > 0);  /* the cap is reached ... */
  assert_true(lo < 60);     /* ... and the base end too */
}

static void test_deterministic_per_seed(void **state) {
  (void)state;
  for (int kind = BW_RETRY_BACKOFF_FULL_JITTER; kind <= BW_RETRY_BACKOFF_DECORRELATED; kind++) {
    bw_retry_backoff_t b = bo(kind, 10, 100000, 2.0);
    bw_retry_backoff_state_t s1, s2, s3;
    assert_int_equal(bw_retry_backoff_start(&b, 42, &s1), 0);
    assert_int_equal(bw_retry_backoff_start(&b, 42, &s2), 0);
    assert_int_equal(bw_retry_backoff_start(&b, 43, &s3), 0);
    int differ = 0;
    for (int i = 0; i < 12; i++) {
      uint64_t a = bw_retry_backoff_next(&b, &s1);
      assert_int_equal(a, bw_retry_backoff_next(&b, &s2));
      differ += a != bw_retry_backoff_next(&b, &s3);
    }
    assert_true(differ > 0);
  }
  /* the generator: splitmix64's published first output for seed 0 */
  uint64_t s = 0;
  assert_true(bw_retry_rand64(&s) == 0xE220A8397B1DCDAFull);
}

static void test_backoff_validation(void **state) {
  (void)state;
  bw_retry_backoff_state_t st;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 100, 1000, 2.0);
  assert_int_equal(bw_retry_backoff_validate(&b), 0);
  assert_int_equal(bw_retry_backoff_validate(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_backoff_start(NULL, 1, &st), BW_EINVAL);
  assert_int_equal(bw_retry_backoff_start(&b, 1, NULL), BW_EINVAL);
  b.kind = BW_RETRY_BACKOFF__COUNT; /* unknown kinds */
  assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
  b.kind = -1;
  assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
  assert_int_equal(bw_retry_backoff_start(&b, 1, &st), BW_EINVAL);
  b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 0, 1000, 2.0); /* zero delay */
  assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
  b = bo(BW_RETRY_BACKOFF_FIXED, 0, 1000, 2.0);
  assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
  b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 100, 99, 2.0); /* max < initial */
  assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
  b = bo(BW_RETRY_BACKOFF_EXPONENTIAL, 100, BW_RETRY_DELAY_MAX_MS + 1, 2.0);
  assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
  for (int kind = BW_RETRY_BACKOFF_EXPONENTIAL; kind < BW_RETRY_BACKOFF__COUNT; kind++) {
    b = bo(kind, 100, 1000, 0.5); /* multiplier < 1 */
    assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
    b = bo(kind, 100, 1000, 0.0);
    assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
    b = bo(kind, 100, 1000, NAN);
    assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
    b = bo(kind, 100, 1000, BW_RETRY_MULTIPLIER_MAX * 2);
    assert_int_equal(bw_retry_backoff_validate(&b), BW_EINVAL);
    b = bo(kind, 100, 100, 1.0); /* the tightest valid one */
    assert_int_equal(bw_retry_backoff_validate(&b), 0);
  }
}

/* --- Budget ------------------------------------------------------------------ */

static bw_retry_budget_opts_t bopts(double ratio, uint32_t floor, uint64_t window) {
  bw_retry_budget_opts_t o;
  bw_retry_budget_opts_init(&o);
  o.ratio = ratio;
  o.min_retries_per_sec = floor;
  o.window_ms = window;
  return o;
}

static void test_budget_validation(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_retry_budget_t b;
  bw_retry_budget_opts_t o = bopts(0.1, 1, 10000);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), 0);
  assert_int_equal(bw_retry_budget_init(NULL, rt, &o), BW_EINVAL);
  assert_int_equal(bw_retry_budget_init(&b, NULL, &o), BW_EINVAL);
  assert_int_equal(bw_retry_budget_init(&b, rt, NULL), BW_EINVAL);
  const double bad_ratio[] = {-0.01, 1.01, 2.0, NAN};
  for (size_t i = 0; i < sizeof bad_ratio / sizeof bad_ratio[0]; i++) {
    o = bopts(bad_ratio[i], 1, 10000);
    assert_int_equal(bw_retry_budget_init(&b, rt, &o), BW_EINVAL);
  }
  o = bopts(0.1, 1, 0); /* zero window */
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), BW_EINVAL);
  o = bopts(0.1, 1, BW_RETRY_BUDGET_SLICES - 1);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), BW_EINVAL);
  o = bopts(0.1, 1, 3600001);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), BW_EINVAL);
  o = bopts(0.1, 1000001, 10000);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), BW_EINVAL);
  /* ratio 0 and 1 are both valid; an uninitialised budget is refused */
  o = bopts(1.0, 0, 10000);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), 0);
  o = bopts(0.0, 0, 10000);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), 0);
  assert_int_equal(bw_retry_budget_try_withdraw(&b), BW_EBUDGET); /* empty budget */
  bw_retry_budget_t junk;
  memset(&junk, 0, sizeof junk);
  bw_retry_budget_stats_t st;
  assert_int_equal(bw_retry_budget_deposit(&junk), BW_EINVAL);
  assert_int_equal(bw_retry_budget_try_withdraw(&junk), BW_EINVAL);
  assert_int_equal(bw_retry_budget_deposit(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_budget_try_withdraw(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_budget_stats(&junk, &st), BW_EINVAL);
  assert_int_equal(bw_retry_budget_stats(&b, NULL), BW_EINVAL);
  assert_int_equal(bw_retry_budget_balance(NULL), 0);
  bw_retry_budget_opts_init(NULL); /* no crash */
  bw_runtime_destroy(rt);
}

/* withdraws until refused; returns how many were allowed */
static unsigned drain(bw_retry_budget_t *b) {
  unsigned n = 0;
  while (bw_retry_budget_try_withdraw(b) == 0)
    n++;
  return n;
}

static void test_budget_storm_bound(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_retry_budget_t b;
  /* 10% of calls, floor 2/s over a 10 s window = 20 */
  bw_retry_budget_opts_t o = bopts(0.1, 2, 10000);
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), 0);
  assert_int_equal(bw_retry_budget_balance(&b), 20); /* the floor alone */
  for (int i = 0; i < 1000; i++)
    assert_int_equal(bw_retry_budget_deposit(&b), 0);
  assert_int_equal(bw_retry_budget_balance(&b), 120);
  /* a storm: every call wants to retry, many times */
  assert_int_equal(drain(&b), 120); /* exactly ratio * calls + floor */
  assert_int_equal(bw_retry_budget_try_withdraw(&b), BW_EBUDGET);
  /* each new call earns a tenth of a retry */
  for (int i = 0; i < 9; i++)
    assert_int_equal(bw_retry_budget_deposit(&b), 0);
  assert_int_equal(bw_retry_budget_try_withdraw(&b), BW_EBUDGET);
  assert_int_equal(bw_retry_budget_deposit(&b), 0);
  assert_int_equal(bw_retry_budget_try_withdraw(&b), 0);
  assert_int_equal(bw_retry_budget_try_withdraw(&b), BW_EBUDGET);
  bw_retry_budget_stats_t st;
  assert_int_equal(bw_retry_budget_stats(&b, &st), 0);
  assert_int_equal(st.deposits, 1010);
  assert_int_equal(st.withdrawals, 121);
  assert_int_equal(st.refused, 4); /* drain's last try and three more */
  assert_int_equal(st.balance, 0);
  bw_runtime_destroy(rt);
}

static void test_budget_refills_as_window_moves(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_retry_budget_t b;
  bw_retry_budget_opts_t o = bopts(0.5, 0, 1000); /* 100 ms slices, no floor */
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), 0);
  assert_int_equal(drain(&b), 0);
  for (int i = 0; i < 20; i++) /* t = 0: 20 calls, 10 retries */
    bw_retry_budget_deposit(&b);
  assert_int_equal(drain(&b), 10);
  assert_int_equal(bw_clock_advance(rt, 500), 0);
  for (int i = 0; i < 20; i++) /* t = 500: 20 more calls */
    bw_retry_budget_deposit(&b);
  assert_int_equal(drain(&b), 10);
  assert_int_equal(bw_retry_budget_balance(&b), 0);
  /* t = 999: everything still within the window */
  assert_int_equal(bw_clock_advance(rt, 499), 0);
  assert_int_equal(bw_retry_budget_balance(&b), 0);
  /* t = 1000: the t = 0 slice expired, calls and retries together */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(bw_retry_budget_balance(&b), 0); /* 20 calls * 0.5 - 10 */
  /* t = 1500: the t = 500 slice expired too: a fresh window */
  assert_int_equal(bw_clock_advance(rt, 500), 0);
  assert_int_equal(bw_retry_budget_balance(&b), 0);
  for (int i = 0; i < 4; i++)
    bw_retry_budget_deposit(&b);
  assert_int_equal(drain(&b), 2);
  /* withdrawals expire as well: a retry-heavy slice does not block later ones */
  assert_int_equal(bw_clock_advance(rt, 100), 0); /* t = 1600, new slice */
  for (int i = 0; i < 4; i++)
    bw_retry_budget_deposit(&b);
  assert_int_equal(drain(&b), 2);
  assert_int_equal(bw_clock_advance(rt, 1000), 0); /* both expired */
  assert_int_equal(bw_retry_budget_balance(&b), 0);
  for (int i = 0; i < 2; i++)
    bw_retry_budget_deposit(&b);
  assert_int_equal(drain(&b), 1);
  /* the floor refills with time alone */
  bw_retry_budget_t f;
  o = bopts(0.0, 3, 2000); /* 3/s over 2 s = 6 per window */
  assert_int_equal(bw_retry_budget_init(&f, rt, &o), 0);
  assert_int_equal(drain(&f), 6);
  assert_int_equal(bw_clock_advance(rt, 1999), 0);
  assert_int_equal(drain(&f), 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(drain(&f), 6);
  bw_runtime_destroy(rt);
}

/* --- several threads on one budget -------------------------------------- */

#define NTHREADS 4
#define PER_THREAD 5000

typedef struct thr {
  bw_retry_budget_t *b;
  pthread_barrier_t *bar;
  unsigned got;
} thr_t;

static void *deposit_then_withdraw(void *arg) {
  thr_t *t = arg;
  for (int i = 0; i < PER_THREAD; i++)
    bw_retry_budget_deposit(t->b);
  pthread_barrier_wait(t->bar);
  for (int i = 0; i < PER_THREAD; i++)
    if (bw_retry_budget_try_withdraw(t->b) == 0)
      t->got++;
  return NULL;
}

static void test_budget_threads_exact(void **state) {
  (void)state;
  /* manual clock: no slice boundary during the run, so the bound is exact */
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_retry_budget_t b;
  bw_retry_budget_opts_t o = bopts(0.15, 5, 10000); /* 0.15 * 20000 + 50 */
  assert_int_equal(bw_retry_budget_init(&b, rt, &o), 0);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, NTHREADS);
  pthread_t th[NTHREADS];
  thr_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    t[i] = (thr_t){.b = &b, .bar = &bar, .got = 0};
    assert_int_equal(pthread_create(&th[i], NULL, deposit_then_withdraw, &t[i]), 0);
  }
  unsigned total = 0;
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    total += t[i].got;
  }
  pthread_barrier_destroy(&bar);
  assert_int_equal(total, 3050);
  bw_retry_budget_stats_t st;
  assert_int_equal(bw_retry_budget_stats(&b, &st), 0);
  assert_int_equal(st.deposits, NTHREADS * PER_THREAD);
  assert_int_equal(st.withdrawals, 3050);
  assert_int_equal(st.refused, NTHREADS * PER_THREAD - 3050);
  bw_runtime_destroy(rt);
}

static bool never(int status, void *arg) {
  (void)status;
  (void)arg;
  return false;
}

/* The decision's order and answers: the hard rules and the predicate, then
 * attempts, then the deadline (a delay is drawn only past those), then the
 * budget (BW_EBUDGET), else a retry after the drawn delay. */
static void test_retry_decision(void **state) {
  (void)state;
  bw_retry_backoff_t b = bo(BW_RETRY_BACKOFF_FIXED, 100, 100, 0.0);
  bw_retry_backoff_state_t st;
  assert_int_equal(bw_retry_backoff_start(&b, 1, &st), 0);
  bw__retry_ask a = {.status = BW_ETIMEDOUT, .attempts = 1, .max_attempts = 3, .backoff = &b,
                     .bo = &st, .now_ms = 1000};
  uint64_t delay = 0;
  int end = 0;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_AGAIN);
  assert_int_equal(delay, 100);
  assert_int_equal(end, BW_ETIMEDOUT);
  assert_int_equal(st.retries, 1);
  /* final: never retried codes, a dead fixed pid, the predicate, attempts;
   * no delay is drawn for them */
  const int finals[] = {BW_EINVAL, BW_ESHUTDOWN, USER_ERR_CODE};
  for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
    a.status = finals[i];
    assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_FINAL);
    assert_int_equal(end, finals[i]);
  }
  a.status = BW_ENOPROC;
  a.fixed_pid = true;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_FINAL);
  a.fixed_pid = false;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_AGAIN); /* a name: retried */
  a.pred = never;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_FINAL);
  a.pred = NULL;
  a.attempts = 3;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_FINAL);
  assert_int_equal(st.retries, 2);
  /* the deadline: the next delay would end at it */
  a.attempts = 1;
  a.deadline_at_ms = 1100;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_DEADLINE);
  assert_int_equal(end, BW_ETIMEDOUT);
  a.deadline_at_ms = 1101;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_AGAIN);
  /* the budget: refused is BW_EBUDGET, whatever the status */
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_retry_budget_t budget;
  bw_retry_budget_opts_t o;
  bw_retry_budget_opts_init(&o);
  o.ratio = 0.0;
  o.min_retries_per_sec = 0;
  assert_int_equal(bw_retry_budget_init(&budget, rt, &o), 0);
  a.budget = &budget;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_BUDGET);
  assert_int_equal(end, BW_EBUDGET);
  /* a lazily started sequence is started before the draw */
  a.budget = NULL;
  bw_retry_backoff_state_t fresh;
  memset(&fresh, 0xff, sizeof fresh);
  a.bo = &fresh;
  a.bo_start = true;
  a.bo_seed = 7;
  assert_int_equal(bw__retry_decide(&a, &delay, &end), BW__RETRY_AGAIN);
  assert_int_equal(delay, 100);
  assert_int_equal(fresh.retries, 1);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed_exact),
      cmocka_unit_test(test_exponential_exact_and_capped),
      cmocka_unit_test(test_full_jitter_bounds),
      cmocka_unit_test(test_equal_jitter_bounds),
      cmocka_unit_test(test_decorrelated_bounds),
      cmocka_unit_test(test_deterministic_per_seed),
      cmocka_unit_test(test_backoff_validation),
      cmocka_unit_test(test_budget_validation),
      cmocka_unit_test(test_budget_storm_bound),
      cmocka_unit_test(test_budget_refills_as_window_moves),
      cmocka_unit_test(test_budget_threads_exact),
      cmocka_unit_test(test_retry_decision),
  };
  return BWT_RUN_SUITE(tests);
}
