/*
 * Tests of observe/histogram.c (and the bucket math in
 * observe/histogram.h): bucket boundaries, percentiles within one bucket,
 * the exact max, merging shards, and recording through a registry from two
 * threads into one series with exact count, sum and max.
 */
#include "support.h"

#include "bulwark/metrics.h"
#include "observe/histogram.h"

static void test_bucket_boundaries(void **state) {
  (void)state;
  /* the smallest values: a bucket each (0 and 1 share the first) */
  assert_int_equal(bw_histogram_bucket_of(0), 0);
  assert_int_equal(bw_histogram_bucket_of(1), 0);
  assert_int_equal(bw_histogram_bucket_of(2), 1);
  assert_int_equal(bw_histogram_bucket_of(4), 3);
  assert_int_equal(bw_histogram_bucket_of(5), 4);
  assert_int_equal(bw_histogram_bucket_upper(0), 1);
  assert_int_equal(bw_histogram_bucket_upper(3), 4);

  uint64_t prev = 0;
  for (unsigned i = 0; i + 1 < BW_HISTOGRAM_BUCKETS; i++) {
    uint64_t up = bw_histogram_bucket_upper(i);
    /* bounds increase; the bound is in its bucket (inclusive, like le) and
     * the next value is in the next bucket */
    assert_true(up > prev);
    assert_int_equal(bw_histogram_bucket_of(up), i);
    assert_int_equal(bw_histogram_bucket_of(up + 1), i + 1);
    assert_int_equal(bw_histogram_bucket_of(prev + 1), i);
    /* at most 25 % wide (relative to the values it holds) from 4 on */
    if (prev >= 4)
      assert_true((up - prev) * 4 <= prev);
    prev = up;
  }
  /* the last regular bucket ends at 2^40; beyond is the overflow bucket */
  assert_int_equal(bw_histogram_bucket_upper(BW_HISTOGRAM_BUCKETS - 2), 1ull << 40);
  assert_int_equal(bw_histogram_bucket_of(1ull << 40), BW_HISTOGRAM_BUCKETS - 2);
  assert_int_equal(bw_histogram_bucket_of((1ull << 40) + 1), BW_HISTOGRAM_BUCKETS - 1);
  assert_int_equal(bw_histogram_bucket_of(UINT64_MAX), BW_HISTOGRAM_BUCKETS - 1);
  assert_true(bw_histogram_bucket_upper(BW_HISTOGRAM_BUCKETS - 1) == UINT64_MAX);
  assert_true(bw_histogram_bucket_upper(1000) == UINT64_MAX);

  /* every Prometheus bound is an internal bucket's bound, so cumulative
   * counts at it are exact */
  for (unsigned k = 0; k < BW__EXPO_BOUNDS; k++) {
    uint64_t b = bw__expo_bound(k);
    assert_int_equal(bw_histogram_bucket_upper(bw_histogram_bucket_of(b)), b);
  }
}

static void record(uint64_t *buckets, uint64_t v, uint64_t *sum, uint64_t *max) {
  buckets[bw_histogram_bucket_of(v)]++;
  *sum += v;
  if (v > *max)
    *max = v;
}

/* The true nearest-rank quantile of 1..n is ceil(q n). */
static void check_quantile(const uint64_t *b, uint64_t max, double q, uint64_t truth) {
  uint64_t got = bw_histogram_quantile(b, max, q);
  /* never below, at most one bucket (25 %) above */
  assert_true(got >= truth);
  assert_true(got <= truth + truth / 4 + 1);
  assert_int_equal(bw_histogram_bucket_of(got), bw_histogram_bucket_of(truth));
}

static void test_percentiles_within_one_bucket(void **state) {
  (void)state;
  uint64_t b[BW_HISTOGRAM_BUCKETS] = {0}, sum = 0, max = 0;
  for (uint64_t v = 1; v <= 10000; v++)
    record(b, v * 1000, &sum, &max); /* 1 us .. 10 ms */
  check_quantile(b, max, 0.50, 5000 * 1000);
  check_quantile(b, max, 0.90, 9000 * 1000);
  check_quantile(b, max, 0.99, 9900 * 1000);
  assert_int_equal(bw_histogram_quantile(b, max, 1.0), 10000 * 1000); /* the max, exactly */

  bw_histogram_summary_t s;
  assert_int_equal(bw_histogram_summarize(b, sum, max, &s), 0);
  assert_int_equal(s.count, 10000);
  assert_int_equal(s.sum_ns, 1000ull * 10000 * 10001 / 2);
  assert_int_equal(s.max_ns, 10000 * 1000);
  assert_int_equal(s.p50_ns, bw_histogram_quantile(b, max, 0.5));
  assert_int_equal(s.p90_ns, bw_histogram_quantile(b, max, 0.9));
  assert_int_equal(s.p99_ns, bw_histogram_quantile(b, max, 0.99));

  /* a skewed distribution: 99 fast calls, one slow */
  uint64_t c[BW_HISTOGRAM_BUCKETS] = {0};
  sum = max = 0;
  for (int i = 0; i < 99; i++)
    record(c, 96, &sum, &max);
  record(c, 5000000000ull, &sum, &max);
  assert_int_equal(bw_histogram_quantile(c, max, 0.5), 96); /* 96 is a bound */
  assert_int_equal(bw_histogram_quantile(c, max, 0.99), 96);
  assert_int_equal(bw_histogram_quantile(c, max, 1.0), 5000000000ull);

  /* one value: every quantile is it (capped by the exact max) */
  uint64_t d[BW_HISTOGRAM_BUCKETS] = {0};
  sum = max = 0;
  record(d, 777, &sum, &max);
  assert_int_equal(bw_histogram_quantile(d, max, 0.5), 777);
  assert_int_equal(bw_histogram_quantile(d, max, 0.99), 777);

  /* overflow: the max answers */
  uint64_t e[BW_HISTOGRAM_BUCKETS] = {0};
  sum = max = 0;
  record(e, 1ull << 50, &sum, &max);
  assert_int_equal(bw_histogram_quantile(e, max, 0.5), 1ull << 50);
}

static void test_quantile_edges_and_bad_input(void **state) {
  (void)state;
  uint64_t b[BW_HISTOGRAM_BUCKETS] = {0};
  assert_int_equal(bw_histogram_quantile(b, 0, 0.5), 0); /* empty */
  b[10] = 1;
  assert_int_equal(bw_histogram_quantile(b, 100, 0.0), 0);
  assert_int_equal(bw_histogram_quantile(b, 100, -1.0), 0);
  assert_int_equal(bw_histogram_quantile(b, 100, 1.5), 0);
  assert_int_equal(bw_histogram_quantile(NULL, 100, 0.5), 0);
  bw_histogram_summary_t s;
  assert_int_equal(bw_histogram_summarize(NULL, 0, 0, &s), BW_EINVAL);
  assert_int_equal(bw_histogram_summarize(b, 0, 0, NULL), BW_EINVAL);
  uint64_t z[BW_HISTOGRAM_BUCKETS] = {0};
  assert_int_equal(bw_histogram_summarize(z, 5, 5, &s), 0);
  assert_int_equal(s.count, 0);
  assert_int_equal(s.sum_ns, 0);
  assert_int_equal(s.max_ns, 0);
  assert_int_equal(s.p50_ns, 0);

  /* exact ranks: 10 values, p90 is the 9th */
  uint64_t r[BW_HISTOGRAM_BUCKETS] = {0}, sum = 0, max = 0;
  for (uint64_t v = 1; v <= 10; v++)
    record(r, v, &sum, &max);
  assert_int_equal(bw_histogram_quantile(r, max, 0.9), 10); /* 9 is in (8, 10] */
  assert_int_equal(bw_histogram_quantile(r, max, 0.1), 1);
  assert_int_equal(bw_histogram_quantile(r, max, 0.2), 2);
}

/* Shards merge by adding arrays: the merged summary is the summary of all
 * values recorded in one place. */
static void test_merge_of_shards(void **state) {
  (void)state;
  uint64_t a[BW_HISTOGRAM_BUCKETS] = {0}, b[BW_HISTOGRAM_BUCKETS] = {0},
           all[BW_HISTOGRAM_BUCKETS] = {0};
  uint64_t sa = 0, ma = 0, sb = 0, mb = 0, s_all = 0, m_all = 0;
  uint64_t x = 12345;
  for (int i = 0; i < 5000; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t v = (x >> 20) % 50000000;
    if (i % 3 == 0)
      record(a, v, &sa, &ma);
    else
      record(b, v, &sb, &mb);
    record(all, v, &s_all, &m_all);
  }
  uint64_t merged[BW_HISTOGRAM_BUCKETS];
  for (unsigned i = 0; i < BW_HISTOGRAM_BUCKETS; i++)
    merged[i] = a[i] + b[i];
  bw_histogram_summary_t s1, s2;
  assert_int_equal(bw_histogram_summarize(merged, sa + sb, ma > mb ? ma : mb, &s1), 0);
  assert_int_equal(bw_histogram_summarize(all, s_all, m_all, &s2), 0);
  assert_memory_equal(&s1, &s2, sizeof s1);
  assert_int_equal(s1.count, 5000);
}

/* --- Through the registry: per-thread cells merged at collection --------- */

typedef struct rec_arg {
  bw_histogram_t *h;
  uint64_t from, n;
} rec_arg_t;

static void *recorder(void *p) {
  rec_arg_t *a = p;
  for (uint64_t i = 0; i < a->n; i++)
    bw_histogram_record(a->h, a->from + i);
  return NULL;
}

static void test_registry_histogram_two_threads(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  o.runtime_metrics = false;
  bw_metrics_t *m;
  assert_int_equal(bw_metrics_new(rt, &o, &m), 0);
  assert_int_equal(bw_metrics_start(m, NULL), 0);
  bw_histogram_t *h;
  assert_int_equal(bw_metrics_histogram_new(m, "op_seconds", "Op latency.", &h), 0);

  uint64_t n = bwt_scaled(200000);
  rec_arg_t args[2] = {{h, 1, n}, {h, 1 + n, n}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&th[i], NULL, recorder, &args[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);

  assert_int_equal(bw_metrics_collect(m, 0), 0);
  bw_metrics_snapshot_t *s;
  assert_int_equal(bw_metrics_latest(m, &s), 0);
  bw_histogram_summary_t hs;
  assert_int_equal(bw_metrics_snapshot_histogram(s, "op_seconds", NULL, 0, &hs), 0);
  /* values 1 .. 2n, each once */
  assert_int_equal(hs.count, 2 * n);
  assert_int_equal(hs.sum_ns, n * (2 * n + 1));
  assert_int_equal(hs.max_ns, 2 * n);
  assert_true(hs.p50_ns >= n && hs.p50_ns <= n + n / 4 + 1);
  assert_true(hs.p99_ns >= (2 * n * 99) / 100);

  /* the buckets of the series are the merged shards */
  bw_metric_family_info_t f;
  bw_metric_series_info_t si;
  assert_int_equal(bw_metrics_snapshot_family(s, 0, &f), 0);
  assert_int_equal(f.type, BW_METRIC_HISTOGRAM);
  assert_int_equal(bw_metrics_snapshot_series(s, 0, 0, &si), 0);
  uint64_t total = 0;
  for (unsigned i = 0; i < BW_HISTOGRAM_BUCKETS; i++)
    total += si.buckets[i];
  assert_int_equal(total, 2 * n);
  bw_metrics_snapshot_release(s);

  /* records after the collection show in the next one */
  bw_histogram_record(h, 1ull << 45); /* overflow bucket */
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(bw_metrics_latest(m, &s), 0);
  assert_int_equal(bw_metrics_snapshot_histogram(s, "op_seconds", NULL, 0, &hs), 0);
  assert_int_equal(hs.count, 2 * n + 1);
  assert_int_equal(hs.max_ns, 1ull << 45);
  bw_metrics_snapshot_release(s);

  assert_int_equal(bw_histogram_record(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_boundaries),
      cmocka_unit_test(test_percentiles_within_one_bucket),
      cmocka_unit_test(test_quantile_edges_and_bad_input),
      cmocka_unit_test(test_merge_of_shards),
      cmocka_unit_test(test_registry_histogram_two_threads),
  };
  return BWT_RUN_SUITE(tests);
}
