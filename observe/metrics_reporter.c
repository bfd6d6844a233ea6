/*
 * bulwark: the metrics reporter actor (see observe/METRICS.md): collects
 * the runtime and every source each period (pools answer asynchronously),
 * publishes a snapshot to latest and to subscribers, counts restarts and
 * breaker transitions from the event bus. The registry is in metrics.c,
 * metrics_store.c and metrics_sources.c; snapshots in metrics_snapshot.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/metrics.h"
#include "bulwark/registry.h"
#include "bulwark/retry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "observe/metrics_internal.h"
#include "runtime/atomic.h"

/* --- The reporter actor ---------------------------------------------------------- */

typedef struct rep_state {
  bw_metrics_t *m;
  bool events; /* subscribed to the event bus */
} rep_state_t;

static void collect_runtime_locked(bw_metrics_t *m) {
  if (!m->o.runtime_metrics)
    return;
  bw_runtime_stats_t st;
  if (bw_runtime_stats(m->rt, &st) != 0)
    return;
  bw__metrics_set_counter(m->s_sent, st.sent);
  bw__metrics_set_counter(m->s_handled, st.handled);
  bw__metrics_set_counter(m->s_rejected, st.rejected);
  for (int i = 0; i < BW_DL__COUNT; i++)
    bw__metrics_set_counter(m->s_dead[i], st.dead_by_reason[i]);
  bw__metrics_set_counter(m->s_spawned, st.spawned);
  bw__metrics_set_counter(m->s_exited, st.exited);
  bw__metrics_set_counter(m->s_crashed, st.crashed);
  bw__metrics_set_gauge(m->s_live, (double)st.live);
  /* utilisation over the interval since the previous collection */
  uint64_t du = st.uptime_ns - m->util_uptime, di = st.idle_ns - m->util_idle;
  if (m->util_uptime != 0 && du > 0 && st.workers > 0) {
    double u = 1.0 - (double)di / ((double)du * st.workers);
    bw__metrics_set_gauge(m->s_util, u < 0 ? 0 : u > 1 ? 1 : u);
  }
  m->util_uptime = st.uptime_ns;
  m->util_idle = st.idle_ns;
}

static void collect_breaker(met_src_t *s) {
  bw_breaker_stats_t bm;
  if (bw_breaker_stats(s->ptr, &bm) != 0)
    return;
  /* series order: state, calls{successful, failed, ignored, rejected},
   * slow, timeouts, failure_rate, slow_rate (breaker_defs) */
  bw__metrics_set_gauge(s->s[0], bm.state);
  bw__metrics_set_counter(s->s[1], bm.successful);
  bw__metrics_set_counter(s->s[2], bm.failed);
  bw__metrics_set_counter(s->s[3], bm.ignored);
  bw__metrics_set_counter(s->s[4], bm.rejected);
  bw__metrics_set_counter(s->s[5], bm.slow);
  bw__metrics_set_counter(s->s[6], bm.timeouts);
  bw__metrics_set_gauge(s->s[7], bm.failure_rate);
  s->s[7]->present = bm.failure_rate >= 0;
  bw__metrics_set_gauge(s->s[8], bm.slow_rate);
  s->s[8]->present = bm.slow_rate >= 0;
}

static void collect_retry(met_src_t *s) {
  bw_retry_stats_t rm;
  if (bw_retry_stats(s->ptr, &rm) != 0)
    return;
  /* attempts, retries, timeouts, calls{success, failure, rejected},
   * budget_exhausted, in_flight (retry_defs) */
  bw__metrics_set_counter(s->s[0], rm.attempts);
  bw__metrics_set_counter(s->s[1], rm.retries);
  bw__metrics_set_counter(s->s[2], rm.timeouts);
  bw__metrics_set_counter(s->s[3], rm.successes);
  bw__metrics_set_counter(s->s[4], rm.failures);
  bw__metrics_set_counter(s->s[5], rm.rejected);
  bw__metrics_set_counter(s->s[6], rm.budget_exhausted);
  bw__metrics_set_gauge(s->s[7], (double)rm.in_flight);
}

static void collect_actor(bw_metrics_t *m, met_src_t *s) {
  bw_pid_t pid;
  uint32_t depth = 0;
  bool ok = bw_whereis(m->rt, s->name, &pid) == 0 && bw_mailbox_depth(m->rt, pid, &depth) == 0;
  bw__metrics_set_gauge(s->s[0], depth);
  s->s[0]->present = ok;
}

static void bulkhead_update(met_src_t *s, const bw_bulkhead_stats_t *bm) {
  /* executions{completed, crashed, rejected, timed_out}, available, busy,
   * queued, lent, overflow (bulkhead_defs) */
  bw__metrics_set_counter(s->s[0], bm->completed);
  bw__metrics_set_counter(s->s[1], bm->crashed);
  bw__metrics_set_counter(s->s[2], bm->rejected);
  bw__metrics_set_counter(s->s[3], bm->timed_out);
  bw__metrics_set_gauge(s->s[4], bm->available);
  bw__metrics_set_gauge(s->s[5], bm->busy);
  bw__metrics_set_gauge(s->s[6], bm->queued);
  bw__metrics_set_gauge(s->s[7], bm->lent);
  bw__metrics_set_gauge(s->s[8], bm->overflow);
  for (size_t i = 0; i < s->ns; i++)
    s->s[i]->present = true;
}

static void bulkhead_absent(met_src_t *s) {
  for (size_t i = 0; i < s->ns; i++)
    s->s[i]->present = false;
}

static bool pending_locked(const bw_metrics_t *m) {
  for (size_t i = 0; i < m->nsrcs; i++)
    if (m->srcs[i]->ref != 0)
      return true;
  return false;
}

static void snapshot_release_cb(void *p) { bw_metrics_snapshot_release(p); }

/* Publishes the collection in progress: a snapshot to latest and to each
 * subscriber; answers bw_metrics_collect's waiters. */
static void publish(bw_ctx_t *ctx, bw_metrics_t *m) {
  bw_msg_t waiters[MAX_WAITERS];
  pthread_mutex_lock(&m->mu);
  bw_metrics_snapshot_t *sn = bw__metrics_snapshot_build_locked(m);
  if (sn != NULL) {
    sn->seq = ++m->seq;
    sn->time_ns = bw_now_ns(m->rt);
  }
  m->collecting = false;
  for (size_t i = 0; i < m->nsrcs; i++)
    m->srcs[i]->ref = 0; /* late answers are ignored */
  size_t nw = m->nwaiters;
  memcpy(waiters, m->waiters, nw * sizeof *waiters);
  m->nwaiters = 0;
  pthread_mutex_unlock(&m->mu);

  if (sn != NULL) {
    pthread_mutex_lock(&m->latest_mu);
    bw_metrics_snapshot_t *old = m->latest;
    m->latest = sn;
    pthread_mutex_unlock(&m->latest_mu);
    bw_metrics_snapshot_release(old);
    for (uint32_t i = 0; i < m->subs.cap; i++) {
      bw_pid_t sub = bw__subs_at(&m->subs, i, NULL);
      if (sub == BW_PID_NONE)
        continue;
      bw_metrics_snapshot_retain(sn);
      int rc = bw_send_move(m->rt, sub, BW_METRICS_MSG_SNAPSHOT, sn, sizeof *sn,
                            snapshot_release_cb);
      if (rc == BW_ENOPROC) { /* the runtime ran the destructor */
        bw__subs_drop(&m->subs, i, sub);
      } else if (rc != 0) { /* BW_EFULL, BW_ESHUTDOWN: still ours */
        bw_metrics_snapshot_release(sn);
      }
    }
  }
  for (size_t i = 0; i < nw; i++)
    (void)bw_reply(ctx, &waiters[i], sn != NULL ? 0 : BW_ENOMEM, M_COLLECT, NULL, 0);
}

/* Starts a collection: reads every synchronous source now and asks every
 * pool; publishes at once if no pool is asked. A collection still waiting
 * for pools is published first, with what it has. */
static void collect(bw_ctx_t *ctx, bw_metrics_t *m) {
  pthread_mutex_lock(&m->mu);
  bool unfinished = m->collecting;
  pthread_mutex_unlock(&m->mu);
  if (unfinished)
    publish(ctx, m);

  pthread_mutex_lock(&m->mu);
  m->collecting = true;
  collect_runtime_locked(m);
  for (size_t i = 0; i < m->nsrcs; i++) {
    met_src_t *s = m->srcs[i];
    switch (s->kind) {
    case SRC_BREAKER:
      collect_breaker(s);
      break;
    case SRC_RETRY:
      collect_retry(s);
      break;
    case SRC_ACTOR:
      collect_actor(m, s);
      break;
    case SRC_HTTP:
      bw__metrics_http_collect_locked(m, s);
      break;
    case SRC_BULKHEAD: {
      bw_pid_t pool = s->pid;
      if (pool == BW_PID_NONE && bw_whereis(m->rt, s->name, &pool) != 0)
        pool = BW_PID_NONE;
      uint64_t ref = 0;
      if (pool == BW_PID_NONE || bw_bulkhead_stats_request(ctx, pool, &ref) != 0) {
        bulkhead_absent(s);
        ref = 0;
      }
      s->ref = ref;
      break;
    }
    }
  }
  bool wait = pending_locked(m);
  pthread_mutex_unlock(&m->mu);
  if (!wait)
    publish(ctx, m);
}

/* A pool's answer (or its request's timeout: bm NULL). */
static void on_pool_answer(bw_ctx_t *ctx, bw_metrics_t *m, uint64_t ref, const bw_msg_t *msg) {
  pthread_mutex_lock(&m->mu);
  bool known = false;
  for (size_t i = 0; i < m->nsrcs && !known; i++) {
    met_src_t *s = m->srcs[i];
    if (s->kind != SRC_BULKHEAD || s->ref != ref || ref == 0)
      continue;
    known = true;
    s->ref = 0;
    bw_bulkhead_stats_t bm;
    if (msg != NULL && bw_bulkhead_stats_from_reply(msg, &bm) == 0)
      bulkhead_update(s, &bm);
    else
      bulkhead_absent(s); /* timed out, or the pool is gone */
  }
  bool done = known && m->collecting && !pending_locked(m);
  pthread_mutex_unlock(&m->mu);
  if (done)
    publish(ctx, m);
}

static void on_event(bw_metrics_t *m, const bw_event_t *ev) {
  bw_metric_family_t *f = NULL;
  const char *lv[3];
  char from[24], to[24];
  if (ev->type == BW_EV_CHILD_RESTARTED) {
    f = m->f_restarts;
    lv[0] = ev->source_name;
    lv[1] = ev->subject_id;
  } else if (ev->type == BW_EV_BREAKER_STATE) {
    f = m->f_transitions;
    lv[0] = ev->source_name;
    strncpy(from, bw_breaker_state_name((int)ev->a), sizeof from - 1);
    from[sizeof from - 1] = '\0';
    strncpy(to, bw_breaker_state_name((int)ev->b), sizeof to - 1);
    to[sizeof to - 1] = '\0';
    lv[1] = from;
    lv[2] = to;
  }
  if (f == NULL)
    return;
  pthread_mutex_lock(&m->mu);
  met_series_t *s;
  /* past max_series the event is not counted: labels come from the
   * system, and a bounded registry beats an unbounded one */
  if (bw__metrics_series_get_locked(f, lv, true, &s) == 0)
    bw__metrics_set_counter(s, bw__ld64_rlx(&s->bits) + 1);
  pthread_mutex_unlock(&m->mu);
}

static int rep_init(bw_ctx_t *ctx, void *state, void *arg) {
  rep_state_t *st = state;
  bw_metrics_t *m = arg;
  if (!bw__metrics_valid(m))
    return BW_EINVAL;
  bw_pid_t self = bw_self(ctx);
  pthread_mutex_lock(&m->mu);
  bw_pid_t cur = bw__ld64_rlx(&m->pid);
  if (cur != BW_PID_NONE && cur != self && bw_is_alive(m->rt, cur)) {
    pthread_mutex_unlock(&m->mu);
    return BW_EALREADY;
  }
  /* A predecessor killed untrappably left its interval timer running (its
   * terminate did not run): cancel it, or it would dead-letter forever. */
  if (m->timer != 0)
    (void)bw_timer_cancel(m->rt, m->timer);
  m->timer = 0;
  m->collecting = false;
  for (size_t i = 0; i < m->nsrcs; i++)
    m->srcs[i]->ref = 0;
  m->nwaiters = 0;
  int rc = bw_send_interval(m->rt, self, m->o.period_ms, M_TICK, NULL, 0, &m->timer);
  if (rc == 0)
    /* relaxed: readers (bw_metrics_pid) only want a recent pid */
    bw__st64_rlx(&m->pid, self);
  pthread_mutex_unlock(&m->mu);
  if (rc != 0)
    return rc;
  st->m = m;
  if (m->o.runtime_metrics)
    st->events = bw_event_subscribe(m->rt, self,
                                    BW_EV_MASK(BW_EV_CHILD_RESTARTED) |
                                        BW_EV_MASK(BW_EV_BREAKER_STATE)) == 0;
  return 0;
}

static int rep_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  rep_state_t *st = state;
  bw_metrics_t *m = st->m;
  if (msg->flags & BW_MSGF_REPLY) {
    on_pool_answer(ctx, m, msg->ref, msg);
    return BW_CONTINUE;
  }
  switch (msg->type) {
  case M_TICK:
    collect(ctx, m);
    break;
  case M_COLLECT: {
    if (!(msg->flags & BW_MSGF_REQUEST))
      break;
    pthread_mutex_lock(&m->mu);
    bool unfinished = m->collecting;
    pthread_mutex_unlock(&m->mu);
    if (unfinished)
      publish(ctx, m); /* its waiters are answered; this one waits for the next */
    pthread_mutex_lock(&m->mu);
    bool room = m->nwaiters < MAX_WAITERS;
    if (room) {
      m->waiters[m->nwaiters] = *msg;
      m->waiters[m->nwaiters].data = NULL;
      m->waiters[m->nwaiters].len = 0;
      m->nwaiters++;
    }
    pthread_mutex_unlock(&m->mu);
    if (!room)
      (void)bw_reply(ctx, msg, BW_ELIMIT, M_COLLECT, NULL, 0);
    else
      collect(ctx, m);
    break;
  }
  case M_RECHECK: {
    pthread_mutex_lock(&m->mu);
    bool done = m->collecting && !pending_locked(m);
    pthread_mutex_unlock(&m->mu);
    if (done)
      publish(ctx, m);
    break;
  }
  case BW_MSG_REQUEST_TIMEOUT:
    on_pool_answer(ctx, m, msg->ref, NULL);
    break;
  case BW_MSG_EVENT:
    if (msg->len == sizeof(bw_event_t))
      on_event(m, msg->data);
    break;
  default:
    break; /* stray messages are ignored: the reporter must not crash on them */
  }
  return BW_CONTINUE;
}

static void rep_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  rep_state_t *st = state;
  bw_metrics_t *m = st->m;
  if (m == NULL)
    return;
  if (st->events)
    (void)bw_event_unsubscribe(m->rt, bw_self(ctx));
  pthread_mutex_lock(&m->mu);
  if (m->timer != 0)
    (void)bw_timer_cancel(m->rt, m->timer);
  m->timer = 0;
  m->collecting = false;
  size_t nw = m->nwaiters;
  bw_msg_t waiters[MAX_WAITERS];
  memcpy(waiters, m->waiters, nw * sizeof *waiters);
  m->nwaiters = 0;
  if (bw__ld64_rlx(&m->pid) == bw_self(ctx))
    bw__st64_rlx(&m->pid, BW_PID_NONE);
  pthread_mutex_unlock(&m->mu);
  for (size_t i = 0; i < nw; i++)
    (void)bw_reply(ctx, &waiters[i], BW_ESHUTDOWN, M_COLLECT, NULL, 0);
}

const bw_behaviour_t bw_metrics_behaviour = {
    .name = "bulwark.metrics",
    .state_size = sizeof(rep_state_t),
    .init = rep_init,
    .handle = rep_handle,
    .terminate = rep_terminate,
    .never_muted = true, /* see RUNTIME.md, "Back-pressure" */
};

int bw_metrics_collect(bw_metrics_t *m, uint64_t timeout_ms) {
  if (!bw__metrics_valid(m))
    return BW_EINVAL;
  bw_pid_t pid = bw_metrics_pid(m);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  bw_reply_t r;
  return bw_call(m->rt, pid, M_COLLECT, NULL, 0, timeout_ms, &r);
}
