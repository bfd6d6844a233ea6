/*
 * bulwark: the metrics store (see observe/METRICS.md): the cell arena and
 * its thread slots, metric names, families and series, and the updates
 * (bw_counter_add, bw_gauge_*, bw_histogram_record). The API is in metrics.c,
 * sources in metrics_sources.c, snapshots in metrics_snapshot.c, the
 * reporter in metrics_reporter.c.
 *
 * Three kinds of storage, by who writes:
 * - Counters and histograms that user code updates on hot paths live in a
 *   cell arena: BW_METRICS_THREADS slots of max_cells 8-byte cells. Each
 *   thread owns one slot (claimed on its first update, recycled at its
 *   exit), so an update is a relaxed load and a relaxed store of its own
 *   cell: no lock prefix, and no cache line shared with another writer,
 *   since slots are max_cells * 8 bytes apart. Threads beyond the private
 *   slots share the last one with atomic adds. The reporter sums a series'
 *   cell over the slots at collection. Rejected: one atomic add per update
 *   on a shared word (a locked instruction, and a contended line with two
 *   busy threads), and per-series padded shards (a cache line per thread per
 *   series: 4 KB per counter).
 * - Gauges are one atomic word (a double's bits): a gauge is set, not
 *   summed, so it cannot be split by thread.
 * - Collected series (the runtime's counters, breakers, pools, retry
 *   policies, HTTP clients) hold the value the reporter read from their
 *   source, in the same word; only the reporter writes them. A collected
 *   histogram (an HTTP client's latencies) has cells of its own instead,
 *   which the reporter overwrites under the registry's mutex.
 * Families, series and sources are guarded by one mutex that only
 * registration and the reporter's collection take; no update does. The
 * subscribers are a runtime/subs.h list with its own lock.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/metrics.h"
#include "observe/histogram.h"
#include "observe/metrics_internal.h"
#include "runtime/atomic.h"

/* --- Thread slots ---------------------------------------------------------- */

/* Private slots in use (bit i = slot i, i < SHARED_SLOT), process-wide: a
 * thread has the same slot in every registry. */
static uint64_t slot_bits;
/* One past the highest private slot ever claimed: the collector sums only
 * slots below it, plus the shared one. */
uint32_t bw__metrics_slot_hwm;
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
/* This thread's slot + 1; 0 = none claimed yet. */
static _Thread_local uint32_t tl_slot;

static void slot_release(void *p) {
  uint32_t s = (uint32_t)(uintptr_t)p - 1u;
  /* Updates from later thread-exit destructors go to the shared slot: this
   * one may be someone else's from the next line on. */
  tl_slot = SHARED_SLOT + 1u;
  if (s >= SHARED_SLOT)
    return;
  for (;;) {
    uint64_t b = bw__ld64_rlx(&slot_bits);
    /* acq_rel (bw__cas64): release, so this thread's cell stores
     * happen-before the loads of the thread that claims the slot next */
    if (bw__cas64(&slot_bits, b, b & ~(1ull << s)))
      return;
  }
}

static void slot_key_make(void) { (void)pthread_key_create(&slot_key, slot_release); }

static uint32_t slot_claim(void) {
  pthread_once(&slot_once, slot_key_make);
  uint32_t s = SHARED_SLOT;
  for (;;) {
    uint64_t b = bw__ld64_rlx(&slot_bits);
    uint64_t free_bits = ~b & ((1ull << SHARED_SLOT) - 1u);
    if (free_bits == 0)
      break;
    uint32_t i = (uint32_t)__builtin_ctzll(free_bits);
    /* acquire (bw__cas64 is acq_rel): see the previous owner's stores to
     * the cells before adding to them */
    if (bw__cas64(&slot_bits, b, b | (1ull << i))) {
      s = i;
      break;
    }
  }
  if (s != SHARED_SLOT) {
    for (;;) {
      uint32_t h = bw__ld32_rlx(&bw__metrics_slot_hwm);
      /* acq_rel CAS; only monotonicity matters: a collector that reads an
       * older hwm misses a slot created after it started, whose updates
       * are then simply counted by the next collection */
      if (h > s || bw__cas32(&bw__metrics_slot_hwm, h, s + 1u))
        break;
    }
    (void)pthread_setspecific(slot_key, (void *)(uintptr_t)(s + 1u));
  }
  tl_slot = s + 1u;
  return s + 1u;
}

static inline uint32_t my_slot(void) {
  uint32_t t = tl_slot;
  return t != 0 ? t - 1u : slot_claim() - 1u;
}

/* --- Names ------------------------------------------------------------------ */

static bool name_ok(const char *s, bool metric) {
  if (s == NULL || *s == '\0' || strlen(s) > BW_METRICS_NAME_MAX)
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (metric && c == ':');
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && p != s))
      return false;
  }
  /* label names starting with __ are reserved for Prometheus' own use */
  return metric || !(s[0] == '_' && s[1] == '_');
}

/* The series names a family exposes: itself, or x_bucket, x_sum, x_count. */
static size_t exposed_names(int type, const char *name, char out[3][BW_METRICS_NAME_MAX + 8]) {
  if (type != BW_METRIC_HISTOGRAM) {
    strcpy(out[0], name);
    return 1;
  }
  static const char *const suffix[3] = {"_bucket", "_sum", "_count"};
  for (int i = 0; i < 3; i++) {
    strcpy(out[i], name);
    strcat(out[i], suffix[i]);
  }
  return 3;
}

static bool names_clash(const bw_metric_family_t *f, int type, const char *name) {
  char a[3][BW_METRICS_NAME_MAX + 8], b[3][BW_METRICS_NAME_MAX + 8];
  size_t na = exposed_names(f->type, f->name, a), nb = exposed_names(type, name, b);
  if (strcmp(f->name, name) == 0)
    return true;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++)
      if (strcmp(a[i], b[j]) == 0)
        return true;
  return false;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* --- Families and series (under m->mu) ------------------------------------ */

void bw__metrics_family_free(bw_metric_family_t *f) {
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->nseries; i++) {
    met_series_t *s = f->series[i];
    for (size_t j = 0; j < f->nlabels; j++)
      free((void *)s->lv[j]);
    free(s->lv);
    free(s->hist);
    free(s);
  }
  free(f->series);
  for (size_t j = 0; j < f->nlabels; j++)
    free(f->labels[j]);
  free(f->name);
  free(f->help);
  free(f);
}

static bw_metric_family_t *family_find(bw_metrics_t *m, const char *name) {
  for (size_t i = 0; i < m->nfams; i++)
    if (strcmp(m->fams[i]->name, name) == 0)
      return m->fams[i];
  return NULL;
}

int bw__metrics_family_add_locked(bw_metrics_t *m, int type, const char *name, const char *help,
                                  const char *const *labels, size_t nlabels,
                                  bw_metric_family_t **out) {
  if (type < BW_METRIC_COUNTER || type > BW_METRIC_HISTOGRAM || !name_ok(name, true) ||
      nlabels > BW_METRICS_LABELS_MAX || (nlabels > 0 && labels == NULL) ||
      (help != NULL && strlen(help) > BW_METRICS_HELP_MAX))
    return BW_EINVAL;
  for (size_t i = 0; i < nlabels; i++) {
    if (!name_ok(labels[i], false))
      return BW_EINVAL;
    if (type == BW_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)
      return BW_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(labels[i], labels[j]) == 0)
        return BW_EINVAL;
  }
  for (size_t i = 0; i < m->nfams; i++)
    if (names_clash(m->fams[i], type, name))
      return BW_EEXIST;
  if (m->nfams >= m->o.max_families)
    return BW_ELIMIT;
  bw_metric_family_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return BW_ENOMEM;
  f->m = m;
  f->type = type;
  f->name = dupstr(name);
  f->help = dupstr(help != NULL ? help : "");
  bool ok = f->name != NULL && f->help != NULL;
  for (size_t i = 0; i < nlabels && ok; i++) {
    f->labels[i] = dupstr(labels[i]);
    f->nlabels = i + 1;
    ok = f->labels[i] != NULL;
  }
  if (!ok) {
    bw__metrics_family_free(f);
    return BW_ENOMEM;
  }
  m->fams[m->nfams++] = f;
  *out = f;
  return 0;
}

/* A built-in family: the existing one if it has this shape, else a new one. */
int bw__metrics_family_ensure_locked(bw_metrics_t *m, int type, const char *name,
                                     const char *help, const char *const *labels,
                                     size_t nlabels, bw_metric_family_t **out) {
  bw_metric_family_t *f = family_find(m, name);
  if (f == NULL)
    return bw__metrics_family_add_locked(m, type, name, help, labels, nlabels, out);
  if (f->type != type || f->nlabels != nlabels)
    return BW_EEXIST;
  for (size_t i = 0; i < nlabels; i++)
    if (strcmp(f->labels[i], labels[i]) != 0)
      return BW_EEXIST;
  *out = f;
  return 0;
}

static met_series_t *series_find(bw_metric_family_t *f, const char *const *lv) {
  for (size_t i = 0; i < f->nseries; i++) {
    met_series_t *s = f->series[i];
    size_t j = 0;
    while (j < f->nlabels && strcmp(s->lv[j], lv[j]) == 0)
      j++;
    if (j == f->nlabels)
      return s;
  }
  return NULL;
}

/* The series for lv, created if new; collected: its value comes from the
 * reporter (no cells). */
int bw__metrics_series_get_locked(bw_metric_family_t *f, const char *const *lv, bool collected,
                                  met_series_t **out) {
  bw_metrics_t *m = f->m;
  if (f->nlabels > 0 && lv == NULL)
    return BW_EINVAL;
  for (size_t i = 0; i < f->nlabels; i++)
    if (lv[i] == NULL || strlen(lv[i]) > BW_METRICS_VALUE_MAX)
      return BW_EINVAL;
  met_series_t *s = series_find(f, lv);
  if (s != NULL) {
    if (s->collected != collected)
      return BW_EEXIST;
    *out = s;
    return 0;
  }
  if (f->nseries >= m->o.max_series)
    return BW_ELIMIT;
  uint32_t ncells = 0;
  if (!collected)
    ncells = f->type == BW_METRIC_COUNTER ? 1u
             : f->type == BW_METRIC_HISTOGRAM ? BW_HISTOGRAM_CELLS
                                              : 0u;
  if (ncells > m->o.max_cells - m->ncells)
    return BW_ELIMIT;
  if (f->nseries == f->capseries) {
    size_t cap = f->capseries ? f->capseries * 2 : 4;
    met_series_t **ns = realloc(f->series, cap * sizeof *ns);
    if (ns == NULL)
      return BW_ENOMEM;
    f->series = ns;
    f->capseries = cap;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return BW_ENOMEM;
  s->lv = calloc(f->nlabels + 1, sizeof *s->lv);
  bool ok = s->lv != NULL;
  /* a collected histogram (an HTTP client's latencies) keeps the cells
   * the reporter copies in, instead of per-thread cells */
  if (ok && collected && f->type == BW_METRIC_HISTOGRAM)
    ok = (s->hist = calloc(BW_HISTOGRAM_CELLS, sizeof *s->hist)) != NULL;
  for (size_t i = 0; i < f->nlabels && ok; i++)
    ok = (s->lv[i] = dupstr(lv[i])) != NULL;
  if (!ok) {
    if (s->lv != NULL)
      for (size_t i = 0; i < f->nlabels; i++)
        free((void *)s->lv[i]);
    free(s->lv);
    free(s->hist);
    free(s);
    return BW_ENOMEM;
  }
  s->kind = (uint32_t)f->type;
  s->fam = f;
  s->collected = collected;
  s->present = true;
  s->stride = m->o.max_cells;
  if (ncells > 0) {
    s->cell = m->ncells;
    s->base = &m->cells[s->cell];
    m->ncells += ncells;
  } else {
    s->cell = NO_CELL;
  }
  f->series[f->nseries++] = s;
  *out = s;
  return 0;
}

uint64_t bw__metrics_dbits(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

double bw__metrics_bitsd(uint64_t b) {
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

/* --- Updates ------------------------------------------------------------------ */

int bw_counter_add(bw_counter_t *c, uint64_t n) {
  met_series_t *s = (met_series_t *)c;
  if (s == NULL || s->kind != BW_METRIC_COUNTER || s->cell == NO_CELL)
    return BW_EINVAL;
  uint32_t t = my_slot();
  uint64_t *p = s->base + (size_t)t * s->stride;
  if (t != SHARED_SLOT)
    /* relaxed load and store, not an atomic add: only this thread writes
     * this cell; the collector needs its latest value, no ordering */
    bw__st64_rlx(p, bw__ld64_rlx(p) + n);
  else
    (void)bw__faa64(p, n); /* shared slot: several writers */
  return 0;
}

int bw_gauge_set(bw_gauge_t *g, double v) {
  met_series_t *s = (met_series_t *)g;
  if (s == NULL || s->kind != BW_METRIC_GAUGE || s->collected)
    return BW_EINVAL;
  /* relaxed: the value is all there is to see */
  bw__st64_rlx(&s->bits, bw__metrics_dbits(v));
  return 0;
}

int bw_gauge_add(bw_gauge_t *g, double d) {
  met_series_t *s = (met_series_t *)g;
  if (s == NULL || s->kind != BW_METRIC_GAUGE || s->collected)
    return BW_EINVAL;
  for (;;) {
    uint64_t old = bw__ld64_rlx(&s->bits);
    /* CAS: concurrent adds must not lose one another */
    if (bw__cas64(&s->bits, old, bw__metrics_dbits(bw__metrics_bitsd(old) + d)))
      return 0;
  }
}

int bw_histogram_record(bw_histogram_t *h, uint64_t ns) {
  met_series_t *s = (met_series_t *)h;
  if (s == NULL || s->kind != BW_METRIC_HISTOGRAM || s->cell == NO_CELL)
    return BW_EINVAL;
  uint32_t t = my_slot();
  uint64_t *b = s->base + (size_t)t * s->stride;
  if (t != SHARED_SLOT) {
    /* the cells are this thread's: relaxed, as in bw_counter_add (the
     * collector needs no order: _count comes from the buckets alone) */
    bw__hist_record_1w(b, ns);
    return 0;
  }
  unsigned i = bw__hist_index(ns);
  (void)bw__faa64(&b[i], 1);
  (void)bw__faa64(&b[BW__HIST_SUM], ns);
  for (;;) {
    uint64_t cur = bw__ld64_rlx(&b[BW__HIST_MAX]);
    if (ns <= cur || bw__cas64(&b[BW__HIST_MAX], cur, ns))
      return 0;
  }
}

