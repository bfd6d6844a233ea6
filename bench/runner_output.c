/*
 * What the terminal shows: progress on stderr while the runs go (one
 * updating line per benchmark on a terminal, one plain line per benchmark
 * otherwise), then on stdout the results table with the machine line and,
 * with --baseline, the comparison.
 */
#include "runner_internal.h"

#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *human(double v, char *buf, size_t cap)
{
  return bench_human(v, buf, cap);
}

/* --- Progress (stderr) --------------------------------------------------- */

static bool tty_progress;

void runner_progress_init(void)
{
  tty_progress = isatty(STDERR_FILENO);
}

void runner_progress_run(size_t idx, size_t total, const result_t *res,
                         unsigned run, unsigned runs)
{
  if (!tty_progress)
    return;
  char last[64] = "";
  if (res->done) {
    char h[24];
    snprintf(last, sizeof last, "  last %s %s",
             human(res->value[res->done - 1], h, sizeof h), res->bench->unit);
  }
  fprintf(stderr, "\r\033[K[%zu/%zu] %s %s  run %u/%u%s", idx, total,
          res->bench->name, res->params, run, runs, last);
  fflush(stderr);
}

void runner_progress_done(size_t idx, size_t total, const result_t *res)
{
  char a[24], b[24], c[24];
  if (tty_progress)
    fprintf(stderr, "\r\033[K");
  if (res->failed)
    fprintf(stderr, "[%zu/%zu] %s %s: FAILED (run %u): %s\n", idx, total,
            res->bench->name, res->params, res->failed_run, res->error);
  else
    fprintf(stderr, "[%zu/%zu] %s %s: %s %s (median of %u; min %s, max %s)\n",
            idx, total, res->bench->name, res->params,
            human(res->median, a, sizeof a), res->bench->unit, res->done,
            human(res->min, b, sizeof b), human(res->max, c, sizeof c));
  fflush(stderr);
}

/* --- The table (stdout) -------------------------------------------------- */

/* The widest name, at least as wide as the column's title. */
static int name_width(const result_t *res, size_t n)
{
  int wn = (int)strlen("benchmark");
  for (size_t i = 0; i < n; i++) {
    int l = (int)strlen(res[i].bench->name);
    if (l > wn) wn = l;
  }
  return wn;
}

/* The widest parameters, at least as wide as the column's title. */
static int params_width(const result_t *res, size_t n)
{
  int wp = (int)strlen("parameters");
  for (size_t i = 0; i < n; i++) {
    int l = (int)strlen(res[i].params);
    if (l > wp) wp = l;
  }
  return wp;
}

static void print_row(FILE *f, const result_t *r, int wn, int wp)
{
  if (r->failed) {
    fprintf(f, "%-*s  %-*s  FAILED: %s\n", wn, r->bench->name, wp,
            r->params, r->error);
    return;
  }
  char a[24], b[24], c[24];
  fprintf(f, "%-*s  %-*s  %9s  %9s  %9s  %s%s\n", wn, r->bench->name, wp,
          r->params, human(r->median, a, sizeof a),
          human(r->min, b, sizeof b), human(r->max, c, sizeof c),
          r->bench->unit,
          r->bench->higher_is_better ? "" : " (lower is better)");
}

void runner_print_table(FILE *f, const result_t *res, size_t n,
                        const machine_t *m, const options_t *o,
                        unsigned workers)
{
  int wn = name_width(res, n), wp = params_width(res, n);
  fprintf(f, "\n%-*s  %-*s  %9s  %9s  %9s  %s\n", wn, "benchmark", wp,
          "parameters", "median", "min", "max", "unit");
  for (size_t i = 0; i < n; i++)
    print_row(f, &res[i], wn, wp);
  fprintf(f, "\nmachine: %s, %ld cores, %s, %s, build %s%s%s\n", m->cpu,
          m->cores, m->kernel, BENCH_COMPILER, m->build_type,
          m->sanitize[0] ? ", sanitize=" : "", m->sanitize);
  fprintf(f, "runs: %u per benchmark (median), workers: %u, %s%s\n", o->runs,
          workers, m->date, o->quick ? ", --quick sizes" : "");
  const char *unfit = runner_build_unfit();
  if (unfit)
    fprintf(f, "WARNING: %s: these figures do not describe a release build "
               "(--force)\n",
            unfit);
}

/* --- The comparison with --baseline (stdout) ----------------------------- */

bench_cmp_t runner_compare(const result_t *r, const bench_baseline_t *base,
                           const options_t *o,
                           const bench_base_entry_t **entry)
{
  *entry = bench_baseline_find(base, r->bench->name, r->params);
  return bench_compare(!r->failed, r->median, r->params, r->bench->unit,
                       r->bench->higher_is_better, *entry, o->same_band_pct,
                       o->fail_over_pct);
}

/* The comparison's row for r. Returns true if r regressed. */
static bool print_cmp_row(FILE *f, const result_t *r, int wn,
                          const bench_baseline_t *base, const options_t *o)
{
  const bench_base_entry_t *e;
  bench_cmp_t c = runner_compare(r, base, o, &e);
  char a[24] = "-", b[24] = "-", ratio[24] = "-";
  if (!r->failed)
    human(r->median, a, sizeof a);
  if (e && e->ok)
    human(e->median, b, sizeof b);
  if (c.verdict <= BENCH_SLOWER)
    snprintf(ratio, sizeof ratio, isinf(c.ratio) ? "inf" : "%.2fx",
             c.ratio);
  char why[400] = "";
  if (c.verdict == BENCH_NOT_COMPARABLE && e)
    snprintf(why, sizeof why, " (baseline: %s, %s)", e->params, e->unit);
  else if (c.verdict == BENCH_SLOWER || (c.regressed))
    snprintf(why, sizeof why, " (%.1f%% slower%s)", c.slower_pct,
             c.regressed ? "; over --fail-over: REGRESSION" : "");
  else if (c.verdict == BENCH_FASTER && !isinf(c.ratio))
    snprintf(why, sizeof why, " (%.1f%% faster)", (c.ratio - 1) * 100);
  fprintf(f, "%-*s  %9s  %9s  %8s  %s%s\n", wn, r->bench->name, a, b,
          ratio, bench_verdict_name(c.verdict), why);
  return c.regressed;
}

bool runner_print_comparison(FILE *f, const result_t *res, size_t n,
                             const bench_baseline_t *base,
                             const options_t *o)
{
  int wn = name_width(res, n);
  fprintf(f, "\nbaseline: %s (%s; %s)\n", base->path, base->date,
          base->machine);
  fprintf(f, "%-*s  %9s  %9s  %8s  %s\n", wn, "benchmark", "median",
          "baseline", "speed-up", "verdict");
  bool regressed = false;
  for (size_t i = 0; i < n; i++)
    regressed |= print_cmp_row(f, &res[i], wn, base, o);
  fprintf(f, "speed-up: baseline/now for figures where lower is better, "
             "now/baseline otherwise; 'same' within %g%%",
          o->same_band_pct);
  if (o->fail_over_pct >= 0)
    fprintf(f, "; --fail-over %g%%: %s", o->fail_over_pct,
            regressed ? "REGRESSED" : "no regression");
  fputc('\n', f);
  return regressed;
}
