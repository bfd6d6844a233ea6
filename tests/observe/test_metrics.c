/*
 * Tests of observe/metrics.c and observe/expo.c: the registry's rules
 * (Prometheus names, duplicates, limits), counters and gauges updated from
 * several threads summing exactly (private cells and the shared slot),
 * the reporter under the manual clock delivering snapshots to a subscriber,
 * the runtime's, breakers', bulkheads', retry policies' and restarts'
 * metrics with their labels, the reporter as a supervised child that is
 * killed and restarted, an HTTP client's per-host series against two
 * local servers, the Prometheus text checked line by line against
 * the format's rules and compared with an expected text, the JSON checked
 * by a small validator and compared too, rendering into small buffers, and
 * bad input.
 */
#include "support.h"

#include <math.h>

/* the checkers' messages and keys may be cut short: harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/http.h"
#include "bulwark/metrics.h"
#include "bulwark/retry.h"
#include "patterns/http_fixture.h"

static bw_metrics_t *new_metrics(bw_runtime_t *rt, bool runtime_metrics, uint64_t period_ms) {
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  o.runtime_metrics = runtime_metrics;
  o.period_ms = period_ms;
  bw_metrics_t *m = NULL;
  assert_int_equal(bw_metrics_new(rt, &o, &m), 0);
  assert_int_equal(bw_metrics_start(m, NULL), 0);
  return m;
}

/* Collects now and reads one counter or gauge; NAN if absent. */
static double collect_value(bw_metrics_t *m, const char *name, const char *const *lv, size_t n) {
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  bw_metrics_snapshot_t *s;
  assert_int_equal(bw_metrics_latest(m, &s), 0);
  double v = NAN;
  if (bw_metrics_snapshot_value(s, name, lv, n, &v) != 0)
    v = NAN;
  bw_metrics_snapshot_release(s);
  return v;
}

/* Collects until the value is want (asynchronous sources: pools, events). */
#define AWAIT_VALUE(m, name, lv, n, want) BWT_POLL(collect_value(m, name, lv, n) == (want))

/* --- A Prometheus text checker ------------------------------------------------ */

typedef struct prom {
  char fam[BW_METRICS_NAME_MAX + 1];
  char type[16];
  bool typed;
  char series[512][300]; /* "name{labels}" seen, for duplicates */
  int nseries;
  /* the histogram series being read */
  char hkey[300];
  double last_le, last_cum, inf_cum;
  bool in_hist, saw_inf, saw_sum;
} prom_t;

static bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

static const char *parse_name(const char *p, char *out, size_t cap) {
  size_t n = 0;
  if (!is_name_char(*p, true))
    return NULL;
  while (is_name_char(*p, n == 0) && n + 1 < cap)
    out[n++] = *p++;
  out[n] = '\0';
  return p;
}

static bool parse_value(const char *s, double *v) {
  if (strcmp(s, "+Inf") == 0) {
    *v = INFINITY;
    return true;
  }
  if (strcmp(s, "-Inf") == 0) {
    *v = -INFINITY;
    return true;
  }
  if (strcmp(s, "NaN") == 0) {
    *v = NAN;
    return true;
  }
  char *end;
  *v = strtod(s, &end);
  return end != s && *end == '\0';
}

/* Checks one sample line; fills err on a violation. */
static bool prom_sample(prom_t *st, const char *line, char *err) {
  char name[BW_METRICS_NAME_MAX + 16], labels[256] = "", le[64] = "";
  const char *p = parse_name(line, name, sizeof name);
  if (p == NULL)
    return snprintf(err, 200, "bad sample name: %s", line), false;
  if (*p == '{') {
    size_t ln = 0;
    p++;
    while (*p != '}') {
      char lname[BW_METRICS_NAME_MAX + 1];
      p = parse_name(p, lname, sizeof lname);
      if (p == NULL || strchr(lname, ':') != NULL || p[0] != '=' || p[1] != '"')
        return snprintf(err, 200, "bad label in: %s", line), false;
      p += 2;
      char val[128];
      size_t vn = 0;
      while (*p != '"') {
        if (*p == '\0' || *p == '\n')
          return snprintf(err, 200, "unterminated label value: %s", line), false;
        if (*p == '\\') {
          p++;
          if (*p != '\\' && *p != '"' && *p != 'n')
            return snprintf(err, 200, "bad escape in: %s", line), false;
        }
        if (vn + 1 < sizeof val)
          val[vn++] = *p;
        p++;
      }
      val[vn] = '\0';
      p++;
      if (strcmp(lname, "le") == 0)
        snprintf(le, sizeof le, "%s", val);
      else
        ln += (size_t)snprintf(labels + ln, sizeof labels - ln, "%s=%s;", lname, val);
      if (*p == ',')
        p++;
      else if (*p != '}')
        return snprintf(err, 200, "bad label list: %s", line), false;
    }
    p++;
  }
  double v;
  if (*p != ' ' || !parse_value(p + 1, &v))
    return snprintf(err, 200, "bad value: %s", line), false;

  /* which family it belongs to */
  if (!st->typed)
    return snprintf(err, 200, "sample before # TYPE: %s", line), false;
  bool hist = strcmp(st->type, "histogram") == 0;
  char key[300];
  snprintf(key, sizeof key, "%s{%s%s%s}", name, labels, le[0] ? "le=" : "", le);
  for (int i = 0; i < st->nseries; i++)
    if (strcmp(st->series[i], key) == 0)
      return snprintf(err, 200, "duplicate series: %s", key), false;
  if (st->nseries < 512)
    snprintf(st->series[st->nseries++], 300, "%s", key);
  if (!hist) {
    if (strcmp(name, st->fam) != 0 || le[0] != '\0')
      return snprintf(err, 200, "sample %s outside its family %s", name, st->fam), false;
    return true;
  }
  size_t fl = strlen(st->fam);
  if (strncmp(name, st->fam, fl) != 0)
    return snprintf(err, 200, "sample %s outside its family %s", name, st->fam), false;
  const char *suffix = name + fl;
  if (strcmp(suffix, "_bucket") == 0) {
    if (le[0] == '\0')
      return snprintf(err, 200, "bucket without le: %s", line), false;
    if (!st->in_hist || strcmp(st->hkey, labels) != 0) {
      if (st->in_hist && !(st->saw_inf && st->saw_sum))
        return snprintf(err, 200, "histogram series ended early: %s", line), false;
      st->in_hist = true;
      st->saw_inf = st->saw_sum = false;
      st->last_le = -INFINITY;
      st->last_cum = 0;
      snprintf(st->hkey, sizeof st->hkey, "%s", labels);
    }
    double lev;
    if (!parse_value(le, &lev) || !(lev > st->last_le) || st->saw_inf)
      return snprintf(err, 200, "le not increasing: %s", line), false;
    if (v < st->last_cum)
      return snprintf(err, 200, "buckets not cumulative: %s", line), false;
    st->last_le = lev;
    st->last_cum = v;
    if (isinf(lev)) {
      st->saw_inf = true;
      st->inf_cum = v;
    }
    return true;
  }
  if (!st->in_hist || strcmp(st->hkey, labels) != 0 || !st->saw_inf)
    return snprintf(err, 200, "%s before its +Inf bucket", line), false;
  if (strcmp(suffix, "_sum") == 0) {
    st->saw_sum = true;
    return true;
  }
  if (strcmp(suffix, "_count") == 0) {
    if (v != st->inf_cum || !st->saw_sum)
      return snprintf(err, 200, "_count %g differs from +Inf %g (or no _sum)", v, st->inf_cum),
             false;
    st->in_hist = false;
    return true;
  }
  return snprintf(err, 200, "unknown histogram sample %s", name), false;
}

/* Returns NULL if text follows the rules, else a static message. */
static const char *prom_check(const char *text) {
  static char err[256];
  static prom_t st;
  memset(&st, 0, sizeof st);
  char families[64][BW_METRICS_NAME_MAX + 1];
  int nfam = 0;
  bool want_type = false;
  const char *p = text;
  if (*p == '\0')
    return NULL;
  while (*p) {
    const char *nl = strchr(p, '\n');
    if (nl == NULL)
      return "last line not terminated";
    char line[1024];
    size_t n = (size_t)(nl - p);
    if (n == 0 || n >= sizeof line)
      return "empty or overlong line";
    memcpy(line, p, n);
    line[n] = '\0';
    p = nl + 1;
    if (strncmp(line, "# HELP ", 7) == 0) {
      if (want_type || (st.in_hist))
        return "HELP where TYPE or a histogram's end was due";
      char name[BW_METRICS_NAME_MAX + 1];
      const char *q = parse_name(line + 7, name, sizeof name);
      if (q == NULL || *q != ' ')
        return "bad HELP line";
      for (int i = 0; i < nfam; i++)
        if (strcmp(families[i], name) == 0)
          return "family described twice";
      snprintf(families[nfam++ % 64], BW_METRICS_NAME_MAX + 1, "%s", name);
      for (q++; *q; q++)
        if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
          return "bad escape in HELP";
        else if (*q == '\\')
          q++;
      snprintf(st.fam, sizeof st.fam, "%s", name);
      st.typed = false;
      want_type = true;
      continue;
    }
    if (strncmp(line, "# TYPE ", 7) == 0) {
      char name[BW_METRICS_NAME_MAX + 1];
      const char *q = parse_name(line + 7, name, sizeof name);
      if (!want_type || q == NULL || *q != ' ' || strcmp(name, st.fam) != 0)
        return "TYPE without its HELP";
      if (strcmp(q + 1, "counter") != 0 && strcmp(q + 1, "gauge") != 0 &&
          strcmp(q + 1, "histogram") != 0)
        return "unknown TYPE";
      snprintf(st.type, sizeof st.type, "%s", q + 1);
      st.typed = true;
      want_type = false;
      continue;
    }
    if (line[0] == '#')
      return "unknown comment line";
    if (!prom_sample(&st, line, err))
      return err;
  }
  if (st.in_hist)
    return "histogram without _count at the end";
  return NULL;
}

#include "json_check.h"

/* --- Registry rules -------------------------------------------------------------- */

static void test_names_and_duplicates(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_t *m;
  assert_int_equal(bw_metrics_new(rt, NULL, &m), 0);
  bw_metric_family_t *f;
  static const char *const one[] = {"code"};
  static const char *const two_same[] = {"code", "code"};
  static const char *const reserved[] = {"__code"};
  static const char *const colon[] = {"a:b"};
  static const char *const le[] = {"le"};
  static const char *const digit[] = {"1a"};

  /* Prometheus metric names */
  const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b", "a{b}"};
  for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
    assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, bad_names[i], NULL, NULL, 0, &f),
                     BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, NULL, NULL, NULL, 0, &f), BW_EINVAL);
  char longname[BW_METRICS_NAME_MAX + 2];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, longname, NULL, NULL, 0, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "a:b_c9", NULL, NULL, 0, &f), 0);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "_x", NULL, NULL, 0, &f), 0);

  /* label names */
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "l1", NULL, two_same, 2, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "l2", NULL, reserved, 1, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "l3", NULL, colon, 1, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "l4", NULL, digit, 1, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "l5", NULL, le, 1, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "l6", NULL, NULL, 1, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "l7", NULL, one, 9, &f), BW_EINVAL);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_GAUGE, "l8", NULL, le, 1, &f), 0); /* fine */
  assert_int_equal(bw_metrics_family(m, (bw_metric_type_t)7, "l9", NULL, NULL, 0, &f),
                   BW_EINVAL);

  /* duplicates, including the names a histogram exposes */
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "dup", NULL, NULL, 0, &f), 0);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "dup", NULL, NULL, 0, &f), BW_EEXIST);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_GAUGE, "dup", NULL, one, 1, &f), BW_EEXIST);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "lat", NULL, NULL, 0, &f), 0);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "lat_count", NULL, NULL, 0, &f),
                   BW_EEXIST);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_GAUGE, "lat_bucket", NULL, NULL, 0, &f),
                   BW_EEXIST);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "x_sum", NULL, NULL, 0, &f), 0);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "x", NULL, NULL, 0, &f), BW_EEXIST);
  /* the built-in names are taken */
  assert_int_equal(
      bw_metrics_family(m, BW_METRIC_COUNTER, "bulwark_messages_sent_total", NULL, NULL, 0, &f),
      BW_EEXIST);

  /* help */
  char longhelp[BW_METRICS_HELP_MAX + 2];
  memset(longhelp, 'h', sizeof longhelp - 1);
  longhelp[sizeof longhelp - 1] = '\0';
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "h1", longhelp, NULL, 0, &f),
                   BW_EINVAL);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

static void test_series_identity_and_limits(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  o.runtime_metrics = false;
  o.max_series = 3;
  o.max_cells = 64 + BW_HISTOGRAM_CELLS; /* one histogram and a few counters */
  bw_metrics_t *m;
  assert_int_equal(bw_metrics_new(rt, &o, &m), 0);
  static const char *const lbl[] = {"code"};
  bw_metric_family_t *f, *g, *h;
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "c_total", "C.", lbl, 1, &f), 0);
  const char *v200[] = {"200"}, *v500[] = {"500"}, *v404[] = {"404"}, *v302[] = {"302"};
  const char *vnull[] = {NULL};
  bw_counter_t *a, *b, *c;
  assert_int_equal(bw_metrics_counter(f, v200, &a), 0);
  assert_int_equal(bw_metrics_counter(f, v200, &b), 0);
  assert_ptr_equal(a, b); /* same labels, same series: never a duplicate */
  assert_int_equal(bw_metrics_counter(f, v500, &c), 0);
  assert_ptr_not_equal(a, c);
  assert_int_equal(bw_metrics_counter(f, v404, &c), 0);
  assert_int_equal(bw_metrics_counter(f, v302, &c), BW_ELIMIT); /* max_series */
  assert_int_equal(bw_metrics_counter(f, vnull, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(f, NULL, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(f, v200, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_counter(NULL, v200, &c), BW_EINVAL);
  char longv[BW_METRICS_VALUE_MAX + 2];
  memset(longv, 'v', sizeof longv - 1);
  longv[sizeof longv - 1] = '\0';
  const char *vlong[] = {longv};
  assert_int_equal(bw_metrics_counter(f, vlong, &c), BW_EINVAL);
  /* another type's series from this family */
  bw_gauge_t *gg;
  bw_histogram_t *hh;
  assert_int_equal(bw_metrics_gauge(f, v200, &gg), BW_EINVAL);
  assert_int_equal(bw_metrics_histogram(f, v200, &hh), BW_EINVAL);

  /* the cell arena: one histogram fits, a second does not */
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "h_seconds", NULL, NULL, 0, &h), 0);
  assert_int_equal(bw_metrics_histogram(h, NULL, &hh), 0);
  assert_int_equal(bw_metrics_family(m, BW_METRIC_HISTOGRAM, "h2_seconds", NULL, NULL, 0, &h), 0);
  assert_int_equal(bw_metrics_histogram(h, NULL, &hh), BW_ELIMIT);
  /* gauges use no cells */
  assert_int_equal(bw_metrics_family(m, BW_METRIC_GAUGE, "g", NULL, NULL, 0, &g), 0);
  assert_int_equal(bw_metrics_gauge(g, NULL, &gg), 0);

  /* updates refuse another type's handle and NULL */
  assert_int_equal(bw_counter_add(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_counter_add((bw_counter_t *)gg, 1), BW_EINVAL);
  assert_int_equal(bw_gauge_set((bw_gauge_t *)a, 1), BW_EINVAL);
  assert_int_equal(bw_gauge_set(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_gauge_add(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_histogram_record((bw_histogram_t *)a, 1), BW_EINVAL);
  assert_int_equal(bw_counter_inc(a), 0);

  /* max_families */
  bw_metrics_opts_t o2 = o;
  o2.max_families = 1;
  bw_metrics_t *m2;
  assert_int_equal(bw_metrics_new(rt, &o2, &m2), 0);
  assert_int_equal(bw_metrics_family(m2, BW_METRIC_GAUGE, "one", NULL, NULL, 0, &g), 0);
  assert_int_equal(bw_metrics_family(m2, BW_METRIC_GAUGE, "two", NULL, NULL, 0, &g), BW_ELIMIT);
  assert_int_equal(bw_metrics_destroy(m2), 0);
  /* built-in families need room */
  o2.runtime_metrics = true;
  assert_int_equal(bw_metrics_new(rt, &o2, &m2), BW_ELIMIT);

  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* --- Updates from threads ----------------------------------------------------------- */

typedef struct add_arg {
  bw_counter_t *c;
  bw_gauge_t *g;
  uint64_t n;
  pthread_barrier_t *barrier;
} add_arg_t;

static void *adder(void *p) {
  add_arg_t *a = p;
  if (a->barrier != NULL)
    pthread_barrier_wait(a->barrier);
  for (uint64_t i = 0; i < a->n; i++) {
    bw_counter_add(a->c, 1);
    if (a->g != NULL)
      bw_gauge_add(a->g, 1.0);
  }
  /* every thread stays until all have added: they all hold a slot at once */
  if (a->barrier != NULL)
    pthread_barrier_wait(a->barrier);
  return NULL;
}

static void test_counter_two_threads_exact(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = new_metrics(rt, false, 1000);
  bw_counter_t *c;
  bw_gauge_t *g;
  assert_int_equal(bw_metrics_counter_new(m, "ops_total", "Ops.", &c), 0);
  assert_int_equal(bw_metrics_gauge_new(m, "level", "Level.", &g), 0);
  uint64_t n = bwt_scaled(1000000);
  add_arg_t args[2] = {{c, g, n, NULL}, {c, g, n, NULL}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&th[i], NULL, adder, &args[i]);
  bw_counter_add(c, 5); /* main too */
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  assert_true(collect_value(m, "ops_total", NULL, 0) == (double)(2 * n + 5));
  assert_true(collect_value(m, "level", NULL, 0) == (double)(2 * n));
  bw_gauge_set(g, -2.5);
  assert_true(collect_value(m, "level", NULL, 0) == -2.5);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* More threads at once than private slots: the rest share one slot with
 * atomic adds, and the sum is still exact. */
static void test_counter_many_threads_shared_slot(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_t *m = new_metrics(rt, false, 1000);
  bw_counter_t *c;
  assert_int_equal(bw_metrics_counter_new(m, "many_total", NULL, &c), 0);
  enum { T = BW_METRICS_THREADS + 8 };
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, T);
  add_arg_t arg = {c, NULL, bwt_scaled(20000), &barrier};
  pthread_t th[T];
  for (int i = 0; i < T; i++)
    assert_int_equal(pthread_create(&th[i], NULL, adder, &arg), 0);
  for (int i = 0; i < T; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  assert_true(collect_value(m, "many_total", NULL, 0) == (double)(T * arg.n));
  /* their slots were recycled: new threads count exactly too */
  add_arg_t again = {c, NULL, 1000, NULL};
  pthread_t t2;
  pthread_create(&t2, NULL, adder, &again);
  pthread_join(t2, NULL);
  assert_true(collect_value(m, "many_total", NULL, 0) == (double)(T * arg.n + 1000));
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* --- The reporter under the manual clock ----------------------------------------- */

typedef struct sub_log {
  bwt_sync_t sync;
  int n;
  uint64_t seq[8], time_ns[8];
  double value[8];
  bool found[8];
} sub_log_t;

static int sub_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  sub_log_t *log = *(sub_log_t **)state;
  if (msg->type != BW_METRICS_MSG_SNAPSHOT)
    return BW_CONTINUE;
  const bw_metrics_snapshot_t *s = msg->data;
  double v = 0;
  bool found = bw_metrics_snapshot_value(s, "app_total", NULL, 0, &v) == 0;
  bwt_lock(&log->sync);
  if (log->n < 8) {
    log->seq[log->n] = bw_metrics_snapshot_seq(s);
    log->time_ns[log->n] = bw_metrics_snapshot_time_ns(s);
    log->value[log->n] = v;
    log->found[log->n] = found;
  }
  log->n++;
  bwt_unlock_signal(&log->sync);
  return BW_CONTINUE;
}

static int sub_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  *(void **)state = arg;
  return 0;
}

static const bw_behaviour_t sub_behaviour = {
    .name = "test.subscriber", .state_size = sizeof(void *), .init = sub_init,
    .handle = sub_handle};

static int log_n(sub_log_t *l) {
  bwt_lock(&l->sync);
  int n = l->n;
  bwt_unlock(&l->sync);
  return n;
}

static void test_reporter_periodic_snapshots(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = new_metrics(rt, true, 100);
  bw_counter_t *c;
  assert_int_equal(bw_metrics_counter_new(m, "app_total", "App.", &c), 0);
  static sub_log_t log = {.sync = BWT_SYNC_INIT};
  log.n = 0;
  bw_pid_t sub;
  assert_int_equal(bw_spawn(rt, &sub_behaviour, &log, NULL, &sub), 0);
  assert_int_equal(bw_metrics_subscribe(m, sub), 0);
  assert_int_equal(bw_metrics_subscribe(m, sub), 0); /* idempotent */
  bw_metrics_snapshot_t *s;
  assert_int_equal(bw_metrics_latest(m, &s), BW_ENOTFOUND); /* nothing collected yet */

  bw_counter_add(c, 5);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_AWAIT(&log.sync, log.n >= 1);
  assert_int_equal(log.seq[0], 1);
  assert_int_equal(log.time_ns[0], 100000000ull);
  assert_true(log.found[0]);
  assert_true(log.value[0] == 5);

  bw_counter_add(c, 7);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_AWAIT(&log.sync, log.n >= 2);
  assert_int_equal(log.seq[1], 2);
  assert_int_equal(log.time_ns[1], 200000000ull);
  assert_true(log.value[1] == 12);

  /* nothing due at 299 ms; the next snapshot is stamped 300 ms */
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  BWT_AWAIT(&log.sync, log.n >= 3);
  assert_int_equal(log.time_ns[2], 300000000ull);
  assert_int_equal(log.seq[2], 3);

  /* the latest snapshot, from this (non-actor) thread, has the runtime's
   * metrics too */
  assert_int_equal(bw_metrics_latest(m, &s), 0);
  assert_true(bw_metrics_snapshot_seq(s) >= 3);
  double v;
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_actors_spawned_total", NULL, 0, &v), 0);
  assert_true(v >= 2); /* the reporter and the subscriber */
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_actors_live", NULL, 0, &v), 0);
  assert_true(v >= 2);
  /* utilisation over the last interval: a share */
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_scheduler_utilisation", NULL, 0, &v), 0);
  assert_true(v >= 0 && v <= 1);
  const char *noproc[] = {"noproc"};
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_dead_letters_total", noproc, 1, &v), 0);
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_messages_handled_total", NULL, 0, &v), 0);
  assert_true(v >= 3);
  assert_int_equal(bw_metrics_snapshot_value(s, "no_such", NULL, 0, &v), BW_ENOTFOUND);
  bw_histogram_summary_t hs;
  assert_int_equal(bw_metrics_snapshot_histogram(s, "app_total", NULL, 0, &hs), BW_ENOTFOUND);
  bw_metrics_snapshot_release(s);

  /* unsubscribed: no more snapshots for it (checked after the next one
   * is published, through collect) */
  assert_int_equal(bw_metrics_unsubscribe(m, sub), 0);
  assert_int_equal(bw_metrics_unsubscribe(m, sub), BW_ENOTFOUND);
  int before = log_n(&log);
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(log_n(&log), before);

  /* a subscriber that exits is dropped at the next publish */
  assert_int_equal(bw_metrics_subscribe(m, sub), 0);
  assert_int_equal(bw_exit(rt, sub, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, sub);
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(bw_metrics_unsubscribe(m, sub), BW_ENOTFOUND);

  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* --- Sources -------------------------------------------------------------------------- */

static int job_ok(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)ctx;
  (void)resource;
  (void)arg;
  return 0;
}

static void test_breaker_and_bulkhead_metrics(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = new_metrics(rt, true, 1000);

  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.name = "db";
  bw_breaker_t *br;
  assert_int_equal(bw_breaker_new(rt, &bo, &br), 0);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  for (int i = 0; i < 5; i++) {
    bw_breaker_permit_t p;
    assert_int_equal(bw_breaker_acquire(br, &p), 0);
    assert_int_equal(bw_breaker_report(br, &p, i < 3 ? 0 : BW_ETIMEDOUT), 0);
  }
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_metrics_add_breaker(m, br), 0);
  assert_int_equal(bw_metrics_add_breaker(m, br), BW_EEXIST);

  bw_bulkhead_opts_t po;
  bw_bulkhead_opts_init(&po);
  po.name = "pool1";
  po.workers = 2;
  bw_bulkhead_t *ph = NULL;
  assert_int_equal(bw_bulkhead_new(rt, &po, &ph), 0);
  assert_int_equal(bw_bulkhead_start(ph, NULL), 0);
  bw_pid_t pool = bw_bulkhead_pid(ph); /* the reporter asks pools by pid or name */
  for (int i = 0; i < 3; i++)
    assert_int_equal(bw_bulkhead_run(ph, job_ok, NULL, 0), 0);
  assert_int_equal(bw_metrics_add_bulkhead(m, pool, "pool1"), 0);
  assert_int_equal(bw_metrics_add_bulkhead(m, pool, "other"), BW_EEXIST);

  const char *db_ok[] = {"db", "successful"}, *db_failed[] = {"db", "failed"};
  const char *db_rej[] = {"db", "rejected"}, *db[] = {"db"};
  assert_true(collect_value(m, "bulwark_breaker_calls_total", db_ok, 2) == 3);
  assert_true(collect_value(m, "bulwark_breaker_calls_total", db_failed, 2) == 2);
  assert_true(collect_value(m, "bulwark_breaker_calls_total", db_rej, 2) == 0);
  assert_true(collect_value(m, "bulwark_breaker_state", db, 1) == BW_BREAKER_CLOSED);
  /* below the window's minimum calls there is no rate: the series is absent */
  assert_true(isnan(collect_value(m, "bulwark_breaker_failure_rate", db, 1)));

  /* the pool answers asynchronously; completed is counted when the worker
   * tells the pool, which may be just after the caller's reply */
  const char *p_done[] = {"pool1", "completed"}, *p_rej[] = {"pool1", "rejected"};
  const char *p1[] = {"pool1"};
  AWAIT_VALUE(m, "bulwark_bulkhead_executions_total", p_done, 2, 3);
  assert_true(collect_value(m, "bulwark_bulkhead_executions_total", p_rej, 2) == 0);
  assert_true(collect_value(m, "bulwark_bulkhead_available", p1, 1) == 2);
  assert_true(collect_value(m, "bulwark_bulkhead_busy", p1, 1) == 0);
  assert_true(collect_value(m, "bulwark_bulkhead_queued", p1, 1) == 0);

  /* a transition: the state, and the change counted from its event */
  assert_int_equal(bw_breaker_force_open(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_true(collect_value(m, "bulwark_breaker_state", db, 1) == BW_BREAKER_FORCED_OPEN);
  const char *change[] = {"db", "closed", "forced_open"};
  AWAIT_VALUE(m, "bulwark_breaker_state_changes_total", change, 3, 1);
  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), BW_ECIRCUIT_OPEN);
  assert_true(collect_value(m, "bulwark_breaker_calls_total", db_rej, 2) == 1);

  /* the labels, in the exposition */
  char *text;
  size_t len;
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_PROMETHEUS, &text, &len), 0);
  assert_null(prom_check(text));
  assert_non_null(strstr(text, "bulwark_breaker_calls_total{breaker=\"db\",result=\"successful\"} 3\n"));
  assert_non_null(strstr(text, "bulwark_breaker_state{breaker=\"db\"} 4\n"));
  assert_non_null(strstr(text, "bulwark_bulkhead_executions_total{pool=\"pool1\",state=\"completed\"} 3\n"));
  assert_non_null(strstr(text, "bulwark_breaker_state_changes_total{breaker=\"db\",from=\"closed\",to=\"forced_open\"} 1\n"));
  free(text);

  /* removing sources takes their series out; the pool's answer is not awaited */
  assert_int_equal(bw_metrics_remove_bulkhead(m, "pool1"), 0);
  assert_int_equal(bw_metrics_remove_bulkhead(m, "pool1"), BW_ENOTFOUND);
  assert_true(isnan(collect_value(m, "bulwark_bulkhead_available", p1, 1)));
  assert_int_equal(bw_metrics_remove_breaker(m, br), 0);
  assert_true(isnan(collect_value(m, "bulwark_breaker_state", db, 1)));
  /* and adding it again brings them back */
  assert_int_equal(bw_metrics_add_breaker(m, br), 0);
  assert_true(collect_value(m, "bulwark_breaker_state", db, 1) == BW_BREAKER_FORCED_OPEN);
  assert_int_equal(bw_metrics_remove_breaker(m, br), 0);

  /* a pool that is gone: its series are absent, collection goes on */
  assert_int_equal(bw_metrics_add_bulkhead(m, pool, "pool1"), 0);
  assert_int_equal(bw_bulkhead_stop(ph), 0);
  assert_true(isnan(collect_value(m, "bulwark_bulkhead_available", p1, 1)));
  assert_int_equal(bw_metrics_remove_bulkhead(m, "pool1"), 0);

  assert_int_equal(bw_metrics_destroy(m), 0);
  assert_int_equal(bw_breaker_destroy(br), 0);
  assert_int_equal(bw_bulkhead_destroy(ph), 0);
  bw_runtime_destroy(rt);
}

/* A pool by registered name (pid BW_PID_NONE): looked up each period. */
static void test_bulkhead_by_name(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = new_metrics(rt, false, 1000);
  assert_int_equal(bw_metrics_add_bulkhead(m, BW_PID_NONE, "jobs"), 0);
  const char *jobs[] = {"jobs"};
  assert_true(isnan(collect_value(m, "bulwark_bulkhead_available", jobs, 1)));
  bw_bulkhead_opts_t po;
  bw_bulkhead_opts_init(&po);
  po.workers = 3;
  bw_bulkhead_t *ph = NULL;
  assert_int_equal(bw_bulkhead_new(rt, &po, &ph), 0);
  bw_pid_t pool = BW_PID_NONE;
  assert_int_equal(bw_bulkhead_start(ph, &pool), 0);
  assert_int_equal(bw_register(rt, "jobs", pool), 0);
  assert_true(collect_value(m, "bulwark_bulkhead_available", jobs, 1) == 3);
  assert_int_equal(bw_metrics_remove_bulkhead(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_bulkhead(m, "jobs"), 0);
  assert_true(isnan(collect_value(m, "bulwark_bulkhead_available", jobs, 1)));
  assert_int_equal(bw_bulkhead_destroy(ph), 0);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

static void test_retry_and_mailbox_metrics(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = new_metrics(rt, false, 1000);
  bw_retry_t *policy = NULL;
  bw_retry_opts_t ro;
  bw_retry_opts_init(&ro);
  ro.name = "fetch";
  assert_int_equal(bw_retry_new(rt, &ro, &policy), 0);
  assert_int_equal(bw_metrics_add_retry(m, policy, NULL), 0);
  assert_int_equal(bw_metrics_add_retry(m, policy, "again"), BW_EEXIST);
  const char *fetch[] = {"fetch"}, *fetch_ok[] = {"fetch", "success"};
  assert_true(collect_value(m, "bulwark_retry_attempts_total", fetch, 1) == 0);
  assert_true(collect_value(m, "bulwark_timeouts_total", fetch, 1) == 0);
  assert_true(collect_value(m, "bulwark_retry_calls_total", fetch_ok, 2) == 0);
  assert_int_equal(bw_metrics_remove_retry(m, policy), 0);
  assert_int_equal(bw_retry_destroy(policy), 0);
  assert_true(isnan(collect_value(m, "bulwark_retry_attempts_total", fetch, 1)));

  /* mailbox depth of a registered actor; absent while the name is free */
  assert_int_equal(bw_metrics_add_actor(m, "mailman"), 0);
  assert_int_equal(bw_metrics_add_actor(m, "mailman"), BW_EEXIST);
  const char *mm[] = {"mailman"};
  assert_true(isnan(collect_value(m, "bulwark_mailbox_depth", mm, 1)));
  static sub_log_t log = {.sync = BWT_SYNC_INIT};
  bw_spawn_opts_t so;
  bw_spawn_opts_init(&so);
  so.name = "mailman";
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sub_behaviour, &log, &so, &pid), 0);
  assert_true(collect_value(m, "bulwark_mailbox_depth", mm, 1) == 0);
  assert_int_equal(bw_metrics_remove_actor(m, "mailman"), 0);
  assert_int_equal(bw_metrics_remove_actor(m, "mailman"), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* --- Supervision ---------------------------------------------------------------------- */

enum { CRASH_ME = 1 };

static int crasher_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  return msg->type == CRASH_ME ? BW_ECRASH : BW_CONTINUE;
}

static const bw_behaviour_t crasher = {.name = "test.crasher", .handle = crasher_handle};

static const bw_child_spec_t crash_kids[] = {{.id = "w", .behaviour = &crasher}};
static const bw_sup_spec_t crash_sup = {
    .name = "sup", .strategy = BW_ONE_FOR_ONE, .intensity = 5, .children = crash_kids,
    .nchildren = 1};

static void test_restarts_from_events(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = new_metrics(rt, true, 1000);
  bw_pid_t sup, child;
  assert_int_equal(bw_supervisor_start(rt, &crash_sup, &sup, NULL), 0);
  assert_int_equal(bw_sup_child_pid(rt, sup, "w", &child), 0);
  assert_int_equal(bw_send(rt, child, CRASH_ME, NULL, 0), 0);
  const char *lv[] = {"sup", "w"};
  AWAIT_VALUE(m, "bulwark_actor_restarts_total", lv, 2, 1);
  assert_true(collect_value(m, "bulwark_actors_crashed_total", NULL, 0) >= 1);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

static bw_child_spec_t reporter_kid[1];
static const bw_sup_spec_t reporter_sup = {
    .name = "resilience", .strategy = BW_ONE_FOR_ONE, .intensity = 5, .children = reporter_kid,
    .nchildren = 1};

/* The reporter as a supervised child: killed (no terminate), restarted,
 * it takes over the registry; the dead one's interval timer is cancelled
 * (no dead letter per period). */
static void test_supervised_reporter_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  o.period_ms = 50;
  bw_metrics_t *m;
  assert_int_equal(bw_metrics_new(rt, &o, &m), 0);
  assert_int_equal(bw_metrics_child_spec(m, "metrics", &reporter_kid[0]), 0);
  bw_counter_t *c;
  assert_int_equal(bw_metrics_counter_new(m, "kept_total", NULL, &c), 0);
  bw_counter_add(c, 42);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &reporter_sup, &sup, NULL), 0);
  bw_pid_t first = bw_metrics_pid(m);
  assert_true(first != BW_PID_NONE);
  assert_int_equal(bw_metrics_start(m, NULL), BW_EALREADY); /* one actor per registry */
  assert_true(collect_value(m, "kept_total", NULL, 0) == 42);

  assert_int_equal(bw_exit(rt, first, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(bw_metrics_pid(m) != first && bw_metrics_pid(m) != BW_PID_NONE);
  bw_counter_add(c, 1);
  assert_true(collect_value(m, "kept_total", NULL, 0) == 43);
  bw_runtime_stats_t before = bwt_stats(rt);
  for (int i = 0; i < 4; i++)
    assert_int_equal(bw_clock_advance(rt, 50), 0);
  assert_int_equal(bw_metrics_collect(m, 0), 0); /* the ticks were handled */
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC]);

  /* supervised: stop and destroy refuse while it lives */
  assert_int_equal(bw_metrics_stop(m), BW_ERUNNING);
  assert_int_equal(bw_metrics_destroy(m), BW_ERUNNING);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_metrics_pid(m), BW_PID_NONE);
  assert_int_equal(bw_metrics_collect(m, 0), BW_ENOPROC);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* --- Exposition --------------------------------------------------------------------------- */

/* A registry with one of each, with characters that need escaping. */
static bw_metrics_t *sample_registry(bw_runtime_t *rt) {
  bw_metrics_t *m = new_metrics(rt, false, 1000);
  static const char *const labels[] = {"code", "path"};
  bw_metric_family_t *f;
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "app_requests_total",
                                     "Requests, by code.\nSecond line \\ backslash", labels, 2,
                                     &f),
                   0);
  const char *lv[] = {"200", "/a\"b\\c\nd"};
  bw_counter_t *c;
  assert_int_equal(bw_metrics_counter(f, lv, &c), 0);
  bw_counter_add(c, 3);
  const char *lv2[] = {"500", "/"};
  assert_int_equal(bw_metrics_counter(f, lv2, &c), 0);
  bw_gauge_t *g;
  assert_int_equal(bw_metrics_gauge_new(m, "app_temp", NULL, &g), 0);
  bw_gauge_set(g, 21.5);
  bw_histogram_t *h;
  assert_int_equal(bw_metrics_histogram_new(m, "app_latency_seconds", "Latency.", &h), 0);
  bw_histogram_record(h, 1000);
  bw_histogram_record(h, 2000000);
  static const char *const op[] = {"op"};
  assert_int_equal(
      bw_metrics_family(m, BW_METRIC_HISTOGRAM, "app_op_seconds", "Per op.", op, 1, &f), 0);
  const char *get[] = {"get"}, *put[] = {"put"};
  assert_int_equal(bw_metrics_histogram(f, get, &h), 0);
  bw_histogram_record(h, 100);
  assert_int_equal(bw_metrics_histogram(f, put, &h), 0); /* empty */
  bw_gauge_t *nan;
  assert_int_equal(bw_metrics_gauge_new(m, "app_nan", "Not a number.", &nan), 0);
  bw_gauge_set(nan, NAN);
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  return m;
}

static const char expected_prom_head[] =
    "# HELP app_requests_total Requests, by code.\\nSecond line \\\\ backslash\n"
    "# TYPE app_requests_total counter\n"
    "app_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 3\n"
    "app_requests_total{code=\"500\",path=\"/\"} 0\n"
    "# HELP app_temp \n"
    "# TYPE app_temp gauge\n"
    "app_temp 21.5\n"
    "# HELP app_latency_seconds Latency.\n"
    "# TYPE app_latency_seconds histogram\n"
    "app_latency_seconds_bucket{le=\"2.56e-07\"} 0\n"
    "app_latency_seconds_bucket{le=\"1.024e-06\"} 1\n"
    "app_latency_seconds_bucket{le=\"4.096e-06\"} 1\n";

static void test_prometheus_text(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_t *m = sample_registry(rt);
  char *text;
  size_t len;
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_PROMETHEUS, &text, &len), 0);
  assert_int_equal(strlen(text), len);
  const char *err = prom_check(text);
  if (err != NULL)
    fail_msg("%s\n%s", err, text);
  assert_memory_equal(text, expected_prom_head, sizeof expected_prom_head - 1);
  /* the 2 ms value is under 4.194304 ms; sum and count */
  assert_non_null(strstr(text, "app_latency_seconds_bucket{le=\"0.001048576\"} 1\n"
                               "app_latency_seconds_bucket{le=\"0.004194304\"} 2\n"));
  assert_non_null(strstr(text, "app_latency_seconds_bucket{le=\"+Inf\"} 2\n"
                               "app_latency_seconds_sum 0.002001\n"
                               "app_latency_seconds_count 2\n"));
  assert_non_null(strstr(text, "app_op_seconds_bucket{op=\"get\",le=\"2.56e-07\"} 1\n"));
  assert_non_null(strstr(text, "app_op_seconds_bucket{op=\"put\",le=\"+Inf\"} 0\n"
                               "app_op_seconds_sum{op=\"put\"} 0\n"
                               "app_op_seconds_count{op=\"put\"} 0\n"));
  assert_non_null(strstr(text, "app_nan NaN\n"));
  free(text);

  /* the checker itself catches what it should */
  assert_non_null(prom_check("x 1\n"));                                  /* no TYPE */
  assert_non_null(prom_check("# HELP x h\n# TYPE x counter\nx 1\nx 2\n")); /* duplicate */
  assert_non_null(prom_check("# HELP x h\n# TYPE x counter\nx{a=\"\\q\"} 1\n"));
  assert_non_null(prom_check("# HELP x h\n# TYPE x histogram\nx_bucket{le=\"1\"} 2\n"
                             "x_bucket{le=\"+Inf\"} 1\nx_sum 1\nx_count 1\n"));
  assert_non_null(prom_check("# HELP x h\n# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\n"
                             "x_sum 1\nx_count 2\n"));
  assert_null(prom_check("# HELP x h\n# TYPE x histogram\nx_bucket{le=\"1\"} 1\n"
                         "x_bucket{le=\"+Inf\"} 1\nx_sum 1\nx_count 1\n"));
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

static const char expected_json_head[] =
    "{\"seq\":1,\"time_ns\":0,\"families\":["
    "{\"name\":\"app_requests_total\",\"help\":\"Requests, by code.\\nSecond line \\\\ "
    "backslash\",\"type\":\"counter\",\"labels\":[\"code\",\"path\"],\"series\":["
    "{\"labels\":{\"code\":\"200\",\"path\":\"/a\\\"b\\\\c\\nd\"},\"value\":3},"
    "{\"labels\":{\"code\":\"500\",\"path\":\"/\"},\"value\":0}]},"
    "{\"name\":\"app_temp\",\"help\":\"\",\"type\":\"gauge\",\"labels\":[],\"series\":["
    "{\"labels\":{},\"value\":21.5}]},"
    "{\"name\":\"app_latency_seconds\",\"help\":\"Latency.\",\"type\":\"histogram\","
    "\"labels\":[],\"series\":[{\"labels\":{},\"count\":2,\"sum_ns\":2001000,"
    "\"max_ns\":2000000,\"p50_ns\":1024,\"p90_ns\":2000000,\"p99_ns\":2000000,"
    "\"buckets\":[[1024,1],[2097152,2]]}]}";

static void test_json(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_t *m = sample_registry(rt);
  char *text;
  size_t len;
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_JSON, &text, &len), 0);
  if (!bwt_json_valid(text))
    fail_msg("not JSON: %s", text);
  if (strncmp(text, expected_json_head, sizeof expected_json_head - 1) != 0)
    fail_msg("got:\n%s\nexpected to start with:\n%s", text, expected_json_head);
  assert_non_null(strstr(text, "{\"name\":\"app_nan\",\"help\":\"Not a number.\",\"type\":"
                               "\"gauge\",\"labels\":[],\"series\":[{\"labels\":{},"
                               "\"value\":null}]}]}"));
  free(text);

  /* bytes that are not UTF-8 (a label value cut mid-sequence) become
   * U+FFFD: the runtime's one JSON writer (runtime/jsonw.h), whose repair
   * the metrics' own escaping lacked; the output stays JSON */
  static const char *const k[] = {"k"};
  bw_metric_family_t *f;
  assert_int_equal(bw_metrics_family(m, BW_METRIC_COUNTER, "app_bytes_total", "x", k, 1, &f), 0);
  const char *bad[] = {"caf\xc3"};
  bw_counter_t *c;
  assert_int_equal(bw_metrics_counter(f, bad, &c), 0);
  assert_int_equal(bw_metrics_collect(m, 0), 0); /* a snapshot with it */
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_JSON, &text, &len), 0);
  if (!bwt_json_valid(text))
    fail_msg("not JSON: %s", text);
  assert_non_null(strstr(text, "{\"labels\":{\"k\":\"caf\\ufffd\"},\"value\":0}"));
  free(text);

  /* the validator is strict enough to mean something */
  assert_true(bwt_json_valid("{\"a\":[1,2.5e-3,-0,true,null,\"x\\u0041\"]}"));
  assert_false(bwt_json_valid("{\"a\":[1,]}"));
  assert_false(bwt_json_valid("{\"a\":NaN}"));
  assert_false(bwt_json_valid("{\"a\":\"\n\"}"));
  assert_false(bwt_json_valid("{\"a\":1} x"));
  assert_false(bwt_json_valid("{\"a\" 1}"));
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* Rendering into a caller's buffer: snprintf's contract. */
static void test_render_buffer(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_t *m = sample_registry(rt);
  size_t need;
  assert_int_equal(bw_metrics_render(m, BW_METRICS_PROMETHEUS, NULL, 0, &need), BW_ETOOBIG);
  assert_true(need > 100);
  char *buf = malloc(need + 1);
  char small[16];
  size_t len;
  assert_int_equal(bw_metrics_render(m, BW_METRICS_PROMETHEUS, small, sizeof small, &len),
                   BW_ETOOBIG);
  assert_int_equal(len, need);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_memory_equal(small, "# HELP app_requ", 15);
  assert_int_equal(bw_metrics_render(m, BW_METRICS_PROMETHEUS, buf, need, &len), BW_ETOOBIG);
  assert_int_equal(bw_metrics_render(m, BW_METRICS_PROMETHEUS, buf, need + 1, &len), 0);
  assert_int_equal(len, need);
  assert_int_equal(strlen(buf), need);
  char *alloc;
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_PROMETHEUS, &alloc, &len), 0);
  assert_string_equal(alloc, buf);
  free(alloc);
  free(buf);
  assert_int_equal(bw_metrics_render(m, 9, small, sizeof small, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_render(m, BW_METRICS_JSON, NULL, 5, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_render(m, BW_METRICS_JSON, small, sizeof small, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_JSON, NULL, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

/* Readers on plain threads render the latest snapshot while the reporter
 * publishes new ones (for the sanitizers: the swap and the references). */
typedef struct reader_arg {
  bw_metrics_t *m;
  int stop; /* atomic */
  int rendered, errors;
} reader_arg_t;

static void *reader(void *p) {
  reader_arg_t *a = p;
  while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
    char *text;
    size_t len;
    int rc = bw_metrics_render_alloc(a->m, a->rendered % 2, &text, &len);
    if (rc == 0) {
      a->rendered++;
      if (len == 0)
        a->errors++;
      free(text);
    } else if (rc != BW_ENOTFOUND) {
      a->errors++;
    }
  }
  return NULL;
}

static void test_render_while_publishing(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_metrics_t *m = sample_registry(rt);
  reader_arg_t a = {.m = m};
  pthread_t th;
  pthread_create(&th, NULL, reader, &a);
  for (int i = 0; i < 200; i++)
    assert_int_equal(bw_metrics_collect(m, 0), 0);
  __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
  pthread_join(th, NULL);
  assert_int_equal(a.errors, 0);
  assert_true(a.rendered > 0);
  bw_metrics_snapshot_t *s;
  assert_int_equal(bw_metrics_latest(m, &s), 0);
  assert_int_equal(bw_metrics_snapshot_seq(s), 201);
  /* a reference outlives the registry */
  assert_int_equal(bw_metrics_destroy(m), 0);
  double v;
  assert_int_equal(bw_metrics_snapshot_value(s, "app_temp", NULL, 0, &v), 0);
  assert_true(v == 21.5);
  bw_metrics_snapshot_release(s);
  bw_runtime_destroy(rt);
}

/* --- An HTTP client's per-host series -------------------------------------------------------- */

static int http_get(bw_runtime_t *rt, bw_pid_t client, const char *url) {
  bw_http_resp_t *r = NULL;
  int rc = bw_http_call(rt, client, bw_http_req_new("GET", url), 5000, &r);
  bw_http_resp_free(r);
  return rc;
}

static void expect_line(const char *text, const char *line) {
  if (strstr(text, line) == NULL)
    fail_msg("missing line: %s\nin:\n%s", line, text);
}

/* Two local servers on two ports are two hosts; a host with a quote and a
 * backslash (curl refuses the URL, nothing is sent) is escaped in the
 * text; the scrape follows the format's rules. */
static void test_http_client_metrics(void **state) {
  (void)state;
  static hfx_t sa, sb;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_http_opts_t ho;
  bw_http_opts_init(&ho);
  ho.name = "api";
  bw_http_t *h = NULL;
  int rc = bw_http_new(rt, &ho, &h);
  if (rc == BW_ENOTSUP) {
    bw_runtime_destroy(rt);
    skip(); /* built without libcurl */
  }
  assert_int_equal(rc, 0);
  bw_pid_t client;
  assert_int_equal(bw_http_start(h, &client), 0);
  bw_metrics_t *m = new_metrics(rt, false, 3600000);
  assert_int_equal(bw_metrics_add_http(m, h), 0);
  assert_int_equal(bw_metrics_add_http(m, h), BW_EEXIST);
  assert_int_equal(bw_metrics_add_http(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_http(NULL, h), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_http(m, NULL), BW_EINVAL);

  hfx_start(&sa);
  hfx_start(&sb);
  char ua[96], ub[96], ka[64], kb[64];
  snprintf(ka, sizeof ka, "http://127.0.0.1:%u", sa.port);
  snprintf(kb, sizeof kb, "http://127.0.0.1:%u", sb.port);
  snprintf(ua, sizeof ua, "%s/ok", ka);
  assert_int_equal(http_get(rt, client, ua), 0);
  assert_int_equal(http_get(rt, client, ua), 0);
  snprintf(ub, sizeof ub, "%s/status/503", kb);
  assert_int_equal(http_get(rt, client, ub), BW_EHTTP_SERVER);
  snprintf(ub, sizeof ub, "%s/status/404", kb);
  assert_int_equal(http_get(rt, client, ub), 0);
  assert_int_equal(http_get(rt, client, "http://a\"b\\c/x"), BW_EINVAL);

  assert_int_equal(bw_metrics_collect(m, 0), 0);
  char *text;
  size_t len;
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_PROMETHEUS, &text, &len), 0);
  const char *err = prom_check(text);
  if (err != NULL)
    fail_msg("%s\n%s", err, text);
  char line[512];
  snprintf(line, sizeof line,
           "bulwark_http_requests_received_total{client=\"api\",host=\"%s\"} 2\n", ka);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_requests_total{client=\"api\",host=\"%s\",class=\"2xx\"} 2\n", ka);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_requests_total{client=\"api\",host=\"%s\",class=\"5xx\"} 1\n", kb);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_requests_total{client=\"api\",host=\"%s\",class=\"4xx\"} 1\n", kb);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_bytes_total{client=\"api\",host=\"%s\",direction=\"received\"} 10\n",
           ka);
  expect_line(text, line);
  snprintf(line, sizeof line, "bulwark_http_in_flight{client=\"api\",host=\"%s\"} 0\n", kb);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_errors_total{client=\"api\",host=\"%s\",kind=\"dns\"} 0\n", kb);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_request_duration_seconds_bucket{client=\"api\",host=\"%s\","
           "le=\"+Inf\"} 2\n",
           ka);
  expect_line(text, line);
  snprintf(line, sizeof line,
           "bulwark_http_request_duration_seconds_count{client=\"api\",host=\"%s\"} 2\n", kb);
  expect_line(text, line);
  /* the host from the user's URL, escaped: \" and \\ */
  expect_line(text, "bulwark_http_requests_received_total{client=\"api\","
                    "host=\"http://a\\\"b\\\\c:80\"} 1\n");
  expect_line(text, "# TYPE bulwark_http_request_duration_seconds histogram\n");
  free(text);

  /* the JSON has them too, and the snapshot's reading API */
  assert_int_equal(bw_metrics_render_alloc(m, BW_METRICS_JSON, &text, &len), 0);
  if (!bwt_json_valid(text))
    fail_msg("not JSON: %s", text);
  assert_non_null(strstr(text, "\"host\":\"http://a\\\"b\\\\c:80\""));
  free(text);
  bw_metrics_snapshot_t *snap;
  assert_int_equal(bw_metrics_latest(m, &snap), 0);
  const char *lva[] = {"api", ka};
  bw_histogram_summary_t hsum;
  assert_int_equal(bw_metrics_snapshot_histogram(snap, "bulwark_http_request_duration_seconds",
                                                 lva, 2, &hsum),
                   0);
  assert_int_equal(hsum.count, 2);
  bw_metrics_snapshot_release(snap);

  /* removed: its series leave; added again: back, with the client's values */
  assert_int_equal(bw_metrics_remove_http(m, h), 0);
  assert_int_equal(bw_metrics_remove_http(m, h), BW_ENOTFOUND);
  const char *lv2[] = {"api", ka, "2xx"};
  assert_true(isnan(collect_value(m, "bulwark_http_requests_total", lv2, 3)));
  assert_int_equal(http_get(rt, client, ua), 0);
  assert_int_equal(bw_metrics_add_http(m, h), 0);
  assert_true(collect_value(m, "bulwark_http_requests_total", lv2, 3) == 3);

  assert_int_equal(bw_metrics_destroy(m), 0);
  assert_int_equal(bw_http_destroy(h), 0);
  bw_runtime_destroy(rt);
  hfx_stop(&sa);
  hfx_stop(&sb);
}

/* --- Bad input ------------------------------------------------------------------------------- */

static void test_bad_input(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_metrics_t *m;
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  bw_metrics_opts_init(NULL);
  assert_int_equal(bw_metrics_new(NULL, &o, &m), BW_EINVAL);
  assert_int_equal(bw_metrics_new(rt, &o, NULL), BW_EINVAL);
  o.period_ms = 0;
  assert_int_equal(bw_metrics_new(rt, &o, &m), BW_EINVAL);
  o.period_ms = 86400001;
  assert_int_equal(bw_metrics_new(rt, &o, &m), BW_EINVAL);
  bw_metrics_opts_init(&o);
  o.max_series = 0;
  assert_int_equal(bw_metrics_new(rt, &o, &m), BW_EINVAL);
  bw_metrics_opts_init(&o);
  o.max_cells = 1;
  assert_int_equal(bw_metrics_opts_validate(&o), BW_EINVAL);
  assert_int_equal(bw_metrics_new(rt, &o, &m), BW_EINVAL);
  assert_int_equal(bw_metrics_opts_validate(NULL), BW_EINVAL);
  bw_metrics_opts_init(&o);
  o.max_families = 0;
  assert_int_equal(bw_metrics_new(rt, &o, &m), BW_EINVAL);

  assert_int_equal(bw_metrics_new(rt, NULL, &m), 0);
  /* no actor yet */
  assert_int_equal(bw_metrics_pid(m), BW_PID_NONE);
  assert_int_equal(bw_metrics_collect(m, 0), BW_ENOPROC);
  assert_int_equal(bw_metrics_stop(m), 0); /* nothing runs: nothing to do */
  bw_metrics_stats_t ms;
  assert_int_equal(bw_metrics_stats(m, &ms), 0);
  assert_int_equal(ms.snapshots, 0);
  assert_true(ms.families > 0 && ms.series > 0); /* the built-in ones */
  assert_int_equal(bw_metrics_stats(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_stats(NULL, &ms), BW_EINVAL);
  bw_metrics_snapshot_t *s;
  assert_int_equal(bw_metrics_latest(m, &s), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_latest(m, NULL), BW_EINVAL);
  size_t len;
  char buf[8];
  assert_int_equal(bw_metrics_render(m, BW_METRICS_JSON, buf, sizeof buf, &len), BW_ENOTFOUND);

  /* NULLs */
  assert_int_equal(bw_metrics_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_collect(NULL, 0), BW_EINVAL);
  assert_int_equal(bw_metrics_destroy(NULL), 0);
  assert_int_equal(bw_metrics_pid(NULL), BW_PID_NONE);
  bw_child_spec_t spec;
  assert_int_equal(bw_metrics_child_spec(NULL, "x", &spec), BW_EINVAL);
  assert_int_equal(bw_metrics_child_spec(m, NULL, &spec), BW_EINVAL);
  assert_int_equal(bw_metrics_child_spec(m, "x", NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_subscribe(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_metrics_subscribe(m, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_metrics_unsubscribe(m, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_metrics_unsubscribe(m, 12345), BW_ENOTFOUND);
  bw_counter_t *c;
  assert_int_equal(bw_metrics_counter_new(NULL, "a", NULL, &c), BW_EINVAL);
  assert_int_equal(bw_metrics_counter_new(m, "a", NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_breaker(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_breaker(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_breaker(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_bulkhead(m, 1, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_add_bulkhead(m, 1, ""), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_bulkhead(m, "none"), BW_ENOTFOUND);
  assert_int_equal(bw_metrics_add_retry(m, NULL, "x"), BW_EINVAL);
  bw_retry_t *unnamed = NULL;
  bw_retry_opts_t ro;
  bw_retry_opts_init(&ro);
  assert_int_equal(bw_retry_new(rt, &ro, &unnamed), 0);
  assert_int_equal(bw_metrics_add_retry(m, unnamed, NULL), BW_EINVAL); /* no name at all */
  assert_int_equal(bw_retry_destroy(unnamed), 0);
  assert_int_equal(bw_metrics_add_actor(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_actor(m, NULL), BW_EINVAL);
  assert_int_equal(bw_metrics_remove_actor(m, "nobody"), BW_ENOTFOUND);

  /* snapshot functions */
  double v;
  bw_histogram_summary_t hs;
  bw_metric_family_info_t fi;
  bw_metric_series_info_t si;
  assert_int_equal(bw_metrics_snapshot_value(NULL, "a", NULL, 0, &v), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_histogram(NULL, "a", NULL, 0, &hs), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_family(NULL, 0, &fi), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_series(NULL, 0, 0, &si), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_nfamilies(NULL), 0);
  assert_int_equal(bw_metrics_snapshot_seq(NULL), 0);
  assert_int_equal(bw_metrics_snapshot_render(NULL, 0, buf, sizeof buf, &len), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_render_alloc(NULL, 0, NULL, &len), BW_EINVAL);
  bw_metrics_snapshot_release(NULL);
  assert_null(bw_metrics_snapshot_retain(NULL));

  /* a started actor: a second start is refused; stop, then start again */
  assert_int_equal(bw_metrics_start(m, NULL), 0);
  assert_int_equal(bw_metrics_start(m, NULL), BW_EALREADY);
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(bw_metrics_latest(m, &s), 0);
  assert_int_equal(bw_metrics_snapshot_family(s, 1000, &fi), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_series(s, 0, 1000, &si), BW_EINVAL);
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_dead_letters_total", NULL, 1, &v),
                   BW_EINVAL);
  const char *wrong[] = {"nope"};
  assert_int_equal(bw_metrics_snapshot_value(s, "bulwark_dead_letters_total", wrong, 1, &v),
                   BW_ENOTFOUND);
  bw_metrics_snapshot_release(s);
  assert_int_equal(bw_metrics_stats(m, &ms), 0);
  assert_int_equal(ms.snapshots, 1);
  bw_pid_t first = bw_metrics_pid(m);
  assert_int_equal(bw_metrics_stop(m), 0);
  assert_false(bw_is_alive(rt, first));
  assert_int_equal(bw_metrics_pid(m), BW_PID_NONE);
  assert_int_equal(bw_metrics_collect(m, 0), BW_ENOPROC);
  assert_int_equal(bw_metrics_start(m, NULL), 0);
  assert_int_equal(bw_metrics_collect(m, 0), 0);
  assert_int_equal(bw_metrics_destroy(m), 0); /* stops the actor it started */

  /* after the runtime stopped: the reporter is gone, destroy is safe */
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_metrics_new(rt, NULL, &m), 0);
  assert_int_equal(bw_metrics_start(m, &pid), 0);
  assert_int_equal(bw_metrics_pid(m), pid);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_metrics_pid(m), BW_PID_NONE);
  assert_int_equal(bw_metrics_start(m, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_metrics_destroy(m), 0);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_and_duplicates),
      cmocka_unit_test(test_series_identity_and_limits),
      cmocka_unit_test(test_counter_two_threads_exact),
      cmocka_unit_test(test_counter_many_threads_shared_slot),
      cmocka_unit_test(test_reporter_periodic_snapshots),
      cmocka_unit_test(test_breaker_and_bulkhead_metrics),
      cmocka_unit_test(test_bulkhead_by_name),
      cmocka_unit_test(test_retry_and_mailbox_metrics),
      cmocka_unit_test(test_restarts_from_events),
      cmocka_unit_test(test_supervised_reporter_restart),
      cmocka_unit_test(test_http_client_metrics),
      cmocka_unit_test(test_prometheus_text),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_render_buffer),
      cmocka_unit_test(test_render_while_publishing),
      cmocka_unit_test(test_bad_input),
  };
  return BWT_RUN_SUITE(tests);
}
