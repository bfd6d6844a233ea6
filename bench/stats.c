/*
 * Statistics and baseline comparison for bw-bench (stats.h).
 */
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int bench_summarise(const double *v, size_t n, bench_summary_t *out)
{
  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return -1;
  /* A sorted copy: the caller's order (run order, for the CSV) stays. A
   * selection algorithm would be O(n), but n is the number of runs. */
  double *s = malloc(n * sizeof *s);
  if (!s)
    return -1;
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_double);
  out->min = s[0];
  out->max = s[n - 1];
  out->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  free(s);
  return 0;
}

const bench_base_entry_t *bench_baseline_find(const bench_baseline_t *b,
                                              const char *name,
                                              const char *params)
{
  const bench_base_entry_t *first = NULL;
  if (!b)
    return NULL;
  for (size_t i = 0; i < b->n; i++) {
    const bench_base_entry_t *e = &b->entry[i];
    if (strcmp(e->name, name) != 0)
      continue;
    if (params && strcmp(e->params, params) == 0)
      return e;
    if (!first)
      first = e;
  }
  return first;
}

const char *bench_verdict_name(bench_verdict_t v)
{
  switch (v) {
  case BENCH_SAME: return "same";
  case BENCH_FASTER: return "faster";
  case BENCH_SLOWER: return "slower";
  case BENCH_NO_BASELINE: return "no baseline";
  case BENCH_NOT_COMPARABLE: return "not comparable";
  case BENCH_FAILED: return "failed";
  }
  return "?";
}

bench_cmp_t bench_compare(bool now_ok, double now_median, const char *params,
                          const char *unit, bool higher_is_better,
                          const bench_base_entry_t *base,
                          double same_band_pct, double fail_over_pct)
{
  bench_cmp_t c;
  memset(&c, 0, sizeof c);
  if (!now_ok) {
    c.verdict = BENCH_FAILED;
    return c;
  }
  if (!base || !base->ok) {
    c.verdict = BENCH_NO_BASELINE;
    return c;
  }
  if ((params && strcmp(params, base->params) != 0) ||
      (unit && strcmp(unit, base->unit) != 0) ||
      higher_is_better != base->higher_is_better) {
    c.verdict = BENCH_NOT_COMPARABLE;
    return c;
  }
  double num = higher_is_better ? now_median : base->median;
  double den = higher_is_better ? base->median : now_median;
  if (!(num >= 0) || !(den >= 0) || !isfinite(num) || !isfinite(den)) {
    c.verdict = BENCH_NOT_COMPARABLE;
    return c;
  }
  if (den == 0) {
    /* Both zero (an idle runtime using no CPU twice) is the same; a cost
     * that fell to zero is as fast as it gets. */
    c.verdict = num == 0 ? BENCH_SAME : BENCH_FASTER;
    c.ratio = num == 0 ? 1.0 : INFINITY;
    return c;
  }
  c.ratio = num / den;
  double band = same_band_pct / 100.0;
  if (c.ratio > 1.0 + band)
    c.verdict = BENCH_FASTER;
  else if (c.ratio < 1.0 - band)
    c.verdict = BENCH_SLOWER;
  else
    c.verdict = BENCH_SAME;
  /* The threshold stands on its own: --fail-over 2 with the default 5%
   * band still fails a run 3% slower, as asked. */
  if (c.ratio < 1.0) {
    c.slower_pct = (1.0 - c.ratio) * 100.0;
    c.regressed = fail_over_pct >= 0 && c.slower_pct > fail_over_pct;
  }
  return c;
}

const char *bench_human(double v, char *buf, size_t cap)
{
  double a = v < 0 ? -v : v;
  if (a >= 1e9)
    snprintf(buf, cap, "%.2fG", v / 1e9);
  else if (a >= 1e6)
    snprintf(buf, cap, "%.2fM", v / 1e6);
  else if (a >= 1e4)
    snprintf(buf, cap, "%.1fk", v / 1e3);
  else if (a >= 100)
    snprintf(buf, cap, "%.1f", v);
  else if (a >= 1)
    snprintf(buf, cap, "%.2f", v);
  else
    snprintf(buf, cap, "%.3f", v);
  return buf;
}
