/*
 * The --report writer (report.h).
 *
 * A chart shows one group: a row per benchmark, a horizontal bar for the
 * median, a whisker from min to max, and, with a baseline, a thin grey bar
 * for the baseline's median under it. Benchmarks of one group have
 * different units and magnitudes (msg/s next to bytes/actor), so one
 * shared axis would flatten all but the largest: each row has its own
 * scale, from 0 to a round number above its largest figure, printed at the
 * row's right end. Bars are comparable within a row (now against baseline,
 * median against spread), never between rows; the chart says so.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stats.h"

/* Geometry, in SVG user units (pixels at 100%). */
#define W 1060
#define LABEL_X 12      /* left edge of the names */
#define PLOT_X0 330     /* the bars start here: value 0 */
#define PLOT_X1 770     /* and end here: the row's scale */
#define TEXT_X 782      /* the figures, right of the plot */
#define ROW_H 58
#define TOP 78          /* title and subtitle above the first row */
#define BOTTOM 44       /* the legend below the last row */

static void xml_text(FILE *f, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&#39;", f); break;
    default:
      /* XML 1.0 forbids most control characters, even escaped. */
      if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
        fputc('?', f);
      else
        fputc(*s, f);
    }
  }
}

/* The smallest 1, 2, 2.5 or 5 times a power of ten that is >= v. */
static double nice_ceiling(double v)
{
  if (!(v > 0) || !isfinite(v))
    return 1;
  double p = pow(10, floor(log10(v)));
  static const double steps[] = {1, 2, 2.5, 5, 10};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    if (steps[i] * p >= v * (1 - 1e-12))
      return steps[i] * p;
  return 10 * p;
}

static double xpos(double v, double scale)
{
  double f = v / scale;
  if (f < 0)
    f = 0;
  if (f > 1)
    f = 1;
  return PLOT_X0 + f * (PLOT_X1 - PLOT_X0);
}

static void svg_row(FILE *f, const report_row_t *r, int y)
{
  char a[24], b[24], c[24];
  /* name, then params and direction in small grey type */
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"name\">", LABEL_X, y + 20);
  xml_text(f, r->name);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">", LABEL_X, y + 36);
  xml_text(f, r->params);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">%s is better</text>\n",
          LABEL_X, y + 50, r->higher_is_better ? "higher" : "lower");
  if (!r->ok) {
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"fail\">FAILED: ", PLOT_X0,
            y + 24);
    xml_text(f, r->error ? r->error : "");
    fputs("</text>\n", f);
    return;
  }
  double top = r->max;
  if (r->has_base && r->base_median > top)
    top = r->base_median;
  double scale = nice_ceiling(top);

  /* the row's axis: 0, half, full scale */
  int ay = y + 44;
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n",
          PLOT_X0, ay, PLOT_X1, ay);
  for (int t = 0; t <= 2; t++) {
    double x = PLOT_X0 + t * (PLOT_X1 - PLOT_X0) / 2.0;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
               "class=\"axis\"/>\n",
            x, ay, x, ay + 4);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" "
               "text-anchor=\"%s\">%s</text>\n",
            x, ay + 13, t == 0 ? "start" : t == 1 ? "middle" : "end",
            t == 0 ? "0" : bench_human(scale * t / 2, a, sizeof a));
  }

  /* the median's bar, the min-max whisker over it */
  double xm = xpos(r->median, scale);
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\" "
             "class=\"bar\"><title>median %s %s</title></rect>\n",
          PLOT_X0, y + 8, xm - PLOT_X0, bench_human(r->median, a, sizeof a),
          r->unit);
  double x0 = xpos(r->min, scale), x1 = xpos(r->max, scale);
  int wy = y + 16;
  fprintf(f, "<g class=\"whisker\"><title>min %s, max %s</title>"
             "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
             "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
             "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/></g>\n",
          bench_human(r->min, b, sizeof b), bench_human(r->max, c, sizeof c),
          x0, wy, x1, wy, x0, wy - 6, x0, wy + 6, x1, wy - 6, x1, wy + 6);
  if (r->has_base) {
    double xb = xpos(r->base_median, scale);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"7\" "
               "class=\"base\"><title>baseline median %s %s</title>"
               "</rect>\n",
            PLOT_X0, y + 28, xb - PLOT_X0,
            bench_human(r->base_median, a, sizeof a), r->unit);
  }

  /* the figures, right of the plot */
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"value\">%s ", TEXT_X, y + 20,
          bench_human(r->median, a, sizeof a));
  xml_text(f, r->unit);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">min %s, max %s",
          TEXT_X, y + 34, bench_human(r->min, b, sizeof b),
          bench_human(r->max, c, sizeof c));
  fputs("</text>\n", f);
  if (r->verdict) {
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small %s\">", TEXT_X, y + 48,
            strcmp(r->verdict, "slower") == 0   ? "slower"
            : strcmp(r->verdict, "faster") == 0 ? "faster"
                                                : "same");
    if (r->has_base) {
      fprintf(f, "baseline %s: ", bench_human(r->base_median, a, sizeof a));
      if (isinf(r->ratio))
        fputs("inf ", f);
      else
        fprintf(f, "%.2fx ", r->ratio);
    }
    xml_text(f, r->verdict);
    fputs("</text>\n", f);
  }
}

/* One group's chart into f. */
static void svg_chart(FILE *f, const char *group, const report_row_t *rows,
                      size_t n, const report_info_t *info)
{
  size_t nrows = 0;
  for (size_t i = 0; i < n; i++)
    nrows += strcmp(rows[i].group, group) == 0;
  int h = TOP + (int)nrows * ROW_H + BOTTOM;
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
          W, h, W, h);
  fputs("<style>\n"
        "text{font-family:DejaVu Sans,Verdana,Arial,sans-serif;"
        "font-size:13px;fill:#222}\n"
        ".title{font-size:18px;font-weight:bold}\n"
        ".name{font-weight:bold;font-family:DejaVu Sans Mono,Menlo,"
        "Consolas,monospace}\n"
        ".small{font-size:11px;fill:#666}\n"
        ".tick{font-size:10px;fill:#888}\n"
        ".value{font-weight:bold}\n"
        ".fail{fill:#b00020;font-weight:bold}\n"
        ".slower{fill:#b00020}.faster{fill:#1b7f2a}\n"
        ".bar{fill:#4a7fc1}\n"
        ".base{fill:#b0b0b0}\n"
        ".whisker line{stroke:#1c2f4a;stroke-width:1.5}\n"
        ".axis{stroke:#bbb;stroke-width:1}\n"
        "</style>\n",
        f);
  fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, h);
  fprintf(f, "<text x=\"%d\" y=\"26\" class=\"title\">bw-bench: ", LABEL_X);
  xml_text(f, group);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"46\" class=\"small\">", LABEL_X);
  xml_text(f, info->machine);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"62\" class=\"small\">", LABEL_X);
  xml_text(f, info->run);
  if (info->warning) {
    fputs(" | ", f);
    xml_text(f, info->warning);
  }
  fputs("</text>\n", f);

  int y = TOP;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(rows[i].group, group) != 0)
      continue;
    if (y > TOP)
      fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                 "stroke=\"#eee\"/>\n",
              LABEL_X, y - 2, W - LABEL_X, y - 2);
    svg_row(f, &rows[i], y);
    y += ROW_H;
  }

  /* legend */
  int ly = y + 16;
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"10\" "
             "class=\"bar\"/>\n",
          LABEL_X, ly - 9);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">median</text>\n",
          LABEL_X + 30, ly);
  fprintf(f, "<g class=\"whisker\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
             "y2=\"%d\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
             "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/></g>\n",
          LABEL_X + 90, ly - 4, LABEL_X + 114, ly - 4, LABEL_X + 90, ly - 9,
          LABEL_X + 90, ly + 1, LABEL_X + 114, ly - 9, LABEL_X + 114, ly + 1);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">min to max of the "
             "runs</text>\n",
          LABEL_X + 120, ly);
  int lx = LABEL_X + 270;
  if (info->baseline) {
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"7\" "
               "class=\"base\"/>\n",
            lx, ly - 7);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">baseline "
               "median</text>\n",
            lx + 30, ly);
    lx += 140;
  }
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">each row has its own "
             "scale (0 to the figure at its right end)</text>\n",
          lx, ly);
  fputs("</svg>\n", f);
}

static void html_text(FILE *f, const char *s) { xml_text(f, s); }

static int write_index(FILE *f, const char *const *groups, char **svgs,
                       size_t ngroups, const report_row_t *rows, size_t n,
                       const report_info_t *info)
{
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>bw-bench report</title>\n<style>\n"
        "body{font-family:DejaVu Sans,Verdana,Arial,sans-serif;margin:24px;"
        "color:#222;max-width:1040px}\n"
        "table{border-collapse:collapse;margin:12px 0}\n"
        "td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px}\n"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
        "th{background:#f4f4f4}\n.fail{color:#b00020}\n"
        ".slower{color:#b00020}.faster{color:#1b7f2a}\n"
        ".meta{color:#555;font-size:13px}\n"
        "svg{max-width:100%;height:auto;border:1px solid #eee}\n"
        "</style>\n</head>\n<body>\n<h1>bw-bench report</h1>\n",
        f);
  fputs("<p class=\"meta\">Machine: ", f);
  html_text(f, info->machine);
  fputs("<br>Run: ", f);
  html_text(f, info->run);
  if (info->baseline) {
    fputs("<br>Baseline: ", f);
    html_text(f, info->baseline);
  }
  if (info->warning) {
    fputs("<br><strong class=\"fail\">", f);
    html_text(f, info->warning);
    fputs("</strong>", f);
  }
  fputs("</p>\n<p>Charts: ", f);
  for (size_t g = 0; g < ngroups; g++) {
    fprintf(f, "%s<a href=\"#%s\">%s</a> (<a href=\"%s.svg\">%s.svg</a>)",
            g ? ", " : "", groups[g], groups[g], groups[g], groups[g]);
  }
  fputs("</p>\n", f);
  for (size_t g = 0; g < ngroups; g++) {
    fprintf(f, "<h2 id=\"%s\">%s</h2>\n", groups[g], groups[g]);
    fputs(svgs[g], f);
  }
  fputs("<h2>All figures</h2>\n<table>\n<tr><th>benchmark</th><th>group</th>"
        "<th>parameters</th><th>median</th><th>min</th><th>max</th>"
        "<th>unit</th>",
        f);
  if (info->baseline)
    fputs("<th>baseline</th><th>speed-up</th><th>verdict</th>", f);
  fputs("</tr>\n", f);
  for (size_t i = 0; i < n; i++) {
    const report_row_t *r = &rows[i];
    char a[24], b[24], c[24];
    fputs("<tr><td><code>", f);
    html_text(f, r->name);
    fputs("</code></td><td>", f);
    html_text(f, r->group);
    fputs("</td><td>", f);
    html_text(f, r->params);
    fputs("</td>", f);
    if (!r->ok) {
      fputs("<td colspan=\"4\" class=\"fail\">FAILED: ", f);
      html_text(f, r->error ? r->error : "");
      fputs("</td>", f);
    } else {
      fprintf(f, "<td class=\"n\">%s</td><td class=\"n\">%s</td>"
                 "<td class=\"n\">%s</td><td>",
              bench_human(r->median, a, sizeof a),
              bench_human(r->min, b, sizeof b),
              bench_human(r->max, c, sizeof c));
      html_text(f, r->unit);
      fprintf(f, "%s</td>", r->higher_is_better ? "" : " (lower is better)");
    }
    if (info->baseline) {
      if (r->has_base)
        fprintf(f, "<td class=\"n\">%s</td><td class=\"n\">%.2fx</td>",
                bench_human(r->base_median, a, sizeof a), r->ratio);
      else
        fputs("<td></td><td></td>", f);
      const char *v = r->verdict ? r->verdict : "";
      fprintf(f, "<td class=\"%s\">%s</td>",
              strcmp(v, "slower") == 0   ? "slower"
              : strcmp(v, "faster") == 0 ? "faster"
                                         : "same",
              v);
    }
    fputs("</tr>\n", f);
  }
  fputs("</table>\n<p class=\"meta\">Each figure is the median of the runs; "
        "min and max show their spread. Speed-up above 1 is faster than the "
        "baseline, whatever the unit.</p>\n</body>\n</html>\n",
        f);
  return ferror(f) ? -1 : 0;
}

static int write_file(const char *dir, const char *name, const char *text,
                      char *err, size_t cap)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, cap, "cannot write '%s': %s", path, strerror(errno));
    return -1;
  }
  fputs(text, f);
  if (ferror(f) | (fclose(f) != 0)) {
    snprintf(err, cap, "writing '%s' failed: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

int bench_report_write(const char *dir, const report_row_t *rows, size_t n,
                       const report_info_t *info, char *err, size_t cap)
{
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    snprintf(err, cap, "cannot create '%s': %s", dir, strerror(errno));
    return -1;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, cap, "'%s' is not a directory", dir);
    return -1;
  }

  /* Groups in order of first appearance. */
  const char **groups = calloc(n ? n : 1, sizeof *groups);
  char **svgs = calloc(n ? n : 1, sizeof *svgs);
  size_t ngroups = 0;
  int ret = -1;
  if (!groups || !svgs) {
    snprintf(err, cap, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    size_t g = 0;
    while (g < ngroups && strcmp(groups[g], rows[i].group) != 0)
      g++;
    if (g == ngroups)
      groups[ngroups++] = rows[i].group;
  }

  /* Each chart is built in memory once: written as GROUP.svg and embedded
   * in index.html, so the page needs no other file to show it. */
  for (size_t g = 0; g < ngroups; g++) {
    size_t len = 0;
    FILE *m = open_memstream(&svgs[g], &len);
    if (!m) {
      snprintf(err, cap, "out of memory");
      goto out;
    }
    svg_chart(m, groups[g], rows, n, info);
    if (fclose(m) != 0 || !svgs[g]) {
      snprintf(err, cap, "out of memory");
      goto out;
    }
    char name[128];
    snprintf(name, sizeof name, "%s.svg", groups[g]);
    if (write_file(dir, name, svgs[g], err, cap) != 0)
      goto out;
  }

  char *html = NULL;
  size_t hlen = 0;
  FILE *m = open_memstream(&html, &hlen);
  if (!m) {
    snprintf(err, cap, "out of memory");
    goto out;
  }
  int wrote = write_index(m, groups, svgs, ngroups, rows, n, info);
  if (fclose(m) != 0 || wrote != 0 || !html) {
    free(html);
    snprintf(err, cap, "out of memory");
    goto out;
  }
  ret = write_file(dir, "index.html", html, err, cap);
  free(html);
out:
  if (svgs)
    for (size_t g = 0; g < ngroups; g++)
      free(svgs[g]);
  free(svgs);
  free(groups);
  return ret;
}
