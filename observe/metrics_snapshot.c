/*
 * bulwark: metrics snapshots (see observe/METRICS.md): building one from
 * the registry (summing the cells over the thread slots), reading it,
 * the latest one and rendering it. The reporter (metrics_reporter.c)
 * builds and publishes them; the registry is in metrics.c and
 * metrics_store.c.
 *
 * The reporter publishes each collection as an immutable, reference-counted
 * snapshot: latest (for readers on any thread, e.g. the HTTP observer) and
 * one reference per subscriber, sent as a moved pointer whose destructor
 * releases it. latest is swapped under a small mutex held for a pointer
 * swap and a reference increment: a lock-free swap would need split
 * reference counts (a reader's increment can race with the last release),
 * and readers come at scrape rate, not at message rate.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/metrics.h"
#include "observe/histogram.h"
#include "observe/metrics_internal.h"
#include "runtime/atomic.h"

/* --- Reading cells (the collector) --------------------------------------------- */

static uint64_t cell_sum(const met_series_t *s, uint32_t off, uint32_t hwm) {
  uint64_t v = bw__ld64_rlx(&s->base[(size_t)SHARED_SLOT * s->stride + off]);
  for (uint32_t t = 0; t < hwm; t++)
    v += bw__ld64_rlx(&s->base[(size_t)t * s->stride + off]);
  return v;
}

static uint64_t cell_max(const met_series_t *s, uint32_t off, uint32_t hwm) {
  uint64_t v = bw__ld64_rlx(&s->base[(size_t)SHARED_SLOT * s->stride + off]);
  for (uint32_t t = 0; t < hwm; t++) {
    uint64_t x = bw__ld64_rlx(&s->base[(size_t)t * s->stride + off]);
    if (x > v)
      v = x;
  }
  return v;
}

/* --- Snapshots ----------------------------------------------------------------- */

static void snapshot_free(bw_metrics_snapshot_t *s) {
  free(s->fam);
  free(s->ser);
  free(s->ptrs);
  free(s->buckets);
  free(s->str);
  free(s);
}

const bw_metrics_snapshot_t *bw_metrics_snapshot_retain(const bw_metrics_snapshot_t *s) {
  if (s != NULL)
    /* acq_rel add (bw__faa64); a retain needs no order of its own: the
     * caller already holds a reference */
    (void)bw__faa64(&((bw_metrics_snapshot_t *)s)->refs, 1);
  return s;
}

void bw_metrics_snapshot_release(const bw_metrics_snapshot_t *s) {
  if (s == NULL)
    return;
  bw_metrics_snapshot_t *w = (bw_metrics_snapshot_t *)s;
  /* acq_rel: every holder's reads happen-before the free by the last one */
  if (bw__faa64(&w->refs, (uint64_t)-1) == 1)
    snapshot_free(w);
}


uint64_t bw_metrics_snapshot_seq(const bw_metrics_snapshot_t *s) { return s ? s->seq : 0; }
uint64_t bw_metrics_snapshot_time_ns(const bw_metrics_snapshot_t *s) { return s ? s->time_ns : 0; }
size_t bw_metrics_snapshot_nfamilies(const bw_metrics_snapshot_t *s) { return s ? s->nfam : 0; }

int bw_metrics_snapshot_family(const bw_metrics_snapshot_t *s, size_t i,
                               bw_metric_family_info_t *out) {
  if (s == NULL || out == NULL || i >= s->nfam)
    return BW_EINVAL;
  *out = s->fam[i].info;
  return 0;
}

int bw_metrics_snapshot_series(const bw_metrics_snapshot_t *s, size_t family, size_t i,
                               bw_metric_series_info_t *out) {
  if (s == NULL || out == NULL || family >= s->nfam || i >= s->fam[family].info.nseries)
    return BW_EINVAL;
  *out = s->ser[s->fam[family].first + i];
  return 0;
}

static const bw_metric_series_info_t *snap_lookup(const bw_metrics_snapshot_t *s,
                                                  const char *name, const char *const *lv,
                                                  size_t n, int type) {
  for (size_t i = 0; i < s->nfam; i++) {
    const snap_fam_t *f = &s->fam[i];
    if (strcmp(f->info.name, name) != 0)
      continue;
    if (f->info.type != type || f->info.nlabels != n)
      return NULL;
    for (size_t k = 0; k < f->info.nseries; k++) {
      const bw_metric_series_info_t *ser = &s->ser[f->first + k];
      size_t j = 0;
      while (j < n && strcmp(ser->label_values[j], lv[j]) == 0)
        j++;
      if (j == n)
        return ser;
    }
    return NULL;
  }
  return NULL;
}

static bool lv_ok(const char *const *lv, size_t n) {
  if (n > 0 && lv == NULL)
    return false;
  for (size_t i = 0; i < n; i++)
    if (lv[i] == NULL)
      return false;
  return true;
}

int bw_metrics_snapshot_value(const bw_metrics_snapshot_t *s, const char *name,
                              const char *const *lv, size_t n, double *out) {
  if (s == NULL || name == NULL || out == NULL || !lv_ok(lv, n))
    return BW_EINVAL;
  const bw_metric_series_info_t *ser = snap_lookup(s, name, lv, n, BW_METRIC_COUNTER);
  if (ser == NULL)
    ser = snap_lookup(s, name, lv, n, BW_METRIC_GAUGE);
  if (ser == NULL)
    return BW_ENOTFOUND;
  *out = ser->value;
  return 0;
}

int bw_metrics_snapshot_histogram(const bw_metrics_snapshot_t *s, const char *name,
                                  const char *const *lv, size_t n,
                                  bw_histogram_summary_t *out) {
  if (s == NULL || name == NULL || out == NULL || !lv_ok(lv, n))
    return BW_EINVAL;
  const bw_metric_series_info_t *ser = snap_lookup(s, name, lv, n, BW_METRIC_HISTOGRAM);
  if (ser == NULL)
    return BW_ENOTFOUND;
  *out = ser->h;
  return 0;
}

/* Builds a snapshot of every present series (under m->mu): counts first,
 * then one allocation per array, then the copy. */
bw_metrics_snapshot_t *bw__metrics_snapshot_build_locked(bw_metrics_t *m) {
  size_t nfam = m->nfams, nser = 0, nptr = 0, nhist = 0, nstr = 0;
  for (size_t i = 0; i < nfam; i++) {
    bw_metric_family_t *f = m->fams[i];
    nstr += strlen(f->name) + strlen(f->help) + 2;
    nptr += f->nlabels;
    for (size_t j = 0; j < f->nlabels; j++)
      nstr += strlen(f->labels[j]) + 1;
    for (size_t k = 0; k < f->nseries; k++) {
      met_series_t *s = f->series[k];
      if (!s->present)
        continue;
      nser++;
      nptr += f->nlabels;
      for (size_t j = 0; j < f->nlabels; j++)
        nstr += strlen(s->lv[j]) + 1;
      if (f->type == BW_METRIC_HISTOGRAM)
        nhist++;
    }
  }
  bw_metrics_snapshot_t *sn = calloc(1, sizeof *sn);
  if (sn == NULL)
    return NULL;
  sn->fam = calloc(nfam + 1, sizeof *sn->fam);
  sn->ser = calloc(nser + 1, sizeof *sn->ser);
  sn->ptrs = calloc(nptr + 1, sizeof *sn->ptrs);
  sn->buckets = calloc(nhist * BW_HISTOGRAM_BUCKETS + 1, sizeof *sn->buckets);
  sn->str = malloc(nstr + 1);
  if (sn->fam == NULL || sn->ser == NULL || sn->ptrs == NULL || sn->buckets == NULL ||
      sn->str == NULL) {
    snapshot_free(sn);
    return NULL;
  }
  sn->refs = 1;
  sn->nfam = nfam;
  sn->nser = nser;
  char *sp = sn->str;
  const char **pp = sn->ptrs;
  uint64_t *bp = sn->buckets;
  size_t si = 0;
#define COPY(dst, src)                                                                        \
  do {                                                                                        \
    size_t n_ = strlen(src) + 1;                                                              \
    memcpy(sp, src, n_);                                                                      \
    (dst) = sp;                                                                               \
    sp += n_;                                                                                 \
  } while (0)
  uint32_t hwm = bw__ld32_rlx(&bw__metrics_slot_hwm);
  for (size_t i = 0; i < nfam; i++) {
    bw_metric_family_t *f = m->fams[i];
    snap_fam_t *sf = &sn->fam[i];
    COPY(sf->info.name, f->name);
    COPY(sf->info.help, f->help);
    sf->info.type = f->type;
    sf->info.nlabels = f->nlabels;
    sf->info.label_names = pp;
    for (size_t j = 0; j < f->nlabels; j++)
      COPY(*pp++, f->labels[j]);
    sf->first = si;
    for (size_t k = 0; k < f->nseries; k++) {
      met_series_t *s = f->series[k];
      if (!s->present)
        continue;
      bw_metric_series_info_t *out = &sn->ser[si++];
      sf->info.nseries++;
      out->label_values = pp;
      for (size_t j = 0; j < f->nlabels; j++)
        COPY(*pp++, s->lv[j]);
      switch (f->type) {
      case BW_METRIC_COUNTER:
        out->value = s->collected ? (double)bw__ld64_rlx(&s->bits)
                                  : (double)cell_sum(s, 0, hwm);
        break;
      case BW_METRIC_GAUGE:
        out->value = bw__metrics_bitsd(bw__ld64_rlx(&s->bits));
        break;
      default:
        if (s->collected) {
          /* plain reads: the reporter writes these under m->mu too */
          memcpy(bp, s->hist, BW_HISTOGRAM_BUCKETS * sizeof *bp);
          (void)bw_histogram_summarize(bp, s->hist[BW__HIST_SUM], s->hist[BW__HIST_MAX],
                                       &out->h);
        } else {
          for (uint32_t b = 0; b < BW_HISTOGRAM_BUCKETS; b++)
            bp[b] = cell_sum(s, b, hwm);
          (void)bw_histogram_summarize(bp, cell_sum(s, BW__HIST_SUM, hwm),
                                       cell_max(s, BW__HIST_MAX, hwm), &out->h);
        }
        out->buckets = bp;
        bp += BW_HISTOGRAM_BUCKETS;
        break;
      }
    }
  }
#undef COPY
  return sn;
}

int bw_metrics_latest(bw_metrics_t *m, bw_metrics_snapshot_t **out) {
  if (!bw__metrics_valid(m) || out == NULL)
    return BW_EINVAL;
  pthread_mutex_lock(&m->latest_mu);
  bw_metrics_snapshot_t *s = m->latest;
  if (s != NULL)
    bw_metrics_snapshot_retain(s);
  pthread_mutex_unlock(&m->latest_mu);
  if (s == NULL)
    return BW_ENOTFOUND;
  *out = s;
  return 0;
}

int bw_metrics_render(bw_metrics_t *m, int format, char *buf, size_t cap, size_t *len) {
  bw_metrics_snapshot_t *s;
  int rc = bw_metrics_latest(m, &s);
  if (rc != 0)
    return rc;
  rc = bw_metrics_snapshot_render(s, format, buf, cap, len);
  bw_metrics_snapshot_release(s);
  return rc;
}

int bw_metrics_render_alloc(bw_metrics_t *m, int format, char **out, size_t *len) {
  bw_metrics_snapshot_t *s;
  int rc = bw_metrics_latest(m, &s);
  if (rc != 0)
    return rc;
  rc = bw_metrics_snapshot_render_alloc(s, format, out, len);
  bw_metrics_snapshot_release(s);
  return rc;
}

