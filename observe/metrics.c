/*
 * bulwark: the metrics registry's API (see include/bulwark/metrics.h and
 * observe/METRICS.md): options, lifecycle, public registration and
 * subscribers. The cell arena, families and series are in metrics_store.c,
 * sources in metrics_sources.c, snapshots in metrics_snapshot.c, the
 * reporter actor in metrics_reporter.c; shared types in metrics_internal.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/metrics.h"
#include "bulwark/runtime.h"
#include "observe/metrics_internal.h"
#include "runtime/atomic.h"

/* --- Options, lifecycle ------------------------------------------------------ */

void bw_metrics_opts_init(bw_metrics_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->period_ms = 1000;
  o->runtime_metrics = true;
  o->max_families = 256;
  o->max_series = 1024;
  o->max_cells = 65536;
}

int bw_metrics_opts_validate(const bw_metrics_opts_t *o) {
  bool ok = o != NULL && o->period_ms >= 1 && o->period_ms <= MAX_PERIOD_MS &&
            o->max_families >= 1 && o->max_families <= 4096 && o->max_series >= 1 &&
            o->max_series <= 65536 && o->max_cells >= 64 && o->max_cells <= (1u << 22);
  return ok ? 0 : BW_EINVAL;
}

static int add_runtime_families(bw_metrics_t *m) {
  static const char *const reason[] = {"reason"};
  static const char *const restart_labels[] = {"supervisor", "child"};
  static const char *const trans_labels[] = {"breaker", "from", "to"};
  int rc = 0;
#define FAM(var, type, name, help, labels, n)                                                 \
  if (rc == 0)                                                                                \
  rc = bw__metrics_family_add_locked(m, type, name, help, labels, n, &m->var)
#define SER(fam, var, lv)                                                                     \
  if (rc == 0)                                                                                \
  rc = bw__metrics_series_get_locked(m->fam, lv, true, &m->var)
  FAM(f_sent, BW_METRIC_COUNTER, "bulwark_messages_sent_total",
      "User messages accepted by the runtime (queued or dead-lettered).", NULL, 0);
  SER(f_sent, s_sent, NULL);
  FAM(f_handled, BW_METRIC_COUNTER, "bulwark_messages_handled_total",
      "User messages passed to a handler.", NULL, 0);
  SER(f_handled, s_handled, NULL);
  FAM(f_rejected, BW_METRIC_COUNTER, "bulwark_messages_rejected_total",
      "Sends refused by a full bounded mailbox (reject policy).", NULL, 0);
  SER(f_rejected, s_rejected, NULL);
  FAM(f_dead, BW_METRIC_COUNTER, "bulwark_dead_letters_total", "Dead letters, by reason.",
      reason, 1);
  for (int i = 0; i < BW_DL__COUNT; i++) {
    const char *lv[1] = {bw_dead_reason_name(i)};
    SER(f_dead, s_dead[i], lv);
  }
  FAM(f_spawned, BW_METRIC_COUNTER, "bulwark_actors_spawned_total",
      "Actors whose init succeeded.", NULL, 0);
  SER(f_spawned, s_spawned, NULL);
  FAM(f_exited, BW_METRIC_COUNTER, "bulwark_actors_exited_total",
      "Actors that exited after a successful init.", NULL, 0);
  SER(f_exited, s_exited, NULL);
  FAM(f_crashed, BW_METRIC_COUNTER, "bulwark_actors_crashed_total",
      "Actors that exited with reason crash.", NULL, 0);
  SER(f_crashed, s_crashed, NULL);
  FAM(f_live, BW_METRIC_GAUGE, "bulwark_actors_live", "Actors alive now.", NULL, 0);
  SER(f_live, s_live, NULL);
  FAM(f_util, BW_METRIC_GAUGE, "bulwark_scheduler_utilisation",
      "Share of the scheduler workers' time not parked since the previous collection (0..1).",
      NULL, 0);
  SER(f_util, s_util, NULL);
  FAM(f_restarts, BW_METRIC_COUNTER, "bulwark_actor_restarts_total",
      "Children restarted by their supervisor (counted from events while the reporter runs).",
      restart_labels, 2);
  FAM(f_transitions, BW_METRIC_COUNTER, "bulwark_breaker_state_changes_total",
      "Circuit breaker state changes (counted from events while the reporter runs).",
      trans_labels, 3);
#undef FAM
#undef SER
  return rc;
}

int bw_metrics_new(bw_runtime_t *rt, const bw_metrics_opts_t *opts, bw_metrics_t **out) {
  bw_metrics_opts_t o;
  if (opts != NULL)
    o = *opts;
  else
    bw_metrics_opts_init(&o);
  if (rt == NULL || out == NULL || bw_metrics_opts_validate(&o) != 0)
    return BW_EINVAL;
  bw_metrics_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return BW_ENOMEM;
  m->magic = METRICS_MAGIC;
  m->rt = rt;
  m->o = o;
  /* calloc of a large block maps zero pages lazily: a slot's pages are
   * touched only by a thread that updates */
  m->cells = calloc((size_t)BW_METRICS_THREADS * o.max_cells, sizeof *m->cells);
  m->fams = calloc(o.max_families, sizeof *m->fams);
  if (m->cells == NULL || m->fams == NULL) {
    free(m->cells);
    free(m->fams);
    free(m);
    return BW_ENOMEM;
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_mutex_init(&m->latest_mu, NULL);
  bw__subs_init(&m->subs, BW_METRICS_SUBSCRIBERS_MAX);
  if (o.runtime_metrics) {
    int rc = add_runtime_families(m);
    if (rc != 0) {
      m->magic = 0;
      for (size_t i = 0; i < m->nfams; i++)
        bw__metrics_family_free(m->fams[i]);
      pthread_mutex_destroy(&m->mu);
      pthread_mutex_destroy(&m->latest_mu);
      bw__subs_destroy(&m->subs);
      free(m->cells);
      free(m->fams);
      free(m);
      return rc;
    }
  }
  *out = m;
  return 0;
}

bool bw__metrics_valid(const bw_metrics_t *m) { return m != NULL && m->magic == METRICS_MAGIC; }

bw_pid_t bw_metrics_pid(const bw_metrics_t *m) {
  /* relaxed: a snapshot of who runs now, like bw_breaker_pid */
  return bw__metrics_valid(m) ? bw__ld64_rlx(&m->pid) : BW_PID_NONE;
}

int bw_metrics_child_spec(bw_metrics_t *m, const char *id, bw_child_spec_t *out) {
  if (!bw__metrics_valid(m) || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_metrics_behaviour;
  out->arg = m;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

int bw_metrics_start(bw_metrics_t *m, bw_pid_t *out) {
  if (!bw__metrics_valid(m))
    return BW_EINVAL;
  bw_pid_t pid;
  int rc = bw_spawn(m->rt, &bw_metrics_behaviour, m, NULL, &pid);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&m->mu);
  m->started = true;
  pthread_mutex_unlock(&m->mu);
  if (out != NULL)
    *out = pid;
  return 0;
}

int bw_metrics_stop(bw_metrics_t *m) {
  if (!bw__metrics_valid(m))
    return BW_EINVAL;
  bw_pid_t pid = bw_metrics_pid(m);
  if (pid == BW_PID_NONE || !bw_is_alive(m->rt, pid))
    return 0;
  pthread_mutex_lock(&m->mu);
  bool started = m->started;
  pthread_mutex_unlock(&m->mu);
  if (!started)
    return BW_ERUNNING; /* its supervisor would only restart it */
  /* Refuse on a scheduler thread before the actor is told to stop, so that
   * BW_EWOULDBLOCK leaves it running (and bw_metrics_destroy frees nothing). */
  if (!bw_may_block(m->rt))
    return BW_EWOULDBLOCK;
  int rc = bw_exit(m->rt, pid, BW_REASON_SHUTDOWN, 0, "metrics stop");
  if (rc != 0)
    return rc;
  rc = bw_wait_exit(m->rt, pid, 0, NULL);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&m->mu);
  m->started = false;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int bw_metrics_destroy(bw_metrics_t *m) {
  if (!bw__metrics_valid(m))
    return 0;
  /* The pid is cleared by the actor's terminate: a registry whose actor
   * ended (runtime stopped too) never touches the runtime here. */
  int rc = bw_metrics_stop(m);
  if (rc != 0)
    return rc;
  m->magic = 0;
  for (size_t i = 0; i < m->nfams; i++)
    bw__metrics_family_free(m->fams[i]);
  for (size_t i = 0; i < m->nsrcs; i++)
    bw__metrics_src_free(m->srcs[i]);
  free(m->srcs);
  bw_metrics_snapshot_release(m->latest);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->latest_mu);
  bw__subs_destroy(&m->subs);
  free(m->cells);
  free(m->fams);
  free(m);
  return 0;
}

int bw_metrics_stats(const bw_metrics_t *m, bw_metrics_stats_t *out) {
  if (!bw__metrics_valid(m) || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  bw_metrics_t *w = (bw_metrics_t *)m; /* the lock only: nothing is written */
  pthread_mutex_lock(&w->mu);
  out->snapshots = m->seq;
  out->families = m->nfams;
  for (size_t i = 0; i < m->nfams; i++)
    out->series += m->fams[i]->nseries;
  out->cells = m->ncells;
  out->sources = m->nsrcs;
  pthread_mutex_unlock(&w->mu);
  return 0;
}

/* --- Public registration ----------------------------------------------------- */

int bw_metrics_family(bw_metrics_t *m, bw_metric_type_t type, const char *name,
                      const char *help, const char *const *label_names, size_t nlabels,
                      bw_metric_family_t **out) {
  if (!bw__metrics_valid(m) || out == NULL)
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  int rc = bw__metrics_family_add_locked(m, (int)type, name, help, label_names, nlabels, out);
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static int series_public(bw_metric_family_t *f, int type, const char *const *lv, void **out) {
  if (f == NULL || out == NULL || !bw__metrics_valid(f->m) || f->type != type)
    return BW_EINVAL;
  pthread_mutex_lock(&f->m->mu);
  met_series_t *s = NULL;
  int rc = bw__metrics_series_get_locked(f, lv, false, &s);
  pthread_mutex_unlock(&f->m->mu);
  if (rc == BW_EEXIST) /* a collected series of a built-in family */
    rc = BW_EINVAL;
  if (rc == 0)
    *out = s;
  return rc;
}

int bw_metrics_counter(bw_metric_family_t *f, const char *const *lv, bw_counter_t **out) {
  return series_public(f, BW_METRIC_COUNTER, lv, (void **)out);
}

int bw_metrics_gauge(bw_metric_family_t *f, const char *const *lv, bw_gauge_t **out) {
  return series_public(f, BW_METRIC_GAUGE, lv, (void **)out);
}

int bw_metrics_histogram(bw_metric_family_t *f, const char *const *lv, bw_histogram_t **out) {
  return series_public(f, BW_METRIC_HISTOGRAM, lv, (void **)out);
}

static int plain_new(bw_metrics_t *m, int type, const char *name, const char *help,
                     void **out) {
  if (out == NULL)
    return BW_EINVAL;
  bw_metric_family_t *f;
  int rc = bw_metrics_family(m, (bw_metric_type_t)type, name, help, NULL, 0, &f);
  if (rc != 0)
    return rc;
  return series_public(f, type, NULL, out);
}

int bw_metrics_counter_new(bw_metrics_t *m, const char *name, const char *help,
                           bw_counter_t **out) {
  return plain_new(m, BW_METRIC_COUNTER, name, help, (void **)out);
}

int bw_metrics_gauge_new(bw_metrics_t *m, const char *name, const char *help, bw_gauge_t **out) {
  return plain_new(m, BW_METRIC_GAUGE, name, help, (void **)out);
}

int bw_metrics_histogram_new(bw_metrics_t *m, const char *name, const char *help,
                             bw_histogram_t **out) {
  return plain_new(m, BW_METRIC_HISTOGRAM, name, help, (void **)out);
}

/* --- Subscribers ------------------------------------------------------------------ */

int bw_metrics_subscribe(bw_metrics_t *m, bw_pid_t pid) {
  if (!bw__metrics_valid(m) || pid == BW_PID_NONE)
    return BW_EINVAL;
  return bw__subs_add(&m->subs, pid, BW__SUBS_ALL);
}

int bw_metrics_unsubscribe(bw_metrics_t *m, bw_pid_t pid) {
  if (!bw__metrics_valid(m) || pid == BW_PID_NONE)
    return BW_EINVAL;
  return bw__subs_remove(&m->subs, pid);
}

