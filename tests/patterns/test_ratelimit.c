/*
 * Tests of patterns/ratelimit.c: the token bucket on the manual clock.
 * A burst, then refill exactly as the clock moves; the wait a refusal
 * reports; reservations within and past a timeout; two plain threads
 * hammering try-acquire never get more than burst + rate * elapsed tokens
 * (and, since they drain the bucket at every step, exactly that many);
 * bad arguments.
 */
#include "support.h"

#include <stdatomic.h>

#include "bulwark/ratelimit.h"

#define MS 1000000ull

static void test_burst_then_exact_refill(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  /* 10 per second: one token per 100 ms; bursts of 5 */
  assert_int_equal(bw_ratelimit_init(&rl, rt, 10, 0, 5), 0);
  assert_int_equal(bw_ratelimit_available(&rl), 5);
  uint64_t wait = 12345;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), 0);
    assert_int_equal(wait, 0);
  }
  assert_int_equal(bw_ratelimit_available(&rl), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 100 * MS);

  /* 99 ms later: still nothing, 1 ms to go */
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 1 * MS);
  /* at 100 ms: exactly one token */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(bw_ratelimit_available(&rl), 1);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 100 * MS);

  /* 250 ms: two tokens, and the third is 50 ms away */
  assert_int_equal(bw_clock_advance(rt, 250), 0);
  assert_int_equal(bw_ratelimit_available(&rl), 2);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, NULL), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, NULL), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 50 * MS);

  /* a long pause refills to the burst, not beyond */
  assert_int_equal(bw_clock_advance(rt, 10000), 0);
  assert_int_equal(bw_ratelimit_available(&rl), 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(bw_ratelimit_try_acquire(&rl, NULL), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, NULL), BW_ERATE_LIMITED);

  bw_ratelimit_stats_t st;
  assert_int_equal(bw_ratelimit_stats(&rl, &st), 0);
  assert_int_equal(st.acquired, 5 + 1 + 2 + 5);
  assert_int_equal(st.limited, 5);
  assert_int_equal(st.rate, 10);
  assert_int_equal(st.period_ms, 1000);
  assert_int_equal(st.burst, 5);
  assert_int_equal(st.available, 0);
  bw_runtime_destroy(rt);
}

/* A rate that does not divide the period: the interval is rounded up, so
 * the limiter never runs ahead of the rate; the waits it reports are exact
 * in that interval. */
static void test_wait_with_uneven_interval(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  assert_int_equal(bw_ratelimit_init(&rl, rt, 3, 1000, 1), 0); /* 333333334 ns */
  uint64_t wait;
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 333333334ull);
  assert_int_equal(bw_clock_advance(rt, 333), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 333334ull); /* tat - now */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), 0);
  /* per minute: 30 per 60 s, interval 2 s */
  bw_ratelimit_t pm;
  assert_int_equal(bw_ratelimit_init(&pm, rt, 30, 60000, 2), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&pm, NULL), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&pm, NULL), 0);
  assert_int_equal(bw_ratelimit_try_acquire(&pm, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 2000 * MS);
  /* the explicit-time form agrees with the clock */
  uint64_t now = bw_now_ns(rt);
  assert_int_equal(bw_ratelimit_try_acquire_at(&pm, now + 1999 * MS, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 1 * MS);
  assert_int_equal(bw_ratelimit_try_acquire_at(&pm, now + 2000 * MS, &wait), 0);
  bw_runtime_destroy(rt);
}

/* The actors' form: a reservation within the timeout tells the caller how
 * long to wait; beyond it nothing is reserved. */
static void test_acquire_with_timeout(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  assert_int_equal(bw_ratelimit_init(&rl, rt, 10, 1000, 1), 0); /* 100 ms */
  uint64_t wait = 1;
  assert_int_equal(bw_ratelimit_acquire(&rl, 0, &wait), 0);
  assert_int_equal(wait, 0);
  /* the next token is 100 ms away: a 50 ms timeout is refused ... */
  assert_int_equal(bw_ratelimit_acquire(&rl, 50, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 100 * MS);
  /* ... and reserved nothing: 100 ms is accepted with a 100 ms wait */
  assert_int_equal(bw_ratelimit_acquire(&rl, 100, &wait), 0);
  assert_int_equal(wait, 100 * MS);
  assert_int_equal(bw_ratelimit_wait_ms(wait), 100);
  /* the one after is 200 ms away */
  assert_int_equal(bw_ratelimit_acquire(&rl, 199, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 200 * MS);
  assert_int_equal(bw_ratelimit_acquire(&rl, 250, &wait), 0);
  assert_int_equal(wait, 200 * MS);
  /* reservations are debt: try-acquire sees none, until the clock pays it */
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_ERATE_LIMITED);
  assert_int_equal(wait, 300 * MS);
  assert_int_equal(bw_clock_advance(rt, 299), 0);
  assert_int_equal(bw_ratelimit_available(&rl), 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(bw_ratelimit_available(&rl), 1);
  assert_int_equal(bw_ratelimit_wait_ms(1), 1);
  assert_int_equal(bw_ratelimit_wait_ms(0), 0);
  assert_int_equal(bw_ratelimit_wait_ms(MS + 1), 2);
  bw_runtime_destroy(rt);
}

/* --- two threads hammering --------------------------------------------- */

typedef struct hammer {
  bw_ratelimit_t *rl;
  atomic_bool *stop;
  uint64_t got;      /* tokens this thread took */
  uint64_t refused;
} hammer_t;

static void *hammer_main(void *arg) {
  hammer_t *h = arg;
  while (!atomic_load_explicit(h->stop, memory_order_acquire)) {
    if (bw_ratelimit_try_acquire(h->rl, NULL) == 0)
      h->got++;
    else
      h->refused++;
  }
  return NULL;
}

static void test_two_threads_never_exceed(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  const uint64_t burst = 10, steps = bwt_scaled(300);
  /* 1000 per second: one token per ms */
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1000, 1000, (uint32_t)burst), 0);
  atomic_bool stop = false;
  hammer_t h[2] = {{&rl, &stop, 0, 0}, {&rl, &stop, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
  /* move time 1 ms at a time, once the threads have emptied the bucket (so
   * no token is lost to the cap and the total is exact) */
  for (uint64_t s = 0; s < steps; s++) {
    BWT_POLL(bw_ratelimit_available(&rl) == 0);
    assert_int_equal(bw_clock_advance(rt, 1), 0);
  }
  BWT_POLL(bw_ratelimit_available(&rl) == 0);
  atomic_store_explicit(&stop, true, memory_order_release);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  uint64_t total = h[0].got + h[1].got;
  uint64_t bound = burst + 1000 * steps / 1000; /* burst + rate * elapsed */
  assert_true(total <= bound);
  assert_int_equal(total, bound);
  bw_ratelimit_stats_t st;
  assert_int_equal(bw_ratelimit_stats(&rl, &st), 0);
  assert_int_equal(st.acquired, total);
  assert_int_equal(st.limited, h[0].refused + h[1].refused);
  bw_runtime_destroy(rt);
}

static void test_bad_input(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  memset(&rl, 0, sizeof rl);
  assert_int_equal(bw_ratelimit_init(NULL, rt, 1, 0, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, NULL, 1, 0, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 0, 0, 1), BW_EINVAL);  /* rate 0 */
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, 0, 0), BW_EINVAL);  /* burst 0 */
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, BW_RATELIMIT_MAX_PERIOD_MS + 1, 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, 0, BW_RATELIMIT_MAX_BURST + 1), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 2000000000ull, 1, 1), BW_EINVAL); /* < 1 ns */
  /* burst * interval too long: a day per token, a billion at once */
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, BW_RATELIMIT_MAX_PERIOD_MS, BW_RATELIMIT_MAX_BURST),
                   BW_EINVAL);
  /* a struct that init refused (zeroed) is refused, never used */
  uint64_t wait;
  assert_int_equal(bw_ratelimit_try_acquire(&rl, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_try_acquire(NULL, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_try_acquire_at(NULL, 0, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_acquire(NULL, 1, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_available(NULL), 0);
  assert_int_equal(bw_ratelimit_stats(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, 0, 1), 0);
  assert_int_equal(bw_ratelimit_acquire(&rl, 1, NULL), BW_EINVAL);
  assert_int_equal(bw_ratelimit_acquire(&rl, BW_RATELIMIT_MAX_PERIOD_MS + 1, &wait), BW_EINVAL);
  assert_int_equal(bw_ratelimit_stats(&rl, NULL), BW_EINVAL);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_exact_refill),
      cmocka_unit_test(test_wait_with_uneven_interval),
      cmocka_unit_test(test_acquire_with_timeout),
      cmocka_unit_test(test_two_threads_never_exceed),
      cmocka_unit_test(test_bad_input),
  };
  return BWT_RUN_SUITE(tests);
}
