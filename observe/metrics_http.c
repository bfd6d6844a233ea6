/*
 * bulwark: HTTP clients as metrics sources (see observe/METRICS.md, "HTTP
 * clients"): bw_metrics_add_http / remove_http, and the reporter's
 * collection of a client's per-host rows (bw_http_host_stats) into series
 * labelled with the client's name and the host's key.
 *
 * Unlike the other sources, whose series are all known when they are
 * added, a client's hosts come as its requests do, so a host's series are
 * made at the first collection that sees it (under m->mu, like every
 * collection) and kept by row: a client's named rows never change host
 * and "other" is always last, so the series of row i are made once and
 * looked up in O(1) afterwards. The rows are read into a buffer allocated
 * with the source: a collection allocates nothing after a host's first
 * sight.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/http.h"
#include "bulwark/metrics.h"
#include "observe/histogram.h"
#include "observe/metrics_internal.h"

#define ROWS (BW_HTTP_HOSTS_MAX + 1u)

_Static_assert(BW_HTTP_LATENCY_BUCKETS == BW_HISTOGRAM_BUCKETS,
               "the client's latency rows are the reporter's buckets");

enum {
  F_RECEIVED, F_REQUESTS, F_ERRORS, F_THROTTLED, F_RETRIES, F_CANCELS, F_FALLBACKS,
  F_IN_FLIGHT, F_QUEUED, F_BYTES, F_DURATION, F__N
};

static const struct {
  int type;
  const char *name, *help, *third; /* third: the third label's name, or NULL */
} fams[F__N] = {
    [F_RECEIVED] = {BW_METRIC_COUNTER, "bulwark_http_requests_received_total",
                    "Requests an HTTP client received, by host.", NULL},
    [F_REQUESTS] = {BW_METRIC_COUNTER, "bulwark_http_requests_total",
                    "HTTP responses by status class (every attempt's), by host.", "class"},
    [F_ERRORS] = {BW_METRIC_COUNTER, "bulwark_http_errors_total",
                  "HTTP requests or attempts that ended without a usable response, by kind.",
                  "kind"},
    [F_THROTTLED] = {BW_METRIC_COUNTER, "bulwark_http_throttled_total",
                     "429 responses, and requests a host's Retry-After outlasted.", NULL},
    [F_RETRIES] = {BW_METRIC_COUNTER, "bulwark_http_retries_total",
                   "HTTP attempts the client's policy retried.", NULL},
    [F_CANCELS] = {BW_METRIC_COUNTER, "bulwark_http_cancels_total",
                   "HTTP requests cancelled (cancel message, requester exit, client stop).",
                   NULL},
    [F_FALLBACKS] = {BW_METRIC_COUNTER, "bulwark_http_fallbacks_total",
                     "HTTP requests the policy's fallback answered.", NULL},
    [F_IN_FLIGHT] = {BW_METRIC_GAUGE, "bulwark_http_in_flight",
                     "HTTP requests the client holds now (running, waiting or queued).", NULL},
    [F_QUEUED] = {BW_METRIC_GAUGE, "bulwark_http_queued",
                  "HTTP requests waiting for a transfer slot.", NULL},
    [F_BYTES] = {BW_METRIC_COUNTER, "bulwark_http_bytes_total",
                 "HTTP body bytes, by direction.", "direction"},
    [F_DURATION] = {BW_METRIC_HISTOGRAM, "bulwark_http_request_duration_seconds",
                    "HTTP requests answered with a response: arrival at the client to answer.",
                    NULL},
};

#define FIELD(x) offsetof(bw_http_stats_t, x)

/* A host's series: a family, its third label's value, the stats field. */
static const struct {
  int fam;
  const char *value;
  size_t off; /* unused for the histogram */
} defs[] = {
    {F_RECEIVED, NULL, FIELD(requests)},
    {F_REQUESTS, "2xx", FIELD(responses_2xx)},
    {F_REQUESTS, "3xx", FIELD(responses_3xx)},
    {F_REQUESTS, "4xx", FIELD(responses_4xx)},
    {F_REQUESTS, "5xx", FIELD(responses_5xx)},
    {F_ERRORS, "timeout", FIELD(timeouts)},
    {F_ERRORS, "connection", FIELD(conn_errors)},
    {F_ERRORS, "dns", FIELD(dns_errors)},
    {F_ERRORS, "tls", FIELD(tls_errors)},
    {F_ERRORS, "protocol", FIELD(proto_errors)},
    {F_ERRORS, "too_big", FIELD(too_big)},
    {F_ERRORS, "queue_full", FIELD(queue_full)},
    {F_ERRORS, "refused", FIELD(refused)},
    {F_THROTTLED, NULL, FIELD(throttled)},
    {F_RETRIES, NULL, FIELD(retries)},
    {F_CANCELS, NULL, FIELD(cancels)},
    {F_FALLBACKS, NULL, FIELD(fallbacks)},
    {F_IN_FLIGHT, NULL, FIELD(in_flight)},
    {F_QUEUED, NULL, FIELD(queued)},
    {F_BYTES, "sent", FIELD(bytes_sent)},
    {F_BYTES, "received", FIELD(bytes_received)},
    {F_DURATION, NULL, 0},
};
#define NSER (sizeof defs / sizeof defs[0])

typedef struct http_src {
  bw_metric_family_t *f[F__N];
  bw_http_host_stats_t rows[ROWS]; /* this period's read */
  struct {
    char host[BW_HTTP_HOST_KEY_MAX]; /* whose series s holds; "" = none made yet */
    met_series_t *s[NSER];
  } hosts[ROWS];
} http_src_t;

/* --- Adding and removing ---------------------------------------------------------- */

static int families_locked(bw_metrics_t *m, http_src_t *x) {
  for (int i = 0; i < F__N; i++) {
    const char *labels[3] = {"client", "host", fams[i].third};
    int rc = bw__metrics_family_ensure_locked(m, fams[i].type, fams[i].name, fams[i].help,
                                              labels, fams[i].third ? 3 : 2, &x->f[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int bw_metrics_add_http(bw_metrics_t *m, bw_http_t *h) {
  const char *name = bw_http_name(h);
  if (!bw__metrics_valid(m) || name == NULL || *name == '\0')
    return BW_EINVAL;
  /* allocated before the lock: about 120 KiB, the rows' buffer */
  http_src_t *x = calloc(1, sizeof *x);
  if (x == NULL)
    return BW_ENOMEM;
  pthread_mutex_lock(&m->mu);
  met_src_t *s = NULL;
  int rc = bw__metrics_src_new_locked(m, SRC_HTTP, h, BW_PID_NONE, name, &s);
  if (rc == 0)
    rc = families_locked(m, x); /* families made before a failure stay, empty */
  if (rc == 0) {
    s->ext = x;
    m->srcs[m->nsrcs++] = s;
  } else {
    free(s);
    free(x);
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

int bw_metrics_remove_http(bw_metrics_t *m, bw_http_t *h) {
  return h == NULL ? BW_EINVAL : bw__metrics_src_remove(m, SRC_HTTP, h, BW_PID_NONE, NULL);
}

void bw__metrics_http_absent_locked(met_src_t *s) {
  http_src_t *x = s->ext;
  for (size_t r = 0; r < ROWS; r++)
    for (size_t k = 0; k < NSER; k++)
      if (x->hosts[r].s[k] != NULL)
        x->hosts[r].s[k]->present = false;
}

/* --- Collecting (the reporter, under m->mu) --------------------------------------- */

/* Makes (or finds again, after a remove and add) the series of a host in
 * slot r. On failure (max_series, no memory) the host stays unmade and
 * is tried again next period; series already made wait, not shown. */
static bool host_make(met_src_t *s, http_src_t *x, size_t r, const char *host) {
  met_series_t *made[NSER];
  for (size_t k = 0; k < NSER; k++) {
    const char *lv[3] = {s->name, host, defs[k].value};
    if (bw__metrics_series_get_locked(x->f[defs[k].fam], lv, true, &made[k]) != 0) {
      for (size_t j = 0; j < k; j++)
        made[j]->present = false;
      return false;
    }
  }
  for (size_t k = 0; k < NSER; k++) {
    made[k]->present = true;
    x->hosts[r].s[k] = made[k];
  }
  memcpy(x->hosts[r].host, host, sizeof x->hosts[r].host);
  return true;
}

static void host_set(met_series_t *const *ser, const bw_http_host_stats_t *row) {
  for (size_t k = 0; k < NSER; k++) {
    if (defs[k].fam == F_DURATION) {
      /* plain writes: snapshots read these under m->mu, which we hold */
      memcpy(ser[k]->hist, row->latency, BW_HISTOGRAM_BUCKETS * sizeof *ser[k]->hist);
      ser[k]->hist[BW__HIST_SUM] = row->latency_sum_ns;
      ser[k]->hist[BW__HIST_MAX] = row->latency_max_ns;
      continue;
    }
    uint64_t v;
    memcpy(&v, (const char *)&row->stats + defs[k].off, sizeof v);
    if (defs[k].fam == F_IN_FLIGHT || defs[k].fam == F_QUEUED)
      bw__metrics_set_gauge(ser[k], (double)v);
    else
      bw__metrics_set_counter(ser[k], v);
  }
}

void bw__metrics_http_collect_locked(bw_metrics_t *m, met_src_t *s) {
  (void)m;
  http_src_t *x = s->ext;
  size_t n = 0;
  int rc = bw_http_host_stats(s->ptr, x->rows, ROWS, &n);
  if (rc != 0 && rc != BW_ETOOBIG)
    return;
  if (n > ROWS)
    n = ROWS;
  for (size_t i = 0; i < n; i++) {
    const bw_http_host_stats_t *row = &x->rows[i];
    /* named rows keep their index for the client's life; "other" is last */
    size_t r = strcmp(row->host, BW_HTTP_HOST_OTHER) == 0 ? ROWS - 1 : i;
    if (strcmp(x->hosts[r].host, row->host) != 0 && !host_make(s, x, r, row->host))
      continue;
    host_set(x->hosts[r].s, row);
  }
}
