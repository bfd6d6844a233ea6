/*
 * --report DIR: one SVG chart per benchmark group and an index.html, so a
 * user can look rather than read. The runner writes the SVG itself (no
 * gnuplot, no fonts to find): a chart is text, and a bar chart needs only
 * rectangles, lines and labels.
 */
#ifndef BW_BENCH_REPORT_H
#define BW_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

/* One benchmark's line in the report. */
typedef struct report_row {
  const char *name;
  const char *group;
  const char *unit;
  const char *params;
  bool higher_is_better;
  bool ok;           /* false: failed; error says why */
  const char *error;
  double median, min, max;
  bool has_base;     /* a comparable baseline median */
  double base_median;
  const char *verdict; /* "faster", "same", ...; NULL without --baseline */
  double ratio;        /* speed-up over the baseline, when has_base */
} report_row_t;

typedef struct report_info {
  const char *machine;  /* the machine line */
  const char *run;      /* runs, workers, date, sizes */
  const char *baseline; /* "path (date; machine)", or NULL */
  const char *warning;  /* an unfit build's warning, or NULL */
} report_info_t;

/*
 * Writes DIR/GROUP.svg for each group that has rows (in the order groups
 * first appear) and DIR/index.html, which embeds every chart inline (one
 * file to open, mail or archive; the .svg files are there to link to) with
 * the machine, the run and a table of every figure. Creates DIR if needed
 * (not its parents). Returns 0, or -1 with a message in err.
 */
int bench_report_write(const char *dir, const report_row_t *rows, size_t n,
                       const report_info_t *info, char *err, size_t cap);

#endif
