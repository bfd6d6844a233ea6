/*
 * bulwark internal: the latency histogram's bucket layout, one copy for
 * every folder that records latencies: the metrics reporter's series
 * (observe/metrics_store.c, histogram.c, expo.c) and the HTTP client's
 * per-host rows (patterns/http_hosts.c), which the reporter then exports
 * without converting (patterns/ may not include observe/, so the math
 * lives here, in the layer both use).
 *
 * Buckets are log-linear: the value's offset u = v - 1 (so that a bucket's
 * bound is inclusive, as Prometheus' le is) is split into its power of two
 * e and the next two bits m; bucket = 4 + (e - 2) * 4 + m, and the four
 * smallest values get a bucket each. Four buckets per octave keep every
 * bucket within 25 % of its lower bound (an HDR histogram with 2 bits of
 * precision); more bits would cost cells per thread (observe/METRICS.md).
 * Values are nanoseconds by convention; the math does not care.
 */
#ifndef BW_RUNTIME_HISTOGRAM_H
#define BW_RUNTIME_HISTOGRAM_H

#include <stdint.h>

#include "runtime/atomic.h"

/* Offsets u at or above 2^BW__HIST_MAX_EXP go to the overflow bucket. */
#define BW__HIST_MAX_EXP 40u
#define BW__HIST_BUCKETS (4u + (BW__HIST_MAX_EXP - 2u) * 4u + 1u) /* 157 */
#define BW__HIST_OVERFLOW (BW__HIST_BUCKETS - 1u)
/* A histogram's cells: the buckets, then the sum and the max. */
#define BW__HIST_SUM BW__HIST_BUCKETS
#define BW__HIST_MAX (BW__HIST_BUCKETS + 1u)
#define BW__HIST_CELLS (BW__HIST_BUCKETS + 2u)

/* The bucket of v. O(1): one count-leading-zeros. Inline: it is on the
 * record paths. */
static inline unsigned bw__hist_index(uint64_t v) {
  uint64_t u = v != 0 ? v - 1 : 0;
  if (u < 4)
    return (unsigned)u;
  unsigned e = 63u - (unsigned)__builtin_clzll(u);
  if (e >= BW__HIST_MAX_EXP)
    return BW__HIST_OVERFLOW;
  return 4u + (e - 2u) * 4u + (unsigned)((u >> (e - 2u)) & 3u);
}

/* Bucket i's inclusive upper bound; UINT64_MAX for the overflow bucket and
 * beyond. Bucket i holds the values v with upper(i - 1) < v <= upper(i). */
static inline uint64_t bw__hist_upper(unsigned i) {
  if (i >= BW__HIST_OVERFLOW)
    return UINT64_MAX;
  if (i < 4)
    return i + 1u;
  unsigned e = (i - 4u) / 4u + 2u, m = (i - 4u) % 4u;
  /* u in [(4 + m) << (e - 2), (5 + m) << (e - 2)), v = u + 1 */
  return (uint64_t)(5u + m) << (e - 2u);
}

/* Records v in cells (BW__HIST_CELLS of them) that only the calling thread
 * writes: a relaxed load and store per cell, no locked instruction. Readers
 * on other threads load each cell relaxed and need no order between them:
 * a count is the sum of the buckets alone, so a sum or max read a moment
 * before or after its bucket only skews that one figure by one record. */
static inline void bw__hist_record_1w(uint64_t *cells, uint64_t v) {
  unsigned i = bw__hist_index(v);
  bw__st64_rlx(&cells[i], bw__ld64_rlx(&cells[i]) + 1);
  bw__st64_rlx(&cells[BW__HIST_SUM], bw__ld64_rlx(&cells[BW__HIST_SUM]) + v);
  if (v > bw__ld64_rlx(&cells[BW__HIST_MAX]))
    bw__st64_rlx(&cells[BW__HIST_MAX], v);
}

#endif
