/*
 * The runtime's internal toolkit, the one copy every folder uses: array
 * growth (runtime/grow.h), the backoff pieces (runtime/backoff.h),
 * restart intensity (runtime/intensity.h), the ref map (runtime/reftab.h),
 * the subscriber list (runtime/subs.h).
 */
#include "support.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backoff.h"
#include "runtime/grow.h"
#include "runtime/intensity.h"
#include "runtime/reftab.h"
#include "runtime/subs.h"

/* Doubling from the first capacity, the contents kept. */
static void test_grow_doubles(void **state) {
  (void)state;
  uint32_t *a = NULL, cap = 0;
  for (uint32_t n = 0; n < 100; n++) {
    assert_true(bw__grow((void **)&a, &cap, n, sizeof *a, 4));
    a[n] = n;
  }
  assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
  for (uint32_t n = 0; n < 100; n++)
    assert_int_equal(a[n], n);
  /* room already there: nothing changes */
  uint32_t *before = a;
  assert_true(bw__grow((void **)&a, &cap, 100, sizeof *a, 4));
  assert_ptr_equal(a, before);
  assert_int_equal(cap, 128);
  free(a);
}

/* A size that would overflow uint32_t elements or size_t bytes is refused
 * before realloc sees it, and the array is left as it was. */
static void test_grow_overflow(void **state) {
  (void)state;
  char one = 'x';
  void *p = &one; /* never passed to realloc: every call below must refuse */
  uint32_t cap = 0x80000000u;
  assert_false(bw__grow(&p, &cap, cap, 1, 4)); /* twice would wrap uint32_t */
  assert_ptr_equal(p, &one);
  assert_int_equal(cap, 0x80000000u);
  cap = 0x40000000u;
  assert_false(bw__grow(&p, &cap, cap, SIZE_MAX / 0x40000000u, 4)); /* bytes overflow */
  assert_ptr_equal(p, &one);
  assert_int_equal(cap, 0x40000000u);
  cap = 0;
  assert_false(bw__grow(&p, &cap, 0, 0, 4)); /* a zero-sized element is a bug */
}

/* Capped exponential growth: exact below the cap, the cap above it, no
 * overflow however large n or the multiplier; mult <= 1 is constant. */
static void test_backoff_exp(void **state) {
  (void)state;
  assert_int_equal(bw__backoff_exp(100, 2, 0, 1000), 100);
  assert_int_equal(bw__backoff_exp(100, 2, 3, 1000), 800);
  assert_int_equal(bw__backoff_exp(100, 2, 4, 1000), 1000);
  assert_int_equal(bw__backoff_exp(100, 3, 2, 1000), 900);
  assert_int_equal(bw__backoff_exp(100, 1, 50, 1000), 100);
  assert_int_equal(bw__backoff_exp(100, 0, 50, 1000), 100);
  assert_int_equal(bw__backoff_exp(5000, 2, 0, 1000), 1000); /* base above the cap */
  assert_true(bw__backoff_exp(3, 1000, UINT32_MAX, UINT64_MAX) == UINT64_MAX);
  assert_true(bw__backoff_exp(UINT64_MAX / 2 + 1, 2, 1, UINT64_MAX) == UINT64_MAX);
}

/* Jitter shortens by at most pct percent, never lengthens, reaches both
 * ends, and pct 0 leaves the wait alone. */
static void test_backoff_jitter_down(void **state) {
  (void)state;
  uint64_t rng = 42;
  bool saw_low = false, saw_high = false;
  for (int i = 0; i < 20000; i++) {
    uint64_t d = bw__backoff_jitter_down(100, 20, &rng);
    assert_true(d >= 80 && d <= 100);
    saw_low |= d == 80;
    saw_high |= d == 100;
  }
  assert_true(saw_low && saw_high);
  assert_int_equal(bw__backoff_jitter_down(100, 0, &rng), 100);
  /* the span is computed without overflow for the largest waits */
  uint64_t d = bw__backoff_jitter_down(UINT64_MAX, 100, &rng);
  (void)d; /* any value is in range; what matters is no trap under UBSan */
  for (int i = 0; i < 1000; i++)
    assert_true(bw__backoff_jitter_down(UINT64_MAX, 1, &rng) >= UINT64_MAX - UINT64_MAX / 100);
}

/* One generator: the public bw_retry_rand64 is the runtime's splitmix64
 * (a seed gives the documented sequence; the first value for seed 0 is
 * splitmix64's published one), and draws stay in [lo, hi]. */
static void test_rand(void **state) {
  (void)state;
  uint64_t a = 0, b = 0;
  assert_true(bw__rand64(&a) == 0xE220A8397B1DCDAFull);
  assert_true(bw_retry_rand64(&b) == 0xE220A8397B1DCDAFull);
  for (int i = 0; i < 100; i++)
    assert_true(bw__rand64(&a) == bw_retry_rand64(&b));
  uint64_t r = 7;
  for (int i = 0; i < 10000; i++) {
    uint64_t v = bw__rand_between(&r, 10, 13);
    assert_true(v >= 10 && v <= 13);
  }
  (void)bw__rand_between(&r, 0, UINT64_MAX); /* the whole range: no division by 0 */
}

/* The window: an event counts for exactly period, one stamped later than
 * now counts, and more than max is "exceeded". */
static void test_intensity_window(void **state) {
  (void)state;
  bw__intensity w;
  assert_int_equal(bw__intensity_init(&w, 2, 100, false), 0);
  assert_false(bw__intensity_exceeded(&w, 0));
  assert_true(bw__intensity_add(&w, 1000));
  assert_true(bw__intensity_add(&w, 1050));
  assert_int_equal(bw__intensity_count(&w, 1099), 2);
  assert_int_equal(bw__intensity_count(&w, 1100), 1); /* 1000 is exactly 100 old */
  assert_int_equal(bw__intensity_count(&w, 1149), 1);
  assert_int_equal(bw__intensity_count(&w, 1150), 0);
  assert_int_equal(bw__intensity_count(&w, 900), 2); /* both after now */
  assert_false(bw__intensity_exceeded(&w, 1060)); /* 2 of max 2 */
  assert_true(bw__intensity_add(&w, 1060));
  assert_true(bw__intensity_exceeded(&w, 1060)); /* 3 > 2 */
  assert_true(bw__intensity_add(&w, 1070));
  assert_int_equal(bw__intensity_count(&w, 1070), 3); /* max + 1 kept: 1000 dropped */
  assert_int_equal(bw__intensity_count(&w, 1155), 2); /* 1060, 1070 */
  bw__intensity_clear(&w);
  assert_int_equal(bw__intensity_count(&w, 1070), 0);
  bw__intensity_free(&w);
}

/* The ring grows on demand, in order, up to max + 1 and no further; one
 * reserved at init holds max + 1 from the start. */
static void test_intensity_ring(void **state) {
  (void)state;
  bw__intensity w;
  assert_int_equal(bw__intensity_init(&w, 20, 1000, false), 0);
  assert_int_equal(w.cap, 0);
  for (uint64_t t = 0; t < 100; t++) {
    assert_true(bw__intensity_add(&w, t));
    assert_true(w.cap <= 21);
    /* the last min(t + 1, 21) times, all within the period */
    assert_int_equal(bw__intensity_count(&w, t), t + 1 < 21 ? t + 1 : 21);
  }
  assert_int_equal(w.cap, 21);
  /* 79..99 are held: at 1079 the oldest (79) has just left the window */
  assert_int_equal(bw__intensity_count(&w, 1079), 20);
  assert_int_equal(bw__intensity_count(&w, 1099), 0);
  bw__intensity_free(&w);
  /* growth while wrapped: with max 9, grow at 8 after the ring wrapped */
  assert_int_equal(bw__intensity_init(&w, 100, 10, false), 0);
  for (uint64_t t = 0; t < 8; t++)
    assert_true(bw__intensity_add(&w, t));
  assert_true(bw__intensity_add(&w, 8)); /* grows to 16 */
  for (uint64_t t = 9; t < 40; t++)
    assert_true(bw__intensity_add(&w, t));
  /* 40 held in order: those within 10 of 39 are 30..39 */
  assert_int_equal(bw__intensity_count(&w, 39), 10);
  bw__intensity_free(&w);
  assert_int_equal(bw__intensity_init(&w, 5, 10, true), 0);
  assert_int_equal(w.cap, 6);
  bw__intensity_free(&w);
}

/* Puts and takes in a random order agree with a plain array; takes and
 * looks (bw__reftab_has) of absent refs (never put, taken already) say so. */
static void test_reftab_random(void **state) {
  (void)state;
  enum { N = 3000 };
  static bool live[N + 1];
  memset(live, 0, sizeof live);
  bw__reftab t = {0};
  uint64_t rng = 1;
  for (int step = 0; step < 40000; step++) {
    uint64_t ref = 1 + bw__rand64(&rng) % N;
    if (!live[ref]) {
      assert_true(bw__reftab_put(&t, ref, ref * 3, ref * 7));
      live[ref] = true;
    } else {
      bw__refent e;
      assert_true(bw__reftab_take(&t, ref, &e));
      assert_true(e.ref == ref && e.pid == ref * 3 && e.slot == ref * 7);
      live[ref] = false;
      assert_false(bw__reftab_take(&t, ref, NULL));
    }
  }
  uint32_t n = 0;
  for (uint64_t ref = 1; ref <= N; ref++) {
    n += live[ref];
    assert_int_equal(bw__reftab_has(&t, ref), live[ref]); /* a look changes nothing */
    assert_int_equal(bw__reftab_take_slot(&t, ref), live[ref] ? ref * 7 : UINT32_MAX);
  }
  assert_true(n > 0);
  assert_int_equal(t.n, 0);
  bw__reftab_free(&t);
}

/* A reserved table never reallocates while it holds no more than asked:
 * the executors' promise of no allocation per request. */
static void test_reftab_reserve(void **state) {
  (void)state;
  bw__reftab t = {0};
  assert_true(bw__reftab_reserve(&t, 100));
  bw__refent *cells = t.e;
  uint32_t cap = t.cap;
  for (int round = 0; round < 3; round++) {
    for (uint32_t i = 0; i < 100; i++)
      assert_true(bw__reftab_put(&t, 1000u * (uint32_t)round + i + 1, BW_PID_NONE, i));
    for (uint32_t i = 0; i < 100; i++)
      assert_int_equal(bw__reftab_take_slot(&t, 1000u * (uint32_t)round + i + 1), i);
  }
  assert_ptr_equal(t.e, cells);
  assert_int_equal(t.cap, cap);
  bw__reftab_free(&t);
}

/* Add, replace a mask, the limit, remove, drop only the pid still there,
 * and the union of masks publishers test first. */
static void test_subs(void **state) {
  (void)state;
  bw__subs s;
  bw__subs_init(&s, 3);
  assert_false(bw__subs_wants(&s, BW__SUBS_ALL));
  assert_int_equal(bw__subs_add(&s, 11, 0x1), 0);
  assert_int_equal(bw__subs_add(&s, 12, 0x2), 0);
  assert_int_equal(bw__subs_add(&s, 11, 0x4), 0); /* replaces 11's mask */
  assert_true(bw__subs_wants(&s, 0x4));
  assert_false(bw__subs_wants(&s, 0x1));
  assert_int_equal(bw__subs_add(&s, 13, 0x8), 0);
  assert_int_equal(bw__subs_add(&s, 14, 0x8), BW_ELIMIT);
  uint64_t m = 0;
  assert_true(bw__subs_at(&s, 0, &m) == 11 && m == 0x4);
  assert_int_equal(bw__subs_remove(&s, 12), 0);
  assert_int_equal(bw__subs_remove(&s, 12), BW_ENOTFOUND);
  assert_false(bw__subs_wants(&s, 0x2));
  assert_int_equal(bw__subs_add(&s, 14, 0x10), 0); /* the freed place */
  assert_true(bw__subs_at(&s, 1, NULL) == 14);
  bw__subs_drop(&s, 1, 12); /* stale: 14 holds it now */
  assert_true(bw__subs_at(&s, 1, NULL) == 14);
  bw__subs_drop(&s, 1, 14);
  assert_true(bw__subs_at(&s, 1, NULL) == BW_PID_NONE);
  assert_false(bw__subs_wants(&s, 0x10));
  bw__subs_drop(&s, 99, 14); /* out of range: nothing */
  bw__subs_destroy(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grow_doubles),
      cmocka_unit_test(test_grow_overflow),
      cmocka_unit_test(test_backoff_exp),
      cmocka_unit_test(test_backoff_jitter_down),
      cmocka_unit_test(test_rand),
      cmocka_unit_test(test_intensity_window),
      cmocka_unit_test(test_intensity_ring),
      cmocka_unit_test(test_reftab_random),
      cmocka_unit_test(test_reftab_reserve),
      cmocka_unit_test(test_subs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
