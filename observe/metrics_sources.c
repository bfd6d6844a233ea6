/*
 * bulwark: metrics sources (see observe/METRICS.md): breakers, pools,
 * retry policies and named actors whose series the reporter collects, with
 * their families. The reporter (metrics_reporter.c) reads them; the rest of
 * the registry is in metrics.c and metrics_store.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/breaker.h"
#include "bulwark/error.h"
#include "bulwark/metrics.h"
#include "bulwark/registry.h"
#include "bulwark/retry.h"
#include "bulwark/runtime.h"
#include "observe/metrics_internal.h"
#include "runtime/atomic.h"

/* --- Sources -------------------------------------------------------------------- */

met_src_t *bw__metrics_src_find_locked(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                                       const char *name, size_t *idx) {
  for (size_t i = 0; i < m->nsrcs; i++) {
    met_src_t *s = m->srcs[i];
    if (s->kind != kind)
      continue;
    bool hit = (ptr != NULL && s->ptr == ptr) || (pid != BW_PID_NONE && s->pid == pid) ||
               (name != NULL && strcmp(s->name, name) == 0);
    if (hit) {
      if (idx != NULL)
        *idx = i;
      return s;
    }
  }
  return NULL;
}

/* A new source, not yet in m->srcs but with room made for it there: the
 * caller appends it once its series exist, or frees it. */
int bw__metrics_src_new_locked(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                               const char *name, met_src_t **out) {
  if (bw__metrics_src_find_locked(m, kind, ptr, pid, name, NULL) != NULL)
    return BW_EEXIST;
  if (m->nsrcs == m->capsrcs) {
    size_t cap = m->capsrcs ? m->capsrcs * 2 : 8;
    met_src_t **ns = realloc(m->srcs, cap * sizeof *ns);
    if (ns == NULL)
      return BW_ENOMEM;
    m->srcs = ns;
    m->capsrcs = cap;
  }
  met_src_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return BW_ENOMEM;
  s->kind = kind;
  s->ptr = ptr;
  s->pid = pid;
  strcpy(s->name, name);
  *out = s;
  return 0;
}

void bw__metrics_src_free(met_src_t *s) {
  if (s != NULL)
    free(s->ext);
  free(s);
}

typedef struct fam_def {
  int type;
  const char *name, *help;
} fam_def_t;

/* Adds a source and its series: for each def, the series with the source's
 * name as first label value and extra[k] (may be NULL) as the second. */
static int src_add(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid, const char *name,
                   const char *label, const fam_def_t *defs, size_t ndefs,
                   const char *second_label, const char *const *const *second) {
  if (!bw__metrics_valid(m) || name == NULL || *name == '\0' || strlen(name) > BW_METRICS_VALUE_MAX)
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  met_src_t *s = NULL;
  int rc = bw__metrics_src_new_locked(m, kind, ptr, pid, name, &s);
  if (rc != 0)
    goto out;
  for (size_t d = 0; d < ndefs && rc == 0; d++) {
    const char *const *vals = second != NULL ? second[d] : NULL;
    const char *labels[2] = {label, second_label};
    bw_metric_family_t *f;
    rc = bw__metrics_family_ensure_locked(m, defs[d].type, defs[d].name, defs[d].help,
                                          labels, vals != NULL ? 2 : 1, &f);
    for (size_t k = 0; rc == 0 && (k == 0 || (vals != NULL && vals[k] != NULL)); k++) {
      const char *lv[2] = {name, vals != NULL ? vals[k] : NULL};
      if (s->ns == SRC_SERIES_MAX) {
        rc = BW_ELIMIT;
        break;
      }
      met_series_t *ser;
      rc = bw__metrics_series_get_locked(f, lv, true, &ser);
      if (rc == 0) {
        /* a source added again: its series come back; values start from
         * what it reports now */
        ser->present = kind != SRC_ACTOR && kind != SRC_BULKHEAD;
        s->s[s->ns++] = ser;
      }
      if (vals == NULL)
        break;
    }
  }
  if (rc != 0) {
    /* series already created stay (bounded by the family's limit) but are
     * not shown: nothing reports into them */
    for (size_t i = 0; i < s->ns; i++)
      s->s[i]->present = false;
    free(s);
    goto out;
  }
  m->srcs[m->nsrcs++] = s;
out:
  pthread_mutex_unlock(&m->mu);
  return rc;
}

int bw__metrics_src_remove(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                           const char *name) {
  if (!bw__metrics_valid(m) || (ptr == NULL && pid == BW_PID_NONE && name == NULL))
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  size_t i;
  met_src_t *s = bw__metrics_src_find_locked(m, kind, ptr, pid, name, &i);
  if (s == NULL) {
    pthread_mutex_unlock(&m->mu);
    return BW_ENOTFOUND;
  }
  for (size_t k = 0; k < s->ns; k++)
    s->s[k]->present = false;
  if (kind == SRC_HTTP)
    bw__metrics_http_absent_locked(s);
  bool was_asked = s->ref != 0;
  memmove(&m->srcs[i], &m->srcs[i + 1], (m->nsrcs - i - 1) * sizeof *m->srcs);
  m->nsrcs--;
  bw__metrics_src_free(s);
  bw_pid_t actor = bw__ld64_rlx(&m->pid);
  pthread_mutex_unlock(&m->mu);
  /* the actor may be waiting for this pool's answer to publish */
  if (was_asked && actor != BW_PID_NONE)
    (void)bw_send(m->rt, actor, M_RECHECK, NULL, 0);
  return 0;
}

static const fam_def_t breaker_defs[] = {
    {BW_METRIC_GAUGE, "bulwark_breaker_state",
     "Circuit breaker state: 0 closed, 1 open, 2 half_open, 3 disabled, 4 forced_open, "
     "5 metrics_only."},
    {BW_METRIC_COUNTER, "bulwark_breaker_calls_total", "Calls through a circuit breaker, by result."},
    {BW_METRIC_COUNTER, "bulwark_breaker_slow_calls_total", "Calls slower than the slow-call limit."},
    {BW_METRIC_COUNTER, "bulwark_breaker_timeouts_total", "Proxied calls that timed out."},
    {BW_METRIC_GAUGE, "bulwark_breaker_failure_rate", "Failure rate over the window, percent."},
    {BW_METRIC_GAUGE, "bulwark_breaker_slow_rate", "Slow-call rate over the window, percent."},
};
static const char *const breaker_results[] = {"successful", "failed", "ignored", "rejected", NULL};
static const char *const *const breaker_second[] = {NULL, breaker_results, NULL, NULL, NULL, NULL};

int bw_metrics_add_breaker(bw_metrics_t *m, bw_breaker_t *br) {
  if (br == NULL)
    return BW_EINVAL;
  return src_add(m, SRC_BREAKER, br, BW_PID_NONE, bw_breaker_name(br), "breaker", breaker_defs,
                 6, "result", breaker_second);
}

int bw_metrics_remove_breaker(bw_metrics_t *m, bw_breaker_t *br) {
  return br == NULL ? BW_EINVAL : bw__metrics_src_remove(m, SRC_BREAKER, br, BW_PID_NONE, NULL);
}

static const fam_def_t bulkhead_defs[] = {
    {BW_METRIC_COUNTER, "bulwark_bulkhead_executions_total", "Bulkhead work items, by outcome."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_available", "Workers that could take work now."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_busy", "Workers running a job."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_queued", "Work waiting in the queue."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_lent", "Workers checked out."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_overflow", "Overflow workers running."},
};
static const char *const bulkhead_states[] = {"completed", "crashed", "rejected", "timed_out", NULL};
static const char *const *const bulkhead_second[] = {bulkhead_states, NULL, NULL, NULL, NULL, NULL};

int bw_metrics_add_bulkhead(bw_metrics_t *m, bw_pid_t pool, const char *name) {
  if (name == NULL)
    return BW_EINVAL;
  return src_add(m, SRC_BULKHEAD, NULL, pool, name, "pool", bulkhead_defs, 6, "state",
                 bulkhead_second);
}

int bw_metrics_remove_bulkhead(bw_metrics_t *m, const char *name) {
  return name == NULL ? BW_EINVAL
                      : bw__metrics_src_remove(m, SRC_BULKHEAD, NULL, BW_PID_NONE, name);
}

static const fam_def_t retry_defs[] = {
    {BW_METRIC_COUNTER, "bulwark_retry_attempts_total", "Attempts sent, first ones and retries."},
    {BW_METRIC_COUNTER, "bulwark_retry_retries_total", "Retries scheduled."},
    {BW_METRIC_COUNTER, "bulwark_timeouts_total", "Attempts that timed out."},
    {BW_METRIC_COUNTER, "bulwark_retry_calls_total", "Calls through a retry policy, by result."},
    {BW_METRIC_COUNTER, "bulwark_retry_budget_exhausted_total",
     "Calls ended because the retry budget refused a retry."},
    {BW_METRIC_GAUGE, "bulwark_retry_in_flight", "Calls in flight."},
};
static const char *const retry_results[] = {"success", "failure", "rejected", NULL};
static const char *const *const retry_second[] = {NULL, NULL, NULL, retry_results, NULL, NULL};

int bw_metrics_add_retry(bw_metrics_t *m, const bw_retry_t *r, const char *name) {
  bw_retry_stats_t probe;
  /* a handle that is not a retry policy's has no counters to read */
  if (r == NULL || bw_retry_stats(r, &probe) != 0)
    return BW_EINVAL;
  if (name == NULL)
    name = bw_retry_name(r);
  return src_add(m, SRC_RETRY, r, BW_PID_NONE, name, "policy", retry_defs, 6, "result",
                 retry_second);
}

int bw_metrics_remove_retry(bw_metrics_t *m, const bw_retry_t *r) {
  return r == NULL ? BW_EINVAL : bw__metrics_src_remove(m, SRC_RETRY, r, BW_PID_NONE, NULL);
}

static const fam_def_t actor_defs[] = {
    {BW_METRIC_GAUGE, "bulwark_mailbox_depth", "Messages waiting in a registered actor's mailbox."},
};

int bw_metrics_add_actor(bw_metrics_t *m, const char *name) {
  if (name == NULL || strlen(name) > BW_NAME_MAX)
    return BW_EINVAL;
  return src_add(m, SRC_ACTOR, NULL, BW_PID_NONE, name, "actor", actor_defs, 1, NULL, NULL);
}

int bw_metrics_remove_actor(bw_metrics_t *m, const char *name) {
  return name == NULL ? BW_EINVAL
                      : bw__metrics_src_remove(m, SRC_ACTOR, NULL, BW_PID_NONE, name);
}

