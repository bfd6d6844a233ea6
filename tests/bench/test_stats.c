/*
 * bw-bench's statistics and baseline comparison (bench/stats.c), linked
 * directly: no runtime, no runner.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bench/stats.c"

static void test_median_odd(void **state)
{
  (void)state;
  const double v[] = {5, 1, 9, 3, 7};
  bench_summary_t s = {0, 0, 0};
  assert_int_equal(bench_summarise(v, 5, &s), 0);
  assert_true(s.median == 5);
  assert_true(s.min == 1);
  assert_true(s.max == 9);
  /* the input keeps its order (run order, for the CSV) */
  assert_true(v[0] == 5 && v[4] == 7);
}

static void test_median_even(void **state)
{
  (void)state;
  const double v[] = {4, 1, 10, 2};
  bench_summary_t s = {0, 0, 0};
  assert_int_equal(bench_summarise(v, 4, &s), 0);
  assert_true(s.median == 3); /* (2 + 4) / 2 */
  assert_true(s.min == 1);
  assert_true(s.max == 10);
}

static void test_one_and_none(void **state)
{
  (void)state;
  const double one[] = {42.5};
  bench_summary_t s = {0, 0, 0};
  assert_int_equal(bench_summarise(one, 1, &s), 0);
  assert_true(s.median == 42.5 && s.min == 42.5 && s.max == 42.5);
  memset(&s, 0x55, sizeof s);
  assert_int_equal(bench_summarise(one, 0, &s), -1);
  const double bad[] = {1, NAN, 3};
  assert_int_equal(bench_summarise(bad, 3, &s), -1);
}

static void test_min_max_negative_and_equal(void **state)
{
  (void)state;
  const double v[] = {-2, 7, 7, -2, 0, 7};
  bench_summary_t s = {0, 0, 0};
  assert_int_equal(bench_summarise(v, 6, &s), 0);
  assert_true(s.min == -2);
  assert_true(s.max == 7);
  assert_true(s.median == 3.5); /* sorted -2 -2 0 7 7 7 */
}

static bench_base_entry_t entry(const char *name, const char *params,
                                const char *unit, bool hib, double median)
{
  bench_base_entry_t e;
  memset(&e, 0, sizeof e);
  snprintf(e.name, sizeof e.name, "%s", name);
  snprintf(e.params, sizeof e.params, "%s", params);
  snprintf(e.unit, sizeof e.unit, "%s", unit);
  e.higher_is_better = hib;
  e.ok = true;
  e.median = e.min = e.max = median;
  return e;
}

static void test_compare_higher_is_better(void **state)
{
  (void)state;
  bench_base_entry_t b = entry("pingpong", "n=10", "msg/s", true, 100);
  bench_cmp_t c = bench_compare(true, 120, "n=10", "msg/s", true, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_FASTER);
  assert_true(fabs(c.ratio - 1.2) < 1e-12);
  assert_false(c.regressed);
  c = bench_compare(true, 80, "n=10", "msg/s", true, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_SLOWER);
  assert_true(fabs(c.ratio - 0.8) < 1e-12);
  assert_true(fabs(c.slower_pct - 20) < 1e-9);
  assert_false(c.regressed); /* no threshold given */
  c = bench_compare(true, 104, "n=10", "msg/s", true, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_SAME);
  c = bench_compare(true, 96, "n=10", "msg/s", true, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_SAME);
}

static void test_compare_lower_is_better(void **state)
{
  (void)state;
  bench_base_entry_t b = entry("restart_latency", "n=10", "us", false, 10);
  /* latency up from 10 to 12.5: slower, speed-up 0.8 */
  bench_cmp_t c = bench_compare(true, 12.5, "n=10", "us", false, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_SLOWER);
  assert_true(fabs(c.ratio - 0.8) < 1e-12);
  /* down to 5: twice as fast */
  c = bench_compare(true, 5, "n=10", "us", false, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_FASTER);
  assert_true(fabs(c.ratio - 2) < 1e-12);
  c = bench_compare(true, 10.3, "n=10", "us", false, &b, 5, -1);
  assert_int_equal(c.verdict, BENCH_SAME);
  /* a cost of zero both times is the same; a cost that fell to zero is
   * faster, not a division by zero */
  bench_base_entry_t z = entry("idle_cpu", "", "%cpu", false, 0);
  c = bench_compare(true, 0, "", "%cpu", false, &z, 5, 1);
  assert_int_equal(c.verdict, BENCH_SAME);
  assert_false(c.regressed);
  c = bench_compare(true, 0, "", "%cpu", false, &b, 5, 1);
  assert_int_equal(c.verdict, BENCH_NOT_COMPARABLE); /* other params */
  bench_base_entry_t one = entry("idle_cpu", "", "%cpu", false, 0.01);
  c = bench_compare(true, 0, "", "%cpu", false, &one, 5, 1);
  assert_int_equal(c.verdict, BENCH_FASTER);
}

static void test_fail_over_threshold(void **state)
{
  (void)state;
  bench_base_entry_t b = entry("ring", "", "hops/s", true, 100);
  /* 10% slower: over 5%, not over 10% (strictly more is required) */
  bench_cmp_t c = bench_compare(true, 90, "", "hops/s", true, &b, 5, 5);
  assert_true(c.regressed);
  c = bench_compare(true, 90, "", "hops/s", true, &b, 5, 10.5);
  assert_false(c.regressed);
  /* a threshold below the band still applies: 3% slower is "same" but a
   * regression with --fail-over 2 */
  c = bench_compare(true, 97, "", "hops/s", true, &b, 5, 2);
  assert_int_equal(c.verdict, BENCH_SAME);
  assert_true(c.regressed);
  /* faster never regresses */
  c = bench_compare(true, 300, "", "hops/s", true, &b, 5, 0);
  assert_false(c.regressed);
  /* lower is better: 10 -> 20 us is 50% slower */
  bench_base_entry_t l = entry("lat", "", "us", false, 10);
  c = bench_compare(true, 20, "", "us", false, &l, 5, 40);
  assert_true(c.regressed);
  assert_true(fabs(c.slower_pct - 50) < 1e-9);
  c = bench_compare(true, 20, "", "us", false, &l, 5, 60);
  assert_false(c.regressed);
}

static void test_missing_and_failed(void **state)
{
  (void)state;
  bench_base_entry_t e[3] = {entry("ring", "actors=10", "hops/s", true, 5),
                             entry("ring", "actors=20", "hops/s", true, 7),
                             entry("fib", "n=25", "actors/s", true, 9)};
  bench_baseline_t b;
  memset(&b, 0, sizeof b);
  b.n = 3;
  b.entry = e;
  assert_null(bench_baseline_find(&b, "spawn", "n=1"));
  assert_null(bench_baseline_find(NULL, "ring", ""));
  assert_ptr_equal(bench_baseline_find(&b, "ring", "actors=20"), &e[1]);
  assert_ptr_equal(bench_baseline_find(&b, "ring", "actors=30"), &e[0]);

  /* missing in the baseline: no verdict, never a regression */
  bench_cmp_t c = bench_compare(true, 1, "n=1", "actors/s", true,
                                bench_baseline_find(&b, "spawn", "n=1"), 5, 0);
  assert_int_equal(c.verdict, BENCH_NO_BASELINE);
  assert_false(c.regressed);
  /* failed in the baseline run */
  e[2].ok = false;
  c = bench_compare(true, 1, "n=25", "actors/s", true, &e[2], 5, 0);
  assert_int_equal(c.verdict, BENCH_NO_BASELINE);
  /* other params, another unit, another direction: not comparable */
  c = bench_compare(true, 1, "actors=30", "hops/s", true, &e[0], 5, 0);
  assert_int_equal(c.verdict, BENCH_NOT_COMPARABLE);
  c = bench_compare(true, 1, "actors=10", "msg/s", true, &e[0], 5, 0);
  assert_int_equal(c.verdict, BENCH_NOT_COMPARABLE);
  c = bench_compare(true, 1, "actors=10", "hops/s", false, &e[0], 5, 0);
  assert_int_equal(c.verdict, BENCH_NOT_COMPARABLE);
  assert_false(c.regressed);
  /* failed now */
  c = bench_compare(false, 0, "actors=10", "hops/s", true, &e[0], 5, 0);
  assert_int_equal(c.verdict, BENCH_FAILED);
  assert_false(c.regressed);
  assert_string_equal(bench_verdict_name(BENCH_FAILED), "failed");
  assert_string_equal(bench_verdict_name(BENCH_SAME), "same");
}

static void test_human(void **state)
{
  (void)state;
  char b[24];
  assert_string_equal(bench_human(24700000, b, sizeof b), "24.70M");
  assert_string_equal(bench_human(169, b, sizeof b), "169.0");
  assert_string_equal(bench_human(0.007, b, sizeof b), "0.007");
  assert_string_equal(bench_human(328000, b, sizeof b), "328.0k");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_median_odd),
      cmocka_unit_test(test_median_even),
      cmocka_unit_test(test_one_and_none),
      cmocka_unit_test(test_min_max_negative_and_equal),
      cmocka_unit_test(test_compare_higher_is_better),
      cmocka_unit_test(test_compare_lower_is_better),
      cmocka_unit_test(test_fail_over_threshold),
      cmocka_unit_test(test_missing_and_failed),
      cmocka_unit_test(test_human),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
