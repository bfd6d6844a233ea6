/*
 * The files a session writes, and the check of one: --json (the results,
 * which --baseline and --check-json read back), --csv (every run's raw
 * figures), --report (the charts and index.html, report.c), and
 * --check-json (baseline.c validates, this says so).
 */
#include "runner_internal.h"

#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

FILE *runner_open_output(const char *path, const char *what)
{
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "%s: cannot write the %s file '%s': %s\n", runner_prog,
            what, path, strerror(errno));
    exit(EXIT_USAGE);
  }
  return f;
}

int runner_close_output(FILE *f, const char *path, int wrote)
{
  if (fclose(f) != 0 || wrote != 0) {
    fprintf(stderr, "%s: writing '%s' failed: %s\n", runner_prog, path,
            strerror(errno));
    return -1;
  }
  return 0;
}

static void json_str(FILE *f, const char *s)
{
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    case '\b': fputs("\\b", f); break;
    case '\f': fputs("\\f", f); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(f, "\\u%04x", *p);
      else
        fputc(*p, f);
    }
  }
  fputc('"', f);
}

static void json_num(FILE *f, double v)
{
  /* Every figure here is a finite, positive-or-zero rate, size or
   * percentage. Three decimals for figures of 1 and more; six significant
   * digits below, so a small positive figure (idle_cpu's thousandths of a
   * percent) never reads back as 0. */
  if (v != 0 && fabs(v) < 1)
    fprintf(f, "%.6g", v);
  else
    fprintf(f, "%.3f", v);
}

/* "machine": what the figures ran on. */
static void json_machine(FILE *f, const machine_t *m)
{
  fputs("{\n  \"machine\": {\"cpu\": ", f);
  json_str(f, m->cpu);
  fprintf(f, ", \"cores\": %ld, \"kernel\": ", m->cores);
  json_str(f, m->kernel);
  fputs(", \"compiler\": ", f);
  json_str(f, BENCH_COMPILER);
  fputs(", \"build_type\": ", f);
  json_str(f, BW_BENCH_BUILD_TYPE);
  fputs(", \"sanitize\": ", f);
  json_str(f, m->sanitize);
  fputs(", \"date\": ", f);
  json_str(f, m->date);
}

/* "config": the library's version and how the session ran. */
static void json_config(FILE *f, const options_t *o, unsigned workers)
{
  fprintf(f,
          "},\n  \"config\": {\"bulwark\": \"%d.%d.%d\", \"runs\": %u, "
          "\"workers\": %u, \"quick\": %s, \"forced\": %s},\n",
          BW_VERSION_MAJOR, BW_VERSION_MINOR, BW_VERSION_PATCH, o->runs,
          workers, o->quick ? "true" : "false",
          (o->force && runner_build_unfit()) ? "true" : "false");
}

/* The figures of a result that did not fail: median, min, max, runs. */
static void json_figures(FILE *f, const result_t *r)
{
  fputs(", \"median\": ", f);
  json_num(f, r->median);
  fputs(", \"min\": ", f);
  json_num(f, r->min);
  fputs(", \"max\": ", f);
  json_num(f, r->max);
  fputs(", \"runs\": [", f);
  for (unsigned k = 0; k < r->done; k++) {
    if (k)
      fputs(", ", f);
    json_num(f, r->value[k]);
  }
  fputs("]}", f);
}

/* One element of "results"; first: no comma before it. */
static void json_result(FILE *f, const result_t *r, bool first)
{
  fputs(first ? "\n    {\"name\": " : ",\n    {\"name\": ", f);
  json_str(f, r->bench->name);
  fputs(", \"params\": {", f);
  for (size_t k = 0; k < BENCH_MAX_PARAMS && r->bench->params[k].key; k++) {
    if (k)
      fputs(", ", f);
    json_str(f, r->bench->params[k].key);
    fprintf(f, ": %" PRIu64, r->param[k]);
  }
  fputs("}, \"unit\": ", f);
  json_str(f, r->bench->unit);
  fprintf(f, ", \"higher_is_better\": %s",
          r->bench->higher_is_better ? "true" : "false");
  if (!r->failed) {
    json_figures(f, r);
    return;
  }
  fputs(", \"error\": ", f);
  json_str(f, r->error);
  fputs(", \"median\": null, \"min\": null, \"max\": null, \"runs\": []}",
        f);
}

int runner_write_json(FILE *f, const result_t *res, size_t n,
                      const machine_t *m, const options_t *o,
                      unsigned workers)
{
  json_machine(f, m);
  json_config(f, o, workers);
  fputs("  \"results\": [", f);
  for (size_t i = 0; i < n; i++)
    json_result(f, &res[i], i == 0);
  fputs("\n  ]\n}\n", f);
  return ferror(f) ? -1 : 0;
}

static void csv_field(FILE *f, const char *s)
{
  if (strpbrk(s, ",\"\n\r") == NULL) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

int runner_write_csv(FILE *f, const result_t *res, size_t n)
{
  fputs("benchmark,params,run,value,unit,seconds,work,error\n", f);
  for (size_t i = 0; i < n; i++) {
    const result_t *r = &res[i];
    for (unsigned k = 0; k < r->done; k++) {
      csv_field(f, r->bench->name);
      fputc(',', f);
      csv_field(f, r->params);
      fprintf(f, ",%u,%.3f,", k + 1, r->value[k]);
      csv_field(f, r->bench->unit);
      fprintf(f, ",%.6f,%" PRIu64 ",\n", r->seconds[k], r->work[k]);
    }
    if (r->failed) {
      csv_field(f, r->bench->name);
      fputc(',', f);
      csv_field(f, r->params);
      fprintf(f, ",%u,,", r->failed_run);
      csv_field(f, r->bench->unit);
      fputs(",,,", f);
      csv_field(f, r->error);
      fputc('\n', f);
    }
  }
  return ferror(f) ? -1 : 0;
}

/* --- --report ------------------------------------------------------------ */

/* r's row in the report, with its comparison when there is a baseline. */
static void report_row(report_row_t *w, const result_t *r,
                       const options_t *o, const bench_baseline_t *base)
{
  w->name = r->bench->name;
  w->group = r->bench->group ? r->bench->group : "other";
  w->unit = r->bench->unit;
  w->params = r->params;
  w->higher_is_better = r->bench->higher_is_better;
  w->ok = !r->failed;
  w->error = r->error;
  w->median = r->median;
  w->min = r->min;
  w->max = r->max;
  if (!o->baseline_path)
    return;
  const bench_base_entry_t *e;
  bench_cmp_t c = runner_compare(r, base, o, &e);
  w->verdict = bench_verdict_name(c.verdict);
  w->has_base = c.verdict <= BENCH_SLOWER;
  if (w->has_base) {
    w->base_median = e->median;
    w->ratio = c.ratio;
  }
}

/* The report's header lines; report_info_t points into it. */
typedef struct report_text {
  char machine[700];
  char run[200];
  char baseline[600];
  char warning[300];
} report_text_t;

static report_info_t report_info(report_text_t *t, const machine_t *m,
                                 const options_t *o, unsigned workers,
                                 const bench_baseline_t *base)
{
  snprintf(t->machine, sizeof t->machine,
           "%s, %ld cores, %s, %s, build %s%s%s", m->cpu, m->cores,
           m->kernel, BENCH_COMPILER, m->build_type,
           m->sanitize[0] ? ", sanitize=" : "", m->sanitize);
  snprintf(t->run, sizeof t->run, "%u runs per benchmark (median), "
                                  "%u workers, %s%s",
           o->runs, workers, m->date, o->quick ? ", --quick sizes" : "");
  if (o->baseline_path)
    snprintf(t->baseline, sizeof t->baseline, "%s (%s; %s)", base->path,
             base->date, base->machine);
  const char *unfit = runner_build_unfit();
  if (unfit)
    snprintf(t->warning, sizeof t->warning,
             "WARNING: %s (--force): not a release build's figures", unfit);
  report_info_t info = {.machine = t->machine,
                        .run = t->run,
                        .baseline = o->baseline_path ? t->baseline : NULL,
                        .warning = unfit ? t->warning : NULL};
  return info;
}

int runner_write_report(const result_t *res, size_t n, const machine_t *m,
                        const options_t *o, unsigned workers,
                        const bench_baseline_t *base)
{
  report_row_t *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows) {
    fprintf(stderr, "%s: out of memory\n", runner_prog);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    report_row(&rows[i], &res[i], o, base);
  report_text_t text;
  report_info_t info = report_info(&text, m, o, workers, base);
  char err[600];
  int rc = bench_report_write(o->report_dir, rows, n, &info, err, sizeof err);
  free(rows);
  if (rc != 0) {
    fprintf(stderr, "%s: --report: %s\n", runner_prog, err);
    return -1;
  }
  fprintf(stderr, "%s: report written to %s/index.html\n", runner_prog,
          o->report_dir);
  return 0;
}

/* --- --check-json -------------------------------------------------------- */

int runner_check_json(const options_t *o)
{
  const char *names[RUNNER_MAX_BENCHES];
  size_t n = 0;
  for (size_t b = 0; b < runner_nbench; b++)
    if (o->selected[b])
      names[n++] = runner_benches[b]->name;
  int problems = bench_check_json(o->check_json_path, names, n, stderr);
  if (problems) {
    fprintf(stderr, "%s: %s: %d problem%s\n", runner_prog,
            o->check_json_path, problems, problems == 1 ? "" : "s");
    return EXIT_FAILED;
  }
  printf("%s: good: a result for each of %zu benchmarks, every figure "
         "sane\n",
         o->check_json_path, n);
  return 0;
}
