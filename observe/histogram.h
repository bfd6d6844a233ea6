/*
 * bulwark internal: the metrics reporter's view of the histogram layout.
 * The bucket math itself (bw__hist_index, bw__hist_upper, the cells'
 * layout) is runtime/histogram.h, shared with the HTTP client's per-host
 * latencies; this header ties it to the public constants of
 * include/bulwark/metrics.h and adds what only the exposition needs.
 */
#ifndef BW_OBSERVE_HISTOGRAM_H
#define BW_OBSERVE_HISTOGRAM_H

#include <stdint.h>

#include "bulwark/metrics.h"
#include "runtime/histogram.h"

_Static_assert(BW_HISTOGRAM_BUCKETS == BW__HIST_BUCKETS,
               "BW_HISTOGRAM_BUCKETS matches the bucket layout");
_Static_assert(BW_HISTOGRAM_CELLS == BW__HIST_CELLS, "a histogram's cells: buckets, sum, max");

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
