/*
 * bulwark: histogram buckets and summaries (see include/bulwark/metrics.h
 * and runtime/histogram.h for the layout). Pure functions of bucket
 * counts: the reporter merges the threads' cells into one array per series
 * and summarises that, so a merge of shards is a sum of arrays.
 */
#include "observe/histogram.h"

#include "bulwark/error.h"

uint64_t bw_histogram_bucket_upper(unsigned i) { return bw__hist_upper(i); }

unsigned bw_histogram_bucket_of(uint64_t ns) { return bw__hist_index(ns); }

/* The rank is ceil(q * count) (nearest-rank definition), at least 1; the
 * answer is the bound of the bucket holding that rank, capped at the max,
 * since the max is exact and every value is at most the max. */
uint64_t bw_histogram_quantile(const uint64_t *buckets, uint64_t max_ns, double q) {
  if (buckets == NULL || !(q > 0.0) || q > 1.0)
    return 0;
  uint64_t count = 0;
  for (unsigned i = 0; i < BW_HISTOGRAM_BUCKETS; i++)
    count += buckets[i];
  if (count == 0)
    return 0;
  /* the epsilon keeps q * count from rounding up past an exact rank
   * (0.9 * 10 must be rank 9, not 10) */
  double r = q * (double)count * (1.0 - 1e-12);
  uint64_t rank = (uint64_t)r;
  if ((double)rank < r)
    rank++;
  if (rank == 0)
    rank = 1;
  if (rank > count)
    rank = count;
  uint64_t cum = 0;
  for (unsigned i = 0; i < BW_HISTOGRAM_BUCKETS; i++) {
    cum += buckets[i];
    if (cum >= rank) {
      uint64_t up = bw_histogram_bucket_upper(i);
      return up < max_ns ? up : max_ns;
    }
  }
  return max_ns;
}

int bw_histogram_summarize(const uint64_t *buckets, uint64_t sum_ns, uint64_t max_ns,
                           bw_histogram_summary_t *out) {
  if (buckets == NULL || out == NULL)
    return BW_EINVAL;
  uint64_t count = 0;
  for (unsigned i = 0; i < BW_HISTOGRAM_BUCKETS; i++)
    count += buckets[i];
  out->count = count;
  out->sum_ns = count != 0 ? sum_ns : 0;
  out->max_ns = count != 0 ? max_ns : 0;
  out->p50_ns = bw_histogram_quantile(buckets, max_ns, 0.50);
  out->p90_ns = bw_histogram_quantile(buckets, max_ns, 0.90);
  out->p99_ns = bw_histogram_quantile(buckets, max_ns, 0.99);
  return 0;
}
