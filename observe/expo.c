/*
 * bulwark: the exposition writers: a snapshot as Prometheus text format
 * (version 0.0.4) or as JSON, into a caller's buffer (snprintf-like: the
 * length needed is reported even when it did not fit) or a growable one.
 * They read snapshots through the public walking API only, so they work on
 * any snapshot a subscriber holds; nothing here is printed to stdout.
 *
 * Prometheus rules followed (checked line by line by
 * tests/patterns/test_metrics.c): one "# HELP" then one "# TYPE" line per
 * family, before its samples; help escapes backslash and newline; label
 * values escape backslash, double quote and newline; a histogram's
 * _bucket lines are cumulative with increasing le, the last le="+Inf" equal
 * to _count, then _sum and _count. Values: integers print as integers,
 * other numbers with the shortest of %.15g / %.17g that reads back
 * exactly; NaN and infinities as NaN, +Inf, -Inf.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/metrics.h"
#include "observe/histogram.h"
#include "runtime/jsonw.h"

typedef struct wbuf {
  char *p;
  size_t len; /* bytes the text needs so far */
  size_t cap;
  bool grow;  /* realloc as needed (else: keep counting past cap) */
  bool oom;
} wbuf_t;

/* Grows a growable buffer to hold n more bytes and the NUL. */
static void reserve(wbuf_t *w, size_t n) {
  if (w->grow && !w->oom && w->len + n + 1 > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n + 1)
      cap *= 2;
    char *np = realloc(w->p, cap);
    if (np == NULL) {
      w->oom = true;
    } else {
      w->p = np;
      w->cap = cap;
    }
  }
}

static void put(wbuf_t *w, const char *s, size_t n) {
  reserve(w, n);
  if (w->len < w->cap) {
    size_t room = w->cap - 1 - w->len; /* keep one byte for the NUL */
    memcpy(w->p + w->len, s, n < room ? n : room);
  }
  w->len += n;
}

static void puts_(wbuf_t *w, const char *s) { put(w, s, strlen(s)); }

static void putc_(wbuf_t *w, char c) { put(w, &c, 1); }

static void put_u64(wbuf_t *w, uint64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%" PRIu64, v);
  put(w, b, (size_t)n);
}

/* A double as Prometheus (and, for finite values, JSON) reads it. */
static void put_double(wbuf_t *w, double v) {
  char b[40];
  if (isnan(v)) {
    puts_(w, "NaN");
    return;
  }
  if (isinf(v)) {
    puts_(w, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  /* below 2^53 every integer is exact; the cast is then defined (no libm:
   * the library does not link it) */
  if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
    int n = snprintf(b, sizeof b, "%.0f", v);
    put(w, b, (size_t)n);
    return;
  }
  int n = snprintf(b, sizeof b, "%.15g", v);
  if (strtod(b, NULL) != v)
    n = snprintf(b, sizeof b, "%.17g", v);
  put(w, b, (size_t)n);
}

/* --- Prometheus -------------------------------------------------------------- */

static void prom_escape(wbuf_t *w, const char *s, bool quote) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\')
      puts_(w, "\\\\");
    else if (*p == '\n')
      puts_(w, "\\n");
    else if (quote && *p == '"')
      puts_(w, "\\\"");
    else
      putc_(w, *p);
  }
}

/* {a="x",b="y"} with an optional le last; nothing if there are no labels. */
static void prom_labels(wbuf_t *w, const bw_metric_family_info_t *f, const char *const *lv,
                        const char *le) {
  if (f->nlabels == 0 && le == NULL)
    return;
  putc_(w, '{');
  for (size_t i = 0; i < f->nlabels; i++) {
    if (i > 0)
      putc_(w, ',');
    puts_(w, f->label_names[i]);
    puts_(w, "=\"");
    prom_escape(w, lv[i], true);
    putc_(w, '"');
  }
  if (le != NULL) {
    if (f->nlabels > 0)
      putc_(w, ',');
    puts_(w, "le=\"");
    puts_(w, le);
    putc_(w, '"');
  }
  putc_(w, '}');
}

static const char *type_name(int t) {
  return t == BW_METRIC_COUNTER ? "counter" : t == BW_METRIC_GAUGE ? "gauge" : "histogram";
}

static void prom_histogram(wbuf_t *w, const bw_metric_family_info_t *f,
                           const bw_metric_series_info_t *s) {
  uint64_t cum = 0;
  unsigned b = 0;
  for (unsigned k = 0; k < BW__EXPO_BOUNDS; k++) {
    uint64_t bound = bw__expo_bound(k);
    while (b < BW_HISTOGRAM_BUCKETS && bw_histogram_bucket_upper(b) <= bound)
      cum += s->buckets[b++];
    char le[40];
    snprintf(le, sizeof le, "%.15g", (double)bound / 1e9);
    puts_(w, f->name);
    puts_(w, "_bucket");
    prom_labels(w, f, s->label_values, le);
    putc_(w, ' ');
    put_u64(w, cum);
    putc_(w, '\n');
  }
  puts_(w, f->name);
  puts_(w, "_bucket");
  prom_labels(w, f, s->label_values, "+Inf");
  putc_(w, ' ');
  put_u64(w, s->h.count);
  putc_(w, '\n');
  puts_(w, f->name);
  puts_(w, "_sum");
  prom_labels(w, f, s->label_values, NULL);
  putc_(w, ' ');
  put_double(w, (double)s->h.sum_ns / 1e9);
  putc_(w, '\n');
  puts_(w, f->name);
  puts_(w, "_count");
  prom_labels(w, f, s->label_values, NULL);
  putc_(w, ' ');
  put_u64(w, s->h.count);
  putc_(w, '\n');
}

static void write_prometheus(wbuf_t *w, const bw_metrics_snapshot_t *sn) {
  size_t nf = bw_metrics_snapshot_nfamilies(sn);
  for (size_t i = 0; i < nf; i++) {
    bw_metric_family_info_t f;
    (void)bw_metrics_snapshot_family(sn, i, &f);
    puts_(w, "# HELP ");
    puts_(w, f.name);
    putc_(w, ' ');
    prom_escape(w, f.help, false);
    putc_(w, '\n');
    puts_(w, "# TYPE ");
    puts_(w, f.name);
    putc_(w, ' ');
    puts_(w, type_name(f.type));
    putc_(w, '\n');
    for (size_t k = 0; k < f.nseries; k++) {
      bw_metric_series_info_t s;
      (void)bw_metrics_snapshot_series(sn, i, k, &s);
      if (f.type == BW_METRIC_HISTOGRAM) {
        prom_histogram(w, &f, &s);
        continue;
      }
      puts_(w, f.name);
      prom_labels(w, &f, s.label_values, NULL);
      putc_(w, ' ');
      put_double(w, s.value);
      putc_(w, '\n');
    }
  }
}

/* --- JSON --------------------------------------------------------------------- */

/* A quoted string, escaped by the runtime's one JSON writer (runtime/jsonw.h:
 * invalid UTF-8 as U+FFFD, so a label value cut mid-sequence still makes
 * valid JSON): measured, room made, then written. */
static void json_str(wbuf_t *w, const char *s) {
  bw__jw_t jw = {.b = NULL, .cap = 0, .len = 0};
  bw__jw_str(&jw, s);
  reserve(w, jw.len);
  size_t room = w->len + 1 < w->cap ? w->cap - 1 - w->len : 0; /* keep the NUL's byte */
  jw = (bw__jw_t){.b = room ? w->p + w->len : NULL, .cap = room, .len = 0};
  bw__jw_str(&jw, s);
  w->len += jw.len;
}

static void json_num(wbuf_t *w, double v) {
  if (isnan(v) || isinf(v))
    puts_(w, "null"); /* JSON has no NaN or infinity */
  else
    put_double(w, v);
}

static void json_key_u64(wbuf_t *w, const char *key, uint64_t v) {
  putc_(w, ',');
  json_str(w, key);
  putc_(w, ':');
  put_u64(w, v);
}

/*
 * {"seq":N,"time_ns":T,"families":[{"name":..,"help":..,"type":..,
 *   "labels":[..],"series":[{"labels":{..},"value":V}]}]}
 * A histogram series has count, sum_ns, max_ns, p50_ns, p90_ns, p99_ns
 * and buckets: [[le_ns, cumulative count], ...] for non-empty buckets.
 */
static void write_json(wbuf_t *w, const bw_metrics_snapshot_t *sn) {
  puts_(w, "{\"seq\":");
  put_u64(w, bw_metrics_snapshot_seq(sn));
  puts_(w, ",\"time_ns\":");
  put_u64(w, bw_metrics_snapshot_time_ns(sn));
  puts_(w, ",\"families\":[");
  size_t nf = bw_metrics_snapshot_nfamilies(sn);
  for (size_t i = 0; i < nf; i++) {
    bw_metric_family_info_t f;
    (void)bw_metrics_snapshot_family(sn, i, &f);
    if (i > 0)
      putc_(w, ',');
    puts_(w, "{\"name\":");
    json_str(w, f.name);
    puts_(w, ",\"help\":");
    json_str(w, f.help);
    puts_(w, ",\"type\":");
    json_str(w, type_name(f.type));
    puts_(w, ",\"labels\":[");
    for (size_t j = 0; j < f.nlabels; j++) {
      if (j > 0)
        putc_(w, ',');
      json_str(w, f.label_names[j]);
    }
    puts_(w, "],\"series\":[");
    for (size_t k = 0; k < f.nseries; k++) {
      bw_metric_series_info_t s;
      (void)bw_metrics_snapshot_series(sn, i, k, &s);
      if (k > 0)
        putc_(w, ',');
      puts_(w, "{\"labels\":{");
      for (size_t j = 0; j < f.nlabels; j++) {
        if (j > 0)
          putc_(w, ',');
        json_str(w, f.label_names[j]);
        putc_(w, ':');
        json_str(w, s.label_values[j]);
      }
      putc_(w, '}');
      if (f.type != BW_METRIC_HISTOGRAM) {
        puts_(w, ",\"value\":");
        json_num(w, s.value);
      } else {
        json_key_u64(w, "count", s.h.count);
        json_key_u64(w, "sum_ns", s.h.sum_ns);
        json_key_u64(w, "max_ns", s.h.max_ns);
        json_key_u64(w, "p50_ns", s.h.p50_ns);
        json_key_u64(w, "p90_ns", s.h.p90_ns);
        json_key_u64(w, "p99_ns", s.h.p99_ns);
        puts_(w, ",\"buckets\":[");
        uint64_t cum = 0;
        bool first = true;
        for (unsigned b = 0; b < BW_HISTOGRAM_BUCKETS; b++) {
          if (s.buckets[b] == 0)
            continue;
          cum += s.buckets[b];
          if (!first)
            putc_(w, ',');
          first = false;
          putc_(w, '[');
          uint64_t up = bw_histogram_bucket_upper(b);
          if (up == UINT64_MAX)
            puts_(w, "null"); /* the overflow bucket: no finite bound */
          else
            put_u64(w, up);
          putc_(w, ',');
          put_u64(w, cum);
          putc_(w, ']');
        }
        putc_(w, ']');
      }
      putc_(w, '}');
    }
    puts_(w, "]}");
  }
  puts_(w, "]}");
}

static int write_any(wbuf_t *w, const bw_metrics_snapshot_t *s, int format) {
  if (format == BW_METRICS_PROMETHEUS)
    write_prometheus(w, s);
  else if (format == BW_METRICS_JSON)
    write_json(w, s);
  else
    return BW_EINVAL;
  return 0;
}

int bw_metrics_snapshot_render(const bw_metrics_snapshot_t *s, int format, char *buf,
                               size_t cap, size_t *len) {
  if (s == NULL || len == NULL || (buf == NULL && cap > 0) ||
      (format != BW_METRICS_PROMETHEUS && format != BW_METRICS_JSON))
    return BW_EINVAL;
  wbuf_t w = {.p = buf, .cap = cap};
  (void)write_any(&w, s, format);
  if (cap > 0)
    buf[w.len < cap ? w.len : cap - 1] = '\0';
  *len = w.len;
  return w.len < cap ? 0 : BW_ETOOBIG;
}

int bw_metrics_snapshot_render_alloc(const bw_metrics_snapshot_t *s, int format, char **out,
                                     size_t *len) {
  if (s == NULL || out == NULL || (format != BW_METRICS_PROMETHEUS && format != BW_METRICS_JSON))
    return BW_EINVAL;
  wbuf_t w = {.grow = true};
  (void)write_any(&w, s, format);
  if (w.oom || w.p == NULL) {
    free(w.p);
    return BW_ENOMEM;
  }
  w.p[w.len] = '\0';
  *out = w.p;
  if (len != NULL)
    *len = w.len;
  return 0;
}
