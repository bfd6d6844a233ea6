/*
 * bulwark internal: the histogram's bucket math, shared by the hot path
 * (observe/metrics_store.c), the summaries (observe/histogram.c) and the
 * exposition writers (observe/expo.c).
 *
 * Buckets are log-linear: the value's offset u = v - 1 (so that a bucket's
 * bound is inclusive, as Prometheus' le is) is split into its power of two
 * e and the next two bits m; bucket = 4 + (e - 2) * 4 + m, and the four
 * smallest values get a bucket each. Four buckets per octave keep every
 * bucket within 25 % of its lower bound (an HDR histogram with 2 bits of
 * precision); more bits would cost cells per thread (see METRICS.md).
 */
#ifndef BW_PATTERNS_HISTOGRAM_H
#define BW_PATTERNS_HISTOGRAM_H

#include <stdint.h>

#include "bulwark/metrics.h"

/* Offsets u at or above 2^BW__HIST_MAX_EXP go to the overflow bucket. */
#define BW__HIST_MAX_EXP 40u
#define BW__HIST_OVERFLOW (BW_HISTOGRAM_BUCKETS - 1u)
/* Where a series' sum and max sit among its cells, after the buckets. */
#define BW__HIST_SUM BW_HISTOGRAM_BUCKETS
#define BW__HIST_MAX (BW_HISTOGRAM_BUCKETS + 1u)

_Static_assert(4u + (BW__HIST_MAX_EXP - 2u) * 4u + 1u == BW_HISTOGRAM_BUCKETS,
               "BW_HISTOGRAM_BUCKETS matches the bucket layout");

/* O(1): one count-leading-zeros. Inline: it is on the record path. */
static inline unsigned bw__hist_index(uint64_t v) {
  uint64_t u = v != 0 ? v - 1 : 0;
  if (u < 4)
    return (unsigned)u;
  unsigned e = 63u - (unsigned)__builtin_clzll(u);
  if (e >= BW__HIST_MAX_EXP)
    return BW__HIST_OVERFLOW;
  return 4u + (e - 2u) * 4u + (unsigned)((u >> (e - 2u)) & 3u);
}

/* Prometheus buckets: le = 4^k ns for k in [4, 18] (256 ns .. 68.7 s), each
 * an upper bound of an internal bucket (octave starts are), then +Inf. Fewer
 * lines than the 157 internal buckets; the percentiles in the JSON and the
 * summaries use all of them. */
#define BW__EXPO_FIRST_LOG4 4u
#define BW__EXPO_LAST_LOG4 18u
#define BW__EXPO_BOUNDS (BW__EXPO_LAST_LOG4 - BW__EXPO_FIRST_LOG4 + 1u)

static inline uint64_t bw__expo_bound(unsigned i) {
  return 1ull << (2u * (BW__EXPO_FIRST_LOG4 + i));
}

#endif
