/*
 * bw-bench statistics and baseline comparison: pure functions, no I/O and
 * no runtime, so tests/bench/test_stats.c can link them on their own.
 *
 * The comparison speaks in speed-up: ratio = now / baseline for a figure
 * where higher is better (msg/s), baseline / now where lower is better
 * (us, bytes/actor). A ratio above 1 is always faster (better), below 1
 * slower, whatever the unit; "slower by X%" means ratio = 1 - X/100 (a
 * rate down from 100 to 80 is 20% slower; a latency up from 10 to 12 us is
 * 16.7% slower, the rate of work it allows having dropped by that much).
 * One scale for every unit keeps --same-band and --fail-over meaning the
 * same thing for all benchmarks.
 */
#ifndef BW_BENCH_STATS_H
#define BW_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bench_summary {
  double median; /* the middle value; the mean of the two middle ones for
                    an even count */
  double min;
  double max;
} bench_summary_t;

/* Summarises n values (not modified). O(n log n). Returns 0, or -1 if n is
 * 0, a value is not finite, or memory runs out (*out untouched). */
int bench_summarise(const double *v, size_t n, bench_summary_t *out);

/* One benchmark's result as a baseline file holds it. */
typedef struct bench_base_entry {
  char name[64];
  char params[256];  /* "key=value key=value", in the file's order */
  char unit[32];
  bool higher_is_better;
  bool ok;           /* false: the benchmark failed in the baseline run */
  double median, min, max;
} bench_base_entry_t;

typedef struct bench_baseline {
  char path[256];
  char date[32];     /* machine.date */
  char machine[256]; /* "cpu, N cores, kernel, compiler, build type" */
  size_t n;
  bench_base_entry_t *entry;
} bench_baseline_t;

/* The entry for name, or NULL. With several (same name, different
 * params), the one whose params match; else the first. */
const bench_base_entry_t *bench_baseline_find(const bench_baseline_t *b,
                                              const char *name,
                                              const char *params);

typedef enum bench_verdict {
  BENCH_SAME = 0,     /* within the noise band */
  BENCH_FASTER,
  BENCH_SLOWER,
  BENCH_NO_BASELINE,  /* the baseline has no (successful) entry for it */
  BENCH_NOT_COMPARABLE, /* other params or another unit */
  BENCH_FAILED,       /* it failed in this run */
} bench_verdict_t;

/* "same", "faster", "slower", "no baseline", "not comparable", "failed" */
const char *bench_verdict_name(bench_verdict_t v);

typedef struct bench_cmp {
  bench_verdict_t verdict;
  double ratio;     /* speed-up (see above); 0 unless SAME/FASTER/SLOWER */
  double slower_pct; /* (1 - ratio) * 100 when ratio < 1, else 0 */
  bool regressed;   /* slower by more than the fail-over threshold */
} bench_cmp_t;

/*
 * Compares one result with its baseline entry (may be NULL).
 * now_ok false: the benchmark failed in this run. same_band_pct: a ratio
 * within [1 - band, 1 + band] is BENCH_SAME. fail_over_pct < 0: no
 * threshold (regressed stays false); otherwise regressed is true when
 * slower_pct > fail_over_pct, independent of the band (a threshold below
 * the band still applies). A missing or
 * failed baseline entry, other params or another unit is never a
 * regression: there is nothing to compare with.
 */
bench_cmp_t bench_compare(bool now_ok, double now_median, const char *params,
                          const char *unit, bool higher_is_better,
                          const bench_base_entry_t *base,
                          double same_band_pct, double fail_over_pct);

/* A figure for people: 3-4 significant digits with a k, M or G suffix
 * ("24.70M", "169.0", "0.007"). Returns buf. */
const char *bench_human(double v, char *buf, size_t cap);

#endif
